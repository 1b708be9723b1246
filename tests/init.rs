//! Runs the built `sanforge-init --root DIR STEP` against temporary fake trees and
//! checks the recorded syscalls and the files written into the tree.

mod common;

use common::initroot::{run, write};

use std::process::Command;

const MODULES_DEP: &str = "\
kernel/drivers/target/iscsi/iscsi_target_mod.ko: kernel/drivers/target/target_core_mod.ko kernel/lib/libcrc32c.ko kernel/crypto/crc32c_generic.ko
kernel/drivers/target/target_core_mod.ko: kernel/fs/configfs/configfs.ko kernel/crypto/crc32c_generic.ko
kernel/drivers/target/target_core_file.ko: kernel/drivers/target/target_core_mod.ko
kernel/lib/libcrc32c.ko: kernel/crypto/crc32c_generic.ko
kernel/crypto/crc32c_generic.ko:
kernel/fs/configfs/configfs.ko:
kernel/drivers/scsi/qla2xxx/qla2xxx.ko: kernel/drivers/scsi/scsi_transport_fc.ko
kernel/drivers/scsi/scsi_transport_fc.ko:
";

const DEMO: &str = r#"hostname = "san1"
[sysctl]
"vm.swappiness" = "0"
[modules]
load = ["iscsi_target_mod", "target_core_file", "qla2xxx", "loop"]
blacklist = ["scsi_transport_fc"]
params = { target_core_mod = "debug=1" }
[network]
interfaces = [{ name = "eth0", addresses = ["192.0.2.15/24", "198.51.100.1/24"], mtu = 9000 }]
routes = [{ to = "default", via = "192.0.2.1" }, { to = "203.0.113.0/24", via = "192.0.2.2" }]
[lio]
backstores = [{ name = "disk0", kind = "fileio", path = "/run/disk0.img", size = "64MiB" }]
[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:san1"
portals = ["0.0.0.0:3260"]
luns = [{ lun = 0, backstore = "disk0" }]
acls = [{ initiator = "iqn.2026-11.org.example:host1" }]
[[services]]
name = "sshd"
argv = ["/usr/sbin/sshd", "-D"]
"#;

fn demo_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "etc/sanforge/node.toml", DEMO);
    write(
        t.path(),
        "lib/modules/6.1.0-sanforge/modules.dep",
        MODULES_DEP,
    );
    write(
        t.path(),
        "lib/modules/6.1.0-sanforge/modules.builtin",
        "kernel/drivers/block/loop.ko\n",
    );
    std::fs::create_dir_all(t.path().join("sys/class/net/eth0")).unwrap();
    // The directory of the fileio backstore (the init leaves out a backstore whose
    // directory is absent).
    std::fs::create_dir_all(t.path().join("run")).unwrap();
    t
}

const TPG: &str = "/sys/kernel/config/target/iscsi/iqn.2026-11.org.example:san1/tpgt_1";

#[test]
fn mounts_are_recorded_in_order() {
    let t = tempfile::tempdir().unwrap();
    let r = run(t.path(), &["mounts"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mounts: Vec<String> = r
        .ops
        .iter()
        .filter(|o| o.starts_with("mount "))
        .map(|o| o.split(' ').take(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        mounts,
        [
            "mount proc /proc proc",
            "mount sysfs /sys sysfs",
            "mount devtmpfs /dev devtmpfs",
            "mount tmpfs /dev/shm tmpfs",
            "mount tmpfs /run tmpfs",
            "mount tmpfs /tmp tmpfs",
            "mount configfs /sys/kernel/config configfs",
        ]
    );
    let mkdir = r
        .ops
        .iter()
        .position(|o| o == "mkdir /sys/kernel/config")
        .unwrap();
    let mount = r
        .ops
        .iter()
        .position(|o| o.starts_with("mount configfs"))
        .unwrap();
    assert!(mkdir < mount);
    assert!(t.path().join("sys/kernel/config").is_dir());
}

#[test]
fn modules_load_dependencies_first_with_params_and_blacklist() {
    let t = demo_tree();
    let r = run(t.path(), &["load-modules"]);
    // The blacklisted dependency makes the step fail (a warning at boot).
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("1 modules not loaded"), "{}", r.stderr);
    let dir = "/lib/modules/6.1.0-sanforge/kernel";
    assert_eq!(
        r.ops,
        [
            format!("finit_module {dir}/fs/configfs/configfs.ko \"\""),
            format!("finit_module {dir}/crypto/crc32c_generic.ko \"\""),
            format!("finit_module {dir}/drivers/target/target_core_mod.ko \"debug=1\""),
            format!("finit_module {dir}/lib/libcrc32c.ko \"\""),
            format!("finit_module {dir}/drivers/target/iscsi/iscsi_target_mod.ko \"\""),
            format!("finit_module {dir}/drivers/target/target_core_file.ko \"\""),
        ]
    );
    assert!(
        r.log.iter().any(|l| l.contains("qla2xxx")
            && l.contains("scsi_transport_fc")
            && l.starts_with("warning:")),
        "{:?}",
        r.log
    );
    assert!(
        r.log.iter().any(|l| l == "module loop is built in"),
        "{:?}",
        r.log
    );
}

#[test]
fn network_configures_loopback_interfaces_and_routes() {
    let t = demo_tree();
    let r = run(t.path(), &["network"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.ops,
        [
            "addr lo 127.0.0.1/8",
            "link_up lo",
            "mtu eth0 9000",
            "addr eth0 192.0.2.15/24",
            "addr eth0:1 198.51.100.1/24",
            "link_up eth0",
            "route 0.0.0.0/0 via 192.0.2.1",
            "route 203.0.113.0/24 via 192.0.2.2",
        ]
    );
}

#[test]
fn missing_interface_is_a_warning() {
    let t = demo_tree();
    std::fs::remove_dir(t.path().join("sys/class/net/eth0")).unwrap();
    let r = run(t.path(), &["network"]);
    assert_eq!(r.code, 1);
    assert!(
        r.log
            .iter()
            .any(|l| l.contains("interface eth0 did not appear")),
        "{:?}",
        r.log
    );
    assert!(!r.ops.iter().any(|o| o.contains("eth0")));
}

#[test]
fn apply_targets_builds_the_configfs_tree_with_enable_last() {
    let t = demo_tree();
    let r = run(t.path(), &["apply-targets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cfg = t.path().join("sys/kernel/config/target");
    let read = |rel: &str| std::fs::read_to_string(cfg.join(rel)).unwrap();
    assert_eq!(
        read("core/fileio_0/disk0/control"),
        "fd_dev_name=/run/disk0.img,fd_dev_size=67108864"
    );
    assert_eq!(read("core/fileio_0/disk0/enable"), "1");
    // LIO's APTPL and ALUA metadata directories exist before any target does.
    for d in ["etc/target/pr", "etc/target/alua"] {
        assert!(t.path().join(d).is_dir(), "{d} missing");
    }
    let tpg = "iscsi/iqn.2026-11.org.example:san1/tpgt_1";
    assert_eq!(read(&format!("{tpg}/enable")), "1");
    assert_eq!(read(&format!("{tpg}/attrib/authentication")), "0");
    assert!(cfg.join(format!("{tpg}/np/0.0.0.0:3260")).is_dir());
    // The LUN symlink resolves into the backstore, the ACL's mapped LUN into the LUN.
    assert!(cfg.join(format!("{tpg}/lun/lun_0/disk0/control")).is_file());
    let acl_lun = cfg.join(format!(
        "{tpg}/acls/iqn.2026-11.org.example:host1/lun_0/lun"
    ));
    assert_eq!(
        std::fs::read_link(&acl_lun).unwrap(),
        cfg.join(format!("{tpg}/lun/lun_0"))
    );
    assert!(r.ops.contains(&format!(
        "symlink /sys/kernel/config/target/core/fileio_0/disk0 {TPG}/lun/lun_0/disk0"
    )));

    let enables: Vec<(usize, &String)> = r
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.starts_with(&format!("write {TPG}/enable ")))
        .collect();
    assert_eq!(enables.len(), 2, "{:?}", r.ops);
    assert_eq!(enables[0].1, &format!("write {TPG}/enable 0"));
    assert_eq!(enables[1].1, &format!("write {TPG}/enable 1"));
    assert_eq!(
        enables[1].0,
        r.ops.len() - 1,
        "enable 1 must be the last op"
    );
    let first_lun = r.ops.iter().position(|o| o.contains("/lun/lun_0")).unwrap();
    assert!(enables[0].0 < first_lun);
}

#[test]
fn apply_targets_takes_a_node_file_argument() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("other.toml");
    std::fs::write(
        &f,
        DEMO.replace("san1\"\n[sysctl]", "san9\"\n[sysctl]")
            .replace(":san1", ":san9"),
    )
    .unwrap();
    let r = run(t.path(), &["apply-targets", f.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(t
        .path()
        .join("sys/kernel/config/target/iscsi/iqn.2026-11.org.example:san9/tpgt_1")
        .is_dir());
}

#[test]
fn boot_runs_every_step_and_prints_ready() {
    let t = demo_tree();
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.log.last().map(String::as_str),
        Some("ready"),
        "{:?}",
        r.log
    );
    let pos = |p: &str| {
        r.ops
            .iter()
            .position(|o| o.starts_with(p))
            .unwrap_or_else(|| panic!("no `{p}` in {:?}", r.ops))
    };
    assert!(pos("mount configfs") < pos("sethostname san1"));
    assert!(pos("sethostname san1") < pos("finit_module"));
    assert!(pos("finit_module") < pos("addr lo"));
    assert!(pos("addr lo") < pos("mkdir /sys/kernel/config/target/core"));
    assert!(pos("mkdir /sys/kernel/config/target/core") < pos("spawn /usr/sbin/sshd -D"));
    // The last kernel write enables the port (the timeline file follows it).
    let last = r
        .ops
        .iter()
        .rev()
        .find(|o| !o.contains(" /run/sanforge/"))
        .unwrap();
    assert_eq!(last, &format!("write {TPG}/enable 1"));
    assert!(r
        .ops
        .contains(&"write /proc/sys/vm/swappiness 0".to_string()));
    assert_eq!(
        std::fs::read_to_string(t.path().join("proc/sys/vm/swappiness")).unwrap(),
        "0"
    );
}

#[test]
fn malformed_config_boots_degraded_without_targets() {
    let t = demo_tree();
    write(
        t.path(),
        "etc/sanforge/node.toml",
        "hostname = \"san1\"\nbogus = 1\n[lio]\n",
    );
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = r
        .log
        .iter()
        .find(|l| l.starts_with("degraded: "))
        .unwrap_or_else(|| panic!("{:?}", r.log));
    assert!(d.contains("/etc/sanforge/node.toml:2:1"), "{d}");
    assert!(!r.log.iter().any(|l| l == "ready"));
    assert!(r.log.last().unwrap().starts_with("state: degraded"));
    assert!(
        !r.ops.iter().any(|o| o.contains("/sys/kernel/config/target")
            || o.starts_with("spawn")
            || o.starts_with("finit_module")),
        "{:?}",
        r.ops
    );
}

#[test]
fn unknown_backstore_is_degraded_with_the_message() {
    let t = demo_tree();
    write(
        t.path(),
        "etc/sanforge/node.toml",
        &DEMO.replace("backstore = \"disk0\"", "backstore = \"nope\""),
    );
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0);
    let d = r
        .log
        .iter()
        .find(|l| l.starts_with("degraded: "))
        .unwrap_or_else(|| panic!("{:?}", r.log));
    assert!(
        d.contains("backstore `nope`, which is not defined") && d.contains("node.toml:"),
        "{d}"
    );
    assert!(!r
        .ops
        .iter()
        .any(|o| o.contains("/sys/kernel/config/target")));
}

#[test]
fn cmdline_selects_another_node_file() {
    let t = demo_tree();
    write(
        t.path(),
        "proc/cmdline",
        "console=ttyS0 sanforge.node=san2 quiet\n",
    );
    write(
        t.path(),
        "etc/sanforge/nodes/san2.toml",
        "hostname = \"san2\"\n",
    );
    let r = run(t.path(), &["boot"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.ops.contains(&"sethostname san2".to_string()),
        "{:?}",
        r.ops
    );
    assert!(!r
        .ops
        .iter()
        .any(|o| o.contains("/sys/kernel/config/target")));

    // An unknown name falls back to node.toml with a warning.
    write(t.path(), "proc/cmdline", "sanforge.node=nosuch\n");
    let r = run(t.path(), &["load-modules"]);
    assert!(
        r.log.iter().any(|l| l.contains("sanforge.node=nosuch")),
        "{:?}",
        r.log
    );
    assert!(r.ops.iter().any(|o| o.contains("iscsi_target_mod.ko")));
}

#[test]
fn shutdown_disables_ports_then_powers_off() {
    let t = demo_tree();
    let r = run(t.path(), &["shutdown"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.ops,
        [
            format!("write {TPG}/enable 0"),
            "kill -1 KILL".into(),
            "sync".into(),
            "reboot poweroff".into()
        ]
    );
}

#[test]
fn refuses_to_run_as_pid1_replacement_and_rejects_unknown_steps() {
    let out = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--root DIR"));
    let t = tempfile::tempdir().unwrap();
    let r = run(t.path(), &["frobnicate"]);
    assert_eq!(r.code, 2);
    assert!(r.ops.is_empty());
}

#[test]
fn hardware_step_loads_device_modules_and_writes_the_report() {
    let t = demo_tree();
    let r = t.path();
    write(
        r,
        "lib/modules/6.1.0-sanforge/modules.dep",
        &format!("{MODULES_DEP}kernel/drivers/watchdog/i6300esb.ko:\n"),
    );
    write(
        r,
        "lib/modules/6.1.0-sanforge/modules.alias",
        "alias pci:v00008086d000025ABsv*sd*bc*sc*i* i6300esb\n\
         alias pci:v00001077d00002532sv*sd*bc*sc*i* qla2xxx\n",
    );
    let dev = |slot: &str, id: (&str, &str), alias: &str| {
        let d = format!("sys/bus/pci/devices/{slot}");
        write(r, &format!("{d}/vendor"), &format!("0x{}\n", id.0));
        write(r, &format!("{d}/device"), &format!("0x{}\n", id.1));
        write(r, &format!("{d}/class"), "0x088000\n");
        write(r, &format!("{d}/modalias"), alias);
    };
    dev(
        "0000:00:04.0",
        ("8086", "25ab"),
        "pci:v00008086d000025ABsv00001AF4sd00001100bc08sc80i00\n",
    );
    dev(
        "0000:00:05.0",
        ("1077", "2532"),
        "pci:v00001077d00002532sv00001077sd0000015Dbc0Csc04i00\n",
    );
    let run = run(r, &["hardware"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.ops[0],
        "finit_module /lib/modules/6.1.0-sanforge/kernel/drivers/watchdog/i6300esb.ko \"\""
    );
    // The node's blacklist keeps qla2xxx's dependency out: qla2xxx is not loaded.
    assert!(
        !run.ops.iter().any(|o| o.contains("qla2xxx")),
        "{:?}",
        run.ops
    );
    assert!(run
        .ops
        .iter()
        .any(|o| o.starts_with("write_durable /etc/modprobe.d/sanforge.conf (")));
    let conf = std::fs::read_to_string(r.join("etc/modprobe.d/sanforge.conf")).unwrap();
    assert!(
        conf.ends_with("blacklist scsi_transport_fc\noptions target_core_mod debug=1\n"),
        "{conf}"
    );
    assert!(
        run.log.contains(
            &"  pci  0000:00:05.0 1077:2532 class 088000 no driver (candidates: qla2xxx blacklisted (needs scsi_transport_fc))"
                .to_string()
        ),
        "{:?}",
        run.log
    );
    assert!(run
        .log
        .iter()
        .any(|l| l.starts_with("udev: not in the image")));
    let json = std::fs::read_to_string(r.join("run/sanforge/hardware.json")).unwrap();
    assert!(json.contains("\"i6300esb\""), "{json}");
}

#[test]
fn network_plan_prints_the_netlink_calls_of_a_bond_and_vlan_config() {
    // No /sys/class/net in the tree: network-plan assumes every link the config names.
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("node.toml");
    std::fs::write(
        &f,
        "hostname = \"n\"\n[[network.interfaces]]\nmac = \"52:54:00:00:00:01\"\n\
         [[network.bonds]]\nname = \"bond0\"\nslaves = [\"52:54:00:00:00:01\", \"eth1\"]\n\
         mode = \"802.3ad\"\nlacp-rate = \"fast\"\nxmit-hash-policy = \"layer3+4\"\nmtu = 9000\n\
         [[network.vlans]]\nlink = \"bond0\"\nid = 100\naddresses = [\"2001:db8::15/64\"]\n",
    )
    .unwrap();
    let r = run(t.path(), &["network-plan", f.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{:?}", r.stderr, r.log);
    assert_eq!(
        r.ops,
        [
            "addr lo 127.0.0.1/8",
            "link_up lo",
            "mtu 52:54:00:00:00:01 9000",
            "mtu eth1 9000",
            "link_add bond0 bond mode=802.3ad miimon=100 lacp_rate=fast xmit_hash_policy=layer3+4 mtu=9000",
            "link_down 52:54:00:00:00:01",
            "master 52:54:00:00:00:01 bond0",
            "link_down eth1",
            "master eth1 bond0",
            "link_add bond0.100 vlan link=bond0 id=100",
            "addr bond0.100 2001:db8::15/64 nodad",
            "link_up 52:54:00:00:00:01",
            "link_up bond0",
            "link_up bond0.100",
        ]
    );
}
