//! Tells the tests whether the SCST source archives they build against are there.
//!
//! `tests/scst_real.rs` builds real SCST images from archives that are test inputs,
//! never part of the repository: `../shared/upstream/` beside the project (in every
//! developer's checkout and in CI), or `SANFORGE_UPSTREAM=DIR`. Each archive found
//! sets a cfg that un-ignores its test, so a plain `cargo test` runs the real SCST
//! tests where the archives exist and reports them as ignored, with the reason,
//! where they do not (a test cannot mark itself ignored at run time).

use std::path::PathBuf;

/// (cfg, archive file name) for each real SCST test input.
const ARCHIVES: &[(&str, &str)] = &[
    ("sanforge_scst_3_10", "scst-3.10.tar.gz"),
    (
        "sanforge_scst_trunk",
        "scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz",
    ),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=SANFORGE_UPSTREAM");
    for (cfg, _) in ARCHIVES {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    let dir = match std::env::var_os("SANFORGE_UPSTREAM").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => {
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
            PathBuf::from(manifest).join("../shared/upstream")
        }
    };
    // Watch the smallest existing directory that would hold the archives (a missing
    // path would rerun this script, and rebuild the crate, on every build).
    let parent = dir.parent().map(PathBuf::from).unwrap_or_default();
    if let Some(w) = [dir.clone(), parent].iter().find(|d| d.is_dir()) {
        println!("cargo::rerun-if-changed={}", w.display());
    }
    for (cfg, file) in ARCHIVES {
        if dir.join(file).is_file() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
