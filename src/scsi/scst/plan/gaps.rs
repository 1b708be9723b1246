//! [`live_gaps`]: what a live apply cannot change, one line each with what to do.

use super::*;
use crate::scsi::scst::catalog;
use crate::scsi::scst::{Attr, Device, Lun, ScstConf};

/// What moving SCST from `current` to `desired` cannot do with the writes of
/// `diff_plan(current, desired, prune)`, one line each with what to do instead, so that
/// an apply never reports a change it did not make:
///
/// * a creation parameter of an existing device or NPIV port that changed and cannot
///   be written live (without `prune` the device keeps the old one);
/// * a LUN whose device or `read_only` changed (without `prune`);
/// * an attribute that is gone from the config (sysfs cannot reset it to its default);
/// * without `prune`, what SCST has and the config no longer names (it stays).
pub fn live_gaps(current: &ScstConf, desired: &ScstConf, prune: bool) -> Vec<String> {
    let mut out = Vec::new();
    gone(&mut out, "SCST", &current.globals, &desired.globals, &[]);
    handler_gaps(&mut out, current, desired, prune);
    driver_gaps(&mut out, current, desired, prune);
    if !prune {
        let stale = stale_count(current, desired);
        if stale > 0 {
            out.push(format!(
                "{stale} devices, targets, LUNs or groups of the running SCST are not in the config and stay: apply with --prune to remove them"
            ));
        }
    }
    out
}

/// The value of attribute `n` as written (secrets redacted), or `(default)`.
fn attr_value(attrs: &[Attr], n: &str) -> String {
    attrs
        .iter()
        .rev()
        .find(|a| a.name == n)
        .map(|a| crate::util::redact::write_value(n, &a.value).into_owned())
        .unwrap_or_else(|| "(default)".into())
}

/// Attributes that disappear from the config: a static one keeps its value in SCST.
fn gone(out: &mut Vec<String>, what: &str, cur: &[Attr], des: &[Attr], skip: &[&str]) {
    for (n, _) in grouped(cur) {
        if skip.contains(&n) || des.iter().any(|a| a.name == n) {
            continue;
        }
        out.push(format!(
            "{what}: attribute {n} is no longer in the config, but SCST keeps {} (sysfs cannot reset it): set it to the value you want, or reboot for the default",
            attr_value(cur, n)
        ));
    }
}

/// Handlers and devices: a device that moves to another handler, creation parameters
/// that cannot change live, attributes that are gone.
fn handler_gaps(out: &mut Vec<String>, current: &ScstConf, desired: &ScstConf, prune: bool) {
    for h in &desired.handlers {
        let creation = catalog::device_creation_params(&h.name);
        if let Some(ch) = current.handlers.iter().find(|x| x.name == h.name) {
            gone(
                out,
                &format!("handler {}", h.name),
                &ch.attrs,
                &h.attrs,
                &[],
            );
        }
        for d in &h.devices {
            let Some((ch, cd)) = find_device(current, &d.name) else {
                continue;
            };
            if ch != h.name && !prune {
                out.push(format!(
                    "device '{}' moves from handler {ch} to {}: not done live; apply with --prune (deletes and re-creates the device: its LUNs are removed and added again, initiators see a reset) or reboot",
                    d.name, h.name
                ));
                continue;
            }
            if !prune {
                creation_gaps(out, &d.name, (ch, cd), (&h.name, d));
            }
            // A device that --prune re-creates starts from the defaults.
            let recreated =
                prune && (ch != h.name || creation_sig(ch, cd) != creation_sig(&h.name, d));
            if !recreated {
                let fixed: Vec<&str> = creation
                    .iter()
                    .copied()
                    .filter(|p| !catalog::WRITABLE_CREATION_PARAMS.contains(p))
                    .collect();
                gone(
                    out,
                    &format!("device '{}'", d.name),
                    &cd.attrs,
                    &d.attrs,
                    &fixed,
                );
            }
        }
    }
}

/// The creation parameters of device `name` that differ between the running one
/// (`cur`: handler, device) and the config's (`des`).
fn creation_gaps(out: &mut Vec<String>, name: &str, cur: (&str, &Device), des: (&str, &Device)) {
    let (old, new) = (creation_sig(cur.0, cur.1), creation_sig(des.0, des.1));
    let of = |sig: &[(String, String)], n: &str| {
        sig.iter().find(|(m, _)| m == n).map(|(_, v)| v.clone())
    };
    let names: std::collections::BTreeSet<&str> = old
        .iter()
        .chain(&new)
        .map(|(n, _)| n.as_str())
        .filter(|n| of(&old, n) != of(&new, n))
        .collect();
    for n in names {
        out.push(format!(
            "device '{name}': {n} {} -> {} is a creation parameter and cannot change on a live device: not changed; apply with --prune (deletes and re-creates the device: its LUNs are removed and added again, initiators see a reset) or reboot",
            attr_value(&cur.1.attrs, n),
            attr_value(&des.1.attrs, n)
        ));
    }
}

/// Drivers and targets: creation parameters of ports, LUNs that exist with other
/// settings (without `prune`), attributes that are gone.
fn driver_gaps(out: &mut Vec<String>, current: &ScstConf, desired: &ScstConf, prune: bool) {
    for d in &desired.drivers {
        let Some(cd) = current.drivers.iter().find(|x| x.name == d.name) else {
            continue;
        };
        gone(
            out,
            &format!("driver {}", d.name),
            &cd.attrs,
            &d.attrs,
            catalog::driver_dynamic_attrs(&d.name),
        );
        for t in &d.targets {
            let Some(ct) = cd.targets.iter().find(|x| x.name == t.name) else {
                continue;
            };
            let creation = if catalog::is_virtual_target(&d.name, t) {
                catalog::target_creation_params(&d.name)
            } else {
                &[]
            };
            for n in creation {
                if crate::scsi::scst::attr(&ct.attrs, n) != crate::scsi::scst::attr(&t.attrs, n) {
                    out.push(format!(
                        "target {}: {n} {} -> {} is a creation parameter of the port: not changed; remove the target from the config and apply with --prune, then add it back (or reboot)",
                        t.name,
                        attr_value(&ct.attrs, n),
                        attr_value(&t.attrs, n)
                    ));
                }
            }
            let mut skip: Vec<&str> = catalog::target_dynamic_attrs(&d.name).to_vec();
            skip.extend(creation);
            gone(
                out,
                &format!("target {}", t.name),
                &ct.attrs,
                &t.attrs,
                &skip,
            );
            if !prune {
                lun_gaps(out, &format!("target {}", t.name), &ct.luns, &t.luns);
            }
            for g in &t.groups {
                if let Some(cg) = ct.groups.iter().find(|x| x.name == g.name) {
                    let owner = format!("target {} group {}", t.name, g.name);
                    if !prune {
                        lun_gaps(out, &owner, &cg.luns, &g.luns);
                    }
                    gone(out, &owner, &cg.attrs, &g.attrs, &[]);
                }
            }
        }
    }
}

/// LUNs of `owner` that exist with another device or other attributes.
fn lun_gaps(out: &mut Vec<String>, owner: &str, cur: &[Lun], des: &[Lun]) {
    for l in des {
        if let Some(c) = cur.iter().find(|c| c.number == l.number) {
            if c.device != l.device || grouped(&c.attrs) != grouped(&l.attrs) {
                out.push(format!(
                    "{owner} LUN {}: {} -> {} not changed (the LUN exists); apply with --prune (replaces the LUN; initiators see INQUIRY DATA HAS CHANGED) or reboot",
                    l.number,
                    super::diff::lun_cmd("", c).trim(),
                    super::diff::lun_cmd("", l).trim()
                ));
            }
        }
    }
}

/// How many devices, targets, LUNs and groups the running SCST has that the config no
/// longer names (they stay without `prune`).
fn stale_count(current: &ScstConf, desired: &ScstConf) -> usize {
    let mut stale = 0usize;
    for h in &current.handlers {
        stale += h
            .devices
            .iter()
            .filter(|d| find_device(desired, &d.name).is_none())
            .count();
    }
    for cd in &current.drivers {
        let dd = desired.drivers.iter().find(|x| x.name == cd.name);
        for ct in &cd.targets {
            match dd.and_then(|x| x.targets.iter().find(|y| y.name == ct.name)) {
                None => stale += 1,
                Some(t) => {
                    stale += ct
                        .luns
                        .iter()
                        .filter(|l| !t.luns.iter().any(|x| x.number == l.number))
                        .count();
                    stale += ct
                        .groups
                        .iter()
                        .filter(|g| !t.groups.iter().any(|x| x.name == g.name))
                        .count();
                }
            }
        }
    }
    stale
        + current
            .device_groups
            .iter()
            .filter(|g| !desired.device_groups.iter().any(|x| x.name == g.name))
            .count()
}
