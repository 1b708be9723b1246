//! `[kernel.module-signing]`: the owner's module-signing key, a secret the recipe
//! names (never part of the image or the repository).
//!
//! ```toml
//! [kernel.module-signing]
//! key = "keys/modsign.pem"   # relative to the project root; or SANFORGE_MODULE_SIGNING_KEY
//! enforce = true             # CONFIG_MODULE_SIG_FORCE: unsigned or foreign modules are refused
//! ```
//!
//! The file is what the kernel's `CONFIG_MODULE_SIG_KEY` takes (and what
//! `sanforge keygen --module-signing` writes): an unencrypted RSA private key and its
//! self-signed X.509 certificate, both PEM, in one file. Validation here is what can
//! be checked without running a program: the file exists, is inside the project or an
//! allowed directory (or comes from the environment), is not inside an overlay (it
//! would land in the image), and holds an RSA private key and a certificate. The
//! certificate's SHA-256 fingerprint goes into the kernel stage's key; the private key
//! bytes never leave this file's reader (no key, manifest, log or SBOM holds them).
//! That the key and the certificate belong together is checked by the kernel stage
//! with `openssl` (`stages::kernel::signing`).

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The environment variable that names the key (it wins over the recipe's `key`).
pub const KEY_ENV: &str = "SANFORGE_MODULE_SIGNING_KEY";

/// `[kernel.module-signing]` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModuleSigningSpec {
    /// The key + certificate PEM file, relative to the project root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Refuse unsigned and foreign modules (`CONFIG_MODULE_SIG_FORCE=y`).
    #[serde(default)]
    pub enforce: bool,
}

/// `[kernel.module-signing]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSigning {
    /// The PEM file (absolute, or as the environment gave it).
    pub key: PathBuf,
    /// Whether the path came from [`KEY_ENV`] rather than the recipe.
    pub from_env: bool,
    pub enforce: bool,
    /// SHA-256 of the certificate's DER bytes, lowercase hex (what `openssl x509
    /// -fingerprint -sha256` prints, without the colons).
    pub cert_sha256: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
}

/// The DER encoding of the rsaEncryption OID (1.2.840.113549.1.1.1).
const RSA_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` block, decoded.
struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// The PEM blocks of `text`, in order. Hand-written: a few lines of what the `pem`
/// crate does, over the base64 crate the project already has.
fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let Some(label) = l
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            // Encrypted PEM (`Proc-Type: 4,ENCRYPTED`) has headers before the data.
            if l.contains(':') {
                return Err(format!(
                    "its {label} block is encrypted: sign-file needs an unencrypted key"
                ));
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(format!("its {label} block has no `{end}` line"));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| format!("its {label} block is not valid base64 ({e})"))?;
        out.push(PemBlock {
            label: label.to_string(),
            der,
        });
    }
    Ok(out)
}

/// Checks a key file's text: an unencrypted RSA private key and one certificate with
/// an RSA public key. Returns the certificate's DER bytes.
pub fn check_pem(text: &str) -> Result<Vec<u8>, String> {
    let blocks = pem_blocks(text)?;
    let expected = "expected an unencrypted RSA private key and its X.509 certificate, both PEM, in one file (`sanforge keygen --module-signing` writes one)";
    let key = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY"));
    match key {
        None => return Err(format!("it holds no private key: {expected}")),
        Some(k) if k.label == "ENCRYPTED PRIVATE KEY" => {
            return Err(format!("its private key is encrypted: {expected}"))
        }
        Some(k) if k.label == "RSA PRIVATE KEY" => {}
        // PKCS#8: the algorithm identifier comes right after the version.
        Some(k) if k.label == "PRIVATE KEY" && contains(k.der.get(..32).unwrap_or(&k.der)) => {}
        Some(k) => {
            return Err(format!(
                "its private key ({}) is not an RSA key: {expected}",
                k.label
            ))
        }
    }
    let certs: Vec<&PemBlock> = blocks.iter().filter(|b| b.label == "CERTIFICATE").collect();
    match certs.as_slice() {
        [] => Err(format!("it holds no certificate: {expected}")),
        [c] if contains(&c.der) => Ok(c.der.clone()),
        [_] => Err(format!("its certificate has no RSA public key: {expected}")),
        _ => Err(format!(
            "it holds {} certificates: expected exactly one, the key's own",
            certs.len()
        )),
    }
}

fn contains(der: &[u8]) -> bool {
    der.windows(RSA_OID.len()).any(|w| w == RSA_OID)
}

/// Validates `[kernel.module-signing]`. `root`: the project root; `confine`: the
/// recipe's path rule; `overlays`: the recipe's overlay directories; `env`: the value
/// of [`KEY_ENV`], if set. The error is about the `key` value (or the table when the
/// key comes from nowhere).
pub fn validate(
    spec: &ModuleSigningSpec,
    root: &Path,
    confine: impl Fn(&Path) -> Result<PathBuf, String>,
    overlays: &[PathBuf],
    env: Option<PathBuf>,
) -> Result<ModuleSigning, String> {
    let (key, from_env) = match (env.filter(|p| !p.as_os_str().is_empty()), &spec.key) {
        (Some(p), _) => (std::path::absolute(&p).unwrap_or(p), true),
        (None, Some(k)) => (
            confine(k).map_err(|m| format!("[kernel.module-signing] key {m}"))?,
            false,
        ),
        (None, None) => {
            return Err(format!(
                "[kernel.module-signing] has no key: expected `key = \"PATH\"` (relative to {}) or the environment variable {KEY_ENV}",
                root.display()
            ))
        }
    };
    let shown = if from_env {
        format!("{} (from {KEY_ENV})", key.display())
    } else {
        format!("`{}`", key.strip_prefix(root).unwrap_or(&key).display())
    };
    let real = std::fs::canonicalize(&key).map_err(|e| {
        format!("[kernel.module-signing] key {shown}: cannot read it ({e}): expected the PEM file `sanforge keygen --module-signing` writes")
    })?;
    for o in overlays {
        if let Ok(o) = std::fs::canonicalize(o) {
            if real.starts_with(&o) {
                return Err(format!(
                    "[kernel.module-signing] key {shown} is inside the overlay {}: it would be copied into the image; keep the key outside every overlay",
                    o.display()
                ));
            }
        }
    }
    let bytes = std::fs::read(&real)
        .map_err(|e| format!("[kernel.module-signing] key {shown}: cannot read it ({e})"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("[kernel.module-signing] key {shown} is not a PEM text file"))?;
    let cert_der =
        check_pem(&text).map_err(|m| format!("[kernel.module-signing] key {shown}: {m}"))?;
    Ok(ModuleSigning {
        key,
        from_env,
        enforce: spec.enforce,
        cert_sha256: hex::encode(Sha256::digest(&cert_der)),
        cert_der,
    })
}

/// The recipe's hook: validates the table if there is one (the key from [`KEY_ENV`]
/// when set), recording an error at `key` (or at the table) otherwise.
pub(crate) fn from_recipe(
    spec: Option<&ModuleSigningSpec>,
    root: &Path,
    proj: &super::recipe::Project,
    overlays: &[PathBuf],
    errs: &mut super::spans::Errors,
) -> Option<ModuleSigning> {
    let spec = spec?;
    let env = std::env::var_os(KEY_ENV).map(PathBuf::from);
    match validate(spec, root, |p| proj.path(p), overlays, env) {
        Ok(m) => Some(m),
        Err(m) => {
            let table = super::spans::at!["kernel", "module-signing"];
            let key = super::spans::at!["kernel", "module-signing", "key"];
            errs.at(if spec.key.is_some() { key } else { table }, m);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The committed test-only key (public material, tests/fixtures/modsig/README.md).
    const TEST_KEY: &str = include_str!("../../tests/fixtures/modsig/keys/test-modsign.pem");

    #[test]
    fn the_test_key_is_an_rsa_key_and_certificate() {
        let der = check_pem(TEST_KEY).unwrap();
        assert_eq!(der.first(), Some(&0x30), "DER starts with a SEQUENCE");
    }

    #[test]
    fn wrong_files_say_what_is_expected() {
        let cert_only: String = TEST_KEY
            .split_inclusive('\n')
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .collect();
        let e = check_pem(&cert_only).unwrap_err();
        assert!(e.contains("no private key"), "{e}");
        let key_only: String = TEST_KEY
            .split_inclusive('\n')
            .take_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .collect();
        let e = check_pem(&key_only).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
        let e = check_pem("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.contains("not an RSA key"), "{e}");
        let e = check_pem("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n").unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        let e = check_pem("hello").unwrap_err();
        assert!(e.contains("expected an unencrypted RSA private key"), "{e}");
    }

    #[test]
    fn the_key_comes_from_the_recipe_or_the_environment_and_stays_out_of_overlays() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("overlays/base/etc")).unwrap();
        std::fs::create_dir_all(root.join("keys")).unwrap();
        std::fs::write(root.join("keys/k.pem"), TEST_KEY).unwrap();
        std::fs::write(root.join("overlays/base/etc/k.pem"), TEST_KEY).unwrap();
        let confine = |p: &Path| Ok(root.join(p));
        let overlays = [root.join("overlays/base")];
        let spec = |k: &str| ModuleSigningSpec {
            key: Some(PathBuf::from(k)),
            enforce: true,
        };
        let ok = validate(&spec("keys/k.pem"), root, confine, &overlays, None).unwrap();
        assert!(ok.enforce && !ok.from_env);
        assert_eq!(ok.cert_sha256.len(), 64);
        let e = validate(
            &spec("overlays/base/etc/k.pem"),
            root,
            confine,
            &overlays,
            None,
        )
        .unwrap_err();
        assert!(e.contains("inside the overlay"), "{e}");
        let e = validate(&spec("keys/none.pem"), root, confine, &overlays, None).unwrap_err();
        assert!(e.contains("`keys/none.pem`: cannot read it"), "{e}");
        let none = ModuleSigningSpec::default();
        let e = validate(&none, root, confine, &overlays, None).unwrap_err();
        assert!(e.contains(KEY_ENV), "{e}");
        let env = validate(
            &none,
            root,
            confine,
            &overlays,
            Some(root.join("keys/k.pem")),
        )
        .unwrap();
        assert!(env.from_env);
        assert_eq!(env.cert_sha256, ok.cert_sha256);
    }
}
