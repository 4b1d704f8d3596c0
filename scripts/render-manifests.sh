#!/usr/bin/env bash
# Regenerates deploy/everynode.yaml, deploy/replace-builtin.yaml and the monitoring pack's objects in
# deploy/monitoring/ from charts/everynode: each is its header comment (kept from the file, up to its
# first blank line) followed by `helm template` as it is, release name everynode in kube-system,
# without helm's `# Source:` lines. The two install manifests are rendered with `--include-crds`, so
# the DaemonSetRollout CRD (charts/everynode/crds/, written by `make crd`) is their first document. tests/shipping.rs checks, object by object, that the chart still
# renders them. helm comes from tools/build.sh (built on first use).
#
# First it copies the monitoring pack's sources, deploy/monitoring/everynode.rules.yaml and
# everynode-dashboard.json, into charts/everynode/files/, where the chart's templates read them
# (tests/monitoring_pack.rs checks that the copies are the same bytes).
#
#   scripts/render-manifests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
helm="$(tools/build.sh helm)/helm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HELM_CONFIG_HOME="$tmp/config" HELM_CACHE_HOME="$tmp/cache" HELM_DATA_HOME="$tmp/data"

render() { # file, --set values... (or --show-only=<template>)
  local file=$1; shift
  local args=()
  for s in "$@"; do
    case "$s" in
      --*) args+=("$s") ;;
      *) args+=(--set "$s") ;;
    esac
  done
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

for f in everynode.rules.yaml everynode-dashboard.json; do
  cp deploy/monitoring/$f charts/everynode/files/$f
done
render deploy/everynode.yaml --include-crds
render deploy/replace-builtin.yaml --include-crds replaceBuiltin.enabled=true apiServer.host=API_SERVER_HOST
render deploy/monitoring/servicemonitor.yaml monitoring.serviceMonitor.enabled=true \
  --show-only=templates/servicemonitor.yaml
render deploy/monitoring/prometheusrule.yaml monitoring.prometheusRule.enabled=true \
  --show-only=templates/prometheusrule.yaml
render deploy/monitoring/grafana-dashboard.yaml monitoring.grafanaDashboard.enabled=true \
  --show-only=templates/grafana-dashboard.yaml
