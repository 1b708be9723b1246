//! Kernel config assembly and verification.
//!
//! A kernel config is built as base (`make tinyconfig`, run elsewhere) + ordered
//! fragment files + the options the recipe asserts, then `make olddefconfig`. Kconfig
//! silently drops or changes any requested option whose dependencies are not met, so
//! this module checks the final `.config` against every request and, when the kernel
//! source tree is at hand, explains each failure from the `Kconfig*` files: which
//! `depends on` (including enclosing `if`, `menu` and the `if` around the `source` line
//! that pulls a file in) is unmet, whether something `select`s the option, whether it
//! has no prompt, or whether the option does not exist in this kernel at all.
//!
//! Reads: fragment files, the base and final `.config` texts, and (optionally) every
//! file named `Kconfig*` under the kernel source root. It never spawns a program.
//!
//! The parts, in the order a build uses them:
//!
//! * `fragment` — requests from fragments and the recipe, each with its origin;
//! * `dotconfig` — the `.config` line format, the merge before `olddefconfig`;
//! * `verify` — the final `.config` against the requests, one problem per line;
//! * `index` — the kernel tree's `Kconfig*` entries, read once;
//! * `expr` — Kconfig expressions and their tristate evaluation;
//! * `explain` — why one option was dropped or changed.

mod dotconfig;
mod explain;
mod expr;
mod fragment;
mod index;
mod verify;

pub use dotconfig::{merge, parse_config};
pub use fragment::{
    parse_fragment, parse_fragment_text, requests_from_forbid, requests_from_recipe, Request,
};
pub use index::KconfigIndex;
pub use verify::{verify, verify_with_index, VerifyError};
