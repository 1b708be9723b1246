//! ELF dependency closure, used to prune an unpacked Debian userland to what the node
//! actually runs.
//!
//! Given a root directory (the unpacked packages) and the programs the image must run,
//! [`closure`] computes every in-image path they need: the programs, their `#!` or ELF
//! interpreters, and recursively every `DT_NEEDED` library, resolved the way the dynamic
//! loader would inside the image (RPATH/RUNPATH with `$ORIGIN`, then the default
//! directories). Every symlink met on the way (`/lib64`, `libfoo.so.1 -> libfoo.so.1.2.3`)
//! is part of the result, so copying exactly the result reproduces working paths.
//! Symlinks are resolved inside the root, never on the host. Nothing is executed (no
//! `ldd`): ELF files are read with goblin.
//!
//! Not modelled: `ld.so.cache`/`ld.so.conf`, `LD_LIBRARY_PATH`, `$LIB`/`$PLATFORM`,
//! inheritance of a loader's RPATH by its libraries, `dlopen()`ed modules (NSS, PAM, ...:
//! those must be listed as start files), and `#!/usr/bin/env prog` (only `env` is found).

use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Library directories searched after RPATH/RUNPATH, in order.
pub const DEFAULT_LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/lib",
    "/usr/lib",
];

/// Maximum symlinks followed while resolving one path (as Linux: ELOOP after 40).
const MAX_SYMLINKS: usize = 40;

/// What the dynamic loader needs to know about one ELF file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElfInfo {
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`; None for static binaries and
    /// most shared libraries (libc.so.6, being runnable, has one).
    pub interpreter: Option<String>,
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` directories (colon lists split), unexpanded.
    pub runpath: Vec<String>,
    /// `DT_RPATH` directories (colon lists split), unexpanded.
    pub rpath: Vec<String>,
    pub is_64: bool,
    /// `e_machine` (62 = x86-64).
    pub machine: u16,
}

/// What a file is, as far as the closure cares.
enum Kind {
    Elf(ElfInfo),
    /// A `#!` script and its interpreter path.
    Script(String),
    Other,
}

fn inspect(path: &Path) -> Result<Kind> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = Vec::with_capacity(4);
    (&mut f)
        .take(4)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(after) = head.strip_prefix(b"#!") {
        let mut line = Vec::new();
        f.take(254)
            .read_to_end(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut all = after.to_vec();
        all.extend_from_slice(&line);
        let first = all.split(|b| *b == b'\n').next().unwrap_or_default();
        let text = String::from_utf8_lossy(first);
        return Ok(match text.split_whitespace().next() {
            Some(interp) => Kind::Script(interp.to_string()),
            None => Kind::Other,
        });
    }
    if head.as_slice() != b"\x7fELF" {
        return Ok(Kind::Other);
    }
    let bytes = crate::util::fs::read(path)?;
    let elf = goblin::elf::Elf::parse(&bytes)
        .with_context(|| format!("cannot parse ELF file {}", path.display()))?;
    let split = |v: &[&str]| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    Ok(Kind::Elf(ElfInfo {
        interpreter: elf.interpreter.map(String::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        runpath: split(&elf.runpaths),
        rpath: split(&elf.rpaths),
        is_64: elf.is_64,
        machine: elf.header.e_machine,
    }))
}

/// The interpreter and dynamic dependencies of the ELF file at host path `path`; None
/// when the file is not ELF.
pub fn needed(path: &Path) -> Result<Option<ElfInfo>> {
    Ok(match inspect(path)? {
        Kind::Elf(info) => Some(info),
        _ => None,
    })
}

/// The host path of in-image absolute path `p`.
fn host(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// Resolves in-image path `path` inside `root`, following every symlink (of the file
/// and of its directories) inside the root. Returns the final in-image path and the
/// symlinks met, or None when the path (or a link target) does not exist.
fn resolve(root: &Path, path: &str) -> Result<Option<(String, Vec<String>)>> {
    let mut pending: VecDeque<String> = path.split('/').map(String::from).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = Vec::new();
    while let Some(c) = pending.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        resolved.push(c);
        let cur = format!("/{}", resolved.join("/"));
        let h = host(root, &cur);
        let meta = match std::fs::symlink_metadata(&h) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", h.display())),
        };
        if meta.file_type().is_symlink() {
            if links.len() >= MAX_SYMLINKS {
                bail!(
                    "cannot resolve {path} in {}: too many levels of symbolic links",
                    root.display()
                );
            }
            let target = std::fs::read_link(&h)
                .with_context(|| format!("cannot read link {}", h.display()))?;
            let target = target.to_string_lossy().into_owned();
            links.push(cur);
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            for (i, t) in target.split('/').enumerate() {
                pending.insert(i, t.to_string());
            }
        }
    }
    Ok(Some((format!("/{}", resolved.join("/")), links)))
}

/// The in-image directory holding in-image path `p`.
fn dir_of(p: &str) -> &str {
    match p.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// Expands `$ORIGIN` / `${ORIGIN}` in a RPATH/RUNPATH entry.
fn expand_origin(dir: &str, origin: &str) -> String {
    dir.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
}

/// Finds library `name` needed by in-image file `by` (whose ELF data is `info`). Returns
/// the resolved path and the symlinks on the way, or None.
fn find_library(
    root: &Path,
    name: &str,
    by: &str,
    info: &ElfInfo,
) -> Result<Option<(String, Vec<String>)>> {
    let origin = dir_of(by);
    let mut dirs: Vec<String> = Vec::new();
    // DT_RPATH is ignored when DT_RUNPATH is present (as ld.so does).
    if info.runpath.is_empty() {
        dirs.extend(info.rpath.iter().map(|d| expand_origin(d, origin)));
    }
    dirs.extend(info.runpath.iter().map(|d| expand_origin(d, origin)));
    dirs.extend(DEFAULT_LIB_DIRS.iter().map(|d| d.to_string()));
    let candidates: Vec<String> = if name.contains('/') {
        vec![name.to_string()]
    } else {
        dirs.iter()
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{name}", d.trim_end_matches('/')))
            .collect()
    };
    for cand in candidates {
        let Some((real, links)) = resolve(root, &cand)? else {
            continue;
        };
        let h = host(root, &real);
        let meta = std::fs::metadata(&h).with_context(|| format!("cannot stat {}", h.display()))?;
        if !meta.is_file() {
            continue;
        }
        // Skip libraries of another class or machine, as the loader does.
        if let Kind::Elf(lib) = inspect(&h)? {
            if lib.is_64 != info.is_64 || lib.machine != info.machine {
                continue;
            }
        }
        return Ok(Some((real, links)));
    }
    Ok(None)
}

/// Every in-image path needed to run `start` (absolute in-image paths, e.g.
/// `/usr/sbin/targetcli`) from the tree at `root`: the start files, their script or ELF
/// interpreters, every `DT_NEEDED` library recursively, and every symlink met while
/// resolving any of these (including directory links such as `/lib64 -> usr/lib64`).
/// Each path is a regular file or a symlink of the tree; a path reached through a
/// directory symlink appears under its resolved name, and parent directories are
/// implied. A missing start file, interpreter or library is an error naming it and the
/// file that needs it.
pub fn closure(root: &Path, start: &[String]) -> Result<BTreeSet<String>> {
    let mut c = Closure {
        root,
        out: BTreeSet::new(),
        queue: VecDeque::new(),
    };
    for s in start {
        c.add_start(s)?;
    }
    let mut processed = BTreeSet::new();
    while let Some(file) = c.queue.pop_front() {
        if !processed.insert(file.clone()) {
            continue;
        }
        let h = host(root, &file);
        let meta = std::fs::metadata(&h).with_context(|| format!("cannot stat {}", h.display()))?;
        if !meta.is_file() {
            bail!("{file} in {} is not a regular file", root.display());
        }
        match inspect(&h)? {
            Kind::Other => {}
            Kind::Script(interp) => c.add(&interp, || format!("interpreter {interp} of {file}"))?,
            Kind::Elf(info) => {
                if let Some(interp) = &info.interpreter {
                    c.add(interp, || format!("interpreter {interp} of {file}"))?;
                }
                for lib in &info.needed {
                    let Some((real, links)) = find_library(root, lib, &file, &info)? else {
                        bail!(
                            "cannot find library {lib} needed by {file} in {} (searched RPATH/RUNPATH and {})",
                            root.display(),
                            DEFAULT_LIB_DIRS.join(", ")
                        );
                    };
                    c.record(real, links);
                }
            }
        }
    }
    Ok(c.out)
}

/// A path resolved inside a root: the final in-image path and the symlinks met.
pub type Resolved = (String, Vec<String>);

/// What one file of a tree needs to run, each dependency resolved inside the tree
/// (`None`: not found there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Needs {
    /// Not ELF and not a `#!` script (data, a shell library that is sourced).
    Nothing,
    /// A `#!` script: its interpreter as written and where it resolves.
    Script {
        interpreter: String,
        resolved: Option<Resolved>,
    },
    /// An ELF file: its `PT_INTERP` and its `DT_NEEDED` libraries, each as written
    /// and where it resolves (searched as the dynamic loader would).
    Elf {
        interpreter: Option<(String, Option<Resolved>)>,
        libraries: Vec<(String, Option<Resolved>)>,
    },
}

/// What in-image file `file` (a regular file of the tree at `root`) needs to run.
/// Nothing is pulled in: the caller decides what to do with each dependency (see
/// [`closure`] for the whole-closure variant).
pub fn needs(root: &Path, file: &str) -> Result<Needs> {
    let h = host(root, file);
    Ok(match inspect(&h)? {
        Kind::Other => Needs::Nothing,
        Kind::Script(interp) => Needs::Script {
            resolved: if interp.starts_with('/') {
                resolve_file(root, &interp)?
            } else {
                None
            },
            interpreter: interp,
        },
        Kind::Elf(info) => {
            let interpreter = match &info.interpreter {
                Some(i) => Some((i.clone(), resolve_file(root, i)?)),
                None => None,
            };
            let mut libraries = Vec::new();
            for lib in &info.needed {
                libraries.push((lib.clone(), find_library(root, lib, file, &info)?));
            }
            Needs::Elf {
                interpreter,
                libraries,
            }
        }
    })
}

/// Resolves in-image path `p` inside `root` (every symlink followed inside the root)
/// to a regular file; `None` when it does not exist or is not a file.
pub fn resolve_file(root: &Path, p: &str) -> Result<Option<Resolved>> {
    match resolve(root, p)? {
        Some((real, links)) if host(root, &real).is_file() => Ok(Some((real, links))),
        _ => Ok(None),
    }
}

struct Closure<'a> {
    root: &'a Path,
    out: BTreeSet<String>,
    queue: VecDeque<String>,
}

impl Closure<'_> {
    /// Resolves in-image path `p` (described by `what` in errors) and records it.
    fn add(&mut self, p: &str, what: impl Fn() -> String) -> Result<()> {
        if !p.starts_with('/') {
            bail!("{} is not an absolute path", what());
        }
        let Some((real, links)) = resolve(self.root, p)? else {
            bail!("cannot find {} in {}", what(), self.root.display());
        };
        self.record(real, links);
        Ok(())
    }

    /// A start path: a file, or a directory whose every file (recursively, sorted) is
    /// kept, e.g. `/usr/share/pacemaker` (schemas) or `/usr/lib/ocf/lib/heartbeat`.
    fn add_start(&mut self, p: &str) -> Result<()> {
        let Some((real, links)) = resolve(self.root, p)? else {
            bail!("cannot find start file {p} in {}", self.root.display());
        };
        let h = host(self.root, &real);
        let is_dir = std::fs::symlink_metadata(&h)
            .with_context(|| format!("cannot stat {}", h.display()))?
            .is_dir();
        if !is_dir {
            return self.add(p, || format!("start file {p}"));
        }
        self.out.extend(links);
        // The walk goes into subdirectories itself; links are resolved in the image.
        for entry in crate::util::fs::walk(&h) {
            let entry = entry?;
            let e = format!(
                "{}/{}",
                real.trim_end_matches('/'),
                entry.rel().to_string_lossy()
            );
            if entry.is_dir() {
                continue;
            } else if entry.is_symlink() {
                // A dangling link in a kept directory is kept as it is.
                match resolve(self.root, &e)? {
                    Some((real, links)) if host(self.root, &real).is_dir() => {
                        self.out.extend(links);
                        self.add_start(&real)?;
                    }
                    Some((real, links)) => self.record(real, links),
                    None => {
                        self.out.insert(e);
                    }
                }
            } else {
                self.add(&e, || format!("{e} (in kept directory {p})"))?;
            }
        }
        Ok(())
    }

    /// Records the links and the real file; queues the file when new.
    fn record(&mut self, real: String, links: Vec<String>) {
        self.out.extend(links);
        if self.out.insert(real.clone()) {
            self.queue.push_back(real);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(runpath: &[&str], rpath: &[&str]) -> ElfInfo {
        ElfInfo {
            runpath: runpath.iter().map(|s| s.to_string()).collect(),
            rpath: rpath.iter().map(|s| s.to_string()).collect(),
            is_64: true,
            machine: 62,
            ..ElfInfo::default()
        }
    }

    fn put(root: &Path, p: &str, content: &[u8]) {
        let h = host(root, p);
        std::fs::create_dir_all(h.parent().unwrap()).unwrap();
        std::fs::write(h, content).unwrap();
    }

    #[test]
    fn runpath_with_origin_comes_before_default_dirs() {
        let t = tempfile::tempdir().unwrap();
        put(t.path(), "/opt/app/bin/prog", b"prog");
        put(t.path(), "/opt/app/private/libx.so.1", b"private");
        put(t.path(), "/usr/lib/x86_64-linux-gnu/libx.so.1", b"system");
        let by = "/opt/app/bin/prog";
        let found = find_library(
            t.path(),
            "libx.so.1",
            by,
            &info(&["$ORIGIN/../private"], &[]),
        )
        .unwrap();
        assert_eq!(
            found,
            Some(("/opt/app/private/libx.so.1".to_string(), vec![]))
        );
        let found = find_library(
            t.path(),
            "libx.so.1",
            by,
            &info(&["${ORIGIN}/../private"], &[]),
        )
        .unwrap();
        assert_eq!(found.unwrap().0, "/opt/app/private/libx.so.1");
        // RPATH is used without RUNPATH, ignored with it
        let found =
            find_library(t.path(), "libx.so.1", by, &info(&[], &["/opt/app/private"])).unwrap();
        assert_eq!(found.unwrap().0, "/opt/app/private/libx.so.1");
        let found = find_library(
            t.path(),
            "libx.so.1",
            by,
            &info(&["/nowhere"], &["/opt/app/private"]),
        )
        .unwrap();
        assert_eq!(found.unwrap().0, "/usr/lib/x86_64-linux-gnu/libx.so.1");
        assert_eq!(
            find_library(t.path(), "liby.so.1", by, &info(&[], &[])).unwrap(),
            None
        );
    }

    #[test]
    fn libraries_of_another_machine_are_skipped() {
        let t = tempfile::tempdir().unwrap();
        let libc = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        put(t.path(), "/lib/x86_64-linux-gnu/libc.so.6", &libc);
        let mut arm = info(&[], &[]);
        arm.machine = 183; // aarch64
        assert_eq!(
            find_library(t.path(), "libc.so.6", "/bin/x", &arm).unwrap(),
            None
        );
        let found = find_library(t.path(), "libc.so.6", "/bin/x", &info(&[], &[])).unwrap();
        assert_eq!(found.unwrap().0, "/lib/x86_64-linux-gnu/libc.so.6");
    }

    #[test]
    fn a_kept_directory_keeps_every_file_under_it() {
        let t = tempfile::tempdir().unwrap();
        put(t.path(), "/usr/share/pm/a.rng", b"a");
        put(t.path(), "/usr/share/pm/sub/b.xsl", b"b");
        put(t.path(), "/usr/share/other", b"o");
        std::os::unix::fs::symlink("a.rng", t.path().join("usr/share/pm/c.rng")).unwrap();
        let got = closure(t.path(), &["/usr/share/pm".to_string()]).unwrap();
        let want: BTreeSet<String> = [
            "/usr/share/pm/a.rng",
            "/usr/share/pm/c.rng",
            "/usr/share/pm/sub/b.xsl",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(got, want);
        assert!(closure(t.path(), &["/usr/share/nope".to_string()])
            .unwrap_err()
            .to_string()
            .contains("/usr/share/nope"));
    }

    #[test]
    fn resolve_handles_dotdot_and_dangling_links() {
        let t = tempfile::tempdir().unwrap();
        put(t.path(), "/usr/lib/a", b"a");
        std::os::unix::fs::symlink("../usr/lib/a", t.path().join("usr/b")).unwrap();
        std::os::unix::fs::symlink("/missing", t.path().join("usr/dangling")).unwrap();
        assert_eq!(
            resolve(t.path(), "/usr/b").unwrap(),
            Some(("/usr/lib/a".to_string(), vec!["/usr/b".to_string()]))
        );
        // '..' never climbs above the root
        assert_eq!(
            resolve(t.path(), "/../../usr/lib/a").unwrap().unwrap().0,
            "/usr/lib/a"
        );
        assert_eq!(resolve(t.path(), "/usr/dangling").unwrap(), None);
        assert_eq!(resolve(t.path(), "/usr/lib/a/not-a-dir").unwrap(), None);
    }

    #[test]
    fn dir_of_paths() {
        assert_eq!(dir_of("/usr/bin/x"), "/usr/bin");
        assert_eq!(dir_of("/x"), "/");
    }
}
