//! What the safety tests (issue #10) share: a fake project beside an `outside/`
//! directory that hostile inputs aim at, and snapshots that prove nothing changed.

use super::project::Project;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `parent/project-*` (a fake project, `Project::new_in`) and `parent/outside` with
/// `victim` (a file), `victim-dir/{keep,sub/keep}` and `node.toml` (a valid node
/// config). From the project root, `../outside` is the outside directory.
pub struct World {
    pub parent: tempfile::TempDir,
    pub project: Project,
    pub outside: PathBuf,
}

impl World {
    pub fn new() -> World {
        let parent = tempfile::tempdir().unwrap();
        let project = Project::new_in(parent.path());
        let outside = parent.path().join("outside");
        std::fs::create_dir_all(outside.join("victim-dir/sub")).unwrap();
        std::fs::write(outside.join("victim"), "precious host file\n").unwrap();
        std::fs::write(outside.join("victim-dir/keep"), "keep\n").unwrap();
        std::fs::write(outside.join("victim-dir/sub/keep"), "keep\n").unwrap();
        std::fs::write(outside.join("node.toml"), super::project::NODE).unwrap();
        // The cache's own empty directories, as any first use creates them.
        for d in ["blobs/sha256", "tmp", "stages"] {
            std::fs::create_dir_all(project.cache.join(d)).unwrap();
        }
        World {
            parent,
            project,
            outside,
        }
    }

    pub fn root(&self) -> &Path {
        self.project.root()
    }

    /// Everything outside the project and the project itself (without the cache's
    /// stage entries and temporary files).
    pub fn snapshot(&self) -> (Snapshot, Snapshot) {
        (
            snapshot(&self.outside, &[]),
            snapshot(self.root(), &["cache/stages", "cache/tmp"]),
        )
    }

    /// Panics (naming every difference) unless nothing changed since `before`.
    pub fn assert_unchanged(&self, before: &(Snapshot, Snapshot), what: &str) {
        let after = self.snapshot();
        let d = diff(&before.0, &after.0);
        assert!(d.is_empty(), "{what}: wrote outside the project: {d:?}");
        let d = diff(&before.1, &after.1);
        assert!(d.is_empty(), "{what}: changed the project: {d:?}");
    }

    /// Panics unless nothing outside the project changed since `before`.
    pub fn assert_outside_unchanged(&self, before: &(Snapshot, Snapshot), what: &str) {
        let d = diff(&before.0, &snapshot(&self.outside, &[]));
        assert!(d.is_empty(), "{what}: wrote outside the project: {d:?}");
    }

    /// Replaces `old` (which must be there) in the recipe.
    pub fn sub(&self, old: &str, new: &str) {
        let p = self.project.recipe();
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(t.contains(old), "`{old}` not in the recipe:\n{t}");
        std::fs::write(&p, t.replacen(old, new, 1)).unwrap();
    }

    /// The outside directory's path as text (for recipes).
    pub fn out_s(&self) -> String {
        self.outside.display().to_string()
    }
}

/// Path → kind, mode and content hash (or link target).
pub type Snapshot = BTreeMap<String, String>;

/// Every entry under `dir` (symlinks not followed, fifos not read), except paths
/// under one of `skip`.
pub fn snapshot(dir: &Path, skip: &[&str]) -> Snapshot {
    fn walk(root: &Path, dir: &Path, skip: &[&str], out: &mut Snapshot) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            if skip
                .iter()
                .any(|s| rel == *s || rel.starts_with(&format!("{s}/")))
            {
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            use std::os::unix::fs::PermissionsExt;
            let mode = m.permissions().mode();
            let desc = if m.file_type().is_symlink() {
                format!("link {:?}", std::fs::read_link(&p).unwrap_or_default())
            } else if m.is_dir() {
                walk(root, &p, skip, out);
                format!("dir {mode:o}")
            } else if m.is_file() {
                let data = std::fs::read(&p).unwrap_or_default();
                format!(
                    "file {mode:o} {}",
                    sanforge::util::hash::sha256_bytes(&data)
                )
            } else {
                format!("special {mode:o}")
            };
            out.insert(rel, desc);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// What was removed, changed or added between two snapshots.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => d.push(format!("removed {k}")),
            Some(w) if w != v => d.push(format!("changed {k}")),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        d.push(format!("added {k}"));
    }
    d
}
