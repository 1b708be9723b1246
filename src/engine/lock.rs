//! Loading a recipe's lock file for a build (`recipes/NAME.lock`) and checking that
//! it still matches its recipe: every missing, stale or extra entry is named.
//! Writing and resolving a lock is the `sanforge lock` verb ([`crate::commands::lock`]).

use crate::config::lock::Lock;
use crate::config::recipe::{Recipe, Source};
use anyhow::{bail, Result};

/// What the recipe needs locked, before any hashing.
pub(crate) struct Needed<'a> {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) origin: String,
    /// The sha256 the recipe itself states (URL sources).
    pub(crate) sha256: Option<&'a str>,
    /// The tree hash the recipe states (sources pinned by their unpacked content).
    pub(crate) tree: Option<&'a str>,
    pub(crate) what: What<'a>,
}

pub(crate) enum What<'a> {
    Source(&'a Source),
    Package { name: &'a str, version: &'a str },
}

pub(crate) fn needed(recipe: &Recipe) -> Result<Vec<Needed<'_>>> {
    // Every kernel of the matrix, whichever one is selected: one lock for the recipe.
    let mut out: Vec<Needed> = recipe
        .kernels
        .iter()
        .map(|k| needed_source(k.lock_name.clone(), &k.source))
        .collect();
    for (name, source) in &recipe.sources {
        if name == "kernel" || name.starts_with("kernel@") || name.starts_with("package:") {
            bail!(
                "{}: source name `{name}` is reserved (the lock uses `kernel`, `kernel@NAME` and `package:NAME`)",
                recipe.file.display()
            );
        }
        out.push(needed_source(name.clone(), source));
    }
    for (name, version) in &recipe.userland.packages {
        out.push(Needed {
            name: format!("package:{name}"),
            kind: "debian",
            origin: format!("{name}={version}"),
            sha256: None,
            tree: None,
            what: What::Package { name, version },
        });
    }
    Ok(out)
}

fn needed_source(name: String, source: &Source) -> Needed<'_> {
    let (kind, origin, sha256) = match source {
        Source::Url { mirrors, sha256 } => ("url", mirrors.join(" "), Some(sha256.as_str())),
        Source::UrlTree { mirrors, .. } => ("url", mirrors.join(" "), None),
        Source::Debian {
            package, version, ..
        } => ("debian", format!("{package}={version}"), None),
        Source::Path { written, .. } => ("path", written.display().to_string(), None),
    };
    Needed {
        name,
        kind,
        origin,
        sha256,
        tree: source.tree().map(|t| t.as_str()),
        what: What::Source(source),
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
                if l.sha256.is_empty() {
                    l.pin()
                } else {
                    &l.sha256
                },
                n.sha256.unwrap_or_default()
            )),
            Some(l) if n.tree != l.tree.as_deref() => problems.push(format!(
                "stale entry `{}`: the lock pins {}, the recipe {}",
                n.name,
                l.pin(),
                n.tree
                    .map_or("no tree".to_string(), |t| format!("tree {t}"))
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
