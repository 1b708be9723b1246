//! End to end: build the default recipe for real (kernel from Debian's
//! linux-source-6.1, busybox userland, sanforge-init), boot it in QEMU with
//! `sanforge run --until-ready`, and talk to its LUN from the host with libiscsi's
//! `iscsi-inq` and `iscsi-test-cu`.
//!
//! Needs the packages `.ci/setup` installs and a reachable Debian mirror (or a warm
//! `$SANFORGE_CACHE`). The first run builds the kernel (minutes); later runs reuse it.
//! Set SANFORGE_SKIP_E2E=1 to skip it during development (it says so when skipped).

mod common;

use common::vm::{cunit_summary, free_port, show, Vm};
use std::process::Command;

const TARGET: &str = "iqn.2026-11.org.example.sanforge:storage-node";
const INITIATOR: &str = "iqn.2026-11.org.example:initiator";

fn sanforge() -> Command {
    common::vm::sanforge_in_repo()
}

#[test]
fn default_recipe_builds_boots_and_serves_a_lun() {
    if common::skip_e2e("default_recipe_builds_boots_and_serves_a_lun") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("storage-node");
    let o = sanforge()
        .args(["build", "recipes/storage-node.toml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", show(&o));
    for f in [
        "vmlinuz",
        "initramfs.cpio.zst",
        "boot.ipxe",
        "manifest.json",
        "SHA256SUMS",
    ] {
        assert!(out.join(f).is_file(), "{f} missing from {}", out.display());
    }
    assert!(out.join("logs").is_dir(), "no per-stage logs");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let modules: Vec<&str> = manifest["modules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    assert!(
        modules
            .iter()
            .any(|m| m.ends_with("iscsi_target_mod.ko") || m.ends_with("iscsi_target_mod.ko.xz")),
        "manifest modules: {modules:?}"
    );
    assert!(manifest["kernel"]["release"]
        .as_str()
        .unwrap()
        .ends_with("-sanforge"));
    assert_eq!(manifest["packages"][0]["name"], "busybox-static");

    // A second build with nothing changed runs no stage.
    let o = sanforge()
        .args(["build", "recipes/storage-node.toml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "rebuild failed: {}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("ran: nothing"),
        "second build re-ran stages: {}",
        show(&o)
    );

    let port = free_port();
    let _vm = Vm(out.clone());
    let o = sanforge()
        .arg("run")
        .arg(&out)
        .args([
            "--until-ready",
            "--quiet",
            "--timeout",
            "180",
            "--iscsi-port",
            &port.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the image did not reach ready: {}",
        show(&o)
    );
    let console =
        std::fs::read_to_string(out.with_file_name("storage-node.run").join("console.log"))
            .unwrap_or_default();
    assert!(
        !console.contains("degraded"),
        "init is degraded:\n{console}"
    );
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));

    let url = format!("iscsi://127.0.0.1:{port}/{TARGET}/0");
    let inq = Command::new("iscsi-inq")
        .args(["-i", INITIATOR, &url])
        .output()
        .expect("iscsi-inq (libiscsi-bin) is not installed");
    let inq_text = String::from_utf8_lossy(&inq.stdout);
    assert!(
        inq.status.success(),
        "iscsi-inq failed: {}\nconsole:\n{console}",
        show(&inq)
    );
    assert!(inq_text.contains("DIRECT_ACCESS"), "iscsi-inq: {inq_text}");

    // An initiator without an ACL is refused.
    let denied = Command::new("iscsi-inq")
        .args(["-i", "iqn.2026-11.org.example:stranger", &url])
        .output()
        .unwrap();
    assert!(
        !denied.status.success(),
        "an initiator without an ACL got in: {}",
        show(&denied)
    );

    for family in [
        "SCSI.TestUnitReady",
        "SCSI.Inquiry",
        "SCSI.ReadCapacity10",
        "SCSI.ReadCapacity16",
        "SCSI.Read10",
        "SCSI.Write10",
        "SCSI.Read16",
        "SCSI.Write16",
    ] {
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

    // The same bundle, booted the PXE way: the firmware's iPXE fetches boot.ipxe, the
    // kernel and the initramfs over TFTP from the output directory.
    drop(_vm);
    let port = free_port();
    let _vm = Vm(out.clone());
    let o = sanforge()
        .arg("run")
        .arg(&out)
        .args([
            "--boot",
            "pxe",
            "--until-ready",
            "--quiet",
            "--timeout",
            "180",
            "--iscsi-port",
            &port.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the PXE boot did not reach ready: {}",
        show(&o)
    );
    let url = format!("iscsi://127.0.0.1:{port}/{TARGET}/0");
    let inq = Command::new("iscsi-inq")
        .args(["-i", INITIATOR, &url])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&inq.stdout).contains("DIRECT_ACCESS"),
        "PXE-booted node: {}",
        show(&inq)
    );
}

#[test]
fn cunit_summary_parses_the_run_summary() {
    let text = "Run Summary:    Type  Total    Ran Passed Failed Inactive\n              suites      1      1    n/a      0        0\n               tests      6      6      5      1        0\n";
    assert_eq!(cunit_summary(text), Some((6, 5, 1)));
    assert_eq!(cunit_summary("nothing"), None);
}
