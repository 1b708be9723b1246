//! The kernel matrix on a throw-away project with two fake kernel trees: `[kernel]`
//! (6.1) and a `[kernel.matrix]` entry (6.12). `build --kernel`, `sanforge matrix
//! --no-boot` and its table, per-kernel cache keys (one kernel's change never
//! rebuilds the other), per-kernel lock entries, recipe errors.

mod common;

use common::project::{text, Project, FAKE_MAKEFILE, KCONFIG};
use serde_json::Value;

const MATRIX: &str = r#"name = "6.1"

[kernel.matrix]
"6.12" = { source = { path = "fake-linux-612" }, fragments = ["base.config", "extra612.config"] }
"#;

/// The fake project plus a second fake kernel tree (release 6.12.0) and a fragment
/// only the 6.12 kernel uses.
fn project(extra_kernel: &str) -> Project {
    let p = Project::new();
    let dir = p.root().join("fake-linux-612");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Makefile"),
        FAKE_MAKEFILE.replace("REL := 6.1.0", "REL := 6.12.0"),
    )
    .unwrap();
    std::fs::write(dir.join("Kconfig"), KCONFIG).unwrap();
    std::fs::write(
        p.root().join("kernel-configs/extra612.config"),
        "CONFIG_MODULES=y\n",
    )
    .unwrap();
    p.write_recipe(extra_kernel);
    p
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &std::process::Output) -> Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// kernel name → the stages that ran, from `matrix --no-boot --json`.
fn ran(p: &Project) -> Vec<(String, Vec<String>)> {
    let m = json(&p.run(&["matrix", "recipes/test.toml", "--no-boot", "--json"]));
    m["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kernel"].as_str().unwrap().to_string(),
                k["ran"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

fn plan_keys(p: &Project, extra: &[&str]) -> (String, String) {
    let mut args = vec!["plan", "recipes/test.toml", "--json"];
    args.extend_from_slice(extra);
    let plan = json(&p.run(&args));
    let key = |stage: &str| {
        plan.as_array()
            .unwrap()
            .iter()
            .find(|e| e["stage"] == stage)
            .unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (key("kernel"), key("outputs"))
}

#[test]
fn matrix_builds_each_kernel_and_prints_the_table() {
    let p = project(MATRIX);
    let o = p.run(&["matrix", "recipes/test.toml", "--no-boot"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("KERNEL") && lines[0].contains("BOOT-TO-READY"),
        "{out}"
    );
    assert!(lines[1].starts_with("6.1 (default)  6.1.0-t "), "{out}");
    assert!(lines[2].starts_with("6.12 "), "{out}");
    assert!(lines[2].contains("6.12.0-t"), "{out}");
    for l in &lines[1..3] {
        assert!(l.contains(" 4/4 "), "{out}");
        assert!(l.contains(" MiB "), "{out}");
        assert!(l.contains(" skipped "), "{out}");
    }
    // The userland does not depend on the kernel: 6.12 reuses the one 6.1 built.
    assert!(
        lines[1].ends_with(" kernel,userland,rootfs,outputs"),
        "{out}"
    );
    assert!(lines[2].ends_with(" kernel,rootfs,outputs"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    // Each kernel has its own output directory.
    let m612: Value = serde_json::from_str(
        &std::fs::read_to_string(p.root().join("out/test@6.12/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m612["kernel"]["release"], "6.12.0-t");
    let m61: Value = serde_json::from_str(
        &std::fs::read_to_string(p.root().join("out/test/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m61["kernel"]["release"], "6.1.0-t");
    assert_ne!(m61["keys"]["kernel"], m612["keys"]["kernel"]);
    // The 6.12 build pins its own source in the manifest, under the input name `kernel`.
    assert_ne!(
        m61["kernel"]["source-sha256"],
        m612["kernel"]["source-sha256"]
    );

    // JSON: sizes, stages, boot skipped; nothing rebuilds the second time.
    let m = json(&p.run(&["matrix", "recipes/test.toml", "--no-boot", "--json"]));
    let k = m["kernels"].as_array().unwrap();
    assert_eq!(k.len(), 2);
    assert_eq!(k[1]["kernel"], "6.12");
    assert_eq!(k[1]["stages-passed"], 4);
    assert_eq!(k[1]["boot"]["status"], "skipped");
    assert!(k[1]["vmlinuz-bytes"].as_u64().unwrap() > 0);
    assert!(
        k.iter().all(|r| r["ran"].as_array().unwrap().is_empty()),
        "{m}"
    );

    // --out DIR: one directory per kernel under it.
    let o = p.run(&["matrix", "recipes/test.toml", "--no-boot", "--out", "mx"]);
    assert!(o.status.success(), "{}", text(&o));
    for k in ["6.1", "6.12"] {
        assert!(p.root().join("mx").join(k).join("vmlinuz").is_file(), "{k}");
    }
}

#[test]
fn each_kernel_has_its_own_cache_keys() {
    let p = project("");
    let (k0, o0) = plan_keys(&p, &[]);
    // Adding a matrix entry (and naming the default) changes no key of the default build.
    p.write_recipe(MATRIX);
    assert_eq!(plan_keys(&p, &[]), (k0.clone(), o0.clone()));
    assert_eq!(plan_keys(&p, &["--kernel", "6.1"]), (k0.clone(), o0));
    let (k612, _) = plan_keys(&p, &["--kernel", "6.12"]);
    assert_ne!(k0, k612);
    let plan = stdout(&p.run(&["plan", "recipes/test.toml"]));
    assert!(plan.contains("kernel matrix"), "{plan}");
    assert!(
        plan.lines()
            .any(|l| l.starts_with("6.12 ") && l.contains("fake-linux-612")),
        "{plan}"
    );

    let all = ["kernel", "userland", "rootfs", "outputs"];
    assert_eq!(
        ran(&p),
        [
            (
                "6.1".to_string(),
                all.iter().map(|s| s.to_string()).collect()
            ),
            (
                "6.12".to_string(),
                vec!["kernel".to_string(), "rootfs".into(), "outputs".into()]
            )
        ],
        "the userland is shared between kernels"
    );
    // A fragment only 6.12 uses changes: only 6.12's kernel (and what depends on it) rebuilds.
    std::fs::write(
        p.root().join("kernel-configs/extra612.config"),
        "CONFIG_MODULES=y\nCONFIG_PRINTK_TIME=y\n",
    )
    .unwrap();
    let r = ran(&p);
    assert!(r[0].1.is_empty(), "{r:?}");
    assert_eq!(r[1].1, ["kernel", "rootfs", "outputs"], "{r:?}");
    // An option override in the matrix entry: same.
    p.write_recipe(&MATRIX.replace(
        "fragments = [",
        "options = { CONFIG_PRINTK_TIME = \"y\" }, fragments = [",
    ));
    let r = ran(&p);
    assert!(r[0].1.is_empty(), "{r:?}");
    assert_eq!(r[1].1, ["kernel", "rootfs", "outputs"], "{r:?}");
    // And a change of the default kernel that 6.12 overrides (its options) leaves 6.12
    // cached.
    p.write_recipe(
        &MATRIX
            .replace(
                "fragments = [",
                "options = { CONFIG_PRINTK_TIME = \"y\" }, fragments = [",
            )
            .replace(
                "name = \"6.1\"",
                "name = \"6.1\"\noptions = { CONFIG_64BIT = \"y\" }",
            ),
    );
    let r = ran(&p);
    assert_eq!(r[0].1, ["kernel", "rootfs", "outputs"], "{r:?}");
    assert!(r[1].1.is_empty(), "{r:?}");

    // `build --kernel` uses the same keys and directory as the matrix.
    let o = p.run(&["build", "recipes/test.toml", "--kernel", "6.12"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = stdout(&o);
    assert!(
        s.contains("out/test@6.12") && s.contains("ran: nothing"),
        "{s}"
    );
}

#[test]
fn a_failing_kernel_does_not_stop_the_others() {
    let p = project(MATRIX);
    // SQUASHFS needs MISC_FILESYSTEMS: the fake Kconfig drops it, verification fails.
    std::fs::write(
        p.root().join("kernel-configs/extra612.config"),
        "CONFIG_SQUASHFS=y\n",
    )
    .unwrap();
    let o = p.run(&["matrix", "recipes/test.toml", "--no-boot"]);
    assert!(!o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("6.1 (default)") && lines[1].contains(" 4/4 "),
        "{out}"
    );
    assert!(
        lines[2].starts_with("6.12 ") && lines[2].contains("0/4 kernel failed"),
        "{out}"
    );
    assert!(
        out.contains("6.12: stage kernel failed") && out.contains("MISC_FILESYSTEMS"),
        "{out}"
    );
    assert!(p.root().join("out/test/vmlinuz").is_file());
    assert!(!p.root().join("out/test@6.12").exists());
}

#[test]
fn unknown_kernel_name_lists_the_known_ones() {
    let p = project(MATRIX);
    for args in [
        vec!["build", "recipes/test.toml", "--kernel", "5.10"],
        vec!["plan", "recipes/test.toml", "--kernel", "5.10"],
    ] {
        let o = p.run(&args);
        assert!(!o.status.success(), "{}", text(&o));
        let e = stderr(&o);
        assert!(
            e.contains("test.toml: no kernel named `5.10`: expected one of `6.1`, `6.12`"),
            "{e}"
        );
    }
}

#[test]
fn plain_build_does_not_fetch_the_matrix_kernels() {
    // A matrix kernel whose source cannot be fetched: the default build never tries.
    let p = project(&format!(
        "[kernel.matrix]\n\"6.12\" = {{ source = {{ url = \"file:///nonexistent/linux-6.12.tar.xz\", sha256 = \"{}\" }} }}\n",
        "a".repeat(64)
    ));
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    // The default kernel's name is `default` for a path source.
    let o = p.run(&["build", "recipes/test.toml", "--kernel", "6.12"]);
    assert!(!o.status.success(), "{}", text(&o));
    let e = stderr(&o);
    assert!(
        e.contains("stage kernel failed") && e.contains("nonexistent"),
        "{e}"
    );
    let o = p.run(&["build", "recipes/test.toml", "--kernel", "default"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn recipe_errors_name_the_file_the_entry_and_what_was_expected() {
    let cases = [
        (
            "name = \"6.1\"\n[kernel.matrix]\n\"6.1\" = { source = { path = \"fake-linux-612\" } }\n",
            "kernel matrix entry `6.1`: the default kernel ([kernel]) is already named `6.1`",
        ),
        (
            "[kernel.matrix]\n\"6.12\" = { fragments = [\"base.config\"] }\n",
            "kernel matrix entry `6.12`: expected a `source`",
        ),
        (
            "[kernel.matrix]\n\"6.12\" = { source = { path = \"fake-linux-612\" }, fragments = [\"nope.config\"] }\n",
            "kernel matrix entry `6.12`: kernel fragment `nope.config` not found",
        ),
        (
            "[kernel.matrix]\n\"6.12\" = { source = { path = \"fake-linux-612\" }, options = { PRINTK = \"y\" } }\n",
            "kernel matrix entry `6.12`: kernel option `PRINTK`: expected a name like CONFIG_FOO",
        ),
        (
            "[kernel.matrix]\n\"6.12\" = { source = { debian = \"linux-source-6.12\" } }\n",
            "kernel matrix entry `6.12`: source: a `debian` source needs `version`",
        ),
        (
            "[kernel.matrix]\n\"a/b\" = { source = { path = \"fake-linux-612\" } }\n",
            "kernel matrix entry `a/b`: expected a name of letters",
        ),
        (
            "[kernel.matrix]\n\"6.12\" = { source = { path = \"fake-linux-612\" }, cmdline = \"x\" }\n",
            "unknown field `cmdline`",
        ),
    ];
    let p = project("");
    for (extra, want) in cases {
        p.write_recipe(extra);
        let o = p.run(&["plan", "recipes/test.toml"]);
        assert!(!o.status.success(), "{extra}: {}", text(&o));
        let e = stderr(&o);
        assert!(e.contains("recipes/test.toml:"), "{extra}: {e}");
        assert!(e.contains(want), "{extra}: want `{want}` in {e}");
    }
    // The entry's line is named.
    p.write_recipe("[kernel.matrix]\n\"6.12\" = { fragments = [] }\n");
    let e = stderr(&p.run(&["plan", "recipes/test.toml"]));
    let line = std::fs::read_to_string(p.recipe())
        .unwrap()
        .lines()
        .position(|l| l.starts_with("\"6.12\""))
        .unwrap()
        + 1;
    assert!(e.contains(&format!("test.toml:{line}:1:")), "{e}");
}

#[test]
fn lock_pins_every_kernel_and_locked_builds_check_them() {
    let p = project(MATRIX);
    let o = p.run(&["lock", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let lock = std::fs::read_to_string(p.root().join("recipes/test.lock")).unwrap();
    assert!(
        lock.contains("name = \"kernel\"\nkind = \"path\"\norigin = \"fake-linux\""),
        "{lock}"
    );
    assert!(
        lock.contains("name = \"kernel@6.12\"\nkind = \"path\"\norigin = \"fake-linux-612\""),
        "{lock}"
    );
    let o = p.run(&["build", "recipes/test.toml", "--locked", "--kernel", "6.12"]);
    assert!(o.status.success(), "{}", text(&o));
    // The 6.12 tree changes after locking: its entry no longer matches.
    std::fs::write(p.root().join("fake-linux-612/README"), "changed").unwrap();
    std::fs::write(
        p.root().join("kernel-configs/extra612.config"),
        "CONFIG_PRINTK_TIME=y\n",
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml", "--locked", "--kernel", "6.12"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("kernel@6.12") && e.contains("sanforge lock"),
        "{e}"
    );
    // A matrix entry pointing elsewhere makes the lock stale for every build.
    p.write_recipe(&MATRIX.replace("fake-linux-612", "fake-linux"));
    let o = p.run(&["build", "recipes/test.toml", "--locked"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("stale entry `kernel@6.12`"),
        "{e}"
    );
}
