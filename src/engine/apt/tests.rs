#![allow(clippy::unwrap_used)]
use super::*;
use crate::config::lock::LockedPackage;
use std::path::Path;

#[test]
fn inst_lines() {
    let t = "NOTE: This is only a simulation!\nInst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []\nInst busybox-static (1:1.35.0-4+deb12u1+b1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])\nConf libc6 (2.36-9 Debian [amd64])\nInst sanforge-recipe (0 local-deb [all])\n";
    assert_eq!(
        parse_inst_lines(t),
        vec![
            ("libc6".into(), "2.36-9+deb12u14".into(), "amd64".into()),
            (
                "busybox-static".into(),
                "1:1.35.0-4+deb12u1+b1".into(),
                "amd64".into()
            ),
            ("sanforge-recipe".into(), "0".into(), "all".into()),
        ]
    );
}

#[test]
fn stanza_fields_and_chosen_alternatives() {
    let block = "Package: pacemaker\nSource: pacemaker (2.1.5-1)\nVersion: 2.1.5-1+deb12u1\nArchitecture: amd64\nPre-Depends: init-system-helpers (>= 1.54~)\nDepends: corosync (>= 1.99), python3:any, mawk | awk,\n libc6 (>= 2.34)\nProvides: pcmk (= 1)\nFilename: pool/main/p/pacemaker/pacemaker_2.1.5-1+deb12u1_amd64.deb\nSize: 42\nSHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nDescription: x\n more";
    let s = parse_stanza(block);
    assert_eq!(s.source.as_deref(), Some("pacemaker"));
    assert_eq!(
        s.depends,
        vec![
            "init-system-helpers (>= 1.54~)",
            "corosync (>= 1.99)",
            "python3:any",
            "mawk | awk",
            "libc6 (>= 2.34)"
        ]
    );
    assert_eq!(s.provides, vec!["pcmk"]);
    assert_eq!(s.size, 42);
    assert!(s.sha256.is_some() && !s.essential);
    let closure = vec![
        ("corosync".to_string(), vec![]),
        ("python3".to_string(), vec![]),
        ("gawk".to_string(), vec!["awk".to_string()]),
        ("libc6".to_string(), vec![]),
    ];
    assert_eq!(
        chosen_depends(&s.depends, &closure),
        vec!["corosync", "gawk", "libc6", "python3"]
    );
}

#[test]
fn missing_component_is_recognised() {
    let l = "W: Skipping acquire of configured file 'contrib/binary-amd64/Packages' as repository 'file:/tmp/repo bookworm InRelease' doesn't have the component 'contrib' (component misspelt in sources.list?)";
    assert_eq!(
        parse_missing_component(l),
        Some(("contrib".into(), "file:/tmp/repo bookworm InRelease".into()))
    );
    assert_eq!(parse_missing_component("W: something else"), None);
}

fn pkg(name: &str, source: Option<&str>, essential: bool, depends: &[&str]) -> LockedPackage {
    LockedPackage {
        name: name.into(),
        source: source.map(String::from),
        essential,
        depends: depends.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn roles_leave_out_essential_branches() {
    let closure = vec![
        pkg(
            "pacemaker",
            None,
            false,
            &[
                "pacemaker-common",
                "libc6",
                "init-system-helpers",
                "adduser",
            ],
        ),
        pkg("pacemaker-common", Some("pacemaker"), false, &[]),
        pkg("libc6", Some("glibc"), false, &[]),
        pkg(
            "init-system-helpers",
            None,
            true,
            &["usrmerge", "perl-base"],
        ),
        pkg("usrmerge", None, false, &["perl-base"]),
        pkg("perl-base", Some("perl"), true, &[]),
        pkg("adduser", None, false, &["passwd"]),
        pkg("passwd", Some("shadow"), false, &[]),
        pkg("bash", None, true, &["libc6"]),
    ];
    let r = roles(&closure, &["pacemaker", "bash"]);
    assert_eq!(r["pacemaker"], Role::Requested);
    assert_eq!(r["bash"], Role::Requested);
    assert_eq!(r["pacemaker-common"], Role::Companion);
    assert_eq!(r["libc6"], Role::Dependency);
    assert_eq!(r["adduser"], Role::Dependency);
    assert_eq!(r["passwd"], Role::Dependency);
    assert_eq!(r["init-system-helpers"], Role::LeftOut);
    assert_eq!(r["usrmerge"], Role::LeftOut);
    assert_eq!(r["perl-base"], Role::LeftOut);
}

#[test]
fn conf_and_sources_are_private() {
    let c = apt_conf(Path::new("/c/tmp/1"), "arm64");
    assert!(c.contains("Dir::Etc::Parts \"/c/tmp/1/etc/apt.conf.d/\""));
    assert!(c.contains("Dir::State::status \"/c/tmp/1/state/status\""));
    assert!(c.contains("APT::Architecture \"arm64\""));
    // Every path apt is given lies in the private state.
    for v in c
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|v| v.starts_with('/'))
    {
        assert!(v.starts_with("/c/tmp/1/"), "{v}");
    }
    let s = sources_file(&[AptSource {
        uri: "file:///r".into(),
        suite: "bookworm".into(),
        components: vec!["main".into(), "contrib".into()],
        signed_by: None,
        trusted: true,
    }]);
    assert_eq!(
        s,
        "Types: deb\nURIs: file:///r\nSuites: bookworm\nComponents: main contrib\nTrusted: yes\n\n"
    );
    let mut holds = BTreeMap::new();
    holds.insert("libqb100".to_string(), "2.0.6-2".to_string());
    assert_eq!(
        preferences(&holds),
        "Package: libqb100\nPin: version 2.0.6-2\nPin-Priority: 1001\n\n"
    );
}
