#!/usr/bin/env bash
# `sanforge push` end to end under QEMU TCG: runs the QEMU test of tests/push.rs (two
# builds of the default recipe with two node configs, the kernel and userland from the
# cache; disk.img booted under OVMF; a refused push, a push killed mid-copy, then the
# push that reboots the node into slot B) and prints its figures as a table: the builds,
# the first boot, the push from start to ready on the new slot, and the test's wall time.
# Usage: benches/push.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
  shift
done
unset SANFORGE_SKIP_E2E
test=push_installs_a_second_build_on_slot_b_and_refuses_a_foreign_signature
cargo test -q --test push --no-run 2>/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%-4s %10s %12s %14s %12s\n' run "builds s" "1st boot s" "push→ready s" "test wall s"
for i in $(seq 1 "$runs"); do
  start=$(date +%s.%N)
  cargo test -q --test push "$test" -- --exact --nocapture > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  builds=$(sed -n 's/^two builds: \([0-9.]*\) s$/\1/p' "$log")
  boot=$(sed -n 's/^first boot under OVMF: \([0-9.]*\) s$/\1/p' "$log")
  push=$(sed -n 's/^push: \([0-9.]*\) s to ready on slot b.*/\1/p' "$log")
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  printf '%-4s %10s %12s %14s %12s\n' "$i" "${builds:-?}" "${boot:-?}" "${push:-?}" "$wall"
done
# The phases of the last push, as it printed them.
sed -n '/ check /,/ ready /p' "$log"
