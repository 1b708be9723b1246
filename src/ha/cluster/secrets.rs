//! The secrets file of a cluster (Corosync authkey, DRBD shared secret, CHAP users,
//! fence device passwords): parsed and checked on its own, never part of the rendered
//! public files, generated from `/dev/urandom` and written with mode 0600.
//!
//! Reads: the secrets file given by the caller; `/dev/urandom` when generating.

use super::Cluster;
use crate::config::spans::{at, Errors};
use crate::config::{parse_toml, ConfigError};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The secrets file: never rendered into public files, never committed.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Secrets {
    /// Corosync authkey, hex (256 bytes like `corosync-keygen` writes).
    pub corosync_authkey: String,
    /// DRBD `shared-secret` (cram-hmac-alg sha256), at most 64 characters.
    pub drbd_shared_secret: String,
    /// CHAP user and secret per initiator name (`chap = true` initiators).
    #[serde(default)]
    pub chap: BTreeMap<String, ChapSecret>,
    /// Fence device passwords per node name (passed via `password_script`).
    #[serde(default)]
    pub fence_passwords: BTreeMap<String, String>,
}

#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChapSecret {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets {{ <redacted> }}")
    }
}

impl Secrets {
    /// Reads a secrets file; a missing file is an error saying how to make one.
    pub fn load(path: &Path) -> Result<Secrets> {
        if !path.exists() {
            bail!(
                "secrets file {} does not exist; generate one with `sanforge cluster secrets --out {}` (keep it out of git)",
                path.display(),
                path.display()
            );
        }
        crate::config::secrets::check_private(path, "secrets file")?;
        let text = crate::util::fs::read_to_string(path)?;
        Ok(Self::parse(path, &text)?)
    }

    /// Parses and checks a secrets file, reporting every error of it, each at the value
    /// at fault.
    pub fn parse(file: &Path, text: &str) -> Result<Secrets, ConfigError> {
        let s: Secrets = parse_toml(file, text)?;
        let mut errs = Errors::new(file, text);
        if !hex::decode(&s.corosync_authkey).is_ok_and(|k| (32..=1024).contains(&k.len())) {
            errs.at(
                at!["corosync-authkey"],
                "corosync-authkey: expected 32 to 1024 bytes as hex (generated: 256)",
            );
        }
        if !is_secret_word(&s.drbd_shared_secret, 16, 64) {
            errs.at(
                at!["drbd-shared-secret"],
                "drbd-shared-secret: expected 16 to 64 letters and digits",
            );
        }
        for (name, c) in &s.chap {
            if !is_secret_word(&c.user, 1, 64) || !is_secret_word(&c.password, 12, 16) {
                errs.at(at!["chap", name], format!("chap.{name}: expected a user of letters and digits and a password of 12 to 16 letters and digits"));
            }
        }
        for (name, p) in &s.fence_passwords {
            if p.is_empty() || p.contains(['\n', '\0']) {
                errs.at(
                    at!["fence-passwords", name],
                    format!("fence-passwords.{name}: expected a one-line password"),
                );
            }
        }
        errs.finish(s)
    }

    /// The raw corosync authkey bytes.
    pub fn authkey(&self) -> Vec<u8> {
        hex::decode(&self.corosync_authkey).unwrap_or_default()
    }

    /// Checks that every secret the cluster needs is present.
    pub fn check_for(&self, cluster: &Cluster, file: &Path) -> Result<()> {
        for i in cluster.initiators.iter().filter(|i| i.chap) {
            if !self.chap.contains_key(&i.name) {
                bail!(
                    "{}: initiator `{}` has chap = true but the secrets file has no `[chap.{}]` (user, password); regenerate with `sanforge cluster secrets --cluster CLUSTER.toml --out NEW` and copy it over",
                    file.display(),
                    i.name,
                    i.name
                );
            }
        }
        for n in self.fence_passwords.keys() {
            if cluster.node(n).is_none() {
                bail!(
                    "{}: fence-passwords.{n}: unknown node `{n}`",
                    file.display()
                );
            }
        }
        Ok(())
    }
}

fn is_secret_word(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Random bytes from `/dev/urandom`.
fn random_bytes(n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    let mut buf = vec![0u8; n];
    f.read_exact(&mut buf).context("cannot read /dev/urandom")?;
    Ok(buf)
}

/// `n` random letters and digits (rejection sampling, no modulo bias).
fn random_word(n: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes(n * 2)? {
            if (b as usize) < 248 && out.len() < n {
                out.push(ALPHABET[b as usize % 62] as char);
            }
        }
    }
    Ok(out)
}

/// Fresh random secrets; with a cluster, also a CHAP entry for every `chap = true`
/// initiator. Fence passwords are not generated (they are the BMC's).
pub fn generate_secrets(cluster: Option<&Cluster>) -> Result<Secrets> {
    let mut chap = BTreeMap::new();
    if let Some(c) = cluster {
        for i in c.initiators.iter().filter(|i| i.chap) {
            let user: String = i.name.chars().filter(char::is_ascii_alphanumeric).collect();
            let user = if user.is_empty() {
                "initiator".to_string()
            } else {
                user
            };
            chap.insert(
                i.name.clone(),
                ChapSecret {
                    user,
                    password: random_word(16)?,
                },
            );
        }
    }
    Ok(Secrets {
        corosync_authkey: hex::encode(random_bytes(256)?),
        drbd_shared_secret: random_word(48)?,
        chap,
        fence_passwords: BTreeMap::new(),
    })
}

/// Writes a new secrets file with mode 0600; refuses to overwrite an existing file.
pub fn write_secrets(path: &Path, secrets: &Secrets) -> Result<()> {
    let body = toml::to_string(secrets).context("cannot serialize the secrets")?;
    let text = format!(
        "# sanforge cluster secrets: DO NOT COMMIT. Generated from /dev/urandom.\n# Add fence device passwords as:\n# [fence-passwords]\n# NODE = \"…\"\n\n{body}"
    );
    // All or nothing: a temporary 0600 file in the same directory, renamed into place
    // only if nothing is there yet. An interrupted run leaves no half-written file that
    // the next run would refuse to replace.
    if crate::util::fs::write_new_private(path, text.as_bytes())? {
        Ok(())
    } else {
        bail!("{} already exists; refusing to overwrite secrets (remove it first if you really mean to replace every key)", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_words_are_alphanumeric_and_differ() {
        let a = random_word(16).unwrap();
        let b = random_word(16).unwrap();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_debug_is_redacted() {
        let s = generate_secrets(None).unwrap();
        assert!(!format!("{s:?}").contains(&s.drbd_shared_secret));
    }
}
