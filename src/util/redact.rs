//! Secrets in what sanforge prints. Plans (`sanforge scst plan`), the recorded writes of
//! `sanforge-init --root DIR STEP`, the init's logs and error messages show
//! [`REDACTED`] where a CHAP secret would be; `--show-secrets` (where a command has it)
//! shows the values. Three kinds of places carry secrets:
//!
//! * a write to a file whose whole value is secret: LIO `…/auth/password`,
//!   `…/auth/password_mutual` (and the `discovery_auth/` ones), SCST
//!   `IncomingUser[N]`/`OutgoingUser[N]` attribute files ([`write_value`]);
//! * an SCST management command that adds or removes such an attribute,
//!   `add_target_attribute TARGET IncomingUser USER SECRET` ([`command`]);
//! * a config text (scst.conf `IncomingUser "USER SECRET"`, node.toml
//!   `password = "…"`) quoted in a message: [`Scrubber`] collects the secret words
//!   of such texts and replaces them wherever they appear.
//!
//! Pure string functions: no I/O, no panics.

use std::borrow::Cow;

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// SCST attributes whose value is `USER SECRET` (iscsi-scst's CHAP accounts).
pub const SCST_SECRET_ATTRS: &[&str] = &["IncomingUser", "OutgoingUser"];

/// Whether an SCST attribute (or its numbered sysfs instance, `IncomingUser1`) holds
/// a CHAP account.
pub fn is_scst_secret_attr(name: &str) -> bool {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
    SCST_SECRET_ATTRS.contains(&base)
}

/// `USER SECRET` → `USER <redacted>`; a value without a secret word (a `secret:NAME`
/// reference) is kept as it is.
pub fn user_secret(value: &str) -> Cow<'_, str> {
    let v = value.trim();
    match v.split_once(char::is_whitespace) {
        Some((user, rest)) if !rest.trim().is_empty() => Cow::Owned(format!("{user} {REDACTED}")),
        _ => Cow::Borrowed(value),
    }
}

/// Whether writing to `path` writes a secret: the last component is a LIO
/// `password*` file under an `auth` directory, or an SCST CHAP account attribute.
pub fn is_secret_path(path: &str) -> bool {
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let last = parts.next().unwrap_or("");
    let parent = parts.next().unwrap_or("");
    (last.starts_with("password") && parent.ends_with("auth")) || is_scst_secret_attr(last)
}

/// An SCST management command with the secret word of a CHAP account replaced:
/// `add_attribute IncomingUser joe s3cret` → `add_attribute IncomingUser joe <redacted>`,
/// likewise for `del_attribute`, `add_target_attribute TARGET …` and
/// `del_target_attribute TARGET …`. Any other command is returned unchanged.
pub fn command(value: &str) -> Cow<'_, str> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let attr_at = match words.first().map(|w| w.to_ascii_lowercase()) {
        Some(w) if w == "add_attribute" || w == "del_attribute" => 1,
        Some(w) if w == "add_target_attribute" || w == "del_target_attribute" => 2,
        _ => return Cow::Borrowed(value),
    };
    match words.get(attr_at) {
        Some(a) if is_scst_secret_attr(a) && words.len() > attr_at + 2 => {
            let mut shown: Vec<&str> = words.iter().take(attr_at + 2).copied().collect();
            shown.push(REDACTED);
            Cow::Owned(shown.join(" "))
        }
        _ => Cow::Borrowed(value),
    }
}

/// A write (`path` ← `value`) as it may be shown: secret files and secret commands
/// redacted.
pub fn write_value<'a>(path: &str, value: &'a str) -> Cow<'a, str> {
    if is_secret_path(path) {
        return if is_scst_secret_attr(path.rsplit('/').next().unwrap_or("")) {
            user_secret(value)
        } else {
            Cow::Borrowed(REDACTED)
        };
    }
    command(value)
}

/// Secret words collected from config texts, replaced by [`REDACTED`] in any text.
/// Words shorter than four characters are not collected (they would blot out ordinary
/// words; such a secret is refused as too short anyway, without being printed).
#[derive(Default, Clone)]
pub struct Scrubber {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one secret word.
    pub fn add(&mut self, secret: &str) {
        let s = secret.trim();
        if s.chars().count() >= 4 && !self.secrets.iter().any(|x| x == s) {
            self.secrets.push(s.to_string());
            // Longest first, so that a secret containing another is replaced whole.
            self.secrets
                .sort_by_key(|x| std::cmp::Reverse(x.chars().count()));
        }
    }

    /// Collects the secret words of an scst.conf text: what follows the user of every
    /// `IncomingUser`/`OutgoingUser` line (quoted or not). Works on text that does not
    /// parse.
    pub fn scan_scst(&mut self, text: &str) {
        for line in text.lines() {
            let l = line.trim_start();
            let Some((name, rest)) = l.split_once(char::is_whitespace) else {
                continue;
            };
            if !is_scst_secret_attr(name) {
                continue;
            }
            let rest = rest.split('#').next().unwrap_or("").trim();
            let rest = rest.trim_matches('"').trim();
            if let Some((_, secret)) = rest.split_once(char::is_whitespace) {
                for w in secret.split_whitespace() {
                    self.add(w.trim_matches('"'));
                }
            }
        }
    }

    /// Collects the values of `password = "…"` (and `password_mutual`) in a TOML text,
    /// inline tables included. Works on text that does not parse.
    pub fn scan_toml(&mut self, text: &str) {
        for line in text.lines() {
            let mut rest = line;
            while let Some(i) = rest.find("password") {
                let after = rest.get(i + "password".len()..).unwrap_or("");
                let after = after
                    .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    .trim_start_matches('"')
                    .trim_start();
                rest = after;
                let Some(v) = after.strip_prefix('=') else {
                    continue;
                };
                let v = v.trim_start();
                let quote = match v.chars().next() {
                    Some(q @ ('"' | '\'')) => q,
                    _ => {
                        // A bare value (a number, a typo): up to the next separator.
                        let end = v.find([' ', ',', '}', '#']).unwrap_or(v.len());
                        self.add(v.get(..end).unwrap_or(""));
                        rest = v.get(end..).unwrap_or("");
                        continue;
                    }
                };
                let body = v.get(1..).unwrap_or("");
                if let Some(end) = body.find(quote) {
                    self.add(body.get(..end).unwrap_or(""));
                    rest = body.get(end + 1..).unwrap_or("");
                }
            }
        }
    }

    /// `text` with every collected secret replaced.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// An error chain with every message scrubbed (the structure is kept: each cause
    /// stays a cause).
    pub fn scrub_error(&self, e: anyhow::Error) -> anyhow::Error {
        if self.secrets.is_empty() {
            return e;
        }
        let msgs: Vec<String> = e.chain().map(|c| self.scrub(&c.to_string())).collect();
        let mut it = msgs.into_iter().rev();
        let mut err = anyhow::anyhow!(it.next().unwrap_or_default());
        for m in it {
            err = err.context(m);
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_files() {
        assert_eq!(
            command("add_target_attribute iqn.x:t IncomingUser joe s3cretpassw0rd"),
            "add_target_attribute iqn.x:t IncomingUser joe <redacted>"
        );
        assert_eq!(
            command("add_attribute OutgoingUser joe s3cretpassw0rd"),
            "add_attribute OutgoingUser joe <redacted>"
        );
        assert_eq!(
            command("add_target_attribute iqn.x:t allowed_portal 10.0.0.1"),
            "add_target_attribute iqn.x:t allowed_portal 10.0.0.1"
        );
        assert_eq!(
            command("add_device d filename=/x;"),
            "add_device d filename=/x;"
        );
        assert_eq!(
            write_value("iscsi/t/tpgt_1/acls/i/auth/password", "0123456789ab"),
            REDACTED
        );
        assert_eq!(
            write_value("iscsi/t/tpgt_1/acls/i/auth/userid", "joe"),
            "joe"
        );
        assert_eq!(
            write_value("targets/iscsi/t/IncomingUser1", "joe s3cretpassw0rd"),
            "joe <redacted>"
        );
        assert!(is_secret_path("iscsi/discovery_auth/password_mutual"));
    }

    #[test]
    fn scrubber_finds_secrets_in_texts_that_do_not_parse() {
        let mut s = Scrubber::new();
        s.scan_scst("TARGET_DRIVER iscsi {\n\tIncomingUser \"joe s3cretpassw0rd\"\n\tOutgoingUser bob 0therpassw0rd { \n");
        s.scan_toml("chap = { userid = \"u\", password = \"tomlpassw0rd1\" }\npassword-x = 3\n");
        let t = s.scrub("a s3cretpassw0rd b 0therpassw0rd c tomlpassw0rd1");
        assert_eq!(t, "a <redacted> b <redacted> c <redacted>");
        let e = s.scrub_error(anyhow::anyhow!("inner s3cretpassw0rd").context("outer"));
        assert_eq!(format!("{e:#}"), "outer: inner <redacted>");
    }
}
