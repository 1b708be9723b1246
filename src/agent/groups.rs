//! The actions when the target groups already exist and only their ALUA state
//! changes: SCST (`device_groups/<dg>/target_groups/<tg>/state`, state names) and LIO
//! with `lio_devices` (`core/<hba>/<dev>/alua/<tg_pt_gp>/alua_access_state`, numbers).
//! Reads and writes the state files and the port enable files (see [`super::sysfs`]);
//! creates and removes nothing.

use super::error::Error;
use super::state::{classify, AluaState, Observed};
use super::{Actions, Agent, Rc};

impl Agent<'_> {
    /// The local and remote groups' states and the ports, as they are now.
    pub fn observe(&mut self) -> Result<Observed, Error> {
        let local = self.params.state_files(&self.params.local_target_group);
        let remote = match &self.params.remote_target_group {
            Some(r) => self.params.state_files(r),
            None => Vec::new(),
        };
        Ok(Observed {
            local: self.read_states(&local)?,
            remote: self.read_states(&remote)?,
            ports: self.read_ports()?,
        })
    }

    pub(super) fn groups_monitor(&mut self) -> Rc {
        let root = self.params.stack_root();
        if !self.sys.exists(&root) {
            self.debug(&format!("{} does not exist: not running", root.display()));
            return Rc::NotRunning;
        }
        match self.observe() {
            Ok(o) => {
                let (rc, why) = classify(&self.params, &o);
                match rc {
                    Rc::Success | Rc::RunningPromoted | Rc::NotRunning => self.debug(&why),
                    _ => self.err(&why),
                }
                rc
            }
            Err(e) => {
                self.err(&e.to_string());
                Rc::ErrGeneric
            }
        }
    }

    /// Local group → unpromoted (through `transitioning` when it was promoted), remote
    /// group → promoted, ports enabled.
    pub(super) fn groups_start(&mut self) -> Rc {
        if let Err(e) = self.check_installed() {
            self.err(&e.to_string());
            return Rc::ErrInstalled;
        }
        let p = self.params.clone();
        let mut errors = Vec::new();
        if self.monitor() == Rc::Success {
            // Unpromoted with the ports enabled: started before, or the ports are
            // shared with another device group's instance (one group per DRBD
            // resource, active/active) whose start enabled them before this one ran,
            // leaving this group's remote state as scst.conf set it (unpromoted).
            // The remote group is still set (a no-op when it already is).
            self.info("start: already running unpromoted");
            if let Some(r) = &p.remote_target_group {
                self.set_group(r, p.promoted_state, &mut errors);
            }
            return self.finish("start", errors, Rc::Success);
        }
        if self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        self.set_group(&p.local_target_group, p.unpromoted_state, &mut errors);
        if let Some(r) = &p.remote_target_group {
            self.set_group(r, p.promoted_state, &mut errors);
        }
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("start", errors, Rc::Success)
    }

    /// Local group → `offline` (through `transitioning` when promoted), then every port
    /// that no other device group on this node still uses disabled (see
    /// [`super::shared`]). Stop must reach "stopped" or fail with 1, upon which
    /// Pacemaker fences the node.
    pub(super) fn groups_stop(&mut self) -> Rc {
        if let Err(e) = self.check_installed() {
            let root = self.params.stack_root();
            if !self.sys.exists(&root) || self.monitor() == Rc::NotRunning {
                self.info(&format!("stop: nothing to stop ({e})"));
                return Rc::Success;
            }
        }
        let p = self.params.clone();
        let mut errors = Vec::new();
        if self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        self.set_group(&p.local_target_group, AluaState::Offline, &mut errors);
        // Only after the local group is offline (so of two concurrent stops the later
        // disables a shared port), and even when that write failed: fewer paths left.
        self.release_ports(&mut errors);
        let rc = self.finish("stop", errors, Rc::NotRunning);
        if rc != Rc::Success {
            self.err("stop did not complete: Pacemaker will fence this node");
        }
        rc
    }

    /// Local group → `transitioning`, remote group → unpromoted, local → promoted.
    pub(super) fn groups_promote(&mut self) -> Rc {
        if let Some(rc) = self.promote_precheck(Self::groups_monitor) {
            return rc;
        }
        let p = self.params.clone();
        let mut errors = Vec::new();
        if !self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        if let Some(r) = &p.remote_target_group {
            self.set_group(r, p.unpromoted_state, &mut errors);
        }
        self.set_group(&p.local_target_group, p.promoted_state, &mut errors);
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("promote", errors, Rc::RunningPromoted)
    }

    /// Local group → `transitioning` → unpromoted, remote group → promoted.
    pub(super) fn groups_demote(&mut self) -> Rc {
        if let Err(e) = self.check_installed() {
            self.err(&e.to_string());
            return Rc::ErrInstalled;
        }
        match self.monitor() {
            Rc::Success => {
                self.info("demote: already unpromoted");
                return Rc::Success;
            }
            Rc::NotRunning => {
                self.err("demote: the resource is not running");
                return Rc::ErrGeneric;
            }
            _ => {}
        }
        let p = self.params.clone();
        let mut errors = Vec::new();
        if self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        self.set_group(&p.local_target_group, p.unpromoted_state, &mut errors);
        if let Some(r) = &p.remote_target_group {
            self.set_group(r, p.promoted_state, &mut errors);
        }
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("demote", errors, Rc::Success)
    }
}
