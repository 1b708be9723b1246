//! The stage engine: the build context, the ordered stage list, keys, the cache and
//! the runner that `plan`, `build`, `matrix` and `build --verify` all share.
//!
//! ```text
//! fetch ─► kernel ─► modules ─► userland ─► rootfs ─► outputs
//! ```

pub mod cache;
pub mod pipeline;

pub use pipeline::{build, plan, BuildOptions, Ctx, PlanEntry};
