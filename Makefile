# everynode: `make demo` and `make test` are the two entry points (see README.md).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
NODES ?= 3
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/everynode
CLUSTER_DIR ?= $(CACHE)/cluster
BENCH_NODES ?= 100,500,1000
BENCH_ARGS ?=
export EVERYNODE_CACHE := $(CACHE)

.PHONY: demo test lint unit-and-integration cluster cluster-down controlplane shipping-tools build tools help

help:
	@echo "make demo          local control plane + 3 fake nodes + everynode + an example DaemonSet"
	@echo "make test          fmt, clippy, unit and integration tests on the real local control plane"
	@echo "make cluster       start the local control plane in the background (NODES=$(NODES))"
	@echo "make cluster-down  stop it"
	@echo "make bench         everynode vs. the upstream DaemonSet controller (BENCH_NODES=$(BENCH_NODES)), report in bench/results/"

tools:
	@scripts/ensure-tools.sh

controlplane: tools
	@controlplane/build.sh >/dev/null

# helm and actionlint for tests/shipping.rs, prometheus, promtool and prometheus-operator's CRDs for
# tests/monitoring*.rs (which would build them themselves; here the build shows first)
shipping-tools: tools
	@tools/build.sh >/dev/null

build: tools
	cargo build --workspace --bins

demo: controlplane build
	@scripts/demo.sh

cluster: controlplane build
	@controlplane/cluster.sh up "$(CLUSTER_DIR)" "$(NODES)"

cluster-down:
	@controlplane/cluster.sh down "$(CLUSTER_DIR)"

lint: tools
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

test: controlplane shipping-tools lint
	cargo test --workspace --no-fail-fast

bench: controlplane
	cargo build --release -p everynode -p everynode-bench
	target/release/everynode-bench --nodes $(BENCH_NODES) --everynode target/release/everynode --out bench/results $(BENCH_ARGS)
