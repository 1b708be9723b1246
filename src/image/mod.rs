//! Image assembly: the deterministic cpio writer for the initramfs, the ELF
//! dependency closure used to prune the Debian userland, the GPT disk image, the
//! squashfs root and its dm-verity tree, signatures and the SBOM.

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

pub mod cpio;
pub mod disk;
pub mod elf;
pub mod module_key;
pub mod sbom;
pub mod sign;
pub mod squashfs;
