//! Requests: the options a config fragment (`kernel-configs/*.config`) or the recipe
//! (`[kernel] options` and `forbid`) asks for, each with where it was asked, so that a
//! failed check can name the fragment line that wanted it.
//!
//! Reads: fragment files (through [`crate::util::fs`]); the recipe's values as given.

use super::dotconfig::{check_value, is_number, is_option_name, normalize_option, parse_not_set};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// One option a fragment or the recipe asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The option name with its prefix, e.g. `CONFIG_SQUASHFS`.
    pub option: String,
    /// The value as written in a `.config`: `y`, `m`, `n`, `123`, `0x10`, `"str"`.
    pub value: String,
    /// Where it was requested: `kernel-configs/fs.config:3` or `recipe`.
    pub origin: String,
}

const FRAGMENT_EXPECTED: &str =
    "expected `CONFIG_NAME=value`, `# CONFIG_NAME is not set`, a comment or a blank line";

/// Reads a config fragment: `CONFIG_X=value` and `# CONFIG_X is not set` lines (the
/// latter request `n`); other comments and blank lines are ignored. Each request's
/// origin is `display_name:line`.
pub fn parse_fragment(path: &Path, display_name: &str) -> Result<Vec<Request>> {
    let text = crate::util::fs::read_to_string(path)?;
    parse_fragment_text(&text, display_name)
}

/// [`parse_fragment`] on text already read.
pub fn parse_fragment_text(text: &str, display_name: &str) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        let origin = format!("{display_name}:{lineno}");
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if let Some(name) = parse_not_set(line) {
                out.push(Request {
                    option: name.to_string(),
                    value: "n".into(),
                    origin,
                });
            }
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bail!("{origin}: {FRAGMENT_EXPECTED}, found `{line}`");
        };
        let name = name.trim();
        if !is_option_name(name) {
            bail!("{origin}: option name `{name}`: expected a name like CONFIG_FOO (letters, digits, _)");
        }
        let value = value.trim();
        if let Err(why) = check_value(value) {
            bail!("{origin}: {name}: {why}");
        }
        out.push(Request {
            option: name.to_string(),
            value: value.to_string(),
            origin,
        });
    }
    Ok(out)
}

/// The recipe's `[kernel] options` as requests (origin `recipe`). Values `y`, `m`, `n`
/// and numbers are kept; a value already in double quotes is kept; any other value is
/// a string and gets quoted (`-san` becomes `"-san"`), as a `.config` writes it.
pub fn requests_from_recipe(options: &BTreeMap<String, String>) -> Vec<Request> {
    options
        .iter()
        .map(|(k, v)| {
            let v = v.trim();
            let value = if matches!(v, "y" | "m" | "n")
                || is_number(v)
                || (v.len() >= 2 && v.starts_with('"') && v.ends_with('"'))
            {
                v.to_string()
            } else {
                format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
            };
            Request {
                option: normalize_option(k),
                value,
                origin: "recipe".into(),
            }
        })
        .collect()
}

/// The recipe's `forbid` list as `n` requests (origin `recipe (forbidden)`), so that
/// [`merge`](super::merge) starts `olddefconfig` with them unset.
/// [`verify`](fn@super::verify) still checks the list itself.
pub fn requests_from_forbid(forbid: &[String]) -> Vec<Request> {
    forbid
        .iter()
        .map(|k| Request {
            option: normalize_option(k),
            value: "n".into(),
            origin: "recipe (forbidden)".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_values_are_quoted_when_strings() {
        let mut m = BTreeMap::new();
        m.insert("CONFIG_LOCALVERSION".to_string(), "-san".to_string());
        m.insert("CONFIG_NR_CPUS".to_string(), "64".to_string());
        m.insert(
            "CONFIG_CMDLINE".to_string(),
            "\"console=ttyS0\"".to_string(),
        );
        m.insert("CONFIG_X".to_string(), "m".to_string());
        let r = requests_from_recipe(&m);
        let vals: Vec<&str> = r.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(vals, ["\"console=ttyS0\"", "\"-san\"", "64", "m"]);
        assert!(r.iter().all(|r| r.origin == "recipe"));
    }
}
