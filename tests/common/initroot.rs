//! Running the built `sanforge-init --root DIR STEP` against a fake tree: its console
//! lines and its recorded syscalls, split.

use std::path::Path;
use std::process::Command;

pub struct Run {
    pub code: i32,
    /// Console lines (prefix `sanforge-init: ` removed).
    pub log: Vec<String>,
    /// Recorded ops, in order.
    pub ops: Vec<String>,
    pub stderr: String,
}

/// Runs with `--show-secrets`: the ops exactly as performed.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, &["--show-secrets"], args)
}

/// Runs as an operator would, CHAP secrets printed as `<redacted>`.
pub fn run_redacted(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, &[], args)
}

fn run_with(dir: &Path, flags: &[&str], args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .arg("--root")
        .arg(dir)
        .args(flags)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (mut log, mut ops) = (Vec::new(), Vec::new());
    for l in stdout.lines() {
        match l.strip_prefix("sanforge-init: ") {
            Some(m) => log.push(m.to_string()),
            None => ops.push(l.to_string()),
        }
    }
    Run {
        code: out.status.code().unwrap_or(-1),
        log,
        ops,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `text` at `dir/rel`, creating the directories.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}
