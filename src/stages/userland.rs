//! The userland stage: the Debian package closure the lock pins (apt resolved it from
//! the packages the recipe names), each `.deb` unpacked with `dpkg-deb`, and the files
//! the image gets chosen by one rule ([`select`]): the named packages' own files
//! without documentation, man pages and locales, `keep`/`drop`, and what those files
//! need to run (ELF libraries, symlink targets, library plugins).
//!
//! Reads the package blobs from the cache; writes `root/` (the tree that goes into the
//! image) and `explain.tsv` (every file of the closure: size, package, kept or not and
//! why, for `sanforge build --explain-size`) into its cache entry.

pub mod select;

use crate::engine::apt::Role;
use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage};
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress::Task;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bump when the stage's code changes what it produces, to invalidate old entries.
const VERSION: &str = "userland-v3";

/// The report file in the stage's cache entry.
pub const EXPLAIN: &str = "explain.tsv";

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

    /// Every file of the closure: (kept, size, package, path, why).
    pub fn explain(&self) -> Result<Vec<select::FileInfo>> {
        let text = ufs::read_to_string(&self.dir.join(EXPLAIN))?;
        let mut out = Vec::new();
        for l in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("left-out\t"))
        {
            let f: Vec<&str> = l.splitn(5, '\t').collect();
            let [kept, size, package, path, why] = f.as_slice() else {
                continue;
            };
            out.push(select::FileInfo {
                kept: *kept == "kept",
                size: size.parse().unwrap_or(0),
                package: package.to_string(),
                path: path.to_string(),
                why: why.to_string(),
            });
        }
        Ok(out)
    }
}

impl Stage<super::Built> for Userland {
    fn name(&self) -> &'static str {
        "userland"
    }

    fn shared(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    fn inputs(&self, ctx: &Ctx) -> Vec<String> {
        ctx.inputs
            .iter()
            .filter(|i| i.name.starts_with("package:"))
            .map(|i| i.name.clone())
            .collect()
    }

    /// The resolved closure (what is unpacked, and the role of each package), keep,
    /// drop and links: nothing else (not the apt sources, not the lock's other
    /// entries).
    fn key(&self, ctx: &Ctx, _keys: &Keys) -> Result<String> {
        let u = &ctx.recipe.userland;
        let mut ub = KeyBuilder::new(VERSION);
        for p in packages(ctx) {
            let role = ctx.roles.get(&p.name).copied().unwrap_or(Role::Dependency);
            ub.add_str(
                "package",
                &format!(
                    "{} {} {} {} {:?}",
                    p.name,
                    p.version,
                    p.sha256,
                    p.source_name(),
                    role
                ),
            );
        }
        for keep in &u.keep {
            ub.add_str("keep", keep);
        }
        for d in &u.drop {
            ub.add_str("drop", d);
        }
        for (l, t) in &u.links {
            ub.add_str("link", &format!("{l} -> {t}"));
        }
        Ok(ub.finish())
    }

    fn reason(&self, _ctx: &Ctx, _earlier: &[PlanEntry]) -> String {
        "no cache entry for this package closure".to_string()
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

/// The packages of the closure that are unpacked (every one but those left out).
fn packages(ctx: &Ctx) -> Vec<&crate::config::lock::LockedPackage> {
    ctx.lock
        .iter()
        .flat_map(|l| l.packages.iter())
        .filter(|p| ctx.roles.get(&p.name) != Some(&Role::LeftOut))
        .collect()
}

fn build(ctx: &Ctx, dir: &Path, log: &Log) -> Result<()> {
    let unpacked = dir.join("unpacked");
    let tree = dir.join("tree");
    let root = dir.join("root");
    for d in [&unpacked, &tree, &root] {
        ufs::create_dir_all(d)?;
    }
    let pkgs = packages(ctx);
    let mut task = Task::start(
        &format!("userland: {} Debian packages", pkgs.len()),
        Some(pkgs.len() as u64),
        "packages",
    );
    let mut unpacked_pkgs = Vec::new();
    for p in &pkgs {
        task.set_message(&p.name);
        let deb = crate::engine::fetch::fetch_package(&ctx.cache, p)?;
        let pdir = unpacked.join(&p.name);
        Cmd::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&pdir)
            .run(log)?;
        // Each file goes where the node would see it: through the directory symlinks
        // earlier packages put in the tree, followed inside the tree (never out of it).
        let mut files = Vec::new();
        for f in list(&pdir)? {
            let src = pdir.join(f.trim_start_matches('/'));
            let dst = crate::util::paths::resolve_in_root(&tree, f.trim_start_matches('/'))
                .map_err(|m| anyhow::anyhow!("package {}: {m}", p.name))?;
            let rel = dst.strip_prefix(&tree).unwrap_or(&dst);
            let at = format!("/{}", rel.to_string_lossy());
            if std::fs::symlink_metadata(&dst).is_ok() {
                log.line(&format!(
                    "{f} of {} is already in the tree: kept the first",
                    p.name
                ));
                continue;
            }
            ufs::create_dir_all(&ufs::parent_dir(&dst))?;
            ufs::rename(&src, &dst)?;
            files.push(at);
        }
        ufs::remove_dir_all(&pdir)?;
        unpacked_pkgs.push(select::Pkg {
            name: p.name.clone(),
            source: p.source_name().to_string(),
            role: ctx.roles.get(&p.name).copied().unwrap_or(Role::Dependency),
            files,
        });
        task.inc(1);
    }
    task.finish("");
    // The recipe's links exist in the image, so kept scripts may name them as their
    // interpreter (`#!/bin/sh` with /bin/sh -> busybox).
    let links = &ctx.recipe.userland.links;
    for (link, target) in links {
        let dst = link_path(&tree, link)?;
        if std::fs::symlink_metadata(&dst).is_err() {
            ufs::create_dir_all(&ufs::parent_dir(&dst))?;
            std::os::unix::fs::symlink(target, &dst)
                .with_context(|| format!("cannot create symlink {}", dst.display()))?;
        }
    }
    let left_out: Vec<String> = ctx
        .lock
        .iter()
        .flat_map(|l| l.packages.iter())
        .filter(|p| ctx.roles.get(&p.name) == Some(&Role::LeftOut))
        .map(|p| p.name.clone())
        .collect();
    let u = &ctx.recipe.userland;
    let sel = select::select(
        &tree,
        &unpacked_pkgs,
        &select::Rules {
            keep: &u.keep,
            drop: &u.drop,
            left_out: &left_out,
        },
    )
    .context("cannot choose the image's files from the packages")?;
    let link_names: BTreeSet<String> = links
        .keys()
        .map(|l| format!("/{}", l.trim_start_matches('/')))
        .collect();
    for p in &sel.paths {
        if link_names.contains(p) {
            continue;
        }
        copy_one(&tree, &root, p)?;
    }
    for (link, target) in links {
        let dst = link_path(&root, link)?;
        ufs::create_dir_all(&ufs::parent_dir(&dst))?;
        let _ = std::fs::remove_file(&dst);
        std::os::unix::fs::symlink(target, &dst)
            .with_context(|| format!("cannot create symlink {}", dst.display()))?;
    }
    let mut report = String::from("# kept|dropped\tbytes\tpackage\tpath\twhy\n");
    for f in &sel.report {
        report.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            if f.kept { "kept" } else { "dropped" },
            f.size,
            f.package,
            f.path,
            f.why.replace(['\t', '\n'], " ")
        ));
    }
    for p in ctx.lock.iter().flat_map(|l| l.packages.iter()) {
        if left_out.contains(&p.name) {
            report.push_str(&format!(
                "left-out\t{}\t{}\t-\t{}\n",
                p.size,
                p.name,
                Role::LeftOut.describe()
            ));
        }
    }
    ufs::write(&dir.join(EXPLAIN), report)?;
    let kept = sel.report.iter().filter(|f| f.kept).count();
    log.line(&format!(
        "kept {kept} of {} files: {}",
        sel.report.len(),
        sel.paths.iter().cloned().collect::<Vec<_>>().join(" ")
    ));
    ufs::remove_dir_all(&tree)?;
    ufs::remove_dir_all(&unpacked)?;
    Ok(())
}

/// Every regular file and symlink under `dir` (in-image paths, sorted).
fn list(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in ufs::walk(dir) {
        let e = e?;
        if e.is_symlink() || !e.is_dir() {
            out.push(format!("/{}", e.rel().to_string_lossy()));
        }
    }
    Ok(out)
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

fn mib(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1}M", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.0}K", (b as f64 / 1024.0).ceil())
    }
}

/// `sanforge build --explain-size`: why the image is the size it is — the largest
/// files of the userland with their package and why each is kept, the size by
/// package, and what was dropped from the packages (by package and reason).
pub fn explain_size(built: &super::Built, out: &Path) -> Result<String> {
    let files = built.userland()?.explain()?;
    let initramfs = std::fs::metadata(out.join(crate::contract::INITRAMFS))
        .map(|m| m.len())
        .unwrap_or(0);
    let kept: Vec<&select::FileInfo> = files.iter().filter(|f| f.kept).collect();
    let kept_total: u64 = kept.iter().map(|f| f.size).sum();
    let mut s = String::new();
    s.push_str(&format!(
        "\nimage: {} compressed ({}); the userland is {} in {} files before compression (kernel modules, init and overlays come on top)\n",
        mib(initramfs),
        crate::contract::INITRAMFS,
        mib(kept_total),
        kept.len()
    ));
    let mut largest = kept.clone();
    largest.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    s.push_str("\nlargest files in the image:\n");
    s.push_str(&format!(
        "  {:>7}  {:<52} {:<22} KEPT BECAUSE\n",
        "SIZE", "FILE", "PACKAGE"
    ));
    for f in largest.iter().take(25) {
        s.push_str(&format!(
            "  {:>7}  {:<52} {:<22} {}\n",
            mib(f.size),
            f.path,
            if f.package.is_empty() {
                "-"
            } else {
                &f.package
            },
            f.why
        ));
    }
    let mut by_pkg: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for f in &kept {
        let e = by_pkg.entry(f.package.as_str()).or_default();
        e.0 += f.size;
        e.1 += 1;
    }
    let mut by_pkg: Vec<(&str, (u64, usize))> = by_pkg.into_iter().collect();
    by_pkg.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    s.push_str("\nin the image, by package:\n");
    for (p, (size, n)) in by_pkg.iter().take(25) {
        s.push_str(&format!(
            "  {:>7}  {:>5} files  {}\n",
            mib(*size),
            n,
            if p.is_empty() { "(recipe links)" } else { p }
        ));
    }
    // Dropped: by package, with the reasons that weigh most.
    let mut dropped: BTreeMap<&str, (u64, usize, BTreeMap<String, u64>)> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.kept) {
        let e = dropped.entry(f.package.as_str()).or_default();
        e.0 += f.size;
        e.1 += 1;
        let reason = if f.why.starts_with("cannot run") {
            "cannot run".to_string()
        } else {
            f.why.clone()
        };
        *e.2.entry(reason).or_default() += f.size;
    }
    let mut dropped: Vec<_> = dropped.into_iter().collect();
    dropped.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let dropped_total: u64 = dropped.iter().map(|d| d.1 .0).sum();
    s.push_str(&format!(
        "\ndropped from the unpacked packages ({} in total), by package:\n",
        mib(dropped_total)
    ));
    for (p, (size, n, reasons)) in dropped.iter().take(25) {
        let mut r: Vec<(&String, &u64)> = reasons.iter().collect();
        r.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let r: Vec<String> = r
            .iter()
            .take(3)
            .map(|(why, sz)| format!("{why} {}", mib(**sz)))
            .collect();
        s.push_str(&format!(
            "  {:>7}  {:>5} files  {:<24} {}\n",
            mib(*size),
            n,
            p,
            r.join("; ")
        ));
    }
    let cannot: Vec<&select::FileInfo> = files
        .iter()
        .filter(|f| !f.kept && f.why.starts_with("cannot run"))
        .collect();
    if !cannot.is_empty() {
        s.push_str("\nfiles of named packages left out because they cannot run here:\n");
        for f in cannot.iter().take(15) {
            s.push_str(&format!("  {}  {}: {}\n", f.path, f.package, f.why));
        }
        if cannot.len() > 15 {
            s.push_str(&format!("  … and {} more\n", cannot.len() - 15));
        }
    }
    let text = ufs::read_to_string(&built.userland()?.dir.join(EXPLAIN))?;
    let left: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(5, '\t').collect();
            (f.first() == Some(&"left-out")).then(|| {
                format!(
                    "{} ({} .deb)",
                    f.get(2).unwrap_or(&""),
                    mib(f.get(1).and_then(|x| x.parse().ok()).unwrap_or(0))
                )
            })
        })
        .collect();
    if !left.is_empty() {
        s.push_str(&format!(
            "\nleft out of the closure (essential packages the image does not need, not downloaded): {}\n",
            left.join(", ")
        ));
    }
    Ok(s)
}
