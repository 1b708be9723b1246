//! An OCF action's time budget, shared by the agents: Pacemaker passes the action's
//! timeout (`OCF_RESKEY_CRM_meta_timeout`, ms); the agent keeps a 2 s margin so that it
//! reports before Pacemaker kills it. Time counts both on the wall clock and as the
//! time slept through [`Sys`] (a fake `sleep` returns at once: retries still end).

use super::Env;
use crate::sys::Sys;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Budget {
    deadline: Instant,
    total: Duration,
    waited: Duration,
}

impl Budget {
    pub fn from_env(env: &Env) -> Budget {
        let ms = env
            .get("OCF_RESKEY_CRM_meta_timeout")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(20_000)
            .min(86_400_000);
        let total = Duration::from_millis(ms)
            .saturating_sub(Duration::from_secs(2))
            .max(Duration::from_secs(1));
        Budget {
            deadline: Instant::now() + total,
            total,
            waited: Duration::ZERO,
        }
    }

    /// What is left: the nearer of the wall-clock deadline and the sleeping allowance.
    pub fn left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .min(self.total.saturating_sub(self.waited))
    }

    /// Time slept so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    pub fn sleep(&mut self, sys: &mut dyn Sys, d: Duration) {
        sys.sleep(d);
        self.waited += d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_timeout_less_a_margin_and_sleeping_spends_it() {
        let env = Env::from_pairs([("OCF_RESKEY_CRM_meta_timeout", "5000")]);
        let mut b = Budget::from_env(&env);
        assert!(b.left() <= Duration::from_secs(3) && b.left() > Duration::from_millis(2900));
        let mut sys = crate::sys::FakeSys::new("/nonexistent");
        b.sleep(&mut sys, Duration::from_secs(2));
        assert_eq!(b.waited(), Duration::from_secs(2));
        assert!(b.left() <= Duration::from_secs(1));
        b.sleep(&mut sys, Duration::from_secs(2));
        assert_eq!(b.left(), Duration::ZERO);
        // No or a bad timeout: Pacemaker's default 20 s; never below 1 s.
        assert!(Budget::from_env(&Env::default()).left() > Duration::from_secs(17));
        let tiny = Env::from_pairs([("OCF_RESKEY_CRM_meta_timeout", "10")]);
        assert!(Budget::from_env(&tiny).left() > Duration::from_millis(900));
    }
}
