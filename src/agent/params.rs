//! The agent's parameters: the environment Pacemaker passes (`OCF_RESKEY_<name>`, the
//! `OCF_RESKEY_CRM_meta_*` clone attributes) read once into validated [`Params`], so
//! nothing downstream re-checks. Reads only the [`Env`] it is given; the parameters
//! themselves are described in [`super::meta::PARAMS`].

use super::state::{AluaState, Stack};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where sysfs is mounted on a node: the default of `sysfs_root`.
pub const SYSFS: &str = "/sys";

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
    pub fn param(&self, name: &str) -> Option<&str> {
        self.get(&format!("OCF_RESKEY_{name}"))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The parameter `name` split at blanks (empty when unset).
    fn list(&self, name: &str) -> Vec<String> {
        self.param(name)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// A parameter that is missing, malformed or contradicts another; the message names
/// the parameter and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("stack '{0}' is neither scst nor lio")]
    UnknownStack(String),
    #[error("sysfs_root '{0}' is not an absolute path")]
    RelativeSysfsRoot(String),
    #[error("lio_luns entry '{0}' must have the form NAME=/dev/DEVICE@LUN")]
    LunShape(String),
    #[error(
        "lio_luns entry '{entry}': backstore name '{name}' must be letters, digits, '_' or '-'"
    )]
    LunName { entry: String, name: String },
    #[error("lio_luns entry '{entry}': device '{device}' must be a path under /dev/")]
    LunDevice { entry: String, device: String },
    #[error("lio_luns entry '{entry}': LUN '{lun}' must be 0 to 65535")]
    LunNumber { entry: String, lun: String },
    #[error("lio_luns: backstore {name} or LUN {lun} is listed twice")]
    LunTwice { name: String, lun: u32 },
    #[error("cluster_name '{0}' must not contain blanks or ':'")]
    ClusterName(String),
    #[error("{what} '{value}' is not a valid name")]
    Name { what: &'static str, value: String },
    #[error("{what} '{value}' must have the form {shape}")]
    Shape {
        what: &'static str,
        value: String,
        shape: &'static str,
    },
    #[error("remote_target_group '{0}' is the local target group")]
    RemoteIsLocal(String),
    #[error("{param} '{value}' is not one of {allowed}")]
    State {
        param: &'static str,
        value: String,
        allowed: String,
    },
    #[error("promoted_state and unpromoted_state are both '{0}': promotion would change nothing")]
    SameStates(AluaState),
    /// A required parameter is not set; the text names it and what needs it.
    #[error("{0}")]
    Missing(&'static str),
    /// Two parameters that exclude each other, or one for the other stack.
    #[error("{0}")]
    Conflict(&'static str),
    #[error("meta attribute {key} is {value}; this agent needs 1")]
    MetaNotOne { key: String, value: String },
}

/// Validated parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub stack: Stack,
    /// Where sysfs is, as seen through the agent's [`Sys`](crate::sys::Sys).
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
    pub fn parse(v: &str) -> Result<LioLun, ParamError> {
        let shape = || ParamError::LunShape(v.to_string());
        let (name, rest) = v.split_once('=').ok_or_else(shape)?;
        let (device, lun) = rest.rsplit_once('@').ok_or_else(shape)?;
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ParamError::LunName {
                entry: v.to_string(),
                name: name.to_string(),
            });
        }
        if !device.starts_with("/dev/")
            || device.len() <= 5
            || device.contains("/../")
            || device.contains([',', '='])
        {
            return Err(ParamError::LunDevice {
                entry: v.to_string(),
                device: device.to_string(),
            });
        }
        let lun = lun
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 65535)
            .ok_or_else(|| ParamError::LunNumber {
                entry: v.to_string(),
                lun: lun.to_string(),
            })?;
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
    hex::encode(h).chars().take(32).collect()
}

/// A single path component: not empty, no `/`, not `.` or `..`, no blanks.
fn check_name(what: &'static str, v: &str) -> Result<(), ParamError> {
    if v.is_empty()
        || v == "."
        || v == ".."
        || v.contains('/')
        || v.chars().any(char::is_whitespace)
    {
        return Err(ParamError::Name {
            what,
            value: v.to_string(),
        });
    }
    Ok(())
}

/// `a/b[/c]` with exactly `n` valid components.
fn check_path(
    what: &'static str,
    v: &str,
    n: usize,
    shape: &'static str,
) -> Result<(), ParamError> {
    let parts: Vec<&str> = v.split('/').collect();
    if parts.len() != n || parts.iter().any(|p| check_name(what, p).is_err()) {
        return Err(ParamError::Shape {
            what,
            value: v.to_string(),
            shape,
        });
    }
    Ok(())
}

impl Params {
    /// Reads and checks `OCF_RESKEY_*`; the error says which parameter is wrong.
    pub fn from_env(env: &Env) -> Result<Params, ParamError> {
        let stack = match env.param("stack").unwrap_or("scst") {
            "scst" => Stack::Scst,
            "lio" => Stack::Lio,
            other => return Err(ParamError::UnknownStack(other.to_string())),
        };
        let sysfs_root = PathBuf::from(env.param("sysfs_root").unwrap_or(SYSFS));
        if !sysfs_root.is_absolute() {
            return Err(ParamError::RelativeSysfsRoot(
                sysfs_root.display().to_string(),
            ));
        }
        let lio_luns = parse_lio_luns(env, stack)?;
        let cluster_name = env.param("cluster_name").unwrap_or("").to_string();
        if cluster_name.contains(char::is_whitespace) || cluster_name.contains(':') {
            return Err(ParamError::ClusterName(cluster_name));
        }
        let (local_target_group, remote_target_group) = parse_groups(env, !lio_luns.is_empty())?;
        let (promoted_state, unpromoted_state) = parse_states(env)?;
        let ports = env.list("ports");
        let (device_group, lio_devices) = parse_targets(env, stack, &lio_luns, &ports)?;
        check_clone_meta(env)?;
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
        })
    }

    /// True when the agent creates and removes LIO LUNs (`lio_luns`).
    pub fn manages_luns(&self) -> bool {
        !self.lio_luns.is_empty()
    }
}

/// `lio_luns`: each entry well formed, no name or LUN twice, only for LIO.
fn parse_lio_luns(env: &Env, stack: Stack) -> Result<Vec<LioLun>, ParamError> {
    let lio_luns = match env.param("lio_luns") {
        Some(v) => v
            .split_whitespace()
            .map(LioLun::parse)
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    if !lio_luns.is_empty() && stack != Stack::Lio {
        return Err(ParamError::Conflict("lio_luns is for stack lio"));
    }
    for (i, l) in lio_luns.iter().enumerate() {
        if lio_luns
            .iter()
            .take(i)
            .any(|o| o.name == l.name || o.lun == l.lun)
        {
            return Err(ParamError::LunTwice {
                name: l.name.clone(),
                lun: l.lun,
            });
        }
    }
    Ok(lio_luns)
}

/// `local_target_group` (defaulting to LIO's `default_tg_pt_gp` with `lio_luns`) and
/// `remote_target_group`, which must differ.
fn parse_groups(env: &Env, luns: bool) -> Result<(String, Option<String>), ParamError> {
    let local = match env.param("local_target_group") {
        Some(v) => v.to_string(),
        None if luns => "default_tg_pt_gp".to_string(),
        None => {
            return Err(ParamError::Missing(
                "the required parameter local_target_group is not set",
            ))
        }
    };
    check_name("local_target_group", &local)?;
    let remote = env.param("remote_target_group").map(str::to_string);
    if let Some(r) = &remote {
        check_name("remote_target_group", r)?;
        if *r == local {
            return Err(ParamError::RemoteIsLocal(r.clone()));
        }
    }
    Ok((local, remote))
}

/// `promoted_state` and `unpromoted_state`, each among the states that make sense
/// for its role, and not the same.
fn parse_states(env: &Env) -> Result<(AluaState, AluaState), ParamError> {
    let state = |param: &'static str, default: &str, allowed: &[AluaState]| {
        let v = env.param(param).unwrap_or(default);
        AluaState::from_scst(v)
            .filter(|s| allowed.contains(s))
            .ok_or_else(|| ParamError::State {
                param,
                value: v.to_string(),
                allowed: allowed
                    .iter()
                    .map(|s| s.scst_name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    };
    let promoted = state(
        "promoted_state",
        "active",
        &[AluaState::Active, AluaState::Nonoptimized],
    )?;
    let unpromoted = state(
        "unpromoted_state",
        "standby",
        &[
            AluaState::Standby,
            AluaState::Unavailable,
            AluaState::Nonoptimized,
        ],
    )?;
    if promoted == unpromoted {
        return Err(ParamError::SameStates(promoted));
    }
    Ok((promoted, unpromoted))
}

/// What the stack's groups live on — SCST: `device_group`; LIO: `lio_devices` or the
/// backstores of `lio_luns` — and the shape of every port.
fn parse_targets(
    env: &Env,
    stack: Stack,
    lio_luns: &[LioLun],
    ports: &[String],
) -> Result<(Option<String>, Vec<String>), ParamError> {
    match stack {
        Stack::Scst => {
            let dg = env.param("device_group").ok_or(ParamError::Missing(
                "stack scst needs the parameter device_group",
            ))?;
            check_name("device_group", dg)?;
            if env.param("lio_devices").is_some() {
                return Err(ParamError::Conflict(
                    "lio_devices is for stack lio, not scst",
                ));
            }
            for p in ports {
                check_path("port", p, 2, "DRIVER/TARGET")?;
            }
            Ok((Some(dg.to_string()), Vec::new()))
        }
        Stack::Lio if !lio_luns.is_empty() => {
            if env.param("lio_devices").is_some() {
                return Err(ParamError::Conflict(
                    "lio_devices and lio_luns exclude each other: lio_luns creates its own backstores",
                ));
            }
            if env.param("device_group").is_some() {
                return Err(ParamError::Conflict(
                    "device_group is for stack scst; lio uses lio_luns",
                ));
            }
            if ports.is_empty() {
                return Err(ParamError::Missing(
                    "lio_luns needs the parameter ports (FABRIC/WWN/tpgt_N …): the TPGs that get the LUNs",
                ));
            }
            for p in ports {
                check_path("port", p, 3, "FABRIC/WWN/tpgt_N")?;
            }
            Ok((None, lio_luns.iter().map(LioLun::backstore).collect()))
        }
        Stack::Lio => {
            let devs = env.list("lio_devices");
            if devs.is_empty() {
                return Err(ParamError::Missing(
                    "stack lio needs the parameter lio_devices (HBA/DEVICE …) or lio_luns",
                ));
            }
            if env.param("device_group").is_some() {
                return Err(ParamError::Conflict(
                    "device_group is for stack scst; lio uses lio_devices",
                ));
            }
            for d in &devs {
                check_path("lio device", d, 2, "HBA/DEVICE")?;
            }
            for p in ports {
                check_path("port", p, 3, "FABRIC/WWN/tpgt_N")?;
            }
            Ok((None, devs))
        }
    }
}

/// One promoted instance cluster-wide, one instance per node: two active/optimized
/// groups over single-primary storage would hand initiators paths that cannot write.
fn check_clone_meta(env: &Env) -> Result<(), ParamError> {
    for key in [
        "promoted_max",
        "master_max",
        "promoted_node_max",
        "master_node_max",
        "clone_node_max",
    ] {
        if let Some(v) = env.get(&format!("OCF_RESKEY_CRM_meta_{key}")) {
            if v.trim() != "1" {
                return Err(ParamError::MetaNotOne {
                    key: key.replace('_', "-"),
                    value: v.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Parameters for unit tests: local group `a`, two LIO devices or SCST group `dg1`,
/// one port.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) fn sample_params(stack: &str) -> Params {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let p = sample_params("scst");
        assert_eq!(
            (p.promoted_state, p.unpromoted_state),
            (AluaState::Active, AluaState::Standby)
        );
        assert_eq!(p.sysfs_root, PathBuf::from(SYSFS));
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |pairs: Vec<(&str, &str)>, needle: &str| {
            let e = Params::from_env(&Env::from_pairs(pairs))
                .unwrap_err()
                .to_string();
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
}
