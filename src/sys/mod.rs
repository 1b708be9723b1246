//! The only place with raw syscalls: everything sanforge-init and its OCF agent
//! (`crate::agent`) ask of the kernel goes through the [`Sys`] trait, so the boot steps
//! and the agent's actions can run against a recording fake.
//!
//! [`RealSys`] calls libc (every `unsafe` block says why it is sound) and talks
//! rtnetlink for the network ([`net`] has the vocabulary, `netlink.rs` the messages);
//! [`FakeSys`] records each call as an [`Op`], plays the network links (from
//! `/sys/class/net` under its root) and performs file operations inside a directory,
//! so configfs and sysfs writes land as plain files in a temporary tree; asked to
//! ([`FakeSys::with_kernel_tree`]), it also plays what sysfs and configfs do that plain
//! files do not (`kernelfs`). Both resolve paths through a [`SysRoot`]: `/` in
//! production, a temporary directory in tests. Reads: whatever the caller names
//! (sysfs, procfs, configfs, `/lib/modules`).
//!
//! Files: this one (the trait and its types), `real.rs` ([`RealSys`]), `fake.rs`
//! ([`FakeSys`] and its [`Op`] log), `kernelfs.rs`, `net.rs`, `netlink.rs`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
// The one module allowed `unsafe` (Cargo.toml denies it elsewhere); every block says
// why it is sound (`clippy::undocumented_unsafe_blocks`, denied crate-wide).
#![allow(unsafe_code)]

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

mod kernelfs;
pub mod net;
mod netlink;
mod real;
use net::{IfAddr, Link, LinkChange, NewLink, RouteSpec};
pub use real::{enter_netns, RealSys};

mod fake;
use fake::{append, canonicalize, file_kind, list_dir};
pub use fake::{FakeSys, Op, FAKE_RUN_DIR};

/// The init's argument that runs the log relay of [`Sys::spawn_logged`].
pub const LOG_RELAY: &str = "log-relay";

/// The directory every absolute path of the init is resolved under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot(PathBuf);

impl SysRoot {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SysRoot(dir.into())
    }
    pub fn dir(&self) -> &Path {
        &self.0
    }
    /// `path` (absolute, as seen inside the image) resolved under the root.
    pub fn join(&self, path: &Path) -> PathBuf {
        let mut out = self.0.clone();
        for c in path.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::ParentDir => out.push(".."),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        out
    }
}

/// An error from one syscall: the operation, the path (or object) and the OS error.
#[derive(Debug)]
pub struct SysError {
    pub op: &'static str,
    pub what: String,
    pub err: io::Error,
}

impl SysError {
    pub fn new(op: &'static str, what: impl fmt::Display, err: io::Error) -> Self {
        SysError {
            op,
            what: what.to_string(),
            err,
        }
    }
    pub fn errno(&self) -> Option<i32> {
        self.err.raw_os_error()
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {}: {}", self.op, self.what, self.err)
    }
}

impl std::error::Error for SysError {}

pub type SysResult<T> = Result<T, SysError>;

/// The signals PID 1 handles; everything else is ignored (blocked or unhandled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
    Chld,
    Usr1,
    Usr2,
    Pwr,
    Kill,
}

impl Signal {
    pub fn number(self) -> i32 {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Chld => libc::SIGCHLD,
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Usr2 => libc::SIGUSR2,
            Signal::Pwr => libc::SIGPWR,
            Signal::Kill => libc::SIGKILL,
        }
    }
    pub fn from_number(n: i32) -> Option<Signal> {
        HANDLED
            .iter()
            .copied()
            .chain([Signal::Kill])
            .find(|s| s.number() == n)
    }
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Chld => "CHLD",
            Signal::Usr1 => "USR1",
            Signal::Usr2 => "USR2",
            Signal::Pwr => "PWR",
            Signal::Kill => "KILL",
        }
    }
}

/// The signals blocked at start and collected with `wait_signal`.
pub const HANDLED: [Signal; 6] = [
    Signal::Term,
    Signal::Int,
    Signal::Chld,
    Signal::Usr1,
    Signal::Usr2,
    Signal::Pwr,
];

/// What `reboot(2)` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootCmd {
    PowerOff,
    Reboot,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit status {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// What a finished command printed, and how it ended ([`Sys::run_output`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The last non-empty line of stderr (what a failing tool says last), if any.
    pub fn last_error_line(&self) -> Option<&str> {
        self.stderr
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
    }
}

/// Runs `argv` through `sys` (no extra environment): its stdout when it exits 0, else
/// the exit code (`None` when killed or not started) and a message naming the command,
/// how it ended and the last line of its stderr.
pub fn run_stdout(
    sys: &mut dyn Sys,
    argv: &[&str],
    timeout: Duration,
) -> Result<String, (Option<i32>, String)> {
    let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
    match sys.run_output(&argv, &[], timeout) {
        Ok(o) if o.status.success() => Ok(o.stdout),
        Ok(o) => {
            let code = match o.status {
                ExitStatus::Exited(c) => Some(c),
                ExitStatus::Signaled(_) => None,
            };
            let why = o.last_error_line().unwrap_or("no message");
            Err((
                code,
                format!("`{}` failed ({}): {why}", argv.join(" "), o.status),
            ))
        }
        Err(e) => Err((None, format!("`{}`: {e}", argv.join(" ")))),
    }
}

/// Every kernel interface the init and the OCF agent use. File operations take
/// absolute paths as seen inside the image; implementations resolve them under their
/// [`SysRoot`].
pub trait Sys {
    fn root(&self) -> &SysRoot;
    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: u64,
        data: &str,
    ) -> SysResult<()>;
    /// Loads a module from its file (`finit_module(2)`); `EEXIST` means already loaded.
    fn finit_module(&mut self, path: &Path, params: &str) -> SysResult<()>;
    fn sethostname(&mut self, name: &str) -> SysResult<()>;
    /// The running kernel's release (`uname -r`).
    fn kernel_release(&mut self) -> Option<String>;
    /// Every network link, in ifindex order (an rtnetlink `RTM_GETLINK` dump).
    fn links(&mut self) -> SysResult<Vec<Link>>;
    /// Creates a bond or a VLAN. When a bond of that name exists already (the bonding
    /// driver makes `bond0` when it is loaded), its options are set instead.
    fn link_add(&mut self, link: &NewLink) -> SysResult<()>;
    /// Changes one thing of an existing link, named by its current name.
    fn link_set(&mut self, ifname: &str, change: &LinkChange) -> SysResult<()>;
    /// Adds an address to a link; `EEXIST` when it is there already.
    fn addr_add(&mut self, ifname: &str, addr: &IfAddr) -> SysResult<()>;
    /// Removes an address from a link.
    fn addr_del(&mut self, ifname: &str, addr: &IfAddr) -> SysResult<()>;
    /// Adds a route to the main table; `EEXIST` when it is there already.
    fn route_add(&mut self, route: &RouteSpec) -> SysResult<()>;
    /// Removes a route from the main table.
    fn route_del(&mut self, route: &RouteSpec) -> SysResult<()>;
    fn reboot(&mut self, cmd: RebootCmd) -> SysResult<()>;
    fn sync(&mut self);
    /// Starts `argv` with exactly `env`, an empty signal mask, in a new session.
    fn spawn(&mut self, argv: &[String], env: &[(String, String)]) -> SysResult<i32>;
    /// [`Sys::spawn`] with the child's stdout and stderr on a pipe to the init's log
    /// relay (`/init log-relay TAG`, `init::logs::relay`): its lines go to the console
    /// and, tagged `TAG`, to the kernel log. By default (and when the relay cannot be
    /// started) a plain spawn: a service never waits for its logging.
    fn spawn_logged(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        _tag: &str,
    ) -> SysResult<i32> {
        self.spawn(argv, env)
    }
    /// Reaps one exited child if any (`waitpid(-1, WNOHANG)`).
    fn wait_any_nohang(&mut self) -> Option<(i32, ExitStatus)>;
    /// Blocks [`HANDLED`] so that they are only seen through `wait_signal`.
    fn block_signals(&mut self) -> SysResult<()>;
    /// Waits up to `timeout` for one of the [`HANDLED`] signals.
    fn wait_signal(&mut self, timeout: Duration) -> Option<Signal>;
    /// `pid` -1 means every process but PID 1.
    fn kill(&mut self, pid: i32, sig: Signal) -> SysResult<()>;
    fn sleep(&mut self, d: Duration);
    /// Creates a directory and its missing parents.
    fn mkdir(&mut self, path: &Path) -> SysResult<()>;
    /// Writes `value` with a single `write(2)` (sysfs and configfs need this).
    fn write_file(&mut self, path: &Path, value: &str) -> SysResult<()>;
    /// Creates `link` pointing at `target`; an absolute target is resolved under the root.
    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult<()>;
    fn read_to_string(&mut self, path: &Path) -> SysResult<String>;
    fn exists(&mut self, path: &Path) -> bool;
    /// Names of the entries of a directory, sorted.
    fn list_dir(&mut self, path: &Path) -> SysResult<Vec<String>>;
    /// Unloads a module (`delete_module(2)`, `O_NONBLOCK`); `ENOENT` means not loaded.
    fn delete_module(&mut self, name: &str) -> SysResult<()>;
    /// Runs `argv` to completion (killed after `timeout`) and returns its exit status
    /// and stdout. Used for short status commands (`crm_mon -1`), never for services.
    fn run_capture(
        &mut self,
        argv: &[String],
        timeout: Duration,
    ) -> SysResult<(ExitStatus, String)>;
    /// Runs `argv` to completion (killed after `timeout`) with `env` added to its
    /// environment (otherwise only `PATH`): its exit status, stdout and stderr. For the
    /// storage tools (mdadm, lvm), which need an environment and say why on stderr.
    fn run_output(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> SysResult<Output>;
    /// Opens (and so arms) a watchdog device; the init keeps it open and pets it.
    fn watchdog_open(&mut self, device: &Path) -> SysResult<()>;
    /// Pets the open watchdog (one write of `1`); no-op when none is open.
    fn watchdog_pet(&mut self) -> SysResult<()>;
    /// Writes the magic `V` and closes the watchdog, disarming it (unless the driver
    /// was built with nowayout); no-op when none is open.
    fn watchdog_close(&mut self) -> SysResult<()>;
    /// Up to `len` bytes from the start of a file or block device (a boot sector).
    fn read_head(&mut self, path: &Path, len: usize) -> SysResult<Vec<u8>>;
    /// Creates or truncates `path`, writes `data` and fsyncs it.
    fn write_durable(&mut self, path: &Path, data: &[u8]) -> SysResult<()>;
    /// Copies a regular file and fsyncs the copy.
    fn copy_file(&mut self, from: &Path, to: &Path) -> SysResult<()>;
    /// `rename(2)`: atomic replacement within one file system.
    fn rename(&mut self, from: &Path, to: &Path) -> SysResult<()>;
    fn remove_file(&mut self, path: &Path) -> SysResult<()>;
    /// fsync(2) on a directory: makes renames and removals in it durable.
    fn fsync_dir(&mut self, path: &Path) -> SysResult<()>;
    /// Makes the mount at `new_root` the root: chdir into it, move it onto `/`
    /// (`MS_MOVE`), chroot there and chdir to the new `/` (what switch_root does).
    fn switch_root(&mut self, new_root: &Path) -> SysResult<()>;
    /// `chown(2)`: daemons that drop privileges need their state files.
    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> SysResult<()>;
    /// `rmdir(2)`: removes an empty directory (configfs removes an item this way).
    fn remove_dir(&mut self, path: &Path) -> SysResult<()>;
    /// What `path` is, without following a final symlink (`lstat(2)`); None when it
    /// does not exist or cannot be examined.
    fn file_kind(&mut self, path: &Path) -> Option<FileKind>;
    /// Where `path` leads with every symlink resolved, as seen inside the root (the
    /// host path when it leads out of the root).
    fn canonicalize(&mut self, path: &Path) -> SysResult<PathBuf>;
    /// Appends `data` to `path`, creating the file when missing (log files).
    fn append(&mut self, path: &Path, data: &str) -> SysResult<()>;
    /// The kernel log records still in the ring buffer (`/dev/kmsg` read without
    /// blocking), one `PRIO,SEQ,USEC,FLAGS;message` line each.
    fn kernel_log(&mut self) -> SysResult<String>;
    /// Time since the kernel started, suspend included (`CLOCK_BOOTTIME`): the clock
    /// of the boot timeline, readable before /proc is mounted.
    fn boottime(&mut self) -> Duration;
    /// `statvfs(2)`: the size of the file system holding `path` and the bytes
    /// available to unprivileged users, in bytes.
    fn statfs(&mut self, path: &Path) -> SysResult<(u64, u64)>;
}

/// `statvfs(2)` of a host path: (size, available) in bytes.
pub(crate) fn statfs_host(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: statvfs is plain data; the call fills it.
    let mut v: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and outlives the call; `v` is writable.
    if unsafe { libc::statvfs(c.as_ptr(), &mut v) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let frsize = v.f_frsize as u64;
    Ok((
        (v.f_blocks as u64).saturating_mul(frsize),
        (v.f_bavail as u64).saturating_mul(frsize),
    ))
}

/// What a path is, as `lstat(2)` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A device, socket or fifo.
    Other,
}

/// The operation and object words of an error about a link change: `cannot set mtu
/// of eth0 to 9000: …`.
pub(crate) fn net_change_words(ifname: &str, change: &LinkChange) -> (&'static str, String) {
    match change {
        LinkChange::Up => ("bring up", ifname.to_string()),
        LinkChange::Down => ("bring down", ifname.to_string()),
        LinkChange::Mtu(m) => ("set mtu of", format!("{ifname} to {m}")),
        LinkChange::Name(n) => ("rename", format!("{ifname} to {n}")),
        LinkChange::Master(b) => ("enslave", format!("{ifname} to {b}")),
    }
}

/// Up to `len` bytes from the start of `p`.
pub(crate) fn read_head(p: &Path, len: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(len);
    std::fs::File::open(p)?
        .take(len as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Sets the process umask and returns the previous one (used by the builder so that
/// the modes of files its stages create do not depend on the caller's umask).
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask(2) takes a plain integer and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Sends `sig` to `pid` (used by the builder to stop a QEMU it started). Returns
/// whether the signal was delivered.
pub fn kill_pid(pid: i32, sig: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers; a positive pid never signals a group.
    unsafe { libc::kill(pid, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysroot_joins_absolute_paths_under_the_root() {
        let r = SysRoot::new("/tmp/x");
        assert_eq!(
            r.join(Path::new("/sys/kernel/config")),
            PathBuf::from("/tmp/x/sys/kernel/config")
        );
        assert_eq!(
            SysRoot::new("/").join(Path::new("/proc")),
            PathBuf::from("/proc")
        );
    }

    #[test]
    fn fake_records_and_writes_files_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FakeSys::new(dir.path());
        s.mkdir(Path::new("/a/b")).unwrap();
        s.write_file(Path::new("/a/b/enable"), "1").unwrap();
        s.symlink(Path::new("/a/b"), Path::new("/a/link")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/b/enable")).unwrap(),
            "1"
        );
        assert!(dir.path().join("a/link/enable").exists());
        let lines: Vec<String> = s.ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            ["mkdir /a/b", "write /a/b/enable 1", "symlink /a/b /a/link"]
        );
    }

    #[test]
    fn fake_failures_carry_op_path_and_errno() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FakeSys::new(dir.path());
        s.fail.push(("write /x".into(), libc::EINVAL));
        let e = s.write_file(Path::new("/x/enable"), "1").unwrap_err();
        assert_eq!(e.errno(), Some(libc::EINVAL));
        assert!(e.to_string().starts_with("cannot write /x/enable: "), "{e}");
    }
}
