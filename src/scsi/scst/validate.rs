//! Semantic checks of an `scst.conf` model, each tied to a line: what scstadmin would
//! refuse or warn about (reference §B11 `checkConfiguration`), what the kernel would
//! reject at apply time (§B10, §B12), and what scstadmin would silently get wrong
//! (duplicate sections replace each other, §B9).

use std::collections::HashMap;
use std::fmt;

use super::catalog;
use super::{Attr, IniGroup, Lun, ScstConf};
use crate::config::values::is_iscsi_name;

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

/// `xx:xx:xx:xx:xx:xx:xx:xx` (8 hex bytes; sysfs names are lower-case).
pub fn is_wwpn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 8
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_pattern(s: &str) -> bool {
    s.starts_with('!') || s.contains('*') || s.contains('?')
}

/// A character the config file or the sysfs interface cannot carry in a value.
fn bad_char(v: &str) -> Option<char> {
    v.chars()
        .find(|c| matches!(c, '{' | '}' | '"') || c.is_control() && *c != '\t')
}

fn show(c: char) -> String {
    match c {
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

/// Checks a name used as a word of a sysfs command or a path component.
fn check_name(o: &mut Out, what: &str, name: &str, line: usize) {
    if name.is_empty() {
        o.error(line, format!("{what} name is empty"));
    } else if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        o.error(
            line,
            format!(
                "{what} name '{}' contains {}, which sysfs commands cannot carry",
                name.escape_debug(),
                show(c)
            ),
        );
    } else if let Some(c) = bad_char(name) {
        o.error(
            line,
            format!(
                "{what} name '{name}' contains {}, which scst.conf cannot carry",
                show(c)
            ),
        );
    } else if name.contains('/') {
        o.error(line, format!("{what} name '{name}' contains '/'"));
    }
}

/// Checks every attribute: carriable characters, single values for plain attributes.
/// `params` are passed inside `p=v;` lists, which also forbid blanks, `=` and `;`.
fn check_attrs(o: &mut Out, what: &str, attrs: &[Attr], params: &[&str], dynamic: &[&str]) {
    let mut seen: HashMap<&str, (&str, usize)> = HashMap::new();
    for a in attrs {
        if let Some(c) = bad_char(&a.value) {
            o.error(
                a.line,
                format!(
                    "{what} attribute '{}' value '{}' contains {}, which scst.conf and sysfs cannot carry",
                    a.name,
                    shown(a).escape_debug(),
                    show(c)
                ),
            );
        } else if params.contains(&a.name.as_str())
            && a.value
                .chars()
                .any(|c| c.is_whitespace() || c == '=' || c == ';')
        {
            o.error(
                a.line,
                format!(
                    "{what} attribute '{}' is a creation parameter; its value '{}' cannot contain blanks, '=' or ';'",
                    a.name,
                    shown(a)
                ),
            );
        }
        if a.name.is_empty()
            || a.name
                .chars()
                .any(|c| c.is_whitespace() || c == '/' || c.is_control())
        {
            o.error(
                a.line,
                format!(
                    "{what} attribute name '{}' is not a valid sysfs file name",
                    a.name.escape_debug()
                ),
            );
        }
        if a.value.len() > 4000 {
            o.error(
                a.line,
                format!(
                    "{what} attribute '{}' value is longer than one sysfs write (4096 bytes)",
                    a.name
                ),
            );
        }
        if dynamic.contains(&a.name.as_str()) {
            continue;
        }
        match seen.get(a.name.as_str()) {
            Some((v, first)) if *v != a.value => o.error(
                a.line,
                format!(
                    "{what} attribute '{}' is set twice with different values (first on line {first})",
                    a.name
                ),
            ),
            _ => {
                seen.insert(&a.name, (&a.value, a.line));
            }
        }
    }
}

fn check_bool(o: &mut Out, attrs: &[Attr], name: &str) {
    for a in attrs.iter().filter(|a| a.name == name) {
        if a.value != "0" && a.value != "1" {
            o.error(
                a.line,
                format!("'{name}' must be 0 or 1, not '{}'", a.value),
            );
        }
    }
}

fn check_range(o: &mut Out, attrs: &[Attr], name: &str) -> Option<(u32, usize)> {
    let a = attrs.iter().find(|a| a.name == name)?;
    match parse_uint(&a.value) {
        Some(n) if (1..=65535).contains(&n) => u32::try_from(n).ok().map(|n| (n, a.line)),
        Some(_) | None if a.value.bytes().all(|b| b.is_ascii_digit()) && !a.value.is_empty() => {
            o.error(
                a.line,
                format!("'{name}' {} is out of range: expected 1 to 65535", a.value),
            );
            None
        }
        _ => {
            o.error(
                a.line,
                format!(
                    "'{name}' must be a number from 1 to 65535, not '{}'",
                    a.value
                ),
            );
            None
        }
    }
}

/// A value as a message may show it: the secret of a CHAP account redacted.
fn shown(a: &Attr) -> std::borrow::Cow<'_, str> {
    if crate::util::redact::is_scst_secret_attr(&a.name) {
        crate::util::redact::user_secret(&a.value)
    } else {
        std::borrow::Cow::Borrowed(&a.value)
    }
}

/// A number as `kstrtoul(…, 0)` reads it: decimal, `0x` hex or `0` octal.
pub fn parse_uint(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u64::from_str_radix(v.get(1..).unwrap_or(""), 8).ok()
    } else {
        v.parse().ok()
    }
}

/// A signed number as `kstrtol(…, 0)` reads it.
fn parse_int(v: &str) -> Option<i64> {
    let v = v.trim();
    match v.strip_prefix('-') {
        Some(rest) => parse_uint(rest)
            .and_then(|n| i64::try_from(n).ok())
            .map(|n| -n),
        None => parse_uint(v).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Whether `v` is written like a number at all (then a failed parse means too big).
fn looks_numeric(v: &str) -> bool {
    let v = v.trim().trim_start_matches('-');
    let digits = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .map(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
    digits.unwrap_or(!v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
}

/// Why `v` is not a value of `kind` (a phrase completing "value 'v' …"), if it is not.
/// Never quotes the secret of an account.
pub fn value_problem(kind: catalog::Value, v: &str) -> Option<String> {
    use catalog::Value as V;
    let range = |lo: String, hi: String| {
        if looks_numeric(v) {
            Some(format!("is out of range: expected {lo} to {hi}"))
        } else {
            Some(format!(
                "is not a number: expected {lo} to {hi} (decimal, or 0x… hex)"
            ))
        }
    };
    match kind {
        V::Bool => (v != "0" && v != "1").then(|| "must be 0 or 1".to_string()),
        V::Uint(lo, hi) => match parse_uint(v) {
            Some(n) if (lo..=hi).contains(&n) => None,
            _ => range(lo.to_string(), hi.to_string()),
        },
        V::Int(lo, hi) => match parse_int(v) {
            Some(n) if (lo..=hi).contains(&n) => None,
            _ => range(lo.to_string(), hi.to_string()),
        },
        V::Pow2(lo, hi) => match parse_uint(v) {
            Some(n) if (lo..=hi).contains(&n) && n.is_power_of_two() => None,
            Some(n) if n.is_power_of_two() => range(lo.to_string(), hi.to_string()),
            _ if looks_numeric(v) => Some(format!("is not a power of two from {lo} to {hi}")),
            _ => range(lo.to_string(), hi.to_string()),
        },
        V::OneOf(words) => (!words.iter().any(|w| w.eq_ignore_ascii_case(v)))
            .then(|| format!("is not one of {}", words.join(", "))),
        V::YesNo => (v != "Yes" && v != "No").then(|| "must be Yes or No".to_string()),
        V::Digest => (v.is_empty()
            || !v.split(',').all(|d| {
                ["None", "CRC32C"]
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(d.trim()))
            }))
        .then(|| "must be None, CRC32C or both, comma-separated".to_string()),
        V::Text(max) => {
            let n = v.chars().count();
            (n > max).then(|| format!("is {n} characters long, out of range: at most {max}"))
        }
        V::Path => (!v.starts_with('/')).then(|| "must be an absolute path".to_string()),
        V::Wwn => {
            (!is_wwpn(v)).then(|| "is not a WWN (8 hex bytes separated by colons)".to_string())
        }
        V::IoGrouping => {
            let ok = ["auto", "this_group_only", "never"]
                .iter()
                .any(|w| w.eq_ignore_ascii_case(v))
                || parse_uint(v).is_some_and(|n| n > 0 && n <= i32::MAX as u64);
            (!ok).then(|| "must be auto, this_group_only, never or a group number".to_string())
        }
        V::Account => account_problem(v),
        V::Any => None,
    }
}

/// A CHAP account value: `USER SECRET` with a secret of 12 to 255 characters
/// (iscsi-scstd refuses shorter ones), or `secret:NAME`.
fn account_problem(v: &str) -> Option<String> {
    use crate::config::secrets::{is_secret_name, CHAP_MAX, CHAP_MIN, SCST_REF};
    if let Some(name) = v.strip_prefix(SCST_REF) {
        return (!is_secret_name(name)).then(|| {
            format!("names secret `{name}`, which is not a secret name (letters, digits, `.`, `_`, `-`, `:`)")
        });
    }
    let words: Vec<&str> = v.split_whitespace().collect();
    match words.as_slice() {
        [_, secret] => {
            let n = secret.chars().count();
            (!(CHAP_MIN..=CHAP_MAX).contains(&n)).then(|| {
                format!("has a CHAP secret of {n} character{}, out of range: expected {CHAP_MIN} to {CHAP_MAX} (iscsi-scstd refuses shorter ones)", if n == 1 { "" } else { "s" })
            })
        }
        _ => Some(format!(
            "must be `USER SECRET` (quoted) or `{SCST_REF}NAME` (an account of the node's secrets)"
        )),
    }
}

/// Checks attribute names and values against the catalog. `lookup` finds an
/// attribute; `strict` makes an unknown name an error (a warning otherwise); names in
/// `skip` are checked elsewhere.
#[allow(clippy::too_many_arguments)]
fn check_catalog(
    o: &mut Out,
    what: &str,
    owner: &str,
    attrs: &[Attr],
    lookup: &dyn Fn(&str) -> Option<catalog::AttrSpec>,
    strict: bool,
    known: &[&str],
    skip: &[&str],
) {
    for a in attrs {
        if skip.contains(&a.name.as_str()) {
            continue;
        }
        // `IncomingUser1`, `allowed_portal2`: numbered instances of a dynamic attribute.
        let base = a.name.trim_end_matches(|c: char| c.is_ascii_digit());
        let spec = lookup(&a.name).or_else(|| {
            lookup(base).filter(|s| {
                matches!(s.value, catalog::Value::Account) || s.name == "allowed_portal"
            })
        });
        match spec {
            None => {
                let hint = crate::util::suggest::closest(&a.name, known)
                    .map(|k| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                let msg = format!(
                    "{what} attribute '{}' is not an attribute of {owner}{hint}",
                    a.name
                );
                if strict {
                    o.error(a.line, msg);
                } else {
                    o.warn(
                        a.line,
                        format!("{msg} as far as sanforge knows; it is written as is"),
                    );
                }
            }
            Some(s) if !s.settable => o.error(
                a.line,
                format!(
                    "{what} attribute '{}' of {owner} is read-only: it cannot be set",
                    a.name
                ),
            ),
            Some(s) => {
                if let Some(p) = value_problem(s.value, &a.value) {
                    o.error(
                        a.line,
                        format!("{what} attribute '{}' value '{}' {p}", a.name, shown(a)),
                    );
                }
            }
        }
    }
}

/// Whether the device table knows a name.
struct Devices<'a> {
    by_name: HashMap<&'a str, (&'a str, usize)>,
}

fn check_luns(
    o: &mut Out,
    owner: &str,
    luns: &[Lun],
    devs: &Devices,
    line: usize,
    skip_lun0: bool,
) {
    let mut numbers: HashMap<u32, usize> = HashMap::new();
    for l in luns {
        if let Some(first) = numbers.insert(l.number, l.line) {
            o.error(
                l.line,
                format!(
                    "LUN {} is defined twice in {owner} (first on line {first})",
                    l.number
                ),
            );
        }
        if l.number > catalog::MAX_LUN {
            o.error(
                l.line,
                format!(
                    "LUN {} is out of range: expected 0 to {} (SCST_MAX_LUN)",
                    l.number,
                    catalog::MAX_LUN
                ),
            );
        }
        if !devs.by_name.contains_key(l.device.as_str()) {
            o.error(
                l.line,
                format!(
                    "LUN {} uses device '{}', which no HANDLER block defines",
                    l.number, l.device
                ),
            );
        }
        for a in &l.attrs {
            if a.name != "read_only" {
                o.error(
                    a.line,
                    format!(
                        "LUN attribute '{}' is not supported; the kernel accepts only read_only",
                        a.name
                    ),
                );
            }
        }
        check_bool(o, &l.attrs, "read_only");
        check_attrs(o, "LUN", &l.attrs, &["read_only"], &[]);
    }
    if !luns.is_empty() && !numbers.contains_key(&0) && !skip_lun0 {
        o.warn(
            line,
            format!("{owner} has no LUN 0; initiators may not find the other LUNs"),
        );
    }
}

fn check_initiator(o: &mut Out, driver: &str, g: &IniGroup) {
    for i in &g.initiators {
        check_name(o, "initiator", &i.name, i.line);
        if is_pattern(&i.name) {
            continue;
        }
        if catalog::is_fc_driver(driver) {
            check_wwpn(o, "initiator", &i.name, i.line);
        } else if driver == "iscsi" && !is_iscsi_name(&i.name) {
            o.error(
                i.line,
                format!(
                    "initiator '{}' is not an iSCSI name (iqn.YYYY-MM.domain[:id], eui.…, naa.…)",
                    i.name
                ),
            );
        }
    }
}

fn check_wwpn(o: &mut Out, what: &str, name: &str, line: usize) {
    if !is_wwpn(name) {
        o.error(
            line,
            format!("{what} '{name}' is not a WWPN (8 hex bytes separated by colons, e.g. 21:00:00:24:ff:54:09:32)"),
        );
    } else if name.chars().any(|c| c.is_ascii_uppercase()) {
        o.warn(
            line,
            format!("{what} '{name}' has upper-case hex; SCST names ports in lower case, so it will not match"),
        );
    }
}

/// iscsi-scstd keeps one outgoing account per target (and one for discovery): a second
/// `OutgoingUser` replaces the first.
fn one_outgoing(o: &mut Out, owner: &str, attrs: &[Attr]) {
    let mut outgoing = attrs.iter().filter(|a| a.name == "OutgoingUser");
    if let (Some(first), Some(second)) = (outgoing.next(), outgoing.next()) {
        o.error(
            second.line,
            format!(
                "{owner} has a second OutgoingUser (first on line {}): iscsi-scstd keeps one outgoing account and would replace the first",
                first.line
            ),
        );
    }
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

/// Handlers and their devices: names, attributes, backing files (two devices on one
/// file or device corrupt each other's data).
fn check_handlers<'a>(o: &mut Out, conf: &'a ScstConf) -> Devices<'a> {
    // Handlers and devices.
    let mut devs = Devices {
        by_name: HashMap::new(),
    };
    let mut handlers: HashMap<&str, usize> = HashMap::new();
    let mut files: HashMap<&str, (&str, usize, bool)> = HashMap::new();
    for h in &conf.handlers {
        if let Some(first) = handlers.insert(&h.name, h.line) {
            o.error(h.line, format!("HANDLER {} appears twice (first on line {first}); scstadmin would keep only the last block", h.name));
        }
        if !catalog::known_handler(&h.name) {
            o.error(
                h.line,
                format!(
                    "unknown handler '{}'; known: {}",
                    h.name,
                    catalog::HANDLERS.join(", ")
                ),
            );
        }
        check_attrs(o, "handler", &h.attrs, &[], &[]);
        let known = catalog::known_handler(&h.name);
        check_catalog(
            o,
            "handler",
            &format!("handler {}", h.name),
            &h.attrs,
            &catalog::handler_attr,
            known,
            &catalog::known_names(catalog::Level::Handler, &h.name),
            &[],
        );
        let device_names = catalog::known_names(catalog::Level::Device, &h.name);
        let creation = catalog::device_creation_params(&h.name);
        for d in &h.devices {
            check_name(o, "device", &d.name, d.line);
            if let Some((hn, first)) = devs.by_name.insert(&d.name, (&h.name, d.line)) {
                o.error(
                    d.line,
                    format!(
                        "device '{}' is defined twice (first on line {first}, handler {hn})",
                        d.name
                    ),
                );
            }
            if catalog::is_passthrough(&h.name) {
                let ok = d.name.split(':').count() == 4
                    && d.name
                        .split(':')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    o.error(
                        d.line,
                        format!("pass-through device '{}' must be named H:C:I:L", d.name),
                    );
                }
            } else if catalog::is_vdisk(&h.name) && d.name.len() > 64 {
                o.error(
                    d.line,
                    format!("device name '{}' is longer than 64 characters", d.name),
                );
            }
            check_attrs(o, "device", &d.attrs, creation, &[]);
            check_catalog(
                o,
                "device",
                &format!("{} devices", h.name),
                &d.attrs,
                &|n| catalog::device_attr(&h.name, n),
                known,
                &device_names,
                &[],
            );
            let on = |n: &str| super::attr(&d.attrs, n) == Some("1");
            if on("read_only") && (on("write_through") || on("nv_cache")) {
                o.error(
                    d.line,
                    format!("device '{}' is read_only but has write_through or nv_cache set: vdisk refuses write options on a read-only device", d.name),
                );
            }
            // One backing file or device, one SCST device (unless both only read it).
            if matches!(h.name.as_str(), "vdisk_fileio" | "vdisk_blockio") {
                if let Some(f) = d.attrs.iter().find(|a| a.name == "filename") {
                    match files.get(f.value.as_str()) {
                        Some((other, first, ro)) if !(*ro && on("read_only")) => o.error(
                            f.line,
                            format!(
                                "device '{}' uses {}, which device '{other}' already uses (line {first}): two devices writing one file or block device corrupt each other's data",
                                d.name, f.value
                            ),
                        ),
                        Some(_) => {}
                        None => {
                            files.insert(&f.value, (&d.name, f.line, on("read_only")));
                        }
                    }
                }
            }
            if super::attr(&d.attrs, "cluster_mode") == Some("1")
                && super::attr(&d.attrs, "t10_dev_id").is_none()
            {
                o.warn(d.line, format!("device '{}' has cluster_mode 1 but no t10_dev_id; every node must use the same t10_dev_id (the DLM lockspace is scst-<t10_dev_id>)", d.name));
            }
            if (h.name == "vdisk_fileio" || h.name == "vdisk_blockio")
                && super::attr(&d.attrs, "filename").is_none()
            {
                o.error(
                    d.line,
                    format!("device '{}' of {} has no filename", d.name, h.name),
                );
            }
        }
    }

    devs
}

/// Target drivers, targets, LUNs and initiator groups.
fn check_drivers(o: &mut Out, conf: &ScstConf, devs: &Devices, rel: &mut RelIds) {
    // Target drivers, targets, LUNs, groups. rel_tgt_id: id → (target, line).
    let mut drivers: HashMap<&str, usize> = HashMap::new();
    for d in &conf.drivers {
        if let Some(first) = drivers.insert(&d.name, d.line) {
            o.error(d.line, format!("TARGET_DRIVER {} appears twice (first on line {first}); scstadmin would keep only the last block", d.name));
        }
        if !catalog::known_driver(&d.name) {
            o.error(
                d.line,
                format!(
                    "unknown target driver '{}'; known: {}",
                    d.name,
                    catalog::DRIVERS.join(", ")
                ),
            );
        }
        check_attrs(
            o,
            "driver",
            &d.attrs,
            &[],
            catalog::driver_dynamic_attrs(&d.name),
        );
        let strict = catalog::known_driver(&d.name) && catalog::driver_catalogued(&d.name);
        check_catalog(
            o,
            "driver",
            &format!("driver {}", d.name),
            &d.attrs,
            &|n| catalog::driver_attr(&d.name, n),
            strict,
            &catalog::known_names(catalog::Level::Driver, &d.name),
            &[],
        );
        one_outgoing(o, &format!("driver {}", d.name), &d.attrs);
        let target_names = catalog::known_names(catalog::Level::Target, &d.name);
        let group_names = catalog::known_names(catalog::Level::Group, &d.name);
        let mut targets: HashMap<&str, usize> = HashMap::new();
        for t in &d.targets {
            check_name(o, "target", &t.name, t.line);
            if let Some(first) = targets.insert(&t.name, t.line) {
                o.error(
                    t.line,
                    format!(
                        "TARGET {} appears twice in {} (first on line {first})",
                        t.name, d.name
                    ),
                );
            }
            if catalog::is_fc_driver(&d.name) {
                check_wwpn(o, "target", &t.name, t.line);
            } else if d.name == "iscsi" && !is_iscsi_name(&t.name) {
                o.error(t.line, format!("iSCSI target '{}' is not an iSCSI name (iqn.YYYY-MM.domain[:id], eui.…, naa.…)", t.name));
            }
            let virt = catalog::is_virtual_target(&d.name, t);
            let params = if virt {
                catalog::target_creation_params(&d.name)
            } else {
                &[]
            };
            check_attrs(
                o,
                "target",
                &t.attrs,
                params,
                catalog::target_dynamic_attrs(&d.name),
            );
            check_catalog(
                o,
                "target",
                &format!("{} targets", d.name),
                &t.attrs,
                &|n| catalog::target_attr(&d.name, n),
                strict,
                &target_names,
                // Checked below, with their own messages.
                &["rel_tgt_id", "node_name", "parent_host"],
            );
            one_outgoing(o, &format!("target {}", t.name), &t.attrs);
            if d.name == "qla2x00t" && virt {
                for p in ["node_name", "parent_host"] {
                    match super::attr(&t.attrs, p) {
                        None => o.error(t.line, format!("NPIV target '{}' needs both node_name and parent_host (or HW_TARGET for a physical port)", t.name)),
                        Some(v) if !is_wwpn(v) => o.error(t.line, format!("{p} '{v}' of '{}' is not a WWN", t.name)),
                        _ => {}
                    }
                }
            }
            if let Some((id, line)) = check_range(o, &t.attrs, "rel_tgt_id") {
                rel.check(o, &t.name, id, line);
            }
            let cm = d.name == "copy_manager";
            check_luns(o, &format!("target {}", t.name), &t.luns, devs, t.line, cm);
            let mut groups: HashMap<&str, usize> = HashMap::new();
            let mut inis: HashMap<&str, (&str, usize)> = HashMap::new();
            for g in &t.groups {
                check_name(o, "group", &g.name, g.line);
                if let Some(first) = groups.insert(&g.name, g.line) {
                    o.error(
                        g.line,
                        format!(
                            "GROUP {} appears twice in target {} (first on line {first})",
                            g.name, t.name
                        ),
                    );
                }
                check_attrs(o, "group", &g.attrs, &[], &[]);
                check_catalog(
                    o,
                    "group",
                    &format!("{} initiator groups", d.name),
                    &g.attrs,
                    &|n| catalog::group_attr(&d.name, n),
                    strict,
                    &group_names,
                    &[],
                );
                check_luns(o, &format!("group {}", g.name), &g.luns, devs, g.line, cm);
                check_initiator(o, &d.name, g);
                for i in &g.initiators {
                    if let Some((og, first)) = inis.insert(&i.name, (&g.name, i.line)) {
                        o.error(i.line, format!("initiator '{}' is listed twice in target {} (first on line {first}, group {og}); an initiator can be in only one group", i.name, t.name));
                    }
                }
            }
        }
    }
}

/// ALUA: device groups, their target groups and targets.
fn check_alua_groups(o: &mut Out, conf: &ScstConf, devs: &Devices, rel: &mut RelIds) {
    // ALUA: device groups and target groups.
    let mut dgs: HashMap<&str, usize> = HashMap::new();
    let mut dg_devs: HashMap<&str, (&str, usize)> = HashMap::new();
    for dg in &conf.device_groups {
        check_name(o, "device group", &dg.name, dg.line);
        if let Some(first) = dgs.insert(&dg.name, dg.line) {
            o.error(dg.line, format!("DEVICE_GROUP {} appears twice (first on line {first}); scstadmin would keep only the last block", dg.name));
        }
        check_attrs(o, "device group", &dg.attrs, &[], &[]);
        for dv in &dg.devices {
            if !devs.by_name.contains_key(dv.name.as_str()) {
                o.error(
                    dv.line,
                    format!(
                        "device group {} lists device '{}', which no HANDLER block defines",
                        dg.name, dv.name
                    ),
                );
            }
            if let Some((g, first)) = dg_devs.insert(&dv.name, (&dg.name, dv.line)) {
                o.error(dv.line, format!("device '{}' is already in device group {g} (line {first}); a device can be in only one", dv.name));
            }
        }
        let mut tgs: HashMap<&str, usize> = HashMap::new();
        let mut gids: HashMap<u32, (&str, usize)> = HashMap::new();
        for tg in &dg.target_groups {
            check_name(o, "target group", &tg.name, tg.line);
            if let Some(first) = tgs.insert(&tg.name, tg.line) {
                o.error(
                    tg.line,
                    format!(
                        "TARGET_GROUP {} appears twice in {} (first on line {first})",
                        tg.name, dg.name
                    ),
                );
            }
            check_attrs(o, "target group", &tg.attrs, &[], &[]);
            if let Some((id, line)) = check_range(o, &tg.attrs, "group_id") {
                if let Some((other, first)) = gids.insert(id, (&tg.name, line)) {
                    o.error(
                        line,
                        format!(
                            "group_id {id} is already used by target group {other} (line {first})"
                        ),
                    );
                }
            }
            check_bool(o, &tg.attrs, "preferred");
            for a in &tg.attrs {
                if !["group_id", "preferred", "state"].contains(&a.name.as_str()) {
                    o.error(
                        a.line,
                        format!("target group attribute '{}' is not an attribute of target groups: expected group_id, preferred or state", a.name),
                    );
                }
            }
            for a in tg.attrs.iter().filter(|a| a.name == "state") {
                if !catalog::ALUA_STATES.contains(&a.value.as_str()) {
                    o.error(
                        a.line,
                        format!(
                            "invalid ALUA state '{}'; expected one of {}",
                            a.value,
                            catalog::ALUA_STATES.join(", ")
                        ),
                    );
                }
            }
            for t in &tg.targets {
                check_name(o, "target", &t.name, t.line);
                if t.name.contains(':') && t.name.chars().all(|c| c == ':' || c.is_ascii_hexdigit())
                {
                    check_wwpn(o, "target", &t.name, t.line);
                }
                check_attrs(o, "target-group target", &t.attrs, &[], &[]);
                for a in &t.attrs {
                    if a.name != "rel_tgt_id" {
                        o.warn(a.line, format!("target-group target attribute '{}' is not known; only rel_tgt_id is", a.name));
                    }
                }
                if let Some((id, line)) = check_range(o, &t.attrs, "rel_tgt_id") {
                    rel.check(o, &t.name, id, line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
