//! [`diff_plan`]: the writes that move a running SCST to another config.

use super::*;
use crate::scsi::scst::catalog;
use crate::scsi::scst::{
    Attr, DeviceGroup, IniGroup, Lun, ScstConf, Target, TargetDriver, TargetGroup,
};

/// The writes that move SCST from `current` to `desired`. See the module doc.
pub fn diff_plan(current: &ScstConf, desired: &ScstConf, prune: bool) -> Vec<SysfsWrite> {
    let mut cur = current.clone();
    let mut ph = Phases::default();

    // Devices that must be deleted: gone from the config, or (re-created) moved to
    // another handler or with changed creation parameters.
    if prune {
        remove_devices(current, desired, &mut cur, &mut ph);
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

/// Deletes the devices of `current` that `desired` does not have, or has on another
/// handler or with other creation parameters (they are re-created), and forgets them
/// in `cur`.
fn remove_devices(current: &ScstConf, desired: &ScstConf, cur: &mut ScstConf, ph: &mut Phases) {
    let mut doomed = Vec::new();
    for h in &current.handlers {
        for d in &h.devices {
            let keep = match find_device(desired, &d.name) {
                None => false,
                Some((dh, dd)) => dh == h.name && creation_sig(dh, dd) == creation_sig(&h.name, d),
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
        forget_device(cur, &d);
    }
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

pub(super) fn lun_cmd(verb: &str, l: &Lun) -> String {
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
