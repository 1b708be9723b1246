#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
use super::*;
use crate::config::node::NodeConfig;
use crate::init::Logger;
use crate::sys::FakeSys;
use std::os::unix::fs::symlink;

const REL: &str = "6.1.0-sanforge";
const EXCERPT: &str = include_str!("../../tests/fixtures/hardware/modules.alias");
const DEP: &str = "\
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko: kernel/drivers/ptp/ptp.ko
kernel/drivers/ptp/ptp.ko:
kernel/drivers/scsi/qla2xxx/qla2xxx.ko: kernel/drivers/scsi/scsi_transport_fc.ko
kernel/drivers/scsi/scsi_transport_fc.ko:
extra/qla2xxx_scst.ko: kernel/drivers/scsi/scsi_transport_fc.ko
kernel/drivers/watchdog/i6300esb.ko:
kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko
kernel/drivers/nvme/host/nvme-core.ko:
";
const NODE: &str = "hostname = \"n\"\n[modules]\nblacklist = [\"qla2xxx\"]\n\
    params = { qla2xxx_scst = \"qlini_mode=disabled\", e1000e = \"IntMode=1\" }\n";

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A PCI device directory; `driver` makes the driver directory and the link.
fn pci(root: &Path, slot: &str, vd: (&str, &str), class: &str, alias: &str, driver: Option<&str>) {
    let d = format!("sys/bus/pci/devices/{slot}");
    put(root, &format!("{d}/vendor"), &format!("0x{}\n", vd.0));
    put(root, &format!("{d}/device"), &format!("0x{}\n", vd.1));
    put(root, &format!("{d}/class"), &format!("0x{class}\n"));
    put(root, &format!("{d}/modalias"), &format!("{alias}\n"));
    if let Some(drv) = driver {
        let dd = root.join("sys/bus/pci/drivers").join(drv);
        std::fs::create_dir_all(&dd).unwrap();
        symlink(format!("../../drivers/{drv}"), root.join(&d).join("driver")).unwrap();
    }
}

/// The machine of the tests: an 82574L NIC, a QLogic 2532 HBA, an NVMe drive and
/// an AHCI controller without drivers; the i6300ESB bound; a MegaRAID whose
/// module is not in the image.
fn machine() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let m = format!("lib/modules/{REL}");
    put(r, &format!("{m}/modules.dep"), DEP);
    put(
        r,
        &format!("{m}/modules.alias"),
        &format!("{EXCERPT}alias pci:v00001077d00002532sv*sd*bc*sc*i* qla2xxx_scst\n"),
    );
    put(
        r,
        &format!("{m}/modules.builtin.modinfo"),
        "ahci.alias=pci:v*d*sv*sd*bc01sc06i01*\0ahci.license=GPL\0",
    );
    put(
        r,
        &format!("{m}/modules.builtin"),
        "kernel/drivers/ata/ahci.ko\n",
    );
    pci(
        r,
        "0000:00:02.0",
        ("8086", "10d3"),
        "020000",
        "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00",
        None,
    );
    pci(
        r,
        "0000:00:03.0",
        ("1077", "2532"),
        "0c0400",
        "pci:v00001077d00002532sv00001077sd0000015Dbc0Csc04i00",
        None,
    );
    pci(
        r,
        "0000:00:04.0",
        ("144d", "a808"),
        "010802",
        "pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02",
        None,
    );
    pci(
        r,
        "0000:00:05.0",
        ("8086", "25ab"),
        "088000",
        "pci:v00008086d000025ABsv00001AF4sd00001100bc08sc80i00",
        Some("i6300ESB timer"),
    );
    pci(
        r,
        "0000:00:06.0",
        ("8086", "2922"),
        "010601",
        "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
        None,
    );
    pci(
        r,
        "0000:00:07.0",
        ("1000", "005d"),
        "010400",
        "pci:v00001000d0000005Dsv000015D9sd00000809bc01sc04i00",
        None,
    );
    // A device of another bus, bound: nothing to do.
    put(
        r,
        "sys/bus/virtio/devices/virtio0/modalias",
        "virtio:d00000001v00001AF4\n",
    );
    std::fs::create_dir_all(r.join("sys/bus/virtio/drivers/virtio_net")).unwrap();
    symlink(
        "../../drivers/virtio_net",
        r.join("sys/bus/virtio/devices/virtio0/driver"),
    )
    .unwrap();
    t
}

fn init_for<'a>(sys: &'a mut FakeSys) -> Init<'a> {
    sys.release = Some(REL.into());
    let mut init = Init::new(sys, Logger::capture());
    init.node = Some(NodeConfig::parse(Path::new("node.toml"), NODE).unwrap());
    init
}

#[test]
fn coldplug_loads_the_modules_of_unbound_devices_in_dep_order() {
    let t = machine();
    let mut sys = FakeSys::new(t.path());
    let mut init = init_for(&mut sys);
    coldplug(&mut init).unwrap();
    let lines = init.log.lines().to_vec();
    let outcomes = init.hw.modules.clone();
    drop(init);
    let dir = format!("/lib/modules/{REL}");
    let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
    assert_eq!(
        ops,
        [
            format!("finit_module {dir}/kernel/drivers/ptp/ptp.ko \"\""),
            format!("finit_module {dir}/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko \"IntMode=1\""),
            format!("finit_module {dir}/kernel/drivers/scsi/scsi_transport_fc.ko \"\""),
            format!("finit_module {dir}/extra/qla2xxx_scst.ko \"qlini_mode=disabled\""),
            format!("finit_module {dir}/kernel/drivers/nvme/host/nvme-core.ko \"\""),
            format!("finit_module {dir}/kernel/drivers/nvme/host/nvme.ko \"\""),
        ]
    );
    let result = |m: &str| {
        outcomes
            .iter()
            .find(|o| o.module == m)
            .map(|o| (o.result.clone(), o.devices.clone()))
            .unwrap_or_else(|| panic!("no {m} in {outcomes:?}"))
    };
    assert_eq!(result("qla2xxx").0, "blacklisted");
    assert_eq!(result("qla2xxx").1, ["pci 0000:00:03.0"]);
    assert_eq!(result("qla2xxx_scst").0, "loaded");
    assert_eq!(result("ahci").0, "built in");
    assert_eq!(result("megaraid_sas").0, "not in the image");
    assert_eq!(result("nvme_core"), ("loaded".into(), vec![]));
    assert!(!outcomes
        .iter()
        .any(|o| o.module == "i6300esb" || o.module == "virtio_net"));
    assert!(
        lines.contains(&"coldplug: qla2xxx blacklisted (for pci 0000:00:03.0)".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"coldplug: 7 devices with a modalias, 6 modules loaded".to_string()),
        "{lines:?}"
    );
}

#[test]
fn coldplug_passes_stop_when_nothing_new_loads_and_failures_are_reported() {
    let t = machine();
    let mut sys = FakeSys::new(t.path());
    sys.fail.push((
        format!("finit_module /lib/modules/{REL}/kernel/drivers/nvme/host/nvme.ko"),
        libc::ENODEV,
    ));
    sys.fail.push((
        format!("finit_module /lib/modules/{REL}/kernel/drivers/ptp"),
        libc::EEXIST,
    ));
    let mut init = init_for(&mut sys);
    let e = coldplug(&mut init).unwrap_err();
    assert_eq!(e.to_string(), "1 device modules not loaded");
    let nvme = init
        .hw
        .modules
        .iter()
        .find(|o| o.module == "nvme")
        .unwrap()
        .clone();
    let ptp = init
        .hw
        .modules
        .iter()
        .find(|o| o.module == "ptp")
        .unwrap()
        .clone();
    drop(init);
    assert!(
        nvme.result.contains("cannot load module") && nvme.result.contains("nvme.ko"),
        "{nvme:?}"
    );
    assert_eq!(ptp.result, "already loaded");
    // Three passes over the same unbound devices load each module once.
    let n = sys
        .ops
        .iter()
        .filter(|o| o.to_string().starts_with("finit_module"))
        .count();
    assert_eq!(n, 6);
}

#[test]
fn coldplug_without_modules_alias_says_so() {
    let t = machine();
    std::fs::remove_file(t.path().join(format!("lib/modules/{REL}/modules.alias"))).unwrap();
    std::fs::remove_file(
        t.path()
            .join(format!("lib/modules/{REL}/modules.builtin.modinfo")),
    )
    .unwrap();
    let mut sys = FakeSys::new(t.path());
    let mut init = init_for(&mut sys);
    coldplug(&mut init).unwrap();
    assert!(
        init.log.lines()[0].starts_with("coldplug: no aliases in /lib/modules/"),
        "{:?}",
        init.log.lines()
    );
    drop(init);
    assert!(sys.ops.is_empty());
}

#[test]
fn pci_slots_of_sysfs_paths() {
    assert_eq!(
        pci_slot_of(Path::new(
            "/sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.1/net/eth1"
        ))
        .as_deref(),
        Some("0000:02:00.1")
    );
    assert_eq!(
        pci_slot_of(Path::new("/sys/devices/virtual/net/bond0")),
        None
    );
}

#[test]
fn report_from_a_fake_machine() {
    let t = machine();
    let r = t.path();
    // The NIC the e1000e drives, with link; the disk on the SAS HBA with udev's names.
    pci(
        r,
        "0000:00:02.0",
        ("8086", "10d3"),
        "020000",
        "x",
        Some("e1000e"),
    );
    let nic = r.join("sys/class/net/eth0");
    std::fs::create_dir_all(&nic).unwrap();
    symlink(
        r.join("sys/bus/pci/devices/0000:00:02.0"),
        nic.join("device"),
    )
    .unwrap();
    put(r, "sys/class/net/eth0/address", "00:1b:21:aa:bb:cc\n");
    put(r, "sys/class/net/eth0/operstate", "up\n");
    put(r, "sys/class/net/eth0/carrier", "1\n");
    put(r, "sys/class/net/eth0/speed", "10000\n");
    std::fs::create_dir_all(r.join("sys/class/net/lo")).unwrap();
    put(r, "sys/class/block/sda/size", "3907029168\n");
    put(r, "sys/class/block/sda/device/vendor", "SEAGATE \n");
    put(r, "sys/class/block/sda/device/model", "ST2000NM0045    \n");
    put(r, "sys/class/block/sda1/partition", "1\n");
    std::fs::create_dir_all(r.join("sys/class/block/sda1/device")).unwrap();
    put(r, "sys/class/block/loop0/size", "0\n");
    put(r, "dev/sda", "");
    put(r, "dev/sda1", "");
    std::fs::create_dir_all(r.join("dev/disk/by-id")).unwrap();
    std::fs::create_dir_all(r.join("dev/disk/by-path")).unwrap();
    symlink("../../sda", r.join("dev/disk/by-id/scsi-35000c500a1b2c3d4")).unwrap();
    symlink("../../sda", r.join("dev/disk/by-id/wwn-0x5000c500a1b2c3d4")).unwrap();
    symlink(
        "../../sda1",
        r.join("dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part1"),
    )
    .unwrap();
    symlink(
        "../../sda",
        r.join("dev/disk/by-path/pci-0000:00:07.0-sas-phy0-lun-0"),
    )
    .unwrap();
    put(r, "lib/firmware/ql2500_fw.bin", "fw");
    put(
        r,
        "dev/kmsg",
        "6,700,5140900,-;qla2xxx [0000:00:03.0]-00fb:1: QLogic QLE2562 - PCI-Express Dual Channel 8Gb Fibre Channel HBA.\n\
         6,701,5140901,-;qla2xxx [0000:00:03.0]-0082:1: firmware ql2500_fw.bin loaded\n \
         SUBSYSTEM=pci\n\
         4,702,5140902,-;megaraid_sas 0000:00:07.0: Direct firmware load for megaraid/fw.bin failed with error -2\n\
         6,703,5140903,-;random: crng init done\n\
         12,704,5140904,-;sanforge-init:   fw   ql2500_fw.bin loaded\n",
    );
    let mut sys = FakeSys::new(r);
    sys.release = Some(REL.into());
    let index = ModuleIndex::read(&mut sys).unwrap();
    let rep = report(&mut sys, Some(&index), &["qla2xxx".into()]);
    assert_eq!(rep.pci.len(), 6);
    let p = |slot: &str| rep.pci.iter().find(|p| p.slot == slot).unwrap();
    assert_eq!(p("0000:00:02.0").driver.as_deref(), Some("e1000e"));
    assert_eq!(
        (
            p("0000:00:02.0").id.as_str(),
            p("0000:00:02.0").class.as_str()
        ),
        ("8086:10d3", "020000")
    );
    assert_eq!(
        p("0000:00:03.0").candidates,
        [
            Candidate {
                module: "qla2xxx".into(),
                verdict: Verdict::Blacklisted,
                via: None,
            },
            Candidate {
                module: "qla2xxx_scst".into(),
                verdict: Verdict::Load,
                via: None,
            },
        ]
    );
    assert_eq!(rep.firmware.loaded, ["ql2500_fw.bin"]);
    assert_eq!(rep.firmware.failed, ["megaraid/fw.bin"]);
    assert_eq!(rep.firmware.lines.len(), 2);
    assert_eq!(
        rep.nics,
        [Nic {
            name: "eth0".into(),
            mac: "00:1b:21:aa:bb:cc".into(),
            driver: Some("e1000e".into()),
            pci: Some("0000:00:02.0".into()),
            state: "up".into(),
            carrier: Some(true),
            speed_mbps: Some(10000),
        }]
    );
    assert_eq!(
        rep.disks,
        [Disk {
            name: "sda".into(),
            size_bytes: 3907029168 * 512,
            model: Some("SEAGATE ST2000NM0045".into()),
            serial: None,
            by_id: vec![
                "scsi-35000c500a1b2c3d4".into(),
                "wwn-0x5000c500a1b2c3d4".into()
            ],
            by_path: vec!["pci-0000:00:07.0-sas-phy0-lun-0".into()],
        }]
    );
    let lines = render_report(&rep);
    assert_eq!(lines[0], "hardware: 6 PCI devices, 1 NIC, 1 disk");
    assert!(lines.contains(&"  pci  0000:00:03.0 1077:2532 class 0c0400 no driver (candidates: qla2xxx blacklisted, qla2xxx_scst)".to_string()), "{lines:#?}");
    assert!(lines.contains(&"  pci  0000:00:07.0 1000:005d class 010400 no driver (candidates: megaraid_sas not in the image)".to_string()), "{lines:#?}");
    assert!(
        lines.contains(
            &"  pci  0000:00:06.0 8086:2922 class 010601 no driver (candidates: ahci built in)"
                .to_string()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"  nic  eth0 00:1b:21:aa:bb:cc e1000e link up 10000Mb/s pci 0000:00:02.0".to_string()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(
            &"  disk sda 1.8 TiB SEAGATE ST2000NM0045 by-id/wwn-0x5000c500a1b2c3d4".to_string()
        ),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"  fw   megaraid/fw.bin FAILED (not found or refused)".to_string()),
        "{lines:#?}"
    );
}

#[test]
fn report_step_writes_the_json() {
    let t = machine();
    let mut sys = FakeSys::new(t.path());
    let mut init = init_for(&mut sys);
    print_report(&mut init).unwrap();
    assert_eq!(
        init.log.lines().last().unwrap(),
        "hardware report written to /run/sanforge/hardware.json"
    );
    drop(init);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(t.path().join("run/sanforge/hardware.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["pci"].as_array().unwrap().len(), 6);
    assert_eq!(json["pci"][3]["driver"], "i6300ESB timer");
    // No /dev/kmsg in this tree: the report says so instead of guessing.
    assert!(json["firmware"]["lines"][0]
        .as_str()
        .unwrap()
        .starts_with("kernel log not readable: cannot read /dev/kmsg"));
}

#[test]
fn sizes_are_human() {
    assert_eq!(human_size(512), "512 B");
    assert_eq!(human_size(64 << 20), "64.0 MiB");
    assert_eq!(human_size(3907029168 * 512), "1.8 TiB");
}
