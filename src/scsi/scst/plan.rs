//! The ordered `/sys/kernel/scst_tgt` writes that configure SCST (reference §B10, §B11,
//! checklist §C), and the loop that performs them.
//!
//! Order (SysfsRules with globals first, so `setup_id` is set before vdisk derives
//! `t10_dev_id`/`usn` at `add_device`): global attributes; per handler its attributes,
//! then `add_device NAME p=v;…;` (`cluster_mode` last, after `t10_dev_id`) and the other
//! device attributes; per driver its attributes, then per target `add_target` (virtual
//! targets only), target attributes, default LUNs, initiator groups (create, attributes,
//! LUNs, initiators); the `ALUA` block; device groups (create, devices, target groups,
//! their targets and `rel_tgt_id`, `group_id`/`preferred`/`state`, group attributes);
//! and **last** the `enabled` writes, targets first, then drivers. [`apply`] stops at the
//! first failure, so a failed apply leaves every target port disabled.
//!
//! [`diff_plan`] moves a running SCST (described as an [`ScstConf`]) to another config:
//! disables and (with `prune`) removals come first, then the same order as above
//! restricted to what differs. Without `prune` it only adds and sets, like
//! `scstadmin -config`; with `prune` it also deletes what the desired config lacks,
//! re-creates devices whose creation parameters changed and `replace`s LUNs that
//! changed, like `-config -force`. Attributes that disappear from the config are left
//! alone (sysfs cannot reset them to defaults).
//!
//! Known gaps: creation parameters and dynamic attributes come from [`catalog`], not
//! from the `mgmt` help texts of the running kernel; scstadmin enables a qla2x00t
//! driver's hardware ports before creating NPIV ports, which this plan does not do
//! (enables stay last); deleting an initiator group with sessions fails with `EBUSY`
//! unless `scst` was loaded with `forcibly_close_sessions=1`.

use std::collections::HashSet;
use std::io;
use std::time::Duration;

use super::catalog;
use super::{
    Attr, Device, DeviceGroup, IniGroup, Lun, ScstConf, Target, TargetDriver, TargetGroup,
};

/// One write: `value` into `path`, relative to `/sys/kernel/scst_tgt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsWrite {
    pub path: String,
    pub value: String,
}

impl SysfsWrite {
    fn new(path: impl Into<String>, value: impl Into<String>) -> Self {
        SysfsWrite {
            path: path.into(),
            value: value.into(),
        }
    }

    /// Whether this write turns a target port or driver on (the tail of a plan that
    /// the init holds back until the cluster has settled).
    pub fn is_enable(&self) -> bool {
        (self.path == "enabled" || self.path.ends_with("/enabled")) && self.value == "1"
    }
}

/// The writes that apply `conf` to an empty SCST (after `-clear_config`; hardware
/// target ports exist and are disabled).
pub fn plan(conf: &ScstConf) -> Vec<SysfsWrite> {
    diff_plan(&ScstConf::default(), conf, false)
}

#[derive(Default)]
struct Phases {
    disable: Vec<SysfsWrite>,
    remove_alua: Vec<SysfsWrite>,
    remove_targets: Vec<SysfsWrite>,
    remove_devices: Vec<SysfsWrite>,
    set: Vec<SysfsWrite>,
    enable_targets: Vec<SysfsWrite>,
    enable_drivers: Vec<SysfsWrite>,
}

/// Values by name, in first-seen order of the names.
fn grouped(attrs: &[Attr]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for a in attrs {
        match out.iter_mut().find(|(n, _)| *n == a.name) {
            Some((_, v)) => {
                if !v.contains(&a.value.as_str()) {
                    v.push(&a.value)
                }
            }
            None => out.push((&a.name, vec![&a.value])),
        }
    }
    out
}

/// Attribute reconciliation. Static attributes (`file(name)`) are written when the
/// desired value differs; dynamic ones (`dynamic(name)`) are added when missing and
/// removed with `prune` when extra. Names in `skip` are handled elsewhere.
struct AttrDiff<'a> {
    dynamic: &'a [&'a str],
    skip: &'a [&'a str],
}

impl AttrDiff<'_> {
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        cur: &[Attr],
        des: &[Attr],
        prune: bool,
        file: &dyn Fn(&str) -> String,
        add: &dyn Fn(&str, &str) -> SysfsWrite,
        del: &dyn Fn(&str, &str) -> SysfsWrite,
        sets: &mut Vec<SysfsWrite>,
        dels: &mut Vec<SysfsWrite>,
    ) {
        let cur_g = grouped(cur);
        let cur_of = |n: &str| cur_g.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        for (name, values) in grouped(des) {
            if self.skip.contains(&name) {
                continue;
            }
            let have = cur_of(name).unwrap_or_default();
            if self.dynamic.contains(&name) {
                for v in &values {
                    if !have.contains(v) {
                        sets.push(add(name, v));
                    }
                }
            } else if let Some(v) = values.last() {
                if have.last() != Some(v) {
                    sets.push(SysfsWrite::new(file(name), *v));
                }
            }
        }
        if prune {
            let des_g = grouped(des);
            for (name, values) in &cur_g {
                if !self.dynamic.contains(name) {
                    continue;
                }
                let want = des_g
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                for v in values {
                    if !want.contains(v) {
                        dels.push(del(name, v));
                    }
                }
            }
        }
    }
}

/// `p1=v1;p2=v2;` with `cluster_mode` last; empty when there are none.
fn params(attrs: &[Attr], names: &[&str]) -> String {
    let mut list: Vec<&Attr> = attrs
        .iter()
        .filter(|a| names.contains(&a.name.as_str()))
        .collect();
    list.sort_by_key(|a| a.name == "cluster_mode");
    list.iter()
        .map(|a| format!("{}={};", a.name, a.value))
        .collect()
}

fn with_params(cmd: String, p: &str) -> String {
    if p.is_empty() {
        cmd
    } else {
        format!("{cmd} {p}")
    }
}

fn find_device<'a>(conf: &'a ScstConf, name: &str) -> Option<(&'a str, &'a Device)> {
    conf.handlers.iter().find_map(|h| {
        h.devices
            .iter()
            .find(|d| d.name == name)
            .map(|d| (h.name.as_str(), d))
    })
}

fn creation_sig(handler: &str, d: &Device) -> Vec<(String, String)> {
    let names = catalog::device_creation_params(handler);
    let mut v: Vec<(String, String)> = d
        .attrs
        .iter()
        .filter(|a| {
            names.contains(&a.name.as_str())
                && !catalog::WRITABLE_CREATION_PARAMS.contains(&a.name.as_str())
        })
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    v.sort();
    v
}

/// Drops a device and everything that referenced it from a config (what `del_device`
/// does to the running SCST).
fn forget_device(conf: &mut ScstConf, name: &str) {
    for h in &mut conf.handlers {
        h.devices.retain(|d| d.name != name);
    }
    for d in &mut conf.drivers {
        for t in &mut d.targets {
            t.luns.retain(|l| l.device != name);
            for g in &mut t.groups {
                g.luns.retain(|l| l.device != name);
            }
        }
    }
    for dg in &mut conf.device_groups {
        dg.devices.retain(|d| d.name != name);
    }
}

/// The writes that move SCST from `current` to `desired`. See the module doc.
pub fn diff_plan(current: &ScstConf, desired: &ScstConf, prune: bool) -> Vec<SysfsWrite> {
    let mut cur = current.clone();
    let mut ph = Phases::default();

    // Devices that must be deleted: gone from the config, or (re-created) moved to
    // another handler or with changed creation parameters.
    if prune {
        let mut doomed = Vec::new();
        for h in &current.handlers {
            for d in &h.devices {
                let keep = match find_device(desired, &d.name) {
                    None => false,
                    Some((dh, dd)) => {
                        dh == h.name && creation_sig(dh, dd) == creation_sig(&h.name, d)
                    }
                };
                if !keep {
                    doomed.push((h.name.clone(), d.name.clone()));
                }
            }
        }
        for (h, d) in doomed {
            ph.remove_devices.push(SysfsWrite::new(
                format!("handlers/{h}/mgmt"),
                format!("del_device {d}"),
            ));
            forget_device(&mut cur, &d);
        }
    }

    // Globals.
    let plain = AttrDiff {
        dynamic: &[],
        skip: &[],
    };
    let nodel = |_: &str, _: &str| SysfsWrite::new("", "");
    let mut unused = Vec::new();
    plain.run(
        &cur.globals,
        &desired.globals,
        false,
        &|n| n.to_string(),
        &nodel,
        &nodel,
        &mut ph.set,
        &mut unused,
    );

    // Handlers and devices.
    for h in &desired.handlers {
        let ch = cur.handlers.iter().find(|x| x.name == h.name);
        plain.run(
            ch.map(|x| x.attrs.as_slice()).unwrap_or(&[]),
            &h.attrs,
            false,
            &|n| format!("handlers/{}/{n}", h.name),
            &nodel,
            &nodel,
            &mut ph.set,
            &mut unused,
        );
        let creation = catalog::device_creation_params(&h.name);
        for d in &h.devices {
            let existing = find_device(&cur, &d.name);
            let cur_attrs: &[Attr] = match existing {
                Some((_, cd)) => &cd.attrs,
                None => {
                    ph.set.push(SysfsWrite::new(
                        format!("handlers/{}/mgmt", h.name),
                        with_params(
                            format!("add_device {}", d.name),
                            &params(&d.attrs, creation),
                        ),
                    ));
                    &[]
                }
            };
            // A new device got its creation parameters from add_device; an existing
            // one can only have the writable ones changed in place.
            let skip: Vec<&str> = creation
                .iter()
                .copied()
                .filter(|p| existing.is_none() || !catalog::WRITABLE_CREATION_PARAMS.contains(p))
                .collect();
            AttrDiff {
                dynamic: &[],
                skip: &skip,
            }
            .run(
                cur_attrs,
                &d.attrs,
                false,
                &|n| format!("devices/{}/{n}", d.name),
                &nodel,
                &nodel,
                &mut ph.set,
                &mut unused,
            );
        }
    }

    // Target drivers and targets.
    for d in &desired.drivers {
        let cd = cur.drivers.iter().find(|x| x.name == d.name);
        diff_driver(cd, d, prune, &mut ph);
    }
    if prune {
        for cd in &cur.drivers {
            if !desired.drivers.iter().any(|x| x.name == cd.name) {
                let empty = TargetDriver {
                    name: cd.name.clone(),
                    ..Default::default()
                };
                diff_driver(Some(cd), &empty, prune, &mut ph);
            }
        }
    }

    // ALUA block and device groups.
    plain.run(
        &cur.alua,
        &desired.alua,
        false,
        &|n| format!("device_groups/{n}"),
        &nodel,
        &nodel,
        &mut ph.set,
        &mut unused,
    );
    for dg in &desired.device_groups {
        let cdg = cur.device_groups.iter().find(|x| x.name == dg.name);
        diff_device_group(cdg, dg, prune, &mut ph);
    }
    if prune {
        for cdg in &cur.device_groups {
            if !desired.device_groups.iter().any(|x| x.name == cdg.name) {
                ph.remove_alua.push(SysfsWrite::new(
                    "device_groups/mgmt",
                    format!("del {}", cdg.name),
                ));
            }
        }
    }

    let mut out = ph.disable;
    out.extend(ph.remove_alua);
    out.extend(ph.remove_targets);
    out.extend(ph.remove_devices);
    out.extend(ph.set);
    out.extend(ph.enable_targets);
    out.extend(ph.enable_drivers);
    out
}

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
    let value = |attrs: &[Attr], n: &str| {
        attrs
            .iter()
            .rev()
            .find(|a| a.name == n)
            .map(|a| crate::util::redact::write_value(n, &a.value).into_owned())
            .unwrap_or_else(|| "(default)".into())
    };
    // Attributes that disappear: a static one keeps its value in SCST.
    let gone = |out: &mut Vec<String>, what: &str, cur: &[Attr], des: &[Attr], skip: &[&str]| {
        for (n, _) in grouped(cur) {
            if skip.contains(&n) || des.iter().any(|a| a.name == n) {
                continue;
            }
            out.push(format!(
                "{what}: attribute {n} is no longer in the config, but SCST keeps {} (sysfs cannot reset it): set it to the value you want, or reboot for the default",
                value(cur, n)
            ));
        }
    };
    gone(&mut out, "SCST", &current.globals, &desired.globals, &[]);
    for h in &desired.handlers {
        let creation = catalog::device_creation_params(&h.name);
        if let Some(ch) = current.handlers.iter().find(|x| x.name == h.name) {
            gone(
                &mut out,
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
                let (old, new) = (creation_sig(ch, cd), creation_sig(&h.name, d));
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
                        "device '{}': {n} {} -> {} is a creation parameter and cannot change on a live device: not changed; apply with --prune (deletes and re-creates the device: its LUNs are removed and added again, initiators see a reset) or reboot",
                        d.name,
                        value(&cd.attrs, n),
                        value(&d.attrs, n)
                    ));
                }
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
                    &mut out,
                    &format!("device '{}'", d.name),
                    &cd.attrs,
                    &d.attrs,
                    &fixed,
                );
            }
        }
    }
    for d in &desired.drivers {
        let Some(cd) = current.drivers.iter().find(|x| x.name == d.name) else {
            continue;
        };
        gone(
            &mut out,
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
                if super::attr(&ct.attrs, n) != super::attr(&t.attrs, n) {
                    out.push(format!(
                        "target {}: {n} {} -> {} is a creation parameter of the port: not changed; remove the target from the config and apply with --prune, then add it back (or reboot)",
                        t.name,
                        value(&ct.attrs, n),
                        value(&t.attrs, n)
                    ));
                }
            }
            let mut skip: Vec<&str> = catalog::target_dynamic_attrs(&d.name).to_vec();
            skip.extend(creation);
            gone(
                &mut out,
                &format!("target {}", t.name),
                &ct.attrs,
                &t.attrs,
                &skip,
            );
            let luns = |out: &mut Vec<String>, owner: &str, cur: &[Lun], des: &[Lun]| {
                if prune {
                    return;
                }
                for l in des {
                    if let Some(c) = cur.iter().find(|c| c.number == l.number) {
                        if c.device != l.device || grouped(&c.attrs) != grouped(&l.attrs) {
                            out.push(format!(
                                "{owner} LUN {}: {} -> {} not changed (the LUN exists); apply with --prune (replaces the LUN; initiators see INQUIRY DATA HAS CHANGED) or reboot",
                                l.number,
                                lun_cmd("", c).trim(),
                                lun_cmd("", l).trim()
                            ));
                        }
                    }
                }
            };
            luns(&mut out, &format!("target {}", t.name), &ct.luns, &t.luns);
            for g in &t.groups {
                if let Some(cg) = ct.groups.iter().find(|x| x.name == g.name) {
                    luns(
                        &mut out,
                        &format!("target {} group {}", t.name, g.name),
                        &cg.luns,
                        &g.luns,
                    );
                    gone(
                        &mut out,
                        &format!("target {} group {}", t.name, g.name),
                        &cg.attrs,
                        &g.attrs,
                        &[],
                    );
                }
            }
        }
    }
    if !prune {
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
        stale += current
            .device_groups
            .iter()
            .filter(|g| !desired.device_groups.iter().any(|x| x.name == g.name))
            .count();
        if stale > 0 {
            out.push(format!(
                "{stale} devices, targets, LUNs or groups of the running SCST are not in the config and stay: apply with --prune to remove them"
            ));
        }
    }
    out
}

fn enable_diff(
    cur: Option<bool>,
    des: Option<bool>,
    prune: bool,
    path: String,
    enable: &mut Vec<SysfsWrite>,
    disable: &mut Vec<SysfsWrite>,
) {
    let on = cur == Some(true);
    match des {
        Some(true) if !on => enable.push(SysfsWrite::new(path, "1")),
        Some(false) if on => disable.push(SysfsWrite::new(path, "0")),
        None if on && prune => disable.push(SysfsWrite::new(path, "0")),
        _ => {}
    }
}

fn diff_driver(cd: Option<&TargetDriver>, d: &TargetDriver, prune: bool, ph: &mut Phases) {
    let drv = d.name.as_str();
    let mut dels = Vec::new();
    AttrDiff {
        dynamic: catalog::driver_dynamic_attrs(drv),
        skip: &[],
    }
    .run(
        cd.map(|x| x.attrs.as_slice()).unwrap_or(&[]),
        &d.attrs,
        prune,
        &|n| format!("targets/{drv}/{n}"),
        &|n, v| {
            SysfsWrite::new(
                format!("targets/{drv}/mgmt"),
                format!("add_attribute {n} {v}"),
            )
        },
        &|n, v| {
            SysfsWrite::new(
                format!("targets/{drv}/mgmt"),
                format!("del_attribute {n} {v}"),
            )
        },
        &mut ph.set,
        &mut dels,
    );
    for t in &d.targets {
        let ct = cd.and_then(|x| x.targets.iter().find(|y| y.name == t.name));
        diff_target(drv, ct, t, prune, ph);
    }
    if prune {
        if let Some(cd) = cd {
            for ct in &cd.targets {
                if d.targets.iter().any(|t| t.name == ct.name) {
                    continue;
                }
                if catalog::is_virtual_target(drv, ct) {
                    ph.remove_targets.push(SysfsWrite::new(
                        format!("targets/{drv}/mgmt"),
                        format!("del_target {}", ct.name),
                    ));
                } else {
                    // A hardware port cannot be deleted: empty it and switch it off.
                    let empty = Target {
                        name: ct.name.clone(),
                        hw_target: ct.hw_target,
                        ..Default::default()
                    };
                    diff_target(drv, Some(ct), &empty, prune, ph);
                }
            }
        }
    }
    ph.remove_targets.extend(dels);
    let dcur = cd.and_then(|x| x.enabled);
    let path = format!("targets/{drv}/enabled");
    enable_diff(
        dcur,
        d.enabled,
        prune,
        path,
        &mut ph.enable_drivers,
        &mut ph.disable,
    );
}

fn lun_params(l: &Lun) -> String {
    l.attrs
        .iter()
        .map(|a| format!("{}={}", a.name, a.value))
        .collect::<Vec<_>>()
        .join(";")
}

fn lun_cmd(verb: &str, l: &Lun) -> String {
    with_params(format!("{verb} {} {}", l.device, l.number), &lun_params(l))
}

fn diff_luns(
    base: &str,
    cur: &[Lun],
    des: &[Lun],
    prune: bool,
    sets: &mut Vec<SysfsWrite>,
    dels: &mut Vec<SysfsWrite>,
) {
    let mgmt = format!("{base}/luns/mgmt");
    for l in des {
        match cur.iter().find(|c| c.number == l.number) {
            None => sets.push(SysfsWrite::new(&mgmt, lun_cmd("add", l))),
            Some(c) => {
                let same = c.device == l.device && grouped(&c.attrs) == grouped(&l.attrs);
                if !same && prune {
                    sets.push(SysfsWrite::new(&mgmt, lun_cmd("replace", l)));
                }
            }
        }
    }
    if prune {
        for c in cur {
            if !des.iter().any(|l| l.number == c.number) {
                dels.push(SysfsWrite::new(&mgmt, format!("del {}", c.number)));
            }
        }
    }
}

fn diff_group(
    base: &str,
    cg: Option<&IniGroup>,
    g: &IniGroup,
    prune: bool,
    ph: &mut Phases,
    dels: &mut Vec<SysfsWrite>,
) {
    let gp = format!("{base}/ini_groups/{}", g.name);
    if cg.is_none() {
        ph.set.push(SysfsWrite::new(
            format!("{base}/ini_groups/mgmt"),
            format!("create {}", g.name),
        ));
    }
    let nodel = |_: &str, _: &str| SysfsWrite::new("", "");
    AttrDiff {
        dynamic: &[],
        skip: &[],
    }
    .run(
        cg.map(|x| x.attrs.as_slice()).unwrap_or(&[]),
        &g.attrs,
        false,
        &|n| format!("{gp}/{n}"),
        &nodel,
        &nodel,
        &mut ph.set,
        dels,
    );
    diff_luns(
        &gp,
        cg.map(|x| x.luns.as_slice()).unwrap_or(&[]),
        &g.luns,
        prune,
        &mut ph.set,
        dels,
    );
    let have: HashSet<&str> = cg
        .map(|x| x.initiators.iter().map(|i| i.name.as_str()).collect())
        .unwrap_or_default();
    let want: HashSet<&str> = g.initiators.iter().map(|i| i.name.as_str()).collect();
    if prune {
        for i in cg.map(|x| x.initiators.as_slice()).unwrap_or(&[]) {
            if !want.contains(i.name.as_str()) {
                dels.insert(
                    0,
                    SysfsWrite::new(format!("{gp}/initiators/mgmt"), format!("del {}", i.name)),
                );
            }
        }
    }
    for i in &g.initiators {
        if !have.contains(i.name.as_str()) {
            ph.set.push(SysfsWrite::new(
                format!("{gp}/initiators/mgmt"),
                format!("add {}", i.name),
            ));
        }
    }
}

fn diff_target(drv: &str, ct: Option<&Target>, t: &Target, prune: bool, ph: &mut Phases) {
    let base = format!("targets/{drv}/{}", t.name);
    let virt = catalog::is_virtual_target(drv, t);
    let creation = if virt {
        catalog::target_creation_params(drv)
    } else {
        &[]
    };
    if ct.is_none() && virt {
        ph.set.push(SysfsWrite::new(
            format!("targets/{drv}/mgmt"),
            with_params(
                format!("add_target {}", t.name),
                &params(&t.attrs, creation),
            ),
        ));
    }
    let mut dels = Vec::new();
    let tname = t.name.clone();
    AttrDiff {
        dynamic: catalog::target_dynamic_attrs(drv),
        skip: creation,
    }
    .run(
        ct.map(|x| x.attrs.as_slice()).unwrap_or(&[]),
        &t.attrs,
        prune,
        &|n| format!("{base}/{n}"),
        &|n, v| {
            SysfsWrite::new(
                format!("targets/{drv}/mgmt"),
                format!("add_target_attribute {tname} {n} {v}"),
            )
        },
        &|n, v| {
            SysfsWrite::new(
                format!("targets/{drv}/mgmt"),
                format!("del_target_attribute {tname} {n} {v}"),
            )
        },
        &mut ph.set,
        &mut dels,
    );
    let mut lun_dels = Vec::new();
    diff_luns(
        &base,
        ct.map(|x| x.luns.as_slice()).unwrap_or(&[]),
        &t.luns,
        prune,
        &mut ph.set,
        &mut lun_dels,
    );
    let mut group_dels = Vec::new();
    for g in &t.groups {
        let cg = ct.and_then(|x| x.groups.iter().find(|y| y.name == g.name));
        diff_group(&base, cg, g, prune, ph, &mut group_dels);
    }
    if prune {
        for cg in ct.map(|x| x.groups.as_slice()).unwrap_or(&[]) {
            if !t.groups.iter().any(|g| g.name == cg.name) {
                group_dels.push(SysfsWrite::new(
                    format!("{base}/ini_groups/mgmt"),
                    format!("del {}", cg.name),
                ));
            }
        }
    }
    ph.remove_targets.extend(group_dels);
    ph.remove_targets.extend(lun_dels);
    ph.remove_targets.extend(dels);
    if drv != "copy_manager" {
        enable_diff(
            ct.and_then(|x| x.enabled),
            t.enabled,
            prune,
            format!("{base}/enabled"),
            &mut ph.enable_targets,
            &mut ph.disable,
        );
    }
}

/// `group_id`, then `preferred`, then the rest, then `state` (the state change is
/// what initiators see, so it comes once the group is complete).
fn tg_attr_rank(a: &Attr) -> u8 {
    match a.name.as_str() {
        "group_id" => 0,
        "preferred" => 1,
        "state" => 3,
        _ => 2,
    }
}

fn diff_target_group(
    dgp: &str,
    ctg: Option<&TargetGroup>,
    tg: &TargetGroup,
    prune: bool,
    ph: &mut Phases,
) {
    let tgp = format!("{dgp}/target_groups/{}", tg.name);
    if ctg.is_none() {
        ph.set.push(SysfsWrite::new(
            format!("{dgp}/target_groups/mgmt"),
            format!("add {}", tg.name),
        ));
    }
    let nodel = |_: &str, _: &str| SysfsWrite::new("", "");
    let mut unused = Vec::new();
    let cur_targets = ctg.map(|x| x.targets.as_slice()).unwrap_or(&[]);
    if prune {
        for ct in cur_targets {
            if !tg.targets.iter().any(|t| t.name == ct.name) {
                ph.remove_alua.push(SysfsWrite::new(
                    format!("{tgp}/mgmt"),
                    format!("del {}", ct.name),
                ));
            }
        }
    }
    for t in &tg.targets {
        let ct = cur_targets.iter().find(|x| x.name == t.name);
        if ct.is_none() {
            ph.set.push(SysfsWrite::new(
                format!("{tgp}/mgmt"),
                format!("add {}", t.name),
            ));
        }
        AttrDiff {
            dynamic: &[],
            skip: &[],
        }
        .run(
            ct.map(|x| x.attrs.as_slice()).unwrap_or(&[]),
            &t.attrs,
            false,
            &|n| format!("{tgp}/{}/{n}", t.name),
            &nodel,
            &nodel,
            &mut ph.set,
            &mut unused,
        );
    }
    let mut attrs = tg.attrs.clone();
    attrs.sort_by_key(tg_attr_rank);
    AttrDiff {
        dynamic: &[],
        skip: &[],
    }
    .run(
        ctg.map(|x| x.attrs.as_slice()).unwrap_or(&[]),
        &attrs,
        false,
        &|n| format!("{tgp}/{n}"),
        &nodel,
        &nodel,
        &mut ph.set,
        &mut unused,
    );
}

fn diff_device_group(cdg: Option<&DeviceGroup>, dg: &DeviceGroup, prune: bool, ph: &mut Phases) {
    let dgp = format!("device_groups/{}", dg.name);
    if cdg.is_none() {
        ph.set.push(SysfsWrite::new(
            "device_groups/mgmt",
            format!("create {}", dg.name),
        ));
    }
    let cur_devs: Vec<&str> = cdg
        .map(|x| x.devices.iter().map(|d| d.name.as_str()).collect())
        .unwrap_or_default();
    if prune {
        for d in &cur_devs {
            if !dg.devices.iter().any(|x| x.name == *d) {
                ph.remove_alua.push(SysfsWrite::new(
                    format!("{dgp}/devices/mgmt"),
                    format!("del {d}"),
                ));
            }
        }
    }
    for d in &dg.devices {
        if !cur_devs.contains(&d.name.as_str()) {
            ph.set.push(SysfsWrite::new(
                format!("{dgp}/devices/mgmt"),
                format!("add {}", d.name),
            ));
        }
    }
    let cur_tgs = cdg.map(|x| x.target_groups.as_slice()).unwrap_or(&[]);
    if prune {
        for ctg in cur_tgs {
            if !dg.target_groups.iter().any(|t| t.name == ctg.name) {
                ph.remove_alua.push(SysfsWrite::new(
                    format!("{dgp}/target_groups/mgmt"),
                    format!("del {}", ctg.name),
                ));
            }
        }
    }
    for tg in &dg.target_groups {
        let ctg = cur_tgs.iter().find(|x| x.name == tg.name);
        diff_target_group(&dgp, ctg, tg, prune, ph);
    }
    let nodel = |_: &str, _: &str| SysfsWrite::new("", "");
    let mut unused = Vec::new();
    AttrDiff {
        dynamic: &[],
        skip: &[],
    }
    .run(
        cdg.map(|x| x.attrs.as_slice()).unwrap_or(&[]),
        &dg.attrs,
        false,
        &|n| format!("{dgp}/{n}"),
        &nodel,
        &nodel,
        &mut ph.set,
        &mut unused,
    );
}

/// Why an apply stopped: the write that failed, and the errno when there is one. The
/// kernel's own explanation is only in its log. The message shows the value with any
/// CHAP secret redacted (`value` keeps it).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "writing '{}' to {}/{path} failed: {detail} (see dmesg for the kernel's reason)",
    crate::util::redact::write_value(.path, .value),
    super::SCST_SYSFS
)]
pub struct ApplyError {
    /// Index of the failed write in the plan.
    pub index: usize,
    pub path: String,
    pub value: String,
    pub errno: Option<i32>,
    pub detail: String,
}

impl std::fmt::Debug for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyError")
            .field("index", &self.index)
            .field("path", &self.path)
            .field(
                "value",
                &crate::util::redact::write_value(&self.path, &self.value),
            )
            .field("errno", &self.errno)
            .field("detail", &self.detail)
            .finish()
    }
}

/// How long to wait for queued work after `EAGAIN` (scstadmin: 300 polls, 1 s apart).
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub max_polls: u32,
    pub poll_interval: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            max_polls: 300,
            poll_interval: Duration::from_secs(1),
        }
    }
}

fn is_eagain(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN) || e.kind() == io::ErrorKind::WouldBlock
}

fn describe(errno: i32) -> String {
    format!("{} (errno {errno})", io::Error::from_raw_os_error(errno))
}

/// Performs the writes in order through `write(path, value)` (paths relative to
/// `/sys/kernel/scst_tgt`; one call must be one `write(2)`), stopping at the first
/// failure. A write that fails with `EAGAIN` was queued, not refused: `read` is then
/// polled on `last_sysfs_mgmt_res` until the work finishes (its result decides), up to
/// the default bound of [`ApplyOptions`]. Because `enabled` writes come last in a plan,
/// stopping early leaves the target ports disabled.
pub fn apply(
    plan: &[SysfsWrite],
    write: &mut dyn FnMut(&str, &str) -> io::Result<()>,
    read: &mut dyn FnMut(&str) -> io::Result<String>,
) -> Result<(), ApplyError> {
    apply_with(plan, write, read, &ApplyOptions::default())
}

/// [`apply`] with explicit polling bounds.
pub fn apply_with(
    plan: &[SysfsWrite],
    write: &mut dyn FnMut(&str, &str) -> io::Result<()>,
    read: &mut dyn FnMut(&str) -> io::Result<String>,
    opts: &ApplyOptions,
) -> Result<(), ApplyError> {
    for (index, w) in plan.iter().enumerate() {
        let fail = |errno: Option<i32>, detail: String| ApplyError {
            index,
            path: w.path.clone(),
            value: w.value.clone(),
            errno,
            detail,
        };
        match write(&w.path, &w.value) {
            Ok(()) => continue,
            Err(e) if is_eagain(&e) => {}
            Err(e) => return Err(fail(e.raw_os_error(), e.to_string())),
        }
        let mut done = false;
        for poll in 0..opts.max_polls {
            if poll > 0 && !opts.poll_interval.is_zero() {
                std::thread::sleep(opts.poll_interval);
            }
            match read("last_sysfs_mgmt_res") {
                Err(e) if is_eagain(&e) => continue,
                Err(e) => {
                    return Err(fail(
                        e.raw_os_error(),
                        format!("cannot read last_sysfs_mgmt_res after EAGAIN: {e}"),
                    ))
                }
                Ok(s) => match s.trim().parse::<i32>() {
                    Ok(0) => {
                        done = true;
                        break;
                    }
                    Ok(n) => return Err(fail(Some(n.abs()), describe(n.abs()))),
                    Err(_) => {
                        return Err(fail(
                            None,
                            format!("unexpected last_sysfs_mgmt_res '{}'", s.trim()),
                        ))
                    }
                },
            }
        }
        if !done {
            return Err(fail(
                Some(libc::EAGAIN),
                format!(
                    "still in progress after {} polls of last_sysfs_mgmt_res",
                    opts.max_polls
                ),
            ));
        }
    }
    Ok(())
}
