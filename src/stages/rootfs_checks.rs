//! What the rootfs stage checks of the node configs against the image it assembles:
//! every module a node loads is in the kernel's (or SCST's) tree (and SCST was built
//! with the DLM when a node uses `cluster_mode`), every program a node runs is in the
//! image and can run there, and the storage a node assembles has its tools.

use crate::engine::Ctx;
use crate::image::cpio::{Archive, EntryKind};
use crate::util::fs as ufs;
use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;

/// The image's `modules.dep`: the SCST modules stage's when there is one (it covers
/// the kernel's modules too), else the kernel's.
fn modules_dep(built: &crate::stages::Built, kdir: &Path, release: &str) -> std::path::PathBuf {
    match &built.modules {
        Some(m)
            if m.root()
                .join("lib/modules")
                .join(release)
                .join("modules.dep")
                .is_file() =>
        {
            m.root()
                .join("lib/modules")
                .join(release)
                .join("modules.dep")
        }
        _ => kdir.join("modules.dep"),
    }
}

/// Whether `scst.ko` of a `modules.dep` text uses the `dlm` module (SCST compiles
/// its DLM support, scst_dlm.c, only against a kernel with `CONFIG_DLM`); None when
/// the text has no scst module or the DLM is built in (no module to depend on).
pub fn scst_uses_dlm(dep_text: &str) -> Option<bool> {
    let name = |path: &str| {
        let base = path.rsplit('/').next().unwrap_or(path);
        base.find(".ko")
            .and_then(|i| base.get(..i))
            .unwrap_or(base)
            .to_string()
    };
    dep_text.lines().find_map(|l| {
        let (m, deps) = l.split_once(':')?;
        (name(m.trim()) == "scst").then(|| deps.split_whitespace().any(|d| name(d) == "dlm"))
    })
}

/// The module names of the image's index: `modules.dep` (the SCST modules stage's when
/// there is one, it covers the kernel's modules too) and `modules.builtin` (the
/// kernel's), with `-` and `_` alike, as the init and modprobe treat them.
fn image_modules(
    built: &crate::stages::Built,
) -> Result<(String, BTreeSet<String>, BTreeSet<String>)> {
    let kernel = built.kernel()?;
    let release = kernel.release()?;
    let kdir = kernel.lib_modules().join(&release);
    let dep = modules_dep(built, &kdir, &release);
    let name = |path: &str| {
        let base = path.rsplit('/').next().unwrap_or(path);
        let stem = base.find(".ko").and_then(|i| base.get(..i)).unwrap_or(base);
        crate::config::node::norm_mod(stem)
    };
    let mut loadable = BTreeSet::new();
    if dep.is_file() {
        for l in ufs::read_to_string(&dep)?.lines() {
            if let Some((m, _)) = l.split_once(':') {
                if !m.trim().is_empty() {
                    loadable.insert(name(m.trim()));
                }
            }
        }
    }
    let mut builtin = BTreeSet::new();
    for f in [
        kdir.join("modules.builtin"),
        built
            .modules
            .as_ref()
            .map(|m| {
                m.root()
                    .join("lib/modules")
                    .join(&release)
                    .join("modules.builtin")
            })
            .unwrap_or_default(),
    ] {
        if f.is_file() {
            for l in ufs::read_to_string(&f)?.lines().map(str::trim) {
                if !l.is_empty() {
                    builtin.insert(name(l));
                }
            }
        }
    }
    Ok((release, loadable, builtin))
}

/// Every module a node config of the image loads or gives parameters to must be in
/// the image (modules.dep) or built into the kernel: otherwise the node would find out
/// at boot. The error points at the name in the node config.
pub fn check_node_modules(ctx: &Ctx, built: &crate::stages::Built) -> Result<()> {
    let (release, loadable, builtin) = image_modules(built)?;
    let mut nodes: Vec<(&Path, &str)> = vec![(ctx.recipe.node_config.as_path(), &ctx.node_text)];
    for ((_, text), file) in ctx.node_configs.iter().zip(&ctx.node_config_files) {
        nodes.push((file.as_path(), text));
    }
    let all: Vec<&str> = loadable
        .iter()
        .chain(&builtin)
        .map(String::as_str)
        .collect();
    let dep_text = {
        let kernel = built.kernel()?;
        let dep = modules_dep(built, &kernel.lib_modules().join(&release), &release);
        if dep.is_file() {
            ufs::read_to_string(&dep)?
        } else {
            String::new()
        }
    };
    for (file, text) in nodes {
        let node = crate::config::node::NodeConfig::parse(file, text)?;
        if node
            .ha
            .as_ref()
            .is_some_and(|h| h.enabled && h.cluster_mode)
            && !builtin.contains("dlm")
            && scst_uses_dlm(&dep_text) == Some(false)
        {
            let mut errs = crate::config::spans::Errors::new(file, text);
            errs.at(
                crate::config::spans::at!["ha", "cluster-mode"],
                format!("[ha] cluster-mode needs SCST's DLM support, but scst.ko of this image (kernel {release}) does not use the dlm module: SCST compiles scst_dlm.c only against a kernel with CONFIG_DLM=m or =y; enable it in the recipe's kernel config"),
            );
            errs.finish(())?;
        }
        let m = &node.modules;
        let named = m
            .load
            .iter()
            .enumerate()
            .map(|(i, n)| (n, Some(i)))
            .chain(m.params.keys().map(|n| (n, None)));
        for (n, index) in named {
            let norm = crate::config::node::norm_mod(n);
            if loadable.contains(&norm) || builtin.contains(&norm) {
                continue;
            }
            let hint = module_hint(&norm)
                .map(|h| format!(" ({h})"))
                .or_else(|| {
                    crate::util::suggest::closest(&norm, &all)
                        .map(|k| format!(" (did you mean `{k}`?)"))
                })
                .unwrap_or_default();
            let what = if index.is_some() {
                "[modules] load names"
            } else {
                "[modules] params names"
            };
            let msg = format!(
                "{what} module `{n}`, which kernel {release} of this image neither has (modules.dep) nor builds in (modules.builtin){hint}: check the name, or enable the module in the recipe's kernel config (=m or =y)"
            );
            let mut errs = crate::config::spans::Errors::new(file, text);
            match index {
                Some(i) => errs.at(crate::config::spans::at!["modules", "load", i], msg),
                None => errs.key(crate::config::spans::at!["modules", "params", n], msg),
            }
            errs.finish(())?;
        }
    }
    Ok(())
}

/// Why a node config loads a module the kernel may lack, for the modules a cluster
/// render adds: the option to enable.
pub(super) fn module_hint(module: &str) -> Option<&'static str> {
    match module {
        "dlm" => {
            Some("SCST cluster-mode shares persistent reservations through the DLM: CONFIG_DLM=m")
        }
        "drbd" => Some("the cluster's [[drbd]] resources: CONFIG_BLK_DEV_DRBD=m"),
        _ => None,
    }
}

/// Every program a node config of the image runs must be in the image and runnable:
/// its services, Corosync and Pacemaker when `[ha]` is on, and what `[[ha.requires]]`
/// lists (sbd, fence agents, dlm_controld: what the cluster file's fencing and
/// `cluster-mode` need). Otherwise the node would find out when it first fences.
pub fn check_node_programs(ctx: &Ctx, ar: &Archive) -> Result<()> {
    let mut nodes: Vec<(&Path, &str)> = vec![(ctx.recipe.node_config.as_path(), &ctx.node_text)];
    for ((_, text), file) in ctx.node_configs.iter().zip(&ctx.node_config_files) {
        nodes.push((file.as_path(), text));
    }
    for (file, text) in nodes {
        node_programs_present(file, text, ar, &ctx.recipe.file)?;
    }
    Ok(())
}

/// [`check_node_programs`] for one node config (`file`, `text`) against the image
/// `ar` of recipe `recipe`: every missing program reported at the node config value
/// that names it, with the Debian package to add.
pub fn node_programs_present(file: &Path, text: &str, ar: &Archive, recipe: &Path) -> Result<()> {
    use crate::config::spans::{at, Errors, Seg};
    let node = crate::config::node::NodeConfig::parse(file, text)?;
    let requires = node
        .ha
        .as_ref()
        .map(|h| h.requires.clone())
        .unwrap_or_default();
    // (where, path, what runs it, whether it must be executable: a required module
    // file such as python3-requests' `__init__.py` need not be)
    let mut wanted: Vec<(Vec<Seg>, String, String, bool)> = Vec::new();
    for (i, s) in node.services.iter().enumerate() {
        if let Some(p) = s.argv.first() {
            wanted.push((
                at!["services", i, "argv", 0].to_vec(),
                p.clone(),
                format!("service `{}`", s.name),
                true,
            ));
        }
    }
    if let Some(ha) = node.ha.as_ref().filter(|h| h.enabled) {
        for (key, argv) in [
            ("corosync", &ha.corosync),
            ("pacemaker", &ha.pacemaker),
            ("corosync-ready", &ha.corosync_ready),
            ("status", &ha.status),
        ] {
            if let Some(p) = argv.first() {
                wanted.push((
                    at!["ha", key].to_vec(),
                    p.clone(),
                    format!("[ha] {key}"),
                    true,
                ));
            }
        }
        for (i, r) in ha.requires.iter().enumerate() {
            wanted.push((
                at!["ha", "requires", i, "path"].to_vec(),
                r.path.clone(),
                r.reason.clone(),
                false,
            ));
        }
    }
    let mut errs = Errors::new(file, text);
    for (span, path, why, program) in wanted {
        let Some(problem) = program_problem(ar, &path, program) else {
            continue;
        };
        // A package's script whose interpreter is missing never reaches the image:
        // the userland stage leaves it out (and says so), hence the second hint.
        let fix = requires
            .iter()
            .find(|r| r.path == path)
            .map(|r| format!("add the Debian package `{}` to [userland] packages of {} (and, for a script, its interpreter's packages)", r.package, recipe.display()))
            .unwrap_or_else(|| format!("add the package, overlay file or [userland] links entry that provides it to {}", recipe.display()));
        errs.at(&span, format!("{why} runs {path}, which {problem}: {fix}"));
    }
    errs.finish(())?;
    Ok(())
}

/// Why `path` cannot run in the image `ar`, if it cannot: missing, not a file, not
/// executable (when it must be a `program`), or a script whose `#!` interpreter is
/// missing.
pub(super) fn program_problem(ar: &Archive, path: &str, program: bool) -> Option<String> {
    let Some(e) = ar.resolve(path) else {
        return Some("this image does not have".into());
    };
    let head: Vec<u8> = match &e.kind {
        EntryKind::File(host) => {
            use std::io::Read;
            let mut b = Vec::new();
            let _ = std::fs::File::open(host).map(|f| f.take(256).read_to_end(&mut b));
            b
        }
        EntryKind::Data(d) => d.iter().take(256).copied().collect(),
        _ => return Some("is not a file in this image".into()),
    };
    if e.mode & 0o111 == 0 {
        return program.then(|| format!("is not executable in this image (mode {:o})", e.mode));
    }
    let first = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let interp = first
        .strip_prefix(b"#!")
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .and_then(|l| l.split_whitespace().next().map(str::to_string));
    match interp {
        Some(i) if ar.resolve(&i).is_none() => Some(format!(
            "is a script for {i}, which this image does not have"
        )),
        _ => None,
    }
}

/// What a node config's `[storage]` runs must be in the image: mdadm (package `mdadm`)
/// for md arrays, lvm (package `lvm2`) for volume groups, the md modules; and a
/// state partition (`[outputs] disk` `state`) needs the kernel's ext4. The error points
/// at the `[storage]` entry and names the package to add to `[userland] packages`.
pub fn check_node_storage(ctx: &Ctx, built: &crate::stages::Built) -> Result<()> {
    use crate::config::spans::{at, Errors};
    use crate::contract::{in_image, LVM, MDADM};
    let userland = built.userland()?.root();
    let (release, loadable, builtin) = image_modules(built)?;
    let has_module = |m: &str| {
        let n = crate::config::node::norm_mod(m);
        loadable.contains(&n) || builtin.contains(&n)
    };
    let has_file = |p: &str| {
        let f = userland.join(in_image(p));
        f.exists() || f.is_symlink()
    };
    if ctx.recipe.disk().is_some_and(|d| d.state > 0) && !has_module("ext4") {
        anyhow::bail!(
            "{}: [outputs] disk has a state partition (ext4), but kernel {release} of this image has no ext4 (enable CONFIG_EXT4_FS, =m or =y), or drop `state`",
            ctx.recipe.file.display()
        );
    }
    let mut nodes: Vec<(&Path, &str)> = vec![(ctx.recipe.node_config.as_path(), &ctx.node_text)];
    for ((_, text), file) in ctx.node_configs.iter().zip(&ctx.node_config_files) {
        nodes.push((file.as_path(), text));
    }
    for (file, text) in nodes {
        let node = crate::config::node::NodeConfig::parse(file, text)?;
        let s = &node.storage;
        let mut errs = Errors::new(file, text);
        let md_at = if s.md.is_empty() {
            at!["storage", "assemble"]
        } else {
            at!["storage", "md", 0]
        };
        if s.uses_md() && !has_file(MDADM) {
            errs.at(md_at, format!("[storage] assembles md arrays with mdadm, which this image does not have ({MDADM}): add `mdadm` to the recipe's [userland] packages"));
        }
        if s.uses_md() && !has_module("md_mod") {
            errs.at(md_at, format!("[storage] assembles md arrays, but kernel {release} of this image has no md driver (enable CONFIG_BLK_DEV_MD, =m or =y)"));
        }
        for (i, m) in s.md.iter().enumerate() {
            let module = m
                .level
                .as_deref()
                .and_then(crate::config::storage::md_level_module);
            if let Some(module) = module.filter(|m| !has_module(m)) {
                errs.at(
                    at!["storage", "md", i, "level"],
                    format!(
                        "md array `{}` is {}, but kernel {release} of this image has no `{module}` module (enable its CONFIG_MD_RAID* option)",
                        m.name,
                        m.level.as_deref().unwrap_or("")
                    ),
                );
            }
        }
        if s.uses_lvm() && !has_file(LVM) {
            errs.at(at!["storage", "lvm", 0], format!("[storage] activates volume groups with lvm, which this image does not have ({LVM}): add `lvm2` to the recipe's [userland] packages"));
        }
        if s.uses_lvm() && !has_module("dm_mod") {
            errs.at(at!["storage", "lvm", 0], format!("[storage] activates volume groups, but kernel {release} of this image has no device-mapper (enable CONFIG_BLK_DEV_DM)"));
        }
        errs.finish(())?;
    }
    Ok(())
}
