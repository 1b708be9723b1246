#!/usr/bin/env bash
# Server-hardware figures (issue 12): boot-to-ready of the default image under TCG on
# q35 with two bonded e1000e NICs, a MegaRAID HBA with two disks and an NVMe drive;
# the bond's failover as the host's iSCSI writer sees it (the longest stall of the
# write stream after `set_link nic0 off`; goal under 1 s with miimon 100); VLAN 100
# with MTU 9000 between two VMs. Runs tests/server_boot.rs, which prints the tables.
# Usage: benches/server.sh   (three QEMU VMs under TCG one after the other, minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
# --release: the image carries the release sanforge-init, as a built image does (the
# debug one is three times larger, and the kernel unpacks the initramfs under TCG).
cargo test --release --test server_boot -- --nocapture --test-threads 1 2>&1 \
  | grep -E '^\||image built|boot to ready|LUN:|panicked|test result'
