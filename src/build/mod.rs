//! The build pipeline: stages in order, each keyed by the hash of what it reads.

pub mod doctor;
pub mod kconfig;
