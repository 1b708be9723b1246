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

use super::cache::Cache;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use crate::util::hash::{TreeHash, TREE_PREFIX as PREFIX};

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

/// The compression of an archive, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    fn of(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn decompressor(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Bzip2 => Some("bzip2"),
            Compression::Xz => Some("xz"),
            Compression::Zstd => Some("zstd"),
        }
    }
}

/// True when `file` is a tar archive, plain or compressed with gzip, bzip2, xz or
/// zstd: its (decompressed) first block is a POSIX or GNU tar header. Reads at most
/// the first block.
pub fn is_tar_archive(file: &Path) -> Result<bool> {
    let mut head = [0u8; 512];
    let n = read_up_to(
        &mut std::fs::File::open(file)
            .with_context(|| format!("cannot open {}", file.display()))?,
        &mut head,
    )
    .with_context(|| format!("cannot read {}", file.display()))?;
    let head = head.get(..n).unwrap_or(&[]);
    let block = match Compression::of(head).decompressor() {
        None => head.to_vec(),
        Some(tool) => {
            // The first 512 decompressed bytes; the decompressor is stopped after them.
            let mut child = std::process::Command::new(tool)
                .arg("-dc")
                .arg(file)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .with_context(|| format!("cannot run `{tool} -dc {}`", file.display()))?;
            let mut block = [0u8; 512];
            let n = match child.stdout.as_mut() {
                Some(out) => read_up_to(out, &mut block).unwrap_or(0),
                None => 0,
            };
            let _ = child.kill();
            let _ = child.wait();
            block.get(..n).unwrap_or(&[]).to_vec()
        }
    };
    Ok(block.len() == 512 && block.get(257..262) == Some(b"ustar".as_slice()))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A tree hashed and waiting in the cache's temporary directory: [`Staged::commit`]
/// moves it into the store, dropping it leaves nothing.
pub struct Staged {
    _tmp: tempfile::TempDir,
    /// The tree's root inside the temporary directory.
    root: PathBuf,
    pub manifest: Manifest,
    pub hash: TreeHash,
    /// The archive's top folder that was taken as the root (`scst-3.10`), if any.
    pub top: Option<String>,
}

/// Copies the directory `dir` into the cache's temporary directory, hashing it.
/// An empty tree is refused: it is never what a source means.
pub fn stage_dir(cache: &Cache, dir: &Path) -> Result<Staged> {
    let tmp = cache.temp_dir()?;
    let root = tmp.path().join("tree");
    let manifest = copy_dir(dir, &root)?;
    if manifest.entries.is_empty() {
        bail!(
            "{} holds no file: expected a source tree (a checkout or an unpacked archive)",
            dir.display()
        );
    }
    Ok(Staged {
        hash: manifest.hash(),
        manifest,
        root,
        _tmp: tmp,
        top: None,
    })
}

/// Unpacks the tar archive `file` (plain, gzip, bzip2, xz or zstd) into the cache's
/// temporary directory and hashes its tree (the single top folder, if the archive has
/// one, is the root). `name` is what messages call it.
pub fn stage_archive(cache: &Cache, file: &Path, name: &str, log: &Log) -> Result<Staged> {
    if !is_tar_archive(file)? {
        bail!(
            "{name} is not a tar archive (.tar.gz, .tar.bz2, .tar.xz, .tar.zst or .tar): expected an archive or a directory holding the source tree"
        );
    }
    let tmp = cache.temp_dir()?;
    let x = tmp.path().join("x");
    ufs::create_dir_all(&x)?;
    Cmd::new("tar")
        .arg("-xf")
        .arg(file)
        .arg("-C")
        .arg(&x)
        .args([
            "--no-same-owner",
            "--no-same-permissions",
            "--delay-directory-restore",
        ])
        .run(log)
        .with_context(|| format!("cannot unpack {name}"))?;
    // Directories of the archive may be read-only: the tree is copied out of them
    // and the scratch copy removed with the temporary directory.
    let _ = super::cache::make_writable(&x);
    let mut top_entries = std::fs::read_dir(&x)
        .with_context(|| format!("cannot list {}", x.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list {}", x.display()))?;
    let (src, top) = match top_entries.as_slice() {
        [only]
            if std::fs::symlink_metadata(only)
                .map(|m| m.is_dir())
                .unwrap_or(false) =>
        {
            let name = only.file_name().map(|n| n.to_string_lossy().into_owned());
            (top_entries.remove(0), name)
        }
        _ => (x.clone(), None),
    };
    let root = tmp.path().join("tree");
    let manifest = copy_dir(&src, &root)?;
    ufs::remove_dir_all(&x)?;
    if manifest.entries.is_empty() {
        bail!("{name} holds no file: expected a source tree");
    }
    Ok(Staged {
        hash: manifest.hash(),
        manifest,
        root,
        _tmp: tmp,
        top,
    })
}

/// Stages `path`: a directory as it is, a file as a tar archive. `name` is what
/// messages call it.
pub fn stage_path(cache: &Cache, path: &Path, name: &str, log: &Log) -> Result<Staged> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    if meta.is_dir() {
        stage_dir(cache, path)
    } else if meta.is_file() {
        stage_archive(cache, path, name, log)
    } else {
        bail!(
            "{} is not a regular file or a directory (a fifo, socket or device cannot be a source)",
            path.display()
        )
    }
}

impl Staged {
    /// Moves the tree into the store (its manifest first; files and directories made
    /// read-only) and returns its directory there. A tree already in the store is
    /// kept as it is.
    pub fn commit(self, cache: &Cache) -> Result<PathBuf> {
        let dest = store_path(cache, &self.hash);
        if dest.is_dir() {
            return Ok(dest);
        }
        ufs::create_dir_all(&ufs::parent_dir(&dest))?;
        ufs::write_atomic(&manifest_path(cache, &self.hash), self.manifest.to_bytes())?;
        // Everything but the root is made read-only first: moving a directory to
        // another parent needs write access to it (its `..` changes).
        seal(&self.root)?;
        match std::fs::rename(&self.root, &dest) {
            Ok(()) => {
                set_mode(&dest, 0o555)?;
                Ok(dest)
            }
            // Another sanforge stored the same tree first.
            Err(_) if dest.is_dir() => Ok(dest),
            Err(e) => Err(e).with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    self.root.display(),
                    dest.display()
                )
            }),
        }
    }

    /// "tree-v1:… (top folder `x/`)" for messages.
    pub fn describe(&self) -> String {
        match &self.top {
            Some(t) => format!("{} (top folder `{t}/`)", self.hash),
            None => self.hash.to_string(),
        }
    }
}

/// Files 0444 (0555 if executable), directories below the root 0555, deepest first.
fn seal(root: &Path) -> Result<()> {
    let mut dirs = Vec::new();
    for e in ufs::walk(root) {
        let e = e?;
        if e.is_symlink() {
            continue;
        }
        if e.is_dir() {
            dirs.push(e.path().to_path_buf());
        } else {
            let exec = e.metadata().permissions().mode() & 0o100 != 0;
            set_mode(e.path(), if exec { 0o555 } else { 0o444 })?;
        }
    }
    for d in dirs.iter().rev() {
        set_mode(d, 0o555)?;
    }
    Ok(())
}

/// `trees/v1/<hex>` in the cache (whether or not it is there).
pub fn store_path(cache: &Cache, t: &TreeHash) -> PathBuf {
    cache.root().join("trees/v1").join(t.hex())
}

fn manifest_path(cache: &Cache, t: &TreeHash) -> PathBuf {
    cache
        .root()
        .join("trees/v1")
        .join(format!("{}.manifest", t.hex()))
}

/// Whether the store holds tree `t`.
pub fn has(cache: &Cache, t: &TreeHash) -> bool {
    store_path(cache, t).is_dir()
}

/// The manifest of tree `t` if the cache has it (the tree itself may be gone) and it
/// still hashes to `t`.
pub fn known_manifest(cache: &Cache, t: &TreeHash) -> Option<Manifest> {
    let bytes = std::fs::read(manifest_path(cache, t)).ok()?;
    if hex::encode(Sha256::digest(&bytes)) != t.hex() {
        return None;
    }
    Manifest::parse(&bytes).ok()
}

/// Why a tree is not the expected one: both hashes, and the first differing path
/// when the expected tree's manifest is known to this cache.
pub fn mismatch(cache: &Cache, expected: &TreeHash, found: &Manifest, what: &str) -> String {
    let got = found.hash();
    let first = match known_manifest(cache, expected) {
        Some(m) => match m.first_difference(found) {
            Some(d) => format!("first difference: {d}"),
            None => "no path differs (internal error)".to_string(),
        },
        None => {
            let top = found.top_level();
            let shown: Vec<&str> = top.iter().take(8).map(String::as_str).collect();
            format!(
                "the expected tree has never been in this cache, so no path can be compared (this one holds {}{})",
                shown.join(", "),
                if top.len() > shown.len() { ", …" } else { "" }
            )
        }
    };
    format!("tree mismatch: expected {expected}, {what} is {got}; {first}")
}

/// Checks `staged` against `expected` and stores it; nothing is stored on a mismatch.
pub fn commit_expected(
    cache: &Cache,
    staged: Staged,
    expected: &TreeHash,
    what: &str,
) -> Result<PathBuf> {
    if &staged.hash != expected {
        let top = match &staged.top {
            Some(t) => format!("{what} (top folder `{t}/`)"),
            None => what.to_string(),
        };
        bail!("{}", mismatch(cache, expected, &staged.manifest, &top));
    }
    staged.commit(cache)
}

/// Copies tree `t` from the store to `dest` (writable), checking every byte against
/// the tree hash. A store entry that no longer matches is removed and the error names
/// its first differing path.
pub fn checkout(cache: &Cache, t: &TreeHash, dest: &Path) -> Result<Manifest> {
    let src = store_path(cache, t);
    if !src.is_dir() {
        bail!("tree {t} is not in the cache ({})", src.display());
    }
    let m = copy_dir(&src, dest)?;
    if &m.hash() != t {
        let why = mismatch(cache, t, &m, "the cached copy");
        let _ = super::cache::make_writable(&src);
        ufs::remove_dir_all(&src)?;
        bail!(
            "cached tree {} was modified and was removed ({why}); fetch or import it again",
            src.display()
        );
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn the_manifest_is_sorted_and_hashes_kinds_sizes_and_content() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        put(r, "b/y", "why\n");
        put(r, "a-c", "dash\n");
        put(r, "a/x", "ex\n");
        put(r, ".git/HEAD", "ref\n");
        put(r, "sub/.git", "gitdir: x\n");
        std::fs::create_dir_all(r.join("empty")).unwrap();
        std::fs::set_permissions(r.join("b/y"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("../a/x", r.join("b/l")).unwrap();
        let m = hash_dir(r).unwrap();
        let text = String::from_utf8(m.to_bytes()).unwrap();
        let sha = |s: &str| crate::util::hash::sha256_bytes(s.as_bytes());
        assert_eq!(
            text,
            format!(
                "sanforge-tree-v1\nf 5 {} a-c\nf 3 {} a/x\nl 6 {} b/l\nx 4 {} b/y\n",
                sha("dash\n"),
                sha("ex\n"),
                sha("../a/x"),
                sha("why\n")
            )
        );
        assert_eq!(m.hash().hex(), sha(&text));
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
        assert_eq!(m.top_level(), vec!["a-c", "a/", "b/"]);
        // A copy has the same tree hash, whatever its modes and location.
        let c = tempfile::tempdir().unwrap();
        let copied = copy_dir(r, &c.path().join("t")).unwrap();
        assert_eq!(copied, m);
        assert!(!c.path().join("t/.git").exists() && !c.path().join("t/empty").exists());
        assert_eq!(hash_dir(&c.path().join("t")).unwrap(), m);
    }

    #[test]
    fn first_difference_names_the_path() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        put(r, "a", "1");
        put(r, "m/x", "2");
        put(r, "z", "3");
        let m = hash_dir(r).unwrap();
        put(r, "m/x", "22");
        let d = m.first_difference(&hash_dir(r).unwrap()).unwrap();
        assert_eq!(d.path, "m/x");
        assert!(
            d.what.starts_with("content differs (expected 1 bytes"),
            "{d}"
        );
        std::fs::remove_file(r.join("m/x")).unwrap();
        let d = m.first_difference(&hash_dir(r).unwrap()).unwrap();
        assert_eq!(d.to_string(), "m/x: missing (a file in the expected tree)");
        put(r, "m/x", "2");
        put(r, "b", "new");
        let d = m.first_difference(&hash_dir(r).unwrap()).unwrap();
        assert_eq!(d.to_string(), "b: not in the expected tree (a file here)");
        std::fs::remove_file(r.join("b")).unwrap();
        assert_eq!(m.first_difference(&hash_dir(r).unwrap()), None);
    }

    #[test]
    fn tree_hashes_parse() {
        let h = format!("tree-v1:{}", "a".repeat(64));
        assert_eq!(TreeHash::parse(&h).unwrap().hex(), "a".repeat(64));
        for bad in [
            "",
            "tree-v1:",
            "a".repeat(64).as_str(),
            "tree-v2:00",
            &format!("tree-v1:{}", "A".repeat(64)),
        ] {
            assert!(
                TreeHash::parse(bad)
                    .unwrap_err()
                    .contains("expected `tree-v1:`"),
                "{bad}"
            );
        }
    }
}

/// Makes the tree store of `cache` available in the cache at `root` (another, fresh
/// cache: `build --verify`'s scratch builds): files are hard links (copies across
/// file systems), so nothing is unpacked or downloaded twice.
pub fn seed_store(cache: &Cache, root: &Path) -> Result<()> {
    let src = cache.root().join("trees/v1");
    if !src.is_dir() {
        return Ok(());
    }
    let dst = root.join("trees/v1");
    ufs::create_dir_all(&dst)?;
    for e in ufs::walk(&src) {
        let e = e?;
        let to = dst.join(e.rel());
        if e.is_dir() {
            ufs::create_dir_all(&to)?;
        } else if e.is_symlink() {
            let target = std::fs::read_link(e.path())
                .with_context(|| format!("cannot read link {}", e.path().display()))?;
            std::os::unix::fs::symlink(&target, &to)
                .with_context(|| format!("cannot create symlink {}", to.display()))?;
        } else if std::fs::hard_link(e.path(), &to).is_err() {
            ufs::copy(e.path(), &to)?;
        }
    }
    Ok(())
}

/// What `sanforge fetch --import` put into the cache for one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A file, by its sha256.
    Blob { path: PathBuf, sha256: String },
    /// A directory, or the unpacked content of a tar archive, by its tree hash.
    Tree {
        path: PathBuf,
        hash: TreeHash,
        /// The archive's top folder taken as the tree's root.
        top: Option<String>,
    },
}

/// One argument of an import, staged.
enum StagedImport {
    Blob(tempfile::NamedTempFile, String),
    Tree(Staged),
}

/// `sanforge fetch --import PATH…`: every file by its sha256 (a tar archive also by
/// the tree hash of its content) and every directory by its tree hash, all or none:
/// each is staged in the cache's temporary directory first, and only when every one
/// could be read, unpacked and hashed are they committed. The error names every path
/// that could not be imported and why.
pub fn import_all(cache: &Cache, paths: &[PathBuf], log: &Log) -> Result<Vec<Imported>> {
    let mut staged: Vec<(PathBuf, Vec<StagedImport>)> = Vec::new();
    let mut failed = Vec::new();
    for p in paths {
        match stage_import(cache, p, log) {
            Ok(s) => staged.push((p.clone(), s)),
            Err(e) => failed.push(format!("  {}: {e:#}", p.display())),
        }
    }
    if !failed.is_empty() {
        bail!(
            "cannot import {} of {} files (nothing was imported):\n{}",
            failed.len(),
            paths.len(),
            failed.join("\n")
        );
    }
    let mut out = Vec::new();
    for (p, items) in staged {
        for item in items {
            match item {
                StagedImport::Blob(tmp, sha) => {
                    if cache.get_verified(&sha).ok().flatten().is_none() {
                        cache.commit(tmp, &sha)?;
                    }
                    out.push(Imported::Blob {
                        path: p.clone(),
                        sha256: sha,
                    });
                }
                StagedImport::Tree(t) => {
                    let (hash, top) = (t.hash.clone(), t.top.clone());
                    t.commit(cache)?;
                    out.push(Imported::Tree {
                        path: p.clone(),
                        hash,
                        top,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn stage_import(cache: &Cache, p: &Path, log: &Log) -> Result<Vec<StagedImport>> {
    let meta = std::fs::metadata(p).with_context(|| format!("cannot stat {}", p.display()))?;
    if meta.is_dir() {
        return Ok(vec![StagedImport::Tree(stage_dir(cache, p)?)]);
    }
    let (tmp, sha) = cache.stage_import(p)?;
    // The tree is read from the staged copy: it is the content of the imported blob.
    let tree = if is_tar_archive(tmp.path())? {
        Some(stage_archive(
            cache,
            tmp.path(),
            &p.display().to_string(),
            log,
        )?)
    } else {
        None
    };
    let mut items = vec![StagedImport::Blob(tmp, sha)];
    items.extend(tree.map(StagedImport::Tree));
    Ok(items)
}
