//! sanforge: one recipe in, one bootable storage-node image out.
//!
//! The architecture in a page:
//!
//! ```text
//! recipes/NAME.toml ─► plan ─► fetch ─► kernel ─► userland ─► rootfs ─► outputs
//!  (+ NAME.lock)              sources/   unpack     Debian      overlays   vmlinuz
//!                             <sha256>   patches    packages    templates  initramfs.cpio.zst
//!                             verified   kconfig    ELF closure init, node boot.ipxe
//!                                        bzImage                modules    manifest.json, SHA256SUMS
//! ```
//!
//! * [`config`] — the recipe, its lock and the node config (shared with the init).
//! * [`build`] — the stages, each a function over a build context keyed by the hash
//!   of everything it reads; an unchanged key skips the stage ([`build::cache`]).
//! * [`image`] — the deterministic cpio writer, ELF closure, manifest.
//! * [`scsi`] — target models: LIO configfs plan, SCST scst.conf.
//! * [`init`] — sanforge-init (PID 1): boot steps, supervisor, shutdown; every path
//!   through a `SysRoot`, every syscall through [`sys::Sys`].
//! * [`sys`] — the only module with `unsafe`: raw syscalls behind a trait with a
//!   recording fake.
//! * [`util`] — the one command runner, path-naming fs helpers, hashing, progress.

pub mod agent;
pub mod cli;
pub mod commands;
pub mod config;
pub mod contract;
pub mod engine;
pub mod ha;
pub mod image;
pub mod init;
pub mod kconfig;
pub mod scsi;
pub mod stages;
pub mod sys;
pub mod util;
