//! [`apply`]: performing a plan's writes, polling queued work (`EAGAIN`).

use super::*;

/// Why an apply stopped: the write that failed, and the errno when there is one. The
/// kernel's own explanation is only in its log. The message shows the value with any
/// CHAP secret redacted (`value` keeps it).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "writing '{}' to {}/{path} failed: {detail} (see dmesg for the kernel's reason)",
    crate::util::redact::write_value(.path, .value),
    crate::scsi::scst::SCST_SYSFS
)]
pub struct ApplyError {
    /// Index of the failed write in the plan.
    pub index: usize,
    pub path: String,
    pub value: String,
    pub errno: Option<i32>,
    pub detail: String,
}

impl std::fmt::Debug for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyError")
            .field("index", &self.index)
            .field("path", &self.path)
            .field(
                "value",
                &crate::util::redact::write_value(&self.path, &self.value),
            )
            .field("errno", &self.errno)
            .field("detail", &self.detail)
            .finish()
    }
}

/// How long to wait for queued work after `EAGAIN` (scstadmin: 300 polls, 1 s apart).
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub max_polls: u32,
    pub poll_interval: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_polls: 300,
            poll_interval: Duration::from_secs(1),
        }
    }
}

fn is_eagain(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN) || e.kind() == io::ErrorKind::WouldBlock
}

fn describe(errno: i32) -> String {
    format!("{} (errno {errno})", io::Error::from_raw_os_error(errno))
}

/// Performs the writes in order through `write(path, value)` (paths relative to
/// `/sys/kernel/scst_tgt`; one call must be one `write(2)`), stopping at the first
/// failure. A write that fails with `EAGAIN` was queued, not refused: `read` is then
/// polled on `last_sysfs_mgmt_res` until the work finishes (its result decides), up to
/// the default bound of [`ApplyOptions`]. Because `enabled` writes come last in a plan,
/// stopping early leaves the target ports disabled.
pub fn apply(
    plan: &[SysfsWrite],
    write: &mut dyn FnMut(&str, &str) -> io::Result<()>,
    read: &mut dyn FnMut(&str) -> io::Result<String>,
) -> Result<(), ApplyError> {
    apply_with(plan, write, read, &ApplyOptions::default())
}

/// [`apply`] with explicit polling bounds.
pub fn apply_with(
    plan: &[SysfsWrite],
    write: &mut dyn FnMut(&str, &str) -> io::Result<()>,
    read: &mut dyn FnMut(&str) -> io::Result<String>,
    opts: &ApplyOptions,
) -> Result<(), ApplyError> {
    for (index, w) in plan.iter().enumerate() {
        let fail = |errno: Option<i32>, detail: String| ApplyError {
            index,
            path: w.path.clone(),
            value: w.value.clone(),
            errno,
            detail,
        };
        match write(&w.path, &w.value) {
            Ok(()) => continue,
            Err(e) if is_eagain(&e) => {}
            Err(e) => return Err(fail(e.raw_os_error(), e.to_string())),
        }
        let mut done = false;
        for poll in 0..opts.max_polls {
            if poll > 0 && !opts.poll_interval.is_zero() {
                std::thread::sleep(opts.poll_interval);
            }
            match read("last_sysfs_mgmt_res") {
                Err(e) if is_eagain(&e) => continue,
                Err(e) => {
                    return Err(fail(
                        e.raw_os_error(),
                        format!("cannot read last_sysfs_mgmt_res after EAGAIN: {e}"),
                    ))
                }
                Ok(s) => match s.trim().parse::<i32>() {
                    Ok(0) => {
                        done = true;
                        break;
                    }
                    Ok(n) => return Err(fail(Some(n.abs()), describe(n.abs()))),
                    Err(_) => {
                        return Err(fail(
                            None,
                            format!("unexpected last_sysfs_mgmt_res '{}'", s.trim()),
                        ))
                    }
                },
            }
        }
        if !done {
            return Err(fail(
                Some(libc::EAGAIN),
                format!(
                    "still in progress after {} polls of last_sysfs_mgmt_res",
                    opts.max_polls
                ),
            ));
        }
    }
    Ok(())
}
