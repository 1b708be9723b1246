//! The node config (`/etc/sanforge/node.toml` in the image): what one storage node
//! does at boot. sanforge-init reads it; the builder validates it with these same
//! types, so a mistake fails the build instead of the boot.
//!
//! Files: this one (the node config's types and its validation), `ha.rs` (`[ha]`:
//! requirements, watchdog, durations), `lio.rs` (the checks of `[lio]`).

use super::lio_attrib::AttrValue;
use super::spans::{at, Errors};
use super::{parse_toml, ConfigError};
use serde::{Deserialize, Serialize};
// `[network]` lives in its own module; its types are part of the node config.
use super::network::validate_network;
pub use super::network::{
    Bond, BondMode, Interface, IpNet, LacpRate, LinkId, Network, Route, Vlan, XmitHashPolicy,
    DEFAULT_MIIMON,
};
pub use super::ops::{Logs, Metrics, Ssh, Time};
// `[storage]` too (md, LVM, the targets' persistent state).
use super::storage::validate_storage;
pub use super::storage::{Activate, Storage};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

mod ha;
mod lio;
pub use ha::{parse_duration, Ha, HaDuration, Requirement, Watchdog, WatchdogMode};
use lio::validate_lio;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConfig {
    pub hostname: String,
    #[serde(default)]
    pub sysctl: BTreeMap<String, String>,
    #[serde(default)]
    pub modules: Modules,
    /// `[hardware]`: coldplug and udev at boot; see [`Hardware`].
    #[serde(default, skip_serializing_if = "Hardware::is_default")]
    pub hardware: Hardware,
    #[serde(default)]
    pub network: Network,
    /// `[storage]`: md arrays and LVM assembled before the targets, and where the
    /// targets' persistent state lives; see [`Storage`].
    #[serde(default, skip_serializing_if = "Storage::is_default")]
    pub storage: Storage,
    #[serde(default)]
    pub lio: Option<Lio>,
    /// Cluster membership (Corosync + Pacemaker) started by the init; see [`Ha`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<Ha>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub scst: Option<ScstNode>,
    /// `[ssh]`: root's public keys and the listen address of the SSH server; none
    /// or no key means no SSH server. See [`Ssh`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<Ssh>,
    /// `[metrics]`: the Prometheus exporter; none means no exporter. See [`Metrics`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    /// `[logs]`: remote syslog; see [`Logs`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Logs>,
    /// `[time]`: NTP through chronyd; see [`Time`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// `[scst]`: the node's SCST configuration, an `scst.conf` applied at boot by the init.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScstNode {
    /// At build time relative to the node config file; in the image an absolute path,
    /// or one relative to /etc/sanforge (the builder bakes it as /etc/sanforge/scst.conf).
    pub conf: String,
    /// The iSCSI daemon (e.g. `["/usr/sbin/iscsi-scstd", "-f"]`), supervised like a
    /// service and started before iSCSI targets are added; only with an `iscsi` driver.
    #[serde(default)]
    pub iscsi_daemon: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Modules {
    /// Modules to load, in this order (each after its dependencies from modules.dep).
    #[serde(default)]
    pub load: Vec<String>,
    /// Parameters per module, e.g. `qla2xxx_scst = "qlini_mode=disabled"`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Modules never to load, even as a dependency or for a device present.
    #[serde(default)]
    pub blacklist: Vec<String>,
}

/// `[hardware]`: how the init finds the hardware. By default it loads the modules of
/// the devices present (each device's `modalias` against `modules.alias`, as udev
/// does, honouring `[modules] blacklist` and `params`) and, when the image has
/// Debian's udev, runs it for the `/dev/disk/by-*` names and for devices that appear
/// later.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Hardware {
    /// Load the modules of the devices present at boot.
    pub coldplug: bool,
    /// How long the boot waits for udev to handle the coldplug events.
    pub settle_timeout: HaDuration,
}

impl Hardware {
    pub fn is_default(&self) -> bool {
        *self == Hardware::default()
    }
}

impl Default for Hardware {
    fn default() -> Self {
        Hardware {
            coldplug: true,
            settle_timeout: HaDuration::secs(30),
        }
    }
}

/// LIO target configuration (configfs).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lio {
    #[serde(default)]
    pub backstores: Vec<Backstore>,
    #[serde(default)]
    pub iscsi: Vec<IscsiTarget>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BackstoreKind {
    /// A file (created with `size` if missing); on tmpfs it is RAM-backed.
    Fileio,
    /// A block device (`path` = /dev/…).
    Block,
    /// A kernel ramdisk of `size` bytes (rd_mcp).
    Ramdisk,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Backstore {
    pub name: String,
    pub kind: BackstoreKind,
    #[serde(default)]
    pub path: Option<String>,
    /// Bytes, or with a suffix: `64MiB`, `1GiB`.
    #[serde(default)]
    pub size: Option<String>,
    /// Unit serial (VPD page 0x80); defaults to one derived from the name.
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub write_back: bool,
    /// Device attributes (`attrib/NAME` in configfs, the kernel's names, e.g.
    /// `{ emulate_tpu = true, block_size = 4096 }`), written after the backstore is
    /// enabled and before any LUN exports it; see [`super::lio_attrib`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttrValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IscsiTarget {
    pub iqn: String,
    #[serde(default = "one")]
    pub tpg: u16,
    /// `ip:port`; `0.0.0.0:3260` listens everywhere.
    pub portals: Vec<String>,
    #[serde(default)]
    pub luns: Vec<Lun>,
    #[serde(default)]
    pub acls: Vec<Acl>,
}

fn one() -> u16 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lun {
    pub lun: u32,
    pub backstore: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Acl {
    pub initiator: String,
    /// Mapped LUNs; empty maps every target LUN at its own number.
    #[serde(default)]
    pub mapped_luns: Vec<MappedLun>,
    #[serde(default)]
    pub chap: Option<Chap>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MappedLun {
    /// The LUN number the initiator sees.
    pub mapped: u32,
    /// The target LUN it maps to.
    pub lun: u32,
    #[serde(default)]
    pub write_protect: bool,
}

/// CHAP for one initiator: `{ secret = "NAME" }`, an account of the node's secrets
/// (`[chap.NAME]` user and password, see [`super::secrets`]), which the init fills in
/// at boot; or the account inline (`{ userid, password }`), only for a node config
/// that reaches the node privately (the builder refuses it in an image).
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Chap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub userid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
}

impl std::fmt::Debug for Chap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pw = if self.password.is_empty() {
            ""
        } else {
            crate::util::redact::REDACTED
        };
        write!(
            f,
            "Chap {{ secret: {:?}, userid: {:?}, password: {pw:?} }}",
            self.secret, self.userid
        )
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Service {
    pub name: String,
    /// Program and arguments; the program is an absolute path in the image.
    pub argv: Vec<String>,
    #[serde(default)]
    pub restart: Restart,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A node config that passed validation (the only kind the init acts on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidNode(NodeConfig);

impl std::ops::Deref for ValidNode {
    type Target = NodeConfig;
    fn deref(&self) -> &NodeConfig {
        &self.0
    }
}

/// An IPv4 address with prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let prefix: u8 = p.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        Some(Cidr {
            addr: a.parse().ok()?,
            prefix,
        })
    }
    pub fn netmask(&self) -> Ipv4Addr {
        let bits: u32 = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        Ipv4Addr::from(bits)
    }
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & u32::from(self.netmask()))
    }
}

impl NodeConfig {
    /// Parses and validates a node config.
    pub fn parse(file: &Path, text: &str) -> Result<ValidNode, ConfigError> {
        let raw: NodeConfig = parse_toml(file, text)?;
        raw.validate(file, text)
    }

    pub fn load(file: &Path) -> anyhow::Result<ValidNode> {
        let text = crate::util::fs::read_to_string(file)?;
        Ok(Self::parse(file, &text)?)
    }

    /// Validates once, reporting every error of the file, each at the value at fault.
    pub fn validate(self, file: &Path, text: &str) -> Result<ValidNode, ConfigError> {
        let mut errs = Errors::new(file, text);
        let h = &self.hostname;
        if h.is_empty()
            || h.len() > 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || h.starts_with('-')
        {
            errs.at(
                at!["hostname"],
                format!("hostname `{h}`: expected 1 to 64 letters, digits, `-` or `.`"),
            );
        }
        validate_modules(&self.modules, &mut errs);
        for (k, v) in &self.sysctl {
            if k.is_empty() || k.contains("..") || k.starts_with('/') || v.contains('\n') {
                errs.key(at!["sysctl", k], format!("sysctl `{k}`: expected a key like net.ipv4.ip_forward and a one-line value"));
            }
        }
        validate_network(&self.network, &mut errs);
        validate_storage(&self.storage, &mut errs);
        if let Some(lio) = &self.lio {
            validate_lio(lio, &mut errs);
            // A backstore on an LV the cluster activates on promote does not exist at
            // boot: such LUNs are the cluster's (`sanforge cluster render`).
            for (n, b) in lio.backstores.iter().enumerate() {
                let vg = b
                    .path
                    .as_deref()
                    .and_then(|p| self.storage.vg_of_path(p))
                    .filter(|v| v.activate == Activate::Ha);
                if let (Some(v), Some(p)) = (vg, &b.path) {
                    errs.at(
                        at!["lio", "backstores", n, "path"],
                        format!(
                            "backstore `{}` is on {p}, in volume group `{}`, which the cluster activates on promote ([storage] lvm activate = \"ha\"): it does not exist at boot; let the cluster export it (ocf:heartbeat:LVM-activate before the agent's `lio_luns`) or set activate = \"boot\"",
                            b.name, v.vg
                        ),
                    );
                }
            }
        }
        let mut svc = BTreeSet::new();
        for (n, s) in self.services.iter().enumerate() {
            if !svc.insert(&s.name) {
                errs.at(
                    at!["services", n, "name"],
                    format!("service `{}` is defined twice", s.name),
                );
            }
            if s.argv.first().is_none_or(|p| !p.starts_with('/')) {
                errs.at(
                    at!["services", n, "argv"],
                    format!(
                        "service `{}`: argv must start with an absolute program path",
                        s.name
                    ),
                );
            }
        }
        if let Some(ha) = &self.ha {
            for (n, r) in ha.requires.iter().enumerate() {
                if !r.path.starts_with('/') || r.path.contains(['\n', '\0']) {
                    errs.at(
                        at!["ha", "requires", n, "path"],
                        format!(
                            "ha.requires path `{}`: expected an absolute path in the image",
                            r.path
                        ),
                    );
                }
            }
        }
        if let Some(s) = &self.scst {
            if s.conf.is_empty() || s.conf.contains('\n') {
                errs.at(
                    at!["scst", "conf"],
                    "scst conf: expected the path of an scst.conf",
                );
            }
            if s.iscsi_daemon
                .as_ref()
                .is_some_and(|a| a.first().is_none_or(|p| !p.starts_with('/')))
            {
                errs.at(
                    at!["scst", "iscsi-daemon"],
                    "scst iscsi-daemon: argv must start with an absolute program path",
                );
            }
        }
        validate_endpoints(&self, &mut errs);
        errs.finish(ValidNode(self))
    }
}

/// `[modules]`: module names, one-line parameters, nothing both loaded and
/// blacklisted.
fn validate_modules(modules: &Modules, errs: &mut Errors) {
    let module_name = |m: &str| {
        !m.is_empty()
            && m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    let bad_module = |m: &str| format!("module name `{m}`: expected letters, digits, `_` or `-`");
    for (list, names) in [("load", &modules.load), ("blacklist", &modules.blacklist)] {
        for (i, m) in names.iter().enumerate() {
            if !module_name(m) {
                errs.at(at!["modules", list, i], bad_module(m));
            }
        }
    }
    for (m, v) in &modules.params {
        if !module_name(m) {
            errs.key(at!["modules", "params", m], bad_module(m));
        }
        // They become one `options` line of modprobe.d too.
        if v.contains(['\n', '\r', '\0']) {
            errs.at(
                at!["modules", "params", m],
                format!("parameters of `{m}`: expected one line like `qlini_mode=disabled`"),
            );
        }
    }
    for m in &modules.load {
        if let Some(i) = modules
            .blacklist
            .iter()
            .position(|b| norm_mod(b) == norm_mod(m))
        {
            errs.at(
                at!["modules", "blacklist", i],
                format!("module `{m}` is both in `load` and in `blacklist`"),
            );
        }
    }
}

/// `[ssh]`, `[metrics]`, `[logs]` and `[time]`: listen and server addresses, the
/// metrics token file.
fn validate_endpoints(node: &NodeConfig, errs: &mut Errors) {
    if let Some(ssh) = &node.ssh {
        if ssh.listen.parse::<std::net::SocketAddr>().is_err() {
            errs.at(
                at!["ssh", "listen"],
                format!(
                    "ssh listen `{}`: expected ADDRESS:PORT like 0.0.0.0:22 or [::]:22",
                    ssh.listen
                ),
            );
        }
    }
    if let Some(m) = &node.metrics {
        if m.listen.parse::<std::net::SocketAddr>().is_err() {
            errs.at(
                at!["metrics", "listen"],
                format!(
                    "metrics listen `{}`: expected ADDRESS:PORT like 0.0.0.0:9100",
                    m.listen
                ),
            );
        }
        if let Some(f) = &m.token_file {
            if !f.starts_with('/') || f.contains(['\n', '\0']) {
                errs.at(
                    at!["metrics", "token-file"],
                    format!("metrics token-file `{f}`: expected an absolute path in the image (a secret, e.g. /etc/sanforge/secrets/metrics.token)"),
                );
            }
        }
    }
    if let Some(r) = node.logs.as_ref().and_then(|l| l.remote.as_ref()) {
        if r.parse::<std::net::SocketAddr>().is_err() {
            errs.at(
                at!["logs", "remote"],
                format!("logs remote `{r}`: expected ADDRESS:PORT of a syslog server (RFC 5424 over TCP), like 192.0.2.2:514"),
            );
        }
    }
    for (i, srv) in node.time.iter().flat_map(|t| t.servers.iter()).enumerate() {
        if srv.is_empty()
            || !srv
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b))
        {
            errs.at(
                at!["time", "servers", i],
                format!("time server `{srv}`: expected a host name or an IP address"),
            );
        }
    }
}

/// Module names treat `-` and `_` alike.
pub fn norm_mod(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests;
