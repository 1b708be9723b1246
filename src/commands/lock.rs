//! `sanforge lock [RECIPE] [--update [PKG…]]`: resolve and write a recipe's lock file
//! (`recipes/NAME.lock`).
//!
//! Why it exists: a build must be repeatable from the recipe and its lock alone, and
//! changing the lock must be the only way a package version changes. Without
//! `--update`, the versions the current lock pins are kept (apt preferences) and only
//! what the recipe added or changed is resolved; `--update` moves every package to the
//! archive's current version, `--update PKG…` only those. The resolution itself is
//! [`crate::engine::lock::resolve`]; the file is written atomically.
//! Reads: the recipe, its current lock, the apt sources it names.

use crate::config::lock::Lock;
use crate::config::recipe::Recipe;
use crate::engine::apt::{roles, Role};
use crate::engine::cache::Cache;
use crate::engine::lock::{holds, Update};
use crate::util::cmd::Log;
use anyhow::Result;
use std::path::Path;

/// Pins every input of `recipe` from scratch (no versions held).
pub fn resolve(recipe: &Recipe, cache: &Cache, log: &Log) -> Result<Lock> {
    crate::engine::lock::resolve(recipe, cache, &Default::default(), log)
}

/// Resolves `recipe` against its current lock file (if any) with `update`.
pub fn relock(recipe: &Recipe, cache: &Cache, update: &Update, log: &Log) -> Result<Lock> {
    // A lock that does not parse is replaced; an old format's pins are still read.
    let previous = Lock::load(&recipe.lock_path()).ok();
    let holds = holds(recipe, previous.as_ref(), update)?;
    crate::engine::lock::resolve(recipe, cache, &holds, log)
}

/// What changed between two locks, one line per package (for the verb's report).
pub fn changes(old: Option<&Lock>, new: &Lock) -> Vec<String> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let old_pkgs = old.map(|l| &l.packages).unwrap_or(&empty);
    for p in &new.packages {
        match old_pkgs.iter().find(|o| o.name == p.name) {
            None => out.push(format!("  + {} {}", p.name, p.version)),
            Some(o) if o.version != p.version => {
                out.push(format!("  ~ {} {} -> {}", p.name, o.version, p.version))
            }
            Some(o) if o.sha256 != p.sha256 => out.push(format!(
                "  ~ {} {} (sha256 {} -> {})",
                p.name,
                p.version,
                crate::engine::short(&o.sha256),
                crate::engine::short(&p.sha256)
            )),
            Some(_) => {}
        }
    }
    for o in old_pkgs {
        if !new.packages.iter().any(|p| p.name == o.name) {
            out.push(format!("  - {} {}", o.name, o.version));
        }
    }
    out
}

/// A one-paragraph summary of a lock's closure: how many packages, which are left out.
pub fn summary(recipe: &Recipe, lock: &Lock) -> String {
    let requested: Vec<&str> = recipe
        .userland
        .packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let r = roles(&lock.packages, &requested);
    let count = |role: Role| r.values().filter(|x| **x == role).count();
    let left: Vec<&str> = lock
        .packages
        .iter()
        .filter(|p| r.get(&p.name) == Some(&Role::LeftOut))
        .map(|p| p.name.as_str())
        .collect();
    let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    let mut s = format!(
        "{}, {}: {} named by the recipe, {} from the same sources, {}",
        n(lock.sources.len(), "source", "sources"),
        n(lock.packages.len(), "package", "packages"),
        count(Role::Requested),
        count(Role::Companion),
        n(count(Role::Dependency), "dependency", "dependencies"),
    );
    if !left.is_empty() {
        s.push_str(&format!(
            "; left out (essential, the image has no dpkg): {}",
            left.join(", ")
        ));
    }
    s
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
