//! Resolving, checking and writing a recipe's lock file (`recipes/NAME.lock`).
//!
//! Why it exists: a build must be repeatable from the recipe and its lock alone.
//! `resolve` pins every input the recipe names (the kernel source, each
//! `[sources.NAME]`, each userland package) by sha256 without downloading anything
//! but apt metadata; `check` tells whether a lock still matches its recipe and names
//! every missing, stale or extra entry. Reads: the recipe, local path sources, apt's
//! package metadata and the lock file.

use crate::config::lock::{Lock, LockedSource};
use crate::config::recipe::{Recipe, Source, SourceSpec};
use crate::engine::cache::Cache;
use crate::stages::fetch;
use crate::util::cmd::Log;
use anyhow::{bail, Result};
use std::path::Path;

/// What the recipe needs locked, before any hashing.
struct Needed<'a> {
    name: String,
    kind: &'static str,
    origin: String,
    /// The sha256 the recipe itself states (URL sources).
    sha256: Option<&'a str>,
    what: What<'a>,
}

enum What<'a> {
    Source(&'a Source),
    Package { name: &'a str, version: &'a str },
}

fn needed(recipe: &Recipe) -> Result<Vec<Needed<'_>>> {
    // Every kernel of the matrix, whichever one is selected: one lock for the recipe.
    let mut out: Vec<Needed> = recipe
        .kernels
        .iter()
        .map(|k| needed_source(k.lock_name.clone(), &k.source, &k.spec.source))
        .collect();
    for (name, source) in &recipe.sources {
        if name == "kernel" || name.starts_with("kernel@") || name.starts_with("package:") {
            bail!(
                "{}: source name `{name}` is reserved (the lock uses `kernel`, `kernel@NAME` and `package:NAME`)",
                recipe.file.display()
            );
        }
        let spec = recipe.raw.sources.get(name).cloned().unwrap_or_default();
        out.push(needed_source(name.clone(), source, &spec));
    }
    for (name, version) in &recipe.raw.userland.packages {
        out.push(Needed {
            name: format!("package:{name}"),
            kind: "debian",
            origin: format!("{name}={version}"),
            sha256: None,
            what: What::Package { name, version },
        });
    }
    Ok(out)
}

fn needed_source<'a>(name: String, source: &'a Source, spec: &SourceSpec) -> Needed<'a> {
    let (kind, origin, sha256) = match source {
        Source::Url { mirrors, sha256 } => ("url", mirrors.join(" "), Some(sha256.as_str())),
        Source::Debian {
            package, version, ..
        } => ("debian", format!("{package}={version}"), None),
        Source::Path { path } => {
            let written = spec.path.as_deref().unwrap_or(path.as_path());
            ("path", written.display().to_string(), None)
        }
    };
    Needed {
        name,
        kind,
        origin,
        sha256,
        what: What::Source(source),
    }
}

/// Pins every input of `recipe`. Debian packages are pinned from apt's metadata (no
/// download, unless apt lists no sha256 for the package: then it is fetched into the
/// cache and hashed).
pub fn resolve(recipe: &Recipe, cache: &Cache, log: &Log) -> Result<Lock> {
    let mut sources = Vec::new();
    for n in needed(recipe)? {
        let sha256 = match (&n.what, n.sha256) {
            (_, Some(sha)) => sha.to_string(),
            (What::Source(Source::Path { path }), None) => fetch::path_sha256(path)?,
            (
                What::Source(Source::Debian {
                    package, version, ..
                }),
                None,
            ) => debian_sha(cache, package, version, log)?,
            (What::Package { name, version }, None) => debian_sha(cache, name, version, log)?,
            (What::Source(Source::Url { sha256, .. }), None) => sha256.clone(),
        };
        sources.push(LockedSource {
            name: n.name,
            kind: n.kind.to_string(),
            origin: n.origin,
            sha256,
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

/// Checks that `lock` pins exactly what `recipe` needs: every entry present with the
/// same kind and origin (and, for URL sources, the same sha256), and nothing extra.
pub fn check(recipe: &Recipe, lock: &Lock) -> Result<()> {
    let needed = needed(recipe)?;
    let mut problems = Vec::new();
    for n in &needed {
        match lock.get(&n.name) {
            None => problems.push(format!("missing entry `{}`", n.name)),
            Some(l) if l.kind != n.kind => problems.push(format!(
                "stale entry `{}`: the lock has kind {}, the recipe {}",
                n.name, l.kind, n.kind
            )),
            Some(l) if l.origin != n.origin => problems.push(format!(
                "stale entry `{}`: the lock has `{}`, the recipe `{}`",
                n.name, l.origin, n.origin
            )),
            Some(l) if n.sha256.is_some_and(|s| s != l.sha256) => problems.push(format!(
                "stale entry `{}`: the lock pins sha256 {}, the recipe says {}",
                n.name,
                l.sha256,
                n.sha256.unwrap_or_default()
            )),
            Some(_) => {}
        }
    }
    for (i, l) in lock.sources.iter().enumerate() {
        if !needed.iter().any(|n| n.name == l.name) {
            problems.push(format!(
                "extra entry `{}`: the recipe does not use it",
                l.name
            ));
        } else if lock.sources[..i].iter().any(|o| o.name == l.name) {
            problems.push(format!("duplicate entry `{}`", l.name));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "lock file {} does not match the recipe:\n  {}\nrun `sanforge lock {}` to update it",
        recipe.lock_path().display(),
        problems.join("\n  "),
        recipe.file.display()
    )
}

/// Loads the recipe's lock for a build. With `locked`, a missing or stale lock is an
/// error. Without, a missing lock gives `None`, and a stale one is ignored with a
/// warning (it would pin the wrong inputs); a lock that does not parse is always an
/// error.
pub fn load_for(recipe: &Recipe, locked: bool) -> Result<Option<Lock>> {
    let path = recipe.lock_path();
    if !path.exists() {
        if locked {
            bail!("lock file {} does not exist: `--locked` needs one; create it with `sanforge lock {}`", path.display(), recipe.file.display());
        }
        return Ok(None);
    }
    let lock = Lock::load(&path)?;
    match check(recipe, &lock) {
        Ok(()) => Ok(Some(lock)),
        Err(e) if locked => Err(e),
        Err(e) => {
            crate::util::progress::step(&format!("warning: ignoring the lock: {e:#}"));
            Ok(None)
        }
    }
}

/// Writes `lock` to the recipe's lock file atomically.
pub fn write(recipe: &Recipe, lock: &Lock) -> Result<()> {
    write_to(&recipe.lock_path(), lock)
}

fn write_to(path: &Path, lock: &Lock) -> Result<()> {
    crate::util::fs::write_atomic(path, lock.to_toml())
}
