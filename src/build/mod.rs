//! The build pipeline: stages in order, each keyed by the hash of what it reads.

pub mod cache;
pub mod doctor;
pub mod fetch;
pub mod lock;
