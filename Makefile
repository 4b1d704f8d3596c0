# everynode: `make demo` and `make test` are the two entry points (see README.md).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
NODES ?= 3
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/everynode
CLUSTER_DIR ?= $(CACHE)/cluster
BENCH_NODES ?= 100,500,1000
# The pure-core benchmark's cluster sizes (bench/results/core.md; no cluster is started for it).
CORE_BENCH_NODES ?= 5000,20000,65000
BENCH_ARGS ?=
# The kubectl plugin's release (docs/kubectl-plugin.md): the crate's version, where the project lives
# and where its release archives are downloaded from.
VERSION := v$(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
PLUGIN_HOMEPAGE ?= https://github.com/everynode/everynode
PLUGIN_RELEASE_URL ?= $(PLUGIN_HOMEPAGE)/releases/download/$(VERSION)
DIST ?= dist
RELEASE_BINARY ?= $(or $(CARGO_TARGET_DIR),target)/release/everynode
export EVERYNODE_CACHE := $(CACHE)

.PHONY: demo test lint unit-and-integration cluster cluster-down controlplane shipping-tools build tools help plugin-archive plugin-manifest crd

help:
	@echo "make demo          local control plane + 3 fake nodes + everynode + an example DaemonSet"
	@echo "make test          fmt, clippy, unit and integration tests on the real local control plane"
	@echo "make cluster       start the local control plane in the background (NODES=$(NODES))"
	@echo "make cluster-down  stop it"
	@echo "make bench         everynode vs. the upstream DaemonSet controller (BENCH_NODES=$(BENCH_NODES)), then the pure-core benchmark; reports in bench/results/"
	@echo "make crd           regenerate the DaemonSetRollout CRD in deploy/crds/ and charts/everynode/crds/"
	@echo "make plugin-archive    the kubectl plugin's release archive for this machine, in $(DIST)/"
	@echo "make plugin-manifest   that archive, and plugins/everynode.yaml regenerated from it"

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
	target/release/everynode-core-bench --nodes $(CORE_BENCH_NODES) --out bench/results/core.md

# The DaemonSetRollout CRD, generated from src/api/ (`everynode crd`): the same bytes in deploy/crds/
# and the chart's crds/ (tests/crd.rs checks both, and that the rendered manifests start with it).
# Then scripts/render-manifests.sh puts it first in deploy/everynode.yaml and replace-builtin.yaml.
CRD_FILE := daemonsetrollouts.everynode.io.yaml
crd:
	cargo run -q --bin everynode -- crd > deploy/crds/$(CRD_FILE).tmp
	mv deploy/crds/$(CRD_FILE).tmp deploy/crds/$(CRD_FILE)
	cp deploy/crds/$(CRD_FILE) charts/everynode/crds/$(CRD_FILE)
	scripts/render-manifests.sh

# The kubectl plugin (docs/kubectl-plugin.md): the release binary packed as kubectl-everynode with
# LICENSE, reproducibly, then the Krew manifest computed from that very archive.
# The binary is stripped as the image's is (Dockerfile: install -s).
plugin-archive:
	cargo build --release --locked -p everynode --bin everynode
	mkdir -p $(DIST) && strip -o $(DIST)/everynode $(RELEASE_BINARY)
	scripts/plugin-archive.sh $(VERSION) $(DIST)/everynode $(DIST)

plugin-manifest: plugin-archive
	@archive=$$(scripts/plugin-archive.sh $(VERSION) $(DIST)/everynode $(DIST)); \
	name=$$(basename "$$archive"); \
	HOMEPAGE=$(PLUGIN_HOMEPAGE) scripts/krew-manifest.sh $(VERSION) "$(PLUGIN_RELEASE_URL)/$$name" "$$archive" > plugins/everynode.yaml; \
	echo "plugins/everynode.yaml: $$name $$(sha256sum "$$archive" | cut -d' ' -f1)"
