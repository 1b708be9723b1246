//! Resolving, checking and writing a recipe's lock file (`recipes/NAME.lock`).
//!
//! Why it exists: a build must be repeatable from the recipe and its lock alone.
//! `resolve` pins every input the recipe names (the kernel source, each
//! `[sources.NAME]`, each userland package) by sha256 (or by the tree hash the
//! recipe gives for a source pinned by content) without downloading anything
//! but apt metadata; `check` tells whether a lock still matches its recipe and names
//! every missing, stale or extra entry. Reads: the recipe, local path sources, apt's
//! package metadata and the lock file.

use crate::config::lock::{Lock, LockedSource};
use crate::config::recipe::{Recipe, Source};
use crate::engine::cache::Cache;
use crate::engine::fetch;
use crate::engine::lock::{needed, What};
use crate::util::cmd::Log;
use anyhow::Result;
use std::path::Path;

/// Pins every input of `recipe`. Debian packages are pinned from apt's metadata (no
/// download, unless apt lists no sha256 for the package: then it is fetched into the
/// cache and hashed).
pub fn resolve(recipe: &Recipe, cache: &Cache, log: &Log) -> Result<Lock> {
    let mut sources = Vec::new();
    for n in needed(recipe)? {
        if let Some(tree) = n.tree {
            // Pinned by content: the recipe's tree hash is the pin (the content is
            // checked against it when it is fetched or imported).
            sources.push(LockedSource {
                name: n.name,
                kind: n.kind.to_string(),
                origin: n.origin,
                sha256: String::new(),
                tree: Some(tree.to_string()),
            });
            continue;
        }
        let sha256 = match (&n.what, n.sha256) {
            (_, Some(sha)) => sha.to_string(),
            (What::Source(Source::Path { path, .. }), None) => fetch::path_sha256(path)?,
            (
                What::Source(Source::Debian {
                    package, version, ..
                }),
                None,
            ) => debian_sha(cache, package, version, log)?,
            (What::Package { name, version }, None) => debian_sha(cache, name, version, log)?,
            (What::Source(Source::Url { sha256, .. }), None) => sha256.clone(),
            (What::Source(Source::UrlTree { tree, .. }), None) => tree.to_string(),
        };
        sources.push(LockedSource {
            name: n.name,
            kind: n.kind.to_string(),
            origin: n.origin,
            sha256,
            tree: None,
        });
    }
    Ok(Lock {
        version: Lock::VERSION,
        sources,
    })
}

fn debian_sha(cache: &Cache, package: &str, version: &str, log: &Log) -> Result<String> {
    match fetch::apt_sha256(package, version, log)? {
        Some(sha) => Ok(sha),
        // Known to apt but without a listed sha256: download and hash.
        None => Ok(fetch::fetch_debian(cache, package, version, None, log)?.1),
    }
}

/// Writes `lock` to the recipe's lock file atomically.
pub fn write(recipe: &Recipe, lock: &Lock) -> Result<()> {
    let path = recipe.lock_path();
    if path == recipe.file {
        anyhow::bail!(
            "recipe {}: its lock file would be the recipe itself: expected a recipe file named NAME.toml",
            recipe.file.display()
        );
    }
    write_to(&path, lock)
}

fn write_to(path: &Path, lock: &Lock) -> Result<()> {
    crate::util::fs::write_atomic(path, lock.to_toml())
}
