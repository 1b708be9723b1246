//! Validation of `[[lvm]]`, the volume groups on DRBD devices: a valid and unique VG
//! name, a known DRBD resource carrying at most one VG, and no clash with a volume
//! group a node's DRBD backing disk is on (two VGs of one name on a node: LVM refuses
//! to activate either by name).
//!
//! Reads: the parsed entries and the DRBD resources' names; errors are recorded in
//! [`Errors`] at the value at fault.

use super::{claim, Names};
use crate::config::spans::{at, Errors};
use crate::config::storage::vg_name_ok;
use crate::ha::cluster::model::{DrbdConf, LvmConf};
use std::collections::{BTreeMap, BTreeSet};

/// Which DRBD resource carries which VG (`drbd` → `vg`), for the exports' checks;
/// unknown (`None`) when an `[[lvm]]` entry is in error, so an export is not blamed
/// for it.
pub(super) struct Vgs(Option<BTreeMap<String, String>>);

impl Vgs {
    /// Whether the map is known.
    pub(super) fn known(&self) -> bool {
        self.0.is_some()
    }

    /// The VG on `drbd`, when the map is known and it has one.
    pub(super) fn on(&self, drbd: &str) -> Option<&str> {
        self.0.as_ref()?.get(drbd).map(String::as_str)
    }
}

/// Every `[[lvm]]` entry; returns the DRBD → VG map the exports check against.
pub(super) fn check_lvm(
    errs: &mut Errors,
    lvm: &[LvmConf],
    resources: &Names,
    drbd: &[DrbdConf],
) -> Vgs {
    let mut ok = true;
    let mut names = BTreeSet::new();
    let mut on: BTreeMap<String, String> = BTreeMap::new();
    for (lx, l) in lvm.iter().enumerate() {
        if !vg_name_ok(&l.vg) {
            ok = false;
            errs.at(
                at!["lvm", lx, "vg"],
                format!(
                    "lvm.vg `{}`: expected a volume group name (letters, digits, `+`, `_`, `.` or `-`, not starting with `-`)",
                    l.vg
                ),
            );
        } else if !names.insert(l.vg.clone()) {
            ok = false;
            errs.at(
                at!["lvm", lx, "vg"],
                format!("lvm.vg `{}` is listed twice", l.vg),
            );
        } else if let Some((node, disk)) = clash(&l.vg, drbd) {
            ok = false;
            errs.at(
                at!["lvm", lx, "vg"],
                format!(
                    "lvm.vg `{}`: node `{node}`'s DRBD backing disk {disk} is in a volume group of that name (a VG the node activates at boot): two VGs of one name on a node cannot be told apart; rename one",
                    l.vg
                ),
            );
        }
        if resources.lacks(&l.drbd) {
            ok = false;
            errs.at(
                at!["lvm", lx, "drbd"],
                format!(
                    "lvm `{}`: drbd `{}` is not a [[drbd]] resource",
                    l.vg, l.drbd
                ),
            );
        } else if let Some(first) = claim(&mut on, l.drbd.clone(), &l.vg) {
            ok = false;
            errs.at(
                at!["lvm", lx, "drbd"],
                format!(
                    "lvm `{}`: drbd `{}` already carries volume group `{first}`: a DRBD device is the physical volume of one VG (give this VG its own [[drbd]] resource, or make its LVs in `{first}`)",
                    l.vg, l.drbd
                ),
            );
        }
    }
    Vgs(ok.then_some(on))
}

/// A node whose DRBD backing disk is an LV of a volume group named `vg`
/// (`/dev/VG/LV` or `/dev/mapper/VG-LV`), and that disk.
fn clash<'a>(vg: &str, drbd: &'a [DrbdConf]) -> Option<(&'a str, &'a str)> {
    let mapper = format!("/dev/mapper/{}-", vg.replace('-', "--"));
    let direct = format!("/dev/{vg}/");
    drbd.iter()
        .flat_map(|d| d.nodes.iter())
        .find(|(_, dn)| {
            dn.disk.starts_with(&direct)
                || dn
                    .disk
                    .strip_prefix(&mapper)
                    .is_some_and(|lv| !lv.is_empty() && !lv.starts_with('-'))
        })
        .map(|(node, dn)| (node.as_str(), dn.disk.as_str()))
}
