//! `[network]` of the node config: interfaces (found by name or MAC), bonds, VLANs,
//! MTUs, IPv4 and IPv6 addresses, routes and at most one DHCP client; and its
//! validation, which reports every mistake of the section at the value at fault
//! (a bond without slaves, a slave in two bonds, a VLAN id out of range, an MTU its
//! parent cannot carry, a gateway on no connected network, …). The init
//! (`init::network`) acts only on a config that passed it.

use super::spans::{at, Errors};
use crate::sys::net::parse_mac;
pub use crate::sys::net::{BondMode, IpNet, LacpRate, XmitHashPolicy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// `[network]`: links (interfaces matched by name or MAC, bonds, VLANs), their MTUs
/// and addresses, routes, and at most one DHCP client. sanforge-init applies it over
/// rtnetlink (`init::network`) in the order: rename by MAC, MTUs (slaves first),
/// bonds and their slaves, VLANs, addresses, links up, routes, carrier.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Network {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bonds: Vec<Bond>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vlans: Vec<Vlan>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `[[network.interfaces]]`: a physical link, found by `name`, or by `mac` (and then
/// renamed to `name` when one is given).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Interface {
    /// The kernel's name of the link; with `mac`, the name the link that has that MAC
    /// is given. Empty: the link is found by `mac` and keeps the kernel's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// IPv4 and IPv6 addresses with prefix length, `192.0.2.15/24`, `2001:db8::15/64`.
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The interface's MAC address: the link is found by it (one image also picks its
    /// node config by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Run a DHCPv4 client on this link (lab and PXE setups; at most one link).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dhcp: bool,
}

impl Interface {
    /// How messages name it: its name, else its MAC.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.mac.clone().unwrap_or_default()
        } else {
            self.name.clone()
        }
    }
}

/// `[[network.bonds]]`: a bonding device over interfaces.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Bond {
    pub name: String,
    /// The slaves: names or MACs (of `[[network.interfaces]]` entries or of links
    /// the config does not list otherwise).
    #[serde(default)]
    pub slaves: Vec<String>,
    /// `active-backup` (the default), `802.3ad` or `balance-xor`.
    #[serde(default)]
    pub mode: BondMode,
    /// active-backup: the slave that carries the traffic whenever it is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// MII link monitoring interval in ms (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miimon: Option<u32>,
    /// 802.3ad: `slow` or `fast` LACPDUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lacp_rate: Option<LacpRate>,
    /// 802.3ad and balance-xor: `layer2`, `layer2+3`, `layer3+4`, `encap2+3`,
    /// `encap3+4` or `vlan+srcmac`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmit_hash_policy: Option<XmitHashPolicy>,
    /// The bond's MTU, which the kernel gives its slaves too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dhcp: bool,
}

/// The miimon a bond gets when the config names none.
pub const DEFAULT_MIIMON: u32 = 100;

/// `[[network.vlans]]`: an 802.1Q VLAN on an interface or a bond.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Vlan {
    /// Default `LINK.ID` (`bond0.100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The interface (name or MAC) or bond it is on.
    pub link: String,
    /// 1 to 4094.
    pub id: u32,
    /// At most the MTU of `link`; default: the link's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub dhcp: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Route {
    /// `default` or a network, IPv4 or IPv6: `198.51.100.0/24`, `2001:db8:1::/48`.
    pub to: String,
    /// The gateway; its family makes `default` IPv4 or IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The link the route goes out of (a name or MAC of the config's links): for a
    /// route without gateway, or a link-local IPv6 gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
}

/// What a link reference (`slaves`, `link`, `dev`, `primary`) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LinkId {
    Interface(usize),
    Bond(usize),
    Vlan(usize),
}

impl Network {
    /// The config's link that `r` names: an interface by MAC or name, a bond or a VLAN
    /// by name.
    pub fn resolve(&self, r: &str) -> Option<LinkId> {
        if let Some(m) = parse_mac(r) {
            return self
                .interfaces
                .iter()
                .position(|i| i.mac.as_deref().and_then(parse_mac).as_deref() == Some(&m))
                .map(LinkId::Interface);
        }
        if r.is_empty() {
            return None;
        }
        if let Some(n) = self.interfaces.iter().position(|i| i.name == r) {
            return Some(LinkId::Interface(n));
        }
        if let Some(n) = self.bonds.iter().position(|b| b.name == r) {
            return Some(LinkId::Bond(n));
        }
        (0..self.vlans.len())
            .find(|n| self.vlan_name(*n).as_deref() == Some(r))
            .map(LinkId::Vlan)
    }

    /// The name of VLAN `n`: its own, else `LINK.ID` when its link has a name.
    pub fn vlan_name(&self, n: usize) -> Option<String> {
        let v = self.vlans.get(n)?;
        if let Some(name) = &v.name {
            return Some(name.clone());
        }
        let parent = match parse_mac(&v.link) {
            Some(m) => self
                .interfaces
                .iter()
                .find(|i| i.mac.as_deref().and_then(parse_mac).as_deref() == Some(&m))
                .map(|i| i.name.clone())
                .filter(|n| !n.is_empty())?,
            None => v.link.clone(),
        };
        Some(format!("{parent}.{}", v.id))
    }

    /// The bond the interface `id` is a slave of, if any.
    pub fn bond_of(&self, id: LinkId) -> Option<&Bond> {
        if !matches!(id, LinkId::Interface(_)) {
            return None;
        }
        self.bonds
            .iter()
            .find(|b| b.slaves.iter().any(|s| self.resolve(s) == Some(id)))
    }

    /// How messages name a link of the config.
    pub fn label(&self, id: LinkId) -> String {
        match id {
            LinkId::Interface(n) => self
                .interfaces
                .get(n)
                .map(Interface::label)
                .unwrap_or_default(),
            LinkId::Bond(n) => self
                .bonds
                .get(n)
                .map(|b| b.name.clone())
                .unwrap_or_default(),
            LinkId::Vlan(n) => self.vlan_name(n).unwrap_or_else(|| {
                self.vlans
                    .get(n)
                    .map(|v| format!("vlan {} on {}", v.id, v.link))
                    .unwrap_or_default()
            }),
        }
    }

    /// The MTU a link of the config ends up with: its own, a slave's bond's, a VLAN's
    /// link's, else 1500.
    pub fn effective_mtu(&self, id: LinkId) -> u32 {
        self.mtu_of(id, 0)
    }

    fn mtu_of(&self, id: LinkId, depth: u8) -> u32 {
        const ETH: u32 = 1500;
        if depth > 3 {
            return ETH;
        }
        match id {
            LinkId::Interface(n) => {
                let own = self.interfaces.get(n).and_then(|i| i.mtu);
                match self.bond_of(id) {
                    Some(b) => b.mtu.unwrap_or(ETH),
                    None => own.unwrap_or(ETH),
                }
            }
            LinkId::Bond(n) => self.bonds.get(n).and_then(|b| b.mtu).unwrap_or(ETH),
            LinkId::Vlan(n) => {
                let v = self.vlans.get(n);
                match v.and_then(|v| v.mtu) {
                    Some(m) => m,
                    None => v
                        .and_then(|v| self.resolve(&v.link))
                        .map_or(ETH, |p| self.mtu_of(p, depth + 1)),
                }
            }
        }
    }

    /// The addresses and DHCP flag of a link of the config.
    pub fn addressing(&self, id: LinkId) -> (&[String], bool) {
        match id {
            LinkId::Interface(n) => self
                .interfaces
                .get(n)
                .map_or((&[][..], false), |i| (&i.addresses[..], i.dhcp)),
            LinkId::Bond(n) => self
                .bonds
                .get(n)
                .map_or((&[][..], false), |b| (&b.addresses[..], b.dhcp)),
            LinkId::Vlan(n) => self
                .vlans
                .get(n)
                .map_or((&[][..], false), |v| (&v.addresses[..], v.dhcp)),
        }
    }

    /// Every link of the config: interfaces, bonds, VLANs, in file order.
    pub fn all_links(&self) -> impl Iterator<Item = LinkId> + '_ {
        (0..self.interfaces.len())
            .map(LinkId::Interface)
            .chain((0..self.bonds.len()).map(LinkId::Bond))
            .chain((0..self.vlans.len()).map(LinkId::Vlan))
    }

    /// The link running DHCP, if any.
    pub fn dhcp_link(&self) -> Option<LinkId> {
        self.all_links().find(|id| self.addressing(*id).1)
    }
}

/// The kernel takes link names of 1 to 15 bytes without `/`, `:` or spaces.
fn ifname_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && !n
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
}

const NAME_RULE: &str = "expected 1 to 15 characters without `/`, `:` or spaces";

/// Where a link of the config is written: its table and index.
fn place(id: LinkId) -> (&'static str, usize) {
    match id {
        LinkId::Interface(n) => ("interfaces", n),
        LinkId::Bond(n) => ("bonds", n),
        LinkId::Vlan(n) => ("vlans", n),
    }
}

/// A unicast host address (what a link can carry).
fn unicast(ip: IpAddr) -> bool {
    !ip.is_unspecified()
        && !ip.is_multicast()
        && !ip.is_loopback()
        && ip != IpAddr::from([255, 255, 255, 255])
}

fn link_local_v6(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(a) => {
            let [first, ..] = a.segments();
            first & 0xffc0 == 0xfe80
        }
        IpAddr::V4(_) => false,
    }
}

fn check_mtu(errs: &mut Errors, id: LinkId, mtu: Option<u32>, label: &str) {
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
fn claim(names: &mut BTreeSet<String>, name: &str, errs: &mut Errors, path: &[super::spans::Seg]) {
    if !names.insert(name.to_string()) {
        errs.at(path, format!("link name `{name}` is used twice"));
    }
}

/// The `[network]` checks of `NodeConfig::validate`.
pub(super) fn validate_network(net: &Network, errs: &mut Errors) {
    let mut names = BTreeSet::new();
    validate_interfaces(net, errs, &mut names);
    validate_bonds(net, errs, &mut names);
    validate_vlans(net, errs, &mut names);
    let nets = validate_addresses(net, errs);
    validate_routes(net, errs, &nets);
}

fn validate_interfaces(net: &Network, errs: &mut Errors, names: &mut BTreeSet<String>) {
    let mut macs: BTreeMap<String, String> = BTreeMap::new();
    for (n, i) in net.interfaces.iter().enumerate() {
        let at_if = |key: &str| at!["network", "interfaces", n, key].to_vec();
        if i.name.is_empty() && i.mac.is_none() {
            errs.at(
                at!["network", "interfaces", n],
                "interface: expected a `name`, a `mac` or both",
            );
        } else if !i.name.is_empty() || i.mac.is_none() {
            if !ifname_ok(&i.name) {
                errs.at(
                    &at_if("name"),
                    format!("interface name `{}`: {NAME_RULE}", i.name),
                );
            } else if names.contains(&i.name) {
                errs.at(
                    &at_if("name"),
                    format!("interface `{}` is listed twice", i.name),
                );
            } else {
                names.insert(i.name.clone());
            }
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

fn validate_bonds(net: &Network, errs: &mut Errors, names: &mut BTreeSet<String>) {
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

fn validate_vlans(net: &Network, errs: &mut Errors, names: &mut BTreeSet<String>) {
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
fn validate_addresses(net: &Network, errs: &mut Errors) -> Vec<(LinkId, IpNet)> {
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

fn validate_routes(net: &Network, errs: &mut Errors, nets: &[(LinkId, IpNet)]) {
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

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
