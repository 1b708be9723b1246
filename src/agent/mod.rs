//! `ocf:sanforge:alua`, the Pacemaker resource agent that moves the ALUA state of this
//! node's target port group between the promoted state (active/optimized) and the
//! unpromoted one (standby), for SCST and for LIO. It runs as a promotable clone,
//! ordered after (and colocated with) the DRBD promotable clone, so the node whose DRBD
//! is Primary is the one advertising active/optimized paths.
//!
//! Invoked by Pacemaker as `/usr/lib/ocf/resource.d/sanforge/alua ACTION` (a symlink to
//! `/init`, dispatched on argv[0]) or by hand as `sanforge-init ocf-alua ACTION`; it reads
//! its parameters from `OCF_RESKEY_*` and these files only:
//!
//! * SCST: `<sysfs_root>/kernel/scst_tgt/device_groups/<dg>/target_groups/<tg>/state`
//!   (ALUA state names), `…/targets/<driver>/<target>/enabled`, `last_sysfs_mgmt_res`;
//! * LIO: `<sysfs_root>/kernel/config/target/core/<hba>/<dev>/alua/<tg_pt_gp>/alua_access_state`
//!   (numbers, `target_core_alua.h`: 0 active/optimized, 1 active/non-optimized,
//!   2 standby, 3 unavailable, 4 LBA-dependent, 14 offline, 15 transitioning) and
//!   `…/target/<fabric>/<wwn>/tpgt_N/enable`.
//!
//! Semantics (exit codes are OCF's, see [`Rc`]):
//! * start: local group → unpromoted state, remote group (when named) → promoted
//!   state (the peer is assumed to serve), ports enabled. Monitor then says 0.
//! * promote: local → `transitioning`, remote → unpromoted, local → promoted (8).
//! * demote: local → `transitioning` → unpromoted, remote → promoted (0).
//! * stop: local → `transitioning` (when promoted) → `offline`, ports disabled (7).
//!   A stop that cannot finish returns 1: Pacemaker then **fences the node**, which is
//!   the only safe answer when a node may still be advertising active paths.
//! * monitor: 8 promoted, 0 unpromoted, 7 stopped (group absent, local state offline,
//!   or every configured port disabled), 9 promoted-looking but inconsistent (ports
//!   not all enabled, devices disagreeing, the remote group promoted too), 1 anything
//!   else (e.g. left in `transitioning` by an interrupted promote).
//!
//! Why `standby` by default when unpromoted: with single-primary DRBD the secondary
//! cannot serve I/O at all, so advertising active/non-optimized would send initiators
//! I/O that must fail (ha.md §3, "design tension"). `standby` is SPC's state for a
//! path that becomes usable by a transition (initiators keep probing it; Linux's
//! multipath ranks it above `unavailable`, which means "broken"); SCST's
//! `bind_alua_state=1` also closes the backing device outside the active states, which
//! is what a DRBD secondary needs. Use `nonoptimized` only with dual-primary DRBD or
//! I/O forwarding. `transitioning` is written during every switchover, as SCST's README
//! recommends, so initiators retry instead of failing.
//!
//! LIO with `lio_luns` (what `sanforge cluster render` gives a `target = "lio"`
//! cluster): an iblock backstore opens its block device when enabled, and a
//! single-primary DRBD Secondary cannot be opened at all, so the LUNs exist on the
//! promoted node only. promote creates, per `NAME=DEVICE@LUN`, `core/iblock_LUN/NAME`
//! (control, a unit serial from `cluster_name` + NAME, enable; the device's
//! `default_tg_pt_gp` in `transitioning`), `lun/lun_LUN` in every TPG of `ports` and
//! `lun_LUN` in every ACL of those TPGs, then sets the promoted state; demote and stop
//! remove them in reverse order (a stop that cannot returns 1: fence); start leaves
//! the ports enabled without LUNs. Monitor: 8 all LUNs there and promoted, 0 none and
//! ports enabled, 7 none and ports disabled, 9 promoted with LUNs missing, 1 half-made.
//! Each configfs change is one mkdir, symlink, unlink, rmdir or write, idempotent, and
//! its error names the path and errno. With `sysfs_root` other than `/sys` (tests) a
//! plain directory tree stands for configfs: the agent then creates the attribute
//! files the kernel would and removes them on rmdir.
//!
//! Every sysfs/configfs write is one `write(2)` of the whole value on a fresh open
//! (never creating the file), and every error names the path and the errno. Log lines
//! go to stderr (Pacemaker collects them) prefixed with `alua(<instance>)[pid]`, and are
//! appended to `$HA_LOGFILE` when set; debug lines only with `HA_debug=1`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The agent's type name (`ocf:sanforge:alua`); also the argv[0] name it answers to.
pub const AGENT: &str = "alua";
/// The sanforge-init subcommand that runs the agent.
pub const SUBCOMMAND: &str = "ocf-alua";

/// OCF exit codes (Pacemaker_Administration/agents.rst).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rc {
    Success = 0,
    ErrGeneric = 1,
    ErrArgs = 2,
    ErrUnimplemented = 3,
    ErrPerm = 4,
    ErrInstalled = 5,
    ErrConfigured = 6,
    NotRunning = 7,
    RunningPromoted = 8,
    FailedPromoted = 9,
}

impl Rc {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Which SCSI target stack the node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    Scst,
    Lio,
}

/// An ALUA asymmetric access state (SPC-4), as SCST names it and LIO numbers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluaState {
    Active,
    Nonoptimized,
    Standby,
    Unavailable,
    /// LIO only (SCST does not support it); never written by the agent.
    LbaDependent,
    Offline,
    Transitioning,
}

impl AluaState {
    /// The SCST sysfs name (`scst_tg_state_names`).
    pub fn scst_name(self) -> &'static str {
        match self {
            AluaState::Active => "active",
            AluaState::Nonoptimized => "nonoptimized",
            AluaState::Standby => "standby",
            AluaState::Unavailable => "unavailable",
            AluaState::LbaDependent => "lba-dependent",
            AluaState::Offline => "offline",
            AluaState::Transitioning => "transitioning",
        }
    }

    /// The LIO configfs number (`ALUA_ACCESS_STATE_*`).
    pub fn lio_code(self) -> u8 {
        match self {
            AluaState::Active => 0,
            AluaState::Nonoptimized => 1,
            AluaState::Standby => 2,
            AluaState::Unavailable => 3,
            AluaState::LbaDependent => 4,
            AluaState::Offline => 14,
            AluaState::Transitioning => 15,
        }
    }

    /// Parses an SCST state name (exact, as the kernel compares them).
    pub fn from_scst(s: &str) -> Option<Self> {
        ALL_STATES
            .iter()
            .copied()
            .find(|st| *st != AluaState::LbaDependent && st.scst_name() == s)
    }

    /// Parses a LIO `alua_access_state` value (decimal or 0x-hex, like `kstrtoul(…, 0)`).
    pub fn from_lio(s: &str) -> Option<Self> {
        let n = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => u8::from_str_radix(h, 16).ok()?,
            None => s.parse::<u8>().ok()?,
        };
        ALL_STATES.iter().copied().find(|st| st.lio_code() == n)
    }

    fn encode(self, stack: Stack) -> String {
        match stack {
            Stack::Scst => format!("{}\n", self.scst_name()),
            Stack::Lio => format!("{}\n", self.lio_code()),
        }
    }

    fn decode(stack: Stack, s: &str) -> Option<Self> {
        match stack {
            Stack::Scst => Self::from_scst(s),
            Stack::Lio => Self::from_lio(s),
        }
    }
}

impl fmt::Display for AluaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scst_name())
    }
}

const ALL_STATES: [AluaState; 7] = [
    AluaState::Active,
    AluaState::Nonoptimized,
    AluaState::Standby,
    AluaState::Unavailable,
    AluaState::LbaDependent,
    AluaState::Offline,
    AluaState::Transitioning,
];

/// One agent parameter, as the meta-data describes it.
pub struct ParamSpec {
    pub name: &'static str,
    pub required: bool,
    pub default: Option<&'static str>,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

/// Every parameter the agent reads (`OCF_RESKEY_<name>`), in meta-data order.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "stack",
        required: false,
        default: Some("scst"),
        shortdesc: "SCSI target stack: scst or lio",
        longdesc: "The SCSI target stack whose ALUA state this agent manages: scst \
                   (/sys/kernel/scst_tgt) or lio (configfs, /sys/kernel/config/target).",
    },
    ParamSpec {
        name: "device_group",
        required: false,
        default: None,
        shortdesc: "SCST device group",
        longdesc: "SCST only, required there: the ALUA device group (DEVICE_GROUP in \
                   scst.conf, /sys/kernel/scst_tgt/device_groups/NAME) whose target groups \
                   this agent switches.",
    },
    ParamSpec {
        name: "lio_devices",
        required: false,
        default: None,
        shortdesc: "LIO backstores (HBA/DEVICE, space separated)",
        longdesc: "LIO only, required there: the backstores whose ALUA target port groups \
                   this agent switches, each as HBA/DEVICE under \
                   /sys/kernel/config/target/core (e.g. iblock_0/disk1), separated by blanks.",
    },
    ParamSpec {
        name: "lio_luns",
        required: false,
        default: None,
        shortdesc: "LIO LUNs created at promote (NAME=/dev/DEVICE@LUN, space separated)",
        longdesc: "LIO only, instead of lio_devices: the LUNs this agent creates on promote \
                   and removes on demote and stop, for block devices that only the promoted \
                   node can open (single-primary DRBD). Each entry is NAME=DEVICE@LUN, e.g. \
                   disk0=/dev/drbd0@0, separated by blanks. On promote, per entry: the \
                   iblock backstore core/iblock_LUN/NAME (control udev_path=DEVICE, \
                   wwn/vpd_unit_serial derived from cluster_name and NAME so every node \
                   presents the same LU, enable 1, its default_tg_pt_gp transitioning), \
                   LUN LUN in every TPG listed in ports (required), the mapped LUN LUN in \
                   every ACL of those TPGs, then default_tg_pt_gp set to promoted_state. Demote and stop remove them in \
                   reverse order (mapped LUNs, LUNs, backstore) so DRBD can demote; start \
                   leaves the ports enabled without LUNs. Monitor: 8 with every LUN present \
                   and promoted, 0 without any LUN and ports enabled, 7 without LUNs and \
                   ports disabled. When sysfs_root is not /sys (tests), the tree is a plain \
                   directory tree and the agent creates the attribute files configfs would.",
    },
    ParamSpec {
        name: "cluster_name",
        required: false,
        default: Some(""),
        shortdesc: "Cluster name, part of the LIO unit serial (lio_luns)",
        longdesc: "With lio_luns: the cluster name; the unit serial (VPD page 0x80, and the \
                   NAA identifier LIO derives from it) of LUN NAME is the first 32 hex digits \
                   of sha256(\"sanforge:CLUSTER_NAME:NAME\"), identical on every node.",
    },
    ParamSpec {
        name: "local_target_group",
        required: false,
        default: None,
        shortdesc: "Target group of this node's ports",
        longdesc: "The ALUA target group that holds this node's target ports: an SCST \
                   TARGET_GROUP of the device group, or for LIO the tg_pt_gp name under \
                   core/HBA/DEVICE/alua/ of every listed backstore. Its state is what \
                   promote and demote switch. Required, except with lio_luns, where it \
                   defaults to default_tg_pt_gp.",
    },
    ParamSpec {
        name: "remote_target_group",
        required: false,
        default: None,
        shortdesc: "Target group of the peer's ports (optional)",
        longdesc: "The ALUA target group that stands for the peer node's ports in this \
                   node's configuration (SCST keeps no ALUA state in sync between nodes). \
                   When set, promote marks it with unpromoted_state and start and demote \
                   mark it with promoted_state, so both nodes report the same picture to \
                   initiators.",
    },
    ParamSpec {
        name: "promoted_state",
        required: false,
        default: Some("active"),
        shortdesc: "ALUA state when promoted: active or nonoptimized",
        longdesc: "The ALUA state of the local target group while this instance is \
                   promoted: active (active/optimized, the default) or nonoptimized.",
    },
    ParamSpec {
        name: "unpromoted_state",
        required: false,
        default: Some("standby"),
        shortdesc: "ALUA state when unpromoted: standby, unavailable or nonoptimized",
        longdesc: "The ALUA state of the local target group while this instance runs \
                   unpromoted. standby (the default) suits single-primary DRBD, whose \
                   secondary cannot serve I/O; unavailable also refuses I/O; nonoptimized \
                   only makes sense with dual-primary DRBD or I/O forwarding.",
    },
    ParamSpec {
        name: "ports",
        required: false,
        default: Some(""),
        shortdesc: "Target ports enabled on start, disabled on stop (optional)",
        longdesc: "Target ports this agent enables on start and disables on stop, separated \
                   by blanks. SCST: DRIVER/TARGET under /sys/kernel/scst_tgt/targets \
                   (e.g. iscsi/iqn.2024-01.org.example:t1). LIO: FABRIC/WWN/tpgt_N under \
                   /sys/kernel/config/target (e.g. iscsi/iqn.2024-01.org.example:t1/tpgt_1). \
                   When set, a node whose ports are all disabled is reported stopped.",
    },
    ParamSpec {
        name: "sysfs_root",
        required: false,
        default: Some("/sys"),
        shortdesc: "Advanced: where sysfs is mounted",
        longdesc: "Advanced, for tests: the directory standing for /sys (configfs is \
                   expected at SYSFS_ROOT/kernel/config). Leave the default in production.",
    },
];

/// The environment the agent reads (a snapshot of the process's, or given by tests).
#[derive(Clone, Debug, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    pub fn from_process() -> Self {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// `OCF_RESKEY_<name>`, blank values treated as unset.
    fn param(&self, name: &str) -> Option<&str> {
        self.get(&format!("OCF_RESKEY_{name}"))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

/// Validated parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub stack: Stack,
    pub sysfs_root: PathBuf,
    /// SCST: the device group.
    pub device_group: Option<String>,
    /// LIO: `HBA/DEVICE` backstores.
    pub lio_devices: Vec<String>,
    pub local_target_group: String,
    pub remote_target_group: Option<String>,
    pub promoted_state: AluaState,
    pub unpromoted_state: AluaState,
    pub ports: Vec<String>,
    /// LIO: LUNs created at promote and removed at demote (`lio_luns`); when set,
    /// `lio_devices` holds their `iblock_LUN/NAME` backstores.
    pub lio_luns: Vec<LioLun>,
    /// Part of the LIO unit serial (`cluster_name`).
    pub cluster_name: String,
    /// True when `sysfs_root` is not `/sys`: a plain directory tree stands for
    /// configfs, so the agent creates the attribute files the kernel would.
    pub fake_tree: bool,
}

/// One `lio_luns` entry: `NAME=DEVICE@LUN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LioLun {
    pub name: String,
    pub device: String,
    pub lun: u32,
}

impl LioLun {
    /// Parses `NAME=DEVICE@LUN`.
    pub fn parse(v: &str) -> Result<LioLun, String> {
        let shape = || format!("lio_luns entry '{v}' must have the form NAME=/dev/DEVICE@LUN");
        let (name, rest) = v.split_once('=').ok_or_else(shape)?;
        let (device, lun) = rest.rsplit_once('@').ok_or_else(shape)?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "lio_luns entry '{v}': backstore name '{name}' must be letters, digits, '_' or '-'"
            ));
        }
        if !device.starts_with("/dev/")
            || device.len() <= 5
            || device.contains("/../")
            || device.contains([',', '='])
        {
            return Err(format!(
                "lio_luns entry '{v}': device '{device}' must be a path under /dev/"
            ));
        }
        let lun = lun
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| format!("lio_luns entry '{v}': LUN '{lun}' must be 0 to 65535"))?;
        Ok(LioLun {
            name: name.to_string(),
            device: device.to_string(),
            lun,
        })
    }

    /// `iblock_LUN/NAME`, the backstore under `core/`.
    pub fn backstore(&self) -> String {
        format!("iblock_{}/{}", self.lun, self.name)
    }
}

/// The unit serial of LIO LUN `name` in cluster `cluster`: the same on every node, so
/// initiators see one logical unit behind every node's port.
pub fn lio_unit_serial(cluster: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("sanforge:{cluster}:{name}").as_bytes());
    hex::encode(h)[..32].to_string()
}

/// A single path component: not empty, no `/`, not `.` or `..`, no blanks.
fn check_name(what: &str, v: &str) -> Result<(), String> {
    if v.is_empty()
        || v == "."
        || v == ".."
        || v.contains('/')
        || v.chars().any(char::is_whitespace)
    {
        return Err(format!("{what} '{v}' is not a valid name"));
    }
    Ok(())
}

/// `a/b[/c]` with exactly `n` valid components.
fn check_path(what: &str, v: &str, n: usize, shape: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split('/').collect();
    if parts.len() != n || parts.iter().any(|p| check_name(what, p).is_err()) {
        return Err(format!("{what} '{v}' must have the form {shape}"));
    }
    Ok(())
}

impl Params {
    /// Reads and checks `OCF_RESKEY_*`; the error says which parameter is wrong.
    pub fn from_env(env: &Env) -> Result<Params, String> {
        let stack = match env.param("stack").unwrap_or("scst") {
            "scst" => Stack::Scst,
            "lio" => Stack::Lio,
            other => return Err(format!("stack '{other}' is neither scst nor lio")),
        };
        let sysfs_root = PathBuf::from(env.param("sysfs_root").unwrap_or("/sys"));
        if !sysfs_root.is_absolute() {
            return Err(format!(
                "sysfs_root '{}' is not an absolute path",
                sysfs_root.display()
            ));
        }
        let lio_luns = match env.param("lio_luns") {
            Some(v) => v
                .split_whitespace()
                .map(LioLun::parse)
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        if !lio_luns.is_empty() && stack != Stack::Lio {
            return Err("lio_luns is for stack lio".into());
        }
        for (i, l) in lio_luns.iter().enumerate() {
            if lio_luns[..i]
                .iter()
                .any(|o| o.name == l.name || o.lun == l.lun)
            {
                return Err(format!(
                    "lio_luns: backstore {} or LUN {} is listed twice",
                    l.name, l.lun
                ));
            }
        }
        let cluster_name = env.param("cluster_name").unwrap_or("").to_string();
        if cluster_name.contains(char::is_whitespace) || cluster_name.contains(':') {
            return Err(format!(
                "cluster_name '{cluster_name}' must not contain blanks or ':'"
            ));
        }
        let local_target_group = match env.param("local_target_group") {
            Some(v) => v.to_string(),
            None if !lio_luns.is_empty() => "default_tg_pt_gp".to_string(),
            None => return Err("the required parameter local_target_group is not set".into()),
        };
        check_name("local_target_group", &local_target_group)?;
        let remote_target_group = env.param("remote_target_group").map(str::to_string);
        if let Some(r) = &remote_target_group {
            check_name("remote_target_group", r)?;
            if *r == local_target_group {
                return Err(format!(
                    "remote_target_group '{r}' is the local target group"
                ));
            }
        }
        let state =
            |name: &str, default: &str, allowed: &[AluaState]| -> Result<AluaState, String> {
                let v = env.param(name).unwrap_or(default);
                let names: Vec<&str> = allowed.iter().map(|s| s.scst_name()).collect();
                AluaState::from_scst(v)
                    .filter(|s| allowed.contains(s))
                    .ok_or_else(|| format!("{name} '{v}' is not one of {}", names.join(", ")))
            };
        let promoted_state = state(
            "promoted_state",
            "active",
            &[AluaState::Active, AluaState::Nonoptimized],
        )?;
        let unpromoted_state = state(
            "unpromoted_state",
            "standby",
            &[
                AluaState::Standby,
                AluaState::Unavailable,
                AluaState::Nonoptimized,
            ],
        )?;
        if promoted_state == unpromoted_state {
            return Err(format!(
                "promoted_state and unpromoted_state are both '{promoted_state}': promotion would change nothing"
            ));
        }
        let list = |name: &str| -> Vec<String> {
            env.param(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let ports = list("ports");
        let (device_group, lio_devices) = match stack {
            Stack::Scst => {
                let dg = env
                    .param("device_group")
                    .ok_or("stack scst needs the parameter device_group")?;
                check_name("device_group", dg)?;
                if env.param("lio_devices").is_some() {
                    return Err("lio_devices is for stack lio, not scst".into());
                }
                for p in &ports {
                    check_path("port", p, 2, "DRIVER/TARGET")?;
                }
                (Some(dg.to_string()), Vec::new())
            }
            Stack::Lio if !lio_luns.is_empty() => {
                if env.param("lio_devices").is_some() {
                    return Err(
                        "lio_devices and lio_luns exclude each other: lio_luns creates its own backstores"
                            .into(),
                    );
                }
                if env.param("device_group").is_some() {
                    return Err("device_group is for stack scst; lio uses lio_luns".into());
                }
                if ports.is_empty() {
                    return Err(
                        "lio_luns needs the parameter ports (FABRIC/WWN/tpgt_N …): the TPGs that get the LUNs"
                            .into(),
                    );
                }
                for p in &ports {
                    check_path("port", p, 3, "FABRIC/WWN/tpgt_N")?;
                }
                (None, lio_luns.iter().map(LioLun::backstore).collect())
            }
            Stack::Lio => {
                let devs = list("lio_devices");
                if devs.is_empty() {
                    return Err(
                        "stack lio needs the parameter lio_devices (HBA/DEVICE …) or lio_luns"
                            .into(),
                    );
                }
                if env.param("device_group").is_some() {
                    return Err("device_group is for stack scst; lio uses lio_devices".into());
                }
                for d in &devs {
                    check_path("lio device", d, 2, "HBA/DEVICE")?;
                }
                for p in &ports {
                    check_path("port", p, 3, "FABRIC/WWN/tpgt_N")?;
                }
                (None, devs)
            }
        };
        // One promoted instance cluster-wide, one instance per node: two active/optimized
        // groups over single-primary storage would hand initiators paths that cannot write.
        for key in [
            "promoted_max",
            "master_max",
            "promoted_node_max",
            "master_node_max",
            "clone_node_max",
        ] {
            if let Some(v) = env.get(&format!("OCF_RESKEY_CRM_meta_{key}")) {
                if v.trim() != "1" {
                    return Err(format!(
                        "meta attribute {} is {v}; this agent needs 1",
                        key.replace('_', "-")
                    ));
                }
            }
        }
        let fake_tree = sysfs_root != Path::new("/sys");
        Ok(Params {
            stack,
            sysfs_root,
            device_group,
            lio_devices,
            local_target_group,
            remote_target_group,
            promoted_state,
            unpromoted_state,
            ports,
            lio_luns,
            cluster_name,
            fake_tree,
        })
    }

    /// True when the agent creates and removes LIO LUNs (`lio_luns`).
    pub fn manages_luns(&self) -> bool {
        !self.lio_luns.is_empty()
    }

    fn stack_root(&self) -> PathBuf {
        match self.stack {
            Stack::Scst => self.sysfs_root.join("kernel/scst_tgt"),
            Stack::Lio => self.sysfs_root.join("kernel/config/target"),
        }
    }

    /// The state files of target group `tg` (one for SCST, one per backstore for LIO).
    fn state_files(&self, tg: &str) -> Vec<PathBuf> {
        let root = self.stack_root();
        match self.stack {
            Stack::Scst => {
                let dg = self.device_group.as_deref().unwrap_or_default();
                vec![root
                    .join("device_groups")
                    .join(dg)
                    .join("target_groups")
                    .join(tg)
                    .join("state")]
            }
            Stack::Lio => self
                .lio_devices
                .iter()
                .map(|d| {
                    root.join("core")
                        .join(d)
                        .join("alua")
                        .join(tg)
                        .join("alua_access_state")
                })
                .collect(),
        }
    }

    fn port_files(&self) -> Vec<PathBuf> {
        let root = self.stack_root();
        self.ports
            .iter()
            .map(|p| match self.stack {
                Stack::Scst => root.join("targets").join(p).join("enabled"),
                Stack::Lio => root.join(p).join("enable"),
            })
            .collect()
    }

    /// Everything validate-all requires to exist, with what it stands for.
    fn required_paths(&self) -> Vec<(PathBuf, String)> {
        let root = self.stack_root();
        let mut out = vec![(
            root.clone(),
            format!("{} tree (is the module loaded?)", self.stack_name()),
        )];
        if let (Stack::Scst, Some(dg)) = (self.stack, &self.device_group) {
            out.push((
                root.join("device_groups").join(dg),
                format!("device group {dg}"),
            ));
        }
        if self.manages_luns() {
            out.push((root.join("core"), "LIO core (target_core_mod)".into()));
            for (f, p) in self.port_files().into_iter().zip(&self.ports) {
                out.push((f, format!("port {p}")));
            }
            return out;
        }
        if self.stack == Stack::Lio {
            for d in &self.lio_devices {
                out.push((root.join("core").join(d), format!("backstore {d}")));
            }
        }
        let mut tgs = vec![self.local_target_group.as_str()];
        tgs.extend(self.remote_target_group.as_deref());
        for tg in tgs {
            for f in self.state_files(tg) {
                out.push((f, format!("target group {tg}")));
            }
        }
        for (f, p) in self.port_files().into_iter().zip(&self.ports) {
            out.push((f, format!("port {p}")));
        }
        out
    }

    fn stack_name(&self) -> &'static str {
        match self.stack {
            Stack::Scst => "scst",
            Stack::Lio => "lio",
        }
    }
}

/// The ports' combined state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    /// No `ports` parameter.
    Unmanaged,
    AllEnabled,
    AllDisabled,
    Mixed,
}

/// What monitor saw: the local group's state per state file (`None` = file absent),
/// the remote group's, and the ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub local: Vec<Option<AluaState>>,
    pub remote: Vec<Option<AluaState>>,
    pub ports: Ports,
}

/// Monitor's verdict from an observation (pure, so the whole table is unit-tested).
pub fn classify(p: &Params, o: &Observed) -> (Rc, String) {
    let present: Vec<AluaState> = o.local.iter().flatten().copied().collect();
    let promoted_looking = present.contains(&p.promoted_state);
    if present.is_empty() {
        return (Rc::NotRunning, "the local target group is absent".into());
    }
    if promoted_looking {
        if present.len() != o.local.len() {
            return (
                Rc::FailedPromoted,
                "promoted, but the local target group is missing on some devices".into(),
            );
        }
        if present.iter().any(|s| *s != p.promoted_state) {
            return (
                Rc::FailedPromoted,
                format!("promoted on some devices only: {}", list(&present)),
            );
        }
        if matches!(o.ports, Ports::AllDisabled | Ports::Mixed) {
            return (
                Rc::FailedPromoted,
                "promoted, but not every port is enabled".into(),
            );
        }
        if o.remote.iter().flatten().any(|s| *s == p.promoted_state) {
            return (
                Rc::FailedPromoted,
                format!(
                    "promoted, but the remote target group is {} too",
                    p.promoted_state
                ),
            );
        }
        return (
            Rc::RunningPromoted,
            format!("running promoted ({})", p.promoted_state),
        );
    }
    if present.len() != o.local.len() {
        return (
            Rc::ErrGeneric,
            "the local target group is missing on some devices".into(),
        );
    }
    let Some(&first) = present.first() else {
        return (Rc::NotRunning, "the local target group is absent".into());
    };
    if present.iter().any(|s| *s != first) {
        return (
            Rc::ErrGeneric,
            format!("the devices disagree: {}", list(&present)),
        );
    }
    match (first, o.ports) {
        (AluaState::Offline, Ports::Unmanaged | Ports::AllDisabled) => {
            (Rc::NotRunning, "stopped (offline)".into())
        }
        (AluaState::Offline, _) => (
            Rc::ErrGeneric,
            "offline, but ports are enabled: an unfinished stop".into(),
        ),
        (s, Ports::AllDisabled) if s == p.unpromoted_state => (
            Rc::NotRunning,
            format!("stopped ({s}, every port disabled)"),
        ),
        (s, Ports::Mixed) if s == p.unpromoted_state => (
            Rc::ErrGeneric,
            format!("{s}, but only some ports are enabled"),
        ),
        (s, _) if s == p.unpromoted_state => (Rc::Success, format!("running unpromoted ({s})")),
        (AluaState::Transitioning, _) => (
            Rc::ErrGeneric,
            "left in transitioning (an interrupted promote or demote)".into(),
        ),
        (s, _) => (
            Rc::ErrGeneric,
            format!(
                "unexpected state {s} (promoted_state {}, unpromoted_state {})",
                p.promoted_state, p.unpromoted_state
            ),
        ),
    }
}

fn list(states: &[AluaState]) -> String {
    states
        .iter()
        .map(|s| s.scst_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where log lines go.
pub struct Log {
    prefix: String,
    debug: bool,
    file: Option<PathBuf>,
}

impl Log {
    pub fn from_env(env: &Env) -> Self {
        let inst = env.get("OCF_RESOURCE_INSTANCE").unwrap_or("default");
        Log {
            prefix: format!("{AGENT}({inst})[{}]", std::process::id()),
            debug: matches!(env.get("HA_debug"), Some("1" | "yes" | "true")),
            file: env
                .get("HA_LOGFILE")
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
        }
    }

    fn line(&self, level: &str, msg: &str) {
        let line = format!("{}: {level}: {msg}", self.prefix);
        eprintln!("{line}");
        if let Some(f) = &self.file {
            // Logging never fails an action.
            if let Ok(mut fh) = OpenOptions::new().create(true).append(true).open(f) {
                let _ = writeln!(fh, "{} {line}", utc_now());
            }
        }
    }
    pub fn info(&self, msg: &str) {
        self.line("INFO", msg)
    }
    pub fn warn(&self, msg: &str) {
        self.line("WARNING", msg)
    }
    pub fn err(&self, msg: &str) {
        self.line("ERROR", msg)
    }
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.line("DEBUG", msg)
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no date crate needed).
fn utc_now() -> String {
    crate::util::time::rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Reads one sysfs attribute's first line (SCST adds `[key]` as a second line).
fn read_attr(path: &Path) -> io::Result<String> {
    let mut s = String::new();
    File::open(path)?.take(4096).read_to_string(&mut s)?;
    Ok(s.lines().next().unwrap_or("").trim().to_string())
}

/// The agent bound to its parameters, environment and deadline.
pub struct Agent<'a> {
    pub params: Params,
    log: &'a Log,
    deadline: Instant,
}

impl<'a> Agent<'a> {
    pub fn new(params: Params, env: &Env, log: &'a Log) -> Self {
        // Pacemaker passes the action's timeout; keep a margin to report before it kills us.
        let ms = env
            .get("OCF_RESKEY_CRM_meta_timeout")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(20_000)
            .min(86_400_000);
        let budget = Duration::from_millis(ms)
            .saturating_sub(Duration::from_secs(2))
            .max(Duration::from_secs(1));
        Agent {
            params,
            log,
            deadline: Instant::now() + budget,
        }
    }

    /// 0 when every required file exists, else 5 naming the first missing one.
    pub fn check_installed(&self) -> Result<(), String> {
        for (path, what) in self.params.required_paths() {
            if !path.exists() {
                return Err(format!(
                    "{what} not found: {} does not exist",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    fn read_states(&self, files: &[PathBuf]) -> Result<Vec<Option<AluaState>>, String> {
        files
            .iter()
            .map(|f| match read_attr(f) {
                Ok(v) => AluaState::decode(self.params.stack, &v)
                    .map(Some)
                    .ok_or_else(|| format!("{} holds '{v}', not an ALUA state", f.display())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read {}: {e}", f.display())),
            })
            .collect()
    }

    fn read_ports(&self) -> Result<Ports, String> {
        let files = self.params.port_files();
        if files.is_empty() {
            return Ok(Ports::Unmanaged);
        }
        let mut on = 0;
        for f in &files {
            match read_attr(f) {
                Ok(v) if v == "1" => on += 1,
                Ok(v) if v == "0" => {}
                Ok(v) => return Err(format!("{} holds '{v}', expected 0 or 1", f.display())),
                // A port that does not exist serves nothing: count it as disabled.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot read {}: {e}", f.display())),
            }
        }
        Ok(match on {
            0 => Ports::AllDisabled,
            n if n == files.len() => Ports::AllEnabled,
            _ => Ports::Mixed,
        })
    }

    pub fn observe(&self) -> Result<Observed, String> {
        let p = &self.params;
        let local = self.read_states(&p.state_files(&p.local_target_group))?;
        let remote = match &p.remote_target_group {
            Some(r) => self.read_states(&p.state_files(r))?,
            None => Vec::new(),
        };
        Ok(Observed {
            local,
            remote,
            ports: self.read_ports()?,
        })
    }

    pub fn monitor(&self) -> Rc {
        if self.params.manages_luns() {
            return self.lio_monitor();
        }
        if !self.params.stack_root().exists() {
            self.log.debug(&format!(
                "{} does not exist: not running",
                self.params.stack_root().display()
            ));
            return Rc::NotRunning;
        }
        match self.observe() {
            Ok(o) => {
                let (rc, why) = classify(&self.params, &o);
                match rc {
                    Rc::Success | Rc::RunningPromoted | Rc::NotRunning => self.log.debug(&why),
                    _ => self.log.err(&why),
                }
                rc
            }
            Err(e) => {
                self.log.err(&e);
                Rc::ErrGeneric
            }
        }
    }

    /// Writes `value` to `path` in one write(2) on a fresh open that never creates the
    /// file. SCST's EAGAIN ("queued, not finished") is followed by polling
    /// `last_sysfs_mgmt_res`; EINTR and EBUSY are retried until the deadline.
    fn write_attr(&self, path: &Path, value: &str) -> Result<(), String> {
        let shown = value.trim_end();
        loop {
            self.log
                .debug(&format!("write '{shown}' to {}", path.display()));
            let res = OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .and_then(|mut f| {
                    let n = f.write(value.as_bytes())?;
                    if n != value.len() {
                        return Err(io::Error::other(format!(
                            "short write: {n} of {} bytes",
                            value.len()
                        )));
                    }
                    Ok(())
                });
            let err = match res {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let errno = err.raw_os_error();
            if self.params.stack == Stack::Scst && errno == Some(libc::EAGAIN) {
                return self.wait_scst_mgmt(path, shown);
            }
            if matches!(errno, Some(libc::EINTR | libc::EBUSY)) && Instant::now() < self.deadline {
                self.log.warn(&format!(
                    "cannot write '{shown}' to {}: {err}; retrying",
                    path.display()
                ));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            return Err(format!(
                "cannot write '{shown}' to {}: {err}",
                path.display()
            ));
        }
    }

    /// After EAGAIN, SCST finishes the work in the background; its result shows in
    /// `last_sysfs_mgmt_res` (readable once no work is queued) as 0 or -errno.
    fn wait_scst_mgmt(&self, path: &Path, shown: &str) -> Result<(), String> {
        let res_file = self.params.stack_root().join("last_sysfs_mgmt_res");
        self.log.info(&format!(
            "{} is still being applied; polling {}",
            path.display(),
            res_file.display()
        ));
        loop {
            match read_attr(&res_file) {
                Ok(v) => {
                    return match v.parse::<i32>() {
                        Ok(0) => Ok(()),
                        Ok(n) => Err(format!(
                            "cannot write '{shown}' to {}: {} (from {}; see dmesg)",
                            path.display(),
                            io::Error::from_raw_os_error(-n),
                            res_file.display()
                        )),
                        Err(_) => Err(format!(
                            "{} holds '{v}', not a result code",
                            res_file.display()
                        )),
                    };
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::EAGAIN) && Instant::now() < self.deadline =>
                {
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(format!("cannot read {}: {e}", res_file.display())),
            }
        }
    }

    /// Sets every state file of group `tg` to `state`, skipping those already there
    /// (each write raises a unit attention on every initiator).
    fn set_group(&self, tg: &str, state: AluaState, errors: &mut Vec<String>) {
        for f in self.params.state_files(tg) {
            let cur = read_attr(&f)
                .ok()
                .and_then(|v| AluaState::decode(self.params.stack, &v));
            if cur == Some(state) {
                continue;
            }
            match self.write_attr(&f, &state.encode(self.params.stack)) {
                Ok(()) => self
                    .log
                    .info(&format!("target group {tg}: {state} ({})", f.display())),
                Err(e) => errors.push(e),
            }
        }
    }

    fn set_ports(&self, on: bool, errors: &mut Vec<String>) {
        let want = if on { "1" } else { "0" };
        for f in self.params.port_files() {
            if read_attr(&f).map(|v| v == want).unwrap_or(false) {
                continue;
            }
            match self.write_attr(&f, &format!("{want}\n")) {
                Ok(()) => self.log.info(&format!(
                    "{} {}",
                    if on { "enabled" } else { "disabled" },
                    f.display()
                )),
                Err(e) => errors.push(e),
            }
        }
    }

    fn local_is_promoted(&self) -> bool {
        let p = &self.params;
        self.read_states(&p.state_files(&p.local_target_group))
            .map(|v| v.contains(&Some(p.promoted_state)))
            .unwrap_or(true)
    }

    /// Logs the errors and returns 1, or checks that monitor now says `want`.
    fn finish(&self, action: &str, errors: Vec<String>, want: Rc) -> Rc {
        if !errors.is_empty() {
            for e in &errors {
                self.log.err(e);
            }
            self.log.err(&format!("{action} failed"));
            return Rc::ErrGeneric;
        }
        let rc = self.monitor();
        if rc != want {
            self.log.err(&format!(
                "{action} failed: monitor says {} instead of {}",
                rc.code(),
                want.code()
            ));
            return Rc::ErrGeneric;
        }
        self.log.info(&format!("{action}: done"));
        Rc::Success
    }

    pub fn start(&self) -> Rc {
        if self.params.manages_luns() {
            return self.lio_start();
        }
        if let Err(e) = self.check_installed() {
            self.log.err(&e);
            return Rc::ErrInstalled;
        }
        if self.monitor() == Rc::Success {
            self.log.info("start: already running unpromoted");
            return Rc::Success;
        }
        let p = &self.params;
        let mut errors = Vec::new();
        if self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        self.set_group(&p.local_target_group, p.unpromoted_state, &mut errors);
        if let Some(r) = &p.remote_target_group {
            self.set_group(r, p.promoted_state, &mut errors);
        }
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("start", errors, Rc::Success)
    }

    /// Stop must reach "stopped" or fail with 1, upon which Pacemaker fences the node.
    pub fn stop(&self) -> Rc {
        if self.params.manages_luns() {
            return self.lio_stop();
        }
        if let Err(e) = self.check_installed() {
            if !self.params.stack_root().exists() || self.monitor() == Rc::NotRunning {
                self.log.info(&format!("stop: nothing to stop ({e})"));
                return Rc::Success;
            }
        }
        let p = &self.params;
        let mut errors = Vec::new();
        if self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        self.set_group(&p.local_target_group, AluaState::Offline, &mut errors);
        // Disable the ports even when the state write failed: fewer paths left to serve.
        self.set_ports(false, &mut errors);
        let rc = self.finish("stop", errors, Rc::NotRunning);
        if rc != Rc::Success {
            self.log
                .err("stop did not complete: Pacemaker will fence this node");
        }
        rc
    }

    /// What promote answers before doing anything: not installed, already promoted
    /// (success), or not started; None when it should go ahead.
    fn promote_precheck(&self, monitor: impl FnOnce() -> Rc) -> Option<Rc> {
        if let Err(e) = self.check_installed() {
            self.log.err(&e);
            return Some(Rc::ErrInstalled);
        }
        match monitor() {
            Rc::RunningPromoted => {
                self.log.info("promote: already promoted");
                Some(Rc::Success)
            }
            Rc::NotRunning => {
                self.log
                    .err("promote: the resource is not running (start it first)");
                Some(Rc::ErrGeneric)
            }
            _ => None,
        }
    }

    pub fn promote(&self) -> Rc {
        if self.params.manages_luns() {
            return self.lio_promote();
        }
        if let Some(rc) = self.promote_precheck(|| self.monitor()) {
            return rc;
        }
        let p = &self.params;
        let mut errors = Vec::new();
        if !self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        if let Some(r) = &p.remote_target_group {
            self.set_group(r, p.unpromoted_state, &mut errors);
        }
        self.set_group(&p.local_target_group, p.promoted_state, &mut errors);
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("promote", errors, Rc::RunningPromoted)
    }

    pub fn demote(&self) -> Rc {
        if self.params.manages_luns() {
            return self.lio_demote();
        }
        if let Err(e) = self.check_installed() {
            self.log.err(&e);
            return Rc::ErrInstalled;
        }
        match self.monitor() {
            Rc::Success => {
                self.log.info("demote: already unpromoted");
                return Rc::Success;
            }
            Rc::NotRunning => {
                self.log.err("demote: the resource is not running");
                return Rc::ErrGeneric;
            }
            _ => {}
        }
        let p = &self.params;
        let mut errors = Vec::new();
        if self.local_is_promoted() {
            self.set_group(&p.local_target_group, AluaState::Transitioning, &mut errors);
        }
        self.set_group(&p.local_target_group, p.unpromoted_state, &mut errors);
        if let Some(r) = &p.remote_target_group {
            self.set_group(r, p.promoted_state, &mut errors);
        }
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("demote", errors, Rc::Success)
    }
}

/// How much of one `lio_luns` LUN exists in configfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LunPresence {
    /// No backstore, no LUN, no mapped LUN.
    Absent,
    /// Backstore enabled, a LUN in every TPG, a mapped LUN in every ACL.
    Complete,
    /// Anything in between (an interrupted promote or demote, or a hand edit).
    Partial,
}

/// Monitor's verdict with `lio_luns`: LUNs exist only while promoted.
pub fn classify_luns(
    p: &Params,
    luns: &[LunPresence],
    states: &[Option<AluaState>],
    ports: Ports,
) -> (Rc, String) {
    if luns.iter().all(|l| *l == LunPresence::Absent) {
        return match ports {
            Ports::AllEnabled => (
                Rc::Success,
                "running unpromoted (no LUNs, ports enabled)".into(),
            ),
            Ports::AllDisabled | Ports::Unmanaged => {
                (Rc::NotRunning, "stopped (no LUNs, ports disabled)".into())
            }
            Ports::Mixed => (
                Rc::ErrGeneric,
                "no LUNs, but only some ports are enabled".into(),
            ),
        };
    }
    if luns.iter().any(|l| *l != LunPresence::Complete) {
        if states.contains(&Some(p.promoted_state)) {
            return (
                Rc::FailedPromoted,
                "promoted, but some LUNs are missing or incomplete".into(),
            );
        }
        return (
            Rc::ErrGeneric,
            "LUNs half created or half removed (an interrupted promote or demote)".into(),
        );
    }
    let o = Observed {
        local: states.to_vec(),
        remote: Vec::new(),
        ports,
    };
    match classify(p, &o) {
        (rc @ (Rc::RunningPromoted | Rc::FailedPromoted), why) => (rc, why),
        (_, why) => (
            Rc::ErrGeneric,
            format!("the LUNs exist but the target group is not promoted: {why}"),
        ),
    }
}

/// Reads a directory's subdirectory names (none when it does not exist).
fn subdirs(dir: &Path) -> Result<Vec<String>, String> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            out.push(ent.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

/// On a fake tree: empties `dir` the way configfs drops its attributes and default
/// groups on rmdir; a symlink left inside is refused as the kernel would.
fn fake_clear(dir: &Path) -> io::Result<()> {
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        let t = ent.file_type()?;
        if t.is_symlink() {
            return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
        } else if t.is_dir() {
            fake_clear(&ent.path())?;
            std::fs::remove_dir(ent.path())?;
        } else {
            std::fs::remove_file(ent.path())?;
        }
    }
    Ok(())
}

impl Agent<'_> {
    fn lun_paths(&self, l: &LioLun) -> (PathBuf, PathBuf) {
        let core = self.params.stack_root().join("core");
        let hba = core.join(format!("iblock_{}", l.lun));
        let bs = hba.join(&l.name);
        (hba, bs)
    }

    /// `(tpg dir, [acl names])` for every port.
    fn tpgs(&self) -> Result<Vec<(PathBuf, Vec<String>)>, String> {
        let root = self.params.stack_root();
        self.params
            .ports
            .iter()
            .map(|p| {
                let tpg = root.join(p);
                Ok((tpg.clone(), subdirs(&tpg.join("acls"))?))
            })
            .collect()
    }

    fn lun_presence(&self, l: &LioLun) -> Result<LunPresence, String> {
        let (_, bs) = self.lun_paths(l);
        let mut parts = Vec::new();
        let bs_there = bs.is_dir();
        parts.push(bs_there);
        if bs_there {
            parts.push(
                read_attr(&bs.join("enable"))
                    .map(|v| v == "1")
                    .unwrap_or(false),
            );
        }
        for (tpg, acls) in self.tpgs()? {
            let lun_dir = tpg.join("lun").join(format!("lun_{}", l.lun));
            parts.push(lun_dir.is_dir());
            parts.push(is_link(&lun_dir.join(&l.name)));
            for a in acls {
                let m = tpg.join("acls").join(a).join(format!("lun_{}", l.lun));
                parts.push(m.is_dir());
                parts.push(is_link(&m.join("lun")));
            }
        }
        Ok(if parts.iter().all(|x| *x) {
            LunPresence::Complete
        } else if parts.iter().any(|x| *x) {
            LunPresence::Partial
        } else {
            LunPresence::Absent
        })
    }

    fn lio_monitor(&self) -> Rc {
        if !self.params.stack_root().exists() {
            return Rc::NotRunning;
        }
        let p = &self.params;
        let seen = (|| -> Result<_, String> {
            let luns = p
                .lio_luns
                .iter()
                .map(|l| self.lun_presence(l))
                .collect::<Result<Vec<_>, _>>()?;
            // The state of a backstore that is not enabled means nothing (the kernel
            // starts every device active/optimized).
            let states = self
                .read_states(&p.state_files(&p.local_target_group))?
                .into_iter()
                .zip(&p.lio_luns)
                .map(|(st, l)| {
                    let enable = self.lun_paths(l).1.join("enable");
                    st.filter(|_| read_attr(&enable).is_ok_and(|v| v == "1"))
                })
                .collect::<Vec<_>>();
            Ok((luns, states, self.read_ports()?))
        })();
        match seen {
            Ok((luns, states, ports)) => {
                let (rc, why) = classify_luns(p, &luns, &states, ports);
                match rc {
                    Rc::Success | Rc::RunningPromoted | Rc::NotRunning => self.log.debug(&why),
                    _ => self.log.err(&why),
                }
                rc
            }
            Err(e) => {
                self.log.err(&e);
                Rc::ErrGeneric
            }
        }
    }

    fn cfs_mkdir(&self, dir: &Path) -> Result<(), String> {
        match std::fs::create_dir(dir) {
            Ok(()) => {
                self.log.info(&format!("created {}", dir.display()));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(format!("cannot mkdir {}: {e}", dir.display())),
        }
    }

    fn cfs_symlink(&self, target: &Path, link: &Path) -> Result<(), String> {
        if is_link(link) {
            // configfs shows its links as relative paths: compare where they lead.
            let to = std::fs::canonicalize(link)
                .map_err(|e| format!("cannot resolve the link {}: {e}", link.display()))?;
            let want = std::fs::canonicalize(target)
                .map_err(|e| format!("cannot resolve {}: {e}", target.display()))?;
            if to != want {
                return Err(format!(
                    "{} leads to {}, not {}",
                    link.display(),
                    to.display(),
                    target.display()
                ));
            }
            return Ok(());
        }
        std::os::unix::fs::symlink(target, link).map_err(|e| {
            format!(
                "cannot symlink {} -> {}: {e}",
                link.display(),
                target.display()
            )
        })?;
        self.log.info(&format!(
            "linked {} -> {}",
            link.display(),
            target.display()
        ));
        Ok(())
    }

    fn cfs_unlink(&self, link: &Path) -> Result<(), String> {
        if !is_link(link) {
            return Ok(());
        }
        std::fs::remove_file(link).map_err(|e| format!("cannot unlink {}: {e}", link.display()))?;
        self.log.info(&format!("unlinked {}", link.display()));
        Ok(())
    }

    fn cfs_rmdir(&self, dir: &Path) -> Result<(), String> {
        if !dir.is_dir() {
            return Ok(());
        }
        let res = if self.params.fake_tree {
            fake_clear(dir).and_then(|()| std::fs::remove_dir(dir))
        } else {
            std::fs::remove_dir(dir)
        };
        match res {
            Ok(()) => {
                self.log.info(&format!("removed {}", dir.display()));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot rmdir {}: {e}", dir.display())),
        }
    }

    /// On a fake tree, the attribute files configfs creates with a new iblock device.
    fn fake_backstore_attrs(&self, bs: &Path) -> Result<(), String> {
        if !self.params.fake_tree {
            return Ok(());
        }
        for (rel, v) in [
            ("control", ""),
            ("enable", "0\n"),
            ("wwn/vpd_unit_serial", ""),
            ("alua/default_tg_pt_gp/alua_access_state", "0\n"),
        ] {
            let f = bs.join(rel);
            if f.exists() {
                continue;
            }
            std::fs::create_dir_all(crate::util::fs::parent_dir(&f))
                .and_then(|()| std::fs::write(&f, v))
                .map_err(|e| format!("cannot create {}: {e}", f.display()))?;
        }
        Ok(())
    }

    /// The iblock backstore of `l`, enabled (opens the device: fails on a DRBD
    /// Secondary with the errno the kernel gives).
    fn create_backstore(&self, l: &LioLun) -> Result<(), String> {
        let (hba, bs) = self.lun_paths(l);
        self.cfs_mkdir(&hba)?;
        self.cfs_mkdir(&bs)?;
        self.fake_backstore_attrs(&bs)?;
        if read_attr(&bs.join("enable")).is_ok_and(|v| v == "1") {
            return Ok(());
        }
        self.write_attr(&bs.join("control"), &format!("udev_path={}", l.device))?;
        self.write_attr(
            &bs.join("wwn/vpd_unit_serial"),
            &lio_unit_serial(&self.params.cluster_name, &l.name),
        )?;
        self.write_attr(&bs.join("enable"), "1")?;
        self.log.info(&format!(
            "backstore {} on {} enabled",
            bs.display(),
            l.device
        ));
        // A new device starts active/optimized; until its LUNs are mapped it is
        // `transitioning`, so an interrupted promote never looks promoted. Not fatal:
        // the LUN is served either way once mapped.
        let state = bs
            .join("alua")
            .join(&self.params.local_target_group)
            .join("alua_access_state");
        match self.write_attr(&state, &AluaState::Transitioning.encode(Stack::Lio)) {
            Ok(()) => self.log.info(&format!(
                "target group {}: {} ({})",
                self.params.local_target_group,
                AluaState::Transitioning,
                state.display()
            )),
            Err(e) => self.log.warn(&e),
        }
        Ok(())
    }

    /// LUN `l.lun` in every TPG and the mapped LUN in every ACL of those TPGs.
    fn map_lun(&self, l: &LioLun) -> Result<(), String> {
        let (_, bs) = self.lun_paths(l);
        for (tpg, acls) in self.tpgs()? {
            let lun_dir = tpg.join("lun").join(format!("lun_{}", l.lun));
            self.cfs_mkdir(&lun_dir)?;
            self.cfs_symlink(&bs, &lun_dir.join(&l.name))?;
            for a in acls {
                let m = tpg.join("acls").join(a).join(format!("lun_{}", l.lun));
                self.cfs_mkdir(&m)?;
                self.cfs_symlink(&lun_dir, &m.join("lun"))?;
            }
        }
        Ok(())
    }

    /// Removes every managed LUN in reverse order of creation: the local group to
    /// `transitioning` first (initiators retry), then mapped LUNs, LUNs, backstores.
    fn remove_luns(&self, errors: &mut Vec<String>) {
        let p = &self.params;
        for f in p.state_files(&p.local_target_group) {
            let cur = read_attr(&f).ok().and_then(|v| AluaState::from_lio(&v));
            if cur.is_some_and(|s| s != AluaState::Transitioning) {
                match self.write_attr(&f, &AluaState::Transitioning.encode(Stack::Lio)) {
                    Ok(()) => self.log.info(&format!(
                        "target group {}: {} ({})",
                        p.local_target_group,
                        AluaState::Transitioning,
                        f.display()
                    )),
                    // Removing the LUNs is what matters; the state goes with the device.
                    Err(e) => self.log.warn(&e),
                }
            }
        }
        let tpgs = match self.tpgs() {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        };
        for l in &p.lio_luns {
            for (tpg, acls) in &tpgs {
                for a in acls {
                    let m = tpg.join("acls").join(a).join(format!("lun_{}", l.lun));
                    if let Err(e) = self
                        .cfs_unlink(&m.join("lun"))
                        .and_then(|()| self.cfs_rmdir(&m))
                    {
                        errors.push(e);
                    }
                }
            }
        }
        for l in &p.lio_luns {
            for (tpg, _) in &tpgs {
                let lun_dir = tpg.join("lun").join(format!("lun_{}", l.lun));
                if let Err(e) = self
                    .cfs_unlink(&lun_dir.join(&l.name))
                    .and_then(|()| self.cfs_rmdir(&lun_dir))
                {
                    errors.push(e);
                }
            }
        }
        for l in &p.lio_luns {
            let (hba, bs) = self.lun_paths(l);
            if let Err(e) = self.cfs_rmdir(&bs).and_then(|()| self.cfs_rmdir(&hba)) {
                errors.push(e);
            }
        }
    }

    fn lio_start(&self) -> Rc {
        if let Err(e) = self.check_installed() {
            self.log.err(&e);
            return Rc::ErrInstalled;
        }
        if self.lio_monitor() == Rc::Success {
            self.log.info("start: already running unpromoted");
            return Rc::Success;
        }
        let mut errors = Vec::new();
        self.remove_luns(&mut errors);
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("start", errors, Rc::Success)
    }

    fn lio_stop(&self) -> Rc {
        if !self.params.stack_root().exists() {
            self.log.info("stop: nothing to stop (no LIO tree)");
            return Rc::Success;
        }
        if let Err(e) = self.check_installed() {
            if self.lio_monitor() == Rc::NotRunning {
                self.log.info(&format!("stop: nothing to stop ({e})"));
                return Rc::Success;
            }
        }
        let mut errors = Vec::new();
        self.remove_luns(&mut errors);
        // Disable the ports even when a LUN could not be removed: fewer paths left.
        self.set_ports(false, &mut errors);
        let rc = self.finish("stop", errors, Rc::NotRunning);
        if rc != Rc::Success {
            self.log
                .err("stop did not complete: Pacemaker will fence this node");
        }
        rc
    }

    fn lio_promote(&self) -> Rc {
        if let Some(rc) = self.promote_precheck(|| self.lio_monitor()) {
            return rc;
        }
        let p = &self.params;
        let mut errors = Vec::new();
        for l in &p.lio_luns {
            if let Err(e) = self.create_backstore(l) {
                errors.push(e);
                break;
            }
        }
        if errors.is_empty() {
            for l in &p.lio_luns {
                if let Err(e) = self.map_lun(l) {
                    errors.push(e);
                    break;
                }
            }
        }
        if errors.is_empty() {
            self.set_group(&p.local_target_group, p.promoted_state, &mut errors);
        }
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("promote", errors, Rc::RunningPromoted)
    }

    fn lio_demote(&self) -> Rc {
        if let Err(e) = self.check_installed() {
            self.log.err(&e);
            return Rc::ErrInstalled;
        }
        match self.lio_monitor() {
            Rc::Success => {
                self.log.info("demote: already unpromoted");
                return Rc::Success;
            }
            Rc::NotRunning => {
                self.log.err("demote: the resource is not running");
                return Rc::ErrGeneric;
            }
            _ => {}
        }
        let mut errors = Vec::new();
        self.remove_luns(&mut errors);
        if errors.is_empty() {
            self.set_ports(true, &mut errors);
        }
        self.finish("demote", errors, Rc::Success)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The OCF 1.1 meta-data (valid against `ra-api-1.dtd` and resource-agents' metadata.rng).
pub fn metadata() -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\"?>\n\
         <!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n\
         <resource-agent name=\"alua\" version=\"1.0\">\n\
         <version>1.1</version>\n\
         <longdesc lang=\"en\">\n\
         Switches the ALUA state of this node's target port group (SCST or LIO) with the \
         cluster role: the promoted instance advertises promoted_state (active/optimized), \
         the others unpromoted_state (standby), with transitioning during every switchover. \
         Run it as a promotable clone (promoted-max=1, clone-node-max=1) ordered after and \
         colocated with the DRBD promotable clone. A stop that cannot finish returns 1, so \
         Pacemaker fences the node.\n\
         </longdesc>\n\
         <shortdesc lang=\"en\">ALUA target port group state for SCST and LIO</shortdesc>\n\
         <parameters>\n",
    );
    for p in PARAMS {
        x.push_str(&format!(
            "<parameter name=\"{}\" unique=\"0\" required=\"{}\">\n\
             <longdesc lang=\"en\">{}</longdesc>\n\
             <shortdesc lang=\"en\">{}</shortdesc>\n\
             <content type=\"string\"{} />\n\
             </parameter>\n",
            p.name,
            u8::from(p.required),
            esc(p.longdesc),
            esc(p.shortdesc),
            p.default
                .map(|d| format!(" default=\"{}\"", esc(d)))
                .unwrap_or_default()
        ));
    }
    x.push_str(
        "</parameters>\n\
         <actions>\n\
         <action name=\"start\" timeout=\"60s\" />\n\
         <action name=\"stop\" timeout=\"60s\" />\n\
         <action name=\"promote\" timeout=\"60s\" />\n\
         <action name=\"demote\" timeout=\"60s\" />\n\
         <action name=\"monitor\" depth=\"0\" timeout=\"20s\" interval=\"10s\" role=\"Promoted\" />\n\
         <action name=\"monitor\" depth=\"0\" timeout=\"20s\" interval=\"11s\" role=\"Unpromoted\" />\n\
         <action name=\"notify\" timeout=\"20s\" />\n\
         <action name=\"meta-data\" timeout=\"5s\" />\n\
         <action name=\"validate-all\" timeout=\"20s\" />\n\
         </actions>\n\
         </resource-agent>\n",
    );
    x
}

const USAGE: &str =
    "usage: alua {start|stop|monitor|promote|demote|notify|meta-data|validate-all}\n\
                     (or: sanforge-init ocf-alua ACTION); parameters come from OCF_RESKEY_*";

/// Runs one OCF action with the given environment; returns its exit code.
pub fn run(action: Option<&str>, env: &Env) -> Rc {
    let log = Log::from_env(env);
    let action = match action {
        None => {
            eprintln!("{USAGE}");
            return Rc::ErrArgs;
        }
        Some(a) => a,
    };
    match action {
        "meta-data" => {
            print!("{}", metadata());
            return Rc::Success;
        }
        "usage" | "help" | "-h" | "--help" => {
            println!("{USAGE}");
            return Rc::Success;
        }
        "start" | "stop" | "monitor" | "promote" | "demote" | "notify" | "validate-all" => {}
        other => {
            log.err(&format!("action '{other}' is not implemented"));
            return Rc::ErrUnimplemented;
        }
    }
    if action == "notify" {
        // Notifications carry no work for this agent; Pacemaker requires 0.
        log.info(&format!(
            "notify: {}-{}",
            env.get("OCF_RESKEY_CRM_meta_notify_type").unwrap_or("?"),
            env.get("OCF_RESKEY_CRM_meta_notify_operation")
                .unwrap_or("?")
        ));
        return Rc::Success;
    }
    let params = match Params::from_env(env) {
        Ok(p) => p,
        Err(e) => {
            log.err(&format!("{action}: invalid parameters: {e}"));
            return Rc::ErrConfigured;
        }
    };
    let agent = Agent::new(params, env, &log);
    log.debug(&format!("{action}: {:?}", agent.params));
    match action {
        "validate-all" => match agent.check_installed() {
            Ok(()) => Rc::Success,
            Err(e) => {
                log.err(&e);
                Rc::ErrInstalled
            }
        },
        "start" => agent.start(),
        "stop" => agent.stop(),
        "monitor" => agent.monitor(),
        "promote" => agent.promote(),
        "demote" => agent.demote(),
        _ => Rc::ErrUnimplemented,
    }
}

/// For `main` of sanforge-init: when invoked as `…/alua ACTION` or
/// `sanforge-init ocf-alua ACTION`, runs the agent and returns its exit code.
pub fn dispatch(args: &[OsString]) -> Option<u8> {
    let name = args
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    let action = if name == Some(AGENT) {
        args.get(1)
    } else if args.get(1).and_then(|a| a.to_str()) == Some(SUBCOMMAND) {
        args.get(2)
    } else {
        return None;
    };
    let action = action.map(|a| a.to_string_lossy().into_owned());
    Some(run(action.as_deref(), &Env::from_process()).code())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(stack: &str) -> Params {
        let mut env = vec![
            ("OCF_RESKEY_stack", stack),
            ("OCF_RESKEY_local_target_group", "a"),
        ];
        if stack == "lio" {
            env.push(("OCF_RESKEY_lio_devices", "iblock_0/d1 iblock_0/d2"));
        } else {
            env.push(("OCF_RESKEY_device_group", "dg1"));
        }
        env.push((
            "OCF_RESKEY_ports",
            if stack == "lio" {
                "iscsi/iqn.x/tpgt_1"
            } else {
                "iscsi/iqn.x"
            },
        ));
        Params::from_env(&Env::from_pairs(env)).unwrap()
    }

    #[test]
    fn lio_codes_match_target_core_alua_h() {
        let codes: Vec<u8> = ALL_STATES.iter().map(|s| s.lio_code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 14, 15]);
        assert_eq!(AluaState::from_lio("0xf"), Some(AluaState::Transitioning));
        assert_eq!(AluaState::from_lio("14"), Some(AluaState::Offline));
        assert_eq!(AluaState::from_lio("5"), None);
        assert_eq!(AluaState::from_scst("lba-dependent"), None);
        assert_eq!(AluaState::from_scst("Active"), None);
    }

    #[test]
    fn defaults_and_paths() {
        let p = params("scst");
        assert_eq!(
            (p.promoted_state, p.unpromoted_state),
            (AluaState::Active, AluaState::Standby)
        );
        assert_eq!(
            p.state_files("a"),
            [PathBuf::from(
                "/sys/kernel/scst_tgt/device_groups/dg1/target_groups/a/state"
            )]
        );
        assert_eq!(
            p.port_files(),
            [PathBuf::from(
                "/sys/kernel/scst_tgt/targets/iscsi/iqn.x/enabled"
            )]
        );
        let l = params("lio");
        assert_eq!(
            l.state_files("a")[1],
            PathBuf::from("/sys/kernel/config/target/core/iblock_0/d2/alua/a/alua_access_state")
        );
        assert_eq!(
            l.port_files(),
            [PathBuf::from(
                "/sys/kernel/config/target/iscsi/iqn.x/tpgt_1/enable"
            )]
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |pairs: Vec<(&str, &str)>, needle: &str| {
            let e = Params::from_env(&Env::from_pairs(pairs)).unwrap_err();
            assert!(e.contains(needle), "{e}");
        };
        bad(
            vec![("OCF_RESKEY_device_group", "dg")],
            "local_target_group",
        );
        bad(vec![("OCF_RESKEY_local_target_group", "a")], "device_group");
        bad(
            vec![
                ("OCF_RESKEY_stack", "iet"),
                ("OCF_RESKEY_local_target_group", "a"),
            ],
            "iet",
        );
        let base = [
            ("OCF_RESKEY_device_group", "dg"),
            ("OCF_RESKEY_local_target_group", "a"),
        ];
        let with = |k: &'static str, v: &'static str| {
            base.iter().copied().chain([(k, v)]).collect::<Vec<_>>()
        };
        bad(
            with("OCF_RESKEY_promoted_state", "standby"),
            "promoted_state",
        );
        bad(
            with("OCF_RESKEY_unpromoted_state", "active"),
            "unpromoted_state",
        );
        bad(
            with("OCF_RESKEY_unpromoted_state", "offline"),
            "unpromoted_state",
        );
        bad(
            with("OCF_RESKEY_remote_target_group", "a"),
            "remote_target_group",
        );
        bad(with("OCF_RESKEY_ports", "iscsi"), "DRIVER/TARGET");
        bad(with("OCF_RESKEY_sysfs_root", "rel"), "absolute");
        bad(
            with("OCF_RESKEY_CRM_meta_promoted_max", "2"),
            "promoted-max",
        );
        bad(
            vec![
                ("OCF_RESKEY_local_target_group", "a"),
                ("OCF_RESKEY_device_group", "../x"),
            ],
            "device_group",
        );
        bad(
            with("OCF_RESKEY_promoted_state", "nonoptimized")
                .into_iter()
                .chain([("OCF_RESKEY_unpromoted_state", "nonoptimized")])
                .collect(),
            "both",
        );
    }

    #[test]
    fn classify_table() {
        use AluaState::*;
        let p = params("lio");
        let obs = |l: &[Option<AluaState>], r: &[Option<AluaState>], ports| Observed {
            local: l.to_vec(),
            remote: r.to_vec(),
            ports,
        };
        let rc = |o: Observed| classify(&p, &o).0;
        assert_eq!(
            rc(obs(&[Some(Active), Some(Active)], &[], Ports::AllEnabled)),
            Rc::RunningPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), Some(Active)], &[], Ports::Unmanaged)),
            Rc::RunningPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), Some(Standby)], &[], Ports::AllEnabled)),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), None], &[], Ports::AllEnabled)),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(&[Some(Active), Some(Active)], &[], Ports::AllDisabled)),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(
                &[Some(Active), Some(Active)],
                &[Some(Active)],
                Ports::AllEnabled
            )),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(obs(
                &[Some(Standby), Some(Standby)],
                &[Some(Active)],
                Ports::AllEnabled
            )),
            Rc::Success
        );
        assert_eq!(
            rc(obs(
                &[Some(Standby), Some(Standby)],
                &[],
                Ports::AllDisabled
            )),
            Rc::NotRunning
        );
        assert_eq!(
            rc(obs(&[Some(Standby), Some(Standby)], &[], Ports::Mixed)),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(
                &[Some(Offline), Some(Offline)],
                &[],
                Ports::AllDisabled
            )),
            Rc::NotRunning
        );
        assert_eq!(
            rc(obs(&[Some(Offline), Some(Offline)], &[], Ports::AllEnabled)),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(&[None, None], &[], Ports::AllEnabled)),
            Rc::NotRunning
        );
        assert_eq!(
            rc(obs(
                &[Some(Transitioning), Some(Transitioning)],
                &[],
                Ports::AllEnabled
            )),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(
                &[Some(Unavailable), Some(Unavailable)],
                &[],
                Ports::AllEnabled
            )),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(obs(&[Some(Standby), None], &[], Ports::AllEnabled)),
            Rc::ErrGeneric
        );
    }

    #[test]
    fn lio_luns_parse_and_classify() {
        use LunPresence::*;
        assert_eq!(
            LioLun::parse("disk0=/dev/drbd0@3").unwrap(),
            LioLun {
                name: "disk0".into(),
                device: "/dev/drbd0".into(),
                lun: 3
            }
        );
        for bad in [
            "disk0",
            "d=/dev/x",
            "d=/dev/x@70000",
            "d.x=/dev/x@0",
            "d=/dev/@0",
        ] {
            assert!(LioLun::parse(bad).is_err(), "{bad}");
        }
        let p = Params::from_env(&Env::from_pairs([
            ("OCF_RESKEY_stack", "lio"),
            ("OCF_RESKEY_lio_luns", "a=/dev/drbd0@0 b=/dev/drbd1@1"),
            ("OCF_RESKEY_ports", "iscsi/iqn.x/tpgt_1"),
        ]))
        .unwrap();
        assert_eq!(p.local_target_group, "default_tg_pt_gp");
        assert_eq!(p.lio_devices, ["iblock_0/a", "iblock_1/b"]);
        assert!(!p.fake_tree);
        let act = Some(AluaState::Active);
        let rc =
            |l: &[LunPresence], s: &[Option<AluaState>], ports| classify_luns(&p, l, s, ports).0;
        assert_eq!(
            rc(&[Absent, Absent], &[None, None], Ports::AllEnabled),
            Rc::Success
        );
        assert_eq!(
            rc(&[Absent, Absent], &[None, None], Ports::AllDisabled),
            Rc::NotRunning
        );
        assert_eq!(
            rc(&[Absent, Absent], &[None, None], Ports::Mixed),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(&[Complete, Complete], &[act, act], Ports::AllEnabled),
            Rc::RunningPromoted
        );
        assert_eq!(
            rc(&[Complete, Complete], &[act, act], Ports::AllDisabled),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(&[Complete, Partial], &[act, act], Ports::AllEnabled),
            Rc::FailedPromoted
        );
        assert_eq!(
            rc(&[Complete, Absent], &[act, None], Ports::AllEnabled),
            Rc::FailedPromoted
        );
        let tr = Some(AluaState::Transitioning);
        assert_eq!(
            rc(&[Complete, Partial], &[tr, None], Ports::AllEnabled),
            Rc::ErrGeneric
        );
        assert_eq!(
            rc(&[Complete, Complete], &[tr, tr], Ports::AllEnabled),
            Rc::ErrGeneric
        );
        let sb = Some(AluaState::Standby);
        assert_eq!(
            rc(&[Complete, Complete], &[sb, sb], Ports::AllEnabled),
            Rc::ErrGeneric
        );
        assert_eq!(lio_unit_serial("c", "a").len(), 32);
        assert_ne!(lio_unit_serial("c", "a"), lio_unit_serial("d", "a"));
    }

    #[test]
    fn metadata_lists_every_parameter_and_role_monitors() {
        let m = metadata();
        for p in PARAMS {
            assert!(
                m.contains(&format!("<parameter name=\"{}\"", p.name)),
                "{}",
                p.name
            );
        }
        assert!(m.contains("interval=\"10s\" role=\"Promoted\""));
        assert!(m.contains("interval=\"11s\" role=\"Unpromoted\""));
        assert!(!m.contains("&&"));
    }

    #[test]
    fn dispatch_only_answers_to_its_names() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(dispatch(&a(&["/init"])), None);
        assert_eq!(
            dispatch(&a(&["sanforge-init", "--root", "x", "boot"])),
            None
        );
        assert_eq!(
            dispatch(&a(&["/usr/lib/ocf/resource.d/sanforge/alua", "frobnicate"])),
            Some(3)
        );
        assert_eq!(dispatch(&a(&["sanforge-init", "ocf-alua"])), Some(2));
    }

    #[test]
    fn utc_date_is_civil() {
        let s = utc_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}
