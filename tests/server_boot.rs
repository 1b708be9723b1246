//! Server boot (issue #12, item 8): the default image on the hardware of a storage
//! server, under QEMU TCG, through `sanforge run`'s server options:
//!
//! ```text
//! sanforge run OUT --until-ready --machine q35 --nic e1000e --nic e1000e \
//!     --disk d0.img,megasas-gen2 --disk d1.img,megasas-gen2 --disk d2.img,nvme \
//!     --forward CTL:7000 --append sanforge.node=server
//! ```
//!
//! Both e1000e NICs sit on one QEMU hub with the user network (where the iSCSI port is
//! forwarded to the host) and are the slaves of the node's active-backup bond
//! (primary stor0, miimon 100). Checked: the hardware report names both NICs with
//! e1000e, the MegaRAID disks and the NVMe drive with their by-id names, and the md
//! RAID1 of the two MegaRAID disks (both members) with VG `vg0`; the LUN (a block
//! backstore on the LV `/dev/vg0/lun0` on that array, activated at boot — see
//! `common::server::server_storage`; a first boot of node `mkraid` makes the array,
//! VG and LV on the blank disks with the image's own mdadm and lvm) passes
//! `iscsi-inq` and the libiscsi families the end-to-end test runs; then, while the
//! host writes a verifiable pattern through the bond, `sanforge run --monitor
//! 'set_link nic0 off'` pulls the active NIC's cable: the bond fails over to stor1,
//! the writer sees no failed write (its iSCSI session survives), and after the cable
//! is back and the bond has returned to its primary every acknowledged block reads
//! back. Printed: boot to ready, and the write stream's stall at each switch.

mod common;

use common::iscsi::{self, Portal, Writer};
use common::server::{self, Vm, INITIATOR, TARGET};
use common::vm::{cunit_summary, show};
use sanforge::commands::run::disk_serial;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BLOCK: usize = 512;
const NBLOCKS: u64 = 4096;

/// The libiscsi families of tests/e2e.rs.
const FAMILIES: &[&str] = &[
    "SCSI.TestUnitReady",
    "SCSI.Inquiry",
    "SCSI.ReadCapacity10",
    "SCSI.ReadCapacity16",
    "SCSI.Read10",
    "SCSI.Write10",
    "SCSI.Read16",
    "SCSI.Write16",
];

/// The hardware report's lines (`sanforge-init:   nic …`, `…   disk …`) on the console.
fn report_lines<'a>(console: &'a str, kind: &str) -> Vec<&'a str> {
    let prefix = format!("sanforge-init:   {kind} ");
    console.lines().filter(|l| l.starts_with(&prefix)).collect()
}

/// The storage under the LUN in the guest: the md array is clean with both members
/// in sync (`/proc/mdstat`: `[UU]`) and they are the two MegaRAID disks; the LV is
/// active (a device-mapper device named VG-LV) and is what LIO's lun0 is on.
fn check_storage(vm: &Vm, layout: &server::StorageLayout) {
    let mdstat = vm.sh_ok("cat /proc/mdstat");
    let real = |p: &str| {
        vm.sh_ok(&format!("readlink -f {p}"))
            .trim()
            .trim_start_matches("/dev/")
            .to_string()
    };
    let md = real(&format!("/dev/md/{}", layout.md));
    let line = mdstat
        .lines()
        .find(|l| l.starts_with(&format!("{md} : active raid1 ")))
        .unwrap_or_else(|| panic!("no active raid1 {md} in /proc/mdstat:\n{mdstat}"));
    for m in &layout.members {
        let dev = real(m);
        assert!(
            dev.starts_with("sd") && line.contains(&format!(" {dev}[")),
            "{m} ({dev}) is not a member of {md}: {mdstat}"
        );
    }
    assert!(mdstat.contains("[2/2] [UU]"), "{md} is not clean: {mdstat}");
    // The LV: /dev/VG/LV (a link to, or like lvm makes without udev a node of, a
    // /dev/mapper device) is dm-N by its numbers, whose device-mapper name is VG-LV,
    // not suspended, on the array.
    let ls = vm.sh_ok(&format!("ls -lL {}", layout.device));
    let w: Vec<&str> = ls.split_whitespace().collect();
    let numbers = w
        .iter()
        .position(|x| x.ends_with(','))
        .and_then(|i| Some(format!("{}:{}", w[i].trim_end_matches(','), w.get(i + 1)?)))
        .unwrap_or_else(|| panic!("{} is not a block device: {ls}", layout.device));
    let dm = real(&format!("/sys/dev/block/{numbers}"))
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        dm.starts_with("dm-"),
        "{} ({numbers}) is {dm}",
        layout.device
    );
    let sys = vm.sh_ok(&format!(
        "cat /sys/block/{dm}/dm/name /sys/block/{dm}/dm/suspended; ls /sys/block/{dm}/slaves"
    ));
    let sys: Vec<&str> = sys.split_whitespace().collect();
    assert_eq!(
        sys,
        [
            format!("{}-{}", layout.vg, layout.lv).as_str(),
            "0",
            md.as_str()
        ],
        "{} ({dm}): dm name, suspended, slaves",
        layout.device
    );
    let lvs = vm.sh_ok(&format!(
        "lvm lvs --noheadings -o lv_name,lv_attr {}",
        layout.vg
    ));
    let attr = lvs
        .split_whitespace()
        .skip_while(|w| *w != layout.lv)
        .nth(1)
        .unwrap_or_default();
    assert_eq!(attr.chars().nth(4), Some('a'), "LV not active: {lvs}");
    // LIO's own view: `iBlock device: dm-0  UDEV PATH: /dev/vg0/lun0`.
    let info = vm.sh_ok("cat /sys/kernel/config/target/core/iblock_*/lun0/info");
    assert!(
        info.contains(&format!("iBlock device: {dm} ")) && info.contains(&layout.device),
        "LIO's lun0 is not on {} ({dm}): {info}",
        layout.device
    );
}

/// First boot (node `mkraid`, the two MegaRAID disks only): the image's own mdadm and
/// lvm make the RAID1, the VG and the LV on the blank disks; stopped once it says so.
/// Its wall time.
fn make_raid(out: &std::path::Path, disk_args: &[String]) -> Duration {
    let started = Instant::now();
    let mut args = vec!["--machine", "q35", "--append", "sanforge.node=mkraid"];
    for d in disk_args {
        args.extend(["--disk", d.as_str()]);
    }
    let (vm, mut child) = Vm::spawn(out, &args);
    let end = Instant::now() + Duration::from_secs(600);
    let console = loop {
        let c = vm.console();
        if c.contains("MKRAID RESULT=") || Instant::now() > end {
            break c;
        }
        if let Ok(Some(st)) = child.try_wait() {
            if !st.success() {
                panic!("mkraid boot failed ({st}):\n{}", vm.console());
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    drop(vm);
    let _ = child.wait();
    assert!(
        console.contains("MKRAID RESULT=ok"),
        "mkraid did not make the array:\n{console}"
    );
    started.elapsed()
}

/// The longest interval between two consecutive acknowledged writes that overlaps
/// `[from, to)`: the stall the writer saw around an event in that window (`None`
/// when no interval does).
fn stall(acked_at: &[Instant], from: Instant, to: Instant) -> Option<Duration> {
    acked_at
        .windows(2)
        .filter(|w| w[1] > from && w[0] < to)
        .map(|w| w[1] - w[0])
        .max()
}

fn median_interval(acked_at: &[Instant]) -> Duration {
    let mut d: Vec<Duration> = acked_at.windows(2).map(|w| w[1] - w[0]).collect();
    d.sort();
    d.get(d.len() / 2).copied().unwrap_or_default()
}

#[test]
fn server_hardware_boots_serves_a_lun_and_the_bond_fails_over_under_writes() {
    if common::skip_e2e("server_hardware_boots_serves_a_lun_and_the_bond_fails_over_under_writes") {
        return;
    }
    let (image, _serial) = server::build_image();
    eprintln!("image built in {:.1} s", image.built_in.as_secs_f64());
    let t = image.project.as_path();
    let disks = [
        server::disk(t, "d0.img", 64),
        server::disk(t, "d1.img", 64),
        server::disk(t, "d2.img", 64),
    ];
    let disk_args: Vec<String> = [
        ("megasas-gen2", &disks[0]),
        ("megasas-gen2", &disks[1]),
        ("nvme", &disks[2]),
    ]
    .iter()
    .map(|(c, f)| format!("{},{c}", f.display()))
    .collect();
    let mut args = vec![
        "--machine",
        "q35",
        "--nic",
        "e1000e",
        "--nic",
        "e1000e",
        "--append",
        "sanforge.node=server",
    ];
    for d in &disk_args {
        args.extend(["--disk", d.as_str()]);
    }
    // The md RAID1 of the two MegaRAID disks with the VG and LV on it: made first.
    let mkraid = make_raid(&image.out, &disk_args[..2]);
    eprintln!("mkraid boot: {:.1} s", mkraid.as_secs_f64());
    let vm = Vm::start(&image.out, &args);
    let console = vm.console();
    eprintln!(
        "boot to ready with server hardware: {:.1} s",
        vm.ready_after.unwrap_or(f64::NAN)
    );
    assert!(!console.contains("degraded"), "degraded:\n{console}");

    // The hardware report: two e1000e NICs, two MegaRAID disks and the NVMe drive by id.
    let nics = report_lines(&console, "nic");
    assert_eq!(
        nics.iter().filter(|l| l.contains(" e1000e ")).count(),
        2,
        "NICs in the report: {nics:#?}\n{console}"
    );
    // Each disk by the by-id name its serial gives (the report shows one per disk):
    // the MegaRAID disks as SCSI disks, the NVMe drive as a namespace.
    let disks_seen = report_lines(&console, "disk");
    for (serial, dev) in [
        (disk_serial(0), "sd"),
        (disk_serial(1), "sd"),
        (disk_serial(2), "nvme"),
    ] {
        assert!(
            disks_seen.iter().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.get(2).is_some_and(|n| n.starts_with(dev))
                    && w.last()
                        .is_some_and(|id| id.starts_with("by-id/") && id.ends_with(&serial))
            }),
            "no {dev} disk with serial {serial} in the report: {disks_seen:#?}\n{console}"
        );
    }
    // The storage part of the report: the array with both MegaRAID disks as members,
    // and the VG with its LV.
    let layout = server::server_storage();
    let sd_of = |serial: &str| -> String {
        disks_seen
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.last().is_some_and(|id| id.ends_with(serial)))
            .and_then(|w| w.get(2).map(|n| n.to_string()))
            .unwrap_or_default()
    };
    let md_lines = report_lines(&console, "md  ");
    let md_line = md_lines
        .iter()
        .find(|l| l.split_whitespace().nth(2) == Some(layout.md))
        .unwrap_or_else(|| panic!("no md {} in the report:\n{console}", layout.md));
    let members = md_line
        .split_once(" members [")
        .map(|(_, m)| m.trim_end_matches(']').to_string())
        .unwrap_or_default();
    let mut want: Vec<String> = [disk_serial(0), disk_serial(1)]
        .iter()
        .map(|s| sd_of(s))
        .collect();
    want.sort();
    let mut got: Vec<String> = members.split(", ").map(str::to_string).collect();
    got.sort();
    assert!(
        md_line.contains(" raid1 ") && !md_line.contains("MISSING") && got == want,
        "md line {md_line:?}: members {got:?}, want the MegaRAID disks {want:?}"
    );
    let vg_lines = report_lines(&console, "vg  ");
    assert!(
        vg_lines
            .iter()
            .any(|l| l.contains(&format!(" {} ", layout.vg))
                && l.contains(&format!("LVs [{}]", layout.lv))
                && !l.contains("ERROR")),
        "no vg {} with LV {} in the report: {vg_lines:#?}\n{console}",
        layout.vg,
        layout.lv
    );
    eprintln!("{md_line}");
    let hw = vm.sh_ok("cat /run/sanforge/hardware.json");
    for driver in ["\"megaraid_sas\"", "\"nvme\"", "\"e1000e\""] {
        assert!(hw.contains(driver), "hardware.json has no {driver}: {hw}");
    }
    eprintln!("LUN: {}", layout.description);
    check_storage(&vm, &layout);

    // The bond: stor0 (nic0) active, stor1 (nic1) its backup.
    let bond = "/sys/class/net/bond0/bonding";
    assert_eq!(
        vm.sh_ok(&format!("cat {bond}/mode")).trim(),
        "active-backup 1"
    );
    assert_eq!(
        vm.sh_ok(&format!("cat {bond}/slaves")).trim(),
        "stor0 stor1"
    );
    assert_eq!(
        vm.sh_ok(&format!("cat {bond}/active_slave")).trim(),
        "stor0"
    );
    assert_eq!(vm.sh_ok(&format!("cat {bond}/miimon")).trim(), "100");

    // The LUN from the host: iscsi-inq and libiscsi's families.
    let url = format!("iscsi://{}/{TARGET}/0", vm.iscsi);
    let inq = Command::new("iscsi-inq")
        .args(["-i", INITIATOR, &url])
        .output()
        .expect("iscsi-inq (libiscsi-bin) is not installed");
    assert!(
        inq.status.success() && String::from_utf8_lossy(&inq.stdout).contains("DIRECT_ACCESS"),
        "iscsi-inq: {}\n{console}",
        show(&inq)
    );
    for family in FAMILIES {
        let o = Command::new("iscsi-test-cu")
            .args([
                "--initiator-name",
                INITIATOR,
                &format!("--test={family}"),
                &url,
            ])
            .output()
            .expect("iscsi-test-cu (libiscsi-bin) is not installed");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (ran, passed, failed) = cunit_summary(&text)
            .unwrap_or_else(|| panic!("{family}: no CUnit summary: {}", show(&o)));
        eprintln!("{family}: ran {ran}, passed {passed}, failed {failed}");
        assert!(ran > 0, "{family}: no test ran: {}", show(&o));
        assert_eq!(failed, 0, "{family}: failures: {}", show(&o));
        assert!(o.status.success(), "{family}: {}", show(&o));
    }

    // Failover under writes: one portal (through the bond), one session throughout.
    let portals = vec![Portal::new(vm.iscsi, TARGET)];
    let mut writer = Writer::new(portals.clone(), INITIATOR, 0, BLOCK, NBLOCKS);
    let progress = writer.progress();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = stop.clone();
        std::thread::spawn(move || writer.run_until(&stop))
    };
    let wait_writes = |n: u64| {
        let end = Instant::now() + Duration::from_secs(60);
        let w0 = progress.writes.load(Ordering::SeqCst);
        while progress.writes.load(Ordering::SeqCst) < w0 + n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        progress.writes.load(Ordering::SeqCst) >= w0 + n
    };
    let t_start = Instant::now();
    assert!(wait_writes(200), "writes do not progress: {progress:?}");

    let t_off = Instant::now();
    vm.monitor("set_link nic0 off");
    let switched = vm.wait_for(
        &format!("cat {bond}/active_slave"),
        "stor1",
        Duration::from_secs(20),
    );
    assert!(
        wait_writes(200),
        "writes do not progress after the failover: {progress:?}\n{switched:?}"
    );
    assert!(switched.is_ok(), "{}", switched.unwrap_err());
    let t_on = Instant::now();
    vm.monitor("set_link nic0 on");
    let back = vm.wait_for(
        &format!("cat {bond}/active_slave"),
        "stor0",
        Duration::from_secs(20),
    );
    assert!(
        wait_writes(200),
        "writes do not progress after the failback: {progress:?}\n{back:?}"
    );
    assert!(back.is_ok(), "{}", back.unwrap_err());
    stop.store(true, Ordering::SeqCst);
    let report = handle.join().unwrap();

    let failed: Vec<String> = report
        .gaps
        .iter()
        .flat_map(|g| g.errors.iter().cloned())
        .collect();
    let checked = iscsi::verify(
        &portals,
        INITIATOR,
        0,
        BLOCK,
        &report,
        Duration::from_secs(10),
    );
    let lost = checked.as_ref().err().map(|b| b.len()).unwrap_or(0);
    let t_end = Instant::now();
    let before = stall(&report.acked_at, t_start, t_off);
    let off = stall(&report.acked_at, t_off, t_on);
    let on = stall(&report.acked_at, t_on, t_end);
    let secs = |d: Option<Duration>| {
        d.map(|s| format!("{:.3} s", s.as_secs_f64()))
            .unwrap_or_else(|| "?".into())
    };
    // The guest's own view: the driver's link-down to the bond's switch (dmesg).
    let dmesg = vm.sh_ok("dmesg");
    let at = |pat: &str| -> Option<f64> {
        let l = dmesg.lines().find(|l| l.contains(pat))?;
        l.trim_start_matches('[')
            .split(']')
            .next()?
            .trim()
            .parse()
            .ok()
    };
    let guest_switch = match (
        at("stor0: NIC Link is Down"),
        at("(slave stor1): making interface the new active one"),
    ) {
        (Some(d), Some(a)) => format!("{:.0} ms", (a - d) * 1e3),
        _ => "? (not in dmesg)".to_string(),
    };
    eprintln!("\n| figure | value |\n|---|---|");
    eprintln!(
        "| boot to ready (q35, 2x e1000e bond, megasas-gen2 + 2 disks, nvme; TCG) | {:.1} s |",
        vm.ready_after.unwrap_or(f64::NAN)
    );
    eprintln!(
        "| first boot making md RAID1 + VG + LV (node mkraid), wall | {:.1} s |",
        mkraid.as_secs_f64()
    );
    eprintln!(
        "| median interval between acknowledged writes | {:.1} ms |",
        median_interval(&report.acked_at).as_secs_f64() * 1e3
    );
    eprintln!(
        "| longest write stall before the cable pull (TCG noise) | {} |",
        secs(before)
    );
    eprintln!(
        "| longest write stall after `set_link nic0 off` (failover to stor1) | {} |",
        secs(off)
    );
    eprintln!(
        "| longest write stall after `set_link nic0 on` (back to primary stor0) | {} |",
        secs(on)
    );
    eprintln!(
        "| active slave stor1 read through the control shell after set_link off | {:.3} s |",
        switched
            .as_ref()
            .map(|d| d.as_secs_f64())
            .unwrap_or(f64::NAN)
    );
    eprintln!("| guest: stor0 link down → stor1 active (dmesg, miimon 100) | {guest_switch} |");
    eprintln!("| acknowledged writes | {} |", report.writes);
    eprintln!("| failed writes (writer gaps) | {} |", report.gaps.len());
    eprintln!(
        "| blocks read back | {} |",
        checked.as_ref().map(|n| *n).unwrap_or(0)
    );
    eprintln!("| acknowledged writes lost | {lost} |");
    assert!(
        report.gaps.is_empty(),
        "the writer saw failed writes: {failed:#?}"
    );
    assert_eq!(checked.err(), None, "acknowledged writes did not read back");
    drop(vm);
}

/// `Ip:` counters of the guest's `/proc/net/snmp`, by name.
fn ip_counter(vm: &Vm, name: &str) -> u64 {
    let snmp = vm.sh_ok("cat /proc/net/snmp");
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip: "));
    let (names, values) = (ip.next().unwrap_or(""), ip.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Ip {name} in /proc/net/snmp:\n{snmp}"))
}

/// VLAN + jumbo frames between two VMs: each has a virtio NIC on its user network
/// (control shell) and two e1000e NICs on one QEMU socket link on 127.0.0.1 (A
/// listens, B connects), bonded active-backup with MTU 9000, VLAN 100 on the bond.
/// A ping with an 8972-byte payload (a 9000-byte IP packet) passes unfragmented:
/// busybox ping has no `-M do`, but Linux sends with DF set by default
/// (IP_PMTUDISC_WANT) and fragments locally only what exceeds the route's MTU, so
/// the sender's `FragCreates` and the receiver's `ReasmReqds` staying put proves the
/// 9000-byte frames crossed the bond and the VLAN whole; one byte more is fragmented
/// (the counters move), which shows they can.
#[test]
fn vlan_on_a_bond_carries_jumbo_frames_between_two_vms() {
    if common::skip_e2e("vlan_on_a_bond_carries_jumbo_frames_between_two_vms") {
        return;
    }
    let (image, _serial) = server::build_image();
    // One output directory, two VMs: each its own path (so its own `.run/` state).
    let outs: Vec<std::path::PathBuf> = ['a', 'b']
        .iter()
        .map(|n| {
            let p = image.project.join(format!("out/vlan-{n}"));
            let _ = std::fs::remove_file(&p);
            std::os::unix::fs::symlink(&image.out, &p).unwrap();
            p
        })
        .collect();
    let link = common::vm::free_port().to_string();
    let args = |node: char, end: &str| -> Vec<String> {
        let mut a = vec![
            "--append".to_string(),
            format!("sanforge.node=vlan-{node}"),
            "--nic".into(),
            format!("virtio,mac={}", server::vlan_mac(node, 0)),
        ];
        for i in 1..=2 {
            a.push("--nic".into());
            a.push(format!(
                "e1000e,net={end}:{link},mac={}",
                server::vlan_mac(node, i)
            ));
        }
        a
    };
    let start = |out: &std::path::Path, a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        Vm::start(out, &a)
    };
    let a = start(&outs[0], args('a', "listen"));
    let b = start(&outs[1], args('b', "connect"));
    eprintln!(
        "boot to ready: A {:.1} s, B {:.1} s",
        a.ready_after.unwrap_or(f64::NAN),
        b.ready_after.unwrap_or(f64::NAN)
    );
    for vm in [&a, &b] {
        let vlan = vm.sh_ok("cat /proc/net/vlan/config");
        assert!(
            vlan.lines().any(|l| l
                .split('|')
                .map(str::trim)
                .eq(["bond0.100", "100", "bond0"])),
            "no VLAN 100 on bond0: {vlan}\n{}",
            vm.console()
        );
        for dev in ["bond0", "bond0.100", "stor0", "stor1"] {
            assert_eq!(
                vm.sh_ok(&format!("cat /sys/class/net/{dev}/mtu")).trim(),
                "9000",
                "mtu of {dev}"
            );
        }
        assert_eq!(
            vm.sh_ok("cat /sys/class/net/bond0/bonding/mode").trim(),
            "active-backup 1"
        );
    }
    let peer = server::vlan_addr('b');
    let ping = |size: usize| -> (String, u64, u64) {
        let (f0, r0) = (ip_counter(&a, "FragCreates"), ip_counter(&b, "ReasmReqds"));
        let out = a.sh_ok(&format!("ping -c 3 -w 20 -s {size} {peer}; echo rc=$?"));
        (
            out,
            ip_counter(&a, "FragCreates") - f0,
            ip_counter(&b, "ReasmReqds") - r0,
        )
    };
    let (out, frags, reasm) = ping(8972);
    eprintln!("{out}");
    assert!(
        out.contains("rc=0") && out.contains("3 packets received"),
        "ping -s 8972 over VLAN 100 failed: {out}\n--- A\n{}\n--- B\n{}",
        a.console(),
        b.console()
    );
    // busybox prints the ICMP message size: payload + 8.
    assert!(out.contains("8980 bytes from"), "{out}");
    assert_eq!(
        (frags, reasm),
        (0, 0),
        "8972-byte pings were fragmented: {out}"
    );
    let (out, frags, reasm) = ping(8973);
    assert!(
        out.contains("rc=0") && frags > 0 && reasm > 0,
        "8973 bytes should cross fragmented (FragCreates +{frags}, ReasmReqds +{reasm}): {out}"
    );
    eprintln!("\n| figure | value |\n|---|---|");
    eprintln!(
        "| boot to ready, VLAN nodes A / B (TCG) | {:.1} s / {:.1} s |",
        a.ready_after.unwrap_or(f64::NAN),
        b.ready_after.unwrap_or(f64::NAN)
    );
    eprintln!("| ping -s 8972 over bond0.100 (MTU 9000) | 3/3, unfragmented |");
}

/// The test node configs pass `sanforge node check` (the init's own types): a
/// mistake in them fails here in a second, not after an image build and a boot.
#[test]
fn the_test_node_configs_are_valid() {
    let t = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("server", server::server_node()),
        ("mkraid", server::mkraid_node()),
        ("vlan-a", server::vlan_node('a')),
        ("vlan-b", server::vlan_node('b')),
    ] {
        let f = t.path().join(format!("{name}.toml"));
        std::fs::write(&f, &text).unwrap();
        let o = server::sanforge(t.path())
            .args(["node", "check"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}\n{text}", show(&o));
    }
}

#[test]
fn stall_is_the_longest_interval_in_the_window() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let acks = [at(0), at(10), at(20), at(900), at(910), at(1500), at(1510)];
    // The event at 15 ms: the stall that follows it, not the interval around it.
    assert_eq!(
        stall(&acks, at(15), at(1000)),
        Some(Duration::from_millis(880))
    );
    assert_eq!(
        stall(&acks, at(1000), at(2000)),
        Some(Duration::from_millis(590))
    );
    assert_eq!(stall(&acks, at(0), at(15)), Some(Duration::from_millis(10)));
    assert_eq!(stall(&acks, at(2000), at(3000)), None);
    assert_eq!(median_interval(&acks), Duration::from_millis(10));
}
