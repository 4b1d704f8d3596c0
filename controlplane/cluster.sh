#!/usr/bin/env bash
# `make cluster` / `make cluster-down`: the local control plane in the background.
#   cluster.sh up DIR NODES   start it (if not running) and print `export KUBECONFIG=...`
#   cluster.sh down DIR       stop everything it started
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cp_bin="$root/target/debug/controlplane"
cmd=$1 dir=$2
case "$cmd" in
  up)
    nodes=${3:-3}
    mkdir -p "$dir"
    if [ -f "$dir/ready" ] && [ -f "$dir/supervisor.pid" ] && kill -0 "$(cat "$dir/supervisor.pid")" 2>/dev/null; then
      echo "already running (make cluster-down to stop it)" >&2
    else
      echo "starting the local control plane with $nodes fake nodes (log: $dir/supervisor.log)" >&2
      setsid -f "$cp_bin" up --dir "$dir" --nodes "$nodes" >"$dir/supervisor.log" 2>&1 </dev/null
    fi
    "$cp_bin" wait --dir "$dir" --timeout 600
    ;;
  down) "$cp_bin" down --dir "$dir" ;;
  *) echo "usage: cluster.sh up DIR NODES | down DIR" >&2; exit 2 ;;
esac
