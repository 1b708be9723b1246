//! `SHA256SUMS` and `SHA256SUMS.sig` of an output directory: the format both sides
//! share. The builder writes them (`sanforge sign`, [`crate::image::sign`]); `sanforge
//! verify-image` and `sanforge-init update` check them here.
//!
//! Reads: public key files, `DIR/SHA256SUMS`, the files it lists and `DIR/SHA256SUMS.sig`.
//!
//! File formats (one line of text each, lowercase hex, trailing newline):
//!
//! ```text
//! KEY          sanforge-ed25519-secret <64 hex: the 32-byte Ed25519 seed>      (mode 0600)
//! KEY.pub      sanforge-ed25519-public <64 hex: the 32-byte public key>
//! SHA256SUMS.sig
//!              sanforge-ed25519-signature <64 hex: public key> <128 hex: signature>
//! ```
//!
//! The signed message is `sanforge-sha256sums-v1\n` followed by the bytes of
//! `SHA256SUMS` (the prefix keeps a signature from being valid for anything else).
//! The public key inside the `.sig` file is only used to say *which* key signed when it
//! is not the trusted one; verification always uses the key the caller trusts.

use crate::util::fs as ufs;
use crate::util::hash::sha256_file;
use anyhow::{bail, Context, Result};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use std::path::{Component, Path};

pub const PUBLIC_TAG: &str = "sanforge-ed25519-public";

pub const SIGNATURE_TAG: &str = "sanforge-ed25519-signature";

/// Name of the signature file beside `SHA256SUMS`.
pub const SIG_FILE: &str = "SHA256SUMS.sig";

pub const SUMS_FILE: &str = "SHA256SUMS";

/// Domain separation prefix of the signed message.
const CONTEXT: &[u8] = b"sanforge-sha256sums-v1\n";

/// Why an output directory did not verify. Returned inside `anyhow::Error`; callers that
/// need to tell the cases apart can `downcast_ref::<VerifyError>()`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error(
        "{dir} is not signed: {sig} is missing (sign it with `sanforge sign {dir} --key KEY`)"
    )]
    MissingSignature { dir: String, sig: String },
    #[error("{sig} was made with another key (signed by {found}, trusted key is {expected}): refusing the image")]
    WrongKey {
        sig: String,
        found: String,
        expected: String,
    },
    #[error("the signature in {sig} does not match {sums}: the sums were changed after signing")]
    BadSignature { sig: String, sums: String },
    #[error(
        "{file} was modified after signing: its sha256 is {actual}, SHA256SUMS says {expected}"
    )]
    Tampered {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{file} is listed in SHA256SUMS but missing")]
    MissingFile { file: String },
}

/// A short, stable name for a public key: the first 16 hex digits of its sha256.
pub fn fingerprint(key: &VerifyingKey) -> String {
    let mut f = crate::util::hash::sha256_bytes(key.as_bytes());
    f.truncate(16); // ASCII: every index is a char boundary
    f
}

/// Reads `<tag> <hex>` and returns the decoded bytes.
pub(crate) fn read_tagged<const N: usize>(path: &Path, tag: &str) -> Result<[u8; N]> {
    let text = ufs::read_to_string(path)?;
    let mut words = text.split_whitespace();
    let (Some(t), Some(h), None) = (words.next(), words.next(), words.next()) else {
        bail!(
            "{} is not a sanforge key file: expected `{tag} <hex>`",
            path.display()
        );
    };
    if t != tag {
        bail!(
            "{} is not a sanforge key file of the right kind: expected `{tag}`, found `{t}`",
            path.display()
        );
    }
    let bytes = hex::decode(h).ok().filter(|b| b.len() == N);
    match bytes.and_then(|b| <[u8; N]>::try_from(b).ok()) {
        Some(b) => Ok(b),
        None => bail!(
            "{}: expected {} hex digits after `{tag}`",
            path.display(),
            N * 2
        ),
    }
}

/// Loads a public key written by [`keygen`].
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey> {
    let bytes = read_tagged::<32>(path, PUBLIC_TAG)?;
    VerifyingKey::from_bytes(&bytes).with_context(|| {
        format!(
            "{} does not hold a valid Ed25519 public key",
            path.display()
        )
    })
}

/// A public key from its 64 hex digits (as `sanforge-init status` reports the node's
/// update key); `what` names where they came from.
pub fn verifying_key_from_hex(hex_key: &str, what: &str) -> Result<VerifyingKey> {
    let bytes = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .with_context(|| format!("{what}: `{hex_key}` is not 64 hex digits"))?;
    VerifyingKey::from_bytes(&bytes)
        .with_context(|| format!("{what}: not a valid Ed25519 public key"))
}

/// The 64 hex digits of a public key file's text (`sanforge-ed25519-public <hex>`).
pub fn public_key_hex(text: &str) -> Option<String> {
    let mut w = text.split_whitespace();
    match (w.next(), w.next(), w.next()) {
        (Some(PUBLIC_TAG), Some(h), None) if h.len() == 64 => Some(h.to_ascii_lowercase()),
        _ => None,
    }
}

pub(crate) fn message(sums: &[u8]) -> Vec<u8> {
    let mut m = CONTEXT.to_vec();
    m.extend_from_slice(sums);
    m
}

/// One `SHA256SUMS` line: `<sha256>  <relative path>`.
fn parse_sums(path: &Path, text: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((sha, file)) = line.split_once("  ") else {
            bail!("{}:{}: expected `<sha256>  <file>`", path.display(), i + 1);
        };
        let file = file.strip_prefix('*').unwrap_or(file);
        if !crate::util::hash::is_sha256(sha) {
            bail!("{}:{}: `{sha}` is not a sha256", path.display(), i + 1);
        }
        let p = Path::new(file);
        if file.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
            bail!(
                "{}:{}: `{file}` is not a relative path inside the directory",
                path.display(),
                i + 1
            );
        }
        out.push((sha.to_string(), file.to_string()));
    }
    if out.is_empty() {
        bail!("{} lists no file", path.display());
    }
    Ok(out)
}

/// Re-hashes every file listed in `dir/SHA256SUMS`; returns the listed names.
pub fn check_sums(dir: &Path) -> Result<Vec<String>> {
    let sums_path = dir.join(SUMS_FILE);
    let text = ufs::read_to_string(&sums_path)?;
    let mut files = Vec::new();
    for (expected, file) in parse_sums(&sums_path, &text)? {
        let p = dir.join(&file);
        if !p.is_file() {
            return Err(VerifyError::MissingFile {
                file: p.display().to_string(),
            }
            .into());
        }
        let actual = sha256_file(&p)?;
        if actual != expected {
            return Err(VerifyError::Tampered {
                file: p.display().to_string(),
                expected,
                actual,
            }
            .into());
        }
        files.push(file);
    }
    Ok(files)
}

/// Checks `dir/SHA256SUMS.sig` against the trusted `key`, then every file listed in
/// `SHA256SUMS`. Returns the verified file names.
pub fn verify_dir_files(dir: &Path, key: &VerifyingKey) -> Result<Vec<String>> {
    verify_signature(dir, key)?;
    check_sums(dir)
}

/// Re-hashes the files listed in `dir/SHA256SUMS` that are present (a copy of an output
/// directory with only some of its files, as `sanforge push` stages it); returns the
/// listed names and, of them, the present ones.
pub fn check_present_sums(dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let sums_path = dir.join(SUMS_FILE);
    let text = ufs::read_to_string(&sums_path)?;
    let (mut listed, mut present) = (Vec::new(), Vec::new());
    for (expected, file) in parse_sums(&sums_path, &text)? {
        let p = dir.join(&file);
        if p.is_file() {
            let actual = sha256_file(&p)?;
            if actual != expected {
                return Err(VerifyError::Tampered {
                    file: p.display().to_string(),
                    expected,
                    actual,
                }
                .into());
            }
            present.push(file.clone());
        }
        listed.push(file);
    }
    Ok((listed, present))
}

/// The words of a signature file: the signer's public key and the signature.
fn read_signature(sig_path: &Path) -> Result<([u8; 32], [u8; 64])> {
    let text = ufs::read_to_string(sig_path)?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let [tag, pk_hex, sig_hex] = words.as_slice() else {
        bail!(
            "{} is not a sanforge signature: expected `{SIGNATURE_TAG} <public key> <signature>`",
            sig_path.display()
        );
    };
    if *tag != SIGNATURE_TAG {
        bail!(
            "{} is not a sanforge signature: expected `{SIGNATURE_TAG}`, found `{tag}`",
            sig_path.display()
        );
    }
    let signer = hex::decode(pk_hex)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .with_context(|| {
            format!(
                "{}: the public key is not 64 hex digits",
                sig_path.display()
            )
        })?;
    let sig_bytes = hex::decode(sig_hex)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .with_context(|| {
            format!(
                "{}: the signature is not 128 hex digits",
                sig_path.display()
            )
        })?;
    Ok((signer, sig_bytes))
}

/// Checks `dir/SHA256SUMS.sig` against the trusted `key` (not the files it lists).
pub fn verify_signature(dir: &Path, key: &VerifyingKey) -> Result<()> {
    let sig_path = dir.join(SIG_FILE);
    let sums_path = dir.join(SUMS_FILE);
    if !sig_path.is_file() {
        return Err(VerifyError::MissingSignature {
            dir: dir.display().to_string(),
            sig: sig_path.display().to_string(),
        }
        .into());
    }
    let (signer, sig_bytes) = read_signature(&sig_path)?;
    if signer != *key.as_bytes() {
        let found = VerifyingKey::from_bytes(&signer)
            .map(|k| fingerprint(&k))
            .unwrap_or_else(|_| "an invalid key".to_string());
        return Err(VerifyError::WrongKey {
            sig: sig_path.display().to_string(),
            found,
            expected: fingerprint(key),
        }
        .into());
    }
    let sums = ufs::read(&sums_path)?;
    let sig = Signature::from_bytes(&sig_bytes);
    if key.verify(&message(&sums), &sig).is_err() {
        return Err(VerifyError::BadSignature {
            sig: sig_path.display().to_string(),
            sums: sums_path.display().to_string(),
        }
        .into());
    }
    Ok(())
}

/// [`verify_dir_files`] for callers that only need yes or no (`sanforge update`).
pub fn verify_dir(dir: &Path, key: &VerifyingKey) -> Result<()> {
    verify_dir_files(dir, key).map(|_| ())
}
