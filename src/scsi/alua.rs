//! ALUA asymmetric access states (SPC-4) as SCST names them and LIO numbers them:
//! shared by the OCF agent (which writes them) and the init's status (which reads
//! them). Pure.

use std::fmt;

/// An ALUA asymmetric access state (SPC-4), as SCST names it and LIO numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluaState {
    Active,
    Nonoptimized,
    Standby,
    Unavailable,
    /// LIO only (SCST does not support it); never written by the agent.
    LbaDependent,
    Offline,
    Transitioning,
}

impl AluaState {
    /// The SCST sysfs name (`scst_tg_state_names`).
    pub fn scst_name(self) -> &'static str {
        match self {
            AluaState::Active => "active",
            AluaState::Nonoptimized => "nonoptimized",
            AluaState::Standby => "standby",
            AluaState::Unavailable => "unavailable",
            AluaState::LbaDependent => "lba-dependent",
            AluaState::Offline => "offline",
            AluaState::Transitioning => "transitioning",
        }
    }

    /// The LIO configfs number (`ALUA_ACCESS_STATE_*`).
    pub fn lio_code(self) -> u8 {
        match self {
            AluaState::Active => 0,
            AluaState::Nonoptimized => 1,
            AluaState::Standby => 2,
            AluaState::Unavailable => 3,
            AluaState::LbaDependent => 4,
            AluaState::Offline => 14,
            AluaState::Transitioning => 15,
        }
    }

    /// Parses an SCST state name (exact, as the kernel compares them).
    pub fn from_scst(s: &str) -> Option<Self> {
        ALL_STATES
            .iter()
            .copied()
            .find(|st| *st != AluaState::LbaDependent && st.scst_name() == s)
    }

    /// Parses a LIO `alua_access_state` value (decimal or 0x-hex, like `kstrtoul(…, 0)`).
    pub fn from_lio(s: &str) -> Option<Self> {
        let n = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => u8::from_str_radix(h, 16).ok()?,
            None => s.parse::<u8>().ok()?,
        };
        ALL_STATES.iter().copied().find(|st| st.lio_code() == n)
    }
}

impl fmt::Display for AluaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scst_name())
    }
}

/// Every state, in SPC-4 order.
pub const ALL_STATES: [AluaState; 7] = [
    AluaState::Active,
    AluaState::Nonoptimized,
    AluaState::Standby,
    AluaState::Unavailable,
    AluaState::LbaDependent,
    AluaState::Offline,
    AluaState::Transitioning,
];
