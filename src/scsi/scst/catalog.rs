//! What scstadmin would learn from the `mgmt` help texts at apply time (reference §B9,
//! §B10), fixed here so that plans can be computed without a running SCST: the known
//! handlers and target drivers, which attributes are creation parameters of
//! `add_device`/`add_target`, and which are dynamic (`add_attribute`/
//! `add_target_attribute`) rather than plain attribute files.

/// Device handlers SCST ships (`scst_vdisk`, `scst_disk`, `scst_tape`, … §A5).
pub const HANDLERS: &[&str] = &[
    "vdisk_fileio",
    "vdisk_blockio",
    "vdisk_nullio",
    "vcdrom",
    "dev_disk",
    "dev_disk_perf",
    "dev_tape",
    "dev_tape_perf",
    "dev_cdrom",
    "dev_changer",
    "dev_modisk",
    "dev_modisk_perf",
    "dev_processor",
    "dev_raid",
];

/// Target drivers SCST ships (§A5): `copy_manager` is built into `scst.ko`.
pub const DRIVERS: &[&str] = &[
    "qla2x00t",
    "iscsi",
    "scst_local",
    "ib_srpt",
    "fcst",
    "copy_manager",
];

/// The ALUA state names (`scst_tg_state_names`, §B12).
pub const ALUA_STATES: &[&str] = &[
    "active",
    "nonoptimized",
    "standby",
    "unavailable",
    "offline",
    "transitioning",
];

/// Highest LUN number (`SCST_MAX_LUN`).
pub const MAX_LUN: u32 = 16383;

const FILEIO: &[&str] = &[
    "active",
    "async",
    "bind_alua_state",
    "blocksize",
    "cluster_mode",
    "dif_filename",
    "dif_mode",
    "dif_static_app_tag",
    "dif_type",
    "filename",
    "numa_node_id",
    "nv_cache",
    "o_direct",
    "read_only",
    "removable",
    "rotational",
    "thin_provisioned",
    "tst",
    "t10_dev_id",
    "write_through",
];

const BLOCKIO: &[&str] = &[
    "active",
    "bind_alua_state",
    "blocksize",
    "cluster_mode",
    "dif_filename",
    "dif_mode",
    "dif_static_app_tag",
    "dif_type",
    "filename",
    "numa_node_id",
    "nv_cache",
    "read_only",
    "removable",
    "rotational",
    "thin_provisioned",
    "tst",
    "t10_dev_id",
    "write_through",
];

const NULLIO: &[&str] = &[
    "blocksize",
    "cluster_mode",
    "dif_filename",
    "dif_mode",
    "dif_static_app_tag",
    "dif_type",
    "dummy",
    "numa_node_id",
    "read_only",
    "removable",
    "rotational",
    "size",
    "size_mb",
    "tst",
    "t10_dev_id",
];

pub fn known_handler(h: &str) -> bool {
    HANDLERS.contains(&h)
}

pub fn known_driver(d: &str) -> bool {
    DRIVERS.contains(&d)
}

/// Pass-through handlers: devices are named `H:C:I:L` and take no creation parameters.
pub fn is_passthrough(h: &str) -> bool {
    h.starts_with("dev_")
}

/// Whether a handler's devices are virtual disks (names up to 64 chars, `filename`…).
pub fn is_vdisk(h: &str) -> bool {
    h.starts_with("vdisk_") || h == "vcdrom"
}

/// Parameters of `add_device` for a handler; every other device attribute is written to
/// `devices/<dev>/<attr>` after creation (`vcdrom`'s `filename` then inserts the media).
pub fn device_creation_params(h: &str) -> &'static [&'static str] {
    match h {
        "vdisk_fileio" => FILEIO,
        "vdisk_blockio" => BLOCKIO,
        "vdisk_nullio" => NULLIO,
        "vcdrom" => &["tst"],
        _ => &[],
    }
}

/// Parameters of `add_target` (qla2x00t NPIV ports).
pub fn target_creation_params(d: &str) -> &'static [&'static str] {
    match d {
        "qla2x00t" => &["node_name", "parent_host"],
        _ => &[],
    }
}

/// Driver attributes created with `add_attribute` (may repeat).
pub fn driver_dynamic_attrs(d: &str) -> &'static [&'static str] {
    match d {
        "iscsi" => &["IncomingUser", "OutgoingUser"],
        _ => &[],
    }
}

/// Target attributes created with `add_target_attribute` (may repeat).
pub fn target_dynamic_attrs(d: &str) -> &'static [&'static str] {
    match d {
        "iscsi" => &["IncomingUser", "OutgoingUser", "allowed_portal"],
        _ => &[],
    }
}

/// Fibre Channel drivers: targets and initiators are WWPNs.
pub fn is_fc_driver(d: &str) -> bool {
    d == "qla2x00t" || d == "fcst"
}

/// Whether a target of this driver must be created with `add_target` (the others are
/// hardware ports that appear on their own). qla2x00t creates only NPIV ports, which
/// the config marks with their creation parameters; scst_local already has its default
/// `scst_local_tgt`.
pub fn is_virtual_target(driver: &str, t: &super::Target) -> bool {
    if t.hw_target {
        return false;
    }
    match driver {
        "iscsi" => true,
        "scst_local" => t.name != "scst_local_tgt",
        "qla2x00t" => t
            .attrs
            .iter()
            .any(|a| a.name == "node_name" || a.name == "parent_host"),
        _ => false,
    }
}

/// Creation parameters that are also writable attribute files (`devices/<dev>/<attr>`),
/// so an existing device can be changed in place instead of being re-created.
pub const WRITABLE_CREATION_PARAMS: &[&str] = &["active", "cluster_mode", "t10_dev_id"];
