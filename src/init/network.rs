//! Step 4 of the boot: the node's `[network]` over rtnetlink, every call through
//! [`Sys`] (so `sanforge-init --root DIR network` prints the netlink plan), and the
//! DHCP client's hand-back (`sanforge-init dhcp-event`).
//!
//! Reads the node config's `[network]` and the kernel's links (`Sys::links`). The
//! order is the one the kernel needs:
//!
//! 1. loopback; wait (up to [`LINK_WAIT`]) until every interface the config names (by
//!    name or MAC, and every bond slave) exists;
//! 2. rename the links found by MAC (down first; through temporary names when two
//!    swap);
//! 3. MTUs: interfaces, and a bond's MTU on its slaves before the bond exists;
//! 4. bonds (mode, miimon, primary, LACP rate, hash policy, MTU), then their slaves,
//!    each brought down and enslaved;
//! 5. VLANs on interfaces or bonds;
//! 6. addresses: IPv4 (secondary ones labelled `eth0:1`, as before), IPv6 with
//!    `nodad`: the address is a configured, unique-by-validation static one, and
//!    duplicate address detection would keep it tentative for a second or more,
//!    during which iSCSI portals and Corosync cannot bind to it;
//! 7. links up; 8. routes; 9. a bounded wait ([`CARRIER_WAIT`]) for carrier on the
//!    links that carry addresses: in the boot step `carrier` after storage
//!    ([`wait_pending_carrier`]), so that it overlaps md and LVM; here only when a link
//!    uses DHCP (the client needs the link up);
//! 10. DHCP (v4, off by default, at most one link, src/init/dhcp.rs): busybox `udhcpc` as a supervised
//!     service whose script is the init itself (`/init EVENT`), which applies the
//!     lease over the same netlink calls ([`dhcp_event`]) and keeps it in
//!     `/run/sanforge/dhcp/LINK`; the boot waits up to [`DHCP_WAIT`] for it.
//!
//! A failure is logged and the step goes on with what does not depend on it (a bond
//! that could not be made takes its VLANs and addresses with it); the step then
//! fails as a whole, which the boot logs as a warning.

pub use super::dhcp::{dhcp_event, Lease, DHCP_CLIENT, DHCP_EVENTS};
use super::dhcp::{dhcp_service, dhcp_state};
use super::supervisor::{Supervised, BACKOFF_MIN};
use super::Init;
use crate::config::network::{Bond, LinkId, Network, DEFAULT_MIIMON};
use crate::sys::net::{
    parse_mac, BondOpts, IfAddr, IpNet, Link, LinkChange, NewLink, NewLinkKind, RouteProto,
    RouteSpec,
};
use crate::sys::{SysError, SysResult};
use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// How long to wait for a configured network interface to appear.
pub const LINK_WAIT: Duration = Duration::from_secs(2);
/// How long to wait for carrier on the links that carry addresses (a bond's
/// miimon, a NIC's autonegotiation).
pub const CARRIER_WAIT: Duration = Duration::from_secs(5);
/// How long the boot waits for a DHCP lease before it goes on (the client keeps
/// asking).
pub const DHCP_WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// A physical link the config wants: an `[[network.interfaces]]` entry, or a bond
/// slave named only in `slaves`.
#[derive(Debug, Clone)]
struct Wanted {
    /// The interface entry, when there is one.
    id: Option<LinkId>,
    /// The reference as written (a slave), or the entry's label.
    reference: String,
    mac: Option<String>,
    /// The name it has or gets.
    name: Option<String>,
    label: String,
}

fn wanted(net: &Network) -> Vec<Wanted> {
    let mut out: Vec<Wanted> = net
        .interfaces
        .iter()
        .enumerate()
        .map(|(n, i)| Wanted {
            id: Some(LinkId::Interface(n)),
            reference: i.label(),
            mac: i.mac.as_deref().and_then(parse_mac),
            name: (!i.name.is_empty()).then(|| i.name.clone()),
            label: i.label(),
        })
        .collect();
    for b in &net.bonds {
        for s in &b.slaves {
            if net.resolve(s).is_some() || out.iter().any(|w| &w.reference == s) {
                continue;
            }
            let mac = parse_mac(s);
            out.push(Wanted {
                id: None,
                reference: s.clone(),
                name: mac.is_none().then(|| s.clone()),
                mac,
                label: s.clone(),
            });
        }
    }
    out
}

/// The link `w` stands for among `links`, and a note when it was found by name
/// although its MAC matched none.
fn find<'l>(w: &Wanted, links: &'l [Link]) -> Option<(&'l Link, Option<String>)> {
    if let Some(m) = &w.mac {
        if let Some(l) = links
            .iter()
            .find(|l| l.hw_mac() == Some(m.as_str()) || l.mac.as_deref() == Some(m.as_str()))
        {
            return Some((l, None));
        }
        let name = w.name.as_ref()?;
        let l = links.iter().find(|l| &l.name == name)?;
        let note = format!(
            "interface {name}: no link has MAC {m}; using the link named {name} (MAC {})",
            l.hw_mac().unwrap_or("none")
        );
        return Some((l, Some(note)));
    }
    let name = w.name.as_ref()?;
    links.iter().find(|l| &l.name == name).map(|l| (l, None))
}

/// The state of one run of the step: failures and the links that are not there.
struct Run<'i, 'a> {
    init: &'i mut Init<'a>,
    failed: usize,
    /// Final link names that are missing or could not be made: what uses them is
    /// skipped without a second warning.
    broken: BTreeSet<String>,
}

impl Run<'_, '_> {
    fn check(&mut self, r: SysResult<()>) -> bool {
        match r {
            Ok(()) => true,
            Err(e) => {
                self.init.warn(e);
                self.failed += 1;
                false
            }
        }
    }

    /// Like [`check`](Self::check), with `EEXIST` (already there) a success.
    fn check_exists_ok(&mut self, r: SysResult<()>) -> bool {
        match r {
            Err(e) if e.errno() == Some(libc::EEXIST) => true,
            r => self.check(r),
        }
    }

    fn ok(&self, name: &str) -> bool {
        !self.broken.contains(name)
    }
}

/// What a missing kernel feature is called, for an `EOPNOTSUPP` on creating a link.
fn driver_hint(e: &SysError, kind: &NewLinkKind) -> String {
    if e.errno() != Some(libc::EOPNOTSUPP) {
        return String::new();
    }
    match kind {
        NewLinkKind::Bond(_) => "; the kernel has no bonding driver: build it in (CONFIG_BONDING) or add `bonding` to [modules] load".into(),
        NewLinkKind::Vlan { .. } => "; the kernel has no 802.1Q VLAN support: build it in (CONFIG_VLAN_8021Q) or add `8021q` to [modules] load".into(),
    }
}

/// Step 4: the network (see the module doc).
pub fn configure_network(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let net = &node.network;
    let mut run = Run {
        init,
        failed: 0,
        broken: BTreeSet::new(),
    };
    // Loopback first: services bind to 127.0.0.1 whatever else fails.
    let lo = IfAddr {
        net: IpNet {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            prefix: 8,
        },
        label: None,
        nodad: false,
    };
    let r = run.init.sys.addr_add("lo", &lo);
    run.check_exists_ok(r);
    let r = run.init.sys.link_set("lo", &LinkChange::Up);
    run.check(r);

    let want = wanted(net);
    let names = match find_links(&mut run, &want) {
        Some(n) => n,
        None => bail!("{} network settings failed", run.failed.max(1)),
    };
    // The final name of each config link and unlisted slave.
    let name_of = |id: LinkId| -> Option<String> {
        match id {
            LinkId::Interface(_) => want
                .iter()
                .position(|w| w.id == Some(id))
                .and_then(|k| names.get(&k).cloned()),
            LinkId::Bond(n) => net.bonds.get(n).map(|b| b.name.clone()),
            LinkId::Vlan(n) => net.vlan_name(n),
        }
    };
    let slave_name = |s: &str| -> Option<String> {
        match net.resolve(s) {
            Some(id) => name_of(id),
            None => want
                .iter()
                .position(|w| w.reference == s)
                .and_then(|k| names.get(&k).cloned()),
        }
    };

    // MTUs: interfaces that are no slaves, then each bond's on its slaves.
    for (n, i) in net.interfaces.iter().enumerate() {
        let id = LinkId::Interface(n);
        if net.bond_of(id).is_some() {
            continue;
        }
        if let (Some(m), Some(name)) = (i.mtu, name_of(id)) {
            set_mtu(&mut run, &name, m);
        }
    }
    for b in &net.bonds {
        let Some(m) = b.mtu else { continue };
        for s in &b.slaves {
            if let Some(name) = slave_name(s) {
                set_mtu(&mut run, &name, m);
            }
        }
    }

    // Bonds, then their slaves (down, enslaved).
    for b in &net.bonds {
        let slaves: Vec<String> = b.slaves.iter().filter_map(|s| slave_name(s)).collect();
        make_bond(&mut run, b, slave_name, &slaves);
    }

    make_vlans(&mut run, net, &name_of);

    // Addresses, on every link that is no slave.
    let addressed: Vec<(LinkId, String)> = net
        .all_links()
        .filter(|id| net.bond_of(*id).is_none())
        .filter_map(|id| name_of(id).map(|n| (id, n)))
        .filter(|(_, n)| run.ok(n))
        .collect();
    add_addresses(&mut run, net, &addressed);

    // Links up: interfaces, bonds, VLANs (a VLAN after its link).
    for id in net.all_links() {
        let Some(name) = name_of(id) else { continue };
        if !run.ok(&name) {
            continue;
        }
        let r = run.init.sys.link_set(&name, &LinkChange::Up);
        if run.check(r) {
            let what = match id {
                LinkId::Interface(_) => "interface",
                LinkId::Bond(_) => "bond",
                LinkId::Vlan(_) => "vlan",
            };
            run.init.log.line(&format!("{what} {name} configured"));
        }
    }

    // Routes.
    for r in &net.routes {
        let Some(spec) = route_spec(net, r, &name_of) else {
            continue;
        };
        if spec.dev.as_deref().is_some_and(|d| !run.ok(d)) {
            continue;
        }
        let res = run.init.sys.route_add(&spec);
        run.check_exists_ok(res);
    }

    // Carrier on the links that carry addresses. A DHCP client needs it before it
    // asks, so with DHCP the wait is here; otherwise nothing before the carrier step
    // (after storage) needs the link up, and the autonegotiation, the bond's miimon
    // and (with LACP) the partner's answer run while the disks are assembled.
    let carrying: Vec<String> = addressed
        .iter()
        .filter(|(id, _)| {
            let (a, d) = net.addressing(*id);
            !a.is_empty() || d
        })
        .map(|(_, n)| n.clone())
        .collect();
    match net.dhcp_link() {
        Some(id) => {
            wait_carrier(&mut run, &carrying);
            if let Some(name) = name_of(id).filter(|n| run.ok(n)) {
                start_dhcp(&mut run, &name, &node.hostname);
            }
        }
        None => run.init.carrier_pending = carrying,
    }
    if run.failed > 0 {
        bail!("{} network settings failed", run.failed);
    }
    Ok(())
}

/// The VLANs, each on its link (a VLAN whose link failed is marked broken).
fn make_vlans(run: &mut Run, net: &Network, name_of: &impl Fn(LinkId) -> Option<String>) {
    for (n, v) in net.vlans.iter().enumerate() {
        let (Some(name), Some(parent)) = (net.vlan_name(n), net.resolve(&v.link).and_then(name_of))
        else {
            continue;
        };
        let Ok(id) = u16::try_from(v.id) else {
            continue;
        };
        let link = NewLink {
            name: name.clone(),
            kind: NewLinkKind::Vlan {
                link: parent.clone(),
                id,
            },
            mtu: v.mtu,
        };
        if !run.ok(&parent) {
            run.broken.insert(name);
            continue;
        }
        if let Err(e) = run.init.sys.link_add(&link) {
            let hint = driver_hint(&e, &link.kind);
            run.init.warn(format!("{e}{hint}"));
            run.failed += 1;
            run.broken.insert(name);
        }
    }
}

/// The addresses of each link that is no slave; secondary IPv4 addresses get alias
/// labels.
fn add_addresses(run: &mut Run, net: &Network, addressed: &[(LinkId, String)]) {
    for (id, name) in addressed {
        let mut v4 = 0;
        for a in net.addressing(*id).0 {
            let Some(ip) = IpNet::parse(a) else { continue };
            let label = if ip.is_ipv6() {
                None
            } else {
                v4 += 1;
                // Secondary IPv4 addresses on alias labels (eth0:1), as the ioctl
                // path had them, when the label fits a link name.
                Some(format!("{name}:{}", v4 - 1)).filter(|l| v4 > 1 && l.len() <= 15)
            };
            let addr = IfAddr {
                net: ip,
                label,
                nodad: ip.is_ipv6(),
            };
            let r = run.init.sys.addr_add(name, &addr);
            run.check_exists_ok(r);
        }
    }
}

/// Waits up to [`LINK_WAIT`] for every wanted link, renames those found by MAC, and
/// returns the final name of each one found (by its index in `want`). None when the
/// links cannot be listed at all.
fn find_links(run: &mut Run, want: &[Wanted]) -> Option<BTreeMap<usize, String>> {
    let mut waited = Duration::ZERO;
    let links = loop {
        let links = match run.init.sys.links() {
            Ok(l) => l,
            Err(e) => {
                run.init.warn(e);
                run.failed += 1;
                return None;
            }
        };
        if want.iter().all(|w| find(w, &links).is_some()) || waited >= LINK_WAIT {
            break links;
        }
        run.init.sys.sleep(POLL);
        waited += POLL;
    };
    let mut found: BTreeMap<usize, String> = BTreeMap::new();
    // (index in want, current name, wanted name, up)
    let mut renames: Vec<(usize, String, String, bool)> = Vec::new();
    for (k, w) in want.iter().enumerate() {
        match find(w, &links) {
            None => {
                run.init.warn(format!(
                    "interface {} did not appear within {} s",
                    w.label,
                    LINK_WAIT.as_secs()
                ));
                run.failed += 1;
                if let Some(n) = &w.name {
                    run.broken.insert(n.clone());
                }
            }
            Some((l, note)) => {
                if let Some(n) = note {
                    run.init.warn(n);
                }
                match &w.name {
                    Some(n) if *n != l.name => renames.push((k, l.name.clone(), n.clone(), l.up)),
                    _ => {}
                }
                found.insert(k, l.name.clone());
            }
        }
    }
    // A target held by a link that is not renamed away: keep the kernel's name.
    let sources: BTreeSet<String> = renames.iter().map(|r| r.1.clone()).collect();
    let mut blocked = Vec::new();
    for (k, cur, target, _) in &renames {
        if links.iter().any(|l| &l.name == target) && !sources.contains(target) {
            run.init.warn(format!(
                "cannot rename {cur} to {target}: another link has that name; {cur} keeps its name"
            ));
            run.failed += 1;
            blocked.push(*k);
        }
    }
    renames.retain(|r| !blocked.contains(&r.0));
    // Two links swapping names go through temporary ones.
    let swap = renames.iter().any(|(_, _, t, _)| sources.contains(t));
    for (k, cur, _, up) in renames.iter_mut() {
        if *up {
            let r = run.init.sys.link_set(cur, &LinkChange::Down);
            run.check(r);
            *up = false;
        }
        if swap {
            let tmp = format!("sfrename{k}");
            let r = run.init.sys.link_set(cur, &LinkChange::Name(tmp.clone()));
            if run.check(r) {
                *cur = tmp;
            }
        }
    }
    for (k, cur, target, _) in &renames {
        let r = run
            .init
            .sys
            .link_set(cur, &LinkChange::Name(target.clone()));
        let name = if run.check(r) { target } else { cur };
        found.insert(*k, name.clone());
    }
    Some(found)
}

fn set_mtu(run: &mut Run, name: &str, mtu: u32) {
    if !run.ok(name) {
        return;
    }
    let r = run.init.sys.link_set(name, &LinkChange::Mtu(mtu));
    if let Err(e) = &r {
        // Say what the device takes, when it says.
        let max = run
            .init
            .sys
            .links()
            .ok()
            .and_then(|l| l.into_iter().find(|l| l.name == name))
            .and_then(|l| l.max_mtu);
        if let (Some(max), Some(libc::EINVAL)) = (max, e.errno()) {
            run.init
                .warn(format!("{e}; {name} takes an mtu of at most {max}"));
            run.failed += 1;
            return;
        }
    }
    run.check(r);
}

fn make_bond(
    run: &mut Run,
    b: &Bond,
    slave_name: impl Fn(&str) -> Option<String>,
    slaves: &[String],
) {
    let primary = b.primary.as_deref().and_then(&slave_name);
    let link = NewLink {
        name: b.name.clone(),
        kind: NewLinkKind::Bond(BondOpts {
            mode: b.mode,
            miimon: b.miimon.unwrap_or(DEFAULT_MIIMON),
            primary,
            lacp_rate: b.lacp_rate,
            xmit_hash_policy: b.xmit_hash_policy,
        }),
        mtu: b.mtu,
    };
    if let Err(e) = run.init.sys.link_add(&link) {
        let hint = driver_hint(&e, &link.kind);
        run.init.warn(format!("{e}{hint}"));
        run.failed += 1;
        run.broken.insert(b.name.clone());
        return;
    }
    for s in slaves {
        if !run.ok(s) {
            continue;
        }
        let r = run.init.sys.link_set(s, &LinkChange::Down);
        if run.check(r) {
            let r = run
                .init
                .sys
                .link_set(s, &LinkChange::Master(b.name.clone()));
            run.check(r);
        }
    }
}

fn route_spec(
    net: &Network,
    r: &crate::config::network::Route,
    name_of: &impl Fn(LinkId) -> Option<String>,
) -> Option<RouteSpec> {
    let via: Option<IpAddr> = match &r.via {
        Some(v) => Some(v.parse().ok()?),
        None => None,
    };
    let dst = if r.to == "default" {
        IpNet::default_for(via?.is_ipv6())
    } else {
        IpNet::parse(&r.to)?.network()
    };
    let dev = match &r.dev {
        Some(d) => Some(name_of(net.resolve(d)?)?),
        None => None,
    };
    Some(RouteSpec {
        dst,
        via,
        dev,
        proto: RouteProto::Static,
    })
}

fn wait_carrier(run: &mut Run, names: &[String]) {
    run.failed += carrier_wait(run.init, names);
}

/// Boot step `carrier` (after storage): the wait for carrier that the network step
/// left pending ([`Init::carrier_pending`]): up to [`CARRIER_WAIT`] from now, so a
/// link gets at least that long, plus the time the steps in between took.
pub fn wait_pending_carrier(init: &mut Init) -> Result<()> {
    let names = std::mem::take(&mut init.carrier_pending);
    match carrier_wait(init, &names) {
        0 => Ok(()),
        n => bail!("{n} link{} without carrier", if n == 1 { "" } else { "s" }),
    }
}

/// Polls until every link of `names` has carrier, up to [`CARRIER_WAIT`]; warns for
/// each one without and returns how many.
fn carrier_wait(init: &mut Init, names: &[String]) -> usize {
    if names.is_empty() {
        return 0;
    }
    let mut waited = Duration::ZERO;
    let mut without: Vec<String>;
    loop {
        let links = init.sys.links().unwrap_or_default();
        without = names
            .iter()
            .filter(|n| !links.iter().any(|l| &&l.name == n && l.carrier))
            .cloned()
            .collect();
        if without.is_empty() || waited >= CARRIER_WAIT {
            break;
        }
        init.sys.sleep(POLL);
        waited += POLL;
    }
    for n in &without {
        init.warn(format!(
            "{n}: no carrier after {} s (cable, switch port or peer down?)",
            CARRIER_WAIT.as_secs()
        ));
    }
    without.len()
}

fn start_dhcp(run: &mut Run, link: &str, hostname: &str) {
    let now = Instant::now();
    run.init.supervisor.services.push(Supervised {
        svc: dhcp_service(link, hostname),
        pid: None,
        started: None,
        backoff: BACKOFF_MIN,
        next_start: Some(now),
        starts: 0,
        last_exit: None,
    });
    let init = &mut *run.init;
    init.supervisor.start_due(init.sys, &mut init.log, now);
    let state = dhcp_state(link);
    let mut waited = Duration::ZERO;
    while !run.init.sys.exists(&state) && waited < DHCP_WAIT {
        run.init.sys.sleep(POLL);
        waited += POLL;
    }
    if run.init.sys.exists(&state) {
        run.init.log.line(&format!("dhcp: {link} has a lease"));
    } else {
        run.init.warn(format!(
            "dhcp: no lease on {link} within {} s; the client keeps asking",
            DHCP_WAIT.as_secs()
        ));
        run.failed += 1;
    }
}

/// The links `network-plan` pretends exist: one per interface the config names (a
/// MAC-only one named by its MAC) and per unlisted bond slave, all down, MTU 1500.
pub fn assumed_links(net: &Network) -> Vec<Link> {
    let mut links = vec![Link {
        index: 1,
        name: "lo".into(),
        mtu: 65536,
        ..Link::default()
    }];
    for w in wanted(net) {
        let name = w
            .mac
            .clone()
            .filter(|_| w.name.is_none())
            .unwrap_or_else(|| w.name.clone().unwrap_or_default());
        links.push(Link {
            index: links.len() as u32 + 1,
            name,
            mac: w.mac.clone(),
            mtu: 1500,
            ..Link::default()
        });
    }
    links
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
