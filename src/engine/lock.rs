//! A recipe's lock (`recipes/NAME.lock`): loading it for a build and checking that it
//! still matches its recipe (every missing, stale or extra entry, and every package
//! the recipe and the lock disagree on, is named), and resolving the pins a build
//! uses when there is no usable lock.
//!
//! Resolution pins every input the recipe names: URL sources by their stated sha256,
//! local paths by their content, `debian` sources and the userland packages through
//! apt in a private state ([`super::apt`]), which also computes the package closure.
//! Versions an earlier lock pinned are held (apt preferences) unless the caller asks to
//! update them, so that changing the lock is the only way a package version changes.
//! Writing the lock is the `sanforge lock` verb ([`crate::commands::lock`]).

use super::apt::{self, Apt};
use super::cache::Cache;
use crate::config::lock::{Lock, LockedApt, LockedSource};
use crate::config::recipe::{Recipe, Source};
use crate::util::cmd::Log;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What the recipe needs locked among its sources, before any hashing.
pub(crate) struct Needed<'a> {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) origin: String,
    /// The sha256 the recipe itself states (URL sources).
    pub(crate) sha256: Option<&'a str>,
    /// The tree hash the recipe states (sources pinned by their unpacked content).
    pub(crate) tree: Option<&'a str>,
    pub(crate) source: &'a Source,
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
        source,
    }
}

/// Checks that `lock` pins exactly what `recipe` needs: every source entry present
/// with the same kind and origin (and, for URL sources, the same sha256), nothing
/// extra, and a package closure resolved from the recipe's apt sources for the
/// recipe's package list.
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
    problems.extend(package_problems(recipe, lock));
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

/// Where the recipe's packages and the lock's closure disagree, one line per package
/// (or setting).
fn package_problems(recipe: &Recipe, lock: &Lock) -> Vec<String> {
    let u = &recipe.userland;
    let mut problems = Vec::new();
    let Some(apt) = &lock.apt else {
        for p in &u.packages {
            problems.push(format!(
                "package `{}` is in the recipe but not in the lock",
                p.name
            ));
        }
        if !lock.packages.is_empty() {
            problems.push("the lock has packages but no [apt] section".to_string());
        }
        return problems;
    };
    if u.packages.is_empty() {
        problems.push(format!(
            "the lock pins {} packages but the recipe names none",
            lock.packages.len()
        ));
        return problems;
    }
    if apt.architecture != u.architecture {
        problems.push(format!(
            "architecture: the lock was resolved for {}, the recipe says {}",
            apt.architecture, u.architecture
        ));
    }
    if apt.sources != u.source_lines() {
        problems.push(format!(
            "apt sources: the lock was resolved from [{}], the recipe names [{}]",
            apt.sources.join("; "),
            u.source_lines().join("; ")
        ));
    }
    let name_of = |spec: &str| spec.split_whitespace().next().unwrap_or(spec).to_string();
    for r in &u.packages {
        let spec = r.spec();
        match apt.requested.iter().find(|s| name_of(s) == r.name) {
            None => problems.push(format!(
                "package `{}` is in the recipe but not in the lock",
                r.name
            )),
            Some(s) if *s != spec => problems.push(format!(
                "package `{}`: the recipe asks for `{spec}`, the lock was resolved for `{s}`",
                r.name
            )),
            Some(_) if lock.package(&r.name).is_none() => problems.push(format!(
                "package `{}` is in the lock's request but not in its closure",
                r.name
            )),
            Some(_) => {}
        }
    }
    for s in &apt.requested {
        let n = name_of(s);
        if u.request(&n).is_none() {
            problems.push(format!(
                "package `{n}` is in the lock but no longer in the recipe"
            ));
        }
    }
    problems
}

/// Loads the recipe's lock for a build. With `locked`, a missing or stale lock is an
/// error. Without, a missing lock gives `None`, and a stale one is ignored with a
/// warning (it would pin the wrong inputs); a lock that does not parse (or has an
/// older format) is always an error.
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

/// Which package versions a resolution may move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// None: the versions of `previous` are held (new packages get the archive's).
    Nothing,
    /// Every package: the archive's current candidates.
    All,
    /// These packages (and what apt must move with them); the others are held.
    Only(Vec<String>),
}

/// The versions of `previous` to hold for `recipe`: every package of its closure
/// (or, for a version 1 lock file at the recipe's path, its pins), except those being
/// updated and those whose request in the recipe changed.
pub fn holds(
    recipe: &Recipe,
    previous: Option<&Lock>,
    update: &Update,
) -> Result<BTreeMap<String, String>> {
    let mut holds: BTreeMap<String, String> = match previous {
        Some(l) => l
            .packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect(),
        None => Lock::v1_package_pins(&recipe.lock_path())
            .into_iter()
            .collect(),
    };
    match update {
        Update::Nothing => {}
        Update::All => holds.clear(),
        Update::Only(names) => {
            for n in names {
                if holds.remove(n).is_none() && recipe.userland.request(n).is_none() {
                    bail!(
                        "package `{n}` is neither in the lock {} nor in the recipe: expected one of the lock's packages",
                        recipe.lock_path().display()
                    );
                }
            }
        }
    }
    if let Some(apt) = previous.and_then(|l| l.apt.as_ref()) {
        for r in &recipe.userland.packages {
            if !apt.requested.contains(&r.spec()) {
                holds.remove(&r.name);
            }
        }
    }
    Ok(holds)
}

/// Resolutions made by this process, by what they depend on: `plan --kernel`,
/// `matrix` and `build --verify` build several contexts of one recipe.
static MEMO: Mutex<Vec<(String, Lock)>> = Mutex::new(Vec::new());

/// Pins every input of `recipe`: URL sources by their sha256, path sources by their
/// content, Debian sources and the package closure through apt (holding `holds`).
/// Nothing is downloaded but apt's package lists.
pub fn resolve(
    recipe: &Recipe,
    cache: &Cache,
    holds: &BTreeMap<String, String>,
    log: &Log,
) -> Result<Lock> {
    let needed = needed(recipe)?;
    let u = &recipe.userland;
    let debian: Vec<(String, String)> = needed
        .iter()
        .filter_map(|n| match n.source {
            Source::Debian {
                package, version, ..
            } => Some((package.clone(), version.clone())),
            _ => None,
        })
        .collect();
    let memo_key = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{}",
        u.source_lines(),
        u.architecture,
        u.requested(),
        debian,
        holds,
        needed
            .iter()
            .map(|n| format!("{}={}", n.name, n.origin))
            .collect::<Vec<_>>()
            .join(",")
    );
    let needs_apt = !u.packages.is_empty() || !debian.is_empty();
    if needs_apt {
        if let Some((_, l)) = MEMO
            .lock()
            .ok()
            .and_then(|m| m.iter().find(|(k, _)| *k == memo_key).cloned())
        {
            return Ok(l);
        }
    }
    let apt =
        if needs_apt {
            Some(Apt::open(cache, u, holds, log).with_context(|| {
                format!("cannot read the apt sources of {}", recipe.file.display())
            })?)
        } else {
            None
        };
    let infos = match &apt {
        Some(a) if !debian.is_empty() => apt::lookup(a, &debian)?,
        _ => BTreeMap::new(),
    };
    let sources = locked_sources(&needed, &infos)?;
    let (apt_section, packages) = match &apt {
        Some(a) if !u.packages.is_empty() => {
            crate::util::progress::step(&format!(
                "apt: resolving the {} {} of {}",
                u.packages.len(),
                if u.packages.len() == 1 {
                    "package"
                } else {
                    "packages"
                },
                recipe.file.display()
            ));
            let resolved = a.simulate(&u.packages).with_context(|| {
                format!("cannot resolve the packages of {}", recipe.file.display())
            })?;
            let mut moved = Vec::new();
            for (n, v, _) in &resolved {
                if let Some(h) = holds.get(n) {
                    if h != v {
                        moved.push(format!("`{n}` {h} (now {v})"));
                    }
                }
            }
            if !moved.is_empty() {
                bail!(
                    "cannot keep the locked version of {}: apt chose another one (the archive no longer has the locked version, or a package the recipe adds needs another); a lock keeps package versions unless asked to move them\nhint: move them with `sanforge lock {} --update {}`",
                    moved.join(", "),
                    recipe.file.display(),
                    resolved
                        .iter()
                        .filter(|(n, v, _)| holds.get(n).is_some_and(|h| h != v))
                        .map(|(n, _, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            let packages = apt::lock_entries(a, &resolved)?;
            (
                Some(LockedApt {
                    architecture: u.architecture.clone(),
                    sources: u.source_lines(),
                    requested: u.requested(),
                }),
                packages,
            )
        }
        _ => (None, Vec::new()),
    };
    let lock = Lock {
        version: Lock::VERSION,
        apt: apt_section,
        sources,
        packages,
    };
    if needs_apt {
        if let Ok(mut m) = MEMO.lock() {
            m.push((memo_key, lock.clone()));
        }
    }
    Ok(lock)
}

/// The lock entry of each needed source: its tree hash when pinned by content, else
/// the sha256 of its file (a Debian package's from apt's index, `infos`) and where
/// it is served.
fn locked_sources(
    needed: &[Needed],
    infos: &BTreeMap<(String, String), apt::DebInfo>,
) -> Result<Vec<LockedSource>> {
    let mut sources = Vec::new();
    for n in needed {
        if let Some(tree) = n.tree {
            // Pinned by content: the recipe's tree hash is the pin (the content is
            // checked against it when it is fetched or imported).
            sources.push(LockedSource {
                name: n.name.clone(),
                kind: n.kind.to_string(),
                origin: n.origin.clone(),
                sha256: String::new(),
                tree: Some(tree.to_string()),
                urls: Vec::new(),
            });
            continue;
        }
        let (sha256, urls) = match (n.source, n.sha256) {
            (_, Some(sha)) => (sha.to_string(), Vec::new()),
            (Source::Path { path, .. }, None) => (
                super::fetch::path_sha256(path).with_context(|| format!("source `{}`", n.name))?,
                Vec::new(),
            ),
            (
                Source::Debian {
                    package, version, ..
                },
                None,
            ) => {
                let info = infos
                    .get(&(package.clone(), version.clone()))
                    .with_context(|| {
                        format!("internal error: {package}={version} was not looked up")
                    })?;
                (info.sha256.clone(), info.urls.clone())
            }
            (Source::Url { sha256, .. }, None) => (sha256.clone(), Vec::new()),
            (Source::UrlTree { tree, .. }, None) => (tree.to_string(), Vec::new()),
        };
        sources.push(LockedSource {
            name: n.name.clone(),
            kind: n.kind.to_string(),
            origin: n.origin.clone(),
            sha256,
            tree: None,
            urls,
        });
    }
    Ok(sources)
}

/// The pins a build uses: the lock file when it matches the recipe; otherwise a fresh
/// resolution, holding the versions of a stale lock file. The flag tells whether the
/// pins come from the lock file.
pub fn pins_for(recipe: &Recipe, cache: &Cache, locked: bool) -> Result<(Lock, bool)> {
    if let Some(l) = load_for(recipe, locked)? {
        return Ok((l, true));
    }
    let stale = Lock::load(&recipe.lock_path()).ok();
    if stale.is_some() && !recipe.userland.packages.is_empty() {
        crate::util::progress::step(&format!(
            "resolving the packages again, keeping the versions {} pins; `sanforge lock {}` records the result",
            recipe.lock_path().display(),
            recipe.file.display()
        ));
    }
    let holds = holds(recipe, stale.as_ref(), &Update::Nothing)?;
    let lock = resolve(recipe, cache, &holds, &Log::none())?;
    if !recipe.userland.packages.is_empty() && stale.is_none() {
        crate::util::progress::step(&format!(
            "note: {} packages resolved now ({} in the closure); pin them with `sanforge lock {}`",
            recipe.userland.packages.len(),
            lock.packages.len(),
            recipe.file.display()
        ));
    }
    Ok((lock, false))
}
