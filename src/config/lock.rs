//! The lock file (`recipes/NAME.lock`): every resolved input of a recipe pinned by
//! sha256 (or, for a source pinned by its unpacked content, by its tree hash).
//! Written by `sanforge lock`; `build --locked` refuses a missing or stale lock.
//!
//! Version 2 holds three parts:
//! - `[apt]`: what the Debian packages were resolved from (architecture, the apt
//!   sources) and the recipe's package list as it was then (`requested`), so that a
//!   change to either is noticed;
//! - `[[source]]`: the kernel and each named source (URL, Debian package, local path);
//! - `[[package]]`: the closure apt resolved for the requested packages, each with its
//!   exact version, the `.deb`'s sha256 and where the archive serves it.
//!
//! Version 1 (packages pinned one by one, without their dependencies) is refused with
//! a hint; `sanforge lock` reads its versions as the starting point of a new lock.

use super::spans::{at, Errors};
use super::{parse_toml, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    pub version: u32,
    /// What the packages were resolved from (absent when the recipe has no packages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apt: Option<LockedApt>,
    #[serde(default, rename = "source")]
    pub sources: Vec<LockedSource>,
    /// The resolved package closure, sorted by name.
    #[serde(default, rename = "package", skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<LockedPackage>,
}

/// `[apt]`: the settings a resolution depends on, as they were when it was made.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedApt {
    pub architecture: String,
    /// One sources.list line per suite, e.g. `deb http://deb.debian.org/debian bookworm main`.
    pub sources: Vec<String>,
    /// The recipe's packages in Debian's dependency syntax (`corosync`, `libqb100 (>= 2.0)`),
    /// sorted.
    pub requested: Vec<String>,
}

/// One pinned input. `name` is `kernel`, `kernel@NAME` or the recipe's source name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedSource {
    pub name: String,
    /// `url`, `debian` or `path`.
    pub kind: String,
    /// What the recipe said (URL list, `package=version`, or path) — compared to find
    /// a stale entry.
    pub origin: String,
    /// The file's sha256; empty (and not written) for a source pinned by `tree`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The tree hash (`tree-v1:…`) of a source pinned by its unpacked content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// Debian sources: where the archive serves the `.deb` (one URL per repository
    /// that lists it), so that a locked build needs no apt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// One package of the resolved closure.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The Debian source package, when it differs from `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `Essential: yes` in the archive (dpkg, perl-base, coreutils, …).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    /// The packages of the closure it depends on (Depends and Pre-Depends, with the
    /// alternative apt chose), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends: Vec<String>,
    pub sha256: String,
    pub size: u64,
    /// The `.deb`'s path in the archive (`pool/main/c/corosync/corosync_…_amd64.deb`).
    pub filename: String,
    /// The archives (repository URIs) that list this exact file, in recipe order.
    pub repositories: Vec<String>,
}

impl LockedPackage {
    /// The source package (the package's own name when the archive gives none).
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.name)
    }

    /// Every URL the `.deb` can be downloaded from.
    pub fn urls(&self) -> Vec<String> {
        self.repositories
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r.trim_end_matches('/'),
                    self.filename.trim_start_matches('/')
                )
            })
            .collect()
    }
}

impl LockedSource {
    /// What pins the input: its tree hash, else its sha256.
    pub fn pin(&self) -> &str {
        self.tree.as_deref().unwrap_or(&self.sha256)
    }
}

impl Lock {
    pub const VERSION: u32 = 2;

    pub fn load(file: &Path) -> anyhow::Result<Lock> {
        let text = crate::util::fs::read_to_string(file)?;
        Ok(Self::parse(file, &text)?)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Lock, ConfigError> {
        let lock: Lock = parse_toml(file, text)?;
        if lock.version == 1 {
            return Err(Errors::new(file, text).error(
                at!["version"],
                "lock version 1 is not supported: it pins packages one by one, without their dependencies; this sanforge resolves the whole closure with apt (lock version 2)\nhint: run `sanforge lock` on the recipe to rewrite it (the versions it pins are kept where the archive still has them)",
            ));
        }
        if lock.version != Self::VERSION {
            return Err(Errors::new(file, text).error(
                at!["version"],
                format!(
                    "lock version {} is not supported: expected {}",
                    lock.version,
                    Self::VERSION
                ),
            ));
        }
        Ok(lock)
    }

    /// The versions a version 1 lock pinned (`package:NAME` entries), as (name,
    /// version): `sanforge lock` starts from them when it replaces such a lock.
    pub fn v1_package_pins(file: &Path) -> Vec<(String, String)> {
        #[derive(Deserialize)]
        struct V1 {
            version: u32,
            #[serde(default, rename = "source")]
            sources: Vec<LockedSource>,
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            return Vec::new();
        };
        match toml::from_str::<V1>(&text) {
            Ok(v1) if v1.version == 1 => v1
                .sources
                .iter()
                .filter_map(|s| {
                    let name = s.name.strip_prefix("package:")?;
                    let (_, version) = s.origin.split_once('=')?;
                    Some((name.to_string(), version.to_string()))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&LockedSource> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn package(&self, name: &str) -> Option<&LockedPackage> {
        self.packages.iter().find(|p| p.name == name)
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("# Written by `sanforge lock`. Every input of the recipe pinned by sha256, and the\n# package closure apt resolved. `sanforge build --locked` refuses to build when this\n# file is missing or stale; `sanforge lock --update [PKG…]` moves packages forward.\n{body}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_refuses_version_1() {
        let lock = Lock {
            version: Lock::VERSION,
            apt: Some(LockedApt {
                architecture: "amd64".into(),
                sources: vec!["deb http://deb.debian.org/debian bookworm main".into()],
                requested: vec!["corosync".into()],
            }),
            sources: vec![LockedSource {
                name: "kernel".into(),
                kind: "debian".into(),
                origin: "linux-source-6.1=6.1.192-2".into(),
                sha256: "a".repeat(64),
                urls: vec!["http://x/pool/l.deb".into()],
                tree: None,
            }],
            packages: vec![LockedPackage {
                name: "libqb100".into(),
                version: "2.0.6-2".into(),
                architecture: "amd64".into(),
                source: Some("libqb".into()),
                essential: false,
                depends: vec!["libc6".into()],
                sha256: "b".repeat(64),
                size: 10,
                filename: "pool/main/libq/libqb/libqb100_2.0.6-2_amd64.deb".into(),
                repositories: vec!["http://deb.debian.org/debian/".into()],
            }],
        };
        let text = lock.to_toml();
        let back = Lock::parse(Path::new("x.lock"), &text).unwrap();
        assert_eq!(back, lock);
        assert_eq!(
            back.packages[0].urls(),
            vec!["http://deb.debian.org/debian/pool/main/libq/libqb/libqb100_2.0.6-2_amd64.deb"]
        );
        let e = Lock::parse(Path::new("x.lock"), "version = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lock version 1") && e.contains("sanforge lock"),
            "{e}"
        );
    }

    #[test]
    fn an_unsupported_version_is_located() {
        let t = "# comment\nversion = 7\n";
        let e = Lock::parse(Path::new("r.lock"), t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.lock:2:11: lock version 7 is not supported: expected 2"
        );
    }

    #[test]
    fn version_1_pins_are_read_for_migration() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.lock");
        std::fs::write(
            &f,
            "version = 1\n[[source]]\nname = \"package:bash\"\nkind = \"debian\"\norigin = \"bash=5.2-1\"\nsha256 = \"x\"\n[[source]]\nname = \"kernel\"\nkind = \"url\"\norigin = \"u\"\nsha256 = \"y\"\n",
        )
        .unwrap();
        assert_eq!(
            Lock::v1_package_pins(&f),
            vec![("bash".to_string(), "5.2-1".to_string())]
        );
    }
}
