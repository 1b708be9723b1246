//! A node's secrets: CHAP accounts (user and password), by name. They never travel in
//! a public output: the node config and `scst.conf` only *name* them
//! (`chap = { secret = "NAME" }` in a LIO ACL, `IncomingUser secret:NAME` in
//! scst.conf), and the values reach the node the way a cluster's secrets do: as a
//! second initrd (`sanforge build --secrets FILE` writes `OUT/secrets/initrd.cpio`,
//! which holds [`CHAP_SECRETS`](crate::contract::CHAP_SECRETS)), or committed to the
//! config partition (`sanforge-init secrets-set FILE`).
//!
//! The file (TOML, mode 0600, never committed):
//!
//! ```toml
//! [chap.host2]
//! user = "iqn.2026-11.org.example:host2"
//! password = "0123456789abcd"      # 12 to 255 characters
//! ```
//!
//! A cluster's secrets file (`sanforge cluster secrets`) has the same `[chap.NAME]`
//! tables and is accepted too; its other keys are ignored here.
//!
//! Reads only the file it is given.

use super::node::{Acl, Lio, NodeConfig};
use super::spans::{at, Errors};
use super::{parse_toml, ConfigError};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// The prefix of a secret reference in an scst.conf value: `IncomingUser secret:NAME`.
pub const SCST_REF: &str = "secret:";

/// A CHAP account.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChapSecret {
    pub user: String,
    pub password: String,
}

impl fmt::Debug for ChapSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChapSecret {{ user: {:?}, password: <redacted> }}",
            self.user
        )
    }
}

/// The secrets file of a node (see the module doc).
#[derive(Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeSecrets {
    #[serde(default)]
    pub chap: BTreeMap<String, ChapSecret>,
    /// Keys of a cluster's secrets file, accepted and ignored.
    #[serde(default, skip_serializing)]
    corosync_authkey: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    drbd_shared_secret: Option<toml::Value>,
    #[serde(default, skip_serializing)]
    fence_passwords: Option<toml::Value>,
}

impl fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NodeSecrets {{ chap: {:?} <redacted> }}",
            self.chap.keys().collect::<Vec<_>>()
        )
    }
}

/// Refuses a secret file that its owner's group or anyone else can read or write,
/// like `sanforge sign` refuses such a key. `what` names the file in the message.
pub fn check_private(path: &Path, what: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        let who = match (mode & 0o070 != 0, mode & 0o007 != 0) {
            (true, true) => "its group and others",
            (true, false) => "its group",
            _ => "others",
        };
        bail!(
            "{what} {} is open to {who} (mode {:04o}): run `chmod 600 {}` (a secret file must be readable by its owner only)",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    Ok(())
}

/// A name of a secret: letters, digits, `.`, `_`, `-`, `:` (initiator names fit).
pub fn is_secret_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 223
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
}

/// A CHAP user or password word: printable ASCII without blanks, quotes or braces
/// (it travels in configfs files and in `IncomingUser "USER SECRET"` lines).
fn is_chap_word(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"'{}#;=".contains(&b))
}

/// The shortest and longest CHAP secret the targets accept (iscsi-scstd refuses fewer
/// than 12 bytes, RFC 3720 §8.2.1; LIO stores at most 255).
pub const CHAP_MIN: usize = 12;
pub const CHAP_MAX: usize = 255;

impl NodeSecrets {
    /// Reads a secrets file: it must exist, be private (mode 0600) and parse.
    pub fn load(path: &Path) -> Result<NodeSecrets> {
        if !path.exists() {
            bail!(
                "secrets file {} does not exist: write one with a `[chap.NAME]` table (user, password) for every secret the node config names, `chmod 600` it and keep it out of git",
                path.display()
            );
        }
        check_private(path, "secrets file")?;
        let text = crate::util::fs::read_to_string(path)?;
        Ok(Self::parse(path, &text)?)
    }

    /// Parses and checks a secrets file's text. Messages never contain a secret.
    pub fn parse(file: &Path, text: &str) -> Result<NodeSecrets, ConfigError> {
        let s: NodeSecrets = parse_toml(file, text).map_err(|mut e| {
            // A type error may quote the value: keep the location, drop the value.
            let mut scrub = crate::util::redact::Scrubber::new();
            scrub.scan_toml(text);
            e.message = scrub.scrub(&e.message);
            e
        })?;
        let mut errs = Errors::new(file, text);
        for (name, c) in &s.chap {
            let here = at!["chap", name];
            if !is_secret_name(name) {
                errs.at(
                    here,
                    format!(
                        "secret name `chap.{name}`: expected letters, digits, `.`, `_`, `-` or `:`"
                    ),
                );
            }
            if c.user.is_empty() || c.user.len() > 255 || !is_chap_word(&c.user) {
                errs.at(
                    at!["chap", name, "user"],
                    format!(
                        "chap.{name}: user `{}` is not a CHAP user name: expected 1 to 255 printable characters without blanks, quotes, braces, `#`, `;` or `=`",
                        c.user
                    ),
                );
            }
            let n = c.password.chars().count();
            if !(CHAP_MIN..=CHAP_MAX).contains(&n) {
                errs.at(
                    at!["chap", name, "password"],
                    format!(
                        "chap.{name}: the password is {n} character{} long, out of range: expected {CHAP_MIN} to {CHAP_MAX} (iscsi-scstd refuses shorter CHAP secrets; Microsoft initiators want at most 16)",
                        if n == 1 { "" } else { "s" }
                    ),
                );
            } else if !is_chap_word(&c.password) {
                errs.at(
                    at!["chap", name, "password"],
                    format!(
                        "chap.{name}: the password has a blank, quote, brace, `#`, `;` or `=`, which configfs and scst.conf cannot carry: expected printable characters"
                    ),
                );
            }
        }
        errs.finish(())?;
        Ok(s)
    }

    pub fn chap(&self, name: &str) -> Option<&ChapSecret> {
        self.chap.get(name)
    }

    /// Only the named secrets (what one image's nodes reference).
    pub fn subset<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> NodeSecrets {
        let want: BTreeSet<&str> = names.into_iter().collect();
        NodeSecrets {
            chap: self
                .chap
                .iter()
                .filter(|(k, _)| want.contains(k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    /// The file as the node reads it (`/etc/sanforge/secrets/chap.toml`).
    pub fn to_toml(&self) -> Result<String> {
        let body = toml::to_string(self).context("cannot serialize the secrets")?;
        Ok(format!(
            "# sanforge node secrets: never commit, never bake into an image\n{body}"
        ))
    }

    /// A [`crate::util::redact::Scrubber`] that knows every password of this file.
    pub fn scrubber(&self) -> crate::util::redact::Scrubber {
        let mut s = crate::util::redact::Scrubber::new();
        for c in self.chap.values() {
            s.add(&c.password);
        }
        s
    }

    /// `lio` with every ACL's `chap = { secret = "NAME" }` filled in from this file.
    /// An unknown name is an error naming the initiator and where the node looks.
    pub fn resolve_lio(&self, lio: &Lio) -> Result<Lio, String> {
        let mut out = lio.clone();
        for t in &mut out.iscsi {
            for a in &mut t.acls {
                let Some(c) = &mut a.chap else { continue };
                let Some(name) = c.secret.clone() else {
                    continue;
                };
                let Some(s) = self.chap(&name) else {
                    return Err(format!(
                        "CHAP secret `{name}` of initiator `{}` on `{}` is not in the node's secrets",
                        a.initiator, t.iqn
                    ));
                };
                c.userid = s.user.clone();
                c.password = s.password.clone();
            }
        }
        Ok(out)
    }
}

/// The secret names a node config references (LIO ACLs), in order, without repeats.
pub fn node_refs(node: &NodeConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in lio_acls(node.lio.as_ref()) {
        if let Some(n) = a.chap.as_ref().and_then(|c| c.secret.clone()) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

fn lio_acls(lio: Option<&Lio>) -> impl Iterator<Item = &Acl> {
    lio.into_iter()
        .flat_map(|l| l.iscsi.iter())
        .flat_map(|t| t.acls.iter())
}

/// A node config that is baked into an image must not carry a CHAP password: the
/// error points at the first inline one and says what to write instead. (The init
/// still accepts inline passwords in a node config that reaches it privately: a
/// secrets initrd or the config partition.)
pub fn refuse_inline(file: &Path, text: &str, node: &NodeConfig) -> Result<(), ConfigError> {
    let errs = Errors::new(file, text);
    for (t, target) in node.lio.iter().flat_map(|l| l.iscsi.iter()).enumerate() {
        for (a, acl) in target.acls.iter().enumerate() {
            let Some(c) = &acl.chap else { continue };
            if c.password.is_empty() {
                continue;
            }
            return Err(errs.error(
                at!["lio", "iscsi", t, "acls", a, "chap", "password"],
                format!(
                    "the CHAP password of initiator `{}` is written in the node config, which is baked into the public image: put it in a secrets file as `[chap.NAME]` (user, password), write `chap = {{ secret = \"NAME\" }}` here and build with `--secrets FILE`",
                    acl.initiator
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_names_and_lengths_without_printing_passwords() {
        let f = Path::new("s.toml");
        let ok = NodeSecrets::parse(
            f,
            "[chap.host2]\nuser = \"iqn.2026-11.org.example:host2\"\npassword = \"0123456789abcd\"\n",
        )
        .unwrap();
        assert_eq!(
            ok.chap("host2").unwrap().user,
            "iqn.2026-11.org.example:host2"
        );
        let e = NodeSecrets::parse(f, "[chap.h]\nuser = \"u\"\npassword = \"x\"\n").unwrap_err();
        assert!(e.message.contains("1 character long, out of range"), "{e}");
        assert_eq!(e.line, 3);
        let e = NodeSecrets::parse(
            f,
            "[chap.h]\nuser = \"u\"\npassword = \"has space in it\"\n",
        )
        .unwrap_err();
        assert!(!e.message.contains("has space"), "{e}");
        let e = NodeSecrets::parse(f, "[chap.h]\nuser = \"u\"\npassword = 12345678901234\n")
            .unwrap_err();
        assert!(!e.message.contains("12345678901234"), "{e}");
        assert!(!format!("{ok:?}").contains("0123456789abcd"));
        // A cluster's secrets file serves too.
        NodeSecrets::parse(
            f,
            "corosync-authkey = \"00\"\ndrbd-shared-secret = \"x\"\n[chap.h]\nuser = \"u\"\npassword = \"0123456789abcd\"\n",
        )
        .unwrap();
    }
}
