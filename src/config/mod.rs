//! The configuration files and their types: the recipe (build time), its lock, and the
//! node config (boot time, read by sanforge-init with these very types).
//!
//! All are TOML with kebab-case keys and `deny_unknown_fields`. Parsing reports
//! `file:line:column` and what was expected; `validate` turns raw structs into
//! validated ones once, so nothing downstream re-checks.

pub mod lock;
pub mod node;
pub mod recipe;
pub mod secrets;

use std::fmt;
use std::path::Path;

/// A configuration error located in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub fn new(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.display().to_string(),
            line,
            column,
            message: message.into(),
        }
    }
    /// An error about the file as a whole, or about a field whose line is not known.
    pub fn whole(file: &Path, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }
}

/// 1-based line and column of byte offset `pos` in `text`.
pub fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = &text[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map(|i| before[i + 1..].chars().count())
        .unwrap_or(before.chars().count())
        + 1;
    (line, col)
}

/// Line and column where `key = …` (or `[key]`) first appears, to locate semantic
/// errors that serde cannot place. (0, 0) if not found.
pub fn find_key(text: &str, key: &str) -> (usize, usize) {
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        let rest = t.trim_start_matches('[').trim_start_matches('"');
        if let Some(after) = rest.strip_prefix(key) {
            let after = after.trim_start_matches('"').trim_start();
            if after.starts_with('=') || after.starts_with(']') || after.starts_with('.') {
                return (i + 1, indent + 1);
            }
        }
    }
    // An inline table: `luns = [{ lun = 0, backstore = "x" }]`.
    for (i, l) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(pos) = l[from..].find(key) {
            let start = from + pos;
            let before = l[..start].chars().next_back();
            let after = l[start + key.len()..].trim_start();
            if matches!(before, Some('{') | Some(',') | Some(' ') | Some('\t'))
                && after.starts_with('=')
            {
                return (i + 1, start + 1);
            }
            from = start + key.len();
        }
    }
    (0, 0)
}

/// Line and column of the TOML string `"value"` (or `'value'`): its first occurrence
/// at or after the first line that assigns `key`, else its first occurrence anywhere.
/// Points at the value at fault rather than at the first key of that name.
pub fn find_value(text: &str, key: &str, value: &str) -> Option<(usize, usize)> {
    let quoted = [format!("\"{value}\""), format!("'{value}'")];
    let mut after_key = false;
    let mut first = None;
    for (i, l) in text.lines().enumerate() {
        if !after_key {
            let t = l.trim_start();
            after_key = t
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start_matches('"').trim_start().starts_with('='))
                || [" ", "{", ","].iter().any(|p| {
                    l.contains(&format!("{p}{key} =")) || l.contains(&format!("{p}{key}="))
                });
        }
        if let Some(c) = quoted.iter().filter_map(|q| l.find(q.as_str())).min() {
            let col = l.get(..c).map(|p| p.chars().count()).unwrap_or(c) + 1;
            if after_key {
                return Some((i + 1, col));
            }
            first.get_or_insert((i + 1, col));
        }
    }
    first
}

/// Line and column of the `n`-th (0-based) occurrence of the TOML string `"value"`:
/// the repeat of a value listed twice.
pub fn find_value_nth(text: &str, value: &str, n: usize) -> Option<(usize, usize)> {
    text.match_indices(&format!("\"{value}\""))
        .nth(n)
        .map(|(pos, _)| line_col(text, pos))
}

/// The key assigned just before byte `pos` (`tpg = 70000` → `tpg`), if any.
fn key_before(text: &str, pos: usize) -> Option<&str> {
    let before = text.get(..pos)?.trim_end().strip_suffix('=')?.trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map_or(0, |i| i + 1);
    before.get(start..).filter(|k| !k.is_empty())
}

/// A serde range error ("invalid value: integer `70000`, expected u16") said plainly:
/// the number is out of range, and what the range is.
pub fn plain_range_error(message: &str) -> Option<String> {
    let rest = message.strip_prefix("invalid value: integer `")?;
    let (num, ty) = rest.split_once("`, expected ")?;
    let ty = ty.trim();
    let (lo, hi): (i128, i128) = match ty {
        "u8" => (0, u8::MAX.into()),
        "u16" => (0, u16::MAX.into()),
        "u32" => (0, u32::MAX.into()),
        "u64" => (0, u64::MAX.into()),
        "usize" => (0, u64::MAX.into()),
        "i8" => (i8::MIN.into(), i8::MAX.into()),
        "i16" => (i16::MIN.into(), i16::MAX.into()),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        "i64" => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    };
    Some(format!("{num} is out of range: expected {lo} to {hi}"))
}

/// Parses TOML text into `T`, turning a serde error into a located `ConfigError`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str::<T>(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        let msg = e.message().trim();
        let plain = plain_range_error(msg).map(|m| {
            match e.span().and_then(|s| key_before(text, s.start)) {
                Some(k) => format!("{k} {m}"),
                None => m,
            }
        });
        ConfigError::new(file, line, column, plain.unwrap_or_else(|| msg.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn find_key_locates_assignments_and_tables() {
        let t = "a = 1\n[kernel]\n  base = \"x\"\n";
        assert_eq!(find_key(t, "base"), (3, 3));
        assert_eq!(find_key(t, "kernel"), (2, 1));
        assert_eq!(find_key(t, "zzz"), (0, 0));
    }
}
