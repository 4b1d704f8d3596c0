#!/usr/bin/env bash
# Regenerates deploy/everynode.yaml and deploy/replace-builtin.yaml from charts/everynode: each is its
# header comment (kept from the file, up to its first blank line) followed by `helm template` as it is, release name everynode in
# kube-system, without helm's `# Source:` lines. tests/shipping.rs checks, object by object, that the
# chart still renders them. helm comes from tools/build.sh (built on first use).
#
#   scripts/render-manifests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
helm="$(tools/build.sh helm)/helm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HELM_CONFIG_HOME="$tmp/config" HELM_CACHE_HOME="$tmp/cache" HELM_DATA_HOME="$tmp/data"

render() { # file, --set values...
  local file=$1; shift
  local args=()
  for s in "$@"; do args+=(--set "$s"); done
  {
    # the header: the comment lines the file starts with, up to the blank line that ends it
    sed -n '/^#/!q; p' "$file"
    echo
    "$helm" template everynode charts/everynode --namespace kube-system "${args[@]}" |
      grep -v '^# Source: ' |
      # the first document's leading `---` and the blank lines before a `---`
      awk 'NR == 1 && $0 == "---" { next } { lines[++n] = $0 }
           END { for (i = 1; i <= n; i++) if (!(lines[i] == "" && lines[i + 1] == "---")) print lines[i] }'
  } >"$tmp/out"
  mv "$tmp/out" "$file"
}

render deploy/everynode.yaml
render deploy/replace-builtin.yaml replaceBuiltin.enabled=true apiServer.host=API_SERVER_HOST
