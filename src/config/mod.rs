//! The configuration files and their types: the recipe (build time), its lock, and the
//! node config (boot time, read by sanforge-init with these very types).
//!
//! All are TOML with kebab-case keys and `deny_unknown_fields`. Parsing reports
//! `file:line:column` and what was expected; `validate` turns raw structs into
//! validated ones once, so nothing downstream re-checks.

pub mod lock;
pub mod node;
pub mod recipe;
pub mod userland;

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

/// Parses TOML text into `T`, turning a serde error into a located `ConfigError`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str::<T>(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
        ConfigError::new(file, line, column, e.message().trim().to_string())
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
