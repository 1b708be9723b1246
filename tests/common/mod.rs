//! Helpers shared by integration tests (each test binary uses a subset).
#![allow(dead_code)]

pub mod aptrepo;
pub mod cluster;
pub mod cluster_vm;
pub mod conformance;
pub mod httpd;
pub mod initroot;
pub mod iscsi;
pub mod project;
pub mod qemu;
pub mod registry;
pub mod safety;
pub mod scsi_spc;
pub mod scst_lab;
pub mod scstimage;
pub mod server;
pub mod vm;

use std::io::Write;

/// Whether `SANFORGE_SKIP_E2E` is set, in which case the end-to-end test `test` returns
/// at once. libtest would still print `ok`, and it captures `eprintln!`, so the notice
/// is written to the process's stderr directly: a skipped test is never silent.
pub fn skip_e2e(test: &str) -> bool {
    if std::env::var_os("SANFORGE_SKIP_E2E").is_none() {
        return false;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: SANFORGE_SKIP_E2E is set (unset it to run this end-to-end test)"
    );
    true
}
