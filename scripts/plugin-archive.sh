#!/usr/bin/env bash
# Packs the kubectl plugin for one platform: a tar.gz holding the binary named kubectl-everynode and
# LICENSE, nothing else, named kubectl-everynode_<VERSION>_<os>_<arch>.tar.gz as Krew's manifests and
# scripts/krew-manifest.sh expect. The archive is reproducible: the same binary gives the same bytes
# (sorted entries, mtime 0, owner root, mode 0755/0644, gzip without a name or time), so its sha256
# can be checked by anyone who builds it. Prints the archive's path.
#
#   scripts/plugin-archive.sh VERSION BINARY OUT_DIR [OS ARCH]
#
# VERSION like v0.1.0; OS and ARCH in Go's spelling (linux, darwin; amd64, arm64), default this
# machine's. `make plugin-archive` runs it on the release build.
set -euo pipefail
if [ $# -ne 3 ] && [ $# -ne 5 ]; then
  echo "usage: $0 VERSION BINARY OUT_DIR [OS ARCH]" >&2
  exit 2
fi
version=$1 binary=$2 out=$3
case "$version" in
  v[0-9]*) ;;
  *) echo "$0: VERSION must look like v1.2.3, not '$version'" >&2; exit 2 ;;
esac
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
  echo "$0: '$binary' is not an executable file" >&2
  exit 1
fi
if [ $# -eq 5 ]; then
  os=$4 arch=$5
else
  os=$(uname -s | tr '[:upper:]' '[:lower:]')
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "$0: unknown machine '$(uname -m)': give OS and ARCH" >&2; exit 1 ;;
  esac
fi
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
archive="$out/kubectl-everynode_${version}_${os}_${arch}.tar.gz"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$binary" "$stage/kubectl-everynode"
install -m 0644 "$root/LICENSE" "$stage/LICENSE"
tar --create --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
  --directory="$stage" LICENSE kubectl-everynode | gzip -9 --no-name > "$archive.tmp"
mv "$archive.tmp" "$archive"
echo "$archive"
