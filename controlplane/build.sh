#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd,
# kwok) from the committed Go wrapper modules into a cache folder outside the repository, keyed by the
# pinned versions. Prints that folder on its last line. A component already built is not rebuilt.
#
#   controlplane/build.sh          build what is missing, print the bin folder
#   controlplane/build.sh --print  only print the bin folder (exit 1 if anything is missing)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${EVERYNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/everynode}
bin="$cache/controlplane/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}/bin"
components=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)

missing=()
for c in "${components[@]}"; do [ -x "$bin/$c" ] || missing+=("$c"); done
[ -f "$bin/../kwok-stages/pod-ready.yaml" ] || missing+=(kwok-stages)
if [ "${1:-}" = "--print" ]; then
  [ ${#missing[@]} -eq 0 ] || { echo "not built: ${missing[*]} (run controlplane/build.sh)" >&2; exit 1; }
  echo "$bin"; exit 0
fi
if [ ${#missing[@]} -eq 0 ]; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: Go >= 1.26 is needed to build the control plane (go not on PATH)" >&2; exit 1; }
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
mkdir -p "$bin"
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }

# A ticker so a long cold build visibly makes progress.
tick() { while sleep 30; do echo "  ... still building $1 ($(elapsed) so far)" >&2; done; }
build() { # name, module dir, ldflags, package
  local name=$1 dir=$2 ldflags=$3 pkg=$4
  [ -x "$bin/$name" ] && return 0
  echo "building $name ($(elapsed) elapsed)" >&2
  tick "$name" & local t=$!
  if ! (cd "$here/$dir" && go build -tags=selinux,notest,grpcnotrace -ldflags="$ldflags" -o "$bin/$name.tmp" "$pkg"); then
    kill "$t" 2>/dev/null; echo "build.sh: building $name failed (see above)" >&2; exit 1
  fi
  kill "$t" 2>/dev/null; wait "$t" 2>/dev/null || true
  mv "$bin/$name.tmp" "$bin/$name"
  echo "built $name ($(elapsed) elapsed)" >&2
}

minor=$(echo "$K8S_VERSION" | cut -d. -f2)
ld() { for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do printf -- '-X %s.%s=%s ' "$p" "$1" "$2"; done; }
kube_ld="-s -w $(ld gitVersion "$K8S_VERSION") $(ld gitMajor 1) $(ld gitMinor "$minor") $(ld gitTreeState clean) $(ld buildDate 1970-01-01T00:00:00Z)"

echo "building the local control plane into $bin (a cold build takes tens of minutes on 2 cores)" >&2
echo "downloading Go modules ($(elapsed) elapsed)" >&2
for d in kube etcd kwok; do (cd "$here/$d" && go mod download); done
build kube-apiserver kube "$kube_ld" k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager kube "$kube_ld" k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler kube "$kube_ld" k8s.io/kubernetes/cmd/kube-scheduler
build kubectl kube "$kube_ld" k8s.io/kubernetes/cmd/kubectl
build etcd etcd "-s -w" go.etcd.io/etcd/server/v3
build kwok kwok "-s -w" sigs.k8s.io/kwok/cmd/kwok
# kwok's stage definitions ship in its module; copy the ones the runner uses beside the binaries.
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$bin/../kwok-stages"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  cp "$kwok_dir/kustomize/stage/$f" "$bin/../kwok-stages/$(basename "$f")"
done
echo "control plane built in $(elapsed): $("$bin/kube-apiserver" --version), $("$bin/etcd" --version | head -1)" >&2
echo "$bin"
