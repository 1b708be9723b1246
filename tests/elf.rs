//! The ELF closure on fake roots built from real host binaries (Debian, x86-64): a
//! merged-/usr layout with directory symlinks, library symlink chains, absolute link
//! targets that exist only inside the root, scripts, and missing pieces.

use sanforge::image::elf::{closure, needed};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Host paths of the pieces every root gets.
struct Host {
    tru: PathBuf,
    libc: PathBuf,
    loader: PathBuf,
}

fn host() -> Host {
    let canon =
        |p: &str| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("host needs {p}: {e}"));
    Host {
        tru: canon("/usr/bin/true"),
        libc: canon("/lib/x86_64-linux-gnu/libc.so.6"),
        loader: canon("/lib64/ld-linux-x86-64.so.2"),
    }
}

fn copy(root: &Path, from: &Path, to: &str) {
    let dst = root.join(to.trim_start_matches('/'));
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(from, &dst).unwrap();
}

fn link(root: &Path, target: &str, at: &str) {
    let dst = root.join(at.trim_start_matches('/'));
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, dst).unwrap();
}

fn write(root: &Path, at: &str, content: &str) {
    let dst = root.join(at.trim_start_matches('/'));
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::write(dst, content).unwrap();
}

/// A merged-/usr root like Debian's: /bin, /lib, /lib64 are links into /usr.
fn merged_usr_root(with_libc: bool) -> tempfile::TempDir {
    let h = host();
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for (target, at) in [
        ("usr/bin", "/bin"),
        ("usr/lib", "/lib"),
        ("usr/lib64", "/lib64"),
        ("usr/sbin", "/sbin"),
    ] {
        std::fs::create_dir_all(r.join(target)).unwrap();
        link(r, target, at);
    }
    copy(r, &h.tru, "/usr/bin/true");
    copy(
        r,
        &h.loader,
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    link(
        r,
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/usr/lib64/ld-linux-x86-64.so.2",
    );
    if with_libc {
        copy(r, &h.libc, "/usr/lib/x86_64-linux-gnu/libc.so.6");
    }
    // unrelated things that must stay out of the closure
    copy(r, &h.libc, "/usr/lib/x86_64-linux-gnu/libunrelated.so.1");
    copy(r, &h.tru, "/usr/bin/other");
    t
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn needed_reads_interpreter_and_libraries() {
    let h = host();
    let info = needed(&h.tru).unwrap().expect("true is ELF");
    assert_eq!(
        info.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert_eq!(info.needed, ["libc.so.6"]);
    assert!(info.is_64);
    assert_eq!(info.machine, 62);
    let libc = needed(&h.libc).unwrap().expect("libc is ELF");
    assert_eq!(libc.needed, ["ld-linux-x86-64.so.2"]);

    let t = tempfile::tempdir().unwrap();
    write(t.path(), "/script", "#!/bin/sh\necho hi\n");
    write(t.path(), "/text", "just text");
    write(t.path(), "/empty", "");
    for f in ["script", "text", "empty"] {
        assert_eq!(needed(&t.path().join(f)).unwrap(), None, "{f}");
    }
    write(t.path(), "/broken", "\x7fELF but not really");
    assert!(needed(&t.path().join("broken")).is_err());
}

#[test]
fn closure_of_true_is_exactly_libc_and_the_loader() {
    let t = merged_usr_root(true);
    let got = closure(t.path(), &["/bin/true".to_string()]).unwrap();
    assert_eq!(
        got,
        set(&[
            "/bin",
            "/lib",
            "/lib64",
            "/usr/bin/true",
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib64/ld-linux-x86-64.so.2",
        ])
    );
}

#[test]
fn missing_library_is_named_with_its_user() {
    let t = merged_usr_root(false);
    let err = format!(
        "{:#}",
        closure(t.path(), &["/usr/bin/true".to_string()]).unwrap_err()
    );
    assert!(
        err.contains("libc.so.6") && err.contains("/usr/bin/true"),
        "{err}"
    );
}

#[test]
fn missing_start_file_and_interpreter_are_errors() {
    let t = merged_usr_root(true);
    let err = format!(
        "{:#}",
        closure(t.path(), &["/usr/sbin/nope".to_string()]).unwrap_err()
    );
    assert!(err.contains("/usr/sbin/nope"), "{err}");

    std::fs::remove_file(
        t.path()
            .join("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    let err = format!(
        "{:#}",
        closure(t.path(), &["/usr/bin/true".to_string()]).unwrap_err()
    );
    assert!(
        err.contains("/lib64/ld-linux-x86-64.so.2") && err.contains("/usr/bin/true"),
        "{err}"
    );
}

#[test]
fn symlink_chains_are_kept_and_resolved_inside_the_root() {
    let h = host();
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    copy(r, &h.tru, "/usr/bin/true");
    // libc.so.6 -> libc-2.36.so (relative), the real file elsewhere via a second link
    link(r, "libc-2.36.so", "/lib/x86_64-linux-gnu/libc.so.6");
    link(
        r,
        "../../usr/lib/libc.so.real",
        "/lib/x86_64-linux-gnu/libc-2.36.so",
    );
    copy(r, &h.libc, "/usr/lib/libc.so.real");
    // an absolute target that exists only inside the root
    let only_in_root = "/sanforge-test-only-in-root/ld.so";
    assert!(!Path::new(only_in_root).exists());
    link(r, only_in_root, "/lib64/ld-linux-x86-64.so.2");
    copy(r, &h.loader, only_in_root);
    link(
        r,
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );

    let got = closure(r, &["/usr/bin/true".to_string()]).unwrap();
    assert_eq!(
        got,
        set(&[
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/libc-2.36.so",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
            "/sanforge-test-only-in-root/ld.so",
            "/usr/bin/true",
            "/usr/lib/libc.so.real",
        ])
    );
}

#[test]
fn symlink_loops_are_an_error() {
    let t = tempfile::tempdir().unwrap();
    link(t.path(), "b", "/usr/bin/a");
    link(t.path(), "a", "/usr/bin/b");
    let err = format!(
        "{:#}",
        closure(t.path(), &["/usr/bin/a".to_string()]).unwrap_err()
    );
    assert!(err.contains("symbolic links"), "{err}");
}

#[test]
fn script_interpreters_are_followed() {
    let t = merged_usr_root(true);
    let h = host();
    // /bin/sh -> dash, dash being a dynamically linked program
    copy(t.path(), &h.tru, "/usr/bin/dash");
    link(t.path(), "dash", "/usr/bin/sh");
    write(
        t.path(),
        "/usr/sbin/start-target",
        "#!/bin/sh -e\nexec true\n",
    );
    write(t.path(), "/etc/motd", "data files are kept as they are\n");
    let got = closure(
        t.path(),
        &[
            "/usr/sbin/start-target".to_string(),
            "/etc/motd".to_string(),
        ],
    )
    .unwrap();
    for p in [
        "/usr/sbin/start-target",
        "/bin",
        "/usr/bin/sh",
        "/usr/bin/dash",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/etc/motd",
    ] {
        assert!(got.contains(p), "{p} missing from {got:?}");
    }
    assert!(
        !got.contains("/usr/bin/true") && !got.contains("/usr/bin/other"),
        "{got:?}"
    );
    assert!(!got.iter().any(|p| p.contains("unrelated")), "{got:?}");

    // a script whose interpreter is missing
    write(t.path(), "/usr/sbin/py", "#!/usr/bin/python3\n");
    let err = format!(
        "{:#}",
        closure(t.path(), &["/usr/sbin/py".to_string()]).unwrap_err()
    );
    assert!(
        err.contains("/usr/bin/python3") && err.contains("/usr/sbin/py"),
        "{err}"
    );
}
