//! `[outputs]`: the initramfs zstd level, the disk image and where the root lives.

use super::source::Source;
use crate::config::spans::{at, Errors};
use crate::config::values::{self, parse_size};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputsSpec {
    /// zstd level for the initramfs (1..=19).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// A raw GPT disk image (`disk.img`) with A/B slots; needs the source
    /// `systemd-boot` (systemd-bootx64.efi) in `[sources]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskOutputSpec>,
    /// Where the root file system lives: `initramfs` (default, the whole root in RAM)
    /// or `squashfs` (disk only: a dm-verity checked squashfs per slot, the initramfs
    /// holds only the init).
    #[serde(default, skip_serializing_if = "RootKind::is_initramfs")]
    pub root: RootKind,
}

/// `[outputs]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// zstd level of the initramfs (1..=19).
    pub zstd_level: i32,
    /// The disk image, when the recipe asks for one.
    pub disk: Option<DiskSpec>,
    /// The `disk` table as written (recorded in the manifest).
    pub disk_spec: Option<DiskOutputSpec>,
    pub root: RootKind,
}

/// `[outputs] root = "initramfs" | "squashfs"`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootKind {
    #[default]
    Initramfs,
    Squashfs,
}

impl RootKind {
    pub fn is_initramfs(&self) -> bool {
        *self == RootKind::Initramfs
    }
}

/// `[outputs] disk = { size = "256MiB", boot-tries = 3 }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiskOutputSpec {
    pub size: String,
    #[serde(default = "default_boot_tries")]
    pub boot_tries: u32,
    /// The ext4 `SANFORGE-STATE` partition for the targets' persistent state (PR,
    /// ALUA): a size such as `"16MiB"`; none unless given (or `"none"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

fn default_boot_tries() -> u32 {
    3
}

/// The source that provides systemd-boot's EFI binary for the disk image.
pub const SYSTEMD_BOOT_SOURCE: &str = "systemd-boot";

impl Default for OutputsSpec {
    fn default() -> Self {
        OutputsSpec {
            zstd_level: default_zstd_level(),
            disk: None,
            root: RootKind::Initramfs,
        }
    }
}

fn default_zstd_level() -> i32 {
    19
}

/// `[outputs] disk = { size = "256MiB", boot-tries = 3 }`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpec {
    /// Bytes, a multiple of 1 MiB.
    pub size: u64,
    /// Tries a fresh entry gets before systemd-boot falls back (0: no boot counting).
    pub boot_tries: u32,
    /// Bytes of the state partition (a multiple of 1 MiB), 0 for none.
    pub state: u64,
}

/// `[outputs] disk` `state`: bytes, 0 when not given or `"none"`; at least 8 MiB (an
/// ext4 journal needs room).
pub fn disk_state_size(v: Option<&str>) -> Result<u64, String> {
    let mib = values::MIB;
    match v {
        None | Some("none") => Ok(0),
        Some(s) => match parse_size(s, mib) {
            Ok(b) if b % mib == 0 && b >= 8 * mib => Ok(b),
            Ok(_) => Err(format!(
                "`{s}`: expected a whole number of MiB, at least 8MiB, or \"none\""
            )),
            Err(m) => Err(format!("{m} (or \"none\")")),
        },
    }
}

/// `[outputs]`, validated; the disk image needs the source `systemd-boot` in `sources`.
pub(super) fn validate_outputs(
    spec: &OutputsSpec,
    sources: &BTreeMap<String, Source>,
    errs: &mut Errors,
) -> Outputs {
    if !(1..=19).contains(&spec.zstd_level) {
        errs.at(
            at!["outputs", "zstd-level"],
            format!(
                "zstd-level {} is out of range: expected 1 to 19",
                spec.zstd_level
            ),
        );
    }
    if let Some(d) = &spec.disk {
        check_disk(d, sources, errs);
    }
    if spec.root == RootKind::Squashfs && spec.disk.is_none() {
        errs.at(at!["outputs", "root"], "root = \"squashfs\" puts the root on disk partitions: it needs `disk = { size = \"…\" }` in [outputs] (PXE-only nodes keep root = \"initramfs\")");
    }
    // A size that does not parse was reported above (and `finish` fails).
    let disk = spec.disk.as_ref().and_then(|d| {
        Some(DiskSpec {
            size: parse_size(&d.size, values::MIB).ok()?,
            boot_tries: d.boot_tries,
            state: disk_state_size(d.state.as_deref()).ok()?,
        })
    });
    Outputs {
        zstd_level: spec.zstd_level,
        disk,
        disk_spec: spec.disk.clone(),
        root: spec.root,
    }
}

/// `[outputs] disk`: its size, state partition and boot tries.
fn check_disk(d: &DiskOutputSpec, sources: &BTreeMap<String, Source>, errs: &mut Errors) {
    match parse_size(&d.size, values::MIB) {
        Err(m) => errs.at(at!["outputs", "disk", "size"], format!("disk size {m}")),
        Ok(b) if b % values::MIB != 0 => errs.at(
            at!["outputs", "disk", "size"],
            format!("disk size `{}`: expected a whole number of MiB", d.size),
        ),
        Ok(_) => {}
    }
    if let Err(m) = disk_state_size(d.state.as_deref()) {
        errs.at(
            at!["outputs", "disk", "state"],
            format!("disk state partition size {m}"),
        );
    }
    if d.boot_tries > 9 {
        errs.at(
            at!["outputs", "disk", "boot-tries"],
            format!(
                "boot-tries {} is out of range: expected 0 to 9",
                d.boot_tries
            ),
        );
    }
    if !sources.contains_key(SYSTEMD_BOOT_SOURCE) {
        errs.at(at!["outputs", "disk"], format!("the disk output needs systemd-boot: add a source `{SYSTEMD_BOOT_SOURCE}` to [sources], e.g. {{ debian = \"systemd-boot-efi\", version = \"…\", member = \"usr/lib/systemd/boot/efi/systemd-bootx64.efi\" }}"));
    }
}
