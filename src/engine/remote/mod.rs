//! The stage cache shared past one machine: stage entries pushed to and pulled from
//! a repository of an OCI registry (`SANFORGE_REMOTE_CACHE`, `build --remote-cache`
//! or the recipe's `[cache] remote`).
//!
//! Why it exists: the kernel stage costs 10-20 minutes; CI runners and team members
//! with the same recipe compute the same stage keys, so one of them builds and the
//! others take the result.
//!
//! **Format.** One OCI artifact per stage key, tagged `STAGE-KEY`: an image manifest
//! (`artifactType` [`ARTIFACT_TYPE`]) whose config is the empty descriptor and whose
//! one layer is the entry as a zstd-compressed tar ([`LAYER_TYPE`]). Parts of an entry
//! that only make sense on the machine that built it stay out ([`Stage::shared`]: the
//! kernel's `src/` and `build/` trees, gigabytes that record their absolute path); a
//! stage that reads them when it runs here ([`Stage::reads_local_parts_of`], the SCST
//! modules) makes the build keep that earlier stage local.
//!
//! **Trust.** The manifest's annotation `dev.sanforge.signature` holds an Ed25519
//! signature (the key format of `sanforge keygen`, as for images) over
//! `sanforge-stage-cache-v1`, the stage, the key and the layer's digest and size. A
//! pulled entry is used only if that signature verifies with one of the recipe's
//! `[cache] trusted-keys` *and* the downloaded layer has the digest and size the
//! manifest states; otherwise a warning says why and the stage runs here. The
//! signature binds the stage key, so a trusted entry cannot be replayed under another
//! key. The builder signs with `SANFORGE_REMOTE_CACHE_KEY` (or `--remote-cache-key`);
//! without a key it only pulls. A key that is already in the registry is not pushed
//! again (the first trusted push wins; an entry refused here is rebuilt, not replaced).
//!
//! **Failure.** The registry is an optimisation: a transport error (refused, reset,
//! 3 s connect timeout) prints one warning and the build goes on without it; a
//! refused request warns and skips that entry. A pulled entry is unpacked into a
//! temporary directory of the cache and renamed into place ([`Cache::build_stage`]):
//! never half there.
//!
//! Reads and writes: the registry, temporary files in the cache's `tmp/`, stage
//! entries (pull).

pub mod oci;

use super::cache::{Cache, COMPLETE_MARKER};
use super::ctx::Ctx;
use super::stage::Stage;
use crate::config::recipe::Recipe;
use crate::config::remote_cache::{parse_remote_url, RemoteUrl, KEY_ENV, REMOTE_ENV};
use crate::contract::signature::{fingerprint, load_verifying_key, SIGNATURE_TAG};
use crate::util::cmd::{Cmd, Log};
use crate::util::progress::{self, Task};
use anyhow::{Context, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use oci::{OciError, Registry};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const ARTIFACT_TYPE: &str = "application/vnd.sanforge.stage.v1";
pub const LAYER_TYPE: &str = "application/vnd.sanforge.stage.v1.tar+zstd";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_JSON: &[u8] = b"{}";
const ANN_STAGE: &str = "dev.sanforge.stage";
const ANN_KEY: &str = "dev.sanforge.key";
const ANN_SIGNATURE: &str = "dev.sanforge.signature";
/// Domain separation of the signed text.
const CONTEXT: &str = "sanforge-stage-cache-v1";

/// A descriptor of an OCI manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// The OCI image manifest of one entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The text an entry's signature covers.
pub fn signed_text(stage: &str, key: &str, layer: &Descriptor) -> String {
    format!(
        "{CONTEXT}\nstage {stage}\nkey {key}\nlayer {} {}\n",
        layer.digest, layer.size
    )
}

/// What this build does with the remote cache.
pub struct Remote {
    pub url: RemoteUrl,
    reg: Registry,
    trusted: Vec<VerifyingKey>,
    signer: Option<SigningKey>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Set at the first transport error: nothing more is sent.
    down: bool,
    /// The shared stages of this build: name → (local-only parts, in the registry).
    shared: BTreeMap<String, (&'static [&'static str], bool)>,
    pulled: Vec<String>,
    /// (stage, bytes of its layer) of every push.
    pushed: Vec<(String, u64)>,
}

/// `--remote-cache off` (and the environment's `off`): no remote for this build.
pub const OFF: &str = "off";

impl Remote {
    /// The remote of a build: `cli` (`--remote-cache`), else `SANFORGE_REMOTE_CACHE`,
    /// else the recipe's `[cache] remote`; `off` in either means none. The signing key:
    /// `cli_key`, else `SANFORGE_REMOTE_CACHE_KEY`. A bad URL or key is an error.
    pub fn configure(
        recipe: &Recipe,
        cli: Option<&str>,
        cli_key: Option<&Path>,
    ) -> Result<Option<Remote>> {
        let env = std::env::var(REMOTE_ENV).ok().filter(|v| !v.is_empty());
        let url = match (cli, env.as_deref()) {
            (Some(OFF), _) => return Ok(None),
            (Some(u), _) => {
                parse_remote_url(u).map_err(|m| anyhow::anyhow!("--remote-cache: {m}"))?
            }
            (None, Some(OFF)) => return Ok(None),
            (None, Some(u)) => {
                parse_remote_url(u).map_err(|m| anyhow::anyhow!("{REMOTE_ENV}: {m}"))?
            }
            (None, None) => match &recipe.cache.remote {
                Some(u) => u.clone(),
                None => return Ok(None),
            },
        };
        let trusted = recipe
            .cache
            .trusted_keys
            .iter()
            .map(|p| load_verifying_key(p))
            .collect::<Result<Vec<_>>>()?;
        let key_file = cli_key.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(KEY_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let signer = match &key_file {
            Some(k) => Some(
                crate::image::sign::load_signing_key(k)
                    .with_context(|| format!("the remote cache's signing key ({KEY_ENV})"))?,
            ),
            None => None,
        };
        if trusted.is_empty() {
            progress::step(&format!(
                "note: remote cache {url}: the recipe trusts no key ([cache] trusted-keys), so nothing is pulled"
            ));
        }
        if signer.is_none() {
            progress::step(&format!(
                "note: remote cache {url}: no signing key ({KEY_ENV} or --remote-cache-key), so nothing is pushed"
            ));
        }
        Ok(Some(Remote {
            reg: Registry::new(&url),
            url,
            trusted,
            signer,
            state: Mutex::new(State::default()),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether an earlier call found the registry unreachable.
    pub fn is_down(&self) -> bool {
        self.state().down
    }

    /// The stages pulled so far.
    pub fn pulled(&self) -> Vec<String> {
        self.state().pulled.clone()
    }

    /// (stage, bytes) of every push so far.
    pub fn pushed(&self) -> Vec<(String, u64)> {
        self.state().pushed.clone()
    }

    /// Reports a failed call: the first transport error marks the registry down.
    fn failed(&self, what: &str, e: &OciError) {
        match e {
            OciError::Down(m) | OciError::Unauthorized(m) => {
                let mut st = self.state();
                if !st.down {
                    st.down = true;
                    let why = if matches!(e, OciError::Down(_)) {
                        "is unreachable"
                    } else {
                        "refuses access"
                    };
                    progress::step(&format!(
                        "warning: remote cache {} {why} ({what}: {m}); going on without it",
                        self.url
                    ));
                }
            }
            OciError::Refused(m) => progress::step(&format!(
                "warning: remote cache {}: {what} failed: {m}",
                self.url
            )),
        }
    }

    /// Whether the registry holds the entry (`None`: unreachable).
    fn has(&self, stage: &str, key: &str) -> Option<bool> {
        if self.is_down() {
            return None;
        }
        match self.reg.manifest_digest(&tag(stage, key)) {
            Ok(d) => Some(d.is_some()),
            Err(e) => {
                self.failed(&format!("looking up {stage} {}", super::short(key)), &e);
                None
            }
        }
    }

    /// After a stage ran here: pushes its entry if the registry does not have it.
    pub fn after_build(&self, cache: &Cache, stage: &str, key: &str, dir: &Path) {
        let shared = self.state().shared.get(stage).copied();
        if let Some((local_only, false)) = shared {
            self.push(cache, stage, key, dir, local_only);
        }
    }

    /// Pushes the entry in `dir` (without `local_only`), signed; warns on failure.
    pub fn push(&self, cache: &Cache, stage: &str, key: &str, dir: &Path, local_only: &[&str]) {
        let Some(signer) = &self.signer else {
            return;
        };
        if self.is_down() {
            return;
        }
        match self.try_push(cache, signer, stage, key, dir, local_only) {
            Ok(bytes) => {
                let mut st = self.state();
                st.pushed.push((stage.to_string(), bytes));
                if let Some(s) = st.shared.get_mut(stage) {
                    s.1 = true;
                }
            }
            Err(PushError::Oci(e)) => self.failed(&format!("pushing {stage}"), &e),
            Err(PushError::Local(e)) => progress::step(&format!(
                "warning: remote cache {}: cannot push {stage}: {e:#}",
                self.url
            )),
        }
    }

    fn try_push(
        &self,
        cache: &Cache,
        signer: &SigningKey,
        stage: &str,
        key: &str,
        dir: &Path,
        local_only: &[&str],
    ) -> std::result::Result<u64, PushError> {
        let started = std::time::Instant::now();
        let (tar, layer) = pack(cache, dir, local_only)?;
        let packed = started.elapsed().as_secs_f64();
        let mut task = Task::start(
            &format!("{stage}: pushing {} to {}", super::short(key), self.url),
            Some(layer.size),
            "bytes",
        );
        if !self.reg.has_blob(&layer.digest)? {
            let file = std::fs::File::open(tar.path())
                .with_context(|| format!("cannot open {}", tar.path().display()))?;
            let body = Counting {
                inner: file,
                task: &mut task,
            };
            self.reg.push_blob(&layer.digest, layer.size, body)?;
        }
        let empty = Descriptor {
            media_type: EMPTY_TYPE.to_string(),
            digest: format!("sha256:{}", crate::util::hash::sha256_bytes(EMPTY_JSON)),
            size: EMPTY_JSON.len() as u64,
        };
        if !self.reg.has_blob(&empty.digest)? {
            self.reg.push_blob(&empty.digest, empty.size, EMPTY_JSON)?;
        }
        let sig = signer.sign(signed_text(stage, key, &layer).as_bytes());
        let manifest = Manifest {
            schema_version: 2,
            media_type: oci::MANIFEST_TYPE.to_string(),
            artifact_type: ARTIFACT_TYPE.to_string(),
            config: empty,
            layers: vec![layer.clone()],
            annotations: BTreeMap::from([
                (ANN_STAGE.to_string(), stage.to_string()),
                (ANN_KEY.to_string(), key.to_string()),
                (
                    ANN_SIGNATURE.to_string(),
                    format!(
                        "{SIGNATURE_TAG} {} {}",
                        hex::encode(signer.verifying_key().as_bytes()),
                        hex::encode(sig.to_bytes())
                    ),
                ),
            ]),
        };
        let bytes = serde_json::to_vec(&manifest).context("cannot serialise the manifest")?;
        self.reg.put_manifest(&tag(stage, key), &bytes)?;
        task.finish(&format!(
            "{} bytes (the entry as a zstd tar, packed in {packed:.1}s), signed by key {}",
            layer.size,
            fingerprint(&signer.verifying_key())
        ));
        Ok(layer.size)
    }

    /// Pulls the entry of `stage` under `key` into the cache if the registry has one
    /// that verifies; `false` (with a warning when it was refused) otherwise.
    pub fn pull(&self, cache: &Cache, stage: &str, key: &str) -> bool {
        // A directory without its marker is an in-place build of another sanforge
        // (the kernel's) or a leftover: the stage builds it here, never a pull over it.
        if self.is_down() || self.trusted.is_empty() || cache.stage_path(stage, key).exists() {
            return false;
        }
        let bytes = match self.reg.get_manifest(&tag(stage, key)) {
            Ok(Some(b)) => b,
            Ok(None) => return false,
            Err(e) => {
                self.failed(&format!("pulling {stage}"), &e);
                return false;
            }
        };
        let refused = |why: &str| {
            progress::step(&format!(
                "warning: remote cache {}: the {stage} entry {} is refused: {why}; building it here",
                self.url,
                super::short(key)
            ));
            false
        };
        let layer = match check_manifest(&bytes, stage, key, &self.trusted) {
            Ok(l) => l,
            Err(why) => return refused(&why),
        };
        let tar = match self.download(cache, stage, key, &layer) {
            Ok(Ok(t)) => t,
            Ok(Err(why)) => return refused(&why),
            Err(PushError::Oci(e)) => {
                self.failed(&format!("pulling {stage}"), &e);
                return false;
            }
            Err(PushError::Local(e)) => {
                return refused(&format!("{e:#}"));
            }
        };
        let unpacked = cache.build_stage(stage, key, |dir| {
            Cmd::new("tar")
                .arg("--extract")
                .arg("--zstd")
                .arg("--no-same-owner")
                .arg("--file")
                .arg(tar.path())
                .arg("--directory")
                .arg(dir)
                .run(&Log::none())
        });
        match unpacked {
            Ok(_) => {
                self.state().pulled.push(stage.to_string());
                true
            }
            Err(e) => refused(&format!("cannot unpack it: {e:#}")),
        }
    }

    /// Downloads the layer to a temporary file, checking its size and digest on the
    /// way. The inner `Err` is why the content is refused.
    #[allow(clippy::type_complexity)]
    fn download(
        &self,
        cache: &Cache,
        stage: &str,
        key: &str,
        layer: &Descriptor,
    ) -> std::result::Result<std::result::Result<tempfile::NamedTempFile, String>, PushError> {
        let (mut body, _) = self.reg.get_blob(&layer.digest)?;
        let mut tmp = cache.temp_file()?;
        let mut task = Task::start(
            &format!("{stage}: pulling {} from {}", super::short(key), self.url),
            Some(layer.size),
            "bytes",
        );
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut got: u64 = 0;
        loop {
            let n = body
                .read(&mut buf)
                .map_err(|e| OciError::Down(format!("reading blob {}: {e}", layer.digest)))?;
            let Some(chunk) = buf.get(..n).filter(|_| n > 0) else {
                break;
            };
            got += n as u64;
            if got > layer.size {
                return Ok(Err(format!(
                    "its content is larger than the {} bytes its manifest states",
                    layer.size
                )));
            }
            h.update(chunk);
            tmp.write_all(chunk)
                .with_context(|| format!("cannot write {}", tmp.path().display()))?;
            task.inc(n as u64);
        }
        let actual = format!("sha256:{}", hex::encode(h.finalize()));
        if got != layer.size || actual != layer.digest {
            return Ok(Err(format!(
                "its content does not match the manifest it was pushed with ({got} bytes with digest {actual}; the manifest says {} bytes, {})",
                layer.size, layer.digest
            )));
        }
        task.finish(&format!("{got} bytes, digest and signature verified"));
        Ok(Ok(tmp))
    }
}

/// Checks a pulled manifest: it is the entry of this stage and key, its one layer is
/// an entry tar, and its signature verifies with a trusted key. Returns the layer.
pub fn check_manifest(
    bytes: &[u8],
    stage: &str,
    key: &str,
    trusted: &[VerifyingKey],
) -> std::result::Result<Descriptor, String> {
    let m: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("its manifest is not a sanforge stage manifest ({e})"))?;
    let ann = |k: &str| m.annotations.get(k).map(String::as_str).unwrap_or("");
    if m.artifact_type != ARTIFACT_TYPE || ann(ANN_STAGE) != stage || ann(ANN_KEY) != key {
        return Err(format!(
            "its manifest describes `{}` stage `{}` key `{}`, expected {ARTIFACT_TYPE} stage {stage} key {key}",
            m.artifact_type,
            ann(ANN_STAGE),
            ann(ANN_KEY)
        ));
    }
    let layer = match m.layers.as_slice() {
        [l] if l.media_type == LAYER_TYPE
            && l.digest
                .strip_prefix("sha256:")
                .is_some_and(crate::util::hash::is_sha256) =>
        {
            l.clone()
        }
        _ => {
            return Err(format!(
                "its manifest does not have exactly one {LAYER_TYPE} layer with a sha256 digest"
            ))
        }
    };
    let words: Vec<&str> = ann(ANN_SIGNATURE).split_whitespace().collect();
    let (public, sig) = match words.as_slice() {
        [t, p, s] if *t == SIGNATURE_TAG => (*p, *s),
        _ => return Err("it is not signed (no dev.sanforge.signature annotation)".to_string()),
    };
    let public: [u8; 32] = hex::decode(public)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("its signature names a malformed public key")?;
    let sig: [u8; 64] = hex::decode(sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("its signature is malformed")?;
    let signer = VerifyingKey::from_bytes(&public)
        .map_err(|_| "its signature names an invalid public key".to_string())?;
    let Some(key_ok) = trusted.iter().find(|k| **k == signer) else {
        let list: Vec<String> = trusted.iter().map(fingerprint).collect();
        return Err(format!(
            "it is signed by key {}, which the recipe does not trust ([cache] trusted-keys: {})",
            fingerprint(&signer),
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        ));
    };
    key_ok
        .verify(
            signed_text(stage, key, &layer).as_bytes(),
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| {
            format!(
                "its signature (key {}) does not match its manifest: the manifest was changed after signing",
                fingerprint(key_ok)
            )
        })?;
    Ok(layer)
}

/// `STAGE-KEY`: the entry's tag.
fn tag(stage: &str, key: &str) -> String {
    format!("{stage}-{key}")
}

/// Tars and compresses `dir` (its marker and `local_only` parts left out) into a
/// temporary file of the cache; returns it with its layer descriptor.
fn pack(
    cache: &Cache,
    dir: &Path,
    local_only: &[&str],
) -> Result<(tempfile::NamedTempFile, Descriptor)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    names.retain(|n| n != COMPLETE_MARKER && !local_only.contains(&n.as_str()));
    names.sort();
    let tmp = cache.temp_file()?;
    Cmd::new("tar")
        .arg("--create")
        .arg("--zstd")
        .arg("--format=gnu")
        .arg("--sort=name")
        .arg("--numeric-owner")
        .arg("--owner=0")
        .arg("--group=0")
        .arg("--file")
        .arg(tmp.path())
        .arg("--directory")
        .arg(dir)
        .arg("--files-from=/dev/null")
        .arg("--")
        .args(&names)
        .run(&Log::none())?;
    let sha = crate::util::hash::sha256_file(tmp.path())?;
    let size = std::fs::metadata(tmp.path())
        .with_context(|| format!("cannot stat {}", tmp.path().display()))?
        .len();
    Ok((
        tmp,
        Descriptor {
            media_type: LAYER_TYPE.to_string(),
            digest: format!("sha256:{sha}"),
            size,
        },
    ))
}

/// Before the stages run: looks up every shared stage of the build in the registry,
/// pushes the local entries it lacks and (with `pull`) pulls the entries missing here,
/// last stage first, so that a stage whose local-only parts a stage running here
/// reads is kept local ([`Stage::reads_local_parts_of`]).
pub fn sync<B>(ctx: &Ctx, stages: &[&&dyn Stage<B>], pull: bool) {
    let Some(remote) = &ctx.remote else {
        return;
    };
    let mut rows = Vec::new();
    for s in stages {
        let Some(local_only) = s.shared() else {
            continue;
        };
        let key = ctx.keys.get(s.name()).to_string();
        let local = ctx.cache.stage_done(s.name(), &key);
        // Unknown (unreachable, refused): neither pulled nor pushed.
        let there = remote.has(s.name(), &key);
        remote
            .state()
            .shared
            .insert(s.name().to_string(), (local_only, there != Some(false)));
        rows.push(Row {
            name: s.name(),
            key,
            local,
            remote: there == Some(true),
            absent: there == Some(false),
            local_only,
            reads: s.reads_local_parts_of(),
        });
    }
    for r in &rows {
        if let (Some(dir), true) = (&r.local, r.absent) {
            remote.push(&ctx.cache, r.name, &r.key, dir, r.local_only);
        }
    }
    if !pull {
        return;
    }
    let kept = pull_missing(&rows, |r| remote.pull(&ctx.cache, r.name, &r.key));
    for (r, reader) in kept {
        progress::step(&format!(
            "{}: not pulled: {reader} runs here and needs its {} ({})",
            r.name,
            r.local_only.join(", "),
            super::short(&r.key)
        ));
    }
}

/// One shared stage of a build, as [`sync`] finds it.
struct Row {
    name: &'static str,
    key: String,
    /// Its complete entry here, if any.
    local: Option<PathBuf>,
    /// Whether the registry has an entry under its key; lacks one (both false when
    /// it could not tell).
    remote: bool,
    absent: bool,
    local_only: &'static [&'static str],
    reads: &'static [&'static str],
}

/// Tries `pull` on every stage missing here that the registry has, last stage first;
/// a stage whose local-only parts a stage that runs here reads is not tried (it is
/// returned with that reader). A stage runs here when it is missing and not pulled.
fn pull_missing(rows: &[Row], mut pull: impl FnMut(&Row) -> bool) -> Vec<(&Row, &'static str)> {
    let mut runs_here: Vec<&str> = Vec::new();
    let mut kept = Vec::new();
    for r in rows.iter().rev().filter(|r| r.local.is_none()) {
        let reader = rows
            .iter()
            .find(|t| t.reads.contains(&r.name) && runs_here.contains(&t.name));
        if let (Some(t), false) = (reader, r.local_only.is_empty()) {
            kept.push((r, t.name));
            runs_here.push(r.name);
            continue;
        }
        if !(r.remote && pull(r)) {
            runs_here.push(r.name);
        }
    }
    kept
}

/// The error of a push or a download: the registry's, or this machine's.
enum PushError {
    Oci(OciError),
    Local(anyhow::Error),
}

impl From<OciError> for PushError {
    fn from(e: OciError) -> Self {
        PushError::Oci(e)
    }
}

impl From<anyhow::Error> for PushError {
    fn from(e: anyhow::Error) -> Self {
        PushError::Local(e)
    }
}

/// A reader that reports what passes through it to a progress task.
struct Counting<'a, R> {
    inner: R,
    task: &'a mut Task,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(signer: &SigningKey, stage: &str, key: &str, layer: &Descriptor) -> Vec<u8> {
        let sig = signer.sign(signed_text(stage, key, layer).as_bytes());
        serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: oci::MANIFEST_TYPE.to_string(),
            artifact_type: ARTIFACT_TYPE.to_string(),
            config: layer.clone(),
            layers: vec![layer.clone()],
            annotations: BTreeMap::from([
                (ANN_STAGE.to_string(), stage.to_string()),
                (ANN_KEY.to_string(), key.to_string()),
                (
                    ANN_SIGNATURE.to_string(),
                    format!(
                        "{SIGNATURE_TAG} {} {}",
                        hex::encode(signer.verifying_key().as_bytes()),
                        hex::encode(sig.to_bytes())
                    ),
                ),
            ]),
        })
        .unwrap()
    }

    fn row(name: &'static str, local: bool, remote: bool) -> Row {
        let (local_only, reads): (&'static [&'static str], &'static [&'static str]) = match name {
            "kernel" => (&["src", "build"], &[]),
            "modules" => (&[], &["kernel"]),
            _ => (&[], &[]),
        };
        Row {
            name,
            key: format!("{name}-key"),
            local: local.then(|| PathBuf::from(name)),
            remote,
            absent: !remote,
            local_only,
            reads,
        }
    }

    /// Runs [`pull_missing`] with pulls of `failing` failing: (tried, kept local).
    fn decide(rows: &[Row], failing: &[&str]) -> (Vec<&'static str>, Vec<&'static str>) {
        let mut tried = Vec::new();
        let kept = pull_missing(rows, |r| {
            tried.push(r.name);
            !failing.contains(&r.name)
        });
        (tried, kept.iter().map(|(r, _)| r.name).collect())
    }

    #[test]
    fn a_kernel_is_pulled_only_when_no_stage_that_runs_here_needs_its_trees() {
        let all = |m_remote| {
            vec![
                row("kernel", false, true),
                row("modules", false, m_remote),
                row("rootfs", false, true),
            ]
        };
        // Everything in the registry: everything pulled, last first.
        assert_eq!(
            decide(&all(true), &[]),
            (vec!["rootfs", "modules", "kernel"], vec![])
        );
        // The modules must be built here: the kernel too (its build tree).
        assert_eq!(decide(&all(false), &[]), (vec!["rootfs"], vec!["kernel"]));
        // The modules' entry is refused: the same.
        assert_eq!(
            decide(&all(true), &["modules"]),
            (vec!["rootfs", "modules"], vec!["kernel"])
        );
        // The modules are here already: the kernel is pulled.
        let rows = vec![row("kernel", false, true), row("modules", true, true)];
        assert_eq!(decide(&rows, &[]), (vec!["kernel"], vec![]));
    }

    #[test]
    fn manifests_are_trusted_only_when_signed_by_a_trusted_key_for_their_key() {
        let a = SigningKey::from_bytes(&[1u8; 32]);
        let b = SigningKey::from_bytes(&[2u8; 32]);
        let layer = Descriptor {
            media_type: LAYER_TYPE.to_string(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 10,
        };
        let key = "k".repeat(64);
        let m = manifest(&a, "kernel", &key, &layer);
        let trusted = [a.verifying_key()];
        assert_eq!(check_manifest(&m, "kernel", &key, &trusted).unwrap(), layer);
        // Another key's signature.
        let e = check_manifest(&m, "kernel", &key, &[b.verifying_key()]).unwrap_err();
        assert!(
            e.contains("does not trust") && e.contains(&fingerprint(&a.verifying_key())),
            "{e}"
        );
        // Replayed under another stage key.
        let e = check_manifest(&m, "kernel", &"j".repeat(64), &trusted).unwrap_err();
        assert!(e.contains("expected"), "{e}");
        // The layer swapped after signing.
        let mut v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        v["layers"][0]["digest"] = format!("sha256:{}", "b".repeat(64)).into();
        let e =
            check_manifest(&serde_json::to_vec(&v).unwrap(), "kernel", &key, &trusted).unwrap_err();
        assert!(e.contains("changed after signing"), "{e}");
        // Unsigned.
        v["annotations"][ANN_SIGNATURE] = "".into();
        let e =
            check_manifest(&serde_json::to_vec(&v).unwrap(), "kernel", &key, &trusted).unwrap_err();
        assert!(e.contains("not signed"), "{e}");
    }
}
