//! The legacy in-tree mode: before the kernel is configured, SCST's QLogic tree
//! replaces `drivers/scsi/qla2xxx` and the SCST kernel patches for the kernel's
//! version are applied.

use super::tree::unpack;
use super::{KernelRecord, KERNEL_RECORD};
use crate::config::recipe::{DriverMode, Scst};
use crate::engine::Ctx;
use crate::kconfig::Request;
use crate::util::cmd::Log;
use crate::util::fs as ufs;
use crate::util::progress;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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
