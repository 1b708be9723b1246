//! File-system helpers whose errors name the operation and the path.
//!
//! Every I/O error in sanforge goes through here (or through `Context` with the same
//! wording) so that a user reads `cannot read /x/y` followed by the OS reason, never a
//! bare "No such file or directory".

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn write(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("cannot write {}", path.display()))
}

pub fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path)
        .with_context(|| format!("cannot create directory {}", path.display()))
}

pub fn remove_dir_all(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Removes a file; a file that is not there is not an error.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

pub fn copy(from: &Path, to: &Path) -> Result<u64> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

/// Writes `data` to `path` atomically: a temporary file in the same directory, fsync,
/// then rename over the target. Readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, data: impl AsRef<[u8]>) -> Result<()> {
    use std::io::Write;
    let dir = parent_dir(path);
    create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // A temporary file is created 0600; the result is a public file (locks, outputs,
    // markers) readable by everyone. Callers writing secrets chmod it afterwards.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot chmod {}", tmp.path().display()))?;
    tmp.write_all(data.as_ref())
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename a temporary file to {}", path.display()))?;
    Ok(())
}

/// The directory holding `path` ("." for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Copies a directory tree, keeping modes and symlinks (owners are not kept: the
/// image writer sets every owner to root).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    create_dir_all(to)?;
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .with_context(|| format!("cannot list {}", from.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", from.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src)
            .with_context(|| format!("cannot stat {}", src.display()))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&src)
                .with_context(|| format!("cannot read link {}", src.display()))?;
            let _ = std::fs::remove_file(&dst);
            std::os::unix::fs::symlink(&target, &dst)
                .with_context(|| format!("cannot create symlink {}", dst.display()))?;
        } else if ft.is_dir() {
            copy_tree(&src, &dst)?;
            std::fs::set_permissions(
                &dst,
                std::fs::Permissions::from_mode(meta.permissions().mode()),
            )
            .with_context(|| format!("cannot set mode of {}", dst.display()))?;
        } else if ft.is_file() {
            copy(&src, &dst)?;
        } else {
            // Reading a fifo blocks for ever, a device may never end.
            anyhow::bail!(
                "cannot copy {}: expected a regular file, a directory or a symlink (it is a fifo, socket or device)",
                src.display()
            );
        }
    }
    Ok(())
}
