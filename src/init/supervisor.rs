//! The service supervisor of PID 1: starts the node config's services, reaps every
//! child (PID 1 inherits all orphans), restarts services per their policy with
//! exponential backoff (1 s doubling to 30 s, reset after 60 s up), stops them on
//! shutdown. Reads nothing but the service list; time is passed in. What it did (pid,
//! starts, restarts, last exit of each service) is rewritten to [`SERVICES_STATE`]
//! whenever it changes, for `sanforge-init status` and the metrics.

use super::Logger;
use crate::config::node::{Restart, Service};
use crate::contract::status::{ServiceState, ServicesFile};
use crate::contract::SERVICES_STATE;
use crate::sys::{ExitStatus, Signal, Sys};
use std::path::Path;
use std::time::{Duration, Instant};

pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A service up this long is considered healthy again: its backoff resets.
pub const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// Given the current backoff and how long the service ran, returns the delay before
/// the restart and the backoff to keep for next time.
pub fn restart_delay(backoff: Duration, uptime: Duration) -> (Duration, Duration) {
    let cur = if uptime >= BACKOFF_RESET {
        BACKOFF_MIN
    } else {
        backoff.clamp(BACKOFF_MIN, BACKOFF_MAX)
    };
    (cur, (cur * 2).min(BACKOFF_MAX))
}

pub fn should_restart(policy: Restart, status: ExitStatus) -> bool {
    match policy {
        Restart::Always => true,
        Restart::OnFailure => !status.success(),
        Restart::Never => false,
    }
}

#[derive(Debug, Clone)]
pub struct Supervised {
    pub svc: Service,
    pub pid: Option<i32>,
    pub started: Option<Instant>,
    pub backoff: Duration,
    pub next_start: Option<Instant>,
    /// How often it was started (the first start included).
    pub starts: u32,
    /// How its last run ended.
    pub last_exit: Option<String>,
}

#[derive(Debug, Default)]
pub struct Supervisor {
    pub services: Vec<Supervised>,
    stopping: bool,
    /// Something changed since [`SERVICES_STATE`] was last written.
    dirty: bool,
}

impl Supervisor {
    pub fn new(services: &[Service], now: Instant) -> Self {
        let services = services
            .iter()
            .map(|s| Supervised {
                svc: s.clone(),
                pid: None,
                started: None,
                backoff: BACKOFF_MIN,
                next_start: Some(now),
                starts: 0,
                last_exit: None,
            })
            .collect();
        Supervisor {
            services,
            stopping: false,
            dirty: true,
        }
    }

    /// What the state file says now.
    pub fn state(&self) -> ServicesFile {
        let services = self
            .services
            .iter()
            .map(|s| ServiceState {
                name: s.svc.name.clone(),
                pid: s.pid,
                state: if s.pid.is_some() {
                    "running"
                } else if s.next_start.is_some() {
                    "waiting"
                } else {
                    "stopped"
                }
                .into(),
                starts: s.starts,
                restarts: s.starts.saturating_sub(1),
                last_exit: s.last_exit.clone(),
            })
            .collect();
        ServicesFile { services }
    }

    /// Rewrites [`SERVICES_STATE`] if something changed since the last time.
    pub fn write_state(&mut self, sys: &mut dyn Sys, log: &mut Logger) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let text = serde_json::to_string_pretty(&self.state()).unwrap_or_default() + "\n";
        let path = Path::new(SERVICES_STATE);
        let r = match path.parent() {
            Some(dir) if !sys.exists(dir) => sys.mkdir(dir),
            _ => Ok(()),
        }
        .and_then(|()| sys.write_durable(path, text.as_bytes()));
        if let Err(e) = r {
            log.line(&format!("warning: service state: {e}"));
        }
    }

    /// Starts every service whose start time has come.
    pub fn start_due(&mut self, sys: &mut dyn Sys, log: &mut Logger, now: Instant) {
        if self.stopping {
            return;
        }
        for s in &mut self.services {
            if s.pid.is_some() || s.next_start.is_none_or(|t| t > now) {
                continue;
            }
            s.next_start = None;
            self.dirty = true;
            let mut env: Vec<(String, String)> = s
                .svc
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !s.svc.env.contains_key("PATH") {
                env.push(("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()));
            }
            match sys.spawn_logged(&s.svc.argv, &env, &s.svc.name) {
                Ok(pid) => {
                    log.line(&format!("service {} started (pid {pid})", s.svc.name));
                    s.pid = Some(pid);
                    s.started = Some(now);
                    s.starts += 1;
                }
                Err(e) => {
                    log.line(&format!("warning: service {}: {e}", s.svc.name));
                    s.last_exit = Some(format!("not started: {e}"));
                    if s.svc.restart != Restart::Never {
                        let (delay, next) = restart_delay(s.backoff, Duration::ZERO);
                        s.backoff = next;
                        s.next_start = Some(now + delay);
                    }
                }
            }
        }
    }

    /// Handles one reaped child: logs it and schedules a restart if it was a service.
    pub fn reaped(&mut self, log: &mut Logger, pid: i32, status: ExitStatus, now: Instant) {
        let stopping = self.stopping;
        let Some(s) = self.services.iter_mut().find(|s| s.pid == Some(pid)) else {
            log.line(&format!("reaped pid {pid} ({status})"));
            return;
        };
        s.pid = None;
        s.last_exit = Some(status.to_string());
        self.dirty = true;
        let uptime = s
            .started
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        log.line(&format!(
            "service {} (pid {pid}) exited: {status}",
            s.svc.name
        ));
        if !stopping && should_restart(s.svc.restart, status) {
            let (delay, next) = restart_delay(s.backoff, uptime);
            s.backoff = next;
            s.next_start = Some(now + delay);
            log.line(&format!(
                "service {}: restarting in {} s",
                s.svc.name,
                delay.as_secs()
            ));
        }
    }

    /// Reaps every exited child.
    pub fn reap_all(&mut self, sys: &mut dyn Sys, log: &mut Logger, now: Instant) {
        while let Some((pid, status)) = sys.wait_any_nohang() {
            self.reaped(log, pid, status, now);
        }
    }

    /// Time until the next scheduled start, if any.
    pub fn next_wakeup(&self, now: Instant) -> Option<Duration> {
        self.services
            .iter()
            .filter_map(|s| s.next_start)
            .map(|t| t.saturating_duration_since(now))
            .min()
    }

    pub fn running(&self) -> Vec<i32> {
        self.services.iter().filter_map(|s| s.pid).collect()
    }

    /// No more starts or restarts; sends `sig` to every running service.
    pub fn stop(&mut self, sys: &mut dyn Sys, log: &mut Logger, sig: Signal) {
        self.stopping = true;
        for s in &mut self.services {
            s.next_start = None;
            if let Some(pid) = s.pid {
                if let Err(e) = sys.kill(pid, sig) {
                    log.line(&format!("warning: service {}: {e}", s.svc.name));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sys::FakeSys;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn backoff_doubles_to_thirty_and_resets_after_a_minute_up() {
        let mut b = BACKOFF_MIN;
        let mut delays = Vec::new();
        for _ in 0..7 {
            let (d, next) = restart_delay(b, secs(2));
            delays.push(d.as_secs());
            b = next;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(restart_delay(b, secs(60)), (secs(1), secs(2)));
        assert_eq!(restart_delay(b, secs(59)).0, secs(30));
    }

    #[test]
    fn policies() {
        assert!(should_restart(Restart::Always, ExitStatus::Exited(0)));
        assert!(!should_restart(Restart::OnFailure, ExitStatus::Exited(0)));
        assert!(should_restart(Restart::OnFailure, ExitStatus::Signaled(9)));
        assert!(!should_restart(Restart::Never, ExitStatus::Exited(1)));
    }

    #[test]
    fn exit_schedules_restart_and_orphans_are_only_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = FakeSys::new(dir.path());
        let mut log = Logger::capture();
        let svc = |name: &str, restart| Service {
            name: name.into(),
            argv: vec![format!("/bin/{name}")],
            restart,
            env: Default::default(),
        };
        let t0 = Instant::now();
        let mut sup = Supervisor::new(&[svc("a", Restart::Always), svc("b", Restart::Never)], t0);
        sup.start_due(&mut sys, &mut log, t0);
        let pids = sup.running();
        assert_eq!(pids.len(), 2);
        sys.exits.extend([
            (pids[0], ExitStatus::Exited(1)),
            (pids[1], ExitStatus::Exited(1)),
            (4242, ExitStatus::Exited(0)),
        ]);
        sup.reap_all(&mut sys, &mut log, t0 + secs(5));
        assert!(sup.running().is_empty());
        assert_eq!(sup.next_wakeup(t0 + secs(5)), Some(secs(1)));
        assert!(
            log.lines()
                .iter()
                .any(|l| l == "reaped pid 4242 (exit status 0)"),
            "{:?}",
            log.lines()
        );
        sup.start_due(&mut sys, &mut log, t0 + secs(6));
        assert_eq!(sup.running().len(), 1);
        assert_eq!(sup.services[0].backoff, secs(2));
        let spawns = sys
            .ops
            .iter()
            .filter(|o| o.to_string() == "spawn /bin/a")
            .count();
        assert_eq!(spawns, 2);
        // Each start's output goes to the ring tagged with the service's name.
        let tags: Vec<&str> = sys.logged.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(tags, ["a", "b", "a"]);
    }
}
