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

use crate::config::recipe::{DriverMode, Scst, SCST_COMPONENTS};
use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage};
use crate::kconfig::Request;
use crate::stages::firmware::{self, ModInfo};
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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

/// Extra kernel options an SCST recipe implies: the swapped driver's target hooks in
/// in-tree mode.
pub fn kernel_requests(ctx: &Ctx) -> Vec<Request> {
    match &ctx.recipe.scst {
        Some(s) if s.driver_mode == DriverMode::InTree => {
            vec![Request {
                option: "CONFIG_SCSI_QLA2XXX_TARGET".into(),
                value: "y".into(),
                origin: "[scst] driver-mode = \"in-tree\"".into(),
            }]
        }
        _ => Vec::new(),
    }
}

/// In-tree mode, before the kernel is configured: replace `drivers/scsi/qla2xxx` with
/// SCST's QLogic tree and apply the SCST kernel patches for this kernel version.
/// Does nothing in out-of-tree mode (the kernel stays unmodified).
pub fn prepare_kernel_tree(ctx: &Ctx, src: &Path, log: &Log) -> Result<()> {
    let Some(scst) = &ctx.recipe.scst else {
        return Ok(());
    };
    if scst.driver_mode != DriverMode::InTree {
        return Ok(());
    }
    let work = tempfile::Builder::new()
        .prefix("scst-tree-")
        .tempdir_in(ctx.cache.tmp_dir())
        .context("cannot create a scratch directory in the cache")?;
    let tree = work.path().join("scst");
    unpack(ctx, scst, &tree, log)?;
    let qla = qla_tree(scst);
    let from = tree.join(qla);
    if !from.is_dir() {
        bail!("the SCST tree has no {qla}/ directory: cannot swap the QLogic driver");
    }
    let dest = src.join("drivers/scsi/qla2xxx");
    if !dest.is_dir() {
        bail!("the kernel tree has no drivers/scsi/qla2xxx: cannot swap in SCST's {qla}");
    }
    ufs::remove_dir_all(&dest)?;
    ufs::copy_tree(&from, &dest)?;
    // SCST ships the kbuild rules for a kernel tree beside its out-of-tree ones.
    let in_tree_makefile = dest.join("Makefile_in-tree");
    if in_tree_makefile.is_file() {
        ufs::copy(&in_tree_makefile, &dest.join("Makefile"))?;
    }
    let trace = from.join("include/trace/events/qla.h");
    if trace.is_file() {
        let to = src.join("include/trace/events/qla.h");
        ufs::create_dir_all(&ufs::parent_dir(&to))?;
        ufs::copy(&trace, &to)?;
    }
    progress::step(&format!(
        "kernel: drivers/scsi/qla2xxx replaced by SCST's {qla}"
    ));
    log.line(&format!(
        "replaced drivers/scsi/qla2xxx by {}",
        from.display()
    ));
    let version = kernel_version(src)?;
    let patches = kernel_patches(&tree, &version)?;
    if patches.is_empty() {
        let msg = format!("kernel: the SCST tree has no kernel patches for Linux {version} (none needed: SCST builds against an unmodified kernel)");
        progress::step(&msg);
        log.line(&msg);
    }
    crate::stages::kernel::apply_patches(&patches, src, log)?;
    let rel = |p: &PathBuf| p.strip_prefix(&tree).unwrap_or(p).display().to_string();
    let record = KernelRecord {
        driver_mode: scst.driver_mode.as_str().into(),
        kernel_version: version,
        qla_tree: qla.to_string(),
        patches: patches.iter().map(rel).collect(),
    };
    ufs::write(
        &ufs::parent_dir(src).join(KERNEL_RECORD),
        serde_json::to_string_pretty(&record)? + "\n",
    )?;
    Ok(())
}

/// The QLogic tree of the recipe's components (`qla2x00t-32gbit` unless the legacy
/// one is chosen).
fn qla_tree(scst: &Scst) -> &'static str {
    if scst.components.iter().any(|c| c == "qla2x00t") {
        "qla2x00t"
    } else {
        "qla2x00t-32gbit"
    }
}

/// `major.minor` of a kernel source tree, from the `VERSION` and `PATCHLEVEL` lines
/// of its top Makefile.
pub fn kernel_version(src: &Path) -> Result<String> {
    let text = ufs::read_to_string(&src.join("Makefile"))?;
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key)
                .then(|| v.trim().to_string())
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    match (get("VERSION"), get("PATCHLEVEL")) {
        (Some(v), Some(p)) => Ok(format!("{v}.{p}")),
        _ => bail!(
            "cannot tell the kernel version: {} has no VERSION and PATCHLEVEL lines",
            src.join("Makefile").display()
        ),
    }
}

/// Directories of an SCST tree that hold kernel patches (`NAME-<major.minor>.patch`
/// and generic `NAME.patch`), historical and current. `scst/kernel/in-tree/` is not
/// one: its files are Kbuild hooks for a full in-tree SCST (generate-kernel-patch).
const PATCH_DIRS: &[&str] = &["scst/kernel", "iscsi-scst/kernel/patches"];

/// The SCST kernel patches for kernel `version` (`major.minor`), in order: for each
/// patch family, `NAME-<major.minor>.patch` if the tree has it, else the generic
/// `NAME.patch` (SCST's own scripts choose the same way); families that only exist
/// for other versions are left out.
pub fn kernel_patches(tree: &Path, version: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in PATCH_DIRS {
        let dir = tree.join(d);
        if !dir.is_dir() {
            continue;
        }
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".patch"))
            .collect();
        names.sort();
        // family → (versioned match, generic)
        let mut families: std::collections::BTreeMap<String, (Option<String>, Option<String>)> =
            Default::default();
        for n in &names {
            let stem = &n[..n.len() - ".patch".len()];
            match split_version(stem) {
                Some((family, v)) => {
                    let e = families.entry(family.to_string()).or_default();
                    if v == version {
                        e.0 = Some(n.clone());
                    }
                }
                None => families.entry(stem.to_string()).or_default().1 = Some(n.clone()),
            }
        }
        for (_, (versioned, generic)) in families {
            if let Some(n) = versioned.or(generic) {
                out.push(dir.join(n));
            }
        }
    }
    Ok(out)
}

/// `nolockdep-4.9` → `("nolockdep", "4.9")`; `put_page_callback-6.1.12` →
/// `("put_page_callback", "6.1")`; `Makefile.drivers.Linux` → None.
fn split_version(stem: &str) -> Option<(&str, String)> {
    let (family, v) = stem.rsplit_once('-')?;
    let parts: Vec<&str> = v.split('.').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| (family, parts[..2].join(".")))
}

/// Copies (tree) or unpacks (archive) the SCST source to `dest`.
fn unpack(ctx: &Ctx, scst: &Scst, dest: &Path, log: &Log) -> Result<()> {
    let fetched = crate::engine::fetch::fetch_source(
        &ctx.cache,
        "scst",
        &scst.source,
        ctx.lock.as_ref(),
        log,
    )?;
    ufs::create_dir_all(dest)?;
    if let Some(tree) = &fetched.tree {
        let m = crate::engine::tree::checkout(&ctx.cache, tree, dest)?;
        log.line(&format!(
            "checked out SCST tree {tree} ({} files)",
            m.entries.len()
        ));
        return check_layout(&m.top_level(), scst, &format!("source `scst` ({tree})"));
    }
    if fetched.path.is_dir() {
        ufs::copy_tree(&fetched.path, dest)?;
    } else {
        Cmd::new("tar")
            .arg("-xf")
            .arg(&fetched.path)
            .arg("-C")
            .arg(dest)
            .arg("--strip-components=1")
            .arg("--no-same-owner")
            .run(log)?;
    }
    let mut top: Vec<String> = std::fs::read_dir(dest)
        .with_context(|| format!("cannot list {}", dest.display()))?
        .filter_map(|e| e.ok())
        .map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                format!("{n}/")
            } else {
                n
            }
        })
        .collect();
    top.sort();
    check_layout(&top, scst, &fetched.path.display().to_string())
}

/// The top-level directories an SCST tree must have for the recipe's components
/// (`scst/` always).
fn required_dirs(scst: &Scst) -> Vec<&'static str> {
    let mut dirs = vec!["scst"];
    for c in &scst.components {
        if let Some((_, make_dir)) = SCST_COMPONENTS.iter().find(|(n, _)| n == c) {
            let top = make_dir.split('/').next().unwrap_or(make_dir);
            if !dirs.contains(&top) {
                dirs.push(top);
            }
        }
    }
    dirs
}

/// `top`: the names at the top of a source tree, directories ending in `/`. Fails
/// unless it has every directory the recipe's SCST components are built from,
/// saying what was expected and what is there.
fn check_layout(top: &[String], scst: &Scst, what: &str) -> Result<()> {
    let required = required_dirs(scst);
    let missing: Vec<String> = required
        .iter()
        .filter(|d| !top.iter().any(|t| *t == format!("{d}/")))
        .map(|d| format!("{d}/"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let expected: Vec<String> = required.iter().map(|d| format!("{d}/")).collect();
    let shown: Vec<&str> = top.iter().take(12).map(String::as_str).collect();
    bail!(
        "{what} is not an SCST tree: expected {} at its top (the recipe builds {}), but {} missing; it holds {}{}",
        join_and(&expected),
        scst.components.join(", "),
        if missing.len() == 1 {
            format!("{} is", missing.join(""))
        } else {
            format!("{} are", join_and(&missing))
        },
        if shown.is_empty() {
            "nothing".to_string()
        } else {
            shown.join(", ")
        },
        if top.len() > shown.len() { ", …" } else { "" }
    )
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Before anything is built: when the recipe's SCST source is pinned by tree and the
/// tree is in the store, its manifest must show an SCST tree (a wrong archive is
/// found in a second, not after the kernel build).
pub fn check_source_tree(ctx: &Ctx) -> Result<()> {
    let Some(scst) = &ctx.recipe.scst else {
        return Ok(());
    };
    let Some(tree) = scst.source.tree() else {
        return Ok(());
    };
    match crate::engine::tree::known_manifest(&ctx.cache, tree) {
        Some(m) if crate::engine::tree::has(&ctx.cache, tree) => {
            check_layout(&m.top_level(), scst, &format!("source `scst` ({tree})"))
        }
        _ => Ok(()),
    }
}

/// The first line of a build's output that is a compiler (or modpost) error, with
/// the tree's path removed: `scst/src/scst_main.c:42:7: error: …`.
fn first_error(line: &str, tree: &Path) -> Option<String> {
    let l = line.trim();
    let is_error = l.contains(": error: ")
        || l.contains(": fatal error: ")
        || l.starts_with("ERROR: modpost:");
    if !is_error {
        return None;
    }
    let prefix = format!("{}/", tree.display());
    Some(l.replace(&prefix, ""))
}

/// The object kbuild is compiling on a `  CC [M]  path/x.o` line.
fn compiling(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("CC [M]")?;
    Some(rest.trim().to_string())
}

/// The kernel module that `file` (a source file or an object, as the build printed
/// it: absolute, or relative to the tree or the component's make directory) belongs
/// to, from the Kbuild (or Makefile) beside it: `obj-m := NAME.o`, or `NAME-y` /
/// `NAME-objs` listing the file's object.
fn module_of(file: &str, tree: &Path, make_dir: &str) -> Option<String> {
    let p = Path::new(file);
    let candidates = [tree.join(p), tree.join(make_dir).join(p), p.to_path_buf()];
    let dir = candidates
        .iter()
        .filter_map(|c| c.parent())
        .filter(|d| d.is_absolute())
        .find(|d| d.join("Kbuild").is_file() || d.join("Makefile").is_file())?;
    let object = format!("{}.o", p.file_stem()?.to_string_lossy());
    for kb in ["Kbuild", "Makefile"] {
        let Ok(text) = std::fs::read_to_string(dir.join(kb)) else {
            continue;
        };
        let joined = text.replace("\\\n", " ");
        let mut direct = None;
        for l in joined.lines() {
            let Some((lhs, rhs)) = l.split_once('=') else {
                continue;
            };
            let lhs = lhs.trim_end_matches([':', '+', '?']).trim();
            if !rhs.split_whitespace().any(|w| w == object) {
                continue;
            }
            if let Some(m) = lhs.strip_suffix("-y").or_else(|| lhs.strip_suffix("-objs")) {
                if !m.starts_with("obj") && !m.starts_with("ccflags") {
                    return Some(m.to_string());
                }
            }
            if lhs.starts_with("obj-") {
                direct = Some(object.trim_end_matches(".o").to_string());
            }
        }
        if direct.is_some() {
            return direct;
        }
    }
    None
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
    if !kdir.join(".config").is_file() {
        bail!("the kernel build tree {} is missing: out-of-tree modules need it (rebuild the kernel stage)", kdir.display());
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

    let work = dir.join("work");
    let tree = work.join("scst");
    unpack(ctx, scst, &tree, log)?;
    let version = kernel_version(&kernel.join("src")).unwrap_or_default();
    let available: Vec<String> = if version.is_empty() {
        Vec::new()
    } else {
        kernel_patches(&tree, &version)?
            .iter()
            .map(|p| p.strip_prefix(&tree).unwrap_or(p).display().to_string())
            .collect()
    };
    if scst.driver_mode == DriverMode::OutOfTree && !available.is_empty() {
        log.line(&format!(
            "the SCST tree offers kernel patches for {version} ({}); out-of-tree mode applies none",
            available.join(", ")
        ));
    }

    let env = crate::stages::kernel::repro_env(ctx);
    let with_env = |mut c: Cmd| {
        for (k, v) in &env {
            c = c.env(k, v);
        }
        c
    };
    let target = scst.build_mode.make_target();
    progress::step(&format!("modules: make {target}"));
    with_env(Cmd::new("make").arg("-C").arg(&tree).arg(target))
        .run(log)
        .with_context(|| {
            format!(
                "cannot select SCST's {} build mode (make {target})",
                scst.build_mode.as_str()
            )
        })?;

    let lib = dir.join("root/lib/modules").join(&release);
    let extra = lib.join("extra");
    ufs::create_dir_all(&extra)?;
    let mut built: Vec<BuiltModule> = Vec::new();
    for comp in &scst.components {
        let Some((_, make_dir)) = SCST_COMPONENTS.iter().find(|(n, _)| n == comp) else {
            continue;
        };
        let mut cmd = Cmd::new("make")
            .arg("-C")
            .arg(tree.join(make_dir))
            .arg(format!("-j{}", ctx.jobs))
            .arg(format!("KDIR={}", kdir.display()))
            .arg(format!("KVER={release}"));
        if comp.starts_with("qla2x00t") {
            if scst.driver_mode == DriverMode::OutOfTree {
                cmd = cmd.args(["BUILD_2X_MODULE=y", "CONFIG_SCSI_QLA_FC=y"]);
            }
            cmd = cmd.arg("CONFIG_SCSI_QLA2XXX_TARGET=y");
        }
        if comp == "iscsi-scst" {
            // iscsi-scstd runs in an image whose userland may have no libc: link it
            // statically (its Makefile appends LOCAL_LD_FLAGS to the link line).
            cmd = cmd.arg("LOCAL_LD_FLAGS=-static");
        }
        progress::step(&format!("modules: building SCST component {comp}"));
        // The compiler's first error, and the object kbuild was compiling then.
        let mut first: Option<(String, Option<String>)> = None;
        let mut object = None;
        if let Err(e) = with_env(cmd).run_lines(log, |l| {
            if first.is_some() {
                return;
            }
            if let Some(o) = compiling(l) {
                object = Some(o);
            } else if let Some(err) = first_error(l, &tree) {
                first = Some((err, object.take()));
            }
        }) {
            // They say more than the last lines of make's output.
            let msg = match &first {
                Some((line, object)) => {
                    let file = line.split(':').next().unwrap_or("");
                    let module = object
                        .as_deref()
                        .and_then(|o| module_of(o, &tree, make_dir))
                        .or_else(|| module_of(file, &tree, make_dir))
                        .map(|m| format!(" (module {m})"))
                        .unwrap_or_default();
                    format!("building SCST component `{comp}` failed{module}: {line}")
                }
                None => format!("building SCST component `{comp}` failed"),
            };
            return Err(e.context(msg));
        }
        // The component's whole directory: qla2x00t-32gbit builds qla2xxx_scst.ko one
        // level above the qla2x00-target directory it is made from.
        let top = make_dir.split('/').next().unwrap_or(make_dir);
        if comp == "iscsi-scst" {
            install_iscsi_daemon(&tree, dir, log)?;
        }
        let kos = firmware::find_modules(&tree.join(top))?;
        if kos.is_empty() {
            bail!("SCST component `{comp}` built no module (no .ko under {top}/)");
        }
        for ko in kos {
            let file_name = ko
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            if built.iter().any(|b| b.file == format!("extra/{file_name}")) {
                bail!(
                    "two SCST modules are named {file_name} (second: {})",
                    ko.display()
                );
            }
            let info = firmware::modinfo(&ko)?;
            let dst = extra.join(&file_name);
            ufs::copy(&ko, &dst)?;
            // As the kernel's INSTALL_MOD_STRIP=1 does: debug sections are most of an
            // out-of-tree module's size (qla2xxx_scst.ko: 17 MB before, ~1 MB after).
            Cmd::new("strip").arg("--strip-debug").arg(&dst).run(log)?;
            // Signed after stripping, as modules_install does (strip drops a signature).
            crate::stages::kernel::signing::sign_module(ctx, &kdir, &dst, log)?;
            built.push(BuiltModule {
                name: firmware::module_name(&ko, &info),
                file: format!("extra/{file_name}"),
                component: comp.clone(),
                vermagic: info.first("vermagic").unwrap_or_default().to_string(),
                sha256: crate::util::hash::sha256_file(&dst)?,
            });
        }
    }
    ufs::remove_dir_all(&work)?;

    // Every module of the image: the kernel's and ours.
    let kernel_lib = kernel.join("modules/lib/modules").join(&release);
    let mut all: Vec<(String, String, ModInfo)> = Vec::new();
    for ko in firmware::find_modules(&kernel_lib)? {
        let info = firmware::modinfo(&ko)?;
        let rel = ko
            .strip_prefix(&kernel_lib)
            .unwrap_or(&ko)
            .display()
            .to_string();
        all.push((firmware::module_name(&ko, &info), rel, info));
    }
    check_vermagic(&release, &all, &built)?;
    for b in &built {
        all.push((
            b.name.clone(),
            b.file.clone(),
            firmware::modinfo(&lib.join(&b.file))?,
        ));
    }

    depmod(ctx, &kernel_lib, &lib, &release, log)?;

    // The QLogic devices (`pci:v00001077dDEVICE`) each module claims.
    let devices = |info: &ModInfo| -> Vec<String> {
        info.all("alias")
            .iter()
            .filter(|a| a.starts_with(QLOGIC_ALIAS))
            .map(|a| a.get(..QLOGIC_ALIAS.len() + 8).unwrap_or(a).to_string())
            .collect()
    };
    let scst_devices: Vec<String> = all
        .iter()
        .filter(|(_, file, _)| file.starts_with("extra/"))
        .flat_map(|(_, _, info)| devices(info))
        .collect();
    let qlogic_pci: Vec<PciClaim> = all
        .iter()
        .filter_map(|(name, file, info)| {
            let d = devices(info);
            (!d.is_empty()).then(|| PciClaim {
                module: name.clone(),
                file: file.clone(),
                aliases: d.len(),
                shared: !file.starts_with("extra/") && d.iter().any(|x| scst_devices.contains(x)),
            })
        })
        .collect();
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

/// Every out-of-tree module must carry the kernel's vermagic (release + SMP,
/// preempt, mod_unload, …): the same string as an in-tree module when there is one,
/// else at least the release.
fn check_vermagic(
    release: &str,
    kernel_modules: &[(String, String, ModInfo)],
    built: &[BuiltModule],
) -> Result<()> {
    let reference = kernel_modules.iter().find_map(|(n, _, i)| {
        i.first("vermagic")
            .map(|v| (n.clone(), v.trim().to_string()))
    });
    let mut bad = Vec::new();
    for b in built {
        let v = b.vermagic.trim();
        let ok = match &reference {
            Some((_, r)) => v == r,
            None => v.split_whitespace().next() == Some(release),
        };
        if !ok {
            bad.push(format!("{} ({}): vermagic `{v}`", b.name, b.file));
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    let expected = match reference {
        Some((n, r)) => format!("`{r}` (as in-tree module {n})"),
        None => format!("release {release}"),
    };
    bail!("SCST modules were built for another kernel: expected vermagic {expected}\n  {}\nis KDIR the kernel of this image?", bad.join("\n  "))
}

/// Installs iscsi-scstd and iscsi-scst-adm (built with the iscsi-scst component) into
/// `root/usr/sbin`, after checking that they are static: the image may have no libc.
fn install_iscsi_daemon(tree: &Path, dir: &Path, log: &Log) -> Result<()> {
    let sbin = dir.join("root/usr/sbin");
    for prog in ["iscsi-scstd", "iscsi-scst-adm"] {
        let built = tree.join("iscsi-scst/usr").join(prog);
        if !built.is_file() {
            log.line(&format!("{} was not built: not installed", built.display()));
            continue;
        }
        match crate::image::elf::needed(&built)? {
            Some(info) if info.interpreter.is_none() && info.needed.is_empty() => {}
            _ => bail!(
                "{} is not statically linked (LOCAL_LD_FLAGS=-static was not honoured): the image has no libc for it",
                built.display()
            ),
        }
        ufs::create_dir_all(&sbin)?;
        let dst = sbin.join(prog);
        ufs::copy(&built, &dst)?;
        Cmd::new("strip").arg(&dst).run(log)?;
        progress::step(&format!("modules: installed /usr/sbin/{prog}"));
    }
    Ok(())
}

/// depmod over the kernel's modules and `extra/`, in a scratch root; the index files
/// it writes are copied beside `extra/` (the rootfs lays them over the kernel's).
fn depmod(ctx: &Ctx, kernel_lib: &Path, lib: &Path, release: &str, log: &Log) -> Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("depmod-")
        .tempdir_in(ctx.cache.tmp_dir())
        .context("cannot create a scratch directory in the cache")?;
    let target = scratch.path().join("lib/modules").join(release);
    if kernel_lib.is_dir() {
        ufs::copy_tree(kernel_lib, &target)?;
    }
    ufs::copy_tree(&lib.join("extra"), &target.join("extra"))?;
    let depmod =
        crate::util::tools::which("depmod").unwrap_or_else(|| PathBuf::from("/sbin/depmod"));
    Cmd::new(depmod)
        .arg("-b")
        .arg(scratch.path())
        .arg(release)
        .run(log)
        .context("depmod over the kernel and SCST modules failed")?;
    for e in
        std::fs::read_dir(&target).with_context(|| format!("cannot list {}", target.display()))?
    {
        let e = e.with_context(|| format!("cannot list {}", target.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("modules.") && e.path().is_file() {
            ufs::copy(&e.path(), &lib.join(&name))?;
        }
    }
    Ok(())
}

/// Reads `modules.json` of a modules stage entry.
pub fn record(modules: &Path) -> Result<ModulesRecord> {
    let p = modules.join(MODULES_RECORD);
    serde_json::from_str(&ufs::read_to_string(&p)?)
        .with_context(|| format!("cannot parse {}", p.display()))
}

/// In out-of-tree mode both the kernel's `qla2xxx` and `qla2xxx_scst` bind QLogic
/// HBAs; the first loaded wins. The node must blacklist every in-tree module that
/// claims a device qla2xxx_scst claims (other QLogic-vendor drivers, such as bnx2x
/// for QLogic-branded NICs, are left alone).
pub fn check_node(ctx: &Ctx, rec: &ModulesRecord) -> Result<()> {
    if rec.driver_mode != DriverMode::OutOfTree.as_str() {
        return Ok(());
    }
    let ours = rec.qlogic_pci.iter().any(|c| c.file.starts_with("extra/"));
    let theirs: Vec<&PciClaim> = rec
        .qlogic_pci
        .iter()
        .filter(|c| !c.file.starts_with("extra/") && c.shared)
        .collect();
    for c in theirs {
        if ours
            && !ctx
                .node
                .modules
                .blacklist
                .iter()
                .any(|b| b.replace('-', "_") == c.module)
        {
            bail!(
                "in-tree module {} ({}) claims the same QLogic HBAs as SCST's qla2xxx_scst: add \"{}\" to [modules] blacklist in {}",
                c.module,
                c.file,
                c.module,
                ctx.recipe.node_config.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }

    #[test]
    fn patches_prefer_the_version_then_the_generic_file() {
        let t = tempfile::tempdir().unwrap();
        let k = t.path().join("scst/kernel");
        for n in [
            "nolockdep-4.9.patch",
            "nolockdep-6.1.patch",
            "exec_req_fifo-4.9.patch",
            "readahead.patch",
            "readahead-6.1.patch",
            "generic.patch",
            "in-tree/Makefile.drivers.Linux.patch",
        ] {
            touch(&k.join(n));
        }
        touch(
            &t.path()
                .join("iscsi-scst/kernel/patches/put_page_callback-6.1.12.patch"),
        );
        let got: Vec<String> = kernel_patches(t.path(), "6.1")
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(t.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "scst/kernel/generic.patch",
                "scst/kernel/nolockdep-6.1.patch",
                "scst/kernel/readahead-6.1.patch",
                "iscsi-scst/kernel/patches/put_page_callback-6.1.12.patch"
            ]
        );
        let old: Vec<String> = kernel_patches(t.path(), "4.9")
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            old,
            vec![
                "exec_req_fifo-4.9.patch",
                "generic.patch",
                "nolockdep-4.9.patch",
                "readahead.patch"
            ]
        );
    }

    #[test]
    fn the_first_compiler_error_names_its_module() {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join("scst");
        let kbuild = "ccflags-y := -I$(src)/../include \\\n\t-Wall\nobj-m := scst.o\n\nscst-y +=\tscst_copy_mgr.o\t\\\n\t\tscst_main.o\n";
        std::fs::create_dir_all(tree.join("scst/src/dev_handlers")).unwrap();
        std::fs::write(tree.join("scst/src/Kbuild"), kbuild).unwrap();
        touch(&tree.join("scst/src/scst_main.c"));
        std::fs::write(
            tree.join("scst/src/dev_handlers/Kbuild"),
            "obj-m += scst_vdisk.o scst_disk.o\n",
        )
        .unwrap();
        touch(&tree.join("scst/src/dev_handlers/scst_vdisk.c"));
        let line = format!(
            "{}/scst/src/scst_main.c:42:7: error: 'x' undeclared",
            tree.display()
        );
        let e = first_error(&line, &tree).unwrap();
        assert_eq!(e, "scst/src/scst_main.c:42:7: error: 'x' undeclared");
        assert_eq!(
            module_of("scst/src/scst_main.c", &tree, "scst").as_deref(),
            Some("scst")
        );
        // Relative to the component's make directory, a module of its own.
        assert!(first_error(
            "src/dev_handlers/scst_vdisk.c:1:1: fatal error: x.h: No such file",
            &tree
        )
        .is_some());
        assert_eq!(
            module_of("src/dev_handlers/scst_vdisk.c", &tree, "scst").as_deref(),
            Some("scst_vdisk")
        );
        // An object kbuild names on its `CC [M]` line.
        let o = compiling(&format!(
            "  CC [M]  {}/scst/src/scst_main.o",
            tree.display()
        ));
        assert_eq!(
            module_of(&o.unwrap(), &tree, "scst").as_deref(),
            Some("scst")
        );
        assert!(first_error("scst_main.c:7:1: warning: unused", &tree).is_none());
        assert!(first_error("make[2]: *** [Makefile:42: all] Error 2", &tree).is_none());
        assert_eq!(module_of("nowhere.c", &tree, "scst"), None);
    }

    #[test]
    fn version_comes_from_the_makefile() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("Makefile"),
            "# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n",
        )
        .unwrap();
        assert_eq!(kernel_version(t.path()).unwrap(), "6.1");
        std::fs::write(t.path().join("Makefile"), "all:\n").unwrap();
        assert!(kernel_version(t.path())
            .unwrap_err()
            .to_string()
            .contains("VERSION and PATCHLEVEL"));
    }
}
