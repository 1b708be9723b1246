//! `[userland]` of a recipe, validated: the Debian packages the node runs (names, with
//! a version constraint only where the recipe wants one), the apt sources they are
//! resolved from (suite, components, architecture, repositories) and how the image's
//! file list is adjusted (`keep`, `drop`, `links`).
//!
//! Nothing here talks to apt: the resolver is [`crate::engine::apt`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Debian's archive, the default repository.
pub const DEBIAN_ARCHIVE: &str = "http://deb.debian.org/debian";
/// Debian's security archive (the suite's `-security` updates).
pub const DEBIAN_SECURITY: &str = "http://deb.debian.org/debian-security";
/// The keyring that signs both.
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// `packages = ["corosync", …]` or `packages = { corosync = "3.1.7-1+deb12u2", … }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PackagesSpec {
    List(Vec<String>),
    Table(BTreeMap<String, String>),
}

impl Default for PackagesSpec {
    fn default() -> Self {
        PackagesSpec::List(Vec::new())
    }
}

/// One entry of `repositories = [{ uri = "…", suites = ["…"], … }]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RepositorySpec {
    /// `http://`, `https://` or `file:///` URI of the archive root (the directory
    /// holding `dists/` and `pool/`).
    pub uri: String,
    /// Default: the recipe's `suite`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suites: Option<Vec<String>>,
    /// Default: the recipe's `components`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    /// The keyring that signs it; default Debian's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<PathBuf>,
    /// An unsigned repository (a local test archive): apt does not check its
    /// signature; the lock still pins every `.deb` by sha256.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trusted: bool,
}

/// A version constraint on a requested package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// `"*"`: whatever the archive's candidate is.
    Any,
    /// `"3.1.7-1"` or `"= 3.1.7-1"`: exactly this version.
    Exact(String),
    /// `">= 3.1"`, `"<< 4"`, …: Debian's relations (`<<`, `<=`, `>=`, `>>`).
    Relation(&'static str, String),
}

/// A package the recipe names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRequest {
    pub name: String,
    pub constraint: Constraint,
}

impl PackageRequest {
    /// In Debian's dependency syntax: `corosync`, `corosync (= 3.1.7-1)`, `libqb100 (>= 2)`.
    pub fn spec(&self) -> String {
        match &self.constraint {
            Constraint::Any => self.name.clone(),
            Constraint::Exact(v) => format!("{} (= {v})", self.name),
            Constraint::Relation(op, v) => format!("{} ({op} {v})", self.name),
        }
    }
}

/// One apt source: a repository URI and one suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
    /// None when `trusted`.
    pub signed_by: Option<PathBuf>,
    pub trusted: bool,
}

impl AptSource {
    /// As a sources.list line: `deb [trusted=yes] URI SUITE COMPONENT…` (recorded in the
    /// lock; the keyring is not part of it).
    pub fn line(&self) -> String {
        format!(
            "deb {}{} {} {}",
            if self.trusted { "[trusted=yes] " } else { "" },
            self.uri.trim_end_matches('/'),
            self.suite,
            self.components.join(" ")
        )
    }
}

/// `[userland]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Userland {
    pub suite: String,
    pub architecture: String,
    pub components: Vec<String>,
    /// One entry per (repository, suite), in recipe order.
    pub sources: Vec<AptSource>,
    /// Sorted by name.
    pub packages: Vec<PackageRequest>,
    pub keep: Vec<String>,
    pub drop: Vec<String>,
    pub links: BTreeMap<String, String>,
}

impl Userland {
    /// The requested packages in Debian's dependency syntax, sorted (as in the lock).
    pub fn requested(&self) -> Vec<String> {
        self.packages.iter().map(PackageRequest::spec).collect()
    }

    /// The sources as sources.list lines (as in the lock).
    pub fn source_lines(&self) -> Vec<String> {
        self.sources.iter().map(AptSource::line).collect()
    }

    pub fn request(&self, name: &str) -> Option<&PackageRequest> {
        self.packages.iter().find(|p| p.name == name)
    }
}

fn valid_package_name(n: &str) -> bool {
    n.len() >= 2
        && n.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

fn valid_version(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~:-".contains(&b))
}

fn valid_word(w: &str) -> bool {
    !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Parses a table value: `"*"`, `"1.2-3"`, `"= 1.2-3"`, `">= 1.2"`, …
pub fn parse_constraint(name: &str, v: &str) -> Result<Constraint, String> {
    let v = v.trim();
    if v == "*" {
        return Ok(Constraint::Any);
    }
    let (op, rest) = ["<<", "<=", ">=", ">>", "="]
        .iter()
        .find_map(|op| v.strip_prefix(op).map(|r| (*op, r.trim())))
        .unwrap_or(("", v));
    if op.is_empty() && (v.starts_with('<') || v.starts_with('>')) {
        return Err(format!("package `{name}`: version `{v}`: Debian's relations are `<<`, `<=`, `=`, `>=` and `>>`"));
    }
    if !valid_version(rest) {
        return Err(format!("package `{name}`: version `{v}`: expected a Debian version (`3.1.7-1+deb12u2`), a relation (`>= 3.1`) or `*` for any"));
    }
    Ok(match op {
        "" | "=" => Constraint::Exact(rest.to_string()),
        op => Constraint::Relation(op, rest.to_string()),
    })
}

/// The default repositories of `suite`: Debian's archive (the suite and its
/// `-updates`) and the security archive (`-security`); only the archive for unstable.
fn default_sources(suite: &str, components: &[String]) -> Vec<AptSource> {
    let src = |uri: &str, suite: String| AptSource {
        uri: uri.to_string(),
        suite,
        components: components.to_vec(),
        signed_by: Some(PathBuf::from(DEBIAN_KEYRING)),
        trusted: false,
    };
    if matches!(suite, "sid" | "unstable" | "experimental" | "rc-buggy") {
        return vec![src(DEBIAN_ARCHIVE, suite.to_string())];
    }
    vec![
        src(DEBIAN_ARCHIVE, suite.to_string()),
        src(DEBIAN_ARCHIVE, format!("{suite}-updates")),
        src(DEBIAN_SECURITY, format!("{suite}-security")),
    ]
}

/// An absolute in-image path without `..` (for keep, drop and links).
fn check_image_path(what: &str, p: &str) -> Result<(), String> {
    if !p.starts_with('/') || p.split('/').any(|c| c == "..") || p.contains('\0') {
        return Err(format!(
            "{what} `{p}`: expected an absolute path in the image, without `..`"
        ));
    }
    Ok(())
}

/// Validates `[userland]`. Err: (the key to locate, the message).
pub fn validate(raw: &super::recipe::UserlandSpec) -> Result<Userland, (String, String)> {
    let e = |k: &str, m: String| (k.to_string(), m);
    if !valid_word(&raw.suite) {
        return Err(e(
            "suite",
            format!(
                "suite `{}`: expected a Debian suite name such as `bookworm`",
                raw.suite
            ),
        ));
    }
    let architecture = raw.architecture.clone().unwrap_or_else(|| "amd64".into());
    if !valid_word(&architecture) {
        return Err(e(
            "architecture",
            format!(
                "architecture `{architecture}`: expected a Debian architecture such as `amd64`"
            ),
        ));
    }
    let components = raw
        .components
        .clone()
        .unwrap_or_else(|| vec!["main".to_string()]);
    check_components(&components).map_err(|m| e("components", m))?;
    let sources = match &raw.repositories {
        None => default_sources(&raw.suite, &components),
        Some(repos) if repos.is_empty() => {
            return Err(e(
                "repositories",
                "repositories: expected at least one `{ uri = \"…\" }` (or leave it out for Debian's archive)".into(),
            ))
        }
        Some(repos) => {
            let mut out = Vec::new();
            for r in repos {
                let uri = r.uri.trim_end_matches('/').to_string();
                let scheme_ok = uri.starts_with("http://")
                    || uri.starts_with("https://")
                    || uri.starts_with("file:///");
                if !scheme_ok {
                    return Err(e(
                        "repositories",
                        format!("repository `{}`: expected an http://, https:// or file:/// URI", r.uri),
                    ));
                }
                if r.trusted && r.signed_by.is_some() {
                    return Err(e(
                        "repositories",
                        format!("repository `{}`: `trusted = true` and `signed-by` exclude each other", r.uri),
                    ));
                }
                let suites = r.suites.clone().unwrap_or_else(|| vec![raw.suite.clone()]);
                if suites.is_empty() || !suites.iter().all(|s| valid_word(s)) {
                    return Err(e(
                        "repositories",
                        format!("repository `{}`: suites: expected suite names such as `bookworm`", r.uri),
                    ));
                }
                let comps = r.components.clone().unwrap_or_else(|| components.clone());
                check_components(&comps)
                    .map_err(|m| e("repositories", format!("repository `{}`: {m}", r.uri)))?;
                let signed_by = match (&r.signed_by, r.trusted) {
                    (_, true) => None,
                    (Some(p), false) if !p.is_absolute() => {
                        return Err(e(
                            "repositories",
                            format!("repository `{}`: signed-by `{}`: expected an absolute path to a keyring", r.uri, p.display()),
                        ))
                    }
                    (Some(p), false) => Some(p.clone()),
                    (None, false) => Some(PathBuf::from(DEBIAN_KEYRING)),
                };
                for suite in suites {
                    out.push(AptSource {
                        uri: uri.clone(),
                        suite,
                        components: comps.clone(),
                        signed_by: signed_by.clone(),
                        trusted: r.trusted,
                    });
                }
            }
            out
        }
    };
    let mut packages: Vec<PackageRequest> = Vec::new();
    match &raw.packages {
        PackagesSpec::List(names) => {
            for n in names {
                if n.contains(['=', '(', ' ']) {
                    return Err(e(
                        "packages",
                        format!("package `{n}`: a list names packages only; give versions in the table form, e.g. packages = {{ corosync = \"3.1.7-1+deb12u2\" }}"),
                    ));
                }
                if packages.iter().any(|p| p.name == *n) {
                    return Err(e("packages", format!("package `{n}` is listed twice")));
                }
                packages.push(PackageRequest {
                    name: n.clone(),
                    constraint: Constraint::Any,
                });
            }
        }
        PackagesSpec::Table(t) => {
            for (n, v) in t {
                let constraint = parse_constraint(n, v).map_err(|m| e(n, m))?;
                packages.push(PackageRequest {
                    name: n.clone(),
                    constraint,
                });
            }
        }
    }
    for p in &packages {
        if !valid_package_name(&p.name) {
            return Err(e(
                &p.name,
                format!("package `{}`: expected a Debian package name (lowercase letters, digits, `+`, `-`, `.`)", p.name),
            ));
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    for k in &raw.keep {
        check_image_path("keep", k).map_err(|m| e("keep", m))?;
    }
    for d in &raw.drop {
        check_image_path("drop", d).map_err(|m| e("drop", m))?;
    }
    for l in raw.links.keys() {
        check_image_path("link", l).map_err(|m| e(l, m))?;
    }
    Ok(Userland {
        suite: raw.suite.clone(),
        architecture,
        components,
        sources,
        packages,
        keep: raw.keep.clone(),
        drop: raw.drop.clone(),
        links: raw.links.clone(),
    })
}

fn check_components(c: &[String]) -> Result<(), String> {
    if c.is_empty() {
        return Err("components: expected at least one, e.g. [\"main\"]".into());
    }
    for (i, x) in c.iter().enumerate() {
        if !valid_word(x) {
            return Err(format!(
                "component `{x}`: expected a name such as `main` or `non-free-firmware`"
            ));
        }
        if c[..i].contains(x) {
            return Err(format!("component `{x}` is listed twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::recipe::UserlandSpec;

    fn spec(toml_text: &str) -> UserlandSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn list_table_and_constraints() {
        let u = validate(&spec("packages = [\"pacemaker\", \"corosync\"]")).unwrap();
        assert_eq!(u.requested(), vec!["corosync", "pacemaker"]);
        assert_eq!(u.components, vec!["main"]);
        assert_eq!(
            u.source_lines(),
            vec![
                "deb http://deb.debian.org/debian bookworm main",
                "deb http://deb.debian.org/debian bookworm-updates main",
                "deb http://deb.debian.org/debian-security bookworm-security main",
            ]
        );
        let u = validate(&spec(
            "packages = { corosync = \"3.1.7-1\", libqb100 = \">= 2.0\", busybox-static = \"*\", bash = \"= 5.2\" }",
        ))
        .unwrap();
        assert_eq!(
            u.requested(),
            vec![
                "bash (= 5.2)",
                "busybox-static",
                "corosync (= 3.1.7-1)",
                "libqb100 (>= 2.0)"
            ]
        );
        for (bad, want) in [
            ("packages = { a1 = \"> 2\" }", "Debian's relations"),
            ("packages = { a1 = \"\" }", "expected a Debian version"),
            ("packages = [\"a1=2\"]", "table form"),
            ("packages = [\"a1\", \"a1\"]", "listed twice"),
            ("packages = [\"Foo\"]", "expected a Debian package name"),
            ("components = []", "at least one"),
            ("components = [\"main\", \"main\"]", "listed twice"),
            ("keep = [\"usr/bin/x\"]", "absolute path"),
            ("drop = [\"/usr/../etc\"]", "without `..`"),
            ("repositories = [{ uri = \"ftp://x\" }]", "http://"),
            ("repositories = []", "at least one"),
        ] {
            let e = validate(&spec(bad)).unwrap_err().1;
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn repositories_expand_per_suite() {
        let u = validate(&spec(
            "suite = \"trixie\"\ncomponents = [\"main\", \"non-free-firmware\"]\nrepositories = [{ uri = \"file:///srv/repo/\", trusted = true }, { uri = \"http://m/debian\", suites = [\"a\", \"b\"], components = [\"main\"] }]",
        ))
        .unwrap();
        assert_eq!(
            u.source_lines(),
            vec![
                "deb [trusted=yes] file:///srv/repo trixie main non-free-firmware",
                "deb http://m/debian a main",
                "deb http://m/debian b main",
            ]
        );
        assert_eq!(u.sources[0].signed_by, None);
        assert_eq!(
            u.sources[1].signed_by.as_deref(),
            Some(std::path::Path::new(DEBIAN_KEYRING))
        );
        let sid = validate(&spec("suite = \"sid\"")).unwrap();
        assert_eq!(sid.sources.len(), 1);
    }
}
