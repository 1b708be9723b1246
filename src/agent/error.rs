//! What can go wrong while the agent reads and changes sysfs and configfs: every error
//! names the path, the value when one was written, and the OS error (with its errno),
//! because the log line is all an operator gets from a failed Pacemaker action. The
//! OS error is part of the message, not a source, so one line says it all.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What validate-all requires is absent (exit code 5).
    #[error("{what} not found: {} does not exist", path.display())]
    Missing { what: String, path: PathBuf },
    #[error("cannot read {}: {err}", path.display())]
    Read { path: PathBuf, err: io::Error },
    /// A file holds something else than its kind of value (`expected` says which).
    #[error("{} holds '{value}', {expected}", path.display())]
    Value {
        path: PathBuf,
        value: String,
        expected: &'static str,
    },
    #[error("cannot write '{value}' to {}: {err}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        err: io::Error,
    },
    /// SCST accepted a write (EAGAIN) and reported its failure later in `result`.
    #[error(
        "cannot write '{value}' to {}: {err} (from {}; see dmesg)",
        path.display(),
        result.display()
    )]
    Deferred {
        path: PathBuf,
        value: String,
        err: io::Error,
        result: PathBuf,
    },
    #[error("cannot list {}: {err}", path.display())]
    List { path: PathBuf, err: io::Error },
    #[error("cannot mkdir {}: {err}", path.display())]
    Mkdir { path: PathBuf, err: io::Error },
    #[error("cannot resolve the link {}: {err}", path.display())]
    ResolveLink { path: PathBuf, err: io::Error },
    #[error("cannot resolve {}: {err}", path.display())]
    Resolve { path: PathBuf, err: io::Error },
    /// A link the agent would make exists but leads elsewhere.
    #[error("{} leads to {}, not {}", link.display(), to.display(), want.display())]
    WrongLink {
        link: PathBuf,
        to: PathBuf,
        want: PathBuf,
    },
    #[error("cannot symlink {} -> {}: {err}", link.display(), target.display())]
    Symlink {
        link: PathBuf,
        target: PathBuf,
        err: io::Error,
    },
    #[error("cannot unlink {}: {err}", path.display())]
    Unlink { path: PathBuf, err: io::Error },
    #[error("cannot rmdir {}: {err}", path.display())]
    Rmdir { path: PathBuf, err: io::Error },
}
