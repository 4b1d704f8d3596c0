#!/usr/bin/env bash
# Regenerates the Go wrapper modules (helm/, actionlint/) from versions.env. Run it only when bumping a
# version; its output (go.mod, go.sum) is committed and pins every checksum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod

gen() { # dir, module@version of the command; the upstream go line and godebug default are kept
  local dir=$1 tool=$2 mod=$3 version=$4
  mkdir -p "$here/$dir" && cd "$here/$dir"
  rm -f go.mod go.sum
  go mod init "everynode.local/tools/$dir" >/dev/null 2>&1
  go mod edit -go=1.26.0
  local upstream gd
  upstream=$(go mod download -json "${mod}@${version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  gd=$(sed -n 's/^godebug default=\(go[0-9.]*\)$/\1/p' "$upstream")
  [ -n "$gd" ] && go mod edit -godebug=default="$gd"
  go get -tool "${tool}@${version}"
  go mod tidy
}
gen helm helm.sh/helm/v4/cmd/helm helm.sh/helm/v4 "$HELM_VERSION"
gen actionlint github.com/rhysd/actionlint/cmd/actionlint github.com/rhysd/actionlint "$ACTIONLINT_VERSION"
echo "wrapper modules regenerated for helm $HELM_VERSION, actionlint $ACTIONLINT_VERSION"
