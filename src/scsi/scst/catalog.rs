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

// ---- Attributes and their values -----------------------------------------------------
//
// Which attribute names exist where, whether they can be written, and what values the
// kernel (or iscsi-scstd) takes, from the SCST sources named in reference/scst.md:
// `scst_sysfs.c` (global, device, target and group attributes), `scst_vdisk.c`
// (`vdisk_*_attrs`, `vdev_parse_add_dev_params`), iscsi-scst (`usr/param.c`
// `target_keys`/`session_keys`, `usr/param.h`, `usr/config.c`), `scst_qla2xxx.c`,
// `scst_local.c` and `scst_copy_mgr.c`. What a `mgmt` help text would list is fixed
// here so that a typo fails `scst check` and the build rather than the boot.

/// What an attribute's value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// `0` or `1`.
    Bool,
    /// An unsigned number (decimal, or `0x` hex as `kstrtoul(…, 0)` reads it) in range.
    Uint(u64, u64),
    /// A signed number in range.
    Int(i64, i64),
    /// A power of two in range (block sizes).
    Pow2(u64, u64),
    /// One of these words (compared without case, as the kernel does).
    OneOf(&'static [&'static str]),
    /// `Yes` or `No` (iSCSI keys; exact case, as iscsi-scstd compares).
    YesNo,
    /// `None`, `CRC32C`, or both comma-separated (iSCSI digests).
    Digest,
    /// Free text of at most this many characters.
    Text(usize),
    /// An absolute path.
    Path,
    /// A Fibre Channel WWN, `xx:xx:xx:xx:xx:xx:xx:xx`.
    Wwn,
    /// `auto`, `this_group_only`, `never` or a group number.
    IoGrouping,
    /// A CHAP account: `USER SECRET` (secret of 12 to 255 characters), or a reference
    /// to the node's secrets, `secret:NAME`.
    Account,
    /// Anything (write-only actions, opaque strings).
    Any,
}

/// One attribute: its name, whether a config may set it, and its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrSpec {
    pub name: &'static str,
    /// False for read-only attributes (they can be read, never configured).
    pub settable: bool,
    pub value: Value,
}

const fn rw(name: &'static str, value: Value) -> AttrSpec {
    AttrSpec {
        name,
        settable: true,
        value,
    }
}

const fn ro(name: &'static str) -> AttrSpec {
    AttrSpec {
        name,
        settable: false,
        value: Value::Any,
    }
}

use Value::*;

const U32: Value = Uint(0, u32::MAX as u64);
const I32P: Value = Int(0, i32::MAX as i64);
/// iSCSI data segment and burst lengths (RFC 7143: 512 to 2^24 - 1).
const ISCSI_LEN: Value = Uint(512, 16_777_215);

/// `/sys/kernel/scst_tgt/<attr>`.
pub const GLOBAL_ATTRS: &[AttrSpec] = &[
    rw("setup_id", U32),
    rw("threads", Int(1, i32::MAX as i64)),
    rw("max_tasklet_cmd", I32P),
    rw("poll_us", Uint(0, u64::MAX / 1000)),
    rw("suspend", Int(i32::MIN as i64, i32::MAX as i64)),
    rw("measure_latency", Bool),
    rw("async_lun_replace", Bool),
    rw("force_global_sgv_pool", Bool),
    // DLM_LOCKSPACE_LEN is 64 with the terminating NUL.
    rw("cluster_name", Text(63)),
    rw("trace_level", Any),
    ro("version"),
    ro("last_sysfs_mgmt_res"),
    ro("trace_cmds"),
    ro("trace_mcmds"),
];

/// `handlers/<handler>/<attr>`.
pub const HANDLER_ATTRS: &[AttrSpec] = &[rw("trace_level", Any), ro("type"), ro("mgmt")];

/// Device attributes every handler's devices have (`scst_sysfs.c`).
const DEVICE_CORE: &[AttrSpec] = &[
    rw("threads_num", I32P),
    rw("threads_pool_type", OneOf(&["per_initiator", "shared"])),
    rw("max_tgt_dev_commands", Uint(1, i32::MAX as u64)),
    rw("numa_node_id", Int(-1, 1023)),
    rw("block", Any),
    rw("pr_file_name", Path),
    rw("pr_state", Any),
    rw("dump_prs", Any),
    rw("dif_static_app_tag", Uint(0, u64::MAX)),
    ro("type"),
    ro("dif_mode"),
    ro("dif_type"),
    ro("handler"),
    ro("exported"),
];

/// Attributes of vdisk devices that are creation parameters (`add_device`).
const VDISK_PARAMS: &[AttrSpec] = &[
    rw("active", Bool),
    rw("async", Bool),
    rw("bind_alua_state", Bool),
    rw("blocksize", Pow2(512, 65536)),
    rw("cluster_mode", Bool),
    rw("dif_filename", Path),
    rw("dif_mode", Any),
    rw("dif_static_app_tag", Uint(0, u64::MAX)),
    rw("dif_type", Uint(0, 3)),
    rw("dummy", Bool),
    rw("filename", Path),
    rw("numa_node_id", Int(-1, 1023)),
    rw("nv_cache", Bool),
    rw("o_direct", Bool),
    rw("read_only", Bool),
    rw("removable", Bool),
    rw("rotational", Bool),
    rw("size", Uint(0, u64::MAX)),
    rw("size_mb", Uint(0, u64::MAX >> 20)),
    rw("thin_provisioned", Bool),
    rw("tst", Uint(0, 1)),
    rw("t10_dev_id", Text(25)),
    rw("write_through", Bool),
];

/// Attributes of vdisk devices written after `add_device` (`vdisk_*_attrs`, mode 0644
/// or 0200). Which of them a handler has is [`VDISK_POST`]'s second column.
const VDISK_POST: &[(AttrSpec, &[&str])] = &[
    (rw("active", Bool), &["vdisk_fileio", "vdisk_blockio"]),
    (
        rw("bind_alua_state", Bool),
        &["vdisk_fileio", "vdisk_blockio"],
    ),
    (
        rw("cluster_mode", Bool),
        &["vdisk_fileio", "vdisk_blockio", "vdisk_nullio"],
    ),
    (
        rw("opt_trans_len", Uint(0, u32::MAX as u64)),
        &["vdisk_fileio", "vdisk_blockio", "vdisk_nullio"],
    ),
    (rw("expl_alua", Bool), &["vdisk_fileio", "vdisk_blockio"]),
    (
        rw("filename", Path),
        &["vdisk_fileio", "vdisk_blockio", "vcdrom"],
    ),
    (rw("resync_size", Any), &["vdisk_fileio", "vdisk_blockio"]),
    (rw("sync", Any), &["vdisk_fileio", "vdisk_blockio"]),
    (
        rw("size", Uint(0, u64::MAX)),
        &["vdisk_blockio", "vdisk_nullio"],
    ),
    (
        rw("size_mb", Uint(0, u64::MAX >> 20)),
        &["vdisk_blockio", "vdisk_nullio"],
    ),
    (rw("read_zero", Bool), &["vdisk_nullio"]),
    (rw("async", Bool), &["vdisk_fileio"]),
    (
        rw("lb_per_pb_exp", Bool),
        &["vdisk_fileio", "vdisk_blockio"],
    ),
    (rw("t10_vend_id", Text(8)), VDEV_ALL),
    (rw("vend_specific_id", Text(128)), VDEV_ALL),
    (rw("prod_id", Text(16)), VDEV_ALL),
    (rw("prod_rev_lvl", Text(4)), VDEV_ALL),
    (rw("scsi_device_name", Text(256)), VDEV_ALL),
    (rw("t10_dev_id", Text(25)), VDEV_ALL),
    (rw("naa_id", Text(64)), VDEV_ALL),
    (rw("eui64_id", Text(64)), VDEV_ALL),
    (rw("usn", Text(20)), VDEV_ALL),
    (rw("inq_vend_specific", Text(160)), VDEV_ALL),
];

const VDEV_ALL: &[&str] = &["vdisk_fileio", "vdisk_blockio", "vdisk_nullio", "vcdrom"];

/// Read-only vdisk attributes (shown in sysfs, set only through `add_device`).
const VDISK_RO: &[&str] = &[
    "size",
    "size_mb",
    "blocksize",
    "read_only",
    "write_through",
    "thin_provisioned",
    "tst",
    "rotational",
    "nv_cache",
    "o_direct",
    "removable",
    "dummy",
];

/// What a device attribute of `handler` is: a creation parameter or a writable
/// attribute, its values; `None` when the handler's devices have no such attribute.
/// A read-only one comes back with `settable` false.
pub fn device_attr(handler: &str, name: &str) -> Option<AttrSpec> {
    let params = device_creation_params(handler);
    if params.contains(&name) {
        return VDISK_PARAMS
            .iter()
            .find(|a| a.name == name)
            .copied()
            .or(Some(rw(name_static(params, name), Any)));
    }
    if let Some((a, _)) = VDISK_POST
        .iter()
        .find(|(a, hs)| a.name == name && hs.contains(&handler))
    {
        return Some(*a);
    }
    if let Some(a) = DEVICE_CORE.iter().find(|a| a.name == name) {
        return Some(*a);
    }
    if is_vdisk(handler) {
        if let Some(n) = VDISK_RO.iter().find(|n| **n == name) {
            return Some(ro(n));
        }
    }
    None
}

fn name_static(list: &'static [&'static str], name: &str) -> &'static str {
    list.iter().find(|n| **n == name).copied().unwrap_or("")
}

/// Attributes of targets of every driver (`scst_sysfs.c` target attributes).
const TARGET_CORE: &[AttrSpec] = &[
    rw("rel_tgt_id", Uint(1, 65535)),
    rw("addr_method", OneOf(&["PERIPHERAL", "FLAT", "LUN"])),
    rw("io_grouping_type", IoGrouping),
    rw("black_hole", Uint(0, 4)),
    rw("cpu_mask", Text(4000)),
    rw("forward_src", Bool),
    rw("forward_dst", Bool),
    rw("forwarding", Bool),
    rw("aen_disabled", Bool),
    rw("comment", Text(4000)),
    rw("dif_checks_failed", Any),
    ro("sg_tablesize"),
    ro("dif_capabilities"),
];

/// Attributes of initiator groups of every driver.
const GROUP_CORE: &[AttrSpec] = &[
    rw("addr_method", OneOf(&["PERIPHERAL", "FLAT", "LUN"])),
    rw("io_grouping_type", IoGrouping),
    rw("black_hole", Uint(0, 4)),
    rw("cpu_mask", Text(4000)),
];

const ISCSI_TARGET: &[AttrSpec] = &[
    rw("IncomingUser", Account),
    rw("OutgoingUser", Account),
    rw("allowed_portal", Text(255)),
    rw("per_portal_acl", Bool),
    rw("redirect", Text(255)),
    rw("alias", Text(255)),
    rw("QueuedCommands", Uint(1, 2048)),
    rw("RspTimeout", Uint(2, 65535)),
    rw("NopInInterval", Uint(0, 65535)),
    rw("NopInTimeout", Uint(2, 65535)),
    rw("MaxSessions", Uint(0, 65535)),
    rw("InitialR2T", YesNo),
    rw("ImmediateData", YesNo),
    rw("MaxRecvDataSegmentLength", ISCSI_LEN),
    rw("MaxXmitDataSegmentLength", ISCSI_LEN),
    rw("MaxBurstLength", ISCSI_LEN),
    rw("FirstBurstLength", ISCSI_LEN),
    rw("MaxOutstandingR2T", Uint(1, 65535)),
    rw("HeaderDigest", Digest),
    rw("DataDigest", Digest),
    rw("RDMAExtensions", YesNo),
    ro("tid"),
];

const ISCSI_DRIVER: &[AttrSpec] = &[
    rw("IncomingUser", Account),
    rw("OutgoingUser", Account),
    rw("iSNSServer", Text(255)),
    rw("iSNSAccessControl", YesNo),
    rw("isns_entity_name", Text(255)),
    rw("link_local", Bool),
    rw("internal_portal", Text(255)),
    rw("trace_level", Any),
    ro("version"),
    ro("open_state"),
];

const QLA_TARGET: &[AttrSpec] = &[
    rw("explicit_confirmation", Bool),
    rw("abort_isp", Any),
    rw("node_name", Wwn),
    rw("parent_host", Wwn),
    ro("hw_target"),
    ro("port_name"),
];

const LOCAL_TARGET: &[AttrSpec] = &[
    rw("scsi_transport_version", Uint(0, 0xffff)),
    rw("phys_transport_version", Uint(0, 0xffff)),
];

const DRIVER_COMMON: &[AttrSpec] = &[rw("trace_level", Any), ro("version")];

/// Drivers whose attribute lists above are complete: an unknown attribute of theirs is
/// an error; for the others (ib_srpt, fcst) it is a warning.
pub fn driver_catalogued(d: &str) -> bool {
    matches!(d, "iscsi" | "qla2x00t" | "scst_local" | "copy_manager")
}

/// A target driver's own attribute (`targets/<driver>/<attr>`).
pub fn driver_attr(d: &str, name: &str) -> Option<AttrSpec> {
    let own: &[AttrSpec] = match d {
        "iscsi" => ISCSI_DRIVER,
        "scst_local" => &[ro("stats")],
        _ => &[],
    };
    own.iter()
        .chain(DRIVER_COMMON)
        .find(|a| a.name == name)
        .copied()
}

/// A target's attribute (`targets/<driver>/<target>/<attr>`).
pub fn target_attr(d: &str, name: &str) -> Option<AttrSpec> {
    let own: &[AttrSpec] = match d {
        "iscsi" => ISCSI_TARGET,
        "qla2x00t" => QLA_TARGET,
        "scst_local" => LOCAL_TARGET,
        "copy_manager" => &[rw("allow_not_connected_copy", Bool)],
        "ib_srpt" => &[
            rw("comp_v_mask", Any),
            rw("port_id", Any),
            ro("device"),
            ro("link_layer"),
            ro("login_info"),
        ],
        _ => &[],
    };
    own.iter()
        .chain(TARGET_CORE)
        .find(|a| a.name == name)
        .copied()
}

/// An initiator group's attribute.
pub fn group_attr(d: &str, name: &str) -> Option<AttrSpec> {
    let own: &[AttrSpec] = match d {
        "iscsi" => &[rw("per_sess_dedicated_tgt_threads", Bool)],
        _ => &[],
    };
    own.iter()
        .chain(GROUP_CORE)
        .find(|a| a.name == name)
        .copied()
}

/// A global attribute.
pub fn global_attr(name: &str) -> Option<AttrSpec> {
    GLOBAL_ATTRS.iter().find(|a| a.name == name).copied()
}

/// A handler's own attribute.
pub fn handler_attr(name: &str) -> Option<AttrSpec> {
    HANDLER_ATTRS.iter().find(|a| a.name == name).copied()
}

/// Every settable name a lookup knows, for "did you mean" hints.
pub fn known_names(level: Level, owner: &str) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = match level {
        Level::Global => GLOBAL_ATTRS
            .iter()
            .filter(|a| a.settable)
            .map(|a| a.name)
            .collect(),
        Level::Handler => vec!["trace_level"],
        Level::Device => {
            let mut v: Vec<&'static str> = device_creation_params(owner).to_vec();
            v.extend(
                VDISK_POST
                    .iter()
                    .filter(|(_, hs)| hs.contains(&owner))
                    .map(|(a, _)| a.name),
            );
            v.extend(DEVICE_CORE.iter().filter(|a| a.settable).map(|a| a.name));
            v
        }
        Level::Driver if owner == "iscsi" => ISCSI_DRIVER
            .iter()
            .filter(|a| a.settable)
            .map(|a| a.name)
            .collect(),
        Level::Driver => vec!["trace_level"],
        Level::Target => {
            let own: &[AttrSpec] = match owner {
                "iscsi" => ISCSI_TARGET,
                "qla2x00t" => QLA_TARGET,
                "scst_local" => LOCAL_TARGET,
                _ => &[],
            };
            own.iter()
                .chain(TARGET_CORE)
                .filter(|a| a.settable)
                .map(|a| a.name)
                .collect()
        }
        Level::Group => GROUP_CORE.iter().map(|a| a.name).collect(),
    };
    v.sort_unstable();
    v.dedup();
    v
}

/// Where an attribute sits, for [`known_names`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Global,
    Handler,
    Device,
    Driver,
    Target,
    Group,
}
