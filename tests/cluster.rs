//! `cluster.toml` → per-node HA files: validation errors name their field, renders are
//! deterministic, secrets stay out of public files, and the real tools accept the
//! output: `crm_verify`/`crm_simulate` (pacemaker-cli-utils), `drbdadm dump`
//! (drbd-utils) and `corosync -t` (corosync). A missing tool fails the test with the
//! package to install.

use sanforge::config::node::NodeConfig;
use sanforge::ha::cluster::{
    generate_secrets, write_secrets, Cluster, DrbdVersion, Secrets, TargetStack,
};
use sanforge::ha::render::{self, merge_auth, render_files, Rendered};
use sanforge::scsi::{lio, scst};
use sanforge::util::cmd::{Cmd, Log};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster.toml")
}

fn fixture_text() -> String {
    std::fs::read_to_string(fixture_path()).unwrap()
}

fn cluster() -> Cluster {
    Cluster::parse(&fixture_path(), &fixture_text()).unwrap()
}

fn secrets(c: &Cluster) -> Secrets {
    generate_secrets(Some(c)).unwrap()
}

fn text(r: &Rendered, path: &str) -> String {
    String::from_utf8(
        r.get(path)
            .unwrap_or_else(|| panic!("{path} not rendered"))
            .data
            .clone(),
    )
    .unwrap()
}

/// Fails (never skips) when a tool is missing: CI installs these packages.
fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file();
    assert!(
        found,
        "`{tool}` is not installed: run `apt-get install -y {package}` (CI must install it)"
    );
}

fn tool(name: &str) -> String {
    let sbin = Path::new("/usr/sbin").join(name);
    if sbin.is_file() {
        sbin.display().to_string()
    } else {
        name.to_string()
    }
}

// ----------------------------------------------------------------------------------
// Rendering
// ----------------------------------------------------------------------------------

#[test]
fn fixture_renders_every_file_for_both_nodes() {
    let c = cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    for n in ["alpha", "beta"] {
        for f in [
            "node.toml",
            "corosync.conf",
            "cib.xml",
            "drbd/drbd.conf",
            "drbd/r0.res",
            "MANIFEST",
            "secrets/authkey",
            "secrets/drbd-secret.conf",
            "secrets/scst-auth.conf",
            "secrets/.gitignore",
        ] {
            assert!(r.get(&format!("{n}/{f}")).is_some(), "{n}/{f} missing");
        }
        // Each node's own scst.conf, under the name its node.toml gives.
        assert!(
            r.get(&format!("{n}/{n}.scst.conf")).is_some(),
            "{n}.scst.conf missing"
        );
    }
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // corosync.conf is the same on both nodes; the CIB too.
    assert_eq!(
        text(&r, "alpha/corosync.conf"),
        text(&r, "beta/corosync.conf")
    );
    assert_eq!(text(&r, "alpha/cib.xml"), text(&r, "beta/cib.xml"));
}

#[test]
fn render_is_deterministic_on_disk() {
    let c = cluster();
    let s = secrets(&c);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    render::render(&c, &s, a.path()).unwrap();
    render::render(&c, &s, b.path()).unwrap();
    let r = render_files(&c, &s).unwrap();
    for f in &r.files {
        let x = std::fs::read(a.path().join(&f.path)).unwrap();
        let y = std::fs::read(b.path().join(&f.path)).unwrap();
        assert_eq!(x, y, "{} differs between renders", f.path.display());
        assert_eq!(x, f.data);
        let mode = std::fs::metadata(a.path().join(&f.path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode,
            if f.secret { 0o600 } else { 0o644 },
            "{}",
            f.path.display()
        );
    }
    let dir_mode = std::fs::metadata(a.path().join("alpha/secrets"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[test]
fn node_toml_is_a_valid_node_config() {
    let c = cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let node =
        NodeConfig::parse(Path::new("alpha/node.toml"), &text(&r, "alpha/node.toml")).unwrap();
    assert_eq!(node.hostname, "alpha");
    let eth1 = node
        .network
        .interfaces
        .iter()
        .find(|i| i.name == "eth1")
        .unwrap();
    assert_eq!(eth1.addresses, vec!["10.0.1.1/24".to_string()]);
    assert_eq!(eth1.mtu, Some(9000));
    assert_eq!(eth1.mac.as_deref(), Some("52:54:00:00:01:02"));
    // Corosync and Pacemaker are started by the init's `[ha]` order, not as services.
    let names: Vec<&str> = node.services.iter().map(|s| s.name.as_str()).collect();
    assert!(
        !names.contains(&"corosync") && !names.contains(&"pacemaker"),
        "{names:?}"
    );
    let ha = node.ha.clone().unwrap();
    assert!(ha.enabled && ha.cluster_mode);
    assert_eq!(ha.corosync, ["/usr/sbin/corosync", "-f"]);
    assert_eq!(ha.pacemaker, ["/usr/sbin/pacemakerd"]);
    for m in [
        "drbd",
        "scst",
        "scst_vdisk",
        "iscsi_scst",
        "qla2x00tgt",
        "dlm",
    ] {
        assert!(
            node.modules.load.iter().any(|x| x == m),
            "module {m} missing: {:?}",
            node.modules.load
        );
    }
}

#[test]
fn corosync_conf_has_two_links_crypto_and_two_node_quorum() {
    let c = cluster();
    let t = text(
        &render_files(&c, &secrets(&c)).unwrap(),
        "alpha/corosync.conf",
    );
    for want in [
        "transport: knet",
        "crypto_cipher: aes256",
        "crypto_hash: sha256",
        "token: 3000",
        // Two nodes: half the token (corosync.conf(5) calls a consensus below the
        // token safe for two nodes); the failover waits token + consensus.
        "consensus: 1500",
        "ring0_addr: 10.0.0.1",
        "ring1_addr: 10.0.1.1",
        "ring0_addr: 10.0.0.2",
        "ring1_addr: 10.0.1.2",
        "two_node: 1",
        "provider: corosync_votequorum",
        "keyfile: /etc/corosync/authkey",
        "to_syslog: yes",
    ] {
        assert!(t.contains(want), "corosync.conf lacks `{want}`:\n{t}");
    }
}

#[test]
fn drbd_res_has_protocol_c_fencing_and_handlers() {
    let c = cluster();
    let t = text(
        &render_files(&c, &secrets(&c)).unwrap(),
        "alpha/drbd/r0.res",
    );
    for want in [
        "protocol C;",
        "fencing resource-and-stonith;",
        "crm-fence-peer.9.sh",
        "crm-unfence-peer.9.sh",
        "auto-promote no;",
        // A Secondary notices a dead Primary within ping-int + ping-timeout.
        "ping-int 2;",
        "ping-timeout 10;",
        "timeout 15;",
        "on \"alpha\"",
        "on \"beta\"",
        "address 10.0.1.1:7789;",
        "disk \"/dev/vg0/r0\";",
    ] {
        assert!(t.contains(want), "r0.res lacks `{want}`:\n{t}");
    }
    assert!(
        !t.contains("shared-secret"),
        "the shared secret must not be in the .res file"
    );
}

#[test]
fn scst_conf_is_valid_with_unique_rel_tgt_ids_and_standby_groups() {
    let c = cluster();
    let s = secrets(&c);
    let r = render_files(&c, &s).unwrap();
    let mut ids_by_node = Vec::new();
    for n in ["alpha", "beta"] {
        let conf = scst::parse(&text(&r, &format!("{n}/{n}.scst.conf"))).unwrap();
        let errors: Vec<_> = scst::validate(&conf)
            .into_iter()
            .filter(|d| d.severity == scst::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{n}: {errors:?}");
        let dg = &conf.device_groups[0];
        assert_eq!(dg.target_groups.len(), 2);
        for tg in &dg.target_groups {
            // Nothing is active before the agent promotes.
            assert_eq!(
                scst::attr(&tg.attrs, "state"),
                Some("unavailable"),
                "{n}/{}",
                tg.name
            );
        }
        let dev = &conf.handlers[0].devices[0];
        assert_eq!(scst::attr(&dev.attrs, "cluster_mode"), Some("1"));
        assert_eq!(scst::attr(&dev.attrs, "t10_dev_id"), Some("disk0"));
        let mut ids: Vec<(String, String)> = conf
            .drivers
            .iter()
            .flat_map(|d| {
                d.targets.iter().map(|t| {
                    (
                        t.name.clone(),
                        scst::attr(&t.attrs, "rel_tgt_id").unwrap().to_string(),
                    )
                })
            })
            .collect();
        ids.sort();
        ids_by_node.push(ids);
        // The secret overlay merges into a config that still validates.
        let mut merged = conf.clone();
        merge_auth(
            &mut merged,
            &scst::parse(&text(&r, &format!("{n}/secrets/scst-auth.conf"))).unwrap(),
        );
        assert!(scst::validate(&merged)
            .iter()
            .all(|d| d.severity != scst::Severity::Error));
        let t = &merged
            .drivers
            .iter()
            .find(|d| d.name == "iscsi")
            .unwrap()
            .targets[0];
        let want = format!("{} {}", s.chap["esx1"].user, s.chap["esx1"].password);
        assert_eq!(scst::attr(&t.attrs, "IncomingUser"), Some(want.as_str()));
    }
    // rel_tgt_id unique across the two nodes.
    let all: Vec<&String> = ids_by_node.iter().flatten().map(|(_, id)| id).collect();
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(all.len(), dedup.len(), "{ids_by_node:?}");
    assert_eq!(all.len(), 4);
}

// ----------------------------------------------------------------------------------
// Secrets
// ----------------------------------------------------------------------------------

#[test]
fn secrets_never_land_in_public_files() {
    let c = cluster();
    let s = secrets(&c);
    let out = tempfile::tempdir().unwrap();
    render::render(&c, &s, out.path()).unwrap();
    let r = render_files(&c, &s).unwrap();
    let chap = &s.chap["esx1"].password;
    let key = s.authkey();
    let values: Vec<&[u8]> = vec![
        s.drbd_shared_secret.as_bytes(),
        chap.as_bytes(),
        s.corosync_authkey.as_bytes(),
        &key[..],
    ];
    let mut public = 0;
    for f in &r.files {
        let data = std::fs::read(out.path().join(&f.path)).unwrap();
        if f.secret {
            assert!(
                f.path.components().any(|c| c.as_os_str() == "secrets"),
                "{}",
                f.path.display()
            );
            continue;
        }
        public += 1;
        for v in &values {
            assert!(
                !data.windows(v.len()).any(|w| w == *v),
                "a secret value leaked into {}",
                f.path.display()
            );
        }
    }
    assert!(public >= 14, "{public}");
    // And they are where they belong.
    assert_eq!(
        std::fs::read(out.path().join("alpha/secrets/authkey")).unwrap(),
        key
    );
    assert!(
        std::fs::read_to_string(out.path().join("beta/secrets/drbd-secret.conf"))
            .unwrap()
            .contains(&s.drbd_shared_secret)
    );
    assert!(
        std::fs::read_to_string(out.path().join("beta/secrets/scst-auth.conf"))
            .unwrap()
            .contains(chap.as_str())
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("alpha/secrets/.gitignore"))
            .unwrap()
            .lines()
            .last(),
        Some("*")
    );
}

#[test]
fn missing_secrets_file_says_how_to_generate_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cluster.secrets.toml");
    let e = Secrets::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("does not exist")
            && e.contains(&format!("sanforge cluster secrets --out {}", p.display())),
        "{e}"
    );
}

#[test]
fn generated_secrets_file_is_0600_loadable_and_never_overwritten() {
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.toml");
    let s = generate_secrets(Some(&c)).unwrap();
    write_secrets(&p, &s).unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let back = Secrets::load(&p).unwrap();
    assert!(back == s, "secrets did not round-trip");
    assert_eq!(back.authkey().len(), 256);
    back.check_for(&c, &p).unwrap();
    let e = write_secrets(&p, &generate_secrets(None).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("refusing to overwrite"), "{e}");
    assert!(Secrets::load(&p).unwrap() == s, "the file changed");
    // A CHAP initiator without its secret is reported.
    let bare = generate_secrets(None).unwrap();
    let e = bare.check_for(&c, &p).unwrap_err().to_string();
    assert!(e.contains("[chap.esx1]"), "{e}");
}

// ----------------------------------------------------------------------------------
// Validation errors
// ----------------------------------------------------------------------------------

fn error_for(text: &str) -> sanforge::config::ConfigError {
    match Cluster::parse(Path::new("cluster.toml"), text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn mutate(from: &str, to: &str) -> String {
    let t = fixture_text();
    assert!(t.contains(from), "fixture lacks `{from}`");
    t.replacen(from, to, 1)
}

#[test]
fn node_on_one_link_is_rejected() {
    let e = error_for(&mutate(
        "addresses = [\"10.0.1.2/24\"]\ncorosync-link = 1\n",
        "addresses = [\"10.0.1.2/24\"]\n",
    ));
    assert!(
        e.message
            .contains("node `beta` is on corosync link(s) [0] only"),
        "{e}"
    );
    assert!(e.line > 0, "{e}");
}

#[test]
fn duplicate_node_names_are_rejected() {
    let e = error_for(&mutate("name = \"beta\"", "name = \"alpha\""));
    assert!(
        e.message.contains("node.name `alpha` is used by two nodes"),
        "{e}"
    );
}

#[test]
fn duplicate_addresses_are_rejected() {
    let e = error_for(&mutate("\"10.0.10.2/24\"", "\"10.0.10.1/24\""));
    assert!(
        e.message
            .contains("address 10.0.10.1 is also used by node `alpha`"),
        "{e}"
    );
    let e = error_for(&mutate(
        "address = \"10.0.10.100/24\"",
        "address = \"10.0.10.2/24\"",
    ));
    assert!(
        e.message
            .contains("vip `iscsi0`: address 10.0.10.2 is also used by beta"),
        "{e}"
    );
}

#[test]
fn errors_in_the_second_of_repeated_tables_point_at_the_second() {
    // beta's eth2 takes alpha's address: the error is on beta's line (71), where it
    // used to point at the first `"10.0.10.1/24"` of the file, alpha's (48).
    let t = mutate("\"10.0.10.2/24\"", "\"10.0.10.1/24\"");
    let e = error_for(&t);
    assert!(
        e.message
            .contains("node `beta` interface `eth2`: address 10.0.10.1 is also used"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (71, 14), "{e}");
    // beta's second interface named like its first: beta's eth1 line, not alpha's.
    let e = error_for(&mutate(
        "name = \"eth1\"\nmac = \"52:54:00:00:02:02\"",
        "name = \"eth0\"\nmac = \"52:54:00:00:02:02\"",
    ));
    assert!(
        e.message.contains("interface `eth0` is listed twice"),
        "{e}"
    );
    assert_eq!((e.line, e.column), (62, 8), "{e}");
}

#[test]
fn corosync_consensus_is_the_files_or_checked() {
    let t = mutate("token = 3000", "token = 3000\nconsensus = 900");
    let c = Cluster::parse(Path::new("cluster.toml"), &t).unwrap();
    let conf = text(
        &render_files(&c, &secrets(&c)).unwrap(),
        "alpha/corosync.conf",
    );
    assert!(conf.contains("consensus: 900\n"), "{conf}");
    let e = error_for(&mutate("token = 3000", "token = 3000\nconsensus = 20"));
    assert_eq!(
        e.to_string(),
        "cluster.toml:9:13: corosync.consensus 20: expected 200 to 60000 ms"
    );
}

#[test]
fn every_error_of_the_file_is_reported_in_file_order() {
    // Three independent errors; the fencing one (line 15) is found after the node one
    // (line 63), as fencing is checked against the nodes, but is listed before it.
    let t = mutate("token = 3000", "token = 50")
        .replacen("agent = \"fence_ipmilan\"", "agent = \"ipmilan\"", 1)
        .replacen("\"52:54:00:00:02:02\"", "\"52:54:00:00:02\"", 1);
    let e = error_for(&t);
    assert_eq!(e.count(), 3, "{e}");
    assert_eq!(
        e.to_string(),
        "cluster.toml:8:9: corosync.token 50: expected 1000 to 60000 ms\n\
         cluster.toml:15:9: fencing.agent `ipmilan`: expected a fence agent name like fence_ipmilan\n\
         cluster.toml:63:7: node `beta` interface `eth1`: mac `52:54:00:00:02`: expected six hex bytes like 52:54:00:12:34:56"
    );
}

#[test]
fn one_mistake_is_reported_once() {
    // A node renamed: the fencing parameters and DRBD disks still name `beta`, but
    // references are not checked against a node list with an error in it.
    let e = error_for(&mutate("name = \"beta\"", "name = \"alpha\""));
    assert_eq!(e.count(), 1, "{e}");
    // A misspelt node in [drbd.nodes.*]: not also "node `beta` has no backing disk".
    let e = error_for(&mutate("[drbd.nodes.beta]", "[drbd.nodes.gamma]"));
    assert_eq!(e.count(), 1, "{e}");
    // beta's link-1 address does not parse: not also "beta is on link 0 only", nor
    // "drbd address 10.0.1.2 is not one of beta's".
    let e = error_for(&mutate("\"10.0.1.2/24\"", "\"10.0.1.300/24\""));
    assert_eq!(e.count(), 1, "{e}");
    assert!(e.message.contains("address `10.0.1.300/24`"), "{e}");
}

#[test]
fn every_error_of_the_secrets_file_is_reported() {
    let t = "corosync-authkey = \"zz\"\ndrbd-shared-secret = \"short\"\n\n[chap.esx1]\nuser = \"esx1\"\npassword = \"short\"\n";
    let e = Secrets::parse(Path::new("s.toml"), t).unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.toml:1:20: corosync-authkey: expected 32 to 1024 bytes as hex (generated: 256)\n\
         s.toml:2:22: drbd-shared-secret: expected 16 to 64 letters and digits\n\
         s.toml:4:1: chap.esx1: expected a user of letters and digits and a password of 12 to 16 letters and digits"
    );
}

#[test]
fn drbd_without_fencing_policy_is_rejected() {
    let e = error_for(&mutate("fencing = \"resource-and-stonith\"\n", ""));
    assert!(e.message.contains("drbd `r0` has no fencing policy"), "{e}");
    let e = error_for(&mutate(
        "fencing = \"resource-and-stonith\"",
        "fencing = \"dont-care\"",
    ));
    assert!(e.message.contains("fencing `dont-care`"), "{e}");
}

#[test]
fn alua_states_letting_both_nodes_write_are_rejected() {
    for bad in ["nonoptimized", "active"] {
        let e = error_for(&mutate(
            "unpromoted-state = \"unavailable\"",
            &format!("unpromoted-state = \"{bad}\""),
        ));
        assert!(
            e.message.contains("alua.unpromoted-state")
                && e.message.contains("would let both nodes serve writes"),
            "{e}"
        );
        let line = 1 + fixture_text()
            .lines()
            .position(|l| l.starts_with("unpromoted-state"))
            .unwrap();
        assert_eq!(e.line, line, "{e}");
    }
    let e = error_for(&mutate(
        "promoted-state = \"active\"",
        "promoted-state = \"standby\"",
    ));
    assert!(e.message.contains("alua.promoted-state"), "{e}");
}

#[test]
fn unknown_nodes_are_rejected() {
    let e = error_for(&mutate(
        "preferred-node = \"alpha\"",
        "preferred-node = \"gamma\"",
    ));
    assert!(
        e.message
            .contains("preferred-node `gamma` is not a [[node]]"),
        "{e}"
    );
    let e = error_for(&mutate("[drbd.nodes.beta]", "[drbd.nodes.gamma]"));
    assert!(
        e.message.contains("nodes.gamma: unknown node `gamma`"),
        "{e}"
    );
    let e = error_for(&mutate("[fencing.params.beta]", "[fencing.params.gamma]"));
    assert!(
        e.message
            .contains("fencing.params.gamma: unknown node `gamma`"),
        "{e}"
    );
}

#[test]
fn two_node_quorum_needs_two_nodes() {
    let t = fixture_text();
    let start = t.find("[[node]]\nname = \"beta\"").unwrap();
    let end = t.find("[[drbd]]").unwrap();
    let one = format!("{}{}", &t[..start], &t[end..]);
    let e = error_for(&one);
    assert!(
        e.message
            .contains("quorum.two-node needs exactly two [[node]] entries, found 1"),
        "{e}"
    );
}

#[test]
fn fencing_off_must_be_explicit_and_is_warned_about() {
    let off = fixture_text()
        .replacen("mode = \"agent\"", "mode = \"off\"", 1)
        .replacen(
            "fencing = \"resource-and-stonith\"",
            "fencing = \"resource-only\"",
            1,
        );
    let e = error_for(&off);
    assert!(e.message.contains("i-understand = true"), "{e}");
    // resource-and-stonith needs fencing.
    let e = error_for(&mutate(
        "mode = \"agent\"",
        "mode = \"off\"\ni-understand = true",
    ));
    assert!(e.message.contains("needs cluster fencing"), "{e}");
    let ok = off.replacen("mode = \"off\"", "mode = \"off\"\ni-understand = true", 1);
    let c = Cluster::parse(Path::new("cluster.toml"), &ok).unwrap();
    let r = render_files(&c, &secrets(&c)).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("WARNING: cluster `san1` has fencing off")),
        "{:?}",
        r.warnings
    );
    let cib = text(&r, "alpha/cib.xml");
    assert!(
        cib.contains("name=\"stonith-enabled\" value=\"false\""),
        "{cib}"
    );
    assert!(!cib.contains("class=\"stonith\""));
}

#[test]
fn unknown_fields_and_bad_values_are_located() {
    let e = error_for(&mutate("token = 3000", "token = 3000\nbogus = 1"));
    assert!(e.message.contains("bogus"), "{e}");
    assert_eq!(e.line, 9, "{e}");
    let e = error_for(&mutate(
        "crypto-cipher = \"aes256\"",
        "crypto-cipher = \"none\"",
    ));
    assert!(e.message.contains("corosync.crypto-cipher `none`"), "{e}");
    assert_eq!(e.line, 6);
    let e = error_for(&mutate(
        "lanplus = \"1\"",
        "lanplus = \"1\"\npassword = \"x\"",
    ));
    assert!(e.message.contains("belong in the secrets file"), "{e}");
    let e = error_for(&mutate("protocol = \"C\"", "protocol = \"A\""));
    assert!(e.message.contains("only C is accepted"), "{e}");
}

// ----------------------------------------------------------------------------------
// The real tools
// ----------------------------------------------------------------------------------

/// The rendered CIB plus a status section with both nodes online, quorum, and the
/// promotion scores the DRBD and ALUA agents set at runtime (`crm_master`), so that
/// the scheduler has something to place. The configuration part is untouched.
fn live_cib(cib: &str) -> String {
    live_cib_for(cib, &["r0"])
}

/// [`live_cib`] with equal promotion scores on both nodes for every DRBD resource
/// of `resources` and its ALUA agent.
fn live_cib_for(cib: &str, resources: &[&str]) -> String {
    let mut s = cib.replacen("<cib ", "<cib have-quorum=\"1\" dc-uuid=\"1\" ", 1);
    let mut status = String::from("<status>\n");
    for (id, n) in [(1, "alpha"), (2, "beta")] {
        let scores: String = resources
            .iter()
            .map(|r| format!("          <nvpair id=\"status-{id}-drbd-{r}\" name=\"master-drbd-{r}\" value=\"10000\"/>\n          <nvpair id=\"status-{id}-alua-{r}\" name=\"master-alua-{r}\" value=\"10000\"/>\n"))
            .collect();
        status.push_str(&format!(
            "    <node_state id=\"{id}\" uname=\"{n}\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\">\n      <transient_attributes id=\"{id}\">\n        <instance_attributes id=\"status-{id}\">\n{scores}        </instance_attributes>\n      </transient_attributes>\n    </node_state>\n"
        ));
    }
    status.push_str("  </status>");
    s = s.replacen("<status/>", &status, 1);
    s
}

fn run(cmd: Cmd) -> String {
    cmd.output(&Log::none()).unwrap_or_else(|e| panic!("{e:#}"))
}

fn promoted_on(summary: &str, clone: &str) -> String {
    let after = summary
        .split("Revised Cluster Status")
        .nth(1)
        .unwrap_or(summary);
    let block = after
        .split(&format!("Clone Set: {clone}"))
        .nth(1)
        .unwrap_or_else(|| panic!("{clone} not in:\n{after}"));
    let line = block
        .lines()
        .find(|l| l.contains("Promoted: ["))
        .unwrap_or_else(|| panic!("{clone} not promoted:\n{after}"));
    line.split('[')
        .nth(1)
        .unwrap()
        .trim_end_matches([']', ' '])
        .trim()
        .to_string()
}

fn vip_node(summary: &str) -> String {
    let after = summary
        .split("Revised Cluster Status")
        .nth(1)
        .unwrap_or(summary);
    let line = after.lines().find(|l| l.contains("vip-iscsi0")).unwrap();
    line.split_whitespace().last().unwrap().to_string()
}

#[test]
fn crm_verify_accepts_the_cib_and_crm_simulate_places_and_fails_over() {
    require("crm_verify", "pacemaker-cli-utils");
    require("crm_simulate", "pacemaker-cli-utils");
    let c = cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    std::fs::write(&cib, text(&r, "alpha/cib.xml")).unwrap();
    // The rendered CIB has an empty status, for which crm_verify only warns (no
    // quorum yet, nodes unclean); give it a live-looking status so any warning counts.
    let live = dir.path().join("live.xml");
    std::fs::write(&live, live_cib(&text(&r, "alpha/cib.xml"))).unwrap();
    // With both nodes up and quorate, crm_verify must find nothing at all (rc 0,
    // no warning even at -V).
    run(Cmd::new(tool("crm_verify"))
        .arg("--xml-file")
        .arg(&live)
        .arg("-V"));
    // A broken CIB is refused (the check is not a no-op).
    let broken = dir.path().join("broken.xml");
    std::fs::write(
        &broken,
        live_cib(&text(&r, "alpha/cib.xml"))
            .replace("with-rsc-role=\"Promoted\"", "with-rsc-role=\"Boss\""),
    )
    .unwrap();
    assert!(
        Cmd::new(tool("crm_verify"))
            .arg("--xml-file")
            .arg(&broken)
            .output(&Log::none())
            .is_err(),
        "crm_verify accepted an invalid role"
    );

    // Placement: DRBD, the ALUA target and the VIP are promoted/started together on
    // the preferred node; each fence device runs on the other node.
    let s1 = dir.path().join("s1.xml");
    let out = run(Cmd::new(tool("crm_simulate"))
        .arg("-x")
        .arg(&live)
        .arg("-S")
        .arg("-O")
        .arg(&s1));
    assert_eq!(promoted_on(&out, "drbd-r0-clone"), "alpha", "{out}");
    assert_eq!(vip_node(&out), "alpha", "{out}");
    assert!(
        out.contains("fence-alpha\t(stonith:fence_ipmilan):\t Started beta"),
        "{out}"
    );

    // alpha fails: it is fenced, beta promotes DRBD, then the target, then the VIP.
    let s2 = dir.path().join("s2.xml");
    let out = run(Cmd::new(tool("crm_simulate"))
        .arg("-x")
        .arg(&s1)
        .arg("-S")
        .arg("-f")
        .arg("alpha")
        .arg("-O")
        .arg(&s2));
    assert!(out.contains("Fence (reboot) alpha"), "{out}");
    assert_eq!(promoted_on(&out, "drbd-r0-clone"), "beta", "{out}");
    assert_eq!(vip_node(&out), "beta", "{out}");

    // alpha comes back: no automatic failback (stickiness above the preference).
    let out = run(Cmd::new(tool("crm_simulate"))
        .arg("-x")
        .arg(&s2)
        .arg("-S")
        .arg("-u")
        .arg("alpha"));
    assert_eq!(promoted_on(&out, "drbd-r0-clone"), "beta", "{out}");
    assert_eq!(vip_node(&out), "beta", "{out}");
}

#[test]
fn drbdadm_parses_the_resource_files_with_the_secret_include() {
    require("drbdadm", "drbd-utils");
    let c = cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let out = tempfile::tempdir().unwrap();
    render::write(&r, out.path()).unwrap();
    let node = out.path().join("alpha");
    // drbd.conf includes absolute image paths; point a test copy at the rendered files.
    let conf = out.path().join("drbd-test.conf");
    std::fs::write(
        &conf,
        format!(
            "include \"{}\";\ninclude \"{}\";\n",
            node.join("secrets/drbd-secret.conf").display(),
            node.join("drbd/*.res").display()
        ),
    )
    .unwrap();
    let dump = run(Cmd::new(tool("drbdadm"))
        .arg("-c")
        .arg(&conf)
        .arg("dump")
        .arg("all"));
    for want in [
        "resource r0",
        "protocol           C;",
        "fencing          resource-and-stonith;",
        "address          ipv4 10.0.1.2:7789;",
        "cram-hmac-alg    sha256;",
    ] {
        assert!(dump.contains(want), "drbdadm dump lacks `{want}`:\n{dump}");
    }
    // The checker is not a no-op: a misspelt keyword is refused.
    let bad = out.path().join("bad.res");
    std::fs::write(
        &bad,
        text(&r, "alpha/drbd/r0.res").replace("protocol C;", "protocoll C;"),
    )
    .unwrap();
    assert!(
        Cmd::new(tool("drbdadm"))
            .arg("-c")
            .arg(&bad)
            .arg("dump")
            .arg("all")
            .output(&Log::none())
            .is_err(),
        "drbdadm accepted a bad keyword"
    );
}

#[test]
fn corosync_accepts_the_config() {
    require("corosync", "corosync");
    let c = cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let out = tempfile::tempdir().unwrap();
    render::write(&r, out.path()).unwrap();
    // `corosync -t` reads the key and looks for the local node among the ring
    // addresses: point the test copy at the rendered key and give alpha's link 0 this
    // host's loopback address. Nothing else changes.
    let key = out.path().join("alpha/secrets/authkey");
    let t = text(&r, "alpha/corosync.conf")
        .replace(
            "keyfile: /etc/corosync/authkey",
            &format!("keyfile: {}", key.display()),
        )
        .replace("ring0_addr: 10.0.0.1\n", "ring0_addr: 127.0.0.1\n");
    let conf = out.path().join("corosync-test.conf");
    std::fs::write(&conf, &t).unwrap();
    run(Cmd::new(tool("corosync")).arg("-t").arg("-c").arg(&conf));
    let bad = out.path().join("bad.conf");
    std::fs::write(
        &bad,
        t.replace("crypto_hash: sha256", "crypto_hash: sha255"),
    )
    .unwrap();
    assert!(
        Cmd::new(tool("corosync"))
            .arg("-t")
            .arg("-c")
            .arg(&bad)
            .output(&Log::none())
            .is_err(),
        "corosync -t accepted a bad hash"
    );
}

#[test]
fn sbd_fencing_renders_a_watchdog_service_before_corosync() {
    let t = fixture_text();
    let start = t.find("mode = \"agent\"").unwrap();
    let end = t.find("[[node]]").unwrap();
    let sbd = format!(
        "{}mode = \"sbd\"\nwatchdog = \"/dev/watchdog\"\ndevices = [\"/dev/disk/by-id/sbd1\"]\n\n{}",
        &t[..start],
        &t[end..]
    );
    let c = Cluster::parse(Path::new("cluster.toml"), &sbd).unwrap();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let node = NodeConfig::parse(Path::new("n"), &text(&r, "alpha/node.toml")).unwrap();
    assert_eq!(node.services[0].name, "sbd");
    assert_eq!(node.services[0].env["SBD_WATCHDOG_DEV"], "/dev/watchdog");
    let ha = node.ha.clone().unwrap();
    let wd = ha.watchdog.unwrap();
    assert_eq!(wd.device, "/dev/watchdog");
    assert_eq!(wd.mode, sanforge::config::node::WatchdogMode::Sbd);
    let cib = text(&r, "alpha/cib.xml");
    assert!(cib.contains("type=\"fence_sbd\""), "{cib}");
    // Watchdog-only sbd cannot fence a two-node cluster.
    let e = error_for(&sbd.replace("devices = [\"/dev/disk/by-id/sbd1\"]\n", ""));
    assert!(e.message.contains("watchdog-only sbd"), "{e}");
}

/// The fixture with `[fencing]` replaced by `fencing` (a whole table, without header).
fn with_fencing(fencing: &str) -> String {
    let t = fixture_text();
    let start = t.find("mode = \"agent\"").unwrap();
    let end = t.find("[[node]]").unwrap();
    format!("{}{fencing}\n{}", &t[..start], &t[end..])
}

#[test]
fn sbd_on_a_disk_that_is_not_shared_is_rejected() {
    for (devices, needle) in [
        ("/dev/drbd0", "`/dev/drbd0` is a DRBD device"),
        ("/dev/drbd/by-res/r0/0", "is a DRBD device"),
        (
            "/dev/vg0/r0",
            "`/dev/vg0/r0` is on `/dev/vg0/r0`, the backing disk of drbd `r0` on node `alpha`",
        ),
    ] {
        let e = error_for(&with_fencing(&format!(
            "mode = \"sbd\"\nwatchdog = \"/dev/watchdog\"\ndevices = [\"{devices}\"]\n"
        )));
        assert!(e.message.contains(needle), "`{needle}` not in: {e}");
        assert!(
            e.message
                .contains("sbd needs one disk that both nodes open"),
            "{e}"
        );
        assert_eq!(e.line, 16, "{e}");
    }
    // A partition of a node's DRBD backing disk is that node's own disk too.
    let local = fixture_text().replace("disk = \"/dev/vg0/r0\"", "disk = \"/dev/sdb1\"");
    let start = local.find("mode = \"agent\"").unwrap();
    let end = local.find("[[node]]").unwrap();
    let local = format!(
        "{}mode = \"sbd\"\nwatchdog = \"/dev/watchdog\"\ndevices = [\"/dev/sdb2\"]\n\n{}",
        &local[..start],
        &local[end..]
    );
    let e = error_for(&local);
    assert!(e.message.contains("the backing disk of drbd `r0`"), "{e}");
    // A disk of its own (a SAN LUN, a shared virtual disk) is fine.
    Cluster::parse(
        Path::new("c.toml"),
        &with_fencing("mode = \"sbd\"\nwatchdog = \"/dev/watchdog\"\ndevices = [\"/dev/vdb\"]\n"),
    )
    .unwrap();
}

#[test]
fn a_drbd_device_in_two_exports_is_rejected() {
    let t = fixture_text();
    let i = t.find("[[export]]").unwrap();
    let j = t[i + 1..].find("\n[").map(|j| i + 1 + j).unwrap();
    let second = t[i..j]
        .replace("name = \"disk0\"", "name = \"disk1\"")
        .replacen("lun = 0", "lun = 1", 1);
    let text = format!("{}{second}{}", &t[..j], &t[j..]);
    let e = error_for(&text);
    assert!(
        e.message.contains(
            "export `disk1`: drbd `r0` is already exported as `disk0`: one DRBD device is one LUN"
        ),
        "{e}"
    );
    let line = text[..text.rfind("drbd = \"r0\"").unwrap()].lines().count() + 1;
    assert_eq!(e.line, line, "{e}");
}

#[test]
fn node_configs_require_what_the_fencing_and_dlm_run() {
    use sanforge::config::node::Requirement;
    let requires = |text: &str| -> Vec<Requirement> {
        let c = Cluster::parse(Path::new("c.toml"), text).unwrap();
        let r = render_files(&c, &secrets(&c)).unwrap();
        let node = NodeConfig::parse(Path::new("n"), &self::text(&r, "alpha/node.toml")).unwrap();
        node.ha.clone().unwrap().requires
    };
    let paths = |rs: &[Requirement]| -> Vec<(String, String)> {
        rs.iter()
            .map(|r| (r.path.clone(), r.package.clone()))
            .collect()
    };
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    // The fixture: fence_ipmilan devices and an export in cluster-mode (the DLM).
    assert_eq!(
        paths(&requires(&fixture_text())),
        [
            p("/usr/sbin/fence_ipmilan", "fence-agents"),
            p("/usr/bin/ipmitool", "ipmitool"),
            p("/usr/sbin/dlm_controld", "dlm-controld"),
            p("/usr/lib/ocf/resource.d/pacemaker/controld", "pacemaker"),
            p("/usr/sbin/dlm_tool", "dlm-controld"),
            p("/sbin/drbdadm", "drbd-utils"),
            // DRBD 9 (the fixture's default): drbdsetup itself.
            p("/sbin/drbdsetup", "drbd-utils"),
            p("/usr/sbin/crm_attribute", "pacemaker-cli-utils"),
        ]
    );
    let sbd = requires(&with_fencing(
        "mode = \"sbd\"\nwatchdog = \"/dev/watchdog\"\ndevices = [\"/dev/vdb\"]\n",
    ));
    assert_eq!(
        paths(&sbd)[..2],
        [
            p("/usr/sbin/sbd", "sbd"),
            p("/usr/sbin/fence_sbd", "fence-agents")
        ]
    );
    assert!(sbd[1].reason.contains("fencing.devices"), "{:?}", sbd[1]);
    // Fencing off runs no fence program; LIO has no DLM.
    // DRBD 8.4: the native fence-peer handler's tools too.
    assert_eq!(
        paths(&requires(&lio_text())),
        [
            p("/sbin/drbdadm", "drbd-utils"),
            p("/lib/drbd/drbdsetup-84", "drbd-utils"),
            p("/usr/sbin/crm_attribute", "pacemaker-cli-utils"),
            p("/usr/sbin/cibadmin", "pacemaker-cli-utils"),
            p("/usr/sbin/crmadmin", "pacemaker-cli-utils"),
        ]
    );
    // LINBIT's agent, when the cluster file picks it.
    assert_eq!(
        paths(&requires(&format!(
            "drbd-agent = \"linbit\"\n{}",
            lio_text()
        ))),
        [
            p("/usr/lib/ocf/resource.d/linbit/drbd", "drbd-utils"),
            p("/usr/sbin/cibadmin", "pacemaker-cli-utils"),
            p("/usr/sbin/crmadmin", "pacemaker-cli-utils"),
        ]
    );
    // drbd-utils' fence-peer handler: nothing more (drbd-utils ships it).
    assert_eq!(
        paths(&requires(&format!(
            "drbd-fence-peer = \"drbd-utils\"\n{}",
            lio_text()
        ))),
        [
            p("/sbin/drbdadm", "drbd-utils"),
            p("/lib/drbd/drbdsetup-84", "drbd-utils"),
            p("/usr/sbin/crm_attribute", "pacemaker-cli-utils"),
        ]
    );
}

#[test]
fn drbd_84_fences_with_the_native_handler_unless_the_file_picks_drbd_utils() {
    let res = |text: &str| {
        let c = Cluster::parse(Path::new("c.toml"), text).unwrap();
        self::text(
            &render_files(&c, &secrets(&c)).unwrap(),
            "alpha/drbd/r0.res",
        )
    };
    let native = res(&lio_text());
    assert!(
        native.contains("fence-peer \"/init drbd-fence-peer\";"),
        "{native}"
    );
    // the unfence handler stays drbd-utils' (it removes the same constraint)
    assert!(
        native.contains("after-resync-target \"/usr/lib/drbd/crm-unfence-peer.sh\";"),
        "{native}"
    );
    let script = res(&format!("drbd-fence-peer = \"drbd-utils\"\n{}", lio_text()));
    assert!(
        script.contains("fence-peer \"/usr/lib/drbd/crm-fence-peer.sh\";"),
        "{script}"
    );
    // DRBD 9 runs drbd-utils' handler; asking for the native one there is an error
    // at the key.
    let v9 = lio_text().replace("drbd-version = \"8.4\"\n", "");
    assert!(res(&v9).contains("crm-fence-peer.9.sh"));
    let e = Cluster::parse(
        Path::new("c.toml"),
        &format!("drbd-fence-peer = \"sanforge\"\n{v9}"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("c.toml:1:")
            && e.contains("drbd-fence-peer `sanforge`")
            && e.contains("drbd-utils"),
        "{e}"
    );
    let e = Cluster::parse(
        Path::new("c.toml"),
        &format!("drbd-fence-peer = \"crm\"\n{}", lio_text()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("c.toml:1:") && e.contains("drbd-utils"), "{e}");
}

#[test]
fn the_drbd_agent_is_sanforges_unless_the_cluster_file_picks_linbits() {
    let cib = |text: &str| {
        let c = Cluster::parse(Path::new("c.toml"), text).unwrap();
        self::text(&render_files(&c, &secrets(&c)).unwrap(), "alpha/cib.xml")
    };
    let native = cib(&lio_text());
    assert!(
        native.contains("class=\"ocf\" provider=\"sanforge\" type=\"drbd\""),
        "{native}"
    );
    assert!(
        native.contains("name=\"drbd_minor\" value=\"0\""),
        "{native}"
    );
    assert!(!native.contains("linbit"), "{native}");
    let linbit = cib(&format!("drbd-agent = \"linbit\"\n{}", lio_text()));
    assert!(
        linbit.contains("class=\"ocf\" provider=\"linbit\" type=\"drbd\""),
        "{linbit}"
    );
    assert!(
        linbit.contains("name=\"ignore_missing_notifications\" value=\"true\""),
        "{linbit}"
    );
    let e = Cluster::parse(
        Path::new("c.toml"),
        &format!("drbd-agent = \"heartbeat\"\n{}", lio_text()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("c.toml:1:") && e.contains("sanforge"), "{e}");
}

// ----------------------------------------------------------------------------------
// target = "lio" (tests/fixtures/cluster/cluster-lio.toml, the QEMU failover fixture)
// ----------------------------------------------------------------------------------

const HOST: &str = "iqn.2026-11.org.example:host";

fn lio_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster-lio.toml")
}

fn lio_text() -> String {
    std::fs::read_to_string(lio_path()).unwrap()
}

fn lio_cluster() -> Cluster {
    Cluster::parse(&lio_path(), &lio_text()).unwrap()
}

fn lio_mutate(from: &str, to: &str) -> String {
    let t = lio_text();
    assert!(t.contains(from), "lio fixture lacks `{from}`");
    t.replacen(from, to, 1)
}

#[test]
fn lio_fixture_renders_targets_and_acls_but_no_scst_and_no_luns() {
    let c = lio_cluster();
    assert_eq!(c.target, TargetStack::Lio);
    let r = render_files(&c, &secrets(&c)).unwrap();
    for n in ["alpha", "beta"] {
        for f in [
            "node.toml",
            "corosync.conf",
            "cib.xml",
            "drbd/r0.res",
            "secrets/authkey",
        ] {
            assert!(r.get(&format!("{n}/{f}")).is_some(), "{n}/{f} missing");
        }
        for f in [
            &format!("{n}.scst.conf"),
            "secrets/scst-auth.conf",
            "secrets/node.toml",
        ] {
            assert!(r.get(&format!("{n}/{f}")).is_none(), "{n}/{f} rendered");
        }
        assert!(!text(&r, &format!("{n}/MANIFEST")).contains("scst"));
    }
    for (n, mac, addr) in [
        ("alpha", "52:54:00:00:0a:01", "192.0.2.1/24"),
        ("beta", "52:54:00:00:0b:01", "192.0.2.2/24"),
    ] {
        let node = NodeConfig::parse(Path::new("node.toml"), &text(&r, &format!("{n}/node.toml")))
            .unwrap();
        assert_eq!(node.hostname, n);
        let eth1 = &node.network.interfaces[0];
        assert_eq!(
            (eth1.name.as_str(), eth1.mac.as_deref()),
            ("eth1", Some(mac))
        );
        assert_eq!(eth1.addresses, [addr]);
        assert!(node.scst.is_none());
        assert!(node.services.is_empty(), "{:?}", node.services);
        let ha = node.ha.clone().unwrap();
        assert!(ha.enabled && !ha.cluster_mode);
        for m in [
            "drbd",
            "target_core_mod",
            "target_core_iblock",
            "iscsi_target_mod",
        ] {
            assert!(node.modules.load.iter().any(|x| x == m), "{m}");
        }
        assert!(!node.modules.load.iter().any(|x| x.contains("scst")));
        let lio = node.lio.clone().unwrap();
        assert!(lio.backstores.is_empty());
        assert_eq!(lio.iscsi.len(), 1);
        let t = &lio.iscsi[0];
        assert_eq!(t.iqn, format!("iqn.2026-11.org.example:sanlio.{n}"));
        assert_eq!(t.tpg, 1);
        assert_eq!(t.portals, ["0.0.0.0:3260"]);
        assert!(t.luns.is_empty());
        assert_eq!(t.acls.len(), 1);
        assert_eq!(t.acls[0].initiator, HOST);
        assert!(t.acls[0].chap.is_none() && t.acls[0].mapped_luns.is_empty());
        // The init's configfs plan: a disabled TPG with its portal and the ACL, no LUN.
        let plan = lio::plan(&lio);
        let tpg = format!("iscsi/{}/tpgt_1", t.iqn);
        let ops: Vec<String> = plan.setup.iter().map(|o| o.to_string()).collect();
        for want in [
            format!("mkdir {tpg}/np/0.0.0.0:3260"),
            format!("mkdir {tpg}/acls/{HOST}"),
            format!("write {tpg}/attrib/generate_node_acls 0"),
            format!("write {tpg}/enable 0"),
        ] {
            assert!(ops.contains(&want), "{want} not in {ops:#?}");
        }
        assert!(
            !ops.iter()
                .any(|o| o.contains("/lun") || o.contains("core/")),
            "{ops:#?}"
        );
    }
}

#[test]
fn lio_cib_passes_the_luns_and_each_nodes_ports_to_the_agent() {
    let c = lio_cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let cib = text(&r, "alpha/cib.xml");
    assert_eq!(cib, text(&r, "beta/cib.xml"));
    for want in [
        "name=\"stack\" value=\"lio\"",
        "name=\"lio_luns\" value=\"disk0=/dev/drbd0@0\"",
        "name=\"cluster_name\" value=\"sanlio\"",
        "name=\"unpromoted_state\" value=\"standby\"",
        "attribute=\"#uname\" operation=\"eq\" value=\"alpha\"",
        "id=\"drbd-r0-params-alpha-ports\" name=\"ports\" value=\"iscsi/iqn.2026-11.org.example:sanlio.alpha/tpgt_1\"",
        "id=\"drbd-r0-params-beta-ports\" name=\"ports\" value=\"iscsi/iqn.2026-11.org.example:sanlio.beta/tpgt_1\"",
        // The DRBD primitive carries the target: no separate alua clone.
        "<primitive id=\"drbd-r0\" class=\"ocf\" provider=\"sanforge\" type=\"drbd\">",
        "<op id=\"drbd-r0-monitor-10s-promoted\" name=\"monitor\" interval=\"10s\" timeout=\"20s\" role=\"Promoted\"/>",
        "name=\"stonith-enabled\" value=\"false\"",
    ] {
        assert!(cib.contains(want), "CIB lacks `{want}`:\n{cib}");
    }
    assert!(
        !cib.contains("device_group") && !cib.contains("dlm") && !cib.contains("type=\"alua\""),
        "{cib}"
    );
}

#[test]
fn lio_cib_passes_crm_verify_and_fails_over() {
    require("crm_verify", "pacemaker-cli-utils");
    require("crm_simulate", "pacemaker-cli-utils");
    let c = lio_cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.xml");
    std::fs::write(&live, live_cib(&text(&r, "alpha/cib.xml"))).unwrap();
    run(Cmd::new(tool("crm_verify"))
        .arg("--xml-file")
        .arg(&live)
        .arg("-V"));
    let broken = dir.path().join("broken.xml");
    std::fs::write(
        &broken,
        live_cib(&text(&r, "alpha/cib.xml")).replace("operation=\"eq\"", "operation=\"equals\""),
    )
    .unwrap();
    assert!(
        Cmd::new(tool("crm_verify"))
            .arg("--xml-file")
            .arg(&broken)
            .output(&Log::none())
            .is_err(),
        "crm_verify accepted a bad rule"
    );
    let s1 = dir.path().join("s1.xml");
    let out = run(Cmd::new(tool("crm_simulate"))
        .arg("-x")
        .arg(&live)
        .arg("-S")
        .arg("-O")
        .arg(&s1));
    assert_eq!(promoted_on(&out, "drbd-r0-clone"), "alpha", "{out}");
    // alpha fails (fencing is off: assumed dead): beta promotes DRBD, then the LUNs.
    let out = run(Cmd::new(tool("crm_simulate"))
        .arg("-x")
        .arg(&s1)
        .arg("-S")
        .arg("-f")
        .arg("alpha"));
    assert_eq!(promoted_on(&out, "drbd-r0-clone"), "beta", "{out}");
}

#[test]
fn lio_drbd_and_corosync_configs_are_accepted() {
    require("drbdadm", "drbd-utils");
    require("corosync", "corosync");
    // The fixture names the in-tree DRBD 8.4 module: drbd-utils parses its resources
    // with drbdadm-84 (shipped in drbd-utils), which refuses DRBD 9 syntax.
    let drbdadm_84 = ["/usr/lib/drbd/drbdadm-84", "/lib/drbd/drbdadm-84"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("drbdadm-84 not found: install drbd-utils");
    let c = lio_cluster();
    assert_eq!(c.drbd_version, DrbdVersion::V84);
    let r = render_files(&c, &secrets(&c)).unwrap();
    let out = tempfile::tempdir().unwrap();
    render::write(&r, out.path()).unwrap();
    let node = out.path().join("alpha");
    let conf = out.path().join("drbd-test.conf");
    std::fs::write(
        &conf,
        format!(
            "include \"{}\";\ninclude \"{}\";\n",
            node.join("secrets/drbd-secret.conf").display(),
            node.join("drbd/*.res").display()
        ),
    )
    .unwrap();
    let dump = run(Cmd::new(drbdadm_84)
        .arg("-c")
        .arg(&conf)
        .arg("dump")
        .arg("all"));
    for want in [
        "resource r0",
        "protocol           C;",
        "fencing          resource-only;",
        "address          ipv4 192.0.2.1:7789;",
        "address          ipv4 192.0.2.2:7789;",
        "disk         /dev/vda;",
        "device       minor 0;",
        "cram-hmac-alg    sha256;",
        "fence-peer       \"/init drbd-fence-peer\";",
    ] {
        assert!(
            dump.contains(want),
            "drbdadm-84 dump lacks `{want}`:\n{dump}"
        );
    }
    // The same cluster rendered for DRBD 9 is refused by drbdadm-84.
    let c9 = Cluster::parse(
        Path::new("c.toml"),
        &lio_text().replace("drbd-version = \"8.4\"\n", ""),
    )
    .unwrap();
    assert_eq!(c9.drbd_version, DrbdVersion::V9);
    let r9 = render_files(&c9, &secrets(&c9)).unwrap();
    let res9 = out.path().join("r0-9.res");
    std::fs::write(&res9, text(&r9, "alpha/drbd/r0.res")).unwrap();
    assert!(
        Cmd::new(drbdadm_84)
            .arg("-c")
            .arg(&res9)
            .arg("dump")
            .arg("all")
            .output(&Log::none())
            .is_err(),
        "drbdadm-84 accepted DRBD 9 syntax"
    );
    let key = out.path().join("alpha/secrets/authkey");
    let t = text(&r, "alpha/corosync.conf");
    for want in [
        "ring0_addr: 192.0.2.1\n",
        "ring1_addr: 198.51.100.1\n",
        "ring0_addr: 192.0.2.2\n",
        "ring1_addr: 198.51.100.2\n",
        "two_node: 1",
    ] {
        assert!(t.contains(want), "corosync.conf lacks `{want}`:\n{t}");
    }
    let t = t
        .replace(
            "keyfile: /etc/corosync/authkey",
            &format!("keyfile: {}", key.display()),
        )
        .replace("ring0_addr: 192.0.2.1\n", "ring0_addr: 127.0.0.1\n");
    let cc = out.path().join("corosync-test.conf");
    std::fs::write(&cc, &t).unwrap();
    run(Cmd::new(tool("corosync")).arg("-t").arg("-c").arg(&cc));
}

#[test]
fn lio_validation_names_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (
            lio_mutate(
                "iscsi-portals = [\"0.0.0.0:3260\"]\n",
                "iscsi-portals = [\"0.0.0.0:3260\"]\nfc-targets = [\"21:00:00:24:ff:54:09:32\"]\n",
            ),
            "fc-targets: target = \"lio\" serves iSCSI only",
        ),
        (
            lio_mutate("lun = 0\n", "lun = 0\ncluster-mode = true\n"),
            "LIO has no cluster-mode",
        ),
        (
            lio_mutate("lun = 0\n", "lun = 0\nhandler = \"vdisk_fileio\"\n"),
            "handler `vdisk_fileio` is an SCST handler",
        ),
        (
            lio_mutate(
                "iqn = \"iqn.2026-11.org.example:host\"\n",
                "iqn = \"iqn.2026-11.org.example:host\"\nwwpns = [\"21:00:00:1b:32:00:00:01\"]\n",
            ),
            "wwpns: target = \"lio\" serves iSCSI only",
        ),
        (
            lio_mutate(
                "iscsi-portals = [\"0.0.0.0:3260\"]",
                "iscsi-portals = [\"192.0.2.2:3260\"]",
            ),
            "iscsi-portals `192.0.2.2:3260`",
        ),
        (
            lio_mutate("target = \"lio\"\n", "target = \"iet\"\n"),
            "iet",
        ),
        (
            lio_mutate(
                "[alua]\n",
                "[[drbd]]\nname = \"r1\"\nminor = 1\nport = 7790\nprotocol = \"C\"\nfencing = \"resource-only\"\n\
                 [drbd.nodes.alpha]\ndisk = \"/dev/vdb\"\naddress = \"192.0.2.1\"\n\
                 [drbd.nodes.beta]\ndisk = \"/dev/vdb\"\naddress = \"192.0.2.2\"\n\
                 [[export]]\nname = \"disk1\"\ndrbd = \"r1\"\nlun = 1\n[alua]\n",
            ),
            "export `disk1`: drbd `r1`, but export `disk0` is on `r0`: with target = \"lio\" every export must be on one DRBD resource",
        ),
        (
            lio_mutate("drbd-version = \"8.4\"\n", "drbd-version = \"8.3\"\n"),
            "8.3",
        ),
        (
            mutate(
                "iscsi-targets = [\"iqn.2026-01.org.example:san1.alpha\"]\n",
                "iscsi-targets = [\"iqn.2026-01.org.example:san1.alpha\"]\niscsi-portals = [\"0.0.0.0:3260\"]\n",
            ),
            "iscsi-portals is for target = \"lio\"",
        ),
    ];
    for (t, needle) in cases {
        let e = error_for(&t);
        assert!(e.message.contains(needle), "`{needle}` not in: {e}");
        assert!(e.line > 0, "{e}");
    }
    // A portal on one of the node's own addresses is fine; the default is 0.0.0.0:3260.
    let c = Cluster::parse(
        Path::new("c.toml"),
        &lio_mutate(
            "iscsi-portals = [\"0.0.0.0:3260\"]",
            "iscsi-portals = [\"192.0.2.1:3260\", \"198.51.100.1:3260\"]",
        ),
    )
    .unwrap();
    assert_eq!(
        c.nodes[0].iscsi_portals,
        ["192.0.2.1:3260", "198.51.100.1:3260"]
    );
    let c = Cluster::parse(
        Path::new("c.toml"),
        &lio_text().replace("iscsi-portals = [\"0.0.0.0:3260\"]\n", ""),
    )
    .unwrap();
    assert_eq!(c.nodes[1].iscsi_portals, ["0.0.0.0:3260"]);
    // Without `target`, a file keeps its SCST meaning.
    assert_eq!(cluster().target, TargetStack::Scst);
}

#[test]
fn lio_chap_names_its_secret_in_a_public_node_toml() {
    let t = lio_mutate(
        "iqn = \"iqn.2026-11.org.example:host\"\n",
        "iqn = \"iqn.2026-11.org.example:host\"\nchap = true\n",
    );
    let c = Cluster::parse(Path::new("c.toml"), &t).unwrap();
    let s = secrets(&c);
    let r = render_files(&c, &s).unwrap();
    // node.toml is public (it can be baked into the image): the ACL names its account.
    assert!(r.get("alpha/secrets/node.toml").is_none());
    let f = r.get("alpha/node.toml").unwrap();
    assert!(!f.secret);
    assert_eq!(f.install, "/etc/sanforge/node.toml");
    let node = NodeConfig::parse(
        Path::new("node.toml"),
        std::str::from_utf8(&f.data).unwrap(),
    )
    .unwrap();
    let chap = node.lio.clone().unwrap().iscsi[0].acls[0]
        .chap
        .clone()
        .unwrap();
    assert_eq!(chap.secret.as_deref(), Some("host"));
    assert!(chap.password.is_empty() && chap.userid.is_empty());
    // The account travels with the other secrets, where the init reads it.
    let sf = r.get("alpha/secrets/chap.toml").unwrap();
    assert!(sf.secret);
    assert_eq!(sf.install, sanforge::contract::CHAP_SECRETS);
    let ns = sanforge::config::secrets::NodeSecrets::parse(
        Path::new("chap.toml"),
        std::str::from_utf8(&sf.data).unwrap(),
    )
    .unwrap();
    assert_eq!(ns.chap("host").unwrap().password, s.chap["host"].password);
    assert_eq!(ns.chap("host").unwrap().user, s.chap["host"].user);
    let resolved = ns.resolve_lio(node.lio.as_ref().unwrap()).unwrap();
    assert_eq!(
        resolved.iscsi[0].acls[0].chap.as_ref().unwrap().password,
        s.chap["host"].password
    );
    for f in r.files.iter().filter(|f| !f.secret) {
        let d = String::from_utf8_lossy(&f.data);
        assert!(
            !d.contains(&s.chap["host"].password),
            "CHAP leaked into {}",
            f.path.display()
        );
    }
}

/// The rendered node.toml (as sanforge-init builds it in configfs) and the rendered
/// CIB parameters (as Pacemaker passes them on alpha) drive the real agent binary
/// through start → promote → demote → stop on a fake configfs tree.
#[test]
fn lio_render_and_agent_agree() {
    use std::process::Command;
    let c = lio_cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let node = NodeConfig::parse(Path::new("n"), &text(&r, "alpha/node.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let cfs = sys.join("kernel/config/target");
    std::fs::create_dir_all(cfs.join("core")).unwrap();
    for op in lio::plan(node.lio.as_ref().unwrap()).setup {
        match op {
            lio::ConfigfsOp::Mkdir(p) => {
                std::fs::create_dir_all(cfs.join(&p)).unwrap();
                // configfs makes a TPG's default groups with it.
                if p.ends_with("tpgt_1") {
                    std::fs::create_dir_all(cfs.join(&p).join("lun")).unwrap();
                    std::fs::create_dir_all(cfs.join(&p).join("acls")).unwrap();
                }
            }
            lio::ConfigfsOp::Write(p, v) => {
                let f = cfs.join(&p);
                std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                std::fs::write(f, v).unwrap();
            }
            lio::ConfigfsOp::Symlink { .. } => panic!("no LUN expected"),
        }
    }
    // alpha's parameters: the common set plus alpha's rule-selected set.
    let cib = text(&r, "alpha/cib.xml");
    let mut env: Vec<(String, String)> = cib
        .lines()
        .filter(|l| l.contains("id=\"drbd-r0-params-") && !l.contains("-params-beta-"))
        .filter(|l| l.contains("<nvpair") && !l.contains("name=\"drbd_"))
        .filter(|l| !l.contains("name=\"preferred_node\""))
        .map(|l| {
            let attr = |k: &str| {
                l.split(&format!("{k}=\""))
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            };
            (format!("OCF_RESKEY_{}", attr("name")), attr("value"))
        })
        .collect();
    assert_eq!(env.len(), 6, "{env:?}");
    env.push(("OCF_RESKEY_sysfs_root".into(), sys.display().to_string()));
    let agent = |action: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("ocf-alua")
            .arg(action)
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let tpg = cfs.join("iscsi/iqn.2026-11.org.example:sanlio.alpha/tpgt_1");
    for (action, want) in [
        ("validate-all", 0),
        ("monitor", 7),
        ("start", 0),
        ("monitor", 0),
        ("promote", 0),
        ("monitor", 8),
    ] {
        let (rc, err) = agent(action);
        assert_eq!(rc, want, "{action}: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(cfs.join("core/iblock_0/disk0/control")).unwrap(),
        "udev_path=/dev/drbd0"
    );
    assert_eq!(
        std::fs::read_link(tpg.join(format!("acls/{HOST}/lun_0/lun"))).unwrap(),
        tpg.join("lun/lun_0")
    );
    for (action, want) in [("demote", 0), ("monitor", 0), ("stop", 0), ("monitor", 7)] {
        let (rc, err) = agent(action);
        assert_eq!(rc, want, "{action}: {err}");
    }
    assert!(!cfs.join("core/iblock_0").exists());
    assert!(tpg.join(format!("acls/{HOST}")).is_dir());
}

#[test]
fn scst_cib_gives_each_node_its_own_target_group_and_ports() {
    let c = cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let cib = text(&r, "alpha/cib.xml");
    for want in [
        "name=\"stack\" value=\"scst\"",
        "name=\"device_group\" value=\"r0\"",
        "id=\"drbd-r0-params-alpha-local_target_group\" name=\"local_target_group\" value=\"alpha\"",
        "id=\"drbd-r0-params-alpha-remote_target_group\" name=\"remote_target_group\" value=\"beta\"",
        "id=\"drbd-r0-params-beta-local_target_group\" name=\"local_target_group\" value=\"beta\"",
        "id=\"drbd-r0-params-alpha-ports\" name=\"ports\" value=\"iscsi/iqn.2026-01.org.example:san1.alpha qla2x00t/21:00:00:24:ff:54:09:32\"",
    ] {
        assert!(cib.contains(want), "CIB lacks `{want}`:\n{cib}");
    }
    // Only parameters the agent knows (its meta-data: the drbd agent's own and the
    // target's, ocf:sanforge:alua's) are passed.
    let meta = sanforge::agent::drbd::meta::metadata();
    let known: Vec<&str> = sanforge::agent::PARAMS
        .iter()
        .map(|p| p.name)
        .chain(["drbd_resource", "drbd_minor", "preferred_node"])
        .filter(|n| meta.contains(&format!("<parameter name=\"{n}\"")))
        .collect();
    let lio = render_files(&lio_cluster(), &secrets(&lio_cluster())).unwrap();
    for x in [cib, text(&lio, "alpha/cib.xml")] {
        for l in x
            .lines()
            .filter(|l| l.contains("id=\"drbd-r0-params-") && l.contains("<nvpair"))
        {
            let name = l
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert!(known.contains(&name), "unknown agent parameter {name}");
        }
    }
}

// ----------------------------------------------------------------------------------
// Snapshots: every rendered text file of the fixtures, byte for byte
// ----------------------------------------------------------------------------------

/// Fixed secrets, so that the secret files can be snapshotted too: a CHAP entry for
/// every `chap = true` initiator and, with agent fencing, a fence password per node.
fn fixed_secrets(c: &Cluster) -> Secrets {
    let mut chap = std::collections::BTreeMap::new();
    for (k, i) in c.initiators.iter().filter(|i| i.chap).enumerate() {
        chap.insert(
            i.name.clone(),
            sanforge::ha::cluster::ChapSecret {
                user: format!("user{k}"),
                password: format!("Chap{k}Password0"),
            },
        );
    }
    let fence_passwords = match c.fencing {
        sanforge::ha::cluster::Fencing::Agent { .. } => c
            .nodes
            .iter()
            .map(|n| (n.name.clone(), format!("fence-{}-pw", n.name)))
            .collect(),
        _ => Default::default(),
    };
    Secrets {
        corosync_authkey: "5a".repeat(64),
        drbd_shared_secret: "DrbdSharedSecret0123456789".into(),
        chap,
        fence_passwords,
    }
}

/// Snapshots every text file rendered for `c` as `PREFIX__NODE__FILE`; binary files
/// (the authkey, the secrets initrd) are listed by the MANIFEST snapshot instead.
fn snapshot_render(prefix: &str, c: &Cluster) {
    let r = render_files(c, &fixed_secrets(c)).unwrap();
    let mut names = Vec::new();
    for f in &r.files {
        let path = f.path.display().to_string();
        if path.ends_with("/secrets/authkey") || path.ends_with("/secrets/initrd.cpio") {
            continue;
        }
        let body = String::from_utf8(f.data.clone()).unwrap();
        let name = format!("{prefix}__{}", path.replace('/', "__"));
        insta::assert_snapshot!(name.clone(), body);
        names.push(name);
    }
    assert!(names.len() >= 16, "{names:?}");
}

#[test]
fn scst_fixture_renders_as_snapshotted() {
    snapshot_render("scst", &cluster());
}

#[test]
fn lio_fixture_renders_as_snapshotted() {
    snapshot_render("lio", &lio_cluster());
}

/// The SCST fixture with shared-disk sbd fencing (the sbd file, the sbd service, the
/// `fence_sbd` device).
#[test]
fn sbd_variant_renders_as_snapshotted() {
    let t = fixture_text();
    let start = t.find("mode = \"agent\"").unwrap();
    let end = t.find("[[node]]").unwrap();
    let sbd = format!(
        "{}mode = \"sbd\"\nwatchdog = \"/dev/watchdog\"\ndevices = [\"/dev/disk/by-id/sbd1\"]\n\n{}",
        &t[..start],
        &t[end..]
    );
    let c = Cluster::parse(Path::new("cluster.toml"), &sbd).unwrap();
    snapshot_render("sbd", &c);
}

// ----------------------------------------------------------------------------------
// LVM on DRBD (`[[lvm]]`, `lv` of an export)
// ----------------------------------------------------------------------------------

fn lvm_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster-lio-lvm.toml")
}

fn lvm_text() -> String {
    std::fs::read_to_string(lvm_path()).unwrap()
}

fn lvm_cluster() -> Cluster {
    Cluster::parse(&lvm_path(), &lvm_text()).unwrap()
}

fn lvm_mutate(from: &str, to: &str) -> String {
    let t = lvm_text();
    assert!(t.contains(from), "lvm fixture lacks `{from}`");
    t.replacen(from, to, 1)
}

#[test]
fn lvm_fixture_renders_as_snapshotted() {
    snapshot_render("lio-lvm", &lvm_cluster());
}

/// Each node boots with the VG inactive and its own DRBD backing disk hidden from
/// LVM; the CIB activates the VG between the DRBD promote and the LUNs, on the LV.
#[test]
fn lvm_on_drbd_leaves_the_vg_to_the_cluster_and_exports_the_lv() {
    use sanforge::config::storage::Activate;
    let c = lvm_cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    for n in ["alpha", "beta"] {
        let toml = text(&r, &format!("{n}/node.toml"));
        let node = NodeConfig::parse(Path::new("node.toml"), &toml).unwrap();
        assert_eq!(node.storage.lvm.len(), 1, "{toml}");
        assert_eq!(node.storage.lvm[0].vg, "vgha");
        assert_eq!(node.storage.lvm[0].activate, Activate::Ha);
        assert_eq!(node.storage.lvm_reject, ["/dev/vda"], "{toml}");
        let conf = sanforge::init::storage::render_lvm_conf(&node.storage);
        assert!(conf.contains("system_id_source = \"uname\""), "{conf}");
        assert!(conf.contains("\"r|^/dev/vda$|\""), "{conf}");
        let requires: Vec<_> = node.ha.as_ref().unwrap().requires.iter().collect();
        for (path, package) in [
            (
                "/usr/lib/ocf/resource.d/heartbeat/LVM-activate",
                "resource-agents",
            ),
            ("/sbin/lvm", "lvm2"),
            ("/sbin/dmsetup", "dmsetup"),
            ("/usr/bin/pgrep", "procps"),
        ] {
            assert!(
                requires
                    .iter()
                    .any(|q| q.path == path && q.package == package),
                "{path} ({package}) not required:\n{toml}"
            );
        }
    }
    // The fixture without [[lvm]] requires none of it and has no [storage].
    let plain = render_files(&lio_cluster(), &secrets(&lio_cluster())).unwrap();
    let toml = text(&plain, "alpha/node.toml");
    assert!(
        !toml.contains("LVM-activate") && !toml.contains("[storage]"),
        "{toml}"
    );

    let cib = text(&r, "alpha/cib.xml");
    for needle in [
        "<primitive id=\"lvm-r0\" class=\"ocf\" provider=\"heartbeat\" type=\"LVM-activate\">",
        "name=\"vgname\" value=\"vgha\"",
        "name=\"vg_access_mode\" value=\"system_id\"",
        "<rsc_colocation id=\"col-lvm-r0-with-drbd-r0-clone\" rsc=\"lvm-r0\" with-rsc=\"drbd-r0-clone\" with-rsc-role=\"Promoted\" score=\"INFINITY\"/>",
        "first=\"drbd-r0-clone\" first-action=\"promote\" then=\"lvm-r0\" then-action=\"start\"",
        "rsc=\"alua-r0-clone\" rsc-role=\"Promoted\" with-rsc=\"lvm-r0\" score=\"INFINITY\"",
        "first=\"lvm-r0\" first-action=\"start\" then=\"alua-r0-clone\" then-action=\"promote\"",
        "name=\"lio_luns\" value=\"disk0=/dev/vgha/lun0@0\"",
    ] {
        assert!(cib.contains(needle), "`{needle}` not in:\n{cib}");
    }
    assert_eq!(render::lio_luns(&c, "r0"), "disk0=/dev/vgha/lun0@0");
    assert_eq!(render::lio_luns(&lio_cluster(), "r0"), "disk0=/dev/drbd0@0");
}

/// With SCST the device's `filename` is the LV.
#[test]
fn lvm_on_drbd_with_scst_names_the_lv_in_scst_conf() {
    let t = mutate(
        "[[export]]\nname = \"disk0\"\ndrbd = \"r0\"\n",
        "[[lvm]]\nvg = \"vg-san\"\ndrbd = \"r0\"\n\n[[export]]\nname = \"disk0\"\ndrbd = \"r0\"\nlv = \"disk0\"\n",
    );
    let c = Cluster::parse(Path::new("cluster.toml"), &t).unwrap();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let conf = text(&r, "alpha/alpha.scst.conf");
    assert!(conf.contains("filename /dev/vg-san/disk0"), "{conf}");
    assert!(!conf.contains("/dev/drbd0"), "{conf}");
    assert!(text(&r, "alpha/cib.xml").contains("type=\"LVM-activate\""));
    // The device is created inactive (`active 0`, `bind_alua_state 1`): the boot keeps
    // it although the LV exists only after LVM-activate, and SCST opens it when the
    // alua agent makes its group active. The render no longer warns about it.
    let dev = conf
        .split("DEVICE disk0")
        .nth(1)
        .and_then(|d| d.split('}').next())
        .unwrap_or_default();
    assert!(
        dev.contains("active 0") && dev.contains("bind_alua_state 1"),
        "{conf}"
    );
    assert!(
        !r.warnings.iter().any(|w| w.contains("disk0")),
        "{:?}",
        r.warnings
    );
}

/// The index in `out` of the first line that holds every one of `words`.
fn action_at(out: &str, words: &[&str]) -> usize {
    out.lines()
        .position(|l| words.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no action {words:?} in:\n{out}"))
}

#[test]
fn lvm_cib_passes_crm_verify_and_orders_the_vg_between_drbd_and_the_luns() {
    require("crm_verify", "pacemaker-cli-utils");
    require("crm_simulate", "pacemaker-cli-utils");
    let c = lvm_cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.xml");
    std::fs::write(&live, live_cib(&text(&r, "alpha/cib.xml"))).unwrap();
    run(Cmd::new(tool("crm_verify"))
        .arg("--xml-file")
        .arg(&live)
        .arg("-V"));
    // Start: DRBD promoted, then the VG, then the LUNs (alua promote), on alpha.
    let s1 = dir.path().join("s1.xml");
    let out = run(Cmd::new(tool("crm_simulate"))
        .arg("-x")
        .arg(&live)
        .arg("-S")
        .arg("-O")
        .arg(&s1));
    assert_eq!(promoted_on(&out, "drbd-r0-clone"), "alpha", "{out}");
    assert_eq!(promoted_on(&out, "alua-r0-clone"), "alpha", "{out}");
    let after = out
        .split("Executing Cluster Transition")
        .nth(1)
        .unwrap_or(&out);
    let drbd = action_at(after, &["drbd-r0", "promote", "alpha"]);
    let vg = action_at(after, &["lvm-r0", "start", "alpha"]);
    let luns = action_at(after, &["alua-r0", "promote", "alpha"]);
    assert!(drbd < vg && vg < luns, "{out}");
    assert!(
        out.contains("lvm-r0\t(ocf:heartbeat:LVM-activate):\t Started alpha"),
        "{out}"
    );

    // A planned move to beta: the LUNs go first, then the VG, then DRBD's demote;
    // on beta the reverse.
    let moved = dir.path().join("moved.xml");
    std::fs::write(
        &moved,
        std::fs::read_to_string(&s1).unwrap().replacen(
            "<constraints>",
            "<constraints>\n      <rsc_location id=\"cli-prefer-drbd-r0-clone\" rsc=\"drbd-r0-clone\" role=\"Promoted\" node=\"beta\" score=\"INFINITY\"/>",
            1,
        ),
    )
    .unwrap();
    let out = run(Cmd::new(tool("crm_simulate"))
        .arg("-x")
        .arg(&moved)
        .arg("-S"));
    assert_eq!(promoted_on(&out, "drbd-r0-clone"), "beta", "{out}");
    let after = out
        .split("Executing Cluster Transition")
        .nth(1)
        .unwrap_or(&out);
    let order = [
        action_at(after, &["alua-r0", "demote", "alpha"]),
        action_at(after, &["lvm-r0", "stop", "alpha"]),
        action_at(after, &["drbd-r0", "demote", "alpha"]),
        action_at(after, &["drbd-r0", "promote", "beta"]),
        action_at(after, &["lvm-r0", "start", "beta"]),
        action_at(after, &["alua-r0", "promote", "beta"]),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{out}");
}

#[test]
fn lvm_validation_names_the_field() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            lvm_mutate("vg = \"vgha\"", "vg = \"-vg\""),
            "vg = \"-vg\"",
            "lvm.vg `-vg`: expected a volume group name",
        ),
        (
            lvm_mutate("vg = \"vgha\"\ndrbd = \"r0\"", "vg = \"vgha\"\ndrbd = \"r9\""),
            "drbd = \"r9\"",
            "lvm `vgha`: drbd `r9` is not a [[drbd]] resource",
        ),
        (
            lvm_mutate(
                "[[lvm]]\nvg = \"vgha\"\ndrbd = \"r0\"\n",
                "[[lvm]]\nvg = \"vgha\"\ndrbd = \"r0\"\n\n[[lvm]]\nvg = \"vgb\"\ndrbd = \"r0\"\n",
            ),
            "drbd = \"r0\"\n\n[[export]]",
            "lvm `vgb`: drbd `r0` already carries volume group `vgha`",
        ),
        (
            lvm_mutate(
                "[[lvm]]\nvg = \"vgha\"\ndrbd = \"r0\"\n",
                "[[lvm]]\nvg = \"vgha\"\ndrbd = \"r0\"\n\n[[lvm]]\nvg = \"vgha\"\ndrbd = \"r0\"\n",
            ),
            "vg = \"vgha\"\ndrbd = \"r0\"\n\n[[export]]",
            "lvm.vg `vgha` is listed twice",
        ),
        (
            lvm_mutate(
                "[drbd.nodes.beta]\ndisk = \"/dev/vda\"",
                "[drbd.nodes.beta]\ndisk = \"/dev/vgha/drbd\"",
            ),
            "vg = \"vgha\"",
            "lvm.vg `vgha`: node `beta`'s DRBD backing disk /dev/vgha/drbd is in a volume group of that name",
        ),
        (
            lvm_mutate("lv = \"lun0\"", "lv = \"snapshot0\""),
            "lv = \"snapshot0\"",
            "export `disk0`: lv `snapshot0`: expected a logical volume name",
        ),
        (
            lvm_mutate("[[lvm]]\nvg = \"vgha\"\ndrbd = \"r0\"\n", ""),
            "lv = \"lun0\"",
            "export `disk0`: lv `lun0` needs a volume group on drbd `r0`: add [[lvm]]",
        ),
        (
            lvm_mutate("lv = \"lun0\"\n", ""),
            "drbd = \"r0\"\nlun = 0",
            "export `disk0`: drbd `r0` is the physical volume of volume group `vgha` ([[lvm]]): export one of its logical volumes",
        ),
        (
            lvm_mutate(
                "[[initiator]]",
                "[[export]]\nname = \"disk1\"\ndrbd = \"r0\"\nlv = \"lun0\"\nlun = 1\n\n[[initiator]]",
            ),
            "lv = \"lun0\"\nlun = 1",
            "export `disk1`: lv `lun0` on drbd `r0` is already exported as `disk0`",
        ),
    ];
    for (t, at, needle) in cases {
        let e = error_for(&t);
        assert!(e.message.contains(needle), "`{needle}` not in: {e}");
        let line = t[..t.rfind(at).unwrap_or_else(|| panic!("{at}"))]
            .lines()
            .count()
            + 1;
        assert_eq!(e.line, line, "`{needle}` at the wrong line: {e}\n{t}");
    }
    // Two LVs of the VG are two LUNs.
    let c = Cluster::parse(
        Path::new("c.toml"),
        &lvm_mutate(
            "[[initiator]]",
            "[[export]]\nname = \"disk1\"\ndrbd = \"r0\"\nlv = \"lun1\"\nlun = 1\n\n[[initiator]]",
        ),
    )
    .unwrap();
    assert_eq!(
        render::lio_luns(&c, "r0"),
        "disk0=/dev/vgha/lun0@0 disk1=/dev/vgha/lun1@1"
    );
}

// ----------------------------------------------------------------------------------
// The SCST cluster of the QEMU test (tests/fixtures/cluster/cluster-scst.toml)
// ----------------------------------------------------------------------------------

fn scst_qemu_cluster() -> Cluster {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster-scst.toml");
    Cluster::parse(&p, &std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Each SCST node's node.toml names its own scst.conf (installed at its own path: one
/// image serves both nodes) and starts iscsi-scstd through `[scst]`, before the init
/// adds the iSCSI target; with DRBD 8.4 no DRBD 9 transport module is loaded.
#[test]
fn scst_nodes_apply_their_own_scst_conf_with_the_iscsi_daemon() {
    let c = scst_qemu_cluster();
    assert_eq!(c.drbd_version, DrbdVersion::V84);
    let r = render_files(&c, &secrets(&c)).unwrap();
    // Only the warning the test cluster asks for (`fencing.mode = "off"`).
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("fencing off"), "{:?}", r.warnings);
    for n in ["alpha", "beta"] {
        let node = NodeConfig::parse(Path::new("node.toml"), &text(&r, &format!("{n}/node.toml")))
            .unwrap();
        let s = node.scst.clone().expect("[scst] in an SCST node config");
        // Relative: beside node.toml at build time, under /etc/sanforge in the image.
        assert_eq!(s.conf, format!("{n}.scst.conf"));
        assert_eq!(
            s.iscsi_daemon,
            Some(vec!["/usr/sbin/iscsi-scstd".to_string(), "-f".to_string()])
        );
        assert!(
            !node.services.iter().any(|s| s.name == "iscsi-scstd"),
            "iscsi-scstd as a plain service starts after the targets step"
        );
        assert!(
            !node.modules.load.iter().any(|m| m == "drbd_transport_tcp"),
            "DRBD 8.4 has no transport module: {:?}",
            node.modules.load
        );
        for m in ["dlm", "drbd", "scst", "scst_vdisk", "iscsi_scst"] {
            assert!(node.modules.load.iter().any(|x| x == m), "{m}");
        }
        let manifest = text(&r, &format!("{n}/MANIFEST"));
        assert!(
            manifest.contains(&format!("{n}.scst.conf -> /etc/sanforge/{n}.scst.conf ")),
            "{manifest}"
        );
        assert!(
            manifest.contains("dlm.conf -> /etc/dlm/dlm.conf "),
            "{manifest}"
        );
        // Its own target only; the peer's appears in its target group.
        let conf = text(&r, &format!("{n}/{n}.scst.conf"));
        let other = if n == "alpha" { "beta" } else { "alpha" };
        assert!(conf.contains(&format!("TARGET iqn.2026-11.org.example:sanscst.{n} {{")));
        assert!(conf.contains(&format!("TARGET_GROUP {other} {{")), "{conf}");
    }
    // The cluster.toml fixture (DRBD 9) keeps its transport module.
    let c9 = cluster();
    let r9 = render_files(&c9, &secrets(&c9)).unwrap();
    assert!(text(&r9, "alpha/node.toml").contains("drbd_transport_tcp"));
}

/// dlm.conf: TCP (one address per node, link 0) always; `enable_fencing=0` only when
/// the cluster has no fencing (else the DLM waits for the fence, as it must).
#[test]
fn dlm_conf_uses_tcp_and_waits_for_fencing_unless_fencing_is_off() {
    let off = scst_qemu_cluster();
    let r = render_files(&off, &secrets(&off)).unwrap();
    let d = text(&r, "alpha/dlm.conf");
    let settings: Vec<&str> = d.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(settings, ["protocol=tcp", "enable_fencing=0"], "{d}");
    let fenced = cluster();
    let r = render_files(&fenced, &secrets(&fenced)).unwrap();
    let d = text(&r, "alpha/dlm.conf");
    let settings: Vec<&str> = d.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(settings, ["protocol=tcp"], "{d}");
    // No cluster_mode, no DLM: no dlm.conf.
    let lio = lio_cluster();
    let r = render_files(&lio, &secrets(&lio)).unwrap();
    assert!(r.get("alpha/dlm.conf").is_none());
}

// ----------------------------------------------------------------------------------
// Seed 003: two groups active/active (tests/fixtures/cluster/cluster-scst-aa.toml)
// ----------------------------------------------------------------------------------

fn aa_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster-scst-aa.toml")
}

fn aa_cluster() -> Cluster {
    Cluster::parse(&aa_path(), &std::fs::read_to_string(aa_path()).unwrap()).unwrap()
}

#[test]
fn scst_active_active_fixture_renders_as_snapshotted() {
    snapshot_render("scst-aa", &aa_cluster());
}

/// Each DRBD resource's `preferred-node` becomes a Promoted-role preference when the
/// exported resources prefer different nodes, and only then: the one-resource
/// fixtures keep no role preference (no automatic failback).
#[test]
fn preferred_nodes_spread_over_the_nodes_become_promoted_role_preferences() {
    let c = aa_cluster();
    assert!(render::spreads_promoted_roles(&c));
    let cib = text(&render_files(&c, &secrets(&c)).unwrap(), "alpha/cib.xml");
    for want in [
        "<rsc_location id=\"loc-drbd-r0-clone-promoted-on-alpha\" rsc=\"drbd-r0-clone\" role=\"Promoted\" node=\"alpha\" score=\"50\"/>",
        "<rsc_location id=\"loc-drbd-r1-clone-promoted-on-beta\" rsc=\"drbd-r1-clone\" role=\"Promoted\" node=\"beta\" score=\"50\"/>",
        // Each group (its ALUA device group) carried by its own DRBD resource.
        "<nvpair id=\"drbd-r0-params-device_group\" name=\"device_group\" value=\"r0\"/>",
        "<nvpair id=\"drbd-r1-params-device_group\" name=\"device_group\" value=\"r1\"/>",
    ] {
        assert!(cib.contains(want), "CIB lacks `{want}`:\n{cib}");
    }
    assert_eq!(cib.matches("<rsc_location ").count(), 2, "{cib}");
    // Both preferring the same node: not spread, nothing rendered.
    let text_same = std::fs::read_to_string(aa_path()).unwrap().replacen(
        "preferred-node = \"beta\"",
        "preferred-node = \"alpha\"",
        1,
    );
    let same = Cluster::parse(&aa_path(), &text_same).unwrap();
    assert!(!render::spreads_promoted_roles(&same));
    let cib = text(
        &render_files(&same, &secrets(&same)).unwrap(),
        "alpha/cib.xml",
    );
    assert!(!cib.contains("role=\"Promoted\" node="), "{cib}");
    // The one-resource fixtures: no role preference.
    for c in [cluster(), lio_cluster()] {
        assert!(!render::spreads_promoted_roles(&c));
    }
}

/// A device group: its name, devices and target groups (`NAME=GROUP_ID`, state).
type DgSummary = (String, Vec<String>, Vec<(String, String)>);

/// Each node's scst.conf: a device group per DRBD resource holding only its own
/// device, each with a target group per node (same group ids, unpromoted), and both
/// LUNs in the initiators' group of the node's target.
#[test]
fn scst_active_active_has_a_device_group_per_resource() {
    let c = aa_cluster();
    for n in ["alpha", "beta"] {
        let node = c.node(n).unwrap();
        let m = render::scst_model(&c, node);
        let groups: Vec<DgSummary> = m
            .device_groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.devices.iter().map(|d| d.name.clone()).collect(),
                    g.target_groups
                        .iter()
                        .map(|t| {
                            let attr = |k: &str| {
                                t.attrs
                                    .iter()
                                    .find(|a| a.name == k)
                                    .map(|a| a.value.clone())
                                    .unwrap_or_default()
                            };
                            (format!("{}={}", t.name, attr("group_id")), attr("state"))
                        })
                        .collect(),
                )
            })
            .collect();
        let tgs = vec![
            ("alpha=1".to_string(), "standby".to_string()),
            ("beta=2".to_string(), "standby".to_string()),
        ];
        assert_eq!(
            groups,
            vec![
                ("r0".to_string(), vec!["disk0".to_string()], tgs.clone()),
                ("r1".to_string(), vec!["disk1".to_string()], tgs),
            ],
            "{n}"
        );
        let luns: Vec<(u32, String)> = m.drivers[0].targets[0].groups[0]
            .luns
            .iter()
            .map(|l| (l.number, l.device.clone()))
            .collect();
        assert_eq!(luns, vec![(0, "disk0".into()), (1, "disk1".into())], "{n}");
        let errors: Vec<_> = scst::validate(&m)
            .into_iter()
            .filter(|d| d.severity == scst::Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{n}: {errors:?}");
    }
}

/// Pacemaker itself (crm_simulate): one Primary on each node at start, both groups
/// on the survivor when a node fails, and each back on its own node when it returns.
#[test]
fn active_active_cib_places_one_primary_on_each_node_and_fails_back() {
    require("crm_verify", "pacemaker-cli-utils");
    require("crm_simulate", "pacemaker-cli-utils");
    let c = aa_cluster();
    let r = render_files(&c, &secrets(&c)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.xml");
    std::fs::write(
        &live,
        live_cib_for(&text(&r, "alpha/cib.xml"), &["r0", "r1"]),
    )
    .unwrap();
    run(Cmd::new(tool("crm_verify"))
        .arg("--xml-file")
        .arg(&live)
        .arg("-V"));
    let sim = |from: &Path, args: &[&str], to: &str| {
        let out_path = dir.path().join(to);
        let out = run(Cmd::new(tool("crm_simulate"))
            .arg("-x")
            .arg(from)
            .arg("-S")
            .args(args)
            .arg("-O")
            .arg(&out_path));
        (out, out_path)
    };
    let placed =
        |out: &str| ["drbd-r0-clone", "drbd-r1-clone"].map(|clone| promoted_on(out, clone));
    let (out, s1) = sim(&live, &[], "s1.xml");
    assert_eq!(placed(&out), ["alpha", "beta"], "{out}");
    let (out, s2) = sim(&s1, &["-f", "alpha"], "s2.xml");
    assert_eq!(placed(&out), ["beta", "beta"], "{out}");
    let (out, _) = sim(&s2, &["-u", "alpha"], "s3.xml");
    assert_eq!(placed(&out), ["alpha", "beta"], "{out}");
}
