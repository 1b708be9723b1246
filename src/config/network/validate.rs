//! Validation of `[network]`: every mistake of the section, each at the value at fault.

use super::{LinkId, Network};
use crate::config::spans::{at, Errors};
use crate::sys::net::parse_mac;
use crate::sys::net::{BondMode, IpNet};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The kernel takes link names of 1 to 15 bytes without `/`, `:` or spaces.
pub(super) fn ifname_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && !n
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

pub(super) const NAME_RULE: &str = "expected 1 to 15 characters without `/`, `:` or spaces";

/// Where a link of the config is written: its table and index.
pub(super) fn place(id: LinkId) -> (&'static str, usize) {
    match id {
        LinkId::Interface(n) => ("interfaces", n),
        LinkId::Bond(n) => ("bonds", n),
        LinkId::Vlan(n) => ("vlans", n),
    }
}

/// A unicast host address (what a link can carry).
pub(super) fn unicast(ip: IpAddr) -> bool {
    !ip.is_unspecified()
        && !ip.is_multicast()
        && !ip.is_loopback()
        && ip != IpAddr::from([255, 255, 255, 255])
}

pub(super) fn link_local_v6(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(a) => {
            let [first, ..] = a.segments();
            first & 0xffc0 == 0xfe80
        }
        IpAddr::V4(_) => false,
    }
}

pub(super) fn check_mtu(errs: &mut Errors, id: LinkId, mtu: Option<u32>, label: &str) {
    if let Some(m) = mtu {
        if !(68..=65535).contains(&m) {
            let (t, n) = place(id);
            errs.at(
                at!["network", t, n, "mtu"],
                format!("mtu {m} on {label} is out of range: expected 68 to 65535"),
            );
        }
    }
}

/// Records a link name; an error at `path` when it is taken.
pub(super) fn claim(
    names: &mut BTreeSet<String>,
    name: &str,
    errs: &mut Errors,
    path: &[crate::config::spans::Seg],
) {
    if !names.insert(name.to_string()) {
        errs.at(path, format!("link name `{name}` is used twice"));
    }
}

/// The `[network]` checks of `NodeConfig::validate`.
pub(crate) fn validate_network(net: &Network, errs: &mut Errors) {
    let mut names = BTreeSet::new();
    validate_interfaces(net, errs, &mut names);
    validate_bonds(net, errs, &mut names);
    validate_vlans(net, errs, &mut names);
    let nets = validate_addresses(net, errs);
    validate_routes(net, errs, &nets);
}

pub(super) fn validate_interfaces(net: &Network, errs: &mut Errors, names: &mut BTreeSet<String>) {
    let mut macs: BTreeMap<String, String> = BTreeMap::new();
    for (n, i) in net.interfaces.iter().enumerate() {
        let at_if = |key: &str| at!["network", "interfaces", n, key].to_vec();
        if i.name.is_empty() && i.mac.is_none() {
            errs.at(
                at!["network", "interfaces", n],
                "interface: expected a `name`, a `mac` or both",
            );
        } else if !i.name.is_empty() || i.mac.is_none() {
            errs.name_once(
                &at_if("name"),
                i.name.clone(),
                names,
                ifname_ok(&i.name),
                || format!("interface name `{}`: {NAME_RULE}", i.name),
                || format!("interface `{}` is listed twice", i.name),
            );
        }
        if let Some(m) = &i.mac {
            match parse_mac(m) {
                None => errs.at(
                    &at_if("mac"),
                    format!(
                        "mac `{m}` on {}: expected six hex bytes like 52:54:00:12:34:56",
                        i.label()
                    ),
                ),
                Some(m) => {
                    if let Some(first) = macs.get(&m) {
                        errs.at(
                            &at_if("mac"),
                            format!(
                                "MAC address {m} of {} is already the MAC of {first}",
                                i.label()
                            ),
                        );
                    } else {
                        macs.insert(m, i.label());
                    }
                }
            }
        }
        let id = LinkId::Interface(n);
        match net.bond_of(id) {
            Some(b) => {
                if !i.addresses.is_empty() {
                    errs.at(
                        &at_if("addresses"),
                        format!(
                            "interface {} is a slave of {}: its addresses belong on {}",
                            i.label(),
                            b.name,
                            b.name
                        ),
                    );
                }
                if i.dhcp {
                    errs.at(
                        &at_if("dhcp"),
                        format!(
                            "interface {} is a slave of {}: run DHCP on {}",
                            i.label(),
                            b.name,
                            b.name
                        ),
                    );
                }
                let bm = net.effective_mtu(LinkId::Bond(
                    net.bonds
                        .iter()
                        .position(|x| x.name == b.name)
                        .unwrap_or_default(),
                ));
                match i.mtu {
                    Some(m) if m != bm && (68..=65535).contains(&m) => errs.at(
                        &at_if("mtu"),
                        format!(
                            "mtu {m} on {} differs from the mtu of its bond {} ({bm}): a bond gives its slaves its own",
                            i.label(),
                            b.name
                        ),
                    ),
                    _ => check_mtu(errs, id, i.mtu, &i.label()),
                }
            }
            None => check_mtu(errs, id, i.mtu, &i.label()),
        }
    }
}

pub(super) fn validate_bonds(net: &Network, errs: &mut Errors, names: &mut BTreeSet<String>) {
    // Each slave (the interface entry it names, else the name or MAC) and its bond.
    let mut slave_of: BTreeMap<String, String> = BTreeMap::new();
    for (n, b) in net.bonds.iter().enumerate() {
        let at_b = |key: &str| at!["network", "bonds", n, key].to_vec();
        if !ifname_ok(&b.name) {
            errs.at(
                &at_b("name"),
                format!("bond name `{}`: {NAME_RULE}", b.name),
            );
        } else {
            claim(names, &b.name, errs, &at_b("name"));
        }
        if b.slaves.is_empty() {
            errs.at(
                &at_b("slaves"),
                format!(
                    "bond {} has no slaves: expected the names or MACs of its interfaces in `slaves`",
                    b.name
                ),
            );
        }
        for (j, s) in b.slaves.iter().enumerate() {
            let at_s = at!["network", "bonds", n, "slaves", j];
            let key = match net.resolve(s) {
                Some(LinkId::Interface(k)) => format!("#{k}"),
                Some(LinkId::Bond(_)) => {
                    errs.at(
                        at_s,
                        format!("slave `{s}` of {} is a bond: expected an interface", b.name),
                    );
                    continue;
                }
                Some(LinkId::Vlan(_)) => {
                    errs.at(
                        at_s,
                        format!("slave `{s}` of {} is a VLAN: expected an interface", b.name),
                    );
                    continue;
                }
                None => match parse_mac(s) {
                    Some(m) => m,
                    None if ifname_ok(s) && !s.contains(':') => s.clone(),
                    None => {
                        errs.at(
                            at_s,
                            format!(
                                "slave `{s}` of {}: expected an interface name or a MAC like 52:54:00:12:34:56",
                                b.name
                            ),
                        );
                        continue;
                    }
                },
            };
            match slave_of.get(&key) {
                Some(other) if *other == b.name => errs.at(
                    at_s,
                    format!("slave `{s}` is listed twice in {}", b.name),
                ),
                Some(other) => errs.at(
                    at_s,
                    format!(
                        "slave `{s}` of {} is a slave of {other} already: a link is in one bond at most",
                        b.name
                    ),
                ),
                None => {
                    slave_of.insert(key, b.name.clone());
                }
            }
        }
        if let Some(m) = b.miimon {
            if !(1..=10_000).contains(&m) {
                errs.at(
                    &at_b("miimon"),
                    format!(
                        "miimon {m} on {}: expected 1 to 10000 ms (0 turns link monitoring off: no failover)",
                        b.name
                    ),
                );
            }
        }
        let mode = b.mode.name();
        if let Some(p) = &b.primary {
            if b.mode != BondMode::ActiveBackup {
                errs.at(
                    &at_b("primary"),
                    format!(
                        "primary: only for mode active-backup ({} is {mode})",
                        b.name
                    ),
                );
            } else if !b.slaves.is_empty()
                && !b
                    .slaves
                    .iter()
                    .any(|s| s == p || net.resolve(s).is_some_and(|id| net.resolve(p) == Some(id)))
            {
                errs.at(
                    &at_b("primary"),
                    format!("primary `{p}` of {} is not one of its slaves", b.name),
                );
            }
        }
        if b.lacp_rate.is_some() && b.mode != BondMode::Lacp {
            errs.at(
                &at_b("lacp-rate"),
                format!("lacp-rate: only for mode 802.3ad ({} is {mode})", b.name),
            );
        }
        if b.xmit_hash_policy.is_some() && b.mode == BondMode::ActiveBackup {
            errs.at(
                &at_b("xmit-hash-policy"),
                format!(
                    "xmit-hash-policy: only for modes 802.3ad and balance-xor ({} is {mode})",
                    b.name
                ),
            );
        }
        check_mtu(errs, LinkId::Bond(n), b.mtu, &b.name);
    }
}

pub(super) fn validate_vlans(net: &Network, errs: &mut Errors, names: &mut BTreeSet<String>) {
    let mut ids = BTreeSet::new();
    for (n, v) in net.vlans.iter().enumerate() {
        let at_v = |key: &str| at!["network", "vlans", n, key].to_vec();
        if !(1..=4094).contains(&v.id) {
            errs.at(
                &at_v("id"),
                format!("vlan id {} on {}: expected 1 to 4094", v.id, v.link),
            );
        }
        let parent = match net.resolve(&v.link) {
            None => {
                errs.at(
                    &at_v("link"),
                    format!(
                        "vlan link `{}`: no interface or bond of that name or MAC in the config",
                        v.link
                    ),
                );
                None
            }
            Some(LinkId::Vlan(_)) => {
                errs.at(
                    &at_v("link"),
                    format!(
                        "vlan link `{}` is a VLAN: a VLAN goes on an interface or a bond",
                        v.link
                    ),
                );
                None
            }
            Some(id) => {
                if let Some(b) = net.bond_of(id) {
                    errs.at(
                        &at_v("link"),
                        format!(
                            "vlan link `{}` is a slave of {}: put the VLAN on {}",
                            v.link, b.name, b.name
                        ),
                    );
                }
                Some(id)
            }
        };
        let label = net.label(LinkId::Vlan(n));
        match net.vlan_name(n) {
            None => errs.at(
                &at_v("link"),
                format!(
                    "vlan {} on {}: its link has no name to make the VLAN's from: give the VLAN a `name`",
                    v.id, v.link
                ),
            ),
            Some(name) if !ifname_ok(&name) => {
                let (path, hint) = if v.name.is_some() {
                    (at_v("name"), "")
                } else {
                    (at_v("link"), "; give the VLAN a shorter `name`")
                };
                errs.at(&path, format!("vlan name `{name}`: {NAME_RULE}{hint}"));
            }
            Some(name) => {
                let path = if v.name.is_some() {
                    at_v("name")
                } else {
                    at_v("id")
                };
                claim(names, &name, errs, &path);
            }
        }
        if let Some(p) = parent {
            if !ids.insert((p, v.id)) {
                errs.at(
                    &at_v("id"),
                    format!("vlan {} on {} is defined twice", v.id, v.link),
                );
            }
        }
        check_mtu(errs, LinkId::Vlan(n), v.mtu, &label);
        if let (Some(m), Some(p)) = (v.mtu, parent) {
            let pm = net.effective_mtu(p);
            if m > pm && (68..=65535).contains(&m) {
                errs.at(
                    &at_v("mtu"),
                    format!(
                        "mtu {m} on {label} is above the mtu of its link {} ({pm}): the link cannot carry it",
                        net.label(p)
                    ),
                );
            }
        }
    }
}

/// Checks every address and DHCP flag; returns the networks the config's links are on.
pub(super) fn validate_addresses(net: &Network, errs: &mut Errors) -> Vec<(LinkId, IpNet)> {
    let mut seen: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut nets = Vec::new();
    let mut dhcp_on: Option<String> = None;
    for id in net.all_links() {
        let (t, n) = place(id);
        let (addrs, dhcp) = net.addressing(id);
        let label = net.label(id);
        let mut v6 = false;
        for (j, a) in addrs.iter().enumerate() {
            let path = at!["network", t, n, "addresses", j];
            match IpNet::parse(a) {
                None if a.contains(':') => errs.at(
                    path,
                    format!("address `{a}` on {label}: expected IPv6/prefix like 2001:db8::15/64"),
                ),
                None => errs.at(
                    path,
                    format!("address `{a}` on {label}: expected IPv4/prefix like 192.0.2.15/24"),
                ),
                Some(ip) if !unicast(ip.addr) => errs.at(
                    path,
                    format!("address `{a}` on {label}: not a unicast host address"),
                ),
                Some(ip) => {
                    match seen.get(&ip.addr) {
                        Some(other) => {
                            errs.at(
                            path,
                            format!(
                                "address {} on {label} is already on {other}: an address can be on one interface only",
                                ip.addr
                            ),
                        )
                        }
                        None => {
                            seen.insert(ip.addr, label.clone());
                        }
                    }
                    v6 |= ip.is_ipv6();
                    nets.push((id, ip));
                }
            }
        }
        let mtu = net.effective_mtu(id);
        // Said once, where the MTU is written: a VLAN that inherits a small MTU from
        // a link with IPv6 addresses of its own gets no second error.
        let own = match id {
            LinkId::Interface(k) => net.interfaces.get(k).and_then(|i| i.mtu),
            LinkId::Bond(k) => net.bonds.get(k).and_then(|b| b.mtu),
            LinkId::Vlan(k) => net.vlans.get(k).and_then(|v| v.mtu),
        };
        let parent_said = own.is_none()
            && match id {
                LinkId::Vlan(k) => net
                    .vlans
                    .get(k)
                    .and_then(|v| net.resolve(&v.link))
                    .is_some_and(|p| {
                        net.addressing(p)
                            .0
                            .iter()
                            .any(|a| IpNet::parse(a).is_some_and(|ip| ip.is_ipv6()))
                    }),
                _ => false,
            };
        if v6 && mtu < 1280 && !parent_said {
            errs.at(
                at!["network", t, n, "mtu"],
                format!("mtu {mtu} on {label}: IPv6 needs at least 1280"),
            );
        }
        if dhcp {
            match &dhcp_on {
                Some(first) => errs.at(
                    at!["network", t, n, "dhcp"],
                    format!("dhcp is already on {first}: at most one link runs DHCP"),
                ),
                None => dhcp_on = Some(label),
            }
        }
    }
    nets
}

pub(super) fn validate_routes(net: &Network, errs: &mut Errors, nets: &[(LinkId, IpNet)]) {
    let dhcp = net.dhcp_link();
    let mut dsts = BTreeSet::new();
    for (n, r) in net.routes.iter().enumerate() {
        let at_r = |key: &str| at!["network", "routes", n, key].to_vec();
        let via = match &r.via {
            None => None,
            Some(v) => match v.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    let family = if v.contains(':') { "IPv6" } else { "IPv4" };
                    errs.at(
                        &at_r("via"),
                        format!("route via `{v}`: expected an {family} address"),
                    );
                    continue;
                }
            },
        };
        let dst = if r.to == "default" {
            if via.is_none() {
                errs.at(
                    &at_r("to"),
                    "route to default: expected `via`, the gateway (whose family makes it IPv4 or IPv6)",
                );
            }
            via.map(|g| IpNet::default_for(g.is_ipv6()))
        } else {
            let d = IpNet::parse(&r.to);
            if d.is_none() {
                errs.at(
                    &at_r("to"),
                    format!(
                        "route to `{}`: expected `default`, IPv4/prefix or IPv6/prefix",
                        r.to
                    ),
                );
            }
            if r.via.is_none() && r.dev.is_none() {
                errs.at(
                    at!["network", "routes", n],
                    format!(
                        "route to {}: expected `via` (a gateway), `dev` (a link) or both",
                        r.to
                    ),
                );
            }
            d
        };
        let dev = match &r.dev {
            None => None,
            Some(d) => match net.resolve(d) {
                None => {
                    errs.at(
                        &at_r("dev"),
                        format!(
                            "route dev `{d}`: no interface, bond or VLAN of that name or MAC in the config"
                        ),
                    );
                    continue;
                }
                Some(id) => {
                    if let Some(b) = net.bond_of(id) {
                        errs.at(
                            &at_r("dev"),
                            format!("route dev `{d}` is a slave of {}: use {}", b.name, b.name),
                        );
                    }
                    Some(id)
                }
            },
        };
        if let (Some(d), Some(g)) = (dst, via) {
            if d.is_ipv6() != g.is_ipv6() {
                let (gf, df) = if g.is_ipv6() {
                    ("IPv6", "IPv4")
                } else {
                    ("IPv4", "IPv6")
                };
                errs.at(
                    &at_r("via"),
                    format!("route via {g} is {gf} but its `to` ({}) is {df}", r.to),
                );
                continue;
            }
        }
        if let Some(g) = via {
            if link_local_v6(g) {
                if dev.is_none() {
                    errs.at(
                        &at_r("via"),
                        format!("route via {g} is link-local: name its link in `dev`"),
                    );
                }
            } else {
                let dhcp_covers = g.is_ipv4() && dhcp.is_some() && (dev.is_none() || dev == dhcp);
                let onlink = nets
                    .iter()
                    .any(|(id, ip)| dev.is_none_or(|d| d == *id) && ip.contains(g));
                if !dhcp_covers && !onlink {
                    let whom = dev.map_or("the node".to_string(), |d| net.label(d));
                    errs.at(
                        &at_r("via"),
                        format!(
                            "route via {g}: no address of {whom} is in a network that holds it (a gateway must be on a connected network)"
                        ),
                    );
                }
            }
        }
        if let Some(d) = dst {
            if !dsts.insert(d.network()) {
                errs.at(&at_r("to"), format!("route to {} is defined twice", r.to));
            }
            if d.prefix == 0 && !d.is_ipv6() {
                if let Some(l) = dhcp {
                    errs.at(
                        &at_r("to"),
                        format!(
                            "route to default: {} gets its IPv4 default route from DHCP",
                            net.label(l)
                        ),
                    );
                }
            }
        }
    }
}
