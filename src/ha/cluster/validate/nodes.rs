//! Validation of the `[[node]]` entries: names and Corosync ids, interfaces (names,
//! MACs, addresses) and the two Corosync links every node needs, target port names
//! (unique per node, as ALUA requires) and LIO portals.
//!
//! Reads: the parsed entries; errors are recorded in [`Errors`] at the value at fault.

use super::{claim, is_name, Names};
use crate::config::node::Cidr;
use crate::config::spans::{at, Errors};
use crate::config::values::is_iscsi_name;
use crate::ha::cluster::model::{InterfaceConf, Node, NodeConf, TargetStack, DEFAULT_PORTAL};
use crate::scsi::scst::validate::is_wwpn;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// Six hex bytes separated by `:`.
fn is_mac(s: &str) -> bool {
    let p: Vec<&str> = s.split(':').collect();
    p.len() == 6
        && p.iter()
            .all(|x| x.len() == 2 && x.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Every IPv4 address in use (node interfaces, then VIPs) and who uses it first.
#[derive(Default)]
pub(super) struct Addrs {
    pub users: BTreeMap<Ipv4Addr, String>,
    /// The nodes with an address in error: whether an address is theirs is not
    /// checked (it may be the one in error).
    pub unsure: BTreeSet<String>,
}

impl Addrs {
    /// Whether `ip` is known not to be an address of node `node`.
    pub fn not_of(&self, node: &str, ip: &Ipv4Addr) -> bool {
        !self.unsure.contains(node) && self.users.get(ip).is_none_or(|u| u != node)
    }
}

/// What the nodes seen so far use, each of which must be unique across the cluster.
#[derive(Default)]
struct NodesSeen {
    names: BTreeSet<String>,
    /// Whether a node name was in error.
    bad_name: bool,
    ids: BTreeSet<u32>,
    addrs: Addrs,
    /// Target port names (IQNs, WWPNs) and their node.
    ports: BTreeMap<String, String>,
    macs: BTreeSet<String>,
}

/// The nodes as [`check_nodes`] found them.
pub(super) struct CheckedNodes {
    /// The nodes without an error, in file order.
    pub nodes: Vec<Node>,
    /// The names of every node, known when none is in error.
    pub names: Names,
    pub addrs: Addrs,
}

/// The nodes, validated in file order, and the addresses they use.
pub(super) fn check_nodes(
    errs: &mut Errors,
    raw: &[NodeConf],
    target: TargetStack,
) -> CheckedNodes {
    let mut seen = NodesSeen::default();
    let mut nodes = Vec::new();
    for (i, n) in raw.iter().enumerate() {
        let before = errs.len();
        let node_id = check_node_identity(errs, n, i, &mut seen);
        let links = check_interfaces(errs, n, i, &mut seen);
        check_target_ports(errs, n, i, target, &mut seen);
        let iscsi_portals = check_portals(errs, n, i, target, &seen.addrs);
        if let (Some(node_id), Some(links), true) = (node_id, links, errs.len() == before) {
            nodes.push(Node {
                name: n.name.clone(),
                node_id,
                interfaces: n.interfaces.clone(),
                links,
                iscsi_targets: n.iscsi_targets.clone(),
                fc_targets: n.fc_targets.clone(),
                iscsi_portals,
            });
        }
    }
    let names = raw.iter().map(|n| n.name.clone()).collect();
    CheckedNodes {
        nodes,
        names: Names::new(names, !seen.bad_name),
        addrs: seen.addrs,
    }
}

/// The node's name (unique) and its Corosync id (the position from 1 unless given;
/// unique); the id, `None` when in error.
fn check_node_identity(
    errs: &mut Errors,
    n: &NodeConf,
    i: usize,
    seen: &mut NodesSeen,
) -> Option<u32> {
    if !is_name(&n.name) {
        seen.bad_name = true;
        errs.at(
            at!["node", i, "name"],
            format!(
                "node.name `{}`: expected a host name (letters, digits, `-`, `_`, `.`)",
                n.name
            ),
        );
    } else if !seen.names.insert(n.name.clone()) {
        seen.bad_name = true;
        errs.at(
            at!["node", i, "name"],
            format!("node.name `{}` is used by two nodes", n.name),
        );
    }
    let id = n.node_id.unwrap_or(i as u32 + 1);
    if id == 0 || !seen.ids.insert(id) {
        errs.at(
            at!["node", i, "node-id"],
            format!(
                "node.node-id {id} of `{}`: expected a unique number from 1",
                n.name
            ),
        );
        return None;
    }
    Some(id)
}

/// The node's interfaces (names, MACs, addresses) and its two Corosync link
/// addresses: every node needs an interface on link 0 and one on link 1. The links,
/// `None` when one is missing (reported unless an interface's link is in error).
fn check_interfaces(
    errs: &mut Errors,
    n: &NodeConf,
    i: usize,
    seen: &mut NodesSeen,
) -> Option<[Ipv4Addr; 2]> {
    let mut links: [Option<Ipv4Addr>; 2] = [None, None];
    let mut link_in_error = false;
    let mut ifnames = BTreeSet::new();
    for (fx, iface) in n.interfaces.iter().enumerate() {
        let name = at!["node", i, "interfaces", fx, "name"];
        if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains('/') {
            errs.at(
                name,
                format!(
                    "node `{}`: interface name `{}`: expected 1 to 15 characters without `/`",
                    n.name, iface.name
                ),
            );
        } else if !ifnames.insert(&iface.name) {
            errs.at(
                name,
                format!(
                    "node `{}`: interface `{}` is listed twice",
                    n.name, iface.name
                ),
            );
        }
        check_interface_addresses(errs, n, i, fx, iface, seen);
        link_in_error |= !check_link(errs, n, i, fx, iface, &mut links);
    }
    match links {
        [Some(l0), Some(l1)] => Some([l0, l1]),
        _ if link_in_error => None,
        _ => {
            let on: Vec<String> = links
                .iter()
                .enumerate()
                .filter(|(_, x)| x.is_some())
                .map(|(i, _)| i.to_string())
                .collect();
            errs.at(
                at!["node", i],
                format!(
                    "node `{}` is on corosync link(s) [{}] only: every node needs two links, an interface with `corosync-link = 0` and one with `corosync-link = 1`",
                    n.name,
                    on.join(", ")
                ),
            );
            None
        }
    }
}

/// The Corosync link an interface carries, if any, into `links` (its first address);
/// false when that link is in error.
fn check_link(
    errs: &mut Errors,
    n: &NodeConf,
    i: usize,
    fx: usize,
    iface: &InterfaceConf,
    links: &mut [Option<Ipv4Addr>; 2],
) -> bool {
    let Some(l) = iface.corosync_link else {
        return true;
    };
    let path = at!["node", i, "interfaces", fx, "corosync-link"];
    if l > 1 {
        errs.at(
            path,
            format!(
                "node `{}` interface `{}`: corosync-link {l}: expected 0 or 1",
                n.name, iface.name
            ),
        );
        return false;
    }
    let Some(first) = iface.addresses.first() else {
        errs.at(
            path,
            format!(
                "node `{}` interface `{}` carries corosync link {l} but has no address",
                n.name, iface.name
            ),
        );
        return false;
    };
    // An address that does not parse is reported by check_interface_addresses.
    let Some(first) = Cidr::parse(first) else {
        return false;
    };
    if links[l as usize].replace(first.addr).is_some() {
        errs.at(
            path,
            format!("node `{}`: two interfaces carry corosync link {l}", n.name),
        );
    }
    true
}

/// An interface's MAC and addresses, each unique in the cluster.
fn check_interface_addresses(
    errs: &mut Errors,
    n: &NodeConf,
    i: usize,
    fx: usize,
    iface: &InterfaceConf,
    seen: &mut NodesSeen,
) {
    if let Some(m) = &iface.mac {
        let path = at!["node", i, "interfaces", fx, "mac"];
        if !is_mac(m) {
            errs.at(path, format!("node `{}` interface `{}`: mac `{m}`: expected six hex bytes like 52:54:00:12:34:56", n.name, iface.name));
        } else if !seen.macs.insert(m.to_ascii_lowercase()) {
            errs.at(
                path,
                format!(
                    "node `{}` interface `{}`: mac `{m}` is used twice",
                    n.name, iface.name
                ),
            );
        }
    }
    for (ax, s) in iface.addresses.iter().enumerate() {
        let path = at!["node", i, "interfaces", fx, "addresses", ax];
        let Some(c) = Cidr::parse(s) else {
            seen.addrs.unsure.insert(n.name.clone());
            errs.at(path, format!("node `{}` interface `{}`: address `{s}`: expected IPv4/prefix like 10.0.0.1/24", n.name, iface.name));
            continue;
        };
        if let Some(other) = claim(&mut seen.addrs.users, c.addr, &n.name) {
            seen.addrs.unsure.insert(n.name.clone());
            errs.at(
                path,
                format!(
                    "node `{}` interface `{}`: address {} is also used by node `{other}`",
                    n.name, iface.name, c.addr
                ),
            );
        }
    }
}

/// The node's iSCSI target names and FC WWPNs (one port name per node: ALUA tells the
/// nodes' ports apart), and what the target stack serves.
fn check_target_ports(
    errs: &mut Errors,
    n: &NodeConf,
    i: usize,
    target: TargetStack,
    seen: &mut NodesSeen,
) {
    for (tx, t) in n.iscsi_targets.iter().enumerate() {
        let path = at!["node", i, "iscsi-targets", tx];
        if !is_iscsi_name(t) {
            errs.at(path, format!("node `{}`: iscsi-targets `{t}`: expected an iSCSI name like iqn.2026-01.org.example:san1.{}", n.name, n.name));
        } else if let Some(o) = claim(&mut seen.ports, t.clone(), &n.name) {
            errs.at(path, format!("node `{}`: target `{t}` is also a target of node `{o}`; ALUA needs one port name per node", n.name));
        }
    }
    for (wx, w) in n.fc_targets.iter().enumerate() {
        let path = at!["node", i, "fc-targets", wx];
        if !is_wwpn(w) || w.bytes().any(|b| b.is_ascii_uppercase()) {
            errs.at(path, format!("node `{}`: fc-targets `{w}`: expected a lower-case WWPN like 21:00:00:24:ff:54:09:32", n.name));
        } else if let Some(o) = claim(&mut seen.ports, w.clone(), &n.name) {
            errs.at(
                path,
                format!("node `{}`: port `{w}` is also a port of node `{o}`", n.name),
            );
        }
    }
    if target == TargetStack::Lio && !n.fc_targets.is_empty() {
        errs.at(at!["node", i, "fc-targets"], format!("node `{}`: fc-targets: target = \"lio\" serves iSCSI only (no LIO Fibre Channel fabric is rendered); remove fc-targets or use target = \"scst\"", n.name));
    }
}

/// The node's LIO portals (`target = "lio"` only): `ip:port` on 0.0.0.0 or one of the
/// node's own addresses; [`DEFAULT_PORTAL`] when none is given.
fn check_portals(
    errs: &mut Errors,
    n: &NodeConf,
    i: usize,
    target: TargetStack,
    addrs: &Addrs,
) -> Vec<String> {
    let lio = target == TargetStack::Lio;
    if !lio && !n.iscsi_portals.is_empty() {
        errs.at(at!["node", i, "iscsi-portals"], format!("node `{}`: iscsi-portals is for target = \"lio\" (SCST's iSCSI daemon listens on every address)", n.name));
        return n.iscsi_portals.clone();
    }
    let mut portals = BTreeSet::new();
    for (px, p) in n.iscsi_portals.iter().enumerate() {
        let path = at!["node", i, "iscsi-portals", px];
        let ok = p.parse::<std::net::SocketAddrV4>().ok().is_some_and(|sa| {
            sa.port() != 0 && (sa.ip().is_unspecified() || !addrs.not_of(&n.name, sa.ip()))
        });
        if !ok {
            errs.at(path, format!("node `{}`: iscsi-portals `{p}`: expected ip:port with 0.0.0.0 or one of the node's interface addresses, like 0.0.0.0:3260", n.name));
        } else if !portals.insert(p.clone()) {
            errs.at(
                path,
                format!("node `{}`: portal `{p}` is listed twice", n.name),
            );
        }
    }
    if n.iscsi_portals.is_empty() && lio {
        vec![DEFAULT_PORTAL.to_string()]
    } else {
        n.iscsi_portals.clone()
    }
}
