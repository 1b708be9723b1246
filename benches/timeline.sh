#!/usr/bin/env bash
# The boot timeline of the default image under QEMU TCG: builds recipes/storage-node.toml
# (the kernel from the cache when it is there), boots it with `sanforge run --until-ready`
# N times and prints, per boot step, the median start, end and duration in seconds since
# the kernel started, as the init printed them on the console just before `ready`
# (`boot timeline (seconds since the kernel started):`, see src/init/timeline.rs).
# Usage: benches/timeline.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
  shift
done
cargo build --release -q
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/x86_64-unknown-linux-gnu/release"
export SANFORGE_PROGRESS=plain SANFORGE_INIT="$bin/sanforge-init"
sf="$bin/sanforge"
work=$(mktemp -d)
trap '"$sf" run "$work/out/storage-node" --stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
out="$work/out/storage-node"
"$sf" build recipes/storage-node.toml --out "$out" > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
for i in $(seq 1 "$runs"); do
  port=$((20000 + RANDOM % 20000))
  "$sf" run "$out" --until-ready --quiet --accel tcg --timeout 300 --iscsi-port "$port" > "$work/run.log" 2>&1 || { cat "$work/run.log" >&2; exit 1; }
  # The table: from its heading to the line after it that is not indented by two spaces
  # plus a step name (the state line, `ready`, closes it).
  tr -d '\r' < "$work/out/storage-node.run/console.log" \
    | sed -n '/sanforge-init: boot timeline (seconds since the kernel started):/,/sanforge-init:   [^ ].*[0-9]$/p' \
    | sed -n 's/^.*sanforge-init:   //p' > "$work/timeline.$i"
  [ -s "$work/timeline.$i" ] || { echo "error: run $i: no boot timeline on the console" >&2; tail -40 "$work/out/storage-node.run/console.log" >&2; exit 1; }
  "$sf" run "$out" --stop > /dev/null
done
# Each line: NAME START -> END DURATION s [OUTCOME]; the last: STATE AT. As TSV:
# name, start, end, took, outcome.
tsv() {
  awk '/ -> / {
    i = match($0, /  +[0-9]/); name = substr($0, 1, i - 1); split(substr($0, i), f, " +")
    printf "%s\t%s\t%s\t%s\t%s\n", name, f[2], f[4], f[5], (f[7] == "" ? "ok" : f[7])
  }' "$1"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "?"; else print a[int((NR + 1) / 2)]}'; }
for i in $(seq 1 "$runs"); do tsv "$work/timeline.$i" > "$work/tsv.$i"; done
printf '%-18s %9s %9s %9s  %s\n' "step" "start s" "end s" "took s" "outcome (runs: $runs, medians)"
cut -f1 "$work/tsv.1" | while IFS= read -r name; do
  col() { for i in $(seq 1 "$runs"); do awk -F'\t' -v n="$name" -v c="$1" '$1 == n {print $c; exit}' "$work/tsv.$i"; done | median; }
  outcome=$(awk -F'\t' -v n="$name" '$1 == n {print $5; exit}' "$work/tsv.1")
  printf '%-18s %9s %9s %9s  %s\n' "$name" "$(col 2)" "$(col 3)" "$(col 4)" "$outcome"
done
ready=$(for i in $(seq 1 "$runs"); do tail -1 "$work/timeline.$i" | awk '{print $NF}'; done | median)
printf '%-18s %9s %9s %9s  %s\n' "$(tail -1 "$work/timeline.1" | awk '{$NF=""; print}' | sed 's/ *$//')" "" "$ready" "" "kernel start → final state line"
