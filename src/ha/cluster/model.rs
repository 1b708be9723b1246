//! The `cluster.toml` model: the file as written ([`RawCluster`] and its parts, serde
//! with `deny_unknown_fields` and kebab-case keys, defaults in one place) and the
//! validated [`Cluster`] that only [`RawCluster::validate`] makes, so the renderers
//! never re-check.
//!
//! Reads: the cluster file given to [`Cluster::load`] (or its text, to
//! [`Cluster::parse`]).

use crate::config::{parse_toml, ConfigError};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The Pacemaker agent of the DRBD resources: `"sanforge"` (the default,
    /// `ocf:sanforge:drbd`) or `"linbit"` (drbd-utils' `ocf:linbit:drbd`).
    #[serde(default)]
    pub drbd_agent: DrbdAgent,
    /// DRBD's fence-peer handler: `"sanforge"` (`sanforge-init drbd-fence-peer`, the
    /// default with DRBD 8.4) or `"drbd-utils"` (`crm-fence-peer.sh`, the default and
    /// the only one with DRBD 9).
    pub drbd_fence_peer: Option<FencePeer>,
    #[serde(default)]
    pub corosync: CorosyncConf,
    pub quorum: Option<QuorumConf>,
    pub fencing: Option<FencingConf>,
    #[serde(default, rename = "node")]
    pub nodes: Vec<NodeConf>,
    #[serde(default)]
    pub drbd: Vec<DrbdConf>,
    /// Volume groups on DRBD devices, activated by the cluster on promote.
    #[serde(default)]
    pub lvm: Vec<LvmConf>,
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
    /// Consensus timeout in ms: after a token loss, how long a node waits for the
    /// others' join messages before it forms a membership without them. Unset: half
    /// the token for two nodes, corosync's 1.2 × token for more (`ha::render`).
    #[serde(default)]
    pub consensus: Option<u32>,
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
            consensus: None,
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

/// The resource agent that runs DRBD under Pacemaker (top-level `drbd-agent`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DrbdAgent {
    /// `ocf:sanforge:drbd`: sanforge-init's native agent (src/agent/drbd), seconds
    /// faster per switchover than LINBIT's shell agent under TCG.
    #[default]
    Sanforge,
    /// `ocf:linbit:drbd`, LINBIT's agent from drbd-utils.
    Linbit,
}

/// DRBD's fence-peer handler (top-level `drbd-fence-peer`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FencePeer {
    /// `sanforge-init drbd-fence-peer` (src/agent/drbd/fence_peer.rs): crm-fence-peer.sh's
    /// decisions with two processes instead of dozens; DRBD 8.4 only.
    Sanforge,
    /// drbd-utils' `crm-fence-peer.sh` (DRBD 8.4) or `crm-fence-peer.9.sh` (DRBD 9).
    DrbdUtils,
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
    /// Where the resource is Promoted. When the exported resources' preferred nodes
    /// differ (active/active, seed 003: each node serves its own resources) it is
    /// rendered as a Promoted-role location preference (`render::cib`'s
    /// `spreads_promoted_roles`), and a returning node takes its resources back.
    /// Otherwise it is validated but not rendered: any Promoted-role preference
    /// causes automatic failback with the drbd agent's equal promotion scores (see
    /// `render::cib_xml`); which node the cluster promotes first is Pacemaker's
    /// choice; move it with `crm_resource --move --promoted`.
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

/// `[[lvm]]`: a volume group whose only physical volume is a DRBD device (LVM on
/// DRBD). It exists where DRBD is Primary: `ocf:heartbeat:LVM-activate` activates it
/// (taking its LVM system ID) after the promote and deactivates it before the demote;
/// the nodes' boot leaves it alone (`[[storage.lvm]] activate = "ha"`) and LVM never
/// scans the DRBD backing disk (`lvm-reject`), which carries the same PV label.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LvmConf {
    /// The volume group's name (`/dev/VG/LV`).
    pub vg: String,
    /// The DRBD resource whose device is the VG's physical volume.
    pub drbd: String,
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
    /// A logical volume of the `[[lvm]]` VG on that DRBD resource: the export is
    /// `/dev/VG/LV` instead of the whole DRBD device.
    #[serde(default)]
    pub lv: Option<String>,
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

/// ALUA access states per role. See [`super::check_alua`] for why the unpromoted node may
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
    pub drbd_agent: DrbdAgent,
    pub fence_peer: FencePeer,
    pub corosync: CorosyncConf,
    pub quorum: Quorum,
    pub fencing: Fencing,
    pub nodes: Vec<Node>,
    pub drbd: Vec<DrbdConf>,
    pub lvm: Vec<LvmConf>,
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

    /// The volume group on DRBD resource `drbd`, if it carries one.
    pub fn vg_on(&self, drbd: &str) -> Option<&LvmConf> {
        self.lvm.iter().find(|l| l.drbd == drbd)
    }

    /// The block device export `e` serves: `/dev/VG/LV` for an LV of a VG on DRBD,
    /// else the DRBD device `/dev/drbdMINOR`.
    pub fn export_device(&self, e: &ExportConf) -> String {
        match (&e.lv, self.vg_on(&e.drbd)) {
            (Some(lv), Some(vg)) => format!("/dev/{}/{lv}", vg.vg),
            _ => format!("/dev/drbd{}", self.drbd(&e.drbd).map_or(0, |d| d.minor)),
        }
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
