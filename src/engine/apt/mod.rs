//! Debian's own resolver, run in a private, throw-away apt state.
//!
//! Why it exists: a recipe names the packages a node runs; apt computes what they
//! depend on (Depends and Pre-Depends, alternatives, virtual packages, versions), and
//! the lock pins the result. Nothing here resolves dependencies itself: it writes an
//! apt configuration into a temporary directory of the cache (`tmp/<pid>-…/`: its own
//! sources, lists, preferences, an empty dpkg status, no host `apt.conf.d`), runs
//! `apt-get update` against the recipe's repositories, asks `apt-get install
//! --simulate` for the closure of the request, and reads each package's sha256,
//! archive path and dependencies from the Packages indexes apt downloaded (and
//! verified against the signed Release file). `/etc/apt` and `/var/lib/apt` are never
//! read or written.
//!
//! The request is a throw-away metapackage (`sanforge-recipe`, built with `dpkg-deb`)
//! whose Depends are the recipe's packages with their constraints, so apt itself
//! judges `>= 3.1` and names what conflicts; exact versions are also given on the
//! command line (`name=version`) so that apt selects them. Versions held by an existing
//! lock are apt preferences (`Pin-Priority: 1001`), which apt applies only to packages
//! it installs anyway.
//!
//! Reads: the recipe's `[userland]` sources, the network (the repositories only).
//!
//! Files: this one ([`Apt`]: apt in a private state), `conf.rs` (its apt.conf,
//! sources and preferences), `parse.rs` (what apt prints), `entries.rs` (the lock
//! entries of a resolution).

use crate::config::userland::{AptSource, Constraint, PackageRequest, Userland};
use crate::engine::cache::Cache;
use crate::util::cmd::{Cmd, Log};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

mod conf;
mod entries;
mod parse;
use conf::{apt_conf, preferences, same_uri, set_mode, sources_file};
pub use entries::{chosen_depends, lock_entries, lookup, roles, DebInfo, Role};
pub use parse::parse_inst_lines;
use parse::{field, parse_missing_component, parse_stanza, split_names, unsatisfiable_message};

/// Name of the metapackage that carries the recipe's request.
pub const REQUEST_PACKAGE: &str = "sanforge-recipe";

/// A private apt state in a temporary directory of the cache (removed when dropped).
pub struct Apt {
    dir: tempfile::TempDir,
    conf: PathBuf,
    sources: Vec<AptSource>,
    log: Log,
    /// Index files (Packages) with the repository URI and suite they come from, in
    /// the recipe's source order.
    indexes: Vec<(PathBuf, String, String)>,
}

/// One stanza of a Packages index, with the fields sanforge uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub source: Option<String>,
    pub essential: bool,
    /// Depends and Pre-Depends, as written.
    pub depends: Vec<String>,
    /// Names this package provides (without versions).
    pub provides: Vec<String>,
    pub filename: String,
    pub sha256: Option<String>,
    pub size: u64,
    /// Repository URI it was read from.
    pub repository: String,
    /// The suite of that repository.
    pub suite: String,
}

impl Apt {
    /// Creates the state and runs `apt-get update` for `userland`'s sources. `holds`:
    /// versions to prefer (from an existing lock), by package name.
    pub fn open(
        cache: &Cache,
        userland: &Userland,
        holds: &BTreeMap<String, String>,
        log: &Log,
    ) -> Result<Apt> {
        let dir = cache.temp_dir()?;
        let d = dir.path();
        for sub in [
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
            "etc/trusted.gpg.d",
            "state/lists/partial",
            "cache/archives/partial",
            "log",
            "request/DEBIAN",
        ] {
            crate::util::fs::create_dir_all(&d.join(sub))?;
        }
        crate::util::fs::write(&d.join("state/status"), "")?;
        let conf = d.join("apt.conf");
        crate::util::fs::write(&conf, apt_conf(d, &userland.architecture))?;
        crate::util::fs::write(
            &d.join("etc/sources.list.d/sanforge.sources"),
            sources_file(&userland.sources),
        )?;
        crate::util::fs::write(
            &d.join("etc/preferences.d/sanforge-lock"),
            preferences(holds),
        )?;
        let mut apt = Apt {
            dir,
            conf,
            sources: userland.sources.clone(),
            log: log.clone(),
            indexes: Vec::new(),
        };
        apt.update()?;
        Ok(apt)
    }

    fn cmd(&self, program: &str) -> Cmd {
        Cmd::new(program).env("APT_CONFIG", &self.conf)
    }

    fn describe_sources(&self) -> String {
        self.sources
            .iter()
            .map(|s| format!("{} {} ({})", s.uri, s.suite, s.components.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn update(&mut self) -> Result<()> {
        crate::util::progress::step(&format!(
            "apt: reading the package lists of {}",
            self.describe_sources()
        ));
        let out = self
            .cmd("apt-get")
            .args(["update", "-q", "--error-on=any"])
            .capture(&self.log)?;
        let all = format!("{}\n{}", out.stdout, out.stderr);
        // A component the repository does not have is only a warning to apt.
        let mut missing = Vec::new();
        for l in all.lines() {
            if let Some((component, repo)) = parse_missing_component(l) {
                missing.push(self.missing_component(&component, &repo));
            }
        }
        if !missing.is_empty() {
            missing.dedup();
            bail!(
                "{}\nhint: remove it from `components` in [userland], or name a repository that has it",
                missing.join("\n")
            );
        }
        let errors: Vec<&str> = all
            .lines()
            .filter(|l| l.starts_with("E: ") || l.starts_with("Err:") || l.starts_with("  "))
            .collect();
        if !out.success || all.lines().any(|l| l.starts_with("E: ")) {
            bail!(
                "apt cannot read the package lists of {}:\n  {}\nhint: check [userland] repositories, suite and components (and that this machine reaches the repositories)",
                self.describe_sources(),
                errors.join("\n  ")
            );
        }
        self.indexes = self.index_files()?;
        Ok(())
    }

    fn missing_component(&self, component: &str, repo: &str) -> String {
        // repo: `http://deb.debian.org/debian bookworm InRelease`
        let mut parts = repo.split_whitespace();
        let apt_uri = parts.next().unwrap_or(repo);
        let suite = parts.next().unwrap_or("");
        // apt writes file:///x as file:/x: name the repository as the recipe does.
        let uri = self
            .sources
            .iter()
            .find(|s| same_uri(&s.uri, apt_uri))
            .map(|s| s.uri.as_str())
            .unwrap_or(apt_uri);
        let served = self.release_components(suite);
        let served = if served.is_empty() {
            String::new()
        } else {
            format!(" (it serves: {})", served.join(", "))
        };
        format!("component `{component}` is not served by {uri} {suite}{served}")
    }

    /// The components the Release file of `suite` lists, if apt kept it.
    fn release_components(&self, suite: &str) -> Vec<String> {
        let lists = self.dir.path().join("state/lists");
        let Ok(rd) = std::fs::read_dir(&lists) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !(n.ends_with(&format!("_dists_{suite}_InRelease"))
                || n.ends_with(&format!("_dists_{suite}_Release")))
            {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&p) {
                if let Some(c) = text.lines().find_map(|l| l.strip_prefix("Components:")) {
                    return c.split_whitespace().map(String::from).collect();
                }
            }
        }
        Vec::new()
    }

    /// The Packages index files apt keeps, with their repository and suite, in the
    /// recipe's source order.
    fn index_files(&self) -> Result<Vec<(PathBuf, String, String)>> {
        let text = self
            .cmd("apt-get")
            .args([
                "indextargets",
                "--format",
                "$(FILENAME)\t$(REPO_URI)\t$(RELEASE)",
                "Identifier: Packages",
            ])
            .output(&self.log)?;
        let mut out: Vec<(usize, PathBuf, String, String)> = Vec::new();
        for l in text.lines() {
            let mut f = l.split('\t');
            let (Some(file), Some(uri), Some(suite)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let path = PathBuf::from(file);
            // An index the repository lists as empty is not downloaded.
            if !path.is_file() {
                continue;
            }
            // Named as the recipe names it (apt writes file:///x as file:/x).
            let order = self
                .sources
                .iter()
                .position(|s| same_uri(&s.uri, uri) && s.suite == suite)
                .unwrap_or(usize::MAX);
            let uri = self
                .sources
                .get(order)
                .map(|s| s.uri.trim_end_matches('/').to_string())
                .unwrap_or_else(|| uri.trim_end_matches('/').to_string());
            out.push((order, path, uri, suite.to_string()));
        }
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(out.into_iter().map(|(_, p, u, s)| (p, u, s)).collect())
    }

    /// Every stanza whose package name `want` accepts (or, with `providers`, that
    /// provides such a name), in source order.
    pub fn stanzas(&self, want: &dyn Fn(&str) -> bool, providers: bool) -> Result<Vec<Stanza>> {
        let mut out = Vec::new();
        for (file, uri, suite) in &self.indexes {
            let text = crate::util::fs::read_to_string(file)?;
            for block in text.split("\n\n") {
                let Some(name) = block
                    .lines()
                    .find_map(|l| l.strip_prefix("Package:"))
                    .map(str::trim)
                else {
                    continue;
                };
                if !want(name) {
                    if !providers {
                        continue;
                    }
                    let provides = field(block, "Provides").unwrap_or_default();
                    if !split_names(&provides).iter().any(|p| want(p)) {
                        continue;
                    }
                }
                let mut s = parse_stanza(block);
                s.repository = uri.clone();
                s.suite = suite.clone();
                out.push(s);
            }
        }
        Ok(out)
    }

    /// Where the archive is, for messages: `bookworm (main) of http://…`.
    fn where_(&self) -> String {
        let mut suites: Vec<String> = Vec::new();
        for s in &self.sources {
            let d = format!("{} ({}) of {}", s.suite, s.components.join(", "), s.uri);
            if !suites.contains(&d) {
                suites.push(d);
            }
        }
        suites.join(", ")
    }

    /// Checks the request against the indexes before apt sees it: an unknown name or
    /// a version the archive does not have gets its own message.
    fn check_request(&self, requests: &[PackageRequest]) -> Result<()> {
        let names: BTreeSet<&str> = requests.iter().map(|r| r.name.as_str()).collect();
        let found = self.stanzas(&|n| names.contains(n), true)?;
        let mut problems = Vec::new();
        for r in requests {
            let own: Vec<&Stanza> = found.iter().filter(|s| s.package == r.name).collect();
            let provided = found.iter().any(|s| s.provides.contains(&r.name));
            if own.is_empty() && provided {
                let mut providers: Vec<&str> = found
                    .iter()
                    .filter(|s| s.provides.contains(&r.name))
                    .map(|s| s.package.as_str())
                    .collect();
                providers.sort();
                providers.dedup();
                problems.push(format!(
                    "package `{}` is a virtual package: name the one the node runs, e.g. {}",
                    r.name,
                    providers.join(", ")
                ));
                continue;
            }
            if own.is_empty() {
                problems.push(format!(
                    "package `{}` is not in {}\nhint: check the name (`apt-cache search {}` lists similar packages on a Debian machine); a package from another component needs it in `components`",
                    r.name,
                    self.where_(),
                    r.name
                ));
                continue;
            }
            if let Constraint::Exact(v) = &r.constraint {
                if !own.iter().any(|s| &s.version == v) {
                    let mut versions: Vec<&str> = own.iter().map(|s| s.version.as_str()).collect();
                    versions.dedup();
                    problems.push(format!(
                        "package `{}` has no version {v} in {}: the archive has {}",
                        r.name,
                        self.where_(),
                        if versions.is_empty() {
                            "only packages that provide it".to_string()
                        } else {
                            versions.join(", ")
                        }
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("{}", problems.join("\n"))
        }
    }

    /// The closure apt installs for `requests` on an empty system: (name, version,
    /// architecture) of every package, sorted by name.
    pub fn simulate(&self, requests: &[PackageRequest]) -> Result<Vec<(String, String, String)>> {
        self.check_request(requests)?;
        let d = self.dir.path().join("request");
        let depends: Vec<String> = requests.iter().map(PackageRequest::spec).collect();
        crate::util::fs::write(
            &d.join("DEBIAN/control"),
            format!(
                "Package: {REQUEST_PACKAGE}\nVersion: 0\nArchitecture: all\nMaintainer: sanforge <sanforge@invalid>\nDescription: the packages of a sanforge recipe\nDepends: {}\n",
                depends.join(", ")
            ),
        )?;
        set_mode(&d, 0o755)?;
        set_mode(&d.join("DEBIAN"), 0o755)?;
        let deb = self.dir.path().join("request.deb");
        Cmd::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "-b"])
            .arg(&d)
            .arg(&deb)
            .run(&self.log)
            .context("cannot build the request metapackage")?;
        let mut cmd = self
            .cmd("apt-get")
            .args(["install", "--simulate", "-q", "--no-install-recommends"])
            .arg(&deb);
        for r in requests {
            if let Constraint::Exact(v) = &r.constraint {
                cmd = cmd.arg(format!("{}={v}", r.name));
            }
        }
        let out = cmd.capture(&self.log)?;
        let all = format!("{}\n{}", out.stdout, out.stderr);
        if !out.success || all.lines().any(|l| l.starts_with("E: ")) {
            bail!("{}", unsatisfiable_message(&all));
        }
        let mut got = parse_inst_lines(&out.stdout);
        got.retain(|(n, _, _)| n != REQUEST_PACKAGE);
        got.sort();
        Ok(got)
    }
}

#[cfg(test)]
mod tests;
