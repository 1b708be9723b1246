#!/usr/bin/env bash
# Two-node failover figures (issue 5): boot to cluster-ready per node, planned
# switchover and unplanned failover (primary VM killed) until the LUN serves I/O
# again, acknowledged writes lost. Runs tests/failover.rs, which prints the table.
# Usage: benches/failover.sh   (two QEMU VMs under TCG, about 5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test failover -- --include-ignored --nocapture 2>&1 \
  | grep -E '^\||image built|LUN served|panicked|test result'
