//! Validation of what the nodes serve: DRBD resources (names, minors, ports, the
//! fencing policy, a disk and an own address per node), virtual IPs, exported devices
//! (LUNs, handlers, T10 ids, what the target stack allows) and initiators.
//!
//! Reads: the parsed entries and what the node checks found; errors are recorded in
//! [`Errors`] at the value at fault.

use super::lvm::Vgs;
use super::nodes::Addrs;
use super::{claim, is_name, Names};
use crate::config::node::Cidr;
use crate::config::spans::{at, Errors};
use crate::config::storage::vg_name_ok;
use crate::config::values::is_iscsi_name;
use crate::ha::cluster::model::{
    DrbdConf, ExportConf, Fencing, InitiatorConf, NodeConf, TargetStack, VipConf,
};
use crate::scsi::scst::catalog::MAX_LUN;
use crate::scsi::scst::validate::is_wwpn;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

// ---------------------------------------------------------------------------------
// DRBD
// ---------------------------------------------------------------------------------

/// Every DRBD resource; returns their names, which VIPs and exports refer to.
/// `fencing` is `None` when the cluster's fencing is in error.
pub(super) fn check_drbd(
    errs: &mut Errors,
    drbd: &[DrbdConf],
    nodes: &Names,
    addrs: &Addrs,
    fencing: Option<&Fencing>,
) -> Names {
    let mut names = BTreeSet::new();
    let mut bad_name = false;
    let mut minors = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for (rx, d) in drbd.iter().enumerate() {
        if !is_name(&d.name) {
            bad_name = true;
            errs.at(
                at!["drbd", rx, "name"],
                format!(
                    "drbd.name `{}`: expected letters, digits, `-`, `_`, `.`",
                    d.name
                ),
            );
        } else if !names.insert(d.name.clone()) {
            bad_name = true;
            errs.at(
                at!["drbd", rx, "name"],
                format!("drbd.name `{}` is used twice", d.name),
            );
        }
        if !minors.insert(d.minor) || d.minor > 1_048_575 {
            errs.at(
                at!["drbd", rx, "minor"],
                format!(
                    "drbd `{}`: minor {} is used twice or out of range",
                    d.name, d.minor
                ),
            );
        }
        if d.port < 1024 || !ports.insert(d.port) {
            errs.at(
                at!["drbd", rx, "port"],
                format!(
                    "drbd `{}`: port {} is used twice or below 1024",
                    d.name, d.port
                ),
            );
        }
        check_drbd_policy(errs, d, rx, fencing, nodes);
        check_drbd_nodes(errs, d, rx, nodes, addrs);
    }
    Names::new(drbd.iter().map(|d| d.name.clone()).collect(), !bad_name)
}

/// Protocol C, a fencing policy the cluster's fencing supports, a known preferred node.
fn check_drbd_policy(
    errs: &mut Errors,
    d: &DrbdConf,
    rx: usize,
    fencing: Option<&Fencing>,
    nodes: &Names,
) {
    if d.protocol != "C" {
        errs.at(at!["drbd", rx, "protocol"], format!("drbd `{}`: protocol `{}`: only C is accepted (a write is acknowledged once it is on both disks)", d.name, d.protocol));
    }
    match d.fencing.as_deref() {
        None => {
            errs.at(at!["drbd", rx], format!("drbd `{}` has no fencing policy: add `fencing = \"resource-and-stonith\"` (or `\"resource-only\"`)", d.name));
        }
        Some("resource-and-stonith") => {
            if fencing == Some(&Fencing::Off) {
                errs.at(at!["drbd", rx, "fencing"], format!("drbd `{}`: fencing = \"resource-and-stonith\" needs cluster fencing, which is off; use \"resource-only\"", d.name));
            }
        }
        Some("resource-only") => {}
        Some(other) => {
            errs.at(at!["drbd", rx, "fencing"], format!("drbd `{}`: fencing `{other}`: expected \"resource-and-stonith\" or \"resource-only\" (dont-care allows split brain)", d.name));
        }
    }
    if let Some(p) = &d.preferred_node {
        if nodes.lacks(p) {
            errs.at(
                at!["drbd", rx, "preferred-node"],
                format!("drbd `{}`: preferred-node `{p}` is not a [[node]]", d.name),
            );
        }
    }
}

/// A backing disk and one of its own addresses for every node, and no other node.
fn check_drbd_nodes(errs: &mut Errors, d: &DrbdConf, rx: usize, nodes: &Names, addrs: &Addrs) {
    let mut unknown = false;
    for (node, dn) in &d.nodes {
        if nodes.lacks(node) {
            unknown = true;
            errs.at(
                at!["drbd", rx, "nodes", node],
                format!("drbd `{}`: nodes.{node}: unknown node `{node}`", d.name),
            );
        }
        if !dn.disk.starts_with("/dev/") || dn.disk.contains(['"', ' ', ';']) {
            errs.at(
                at!["drbd", rx, "nodes", node, "disk"],
                format!(
                    "drbd `{}` on `{node}`: disk `{}`: expected a /dev/ path",
                    d.name, dn.disk
                ),
            );
        }
        // Whose address it is, only for a node known to be one.
        let wrong = match dn.address.parse::<Ipv4Addr>() {
            Err(_) => true,
            Ok(ip) => nodes.has(node) && addrs.not_of(node, &ip),
        };
        if wrong {
            errs.at(at!["drbd", rx, "nodes", node, "address"], format!("drbd `{}` on `{node}`: address `{}` is not one of that node's interface addresses", d.name, dn.address));
        }
    }
    // An unknown node is likely the missing one misspelt: reported once, above.
    if unknown {
        return;
    }
    for n in nodes.all() {
        if !d.nodes.contains_key(n) {
            errs.at(
                at!["drbd", rx, "nodes"],
                format!(
                    "drbd `{}`: node `{n}` has no backing disk (`[drbd.nodes.{n}]`)",
                    d.name
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// VIPs
// ---------------------------------------------------------------------------------

/// Every VIP: a unique name and address (added to `addrs`), a DRBD resource to follow,
/// an interface name.
pub(super) fn check_vips(
    errs: &mut Errors,
    vips: &[VipConf],
    resources: &Names,
    addrs: &mut Addrs,
) {
    let mut names = BTreeSet::new();
    for (vx, v) in vips.iter().enumerate() {
        if !is_name(&v.name) || !names.insert(v.name.clone()) {
            errs.at(
                at!["vip", vx, "name"],
                format!(
                    "vip.name `{}`: expected a unique name of letters, digits, `-`, `_`",
                    v.name
                ),
            );
        }
        match Cidr::parse(&v.address) {
            None => errs.at(
                at!["vip", vx, "address"],
                format!(
                    "vip `{}`: address `{}`: expected IPv4/prefix",
                    v.name, v.address
                ),
            ),
            Some(c) => {
                if let Some(other) = claim(&mut addrs.users, c.addr, &format!("vip {}", v.name)) {
                    errs.at(
                        at!["vip", vx, "address"],
                        format!(
                            "vip `{}`: address {} is also used by {other}",
                            v.name, c.addr
                        ),
                    );
                }
            }
        }
        if resources.lacks(&v.drbd) {
            errs.at(
                at!["vip", vx, "drbd"],
                format!(
                    "vip `{}`: drbd `{}` is not a [[drbd]] resource",
                    v.name, v.drbd
                ),
            );
        }
        if v.interface.is_empty() || v.interface.len() > 15 || v.interface.contains('/') {
            errs.at(
                at!["vip", vx, "interface"],
                format!(
                    "vip `{}`: interface `{}`: expected an interface name",
                    v.name, v.interface
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------

/// What the exports seen so far use, each unique across the cluster.
#[derive(Default)]
struct ExportsSeen {
    names: BTreeSet<String>,
    /// Each exported device (a DRBD resource, or an LV of the VG on one) and the
    /// export that exports it first.
    devices: BTreeMap<(String, Option<String>), String>,
    luns: BTreeSet<u32>,
    t10_ids: BTreeSet<String>,
}

/// Every export, then the whole set: a LUN 0, and target ports to export through.
pub(super) fn check_exports(
    errs: &mut Errors,
    exports: &[ExportConf],
    target: TargetStack,
    resources: &Names,
    vgs: &Vgs,
    nodes: &[NodeConf],
) {
    let mut seen = ExportsSeen::default();
    for (ex, e) in exports.iter().enumerate() {
        let name_ok = check_export(errs, e, ex, resources, &mut seen);
        if !resources.lacks(&e.drbd) {
            check_export_lv(errs, e, ex, vgs, &mut seen);
        }
        if target == TargetStack::Lio {
            check_lio_export(errs, e, ex);
        }
        check_t10_id(errs, e, ex, name_ok, &mut seen);
    }
    if target == TargetStack::Lio {
        check_lio_one_resource(errs, exports);
    }
    if !exports.is_empty() && !seen.luns.contains(&0) {
        errs.at(
            at!["export"],
            "export: no export has lun 0; some initiators do not scan past a missing LUN 0",
        );
    }
    if !exports.is_empty()
        && nodes
            .iter()
            .all(|n| n.iscsi_targets.is_empty() && n.fc_targets.is_empty())
    {
        errs.at(
            at!["export"],
            "export: devices are exported but no node has iscsi-targets or fc-targets",
        );
    }
}

/// With LIO every export is on one DRBD resource. Each node has one TPG per iSCSI
/// target, shared by every resource's LUNs, and its one `enable` switch is the
/// target agent's port: the stop of one resource on a node (a ban, a recovery, a
/// maintenance stop) would turn it off under the other resource's LUNs. SCST has a
/// device group per resource (see `agent::shared`); LIO would need a TPG per resource.
fn check_lio_one_resource(errs: &mut Errors, exports: &[ExportConf]) {
    let Some(first) = exports.first() else {
        return;
    };
    if let Some((ex, e)) = exports
        .iter()
        .enumerate()
        .find(|(_, e)| e.drbd != first.drbd)
    {
        errs.at(
            at!["export", ex, "drbd"],
            format!(
                "export `{}`: drbd `{}`, but export `{}` is on `{}`: with target = \"lio\" every export must be on one DRBD resource, since the resources would share each node's TPG and the stop of one would disable it under the other's LUNs; use one DRBD resource (several LUNs: a VG on it, [[lvm]]) or target = \"scst\" (a device group per resource)",
                e.name, e.drbd, first.name, first.drbd
            ),
        );
    }
}

/// One export's name, DRBD resource, LUN and handler; whether the name is valid.
fn check_export(
    errs: &mut Errors,
    e: &ExportConf,
    ex: usize,
    resources: &Names,
    seen: &mut ExportsSeen,
) -> bool {
    let name_ok = is_name(&e.name) && seen.names.insert(e.name.clone());
    if !name_ok {
        errs.at(
            at!["export", ex, "name"],
            format!(
                "export.name `{}`: expected a unique device name of letters, digits, `-`, `_`, `.`",
                e.name
            ),
        );
    }
    if resources.lacks(&e.drbd) {
        errs.at(
            at!["export", ex, "drbd"],
            format!(
                "export `{}`: drbd `{}` is not a [[drbd]] resource",
                e.name, e.drbd
            ),
        );
    }
    if !seen.luns.insert(e.lun) || e.lun > MAX_LUN {
        errs.at(
            at!["export", ex, "lun"],
            format!(
                "export `{}`: lun {} is used twice or above {}",
                e.name, e.lun, MAX_LUN
            ),
        );
    }
    if e.handler != "vdisk_blockio" && e.handler != "vdisk_fileio" {
        errs.at(
            at!["export", ex, "handler"],
            format!(
                "export `{}`: handler `{}`: expected vdisk_blockio or vdisk_fileio",
                e.name, e.handler
            ),
        );
    }
    name_ok
}

/// An export's device: the whole DRBD device, or with `lv` a logical volume of the
/// `[[lvm]]` VG on it (a DRBD device that carries a VG is never exported whole: its
/// first blocks are the PV label). Each device is exported once.
fn check_export_lv(
    errs: &mut Errors,
    e: &ExportConf,
    ex: usize,
    vgs: &Vgs,
    seen: &mut ExportsSeen,
) {
    match (&e.lv, vgs.on(&e.drbd)) {
        (Some(lv), _) if !lv_name_ok(lv) => {
            errs.at(at!["export", ex, "lv"], format!("export `{}`: lv `{lv}`: expected a logical volume name (letters, digits, `+`, `_`, `.` or `-`, not starting with `-`, not `snapshot*` or `pvmove*`)", e.name));
            return;
        }
        (Some(lv), None) if vgs.known() => {
            errs.at(at!["export", ex, "lv"], format!("export `{}`: lv `{lv}` needs a volume group on drbd `{}`: add [[lvm]] with vg = \"…\" and drbd = \"{}\"", e.name, e.drbd, e.drbd));
            return;
        }
        (None, Some(vg)) => {
            errs.at(at!["export", ex, "drbd"], format!("export `{}`: drbd `{}` is the physical volume of volume group `{vg}` ([[lvm]]): export one of its logical volumes (`lv = \"…\"`), not the whole device", e.name, e.drbd));
            return;
        }
        _ => {}
    }
    if let Some(first) = claim(&mut seen.devices, (e.drbd.clone(), e.lv.clone()), &e.name) {
        // Two devices (SCST) or backstores (LIO) on one block device: two caches and
        // two sets of reservations over the same blocks, and the second open fails.
        let (field, msg) = match &e.lv {
            Some(lv) => ("lv", format!("export `{}`: lv `{lv}` on drbd `{}` is already exported as `{first}`: one logical volume is one LUN (give this export its own lv)", e.name, e.drbd)),
            None => ("drbd", format!("export `{}`: drbd `{}` is already exported as `{first}`: one DRBD device is one LUN (give this export its own [[drbd]] resource, or put a volume group on it with [[lvm]] and export its logical volumes)", e.name, e.drbd)),
        };
        errs.at(at!["export", ex, field], msg);
    }
}

/// An LVM logical volume name: as a VG name, and none of the prefixes LVM reserves.
fn lv_name_ok(lv: &str) -> bool {
    vg_name_ok(lv) && !lv.starts_with("snapshot") && !lv.starts_with("pvmove")
}

/// With `target = "lio"`: no SCST-only settings, and a name that is a backstore name
/// (a handler or name that is no SCST one either was reported by [`check_export`]).
fn check_lio_export(errs: &mut Errors, e: &ExportConf, ex: usize) {
    if e.cluster_mode {
        errs.at(at!["export", ex, "cluster-mode"], format!("export `{}`: cluster-mode is SCST's DLM mode; LIO has no cluster-mode (persistent reservations stay on the Promoted node); remove it or use target = \"scst\"", e.name));
    }
    if e.handler == "vdisk_fileio" {
        errs.at(at!["export", ex, "handler"], format!("export `{}`: handler `{}` is an SCST handler; with target = \"lio\" the DRBD device is always an iblock backstore (remove `handler`)", e.name, e.handler));
    }
    if is_name(&e.name) && e.name.contains('.') {
        errs.at(at!["export", ex, "name"], format!("export `{}`: with target = \"lio\" the name is a backstore name: letters, digits, `-` and `_`", e.name));
    }
}

/// The T10 device id (the export name unless given): printable, at most 24
/// characters, unique. Not checked when it is the name and the name is in error.
fn check_t10_id(
    errs: &mut Errors,
    e: &ExportConf,
    ex: usize,
    name_ok: bool,
    seen: &mut ExportsSeen,
) {
    if e.t10_dev_id.is_none() && !name_ok {
        return;
    }
    let id = e.t10_dev_id.clone().unwrap_or_else(|| e.name.clone());
    let path = at!["export", ex, "t10-dev-id"];
    if id.is_empty()
        || id.len() > 24
        || !id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'{' && b != b'}')
    {
        errs.at(
            path,
            format!(
                "export `{}`: t10-dev-id `{id}`: expected 1 to 24 printable characters",
                e.name
            ),
        );
    } else if !seen.t10_ids.insert(id.clone()) {
        errs.at(
            path,
            format!("export `{}`: t10-dev-id `{id}` is used twice", e.name),
        );
    }
}

// ---------------------------------------------------------------------------------
// Initiators
// ---------------------------------------------------------------------------------

/// Every initiator: a unique name, and an IQN and/or WWPNs none of which another
/// initiator uses.
pub(super) fn check_initiators(
    errs: &mut Errors,
    initiators: &[InitiatorConf],
    target: TargetStack,
) {
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (ix, i) in initiators.iter().enumerate() {
        if !is_name(&i.name) || !names.insert(i.name.clone()) {
            errs.at(
                at!["initiator", ix, "name"],
                format!(
                    "initiator.name `{}`: expected a unique name of letters, digits, `-`, `_`",
                    i.name
                ),
            );
        }
        if i.iqn.is_none() && i.wwpns.is_empty() {
            errs.at(
                at!["initiator", ix],
                format!("initiator `{}`: expected an `iqn` and/or `wwpns`", i.name),
            );
        } else if i.chap && i.iqn.is_none() {
            errs.at(
                at!["initiator", ix, "chap"],
                format!(
                    "initiator `{}`: chap needs an iqn (CHAP is iSCSI only)",
                    i.name
                ),
            );
        }
        check_initiator_ids(errs, i, ix, &mut ids);
        if target == TargetStack::Lio && !i.wwpns.is_empty() {
            errs.at(
                at!["initiator", ix, "wwpns"],
                format!(
                    "initiator `{}`: wwpns: target = \"lio\" serves iSCSI only; give an `iqn`",
                    i.name
                ),
            );
        }
    }
}

/// An initiator's IQN and WWPNs: well formed, and unique across initiators (`ids`).
fn check_initiator_ids(
    errs: &mut Errors,
    i: &InitiatorConf,
    ix: usize,
    ids: &mut BTreeSet<String>,
) {
    if let Some(iqn) = &i.iqn {
        if !is_iscsi_name(iqn) {
            errs.at(
                at!["initiator", ix, "iqn"],
                format!(
                    "initiator `{}`: iqn `{iqn}`: expected an iSCSI name",
                    i.name
                ),
            );
        } else if !ids.insert(iqn.clone()) {
            errs.at(
                at!["initiator", ix, "iqn"],
                format!("initiator `{}`: iqn `{iqn}` is listed twice", i.name),
            );
        }
    }
    for (wx, w) in i.wwpns.iter().enumerate() {
        if !is_wwpn(w) || w.bytes().any(|b| b.is_ascii_uppercase()) || !ids.insert(w.clone()) {
            errs.at(
                at!["initiator", ix, "wwpns", wx],
                format!(
                    "initiator `{}`: wwpn `{w}`: expected a unique lower-case WWPN",
                    i.name
                ),
            );
        }
    }
}
