#!/usr/bin/env bash
# The fault matrix of reference/ha.md §5 on the two-node LIO cluster with sbd fencing
# (issue 14): one fresh pair of QEMU VMs per row, a host writer throughout; prints one
# table row per scenario: expected outcome met, I/O stall, acknowledged writes lost,
# node fenced. Rows: power-loss kernel-panic hang kill-corosync kill-controld one-link
# partition drbd-link monitor stop-failure resync-death planned-move rolling-upgrade
# clock-step (SANFORGE_FAULTS=a,b picks some; default all).
# Usage: benches/fault-matrix.sh [ROW,ROW…]   (a few minutes per row under TCG; the
# whole matrix about an hour)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] && export SANFORGE_FAULTS="$1"
cargo test --release --test fault_matrix -- --exact fault_matrix --include-ignored --nocapture 2>&1 \
  | grep -E '^\||image built|LUN served|: [0-9]+ s$|expected outcome not met|panicked|test result'
