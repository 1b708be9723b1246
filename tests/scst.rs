//! scst.conf parser, printer, validation, sysfs plan and apply, on the fixtures in
//! tests/fixtures/scst (real configs from the seeds) and on broken inputs.

use std::io;
use std::path::{Path, PathBuf};

use sanforge::scsi::scst::{
    apply, apply_with, check_file, diff_plan, generate, parse, plan, plan_file, print, validate,
    ApplyOptions, Severity, SysfsWrite,
};

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

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn fixtures_parse_validate_and_round_trip() {
    for f in fixtures() {
        let text = read(&f);
        let conf = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        // The seeds' configs are clean: not even a warning.
        let findings = validate(&conf);
        assert!(findings.is_empty(), "{}: {findings:?}", f.display());
        let printed = print(&conf);
        let again =
            parse(&printed).unwrap_or_else(|e| panic!("{}: reparse: {e}\n{printed}", f.display()));
        assert_eq!(
            again.without_lines(),
            conf.without_lines(),
            "{}",
            f.display()
        );
        assert_eq!(
            print(&again),
            printed,
            "{}: printer not idempotent",
            f.display()
        );
        assert_eq!(plan(&again), plan(&conf), "{}", f.display());
    }
}

#[test]
fn fixture_models_are_what_the_files_say() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scst");
    let c = parse(&read(&dir.join("alua_node1.conf"))).unwrap();
    assert_eq!(c.handlers[0].name, "vdisk_blockio");
    assert_eq!(c.handlers[0].devices.len(), 2);
    // A comment indented with blanks vanishes entirely (the '#' eats the blank before it).
    assert_eq!(c.handlers[0].devices[0].attrs.len(), 3);
    let d = &c.drivers[0];
    assert_eq!(d.targets.len(), 4);
    assert!(d
        .targets
        .iter()
        .all(|t| t.hw_target && t.enabled == Some(true)));
    let tgs = &c.device_groups[0].target_groups;
    assert_eq!(tgs.len(), 2);
    assert_eq!(tgs[1].targets.len(), 4);
    assert_eq!(tgs[1].targets[3].attrs[0].value, "8");

    let c = parse(&read(&dir.join("iscsi_drbd.conf"))).unwrap();
    let t = &c.drivers[0].targets[0];
    assert_eq!(
        t.attrs
            .iter()
            .filter(|a| a.name == "allowed_portal")
            .count(),
        6
    );
    let io = t
        .attrs
        .iter()
        .find(|a| a.name == "io_grouping_type")
        .unwrap();
    assert_eq!(io.value, "never");
    assert_eq!(c.drivers[0].attrs[0].value, "discovery s3cretpassw0rd");
}

#[test]
fn plan_snapshots() {
    for f in fixtures() {
        let conf = parse(&read(&f)).unwrap();
        let text: String = plan(&conf)
            .iter()
            .map(|w| format!("{} <- {}\n", w.path, w.value))
            .collect();
        let name = format!("plan_{}", f.file_stem().unwrap().to_string_lossy());
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn plan_order_and_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scst");
    let p = plan(&parse(&read(&dir.join("iscsi_drbd.conf"))).unwrap());
    let pos = |path: &str, value: &str| {
        p.iter()
            .position(|w| w.path == path && w.value == value)
            .unwrap_or_else(|| panic!("no write {path} <- {value}"))
    };
    let setup = pos("setup_id", "0x2011");
    let add = pos(
        "handlers/vdisk_fileio/mgmt",
        "add_device VM_STORAGE_1 filename=/dev/drbd0;nv_cache=0;t10_dev_id=VM_STORAGE_1;",
    );
    let tgt = "iqn.2011-04.ru.domain:VM_STORAGE_1";
    let add_t = pos("targets/iscsi/mgmt", &format!("add_target {tgt}"));
    let portal = pos(
        "targets/iscsi/mgmt",
        &format!("add_target_attribute {tgt} allowed_portal 10.1.29.10"),
    );
    let lun = pos(
        &format!("targets/iscsi/{tgt}/luns/mgmt"),
        "add VM_STORAGE_1 0",
    );
    let en = pos(&format!("targets/iscsi/{tgt}/enabled"), "1");
    let drv = pos("targets/iscsi/enabled", "1");
    assert!(setup < add && add < add_t && add_t < portal && portal < lun && lun < en && en < drv);
    pos(
        "targets/iscsi/mgmt",
        "add_attribute IncomingUser discovery s3cretpassw0rd",
    );
    pos(
        "targets/iscsi/iqn.2011-04.ru.domain:VM_STORAGE_2/ini_groups/hyperv/luns/mgmt",
        "add VM_STORAGE_2 0 read_only=0",
    );
    // Every enable is at the end.
    let first_enable = p.iter().position(SysfsWrite::is_enable).unwrap();
    assert!(p[first_enable..].iter().all(SysfsWrite::is_enable));
    assert_eq!(p.len() - first_enable, 3);
}

#[test]
fn cluster_mode_goes_last_in_add_device() {
    let c = parse(
        "HANDLER vdisk_blockio {\n DEVICE d {\n  cluster_mode 1\n  filename /dev/sdb\n  t10_dev_id d1\n  usn 42\n }\n}\n",
    )
    .unwrap();
    let p = plan(&c);
    assert_eq!(
        p[0],
        SysfsWrite {
            path: "handlers/vdisk_blockio/mgmt".into(),
            value: "add_device d filename=/dev/sdb;t10_dev_id=d1;cluster_mode=1;".into()
        }
    );
    assert_eq!(p[1].path, "devices/d/usn");
    assert_eq!(p.len(), 2);
}

fn parse_err(text: &str) -> (usize, String) {
    let e = parse(text).unwrap_err();
    (e.line, e.message)
}

#[test]
fn syntax_errors_have_lines() {
    let (l, m) = parse_err("HANDLER vdisk_fileio {\n DEVICE a {\n  filename /a\n}\n");
    assert_eq!(l, 1, "{m}");
    assert!(m.contains("missing '}'"), "{m}");

    let (l, m) = parse_err("HANDLER vdisk_fileio {\n}\n}\nsetup_id 1\n");
    assert_eq!(l, 3);
    assert!(m.contains("unmatched '}'"), "{m}");

    let (l, m) = parse_err("TARGET_DRIVER iscsi {\n FOO bar {\n }\n}\n");
    assert_eq!(l, 2);
    assert!(
        m.contains("unknown block 'FOO bar'") && m.contains("expected TARGET"),
        "{m}"
    );

    let (l, m) = parse_err("HANDLER vdisk_fileio {\n LUN 0 x\n}\n");
    assert_eq!(l, 2);
    assert!(m.contains("'LUN' is not allowed inside HANDLER"), "{m}");

    let (l, m) = parse_err("HANDLER vdisk_fileio {\n DEVICE a { filename /a }\n}\n");
    assert_eq!(l, 2);
    assert!(m.contains("would be dropped"), "{m}");

    let (l, m) = parse_err("HANDLER vdisk_fileio\n{\n}\n");
    assert_eq!(l, 2);
    assert!(m.contains("same line"), "{m}");

    let (l, m) = parse_err("setup_id 1\nTARGET_DRIVER iscsi {\n IncomingUser joe secret\n}\n");
    assert_eq!(l, 3);
    assert!(m.contains("quote"), "{m}");

    let (l, m) = parse_err("cluster_name x\nsetup_id \"a\nb\"\n");
    assert_eq!(l, 2);
    assert!(m.contains("newline"), "{m}");

    let (l, _) = parse_err("\n\nTARGET_DRIVER iscsi {\n TARGET t {\n  LUN x d\n }\n}\n");
    assert_eq!(l, 5);
}

fn errors(text: &str) -> Vec<(usize, String)> {
    validate(&parse(text).unwrap())
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.line, d.message))
        .collect()
}

fn has(errs: &[(usize, String)], line: usize, needle: &str) {
    assert!(
        errs.iter().any(|(l, m)| *l == line && m.contains(needle)),
        "no error on line {line} containing '{needle}': {errs:?}"
    );
}

#[test]
fn validation_errors_have_lines() {
    let e = errors(
        "HANDLER vdisk_fileio {\n DEVICE a {\n  filename /a\n }\n DEVICE a {\n  filename /b\n }\n}\n\
         HANDLER vdisk_magic {\n}\n\
         TARGET_DRIVER qla2x00t {\n TARGET 21:00:00:24:ff:54:09 {\n  HW_TARGET\n  LUN 0 a\n  LUN 0 a\n  LUN 1 missing\n }\n}\n",
    );
    has(&e, 5, "defined twice");
    has(&e, 9, "unknown handler 'vdisk_magic'");
    has(&e, 12, "not a WWPN");
    has(&e, 15, "LUN 0 is defined twice");
    has(&e, 16, "'missing', which no HANDLER block defines");

    let e = errors(
        "TARGET_DRIVER bogus {\n}\nDEVICE_GROUP dg {\n TARGET_GROUP a {\n  group_id 1\n  state actve\n  TARGET x {\n   rel_tgt_id 3\n  }\n  TARGET y {\n   rel_tgt_id 3\n  }\n }\n}\n",
    );
    has(&e, 1, "unknown target driver 'bogus'");
    has(&e, 6, "invalid ALUA state 'actve'");
    has(&e, 11, "rel_tgt_id 3");

    let e = errors(
        "TARGET_DRIVER iscsi {\n TARGET not-an-iqn {\n  GROUP g {\n   INITIATOR bad-ini\n  }\n  GROUP g {\n  }\n }\n}\n",
    );
    has(&e, 2, "not an iSCSI name");
    has(&e, 4, "not an iSCSI name");
    has(&e, 6, "GROUP g appears twice");

    let e = errors("HANDLER vdisk_fileio {\n DEVICE a {\n  filename rel/path\n }\n}\nHANDLER vdisk_fileio {\n}\n");
    has(&e, 3, "absolute");
    has(&e, 6, "appears twice");
}

#[test]
fn missing_lun0_is_a_warning() {
    let c = parse("HANDLER vdisk_nullio {\n DEVICE n\n}\nTARGET_DRIVER scst_local {\n TARGET t {\n  LUN 1 n\n }\n}\n").unwrap();
    let d = validate(&c);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].severity, Severity::Warning);
    assert_eq!(d[0].line, 5);
    assert!(d[0].message.contains("no LUN 0"));
}

#[test]
fn values_sysfs_cannot_carry() {
    let mut c =
        parse("HANDLER vdisk_blockio {\n DEVICE a {\n  filename /dev/sda\n  usn 1\n }\n}\n")
            .unwrap();
    c.handlers[0].devices[0].attrs[1].value = "1\n2".into();
    c.handlers[0].devices[0].attrs[0].value = "/dev/my disk".into();
    let e: Vec<_> = validate(&c)
        .into_iter()
        .map(|d| (d.line, d.message))
        .collect();
    has(&e, 4, "a newline");
    has(&e, 3, "creation parameter");
}

// --- apply ---------------------------------------------------------------------------

fn w(path: &str, value: &str) -> SysfsWrite {
    SysfsWrite {
        path: path.into(),
        value: value.into(),
    }
}

fn fast() -> ApplyOptions {
    ApplyOptions {
        max_polls: 5,
        poll_interval: std::time::Duration::ZERO,
    }
}

#[test]
fn apply_writes_in_order() {
    let p = vec![w("a", "1"), w("b/mgmt", "add x"), w("t/enabled", "1")];
    let mut log = Vec::new();
    let r = apply(
        &p,
        &mut |path, v| {
            log.push(format!("{path}={v}"));
            Ok(())
        },
        &mut |_| panic!("no read expected"),
    );
    assert!(r.is_ok());
    assert_eq!(log, ["a=1", "b/mgmt=add x", "t/enabled=1"]);
}

#[test]
fn apply_stops_at_first_error_leaving_ports_disabled() {
    let p = vec![
        w("a", "1"),
        w("luns/mgmt", "add nosuch 0"),
        w("t/enabled", "1"),
    ];
    let mut log = Vec::new();
    let e = apply(
        &p,
        &mut |path, v| {
            log.push(path.to_string());
            if v.contains("nosuch") {
                Err(io::Error::from_raw_os_error(libc::EINVAL))
            } else {
                Ok(())
            }
        },
        &mut |_| Ok("0".into()),
    )
    .unwrap_err();
    assert_eq!(log, ["a", "luns/mgmt"]);
    assert_eq!(e.index, 1);
    assert_eq!(e.errno, Some(libc::EINVAL));
    assert_eq!(e.value, "add nosuch 0");
    let msg = e.to_string();
    assert!(
        msg.contains("/sys/kernel/scst_tgt/luns/mgmt") && msg.contains("dmesg"),
        "{msg}"
    );
}

#[test]
fn apply_polls_last_sysfs_mgmt_res_after_eagain() {
    let p = vec![
        w("handlers/vdisk_blockio/mgmt", "add_device d filename=/x;"),
        w("next", "1"),
    ];
    let mut reads = 0;
    let mut writes = Vec::new();
    let r = apply_with(
        &p,
        &mut |path, _| {
            writes.push(path.to_string());
            if path.ends_with("mgmt") {
                Err(io::Error::from_raw_os_error(libc::EAGAIN))
            } else {
                Ok(())
            }
        },
        &mut |path| {
            assert_eq!(path, "last_sysfs_mgmt_res");
            reads += 1;
            if reads < 3 {
                Err(io::Error::from_raw_os_error(libc::EAGAIN))
            } else {
                Ok("0\n".into())
            }
        },
        &fast(),
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(reads, 3);
    assert_eq!(writes.len(), 2);

    // The queued work failed: its result is the error.
    let e = apply_with(
        &p,
        &mut |_, _| Err(io::ErrorKind::WouldBlock.into()),
        &mut |_| Ok("-17\n".into()),
        &fast(),
    )
    .unwrap_err();
    assert_eq!((e.index, e.errno), (0, Some(17)));

    // Still in progress after the bound.
    let mut n = 0;
    let e = apply_with(
        &p,
        &mut |_, _| Err(io::Error::from_raw_os_error(libc::EAGAIN)),
        &mut |_| {
            n += 1;
            Err(io::Error::from_raw_os_error(libc::EAGAIN))
        },
        &fast(),
    )
    .unwrap_err();
    assert_eq!(n, 5);
    assert_eq!(e.errno, Some(libc::EAGAIN));
    assert!(e.detail.contains("in progress"));
}

// --- diff_plan -----------------------------------------------------------------------

#[test]
fn diff_same_config_is_empty() {
    for f in fixtures() {
        let c = parse(&read(&f)).unwrap();
        assert!(diff_plan(&c, &c, false).is_empty(), "{}", f.display());
        assert!(diff_plan(&c, &c, true).is_empty(), "{}", f.display());
    }
}

const BASE: &str = "HANDLER vdisk_fileio {\n DEVICE a {\n  filename /a\n  usn 1\n }\n DEVICE b {\n  filename /b\n }\n}\n\
TARGET_DRIVER iscsi {\n TARGET iqn.2024-01.org.x:t {\n  enabled 1\n  allowed_portal 10.0.0.1\n  LUN 0 a\n  LUN 1 b\n  GROUP g {\n   LUN 0 b\n   INITIATOR iqn.2024-01.org.x:h1\n  }\n }\n}\n";

#[test]
fn diff_changed_attribute_writes_only_it() {
    let cur = parse(BASE).unwrap();
    let des = parse(&BASE.replace("usn 1", "usn 2")).unwrap();
    assert_eq!(diff_plan(&cur, &des, false), vec![w("devices/a/usn", "2")]);
    assert_eq!(diff_plan(&cur, &des, true), vec![w("devices/a/usn", "2")]);
}

#[test]
fn diff_additions_without_prune_and_removals_only_with_prune() {
    let cur = parse(BASE).unwrap();
    // Remove device b (and the LUNs using it), the group initiator and the portal; add LUN 2.
    let des_text = "HANDLER vdisk_fileio {\n DEVICE a {\n  filename /a\n  usn 1\n }\n}\n\
TARGET_DRIVER iscsi {\n TARGET iqn.2024-01.org.x:t {\n  enabled 1\n  LUN 0 a\n  LUN 2 a\n }\n}\n";
    let des = parse(des_text).unwrap();
    let t = "targets/iscsi/iqn.2024-01.org.x:t";
    assert_eq!(
        diff_plan(&cur, &des, false),
        vec![w(&format!("{t}/luns/mgmt"), "add a 2")]
    );
    let p = diff_plan(&cur, &des, true);
    assert_eq!(
        p,
        vec![
            w(&format!("{t}/ini_groups/mgmt"), "del g"),
            w(
                "targets/iscsi/mgmt",
                "del_target_attribute iqn.2024-01.org.x:t allowed_portal 10.0.0.1"
            ),
            w("handlers/vdisk_fileio/mgmt", "del_device b"),
            w(&format!("{t}/luns/mgmt"), "add a 2"),
        ]
    );
}

#[test]
fn diff_creation_parameter_change_recreates_with_prune() {
    let cur = parse(BASE).unwrap();
    let des = parse(&BASE.replace("filename /b", "filename /b2")).unwrap();
    assert!(diff_plan(&cur, &des, false).is_empty());
    let p = diff_plan(&cur, &des, true);
    let t = "targets/iscsi/iqn.2024-01.org.x:t";
    assert_eq!(
        p,
        vec![
            w("handlers/vdisk_fileio/mgmt", "del_device b"),
            w("handlers/vdisk_fileio/mgmt", "add_device b filename=/b2;"),
            w(&format!("{t}/luns/mgmt"), "add b 1"),
            w(&format!("{t}/ini_groups/g/luns/mgmt"), "add b 0"),
        ]
    );
}

#[test]
fn diff_enable_and_disable() {
    let cur = parse(BASE).unwrap();
    let off = parse(&BASE.replace("enabled 1", "enabled 0")).unwrap();
    let t = "targets/iscsi/iqn.2024-01.org.x:t/enabled";
    assert_eq!(diff_plan(&cur, &off, false), vec![w(t, "0")]);
    assert_eq!(diff_plan(&off, &cur, false), vec![w(t, "1")]);
    let unset = parse(&BASE.replace("  enabled 1\n", "")).unwrap();
    assert!(diff_plan(&cur, &unset, false).is_empty());
    assert_eq!(diff_plan(&cur, &unset, true), vec![w(t, "0")]);
}

// --- CLI-facing ----------------------------------------------------------------------

#[test]
fn check_and_plan_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, "HANDLER vdisk_fileio {\n DEVICE a {\n  filename /a\n }\n}\nTARGET_DRIVER iscsi {\n TARGET iqn.2024-01.org.x:t {\n  LUN 0 nosuch\n }\n}\n").unwrap();
    let (report, failed) = check_file(&bad).unwrap();
    assert!(failed);
    let expect = format!("{}:8: error: LUN 0 uses device 'nosuch'", bad.display());
    assert!(report.contains(&expect), "{report}");
    assert!(plan_file(&bad).is_err());

    let syntax = dir.path().join("syntax.conf");
    std::fs::write(&syntax, "HANDLER vdisk_fileio {\n").unwrap();
    let (report, failed) = check_file(&syntax).unwrap();
    assert!(failed);
    assert!(
        report.starts_with(&format!("{}:1: error: missing '}}'", syntax.display())),
        "{report}"
    );

    let good = fixtures().into_iter().next().unwrap();
    let (report, failed) = check_file(&good).unwrap();
    assert!(!failed, "{report}");
    let out = plan_file(&good).unwrap();
    assert!(out
        .lines()
        .all(|l| l.starts_with("/sys/kernel/scst_tgt/") && l.contains(" <- ")));
    assert_eq!(
        out.lines().count(),
        plan(&parse(&read(&good)).unwrap()).len()
    );

    let e = check_file(&dir.path().join("absent.conf")).unwrap_err();
    assert!(format!("{e:#}").contains("cannot read"));
}

// --- scale ---------------------------------------------------------------------------

#[test]
fn generated_config_is_valid_and_round_trips() {
    let c = generate(40, 4, 6);
    let d = validate(&c);
    assert!(d.is_empty(), "{d:?}");
    let text = print(&c);
    assert_eq!(parse(&text).unwrap().without_lines(), c.without_lines());
    let p = plan(&c);
    assert_eq!(
        p.iter()
            .filter(|w| w.value.starts_with("add_device"))
            .count(),
        40
    );
    assert_eq!(p.iter().filter(|w| w.is_enable()).count(), 4);
}
