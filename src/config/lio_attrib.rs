//! LIO backstore attributes (`core/HBA/NAME/attrib/*` in configfs) a node config may
//! set, with the values the kernel accepts: `[[lio.backstores]] attributes = {
//! emulate_tpu = true, block_size = 4096 }`. The names are the kernel's, as targetcli
//! shows them (`set attribute emulate_tpu=1`) and saves them (`saveconfig.json`).
//!
//! The table follows Linux 6.1's `target_core_configfs.c`: every writable attribute of
//! a backstore, its kind (boolean, one of a few values, or a 32-bit count) and what
//! the kernel refuses at write time that can be known before boot (a deprecated stub,
//! a read-only `hw_*` value, thin provisioning on a ramdisk). What depends on the
//! device found at boot (discard support of a block device, `queue_depth` above the
//! device's) is left to the kernel, whose refusal the init reports with the path.

use serde::{Deserialize, Serialize};

/// A value as written in the node config: `true`/`false` or a number.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
}

impl AttrValue {
    /// The text written to configfs: booleans as 1 or 0.
    pub fn to_configfs(self) -> String {
        match self {
            AttrValue::Bool(b) => u8::from(b).to_string(),
            AttrValue::Int(n) => n.to_string(),
        }
    }
}

/// What an attribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 0/1, or `false`/`true`.
    Bool,
    /// One of these numbers.
    OneOf(&'static [u32]),
    /// A 32-bit count from `min`.
    Count { min: u32 },
}

/// The writable device attributes of Linux 6.1 (`target_core_dev_attrib_attrs`),
/// with what each does, for the error that lists them.
const ATTRIBUTES: &[(&str, Kind, &str)] = &[
    (
        "block_size",
        Kind::OneOf(&[512, 1024, 2048, 4096]),
        "logical block size in bytes",
    ),
    (
        "emulate_3pc",
        Kind::Bool,
        "EXTENDED COPY (third-party copy), default on",
    ),
    ("emulate_caw", Kind::Bool, "COMPARE AND WRITE, default on"),
    (
        "emulate_fua_write",
        Kind::Bool,
        "honour FUA on writes, default on",
    ),
    (
        "emulate_model_alias",
        Kind::Bool,
        "the backstore's name as INQUIRY product id",
    ),
    (
        "emulate_pr",
        Kind::Bool,
        "persistent reservations, default on",
    ),
    ("emulate_tas", Kind::Bool, "TASK ABORTED status, default on"),
    ("emulate_tpu", Kind::Bool, "thin provisioning: UNMAP"),
    (
        "emulate_tpws",
        Kind::Bool,
        "thin provisioning: WRITE SAME with UNMAP",
    ),
    (
        "emulate_ua_intlck_ctrl",
        Kind::OneOf(&[0, 1, 2]),
        "unit attention interlocks (UA_INTLCK_CTRL)",
    ),
    (
        "emulate_write_cache",
        Kind::Bool,
        "report a volatile write cache (WCE)",
    ),
    (
        "enforce_pr_isids",
        Kind::Bool,
        "persistent reservations keyed by ISID, default on",
    ),
    (
        "force_pr_aptpl",
        Kind::Bool,
        "persist reservations across power loss (APTPL)",
    ),
    ("is_nonrot", Kind::Bool, "report a non-rotational medium"),
    (
        "max_unmap_block_desc_count",
        Kind::Count { min: 0 },
        "UNMAP descriptors per command",
    ),
    (
        "max_unmap_lba_count",
        Kind::Count { min: 0 },
        "blocks per UNMAP",
    ),
    (
        "max_write_same_len",
        Kind::Count { min: 0 },
        "blocks per WRITE SAME",
    ),
    (
        "optimal_sectors",
        Kind::Count { min: 1 },
        "optimal transfer length in blocks",
    ),
    (
        "queue_depth",
        Kind::Count { min: 1 },
        "commands queued per device",
    ),
    (
        "unmap_granularity",
        Kind::Count { min: 0 },
        "UNMAP granularity in blocks",
    ),
    (
        "unmap_granularity_alignment",
        Kind::Count { min: 0 },
        "UNMAP granularity alignment",
    ),
    (
        "unmap_zeroes_data",
        Kind::Bool,
        "unmapped blocks read as zeroes (LBPRZ)",
    ),
];

/// Attributes the kernel has but that cannot be set, and why.
const REFUSED: &[(&str, &str)] = &[
    ("emulate_dpo", "a deprecated stub the kernel ignores"),
    ("emulate_fua_read", "a deprecated stub the kernel ignores"),
    (
        "emulate_rest_reord",
        "the kernel accepts only 0, its default",
    ),
    ("hw_block_size", "read-only (the device's; set block_size)"),
    ("hw_max_sectors", "read-only (the device's)"),
    (
        "hw_queue_depth",
        "read-only (the device's; set queue_depth)",
    ),
    ("hw_pi_prot_type", "read-only (the device's)"),
    (
        "pi_prot_type",
        "T10 protection information is not supported by sanforge's LIO plan",
    ),
    (
        "pi_prot_format",
        "T10 protection information is not supported by sanforge's LIO plan",
    ),
    (
        "pi_prot_verify",
        "T10 protection information is not supported by sanforge's LIO plan",
    ),
    (
        "alua_support",
        "read-only for fileio, block and ramdisk backstores",
    ),
    (
        "pgr_support",
        "read-only for fileio, block and ramdisk backstores",
    ),
];

/// The attributes that need the backstore to support UNMAP (thin provisioning).
pub const NEEDS_UNMAP: &[&str] = &["emulate_tpu", "emulate_tpws", "unmap_zeroes_data"];

/// Whether `name` is an attribute a node config may set (else [`check`] refuses the
/// name itself, whatever the value).
pub fn settable(name: &str) -> bool {
    ATTRIBUTES.iter().any(|(n, _, _)| *n == name)
}

/// Checks `name = value`; returns the string the init writes to `attrib/NAME`, or why
/// the pair is refused (naming the value and what was expected).
pub fn check(name: &str, value: AttrValue) -> Result<String, String> {
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == name) {
        return Err(format!("attribute `{name}` cannot be set: {why}"));
    }
    let Some((_, kind, _)) = ATTRIBUTES.iter().find(|(n, _, _)| *n == name) else {
        let names: Vec<&str> = ATTRIBUTES.iter().map(|(n, _, _)| *n).collect();
        return Err(format!(
            "unknown LIO backstore attribute `{name}`: expected one of {}",
            names.join(", ")
        ));
    };
    match (kind, value) {
        (Kind::Bool, AttrValue::Bool(b)) => Ok(if b { "1" } else { "0" }.to_string()),
        (Kind::Bool, AttrValue::Int(n @ (0 | 1))) => Ok(n.to_string()),
        (Kind::Bool, AttrValue::Int(n)) => Err(format!(
            "attribute `{name}` = {n}: expected true or false (or 1 or 0)"
        )),
        (Kind::OneOf(allowed), AttrValue::Int(n))
            if u32::try_from(n).is_ok_and(|v| allowed.contains(&v)) =>
        {
            Ok(n.to_string())
        }
        (Kind::OneOf(allowed), v) => {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            Err(format!(
                "attribute `{name}` = {}: expected one of {}",
                show(v),
                list.join(", ")
            ))
        }
        (Kind::Count { min }, AttrValue::Int(n)) if u32::try_from(n).is_ok_and(|v| v >= *min) => {
            Ok(n.to_string())
        }
        (Kind::Count { min }, v) => Err(format!(
            "attribute `{name}` = {}: out of range, expected a number from {min} to {}",
            show(v),
            u32::MAX
        )),
    }
}

fn show(v: AttrValue) -> String {
    match v {
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Int(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_the_kernel_takes_are_written_as_it_reads_them() {
        assert_eq!(check("emulate_tpu", AttrValue::Bool(true)).unwrap(), "1");
        assert_eq!(check("emulate_caw", AttrValue::Int(0)).unwrap(), "0");
        assert_eq!(check("block_size", AttrValue::Int(4096)).unwrap(), "4096");
        assert_eq!(check("queue_depth", AttrValue::Int(64)).unwrap(), "64");
        assert_eq!(
            check("emulate_ua_intlck_ctrl", AttrValue::Int(2)).unwrap(),
            "2"
        );
    }

    #[test]
    fn values_the_kernel_refuses_are_named_with_what_it_takes() {
        for (name, v, want) in [
            ("block_size", AttrValue::Int(520), "attribute `block_size` = 520: expected one of 512, 1024, 2048, 4096"),
            ("emulate_tpu", AttrValue::Int(2), "attribute `emulate_tpu` = 2: expected true or false (or 1 or 0)"),
            ("queue_depth", AttrValue::Int(0), "attribute `queue_depth` = 0: out of range, expected a number from 1 to 4294967295"),
            ("max_unmap_lba_count", AttrValue::Int(1 << 32), "out of range"),
            ("max_unmap_lba_count", AttrValue::Bool(true), "attribute `max_unmap_lba_count` = true: out of range"),
            ("hw_block_size", AttrValue::Int(512), "attribute `hw_block_size` cannot be set: read-only"),
            ("emulate_dpo", AttrValue::Int(1), "deprecated stub"),
            ("emulate_tpuu", AttrValue::Int(1), "unknown LIO backstore attribute `emulate_tpuu`: expected one of block_size, emulate_3pc"),
        ] {
            let e = check(name, v).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
