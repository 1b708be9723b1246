//! The `.config` line format, shared by fragments and the kernel's own `.config`:
//! `CONFIG_X=value` and `# CONFIG_X is not set` (which means `n`), how values are
//! written (`y`, `m`, numbers, double-quoted strings), and the merge of requests into a
//! base config that `make olddefconfig` then completes.
//!
//! Reads: only its arguments (texts already read by the caller).

use super::Request;
use std::collections::{BTreeMap, HashMap, HashSet};

/// `CONFIG_` followed by letters, digits and `_`.
pub(super) fn is_option_name(name: &str) -> bool {
    name.len() > 7
        && name.starts_with("CONFIG_")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses `# CONFIG_X is not set`, returning `CONFIG_X`.
pub(super) fn parse_not_set(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name = rest.strip_suffix("is not set")?.trim_end();
    is_option_name(name).then_some(name)
}

/// Checks a value as it may appear after `CONFIG_X=` in a `.config`.
pub(super) fn check_value(value: &str) -> std::result::Result<(), String> {
    if value.is_empty() {
        return Err(
            "empty value (write `# CONFIG_NAME is not set` or a quoted \"\" string)".into(),
        );
    }
    if let Some(inner) = value.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Err(format!("unterminated string value `{value}`"));
        };
        let mut escaped = false;
        for c in inner.chars() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    return Err(format!("unescaped quote inside string value `{value}`"))
                }
                _ => {}
            }
        }
        if escaped {
            return Err(format!("string value `{value}` ends with a lone backslash"));
        }
        return Ok(());
    }
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'+')
    {
        Ok(())
    } else {
        Err(format!(
            "value `{value}` is not y, m, n, a number or a double-quoted string"
        ))
    }
}

/// Whether `v` is a plain (decimal or `0x` hex) number, possibly negative.
pub(super) fn is_number(v: &str) -> bool {
    parse_number(v).is_some()
}

/// The value of a decimal or `0x` hex number, possibly negative.
pub(super) fn parse_number(v: &str) -> Option<i128> {
    let v = v.trim();
    let (neg, digits) = match v.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, v),
    };
    let n = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        if hex.is_empty() {
            return None;
        }
        i128::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i128>().ok()?
    };
    Some(if neg { -n } else { n })
}

/// `FOO` → `CONFIG_FOO`; `CONFIG_FOO` unchanged.
pub(super) fn normalize_option(name: &str) -> String {
    let name = name.trim();
    if name.starts_with("CONFIG_") {
        name.to_string()
    } else {
        format!("CONFIG_{name}")
    }
}

/// The option a `.config` line sets, with its value (`n` for `# ... is not set`).
fn config_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    if line.starts_with('#') {
        return parse_not_set(line).map(|n| (n, "n"));
    }
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    is_option_name(name).then_some((name, value.trim()))
}

/// One `.config` line setting `option` to `value`.
fn render(option: &str, value: &str) -> String {
    if value == "n" {
        format!("# {option} is not set")
    } else {
        format!("{option}={value}")
    }
}

/// The text of a `.config`: `base` with each requested option's line replaced in place
/// (later requests win; further duplicate lines of a requested option are dropped), and
/// options absent from `base` appended in the order they were first requested. `n` is
/// written as `# CONFIG_X is not set`.
pub fn merge(base: &str, requests: &[Request]) -> String {
    let mut wanted: HashMap<&str, &str> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for r in requests {
        if wanted.insert(&r.option, &r.value).is_none() {
            order.push(&r.option);
        }
    }
    let mut written: HashSet<&str> = HashSet::new();
    let mut out = String::with_capacity(base.len() + requests.len() * 32);
    for line in base.lines() {
        if let Some((name, _)) = config_line(line) {
            if let Some((key, value)) = wanted.get_key_value(name) {
                if written.insert(key) {
                    out.push_str(&render(key, value));
                    out.push('\n');
                }
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    for name in order {
        if !written.contains(name) {
            out.push_str(&render(name, wanted[name]));
            out.push('\n');
        }
    }
    out
}

/// The values a `.config` sets: `CONFIG_X` → `y`/`m`/`123`/`"str"`; `# CONFIG_X is not
/// set` gives `n`; options not mentioned are absent.
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(config_line)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_in_place_and_appends() {
        let base = "# head\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_A=m\n";
        let reqs = vec![
            Request {
                option: "CONFIG_B".into(),
                value: "y".into(),
                origin: "f:1".into(),
            },
            Request {
                option: "CONFIG_A".into(),
                value: "n".into(),
                origin: "f:2".into(),
            },
            Request {
                option: "CONFIG_D".into(),
                value: "\"x\"".into(),
                origin: "f:3".into(),
            },
            Request {
                option: "CONFIG_B".into(),
                value: "m".into(),
                origin: "recipe".into(),
            },
        ];
        assert_eq!(
            merge(base, &reqs),
            "# head\n# CONFIG_A is not set\nCONFIG_B=m\nCONFIG_C=y\nCONFIG_D=\"x\"\n"
        );
    }
}
