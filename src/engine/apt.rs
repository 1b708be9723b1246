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

use crate::config::lock::LockedPackage;
use crate::config::userland::{AptSource, Constraint, PackageRequest, Userland};
use crate::engine::cache::Cache;
use crate::util::cmd::{Cmd, Log};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// Whether two repository URIs name the same archive (apt writes `file:///x` as
/// `file:/x` and keeps a trailing slash).
fn same_uri(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        u.replacen("file:///", "file:/", 1)
            .trim_end_matches('/')
            .to_string()
    };
    norm(a) == norm(b)
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", p.display()))
}

/// The apt configuration of a private state rooted at `d` (read through `APT_CONFIG`,
/// which apt reads before anything else: the host's `apt.conf.d` is never read).
fn apt_conf(d: &Path, arch: &str) -> String {
    let p = |s: &str| d.join(s).display().to_string();
    format!(
        r#"Dir "{root}/";
Dir::State "{state}/";
Dir::State::status "{status}";
Dir::Cache "{cache}/";
Dir::Etc "{etc}/";
Dir::Etc::main "{etc}/apt.conf";
Dir::Etc::Parts "{etc}/apt.conf.d/";
Dir::Etc::Preferences "{etc}/preferences";
Dir::Etc::PreferencesParts "{etc}/preferences.d/";
Dir::Etc::SourceList "{etc}/sources.list";
Dir::Etc::SourceParts "{etc}/sources.list.d/";
Dir::Etc::Trusted "{etc}/trusted.gpg";
Dir::Etc::TrustedParts "{etc}/trusted.gpg.d/";
Dir::Log "{log}/";
APT::Architecture "{arch}";
APT::Architectures {{ "{arch}"; }};
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
Acquire::GzipIndexes "false";
Acquire::PDiffs "false";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-udeb::DefaultEnabled "false";
Acquire::IndexTargets::deb::Translations::DefaultEnabled "false";
"#,
        root = d.display(),
        state = p("state"),
        status = p("state/status"),
        cache = p("cache"),
        etc = p("etc"),
        log = p("log"),
    )
}

/// The deb822 sources file for `sources`.
fn sources_file(sources: &[AptSource]) -> String {
    let mut out = String::new();
    for s in sources {
        out.push_str(&format!(
            "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\n",
            s.uri,
            s.suite,
            s.components.join(" ")
        ));
        if s.trusted {
            out.push_str("Trusted: yes\n");
        } else if let Some(k) = &s.signed_by {
            out.push_str(&format!("Signed-By: {}\n", k.display()));
        }
        out.push('\n');
    }
    out
}

/// apt preferences that make each held version the candidate (even an older one).
fn preferences(holds: &BTreeMap<String, String>) -> String {
    holds
        .iter()
        .map(|(n, v)| format!("Package: {n}\nPin: version {v}\nPin-Priority: 1001\n\n"))
        .collect()
}

/// `W: Skipping acquire of configured file 'contrib/binary-amd64/Packages' as
/// repository 'URI SUITE InRelease' doesn't have the component 'contrib' …` →
/// (component, repository).
fn parse_missing_component(line: &str) -> Option<(String, String)> {
    let rest = line.split("as repository '").nth(1)?;
    let (repo, rest) = rest.split_once('\'')?;
    let comp = rest.split("doesn't have the component '").nth(1)?;
    let (comp, _) = comp.split_once('\'')?;
    Some((comp.to_string(), repo.to_string()))
}

/// apt's own explanation of why the request cannot be installed.
fn unsatisfiable_message(all: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    let mut in_block = false;
    for l in all.lines() {
        if l.starts_with("The following packages have unmet dependencies") {
            in_block = true;
            lines.push(l);
            continue;
        }
        if in_block {
            if l.starts_with(' ') {
                lines.push(l);
                continue;
            }
            in_block = false;
        }
        if l.starts_with("E: ") {
            lines.push(l);
        }
    }
    let text = if lines.is_empty() {
        all.trim().to_string()
    } else {
        lines.join("\n  ")
    };
    format!("apt cannot install the recipe's packages together (`{REQUEST_PACKAGE}` stands for the recipe's package list):\n  {text}\nhint: loosen or change the version constraints apt names, or update the lock's pins with `sanforge lock --update PKG`")
}

/// `Inst NAME (VERSION SUITES [ARCH])` lines of `apt-get install --simulate`.
pub fn parse_inst_lines(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("Inst ") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once(' ') else {
            continue;
        };
        let Some(open) = rest.find('(') else {
            continue;
        };
        let inner = &rest[open + 1..];
        let inner = inner.split(')').next().unwrap_or(inner);
        let version = inner.split_whitespace().next().unwrap_or("").to_string();
        let arch = inner
            .rfind('[')
            .and_then(|i| inner[i + 1..].split(']').next())
            .unwrap_or("")
            .to_string();
        if !version.is_empty() {
            out.push((name.to_string(), version, arch));
        }
    }
    out
}

/// The value of field `name` in one stanza (continuation lines joined).
fn field(block: &str, name: &str) -> Option<String> {
    let mut lines = block.lines();
    while let Some(l) = lines.next() {
        if let Some(v) = l.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
            let mut v = v.trim().to_string();
            for c in lines.by_ref() {
                if c.starts_with(' ') || c.starts_with('\t') {
                    v.push(' ');
                    v.push_str(c.trim());
                } else {
                    break;
                }
            }
            return Some(v);
        }
    }
    None
}

/// Names of a Provides-like list: `a (= 1), b:any` → [a, b].
fn split_names(list: &str) -> Vec<String> {
    list.split([',', '|'])
        .filter_map(|a| {
            let n = a.split_whitespace().next()?;
            let n = n.split(':').next().unwrap_or(n);
            (!n.is_empty()).then(|| n.to_string())
        })
        .collect()
}

fn parse_stanza(block: &str) -> Stanza {
    let f = |n: &str| field(block, n);
    let mut depends = Vec::new();
    for n in ["Pre-Depends", "Depends"] {
        if let Some(v) = f(n) {
            depends.extend(
                v.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
            );
        }
    }
    Stanza {
        package: f("Package").unwrap_or_default(),
        version: f("Version").unwrap_or_default(),
        architecture: f("Architecture").unwrap_or_default(),
        source: f("Source").map(|s| s.split_whitespace().next().unwrap_or("").to_string()),
        essential: f("Essential").as_deref() == Some("yes"),
        depends,
        provides: split_names(&f("Provides").unwrap_or_default()),
        filename: f("Filename").unwrap_or_default(),
        sha256: f("SHA256").filter(|s| crate::util::hash::is_sha256(s)),
        size: f("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
        repository: String::new(),
        suite: String::new(),
    }
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inst_lines() {
        let t = "NOTE: This is only a simulation!\nInst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []\nInst busybox-static (1:1.35.0-4+deb12u1+b1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])\nConf libc6 (2.36-9 Debian [amd64])\nInst sanforge-recipe (0 local-deb [all])\n";
        assert_eq!(
            parse_inst_lines(t),
            vec![
                ("libc6".into(), "2.36-9+deb12u14".into(), "amd64".into()),
                (
                    "busybox-static".into(),
                    "1:1.35.0-4+deb12u1+b1".into(),
                    "amd64".into()
                ),
                ("sanforge-recipe".into(), "0".into(), "all".into()),
            ]
        );
    }

    #[test]
    fn stanza_fields_and_chosen_alternatives() {
        let block = "Package: pacemaker\nSource: pacemaker (2.1.5-1)\nVersion: 2.1.5-1+deb12u1\nArchitecture: amd64\nPre-Depends: init-system-helpers (>= 1.54~)\nDepends: corosync (>= 1.99), python3:any, mawk | awk,\n libc6 (>= 2.34)\nProvides: pcmk (= 1)\nFilename: pool/main/p/pacemaker/pacemaker_2.1.5-1+deb12u1_amd64.deb\nSize: 42\nSHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nDescription: x\n more";
        let s = parse_stanza(block);
        assert_eq!(s.source.as_deref(), Some("pacemaker"));
        assert_eq!(
            s.depends,
            vec![
                "init-system-helpers (>= 1.54~)",
                "corosync (>= 1.99)",
                "python3:any",
                "mawk | awk",
                "libc6 (>= 2.34)"
            ]
        );
        assert_eq!(s.provides, vec!["pcmk"]);
        assert_eq!(s.size, 42);
        assert!(s.sha256.is_some() && !s.essential);
        let closure = vec![
            ("corosync".to_string(), vec![]),
            ("python3".to_string(), vec![]),
            ("gawk".to_string(), vec!["awk".to_string()]),
            ("libc6".to_string(), vec![]),
        ];
        assert_eq!(
            chosen_depends(&s.depends, &closure),
            vec!["corosync", "gawk", "libc6", "python3"]
        );
    }

    #[test]
    fn missing_component_is_recognised() {
        let l = "W: Skipping acquire of configured file 'contrib/binary-amd64/Packages' as repository 'file:/tmp/repo bookworm InRelease' doesn't have the component 'contrib' (component misspelt in sources.list?)";
        assert_eq!(
            parse_missing_component(l),
            Some(("contrib".into(), "file:/tmp/repo bookworm InRelease".into()))
        );
        assert_eq!(parse_missing_component("W: something else"), None);
    }

    fn pkg(name: &str, source: Option<&str>, essential: bool, depends: &[&str]) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            source: source.map(String::from),
            essential,
            depends: depends.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn roles_leave_out_essential_branches() {
        let closure = vec![
            pkg(
                "pacemaker",
                None,
                false,
                &[
                    "pacemaker-common",
                    "libc6",
                    "init-system-helpers",
                    "adduser",
                ],
            ),
            pkg("pacemaker-common", Some("pacemaker"), false, &[]),
            pkg("libc6", Some("glibc"), false, &[]),
            pkg(
                "init-system-helpers",
                None,
                true,
                &["usrmerge", "perl-base"],
            ),
            pkg("usrmerge", None, false, &["perl-base"]),
            pkg("perl-base", Some("perl"), true, &[]),
            pkg("adduser", None, false, &["passwd"]),
            pkg("passwd", Some("shadow"), false, &[]),
            pkg("bash", None, true, &["libc6"]),
        ];
        let r = roles(&closure, &["pacemaker", "bash"]);
        assert_eq!(r["pacemaker"], Role::Requested);
        assert_eq!(r["bash"], Role::Requested);
        assert_eq!(r["pacemaker-common"], Role::Companion);
        assert_eq!(r["libc6"], Role::Dependency);
        assert_eq!(r["adduser"], Role::Dependency);
        assert_eq!(r["passwd"], Role::Dependency);
        assert_eq!(r["init-system-helpers"], Role::LeftOut);
        assert_eq!(r["usrmerge"], Role::LeftOut);
        assert_eq!(r["perl-base"], Role::LeftOut);
    }

    #[test]
    fn conf_and_sources_are_private() {
        let c = apt_conf(Path::new("/c/tmp/1"), "arm64");
        assert!(c.contains("Dir::Etc::Parts \"/c/tmp/1/etc/apt.conf.d/\""));
        assert!(c.contains("Dir::State::status \"/c/tmp/1/state/status\""));
        assert!(c.contains("APT::Architecture \"arm64\""));
        // Every path apt is given lies in the private state.
        for v in c
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|v| v.starts_with('/'))
        {
            assert!(v.starts_with("/c/tmp/1/"), "{v}");
        }
        let s = sources_file(&[AptSource {
            uri: "file:///r".into(),
            suite: "bookworm".into(),
            components: vec!["main".into(), "contrib".into()],
            signed_by: None,
            trusted: true,
        }]);
        assert_eq!(
            s,
            "Types: deb\nURIs: file:///r\nSuites: bookworm\nComponents: main contrib\nTrusted: yes\n\n"
        );
        let mut holds = BTreeMap::new();
        holds.insert("libqb100".to_string(), "2.0.6-2".to_string());
        assert_eq!(
            preferences(&holds),
            "Package: libqb100\nPin: version 2.0.6-2\nPin-Priority: 1001\n\n"
        );
    }
}
