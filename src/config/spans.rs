//! Exact locations for validation errors, and the list that collects every error of
//! one file.
//!
//! serde places syntax and type errors itself; the checks that run on the typed
//! structs afterwards (a bad MTU, an undefined backstore) name the value at fault by
//! its path in the document — `at!["network", "interfaces", 1, "mtu"]` — and
//! [`Errors`] turns the path into `file:line:column` with the spans the TOML parser
//! keeps. So an error in the second of two `[[network.interfaces]]` points at the
//! second, and the typed structs stay free of spans.
//!
//! The text is parsed for spans only when the first error is reported: a valid file
//! costs nothing more.

use super::{line_col, ConfigError};
use std::cell::OnceCell;
use std::ops::Range;
use std::path::Path;
use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a path into a TOML document: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(k: &str) -> Self {
        Seg::Key(k.to_string())
    }
}

impl From<&String> for Seg {
    fn from(k: &String) -> Self {
        Seg::Key(k.clone())
    }
}

impl From<String> for Seg {
    fn from(k: String) -> Self {
        Seg::Key(k)
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// A path into a TOML document: `at!["lio", "backstores", 1, "size"]` (keys as they
/// are written in the file, kebab-case; indexes from 0).
macro_rules! at {
    ($($seg:expr),* $(,)?) => {
        &[$($crate::config::spans::Seg::from($seg)),*][..]
    };
}
pub(crate) use at;

/// The span of the key and of the value that a path leads to. When the file does not
/// write the whole path (a missing field, a default), the deepest part it does write:
/// the table or array entry that lacks the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub key: Option<Range<usize>>,
    pub value: Option<Range<usize>>,
}

/// A parsed document, kept for its spans.
pub struct Spans<'t> {
    doc: ImDocument<&'t str>,
}

/// Where the walk down a path stands: a table of the document, an item, or a value
/// inside an array or an inline table.
#[derive(Clone, Copy)]
enum Cur<'a> {
    Table(&'a Table),
    Item(&'a Item),
    Value(&'a Value),
}

impl Cur<'_> {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Cur::Table(t) => t.span(),
            Cur::Item(i) => i.span(),
            Cur::Value(v) => v.span(),
        }
    }
}

impl<'t> Spans<'t> {
    /// Parses `text`; `None` if it is not TOML (serde reports that error itself).
    pub fn parse(text: &'t str) -> Option<Spans<'t>> {
        ImDocument::parse(text).ok().map(|doc| Spans { doc })
    }

    /// The key and value spans of `path` (see [`Found`]).
    pub fn find(&self, path: &[Seg]) -> Found {
        let mut cur = Cur::Table(self.doc.as_table());
        let mut found = Found::default();
        for seg in path {
            let next = match (seg, cur) {
                (Seg::Key(k), Cur::Table(t)) => {
                    t.get_key_value(k).map(|(k, i)| (Some(k), Cur::Item(i)))
                }
                (Seg::Key(k), Cur::Item(i)) => i
                    .as_table_like()
                    .and_then(|t| t.get_key_value(k))
                    .map(|(k, i)| (Some(k), Cur::Item(i))),
                (Seg::Key(k), Cur::Value(v)) => v
                    .as_inline_table()
                    .and_then(|t| t.get_key_value(k))
                    .map(|(k, i)| (Some(k), Cur::Item(i))),
                (Seg::Index(n), Cur::Item(Item::ArrayOfTables(a))) => {
                    a.get(*n).map(|t| (None, Cur::Table(t)))
                }
                (Seg::Index(n), Cur::Item(i)) => i
                    .as_array()
                    .and_then(|a| a.get(*n))
                    .map(|v| (None, Cur::Value(v))),
                (Seg::Index(n), Cur::Value(v)) => v
                    .as_array()
                    .and_then(|a| a.get(*n))
                    .map(|v| (None, Cur::Value(v))),
                (Seg::Index(_), Cur::Table(_)) => None,
            }
            .map(|(k, c): (Option<&toml_edit::Key>, Cur)| (k.and_then(|k| k.span()), c));
            let Some((key, c)) = next else { break };
            cur = c;
            // An implicit table (`[a.b]` without `[a]`) has no span of its own: keep
            // the closest span found so far rather than none.
            let value = cur.span();
            if key.is_some() || value.is_some() {
                found = Found {
                    key: key.clone().or(value.clone()),
                    value: value.or(key),
                };
            }
        }
        found
    }
}

/// Every error of one file, each located at the value at fault; see the module doc.
pub struct Errors<'a> {
    file: &'a Path,
    text: &'a str,
    spans: OnceCell<Option<Spans<'a>>>,
    list: Vec<ConfigError>,
}

impl<'a> Errors<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Errors {
            file,
            text,
            spans: OnceCell::new(),
            list: Vec::new(),
        }
    }

    fn locate(&self, span: Option<Range<usize>>) -> (usize, usize) {
        span.map(|s| line_col(self.text, s.start)).unwrap_or((0, 0))
    }

    fn found(&self, path: &[Seg]) -> Found {
        self.spans
            .get_or_init(|| Spans::parse(self.text))
            .as_ref()
            .map(|s| s.find(path))
            .unwrap_or_default()
    }

    /// The error `message` about the value at `path`, not recorded (for a caller that
    /// returns it at once).
    pub fn error(&self, path: &[Seg], message: impl Into<String>) -> ConfigError {
        let (line, column) = self.locate(self.found(path).value);
        ConfigError::new(self.file, line, column, message)
    }

    /// Records an error about the value at `path`.
    pub fn at(&mut self, path: &[Seg], message: impl Into<String>) {
        let e = self.error(path, message);
        self.list.push(e);
    }

    /// Records an error about the key at `path` (a name used as a key: a sysctl, a
    /// module parameter, a package).
    pub fn key(&mut self, path: &[Seg], message: impl Into<String>) {
        let (line, column) = self.locate(self.found(path).key);
        let e = ConfigError::new(self.file, line, column, message);
        self.list.push(e);
    }

    /// Records an error about the file as a whole.
    pub fn whole(&mut self, message: impl Into<String>) {
        let e = ConfigError::whole(self.file, message);
        self.list.push(e);
    }

    /// The usual check of a name among others of its kind, at `path`: records
    /// `invalid()` when the name is not `valid`, else `twice()` when `seen` already
    /// holds its `key` (which it holds afterwards).
    pub fn name_once<K: Ord>(
        &mut self,
        path: &[Seg],
        key: K,
        seen: &mut std::collections::BTreeSet<K>,
        valid: bool,
        invalid: impl FnOnce() -> String,
        twice: impl FnOnce() -> String,
    ) {
        if !valid {
            self.at(path, invalid());
        } else if !seen.insert(key) {
            self.at(path, twice());
        }
    }

    /// `Some(value)`, or records `Err(message)` at `path` and gives `None`.
    pub fn check<T>(&mut self, path: &[Seg], r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.at(path, m)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many errors are recorded so far.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// `Ok(value)` when no error was recorded; else every error, in file order.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        match ConfigError::from_list(self.list) {
            None => Ok(value),
            Some(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(text: &str, path: &[Seg]) -> ((usize, usize), (usize, usize)) {
        let s = Spans::parse(text).unwrap();
        let f = s.find(path);
        let lc = |r: Option<Range<usize>>| r.map(|r| line_col(text, r.start)).unwrap_or((0, 0));
        (lc(f.key), lc(f.value))
    }

    #[test]
    fn paths_lead_to_keys_and_values() {
        let t = "a = 1\n[net]\n[[net.if]]\nname = \"x\"\n[[net.if]]\nname = \"y\"\nmtu = 9\nips = [\"1\", \"2\"]\nluns = [{ lun = 0 }, { lun = 7 }]\n";
        assert_eq!(loc(t, at!["a"]), ((1, 1), (1, 5)));
        assert_eq!(loc(t, at!["net"]), ((2, 2), (2, 1)));
        assert_eq!(loc(t, at!["net", "if", 1, "mtu"]), ((7, 1), (7, 7)));
        assert_eq!(loc(t, at!["net", "if", 0, "name"]), ((4, 1), (4, 8)));
        assert_eq!(loc(t, at!["net", "if", 1, "ips", 1]).1, (8, 13));
        assert_eq!(
            loc(t, at!["net", "if", 1, "luns", 1, "lun"]),
            ((9, 24), (9, 30))
        );
        // Missing: the deepest part written, here the second [[net.if]] entry.
        assert_eq!(loc(t, at!["net", "if", 1, "nope"]).1, (5, 1));
        assert_eq!(loc(t, at!["nope"]), ((0, 0), (0, 0)));
    }

    #[test]
    fn implicit_and_dotted_tables_fall_back_to_the_closest_span() {
        let t = "[a.b]\nc = 1\n[x]\ny.z = 2\n";
        assert_eq!(loc(t, at!["a", "b", "c"]).1, (2, 5));
        assert_eq!(loc(t, at!["x", "y", "z"]), ((4, 3), (4, 7)));
        assert_eq!(loc(t, at!["x", "y", "q"]).0, (4, 1));
    }
}
