//! Walking the stage list: `plan` (every stage, its key, whether it will run and why;
//! offline) and `build` (run each stage whose result is not there yet, in order). Both
//! read the same list, so they cannot disagree.
//!
//! A build assembles its outputs and logs in `out/NAME.partial/` and swaps it into
//! `out/NAME/` at the end: readers see the old or the new outputs, never a mix, and an
//! interrupted build leaves nothing half-written that a later build would trust.
//! Only sanforge's own directories are ever replaced: an output directory must be
//! absent, empty or hold the manifest of an earlier build, and the `.partial` and
//! `.old` siblings must be ones a build left ([`check_replaceable`]).

use super::ctx::Ctx;
use super::stage::Stage;
use crate::util::cmd::Log;
use crate::util::fs as ufs;
use crate::util::progress;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One row of `sanforge plan`.
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    pub stage: String,
    pub key: String,
    pub cached: bool,
    pub reason: String,
}

/// Every applicable stage, its key, and whether it will run. Works offline.
pub fn plan<B>(ctx: &Ctx, stages: &[&dyn Stage<B>]) -> Vec<PlanEntry> {
    let mut entries: Vec<PlanEntry> = Vec::new();
    for s in stages.iter().filter(|s| s.applies(ctx)) {
        let key = ctx.keys.get(s.name()).to_string();
        let cached = s.cached(ctx, &key);
        let reason = match (&ctx.remote, cached) {
            (_, true) => s.cached_reason(ctx),
            // `plan` is offline: it cannot know what the registry holds.
            (Some(r), false) if s.shared().is_some() => format!(
                "{}; pulled instead if {} has a trusted entry",
                s.reason(ctx, &entries),
                r.url
            ),
            (_, false) => s.reason(ctx, &entries),
        };
        entries.push(PlanEntry {
            stage: s.name().to_string(),
            key,
            cached,
            reason,
        });
    }
    entries
}

/// What `build` did, for the caller to print.
pub struct BuildReport<B> {
    pub out: PathBuf,
    pub ran: Vec<String>,
    pub skipped: Vec<String>,
    /// The stages taken from the remote cache ([`super::remote`]).
    pub pulled: Vec<String>,
    /// The typed outputs of every stage that ran or was taken from the cache.
    pub built: B,
}

/// Builds the image: runs each stage of `stages` whose result is not there yet.
pub fn build<B: Default>(ctx: &Ctx, stages: &[&dyn Stage<B>]) -> Result<BuildReport<B>> {
    // Modes of files the stages create (modules_install, dpkg-deb, …) end up in the
    // image: they must not depend on the caller's umask (`build --verify` checks this).
    crate::sys::set_umask(0o022);
    let applicable: Vec<&&dyn Stage<B>> = stages.iter().filter(|s| s.applies(ctx)).collect();
    // When the last stage's result (the output directory) is there, nothing runs
    // (a remote cache still gets the entries it lacks).
    if let Some(last) = applicable.last() {
        if last.cached(ctx, ctx.keys.get(last.name())) {
            super::remote::sync(ctx, &applicable, false);
            progress::step(&format!(
                "{} is up to date ({} key {})",
                ctx.out.display(),
                last.name(),
                short(ctx.keys.get(last.name()))
            ));
            return Ok(BuildReport {
                out: ctx.out.clone(),
                ran: Vec::new(),
                skipped: applicable
                    .iter()
                    .map(|s| s.name().to_string())
                    .filter(|n| n != "fetch")
                    .collect(),
                pulled: Vec::new(),
                built: B::default(),
            });
        }
    }
    // Entries missing here are pulled before `fetch` decides what to download.
    super::remote::sync(ctx, &applicable, true);
    let mut runner = Runner::start(&ctx.out)?;
    let mut built = B::default();
    for s in applicable {
        s.execute(ctx, &mut built, &mut runner)?;
    }
    runner.finish(built)
}

/// Runs stages for [`build`]: the staging directory, the logs, what ran and what was
/// taken from the cache.
pub struct Runner {
    out: PathBuf,
    staging: PathBuf,
    logs: PathBuf,
    ran: Vec<String>,
    skipped: Vec<String>,
    pulled: Vec<String>,
}

impl Runner {
    fn start(out: &Path) -> Result<Runner> {
        let staging = staging_dir(out);
        check_replaceable(out, Sibling::Out)?;
        check_replaceable(&staging, Sibling::Staging)?;
        check_replaceable(&old_dir(out), Sibling::Old)?;
        ufs::remove_dir_all(&staging)?;
        let logs = staging.join("logs");
        ufs::create_dir_all(&logs)?;
        ufs::write(
            &staging.join(STAGING_MARKER),
            "sanforge build in progress\n",
        )?;
        Ok(Runner {
            out: out.to_path_buf(),
            staging,
            logs,
            ran: Vec::new(),
            skipped: Vec::new(),
            pulled: Vec::new(),
        })
    }

    /// Where the outputs are assembled before they are swapped into place.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// A stage whose result is a cache entry: the entry under `key` if it is complete,
    /// else `f` fills a fresh entry (in a temporary directory renamed into place, or
    /// `in_place` for trees that must not move once built, like the kernel's, which
    /// out-of-tree modules build against). Returns the entry's directory.
    pub fn cached_entry(
        &mut self,
        ctx: &Ctx,
        stage: &str,
        key: &str,
        in_place: bool,
        f: impl FnOnce(&Path, &Log) -> Result<()>,
    ) -> Result<PathBuf> {
        if let Some(dir) = ctx.cache.stage_done(stage, key) {
            match &ctx.remote {
                Some(r) if r.pulled().iter().any(|s| s == stage) => {
                    progress::step(&format!("{stage}: pulled from {} ({})", r.url, short(key)));
                    self.pulled.push(stage.to_string());
                }
                _ => {
                    progress::step(&format!("{stage}: cached ({})", short(key)));
                    self.skipped.push(stage.to_string());
                }
            }
            return Ok(dir);
        }
        let (log_path, log) = self.open_log(stage)?;
        progress::step(&format!(
            "{stage}: building ({}); log: {}",
            short(key),
            log_path.display()
        ));
        let started = std::time::Instant::now();
        let build = |dir: &Path| f(dir, &log);
        let result = if in_place {
            ctx.cache.build_stage_in_place(stage, key, build)
        } else {
            ctx.cache.build_stage(stage, key, build)
        };
        let dir = result.with_context(|| StageFailed {
            stage: stage.to_string(),
            log: log_path.clone(),
        })?;
        progress::step(&format!(
            "{stage}: done in {:.1}s",
            started.elapsed().as_secs_f64()
        ));
        self.ran.push(stage.to_string());
        if let Some(r) = &ctx.remote {
            r.after_build(&ctx.cache, stage, key, &dir);
        }
        Ok(dir)
    }

    /// A stage that leaves no cache entry (fetch, outputs): `f` runs with the stage's
    /// log (and its path) and says whether it did anything (`false`: reported as
    /// cached). An error is the stage's unless `f` named another one ([`StageFailed`]).
    pub fn step(&mut self, stage: &str, f: impl FnOnce(&Log, &Path) -> Result<bool>) -> Result<()> {
        let (log_path, log) = self.open_log(stage)?;
        let did = match f(&log, &log_path) {
            Ok(d) => d,
            Err(e) if e.downcast_ref::<StageFailed>().is_some() => return Err(e),
            Err(e) => {
                return Err(e.context(StageFailed {
                    stage: stage.to_string(),
                    log: log_path,
                }))
            }
        };
        if did {
            self.ran.push(stage.to_string());
        } else {
            self.skipped.push(stage.to_string());
        }
        Ok(())
    }

    fn open_log(&self, stage: &str) -> Result<(PathBuf, Log)> {
        let path = self.logs.join(format!("{stage}.log"));
        let log = Log::open(&path)?;
        Ok((path, log))
    }

    fn finish<B>(self, built: B) -> Result<BuildReport<B>> {
        ufs::remove_file(&self.staging.join(STAGING_MARKER))?;
        swap_into_place(&self.staging, &self.out)?;
        Ok(BuildReport {
            out: self.out,
            ran: self.ran,
            // `fetch` with nothing to fetch is not a stage anybody waits for.
            skipped: self.skipped.into_iter().filter(|s| s != "fetch").collect(),
            pulled: self.pulled,
            built,
        })
    }
}

/// The context of a stage's error: which stage failed and where its log is (callers
/// such as `sanforge matrix` find it in the error chain).
#[derive(Debug, Clone)]
pub struct StageFailed {
    pub stage: String,
    pub log: PathBuf,
}

impl std::fmt::Display for StageFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stage {} failed (log: {})",
            self.stage,
            self.log.display()
        )
    }
}

/// The first 12 hex digits of a key, for humans.
pub fn short(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
}

/// `out/NAME` → `out/NAME.partial`: where a build assembles its outputs and logs.
pub fn staging_dir(out: &Path) -> PathBuf {
    sibling(out, ".partial")
}

/// `out/NAME` → `out/NAME.old`: where the previous outputs wait during the swap.
fn old_dir(out: &Path) -> PathBuf {
    sibling(out, ".old")
}

fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    ufs::parent_dir(out).join(name)
}

/// The file that marks a staging directory as a build's (removed before the swap).
pub const STAGING_MARKER: &str = ".sanforge-partial";

/// Which directory of a build [`check_replaceable`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sibling {
    /// The output directory (`--out`).
    Out,
    /// `OUT.partial`, left by an interrupted build.
    Staging,
    /// `OUT.old`, left by a build interrupted during the swap.
    Old,
}

/// File names a build writes into an output directory (and its staging directory).
const OUTPUT_NAMES: &[&str] = &[
    "logs",
    crate::contract::VMLINUZ,
    crate::contract::INITRAMFS,
    crate::contract::BOOT_IPXE,
    crate::contract::MANIFEST,
    crate::contract::SBOM,
    crate::contract::DISK_IMG,
    crate::contract::ROOT_SQUASHFS,
    crate::contract::ROOT_VERITY,
    crate::contract::INIT_CPIO,
    crate::contract::signature::SUMS_FILE,
    crate::contract::signature::SIG_FILE,
    STAGING_MARKER,
];

/// True when `dir` holds `manifest.json` written by a sanforge build.
pub fn is_sanforge_output(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(crate::contract::MANIFEST))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|m| m["sanforge"]["version"].is_string())
}

/// Refuses to let a build replace `dir` unless it is sanforge's: absent, an empty
/// directory, or the outputs of an earlier build (its manifest); for the `.partial`
/// and `.old` siblings also a directory with the staging marker or only the files a
/// build writes. Anything else (a home directory given as `--out`, a directory that
/// happens to be called `NAME.partial`) is left alone and named in the error.
pub fn check_replaceable(dir: &Path, which: Sibling) -> Result<()> {
    if which == Sibling::Out && dir.file_name().is_none_or(|n| n == "..") {
        anyhow::bail!(
            "output directory {}: expected a path that ends in a directory name",
            dir.display()
        );
    }
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", dir.display())),
    };
    let what = match which {
        Sibling::Out => "the output directory",
        Sibling::Staging => "the staging directory of this output",
        Sibling::Old => "the previous-output directory of this output",
    };
    if !meta.is_dir() {
        anyhow::bail!(
            "{} ({what}) exists and is not a directory: refusing to replace it; choose another --out or move it away",
            dir.display()
        );
    }
    let entries: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    if entries.is_empty() || is_sanforge_output(dir) {
        return Ok(());
    }
    if which != Sibling::Out
        && (entries.iter().any(|e| e == STAGING_MARKER)
            || entries.iter().all(|e| OUTPUT_NAMES.contains(&e.as_str())))
    {
        return Ok(());
    }
    let mut shown: Vec<&str> = entries.iter().map(String::as_str).collect();
    shown.sort_unstable();
    let more = if shown.len() > 5 {
        format!(", … ({} entries)", shown.len())
    } else {
        String::new()
    };
    shown.truncate(5);
    anyhow::bail!(
        "{} ({what}) exists and is not a sanforge output (no manifest.json from a previous build; it holds {}{more}): refusing to replace its contents; choose another --out, or remove it yourself",
        dir.display(),
        shown.join(", ")
    )
}

/// Replaces `out` by `staging` so that readers see the old or the new outputs, never
/// a mix: old → `.old`, staging → out, remove `.old`.
fn swap_into_place(staging: &Path, out: &Path) -> Result<()> {
    let old = old_dir(out);
    ufs::remove_dir_all(&old)?;
    if out.exists() {
        ufs::rename(out, &old)?;
    }
    ufs::rename(staging, out)?;
    ufs::remove_dir_all(&old)?;
    Ok(())
}
