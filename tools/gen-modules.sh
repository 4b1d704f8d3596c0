#!/usr/bin/env bash
# Regenerates the Go wrapper modules (helm/, actionlint/, prometheus/, krew/) from versions.env. Run it only
# when bumping a version; its output (go.mod, go.sum) is committed and pins every checksum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod

gen() { # dir, module, version, command package(s); the upstream go line and godebug default are kept
  local dir=$1 mod=$2 version=$3; shift 3
  mkdir -p "$here/$dir" && cd "$here/$dir"
  rm -f go.mod go.sum
  go mod init "everynode.local/tools/$dir" >/dev/null 2>&1
  go mod edit -go=1.26.0
  local upstream gd
  upstream=$(go mod download -json "${mod}@${version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  gd=$(sed -n 's/^godebug default=\(go[0-9.]*\)$/\1/p' "$upstream")
  [ -n "$gd" ] && go mod edit -godebug=default="$gd"
  local tool
  for tool in "$@"; do go get -tool "${tool}@${version}"; done
  go mod tidy
}
gen helm helm.sh/helm/v4 "$HELM_VERSION" helm.sh/helm/v4/cmd/helm
gen actionlint github.com/rhysd/actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint
# One module for both Prometheus commands: they share their dependencies (and their versions).
gen prometheus github.com/prometheus/prometheus "$PROMETHEUS_VERSION" \
  github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool
gen krew sigs.k8s.io/krew "$KREW_VERSION" sigs.k8s.io/krew/cmd/krew
echo "wrapper modules regenerated for helm $HELM_VERSION, actionlint $ACTIONLINT_VERSION, prometheus $PROMETHEUS_VERSION, krew $KREW_VERSION"
