//! sanforge-init, PID 1 of a storage node: the boot steps, the supervisor loop and
//! the shutdown, as plain functions over an [`Init`] context.
//!
//! Reads `/proc/cmdline`, `/etc/sanforge/node.toml` (or `/etc/sanforge/nodes/NAME.toml`
//! when the command line says `sanforge.node=NAME`), `/lib/modules/<release>/modules.dep`
//! `modules.builtin` and `modules.alias`, `/sys/bus/*/devices` and `/sys/class/net`. Every path goes through the `SysRoot` of
//! the [`Sys`] it is given and every syscall through that trait, so the same code runs
//! as PID 1 and against a temporary tree in tests. A panic here is a kernel panic:
//! errors are logged and the node stays up, degraded if need be.
//!
//! Signals in the main loop: SIGCHLD reaps; SIGTERM, SIGINT, SIGUSR2 and SIGPWR power
//! off; SIGUSR1 reboots.

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

pub mod bench;
pub mod dhcp;
pub mod ha;
pub mod hardware;
pub mod logs;
pub mod metrics;
pub mod modules;
pub mod network;
pub mod panic;
pub mod persist;
pub mod root;
pub mod scst;
pub mod secrets;
pub mod shell;
pub mod ssh;
pub mod status;
pub mod status_ha;
pub mod storage;
pub mod supervisor;
pub mod switchover;
pub mod time;
pub mod udev;

use crate::config::node::ValidNode;
use crate::contract::NODE_CONFIG_DIR;
use crate::scsi::lio::LioPlan;
use crate::sys::{RebootCmd, Signal, Sys};
use anyhow::{anyhow, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use supervisor::Supervisor;

pub use network::LINK_WAIT;
/// How long services get between SIGTERM and SIGKILL at shutdown.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

mod early;
mod services;
mod targets;
pub use early::{
    cmdline_node, load_config, load_modules, modules_dir, mount_filesystems,
    set_hostname_and_sysctls,
};
pub use services::{start_log_forward, start_metrics, start_services};
use targets::run_configfs;
pub use targets::{apply_targets, enable_ports};

/// Console (stdout, which is /dev/console for PID 1) and /dev/kmsg logging; every
/// line is prefixed `sanforge-init: `. Write errors are ignored.
#[derive(Debug, Default)]
pub struct Logger {
    kmsg: Option<std::fs::File>,
    captured: Option<Vec<String>>,
    /// Lines logged before `/dev/kmsg` could be opened (the first mounts), written
    /// there once it is, so the kernel log holds every line of the init.
    early: Vec<String>,
}

/// The sysctl that turns the kernel's rate limit of `/dev/kmsg` writers off.
pub const PRINTK_DEVKMSG: &str = "/proc/sys/kernel/printk_devkmsg";

/// At most this many early lines wait for `/dev/kmsg`.
const EARLY_LINES: usize = 64;

impl Logger {
    pub fn console() -> Self {
        Logger::default()
    }
    /// Keeps lines in memory instead of printing them (unit tests).
    pub fn capture() -> Self {
        Logger {
            kmsg: None,
            captured: Some(Vec::new()),
            early: Vec::new(),
        }
    }
    /// Also log to `/dev/kmsg` under the root, if it can be opened; the lines logged
    /// before go there first.
    pub fn open_kmsg(&mut self, sys: &dyn Sys) {
        let p = sys.root().join(Path::new("/dev/kmsg"));
        self.kmsg = std::fs::OpenOptions::new().write(true).open(p).ok();
        if let Some(k) = &mut self.kmsg {
            for text in self.early.drain(..) {
                let _ = k.write_all(text.as_bytes());
            }
        }
    }
    pub fn line(&mut self, msg: &str) {
        let text = format!("sanforge-init: {msg}\n");
        if let Some(c) = &mut self.captured {
            c.push(msg.to_string());
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        match &mut self.kmsg {
            Some(k) => {
                let _ = k.write_all(text.as_bytes());
            }
            None if self.early.len() < EARLY_LINES => self.early.push(text),
            None => {}
        }
    }
    pub fn lines(&self) -> &[String] {
        self.captured.as_deref().unwrap_or(&[])
    }
}

/// One line on the console from a child the init started (the exporter, the log
/// forwarder): `sanforge-init: MSG` in a single write(2), so that it does not
/// interleave with the init's own lines mid-line.
pub fn child_line(msg: &str) {
    let text = format!("sanforge-init: {msg}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// What a step's failure means for the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// The node enters degraded mode: no further step runs, it stays up.
    Fatal,
    /// Logged; the boot goes on.
    Warn,
}

pub struct Step {
    pub name: &'static str,
    pub policy: Policy,
    pub run: fn(&mut Init) -> Result<()>,
}

/// The boot, in order (DESIGN.md, "sanforge-init").
pub const BOOT: &[Step] = &[
    Step {
        name: "mounts",
        policy: Policy::Fatal,
        run: mount_filesystems,
    },
    Step {
        name: "root",
        policy: Policy::Fatal,
        run: root::mount_root,
    },
    Step {
        name: "config",
        policy: Policy::Fatal,
        run: load_config,
    },
    Step {
        name: "persist",
        policy: Policy::Warn,
        run: persist::persist,
    },
    Step {
        name: "hostname",
        policy: Policy::Warn,
        run: set_hostname_and_sysctls,
    },
    Step {
        name: "modules",
        policy: Policy::Warn,
        run: load_modules,
    },
    Step {
        name: "hardware",
        policy: Policy::Warn,
        run: hardware::hardware,
    },
    Step {
        name: "network",
        policy: Policy::Warn,
        run: network::configure_network,
    },
    Step {
        name: "udev settle",
        policy: Policy::Warn,
        run: udev::settle,
    },
    Step {
        name: "storage",
        policy: Policy::Warn,
        run: storage::assemble,
    },
    Step {
        name: "target state",
        policy: Policy::Warn,
        run: storage::target_state,
    },
    Step {
        name: "carrier",
        policy: Policy::Warn,
        run: network::wait_pending_carrier,
    },
    Step {
        name: "hardware report",
        policy: Policy::Warn,
        run: hardware::print_report,
    },
    Step {
        name: "targets",
        policy: Policy::Warn,
        run: apply_targets,
    },
    Step {
        name: "scst",
        policy: Policy::Warn,
        run: scst::apply_at_boot,
    },
    Step {
        name: "cluster mode",
        policy: Policy::Warn,
        run: ha::cluster_mode_on,
    },
    Step {
        name: "services",
        policy: Policy::Warn,
        run: start_services,
    },
    Step {
        name: "logs",
        policy: Policy::Warn,
        run: start_log_forward,
    },
    Step {
        name: "time",
        policy: Policy::Warn,
        run: time::start,
    },
    Step {
        name: "ssh",
        policy: Policy::Warn,
        run: ssh::start,
    },
    Step {
        name: "metrics",
        policy: Policy::Warn,
        run: start_metrics,
    },
    Step {
        name: "debug shell",
        policy: Policy::Warn,
        run: shell::start,
    },
    Step {
        name: "cluster",
        policy: Policy::Warn,
        run: ha::start_cluster,
    },
    Step {
        name: "enable ports",
        policy: Policy::Warn,
        run: enable_ports,
    },
];

/// The state the steps share.
pub struct Init<'a> {
    pub sys: &'a mut dyn Sys,
    pub log: Logger,
    /// A node config file on the host to use instead of the one in the root (dev mode).
    pub config_file: Option<PathBuf>,
    pub node: Option<ValidNode>,
    /// Why the node is degraded (a fatal step failed).
    pub degraded: Option<String>,
    pub lio: Option<LioPlan>,
    /// False once target setup failed: ports stay disabled.
    pub targets_ok: bool,
    pub supervisor: Supervisor,
    pub ha: ha::HaState,
    pub scst: Option<scst::ScstBoot>,
    /// The module index and what coldplug did, for the hardware report.
    pub hw: hardware::HwState,
    /// When each boot step ran ([`crate::contract::timeline`]).
    pub timeline: crate::contract::timeline::Timeline,
    /// What the storage steps found (md, LVM, absent LUN devices, target state).
    pub storage: storage::StorageState,
    /// The links the network step configured whose carrier the `carrier` step waits
    /// for (empty when the network step waited itself: DHCP).
    pub carrier_pending: Vec<String>,
    /// Replayed udev events the `udev settle` step waits for: the settle timeout.
    pub udev_settle_pending: Option<Duration>,
}

impl<'a> Init<'a> {
    pub fn new(sys: &'a mut dyn Sys, log: Logger) -> Self {
        let started = sys.boottime();
        Init {
            sys,
            log,
            config_file: None,
            node: None,
            degraded: None,
            lio: None,
            targets_ok: true,
            supervisor: Supervisor::default(),
            ha: ha::HaState::default(),
            scst: None,
            hw: hardware::HwState::default(),
            timeline: crate::contract::timeline::Timeline::new(started),
            storage: storage::StorageState::default(),
            carrier_pending: Vec::new(),
            udev_settle_pending: None,
        }
    }

    fn node(&self) -> Result<ValidNode> {
        self.node
            .clone()
            .ok_or_else(|| anyhow!("no node config loaded"))
    }

    fn warn(&mut self, msg: impl std::fmt::Display) {
        self.log.line(&format!("warning: {msg}"));
    }

    /// Runs one step under its policy, its start and end on the timeline (written
    /// to [`TIMELINE`](crate::contract::TIMELINE) after it); returns false if the node
    /// is now degraded.
    pub fn run_step(&mut self, step: &Step) -> bool {
        if self.degraded.is_some() {
            return false;
        }
        let now = self.sys.boottime();
        self.timeline.begin(step.name, now);
        let (ok, outcome, message) = match ((step.run)(self), step.policy) {
            (Ok(()), _) => (true, crate::contract::timeline::Outcome::Ok, None),
            (Err(e), Policy::Warn) => {
                let msg = format!("{e:#}");
                self.warn(format!("{}: {msg}", step.name));
                (true, crate::contract::timeline::Outcome::Warning, Some(msg))
            }
            (Err(e), Policy::Fatal) => {
                let reason = format!("{e:#}");
                self.log.line(&format!("degraded: {reason}"));
                self.degraded = Some(reason.clone());
                (
                    false,
                    crate::contract::timeline::Outcome::Fatal,
                    Some(reason),
                )
            }
        };
        let now = self.sys.boottime();
        self.timeline.end(outcome, message, now);
        self.write_timeline();
        ok
    }

    fn write_timeline(&mut self) {
        if let Err(e) = self.timeline.write(self.sys) {
            self.warn(format!("boot timeline: {e:#}"));
        }
    }

    /// Runs every boot step, then prints the boot timeline and the final state line:
    /// `ready` when all is well, `state: degraded` otherwise.
    pub fn boot(&mut self) {
        for step in BOOT {
            if !self.run_step(step) {
                break;
            }
        }
        let state = self.state_line();
        let now = self.sys.boottime();
        self.timeline.finish(state, now);
        for line in self.timeline.render() {
            self.log.line(&line);
        }
        self.print_state();
        self.write_timeline();
        if self.degraded.is_none() && self.targets_ok {
            persist::bless_after_ready(self);
        }
    }

    /// The final state line: `ready`, or why not.
    pub fn state_line(&self) -> &'static str {
        if self.degraded.is_some() {
            "state: degraded (see above); no targets, no services"
        } else if !self.targets_ok {
            "state: degraded targets (ports disabled)"
        } else if let Some(line) = ha::state_line(self) {
            line
        } else {
            "ready"
        }
    }

    pub fn print_state(&mut self) {
        let line = self.state_line();
        self.log.line(line);
    }

    /// The main loop of PID 1: reap and restart until a signal asks to stop.
    pub fn supervise(&mut self) -> RebootCmd {
        loop {
            let now = Instant::now();
            let timeout = self
                .supervisor
                .next_wakeup(now)
                .map_or(Duration::from_secs(1), |d| {
                    d.clamp(Duration::from_millis(10), Duration::from_secs(1))
                });
            match self.sys.wait_signal(timeout) {
                Some(s @ (Signal::Term | Signal::Int | Signal::Usr2 | Signal::Pwr)) => {
                    self.log
                        .line(&format!("SIG{} received: power off", s.name()));
                    return RebootCmd::PowerOff;
                }
                Some(Signal::Usr1) => {
                    self.log.line("SIGUSR1 received: reboot");
                    return RebootCmd::Reboot;
                }
                _ => {}
            }
            let now = Instant::now();
            self.supervisor.reap_all(self.sys, &mut self.log, now);
            self.supervisor.start_due(self.sys, &mut self.log, now);
            self.supervisor.write_state(self.sys, &mut self.log);
            ha::tick(self, now);
        }
    }

    /// Disables the target ports, stops every service (SIGTERM, then SIGKILL after
    /// [`STOP_GRACE`]), syncs and calls reboot(2). Returns only if reboot(2) failed
    /// or is faked.
    pub fn shutdown(&mut self, cmd: RebootCmd) {
        self.log.line(match cmd {
            RebootCmd::PowerOff => "shutting down: power off",
            RebootCmd::Reboot => "shutting down: reboot",
        });
        if let Some(p) = self.lio.clone() {
            run_configfs(self, &p.disable, "disable");
        }
        scst::disable_ports(self);
        ha::stop_cluster(self);
        self.supervisor.stop(self.sys, &mut self.log, Signal::Term);
        let deadline = Instant::now() + STOP_GRACE;
        for _ in 0..100 {
            self.supervisor
                .reap_all(self.sys, &mut self.log, Instant::now());
            if self.supervisor.running().is_empty() || Instant::now() >= deadline {
                break;
            }
            self.sys.wait_signal(Duration::from_millis(100));
        }
        let left = self.supervisor.running();
        if !left.is_empty() {
            self.log
                .line(&format!("{} services still running: SIGKILL", left.len()));
            self.supervisor.stop(self.sys, &mut self.log, Signal::Kill);
        }
        // Stray processes (orphans adopted by PID 1).
        let _ = self.sys.kill(-1, Signal::Kill);
        self.supervisor
            .reap_all(self.sys, &mut self.log, Instant::now());
        ha::finish_shutdown(self);
        self.sys.sync();
        if let Err(e) = self.sys.reboot(cmd) {
            self.warn(e);
        }
    }
}

/// PID 1: blocks signals, boots, supervises, shuts down. Never returns.
pub fn run_pid1(sys: &mut dyn Sys) -> ! {
    let mut init = Init::new(sys, Logger::console());
    if let Err(e) = init.sys.block_signals() {
        init.warn(e);
    }
    init.boot();
    bench::run(&mut init);
    let cmd = init.supervise();
    init.shutdown(cmd);
    loop {
        init.sys.sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn cmdline_picks_the_last_node() {
        assert_eq!(
            cmdline_node("quiet sanforge.node=a console=ttyS0 sanforge.node=b\n"),
            Some("b")
        );
        assert_eq!(cmdline_node("quiet"), None);
    }

    #[test]
    fn configfs_failure_disables_ports_and_keeps_going() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc/sanforge");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("node.toml"),
            "hostname = \"n\"\n[lio]\nbackstores = [{ name = \"d\", kind = \"ramdisk\", size = \"1MiB\" }]\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\"]\nluns = [{ lun = 0, backstore = \"d\" }]\n",
        )
        .unwrap();
        let mut sys = FakeSys::new(dir.path());
        sys.fail.push((
            "mkdir /sys/kernel/config/target/iscsi/iqn.2026-11.org.example:t/tpgt_1/np".into(),
            libc::EADDRINUSE,
        ));
        let mut init = Init::new(&mut sys, Logger::capture());
        init.boot();
        assert!(init.degraded.is_none());
        assert!(!init.targets_ok);
        assert!(
            init.log
                .lines()
                .iter()
                .any(|l| l.contains("errno 98") && l.contains("np/0.0.0.0:3260")),
            "{:?}",
            init.log.lines()
        );
        assert_eq!(
            init.log.lines().last().unwrap(),
            "state: degraded targets (ports disabled)"
        );
        let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
        let enable =
            "write /sys/kernel/config/target/iscsi/iqn.2026-11.org.example:t/tpgt_1/enable";
        assert_eq!(
            ops.iter().rev().find(|o| o.starts_with(enable)).unwrap(),
            &format!("{enable} 0")
        );
        assert!(!ops.contains(&format!("{enable} 1")));
    }

    #[test]
    fn supervise_then_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = FakeSys::new(dir.path());
        sys.signals
            .extend([None, Some(Signal::Chld), Some(Signal::Usr1)]);
        let mut init = Init::new(&mut sys, Logger::capture());
        let svc = crate::config::node::Service {
            name: "s".into(),
            argv: vec!["/bin/s".into()],
            restart: Default::default(),
            env: Default::default(),
        };
        init.supervisor = Supervisor::new(&[svc], Instant::now());
        init.supervisor
            .start_due(init.sys, &mut init.log, Instant::now());
        assert_eq!(init.supervise(), RebootCmd::Reboot);
        init.shutdown(RebootCmd::Reboot);
        let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            ops,
            [
                "spawn /bin/s",
                "mkdir /run/sanforge",
                "write_durable /run/sanforge/services.json (163 bytes)",
                "kill 101 TERM",
                "kill 101 KILL",
                "kill -1 KILL",
                "sync",
                "reboot restart"
            ]
        );
    }
}
