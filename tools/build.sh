#!/usr/bin/env bash
# Builds the tools the tests use (helm, actionlint for tests/shipping.rs; prometheus, promtool for
# tests/monitoring*.rs; krew for tests/explain.rs) from the committed Go wrapper modules into a cache folder outside the
# repository, one folder per tool and version:
#   ${EVERYNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/everynode}/tools/<name>-<version>/<name>
# A tool already built is not rebuilt; changing its version in versions.env builds the new one.
# Prints each requested tool's folder, one a line, in the order asked (progress goes to stderr).
#
#   tools/build.sh [helm] [actionlint] [prometheus] [promtool] [prometheus-operator-crds] [krew]
#       build what is missing (default: all of them), print the folders
#   tools/build.sh --print [tool...]  only print the folders (exit 1 if a tool is missing)
#
# prometheus and promtool come from one module (tools/prometheus/), built with the tag remove_all_sd
# (no service-discovery plugin but file and http: the tests give static targets) and without the
# web UI's assets (tag builtinassets, which needs generated files): the HTTP API works without them.
#
# prometheus-operator-crds is no binary: the ServiceMonitor and PrometheusRule CRDs of the
# prometheus-operator module (from the Go module proxy, its checksum pinned in versions.env), which
# tests/monitoring.rs installs on the local control plane to validate the pack's objects.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"

cache=${EVERYNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/everynode}
print_only=false
if [ "${1:-}" = "--print" ]; then print_only=true; shift; fi
[ $# -gt 0 ] || set -- helm actionlint prometheus promtool prometheus-operator-crds krew

version_of() {
  case "$1" in
    helm) echo "$HELM_VERSION" ;;
    actionlint) echo "$ACTIONLINT_VERSION" ;;
    prometheus | promtool) echo "$PROMETHEUS_VERSION" ;;
    prometheus-operator-crds) echo "$PROMETHEUS_OPERATOR_VERSION" ;;
    krew) echo "$KREW_VERSION" ;;
    *) echo "tools/build.sh: unknown tool '$1' (known: helm, actionlint, prometheus, promtool, prometheus-operator-crds, krew)" >&2; exit 2 ;;
  esac
}
module_of() { # the wrapper module's folder under tools/
  case "$1" in
    prometheus | promtool) echo prometheus ;;
    *) echo "$1" ;;
  esac
}
tags_of() {
  case "$1" in
    prometheus | promtool) echo remove_all_sd ;;
  esac
}
prometheus_release() { # v0.316.0 -> 3.16.0 (the proxy's v0.<major*100+minor>.<patch>)
  local v=${1#v0.}
  local mm=${v%%.*}
  echo "$((mm / 100)).$((mm % 100)).${v#*.}"
}
ldflags_of() { # name, version: the same version stamps as upstream's release builds
  case "$1" in
    helm) echo "-s -w -X helm.sh/helm/v4/internal/version.version=$2 -X helm.sh/helm/v4/internal/version.gitTreeState=clean" ;;
    actionlint) echo "-s -w -X github.com/rhysd/actionlint.version=$2 -X github.com/rhysd/actionlint.installedFrom=built-from-go-module-proxy" ;;
    prometheus | promtool) echo "-s -w -X github.com/prometheus/common/version.Version=$(prometheus_release "$2") -X github.com/prometheus/common/version.Branch=go-module-proxy" ;;
    krew) echo "-s -w -X sigs.k8s.io/krew/internal/version.gitTag=$2" ;;
  esac
}
package_of() {
  case "$1" in
    helm) echo helm.sh/helm/v4/cmd/helm ;;
    actionlint) echo github.com/rhysd/actionlint/cmd/actionlint ;;
    prometheus) echo github.com/prometheus/prometheus/cmd/prometheus ;;
    promtool) echo github.com/prometheus/prometheus/cmd/promtool ;;
    krew) echo sigs.k8s.io/krew/cmd/krew ;;
  esac
}

# What the folder of a built tool has: the binary, or for the CRDs the last file copied.
built() { # name, dir
  case "$1" in
    prometheus-operator-crds) [ -f "$2/monitoring.coreos.com_servicemonitors.yaml" ] ;;
    *) [ -x "$2/$1" ] ;;
  esac
}
CRDS=(monitoring.coreos.com_prometheusrules.yaml monitoring.coreos.com_servicemonitors.yaml)

dirs=()
for name in "$@"; do
  dirs+=("$cache/tools/$name-$(version_of "$name")")
done

if $print_only; then
  status=0
  i=0
  for name in "$@"; do
    dir=${dirs[$i]}; i=$((i + 1))
    if built "$name" "$dir"; then echo "$dir"
    else echo "not built: $name ${dir##*-} (run tools/build.sh $name)" >&2; status=1; fi
  done
  exit $status
fi

start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start ))s"; }
# A ticker so a long cold build visibly makes progress.
tick() { while sleep 30; do echo "  ... still building $1 ($(elapsed) so far)" >&2; done; }

i=0
for name in "$@"; do
  dir=${dirs[$i]}; i=$((i + 1))
  built "$name" "$dir" && continue
  command -v go >/dev/null || { echo "tools/build.sh: Go >= 1.26 is needed to build $name (go not on PATH)" >&2; exit 1; }
  export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
  version=$(version_of "$name")
  echo "building $name $version into $dir ($(elapsed) elapsed)" >&2
  if [ "$name" = prometheus-operator-crds ]; then
    # go mod download checks the module against the checksum database; the pin checks it again.
    info=$(GOFLAGS=-mod=mod go mod download -json "github.com/prometheus-operator/prometheus-operator@$version")
    sum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$info")
    src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")
    if [ "$sum" != "$PROMETHEUS_OPERATOR_SUM" ] || [ -z "$src" ]; then
      echo "tools/build.sh: prometheus-operator $version: checksum ${sum:-?} is not the pinned $PROMETHEUS_OPERATOR_SUM" >&2
      echo "$info" >&2; exit 1
    fi
    mkdir -p "$dir"
    for f in "${CRDS[@]}"; do
      cp "$src/example/prometheus-operator-crd/$f" "$dir/$f.tmp" && chmod u+w "$dir/$f.tmp" && mv "$dir/$f.tmp" "$dir/$f"
    done
    echo "copied the prometheus-operator $version CRDs ($(elapsed) elapsed)" >&2
    continue
  fi
  module=$here/$(module_of "$name")
  tags=$(tags_of "$name")
  # Only the modules of the packages this build compiles (not every module go.sum lists: with
  # remove_all_sd, Prometheus' cloud SDKs are never downloaded).
  echo "downloading Go modules for $name ($(elapsed) elapsed)" >&2
  (cd "$module" && go list -deps -tags="$tags" "$(package_of "$name")" >/dev/null)
  mkdir -p "$dir"
  tick "$name" & t=$!
  if ! (cd "$module" && go build -tags="$tags" -ldflags="$(ldflags_of "$name" "$version")" -o "$dir/$name.tmp" "$(package_of "$name")"); then
    kill "$t" 2>/dev/null; echo "tools/build.sh: building $name failed (see above)" >&2; exit 1
  fi
  kill "$t" 2>/dev/null; wait "$t" 2>/dev/null || true
  mv "$dir/$name.tmp" "$dir/$name"
  echo "built $name $version ($(elapsed) elapsed)" >&2
done
printf '%s\n' "${dirs[@]}"
