#!/usr/bin/env bash
# The idle soak of the two-node LIO + DRBD cluster (issue 14): boots the pair, writes
# one block a second for SECS seconds (default 600) and counts, on both nodes, resource
# actions, failed operations, Corosync memberships formed and DRBD state changes, plus
# fail counts and failed writes: all must be 0. Runs the ignored test
# `idle_cluster_makes_no_spurious_transitions` of tests/failover.rs and prints its table.
# Usage: benches/soak.sh [SECS]   (two QEMU VMs under TCG: run it while no other VMs load the machine)
set -euo pipefail
cd "$(dirname "$0")/.."
export SANFORGE_SOAK_SECS=${1:-600}
cargo test --release --test failover -- --ignored --exact idle_cluster_makes_no_spurious_transitions --nocapture 2>&1 \
  | grep -E '^\||^fail counts|image built|LUN served|panicked|spurious|test result'
