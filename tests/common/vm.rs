//! Pieces of the QEMU tests: a guard that stops a VM `sanforge run --until-ready`
//! started (even when an assertion fails), a free loopback port for the iSCSI
//! forward, and the reader of libiscsi's CUnit summary.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `sanforge` run from the repository, with this build's init and plain progress.
pub fn sanforge_in_repo() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
    c.env("SANFORGE_PROGRESS", "plain");
    c
}

/// Status, stdout and stderr of a finished command, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Stops the VM of an output directory when dropped.
pub struct Vm(pub PathBuf);

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_sanforge"))
            .arg("run")
            .arg(&self.0)
            .arg("--stop")
            .output();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(13260)
}

/// Parses CUnit's "tests  N  N  N  F  I" summary line: (ran, passed, failed).
pub fn cunit_summary(text: &str) -> Option<(u32, u32, u32)> {
    let line = text.lines().find(|l| l.trim_start().starts_with("tests"))?;
    let n: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    (n.len() >= 4).then(|| (n[1], n[2], n[3]))
}
