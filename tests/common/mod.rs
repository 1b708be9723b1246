//! Helpers shared by integration tests (each test binary uses a subset).
#![allow(dead_code)]

pub mod aptrepo;
pub mod httpd;
pub mod initroot;
pub mod iscsi;
pub mod project;
pub mod vm;
