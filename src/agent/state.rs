//! ALUA states and monitor's verdicts: how SCST names and LIO numbers the asymmetric
//! access states, and the pure functions that turn what monitor read ([`Observed`],
//! [`LunPresence`]) into an OCF exit code with the reason. Pure: reads nothing, so the
//! whole decision table is unit-tested.

use super::params::Params;
use super::Rc;

/// Which SCSI target stack the node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    Scst,
    Lio,
}

impl Stack {
    pub fn name(self) -> &'static str {
        match self {
            Stack::Scst => "scst",
            Stack::Lio => "lio",
        }
    }
}

pub use crate::scsi::alua::{AluaState, ALL_STATES};

impl AluaState {
    /// The value written to a state file of `stack`.
    pub(super) fn encode(self, stack: Stack) -> String {
        match stack {
            Stack::Scst => format!("{}\n", self.scst_name()),
            Stack::Lio => format!("{}\n", self.lio_code()),
        }
    }

    /// A state file's value (first line, trimmed) for `stack`.
    pub(super) fn decode(stack: Stack, s: &str) -> Option<Self> {
        match stack {
            Stack::Scst => Self::from_scst(s),
            Stack::Lio => Self::from_lio(s),
        }
    }
}

/// The ports' combined state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    /// No `ports` parameter.
    Unmanaged,
    AllEnabled,
    AllDisabled,
    Mixed,
}

/// What monitor saw: the local group's state per state file (`None` = file absent),
/// the remote group's, and the ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub local: Vec<Option<AluaState>>,
    pub remote: Vec<Option<AluaState>>,
    pub ports: Ports,
}

/// Monitor's verdict from an observation (pure, so the whole table is unit-tested).
pub fn classify(p: &Params, o: &Observed) -> (Rc, String) {
    let present: Vec<AluaState> = o.local.iter().flatten().copied().collect();
    if present.is_empty() {
        return (Rc::NotRunning, "the local target group is absent".into());
    }
    if present.contains(&p.promoted_state) {
        return classify_promoted(p, o, &present);
    }
    if present.len() != o.local.len() {
        return (
            Rc::ErrGeneric,
            "the local target group is missing on some devices".into(),
        );
    }
    let Some(&first) = present.first() else {
        return (Rc::NotRunning, "the local target group is absent".into());
    };
    if present.iter().any(|s| *s != first) {
        return (
            Rc::ErrGeneric,
            format!("the devices disagree: {}", list(&present)),
        );
    }
    match (first, o.ports) {
        (AluaState::Offline, Ports::Unmanaged | Ports::AllDisabled) => {
            (Rc::NotRunning, "stopped (offline)".into())
        }
        // Only stop sets `offline`; it leaves a port enabled that another device group
        // still uses, and while two groups stop at once the port is enabled until the
        // later stop disables it. The group serves nothing through it either way.
        (AluaState::Offline, _) => (
            Rc::NotRunning,
            "stopped (offline; a port is still enabled, for another device group)".into(),
        ),
        (s, Ports::AllDisabled) if s == p.unpromoted_state => (
            Rc::NotRunning,
            format!("stopped ({s}, every port disabled)"),
        ),
        (s, Ports::Mixed) if s == p.unpromoted_state => (
            Rc::ErrGeneric,
            format!("{s}, but only some ports are enabled"),
        ),
        (s, _) if s == p.unpromoted_state => (Rc::Success, format!("running unpromoted ({s})")),
        (AluaState::Transitioning, _) => (
            Rc::ErrGeneric,
            "left in transitioning (an interrupted promote or demote)".into(),
        ),
        (s, _) => (
            Rc::ErrGeneric,
            format!(
                "unexpected state {s} (promoted_state {}, unpromoted_state {})",
                p.promoted_state, p.unpromoted_state
            ),
        ),
    }
}

/// [`classify`] when some device of the local group shows the promoted state.
fn classify_promoted(p: &Params, o: &Observed, present: &[AluaState]) -> (Rc, String) {
    if present.len() != o.local.len() {
        return (
            Rc::FailedPromoted,
            "promoted, but the local target group is missing on some devices".into(),
        );
    }
    if present.iter().any(|s| *s != p.promoted_state) {
        return (
            Rc::FailedPromoted,
            format!("promoted on some devices only: {}", list(present)),
        );
    }
    if matches!(o.ports, Ports::AllDisabled | Ports::Mixed) {
        return (
            Rc::FailedPromoted,
            "promoted, but not every port is enabled".into(),
        );
    }
    if o.remote.iter().flatten().any(|s| *s == p.promoted_state) {
        return (
            Rc::FailedPromoted,
            format!(
                "promoted, but the remote target group is {} too",
                p.promoted_state
            ),
        );
    }
    (
        Rc::RunningPromoted,
        format!("running promoted ({})", p.promoted_state),
    )
}

fn list(states: &[AluaState]) -> String {
    states
        .iter()
        .map(|s| s.scst_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How much of one `lio_luns` LUN exists in configfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LunPresence {
    /// No backstore, no LUN, no mapped LUN.
    Absent,
    /// Backstore enabled, a LUN in every TPG, a mapped LUN in every ACL.
    Complete,
    /// Anything in between (an interrupted promote or demote, or a hand edit).
    Partial,
}

/// Monitor's verdict with `lio_luns`: LUNs exist only while promoted.
pub fn classify_luns(
    p: &Params,
    luns: &[LunPresence],
    states: &[Option<AluaState>],
    ports: Ports,
) -> (Rc, String) {
    if luns.iter().all(|l| *l == LunPresence::Absent) {
        return match ports {
            Ports::AllEnabled => (
                Rc::Success,
                "running unpromoted (no LUNs, ports enabled)".into(),
            ),
            Ports::AllDisabled | Ports::Unmanaged => {
                (Rc::NotRunning, "stopped (no LUNs, ports disabled)".into())
            }
            Ports::Mixed => (
                Rc::ErrGeneric,
                "no LUNs, but only some ports are enabled".into(),
            ),
        };
    }
    if luns.iter().any(|l| *l != LunPresence::Complete) {
        if states.contains(&Some(p.promoted_state)) {
            return (
                Rc::FailedPromoted,
                "promoted, but some LUNs are missing or incomplete".into(),
            );
        }
        return (
            Rc::ErrGeneric,
            "LUNs half created or half removed (an interrupted promote or demote)".into(),
        );
    }
    let o = Observed {
        local: states.to_vec(),
        remote: Vec::new(),
        ports,
    };
    match classify(p, &o) {
        (rc @ (Rc::RunningPromoted | Rc::FailedPromoted), why) => (rc, why),
        (_, why) => (
            Rc::ErrGeneric,
            format!("the LUNs exist but the target group is not promoted: {why}"),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::params::{lio_unit_serial, sample_params, Env, LioLun};
    use super::*;

    #[test]
    fn lio_codes_match_target_core_alua_h() {
        let codes: Vec<u8> = ALL_STATES.iter().map(|s| s.lio_code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 14, 15]);
        assert_eq!(AluaState::from_lio("0xf"), Some(AluaState::Transitioning));
        assert_eq!(AluaState::from_lio("14"), Some(AluaState::Offline));
        assert_eq!(AluaState::from_lio("5"), None);
        assert_eq!(AluaState::from_scst("lba-dependent"), None);
        assert_eq!(AluaState::from_scst("Active"), None);
    }

    #[test]
    fn classify_table() {
        use AluaState::*;
        let p = sample_params("lio");
        let obs = |l: &[Option<AluaState>], r: &[Option<AluaState>], ports| Observed {
            local: l.to_vec(),
            remote: r.to_vec(),
            ports,
        };
        let rc = |o: Observed| classify(&p, &o).0;
        assert_eq!(
            rc(obs(&[Some(Active), Some(Active)], &[], Ports::AllEnabled)),
            Rc::RunningPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), Some(Active)], &[], Ports::Unmanaged)),
            Rc::RunningPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), Some(Standby)], &[], Ports::AllEnabled)),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), None], &[], Ports::AllEnabled)),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), Some(Active)], &[], Ports::AllDisabled)),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(
                &[Some(Active), Some(Active)],
                &[Some(Active)],
                Ports::AllEnabled
            )),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(
                &[Some(Standby), Some(Standby)],
                &[Some(Active)],
                Ports::AllEnabled
            )),
            Rc::Success
        );
        assert_eq!(
            rc(obs(
                &[Some(Standby), Some(Standby)],
                &[],
                Ports::AllDisabled
            )),
            Rc::NotRunning
        );
        assert_eq!(
            rc(obs(&[Some(Standby), Some(Standby)], &[], Ports::Mixed)),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(
                &[Some(Offline), Some(Offline)],
                &[],
                Ports::AllDisabled
            )),
            Rc::NotRunning
        );
        // Stop leaves a port another device group uses enabled.
        assert_eq!(
            rc(obs(&[Some(Offline), Some(Offline)], &[], Ports::AllEnabled)),
            Rc::NotRunning
        );
        assert_eq!(
            rc(obs(&[Some(Offline), Some(Offline)], &[], Ports::Mixed)),
            Rc::NotRunning
        );
        assert_eq!(
            rc(obs(&[Some(Offline), Some(Standby)], &[], Ports::AllEnabled)),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(&[None, None], &[], Ports::AllEnabled)),
            Rc::NotRunning
        );
        assert_eq!(
            rc(obs(
                &[Some(Transitioning), Some(Transitioning)],
                &[],
                Ports::AllEnabled
            )),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(
                &[Some(Unavailable), Some(Unavailable)],
                &[],
                Ports::AllEnabled
            )),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(&[Some(Standby), None], &[], Ports::AllEnabled)),
            Rc::ErrGeneric
        );
    }

    #[test]
    fn lio_luns_parse_and_classify() {
        use LunPresence::*;
        assert_eq!(
            LioLun::parse("disk0=/dev/drbd0@3").unwrap(),
            LioLun {
                name: "disk0".into(),
                device: "/dev/drbd0".into(),
                lun: 3
            }
        );
        for bad in [
            "disk0",
            "d=/dev/x",
            "d=/dev/x@70000",
            "d.x=/dev/x@0",
            "d=/dev/@0",
        ] {
            assert!(LioLun::parse(bad).is_err(), "{bad}");
        }
        let p = Params::from_env(&Env::from_pairs([
            ("OCF_RESKEY_stack", "lio"),
            ("OCF_RESKEY_lio_luns", "a=/dev/drbd0@0 b=/dev/drbd1@1"),
            ("OCF_RESKEY_ports", "iscsi/iqn.x/tpgt_1"),
        ]))
        .unwrap();
        assert_eq!(p.local_target_group, "default_tg_pt_gp");
        assert_eq!(p.lio_devices, ["iblock_0/a", "iblock_1/b"]);
        let act = Some(AluaState::Active);
        let rc =
            |l: &[LunPresence], s: &[Option<AluaState>], ports| classify_luns(&p, l, s, ports).0;
        assert_eq!(
            rc(&[Absent, Absent], &[None, None], Ports::AllEnabled),
            Rc::Success
        );
        assert_eq!(
            rc(&[Absent, Absent], &[None, None], Ports::AllDisabled),
            Rc::NotRunning
        );
        assert_eq!(
            rc(&[Absent, Absent], &[None, None], Ports::Mixed),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(&[Complete, Complete], &[act, act], Ports::AllEnabled),
            Rc::RunningPromoted
        );
        assert_eq!(
            rc(&[Complete, Complete], &[act, act], Ports::AllDisabled),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(&[Complete, Partial], &[act, act], Ports::AllEnabled),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(&[Complete, Absent], &[act, None], Ports::AllEnabled),
            Rc::FailedPromoted
        );
        let tr = Some(AluaState::Transitioning);
        assert_eq!(
            rc(&[Complete, Partial], &[tr, None], Ports::AllEnabled),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(&[Complete, Complete], &[tr, tr], Ports::AllEnabled),
            Rc::ErrGeneric
        );
        let sb = Some(AluaState::Standby);
        assert_eq!(
            rc(&[Complete, Complete], &[sb, sb], Ports::AllEnabled),
            Rc::ErrGeneric
        );
        assert_eq!(lio_unit_serial("c", "a").len(), 32);
        assert_ne!(lio_unit_serial("c", "a"), lio_unit_serial("d", "a"));
    }
}
