//! Signing an output directory: key generation (`sanforge keygen`) and the Ed25519
//! signature over `SHA256SUMS` (`sanforge sign`).
//!
//! Why it exists: a PXE bundle is fetched over networks that nobody vouches for, and
//! `sanforge-init update` must refuse an image that was not produced by the holder of
//! the project's key. `SHA256SUMS` already pins every output file; signing it pins them
//! all. The formats and the checking side are [`crate::contract::signature`].
//!
//! Writes: key files (`keygen`, never overwriting) and `DIR/SHA256SUMS.sig` (atomically).

use crate::contract::signature::{
    check_sums, message, read_tagged, PUBLIC_TAG, SIGNATURE_TAG, SIG_FILE, SUMS_FILE,
};
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

pub const SECRET_TAG: &str = "sanforge-ed25519-secret";

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
    let vk = key.verifying_key();
    // Both files are written to temporary files first, then put in place: the pair
    // appears whole or not at all (a failure leaves no lone secret or public key).
    let secret_tmp = write_tmp(out, &secret_text, 0o600)?;
    let public_tmp = write_tmp(
        &public,
        &format!("{PUBLIC_TAG} {}\n", hex::encode(vk.as_bytes())),
        0o644,
    )?;
    place_new(secret_tmp, out)?;
    if let Err(e) = place_new(public_tmp, &public) {
        let _ = std::fs::remove_file(out);
        return Err(e);
    }
    Ok(vk)
}

/// `text` in a temporary file (created 0600, then `mode`) beside `path`.
fn write_tmp(path: &Path, text: &str, mode: u32) -> Result<tempfile::NamedTempFile> {
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
    Ok(tmp)
}

/// Renames `tmp` to `path` unless `path` appeared meanwhile.
fn place_new(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::signature::*;
    use crate::util::hash::sha256_file;

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
