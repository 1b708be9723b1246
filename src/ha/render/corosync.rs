//! `corosync.conf`, identical on every node: Corosync 3 (`totem { version: 2 }` is the
//! only config-format version corosync 3 accepts), knet with two links per node, crypto
//! on, the key read from [`AUTHKEY_PATH`], and two-node or quorum-device votequorum.
//!
//! Reads: only its arguments.

use super::templates;
use crate::contract::AUTHKEY_PATH;
use crate::ha::cluster::{Cluster, Quorum};
use anyhow::Result;
use serde::Serialize;

#[derive(Serialize)]
struct CorosyncData<'a> {
    cluster_name: &'a str,
    transport: &'a str,
    link_mode: &'a str,
    token: u32,
    consensus: Option<u32>,
    crypto_cipher: &'a str,
    crypto_hash: &'a str,
    keyfile: &'a str,
    nodes: Vec<NodeData<'a>>,
    /// The quorum device; `None` for `two_node: 1`.
    qdevice: Option<QdeviceData<'a>>,
}

#[derive(Serialize)]
struct NodeData<'a> {
    name: &'a str,
    nodeid: u32,
    ring0_addr: String,
    ring1_addr: String,
}

#[derive(Serialize)]
struct QdeviceData<'a> {
    host: &'a str,
    algorithm: &'a str,
}

/// The consensus timeout written to `corosync.conf`: the cluster file's, else for two
/// nodes half the token. After a token loss a node waits `token` + `consensus` before
/// it forms a membership without a peer that stopped answering, so this is most of an
/// unplanned failover. corosync.conf(5): "For two node clusters, a consensus larger
/// than the join timeout but less than token is safe"; a live peer answers a join in
/// well under a second even under TCG (the idle soak of tests/failover.rs checks that
/// no membership forms spuriously). `None` (more nodes): corosync's own 1.2 × token.
pub fn consensus(c: &Cluster) -> Option<u32> {
    c.corosync
        .consensus
        .or((c.nodes.len() == 2).then_some(c.corosync.token / 2))
}

/// The cluster's `corosync.conf`. knet's crypto model is OpenSSL: its plugin links
/// libcrypto directly (the image's ELF closure sees it), while the NSS model needs an
/// NSS database and dlopen()s the softoken at run time.
pub fn corosync_conf(c: &Cluster) -> Result<String> {
    let cs = &c.corosync;
    let data = CorosyncData {
        cluster_name: &c.name,
        transport: &cs.transport,
        link_mode: &cs.link_mode,
        token: cs.token,
        consensus: consensus(c),
        crypto_cipher: &cs.crypto_cipher,
        crypto_hash: &cs.crypto_hash,
        keyfile: AUTHKEY_PATH,
        nodes: c
            .nodes
            .iter()
            .map(|n| NodeData {
                name: &n.name,
                nodeid: n.node_id,
                ring0_addr: n.links[0].to_string(),
                ring1_addr: n.links[1].to_string(),
            })
            .collect(),
        qdevice: match &c.quorum {
            Quorum::TwoNode => None,
            Quorum::Device { host, algorithm } => Some(QdeviceData { host, algorithm }),
        },
    };
    templates::render("corosync.conf", &data)
}
