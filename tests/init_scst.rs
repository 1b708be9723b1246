//! SCST in sanforge-init: the boot's `scst` step and the enable step against a fake
//! `/sys/kernel/scst_tgt` tree for every fixture in tests/fixtures/scst, rejected and
//! queued (`EAGAIN`) writes, the iSCSI daemon, shutdown, and `apply-scst` (re-apply,
//! changed file, `--prune`, the writer lock) through the built `sanforge-init --root`;
//! plus the builder refusing a node whose scst.conf is invalid.

mod common;

use common::initroot::{run, write};

use sanforge::init::{Init, Logger};
use sanforge::scsi::scst::{self, catalog, diff_plan, parse, plan, ScstConf, SysfsWrite};
use sanforge::sys::{FakeSys, RebootCmd};
use std::path::{Path, PathBuf};
use std::process::Command;

const SYSFS: &str = "/sys/kernel/scst_tgt";

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scst");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "fixtures missing in {}", dir.display());
    v
}

const NODE: &str = r#"hostname = "scst1"
[scst]
conf = "scst.conf"
iscsi-daemon = ["/usr/sbin/iscsi-scstd", "-f"]
[[services]]
name = "syslogd"
argv = ["/bin/syslogd", "-n"]
"#;

/// What the SCST modules create when they load: the top directory with
/// `last_sysfs_mgmt_res`, `mgmt` files of the handlers and drivers `conf` uses, the
/// hardware targets, and `device_groups/mgmt`.
fn fake_scst(root: &Path, conf: &ScstConf) {
    let s = root.join(&SYSFS[1..]);
    write(&s, "last_sysfs_mgmt_res", "0\n");
    write(&s, "version", "3.10.0\n");
    write(&s, "device_groups/mgmt", "");
    std::fs::create_dir_all(s.join("devices")).unwrap();
    for h in &conf.handlers {
        write(&s, &format!("handlers/{}/mgmt", h.name), "");
    }
    for d in &conf.drivers {
        write(&s, &format!("targets/{}/mgmt", d.name), "");
        if d.name == "iscsi" {
            // What iscsi-scstd adds once it has registered with the kernel.
            write(&s, sanforge::init::scst::ISCSI_DAEMON_READY, "");
        }
        for t in &d.targets {
            if !catalog::is_virtual_target(&d.name, t) {
                let base = format!("targets/{}/{}", d.name, t.name);
                write(&s, &format!("{base}/enabled"), "0\n");
                write(&s, &format!("{base}/luns/mgmt"), "");
                write(&s, &format!("{base}/ini_groups/mgmt"), "");
            }
        }
    }
}

/// A node tree whose scst.conf is `text`, with the SCST sysfs tree for it.
fn tree(text: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "etc/sanforge/node.toml", NODE);
    write(t.path(), "etc/sanforge/scst.conf", text);
    let conf = parse(text).unwrap();
    fake_scst(t.path(), &conf);
    // The files and block devices the devices are backed by (the init leaves out a
    // device whose `filename` is absent).
    for h in &conf.handlers {
        for d in &h.devices {
            if let Some(f) = scst::attr(&d.attrs, "filename").filter(|f| f.starts_with('/')) {
                write(t.path(), &f[1..], "");
            }
        }
    }
    t
}

/// The recorded writes under the SCST tree, as plan entries.
fn scst_writes(ops: &[String]) -> Vec<SysfsWrite> {
    ops.iter()
        .filter_map(|o| o.strip_prefix(&format!("write {SYSFS}/")))
        .map(|rest| {
            let (path, value) = rest.split_once(' ').unwrap_or((rest, ""));
            SysfsWrite {
                path: path.into(),
                value: value.into(),
            }
        })
        .collect()
}

fn op_lines(sys: &FakeSys) -> Vec<String> {
    sys.ops.iter().map(ToString::to_string).collect()
}

fn boot(sys: &mut FakeSys) -> Vec<String> {
    let mut init = Init::new(sys, Logger::capture());
    init.boot();
    init.log.lines().to_vec()
}

#[test]
fn every_fixture_boots_with_the_plan_in_order_and_enables_last() {
    for f in fixtures() {
        let text = std::fs::read_to_string(&f).unwrap();
        let conf = parse(&text).unwrap();
        let t = tree(&text);
        let mut sys = FakeSys::new(t.path());
        let log = boot(&mut sys);
        let ops = op_lines(&sys);
        let name = f.display();
        assert_eq!(log.last().unwrap(), "ready", "{name}: {log:?}");
        let want = plan(&conf);
        assert_eq!(scst_writes(&ops), want, "{name}: {log:?}");
        // The enables come after everything else, and after the services started.
        let first_enable = want.iter().position(SysfsWrite::is_enable).unwrap();
        assert!(want[first_enable..].iter().all(SysfsWrite::is_enable));
        let enable_op = ops
            .iter()
            .position(|o| o.starts_with(&format!("write {SYSFS}/")) && o.ends_with("enabled 1"))
            .unwrap();
        let syslogd = ops
            .iter()
            .position(|o| o == "spawn /bin/syslogd -n")
            .unwrap();
        assert!(syslogd < enable_op, "{name}: {ops:?}");
        // The state directories exist before the first add_device.
        let pr = ops
            .iter()
            .position(|o| o == "mkdir /var/lib/scst/pr")
            .unwrap();
        assert!(pr < ops.iter().position(|o| o.contains("add_device")).unwrap());
        // The record is the canonical text of the config.
        let rec = std::fs::read_to_string(t.path().join("run/sanforge/scst.applied")).unwrap();
        assert_eq!(rec, scst::print(&conf), "{name}");
        // The iSCSI daemon only runs when the config has an iscsi driver, and then
        // before the first iSCSI target is added.
        let daemon = ops
            .iter()
            .position(|o| o == "spawn /usr/sbin/iscsi-scstd -f");
        let iscsi_add = ops
            .iter()
            .position(|o| o.starts_with(&format!("write {SYSFS}/targets/iscsi/mgmt add_target")));
        if conf.drivers.iter().any(|d| d.name == "iscsi") {
            assert!(daemon.unwrap() < iscsi_add.unwrap(), "{name}: {ops:?}");
        } else {
            assert_eq!(daemon, None, "{name}");
        }
    }
}

fn iscsi_fixture() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scst/iscsi_drbd.conf"),
    )
    .unwrap()
}

#[test]
fn the_boot_waits_for_the_iscsi_daemon_to_register_then_adds_its_targets() {
    let text = iscsi_fixture();
    // Registered (the attribute is there): no note.
    let t = tree(&text);
    let mut sys = FakeSys::new(t.path());
    let log = boot(&mut sys);
    assert!(
        !log.iter().any(|l| l.contains("has not created")),
        "{log:?}"
    );
    // Never registered: the bounded wait ends with a note naming the file, and the
    // targets are added anyway.
    let t = tree(&text);
    std::fs::remove_file(
        t.path()
            .join(&SYSFS[1..])
            .join(sanforge::init::scst::ISCSI_DAEMON_READY),
    )
    .unwrap();
    let mut sys = FakeSys::new(t.path());
    let log = boot(&mut sys);
    let note = format!(
        "note: the iSCSI daemon has not created {SYSFS}/{} after 10 s: adding iSCSI targets anyway",
        sanforge::init::scst::ISCSI_DAEMON_READY
    );
    assert!(log.contains(&note), "{log:?}");
    let ops = op_lines(&sys);
    assert!(
        ops.iter()
            .any(|o| o.starts_with(&format!("write {SYSFS}/targets/iscsi/mgmt add_target"))),
        "{ops:?}"
    );
}

/// With `[ha]`, ocf:sanforge:alua enables the target ports, never the init; but the
/// iSCSI driver's own switch (`targets/iscsi/enabled`, without which iscsi-scstd
/// refuses every login) is the init's, at the "enable ports" step.
#[test]
fn with_ha_the_init_enables_the_iscsi_driver_but_no_port() {
    let text = iscsi_fixture();
    let t = tree(&text);
    let node = format!("{NODE}[ha]\nenabled = true\n");
    let mut sys = FakeSys::new(t.path());
    let mut init = Init::new(&mut sys, Logger::capture());
    init.node =
        Some(sanforge::config::node::NodeConfig::parse(Path::new("node.toml"), &node).unwrap());
    sanforge::init::scst::apply_at_boot(&mut init).unwrap();
    sanforge::init::scst::enable_ports(&mut init).unwrap();
    let log = init.log.lines().to_vec();
    drop(init);
    let enables: Vec<String> = scst_writes(&op_lines(&sys))
        .into_iter()
        .filter(SysfsWrite::is_enable)
        .map(|w| w.path)
        .collect();
    assert_eq!(enables, ["targets/iscsi/enabled"], "{log:?}");
}

#[test]
fn a_rejected_write_is_logged_and_leaves_the_ports_disabled() {
    let text = iscsi_fixture();
    let t = tree(&text);
    let mut sys = FakeSys::new(t.path());
    let mgmt = format!("{SYSFS}/handlers/vdisk_fileio/mgmt");
    sys.fail.push((
        format!("write {mgmt} add_device VM_STORAGE_2"),
        libc::EINVAL,
    ));
    let log = boot(&mut sys);
    let w = log
        .iter()
        .find(|l| l.starts_with("warning: scst:"))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(
        w.contains(&mgmt) && w.contains("add_device VM_STORAGE_2") && w.contains("errno 22"),
        "{w}"
    );
    assert_eq!(
        log.last().unwrap(),
        "state: degraded targets (ports disabled)"
    );
    let ops = op_lines(&sys);
    assert!(!ops.iter().any(|o| o.ends_with("/enabled 1")), "{ops:?}");
    // Nothing after the failed write went to SCST; the services still started.
    let writes = scst_writes(&ops);
    assert!(writes
        .last()
        .unwrap()
        .value
        .starts_with("add_device VM_STORAGE_2 "));
    assert!(ops.contains(&"spawn /bin/syslogd -n".to_string()));
    assert!(!t.path().join("run/sanforge/scst.applied").exists());
}

#[test]
fn a_mgmt_path_that_is_a_directory_fails_with_its_errno_through_the_binary() {
    let text = iscsi_fixture();
    let t = tree(&text);
    let mgmt = t
        .path()
        .join("sys/kernel/scst_tgt/handlers/vdisk_fileio/mgmt");
    std::fs::remove_file(&mgmt).unwrap();
    std::fs::create_dir(&mgmt).unwrap();
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let w = r
        .log
        .iter()
        .find(|l| l.starts_with("warning: scst:"))
        .unwrap_or_else(|| panic!("{:?}", r.log));
    assert!(
        w.contains("handlers/vdisk_fileio/mgmt")
            && w.contains("add_device VM_STORAGE_1")
            && w.contains(&format!("errno {}", libc::EISDIR)),
        "{w}"
    );
    assert_eq!(
        r.log.last().unwrap(),
        "state: degraded targets (ports disabled)"
    );
    assert!(!r.ops.iter().any(|o| o.ends_with("/enabled 1")));
}

#[test]
fn eagain_polls_last_sysfs_mgmt_res_for_the_result() {
    let text = iscsi_fixture();
    // Queued, then finished well: the apply goes on.
    let t = tree(&text);
    let mut sys = FakeSys::new(t.path());
    let add = format!("write {SYSFS}/handlers/vdisk_fileio/mgmt add_device VM_STORAGE_1");
    sys.fail.push((add.clone(), libc::EAGAIN));
    let log = boot(&mut sys);
    assert_eq!(log.last().unwrap(), "ready", "{log:?}");
    let ops = op_lines(&sys);
    assert_eq!(ops.iter().filter(|o| o.starts_with(&add)).count(), 1);
    assert_eq!(scst_writes(&ops), plan(&parse(&text).unwrap()));

    // Queued, then failed: the result's errno is reported, the ports stay off.
    let t = tree(&text);
    write(t.path(), "sys/kernel/scst_tgt/last_sysfs_mgmt_res", "-17\n");
    let mut sys = FakeSys::new(t.path());
    sys.fail.push((add, libc::EAGAIN));
    let log = boot(&mut sys);
    assert!(
        log.iter()
            .any(|l| l.contains("add_device VM_STORAGE_1") && l.contains("errno 17")),
        "{log:?}"
    );
    assert_eq!(
        log.last().unwrap(),
        "state: degraded targets (ports disabled)"
    );
    assert!(!op_lines(&sys).iter().any(|o| o.ends_with("enabled 1")));
}

#[test]
fn missing_scst_sysfs_is_a_warning_naming_the_module() {
    let text = iscsi_fixture();
    let t = tree(&text);
    std::fs::remove_dir_all(t.path().join("sys/kernel/scst_tgt")).unwrap();
    let mut sys = FakeSys::new(t.path());
    let log = boot(&mut sys);
    assert!(
        log.iter().any(|l| l.starts_with("warning: scst:")
            && l.contains("/sys/kernel/scst_tgt")
            && l.contains("module `scst`")),
        "{log:?}"
    );
    assert_eq!(
        log.last().unwrap(),
        "state: degraded targets (ports disabled)"
    );
    assert!(scst_writes(&op_lines(&sys)).is_empty());
}

#[test]
fn shutdown_disables_the_ports_before_stopping_services() {
    let text = iscsi_fixture();
    let t = tree(&text);
    let mut sys = FakeSys::new(t.path());
    {
        let mut init = Init::new(&mut sys, Logger::capture());
        init.boot();
        init.shutdown(RebootCmd::PowerOff);
    }
    let ops = op_lines(&sys);
    let tgt = "iqn.2011-04.ru.domain:VM_STORAGE_1";
    let off = ops
        .iter()
        .position(|o| o == &format!("write {SYSFS}/targets/iscsi/{tgt}/enabled 0"))
        .unwrap_or_else(|| panic!("{ops:?}"));
    let on = ops
        .iter()
        .position(|o| o == &format!("write {SYSFS}/targets/iscsi/{tgt}/enabled 1"))
        .unwrap();
    let term = ops.iter().position(|o| o.ends_with(" TERM")).unwrap();
    assert!(on < off && off < term, "{ops:?}");
    // The daemon is supervised like any service: it gets the TERM too.
    assert_eq!(ops.iter().filter(|o| o.ends_with(" TERM")).count(), 2);
}

#[test]
fn apply_scst_writes_only_the_difference_and_prunes_on_request() {
    let a = iscsi_fixture();
    let t = tree(&a);
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.log.last().unwrap(), "ready", "{:?}", r.log);
    assert_eq!(scst_writes(&r.ops), plan(&parse(&a).unwrap()));

    // The same file again (the node's, by default): nothing to write.
    let r = run(t.path(), &["apply-scst"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(scst_writes(&r.ops).is_empty(), "{:?}", r.ops);
    let fa = t.path().join("a.conf");
    std::fs::write(&fa, &a).unwrap();
    let r = run(t.path(), &["apply-scst", fa.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.ops.is_empty(), "{:?}", r.ops);

    // A changed file: a device and its LUN go, another device comes, a portal changes.
    let b = a
        .replace("\tDEVICE VM_STORAGE_2 {", "\tDEVICE VM_STORAGE_3 {")
        .replace("LUN 0 VM_STORAGE_2", "LUN 0 VM_STORAGE_3")
        .replace("allowed_portal 10.1.29.10", "allowed_portal 10.1.30.10");
    assert_ne!(a, b);
    let fb = t.path().join("b.conf");
    std::fs::write(&fb, &b).unwrap();
    let (ca, cb) = (parse(&a).unwrap(), parse(&b).unwrap());
    let r = run(t.path(), &["apply-scst", fb.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let additive = diff_plan(&ca, &cb, false);
    assert!(!additive.is_empty());
    assert_eq!(scst_writes(&r.ops), additive);
    assert!(!additive.iter().any(|w| w.value.starts_with("del")));

    // Again: nothing; the old device is still recorded, so --prune removes it.
    let r = run(t.path(), &["apply-scst", fb.to_str().unwrap()]);
    assert!(scst_writes(&r.ops).is_empty(), "{:?}", r.ops);
    let r = run(t.path(), &["apply-scst", fb.to_str().unwrap(), "--prune"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pruned = scst_writes(&r.ops);
    assert!(
        pruned
            .iter()
            .any(|w| w.path == "handlers/vdisk_fileio/mgmt" && w.value == "del_device VM_STORAGE_2"),
        "{pruned:?}"
    );
    assert!(pruned
        .iter()
        .any(|w| w.value.starts_with("del_target_attribute") && w.value.contains("10.1.29.10")));
    // Deleting the device dropped its LUN, which the additive apply could not
    // replace: now the new device takes LUN 0. Nothing else is added.
    let adds: Vec<&SysfsWrite> = pruned
        .iter()
        .filter(|w| w.value.starts_with("add"))
        .collect();
    assert!(
        adds.len() == 1 && adds[0].value.starts_with("add VM_STORAGE_3 0"),
        "{pruned:?}"
    );
    let rec = std::fs::read_to_string(t.path().join("run/sanforge/scst.applied")).unwrap();
    assert_eq!(parse(&rec).unwrap().without_lines(), cb.without_lines());
    let r = run(t.path(), &["apply-scst", fb.to_str().unwrap(), "--prune"]);
    assert!(r.ops.is_empty(), "{:?}", r.ops);
}

#[test]
fn apply_scst_refuses_an_invalid_file_and_a_held_lock() {
    let a = iscsi_fixture();
    let t = tree(&a);
    let bad = t.path().join("bad.conf");
    std::fs::write(
        &bad,
        "HANDLER vdisk_fileio {\n\tDEVICE d {\n\t\tfilename\n\t}\n}\n",
    )
    .unwrap();
    let r = run(t.path(), &["apply-scst", bad.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("bad.conf:3"), "{}", r.stderr);
    assert!(r.ops.is_empty());

    let lock = t.path().join("run/sanforge/scst.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&lock).unwrap();
    f.lock().unwrap();
    let fa = t.path().join("a.conf");
    std::fs::write(&fa, &a).unwrap();
    let r = run(t.path(), &["apply-scst", fa.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("another SCST apply is running"),
        "{}",
        r.stderr
    );
    assert!(r.ops.is_empty());
    drop(f);
    let r = run(t.path(), &["apply-scst", fa.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(scst_writes(&r.ops), plan(&parse(&a).unwrap()));
}

#[test]
fn the_build_refuses_a_node_whose_scst_conf_is_invalid_and_bakes_a_valid_one() {
    use common::project::{text, Project};
    let p = Project::new();
    let node = p.root().join("recipes/nodes/node.toml");
    let orig = std::fs::read_to_string(&node).unwrap();
    std::fs::write(&node, format!("{orig}\n[scst]\nconf = \"scst.conf\"\n")).unwrap();
    let conf = p.root().join("recipes/nodes/scst.conf");
    std::fs::write(
        &conf,
        "HANDLER vdisk_nullio {\n\tDEVICE d0\n}\nTARGET_DRIVER iscsi {\n\tTARGET iqn.2026-11.org.example:t {\n\t\tLUN 0 nosuch\n\t}\n}\n",
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(e.contains("scst.conf:6:") && e.contains("nosuch"), "{e}");

    std::fs::write(
        &conf,
        "HANDLER vdisk_nullio {\n\tDEVICE d0\n}\nTARGET_DRIVER iscsi {\n\tTARGET iqn.2026-11.org.example:t {\n\t\tLUN 0 d0\n\t}\n}\n",
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    // Baked where the init looks for `conf = "scst.conf"`, byte for byte.
    let img = p.root().join("out/test/initramfs.cpio.zst");
    let x = tempfile::tempdir().unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc {} | cpio -id --quiet etc/sanforge/scst.conf",
            img.display()
        ))
        .current_dir(x.path())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read_to_string(x.path().join("etc/sanforge/scst.conf")).unwrap(),
        std::fs::read_to_string(&conf).unwrap()
    );
    // Changing only the scst.conf changes the rootfs key (the kernel is kept).
    let before = p.run(&["plan", "recipes/test.toml"]);
    std::fs::write(
        &conf,
        "HANDLER vdisk_nullio {\n\tDEVICE d1\n}\nTARGET_DRIVER iscsi {\n\tTARGET iqn.2026-11.org.example:t {\n\t\tLUN 0 d1\n\t}\n}\n",
    )
    .unwrap();
    let after = p.run(&["plan", "recipes/test.toml"]);
    let (b, a) = (
        String::from_utf8_lossy(&before.stdout).into_owned(),
        String::from_utf8_lossy(&after.stdout).into_owned(),
    );
    let line = |s: &str, stage: &str| {
        s.lines()
            .find(|l| l.contains(stage))
            .unwrap_or_else(|| panic!("no {stage} in {s}"))
            .to_string()
    };
    assert_eq!(line(&b, "kernel"), line(&a, "kernel"));
    assert_ne!(line(&b, "rootfs"), line(&a, "rootfs"));
}
