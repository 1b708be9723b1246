//! The node config (`/etc/sanforge/node.toml` in the image): what one storage node
//! does at boot. sanforge-init reads it; the builder validates it with these same
//! types, so a mistake fails the build instead of the boot.

use super::lio_attrib::{self, AttrValue};
use super::spans::{at, Errors};
use super::values::{self, is_iscsi_name, parse_size};
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

/// `[ha]`: the init starts Corosync and Pacemaker itself, in the order SCST's
/// README.dlm gives (targets with ports disabled, `cluster_mode`, watchdog, corosync,
/// pacemaker, settle); the target ports are then Pacemaker's (ocf:sanforge:alua).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Ha {
    pub enabled: bool,
    pub corosync: Vec<String>,
    pub pacemaker: Vec<String>,
    /// A command that succeeds once Corosync answers on its IPC; Pacemaker starts after
    /// it (bounded by `settle-timeout`), so pacemakerd does not exit and back off.
    pub corosync_ready: Vec<String>,
    /// The status command whose XML says whether the cluster settled (a DC and quorum).
    pub status: Vec<String>,
    /// How long the boot waits for the cluster to settle.
    pub settle_timeout: HaDuration,
    /// How long the shutdown waits for initiator sessions to end.
    pub drain_timeout: HaDuration,
    /// How long Pacemaker (then Corosync) get after SIGTERM at shutdown.
    pub stop_timeout: HaDuration,
    pub watchdog: Option<Watchdog>,
    /// SCST `cluster_mode` on every device (persistent reservations through the DLM).
    pub cluster_mode: bool,
    /// Programs the cluster runs on this node beyond the daemons above (sbd, fence
    /// agents, dlm_controld, the DRBD tools), with the Debian package that ships each:
    /// `sanforge cluster render` lists them and the build refuses an image without
    /// them, naming the package, so a fencing mode the image cannot execute fails at
    /// build time, not at the first fence. The init does not read them.
    pub requires: Vec<Requirement>,
}

/// A program the cluster needs on the node (`[[ha.requires]]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Requirement {
    /// Absolute path in the image.
    pub path: String,
    /// The Debian package that ships it.
    pub package: String,
    /// What in the cluster file needs it (`fencing.mode = "sbd"`).
    pub reason: String,
}

impl Default for Ha {
    fn default() -> Self {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        Ha {
            enabled: false,
            corosync: v(&["/usr/sbin/corosync", "-f"]),
            pacemaker: v(&["/usr/sbin/pacemakerd"]),
            corosync_ready: v(&["/usr/sbin/corosync-cfgtool", "-s"]),
            status: v(&["/usr/sbin/crm_mon", "-1", "--output-as=xml"]),
            settle_timeout: HaDuration::secs(120),
            drain_timeout: HaDuration::secs(30),
            stop_timeout: HaDuration::secs(120),
            watchdog: None,
            cluster_mode: true,
            requires: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Watchdog {
    pub device: String,
    /// How often the init pets it (mode `init`).
    pub interval: HaDuration,
    pub mode: WatchdogMode,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            device: "/dev/watchdog".into(),
            interval: HaDuration::secs(5),
            mode: WatchdogMode::Init,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WatchdogMode {
    /// The init opens the device and pets it from its main loop.
    #[default]
    Init,
    /// sbd owns the device (a service started before Corosync); the init never pets it.
    Sbd,
}

/// A duration written `120s`, `500ms`, `2m` or `1h` (a bare number is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HaDuration(pub std::time::Duration);

impl HaDuration {
    pub const fn secs(n: u64) -> Self {
        HaDuration(std::time::Duration::from_secs(n))
    }
}

impl TryFrom<String> for HaDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_duration(&s)
            .map(HaDuration)
            .ok_or_else(|| format!("duration `{s}`: expected a number with ms, s, m or h"))
    }
}

impl From<HaDuration> for String {
    fn from(d: HaDuration) -> String {
        let ms = d.0.as_millis();
        if !ms.is_multiple_of(1000) {
            format!("{ms}ms")
        } else {
            format!("{}s", ms / 1000)
        }
    }
}

/// Parses `120s`, `500ms`, `2m`, `1h`, `30` (seconds).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(n.checked_mul(ms)?))
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
        let module_name = |m: &str| {
            !m.is_empty()
                && m.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        let bad_module =
            |m: &str| format!("module name `{m}`: expected letters, digits, `_` or `-`");
        for (list, names) in [
            ("load", &self.modules.load),
            ("blacklist", &self.modules.blacklist),
        ] {
            for (i, m) in names.iter().enumerate() {
                if !module_name(m) {
                    errs.at(at!["modules", list, i], bad_module(m));
                }
            }
        }
        for (m, v) in &self.modules.params {
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
        for m in &self.modules.load {
            if let Some(i) = self
                .modules
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
        if let Some(ssh) = &self.ssh {
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
        if let Some(m) = &self.metrics {
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
        if let Some(r) = self.logs.as_ref().and_then(|l| l.remote.as_ref()) {
            if r.parse::<std::net::SocketAddr>().is_err() {
                errs.at(
                    at!["logs", "remote"],
                    format!("logs remote `{r}`: expected ADDRESS:PORT of a syslog server (RFC 5424 over TCP), like 192.0.2.2:514"),
                );
            }
        }
        for (i, srv) in self.time.iter().flat_map(|t| t.servers.iter()).enumerate() {
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
        errs.finish(ValidNode(self))
    }
}

/// The `[lio]` checks of [`NodeConfig::validate`].
fn validate_lio(lio: &Lio, errs: &mut Errors) {
    let mut stores = BTreeSet::new();
    let mut paths: BTreeMap<&str, &str> = BTreeMap::new();
    for (n, b) in lio.backstores.iter().enumerate() {
        let at_b = |key: &str| at!["lio", "backstores", n, key].to_vec();
        if b.name.is_empty()
            || !b
                .name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            errs.at(
                &at_b("name"),
                format!(
                    "backstore name `{}`: expected letters, digits, `_` or `-`",
                    b.name
                ),
            );
        }
        // A bad name still counts as defined: its LUNs get no second error.
        if !stores.insert(b.name.as_str()) {
            errs.at(
                &at_b("name"),
                format!("backstore `{}` is defined twice", b.name),
            );
        }
        // Why the size is unusable (not a size, 0, out of range), if it is.
        let size_err = b.size.as_deref().map(|s| parse_size(s, values::BYTE).err());
        let size_ok = size_err.as_ref().map(Option::is_none);
        let kind = match b.kind {
            BackstoreKind::Fileio => "fileio",
            BackstoreKind::Block => "block",
            BackstoreKind::Ramdisk => "ramdisk",
        };
        let size_why = |extra: &str| match size_err.clone().flatten() {
            Some(why) => format!("{kind} backstore `{}`: size {why}{extra}", b.name),
            None => format!(
                "{kind} backstore `{}`: expected a `size` like 64MiB{extra}",
                b.name
            ),
        };
        // The size's place when it is written, else the backstore's.
        let at_size = if b.size.is_some() {
            at_b("size")
        } else {
            at!["lio", "backstores", n].to_vec()
        };
        match b.kind {
            BackstoreKind::Fileio => {
                if b.path.as_deref().is_none_or(|p| !p.starts_with('/')) {
                    errs.at(
                        &at_b("path"),
                        format!("fileio backstore `{}`: expected an absolute `path`", b.name),
                    );
                }
                if size_ok != Some(true) {
                    errs.at(
                        &at_size,
                        size_why(" (the kernel needs one to create the file)"),
                    );
                }
            }
            BackstoreKind::Block => {
                if b.path.as_deref().is_none_or(|p| !p.starts_with("/dev/")) {
                    errs.at(
                        &at_b("path"),
                        format!("block backstore `{}`: expected `path` under /dev/", b.name),
                    );
                }
            }
            BackstoreKind::Ramdisk => {
                if size_ok != Some(true) {
                    errs.at(&at_size, size_why(""));
                }
            }
        }
        if let Some(p) = b
            .path
            .as_deref()
            .filter(|_| b.kind != BackstoreKind::Ramdisk)
        {
            if let Some(first) = paths.insert(p, &b.name) {
                errs.at(
                    &at_b("path"),
                    format!(
                        "backstore `{}` uses {p}, which backstore `{first}` already uses: two backstores on one file or device corrupt each other's data",
                        b.name
                    ),
                );
            }
        }
        for (name, value) in &b.attributes {
            let at_a = &at!["lio", "backstores", n, "attributes", name].to_vec();
            match lio_attrib::check(name, *value) {
                // A name that cannot be set is the key's fault, a bad value the value's.
                Err(why) if !lio_attrib::settable(name) => {
                    errs.key(at_a, format!("backstore `{}`: {why}", b.name))
                }
                Err(why) => errs.at(at_a, format!("backstore `{}`: {why}", b.name)),
                Ok(v) if v == "1"
                    && b.kind == BackstoreKind::Ramdisk
                    && lio_attrib::NEEDS_UNMAP.contains(&name.as_str()) =>
                {
                    errs.at(
                        at_a,
                        format!(
                            "backstore `{}`: attribute `{name}` needs UNMAP, which ramdisk backstores do not have (use fileio on /run for a LUN in RAM)",
                            b.name
                        ),
                    )
                }
                Ok(v) if v == "0" && name == "emulate_write_cache" && b.write_back => errs.at(
                    at_a,
                    format!(
                        "backstore `{}`: emulate_write_cache = 0 with write-back = true would hide the page cache from initiators (they would never flush it): drop one",
                        b.name
                    ),
                ),
                Ok(_) => {}
            }
        }
        if let Some(s) = &b.serial {
            if s.is_empty() || s.len() > 80 || !s.bytes().all(|c| c.is_ascii_graphic()) {
                errs.at(
                    &at_b("serial"),
                    format!("serial `{s}`: expected up to 80 printable characters without spaces"),
                );
            }
        }
    }
    let mut iqns = BTreeSet::new();
    for (n, t) in lio.iscsi.iter().enumerate() {
        let at_t = |key: &str| at!["lio", "iscsi", n, key].to_vec();
        if !is_iscsi_name(&t.iqn) {
            errs.at(
                &at_t("iqn"),
                format!(
                    "target name `{}`: expected an iSCSI name like iqn.2026-11.org.example:target",
                    t.iqn
                ),
            );
        } else if !iqns.insert((&t.iqn, t.tpg)) {
            errs.at(
                &at_t("iqn"),
                format!("target `{}` tpg {} is defined twice", t.iqn, t.tpg),
            );
        }
        if t.portals.is_empty() {
            errs.at(
                &at_t("portals"),
                format!(
                    "target `{}`: expected at least one portal like 0.0.0.0:3260",
                    t.iqn
                ),
            );
        }
        let mut seen_portals = BTreeSet::new();
        for (j, p) in t.portals.iter().enumerate() {
            match p.parse::<std::net::SocketAddrV4>() {
                Err(_) => errs.at(
                    at!["lio", "iscsi", n, "portals", j],
                    format!("portal `{p}`: expected ip:port like 0.0.0.0:3260"),
                ),
                Ok(addr) if !seen_portals.insert(addr) => errs.at(
                    at!["lio", "iscsi", n, "portals", j],
                    format!("portal {p} is listed twice for `{}`", t.iqn),
                ),
                Ok(_) => {}
            }
        }
        let mut luns = BTreeSet::new();
        for (j, l) in t.luns.iter().enumerate() {
            if !stores.contains(l.backstore.as_str()) {
                errs.at(
                    at!["lio", "iscsi", n, "luns", j, "backstore"],
                    format!(
                        "LUN {} of `{}` uses backstore `{}`, which is not defined",
                        l.lun, t.iqn, l.backstore
                    ),
                );
            }
            if !luns.insert(l.lun) {
                errs.at(
                    at!["lio", "iscsi", n, "luns", j, "lun"],
                    format!("LUN {} of `{}` is defined twice", l.lun, t.iqn),
                );
            }
        }
        let mut inits = BTreeSet::new();
        for (k, a) in t.acls.iter().enumerate() {
            let at_a = |key: &str| at!["lio", "iscsi", n, "acls", k, key].to_vec();
            if !is_iscsi_name(&a.initiator) {
                errs.at(&at_a("initiator"), format!("initiator name `{}`: expected an iSCSI name like iqn.2026-11.org.example:host", a.initiator));
            } else if !inits.insert(&a.initiator) {
                errs.at(
                    &at_a("initiator"),
                    format!("initiator `{}` has two ACLs on `{}`", a.initiator, t.iqn),
                );
            }
            let mut mapped = BTreeSet::new();
            for (m, ml) in a.mapped_luns.iter().enumerate() {
                let at_m =
                    |key: &str| at!["lio", "iscsi", n, "acls", k, "mapped-luns", m, key].to_vec();
                if !luns.contains(&ml.lun) {
                    errs.at(
                        &at_m("lun"),
                        format!(
                            "ACL `{}` maps target LUN {}, which `{}` does not have",
                            a.initiator, ml.lun, t.iqn
                        ),
                    );
                }
                if !mapped.insert(ml.mapped) {
                    errs.at(
                        &at_m("mapped"),
                        format!("ACL `{}` maps LUN {} twice", a.initiator, ml.mapped),
                    );
                }
            }
            if let Some(c) = &a.chap {
                let inline = !c.userid.is_empty() || !c.password.is_empty();
                match &c.secret {
                    Some(_) if inline => errs.at(
                        &at_a("chap"),
                        format!("CHAP for `{}`: give either `secret` (the name of an account in the node's secrets) or `userid` and `password`, not both", a.initiator),
                    ),
                    Some(name) if !super::secrets::is_secret_name(name) => errs.at(
                        at!["lio", "iscsi", n, "acls", k, "chap", "secret"],
                        format!("CHAP secret name `{name}` of `{}`: expected letters, digits, `.`, `_`, `-` or `:`", a.initiator),
                    ),
                    Some(_) => {}
                    None => {
                        if c.userid.is_empty() || !(12..=16).contains(&c.password.len()) {
                            errs.at(
                                &at_a("chap"),
                                format!(
                                    "CHAP for `{}`: expected `secret = \"NAME\"`, or a userid and a password of 12 to 16 characters",
                                    a.initiator
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Module names treat `-` and `_` alike.
pub fn norm_mod(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
