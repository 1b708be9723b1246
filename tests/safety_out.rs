//! Issue #10, class 2: `--out` only ever replaces sanforge output. A build (and
//! `cluster render`) into an existing directory that is not an earlier output is
//! refused with the reason, and its contents stay; so do foreign `OUT.partial` and
//! `OUT.old` siblings. Absent or empty directories and earlier outputs are fine.

mod common;

use common::project::text;
use common::safety::World;
use std::path::Path;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn build_refuses_to_replace_a_directory_that_is_not_an_output() {
    let w = World::new();
    let victim = w.outside.join("victim-dir");
    let before = w.snapshot();
    let o = w
        .project
        .sanforge()
        .args(["build", "recipes/test.toml", "--out"])
        .arg(&victim)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        e.contains(&victim.display().to_string())
            && e.contains("is not a sanforge output")
            && e.contains("no manifest.json")
            && e.contains("keep, sub"),
        "{e}"
    );
    w.assert_unchanged(&before, "--out a foreign directory");

    // The project root itself, `..` and a regular file.
    for (out, want) in [
        (".", "is not a sanforge output"),
        ("..", "expected a path that ends in a directory name"),
        ("recipes/test.toml", "is not a directory"),
    ] {
        let before = w.snapshot();
        let o = w.project.run(&["build", "recipes/test.toml", "--out", out]);
        assert!(
            !o.status.success() && stderr(&o).contains(want),
            "{out}: {}",
            text(&o)
        );
        w.assert_unchanged(&before, &format!("--out {out}"));
    }
}

#[test]
fn build_refuses_foreign_partial_and_old_siblings() {
    for sibling in ["o.partial", "o.old"] {
        let w = World::new();
        std::fs::create_dir_all(w.outside.join(sibling)).unwrap();
        std::fs::write(w.outside.join(sibling).join("precious"), "keep me").unwrap();
        let before = w.snapshot();
        let o = w
            .project
            .sanforge()
            .args(["build", "recipes/test.toml", "--out"])
            .arg(w.outside.join("o"))
            .output()
            .unwrap();
        let e = stderr(&o);
        assert!(
            !o.status.success() && e.contains(sibling) && e.contains("precious"),
            "{sibling}: {}",
            text(&o)
        );
        w.assert_unchanged(&before, sibling);
    }
}

#[test]
fn sanforge_outputs_and_leftovers_are_replaced() {
    let w = World::new();
    let p = &w.project;
    // An empty directory is fine.
    std::fs::create_dir_all(p.root().join("out/empty")).unwrap();
    let o = p.run(&["build", "recipes/test.toml", "--out", "out/empty"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(p.root().join("out/empty/manifest.json").is_file());
    assert!(!p
        .root()
        .join("out/empty")
        .join(".sanforge-partial")
        .exists());
    // An earlier output is replaced (here: after the node config changed).
    let node = p.root().join("recipes/nodes/node.toml");
    let t = std::fs::read_to_string(&node).unwrap();
    std::fs::write(&node, t.replace("test-node", "other-node")).unwrap();
    // Leftovers of an interrupted build: a staging directory (marker) and an `.old`
    // holding an earlier output.
    std::fs::create_dir_all(p.root().join("out/empty.partial/logs")).unwrap();
    std::fs::write(p.root().join("out/empty.partial/.sanforge-partial"), "").unwrap();
    std::fs::write(p.root().join("out/empty.partial/whatever"), "").unwrap();
    copy_dir(&p.root().join("out/empty"), &p.root().join("out/empty.old"));
    let o = p.run(&["build", "recipes/test.toml", "--out", "out/empty"]);
    assert!(o.status.success(), "{}", text(&o));
    let m = std::fs::read_to_string(p.root().join("out/empty/manifest.json")).unwrap();
    assert!(m.contains("other-node"), "{m}");
    assert!(!p.root().join("out/empty.partial").exists());
    assert!(!p.root().join("out/empty.old").exists());
    // A partial directory of an older sanforge (no marker, only output names).
    std::fs::create_dir_all(p.root().join("out/empty.partial/logs")).unwrap();
    std::fs::write(p.root().join("out/empty.partial/vmlinuz"), "half").unwrap();
    std::fs::write(&node, t).unwrap();
    let o = p.run(&["build", "recipes/test.toml", "--out", "out/empty"]);
    assert!(o.status.success(), "{}", text(&o));
}

fn copy_dir(from: &Path, to: &Path) {
    assert!(std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success());
}

#[test]
fn check_replaceable_in_the_library() {
    use sanforge::engine::runner::{check_replaceable, Sibling};
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    assert!(check_replaceable(&d.join("absent"), Sibling::Out).is_ok());
    std::fs::create_dir(d.join("empty")).unwrap();
    assert!(check_replaceable(&d.join("empty"), Sibling::Out).is_ok());
    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::write(
        d.join("mine/manifest.json"),
        r#"{"sanforge":{"version":"0.1.0"}}"#,
    )
    .unwrap();
    assert!(check_replaceable(&d.join("mine"), Sibling::Out).is_ok());
    std::fs::create_dir(d.join("theirs")).unwrap();
    std::fs::write(d.join("theirs/manifest.json"), r#"{"name":"npm"}"#).unwrap();
    let e = check_replaceable(&d.join("theirs"), Sibling::Out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a sanforge output"), "{e}");
    // Output names alone are enough for a leftover sibling, never for --out.
    std::fs::create_dir(d.join("x.partial")).unwrap();
    std::fs::write(d.join("x.partial/vmlinuz"), "").unwrap();
    assert!(check_replaceable(&d.join("x.partial"), Sibling::Staging).is_ok());
    assert!(check_replaceable(&d.join("x.partial"), Sibling::Out).is_err());
}

fn cluster(w: &World) {
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster-lio.toml"),
        w.root().join("cluster.toml"),
    )
    .unwrap();
    let o = w.project.run(&[
        "cluster",
        "secrets",
        "--cluster",
        "cluster.toml",
        "--out",
        "cluster.secrets.toml",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn cluster_render_refuses_a_foreign_out_and_replaces_its_own() {
    let w = World::new();
    cluster(&w);
    for out in [
        w.outside.join("victim-dir"),
        w.outside.join("victim"),
        w.root().to_path_buf(),
    ] {
        let before = w.snapshot();
        let o = w
            .project
            .sanforge()
            .args(["cluster", "render", "cluster.toml", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let e = stderr(&o);
        assert!(
            !o.status.success()
                && e.contains(&out.display().to_string())
                && (e.contains("not a previous `sanforge cluster render` output")
                    || e.contains("is not a directory")),
            "{}",
            text(&o)
        );
        w.assert_unchanged(&before, &format!("render --out {}", out.display()));
    }
    // Its own output is replaced; a file added by hand makes it foreign.
    let o = w
        .project
        .run(&["cluster", "render", "cluster.toml", "--out", "rendered"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = w
        .project
        .run(&["cluster", "render", "cluster.toml", "--out", "rendered"]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(w.root().join("rendered/NOTES"), "mine").unwrap();
    let o = w
        .project
        .run(&["cluster", "render", "cluster.toml", "--out", "rendered"]);
    assert!(
        !o.status.success() && stderr(&o).contains("NOTES"),
        "{}",
        text(&o)
    );
    assert!(w.root().join("rendered/NOTES").is_file());
}
