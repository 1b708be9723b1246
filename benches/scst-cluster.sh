#!/usr/bin/env bash
# The SCST cluster from the initiator (issue 14, seeds 000/002): builds
# recipes/scst-ha-node.toml with tests/fixtures/cluster/cluster-scst.toml, boots two
# QEMU VMs and prints the test's table: boot to cluster-ready, REPORT TARGET PORT
# GROUPS before/after a planned move, the switchover time, the persistent reservation
# check across nodes (DLM), the switchover under writes, the primary killed (power
# loss) to I/O again and the writes lost. With RUNS > 1 it ends with the medians.
# Needs ../shared/upstream/scst-3.10.tar.gz (or SANFORGE_UPSTREAM).
# Usage: benches/scst-cluster.sh [RUNS]   (two TCG VMs, several minutes per run)
# SCST_CLUSTER_TEST=scst_cluster_two_groups_active_active benches/scst-cluster.sh runs
# seed 003's active/active cluster (tests/fixtures/cluster/cluster-scst-aa.toml,
# tests/scst_cluster_aa.rs) instead.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
test=${SCST_CLUSTER_TEST:-scst_cluster_alua_and_persistent_reservations_seen_from_the_initiator}
# The test file that holds it: seed 003's in tests/scst_cluster_aa.rs.
file=scst_cluster
if [ "$test" = scst_cluster_two_groups_active_active ]; then
  file=scst_cluster_aa
fi
cargo test --test "$file" --no-run
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for i in $(seq "$runs"); do
  echo "## run $i"
  cargo test --test "$file" -- --ignored --exact \
    "$test" --nocapture 2>&1 \
    | grep -E '^\||image built|LUN served|panicked|test result' | tee -a "$log"
done
if [ "$runs" -gt 1 ]; then
  median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "n/a"}'; }
  echo
  echo "| figure (median of $runs) | value |"
  echo "|---|---|"
  for f in 'planned switchover' 'switchover under writes' 'killed (QEMU quit)'; do
    label=$(grep -F "$f" "$log" | head -n1 | awk -F'|' '{print $2}' | sed 's/^ *//;s/ *$//')
    echo "| $label | $(grep -F "$f" "$log" | awk -F'|' '{print $3}' | tr -d ' s' | median) s |"
  done
fi
