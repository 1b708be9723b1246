//! `cluster.toml`: one description of a two-node (or quorum-device) storage cluster —
//! nodes and their links, Corosync, quorum, fencing, DRBD resources, virtual IPs,
//! exported devices, target ports, initiator ACLs and ALUA states — parsed with
//! `deny_unknown_fields` and validated once into a [`Cluster`], so the renderer never
//! re-checks. Secrets (Corosync authkey, DRBD shared secret, CHAP) live in a separate
//! file ([`Secrets`]) that is never part of the rendered public files.
//!
//! Reads: the cluster file and the secrets file given by the caller; `/dev/urandom`
//! when generating secrets.

use crate::config::node::{is_iscsi_name, Cidr};
use crate::config::{find_key, parse_toml, ConfigError};
use crate::scsi::scst::validate::is_wwpn;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

// ---------------------------------------------------------------------------------
// Raw file types
// ---------------------------------------------------------------------------------

/// The file as written; [`RawCluster::validate`] turns it into a [`Cluster`].
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawCluster {
    /// Cluster name (corosync `cluster_name`, Pacemaker `cluster-name`).
    pub name: String,
    /// The SCSI target stack of every node: `scst` (the default) or `lio`.
    #[serde(default)]
    pub target: TargetStack,
    /// The DRBD kernel module the nodes run: `"9"` (the default) or `"8.4"` (the
    /// in-tree module of distribution kernels); it decides the `.res` syntax.
    #[serde(default)]
    pub drbd_version: DrbdVersion,
    #[serde(default)]
    pub corosync: CorosyncConf,
    pub quorum: Option<QuorumConf>,
    pub fencing: Option<FencingConf>,
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeConf>,
    #[serde(default)]
    pub drbd: Vec<DrbdConf>,
    #[serde(default, rename = "vip")]
    pub vips: Vec<VipConf>,
    #[serde(default, rename = "export")]
    pub exports: Vec<ExportConf>,
    #[serde(default, rename = "initiator")]
    pub initiators: Vec<InitiatorConf>,
    #[serde(default)]
    pub alua: AluaConf,
}

/// Corosync totem settings. Only knet with crypto is accepted (corosync ≥ 3.1.10
/// refuses unencrypted transports unless built with `--enable-unencrypted`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CorosyncConf {
    #[serde(default = "d_knet")]
    pub transport: String,
    #[serde(default = "d_aes256")]
    pub crypto_cipher: String,
    #[serde(default = "d_sha256")]
    pub crypto_hash: String,
    /// Token timeout in ms (corosync 3.1 default 3000).
    #[serde(default = "d_token")]
    pub token: u32,
    /// `passive` (default) or `active`.
    #[serde(default = "d_passive")]
    pub link_mode: String,
}

impl Default for CorosyncConf {
    fn default() -> Self {
        CorosyncConf {
            transport: d_knet(),
            crypto_cipher: d_aes256(),
            crypto_hash: d_sha256(),
            token: d_token(),
            link_mode: d_passive(),
        }
    }
}

fn d_knet() -> String {
    "knet".into()
}
fn d_aes256() -> String {
    "aes256".into()
}
fn d_sha256() -> String {
    "sha256".into()
}
fn d_token() -> u32 {
    3000
}
fn d_passive() -> String {
    "passive".into()
}
fn d_ffsplit() -> String {
    "ffsplit".into()
}
fn d_c() -> String {
    "C".into()
}
fn d_blockio() -> String {
    "vdisk_blockio".into()
}
fn d_active() -> String {
    "active".into()
}
fn d_unavailable() -> String {
    "unavailable".into()
}
fn d_watchdog_timeout() -> u32 {
    5
}

/// Which SCSI target stack the nodes run (top-level `target = "scst"|"lio"`).
///
/// With `scst` the render writes an `scst.conf` whose devices exist on both nodes
/// (inactive on the unpromoted one). With `lio` the node config holds only the iSCSI
/// targets, portals and ACLs: an LIO iblock backstore opens its device when created,
/// and a single-primary DRBD Secondary cannot be opened at all, so the backstores and
/// LUNs exist only on the Promoted node, created at promote and removed at demote by
/// `ocf:sanforge:alua` (`lio_luns`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TargetStack {
    #[default]
    Scst,
    Lio,
}

/// The DRBD kernel module generation (top-level `drbd-version`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
pub enum DrbdVersion {
    /// DRBD 9 (LINBIT's out-of-tree module): node ids, `auto-promote no`.
    #[default]
    #[serde(rename = "9")]
    V9,
    /// DRBD 8.4, the module in mainline kernels (drbd-utils runs `drbdadm-84`).
    #[serde(rename = "8.4")]
    V84,
}

/// `two-node = true`, or `device = { host = "…" }` for a corosync-qnetd arbiter.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QuorumConf {
    #[serde(default)]
    pub two_node: bool,
    #[serde(default)]
    pub device: Option<QdeviceConf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QdeviceConf {
    pub host: String,
    #[serde(default = "d_ffsplit")]
    pub algorithm: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FencingMode {
    /// A fence agent (`stonith:fence_*`), one device per node.
    Agent,
    /// sbd with a watchdog (and optionally shared disks).
    Sbd,
    /// No fencing: needs `i-understand = true`, warned about on every render.
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FencingConf {
    pub mode: FencingMode,
    /// `fence_ipmilan`, `fence_redfish`…
    #[serde(default)]
    pub agent: Option<String>,
    /// Agent parameters per node name (the device that fences that node).
    #[serde(default)]
    pub params: BTreeMap<String, BTreeMap<String, String>>,
    /// sbd: the watchdog device, e.g. `/dev/watchdog`.
    #[serde(default)]
    pub watchdog: Option<String>,
    /// sbd: shared disks (by-id paths); empty means watchdog-only sbd.
    #[serde(default)]
    pub devices: Vec<String>,
    /// sbd: SBD_WATCHDOG_TIMEOUT in seconds.
    #[serde(default = "d_watchdog_timeout")]
    pub watchdog_timeout: u32,
    /// Required with `mode = "off"`.
    #[serde(default)]
    pub i_understand: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConf {
    pub name: String,
    /// Corosync node id; defaults to the position in the file, from 1.
    #[serde(default)]
    pub node_id: Option<u32>,
    #[serde(default)]
    pub interfaces: Vec<InterfaceConf>,
    /// iSCSI target names served by this node (one ALUA target port each).
    #[serde(default)]
    pub iscsi_targets: Vec<String>,
    /// Fibre Channel target port WWPNs of this node.
    #[serde(default)]
    pub fc_targets: Vec<String>,
    /// `target = "lio"` only: the `ip:port` portals of this node's iSCSI targets;
    /// `0.0.0.0:3260` (the default) listens on every address, else each ip must be one
    /// of the node's interface addresses.
    #[serde(default)]
    pub iscsi_portals: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InterfaceConf {
    pub name: String,
    #[serde(default)]
    pub mac: Option<String>,
    /// IPv4 with prefix, `10.0.0.1/24`.
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Corosync link number carried by this interface (0 or 1); its first address is
    /// the node's `ringN_addr`.
    #[serde(default)]
    pub corosync_link: Option<u8>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DrbdConf {
    pub name: String,
    pub minor: u32,
    pub port: u16,
    /// Only `C` (synchronous) is accepted: an acknowledged write is on both disks.
    #[serde(default = "d_c")]
    pub protocol: String,
    /// `resource-and-stonith` (needs cluster fencing) or `resource-only`. Required.
    #[serde(default)]
    pub fencing: Option<String>,
    /// Accepted for compatibility and validated, but not rendered as a score: any
    /// Promoted-role preference causes automatic failback with the drbd agent's equal
    /// promotion scores (see `render::cib_xml`). Which node the cluster promotes first
    /// is Pacemaker's choice; move it with `crm_resource --move --promoted`.
    #[serde(default)]
    pub preferred_node: Option<String>,
    /// Backing disk and replication address per node name.
    #[serde(default)]
    pub nodes: BTreeMap<String, DrbdNodeConf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DrbdNodeConf {
    pub disk: String,
    /// One of the node's interface addresses (without prefix).
    pub address: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VipConf {
    pub name: String,
    /// `10.0.10.100/24`.
    pub address: String,
    /// Interface name on the nodes.
    pub interface: String,
    /// The DRBD resource whose Promoted node holds the address.
    pub drbd: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExportConf {
    /// SCST device name.
    pub name: String,
    /// The DRBD resource backing it (`/dev/drbd<minor>`).
    pub drbd: String,
    pub lun: u32,
    /// `vdisk_blockio` (default) or `vdisk_fileio`.
    #[serde(default = "d_blockio")]
    pub handler: String,
    /// T10 device id, identical on both nodes; defaults to the export name.
    #[serde(default)]
    pub t10_dev_id: Option<String>,
    /// SCST `cluster_mode`: persistent reservations shared through the DLM.
    #[serde(default)]
    pub cluster_mode: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct InitiatorConf {
    pub name: String,
    #[serde(default)]
    pub iqn: Option<String>,
    #[serde(default)]
    pub wwpns: Vec<String>,
    /// iSCSI CHAP; the user and secret come from the secrets file (`chap.NAME`).
    #[serde(default)]
    pub chap: bool,
}

/// ALUA access states per role. See [`check_alua`] for why the unpromoted node may
/// never advertise an active state.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AluaConf {
    #[serde(default = "d_active")]
    pub promoted_state: String,
    #[serde(default = "d_unavailable")]
    pub unpromoted_state: String,
}

impl Default for AluaConf {
    fn default() -> Self {
        AluaConf {
            promoted_state: d_active(),
            unpromoted_state: d_unavailable(),
        }
    }
}

// ---------------------------------------------------------------------------------
// Validated types
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quorum {
    TwoNode,
    Device { host: String, algorithm: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fencing {
    Agent {
        agent: String,
        params: BTreeMap<String, BTreeMap<String, String>>,
    },
    Sbd {
        watchdog: String,
        devices: Vec<String>,
        watchdog_timeout: u32,
    },
    Off,
}

/// A validated node: corosync id and its two link addresses resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub node_id: u32,
    pub interfaces: Vec<InterfaceConf>,
    /// `links[0]` and `links[1]`: the ring addresses.
    pub links: [Ipv4Addr; 2],
    pub iscsi_targets: Vec<String>,
    pub fc_targets: Vec<String>,
    /// The LIO portals (`ip:port`), `["0.0.0.0:3260"]` unless given; unused with SCST.
    pub iscsi_portals: Vec<String>,
}

/// The portal a LIO node listens on when `iscsi-portals` is not given.
pub const DEFAULT_PORTAL: &str = "0.0.0.0:3260";

/// A cluster description that passed every check; only [`RawCluster::validate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    pub target: TargetStack,
    pub drbd_version: DrbdVersion,
    pub corosync: CorosyncConf,
    pub quorum: Quorum,
    pub fencing: Fencing,
    pub nodes: Vec<Node>,
    pub drbd: Vec<DrbdConf>,
    pub vips: Vec<VipConf>,
    pub exports: Vec<ExportConf>,
    pub initiators: Vec<InitiatorConf>,
    pub alua: AluaConf,
}

impl Cluster {
    /// Parses and validates `cluster.toml` text.
    pub fn parse(file: &Path, text: &str) -> Result<Cluster, ConfigError> {
        let raw: RawCluster = parse_toml(file, text)?;
        raw.validate(file, text)
    }

    pub fn load(file: &Path) -> Result<Cluster> {
        let text = crate::util::fs::read_to_string(file)?;
        Ok(Self::parse(file, &text)?)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn drbd(&self, name: &str) -> Option<&DrbdConf> {
        self.drbd.iter().find(|d| d.name == name)
    }

    /// Warnings printed on every render (fencing off).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.fencing == Fencing::Off {
            w.push(format!(
                "WARNING: cluster `{}` has fencing off: a node that stops answering is assumed dead, so both nodes can end up Primary and writing (split brain, data loss); use it for tests only",
                self.name
            ));
        }
        if self.initiators.is_empty() && !self.exports.is_empty() {
            w.push(
                "WARNING: no [[initiator]] is listed: no initiator will see any LUN".to_string(),
            );
        }
        w
    }
}

/// True for `a-z A-Z 0-9 - _ .`, 1 to 63 characters, not starting with `-` or `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn is_mac(s: &str) -> bool {
    let p: Vec<&str> = s.split(':').collect();
    p.len() == 6
        && p.iter()
            .all(|x| x.len() == 2 && x.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether an ALUA state lets a target port group serve reads and writes.
fn serves_io(state: &str) -> bool {
    state == "active" || state == "nonoptimized"
}

/// Checks the ALUA states each role gets.
///
/// With single-primary DRBD only the Promoted node can open the device: a Secondary
/// refuses every read and write. The unpromoted node's target port group must
/// therefore advertise `unavailable` (or `standby`/`offline`), never `active` or
/// `nonoptimized`: an initiator that is told a path is active/non-optimized uses it
/// (round-robin multipath, or failover when the optimized path blips) and gets I/O
/// errors — or, if someone "fixes" that with dual-primary DRBD, two nodes accept
/// writes to the same blocks without a cluster file system and the copies diverge
/// (LINBIT: never multipath across DRBD dual-primaries). The promoted node's group
/// must serve I/O (`active`, i.e. active/optimized). `transitioning` is what the agent
/// reports during a switch and is not a steady state.
pub fn check_alua(a: &AluaConf) -> Result<(), (&'static str, String)> {
    if !serves_io(&a.promoted_state) {
        return Err((
            "promoted-state",
            format!(
                "alua.promoted-state `{}`: the promoted node must serve I/O; expected `active`",
                a.promoted_state
            ),
        ));
    }
    if serves_io(&a.unpromoted_state) {
        return Err((
            "unpromoted-state",
            format!(
                "alua.unpromoted-state `{}` would let both nodes serve writes: with single-primary DRBD the unpromoted node cannot do I/O; expected `unavailable`, `standby` or `offline`",
                a.unpromoted_state
            ),
        ));
    }
    if !["unavailable", "standby", "offline"].contains(&a.unpromoted_state.as_str()) {
        return Err((
            "unpromoted-state",
            format!(
                "alua.unpromoted-state `{}`: expected `unavailable`, `standby` or `offline`",
                a.unpromoted_state
            ),
        ));
    }
    Ok(())
}

/// Locates `key` at or after the first line containing `anchor` (e.g. `"alpha"`), for
/// errors about one entry of an array; falls back to the first `key` in the file.
fn locate(text: &str, anchor: &str, key: &str) -> (usize, usize) {
    if !anchor.is_empty() {
        if let Some(pos) = text.find(anchor) {
            let start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
            let skipped = text[..start].matches('\n').count();
            let (l, c) = find_key(&text[start..], key);
            if l > 0 {
                return (l + skipped, c);
            }
            return (skipped + 1, 1);
        }
    }
    find_key(text, key)
}

impl RawCluster {
    /// Validates once; every error names the field (and its line when it can be found).
    pub fn validate(self, file: &Path, text: &str) -> Result<Cluster, ConfigError> {
        let err = |anchor: &str, key: &str, msg: String| {
            let (l, c) = locate(text, anchor, key);
            ConfigError::new(file, l, c, msg)
        };
        let q = |s: &str| format!("\"{s}\"");

        if !is_name(&self.name) {
            return Err(err(
                "",
                "name",
                format!(
                    "name `{}`: expected 1 to 63 letters, digits, `-`, `_` or `.`",
                    self.name
                ),
            ));
        }

        // Corosync.
        let cs = &self.corosync;
        if cs.transport != "knet" {
            return Err(err(
                "",
                "transport",
                format!(
                    "corosync.transport `{}`: only `knet` is supported (two encrypted links)",
                    cs.transport
                ),
            ));
        }
        if !["aes256", "aes192", "aes128"].contains(&cs.crypto_cipher.as_str()) {
            return Err(err("", "crypto-cipher", format!("corosync.crypto-cipher `{}`: expected aes256, aes192 or aes128 (crypto cannot be turned off)", cs.crypto_cipher)));
        }
        if !["sha256", "sha384", "sha512"].contains(&cs.crypto_hash.as_str()) {
            return Err(err("", "crypto-hash", format!("corosync.crypto-hash `{}`: expected sha256, sha384 or sha512 (crypto cannot be turned off)", cs.crypto_hash)));
        }
        if !(1000..=60000).contains(&cs.token) {
            return Err(err(
                "",
                "token",
                format!("corosync.token {}: expected 1000 to 60000 ms", cs.token),
            ));
        }
        if cs.link_mode != "passive" && cs.link_mode != "active" {
            return Err(err(
                "",
                "link-mode",
                format!(
                    "corosync.link-mode `{}`: expected `passive` or `active`",
                    cs.link_mode
                ),
            ));
        }

        // Nodes.
        let mut names = BTreeSet::new();
        let mut ids = BTreeSet::new();
        let mut addrs: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let mut ports: BTreeMap<String, String> = BTreeMap::new();
        let mut macs = BTreeSet::new();
        let mut nodes = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let a = q(&n.name);
            if !is_name(&n.name) {
                return Err(err(
                    &a,
                    "name",
                    format!(
                        "node.name `{}`: expected a host name (letters, digits, `-`, `_`, `.`)",
                        n.name
                    ),
                ));
            }
            if !names.insert(n.name.clone()) {
                return Err(err(
                    &a,
                    "name",
                    format!("node.name `{}` is used by two nodes", n.name),
                ));
            }
            let id = n.node_id.unwrap_or(i as u32 + 1);
            if id == 0 || !ids.insert(id) {
                return Err(err(
                    &a,
                    "node-id",
                    format!(
                        "node.node-id {id} of `{}`: expected a unique number from 1",
                        n.name
                    ),
                ));
            }
            let mut links: [Option<Ipv4Addr>; 2] = [None, None];
            let mut ifnames = BTreeSet::new();
            for iface in &n.interfaces {
                if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains('/') {
                    return Err(err(&a, "interfaces", format!("node `{}`: interface name `{}`: expected 1 to 15 characters without `/`", n.name, iface.name)));
                }
                if !ifnames.insert(&iface.name) {
                    return Err(err(
                        &a,
                        "interfaces",
                        format!(
                            "node `{}`: interface `{}` is listed twice",
                            n.name, iface.name
                        ),
                    ));
                }
                if let Some(m) = &iface.mac {
                    if !is_mac(m) {
                        return Err(err(&q(m), "mac", format!("node `{}` interface `{}`: mac `{m}`: expected six hex bytes like 52:54:00:12:34:56", n.name, iface.name)));
                    }
                    if !macs.insert(m.to_ascii_lowercase()) {
                        return Err(err(
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
                        return Err(err(&q(s), "addresses", format!("node `{}` interface `{}`: address `{s}`: expected IPv4/prefix like 10.0.0.1/24", n.name, iface.name)));
                    };
                    if let Some(other) = addrs.insert(c.addr, n.name.clone()) {
                        return Err(err(&q(s), "addresses", format!("node `{}` interface `{}`: address {} is also used by node `{other}`", n.name, iface.name, c.addr)));
                    }
                }
                if let Some(l) = iface.corosync_link {
                    if l > 1 {
                        return Err(err(
                            &a,
                            "corosync-link",
                            format!(
                                "node `{}` interface `{}`: corosync-link {l}: expected 0 or 1",
                                n.name, iface.name
                            ),
                        ));
                    }
                    let Some(first) = iface.addresses.first().and_then(|s| Cidr::parse(s)) else {
                        return Err(err(&a, "corosync-link", format!("node `{}` interface `{}` carries corosync link {l} but has no address", n.name, iface.name)));
                    };
                    if links[l as usize].replace(first.addr).is_some() {
                        return Err(err(
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
                return Err(err(
                    &a,
                    "corosync-link",
                    format!(
                        "node `{}` is on corosync link(s) [{}] only: every node needs two links, an interface with `corosync-link = 0` and one with `corosync-link = 1`",
                        n.name,
                        on.join(", ")
                    ),
                ));
            };
            for t in &n.iscsi_targets {
                if !is_iscsi_name(t) {
                    return Err(err(&q(t), "iscsi-targets", format!("node `{}`: iscsi-targets `{t}`: expected an iSCSI name like iqn.2026-01.org.example:san1.{}", n.name, n.name)));
                }
                if let Some(o) = ports.insert(t.clone(), n.name.clone()) {
                    return Err(err(&q(t), "iscsi-targets", format!("node `{}`: target `{t}` is also a target of node `{o}`; ALUA needs one port name per node", n.name)));
                }
            }
            for w in &n.fc_targets {
                if !is_wwpn(w) || w.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(err(&q(w), "fc-targets", format!("node `{}`: fc-targets `{w}`: expected a lower-case WWPN like 21:00:00:24:ff:54:09:32", n.name)));
                }
                if let Some(o) = ports.insert(w.clone(), n.name.clone()) {
                    return Err(err(
                        &q(w),
                        "fc-targets",
                        format!("node `{}`: port `{w}` is also a port of node `{o}`", n.name),
                    ));
                }
            }
            let lio = self.target == TargetStack::Lio;
            if lio && !n.fc_targets.is_empty() {
                return Err(err(&a, "fc-targets", format!("node `{}`: fc-targets: target = \"lio\" serves iSCSI only (no LIO Fibre Channel fabric is rendered); remove fc-targets or use target = \"scst\"", n.name)));
            }
            if !lio && !n.iscsi_portals.is_empty() {
                return Err(err(&a, "iscsi-portals", format!("node `{}`: iscsi-portals is for target = \"lio\" (SCST's iSCSI daemon listens on every address)", n.name)));
            }
            let mut portals = BTreeSet::new();
            for p in &n.iscsi_portals {
                let ok = p.parse::<std::net::SocketAddrV4>().ok().is_some_and(|sa| {
                    sa.port() != 0
                        && (sa.ip().is_unspecified()
                            || addrs.get(sa.ip()).is_some_and(|o| *o == n.name))
                });
                if !ok {
                    return Err(err(&q(p), "iscsi-portals", format!("node `{}`: iscsi-portals `{p}`: expected ip:port with 0.0.0.0 or one of the node's interface addresses, like 0.0.0.0:3260", n.name)));
                }
                if !portals.insert(p.clone()) {
                    return Err(err(
                        &q(p),
                        "iscsi-portals",
                        format!("node `{}`: portal `{p}` is listed twice", n.name),
                    ));
                }
            }
            let iscsi_portals = if n.iscsi_portals.is_empty() && lio {
                vec![DEFAULT_PORTAL.to_string()]
            } else {
                n.iscsi_portals.clone()
            };
            nodes.push(Node {
                name: n.name.clone(),
                node_id: id,
                interfaces: n.interfaces.clone(),
                links: [l0, l1],
                iscsi_targets: n.iscsi_targets.clone(),
                fc_targets: n.fc_targets.clone(),
                iscsi_portals,
            });
        }
        let known = |n: &str| names.contains(n);

        // Quorum.
        let Some(qc) = &self.quorum else {
            return Err(err("", "name", "quorum: missing; add `[quorum]` with `two-node = true` or `device = { host = \"…\" }`".to_string()));
        };
        let quorum = match (qc.two_node, &qc.device) {
            (true, None) => {
                if nodes.len() != 2 {
                    return Err(err(
                        "",
                        "two-node",
                        format!(
                            "quorum.two-node needs exactly two [[node]] entries, found {}",
                            nodes.len()
                        ),
                    ));
                }
                Quorum::TwoNode
            }
            (false, Some(d)) => {
                if d.host.is_empty() || d.host.contains(char::is_whitespace) {
                    return Err(err(
                        "",
                        "device",
                        format!(
                            "quorum.device.host `{}`: expected a host name or address",
                            d.host
                        ),
                    ));
                }
                if d.algorithm != "ffsplit" && d.algorithm != "lms" {
                    return Err(err(
                        "",
                        "device",
                        format!(
                            "quorum.device.algorithm `{}`: expected ffsplit or lms",
                            d.algorithm
                        ),
                    ));
                }
                if nodes.len() < 2 {
                    return Err(err(
                        "",
                        "device",
                        format!(
                            "a cluster needs at least two [[node]] entries, found {}",
                            nodes.len()
                        ),
                    ));
                }
                Quorum::Device {
                    host: d.host.clone(),
                    algorithm: d.algorithm.clone(),
                }
            }
            (true, Some(_)) => {
                return Err(err(
                    "",
                    "two-node",
                    "quorum: set either two-node = true or device, not both".to_string(),
                ))
            }
            (false, None) => {
                return Err(err(
                    "",
                    "quorum",
                    "quorum: expected `two-node = true` or `device = { host = \"…\" }`".to_string(),
                ))
            }
        };

        // Fencing.
        let Some(fc) = &self.fencing else {
            return Err(err(
                "",
                "name",
                "fencing: missing; add `[fencing]` with `mode = \"agent\"` (a fence agent per node) or `mode = \"sbd\"`; turning it off needs `mode = \"off\"` and `i-understand = true`".to_string(),
            ));
        };
        let fencing = match fc.mode {
            FencingMode::Off => {
                if !fc.i_understand {
                    return Err(err("", "mode", "fencing.mode = \"off\" needs `i-understand = true`: without fencing a hung node is assumed dead and both nodes may write (split brain)".to_string()));
                }
                Fencing::Off
            }
            FencingMode::Agent => {
                let agent = fc.agent.clone().unwrap_or_default();
                if !agent.starts_with("fence_")
                    || !agent[6..]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    || agent.len() == 6
                {
                    return Err(err("", "agent", format!("fencing.agent `{agent}`: expected a fence agent name like fence_ipmilan")));
                }
                for (node, params) in &fc.params {
                    if !known(node) {
                        return Err(err(
                            "",
                            "params",
                            format!("fencing.params.{node}: unknown node `{node}`"),
                        ));
                    }
                    for (k, v) in params {
                        if k == "password" || k == "passwd" {
                            return Err(err("", "params", format!("fencing.params.{node}.{k}: fence passwords belong in the secrets file (`[fence-passwords] {node} = \"…\"`), not in cluster.toml")));
                        }
                        if k.is_empty()
                            || !k
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                            || v.contains(['\n', '"', '<', '&'])
                        {
                            return Err(err("", "params", format!("fencing.params.{node}.{k}: expected a name of letters, digits, `_`, `-` and a one-line value without `\"`, `<`, `&`")));
                        }
                    }
                }
                for n in &nodes {
                    if !fc.params.contains_key(&n.name) {
                        return Err(err("", "params", format!("fencing.params: node `{}` has no fence device parameters (`[fencing.params.{}]`)", n.name, n.name)));
                    }
                }
                Fencing::Agent {
                    agent,
                    params: fc.params.clone(),
                }
            }
            FencingMode::Sbd => {
                let Some(wd) = fc.watchdog.clone().filter(|w| w.starts_with("/dev/")) else {
                    return Err(err(
                        "",
                        "watchdog",
                        "fencing.watchdog: sbd needs a watchdog device like /dev/watchdog"
                            .to_string(),
                    ));
                };
                if fc.devices.is_empty() && quorum == Quorum::TwoNode {
                    return Err(err("", "devices", "fencing.devices: watchdog-only sbd cannot fence in a two-node cluster (both halves keep quorum); add shared sbd disks or a quorum device".to_string()));
                }
                for d in &fc.devices {
                    if !d.starts_with("/dev/") || d.contains([';', ' ']) {
                        return Err(err("", "devices", format!("fencing.devices `{d}`: expected a /dev/ path without blanks or `;`")));
                    }
                }
                if !(1..=120).contains(&fc.watchdog_timeout) {
                    return Err(err(
                        "",
                        "watchdog-timeout",
                        format!(
                            "fencing.watchdog-timeout {}: expected 1 to 120 s",
                            fc.watchdog_timeout
                        ),
                    ));
                }
                Fencing::Sbd {
                    watchdog: wd,
                    devices: fc.devices.clone(),
                    watchdog_timeout: fc.watchdog_timeout,
                }
            }
        };

        // DRBD.
        let mut res_names = BTreeSet::new();
        let mut minors = BTreeSet::new();
        let mut drbd_ports = BTreeSet::new();
        for d in &self.drbd {
            let a = q(&d.name);
            if !is_name(&d.name) {
                return Err(err(
                    &a,
                    "name",
                    format!(
                        "drbd.name `{}`: expected letters, digits, `-`, `_`, `.`",
                        d.name
                    ),
                ));
            }
            if !res_names.insert(d.name.clone()) {
                return Err(err(
                    &a,
                    "name",
                    format!("drbd.name `{}` is used twice", d.name),
                ));
            }
            if !minors.insert(d.minor) || d.minor > 1_048_575 {
                return Err(err(
                    &a,
                    "minor",
                    format!(
                        "drbd `{}`: minor {} is used twice or out of range",
                        d.name, d.minor
                    ),
                ));
            }
            if d.port < 1024 || !drbd_ports.insert(d.port) {
                return Err(err(
                    &a,
                    "port",
                    format!(
                        "drbd `{}`: port {} is used twice or below 1024",
                        d.name, d.port
                    ),
                ));
            }
            if d.protocol != "C" {
                return Err(err(&a, "protocol", format!("drbd `{}`: protocol `{}`: only C is accepted (a write is acknowledged once it is on both disks)", d.name, d.protocol)));
            }
            match d.fencing.as_deref() {
                None => {
                    return Err(err(&a, "name", format!("drbd `{}` has no fencing policy: add `fencing = \"resource-and-stonith\"` (or `\"resource-only\"`)", d.name)));
                }
                Some("resource-and-stonith") => {
                    if fencing == Fencing::Off {
                        return Err(err(&a, "fencing", format!("drbd `{}`: fencing = \"resource-and-stonith\" needs cluster fencing, which is off; use \"resource-only\"", d.name)));
                    }
                }
                Some("resource-only") => {}
                Some(other) => {
                    return Err(err(&a, "fencing", format!("drbd `{}`: fencing `{other}`: expected \"resource-and-stonith\" or \"resource-only\" (dont-care allows split brain)", d.name)));
                }
            }
            if let Some(p) = &d.preferred_node {
                if !known(p) {
                    return Err(err(
                        &a,
                        "preferred-node",
                        format!("drbd `{}`: preferred-node `{p}` is not a [[node]]", d.name),
                    ));
                }
            }
            for (node, dn) in &d.nodes {
                if !known(node) {
                    return Err(err(
                        &a,
                        "nodes",
                        format!("drbd `{}`: nodes.{node}: unknown node `{node}`", d.name),
                    ));
                }
                if !dn.disk.starts_with("/dev/") || dn.disk.contains(['"', ' ', ';']) {
                    return Err(err(
                        &a,
                        "disk",
                        format!(
                            "drbd `{}` on `{node}`: disk `{}`: expected a /dev/ path",
                            d.name, dn.disk
                        ),
                    ));
                }
                let ok = dn
                    .address
                    .parse::<Ipv4Addr>()
                    .ok()
                    .is_some_and(|ip| addrs.get(&ip).is_some_and(|owner| owner == node));
                if !ok {
                    return Err(err(&a, "address", format!("drbd `{}` on `{node}`: address `{}` is not one of that node's interface addresses", d.name, dn.address)));
                }
            }
            for n in &nodes {
                if !d.nodes.contains_key(&n.name) {
                    return Err(err(
                        &a,
                        "nodes",
                        format!(
                            "drbd `{}`: node `{}` has no backing disk (`[drbd.nodes.{}]`)",
                            d.name, n.name, n.name
                        ),
                    ));
                }
            }
        }

        // VIPs.
        let mut vip_names = BTreeSet::new();
        for v in &self.vips {
            let a = q(&v.name);
            if !is_name(&v.name) || !vip_names.insert(v.name.clone()) {
                return Err(err(
                    &a,
                    "name",
                    format!(
                        "vip.name `{}`: expected a unique name of letters, digits, `-`, `_`",
                        v.name
                    ),
                ));
            }
            let Some(c) = Cidr::parse(&v.address) else {
                return Err(err(
                    &a,
                    "address",
                    format!(
                        "vip `{}`: address `{}`: expected IPv4/prefix",
                        v.name, v.address
                    ),
                ));
            };
            if let Some(other) = addrs.insert(c.addr, format!("vip {}", v.name)) {
                return Err(err(
                    &a,
                    "address",
                    format!(
                        "vip `{}`: address {} is also used by {other}",
                        v.name, c.addr
                    ),
                ));
            }
            if !res_names.contains(&v.drbd) {
                return Err(err(
                    &a,
                    "drbd",
                    format!(
                        "vip `{}`: drbd `{}` is not a [[drbd]] resource",
                        v.name, v.drbd
                    ),
                ));
            }
            if v.interface.is_empty() || v.interface.len() > 15 || v.interface.contains('/') {
                return Err(err(
                    &a,
                    "interface",
                    format!(
                        "vip `{}`: interface `{}`: expected an interface name",
                        v.name, v.interface
                    ),
                ));
            }
        }

        // Exports.
        let mut exp_names = BTreeSet::new();
        let mut luns = BTreeSet::new();
        let mut t10 = BTreeSet::new();
        for e in &self.exports {
            let a = q(&e.name);
            if !is_name(&e.name) || !exp_names.insert(e.name.clone()) {
                return Err(err(&a, "name", format!("export.name `{}`: expected a unique device name of letters, digits, `-`, `_`, `.`", e.name)));
            }
            if !res_names.contains(&e.drbd) {
                return Err(err(
                    &a,
                    "drbd",
                    format!(
                        "export `{}`: drbd `{}` is not a [[drbd]] resource",
                        e.name, e.drbd
                    ),
                ));
            }
            if !luns.insert(e.lun) || e.lun > crate::scsi::scst::catalog::MAX_LUN {
                return Err(err(
                    &a,
                    "lun",
                    format!(
                        "export `{}`: lun {} is used twice or above {}",
                        e.name,
                        e.lun,
                        crate::scsi::scst::catalog::MAX_LUN
                    ),
                ));
            }
            if e.handler != "vdisk_blockio" && e.handler != "vdisk_fileio" {
                return Err(err(
                    &a,
                    "handler",
                    format!(
                        "export `{}`: handler `{}`: expected vdisk_blockio or vdisk_fileio",
                        e.name, e.handler
                    ),
                ));
            }
            if self.target == TargetStack::Lio {
                if e.cluster_mode {
                    return Err(err(&a, "cluster-mode", format!("export `{}`: cluster-mode is SCST's DLM mode; LIO has no cluster-mode (persistent reservations stay on the Promoted node); remove it or use target = \"scst\"", e.name)));
                }
                if e.handler != "vdisk_blockio" {
                    return Err(err(&a, "handler", format!("export `{}`: handler `{}` is an SCST handler; with target = \"lio\" the DRBD device is always an iblock backstore (remove `handler`)", e.name, e.handler)));
                }
                if !is_name(&e.name) || e.name.contains('.') {
                    return Err(err(&a, "name", format!("export `{}`: with target = \"lio\" the name is a backstore name: letters, digits, `-` and `_`", e.name)));
                }
            }
            let id = e.t10_dev_id.clone().unwrap_or_else(|| e.name.clone());
            if id.is_empty()
                || id.len() > 24
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'{' && b != b'}')
            {
                return Err(err(
                    &a,
                    "t10-dev-id",
                    format!(
                        "export `{}`: t10-dev-id `{id}`: expected 1 to 24 printable characters",
                        e.name
                    ),
                ));
            }
            if !t10.insert(id.clone()) {
                return Err(err(
                    &a,
                    "t10-dev-id",
                    format!("export `{}`: t10-dev-id `{id}` is used twice", e.name),
                ));
            }
        }
        if !self.exports.is_empty() && !luns.contains(&0) {
            return Err(err(
                "",
                "lun",
                "export: no export has lun 0; some initiators do not scan past a missing LUN 0"
                    .to_string(),
            ));
        }
        if !self.exports.is_empty()
            && nodes
                .iter()
                .all(|n| n.iscsi_targets.is_empty() && n.fc_targets.is_empty())
        {
            return Err(err(
                "",
                "export",
                "export: devices are exported but no node has iscsi-targets or fc-targets"
                    .to_string(),
            ));
        }

        // Initiators.
        let mut ini_names = BTreeSet::new();
        let mut ini_ids = BTreeSet::new();
        for i in &self.initiators {
            let a = q(&i.name);
            if !is_name(&i.name) || !ini_names.insert(i.name.clone()) {
                return Err(err(
                    &a,
                    "name",
                    format!(
                        "initiator.name `{}`: expected a unique name of letters, digits, `-`, `_`",
                        i.name
                    ),
                ));
            }
            if i.iqn.is_none() && i.wwpns.is_empty() {
                return Err(err(
                    &a,
                    "iqn",
                    format!("initiator `{}`: expected an `iqn` and/or `wwpns`", i.name),
                ));
            }
            if let Some(iqn) = &i.iqn {
                if !is_iscsi_name(iqn) {
                    return Err(err(
                        &a,
                        "iqn",
                        format!(
                            "initiator `{}`: iqn `{iqn}`: expected an iSCSI name",
                            i.name
                        ),
                    ));
                }
                if !ini_ids.insert(iqn.clone()) {
                    return Err(err(
                        &a,
                        "iqn",
                        format!("initiator `{}`: iqn `{iqn}` is listed twice", i.name),
                    ));
                }
            }
            for w in &i.wwpns {
                if !is_wwpn(w)
                    || w.bytes().any(|b| b.is_ascii_uppercase())
                    || !ini_ids.insert(w.clone())
                {
                    return Err(err(
                        &a,
                        "wwpns",
                        format!(
                            "initiator `{}`: wwpn `{w}`: expected a unique lower-case WWPN",
                            i.name
                        ),
                    ));
                }
            }
            if self.target == TargetStack::Lio && !i.wwpns.is_empty() {
                return Err(err(
                    &a,
                    "wwpns",
                    format!(
                        "initiator `{}`: wwpns: target = \"lio\" serves iSCSI only; give an `iqn`",
                        i.name
                    ),
                ));
            }
            if i.chap && i.iqn.is_none() {
                return Err(err(
                    &a,
                    "chap",
                    format!(
                        "initiator `{}`: chap needs an iqn (CHAP is iSCSI only)",
                        i.name
                    ),
                ));
            }
        }

        // ALUA.
        if let Err((key, msg)) = check_alua(&self.alua) {
            return Err(err("", key, msg));
        }

        Ok(Cluster {
            name: self.name,
            target: self.target,
            drbd_version: self.drbd_version,
            corosync: self.corosync,
            quorum,
            fencing,
            nodes,
            drbd: self.drbd,
            vips: self.vips,
            exports: self.exports,
            initiators: self.initiators,
            alua: self.alua,
        })
    }
}

// ---------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------

/// The secrets file: never rendered into public files, never committed.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Secrets {
    /// Corosync authkey, hex (256 bytes like `corosync-keygen` writes).
    pub corosync_authkey: String,
    /// DRBD `shared-secret` (cram-hmac-alg sha256), at most 64 characters.
    pub drbd_shared_secret: String,
    /// CHAP user and secret per initiator name (`chap = true` initiators).
    #[serde(default)]
    pub chap: BTreeMap<String, ChapSecret>,
    /// Fence device passwords per node name (passed via `password_script`).
    #[serde(default)]
    pub fence_passwords: BTreeMap<String, String>,
}

#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChapSecret {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets {{ <redacted> }}")
    }
}

impl Secrets {
    /// Reads a secrets file; a missing file is an error saying how to make one.
    pub fn load(path: &Path) -> Result<Secrets> {
        if !path.exists() {
            bail!(
                "secrets file {} does not exist; generate one with `sanforge cluster secrets --out {}` (keep it out of git)",
                path.display(),
                path.display()
            );
        }
        crate::config::secrets::check_private(path, "secrets file")?;
        let text = crate::util::fs::read_to_string(path)?;
        Ok(Self::parse(path, &text)?)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Secrets, ConfigError> {
        let s: Secrets = parse_toml(file, text)?;
        let err = |key: &str, msg: String| {
            let (l, c) = find_key(text, key);
            ConfigError::new(file, l, c, msg)
        };
        match hex::decode(&s.corosync_authkey) {
            Ok(k) if (32..=1024).contains(&k.len()) => {}
            _ => {
                return Err(err(
                    "corosync-authkey",
                    "corosync-authkey: expected 32 to 1024 bytes as hex (generated: 256)"
                        .to_string(),
                ))
            }
        }
        if !is_secret_word(&s.drbd_shared_secret, 16, 64) {
            return Err(err(
                "drbd-shared-secret",
                "drbd-shared-secret: expected 16 to 64 letters and digits".to_string(),
            ));
        }
        for (name, c) in &s.chap {
            if !is_secret_word(&c.user, 1, 64) || !is_secret_word(&c.password, 12, 16) {
                return Err(err(name, format!("chap.{name}: expected a user of letters and digits and a password of 12 to 16 letters and digits")));
            }
        }
        for (name, p) in &s.fence_passwords {
            if p.is_empty() || p.contains(['\n', '\0']) {
                return Err(err(
                    name,
                    format!("fence-passwords.{name}: expected a one-line password"),
                ));
            }
        }
        Ok(s)
    }

    /// The raw corosync authkey bytes.
    pub fn authkey(&self) -> Vec<u8> {
        hex::decode(&self.corosync_authkey).unwrap_or_default()
    }

    /// Checks that every secret the cluster needs is present.
    pub fn check_for(&self, cluster: &Cluster, file: &Path) -> Result<()> {
        for i in cluster.initiators.iter().filter(|i| i.chap) {
            if !self.chap.contains_key(&i.name) {
                bail!(
                    "{}: initiator `{}` has chap = true but the secrets file has no `[chap.{}]` (user, password); regenerate with `sanforge cluster secrets --cluster CLUSTER.toml --out NEW` and copy it over",
                    file.display(),
                    i.name,
                    i.name
                );
            }
        }
        for n in self.fence_passwords.keys() {
            if cluster.node(n).is_none() {
                bail!(
                    "{}: fence-passwords.{n}: unknown node `{n}`",
                    file.display()
                );
            }
        }
        Ok(())
    }
}

fn is_secret_word(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Random bytes from `/dev/urandom`.
fn random_bytes(n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    let mut buf = vec![0u8; n];
    f.read_exact(&mut buf).context("cannot read /dev/urandom")?;
    Ok(buf)
}

/// `n` random letters and digits (rejection sampling, no modulo bias).
fn random_word(n: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes(n * 2)? {
            if (b as usize) < 248 && out.len() < n {
                out.push(ALPHABET[b as usize % 62] as char);
            }
        }
    }
    Ok(out)
}

/// Fresh random secrets; with a cluster, also a CHAP entry for every `chap = true`
/// initiator. Fence passwords are not generated (they are the BMC's).
pub fn generate_secrets(cluster: Option<&Cluster>) -> Result<Secrets> {
    let mut chap = BTreeMap::new();
    if let Some(c) = cluster {
        for i in c.initiators.iter().filter(|i| i.chap) {
            let user: String = i.name.chars().filter(char::is_ascii_alphanumeric).collect();
            let user = if user.is_empty() {
                "initiator".to_string()
            } else {
                user
            };
            chap.insert(
                i.name.clone(),
                ChapSecret {
                    user,
                    password: random_word(16)?,
                },
            );
        }
    }
    Ok(Secrets {
        corosync_authkey: hex::encode(random_bytes(256)?),
        drbd_shared_secret: random_word(48)?,
        chap,
        fence_passwords: BTreeMap::new(),
    })
}

/// Writes a new secrets file with mode 0600; refuses to overwrite an existing file.
pub fn write_secrets(path: &Path, secrets: &Secrets) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let body = toml::to_string(secrets).context("cannot serialize the secrets")?;
    let text = format!(
        "# sanforge cluster secrets: DO NOT COMMIT. Generated from /dev/urandom.\n# Add fence device passwords as:\n# [fence-passwords]\n# NODE = \"…\"\n\n{body}"
    );
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} already exists; refusing to overwrite secrets (remove it first if you really mean to replace every key)", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alua_states() {
        let ok = AluaConf::default();
        assert!(check_alua(&ok).is_ok());
        let both = AluaConf {
            promoted_state: "active".into(),
            unpromoted_state: "nonoptimized".into(),
        };
        assert_eq!(check_alua(&both).unwrap_err().0, "unpromoted-state");
        let standby = AluaConf {
            promoted_state: "active".into(),
            unpromoted_state: "standby".into(),
        };
        assert!(check_alua(&standby).is_ok());
        let none = AluaConf {
            promoted_state: "standby".into(),
            unpromoted_state: "unavailable".into(),
        };
        assert_eq!(check_alua(&none).unwrap_err().0, "promoted-state");
    }

    #[test]
    fn random_words_are_alphanumeric_and_differ() {
        let a = random_word(16).unwrap();
        let b = random_word(16).unwrap();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn locate_finds_key_after_anchor() {
        let t = "[[node]]\nname = \"a\"\nx = 1\n[[node]]\nname = \"b\"\nx = 2\n";
        assert_eq!(locate(t, "\"b\"", "x"), (6, 1));
        assert_eq!(locate(t, "", "x"), (3, 1));
    }

    #[test]
    fn secrets_debug_is_redacted() {
        let s = generate_secrets(None).unwrap();
        assert!(!format!("{s:?}").contains(&s.drbd_shared_secret));
    }
}
