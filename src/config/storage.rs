//! `[storage]` of the node config: what the init assembles before the targets are
//! configured — md arrays (Debian's `mdadm`), LVM volume groups (Debian's `lvm2`), in
//! the order the config states — and where the targets' persistent state
//! (SCSI persistent reservations, ALUA states) lives. Its validation reports every
//! mistake at the value at fault; the init (`init::storage`) acts only on a config that
//! passed it.
//!
//! ```toml
//! [storage]
//! order = ["md", "lvm"]                 # the default
//! state = { device = "state-partition" }   # or "volatile", or "/dev/disk/by-partlabel/…"
//!
//! [[storage.md]]
//! name = "data"                         # /dev/md/data
//! level = "raid1"
//! devices = ["/dev/disk/by-id/wwn-0x5000c500a1b2c3d4", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d5"]
//!
//! [[storage.lvm]]
//! vg = "vg0"                            # vgchange -ay vg0 at boot
//! [[storage.lvm]]
//! vg = "vg1"
//! activate = "ha"                       # on DRBD: the cluster activates it on promote
//! ```

use super::node::HaDuration;
use super::spans::{at, Errors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `[storage]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Storage {
    /// The layers in the order they are brought up: `["md", "lvm"]` (the default) or
    /// `["lvm", "md"]` (md arrays on logical volumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<Layer>>,
    /// `listed` (the default): the `[[storage.md]]` arrays; `scan`: every array of
    /// `/etc/mdadm/mdadm.conf` (`mdadm --assemble --scan`).
    #[serde(default, skip_serializing_if = "Assemble::is_listed")]
    pub assemble: Assemble,
    /// The text of an `mdadm.conf`, written to `/etc/mdadm/mdadm.conf` before assembly
    /// (with `assemble = "scan"` its ARRAY lines are the arrays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdadm_conf: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub md: Vec<MdArray>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lvm: Vec<VolumeGroup>,
    /// Devices LVM never scans (lvm.conf `global_filter`), e.g. a DRBD backing
    /// partition that carries the physical volume of the VG on top of DRBD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lvm_reject: Vec<String>,
    /// How long the boot waits for a member device named without a wildcard (or the
    /// state device) to appear before it assembles without it.
    #[serde(default = "default_device_timeout")]
    pub device_timeout: HaDuration,
    /// Where the targets' persistent state lives (see [`State`]).
    #[serde(default)]
    pub state: State,
}

fn default_device_timeout() -> HaDuration {
    HaDuration::secs(10)
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            order: None,
            assemble: Assemble::Listed,
            mdadm_conf: None,
            md: Vec::new(),
            lvm: Vec::new(),
            lvm_reject: Vec::new(),
            device_timeout: default_device_timeout(),
            state: State::default(),
        }
    }
}

impl Storage {
    pub fn is_default(&self) -> bool {
        *self == Storage::default()
    }

    /// The layers in the order the boot brings them up.
    pub fn layers(&self) -> Vec<Layer> {
        self.order.clone().unwrap_or(vec![Layer::Md, Layer::Lvm])
    }

    /// Whether the boot assembles md arrays.
    pub fn uses_md(&self) -> bool {
        !self.md.is_empty() || self.assemble == Assemble::Scan
    }

    /// Whether LVM is configured (some VG at boot or by the cluster).
    pub fn uses_lvm(&self) -> bool {
        !self.lvm.is_empty()
    }

    /// The volume group a device path is on, when it names one of `/dev/VG/LV` or
    /// `/dev/mapper/VG-LV` (LVM's escaping: `-` in a name doubled).
    pub fn vg_of_path<'a>(&'a self, path: &str) -> Option<&'a VolumeGroup> {
        self.lvm.iter().find(|v| {
            path.strip_prefix("/dev/")
                .and_then(|r| r.strip_prefix(v.vg.as_str()))
                .is_some_and(|r| r.starts_with('/'))
                || path
                    .strip_prefix("/dev/mapper/")
                    .and_then(|r| r.strip_prefix(v.vg.replace('-', "--").as_str()))
                    .is_some_and(|r| r.starts_with('-') && !r.starts_with("--"))
        })
    }
}

/// One layer of `order`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Md,
    Lvm,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Md => "md",
            Layer::Lvm => "lvm",
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Assemble {
    #[default]
    Listed,
    Scan,
}

impl Assemble {
    pub fn is_listed(&self) -> bool {
        *self == Assemble::Listed
    }
}

/// `[[storage.md]]`: one array, assembled as `/dev/md/NAME`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MdArray {
    pub name: String,
    /// `raid0`, `raid1`, `raid4`, `raid5`, `raid6` or `raid10`: the personality module
    /// the boot loads (without it, every one the image has); the assembled array must
    /// have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Member devices: paths under /dev (`/dev/disk/by-id/…`), the last component may
    /// hold `*`, `?` or `[…]` wildcards.
    #[serde(default)]
    pub devices: Vec<String>,
    /// The array UUID (`mdadm --detail`): only members of this array are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// The md personalities and the module each needs.
pub const MD_LEVELS: [(&str, &str); 6] = [
    ("raid0", "raid0"),
    ("raid1", "raid1"),
    ("raid4", "raid456"),
    ("raid5", "raid456"),
    ("raid6", "raid456"),
    ("raid10", "raid10"),
];

/// The module of an md level (`raid5` → `raid456`).
pub fn md_level_module(level: &str) -> Option<&'static str> {
    MD_LEVELS.iter().find(|(l, _)| *l == level).map(|(_, m)| *m)
}

/// `[[storage.lvm]]`: a volume group.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VolumeGroup {
    pub vg: String,
    #[serde(default)]
    pub activate: Activate,
}

/// Who activates a volume group.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Activate {
    /// The init, at boot (`vgchange -ay VG`).
    #[default]
    Boot,
    /// The cluster, on promote (a VG on a DRBD device: `ocf:heartbeat:LVM-activate`,
    /// rendered from the cluster file's `[[lvm]]`); the boot leaves it inactive.
    Ha,
}

/// `state = { device = … }`: where SCST's `/var/lib/scst/pr` and `vdev_mode_pages`
/// and LIO's `pr` and `alua` directories live.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct State {
    /// `state-partition` (the default): the `SANFORGE-STATE` partition of the boot
    /// disk (disk.img has one); `volatile`: RAM, lost at reboot (the boot warns); or a
    /// block device under /dev holding an ext4 or XFS file system (PXE nodes:
    /// `/dev/disk/by-partlabel/…` of a local disk).
    pub device: String,
    /// The file system on `device`; detected when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            device: STATE_PARTITION.to_string(),
            fstype: None,
        }
    }
}

/// `device` value: the state partition of the boot disk.
pub const STATE_PARTITION: &str = "state-partition";
/// `device` value: no persistent state.
pub const VOLATILE: &str = "volatile";
/// The file systems a state device may hold.
pub const STATE_FSTYPES: [&str; 2] = ["ext4", "xfs"];

/// What [`State::device`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWhere<'a> {
    Partition,
    Volatile,
    Device(&'a str),
}

impl State {
    pub fn place(&self) -> StateWhere<'_> {
        match self.device.as_str() {
            STATE_PARTITION => StateWhere::Partition,
            VOLATILE => StateWhere::Volatile,
            d => StateWhere::Device(d),
        }
    }
}

/// A path under /dev whose last component may hold wildcards (and no other one).
fn dev_path_error(p: &str, wildcards: bool) -> Option<String> {
    let Some(rest) = p.strip_prefix("/dev/") else {
        return Some("expected a path under /dev/".into());
    };
    if rest.is_empty() || p.split('/').any(|c| c == ".." || c == ".") || p.contains("//") {
        return Some("expected a path under /dev/ without `.` or `..`".into());
    }
    if p.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"')
    {
        return Some("expected a path without blanks or quotes".into());
    }
    let wild = |s: &str| s.contains(['*', '?', '[']);
    let (dir, last) = p.rsplit_once('/').unwrap_or(("", p));
    if wild(dir) {
        return Some("wildcards are allowed in the last path component only".into());
    }
    if wild(last) && !wildcards {
        return Some("expected a device path without wildcards".into());
    }
    None
}

/// Whether `s` has a wildcard.
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// An md name as mdadm takes it under /dev/md/: letters, digits, `_`, `-`, `.`.
fn md_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && !n.starts_with(['.', '-'])
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// An LVM VG name: letters, digits, `+ _ . -`, not starting with `-`, not `.`/`..`.
pub fn vg_name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 127
        && n != "."
        && n != ".."
        && !n.starts_with('-')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+_.-".contains(&b))
}

/// An md UUID: 32 hex digits, optionally grouped with `:`, `-`, `.` or blanks.
pub fn md_uuid_ok(u: &str) -> bool {
    let hex: Vec<char> = u.chars().filter(|c| !":-. ".contains(*c)).collect();
    hex.len() == 32 && hex.iter().all(char::is_ascii_hexdigit)
}

/// The keywords of an mdadm.conf line (mdadm.conf(5)).
const MDADM_CONF_KEYWORDS: [&str; 12] = [
    "DEVICE",
    "ARRAY",
    "MAILADDR",
    "MAILFROM",
    "PROGRAM",
    "CREATE",
    "HOMEHOST",
    "HOMECLUSTER",
    "AUTO",
    "POLICY",
    "PART-POLICY",
    "SYSFS",
];

/// `[storage] order`: each layer once, and every layer the section uses.
fn check_order(s: &Storage, errs: &mut Errors) {
    if let Some(order) = &s.order {
        let mut seen = BTreeSet::new();
        for (i, l) in order.iter().enumerate() {
            if !seen.insert(*l) {
                errs.at(
                    at!["storage", "order", i],
                    format!("storage order names `{}` twice", l.name()),
                );
            }
        }
        for (layer, used) in [(Layer::Md, s.uses_md()), (Layer::Lvm, s.uses_lvm())] {
            if used && !order.contains(&layer) {
                errs.at(
                    at!["storage", "order"],
                    format!(
                        "storage order does not name `{}`, which [storage] uses: expected e.g. [\"md\", \"lvm\"]",
                        layer.name()
                    ),
                );
            }
        }
    }
}

/// `[storage] mdadm-conf`: mdadm.conf keywords, and ARRAY lines for `assemble = "scan"`.
fn check_mdadm_conf(s: &Storage, errs: &mut Errors) {
    if let Some(conf) = &s.mdadm_conf {
        for (n, line) in conf.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') || line.starts_with([' ', '\t']) {
                continue;
            }
            let word = t.split_whitespace().next().unwrap_or("");
            if !MDADM_CONF_KEYWORDS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(word))
            {
                errs.at(
                    at!["storage", "mdadm-conf"],
                    format!(
                        "mdadm-conf line {}: `{word}` is not an mdadm.conf keyword (expected one of {})",
                        n + 1,
                        MDADM_CONF_KEYWORDS.join(", ")
                    ),
                );
            }
        }
        if s.assemble == Assemble::Scan
            && !conf
                .lines()
                .any(|l| l.trim_start().to_ascii_uppercase().starts_with("ARRAY"))
        {
            errs.at(
                at!["storage", "mdadm-conf"],
                "mdadm-conf has no ARRAY line: with assemble = \"scan\" it names the arrays (`mdadm --detail --scan` prints them)",
            );
        }
    }
}

/// The `[storage]` checks of the node config's validation.
pub fn validate_storage(s: &Storage, errs: &mut Errors) {
    check_order(s, errs);
    if s.assemble == Assemble::Scan && !s.md.is_empty() {
        errs.at(
            at!["storage", "assemble"],
            "assemble = \"scan\" takes the arrays from mdadm.conf: remove the [[storage.md]] entries, or `assemble` to assemble those",
        );
    }
    check_mdadm_conf(s, errs);
    let mut names = BTreeSet::new();
    let mut members: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, m) in s.md.iter().enumerate() {
        errs.name_once(
            at!["storage", "md", i, "name"],
            m.name.as_str(),
            &mut names,
            md_name_ok(&m.name),
            || format!(
                "md array name `{}`: expected up to 32 letters, digits, `_`, `-` or `.` (the array is /dev/md/NAME)",
                m.name
            ),
            || format!("md array `{}` is defined twice", m.name),
        );
        if let Some(l) = &m.level {
            if md_level_module(l).is_none() {
                errs.at(
                    at!["storage", "md", i, "level"],
                    format!(
                        "md level `{l}` of `{}`: expected one of {}",
                        m.name,
                        MD_LEVELS.map(|(l, _)| l).join(", ")
                    ),
                );
            }
        }
        if let Some(u) = &m.uuid {
            if !md_uuid_ok(u) {
                errs.at(
                    at!["storage", "md", i, "uuid"],
                    format!("md uuid `{u}` of `{}`: expected 32 hex digits as mdadm prints them (a1b2c3d4:…)", m.name),
                );
            }
        }
        if m.devices.is_empty() && m.uuid.is_none() {
            errs.at(
                at!["storage", "md", i],
                format!(
                    "md array `{}`: expected `devices` (its members) or a `uuid` (then every device is examined)",
                    m.name
                ),
            );
        }
        for (j, d) in m.devices.iter().enumerate() {
            if let Some(why) = dev_path_error(d, true) {
                errs.at(
                    at!["storage", "md", i, "devices", j],
                    format!("md device `{d}` of `{}`: {why}", m.name),
                );
            } else if let Some(first) = members.insert(d, &m.name) {
                errs.at(
                    at!["storage", "md", i, "devices", j],
                    format!(
                        "md device {d} is listed for `{}` and `{first}`: a disk is a member of one array",
                        m.name
                    ),
                );
            }
        }
    }
    let mut vgs = BTreeSet::new();
    for (i, v) in s.lvm.iter().enumerate() {
        errs.name_once(
            at!["storage", "lvm", i, "vg"],
            v.vg.as_str(),
            &mut vgs,
            vg_name_ok(&v.vg),
            || {
                format!(
                    "volume group name `{}`: expected letters, digits, `+`, `_`, `.` or `-`",
                    v.vg
                )
            },
            || format!("volume group `{}` is listed twice", v.vg),
        );
    }
    for (i, d) in s.lvm_reject.iter().enumerate() {
        if let Some(why) = dev_path_error(d, false) {
            errs.at(
                at!["storage", "lvm-reject", i],
                format!("lvm-reject `{d}`: {why}"),
            );
        }
    }
    if s.device_timeout.0 > std::time::Duration::from_secs(600) {
        errs.at(
            at!["storage", "device-timeout"],
            format!(
                "device-timeout {}: expected at most 10m (a missing disk must not hold the boot)",
                String::from(s.device_timeout)
            ),
        );
    }
    match s.state.place() {
        StateWhere::Partition | StateWhere::Volatile => {}
        StateWhere::Device("config-partition") => errs.at(
            at!["storage", "state", "device"],
            "state device `config-partition`: the config partition is FAT, which cannot hold LIO's ALUA state (file names with the target's `:`) and has no journal; use `state-partition` (the SANFORGE-STATE partition of disk.img), a device under /dev, or `volatile`",
        ),
        StateWhere::Device(d) => {
            if let Some(why) = dev_path_error(d, false) {
                errs.at(
                    at!["storage", "state", "device"],
                    format!(
                        "state device `{d}`: expected `{STATE_PARTITION}`, `{VOLATILE}` or a block device: {why}"
                    ),
                );
            }
        }
    }
    if let Some(f) = &s.state.fstype {
        if !STATE_FSTYPES.contains(&f.as_str()) {
            errs.at(
                at!["storage", "state", "fstype"],
                format!(
                    "state fstype `{f}`: expected one of {}",
                    STATE_FSTYPES.join(", ")
                ),
            );
        }
        if !matches!(s.state.place(), StateWhere::Device(_)) {
            errs.at(
                at!["storage", "state", "fstype"],
                "state fstype is for a `device` under /dev (the state partition is ext4, volatile has none)",
            );
        }
    }
}

#[cfg(test)]
#[path = "storage_tests.rs"]
mod tests;
