//! The stages of a build, one file each, named after the stage, and their one ordered
//! list, [`STAGES`]. `sanforge plan`, `sanforge build`, `sanforge matrix` and `build
//! --verify` all walk this list (through [`crate::engine::runner`]):
//!
//! ```text
//! fetch ─► kernel ─► modules ─► userland ─► rootfs ─► outputs
//! ```
//!
//! What a stage reads makes its key; what it writes is its cache entry, handed to the
//! later stages as a typed output in [`Built`] (`KernelOut`, `ModulesOut`, …).
//! Helpers a stage uses but that are not stages: [`firmware`] (the firmware closure of
//! the modules) and the fetcher ([`crate::engine::fetch`]).

pub mod fetch;
pub mod firmware;
pub mod kernel;
pub mod kernel_seed;
pub mod modules;
pub mod outputs;
pub mod rootfs;
pub mod userland;

use crate::config::recipe::Recipe;
use crate::engine::{self, BuildOptions, BuildReport, Ctx, PlanEntry, Stage};
use anyhow::{Context, Result};

pub use kernel::KernelOut;
pub use modules::ModulesOut;
pub use rootfs::RootfsOut;
pub use userland::UserlandOut;

/// Every stage, in the order a build runs them.
pub const STAGES: &[&dyn Stage<Built>] = &[
    &fetch::Fetch,
    &kernel::Kernel,
    &modules::Modules,
    &userland::Userland,
    &rootfs::Rootfs,
    &outputs::Outputs,
];

/// The typed outputs of the stages that ran or came from the cache, filled in list
/// order: a stage reads here what the stages before it produced.
#[derive(Debug, Default)]
pub struct Built {
    pub kernel: Option<KernelOut>,
    pub modules: Option<ModulesOut>,
    pub userland: Option<UserlandOut>,
    pub rootfs: Option<RootfsOut>,
}

impl Built {
    pub fn kernel(&self) -> Result<&KernelOut> {
        self.kernel
            .as_ref()
            .context("internal error: the kernel stage has not run")
    }

    pub fn userland(&self) -> Result<&UserlandOut> {
        self.userland
            .as_ref()
            .context("internal error: the userland stage has not run")
    }

    pub fn rootfs(&self) -> Result<&RootfsOut> {
        self.rootfs
            .as_ref()
            .context("internal error: the rootfs stage has not run")
    }
}

/// The build context of `recipe` with every stage's key.
pub fn context(recipe: Recipe, opts: &BuildOptions) -> Result<Ctx> {
    Ctx::new(recipe, opts, STAGES)
}

/// `sanforge plan`: every stage of this build, its key, whether it will run and why.
pub fn plan(ctx: &Ctx) -> Vec<PlanEntry> {
    engine::runner::plan(ctx, STAGES)
}

/// `sanforge build`: runs every stage whose result is not there yet.
pub fn build(ctx: &Ctx) -> Result<BuildReport<Built>> {
    engine::runner::build(ctx, STAGES)
}

/// The names of the stages this build has, in order (for reports).
pub fn names(ctx: &Ctx) -> Vec<&'static str> {
    STAGES
        .iter()
        .filter(|s| s.applies(ctx) && s.name() != "fetch")
        .map(|s| s.name())
        .collect()
}
