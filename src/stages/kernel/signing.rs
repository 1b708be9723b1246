//! Module signing with the owner's key (`[kernel.module-signing]`,
//! [`crate::config::module_signing`]): the kernel trusts the key's certificate and
//! every module of the image, in-tree and out-of-tree, carries a signature made by the
//! kernel's own `scripts/sign-file`.
//!
//! Where the private key is, and when:
//! * The kernel stage copies it (0600) to `build/certs/sanforge-module-signing.pem`,
//!   which `CONFIG_MODULE_SIG_KEY` names (a path relative to the build tree, so the
//!   `.config`, and `/proc/config.gz`, are the same on every machine). Kbuild extracts
//!   the certificate into `certs/signing_key.x509`, links it into the kernel, and
//!   `modules_install` (`CONFIG_MODULE_SIG_ALL`) signs each stripped module.
//! * The copy is deleted as soon as `modules_install` is done, whether the build
//!   succeeded or not ([`KeyInTree`]'s drop), and the stage fails if it is still
//!   there: the cache entry (which may be shared with other machines) keeps only the
//!   certificate. The key file's bytes never reach a stage key, manifest, log or SBOM;
//!   the stage key has the certificate's SHA-256 fingerprint.
//! * The modules stage (SCST, qla2x00t) signs with `sign-file` of the kernel's tree,
//!   reading the key from where the recipe (or `SANFORGE_MODULE_SIGNING_KEY`) says,
//!   and the certificate from the cached tree, after checking it is the key's.
//!
//! RSA PKCS#1 v1.5 signatures (what sign-file makes with an RSA key) are
//! deterministic: the same key and module give the same bytes, so signed images stay
//! bit-identical across builds (`build --verify`).
//!
//! Without `[kernel.module-signing]` none of this happens and the kernel stage's key,
//! config and outputs are what they were before this file existed.

use crate::config::module_signing::ModuleSigning;
use crate::engine::Ctx;
use crate::kconfig::Request;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the key is while the kernel builds, relative to the build tree (O=).
pub const KEY_IN_TREE: &str = "certs/sanforge-module-signing.pem";
/// The certificate Kbuild extracts from the key (DER), relative to the build tree.
pub const CERT_IN_TREE: &str = "certs/signing_key.x509";
/// What the kernel stage records about signing, in its cache entry.
pub const RECORD: &str = "module-signing.json";
/// The trailer sign-file appends to a signed module.
const SIG_MAGIC: &[u8] = b"~Module signature appended~\n";

/// `module-signing.json` of the kernel entry (read by the manifest).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct SigningRecord {
    /// SHA-256 of the trusted certificate (DER).
    pub cert_sha256: String,
    /// `CONFIG_MODULE_SIG_HASH`.
    pub hash: String,
    /// `CONFIG_MODULE_SIG_FORCE`: unsigned and foreign modules are refused.
    pub enforce: bool,
    /// How many installed in-tree modules are signed (all of them).
    pub signed_modules: usize,
}

/// The recipe's signing settings, if any.
pub fn settings(ctx: &Ctx) -> Option<&ModuleSigning> {
    ctx.recipe.module_signing.as_ref()
}

/// The kernel stage key's share: the certificate's fingerprint and `enforce`.
/// Nothing without a key (the key of an unsigned kernel is unchanged).
/// Warns (once per build or plan, when the key is computed) about a key git tracks.
pub fn add_key(ctx: &Ctx, kb: &mut KeyBuilder) {
    if let Some(m) = settings(ctx) {
        kb.add_str("module-signing-cert-sha256", &m.cert_sha256);
        kb.add_str("module-signing-enforce", if m.enforce { "y" } else { "n" });
        if tracked_by_git(&m.key) {
            progress::step(&format!(
                "warning: the module-signing key {} is tracked by git: whoever has the repository can sign modules this kernel trusts (acceptable for public test keys only; keep a real key outside the repository)",
                m.key.display()
            ));
        }
    }
}

/// Whether git tracks `path` (false when git or a repository is not there).
/// A warning, not a refusal: the test fixtures' public key is tracked on purpose.
fn tracked_by_git(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    crate::util::tools::which("git").is_some()
        && Cmd::new("git")
            .arg("-C")
            .arg(dir)
            .args(["ls-files", "--error-unmatch", "--"])
            .arg(name)
            .output(&Log::none())
            .is_ok()
}

/// The kernel options signing needs (verified like the recipe's own).
pub fn requests(ctx: &Ctx) -> Vec<Request> {
    let Some(m) = settings(ctx) else {
        return Vec::new();
    };
    let origin = "[kernel.module-signing]";
    let mut opts = vec![
        ("CONFIG_MODULES", "y".to_string()),
        ("CONFIG_MODULE_SIG", "y".to_string()),
        ("CONFIG_MODULE_SIG_ALL", "y".to_string()),
        ("CONFIG_MODULE_SIG_SHA256", "y".to_string()),
        ("CONFIG_MODULE_SIG_KEY_TYPE_RSA", "y".to_string()),
        ("CONFIG_MODULE_SIG_KEY", format!("\"{KEY_IN_TREE}\"")),
    ];
    if m.enforce {
        opts.push(("CONFIG_MODULE_SIG_FORCE", "y".to_string()));
    }
    opts.into_iter()
        .map(|(o, v)| Request {
            option: o.to_string(),
            value: v,
            origin: if o == "CONFIG_MODULE_SIG_FORCE" {
                format!("{origin} enforce = true")
            } else {
                origin.to_string()
            },
        })
        .collect()
}

/// Checks that the key file's private key and certificate belong together (their
/// public keys are the same), with openssl. Nothing secret is printed or logged.
pub fn check_pair(m: &ModuleSigning, log: &Log) -> Result<()> {
    let openssl = crate::util::tools::which("openssl")
        .context("module signing needs openssl (Debian package `openssl`)")?;
    let from_key = Cmd::new(&openssl)
        .args(["pkey", "-pubout", "-in"])
        .arg(&m.key)
        .output(log)
        .with_context(|| format!("openssl cannot read the private key of {}", m.key.display()))?;
    let from_cert = Cmd::new(&openssl)
        .args(["x509", "-noout", "-pubkey", "-in"])
        .arg(&m.key)
        .output(log)
        .with_context(|| format!("openssl cannot read the certificate of {}", m.key.display()))?;
    if from_key.trim() != from_cert.trim() {
        bail!(
            "module-signing key {}: its certificate is not the private key's (their public keys differ): regenerate the pair with `sanforge keygen --module-signing`",
            m.key.display()
        );
    }
    Ok(())
}

/// The key's copy inside the build tree; removed when dropped.
pub struct KeyInTree(Option<PathBuf>);

impl KeyInTree {
    /// Removes the copy now, failing if it cannot.
    pub fn remove(mut self) -> Result<()> {
        if let Some(p) = self.0.take() {
            ufs::remove_file(&p)?;
            if p.exists() {
                bail!("the module-signing key is still in the build tree at {}: the cache entry must not keep it", p.display());
            }
        }
        Ok(())
    }
}

impl Drop for KeyInTree {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Before the kernel is configured: checks the pair and copies the key into the
/// build tree `obj` (mode 0600). Nothing without a key.
pub fn place_key(ctx: &Ctx, obj: &Path, log: &Log) -> Result<KeyInTree> {
    let Some(m) = settings(ctx) else {
        return Ok(KeyInTree(None));
    };
    check_pair(m, log)?;
    let dst = obj.join(KEY_IN_TREE);
    let bytes = ufs::read(&m.key)?;
    ufs::create_dir_all(&ufs::parent_dir(&dst))?;
    let guard = KeyInTree(Some(dst.clone()));
    if !ufs::write_new_private(&dst, &bytes)? {
        bail!(
            "{} exists already: the build tree is not fresh",
            dst.display()
        );
    }
    log.line(&format!(
        "module signing: key copied into the build tree for the build (certificate sha256 {})",
        m.cert_sha256
    ));
    Ok(guard)
}

/// The manifest's `kernel.module-signing` of a kernel entry (None: not signed).
pub fn manifest(kernel_dir: &Path) -> Result<Option<serde_json::Value>> {
    let p = kernel_dir.join(RECORD);
    if !p.is_file() {
        return Ok(None);
    }
    let rec: SigningRecord = serde_json::from_str(&ufs::read_to_string(&p)?)
        .with_context(|| format!("cannot parse {}", p.display()))?;
    Ok(Some(serde_json::to_value(rec)?))
}

/// Whether a module file ends with sign-file's trailer (of the decompressed module
/// for a `.ko.xz`: modules_install signs before it compresses).
pub fn is_signed(ko: &Path) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if ko.to_string_lossy().ends_with(".xz") {
        let bytes = crate::stages::firmware::read_module(ko)?;
        return Ok(bytes.ends_with(SIG_MAGIC));
    }
    let mut f = std::fs::File::open(ko).with_context(|| format!("cannot open {}", ko.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot stat {}", ko.display()))?
        .len();
    if len < SIG_MAGIC.len() as u64 {
        return Ok(false);
    }
    let mut tail = vec![0u8; SIG_MAGIC.len()];
    f.seek(SeekFrom::End(-(SIG_MAGIC.len() as i64)))
        .and_then(|_| f.read_exact(&mut tail))
        .with_context(|| format!("cannot read {}", ko.display()))?;
    Ok(tail == SIG_MAGIC)
}

/// After `modules_install`: removes the key from the build tree, checks that the
/// certificate the kernel trusts is the key's and that every installed module is
/// signed, and writes [`RECORD`] into the entry `dir`.
pub fn finish(ctx: &Ctx, key: KeyInTree, obj: &Path, dir: &Path) -> Result<()> {
    key.remove()?;
    let Some(m) = settings(ctx) else {
        return Ok(());
    };
    check_cert(m, obj)?;
    let mut signed = 0;
    let mut unsigned = Vec::new();
    let lib = dir.join("modules/lib/modules");
    for ko in crate::stages::firmware::find_modules(&lib)? {
        if is_signed(&ko)? {
            signed += 1;
        } else {
            unsigned.push(ko.strip_prefix(&lib).unwrap_or(&ko).display().to_string());
        }
    }
    if !unsigned.is_empty() {
        bail!(
            "{} installed modules are not signed although CONFIG_MODULE_SIG_ALL is set: {}",
            unsigned.len(),
            unsigned.join(", ")
        );
    }
    let rec = SigningRecord {
        cert_sha256: m.cert_sha256.clone(),
        hash: sig_hash(obj)?,
        enforce: m.enforce,
        signed_modules: signed,
    };
    ufs::write(
        &dir.join(RECORD),
        serde_json::to_string_pretty(&rec)? + "\n",
    )?;
    progress::step(&format!(
        "kernel: {signed} modules signed (certificate sha256 {}{})",
        &m.cert_sha256[..16],
        if m.enforce { ", enforced" } else { "" }
    ));
    Ok(())
}

/// The certificate in the build tree `obj` must be the key's.
fn check_cert(m: &ModuleSigning, obj: &Path) -> Result<()> {
    let cert = obj.join(CERT_IN_TREE);
    let der = ufs::read(&cert).context(
        "the kernel build tree has no module-signing certificate (rebuild the kernel stage)",
    )?;
    if der != m.cert_der {
        bail!(
            "the kernel's module-signing certificate {} (sha256 {}) is not the one of the key {} (sha256 {})",
            cert.display(),
            crate::util::hash::sha256_bytes(&der),
            m.key.display(),
            m.cert_sha256
        );
    }
    Ok(())
}

/// `CONFIG_MODULE_SIG_HASH` of the build tree's config (`sha256`).
fn sig_hash(obj: &Path) -> Result<String> {
    let config = crate::kconfig::parse_config(&ufs::read_to_string(&obj.join(".config"))?);
    match config.get("CONFIG_MODULE_SIG_HASH") {
        Some(v) => Ok(v.trim_matches('"').to_string()),
        None => bail!(
            "{} has no CONFIG_MODULE_SIG_HASH: is CONFIG_MODULE_SIG set?",
            obj.join(".config").display()
        ),
    }
}

/// Signs an out-of-tree module (already stripped: stripping drops a signature) with
/// the kernel's `scripts/sign-file`, the recipe's key and the certificate the kernel
/// trusts. `kdir`: the kernel stage's build tree. Nothing without a key.
pub fn sign_module(m: Option<&ModuleSigning>, kdir: &Path, ko: &Path, log: &Log) -> Result<()> {
    let Some(m) = m else {
        return Ok(());
    };
    check_cert(m, kdir)?;
    let sign_file = kdir.join("scripts/sign-file");
    if !sign_file.is_file() {
        bail!(
            "{} is missing: the kernel tree cannot sign modules (rebuild the kernel stage)",
            sign_file.display()
        );
    }
    Cmd::new(&sign_file)
        .arg(sig_hash(kdir)?)
        .arg(&m.key)
        .arg(kdir.join(CERT_IN_TREE))
        .arg(ko)
        .run(log)
        .with_context(|| format!("cannot sign {}", ko.display()))?;
    if !is_signed(ko)? {
        bail!("sign-file left {} unsigned", ko.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_trailer_tells_signed_modules() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a.ko");
        std::fs::write(&a, b"\x7fELF...").unwrap();
        assert!(!is_signed(&a).unwrap());
        let mut signed = b"\x7fELF...sig".to_vec();
        signed.extend_from_slice(SIG_MAGIC);
        std::fs::write(&a, &signed).unwrap();
        assert!(is_signed(&a).unwrap());
        std::fs::write(&a, b"x").unwrap();
        assert!(!is_signed(&a).unwrap());
    }
}
