#!/usr/bin/env bash
# `make demo`: a local control plane with 3 fake nodes, everynode running against it, and the example
# DaemonSet applied; shows the result and keeps running until Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${EVERYNODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/everynode}
dir="$cache/demo"
bin=$("$root/controlplane/build.sh" --print)
kubectl="$bin/kubectl"
cp_bin="$root/target/debug/controlplane"
everynode="$root/target/debug/everynode"
mkdir -p "$dir"

everynode_pid=""
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "stopping everynode and the control plane..."
  [ -n "$everynode_pid" ] && kill "$everynode_pid" 2>/dev/null && wait "$everynode_pid" 2>/dev/null || true
  "$cp_bin" down --dir "$dir" || true
}
trap cleanup EXIT INT TERM

"$cp_bin" down --dir "$dir" >/dev/null 2>&1 || true
echo "==> starting a local control plane (etcd, kube-apiserver, kube-controller-manager without its"
echo "    DaemonSet controller, kube-scheduler, kwok) with 3 fake nodes"
"$cp_bin" up --dir "$dir" --nodes 3 >"$dir/supervisor.log" 2>&1 </dev/null &
eval "$("$cp_bin" wait --dir "$dir" --timeout 300)"
export KUBECONFIG

echo "==> starting everynode (log: $dir/everynode.log)"
RUST_LOG=${RUST_LOG:-info} "$everynode" run --kubeconfig "$KUBECONFIG" --metrics-bind-address 127.0.0.1:0 >"$dir/everynode.log" 2>&1 &
everynode_pid=$!

echo "==> kubectl apply -f examples/daemonset.yaml"
"$kubectl" apply -f "$root/examples/daemonset.yaml"

echo "==> waiting up to 60s for a Ready node-agent pod on every node"
ok=""
for _ in $(seq 1 120); do
  ready=$("$kubectl" get ds node-agent -o jsonpath='{.status.numberReady}' 2>/dev/null || true)
  nodes=$("$kubectl" get nodes --no-headers 2>/dev/null | wc -l)
  if [ "${ready:-0}" = "$nodes" ] && [ "$nodes" -gt 0 ]; then ok=yes; break; fi
  sleep 0.5
done
if [ -z "$ok" ]; then
  echo "!!  the DaemonSet's pods are not all Ready yet (numberReady=${ready:-0} of $nodes nodes)."
  echo "    everynode's log: $dir/everynode.log"
fi

echo
"$kubectl" get nodes,ds,pods -o wide

# The kubectl plugin: the same binary, found by kubectl as kubectl-everynode on PATH.
mkdir -p "$dir/bin"
ln -sf "$everynode" "$dir/bin/kubectl-everynode"
ln -sf "$kubectl" "$dir/bin/kubectl"
echo
echo "==> kubectl everynode explain node-agent   (why each node has, lacks or waits for its pod)"
PATH="$dir/bin:$PATH" kubectl everynode explain node-agent || true
cat <<EOT

everynode is running against the local control plane. In another terminal:

  export KUBECONFIG=$KUBECONFIG PATH=$dir/bin:\$PATH   # kubectl and the kubectl everynode plugin
  kubectl get ds,pods -o wide
  kubectl apply -f examples/fake-node.yaml     # a 4th fake node: it gets a node-agent pod
  kubectl taint node kwok-node-0 demo=yes:NoExecute
  kubectl everynode explain node-agent         # kwok-node-0: untolerated taint demo=yes:NoExecute
  kubectl everynode status node-agent          # waits; exits 0 complete, 1 stuck (says why), 2 --timeout
  kubectl describe ds node-agent               # events from everynode

Logs: everynode $dir/everynode.log, control plane $dir/logs/
Press Ctrl-C to stop everything.
EOT
wait "$everynode_pid" || true
