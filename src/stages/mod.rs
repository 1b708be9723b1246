//! The stages of a build, one file each, named after the stage. What a stage reads
//! makes its key (see [`crate::engine`]); what it writes is its cache entry.

pub mod fetch;
pub mod firmware;
pub mod kernel;
pub mod modules;
pub mod outputs;
pub mod rootfs;
pub mod userland;
