//! Renders a validated [`Cluster`] into the files each node needs: `node.toml` (read
//! by sanforge-init), `corosync.conf`, the Pacemaker CIB, DRBD `.res` files and, for
//! `target = "scst"`, `scst.conf` with ALUA device and target groups (for
//! `target = "lio"` the node.toml's `[lio]` holds targets and ACLs, and the CIB's
//! `ocf:sanforge:alua` instance the LUNs it creates at promote). Public files and secret files are
//! kept apart: everything secret goes under `NODE/secrets/` (with a `.gitignore`), and
//! the public files only reference it by path. Nothing here touches the system; the
//! caller writes the result ([`write()`]) or inspects it in memory ([`render_files`]).
//!
//! Each file's layout is a tera template (`src/ha/templates/`, see `templates`); the
//! modules here prepare its data: `node` (node.toml, sbd), `corosync`, `drbd`, `scst`
//! (the SCST model, printed by [`crate::scsi::scst::print()`]) and `cib`. This file
//! lists a node's files, writes the MANIFEST and packs the secrets initrd.
//!
//! Reads: only its arguments.

mod cib;
mod corosync;
mod drbd;
mod node;
mod scst;
mod templates;

pub use cib::{
    agent_ports, cib_xml, lio_luns, spreads_promoted_roles, PREFERRED_NODE_SCORE, STICKINESS,
};
pub use corosync::corosync_conf;
pub use drbd::{
    drbd_conf, drbd_res, drbd_secret, FENCE_PEER, FENCE_PEER_84, UNFENCE_PEER, UNFENCE_PEER_84,
};
pub use node::{node_toml, requirements, FENCE_AGENTS_DIR, SBD};
pub use scst::{merge_auth, rel_tgt_ids, scst_auth, scst_conf, scst_model};

use super::cluster::{Cluster, Fencing, Node, Secrets, TargetStack};
use crate::contract::{AUTHKEY_PATH, DLM_CONF, SECRETS_DIR};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One rendered file, relative to the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// `NODE/corosync.conf`, `NODE/secrets/authkey`…
    pub path: PathBuf,
    pub data: Vec<u8>,
    /// Where the file goes in the node's image.
    pub install: String,
    pub mode: u32,
    /// True for files under `secrets/` (never to be committed).
    pub secret: bool,
}

/// Everything a render produces: files and warnings for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub files: Vec<RenderedFile>,
    pub warnings: Vec<String>,
}

impl Rendered {
    pub fn get(&self, path: &str) -> Option<&RenderedFile> {
        self.files.iter().find(|f| f.path == Path::new(path))
    }
}

/// Renders every node's files in memory (deterministic: same input, same bytes).
pub fn render_files(cluster: &Cluster, secrets: &Secrets) -> Result<Rendered> {
    let mut files = Vec::new();
    for node in &cluster.nodes {
        files.extend(render_node(cluster, secrets, node)?);
    }
    Ok(Rendered {
        files,
        warnings: cluster.warnings(),
    })
}

/// Renders into `out/NODE/…` and returns the warnings to print. Secret files get mode
/// 0600 in a 0700 directory; existing files are replaced.
pub fn render(cluster: &Cluster, secrets: &Secrets, out: &Path) -> Result<Vec<String>> {
    let r = render_files(cluster, secrets)?;
    write(&r, out)?;
    Ok(r.warnings)
}

/// Writes rendered files under `out`.
pub fn write(r: &Rendered, out: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for f in &r.files {
        let p = out.join(&f.path);
        let dir = crate::util::fs::parent_dir(&p);
        crate::util::fs::create_dir_all(&dir)?;
        if f.secret {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot chmod {}", dir.display()))?;
        }
        crate::util::fs::write_atomic(&p, &f.data)?;
        let mode = if f.secret { 0o600 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot chmod {}", p.display()))?;
    }
    Ok(())
}

/// The default secrets file for a cluster file: `NAME.secrets.toml` beside it.
pub fn default_secrets_path(cluster_file: &Path) -> PathBuf {
    let stem = cluster_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cluster".into());
    cluster_file.with_file_name(format!("{stem}.secrets.toml"))
}

fn file(node: &str, rel: &str, data: impl Into<Vec<u8>>, install: &str, mode: u32) -> RenderedFile {
    RenderedFile {
        path: Path::new(node).join(rel),
        data: data.into(),
        install: install.to_string(),
        mode,
        secret: rel.starts_with("secrets/"),
    }
}

/// Every file of one node: the public ones, the secret ones they reference by path,
/// the MANIFEST of both, and the secrets as a second initrd.
fn render_node(c: &Cluster, s: &Secrets, node: &Node) -> Result<Vec<RenderedFile>> {
    let n = node.name.as_str();
    let mut v = public_files(c, s, node)?;
    v.extend(secret_files(c, s, node)?);
    v.push(file(n, "MANIFEST", manifest(&v, n)?, "", 0o644));
    let initrd = secrets_initrd(&v)?;
    v.push(file(n, "secrets/initrd.cpio", initrd, "", 0o600));
    Ok(v)
}

/// node.toml, corosync.conf, the CIB, the DRBD configs, scst.conf and sbd's settings.
fn public_files(c: &Cluster, s: &Secrets, node: &Node) -> Result<Vec<RenderedFile>> {
    let n = node.name.as_str();
    // The node config names CHAP accounts (`chap = { secret = "NAME" }`); their values
    // travel in the secrets initrd (`secrets/chap.toml`), so node.toml stays public.
    let mut v = vec![file(
        n,
        "node.toml",
        node_toml(c, node)?,
        "/etc/sanforge/node.toml",
        0o644,
    )];
    v.push(file(
        n,
        "corosync.conf",
        corosync_conf(c)?,
        "/etc/corosync/corosync.conf",
        0o644,
    ));
    v.push(file(
        n,
        "cib.xml",
        cib_xml(c, s)?,
        "/etc/sanforge/cib.xml",
        0o644,
    ));
    v.push(file(
        n,
        "drbd/drbd.conf",
        drbd_conf()?,
        "/etc/drbd.conf",
        0o644,
    ));
    for d in &c.drbd {
        v.push(file(
            n,
            &format!("drbd/{}.res", d.name),
            drbd_res(c, &d.name)?,
            &format!("/etc/drbd.d/{}.res", d.name),
            0o644,
        ));
    }
    if c.target == TargetStack::Scst {
        // Beside node.toml under the name its `[scst] conf` gives (the build reads
        // it from there for the node config it boots with).
        let name = crate::contract::node_scst_conf(n);
        v.push(file(
            n,
            &name,
            scst_conf(c, node)?,
            &crate::contract::conf_path(&name).to_string_lossy(),
            0o644,
        ));
    }
    if c.exports.iter().any(|e| e.cluster_mode) {
        v.push(file(n, "dlm.conf", dlm_conf(c)?, DLM_CONF, 0o644));
    }
    if matches!(c.fencing, Fencing::Sbd { .. }) {
        v.push(file(n, "sbd", node::sbd_env(c)?, "/etc/default/sbd", 0o644));
    }
    Ok(v)
}

/// dlm_controld's `dlm.conf` for SCST `cluster_mode` (the template says why TCP).
fn dlm_conf(c: &Cluster) -> Result<String> {
    templates::render(
        "dlm.conf",
        &serde_json::json!({ "cluster": c.name, "fencing": c.fencing != Fencing::Off }),
    )
}

/// The secrets, referenced by path from the public files: the `.gitignore`, the
/// Corosync authkey, the DRBD shared secret, SCST's CHAP users, fence passwords.
fn secret_files(c: &Cluster, s: &Secrets, node: &Node) -> Result<Vec<RenderedFile>> {
    let n = node.name.as_str();
    let mut v = vec![file(
        n,
        "secrets/.gitignore",
        templates::render("secrets.gitignore", &serde_json::json!({}))?,
        "",
        0o600,
    )];
    v.push(file(n, "secrets/authkey", s.authkey(), AUTHKEY_PATH, 0o400));
    v.push(file(
        n,
        "secrets/drbd-secret.conf",
        drbd_secret(s)?,
        &format!("{SECRETS_DIR}/drbd-secret.conf"),
        0o600,
    ));
    let auth = scst_auth(c, s, node);
    if c.target == TargetStack::Scst && !auth.drivers.is_empty() {
        v.push(file(
            n,
            "secrets/scst-auth.conf",
            crate::scsi::scst::print(&auth),
            &format!("{SECRETS_DIR}/scst-auth.conf"),
            0o600,
        ));
    }
    if c.target == TargetStack::Lio && c.initiators.iter().any(|i| i.chap) {
        let mut chap = crate::config::secrets::NodeSecrets::default();
        for i in c.initiators.iter().filter(|i| i.chap) {
            if let Some(cs) = s.chap.get(&i.name) {
                chap.chap.insert(
                    i.name.clone(),
                    crate::config::secrets::ChapSecret {
                        user: cs.user.clone(),
                        password: cs.password.clone(),
                    },
                );
            }
        }
        v.push(file(
            n,
            "secrets/chap.toml",
            chap.to_toml()?,
            crate::contract::CHAP_SECRETS,
            0o600,
        ));
    }
    #[derive(Serialize)]
    struct Password<'a> {
        password: &'a str,
    }
    for (fenced, pw) in &s.fence_passwords {
        v.push(file(
            n,
            &format!("secrets/fence-{fenced}.pw"),
            templates::render("fence.pw", &Password { password: pw })?,
            &format!("{SECRETS_DIR}/fence-{fenced}.pw"),
            0o600,
        ));
    }
    Ok(v)
}

/// The MANIFEST: each installed file of node `n` with its path in the image and mode.
fn manifest(files: &[RenderedFile], n: &str) -> Result<String> {
    #[derive(Serialize)]
    struct Entry {
        path: String,
        install: String,
        mode: String,
    }
    #[derive(Serialize)]
    struct Manifest {
        files: Vec<Entry>,
    }
    let files = files
        .iter()
        .filter(|f| !f.install.is_empty())
        .map(|f| Entry {
            path: f
                .path
                .strip_prefix(n)
                .unwrap_or(&f.path)
                .display()
                .to_string(),
            install: f.install.clone(),
            mode: format!("{:04o}", f.mode),
        })
        .collect();
    templates::render("MANIFEST", &Manifest { files })
}

/// The node's secret files at their install paths as an uncompressed newc archive.
/// The image itself never holds secrets: this archive is loaded as a second initrd
/// (iPXE `initrd secrets.cpio`, or appended to the initramfs file padded with zeros to
/// a multiple of 4 bytes: the kernel unpacks concatenated archives in order), so one
/// public image serves every node.
fn secrets_initrd(files: &[RenderedFile]) -> Result<Vec<u8>> {
    use crate::image::cpio::{Archive, Entry};
    let mut a = Archive::new();
    for f in files.iter().filter(|f| f.secret && !f.install.is_empty()) {
        a.add(Entry::data(f.install.clone(), f.data.clone(), f.mode));
    }
    // The kernel applies a directory entry's mode to an existing directory too: only
    // the secrets directory itself is closed; /etc and the rest keep 0755.
    a.add(Entry::dir(SECRETS_DIR, 0o700));
    a.ensure_parents();
    let mut out = Vec::new();
    a.write(&mut out, 0)
        .context("cannot write the secrets initrd")?;
    Ok(out)
}
