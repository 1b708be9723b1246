#!/usr/bin/env bash
# Two-node failover figures (issues 5, 14): image build, boot to cluster-ready per node,
# planned switchover and unplanned failover (primary VM killed) until the LUN serves
# I/O again, acknowledged writes lost, the test's wall time. Runs the failover test of
# tests/failover.rs RUNS times (default 5) and prints each run's table, then the median
# switchover and failover.
# With --logs DIR, each run saves the nodes' logs in DIR/run-N (SANFORGE_FAILOVER_LOGS)
# and benches/failover-steps.sh prints its per-step breakdown, and the medians add the
# switchover as seed 004 measured it, in the cluster's log: from the move constraint
# landing in the CIB to I/O again (the rest is the move command itself). With --agent linbit the
# cluster runs DRBD under LINBIT's ocf:linbit:drbd instead of ocf:sanforge:drbd
# (`drbd-agent` of the cluster file, SANFORGE_DRBD_AGENT), for a before/after. The
# switchover is the image's `sanforge-init switchover r0` (moves, waits, removes its
# constraint); with --move crm_resource it is Pacemaker's `crm_resource --move
# --promoted` then `--clear` (SANFORGE_SWITCHOVER), for a before/after. The host writer
# makes one WRITE every 10 ms; --pace MS sets another pace, --pace 0 writes as fast as
# acknowledged (SANFORGE_WRITER_PACE_MS; about 430 a second, which saturates both host
# cores under TCG and slows every process in the guest 4 to 7 times).
# Usage: benches/failover.sh [--logs DIR] [--agent sanforge|linbit] [--move sanforge|crm_resource] [--pace MS] [RUNS]   (two QEMU VMs under TCG, a few
# minutes per run; run it on an otherwise idle machine for figures)
set -euo pipefail
cd "$(dirname "$0")/.."
logs=
if [ "${1:-}" = --logs ]; then
  logs=$(realpath -m "$2")
  shift 2
fi
if [ "${1:-}" = --agent ]; then
  export SANFORGE_DRBD_AGENT=$2
  echo "drbd agent: ocf:$2:drbd"
  shift 2
fi
if [ "${1:-}" = --move ]; then
  export SANFORGE_SWITCHOVER=$2
  echo "switchover command: $2"
  shift 2
fi
if [ "${1:-}" = --pace ]; then
  export SANFORGE_WRITER_PACE_MS=$2
  echo "writer pace: $2 ms (0: unpaced)"
  shift 2
fi
runs=${1:-5}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for i in $(seq "$runs"); do
  echo "## run $i"
  if [ -n "$logs" ]; then
    export SANFORGE_FAILOVER_LOGS="$logs/run-$i"
    rm -rf "$SANFORGE_FAILOVER_LOGS"
  fi
  cargo test --release --test failover -- --exact two_nodes_fail_over_without_losing_acknowledged_writes --nocapture 2>&1 \
    | grep -E '^\||image built|LUN served|panicked|test result' | tee -a "$log"
  if [ -n "$logs" ]; then
    benches/failover-steps.sh "$SANFORGE_FAILOVER_LOGS" | tee -a "$log" || true
  fi
done
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); else print "n/a"}'; }
echo
echo "| figure (median of $runs) | value |"
echo "|---|---|"
echo "| planned switchover to I/O again | $(grep 'planned switchover' "$log" | awk -F'|' '{print $3}' | tr -d ' s' | median) s |"
echo "| primary killed to I/O again | $(grep 'primary killed' "$log" | awk -F'|' '{print $3}' | tr -d ' s' | median) s |"
if [ -n "$logs" ]; then
  echo "| switchover from the move constraint in the CIB to I/O again (seed 004's log measure) | $(grep -o 'constraint in the CIB to I/O again: [0-9.]*' "$log" | awk '{print $NF}' | median) s |"
  echo "| the move command until its constraint lands | $(grep -o 'the move command itself: [0-9.]*' "$log" | awk '{print $NF}' | median) s |"
fi
