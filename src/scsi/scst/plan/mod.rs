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

use super::{Attr, Device, ScstConf};

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

mod apply;
mod diff;
mod gaps;

pub use apply::{apply, apply_with, ApplyError, ApplyOptions};
pub use diff::diff_plan;
pub use gaps::live_gaps;
