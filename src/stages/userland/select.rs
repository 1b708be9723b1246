//! Which files of the unpacked package closure go into the image, and why.
//!
//! The rule (README, "What lands in the image"):
//! 1. The packages the recipe names, and those built from the same Debian source
//!    (`pacemaker-common` for `pacemaker`: Debian splits one program into several
//!    packages), bring every file they ship — programs, libraries, plugins, data such
//!    as Pacemaker's schemas, shell libraries such as resource-agents' `ocf-shellfuncs`
//!    — except documentation, man pages, locales, shell completions, init-system and
//!    packaging integration, development files, and `/etc` and `/var` (overlays and the
//!    node config provide configuration). `drop` removes more of them.
//! 2. `keep` adds paths (files or directories) from any package of the closure.
//! 3. Everything those files need to run comes along: ELF interpreters and `DT_NEEDED`
//!    libraries (from any package of the closure), the targets of symlinks, and the
//!    private directory of a library package whose files are in the image
//!    (`/usr/lib/<triplet>/<source>/`: kronosnet's compression and crypto plugins for
//!    `libknet1`), which is loaded with `dlopen` where the ELF closure cannot see it.
//! 4. A script's `#!` interpreter must be in the image by rules 1–2 or a recipe link;
//!    it is never pulled in from a dependency (perl or python without their libraries
//!    would not run anyway). A file of rule 1 that cannot run (interpreter or library
//!    missing) is left out and reported; a file of rule 2 that cannot run is an error.
//!
//! Every file of the closure ends up in the report with its size, its package, and
//! why it is in the image or not (`sanforge build --explain-size`).

use crate::engine::apt::Role;
use crate::image::elf::{self, Needs};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One unpacked package: its name, source, role and the in-image paths of the regular
/// files and symlinks it ships.
#[derive(Debug, Clone)]
pub struct Pkg {
    pub name: String,
    pub source: String,
    pub role: Role,
    pub files: Vec<String>,
}

/// The recipe's adjustments.
pub struct Rules<'a> {
    pub keep: &'a [String],
    pub drop: &'a [String],
    /// Packages of the closure that were left out (for messages).
    pub left_out: &'a [String],
}

/// One file of the closure in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    /// The package that ships it ("" for a path no package ships).
    pub package: String,
    /// Bytes (0 for a symlink).
    pub size: u64,
    pub kept: bool,
    pub why: String,
}

/// What goes into the image.
#[derive(Debug, Default)]
pub struct Selection {
    /// In-image paths (regular files and symlinks) to copy from the tree.
    pub paths: BTreeSet<String>,
    /// Every file of every package, kept or not, sorted by path.
    pub report: Vec<FileInfo>,
}

/// Why a file of a named package is not taken by default (rule 1), if it is not.
pub fn pruned(p: &str) -> Option<&'static str> {
    const PREFIXES: &[(&str, &str)] = &[
        ("/usr/share/doc/", "documentation"),
        ("/usr/share/doc-base/", "documentation"),
        ("/usr/share/info/", "documentation"),
        ("/usr/share/man/", "man page"),
        ("/usr/share/locale/", "locale"),
        ("/usr/lib/locale/", "locale"),
        ("/usr/share/i18n/", "locale"),
        ("/usr/share/lintian/", "packaging integration"),
        ("/usr/share/bug/", "packaging integration"),
        ("/usr/share/menu/", "packaging integration"),
        ("/usr/share/debianutils/", "packaging integration"),
        ("/usr/share/initramfs-tools/", "packaging integration"),
        ("/usr/share/apport/", "packaging integration"),
        ("/usr/share/augeas/", "packaging integration"),
        ("/usr/share/python3/runtime.d/", "packaging integration"),
        ("/usr/share/bash-completion/", "shell completion"),
        ("/usr/share/zsh/", "shell completion"),
        ("/usr/share/fish/", "shell completion"),
        ("/lib/systemd/", "init-system integration"),
        ("/usr/lib/systemd/", "init-system integration"),
        ("/usr/lib/tmpfiles.d/", "init-system integration"),
        ("/usr/lib/sysusers.d/", "init-system integration"),
        ("/lib/modules-load.d/", "init-system integration"),
        ("/usr/lib/modules-load.d/", "init-system integration"),
        ("/usr/include/", "development file"),
        ("/usr/share/pkgconfig/", "development file"),
        ("/usr/share/aclocal/", "development file"),
        ("/usr/share/gdb/", "development file"),
        ("/usr/lib/debug/", "development file"),
        ("/usr/share/icons/", "desktop file"),
        ("/usr/share/pixmaps/", "desktop file"),
        ("/usr/share/applications/", "desktop file"),
        ("/etc/", "configuration"),
        ("/var/", "state directory"),
    ];
    if let Some((_, why)) = PREFIXES.iter().find(|(pre, _)| p.starts_with(pre)) {
        return Some(why);
    }
    if p.ends_with(".a") || p.ends_with(".la") || p.contains("/pkgconfig/") {
        return Some("development file");
    }
    None
}

/// What a category means, for the report.
pub fn category_note(c: &str) -> &'static str {
    match c {
        "configuration" => "configuration under /etc: overlays and the node config provide it (`keep` takes the package's)",
        "state directory" => "state under /var: created at run time",
        "init-system integration" => "systemd/sysvinit integration: sanforge-init supervises the services",
        "packaging integration" => "dpkg/Debian integration: the image has no dpkg",
        _ => "not needed at run time",
    }
}

/// Whether `pattern` (a path, a directory, or a glob with `*` within one component
/// and `**` across components) matches in-image path `path`.
pub fn matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('*') {
        let dir = pattern.trim_end_matches('/');
        return path == dir || path.starts_with(&format!("{dir}/"));
    }
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = &p[2..];
                (0..=s.len()).any(|i| glob(rest, &s[i..]))
            }
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=s.len() {
                    if glob(rest, &s[i..]) {
                        return true;
                    }
                    if s.get(i) == Some(&b'/') {
                        break;
                    }
                }
                false
            }
            Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..]),
        }
    }
    glob(pattern.as_bytes(), path.as_bytes())
        || (!pattern.ends_with("**") && {
            // A glob naming a directory takes what is under it.
            let dir = format!("{}/**", pattern.trim_end_matches('/'));
            glob(dir.as_bytes(), path.as_bytes())
        })
}

/// What one start file needs: the files and links it brings, the kind of each file
/// (for the report) and the script interpreters that must already be in the image.
#[derive(Debug, Clone, Default)]
struct Closure {
    files: BTreeSet<String>,
    links: BTreeSet<String>,
    kinds: BTreeMap<String, &'static str>,
    interpreters: BTreeSet<String>,
}

impl Closure {
    fn merge(&mut self, o: &Closure) {
        self.files.extend(o.files.iter().cloned());
        self.links.extend(o.links.iter().cloned());
        for (k, v) in &o.kinds {
            self.kinds.entry(k.clone()).or_insert(v);
        }
        self.interpreters.extend(o.interpreters.iter().cloned());
    }
}

struct Analyzer<'a> {
    tree: &'a Path,
    memo: BTreeMap<String, std::result::Result<Closure, String>>,
    busy: BTreeSet<String>,
}

impl Analyzer<'_> {
    /// The closure of regular file `f` (real in-image path), or why it cannot run.
    fn file(&mut self, f: &str) -> Result<std::result::Result<Closure, String>> {
        if let Some(c) = self.memo.get(f) {
            return Ok(c.clone());
        }
        if !self.busy.insert(f.to_string()) {
            // A cycle among libraries: the outer call collects it.
            return Ok(Ok(Closure::default()));
        }
        let r = self.compute(f);
        self.busy.remove(f);
        let r = r?;
        self.memo.insert(f.to_string(), r.clone());
        Ok(r)
    }

    fn compute(&mut self, f: &str) -> Result<std::result::Result<Closure, String>> {
        let mut c = Closure::default();
        c.files.insert(f.to_string());
        match elf::needs(self.tree, f).with_context(|| format!("cannot inspect {f}"))? {
            Needs::Nothing => {}
            Needs::Script {
                interpreter,
                resolved,
            } => match resolved {
                None => {
                    return Ok(Err(format!(
                        "its interpreter {interpreter} is in no package of the closure"
                    )))
                }
                Some((real, links)) => {
                    c.links.extend(links);
                    c.interpreters.insert(real);
                }
            },
            Needs::Elf {
                interpreter,
                libraries,
            } => {
                let deps = interpreter
                    .into_iter()
                    .map(|(n, r)| ("program interpreter", n, r))
                    .chain(libraries.into_iter().map(|(n, r)| ("library", n, r)));
                for (kind, name, resolved) in deps {
                    let Some((real, links)) = resolved else {
                        return Ok(Err(format!(
                            "it needs {name}, which no package of the closure has"
                        )));
                    };
                    c.links.extend(links);
                    c.kinds.entry(real.clone()).or_insert(kind);
                    match self.file(&real)? {
                        Ok(sub) => c.merge(&sub),
                        Err(why) => return Ok(Err(format!("it needs {real}, and {why}"))),
                    }
                }
            }
        }
        Ok(Ok(c))
    }

    /// The closure of start path `p` (a file, or a symlink to a file or directory).
    fn start(&mut self, p: &str) -> Result<std::result::Result<Closure, String>> {
        let h = self.tree.join(p.trim_start_matches('/'));
        let meta = std::fs::symlink_metadata(&h)
            .with_context(|| format!("cannot stat {}", h.display()))?;
        if !meta.file_type().is_symlink() {
            return self.file(p);
        }
        let mut c = Closure::default();
        c.links.insert(p.to_string());
        match elf::resolve_file(self.tree, p)? {
            Some((real, links)) => {
                c.links.extend(links);
                c.kinds.entry(real.clone()).or_insert("link target");
                match self.file(&real)? {
                    Ok(sub) => c.merge(&sub),
                    Err(why) => return Ok(Err(format!("it links to {real}, and {why}"))),
                }
            }
            None if self.tree.join(p.trim_start_matches('/')).is_dir() => {}
            None => {
                let t = std::fs::read_link(&h)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Ok(Err(format!(
                    "it links to {t}, which is in no package of the closure"
                )));
            }
        }
        Ok(Ok(c))
    }
}

/// A start file: a path of rule 1 (optional: left out when it cannot run) or of
/// `keep` (mandatory).
#[derive(Debug, Clone)]
struct Start {
    mandatory: bool,
    why: String,
}

/// Every regular file and symlink under in-image directory `dir` of the tree.
fn files_under(tree: &Path, dir: &str, out: &mut Vec<String>) -> Result<()> {
    let h = tree.join(dir.trim_start_matches('/'));
    let mut names: Vec<String> = std::fs::read_dir(&h)
        .with_context(|| format!("cannot list {}", h.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", h.display()))?;
    names.sort();
    for n in names {
        let p = format!("{}/{n}", dir.trim_end_matches('/'));
        let m = std::fs::symlink_metadata(tree.join(p.trim_start_matches('/')))
            .with_context(|| format!("cannot stat {p}"))?;
        if m.is_dir() {
            files_under(tree, &p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Selects the image's files from `tree` (every unpacked package of `pkgs`, merged).
pub fn select(tree: &Path, pkgs: &[Pkg], rules: &Rules) -> Result<Selection> {
    let mut owner: Owners = BTreeMap::new();
    for p in pkgs {
        for f in &p.files {
            owner.entry(f.as_str()).or_insert(p);
        }
    }
    let (mut starts, mut dropped) = starting_files(pkgs, rules);
    add_kept(tree, rules, &mut starts, &mut dropped)?;
    let mut an = Analyzer {
        tree,
        memo: BTreeMap::new(),
        busy: BTreeSet::new(),
    };
    let mut plugins_of: BTreeSet<&str> = BTreeSet::new();
    let (image, closures) = loop {
        let closures = runnable(&mut an, &owner, &mut starts, &mut dropped)?;
        let mut image: BTreeSet<String> = BTreeSet::new();
        for (p, c) in &closures {
            image.insert(p.clone());
            image.extend(c.files.iter().cloned());
            image.extend(c.links.iter().cloned());
        }
        if !add_private_dirs(&image, &owner, &mut plugins_of, &mut starts, &dropped) {
            break (image, closures);
        }
    };
    let why = reasons(&starts, &closures);
    let report = file_report(tree, pkgs, &image, &why, &dropped);
    Ok(Selection {
        paths: image,
        report,
    })
}

/// The package that ships each file of the closure (the first, in closure order).
type Owners<'p> = BTreeMap<&'p str, &'p Pkg>;

/// Rules 1 and 2: every file of a package the recipe names (or of its companions from
/// the same source) starts the image, unless pruned or dropped by the recipe.
fn starting_files(
    pkgs: &[Pkg],
    rules: &Rules,
) -> (BTreeMap<String, Start>, BTreeMap<String, String>) {
    let companion_of = |p: &Pkg| -> String {
        let named: Vec<&str> = pkgs
            .iter()
            .filter(|o| o.role == Role::Requested && o.source == p.source)
            .map(|o| o.name.as_str())
            .collect();
        format!(
            "same source as {}, which the recipe names",
            named.join(", ")
        )
    };
    let mut starts: BTreeMap<String, Start> = BTreeMap::new();
    let mut dropped: BTreeMap<String, String> = BTreeMap::new();
    for p in pkgs {
        let why = match p.role {
            Role::Requested => "in a package the recipe names".to_string(),
            Role::Companion => companion_of(p),
            _ => continue,
        };
        for f in &p.files {
            if let Some(c) = pruned(f) {
                dropped.insert(f.clone(), c.to_string());
            } else if let Some(d) = rules.drop.iter().find(|d| matches(d, f)) {
                dropped.insert(f.clone(), format!("drop `{d}`"));
            } else {
                starts.insert(
                    f.clone(),
                    Start {
                        mandatory: false,
                        why: why.clone(),
                    },
                );
            }
        }
    }
    (starts, dropped)
}

/// The recipe's `keep` entries (a file, or every file under a directory) start the
/// image and must run; a path no package of the closure has is an error.
fn add_kept(
    tree: &Path,
    rules: &Rules,
    starts: &mut BTreeMap<String, Start>,
    dropped: &mut BTreeMap<String, String>,
) -> Result<()> {
    for k in rules.keep {
        let mut found = Vec::new();
        match elf::resolve_file(tree, k)? {
            Some(_) => found.push(k.clone()),
            None if tree.join(k.trim_start_matches('/')).is_dir() => {
                let real = match std::fs::canonicalize(tree.join(k.trim_start_matches('/'))) {
                    Ok(r) => r,
                    Err(_) => tree.join(k.trim_start_matches('/')),
                };
                let rel = real
                    .strip_prefix(std::fs::canonicalize(tree).unwrap_or(tree.to_path_buf()))
                    .map(|r| format!("/{}", r.display()))
                    .unwrap_or_else(|_| k.clone());
                files_under(tree, &rel, &mut found)?;
            }
            None => {
                let left = if rules.left_out.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (left out of the closure: {}; name one in `packages` to use its files)",
                        rules.left_out.join(", ")
                    )
                };
                bail!("keep `{k}`: no package of the closure has this path{left}");
            }
        }
        for f in found {
            dropped.remove(&f);
            starts.insert(
                f,
                Start {
                    mandatory: true,
                    why: format!("keep `{k}`"),
                },
            );
        }
    }
    Ok(())
}

/// The closures of the start files that can run: a start file that cannot (a missing
/// library, or a script whose interpreter is not in the image by itself) is dropped
/// with the reason, until nothing changes; a `keep` file that cannot run is an error.
fn runnable(
    an: &mut Analyzer<'_>,
    owner: &Owners<'_>,
    starts: &mut BTreeMap<String, Start>,
    dropped: &mut BTreeMap<String, String>,
) -> Result<BTreeMap<String, Closure>> {
    let mut closures: BTreeMap<String, Closure> = BTreeMap::new();
    let mut changed = true;
    while changed {
        changed = false;
        closures.clear();
        let paths: Vec<String> = starts.keys().cloned().collect();
        for p in &paths {
            let Some(st) = starts.get(p).cloned() else {
                continue;
            };
            match an.start(p)? {
                Ok(c) => {
                    closures.insert(p.clone(), c);
                }
                Err(why) if st.mandatory => bail!("{} ({}) cannot run: {why}", p, st.why),
                Err(why) => {
                    dropped.insert(p.clone(), format!("cannot run: {why}"));
                    starts.remove(p);
                    changed = true;
                }
            }
        }
        // Script interpreters must be in the image by themselves: a start file, or
        // the target of a start symlink.
        let present: BTreeSet<String> = closures
            .iter()
            .flat_map(|(p, c)| {
                std::iter::once(p.clone()).chain(
                    c.kinds
                        .iter()
                        .filter(|(_, k)| **k == "link target")
                        .map(|(f, _)| f.clone()),
                )
            })
            .collect();
        for (p, c) in &closures {
            let Some(missing) = c.interpreters.iter().find(|i| !present.contains(*i)) else {
                continue;
            };
            let who = owner
                .get(missing.as_str())
                .map(|o| {
                    format!(
                        " ({}, not named by the recipe: add it to `packages` to keep this file)",
                        o.name
                    )
                })
                .unwrap_or_default();
            let why = format!("cannot run: its interpreter {missing} is not in the image{who}");
            if let Some(st) = starts.get(p).filter(|st| st.mandatory) {
                bail!("{p} ({}) {why}", st.why);
            }
            dropped.insert(p.clone(), why);
            starts.remove(p);
            changed = true;
        }
    }
    Ok(closures)
}

/// Rule 3: the private directory of a library package in the image (its plugins,
/// loaded with dlopen) starts the image too. True when it added a start file.
fn add_private_dirs<'p>(
    image: &BTreeSet<String>,
    owner: &Owners<'p>,
    plugins_of: &mut BTreeSet<&'p str>,
    starts: &mut BTreeMap<String, Start>,
    dropped: &BTreeMap<String, String>,
) -> bool {
    let mut added = false;
    let contributing: Vec<&'p Pkg> = image
        .iter()
        .filter_map(|f| owner.get(f.as_str()).copied())
        .filter(|p| p.role == Role::Dependency)
        .collect();
    for p in contributing {
        if !plugins_of.insert(p.name.as_str()) {
            continue;
        }
        let dirs: Vec<String> = elf::DEFAULT_LIB_DIRS
            .iter()
            .flat_map(|d| [format!("{d}/{}/", p.source), format!("{d}/{}/", p.name)])
            .collect();
        for f in &p.files {
            if dirs.iter().any(|d| f.starts_with(d.as_str()))
                && !starts.contains_key(f)
                && !dropped.contains_key(f)
                && pruned(f).is_none()
            {
                starts.insert(
                    f.clone(),
                    Start {
                        mandatory: false,
                        why: format!(
                            "plugin of {} (its private directory, loaded with dlopen)",
                            p.name
                        ),
                    },
                );
                added = true;
            }
        }
    }
    added
}

/// Why each file is in the image: its own start reason, else the first start file
/// (in path order) that needs it.
fn reasons(
    starts: &BTreeMap<String, Start>,
    closures: &BTreeMap<String, Closure>,
) -> BTreeMap<String, String> {
    let mut why: BTreeMap<String, String> = BTreeMap::new();
    for (p, st) in starts {
        why.insert(p.clone(), st.why.clone());
    }
    for (p, c) in closures {
        for f in c.files.iter().chain(c.links.iter()) {
            if !why.contains_key(f) {
                let kind = c.kinds.get(f).copied().unwrap_or("link");
                why.insert(f.clone(), format!("{kind} of {p}"));
            }
        }
    }
    why
}

/// Every file of the closure's packages (and every other file in the image), kept or
/// not, with its size, package and why: what `build --explain-size` prints.
fn file_report(
    tree: &Path,
    pkgs: &[Pkg],
    image: &BTreeSet<String>,
    why: &BTreeMap<String, String>,
    dropped: &BTreeMap<String, String>,
) -> Vec<FileInfo> {
    let mut report = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let size_of = |p: &str| -> u64 {
        std::fs::symlink_metadata(tree.join(p.trim_start_matches('/')))
            .map(|m| {
                if m.file_type().is_symlink() {
                    0
                } else {
                    m.len()
                }
            })
            .unwrap_or(0)
    };
    for p in pkgs {
        for f in &p.files {
            if !seen.insert(f.as_str()) {
                continue;
            }
            let kept = image.contains(f);
            let reason = if kept {
                why.get(f).cloned().unwrap_or_default()
            } else {
                dropped
                    .get(f)
                    .cloned()
                    .unwrap_or_else(|| "not needed by any file in the image".to_string())
            };
            report.push(FileInfo {
                path: f.clone(),
                package: p.name.clone(),
                size: size_of(f),
                kept,
                why: reason,
            });
        }
    }
    for f in image {
        if !seen.contains(f.as_str()) {
            report.push(FileInfo {
                path: f.clone(),
                package: String::new(),
                size: size_of(f),
                kept: true,
                why: why.get(f).cloned().unwrap_or_default(),
            });
        }
    }
    report.sort_by(|a, b| a.path.cmp(&b.path));
    report
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
