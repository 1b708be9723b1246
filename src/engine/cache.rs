//! The content-addressed cache (`$SANFORGE_CACHE`, default `~/.cache/sanforge`).
//!
//! Why it exists: downloads and stage outputs are expensive, and an interrupted build
//! must never leave a half-written entry that a later build trusts. Layout:
//!
//! ```text
//! blobs/sha256/<hex>        verified source files, named by their sha256 (read-only)
//! trees/v1/<hex>/           source trees pinned by content, read-only (engine::tree)
//! trees/v1/<hex>.manifest   their manifests (sha256 = <hex>), written first
//! tmp/<pid>-<random>        files being downloaded or imported (same file system)
//! stages/<stage>/<key>/     a finished stage output (holds a `.complete` marker)
//! stages/<stage>/.tmp-<key>-<pid>/   a stage being built by process <pid>
//! ```
//!
//! A blob only enters `blobs/` by an atomic rename after its hash was checked, and it
//! is re-hashed every time it is handed out ([`Cache::get_verified`]). A stage output
//! only appears under its key by an atomic rename of a complete directory. Temporary
//! entries left by a process that no longer runs are removed on the next use.
//! Reads: the environment (`SANFORGE_CACHE`, `XDG_CACHE_HOME`, `HOME`) and `/proc/<pid>`
//! to tell whether the owner of a temporary entry still runs.

use crate::util::fs;
use crate::util::hash::is_sha256;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Name of the marker file written into a stage directory once it is complete.
pub const COMPLETE_MARKER: &str = ".complete";

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (creating if needed) the cache at `root` and removes temporary files left
    /// by processes that are gone.
    pub fn open(root: impl Into<PathBuf>) -> Result<Cache> {
        let root = root.into();
        let cache = Cache { root };
        for d in [
            cache.root.join("blobs/sha256"),
            cache.tmp_dir(),
            cache.root.join("stages"),
        ] {
            fs::create_dir_all(&d)?;
        }
        cache.clean_stale_tmp()?;
        Ok(cache)
    }

    /// Opens the cache named by `$SANFORGE_CACHE`, else `$XDG_CACHE_HOME/sanforge`, else
    /// `~/.cache/sanforge`.
    pub fn from_env() -> Result<Cache> {
        Self::open(default_root()?)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this sha256 lives (whether or not it is there).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(sha256)
    }

    /// Directory for files being downloaded; on the same file system as the blobs, so
    /// a rename from here into `blobs/` is atomic.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A new temporary file in [`Cache::tmp_dir`], deleted when dropped. Its name
    /// starts with this process's pid so that a later run can remove it if we die.
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.tmp_dir();
        fs::create_dir_all(&dir)?;
        tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
    }

    /// A new temporary directory in [`Cache::tmp_dir`], deleted when dropped.
    pub fn temp_dir(&self) -> Result<tempfile::TempDir> {
        let dir = self.tmp_dir();
        fs::create_dir_all(&dir)?;
        tempfile::Builder::new()
            .prefix(&format!("{}-", std::process::id()))
            .tempdir_in(&dir)
            .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))
    }

    /// Copies `file` into the cache and returns its sha256. Importing a file that is
    /// already cached changes nothing.
    pub fn import(&self, file: &Path) -> Result<String> {
        let (tmp, sha) = self.stage_import(file)?;
        if self.get_verified(&sha).ok().flatten().is_none() {
            self.commit(tmp, &sha)?;
        }
        Ok(sha)
    }

    /// Copies `file` into a temporary file of the cache, hashing it on the way.
    pub(crate) fn stage_import(&self, file: &Path) -> Result<(tempfile::NamedTempFile, String)> {
        let meta =
            std::fs::metadata(file).with_context(|| format!("cannot stat {}", file.display()))?;
        if !meta.is_file() {
            bail!(
                "{} is not a regular file: expected a file to put into the cache",
                file.display()
            );
        }
        let mut src =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let mut tmp = self.temp_file()?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = src
                .read(&mut buf)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", tmp.path().display()))?;
        }
        let sha = hex::encode(h.finalize());
        Ok((tmp, sha))
    }

    /// Moves `tmp_file` into the cache as blob `expected_sha` after checking its hash.
    /// On a mismatch the file is deleted and the error gives both hashes.
    pub fn insert_verified(&self, tmp_file: &Path, expected_sha: &str) -> Result<PathBuf> {
        check_sha(expected_sha)?;
        let actual = match crate::util::hash::sha256_file(tmp_file) {
            Ok(a) => a,
            Err(e) => {
                let _ = std::fs::remove_file(tmp_file);
                return Err(e);
            }
        };
        if actual != expected_sha {
            let _ = std::fs::remove_file(tmp_file);
            bail!(
                "sha256 mismatch for {}: expected {expected_sha}, got {actual}",
                tmp_file.display()
            );
        }
        let dest = self.blob_path(expected_sha);
        sync_file(tmp_file)?;
        if std::fs::rename(tmp_file, &dest).is_err() {
            // Another file system: copy into our tmp dir, then rename from there.
            let mut tmp = self.temp_file()?;
            let mut src = std::fs::File::open(tmp_file)
                .with_context(|| format!("cannot open {}", tmp_file.display()))?;
            std::io::copy(&mut src, &mut tmp).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    tmp_file.display(),
                    tmp.path().display()
                )
            })?;
            self.commit(tmp, expected_sha)?;
            let _ = std::fs::remove_file(tmp_file);
        } else {
            finish_blob(&dest)?;
        }
        Ok(dest)
    }

    /// Commits a temporary file (from [`Cache::temp_file`]) whose sha256 the caller
    /// has just computed while writing it: fsync, read-only, atomic rename.
    pub(crate) fn commit(&self, tmp: tempfile::NamedTempFile, sha: &str) -> Result<PathBuf> {
        check_sha(sha)?;
        let dest = self.blob_path(sha);
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("cannot sync {}", tmp.path().display()))?;
        tmp.persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot move a downloaded file to {}", dest.display()))?;
        finish_blob(&dest)?;
        Ok(dest)
    }

    /// The blob with this sha256 if it is cached and still has that hash. A blob that
    /// no longer matches is deleted and reported as an error.
    pub fn get_verified(&self, sha256: &str) -> Result<Option<PathBuf>> {
        check_sha(sha256)?;
        let p = self.blob_path(sha256);
        if !p.exists() {
            return Ok(None);
        }
        let actual = crate::util::hash::sha256_file(&p)?;
        if actual != sha256 {
            std::fs::remove_file(&p)
                .with_context(|| format!("cannot remove corrupt cache entry {}", p.display()))?;
            bail!("cached file {} was corrupt (its sha256 is now {actual}) and was removed; fetch it again", p.display());
        }
        Ok(Some(p))
    }

    /// Directory of a stage output (whether or not it is complete).
    pub fn stage_path(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join("stages").join(stage).join(key)
    }

    /// The stage output if it exists and is complete.
    pub fn stage_done(&self, stage: &str, key: &str) -> Option<PathBuf> {
        let p = self.stage_path(stage, key);
        p.join(COMPLETE_MARKER).is_file().then_some(p)
    }

    /// Returns the output of `stage` for `key`, building it with `f` if needed. `f`
    /// fills a fresh directory; once it succeeds the directory gets its marker and is
    /// renamed to [`Cache::stage_path`]. If `f` fails nothing is left behind.
    pub fn build_stage(
        &self,
        stage: &str,
        key: &str,
        f: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        check_component("stage", stage)?;
        check_component("key", key)?;
        let dir = self.root.join("stages").join(stage);
        fs::create_dir_all(&dir)?;
        clean_stale_stage_tmp(&dir)?;
        if let Some(done) = self.stage_done(stage, key) {
            return Ok(done);
        }
        let tmp = dir.join(format!(".tmp-{key}-{}", std::process::id()));
        fs::remove_dir_all(&tmp)?;
        fs::create_dir_all(&tmp)?;
        let result = f(&tmp).and_then(|()| {
            fs::write(&tmp.join(COMPLETE_MARKER), format!("{stage} {key}\n"))?;
            let final_path = self.stage_path(stage, key);
            // A directory without a marker is a leftover (e.g. removed by hand): replace it.
            if final_path.exists() && self.stage_done(stage, key).is_none() {
                fs::remove_dir_all(&final_path)?;
            }
            match std::fs::rename(&tmp, &final_path) {
                Ok(()) => Ok(final_path),
                // Another process finished the same stage first: keep its output.
                Err(_) if self.stage_done(stage, key).is_some() => {
                    fs::remove_dir_all(&tmp)?;
                    Ok(final_path)
                }
                Err(e) => Err(e).with_context(|| {
                    format!(
                        "cannot rename {} to {}",
                        tmp.display(),
                        final_path.display()
                    )
                }),
            }
        });
        if result.is_err() {
            let _ = make_writable(&tmp);
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Like [`Cache::build_stage`], but `f` works in the final directory itself, for
    /// outputs that must not move once built (a kernel build tree records its absolute
    /// path, and out-of-tree modules are built against it). The `.complete` marker is
    /// written last; a directory without it is a leftover and is wiped before reuse.
    pub fn build_stage_in_place(
        &self,
        stage: &str,
        key: &str,
        f: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        check_component("stage", stage)?;
        check_component("key", key)?;
        if let Some(done) = self.stage_done(stage, key) {
            return Ok(done);
        }
        let dir = self.stage_path(stage, key);
        // One builder per in-place entry: a second sanforge waits for the first (and
        // then finds the entry complete) instead of wiping a build in progress.
        let _lock = self.lock_entry(stage, key)?;
        if let Some(done) = self.stage_done(stage, key) {
            return Ok(done);
        }
        let _ = make_writable(&dir);
        fs::remove_dir_all(&dir)?;
        fs::create_dir_all(&dir)?;
        let result = f(&dir).and_then(|()| {
            fs::write_atomic(&dir.join(COMPLETE_MARKER), format!("{stage} {key}\n"))?;
            Ok(dir.clone())
        });
        if result.is_err() {
            let _ = make_writable(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// An exclusive lock on `stages/<stage>/.lock-<key>` (flock, released when the
    /// returned file is dropped, also when the process dies); says so when it waits.
    fn lock_entry(&self, stage: &str, key: &str) -> Result<std::fs::File> {
        let path = self
            .root
            .join("stages")
            .join(stage)
            .join(format!(".lock-{key}"));
        fs::create_dir_all(&fs::parent_dir(&path))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!(
                    "==> {stage}: another sanforge is building {key}; waiting for it ({})",
                    path.display()
                );
                f.lock()
                    .with_context(|| format!("cannot lock {}", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        Ok(f)
    }

    /// Removes every stage output not listed in `keep` (as `(stage, key)`) and every
    /// stale temporary entry. Blobs are kept. Returns how many outputs were removed.
    pub fn prune(&self, keep: &[(&str, &str)]) -> Result<usize> {
        self.clean_stale_tmp()?;
        let stages = self.root.join("stages");
        let mut removed = 0;
        for stage in list_dir(&stages)? {
            let stage_dir = stages.join(&stage);
            if !stage_dir.is_dir() {
                continue;
            }
            clean_stale_stage_tmp(&stage_dir)?;
            for key in list_dir(&stage_dir)? {
                if key.starts_with(".tmp-")
                    || key.starts_with(".lock-")
                    || keep.iter().any(|(s, k)| *s == stage && *k == key)
                {
                    continue;
                }
                let p = stage_dir.join(&key);
                let _ = make_writable(&p);
                fs::remove_dir_all(&p)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes files in `tmp/` whose owning process (the pid prefix) is gone.
    fn clean_stale_tmp(&self) -> Result<()> {
        let dir = self.tmp_dir();
        for name in list_dir(&dir)? {
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(process_alive) {
                continue;
            }
            let p = dir.join(&name);
            if p.is_dir() {
                let _ = make_writable(&p);
                fs::remove_dir_all(&p)?;
            } else {
                remove_file_if_exists(&p)?;
            }
        }
        Ok(())
    }
}

/// The default cache root from the environment.
pub fn default_root() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SANFORGE_CACHE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p).join("sanforge"));
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache/sanforge")),
        None => bail!("cannot locate the cache: neither SANFORGE_CACHE nor HOME is set"),
    }
}

fn check_sha(sha: &str) -> Result<()> {
    if !is_sha256(sha) {
        bail!("`{sha}` is not a sha256: expected 64 lowercase hex digits");
    }
    Ok(())
}

fn check_component(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.starts_with('.') || s.contains('/') {
        bail!("invalid stage {what} `{s}`: expected a non-empty name without `/` that does not start with `.`");
    }
    Ok(())
}

/// Whether a process with this pid exists (read from /proc).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes `.tmp-<key>-<pid>` directories of processes that are gone.
fn clean_stale_stage_tmp(stage_dir: &Path) -> Result<()> {
    for name in list_dir(stage_dir)? {
        let Some(rest) = name.strip_prefix(".tmp-") else {
            continue;
        };
        let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p == std::process::id() || process_alive(p)) {
            continue;
        }
        let p = stage_dir.join(&name);
        let _ = make_writable(&p);
        fs::remove_dir_all(&p)?;
    }
    Ok(())
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut names = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn remove_file_if_exists(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
    }
}

fn sync_file(p: &Path) -> Result<()> {
    std::fs::File::open(p)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", p.display()))
}

/// Makes a finished blob read-only (so nothing edits it in place) and syncs its
/// directory so the rename survives a crash.
fn finish_blob(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o444))
        .with_context(|| format!("cannot make {} read-only", p.display()))?;
    let dir = fs::parent_dir(p);
    std::fs::File::open(&dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Gives the owner write permission on every directory under `p` (a stage may have
/// created read-only directories, which would make removal fail).
pub(crate) fn make_writable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::symlink_metadata(p).with_context(|| format!("cannot stat {}", p.display()))?;
    if meta.is_dir() {
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o700))
                .with_context(|| format!("cannot set mode of {}", p.display()))?;
        }
        for name in list_dir(p)? {
            make_writable(&p.join(name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_in_place_builder_waits_and_reuses_the_entry() {
        let t = tempfile::tempdir().unwrap();
        let cache = Cache::open(t.path()).unwrap();
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let cache = cache.clone();
                let runs = runs.clone();
                std::thread::spawn(move || {
                    cache
                        .build_stage_in_place("kernel", "k1", |d| {
                            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(300));
                            std::fs::write(d.join("vmlinuz"), b"k")?;
                            Ok(())
                        })
                        .unwrap()
                })
            })
            .collect();
        for h in threads {
            let dir = h.join().unwrap();
            assert_eq!(std::fs::read(dir.join("vmlinuz")).unwrap(), b"k");
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn import_is_idempotent_and_verifies() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path().join("c")).unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let sha = cache.import(&f).unwrap();
        assert_eq!(sha, crate::util::hash::sha256_bytes(b"hello"));
        assert_eq!(cache.import(&f).unwrap(), sha);
        let p = cache.get_verified(&sha).unwrap().unwrap();
        assert_eq!(std::fs::read(p).unwrap(), b"hello");
        assert!(list_dir(&cache.tmp_dir()).unwrap().is_empty());
    }

    #[test]
    fn insert_verified_rejects_wrong_hash() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path().join("c")).unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let wrong = "0".repeat(64);
        let err = format!("{:#}", cache.insert_verified(&f, &wrong).unwrap_err());
        assert!(
            err.contains(&wrong) && err.contains(&crate::util::hash::sha256_bytes(b"hello")),
            "{err}"
        );
        assert!(!f.exists());
        assert!(cache.get_verified(&wrong).unwrap().is_none());
    }

    #[test]
    fn bad_sha_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path()).unwrap();
        assert!(cache.get_verified("../../etc/passwd").is_err());
    }

    #[test]
    fn stage_reuses_complete_output() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::open(d.path()).unwrap();
        let p = cache
            .build_stage("s", "k", |dir| fs::write(&dir.join("out"), "1"))
            .unwrap();
        assert_eq!(cache.stage_done("s", "k"), Some(p.clone()));
        let again = cache
            .build_stage("s", "k", |_| bail!("must not run"))
            .unwrap();
        assert_eq!(again, p);
        assert_eq!(cache.prune(&[]).unwrap(), 1);
        assert!(cache.stage_done("s", "k").is_none());
    }
}
