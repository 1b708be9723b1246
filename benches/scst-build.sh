#!/usr/bin/env bash
# Build times of the flagship SCST recipe with the real SCST sources, printed as a
# table: the kernel stage (shared with the default recipe: same source and config, so
# it is `cached` once storage-node is built) and the modules stage (SCST + its QLogic
# driver + iSCSI target, out of tree) for each build mode, `release`, `perf` and
# `debug` (`[scst] build-mode`), and for each SCST tree given.
#
# Inputs: the SCST archives beside the project (`../shared/upstream/`, or
# SANFORGE_UPSTREAM=DIR): scst-3.10.tar.gz (the tree the recipe pins) and, with
# --trunk, scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz. They are imported
# into the builder's cache (`sanforge fetch --import`); nothing is copied into the
# project. Each run builds in a scratch copy of the project, so the modules stage of
# each mode is built from scratch unless the cache already has it (`--fresh` moves
# such entries aside first: the figure is then a real build).
# Usage: benches/scst-build.sh [--modes "release perf debug"] [--trunk] [--fresh]
set -euo pipefail
cd "$(dirname "$0")/.."
modes="release perf debug"; trunk=0; fresh=0
while [ $# -gt 0 ]; do
  case "$1" in
    --modes) modes="$2"; shift ;;
    --trunk) trunk=1 ;;
    --fresh) fresh=1 ;;
    *) echo "usage: $0 [--modes \"release perf debug\"] [--trunk] [--fresh]" >&2; exit 2 ;;
  esac
  shift
done
upstream="${SANFORGE_UPSTREAM:-../shared/upstream}"
archives=("$upstream/scst-3.10.tar.gz")
[ "$trunk" = 1 ] && archives+=("$upstream/scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz")
for a in "${archives[@]}"; do
  [ -f "$a" ] || { echo "SKIPPED: $a is missing (set SANFORGE_UPSTREAM=DIR)" >&2; exit 0; }
done
cargo build -q --bins
bin="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/x86_64-unknown-linux-gnu/debug"
sf="$bin/sanforge"
export SANFORGE_INIT="$bin/sanforge-init" SANFORGE_PROGRESS=plain
cache="${SANFORGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sanforge}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf '%-8s %-8s %-10s %-10s %-8s\n' TREE MODE KERNEL_S MODULES_S CACHED
for a in "${archives[@]}"; do
  tree=$("$sf" fetch --import "$a" 2>/dev/null | awk '$1 ~ /^tree-v1:/ {print $1; exit}')
  label=3.10; case "$a" in *aa5cc2dd*) label=trunk ;; esac
  for mode in $modes; do
    p="$work/$label-$mode"; mkdir -p "$p"
    cp -r recipes overlays kernel-configs "$p/"
    sed -i -e "s|tree = \"tree-v1:[0-9a-f]*\"|tree = \"$tree\"|" \
      -e "s|^build-mode = .*|build-mode = \"$mode\"|" "$p/recipes/scst-fc-node.toml"
    if [ "$fresh" = 1 ]; then
      key=$( (cd "$p" && "$sf" plan recipes/scst-fc-node.toml --json) | python3 -c 'import json,sys; print([e["key"] for e in json.load(sys.stdin) if e["stage"]=="modules"][0])')
      if [ -d "$cache/stages/modules/$key" ]; then mv "$cache/stages/modules/$key" "$work/aside-$key"; fi
    fi
    log="$p/build.log"
    (cd "$p" && "$sf" build recipes/scst-fc-node.toml) >"$log" 2>&1 || { echo "build failed ($label $mode): $log" >&2; tail -20 "$log" >&2; exit 1; }
    k=$(sed -n 's/.*kernel: done in \([0-9.]*\)s.*/\1/p' "$log"); m=$(sed -n 's/.*modules: done in \([0-9.]*\)s.*/\1/p' "$log")
    cached=$(grep -o '[a-z]*: cached' "$log" | cut -d: -f1 | tr '\n' ' ')
    printf '%-8s %-8s %-10s %-10s %-8s\n' "$label" "$mode" "${k:-cached}" "${m:-cached}" "${cached:--}"
  done
done
