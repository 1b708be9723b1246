//! The fetch stage: every input that a stage which will run reads from the cache is
//! there and verified before anything is built (downloads, apt, imported files). Its
//! key is the hash of every input's sha256; it leaves no cache entry of its own (the
//! blobs are the cache), and is "cached" when nothing is missing.
//!
//! Reads the build inputs ([`Ctx::inputs`]); the fetching itself is
//! [`crate::engine::fetch`]. Sources pinned by tree are missing until the tree store
//! has them; an SCST tree that cannot be one is refused here, before the kernel.

use crate::config::recipe::Source;
use crate::engine::fetch;
use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage, StageFailed};
use crate::util::cmd::Log;
use crate::util::hash::KeyBuilder;
use anyhow::{Context, Result};

/// The fetch stage.
pub struct Fetch;

impl Fetch {
    /// Inputs that stages which will run need and that are not in the cache yet
    /// (local `path` sources are read where they are), each with the first stage
    /// that needs it.
    fn missing_for(ctx: &Ctx) -> Vec<(String, &'static str)> {
        let mut needed: Vec<(String, &'static str)> = Vec::new();
        for s in super::STAGES.iter().filter(|s| s.applies(ctx)) {
            if s.name() == NAME || s.cached(ctx, ctx.keys.get(s.name())) {
                continue;
            }
            for i in s.inputs(ctx) {
                if !needed.iter().any(|(n, _)| *n == i) {
                    needed.push((i, s.name()));
                }
            }
        }
        needed.retain(|(n, _)| {
            ctx.input(n).is_some_and(|i| match &i.tree {
                // Pinned by content (a URL or a path): missing until it is in the store.
                Some(t) => !crate::engine::tree::has(&ctx.cache, t),
                None => i.kind != "path" && !ctx.cache.blob_path(&i.sha256).is_file(),
            })
        });
        needed
    }

    fn missing(ctx: &Ctx) -> Vec<String> {
        Self::missing_for(ctx).into_iter().map(|(n, _)| n).collect()
    }
}

const NAME: &str = "fetch";

impl Stage<super::Built> for Fetch {
    fn name(&self) -> &'static str {
        NAME
    }

    fn key(&self, ctx: &Ctx, _keys: &Keys) -> Result<String> {
        let mut kb = KeyBuilder::new("fetch");
        for i in &ctx.inputs {
            kb.add_str("input", i.pin());
        }
        Ok(kb.finish())
    }

    fn cached(&self, ctx: &Ctx, _key: &str) -> bool {
        Self::missing(ctx).is_empty()
    }

    fn cached_reason(&self, _ctx: &Ctx) -> String {
        "every needed input is in the cache".to_string()
    }

    fn reason(&self, ctx: &Ctx, _earlier: &[PlanEntry]) -> String {
        format!("not in the cache: {}", Self::missing(ctx).join(", "))
    }

    fn execute(&self, ctx: &Ctx, _built: &mut super::Built, runner: &mut Runner) -> Result<()> {
        let missing = Self::missing_for(ctx);
        runner.step(NAME, |log, log_path| {
            for (name, stage) in &missing {
                crate::util::progress::step(&format!("fetch: {name}"));
                // The stage that cannot run without it is the one that failed.
                fetch_input(ctx, name, log)
                    .with_context(|| describe(name))
                    .with_context(|| StageFailed {
                        stage: stage.to_string(),
                        log: log_path.to_path_buf(),
                    })?;
            }
            // A source tree that cannot be SCST is found now, not after the kernel.
            if super::STAGES.iter().any(|s| {
                s.name() == "modules" && s.applies(ctx) && !s.cached(ctx, ctx.keys.get("modules"))
            }) {
                crate::stages::modules::check_source_tree(ctx).with_context(|| StageFailed {
                    stage: "modules".to_string(),
                    log: log_path.to_path_buf(),
                })?;
            }
            Ok(!missing.is_empty())
        })
    }
}

/// What input `name` is, for an error message: `firmware ql2500_fw.bin`,
/// `package corosync`, `the kernel source`, `source scst`.
fn describe(name: &str) -> String {
    if let Some(f) = name.strip_prefix("firmware:") {
        format!("firmware {f}")
    } else if let Some(p) = name.strip_prefix("package:") {
        format!("package {p}")
    } else if name == "kernel" {
        "the kernel source".to_string()
    } else {
        format!("source {name}")
    }
}

/// Brings input `name` of this build into the cache (verified).
pub fn fetch_input(ctx: &Ctx, name: &str, log: &Log) -> Result<()> {
    let input = ctx
        .input(name)
        .with_context(|| format!("internal error: no input named `{name}`"))?;
    if let Some(package) = name.strip_prefix("package:") {
        let p = ctx
            .lock
            .as_ref()
            .and_then(|l| l.package(package))
            .filter(|p| p.sha256 == input.sha256)
            .with_context(|| format!("internal error: package {package} is not pinned"))?;
        fetch::fetch_package(&ctx.cache, p)?;
        return Ok(());
    }
    let (lock_name, source): (&str, &Source) = if name == "kernel" {
        (&ctx.recipe.kernel().lock_name, &ctx.recipe.kernel().source)
    } else {
        let s = ctx
            .recipe
            .sources
            .get(name)
            .with_context(|| format!("internal error: no source named `{name}`"))?;
        (name, s)
    };
    fetch::fetch_source(&ctx.cache, lock_name, source, ctx.lock.as_ref(), log)?;
    Ok(())
}
