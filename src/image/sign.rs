//! Integrity of an output directory: an Ed25519 signature over `SHA256SUMS`.
//!
//! Why it exists: a PXE bundle is fetched over networks that nobody vouches for, and
//! `sanforge update` must refuse an image that was not produced by the holder of the
//! project's key. `SHA256SUMS` already pins every output file; signing it pins them
//! all, and [`verify_dir`] checks the signature *and* re-hashes every listed file.
//!
//! Reads: key files, `DIR/SHA256SUMS`, the files it lists and `DIR/SHA256SUMS.sig`.
//! Writes: key files (`keygen`, never overwriting) and `DIR/SHA256SUMS.sig` (atomically).
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
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::path::{Component, Path, PathBuf};

pub const SECRET_TAG: &str = "sanforge-ed25519-secret";
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
    crate::util::hash::sha256_bytes(key.as_bytes())[..16].to_string()
}

/// A new key from 32 bytes of the kernel's random pool.
pub fn generate() -> Result<SigningKey> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .context("cannot read /dev/urandom")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// `KEY` → `KEY.pub`.
pub fn public_path(secret: &Path) -> PathBuf {
    let mut s = secret.as_os_str().to_os_string();
    s.push(".pub");
    PathBuf::from(s)
}

/// Writes a new key pair: `out` (secret, mode 0600) and `out.pub`. Refuses to
/// overwrite either file. Returns the public key.
pub fn keygen(out: &Path) -> Result<VerifyingKey> {
    let key = generate()?;
    let public = public_path(out);
    for p in [out, public.as_path()] {
        if std::fs::symlink_metadata(p).is_ok() {
            bail!(
                "{} already exists: refusing to overwrite a key",
                p.display()
            );
        }
    }
    let secret_text = format!("{SECRET_TAG} {}\n", hex::encode(key.to_bytes()));
    write_new(out, &secret_text, 0o600)?;
    let vk = key.verifying_key();
    write_new(
        &public,
        &format!("{PUBLIC_TAG} {}\n", hex::encode(vk.as_bytes())),
        0o644,
    )?;
    Ok(vk)
}

/// Writes `path` through a temporary file (created 0600) and a rename that fails if
/// `path` appeared meanwhile.
fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = ufs::parent_dir(path);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|_| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
        })
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist_noclobber(path)
        .map_err(|e| e.error)
        .with_context(|| {
            format!(
                "cannot create {} (refusing to overwrite a key)",
                path.display()
            )
        })?;
    Ok(())
}

/// Reads `<tag> <hex>` and returns the decoded bytes.
fn read_tagged<const N: usize>(path: &Path, tag: &str) -> Result<[u8; N]> {
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

/// Loads a secret key written by [`keygen`]. Refuses a file that others can read.
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by others (mode {:04o}): run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    let seed = read_tagged::<32>(path, SECRET_TAG)?;
    Ok(SigningKey::from_bytes(&seed))
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

fn message(sums: &[u8]) -> Vec<u8> {
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

/// Signs `dir/SHA256SUMS` into `dir/SHA256SUMS.sig` (atomically). The listed files are
/// re-hashed first: a directory that does not match its sums is not signed.
pub fn sign_dir(dir: &Path, key: &SigningKey) -> Result<PathBuf> {
    check_sums(dir).with_context(|| format!("refusing to sign {}", dir.display()))?;
    let sums = ufs::read(&dir.join(SUMS_FILE))?;
    let sig = key.sign(&message(&sums));
    let text = format!(
        "{SIGNATURE_TAG} {} {}\n",
        hex::encode(key.verifying_key().as_bytes()),
        hex::encode(sig.to_bytes())
    );
    let out = dir.join(SIG_FILE);
    ufs::write_atomic(&out, text)?;
    Ok(out)
}

/// Checks `dir/SHA256SUMS.sig` against the trusted `key`, then every file listed in
/// `SHA256SUMS`. Returns the verified file names.
pub fn verify_dir_files(dir: &Path, key: &VerifyingKey) -> Result<Vec<String>> {
    let sig_path = dir.join(SIG_FILE);
    let sums_path = dir.join(SUMS_FILE);
    if !sig_path.is_file() {
        return Err(VerifyError::MissingSignature {
            dir: dir.display().to_string(),
            sig: sig_path.display().to_string(),
        }
        .into());
    }
    let text = ufs::read_to_string(&sig_path)?;
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
    check_sums(dir)
}

/// [`verify_dir_files`] for callers that only need yes or no (`sanforge update`).
pub fn verify_dir(dir: &Path, key: &VerifyingKey) -> Result<()> {
    verify_dir_files(dir, key).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("vmlinuz"), "kernel").unwrap();
        std::fs::write(d.path().join("boot.ipxe"), "#!ipxe\n").unwrap();
        let mut sums = String::new();
        for f in ["boot.ipxe", "vmlinuz"] {
            sums.push_str(&format!(
                "{}  {f}\n",
                sha256_file(&d.path().join(f)).unwrap()
            ));
        }
        std::fs::write(d.path().join(SUMS_FILE), sums).unwrap();
        d
    }

    fn err_of(r: Result<()>) -> VerifyError {
        r.unwrap_err().downcast::<VerifyError>().unwrap()
    }

    #[test]
    fn sign_then_verify_and_the_failure_cases() {
        let d = bundle();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        assert!(matches!(
            err_of(verify_dir(d.path(), &key.verifying_key())),
            VerifyError::MissingSignature { .. }
        ));
        sign_dir(d.path(), &key).unwrap();
        verify_dir(d.path(), &key.verifying_key()).unwrap();

        let other = SigningKey::from_bytes(&[8u8; 32]);
        match err_of(verify_dir(d.path(), &other.verifying_key())) {
            VerifyError::WrongKey {
                found, expected, ..
            } => {
                assert_eq!(found, fingerprint(&key.verifying_key()));
                assert_eq!(expected, fingerprint(&other.verifying_key()));
            }
            e => panic!("{e}"),
        }

        std::fs::write(d.path().join("vmlinuz"), "evil").unwrap();
        match err_of(verify_dir(d.path(), &key.verifying_key())) {
            VerifyError::Tampered { file, .. } => assert!(file.ends_with("vmlinuz"), "{file}"),
            e => panic!("{e}"),
        }
        // Editing the sums to match breaks the signature instead.
        let sums = format!(
            "{}  boot.ipxe\n{}  vmlinuz\n",
            sha256_file(&d.path().join("boot.ipxe")).unwrap(),
            crate::util::hash::sha256_bytes(b"evil")
        );
        std::fs::write(d.path().join(SUMS_FILE), sums).unwrap();
        assert!(matches!(
            err_of(verify_dir(d.path(), &key.verifying_key())),
            VerifyError::BadSignature { .. }
        ));
    }

    #[test]
    fn sums_with_escaping_paths_are_refused() {
        let d = bundle();
        std::fs::write(
            d.path().join(SUMS_FILE),
            format!("{}  ../etc/passwd\n", "0".repeat(64)),
        )
        .unwrap();
        let e = check_sums(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a relative path"), "{e}");
    }

    #[test]
    fn keygen_refuses_overwrite_and_keys_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("key");
        let vk = keygen(&k).unwrap();
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_signing_key(&k).unwrap().verifying_key(), vk);
        assert_eq!(load_verifying_key(&public_path(&k)).unwrap(), vk);
        let e = keygen(&k).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        // A public key is not accepted as a secret key and vice versa.
        assert!(load_verifying_key(&k).is_err());
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_signing_key(&k).unwrap_err().to_string();
        assert!(e.contains("readable by others"), "{e}");
    }
}
