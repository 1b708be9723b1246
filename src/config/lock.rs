//! The lock file (`recipes/NAME.lock`): every resolved input of a recipe pinned by
//! sha256 (or, for a source pinned by its unpacked content, by its tree hash). Written by `sanforge lock`; `build --locked` refuses a missing or stale lock.

use super::spans::{at, Errors};
use super::{parse_toml, ConfigError};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    pub version: u32,
    #[serde(default, rename = "source")]
    pub sources: Vec<LockedSource>,
}

/// One pinned input. `name` is `kernel`, `package:<debian name>` or the recipe's
/// source name.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedSource {
    pub name: String,
    /// `url`, `debian` or `path`.
    pub kind: String,
    /// What the recipe said (URL list, `package=version`, or path) — compared to find
    /// a stale entry.
    pub origin: String,
    /// The file's sha256; empty (and not written) for a source pinned by `tree`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The tree hash (`tree-v1:…`) of a source pinned by its unpacked content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
}

impl LockedSource {
    /// What pins the input: its tree hash, else its sha256.
    pub fn pin(&self) -> &str {
        self.tree.as_deref().unwrap_or(&self.sha256)
    }
}

impl Lock {
    pub const VERSION: u32 = 1;

    pub fn load(file: &Path) -> anyhow::Result<Lock> {
        let text = crate::util::fs::read_to_string(file)?;
        Ok(Self::parse(file, &text)?)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Lock, ConfigError> {
        let lock: Lock = parse_toml(file, text)?;
        if lock.version != Self::VERSION {
            return Err(Errors::new(file, text).error(
                at!["version"],
                format!(
                    "lock version {} is not supported: expected {}",
                    lock.version,
                    Self::VERSION
                ),
            ));
        }
        Ok(lock)
    }

    pub fn get(&self, name: &str) -> Option<&LockedSource> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("# Written by `sanforge lock`. Every input of the recipe, pinned by sha256.\n# `sanforge build --locked` refuses to build when this file is missing or stale.\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_version_is_located() {
        let t = "# comment\nversion = 7\n";
        let e = Lock::parse(Path::new("r.lock"), t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "r.lock:2:11: lock version 7 is not supported: expected 1"
        );
    }
}
