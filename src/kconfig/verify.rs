//! Verification of the final `.config` that `make olddefconfig` left: every request
//! (the last one per option) must have survived and every forbidden option must be
//! unset. Kconfig drops or changes options silently, so each problem is reported with
//! what was asked, what it became, who asked, and — when the kernel source is at hand —
//! why ([`super::explain`]).
//!
//! Reads: the final `.config` text; the kernel source's `Kconfig*` files only when
//! something must be explained.

use super::dotconfig::{normalize_option, parse_config, parse_number};
use super::{KconfigIndex, Request};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// Whether a final value means "not set": absent, `n` or empty.
pub(super) fn is_unset(v: Option<&str>) -> bool {
    matches!(v, None | Some("n") | Some(""))
}

/// Whether a final value satisfies a requested one (`n` = unset; numbers compared by
/// value so that `0x10` matches `0x010`).
fn value_matches(want: &str, got: Option<&str>) -> bool {
    if want == "n" {
        return is_unset(got);
    }
    let Some(got) = got else { return false };
    if want == got {
        return true;
    }
    match (parse_number(want), parse_number(got)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Every way the final config differs from what was asked, one problem per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub problems: Vec<String>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl std::error::Error for VerifyError {}

/// Checks the final `.config` text: every request (the last one per option wins) must
/// hold, every forbidden option must be unset. When `kconfig_src` (the kernel source
/// root) is given, each problem says why Kconfig did what it did; an unreadable tree
/// only makes the explanations vaguer (a note says so).
pub fn verify(
    final_config: &str,
    requests: &[Request],
    forbid: &[String],
    kconfig_src: Option<&Path>,
) -> std::result::Result<(), VerifyError> {
    let cfg = parse_config(final_config);
    if first_problems(&cfg, requests, forbid).is_none() {
        return Ok(());
    }
    let (index, note) = match kconfig_src.map(KconfigIndex::build) {
        None => (None, None),
        Some(Ok(ix)) => (Some(ix), None),
        Some(Err(e)) => (None, Some(format!("note: no explanations: {e:#}"))),
    };
    let mut r = verify_with_index(final_config, requests, forbid, index.as_ref());
    if let (Err(err), Some(note)) = (&mut r, note) {
        err.problems.push(note);
    }
    r
}

/// Cheap pre-check: is there any problem at all (so the Kconfig index is built only
/// when something must be explained)?
fn first_problems(
    cfg: &BTreeMap<String, String>,
    requests: &[Request],
    forbid: &[String],
) -> Option<()> {
    let bad_req = effective(requests)
        .iter()
        .any(|r| !value_matches(&r.value, cfg.get(&r.option).map(String::as_str)));
    let bad_forbid = forbid
        .iter()
        .any(|f| !is_unset(cfg.get(&normalize_option(f)).map(String::as_str)));
    (bad_req || bad_forbid).then_some(())
}

/// The last request per option, in the order options were first requested.
fn effective(requests: &[Request]) -> Vec<&Request> {
    let mut pos: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<&Request> = Vec::new();
    for r in requests {
        match pos.get(r.option.as_str()) {
            Some(&i) => out[i] = r,
            None => {
                pos.insert(&r.option, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// [`verify`] with an index already built (or none).
pub fn verify_with_index(
    final_config: &str,
    requests: &[Request],
    forbid: &[String],
    index: Option<&KconfigIndex>,
) -> std::result::Result<(), VerifyError> {
    let cfg = parse_config(final_config);
    let mut problems = Vec::new();
    let reason = |option: &str, want: &str, got: Option<&str>| -> String {
        match index {
            Some(ix) => format!(": {}", ix.explain(option, want, got, &cfg)),
            None => String::new(),
        }
    };
    let forbidden: HashSet<String> = forbid.iter().map(|f| normalize_option(f)).collect();
    for r in effective(requests) {
        let got = cfg.get(&r.option).map(String::as_str);
        // A forbidden option asked unset is reported once, by the forbid check below.
        if value_matches(&r.value, got) || (r.value == "n" && forbidden.contains(&r.option)) {
            continue;
        }
        let head = format!("{}={} requested by {}", r.option, r.value, r.origin);
        let what = match got {
            _ if r.value == "n" => format!("is {}", got.unwrap_or("set")),
            g if is_unset(g) => "was dropped".to_string(),
            Some(g) => format!("became {g}"),
            None => "was dropped".to_string(),
        };
        problems.push(format!("{head} {what}{}", reason(&r.option, &r.value, got)));
    }
    for f in forbid {
        let option = normalize_option(f);
        let got = cfg.get(&option).map(String::as_str);
        if is_unset(got) {
            continue;
        }
        let conflict = effective(requests)
            .into_iter()
            .find(|r| r.option == option && r.value != "n")
            .map(|r| {
                format!(
                    " (it is also requested as {}={} by {})",
                    r.option, r.value, r.origin
                )
            })
            .unwrap_or_default();
        problems.push(format!(
            "{option} is forbidden by the recipe but is {}{}{conflict}",
            got.unwrap_or("set"),
            reason(&option, "n", got)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(VerifyError { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        assert!(value_matches("0x10", Some("0x0010")));
        assert!(value_matches("n", None));
        assert!(!value_matches("y", Some("m")));
    }
}
