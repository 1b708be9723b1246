#!/usr/bin/env bash
# The bad-input corpus (issue #10): every verb fed hostile or malformed inputs (paths
# that climb out of the project, symlinks, foreign --out directories, edited local
# sources, trickling mirrors, fifos, half-broken renders, …), each case in a fresh
# temporary project with a timeout. Prints one row per case, then
#
#   cases  clear errors  ok  wrong  panics  hangs
#
# and exits non-zero unless wrong, panics and hangs are all 0. The cases are the
# table in tests/badinputs.rs (one line each).
# Usage: benches/badinputs.sh [--bin PATH] [--only SUBSTRING]
#   --bin PATH      run the corpus against another sanforge binary (e.g. one built
#                   from main) and only report
#   --only SUBSTR   run the cases whose id contains SUBSTR
set -euo pipefail
cd "$(dirname "$0")/.."
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) export SANFORGE_BADINPUTS_BIN="$(realpath "$2")"; shift ;;
    --only) export SANFORGE_BADINPUTS_ONLY="$2"; shift ;;
    *) echo "usage: $0 [--bin PATH] [--only SUBSTRING]" >&2; exit 2 ;;
  esac
  shift
done
exec cargo test -q --test badinputs -- --ignored --nocapture --test-threads 1
