//! `ocf:sanforge:drbd`, a promotable Pacemaker resource agent for one DRBD resource:
//! start (`drbdadm adjust`), stop (`drbdadm down`), promote and demote (`drbdsetup
//! primary|secondary`), monitor, notify, meta-data and validate-all, with the
//! promotion score kept in the node attribute `master-<resource>` as `ocf:linbit:drbd`
//! keeps it (see [`status::promotion`]).
//!
//! Why hand-written: LINBIT's `ocf:linbit:drbd` (drbd-utils) is the real component and
//! stays selectable (`drbd-agent = "linbit"` in the cluster file), but it is a 1,700-line
//! bash script that sources the OCF shell library and forks `drbdadm`, `drbdsetup`,
//! `crm_attribute`, `crm_master` (itself a shell script running getopt), `crm_resource`,
//! sed and grep dozens of times per action; under QEMU TCG that cost 5 to 11 s of every
//! switchover and failover (benches/failover-steps.sh, issue 14). This agent reads the
//! state without starting a process where the kernel offers it (DRBD 8.4: one read of
//! `/proc/drbd`; DRBD 9: one `drbdsetup status RES --json`), acts with one process
//! per action (`drbdsetup-84 primary|secondary MINOR` for a role change, `drbdadm
//! adjust|down` to start and stop), and sets the score with one `crm_attribute` call only when it
//! changed since the last one it set (the value is remembered under
//! `/run/sanforge/ocf-drbd/`; probes, start and stop always set it, so a restarted
//! Pacemaker, which forgets transient attributes, gets it back with its first probe).
//!
//! Invoked by Pacemaker as `/usr/lib/ocf/resource.d/sanforge/drbd ACTION` (a symlink to
//! `/init`, dispatched on `argv[0]`) or by hand as `sanforge-init ocf-drbd ACTION`.
//! Parameters (`OCF_RESKEY_*`): `drbd_resource` (required), `drbd_minor` (DRBD 8.4: the
//! line of `/proc/drbd` to read; asked of `drbdadm sh-minor` when unset),
//! `preferred_node` (the node that gets the first promotion, [`status::promotion_on`]),
//! and the target's parameters when it carries one ([`target`]).
//!
//! Semantics (exit codes are OCF's, see [`Rc`]):
//! * monitor: 8 Primary, 0 Secondary, 7 not configured (or the module not loaded),
//!   9 Primary without access to UpToDate data; updates the score (not in a probe of a
//!   stopped resource, as LINBIT's agent).
//! * start: `drbdadm adjust` (attach and connect), waits a few seconds for the peer so
//!   the first score is the right one, Secondary → 0.
//! * promote: refuses (1, logged, score removed) when the local disk is not UpToDate:
//!   Inconsistent, Outdated or Consistent data is never promoted; otherwise
//!   `drbdsetup primary`, retried until the action's timeout while DRBD refuses for a
//!   reason that can pass (the dead peer still counted Primary until DRBD's ping
//!   timeout), but not when DRBD answers 12 or 17 (no access to UpToDate data, or
//!   the fence-peer handler failed).
//! * demote: `drbdsetup secondary`, retried while the device is held open.
//! * stop: Secondary if Primary, then `drbdadm down`, score removed; 1 if it cannot
//!   finish in time (Pacemaker then fences the node).
//! * notify: 0 (the cluster renders this agent's clone without notifications).
//!
//! Every file and process goes through the [`Sys`] the agent is given: the recording
//! [`FakeSys`](crate::sys::FakeSys) plays the kernel and the tools in tests
//! (`sanforge-init --root DIR ocf-drbd ACTION`).

pub mod fence_peer;
pub mod meta;
pub mod res_file;
pub mod status;
pub mod target;
#[cfg(test)]
mod tests;

use super::{Env, Log, Rc};
use crate::sys::Sys;
use status::{Role, Score, Status};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The agent's type name (`ocf:sanforge:drbd`); also the `argv[0]` name it answers to.
pub const AGENT: &str = "drbd";
/// The sanforge-init subcommand that runs the agent.
pub const SUBCOMMAND: &str = "ocf-drbd";
/// DRBD's state as the kernel shows it (8.4: every minor's line; 9: the version only).
pub const PROC_DRBD: &str = "/proc/drbd";
/// Where the agent remembers the score it last set, per instance.
pub const SCORE_DIR: &str = "/run/sanforge/ocf-drbd";
const DRBDADM: &str = "drbdadm";
const DRBDSETUP: &str = "drbdsetup";
/// drbd-utils' drbdsetup for the 8.4 module, which `drbdsetup` and `drbdadm` exec
/// after checking the module's version: called directly for a role change, one
/// process instead of four (drbdadm, drbdadm-84, drbdsetup, drbdsetup-84) and no
/// parse of the configuration.
pub const DRBDSETUP_84: &str = "/lib/drbd/drbdsetup-84";
const CRM_ATTRIBUTE: &str = "crm_attribute";
/// `drbdsetup primary`'s exit codes (10 + DRBD's negative state-change result, passed
/// on by drbdadm) when DRBD refuses for good: 12 `SS_NO_UP_TO_DATE_DISK` (no access
/// to UpToDate data), 17 `SS_PRIMARY_NOP` (the peer is not outdated: the fence-peer
/// handler did not fence it). Others (11, the peer still counted Primary) can pass.
const REFUSED: [i32; 2] = [12, 17];
/// How long start waits for the peer's connection, so the first score counts it.
const START_SETTLE: Duration = Duration::from_secs(5);
/// Between two tries of a state change DRBD refused for a passing reason (a try that
/// itself took longer is repeated at once: see [`Agent::pause_after`]).
const RETRY: Duration = Duration::from_millis(300);

/// Validated parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub resource: String,
    pub minor: Option<u32>,
    /// The instance without a clone suffix (`drbd-r0`, from `drbd-r0:1`): the score's
    /// attribute is `master-<instance>`.
    pub instance: String,
}

/// A DRBD resource name as the agent, the switchover and the fence-peer handler accept
/// it (it becomes a path under /etc/drbd.d and an argument of drbdadm): letters,
/// digits, `_`, `-`, `.`, not starting with `-` or `.`; `what` names where it came from.
pub fn check_resource_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        || name.starts_with(['-', '.'])
    {
        return Err(format!(
            "{what} '{name}' is not a DRBD resource name (letters, digits, '_', '-', '.')"
        ));
    }
    Ok(())
}

impl Params {
    pub fn from_env(env: &Env) -> Result<Params, String> {
        let resource = env
            .param("drbd_resource")
            .ok_or("drbd_resource is not set: name the DRBD resource (as in /etc/drbd.d)")?;
        check_resource_name("drbd_resource", resource)?;
        let minor =
            match env.param("drbd_minor") {
                None => None,
                Some(m) => Some(m.parse::<u32>().ok().filter(|m| *m < 1 << 20).ok_or_else(
                    || format!("drbd_minor '{m}' is not a minor number (0 to 1048575)"),
                )?),
            };
        let inst = env.get("OCF_RESOURCE_INSTANCE").unwrap_or(resource);
        let instance = inst.split(':').next().unwrap_or(inst).to_string();
        Ok(Params {
            resource: resource.to_string(),
            minor,
            instance,
        })
    }
}

/// The agent bound to its parameters, [`Sys`], log and deadline.
pub struct Agent<'a> {
    pub params: Params,
    sys: &'a mut dyn Sys,
    log: Log<'a>,
    budget: super::budget::Budget,
    /// A probe (monitor with interval 0): the score is set even when unchanged.
    probe: bool,
    /// `OCF_RESKEY_CRM_meta_on_node`: the node whose attribute is set.
    node: Option<String>,
    /// Whether the loaded module is DRBD 8.4 (known after the first [`Agent::look`]).
    v84: bool,
    /// Whether this node is the resource's `preferred_node` (see
    /// [`status::promotion_on`]).
    preferred: bool,
}

impl<'a> Agent<'a> {
    pub fn new(params: Params, env: &Env, sys: &'a mut dyn Sys, log: Log<'a>) -> Self {
        Agent {
            params,
            sys,
            log,
            budget: super::budget::Budget::from_env(env),
            probe: env
                .get("OCF_RESKEY_CRM_meta_interval")
                .is_none_or(|v| v.trim() == "0"),
            node: env
                .get("OCF_RESKEY_CRM_meta_on_node")
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            v84: false,
            preferred: env.param("preferred_node").is_some_and(|p| {
                env.get("OCF_RESKEY_CRM_meta_on_node")
                    .is_some_and(|n| n.trim() == p)
            }),
        }
    }

    /// The agent spending `budget` (one action's, shared with the target's part: see
    /// [`target`]).
    pub(crate) fn with_budget(mut self, budget: super::budget::Budget) -> Self {
        self.budget = budget;
        self
    }

    /// What is left of the budget, for the next part of the same action.
    pub(crate) fn into_budget(self) -> super::budget::Budget {
        self.budget
    }

    /// What is left of the action's budget.
    fn left(&self) -> Duration {
        self.budget.left()
    }

    fn sleep(&mut self, d: Duration) {
        self.budget.sleep(&mut *self.sys, d);
    }

    /// The pause before retrying a state change that failed after `tried` began: none
    /// when the try itself took [`RETRY`] or more. A `drbdsetup primary` issued while DRBD
    /// still counts a dead peer as Primary can block until DRBD's ping timeout and the
    /// fence-peer handler are done and then fail; the next one succeeds at once
    /// (measured: a fixed pause after it was 0.6 s of the failover).
    fn pause_after(&mut self, tried: Instant) {
        if tried.elapsed() < RETRY {
            self.sleep(RETRY);
        }
    }

    fn info(&mut self, msg: &str) {
        self.log.info(&mut *self.sys, msg)
    }

    fn warn(&mut self, msg: &str) {
        self.log.warn(&mut *self.sys, msg)
    }

    fn err(&mut self, msg: &str) {
        self.log.err(&mut *self.sys, msg)
    }

    /// Runs `argv`; its exit code, or the reason it did not run or failed (argv, exit
    /// status, the last line of stderr).
    fn run(&mut self, argv: &[&str]) -> Result<(), (Option<i32>, String)> {
        let timeout = self.left().max(Duration::from_secs(1));
        crate::sys::run_stdout(&mut *self.sys, argv, timeout).map(|_| ())
    }

    /// The resource's state; `Ok(None)` when it is not configured (or the module is
    /// not loaded). DRBD 8.4 reads `/proc/drbd`, DRBD 9 asks `drbdsetup status`.
    pub fn look(&mut self) -> Result<Option<Status>, String> {
        let proc = Path::new(PROC_DRBD);
        let text = match self.sys.read_to_string(proc) {
            Ok(t) => t,
            Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let version = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("version: "))
            .unwrap_or("");
        self.v84 = version.starts_with("8.");
        if self.v84 {
            let minor = self.minor()?;
            return Status::from_proc_drbd(&text, minor).map_err(|e| format!("{PROC_DRBD}: {e}"));
        }
        if !version.starts_with("9.") {
            return Err(format!(
                "{PROC_DRBD} starts with '{}', expected 'version: 8.4…' or 'version: 9…'",
                text.lines().next().unwrap_or("")
            ));
        }
        let argv: Vec<String> = [DRBDSETUP, "status", &self.params.resource, "--json"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let timeout = self.left().max(Duration::from_secs(1));
        let out = self
            .sys
            .run_output(&argv, &[], timeout)
            .map_err(|e| format!("`{}`: {e}", argv.join(" ")))?;
        if !out.status.success() {
            // drbdsetup says "No such resource" (exit 10) for a resource that is down.
            if out.stderr.contains("No such resource") || out.stdout.trim().is_empty() {
                return Ok(None);
            }
            return Err(format!(
                "`{}` failed ({}): {}",
                argv.join(" "),
                out.status,
                out.last_error_line().unwrap_or("no message")
            ));
        }
        Status::from_json(&out.stdout, &self.params.resource)
    }

    /// The resource's minor: the parameter, else `drbdadm sh-minor RES` (once).
    fn minor(&mut self) -> Result<u32, String> {
        if let Some(m) = self.params.minor {
            return Ok(m);
        }
        let argv: Vec<String> = [DRBDADM, "sh-minor", &self.params.resource]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let out = self
            .sys
            .run_output(&argv, &[], Duration::from_secs(10))
            .map_err(|e| format!("`{}`: {e}", argv.join(" ")))?;
        let m = out.stdout.trim().parse::<u32>().map_err(|_| {
            format!(
                "`{}` answered '{}' ({}), expected a minor number; set drbd_minor",
                argv.join(" "),
                out.stdout.trim(),
                out.status
            )
        })?;
        self.params.minor = Some(m);
        Ok(m)
    }

    /// Makes the resource Primary or Secondary (`role`) with one process: DRBD 8.4's
    /// `drbdsetup-84 ROLE MINOR`, DRBD 9's `drbdsetup ROLE RESOURCE`. The kernel runs
    /// the fence-peer handler itself when a promotion needs it.
    fn set_role(&mut self, role: &str) -> Result<(), (Option<i32>, String)> {
        let res = self.params.resource.clone();
        match (self.v84, self.params.minor) {
            (true, Some(m)) => self.run(&[DRBDSETUP_84, role, &m.to_string()]),
            (true, None) => self.run(&[DRBDADM, role, &res]),
            (false, _) => self.run(&[DRBDSETUP, role, &res]),
        }
    }

    fn score_file(&self) -> PathBuf {
        Path::new(SCORE_DIR).join(format!("{}.score", self.params.instance))
    }

    /// Sets (or removes) the promotion score, with one `crm_attribute` call, unless it
    /// is the value this agent last set and `force` is false. A failure is logged: the
    /// action's own result stands.
    fn set_score(&mut self, score: Score, force: bool) {
        let want = match score {
            Score::Keep => return,
            Score::Set(n) => n.to_string(),
            Score::Remove => "none".to_string(),
        };
        let file = self.score_file();
        let known = self.sys.read_to_string(&file).ok();
        if !force && known.as_deref().map(str::trim) == Some(want.as_str()) {
            return;
        }
        let attr = format!("master-{}", self.params.instance);
        let mut argv = vec![CRM_ATTRIBUTE, "-q", "-n", &attr, "-l", "reboot"];
        let node = self.node.clone();
        if let Some(n) = &node {
            argv.extend(["-N", n.as_str()]);
        }
        match score {
            Score::Set(_) => argv.extend(["-v", want.as_str()]),
            _ => argv.push("-D"),
        }
        match self.run(&argv) {
            Ok(()) => {
                let tmp = file.with_extension("score.tmp");
                let saved = self
                    .sys
                    .mkdir(Path::new(SCORE_DIR))
                    .and_then(|()| self.sys.write_durable(&tmp, want.as_bytes()))
                    .and_then(|()| self.sys.rename(&tmp, &file));
                if let Err(e) = saved {
                    self.warn(&format!("score {want} set but not remembered: {e}"));
                }
            }
            Err((_, why)) => {
                let _ = self.sys.remove_file(&file);
                self.warn(&format!("promotion score {want} not set: {why}"));
            }
        }
    }

    /// The score a monitor sets: [`status::promotion`], except that the preferred
    /// node's bonus ([`status::promotion_on`]) is kept while it still applies. Only
    /// start gives the bonus: a demote leaves both nodes Secondary for a moment during
    /// every switchover, and a bonus given then would pull the Promoted role back as
    /// soon as the move constraint is cleared.
    fn monitor_score(&mut self, s: &Status) -> Score {
        let bonus = status::promotion_on(s, self.preferred);
        if bonus == status::promotion(s) {
            return bonus;
        }
        let kept = self
            .sys
            .read_to_string(&self.score_file())
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok());
        match bonus {
            // Unchanged, so set_score starts no process, except in a probe (a
            // restarted Pacemaker forgot it).
            Score::Set(n) if kept == Some(n) => bonus,
            _ => status::promotion(s),
        }
    }
}

impl super::Actions for Agent<'_> {
    /// 8 Primary, 0 Secondary, 7 not configured, 9 Primary without good data.
    fn monitor(&mut self) -> Rc {
        match self.look() {
            Ok(None) => {
                if !self.probe {
                    self.set_score(Score::Remove, false);
                }
                Rc::NotRunning
            }
            Ok(Some(s)) => {
                let force = self.probe;
                let score = self.monitor_score(&s);
                self.set_score(score, force);
                s.verdict()
            }
            Err(e) => {
                self.err(&format!("monitor: {e}"));
                Rc::ErrGeneric
            }
        }
    }

    fn start(&mut self) -> Rc {
        if !self.sys.exists(Path::new(PROC_DRBD)) {
            if let Err((_, why)) = self.run(&["modprobe", "drbd"]) {
                self.err(&format!("start: the drbd module is not loaded: {why}"));
                return Rc::ErrInstalled;
            }
        }
        let res = self.params.resource.clone();
        match self.look() {
            Ok(Some(s)) if s.role == Role::Primary => {
                self.warn(&format!("start: {res} is Primary already, demoting"));
                if let Err((_, why)) = self.set_role("secondary") {
                    self.err(&format!("start: {why}"));
                    return Rc::ErrGeneric;
                }
            }
            Ok(Some(s)) if s.disk != "Diskless" && s.connection != "StandAlone" => {}
            Ok(_) => {
                if let Err((_, why)) = self.run(&[DRBDADM, "adjust", &res]) {
                    self.err(&format!("start: {why}"));
                    return Rc::ErrGeneric;
                }
            }
            Err(e) => {
                self.err(&format!("start: {e}"));
                return Rc::ErrGeneric;
            }
        }
        // A moment for the disk to attach and the peer to connect, so the first score
        // is the one monitor would give (a node that just attached is often only
        // Consistent until its peer answers).
        let settle = self.budget.waited() + START_SETTLE.min(self.left());
        loop {
            match self.look() {
                Ok(Some(s)) => {
                    let settled = s.disk == "UpToDate" && s.peer_disk != "DUnknown";
                    if settled || self.budget.waited() >= settle || self.left().is_zero() {
                        self.set_score(status::promotion_on(&s, self.preferred), true);
                        return match s.role {
                            Role::Secondary => Rc::Success,
                            _ => {
                                self.err(&format!("start: {res} is {:?}, not Secondary", s.role));
                                Rc::ErrGeneric
                            }
                        };
                    }
                }
                Ok(None) if self.budget.waited() >= settle || self.left().is_zero() => {
                    self.err(&format!(
                        "start: {res} is not configured after drbdadm adjust"
                    ));
                    return Rc::ErrGeneric;
                }
                Ok(None) => {}
                Err(e) => {
                    self.err(&format!("start: {e}"));
                    return Rc::ErrGeneric;
                }
            }
            self.sleep(Duration::from_millis(200));
        }
    }

    /// Reaches "stopped" or returns 1, upon which Pacemaker fences the node.
    fn stop(&mut self) -> Rc {
        let res = self.params.resource.clone();
        loop {
            let step = match self.look() {
                Ok(None) => {
                    self.set_score(Score::Remove, true);
                    return Rc::Success;
                }
                Ok(Some(s)) if s.role == Role::Primary => {
                    self.warn(&format!("stop: {res} is still Primary, demoting"));
                    self.set_role("secondary").err()
                }
                Ok(Some(_)) => self.run(&[DRBDADM, "down", &res]).err(),
                Err(e) => Some((None, e)),
            };
            if let Some((_, why)) = step {
                if self.left() <= RETRY {
                    self.err(&format!("stop: {why}; giving up"));
                    return Rc::ErrGeneric;
                }
                self.warn(&format!("stop: {why}; retrying"));
                self.sleep(RETRY);
            }
        }
    }

    fn promote(&mut self) -> Rc {
        let res = self.params.resource.clone();
        loop {
            let s = match self.look() {
                Ok(Some(s)) => s,
                Ok(None) => {
                    self.err(&format!("promote: {res} is not started"));
                    return Rc::ErrGeneric;
                }
                Err(e) => {
                    self.err(&format!("promote: {e}"));
                    return Rc::ErrGeneric;
                }
            };
            if s.role == Role::Primary {
                self.set_score(status::promotion(&s), false);
                return Rc::Success;
            }
            if !s.promotable() {
                self.err(&format!(
                    "promote: refusing to promote {res}: its local disk is {} (connection {}, peer disk {}), not UpToDate",
                    s.disk, s.connection, s.peer_disk
                ));
                self.set_score(Score::Remove, false);
                return Rc::ErrGeneric;
            }
            let tried = Instant::now();
            match self.set_role("primary") {
                Ok(()) => self.info(&format!("promote: {res} is Primary")),
                Err((Some(code), why)) if REFUSED.contains(&code) => {
                    self.err(&format!(
                        "promote: DRBD refused {res} without access to UpToDate data or a fenced peer: {why}"
                    ));
                    return Rc::ErrGeneric;
                }
                Err((_, why)) if self.left() <= RETRY => {
                    self.err(&format!("promote: {why}; giving up"));
                    return Rc::ErrGeneric;
                }
                Err((_, why)) => {
                    self.warn(&format!("promote: {why}; retrying"));
                    self.pause_after(tried);
                }
            }
        }
    }

    fn demote(&mut self) -> Rc {
        let res = self.params.resource.clone();
        loop {
            match self.look() {
                Ok(Some(s)) if s.role != Role::Primary => {
                    self.set_score(status::promotion(&s), false);
                    return Rc::Success;
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.err(&format!("demote: {res} is not started"));
                    return Rc::ErrGeneric;
                }
                Err(e) => {
                    self.err(&format!("demote: {e}"));
                    return Rc::ErrGeneric;
                }
            }
            match self.set_role("secondary") {
                Ok(()) => self.info(&format!("demote: {res} is Secondary")),
                Err((_, why)) if self.left() <= RETRY => {
                    self.err(&format!("demote: {why}; giving up"));
                    return Rc::ErrGeneric;
                }
                Err((_, why)) => {
                    self.warn(&format!("demote: {why}; retrying"));
                    self.sleep(RETRY);
                }
            }
        }
    }

    /// 0 when the kernel module is loaded or loadable and the state can be read, else 5.
    fn validate(&mut self) -> Rc {
        match self.look() {
            Ok(_) => Rc::Success,
            Err(e) => {
                self.err(&format!("validate-all: {e}"));
                Rc::ErrInstalled
            }
        }
    }
}

const USAGE: &str =
    "usage: drbd {start|stop|monitor|promote|demote|notify|meta-data|validate-all}\n\
                     (or: sanforge-init ocf-drbd ACTION); parameters come from OCF_RESKEY_*";

/// Runs one OCF action with the given environment over `sys`: meta-data and usage on
/// `out`, the log on `log_to`; returns its exit code.
pub fn run_with<'a>(
    action: Option<&str>,
    env: &Env,
    sys: &'a mut dyn Sys,
    out: &mut dyn Write,
    log_to: &'a mut dyn Write,
) -> Rc {
    let mut log = Log::named(AGENT, env, log_to);
    let Some(action) = action else {
        log.plain(USAGE);
        return Rc::ErrArgs;
    };
    if let Some(rc) =
        super::answer_without_params(action, &meta::metadata(), USAGE, env, out, &mut log, sys)
    {
        return rc;
    }
    let params = match Params::from_env(env) {
        Ok(p) => p,
        Err(e) => {
            log.err(sys, &format!("{action}: invalid parameters: {e}"));
            return Rc::ErrConfigured;
        }
    };
    let target = match target::params(env) {
        Ok(t) => t,
        Err(e) => {
            log.err(sys, &format!("{action}: invalid parameters: {e}"));
            return Rc::ErrConfigured;
        }
    };
    if let Some(target) = target {
        drop(log);
        return target::run(action, &params, &target, env, sys, log_to);
    }
    let mut agent = Agent::new(params, env, sys, log);
    super::act(&mut agent, action)
}

/// [`run_with`] on stdout and stderr.
pub fn run(action: Option<&str>, env: &Env, sys: &mut dyn Sys) -> Rc {
    run_with(
        action,
        env,
        sys,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// DRBD resource `resource` (minor `minor`) as this node sees it, read as the agent
/// reads it (DRBD 8.4: `/proc/drbd`; DRBD 9: `drbdsetup status`); `Ok(None)` when it
/// is not configured. For operator commands (`sanforge-init switchover`).
pub fn look(sys: &mut dyn Sys, resource: &str, minor: u32) -> Result<Option<Status>, String> {
    let env = Env::from_pairs([
        ("OCF_RESKEY_drbd_resource", resource.to_string()),
        ("OCF_RESKEY_drbd_minor", minor.to_string()),
        ("OCF_RESKEY_CRM_meta_timeout", "10000".to_string()),
    ]);
    let params = Params::from_env(&env)?;
    let mut sink = std::io::sink();
    Agent::new(params, &env, sys, Log::named(AGENT, &env, &mut sink)).look()
}
