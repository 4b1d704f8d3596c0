#!/usr/bin/env bash
# Regenerates the Go wrapper modules (kube/, etcd/, kwok/) from versions.env. Run it only when bumping a
# version; its output (go.mod, go.sum) is committed and pins every checksum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod

staging=v0.${K8S_VERSION#v1.}

# kube: k8s.io/kubernetes needs one replace per staging module (its own go.mod maps them to ./staging,
# which a dependent cannot see); the list is read from the upstream go.mod the proxy serves.
cd "$here/kube"
rm -f go.mod go.sum
go mod init everynode.local/controlplane/kube >/dev/null 2>&1
go mod edit -go=1.26.0
upstream=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$upstream"); do
  go mod edit -replace="${m}=${m}@${staging}"
done
gd=$(sed -n 's/^godebug default=\(go[0-9.]*\)$/\1/p' "$upstream")
[ -n "$gd" ] && go mod edit -godebug=default="$gd"
go get -tool \
  "k8s.io/kubernetes/cmd/kube-apiserver@${K8S_VERSION}" \
  "k8s.io/kubernetes/cmd/kube-controller-manager@${K8S_VERSION}" \
  "k8s.io/kubernetes/cmd/kube-scheduler@${K8S_VERSION}" \
  "k8s.io/kubernetes/cmd/kubectl@${K8S_VERSION}"
go mod tidy

# etcd: its server module has a main package at the root; relative replaces in its go.mod are ignored
# and its requires carry real versions, so no replace is needed.
cd "$here/etcd"
rm -f go.mod go.sum
go mod init everynode.local/controlplane/etcd >/dev/null 2>&1
go mod edit -go=1.26.0
go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
go mod tidy

# kwok: an ordinary module.
cd "$here/kwok"
rm -f go.mod go.sum
go mod init everynode.local/controlplane/kwok >/dev/null 2>&1
go mod edit -go=1.26.0
go get -tool "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
go mod tidy
echo "wrapper modules regenerated for $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION"
