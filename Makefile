# everynode: `make demo` and `make test` are the two entry points (see README.md).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
NODES ?= 3
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/everynode
CLUSTER_DIR ?= $(CACHE)/cluster
export EVERYNODE_CACHE := $(CACHE)

.PHONY: demo test lint unit-and-integration cluster cluster-down controlplane build tools help

help:
	@echo "make demo          local control plane + 3 fake nodes + everynode + an example DaemonSet"
	@echo "make test          fmt, clippy, unit and integration tests on the real local control plane"
	@echo "make cluster       start the local control plane in the background (NODES=$(NODES))"
	@echo "make cluster-down  stop it"

tools:
	@scripts/ensure-tools.sh

controlplane: tools
	@controlplane/build.sh >/dev/null

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

test: controlplane lint
	cargo test --workspace --no-fail-fast
