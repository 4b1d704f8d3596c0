#!/usr/bin/env bash
# Checks the toolchains everynode needs (Rust >= 1.89 with cargo, Go >= 1.26 for the control plane)
# and installs the Debian packages the build and tests use when they are missing.
set -euo pipefail
need_apt=()
for tool in make git; do command -v "$tool" >/dev/null || need_apt+=("$tool"); done
command -v cc >/dev/null || need_apt+=(gcc)
# The benchmark's charts (bench/src/charts.rs) draw their text with this font.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# actionlint (tests/shipping.rs) checks the workflows' shell steps with it
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing missing Debian packages: ${need_apt[*]}" >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (1.89 or newer) first" >&2; exit 1; }
if ! command -v go >/dev/null; then
  echo "go not found: Go 1.26 or newer is needed to build the local control plane" >&2; exit 1
fi
gov=$(go env GOVERSION | sed 's/^go//')
major=${gov%%.*}; rest=${gov#*.}; minor=${rest%%.*}
if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 26 ]; }; then
  echo "go $gov is too old: the control plane (Kubernetes 1.36, kwok 0.8) needs Go 1.26 or newer" >&2; exit 1
fi
