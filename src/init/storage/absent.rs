//! Absent backing devices: the LIO backstores and SCST devices whose device is not
//! there, and the target config without them.

use super::AbsentLun;
use crate::config::node::{BackstoreKind, Lio, NodeConfig};
use crate::scsi::scst::ScstConf;
use crate::sys::Sys;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The LIO backstores whose device is not there: a block backstore's device, a
/// fileio backstore's directory (the kernel creates the file, not its directory).
pub fn absent_lio(sys: &mut dyn Sys, lio: &Lio) -> Vec<AbsentLun> {
    let mut out = Vec::new();
    for b in &lio.backstores {
        let Some(p) = b.path.as_deref() else { continue };
        let check = match b.kind {
            BackstoreKind::Block => PathBuf::from(p),
            BackstoreKind::Fileio => Path::new(p)
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            BackstoreKind::Ramdisk => continue,
        };
        if !sys.exists(&check) {
            out.push(AbsentLun {
                stack: "lio".into(),
                backstore: b.name.clone(),
                path: check.display().to_string(),
            });
        }
    }
    out
}

/// The SCST devices whose `filename` is not there. A device created inactive
/// (`active 0`) is not one of them: SCST's vdisk handlers open the file only when the
/// device is activated, which the cluster does (`ocf:sanforge:alua` on promote, after
/// DRBD is Primary and, for an LV of a VG on DRBD, after LVM-activate), so its file may
/// rightly be absent at boot; SCST serves no command from an inactive device.
pub fn absent_scst(sys: &mut dyn Sys, conf: &ScstConf) -> Vec<AbsentLun> {
    let mut out = Vec::new();
    for h in &conf.handlers {
        for d in &h.devices {
            let Some(f) = crate::scsi::scst::attr(&d.attrs, "filename") else {
                continue;
            };
            if crate::scsi::scst::attr(&d.attrs, "active").is_some_and(|a| a.trim() == "0") {
                continue;
            }
            if f.starts_with('/') && !sys.exists(Path::new(f)) {
                out.push(AbsentLun {
                    stack: "scst".into(),
                    backstore: d.name.clone(),
                    path: f.to_string(),
                });
            }
        }
    }
    out
}

/// Every LUN device of the node that is absent (LIO and SCST).
pub fn absent_luns(sys: &mut dyn Sys, node: &NodeConfig) -> Vec<AbsentLun> {
    let mut out = Vec::new();
    if let Some(l) = &node.lio {
        out.extend(absent_lio(sys, l));
    }
    if let Some(s) = &node.scst {
        let path = crate::contract::conf_path(&s.conf);
        if let Ok(text) = sys.read_to_string(&path) {
            if let Ok((conf, _)) = crate::scsi::scst::load_conf(&path, &text) {
                out.extend(absent_scst(sys, &conf));
            }
        }
    }
    out
}

/// `conf` without the devices named in `absent`, their LUNs (in targets and
/// initiator groups) and their device-group entries.
pub fn without_devices(conf: &ScstConf, absent: &BTreeSet<String>) -> ScstConf {
    let mut c = conf.clone();
    for h in &mut c.handlers {
        h.devices.retain(|d| !absent.contains(&d.name));
    }
    for d in &mut c.drivers {
        for t in &mut d.targets {
            t.luns.retain(|l| !absent.contains(&l.device));
            for g in &mut t.groups {
                g.luns.retain(|l| !absent.contains(&l.device));
            }
        }
    }
    for g in &mut c.device_groups {
        g.devices.retain(|d| !absent.contains(&d.name));
    }
    c
}
