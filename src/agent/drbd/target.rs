//! A DRBD resource that carries its SCSI target: with `stack` set (and the other
//! parameters of `ocf:sanforge:alua`), each action of `ocf:sanforge:drbd` also does what
//! the alua agent does for the target on the DRBD device, in the same process and
//! within the same action budget:
//!
//! * start: DRBD (attach, connect, Secondary), then the target (ports enabled, the
//!   local group unpromoted);
//! * promote: DRBD Primary, then the target promoted (LIO: the LUNs created on the
//!   device only the Primary can open);
//! * demote and stop: the target first (LUNs removed, the group unpromoted or offline),
//!   then DRBD, which cannot go Secondary while the target holds the device open;
//! * monitor: both, combined by [`combine`];
//! * validate-all: both.
//!
//! Why: as two promotable clones (DRBD, then alua ordered after it) a planned
//! switchover is four actions in a row (alua demote, DRBD demote, DRBD promote, alua
//! promote), each a process start, a Pacemaker round trip through the CIB and a
//! cancelled monitor; under QEMU TCG each cost 0.3 to 0.5 s of the switchover
//! (benches/failover-steps.sh). Carried together they are two. The cluster renders
//! this form when nothing sits between DRBD and the target (`ha::render::cib`: no VG
//! on the device, the native DRBD agent); otherwise the two clones stay separate.

use super::super::budget::Budget;
use super::super::{act, Agent as TargetAgent, Env, Log, Params as TargetParams, Rc};
use super::{Agent, Params, AGENT};
use crate::sys::Sys;
use std::io::Write;

/// The target's parameters when `env` names a stack (`OCF_RESKEY_stack`), else none.
pub fn params(env: &Env) -> Result<Option<TargetParams>, String> {
    if env.param("stack").is_none() {
        return Ok(None);
    }
    TargetParams::from_env(env)
        .map(Some)
        .map_err(|e| format!("{e} (the target's parameters, as ocf:sanforge:alua takes them)"))
}

/// One OCF action of the DRBD resource `drbd` with the target `target` over `sys`,
/// logging to `log_to`: each part gets an agent of its own, one after the other,
/// spending one budget.
pub fn run(
    action: &str,
    drbd: &Params,
    target: &TargetParams,
    env: &Env,
    sys: &mut dyn Sys,
    log_to: &mut dyn Write,
) -> Rc {
    let mut budget = Budget::from_env(env);
    let mut part = Part {
        env,
        sys,
        log_to,
        budget: &mut budget,
    };
    match action {
        "start" | "promote" => {
            let first = part.drbd(drbd, action);
            // DRBD did not reach the state the target needs: the target is left alone.
            if first != Rc::Success {
                return first;
            }
            part.target(target, action)
        }
        "demote" | "stop" => {
            let first = part.target(target, action);
            // A target that could not be demoted or stopped keeps DRBD as it is: it
            // still holds the device. Pacemaker recovers (a failed stop fences the node).
            if first != Rc::Success {
                return first;
            }
            part.drbd(drbd, action)
        }
        "monitor" => {
            let d = part.drbd(drbd, "monitor");
            let t = part.target(target, action);
            let (rc, why) = combine(d, t);
            if let Some(why) = why {
                let mut log = Log::named(AGENT, env, &mut *part.log_to);
                log.err(&mut *part.sys, &format!("monitor: {why}"));
            }
            rc
        }
        "validate-all" => match part.drbd(drbd, "validate-all") {
            Rc::Success => part.target(target, action),
            rc => rc,
        },
        _ => Rc::ErrUnimplemented,
    }
}

/// What each part of an action runs over: one after the other, each with an agent of
/// its own, all spending one budget.
struct Part<'p> {
    env: &'p Env,
    sys: &'p mut dyn Sys,
    log_to: &'p mut dyn Write,
    budget: &'p mut Budget,
}

impl Part<'_> {
    fn drbd(&mut self, params: &Params, action: &str) -> Rc {
        let log = Log::named(AGENT, self.env, &mut *self.log_to);
        let mut a = Agent::new(params.clone(), self.env, &mut *self.sys, log)
            .with_budget(self.budget.clone());
        let rc = act(&mut a, action);
        *self.budget = a.into_budget();
        rc
    }

    fn target(&mut self, params: &TargetParams, action: &str) -> Rc {
        let log = Log::from_env(self.env, &mut *self.log_to);
        let mut t = TargetAgent::new(params.clone(), self.env, &mut *self.sys, log)
            .with_budget(self.budget.clone());
        let rc = act(&mut t, action);
        *self.budget = t.into_budget();
        rc
    }
}

/// The resource's monitor result from DRBD's (`drbd`) and the target's (`target`),
/// and why they disagree when they do:
/// * the same role (7 stopped, 0 unpromoted, 8 promoted): that role;
/// * an error of either (DRBD's first): that error;
/// * DRBD stopped, the target unpromoted: stopped (7). An unpromoted target serves
///   nothing, and with SCST a node's ports are shared by every device group on it
///   (active/active), so another group's start enables them and makes this group's
///   target look started (`ocf:sanforge:alua` monitor: 0) before this resource is;
/// * Primary or promoted on one side only: 9 (failed while promoted: Pacemaker
///   demotes, stops and starts it again);
/// * DRBD started, the target stopped: 1.
pub fn combine(drbd: Rc, target: Rc) -> (Rc, Option<String>) {
    let role = |rc: Rc| matches!(rc, Rc::Success | Rc::NotRunning | Rc::RunningPromoted);
    if drbd == target || (drbd, target) == (Rc::NotRunning, Rc::Success) {
        return (drbd, None);
    }
    if !role(drbd) {
        return (drbd, None);
    }
    if !role(target) {
        return (target, None);
    }
    let name = |rc: Rc| match rc {
        Rc::RunningPromoted => "promoted",
        Rc::Success => "started (unpromoted)",
        _ => "stopped",
    };
    let why = format!("DRBD is {} but the target is {}", name(drbd), name(target));
    let rc = if drbd == Rc::RunningPromoted || target == Rc::RunningPromoted {
        Rc::FailedPromoted
    } else {
        Rc::ErrGeneric
    };
    (rc, Some(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_agrees_or_names_the_disagreement() {
        use Rc::*;
        assert_eq!(combine(NotRunning, NotRunning), (NotRunning, None));
        assert_eq!(combine(Success, Success), (Success, None));
        assert_eq!(
            combine(RunningPromoted, RunningPromoted),
            (RunningPromoted, None)
        );
        // Errors pass through, DRBD's first.
        assert_eq!(combine(FailedPromoted, ErrGeneric), (FailedPromoted, None));
        assert_eq!(combine(RunningPromoted, ErrGeneric), (ErrGeneric, None));
        assert_eq!(combine(ErrInstalled, Success), (ErrInstalled, None));
        // Promoted on one side only: failed promoted, named.
        let (rc, why) = combine(RunningPromoted, Success);
        assert_eq!(rc, FailedPromoted);
        assert_eq!(
            why.as_deref(),
            Some("DRBD is promoted but the target is started (unpromoted)")
        );
        assert_eq!(combine(Success, RunningPromoted).0, FailedPromoted);
        assert_eq!(combine(NotRunning, RunningPromoted).0, FailedPromoted);
        // Started on one side only.
        let (rc, why) = combine(Success, NotRunning);
        assert_eq!(rc, ErrGeneric);
        assert_eq!(
            why.as_deref(),
            Some("DRBD is started (unpromoted) but the target is stopped")
        );
        // DRBD stopped under a target left unpromoted (ports another group enabled).
        assert_eq!(combine(NotRunning, Success), (NotRunning, None));
    }

    #[test]
    fn target_parameters_only_with_a_stack() {
        assert_eq!(params(&Env::default()), Ok(None));
        let env = Env::from_pairs([("OCF_RESKEY_stack", "tape")]);
        let e = params(&env).unwrap_err();
        assert!(e.contains("tape"), "{e}");
        assert!(e.contains("ocf:sanforge:alua"), "{e}");
    }
}
