//! Validation of what the nodes serve: DRBD resources (names, minors, ports, the
//! fencing policy, a disk and an own address per node), virtual IPs, exported devices
//! (LUNs, handlers, T10 ids, what the target stack allows) and initiators.
//!
//! Reads: the parsed entries and the validated nodes; errors are located through
//! [`Check`].

use super::nodes::Addrs;
use super::{is_name, known, q, Check, Checked};
use crate::config::node::{is_iscsi_name, Cidr};
use crate::ha::cluster::model::{
    DrbdConf, ExportConf, Fencing, InitiatorConf, Node, TargetStack, VipConf,
};
use crate::scsi::scst::catalog::MAX_LUN;
use crate::scsi::scst::validate::is_wwpn;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// The names of the DRBD resources, which VIPs and exports refer to.
pub(super) type Resources = BTreeSet<String>;

// ---------------------------------------------------------------------------------
// DRBD
// ---------------------------------------------------------------------------------

/// Every DRBD resource; returns their names.
pub(super) fn check_drbd(
    ck: &Check,
    drbd: &[DrbdConf],
    nodes: &[Node],
    addrs: &Addrs,
    fencing: &Fencing,
) -> Checked<Resources> {
    let mut names = BTreeSet::new();
    let mut minors = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for d in drbd {
        let a = q(&d.name);
        if !is_name(&d.name) {
            return Err(ck.err(
                &a,
                "name",
                format!(
                    "drbd.name `{}`: expected letters, digits, `-`, `_`, `.`",
                    d.name
                ),
            ));
        }
        if !names.insert(d.name.clone()) {
            return Err(ck.err(&a, "name", format!("drbd.name `{}` is used twice", d.name)));
        }
        if !minors.insert(d.minor) || d.minor > 1_048_575 {
            return Err(ck.err(
                &a,
                "minor",
                format!(
                    "drbd `{}`: minor {} is used twice or out of range",
                    d.name, d.minor
                ),
            ));
        }
        if d.port < 1024 || !ports.insert(d.port) {
            return Err(ck.err(
                &a,
                "port",
                format!(
                    "drbd `{}`: port {} is used twice or below 1024",
                    d.name, d.port
                ),
            ));
        }
        check_drbd_policy(ck, d, fencing, nodes)?;
        check_drbd_nodes(ck, d, nodes, addrs)?;
    }
    Ok(names)
}

/// Protocol C, a fencing policy the cluster's fencing supports, a known preferred node.
fn check_drbd_policy(ck: &Check, d: &DrbdConf, fencing: &Fencing, nodes: &[Node]) -> Checked<()> {
    let a = q(&d.name);
    if d.protocol != "C" {
        return Err(ck.err(&a, "protocol", format!("drbd `{}`: protocol `{}`: only C is accepted (a write is acknowledged once it is on both disks)", d.name, d.protocol)));
    }
    match d.fencing.as_deref() {
        None => {
            return Err(ck.err(&a, "name", format!("drbd `{}` has no fencing policy: add `fencing = \"resource-and-stonith\"` (or `\"resource-only\"`)", d.name)));
        }
        Some("resource-and-stonith") => {
            if *fencing == Fencing::Off {
                return Err(ck.err(&a, "fencing", format!("drbd `{}`: fencing = \"resource-and-stonith\" needs cluster fencing, which is off; use \"resource-only\"", d.name)));
            }
        }
        Some("resource-only") => {}
        Some(other) => {
            return Err(ck.err(&a, "fencing", format!("drbd `{}`: fencing `{other}`: expected \"resource-and-stonith\" or \"resource-only\" (dont-care allows split brain)", d.name)));
        }
    }
    if let Some(p) = &d.preferred_node {
        if !known(nodes, p) {
            return Err(ck.err(
                &a,
                "preferred-node",
                format!("drbd `{}`: preferred-node `{p}` is not a [[node]]", d.name),
            ));
        }
    }
    Ok(())
}

/// A backing disk and one of its own addresses for every node, and no other node.
fn check_drbd_nodes(ck: &Check, d: &DrbdConf, nodes: &[Node], addrs: &Addrs) -> Checked<()> {
    let a = q(&d.name);
    for (node, dn) in &d.nodes {
        if !known(nodes, node) {
            return Err(ck.err(
                &a,
                "nodes",
                format!("drbd `{}`: nodes.{node}: unknown node `{node}`", d.name),
            ));
        }
        if !dn.disk.starts_with("/dev/") || dn.disk.contains(['"', ' ', ';']) {
            return Err(ck.err(
                &a,
                "disk",
                format!(
                    "drbd `{}` on `{node}`: disk `{}`: expected a /dev/ path",
                    d.name, dn.disk
                ),
            ));
        }
        let ok = dn
            .address
            .parse::<Ipv4Addr>()
            .ok()
            .is_some_and(|ip| addrs.get(&ip).is_some_and(|owner| owner == node));
        if !ok {
            return Err(ck.err(&a, "address", format!("drbd `{}` on `{node}`: address `{}` is not one of that node's interface addresses", d.name, dn.address)));
        }
    }
    for n in nodes {
        if !d.nodes.contains_key(&n.name) {
            return Err(ck.err(
                &a,
                "nodes",
                format!(
                    "drbd `{}`: node `{}` has no backing disk (`[drbd.nodes.{}]`)",
                    d.name, n.name, n.name
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// VIPs
// ---------------------------------------------------------------------------------

/// Every VIP: a unique name and address (added to `addrs`), a DRBD resource to follow,
/// an interface name.
pub(super) fn check_vips(
    ck: &Check,
    vips: &[VipConf],
    resources: &Resources,
    addrs: &mut Addrs,
) -> Checked<()> {
    let mut names = BTreeSet::new();
    for v in vips {
        let a = q(&v.name);
        if !is_name(&v.name) || !names.insert(v.name.clone()) {
            return Err(ck.err(
                &a,
                "name",
                format!(
                    "vip.name `{}`: expected a unique name of letters, digits, `-`, `_`",
                    v.name
                ),
            ));
        }
        let Some(c) = Cidr::parse(&v.address) else {
            return Err(ck.err(
                &a,
                "address",
                format!(
                    "vip `{}`: address `{}`: expected IPv4/prefix",
                    v.name, v.address
                ),
            ));
        };
        if let Some(other) = addrs.insert(c.addr, format!("vip {}", v.name)) {
            return Err(ck.err(
                &a,
                "address",
                format!(
                    "vip `{}`: address {} is also used by {other}",
                    v.name, c.addr
                ),
            ));
        }
        if !resources.contains(&v.drbd) {
            return Err(ck.err(
                &a,
                "drbd",
                format!(
                    "vip `{}`: drbd `{}` is not a [[drbd]] resource",
                    v.name, v.drbd
                ),
            ));
        }
        if v.interface.is_empty() || v.interface.len() > 15 || v.interface.contains('/') {
            return Err(ck.err(
                &a,
                "interface",
                format!(
                    "vip `{}`: interface `{}`: expected an interface name",
                    v.name, v.interface
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------

/// What the exports seen so far use, each unique across the cluster.
#[derive(Default)]
struct ExportsSeen {
    names: BTreeSet<String>,
    luns: BTreeSet<u32>,
    t10_ids: BTreeSet<String>,
}

/// Every export, then the whole set: a LUN 0, and target ports to export through.
pub(super) fn check_exports(
    ck: &Check,
    exports: &[ExportConf],
    target: TargetStack,
    resources: &Resources,
    nodes: &[Node],
) -> Checked<()> {
    let mut seen = ExportsSeen::default();
    for e in exports {
        check_export(ck, e, resources, &mut seen)?;
        if target == TargetStack::Lio {
            check_lio_export(ck, e)?;
        }
        check_t10_id(ck, e, &mut seen)?;
    }
    if !exports.is_empty() && !seen.luns.contains(&0) {
        return Err(ck.err(
            "",
            "lun",
            "export: no export has lun 0; some initiators do not scan past a missing LUN 0"
                .to_string(),
        ));
    }
    if !exports.is_empty()
        && nodes
            .iter()
            .all(|n| n.iscsi_targets.is_empty() && n.fc_targets.is_empty())
    {
        return Err(ck.err(
            "",
            "export",
            "export: devices are exported but no node has iscsi-targets or fc-targets".to_string(),
        ));
    }
    Ok(())
}

/// One export's name, DRBD resource, LUN and handler.
fn check_export(
    ck: &Check,
    e: &ExportConf,
    resources: &Resources,
    seen: &mut ExportsSeen,
) -> Checked<()> {
    let a = q(&e.name);
    if !is_name(&e.name) || !seen.names.insert(e.name.clone()) {
        return Err(ck.err(
            &a,
            "name",
            format!(
                "export.name `{}`: expected a unique device name of letters, digits, `-`, `_`, `.`",
                e.name
            ),
        ));
    }
    if !resources.contains(&e.drbd) {
        return Err(ck.err(
            &a,
            "drbd",
            format!(
                "export `{}`: drbd `{}` is not a [[drbd]] resource",
                e.name, e.drbd
            ),
        ));
    }
    if !seen.luns.insert(e.lun) || e.lun > MAX_LUN {
        return Err(ck.err(
            &a,
            "lun",
            format!(
                "export `{}`: lun {} is used twice or above {}",
                e.name, e.lun, MAX_LUN
            ),
        ));
    }
    if e.handler != "vdisk_blockio" && e.handler != "vdisk_fileio" {
        return Err(ck.err(
            &a,
            "handler",
            format!(
                "export `{}`: handler `{}`: expected vdisk_blockio or vdisk_fileio",
                e.name, e.handler
            ),
        ));
    }
    Ok(())
}

/// With `target = "lio"`: no SCST-only settings, and a name that is a backstore name.
fn check_lio_export(ck: &Check, e: &ExportConf) -> Checked<()> {
    let a = q(&e.name);
    if e.cluster_mode {
        return Err(ck.err(&a, "cluster-mode", format!("export `{}`: cluster-mode is SCST's DLM mode; LIO has no cluster-mode (persistent reservations stay on the Promoted node); remove it or use target = \"scst\"", e.name)));
    }
    if e.handler != "vdisk_blockio" {
        return Err(ck.err(&a, "handler", format!("export `{}`: handler `{}` is an SCST handler; with target = \"lio\" the DRBD device is always an iblock backstore (remove `handler`)", e.name, e.handler)));
    }
    if !is_name(&e.name) || e.name.contains('.') {
        return Err(ck.err(&a, "name", format!("export `{}`: with target = \"lio\" the name is a backstore name: letters, digits, `-` and `_`", e.name)));
    }
    Ok(())
}

/// The T10 device id (the export name unless given): printable, at most 24
/// characters, unique.
fn check_t10_id(ck: &Check, e: &ExportConf, seen: &mut ExportsSeen) -> Checked<()> {
    let a = q(&e.name);
    let id = e.t10_dev_id.clone().unwrap_or_else(|| e.name.clone());
    if id.is_empty()
        || id.len() > 24
        || !id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'{' && b != b'}')
    {
        return Err(ck.err(
            &a,
            "t10-dev-id",
            format!(
                "export `{}`: t10-dev-id `{id}`: expected 1 to 24 printable characters",
                e.name
            ),
        ));
    }
    if !seen.t10_ids.insert(id.clone()) {
        return Err(ck.err(
            &a,
            "t10-dev-id",
            format!("export `{}`: t10-dev-id `{id}` is used twice", e.name),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Initiators
// ---------------------------------------------------------------------------------

/// Every initiator: a unique name, and an IQN and/or WWPNs none of which another
/// initiator uses.
pub(super) fn check_initiators(
    ck: &Check,
    initiators: &[InitiatorConf],
    target: TargetStack,
) -> Checked<()> {
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for i in initiators {
        let a = q(&i.name);
        if !is_name(&i.name) || !names.insert(i.name.clone()) {
            return Err(ck.err(
                &a,
                "name",
                format!(
                    "initiator.name `{}`: expected a unique name of letters, digits, `-`, `_`",
                    i.name
                ),
            ));
        }
        if i.iqn.is_none() && i.wwpns.is_empty() {
            return Err(ck.err(
                &a,
                "iqn",
                format!("initiator `{}`: expected an `iqn` and/or `wwpns`", i.name),
            ));
        }
        check_initiator_ids(ck, i, &mut ids)?;
        if target == TargetStack::Lio && !i.wwpns.is_empty() {
            return Err(ck.err(
                &a,
                "wwpns",
                format!(
                    "initiator `{}`: wwpns: target = \"lio\" serves iSCSI only; give an `iqn`",
                    i.name
                ),
            ));
        }
        if i.chap && i.iqn.is_none() {
            return Err(ck.err(
                &a,
                "chap",
                format!(
                    "initiator `{}`: chap needs an iqn (CHAP is iSCSI only)",
                    i.name
                ),
            ));
        }
    }
    Ok(())
}

/// An initiator's IQN and WWPNs: well formed, and unique across initiators (`ids`).
fn check_initiator_ids(ck: &Check, i: &InitiatorConf, ids: &mut BTreeSet<String>) -> Checked<()> {
    let a = q(&i.name);
    if let Some(iqn) = &i.iqn {
        if !is_iscsi_name(iqn) {
            return Err(ck.err(
                &a,
                "iqn",
                format!(
                    "initiator `{}`: iqn `{iqn}`: expected an iSCSI name",
                    i.name
                ),
            ));
        }
        if !ids.insert(iqn.clone()) {
            return Err(ck.err(
                &a,
                "iqn",
                format!("initiator `{}`: iqn `{iqn}` is listed twice", i.name),
            ));
        }
    }
    for w in &i.wwpns {
        if !is_wwpn(w) || w.bytes().any(|b| b.is_ascii_uppercase()) || !ids.insert(w.clone()) {
            return Err(ck.err(
                &a,
                "wwpns",
                format!(
                    "initiator `{}`: wwpn `{w}`: expected a unique lower-case WWPN",
                    i.name
                ),
            ));
        }
    }
    Ok(())
}
