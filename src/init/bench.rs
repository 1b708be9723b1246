//! Bench mode, for `benches/scst-apply.sh` only: `sanforge.bench=scst-apply` on the
//! kernel command line (never set by a recipe or by default). After the boot the init
//! measures its own SCST apply against the floor, in the same VM:
//!
//! * apply: the boot's write loops, first write to last ([`ScstBoot::setup_time`] of
//!   the `scst` step plus [`ScstBoot::enable_time`] of `enable ports`; the steps
//!   between them are not counted);
//! * floor: the same (path, string) list, written to `/run/sanforge/scst-apply.writes`
//!   (mode 0600: it can hold CHAP secrets), replayed by busybox `echo` in a `sh` loop
//!   ([`REPLAY`]), after SCST was emptied by the init's own teardown (the writes
//!   `apply-scst --prune` makes for an empty scst.conf). Timed by the VM's clock around
//!   the shell, so the floor includes one busybox start (a millisecond).
//!
//! It then checks that the replay re-created every device and prints one line,
//! `bench scst-apply: writes=N apply_s=… floor_s=… ratio=… …`, which the bench reads
//! from the console. The record (`/run/sanforge/scst.applied`) is written back so the
//! node is as the boot left it.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::scst::{describe, lock, record_applied, run_writes, ScstBoot};
use super::Init;
use crate::contract::CMDLINE_BENCH;
use crate::scsi::scst::{self, ScstConf, SysfsWrite, SCST_SYSFS};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::time::Duration;

/// The bench this module runs.
pub const SCST_APPLY: &str = "scst-apply";
/// The (path, string) list the floor replays: one write a line, `PATH STRING`.
pub const WRITES: &str = "/run/sanforge/scst-apply.writes";
/// The replay script.
pub const SCRIPT: &str = "/run/sanforge/scst-apply.sh";
/// The floor: each line's string written by busybox's `echo` (a shell builtin, one
/// `write(2)`) to its path; prints the number of writes and of failed ones.
pub const REPLAY: &str = "n=0\nf=0\nwhile read -r p v; do\n  n=$((n + 1))\n  echo \"$v\" > \"$p\" || f=$((f + 1))\ndone < /run/sanforge/scst-apply.writes\necho \"$n $f\"\n";
/// How long the replay may take.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(900);

/// The bench the command line asks for (the last `sanforge.bench=` wins).
pub fn wanted(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(CMDLINE_BENCH))
        .next_back()
}

/// Runs the bench the command line names, if any, printing its result or why it
/// could not run. Never fails the node.
pub fn run(init: &mut Init) {
    let cmdline = init
        .sys
        .read_to_string(Path::new("/proc/cmdline"))
        .unwrap_or_default();
    match wanted(&cmdline) {
        None => {}
        Some(SCST_APPLY) => match scst_apply(init) {
            Ok(line) => init.log.line(&format!("bench {SCST_APPLY}: {line}")),
            Err(e) => init.log.line(&format!("bench {SCST_APPLY}: failed: {e:#}")),
        },
        Some(other) => init.log.line(&format!(
            "bench {other}: unknown ({CMDLINE_BENCH}{SCST_APPLY} is the only one)"
        )),
    }
}

/// How many of `conf`'s devices exist under SCST's sysfs.
fn devices_present(init: &mut Init, conf: &ScstConf) -> (usize, usize) {
    let mut present = 0;
    let mut total = 0;
    for h in &conf.handlers {
        for d in &h.devices {
            total += 1;
            let p = Path::new(SCST_SYSFS).join(format!("handlers/{}/{}", h.name, d.name));
            if init.sys.exists(&p) {
                present += 1;
            }
        }
    }
    (present, total)
}

/// The floor's input: `PATH STRING` a line, paths absolute.
pub fn writes_text(writes: &[SysfsWrite]) -> String {
    let mut out = String::new();
    for w in writes {
        out.push_str(&format!("{SCST_SYSFS}/{} {}\n", w.path, w.value));
    }
    out
}

/// Writes `text` to `path` under the root, readable by root only, atomically.
fn write_private(init: &mut Init, path: &str, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let p = init.sys.root().join(Path::new(path));
    let dir = crate::util::fs::parent_dir(&p);
    crate::util::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(&p)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {path}"))?;
    Ok(())
}

fn scst_apply(init: &mut Init) -> Result<String> {
    let Some(b): Option<ScstBoot> = init.scst.clone() else {
        bail!("no SCST configuration was applied at boot");
    };
    let Some(enable_time) = b.enable_time else {
        bail!("the target ports were not enabled at boot (degraded, or HA owns them)");
    };
    let writes: Vec<SysfsWrite> = b.setup.iter().chain(&b.enable).cloned().collect();
    let apply = b.setup_time + enable_time;
    write_private(init, WRITES, &writes_text(&writes))?;
    write_private(init, SCRIPT, REPLAY)?;

    // Empty SCST the way `apply-scst --prune` of an empty file would.
    let _lock = lock(init.sys)?;
    let teardown = scst::diff_plan(&b.conf, &ScstConf::default(), true);
    let t0 = init.sys.boottime();
    run_writes(init.sys, &teardown, false).map_err(|e| anyhow!("teardown: {}", describe(&e)))?;
    let teardown_time = init.sys.boottime().saturating_sub(t0);
    let (left, _) = devices_present(init, &b.conf);
    if left != 0 {
        bail!("the teardown left {left} devices");
    }

    let argv: Vec<String> = ["/bin/busybox", "sh", SCRIPT]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let f0 = init.sys.boottime();
    let out = init
        .sys
        .run_output(&argv, &[], REPLAY_TIMEOUT)
        .map_err(|e| anyhow!("the replay: {e}"))?;
    let floor = init.sys.boottime().saturating_sub(f0);
    if !out.status.success() {
        bail!(
            "the replay ({}) ended with {}: {}",
            SCRIPT,
            out.status,
            out.stderr.lines().next().unwrap_or_default()
        );
    }
    let counts: Vec<usize> = out
        .stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (replayed, failed) = match counts.as_slice() {
        [n, f] => (*n, *f),
        _ => bail!(
            "the replay printed '{}', expected 'WRITES FAILED'",
            out.stdout.trim()
        ),
    };
    let (present, total) = devices_present(init, &b.conf);
    if let Err(e) = record_applied(init.sys, &b.conf) {
        init.log.line(&format!("warning: {e:#}"));
    }
    let ratio = apply.as_secs_f64() / floor.as_secs_f64().max(1e-9);
    Ok(format!(
        "writes={} apply_s={:.3} setup_s={:.3} enable_s={:.3} floor_s={:.3} ratio={ratio:.3} replayed={replayed} failed={failed} devices={present}/{total} teardown_writes={} teardown_s={:.3}",
        writes.len(),
        apply.as_secs_f64(),
        b.setup_time.as_secs_f64(),
        enable_time.as_secs_f64(),
        floor.as_secs_f64(),
        teardown.len(),
        teardown_time.as_secs_f64(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_bench_word_wins() {
        assert_eq!(wanted("console=ttyS0 panic=-1"), None);
        assert_eq!(
            wanted("sanforge.bench=x console=ttyS0 sanforge.bench=scst-apply"),
            Some("scst-apply")
        );
    }

    #[test]
    fn the_floor_replays_absolute_paths_and_whole_strings() {
        let w = vec![
            SysfsWrite {
                path: "handlers/vdisk_nullio/mgmt".into(),
                value: "add_device null00000".into(),
            },
            SysfsWrite {
                path: "targets/iscsi/enabled".into(),
                value: "1".into(),
            },
        ];
        assert_eq!(
            writes_text(&w),
            "/sys/kernel/scst_tgt/handlers/vdisk_nullio/mgmt add_device null00000\n/sys/kernel/scst_tgt/targets/iscsi/enabled 1\n"
        );
    }
}
