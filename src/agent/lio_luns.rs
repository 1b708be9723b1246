//! The actions for LIO with `lio_luns`: the LUNs exist on the promoted node only,
//! because a single-primary DRBD Secondary cannot be opened by an iblock backstore.
//! Promote makes, per LUN, `core/iblock_LUN/NAME` (control, unit serial, enable; its
//! `default_tg_pt_gp` transitioning), `lun/lun_LUN` in every TPG of `ports` and the
//! mapped `lun_LUN` in every ACL of those TPGs, then sets the promoted state; demote
//! and stop remove them in reverse order. Each configfs change is one mkdir, symlink,
//! unlink, rmdir or write through the agent's [`Sys`](crate::sys::Sys), idempotent,
//! and its error names the path and errno. Reads the configfs tree under
//! `kernel/config/target`.

use super::error::Error;
use super::params::{lio_unit_serial, LioLun};
use super::state::{classify_luns, AluaState, LunPresence, Ports, Stack};
use super::{Agent, Rc};
use crate::sys::FileKind;
use std::io;
use std::path::{Path, PathBuf};

/// What monitor reads with `lio_luns`.
struct SeenLuns {
    /// Each LUN's presence, in `lio_luns` order.
    luns: Vec<LunPresence>,
    /// The local group's state per LUN, `None` for a backstore not enabled.
    states: Vec<Option<AluaState>>,
    ports: Ports,
}

impl Agent<'_> {
    fn is_dir(&mut self, p: &Path) -> bool {
        self.sys.file_kind(p) == Some(FileKind::Dir)
    }

    fn is_link(&mut self, p: &Path) -> bool {
        self.sys.file_kind(p) == Some(FileKind::Symlink)
    }

    /// A directory's subdirectory names, sorted (none when it does not exist).
    pub(super) fn subdirs(&mut self, dir: &Path) -> Result<Vec<String>, Error> {
        let names = match self.sys.list_dir(dir) {
            Ok(n) => n,
            Err(e) if e.err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::List {
                    path: dir.to_path_buf(),
                    err: e.err,
                })
            }
        };
        Ok(names
            .into_iter()
            .filter(|n| self.is_dir(&dir.join(n)))
            .collect())
    }

    /// `(core/iblock_LUN, core/iblock_LUN/NAME)`.
    fn lun_paths(&self, l: &LioLun) -> (PathBuf, PathBuf) {
        let hba = self
            .params
            .stack_root()
            .join("core")
            .join(format!("iblock_{}", l.lun));
        let bs = hba.join(&l.name);
        (hba, bs)
    }

    /// `(tpg dir, [acl names])` for every port.
    fn tpgs(&mut self) -> Result<Vec<(PathBuf, Vec<String>)>, Error> {
        let root = self.params.stack_root();
        let ports = self.params.ports.clone();
        ports
            .iter()
            .map(|p| {
                let tpg = root.join(p);
                let acls = self.subdirs(&tpg.join("acls"))?;
                Ok((tpg, acls))
            })
            .collect()
    }

    fn lun_presence(&mut self, l: &LioLun) -> Result<LunPresence, Error> {
        let (_, bs) = self.lun_paths(l);
        let mut parts = Vec::new();
        let bs_there = self.is_dir(&bs);
        parts.push(bs_there);
        if bs_there {
            parts.push(self.read_attr(&bs.join("enable")).is_ok_and(|v| v == "1"));
        }
        for (tpg, acls) in self.tpgs()? {
            let lun_dir = tpg.join("lun").join(format!("lun_{}", l.lun));
            parts.push(self.is_dir(&lun_dir));
            parts.push(self.is_link(&lun_dir.join(&l.name)));
            for a in acls {
                let m = tpg.join("acls").join(a).join(format!("lun_{}", l.lun));
                parts.push(self.is_dir(&m));
                parts.push(self.is_link(&m.join("lun")));
            }
        }
        Ok(if parts.iter().all(|x| *x) {
            LunPresence::Complete
        } else if parts.iter().any(|x| *x) {
            LunPresence::Partial
        } else {
            LunPresence::Absent
        })
    }

    fn observe_luns(&mut self) -> Result<SeenLuns, Error> {
        let luns = self.params.lio_luns.clone();
        let presence = luns
            .iter()
            .map(|l| self.lun_presence(l))
            .collect::<Result<Vec<_>, _>>()?;
        let files = self.params.state_files(&self.params.local_target_group);
        let mut states = Vec::new();
        // The state of a backstore that is not enabled means nothing (the kernel
        // starts every device active/optimized).
        for (st, l) in self.read_states(&files)?.into_iter().zip(&luns) {
            let enable = self.lun_paths(l).1.join("enable");
            let enabled = self.read_attr(&enable).is_ok_and(|v| v == "1");
            states.push(st.filter(|_| enabled));
        }
        Ok(SeenLuns {
            luns: presence,
            states,
            ports: self.read_ports()?,
        })
    }

    pub(super) fn luns_monitor(&mut self) -> Rc {
        let root = self.params.stack_root();
        if !self.sys.exists(&root) {
            return Rc::NotRunning;
        }
        match self.observe_luns() {
            Ok(seen) => {
                let (rc, why) = classify_luns(&self.params, &seen.luns, &seen.states, seen.ports);
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

    /// mkdir (a no-op on a directory that exists; configfs then fills it).
    fn cfs_mkdir(&mut self, dir: &Path) -> Result<(), Error> {
        let existed = self.is_dir(dir);
        self.sys.mkdir(dir).map_err(|e| Error::Mkdir {
            path: dir.to_path_buf(),
            err: e.err,
        })?;
        if !existed {
            self.info(&format!("created {}", dir.display()));
        }
        Ok(())
    }

    /// `link` → `target`; a link already there must lead to `target`.
    fn cfs_symlink(&mut self, target: &Path, link: &Path) -> Result<(), Error> {
        if self.is_link(link) {
            // configfs shows its links as relative paths: compare where they lead.
            let to = self
                .sys
                .canonicalize(link)
                .map_err(|e| Error::ResolveLink {
                    path: link.to_path_buf(),
                    err: e.err,
                })?;
            let want = self.sys.canonicalize(target).map_err(|e| Error::Resolve {
                path: target.to_path_buf(),
                err: e.err,
            })?;
            if to != want {
                return Err(Error::WrongLink {
                    link: link.to_path_buf(),
                    to,
                    want,
                });
            }
            return Ok(());
        }
        self.sys.symlink(target, link).map_err(|e| Error::Symlink {
            link: link.to_path_buf(),
            target: target.to_path_buf(),
            err: e.err,
        })?;
        self.info(&format!(
            "linked {} -> {}",
            link.display(),
            target.display()
        ));
        Ok(())
    }

    fn cfs_unlink(&mut self, link: &Path) -> Result<(), Error> {
        if !self.is_link(link) {
            return Ok(());
        }
        self.sys.remove_file(link).map_err(|e| Error::Unlink {
            path: link.to_path_buf(),
            err: e.err,
        })?;
        self.info(&format!("unlinked {}", link.display()));
        Ok(())
    }

    fn cfs_rmdir(&mut self, dir: &Path) -> Result<(), Error> {
        if !self.is_dir(dir) {
            return Ok(());
        }
        match self.sys.remove_dir(dir) {
            Ok(()) => {
                self.info(&format!("removed {}", dir.display()));
                Ok(())
            }
            Err(e) if e.err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Rmdir {
                path: dir.to_path_buf(),
                err: e.err,
            }),
        }
    }

    /// Writes `transitioning` to a LIO state file, logging instead of failing: what
    /// follows (mapping or removing the LUN) matters more than the state.
    fn mark_transitioning(&mut self, state: &Path) {
        let tg = self.params.local_target_group.clone();
        match self.write_attr(state, &AluaState::Transitioning.encode(Stack::Lio)) {
            Ok(()) => self.info(&format!(
                "target group {tg}: {} ({})",
                AluaState::Transitioning,
                state.display()
            )),
            Err(e) => self.warn(&e.to_string()),
        }
    }

    /// The iblock backstore of `l`, enabled (opens the device: fails on a DRBD
    /// Secondary with the errno the kernel gives).
    fn create_backstore(&mut self, l: &LioLun) -> Result<(), Error> {
        let (hba, bs) = self.lun_paths(l);
        self.cfs_mkdir(&hba)?;
        self.cfs_mkdir(&bs)?;
        if self.read_attr(&bs.join("enable")).is_ok_and(|v| v == "1") {
            return Ok(());
        }
        self.write_attr(&bs.join("control"), &format!("udev_path={}", l.device))?;
        let serial = lio_unit_serial(&self.params.cluster_name, &l.name);
        self.write_attr(&bs.join("wwn/vpd_unit_serial"), &serial)?;
        self.write_attr(&bs.join("enable"), "1")?;
        self.info(&format!(
            "backstore {} on {} enabled",
            bs.display(),
            l.device
        ));
        // A new device starts active/optimized; until its LUNs are mapped it is
        // `transitioning`, so an interrupted promote never looks promoted. Not fatal:
        // the LUN is served either way once mapped.
        let state = bs
            .join("alua")
            .join(&self.params.local_target_group)
            .join("alua_access_state");
        self.mark_transitioning(&state);
        Ok(())
    }

    /// LUN `l.lun` in every TPG and the mapped LUN in every ACL of those TPGs.
    fn map_lun(&mut self, l: &LioLun) -> Result<(), Error> {
        let (_, bs) = self.lun_paths(l);
        for (tpg, acls) in self.tpgs()? {
            let lun_dir = tpg.join("lun").join(format!("lun_{}", l.lun));
            self.cfs_mkdir(&lun_dir)?;
            self.cfs_symlink(&bs, &lun_dir.join(&l.name))?;
            for a in acls {
                let m = tpg.join("acls").join(a).join(format!("lun_{}", l.lun));
                self.cfs_mkdir(&m)?;
                self.cfs_symlink(&lun_dir, &m.join("lun"))?;
            }
        }
        Ok(())
    }

    /// Removes every managed LUN in reverse order of creation: the local group to
    /// `transitioning` first (initiators retry), then mapped LUNs, LUNs, backstores.
    fn remove_luns(&mut self, errors: &mut Vec<Error>) {
        let files = self.params.state_files(&self.params.local_target_group);
        for f in files {
            let cur = self
                .read_attr(&f)
                .ok()
                .and_then(|v| AluaState::from_lio(&v));
            if cur.is_some_and(|s| s != AluaState::Transitioning) {
                self.mark_transitioning(&f);
            }
        }
        let tpgs = self.tpgs().unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let luns = self.params.lio_luns.clone();
        for l in &luns {
            for (tpg, acls) in &tpgs {
                for a in acls {
                    let m = tpg.join("acls").join(a).join(format!("lun_{}", l.lun));
                    if let Err(e) = self
                        .cfs_unlink(&m.join("lun"))
                        .and_then(|()| self.cfs_rmdir(&m))
                    {
                        errors.push(e);
                    }
                }
            }
        }
        for l in &luns {
            for (tpg, _) in &tpgs {
                let lun_dir = tpg.join("lun").join(format!("lun_{}", l.lun));
                if let Err(e) = self
                    .cfs_unlink(&lun_dir.join(&l.name))
                    .and_then(|()| self.cfs_rmdir(&lun_dir))
                {
                    errors.push(e);
                }
            }
        }
        for l in &luns {
            let (hba, bs) = self.lun_paths(l);
            if let Err(e) = self.cfs_rmdir(&bs).and_then(|()| self.cfs_rmdir(&hba)) {
                errors.push(e);
            }
        }
    }

    /// No LUNs, ports enabled.
    pub(super) fn luns_start(&mut self) -> Rc {
        if let Err(e) = self.check_installed() {
            self.err(&e.to_string());
            return Rc::ErrInstalled;
        }
        if self.luns_monitor() == Rc::Success {
            self.info("start: already running unpromoted");
            return Rc::Success;
        }
        let mut errors = Vec::new();
        self.remove_luns(&mut errors);
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("start", errors, Rc::Success)
    }

    /// No LUNs, ports disabled; 1 (fence) when a LUN cannot be removed.
    pub(super) fn luns_stop(&mut self) -> Rc {
        let root = self.params.stack_root();
        if !self.sys.exists(&root) {
            self.info("stop: nothing to stop (no LIO tree)");
            return Rc::Success;
        }
        if let Err(e) = self.check_installed() {
            if self.luns_monitor() == Rc::NotRunning {
                self.info(&format!("stop: nothing to stop ({e})"));
                return Rc::Success;
            }
        }
        let mut errors = Vec::new();
        self.remove_luns(&mut errors);
        // Disable the ports even when a LUN could not be removed: fewer paths left.
        self.set_ports(false, &mut errors);
        let rc = self.finish("stop", errors, Rc::NotRunning);
        if rc != Rc::Success {
            self.err("stop did not complete: Pacemaker will fence this node");
        }
        rc
    }

    /// Backstores, LUNs and mapped LUNs, then the promoted state.
    pub(super) fn luns_promote(&mut self) -> Rc {
        if let Some(rc) = self.promote_precheck(Self::luns_monitor) {
            return rc;
        }
        let luns = self.params.lio_luns.clone();
        let mut errors = Vec::new();
        if let Err(e) = luns.iter().try_for_each(|l| self.create_backstore(l)) {
            errors.push(e);
        }
        if errors.is_empty() {
            if let Err(e) = luns.iter().try_for_each(|l| self.map_lun(l)) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            let p = self.params.clone();
            self.set_group(&p.local_target_group, p.promoted_state, &mut errors);
        }
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("promote", errors, Rc::RunningPromoted)
    }

    /// Every LUN removed, ports kept enabled.
    pub(super) fn luns_demote(&mut self) -> Rc {
        if let Err(e) = self.check_installed() {
            self.err(&e.to_string());
            return Rc::ErrInstalled;
        }
        match self.luns_monitor() {
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
        let mut errors = Vec::new();
        self.remove_luns(&mut errors);
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("demote", errors, Rc::Success)
    }
}
