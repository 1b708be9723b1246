//! Renders a validated [`Cluster`] into the files each node needs: `node.toml` (read
//! by sanforge-init), `corosync.conf`, the Pacemaker CIB, DRBD `.res` files and, for
//! `target = "scst"`, `scst.conf` with ALUA device and target groups (for
//! `target = "lio"` the node.toml's `[lio]` holds targets and ACLs, and the CIB's
//! `ocf:sanforge:alua` instance the LUNs it creates at promote). Public files and secret files are
//! kept apart: everything secret goes under `NODE/secrets/` (with a `.gitignore`), and
//! the public files only reference it by path. Nothing here touches the system; the
//! caller writes the result ([`write`]) or inspects it in memory ([`render_files`]).
//!
//! Reads: only its arguments.

use super::cluster::{Cluster, DrbdVersion, Fencing, Node, Quorum, Secrets, TargetStack};
use crate::config::node::{
    Acl, Chap, Ha, Interface, IscsiTarget, Lio, Modules, Network, NodeConfig, Service, Watchdog,
    WatchdogMode,
};
use crate::contract::{AUTHKEY_PATH, CHAP_SECRETS, SECRETS_DIR};
use crate::scsi::scst::{
    self, Attr, Device, DeviceGroup, DgDevice, Handler, IniGroup, Initiator, Lun, ScstConf, Target,
    TargetDriver, TargetGroup, TgTarget,
};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The DRBD fence-peer / unfence-peer handlers shipped by drbd-utils.
pub const FENCE_PEER: &str = "/usr/lib/drbd/crm-fence-peer.9.sh";
pub const UNFENCE_PEER: &str = "/usr/lib/drbd/crm-unfence-peer.9.sh";
/// The DRBD 8.4 versions of the handlers (unfence runs after a resync).
pub const FENCE_PEER_84: &str = "/usr/lib/drbd/crm-fence-peer.sh";
pub const UNFENCE_PEER_84: &str = "/usr/lib/drbd/crm-unfence-peer.sh";
/// Pacemaker resource stickiness: above any location preference, so a recovered node
/// does not pull resources back (no automatic failback; a switchback is an operator's
/// decision, taken at a quiet hour).
pub const STICKINESS: u32 = 1000;

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

fn file(node: &str, rel: &str, data: impl Into<Vec<u8>>, install: &str, mode: u32) -> RenderedFile {
    RenderedFile {
        path: Path::new(node).join(rel),
        data: data.into(),
        install: install.to_string(),
        mode,
        secret: rel.starts_with("secrets/"),
    }
}

fn render_node(c: &Cluster, s: &Secrets, node: &Node) -> Result<Vec<RenderedFile>> {
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
        corosync_conf(c),
        "/etc/corosync/corosync.conf",
        0o644,
    ));
    v.push(file(
        n,
        "cib.xml",
        cib_xml(c, s),
        "/etc/sanforge/cib.xml",
        0o644,
    ));
    v.push(file(
        n,
        "drbd/drbd.conf",
        drbd_conf(),
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
        v.push(file(
            n,
            "scst.conf",
            scst_conf(c, node)?,
            "/etc/scst.conf",
            0o644,
        ));
    }
    if matches!(c.fencing, Fencing::Sbd { .. }) {
        v.push(file(n, "sbd", sbd_env(c), "/etc/default/sbd", 0o644));
    }

    // Secrets, referenced by path from the public files above.
    v.push(file(
        n,
        "secrets/.gitignore",
        "# secrets: never commit\n*\n",
        "",
        0o600,
    ));
    v.push(file(n, "secrets/authkey", s.authkey(), AUTHKEY_PATH, 0o400));
    v.push(file(
        n,
        "secrets/drbd-secret.conf",
        drbd_secret(s),
        &format!("{SECRETS_DIR}/drbd-secret.conf"),
        0o600,
    ));
    let auth = scst_auth(c, s, node);
    if c.target == TargetStack::Scst && !auth.drivers.is_empty() {
        v.push(file(
            n,
            "secrets/scst-auth.conf",
            scst::print(&auth),
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
            CHAP_SECRETS,
            0o600,
        ));
    }
    for (fenced, pw) in &s.fence_passwords {
        v.push(file(
            n,
            &format!("secrets/fence-{fenced}.pw"),
            format!("{pw}\n"),
            &format!("{SECRETS_DIR}/fence-{fenced}.pw"),
            0o600,
        ));
    }

    let mut manifest =
        String::from("# rendered file -> path in the image, mode (secrets/ files: never commit)\n");
    for f in v.iter().filter(|f| !f.install.is_empty()) {
        let rel = f.path.strip_prefix(n).unwrap_or(&f.path);
        let _ = writeln!(
            manifest,
            "{} -> {} {:04o}",
            rel.display(),
            f.install,
            f.mode
        );
    }
    let _ = writeln!(
        manifest,
        "secrets/initrd.cpio: the secret files above as a cpio archive, for a second initrd"
    );
    v.push(file(n, "MANIFEST", manifest, "", 0o644));
    let initrd = secrets_initrd(&v)?;
    v.push(file(n, "secrets/initrd.cpio", initrd, "", 0o600));
    Ok(v)
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

// ---------------------------------------------------------------------------------
// node.toml
// ---------------------------------------------------------------------------------

/// The node config sanforge-init reads: hostname, modules, interfaces with this node's
/// addresses, and corosync/pacemaker as supervised services (links come up before
/// services, so the order is links → [sbd] → corosync → pacemaker). DRBD, SCST targets
/// and VIPs are Pacemaker's: the init does not start them.
///
/// With `target = "lio"` the node gets a `[lio]` section instead: its iSCSI targets
/// (TPG 1, the node's portals) with an ACL per iSCSI initiator and no backstore or LUN
/// (see [`TargetStack`]); a `chap = true` initiator's ACL names its account
/// (`chap = { secret = "INITIATOR" }`), whose value is in `secrets/chap.toml`.
pub fn node_toml(c: &Cluster, node: &Node) -> Result<String> {
    if c.target == TargetStack::Lio {
        return lio_node_toml(c, node);
    }
    let mut load: Vec<String> = vec![
        "drbd".into(),
        "drbd_transport_tcp".into(),
        "scst".into(),
        "scst_vdisk".into(),
    ];
    let mut params = BTreeMap::new();
    if c.exports.iter().any(|e| e.cluster_mode) {
        load.insert(0, "dlm".into());
    }
    if !node.iscsi_targets.is_empty() {
        load.push("iscsi_scst".into());
    }
    if !node.fc_targets.is_empty() {
        load.push("qla2xxx_scst".into());
        load.push("qla2x00tgt".into());
        params.insert(
            "qla2xxx_scst".to_string(),
            "qlini_mode=disabled".to_string(),
        );
    }
    let mut services = sbd_services(c);
    // Corosync and Pacemaker are not plain services: the init starts them in the
    // cluster order of its `[ha]` section (src/init/ha.rs), after sbd (a service).
    let ha = ha_section(c, c.exports.iter().any(|e| e.cluster_mode));
    if !node.iscsi_targets.is_empty() {
        services.push(Service {
            name: "iscsi-scstd".into(),
            argv: vec!["/usr/sbin/iscsi-scstd".into(), "-f".into()],
            restart: Default::default(),
            env: BTreeMap::new(),
        });
    }
    let cfg = NodeConfig {
        hostname: node.name.clone(),
        sysctl: BTreeMap::new(),
        modules: Modules {
            load,
            params,
            blacklist: Vec::new(),
        },
        network: Network {
            interfaces: node
                .interfaces
                .iter()
                .map(|i| Interface {
                    name: i.name.clone(),
                    addresses: i.addresses.clone(),
                    mtu: i.mtu,
                    mac: i.mac.clone(),
                })
                .collect(),
            routes: Vec::new(),
        },
        lio: None,
        ha: Some(ha),
        services,
        scst: None,
    };
    finish_node_toml(c, node, &cfg)
}

/// sbd as a plain service (started before the cluster) when fencing is sbd.
fn sbd_services(c: &Cluster) -> Vec<Service> {
    let mut services = Vec::new();
    if let Fencing::Sbd { .. } = &c.fencing {
        services.push(Service {
            name: "sbd".into(),
            argv: vec!["/usr/sbin/sbd".into(), "watch".into()],
            restart: Default::default(),
            env: sbd_vars(c).into_iter().collect(),
        });
    }
    services
}

/// The node's `[ha]` section: on, with sbd owning the watchdog when fencing is sbd.
fn ha_section(c: &Cluster, cluster_mode: bool) -> Ha {
    Ha {
        enabled: true,
        cluster_mode,
        watchdog: match &c.fencing {
            Fencing::Sbd { watchdog, .. } => Some(Watchdog {
                device: watchdog.clone(),
                mode: WatchdogMode::Sbd,
                ..Watchdog::default()
            }),
            _ => None,
        },
        ..Ha::default()
    }
}

fn node_interfaces(node: &Node) -> Network {
    Network {
        interfaces: node
            .interfaces
            .iter()
            .map(|i| Interface {
                name: i.name.clone(),
                addresses: i.addresses.clone(),
                mtu: i.mtu,
                mac: i.mac.clone(),
            })
            .collect(),
        routes: Vec::new(),
    }
}

fn finish_node_toml(c: &Cluster, node: &Node, cfg: &NodeConfig) -> Result<String> {
    let body = toml::to_string(cfg).context("cannot serialize node.toml")?;
    let text = format!("# generated by `sanforge cluster render` for node {} of cluster {}; edit cluster.toml instead\n{body}", node.name, c.name);
    NodeConfig::parse(Path::new("node.toml"), &text)
        .map_err(|e| anyhow::anyhow!("rendered node.toml for {} is invalid: {e}", node.name))?;
    Ok(text)
}

/// The LIO node config: modules (DRBD, the LIO core, iblock and the iSCSI fabric),
/// `[ha]` without SCST's `cluster_mode`, and `[lio]` with the node's targets, portals
/// and initiator ACLs but no backstore: `ocf:sanforge:alua` creates the iblock
/// backstores on `/dev/drbdN` and maps the LUNs at promote, on the Promoted node only.
fn lio_node_toml(c: &Cluster, node: &Node) -> Result<String> {
    // The LIO images use the distribution kernel's DRBD (8.4, no transport modules).
    let load: Vec<String> = [
        "drbd",
        "target_core_mod",
        "target_core_iblock",
        "iscsi_target_mod",
    ]
    .iter()
    .map(|m| m.to_string())
    .collect();
    let services = sbd_services(c);
    let ha = ha_section(c, false);
    let acls: Vec<Acl> = c
        .initiators
        .iter()
        .filter_map(|i| {
            let iqn = i.iqn.clone()?;
            let chap = i.chap.then(|| Chap {
                secret: Some(i.name.clone()),
                ..Chap::default()
            });
            Some(Acl {
                initiator: iqn,
                mapped_luns: Vec::new(),
                chap,
            })
        })
        .collect();
    let lio = Lio {
        backstores: Vec::new(),
        iscsi: node
            .iscsi_targets
            .iter()
            .map(|t| IscsiTarget {
                iqn: t.clone(),
                tpg: 1,
                portals: node.iscsi_portals.clone(),
                luns: Vec::new(),
                acls: acls.clone(),
            })
            .collect(),
    };
    let cfg = NodeConfig {
        hostname: node.name.clone(),
        sysctl: BTreeMap::new(),
        modules: Modules {
            load,
            params: BTreeMap::new(),
            blacklist: Vec::new(),
        },
        network: node_interfaces(node),
        lio: Some(lio),
        ha: Some(ha),
        services,
        scst: None,
    };
    finish_node_toml(c, node, &cfg)
}

/// `lio_luns` of the `ocf:sanforge:alua` instance for DRBD resource `drbd`:
/// `NAME=/dev/drbdMINOR@LUN`, blank separated, in export order.
pub fn lio_luns(c: &Cluster, drbd: &str) -> String {
    c.exports
        .iter()
        .filter(|e| e.drbd == drbd)
        .filter_map(|e| {
            let minor = c.drbd(&e.drbd)?.minor;
            Some(format!("{}=/dev/drbd{minor}@{}", e.name, e.lun))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The agent's `ports` on `node`: `iscsi/IQN/tpgt_1` (LIO) or `iscsi/IQN` and
/// `qla2x00t/WWPN` (SCST).
pub fn agent_ports(c: &Cluster, node: &Node) -> String {
    match c.target {
        TargetStack::Lio => node
            .iscsi_targets
            .iter()
            .map(|t| format!("iscsi/{t}/tpgt_1"))
            .collect::<Vec<_>>()
            .join(" "),
        TargetStack::Scst => node
            .iscsi_targets
            .iter()
            .map(|t| format!("iscsi/{t}"))
            .chain(node.fc_targets.iter().map(|w| format!("qla2x00t/{w}")))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

// ---------------------------------------------------------------------------------
// corosync.conf
// ---------------------------------------------------------------------------------

/// Corosync 3 (`totem { version: 2 }` is the only config-format version corosync 3
/// accepts): knet, two links per node, crypto on, key read from [`AUTHKEY_PATH`].
/// knet's crypto model is OpenSSL: its plugin links libcrypto directly (the image's
/// ELF closure sees it), while the NSS model needs an NSS database and dlopen()s the
/// softoken at run time.
pub fn corosync_conf(c: &Cluster) -> String {
    let cs = &c.corosync;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# generated by sanforge from cluster.toml; identical on every node"
    );
    let _ = writeln!(s, "totem {{\n    version: 2\n    cluster_name: {}\n    transport: {}\n    link_mode: {}\n    token: {}", c.name, cs.transport, cs.link_mode, cs.token);
    let _ = writeln!(
        s,
        "    crypto_model: openssl\n    crypto_cipher: {}\n    crypto_hash: {}\n    keyfile: {AUTHKEY_PATH}",
        cs.crypto_cipher, cs.crypto_hash
    );
    let _ = writeln!(s, "    interface {{\n        linknumber: 0\n    }}\n    interface {{\n        linknumber: 1\n    }}\n}}\n");
    s.push_str("nodelist {\n");
    for n in &c.nodes {
        let _ = writeln!(s, "    node {{\n        name: {}\n        nodeid: {}\n        ring0_addr: {}\n        ring1_addr: {}\n    }}", n.name, n.node_id, n.links[0], n.links[1]);
    }
    s.push_str("}\n\nquorum {\n    provider: corosync_votequorum\n");
    match &c.quorum {
        Quorum::TwoNode => s.push_str("    two_node: 1\n"),
        Quorum::Device { host, algorithm } => {
            let _ = writeln!(s, "    device {{\n        model: net\n        votes: 1\n        net {{\n            host: {host}\n            algorithm: {algorithm}\n        }}\n    }}");
        }
    }
    s.push_str("}\n\nlogging {\n    to_stderr: yes\n    to_syslog: yes\n    to_logfile: no\n    timestamp: on\n}\n");
    s
}

// ---------------------------------------------------------------------------------
// DRBD
// ---------------------------------------------------------------------------------

/// `/etc/drbd.conf`: the secret include first (its `common` section applies to every
/// resource), then the resources.
pub fn drbd_conf() -> String {
    format!("# generated by sanforge; the shared secret is in a separate file (not in git)\ninclude \"{SECRETS_DIR}/drbd-secret.conf\";\ninclude \"/etc/drbd.d/*.res\";\n")
}

/// The secret part of the DRBD config: peer authentication for every resource.
pub fn drbd_secret(s: &Secrets) -> String {
    format!("common {{\n    net {{\n        cram-hmac-alg sha256;\n        shared-secret \"{}\";\n    }}\n}}\n", s.drbd_shared_secret)
}

/// One DRBD 9 resource: protocol C, fencing policy with the Pacemaker handlers, and
/// `auto-promote no` (Pacemaker alone promotes).
pub fn drbd_res(c: &Cluster, name: &str) -> Result<String> {
    let Some(d) = c.drbd(name) else {
        bail!("unknown drbd resource `{name}`")
    };
    let fencing = d.fencing.as_deref().unwrap_or("resource-and-stonith");
    if c.drbd_version == DrbdVersion::V84 {
        return drbd_res_84(c, d, fencing);
    }
    let mut s = String::new();
    let _ = writeln!(s, "# generated by sanforge from cluster.toml");
    let _ = writeln!(s, "resource \"{}\" {{", d.name);
    let _ = writeln!(s, "    options {{\n        auto-promote no;\n    }}");
    let _ = writeln!(s, "    net {{\n        protocol {};\n        fencing {fencing};\n        after-sb-0pri discard-zero-changes;\n        after-sb-1pri discard-secondary;\n        after-sb-2pri disconnect;\n    }}", d.protocol);
    let _ = writeln!(s, "    handlers {{\n        fence-peer \"{FENCE_PEER}\";\n        unfence-peer \"{UNFENCE_PEER}\";\n    }}");
    for n in &c.nodes {
        let Some(dn) = d.nodes.get(&n.name) else {
            bail!("drbd `{}` has no entry for node `{}`", d.name, n.name)
        };
        let _ = writeln!(
            s,
            "    on \"{}\" {{\n        node-id {};\n        address {}:{};\n        volume 0 {{\n            device minor {};\n            disk \"{}\";\n            meta-disk internal;\n        }}\n    }}",
            n.name,
            n.node_id - 1,
            dn.address,
            d.port,
            d.minor,
            dn.disk
        );
    }
    let hosts: Vec<String> = c.nodes.iter().map(|n| format!("\"{}\"", n.name)).collect();
    let _ = writeln!(
        s,
        "    connection-mesh {{\n        hosts {};\n    }}\n}}",
        hosts.join(" ")
    );
    Ok(s)
}

/// The DRBD 8.4 form of [`drbd_res`]: no node ids, mesh or `auto-promote` (8.4 never
/// promotes on open), `fencing` in the `disk` section, the 8.4 handlers.
fn drbd_res_84(c: &Cluster, d: &super::cluster::DrbdConf, fencing: &str) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# generated by sanforge from cluster.toml (DRBD 8.4 syntax)"
    );
    let _ = writeln!(s, "resource \"{}\" {{", d.name);
    let _ = writeln!(s, "    disk {{\n        fencing {fencing};\n    }}");
    let _ = writeln!(s, "    net {{\n        protocol {};\n        after-sb-0pri discard-zero-changes;\n        after-sb-1pri discard-secondary;\n        after-sb-2pri disconnect;\n    }}", d.protocol);
    let _ = writeln!(s, "    handlers {{\n        fence-peer \"{FENCE_PEER_84}\";\n        after-resync-target \"{UNFENCE_PEER_84}\";\n    }}");
    for n in &c.nodes {
        let Some(dn) = d.nodes.get(&n.name) else {
            bail!("drbd `{}` has no entry for node `{}`", d.name, n.name)
        };
        let _ = writeln!(
            s,
            "    on \"{}\" {{\n        address {}:{};\n        volume 0 {{\n            device minor {};\n            disk \"{}\";\n            meta-disk internal;\n        }}\n    }}",
            n.name, dn.address, d.port, d.minor, dn.disk
        );
    }
    s.push_str("}\n");
    Ok(s)
}

// ---------------------------------------------------------------------------------
// SCST
// ---------------------------------------------------------------------------------

/// Relative target port ids, unique across the cluster: every node's iSCSI then FC
/// ports, in node order, from 1.
pub fn rel_tgt_ids(c: &Cluster) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    let mut id = 1;
    for n in &c.nodes {
        for t in n.iscsi_targets.iter().chain(&n.fc_targets) {
            out.push((n.name.clone(), t.clone(), id));
            id += 1;
        }
    }
    out
}

/// The node's `scst.conf`. Devices are created inactive (`active 0`: a DRBD Secondary
/// refuses to be opened) and target ports disabled; every target port group starts in
/// the unpromoted state. The `ocf:sanforge:alua` agent enables the ports at start and
/// at promote activates the devices and sets the local group to the promoted state.
/// Only the node's own ports are in `TARGET_DRIVER` blocks; the peer's ports appear in
/// their target group with their `rel_tgt_id`.
pub fn scst_conf(c: &Cluster, node: &Node) -> Result<String> {
    let conf = scst_model(c, node);
    let errors: Vec<String> = scst::validate(&conf)
        .into_iter()
        .filter(|d| d.severity == scst::Severity::Error)
        .map(|d| d.message)
        .collect();
    if !errors.is_empty() {
        bail!(
            "rendered scst.conf for {} is invalid: {}",
            node.name,
            errors.join("; ")
        );
    }
    Ok(format!(
        "# generated by sanforge for node {}; CHAP secrets are in {SECRETS_DIR}/scst-auth.conf\n{}",
        node.name,
        scst::print(&conf)
    ))
}

/// The SCST model behind [`scst_conf`].
pub fn scst_model(c: &Cluster, node: &Node) -> ScstConf {
    let mut conf = ScstConf::default();
    let mut handlers: BTreeMap<&str, Vec<Device>> = BTreeMap::new();
    for e in &c.exports {
        let minor = c.drbd(&e.drbd).map(|d| d.minor).unwrap_or(0);
        let mut attrs = vec![
            Attr::new("filename", format!("/dev/drbd{minor}")),
            Attr::new(
                "t10_dev_id",
                e.t10_dev_id.clone().unwrap_or_else(|| e.name.clone()),
            ),
            Attr::new("active", "0"),
            Attr::new("bind_alua_state", "1"),
            Attr::new("write_through", "1"),
        ];
        if e.cluster_mode {
            attrs.push(Attr::new("cluster_mode", "1"));
        }
        handlers
            .entry(e.handler.as_str())
            .or_default()
            .push(Device {
                name: e.name.clone(),
                attrs,
                line: 0,
            });
    }
    conf.handlers = handlers
        .into_iter()
        .map(|(h, devices)| Handler {
            name: h.to_string(),
            attrs: vec![],
            devices,
            line: 0,
        })
        .collect();

    let ids = rel_tgt_ids(c);
    let rel = |t: &str| {
        ids.iter()
            .find(|(_, n, _)| n == t)
            .map(|x| x.2)
            .unwrap_or(0)
    };
    let luns: Vec<Lun> = c
        .exports
        .iter()
        .map(|e| Lun {
            number: e.lun,
            device: e.name.clone(),
            attrs: vec![],
            line: 0,
        })
        .collect();
    let group = |inis: Vec<String>| IniGroup {
        name: "initiators".into(),
        attrs: vec![],
        luns: luns.clone(),
        initiators: inis
            .into_iter()
            .map(|name| Initiator { name, line: 0 })
            .collect(),
        line: 0,
    };
    let iscsi_inis: Vec<String> = c.initiators.iter().filter_map(|i| i.iqn.clone()).collect();
    let fc_inis: Vec<String> = c.initiators.iter().flat_map(|i| i.wwpns.clone()).collect();
    let mk_target = |name: &str, hw: bool, inis: &[String]| Target {
        name: name.to_string(),
        hw_target: hw,
        enabled: Some(false),
        attrs: vec![Attr::new("rel_tgt_id", rel(name).to_string())],
        luns: vec![],
        groups: if inis.is_empty() || luns.is_empty() {
            vec![]
        } else {
            vec![group(inis.to_vec())]
        },
        line: 0,
    };
    if !node.iscsi_targets.is_empty() {
        conf.drivers.push(TargetDriver {
            name: "iscsi".into(),
            enabled: Some(true),
            attrs: vec![],
            targets: node
                .iscsi_targets
                .iter()
                .map(|t| mk_target(t, false, &iscsi_inis))
                .collect(),
            line: 0,
        });
    }
    if !node.fc_targets.is_empty() {
        conf.drivers.push(TargetDriver {
            name: "qla2x00t".into(),
            enabled: None,
            attrs: vec![],
            targets: node
                .fc_targets
                .iter()
                .map(|t| mk_target(t, true, &fc_inis))
                .collect(),
            line: 0,
        });
    }

    for d in &c.drbd {
        let devices: Vec<DgDevice> = c
            .exports
            .iter()
            .filter(|e| e.drbd == d.name)
            .map(|e| DgDevice {
                name: e.name.clone(),
                line: 0,
            })
            .collect();
        if devices.is_empty() {
            continue;
        }
        let target_groups = c
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| TargetGroup {
                name: n.name.clone(),
                attrs: vec![
                    Attr::new("group_id", (i + 1).to_string()),
                    Attr::new("state", c.alua.unpromoted_state.clone()),
                ],
                targets: n
                    .iscsi_targets
                    .iter()
                    .chain(&n.fc_targets)
                    .map(|t| TgTarget {
                        name: t.clone(),
                        attrs: if n.name == node.name {
                            vec![]
                        } else {
                            vec![Attr::new("rel_tgt_id", rel(t).to_string())]
                        },
                        line: 0,
                    })
                    .collect(),
                line: 0,
            })
            .collect();
        conf.device_groups.push(DeviceGroup {
            name: d.name.clone(),
            attrs: vec![],
            devices,
            target_groups,
            line: 0,
        });
    }
    conf
}

/// The secret SCST overlay: `IncomingUser "user secret"` on each of the node's iSCSI
/// targets for every CHAP initiator. SCST checks CHAP per target (any listed user is
/// accepted), so the ACL group still decides which LUNs an initiator sees. The agent
/// merges it into the public config with [`merge_auth`] before applying.
pub fn scst_auth(c: &Cluster, s: &Secrets, node: &Node) -> ScstConf {
    let mut conf = ScstConf::default();
    let users: Vec<Attr> = c
        .initiators
        .iter()
        .filter(|i| i.chap)
        .filter_map(|i| s.chap.get(&i.name))
        .map(|ch| Attr::new("IncomingUser", format!("{} {}", ch.user, ch.password)))
        .collect();
    if users.is_empty() || node.iscsi_targets.is_empty() {
        return conf;
    }
    conf.drivers.push(TargetDriver {
        name: "iscsi".into(),
        enabled: None,
        attrs: vec![],
        targets: node
            .iscsi_targets
            .iter()
            .map(|t| Target {
                name: t.clone(),
                attrs: users.clone(),
                ..Default::default()
            })
            .collect(),
        line: 0,
    });
    conf
}

/// Adds the attributes of `auth`'s targets to the same targets of `public`.
pub fn merge_auth(public: &mut ScstConf, auth: &ScstConf) {
    for ad in &auth.drivers {
        let Some(pd) = public.drivers.iter_mut().find(|d| d.name == ad.name) else {
            continue;
        };
        pd.attrs.extend(ad.attrs.iter().cloned());
        for at in &ad.targets {
            if let Some(pt) = pd.targets.iter_mut().find(|t| t.name == at.name) {
                pt.attrs.extend(at.attrs.iter().cloned());
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// sbd
// ---------------------------------------------------------------------------------

fn sbd_vars(c: &Cluster) -> Vec<(String, String)> {
    let Fencing::Sbd {
        watchdog,
        devices,
        watchdog_timeout,
    } = &c.fencing
    else {
        return vec![];
    };
    let mut v = vec![
        ("SBD_PACEMAKER".to_string(), "yes".to_string()),
        ("SBD_STARTMODE".to_string(), "always".to_string()),
        ("SBD_WATCHDOG_DEV".to_string(), watchdog.clone()),
        (
            "SBD_WATCHDOG_TIMEOUT".to_string(),
            watchdog_timeout.to_string(),
        ),
    ];
    if !devices.is_empty() {
        v.push(("SBD_DEVICE".to_string(), devices.join(";")));
    }
    v
}

fn sbd_env(c: &Cluster) -> String {
    let mut s = String::from(
        "# generated by sanforge: sbd settings (also passed as the sbd service's environment)\n",
    );
    for (k, v) in sbd_vars(c) {
        let _ = writeln!(s, "{k}=\"{v}\"");
    }
    s
}

// ---------------------------------------------------------------------------------
// Pacemaker CIB
// ---------------------------------------------------------------------------------

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn nvpairs(out: &mut String, indent: &str, prefix: &str, pairs: &[(&str, String)]) {
    for (k, v) in pairs {
        let _ = writeln!(
            out,
            "{indent}<nvpair id=\"{prefix}-{k}\" name=\"{k}\" value=\"{}\"/>",
            esc(v)
        );
    }
}

struct Op<'a> {
    name: &'a str,
    interval: &'a str,
    timeout: &'a str,
    role: Option<&'a str>,
}

/// `agent` is (class, provider, type): `("ocf", Some("linbit"), "drbd")`.
fn primitive(
    out: &mut String,
    id: &str,
    agent: (&str, Option<&str>, &str),
    params: &[(&str, String)],
    ops: &[Op],
    indent: &str,
) {
    let (class, provider, ty) = agent;
    let prov = provider
        .map(|p| format!(" provider=\"{p}\""))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{indent}<primitive id=\"{id}\" class=\"{class}\"{prov} type=\"{ty}\">"
    );
    if !params.is_empty() {
        let _ = writeln!(out, "{indent}  <instance_attributes id=\"{id}-params\">");
        nvpairs(
            out,
            &format!("{indent}    "),
            &format!("{id}-params"),
            params,
        );
        let _ = writeln!(out, "{indent}  </instance_attributes>");
    }
    let _ = writeln!(out, "{indent}  <operations>");
    for o in ops {
        let role = o.role.map(|r| format!(" role=\"{r}\"")).unwrap_or_default();
        let rid = o
            .role
            .map(|r| format!("-{}", r.to_lowercase()))
            .unwrap_or_default();
        let _ = writeln!(out, "{indent}    <op id=\"{id}-{}-{}{rid}\" name=\"{}\" interval=\"{}\" timeout=\"{}\"{role}/>", o.name, o.interval, o.name, o.interval, o.timeout);
    }
    let _ = writeln!(out, "{indent}  </operations>");
    let _ = writeln!(out, "{indent}</primitive>");
}

fn promotable(out: &mut String, id: &str, inner: impl FnOnce(&mut String)) {
    let _ = writeln!(out, "      <clone id=\"{id}\">");
    let _ = writeln!(out, "        <meta_attributes id=\"{id}-meta\">");
    let meta: Vec<(&str, String)> = vec![
        ("promotable", "true".into()),
        ("promoted-max", "1".into()),
        ("promoted-node-max", "1".into()),
        ("clone-max", "2".into()),
        ("clone-node-max", "1".into()),
        ("notify", "true".into()),
        ("interleave", "true".into()),
    ];
    nvpairs(out, "          ", &format!("{id}-meta"), &meta);
    let _ = writeln!(out, "        </meta_attributes>");
    inner(out);
    let _ = writeln!(out, "      </clone>");
}

/// The per-node parameters of the `ocf:sanforge:alua` instance `id`: one
/// `instance_attributes` set per node, selected by a `#uname` rule, so the one CIB
/// gives each node its own `ports` (and with SCST its own local and remote target
/// groups).
fn alua_node_params(c: &Cluster, id: &str) -> String {
    let mut out = String::new();
    for n in &c.nodes {
        let set = format!("{id}-params-{}", n.name);
        let mut p: Vec<(&str, String)> = Vec::new();
        if c.target == TargetStack::Scst {
            p.push(("local_target_group", n.name.clone()));
            if c.nodes.len() == 2 {
                if let Some(peer) = c.nodes.iter().find(|o| o.name != n.name) {
                    p.push(("remote_target_group", peer.name.clone()));
                }
            }
        }
        let ports = agent_ports(c, n);
        if !ports.is_empty() {
            p.push(("ports", ports));
        }
        if p.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "          <instance_attributes id=\"{set}\" score=\"10\">\n            <rule id=\"{set}-rule\" boolean-op=\"and\">\n              <expression id=\"{set}-rule-uname\" attribute=\"#uname\" operation=\"eq\" value=\"{}\"/>\n            </rule>",
            esc(&n.name)
        );
        nvpairs(&mut out, "            ", &set, &p);
        let _ = writeln!(out, "          </instance_attributes>");
    }
    out
}

/// The Pacemaker CIB (configuration only, empty status): fencing, per DRBD resource a
/// promotable `ocf:linbit:drbd` clone and a promotable `ocf:sanforge:alua` clone
/// colocated with its Promoted role and ordered after its promotion (as in the
/// classic DRBD + target setups), VIPs with the Promoted target, a DLM clone when a
/// device uses SCST `cluster_mode`, stickiness above location preferences (no
/// automatic failback), and `no-quorum-policy=stop`: with `two_node` the survivor keeps
/// quorum, and a node that boots alone waits for its peer (`wait_for_all`) instead of
/// promoting stale data.
pub fn cib_xml(c: &Cluster, s: &Secrets) -> String {
    let fencing_on = c.fencing != Fencing::Off;
    let mut x = String::new();
    x.push_str("<cib validate-with=\"pacemaker-3.9\" epoch=\"1\" num_updates=\"0\" admin_epoch=\"0\">\n  <configuration>\n    <crm_config>\n      <cluster_property_set id=\"cib-bootstrap-options\">\n");
    let mut props: Vec<(&str, String)> = vec![
        ("cluster-name", c.name.clone()),
        ("stonith-enabled", fencing_on.to_string()),
        ("no-quorum-policy", "stop".into()),
        ("symmetric-cluster", "true".into()),
        ("stonith-timeout", "60s".into()),
    ];
    if fencing_on && c.quorum == Quorum::TwoNode {
        // The node holding the Promoted instance wins the fence race after a split.
        props.push(("priority-fencing-delay", "15s".into()));
    }
    if let Fencing::Sbd {
        devices,
        watchdog_timeout,
        ..
    } = &c.fencing
    {
        if devices.is_empty() {
            props.push((
                "stonith-watchdog-timeout",
                format!("{}s", watchdog_timeout * 2),
            ));
        }
    }
    nvpairs(&mut x, "        ", "cib-bootstrap-options", &props);
    x.push_str("      </cluster_property_set>\n    </crm_config>\n    <nodes>\n");
    for n in &c.nodes {
        let _ = writeln!(x, "      <node id=\"{}\" uname=\"{}\"/>", n.node_id, n.name);
    }
    x.push_str("    </nodes>\n    <resources>\n");
    let mut cons = String::new();

    // Fencing devices.
    match &c.fencing {
        Fencing::Agent { agent, params } => {
            for n in &c.nodes {
                let id = format!("fence-{}", n.name);
                let mut p: Vec<(&str, String)> = params
                    .get(&n.name)
                    .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect())
                    .unwrap_or_default();
                p.push(("pcmk_host_list", n.name.clone()));
                if s.fence_passwords.contains_key(&n.name) {
                    p.push((
                        "password_script",
                        format!("/bin/cat {SECRETS_DIR}/fence-{}.pw", n.name),
                    ));
                }
                primitive(
                    &mut x,
                    &id,
                    ("stonith", None, agent),
                    &p,
                    &[Op {
                        name: "monitor",
                        interval: "60s",
                        timeout: "20s",
                        role: None,
                    }],
                    "      ",
                );
                // A node never runs the device that fences itself.
                let _ = writeln!(cons, "      <rsc_location id=\"loc-{id}-avoid-{}\" rsc=\"{id}\" node=\"{}\" score=\"-INFINITY\"/>", n.name, n.name);
            }
        }
        Fencing::Sbd { devices, .. } if !devices.is_empty() => {
            primitive(
                &mut x,
                "fence-sbd",
                ("stonith", None, "fence_sbd"),
                &[("devices", devices.join(","))],
                &[Op {
                    name: "monitor",
                    interval: "60s",
                    timeout: "20s",
                    role: None,
                }],
                "      ",
            );
        }
        _ => {}
    }

    // DLM for SCST cluster_mode (persistent reservations shared between nodes).
    let dlm = c.exports.iter().any(|e| e.cluster_mode);
    if dlm {
        x.push_str(
            "      <clone id=\"dlm-clone\">\n        <meta_attributes id=\"dlm-clone-meta\">\n",
        );
        nvpairs(
            &mut x,
            "          ",
            "dlm-clone-meta",
            &[("interleave", "true".into())],
        );
        x.push_str("        </meta_attributes>\n");
        let p: Vec<(&str, String)> = if fencing_on {
            vec![]
        } else {
            vec![("allow_stonith_disabled", "true".into())]
        };
        primitive(
            &mut x,
            "dlm",
            ("ocf", Some("pacemaker"), "controld"),
            &p,
            &[Op {
                name: "monitor",
                interval: "60s",
                timeout: "60s",
                role: None,
            }],
            "        ",
        );
        x.push_str("      </clone>\n");
    }

    for d in &c.drbd {
        let drbd_id = format!("drbd-{}", d.name);
        let drbd_clone = format!("{drbd_id}-clone");
        promotable(&mut x, &drbd_clone, |x| {
            primitive(
                x,
                &drbd_id,
                ("ocf", Some("linbit"), "drbd"),
                &[("drbd_resource", d.name.clone())],
                &[
                    Op {
                        name: "monitor",
                        interval: "29s",
                        timeout: "20s",
                        role: Some("Promoted"),
                    },
                    Op {
                        name: "monitor",
                        interval: "31s",
                        timeout: "20s",
                        role: Some("Unpromoted"),
                    },
                    Op {
                        name: "start",
                        interval: "0s",
                        timeout: "240s",
                        role: None,
                    },
                    Op {
                        name: "stop",
                        interval: "0s",
                        timeout: "100s",
                        role: None,
                    },
                    Op {
                        name: "promote",
                        interval: "0s",
                        timeout: "90s",
                        role: None,
                    },
                    Op {
                        name: "demote",
                        interval: "0s",
                        timeout: "90s",
                        role: None,
                    },
                    Op {
                        name: "notify",
                        interval: "0s",
                        timeout: "90s",
                        role: None,
                    },
                ],
                "        ",
            );
        });
        // No location score for `preferred-node`: the drbd agent gives a connected
        // UpToDate Secondary the same promotion score as the Primary (10000), and
        // stickiness does not hold the Promoted role, so any role preference pulls the
        // Promoted role back to that node as soon as a move constraint is cleared or
        // the node returns (automatic failback, measured in tests/failover.rs). With
        // equal scores Pacemaker keeps the current Promoted instance.
        // What the VIPs follow: the target when there is one, else DRBD itself.
        let mut holder = drbd_clone.clone();
        let mut holder_action = "promote";
        if c.exports.iter().any(|e| e.drbd == d.name) {
            let alua_id = format!("alua-{}", d.name);
            let alua_clone = format!("{alua_id}-clone");
            let mut common: Vec<(&str, String)> = vec![(
                "stack",
                match c.target {
                    TargetStack::Scst => "scst",
                    TargetStack::Lio => "lio",
                }
                .to_string(),
            )];
            match c.target {
                TargetStack::Scst => common.push(("device_group", d.name.clone())),
                TargetStack::Lio => {
                    common.push(("lio_luns", lio_luns(c, &d.name)));
                    common.push(("cluster_name", c.name.clone()));
                }
            }
            common.push(("promoted_state", c.alua.promoted_state.clone()));
            common.push(("unpromoted_state", c.alua.unpromoted_state.clone()));
            let per_node = alua_node_params(c, &alua_id);
            promotable(&mut x, &alua_clone, |x| {
                let mut p = String::new();
                primitive(
                    &mut p,
                    &alua_id,
                    ("ocf", Some("sanforge"), "alua"),
                    &common,
                    &[
                        Op {
                            name: "monitor",
                            interval: "10s",
                            timeout: "20s",
                            role: Some("Promoted"),
                        },
                        Op {
                            name: "monitor",
                            interval: "11s",
                            timeout: "20s",
                            role: Some("Unpromoted"),
                        },
                        Op {
                            name: "start",
                            interval: "0s",
                            timeout: "60s",
                            role: None,
                        },
                        Op {
                            name: "stop",
                            interval: "0s",
                            timeout: "60s",
                            role: None,
                        },
                        Op {
                            name: "promote",
                            interval: "0s",
                            timeout: "60s",
                            role: None,
                        },
                        Op {
                            name: "demote",
                            interval: "0s",
                            timeout: "60s",
                            role: None,
                        },
                    ],
                    "        ",
                );
                let at = p.find("          <operations>").unwrap_or(p.len());
                p.insert_str(at, &per_node);
                x.push_str(&p);
            });
            let _ = writeln!(cons, "      <rsc_colocation id=\"col-{alua_clone}-with-{drbd_clone}\" rsc=\"{alua_clone}\" rsc-role=\"Promoted\" with-rsc=\"{drbd_clone}\" with-rsc-role=\"Promoted\" score=\"INFINITY\"/>");
            let _ = writeln!(cons, "      <rsc_order id=\"ord-{drbd_clone}-start-{alua_clone}\" first=\"{drbd_clone}\" first-action=\"start\" then=\"{alua_clone}\" then-action=\"start\" kind=\"Mandatory\"/>");
            let _ = writeln!(cons, "      <rsc_order id=\"ord-{drbd_clone}-promote-{alua_clone}\" first=\"{drbd_clone}\" first-action=\"promote\" then=\"{alua_clone}\" then-action=\"promote\" kind=\"Mandatory\"/>");
            if dlm {
                let _ = writeln!(cons, "      <rsc_order id=\"ord-dlm-clone-start-{alua_clone}\" first=\"dlm-clone\" first-action=\"start\" then=\"{alua_clone}\" then-action=\"start\" kind=\"Mandatory\"/>");
                let _ = writeln!(cons, "      <rsc_colocation id=\"col-{alua_clone}-with-dlm-clone\" rsc=\"{alua_clone}\" with-rsc=\"dlm-clone\" score=\"INFINITY\"/>");
            }
            holder = alua_clone;
            holder_action = "promote";
        }
        for v in c.vips.iter().filter(|v| v.drbd == d.name) {
            let id = format!("vip-{}", v.name);
            let (ip, prefix) = v.address.split_once('/').unwrap_or((&v.address, "32"));
            primitive(
                &mut x,
                &id,
                ("ocf", Some("heartbeat"), "IPaddr2"),
                &[
                    ("ip", ip.to_string()),
                    ("cidr_netmask", prefix.to_string()),
                    ("nic", v.interface.clone()),
                ],
                &[Op {
                    name: "monitor",
                    interval: "10s",
                    timeout: "20s",
                    role: None,
                }],
                "      ",
            );
            let _ = writeln!(cons, "      <rsc_colocation id=\"col-{id}-with-{holder}\" rsc=\"{id}\" with-rsc=\"{holder}\" with-rsc-role=\"Promoted\" score=\"INFINITY\"/>");
            let _ = writeln!(cons, "      <rsc_order id=\"ord-{holder}-{holder_action}-{id}\" first=\"{holder}\" first-action=\"{holder_action}\" then=\"{id}\" then-action=\"start\" kind=\"Mandatory\"/>");
        }
    }
    x.push_str("    </resources>\n    <constraints>\n");
    x.push_str(&cons);
    x.push_str(
        "    </constraints>\n    <rsc_defaults>\n      <meta_attributes id=\"rsc-options\">\n",
    );
    nvpairs(
        &mut x,
        "        ",
        "rsc-options",
        &[
            ("resource-stickiness", STICKINESS.to_string()),
            ("priority", "1".into()),
        ],
    );
    x.push_str(
        "      </meta_attributes>\n    </rsc_defaults>\n  </configuration>\n  <status/>\n</cib>\n",
    );
    x
}

// ---------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------

/// The default secrets file for a cluster file: `NAME.secrets.toml` beside it.
pub fn default_secrets_path(cluster_file: &Path) -> PathBuf {
    let stem = cluster_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cluster".into());
    cluster_file.with_file_name(format!("{stem}.secrets.toml"))
}
