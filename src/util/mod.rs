//! Small shared helpers: the one command runner, file-system calls whose errors name
//! the path and the operation, path confinement (where a recipe's paths may lead),
//! hashing, and progress reporting (bars on a terminal, one-line steps elsewhere).

pub mod cmd;
pub mod fs;
pub mod hash;
pub mod paths;
pub mod progress;
pub mod tools;
