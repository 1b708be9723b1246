//! `[network]` of the node config: interfaces (found by name or MAC), bonds, VLANs,
//! MTUs, IPv4 and IPv6 addresses, routes and at most one DHCP client; and its
//! validation, which reports every mistake of the section at the value at fault
//! (a bond without slaves, a slave in two bonds, a VLAN id out of range, an MTU its
//! parent cannot carry, a gateway on no connected network, …). The init
//! (`init::network`) acts only on a config that passed it.
//!
//! Files: this one (the section's types), `validate.rs` (its validation, one
//! validator per kind of link, addresses and routes).

use crate::sys::net::parse_mac;
pub use crate::sys::net::{BondMode, IpNet, LacpRate, XmitHashPolicy};
use serde::{Deserialize, Serialize};

mod validate;
pub(super) use validate::validate_network;

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

#[cfg(test)]
mod tests;
