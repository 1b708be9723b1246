//! File-system helpers whose errors name the operation and the path, and the one
//! recursive directory walk ([`walk`]: sorted, deterministic, symlinks followed only
//! when asked).
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

/// Writes a secret to `path` only if nothing is there: a temporary file created 0600
/// in the same directory, fsync, then a rename that never replaces an existing file.
/// Returns false, writing nothing, when `path` exists. Readers never see a partial file.
pub fn write_new_private(path: &Path, data: &[u8]) -> Result<bool> {
    use std::io::Write;
    let dir = parent_dir(path);
    create_dir_all(&dir)?;
    // tempfile creates its files 0600 on Unix: the secret is never readable by others.
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error)
            .with_context(|| format!("cannot move a temporary file to {}", path.display())),
    }
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
    create_dir_all(to)?;
    let mut dirs = Vec::new();
    for e in walk(from) {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.rel()));
        if e.is_symlink() {
            let target = std::fs::read_link(src)
                .with_context(|| format!("cannot read link {}", src.display()))?;
            let _ = std::fs::remove_file(&dst);
            std::os::unix::fs::symlink(&target, &dst)
                .with_context(|| format!("cannot create symlink {}", dst.display()))?;
        } else if e.is_dir() {
            create_dir_all(&dst)?;
            dirs.push((dst, e.metadata().permissions()));
        } else if e.metadata().is_file() {
            copy(src, &dst)?;
        } else {
            // Reading a fifo blocks for ever, a device may never end.
            anyhow::bail!(
                "cannot copy {}: expected a regular file, a directory or a symlink (it is a fifo, socket or device)",
                src.display()
            );
        }
    }
    set_dir_modes(dirs)
}

/// Sets the modes of copied directories once they are filled, deepest first (a
/// read-only directory can only be closed after its content is in).
pub fn set_dir_modes(dirs: Vec<(PathBuf, std::fs::Permissions)>) -> Result<()> {
    for (d, mode) in dirs.into_iter().rev() {
        std::fs::set_permissions(&d, mode)
            .with_context(|| format!("cannot set mode of {}", d.display()))?;
    }
    Ok(())
}

/// One entry of a [`walk`]: a file, directory, symlink or other node below the root.
#[derive(Debug, Clone)]
pub struct Entry {
    path: PathBuf,
    rel: PathBuf,
    depth: usize,
    meta: std::fs::Metadata,
    link: bool,
}

impl Entry {
    /// The full path (the root joined with [`Entry::rel`]).
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The path relative to the root of the walk.
    pub fn rel(&self) -> &Path {
        &self.rel
    }
    pub fn file_name(&self) -> &std::ffi::OsStr {
        self.rel.file_name().unwrap_or(self.rel.as_os_str())
    }
    /// 1 for the root's own entries, 2 for theirs, and so on.
    pub fn depth(&self) -> usize {
        self.depth
    }
    /// The entry's metadata: of the link itself, or of its target when the walk
    /// follows links.
    pub fn metadata(&self) -> &std::fs::Metadata {
        &self.meta
    }
    pub fn is_dir(&self) -> bool {
        self.meta.is_dir()
    }
    /// True for a symlink, followed or not.
    pub fn is_symlink(&self) -> bool {
        self.link
    }
}

/// What [`Walk::prune`] keeps: true leaves an entry (and its subtree) out.
type Prune<'a> = Box<dyn FnMut(&Entry) -> bool + 'a>;

/// A recursive directory walk (see [`walk`]).
pub struct Walk<'a> {
    root: PathBuf,
    follow_links: bool,
    prune: Option<Prune<'a>>,
    started: bool,
    /// Per directory being walked: its entries still to give, last first.
    levels: Vec<Vec<Entry>>,
    /// (device, inode) of each directory being walked, to refuse symlink loops.
    ancestors: Vec<(u64, u64)>,
    /// The directory given last: it is read at the next call, after the caller saw it
    /// (and could, say, make it readable).
    pending: Option<Entry>,
}

/// Walks the tree under `root`: depth first, a directory before what it holds, each
/// directory's entries sorted by name, so the order is the same on every machine.
/// The root itself is not an entry. Symlinks are entries but not followed, unless
/// [`Walk::follow_links`] says so. Errors name the path and what failed.
pub fn walk(root: &Path) -> Walk<'static> {
    Walk {
        root: root.to_path_buf(),
        follow_links: false,
        prune: None,
        started: false,
        levels: Vec::new(),
        ancestors: Vec::new(),
        pending: None,
    }
}

impl<'a> Walk<'a> {
    /// Follows symlinks: an entry's metadata is its target's, and a link to a
    /// directory is walked into (a link back to a directory being walked is an error).
    pub fn follow_links(mut self, yes: bool) -> Self {
        self.follow_links = yes;
        self
    }

    /// Leaves out the entries `prune` is true for, and everything below them (one
    /// pruning function per walk: a second call replaces the first).
    pub fn prune<'b>(self, prune: impl FnMut(&Entry) -> bool + 'b) -> Walk<'b>
    where
        'a: 'b,
    {
        Walk {
            root: self.root,
            follow_links: self.follow_links,
            prune: Some(Box::new(prune)),
            started: self.started,
            levels: self.levels,
            ancestors: self.ancestors,
            pending: self.pending,
        }
    }

    /// Reads directory `dir` (the entry `parent`, `None` for the root) and pushes its
    /// sorted entries as a new level.
    fn enter(&mut self, dir: &Path, parent: Option<&Entry>) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = match parent {
            Some(e) => e.meta.clone(),
            None => {
                std::fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?
            }
        };
        let id = (meta.dev(), meta.ino());
        if self.ancestors.contains(&id) {
            anyhow::bail!(
                "cannot walk {}: a symlink loops back to a directory above it",
                dir.display()
            );
        }
        let rel = parent.map(|e| e.rel.clone()).unwrap_or_default();
        let depth = parent.map_or(1, |e| e.depth + 1);
        let mut entries = Vec::new();
        let rd =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for e in rd {
            let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = e.path();
            let link = e
                .file_type()
                .with_context(|| format!("cannot stat {}", path.display()))?
                .is_symlink();
            let meta = if link && self.follow_links {
                std::fs::metadata(&path)
            } else {
                std::fs::symlink_metadata(&path)
            }
            .with_context(|| format!("cannot stat {}", path.display()))?;
            entries.push(Entry {
                rel: rel.join(e.file_name()),
                path,
                depth,
                meta,
                link,
            });
        }
        // Last first: `pop` gives them in name order.
        entries.sort_by(|a, b| b.file_name().cmp(a.file_name()));
        self.levels.push(entries);
        self.ancestors.push(id);
        Ok(())
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if !self.started {
            self.started = true;
            let root = self.root.clone();
            if let Err(e) = self.enter(&root, None) {
                return Some(Err(e));
            }
        }
        if let Some(d) = self.pending.take() {
            if let Err(e) = self.enter(&d.path, Some(&d)) {
                return Some(Err(e));
            }
        }
        loop {
            let level = self.levels.last_mut()?;
            let Some(e) = level.pop() else {
                self.levels.pop();
                self.ancestors.pop();
                continue;
            };
            if self.prune.as_mut().is_some_and(|prune| prune(&e)) {
                continue;
            }
            if e.is_dir() {
                self.pending = Some(e.clone());
            }
            return Some(Ok(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        for d in ["b/d", "a", "a-c"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        for f in ["z", "a/x", "b/d/y", "a-c/w"] {
            std::fs::write(p.join(f), f).unwrap();
        }
        symlink("b", p.join("l")).unwrap();
        t
    }

    fn names(w: Walk) -> Vec<String> {
        w.map(|e| e.unwrap().rel().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn walks_depth_first_in_name_order() {
        let t = tree();
        assert_eq!(
            names(walk(t.path())),
            ["a", "a/x", "a-c", "a-c/w", "b", "b/d", "b/d/y", "l", "z"]
        );
        let l = walk(t.path()).find(|e| e.as_ref().unwrap().rel() == Path::new("l"));
        let l = l.unwrap().unwrap();
        assert!(l.is_symlink() && !l.is_dir() && l.depth() == 1);
    }

    #[test]
    fn follows_links_when_asked_and_refuses_loops() {
        let t = tree();
        let all = names(walk(t.path()).follow_links(true));
        assert!(
            all.ends_with(&["l".into(), "l/d".into(), "l/d/y".into(), "z".into()]),
            "{all:?}"
        );
        symlink("..", t.path().join("b/d/up")).unwrap();
        let e = walk(t.path())
            .follow_links(true)
            .find_map(|e| e.err())
            .unwrap();
        assert!(e.to_string().contains("loops back"), "{e}");
        // Not following, the link is only an entry.
        assert!(walk(t.path()).all(|e| e.is_ok()));
    }

    #[test]
    fn prunes_subtrees_and_names_the_path_in_errors() {
        let t = tree();
        let w = walk(t.path()).prune(|e| e.rel() == Path::new("b") || e.file_name() == "x");
        assert_eq!(names(w), ["a", "a-c", "a-c/w", "l", "z"]);
        let e = walk(&t.path().join("nope")).next().unwrap().unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn a_directory_is_read_after_it_is_given() {
        let t = tree();
        let locked = t.path().join("b");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let mut seen = Vec::new();
        for e in walk(t.path()) {
            let e = e.unwrap();
            if e.is_dir() {
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            seen.push(e.rel().to_path_buf());
        }
        assert!(seen.contains(&PathBuf::from("b/d/y")), "{seen:?}");
    }

    #[test]
    fn copy_tree_keeps_links_and_read_only_directories() {
        let t = tree();
        std::fs::set_permissions(t.path().join("a"), std::fs::Permissions::from_mode(0o555))
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        copy_tree(t.path(), out.path()).unwrap();
        assert_eq!(
            std::fs::read_link(out.path().join("l")).unwrap(),
            Path::new("b")
        );
        assert_eq!(std::fs::read(out.path().join("a/x")).unwrap(), b"a/x");
        let mode = std::fs::metadata(out.path().join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
        for d in [t.path(), out.path()] {
            std::fs::set_permissions(d.join("a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn a_new_private_file_is_written_once_0600_and_never_replaced() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("secrets.toml");
        assert!(write_new_private(&p, b"first").unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!write_new_private(&p, b"second").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        // No temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secrets.toml")]);
    }
}
