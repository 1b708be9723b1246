//! What each verb does beyond running stages: boot in QEMU, the kernel matrix,
//! `build --verify`, the host-tool doctor, the lock file, the PXE/HTTP server, a node's
//! status and updates over SSH.

pub mod cluster;
pub mod doctor;
pub mod lock;
pub mod matrix;
pub mod node;
pub mod push;
pub mod run;
pub mod serve;
pub mod status;
pub mod verify;
