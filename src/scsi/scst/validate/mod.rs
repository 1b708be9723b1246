//! Semantic checks of an `scst.conf` model, each tied to a line: what scstadmin would
//! refuse or warn about (reference §B11 `checkConfiguration`), what the kernel would
//! reject at apply time (§B10, §B12), and what scstadmin would silently get wrong
//! (duplicate sections replace each other, §B9).
//!
//! Files: this one (diagnostics, the entry point, globals), `values.rs` (names,
//! attributes and values against the catalog), `targets.rs` (drivers, targets, LUNs,
//! initiator groups), `handlers.rs` (handlers and their devices, ALUA groups).

use std::collections::HashMap;
use std::fmt;

use super::catalog;
use super::ScstConf;

mod handlers;
mod targets;
mod values;
use handlers::{check_alua_groups, check_handlers};
use targets::{check_drivers, check_wwpn};
use values::{check_attrs, check_bool, check_catalog, check_name, check_range, is_pattern};
pub use values::{is_wwpn, parse_uint, value_problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding. `line` is 0 for entries built in code rather than read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `LINE: error: message` (prefix it with the file name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev}: {}", self.line, self.message)
    }
}

#[derive(Default)]
struct Out(Vec<Diagnostic>);

impl Out {
    fn error(&mut self, line: usize, message: String) {
        self.0.push(Diagnostic {
            severity: Severity::Error,
            line,
            message,
        });
    }
    fn warn(&mut self, line: usize, message: String) {
        self.0.push(Diagnostic {
            severity: Severity::Warning,
            line,
            message,
        });
    }
}

/// Whether the device table knows a name.
struct Devices<'a> {
    by_name: HashMap<&'a str, (&'a str, usize)>,
}

/// Validates a parsed config. Errors make the config unusable; warnings are what
/// scstadmin would warn about.
pub fn validate(conf: &ScstConf) -> Vec<Diagnostic> {
    let mut o = Out::default();
    check_globals(&mut o, conf);
    let devs = check_handlers(&mut o, conf);
    let mut rel = RelIds::default();
    check_drivers(&mut o, conf, &devs, &mut rel);
    check_alua_groups(&mut o, conf, &devs, &mut rel);
    let mut v = o.0;
    v.sort_by_key(|d| d.line);
    v
}

/// Relative target port ids (id → target, line): unique across the whole config (every
/// node of a cluster), whether set on a target or on a target group's target.
#[derive(Default)]
struct RelIds(HashMap<u32, (String, usize)>);

impl RelIds {
    fn check(&mut self, o: &mut Out, target: &str, id: u32, line: usize) {
        match self.0.get(&id) {
            Some((t, first)) if t != target => o.error(line, format!("rel_tgt_id {id} of '{target}' is already used by '{t}' (line {first}); relative target port ids must be unique across all nodes")),
            Some(_) => {}
            None => {
                self.0.insert(id, (target.to_string(), line));
            }
        }
    }
}

/// Global and ALUA-level attributes.
fn check_globals(o: &mut Out, conf: &ScstConf) {
    check_attrs(o, "global", &conf.globals, &[], &[]);
    check_catalog(
        o,
        "global",
        "SCST",
        &conf.globals,
        &catalog::global_attr,
        true,
        &catalog::known_names(catalog::Level::Global, ""),
        &[],
    );
    check_attrs(o, "ALUA", &conf.alua, &[], &[]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::is_iscsi_name;

    #[test]
    fn names() {
        assert!(is_wwpn("21:00:00:24:ff:54:09:32"));
        assert!(!is_wwpn("21:00:00:24:ff:54:09"));
        assert!(!is_wwpn("21:00:00:24:ff:54:09:3g"));
        assert!(is_iscsi_name("iqn.2011-04.ru.domain:VM_STORAGE_1"));
        assert!(is_iscsi_name("eui.0123456789abcdef"));
        assert!(!is_iscsi_name("iqn.2011.ru.domain"));
        assert!(!is_iscsi_name("VM_STORAGE_1"));
    }
}
