//! rtnetlink for [`RealSys`](super::RealSys): one blocking `NETLINK_ROUTE` socket
//! (netlink-sys, no async runtime), messages built and parsed with
//! netlink-packet-route. Each request asks for an acknowledgement and waits for it
//! (or for the end of its dump) with a receive timeout, so a silent kernel cannot hang
//! PID 1. The socket belongs to the network namespace of the thread that opens it:
//! [`RealSys`](super::RealSys) opens it at its first network call.

use super::net::{
    BondMode, BondOpts, IfAddr, LacpRate, Link, LinkChange, NewLink, NewLinkKind, RouteProto,
    RouteSpec, XmitHashPolicy,
};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    BondLacpRate, BondMode as NlBondMode, BondXmitHashPolicy, InfoBond, InfoData, InfoKind,
    InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Large enough for any one datagram of a link dump (the kernel sends at most 32 KiB).
const RECV_BUF: usize = 64 * 1024;
/// How long one reply may take before the request fails with `EAGAIN`.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open rtnetlink socket.
pub(super) struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl std::fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rtnl(fd {})", self.sock.as_raw_fd())
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Rtnl {
    pub(super) fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        set_recv_timeout(&sock, REPLY_TIMEOUT)?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends `msg` and collects the replies: the messages of a dump, or nothing for
    /// an acknowledged change. A negative acknowledgement is its errno.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        let sent = self.sock.send(&buf, 0)?;
        if sent != buf.len() {
            return Err(invalid(format!(
                "short netlink send ({sent} of {} bytes)",
                buf.len()
            )));
        }
        let mut out = Vec::new();
        let mut rbuf = vec![0u8; RECV_BUF];
        loop {
            let n = self.sock.recv(&mut &mut rbuf[..], libc::MSG_TRUNC)?;
            if n > rbuf.len() {
                return Err(invalid(format!("netlink reply of {n} bytes truncated")));
            }
            let mut off = 0;
            while off < n {
                let bytes = rbuf
                    .get(off..n)
                    .ok_or_else(|| invalid("netlink reply out of bounds"))?;
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| invalid(format!("malformed netlink reply: {e}")))?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(c) => Err(io::Error::from_raw_os_error(c.get().saturating_abs())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
        }
    }

    /// A change the kernel acknowledges.
    fn change(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.request(msg, NLM_F_ACK | flags).map(|_| ())
    }

    pub(super) fn links(&mut self) -> io::Result<Vec<Link>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut links: Vec<Link> = replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(parse_link(&l)),
                _ => None,
            })
            .collect();
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    fn index(&mut self, name: &str) -> io::Result<u32> {
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    pub(super) fn link_add(&mut self, link: &NewLink) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(link.name.clone()));
        if let Some(m) = link.mtu {
            msg.attributes.push(LinkAttribute::Mtu(m));
        }
        let info = match &link.kind {
            NewLinkKind::Bond(b) => {
                let primary = match &b.primary {
                    Some(p) => Some(self.index(p)?),
                    None => None,
                };
                vec![
                    LinkInfo::Kind(InfoKind::Bond),
                    LinkInfo::Data(InfoData::Bond(bond_options(b, primary))),
                ]
            }
            NewLinkKind::Vlan { link: parent, id } => {
                msg.attributes
                    .push(LinkAttribute::Link(self.index(parent)?));
                vec![
                    LinkInfo::Kind(InfoKind::Vlan),
                    LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(*id)])),
                ]
            }
        };
        msg.attributes.push(LinkAttribute::LinkInfo(info.clone()));
        match self.change(
            RouteNetlinkMessage::NewLink(msg.clone()),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // The bonding driver makes bond0 when it is loaded (max_bonds=1): take
                // that one over; anything else of the name is a conflict.
                let existing = self.links()?.into_iter().find(|l| l.name == link.name);
                match existing {
                    Some(l)
                        if l.kind.as_deref() == Some("bond")
                            && matches!(link.kind, NewLinkKind::Bond(_)) =>
                    {
                        msg.header.index = l.index;
                        msg.attributes
                            .retain(|a| !matches!(a, LinkAttribute::IfName(_)));
                        self.change(RouteNetlinkMessage::NewLink(msg), 0)
                    }
                    _ => Err(e),
                }
            }
            r => r,
        }
    }

    pub(super) fn link_set(&mut self, ifname: &str, change: &LinkChange) -> io::Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = self.index(ifname)?;
        match change {
            LinkChange::Up => {
                msg.header.flags = LinkFlags::Up;
                msg.header.change_mask = LinkFlags::Up;
            }
            LinkChange::Down => {
                msg.header.flags = LinkFlags::empty();
                msg.header.change_mask = LinkFlags::Up;
            }
            LinkChange::Mtu(m) => msg.attributes.push(LinkAttribute::Mtu(*m)),
            LinkChange::Name(n) => msg.attributes.push(LinkAttribute::IfName(n.clone())),
            LinkChange::Master(b) => {
                let bond = self.index(b)?;
                msg.attributes.push(LinkAttribute::Controller(bond));
            }
        }
        self.change(RouteNetlinkMessage::SetLink(msg), 0)
    }

    pub(super) fn addr(&mut self, ifname: &str, addr: &IfAddr, add: bool) -> io::Result<()> {
        let index = self.index(ifname)?;
        let msg = address_message(index, addr);
        if add {
            self.change(
                RouteNetlinkMessage::NewAddress(msg),
                NLM_F_CREATE | NLM_F_EXCL,
            )
        } else {
            self.change(RouteNetlinkMessage::DelAddress(msg), 0)
        }
    }

    pub(super) fn route(&mut self, route: &RouteSpec, add: bool) -> io::Result<()> {
        let oif = match &route.dev {
            Some(d) => Some(self.index(d)?),
            None => None,
        };
        let msg = route_message(route, oif, add);
        if add {
            self.change(
                RouteNetlinkMessage::NewRoute(msg),
                NLM_F_CREATE | NLM_F_EXCL,
            )
        } else {
            self.change(RouteNetlinkMessage::DelRoute(msg), 0)
        }
    }
}

fn set_recv_timeout(sock: &Socket, d: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: the descriptor is the open socket; `tv` is a valid timeval that lives
    // across the call and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn mac_string(b: &[u8]) -> Option<String> {
    (b.len() == 6 && b.iter().any(|x| *x != 0)).then(|| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

fn parse_link(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        up: m.header.flags.contains(LinkFlags::Up),
        carrier: m.header.flags.contains(LinkFlags::LowerUp),
        ..Link::default()
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Address(b) => l.mac = mac_string(b),
            LinkAttribute::PermAddress(b) => l.perm_mac = mac_string(b),
            LinkAttribute::Mtu(v) => l.mtu = *v,
            LinkAttribute::MaxMtu(v) if *v > 0 => l.max_mtu = Some(*v),
            LinkAttribute::Controller(v) if *v > 0 => l.master = Some(*v),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    l
}

/// The `IFLA_BOND_*` attributes of a bond.
fn bond_options(b: &BondOpts, primary: Option<u32>) -> Vec<InfoBond> {
    let mode = match b.mode {
        BondMode::ActiveBackup => NlBondMode::ActiveBackup,
        BondMode::Lacp => NlBondMode::Ieee8023Ad,
        BondMode::BalanceXor => NlBondMode::BalanceXor,
    };
    let mut v = vec![InfoBond::Mode(mode), InfoBond::MiiMon(b.miimon)];
    if let Some(p) = primary {
        v.push(InfoBond::Primary(p));
    }
    if let Some(r) = b.lacp_rate {
        v.push(InfoBond::AdLacpRate(match r {
            LacpRate::Slow => BondLacpRate::Slow,
            LacpRate::Fast => BondLacpRate::Fast,
        }));
    }
    if let Some(x) = b.xmit_hash_policy {
        v.push(InfoBond::XmitHashPolicy(match x {
            XmitHashPolicy::Layer2 => BondXmitHashPolicy::Layer2,
            XmitHashPolicy::Layer23 => BondXmitHashPolicy::Layer23,
            XmitHashPolicy::Layer34 => BondXmitHashPolicy::Layer34,
            XmitHashPolicy::Encap23 => BondXmitHashPolicy::Encap23,
            XmitHashPolicy::Encap34 => BondXmitHashPolicy::Encap34,
            XmitHashPolicy::VlanSrcMac => BondXmitHashPolicy::VlanSrcMac,
        }));
    }
    v
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// `RTM_NEWADDR` / `RTM_DELADDR` for `addr` on the link `index`, as `ip addr add`
/// builds it (local and address both set; IPv4 with its broadcast).
fn address_message(index: u32, addr: &IfAddr) -> AddressMessage {
    let mut msg = AddressMessage::default();
    let ip = addr.net.addr;
    msg.header.family = family(ip);
    msg.header.prefix_len = addr.net.prefix;
    msg.header.index = index;
    msg.header.scope = AddressScope::Universe;
    msg.attributes.push(AddressAttribute::Local(ip));
    msg.attributes.push(AddressAttribute::Address(ip));
    if let Some(b) = addr.net.broadcast() {
        msg.attributes.push(AddressAttribute::Broadcast(b));
    }
    if let Some(l) = &addr.label {
        msg.attributes.push(AddressAttribute::Label(l.clone()));
    }
    if addr.nodad {
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    msg
}

/// `RTM_NEWROUTE` / `RTM_DELROUTE` in the main table.
fn route_message(route: &RouteSpec, oif: Option<u32>, add: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let dst = route.dst.network();
    msg.header.address_family = family(dst.addr);
    msg.header.destination_prefix_length = dst.prefix;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.kind = RouteType::Unicast;
    msg.header.protocol = match route.proto {
        RouteProto::Static => RouteProtocol::Static,
        RouteProto::Dhcp => RouteProtocol::Dhcp,
    };
    msg.header.scope = if !add {
        // Any scope: what `ip route del` asks.
        RouteScope::NoWhere
    } else if route.via.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if dst.prefix > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst.addr)));
    }
    if let Some(v) = route.via {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(v)));
    }
    if let Some(i) = oif {
        msg.attributes.push(RouteAttribute::Oif(i));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::net::IpNet;
    use netlink_packet_core::{Emitable, Parseable};

    #[test]
    fn a_bond_message_carries_mode_miimon_and_primary() {
        let b = BondOpts {
            mode: BondMode::Lacp,
            miimon: 100,
            primary: None,
            lacp_rate: Some(LacpRate::Fast),
            xmit_hash_policy: Some(XmitHashPolicy::Layer34),
        };
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bond),
            LinkInfo::Data(InfoData::Bond(bond_options(&b, Some(7)))),
        ]));
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        let back = LinkMessage::parse(&buf[..]).unwrap();
        let Some(LinkAttribute::LinkInfo(info)) = back.attributes.first() else {
            panic!("{back:?}")
        };
        let Some(LinkInfo::Data(InfoData::Bond(opts))) = info.get(1) else {
            panic!("{info:?}")
        };
        assert!(opts.contains(&InfoBond::Mode(NlBondMode::Ieee8023Ad)));
        assert!(opts.contains(&InfoBond::MiiMon(100)));
        assert!(opts.contains(&InfoBond::Primary(7)));
        assert!(opts.contains(&InfoBond::AdLacpRate(BondLacpRate::Fast)));
        assert!(opts.contains(&InfoBond::XmitHashPolicy(BondXmitHashPolicy::Layer34)));
    }

    #[test]
    fn an_ipv6_address_skips_dad_and_an_ipv4_one_has_its_broadcast() {
        let a6 = IfAddr {
            net: IpNet::parse("2001:db8::15/64").unwrap(),
            label: None,
            nodad: true,
        };
        let m = address_message(3, &a6);
        assert_eq!(m.header.family, AddressFamily::Inet6);
        assert!(m.header.flags.contains(AddressHeaderFlags::Nodad));
        let a4 = IfAddr {
            net: IpNet::parse("192.0.2.15/24").unwrap(),
            label: Some("eth0:1".into()),
            nodad: false,
        };
        let m = address_message(3, &a4);
        assert!(m
            .attributes
            .contains(&AddressAttribute::Broadcast("192.0.2.255".parse().unwrap())));
        assert!(m
            .attributes
            .contains(&AddressAttribute::Label("eth0:1".into())));
    }

    #[test]
    fn a_default_route_has_no_destination_and_a_gateway() {
        let r = RouteSpec {
            dst: IpNet::default_for(false),
            via: Some("192.0.2.1".parse().unwrap()),
            dev: None,
            proto: RouteProto::Static,
        };
        let m = route_message(&r, None, true);
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(m.attributes.len(), 1, "{:?}", m.attributes);
        let r = RouteSpec {
            dst: IpNet::parse("2001:db8:1::1/48").unwrap(),
            via: None,
            dev: Some("eth0".into()),
            proto: RouteProto::Dhcp,
        };
        let m = route_message(&r, Some(4), true);
        assert_eq!(m.header.scope, RouteScope::Link);
        assert_eq!(m.header.protocol, RouteProtocol::Dhcp);
        assert!(m
            .attributes
            .contains(&RouteAttribute::Destination(RouteAddress::Inet6(
                "2001:db8:1::".parse().unwrap()
            ))));
        assert!(m.attributes.contains(&RouteAttribute::Oif(4)));
    }
}
