//! `sanforge cluster check / render / secrets`: load and validate a `cluster.toml`,
//! render every node's files, write a fresh secrets file. The model is
//! [`crate::ha::cluster`], the renderers [`crate::ha::render`].
//!
//! A render is all or nothing: every file is written into a fresh directory beside
//! `--out`, which then replaces `--out` as a whole (so a node gone from the cluster
//! file disappears, and a failure half-way leaves the previous render untouched).
//! Only a previous render is ever replaced: an existing `--out` that holds anything
//! else is refused.

use crate::ha::cluster::{self, Cluster, Secrets};
use crate::ha::render;
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// `sanforge cluster render FILE --out DIR [--secrets FILE]`.
pub fn render(file: &Path, out: &Path, secrets: Option<PathBuf>) -> Result<()> {
    let cluster = Cluster::load(file)?;
    let sp = secrets.unwrap_or_else(|| render::default_secrets_path(file));
    let s = Secrets::load(&sp)?;
    s.check_for(&cluster, &sp)?;
    let rendered = render::render_files(&cluster, &s)?;
    write_all_or_nothing(&rendered, out)?;
    for w in &rendered.warnings {
        eprintln!("{w}");
    }
    println!(
        "rendered {} nodes into {} (secrets under NODE/secrets/: do not commit)",
        cluster.nodes.len(),
        out.display()
    );
    Ok(())
}

/// The first line of every rendered `NODE/MANIFEST`: how a previous render is known.
const MANIFEST_HEAD: &str = "# rendered file -> path in the image";

/// True when `dir` is absent, empty, or holds only node directories of an earlier
/// render (each with its `MANIFEST`). Err: why it is not a render.
fn check_render_dir(dir: &Path) -> Result<()> {
    if dir.file_name().is_none_or(|n| n == "..") {
        bail!(
            "--out {}: expected a path that ends in a directory name",
            dir.display()
        );
    }
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", dir.display())),
    };
    if !meta.is_dir() {
        bail!(
            "--out {} exists and is not a directory: refusing to replace it",
            dir.display()
        );
    }
    let mut foreign = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let is_node = std::fs::read_to_string(e.path().join("MANIFEST"))
            .is_ok_and(|t| t.starts_with(MANIFEST_HEAD));
        if !is_node {
            foreign.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort();
    foreign.truncate(5);
    bail!(
        "--out {} exists and is not a previous `sanforge cluster render` output (it holds {}, which no render wrote): refusing to replace its contents; choose another --out, or remove it yourself",
        dir.display(),
        foreign.join(", ")
    )
}

/// Writes `r` into a fresh directory beside `out` and swaps it into place: `out`
/// holds the previous render or this one, never a mix, and nodes that are not in `r`
/// are gone. Refuses an `out` that is not a previous render.
pub fn write_all_or_nothing(r: &render::Rendered, out: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let out =
        std::path::absolute(out).with_context(|| format!("cannot resolve {}", out.display()))?;
    check_render_dir(&out)?;
    let parent = ufs::parent_dir(&out);
    ufs::create_dir_all(&parent)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fresh = tempfile::Builder::new()
        .prefix(&format!(".{name}.render-"))
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })?;
    render::write(r, fresh.path())?;
    std::fs::set_permissions(fresh.path(), std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot chmod {}", fresh.path().display()))?;
    // out → old, fresh → out, remove old; on a failure the previous render stays.
    let old = tempfile::Builder::new()
        .prefix(&format!(".{name}.old-"))
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in {}",
                parent.display()
            )
        })?;
    let had_old = out.exists();
    if had_old {
        ufs::rename(&out, old.path())?;
    }
    if let Err(e) = ufs::rename(fresh.path(), &out) {
        if had_old {
            let _ = std::fs::rename(old.path(), &out);
        }
        return Err(e);
    }
    // `fresh` is now `out`: nothing left to delete there.
    let _ = fresh.keep();
    drop(old);
    Ok(())
}

/// `sanforge cluster check FILE`.
pub fn check(file: &Path) -> Result<()> {
    let cluster = Cluster::load(file)?;
    for w in cluster.warnings() {
        eprintln!("{w}");
    }
    println!(
        "{}: OK (cluster {}: {} nodes, {} DRBD resources, {} exports)",
        file.display(),
        cluster.name,
        cluster.nodes.len(),
        cluster.drbd.len(),
        cluster.exports.len()
    );
    Ok(())
}

/// `sanforge cluster secrets --out FILE [--cluster FILE]`.
pub fn secrets(out: &Path, cluster_file: Option<&Path>) -> Result<()> {
    let c = cluster_file.map(Cluster::load).transpose()?;
    let s = cluster::generate_secrets(c.as_ref())?;
    cluster::write_secrets(out, &s)?;
    println!("wrote {} (mode 0600); keep it out of git", out.display());
    Ok(())
}
