//! DHCPv4 on one link (`[network]` `dhcp = true`): busybox `udhcpc` as a supervised
//! service whose script is the init itself (`/init EVENT`), and that script's side,
//! [`dhcp_event`], which applies the lease over the same netlink calls as the boot's
//! network step (src/init/network.rs) and keeps it in `/run/sanforge/dhcp/LINK`.

use crate::config::node::{Restart, Service};
use crate::contract::{DHCP_STATE_DIR, INIT};
use crate::sys::net::{IfAddr, IpNet, LinkChange, RouteProto, RouteSpec};
use crate::sys::Sys;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// The DHCPv4 client: busybox's, from the image's busybox.
pub const DHCP_CLIENT: [&str; 2] = ["/bin/busybox", "udhcpc"];
/// The events udhcpc runs its script with.
pub const DHCP_EVENTS: [&str; 5] = ["deconfig", "bound", "renew", "leasefail", "nak"];

/// The supervised DHCP client of `link`: busybox udhcpc in the foreground, the init as
/// its script, the lease released at shutdown.
pub fn dhcp_service(link: &str, hostname: &str) -> Service {
    let mut argv: Vec<String> = DHCP_CLIENT.iter().map(|s| s.to_string()).collect();
    argv.extend(
        [
            "-f", "-R", "-i", link, "-s", INIT, "-t", "3", "-T", "2", "-A", "5", "-x",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    argv.push(format!("hostname:{hostname}"));
    Service {
        name: format!("dhcp-{link}"),
        argv,
        restart: Restart::Always,
        env: BTreeMap::new(),
    }
}

pub(super) fn dhcp_state(link: &str) -> PathBuf {
    Path::new(DHCP_STATE_DIR).join(link)
}

/// A lease as `/run/sanforge/dhcp/LINK` keeps it: `address A/N` and `router R` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    pub address: Option<IpNet>,
    pub router: Option<Ipv4Addr>,
}

impl Lease {
    pub fn parse(text: &str) -> Lease {
        let mut l = Lease::default();
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("address", a)) => l.address = IpNet::parse(a.trim()),
                Some(("router", r)) => l.router = r.trim().parse().ok(),
                _ => {}
            }
        }
        l
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(a) = self.address {
            s.push_str(&format!("address {a}\n"));
        }
        if let Some(r) = self.router {
            s.push_str(&format!("router {r}\n"));
        }
        s
    }

    /// The lease udhcpc describes in its script's environment (`ip`, `mask` or
    /// `subnet`, `router`).
    pub fn from_env(env: &BTreeMap<String, String>) -> Option<Lease> {
        let ip: Ipv4Addr = env.get("ip")?.trim().parse().ok()?;
        let prefix = match env.get("mask").and_then(|m| m.trim().parse::<u8>().ok()) {
            Some(p) => p,
            None => {
                let m: Ipv4Addr = env.get("subnet")?.trim().parse().ok()?;
                let bits = u32::from(m);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return None;
                }
                u8::try_from(bits.leading_ones()).ok()?
            }
        };
        Some(Lease {
            address: IpNet::new(IpAddr::V4(ip), prefix),
            router: env
                .get("router")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|r| r.parse().ok()),
        })
    }
}

fn dhcp_route(link: &str, router: Ipv4Addr) -> RouteSpec {
    RouteSpec {
        dst: IpNet::default_for(false),
        via: Some(IpAddr::V4(router)),
        dev: Some(link.to_string()),
        proto: RouteProto::Dhcp,
    }
}

fn lease_addr(net: IpNet) -> IfAddr {
    IfAddr {
        net,
        label: None,
        nodad: false,
    }
}

/// udhcpc's script (`/init EVENT` with the lease in the environment): applies the
/// lease of `interface` over the same netlink calls as the boot and keeps it in
/// `/run/sanforge/dhcp/LINK`, replacing the previous one: `bound` and `renew` set the
/// address and the default route, `deconfig` removes them, `leasefail` and `nak`
/// are logged.
pub fn dhcp_event(
    sys: &mut dyn Sys,
    log: &mut super::Logger,
    event: &str,
    env: &BTreeMap<String, String>,
) -> Result<()> {
    let Some(link) = env
        .get("interface")
        .filter(|l| !l.is_empty() && l.len() <= 15 && !l.contains('/') && !l.contains(".."))
    else {
        bail!("dhcp {event}: no valid `interface` in the environment (udhcpc sets it)");
    };
    let state = dhcp_state(link);
    let old = sys
        .read_to_string(&state)
        .map(|t| Lease::parse(&t))
        .unwrap_or_default();
    match event {
        "deconfig" => {
            if let Some(r) = old.router {
                let _ = sys.route_del(&dhcp_route(link, r));
            }
            if let Some(a) = old.address {
                let _ = sys.addr_del(link, &lease_addr(a));
            }
            if sys.exists(&state) {
                sys.remove_file(&state)?;
            }
            sys.link_set(link, &LinkChange::Up)?;
            log.line(&format!("dhcp: {link} deconfigured"));
        }
        "bound" | "renew" => {
            let Some(new) = Lease::from_env(env) else {
                bail!(
                    "dhcp {event} on {link}: no usable `ip` and `mask`/`subnet` in the environment"
                );
            };
            let Some(addr) = new.address else {
                bail!("dhcp {event} on {link}: bad prefix length");
            };
            if let Some(r) = old.router.filter(|r| Some(*r) != new.router) {
                let _ = sys.route_del(&dhcp_route(link, r));
            }
            if let Some(a) = old.address.filter(|a| *a != addr) {
                let _ = sys.addr_del(link, &lease_addr(a));
            }
            match sys.addr_add(link, &lease_addr(addr)) {
                Err(e) if e.errno() != Some(libc::EEXIST) => return Err(e.into()),
                _ => {}
            }
            if let Some(r) = new.router {
                match sys.route_add(&dhcp_route(link, r)) {
                    Err(e) if e.errno() != Some(libc::EEXIST) => return Err(e.into()),
                    _ => {}
                }
            }
            sys.mkdir(Path::new(DHCP_STATE_DIR))?;
            sys.write_durable(&state, new.render().as_bytes())?;
            let via = new
                .router
                .map(|r| format!(", router {r}"))
                .unwrap_or_default();
            let lease = env
                .get("lease")
                .map(|l| format!(", lease {l} s"))
                .unwrap_or_default();
            log.line(&format!("dhcp: {link} {event} {addr}{via}{lease}"));
        }
        "leasefail" | "nak" => log.line(&format!("dhcp: {link}: {event}")),
        other => log.line(&format!("dhcp: {link}: event `{other}` ignored")),
    }
    Ok(())
}
