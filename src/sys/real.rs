//! [`RealSys`]: the [`Sys`] trait against the running kernel, through libc.

use super::net::{IfAddr, Link, LinkChange, NewLink, RouteSpec};
use super::netlink::Rtnl;
use super::{
    append, canonicalize, file_kind, list_dir, net_change_words, ExitStatus, FileKind, Output,
    RebootCmd, Signal, Sys, SysError, SysResult, SysRoot, HANDLED,
};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The real kernel; paths resolve under `root` (`/` in production).
#[derive(Debug)]
pub struct RealSys {
    root: SysRoot,
    /// The watchdog device, kept open while the init pets it.
    watchdog: Option<std::fs::File>,
    /// The rtnetlink socket, opened at the first network call (in the network
    /// namespace of the thread that makes it).
    rtnl: Option<Rtnl>,
}

impl RealSys {
    pub fn new(root: SysRoot) -> Self {
        RealSys {
            root,
            watchdog: None,
            rtnl: None,
        }
    }

    fn rtnl(&mut self) -> io::Result<&mut Rtnl> {
        if self.rtnl.is_none() {
            self.rtnl = Some(Rtnl::open()?);
        }
        self.rtnl
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

/// Moves the calling thread into the network namespace at `path` (`/run/netns/NAME`,
/// as `ip netns add` makes it): the netlink socket a [`RealSys`] opens afterwards on
/// this thread configures that namespace (`sanforge-init --netns`, tests).
pub fn enter_netns(path: &Path) -> SysResult<()> {
    let what = path.display().to_string();
    let f = std::fs::File::open(path)
        .map_err(|e| SysError::new("enter network namespace", &what, e))?;
    // SAFETY: setns(2) takes an open descriptor, kept open by `f` across the call, and
    // a namespace type; it changes only the calling thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    check("enter network namespace", what, rc.into())
}

fn cstr(op: &'static str, what: &str, s: &str) -> SysResult<CString> {
    CString::new(s)
        .map_err(|_| SysError::new(op, what, io::Error::from(io::ErrorKind::InvalidInput)))
}

fn check(op: &'static str, what: impl std::fmt::Display, rc: libc::c_long) -> SysResult<()> {
    if rc < 0 {
        Err(SysError::new(op, what, io::Error::last_os_error()))
    } else {
        Ok(())
    }
}

fn handled_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for s in HANDLED {
        // SAFETY: `set` is initialised and the signal numbers are valid.
        unsafe { libc::sigaddset(&mut set, s.number()) };
    }
    set
}

impl Sys for RealSys {
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
        let what = format!("{fstype} on {}", target.display());
        let t = self.root.join(target);
        let src = cstr("mount", &what, source)?;
        let tgt = cstr("mount", &what, &t.to_string_lossy())?;
        let fs = cstr("mount", &what, fstype)?;
        let d = cstr("mount", &what, data)?;
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                tgt.as_ptr(),
                fs.as_ptr(),
                flags as libc::c_ulong,
                d.as_ptr().cast(),
            )
        };
        check("mount", what, rc.into())
    }

    fn finit_module(&mut self, path: &Path, params: &str) -> SysResult<()> {
        let what = path.display().to_string();
        let f = std::fs::File::open(self.root.join(path))
            .map_err(|e| SysError::new("open module", &what, e))?;
        let p = cstr("load module", &what, params)?;
        let flags = module_load_flags(path);
        // SAFETY: finit_module takes an open fd, a NUL-terminated string and flags.
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), p.as_ptr(), flags) };
        check("load module", what, rc)
    }

    fn sethostname(&mut self, name: &str) -> SysResult<()> {
        // SAFETY: the pointer and length describe `name`'s bytes.
        let rc = unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) };
        check("set hostname", name, rc.into())
    }

    fn kernel_release(&mut self) -> Option<String> {
        // SAFETY: utsname is plain data; uname fills it.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid, writable utsname.
        if unsafe { libc::uname(&mut u) } != 0 {
            return None;
        }
        let bytes: Vec<u8> = u
            .release
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8(bytes).ok()
    }

    fn links(&mut self) -> SysResult<Vec<Link>> {
        self.rtnl()
            .and_then(|r| r.links())
            .map_err(|e| SysError::new("list", "network links", e))
    }

    fn link_add(&mut self, link: &NewLink) -> SysResult<()> {
        self.rtnl()
            .and_then(|r| r.link_add(link))
            .map_err(|e| SysError::new("create link", &link.name, e))
    }

    fn link_set(&mut self, ifname: &str, change: &LinkChange) -> SysResult<()> {
        self.rtnl()
            .and_then(|r| r.link_set(ifname, change))
            .map_err(|e| {
                let (op, what) = net_change_words(ifname, change);
                SysError::new(op, what, e)
            })
    }

    fn addr_add(&mut self, ifname: &str, addr: &IfAddr) -> SysResult<()> {
        self.rtnl()
            .and_then(|r| r.addr(ifname, addr, true))
            .map_err(|e| SysError::new("add address", format!("{} to {ifname}", addr.net), e))
    }

    fn addr_del(&mut self, ifname: &str, addr: &IfAddr) -> SysResult<()> {
        self.rtnl()
            .and_then(|r| r.addr(ifname, addr, false))
            .map_err(|e| SysError::new("remove address", format!("{} from {ifname}", addr.net), e))
    }

    fn route_add(&mut self, route: &RouteSpec) -> SysResult<()> {
        self.rtnl()
            .and_then(|r| r.route(route, true))
            .map_err(|e| SysError::new("add route", route, e))
    }

    fn route_del(&mut self, route: &RouteSpec) -> SysResult<()> {
        self.rtnl()
            .and_then(|r| r.route(route, false))
            .map_err(|e| SysError::new("remove route", route, e))
    }

    fn reboot(&mut self, cmd: RebootCmd) -> SysResult<()> {
        let c = match cmd {
            RebootCmd::PowerOff => libc::RB_POWER_OFF,
            RebootCmd::Reboot => libc::RB_AUTOBOOT,
        };
        // SAFETY: reboot(2) takes an integer command.
        let rc = unsafe { libc::reboot(c) };
        check("reboot", format!("({cmd:?})"), rc.into())
    }

    fn sync(&mut self) {
        // SAFETY: sync(2) takes no arguments.
        unsafe { libc::sync() };
    }

    fn spawn(&mut self, argv: &[String], env: &[(String, String)]) -> SysResult<i32> {
        let prog = argv.first().cloned().unwrap_or_default();
        let child = service_command(argv, env)
            .spawn()
            .map_err(|e| SysError::new("start", &prog, e))?;
        Ok(child.id() as i32)
    }

    fn spawn_logged(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        tag: &str,
    ) -> SysResult<i32> {
        let prog = argv.first().cloned().unwrap_or_default();
        // The relay is this very binary (PID 1's /init); it ends when the service and
        // whatever inherited its output have closed the pipe.
        let relayed = std::io::pipe().and_then(|(reader, writer)| {
            let mut relay = service_command(
                &[
                    "/proc/self/exe".to_string(),
                    super::LOG_RELAY.to_string(),
                    tag.to_string(),
                ],
                &[],
            );
            relay.stdin(reader).spawn()?;
            Ok(writer)
        });
        let mut cmd = service_command(argv, env);
        if let Ok(w) = relayed {
            let err = w
                .try_clone()
                .map_err(|e| SysError::new("start", &prog, e))?;
            cmd.stdout(w).stderr(err);
        }
        let child = cmd.spawn().map_err(|e| SysError::new("start", &prog, e))?;
        Ok(child.id() as i32)
    }

    fn wait_any_nohang(&mut self) -> Option<(i32, ExitStatus)> {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid int to write to.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return None;
        }
        let st = if libc::WIFEXITED(status) {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        } else {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        };
        Some((pid, st))
    }

    fn block_signals(&mut self) -> SysResult<()> {
        let set = handled_set();
        // SAFETY: `set` is an initialised sigset_t; the old mask is not wanted.
        let rc = unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        check("block", "signals", rc.into())
    }

    fn wait_signal(&mut self, timeout: Duration) -> Option<Signal> {
        let set = handled_set();
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `set` and `ts` are initialised and outlive the call; no siginfo wanted.
        let n = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
        if n < 0 {
            None
        } else {
            Signal::from_number(n)
        }
    }

    fn kill(&mut self, pid: i32, sig: Signal) -> SysResult<()> {
        // SAFETY: kill(2) takes integers.
        let rc = unsafe { libc::kill(pid, sig.number()) };
        check("signal", format!("pid {pid}"), rc.into())
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn mkdir(&mut self, path: &Path) -> SysResult<()> {
        std::fs::create_dir_all(self.root.join(path))
            .map_err(|e| SysError::new("create directory", path.display(), e))
    }

    fn write_file(&mut self, path: &Path, value: &str) -> SysResult<()> {
        let err = |e| SysError::new("write", path.display(), e);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.root.join(path))
            .map_err(err)?;
        // One write(2): sysfs and configfs take an attribute in a single call.
        let n = f.write(value.as_bytes()).map_err(err)?;
        if n != value.len() {
            return Err(err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write ({n} of {} bytes)", value.len()),
            )));
        }
        Ok(())
    }

    fn symlink(&mut self, target: &Path, link: &Path) -> SysResult<()> {
        let t = if target.is_absolute() {
            self.root.join(target)
        } else {
            target.to_path_buf()
        };
        std::os::unix::fs::symlink(t, self.root.join(link))
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
        let c = CString::new(name).map_err(|_| {
            SysError::new(
                "unload module",
                name,
                io::Error::from(io::ErrorKind::InvalidInput),
            )
        })?;
        // SAFETY: delete_module(2) reads a NUL-terminated name that outlives the call;
        // O_NONBLOCK makes it fail with EWOULDBLOCK instead of waiting for users.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_delete_module,
                c.as_ptr(),
                libc::O_NONBLOCK as libc::c_uint,
            )
        };
        check("unload module", name, rc)
    }

    fn run_capture(
        &mut self,
        argv: &[String],
        timeout: Duration,
    ) -> SysResult<(ExitStatus, String)> {
        let o = run_child(argv, &[], timeout, false)?;
        Ok((o.status, o.stdout))
    }

    fn run_output(
        &mut self,
        argv: &[String],
        env: &[(String, String)],
        timeout: Duration,
    ) -> SysResult<Output> {
        run_child(argv, env, timeout, true)
    }

    fn watchdog_open(&mut self, device: &Path) -> SysResult<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.root.join(device))
            .map_err(|e| SysError::new("open watchdog", device.display(), e))?;
        self.watchdog = Some(f);
        Ok(())
    }

    fn watchdog_pet(&mut self) -> SysResult<()> {
        let Some(f) = &mut self.watchdog else {
            return Ok(());
        };
        f.write_all(b"1")
            .map_err(|e| SysError::new("pet", "watchdog", e))
    }

    fn watchdog_close(&mut self) -> SysResult<()> {
        let Some(mut f) = self.watchdog.take() else {
            return Ok(());
        };
        // The magic close: 'V' right before close(2) disarms the watchdog.
        f.write_all(b"V")
            .map_err(|e| SysError::new("close", "watchdog", e))
    }

    fn read_head(&mut self, path: &Path, len: usize) -> SysResult<Vec<u8>> {
        super::read_head(&self.root.join(path), len)
            .map_err(|e| SysError::new("read", path.display(), e))
    }

    fn write_durable(&mut self, path: &Path, data: &[u8]) -> SysResult<()> {
        let err = |e| SysError::new("write", path.display(), e);
        let mut f = std::fs::File::create(self.root.join(path)).map_err(err)?;
        f.write_all(data).map_err(err)?;
        f.sync_all().map_err(err)
    }

    fn copy_file(&mut self, from: &Path, to: &Path) -> SysResult<()> {
        let err = |e| SysError::new("copy to", to.display(), e);
        let mut src = std::fs::File::open(self.root.join(from))
            .map_err(|e| SysError::new("open", from.display(), e))?;
        let mut dst = std::fs::File::create(self.root.join(to)).map_err(err)?;
        std::io::copy(&mut src, &mut dst).map_err(err)?;
        dst.sync_all().map_err(err)
    }

    fn chown(&mut self, path: &Path, uid: u32, gid: u32) -> SysResult<()> {
        std::os::unix::fs::chown(self.root.join(path), Some(uid), Some(gid))
            .map_err(|e| SysError::new("chown", path.display(), e))
    }

    fn rename(&mut self, from: &Path, to: &Path) -> SysResult<()> {
        std::fs::rename(self.root.join(from), self.root.join(to))
            .map_err(|e| SysError::new("rename", from.display(), e))
    }

    fn remove_file(&mut self, path: &Path) -> SysResult<()> {
        std::fs::remove_file(self.root.join(path))
            .map_err(|e| SysError::new("remove", path.display(), e))
    }

    fn fsync_dir(&mut self, path: &Path) -> SysResult<()> {
        std::fs::File::open(self.root.join(path))
            .and_then(|d| d.sync_all())
            .map_err(|e| SysError::new("fsync", path.display(), e))
    }

    fn switch_root(&mut self, new_root: &Path) -> SysResult<()> {
        let what = new_root.display().to_string();
        let op = "switch root to";
        std::env::set_current_dir(self.root.join(new_root))
            .map_err(|e| SysError::new(op, &what, e))?;
        let dot = cstr(op, &what, ".")?;
        let slash = cstr(op, &what, "/")?;
        // SAFETY: NUL-terminated strings that outlive the call; null fstype and data
        // are allowed with MS_MOVE.
        let rc = unsafe {
            libc::mount(
                dot.as_ptr(),
                slash.as_ptr(),
                std::ptr::null(),
                libc::MS_MOVE,
                std::ptr::null(),
            )
        };
        check(op, &what, rc.into())?;
        // SAFETY: a NUL-terminated string that outlives the call.
        let rc = unsafe { libc::chroot(dot.as_ptr()) };
        check(op, &what, rc.into())?;
        std::env::set_current_dir("/").map_err(|e| SysError::new(op, &what, e))
    }

    fn remove_dir(&mut self, path: &Path) -> SysResult<()> {
        std::fs::remove_dir(self.root.join(path))
            .map_err(|e| SysError::new("remove directory", path.display(), e))
    }

    fn file_kind(&mut self, path: &Path) -> Option<FileKind> {
        file_kind(&self.root.join(path))
    }

    fn canonicalize(&mut self, path: &Path) -> SysResult<PathBuf> {
        canonicalize(&self.root, path).map_err(|e| SysError::new("resolve", path.display(), e))
    }

    fn append(&mut self, path: &Path, data: &str) -> SysResult<()> {
        append(&self.root.join(path), data)
            .map_err(|e| SysError::new("append to", path.display(), e))
    }

    fn statfs(&mut self, path: &Path) -> SysResult<(u64, u64)> {
        super::statfs_host(&self.root.join(path))
            .map_err(|e| SysError::new("statfs", path.display(), e))
    }

    fn boottime(&mut self) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on every
        // kernel this init runs on (2.6.39+). On failure `ts` stays zero.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        if rc != 0 {
            return Duration::ZERO;
        }
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    }

    fn kernel_log(&mut self) -> SysResult<String> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let path = Path::new("/dev/kmsg");
        let err = |e| SysError::new("read", path.display(), e);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.root.join(path))
            .map_err(err)?;
        // One record per read(2); EAGAIN once the buffer is drained, EPIPE when a
        // record was overwritten while reading (skip it). Bounded for safety.
        let mut out = String::new();
        let mut buf = vec![0u8; 8192];
        for _ in 0..200_000 {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.push_str(&String::from_utf8_lossy(buf.get(..n).unwrap_or_default())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Ok(out)
    }
}

/// Runs `argv` to completion (killed after `timeout`) with only `PATH` and `env` in its
/// environment and an empty signal mask; stdout (and with `stderr`, stderr) captured.
fn run_child(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
    stderr: bool,
) -> SysResult<Output> {
    use std::io::Read;
    let prog = argv.first().cloned().unwrap_or_default();
    let err = |e| SysError::new("run", &prog, e);
    let mut cmd = std::process::Command::new(&prog);
    cmd.args(argv.iter().skip(1))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(if stderr {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
    // SAFETY: the closure runs between fork and exec and only calls the
    // async-signal-safe sigprocmask on the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            // SAFETY: sigset_t is plain data; sigemptyset initialises it.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut child = cmd.spawn().map_err(err)?;
    // Status commands print little: read it all on threads, so that a full pipe
    // cannot block the child while we wait for it with a deadline.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut s) = pipe {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let errs = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(err)? {
            Some(s) => break s,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {} s", timeout.as_secs()),
                )));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let out = out.join().unwrap_or_default();
    let errs = errs.join().unwrap_or_default();
    use std::os::unix::process::ExitStatusExt;
    let st = match (status.code(), status.signal()) {
        (Some(c), _) => ExitStatus::Exited(c),
        (None, Some(s)) => ExitStatus::Signaled(s),
        (None, None) => ExitStatus::Exited(-1),
    };
    Ok(Output {
        status: st,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&errs).into_owned(),
    })
}

/// `argv` with exactly `env`, an empty signal mask, in a new session.
fn service_command(argv: &[String], env: &[(String, String)]) -> std::process::Command {
    let prog = argv.first().cloned().unwrap_or_default();
    let mut cmd = std::process::Command::new(&prog);
    cmd.args(argv.iter().skip(1))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    // SAFETY: the closure runs between fork and exec and only calls the
    // async-signal-safe sigprocmask and setsid on the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            // SAFETY: sigset_t is plain data; sigemptyset initialises it.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::setsid();
            Ok(())
        })
    };
    cmd
}

/// `finit_module(2)` flags for a module file: `MODULE_INIT_COMPRESSED_FILE` for an
/// `.xz` module (the kernel decompresses it: CONFIG_MODULE_DECOMPRESS, which the build
/// checks), none for a plain `.ko`.
pub(crate) fn module_load_flags(path: &Path) -> libc::c_long {
    /// linux/module.h (5.17+); libc does not export it.
    const MODULE_INIT_COMPRESSED_FILE: libc::c_long = 4;
    if path.extension().is_some_and(|e| e == "xz") {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::module_load_flags;
    use std::path::Path;

    #[test]
    fn xz_modules_are_loaded_as_compressed_files() {
        assert_eq!(
            module_load_flags(Path::new("/lib/modules/6.1.0/kernel/a.ko.xz")),
            4
        );
        assert_eq!(
            module_load_flags(Path::new("/lib/modules/6.1.0/extra/scst.ko")),
            0
        );
    }
}
