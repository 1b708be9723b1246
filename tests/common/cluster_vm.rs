//! The VMs of the cluster lab (tests/common/cluster.rs): how a node's QEMU is wired
//! (user networking with the iSCSI and control shell forwards, the two UDP socket links,
//! its DRBD disk, with sbd the shared disk and the watchdog), kept per pair so that a
//! node can be restarted on the same disks, links and ports.

use super::cluster::{mac, Lab, Node, CTL_PORT, NAMES};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// `N` distinct free UDP ports on 127.0.0.1 (all bound at once, then released).
pub fn free_udp_ports<const N: usize>() -> [u16; N] {
    let socks: Vec<std::net::UdpSocket> = (0..N)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("a free UDP port"))
        .collect();
    std::array::from_fn(|k| socks[k].local_addr().expect("a bound UDP socket").port())
}

/// Where a pair's VMs run and how they are wired, kept so that a node can be restarted
/// on the same disks, links and forwarded ports ([`Pair::restart`]).
pub struct Wiring {
    pub dir: PathBuf,
    /// Each node's DRBD backing disk.
    pub disks: [PathBuf; 2],
    /// Each node's backing disks of the further DRBD resources (the lab's second and
    /// later `[[drbd]]`), attached after the sbd disk: /dev/vdb, … without sbd.
    pub more_disks: Vec<[PathBuf; 2]>,
    /// The shared sbd disk (with sbd fencing).
    pub sbd: Option<PathBuf>,
    /// The UDP port of each node's end of links 0 and 1 (`[node][link]`): datagram
    /// links survive the restart of either end (a TCP socket link dies with its
    /// listening side).
    pub links: [[u16; 2]; 2],
    /// Each node's forwarded iSCSI and control shell ports (the writer keeps its
    /// portals across a restart).
    pub iscsi: [u16; 2],
    pub ctl: [u16; 2],
}

/// Starts node `i`'s VM from the image in `image`: user networking (iSCSI and control
/// shell forwards), the two links, its DRBD disk and, with sbd, the shared sbd disk and
/// the watchdog. `generation` > 0 (a restart) names its own serial log and monitor.
pub fn start_vm(lab: &Lab, image: &Path, w: &Wiring, i: usize, generation: u32) -> Node {
    let name = NAMES[i];
    let (iscsi, ctl) = (w.iscsi[i], w.ctl[i]);
    let file = |what: &str| match generation {
        0 => w.dir.join(format!("{name}.{what}")),
        g => w.dir.join(format!("{name}.{g}.{what}")),
    };
    let (serial, monitor, initrd) = (file("serial"), file("monitor"), file("initrd"));
    // The public initramfs followed by this node's secrets archive.
    let mut data = std::fs::read(image.join("initramfs.cpio.zst")).unwrap();
    // The kernel looks for the next archive at a 4-byte boundary (zeros are skipped).
    data.resize(data.len().next_multiple_of(4), 0);
    data.extend(std::fs::read(lab.t.join(format!("rendered/{name}/secrets/initrd.cpio"))).unwrap());
    std::fs::write(&initrd, data).unwrap();
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-accel", "tcg", "-m", "768", "-smp", "1", "-display", "none"])
        .args(["-no-reboot", "-nodefaults"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .arg("-monitor")
        .arg(format!("unix:{},server,nowait", monitor.display()))
        .arg("-kernel")
        .arg(image.join("vmlinuz"))
        .arg("-initrd")
        .arg(&initrd)
        // clocksource=hpet: on a loaded host the kernel's TSC calibration can go wrong
        // under TCG (seen: "PIT calibration deviates from HPET", a 48 MHz TSC on a
        // 2.6 GHz host), and a TSC clock then runs ~50 times too fast: Corosync's
        // token timed out in a loop, the cluster never settled. QEMU's HPET counts
        // the virtual clock, which stays true.
        .arg("-append")
        .arg(format!(
            "console=ttyS0 panic=-1 clocksource=hpet sanforge.node={name}"
        ))
        .arg("-netdev")
        .arg(format!(
            "user,id=u0,restrict=on,hostfwd=tcp:127.0.0.1:{iscsi}-:3260,hostfwd=tcp:127.0.0.1:{ctl}-:{CTL_PORT}"
        ))
        .arg("-device")
        .arg(format!("virtio-net-pci,netdev=u0,mac={}", mac(name, 0)));
    for l in 0..2 {
        let (local, remote) = (w.links[i][l], w.links[1 - i][l]);
        c.arg("-netdev")
            .arg(format!(
                "socket,id=l{l},udp=127.0.0.1:{remote},localaddr=127.0.0.1:{local}"
            ))
            .arg("-device")
            .arg(format!(
                "virtio-net-pci,netdev=l{l},mac={}",
                mac(name, l as u8 + 1)
            ));
    }
    // Both disks as explicit devices, in this order: /dev/vda backs DRBD, /dev/vdb is
    // sbd's (an `if=virtio` drive would be created after every -device, i.e. after
    // the sbd disk, and take vdb).
    c.arg("-drive")
        .arg(format!(
            "file={},format=raw,if=none,id=d0",
            w.disks[i].display()
        ))
        .args(["-device", "virtio-blk-pci,drive=d0"]);
    if let Some(sbd) = &w.sbd {
        // One file, opened by both VMs: no image locking, and the device says the
        // sharing is intended. A guest reset (sbd, the watchdog) ends the VM
        // (`-no-reboot`): that is how the test sees a fence.
        c.arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=sbd,file.locking=off",
                sbd.display()
            ))
            .args(["-device", "virtio-blk-pci,drive=sbd,share-rw=on"])
            .args(["-device", "i6300esb", "-action", "watchdog=reset"]);
    }
    for (k, d) in w.more_disks.iter().enumerate() {
        c.arg("-drive")
            .arg(format!(
                "file={},format=raw,if=none,id=d{}",
                d[i].display(),
                k + 1
            ))
            .args(["-device", &format!("virtio-blk-pci,drive=d{}", k + 1)]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = c.spawn().expect("qemu-system-x86_64");
    Node {
        name,
        child,
        serial,
        monitor,
        iscsi: SocketAddr::from(([127, 0, 0, 1], iscsi)),
        ctl: SocketAddr::from(([127, 0, 0, 1], ctl)),
        started: Instant::now(),
        killed: false,
    }
}
