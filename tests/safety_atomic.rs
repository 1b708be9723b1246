//! Issue #10, class 6: every verb that writes several files writes all of them or
//! none. `cluster render` renders into a fresh directory and swaps it in (a failure
//! half-way leaves the previous render; a node gone from the cluster file is gone
//! from the render); `lock` keeps the old lock when resolving fails and never
//! overwrites its recipe; `keygen` leaves no lone key; `fetch` leaves no partial blob.

mod common;

use common::project::text;
use common::safety::{snapshot, World};
use sanforge::ha::render::{Rendered, RenderedFile};
use std::path::{Path, PathBuf};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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

fn render(w: &World) -> std::process::Output {
    w.project
        .run(&["cluster", "render", "cluster.toml", "--out", "rendered"])
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_rerender_removes_nodes_gone_from_the_cluster_file() {
    let w = World::new();
    cluster(&w);
    let o = render(&w);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(names(&w.root().join("rendered")), ["alpha", "beta"]);
    let c = w.root().join("cluster.toml");
    let t = std::fs::read_to_string(&c).unwrap();
    std::fs::write(&c, t.replace("alpha", "gamma")).unwrap();
    let o = render(&w);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(names(&w.root().join("rendered")), ["beta", "gamma"]);
    // Modes survive the swap: public 0755, secrets 0700 / 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| {
        std::fs::metadata(w.root().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("rendered"), 0o755);
    assert_eq!(mode("rendered/gamma/secrets"), 0o700);
    assert_eq!(mode("rendered/gamma/secrets/authkey"), 0o600);
    // Nothing is left beside it.
    assert_eq!(
        names(w.root())
            .into_iter()
            .filter(|n| n.contains("rendered"))
            .collect::<Vec<_>>(),
        ["rendered"]
    );
}

#[test]
fn a_render_that_fails_half_way_leaves_the_previous_one() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("rendered");
    let file = |path: &str, data: &str| RenderedFile {
        path: PathBuf::from(path),
        data: data.as_bytes().to_vec(),
        install: String::new(),
        mode: 0o644,
        secret: false,
    };
    let first = Rendered {
        files: vec![
            file("alpha/MANIFEST", "# rendered file -> path in the image\n"),
            file("alpha/node.toml", "one"),
        ],
        warnings: vec![],
    };
    sanforge::commands::cluster::write_all_or_nothing(&first, &out).unwrap();
    let before = snapshot(t.path(), &[]);
    // The second file cannot be written (its parent is the first file): the render
    // stops half-way.
    let broken = Rendered {
        files: vec![
            file("alpha/MANIFEST", "# rendered file -> path in the image\n"),
            file("alpha/node.toml", "two"),
            file("alpha/node.toml/oops", "x"),
        ],
        warnings: vec![],
    };
    let e = sanforge::commands::cluster::write_all_or_nothing(&broken, &out).unwrap_err();
    assert!(format!("{e:#}").contains("node.toml"), "{e:#}");
    assert_eq!(
        snapshot(t.path(), &[]),
        before,
        "a failed render changed the previous one or left files"
    );
}

#[test]
fn lock_keeps_the_old_lock_and_never_overwrites_its_recipe() {
    let w = World::new();
    let p = &w.project;
    assert!(p.run(&["lock", "recipes/test.toml"]).status.success());
    let lock = std::fs::read_to_string(p.root().join("recipes/test.lock")).unwrap();
    // Resolving fails (a path source that is gone): the old lock stays, nothing else.
    let r = std::fs::read_to_string(p.recipe()).unwrap();
    std::fs::write(
        p.recipe(),
        format!("{r}\n[sources.fw]\npath = \"gone.bin\"\n"),
    )
    .unwrap();
    let before = w.snapshot();
    let o = p.run(&["lock", "recipes/test.toml"]);
    assert!(
        !o.status.success() && stderr(&o).contains("gone.bin"),
        "{}",
        text(&o)
    );
    w.assert_unchanged(&before, "a failed lock");
    assert_eq!(
        std::fs::read_to_string(p.root().join("recipes/test.lock")).unwrap(),
        lock
    );
    // A recipe whose lock would be itself.
    std::fs::write(p.root().join("recipes/odd.lock"), &r).unwrap();
    let before = w.snapshot();
    let o = p.run(&["lock", "recipes/odd.lock"]);
    assert!(
        !o.status.success() && stderr(&o).contains("its lock file would be the recipe itself"),
        "{}",
        text(&o)
    );
    w.assert_unchanged(&before, "lock of recipes/odd.lock");
}

#[test]
fn keygen_writes_both_keys_or_neither() {
    let w = World::new();
    let p = &w.project;
    // KEY.pub exists: no secret key is left behind.
    std::fs::write(p.root().join("k.pub"), "someone else's").unwrap();
    let before = w.snapshot();
    let o = p.run(&["keygen", "--out", "k"]);
    assert!(
        !o.status.success() && stderr(&o).contains("k.pub already exists"),
        "{}",
        text(&o)
    );
    w.assert_unchanged(&before, "keygen with an existing k.pub");
    // A directory that does not exist: nothing anywhere.
    let before = w.snapshot();
    let o = p.run(&["keygen", "--out", "nodir/k"]);
    assert!(!o.status.success(), "{}", text(&o));
    w.assert_unchanged(&before, "keygen into a missing directory");
    // Both, when it works, with their modes.
    let o = p.run(&["keygen", "--out", "key"]);
    assert!(o.status.success(), "{}", text(&o));
    use std::os::unix::fs::PermissionsExt;
    let mode = |f: &str| {
        std::fs::metadata(p.root().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!((mode("key"), mode("key.pub")), (0o600, 0o644));
    assert!(
        !names(p.root()).iter().any(|n| n.starts_with(".tmp")),
        "{:?}",
        names(p.root())
    );
}
