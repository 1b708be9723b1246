//! SCSI conformance as a regression test: libiscsi's whole `iscsi-test-cu` suite run
//! against a booted image's LUN, held to a committed list of expected failures.
//!
//! The harness knows nothing of the target stack: a [`Stack`] names its expected-failure
//! file, and [`run_suite`] talks to any `iscsi://` URL. The LIO image and the SCST
//! image each have their own list (`tests/conformance/*.expected`).
//!
//! How results are read: `iscsi-test-cu -x` writes CUnit's XML report
//! (`CUnitAutomated-Results.xml`, in its working directory), which this module parses
//! with a real XML parser and checks against the run summary in the same file. The
//! report names suites without their family (`Read10`, whether it ran as
//! `SCSI.Read10` or `ALL.Read10`), so each family runs in its own invocation and its
//! tests are named `FAMILY.SUITE.TEST`, the names `iscsi-test-cu -l` prints. Every
//! listed test of a selected family must have a result: a test without one (the run
//! died, a suite's set-up failed) counts as failed, with the reason.
//!
//! The expected-failure file: one test per line, its full name, then why it fails (a
//! feature the stack does not implement, or a libiscsi expectation the stack disagrees
//! with). `#` starts a comment. A failure not on the list fails the test; a listed test
//! that passes is reported so the list can shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A target stack whose image is held to its own expected-failure list.
#[derive(Debug, Clone, Copy)]
pub struct Stack {
    pub name: &'static str,
    /// The expected-failure file, relative to the repository.
    pub expected: &'static str,
}

pub const LIO: Stack = Stack {
    name: "lio",
    expected: "tests/conformance/lio.expected",
};

pub const SCST: Stack = Stack {
    name: "scst",
    expected: "tests/conformance/scst.expected",
};

/// The real SCST image built from trunk (build mode perf).
pub const SCST_TRUNK: Stack = Stack {
    name: "scst-trunk",
    expected: "tests/conformance/scst-trunk.expected",
};

impl Stack {
    pub fn expected_path(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(self.expected)
    }

    /// Loads and validates the stack's expected-failure file.
    pub fn expected(&self) -> Result<Expected, String> {
        let path = self.expected_path();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        Expected::parse(self.expected, &text)
    }
}

// ---------------------------------------------------------------------------
// The listing
// ---------------------------------------------------------------------------

/// Every test `iscsi-test-cu -l` lists, as `FAMILY.SUITE.TEST`, in its order.
pub fn listing() -> Result<Vec<String>, String> {
    let o = Command::new("iscsi-test-cu")
        .arg("-l")
        .output()
        .map_err(|e| {
            format!("iscsi-test-cu -l: {e} (package libiscsi-bin, .ci/setup installs it)")
        })?;
    if !o.status.success() {
        return Err(format!(
            "iscsi-test-cu -l: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let tests = parse_listing(&String::from_utf8_lossy(&o.stdout));
    if tests.is_empty() {
        return Err("iscsi-test-cu -l listed no test".into());
    }
    Ok(tests)
}

/// The `FAMILY.SUITE.TEST` lines of a listing (families and suites alone are skipped).
pub fn parse_listing(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.split('.').count() == 3 && l.split('.').all(|p| !p.is_empty()))
        .map(str::to_string)
        .collect()
}

/// The families of a listing, in order.
pub fn families(listing: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in listing {
        let f = t.split('.').next().unwrap_or_default();
        if !out.iter().any(|x| x == f) {
            out.push(f.to_string());
        }
    }
    out
}

/// Whether `test` (`FAMILY.SUITE.TEST`) is selected by `pattern` (`FAMILY`,
/// `FAMILY.SUITE` or a full name; no wildcards).
pub fn selects(pattern: &str, test: &str) -> bool {
    test == pattern || test.starts_with(&format!("{pattern}."))
}

// ---------------------------------------------------------------------------
// CUnit's XML report
// ---------------------------------------------------------------------------

/// What happened to one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Each failed assertion as `file:line: condition`.
    Failed(Vec<String>),
    /// It never ran: why.
    NotRun(String),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }
}

/// One suite of a report: its name, and its tests' outcomes in run order
/// (`(TEST, outcome)`) or why its set-up failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteReport {
    pub name: String,
    pub result: Result<Vec<(String, Outcome)>, String>,
}

/// A report: its suites in run order and the run summary's test counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub suites: Vec<SuiteReport>,
    /// "Test Cases" of the run summary: (run, failed).
    pub summary: (u32, u32),
}

impl Report {
    /// Every test that ran, `(SUITE.TEST, outcome)`, in run order.
    pub fn tests(&self) -> Vec<(String, &Outcome)> {
        self.suites
            .iter()
            .filter_map(|s| s.result.as_ref().ok().map(|t| (s, t)))
            .flat_map(|(s, t)| t.iter().map(move |(n, o)| (format!("{}.{n}", s.name), o)))
            .collect()
    }
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn text_of(n: roxmltree::Node<'_, '_>, tag: &str) -> Result<String, String> {
    let c = child(n, tag).ok_or_else(|| {
        format!(
            "<{}> at byte {} has no <{tag}>",
            n.tag_name().name(),
            n.range().start
        )
    })?;
    Ok(c.text().unwrap_or_default().trim().to_string())
}

fn count(s: &str) -> Option<u32> {
    s.trim().parse().ok()
}

/// Parses `CUnitAutomated-Results.xml`. A test that failed several assertions has one
/// record per assertion: they become one failed test. The per-test records must agree
/// with the run summary (tests run, tests failed): a report that disagrees, or has no
/// summary (the run died before the end), is an error.
pub fn parse_report(xml: &str) -> Result<Report, String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| format!("not a complete XML document: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name("CUNIT_TEST_RUN_REPORT") {
        return Err(format!(
            "root element is <{}>, expected <CUNIT_TEST_RUN_REPORT>",
            root.tag_name().name()
        ));
    }
    let listing = child(root, "CUNIT_RESULT_LISTING")
        .ok_or("no <CUNIT_RESULT_LISTING>: the run did not start")?;
    let mut r = Report::default();
    for suite in listing
        .children()
        .filter(|c| c.has_tag_name("CUNIT_RUN_SUITE"))
    {
        if let Some(f) = child(suite, "CUNIT_RUN_SUITE_FAILURE") {
            r.suites.push(SuiteReport {
                name: text_of(f, "SUITE_NAME")?,
                result: Err(text_of(f, "FAILURE_REASON")?),
            });
            continue;
        }
        let s = child(suite, "CUNIT_RUN_SUITE_SUCCESS").ok_or_else(|| {
            format!(
                "<CUNIT_RUN_SUITE> at byte {} holds neither a success nor a failure",
                suite.range().start
            )
        })?;
        let name = text_of(s, "SUITE_NAME")?;
        let mut tests: Vec<(String, Outcome)> = Vec::new();
        for rec in s
            .children()
            .filter(|c| c.has_tag_name("CUNIT_RUN_TEST_RECORD"))
        {
            if let Some(ok) = child(rec, "CUNIT_RUN_TEST_SUCCESS") {
                tests.push((text_of(ok, "TEST_NAME")?, Outcome::Passed));
            } else if let Some(f) = child(rec, "CUNIT_RUN_TEST_FAILURE") {
                let full = text_of(f, "TEST_NAME")?;
                let why = format!(
                    "{}:{}: {}",
                    text_of(f, "FILE_NAME")?,
                    text_of(f, "LINE_NUMBER")?,
                    text_of(f, "CONDITION")?
                );
                match tests.last_mut() {
                    Some((last, Outcome::Failed(whys))) if *last == full => whys.push(why),
                    _ => tests.push((full, Outcome::Failed(vec![why]))),
                }
            } else {
                return Err(format!(
                    "<CUNIT_RUN_TEST_RECORD> at byte {} holds neither a success nor a failure",
                    rec.range().start
                ));
            }
        }
        r.suites.push(SuiteReport {
            name,
            result: Ok(tests),
        });
    }
    let summary = child(root, "CUNIT_RUN_SUMMARY")
        .ok_or("no <CUNIT_RUN_SUMMARY>: the run stopped before its end")?;
    let cases = summary
        .children()
        .filter(|c| c.has_tag_name("CUNIT_RUN_SUMMARY_RECORD"))
        .find(|c| text_of(*c, "TYPE").is_ok_and(|t| t == "Test Cases"))
        .ok_or("the run summary has no \"Test Cases\" record")?;
    let run =
        count(&text_of(cases, "RUN")?).ok_or("the run summary's test count is not a number")?;
    let failed = count(&text_of(cases, "FAILED")?)
        .ok_or("the run summary's failure count is not a number")?;
    r.summary = (run, failed);
    let tests = r.tests();
    let seen = tests.len() as u32;
    let seen_failed = tests.iter().filter(|(_, o)| !o.passed()).count() as u32;
    if (seen, seen_failed) != (run, failed) {
        return Err(format!(
            "the report lists {seen} tests ({seen_failed} failed) but its summary says {run} ran ({failed} failed)"
        ));
    }
    Ok(r)
}

// ---------------------------------------------------------------------------
// Expected failures
// ---------------------------------------------------------------------------

/// A validated expected-failure list: test name → (line, reason).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub file: String,
    pub tests: BTreeMap<String, (usize, String)>,
}

impl Expected {
    /// Parses a list; errors name `file:line`, the value and what was expected.
    pub fn parse(file: &str, text: &str) -> Result<Expected, String> {
        let mut e = Expected {
            file: file.to_string(),
            tests: BTreeMap::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.split_once('#').map_or(raw, |(a, _)| a).trim();
            if l.is_empty() {
                continue;
            }
            let (name, reason) = match l.split_once(char::is_whitespace) {
                Some((n, r)) => (n, r.trim()),
                None => (l, ""),
            };
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(format!(
                    "{file}:{line}: `{name}` is not a test name: expected FAMILY.SUITE.TEST as `iscsi-test-cu -l` prints it"
                ));
            }
            if reason.is_empty() {
                return Err(format!(
                    "{file}:{line}: `{name}` has no reason: expected the test name, then why the stack fails it"
                ));
            }
            if let Some((first, _)) = e.tests.get(name) {
                return Err(format!(
                    "{file}:{line}: `{name}` is listed twice (first on line {first})"
                ));
            }
            e.tests.insert(name.to_string(), (line, reason.to_string()));
        }
        Ok(e)
    }

    /// Listed names that `listing` does not have, as `file:line: name` lines.
    pub fn unknown(&self, listing: &[String]) -> Vec<String> {
        let known: BTreeSet<&str> = listing.iter().map(String::as_str).collect();
        self.tests
            .iter()
            .filter(|(n, _)| !known.contains(n.as_str()))
            .map(|(n, (line, _))| format!("{}:{line}: {n}", self.file))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// A run and its verdict
// ---------------------------------------------------------------------------

/// The results of a run over some families: `FAMILY.SUITE.TEST` → outcome.
#[derive(Debug, Clone, Default)]
pub struct SuiteRun {
    pub results: BTreeMap<String, Outcome>,
    /// Wall time of each `iscsi-test-cu` invocation: (selection, time).
    pub times: Vec<(String, Duration)>,
}

impl SuiteRun {
    pub fn passed(&self) -> usize {
        self.results.values().filter(|o| o.passed()).count()
    }
    pub fn total(&self) -> usize {
        self.results.len()
    }
    pub fn wall(&self) -> Duration {
        self.times.iter().map(|(_, t)| *t).sum()
    }
}

/// Folds a report into `run`. The report names suites without their family, and the
/// same suite runs in several families (`SCSI.Read10`, `ALL.Read10`), so each suite of
/// the report is matched to the next block of `wanted` (the listed tests this
/// invocation selected, in listing order: the order iscsi-test-cu registers and CUnit
/// runs them) of a suite with that name. A wanted test without a result is `NotRun`
/// (with its suite's set-up failure when that is why); a suite or test of the report
/// that matches nothing left in `wanted` is an error.
pub fn merge(run: &mut SuiteRun, report: &Report, wanted: &[String]) -> Result<(), String> {
    let suite_of = |t: &str| -> (String, String) {
        let mut p = t.splitn(3, '.');
        let fam = p.next().unwrap_or_default().to_string();
        let suite = p.next().unwrap_or_default().to_string();
        (fam, suite)
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; wanted.len()];
    let mut next = 0usize;
    for s in &report.suites {
        let Some(start) = (next..wanted.len()).find(|&i| suite_of(&wanted[i]).1 == s.name) else {
            return Err(format!(
                "the report has suite {} where the selection (in iscsi-test-cu -l order) has no such suite left",
                s.name
            ));
        };
        let key = suite_of(&wanted[start]);
        let end = (start..wanted.len())
            .find(|&i| suite_of(&wanted[i]) != key)
            .unwrap_or(wanted.len());
        match &s.result {
            Err(why) => {
                for o in &mut outcomes[start..end] {
                    *o = Some(Outcome::NotRun(format!("suite set-up failed: {why}")));
                }
            }
            Ok(tests) => {
                for (test, outcome) in tests {
                    let full = format!("{}.{}.{test}", key.0, key.1);
                    let Some(i) = (start..end).find(|&i| wanted[i] == full) else {
                        return Err(format!(
                            "the report has a result for {full}, which the selection does not list"
                        ));
                    };
                    outcomes[i] = Some(outcome.clone());
                }
            }
        }
        next = end;
    }
    for (t, o) in wanted.iter().zip(outcomes) {
        let o = o.unwrap_or_else(|| Outcome::NotRun("no result in the report".to_string()));
        run.results.insert(t.clone(), o);
    }
    Ok(())
}

/// The tests of `listing` that `pattern` (see [`selects`]; `None`: every test) picks,
/// in listing order.
pub fn plan(listing: &[String], pattern: Option<&str>) -> Vec<String> {
    listing
        .iter()
        .filter(|t| pattern.is_none_or(|p| selects(p, t)))
        .cloned()
        .collect()
}

/// The initiator names a run logs in with: the first, and the second that libiscsi's
/// reservation tests log in with beside it (`None`: libiscsi's default name).
#[derive(Debug, Clone, Copy)]
pub struct Initiators<'a> {
    pub first: &'a str,
    pub second: Option<&'a str>,
}

/// Runs the tests `selection` picks (patterns `FAMILY`, `FAMILY.SUITE` or full names;
/// `[]`: the whole suite, as one run) with data-loss tests allowed, one
/// `iscsi-test-cu --xml` per pattern (iscsi-test-cu registers comma-separated patterns
/// last first), and collects every selected test's outcome.
pub fn run_suite(
    url: &str,
    initiators: Initiators<'_>,
    selection: &[&str],
) -> Result<SuiteRun, String> {
    let listing = listing()?;
    let patterns: Vec<Option<&str>> = if selection.is_empty() {
        vec![None]
    } else {
        selection.iter().map(|p| Some(*p)).collect()
    };
    let mut run = SuiteRun::default();
    for pattern in patterns {
        let wanted = plan(&listing, pattern);
        let what = pattern.unwrap_or("the whole suite");
        if wanted.is_empty() {
            return Err(format!("`{what}` selects no test of iscsi-test-cu -l"));
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let started = Instant::now();
        let mut cmd = Command::new("iscsi-test-cu");
        cmd.current_dir(dir.path()).args([
            "--xml",
            "--dataloss",
            "--initiator-name",
            initiators.first,
        ]);
        if let Some(second) = initiators.second {
            cmd.args(["--initiator-name-2", second]);
        }
        if let Some(p) = pattern {
            cmd.arg(format!("--test={p}"));
        }
        let o = cmd
            .arg(url)
            .output()
            .map_err(|e| format!("iscsi-test-cu: {e} (package libiscsi-bin)"))?;
        run.times.push((what.to_string(), started.elapsed()));
        let file = dir.path().join("CUnitAutomated-Results.xml");
        let tail = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        let xml = std::fs::read_to_string(&file).map_err(|e| {
            format!(
                "iscsi-test-cu ({what}) wrote no report ({e}); {}\n--- stdout (tail)\n{}\n--- stderr (tail)\n{}",
                o.status,
                tail(&o.stdout),
                tail(&o.stderr)
            )
        })?;
        let report = parse_report(&xml).map_err(|e| {
            format!(
                "{} of iscsi-test-cu ({what}): {e}; {}\n--- stderr (tail)\n{}",
                file.display(),
                o.status,
                tail(&o.stderr)
            )
        })?;
        merge(&mut run, &report, &wanted)?;
    }
    Ok(run)
}

/// A run held to an expected-failure list.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub passed: usize,
    pub total: usize,
    /// Failed, not on the list: (name, outcome).
    pub unexpected: Vec<(String, Outcome)>,
    /// On the list, failed as expected.
    pub expected_failures: usize,
    /// On the list, passed: (name, the list's line).
    pub now_passing: Vec<(String, usize)>,
    /// On the list, not a test `iscsi-test-cu -l` knows.
    pub unknown: Vec<String>,
    pub list_len: usize,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.unexpected.is_empty() && self.unknown.is_empty()
    }
}

pub fn judge(run: &SuiteRun, expected: &Expected, listing: &[String]) -> Verdict {
    let mut v = Verdict {
        passed: run.passed(),
        total: run.total(),
        unknown: expected.unknown(listing),
        list_len: expected.tests.len(),
        ..Default::default()
    };
    for (name, outcome) in &run.results {
        match (outcome.passed(), expected.tests.get(name)) {
            (false, None) => v.unexpected.push((name.clone(), outcome.clone())),
            (false, Some(_)) => v.expected_failures += 1,
            (true, Some((line, _))) => v.now_passing.push((name.clone(), *line)),
            (true, None) => {}
        }
    }
    v
}

/// Prints the verdict for `stack`: the counts, then each unexpected failure with its
/// failed assertions and a line ready to paste into the list, then each listed test
/// that now passes.
pub struct Shown<'a>(pub &'a Stack, pub &'a Verdict);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, v) = (self.0, self.1);
        writeln!(
            f,
            "{}: {}/{} passed, {} failed ({} expected, {} unexpected); {} lists {} tests",
            s.name,
            v.passed,
            v.total,
            v.total - v.passed,
            v.expected_failures,
            v.unexpected.len(),
            s.expected,
            v.list_len
        )?;
        for u in &v.unknown {
            writeln!(f, "  listed but not a test iscsi-test-cu knows: {u}")?;
        }
        for (name, o) in &v.unexpected {
            writeln!(f, "  UNEXPECTED FAILURE {name}")?;
            match o {
                Outcome::Failed(whys) => {
                    for w in whys {
                        writeln!(f, "      {w}")?;
                    }
                }
                Outcome::NotRun(why) => writeln!(f, "      not run: {why}")?,
                Outcome::Passed => {}
            }
        }
        if !v.unexpected.is_empty() {
            writeln!(
                f,
                "  if the stack is right to fail them, add to {} (then say why):",
                s.expected
            )?;
            for (name, _) in &v.unexpected {
                writeln!(f, "{name}  REASON")?;
            }
        }
        for (name, line) in &v.now_passing {
            writeln!(
                f,
                "  NOW PASSES {name} ({}:{line}): remove it from the list",
                s.expected
            )?;
        }
        Ok(())
    }
}
