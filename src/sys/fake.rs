//! [`FakeSys`]: the recording fake of [`Sys`](super::Sys). Each call is recorded as an
//! [`Op`]; file operations happen inside a directory (configfs and sysfs writes land as
//! plain files), the network links are played from `/sys/class/net` under it.

use super::net::{IfAddr, Link, LinkChange, NewLink, NewLinkKind, RouteSpec};
use super::{kernelfs, net};
use super::{
    net_change_words, read_head, statfs_host, ExitStatus, FileKind, Output, RebootCmd, Signal, Sys,
    SysError, SysResult, SysRoot,
};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One recorded call of [`FakeSys`]; `Display` is the stable one-line form that
/// `sanforge-init --root` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Mount {
        source: String,
        target: String,
        fstype: String,
        flags: u64,
        data: String,
    },
    FinitModule {
        path: String,
        params: String,
    },
    Sethostname(String),
    LinkAdd(NewLink),
    LinkSet(String, LinkChange),
    AddrAdd(String, IfAddr),
    AddrDel(String, IfAddr),
    RouteAdd(RouteSpec),
    RouteDel(RouteSpec),
    Reboot(RebootCmd),
    Sync,
    Spawn(Vec<String>),
    Kill(i32, Signal),
    Mkdir(String),
    Write(String, String),
    Symlink(String, String),
    DeleteModule(String),
    Run(Vec<String>),
    WatchdogOpen(String),
    WatchdogPet,
    WatchdogClose,
    WriteDurable(String, usize),
    Copy(String, String),
    Chown(String, u32, u32),
    Rename(String, String),
    Remove(String),
    FsyncDir(String),
    SwitchRoot(String),
    Rmdir(String),
    Append(String, usize),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                write!(f, "mount {source} {target} {fstype}")?;
                if *flags != 0 {
                    write!(f, " flags={flags:#x}")?;
                }
                if !data.is_empty() {
                    write!(f, " {data}")?;
                }
                Ok(())
            }
            Op::FinitModule { path, params } => write!(f, "finit_module {path} {params:?}"),
            Op::Sethostname(n) => write!(f, "sethostname {n}"),
            Op::LinkAdd(l) => write!(f, "link_add {l}"),
            Op::LinkSet(i, LinkChange::Up) => write!(f, "link_up {i}"),
            Op::LinkSet(i, LinkChange::Down) => write!(f, "link_down {i}"),
            Op::LinkSet(i, LinkChange::Mtu(m)) => write!(f, "mtu {i} {m}"),
            Op::LinkSet(i, LinkChange::Name(n)) => write!(f, "rename {i} {n}"),
            Op::LinkSet(i, LinkChange::Master(b)) => write!(f, "master {i} {b}"),
            // A labelled (IPv4 secondary) address shows its label, as `ifconfig` does.
            Op::AddrAdd(i, a) => write!(f, "addr {} {a}", a.label.as_deref().unwrap_or(i)),
            Op::AddrDel(i, a) => write!(f, "addr_del {i} {a}"),
            Op::RouteAdd(r) => write!(f, "route {r}"),
            Op::RouteDel(r) => write!(f, "route_del {r}"),
            Op::Reboot(RebootCmd::PowerOff) => write!(f, "reboot poweroff"),
            Op::Reboot(RebootCmd::Reboot) => write!(f, "reboot restart"),
            Op::Sync => write!(f, "sync"),
            Op::Spawn(argv) => write!(f, "spawn {}", argv.join(" ")),
            Op::Kill(pid, s) => write!(f, "kill {pid} {}", s.name()),
            Op::Mkdir(p) => write!(f, "mkdir {p}"),
            Op::Write(p, v) => write!(f, "write {p} {v}"),
            Op::Symlink(t, l) => write!(f, "symlink {t} {l}"),
            Op::DeleteModule(m) => write!(f, "delete_module {m}"),
            Op::Run(argv) => write!(f, "run {}", argv.join(" ")),
            Op::WatchdogOpen(d) => write!(f, "watchdog_open {d}"),
            Op::WatchdogPet => write!(f, "watchdog_pet"),
            Op::WatchdogClose => write!(f, "watchdog_close V"),
            Op::WriteDurable(p, n) => write!(f, "write_durable {p} ({n} bytes)"),
            Op::Copy(a, b) => write!(f, "copy {a} {b}"),
            Op::Chown(p, u, g) => write!(f, "chown {p} {u}:{g}"),
            Op::Rename(a, b) => write!(f, "rename {a} {b}"),
            Op::Remove(p) => write!(f, "remove {p}"),
            Op::FsyncDir(p) => write!(f, "fsync {p}"),
            Op::SwitchRoot(p) => write!(f, "switch_root {p}"),
            Op::Rmdir(p) => write!(f, "rmdir {p}"),
            Op::Append(p, n) => write!(f, "append {p} ({n} bytes)"),
        }
    }
}

impl Op {
    /// The op as `sanforge-init --root` prints it: CHAP secrets (LIO `auth/password*`,
    /// SCST `IncomingUser`/`OutgoingUser`) as `<redacted>`. `Display` shows everything
    /// (`--show-secrets`, and what tests and scripted failures match).
    pub fn redacted(&self) -> String {
        match self {
            Op::Write(p, v) => format!("write {p} {}", crate::util::redact::write_value(p, v)),
            other => other.to_string(),
        }
    }
}

/// A [`Sys`] that records every call, performs file operations under its root and
/// succeeds at everything else. Tests can script failures, child exits and signals.
#[derive(Debug)]
pub struct FakeSys {
    root: SysRoot,
    pub ops: Vec<Op>,
    /// An op whose `Display` starts with one of these prefixes fails with the errno.
    pub fail: Vec<(String, i32)>,
    /// Returned by `wait_any_nohang`, front first.
    pub exits: VecDeque<(i32, ExitStatus)>,
    /// Returned by `wait_signal`, front first; `None` entries are timeouts.
    pub signals: VecDeque<Option<Signal>>,
    pub release: Option<String>,
    next_pid: i32,
    watchdog_open: bool,
    /// The directory that plays `/sys` (see [`FakeSys::with_kernel_tree`]).
    kernel_tree: Option<kernelfs::KernelTree>,
    /// The links, read from `/sys/class/net` under the root at first use (see
    /// [`FakeSys::links`](Sys::links)), then changed by the link calls.
    net: Option<FakeNet>,
    /// The fake `CLOCK_BOOTTIME`: starts at 1.5 s (the kernel's share of the boot)
    /// and advances by [`FakeSys::TICK`] at every reading.
    pub clock: Duration,
    /// The tag of each [`Sys::spawn_logged`] with the pid it got (the spawn itself is
    /// recorded as any spawn).
    pub logged: Vec<(i32, String)>,
}

/// The links [`FakeSys`] plays.
#[derive(Debug, Default)]
pub(super) struct FakeNet {
    links: Vec<Link>,
    /// Links whose `carrier` file says 0: they stay without carrier when up.
    unplugged: Vec<String>,
}

/// Where [`FakeSys::run_capture`] finds the answers of a command, under the root:
/// `<dir>/<basename of argv[0]>` is its stdout (exit 0 unless `<basename>.rc` holds
/// another code); no such file means the program is missing (`ENOENT`). For
/// [`FakeSys::run_output`], `<basename>.err` is its stderr, and a file named after the
/// basename and the first argument (`lvm.vgchange`, with `.rc` and `.err` beside it)
/// answers for that subcommand instead, and a directory `<name>.tree` is copied into
/// the root when the command runs (what it makes: `/dev/md/NAME`, sysfs entries).
pub const FAKE_RUN_DIR: &str = "/fake-run";

impl FakeSys {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FakeSys {
            root: SysRoot::new(root),
            ops: Vec::new(),
            fail: Vec::new(),
            exits: VecDeque::new(),
            signals: VecDeque::new(),
            release: None,
            next_pid: 100,
            watchdog_open: false,
            kernel_tree: None,
            net: None,
            clock: Duration::from_millis(1500),
            logged: Vec::new(),
        }
    }

    /// How far the fake clock moves at each [`Sys::boottime`] reading.
    pub const TICK: Duration = Duration::from_millis(10);

    /// Plays these links instead of those of `/sys/class/net` under the root (the
    /// init's `network-plan`, which pretends every link of the config exists).
    pub fn with_links(mut self, links: Vec<Link>) -> Self {
        self.net = Some(FakeNet {
            links,
            unplugged: Vec::new(),
        });
        self
    }

    /// The fake's links: at first use, one per directory of `/sys/class/net` under
    /// the root (and `lo`), with `ifindex`, `address`, `mtu`, `max_mtu`, `kind`,
    /// `carrier` (`0`: no carrier once up) and `operstate` (`up`) read from files
    /// there when present; every link starts down unless its operstate says up.
    fn net(&mut self) -> &mut FakeNet {
        let root = &self.root;
        self.net.get_or_insert_with(|| {
            let dir = root.join(Path::new("/sys/class/net"));
            let mut net = FakeNet::default();
            for (n, name) in list_dir(&dir).unwrap_or_default().into_iter().enumerate() {
                let read = |f: &str| {
                    std::fs::read_to_string(dir.join(&name).join(f))
                        .ok()
                        .map(|s| s.trim().to_string())
                };
                let index = read("ifindex").and_then(|s| s.parse().ok());
                let lo = name == "lo";
                let up = read("operstate").is_some_and(|s| s == "up");
                if read("carrier").is_some_and(|s| s == "0") {
                    net.unplugged.push(name.clone());
                }
                net.links.push(Link {
                    index: index.unwrap_or(if lo { 1 } else { n as u32 + 2 }),
                    mac: read("address")
                        .and_then(|m| net::parse_mac(&m))
                        .filter(|m| m != "00:00:00:00:00:00"),
                    perm_mac: None,
                    mtu: read("mtu").and_then(|s| s.parse().ok()).unwrap_or(if lo {
                        65536
                    } else {
                        1500
                    }),
                    max_mtu: read("max_mtu").and_then(|s| s.parse().ok()),
                    up,
                    carrier: up && !net.unplugged.contains(&name),
                    kind: read("kind"),
                    master: None,
                    name,
                });
            }
            // Every kernel has a loopback.
            if !net.links.iter().any(|l| l.name == "lo") {
                net.links.push(Link {
                    index: 1,
                    name: "lo".into(),
                    mtu: 65536,
                    ..Link::default()
                });
            }
            net.links.sort_by_key(|l| l.index);
            net
        })
    }

    /// Applies a successful link change to the model; an errno when the kernel would
    /// refuse it.
    fn change_link(&mut self, ifname: &str, change: &LinkChange) -> Result<(), i32> {
        let net = self.net();
        let master = match change {
            LinkChange::Master(b) => Some(
                net.links
                    .iter()
                    .find(|l| &l.name == b)
                    .map(|l| l.index)
                    .ok_or(libc::ENODEV)?,
            ),
            _ => None,
        };
        if let LinkChange::Name(n) = change {
            if net.links.iter().any(|l| &l.name == n) {
                return Err(libc::EEXIST);
            }
        }
        let unplugged = net.unplugged.contains(&ifname.to_string());
        let l = net
            .links
            .iter_mut()
            .find(|l| l.name == ifname)
            .ok_or(libc::ENODEV)?;
        match change {
            LinkChange::Up => {
                l.up = true;
                l.carrier = !unplugged;
            }
            LinkChange::Down => {
                l.up = false;
                l.carrier = false;
            }
            LinkChange::Mtu(m) => {
                if l.max_mtu.is_some_and(|max| *m > max) {
                    return Err(libc::EINVAL);
                }
                l.mtu = *m;
            }
            LinkChange::Name(_) if l.up => return Err(libc::EBUSY),
            LinkChange::Name(n) => l.name = n.clone(),
            // The bonding driver refuses a slave that is up, then brings it up.
            LinkChange::Master(_) if l.up => return Err(libc::EPERM),
            LinkChange::Master(_) => {
                l.master = master;
                l.up = true;
                l.carrier = !unplugged;
            }
        }
        Ok(())
    }

    fn add_link(&mut self, link: &NewLink) -> Result<(), i32> {
        let net = self.net();
        let parent_mtu = match &link.kind {
            NewLinkKind::Vlan { link: p, .. } => Some(
                net.links
                    .iter()
                    .find(|l| &l.name == p)
                    .map(|l| l.mtu)
                    .ok_or(libc::ENODEV)?,
            ),
            NewLinkKind::Bond(_) => None,
        };
        let kind = match link.kind {
            NewLinkKind::Bond(_) => "bond",
            NewLinkKind::Vlan { .. } => "vlan",
        };
        if let Some(l) = net.links.iter_mut().find(|l| l.name == link.name) {
            // As the real one: an existing bond takes the options.
            if kind == "bond" && l.kind.as_deref() == Some("bond") {
                if let Some(m) = link.mtu {
                    l.mtu = m;
                }
                return Ok(());
            }
            return Err(libc::EEXIST);
        }
        let index = net.links.iter().map(|l| l.index).max().unwrap_or(0) + 1;
        net.links.push(Link {
            index,
            name: link.name.clone(),
            mtu: link.mtu.or(parent_mtu).unwrap_or(1500),
            kind: Some(kind.into()),
            ..Link::default()
        });
        Ok(())
    }

    /// Plays sysfs and configfs in the directory `sys` (a path as seen through the
    /// trait, standing for `/sys`), as the kernel would for the OCF agent: a write there
    /// replaces the value of an existing attribute file and never creates one; mkdir of
    /// a backstore `kernel/config/target/core/HBA/DEVICE` makes the attribute files
    /// configfs makes with a new device; rmdir under `kernel/config` drops the item's
    /// attribute files and default groups, and fails with `ENOTEMPTY` while a symlink
    /// is left inside. Without it the fake writes, creates and removes plain files.
    pub fn with_kernel_tree(mut self, sys: impl Into<PathBuf>) -> Self {
        self.kernel_tree = Some(kernelfs::KernelTree::new(sys.into()));
        self
    }

    fn record(&mut self, op: Op, what: impl fmt::Display, name: &'static str) -> SysResult<()> {
        let line = op.to_string();
        self.ops.push(op);
        match self.fail.iter().find(|(p, _)| line.starts_with(p.as_str())) {
            Some((_, errno)) => Err(SysError::new(
                name,
                what,
                io::Error::from_raw_os_error(*errno),
            )),
            None => Ok(()),
        }
    }
}

pub(super) fn show(p: &Path) -> String {
    p.display().to_string()
}

impl Sys for FakeSys {
    fn root(&self) -> &SysRoot {
        &self.root
    }
    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: u64,
        data: &str,
    ) -> SysResult<()> {
        let op = Op::Mount {
            source: source.into(),
            target: show(target),
            fstype: fstype.into(),
            flags,
            data: data.into(),
        };
        self.record(op, format!("{fstype} on {}", target.display()), "mount")
    }
    fn finit_module(&mut self, path: &Path, params: &str) -> SysResult<()> {
        self.record(
            Op::FinitModule {
                path: show(path),
                params: params.into(),
            },
            path.display(),
            "load module",
        )
    }
    fn sethostname(&mut self, name: &str) -> SysResult<()> {
        self.record(Op::Sethostname(name.into()), name, "set hostname")
    }
    fn kernel_release(&mut self) -> Option<String> {
        self.release.clone()
    }
    fn links(&mut self) -> SysResult<Vec<Link>> {
        Ok(self.net().links.clone())
    }
    fn link_add(&mut self, link: &NewLink) -> SysResult<()> {
        let what = link.name.clone();
        self.record(Op::LinkAdd(link.clone()), &what, "create link")?;
        self.add_link(link).map_err(|errno| {
            SysError::new("create link", what, io::Error::from_raw_os_error(errno))
        })
    }
    fn link_set(&mut self, ifname: &str, change: &LinkChange) -> SysResult<()> {
        let (op, what) = net_change_words(ifname, change);
        self.record(Op::LinkSet(ifname.into(), change.clone()), &what, op)?;
        self.change_link(ifname, change)
            .map_err(|errno| SysError::new(op, what, io::Error::from_raw_os_error(errno)))
    }
    fn addr_add(&mut self, ifname: &str, addr: &IfAddr) -> SysResult<()> {
        self.record(
            Op::AddrAdd(ifname.into(), addr.clone()),
            format!("{} to {ifname}", addr.net),
            "add address",
        )
    }
    fn addr_del(&mut self, ifname: &str, addr: &IfAddr) -> SysResult<()> {
        self.record(
            Op::AddrDel(ifname.into(), addr.clone()),
            format!("{} from {ifname}", addr.net),
            "remove address",
        )
    }
    fn route_add(&mut self, route: &RouteSpec) -> SysResult<()> {
        self.record(Op::RouteAdd(route.clone()), route, "add route")
    }
    fn route_del(&mut self, route: &RouteSpec) -> SysResult<()> {
        self.record(Op::RouteDel(route.clone()), route, "remove route")
    }
    fn reboot(&mut self, cmd: RebootCmd) -> SysResult<()> {
        self.record(Op::Reboot(cmd), format!("{cmd:?}"), "reboot")
    }
    fn sync(&mut self) {
        self.ops.push(Op::Sync);
    }
    fn spawn(&mut self, argv: &[String], _env: &[(String, String)]) -> SysResult<i32> {
        let prog = argv.first().cloned().unwrap_or_default();
        self.record(Op::Spawn(argv.to_vec()), prog, "start")?;
        self.next_pid += 1;
        Ok(self.next_pid)
    }
    fn spawn_logged(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        tag: &str,
    ) -> SysResult<i32> {
        let pid = self.spawn(argv, env)?;
        self.logged.push((pid, tag.to_string()));
        Ok(pid)
    }
    fn wait_any_nohang(&mut self) -> Option<(i32, ExitStatus)> {
        self.exits.pop_front()
    }
    fn block_signals(&mut self) -> SysResult<()> {
        Ok(())
    }
    fn wait_signal(&mut self, _timeout: Duration) -> Option<Signal> {
        self.signals.pop_front().flatten()
    }
    fn kill(&mut self, pid: i32, sig: Signal) -> SysResult<()> {
        self.record(Op::Kill(pid, sig), format!("pid {pid}"), "signal")
    }
    fn sleep(&mut self, _d: Duration) {}
    fn mkdir(&mut self, path: &Path) -> SysResult<()> {
        self.record(Op::Mkdir(show(path)), path.display(), "create directory")?;
        let full = self.root.join(path);
        std::fs::create_dir_all(&full)
            .and_then(|()| match &self.kernel_tree {
                Some(k) => k.made_dir(path, &full),
                None => Ok(()),
            })
            .map_err(|e| SysError::new("create directory", path.display(), e))
    }
    fn write_file(&mut self, path: &Path, value: &str) -> SysResult<()> {
        self.record(Op::Write(show(path), value.into()), path.display(), "write")?;
        if self.kernel_tree.as_ref().is_some_and(|k| k.holds(path)) {
            return kernelfs::write_attr(&self.root.join(path), value)
                .map_err(|e| SysError::new("write", path.display(), e));
        }
        // The kernel creates attribute groups (wwn/, attrib/, auth/) by itself.
        let p = self.root.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| SysError::new("write", path.display(), e))?;
        }
        std::fs::write(p, value).map_err(|e| SysError::new("write", path.display(), e))
    }
    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult<()> {
        self.record(
            Op::Symlink(show(target), show(link)),
            link.display(),
            "create symlink",
        )?;
        let t = if target.is_absolute() {
            self.root.join(target)
        } else {
            target.to_path_buf()
        };
        let l = self.root.join(link);
        if let Some(parent) = l.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| SysError::new("create symlink", link.display(), e))?;
        }
        std::os::unix::fs::symlink(t, l)
            .map_err(|e| SysError::new("create symlink", link.display(), e))
    }
    fn read_to_string(&mut self, path: &Path) -> SysResult<String> {
        std::fs::read_to_string(self.root.join(path))
            .map_err(|e| SysError::new("read", path.display(), e))
    }
    fn exists(&mut self, path: &Path) -> bool {
        self.root.join(path).exists()
    }
    fn list_dir(&mut self, path: &Path) -> SysResult<Vec<String>> {
        list_dir(&self.root.join(path)).map_err(|e| SysError::new("list", path.display(), e))
    }
    fn delete_module(&mut self, name: &str) -> SysResult<()> {
        self.record(Op::DeleteModule(name.into()), name, "unload module")
    }
    fn run_capture(
        &mut self,
        argv: &[String],
        _timeout: Duration,
    ) -> SysResult<(ExitStatus, String)> {
        let prog = argv.first().cloned().unwrap_or_default();
        self.record(Op::Run(argv.to_vec()), &prog, "run")?;
        let base = Path::new(&prog)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = self.root.join(Path::new(FAKE_RUN_DIR));
        let out =
            std::fs::read_to_string(dir.join(&base)).map_err(|e| SysError::new("run", &prog, e))?;
        let code = std::fs::read_to_string(dir.join(format!("{base}.rc")))
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0);
        Ok((ExitStatus::Exited(code), out))
    }
    fn run_output(
        &mut self,
        argv: &[String],
        _env: &[(String, String)],
        _timeout: Duration,
    ) -> SysResult<Output> {
        let prog = argv.first().cloned().unwrap_or_default();
        self.record(Op::Run(argv.to_vec()), &prog, "run")?;
        let base = Path::new(&prog)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = self.root.join(Path::new(FAKE_RUN_DIR));
        let sub = argv.get(1).map(|a| format!("{base}.{a}"));
        let name = match sub {
            Some(s) if dir.join(&s).is_file() => s,
            _ => base,
        };
        let stdout =
            std::fs::read_to_string(dir.join(&name)).map_err(|e| SysError::new("run", &prog, e))?;
        let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).ok();
        let tree = dir.join(format!("{name}.tree"));
        if tree.is_dir() {
            copy_tree(&tree, self.root.dir()).map_err(|e| SysError::new("run", &prog, e))?;
        }
        let code = read("rc").and_then(|c| c.trim().parse().ok()).unwrap_or(0);
        Ok(Output {
            status: ExitStatus::Exited(code),
            stdout,
            stderr: read("err").unwrap_or_default(),
        })
    }
    fn watchdog_open(&mut self, device: &Path) -> SysResult<()> {
        self.record(
            Op::WatchdogOpen(show(device)),
            device.display(),
            "open watchdog",
        )?;
        self.watchdog_open = true;
        Ok(())
    }
    fn watchdog_pet(&mut self) -> SysResult<()> {
        if !self.watchdog_open {
            return Ok(());
        }
        self.record(Op::WatchdogPet, "watchdog", "pet")
    }
    fn watchdog_close(&mut self) -> SysResult<()> {
        if !self.watchdog_open {
            return Ok(());
        }
        self.watchdog_open = false;
        self.record(Op::WatchdogClose, "watchdog", "close")
    }
    fn read_head(&mut self, path: &Path, len: usize) -> SysResult<Vec<u8>> {
        read_head(&self.root.join(path), len).map_err(|e| SysError::new("read", path.display(), e))
    }
    fn write_durable(&mut self, path: &Path, data: &[u8]) -> SysResult<()> {
        self.record(
            Op::WriteDurable(show(path), data.len()),
            path.display(),
            "write",
        )?;
        std::fs::write(self.root.join(path), data)
            .map_err(|e| SysError::new("write", path.display(), e))
    }
    fn copy_file(&mut self, from: &Path, to: &Path) -> SysResult<()> {
        self.record(Op::Copy(show(from), show(to)), to.display(), "copy to")?;
        std::fs::copy(self.root.join(from), self.root.join(to))
            .map(|_| ())
            .map_err(|e| SysError::new("copy to", to.display(), e))
    }
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> SysResult<()> {
        self.record(Op::Chown(show(path), uid, gid), path.display(), "chown")
    }
    fn rename(&mut self, from: &Path, to: &Path) -> SysResult<()> {
        self.record(Op::Rename(show(from), show(to)), from.display(), "rename")?;
        std::fs::rename(self.root.join(from), self.root.join(to))
            .map_err(|e| SysError::new("rename", from.display(), e))
    }
    fn remove_file(&mut self, path: &Path) -> SysResult<()> {
        self.record(Op::Remove(show(path)), path.display(), "remove")?;
        std::fs::remove_file(self.root.join(path))
            .map_err(|e| SysError::new("remove", path.display(), e))
    }
    fn fsync_dir(&mut self, path: &Path) -> SysResult<()> {
        self.record(Op::FsyncDir(show(path)), path.display(), "fsync")
    }
    fn switch_root(&mut self, new_root: &Path) -> SysResult<()> {
        self.record(
            Op::SwitchRoot(show(new_root)),
            new_root.display(),
            "switch root to",
        )
    }
    fn remove_dir(&mut self, path: &Path) -> SysResult<()> {
        self.record(Op::Rmdir(show(path)), path.display(), "remove directory")?;
        let full = self.root.join(path);
        match &self.kernel_tree {
            Some(k) if k.in_configfs(path) => kernelfs::drop_item(&full),
            _ => Ok(()),
        }
        .and_then(|()| std::fs::remove_dir(&full))
        .map_err(|e| SysError::new("remove directory", path.display(), e))
    }
    fn file_kind(&mut self, path: &Path) -> Option<FileKind> {
        file_kind(&self.root.join(path))
    }
    fn canonicalize(&mut self, path: &Path) -> SysResult<PathBuf> {
        canonicalize(&self.root, path).map_err(|e| SysError::new("resolve", path.display(), e))
    }
    fn append(&mut self, path: &Path, data: &str) -> SysResult<()> {
        self.record(
            Op::Append(show(path), data.len()),
            path.display(),
            "append to",
        )?;
        append(&self.root.join(path), data)
            .map_err(|e| SysError::new("append to", path.display(), e))
    }
    /// The fake's kernel log is the plain file `/dev/kmsg` under its root.
    fn kernel_log(&mut self) -> SysResult<String> {
        self.read_to_string(Path::new("/dev/kmsg"))
    }
    fn statfs(&mut self, path: &Path) -> SysResult<(u64, u64)> {
        statfs_host(&self.root.join(path)).map_err(|e| SysError::new("statfs", path.display(), e))
    }
    fn boottime(&mut self) -> Duration {
        let now = self.clock;
        self.clock += FakeSys::TICK;
        now
    }
}

/// Copies the tree `from` into `to` (files, directories, symlinks as they are).
pub(super) fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        let t = e.file_type()?;
        if t.is_symlink() {
            let target = std::fs::read_link(e.path())?;
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(target, &dest)?;
        } else if t.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

/// `lstat(2)` of a host path.
pub(super) fn file_kind(p: &Path) -> Option<FileKind> {
    let t = std::fs::symlink_metadata(p).ok()?.file_type();
    Some(if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Dir
    } else if t.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    })
}

/// Where `path` (as seen inside `root`) leads, as seen inside `root`.
pub(super) fn canonicalize(root: &SysRoot, path: &Path) -> io::Result<PathBuf> {
    let full = std::fs::canonicalize(root.join(path))?;
    let base = std::fs::canonicalize(root.dir())?;
    Ok(match full.strip_prefix(&base) {
        Ok(rel) => Path::new("/").join(rel),
        Err(_) => full,
    })
}

pub(super) fn append(p: &Path, data: &str) -> io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)?
        .write_all(data.as_bytes())
}

pub(super) fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)? {
        names.push(e?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
