//! SCSI target models: LIO configfs plans and SCST scst.conf.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
pub mod alua;
pub mod lio;
pub mod scst;
