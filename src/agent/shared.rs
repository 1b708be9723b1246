//! SCST ports shared between device groups. In an active/active cluster (one device
//! group and one alua clone per DRBD resource) every device group's target group of
//! this node lists the same per-node targets, so the clones share their `ports`: stop
//! disables a port only when no other device group on this node still uses it.
//!
//! The rule: another device group `D` uses port `DRIVER/TARGET` when one of its target
//! groups lists `TARGET` (`device_groups/D/target_groups/TG/TARGET`: SCST's link to a
//! local target, or the directory of a remote one) and that target group's `state` is
//! not `offline`. `offline` is what stop leaves, and nothing else sets it. A running
//! instance shows its unpromoted or promoted state, a switchover `transitioning`. A
//! device group whose instance never started on this node since boot shows
//! scst.conf's state and counts as using the port: SCST cannot tell it from a running
//! unpromoted instance, and the port then stays enabled with that group in its
//! unpromoted state, advertising no active path. A state that cannot be read or
//! parsed also counts as using the port: another group's path is never cut on a
//! guess. When the device groups cannot be listed at all, stop disables the port, as
//! with a single group.
//!
//! Concurrent stops of two groups (Pacemaker may run them in parallel) cannot both
//! leave a shared port enabled: each sets its own group offline before it looks at
//! the others, so the later of the two looks sees the other offline and disables it.
//! Reads `device_groups/*/target_groups/*/TARGET` and `…/state`; LIO is not covered
//! (see [`super::lio_luns`]).

use super::error::Error;
use super::state::{AluaState, Stack};
use super::Agent;

impl Agent<'_> {
    /// The other device groups' target groups on this node that list SCST port `port`
    /// (`DRIVER/TARGET`) and are not `offline`, each as "device group DG (target group
    /// TG: STATE)". Empty for LIO, without a device group, or for a port without a
    /// driver part.
    pub(super) fn port_users(&mut self, port: &str) -> Result<Vec<String>, Error> {
        let (Stack::Scst, Some(ours)) = (self.params.stack, self.params.device_group.clone())
        else {
            return Ok(Vec::new());
        };
        let Some((_, target)) = port.split_once('/') else {
            return Ok(Vec::new());
        };
        let dgs = self.params.stack_root().join("device_groups");
        let mut users = Vec::new();
        for dg in self.subdirs(&dgs)? {
            if dg == ours {
                continue;
            }
            let tgs = dgs.join(&dg).join("target_groups");
            for tg in self.subdirs(&tgs)? {
                let dir = tgs.join(&tg);
                if self.sys.file_kind(&dir.join(target)).is_none() {
                    continue;
                }
                let state = match self.read_attr(&dir.join("state")) {
                    Ok(v) => v,
                    Err(e) => format!("state unreadable: {e}"),
                };
                if AluaState::from_scst(&state) != Some(AluaState::Offline) {
                    users.push(format!("device group {dg} (target group {tg}: {state})"));
                }
            }
        }
        Ok(users)
    }

    /// Stop's part of the ports: disables every port that no other device group still
    /// uses ([`Agent::port_users`]) and leaves the others enabled, logging why.
    pub(super) fn release_ports(&mut self, errors: &mut Vec<Error>) {
        let ports = self.params.ports.clone();
        for (port, file) in ports.iter().zip(self.params.port_files()) {
            if self.read_attr(&file).is_ok_and(|v| v == "0") {
                continue;
            }
            match self.port_users(port) {
                Ok(users) if !users.is_empty() => {
                    let by = users.join(", ");
                    self.info(&format!(
                        "left {} enabled: {by} still uses it",
                        file.display()
                    ));
                    continue;
                }
                Ok(_) => {}
                Err(e) => self.warn(&format!(
                    "{e}: disabling {} without knowing whether another device group uses it",
                    file.display()
                )),
            }
            self.set_port(&file, false, errors);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::super::params::{Env, Params};
    use super::super::{Actions, Agent, Log, Rc};
    use crate::sys::FakeSys;
    use std::fs;
    use std::path::Path;

    const PORT: &str = "iscsi/iqn.x:alpha";
    const TARGET: &str = "iqn.x:alpha";

    fn put(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// Seed 003 on node alpha: device groups r0 and r1, each with target groups alpha
    /// (listing alpha's target, a link in SCST; a directory here) and beta (listing
    /// beta's, promoted unless alpha's is); alpha's target enabled. `states` are (r0's
    /// alpha, r1's alpha).
    fn tree(dir: &Path, states: (&str, &str)) {
        let s = dir.join("sys/kernel/scst_tgt");
        put(&s.join("last_sysfs_mgmt_res"), "0\n");
        put(&s.join("device_groups/mgmt"), "");
        for (dg, local) in [("r0", states.0), ("r1", states.1)] {
            let tgs = s.join("device_groups").join(dg).join("target_groups");
            put(&tgs.join("mgmt"), "");
            put(&tgs.join("alpha/state"), &format!("{local}\n"));
            put(&tgs.join("alpha/group_id"), "1\n");
            fs::create_dir_all(tgs.join("alpha").join(TARGET)).unwrap();
            let remote = if local == "active" {
                "standby"
            } else {
                "active"
            };
            put(&tgs.join("beta/state"), &format!("{remote}\n"));
            put(&tgs.join("beta/group_id"), "2\n");
            put(&tgs.join("beta/iqn.x:beta/rel_tgt_id"), "2\n");
        }
        put(&s.join("targets/iscsi").join(TARGET).join("enabled"), "1\n");
    }

    fn env(dg: &str) -> Env {
        Env::from_pairs([
            ("OCF_RESKEY_stack", "scst"),
            ("OCF_RESKEY_sysfs_root", "/sys"),
            ("OCF_RESKEY_device_group", dg),
            ("OCF_RESKEY_local_target_group", "alpha"),
            ("OCF_RESKEY_remote_target_group", "beta"),
            ("OCF_RESKEY_ports", PORT),
        ])
    }

    /// Runs `action` of `dg`'s instance over the tree; its exit code and log.
    fn run(dir: &Path, dg: &str, action: &str) -> (Rc, String) {
        let mut sys = FakeSys::new(dir);
        let env = env(dg);
        let mut log = Vec::new();
        let p = Params::from_env(&env).unwrap();
        let rc = {
            let mut a = Agent::new(p, &env, &mut sys, Log::from_env(&env, &mut log));
            match action {
                "stop" => a.stop(),
                "start" => a.start(),
                _ => a.monitor(),
            }
        };
        (rc, String::from_utf8(log).unwrap())
    }

    fn read(dir: &Path, rel: &str) -> String {
        fs::read_to_string(dir.join("sys/kernel/scst_tgt").join(rel)).unwrap()
    }

    const ENABLED: &str = "targets/iscsi/iqn.x:alpha/enabled";

    #[test]
    fn stop_leaves_a_port_another_group_uses_enabled() {
        for other in ["active", "standby", "transitioning", "sideways"] {
            let t = tempfile::tempdir().unwrap();
            tree(t.path(), ("standby", other));
            let (rc, log) = run(t.path(), "r0", "stop");
            assert_eq!(rc, Rc::Success, "{other}: {log}");
            assert_eq!(
                read(t.path(), "device_groups/r0/target_groups/alpha/state"),
                "offline\n"
            );
            assert_eq!(read(t.path(), ENABLED), "1\n", "{other}: {log}");
            assert!(
                log.contains("enabled: device group r1 (target group alpha: ")
                    && log.contains(" still uses it"),
                "{log}"
            );
            assert_eq!(run(t.path(), "r0", "monitor").0, Rc::NotRunning, "{other}");
            let want = match other {
                "active" => Rc::RunningPromoted,
                "standby" => Rc::Success,
                _ => Rc::ErrGeneric,
            };
            assert_eq!(run(t.path(), "r1", "monitor").0, want, "{other}");
            // Stopped again (a probe's stop): still left enabled.
            assert_eq!(run(t.path(), "r0", "stop").0, Rc::Success);
            assert_eq!(read(t.path(), ENABLED), "1\n");
        }
    }

    #[test]
    fn the_last_group_to_stop_disables_the_port() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path(), ("active", "standby"));
        assert_eq!(run(t.path(), "r1", "stop").0, Rc::Success);
        assert_eq!(read(t.path(), ENABLED), "1\n");
        assert_eq!(run(t.path(), "r0", "monitor").0, Rc::RunningPromoted);
        let (rc, log) = run(t.path(), "r0", "stop");
        assert_eq!(rc, Rc::Success, "{log}");
        assert_eq!(read(t.path(), ENABLED), "0\n", "{log}");
        assert!(!log.contains("still uses it"), "{log}");
        for dg in ["r0", "r1"] {
            assert_eq!(run(t.path(), dg, "monitor").0, Rc::NotRunning, "{dg}");
        }
        // Started again: the port back on, the other group still stopped.
        assert_eq!(run(t.path(), "r1", "start").0, Rc::Success);
        assert_eq!(read(t.path(), ENABLED), "1\n");
        assert_eq!(run(t.path(), "r1", "monitor").0, Rc::Success);
        assert_eq!(run(t.path(), "r0", "monitor").0, Rc::NotRunning);
    }

    #[test]
    fn a_target_group_without_the_port_or_of_our_own_group_does_not_hold_it() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path(), ("standby", "standby"));
        // r1 lists only beta's target on this node.
        let r1 = t
            .path()
            .join("sys/kernel/scst_tgt/device_groups/r1/target_groups/alpha");
        fs::remove_dir(r1.join(TARGET)).unwrap();
        let (rc, log) = run(t.path(), "r0", "stop");
        assert_eq!(rc, Rc::Success, "{log}");
        assert_eq!(read(t.path(), ENABLED), "0\n", "{log}");
    }
}
