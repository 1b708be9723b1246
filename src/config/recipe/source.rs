//! Sources as written (`url`, `debian` or `path`, see [`SourceSpec`]) and validated
//! ([`Source`]).

use super::Project;
use crate::config::spans::{at, Errors, Seg};
use crate::util::hash::TreeHash;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A source as written in the recipe: exactly one of `url`, `debian` or `path`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceSpec {
    /// Ordered list of mirrors; the first that serves the right bytes wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// For a `url` or `path` source: the tree hash (`tree-v1:…`) of its unpacked
    /// content, instead of the sha256 of one archive (any archive or directory with
    /// the same files will do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// A Debian binary package name (`version` required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// For a Debian package: the file inside the package that is the actual source
    /// (e.g. `usr/src/linux-source-6.1.tar.xz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// A local file or directory (relative to the project root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// `url = "…"` or `url = ["…", "…"]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum UrlList {
    One(String),
    Many(Vec<String>),
}

impl UrlList {
    pub fn list(&self) -> Vec<String> {
        match self {
            UrlList::One(s) => vec![s.clone()],
            UrlList::Many(v) => v.clone(),
        }
    }
}

/// A validated source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    Url {
        mirrors: Vec<String>,
        sha256: String,
    },
    /// An archive from the first mirror whose unpacked tree has this tree hash.
    UrlTree {
        mirrors: Vec<String>,
        tree: TreeHash,
    },
    Debian {
        package: String,
        version: String,
        member: Option<String>,
    },
    Path {
        /// Absolute.
        path: PathBuf,
        /// As written in the recipe (relative to the project root): what the lock,
        /// manifest and keys record, so they do not depend on where the project is.
        written: PathBuf,
        /// The tree hash the path (a directory or an archive) must have, if pinned.
        tree: Option<TreeHash>,
    },
}

impl Source {
    /// The tree hash that pins this source, if it is pinned by content.
    pub fn tree(&self) -> Option<&TreeHash> {
        match self {
            Source::UrlTree { tree, .. } => Some(tree),
            Source::Path { tree, .. } => tree.as_ref(),
            _ => None,
        }
    }
}

/// Validates the source `s` written at `path` (`what` names it in messages); records
/// the error at the field at fault.
pub(super) fn check_source(
    errs: &mut Errors,
    path: &[Seg],
    what: &str,
    s: &SourceSpec,
    proj: &Project,
) -> Option<Source> {
    match validate_source(s, proj) {
        Ok(v) => Some(v),
        Err((sub, m)) => {
            let mut p = path.to_vec();
            p.extend(sub);
            errs.at(&p, format!("{what}: {m}"));
            None
        }
    }
}

/// A validated source, or the path (below the source's table) of the field at fault
/// and what is wrong with it.
fn validate_source(s: &SourceSpec, proj: &Project) -> Result<Source, (Vec<Seg>, String)> {
    let kinds = [s.url.is_some(), s.debian.is_some(), s.path.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if kinds != 1 {
        return Err((
            Vec::new(),
            "expected exactly one of `url`, `debian` or `path`".into(),
        ));
    }
    if let Some(u) = &s.url {
        let mirrors = u.list();
        if mirrors.is_empty() {
            return Err((at!["url"].to_vec(), "`url` is an empty list".into()));
        }
        for (i, m) in mirrors.iter().enumerate() {
            if !(m.starts_with("http://") || m.starts_with("https://") || m.starts_with("file://"))
            {
                let at_m = match u {
                    UrlList::One(_) => at!["url"].to_vec(),
                    UrlList::Many(_) => at!["url", i].to_vec(),
                };
                return Err((
                    at_m,
                    format!("url `{m}`: expected http://, https:// or file://"),
                ));
            }
        }
        let tree = s.tree.as_deref().map(parse_tree).transpose()?;
        if let Some(tree) = tree {
            if s.sha256.is_some() {
                return Err((
                    at!["sha256"].to_vec(),
                    "a `url` source is pinned by `sha256` (the archive) or `tree` (its unpacked content), not both".into(),
                ));
            }
            return Ok(Source::UrlTree { mirrors, tree });
        }
        let Some(sha) = s.sha256.clone() else {
            return Err((
                Vec::new(),
                "a `url` source needs `sha256` (of the file) or `tree` (of an archive's unpacked content)".into(),
            ));
        };
        if !crate::util::hash::is_sha256(&sha) {
            return Err((
                at!["sha256"].to_vec(),
                format!("sha256 `{sha}`: expected 64 lowercase hex digits"),
            ));
        }
        return Ok(Source::Url {
            mirrors,
            sha256: sha,
        });
    }
    if let Some(p) = &s.debian {
        if s.tree.is_some() {
            return Err((
                at!["tree"].to_vec(),
                "`tree` pins `url` and `path` sources: a `debian` source is pinned by apt".into(),
            ));
        }
        let Some(version) = s.version.clone() else {
            return Err((Vec::new(), "a `debian` source needs `version`".into()));
        };
        return Ok(Source::Debian {
            package: p.clone(),
            version,
            member: s.member.clone(),
        });
    }
    let written = s.path.clone().unwrap_or_default();
    let path = proj
        .path(&written)
        .map_err(|m| (vec![Seg::from("path")], format!("path {m}")))?;
    let tree = s.tree.as_deref().map(parse_tree).transpose()?;
    Ok(Source::Path {
        path,
        written,
        tree,
    })
}

fn parse_tree(t: &str) -> Result<TreeHash, (Vec<Seg>, String)> {
    TreeHash::parse(t).map_err(|m| (at!["tree"].to_vec(), m))
}
