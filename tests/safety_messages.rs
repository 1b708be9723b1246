//! Issue #10, class 7: messages say the truth. An error points at the line of the
//! value at fault (not at the first key of that name), an out-of-range number is
//! called out of range (and a non-number is not), and the advice is right for the file
//! in question. Each case asserts the exact location and wording.

mod common;

use common::project::{text, Project};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn sanforge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sanforge"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `sanforge node check` of `body`: the error line.
fn node_error(body: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("node.toml");
    std::fs::write(&f, body).unwrap();
    let o = sanforge(&["node", "check", f.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    stderr(&o)
        .replace(&format!("{}", f.display()), "node.toml")
        .trim_end()
        .to_string()
}

/// `sanforge scst check` of `body`: the report.
fn scst_report(body: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("scst.conf");
    std::fs::write(&f, body).unwrap();
    let o = sanforge(&["scst", "check", f.to_str().unwrap()]);
    String::from_utf8_lossy(&o.stdout).replace(&format!("{}", f.display()), "scst.conf")
}

const LIO: &str = "hostname = \"n\"\n[lio]\nbackstores = [{ name = \"rd\", kind = \"ramdisk\", size = \"1MiB\" }]\n[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:t\"\nportals = [\"0.0.0.0:3260\"]\n";

#[test]
fn an_out_of_range_number_is_called_out_of_range() {
    for (body, want) in [
        (
            format!("{LIO}tpg = 70000\n"),
            "error: node.toml:7:7: tpg 70000 is out of range: expected 0 to 65535",
        ),
        (
            format!("{LIO}luns = [{{ lun = -1, backstore = \"rd\" }}]\n"),
            "error: node.toml:7:17: lun -1 is out of range: expected 0 to 4294967295",
        ),
        (
            "hostname = \"n\"\n[[network.interfaces]]\nname = \"eth0\"\nmtu = 70000\n".to_string(),
            "error: node.toml:4:7: mtu 70000 on eth0 is out of range: expected 68 to 65535",
        ),
        (
            "hostname = \"n\"\n[lio]\nbackstores = [{ name = \"rd\", kind = \"ramdisk\", size = \"99999999TiB\" }]\n".to_string(),
            "error: node.toml:3:55: ramdisk backstore `rd`: size `99999999TiB`: out of range",
        ),
        (
            "hostname = \"n\"\n[lio]\nbackstores = [{ name = \"rd\", kind = \"ramdisk\", size = \"lots\" }]\n".to_string(),
            "error: node.toml:3:55: ramdisk backstore `rd`: size `lots`: expected a number with an optional unit B, KiB, MiB, GiB or TiB, e.g. \"64MiB\"",
        ),
    ] {
        assert_eq!(node_error(&body), want);
    }
    let r = scst_report("HANDLER vdisk_nullio {\n\tDEVICE d0\n}\nTARGET_DRIVER scst_local {\n\tTARGET scst_local_tgt {\n\t\trel_tgt_id 70000\n\t\tLUN 0 d0\n\t\tLUN 99999999999 d0\n\t}\n}\n");
    assert_eq!(
        r,
        "scst.conf:8: error: LUN number 99999999999 is out of range: expected 0 to 16383\n"
    );
    let r = scst_report("HANDLER vdisk_nullio {\n\tDEVICE d0\n}\nTARGET_DRIVER scst_local {\n\tTARGET scst_local_tgt {\n\t\trel_tgt_id 70000\n\t\tLUN 0 d0\n\t}\n}\nDEVICE_GROUP g {\n\tTARGET_GROUP t {\n\t\tgroup_id x1\n\t}\n}\n");
    for want in [
        "scst.conf:6: error: 'rel_tgt_id' 70000 is out of range: expected 1 to 65535",
        "scst.conf:12: error: 'group_id' must be a number from 1 to 65535, not 'x1'",
    ] {
        assert!(r.lines().any(|l| l == want), "missing {want} in\n{r}");
    }
    let r = scst_report("threads 0\npoll_us -5\n");
    for want in [
        "scst.conf:1: error: global attribute 'threads' value '0' is out of range: expected 1 to 2147483647",
        "scst.conf:2: error: global attribute 'poll_us' value '-5' is out of range: expected 0 to 18446744073709551",
    ] {
        assert!(r.lines().any(|l| l == want), "missing {want} in\n{r}");
    }
    // The recipe's numbers.
    let p = Project::new();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    std::fs::write(
        p.recipe(),
        recipe.replace("zstd-level = 3", "zstd-level = 25"),
    )
    .unwrap();
    let o = p.run(&["plan", "recipes/test.toml"]);
    assert!(
        stderr(&o)
            .contains("recipes/test.toml:22:14: zstd-level 25 is out of range: expected 1 to 19"),
        "{}",
        text(&o)
    );
}

#[test]
fn errors_point_at_the_value_at_fault() {
    // The second of two interfaces, the second portal, the second backstore: each
    // error is on the line of the value, not of the first `name`/`portals`/`path`.
    let body = "hostname = \"n\"\n\
                [[network.interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.1/24\"]\n\
                [[network.interfaces]]\nname = \"eth1\"\naddresses = [\"192.0.2.2/24\",\n  \"192.0.2.1/24\"]\n";
    assert_eq!(
        node_error(body),
        "error: node.toml:8:3: address 192.0.2.1 on eth1 is already on eth0: an address can be on one interface only"
    );
    let body = "hostname = \"n\"\n[[network.interfaces]]\nname = \"eth0\"\nmac = \"52:54:00:00:00:01\"\n[[network.interfaces]]\nname = \"eth1\"\nmac = \"52:54:00:00:00:01\"\n";
    assert!(node_error(body).starts_with(
        "error: node.toml:7:7: MAC address 52:54:00:00:00:01 of eth1 is already the MAC of eth0"
    ));
    let body = format!("{LIO}[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:u\"\nportals = [\"0.0.0.0:3260\", \"10.0.0.1:3260\", \"10.0.0.1:3260\"]\n");
    assert_eq!(
        node_error(&body),
        "error: node.toml:9:45: portal 10.0.0.1:3260 is listed twice for `iqn.2026-11.org.example:u`"
    );
    let body = format!("{LIO}[[lio.iscsi]]\niqn = \"iqn.2026-11.org.example:u\"\nportals = [\"0.0.0.0:3260\", \"bogus\"]\n");
    assert_eq!(
        node_error(&body),
        "error: node.toml:9:28: portal `bogus`: expected ip:port like 0.0.0.0:3260"
    );
    // scst.conf: the line of the attribute, not of its block.
    let r = scst_report("HANDLER vdisk_fileio {\n\tDEVICE d0 {\n\t\tfilename /a\n\t\tread_only 1\n\t\twrite_through 1\n\t\tprod_id ThisNameIsFarTooLong\n\t}\n}\n");
    for want in [
        "scst.conf:2: error: device 'd0' is read_only but has write_through or nv_cache set: vdisk refuses write options on a read-only device",
        "scst.conf:6: error: device attribute 'prod_id' value 'ThisNameIsFarTooLong' is 20 characters long, out of range: at most 16",
    ] {
        assert!(r.lines().any(|l| l == want), "missing {want} in\n{r}");
    }
}

#[test]
fn advice_is_right_for_the_file_in_question() {
    let d = tempfile::tempdir().unwrap();
    // A node's secrets file is written by hand; a cluster's is generated.
    let missing = d.path().join("node.secrets.toml");
    let e = format!(
        "{:#}",
        sanforge::config::secrets::NodeSecrets::load(&missing).unwrap_err()
    );
    assert!(
        e.contains("write one with a `[chap.NAME]` table (user, password)"),
        "{e}"
    );
    assert!(!e.contains("sanforge cluster secrets"), "{e}");
    let e = format!(
        "{:#}",
        sanforge::ha::cluster::Secrets::load(&missing).unwrap_err()
    );
    assert!(e.contains("sanforge cluster secrets --out"), "{e}");
    // Who can read it, exactly.
    let f = d.path().join("s.toml");
    std::fs::write(&f, "[chap.a]\nuser = \"u\"\npassword = \"0123456789ab\"\n").unwrap();
    for (mode, who) in [
        (0o640, "its group"),
        (0o606, "others"),
        (0o660, "its group"),
    ] {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = format!(
            "{:#}",
            sanforge::config::secrets::NodeSecrets::load(&f).unwrap_err()
        );
        assert!(
            e.contains(&format!("is open to {who} (mode {mode:04o})")),
            "{e}"
        );
    }
    // An scst.conf attribute that exists but cannot be set is called read-only, not
    // unknown; an unknown one gets the nearest name.
    let r = scst_report("version 3.10\nHANDLER vdisk_blockio {\n\tDEVICE d {\n\t\tfilename /dev/sda\n\t\tusm 1\n\t}\n}\nTARGET_DRIVER iscsi {\n\tTARGET iqn.2026-11.org.example:t {\n\t\ttid 3\n\t\tQueuedCommand 8\n\t\tLUN 0 d\n\t}\n}\n");
    for want in [
        "scst.conf:1: error: global attribute 'version' of SCST is read-only: it cannot be set",
        "scst.conf:5: error: device attribute 'usm' is not an attribute of vdisk_blockio devices (did you mean 'usn'?)",
        "scst.conf:10: error: target attribute 'tid' of iscsi targets is read-only: it cannot be set",
        "scst.conf:11: error: target attribute 'QueuedCommand' is not an attribute of iscsi targets (did you mean 'QueuedCommands'?)",
    ] {
        assert!(r.lines().any(|l| l == want), "missing {want} in\n{r}");
    }
    // A driver sanforge has no full list for: a warning, written as is.
    let r = scst_report("TARGET_DRIVER fcst {\n\tfancy_knob 1\n}\n");
    assert!(
        r.contains("scst.conf:2: warning: driver attribute 'fancy_knob' is not an attribute of driver fcst as far as sanforge knows; it is written as is"),
        "{r}"
    );
    // A module a node loads: the advice names the image's kernel, and the node config
    // the name is in (not the recipe's main one).
    let p = Project::new();
    let node = |n: &str, load: &str| format!("hostname = \"{n}\"\n[modules]\nload = [{load}]\n");
    std::fs::create_dir_all(p.root().join("cluster")).unwrap();
    std::fs::write(
        p.root().join("cluster/alpha.toml"),
        node("alpha", "\"target_core_mod\""),
    )
    .unwrap();
    std::fs::write(
        p.root().join("cluster/beta.toml"),
        node("beta", "\"target_core_mod\", \"drbd\""),
    )
    .unwrap();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap().replace(
        "config = \"recipes/nodes/node.toml\"",
        "config = \"recipes/nodes/node.toml\"\nconfigs = [\"cluster\"]",
    );
    std::fs::write(p.recipe(), recipe).unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    let beta = p.root().join("cluster/beta.toml");
    assert!(
        e.contains(&format!(
            "{}:3:28: [modules] load names module `drbd`, which kernel 6.1.0-t of this image",
            beta.display()
        )),
        "{e}"
    );
    assert!(!Path::new(&p.root().join("out/test")).exists());
}
