//! Image assembly: the deterministic cpio writer for the initramfs, the ELF
//! dependency closure used to prune the Debian userland, the PXE bundle server,
//! signatures and the SBOM.

pub mod cpio;
pub mod disk;
pub mod elf;
pub mod pxe;
pub mod sbom;
pub mod sign;
pub mod squashfs;
pub mod verity;
