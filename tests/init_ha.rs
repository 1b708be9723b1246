//! The `[ha]` part of sanforge-init against fake trees: the boot order (SCST
//! cluster_mode, watchdog, Corosync, Pacemaker, settle; ports never enabled by the
//! init), the node picked by MAC, the node without quorum, and the shutdown order.
//! Runs the built `sanforge-init --root DIR STEP`, and the library for the parts that
//! need a boot and a shutdown in one process (service pids).

mod common;

use common::initroot::{run, write};

use common::project::{text, Project};
use sanforge::init::{ha, Init, Logger};
use sanforge::sys::{ExitStatus, FakeSys, RebootCmd};
use std::process::Command;
use std::time::{Duration, Instant};

fn pos(ops: &[String], prefix: &str) -> usize {
    ops.iter()
        .position(|o| o.starts_with(prefix))
        .unwrap_or_else(|| panic!("no op `{prefix}` in {ops:#?}"))
}

const TPG: &str = "/sys/kernel/config/target/iscsi/iqn.2026-11.org.example:alpha/tpgt_1";
const SCST: &str = "/sys/kernel/scst_tgt";
const CRM_MON: &str = "/usr/sbin/crm_mon -1 --output-as=xml";

fn crm_mon(quorum: bool) -> String {
    format!(
        r#"<pacemaker-result api-version="2.30" request="crm_mon -1 --output-as=xml">
  <summary>
    <stack type="corosync" pacemakerd-state="running"/>
    <current_dc present="true" version="3.0.2" name="alpha" id="1" with_quorum="{quorum}" mixed_version="false"/>
  </summary>
</pacemaker-result>
"#
    )
}

const MODULES_DEP: &str = "\
extra/scst.ko:
extra/scst_vdisk.ko: extra/scst.ko
extra/iscsi-scst.ko: extra/scst.ko
extra/drbd.ko:
";

fn node(name: &str, mac: &str, ha: &str) -> String {
    format!(
        r#"hostname = "{name}"
[modules]
load = ["drbd", "scst", "scst_vdisk", "iscsi_scst"]
[network]
interfaces = [{{ name = "eth0", addresses = ["10.0.0.1/24"], mac = "{mac}" }}]
[lio]
backstores = [{{ name = "d", kind = "ramdisk", size = "1MiB" }}]
[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:{name}"
portals = ["0.0.0.0:3260"]
luns = [{{ lun = 0, backstore = "d" }}]
[ha]
{ha}
[[services]]
name = "iscsi-scstd"
argv = ["/usr/sbin/iscsi-scstd", "-f"]
"#
    )
}

const HA: &str = r#"enabled = true
settle-timeout = "6s"
drain-timeout = "3s"
stop-timeout = "1s"
watchdog = { device = "/dev/watchdog", interval = "5s", mode = "init" }"#;

/// A tree for node alpha: modules, an eth0, two SCST devices, an SCST iSCSI target
/// and the copy manager, and the given crm_mon answer.
fn tree(ha: &str, quorum: bool) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(
        d,
        "etc/sanforge/node.toml",
        &node("alpha", "52:54:00:00:00:01", ha),
    );
    write(d, "lib/modules/6.12.0/modules.dep", MODULES_DEP);
    write(d, "sys/class/net/eth0/address", "52:54:00:00:00:01\n");
    for dev in ["disk0", "disk1"] {
        write(
            d,
            &format!("sys/kernel/scst_tgt/devices/{dev}/cluster_mode"),
            "0",
        );
    }
    write(
        d,
        "sys/kernel/scst_tgt/targets/iscsi/iqn.2026-11.org.example:alpha/enabled",
        "1",
    );
    std::fs::create_dir_all(
        d.join("sys/kernel/scst_tgt/targets/iscsi/iqn.2026-11.org.example:alpha/sessions"),
    )
    .unwrap();
    write(
        d,
        "sys/kernel/scst_tgt/targets/copy_manager/copy_manager_tgt/enabled",
        "1",
    );
    write(d, "fake-run/crm_mon", &crm_mon(quorum));
    write(
        d,
        "fake-run/corosync-cfgtool",
        "Local node ID 1, transport knet\n",
    );
    t
}

#[test]
fn boot_order_cluster_mode_watchdog_corosync_pacemaker_settle_no_port_enable() {
    let t = tree(HA, true);
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ops = &r.ops;
    let cm0 = pos(ops, &format!("write {SCST}/devices/disk0/cluster_mode 1"));
    let cm1 = pos(ops, &format!("write {SCST}/devices/disk1/cluster_mode 1"));
    let scst_port = pos(
        ops,
        &format!("write {SCST}/targets/iscsi/iqn.2026-11.org.example:alpha/enabled 0"),
    );
    let lio_disabled = pos(ops, &format!("write {TPG}/enable 0"));
    let wd = pos(ops, "watchdog_open /dev/watchdog");
    let coro = pos(ops, "spawn /usr/sbin/corosync -f");
    let pcmk = pos(ops, "spawn /usr/sbin/pacemakerd");
    // Pacemaker only once Corosync answers on its IPC.
    let cfgtool = pos(ops, "run /usr/sbin/corosync-cfgtool -s");
    assert!(coro < cfgtool && cfgtool < pcmk, "{ops:#?}");
    let status = pos(ops, &format!("run {CRM_MON}"));
    let svc = pos(ops, "spawn /usr/sbin/iscsi-scstd -f");
    assert!(lio_disabled < cm0 && scst_port < cm0, "{ops:#?}");
    assert!(cm0 < coro && cm1 < coro, "{ops:#?}");
    assert!(
        svc < wd && wd < coro && coro < pcmk && pcmk < status,
        "{ops:#?}"
    );
    // The watchdog is petted as soon as it is armed.
    assert_eq!(ops[wd + 1], "watchdog_pet", "{ops:#?}");
    // Ports: the copy manager is not an initiator port; nothing is ever enabled.
    assert!(!ops.iter().any(|o| o.contains("copy_manager")), "{ops:#?}");
    assert!(!ops.contains(&format!("write {TPG}/enable 1")), "{ops:#?}");
    assert!(!ops.iter().any(|o| o.ends_with("/enabled 1")), "{ops:#?}");
    assert!(
        r.log
            .iter()
            .any(|l| l == "ha: cluster settled after 0 s (DC alpha, quorate)"),
        "{:?}",
        r.log
    );
    assert!(
        r.log.iter().any(|l| l.contains("Pacemaker enables them")),
        "{:?}",
        r.log
    );
    assert_eq!(r.log.last().unwrap(), "ready");
}

#[test]
fn no_quorum_keeps_ports_disabled_and_says_why() {
    let t = tree(
        r#"enabled = true
settle-timeout = "120s""#,
        false,
    );
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.log
            .iter()
            .any(|l| l == "no quorum after 120s: ports stay disabled (peer unreachable?)"),
        "{:?}",
        r.log
    );
    assert_eq!(
        r.log.last().unwrap(),
        "state: up without quorum (ports disabled)"
    );
    // Polled every 2 s for 120 s, then given up (bounded).
    let polls = r
        .ops
        .iter()
        .filter(|o| *o == &format!("run {CRM_MON}"))
        .count();
    assert_eq!(polls, 61);
    assert!(!r.ops.contains(&format!("write {TPG}/enable 1")));
    // No watchdog configured: the init never opens one.
    assert!(!r.ops.iter().any(|o| o.starts_with("watchdog")));
}

#[test]
fn missing_scst_skips_cluster_mode_with_a_note() {
    let t = tree(HA, true);
    std::fs::remove_dir_all(t.path().join("sys/kernel/scst_tgt")).unwrap();
    let r = run(t.path(), &["boot"]);
    assert!(
        r.log.iter().any(|l| l.contains("cluster_mode skipped")),
        "{:?}",
        r.log
    );
    assert!(!r.ops.iter().any(|o| o.contains("cluster_mode")));
    assert!(r.ops.iter().any(|o| o == "spawn /usr/sbin/corosync -f"));
}

#[test]
fn mac_picks_the_node_config() {
    let t = tree(HA, true);
    let d = t.path();
    std::fs::remove_file(d.join("etc/sanforge/node.toml")).unwrap();
    write(
        d,
        "etc/sanforge/nodes/alpha.toml",
        &node("alpha", "52:54:00:00:00:01", HA),
    );
    write(
        d,
        "etc/sanforge/nodes/beta.toml",
        &node("beta", "52:54:00:00:00:02", HA),
    );
    write(d, "sys/class/net/eth0/address", "52:54:00:00:00:02\n");
    write(d, "sys/class/net/lo/address", "00:00:00:00:00:00\n");
    let r = run(d, &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.log
            .iter()
            .any(|l| l == "node beta picked by MAC 52:54:00:00:00:02 on eth0"),
        "{:?}",
        r.log
    );
    assert!(
        r.ops.contains(&"sethostname beta".to_string()),
        "{:?}",
        r.ops
    );
    // The command line still wins over the MAC.
    write(d, "proc/cmdline", "quiet sanforge.node=alpha\n");
    let r = run(d, &["boot"]);
    assert!(
        r.ops.contains(&"sethostname alpha".to_string()),
        "{:?}",
        r.ops
    );
}

#[test]
fn no_mac_match_is_degraded_with_the_macs_listed() {
    let t = tree(HA, true);
    let d = t.path();
    std::fs::remove_file(d.join("etc/sanforge/node.toml")).unwrap();
    write(
        d,
        "etc/sanforge/nodes/alpha.toml",
        &node("alpha", "52:54:00:00:00:01", HA),
    );
    write(
        d,
        "etc/sanforge/nodes/beta.toml",
        &node("beta", "52:54:00:00:00:02", HA),
    );
    write(d, "sys/class/net/eth0/address", "52:54:00:00:00:99\n");
    let r = run(d, &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let line = r
        .log
        .iter()
        .find(|l| l.starts_with("degraded: "))
        .unwrap_or_else(|| panic!("{:?}", r.log));
    assert!(
        line.contains("MACs seen: eth0 52:54:00:00:00:99; nodes known: alpha (52:54:00:00:00:01), beta (52:54:00:00:00:02)"),
        "{line}"
    );
    assert!(!r.ops.iter().any(|o| o.starts_with("spawn")), "{:?}", r.ops);
}

#[test]
fn shutdown_step_disables_drains_clears_cluster_mode_and_unloads() {
    let t = tree(HA, true);
    let d = t.path();
    // One initiator still logged in: the drain gives up after drain-timeout.
    write(
        d,
        "sys/kernel/scst_tgt/targets/iscsi/iqn.2026-11.org.example:alpha/sessions/iqn.1994-05.com.redhat:init/lun0",
        "",
    );
    for dev in ["disk0", "disk1"] {
        write(
            d,
            &format!("sys/kernel/scst_tgt/devices/{dev}/cluster_mode"),
            "1",
        );
    }
    let r = run(d, &["shutdown"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.ops,
        [
            format!("write {TPG}/enable 0"),
            format!("write {SCST}/targets/iscsi/iqn.2026-11.org.example:alpha/enabled 0"),
            format!("write {SCST}/devices/disk0/cluster_mode 0"),
            format!("write {SCST}/devices/disk1/cluster_mode 0"),
            "kill -1 KILL".into(),
            "delete_module iscsi_scst".into(),
            "delete_module scst_vdisk".into(),
            "delete_module scst".into(),
            "delete_module drbd".into(),
            "sync".into(),
            "reboot poweroff".into(),
        ]
    );
    assert!(
        r.log
            .iter()
            .any(|l| l == "ha: 1 sessions still open after 3 s: going on"),
        "{:?}",
        r.log
    );
}

#[test]
fn boot_supervise_shutdown_stops_pacemaker_then_corosync() {
    let t = tree(HA, false);
    let d = t.path();
    let mut sys = FakeSys::new(d);
    let mut init = Init::new(&mut sys, Logger::capture());
    init.boot();
    assert_eq!(
        init.log.lines().last().unwrap(),
        "state: up without quorum (ports disabled)"
    );
    // Quorum arrives later: the main loop notices it and says so.
    write(d, "fake-run/crm_mon", &crm_mon(true));
    ha::tick(&mut init, Instant::now() + Duration::from_secs(10));
    assert!(init.ha.quorate);
    assert!(
        init.log
            .lines()
            .iter()
            .any(|l| l.starts_with("ha: quorum reached (DC alpha)")),
        "{:?}",
        init.log.lines()
    );
    let pid = |init: &Init, name: &str| {
        init.supervisor
            .services
            .iter()
            .find(|s| s.svc.name == name)
            .and_then(|s| s.pid)
            .unwrap()
    };
    let (pcmk, coro) = (pid(&init, "pacemaker"), pid(&init, "corosync"));
    // Pacemaker exits on SIGTERM; Corosync ignores it and is killed after stop-timeout.
    // (The fake's exit queue is reachable only outside the Init: carry the state over.)
    let (node, lio) = (init.node.clone(), init.lio.clone());
    let sup = std::mem::take(&mut init.supervisor);
    let hs = std::mem::take(&mut init.ha);
    drop(init);
    sys.exits
        .push_back((pcmk, ExitStatus::Signaled(libc_sigterm())));
    let mut init = Init::new(&mut sys, Logger::capture());
    (init.node, init.lio, init.supervisor, init.ha) = (node, lio, sup, hs);
    init.shutdown(RebootCmd::PowerOff);
    assert!(
        init.log
            .lines()
            .iter()
            .any(|l| l == "ha: corosync still running after 1 s: SIGKILL"),
        "{:?}",
        init.log.lines()
    );
    drop(init);
    let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
    let after = ops
        .iter()
        .rposition(|o| o == &format!("write {TPG}/enable 0"))
        .unwrap();
    let ops = &ops[after..];
    let cm = pos(ops, &format!("write {SCST}/devices/disk0/cluster_mode 0"));
    let kp = pos(ops, &format!("kill {pcmk} TERM"));
    let kc = pos(ops, &format!("kill {coro} TERM"));
    let kck = pos(ops, &format!("kill {coro} KILL"));
    let rest = pos(ops, "kill -1 KILL");
    let wd = pos(ops, "watchdog_close V");
    let dm = pos(ops, "delete_module iscsi_scst");
    let sync = pos(ops, "sync");
    assert!(cm < kp && kp < kc && kc < kck && kck < rest, "{ops:#?}");
    assert!(rest < wd && wd < dm && dm < sync, "{ops:#?}");
    // Pacemaker was not restarted after it exited.
    assert!(!ops.iter().any(|o| o.starts_with("spawn")), "{ops:#?}");
    assert_eq!(ops.last().unwrap(), "reboot poweroff");
}

fn libc_sigterm() -> i32 {
    15
}

#[test]
fn one_image_bakes_every_node_config_of_a_rendered_cluster() {
    let p = Project::new();
    let r = p.root();
    // The build checks that every module a node loads is in the image: the fake kernel
    // has target_core_mod only.
    let baked = |name: &str, mac: &str| {
        node(name, mac, HA).replace(
            "load = [\"drbd\", \"scst\", \"scst_vdisk\", \"iscsi_scst\"]",
            "load = [\"target_core_mod\"]",
        )
    };
    write(
        r,
        "cluster/alpha/node.toml",
        &baked("alpha", "52:54:00:00:00:01"),
    );
    write(
        r,
        "cluster/beta/node.toml",
        &baked("beta", "52:54:00:00:00:02"),
    );
    let recipe = std::fs::read_to_string(p.recipe()).unwrap().replace(
        "config = \"recipes/nodes/node.toml\"",
        "config = \"recipes/nodes/node.toml\"\nconfigs = [\"cluster\"]",
    );
    std::fs::write(p.recipe(), recipe).unwrap();
    // The build checks that every program a node runs is in the image: the fake
    // userland has none of them, so it is refused, each named at its value…
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success(), "{}", text(&o));
    for needle in [
        "alpha/node.toml:20:9: service `iscsi-scstd` runs /usr/sbin/iscsi-scstd, which this image does not have",
        "[ha] corosync runs /usr/sbin/corosync, which this image does not have",
    ] {
        assert!(text(&o).contains(needle), "`{needle}` not in\n{}", text(&o));
    }
    // …and built once the overlay provides stand-ins.
    for prog in [
        "iscsi-scstd",
        "corosync",
        "pacemakerd",
        "corosync-cfgtool",
        "crm_mon",
    ] {
        let f = r.join("overlays/base/usr/sbin").join(prog);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, b"\x7fELF stand-in").unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let img = p.root().join("out/test/initramfs.cpio.zst");
    let x = tempfile::tempdir().unwrap();
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc {} | cpio -id --quiet etc/sanforge/nodes/*",
            img.display()
        ))
        .current_dir(x.path())
        .status()
        .unwrap();
    assert!(st.success());
    for n in ["alpha", "beta"] {
        let got =
            std::fs::read_to_string(x.path().join(format!("etc/sanforge/nodes/{n}.toml"))).unwrap();
        assert_eq!(
            got,
            std::fs::read_to_string(r.join(format!("cluster/{n}/node.toml"))).unwrap()
        );
    }
    // A node config that does not validate fails the build, not the boot.
    write(
        r,
        "cluster/gamma/node.toml",
        "hostname = \"gamma\"\nbogus = 1\n",
    );
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("bogus"), "{}", text(&o));
}

#[test]
fn corosync_that_cannot_start_means_no_pacemaker_and_no_quorum_state() {
    let t = tree(HA, true);
    let mut sys = FakeSys::new(t.path());
    sys.fail.push(("spawn /usr/sbin/corosync".into(), 2));
    let mut init = Init::new(&mut sys, Logger::capture());
    init.boot();
    let lines = init.log.lines().to_vec();
    drop(init);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("warning: cluster: corosync did not start")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        "state: up without quorum (ports disabled)"
    );
    let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
    assert!(!ops.iter().any(|o| o.contains("pacemakerd")), "{ops:#?}");
    assert!(
        !ops.iter().any(|o| o.ends_with("tpgt_1/enable 1")),
        "{ops:#?}"
    );
}

#[test]
fn pacemaker_waits_for_corosync_bounded_by_the_settle_timeout() {
    let t = tree(HA, true);
    // corosync-cfgtool fails (no IPC yet) on every poll.
    write(t.path(), "fake-run/corosync-cfgtool.rc", "1");
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let polls = r
        .ops
        .iter()
        .filter(|o| *o == "run /usr/sbin/corosync-cfgtool -s")
        .count();
    // settle-timeout 6 s at one poll per 250 ms, then Pacemaker starts anyway.
    assert_eq!(polls, 25, "{:#?}", r.ops);
    assert!(
        r.log.iter().any(|l| l.contains("corosync does not answer")),
        "{:?}",
        r.log
    );
    assert!(r.ops.iter().any(|o| o == "spawn /usr/sbin/pacemakerd"));
}

#[test]
fn the_rendered_cib_is_seeded_for_hacluster_before_corosync_starts() {
    let t = tree(HA, true);
    write(t.path(), "etc/sanforge/cib.xml", "<cib/>\n");
    write(
        t.path(),
        "etc/passwd",
        "root:x:0:0::/:/bin/sh\nhacluster:x:189:189::/:/bin/false\n",
    );
    write(
        t.path(),
        "etc/group",
        "root:x:0:\nhaclient:x:190:hacluster\n",
    );
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let ops = &r.ops;
    let copy = pos(
        ops,
        "copy /etc/sanforge/cib.xml /var/lib/pacemaker/cib/cib.xml",
    );
    let chown = pos(ops, "chown /var/lib/pacemaker/cib/cib.xml 189:190");
    let run_link = pos(ops, "symlink /run /var/run");
    let lock_link = pos(ops, "symlink /run/lock /var/lock");
    let coro = pos(ops, "spawn /usr/sbin/corosync -f");
    assert!(lock_link < coro, "{ops:#?}");
    assert!(copy < chown && chown < coro && run_link < coro, "{ops:#?}");
    assert_eq!(
        std::fs::read_to_string(t.path().join("var/lib/pacemaker/cib/cib.xml")).unwrap(),
        "<cib/>\n"
    );
    // A second boot on the same tree (a CIB already there) does not overwrite it.
    write(
        t.path(),
        "var/lib/pacemaker/cib/cib.xml",
        "<cib epoch=\"9\"/>\n",
    );
    let r = run(t.path(), &["boot"]);
    assert!(!r
        .ops
        .iter()
        .any(|o| o.starts_with("copy /etc/sanforge/cib.xml")));
}
