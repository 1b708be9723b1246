//! md arrays: `mdadm --assemble` of each `[[storage.md]]` (or `--scan`), and what
//! `/sys/block/mdX/md/` says about each array.

use super::{expand, run_tool, wait_for_devices, MdReport, MDADM_TIMEOUT};
use crate::config::storage::{is_pattern, Assemble, MdArray, Storage};
use crate::contract::{MDADM, MDADM_CONF};
use crate::init::Init;
use crate::sys::Sys;
use std::path::{Path, PathBuf};

/// The md arrays, listed or scanned.
pub(super) fn assemble_md(init: &mut Init, s: &Storage, problems: &mut Vec<String>) {
    if let Some(conf) = &s.mdadm_conf {
        let p = Path::new(MDADM_CONF);
        let text = format!(
            "# Written by sanforge-init at boot from the node config's [storage] mdadm-conf.\n{}{}",
            conf,
            if conf.ends_with('\n') { "" } else { "\n" }
        );
        let r = p
            .parent()
            .map_or(Ok(()), |d| init.sys.mkdir(d))
            .and_then(|()| init.sys.write_durable(p, text.as_bytes()));
        if let Err(e) = r {
            init.warn(format!("md: {e}"));
            problems.push(format!("{MDADM_CONF} not written"));
        }
    }
    if s.assemble == Assemble::Scan {
        scan_md(init, problems);
        return;
    }
    // Every member named without wildcards, waited for at once.
    let explicit: Vec<&str> =
        s.md.iter()
            .flat_map(|a| a.devices.iter())
            .filter(|d| !is_pattern(d))
            .map(String::as_str)
            .collect();
    let absent = wait_for_devices(init.sys, &explicit, s.device_timeout.0);
    for a in &s.md {
        let r = assemble_one(init, a, &absent);
        if let Some(p) = md_problem(&r) {
            problems.push(p);
        }
        init.storage.report.missing.extend(
            r.missing
                .iter()
                .map(|m| m.split_once(' ').map_or(m.as_str(), |(p, _)| p).to_string()),
        );
        init.storage.report.md.push(r);
    }
}

/// What is wrong with an array, if anything.
pub(super) fn md_problem(r: &MdReport) -> Option<String> {
    if r.device.is_none() || r.state == "inactive" {
        Some(format!("md {} not running", r.name))
    } else if r.degraded > 0 || !r.missing.is_empty() {
        Some(format!(
            "md {} degraded ({} missing)",
            r.name,
            r.degraded.max(r.missing.len() as u32)
        ))
    } else {
        None
    }
}

/// `mdadm --assemble` of one listed array, and what became of it.
pub(super) fn assemble_one(init: &mut Init, a: &MdArray, absent: &[String]) -> MdReport {
    let target = format!("/dev/md/{}", a.name);
    // The members present, by the names the config gives (deduplicated by device).
    let mut present: Vec<String> = Vec::new();
    let mut devices: Vec<PathBuf> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for d in &a.devices {
        let found = if is_pattern(d) {
            let m = expand(init.sys, d);
            if m.is_empty() {
                missing.push(format!("{d} (matches no device)"));
            }
            m
        } else if absent.contains(d) {
            missing.push(format!("{d} (not present)"));
            Vec::new()
        } else {
            vec![d.clone()]
        };
        for f in found {
            let canon = init
                .sys
                .canonicalize(Path::new(&f))
                .unwrap_or_else(|_| PathBuf::from(&f));
            if !devices.contains(&canon) {
                devices.push(canon);
                present.push(f);
            }
        }
    }
    let already = init.sys.exists(Path::new(&target));
    let mut error = None;
    if already {
        init.log
            .line(&format!("md {}: {target} is already assembled", a.name));
    } else if present.is_empty() && a.uuid.is_none() {
        error = Some("none of its devices is present".to_string());
    } else {
        let mut argv: Vec<String> = vec![
            MDADM.into(),
            "--assemble".into(),
            target.clone(),
            "--run".into(),
        ];
        if let Some(u) = &a.uuid {
            argv.push(format!("--uuid={u}"));
        }
        if present.is_empty() {
            // A uuid and no device present by name: let mdadm examine every device.
            argv.push("--scan".into());
            argv.push("--config=partitions".into());
        }
        argv.extend(present.iter().cloned());
        match run_tool(init.sys, &argv, &[("MDADM_NO_UDEV", "1")], MDADM_TIMEOUT) {
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    let mut r = md_report(init.sys, &a.name, Path::new(&target));
    r.error = error;
    if let (Some(want), Some(got)) = (&a.level, &r.level) {
        if want != got {
            r.error = Some(format!("level is {got}, the node config says {want}"));
        }
    }
    // Present devices the array did not take (a stale or foreign superblock).
    if r.device.is_some() {
        for (p, canon) in present.iter().zip(&devices) {
            let name = canon
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !r.members.iter().any(|m| m.split(' ').next() == Some(&name)) {
                missing.push(format!("{p} (present as {name}, not in the array)"));
            }
        }
    }
    r.missing = missing;
    log_md(init, &r);
    r
}

/// `mdadm --assemble --scan --run`, then every md array the kernel has.
pub(super) fn scan_md(init: &mut Init, problems: &mut Vec<String>) {
    let argv: Vec<String> = [MDADM, "--assemble", "--scan", "--run"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Err(e) = run_tool(init.sys, &argv, &[("MDADM_NO_UDEV", "1")], MDADM_TIMEOUT) {
        init.warn(format!("md: {e}"));
    }
    // Names from /dev/md (mdadm's links), else the kernel's.
    let mut named: Vec<(String, String)> = Vec::new();
    for n in init.sys.list_dir(Path::new("/dev/md")).unwrap_or_default() {
        let p = Path::new("/dev/md").join(&n);
        if let Some(dev) = init
            .sys
            .canonicalize(&p)
            .ok()
            .and_then(|c| c.file_name().map(|f| f.to_string_lossy().into_owned()))
        {
            named.push((n, dev));
        }
    }
    let mut any = false;
    for dev in init
        .sys
        .list_dir(Path::new("/sys/block"))
        .unwrap_or_default()
    {
        if !dev.starts_with("md") {
            continue;
        }
        any = true;
        let name = named
            .iter()
            .find(|(_, d)| *d == dev)
            .map_or(dev.clone(), |(n, _)| n.clone());
        let r = md_report(init.sys, &name, &Path::new("/dev").join(&dev));
        if let Some(p) = md_problem(&r) {
            problems.push(p);
        }
        log_md(init, &r);
        init.storage.report.md.push(r);
    }
    if !any {
        init.warn("md: mdadm --assemble --scan assembled no array");
        problems.push("no md array".into());
    }
}

/// One sysfs attribute of a block device, trimmed.
pub(super) fn attr(sys: &mut dyn Sys, p: &Path) -> Option<String> {
    sys.read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// An array as `/sys/block/mdX/md/` shows it (`dev` is its /dev path).
pub(super) fn md_report(sys: &mut dyn Sys, name: &str, dev: &Path) -> MdReport {
    let mut r = MdReport {
        name: name.to_string(),
        state: "not assembled".into(),
        ..MdReport::default()
    };
    if !sys.exists(dev) {
        return r;
    }
    let Some(kdev) = sys
        .canonicalize(dev)
        .ok()
        .and_then(|c| c.file_name().map(|f| f.to_string_lossy().into_owned()))
    else {
        return r;
    };
    let md = Path::new("/sys/block").join(&kdev).join("md");
    r.device = Some(kdev);
    r.level = attr(sys, &md.join("level"));
    r.raid_disks = attr(sys, &md.join("raid_disks")).and_then(|v| v.parse().ok());
    r.degraded = attr(sys, &md.join("degraded"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    r.sync_action = attr(sys, &md.join("sync_action")).filter(|a| a != "idle");
    let state = attr(sys, &md.join("array_state")).unwrap_or_else(|| "unknown".into());
    r.state = if r.degraded > 0 && state != "inactive" {
        format!("{state}, degraded")
    } else {
        state
    };
    for e in sys.list_dir(&md).unwrap_or_default() {
        let Some(member) = e.strip_prefix("dev-") else {
            continue;
        };
        let st = attr(sys, &md.join(&e).join("state")).unwrap_or_default();
        r.members.push(if st.is_empty() || st == "in_sync" {
            member.to_string()
        } else {
            format!("{member} ({st})")
        });
    }
    r
}

/// The console lines of an array.
pub(super) fn log_md(init: &mut Init, r: &MdReport) {
    let Some(dev) = &r.device else {
        init.warn(format!(
            "md {}: NOT ASSEMBLED{}{}",
            r.name,
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
            if r.missing.is_empty() {
                String::new()
            } else {
                format!("; missing {}", r.missing.join(", "))
            }
        ));
        return;
    };
    let total = r.raid_disks.map(|n| format!(" of {n}")).unwrap_or_default();
    let head = format!(
        "md {}: /dev/{dev} {} {}, {}{total} members ({})",
        r.name,
        r.level.as_deref().unwrap_or("?"),
        r.state,
        r.members.len(),
        r.members.join(", ")
    );
    let sync = r
        .sync_action
        .as_deref()
        .map(|a| format!(", {a} running"))
        .unwrap_or_default();
    if r.degraded > 0 || !r.missing.is_empty() || r.error.is_some() {
        let missing = if r.missing.is_empty() {
            String::new()
        } else {
            format!("; missing {}", r.missing.join(", "))
        };
        let err = r
            .error
            .as_deref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default();
        init.warn(format!("{head}{sync}: DEGRADED{missing}{err}"));
    } else {
        init.log.line(&format!("{head}{sync}"));
    }
}
