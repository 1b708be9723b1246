//! SCSI conformance as regression tests: libiscsi's `iscsi-test-cu` against the image's
//! LUN, each stack held to its committed expected-failure list
//! (`tests/conformance/STACK.expected`, harness in `common::conformance`).
//!
//! * `lio_image_conformance_subset`: the default LIO image (recipes/storage-node.toml)
//!   built, booted under QEMU and run through the families in [`LIO_SUBSET`], in
//!   `cargo test` (SANFORGE_SKIP_E2E=1 skips it, saying so).
//! * `lio_image_conformance_full`: the whole suite (615 tests, every family), too slow
//!   under TCG for `cargo test`: `benches/conformance.sh` runs it and prints the figures.
//! * `scst_image_conformance_full`: the whole suite against the real SCST 3.10 image
//!   (recipes/scst-fc-node.toml built from `../shared/upstream/scst-3.10.tar.gz` or
//!   `SANFORGE_UPSTREAM=DIR`, as `tests/scst_real.rs` does; a vdisk_fileio LUN on a
//!   virtio disk, `nv_cache 1`). Ignored in `cargo test` (minutes under TCG), with the
//!   missing archive as the reason where it is not there: `benches/conformance.sh
//!   --scst` runs it.
//! * `scst_trunk_image_conformance_full`: the same against the image built from SCST
//!   trunk (`scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz`, build mode `perf`),
//!   held to `tests/conformance/scst-trunk.expected`: `benches/conformance.sh
//!   --scst-trunk` runs it.
//!
//! The rest are unit tests of the harness: CUnit's XML report, the expected-failure list
//! and the verdict.

mod common;

use common::conformance::{
    judge, listing, merge, parse_listing, parse_report, plan, run_suite, Expected, Initiators,
    Outcome, Shown, Stack, SuiteReport, SuiteRun, LIO, SCST, SCST_TRUNK,
};
use common::scstimage::{self, project_for, Tree};
use common::vm::{free_port, sanforge_in_repo, show, Vm};

const LIO_TARGET: &str = "iqn.2026-11.org.example.sanforge:storage-node";
const INITIATOR: &str = "iqn.2026-11.org.example:initiator";
/// How the image tests log in: the default node config's initiator.
const IMAGE: Initiators = Initiators {
    first: INITIATOR,
    second: None,
};

/// What `cargo test` runs against the LIO image: every SCSI command family the suite
/// has for block devices, once (the `SCSI` family; `ALL` repeats it with iSCSI's).
const LIO_SUBSET: &[&str] = &["SCSI"];

/// Builds the default recipe into a temporary directory and boots it; returns the
/// directory (kept alive), the VM guard and the forwarded iSCSI port.
fn boot_default_image() -> (tempfile::TempDir, Vm, u16) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("storage-node");
    let o = sanforge_in_repo()
        .args(["build", "recipes/storage-node.toml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", show(&o));
    let port = free_port();
    let vm = Vm(out.clone());
    let o = sanforge_in_repo()
        .arg("run")
        .arg(&out)
        .args([
            "--until-ready",
            "--quiet",
            "--timeout",
            "240",
            "--iscsi-port",
        ])
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the image did not reach ready: {}",
        show(&o)
    );
    (tmp, vm, port)
}

/// Runs `selection` (empty: the whole suite) against `url` and holds it to `stack`'s
/// list; prints the verdict and the wall time, fails on any unexpected failure.
fn conformance(stack: &Stack, url: &str, initiators: Initiators<'_>, selection: &[&str]) {
    let expected = stack.expected().unwrap_or_else(|e| panic!("{e}"));
    let listing = listing().unwrap_or_else(|e| panic!("{e}"));
    let run = run_suite(url, initiators, selection).unwrap_or_else(|e| panic!("{e}"));
    let verdict = judge(&run, &expected, &listing);
    let shown = Shown(stack, &verdict).to_string();
    let times: Vec<String> = run
        .times
        .iter()
        .map(|(s, t)| format!("{s} {:.1}s", t.as_secs_f64()))
        .collect();
    let summary = format!(
        "{shown}  iscsi-test-cu wall time {:.1}s ({})",
        run.wall().as_secs_f64(),
        times.join(", ")
    );
    // Printed to the process's stderr so that `cargo test` shows it even on success.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{summary}");
    assert!(verdict.total > 0, "no test ran");
    assert!(verdict.ok(), "{summary}");
}

#[test]
fn lio_image_conformance_subset() {
    if common::skip_e2e("lio_image_conformance_subset") {
        return;
    }
    let (_tmp, _vm, port) = boot_default_image();
    let url = format!("iscsi://127.0.0.1:{port}/{LIO_TARGET}/0");
    conformance(&LIO, &url, IMAGE, LIO_SUBSET);
}

#[test]
#[ignore = "the whole libiscsi suite under QEMU TCG takes minutes: benches/conformance.sh runs it"]
fn lio_image_conformance_full() {
    let (_tmp, _vm, port) = boot_default_image();
    let url = format!("iscsi://127.0.0.1:{port}/{LIO_TARGET}/0");
    conformance(&LIO, &url, IMAGE, &[]);
}

/// The real SCST image's iSCSI target (its node config as `common::scstimage` sets it
/// up, with the LUN below).
const SCST_TARGET: &str = "iqn.2026-11.org.example.sanforge:scst-conformance";
/// The LUN's size: the suite writes all over it (`--dataloss`).
const SCST_LUN_BYTES: u64 = 64 << 20;

/// Builds the flagship recipe from `tree` (SCST 3.10 as committed, or trunk in perf
/// mode) in a temporary copy of the project whose scst.conf serves one vdisk_fileio
/// LUN over iSCSI: a 64 MiB host file attached as the guest's virtio disk `/dev/vda`,
/// `nv_cache 1` (as the issue measured); boots it under TCG; returns the directory
/// (kept alive), the VM guard and the forwarded iSCSI port.
fn boot_scst_image(tree: Tree) -> (tempfile::TempDir, Vm, u16) {
    let conf = format!("HANDLER vdisk_fileio {{\n\tDEVICE disk0 {{\n\t\tfilename /dev/vda\n\t\tnv_cache 1\n\t\tt10_dev_id sanforge-disk0\n\t}}\n}}\n\nTARGET_DRIVER iscsi {{\n\tenabled 1\n\n\tTARGET {SCST_TARGET} {{\n\t\tLUN 0 disk0\n\t\tenabled 1\n\t}}\n}}\n");
    let (tmp, _hash) = project_for(tree, &conf);
    let root = tmp.path();
    let o = scstimage::sanforge(root)
        .args(["build", scstimage::RECIPE])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}: build failed: {}",
        tree.label(),
        show(&o)
    );
    let out = root.join("out/scst-fc-node");
    let disk = root.join("lun0.img");
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(SCST_LUN_BYTES))
        .unwrap();
    let port = free_port();
    let vm = Vm(out.clone());
    let o = scstimage::sanforge(root)
        .arg("run")
        .arg(&out)
        .args([
            "--until-ready",
            "--quiet",
            "--accel",
            "tcg",
            "--timeout",
            "300",
            "--iscsi-port",
        ])
        .arg(port.to_string())
        .arg("--disk")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the SCST image ({}) did not reach ready: {}",
        tree.label(),
        show(&o)
    );
    (tmp, vm, port)
}

#[test]
#[cfg_attr(
    not(sanforge_scst_3_10),
    ignore = "needs the SCST 3.10 archive: ../shared/upstream/scst-3.10.tar.gz beside the project, or SANFORGE_UPSTREAM=DIR (looked for when the tests are compiled)"
)]
#[cfg_attr(
    sanforge_scst_3_10,
    ignore = "the whole libiscsi suite under QEMU TCG takes minutes: benches/conformance.sh --scst runs it"
)]
fn scst_image_conformance_full() {
    let (_tmp, _vm, port) = boot_scst_image(Tree::Release);
    let url = format!("iscsi://127.0.0.1:{port}/{SCST_TARGET}/0");
    conformance(&SCST, &url, IMAGE, &[]);
}

#[test]
#[cfg_attr(
    not(sanforge_scst_trunk),
    ignore = "needs the SCST trunk archive: ../shared/upstream/scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz beside the project, or SANFORGE_UPSTREAM=DIR (looked for when the tests are compiled)"
)]
#[cfg_attr(
    sanforge_scst_trunk,
    ignore = "an SCST trunk build (perf mode) and the whole libiscsi suite under QEMU TCG take minutes: benches/conformance.sh --scst-trunk runs it"
)]
fn scst_trunk_image_conformance_full() {
    let (_tmp, _vm, port) = boot_scst_image(Tree::TrunkPerf);
    let url = format!("iscsi://127.0.0.1:{port}/{SCST_TARGET}/0");
    conformance(&SCST_TRUNK, &url, IMAGE, &[]);
}

#[test]
#[ignore = "measures a target already running: SANFORGE_CONFORMANCE_URL=iscsi://HOST:PORT/IQN/LUN [SANFORGE_CONFORMANCE_STACK=lio|scst] [SANFORGE_CONFORMANCE_TESTS=SCSI.Read10,iSCSI] [SANFORGE_CONFORMANCE_INITIATOR=IQN] [SANFORGE_CONFORMANCE_INITIATOR_2=IQN]"]
fn conformance_of_a_running_target() {
    // For measuring by hand (a target configured with targetcli, another image, a
    // second LUN): the same run and verdict as the image tests.
    let url = std::env::var("SANFORGE_CONFORMANCE_URL")
        .expect("SANFORGE_CONFORMANCE_URL is not set: the iscsi:// URL of the LUN to test");
    let stack = match std::env::var("SANFORGE_CONFORMANCE_STACK").as_deref() {
        Ok("scst") => SCST,
        Ok("lio") | Err(_) => LIO,
        Ok(other) => panic!("SANFORGE_CONFORMANCE_STACK={other}: expected lio or scst"),
    };
    let tests = std::env::var("SANFORGE_CONFORMANCE_TESTS").unwrap_or_default();
    let selection: Vec<&str> = tests.split(',').filter(|t| !t.is_empty()).collect();
    let first =
        std::env::var("SANFORGE_CONFORMANCE_INITIATOR").unwrap_or_else(|_| INITIATOR.to_string());
    let second = std::env::var("SANFORGE_CONFORMANCE_INITIATOR_2").ok();
    let initiators = Initiators {
        first: &first,
        second: second.as_deref(),
    };
    conformance(&stack, &url, initiators, &selection);
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// A CUnit 2.1-3 report the way `iscsi-test-cu -x` writes it: padded names, a test
/// with two failed assertions (two records), an escaped condition, a suite whose
/// set-up failed.
const REPORT: &str = r#"<?xml version="1.0" ?>
<?xml-stylesheet type="text/xsl" href="CUnit-Run.xsl" ?>
<!DOCTYPE CUNIT_TEST_RUN_REPORT SYSTEM "CUnit-Run.dtd">
<CUNIT_TEST_RUN_REPORT>
  <CUNIT_HEADER/>
  <CUNIT_RESULT_LISTING>
    <CUNIT_RUN_SUITE>
      <CUNIT_RUN_SUITE_SUCCESS>
        <SUITE_NAME> Read10 </SUITE_NAME>
        <CUNIT_RUN_TEST_RECORD>
          <CUNIT_RUN_TEST_SUCCESS>
            <TEST_NAME> Simple </TEST_NAME>
          </CUNIT_RUN_TEST_SUCCESS>
        </CUNIT_RUN_TEST_RECORD>
        <CUNIT_RUN_TEST_RECORD>
          <CUNIT_RUN_TEST_FAILURE>
            <TEST_NAME> DpoFua </TEST_NAME>
            <FILE_NAME> test_read10_dpofua.c </FILE_NAME>
            <LINE_NUMBER> 61 </LINE_NUMBER>
            <CONDITION> ret == 0 &amp;&amp; dpofua </CONDITION>
          </CUNIT_RUN_TEST_FAILURE>
        </CUNIT_RUN_TEST_RECORD>
        <CUNIT_RUN_TEST_RECORD>
          <CUNIT_RUN_TEST_FAILURE>
            <TEST_NAME> DpoFua </TEST_NAME>
            <FILE_NAME> test_read10_dpofua.c </FILE_NAME>
            <LINE_NUMBER> 88 </LINE_NUMBER>
            <CONDITION> ret &lt; 0 </CONDITION>
          </CUNIT_RUN_TEST_FAILURE>
        </CUNIT_RUN_TEST_RECORD>
      </CUNIT_RUN_SUITE_SUCCESS>
    </CUNIT_RUN_SUITE>
    <CUNIT_RUN_SUITE>
      <CUNIT_RUN_SUITE_FAILURE>
        <SUITE_NAME> Unmap </SUITE_NAME>
        <FAILURE_REASON> Suite Initialization Failed </FAILURE_REASON>
      </CUNIT_RUN_SUITE_FAILURE>
    </CUNIT_RUN_SUITE>
  </CUNIT_RESULT_LISTING>
  <CUNIT_RUN_SUMMARY>
    <CUNIT_RUN_SUMMARY_RECORD>
      <TYPE> Suites </TYPE> <TOTAL> 2 </TOTAL> <RUN> 2 </RUN> <SUCCEEDED> - NA - </SUCCEEDED> <FAILED> 1 </FAILED> <INACTIVE> 0 </INACTIVE>
    </CUNIT_RUN_SUMMARY_RECORD>
    <CUNIT_RUN_SUMMARY_RECORD>
      <TYPE> Test Cases </TYPE> <TOTAL> 4 </TOTAL> <RUN> 2 </RUN> <SUCCEEDED> 1 </SUCCEEDED> <FAILED> 1 </FAILED> <INACTIVE> 0 </INACTIVE>
    </CUNIT_RUN_SUMMARY_RECORD>
    <CUNIT_RUN_SUMMARY_RECORD>
      <TYPE> Assertions </TYPE> <TOTAL> 9 </TOTAL> <RUN> 9 </RUN> <SUCCEEDED> 7 </SUCCEEDED> <FAILED> 2 </FAILED> <INACTIVE> n/a </INACTIVE>
    </CUNIT_RUN_SUMMARY_RECORD>
  </CUNIT_RUN_SUMMARY>
  <CUNIT_FOOTER> File Generated By CUnit v2.1-3 - Sat Dec  5 07:30:00 2026
 </CUNIT_FOOTER>
</CUNIT_TEST_RUN_REPORT>
"#;

const LISTING: &str = "ALL\nALL.Read10\nALL.Read10.Simple\nALL.Read10.DpoFua\nSCSI\nSCSI.Read10\nSCSI.Read10.Simple\nSCSI.Read10.DpoFua\nSCSI.Unmap\nSCSI.Unmap.Simple\nSCSI.Unmap.ZeroBlocks\niSCSI\niSCSI.iSCSITMF.AbortTaskSimpleAsync\n";

#[test]
fn report_is_parsed_into_one_outcome_per_test() {
    let r = parse_report(REPORT).unwrap();
    assert_eq!(r.summary, (2, 1));
    assert_eq!(
        r.suites,
        vec![
            SuiteReport {
                name: "Read10".into(),
                result: Ok(vec![
                    ("Simple".to_string(), Outcome::Passed),
                    (
                        "DpoFua".to_string(),
                        Outcome::Failed(vec![
                            "test_read10_dpofua.c:61: ret == 0 && dpofua".to_string(),
                            "test_read10_dpofua.c:88: ret < 0".to_string()
                        ])
                    ),
                ])
            },
            SuiteReport {
                name: "Unmap".into(),
                result: Err("Suite Initialization Failed".into())
            }
        ]
    );
}

#[test]
fn a_report_cut_short_or_disagreeing_with_its_summary_is_an_error() {
    let cut = &REPORT[..REPORT.find("<CUNIT_RUN_SUMMARY>").unwrap()];
    let e = parse_report(cut).unwrap_err();
    assert!(e.contains("not a complete XML document"), "{e}");
    let no_summary = REPORT.replace(
        &REPORT
            [REPORT.find("<CUNIT_RUN_SUMMARY>").unwrap()..REPORT.find("<CUNIT_FOOTER>").unwrap()],
        "",
    );
    let e = parse_report(&no_summary).unwrap_err();
    assert!(e.contains("no <CUNIT_RUN_SUMMARY>"), "{e}");
    let lying = REPORT.replace(
        "<RUN> 2 </RUN> <SUCCEEDED> 1",
        "<RUN> 3 </RUN> <SUCCEEDED> 2",
    );
    let e = parse_report(&lying).unwrap_err();
    assert!(
        e.contains("lists 2 tests (1 failed) but its summary says 3 ran (1 failed)"),
        "{e}"
    );
    let e = parse_report("<testsuites/>").unwrap_err();
    assert!(e.contains("expected <CUNIT_TEST_RUN_REPORT>"), "{e}");
}

#[test]
fn merge_names_tests_by_family_in_run_order_and_counts_missing_ones_as_not_run() {
    let listing = parse_listing(LISTING);
    assert_eq!(listing.len(), 7);
    let wanted = plan(&listing, Some("SCSI"));
    assert_eq!(wanted.len(), 4);
    let mut run = SuiteRun::default();
    merge(&mut run, &parse_report(REPORT).unwrap(), &wanted).unwrap();
    assert_eq!(run.total(), 4);
    assert_eq!(run.passed(), 1);
    assert_eq!(run.results["SCSI.Read10.Simple"], Outcome::Passed);
    assert!(matches!(&run.results["SCSI.Read10.DpoFua"], Outcome::Failed(w) if w.len() == 2));
    assert_eq!(
        run.results["SCSI.Unmap.Simple"],
        Outcome::NotRun("suite set-up failed: Suite Initialization Failed".into())
    );
    // The whole suite in one run: a suite of the report is the next of that name in
    // listing order (ALL's Read10 here), a suite the report lacks did not run.
    let mut run = SuiteRun::default();
    merge(
        &mut run,
        &parse_report(REPORT).unwrap(),
        &plan(&listing, None),
    )
    .unwrap();
    assert_eq!(run.total(), 7);
    assert_eq!(run.results["ALL.Read10.Simple"], Outcome::Passed);
    assert!(matches!(
        run.results["ALL.Read10.DpoFua"],
        Outcome::Failed(_)
    ));
    assert_eq!(
        run.results["SCSI.Read10.Simple"],
        Outcome::NotRun("no result in the report".into())
    );
    assert_eq!(
        run.results["SCSI.Unmap.ZeroBlocks"],
        Outcome::NotRun("suite set-up failed: Suite Initialization Failed".into())
    );
    // A report for tests the invocation did not select is not silently taken.
    let e = merge(
        &mut SuiteRun::default(),
        &parse_report(REPORT).unwrap(),
        &["SCSI.Read10.Simple".to_string()],
    )
    .unwrap_err();
    assert!(e.contains("Read10.DpoFua"), "{e}");
    // Selections by suite and by test.
    assert_eq!(
        plan(&listing, Some("SCSI.Unmap")),
        vec!["SCSI.Unmap.Simple", "SCSI.Unmap.ZeroBlocks"]
    );
    assert_eq!(
        plan(&listing, Some("iSCSI.iSCSITMF.AbortTaskSimpleAsync")),
        vec!["iSCSI.iSCSITMF.AbortTaskSimpleAsync"]
    );
    assert!(plan(&listing, Some("SCSI.Read")).is_empty());
}

#[test]
fn expected_failure_lists_are_checked_line_by_line() {
    let e = Expected::parse(
        "x.expected",
        "# comment\n\nSCSI.Read10.DpoFua   LIO accepts DPO/FUA without WCE  # trailing\n",
    )
    .unwrap();
    assert_eq!(
        e.tests["SCSI.Read10.DpoFua"],
        (3, "LIO accepts DPO/FUA without WCE".to_string())
    );
    for (text, want) in [
        (
            "SCSI.Read10\n",
            "x.expected:1: `SCSI.Read10` is not a test name",
        ),
        (
            "SCSI..Simple why\n",
            "x.expected:1: `SCSI..Simple` is not a test name",
        ),
        (
            "\nSCSI.Read10.Simple\n",
            "x.expected:2: `SCSI.Read10.Simple` has no reason",
        ),
        (
            "SCSI.Read10.Simple a\nSCSI.Read10.Simple b\n",
            "x.expected:2: `SCSI.Read10.Simple` is listed twice (first on line 1)",
        ),
    ] {
        let err = Expected::parse("x.expected", text).unwrap_err();
        assert!(err.starts_with(want), "{text:?}: {err}");
    }
}

#[test]
fn the_verdict_fails_on_unlisted_failures_and_reports_listed_passes() {
    let listing = parse_listing(LISTING);
    let mut run = SuiteRun::default();
    let wanted = plan(&listing, Some("SCSI"));
    merge(&mut run, &parse_report(REPORT).unwrap(), &wanted).unwrap();
    let expected = Expected::parse(
        "lio.expected",
        "SCSI.Read10.DpoFua  why\nSCSI.Read10.Simple  was broken\nSCSI.Unmap.Simple  no thin provisioning\nSCSI.Nope.Nope  typo\n",
    )
    .unwrap();
    let v = judge(&run, &expected, &listing);
    assert_eq!((v.passed, v.total, v.expected_failures), (1, 4, 2));
    assert_eq!(v.unexpected.len(), 1);
    assert_eq!(v.unexpected[0].0, "SCSI.Unmap.ZeroBlocks");
    assert_eq!(v.now_passing, vec![("SCSI.Read10.Simple".to_string(), 2)]);
    assert_eq!(
        v.unknown,
        vec!["lio.expected:4: SCSI.Nope.Nope".to_string()]
    );
    assert!(!v.ok());
    let text = Shown(&LIO, &v).to_string();
    assert!(
        text.starts_with("lio: 1/4 passed, 3 failed (2 expected, 1 unexpected)"),
        "{text}"
    );
    assert!(
        text.contains("UNEXPECTED FAILURE SCSI.Unmap.ZeroBlocks"),
        "{text}"
    );
    assert!(text.contains("\nSCSI.Unmap.ZeroBlocks  REASON\n"), "{text}");
    assert!(text.contains("NOW PASSES SCSI.Read10.Simple"), "{text}");
    // Listing every failure, and nothing unknown, is a pass.
    let expected = Expected::parse(
        "lio.expected",
        "SCSI.Read10.DpoFua a\nSCSI.Unmap.Simple b\nSCSI.Unmap.ZeroBlocks c\n",
    )
    .unwrap();
    assert!(judge(&run, &expected, &listing).ok());
}

#[test]
fn committed_lists_are_valid_and_name_only_tests_libiscsi_has() {
    let listing = listing().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        listing.len() >= 600,
        "iscsi-test-cu -l lists {} tests",
        listing.len()
    );
    for stack in [LIO, SCST] {
        let e = stack.expected().unwrap_or_else(|e| panic!("{e}"));
        let unknown = e.unknown(&listing);
        assert!(
            unknown.is_empty(),
            "not tests of iscsi-test-cu -l: {unknown:?}"
        );
    }
}
