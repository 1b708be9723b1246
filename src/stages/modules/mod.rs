//! The `modules` stage: SCST and its QLogic target driver built against the kernel
//! of this image, plus the in-tree driver swap (the legacy mode) done before the
//! kernel is configured.
//!
//! Why it exists: SCST is not in Linux. The documented build (reference/scst.md §A3,
//! §C) runs `make 2release`, then `make -C <component> KDIR=… KVER=…` with
//! `BUILD_2X_MODULE=y CONFIG_SCSI_QLA_FC=y CONFIG_SCSI_QLA2XXX_TARGET=y`, and installs
//! the `.ko` files into `lib/modules/<release>/extra/` before running depmod. This
//! stage does that (with the recipe's build mode: `make 2release`, `2perf` or
//! `2debug`), then checks what a boot would otherwise find out the hard way:
//! every module's vermagic matches the kernel, the firmware the modules request is
//! provided or waived, and which module claims the QLogic PCI IDs.
//!
//! Reads: the `[scst]` table, the SCST source (archive or tree) through the cache, the
//! kernel stage's `build/` (KDIR), `kernel.release`, `config` and installed modules.
//! Writes into its cache entry: `root/lib/modules/<release>/{extra/,modules.*}`,
//! `root/lib/firmware/…` and `modules.json` (what the manifest reports).

use crate::config::recipe::{DriverMode, Scst};
use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage};
use crate::stages::firmware::{self, ModInfo};
use crate::util::cmd::Log;
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

mod index;
mod intree;
mod make;
mod tree;

pub use index::check_node;
pub use intree::{kernel_patches, kernel_requests, kernel_version, prepare_kernel_tree};
pub use tree::check_source_tree;
use tree::unpack;

/// QLogic's PCI vendor ID as it appears in module aliases.
const QLOGIC_ALIAS: &str = "pci:v00001077d";

/// Where the kernel stage records what the in-tree swap did.
pub const KERNEL_RECORD: &str = "scst-kernel.json";
/// What the modules stage built, read by rootfs and outputs.
pub const MODULES_RECORD: &str = "modules.json";

/// What `prepare_kernel_tree` did to the kernel source (in-tree mode).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub struct KernelRecord {
    pub driver_mode: String,
    /// `major.minor` of the kernel the patches were chosen for.
    pub kernel_version: String,
    /// The SCST QLogic tree that replaced `drivers/scsi/qla2xxx` (empty: none).
    pub qla_tree: String,
    /// SCST kernel patches applied, in order (paths inside the SCST tree).
    pub patches: Vec<String>,
}

/// One out-of-tree module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuiltModule {
    pub name: String,
    /// Path under `lib/modules/<release>/`.
    pub file: String,
    pub component: String,
    pub vermagic: String,
    pub sha256: String,
}

/// A module that binds QLogic HBAs (it has `alias=pci:v00001077d…` entries).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PciClaim {
    pub module: String,
    pub file: String,
    pub aliases: usize,
    /// Whether it claims a QLogic device that an SCST module (`extra/`) claims too
    /// (bnx2x, say, binds QLogic-branded NICs, not the HBAs).
    #[serde(default, rename = "shares-devices-with-scst")]
    pub shared: bool,
}

/// `modules.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub struct ModulesRecord {
    pub driver_mode: String,
    /// SCST's build mode: `release`, `perf` or `debug`.
    #[serde(default)]
    pub build_mode: String,
    pub release: String,
    pub components: Vec<String>,
    pub modules: Vec<BuiltModule>,
    pub firmware: Vec<FirmwareRecord>,
    pub qlogic_pci: Vec<PciClaim>,
    /// The SCST kernel patch series applied by the kernel stage (in-tree mode).
    pub kernel_patches: Vec<String>,
    /// Patches the SCST tree offers for this kernel version (applied only in-tree).
    pub available_kernel_patches: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FirmwareRecord {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
    pub module: Option<String>,
    pub waived: bool,
    /// Why the recipe waives it, when it says.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// The Debian package it was taken from (`firmware-qlogic=20230210-5`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub package: Option<String>,
    /// Where it came from otherwise (URL list or path, as the recipe says).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin: Option<String>,
}

/// Bump when the stage's code changes what it produces, to invalidate old entries.
const VERSION: &str = "modules-v4";

/// The modules stage: SCST and its QLogic driver built against the kernel stage's
/// tree, their firmware, and the module index over the kernel's modules and these.
/// Only recipes with `[scst]` have it.
pub struct Modules;

/// The modules stage's cache entry.
#[derive(Debug, Clone)]
pub struct ModulesOut {
    pub dir: PathBuf,
}

impl ModulesOut {
    /// The tree that goes into the image as is (`lib/modules`, `lib/firmware`, `usr/sbin`).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
    /// What was built: modules, firmware, QLogic PCI claims.
    pub fn record(&self) -> Result<ModulesRecord> {
        record(&self.dir)
    }
}

impl Stage<super::Built> for Modules {
    fn name(&self) -> &'static str {
        "modules"
    }

    fn shared(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    /// SCST builds against the kernel's build tree (KDIR).
    fn reads_local_parts_of(&self) -> &'static [&'static str] {
        &["kernel"]
    }

    fn applies(&self, ctx: &Ctx) -> bool {
        ctx.recipe.scst.is_some()
    }

    fn inputs(&self, ctx: &Ctx) -> Vec<String> {
        let mut v = vec!["scst".to_string()];
        if let Some(s) = &ctx.recipe.scst {
            v.extend(s.firmware.keys().map(|n| Scst::firmware_input(n)));
        }
        v
    }

    fn key(&self, ctx: &Ctx, keys: &Keys) -> Result<String> {
        let r = &ctx.recipe;
        let Some(s) = &r.scst else {
            return Ok(String::new());
        };
        let mut mb = KeyBuilder::new(VERSION);
        mb.add_str("kernel", keys.get("kernel"));
        mb.add_str("scst", ctx.input_sha("scst"));
        mb.add_str("mode", s.driver_mode.as_str());
        mb.add_str("build-mode", s.build_mode.as_str());
        for c in &s.components {
            mb.add_str("component", c);
        }
        for p in &r.kernel().patches {
            mb.add("patch", &ufs::read(p)?);
        }
        for name in s.firmware.keys() {
            let input = Scst::firmware_input(name);
            mb.add_str("firmware", &format!("{name} {}", ctx.input_sha(&input)));
        }
        for w in &s.waived {
            mb.add_str("waive", w);
        }
        mb.add_str("sde", &r.source_date_epoch().to_string());
        Ok(mb.finish())
    }

    fn reason(&self, _ctx: &Ctx, earlier: &[PlanEntry]) -> String {
        if earlier.iter().any(|e| e.stage == "kernel" && !e.cached) {
            "the kernel will be rebuilt".to_string()
        } else {
            "no cache entry for this SCST source, driver mode, build mode, component list and firmware set"
                .to_string()
        }
    }

    fn execute(&self, ctx: &Ctx, built: &mut super::Built, runner: &mut Runner) -> Result<()> {
        let kernel = built.kernel()?.clone();
        let key = ctx.keys.get(self.name());
        let dir = runner.cached_entry(ctx, self.name(), key, false, |dir, log| {
            build(ctx, &kernel, dir, log)
        })?;
        built.modules = Some(ModulesOut { dir });
        Ok(())
    }
}

fn build(ctx: &Ctx, kernel_out: &super::KernelOut, dir: &Path, log: &Log) -> Result<()> {
    let kernel = kernel_out.dir.as_path();
    let Some(scst) = &ctx.recipe.scst else {
        return Ok(());
    };
    let release = kernel_out.release()?;
    let kdir = kernel.join("build");
    check_kernel(kernel, &kdir, scst)?;

    let work = dir.join("work");
    let tree = work.join("scst");
    unpack(ctx, scst, &tree, log)?;
    let available = available_patches(kernel, &tree, scst, log)?;

    let make = make::Make {
        env: crate::stages::kernel::repro_env(ctx),
        jobs: ctx.jobs,
        tree: &tree,
        kdir: &kdir,
        release: &release,
        signing: ctx.recipe.module_signing.as_ref(),
    };
    make.select_build_mode(scst, log)?;
    let lib = dir.join("root/lib/modules").join(&release);
    let extra = lib.join("extra");
    ufs::create_dir_all(&extra)?;
    let mut built: Vec<BuiltModule> = Vec::new();
    for comp in &scst.components {
        make.component(scst, comp, dir, &mut built, log)?;
    }
    ufs::remove_dir_all(&work)?;

    // Every module of the image: the kernel's and ours.
    let kernel_lib = kernel.join("modules/lib/modules").join(&release);
    let all = index::all_modules(&kernel_lib, &lib, &release, &built)?;
    index::depmod(ctx, &kernel_lib, &lib, &release, log)?;
    let qlogic_pci = index::qlogic_claims(&all);
    let named: Vec<(String, ModInfo)> =
        all.iter().map(|(n, _, i)| (n.clone(), i.clone())).collect();
    let required = firmware::required(&named);
    let fw = firmware::install(ctx, &scst.firmware_set(), &required, &dir.join("root"), log)?;
    let kernel_patches = match ufs::read_to_string(&kernel.join(KERNEL_RECORD)) {
        Ok(t) => serde_json::from_str::<KernelRecord>(&t)
            .map(|r| r.patches)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let record = ModulesRecord {
        driver_mode: scst.driver_mode.as_str().into(),
        build_mode: scst.build_mode.as_str().into(),
        release,
        components: scst.components.clone(),
        modules: built,
        firmware: fw
            .into_iter()
            .map(|f| FirmwareRecord {
                name: f.name,
                sha256: f.sha256,
                module: f.module,
                waived: f.waived,
                reason: f.reason,
                package: f.package,
                origin: f.origin,
            })
            .collect(),
        qlogic_pci,
        kernel_patches,
        available_kernel_patches: available,
    };
    ufs::write(
        &dir.join(MODULES_RECORD),
        serde_json::to_string_pretty(&record)? + "\n",
    )?;
    progress::step(&format!(
        "modules: {} SCST modules, {} firmware files",
        record.modules.len(),
        record.firmware.iter().filter(|f| !f.waived).count()
    ));
    Ok(())
}

/// The kernel stage's output must have its build tree (KDIR) and module support, and
/// in out-of-tree mode a modular qla2xxx.
fn check_kernel(kernel: &Path, kdir: &Path, scst: &Scst) -> Result<()> {
    if !kdir.join(".config").is_file() {
        bail!("the kernel build tree {} is missing: out-of-tree modules need it (a kernel pulled from a remote cache comes without it: remove {} and build again to build the kernel here)", kdir.display(), kernel.display());
    }
    let config = crate::kconfig::parse_config(&ufs::read_to_string(&kernel.join("config"))?);
    let opt = |o: &str| config.get(o).map(String::as_str).unwrap_or("n");
    if opt("CONFIG_MODULES") != "y" {
        bail!("the kernel has no module support (CONFIG_MODULES is not set): SCST is built as modules");
    }
    let qla = scst.components.iter().any(|c| c.starts_with("qla2x00t"));
    if qla && scst.driver_mode == DriverMode::OutOfTree && opt("CONFIG_SCSI_QLA_FC") == "y" {
        bail!("CONFIG_SCSI_QLA_FC=y: the built-in qla2xxx would bind every QLogic HBA before qla2xxx_scst loads; set it to m (kernel-configs/scst.config) and blacklist qla2xxx");
    }
    Ok(())
}

/// The kernel patches the SCST tree offers for the kernel's version (paths inside the
/// tree), noted in the log when out-of-tree mode applies none.
fn available_patches(kernel: &Path, tree: &Path, scst: &Scst, log: &Log) -> Result<Vec<String>> {
    let version = kernel_version(&kernel.join("src")).unwrap_or_default();
    let available: Vec<String> = if version.is_empty() {
        Vec::new()
    } else {
        kernel_patches(tree, &version)?
            .iter()
            .map(|p| p.strip_prefix(tree).unwrap_or(p).display().to_string())
            .collect()
    };
    if scst.driver_mode == DriverMode::OutOfTree && !available.is_empty() {
        log.line(&format!(
            "the SCST tree offers kernel patches for {version} ({}); out-of-tree mode applies none",
            available.join(", ")
        ));
    }
    Ok(available)
}

/// Reads `modules.json` of a modules stage entry.
pub fn record(modules: &Path) -> Result<ModulesRecord> {
    let p = modules.join(MODULES_RECORD);
    serde_json::from_str(&ufs::read_to_string(&p)?)
        .with_context(|| format!("cannot parse {}", p.display()))
}

#[cfg(test)]
mod tests;
