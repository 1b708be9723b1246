//! Image assembly: the deterministic cpio writer for the initramfs and the ELF
//! dependency closure used to prune the Debian userland.

pub mod cpio;
pub mod elf;
pub mod sbom;
pub mod sign;
