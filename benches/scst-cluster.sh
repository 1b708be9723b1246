#!/usr/bin/env bash
# The SCST cluster from the initiator (issue 14, seeds 000/002): builds
# recipes/scst-ha-node.toml with tests/fixtures/cluster/cluster-scst.toml, boots two
# QEMU VMs and prints the test's table: boot to cluster-ready, REPORT TARGET PORT
# GROUPS before/after a planned move, the switchover time, the persistent reservation
# check across nodes (DLM), the switchover under writes and the writes lost.
# Needs ../shared/upstream/scst-3.10.tar.gz (or SANFORGE_UPSTREAM).
# Usage: benches/scst-cluster.sh [RUNS]   (two TCG VMs, several minutes per run)
# SCST_CLUSTER_TEST=scst_cluster_two_groups_active_active benches/scst-cluster.sh runs
# seed 003's active/active cluster (tests/fixtures/cluster/cluster-scst-aa.toml) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
test=${SCST_CLUSTER_TEST:-scst_cluster_alua_and_persistent_reservations_seen_from_the_initiator}
cargo test --test scst_cluster --no-run
for i in $(seq "$runs"); do
  echo "## run $i"
  cargo test --test scst_cluster -- --ignored --exact \
    "$test" --nocapture 2>&1 \
    | grep -E '^\||image built|LUN served|panicked|test result'
done
