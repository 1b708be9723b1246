//! Kernel config verification against a tiny Kconfig tree (tests/fixtures/kconfig):
//! every problem is reported, one per line, with the option, what was asked, what it
//! became, where it was asked and the reason found in Kconfig.

use sanforge::kconfig::{
    merge, parse_config, parse_fragment, requests_from_forbid, requests_from_recipe, verify,
    KconfigIndex, Request,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kconfig")
}

/// A final .config as `make olddefconfig` could leave it for the fixture tree.
const FINAL: &str = "\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_X86=y
CONFIG_X86_64=y
CONFIG_LOCALVERSION=\"\"
CONFIG_NR_CPUS=1
CONFIG_EXPERT=y
CONFIG_FUTEX=y
CONFIG_HZ_250=y
# CONFIG_HZ_1000 is not set
CONFIG_MODULES=y
# CONFIG_SYSFS_SYSCALL is not set
CONFIG_BLOCK=y
# CONFIG_EXT4_FS is not set
# CONFIG_MISC_FILESYSTEMS is not set
CONFIG_HAVE_PCI=y
# CONFIG_PCI is not set
CONFIG_NET=y
CONFIG_NETDEVICES=y
# CONFIG_E1000 is not set
CONFIG_FW_LOADER=m
CONFIG_FW_LOADER_USER_HELPER=m
CONFIG_CRC32=y
";

/// `FINAL` with SquashFS built in (so it selects CRC32).
fn final_with_squashfs() -> String {
    FINAL.replace(
        "# CONFIG_MISC_FILESYSTEMS is not set\n",
        "CONFIG_MISC_FILESYSTEMS=y\nCONFIG_SQUASHFS=y\n",
    )
}

fn req(option: &str, value: &str, origin: &str) -> Request {
    Request {
        option: option.into(),
        value: value.into(),
        origin: origin.into(),
    }
}

/// Verifies one request against `config` with the fixture tree; returns the problems.
fn problems(config: &str, requests: &[Request], forbid: &[&str]) -> Vec<String> {
    let forbid: Vec<String> = forbid.iter().map(|s| s.to_string()).collect();
    match verify(config, requests, &forbid, Some(&tree())) {
        Ok(()) => Vec::new(),
        Err(e) => e.problems,
    }
}

fn write_fragment(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fragment");
    p
}

#[test]
fn dropped_option_names_the_unmet_if_around_its_source_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frag = write_fragment(
        dir.path(),
        "fs.config",
        "# file systems the image needs\n\nCONFIG_SQUASHFS=y\nCONFIG_BLOCK=y\n",
    );
    let reqs = parse_fragment(&frag, "kernel-configs/fs.config").expect("parse");
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        problems(FINAL, &reqs, &[]),
        vec![
            "CONFIG_SQUASHFS=y requested by kernel-configs/fs.config:3 was dropped: depends on \
             MISC_FILESYSTEMS && BLOCK, and MISC_FILESYSTEMS is not set (fs/squashfs/Kconfig:2)"
        ]
    );
}

#[test]
fn nested_and_or_not_dependency_names_each_failing_term() {
    let p = problems(
        FINAL,
        &[req("CONFIG_E1000", "m", "kernel-configs/net.config:7")],
        &[],
    );
    assert_eq!(
        p,
        vec![
            "CONFIG_E1000=m requested by kernel-configs/net.config:7 was dropped: depends on \
             NETDEVICES && NET && (PCI || !EXPERT), and PCI is not set, EXPERT is y \
             (drivers/net/Kconfig:4)"
        ]
    );
}

#[test]
fn numeric_comparison_and_continuation_lines_are_understood() {
    let cfg = FINAL.replace("# CONFIG_E1000 is not set", "CONFIG_E1000=y");
    let p = problems(&cfg, &[req("CONFIG_E1000_NAPI", "y", "recipe")], &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("depends on NETDEVICES && E1000 && NR_CPUS >= 2, and `NR_CPUS >= 2` does not hold (NR_CPUS is 1)"),
        "{}",
        p[0]
    );
}

#[test]
fn module_requested_but_built_in_names_the_selector() {
    let p = problems(
        &final_with_squashfs(),
        &[req("CONFIG_CRC32", "m", "recipe")],
        &[],
    );
    assert_eq!(
        p,
        vec!["CONFIG_CRC32=m requested by recipe became y: selected by SQUASHFS=y (fs/squashfs/Kconfig:5)"]
    );
}

#[test]
fn built_in_requested_but_module_names_the_modular_dependency() {
    let p = problems(
        FINAL,
        &[req("CONFIG_FW_LOADER_USER_HELPER", "y", "recipe")],
        &[],
    );
    assert_eq!(
        p,
        vec![
            "CONFIG_FW_LOADER_USER_HELPER=y requested by recipe became m: limited to m: depends on \
             FW_LOADER, and FW_LOADER is m (drivers/Kconfig:19)"
        ]
    );
}

#[test]
fn module_requested_for_a_bool_option() {
    let p = problems(FINAL, &[req("CONFIG_NET", "m", "a.config:1")], &[]);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("CONFIG_NET=m requested by a.config:1 became y: it is a bool option"),
        "{}",
        p[0]
    );
}

#[test]
fn forbidden_option_that_is_set_is_reported_with_its_selector() {
    let p = problems(&final_with_squashfs(), &[], &["CONFIG_CRC32", "EXT4_FS"]);
    assert_eq!(
        p,
        vec!["CONFIG_CRC32 is forbidden by the recipe but is y: selected by SQUASHFS=y (fs/squashfs/Kconfig:5)"]
    );
}

#[test]
fn forbidden_and_requested_is_reported_once_with_the_conflict() {
    let mut reqs = vec![req("CONFIG_CRC32", "y", "kernel-configs/lib.config:2")];
    reqs.extend(requests_from_forbid(&["CONFIG_CRC32".to_string()]));
    reqs.push(req("CONFIG_CRC32", "y", "kernel-configs/late.config:1"));
    let p = problems(FINAL, &reqs, &["CONFIG_CRC32"]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("CONFIG_CRC32 is forbidden by the recipe but is y"),
        "{}",
        p[0]
    );
    assert!(
        p[0].contains("also requested as CONFIG_CRC32=y by kernel-configs/late.config:1"),
        "{}",
        p[0]
    );
}

#[test]
fn everything_satisfied_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frag = write_fragment(
        dir.path(),
        "ok.config",
        "CONFIG_NET=y\nCONFIG_NETDEVICES=y\n# CONFIG_E1000 is not set\nCONFIG_FW_LOADER=m\n",
    );
    let mut reqs = parse_fragment(&frag, "ok.config").expect("parse");
    let mut opts = BTreeMap::new();
    opts.insert("CONFIG_NR_CPUS".to_string(), "1".to_string());
    opts.insert("CONFIG_LOCALVERSION".to_string(), "\"\"".to_string());
    opts.insert("CONFIG_BLOCK".to_string(), "y".to_string());
    reqs.extend(requests_from_recipe(&opts));
    let forbid = vec![
        "CONFIG_E1000".to_string(),
        "SQUASHFS".to_string(),
        "CONFIG_NOT_IN_KCONFIG".to_string(),
    ];
    assert_eq!(verify(FINAL, &reqs, &forbid, Some(&tree())), Ok(()));
    assert_eq!(verify(FINAL, &reqs, &forbid, None), Ok(()));
}

#[test]
fn a_later_request_overrides_an_earlier_one() {
    let reqs = vec![
        req("CONFIG_E1000", "y", "a.config:1"),
        req("CONFIG_E1000", "n", "b.config:1"),
    ];
    assert_eq!(problems(FINAL, &reqs, &[]), Vec::<String>::new());
    let reqs = vec![
        req("CONFIG_NET", "n", "a.config:1"),
        req("CONFIG_NET", "y", "b.config:4"),
    ];
    assert_eq!(problems(FINAL, &reqs, &[]), Vec::<String>::new());
}

#[test]
fn malformed_fragment_lines_name_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "CONFIG_NET=y\nCONFIG_BLOCK y\n",
            ":2: expected `CONFIG_NAME=value`",
        ),
        ("# ok\n\nNET=y\n", ":3: option name `NET`"),
        (
            "CONFIG_LOCALVERSION=\"-san\n",
            ":1: CONFIG_LOCALVERSION: unterminated string value",
        ),
        ("CONFIG_X=\n", ":1: CONFIG_X: empty value"),
        (
            "CONFIG_X=y # trailing comment\n",
            ":1: CONFIG_X: value `y # trailing comment`",
        ),
    ];
    for (text, want) in cases {
        let p = write_fragment(dir.path(), "bad.config", text);
        let err = parse_fragment(&p, "kernel-configs/bad.config").expect_err(text);
        let msg = format!("{err:#}");
        assert!(msg.starts_with("kernel-configs/bad.config"), "{msg}");
        assert!(msg.contains(want), "{text:?}: {msg}");
    }
    let missing = dir.path().join("missing.config");
    let msg = format!(
        "{:#}",
        parse_fragment(&missing, "missing.config").expect_err("missing")
    );
    assert!(
        msg.contains(&format!("cannot read {}", missing.display())),
        "{msg}"
    );
}

#[test]
fn fragment_not_set_lines_request_n_and_keep_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_fragment(
        dir.path(),
        "f.config",
        "# CONFIG_E1000 is not set\nCONFIG_NR_CPUS=4\nCONFIG_LOCALVERSION=\"-san \\\"x\\\"\"\n  CONFIG_FW_LOADER=m  \n",
    );
    let reqs = parse_fragment(&p, "f.config").expect("parse");
    assert_eq!(
        reqs,
        vec![
            req("CONFIG_E1000", "n", "f.config:1"),
            req("CONFIG_NR_CPUS", "4", "f.config:2"),
            req("CONFIG_LOCALVERSION", "\"-san \\\"x\\\"\"", "f.config:3"),
            req("CONFIG_FW_LOADER", "m", "f.config:4"),
        ]
    );
}

#[test]
fn option_missing_from_kconfig_says_so() {
    let p = problems(
        FINAL,
        &[req("CONFIG_SQUASHFS_ZSTD", "y", "fs.config:9")],
        &[],
    );
    assert_eq!(
        p,
        vec![
            "CONFIG_SQUASHFS_ZSTD=y requested by fs.config:9 was dropped: no such option in this kernel \
             (no `config` entry in any Kconfig file)"
        ]
    );
}

#[test]
fn option_of_another_architecture_says_so() {
    let p = problems(FINAL, &[req("CONFIG_ARM_AMBA_ONLY", "y", "recipe")], &[]);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].ends_with("was dropped: defined only for another architecture (arch/arm/Kconfig:4)"),
        "{}",
        p[0]
    );
}

#[test]
fn choice_member_names_the_chosen_one() {
    let p = problems(FINAL, &[req("CONFIG_HZ_1000", "y", "recipe")], &[]);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("it is part of a choice and HZ_250 was chosen instead (init/Kconfig:28)"),
        "{}",
        p[0]
    );
}

#[test]
fn option_without_prompt_is_explained() {
    let p = problems(
        FINAL,
        &[req("CONFIG_GENERIC_ALLOCATOR", "y", "recipe")],
        &[],
    );
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("it has no prompt, so only a default or a select can set it"),
        "{}",
        p[0]
    );
    let p = problems(FINAL, &[req("CONFIG_HAVE_PCI", "n", "recipe")], &[]);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(
            "CONFIG_HAVE_PCI=n requested by recipe is y: selected by X86=y (arch/x86/Kconfig:3)"
        ),
        "{}",
        p[0]
    );
}

#[test]
fn hidden_prompt_names_its_condition() {
    let cfg = FINAL.replace("CONFIG_EXPERT=y", "# CONFIG_EXPERT is not set");
    let p = problems(&cfg, &[req("CONFIG_SYSFS_SYSCALL", "y", "recipe")], &[]);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("its prompt is hidden: visible if EXPERT, and EXPERT is not set"),
        "{}",
        p[0]
    );
    let p = problems(&cfg, &[req("CONFIG_FUTEX", "n", "recipe")], &[]);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].contains("it has no visible prompt, so it cannot be turned off"),
        "{}",
        p[0]
    );
}

#[test]
fn string_and_number_values_are_compared_and_explained() {
    let mut opts = BTreeMap::new();
    opts.insert("CONFIG_LOCALVERSION".to_string(), "-san".to_string());
    opts.insert("CONFIG_NR_CPUS".to_string(), "128".to_string());
    let p = problems(FINAL, &requests_from_recipe(&opts), &[]);
    assert_eq!(
        p,
        vec![
            "CONFIG_LOCALVERSION=\"-san\" requested by recipe became \"\": Kconfig did not accept the \
             value for this string option (init/Kconfig:1)",
            "CONFIG_NR_CPUS=128 requested by recipe became 1: Kconfig did not accept the value for \
             this int option: range 1 64 (init/Kconfig:9)",
        ]
    );
}

#[test]
fn every_problem_is_one_line_of_the_error() {
    let reqs = vec![
        req("CONFIG_SQUASHFS", "y", "fs.config:1"),
        req("CONFIG_NET", "m", "fs.config:2"),
        req("CONFIG_NOPE", "y", "fs.config:3"),
    ];
    let forbid = vec!["CONFIG_FUTEX".to_string()];
    let err = verify(FINAL, &reqs, &forbid, Some(&tree())).expect_err("problems");
    assert_eq!(err.problems.len(), 4);
    let text = err.to_string();
    assert_eq!(text.lines().count(), 4, "{text}");
    for (line, opt) in text.lines().zip([
        "CONFIG_SQUASHFS=y",
        "CONFIG_NET=m",
        "CONFIG_NOPE=y",
        "CONFIG_FUTEX is forbidden",
    ]) {
        assert!(line.starts_with(opt), "{line}");
    }
}

#[test]
fn without_a_source_tree_problems_are_still_reported() {
    let reqs = vec![
        req("CONFIG_SQUASHFS", "y", "fs.config:3"),
        req("CONFIG_CRC32", "m", "recipe"),
    ];
    let err = verify(FINAL, &reqs, &[], None).expect_err("problems");
    assert_eq!(
        err.problems,
        vec![
            "CONFIG_SQUASHFS=y requested by fs.config:3 was dropped",
            "CONFIG_CRC32=m requested by recipe became y"
        ]
    );
    let missing = tree().join("no-such-dir");
    let err = verify(FINAL, &reqs, &[], Some(&missing)).expect_err("problems");
    assert_eq!(err.problems.len(), 3);
    assert!(
        err.problems[2].starts_with("note: no explanations: cannot list"),
        "{}",
        err.problems[2]
    );
}

#[test]
fn merged_config_carries_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frag = write_fragment(
        dir.path(),
        "a.config",
        "CONFIG_MISC_FILESYSTEMS=y\nCONFIG_SQUASHFS=m\n# CONFIG_NET is not set\n",
    );
    let mut reqs = parse_fragment(&frag, "a.config").expect("parse");
    let mut opts = BTreeMap::new();
    opts.insert("CONFIG_SQUASHFS".to_string(), "y".to_string());
    opts.insert("CONFIG_LOCALVERSION".to_string(), "-san".to_string());
    reqs.extend(requests_from_recipe(&opts));
    let merged = merge(FINAL, &reqs);
    let cfg = parse_config(&merged);
    assert_eq!(cfg.get("CONFIG_SQUASHFS").map(String::as_str), Some("y"));
    assert_eq!(
        cfg.get("CONFIG_MISC_FILESYSTEMS").map(String::as_str),
        Some("y")
    );
    assert_eq!(cfg.get("CONFIG_NET").map(String::as_str), Some("n"));
    assert_eq!(
        cfg.get("CONFIG_LOCALVERSION").map(String::as_str),
        Some("\"-san\"")
    );
    assert!(merged.contains("\n# CONFIG_NET is not set\n"), "{merged}");
    assert_eq!(merged.matches("CONFIG_SQUASHFS").count(), 1, "{merged}");
    assert_eq!(verify(&merged, &reqs, &[], Some(&tree())), Ok(()));
    // Stable: merging again changes nothing.
    assert_eq!(merge(&merged, &reqs), merged);
}

#[test]
fn index_reads_every_kconfig_file_and_skips_help_text() {
    let ix = KconfigIndex::build(&tree()).expect("index");
    assert_eq!(ix.file_count(), 10);
    assert!(ix.defines("SQUASHFS"));
    assert!(ix.defines("CONFIG_E1000_NAPI"));
    assert!(ix.defines("SYSFS_SYSCALL"));
    assert!(!ix.defines("NOT_A_SYMBOL"));
}

#[test]
fn odd_kconfig_syntax_never_panics() {
    let ix = KconfigIndex::from_texts([
        ("Kconfig", "config A\n\tbool \"a\"\n\tdepends on $(success,false) && B && (C\nendif\nendmenu\nconfig\nif\n"),
        ("x/Kconfig", "config B\n\tbool \"b\n\tdepends on @@@ \\\n"),
    ]);
    let cfg = parse_config("# CONFIG_B is not set\n");
    let why = ix.explain("CONFIG_A", "y", None, &cfg);
    assert!(why.contains("depends on"), "{why}");
    let why = ix.explain("CONFIG_B", "y", None, &cfg);
    assert!(!why.is_empty());
}
