//! Drives the OCF agent `ocf:sanforge:alua` (the built `sanforge-init ocf-alua ACTION`,
//! or a symlink named `alua`) against fake SCST sysfs and LIO configfs trees, checks
//! exit codes and file contents after every action, validates the meta-data with
//! xmllint, and runs Debian's `ocf-tester` (package resource-agents) on the agent.
//! With `sysfs_root` naming a tree, sanforge-init runs the agent over its recording
//! `FakeSys`, which plays sysfs and configfs there; the last tests run the agent
//! in-process over that fake and check the exact calls it makes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sanforge-init");
const OCF_TESTER: &str = "/usr/sbin/ocf-tester";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `sanforge-init ocf-alua ACTION` with only the given OCF variables set.
fn agent(action: &str, env: &[(&str, String)]) -> Out {
    let mut c = Command::new(BIN);
    c.env_clear()
        .arg("ocf-alua")
        .arg(action)
        .env("OCF_RESOURCE_INSTANCE", "p_alua:0");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn put(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// A temporary directory everyone may traverse (ocf-tester runs meta-data as `nobody`
/// when it runs as root).
fn tmp() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

struct Scst {
    root: PathBuf,
}

impl Scst {
    /// `device_groups/dg1/target_groups/{local,remote}` as scst.conf leaves them at boot
    /// (local standby, ports disabled by the init), plus target `iscsi/iqn.x`.
    fn new(dir: &Path) -> Self {
        let root = dir.join("sys");
        let s = root.join("kernel/scst_tgt");
        put(&s.join("version"), "3.8.0\n");
        put(&s.join("last_sysfs_mgmt_res"), "0\n");
        put(&s.join("device_groups/mgmt"), "");
        let dg = s.join("device_groups/dg1");
        put(&dg.join("devices/mgmt"), "");
        for (tg, id, state) in [
            ("local", "1", "standby\n"),
            ("remote", "2", "active\n[key]\n"),
        ] {
            put(
                &dg.join(format!("target_groups/{tg}/group_id")),
                &format!("{id}\n[key]\n"),
            );
            put(&dg.join(format!("target_groups/{tg}/state")), state);
        }
        put(&s.join("targets/iscsi/iqn.x/enabled"), "0\n");
        put(&s.join("targets/iscsi/iqn.x/rel_tgt_id"), "1\n");
        Scst { root }
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OCF_RESKEY_sysfs_root", self.root.display().to_string()),
            ("OCF_RESKEY_stack", "scst".into()),
            ("OCF_RESKEY_device_group", "dg1".into()),
            ("OCF_RESKEY_local_target_group", "local".into()),
            ("OCF_RESKEY_remote_target_group", "remote".into()),
            ("OCF_RESKEY_ports", "iscsi/iqn.x".into()),
        ]
    }
    fn tg(&self, tg: &str) -> PathBuf {
        self.root.join(format!(
            "kernel/scst_tgt/device_groups/dg1/target_groups/{tg}/state"
        ))
    }
    fn port(&self) -> PathBuf {
        self.root
            .join("kernel/scst_tgt/targets/iscsi/iqn.x/enabled")
    }
    /// (local state, remote state, port enabled) as the files hold them.
    fn snapshot(&self) -> (String, String, String) {
        (
            read(&self.tg("local")),
            read(&self.tg("remote")),
            read(&self.port()),
        )
    }
}

/// The order in which the agent reported writing states to `file` (from its log).
fn writes_to(stderr: &str, file: &Path) -> Vec<String> {
    let needle = format!("({})", file.display());
    stderr
        .lines()
        .filter(|l| l.ends_with(&needle))
        .filter_map(|l| {
            l.split(": ")
                .nth(3)
                .map(|s| s.trim_end_matches(&needle).trim().to_string())
        })
        .collect()
}

#[test]
fn scst_lifecycle_writes_the_states_and_reports_the_roles() {
    let t = tmp();
    let s = Scst::new(t.path());
    let env = s.env();
    let step = |action: &str, want: i32| {
        let o = agent(action, &env);
        assert_eq!(o.code, want, "{action}: stderr:\n{}", o.stderr);
        o
    };
    step("validate-all", 0);
    // At boot the ports are disabled: the probe says stopped.
    step("monitor", 7);

    let o = step("start", 0);
    assert!(
        o.stderr.contains("alua(p_alua:0)["),
        "log prefix: {}",
        o.stderr
    );
    assert_eq!(
        s.snapshot(),
        ("standby\n".into(), "active\n[key]\n".into(), "1\n".into())
    );
    assert!(
        writes_to(&o.stderr, &s.tg("local")).is_empty(),
        "start rewrote an unchanged state: {}",
        o.stderr
    );
    step("monitor", 0);

    let o = step("promote", 0);
    assert_eq!(
        writes_to(&o.stderr, &s.tg("local")),
        ["transitioning", "active"],
        "{}",
        o.stderr
    );
    assert_eq!(writes_to(&o.stderr, &s.tg("remote")), ["standby"]);
    assert_eq!(
        s.snapshot(),
        ("active\n".into(), "standby\n".into(), "1\n".into())
    );
    step("monitor", 8);
    step("promote", 0);

    let o = step("demote", 0);
    assert_eq!(
        writes_to(&o.stderr, &s.tg("local")),
        ["transitioning", "standby"],
        "{}",
        o.stderr
    );
    assert_eq!(
        s.snapshot(),
        ("standby\n".into(), "active\n".into(), "1\n".into())
    );
    step("monitor", 0);
    step("demote", 0);

    // Stop from promoted: transitioning, then offline, ports off.
    step("promote", 0);
    let o = step("stop", 0);
    assert_eq!(
        writes_to(&o.stderr, &s.tg("local")),
        ["transitioning", "offline"],
        "{}",
        o.stderr
    );
    assert_eq!(
        s.snapshot(),
        ("offline\n".into(), "standby\n".into(), "0\n".into())
    );
    step("monitor", 7);
    step("stop", 0);
    step("monitor", 7);
    step("notify", 0);

    // Start again from offline: no transitioning needed, straight to standby.
    let o = step("start", 0);
    assert_eq!(
        writes_to(&o.stderr, &s.tg("local")),
        ["standby"],
        "{}",
        o.stderr
    );
    assert_eq!(
        s.snapshot(),
        ("standby\n".into(), "active\n".into(), "1\n".into())
    );
}

/// Two device groups on the same ports (one per DRBD resource, seed 003's
/// active/active cluster): the other group's instance enabled the ports first, so
/// this one looks started before its start ran; its start must still set the remote
/// group promoted (scst.conf left it unpromoted), or RTPG through this node's port
/// reports no active path for the device at all.
#[test]
fn scst_start_on_ports_another_group_enabled_still_sets_the_remote_group() {
    let t = tmp();
    let s = Scst::new(t.path());
    put(&s.tg("remote"), "standby\n");
    put(&s.port(), "1\n");
    let env = s.env();
    let o = agent("monitor", &env);
    assert_eq!(o.code, 0, "looks started: {}", o.stderr);
    let o = agent("start", &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        writes_to(&o.stderr, &s.tg("remote")),
        ["active"],
        "{}",
        o.stderr
    );
    assert!(
        writes_to(&o.stderr, &s.tg("local")).is_empty(),
        "{}",
        o.stderr
    );
    assert_eq!(
        s.snapshot(),
        ("standby\n".into(), "active\n".into(), "1\n".into())
    );
    // Started again: nothing to write.
    let o = agent("start", &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        writes_to(&o.stderr, &s.tg("remote")).is_empty(),
        "{}",
        o.stderr
    );
}

#[test]
fn scst_inconsistent_promoted_state_is_failed_promoted() {
    let t = tmp();
    let s = Scst::new(t.path());
    let env = s.env();
    assert_eq!(agent("start", &env).code, 0);
    assert_eq!(agent("promote", &env).code, 0);
    // Someone disabled the port behind Pacemaker's back.
    fs::write(s.port(), "0\n").unwrap();
    let o = agent("monitor", &env);
    assert_eq!(o.code, 9, "{}", o.stderr);
    assert!(
        o.stderr.contains("not every port is enabled"),
        "{}",
        o.stderr
    );
    // Both groups active/optimized: also failed promoted.
    fs::write(s.port(), "1\n").unwrap();
    fs::write(s.tg("remote"), "active\n").unwrap();
    assert_eq!(agent("monitor", &env).code, 9);
    // Left in transitioning: a generic failure.
    fs::write(s.tg("local"), "transitioning\n").unwrap();
    let o = agent("monitor", &env);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("transitioning"), "{}", o.stderr);
    // Garbage in the state file names the file.
    fs::write(s.tg("local"), "sideways\n").unwrap();
    let o = agent("monitor", &env);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(&s.tg("local").display().to_string()),
        "{}",
        o.stderr
    );
}

#[test]
fn stop_that_cannot_write_fails_so_pacemaker_fences() {
    let t = tmp();
    let s = Scst::new(t.path());
    let env = s.env();
    assert_eq!(agent("start", &env).code, 0);
    assert_eq!(agent("promote", &env).code, 0);
    // A directory in place of the state file: open(O_WRONLY) fails with EISDIR even for root.
    fs::remove_file(s.tg("local")).unwrap();
    fs::create_dir(s.tg("local")).unwrap();
    let o = agent("stop", &env);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!(
            "cannot write 'offline' to {}",
            s.tg("local").display()
        )),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("os error 21"),
        "errno missing: {}",
        o.stderr
    );
    assert!(o.stderr.contains("fence"), "{}", o.stderr);
    // The ports were still disabled.
    assert_eq!(read(&s.port()), "0\n");
    assert_eq!(agent("monitor", &env).code, 1);
}

#[test]
fn bad_parameters_are_not_configured() {
    let t = tmp();
    let s = Scst::new(t.path());
    let with = |k: &'static str, v: &str| {
        let mut e: Vec<(&str, String)> = s.env().into_iter().filter(|(n, _)| *n != k).collect();
        e.push((k, v.to_string()));
        e
    };
    for (k, v, needle) in [
        ("OCF_RESKEY_stack", "iet", "stack 'iet'"),
        ("OCF_RESKEY_local_target_group", "", "local_target_group"),
        ("OCF_RESKEY_device_group", "a/b", "device_group"),
        ("OCF_RESKEY_promoted_state", "standby", "promoted_state"),
        (
            "OCF_RESKEY_unpromoted_state",
            "transitioning",
            "unpromoted_state",
        ),
        ("OCF_RESKEY_ports", "iscsi", "DRIVER/TARGET"),
        ("OCF_RESKEY_CRM_meta_promoted_max", "2", "promoted-max"),
    ] {
        for action in ["validate-all", "start", "monitor", "promote"] {
            let o = agent(action, &with(k, v));
            assert_eq!(o.code, 6, "{action} with {k}={v}: {}", o.stderr);
            assert!(
                o.stderr.contains(needle),
                "{action} with {k}={v}: {}",
                o.stderr
            );
        }
    }
    // Nothing was written.
    assert_eq!(
        s.snapshot(),
        ("standby\n".into(), "active\n[key]\n".into(), "0\n".into())
    );
}

#[test]
fn missing_tree_is_not_installed() {
    let t = tmp();
    let s = Scst::new(t.path());
    let mut env = s.env();
    env.retain(|(k, _)| *k != "OCF_RESKEY_sysfs_root");
    env.push((
        "OCF_RESKEY_sysfs_root",
        t.path().join("nowhere").display().to_string(),
    ));
    let o = agent("validate-all", &env);
    assert_eq!(o.code, 5, "{}", o.stderr);
    assert!(o.stderr.contains("nowhere/kernel/scst_tgt"), "{}", o.stderr);
    assert_eq!(
        agent("monitor", &env).code,
        7,
        "a probe on a node without SCST says stopped"
    );
    assert_eq!(agent("start", &env).code, 5);
    assert_eq!(agent("stop", &env).code, 0, "nothing to stop");

    // The tree exists but the device group does not.
    let mut env = s.env();
    env.retain(|(k, _)| *k != "OCF_RESKEY_device_group");
    env.push(("OCF_RESKEY_device_group", "dg9".into()));
    let o = agent("validate-all", &env);
    assert_eq!(o.code, 5);
    assert!(o.stderr.contains("device group dg9"), "{}", o.stderr);
    assert_eq!(agent("monitor", &env).code, 7);
    // A port that does not exist.
    let mut env = s.env();
    env.push(("OCF_RESKEY_ports", "iscsi/iqn.x iscsi/iqn.missing".into()));
    env.retain(|(k, v)| !(*k == "OCF_RESKEY_ports" && v == "iscsi/iqn.x"));
    let o = agent("validate-all", &env);
    assert_eq!(o.code, 5, "{}", o.stderr);
    assert!(o.stderr.contains("port iscsi/iqn.missing"), "{}", o.stderr);
}

#[test]
fn actions_outside_the_api() {
    let t = tmp();
    let s = Scst::new(t.path());
    assert_eq!(agent("migrate_to", &s.env()).code, 3);
    assert_eq!(agent("reload", &s.env()).code, 3);
    let o = Command::new(BIN)
        .arg("ocf-alua")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "no action is an argument error");
    // Notify needs no parameters and always succeeds, logging what it was told.
    let logfile = t.path().join("ha.log");
    let o = agent(
        "notify",
        &[
            ("OCF_RESKEY_CRM_meta_notify_type", "post".into()),
            ("OCF_RESKEY_CRM_meta_notify_operation", "promote".into()),
            ("HA_LOGFILE", logfile.display().to_string()),
        ],
    );
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("notify: post-promote"), "{}", o.stderr);
    // HA_LOGFILE gets the same line, time-stamped.
    let log = read(&logfile);
    assert!(log.contains("Z alua(p_alua:0)["), "{log}");
    assert!(log.contains("INFO: notify: post-promote"), "{log}");
}

struct Lio {
    root: PathBuf,
}

impl Lio {
    /// Two iblock backstores, each with tg_pt_gps `node_a` (ours, id 1) and `node_b`
    /// (the peer's, id 2) in standby/active, and tpgt_1 of one iSCSI target, disabled.
    fn new(dir: &Path) -> Self {
        let root = dir.join("sys");
        let c = root.join("kernel/config/target");
        for dev in ["disk1", "disk2"] {
            let d = c.join("core/iblock_0").join(dev);
            put(&d.join("enable"), "1\n");
            for (g, id, st) in [("node_a", "1", "2\n"), ("node_b", "2", "0\n")] {
                put(&d.join(format!("alua/{g}/tg_pt_gp_id")), &format!("{id}\n"));
                put(&d.join(format!("alua/{g}/alua_access_type")), "Implicit\n");
                put(&d.join(format!("alua/{g}/alua_access_state")), st);
            }
        }
        put(&c.join("iscsi/iqn.x/tpgt_1/enable"), "0\n");
        Lio { root }
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OCF_RESKEY_sysfs_root", self.root.display().to_string()),
            ("OCF_RESKEY_stack", "lio".into()),
            (
                "OCF_RESKEY_lio_devices",
                "iblock_0/disk1 iblock_0/disk2".into(),
            ),
            ("OCF_RESKEY_local_target_group", "node_a".into()),
            ("OCF_RESKEY_remote_target_group", "node_b".into()),
            ("OCF_RESKEY_ports", "iscsi/iqn.x/tpgt_1".into()),
        ]
    }
    fn state(&self, dev: &str, g: &str) -> PathBuf {
        self.root.join(format!(
            "kernel/config/target/core/iblock_0/{dev}/alua/{g}/alua_access_state"
        ))
    }
    fn port(&self) -> PathBuf {
        self.root
            .join("kernel/config/target/iscsi/iqn.x/tpgt_1/enable")
    }
    /// (disk1 local, disk2 local, disk1 remote, disk2 remote, port).
    fn snapshot(&self) -> [String; 5] {
        [
            read(&self.state("disk1", "node_a")),
            read(&self.state("disk2", "node_a")),
            read(&self.state("disk1", "node_b")),
            read(&self.state("disk2", "node_b")),
            read(&self.port()),
        ]
    }
}

#[test]
fn lio_lifecycle_writes_access_state_numbers() {
    let t = tmp();
    let l = Lio::new(t.path());
    let env = l.env();
    let step = |action: &str, want: i32| {
        let o = agent(action, &env);
        assert_eq!(o.code, want, "{action}: stderr:\n{}", o.stderr);
        o
    };
    let s = |v: [&str; 5]| v.map(|x| format!("{x}\n"));
    step("validate-all", 0);
    step("monitor", 7);
    step("start", 0);
    assert_eq!(l.snapshot(), s(["2", "2", "0", "0", "1"]));
    step("monitor", 0);

    let o = step("promote", 0);
    for dev in ["disk1", "disk2"] {
        // Logged by name; the file gets the number.
        assert_eq!(
            writes_to(&o.stderr, &l.state(dev, "node_a")),
            ["transitioning", "active"],
            "{}",
            o.stderr
        );
    }
    assert_eq!(l.snapshot(), s(["0", "0", "2", "2", "1"]));
    step("monitor", 8);

    // One backstore left behind in standby: promoted-looking but inconsistent.
    fs::write(l.state("disk2", "node_a"), "2\n").unwrap();
    step("monitor", 9);
    step("promote", 0);
    assert_eq!(l.snapshot(), s(["0", "0", "2", "2", "1"]));

    let o = step("demote", 0);
    assert_eq!(
        writes_to(&o.stderr, &l.state("disk1", "node_a")),
        ["transitioning", "standby"],
        "{}",
        o.stderr
    );
    assert_eq!(l.snapshot(), s(["2", "2", "0", "0", "1"]));
    step("monitor", 0);

    step("stop", 0);
    assert_eq!(l.snapshot(), s(["14", "14", "0", "0", "0"]));
    step("monitor", 7);

    // 0x-prefixed values (kstrtoul base 0) read back fine.
    fs::write(l.state("disk1", "node_a"), "0xe\n").unwrap();
    step("monitor", 7);
}

#[test]
fn lio_parameters() {
    let t = tmp();
    let l = Lio::new(t.path());
    let mut env = l.env();
    env.retain(|(k, _)| *k != "OCF_RESKEY_lio_devices");
    let o = agent("validate-all", &env);
    assert_eq!(o.code, 6);
    assert!(o.stderr.contains("lio_devices"), "{}", o.stderr);
    env.push((
        "OCF_RESKEY_lio_devices",
        "iblock_0/disk1 iblock_0/disk9".into(),
    ));
    let o = agent("validate-all", &env);
    assert_eq!(o.code, 5, "{}", o.stderr);
    assert!(o.stderr.contains("iblock_0/disk9"), "{}", o.stderr);
}

fn xmllint() -> &'static str {
    for p in ["/usr/bin/xmllint", "/bin/xmllint"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!("xmllint not found: install the Debian package libxml2-utils (ocf-tester needs it too)");
}

#[test]
fn metadata_is_valid_ocf() {
    let o = agent("meta-data", &[]);
    assert_eq!(o.code, 0);
    let t = tmp();
    let xml = t.path().join("alua.xml");
    fs::write(&xml, &o.stdout).unwrap();
    let dtd_dir = Path::new("/usr/share/resource-agents");
    assert!(
        dtd_dir.join("ra-api-1.dtd").exists(),
        "/usr/share/resource-agents/ra-api-1.dtd missing: install the Debian package resource-agents"
    );
    // ra-api-1.dtd (what ocf-tester checks) and metadata.rng (the OCF 1.1 roles).
    fs::copy(dtd_dir.join("ra-api-1.dtd"), t.path().join("ra-api-1.dtd")).unwrap();
    let dtd = Command::new(xmllint())
        .args(["--noout", "--valid"])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        dtd.status.success(),
        "DTD: {}",
        String::from_utf8_lossy(&dtd.stderr)
    );
    let rng = Command::new(xmllint())
        .args(["--noout", "--relaxng"])
        .arg(dtd_dir.join("metadata.rng"))
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        rng.status.success(),
        "RNG: {}",
        String::from_utf8_lossy(&rng.stderr)
    );
    for p in [
        "stack",
        "device_group",
        "lio_devices",
        "local_target_group",
        "remote_target_group",
        "promoted_state",
        "unpromoted_state",
        "ports",
        "sysfs_root",
    ] {
        assert!(
            o.stdout.contains(&format!("<parameter name=\"{p}\"")),
            "{p} missing"
        );
    }
    for a in [
        "start",
        "stop",
        "promote",
        "demote",
        "notify",
        "meta-data",
        "validate-all",
    ] {
        assert!(
            o.stdout.contains(&format!("<action name=\"{a}\"")),
            "{a} missing"
        );
    }
    assert!(o.stdout.contains("interval=\"10s\" role=\"Promoted\""));
    assert!(o.stdout.contains("interval=\"11s\" role=\"Unpromoted\""));
}

/// Runs ocf-tester on a symlink named `alua` (so argv[0] dispatch is exercised too).
fn ocf_tester(env: &[(&str, String)]) {
    assert!(
        Path::new(OCF_TESTER).exists(),
        "{OCF_TESTER} not found: install the Debian packages resource-agents and libxml2-utils"
    );
    xmllint();
    let t = tmp();
    let agent = t.path().join("alua");
    std::os::unix::fs::symlink(BIN, &agent).unwrap();
    let mut c = Command::new(OCF_TESTER);
    c.env_clear()
        .env(
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        )
        .env("OCF_ROOT", "/usr/lib/ocf")
        .args(["-n", "p_alua"]);
    for (k, v) in env {
        c.arg("-o")
            .arg(format!("{}={v}", k.trim_start_matches("OCF_RESKEY_")));
    }
    let o = c.arg(&agent).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "ocf-tester failed ({}):\n{stdout}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("passed all tests"), "{stdout}");
}

#[test]
fn ocf_tester_passes_on_scst() {
    let t = tmp();
    let s = Scst::new(t.path());
    ocf_tester(&s.env());
    // It left the resource stopped.
    assert_eq!(read(&s.tg("local")), "offline\n");
    assert_eq!(read(&s.port()), "0\n");
}

#[test]
fn ocf_tester_passes_on_lio() {
    let t = tmp();
    let l = Lio::new(t.path());
    ocf_tester(&l.env());
    assert_eq!(read(&l.state("disk2", "node_a")), "14\n");
}

#[test]
fn ocf_tester_passes_without_ports_or_remote_group() {
    let t = tmp();
    let s = Scst::new(t.path());
    let env: Vec<_> = s
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "OCF_RESKEY_ports" && *k != "OCF_RESKEY_remote_target_group")
        .collect();
    ocf_tester(&env);
    assert_eq!(read(&s.tg("local")), "offline\n");
    assert_eq!(
        read(&s.tg("remote")),
        "active\n[key]\n",
        "the remote group is not touched"
    );
}

// ----------------------------------------------------------------------------------
// LIO with `lio_luns`: the agent creates the iblock backstores and LUNs at promote
// ----------------------------------------------------------------------------------

const HOST: &str = "iqn.2026-11.org.example:host";
const HOST2: &str = "iqn.2026-11.org.example:host2";

/// What sanforge-init leaves in configfs for a `target = "lio"` cluster node: one
/// target with tpgt_1 (disabled, no LUN) and two initiator ACLs, an empty `core/`.
/// The kernel's default groups (`tpgt_1/lun`, `tpgt_1/acls`) are made by hand; the
/// fake sanforge-init runs the agent over (sysfs_root ≠ /sys) makes the attribute files
/// of the backstores it creates, as configfs would.
struct LioLuns {
    root: PathBuf,
}

impl LioLuns {
    fn new(dir: &Path) -> Self {
        let root = dir.join("sys");
        let c = root.join("kernel/config/target");
        fs::create_dir_all(c.join("core")).unwrap();
        let tpg = c.join("iscsi/iqn.2026-11.org.example:sanlio.alpha/tpgt_1");
        put(&tpg.join("enable"), "0\n");
        fs::create_dir_all(tpg.join("lun")).unwrap();
        for i in [HOST, HOST2] {
            fs::create_dir_all(tpg.join("acls").join(i)).unwrap();
        }
        LioLuns { root }
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OCF_RESKEY_sysfs_root", self.root.display().to_string()),
            ("OCF_RESKEY_stack", "lio".into()),
            (
                "OCF_RESKEY_lio_luns",
                "disk0=/dev/drbd0@0 disk1=/dev/drbd1@1".into(),
            ),
            ("OCF_RESKEY_cluster_name", "sanlio".into()),
            ("OCF_RESKEY_unpromoted_state", "standby".into()),
            (
                "OCF_RESKEY_ports",
                "iscsi/iqn.2026-11.org.example:sanlio.alpha/tpgt_1".into(),
            ),
        ]
    }
    fn c(&self) -> PathBuf {
        self.root.join("kernel/config/target")
    }
    fn tpg(&self) -> PathBuf {
        self.c()
            .join("iscsi/iqn.2026-11.org.example:sanlio.alpha/tpgt_1")
    }
    fn bs(&self, lun: u32, name: &str) -> PathBuf {
        self.c().join(format!("core/iblock_{lun}/{name}"))
    }
    fn port(&self) -> String {
        read(&self.tpg().join("enable"))
    }
    /// Every path under the configfs root, `->` and the target for symlinks.
    fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            let mut ents: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
            ents.sort_by_key(|e| e.file_name());
            for e in ents {
                let p = e.path();
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                let t = e.file_type().unwrap();
                if t.is_symlink() {
                    let to = fs::read_link(&p).unwrap();
                    out.push(format!(
                        "{rel} -> {}",
                        to.strip_prefix(base).unwrap_or(&to).display()
                    ));
                } else if t.is_dir() {
                    out.push(format!("{rel}/"));
                    walk(base, &p, out);
                } else {
                    out.push(rel);
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.c(), &self.c(), &mut v);
        v
    }
}

fn serial(cluster: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(
        format!("sanforge:{cluster}:{name}").as_bytes(),
    ))[..32]
        .to_string()
}

#[test]
fn lio_luns_exist_only_while_promoted() {
    let t = tmp();
    let l = LioLuns::new(t.path());
    let env = l.env();
    let step = |action: &str, want: i32| {
        let o = agent(action, &env);
        assert_eq!(o.code, want, "{action}: stderr:\n{}", o.stderr);
        o
    };
    let at_boot = l.listing();
    step("validate-all", 0);
    // At boot: ports disabled and no LUN: stopped.
    step("monitor", 7);
    step("start", 0);
    assert_eq!(l.port(), "1\n");
    step("monitor", 0);
    assert!(!l.c().join("core/iblock_0").exists());

    let o = step("promote", 0);
    let state0 = l
        .bs(0, "disk0")
        .join("alua/default_tg_pt_gp/alua_access_state");
    // transitioning until the LUNs are mapped, then active/optimized.
    assert_eq!(
        writes_to(&o.stderr, &state0),
        ["transitioning", "active"],
        "{}",
        o.stderr
    );
    let tpg = l.tpg();
    for (lun, name, dev) in [(0, "disk0", "/dev/drbd0"), (1, "disk1", "/dev/drbd1")] {
        let bs = l.bs(lun, name);
        assert_eq!(read(&bs.join("control")), format!("udev_path={dev}"));
        assert_eq!(read(&bs.join("enable")), "1");
        assert_eq!(
            read(&bs.join("wwn/vpd_unit_serial")),
            serial("sanlio", name)
        );
        assert_eq!(
            read(&bs.join("alua/default_tg_pt_gp/alua_access_state")),
            "0\n"
        );
        let lun_dir = tpg.join(format!("lun/lun_{lun}"));
        assert_eq!(fs::read_link(lun_dir.join(name)).unwrap(), bs);
        for i in [HOST, HOST2] {
            assert_eq!(
                fs::read_link(tpg.join(format!("acls/{i}/lun_{lun}/lun"))).unwrap(),
                lun_dir
            );
        }
    }
    assert_ne!(serial("sanlio", "disk0"), serial("other", "disk0"));
    step("monitor", 8);
    // Promote twice: nothing changes.
    let promoted = l.listing();
    step("promote", 0);
    assert_eq!(l.listing(), promoted);

    // A mapped LUN lost while promoted: failed promoted (9); promote repairs it. The
    // links it finds are checked by where they lead (configfs shows relative ones).
    fs::remove_file(tpg.join(format!("acls/{HOST2}/lun_1/lun"))).unwrap();
    let link0 = tpg.join("lun/lun_0/disk0");
    fs::remove_file(&link0).unwrap();
    std::os::unix::fs::symlink("../../../../../core/iblock_0/disk0", &link0).unwrap();
    assert_eq!(
        fs::canonicalize(&link0).unwrap(),
        fs::canonicalize(l.bs(0, "disk0")).unwrap()
    );
    step("monitor", 9);
    step("promote", 0);
    fs::remove_file(&link0).unwrap();
    std::os::unix::fs::symlink(l.bs(0, "disk0"), &link0).unwrap();
    assert_eq!(l.listing(), promoted);
    step("monitor", 8);
    // A link leading elsewhere is not silently accepted.
    fs::remove_file(tpg.join(format!("acls/{HOST2}/lun_1/lun"))).unwrap();
    let wrong = tpg.join(format!("acls/{HOST}/lun_1/lun"));
    fs::remove_file(&wrong).unwrap();
    std::os::unix::fs::symlink(tpg.join("lun/lun_0"), &wrong).unwrap();
    let o = step("promote", 1);
    assert!(
        o.stderr.contains(&format!("{} leads to", wrong.display())),
        "{}",
        o.stderr
    );
    fs::remove_file(&wrong).unwrap();
    std::os::unix::fs::symlink(tpg.join("lun/lun_1"), &wrong).unwrap();
    step("promote", 0);
    assert_eq!(l.listing(), promoted);

    // Demote removes everything it made, in reverse order, and keeps the port.
    let o = step("demote", 0);
    assert_eq!(l.listing(), at_boot, "demote left something behind");
    assert_eq!(
        writes_to(&o.stderr, &state0),
        ["transitioning"],
        "{}",
        o.stderr
    );
    assert_eq!(l.port(), "1\n");
    let pos = |needle: &str| {
        o.stderr
            .lines()
            .position(|x| x.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` not logged:\n{}", o.stderr))
    };
    let mapped = pos(&format!(
        "unlinked {}",
        tpg.join(format!("acls/{HOST}/lun_0/lun")).display()
    ));
    let lun = pos(&format!(
        "unlinked {}",
        tpg.join("lun/lun_0/disk0").display()
    ));
    let bs = pos(&format!("removed {}", l.bs(0, "disk0").display()));
    assert!(mapped < lun && lun < bs, "{}", o.stderr);
    step("monitor", 0);
    step("demote", 0);

    step("stop", 0);
    assert_eq!(l.port(), "0\n");
    step("monitor", 7);
    step("stop", 0);
    // Promote needs a started instance.
    step("promote", 1);
    assert!(!l.c().join("core/iblock_0").exists());
}

#[test]
fn lio_luns_half_made_is_an_error_and_start_cleans_up() {
    let t = tmp();
    let l = LioLuns::new(t.path());
    let env = l.env();
    let step = |action: &str, want: i32| {
        let o = agent(action, &env);
        assert_eq!(o.code, want, "{action}: stderr:\n{}", o.stderr);
        o
    };
    step("start", 0);
    // A backstore whose enable cannot be written (here a directory; on a node, a DRBD
    // Secondary refusing the open): promote fails naming the path and the error.
    fs::create_dir_all(l.bs(1, "disk1").join("enable")).unwrap();
    let o = step("promote", 1);
    let enable = l.bs(1, "disk1").join("enable");
    assert!(
        o.stderr
            .contains(&format!("cannot write '1' to {}", enable.display())),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("Is a directory"), "{}", o.stderr);
    // disk0 was made, disk1 half: not promoted, not clean.
    step("monitor", 1);
    fs::remove_dir(&enable).unwrap();
    // start brings it back to unpromoted: no LUNs, ports enabled.
    step("start", 0);
    assert!(!l.c().join("core/iblock_0").exists());
    assert!(!l.c().join("core/iblock_1").exists());
    step("monitor", 0);
}

#[test]
fn lio_luns_stop_that_cannot_remove_the_backstore_fails_so_pacemaker_fences() {
    let t = tmp();
    let l = LioLuns::new(t.path());
    let env = l.env();
    assert_eq!(agent("start", &env).code, 0);
    assert_eq!(agent("promote", &env).code, 0);
    // Something else holds the backstore (the kernel says EBUSY/ENOTEMPTY): a link
    // inside it that the agent did not make.
    std::os::unix::fs::symlink(l.tpg(), l.bs(0, "disk0").join("holder")).unwrap();
    let o = agent("stop", &env);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr
            .contains(&format!("cannot rmdir {}", l.bs(0, "disk0").display())),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("fence"), "{}", o.stderr);
    // The ports are disabled anyway and the other LUN is gone.
    assert_eq!(l.port(), "0\n");
    assert!(!l.c().join("core/iblock_1").exists());
    assert!(!l.tpg().join(format!("acls/{HOST}/lun_0")).exists());
}

#[test]
fn lio_luns_parameters() {
    let t = tmp();
    let l = LioLuns::new(t.path());
    // (parameter to replace, its new value or None to drop it, what the error names)
    let run = |key: &'static str, value: Option<&str>| {
        let mut env = l.env();
        env.retain(|(k, _)| *k != key);
        if let Some(v) = value {
            env.push((key, v.to_string()));
        }
        agent("validate-all", &env)
    };
    for (key, value, needle) in [
        ("OCF_RESKEY_ports", None, "ports"),
        (
            "OCF_RESKEY_lio_luns",
            Some("disk0=/dev/drbd0"),
            "NAME=/dev/DEVICE@LUN",
        ),
        ("OCF_RESKEY_lio_luns", Some("disk0=/tmp/x@0"), "under /dev/"),
        (
            "OCF_RESKEY_lio_luns",
            Some("a=/dev/drbd0@0 b=/dev/drbd1@0"),
            "twice",
        ),
        ("OCF_RESKEY_lio_devices", Some("iblock_0/disk0"), "exclude"),
        ("OCF_RESKEY_stack", Some("scst"), "lio_luns"),
    ] {
        let o = run(key, value);
        assert_eq!(o.code, 6, "{needle}: {}", o.stderr);
        assert!(o.stderr.contains(needle), "{needle}: {}", o.stderr);
    }
    // A port whose TPG the init did not make: not installed.
    let o = run(
        "OCF_RESKEY_ports",
        Some("iscsi/iqn.2026-11.org.example:nope/tpgt_1"),
    );
    assert_eq!(o.code, 5, "{}", o.stderr);
    assert!(o.stderr.contains("nope"), "{}", o.stderr);
}

#[test]
fn ocf_tester_passes_on_lio_luns() {
    let t = tmp();
    let l = LioLuns::new(t.path());
    ocf_tester(&l.env());
    assert_eq!(l.port(), "0\n");
    assert!(!l.c().join("core/iblock_0").exists());
}

// ----------------------------------------------------------------------------------
// In-process, over the recording fake: the exact calls each action makes
// ----------------------------------------------------------------------------------

use sanforge::agent::{self, Env, Rc};
use sanforge::sys::{FakeSys, Op};

/// The OCF environment of `vars` with `sysfs_root` left to its default, `/sys`,
/// which the fake resolves under its root.
fn fake_env(vars: Vec<(&'static str, String)>) -> Env {
    Env::from_pairs(
        vars.into_iter()
            .filter(|(k, _)| *k != "OCF_RESKEY_sysfs_root")
            .chain([("OCF_RESOURCE_INSTANCE", "p_alua:0".to_string())]),
    )
}

/// Runs `action` over `sys`; returns its exit code and its log.
fn run_fake(sys: &mut FakeSys, env: &Env, action: &str) -> (Rc, String) {
    let mut log = Vec::new();
    let rc = agent::run_with(Some(action), env, sys, &mut std::io::sink(), &mut log);
    (rc, String::from_utf8(log).unwrap())
}

/// The recorded calls that change something, without the log appends.
fn changes(sys: &mut FakeSys) -> Vec<String> {
    sys.ops
        .drain(..)
        .filter(|op| !matches!(op, Op::Append(..)))
        .map(|op| op.to_string().trim_end().to_string())
        .collect()
}

#[test]
fn scst_promote_is_three_state_writes_in_order() {
    let t = tmp();
    let s = Scst::new(t.path());
    let mut sys = FakeSys::new(t.path()).with_kernel_tree("/sys");
    let env = fake_env(s.env());
    assert_eq!(run_fake(&mut sys, &env, "start").0, Rc::Success);
    assert_eq!(
        changes(&mut sys),
        ["write /sys/kernel/scst_tgt/targets/iscsi/iqn.x/enabled 1"]
    );
    let (rc, log) = run_fake(&mut sys, &env, "promote");
    assert_eq!(rc, Rc::Success, "{log}");
    let tg = "/sys/kernel/scst_tgt/device_groups/dg1/target_groups";
    assert_eq!(
        changes(&mut sys),
        [
            format!("write {tg}/local/state transitioning"),
            format!("write {tg}/remote/state standby"),
            format!("write {tg}/local/state active"),
        ]
    );
    assert_eq!(run_fake(&mut sys, &env, "monitor").0, Rc::RunningPromoted);
    assert_eq!(
        changes(&mut sys),
        Vec::<String>::new(),
        "monitor only reads"
    );
}

#[test]
fn scst_busy_attribute_is_retried_then_named_with_its_errno() {
    let t = tmp();
    let s = Scst::new(t.path());
    let mut sys = FakeSys::new(t.path()).with_kernel_tree("/sys");
    // A short action timeout: the retries end after one second of (fake) waiting.
    let mut vars = s.env();
    vars.push(("OCF_RESKEY_CRM_meta_timeout", "3000".into()));
    let env = fake_env(vars);
    assert_eq!(run_fake(&mut sys, &env, "start").0, Rc::Success);
    let state = "/sys/kernel/scst_tgt/device_groups/dg1/target_groups/local/state";
    sys.fail
        .push((format!("write {state} transitioning"), libc::EBUSY));
    let (rc, log) = run_fake(&mut sys, &env, "promote");
    assert_eq!(rc, Rc::ErrGeneric, "{log}");
    assert!(log.contains("; retrying"), "{log}");
    assert!(
        log.contains(&format!(
            "cannot write 'transitioning' to {state}: Device or resource busy (os error 16)"
        )),
        "{log}"
    );
}

#[test]
fn lio_luns_demote_removes_in_reverse_order_and_stop_fences_on_a_busy_backstore() {
    let t = tmp();
    let l = LioLuns::new(t.path());
    let mut sys = FakeSys::new(t.path()).with_kernel_tree("/sys");
    let env = fake_env(l.env());
    for action in ["start", "promote"] {
        let (rc, log) = run_fake(&mut sys, &env, action);
        assert_eq!(rc, Rc::Success, "{action}: {log}");
    }
    let c = "/sys/kernel/config/target";
    let tpg = format!("{c}/iscsi/iqn.2026-11.org.example:sanlio.alpha/tpgt_1");
    let made = changes(&mut sys);
    assert!(
        made.contains(&format!("mkdir {c}/core/iblock_0/disk0"))
            && made.contains(&format!(
                "symlink {c}/core/iblock_0/disk0 {tpg}/lun/lun_0/disk0"
            )),
        "{made:#?}"
    );
    let (rc, log) = run_fake(&mut sys, &env, "demote");
    assert_eq!(rc, Rc::Success, "{log}");
    let mut want = Vec::new();
    for n in 0..2 {
        want.push(format!(
            "write {c}/core/iblock_{n}/disk{n}/alua/default_tg_pt_gp/alua_access_state 15"
        ));
    }
    for n in 0..2 {
        for h in [HOST, HOST2] {
            want.push(format!("remove {tpg}/acls/{h}/lun_{n}/lun"));
            want.push(format!("rmdir {tpg}/acls/{h}/lun_{n}"));
        }
    }
    for n in 0..2 {
        want.push(format!("remove {tpg}/lun/lun_{n}/disk{n}"));
        want.push(format!("rmdir {tpg}/lun/lun_{n}"));
    }
    for n in 0..2 {
        want.push(format!("rmdir {c}/core/iblock_{n}/disk{n}"));
        want.push(format!("rmdir {c}/core/iblock_{n}"));
    }
    assert_eq!(changes(&mut sys), want);

    // The kernel refuses to remove a backstore still in use: stop says 1, so
    // Pacemaker fences, and the message names the path and the errno.
    assert_eq!(run_fake(&mut sys, &env, "promote").0, Rc::Success);
    sys.fail
        .push((format!("rmdir {c}/core/iblock_0/disk0"), libc::EBUSY));
    let (rc, log) = run_fake(&mut sys, &env, "stop");
    assert_eq!(rc, Rc::ErrGeneric, "{log}");
    assert!(
        log.contains(&format!(
            "cannot rmdir {c}/core/iblock_0/disk0: Device or resource busy (os error 16)"
        )),
        "{log}"
    );
    assert!(log.contains("fence"), "{log}");
    assert_eq!(l.port(), "0\n", "the ports are disabled anyway");
}

/// `sanforge-init --root DIR ocf-alua ACTION`: the agent over the fake rooted at DIR,
/// `/sys` inside it, the recorded calls on stdout.
#[test]
fn root_step_runs_the_agent_over_the_fake_and_prints_its_calls() {
    let t = tmp();
    let s = Scst::new(t.path());
    let run = |action: &str| {
        let mut c = Command::new(BIN);
        c.env_clear()
            .arg("--root")
            .arg(t.path())
            .args(["ocf-alua", action]);
        for (k, v) in s.env() {
            if k != "OCF_RESKEY_sysfs_root" {
                c.env(k, v);
            }
        }
        let o = c.output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8(o.stdout).unwrap(),
        )
    };
    assert_eq!(run("monitor"), (7, String::new()));
    let (code, out) = run("start");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("write /sys/kernel/scst_tgt/targets/iscsi/iqn.x/enabled 1"),
        "{out}"
    );
    assert_eq!(read(&s.port()), "1\n");
    assert_eq!(run("frobnicate").0, 3);
}
