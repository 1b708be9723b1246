//! The stage engine, shared by every stage and every verb that builds: the build
//! context ([`ctx`]), what a stage is ([`stage`]), the walk over the ordered stage
//! list for `plan` and `build` ([`runner`]), the content-addressed cache ([`cache`]),
//! the fetcher that fills it ([`fetch`]), the remote stage cache shared through an OCI
//! registry ([`remote`]), the store of source trees pinned by
//! content ([`tree`]) and the lock file ([`lock`]). The stages
//! themselves and their one list are [`crate::stages`].

pub mod apt;
pub mod cache;
pub mod ctx;
pub mod fetch;
pub mod lock;
pub mod remote;
pub mod runner;
pub mod stage;
pub mod tree;

pub use ctx::{BuildOptions, Ctx, Input};
pub use runner::{short, BuildReport, PlanEntry, StageFailed};
pub use stage::{Keys, Stage};
