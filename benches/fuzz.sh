#!/usr/bin/env bash
# Fuzzing figures of the three loaders users feed (tests/fuzz.rs): the scst.conf parser
# (+ validate, print, plan), the node.toml loader (+ the LIO plan) and the cluster.toml
# loader, each on N generated inputs (mutated fixtures and seeds; for scst.conf also
# random block trees). Prints one row per target: inputs, how many loaded, panics and
# seconds (the three run in parallel, one test thread each). Any panic fails the run;
# the panicking inputs are kept in target/fuzz-panics/.
# Usage: benches/fuzz.sh [--inputs N] [--seed S] [--debug]
#   --inputs N  generated inputs per target (default 1000000)
#   --seed S    generator seed (default: the test's fixed seed)
#   --debug     use the debug build instead of --release
set -euo pipefail
cd "$(dirname "$0")/.."
inputs=1000000; seed=""; release=(--release)
while [ $# -gt 0 ]; do
  case "$1" in
    --inputs) inputs="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    --debug) release=() ;;
    *) echo "usage: $0 [--inputs N] [--seed S] [--debug]" >&2; exit 2 ;;
  esac
  shift
done
export SANFORGE_FUZZ_INPUTS="$inputs"
if [ -n "$seed" ]; then export SANFORGE_FUZZ_SEED="$seed"; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test "${release[@]}" -q --test fuzz -- --include-ignored _benchmark --nocapture >"$out" 2>&1 || status=$?
printf '%-14s %10s %10s %7s %9s\n' target inputs loaded panics seconds
# The harness may print on the same line as a test: take the records wherever they are.
grep -oE 'fuzz-result [^ ]+ [0-9]+ [0-9]+ [0-9]+ [0-9.]+' "$out" | sort | while read -r _ name n loaded panics secs; do
  printf '%-14s %10s %10s %7s %9s\n' "$name" "$n" "$loaded" "$panics" "$secs"
done
if [ "$status" -ne 0 ]; then
  echo "fuzz: failed (exit $status):" >&2
  tail -40 "$out" >&2
fi
exit "$status"
