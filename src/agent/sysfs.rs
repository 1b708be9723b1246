//! Where the agent's files are and how it touches them: the SCST sysfs and LIO
//! configfs paths the [`Params`] name, and the [`Agent`]'s attribute reads and writes,
//! all through its [`Sys`](crate::sys::Sys). A write is one `write(2)` of the whole
//! value on a fresh open that never creates the file; SCST's EAGAIN ("queued") is
//! followed by polling `last_sysfs_mgmt_res`, EINTR and EBUSY are retried until the
//! action's deadline. Reads the state files, port `enabled`/`enable` files and
//! `last_sysfs_mgmt_res`.

use super::error::Error;
use super::params::Params;
use super::state::{AluaState, Ports, Stack};
use super::{Actions, Agent, Rc};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the agent waits between two tries of a busy attribute.
const RETRY: Duration = Duration::from_secs(1);

impl Params {
    /// `kernel/scst_tgt` or `kernel/config/target` under `sysfs_root`.
    pub(super) fn stack_root(&self) -> PathBuf {
        match self.stack {
            Stack::Scst => self.sysfs_root.join("kernel/scst_tgt"),
            Stack::Lio => self.sysfs_root.join("kernel/config/target"),
        }
    }

    /// The state files of target group `tg` (one for SCST, one per backstore for LIO).
    pub fn state_files(&self, tg: &str) -> Vec<PathBuf> {
        let root = self.stack_root();
        match self.stack {
            Stack::Scst => {
                let dg = self.device_group.as_deref().unwrap_or_default();
                vec![root
                    .join("device_groups")
                    .join(dg)
                    .join("target_groups")
                    .join(tg)
                    .join("state")]
            }
            Stack::Lio => self
                .lio_devices
                .iter()
                .map(|d| {
                    root.join("core")
                        .join(d)
                        .join("alua")
                        .join(tg)
                        .join("alua_access_state")
                })
                .collect(),
        }
    }

    /// The `enabled` (SCST) or `enable` (LIO) file of every port.
    pub fn port_files(&self) -> Vec<PathBuf> {
        let root = self.stack_root();
        self.ports
            .iter()
            .map(|p| match self.stack {
                Stack::Scst => root.join("targets").join(p).join("enabled"),
                Stack::Lio => root.join(p).join("enable"),
            })
            .collect()
    }

    /// Everything validate-all requires to exist, with what it stands for.
    fn required_paths(&self) -> Vec<(PathBuf, String)> {
        let root = self.stack_root();
        let mut out = vec![(
            root.clone(),
            format!("{} tree (is the module loaded?)", self.stack.name()),
        )];
        if let (Stack::Scst, Some(dg)) = (self.stack, &self.device_group) {
            out.push((
                root.join("device_groups").join(dg),
                format!("device group {dg}"),
            ));
        }
        let ports = self.port_files().into_iter().zip(&self.ports);
        if self.manages_luns() {
            out.push((root.join("core"), "LIO core (target_core_mod)".into()));
            out.extend(ports.map(|(f, p)| (f, format!("port {p}"))));
            return out;
        }
        if self.stack == Stack::Lio {
            for d in &self.lio_devices {
                out.push((root.join("core").join(d), format!("backstore {d}")));
            }
        }
        let mut tgs = vec![self.local_target_group.as_str()];
        tgs.extend(self.remote_target_group.as_deref());
        for tg in tgs {
            for f in self.state_files(tg) {
                out.push((f, format!("target group {tg}")));
            }
        }
        out.extend(ports.map(|(f, p)| (f, format!("port {p}"))));
        out
    }
}

impl Agent<'_> {
    /// True while the action's time budget lasts (wall clock and time spent waiting).
    fn time_left(&self) -> bool {
        !self.budget.left().is_zero()
    }

    /// Waits before the next try of a busy attribute.
    fn pause(&mut self) {
        self.budget.sleep(&mut *self.sys, RETRY);
    }

    /// One sysfs attribute's first line, trimmed (SCST adds `[key]` as a second line).
    pub(super) fn read_attr(&mut self, path: &Path) -> io::Result<String> {
        let bytes = self.sys.read_head(path, 4096).map_err(|e| e.err)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        })?;
        Ok(text.lines().next().unwrap_or("").trim().to_string())
    }

    /// Ok when every required file exists, else the first missing one (exit code 5).
    pub fn check_installed(&mut self) -> Result<(), Error> {
        for (path, what) in self.params.required_paths() {
            if !self.sys.exists(&path) {
                return Err(Error::Missing { what, path });
            }
        }
        Ok(())
    }

    /// The states in `files`; `None` for a file that does not exist.
    pub(super) fn read_states(
        &mut self,
        files: &[PathBuf],
    ) -> Result<Vec<Option<AluaState>>, Error> {
        let stack = self.params.stack;
        files
            .iter()
            .map(|f| match self.read_attr(f) {
                Ok(v) => match AluaState::decode(stack, &v) {
                    Some(s) => Ok(Some(s)),
                    None => Err(Error::Value {
                        path: f.clone(),
                        value: v,
                        expected: "not an ALUA state",
                    }),
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(Error::Read {
                    path: f.clone(),
                    err,
                }),
            })
            .collect()
    }

    pub(super) fn read_ports(&mut self) -> Result<Ports, Error> {
        let files = self.params.port_files();
        if files.is_empty() {
            return Ok(Ports::Unmanaged);
        }
        let mut on = 0;
        for f in &files {
            match self.read_attr(f) {
                Ok(v) if v == "1" => on += 1,
                Ok(v) if v == "0" => {}
                Ok(value) => {
                    return Err(Error::Value {
                        path: f.clone(),
                        value,
                        expected: "expected 0 or 1",
                    })
                }
                // A port that does not exist serves nothing: count it as disabled.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(Error::Read {
                        path: f.clone(),
                        err,
                    })
                }
            }
        }
        Ok(match on {
            0 => Ports::AllDisabled,
            n if n == files.len() => Ports::AllEnabled,
            _ => Ports::Mixed,
        })
    }

    /// Writes `value` to the attribute `path` (see the module doc for retries).
    pub(super) fn write_attr(&mut self, path: &Path, value: &str) -> Result<(), Error> {
        let shown = value.trim_end();
        loop {
            self.debug(&format!("write '{shown}' to {}", path.display()));
            let err = match self.sys.write_file(path, value) {
                Ok(()) => return Ok(()),
                Err(e) => e.err,
            };
            let errno = err.raw_os_error();
            if self.params.stack == Stack::Scst && errno == Some(libc::EAGAIN) {
                return self.wait_scst_mgmt(path, shown);
            }
            if matches!(errno, Some(libc::EINTR | libc::EBUSY)) && self.time_left() {
                self.warn(&format!(
                    "cannot write '{shown}' to {}: {err}; retrying",
                    path.display()
                ));
                self.pause();
                continue;
            }
            return Err(Error::Write {
                path: path.to_path_buf(),
                value: shown.to_string(),
                err,
            });
        }
    }

    /// After EAGAIN, SCST finishes the work in the background; its result shows in
    /// `last_sysfs_mgmt_res` (readable once no work is queued) as 0 or -errno.
    fn wait_scst_mgmt(&mut self, path: &Path, shown: &str) -> Result<(), Error> {
        let result = self.params.stack_root().join("last_sysfs_mgmt_res");
        self.info(&format!(
            "{} is still being applied; polling {}",
            path.display(),
            result.display()
        ));
        loop {
            match self.read_attr(&result) {
                Ok(v) => {
                    return match v.parse::<i32>() {
                        Ok(0) => Ok(()),
                        Ok(n) => Err(Error::Deferred {
                            path: path.to_path_buf(),
                            value: shown.to_string(),
                            err: io::Error::from_raw_os_error(n.saturating_neg()),
                            result,
                        }),
                        Err(_) => Err(Error::Value {
                            path: result,
                            value: v,
                            expected: "not a result code",
                        }),
                    };
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) && self.time_left() => {
                    self.pause();
                }
                Err(err) => return Err(Error::Read { path: result, err }),
            }
        }
    }

    /// Sets every state file of group `tg` to `state`, skipping those already there
    /// (each write raises a unit attention on every initiator).
    pub(super) fn set_group(&mut self, tg: &str, state: AluaState, errors: &mut Vec<Error>) {
        let stack = self.params.stack;
        for f in self.params.state_files(tg) {
            let cur = self
                .read_attr(&f)
                .ok()
                .and_then(|v| AluaState::decode(stack, &v));
            if cur == Some(state) {
                continue;
            }
            match self.write_attr(&f, &state.encode(stack)) {
                Ok(()) => self.info(&format!("target group {tg}: {state} ({})", f.display())),
                Err(e) => errors.push(e),
            }
        }
    }

    /// Enables (or disables) every port not already so.
    pub(super) fn set_ports(&mut self, on: bool, errors: &mut Vec<Error>) {
        for f in self.params.port_files() {
            self.set_port(&f, on, errors);
        }
    }

    /// Enables (or disables) the port whose `enabled`/`enable` file is `f`, unless it
    /// already is.
    pub(super) fn set_port(&mut self, f: &Path, on: bool, errors: &mut Vec<Error>) {
        let want = if on { "1" } else { "0" };
        if self.read_attr(f).is_ok_and(|v| v == want) {
            return;
        }
        match self.write_attr(f, &format!("{want}\n")) {
            Ok(()) => self.info(&format!(
                "{} {}",
                if on { "enabled" } else { "disabled" },
                f.display()
            )),
            Err(e) => errors.push(e),
        }
    }

    /// True when some device of the local group shows the promoted state, or when
    /// that cannot be read (then the careful path, through `transitioning`, is taken).
    pub(super) fn local_is_promoted(&mut self) -> bool {
        let files = self.params.state_files(&self.params.local_target_group);
        let promoted = self.params.promoted_state;
        self.read_states(&files)
            .map(|v| v.contains(&Some(promoted)))
            .unwrap_or(true)
    }

    /// Logs the errors and returns 1, or checks that monitor now says `want`.
    pub(super) fn finish(&mut self, action: &str, errors: Vec<Error>, want: Rc) -> Rc {
        if !errors.is_empty() {
            for e in &errors {
                self.err(&e.to_string());
            }
            self.err(&format!("{action} failed"));
            return Rc::ErrGeneric;
        }
        let rc = self.monitor();
        if rc != want {
            self.err(&format!(
                "{action} failed: monitor says {} instead of {}",
                rc.code(),
                want.code()
            ));
            return Rc::ErrGeneric;
        }
        self.info(&format!("{action}: done"));
        Rc::Success
    }

    /// What promote answers before doing anything: not installed, already promoted
    /// (success), or not started; None when it should go ahead.
    pub(super) fn promote_precheck(&mut self, monitor: fn(&mut Self) -> Rc) -> Option<Rc> {
        if let Err(e) = self.check_installed() {
            self.err(&e.to_string());
            return Some(Rc::ErrInstalled);
        }
        match monitor(self) {
            Rc::RunningPromoted => {
                self.info("promote: already promoted");
                Some(Rc::Success)
            }
            Rc::NotRunning => {
                self.err("promote: the resource is not running (start it first)");
                Some(Rc::ErrGeneric)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::super::params::sample_params;
    use super::*;

    #[test]
    fn paths() {
        let p = sample_params("scst");
        assert_eq!(
            p.state_files("a"),
            [PathBuf::from(
                "/sys/kernel/scst_tgt/device_groups/dg1/target_groups/a/state"
            )]
        );
        assert_eq!(
            p.port_files(),
            [PathBuf::from(
                "/sys/kernel/scst_tgt/targets/iscsi/iqn.x/enabled"
            )]
        );
        let l = sample_params("lio");
        assert_eq!(
            l.state_files("a")[1],
            PathBuf::from("/sys/kernel/config/target/core/iblock_0/d2/alua/a/alua_access_state")
        );
        assert_eq!(
            l.port_files(),
            [PathBuf::from(
                "/sys/kernel/config/target/iscsi/iqn.x/tpgt_1/enable"
            )]
        );
    }
}
