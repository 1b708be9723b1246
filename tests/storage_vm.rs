//! Storage before targets, in QEMU (issue 12): the default recipe's image with a test
//! node config that assembles an md RAID1 of two virtio disks (`/dev/disk/by-id/
//! virtio-d0`, `virtio-d1`) with Debian's mdadm, activates LVM volume group `vg0` on
//! it with Debian's lvm2 and exports `/dev/vg0/lun0` over LIO iSCSI, with the targets'
//! state on the `SANFORGE-STATE` partition of the build's own disk.img.
//!
//! 1. Boot `mkraid` (both disks blank): a one-shot test service creates the array, the
//!    VG and the LV with the image's own mdadm and lvm, writes a marker at the LV's
//!    first block, stops them cleanly and reboots (QEMU ends: `-no-reboot`).
//! 2. Boot `raid` with `virtio-d1` missing: the node reaches ready, the console names
//!    the missing disk, the array runs degraded, the LUN is served from the surviving
//!    disk (the marker reads back over iSCSI), and LUN 1, whose disk is absent, is not
//!    served. The initiator registers a key with APTPL and takes a reservation; a
//!    control shell (test-only) reboots the node cleanly.
//! 3. Boot `raid` again with the same disks: the registration and the reservation are
//!    still there (restored from `pr/aptpl_SERIAL` on the state partition).
//!
//! Prints the wall time of each boot. Needs the packages `.ci/setup` installs and the
//! default recipe's kernel (built into the shared cache on first use).

mod common;

use common::iscsi::Session;
use common::qemu::{blank_disk, Disk, Guest};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TARGET: &str = "iqn.2026-11.org.example.sanforge:raid";
const INITIATOR: &str = "iqn.2026-11.org.example:initiator";
const MARKER: &[u8] = b"SANFORGE-RAID1-MARKER";
const KEY: u64 = 0x5a4e_f0a6_e000_0001;
const CTL_PORT: u16 = 7000;
const BOOT: Duration = Duration::from_secs(300);

const MKRAID: &str = r#"hostname = "mkraid"
[modules]
load = ["raid1"]
# lvm.conf for a node without udev rules for device-mapper (the init writes it for
# [storage] lvm); activating vg0 fails on this boot: it does not exist yet.
[storage]
lvm = [{ vg = "vg0" }]
[[services]]
name = "mkraid"
restart = "never"
env = { MDADM_NO_UDEV = "1" }
argv = ["/bin/sh", "-c", """
exec > /dev/console 2>&1
set -x
r=failed
mdadm --create /dev/md/data --run --assume-clean --level=1 --raid-devices=2 --metadata=1.2 /dev/disk/by-id/virtio-d0 /dev/disk/by-id/virtio-d1 &&
lvm pvcreate -y /dev/md/data &&
lvm vgcreate -y vg0 /dev/md/data &&
lvm lvcreate -y -L 16m -n lun0 vg0 &&
printf SANFORGE-RAID1-MARKER > /dev/vg0/lun0 &&
sync &&
lvm vgchange -an vg0 &&
mdadm --stop /dev/md/data &&
r=ok
# Printed as the console shows it only when run (the words differ from this text).
echo "MKRAID" "RESULT=$r"
[ $r = ok ] && kill -USR1 1
"""]
"#;

const RAID: &str = r#"hostname = "raid"
[modules]
load = ["target_core_mod", "target_core_iblock", "iscsi_target_mod"]
[storage]
device-timeout = "3s"
[[storage.md]]
name = "data"
level = "raid1"
devices = ["/dev/disk/by-id/virtio-d0", "/dev/disk/by-id/virtio-d1"]
[[storage.lvm]]
vg = "vg0"

[[network.interfaces]]
name = "eth0"
addresses = ["192.0.2.15/24"]

[[lio.backstores]]
name = "lun0"
kind = "block"
path = "/dev/vg0/lun0"
serial = "sanforge-raid-lun0"
[[lio.backstores]]
name = "absent"
kind = "block"
path = "/dev/disk/by-id/virtio-absent"

[[lio.iscsi]]
iqn = "iqn.2026-11.org.example.sanforge:raid"
portals = ["0.0.0.0:3260"]
luns = [{ lun = 0, backstore = "lun0" }, { lun = 1, backstore = "absent" }]
acls = [{ initiator = "iqn.2026-11.org.example:initiator" }]

# Test-only: a control shell, to reboot the node cleanly from the host.
[[services]]
name = "test-ctl"
argv = ["/bin/busybox", "nc", "-ll", "-p", "7000", "-e", "/bin/sh"]
restart = "always"
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test project: the default recipe with the two node configs above (`raid` the
/// default, `mkraid` by `sanforge.node=mkraid`) and a faster initramfs compression.
fn prepare_project(t: &Path) {
    let r = repo();
    for d in ["kernel-configs", "overlays"] {
        std::os::unix::fs::symlink(r.join(d), t.join(d)).unwrap();
    }
    std::fs::create_dir_all(t.join("recipes")).unwrap();
    std::fs::create_dir_all(t.join("nodes")).unwrap();
    std::fs::write(t.join("nodes/raid.toml"), RAID).unwrap();
    std::fs::write(t.join("nodes/mkraid.toml"), MKRAID).unwrap();
    let recipe = std::fs::read_to_string(r.join("recipes/storage-node.toml")).unwrap();
    let recipe = recipe
        .replace(
            "config = \"recipes/nodes/storage-node.toml\"",
            "config = \"nodes/raid.toml\"\nconfigs = [\"nodes\"]",
        )
        .replace("zstd-level = 19", "zstd-level = 3");
    assert!(recipe.contains("configs = [\"nodes\"]") && recipe.contains("zstd-level = 3"));
    let recipe = format!("allow-outside-project = [\"{}\"]\n{recipe}", r.display());
    std::fs::write(t.join("recipes/raid.toml"), recipe).unwrap();
    std::fs::copy(
        r.join("recipes/storage-node.lock"),
        t.join("recipes/raid.lock"),
    )
    .unwrap();
}

fn free_port() -> u16 {
    common::vm::free_port()
}

/// PERSISTENT RESERVE OUT `sa` with a 24-byte parameter list.
fn prout(s: &mut Session, sa: u8, scope_type: u8, key: u64, sa_key: u64, aptpl: bool) {
    let mut cdb = [0u8; 10];
    cdb[0] = 0x5f;
    cdb[1] = sa;
    cdb[2] = scope_type;
    cdb[8] = 24;
    let mut p = [0u8; 24];
    p[0..8].copy_from_slice(&key.to_be_bytes());
    p[8..16].copy_from_slice(&sa_key.to_be_bytes());
    p[20] = u8::from(aptpl);
    s.command("PERSISTENT RESERVE OUT", &cdb, &p, 0)
        .unwrap_or_else(|e| panic!("PROUT service action {sa}: {e}"));
}

/// PERSISTENT RESERVE IN `sa`.
fn prin(s: &mut Session, sa: u8) -> Vec<u8> {
    let cdb = [0x5e, sa, 0, 0, 0, 0, 0, 0x01, 0x00, 0];
    s.command("PERSISTENT RESERVE IN", &cdb, &[], 256)
        .unwrap_or_else(|e| panic!("PRIN service action {sa}: {e}"))
}

/// The registered keys (READ KEYS).
fn keys(s: &mut Session) -> Vec<u64> {
    let d = prin(s, 0);
    let len = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
    d[8..8 + len]
        .chunks(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

/// The reservation (READ RESERVATION): (holder's key, scope/type), if any.
fn reservation(s: &mut Session) -> Option<(u64, u8)> {
    let d = prin(s, 1);
    let len = u32::from_be_bytes(d[4..8].try_into().unwrap());
    (len >= 16).then(|| (u64::from_be_bytes(d[8..16].try_into().unwrap()), d[21]))
}

/// The LUNs the target reports (REPORT LUNS).
fn report_luns(s: &mut Session) -> Vec<u16> {
    let cdb = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0];
    let d = s.command("REPORT LUNS", &cdb, &[], 1024).unwrap();
    let len = u32::from_be_bytes(d[0..4].try_into().unwrap()) as usize;
    d[8..8 + len]
        .chunks(8)
        .map(|c| u16::from_be_bytes([c[0] & 0x3f, c[1]]))
        .collect()
}

fn login(port: u16) -> Session {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut last = None;
    for _ in 0..30 {
        match Session::login(addr, TARGET, INITIATOR, Duration::from_secs(20)) {
            Ok(mut s) => {
                s.clear_unit_attentions(5).unwrap();
                return s;
            }
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("iSCSI login to 127.0.0.1:{port} failed: {last:?}");
}

/// Boots `node` with `disks`; iSCSI and the control shell forwarded.
fn boot(t: &Path, out: &Path, node: &str, n: u32, disks: &[Disk]) -> (Guest, u16, u16) {
    let (iscsi, ctl) = (free_port(), free_port());
    let g = Guest::start(
        out,
        &t.join(format!("console-{n}-{node}.log")),
        &format!("sanforge.node={node}"),
        disks,
        &[(iscsi, 3260), (ctl, CTL_PORT)],
    );
    (g, iscsi, ctl)
}

#[test]
fn degraded_raid1_serves_the_survivor_and_reservations_survive_a_reboot() {
    if common::skip_e2e("degraded_raid1_serves_the_survivor_and_reservations_survive_a_reboot") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    prepare_project(t);
    let out = t.join("out");
    let started = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge"))
        .current_dir(t)
        .env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"))
        .env("SANFORGE_PROGRESS", "plain")
        .args(["build", "recipes/raid.toml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", common::vm::show(&o));
    eprintln!("build: {:.1} s", started.elapsed().as_secs_f64());

    let (d0, d1) = (t.join("d0.img"), t.join("d1.img"));
    blank_disk(&d0, 64);
    blank_disk(&d1, 64);
    // The node's boot disk: the build's disk.img, whose SANFORGE-STATE partition holds
    // the targets' state.
    let bootdisk = t.join("boot.img");
    std::fs::copy(out.join("disk.img"), &bootdisk).unwrap();

    // 1. Make the array, the VG and the LV with the image's own tools.
    let (mut g, _, _) = boot(
        t,
        &out,
        "mkraid",
        1,
        &[
            Disk::new(&d0, "d0"),
            Disk::new(&d1, "d1"),
            Disk::new(&bootdisk, "boot"),
        ],
    );
    g.wait_for("MKRAID RESULT=", BOOT)
        .unwrap_or_else(|c| panic!("{c}"));
    assert!(g.console().contains("MKRAID RESULT=ok"), "{}", g.console());
    assert!(
        g.wait_exit(Duration::from_secs(60)),
        "mkraid did not reboot:\n{}",
        g.console()
    );
    eprintln!(
        "boot 1 (mkraid): {:.1} s",
        g.started.elapsed().as_secs_f64()
    );
    drop(g);

    // 2. One disk missing.
    let disks = [Disk::new(&d0, "d0"), Disk::new(&bootdisk, "boot")];
    let (mut g, iscsi, ctl) = boot(t, &out, "raid", 2, &disks);
    let ready = g
        .wait_for("sanforge-init: ready", BOOT)
        .unwrap_or_else(|c| panic!("{c}"));
    eprintln!("boot 2 (degraded) to ready: {:.1} s", ready.as_secs_f64());
    let console = g.console();
    for want in [
        "missing /dev/disk/by-id/virtio-d1 (not present)",
        "DEGRADED",
        "lvm vg0: activated, 1 LV: /dev/vg0/lun0",
        "backstore `absent` not created: /dev/disk/by-id/virtio-absent is not present",
        "1 of 2 LUNs served (0)",
        "md   data /dev/md",
        "MISSING /dev/disk/by-id/virtio-d1 (not present)",
        "lun  lio absent NOT SERVED",
        "target state on /dev/vdb",
    ] {
        assert!(
            console.contains(want),
            "no `{want}` on the console:\n{console}"
        );
    }
    for l in console.lines().filter(|l| {
        l.starts_with("sanforge-init:   md")
            || l.starts_with("sanforge-init:   vg")
            || l.starts_with("sanforge-init:   lun")
            || l.starts_with("sanforge-init:   state")
    }) {
        eprintln!("{l}");
    }
    let mut s = login(iscsi);
    assert_eq!(report_luns(&mut s), vec![0], "only LUN 0 is served");
    let block = s.read10(0, 1, 512).unwrap();
    assert_eq!(
        &block[..MARKER.len()],
        MARKER,
        "LBA 0 of the LUN from the surviving disk"
    );
    // Register with APTPL, then a Write Exclusive reservation.
    prout(&mut s, 0x00, 0x00, 0, KEY, true);
    prout(&mut s, 0x01, 0x01, KEY, 0, false);
    assert_eq!(keys(&mut s), vec![KEY]);
    assert_eq!(reservation(&mut s), Some((KEY, 0x01)));
    drop(s);
    // A clean reboot (the init's shutdown: ports disabled, services stopped, sync).
    let mut c = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], ctl))).unwrap();
    c.write_all(b"kill -USR1 1\n").unwrap();
    drop(c);
    assert!(
        g.wait_exit(Duration::from_secs(120)),
        "no reboot:\n{}",
        g.console()
    );
    drop(g);

    // 3. The same disks again: the registration and the reservation are back.
    let (mut g, iscsi, _) = boot(t, &out, "raid", 3, &disks);
    let ready = g
        .wait_for("sanforge-init: ready", BOOT)
        .unwrap_or_else(|c| panic!("{c}"));
    eprintln!(
        "boot 3 (after reboot) to ready: {:.1} s",
        ready.as_secs_f64()
    );
    let console = g.console();
    assert!(
        console.contains("backstore `lun0`: 1 of 1 persistent reservation registrations restored"),
        "{console}"
    );
    let mut s = login(iscsi);
    assert_eq!(
        keys(&mut s),
        vec![KEY],
        "registration after the reboot\n{console}"
    );
    assert_eq!(
        reservation(&mut s),
        Some((KEY, 0x01)),
        "reservation after the reboot"
    );
    eprintln!("total: {:.1} s", started.elapsed().as_secs_f64());
}
