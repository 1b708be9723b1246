//! Drives `ocf:sanforge:drbd` through the built `sanforge-init`: its meta-data validated
//! with xmllint against resource-agents' `ra-api-1.dtd` and `metadata.rng`, the
//! `argv[0]` dispatch (a symlink named `drbd`), and a switchover's actions on one node
//! (`sanforge-init --root DIR ocf-drbd ACTION`: `/proc/drbd` is `DIR/proc/drbd`, the
//! tools answer from `DIR/fake-run`, and `drbdsetup-84 SUB 0` leaves the `/proc/drbd`
//! of `fake-run/drbdsetup-84.SUB.tree`), checking each exit code and the processes it ran.
//! The agent's own decisions (scores, refusals, retries) are unit-tested in
//! src/agent/drbd/tests.rs.

use std::fs;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sanforge-init");
const DTD_DIR: &str = "/usr/share/resource-agents";

fn xmllint() -> &'static str {
    ["/usr/bin/xmllint", "/bin/xmllint"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("xmllint not found: install the Debian package libxml2-utils")
}

#[test]
fn metadata_is_valid_ocf_and_argv0_dispatches() {
    let t = tempfile::tempdir().unwrap();
    // Called as Pacemaker calls it: through a link named after the agent.
    let agent = t.path().join("drbd");
    std::os::unix::fs::symlink(BIN, &agent).unwrap();
    let o = Command::new(&agent)
        .env_clear()
        .arg("meta-data")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let xml = t.path().join("drbd.xml");
    fs::write(&xml, &o.stdout).unwrap();
    assert!(
        Path::new(DTD_DIR).join("ra-api-1.dtd").exists(),
        "{DTD_DIR}/ra-api-1.dtd missing: install the Debian package resource-agents"
    );
    fs::copy(
        Path::new(DTD_DIR).join("ra-api-1.dtd"),
        t.path().join("ra-api-1.dtd"),
    )
    .unwrap();
    for check in [
        vec!["--noout", "--valid"],
        vec![
            "--noout",
            "--relaxng",
            "/usr/share/resource-agents/metadata.rng",
        ],
    ] {
        let v = Command::new(xmllint())
            .args(&check)
            .arg(&xml)
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{check:?}: {}",
            String::from_utf8_lossy(&v.stderr)
        );
    }
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("<resource-agent name=\"drbd\""), "{text}");
    // An unknown action through the link: 3 (unimplemented), named on stderr.
    let o = Command::new(&agent)
        .env_clear()
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("drbd(default)["));
}

const V84: &str = "version: 8.4.11 (api:1/proto:86-101)\n";

/// A node's tree: `/proc/drbd` holding `line` for minor 0, and the tools.
fn node(dir: &Path, line: &str) {
    fs::create_dir_all(dir.join("proc")).unwrap();
    fs::write(dir.join("proc/drbd"), format!("{V84}{line}")).unwrap();
    let run = dir.join("fake-run");
    fs::create_dir_all(&run).unwrap();
    fs::write(run.join("drbdadm"), "").unwrap();
    fs::write(run.join("drbdsetup-84"), "").unwrap();
    fs::write(run.join("crm_attribute"), "").unwrap();
}

/// `drbdsetup-84 SUB 0` leaves minor 0 as `line`.
fn leaves(dir: &Path, sub: &str, line: &str) {
    let run = dir.join("fake-run");
    fs::write(run.join(format!("drbdsetup-84.{sub}")), "").unwrap();
    let tree = run.join(format!("drbdsetup-84.{sub}.tree/proc"));
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("drbd"), format!("{V84}{line}")).unwrap();
}

/// `sanforge-init --root DIR ocf-drbd ACTION`: exit code, the processes run, stderr.
fn act(dir: &Path, action: &str) -> (i32, Vec<String>, String) {
    let o = Command::new(BIN)
        .env_clear()
        .args(["--root"])
        .arg(dir)
        .args(["ocf-drbd", action])
        .env("OCF_RESOURCE_INSTANCE", "drbd-r0:0")
        .env("OCF_RESKEY_drbd_resource", "r0")
        .env("OCF_RESKEY_drbd_minor", "0")
        .env("OCF_RESKEY_CRM_meta_interval", "29000")
        .output()
        .unwrap();
    let stdout = String::from_utf8(o.stdout).unwrap();
    let runs = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("run "))
        .map(str::to_string)
        .collect();
    (
        o.status.code().unwrap(),
        runs,
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn a_switchover_runs_one_process_per_action() {
    let t = tempfile::tempdir().unwrap();
    let (old, new) = (t.path().join("alpha"), t.path().join("beta"));
    node(
        &old,
        " 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n",
    );
    node(
        &new,
        " 0: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----\n",
    );
    let set = "crm_attribute -q -n master-drbd-r0 -l reboot -v 10000";
    assert_eq!(
        act(&old, "monitor"),
        (8, vec![set.to_string()], String::new())
    );
    assert_eq!(
        act(&new, "monitor"),
        (0, vec![set.to_string()], String::new())
    );
    leaves(
        &old,
        "secondary",
        " 0: cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate C r-----\n",
    );
    let (rc, runs, err) = act(&old, "demote");
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        runs,
        ["/lib/drbd/drbdsetup-84 secondary 0"],
        "the score is unchanged"
    );
    leaves(
        &new,
        "primary",
        " 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n",
    );
    let (rc, runs, err) = act(&new, "promote");
    assert_eq!(rc, 0, "{err}");
    assert_eq!(runs, ["/lib/drbd/drbdsetup-84 primary 0"]);
    assert_eq!(act(&new, "monitor"), (8, vec![], String::new()));
    // The run-time memory of the score stays in the node's tree.
    assert_eq!(
        fs::read_to_string(new.join("run/sanforge/ocf-drbd/drbd-r0.score")).unwrap(),
        "10000"
    );
}
