//! The SCSI target steps: the LIO plan applied to configfs, the target ports enabled.

use super::Init;
use super::{ha, scst, secrets, storage};
use crate::scsi::lio::{self, ConfigfsOp, CONFIGFS_TARGET};
use anyhow::{bail, Result};
use std::path::Path;

/// Runs configfs ops; on the first error logs path, value and errno and returns it.
pub(super) fn run_configfs(init: &mut Init, ops: &[ConfigfsOp], what: &str) -> Option<String> {
    let base = Path::new(CONFIGFS_TARGET);
    for op in ops {
        let r = match op {
            ConfigfsOp::Mkdir(p) => init.sys.mkdir(&base.join(p)),
            ConfigfsOp::Write(p, v) => init.sys.write_file(&base.join(p), v),
            ConfigfsOp::Symlink { target, link } => {
                init.sys.symlink(&base.join(target), &base.join(link))
            }
        };
        if let Err(e) = r {
            let value = match op {
                ConfigfsOp::Write(p, v) => {
                    format!(" (value {:?})", crate::util::redact::write_value(p, v))
                }
                _ => String::new(),
            };
            let errno = e
                .errno()
                .map(|n| format!(", errno {n}"))
                .unwrap_or_default();
            init.warn(format!("configfs {what}: {e}{value}{errno}"));
            return Some(format!("{} failed", op_path(op)));
        }
    }
    None
}

pub(super) fn op_path(op: &ConfigfsOp) -> String {
    match op {
        ConfigfsOp::Mkdir(p) | ConfigfsOp::Write(p, _) | ConfigfsOp::Symlink { link: p, .. } => {
            format!("{CONFIGFS_TARGET}/{p}")
        }
    }
}

/// Step 5: LIO targets with every TPG disabled. A backstore whose device is absent
/// is left out with its LUNs (see [`storage`]); the persistent reservations and ALUA
/// state of the others are restored between the backstores and the LUNs. On error the
/// disable ops run and the ports stay disabled (degraded targets); the node stays up.
pub fn apply_targets(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let Some(l) = &node.lio else { return Ok(()) };
    let l = match secrets::resolve_lio(init.sys, l) {
        Ok(l) => l,
        Err(e) => {
            init.targets_ok = false;
            return Err(e.context("iSCSI targets not configured, ports stay disabled"));
        }
    };
    for dir in lio::DBROOT_DIRS {
        if let Err(e) = init.sys.mkdir(Path::new(dir)) {
            init.warn(format!("{e}: persistent reservations with APTPL will fail"));
        }
    }
    let absent: std::collections::BTreeSet<String> = storage::absent_lio(init.sys, &l)
        .into_iter()
        .map(|a| {
            init.log.line(&format!(
                "backstore `{}` not created: {} is not present",
                a.backstore, a.path
            ));
            a.backstore
        })
        .collect();
    for t in &l.iscsi {
        let served: Vec<String> = t
            .luns
            .iter()
            .filter(|x| !absent.contains(&x.backstore))
            .map(|x| x.lun.to_string())
            .collect();
        if served.len() < t.luns.len() {
            init.warn(format!(
                "target {} tpg {}: {} of {} LUNs served{}",
                t.iqn,
                t.tpg,
                served.len(),
                t.luns.len(),
                if served.is_empty() {
                    " (the target is up with no LUN)".to_string()
                } else {
                    format!(" ({})", served.join(", "))
                }
            ));
        }
    }
    let plan = lio::plan_without(&l, &absent);
    init.lio = Some(plan.clone());
    // The backstores, then what the kernel does not restore itself, then the rest.
    let split = plan
        .setup
        .iter()
        .position(|o| !op_path(o).starts_with(&format!("{CONFIGFS_TARGET}/core/")))
        .unwrap_or(plan.setup.len());
    let (core, rest) = plan.setup.split_at(split);
    let mut failed = run_configfs(init, core, "setup");
    if failed.is_none() {
        storage::restore_lio_state(init, &l, &absent);
        failed = run_configfs(init, rest, "setup");
    }
    if let Some(msg) = failed {
        init.targets_ok = false;
        let _ = run_configfs(init, &plan.disable, "disable");
        bail!("setup failed ({msg}): ports stay disabled");
    }
    init.log.line(&format!(
        "{} iSCSI targets configured (ports disabled)",
        l.iscsi.len()
    ));
    Ok(())
}

/// Step 7: enable the target ports (`tpgt_N/enable` ← 1).
pub fn enable_ports(init: &mut Init) -> Result<()> {
    scst::enable_ports(init)?;
    let Some(plan) = init.lio.clone() else {
        return Ok(());
    };
    if !init.targets_ok {
        bail!("target setup failed: ports stay disabled");
    }
    if ha::owns_ports(init) {
        return Ok(());
    }
    if let Some(msg) = run_configfs(init, &plan.enable, "enable") {
        init.targets_ok = false;
        let _ = run_configfs(init, &plan.disable, "disable");
        bail!("enabling failed ({msg}): ports disabled again");
    }
    if !plan.enable.is_empty() {
        init.log.line("target ports enabled");
    }
    Ok(())
}
