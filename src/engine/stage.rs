//! What a stage is, for the engine: a name, the inputs it reads from the cache, a key
//! (the hash of everything it reads), whether its result is already there, and how to
//! run it. The stages themselves and their one ordered list are [`crate::stages`];
//! `plan`, `build`, `matrix` and `build --verify` all walk that list through
//! [`super::runner`], so what `plan` says is what `build` does.
//!
//! `B` is the record of typed stage outputs a build fills in as it goes
//! ([`crate::stages::Built`]): a stage reads what the stages before it produced from
//! there, never from a path it guesses.

use super::ctx::Ctx;
use super::runner::Runner;
use anyhow::Result;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// One stage of the pipeline.
pub trait Stage<B>: Sync {
    /// Its name: the cache directory, the log file (`logs/NAME.log`), the row in `plan`.
    fn name(&self) -> &'static str;

    /// Whether this recipe has the stage at all (the SCST modules only with `[scst]`).
    fn applies(&self, _ctx: &Ctx) -> bool {
        true
    }

    /// The build inputs (names of [`Ctx::inputs`]) the stage reads from the cache: what
    /// `fetch` must provide before the stage runs.
    fn inputs(&self, _ctx: &Ctx) -> Vec<String> {
        Vec::new()
    }

    /// The hash of everything the stage reads; `keys` holds the keys of the stages
    /// before it in the list.
    fn key(&self, ctx: &Ctx, keys: &Keys) -> Result<String>;

    /// Whether the stage's result for `key` is already there (by default: a complete
    /// cache entry under its name and key).
    fn cached(&self, ctx: &Ctx, key: &str) -> bool {
        ctx.cache.stage_done(self.name(), key).is_some()
    }

    /// Why the stage will run when it is not cached. `earlier` holds the plan of the
    /// stages before it (to say "the kernel will be rebuilt" rather than a guess).
    fn reason(&self, ctx: &Ctx, earlier: &[super::runner::PlanEntry]) -> String;

    /// Why it will not run when it is cached.
    fn cached_reason(&self, _ctx: &Ctx) -> String {
        "cache entry present".to_string()
    }

    /// Whether the stage's cache entry is shared through a remote cache
    /// ([`super::remote`]), and which of its top-level parts stay on this machine
    /// (trees that record their absolute path). `None`: it has no entry to share.
    fn shared(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// The stages whose local-only parts ([`Stage::shared`]) this stage reads when it
    /// runs: a remote cache keeps those stages local when this one runs here.
    fn reads_local_parts_of(&self) -> &'static [&'static str] {
        &[]
    }

    /// Runs the stage, or takes its cached result, through `runner` (which logs, times
    /// and reports it), and records its typed output in `built`.
    fn execute(&self, ctx: &Ctx, built: &mut B, runner: &mut Runner) -> Result<()>;
}

/// The key of every stage of one build, in list order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys(Vec<(&'static str, String)>);

impl Keys {
    /// Computes every applicable stage's key in list order.
    pub fn compute<B>(ctx: &Ctx, stages: &[&dyn Stage<B>]) -> Result<Keys> {
        let mut keys = Keys::default();
        for s in stages.iter().filter(|s| s.applies(ctx)) {
            let k = s.key(ctx, &keys)?;
            keys.0.push((s.name(), k));
        }
        Ok(keys)
    }

    /// The key of stage `name` ("" when the recipe does not have that stage).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| k.as_str())
            .unwrap_or("")
    }

    /// (stage, key) in list order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(n, k)| (*n, k.as_str()))
    }
}

/// The stages whose results are cache entries or outputs, by name, as recorded in
/// `manifest.json` (`fetch` only makes sure inputs are present: it has no result of
/// its own to record).
impl Serialize for Keys {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let recorded: Vec<_> = self.0.iter().filter(|(n, _)| *n != "fetch").collect();
        let mut m = s.serialize_map(Some(recorded.len()))?;
        for (n, k) in recorded {
            m.serialize_entry(n, k)?;
        }
        m.end()
    }
}
