use super::*;
use crate::util::cmd::Cmd;

fn nic(s: &str) -> NicSpec {
    s.parse().unwrap()
}

fn hw(nics: &[&str]) -> Hardware {
    Hardware {
        nics: nics.iter().map(|n| nic(n)).collect(),
        ..Hardware::default()
    }
}

const USER: &str = "user,id=n0,restrict=on";

#[test]
fn nic_specs_parse_and_bad_ones_name_what_is_accepted() {
    assert_eq!(
        nic("e1000e"),
        NicSpec {
            model: NicModel::E1000e,
            net: NicNet::User,
            mac: None
        }
    );
    assert_eq!(
        nic("vmxnet3,net=listen:4000,mac=52:54:00:AA:00:01"),
        NicSpec {
            model: NicModel::Vmxnet3,
            net: NicNet::Listen(4000),
            mac: Some("52:54:00:aa:00:01".into())
        }
    );
    assert_eq!(nic("virtio,net=connect:4000").net, NicNet::Connect(4000));
    let err = |s: &str| s.parse::<NicSpec>().unwrap_err();
    assert_eq!(
        err("e1000"),
        "NIC model `e1000`: expected one of virtio, e1000e, vmxnet3"
    );
    assert_eq!(
        err("e1000e,net=tap"),
        "net=`tap`: expected user, listen:PORT or connect:PORT"
    );
    assert_eq!(
        err("e1000e,net=listen:0"),
        "net=listen `0`: expected a TCP port from 1 to 65535"
    );
    assert!(err("e1000e,mac=01:00:5e:00:00:01").contains("expected a unicast MAC"));
    assert!(err("e1000e,mac=52:54:00:00:02").contains("expected a unicast MAC"));
    assert!(
        err("e1000e,speed=10").contains("expected net=user|listen:PORT|connect:PORT or mac=MAC")
    );
}

#[test]
fn disk_specs_parse_file_then_controller() {
    let d = |s: &str| s.parse::<DiskSpec>().unwrap();
    assert_eq!(
        d("a.img"),
        DiskSpec {
            bus: DiskBus::Virtio,
            file: "a.img".into()
        }
    );
    assert_eq!(d("/x/a.img,megasas-gen2").bus, DiskBus::MegasasGen2);
    assert_eq!(d("a.img,mptsas1068").bus, DiskBus::Mptsas1068);
    assert_eq!(d("a.img,ahci").bus, DiskBus::Ahci);
    let c = d("a,b.img,nvme");
    assert_eq!((c.bus, c.file), (DiskBus::Nvme, PathBuf::from("a,b.img")));
    assert_eq!(
        "a.img,scsi".parse::<DiskSpec>().unwrap_err(),
        "controller `scsi` (after the last comma): expected one of virtio, ahci, nvme, \
         megasas-gen2, mptsas1068 (a file name with a comma: add its controller, e.g. \
         `a.img,scsi,virtio`)"
    );
    assert!(",nvme"
        .parse::<DiskSpec>()
        .unwrap_err()
        .contains("expected FILE[,CONTROLLER]"));
    assert_eq!(
        "2222:22".parse::<Forward>().unwrap(),
        Forward {
            host: 2222,
            guest: 22
        }
    );
    assert!("2222"
        .parse::<Forward>()
        .unwrap_err()
        .contains("HOST_PORT:GUEST_PORT"));
}

#[test]
fn one_nic_is_wired_straight_to_its_network() {
    assert_eq!(
        nic_args(&Hardware::default(), USER).unwrap(),
        [
            "-netdev",
            USER,
            "-device",
            "virtio-net-pci,netdev=n0,id=nic0,mac=52:54:00:00:02:0f"
        ]
    );
}

#[test]
fn nics_on_one_network_share_a_hub() {
    let a = nic_args(
        &hw(&[
            "e1000e",
            "e1000e",
            "virtio,net=listen:4100,mac=52:54:00:00:0a:01",
        ]),
        USER,
    )
    .unwrap();
    assert_eq!(
        a,
        [
            "-netdev",
            USER,
            "-netdev",
            "hubport,id=hub0up,hubid=0,netdev=n0",
            "-netdev",
            "hubport,id=hub0p0,hubid=0",
            "-device",
            "e1000e,netdev=hub0p0,id=nic0,mac=52:54:00:00:02:0f",
            "-netdev",
            "hubport,id=hub0p1,hubid=0",
            "-device",
            "e1000e,netdev=hub0p1,id=nic1,mac=52:54:00:00:02:10",
            "-netdev",
            "socket,id=l1,listen=127.0.0.1:4100",
            "-device",
            "virtio-net-pci,netdev=l1,id=nic2,mac=52:54:00:00:0a:01",
        ]
    );
}

#[test]
fn nic_conflicts_are_errors() {
    let e = nic_args(&hw(&["e1000e", "e1000e,mac=52:54:00:00:02:0f"]), USER)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--nic: nic0 and nic1 both have MAC 52:54:00:00:02:0f: give one of them another with mac="
    );
    let mut h = hw(&["e1000e,net=connect:4000"]);
    h.forwards.push(Forward {
        host: 2222,
        guest: 22,
    });
    assert!(nic_args(&h, USER)
        .unwrap_err()
        .to_string()
        .starts_with("--forward needs a NIC on the user network"));
}

fn disks(dir: &Path, specs: &[(&str, DiskBus)]) -> Hardware {
    Hardware {
        disks: specs
            .iter()
            .map(|(f, bus)| {
                let file = dir.join(f);
                if !file.exists() {
                    std::fs::write(&file, vec![0u8; 4096]).unwrap();
                }
                DiskSpec { bus: *bus, file }
            })
            .collect(),
        ..Hardware::default()
    }
}

#[test]
fn disks_hang_off_one_controller_per_kind_with_serials() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("q.qcow2"), b"QFI\xfb\0\0\0\x03").unwrap();
    let h = disks(
        t.path(),
        &[
            ("a.img", DiskBus::MegasasGen2),
            ("b.img", DiskBus::MegasasGen2),
            ("q.qcow2", DiskBus::Nvme),
            ("c.img", DiskBus::Ahci),
            ("d.img", DiskBus::Mptsas1068),
            ("e.img", DiskBus::Virtio),
        ],
    );
    let p = |f: &str| t.path().join(f).display().to_string();
    let want: Vec<String> = [
        "-device".into(),
        "megasas-gen2,id=megasas0".into(),
        "-drive".into(),
        format!("file={},if=none,id=disk0,format=raw", p("a.img")),
        "-device".into(),
        "scsi-hd,drive=disk0,bus=megasas0.0,serial=sanforge-d0".into(),
        "-drive".into(),
        format!("file={},if=none,id=disk1,format=raw", p("b.img")),
        "-device".into(),
        "scsi-hd,drive=disk1,bus=megasas0.0,serial=sanforge-d1".into(),
        "-drive".into(),
        format!("file={},if=none,id=disk2,format=qcow2", p("q.qcow2")),
        "-device".into(),
        "nvme,drive=disk2,serial=sanforge-d2".into(),
        "-device".into(),
        "ich9-ahci,id=sata0".into(),
        "-drive".into(),
        format!("file={},if=none,id=disk3,format=raw", p("c.img")),
        "-device".into(),
        "ide-hd,drive=disk3,bus=sata0.0,serial=sanforge-d3".into(),
        "-device".into(),
        "mptsas1068,id=mptsas0".into(),
        "-drive".into(),
        format!("file={},if=none,id=disk4,format=raw", p("d.img")),
        "-device".into(),
        "scsi-hd,drive=disk4,bus=mptsas0.0,serial=sanforge-d4".into(),
        "-drive".into(),
        format!("file={},if=none,id=disk5,format=raw", p("e.img")),
        "-device".into(),
        "virtio-blk-pci,drive=disk5,serial=sanforge-d5".into(),
    ]
    .to_vec();
    assert_eq!(disk_args(&h).unwrap(), want);
}

#[test]
fn bad_disks_are_errors_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let seven: Vec<String> = (0..7).map(|i| format!("s{i}.img")).collect();
    let specs: Vec<(&str, DiskBus)> = seven.iter().map(|f| (f.as_str(), DiskBus::Ahci)).collect();
    let e = disk_args(&disks(t.path(), &specs)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "--disk: an AHCI controller has 6 ports; {} is the 7th ahci disk",
            t.path().join("s6.img").display()
        )
    );
    let twice = disks(
        t.path(),
        &[("a.img", DiskBus::Nvme), ("a.img", DiskBus::Virtio)],
    );
    assert!(disk_args(&twice)
        .unwrap_err()
        .to_string()
        .ends_with("a.img is given twice (QEMU would open it twice)"));
    let missing = Hardware {
        disks: vec![DiskSpec {
            bus: DiskBus::Nvme,
            file: t.path().join("none.img"),
        }],
        ..Hardware::default()
    };
    assert!(disk_args(&missing)
        .unwrap_err()
        .to_string()
        .starts_with("--disk: cannot open "));
    let dir = Hardware {
        disks: vec![DiskSpec {
            bus: DiskBus::Nvme,
            file: t.path().to_path_buf(),
        }],
        ..Hardware::default()
    };
    assert!(disk_args(&dir)
        .unwrap_err()
        .to_string()
        .contains("is not a regular file"));
}

/// A fake output directory: what `check_out` and `cmdline` read.
fn out_dir(t: &Path) -> PathBuf {
    let out = t.join("storage-node");
    std::fs::create_dir_all(&out).unwrap();
    for f in ["vmlinuz", "initramfs.cpio.zst"] {
        std::fs::write(out.join(f), b"x").unwrap();
    }
    std::fs::write(
        out.join("manifest.json"),
        r#"{"kernel":{"cmdline":"console=ttyS0 panic=-1 quiet"}}"#,
    )
    .unwrap();
    out
}

fn opts(out: PathBuf, hw: Hardware) -> RunOptions {
    RunOptions {
        boot: BootMode::Direct,
        out,
        iscsi_port: 3260,
        memory_mib: 1024,
        accel: Accel::Tcg,
        until_ready: true,
        timeout: Duration::from_secs(1),
        extra_cmdline: vec!["sanforge.node=server".into()],
        echo: false,
        hw,
    }
}

fn argv(c: &Cmd) -> Vec<String> {
    c.get_args()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_server_command_line() {
    let t = tempfile::tempdir().unwrap();
    let out = out_dir(t.path());
    let mut h = disks(
        t.path(),
        &[("d0.img", DiskBus::MegasasGen2), ("d1.img", DiskBus::Nvme)],
    );
    h.machine = Some(Machine::Q35);
    h.nics = vec![nic("e1000e"), nic("e1000e")];
    h.forwards = vec![Forward {
        host: 7001,
        guest: 7000,
    }];
    let a = argv(&qemu_command(&opts(out.clone(), h), Accel::Tcg).unwrap());
    let user = "user,id=n0,restrict=on,net=192.0.2.0/24,host=192.0.2.2,\
                hostfwd=tcp:127.0.0.1:3260-:3260,hostfwd=tcp:127.0.0.1:7001-:7000";
    let has = |pair: [&str; 2]| a.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1]);
    assert!(has(["-machine", "q35"]), "{a:?}");
    assert!(has(["-netdev", user]), "{a:?}");
    assert!(has([
        "-append",
        "console=ttyS0 panic=-1 quiet sanforge.node=server"
    ]));
    assert!(has(["-device", "megasas-gen2,id=megasas0"]), "{a:?}");
    assert!(
        has(["-device", "nvme,drive=disk1,serial=sanforge-d1"]),
        "{a:?}"
    );
    // A direct kernel boot: the NICs without their PXE option ROMs.
    assert!(has([
        "-device",
        "e1000e,netdev=hub0p1,id=nic1,mac=52:54:00:00:02:10,romfile="
    ]));
    assert_eq!(a.iter().filter(|x| *x == "-machine").count(), 1);
    assert_eq!(a.last().map(String::as_str), Some("tcg"));

    // A PXE boot keeps the NICs' option ROMs: iPXE is what boots it.
    let mut pxe = opts(out.clone(), Hardware::default());
    pxe.boot = BootMode::Pxe;
    pxe.extra_cmdline.clear();
    let a = argv(&qemu_command(&pxe, Accel::Tcg).unwrap());
    assert!(
        a.contains(&"virtio-net-pci,netdev=n0,id=nic0,mac=52:54:00:00:02:0f".to_string()),
        "{a:?}"
    );

    // Without server options: the one virtio NIC of before, no -machine, no disk.
    let a = argv(&qemu_command(&opts(out.clone(), Hardware::default()), Accel::Tcg).unwrap());
    assert!(!a.iter().any(|x| x == "-machine" || x == "-drive"), "{a:?}");
    assert!(
        a.contains(&"virtio-net-pci,netdev=n0,id=nic0,mac=52:54:00:00:02:0f,romfile=".to_string())
    );

    // A host port forwarded twice.
    let h = Hardware {
        forwards: vec![Forward {
            host: 3260,
            guest: 22,
        }],
        ..Hardware::default()
    };
    assert_eq!(
        qemu_command(&opts(out, h), Accel::Tcg)
            .unwrap_err()
            .to_string(),
        "--forward: host port 3260 is forwarded twice (--iscsi-port is 3260)"
    );
}

#[test]
fn the_monitor_answer_drops_the_echo_and_the_prompt() {
    assert_eq!(monitor_answer("set_link nic0 off\r\n(qemu) "), "");
    assert_eq!(
        monitor_answer("info network\r\nhub 0\r\n \\ hub0p0: index=0\r\n(qemu) "),
        "hub 0\n \\ hub0p0: index=0\n"
    );
}
