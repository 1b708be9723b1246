//! The storage steps of `sanforge-init` against fake trees (`--root DIR storage`):
//! md arrays assembled with mdadm and volume groups activated with lvm in the order
//! the node config states, a missing member named on the console and in the hardware
//! report, a LUN whose device is absent left out of the LIO plan, and the targets'
//! state put on the state device (or warned about as volatile). mdadm and lvm are
//! answered by the fake's `/fake-run` files (`FakeSys::run_output`), whose `.tree`
//! directories make what the real tools would (`/dev/md/NAME`, `/sys/block/md127`).

mod common;

use common::initroot::{run, write};
use std::path::Path;

const MODULES_DEP: &str = "\
kernel/drivers/md/md-mod.ko:
kernel/drivers/md/raid1.ko: kernel/drivers/md/md-mod.ko
kernel/fs/ext4/ext4.ko:
kernel/drivers/target/target_core_mod.ko:
kernel/drivers/target/target_core_iblock.ko: kernel/drivers/target/target_core_mod.ko
kernel/drivers/target/iscsi/iscsi_target_mod.ko: kernel/drivers/target/target_core_mod.ko
";

const NODE: &str = r#"hostname = "san1"
[storage]
order = ["md", "lvm"]
device-timeout = "1s"
state = { device = "/dev/disk/by-id/virtio-state" }

[[storage.md]]
name = "data"
level = "raid1"
devices = ["/dev/disk/by-id/virtio-d0", "/dev/disk/by-id/virtio-d1"]

[[storage.lvm]]
vg = "vg0"

[[storage.lvm]]
vg = "vgha"
activate = "ha"

[[lio.backstores]]
name = "lun0"
kind = "block"
path = "/dev/vg0/lun0"

[[lio.backstores]]
name = "gone"
kind = "block"
path = "/dev/vg0/gone"

[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:san1"
portals = ["0.0.0.0:3260"]
luns = [{ lun = 0, backstore = "lun0" }, { lun = 1, backstore = "gone" }]
acls = [{ initiator = "iqn.2026-11.org.example:host1" }]
"#;

fn symlink(r: &Path, link: &str, target: &str) {
    let p = r.join(link);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

/// A node with one RAID1 member (`virtio-d1`) missing: mdadm assembles `data` degraded
/// from vda, lvm activates vg0 with one LV (`lun0`; `gone` does not exist), and the
/// state device holds an ext4 file system.
fn degraded_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "etc/sanforge/node.toml", NODE);
    write(r, "lib/modules/6.1.0-sanforge/modules.dep", MODULES_DEP);
    write(
        r,
        "lib/modules/6.1.0-sanforge/modules.builtin",
        "kernel/drivers/md/dm-mod.ko\n",
    );
    write(r, "dev/vda", "");
    symlink(r, "dev/disk/by-id/virtio-d0", "../../vda");
    // The state device: an ext4 superblock magic at 1080.
    let mut ext4 = vec![0u8; 4096];
    ext4[1080] = 0x53;
    ext4[1081] = 0xef;
    std::fs::write(r.join("dev/vdc"), &ext4).unwrap();
    symlink(r, "dev/disk/by-id/virtio-state", "../../vdc");
    // mdadm: /dev/md/data → md127, RAID1 of 2 with one slot empty.
    write(r, "fake-run/mdadm", "");
    write(
        r,
        "fake-run/mdadm.err",
        "mdadm: /dev/md/data has been started with 1 drive (out of 2).\n",
    );
    let md = "fake-run/mdadm.tree/sys/block/md127/md";
    for (f, v) in [
        ("level", "raid1"),
        ("raid_disks", "2"),
        ("degraded", "1"),
        ("array_state", "clean"),
        ("sync_action", "idle"),
        ("dev-vda/state", "in_sync"),
    ] {
        write(r, &format!("{md}/{f}"), &format!("{v}\n"));
    }
    write(r, "fake-run/mdadm.tree/dev/md127", "");
    symlink(r, "fake-run/mdadm.tree/dev/md/data", "../md127");
    // lvm vgchange -ay vg0: dm-0 is vg0/lun0 (64.0 MiB).
    write(
        r,
        "fake-run/lvm.vgchange",
        "  1 logical volume(s) in volume group \"vg0\" now active\n",
    );
    let dm = "fake-run/lvm.vgchange.tree/sys/block/dm-0";
    write(r, &format!("{dm}/size"), "131072\n");
    write(r, &format!("{dm}/dm/name"), "vg0-lun0\n");
    write(r, &format!("{dm}/dm/uuid"), "LVM-abcdef\n");
    write(r, "fake-run/lvm.vgchange.tree/dev/dm-0", "");
    symlink(r, "fake-run/lvm.vgchange.tree/dev/vg0/lun0", "../dm-0");
    t
}

#[test]
fn degraded_array_is_assembled_named_and_reported() {
    let t = degraded_tree();
    let r = t.path();
    let run = run(r, &["storage"]);
    let log = run.log.join("\n");
    // The step warns (exit 1) but goes on to the report.
    assert_eq!(run.code, 1, "{log}\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("storage incomplete: md data degraded (1 missing)"),
        "{}",
        run.stderr
    );
    // md before lvm, each module before its tool.
    let pos = |what: &str| {
        run.ops
            .iter()
            .position(|o| o.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in {:#?}", run.ops))
    };
    assert!(pos("raid1.ko") < pos("run /sbin/mdadm"));
    assert!(pos("md-mod.ko") < pos("raid1.ko"));
    assert!(pos("run /sbin/mdadm") < pos("write_durable /etc/lvm/lvm.conf"));
    assert!(pos("write_durable /etc/lvm/lvm.conf") < pos("run /sbin/lvm vgchange -ay vg0"));
    assert!(
        run.ops.contains(
            &"run /sbin/mdadm --assemble /dev/md/data --run /dev/disk/by-id/virtio-d0".to_string()
        ),
        "{:#?}",
        run.ops
    );
    // The cluster's VG is left alone.
    assert!(
        !run.ops.iter().any(|o| o.contains("vgha")),
        "{:#?}",
        run.ops
    );
    assert!(
        log.contains("lvm vgha: left inactive, the cluster activates it on promote"),
        "{log}"
    );
    // The missing member, by the name the config gives, and the array's state.
    assert!(
        log.contains("md data: /dev/md127 raid1 clean, degraded, 1 of 2 members (vda): DEGRADED; missing /dev/disk/by-id/virtio-d1 (not present)"),
        "{log}"
    );
    assert!(
        log.contains("lvm vg0: activated, 1 LV: /dev/vg0/lun0 (64.0 MiB)"),
        "{log}"
    );
    assert!(
        log.contains("lio backstore `gone`: /dev/vg0/gone is not present: not created, its LUNs are not served"),
        "{log}"
    );
    // State on the state device: mounted, LIO's pr and alua bound onto it.
    assert!(
        run.ops
            .iter()
            .any(|o| o.starts_with("mount /dev/disk/by-id/virtio-state /run/sanforge/state ext4")),
        "{:#?}",
        run.ops
    );
    assert!(
        run.ops
            .iter()
            .any(|o| o.starts_with("mount /run/sanforge/state/lio/pr /var/target/pr none")),
        "{:#?}",
        run.ops
    );
    // The hardware report: console and JSON.
    assert!(
        log.contains("  md   data /dev/md127 raid1 clean, degraded members [vda] MISSING /dev/disk/by-id/virtio-d1 (not present)"),
        "{log}"
    );
    assert!(
        log.contains("  lun  lio gone NOT SERVED: /dev/vg0/gone is not present"),
        "{log}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.join("run/sanforge/hardware.json")).unwrap(),
    )
    .unwrap();
    let s = &json["storage"];
    assert_eq!(
        s["missing"],
        serde_json::json!(["/dev/disk/by-id/virtio-d1"]),
        "{s:#}"
    );
    assert_eq!(s["md"][0]["degraded"], 1, "{s:#}");
    assert_eq!(s["absent_luns"][0]["backstore"], "gone", "{s:#}");
    assert_eq!(s["state"]["persistent"], true, "{s:#}");
    assert_eq!(s["lvm"][0]["lvs"][0]["path"], "/dev/vg0/lun0", "{s:#}");
}

#[test]
fn the_order_the_node_config_states_is_kept() {
    let t = degraded_tree();
    let r = t.path();
    write(
        r,
        "etc/sanforge/node.toml",
        &NODE.replace("order = [\"md\", \"lvm\"]", "order = [\"lvm\", \"md\"]"),
    );
    let run = run(r, &["storage"]);
    let pos = |what: &str| run.ops.iter().position(|o| o.contains(what)).unwrap();
    assert!(
        pos("run /sbin/lvm vgchange -ay vg0") < pos("run /sbin/mdadm"),
        "{:#?}",
        run.ops
    );
}

#[test]
fn a_lun_whose_device_is_absent_is_not_configured_and_the_rest_is() {
    let t = degraded_tree();
    let r = t.path();
    // What assembly made.
    write(r, "dev/dm-0", "");
    symlink(r, "dev/vg0/lun0", "../dm-0");
    for m in ["target_core_mod", "target_core_iblock", "iscsi_target_mod"] {
        std::fs::create_dir_all(r.join(format!("sys/module/{m}"))).unwrap();
    }
    std::fs::create_dir_all(r.join("sys/kernel/config/target")).unwrap();
    let run = run(r, &["apply-targets"]);
    let ops = run.ops.join("\n");
    assert!(ops.contains("core/iblock_0/lun0"), "{ops}");
    assert!(!ops.contains("gone"), "{ops}");
    assert!(!ops.contains("lun/lun_1"), "{ops}");
    assert!(ops.contains("lun/lun_0"), "{ops}");
    let log = run.log.join("\n");
    assert!(log.contains("1 of 2 LUNs served (0)"), "{log}");
}

#[test]
fn without_a_state_device_the_state_is_volatile_and_the_boot_says_so() {
    let t = degraded_tree();
    let r = t.path();
    write(
        r,
        "etc/sanforge/node.toml",
        &NODE.replace(
            "state = { device = \"/dev/disk/by-id/virtio-state\" }",
            "state = { device = \"volatile\" }",
        ),
    );
    let run = run(r, &["storage"]);
    let log = run.log.join("\n");
    assert!(
        log.contains("target state is volatile: [storage] state = { device = \"volatile\" }; persistent reservations (APTPL) and ALUA states are lost at reboot"),
        "{log}"
    );
    assert!(log.contains("  state VOLATILE: "), "{log}");
    assert!(
        !run.ops.iter().any(|o| o.contains("/run/sanforge/state")),
        "{:#?}",
        run.ops
    );
    // The default (the state partition) on a node booted without one says how to name one.
    write(
        r,
        "etc/sanforge/node.toml",
        &NODE.replace(
            "state = { device = \"/dev/disk/by-id/virtio-state\" }\n",
            "",
        ),
    );
    let run = common::initroot::run(r, &["storage"]);
    let log = run.log.join("\n");
    assert!(
        log.contains("target state is volatile: no SANFORGE-STATE partition (a PXE boot"),
        "{log}"
    );
}

/// The build refuses a node config whose `[storage]` needs what the image lacks,
/// pointing at the entry and naming the package and kernel option to add.
#[test]
fn storage_without_mdadm_lvm_or_md_in_the_image_is_a_build_error() {
    let p = common::project::Project::new();
    let node = format!(
        "{}\n[[storage.md]]\nname = \"data\"\nlevel = \"raid1\"\ndevices = [\"/dev/vda\", \"/dev/vdb\"]\n\n[[storage.lvm]]\nvg = \"vg0\"\n",
        common::project::NODE
    );
    std::fs::write(p.root().join("recipes/nodes/node.toml"), node).unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success(), "{}", common::project::text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "[storage] assembles md arrays with mdadm, which this image does not have (/sbin/mdadm): add `mdadm` to the recipe's [userland] packages",
        "has no md driver (enable CONFIG_BLK_DEV_MD, =m or =y)",
        "md array `data` is raid1, but kernel",
        "has no `raid1` module",
        "[storage] activates volume groups with lvm, which this image does not have (/sbin/lvm): add `lvm2` to the recipe's [userland] packages",
        "has no device-mapper (enable CONFIG_BLK_DEV_DM)",
        "node.toml:",
    ] {
        assert!(err.contains(want), "no `{want}` in\n{err}");
    }
    assert!(!p.root().join("out/test").exists());
}
