//! The tree store: a directory or archive staged (unpacked and hashed), sealed under
//! its tree hash, checked against what the recipe pins, checked out.

use super::{copy_dir, is_tar_archive, set_mode, Manifest};
use crate::engine::cache::Cache;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::hash::TreeHash;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
    let _ = crate::engine::cache::make_writable(&x);
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
pub(super) fn seal(root: &Path) -> Result<()> {
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

pub(super) fn manifest_path(cache: &Cache, t: &TreeHash) -> PathBuf {
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
        let _ = crate::engine::cache::make_writable(&src);
        ufs::remove_dir_all(&src)?;
        bail!(
            "cached tree {} was modified and was removed ({why}); fetch or import it again",
            src.display()
        );
    }
    Ok(m)
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
