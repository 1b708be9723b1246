//! The two-node cluster lab of tests/failover.rs and tests/fault_matrix.rs (issues 5
//! and 14): a temporary project with a rendered cluster file and the image built from
//! it, two QEMU VMs linked by two UDP socket networks on 127.0.0.1 (Corosync links 0 and 1,
//! DRBD on link 0), each one's iSCSI portal and control shell forwarded to loopback
//! ports, and the host writer of tests/common/iscsi.rs that fails over between the two
//! portals as a multipath initiator would.
//!
//! Test-only: each VM gets a control shell (`busybox nc -ll -e /bin/sh`, forwarded to a
//! loopback port), which shipped images never have, and the secrets initrd
//! (`NODE/secrets/initrd.cpio` from `sanforge cluster render`) is appended to the
//! public initramfs, as a second initrd would be on a real PXE server. With sbd the
//! operator's once-per-disk step (`sbd -d DISK create`, like DRBD's `create-md`) runs
//! on alpha before its sbd starts (sbd refuses to create slots on a host file).

pub use super::cluster_vm::{free_udp_ports, start_vm, Wiring};
use super::iscsi::{self, Portal, Progress, Report, Writer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const INITIATOR: &str = "iqn.2026-11.org.example:host";
pub const BLOCK: usize = 512;
pub const NBLOCKS: u64 = 2048;
/// The host writer's pace: one WRITE every 10 ms (100 a second, the gap measured to
/// within 10 ms). Unpaced, the QD1 writer makes about 430 WRITEs a second, and the
/// primary VM's iSCSI and DRBD threads, QEMU's user network and the peer's replication
/// then take both host cores: every process in the guest runs 4 to 7 times slower
/// (`cibadmin -Q` 0.15 s idle, 0.24 s at 100 writes a second, 0.7 to 1.1 s unpaced,
/// TCG), which no real server serving a QD1 writer sees. `SANFORGE_WRITER_PACE_MS`
/// sets another pace; 0 writes as fast as acknowledged (benches/failover.sh --pace).
pub const WRITER_PACE: Duration = Duration::from_millis(10);

/// The writer's pace as a table cell.
pub fn pace_text() -> String {
    match writer_pace() {
        Some(p) => format!("one WRITE every {} ms", p.as_millis()),
        None => "unpaced (as fast as acknowledged)".into(),
    }
}

/// The host writer's pace: [`WRITER_PACE`] unless `SANFORGE_WRITER_PACE_MS` says
/// otherwise (0: unpaced).
pub fn writer_pace() -> Option<Duration> {
    match std::env::var("SANFORGE_WRITER_PACE_MS") {
        Err(_) => Some(WRITER_PACE),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(0) => None,
            Ok(ms) => Some(Duration::from_millis(ms)),
            Err(_) => {
                panic!("SANFORGE_WRITER_PACE_MS={v:?}: expected whole milliseconds (0: unpaced)")
            }
        },
    }
}
pub const CTL_PORT: u16 = 7000;
pub const NAMES: [&str; 2] = ["alpha", "beta"];
/// The cluster the CI test and the fault matrix boot.
pub const LIO_FIXTURE: &str = "cluster-lio.toml";
/// The same cluster with LVM on DRBD (`[[lvm]] vg = "vgha"`, the LUN on `lv = "lun0"`).
pub const LVM_FIXTURE: &str = "cluster-lio-lvm.toml";
/// The SCST cluster (seeds 000/002): ALUA groups, cluster_mode with the DLM.
pub const SCST_FIXTURE: &str = "cluster-scst.toml";
/// The SCST cluster of seed 003: two DRBD resources, each exported and Promoted on
/// its own node (active/active).
pub const SCST_AA_FIXTURE: &str = "cluster-scst-aa.toml";
/// The image recipes the lab builds: LIO (ha-node) and SCST (scst-ha-node).
pub const LIO_RECIPE: &str = "recipes/ha-node.toml";
pub const SCST_RECIPE: &str = "recipes/scst-ha-node.toml";
/// The sbd disk as the guests see it: the second virtio disk (the first backs DRBD).
pub const SBD_DISK: &str = "/dev/vdb";

pub fn sanforge(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(dir);
    c.env("SANFORGE_PROGRESS", "plain");
    c
}

pub fn run_ok(c: &mut Command) -> String {
    let o = c.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{c:?} failed:\n{text}");
    text
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How the test cluster fences: the fixture's `[fencing]` (off), or sbd on a shared
/// disk with the i6300esb watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fencing {
    Off,
    Sbd,
}

/// One VM; killed when dropped.
pub struct Node {
    pub name: &'static str,
    pub child: Child,
    pub serial: PathBuf,
    pub monitor: PathBuf,
    pub iscsi: SocketAddr,
    pub ctl: SocketAddr,
    pub started: Instant,
    /// Set when the test itself ended the VM (power loss); a VM that exits without
    /// it reset itself: fenced.
    pub killed: bool,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    pub fn log(&self) -> String {
        std::fs::read(&self.serial)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until the serial log holds `needle`; the time since the VM started.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> Option<Duration> {
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
    pub fn sh(&self, cmd: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.ctl, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(format!("exec 2>&1; {cmd}; exit\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// Cluster, DRBD and LIO state as the node sees it (for failure messages).
    pub fn state(&self) -> String {
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
    pub fn monitor(&self, cmd: &str) -> String {
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
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Whether the VM reset itself (sbd or its watchdog): fenced.
    pub fn fenced(&mut self) -> bool {
        !self.killed && self.exited()
    }

    /// QEMU monitor `quit`: the VM is gone at once, as on a power loss.
    /// Keeps the monitor connection open until QEMU exits (a monitor that sees its
    /// client go away at once may drop the command); SIGKILL, the same power loss,
    /// if it is still there after 10 s.
    pub fn quit(&mut self) {
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The mac of a node's NIC `i` (eth0 = user networking; eth1/eth2 as in the fixture).
pub fn mac(node: &str, i: u8) -> String {
    let n = if node == "alpha" { "0a" } else { "0b" };
    format!("52:54:00:00:{n}:{i:02x}")
}

/// A built image and the rendered cluster it serves, in a temporary project.
pub struct Lab {
    pub _tmp: tempfile::TempDir,
    pub t: PathBuf,
    pub out: PathBuf,
    pub fencing: Fencing,
    pub build_time: Duration,
    /// Each node's iSCSI target (the first of its `iscsi-targets` in the cluster
    /// file), in [`NAMES`] order: what the portals log in to.
    pub targets: [String; 2],
    /// The cluster file's DRBD resources (name, minor), in file order: the first is
    /// on each node's /dev/vda, the others on the disks after it (see [`Wiring`]).
    pub drbd: Vec<(String, u32)>,
}

impl Lab {
    /// Renders the LIO fixture (with `fencing`), builds the image; panics with the
    /// builder's output on failure.
    pub fn build(fencing: Fencing) -> Lab {
        Lab::build_from(LIO_FIXTURE, fencing)
    }

    /// [`Lab::build`] for the cluster file `fixture` of tests/fixtures/cluster/.
    pub fn build_from(fixture: &str, fencing: Fencing) -> Lab {
        Lab::build_image(fixture, LIO_RECIPE, fencing)
    }

    /// [`Lab::build_from`] with the image of `recipe` (relative to the repository).
    pub fn build_image(fixture: &str, recipe: &str, fencing: Fencing) -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().to_path_buf();
        prepare_project_for(&t, fixture, recipe, fencing);
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
            targets: NAMES.map(|n| node_target(fixture, n)),
            drbd: drbd_resources(fixture),
        }
    }

    /// Boots both nodes on fresh disks and waits until the cluster serves the LUN.
    pub fn boot(&self, tag: &str) -> Pair {
        let mut pair = self.boot_nodes(tag);
        skip_initial_sync_of(&pair);
        wait_lun_served(&mut pair);
        pair
    }

    /// Boots both nodes on fresh disks and waits until both are cluster members.
    pub fn boot_nodes(&self, tag: &str) -> Pair {
        let dir = self.t.join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let minors: Vec<u32> = self.drbd.iter().map(|d| d.1).collect();
        let mut all = make_disks_for(&dir, &minors).into_iter();
        let disks = all.next().unwrap_or_else(|| make_disks(&dir));
        let more_disks = all.collect();
        let sbd = (self.fencing == Fencing::Sbd).then(|| {
            let p = dir.join("sbd.img");
            std::fs::File::create(&p).unwrap().set_len(8 << 20).unwrap();
            p
        });
        let udp = free_udp_ports::<4>();
        let wiring = Wiring {
            dir,
            disks,
            more_disks,
            sbd,
            links: [[udp[0], udp[1]], [udp[2], udp[3]]],
            iscsi: [free_port(), free_port()],
            ctl: [free_port(), free_port()],
        };
        let alpha = start_vm(self, &self.out, &wiring, 0, 0);
        let beta = start_vm(self, &self.out, &wiring, 1, 0);
        let portals = [&alpha, &beta]
            .iter()
            .zip(&self.targets)
            .map(|(n, target)| Portal::new(n.iscsi, target))
            .collect();
        let mut pair = Pair {
            nodes: [Some(alpha), Some(beta)],
            portals,
            boot: Vec::new(),
            served_after: Duration::ZERO,
            wiring,
            generation: 0,
            fenced: [false; 2],
            drbd: self.drbd.clone(),
        };
        for (i, name) in NAMES.iter().enumerate() {
            let settled = pair.wait_member(i);
            pair.boot.push((name, settled));
        }
        pair
    }

    /// A second image of the same cluster, the "new release" of a rolling upgrade: the
    /// recipe adds one overlay file (`/etc/sanforge-upgrade`), so the root file
    /// system's key (the image's `IMAGE_VERSION`) differs while the kernel (whose key
    /// holds the recipe's source-date-epoch) stays the cached one. Its output directory.
    pub fn build_second_image(&self) -> PathBuf {
        let recipe = std::fs::read_to_string(self.t.join("recipes/ha.toml")).unwrap();
        let v2 = recipe.replacen(
            "\"cluster-overlay\"]",
            "\"cluster-overlay\", \"upgrade-overlay\"]",
            1,
        );
        assert_ne!(v2, recipe, "no cluster-overlay in the recipe");
        std::fs::create_dir_all(self.t.join("upgrade-overlay/etc")).unwrap();
        std::fs::write(self.t.join("upgrade-overlay/etc/sanforge-upgrade"), "2\n").unwrap();
        std::fs::write(self.t.join("recipes/ha-v2.toml"), v2).unwrap();
        std::fs::copy(
            self.t.join("recipes/ha.lock"),
            self.t.join("recipes/ha-v2.lock"),
        )
        .unwrap();
        let out = self.t.join("out-v2");
        let b0 = Instant::now();
        run_ok(
            sanforge(&self.t)
                .args(["build", "recipes/ha-v2.toml", "--out"])
                .arg(&out),
        );
        eprintln!("second image built in {:.1} s", b0.elapsed().as_secs_f64());
        out
    }
}

/// [`skip_initial_sync_of_res`] on alpha for every DRBD resource of the pair; panics
/// with the cluster's state if it fails.
pub fn skip_initial_sync_of(pair: &Pair) {
    for (res, minor) in &pair.drbd {
        if let Err(e) = skip_initial_sync_of_res(pair.node(0), res, *minor) {
            panic!(
                "{res}: {e}\n{}\n{}",
                pair.node(0).sh("crm_mon -1 -r").unwrap_or_default(),
                pair.dump()
            );
        }
    }
}

/// Waits until one node serves the LUN (noting when), then until the cluster is idle.
pub fn wait_lun_served(pair: &mut Pair) {
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
pub struct Pair {
    pub nodes: [Option<Node>; 2],
    pub portals: Vec<Portal>,
    pub boot: Vec<(&'static str, Duration)>,
    pub served_after: Duration,
    pub wiring: Wiring,
    /// How many restarts so far (names the restarted VMs' serial logs).
    pub generation: u32,
    /// Nodes whose VM reset itself before a restart replaced it.
    pub fenced: [bool; 2],
    /// The lab's DRBD resources (name, minor).
    pub drbd: Vec<(String, u32)>,
}

impl Pair {
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node still running")
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node still running")
    }

    /// Waits until node `i` is up and a cluster member; the time since its VM started.
    pub fn wait_member(&self, i: usize) -> Duration {
        let n = self.node(i);
        let ready = n.wait_log("sanforge-init: ready", Duration::from_secs(300));
        let settled = n.wait_log("ha: cluster settled", Duration::from_secs(300));
        match (ready, settled) {
            (Some(_), Some(t)) => t,
            _ => panic!("{} did not settle\n{}", n.name, self.dump()),
        }
    }

    /// Whether node `i` was fenced: its VM reset itself (now or before a restart).
    pub fn was_fenced(&mut self, i: usize) -> bool {
        self.fenced[i] || self.nodes[i].as_mut().is_some_and(Node::fenced)
    }

    /// Restarts node `i` on its own disks, links and ports from the image in `image`
    /// (the lab's `out`, or [`Lab::build_second_image`]): ends its VM if it still runs
    /// (a power loss), boots it again and waits until it is a cluster member; the
    /// time from its start to settled.
    pub fn restart(&mut self, lab: &Lab, i: usize, image: &Path) -> Duration {
        if let Some(mut old) = self.nodes[i].take() {
            if !old.exited() {
                old.quit();
            }
            self.fenced[i] |= old.fenced();
        }
        self.generation += 1;
        self.nodes[i] = Some(start_vm(lab, image, &self.wiring, i, self.generation));
        self.wait_member(i)
    }

    pub fn dump(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(|n| format!("--- {} serial ---\n{}", n.name, n.log()))
            .collect()
    }

    /// The host writer through both portals, once it has 30 acknowledged writes
    /// (within 120 s; else the test fails with both nodes' states).
    pub fn writer(&self) -> Run {
        let run = Run::start(&self.portals);
        assert!(
            run.advances(30, Duration::from_secs(120)),
            "writes do not progress: {:?}\n{}",
            run.progress,
            self.states()
        );
        run
    }

    pub fn states(&self) -> String {
        self.nodes
            .iter()
            .flatten()
            .map(Node::state)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The host writer, running on its own thread until [`Run::finish`].
pub struct Run {
    pub progress: Arc<Progress>,
    pub stop: Arc<AtomicBool>,
    pub handle: JoinHandle<Report>,
    /// The LUN it writes to.
    pub lun: u16,
}

impl Run {
    pub fn start(portals: &[Portal]) -> Run {
        Run::start_lun(portals, 0)
    }

    /// [`Run::start`] on LUN `lun`.
    pub fn start_lun(portals: &[Portal], lun: u16) -> Run {
        let mut writer = Writer::new(portals.to_vec(), INITIATOR, lun, BLOCK, NBLOCKS);
        writer.pace = writer_pace();
        let progress = writer.progress();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || writer.run_until(&stop2));
        Run {
            progress,
            stop,
            handle,
            lun,
        }
    }

    pub fn writes(&self) -> u64 {
        self.progress.writes.load(Ordering::Relaxed)
    }

    pub fn gaps(&self) -> u64 {
        self.progress.gaps.load(Ordering::Relaxed)
    }

    /// The portal the writer writes through (`usize::MAX` while it has none).
    pub fn portal(&self) -> usize {
        self.progress.portal.load(Ordering::Relaxed)
    }

    /// Waits until `n` more writes are acknowledged (at most `timeout`).
    pub fn advances(&self, n: u64, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let w0 = self.writes();
        while self.writes() < w0 + n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.writes() >= w0 + n
    }

    /// After a fault: waits for the failure to show as a gap, then for writes to
    /// advance again; when they did (polled every 20 ms).
    pub fn resumed(&self, gaps_before: u64, timeout: Duration) -> Option<Instant> {
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
    pub fn finish(self, portals: &[Portal], portal: usize) -> (Report, Result<usize, Vec<String>>) {
        self.stop.store(true, Ordering::Relaxed);
        let report = self.handle.join().unwrap();
        let checked = iscsi::verify(
            &portals[portal..portal + 1],
            INITIATOR,
            self.lun,
            BLOCK,
            &report,
            Duration::from_secs(10),
        );
        (report, checked)
    }
}

/// The cluster file `fixture` with its `[fencing]` table for `fencing`; with
/// `SANFORGE_DRBD_AGENT=linbit` (benches/failover.sh --agent), its `drbd-agent` too.
pub fn cluster_file(fixture: &str, fencing: Fencing) -> String {
    let mut text =
        std::fs::read_to_string(repo().join("tests/fixtures/cluster").join(fixture)).unwrap();
    if let Some(agent) = std::env::var("SANFORGE_DRBD_AGENT")
        .ok()
        .filter(|a| !a.is_empty())
    {
        text = format!("drbd-agent = \"{agent}\"\n{text}");
    }
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

/// The DRBD resources (name, minor) of the cluster file `fixture`, in file order.
pub fn drbd_resources(fixture: &str) -> Vec<(String, u32)> {
    let v: toml::Value = toml::from_str(&cluster_file(fixture, Fencing::Off)).unwrap();
    v.get("drbd")
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| {
                    let name = d["name"].as_str().unwrap_or_default().to_string();
                    let minor = d["minor"].as_integer().unwrap_or_default() as u32;
                    (name, minor)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The first iSCSI target of node `name` in the cluster file `fixture`.
pub fn node_target(fixture: &str, name: &str) -> String {
    let text = cluster_file(fixture, Fencing::Off);
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["node"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"].as_str() == Some(name))
        .and_then(|n| n["iscsi-targets"].as_array()?.first()?.as_str())
        .unwrap_or_else(|| panic!("{fixture}: node {name} has no iscsi-targets"))
        .to_string()
}

/// [`prepare_project_for`] the LIO image (recipes/ha-node.toml).
pub fn prepare_project(t: &Path, fixture: &str, fencing: Fencing) {
    prepare_project_for(t, fixture, LIO_RECIPE, fencing)
}

/// Copies the repo pieces a build reads into `t` and writes the test recipe: `recipe`
/// with the rendered cluster as node configs plus an overlay of the rendered public
/// files (every node's: a node's own files, such as its scst.conf, have paths of
/// their own).
pub fn prepare_project_for(t: &Path, fixture: &str, recipe_path: &str, fencing: Fencing) {
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
    // The public rendered files (identical on every node, or at a node's own path)
    // as an overlay.
    for (n, line) in NAMES.iter().flat_map(|n| {
        let manifest = std::fs::read_to_string(t.join(format!("rendered/{n}/MANIFEST"))).unwrap();
        manifest
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| (*n, l.to_string()))
            .collect::<Vec<_>>()
    }) {
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
        std::fs::copy(t.join("rendered").join(n).join(rel), dst).unwrap();
    }
    // Test-only: eth0 (QEMU user networking, where the host's forwards arrive) and a
    // control shell on every node; with sbd, the disk's slots are created once (on
    // alpha, before its sbd starts, if the disk has none; beta's waits for them).
    for n in NAMES {
        let p = t.join(format!("rendered/{n}/node.toml"));
        let mut text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("services = []\n", "");
        if fencing == Fencing::Sbd {
            let prepare = if n == "alpha" {
                // Only on a blank disk: a restarted alpha must not wipe the slots
                // beta's sbd is watching.
                format!("/usr/sbin/sbd -d {SBD_DISK} dump >/dev/null 2>&1 || /usr/sbin/sbd -d {SBD_DISK} -1 10 -4 20 create")
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
    let recipe = std::fs::read_to_string(r.join(recipe_path)).unwrap();
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
    let lock = Path::new(recipe_path).with_extension("lock");
    std::fs::copy(r.join(lock), t.join("recipes/ha.lock")).unwrap();
}

/// Two blank backing disks with DRBD 8.4 internal metadata (`drbdmeta create-md`, as
/// an operator does once per disk); the initial sync is skipped after the nodes
/// connect (see [`skip_initial_sync`]).
pub fn make_disks(t: &Path) -> [PathBuf; 2] {
    make_disks_for(t, &[0]).remove(0)
}

/// [`make_disks`] for DRBD minors `minors`: a pair per minor (`NODE.img` for the
/// first, `NODE.MINOR.img` for the others).
pub fn make_disks_for(t: &Path, minors: &[u32]) -> Vec<[PathBuf; 2]> {
    minors
        .iter()
        .enumerate()
        .map(|(k, &minor)| NAMES.map(|n| make_disk(t, n, k, minor)))
        .collect()
}

fn make_disk(t: &Path, n: &str, k: usize, minor: u32) -> PathBuf {
    let p = match k {
        0 => t.join(format!("{n}.img")),
        _ => t.join(format!("{n}.{minor}.img")),
    };
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(64 << 20).unwrap();
    run_ok(
        Command::new("drbdmeta")
            .args(["--force", &minor.to_string(), "v08"])
            .arg(&p)
            .args(["internal", "create-md"]),
    );
    p
}

/// DRBD's procedure for two blank disks: once both nodes are Connected and
/// Inconsistent, `new-current-uuid --clear-bitmap` on one of them makes both UpToDate
/// without a full sync; a refresh then lets the drbd agent report its promotion score
/// at once instead of at its next monitor.
pub fn skip_initial_sync(alpha: &Node) -> Result<(), String> {
    skip_initial_sync_of_res(alpha, "r0", 0)
}

/// The line of DRBD minor `minor` in DRBD 8.4's /proc/drbd (` 0: cs:… ro:… ds:…`).
pub fn proc_drbd_line(proc_drbd: &str, minor: u32) -> String {
    let prefix = format!("{minor}: ");
    proc_drbd
        .lines()
        .find(|l| l.trim_start().starts_with(&prefix))
        .unwrap_or_default()
        .to_string()
}

/// [`skip_initial_sync`] for DRBD resource `res` (minor `minor`).
pub fn skip_initial_sync_of_res(alpha: &Node, res: &str, minor: u32) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(120);
    let mut last = String::new();
    let line = |n: &Node| proc_drbd_line(&n.sh("cat /proc/drbd").unwrap_or_default(), minor);
    while Instant::now() < end {
        last = line(alpha);
        if last.contains("cs:Connected") && last.contains("ds:Inconsistent/Inconsistent") {
            let out = alpha
                .sh(&format!("drbdadm -- --clear-bitmap new-current-uuid {res}/0 && crm_resource --refresh -r drbd-{res}-clone"))
                .map_err(|e| e.to_string())?;
            let end = Instant::now() + Duration::from_secs(20);
            let mut state = String::new();
            while Instant::now() < end {
                state = line(alpha);
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
pub fn wait_served(portals: &[Portal], timeout: Duration) -> Option<usize> {
    wait_lun_served_by(portals, 0, timeout)
}

/// [`wait_served`] for LUN `lun`.
pub fn wait_lun_served_by(portals: &[Portal], lun: u16, timeout: Duration) -> Option<usize> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        for (i, p) in portals.iter().enumerate() {
            if let Ok(mut s) =
                iscsi::Session::login(p.addr, &p.target, INITIATOR, Duration::from_secs(3))
            {
                s.set_lun(lun);
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

/// Waits until the other node serves I/O: the portal index, or what was seen.
pub fn takeover(run: &Run, gaps: u64, to: usize, within: Duration) -> Result<String, String> {
    match run.resumed(gaps, within) {
        Some(_) if run.portal() == to => Ok(format!("I/O on {}", NAMES[to])),
        Some(_) => Err(format!("I/O resumed on {}", NAMES[run.portal().min(1)])),
        None => Err(format!("no I/O within {} s", within.as_secs())),
    }
}

/// Sets QEMU link `l0`/`l1` of node `i` up or down.
pub fn set_link(pair: &Pair, i: usize, link: usize, up: bool) {
    pair.node(i).monitor(&format!(
        "set_link l{link} {}",
        if up { "on" } else { "off" }
    ));
}

/// The planned switchover of DRBD resource `res` to node `to`: the image's
/// `sanforge-init switchover` (it waits for the cluster and removes its move
/// constraint), or with `SANFORGE_SWITCHOVER=crm_resource` Pacemaker's `crm_resource
/// --move --promoted` (the caller clears it: [`clear_move`]).
pub fn switchover_cmd(res: &str, to: &str) -> String {
    if crm_switchover() {
        format!("crm_resource --move --promoted -r drbd-{res}-clone --node {to}")
    } else {
        format!("/init switchover {res} --to {to}")
    }
}

/// Whether the switchover is Pacemaker's `crm_resource --move` (see [`switchover_cmd`]).
pub fn crm_switchover() -> bool {
    std::env::var("SANFORGE_SWITCHOVER").as_deref() == Ok("crm_resource")
}

/// After [`switchover_cmd`] returned `out`: `crm_resource --clear` when the move was
/// Pacemaker's, else a check that the command finished and removed its constraint.
pub fn clear_move(node: &Node, res: &str, out: &str) {
    if crm_switchover() {
        let _ = node.sh(&format!("crm_resource --clear -r drbd-{res}-clone"));
    } else {
        assert!(
            out.contains(&format!("move constraint removed: {res} stays on")),
            "switchover did not finish:\n{out}"
        );
    }
}

/// Runs `cmd` on `node` on its own thread while `watch` runs here (the switchover
/// command returns only once the cluster settled, after the I/O resumed); `watch`'s
/// result and the command's output.
pub fn while_running<T>(node: &Node, cmd: &str, watch: impl FnOnce() -> T) -> (T, String) {
    std::thread::scope(|s| {
        let h = s.spawn(|| node.sh(cmd));
        let t = watch();
        let out = h
            .join()
            .unwrap()
            .unwrap_or_else(|e| format!("control shell: {e}"));
        (t, out)
    })
}
