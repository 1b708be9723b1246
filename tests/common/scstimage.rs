//! The real SCST image's scratch project, shared by `tests/scst_real.rs` and
//! `tests/conformance.rs`: the upstream archive's lookup, its import into the
//! builder's cache, a temporary copy of the project with the flagship recipe pinned to
//! the archive's tree and a test scst.conf, at the address QEMU's port forward reaches.
//!
//! The archives (`scst-3.10.tar.gz`, the trunk one) are test inputs in
//! `../shared/upstream/` beside the project or in `SANFORGE_UPSTREAM=DIR`, never copied
//! into the repository. `build.rs` looks for them when the tests are compiled (cfgs
//! `sanforge_scst_3_10`, `sanforge_scst_trunk`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// SCST release 3.10, the tree `recipes/scst-fc-node.toml` pins.
pub const RELEASE: &str = "scst-3.10.tar.gz";
/// SCST trunk of 2026-08-21.
pub const TRUNK: &str = "scst-aa5cc2dd70f9c2d0dfd30d2d8821986023c34aba.tar.gz";
/// The flagship recipe and its node config, relative to the project.
pub const RECIPE: &str = "recipes/scst-fc-node.toml";
const NODE: &str = "recipes/nodes/scst-fc-node.toml";
const SCST_CONF: &str = "recipes/nodes/scst-fc-node.scst.conf";
/// The guest address QEMU's user network forwards the iSCSI port to.
const GUEST_ADDRESS: &str = "192.0.2.15/24";

/// The archive `file` from `SANFORGE_UPSTREAM` or `../shared/upstream`; fails naming
/// it when it is gone (it was there when the tests were compiled).
pub fn archive(file: &str) -> PathBuf {
    let dir = match std::env::var_os("SANFORGE_UPSTREAM").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream"),
    };
    let p = dir.join(file);
    assert!(
        p.is_file(),
        "{} is missing: it was there when the tests were compiled (build.rs); put it back, or `touch build.rs` to have this test reported as ignored",
        p.display()
    );
    p
}

/// `sanforge` in the project `root`, with this build's init and plain progress.
pub fn sanforge(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(root)
        .env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"))
        .env("SANFORGE_PROGRESS", "plain");
    c
}

/// `sanforge fetch --import ARCHIVE` into the builder's cache (from the project
/// `root`); returns the tree hash it prints.
pub fn import(root: &Path, archive: &Path) -> String {
    let o = sanforge(root)
        .args(["fetch", "--import"])
        .arg(archive)
        .output()
        .unwrap();
    assert!(o.status.success(), "import: {}", super::vm::show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .find_map(|l| {
            l.split_whitespace()
                .next()
                .filter(|w| w.starts_with("tree-v1:"))
        })
        .unwrap_or_else(|| panic!("no tree hash in: {out}"))
        .to_string()
}

/// The recipe's `[scst] source` line.
pub fn source_line(recipe: &str) -> &str {
    recipe
        .lines()
        .find(|l| l.starts_with("source = { url = [\"https://github.com/SCST-project"))
        .expect("the flagship recipe's [scst] source line")
}

/// The flagship recipe's text pinned to the SCST tree `tree` in build mode `mode`
/// (`release`, `perf`, `debug`).
pub fn pinned(recipe: &str, tree: &str, mode: &str) -> String {
    let old = source_line(recipe).to_string();
    let start = old
        .find("tree = \"")
        .expect("a tree = \"…\" in the source line");
    let new = format!("{}tree = \"{tree}\" }}", &old[..start]);
    recipe.replace(&old, &new).replace(
        "build-mode = \"release\"",
        &format!("build-mode = \"{mode}\""),
    )
}

/// A temporary copy of the project's recipes, overlays and kernel configs whose
/// flagship node serves `scst_conf` at the address QEMU's port forward reaches;
/// `edit` changes the flagship recipe's text.
pub fn project(scst_conf: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for d in ["recipes", "overlays", "kernel-configs"] {
        let st = Command::new("cp")
            .arg("-r")
            .arg(repo.join(d))
            .arg(root.join(d))
            .status()
            .unwrap();
        assert!(st.success(), "cp -r {d} {}", root.display());
    }
    let r = root.join(RECIPE);
    let text = std::fs::read_to_string(&r).unwrap();
    std::fs::write(&r, edit(&text)).unwrap();
    std::fs::write(root.join(SCST_CONF), scst_conf).unwrap();
    let node = root.join(NODE);
    let t = std::fs::read_to_string(&node).unwrap();
    let t: Vec<String> = t
        .lines()
        .map(|l| {
            if l.starts_with("addresses = ") {
                format!("addresses = [\"{GUEST_ADDRESS}\"]")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&node, t.join("\n") + "\n").unwrap();
    tmp
}

/// Which SCST tree to build: the committed recipe's (3.10, build mode `release`) or
/// the trunk archive's (build mode `perf`, as TrueNAS ships it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    Release,
    TrunkPerf,
}

impl Tree {
    pub fn label(self) -> &'static str {
        match self {
            Tree::Release => "3.10 release",
            Tree::TrunkPerf => "trunk perf",
        }
    }

    pub fn mode(self) -> &'static str {
        match self {
            Tree::Release => "release",
            Tree::TrunkPerf => "perf",
        }
    }
}

/// Imports `tree`'s archive and makes a [`project`] serving `scst_conf` whose recipe
/// pins it; returns the project and the tree hash. For [`Tree::Release`] the committed
/// recipe must already pin the archive's tree (asserted).
pub fn project_for(tree: Tree, scst_conf: &str) -> (tempfile::TempDir, String) {
    match tree {
        Tree::Release => {
            let tmp = project(scst_conf, |t| t.to_string());
            let hash = import(tmp.path(), &archive(RELEASE));
            let recipe = std::fs::read_to_string(tmp.path().join(RECIPE)).unwrap();
            assert!(
                source_line(&recipe).contains(&format!("tree = \"{hash}\"")),
                "{RECIPE} does not pin {hash} ({})",
                archive(RELEASE).display()
            );
            (tmp, hash)
        }
        Tree::TrunkPerf => {
            // The tree hash is learnt from the import (a different project each time,
            // the same cache).
            let scratch = tempfile::tempdir().unwrap();
            let hash = import(scratch.path(), &archive(TRUNK));
            let tmp = project(scst_conf, |t| pinned(t, &hash, tree.mode()));
            (tmp, hash)
        }
    }
}
