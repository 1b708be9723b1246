//! The configuration files and their types: the recipe (build time), its lock, and the
//! node config (boot time, read by sanforge-init with these very types).
//!
//! All are TOML with kebab-case keys and `deny_unknown_fields`. Parsing reports
//! `file:line:column` and what was expected; `validate` turns raw structs into
//! validated ones once, so nothing downstream re-checks, and reports every error of
//! the file, each at the exact value at fault ([`spans`]). Values several files share
//! (sizes, iSCSI names) are checked in one place ([`values`]).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]

pub mod lio_attrib;
pub mod lock;
pub mod module_signing;
pub mod network;
pub mod node;
pub mod ops;
pub mod recipe;
pub mod remote_cache;
pub mod secrets;
pub mod spans;
pub mod storage;
pub mod userland;
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
    let (mut line, mut col) = (1, 1);
    for (_, c) in text.char_indices().take_while(|(i, _)| *i < pos) {
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
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
}
