//! sanforge: one recipe in, one bootable storage-node image out. The builder
//! (`sanforge`) and PID 1 of the image (`sanforge-init`) share this crate; see
//! ARCHITECTURE.md for the data flow, the boot steps and the import rules.
//!
//! ```text
//! recipe ─► stages::context ─► plan / build: fetch ─► kernel ─► modules ─► userland ─► rootfs ─► outputs
//! ```
//!
//! * [`config`] — recipe, lock and node config: serde types validated once.
//! * [`stages`] — one file per stage and the one ordered list, [`stages::STAGES`].
//! * [`engine`] — the build context, the stage runner (`plan`, `build`), the cache,
//!   the fetcher and lock loading.
//! * [`commands`] — what each verb does beyond stages (QEMU runner, matrix, verify…).
//! * [`contract`] — every path, label, file name and format the builder writes and the
//!   init reads.
//! * [`image`] — cpio, disk image, squashfs, ELF closure, SBOM, signing.
//! * [`kconfig`] — kernel config fragments and their verification.
//! * [`scsi`] — target models: LIO configfs plan, SCST scst.conf.
//! * [`ha`] — the cluster model and its renderers; [`agent`] — the OCF agent.
//! * [`init`] — sanforge-init (PID 1): boot steps, supervisor, shutdown; every path
//!   through a `SysRoot`, every syscall through [`sys::Sys`].
//! * [`sys`] — the only module with `unsafe`: raw syscalls behind a trait with a
//!   recording fake.
//! * [`util`] — the one command runner, path-naming fs helpers, hashing, progress.

// What sanforge-init links (PID 1 and the OCF agent): no builder dependency.
pub mod agent;
pub mod config;
pub mod contract;
pub mod init;
pub mod scsi;
pub mod sys;
pub mod util;

// The builder only (feature `builder`, on by default; see Cargo.toml).
#[cfg(feature = "builder")]
pub mod cli;
#[cfg(feature = "builder")]
pub mod commands;
#[cfg(feature = "builder")]
pub mod engine;
#[cfg(feature = "builder")]
pub mod ha;
#[cfg(feature = "builder")]
pub mod image;
#[cfg(feature = "builder")]
pub mod kconfig;
#[cfg(feature = "builder")]
pub mod stages;
