//! Validation of the `[[node]]` entries: names and Corosync ids, interfaces (names,
//! MACs, addresses) and the two Corosync links every node needs, target port names
//! (unique per node, as ALUA requires) and LIO portals.
//!
//! Reads: the parsed entries; errors are located through [`Check`].

use super::{is_name, q, Check, Checked};
use crate::config::node::{is_iscsi_name, Cidr};
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

/// Every IPv4 address in use (node interfaces, then VIPs) and who uses it.
pub(super) type Addrs = BTreeMap<Ipv4Addr, String>;

/// What the nodes seen so far use, each of which must be unique across the cluster.
#[derive(Default)]
struct NodesSeen {
    names: BTreeSet<String>,
    ids: BTreeSet<u32>,
    addrs: Addrs,
    /// Target port names (IQNs, WWPNs) and their node.
    ports: BTreeMap<String, String>,
    macs: BTreeSet<String>,
}

/// The nodes, validated in file order, and the addresses they use.
pub(super) fn check_nodes(
    ck: &Check,
    raw: &[NodeConf],
    target: TargetStack,
) -> Checked<(Vec<Node>, Addrs)> {
    let mut seen = NodesSeen::default();
    let mut nodes = Vec::new();
    for (i, n) in raw.iter().enumerate() {
        let node_id = check_node_identity(ck, n, i, &mut seen)?;
        let links = check_interfaces(ck, n, &mut seen)?;
        check_target_ports(ck, n, target, &mut seen)?;
        let iscsi_portals = check_portals(ck, n, target, &seen.addrs)?;
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
    Ok((nodes, seen.addrs))
}

/// The node's name (unique) and its Corosync id (the position from 1 unless given;
/// unique).
fn check_node_identity(ck: &Check, n: &NodeConf, i: usize, seen: &mut NodesSeen) -> Checked<u32> {
    let a = q(&n.name);
    if !is_name(&n.name) {
        return Err(ck.err(
            &a,
            "name",
            format!(
                "node.name `{}`: expected a host name (letters, digits, `-`, `_`, `.`)",
                n.name
            ),
        ));
    }
    if !seen.names.insert(n.name.clone()) {
        return Err(ck.err(
            &a,
            "name",
            format!("node.name `{}` is used by two nodes", n.name),
        ));
    }
    let id = n.node_id.unwrap_or(i as u32 + 1);
    if id == 0 || !seen.ids.insert(id) {
        return Err(ck.err(
            &a,
            "node-id",
            format!(
                "node.node-id {id} of `{}`: expected a unique number from 1",
                n.name
            ),
        ));
    }
    Ok(id)
}

/// The node's interfaces (names, MACs, addresses) and its two Corosync link
/// addresses: every node needs an interface on link 0 and one on link 1.
fn check_interfaces(ck: &Check, n: &NodeConf, seen: &mut NodesSeen) -> Checked<[Ipv4Addr; 2]> {
    let a = q(&n.name);
    let mut links: [Option<Ipv4Addr>; 2] = [None, None];
    let mut ifnames = BTreeSet::new();
    for iface in &n.interfaces {
        if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains('/') {
            return Err(ck.err(
                &a,
                "interfaces",
                format!(
                    "node `{}`: interface name `{}`: expected 1 to 15 characters without `/`",
                    n.name, iface.name
                ),
            ));
        }
        if !ifnames.insert(&iface.name) {
            return Err(ck.err(
                &a,
                "interfaces",
                format!(
                    "node `{}`: interface `{}` is listed twice",
                    n.name, iface.name
                ),
            ));
        }
        check_interface_addresses(ck, n, iface, seen)?;
        if let Some(l) = iface.corosync_link {
            if l > 1 {
                return Err(ck.err(
                    &a,
                    "corosync-link",
                    format!(
                        "node `{}` interface `{}`: corosync-link {l}: expected 0 or 1",
                        n.name, iface.name
                    ),
                ));
            }
            let Some(first) = iface.addresses.first().and_then(|s| Cidr::parse(s)) else {
                return Err(ck.err(
                    &a,
                    "corosync-link",
                    format!(
                        "node `{}` interface `{}` carries corosync link {l} but has no address",
                        n.name, iface.name
                    ),
                ));
            };
            if links[l as usize].replace(first.addr).is_some() {
                return Err(ck.err(
                    &a,
                    "corosync-link",
                    format!("node `{}`: two interfaces carry corosync link {l}", n.name),
                ));
            }
        }
    }
    let [Some(l0), Some(l1)] = links else {
        let on: Vec<String> = links
            .iter()
            .enumerate()
            .filter(|(_, x)| x.is_some())
            .map(|(i, _)| i.to_string())
            .collect();
        return Err(ck.err(
            &a,
            "corosync-link",
            format!(
                "node `{}` is on corosync link(s) [{}] only: every node needs two links, an interface with `corosync-link = 0` and one with `corosync-link = 1`",
                n.name,
                on.join(", ")
            ),
        ));
    };
    Ok([l0, l1])
}

/// An interface's MAC and addresses, each unique in the cluster.
fn check_interface_addresses(
    ck: &Check,
    n: &NodeConf,
    iface: &InterfaceConf,
    seen: &mut NodesSeen,
) -> Checked<()> {
    if let Some(m) = &iface.mac {
        if !is_mac(m) {
            return Err(ck.err(&q(m), "mac", format!("node `{}` interface `{}`: mac `{m}`: expected six hex bytes like 52:54:00:12:34:56", n.name, iface.name)));
        }
        if !seen.macs.insert(m.to_ascii_lowercase()) {
            return Err(ck.err(
                &q(m),
                "mac",
                format!(
                    "node `{}` interface `{}`: mac `{m}` is used twice",
                    n.name, iface.name
                ),
            ));
        }
    }
    for s in &iface.addresses {
        let Some(c) = Cidr::parse(s) else {
            return Err(ck.err(&q(s), "addresses", format!("node `{}` interface `{}`: address `{s}`: expected IPv4/prefix like 10.0.0.1/24", n.name, iface.name)));
        };
        if let Some(other) = seen.addrs.insert(c.addr, n.name.clone()) {
            return Err(ck.err(
                &q(s),
                "addresses",
                format!(
                    "node `{}` interface `{}`: address {} is also used by node `{other}`",
                    n.name, iface.name, c.addr
                ),
            ));
        }
    }
    Ok(())
}

/// The node's iSCSI target names and FC WWPNs (one port name per node: ALUA tells the
/// nodes' ports apart), and what the target stack serves.
fn check_target_ports(
    ck: &Check,
    n: &NodeConf,
    target: TargetStack,
    seen: &mut NodesSeen,
) -> Checked<()> {
    for t in &n.iscsi_targets {
        if !is_iscsi_name(t) {
            return Err(ck.err(&q(t), "iscsi-targets", format!("node `{}`: iscsi-targets `{t}`: expected an iSCSI name like iqn.2026-01.org.example:san1.{}", n.name, n.name)));
        }
        if let Some(o) = seen.ports.insert(t.clone(), n.name.clone()) {
            return Err(ck.err(&q(t), "iscsi-targets", format!("node `{}`: target `{t}` is also a target of node `{o}`; ALUA needs one port name per node", n.name)));
        }
    }
    for w in &n.fc_targets {
        if !is_wwpn(w) || w.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ck.err(&q(w), "fc-targets", format!("node `{}`: fc-targets `{w}`: expected a lower-case WWPN like 21:00:00:24:ff:54:09:32", n.name)));
        }
        if let Some(o) = seen.ports.insert(w.clone(), n.name.clone()) {
            return Err(ck.err(
                &q(w),
                "fc-targets",
                format!("node `{}`: port `{w}` is also a port of node `{o}`", n.name),
            ));
        }
    }
    if target == TargetStack::Lio && !n.fc_targets.is_empty() {
        return Err(ck.err(&q(&n.name), "fc-targets", format!("node `{}`: fc-targets: target = \"lio\" serves iSCSI only (no LIO Fibre Channel fabric is rendered); remove fc-targets or use target = \"scst\"", n.name)));
    }
    Ok(())
}

/// The node's LIO portals (`target = "lio"` only): `ip:port` on 0.0.0.0 or one of the
/// node's own addresses; [`DEFAULT_PORTAL`] when none is given.
fn check_portals(
    ck: &Check,
    n: &NodeConf,
    target: TargetStack,
    addrs: &Addrs,
) -> Checked<Vec<String>> {
    let lio = target == TargetStack::Lio;
    if !lio && !n.iscsi_portals.is_empty() {
        return Err(ck.err(&q(&n.name), "iscsi-portals", format!("node `{}`: iscsi-portals is for target = \"lio\" (SCST's iSCSI daemon listens on every address)", n.name)));
    }
    let mut portals = BTreeSet::new();
    for p in &n.iscsi_portals {
        let ok = p.parse::<std::net::SocketAddrV4>().ok().is_some_and(|sa| {
            sa.port() != 0
                && (sa.ip().is_unspecified() || addrs.get(sa.ip()).is_some_and(|o| *o == n.name))
        });
        if !ok {
            return Err(ck.err(&q(p), "iscsi-portals", format!("node `{}`: iscsi-portals `{p}`: expected ip:port with 0.0.0.0 or one of the node's interface addresses, like 0.0.0.0:3260", n.name)));
        }
        if !portals.insert(p.clone()) {
            return Err(ck.err(
                &q(p),
                "iscsi-portals",
                format!("node `{}`: portal `{p}` is listed twice", n.name),
            ));
        }
    }
    Ok(if n.iscsi_portals.is_empty() && lio {
        vec![DEFAULT_PORTAL.to_string()]
    } else {
        n.iscsi_portals.clone()
    })
}
