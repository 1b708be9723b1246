//! The image and VMs of the server-hardware tests (`tests/server_*.rs`, issue #12):
//! the default recipe — same kernel (its stage comes from the cache), packages and
//! overlays — built in a throw-away project whose `[node]` bakes four test node
//! configs (one image for all of them, picked with `sanforge.node=NAME`):
//!
//! * `server`: two e1000e NICs (found by MAC) as the slaves of an active-backup bond
//!   carrying 192.0.2.15, and a LIO iSCSI LUN on an LV of a VG on an md RAID1 of the
//!   two disks behind the MegaRAID HBA, named by `/dev/disk/by-id` ([`server_storage`]);
//! * `mkraid`: makes that array, VG and LV on the blank disks with the image's own
//!   mdadm and lvm (a first boot, [`mkraid_node`]);
//! * `vlan-a`, `vlan-b`: a virtio NIC for the control shell, and two e1000e NICs in an
//!   active-backup bond with MTU 9000 carrying VLAN 100 (192.0.2.193/27 and .194/27).
//!
//! Every node runs a test-only control shell (`busybox nc -ll -e /bin/sh` on port
//! 7000, forwarded to a loopback port with `sanforge run --forward`), which shipped
//! images never have. The VMs are started with `sanforge run`: its `--machine`,
//! `--nic`, `--disk`, `--forward` and `--monitor` options are what these tests prove.
//! Every address is on 127.0.0.1 or in 192.0.2.0/24.

use super::vm::show;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The guest port of the control shell.
pub const CTL_PORT: u16 = 7000;
pub const TARGET: &str = "iqn.2026-11.org.example.sanforge:server";
pub const INITIATOR: &str = "iqn.2026-11.org.example:initiator";

/// What the server node exports and how it is built from its disks.
pub struct StorageLayout {
    /// Node-config TOML: the `[storage]` arrays and volume groups, and the backstore
    /// `lun0` on them.
    pub node_toml: String,
    /// The block device LIO exports, as the node config names it.
    pub device: String,
    /// The md array (`[[storage.md]]` name) and its members (by-id) in order.
    pub md: &'static str,
    pub members: Vec<String>,
    /// The volume group and the logical volume LIO exports.
    pub vg: &'static str,
    pub lv: &'static str,
    /// One line for the test's report.
    pub description: &'static str,
}

/// The by-id name udev gives the `i`th disk of `sanforge run --disk` behind the
/// MegaRAID HBA (its serial is `disk_serial(i)`).
pub fn megasas_by_id(i: usize) -> String {
    format!(
        "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_{}",
        sanforge::commands::run::disk_serial(i)
    )
}

/// Issue #12, item 8: md RAID1 → LVM VG → LV exported by LIO. The two MegaRAID disks
/// (by-id) are the members of the RAID1 `data`, assembled at boot; the VG `vg0` on it
/// is activated at boot, and the backstore `lun0` is `/dev/vg0/lun0`. The array, the
/// VG and the LV are made on blank disks by the node `mkraid` ([`mkraid_node`]) with
/// the image's own mdadm and lvm, in a first boot.
pub fn server_storage() -> StorageLayout {
    let members = vec![megasas_by_id(0), megasas_by_id(1)];
    let (md, vg, lv) = ("data", "vg0", "lun0");
    let device = format!("/dev/{vg}/{lv}");
    StorageLayout {
        node_toml: format!(
            r#"[storage]
[[storage.md]]
name = "{md}"
level = "raid1"
devices = ["{m0}", "{m1}"]
[[storage.lvm]]
vg = "{vg}"

[[lio.backstores]]
name = "lun0"
kind = "block"
path = "{device}"
serial = "sanforge-server-lun0"
"#,
            m0 = members[0],
            m1 = members[1],
        ),
        device,
        md,
        members,
        vg,
        lv,
        description: "block backstore on LV vg0/lun0 on md RAID1 `data` of the two megasas-gen2 disks (by-id)",
    }
}

/// The one-shot node that makes [`server_storage`]'s array, VG and LV on the blank
/// MegaRAID disks with the image's own mdadm and lvm, stops them cleanly and prints
/// `MKRAID RESULT=ok` (or `=failed`) on the console; the test then stops the VM.
pub fn mkraid_node() -> String {
    let l = server_storage();
    format!(
        r#"# Test node: makes the server node's md RAID1, VG and LV on its blank disks.
hostname = "mkraid"
[modules]
load = ["raid1"]
# lvm.conf for a node without udev rules for device-mapper (the init writes it for
# [storage] lvm); activating {vg} fails on this boot: it does not exist yet.
[storage]
lvm = [{{ vg = "{vg}" }}]
[[services]]
name = "mkraid"
restart = "never"
env = {{ MDADM_NO_UDEV = "1" }}
argv = ["/bin/sh", "-c", """
exec > /dev/console 2>&1
set -x
i=0
while [ $i -lt 60 ] && ! [ -e {m0} -a -e {m1} ]; do sleep 1; i=$((i+1)); done
r=failed
mdadm --create /dev/md/{md} --run --assume-clean --level=1 --raid-devices=2 --metadata=1.2 {m0} {m1} &&
lvm pvcreate -y /dev/md/{md} &&
lvm vgcreate -y {vg} /dev/md/{md} &&
lvm lvcreate -y -l 100%FREE -n {lv} {vg} &&
sync &&
lvm vgchange -an {vg} &&
mdadm --stop /dev/md/{md} &&
sync &&
r=ok
# Printed as the console shows it only when run (the words differ from this text).
echo "MKRAID" "RESULT=$r"
"""]
"#,
        md = l.md,
        vg = l.vg,
        lv = l.lv,
        m0 = l.members[0],
        m1 = l.members[1],
    )
}

/// MACs: the server's NICs get `sanforge run`'s defaults (nic0, nic1: the function
/// `sanforge run` itself uses); each VLAN node its own block (nic0 control, nic1/nic2
/// bond slaves), since they share a link.
pub fn server_mac(i: usize) -> String {
    sanforge::commands::run::default_mac(i)
}

pub fn vlan_mac(node: char, i: usize) -> String {
    let n = if node == 'a' { 0x0a } else { 0x0b };
    format!("52:54:00:00:{n:02x}:{:02x}", 0x0f + i)
}

/// The VLAN address of node `a` or `b`.
pub fn vlan_addr(node: char) -> &'static str {
    if node == 'a' {
        "192.0.2.193"
    } else {
        "192.0.2.194"
    }
}

fn ctl_service() -> String {
    format!(
        "\n[[services]]\nname = \"test-ctl\"\nargv = [\"/bin/busybox\", \"nc\", \"-ll\", \"-p\", \"{CTL_PORT}\", \"-e\", \"/bin/sh\"]\nrestart = \"always\"\n"
    )
}

pub fn server_node() -> String {
    let mut t = format!(
        r#"# Test node: a server with two bonded e1000e NICs and a LUN on an LV on md RAID1.
hostname = "san-server"

[modules]
load = ["target_core_mod", "target_core_iblock", "iscsi_target_mod", "bonding"]
# QEMU 7.2's e1000e does not raise the link-change interrupt on its MSI-X "other"
# vector, so under MSI-X the guest never sees `set_link off` (measured: no "NIC Link
# is Down", the bond stays on the dead NIC). Legacy interrupts deliver it; real
# 82574s do not need this.
params = {{ e1000e = "IntMode=0,0" }}

[[network.interfaces]]
mac = "{m0}"
name = "stor0"
[[network.interfaces]]
mac = "{m1}"
name = "stor1"

[[network.bonds]]
name = "bond0"
slaves = ["stor0", "stor1"]
mode = "active-backup"
primary = "stor0"
miimon = 100
addresses = ["192.0.2.15/24"]

[[network.routes]]
to = "default"
via = "192.0.2.2"

"#,
        m0 = server_mac(0),
        m1 = server_mac(1)
    );
    t.push_str(&server_storage().node_toml);
    t.push_str(&format!(
        r#"
[[lio.iscsi]]
iqn = "{TARGET}"
tpg = 1
portals = ["0.0.0.0:3260"]
luns = [{{ lun = 0, backstore = "lun0" }}]

[[lio.iscsi.acls]]
initiator = "{INITIATOR}"
mapped-luns = [{{ mapped = 0, lun = 0 }}]
"#
    ));
    t.push_str(&ctl_service());
    t
}

pub fn vlan_node(node: char) -> String {
    let mut t = format!(
        r#"# Test node: VLAN 100 with jumbo frames on an active-backup bond of two e1000e NICs.
hostname = "san-vlan-{node}"

[modules]
load = ["bonding", "8021q"]

# The control NIC (user network): a /25, so that the VLAN's /27 is its own network.
[[network.interfaces]]
mac = "{m0}"
name = "ctl0"
addresses = ["192.0.2.15/25"]
[[network.interfaces]]
mac = "{m1}"
name = "stor0"
[[network.interfaces]]
mac = "{m2}"
name = "stor1"

[[network.bonds]]
name = "bond0"
slaves = ["stor0", "stor1"]
mode = "active-backup"
primary = "stor0"
miimon = 100
mtu = 9000

[[network.vlans]]
link = "bond0"
id = 100
addresses = ["{addr}/27"]
"#,
        m0 = vlan_mac(node, 0),
        m1 = vlan_mac(node, 1),
        m2 = vlan_mac(node, 2),
        addr = vlan_addr(node),
    );
    t.push_str(&ctl_service());
    t
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `sanforge` with this build's init, plain progress, run from `dir`.
pub fn sanforge(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(dir);
    c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
    c.env("SANFORGE_PROGRESS", "plain");
    c
}

pub fn run_ok(c: &mut Command) -> Output {
    let o = c.output().expect("spawn");
    assert!(o.status.success(), "{c:?} failed: {}", show(&o));
    o
}

/// The built test image: the output directory inside the test project.
#[derive(Clone)]
pub struct Image {
    /// The project: `$CARGO_TARGET_TMPDIR/server-hw` (rewritten by each test process).
    pub project: PathBuf,
    pub out: PathBuf,
    /// How long the build took in this process (the kernel comes from the cache).
    pub built_in: Duration,
}

/// Serialises the tests of a process that boot VMs (two TCG VMs at once on a small
/// machine make both slow) and builds the image once for them.
static IMAGE: std::sync::Mutex<Option<Image>> = std::sync::Mutex::new(None);

/// Held while a test runs its VMs: the next one waits.
pub type Turn = std::sync::MutexGuard<'static, Option<Image>>;

/// Writes the project (the default recipe with the test node configs; kernel-configs/
/// and overlays/ link into the repository) and builds it, once per test process; the
/// [`Turn`] keeps other VM tests of the process waiting until it is dropped. The node
/// configs are the same text in every run, so a later build is all cache hits.
pub fn build_image() -> (Image, Turn) {
    let mut turn = IMAGE.lock().unwrap_or_else(|e| e.into_inner());
    let image = match &*turn {
        Some(image) => image.clone(),
        None => {
            let started = Instant::now();
            let (project, out) = write_and_build();
            let image = Image {
                project,
                out,
                built_in: started.elapsed(),
            };
            *turn = Some(image.clone());
            image
        }
    };
    (image, turn)
}

fn write_and_build() -> (PathBuf, PathBuf) {
    let t = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server-hw");
    if t.exists() {
        std::fs::remove_dir_all(&t).unwrap();
    }
    std::fs::create_dir_all(&t).unwrap();
    let t = t.as_path();
    let r = repo();
    for d in ["kernel-configs", "overlays"] {
        std::os::unix::fs::symlink(r.join(d), t.join(d)).unwrap();
    }
    std::fs::create_dir_all(t.join("recipes")).unwrap();
    std::fs::create_dir_all(t.join("nodes")).unwrap();
    std::fs::write(t.join("nodes/server.toml"), server_node()).unwrap();
    std::fs::write(t.join("nodes/mkraid.toml"), mkraid_node()).unwrap();
    std::fs::write(t.join("nodes/vlan-a.toml"), vlan_node('a')).unwrap();
    std::fs::write(t.join("nodes/vlan-b.toml"), vlan_node('b')).unwrap();
    let recipe = std::fs::read_to_string(r.join("recipes/storage-node.toml")).unwrap();
    let i = recipe
        .find("\n[node]")
        .expect("the default recipe has [node]");
    let j = recipe[i + 1..]
        .find("\n[")
        .map(|j| i + 1 + j)
        .unwrap_or(recipe.len());
    let recipe = format!(
        "allow-outside-project = [\"{}\"]\n{}\n[node]\nconfig = \"nodes/server.toml\"\nconfigs = [\"nodes\"]\n{}",
        r.display(),
        &recipe[..i],
        &recipe[j..]
    );
    std::fs::write(t.join("recipes/storage-node.toml"), recipe).unwrap();
    std::fs::copy(
        r.join("recipes/storage-node.lock"),
        t.join("recipes/storage-node.lock"),
    )
    .unwrap();
    let out = t.join("out/storage-node");
    run_ok(
        sanforge(t)
            .args(["build", "recipes/storage-node.toml", "--out"])
            .arg(&out),
    );
    (t.to_path_buf(), out)
}

/// A sparse disk image of `mib` MiB.
pub fn disk(dir: &Path, name: &str, mib: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .set_len(mib << 20)
        .unwrap();
    p
}

/// A VM started by `sanforge run OUT --until-ready`, stopped when dropped.
pub struct Vm {
    /// The output directory as `sanforge run` was given it (its `.run/` holds the
    /// console and the monitor).
    pub out: PathBuf,
    pub iscsi: SocketAddr,
    pub ctl: SocketAddr,
    /// Boot to `sanforge-init: ready` as `sanforge run` measured it.
    pub ready_after: Option<f64>,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_sanforge"))
            .arg("run")
            .arg(&self.out)
            .arg("--stop")
            .output();
    }
}

/// The seconds of `sanforge run: ready after 4.2s (TCG)…`.
pub fn ready_secs(stderr: &str) -> Option<f64> {
    let rest = stderr.split("ready after ").nth(1)?;
    rest.split('s').next()?.parse().ok()
}

impl Vm {
    /// `sanforge run OUT --until-ready` with `args` (hardware, `--append`), the iSCSI
    /// port and the control shell forwarded to free loopback ports. Panics with the
    /// console when the node does not get ready.
    pub fn start(out: &Path, args: &[&str]) -> Vm {
        let mut vm = Vm::spawn(out, args);
        let o = vm.1.wait_with_output().unwrap();
        vm.0.ready_after = ready_secs(&String::from_utf8_lossy(&o.stderr));
        assert!(
            o.status.success(),
            "{} did not get ready: {}\n--- console\n{}",
            out.display(),
            show(&o),
            vm.0.console()
        );
        vm.0
    }

    /// Like [`Vm::start`] without waiting: the `sanforge run` child still running.
    pub fn spawn(out: &Path, args: &[&str]) -> (Vm, std::process::Child) {
        let iscsi = super::vm::free_port();
        let ctl = super::vm::free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_sanforge"))
            .arg("run")
            .arg(out)
            .args([
                "--until-ready",
                "--quiet",
                "--accel",
                "tcg",
                "--timeout",
                "600",
            ])
            .args(["--iscsi-port", &iscsi.to_string()])
            .args(["--forward", &format!("{ctl}:{CTL_PORT}")])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (
            Vm {
                out: out.to_path_buf(),
                iscsi: SocketAddr::from(([127, 0, 0, 1], iscsi)),
                ctl: SocketAddr::from(([127, 0, 0, 1], ctl)),
                ready_after: None,
            },
            child,
        )
    }

    pub fn state_dir(&self) -> PathBuf {
        let mut name = self.out.file_name().unwrap().to_os_string();
        name.push(".run");
        self.out.with_file_name(name)
    }

    pub fn console(&self) -> String {
        std::fs::read(self.state_dir().join("console.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Runs a shell command in the guest through the control shell: its output.
    pub fn sh(&self, cmd: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&self.ctl, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(format!("exec 2>&1; {cmd}; exit\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// [`Vm::sh`], retried for up to 30 s while the shell is not reachable yet.
    pub fn sh_ok(&self, cmd: &str) -> String {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            match self.sh(cmd) {
                Ok(o) => return o,
                Err(e) if Instant::now() > end => {
                    panic!(
                        "control shell of {}: {e}\n{}",
                        self.out.display(),
                        self.console()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        }
    }

    /// `sanforge run OUT --monitor CMD`: QEMU's answer.
    pub fn monitor(&self, cmd: &str) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_sanforge"))
            .arg("run")
            .arg(&self.out)
            .args(["--monitor", cmd])
            .output()
            .unwrap();
        assert!(o.status.success(), "--monitor {cmd}: {}", show(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Polls `cmd` in the guest until its trimmed output is `want`; how long it took.
    pub fn wait_for(&self, cmd: &str, want: &str, timeout: Duration) -> Result<Duration, String> {
        let t0 = Instant::now();
        let mut last = String::new();
        while t0.elapsed() < timeout {
            if let Ok(o) = self.sh(cmd) {
                if o.trim() == want {
                    return Ok(t0.elapsed());
                }
                last = o;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "`{cmd}` still says `{}` after {timeout:?}, not `{want}`",
            last.trim()
        ))
    }
}
