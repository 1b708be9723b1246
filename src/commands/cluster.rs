//! `sanforge cluster check / render / secrets`: load and validate a `cluster.toml`,
//! render every node's files, write a fresh secrets file. The model is
//! [`crate::ha::cluster`], the renderers [`crate::ha::render`].

use crate::ha::cluster::{self, Cluster, Secrets};
use crate::ha::render;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// `sanforge cluster render FILE --out DIR [--secrets FILE]`.
pub fn render(file: &Path, out: &Path, secrets: Option<PathBuf>) -> Result<()> {
    let cluster = Cluster::load(file)?;
    let sp = secrets.unwrap_or_else(|| render::default_secrets_path(file));
    let s = Secrets::load(&sp)?;
    s.check_for(&cluster, &sp)?;
    let warnings = render::render(&cluster, &s, out)?;
    for w in &warnings {
        eprintln!("{w}");
    }
    println!(
        "rendered {} nodes into {} (secrets under NODE/secrets/: do not commit)",
        cluster.nodes.len(),
        out.display()
    );
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
