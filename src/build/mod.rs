//! The build pipeline: stages in order, each a plain function over a build context,
//! each keyed by the hash of everything it reads. An unchanged key skips the stage;
//! `sanforge plan` prints the same list with keys and whether each will run.
//!
//! ```text
//! fetch ─► kernel ─► userland ─► rootfs ─► outputs
//! ```

pub mod cache;
pub mod doctor;
pub mod fetch;
pub mod firmware;
pub mod kconfig;
pub mod kernel;
pub mod lock;
pub mod matrix;
pub mod outputs;
pub mod pipeline;
pub mod rootfs;
pub mod run;
pub mod scst;
pub mod userland;
pub mod verify;

pub use pipeline::{build, plan, BuildOptions, Ctx, PlanEntry};
