//! Small shared helpers: the one command runner, file-system calls whose errors name
//! the path and the operation, path confinement (where a recipe's paths may lead),
//! hashing, UTC dates, and progress reporting (bars on a terminal, one-line steps
//! elsewhere).

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

#[cfg(feature = "builder")]
pub mod cmd;
pub mod fs;
pub mod hash;
pub mod paths;
#[cfg(feature = "builder")]
pub mod progress;
pub mod redact;
pub mod suggest;
pub mod time;
#[cfg(feature = "builder")]
pub mod tools;
