//! Small shared helpers: the one command runner, file-system calls whose errors name
//! the path and the operation, hashing, and progress reporting (bars on a terminal,
//! one-line steps elsewhere).

pub mod cmd;
pub mod fs;
pub mod hash;
pub mod progress;
pub mod redact;
pub mod suggest;
pub mod tools;
