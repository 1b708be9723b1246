//! `sanforge fetch --import`: files and trees brought into the cache by hand, each
//! printed with its sha256 or tree hash.

use super::{is_tar_archive, stage_archive, stage_dir, Staged};
use crate::engine::cache::Cache;
use crate::util::cmd::Log;
use crate::util::hash::TreeHash;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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
pub(super) enum StagedImport {
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

pub(super) fn stage_import(cache: &Cache, p: &Path, log: &Log) -> Result<Vec<StagedImport>> {
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
