//! The few calls of the OCI distribution API (v2) the remote stage cache needs:
//! `HEAD`/`GET`/`PUT` of a manifest by tag, `HEAD`/`GET` of a blob, and a monolithic
//! blob upload (`POST /blobs/uploads/`, then one `PUT …?digest=` with the body).
//!
//! Why by hand: the crates that speak this API (oci-client, oci-distribution) are
//! built on tokio and reqwest, a second HTTP stack and an async runtime for six
//! requests that ureq, which the builder already uses for downloads, does in a few
//! lines.
//!
//! Authentication: the first call asks `GET /v2/`; a `401` with a `Basic` challenge
//! takes the credentials of `SANFORGE_REMOTE_CACHE_AUTH` (`USER:PASSWORD`), a
//! `Bearer` challenge (Harbor, GitLab, GHCR) exchanges them (or nothing, for
//! anonymous pulls) at the challenge's realm for a token scoped to the repository
//! (`pull,push`). A later `401` (an expired token) renegotiates once.
//!
//! Every transport failure (refused, reset, timed out) is [`OciError::Down`]: the
//! caller stops talking to the registry for the rest of the build. Connects give up
//! after [`CONNECT_TIMEOUT`].

use crate::config::remote_cache::{RemoteUrl, AUTH_ENV};
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

/// How long a connect may take before the registry is considered down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a read or write may stall.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest manifest accepted (OCI registries limit them to 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The registry cannot be reached (or stopped answering).
    #[error("{0}")]
    Down(String),
    /// It answered, but not as expected.
    #[error("{0}")]
    Refused(String),
    /// It wants credentials that were not given or that it does not accept.
    #[error("{0}")]
    Unauthorized(String),
}

pub type OciResult<T> = std::result::Result<T, OciError>;

/// One repository of a registry.
pub struct Registry {
    agent: ureq::Agent,
    /// `SCHEME://HOST[:PORT]`.
    origin: String,
    /// `SCHEME://HOST[:PORT]/v2/REPOSITORY`.
    base: String,
    repository: String,
    /// `USER:PASSWORD`, when given.
    credentials: Option<String>,
    /// The `Authorization` header: `None` until negotiated, then `Some(None)` when the
    /// registry needs none.
    auth: Mutex<Option<Option<String>>>,
}

impl Registry {
    pub fn new(url: &RemoteUrl) -> Registry {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout_read(IO_TIMEOUT)
            .timeout_write(IO_TIMEOUT)
            .redirects(5)
            .user_agent(concat!("sanforge/", env!("CARGO_PKG_VERSION")))
            .build();
        Registry {
            agent,
            origin: format!("{}://{}", url.scheme, url.host),
            base: url.api_base(),
            repository: url.repository.clone(),
            credentials: std::env::var(AUTH_ENV).ok().filter(|c| !c.is_empty()),
            auth: Mutex::new(None),
        }
    }

    /// A request with the negotiated `Authorization` header.
    fn request(&self, method: &str, url: &str) -> OciResult<ureq::Request> {
        let cached = self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let header = match cached {
            Some(h) => h,
            None => self.negotiate()?,
        };
        let r = self.agent.request(method, url);
        Ok(match header {
            Some(h) => r.set("Authorization", &h),
            None => r,
        })
    }

    /// Sends a request without a body (or with `bytes`); a `401` renegotiates once.
    fn send(
        &self,
        method: &str,
        url: &str,
        build: impl Fn(ureq::Request) -> ureq::Request,
        bytes: Option<&[u8]>,
    ) -> OciResult<ureq::Response> {
        for attempt in 0..2 {
            let req = build(self.request(method, url)?);
            let r = match bytes {
                Some(b) => req.send_bytes(b),
                None => req.call(),
            };
            match r {
                Err(ureq::Error::Status(401, _)) if attempt == 0 => {
                    *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Err(ureq::Error::Status(401, _)) => break,
                r => return r.map_err(|e| err(method, url, e)),
            }
        }
        Err(OciError::Unauthorized(format!(
            "{method} {url}: HTTP 401 Unauthorized after authenticating: {} {AUTH_ENV}",
            if self.credentials.is_some() {
                "check"
            } else {
                "set USER:PASSWORD in"
            }
        )))
    }

    /// Finds out how the registry authenticates (`GET /v2/`) and remembers the header.
    fn negotiate(&self) -> OciResult<Option<String>> {
        let url = format!("{}/v2/", self.origin);
        let basic = self.credentials.as_ref().map(|c| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(c)
            )
        });
        let header = match self.agent.get(&url).call() {
            Ok(_) => None,
            Err(ureq::Error::Status(401, r)) => {
                let challenge = r.header("WWW-Authenticate").unwrap_or_default().to_string();
                if challenge
                    .get(..6)
                    .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
                {
                    Some(self.token(&challenge, basic.as_deref())?)
                } else if basic.is_some() {
                    basic
                } else {
                    return Err(OciError::Unauthorized(format!(
                        "GET {url}: the registry asks for credentials ({challenge}): set {AUTH_ENV}=USER:PASSWORD"
                    )));
                }
            }
            Err(e) => return Err(err("GET", &url, e)),
        };
        *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Some(header.clone());
        Ok(header)
    }

    /// A bearer token for this repository from the challenge's realm.
    fn token(&self, challenge: &str, basic: Option<&str>) -> OciResult<String> {
        let params = challenge_params(challenge);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(realm) = get("realm") else {
            return Err(OciError::Refused(format!(
                "the registry's challenge `{challenge}` names no realm: expected Bearer realm=\"…\""
            )));
        };
        let mut req = self.agent.get(realm).query(
            "scope",
            &format!("repository:{}:pull,push", self.repository),
        );
        if let Some(service) = get("service") {
            req = req.query("service", service);
        }
        if let Some(b) = basic {
            req = req.set("Authorization", b);
        }
        let text = req
            .call()
            .map_err(|e| match err("GET", realm, e) {
                OciError::Refused(m) => OciError::Unauthorized(m),
                e => e,
            })?
            .into_string()
            .map_err(|e| OciError::Down(format!("GET {realm}: {e}")))?;
        let body: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| OciError::Refused(format!("GET {realm}: not a token response ({e})")))?;
        body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| OciError::Refused(format!("GET {realm}: the answer has no token")))
    }

    /// The digest of the manifest tagged `tag`, or `None` when there is none.
    pub fn manifest_digest(&self, tag: &str) -> OciResult<Option<String>> {
        let url = format!("{}/manifests/{tag}", self.base);
        match self.send("HEAD", &url, |r| r.set("Accept", MANIFEST_TYPE), None) {
            Ok(r) => Ok(Some(
                r.header("Docker-Content-Digest")
                    .unwrap_or_default()
                    .to_string(),
            )),
            Err(OciError::Refused(m)) if m.contains("HTTP 404") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The manifest tagged `tag` (its bytes as served), or `None`.
    pub fn get_manifest(&self, tag: &str) -> OciResult<Option<Vec<u8>>> {
        let url = format!("{}/manifests/{tag}", self.base);
        let resp = match self.send("GET", &url, |r| r.set("Accept", MANIFEST_TYPE), None) {
            Ok(r) => r,
            Err(OciError::Refused(m)) if m.contains("HTTP 404") => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| OciError::Down(format!("GET {url}: {e}")))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(OciError::Refused(format!(
                "GET {url}: the manifest is larger than {MAX_MANIFEST} bytes"
            )));
        }
        Ok(Some(bytes))
    }

    /// Stores `manifest` under `tag`.
    pub fn put_manifest(&self, tag: &str, manifest: &[u8]) -> OciResult<()> {
        let url = format!("{}/manifests/{tag}", self.base);
        self.send(
            "PUT",
            &url,
            |r| r.set("Content-Type", MANIFEST_TYPE),
            Some(manifest),
        )?;
        Ok(())
    }

    /// Whether the registry holds blob `digest` (`sha256:…`).
    pub fn has_blob(&self, digest: &str) -> OciResult<bool> {
        let url = format!("{}/blobs/{digest}", self.base);
        match self.send("HEAD", &url, |r| r, None) {
            Ok(_) => Ok(true),
            Err(OciError::Refused(m)) if m.contains("HTTP 404") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads `size` bytes from `body` as blob `digest` in one request.
    pub fn push_blob(&self, digest: &str, size: u64, body: impl Read) -> OciResult<()> {
        let url = format!("{}/blobs/uploads/", self.base);
        let resp = self.send("POST", &url, |r| r, Some(b""))?;
        let location = resp.header("Location").unwrap_or_default();
        if location.is_empty() {
            return Err(OciError::Refused(format!(
                "POST {url}: HTTP {} without a Location header: expected the upload URL",
                resp.status()
            )));
        }
        let mut put = if location.starts_with('/') {
            format!("{}{location}", self.origin)
        } else {
            location.to_string()
        };
        put.push(if put.contains('?') { '&' } else { '?' });
        put.push_str("digest=");
        put.push_str(digest);
        // The body is a stream: it cannot be sent twice, so no 401 retry here (the
        // POST just before renewed an expired token).
        self.request("PUT", &put)?
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &size.to_string())
            .send(body)
            .map_err(|e| err("PUT", &put, e))?;
        Ok(())
    }

    /// A reader of blob `digest` and its length when the registry says it.
    pub fn get_blob(&self, digest: &str) -> OciResult<(Box<dyn Read + Send>, Option<u64>)> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self.send("GET", &url, |r| r, None)?;
        let len = resp
            .header("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        Ok((resp.into_reader(), len))
    }
}

/// The `key="value"` parameters of a `WWW-Authenticate` challenge (values may hold
/// commas inside their quotes: `scope="repository:x:pull,push"`).
pub fn challenge_params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.split_once(' ').map_or("", |(_, r)| r);
    let mut out = Vec::new();
    let (mut key, mut value) = (String::new(), String::new());
    let (mut in_value, mut quoted) = (false, false);
    for c in rest.chars() {
        match (in_value, quoted, c) {
            (false, _, '=') => in_value = true,
            (false, _, ',') => key.clear(),
            (false, _, c) if !c.is_whitespace() => key.push(c),
            (false, _, _) => {}
            (true, false, '"') if value.is_empty() => quoted = true,
            (true, true, '"') => quoted = false,
            (true, false, ',') => {
                out.push((
                    std::mem::take(&mut key).to_ascii_lowercase(),
                    std::mem::take(&mut value),
                ));
                in_value = false;
            }
            (true, _, c) => value.push(c),
        }
    }
    if in_value {
        out.push((key.to_ascii_lowercase(), value));
    }
    out
}

/// A ureq error as an [`OciError`]: a status is the registry's answer, anything else
/// means it cannot be reached.
fn err(method: &str, url: &str, e: ureq::Error) -> OciError {
    match e {
        ureq::Error::Status(code, r) => {
            let status = r.status_text().to_string();
            // The registry's JSON error body says which rule the request broke.
            let mut body = String::new();
            let _ = r.into_reader().take(512).read_to_string(&mut body);
            OciError::Refused(format!(
                "{method} {url}: HTTP {code} {status}{}{}",
                if body.trim().is_empty() { "" } else { ": " },
                body.trim()
            ))
        }
        ureq::Error::Transport(t) => {
            let mut s = format!("{method} {url}: {}", t.kind());
            if let Some(m) = t.message() {
                s.push_str(": ");
                s.push_str(m);
            }
            if let Some(src) = std::error::Error::source(&t) {
                s.push_str(&format!(" ({src})"));
            }
            OciError::Down(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_parsed_with_commas_inside_quotes() {
        let p = challenge_params(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/cache:pull,push""#,
        );
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("realm"), Some("https://auth.example/token"));
        assert_eq!(get("service"), Some("registry.example"));
        assert_eq!(get("scope"), Some("repository:team/cache:pull,push"));
        assert_eq!(
            challenge_params(r#"Basic realm="x""#),
            vec![("realm".to_string(), "x".to_string())]
        );
    }
}
