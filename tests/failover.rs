//! Two-node failover in QEMU (issues 5 and 14): one image built from
//! `recipes/ha-node.toml` serves both nodes of `tests/fixtures/cluster/cluster-lio.toml`
//! (LIO iSCSI on DRBD, Corosync + Pacemaker, `ocf:sanforge:alua`). The nodes are linked
//! by two QEMU socket networks on 127.0.0.1 (Corosync links 0 and 1, DRBD on link 0);
//! each one's iSCSI portal is forwarded to a loopback port, where the initiator of
//! tests/common/iscsi.rs writes a verifiable pattern continuously, failing over between
//! the two portals as a multipath initiator would.
//!
//! * `two_nodes_fail_over_without_losing_acknowledged_writes` (in `cargo test`, about
//!   3 minutes with the kernel cached; `SANFORGE_SKIP_E2E=1` skips it): the
//!   planned switchover (`crm_resource --move --promoted`), then a power loss of the new
//!   primary (QEMU monitor `quit`); the acknowledged writes that do not read back
//!   intact afterwards must be 0. Prints boot, switchover and failover times.
//! * `lvm_on_drbd_switches_over_without_losing_acknowledged_writes` (ignored, about
//!   3 to 9 minutes): the same cluster with the LUN on an LV of a VG on DRBD
//!   (`cluster-lio-lvm.toml`): day 0 (PV, VG, LV made on the Primary), then a planned
//!   switchover under writes; ocf:heartbeat:LVM-activate moves the VG with its system
//!   ID; no acknowledged write may be lost.
//! * `fault_matrix` (ignored; `benches/fault-matrix.sh`): one scenario per row of the
//!   fault matrix (`reference/ha.md` §5) on a fresh pair with sbd fencing (a shared raw
//!   disk opened by both VMs with `share-rw=on`, the i6300esb watchdog), a writer
//!   throughout, each row reporting whether its expected outcome was met, the I/O stall
//!   the writer saw, the acknowledged writes lost and whether a node was fenced (its VM
//!   reset itself: with `-no-reboot` QEMU exits instead of rebooting).
//!
//! Test-only: each VM gets a control shell (`busybox nc -ll -e /bin/sh`, forwarded to a
//! loopback port), which shipped images never have, and the secrets initrd
//! (`NODE/secrets/initrd.cpio` from `sanforge cluster render`) is appended to the
//! public initramfs, as a second initrd would be on a real PXE server. With sbd the
//! operator's once-per-disk step (`sbd -d DISK create`, like DRBD's `create-md`) runs
//! on alpha before its sbd starts (sbd refuses to create slots on a host file).

mod common;

use common::iscsi::{self, Portal, Progress, Report, Writer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const INITIATOR: &str = "iqn.2026-11.org.example:host";
const BLOCK: usize = 512;
const NBLOCKS: u64 = 2048;
const CTL_PORT: u16 = 7000;
const NAMES: [&str; 2] = ["alpha", "beta"];
/// The cluster the CI test and the fault matrix boot.
const LIO_FIXTURE: &str = "cluster-lio.toml";
/// The same cluster with LVM on DRBD (`[[lvm]] vg = "vgha"`, the LUN on `lv = "lun0"`).
const LVM_FIXTURE: &str = "cluster-lio-lvm.toml";
/// The sbd disk as the guests see it: the second virtio disk (the first backs DRBD).
const SBD_DISK: &str = "/dev/vdb";

fn sanforge(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(dir);
    c.env("SANFORGE_PROGRESS", "plain");
    c
}

fn run_ok(c: &mut Command) -> String {
    let o = c.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{c:?} failed:\n{text}");
    text
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How the test cluster fences: the fixture's `[fencing]` (off), or sbd on a shared
/// disk with the i6300esb watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fencing {
    Off,
    Sbd,
}

/// One VM; killed when dropped.
struct Node {
    name: &'static str,
    child: Child,
    serial: PathBuf,
    monitor: PathBuf,
    iscsi: SocketAddr,
    ctl: SocketAddr,
    started: Instant,
    /// Set when the test itself ended the VM (power loss); a VM that exits without
    /// it reset itself: fenced.
    killed: bool,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn log(&self) -> String {
        std::fs::read(&self.serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the serial log holds `needle`; the time since the VM started.
    fn wait_log(&self, needle: &str, timeout: Duration) -> Option<Duration> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return Some(self.started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }

    /// Runs a shell command in the guest through the test-only control shell.
    fn sh(&self, cmd: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.ctl, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(format!("exec 2>&1; {cmd}; exit\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// Cluster, DRBD and LIO state as the node sees it (for failure messages).
    fn state(&self) -> String {
        let cmd = "crm_mon -1 -r; cat /proc/drbd; ls /sys/kernel/config/target/core; \
                   ls /sys/kernel/config/target/iscsi/*/tpgt_1/lun; \
                   cat /sys/kernel/config/target/iscsi/*/tpgt_1/enable; \
                   cat /sys/kernel/config/target/core/iblock_*/*/alua/*/alua_access_state; \
                   grep -i 'alua(' /var/log/pacemaker/pacemaker.log | tail -n 15; \
                   tail -n 30 /var/log/pacemaker/pacemaker.log | grep -i 'alua\\|error\\|warn\\|fenc\\|stonith'";
        format!(
            "--- {} ---\n{}",
            self.name,
            self.sh(cmd)
                .unwrap_or_else(|e| format!("control shell: {e}"))
        )
    }

    /// A QEMU monitor command; its answer.
    fn monitor(&self, cmd: &str) -> String {
        let Ok(mut m) = UnixStream::connect(&self.monitor) else {
            return String::new();
        };
        let _ = m.set_read_timeout(Some(Duration::from_millis(500)));
        let _ = m.write_all(format!("{cmd}\n").as_bytes());
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = m.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether the VM is gone.
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Whether the VM reset itself (sbd or its watchdog): fenced.
    fn fenced(&mut self) -> bool {
        !self.killed && self.exited()
    }

    /// QEMU monitor `quit`: the VM is gone at once, as on a power loss.
    /// Keeps the monitor connection open until QEMU exits (a monitor that sees its
    /// client go away at once may drop the command); SIGKILL, the same power loss,
    /// if it is still there after 10 s.
    fn quit(&mut self) {
        self.killed = true;
        if let Ok(mut m) = UnixStream::connect(&self.monitor) {
            let _ = m.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = m.write_all(b"quit\n");
            let mut sink = Vec::new();
            let _ = m.read_to_end(&mut sink);
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The mac of a node's NIC `i` (eth0 = user networking; eth1/eth2 as in the fixture).
fn mac(node: &str, i: u8) -> String {
    let n = if node == "alpha" { "0a" } else { "0b" };
    format!("52:54:00:00:{n}:{i:02x}")
}

/// A built image and the rendered cluster it serves, in a temporary project.
struct Lab {
    _tmp: tempfile::TempDir,
    t: PathBuf,
    out: PathBuf,
    fencing: Fencing,
    build_time: Duration,
}

impl Lab {
    /// Renders the LIO fixture (with `fencing`), builds the image; panics with the
    /// builder's output on failure.
    fn build(fencing: Fencing) -> Lab {
        Lab::build_from(LIO_FIXTURE, fencing)
    }

    /// [`Lab::build`] for the cluster file `fixture` of tests/fixtures/cluster/.
    fn build_from(fixture: &str, fencing: Fencing) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().to_path_buf();
        prepare_project(&t, fixture, fencing);
        let out = t.join("out");
        let b0 = Instant::now();
        run_ok(
            sanforge(&t)
                .args(["build", "recipes/ha.toml", "--out"])
                .arg(&out),
        );
        let build_time = b0.elapsed();
        eprintln!("image built in {:.1} s", build_time.as_secs_f64());
        Lab {
            _tmp: tmp,
            t,
            out,
            fencing,
            build_time,
        }
    }

    /// Boots both nodes on fresh disks and waits until the cluster serves the LUN.
    fn boot(&self, tag: &str) -> Pair {
        let mut pair = self.boot_nodes(tag);
        skip_initial_sync_of(&pair);
        wait_lun_served(&mut pair);
        pair
    }

    /// Boots both nodes on fresh disks and waits until both are cluster members.
    fn boot_nodes(&self, tag: &str) -> Pair {
        let dir = self.t.join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let disks = make_disks(&dir);
        let sbd = (self.fencing == Fencing::Sbd).then(|| {
            let p = dir.join("sbd.img");
            std::fs::File::create(&p).unwrap().set_len(8 << 20).unwrap();
            p
        });
        let links = [free_port(), free_port()];
        let alpha = start_vm(self, &dir, "alpha", links, true, &disks[0], sbd.as_deref());
        std::thread::sleep(Duration::from_millis(300));
        let beta = start_vm(self, &dir, "beta", links, false, &disks[1], sbd.as_deref());
        let portals = [&alpha, &beta]
            .iter()
            .zip(NAMES)
            .map(|(n, name)| {
                Portal::new(n.iscsi, &format!("iqn.2026-11.org.example:sanlio.{name}"))
            })
            .collect();
        let mut pair = Pair {
            nodes: [Some(alpha), Some(beta)],
            portals,
            boot: Vec::new(),
            served_after: Duration::ZERO,
        };
        for i in 0..2 {
            let n = pair.node(i);
            let ready = n.wait_log("sanforge-init: ready", Duration::from_secs(300));
            let settled = n.wait_log("ha: cluster settled", Duration::from_secs(300));
            assert!(
                ready.is_some() && settled.is_some(),
                "{} did not settle\n{}",
                n.name,
                pair.dump()
            );
            pair.boot.push((n.name, settled.unwrap()));
        }
        pair
    }
}

/// [`skip_initial_sync`] on alpha; panics with the cluster's state if it fails.
fn skip_initial_sync_of(pair: &Pair) {
    if let Err(e) = skip_initial_sync(pair.node(0)) {
        panic!(
            "{e}\n{}\n{}",
            pair.node(0).sh("crm_mon -1 -r").unwrap_or_default(),
            pair.dump()
        );
    }
}

/// Waits until one node serves the LUN (noting when), then until the cluster is idle.
fn wait_lun_served(pair: &mut Pair) {
    let Some(first) = wait_served(&pair.portals, Duration::from_secs(240)) else {
        panic!(
            "the LUN is not served by either node\n{}\n{}",
            pair.node(0).sh("crm_mon -1 -r").unwrap_or_default(),
            pair.dump()
        );
    };
    pair.served_after = pair.node(0).started.elapsed();
    eprintln!(
        "LUN served by {} {:.1} s after boot",
        NAMES[first],
        pair.served_after.as_secs_f64()
    );
    // The first promotion may still change hands while the two promotion scores
    // arrive (seen once: beta, then alpha): wait until the cluster has no pending
    // action; the primary is where the writer actually writes.
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
}

/// The two running nodes (`None` once one is gone for good) and their portals.
struct Pair {
    nodes: [Option<Node>; 2],
    portals: Vec<Portal>,
    boot: Vec<(&'static str, Duration)>,
    served_after: Duration,
}

impl Pair {
    fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node still running")
    }

    fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node still running")
    }

    fn dump(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(|n| format!("--- {} serial ---\n{}", n.name, n.log()))
            .collect()
    }

    fn states(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(Node::state)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The host writer, running on its own thread until [`Run::finish`].
struct Run {
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Report>,
}

impl Run {
    fn start(portals: &[Portal]) -> Run {
        let mut writer = Writer::new(portals.to_vec(), INITIATOR, 0, BLOCK, NBLOCKS);
        let progress = writer.progress();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || writer.run_until(&stop2));
        Run {
            progress,
            stop,
            handle,
        }
    }

    fn writes(&self) -> u64 {
        self.progress.writes.load(Ordering::Relaxed)
    }

    fn gaps(&self) -> u64 {
        self.progress.gaps.load(Ordering::Relaxed)
    }

    /// The portal the writer writes through (`usize::MAX` while it has none).
    fn portal(&self) -> usize {
        self.progress.portal.load(Ordering::Relaxed)
    }

    /// Waits until `n` more writes are acknowledged (at most `timeout`).
    fn advances(&self, n: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let w0 = self.writes();
        while self.writes() < w0 + n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.writes() >= w0 + n
    }

    /// After a fault: waits for the failure to show as a gap, then for writes to
    /// advance again; when they did (polled every 20 ms).
    fn resumed(&self, gaps_before: u64, timeout: Duration) -> Option<Instant> {
        let end = Instant::now() + timeout;
        while Instant::now() < end && self.gaps() <= gaps_before {
            std::thread::sleep(Duration::from_millis(20));
        }
        let w0 = self.writes();
        while Instant::now() < end {
            if self.writes() > w0 {
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the writer; its report and the read-back through `portal`: the blocks
    /// read, or the acknowledged writes that did not read back intact (or, first
    /// line "no portal served the read-back", why nothing could be read).
    fn finish(self, portals: &[Portal], portal: usize) -> (Report, Result<usize, Vec<String>>) {
        self.stop.store(true, Ordering::Relaxed);
        let report = self.handle.join().unwrap();
        let checked = iscsi::verify(
            &portals[portal..portal + 1],
            INITIATOR,
            0,
            BLOCK,
            &report,
            Duration::from_secs(10),
        );
        (report, checked)
    }
}

/// Starts node `name`'s VM: user networking (iSCSI and control shell forwards), the two
/// socket links, its DRBD disk and, with sbd, the shared sbd disk and the watchdog.
fn start_vm(
    lab: &Lab,
    dir: &Path,
    name: &'static str,
    links: [u16; 2],
    listen: bool,
    disk: &Path,
    sbd: Option<&Path>,
) -> Node {
    let iscsi = free_port();
    let ctl = free_port();
    let serial = dir.join(format!("{name}.serial"));
    let monitor = dir.join(format!("{name}.monitor"));
    // The public initramfs followed by this node's secrets archive.
    let initrd = dir.join(format!("{name}.initrd"));
    let mut data = std::fs::read(lab.out.join("initramfs.cpio.zst")).unwrap();
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
        .arg(lab.out.join("vmlinuz"))
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(format!("console=ttyS0 panic=-1 sanforge.node={name}"))
        .arg("-netdev")
        .arg(format!(
            "user,id=u0,restrict=on,hostfwd=tcp:127.0.0.1:{iscsi}-:3260,hostfwd=tcp:127.0.0.1:{ctl}-:{CTL_PORT}"
        ))
        .arg("-device")
        .arg(format!("virtio-net-pci,netdev=u0,mac={}", mac(name, 0)));
    for (i, port) in links.iter().enumerate() {
        let mode = if listen { "listen" } else { "connect" };
        c.arg("-netdev")
            .arg(format!("socket,id=l{i},{mode}=127.0.0.1:{port}"))
            .arg("-device")
            .arg(format!(
                "virtio-net-pci,netdev=l{i},mac={}",
                mac(name, i as u8 + 1)
            ));
    }
    // Both disks as explicit devices, in this order: /dev/vda backs DRBD, /dev/vdb is
    // sbd's (an `if=virtio` drive would be created after every -device, i.e. after
    // the sbd disk, and take vdb).
    c.arg("-drive")
        .arg(format!("file={},format=raw,if=none,id=d0", disk.display()))
        .args(["-device", "virtio-blk-pci,drive=d0"]);
    if let Some(sbd) = sbd {
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

/// The cluster file `fixture` with its `[fencing]` table for `fencing`.
fn cluster_file(fixture: &str, fencing: Fencing) -> String {
    let text =
        std::fs::read_to_string(repo().join("tests/fixtures/cluster").join(fixture)).unwrap();
    match fencing {
        Fencing::Off => text,
        Fencing::Sbd => {
            let start = text.find("[fencing]\n").unwrap();
            let end = text[start..].find("\n[[node]]").unwrap() + start;
            // 10 s: sbd's own loop must not miss it under TCG on a loaded host.
            format!(
                "{}[fencing]\nmode = \"sbd\"\nwatchdog = \"/dev/watchdog\"\ndevices = [\"{SBD_DISK}\"]\nwatchdog-timeout = 10\n{}",
                &text[..start],
                &text[end..]
            )
        }
    }
}

/// Copies the repo pieces a build reads into `t` and writes the test recipe: the
/// ha-node recipe with the rendered cluster as node configs plus an overlay of the
/// rendered public files.
fn prepare_project(t: &Path, fixture: &str, fencing: Fencing) {
    let r = repo();
    for d in ["kernel-configs", "overlays"] {
        std::os::unix::fs::symlink(r.join(d), t.join(d)).unwrap();
    }
    std::fs::create_dir_all(t.join("recipes")).unwrap();
    std::fs::write(t.join("cluster.toml"), cluster_file(fixture, fencing)).unwrap();
    run_ok(sanforge(t).args([
        "cluster",
        "secrets",
        "--cluster",
        "cluster.toml",
        "--out",
        "cluster.secrets.toml",
    ]));
    run_ok(sanforge(t).args([
        "cluster",
        "render",
        "cluster.toml",
        "--secrets",
        "cluster.secrets.toml",
        "--out",
        "rendered",
    ]));
    // The public rendered files (identical on every node) as an overlay.
    let manifest = std::fs::read_to_string(t.join("rendered/alpha/MANIFEST")).unwrap();
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let Some((rel, rest)) = line.split_once(" -> ") else {
            continue;
        };
        let install = rest.split_whitespace().next().unwrap();
        if rel.starts_with("secrets/") || rel == "node.toml" {
            continue;
        }
        let dst = t
            .join("cluster-overlay")
            .join(install.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(t.join("rendered/alpha").join(rel), dst).unwrap();
    }
    // Test-only: eth0 (QEMU user networking, where the host's forwards arrive) and a
    // control shell on every node; with sbd, the disk's slots are created once (on
    // alpha, before its sbd starts; beta's waits for them).
    for n in NAMES {
        let p = t.join(format!("rendered/{n}/node.toml"));
        let mut text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("services = []\n", "");
        if fencing == Fencing::Sbd {
            let prepare = if n == "alpha" {
                format!("/usr/sbin/sbd -d {SBD_DISK} -1 10 -4 20 create")
            } else {
                format!("until /usr/sbin/sbd -d {SBD_DISK} dump >/dev/null; do sleep 1; done")
            };
            let argv = "argv = [\"/usr/sbin/sbd\", \"watch\"]";
            assert!(text.contains(argv), "{text}");
            text = text.replace(
                argv,
                &format!("argv = [\"/bin/sh\", \"-c\", \"{prepare} && exec /usr/sbin/sbd watch\"]"),
            );
        }
        let text = format!(
            "{text}\n[[network.interfaces]]\nname = \"eth0\"\naddresses = [\"10.0.2.15/24\"]\nmac = \"{}\"\n\n[[services]]\nname = \"test-ctl\"\nargv = [\"/bin/busybox\", \"nc\", \"-ll\", \"-p\", \"{CTL_PORT}\", \"-e\", \"/bin/sh\"]\nrestart = \"always\"\n",
            mac(n, 0)
        );
        std::fs::write(&p, text).unwrap();
    }
    let recipe = std::fs::read_to_string(r.join("recipes/ha-node.toml")).unwrap();
    let i = recipe.find("\n[node]").unwrap();
    let j = recipe[i + 1..].find("\n[").map(|j| i + 1 + j).unwrap();
    let recipe = format!(
        "{}\n[node]\nconfig = \"rendered/alpha/node.toml\"\nconfigs = [\"rendered\"]\n{}",
        &recipe[..i],
        &recipe[j..]
    )
    .replace(
        "overlays = [\"overlays/base\", \"overlays/ha\"]",
        "overlays = [\"overlays/base\", \"overlays/ha\", \"cluster-overlay\"]",
    );
    // The image is built for this run only: a fast zstd level saves most of the
    // rootfs stage (level 19 takes about a minute on a loaded host), the VMs unpack
    // either just as fast.
    assert!(recipe.contains("zstd-level = 19"), "{recipe}");
    let recipe = recipe.replace("zstd-level = 19", "zstd-level = 3");
    // kernel-configs/ and overlays/ link into the repository: the recipe opts in.
    let recipe = format!("allow-outside-project = [\"{}\"]\n{recipe}", r.display());
    std::fs::write(t.join("recipes/ha.toml"), recipe).unwrap();
    std::fs::copy(r.join("recipes/ha-node.lock"), t.join("recipes/ha.lock")).unwrap();
}

/// Two blank backing disks with DRBD 8.4 internal metadata (`drbdmeta create-md`, as
/// an operator does once per disk); the initial sync is skipped after the nodes
/// connect (see [`skip_initial_sync`]).
fn make_disks(t: &Path) -> [PathBuf; 2] {
    NAMES.map(|n| {
        let p = t.join(format!("{n}.img"));
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(64 << 20).unwrap();
        run_ok(
            Command::new("drbdmeta")
                .args(["--force", "0", "v08"])
                .arg(&p)
                .args(["internal", "create-md"]),
        );
        p
    })
}

/// DRBD's procedure for two blank disks: once both nodes are Connected and
/// Inconsistent, `new-current-uuid --clear-bitmap` on one of them makes both UpToDate
/// without a full sync; a refresh then lets the drbd agent report its promotion score
/// at once instead of at its next monitor.
fn skip_initial_sync(alpha: &Node) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    while Instant::now() < end {
        last = alpha.sh("cat /proc/drbd").unwrap_or_default();
        if last.contains("cs:Connected") && last.contains("ds:Inconsistent/Inconsistent") {
            let out = alpha
                .sh("drbdadm -- --clear-bitmap new-current-uuid r0/0 && crm_resource --refresh -r drbd-r0-clone")
                .map_err(|e| e.to_string())?;
            let end = Instant::now() + Duration::from_secs(20);
            let mut state = String::new();
            while Instant::now() < end {
                state = alpha.sh("cat /proc/drbd").unwrap_or_default();
                if state.contains("ds:UpToDate/UpToDate") {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            return Err(format!("after clear-bitmap:\n{out}\n{state}"));
        }
        if last.contains("ds:UpToDate/UpToDate") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("DRBD did not connect:\n{last}"))
}

/// Polls the portals until one serves LUN 0 (TEST UNIT READY succeeds): its index.
fn wait_served(portals: &[Portal], timeout: Duration) -> Option<usize> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        for (i, p) in portals.iter().enumerate() {
            if let Ok(mut s) =
                iscsi::Session::login(p.addr, &p.target, INITIATOR, Duration::from_secs(3))
            {
                let _ = s.clear_unit_attentions(3);
                if s.test_unit_ready().is_ok() && s.read_capacity10().is_ok() {
                    let _ = s.logout();
                    return Some(i);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

#[test]
fn two_nodes_fail_over_without_losing_acknowledged_writes() {
    if common::skip_e2e("two_nodes_fail_over_without_losing_acknowledged_writes") {
        return;
    }
    let t0 = Instant::now();
    let lab = Lab::build(Fencing::Off);
    let mut pair = lab.boot("run");
    let run = Run::start(&pair.portals);
    assert!(
        run.advances(30, Duration::from_secs(120)),
        "writes do not progress: {:?}\n{}",
        run.progress,
        pair.states()
    );
    // The planned switchover moves the Promoted role to the other node; then that
    // node (the primary by then) loses power.
    let first = run.portal();
    assert!(first < 2, "{:?}", run.progress);
    let other = 1 - first;
    let other_name = NAMES[other];

    // (a) Planned switchover: move the Promoted role to the other node.
    let gaps = run.gaps();
    let t_move = Instant::now();
    let moved = pair
        .node(0)
        .sh(&format!(
            "crm_resource --move --promoted -r drbd-r0-clone --node {other_name}"
        ))
        .unwrap_or_else(|e| format!("control shell: {e}"));
    let switchover = run
        .resumed(gaps, Duration::from_secs(120))
        .map(|r| r - t_move);
    assert!(
        switchover.is_some(),
        "I/O did not resume after the switchover\n{moved}\n{:?}\n{}",
        run.progress,
        pair.states()
    );
    assert_eq!(run.portal(), other, "writes did not move to {other_name}");
    // Drop the move constraint: the Promoted role must stay where it is (no
    // automatic failback), so writes keep going to the same portal. A failback would
    // start within the transition the clear triggers: `crm_resource --wait` waits
    // for it to end, then writes must still flow on the same portal with no new gap.
    let _ = pair.node(0).sh("crm_resource --clear -r drbd-r0-clone");
    let gaps_after_clear = run.gaps();
    let _ = pair.node(0).sh("crm_resource --wait --timeout=30s");
    assert!(
        run.advances(10, Duration::from_secs(60)),
        "writes do not progress on {other_name}"
    );
    assert_eq!(
        (run.gaps(), run.portal()),
        (gaps_after_clear, other),
        "clearing the move constraint moved the LUN back (automatic failback)\n{}",
        pair.node(0).sh("crm_mon -1").unwrap_or_default()
    );

    // (b) Unplanned: the primary loses power.
    let gaps = run.gaps();
    let t_kill = Instant::now();
    pair.node_mut(other).quit();
    let failover = run
        .resumed(gaps, Duration::from_secs(180))
        .map(|r| r - t_kill);
    assert!(
        failover.is_some(),
        "I/O did not resume on {} after {other_name} was killed\n{}\n{}",
        NAMES[first],
        pair.node(first).sh("crm_mon -1").unwrap_or_default(),
        pair.dump()
    );
    assert_eq!(run.portal(), first);
    assert!(
        run.advances(10, Duration::from_secs(60)),
        "writes do not progress on {}",
        NAMES[first]
    );
    let (report, checked) = run.finish(&pair.portals, first);
    let lost = checked.as_ref().err().map(Vec::len).unwrap_or(0);
    eprintln!("\n| figure | value |\n|---|---|");
    eprintln!("| image build | {:.1} s |", lab.build_time.as_secs_f64());
    for (n, d) in &pair.boot {
        eprintln!("| boot to cluster-ready, {n} | {:.1} s |", d.as_secs_f64());
    }
    eprintln!(
        "| boot to LUN served (first node) | {:.1} s |",
        pair.served_after.as_secs_f64()
    );
    eprintln!(
        "| planned switchover (crm_resource --move) to I/O again | {:.2} s |",
        switchover.unwrap().as_secs_f64()
    );
    eprintln!(
        "| primary killed (QEMU quit) to I/O again | {:.2} s |",
        failover.unwrap().as_secs_f64()
    );
    for g in &report.gaps {
        eprintln!(
            "| writer gap {:?} -> {:?} | {:.2} s ({} attempts) |",
            g.from,
            g.to,
            g.duration().unwrap_or_default().as_secs_f64(),
            g.attempts
        );
    }
    eprintln!("| acknowledged writes | {} |", report.writes);
    eprintln!(
        "| blocks read back | {} |",
        checked.as_ref().map(|n| *n).unwrap_or(0)
    );
    eprintln!("| acknowledged writes lost | {lost} |");
    eprintln!("| test wall time | {:.1} s |", t0.elapsed().as_secs_f64());
    assert_eq!(checked.err(), None, "acknowledged writes did not read back");
}

// ---------------------------------------------------------------------------------
// LVM on DRBD
// ---------------------------------------------------------------------------------

/// The index of the node whose DRBD is Primary, once one is and the cluster is idle.
fn drbd_primary(pair: &Pair, timeout: Duration) -> Option<usize> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
        for i in 0..2 {
            if pair
                .node(i)
                .sh("cat /proc/drbd")
                .is_ok_and(|s| s.contains("ro:Primary/"))
            {
                return Some(i);
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    None
}

/// Whether a line of `out` is exactly `words` (blank separated).
fn has_line(out: &str, words: &[&str]) -> bool {
    out.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == words)
}

/// The VG's LVM system ID and whether its LV is active, as node `i` sees it.
fn vg_state(pair: &Pair, i: usize) -> String {
    pair.node(i)
        .sh("export LVM_SUPPRESS_FD_WARNINGS=1; lvm vgs --foreign --noheadings -o vg_name,vg_systemid vgha; lvm lvs --foreign --noheadings -o lv_name,lv_active vgha")
        .unwrap_or_else(|e| format!("control shell: {e}"))
}

/// Day 0 of LVM on DRBD (`tests/fixtures/cluster/cluster-lio-lvm.toml`), then a
/// planned switchover under writes: the VG lives on /dev/drbd0, so it is made once on
/// the DRBD Primary, as an operator does (`pvcreate`, `vgcreate`, `lvcreate`); until
/// then ocf:heartbeat:LVM-activate is kept stopped (`target-role=Stopped`, set before
/// DRBD can promote), so that its start failing on a VG not made yet cannot move the
/// Promoted role. Released, it activates the VG (system ID = the node's name), then
/// ocf:sanforge:alua creates the LUN on /dev/vgha/lun0. The host writes through
/// libiscsi; `crm_resource --move --promoted` moves DRBD, the VG (its system ID taken
/// over by the peer) and the LUN; every acknowledged write must read back.
///
/// `cargo test --test failover -- --ignored lvm_on_drbd --nocapture` prints its figures.
#[test]
#[ignore = "3 to 9 min (host load) of two TCG VMs and an image build; run: cargo test --test failover -- --ignored lvm_on_drbd --nocapture"]
fn lvm_on_drbd_switches_over_without_losing_acknowledged_writes() {
    let t0 = Instant::now();
    let lab = Lab::build_from(LVM_FIXTURE, Fencing::Off);
    let mut pair = lab.boot_nodes("lvm");
    let held = pair
        .node(0)
        .sh("crm_resource --resource lvm-r0 --meta --set-parameter target-role --parameter-value Stopped")
        .unwrap_or_else(|e| format!("control shell: {e}"));
    skip_initial_sync_of(&pair);
    let Some(p) = drbd_primary(&pair, Duration::from_secs(300)) else {
        panic!("DRBD was not promoted\n{held}\n{}", pair.states());
    };
    // Day 0 on the Primary. lvcreate activates the new LV; it is deactivated again
    // so that the agent's start does the activation a promote does.
    let t_day0 = Instant::now();
    let day0 = pair
        .node(p)
        .sh("set -e; export LVM_SUPPRESS_FD_WARNINGS=1; lvm pvcreate -y /dev/drbd0; lvm vgcreate vgha /dev/drbd0; \
             lvm lvcreate -y -n lun0 -L 32M vgha; lvm vgchange -an vgha; \
             lvm vgs --noheadings -o vg_name,vg_systemid vgha; \
             crm_resource --resource lvm-r0 --meta --delete-parameter target-role; \
             crm_resource --cleanup --resource lvm-r0")
        .unwrap_or_else(|e| format!("control shell: {e}"));
    assert!(
        has_line(&day0, &["vgha", NAMES[p]]),
        "day 0 on {} failed (the VG must carry the node's name as system ID):\n{day0}\n{}",
        NAMES[p],
        pair.states()
    );
    wait_lun_served(&mut pair);
    let day0_to_served = t_day0.elapsed();
    let run = Run::start(&pair.portals);
    assert!(
        run.advances(30, Duration::from_secs(180)),
        "writes do not progress: {:?}\n{}\n{}",
        run.progress,
        vg_state(&pair, p),
        pair.states()
    );
    let first = run.portal();
    assert!(first < 2, "{:?}", run.progress);
    let other = 1 - first;
    let before = vg_state(&pair, first);

    // The planned switchover: DRBD, the VG and the LUN move to the other node.
    let gaps = run.gaps();
    let t_move = Instant::now();
    let moved = pair
        .node(0)
        .sh(&format!(
            "crm_resource --move --promoted -r drbd-r0-clone --node {}",
            NAMES[other]
        ))
        .unwrap_or_else(|e| format!("control shell: {e}"));
    let switchover = run
        .resumed(gaps, Duration::from_secs(300))
        .map(|r| r - t_move);
    assert!(
        switchover.is_some(),
        "I/O did not resume after the switchover\n{moved}\n{:?}\n{}\n{}",
        run.progress,
        vg_state(&pair, other),
        pair.states()
    );
    assert_eq!(
        run.portal(),
        other,
        "writes did not move to {}",
        NAMES[other]
    );
    assert!(
        run.advances(10, Duration::from_secs(120)),
        "writes do not progress on {}",
        NAMES[other]
    );
    let _ = pair.node(0).sh("crm_resource --clear -r drbd-r0-clone");
    let after = vg_state(&pair, other);
    let left = vg_state(&pair, first);
    let (report, checked) = run.finish(&pair.portals, other);
    let lost = checked.as_ref().err().map(Vec::len).unwrap_or(0);
    eprintln!("\n| figure | value |\n|---|---|");
    eprintln!("| image build | {:.1} s |", lab.build_time.as_secs_f64());
    for (n, d) in &pair.boot {
        eprintln!("| boot to cluster-ready, {n} | {:.1} s |", d.as_secs_f64());
    }
    eprintln!(
        "| day 0 (pvcreate, vgcreate, lvcreate on {}) to LUN served | {:.1} s |",
        NAMES[p],
        day0_to_served.as_secs_f64()
    );
    eprintln!(
        "| planned switchover {} -> {} (crm_resource --move) to I/O again | {:.2} s |",
        NAMES[first],
        NAMES[other],
        switchover.unwrap_or_default().as_secs_f64()
    );
    for g in &report.gaps {
        eprintln!(
            "| writer gap {:?} -> {:?} | {:.2} s ({} attempts) |",
            g.from,
            g.to,
            g.duration().unwrap_or_default().as_secs_f64(),
            g.attempts
        );
    }
    eprintln!("| acknowledged writes | {} |", report.writes);
    eprintln!(
        "| blocks read back | {} |",
        checked.as_ref().map(|n| *n).unwrap_or(0)
    );
    eprintln!("| acknowledged writes lost | {lost} |");
    eprintln!("| test wall time | {:.1} s |", t0.elapsed().as_secs_f64());
    eprintln!(
        "VG before on {}: {}\nVG after on {}: {}\nas {} sees it: {}",
        NAMES[first],
        before.trim(),
        NAMES[other],
        after.trim(),
        NAMES[first],
        left.trim()
    );
    // The new Primary holds the VG under its own system ID, its LV active.
    assert!(
        has_line(&after, &["vgha", NAMES[other]]) && has_line(&after, &["lun0", "active"]),
        "{after}"
    );
    // The old one sees no PV any more (DRBD Secondary cannot be opened) or a
    // foreign, inactive VG: never an active LV.
    assert!(!left.contains(" active"), "{left}");
    assert_eq!(checked.err(), None, "acknowledged writes did not read back");
}

// ---------------------------------------------------------------------------------
// The fault matrix
// ---------------------------------------------------------------------------------

/// One row's result.
struct Row {
    fault: &'static str,
    expected: &'static str,
    /// Whether the expected outcome was seen, and what was seen.
    met: Result<String, String>,
    /// The longest writer gap after the fault (none: writes never stopped).
    stall: Option<Duration>,
    /// Acknowledged writes that did not read back (`None`: could not read back).
    lost: Option<usize>,
    fenced: Vec<&'static str>,
}

/// What a scenario does to the running pair, given the primary's index; it returns
/// the portal to read back through and whether its expected outcome was seen.
type Inject = fn(&mut Pair, &Run, usize) -> (usize, Result<String, String>);

/// The rows, in `reference/ha.md` §5 order, each with its expected outcome.
const ROWS: &[(&str, &str, &str, Inject)] = &[
    (
        "power-loss",
        "primary power loss (QEMU quit)",
        "fence, promote, target up on the peer",
        power_loss,
    ),
    (
        "hang",
        "primary hangs (QEMU stop; cont after the takeover)",
        "fenced before takeover; never writes again",
        hang,
    ),
    (
        "kill-corosync",
        "kill -9 corosync on the primary",
        "the primary self-fences (sbd); the peer takes over",
        kill_corosync,
    ),
    (
        "kill-controld",
        "kill -9 pacemaker-controld on the primary",
        "pacemakerd respawns it or the node is fenced; I/O continues",
        kill_controld,
    ),
    (
        "one-link",
        "corosync link 1 down (QEMU set_link)",
        "knet uses link 0; no transition",
        one_link,
    ),
    (
        "partition",
        "full partition: both links of the primary down",
        "one node fenced (sbd), no split brain",
        partition,
    ),
    (
        "drbd-link",
        "DRBD's link (link 0, corosync keeps link 1) down",
        "peer Outdated by the fence-peer constraint; primary keeps serving",
        drbd_link,
    ),
    (
        "monitor",
        "monitor failure: the LUN deleted behind the cluster's back",
        "recovered (restart or move); I/O resumes",
        monitor_failure,
    ),
    (
        "planned-move",
        "planned move (crm_resource --move --promoted)",
        "demote, promote; I/O on the peer",
        planned_move,
    ),
];

/// Waits until the other node serves I/O: the portal index, or what was seen.
fn takeover(run: &Run, gaps: u64, to: usize, within: Duration) -> Result<String, String> {
    match run.resumed(gaps, within) {
        Some(_) if run.portal() == to => Ok(format!("I/O on {}", NAMES[to])),
        Some(_) => Err(format!("I/O resumed on {}", NAMES[run.portal().min(1)])),
        None => Err(format!("no I/O within {} s", within.as_secs())),
    }
}

fn power_loss(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    let gaps = run.gaps();
    pair.node_mut(p).quit();
    (1 - p, takeover(run, gaps, 1 - p, Duration::from_secs(180)))
}

fn hang(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    let gaps = run.gaps();
    pair.node(p).monitor("stop");
    let took = takeover(run, gaps, 1 - p, Duration::from_secs(180));
    pair.node(p).monitor("cont");
    // Resumed, the old primary reads the reset in its sbd slot and resets itself.
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end && !pair.node_mut(p).exited() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let met = took.and_then(|m| {
        if pair.node_mut(p).fenced() {
            Ok(format!("{m}; {} reset itself after cont", NAMES[p]))
        } else {
            Err(format!("{m}; {} still runs after cont", NAMES[p]))
        }
    });
    (1 - p, met)
}

fn kill_daemon(
    pair: &mut Pair,
    run: &Run,
    p: usize,
    daemon: &str,
) -> (usize, Result<String, String>) {
    let gaps = run.gaps();
    let _ = pair.node(p).sh(&format!("kill -9 $(pidof {daemon})"));
    // Either the primary keeps serving (the daemon was respawned) or the peer takes
    // over after the primary was fenced: writes must go on, somewhere.
    let end = Instant::now() + Duration::from_secs(180);
    let w0 = run.writes();
    std::thread::sleep(Duration::from_secs(30));
    while Instant::now() < end && (run.writes() < w0 + 10 || run.portal() > 1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let on = run.portal().min(1);
    let stopped = run.gaps() > gaps;
    let met = if run.writes() < w0 + 10 {
        Err("writes stopped".to_string())
    } else if on != p && !pair.node_mut(p).fenced() {
        Err(format!(
            "I/O moved to {} but {} was not fenced",
            NAMES[on], NAMES[p]
        ))
    } else {
        Ok(format!(
            "I/O on {}{}",
            NAMES[on],
            if stopped { " after a gap" } else { "" }
        ))
    };
    (on, met)
}

fn kill_corosync(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    kill_daemon(pair, run, p, "corosync")
}

fn kill_controld(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    kill_daemon(pair, run, p, "pacemaker-controld")
}

/// Sets QEMU link `l0`/`l1` of node `i` up or down.
fn set_link(pair: &Pair, i: usize, link: usize, up: bool) {
    pair.node(i).monitor(&format!(
        "set_link l{link} {}",
        if up { "on" } else { "off" }
    ));
}

fn one_link(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    let gaps = run.gaps();
    set_link(pair, p, 1, false);
    std::thread::sleep(Duration::from_secs(30));
    let links = pair.node(p).sh("corosync-cfgtool -s").unwrap_or_default();
    set_link(pair, p, 1, true);
    let met =
        if run.gaps() == gaps && run.portal() == p && run.advances(10, Duration::from_secs(30)) {
            Ok("no transition, no gap".to_string())
        } else {
            Err(format!("gap or move seen\n{links}"))
        };
    (p, met)
}

fn partition(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    let gaps = run.gaps();
    set_link(pair, p, 0, false);
    set_link(pair, p, 1, false);
    // The fence race (priority-fencing-delay favours the Promoted node): one node is
    // reset; writes continue on the survivor, never on both.
    let end = Instant::now() + Duration::from_secs(180);
    while Instant::now() < end && !pair.node_mut(0).exited() && !pair.node_mut(1).exited() {
        std::thread::sleep(Duration::from_millis(200));
    }
    let fenced: Vec<usize> = (0..2).filter(|i| pair.node_mut(*i).fenced()).collect();
    let survivor = match fenced.as_slice() {
        [f] => 1 - f,
        _ => return (p, Err(format!("fenced: {fenced:?}"))),
    };
    if survivor != p {
        let _ = takeover(run, gaps, survivor, Duration::from_secs(120));
    }
    let met = if run.advances(10, Duration::from_secs(60)) && run.portal() == survivor {
        Ok(format!(
            "{} fenced, I/O on {}",
            NAMES[1 - survivor],
            NAMES[survivor]
        ))
    } else {
        Err(format!(
            "{} fenced, no I/O on {}",
            NAMES[1 - survivor],
            NAMES[survivor]
        ))
    };
    (survivor, met)
}

fn drbd_link(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    set_link(pair, p, 0, false);
    std::thread::sleep(Duration::from_secs(20));
    let peer = pair.node(1 - p).sh("cat /proc/drbd").unwrap_or_default();
    let cib = pair
        .node(p)
        .sh("cibadmin -Q -o constraints")
        .unwrap_or_default();
    set_link(pair, p, 0, true);
    let serving = run.advances(10, Duration::from_secs(60)) && run.portal() == p;
    let outdated = peer.contains("Outdated");
    let constraint = cib.contains("drbd-fence-by-handler");
    let met = if serving && outdated && constraint {
        Ok(format!(
            "{} Outdated, fence-peer constraint set, I/O on {}",
            NAMES[1 - p],
            NAMES[p]
        ))
    } else {
        Err(format!(
            "serving {serving}, peer Outdated {outdated}, constraint {constraint}\n{peer}"
        ))
    };
    (p, met)
}

fn monitor_failure(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    let gaps = run.gaps();
    let _ = pair.node(p).sh(
        "for l in /sys/kernel/config/target/iscsi/*/tpgt_1/lun/lun_0; do rm -f $l/*; rmdir $l; done",
    );
    let resumed = run.resumed(gaps, Duration::from_secs(180));
    let on = run.portal().min(1);
    let fails = pair
        .node(on)
        .sh("crm_mon -1 --failcounts")
        .unwrap_or_default();
    let met = match resumed {
        Some(_) => Ok(format!("I/O resumed on {}", NAMES[on])),
        None => Err(format!("no I/O\n{fails}")),
    };
    (on, met)
}

fn planned_move(pair: &mut Pair, run: &Run, p: usize) -> (usize, Result<String, String>) {
    let gaps = run.gaps();
    let _ = pair.node(p).sh(&format!(
        "crm_resource --move --promoted -r drbd-r0-clone --node {}",
        NAMES[1 - p]
    ));
    (1 - p, takeover(run, gaps, 1 - p, Duration::from_secs(120)))
}

/// Runs one row on a fresh pair.
fn run_row(
    lab: &Lab,
    key: &str,
    fault: &'static str,
    expected: &'static str,
    inject: Inject,
) -> Row {
    let mut pair = lab.boot(key);
    let run = Run::start(&pair.portals);
    if !run.advances(30, Duration::from_secs(120)) {
        return Row {
            fault,
            expected,
            met: Err(format!("writes never progressed\n{}", pair.states())),
            stall: None,
            lost: None,
            fenced: Vec::new(),
        };
    }
    let primary = run.portal().min(1);
    let t_fault = Instant::now();
    let (read_back, met) = inject(&mut pair, &run, primary);
    let fenced = (0..2)
        .filter(|i| pair.nodes[*i].as_mut().is_some_and(Node::fenced))
        .map(|i| NAMES[i])
        .collect();
    let (report, checked) = run.finish(&pair.portals, read_back);
    let stall = report
        .gaps
        .iter()
        .filter(|g| g.failed_at >= t_fault)
        .map(|g| g.duration().unwrap_or_else(|| t_fault.elapsed()))
        .max();
    let met = met.map_err(|e| format!("{e}\n{}", pair.states()));
    Row {
        fault,
        expected,
        met,
        stall,
        lost: match checked {
            Ok(_) => Some(0),
            Err(e) if e.first().is_some_and(|l| l.starts_with("no portal served")) => None,
            Err(bad) => Some(bad.len()),
        },
        fenced,
    }
}

/// The fault matrix with sbd fencing: `SANFORGE_FAULTS=power-loss,hang,…` picks rows
/// (default: all). Prints one table row per scenario; fails if a row lost a write or
/// missed its expected outcome.
#[test]
#[ignore = "opt-in, a fresh two-VM cluster per row (minutes each): benches/fault-matrix.sh runs it"]
fn fault_matrix() {
    let lab = Lab::build(Fencing::Sbd);
    let wanted = std::env::var("SANFORGE_FAULTS").unwrap_or_default();
    let mut rows = Vec::new();
    for (key, fault, expected, inject) in ROWS {
        if !wanted.is_empty() && !wanted.split(',').any(|w| w == *key) {
            continue;
        }
        let t = Instant::now();
        let row = run_row(&lab, key, fault, expected, *inject);
        eprintln!("{key}: {:.0} s", t.elapsed().as_secs_f64());
        if let Err(e) = &row.met {
            eprintln!("{key}: expected outcome not met: {e}");
        }
        rows.push(row);
    }
    eprintln!("\n| fault | expected | met | I/O stall | writes lost | fenced |\n|---|---|---|---|---|---|");
    for r in &rows {
        eprintln!(
            "| {} | {} | {} | {} | {} | {} |",
            r.fault,
            r.expected,
            match &r.met {
                Ok(m) => format!("yes: {m}"),
                Err(e) => format!("NO: {}", e.lines().next().unwrap_or_default()),
            },
            r.stall
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| "none".into()),
            r.lost
                .map(|n| n.to_string())
                .unwrap_or_else(|| "unread".into()),
            if r.fenced.is_empty() {
                "no".to_string()
            } else {
                r.fenced.join(", ")
            },
        );
    }
    assert!(
        rows.iter().all(|r| r.met.is_ok() && r.lost == Some(0)),
        "a row missed its outcome or lost writes"
    );
}
