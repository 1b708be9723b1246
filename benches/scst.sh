#!/usr/bin/env bash
# SCST scale figures, printed as a table, on a generated scst.conf (1,000 devices, 64
# FC targets, 64 initiator groups by default; `sanforge scst generate`):
#   scst check  parse + validate
#   scst plan   parse + validate + the ordered sysfs writes, printed
#   apply-scst  `sanforge-init --root DIR apply-scst FILE` against a fake
#               /sys/kernel/scst_tgt tree (every write recorded), the way the init
#               applies it at boot (on tmpfs: /dev/shm), plus the re-apply of the same
#               file (zero writes)
# Goal: each under 1 s. Best of --runs N (default 3).
# Usage: benches/scst.sh [--debug] [--runs N] [--devices N] [--targets N] [--groups N]
#   --debug  use the debug build instead of `cargo build --release`
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release; runs=3; devices=1000; targets=64; groups=64
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=debug ;;
    --runs) runs="$2"; shift ;;
    --devices) devices="$2"; shift ;;
    --targets) targets="$2"; shift ;;
    --groups) groups="$2"; shift ;;
    *) echo "usage: $0 [--debug] [--runs N] [--devices N] [--targets N] [--groups N]" >&2; exit 2 ;;
  esac
  shift
done
if [ "$profile" = release ]; then cargo build --release -q; else cargo build -q; fi
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/$profile"
sf="$bin/sanforge"; init="$bin/sanforge-init"
work=$(mktemp -d)
# The fake sysfs tree lives on tmpfs when there is one, like the real sysfs: on a disk
# file system each rewrite of a `mgmt` file (O_TRUNC of fresh data) costs milliseconds.
tree=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work" "$tree"' EXIT
conf="$work/scst.conf"
"$sf" scst generate --devices "$devices" --targets "$targets" --groups "$groups" > "$conf"

# Seconds (3 decimals) of the best of $runs runs of "$@"; `prep` runs before each.
prep() { :; }
best() {
  local b="" s e d
  for _ in $(seq 1 "$runs"); do
    prep
    s=$(date +%s%N)
    "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
    e=$(date +%s%N)
    d=$(( (e - s) / 1000000 ))
    if [ -z "$b" ] || [ "$d" -lt "$b" ]; then b=$d; fi
  done
  printf '%d.%03d' $((b / 1000)) $((b % 1000))
}

check=$(best "$sf" scst check "$conf")
plan=$(best "$sf" scst plan "$conf")
writes=$(wc -l < "$work/out")

root="$tree/root"
fresh_tree() {
  rm -rf "$root"
  mkdir -p "$root/sys/kernel/scst_tgt/handlers/vdisk_blockio" "$root/sys/kernel/scst_tgt/targets/qla2x00t"
  echo 0 > "$root/sys/kernel/scst_tgt/last_sysfs_mgmt_res"
}
prep() { fresh_tree; }
apply=$(best "$init" --root "$root" apply-scst "$conf")
applied=$(grep -c '^write /sys/kernel/scst_tgt/' "$work/out" || true)
prep() { :; }
reapply=$(best "$init" --root "$root" apply-scst "$conf")
reapplied=$(grep -c '^write /sys/kernel/scst_tgt/' "$work/out" || true)

printf 'scst.conf: %d devices, %d targets, %d groups; %d bytes, %d lines (%s build, best of %d)\n' \
  "$devices" "$targets" "$groups" "$(wc -c < "$conf")" "$(wc -l < "$conf")" "$profile" "$runs"
printf '%-34s %10s %10s\n' "step" "seconds" "writes"
printf '%-34s %10s %10s\n' "sanforge scst check" "$check" "-"
printf '%-34s %10s %10s\n' "sanforge scst plan" "$plan" "$writes"
printf '%-34s %10s %10s\n' "sanforge-init apply-scst (fresh)" "$apply" "$applied"
printf '%-34s %10s %10s\n' "sanforge-init apply-scst (again)" "$reapply" "$reapplied"
