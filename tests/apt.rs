//! Userland from package names against a local apt repository made in the test (tiny
//! `.deb`s from `dpkg-deb`, indexed by `dpkg-scanpackages`, served from file://):
//! apt resolves the closure in a private state, `sanforge lock` pins it, the build uses
//! the lock (offline once the cache holds the .debs), `--locked` and `lock --update`,
//! what lands in the image and why (`--explain-size`), and every bad input: an unknown
//! package, an unsatisfiable constraint, a .deb whose bytes changed in the archive, a
//! version the archive removed, a component the repository does not serve, an old
//! lock format.

mod common;

use common::aptrepo::{available, Deb, Repo};
use common::project::{text, Project};
use std::path::Path;
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o));
    o
}

fn fail(o: Output) -> String {
    assert!(!o.status.success(), "expected a failure: {}", text(&o));
    stderr(&o)
}

/// The bytes of a host file (following symlinks).
fn host(p: &str) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The test archive: `app` (a real ELF program, a shell helper, a perl tool, docs,
/// a man page, a config file) depends on `libc-fake` (the host's libc and loader, a
/// plugin in its private directory, a gconv module), `libfoo`, `app-data` (same
/// source as app) and, through Pre-Depends, the essential `dpkg-fake` (which alone
/// needs `only-dpkg`). `busybox-fake` provides /bin/busybox for the /bin/sh link.
fn repo() -> Repo {
    let r = Repo::new();
    let libc = host("/lib/x86_64-linux-gnu/libc.so.6");
    let ld = host("/lib64/ld-linux-x86-64.so.2");
    r.add(
        Deb::new("libc-fake", "1.0")
            .field("Source: glibc-fake")
            .file("/lib/x86_64-linux-gnu/libc.so.6", &libc, 0o755)
            .file("/lib64/ld-linux-x86-64.so.2", &ld, 0o755)
            .file(
                "/usr/lib/x86_64-linux-gnu/glibc-fake/plugin.so",
                b"plugin",
                0o644,
            )
            .file("/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", b"gconv", 0o644)
            .file("/usr/share/doc/libc-fake/copyright", b"c", 0o644),
    );
    r.add(
        Deb::new("dpkg-fake", "1.0")
            .field("Essential: yes")
            .field("Depends: only-dpkg")
            .file("/usr/bin/dpkg-fake", b"dpkg", 0o755),
    );
    r.add(Deb::new("only-dpkg", "1.0").file("/usr/share/only-dpkg/x", b"x", 0o644));
    r.add(Deb::new("libfoo", "1.0").file("/usr/lib/libfoo-data.txt", b"foo 1.0", 0o644));
    r.add(Deb::new("app-data", "1.0").field("Source: app").file(
        "/usr/share/app/schema.xml",
        b"<schema/>",
        0o644,
    ));
    r.add(app("1.0"));
    r.add(Deb::new("busybox-fake", "1.0").file("/bin/busybox", b"busybox", 0o755));
    r.add(Deb::new("mawk-fake", "1.0").field("Provides: awkish"));
    r.add(Deb::new("tool", "1.0").field("Depends: libfoo").file(
        "/usr/bin/tool",
        b"#!/bin/sh\necho tool\n",
        0o755,
    ));
    r.publish();
    r
}

fn app(version: &str) -> Deb {
    Deb::new("app", version)
        .field("Pre-Depends: dpkg-fake")
        .field("Depends: libc-fake, libfoo (>= 1.0), app-data")
        .file("/usr/bin/app", &host("/usr/bin/true"), 0o755)
        .file("/usr/lib/app/helper.sh", b"#!/bin/sh\necho helper\n", 0o755)
        .file(
            "/usr/lib/app/perl-tool",
            b"#!/usr/bin/perl\nprint 1;\n",
            0o755,
        )
        .file("/usr/share/doc/app/README", b"readme", 0o644)
        .file("/usr/share/man/man1/app.1.gz", b"man", 0o644)
        .file("/etc/app.conf", b"x = 1\n", 0o644)
}

const LINKS: &str = "links = { \"/bin/sh\" = \"busybox\" }";

fn project(r: &Repo, packages: &str) -> Project {
    let p = Project::new();
    p.write_recipe_with("", &r.userland(packages, LINKS));
    p
}

fn lock_of(p: &Project) -> sanforge::config::lock::Lock {
    sanforge::config::lock::Lock::load(&p.root().join("recipes/test.lock")).unwrap()
}

fn version(p: &Project, name: &str) -> String {
    lock_of(p)
        .package(name)
        .map(|p| p.version.clone())
        .unwrap_or_default()
}

fn initramfs_listing(out: &Path) -> String {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc {} | cpio -t 2>/dev/null",
            out.join("initramfs.cpio.zst").display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn apt_resolves_the_closure_the_lock_pins_it_and_the_build_is_offline() {
    if !available() {
        return;
    }
    let r = repo();
    let p = project(&r, "[\"app\", \"busybox-fake\"]");
    // A `debian` source resolves through the same private apt state.
    let recipe = p.recipe();
    let mut t = std::fs::read_to_string(&recipe).unwrap();
    t.push_str("\n[sources]\nfoo-data = { debian = \"libfoo\", version = \"1.0\", member = \"usr/lib/libfoo-data.txt\" }\n");
    std::fs::write(&recipe, t).unwrap();

    let o = ok(p.run(&["lock", "recipes/test.toml"]));
    let out = stdout(&o);
    assert!(
        out.contains("7 packages: 2 named by the recipe, 1 from the same sources, 2 dependencies"),
        "{out}"
    );
    assert!(
        out.contains("left out (essential, the image has no dpkg): dpkg-fake, only-dpkg"),
        "{out}"
    );
    let l = lock_of(&p);
    let names: Vec<&str> = l.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "app",
            "app-data",
            "busybox-fake",
            "dpkg-fake",
            "libc-fake",
            "libfoo",
            "only-dpkg"
        ]
    );
    let apt = l.apt.as_ref().unwrap();
    assert_eq!(apt.requested, ["app", "busybox-fake"]);
    assert_eq!(apt.architecture, "amd64");
    assert_eq!(
        apt.sources,
        [format!("deb [trusted=yes] {} bookworm main", r.uri())]
    );
    let a = l.package("app").unwrap();
    assert_eq!(a.version, "1.0");
    assert_eq!(a.filename, "pool/app_1.0_amd64.deb");
    assert_eq!(a.repositories, [r.uri()]);
    assert_eq!(
        a.sha256,
        sanforge::util::hash::sha256_bytes(&std::fs::read(r.deb_path("app", "1.0")).unwrap())
    );
    assert_eq!(a.depends, ["app-data", "dpkg-fake", "libc-fake", "libfoo"]);
    assert!(l.package("dpkg-fake").unwrap().essential);
    assert_eq!(
        l.package("app-data").unwrap().source.as_deref(),
        Some("app")
    );
    let src = l.get("foo-data").unwrap();
    assert_eq!(src.kind, "debian");
    assert_eq!(src.urls, [format!("{}/pool/libfoo_1.0_amd64.deb", r.uri())]);
    assert_eq!(src.sha256, l.package("libfoo").unwrap().sha256);
    // Locking again changes nothing.
    let before = std::fs::read_to_string(p.root().join("recipes/test.lock")).unwrap();
    ok(p.run(&["lock", "recipes/test.toml"]));
    assert_eq!(
        std::fs::read_to_string(p.root().join("recipes/test.lock")).unwrap(),
        before
    );

    let o = ok(p.run(&["build", "recipes/test.toml", "--locked", "--explain-size"]));
    let listing = initramfs_listing(&p.root().join("out/test"));
    for want in [
        "usr/bin/app",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib64/ld-linux-x86-64.so.2",
        "usr/share/app/schema.xml",
        "usr/lib/x86_64-linux-gnu/glibc-fake/plugin.so",
        "usr/lib/app/helper.sh",
        "bin/busybox",
        "bin/sh",
    ] {
        assert!(
            listing.lines().any(|l| l == want),
            "{want} missing:\n{listing}"
        );
    }
    for unwanted in [
        "usr/share/doc/app/README",
        "usr/share/man/man1/app.1.gz",
        "etc/app.conf",
        "usr/lib/x86_64-linux-gnu/gconv/UTF-16.so",
        "usr/lib/app/perl-tool",
        "usr/bin/dpkg-fake",
        "usr/lib/libfoo-data.txt",
        "usr/share/only-dpkg/x",
    ] {
        assert!(
            !listing.lines().any(|l| l == unwanted),
            "{unwanted} should not be in the image"
        );
    }
    let explain = stdout(&o);
    for want in [
        "largest files in the image",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "library of /usr/bin/app",
        "plugin of libc-fake",
        "same source as app",
        "/usr/lib/app/perl-tool",
        "interpreter /usr/bin/perl is in no package of the closure",
        "dpkg-fake",
        "documentation",
    ] {
        assert!(explain.contains(want), "`{want}` missing:\n{explain}");
    }
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.root().join("out/test/manifest.json")).unwrap(),
    )
    .unwrap();
    let pkgs: Vec<&str> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The packages whose files are in the image (libfoo only had to be unpacked).
    assert_eq!(pkgs, ["app", "app-data", "busybox-fake", "libc-fake"]);

    // Offline: without the repository, plan and a rebuild of the userland work from
    // the lock and the cached .debs.
    let gone = r.root().with_extension("moved");
    std::fs::rename(r.root(), &gone).unwrap();
    ok(p.run(&["plan", "recipes/test.toml"]));
    std::fs::remove_dir_all(p.cache.join("stages")).unwrap();
    std::fs::remove_dir_all(p.root().join("out")).unwrap();
    let o = ok(p.run(&["build", "recipes/test.toml", "--locked"]));
    assert!(stderr(&o).contains("userland: building"), "{}", text(&o));
    std::fs::rename(&gone, r.root()).unwrap();
}

#[test]
fn locked_names_the_package_and_update_moves_only_what_is_asked() {
    if !available() {
        return;
    }
    let r = repo();
    let p = project(&r, "[\"app\", \"busybox-fake\"]");
    ok(p.run(&["lock", "recipes/test.toml"]));
    // A package added to the recipe: --locked names it, `lock` adds it.
    p.write_recipe_with(
        "",
        &r.userland("[\"app\", \"busybox-fake\", \"tool\"]", LINKS),
    );
    let e = fail(p.run(&["build", "recipes/test.toml", "--locked"]));
    assert!(
        e.contains("package `tool` is in the recipe but not in the lock"),
        "{e}"
    );
    ok(p.run(&["lock", "recipes/test.toml"]));
    assert_eq!(version(&p, "tool"), "1.0");
    // A changed constraint is named too.
    p.write_recipe_with(
        "",
        &r.userland(
            "{ app = \">= 1.0\", busybox-fake = \"*\", tool = \"*\" }",
            LINKS,
        ),
    );
    let e = fail(p.run(&["build", "recipes/test.toml", "--locked"]));
    assert!(
        e.contains(
            "package `app`: the recipe asks for `app (>= 1.0)`, the lock was resolved for `app`"
        ),
        "{e}"
    );
    ok(p.run(&["lock", "recipes/test.toml"]));

    // The archive moves on: the lock does not, until asked.
    r.add(Deb::new("libfoo", "2.0").file("/usr/lib/libfoo-data.txt", b"foo 2.0", 0o644));
    r.add(app("1.1"));
    r.publish();
    ok(p.run(&["lock", "recipes/test.toml"]));
    assert_eq!(
        (version(&p, "libfoo").as_str(), version(&p, "app").as_str()),
        ("1.0", "1.0")
    );
    let o = ok(p.run(&["lock", "recipes/test.toml", "--update", "libfoo"]));
    assert!(stdout(&o).contains("~ libfoo 1.0 -> 2.0"), "{}", text(&o));
    assert_eq!(
        (version(&p, "libfoo").as_str(), version(&p, "app").as_str()),
        ("2.0", "1.0")
    );
    ok(p.run(&["lock", "recipes/test.toml", "--update"]));
    assert_eq!(version(&p, "app"), "1.1");
    let e = fail(p.run(&["lock", "recipes/test.toml", "--update", "nosuch"]));
    assert!(e.contains("package `nosuch` is neither in the lock"), "{e}");
}

#[test]
fn an_unknown_package_is_named_with_the_suite() {
    if !available() {
        return;
    }
    let r = repo();
    let p = project(&r, "[\"app\", \"nosuch\"]");
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(
        e.contains(&format!(
            "package `nosuch` is not in bookworm (main) of {}",
            r.uri()
        )),
        "{e}"
    );
    assert!(e.contains("apt-cache search nosuch"), "{e}");
    assert!(!p.root().join("recipes/test.lock").exists());
    // A virtual package names its providers.
    p.write_recipe_with("", &r.userland("[\"awkish\"]", ""));
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(
        e.contains(
            "package `awkish` is a virtual package: name the one the node runs, e.g. mawk-fake"
        ),
        "{e}"
    );
    // A version the archive does not have lists those it has.
    p.write_recipe_with("", &r.userland("{ app = \"9.9\" }", ""));
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(
        e.contains("package `app` has no version 9.9") && e.contains("the archive has 1.0"),
        "{e}"
    );
}

#[test]
fn an_unsatisfiable_constraint_quotes_apt() {
    if !available() {
        return;
    }
    let r = repo();
    r.add(Deb::new("libfoo", "0.9").file("/usr/lib/libfoo-data.txt", b"old", 0o644));
    r.publish();
    let p = project(&r, "{ app = \"*\", libfoo = \"0.9\" }");
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(
        e.contains("apt cannot install the recipe's packages together"),
        "{e}"
    );
    assert!(
        e.contains("app : Depends: libfoo (>= 1.0) but 0.9 is to be installed"),
        "{e}"
    );
    assert!(!p.root().join("recipes/test.lock").exists());
    // A relation apt cannot meet.
    p.write_recipe_with("", &r.userland("{ app = \">= 2\" }", ""));
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(e.contains("sanforge-recipe : Depends: app (>= 2)"), "{e}");
}

/// Blobs in the cache (none may be left by a failed download).
fn blobs(p: &Project) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p.cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_deb_whose_bytes_changed_in_the_archive_is_refused() {
    if !available() {
        return;
    }
    let r = repo();
    let p = project(&r, "[\"app\", \"busybox-fake\"]");
    ok(p.run(&["lock", "recipes/test.toml"]));
    let expected = lock_of(&p).package("libfoo").unwrap().sha256.clone();
    let deb =
        r.add(Deb::new("libfoo", "1.0").file("/usr/lib/libfoo-data.txt", b"other bytes", 0o644));
    r.publish();
    let actual = sanforge::util::hash::sha256_bytes(&std::fs::read(deb).unwrap());
    let e = fail(p.run(&["build", "recipes/test.toml"]));
    assert!(
        e.contains("package libfoo 1.0: the archive's .deb does not match the lock"),
        "{e}"
    );
    assert!(
        e.contains(&format!("expected sha256 {expected}, got {actual}")),
        "{e}"
    );
    assert!(e.contains("nothing was cached"), "{e}");
    assert!(!blobs(&p).contains(&actual) && !blobs(&p).contains(&expected));
    let tmp: Vec<_> = std::fs::read_dir(p.cache.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn a_version_removed_from_the_archive_says_import_or_update() {
    if !available() {
        return;
    }
    let r = repo();
    let p = project(&r, "[\"app\", \"busybox-fake\"]");
    ok(p.run(&["lock", "recipes/test.toml"]));
    let deb = r.deb_path("app", "1.0");
    let saved = p.root().join("app_1.0_amd64.deb");
    std::fs::rename(&deb, &saved).unwrap();
    r.add(app("1.1"));
    r.publish();
    let e = fail(p.run(&["build", "recipes/test.toml"]));
    assert!(
        e.contains("package app 1.0 is no longer in the archive"),
        "{e}"
    );
    assert!(e.contains("sanforge fetch --import FILE"), "{e}");
    assert!(e.contains("sanforge lock --update app"), "{e}");
    // Importing the .deb is enough: the lock pins it by sha256.
    ok(p.run(&["fetch", "--import", saved.to_str().unwrap()]));
    ok(p.run(&["build", "recipes/test.toml", "--locked"]));
    // Without the import, locking again cannot keep 1.0 and says how to move.
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(
        e.contains("cannot keep the locked version of `app` 1.0 (now 1.1)"),
        "{e}"
    );
    assert!(e.contains("--update app"), "{e}");
}

#[test]
fn a_component_the_repository_does_not_serve_is_named() {
    if !available() {
        return;
    }
    let r = repo();
    let p = project(
        &r,
        "[\"app\"]\ncomponents = [\"main\", \"non-free-firmware\"]",
    );
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(
        e.contains(&format!(
            "component `non-free-firmware` is not served by {} bookworm (it serves: main)",
            r.uri()
        )),
        "{e}"
    );
}

#[test]
fn a_version_1_lock_is_refused_and_lock_migrates_its_pins() {
    if !available() {
        return;
    }
    let r = repo();
    r.add(Deb::new("libfoo", "2.0").file("/usr/lib/libfoo-data.txt", b"foo 2.0", 0o644));
    r.publish();
    let p = project(&r, "[\"app\", \"busybox-fake\"]");
    std::fs::write(
        p.root().join("recipes/test.lock"),
        "version = 1\n\n[[source]]\nname = \"package:libfoo\"\nkind = \"debian\"\norigin = \"libfoo=1.0\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n",
    )
    .unwrap();
    let e = fail(p.run(&["build", "recipes/test.toml"]));
    assert!(
        e.contains("lock version 1 is not supported") && e.contains("sanforge lock"),
        "{e}"
    );
    ok(p.run(&["lock", "recipes/test.toml"]));
    assert_eq!(version(&p, "libfoo"), "1.0");
}

/// A `debian` source (firmware from a non-free-firmware package, say) whose version
/// the archive does not have: `lock` names the package, the version and what the
/// archive has, and writes no lock.
#[test]
fn a_debian_source_version_missing_from_the_archive_is_named() {
    if !available() {
        return;
    }
    let r = repo();
    let p = project(&r, "[\"busybox-fake\"]");
    let mut t = std::fs::read_to_string(p.recipe()).unwrap();
    t.push_str("\n[sources]\nfw = { debian = \"libfoo\", version = \"9.9\", member = \"usr/lib/libfoo-data.txt\" }\n");
    std::fs::write(p.recipe(), t).unwrap();
    let e = fail(p.run(&["lock", "recipes/test.toml"]));
    assert!(e.contains("libfoo") && e.contains("9.9"), "{e}");
    assert!(
        e.contains("1.0"),
        "the archive's versions are not listed: {e}"
    );
    assert!(!p.root().join("recipes/test.lock").exists());
}
