//! The node config (`/etc/sanforge/node.toml` in the image): what one storage node
//! does at boot. sanforge-init reads it; the builder validates it with these same
//! types, so a mistake fails the build instead of the boot.

use super::{find_key, parse_toml, ConfigError};
use serde::{Deserialize, Serialize};
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
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub lio: Option<Lio>,
    /// Cluster membership (Corosync + Pacemaker) started by the init; see [`Ha`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<Ha>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub scst: Option<ScstNode>,
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
    /// Modules never to load, even as a dependency.
    #[serde(default)]
    pub blacklist: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Network {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Interface {
    pub name: String,
    /// IPv4 addresses with prefix length, `192.0.2.15/24`.
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The interface's MAC address: one image picks its node config by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Route {
    /// `default` or `a.b.c.d/len`.
    pub to: String,
    pub via: String,
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

/// Why `s` is not a size: `None` when [`parse_size`] takes it; otherwise whether it
/// is not written like a size, or is one too big for 64 bits (out of range).
pub fn size_error(s: &str) -> Option<String> {
    if parse_size(s).is_some() {
        return None;
    }
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let known = ["", "B", "K", "KiB", "M", "MiB", "G", "GiB", "T", "TiB"].contains(&unit.trim());
    if !num.is_empty() && known {
        Some(format!("size `{s}` is out of range (more than 16 EiB)"))
    } else {
        Some(format!("size `{s}` is not a size"))
    }
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `4096` (bytes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        "TiB" | "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// True for a syntactically valid iSCSI name (iqn., eui. or naa. form, RFC 3720).
pub fn is_iscsi_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 223 {
        return false;
    }
    if let Some(rest) = s.strip_prefix("iqn.") {
        // iqn.YYYY-MM.reversed.domain[:anything]
        let b = rest.as_bytes();
        b.len() > 8
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b'.'
            && rest
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".-:".contains(&c))
    } else if let Some(hex) = s.strip_prefix("eui.") {
        hex.len() == 16 && hex.bytes().all(|c| c.is_ascii_hexdigit())
    } else if let Some(hex) = s.strip_prefix("naa.") {
        (hex.len() == 16 || hex.len() == 32) && hex.bytes().all(|c| c.is_ascii_hexdigit())
    } else {
        false
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

    pub fn validate(self, file: &Path, text: &str) -> Result<ValidNode, ConfigError> {
        let err = |key: &str, msg: String| {
            let (l, c) = find_key(text, key);
            ConfigError::new(file, l, c, msg)
        };
        // At the value itself (its first quoted occurrence after `key`).
        let err_at = |key: &str, value: &str, msg: String| {
            let (l, c) = super::find_value(text, key, value).unwrap_or_else(|| find_key(text, key));
            ConfigError::new(file, l, c, msg)
        };
        let h = &self.hostname;
        if h.is_empty()
            || h.len() > 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || h.starts_with('-')
        {
            return Err(err(
                "hostname",
                format!("hostname `{h}`: expected 1 to 64 letters, digits, `-` or `.`"),
            ));
        }
        for m in self
            .modules
            .load
            .iter()
            .chain(&self.modules.blacklist)
            .chain(self.modules.params.keys())
        {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(err(
                    m,
                    format!("module name `{m}`: expected letters, digits, `_` or `-`"),
                ));
            }
        }
        for m in &self.modules.load {
            if self
                .modules
                .blacklist
                .iter()
                .any(|b| norm_mod(b) == norm_mod(m))
            {
                return Err(err(
                    "blacklist",
                    format!("module `{m}` is both in `load` and in `blacklist`"),
                ));
            }
        }
        for (k, v) in &self.sysctl {
            if k.is_empty() || k.contains("..") || k.starts_with('/') || v.contains('\n') {
                return Err(err(k, format!("sysctl `{k}`: expected a key like net.ipv4.ip_forward and a one-line value")));
            }
        }
        let mut names = BTreeSet::new();
        for i in &self.network.interfaces {
            if i.name.is_empty() || i.name.len() > 15 || i.name.contains('/') {
                return Err(err(
                    "name",
                    format!(
                        "interface name `{}`: expected 1 to 15 characters without `/`",
                        i.name
                    ),
                ));
            }
            if !names.insert(&i.name) {
                return Err(err(
                    "name",
                    format!("interface `{}` is listed twice", i.name),
                ));
            }
            for a in &i.addresses {
                if Cidr::parse(a).is_none() {
                    return Err(err(
                        "addresses",
                        format!(
                            "address `{a}` on {}: expected IPv4/prefix like 192.0.2.15/24",
                            i.name
                        ),
                    ));
                }
            }
            if let Some(m) = i.mtu {
                if !(68..=65535).contains(&m) {
                    return Err(err(
                        "mtu",
                        format!(
                            "mtu {m} on {} is out of range: expected 68 to 65535",
                            i.name
                        ),
                    ));
                }
            }
        }
        // One address, one interface: the second `add_ipv4_addr` would fail at boot.
        let mut addrs: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
        for i in &self.network.interfaces {
            for a in &i.addresses {
                let Some(c) = Cidr::parse(a) else { continue };
                if let Some(first) = addrs.insert(c.addr, &i.name) {
                    // The second occurrence is the one at fault.
                    let (l, col) = super::find_value_nth(text, a, 1)
                        .or_else(|| super::find_value(text, "addresses", a))
                        .unwrap_or_else(|| find_key(text, "addresses"));
                    return Err(ConfigError::new(
                        file,
                        l,
                        col,
                        format!(
                            "address {} on {} is already on {first}: an address can be on one interface only",
                            c.addr, i.name
                        ),
                    ));
                }
            }
        }
        let mut macs: BTreeMap<String, &str> = BTreeMap::new();
        for i in &self.network.interfaces {
            if let Some(m) = &i.mac {
                if let Some(first) = macs.insert(m.to_ascii_lowercase(), &i.name) {
                    // The repeat is the one at fault.
                    let (l, c) = super::find_value_nth(text, m, 1)
                        .or_else(|| super::find_value(text, "mac", m))
                        .unwrap_or_else(|| find_key(text, "mac"));
                    return Err(ConfigError::new(
                        file,
                        l,
                        c,
                        format!(
                            "MAC address {m} of {} is already the MAC of {first}",
                            i.name
                        ),
                    ));
                }
            }
        }
        for r in &self.network.routes {
            if r.to != "default" && Cidr::parse(&r.to).is_none() {
                return Err(err(
                    "to",
                    format!("route to `{}`: expected `default` or IPv4/prefix", r.to),
                ));
            }
            if r.via.parse::<Ipv4Addr>().is_err() {
                return Err(err(
                    "via",
                    format!("route via `{}`: expected an IPv4 address", r.via),
                ));
            }
        }
        if let Some(lio) = &self.lio {
            let mut stores = BTreeSet::new();
            let mut paths: BTreeMap<&str, &str> = BTreeMap::new();
            for b in &lio.backstores {
                if b.name.is_empty()
                    || !b
                        .name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                {
                    return Err(err(
                        "name",
                        format!(
                            "backstore name `{}`: expected letters, digits, `_` or `-`",
                            b.name
                        ),
                    ));
                }
                if !stores.insert(b.name.as_str()) {
                    return Err(err(
                        "name",
                        format!("backstore `{}` is defined twice", b.name),
                    ));
                }
                // Why the size is unusable, if it is.
                let size_problem = match b.size.as_deref() {
                    None => Some("has no `size`".to_string()),
                    Some(sz) => match size_error(sz) {
                        Some(why) => Some(why),
                        None if parse_size(sz) == Some(0) => Some("has size 0".to_string()),
                        None => None,
                    },
                };
                let size_err = |why: String, extra: &str| {
                    let (l, c) = b
                        .size
                        .as_deref()
                        .and_then(|sz| super::find_value(text, "size", sz))
                        .unwrap_or_else(|| find_key(text, "size"));
                    ConfigError::new(
                        file,
                        l,
                        c,
                        format!(
                            "{} backstore `{}` {why}: expected a size like 64MiB{extra}",
                            match b.kind {
                                BackstoreKind::Fileio => "fileio",
                                BackstoreKind::Block => "block",
                                BackstoreKind::Ramdisk => "ramdisk",
                            },
                            b.name
                        ),
                    )
                };
                match b.kind {
                    BackstoreKind::Fileio => {
                        if b.path.as_deref().is_none_or(|p| !p.starts_with('/')) {
                            return Err(err(
                                "path",
                                format!(
                                    "fileio backstore `{}`: expected an absolute `path`",
                                    b.name
                                ),
                            ));
                        }
                        if let Some(why) = size_problem {
                            return Err(size_err(
                                why,
                                " (the kernel needs one to create the file)",
                            ));
                        }
                    }
                    BackstoreKind::Block => {
                        if b.path.as_deref().is_none_or(|p| !p.starts_with("/dev/")) {
                            return Err(err(
                                "path",
                                format!(
                                    "block backstore `{}`: expected `path` under /dev/",
                                    b.name
                                ),
                            ));
                        }
                    }
                    BackstoreKind::Ramdisk => {
                        if let Some(why) = size_problem {
                            return Err(size_err(why, ""));
                        }
                    }
                }
                if let Some(p) = b
                    .path
                    .as_deref()
                    .filter(|_| b.kind != BackstoreKind::Ramdisk)
                {
                    if let Some(first) = paths.insert(p, &b.name) {
                        let (l, c) = super::find_value_nth(text, p, 1)
                            .unwrap_or_else(|| find_key(text, "path"));
                        return Err(ConfigError::new(
                            file,
                            l,
                            c,
                            format!(
                                "backstore `{}` uses {p}, which backstore `{first}` already uses: two backstores on one file or device corrupt each other's data",
                                b.name
                            ),
                        ));
                    }
                }
                if let Some(s) = &b.serial {
                    if s.is_empty() || s.len() > 80 || !s.bytes().all(|c| c.is_ascii_graphic()) {
                        return Err(err("serial", format!("serial `{s}`: expected up to 80 printable characters without spaces")));
                    }
                }
            }
            let mut iqns = BTreeSet::new();
            for t in &lio.iscsi {
                if !is_iscsi_name(&t.iqn) {
                    return Err(err("iqn", format!("target name `{}`: expected an iSCSI name like iqn.2026-11.org.example:target", t.iqn)));
                }
                if !iqns.insert((&t.iqn, t.tpg)) {
                    return Err(err(
                        "iqn",
                        format!("target `{}` tpg {} is defined twice", t.iqn, t.tpg),
                    ));
                }
                if t.portals.is_empty() {
                    return Err(err(
                        "portals",
                        format!(
                            "target `{}`: expected at least one portal like 0.0.0.0:3260",
                            t.iqn
                        ),
                    ));
                }
                let mut seen_portals = BTreeSet::new();
                for p in &t.portals {
                    let Ok(addr) = p.parse::<std::net::SocketAddrV4>() else {
                        return Err(err_at(
                            "portals",
                            p,
                            format!("portal `{p}`: expected ip:port like 0.0.0.0:3260"),
                        ));
                    };
                    if !seen_portals.insert(addr) {
                        // The repeat after this target's name.
                        let from = text.find(&format!("\"{}\"", t.iqn)).unwrap_or(0);
                        let (l, c) = text
                            .get(from..)
                            .and_then(|rest| rest.match_indices(&format!("\"{p}\"")).nth(1))
                            .map(|(pos, _)| super::line_col(text, from + pos))
                            .unwrap_or_else(|| find_key(text, "portals"));
                        return Err(ConfigError::new(
                            file,
                            l,
                            c,
                            format!("portal {p} is listed twice for `{}`", t.iqn),
                        ));
                    }
                }
                let mut luns = BTreeSet::new();
                for l in &t.luns {
                    if !stores.contains(l.backstore.as_str()) {
                        return Err(err(
                            "backstore",
                            format!(
                                "LUN {} of `{}` uses backstore `{}`, which is not defined",
                                l.lun, t.iqn, l.backstore
                            ),
                        ));
                    }
                    if !luns.insert(l.lun) {
                        return Err(err(
                            "lun",
                            format!("LUN {} of `{}` is defined twice", l.lun, t.iqn),
                        ));
                    }
                }
                let mut inits = BTreeSet::new();
                for a in &t.acls {
                    if !is_iscsi_name(&a.initiator) {
                        return Err(err("initiator", format!("initiator name `{}`: expected an iSCSI name like iqn.2026-11.org.example:host", a.initiator)));
                    }
                    if !inits.insert(&a.initiator) {
                        return Err(err(
                            "initiator",
                            format!("initiator `{}` has two ACLs on `{}`", a.initiator, t.iqn),
                        ));
                    }
                    let mut mapped = BTreeSet::new();
                    for m in &a.mapped_luns {
                        if !luns.contains(&m.lun) {
                            return Err(err(
                                "mapped-luns",
                                format!(
                                    "ACL `{}` maps target LUN {}, which `{}` does not have",
                                    a.initiator, m.lun, t.iqn
                                ),
                            ));
                        }
                        if !mapped.insert(m.mapped) {
                            return Err(err(
                                "mapped-luns",
                                format!("ACL `{}` maps LUN {} twice", a.initiator, m.mapped),
                            ));
                        }
                    }
                    if let Some(c) = &a.chap {
                        let inline = !c.userid.is_empty() || !c.password.is_empty();
                        match &c.secret {
                            Some(_) if inline => {
                                return Err(err("chap", format!("CHAP for `{}`: give either `secret` (the name of an account in the node's secrets) or `userid` and `password`, not both", a.initiator)));
                            }
                            Some(n) if !super::secrets::is_secret_name(n) => {
                                return Err(err("secret", format!("CHAP secret name `{n}` of `{}`: expected letters, digits, `.`, `_`, `-` or `:`", a.initiator)));
                            }
                            Some(_) => {}
                            None => {
                                if c.userid.is_empty() || !(12..=16).contains(&c.password.len()) {
                                    return Err(err("chap", format!("CHAP for `{}`: expected `secret = \"NAME\"`, or a userid and a password of 12 to 16 characters", a.initiator)));
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut svc = BTreeSet::new();
        for s in &self.services {
            if !svc.insert(&s.name) {
                return Err(err(
                    "name",
                    format!("service `{}` is defined twice", s.name),
                ));
            }
            if s.argv.first().is_none_or(|p| !p.starts_with('/')) {
                return Err(err(
                    "argv",
                    format!(
                        "service `{}`: argv must start with an absolute program path",
                        s.name
                    ),
                ));
            }
        }
        if let Some(s) = &self.scst {
            if s.conf.is_empty() || s.conf.contains('\n') {
                return Err(err(
                    "conf",
                    "scst conf: expected the path of an scst.conf".into(),
                ));
            }
            if s.iscsi_daemon
                .as_ref()
                .is_some_and(|a| a.first().is_none_or(|p| !p.starts_with('/')))
            {
                return Err(err(
                    "iscsi-daemon",
                    "scst iscsi-daemon: argv must start with an absolute program path".into(),
                ));
            }
        }
        Ok(ValidNode(self))
    }
}

/// Module names treat `-` and `_` alike.
pub fn norm_mod(name: &str) -> String {
    name.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("1.5G"), None);
        assert_eq!(parse_size("12XB"), None);
    }

    #[test]
    fn iscsi_names() {
        assert!(is_iscsi_name("iqn.2026-11.org.example:node1"));
        assert!(is_iscsi_name("eui.0123456789abcdef"));
        assert!(!is_iscsi_name("iqn.26-11.org"));
        assert!(!is_iscsi_name("iqn.2026-11.org.Example"));
        assert!(!is_iscsi_name("foo"));
    }

    #[test]
    fn cidr() {
        let c = Cidr::parse("192.0.2.15/24").unwrap();
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network(), Ipv4Addr::new(192, 0, 2, 0));
        assert!(Cidr::parse("192.0.2.15/33").is_none());
    }

    #[test]
    fn undefined_backstore_is_located() {
        let t = "hostname = \"n\"\n[lio]\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\"]\nluns = [{ lun = 0, backstore = \"nope\" }]\n";
        let e = NodeConfig::parse(Path::new("n.toml"), t).unwrap_err();
        assert!(e.message.contains("`nope`"), "{e}");
        assert_eq!(e.line, 6);
    }

    #[test]
    fn unknown_key_has_line_and_column() {
        let e =
            NodeConfig::parse(Path::new("n.toml"), "hostname = \"n\"\nbogus = 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("bogus"), "{e}");
    }
}
