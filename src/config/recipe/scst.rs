//! `[scst]`: the SCST source, how its QLogic driver is built, its build mode and
//! components, and its firmware.

use super::firmware::{
    add_firmware_inputs, validate_firmware, FirmwareSet, FirmwareSpec, WaiveSpec,
};
use super::source::{check_source, Source, SourceSpec};
use super::Project;
use crate::config::spans::{at, Errors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How SCST's QLogic driver gets into the image (reference/scst.md §A3).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DriverMode {
    /// The documented build: `qla2xxx_scst.ko` + `qla2x00tgt.ko` against the kernel
    /// build tree; the in-tree `qla2xxx` stays unmodified (and is blacklisted).
    #[default]
    OutOfTree,
    /// The legacy swap: the kernel's `drivers/scsi/qla2xxx` is replaced by SCST's
    /// tree and the version-matched SCST kernel patches are applied before the kernel
    /// build; only the target add-on and the SCST core are built out of tree.
    InTree,
}

impl DriverMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverMode::OutOfTree => "out-of-tree",
            DriverMode::InTree => "in-tree",
        }
    }
}

/// SCST's build mode (`make 2release|2perf|2debug`, reference/scst.md §A3): what
/// `scst/include/build_mode.h` turns on in every SCST module.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BuildMode {
    /// `CONFIG_SCST_TRACING` only: the upstream default for production.
    #[default]
    Release,
    /// No tracing at all (no `trace_level` files): what TrueNAS ships.
    Perf,
    /// Tracing, `CONFIG_SCST_DEBUG` and `CONFIG_SCST_EXTRACHECKS`.
    Debug,
}

impl BuildMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildMode::Release => "release",
            BuildMode::Perf => "perf",
            BuildMode::Debug => "debug",
        }
    }

    /// The top-level make target that selects the mode.
    pub fn make_target(self) -> &'static str {
        match self {
            BuildMode::Release => "2release",
            BuildMode::Perf => "2perf",
            BuildMode::Debug => "2debug",
        }
    }
}

/// `[scst]` as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScstSpec {
    /// The SCST release archive (url + sha256) or a local tree/archive (`path`).
    pub source: SourceSpec,
    #[serde(default)]
    pub driver_mode: DriverMode,
    /// `release` (default), `perf` or `debug`: `make 2release|2perf|2debug`.
    #[serde(default)]
    pub build_mode: BuildMode,
    /// SCST components to build (make directories), in any order; built in SCST's
    /// order. Default: `scst` and `qla2x00t-32gbit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<String>>,
    /// Firmware files the image provides, by the name modules request.
    #[serde(default)]
    pub firmware: Vec<FirmwareSpec>,
    /// Firmware names requested by modules that the image deliberately omits, each
    /// a name or `{ name = "…", reason = "…" }`; a name ending in `*` waives every
    /// requested file that starts with what precedes it (`rtl_nic/*`).
    #[serde(default)]
    pub waive_firmware: Vec<WaiveSpec>,
}

/// SCST components sanforge knows how to build: name, make directory (relative to
/// the SCST tree), in the order SCST's top-level Makefile builds them (the target
/// drivers link against `scst/src/Module.symvers`, so `scst` comes first).
pub const SCST_COMPONENTS: &[(&str, &str)] = &[
    ("scst", "scst"),
    ("iscsi-scst", "iscsi-scst"),
    ("qla2x00t-32gbit", "qla2x00t-32gbit/qla2x00-target"),
    ("qla2x00t", "qla2x00t/qla2x00-target"),
    ("srpt", "srpt"),
    ("scst_local", "scst_local"),
    ("fcst", "fcst"),
];

/// The validated `[scst]` table. Its source is also in `Recipe::sources` as `scst`,
/// each firmware file as `firmware:NAME` (so lock, fetch and plan see them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scst {
    pub source: Source,
    pub driver_mode: DriverMode,
    pub build_mode: BuildMode,
    /// Components in build order.
    pub components: Vec<String>,
    /// Firmware name → source.
    pub firmware: BTreeMap<String, Source>,
    pub waived: Vec<String>,
    /// Why a waived file is left out, when the recipe says.
    pub waive_reasons: BTreeMap<String, String>,
}

impl Scst {
    /// The `waive-firmware` entry that waives firmware file `name`: the name itself,
    /// or a prefix pattern ending in `*` that it starts with.
    pub fn waiver(&self, name: &str) -> Option<&str> {
        self.waived
            .iter()
            .find(|w| {
                *w == name
                    || w.strip_suffix('*')
                        .is_some_and(|prefix| name.starts_with(prefix))
            })
            .map(String::as_str)
    }

    /// The firmware list and waivers of `[scst]`.
    pub fn firmware_set(&self) -> FirmwareSet {
        FirmwareSet {
            table: "scst".into(),
            files_key: "firmware".into(),
            waive_key: "waive-firmware".into(),
            files: self.firmware.clone(),
            waived: self.waived.clone(),
            waive_reasons: self.waive_reasons.clone(),
            declared: true,
        }
    }

    /// The lock/input name of a firmware file.
    pub fn firmware_input(name: &str) -> String {
        format!("firmware:{name}")
    }
}

pub(super) fn validate_scst(
    spec: &ScstSpec,
    proj: &Project,
    raw_sources: &mut BTreeMap<String, SourceSpec>,
    sources: &mut BTreeMap<String, Source>,
    errs: &mut Errors,
) -> Scst {
    let source = check_source(
        errs,
        at!["scst", "source"],
        "scst source",
        &spec.source,
        proj,
    )
    .unwrap_or_else(|| Source::Path {
        path: proj.root.to_path_buf(),
        written: PathBuf::new(),
        tree: None,
    });
    let requested = spec
        .modules
        .clone()
        .unwrap_or_else(|| vec!["scst".to_string(), "qla2x00t-32gbit".to_string()]);
    // Where the module list is, if the recipe writes one (else the [scst] table).
    let at_modules = if spec.modules.is_some() {
        at!["scst", "modules"]
    } else {
        at!["scst"]
    };
    if requested.is_empty() {
        errs.at(
            at_modules,
            "scst modules: expected at least one component (e.g. \"scst\")",
        );
    }
    for (i, m) in requested.iter().enumerate() {
        if !SCST_COMPONENTS.iter().any(|(n, _)| n == m) {
            let known: Vec<&str> = SCST_COMPONENTS.iter().map(|(n, _)| *n).collect();
            errs.at(
                at!["scst", "modules", i],
                format!("scst modules: unknown component `{m}`: expected one of {} (device handlers such as scst_vdisk are built with `scst`)", known.join(", ")),
            );
        }
    }
    let components: Vec<String> = SCST_COMPONENTS
        .iter()
        .filter(|(n, _)| requested.iter().any(|r| r == n))
        .map(|(n, _)| n.to_string())
        .collect();
    if !requested.is_empty() && !components.iter().any(|c| c == "scst") {
        errs.at(
            at_modules,
            "scst modules: `scst` (the core) is required: every other component links against it",
        );
    }
    if components.iter().any(|c| c == "qla2x00t")
        && components.iter().any(|c| c == "qla2x00t-32gbit")
    {
        errs.at(at_modules, "scst modules: choose one of `qla2x00t-32gbit` and `qla2x00t` (the two QLogic trees cannot be mixed)");
    }
    if spec.driver_mode == DriverMode::InTree
        && !components.iter().any(|c| c.starts_with("qla2x00t"))
    {
        errs.at(at!["scst", "driver-mode"], "scst driver-mode = \"in-tree\" swaps the QLogic driver: add `qla2x00t-32gbit` to modules");
    }
    let mut inputs = vec![("scst".to_string(), spec.source.clone(), source.clone())];
    let set = validate_firmware(
        ("scst", "firmware", "waive-firmware"),
        &spec.firmware,
        &spec.waive_firmware,
        proj,
        errs,
        &mut inputs,
    );
    add_firmware_inputs(inputs, "[scst]", raw_sources, sources, errs);
    Scst {
        source,
        driver_mode: spec.driver_mode,
        build_mode: spec.build_mode,
        components,
        firmware: set.files,
        waived: set.waived,
        waive_reasons: set.waive_reasons,
    }
}
