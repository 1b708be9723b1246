//! The configuration files and their types: the recipe (build time), its lock, and the
//! node config (boot time, read by sanforge-init with these very types).
//!
//! All are TOML with kebab-case keys and `deny_unknown_fields`. Parsing reports
//! `file:line:column` and what was expected; `validate` turns raw structs into
//! validated ones once, so nothing downstream re-checks, and reports every error of
//! the file, each at the exact value at fault ([`spans`]). Values several files share
//! (sizes, iSCSI names) are checked in one place ([`values`]).

pub mod lock;
pub mod network;
pub mod node;
pub mod recipe;
pub mod spans;
pub mod values;

use std::fmt;
use std::path::Path;

/// A configuration error located in a file: `file:line:column: message`. Validation
/// reports every error of a file: the first (in file order) is in the fields, the
/// others in `more`; `Display` prints one line per error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The other errors of the same file, in file order (those without a line last).
    pub more: Vec<ConfigError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        }
        for e in &self.more {
            write!(f, "\n{e}")?;
        }
        Ok(())
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
            more: Vec::new(),
        }
    }
    /// An error about the file as a whole, or about a field whose line is not known.
    pub fn whole(file: &Path, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }

    /// One error holding all of `list` in file order; `None` for an empty list.
    pub fn from_list(mut list: Vec<ConfigError>) -> Option<ConfigError> {
        // Stable: errors at one place keep the order they were found in.
        list.sort_by_key(|e| (e.line == 0, e.line, e.column));
        let mut it = list.into_iter().flat_map(ConfigError::flatten);
        let mut first = it.next()?;
        first.more = it.collect();
        Some(first)
    }

    /// How many errors this holds.
    pub fn count(&self) -> usize {
        1 + self.more.len()
    }

    /// This error and its `more`, each on its own.
    fn flatten(mut self) -> impl Iterator<Item = ConfigError> {
        let more = std::mem::take(&mut self.more);
        std::iter::once(self).chain(more)
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
}
