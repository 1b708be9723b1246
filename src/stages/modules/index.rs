//! The module index of the image: every SCST module checked against the kernel
//! (vermagic), depmod over the kernel's modules and SCST's, and which modules claim
//! the QLogic HBAs.

use super::{BuiltModule, ModulesRecord, PciClaim, QLOGIC_ALIAS};
use crate::config::recipe::DriverMode;
use crate::engine::Ctx;
use crate::stages::firmware::{self, ModInfo};
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// depmod over the kernel's modules and `extra/`, in a scratch root; the index files
/// it writes are copied beside `extra/` (the rootfs lays them over the kernel's).
pub(super) fn depmod(
    ctx: &Ctx,
    kernel_lib: &Path,
    lib: &Path,
    release: &str,
    log: &Log,
) -> Result<()> {
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

/// Every module of the image, `(name, path under lib/modules/<release>/, modinfo)`:
/// the kernel's (`kernel_lib`), then SCST's (`lib/extra/`) once their vermagic is
/// checked against the kernel's.
pub(super) fn all_modules(
    kernel_lib: &Path,
    lib: &Path,
    release: &str,
    built: &[BuiltModule],
) -> Result<Vec<(String, String, ModInfo)>> {
    let mut all: Vec<(String, String, ModInfo)> = Vec::new();
    for ko in firmware::find_modules(kernel_lib)? {
        let info = firmware::modinfo(&ko)?;
        let rel = ko
            .strip_prefix(kernel_lib)
            .unwrap_or(&ko)
            .display()
            .to_string();
        all.push((firmware::module_name(&ko, &info), rel, info));
    }
    check_vermagic(release, &all, built)?;
    for b in built {
        all.push((
            b.name.clone(),
            b.file.clone(),
            firmware::modinfo(&lib.join(&b.file))?,
        ));
    }
    Ok(all)
}

/// The modules that claim QLogic devices (`pci:v00001077dDEVICE`), and whether an
/// in-tree one claims a device an SCST module (`extra/`) claims too.
pub(super) fn qlogic_claims(all: &[(String, String, ModInfo)]) -> Vec<PciClaim> {
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
    all.iter()
        .filter_map(|(name, file, info)| {
            let d = devices(info);
            (!d.is_empty()).then(|| PciClaim {
                module: name.clone(),
                file: file.clone(),
                aliases: d.len(),
                shared: !file.starts_with("extra/") && d.iter().any(|x| scst_devices.contains(x)),
            })
        })
        .collect()
}
