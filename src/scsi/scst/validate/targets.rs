//! Checks of the target drivers, their targets, LUNs and initiator groups.

use super::{
    check_attrs, check_bool, check_catalog, check_name, check_range, is_pattern, is_wwpn, Devices,
    Out, RelIds,
};
use crate::config::values::is_iscsi_name;
use crate::scsi::scst::catalog;
use crate::scsi::scst::{Attr, IniGroup, Lun, ScstConf};
use std::collections::HashMap;

pub(super) fn check_luns(
    o: &mut Out,
    owner: &str,
    luns: &[Lun],
    devs: &Devices,
    line: usize,
    skip_lun0: bool,
) {
    let mut numbers: HashMap<u32, usize> = HashMap::new();
    for l in luns {
        if let Some(first) = numbers.insert(l.number, l.line) {
            o.error(
                l.line,
                format!(
                    "LUN {} is defined twice in {owner} (first on line {first})",
                    l.number
                ),
            );
        }
        if l.number > catalog::MAX_LUN {
            o.error(
                l.line,
                format!(
                    "LUN {} is out of range: expected 0 to {} (SCST_MAX_LUN)",
                    l.number,
                    catalog::MAX_LUN
                ),
            );
        }
        if !devs.by_name.contains_key(l.device.as_str()) {
            o.error(
                l.line,
                format!(
                    "LUN {} uses device '{}', which no HANDLER block defines",
                    l.number, l.device
                ),
            );
        }
        for a in &l.attrs {
            if a.name != "read_only" {
                o.error(
                    a.line,
                    format!(
                        "LUN attribute '{}' is not supported; the kernel accepts only read_only",
                        a.name
                    ),
                );
            }
        }
        check_bool(o, &l.attrs, "read_only");
        check_attrs(o, "LUN", &l.attrs, &["read_only"], &[]);
    }
    if !luns.is_empty() && !numbers.contains_key(&0) && !skip_lun0 {
        o.warn(
            line,
            format!("{owner} has no LUN 0; initiators may not find the other LUNs"),
        );
    }
}

pub(super) fn check_initiator(o: &mut Out, driver: &str, g: &IniGroup) {
    for i in &g.initiators {
        check_name(o, "initiator", &i.name, i.line);
        if is_pattern(&i.name) {
            continue;
        }
        if catalog::is_fc_driver(driver) {
            check_wwpn(o, "initiator", &i.name, i.line);
        } else if driver == "iscsi" && !is_iscsi_name(&i.name) {
            o.error(
                i.line,
                format!(
                    "initiator '{}' is not an iSCSI name (iqn.YYYY-MM.domain[:id], eui.…, naa.…)",
                    i.name
                ),
            );
        }
    }
}

pub(super) fn check_wwpn(o: &mut Out, what: &str, name: &str, line: usize) {
    if !is_wwpn(name) {
        o.error(
            line,
            format!("{what} '{name}' is not a WWPN (8 hex bytes separated by colons, e.g. 21:00:00:24:ff:54:09:32)"),
        );
    } else if name.chars().any(|c| c.is_ascii_uppercase()) {
        o.warn(
            line,
            format!("{what} '{name}' has upper-case hex; SCST names ports in lower case, so it will not match"),
        );
    }
}

/// iscsi-scstd keeps one outgoing account per target (and one for discovery): a second
/// `OutgoingUser` replaces the first.
pub(super) fn one_outgoing(o: &mut Out, owner: &str, attrs: &[Attr]) {
    let mut outgoing = attrs.iter().filter(|a| a.name == "OutgoingUser");
    if let (Some(first), Some(second)) = (outgoing.next(), outgoing.next()) {
        o.error(
            second.line,
            format!(
                "{owner} has a second OutgoingUser (first on line {}): iscsi-scstd keeps one outgoing account and would replace the first",
                first.line
            ),
        );
    }
}

/// Target drivers, targets, LUNs and initiator groups.
pub(super) fn check_drivers(o: &mut Out, conf: &ScstConf, devs: &Devices, rel: &mut RelIds) {
    // Target drivers, targets, LUNs, groups. rel_tgt_id: id → (target, line).
    let mut drivers: HashMap<&str, usize> = HashMap::new();
    for d in &conf.drivers {
        if let Some(first) = drivers.insert(&d.name, d.line) {
            o.error(d.line, format!("TARGET_DRIVER {} appears twice (first on line {first}); scstadmin would keep only the last block", d.name));
        }
        if !catalog::known_driver(&d.name) {
            o.error(
                d.line,
                format!(
                    "unknown target driver '{}'; known: {}",
                    d.name,
                    catalog::DRIVERS.join(", ")
                ),
            );
        }
        check_attrs(
            o,
            "driver",
            &d.attrs,
            &[],
            catalog::driver_dynamic_attrs(&d.name),
        );
        let strict = catalog::known_driver(&d.name) && catalog::driver_catalogued(&d.name);
        check_catalog(
            o,
            "driver",
            &format!("driver {}", d.name),
            &d.attrs,
            &|n| catalog::driver_attr(&d.name, n),
            strict,
            &catalog::known_names(catalog::Level::Driver, &d.name),
            &[],
        );
        one_outgoing(o, &format!("driver {}", d.name), &d.attrs);
        let target_names = catalog::known_names(catalog::Level::Target, &d.name);
        let group_names = catalog::known_names(catalog::Level::Group, &d.name);
        let mut targets: HashMap<&str, usize> = HashMap::new();
        for t in &d.targets {
            check_name(o, "target", &t.name, t.line);
            if let Some(first) = targets.insert(&t.name, t.line) {
                o.error(
                    t.line,
                    format!(
                        "TARGET {} appears twice in {} (first on line {first})",
                        t.name, d.name
                    ),
                );
            }
            if catalog::is_fc_driver(&d.name) {
                check_wwpn(o, "target", &t.name, t.line);
            } else if d.name == "iscsi" && !is_iscsi_name(&t.name) {
                o.error(t.line, format!("iSCSI target '{}' is not an iSCSI name (iqn.YYYY-MM.domain[:id], eui.…, naa.…)", t.name));
            }
            let virt = catalog::is_virtual_target(&d.name, t);
            let params = if virt {
                catalog::target_creation_params(&d.name)
            } else {
                &[]
            };
            check_attrs(
                o,
                "target",
                &t.attrs,
                params,
                catalog::target_dynamic_attrs(&d.name),
            );
            check_catalog(
                o,
                "target",
                &format!("{} targets", d.name),
                &t.attrs,
                &|n| catalog::target_attr(&d.name, n),
                strict,
                &target_names,
                // Checked below, with their own messages.
                &["rel_tgt_id", "node_name", "parent_host"],
            );
            one_outgoing(o, &format!("target {}", t.name), &t.attrs);
            if d.name == "qla2x00t" && virt {
                for p in ["node_name", "parent_host"] {
                    match crate::scsi::scst::attr(&t.attrs, p) {
                        None => o.error(t.line, format!("NPIV target '{}' needs both node_name and parent_host (or HW_TARGET for a physical port)", t.name)),
                        Some(v) if !is_wwpn(v) => o.error(t.line, format!("{p} '{v}' of '{}' is not a WWN", t.name)),
                        _ => {}
                    }
                }
            }
            if let Some((id, line)) = check_range(o, &t.attrs, "rel_tgt_id") {
                rel.check(o, &t.name, id, line);
            }
            let cm = d.name == "copy_manager";
            check_luns(o, &format!("target {}", t.name), &t.luns, devs, t.line, cm);
            let mut groups: HashMap<&str, usize> = HashMap::new();
            let mut inis: HashMap<&str, (&str, usize)> = HashMap::new();
            for g in &t.groups {
                check_name(o, "group", &g.name, g.line);
                if let Some(first) = groups.insert(&g.name, g.line) {
                    o.error(
                        g.line,
                        format!(
                            "GROUP {} appears twice in target {} (first on line {first})",
                            g.name, t.name
                        ),
                    );
                }
                check_attrs(o, "group", &g.attrs, &[], &[]);
                check_catalog(
                    o,
                    "group",
                    &format!("{} initiator groups", d.name),
                    &g.attrs,
                    &|n| catalog::group_attr(&d.name, n),
                    strict,
                    &group_names,
                    &[],
                );
                check_luns(o, &format!("group {}", g.name), &g.luns, devs, g.line, cm);
                check_initiator(o, &d.name, g);
                for i in &g.initiators {
                    if let Some((og, first)) = inis.insert(&i.name, (&g.name, i.line)) {
                        o.error(i.line, format!("initiator '{}' is listed twice in target {} (first on line {first}, group {og}); an initiator can be in only one group", i.name, t.name));
                    }
                }
            }
        }
    }
}
