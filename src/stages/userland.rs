//! The userland stage: Debian packages, pinned by version (and by sha256 in the lock),
//! unpacked with `dpkg-deb` and pruned to what the node runs — the files the recipe
//! keeps and the ELF closure of their shared libraries — without documentation, man
//! pages and locales.
//!
//! Reads the package blobs from the cache; writes `root/` into its cache entry.

use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage};
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress::Task;
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Paths never copied into an image when a package is kept whole.
const PRUNED: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/menu",
];

/// Bump when the stage's code changes what it produces, to invalidate old entries.
const VERSION: &str = "userland-v1";

/// The userland stage.
pub struct Userland;

/// The userland stage's cache entry.
#[derive(Debug, Clone)]
pub struct UserlandOut {
    pub dir: PathBuf,
}

impl UserlandOut {
    /// The pruned tree that goes into the image.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }
}

impl Stage<super::Built> for Userland {
    fn name(&self) -> &'static str {
        "userland"
    }

    fn inputs(&self, ctx: &Ctx) -> Vec<String> {
        ctx.inputs
            .iter()
            .filter(|i| i.name.starts_with("package:"))
            .map(|i| i.name.clone())
            .collect()
    }

    fn key(&self, ctx: &Ctx, _keys: &Keys) -> Result<String> {
        let r = &ctx.recipe;
        let mut ub = KeyBuilder::new(VERSION);
        for i in ctx.inputs.iter().filter(|i| i.name.starts_with("package:")) {
            ub.add_str("package", &format!("{} {} {}", i.name, i.origin, i.sha256));
        }
        for keep in &r.userland.keep {
            ub.add_str("keep", keep);
        }
        for (l, t) in &r.userland.links {
            ub.add_str("link", &format!("{l} -> {t}"));
        }
        Ok(ub.finish())
    }

    fn reason(&self, _ctx: &Ctx, _earlier: &[PlanEntry]) -> String {
        "no cache entry for this package set".to_string()
    }

    fn execute(&self, ctx: &Ctx, built: &mut super::Built, runner: &mut Runner) -> Result<()> {
        let key = ctx.keys.get(self.name());
        let dir = runner.cached_entry(ctx, self.name(), key, false, |dir, log| {
            build(ctx, dir, log)
        })?;
        built.userland = Some(UserlandOut { dir });
        Ok(())
    }
}

fn build(ctx: &Ctx, dir: &Path, log: &Log) -> Result<()> {
    let unpacked = dir.join("unpacked");
    let root = dir.join("root");
    ufs::create_dir_all(&unpacked)?;
    ufs::create_dir_all(&root)?;
    let pkgs = &ctx.recipe.userland.packages;
    let mut task = Task::start(
        &format!("userland: {} Debian packages", pkgs.len()),
        Some(pkgs.len() as u64),
        "packages",
    );
    for (name, version) in pkgs {
        let lname = format!("package:{name}");
        let input = ctx
            .input(&lname)
            .with_context(|| format!("package {name} is not resolved"))?;
        task.set_message(name);
        let (deb, _) = crate::engine::fetch::fetch_debian(
            &ctx.cache,
            name,
            version,
            Some(&input.sha256),
            log,
        )?;
        Cmd::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .run(log)?;
        task.inc(1);
    }
    task.finish("");
    let keep = &ctx.recipe.userland.keep;
    if keep.is_empty() {
        copy_pruned(&unpacked, &root)?;
    } else {
        // The recipe's links exist in the image, so kept scripts may name them as
        // their interpreter (`#!/bin/sh` with /bin/sh -> busybox).
        for (link, target) in &ctx.recipe.userland.links {
            let dst = link_path(&unpacked, link)?;
            if std::fs::symlink_metadata(&dst).is_err() {
                ufs::create_dir_all(&ufs::parent_dir(&dst))?;
                std::os::unix::fs::symlink(target, &dst)
                    .with_context(|| format!("cannot create symlink {}", dst.display()))?;
            }
        }
        let set = crate::image::elf::closure(&unpacked, keep)
            .context("cannot compute what the kept files need")?;
        for p in &set {
            copy_one(&unpacked, &root, p)?;
        }
        log.line(&format!(
            "kept {} files: {}",
            set.len(),
            set.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    for (link, target) in &ctx.recipe.userland.links {
        let dst = link_path(&root, link)?;
        ufs::create_dir_all(&ufs::parent_dir(&dst))?;
        let _ = std::fs::remove_file(&dst);
        std::os::unix::fs::symlink(target, &dst)
            .with_context(|| format!("cannot create symlink {}", dst.display()))?;
    }
    ufs::remove_dir_all(&unpacked)?;
    Ok(())
}

/// Where the link `link` (an in-image path) goes in the tree at `tree`: its directories'
/// symlinks followed inside the tree, so that a package's links never lead the
/// builder out of it (the recipe's link names were checked when it was loaded).
fn link_path(tree: &Path, link: &str) -> Result<PathBuf> {
    let rel = crate::util::paths::image_path(link).map_err(|m| anyhow::anyhow!("link {m}"))?;
    crate::util::paths::resolve_in_root(tree, &rel).map_err(|m| anyhow::anyhow!("link {m}"))
}

/// Copies one in-image path (and its parent directories) from `from` to `to`.
fn copy_one(from: &Path, to: &Path, path: &str) -> Result<()> {
    let rel = path.trim_start_matches('/');
    let src = from.join(rel);
    let dst = to.join(rel);
    ufs::create_dir_all(&ufs::parent_dir(&dst))?;
    let meta = std::fs::symlink_metadata(&src)
        .with_context(|| format!("cannot stat {}", src.display()))?;
    if meta.file_type().is_symlink() {
        let t = std::fs::read_link(&src)
            .with_context(|| format!("cannot read link {}", src.display()))?;
        let _ = std::fs::remove_file(&dst);
        std::os::unix::fs::symlink(t, &dst)
            .with_context(|| format!("cannot create symlink {}", dst.display()))?;
    } else if meta.is_dir() {
        ufs::create_dir_all(&dst)?;
    } else {
        ufs::copy(&src, &dst)?;
    }
    Ok(())
}

fn copy_pruned(from: &Path, to: &Path) -> Result<()> {
    let tree = ufs::walk(from).prune(|e| PRUNED.iter().any(|p| e.rel().to_string_lossy() == *p));
    for e in tree {
        let e = e?;
        if e.is_dir() {
            ufs::create_dir_all(&to.join(e.rel()))?;
        } else {
            copy_one(from, to, &e.rel().to_string_lossy())?;
        }
    }
    Ok(())
}

/// Files of the userland tree, for the manifest and checks.
pub fn files(root: &Path) -> Result<BTreeSet<String>> {
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut out = BTreeSet::new();
    for e in ufs::walk(root) {
        let e = e?;
        if !e.is_dir() {
            out.insert(format!("/{}", e.rel().to_string_lossy()));
        }
    }
    Ok(out)
}
