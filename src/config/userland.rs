//! `[userland]` of a recipe, validated: the Debian packages the node runs (names, with
//! a version constraint only where the recipe wants one), the apt sources they are
//! resolved from (suite, components, architecture, repositories) and how the image's
//! file list is adjusted (`keep`, `drop`, `links`).
//!
//! Nothing here talks to apt: the resolver is [`crate::engine::apt`].

use super::spans::{at, Errors, Seg};
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

/// Validates `[userland]`, recording every error at the value at fault (the keep,
/// drop and link paths are checked with the recipe's other paths).
pub fn validate(raw: &super::recipe::UserlandSpec, errs: &mut Errors) -> Userland {
    if !valid_word(&raw.suite) {
        errs.at(
            at!["userland", "suite"],
            format!(
                "suite `{}`: expected a Debian suite name such as `bookworm`",
                raw.suite
            ),
        );
    }
    let architecture = raw.architecture.clone().unwrap_or_else(|| "amd64".into());
    if !valid_word(&architecture) {
        errs.at(
            at!["userland", "architecture"],
            format!(
                "architecture `{architecture}`: expected a Debian architecture such as `amd64`"
            ),
        );
    }
    let components = raw
        .components
        .clone()
        .unwrap_or_else(|| vec!["main".to_string()]);
    if let Err(m) = check_components(&components) {
        errs.at(at!["userland", "components"], m);
    }
    let sources = validate_repositories(raw, &components, errs);
    let packages = validate_packages(&raw.packages, errs);
    for (i, d) in raw.drop.iter().enumerate() {
        if let Err(m) = crate::util::paths::image_path(d) {
            errs.at(at!["userland", "drop", i], format!("[userland] drop: {m}"));
        }
    }
    // In-image paths are absolute from here on (`usr/bin/x` means `/usr/bin/x`).
    let absolute = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|p| format!("/{}", p.trim_start_matches('/')))
            .collect()
    };
    Userland {
        suite: raw.suite.clone(),
        architecture,
        components,
        sources,
        packages,
        keep: absolute(&raw.keep),
        drop: absolute(&raw.drop),
        links: raw.links.clone(),
    }
}

/// `[userland] repositories` as apt sources (Debian's archive with the recipe's suite
/// and components when the recipe names none).
fn validate_repositories(
    raw: &super::recipe::UserlandSpec,
    components: &[String],
    errs: &mut Errors,
) -> Vec<AptSource> {
    match &raw.repositories {
        None => default_sources(&raw.suite, components),
        Some(repos) if repos.is_empty() => {
            errs.at(
                at!["userland", "repositories"],
                "repositories: expected at least one `{ uri = \"…\" }` (or leave it out for Debian's archive)",
            );
            Vec::new()
        }
        Some(repos) => {
            let mut out = Vec::new();
            for (i, r) in repos.iter().enumerate() {
                let at_r = |k: &str| -> Vec<Seg> { at!["userland", "repositories", i, k].to_vec() };
                let uri = r.uri.trim_end_matches('/').to_string();
                let scheme_ok = uri.starts_with("http://")
                    || uri.starts_with("https://")
                    || uri.starts_with("file:///");
                if !scheme_ok {
                    errs.at(
                        &at_r("uri"),
                        format!(
                            "repository `{}`: expected an http://, https:// or file:/// URI",
                            r.uri
                        ),
                    );
                }
                if r.trusted && r.signed_by.is_some() {
                    errs.at(
                        &at_r("trusted"),
                        format!(
                            "repository `{}`: `trusted = true` and `signed-by` exclude each other",
                            r.uri
                        ),
                    );
                }
                let suites = r.suites.clone().unwrap_or_else(|| vec![raw.suite.clone()]);
                if suites.is_empty() || !suites.iter().all(|s| valid_word(s)) {
                    errs.at(
                        &at_r("suites"),
                        format!(
                            "repository `{}`: suites: expected suite names such as `bookworm`",
                            r.uri
                        ),
                    );
                }
                let comps = r.components.clone().unwrap_or_else(|| components.to_vec());
                if let Err(m) = check_components(&comps) {
                    errs.at(&at_r("components"), format!("repository `{}`: {m}", r.uri));
                }
                let signed_by = match (&r.signed_by, r.trusted) {
                    (_, true) => None,
                    (Some(p), false) => {
                        if !p.is_absolute() {
                            errs.at(
                                &at_r("signed-by"),
                                format!("repository `{}`: signed-by `{}`: expected an absolute path to a keyring", r.uri, p.display()),
                            );
                        }
                        Some(p.clone())
                    }
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
    }
}

/// `[userland] packages`, the list or the table form, sorted by name.
fn validate_packages(spec: &PackagesSpec, errs: &mut Errors) -> Vec<PackageRequest> {
    let mut packages: Vec<PackageRequest> = Vec::new();
    match spec {
        PackagesSpec::List(names) => {
            for (i, n) in names.iter().enumerate() {
                let at_p = at!["userland", "packages", i];
                if n.contains(['=', '(', ' ']) {
                    errs.at(
                        at_p,
                        format!("package `{n}`: a list names packages only; give versions in the table form, e.g. packages = {{ corosync = \"3.1.7-1+deb12u2\" }}"),
                    );
                } else if packages.iter().any(|p| p.name == *n) {
                    errs.at(at_p, format!("package `{n}` is listed twice"));
                } else if !valid_package_name(n) {
                    errs.at(at_p, bad_name(n));
                } else {
                    packages.push(PackageRequest {
                        name: n.clone(),
                        constraint: Constraint::Any,
                    });
                }
            }
        }
        PackagesSpec::Table(t) => {
            for (n, v) in t {
                let at_p = at!["userland", "packages", n];
                if !valid_package_name(n) {
                    errs.key(at_p, bad_name(n));
                    continue;
                }
                match parse_constraint(n, v) {
                    Ok(constraint) => packages.push(PackageRequest {
                        name: n.clone(),
                        constraint,
                    }),
                    Err(m) => errs.at(at_p, m),
                }
            }
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    packages
}

fn bad_name(n: &str) -> String {
    format!(
        "package `{n}`: expected a Debian package name (lowercase letters, digits, `+`, `-`, `.`)"
    )
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
        if c.iter().take(i).any(|y| y == x) {
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

    /// Validates `[userland]` written as `text`; the error messages, or the result.
    fn validate(text: &str) -> Result<Userland, String> {
        let full = format!("[userland]\n{text}\n");
        let file = std::path::Path::new("r.toml");
        let mut errs = Errors::new(file, &full);
        let u = super::validate(&spec(text), &mut errs);
        errs.finish(u).map_err(|e| e.to_string())
    }

    #[test]
    fn list_table_and_constraints() {
        let u = validate("packages = [\"pacemaker\", \"corosync\"]").unwrap();
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
        let u = validate(
            "packages = { corosync = \"3.1.7-1\", libqb100 = \">= 2.0\", busybox-static = \"*\", bash = \"= 5.2\" }",
        )
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
            ("drop = [\"/usr/../etc\"]", "climbs out of the image root"),
            ("repositories = [{ uri = \"ftp://x\" }]", "http://"),
            ("repositories = []", "at least one"),
        ] {
            let e = validate(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn repositories_expand_per_suite() {
        let u = validate(
            "suite = \"trixie\"\ncomponents = [\"main\", \"non-free-firmware\"]\nrepositories = [{ uri = \"file:///srv/repo/\", trusted = true }, { uri = \"http://m/debian\", suites = [\"a\", \"b\"], components = [\"main\"] }]",
        )
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
        let sid = validate("suite = \"sid\"").unwrap();
        assert_eq!(sid.sources.len(), 1);
    }
}
