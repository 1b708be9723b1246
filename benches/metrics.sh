#!/usr/bin/env bash
# Exporter scrape time with many LUNs: a node config with N ramdisk LUNs (default
# 1000) on one iSCSI target is booted by `sanforge-init --root DIR boot` into a fake
# tree (configfs as plain files and symlinks, each LUN with LIO's statistics files),
# then `sanforge-init --root DIR metrics` renders what a scrape returns, R times; prints
# the median wall time, the size of the text and whether `promtool check metrics`
# accepts it. The fake tree stands in for configfs: the figure is the exporter's own
# cost (walking the tree, rendering), not the kernel's.
# Usage: benches/metrics.sh [--luns N] [--runs R]   (SANFORGE_INIT=PATH to use a given binary)
set -euo pipefail
cd "$(dirname "$0")/.."
luns=1000; runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --luns) luns="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    *) echo "usage: $0 [--luns N] [--runs R]" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "${SANFORGE_INIT:-}" ]; then
  cargo build --release -q --bin sanforge-init
  SANFORGE_INIT="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release/sanforge-init"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc/sanforge"
{
  echo 'hostname = "bench"'
  echo '[lio]'
  echo 'backstores = ['
  for i in $(seq 0 $((luns - 1))); do echo "  { name = \"d$i\", kind = \"ramdisk\", size = \"1MiB\" },"; done
  echo ']'
  echo '[[lio.iscsi]]'
  echo 'iqn = "iqn.2026-11.org.example:bench"'
  echo 'portals = ["0.0.0.0:3260"]'
  echo 'luns = ['
  for i in $(seq 0 $((luns - 1))); do echo "  { lun = $i, backstore = \"d$i\" },"; done
  echo ']'
} > "$work/etc/sanforge/node.toml"
"$SANFORGE_INIT" --root "$work" boot > "$work/boot.log" 2>&1 || { tail -20 "$work/boot.log" >&2; exit 1; }
tpg="$work/sys/kernel/config/target/iscsi/iqn.2026-11.org.example:bench/tpgt_1"
for i in $(seq 0 $((luns - 1))); do
  s="$tpg/lun/lun_$i/statistics/scsi_tgt_port"
  mkdir -p "$s"; echo "$i" > "$s/in_cmds"; echo 1 > "$s/read_mbytes"; echo 2 > "$s/write_mbytes"
done
times=()
for r in $(seq 1 "$runs"); do
  s=$(date +%s%N)
  "$SANFORGE_INIT" --root "$work" metrics > "$work/metrics.txt"
  e=$(date +%s%N)
  times+=("$(printf "%.3f" "$(echo "scale=3; ($e - $s) / 1000000000" | bc)")")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
samples=$(grep -c '^sanforge_lun_written_bytes_total' "$work/metrics.txt")
check=$(promtool check metrics < "$work/metrics.txt" > /dev/null 2>&1 && echo ok || echo FAILED)
printf '%-40s %12s  %s\n' "figure" "value" "note"
printf '%-40s %12s  %s\n' "scrape, $luns LUNs (runs: ${times[*]})" "${median} s" "median; $samples LUN samples"
printf '%-40s %12s  %s\n' "scrape size" "$(wc -c < "$work/metrics.txt") B" "promtool check metrics: $check"
