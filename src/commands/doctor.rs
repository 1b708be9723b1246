//! `sanforge doctor`: the host tools a recipe needs, which are missing, and the Debian
//! packages that provide them.

use crate::util::tools::{which, TOOLS};

/// One row of the doctor's table.
pub struct Check {
    pub program: &'static str,
    pub package: &'static str,
    pub purpose: &'static str,
    pub found: Option<std::path::PathBuf>,
}

/// Checks every tool sanforge may run.
pub fn check() -> Vec<Check> {
    TOOLS
        .iter()
        .map(|(program, package, purpose)| Check {
            program,
            package,
            purpose,
            found: which(program),
        })
        .collect()
}

/// The doctor's report and whether anything is missing.
pub fn report(checks: &[Check]) -> (String, bool) {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<20} {:<16} {:<8} {}\n",
        "TOOL", "PACKAGE", "STATUS", "NEEDED FOR"
    ));
    for c in checks {
        let status = if c.found.is_some() { "ok" } else { "MISSING" };
        out.push_str(&format!(
            "{:<20} {:<16} {:<8} {}\n",
            c.program, c.package, status, c.purpose
        ));
    }
    let mut missing: Vec<&str> = checks
        .iter()
        .filter(|c| c.found.is_none())
        .map(|c| c.package)
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        out.push_str("\nevery tool is installed\n");
    } else {
        out.push_str(&format!(
            "\nmissing: install them with\n  apt-get install {}\n",
            missing.join(" ")
        ));
    }
    (out, !missing.is_empty())
}
