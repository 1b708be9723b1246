//! DRBD: `/etc/drbd.conf` (the secret include, then the resources), the secret
//! `common` section with the shared secret, and one `.res` file per resource in the
//! syntax of the DRBD generation the nodes run (9, or the 8.4 module of mainline
//! kernels).
//!
//! Reads: only its arguments.

use super::templates;
use crate::agent::drbd::fence_peer;
use crate::contract::SECRETS_DIR;
use crate::ha::cluster::{Cluster, DrbdVersion, FencePeer, Secrets};
use anyhow::{bail, Result};
use serde::Serialize;

/// The DRBD fence-peer / unfence-peer handlers shipped by drbd-utils.
pub const FENCE_PEER: &str = "/usr/lib/drbd/crm-fence-peer.9.sh";
pub const UNFENCE_PEER: &str = "/usr/lib/drbd/crm-unfence-peer.9.sh";
/// The DRBD 8.4 versions of the handlers (unfence runs after a resync).
pub const FENCE_PEER_84: &str = "/usr/lib/drbd/crm-fence-peer.sh";
pub const UNFENCE_PEER_84: &str = "/usr/lib/drbd/crm-unfence-peer.sh";

/// `/etc/drbd.conf`: the secret include first (its `common` section applies to every
/// resource), then the resources.
pub fn drbd_conf() -> Result<String> {
    #[derive(Serialize)]
    struct Data {
        secrets_dir: &'static str,
    }
    templates::render(
        "drbd.conf",
        &Data {
            secrets_dir: SECRETS_DIR,
        },
    )
}

/// The secret part of the DRBD config: peer authentication for every resource.
pub fn drbd_secret(s: &Secrets) -> Result<String> {
    #[derive(Serialize)]
    struct Data<'a> {
        shared_secret: &'a str,
    }
    templates::render(
        "drbd-secret.conf",
        &Data {
            shared_secret: &s.drbd_shared_secret,
        },
    )
}

/// DRBD's liveness timers in the `net` section, for a failover within seconds (DRBD's
/// defaults are ping-int 10 s, ping-timeout 0.5 s, timeout 6 s). A Secondary notices
/// that its Primary died only when a ping goes unanswered, and until then it refuses to
/// become Primary (the peer still looks Primary). DRBD 8.4's ack receiver waits
/// `ping-int` for a packet, and when the data socket received something within that
/// time it waits `ping-int` again before it pings: the death is seen between
/// `ping-int` + `ping-timeout` and twice `ping-int` + `ping-timeout` after it. At 3 s +
/// 1 s that was 5.9 to 6.9 s after a power loss (benches/failover-steps.sh), after
/// Pacemaker asked for the promote (4.7 to 5.4 s: Corosync's token 3 s + consensus
/// 1.5 s, then the scheduler), so the promote waited for DRBD; at 2 s + 1 s it is 3.5 s,
/// before Corosync even declares the node lost. `ping-timeout` is doubled from the
/// default: a ping answered late on a loaded host must not cost a reconnect and resync
/// (the idle soak of tests/failover.rs counts DRBD state changes). `timeout` (tenths of
/// a second) must stay below `ping-int` (drbd.conf(5)): 1.5 s per try, times `ko-count`
/// (7) before a peer that does not answer a write is dropped.
///
/// ping-int 2 s paid only with the native fence-peer handler
/// ([`crate::agent::drbd::fence_peer`]). With crm-fence-peer.sh it was tried and
/// reverted (session of 2026-12-05): the promote then ran the script while the cluster
/// was still settling (a new DC being elected), and the script asks the DC with growing
/// timeouts and the dead peer's controller (`crmadmin -S`, 3.6 s of timeout) while the
/// CIB still shows it online, polling every 2 s: 2.05 to 3.1 s in the handler in 3 of
/// 5 runs; failover median 9.18 s over 5 runs. With the native handler (0.4 to 0.5 s,
/// polling every 0.5 s, `crmadmin -S` bounded to 1 s), the failover went from 6.87,
/// 6.23, 6.43 s at ping-int 3 to 6.43, 5.48, 5.64 s at ping-int 2
/// (`benches/failover.sh --logs DIR 3`, writer paced at 10 ms, exclusive).
pub const PING_INT_S: u32 = 2;
pub const PING_TIMEOUT_DS: u32 = 10;
pub const TIMEOUT_DS: u32 = 15;

#[derive(Serialize)]
struct ResData<'a> {
    name: &'a str,
    protocol: &'a str,
    ping_int: u32,
    ping_timeout: u32,
    timeout: u32,
    fencing: &'a str,
    fence_peer: &'a str,
    unfence_peer: &'a str,
    port: u16,
    minor: u32,
    hosts: Vec<HostData<'a>>,
}

/// One node's side of a resource.
#[derive(Serialize)]
struct HostData<'a> {
    name: &'a str,
    /// DRBD 9's node id: the Corosync id minus one.
    node_id: u32,
    address: &'a str,
    disk: &'a str,
}

/// One DRBD resource. DRBD 9: protocol C, the fencing policy with the Pacemaker
/// handlers, and `auto-promote no` (Pacemaker alone promotes). DRBD 8.4: no node ids,
/// mesh or `auto-promote` (8.4 never promotes on open), `fencing` in the `disk`
/// section, the 8.4 handlers.
pub fn drbd_res(c: &Cluster, name: &str) -> Result<String> {
    let Some(d) = c.drbd(name) else {
        bail!("unknown drbd resource `{name}`")
    };
    let mut hosts = Vec::new();
    for n in &c.nodes {
        let Some(dn) = d.nodes.get(&n.name) else {
            bail!("drbd `{}` has no entry for node `{}`", d.name, n.name)
        };
        hosts.push(HostData {
            name: &n.name,
            node_id: n.node_id - 1,
            address: &dn.address,
            disk: &dn.disk,
        });
    }
    let v84 = c.drbd_version == DrbdVersion::V84;
    let data = ResData {
        name: &d.name,
        protocol: &d.protocol,
        ping_int: PING_INT_S,
        ping_timeout: PING_TIMEOUT_DS,
        timeout: TIMEOUT_DS,
        fencing: d.fencing.as_deref().unwrap_or("resource-and-stonith"),
        fence_peer: match (c.fence_peer, v84) {
            (FencePeer::Sanforge, _) => fence_peer::HANDLER,
            (FencePeer::DrbdUtils, true) => FENCE_PEER_84,
            (FencePeer::DrbdUtils, false) => FENCE_PEER,
        },
        unfence_peer: if v84 { UNFENCE_PEER_84 } else { UNFENCE_PEER },
        port: d.port,
        minor: d.minor,
        hosts,
    };
    templates::render(if v84 { "drbd84.res" } else { "drbd9.res" }, &data)
}
