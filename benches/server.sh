#!/usr/bin/env bash
# Server-hardware figures (issue 12): boot-to-ready of the default image under TCG on
# q35 with two bonded e1000e NICs, a MegaRAID HBA with two disks and an NVMe drive;
# the bond's failover as the host's iSCSI writer sees it (the longest stall of the
# write stream after `set_link nic0 off`; goal under 1 s with miimon 100); VLAN 100
# with MTU 9000 between two VMs. Runs tests/server_boot.rs, which prints the tables.
# With RUNS > 1, the server boot test runs RUNS times and the boot-to-ready figures
# end with their median (the goal: under 5 s).
# Usage: benches/server.sh [RUNS]   (QEMU VMs under TCG one after the other, minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
# --release: the image carries the release sanforge-init, as a built image does (the
# debug one is three times larger, and the kernel unpacks the initramfs under TCG).
cargo test --release --test server_boot --no-run -q 2>/dev/null || cargo test --release --test server_boot --no-run
if [ "$runs" -le 1 ]; then
  cargo test --release --test server_boot -- --nocapture --test-threads 1 2>&1 \
    | grep -E '^\||image built|boot to ready|LUN:|panicked|test result'
  exit
fi
ready=()
for i in $(seq "$runs"); do
  out=$(cargo test --release --test server_boot -- --exact \
    server_hardware_boots_serves_a_lun_and_the_bond_fails_over_under_writes --nocapture 2>&1)
  r=$(printf '%s\n' "$out" | sed -n 's/^boot to ready with server hardware: \([0-9.]*\) s$/\1/p')
  [ -n "$r" ] || { printf '%s\n' "$out" | tail -40 >&2; exit 1; }
  echo "| run $i: boot to ready | $r s |"
  ready+=("$r")
done
median=$(printf '%s\n' "${ready[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
echo "| boot to ready, median of $runs | $median s |"
