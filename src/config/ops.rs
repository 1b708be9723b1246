//! The node config's sections for operating a node: `[ssh]` (who may log in over SSH,
//! public keys only, and where the server listens), `[metrics]` (where the Prometheus
//! exporter listens) `[logs]` (the remote syslog server) and `[time]` (NTP servers). The keys are checked one by one at boot
//! ([`parse_authorized_key`]): a malformed one is named and left out, the others still
//! work; no usable key means no SSH server.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// The SSH port when `listen` is not given.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:22";

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Ssh {
    /// OpenSSH public key lines (`ssh-ed25519 AAAA… comment`), root's authorized keys.
    pub authorized_keys: Vec<String>,
    /// `ADDRESS:PORT` the server listens on.
    pub listen: String,
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh {
            authorized_keys: Vec::new(),
            listen: DEFAULT_LISTEN.into(),
        }
    }
}

/// The Prometheus exporter's port when `listen` is not given.
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9100";

/// `[metrics]`: the node's Prometheus exporter (`sanforge-init metrics-serve`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Metrics {
    /// `ADDRESS:PORT` of the plain-HTTP endpoint `/metrics`.
    pub listen: String,
    /// A file in the node's secrets (e.g. `/etc/sanforge/secrets/metrics.token`) whose
    /// one line scrapers must send as `Authorization: Bearer …`; none: no token.
    pub token_file: Option<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: DEFAULT_METRICS_LISTEN.into(),
            token_file: None,
        }
    }
}

/// `[logs]`: where the kernel log and the init's lines go besides the console.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Logs {
    /// `ADDRESS:PORT` of a syslog server taking RFC 5424 over TCP (octet counting).
    pub remote: Option<String>,
}

/// `[time]`: NTP servers for chronyd (Debian package `chrony` in the recipe).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Time {
    /// Host names or addresses of NTP servers; none: no NTP client.
    pub servers: Vec<String>,
}

/// The key types the image's server (dropbear) accepts.
pub const KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
];

/// A checked public key, as one `authorized_keys` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    pub kind: String,
    pub base64: String,
    pub comment: String,
}

impl AuthorizedKey {
    pub fn line(&self) -> String {
        if self.comment.is_empty() {
            format!("{} {}", self.kind, self.base64)
        } else {
            format!("{} {} {}", self.kind, self.base64, self.comment)
        }
    }
}

/// Checks one `TYPE BASE64 [COMMENT]` line: a known type, base64 that decodes, and a
/// key blob that names the same type (as OpenSSH writes it: a length-prefixed string).
/// The error says what is wrong without repeating the key.
pub fn parse_authorized_key(line: &str) -> Result<AuthorizedKey, String> {
    if line.contains(['\n', '\r', '\0']) {
        return Err("expected one line".into());
    }
    let mut words = line.split_whitespace();
    let kind = words.next().ok_or("empty key")?;
    if !KEY_TYPES.contains(&kind) {
        return Err(format!(
            "key type `{kind}`: expected one of {} (options before the type are not supported)",
            KEY_TYPES.join(", ")
        ));
    }
    let b64 = words.next().ok_or("no key data after the type")?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("key data is not base64 ({e})"))?;
    let named = blob
        .get(..4)
        .and_then(|l| <[u8; 4]>::try_from(l).ok())
        .map(|l| u32::from_be_bytes(l) as usize)
        .and_then(|n| blob.get(4..4 + n))
        .ok_or("key data too short for an SSH public key")?;
    if named != kind.as_bytes() {
        return Err(format!(
            "key data is a `{}` key, the line says `{kind}`",
            String::from_utf8_lossy(named)
        ));
    }
    Ok(AuthorizedKey {
        kind: kind.into(),
        base64: b64.into(),
        comment: words.collect::<Vec<_>>().join(" "),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // A real ed25519 public key (ssh-keygen -t ed25519), no private half anywhere.
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKEWRqQT80fd2SLuoi31ct69bCYsjAtOEgl5OZ6zHrl7 op@laptop";

    #[test]
    fn a_good_key_round_trips() {
        let k = parse_authorized_key(KEY).unwrap();
        assert_eq!(k.kind, "ssh-ed25519");
        assert_eq!(k.comment, "op@laptop");
        assert_eq!(k.line(), KEY);
    }

    #[test]
    fn malformed_keys_say_what_is_wrong() {
        let e = |l: &str| parse_authorized_key(l).unwrap_err();
        assert!(e("").contains("empty key"));
        assert!(e("ssh-dss AAAA").contains("key type `ssh-dss`"));
        assert!(e("ssh-ed25519").contains("no key data"));
        assert!(e("ssh-ed25519 !!!notbase64").contains("not base64"));
        assert!(e("ssh-ed25519 AAAA").contains("too short"));
        let rsa_named = KEY.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert_eq!(
            e(&rsa_named),
            "key data is a `ssh-ed25519` key, the line says `ssh-rsa`"
        );
        assert!(e("ssh-ed25519 AAAA\nssh-rsa AAAA").contains("one line"));
    }
}
