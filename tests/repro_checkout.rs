//! Reproducible from any checkout: file modes in the image depend only on what git
//! records (the executable bit), never on the umask of whoever cloned the project;
//! the recipe's `modes` table sets a path's mode explicitly.

mod common;

use common::project::{text, Project};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// `cpio -tv` of an initramfs: one line per member, mode first.
fn listing(out: &Path) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc {} | cpio -tv --quiet 2>/dev/null",
            out.join("initramfs.cpio.zst").display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The mode column (`-rw-r--r--`) of member `path` in a `cpio -tv` listing.
fn mode_of<'a>(listing: &'a str, path: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().last() == Some(path))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{path} not in the initramfs:\n{listing}"))
}

/// Every file of two output directories, byte for byte (logs aside).
fn assert_same_outputs(a: &Path, b: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "logs")
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(a), names(b));
    for n in names(a) {
        let (x, y) = (
            std::fs::read(a.join(&n)).unwrap(),
            std::fs::read(b.join(&n)).unwrap(),
        );
        assert!(x == y, "{n} differs between the two checkouts");
    }
}

#[test]
fn checkouts_made_under_umask_002_and_022_build_identical_images() {
    let p = Project::new();
    // An executable overlay file and a group-writable directory: what a 002 clone gives.
    let tool = p.root().join("overlays/base/usr/local/bin/hello");
    std::fs::create_dir_all(tool.parent().unwrap()).unwrap();
    std::fs::write(&tool, "#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copies = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for (name, umask) in [("u022", 0o022), ("u002", 0o002)] {
        let dir = copies.path().join(name);
        sanforge::commands::verify::copy_project(p.root(), &dir, &[], umask).unwrap();
        let motd = dir.join("overlays/base/etc/motd.tera");
        let want = if umask == 0o002 { 0o664 } else { 0o644 };
        assert_eq!(
            std::fs::metadata(&motd).unwrap().permissions().mode() & 0o777,
            want,
            "the copy must look like a checkout under umask {umask:03o}"
        );
        // Its own cache: both builds run every stage.
        let o = Command::new(env!("CARGO_BIN_EXE_sanforge"))
            .current_dir(&dir)
            .env(
                "SANFORGE_CACHE",
                copies.path().join(format!("{name}-cache")),
            )
            .env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"))
            .env("SANFORGE_PROGRESS", "plain")
            .args(["build", "recipes/test.toml"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", text(&o));
        outs.push(dir.join("out/test"));
    }
    assert_same_outputs(&outs[0], &outs[1]);
    let l = listing(&outs[1]);
    assert_eq!(mode_of(&l, "etc/motd"), "-rw-r--r--", "{l}");
    assert_eq!(mode_of(&l, "usr/local/bin/hello"), "-rwxr-xr-x", "{l}");
    assert_eq!(mode_of(&l, "usr/local/bin"), "drwxr-xr-x", "{l}");
}

#[test]
fn the_recipe_sets_modes_explicitly_and_bad_modes_are_refused() {
    let p = Project::new();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    let with = |modes: &str| format!("modes = {{ {modes} }}\n{recipe}");

    std::fs::write(p.recipe(), with("\"/etc/motd\" = \"0600\"")).unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let l = listing(&p.root().join("out/test"));
    assert_eq!(mode_of(&l, "etc/motd"), "-rw-------", "{l}");

    for (modes, want) in [
        (
            "\"/etc/motd\" = \"0999\"",
            "expected an octal mode like \"0600\"",
        ),
        ("\"/etc/motd\" = \"\"", "expected an octal mode"),
        (
            "\"/../etc/shadow\" = \"0600\"",
            "climbs out of the image root",
        ),
    ] {
        std::fs::write(p.recipe(), with(modes)).unwrap();
        let o = p.run(&["build", "recipes/test.toml"]);
        assert!(!o.status.success(), "{modes}: {}", text(&o));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("test.toml:1:") && e.contains(want),
            "{modes}: {e}"
        );
    }
    std::fs::write(p.recipe(), with("\"/etc/nothere\" = \"0600\"")).unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success(), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("modes: /etc/nothere is not in the image"), "{e}");
}
