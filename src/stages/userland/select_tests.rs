#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn prune_categories() {
    assert_eq!(
        pruned("/usr/share/doc/bash/copyright"),
        Some("documentation")
    );
    assert_eq!(pruned("/usr/share/man/man1/x.1.gz"), Some("man page"));
    assert_eq!(
        pruned("/usr/share/locale/de/LC_MESSAGES/bash.mo"),
        Some("locale")
    );
    assert_eq!(
        pruned("/lib/systemd/system/corosync.service"),
        Some("init-system integration")
    );
    assert_eq!(pruned("/etc/corosync/corosync.conf"), Some("configuration"));
    assert_eq!(
        pruned("/usr/lib/x86_64-linux-gnu/libfoo.a"),
        Some("development file")
    );
    assert_eq!(pruned("/usr/share/pacemaker/pacemaker-3.9.rng"), None);
    assert_eq!(pruned("/usr/sbin/corosync"), None);
}

#[test]
fn drop_patterns() {
    assert!(matches("/usr/share/cluster", "/usr/share/cluster/a.sh"));
    assert!(matches("/usr/share/cluster/", "/usr/share/cluster/x/a.sh"));
    assert!(!matches("/usr/share/cluster", "/usr/share/clusterx/a"));
    assert!(matches(
        "/usr/lib/ocf/resource.d/heartbeat/*.py",
        "/usr/lib/ocf/resource.d/heartbeat/gcp.py"
    ));
    assert!(!matches("/usr/lib/*.py", "/usr/lib/x/y.py"));
    assert!(matches("/usr/lib/**.py", "/usr/lib/x/y.py"));
    assert!(matches("/lib/drbd/*-83", "/lib/drbd/drbdadm-83"));
    assert!(matches(
        "/usr/lib/ocf/resource.d/*",
        "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"
    ));
}

fn put(root: &Path, p: &str, content: &str) {
    let h = root.join(p.trim_start_matches('/'));
    std::fs::create_dir_all(h.parent().unwrap()).unwrap();
    std::fs::write(h, content).unwrap();
}

fn link(root: &Path, p: &str, target: &str) {
    let h = root.join(p.trim_start_matches('/'));
    std::fs::create_dir_all(h.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, h).unwrap();
}

fn pkg(name: &str, source: &str, role: Role, files: &[&str]) -> Pkg {
    Pkg {
        name: name.into(),
        source: source.into(),
        role,
        files: files.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn named_packages_scripts_companions_and_keep() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    put(r, "/bin/busybox", "not elf");
    link(r, "/bin/sh", "busybox");
    put(r, "/usr/sbin/agent", "#!/bin/sh\n. /usr/lib/ra/funcs\n");
    put(r, "/usr/sbin/py-agent", "#!/usr/bin/python3\n");
    put(r, "/usr/bin/python3", "python");
    put(r, "/usr/share/doc/app/README", "doc");
    put(r, "/etc/app.conf", "x=1");
    put(r, "/usr/share/app/schema.rng", "<rng/>");
    put(r, "/usr/share/app-common/data.xml", "<x/>");
    put(r, "/usr/lib/ra/funcs", "f() { :; }");
    put(r, "/usr/lib/ra/other", "g() { :; }");
    put(r, "/usr/share/app/big.dat", "big");
    let pkgs = vec![
        pkg(
            "busybox-static",
            "busybox",
            Role::Requested,
            &["/bin/busybox"],
        ),
        pkg(
            "app",
            "app",
            Role::Requested,
            &[
                "/usr/sbin/agent",
                "/usr/sbin/py-agent",
                "/usr/share/doc/app/README",
                "/etc/app.conf",
                "/usr/share/app/schema.rng",
                "/usr/share/app/big.dat",
            ],
        ),
        pkg(
            "app-common",
            "app",
            Role::Companion,
            &["/usr/share/app-common/data.xml"],
        ),
        pkg(
            "resource-agents",
            "resource-agents",
            Role::Dependency,
            &["/usr/lib/ra/funcs", "/usr/lib/ra/other"],
        ),
        pkg(
            "python3-minimal",
            "python3",
            Role::Dependency,
            &["/usr/bin/python3"],
        ),
    ];
    let keep = vec!["/usr/lib/ra/funcs".to_string()];
    let drop = vec!["/usr/share/app/big.dat".to_string()];
    let s = select(
        r,
        &pkgs,
        &Rules {
            keep: &keep,
            drop: &drop,
            left_out: &[],
        },
    )
    .unwrap();
    let got: Vec<&str> = s.paths.iter().map(String::as_str).collect();
    assert_eq!(
        got,
        vec![
            "/bin/busybox",
            "/bin/sh",
            "/usr/lib/ra/funcs",
            "/usr/sbin/agent",
            "/usr/share/app-common/data.xml",
            "/usr/share/app/schema.rng"
        ]
    );
    let why = |p: &str| s.report.iter().find(|f| f.path == p).unwrap().why.clone();
    assert!(
        why("/usr/sbin/py-agent")
            .contains("interpreter /usr/bin/python3 is not in the image (python3-minimal"),
        "{}",
        why("/usr/sbin/py-agent")
    );
    assert_eq!(why("/usr/share/doc/app/README"), "documentation");
    assert_eq!(why("/etc/app.conf"), "configuration");
    assert_eq!(
        why("/usr/share/app/big.dat"),
        "drop `/usr/share/app/big.dat`"
    );
    assert!(why("/usr/share/app-common/data.xml").contains("same source as app"));
    assert_eq!(why("/usr/lib/ra/funcs"), "keep `/usr/lib/ra/funcs`");
    assert_eq!(
        why("/usr/lib/ra/other"),
        "not needed by any file in the image"
    );
    assert_eq!(why("/bin/sh"), "link of /usr/sbin/agent");
    // A kept file that cannot run is an error naming it.
    let keep = vec!["/usr/bin/python3".to_string(), "/usr/sbin/nope".to_string()];
    let e = select(
        r,
        &pkgs,
        &Rules {
            keep: &keep,
            drop: &[],
            left_out: &["perl-base".to_string()],
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("keep `/usr/sbin/nope`") && e.contains("perl-base"),
        "{e}"
    );
}
