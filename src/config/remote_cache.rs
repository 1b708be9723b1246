//! `[cache]` of a recipe: the stage cache shared past one machine (an OCI registry,
//! [`crate::engine::remote`]) and the public keys whose signatures make a pulled entry
//! trusted. Kept out of `recipe.rs` (which only calls [`validate`]).
//!
//! ```toml
//! [cache]
//! remote = "oci://registry.example:5000/team/sanforge-cache"
//! trusted-keys = ["keys/ci.pub", "keys/alice.pub"]
//! ```
//!
//! `SANFORGE_REMOTE_CACHE` and `build --remote-cache` override `remote` (the keys
//! stay the recipe's: what a build trusts is part of the project, reviewed like it).

use super::recipe::Project;
use super::spans::{at, Errors};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The environment variable naming the remote cache (overrides the recipe).
pub const REMOTE_ENV: &str = "SANFORGE_REMOTE_CACHE";
/// The environment variable with the registry's credentials, `USER:PASSWORD` (HTTP
/// Basic, or exchanged for a bearer token when the registry asks for one).
pub const AUTH_ENV: &str = "SANFORGE_REMOTE_CACHE_AUTH";
/// The environment variable naming the builder's secret key that signs pushes
/// (`sanforge keygen`'s `KEY`); without one a build only pulls.
pub const KEY_ENV: &str = "SANFORGE_REMOTE_CACHE_KEY";

/// `[cache]` as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheSpec {
    /// `oci://HOST[:PORT]/REPOSITORY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Public keys (`sanforge keygen`'s `KEY.pub`) whose signature makes a pulled
    /// entry trusted; an entry signed by any other key is ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<PathBuf>,
}

/// `[cache]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CacheConfig {
    pub remote: Option<RemoteUrl>,
    /// The trusted public keys, absolute, each an existing file.
    pub trusted_keys: Vec<PathBuf>,
}

/// Checks `[cache]`: the URL's form and that every trusted key is a public key file
/// inside the project (or an allowed directory). Errors go to `errs`, at the value.
pub fn validate(raw: Option<&CacheSpec>, proj: &Project, errs: &mut Errors) -> CacheConfig {
    let Some(raw) = raw else {
        return CacheConfig::default();
    };
    let mut trusted = Vec::new();
    for (i, k) in raw.trusted_keys.iter().enumerate() {
        let p = match proj.path(k) {
            Ok(p) => p,
            Err(m) => {
                errs.at(at!["cache", "trusted-keys", i], format!("trusted key {m}"));
                continue;
            }
        };
        match crate::contract::signature::load_verifying_key(&p) {
            Ok(_) => trusted.push(p),
            Err(e) => errs.at(
                at!["cache", "trusted-keys", i],
                format!(
                    "trusted key `{}` ({}): {e:#}; expected a public key written by `sanforge keygen` (KEY.pub)",
                    k.display(),
                    p.display()
                ),
            ),
        }
    }
    let remote = raw
        .remote
        .as_deref()
        .and_then(|r| errs.check(at!["cache", "remote"], parse_remote_url(r)));
    CacheConfig {
        remote,
        trusted_keys: trusted,
    }
}

/// A remote stage cache: a repository of an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `HOST[:PORT]`.
    pub host: String,
    /// The repository inside the registry (`sanforge-cache`, `team/sanforge`).
    pub repository: String,
}

impl RemoteUrl {
    /// `SCHEME://HOST[:PORT]/v2/REPOSITORY` (the base of every API call).
    pub fn api_base(&self) -> String {
        format!("{}://{}/v2/{}", self.scheme, self.host, self.repository)
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}/{}", self.host, self.repository)
    }
}

/// `oci://HOST[:PORT]/REPOSITORY`: https, or plain HTTP for a registry on the
/// loopback (`127.*`, `localhost`, `[::1]`, as Docker treats them); `oci+http://`
/// and `oci+https://` choose explicitly. The repository follows the OCI distribution
/// spec's name grammar (lowercase components separated by `/`).
pub fn parse_remote_url(s: &str) -> Result<RemoteUrl, String> {
    let bad = |why: &str| {
        format!("remote cache `{s}`: {why}; expected oci://HOST[:PORT]/REPOSITORY, e.g. oci://127.0.0.1:5000/sanforge-cache")
    };
    let (forced, rest) = if let Some(r) = s.strip_prefix("oci+http://") {
        (Some("http"), r)
    } else if let Some(r) = s.strip_prefix("oci+https://") {
        (Some("https"), r)
    } else if let Some(r) = s.strip_prefix("oci://") {
        (None, r)
    } else {
        return Err(bad("unknown scheme"));
    };
    let (host, repository) = rest
        .split_once('/')
        .ok_or_else(|| bad("no repository after the host"))?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !host_ok {
        return Err(bad("invalid host"));
    }
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if !repository.split('/').all(component_ok) {
        return Err(bad("invalid repository name (lowercase letters, digits, `.`, `_`, `-`, components separated by `/`)"));
    }
    let name = match host.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let loopback = name == "localhost" || name == "[::1]" || name.starts_with("127.");
    let scheme = forced.unwrap_or(if loopback { "http" } else { "https" });
    Ok(RemoteUrl {
        scheme,
        host: host.to_string(),
        repository: repository.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_their_scheme_and_bad_ones_say_why() {
        let u = parse_remote_url("oci://127.0.0.1:5000/sanforge-cache").unwrap();
        assert_eq!(u.scheme, "http");
        assert_eq!(u.api_base(), "http://127.0.0.1:5000/v2/sanforge-cache");
        assert_eq!(u.to_string(), "oci://127.0.0.1:5000/sanforge-cache");
        let u = parse_remote_url("oci://registry.example/team/cache").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.repository, "team/cache");
        assert_eq!(
            parse_remote_url("oci+http://cache.lan:5000/c")
                .unwrap()
                .scheme,
            "http"
        );
        for (bad, why) in [
            ("s3://bucket/x", "unknown scheme"),
            ("oci://127.0.0.1:5000", "no repository"),
            ("oci://127.0.0.1:5000/Cache", "invalid repository"),
            ("oci://127.0.0.1:5000/a//b", "invalid repository"),
            ("oci://ho st/x", "invalid host"),
        ] {
            let e = parse_remote_url(bad).unwrap_err();
            assert!(
                e.contains(why) && e.contains(bad) && e.contains("expected oci://"),
                "{e}"
            );
        }
    }
}
