//! The SCST source tree: unpacked (or checked out) from the cache, and checked to
//! hold the directories the recipe's components are built from.

use crate::config::recipe::{Scst, SCST_COMPONENTS};
use crate::engine::Ctx;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Copies (tree) or unpacks (archive) the SCST source to `dest`.
pub(super) fn unpack(ctx: &Ctx, scst: &Scst, dest: &Path, log: &Log) -> Result<()> {
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
