//! Checks of the device handlers and their devices, and of the ALUA device and target
//! groups.

use super::{
    check_attrs, check_bool, check_catalog, check_name, check_range, check_wwpn, Devices, Out,
    RelIds,
};
use crate::scsi::scst::catalog;
use crate::scsi::scst::ScstConf;
use std::collections::HashMap;

/// Handlers and their devices: names, attributes, backing files (two devices on one
/// file or device corrupt each other's data).
pub(super) fn check_handlers<'a>(o: &mut Out, conf: &'a ScstConf) -> Devices<'a> {
    // Handlers and devices.
    let mut devs = Devices {
        by_name: HashMap::new(),
    };
    let mut handlers: HashMap<&str, usize> = HashMap::new();
    let mut files: HashMap<&str, (&str, usize, bool)> = HashMap::new();
    for h in &conf.handlers {
        if let Some(first) = handlers.insert(&h.name, h.line) {
            o.error(h.line, format!("HANDLER {} appears twice (first on line {first}); scstadmin would keep only the last block", h.name));
        }
        if !catalog::known_handler(&h.name) {
            o.error(
                h.line,
                format!(
                    "unknown handler '{}'; known: {}",
                    h.name,
                    catalog::HANDLERS.join(", ")
                ),
            );
        }
        check_attrs(o, "handler", &h.attrs, &[], &[]);
        let known = catalog::known_handler(&h.name);
        check_catalog(
            o,
            "handler",
            &format!("handler {}", h.name),
            &h.attrs,
            &catalog::handler_attr,
            known,
            &catalog::known_names(catalog::Level::Handler, &h.name),
            &[],
        );
        let device_names = catalog::known_names(catalog::Level::Device, &h.name);
        let creation = catalog::device_creation_params(&h.name);
        for d in &h.devices {
            check_name(o, "device", &d.name, d.line);
            if let Some((hn, first)) = devs.by_name.insert(&d.name, (&h.name, d.line)) {
                o.error(
                    d.line,
                    format!(
                        "device '{}' is defined twice (first on line {first}, handler {hn})",
                        d.name
                    ),
                );
            }
            if catalog::is_passthrough(&h.name) {
                let ok = d.name.split(':').count() == 4
                    && d.name
                        .split(':')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    o.error(
                        d.line,
                        format!("pass-through device '{}' must be named H:C:I:L", d.name),
                    );
                }
            } else if catalog::is_vdisk(&h.name) && d.name.len() > 64 {
                o.error(
                    d.line,
                    format!("device name '{}' is longer than 64 characters", d.name),
                );
            }
            check_attrs(o, "device", &d.attrs, creation, &[]);
            check_catalog(
                o,
                "device",
                &format!("{} devices", h.name),
                &d.attrs,
                &|n| catalog::device_attr(&h.name, n),
                known,
                &device_names,
                &[],
            );
            let on = |n: &str| crate::scsi::scst::attr(&d.attrs, n) == Some("1");
            if on("read_only") && (on("write_through") || on("nv_cache")) {
                o.error(
                    d.line,
                    format!("device '{}' is read_only but has write_through or nv_cache set: vdisk refuses write options on a read-only device", d.name),
                );
            }
            // One backing file or device, one SCST device (unless both only read it).
            if matches!(h.name.as_str(), "vdisk_fileio" | "vdisk_blockio") {
                if let Some(f) = d.attrs.iter().find(|a| a.name == "filename") {
                    match files.get(f.value.as_str()) {
                        Some((other, first, ro)) if !(*ro && on("read_only")) => o.error(
                            f.line,
                            format!(
                                "device '{}' uses {}, which device '{other}' already uses (line {first}): two devices writing one file or block device corrupt each other's data",
                                d.name, f.value
                            ),
                        ),
                        Some(_) => {}
                        None => {
                            files.insert(&f.value, (&d.name, f.line, on("read_only")));
                        }
                    }
                }
            }
            if crate::scsi::scst::attr(&d.attrs, "cluster_mode") == Some("1")
                && crate::scsi::scst::attr(&d.attrs, "t10_dev_id").is_none()
            {
                o.warn(d.line, format!("device '{}' has cluster_mode 1 but no t10_dev_id; every node must use the same t10_dev_id (the DLM lockspace is scst-<t10_dev_id>)", d.name));
            }
            if (h.name == "vdisk_fileio" || h.name == "vdisk_blockio")
                && crate::scsi::scst::attr(&d.attrs, "filename").is_none()
            {
                o.error(
                    d.line,
                    format!("device '{}' of {} has no filename", d.name, h.name),
                );
            }
        }
    }

    devs
}

/// ALUA: device groups, their target groups and targets.
pub(super) fn check_alua_groups(o: &mut Out, conf: &ScstConf, devs: &Devices, rel: &mut RelIds) {
    // ALUA: device groups and target groups.
    let mut dgs: HashMap<&str, usize> = HashMap::new();
    let mut dg_devs: HashMap<&str, (&str, usize)> = HashMap::new();
    for dg in &conf.device_groups {
        check_name(o, "device group", &dg.name, dg.line);
        if let Some(first) = dgs.insert(&dg.name, dg.line) {
            o.error(dg.line, format!("DEVICE_GROUP {} appears twice (first on line {first}); scstadmin would keep only the last block", dg.name));
        }
        check_attrs(o, "device group", &dg.attrs, &[], &[]);
        for dv in &dg.devices {
            if !devs.by_name.contains_key(dv.name.as_str()) {
                o.error(
                    dv.line,
                    format!(
                        "device group {} lists device '{}', which no HANDLER block defines",
                        dg.name, dv.name
                    ),
                );
            }
            if let Some((g, first)) = dg_devs.insert(&dv.name, (&dg.name, dv.line)) {
                o.error(dv.line, format!("device '{}' is already in device group {g} (line {first}); a device can be in only one", dv.name));
            }
        }
        let mut tgs: HashMap<&str, usize> = HashMap::new();
        let mut gids: HashMap<u32, (&str, usize)> = HashMap::new();
        for tg in &dg.target_groups {
            check_name(o, "target group", &tg.name, tg.line);
            if let Some(first) = tgs.insert(&tg.name, tg.line) {
                o.error(
                    tg.line,
                    format!(
                        "TARGET_GROUP {} appears twice in {} (first on line {first})",
                        tg.name, dg.name
                    ),
                );
            }
            check_attrs(o, "target group", &tg.attrs, &[], &[]);
            if let Some((id, line)) = check_range(o, &tg.attrs, "group_id") {
                if let Some((other, first)) = gids.insert(id, (&tg.name, line)) {
                    o.error(
                        line,
                        format!(
                            "group_id {id} is already used by target group {other} (line {first})"
                        ),
                    );
                }
            }
            check_bool(o, &tg.attrs, "preferred");
            for a in &tg.attrs {
                if !["group_id", "preferred", "state"].contains(&a.name.as_str()) {
                    o.error(
                        a.line,
                        format!("target group attribute '{}' is not an attribute of target groups: expected group_id, preferred or state", a.name),
                    );
                }
            }
            for a in tg.attrs.iter().filter(|a| a.name == "state") {
                if !catalog::ALUA_STATES.contains(&a.value.as_str()) {
                    o.error(
                        a.line,
                        format!(
                            "invalid ALUA state '{}'; expected one of {}",
                            a.value,
                            catalog::ALUA_STATES.join(", ")
                        ),
                    );
                }
            }
            for t in &tg.targets {
                check_name(o, "target", &t.name, t.line);
                if t.name.contains(':') && t.name.chars().all(|c| c == ':' || c.is_ascii_hexdigit())
                {
                    check_wwpn(o, "target", &t.name, t.line);
                }
                check_attrs(o, "target-group target", &t.attrs, &[], &[]);
                for a in &t.attrs {
                    if a.name != "rel_tgt_id" {
                        o.warn(a.line, format!("target-group target attribute '{}' is not known; only rel_tgt_id is", a.name));
                    }
                }
                if let Some((id, line)) = check_range(o, &t.attrs, "rel_tgt_id") {
                    rel.check(o, &t.name, id, line);
                }
            }
        }
    }
}
