//! The lock entries of a resolution: each package with its role (requested or pulled
//! in by what) and the archive it comes from.

use super::{split_names, Apt, Stanza};
use crate::config::lock::LockedPackage;
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet};

/// For each dependency clause (`a (>= 1) | b`), the package of `closure` apt chose: the
/// first alternative that is in the closure by name, else one that provides it.
pub fn chosen_depends(clauses: &[String], closure: &[(String, Vec<String>)]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for c in clauses {
        let alts = split_names(c);
        let pick = alts
            .iter()
            .find_map(|a| closure.iter().find(|(n, _)| n == a))
            .or_else(|| {
                alts.iter()
                    .find_map(|a| closure.iter().find(|(_, prov)| prov.contains(a)))
            });
        if let Some((n, _)) = pick {
            out.insert(n.clone());
        }
    }
    out.into_iter().collect()
}

/// The lock entries of the packages `apt` resolved: for each, the stanza of that exact
/// version (from every repository that lists the same file) and the dependencies apt
/// chose among the closure.
pub fn lock_entries(
    apt: &Apt,
    resolved: &[(String, String, String)],
) -> Result<Vec<LockedPackage>> {
    let names: BTreeSet<&str> = resolved.iter().map(|(n, _, _)| n.as_str()).collect();
    let stanzas = apt.stanzas(&|n| names.contains(n), false)?;
    let mut picked: Vec<(Stanza, Vec<String>)> = Vec::new();
    for (name, version, arch) in resolved {
        let mut matching = stanzas.iter().filter(|s| {
            &s.package == name
                && &s.version == version
                && (arch.is_empty() || &s.architecture == arch)
        });
        let Some(first) = matching.next() else {
            bail!("apt chose {name} {version} ({arch}), which no Packages index of the recipe's repositories lists");
        };
        let mut repos = vec![first.repository.clone()];
        for s in matching {
            if s.sha256 == first.sha256
                && s.filename == first.filename
                && !repos.contains(&s.repository)
            {
                repos.push(s.repository.clone());
            }
        }
        picked.push((first.clone(), repos));
    }
    let closure: Vec<(String, Vec<String>)> = picked
        .iter()
        .map(|(s, _)| (s.package.clone(), s.provides.clone()))
        .collect();
    let mut out = Vec::new();
    for (s, repos) in picked {
        let sha256 = s.sha256.clone().ok_or_else(|| {
            anyhow!(
                "the archive lists no SHA256 for {} {} ({}): sanforge pins every package by sha256",
                s.package,
                s.version,
                s.repository
            )
        })?;
        let mut depends = chosen_depends(&s.depends, &closure);
        depends.retain(|d| *d != s.package);
        out.push(LockedPackage {
            source: s
                .source
                .clone()
                .filter(|src| *src != s.package && !src.is_empty()),
            name: s.package,
            version: s.version,
            architecture: s.architecture,
            essential: s.essential,
            depends,
            sha256,
            size: s.size,
            filename: s.filename,
            repositories: repos,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What a package of the closure is for the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Named by the recipe: its files go into the image.
    Requested,
    /// Built from the same source as a requested package (Debian split one program
    /// into several packages: `pacemaker-common` for `pacemaker`): treated as requested.
    Companion,
    /// A dependency: unpacked; only what the image's files need is taken from it.
    Dependency,
    /// `Essential: yes` and not named by the recipe (dpkg, perl-base, coreutils, …),
    /// or pulled in only by such packages: neither downloaded nor unpacked (the image
    /// has no dpkg and runs no maintainer scripts).
    LeftOut,
}

impl Role {
    pub fn describe(self) -> &'static str {
        match self {
            Role::Requested => "named by the recipe",
            Role::Companion => "same source as a package the recipe names",
            Role::Dependency => "dependency",
            Role::LeftOut => "left out (essential, or needed only by essential packages)",
        }
    }
}

/// The role of every package of `closure` for a recipe that requests `requested`
/// (names): requested packages, then everything reachable from them through
/// `depends` without entering an essential package the recipe does not name.
pub fn roles(closure: &[LockedPackage], requested: &[&str]) -> BTreeMap<String, Role> {
    let by_name: BTreeMap<&str, &LockedPackage> =
        closure.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut queue: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|n| by_name.contains_key(n))
        .collect();
    while let Some(n) = queue.pop() {
        let Some(p) = by_name.get(n) else { continue };
        if p.essential && !requested.contains(&n) {
            continue;
        }
        if !reached.insert(n) {
            continue;
        }
        queue.extend(p.depends.iter().map(String::as_str));
    }
    let sources: BTreeSet<&str> = requested
        .iter()
        .filter_map(|n| by_name.get(n).map(|p| p.source_name()))
        .collect();
    closure
        .iter()
        .map(|p| {
            let role = if requested.contains(&p.name.as_str()) {
                Role::Requested
            } else if !reached.contains(p.name.as_str()) {
                Role::LeftOut
            } else if sources.contains(p.source_name()) {
                Role::Companion
            } else {
                Role::Dependency
            };
            (p.name.clone(), role)
        })
        .collect()
}

/// A Debian package version the recipe names directly (a `debian` source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebInfo {
    pub sha256: String,
    /// Where the archive serves it, one URL per repository that lists it.
    pub urls: Vec<String>,
}

/// Looks up exact (package, version) pairs in the indexes (the `debian` sources).
pub fn lookup(
    apt: &Apt,
    wanted: &[(String, String)],
) -> Result<BTreeMap<(String, String), DebInfo>> {
    let names: BTreeSet<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
    let stanzas = apt.stanzas(&|n| names.contains(n), false)?;
    let mut out = BTreeMap::new();
    for (name, version) in wanted {
        let matching: Vec<&Stanza> = stanzas
            .iter()
            .filter(|s| &s.package == name && &s.version == version)
            .collect();
        let Some(first) = matching.first() else {
            let mut versions: Vec<&str> = stanzas
                .iter()
                .filter(|s| &s.package == name)
                .map(|s| s.version.as_str())
                .collect();
            versions.dedup();
            bail!(
                "debian package {name}={version} is not in {}{}",
                apt.where_(),
                if versions.is_empty() {
                    format!(": no version of `{name}` is (check the name, the suite and the components)")
                } else {
                    format!(": the archive has {}", versions.join(", "))
                }
            );
        };
        let Some(sha256) = first.sha256.clone() else {
            bail!("the archive lists no SHA256 for debian package {name}={version}");
        };
        let mut urls = Vec::new();
        for s in &matching {
            if s.sha256.as_ref() == Some(&sha256) {
                let u = format!("{}/{}", s.repository, s.filename.trim_start_matches('/'));
                if !urls.contains(&u) {
                    urls.push(u);
                }
            }
        }
        out.insert((name.clone(), version.clone()), DebInfo { sha256, urls });
    }
    Ok(out)
}
