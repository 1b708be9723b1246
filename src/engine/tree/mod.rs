//! Source trees pinned by their content: the `tree-v1` hash and the tree store.
//!
//! Why it exists: the bytes of an upstream archive depend on who made it (a release
//! tarball, GitHub's archive of a tag and a `git archive` differ in compression, top
//! folder and timestamps), so a sha256 over the archive pins one particular download,
//! not the source. A tree hash pins what does not change: the unpacked files. Any
//! archive (`.tar.gz`, `.tar.bz2`, `.tar.xz`, `.tar.zst`, `.tar`) or directory (a git
//! checkout) with the same files has the same tree hash, whatever its top folder is
//! called.
//!
//! **`tree-v1`** (written `tree-v1:<64 lowercase hex>`) is the sha256 of this text,
//! the tree's *manifest*:
//!
//! ```text
//! sanforge-tree-v1\n
//! <kind> <size> <sha256> <path>\n        one line per entry, sorted by path (bytes)
//! ```
//!
//! * entries are the regular files and symlinks under the root; directories are not
//!   entries (they exist through what they hold: an empty directory counts for
//!   nothing, as in git), and `.git` (a directory or a file, at any depth) is left
//!   out with everything below it;
//! * `<kind>` is `f` (regular file), `x` (regular file whose owner-execute bit is set:
//!   the only mode bit git records) or `l` (symlink); fifos, sockets and devices are
//!   refused;
//! * `<size>` and `<sha256>` are those of the file's content, or of a symlink's
//!   target as written (the link is never followed);
//! * `<path>` is relative to the root, `/`-separated, raw bytes (a newline in a path is
//!   refused);
//! * the root of an archive is its single top directory when it has exactly one entry
//!   at the top and that entry is a directory (`scst-3.10/`), else the archive itself;
//!   the root of a directory is the directory.
//!
//! The same hash can be computed by hand (GNU find, sha256sum; see README).
//!
//! The store, in the cache: `trees/v1/<hex>/` holds the tree (read-only, renamed into
//! place once complete) and `trees/v1/<hex>.manifest` its manifest (self-verifying:
//! its sha256 is `<hex>`), written first. Stages never use the store directly: they
//! [`checkout`] a writable copy, which re-hashes every byte it copies, so a store
//! entry edited behind sanforge's back is found, named by its first differing path
//! and removed. Reads: the archives and directories given, the store.
//!
//! Files: this one (manifests and their hash), `archive.rs` (telling and reading
//! archives), `store.rs` (staging, sealing and checking out trees of the store),
//! `import.rs` (`fetch --import`).

use crate::util::fs as ufs;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub use crate::util::hash::{TreeHash, TREE_PREFIX as PREFIX};

mod archive;
mod import;
mod store;
pub use archive::{is_tar_archive, Compression};
pub use import::{import_all, Imported};
pub use store::{
    checkout, commit_expected, has, known_manifest, mismatch, seed_store, stage_archive, stage_dir,
    stage_path, store_path, Staged,
};

/// The first line of every manifest.
pub const HEADER: &str = "sanforge-tree-v1";

/// The kind of a manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Exec,
    Symlink,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Exec => 'x',
            Kind::Symlink => 'l',
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::File => "a file",
            Kind::Exec => "an executable file",
            Kind::Symlink => "a symlink",
        }
    }
}

/// One file or symlink of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    pub sha256: String,
}

impl Entry {
    pub fn path_str(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Every entry of a tree, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    pub entries: Vec<Entry>,
}

impl Manifest {
    fn new(mut entries: Vec<Entry>) -> Manifest {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { entries }
    }

    /// The manifest text, whose sha256 is the tree hash.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 100);
        out.extend_from_slice(HEADER.as_bytes());
        out.push(b'\n');
        for e in &self.entries {
            out.extend_from_slice(
                format!("{} {} {} ", e.kind.letter(), e.size, e.sha256).as_bytes(),
            );
            out.extend_from_slice(&e.path);
            out.push(b'\n');
        }
        out
    }

    pub fn hash(&self) -> TreeHash {
        TreeHash::from_digest(hex::encode(Sha256::digest(self.to_bytes())))
    }

    /// Parses a manifest written by [`Manifest::to_bytes`].
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        let mut lines = bytes.split(|b| *b == b'\n');
        if lines.next() != Some(HEADER.as_bytes()) {
            bail!("not a tree manifest: expected `{HEADER}` on its first line");
        }
        let mut entries = Vec::new();
        for (i, l) in lines.enumerate() {
            if l.is_empty() {
                continue;
            }
            let bad = || {
                anyhow!(
                    "tree manifest line {}: expected `KIND SIZE SHA256 PATH`",
                    i + 2
                )
            };
            let mut parts = l.splitn(4, |b| *b == b' ');
            let kind = match parts.next() {
                Some(b"f") => Kind::File,
                Some(b"x") => Kind::Exec,
                Some(b"l") => Kind::Symlink,
                _ => return Err(bad()),
            };
            let size = parts
                .next()
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(bad)?;
            let sha256 = parts
                .next()
                .and_then(|s| std::str::from_utf8(s).ok())
                .filter(|s| crate::util::hash::is_sha256(s))
                .ok_or_else(bad)?
                .to_string();
            let path = parts
                .next()
                .filter(|p| !p.is_empty())
                .ok_or_else(bad)?
                .to_vec();
            entries.push(Entry {
                path,
                kind,
                size,
                sha256,
            });
        }
        Ok(Manifest::new(entries))
    }

    /// The names at the top of the tree, directories with a trailing `/`, sorted.
    pub fn top_level(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            let name = match e.path.iter().position(|b| *b == b'/') {
                Some(i) => format!(
                    "{}/",
                    String::from_utf8_lossy(e.path.get(..i).unwrap_or(&[]))
                ),
                None => e.path_str(),
            };
            if out.last() != Some(&name) && !out.contains(&name) {
                out.push(name);
            }
        }
        out.sort();
        out
    }

    /// The first path (in manifest order) where `found` differs from `self`, the
    /// expected tree, and how.
    pub fn first_difference(&self, found: &Manifest) -> Option<Difference> {
        let (mut a, mut b) = (
            self.entries.iter().peekable(),
            found.entries.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => return None,
                (Some(e), None) => return Some(Difference::missing(e)),
                (None, Some(f)) => return Some(Difference::extra(f)),
                (Some(e), Some(f)) if e.path < f.path => return Some(Difference::missing(e)),
                (Some(e), Some(f)) if e.path > f.path => return Some(Difference::extra(f)),
                (Some(e), Some(f)) => {
                    if e != f {
                        return Some(Difference::changed(e, f));
                    }
                    a.next();
                    b.next();
                }
            }
        }
    }
}

/// Where two trees first differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    pub what: String,
}

impl Difference {
    fn missing(e: &Entry) -> Difference {
        Difference {
            path: e.path_str(),
            what: format!("missing ({} in the expected tree)", e.kind.describe()),
        }
    }

    fn extra(f: &Entry) -> Difference {
        Difference {
            path: f.path_str(),
            what: format!("not in the expected tree ({} here)", f.kind.describe()),
        }
    }

    fn changed(e: &Entry, f: &Entry) -> Difference {
        let short = |s: &str| s.get(..12).unwrap_or(s).to_string();
        let what = if e.kind != f.kind {
            format!(
                "expected {}, found {}",
                e.kind.describe(),
                f.kind.describe()
            )
        } else if e.kind == Kind::Symlink {
            "the symlink points elsewhere".to_string()
        } else {
            format!(
                "content differs (expected {} bytes, sha256 {}…; found {} bytes, sha256 {}…)",
                e.size,
                short(&e.sha256),
                f.size,
                short(&f.sha256)
            )
        };
        Difference {
            path: e.path_str(),
            what,
        }
    }
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.what)
    }
}

/// The entries of the tree under `root`, read in place (nothing is written).
pub fn hash_dir(root: &Path) -> Result<Manifest> {
    scan(root, None)
}

/// Copies the tree under `src` to `dest` (created; files 0644 or 0755, directories
/// 0755, symlinks as they are, `.git` left out, empty directories not created) and
/// returns the manifest of what was copied, hashed from the bytes written.
pub fn copy_dir(src: &Path, dest: &Path) -> Result<Manifest> {
    ufs::create_dir_all(dest)?;
    scan(src, Some(dest))
}

fn is_git(e: &ufs::Entry) -> bool {
    e.file_name() == ".git"
}

/// Walks `root` (without `.git`), hashing every file and symlink; with `dest`, copies
/// each into it on the way.
fn scan(root: &Path, dest: Option<&Path>) -> Result<Manifest> {
    let meta =
        std::fs::metadata(root).with_context(|| format!("cannot stat {}", root.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for e in ufs::walk(root).prune(is_git) {
        let e = e?;
        if e.is_dir() {
            continue;
        }
        let rel = e.rel().as_os_str().as_bytes().to_vec();
        if rel.contains(&b'\n') {
            bail!(
                "{}: a newline in a path is not allowed in a source tree",
                e.path().display()
            );
        }
        let out = dest.map(|d| d.join(e.rel()));
        if let Some(o) = &out {
            ufs::create_dir_all(&ufs::parent_dir(o))?;
            set_mode(&ufs::parent_dir(o), 0o755)?;
        }
        let meta = e.metadata();
        let entry = if e.is_symlink() {
            let target = std::fs::read_link(e.path())
                .with_context(|| format!("cannot read link {}", e.path().display()))?;
            if let Some(o) = &out {
                std::os::unix::fs::symlink(&target, o)
                    .with_context(|| format!("cannot create symlink {}", o.display()))?;
            }
            let t = target.as_os_str().as_bytes();
            Entry {
                path: rel,
                kind: Kind::Symlink,
                size: t.len() as u64,
                sha256: hex::encode(Sha256::digest(t)),
            }
        } else if meta.is_file() {
            let exec = meta.permissions().mode() & 0o100 != 0;
            let (size, sha256) = copy_hashing(e.path(), out.as_deref(), exec, &mut buf)?;
            Entry {
                path: rel,
                kind: if exec { Kind::Exec } else { Kind::File },
                size,
                sha256,
            }
        } else {
            bail!(
                "{} is a fifo, socket or device: a source tree holds only files, directories and symlinks",
                e.path().display()
            );
        };
        entries.push(entry);
    }
    Ok(Manifest::new(entries))
}

/// Reads `src` (hashing it) and, with `out`, writes the same bytes there.
fn copy_hashing(
    src: &Path,
    out: Option<&Path>,
    exec: bool,
    buf: &mut [u8],
) -> Result<(u64, String)> {
    let mut f =
        std::fs::File::open(src).with_context(|| format!("cannot open {}", src.display()))?;
    let mut w = match out {
        Some(o) => Some(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(o)
                .with_context(|| format!("cannot create {}", o.display()))?,
        ),
        None => None,
    };
    let mut h = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match f.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", src.display())),
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        h.update(chunk);
        size += n as u64;
        if let (Some(w), Some(o)) = (w.as_mut(), out) {
            w.write_all(chunk)
                .with_context(|| format!("cannot write {}", o.display()))?;
        }
    }
    if let Some(o) = out {
        set_mode(o, if exec { 0o755 } else { 0o644 })?;
    }
    Ok((size, hex::encode(h.finalize())))
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", p.display()))
}

#[cfg(test)]
mod tests;
