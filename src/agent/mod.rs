//! `ocf:sanforge:alua`, the Pacemaker resource agent that moves the ALUA state of this
//! node's target port group between the promoted state (active/optimized) and the
//! unpromoted one (standby), for SCST and for LIO. It runs as a promotable clone,
//! ordered after (and colocated with) the DRBD promotable clone, so the node whose DRBD
//! is Primary is the one advertising active/optimized paths.
//!
//! Invoked by Pacemaker as `/usr/lib/ocf/resource.d/sanforge/alua ACTION` (a symlink to
//! `/init`, dispatched on `argv[0]`) or by hand as `sanforge-init ocf-alua ACTION`; it reads
//! its parameters from `OCF_RESKEY_*` and these files only:
//!
//! * SCST: `<sysfs_root>/kernel/scst_tgt/device_groups/<dg>/target_groups/<tg>/state`
//!   (ALUA state names), `…/targets/<driver>/<target>/enabled`, `last_sysfs_mgmt_res`;
//! * LIO: `<sysfs_root>/kernel/config/target/core/<hba>/<dev>/alua/<tg_pt_gp>/alua_access_state`
//!   (numbers, `target_core_alua.h`: 0 active/optimized, 1 active/non-optimized,
//!   2 standby, 3 unavailable, 4 LBA-dependent, 14 offline, 15 transitioning) and
//!   `…/target/<fabric>/<wwn>/tpgt_N/enable`.
//!
//! Semantics (exit codes are OCF's, see [`Rc`]):
//! * start: local group → unpromoted state, remote group (when named) → promoted
//!   state (the peer is assumed to serve), ports enabled. Monitor then says 0.
//! * promote: local → `transitioning`, remote → unpromoted, local → promoted (8).
//! * demote: local → `transitioning` → unpromoted, remote → promoted (0).
//! * stop: local → `transitioning` (when promoted) → `offline`, ports disabled (7);
//!   with SCST a port stays enabled while another device group on this node still
//!   uses it (its target group there listing the port, not `offline`: several groups,
//!   one per DRBD resource, share the node's targets; see `shared`).
//!   A stop that cannot finish returns 1: Pacemaker then **fences the node**, which is
//!   the only safe answer when a node may still be advertising active paths.
//! * monitor: 8 promoted, 0 unpromoted, 7 stopped (group absent, local state offline
//!   whatever the ports, or unpromoted with every configured port disabled), 9
//!   promoted-looking but inconsistent (ports
//!   not all enabled, devices disagreeing, the remote group promoted too), 1 anything
//!   else (e.g. left in `transitioning` by an interrupted promote).
//!
//! Why `standby` by default when unpromoted: with single-primary DRBD the secondary
//! cannot serve I/O at all, so advertising active/non-optimized would send initiators
//! I/O that must fail (ha.md §3, "design tension"). `standby` is SPC's state for a
//! path that becomes usable by a transition (initiators keep probing it; Linux's
//! multipath ranks it above `unavailable`, which means "broken"); SCST's
//! `bind_alua_state=1` also closes the backing device outside the active states, which
//! is what a DRBD secondary needs. Use `nonoptimized` only with dual-primary DRBD or
//! I/O forwarding. `transitioning` is written during every switchover, as SCST's README
//! recommends, so initiators retry instead of failing.
//!
//! LIO with `lio_luns` (what `sanforge cluster render` gives a `target = "lio"`
//! cluster): an iblock backstore opens its block device when enabled, and a
//! single-primary DRBD Secondary cannot be opened at all, so the LUNs exist on the
//! promoted node only. promote creates, per `NAME=DEVICE@LUN`, `core/iblock_LUN/NAME`
//! (control, a unit serial from `cluster_name` + NAME, enable; the device's
//! `default_tg_pt_gp` in `transitioning`), `lun/lun_LUN` in every TPG of `ports` and
//! `lun_LUN` in every ACL of those TPGs, then sets the promoted state; demote and stop
//! remove them in reverse order (a stop that cannot returns 1: fence); start leaves
//! the ports enabled without LUNs. Monitor: 8 all LUNs there and promoted, 0 none and
//! ports enabled, 7 none and ports disabled, 9 promoted with LUNs missing, 1 half-made.
//! Each configfs change is one mkdir, symlink, unlink, rmdir or write, idempotent, and
//! its error names the path and errno.
//!
//! Every sysfs/configfs write is one `write(2)` of the whole value on a fresh open
//! (never creating the file), and every error names the path and the errno. Log lines
//! go to stderr (Pacemaker collects them) prefixed with `alua(<instance>)[pid]`, and are
//! appended to `$HA_LOGFILE` when set; debug lines only with `HA_debug=1`.
//!
//! Every file operation goes through the [`Sys`] the agent is given, like the init's:
//! the agent has no test mode of its own. `sanforge-init` runs it over
//! [`RealSys`](crate::sys::RealSys) on a node, and over the recording
//! [`FakeSys`](crate::sys::FakeSys) playing sysfs and configfs in a directory tree
//! (`sanforge-init --root DIR ocf-alua ACTION`, or `sysfs_root` naming another
//! directory than `/sys`, as the tests and `ocf-tester` runs do).
//!
//! The parts: [`params`] (the environment into validated [`Params`]), [`meta`] (the
//! parameter specs and the meta-data XML), [`state`] (ALUA states and monitor's pure
//! verdicts), `sysfs` (paths, attribute reads and writes), `groups` (switching existing
//! target groups: SCST, LIO `lio_devices`), `shared` (SCST ports other device groups
//! still use), `lio_luns` (LIO LUNs made at promote),
//! `log`, `error`. The same binary is also `ocf:sanforge:drbd`, the promotable DRBD
//! agent ([`drbd`]), which shares [`Rc`], [`Env`] and [`Log`].

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![forbid(unsafe_code)]

pub(crate) mod budget;
pub mod drbd;
mod error;
mod groups;
mod lio_luns;
mod log;
pub mod meta;
pub mod params;
mod shared;
pub mod state;
mod sysfs;

pub use error::Error;
pub use log::Log;
pub use meta::{metadata, ParamSpec, PARAMS};
pub use params::{lio_unit_serial, Env, LioLun, ParamError, Params, SYSFS};
pub use state::{classify, classify_luns, AluaState, LunPresence, Observed, Ports, Stack};

use crate::sys::Sys;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

/// The agent's type name (`ocf:sanforge:alua`); also the `argv[0]` name it answers to.
pub const AGENT: &str = "alua";
/// The sanforge-init subcommand that runs the agent.
pub const SUBCOMMAND: &str = "ocf-alua";

/// OCF exit codes (Pacemaker_Administration/agents.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rc {
    Success = 0,
    ErrGeneric = 1,
    ErrArgs = 2,
    ErrUnimplemented = 3,
    ErrPerm = 4,
    ErrInstalled = 5,
    ErrConfigured = 6,
    NotRunning = 7,
    RunningPromoted = 8,
    FailedPromoted = 9,
}

impl Rc {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The agent bound to its parameters, its [`Sys`], its log and its deadline.
pub struct Agent<'a> {
    pub params: Params,
    sys: &'a mut dyn Sys,
    log: Log<'a>,
    /// Pacemaker's timeout for the action, less a margin.
    budget: budget::Budget,
}

impl<'a> Agent<'a> {
    pub fn new(params: Params, env: &Env, sys: &'a mut dyn Sys, log: Log<'a>) -> Self {
        Agent {
            params,
            sys,
            log,
            budget: budget::Budget::from_env(env),
        }
    }

    /// The agent spending `budget` (one action's, shared with the drbd agent when
    /// that carries the target: see `drbd::target`).
    pub(crate) fn with_budget(mut self, budget: budget::Budget) -> Self {
        self.budget = budget;
        self
    }

    /// What is left of the budget, for the next part of the same action.
    pub(crate) fn into_budget(self) -> budget::Budget {
        self.budget
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

    fn debug(&mut self, msg: &str) {
        self.log.debug(&mut *self.sys, msg)
    }
}

impl Actions for Agent<'_> {
    /// 8 promoted, 0 unpromoted, 7 stopped, 9 promoted but inconsistent, 1 otherwise.
    fn monitor(&mut self) -> Rc {
        if self.params.manages_luns() {
            self.luns_monitor()
        } else {
            self.groups_monitor()
        }
    }

    fn start(&mut self) -> Rc {
        if self.params.manages_luns() {
            self.luns_start()
        } else {
            self.groups_start()
        }
    }

    /// Reaches "stopped" or returns 1, upon which Pacemaker fences the node.
    fn stop(&mut self) -> Rc {
        if self.params.manages_luns() {
            self.luns_stop()
        } else {
            self.groups_stop()
        }
    }

    fn promote(&mut self) -> Rc {
        if self.params.manages_luns() {
            self.luns_promote()
        } else {
            self.groups_promote()
        }
    }

    fn demote(&mut self) -> Rc {
        if self.params.manages_luns() {
            self.luns_demote()
        } else {
            self.groups_demote()
        }
    }

    /// 0 when everything the parameters name exists, else 5 naming what is missing.
    fn validate(&mut self) -> Rc {
        match self.check_installed() {
            Ok(()) => Rc::Success,
            Err(e) => {
                self.err(&e.to_string());
                Rc::ErrInstalled
            }
        }
    }
}

const USAGE: &str =
    "usage: alua {start|stop|monitor|promote|demote|notify|meta-data|validate-all}\n\
                     (or: sanforge-init ocf-alua ACTION); parameters come from OCF_RESKEY_*";

/// Runs one OCF action with the given environment over `sys`, meta-data and usage on
/// stdout, the log on stderr; returns its exit code.
pub fn run(action: Option<&str>, env: &Env, sys: &mut dyn Sys) -> Rc {
    run_with(
        action,
        env,
        sys,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// [`run`] writing meta-data and usage to `out` and the log to `log_to`.
pub fn run_with<'a>(
    action: Option<&str>,
    env: &Env,
    sys: &'a mut dyn Sys,
    out: &mut dyn Write,
    log_to: &'a mut dyn Write,
) -> Rc {
    let mut log = Log::from_env(env, log_to);
    let Some(action) = action else {
        log.plain(USAGE);
        return Rc::ErrArgs;
    };
    if let Some(rc) = answer_without_params(action, &metadata(), USAGE, env, out, &mut log, sys) {
        return rc;
    }
    let params = match Params::from_env(env) {
        Ok(p) => p,
        Err(e) => {
            log.err(sys, &format!("{action}: invalid parameters: {e}"));
            return Rc::ErrConfigured;
        }
    };
    let mut agent = Agent::new(params, env, sys, log);
    let shown = format!("{action}: {:?}", agent.params);
    agent.debug(&shown);
    act(&mut agent, action)
}

/// The six resource actions of an OCF agent (both agents, and the two parts of a
/// DRBD resource that carries its target: `drbd::target`).
pub(crate) trait Actions {
    fn validate(&mut self) -> Rc;
    fn start(&mut self) -> Rc;
    fn stop(&mut self) -> Rc;
    fn monitor(&mut self) -> Rc;
    fn promote(&mut self) -> Rc;
    fn demote(&mut self) -> Rc;
}

/// Runs resource action `action` of `agent`; 3 (unimplemented) for any other name.
pub(crate) fn act(agent: &mut dyn Actions, action: &str) -> Rc {
    match action {
        "validate-all" => agent.validate(),
        "start" => agent.start(),
        "stop" => agent.stop(),
        "monitor" => agent.monitor(),
        "promote" => agent.promote(),
        "demote" => agent.demote(),
        _ => Rc::ErrUnimplemented,
    }
}

/// What an OCF agent answers before it reads its parameters: `meta-data`, `usage`,
/// `notify` (no work: the clones notify nobody that needs it; Pacemaker requires 0)
/// and unknown actions; `None` for the six resource actions, which the agent runs.
/// Shared by the alua and drbd agents.
pub(crate) fn answer_without_params(
    action: &str,
    metadata: &str,
    usage: &str,
    env: &Env,
    out: &mut dyn Write,
    log: &mut Log,
    sys: &mut dyn Sys,
) -> Option<Rc> {
    let written = |r: std::io::Result<()>| {
        Some(if r.is_ok() {
            Rc::Success
        } else {
            Rc::ErrGeneric
        })
    };
    match action {
        "meta-data" => written(out.write_all(metadata.as_bytes())),
        "usage" | "help" | "-h" | "--help" => written(writeln!(out, "{usage}")),
        "notify" => {
            let msg = format!(
                "notify: {}-{}",
                env.get("OCF_RESKEY_CRM_meta_notify_type").unwrap_or("?"),
                env.get("OCF_RESKEY_CRM_meta_notify_operation")
                    .unwrap_or("?")
            );
            log.info(sys, &msg);
            Some(Rc::Success)
        }
        "start" | "stop" | "monitor" | "promote" | "demote" | "validate-all" => None,
        other => {
            log.err(sys, &format!("action '{other}' is not implemented"));
            Some(Rc::ErrUnimplemented)
        }
    }
}

/// The action when `args` invoke the alua agent — `…/alua ACTION` (`argv[0]`, how
/// Pacemaker calls it) or `sanforge-init ocf-alua ACTION` — `Some(None)` when the
/// action is missing; None when they do not.
pub fn invoked_action(args: &[OsString]) -> Option<Option<String>> {
    invoked(args, AGENT, SUBCOMMAND)
}

/// The action when `args` invoke agent `name` (`argv[0]`'s file name) or the
/// sanforge-init subcommand `sub`.
fn invoked(args: &[OsString], name: &str, sub: &str) -> Option<Option<String>> {
    let arg0 = args
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    let action = if arg0 == Some(name) {
        args.get(1)
    } else if args.get(1).and_then(|a| a.to_str()) == Some(sub) {
        args.get(2)
    } else {
        return None;
    };
    Some(action.map(|a| a.to_string_lossy().into_owned()))
}

/// For `main` of sanforge-init: when `args` invoke one of the agents (`alua`,
/// [`drbd`]), runs it with the process's environment over the [`Sys`] `sys_for` picks
/// for that environment, and returns its exit code.
pub fn dispatch(args: &[OsString], sys_for: impl FnOnce(&Env) -> Box<dyn Sys>) -> Option<u8> {
    if let Some(action) = invoked(args, drbd::AGENT, drbd::SUBCOMMAND) {
        let env = Env::from_process();
        let mut sys = sys_for(&env);
        return Some(drbd::run(action.as_deref(), &env, sys.as_mut()).code());
    }
    let action = invoked_action(args)?;
    let env = Env::from_process();
    let mut sys = sys_for(&env);
    Some(run(action.as_deref(), &env, sys.as_mut()).code())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn dispatch_only_answers_to_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let fake = |_: &Env| -> Box<dyn Sys> { Box::new(FakeSys::new(dir.path())) };
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(dispatch(&a(&["/init"]), fake), None);
        assert_eq!(
            dispatch(&a(&["sanforge-init", "--root", "x", "boot"]), fake),
            None
        );
        assert_eq!(
            dispatch(
                &a(&["/usr/lib/ocf/resource.d/sanforge/alua", "frobnicate"]),
                fake
            ),
            Some(3)
        );
        assert_eq!(dispatch(&a(&["sanforge-init", "ocf-alua"]), fake), Some(2));
        assert_eq!(dispatch(&a(&["sanforge-init", "ocf-drbd"]), fake), Some(2));
        assert_eq!(
            dispatch(
                &a(&["/usr/lib/ocf/resource.d/sanforge/drbd", "frobnicate"]),
                fake
            ),
            Some(3)
        );
    }
}
