//! The network vocabulary of the [`Sys`](super::Sys) trait: what rtnetlink reports
//! about a link ([`Link`]) and what the init asks of it (create a bond or a VLAN,
//! rename, set an MTU, enslave, add an address or a route).
//!
//! [`RealSys`](super::RealSys) turns these into rtnetlink messages (`netlink.rs`);
//! [`FakeSys`](super::FakeSys) records them and keeps a model of the links so that a
//! boot step sees its own changes. The bonding names (`active-backup`, `802.3ad`,
//! `layer3+4`, …) are the kernel's own (its sysfs and `ip link` spell them so), which
//! is why the node config uses these enums as they are.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One link as `RTM_GETLINK` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The current hardware address (`aa:bb:…`, lowercase); a bond slave carries the
    /// bond's.
    pub mac: Option<String>,
    /// The permanent hardware address, when the driver reports one: what a slave had
    /// before a bond took it over.
    pub perm_mac: Option<String>,
    pub mtu: u32,
    /// The largest MTU the device takes (`IFLA_MAX_MTU`), when reported.
    pub max_mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier (`IFF_LOWER_UP`).
    pub carrier: bool,
    /// `bond`, `vlan`, `veth`, …; None for a plain device (a NIC, `lo`).
    pub kind: Option<String>,
    /// The ifindex of the bond this link is a slave of.
    pub master: Option<u32>,
}

impl Link {
    /// The MAC that identifies the hardware: the permanent one when known.
    pub fn hw_mac(&self) -> Option<&str> {
        self.perm_mac.as_deref().or(self.mac.as_deref())
    }
}

/// Bonding modes the node config offers (kernel names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
pub enum BondMode {
    /// One slave carries the traffic; another takes over when it fails. Needs nothing
    /// of the switch.
    #[default]
    #[serde(rename = "active-backup")]
    ActiveBackup,
    /// LACP: every slave carries traffic; the switch ports form a LAG.
    #[serde(rename = "802.3ad")]
    Lacp,
    /// Static aggregation, flows spread by a hash (switch ports in a static LAG).
    #[serde(rename = "balance-xor")]
    BalanceXor,
}

impl BondMode {
    pub fn name(self) -> &'static str {
        match self {
            BondMode::ActiveBackup => "active-backup",
            BondMode::Lacp => "802.3ad",
            BondMode::BalanceXor => "balance-xor",
        }
    }
}

/// How often an 802.3ad partner is asked for LACPDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LacpRate {
    /// Every 30 s.
    Slow,
    /// Every second: a failed link is seen in 3 s instead of 90 s.
    Fast,
}

impl LacpRate {
    pub fn name(self) -> &'static str {
        match self {
            LacpRate::Slow => "slow",
            LacpRate::Fast => "fast",
        }
    }
}

/// How 802.3ad and balance-xor pick a slave for a flow (kernel names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum XmitHashPolicy {
    #[serde(rename = "layer2")]
    Layer2,
    #[serde(rename = "layer2+3")]
    Layer23,
    #[serde(rename = "layer3+4")]
    Layer34,
    #[serde(rename = "encap2+3")]
    Encap23,
    #[serde(rename = "encap3+4")]
    Encap34,
    #[serde(rename = "vlan+srcmac")]
    VlanSrcMac,
}

impl XmitHashPolicy {
    pub fn name(self) -> &'static str {
        match self {
            XmitHashPolicy::Layer2 => "layer2",
            XmitHashPolicy::Layer23 => "layer2+3",
            XmitHashPolicy::Layer34 => "layer3+4",
            XmitHashPolicy::Encap23 => "encap2+3",
            XmitHashPolicy::Encap34 => "encap3+4",
            XmitHashPolicy::VlanSrcMac => "vlan+srcmac",
        }
    }
}

/// The options a bond is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondOpts {
    pub mode: BondMode,
    /// MII link monitoring interval, ms.
    pub miimon: u32,
    /// The slave preferred whenever it is up (active-backup); a link name.
    pub primary: Option<String>,
    pub lacp_rate: Option<LacpRate>,
    pub xmit_hash_policy: Option<XmitHashPolicy>,
}

/// What kind of link to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewLinkKind {
    Bond(BondOpts),
    /// An 802.1Q VLAN on `link` (a link name).
    Vlan {
        link: String,
        id: u16,
    },
}

/// A link to create (`RTM_NEWLINK` with `NLM_F_CREATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub name: String,
    pub kind: NewLinkKind,
    pub mtu: Option<u32>,
}

impl fmt::Display for NewLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NewLinkKind::Bond(b) => {
                write!(
                    f,
                    "{} bond mode={} miimon={}",
                    self.name,
                    b.mode.name(),
                    b.miimon
                )?;
                if let Some(p) = &b.primary {
                    write!(f, " primary={p}")?;
                }
                if let Some(r) = b.lacp_rate {
                    write!(f, " lacp_rate={}", r.name())?;
                }
                if let Some(x) = b.xmit_hash_policy {
                    write!(f, " xmit_hash_policy={}", x.name())?;
                }
            }
            NewLinkKind::Vlan { link, id } => write!(f, "{} vlan link={link} id={id}", self.name)?,
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu={m}")?;
        }
        Ok(())
    }
}

/// One change to an existing link (`RTM_NEWLINK` on its index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    Up,
    Down,
    Mtu(u32),
    /// A new name (the link must be down).
    Name(String),
    /// Enslave to this bond (the link must be down).
    Master(String),
}

/// An address to put on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub net: IpNet,
    /// An IPv4 label (`eth0:1`), so that tools reading labels (busybox `ifconfig`)
    /// show secondary addresses.
    pub label: Option<String>,
    /// IPv6: skip duplicate address detection (the address is usable at once).
    pub nodad: bool,
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net)?;
        if self.nodad {
            write!(f, " nodad")?;
        }
        Ok(())
    }
}

/// Who installed a route (`rtm_protocol`): `ip route` shows it as `proto static`
/// or `proto dhcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteProto {
    Static,
    Dhcp,
}

/// A route in the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: IpNet,
    pub via: Option<IpAddr>,
    /// The link it goes out of (a name); needed without `via` and for a link-local
    /// gateway.
    pub dev: Option<String>,
    pub proto: RouteProto,
}

impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if self.proto == RouteProto::Dhcp {
            write!(f, " proto dhcp")?;
        }
        Ok(())
    }
}

/// An IPv4 or IPv6 address with a prefix length: `192.0.2.15/24`, `2001:db8::15/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        (prefix <= Self::max_prefix(addr)).then_some(IpNet { addr, prefix })
    }

    fn max_prefix(addr: IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// `ADDR/LEN`; None for anything else (a bare address has no prefix).
    pub fn parse(s: &str) -> Option<IpNet> {
        let (a, p) = s.split_once('/')?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        IpNet::new(a.parse().ok()?, p.parse().ok()?)
    }

    /// The default route of a family: `0.0.0.0/0` or `::/0`.
    pub fn default_for(v6: bool) -> IpNet {
        let addr = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        IpNet { addr, prefix: 0 }
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> IpNet {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        IpNet {
            addr,
            prefix: self.prefix,
        }
    }

    /// The IPv4 broadcast address of the network (None for IPv6 and /31, /32).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        match self.addr {
            IpAddr::V4(a) if self.prefix < 31 => {
                let host = u32::MAX.checked_shr(u32::from(self.prefix)).unwrap_or(0);
                Some(Ipv4Addr::from(u32::from(a) | host))
            }
            _ => None,
        }
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        IpNet {
            addr: ip,
            prefix: self.prefix,
        }
        .network()
            == self.network()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A MAC in the form links report it (`aa:bb:cc:dd:ee:ff`, lowercase); None unless
/// `s` is six hex bytes separated by `:` (or `-`).
pub fn parse_mac(s: &str) -> Option<String> {
    let m = s.trim().to_ascii_lowercase().replace('-', ":");
    let ok = m.len() == 17
        && m.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipnet_parses_both_families() {
        let n = IpNet::parse("192.0.2.15/24").unwrap();
        assert_eq!(n.network().to_string(), "192.0.2.0/24");
        assert_eq!(n.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert!(n.contains("192.0.2.1".parse().unwrap()));
        assert!(!n.contains("192.0.3.1".parse().unwrap()));
        let n6 = IpNet::parse("2001:db8::15/64").unwrap();
        assert_eq!(n6.network().to_string(), "2001:db8::/64");
        assert!(n6.contains("2001:db8::1".parse().unwrap()));
        assert!(!n6.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(n6.broadcast(), None);
        assert_eq!(IpNet::default_for(true).to_string(), "::/0");
        assert_eq!(
            IpNet::parse("0.0.0.0/0").unwrap().network().to_string(),
            "0.0.0.0/0"
        );
        for bad in [
            "192.0.2.15",
            "192.0.2.15/33",
            "2001:db8::/129",
            "x/1",
            "1.2.3.4/+1",
        ] {
            assert!(IpNet::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn macs_are_normalised() {
        assert_eq!(
            parse_mac("52-54-00-AB-cd-01").as_deref(),
            Some("52:54:00:ab:cd:01")
        );
        assert!(parse_mac("52:54:00:ab:cd").is_none());
        assert!(parse_mac("52:54:00:ab:cd:0g").is_none());
    }
}
