//! Unit tests of the storage boot steps.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;
use crate::config::storage::Activate;
use std::collections::BTreeSet;

#[test]
fn dm_names_split_into_vg_and_lv() {
    assert_eq!(
        split_dm_name("vg0-lun0"),
        Some(("vg0".into(), "lun0".into()))
    );
    assert_eq!(
        split_dm_name("vg0-lv--drbd0"),
        Some(("vg0".into(), "lv-drbd0".into()))
    );
    assert_eq!(
        split_dm_name("my--vg-a--b"),
        Some(("my-vg".into(), "a-b".into()))
    );
    assert_eq!(split_dm_name("vg0-lun0-real"), None);
    assert_eq!(
        split_dm_name("sanforge-root"),
        Some(("sanforge".into(), "root".into()))
    );
}

#[test]
fn aptpl_files_become_metadata_lines() {
    let text = "PR_REG_START: 0\ninitiator_fabric=iSCSI\ninitiator_node=iqn.2026-11.org.example:host\n\
                initiator_sid=0x23d000000\nsa_res_key=1311768467463790320\nres_holder=1\nres_type=5\n\
                res_scope=0\nres_all_tg_pt=0\nmapped_lun=0\ntarget_fabric=iSCSI\n\
                target_node=iqn.2026-11.org.example:t\ntpgt=1\nport_rtpi=1\ntarget_lun=0\nPR_REG_END: 0\n\
                PR_REG_START: 1\ninitiator_fabric=iSCSI\ninitiator_node=iqn.2026-11.org.example:h2\n\
                sa_res_key=7\nres_holder=0\nres_all_tg_pt=0\nmapped_lun=0\ntarget_fabric=iSCSI\n\
                target_node=iqn.2026-11.org.example:t\ntpgt=1\nport_rtpi=1\ntarget_lun=0\nPR_REG_END: 1\n";
    let regs = parse_aptpl(text);
    assert_eq!(regs.len(), 2);
    assert!(regs[0].starts_with("initiator_fabric=iSCSI,initiator_node=iqn.2026-11.org.example:host,initiator_sid=0x23d000000,sa_res_key=1311768467463790320,res_holder=1,res_type=5"));
    assert!(regs[1].ends_with("tpgt=1,port_rtpi=1,target_lun=0"));
    assert!(parse_aptpl("No Registrations or Reservations").is_empty());
    assert_eq!(
        parse_alua_state("tg_pt_gp_id=0\nalua_access_state=0x02\nalua_access_status=0x01\n"),
        Some(2)
    );
}

#[test]
fn lvm_conf_works_without_udev_and_rejects_what_it_is_told() {
    let s = Storage {
        lvm_reject: vec!["/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part2".into()],
        ..Storage::default()
    };
    let c = render_lvm_conf(&s);
    for l in [
        "obtain_device_list_from_udev = 0",
        "udev_sync = 0",
        "udev_rules = 0",
        "scan_lvs = 0",
        "global_filter = [ \"r|^/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part2$|\" ]",
    ] {
        assert!(c.contains(l), "{l} not in\n{c}");
    }
    assert!(!render_lvm_conf(&Storage::default()).contains("global_filter"));
}

#[test]
fn lvm_conf_gives_a_system_id_only_with_a_vg_the_cluster_activates() {
    use crate::config::storage::VolumeGroup;
    let vg = |activate| VolumeGroup {
        vg: "vgha".into(),
        activate,
    };
    let boot = Storage {
        lvm: vec![vg(Activate::Boot)],
        ..Storage::default()
    };
    assert!(!render_lvm_conf(&boot).contains("system_id_source"));
    let ha = Storage {
        lvm: vec![vg(Activate::Boot), vg(Activate::Ha)],
        ..Storage::default()
    };
    let c = render_lvm_conf(&ha);
    let global = c.split("global {").nth(1).and_then(|g| g.split('}').next());
    assert!(
        global.is_some_and(|g| g.contains("\tsystem_id_source = \"uname\"\n")),
        "{c}"
    );
}

#[test]
fn file_systems_by_magic() {
    let mut h = vec![0u8; 4096];
    assert_eq!(detect_fstype(&h), None);
    h[1080] = 0x53;
    h[1081] = 0xef;
    assert_eq!(detect_fstype(&h), Some("ext4"));
    let mut x = vec![0u8; 512];
    x[..4].copy_from_slice(b"XFSB");
    assert_eq!(detect_fstype(&x), Some("xfs"));
}

#[test]
fn scst_devices_that_are_absent_leave_with_their_luns() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scst/alua_node1.conf"
    ))
    .unwrap();
    let conf = crate::scsi::scst::parse(&text).unwrap();
    let absent: BTreeSet<String> = ["SSD-RAID6-2".to_string()].into();
    let c = without_devices(&conf, &absent);
    let devices: Vec<&str> = c
        .handlers
        .iter()
        .flat_map(|h| h.devices.iter().map(|d| d.name.as_str()))
        .collect();
    assert!(devices.contains(&"SSD-RAID6-1"), "{devices:?}");
    assert!(!devices.contains(&"SSD-RAID6-2"), "{devices:?}");
    for d in &c.drivers {
        for t in &d.targets {
            assert!(t.luns.iter().all(|l| l.device != "SSD-RAID6-2"));
            assert!(t.luns.iter().any(|l| l.device == "SSD-RAID6-1"));
        }
    }
    for g in &c.device_groups {
        assert!(g.devices.iter().all(|d| d.name != "SSD-RAID6-2"));
    }
    // Nothing absent: the same config.
    assert_eq!(without_devices(&conf, &BTreeSet::new()), conf);
}

/// An SCST device created inactive (what `sanforge cluster render` writes for a device
/// on DRBD or on an LV of a VG the cluster activates) is not absent when its file is
/// missing at boot: SCST opens it only when the cluster activates it. An active device
/// whose file is missing is.
#[test]
fn scst_devices_created_inactive_are_left_to_the_cluster() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("dev")).unwrap();
    std::fs::write(t.path().join("dev/present"), b"").unwrap();
    let conf = crate::scsi::scst::parse(
        "HANDLER vdisk_blockio {\n\
         \tDEVICE lv {\n\t\tfilename /dev/vgha/lun0\n\t\tactive 0\n\t}\n\
         \tDEVICE gone {\n\t\tfilename /dev/md/gone\n\t}\n\
         \tDEVICE off {\n\t\tfilename /dev/md/off\n\t\tactive 1\n\t}\n\
         \tDEVICE here {\n\t\tfilename /dev/present\n\t}\n\
         }\n",
    )
    .unwrap();
    let mut sys = crate::sys::FakeSys::new(t.path());
    let absent: Vec<String> = absent_scst(&mut sys, &conf)
        .into_iter()
        .map(|a| a.backstore)
        .collect();
    assert_eq!(absent, ["gone", "off"]);
}
