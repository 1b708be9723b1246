//! Checks of names, attributes and values: against the catalog of what each handler,
//! driver and target accepts (reference §B).

use super::Out;
use crate::scsi::scst::catalog;
use crate::scsi::scst::Attr;
use std::collections::HashMap;

/// `xx:xx:xx:xx:xx:xx:xx:xx` (8 hex bytes; sysfs names are lower-case).
pub fn is_wwpn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 8
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(super) fn is_pattern(s: &str) -> bool {
    s.starts_with('!') || s.contains('*') || s.contains('?')
}

/// A character the config file or the sysfs interface cannot carry in a value.
pub(super) fn bad_char(v: &str) -> Option<char> {
    v.chars()
        .find(|c| matches!(c, '{' | '}' | '"') || c.is_control() && *c != '\t')
}

pub(super) fn show(c: char) -> String {
    match c {
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("control character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

/// Checks a name used as a word of a sysfs command or a path component.
pub(super) fn check_name(o: &mut Out, what: &str, name: &str, line: usize) {
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
pub(super) fn check_attrs(
    o: &mut Out,
    what: &str,
    attrs: &[Attr],
    params: &[&str],
    dynamic: &[&str],
) {
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

pub(super) fn check_bool(o: &mut Out, attrs: &[Attr], name: &str) {
    for a in attrs.iter().filter(|a| a.name == name) {
        if a.value != "0" && a.value != "1" {
            o.error(
                a.line,
                format!("'{name}' must be 0 or 1, not '{}'", a.value),
            );
        }
    }
}

pub(super) fn check_range(o: &mut Out, attrs: &[Attr], name: &str) -> Option<(u32, usize)> {
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
pub(super) fn shown(a: &Attr) -> std::borrow::Cow<'_, str> {
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
pub(super) fn parse_int(v: &str) -> Option<i64> {
    let v = v.trim();
    match v.strip_prefix('-') {
        Some(rest) => parse_uint(rest)
            .and_then(|n| i64::try_from(n).ok())
            .map(|n| -n),
        None => parse_uint(v).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Whether `v` is written like a number at all (then a failed parse means too big).
pub(super) fn looks_numeric(v: &str) -> bool {
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
pub(super) fn account_problem(v: &str) -> Option<String> {
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
pub(super) fn check_catalog(
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
