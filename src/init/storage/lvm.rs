//! LVM: `/etc/lvm/lvm.conf` for a system without udev, `vgchange -ay` of the boot VGs,
//! and the active LVs from `/sys/block/dm-*/dm/`.

use super::{attr, run_tool, LvReport, VgReport, LVM_TIMEOUT};
use crate::config::storage::{Activate, Storage};
use crate::contract::{LVM, LVM_CONF};
use crate::init::hardware::human_size;
use crate::init::Init;
use crate::sys::Sys;
use std::path::Path;

/// lvm.conf for a node without udev rules for device-mapper and without dmeventd.
pub fn render_lvm_conf(s: &Storage) -> String {
    let mut out = String::from(
        "# Written by sanforge-init at boot from the node config's [storage].\n\
         # No udev rules for device-mapper in the image: LVM scans /dev itself and makes\n\
         # its own device nodes and /dev/VG/LV links; no dmeventd, no lvmetad, no\n\
         # devices file. LVs are never scanned for PVs (a DRBD backing LV carries the\n\
         # label of the VG on top of DRBD).\n",
    );
    out.push_str("devices {\n");
    out.push_str("\tdir = \"/dev\"\n\tscan = [ \"/dev\" ]\n");
    out.push_str("\tobtain_device_list_from_udev = 0\n");
    out.push_str("\texternal_device_info_source = \"none\"\n");
    out.push_str("\tscan_lvs = 0\n\tuse_devicesfile = 0\n\tmd_component_detection = 1\n");
    if !s.lvm_reject.is_empty() {
        let pats: Vec<String> = s
            .lvm_reject
            .iter()
            .map(|p| format!("\"r|^{}$|\"", regex_escape(p)))
            .collect();
        out.push_str(&format!("\tglobal_filter = [ {} ]\n", pats.join(", ")));
    }
    out.push_str("}\n");
    out.push_str("global {\n\tuse_lvmlockd = 0\n\tevent_activation = 0\n");
    if s.lvm.iter().any(|v| v.activate == Activate::Ha) {
        // A VG the cluster activates carries the system ID of the node that holds it
        // (`ocf:heartbeat:LVM-activate` with `vg_access_mode=system_id` refuses to run
        // without one): the node's name, which the init sets as its hostname. Another
        // node's VG is foreign here and cannot be activated by mistake.
        out.push_str("\tsystem_id_source = \"uname\"\n");
    }
    out.push_str("}\n");
    out.push_str(
        "activation {\n\tudev_sync = 0\n\tudev_rules = 0\n\tverify_udev_operations = 0\n\tmonitoring = 0\n}\n",
    );
    out.push_str("backup {\n\tbackup = 0\n\tarchive = 0\n}\n");
    out
}

/// A path as an LVM filter regex matching it alone.
pub(super) fn regex_escape(p: &str) -> String {
    let mut out = String::new();
    for c in p.chars() {
        if ".+*?()[]{}^$|\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// lvm.conf, then `vgchange -ay` of each boot VG; the others are reported as the
/// cluster's.
pub(super) fn activate_lvm(init: &mut Init, s: &Storage, problems: &mut Vec<String>) {
    let conf = Path::new(LVM_CONF);
    let r = conf
        .parent()
        .map_or(Ok(()), |d| init.sys.mkdir(d))
        .and_then(|()| init.sys.mkdir(Path::new("/run/lock/lvm")))
        .and_then(|()| init.sys.write_durable(conf, render_lvm_conf(s).as_bytes()));
    if let Err(e) = r {
        init.warn(format!("lvm: {e}"));
        problems.push(format!("{LVM_CONF} not written"));
        return;
    }
    for v in &s.lvm {
        let mut rep = VgReport {
            vg: v.vg.clone(),
            activate: match v.activate {
                Activate::Boot => "boot",
                Activate::Ha => "ha",
            }
            .into(),
            ..VgReport::default()
        };
        if v.activate == Activate::Ha {
            init.log.line(&format!(
                "lvm {}: left inactive, the cluster activates it on promote (activate = \"ha\")",
                v.vg
            ));
            init.storage.report.lvm.push(rep);
            continue;
        }
        let argv: Vec<String> = [LVM, "vgchange", "-ay", v.vg.as_str()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = run_tool(
            init.sys,
            &argv,
            &[("LVM_SUPPRESS_FD_WARNINGS", "1")],
            LVM_TIMEOUT,
        );
        rep.lvs = active_lvs(init.sys, &v.vg);
        let lvs: Vec<String> = rep
            .lvs
            .iter()
            .map(|l| format!("{} ({})", l.path, human_size(l.size_bytes)))
            .collect();
        match r {
            Ok(_) => init.log.line(&format!(
                "lvm {}: activated, {} LV{}{}",
                v.vg,
                rep.lvs.len(),
                if rep.lvs.len() == 1 { "" } else { "s" },
                if lvs.is_empty() {
                    String::new()
                } else {
                    format!(": {}", lvs.join(", "))
                }
            )),
            Err(e) => {
                init.warn(format!(
                    "lvm {}: NOT ACTIVATED: {e}{}",
                    v.vg,
                    if lvs.is_empty() {
                        String::new()
                    } else {
                        format!(" (active: {})", lvs.join(", "))
                    }
                ));
                problems.push(format!("volume group {} not activated", v.vg));
                rep.error = Some(e);
            }
        }
        init.storage.report.lvm.push(rep);
    }
}

/// `vg-name` of a device-mapper name → (VG, LV), undoing LVM's doubling of `-`; None
/// for what is no plain LV (`vg-lv-real`, `vg-lv-cow`: the single `-` of a layer).
pub fn split_dm_name(name: &str) -> Option<(String, String)> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' {
            if chars.peek() == Some(&'-') {
                chars.next();
                parts.last_mut()?.push('-');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut()?.push(c);
        }
    }
    match parts.as_slice() {
        [vg, lv] if !vg.is_empty() && !lv.is_empty() => Some((vg.clone(), lv.clone())),
        _ => None,
    }
}

/// The active LVs of `vg`, from `/sys/block/dm-*/dm/{uuid,name}` (LVM's uuids start
/// with `LVM-`).
pub fn active_lvs(sys: &mut dyn Sys, vg: &str) -> Vec<LvReport> {
    let mut out = Vec::new();
    for dev in sys.list_dir(Path::new("/sys/block")).unwrap_or_default() {
        if !dev.starts_with("dm-") {
            continue;
        }
        let d = Path::new("/sys/block").join(&dev);
        if !attr(sys, &d.join("dm/uuid")).is_some_and(|u| u.starts_with("LVM-")) {
            continue;
        }
        let Some((v, lv)) = attr(sys, &d.join("dm/name")).and_then(|n| split_dm_name(&n)) else {
            continue;
        };
        if v != vg {
            continue;
        }
        let sectors: u64 = attr(sys, &d.join("size"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        out.push(LvReport {
            path: format!("/dev/{vg}/{lv}"),
            name: lv,
            device: dev,
            size_bytes: sectors.saturating_mul(512),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
