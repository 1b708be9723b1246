use super::*;

#[test]
fn names_and_paths() {
    assert!(md_name_ok("data"));
    assert!(!md_name_ok("da/ta"));
    assert!(vg_name_ok("vg-0"));
    assert!(!vg_name_ok("-vg"));
    assert!(md_uuid_ok("a1b2c3d4:e5f6a7b8:c9d0e1f2:a3b4c5d6"));
    assert!(!md_uuid_ok("a1b2c3d4"));
    assert_eq!(dev_path_error("/dev/disk/by-id/wwn-*", true), None);
    assert!(dev_path_error("/dev/disk/*/x", true).is_some());
    assert!(dev_path_error("/dev/sd*", false).is_some());
    assert!(dev_path_error("sda", true).is_some());
    assert!(dev_path_error("/dev/../etc/x", true).is_some());
}

#[test]
fn vg_of_device_paths() {
    let s = Storage {
        lvm: vec![
            VolumeGroup {
                vg: "vg1".into(),
                activate: Activate::Ha,
            },
            VolumeGroup {
                vg: "my-vg".into(),
                activate: Activate::Boot,
            },
        ],
        ..Storage::default()
    };
    assert_eq!(s.vg_of_path("/dev/vg1/lun0").unwrap().vg, "vg1");
    assert_eq!(s.vg_of_path("/dev/mapper/vg1-lun0").unwrap().vg, "vg1");
    assert_eq!(s.vg_of_path("/dev/mapper/my--vg-lv").unwrap().vg, "my-vg");
    assert!(s.vg_of_path("/dev/vg10/lun0").is_none());
    assert!(s.vg_of_path("/dev/md/data").is_none());
}

// ---- The node config's [storage], validated as the builder and the init do ----

use crate::config::node::NodeConfig;
use std::path::Path;

const GOOD: &str = r#"hostname = "n1"

[storage]
order = ["md", "lvm"]
state = { device = "/dev/disk/by-partlabel/pr-state", fstype = "ext4" }

[[storage.md]]
name = "data"
level = "raid1"
devices = ["/dev/disk/by-id/virtio-d0", "/dev/disk/by-id/virtio-d1"]

[[storage.lvm]]
vg = "vg0"

[[storage.lvm]]
vg = "vg-drbd"
activate = "ha"

[[lio.backstores]]
name = "lun0"
kind = "block"
path = "/dev/vg0/lun0"

[[lio.backstores]]
name = "raw"
kind = "block"
path = "/dev/md/data"
"#;

fn errors(text: &str) -> Vec<(usize, String)> {
    match NodeConfig::parse(Path::new("n.toml"), text) {
        Ok(_) => Vec::new(),
        Err(e) => std::iter::once(&e)
            .chain(e.more.iter())
            .map(|e| (e.line, e.message.clone()))
            .collect(),
    }
}

/// `text` has exactly one error, at `line`, saying `what`.
fn one_error(text: &str, line: usize, what: &str) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].0, line, "{e:#?}");
    assert!(e[0].1.contains(what), "`{what}` not in {e:#?}");
}

#[test]
fn a_good_storage_section_is_valid_and_keeps_its_order() {
    let n = NodeConfig::parse(Path::new("n.toml"), GOOD).unwrap();
    assert_eq!(n.storage.layers(), vec![Layer::Md, Layer::Lvm]);
    assert_eq!(n.storage.md[0].devices.len(), 2);
    assert_eq!(n.storage.lvm[1].activate, Activate::Ha);
    assert_eq!(
        n.storage.state.place(),
        StateWhere::Device("/dev/disk/by-partlabel/pr-state")
    );
    let lvm_first = GOOD.replace("order = [\"md\", \"lvm\"]", "order = [\"lvm\", \"md\"]");
    let n = NodeConfig::parse(Path::new("n.toml"), &lvm_first).unwrap();
    assert_eq!(n.storage.layers(), vec![Layer::Lvm, Layer::Md]);
    // No [storage]: nothing assembled, state on the state partition.
    let n = NodeConfig::parse(Path::new("n.toml"), "hostname = \"n1\"\n").unwrap();
    assert!(!n.storage.uses_md() && !n.storage.uses_lvm());
    assert_eq!(n.storage.state.place(), StateWhere::Partition);
}

#[test]
fn bad_md_entries_are_errors_at_the_value() {
    one_error(
        &GOOD.replace("name = \"data\"", "name = \"da/ta\""),
        8,
        "md array name `da/ta`: expected up to 32 letters, digits",
    );
    one_error(
        &GOOD.replace("level = \"raid1\"", "level = \"raid7\""),
        9,
        "md level `raid7` of `data`: expected one of raid0, raid1, raid4, raid5, raid6, raid10",
    );
    one_error(
        &GOOD.replace("/dev/disk/by-id/virtio-d1", "sdb"),
        10,
        "md device `sdb` of `data`: expected a path under /dev/",
    );
    one_error(
        &GOOD.replace("/dev/disk/by-id/virtio-d1", "/dev/disk/*/d1"),
        10,
        "wildcards are allowed in the last path component only",
    );
    one_error(
        &GOOD.replace(
            "devices = [\"/dev/disk/by-id/virtio-d0\", \"/dev/disk/by-id/virtio-d1\"]",
            "devices = []",
        ),
        7,
        "md array `data`: expected `devices` (its members) or a `uuid`",
    );
    one_error(
        &GOOD.replace("level = \"raid1\"", "uuid = \"a1b2c3d4\""),
        9,
        "md uuid `a1b2c3d4` of `data`: expected 32 hex digits",
    );
    let two = format!(
        "{GOOD}\n[[storage.md]]\nname = \"data\"\ndevices = [\"/dev/disk/by-id/virtio-d0\"]\n"
    );
    let e = errors(&two);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].1.contains("md array `data` is defined twice"),
        "{e:#?}"
    );
    assert!(
        e[1].1
            .contains("md device /dev/disk/by-id/virtio-d0 is listed for `data` and `data`"),
        "{e:#?}"
    );
}

#[test]
fn bad_lvm_and_order_entries_are_errors_at_the_value() {
    one_error(
        &GOOD.replace("vg = \"vg0\"", "vg = \"-vg\""),
        13,
        "volume group name `-vg`: expected letters, digits",
    );
    one_error(
        &GOOD.replace("vg = \"vg-drbd\"", "vg = \"vg0\""),
        16,
        "volume group `vg0` is listed twice",
    );
    one_error(
        &GOOD.replace("order = [\"md\", \"lvm\"]", "order = [\"md\"]"),
        4,
        "storage order does not name `lvm`, which [storage] uses",
    );
    one_error(
        &GOOD.replace(
            "order = [\"md\", \"lvm\"]",
            "order = [\"md\", \"lvm\", \"md\"]",
        ),
        4,
        "storage order names `md` twice",
    );
    // An unknown layer or key is serde's error, at the value.
    let e = errors(&GOOD.replace("order = [\"md\", \"lvm\"]", "order = [\"md\", \"zfs\"]"));
    assert_eq!(e[0].0, 4, "{e:#?}");
    assert!(e[0].1.contains("zfs"), "{e:#?}");
    let e = errors(&GOOD.replace("vg = \"vg0\"", "vg = \"vg0\"\nactivate = \"later\""));
    assert!(
        e[0].1.contains("later") && e[0].1.contains("boot"),
        "{e:#?}"
    );
    let e = errors(&GOOD.replace("[storage]\n", "[storage]\nraid = true\n"));
    assert!(e[0].1.contains("raid"), "{e:#?}");
}

#[test]
fn a_lun_on_a_vg_the_cluster_activates_is_an_error() {
    let t = GOOD.replace("path = \"/dev/vg0/lun0\"", "path = \"/dev/vg-drbd/lun0\"");
    one_error(
        &t,
        22,
        "backstore `lun0` is on /dev/vg-drbd/lun0, in volume group `vg-drbd`, which the cluster activates on promote",
    );
    let t = GOOD.replace(
        "path = \"/dev/vg0/lun0\"",
        "path = \"/dev/mapper/vg--drbd-lun0\"",
    );
    one_error(&t, 22, "in volume group `vg-drbd`");
}

#[test]
fn bad_mdadm_conf_and_scan_are_errors() {
    let scan = "hostname = \"n1\"\n[storage]\nassemble = \"scan\"\nmdadm-conf = \"\"\"\nDEVICE /dev/disk/by-id/*\nMAILADDR root\n\"\"\"\n";
    one_error(scan, 4, "mdadm-conf has no ARRAY line");
    let bad = scan.replace(
        "MAILADDR root",
        "ARRAY /dev/md/data UUID=a1b2c3d4:e5f6a7b8:c9d0e1f2:a3b4c5d6\nRAID5 /dev/md/x",
    );
    one_error(
        &bad,
        4,
        "mdadm-conf line 3: `RAID5` is not an mdadm.conf keyword",
    );
    let ok = scan.replace(
        "MAILADDR root",
        "ARRAY /dev/md/data UUID=a1b2c3d4:e5f6a7b8:c9d0e1f2:a3b4c5d6\n  devices=/dev/vda",
    );
    assert_eq!(errors(&ok), Vec::new());
    let both = GOOD.replace("[storage]\n", "[storage]\nassemble = \"scan\"\n");
    let e = errors(&both);
    assert!(
        e.iter()
            .any(|(l, m)| *l == 4
                && m.contains("assemble = \"scan\" takes the arrays from mdadm.conf")),
        "{e:#?}"
    );
}

#[test]
fn bad_state_and_timeouts_are_errors() {
    one_error(
        &GOOD.replace(
            "device = \"/dev/disk/by-partlabel/pr-state\"",
            "device = \"config-partition\"",
        ),
        5,
        "state device `config-partition`: the config partition is FAT",
    );
    one_error(
        &GOOD.replace("/dev/disk/by-partlabel/pr-state", "/var/lib/state"),
        5,
        "state device `/var/lib/state`: expected `state-partition`, `volatile` or a block device",
    );
    one_error(
        &GOOD.replace("fstype = \"ext4\"", "fstype = \"vfat\""),
        5,
        "state fstype `vfat`: expected one of ext4, xfs",
    );
    one_error(
        &GOOD.replace(
            "state = { device = \"/dev/disk/by-partlabel/pr-state\", fstype = \"ext4\" }",
            "state = { device = \"volatile\", fstype = \"ext4\" }",
        ),
        5,
        "state fstype is for a `device` under /dev",
    );
    one_error(
        &GOOD.replace("[storage]\n", "[storage]\ndevice-timeout = \"1h\"\n"),
        4,
        "device-timeout 3600s: expected at most 10m",
    );
    one_error(
        &GOOD.replace("[storage]\n", "[storage]\nlvm-reject = [\"/dev/sd*\"]\n"),
        4,
        "lvm-reject `/dev/sd*`: expected a device path without wildcards",
    );
}
