//! The few calls of the OCI distribution API (v2) the remote stage cache needs:
//! `HEAD`/`GET`/`PUT` of a manifest by tag, `HEAD`/`GET` of a blob, and a monolithic
//! blob upload (`POST /blobs/uploads/`, then one `PUT …?digest=` with the body).
//!
//! Why by hand: the crates that speak this API (oci-client, oci-distribution) are
//! built on tokio and reqwest, a second HTTP stack and an async runtime for six
//! requests that ureq, which the builder already uses for downloads, does in a few
//! lines. Anonymous access only (a registry on the loopback or the LAN, as Debian's
//! `docker-registry` runs it); token authentication is not implemented.
//!
//! Every transport failure (refused, reset, timed out) is [`OciError::Down`]: the
//! caller stops talking to the registry for the rest of the build. Connects give up
//! after [`CONNECT_TIMEOUT`].

use crate::config::remote_cache::RemoteUrl;
use std::io::Read;
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
}

pub type OciResult<T> = std::result::Result<T, OciError>;

/// One repository of a registry.
pub struct Registry {
    agent: ureq::Agent,
    /// `SCHEME://HOST[:PORT]`.
    origin: String,
    /// `SCHEME://HOST[:PORT]/v2/REPOSITORY`.
    base: String,
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
        }
    }

    /// The digest of the manifest tagged `tag`, or `None` when there is none.
    pub fn manifest_digest(&self, tag: &str) -> OciResult<Option<String>> {
        let url = format!("{}/manifests/{tag}", self.base);
        match self
            .agent
            .head(&url)
            .set("Accept", MANIFEST_TYPE)
            .call()
            .map_err(|e| err("HEAD", &url, e))
        {
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
        let resp = match self
            .agent
            .get(&url)
            .set("Accept", MANIFEST_TYPE)
            .call()
            .map_err(|e| err("GET", &url, e))
        {
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
        self.agent
            .put(&url)
            .set("Content-Type", MANIFEST_TYPE)
            .send_bytes(manifest)
            .map_err(|e| err("PUT", &url, e))?;
        Ok(())
    }

    /// Whether the registry holds blob `digest` (`sha256:…`).
    pub fn has_blob(&self, digest: &str) -> OciResult<bool> {
        let url = format!("{}/blobs/{digest}", self.base);
        match self
            .agent
            .head(&url)
            .call()
            .map_err(|e| err("HEAD", &url, e))
        {
            Ok(_) => Ok(true),
            Err(OciError::Refused(m)) if m.contains("HTTP 404") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Uploads `size` bytes from `body` as blob `digest` in one request.
    pub fn push_blob(&self, digest: &str, size: u64, body: impl Read) -> OciResult<()> {
        let url = format!("{}/blobs/uploads/", self.base);
        let resp = self
            .agent
            .post(&url)
            .set("Content-Length", "0")
            .call()
            .map_err(|e| err("POST", &url, e))?;
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
        self.agent
            .put(&put)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Length", &size.to_string())
            .send(body)
            .map_err(|e| err("PUT", &put, e))?;
        Ok(())
    }

    /// A reader of blob `digest` and its length when the registry says it.
    pub fn get_blob(&self, digest: &str) -> OciResult<(Box<dyn Read + Send>, Option<u64>)> {
        let url = format!("{}/blobs/{digest}", self.base);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| err("GET", &url, e))?;
        let len = resp
            .header("Content-Length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        Ok((resp.into_reader(), len))
    }
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
