#!/usr/bin/env bash
# SCSI conformance figures: libiscsi's whole suite (`iscsi-test-cu --dataloss`, every
# family, 615 tests) against the default LIO image booted under QEMU, held to
# tests/conformance/lio.expected (tests/conformance.rs, `lio_image_conformance_full`);
# with --scst also against the real SCST 3.10 image (`scst_image_conformance_full`:
# recipes/scst-fc-node.toml built from ../shared/upstream/scst-3.10.tar.gz or
# SANFORGE_UPSTREAM=DIR, one vdisk_fileio LUN with nv_cache 1 on a 64 MiB virtio disk,
# booted under TCG; held to tests/conformance/scst.expected); --scst-only skips LIO;
# --scst-trunk runs the same against the image built from SCST trunk
# (scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz, build mode perf:
# `scst_trunk_image_conformance_full`, held to tests/conformance/scst-trunk.expected),
# alone (combine with --scst for both SCST trees, add LIO with --lio).
# Prints one row per stack: passed/total, failures
# expected and unexpected, listed tests that now pass, the suite's wall time and the
# whole run's (build + boot + suite). `cargo test` runs only the SCSI family against
# LIO (`lio_image_conformance_subset`); this is the full run.
# Usage: benches/conformance.sh [--scst | --scst-only] [--scst-trunk] [--lio]
set -euo pipefail
cd "$(dirname "$0")/.."
lio=1
scst=0
trunk=0
withlio=0
while [ $# -gt 0 ]; do
  case "$1" in
    --scst) scst=1 ;;
    --scst-only) scst=1; lio=0 ;;
    --scst-trunk) trunk=1; lio=0 ;;
    --lio) withlio=1 ;;
    *) echo "usage: $0 [--scst | --scst-only] [--scst-trunk] [--lio]" >&2; exit 2 ;;
  esac
  shift
done
[ "$withlio" = 1 ] && lio=1
upstream="${SANFORGE_UPSTREAM:-../shared/upstream}"
if [ "$scst" = 1 ] && [ ! -f "$upstream/scst-3.10.tar.gz" ]; then
  echo "--scst needs the SCST 3.10 archive: $upstream/scst-3.10.tar.gz (or SANFORGE_UPSTREAM=DIR)" >&2
  exit 2
fi
trunk_archive=scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz
if [ "$trunk" = 1 ] && [ ! -f "$upstream/$trunk_archive" ]; then
  echo "--scst-trunk needs the SCST trunk archive: $upstream/$trunk_archive (or SANFORGE_UPSTREAM=DIR)" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo test --test conformance --no-run -q 2> "$work/build" || { cat "$work/build" >&2; exit 1; }

rows=()
status=0
run() {  # run STACK TEST
  local stack="$1" test="$2" log="$work/$1.log" s e rc=0
  s=$(date +%s)
  cargo test -q --test conformance -- --ignored --exact "$test" \
    > "$log" 2>&1 || rc=$?
  e=$(date +%s)
  local line wall now
  line=$(grep -m1 -E "^$stack: [0-9]+/[0-9]+ passed" "$log" || true)
  if [ -z "$line" ]; then
    echo "$stack: no verdict (exit $rc); log:" >&2; tail -40 "$log" >&2
    rows+=("$(printf '| %s | (no verdict, exit %d) | | | | | | %ss |' "$stack" "$rc" $((e - s)))")
    status=1
    return
  fi
  [ "$rc" -eq 0 ] || { status=1; grep -E "UNEXPECTED|listed but not" "$log" >&2 || true; }
  wall=$(grep -m1 -oE "iscsi-test-cu wall time [0-9.]+s" "$log" | grep -oE "[0-9.]+s" || echo "?")
  now=$(grep -c "NOW PASSES" "$log" || true)
  grep "NOW PASSES" "$log" >&2 || true
  # lio: 531/615 passed, 84 failed (84 expected, 0 unexpected); FILE lists 84 tests
  rows+=("$(echo "$line" | sed -E "s#^([a-z-]+): ([0-9]+)/([0-9]+) passed, ([0-9]+) failed \(([0-9]+) expected, ([0-9]+) unexpected\); .* lists ([0-9]+) tests.*#| \1 | \2/\3 | \4 | \5 | \6 | \7 | ${now} | ${wall} | $((e - s))s |#")")
}

[ "$lio" = 1 ] && run lio lio_image_conformance_full
[ "$scst" = 1 ] && run scst scst_image_conformance_full
[ "$trunk" = 1 ] && run scst-trunk scst_trunk_image_conformance_full

echo "| stack | passed | failed | expected failures | unexpected | list length | listed, now passing | suite wall time | build + boot + suite |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
exit "$status"
