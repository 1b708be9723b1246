//! Issue #10, class 1: the builder never reads or writes outside its own directories.
//! Every path-bearing field of a recipe and of a node config is tried with `..`, an
//! absolute path and a symlink that points outside the project: each is refused
//! naming the field and the value, and nothing outside the temporary project (nor
//! the project, its cache blobs or outputs) changes. An explicit
//! `allow-outside-project` opts in; `[userland] links` and `keep` stay inside the
//! image; a template symlink cannot bake a host file into the image.

mod common;

use common::project::text;
use common::safety::World;
use sanforge::config::recipe::Recipe;

/// The recipe's lines that the cases rewrite.
const SRC: &str = "source = { path = \"fake-linux\" }";
const OVERLAYS: &str = "overlays = [\"overlays/base\"]";
const FRAGMENTS: &str = "fragments = [\"base.config\"]";
const NODECFG: &str = "config = \"recipes/nodes/node.toml\"";
const KLAST: &str = "localversion = \"-t\"";

/// How a case spells the hostile path: `..` out of the project, absolute, or a
/// symlink inside the project that leads out.
#[derive(Clone, Copy, Debug)]
enum Kind {
    DotDot,
    Absolute,
    Symlink,
}

/// The recipe value for `target` (a path under `outside/`) spelled as `kind`; for a
/// symlink, creates `evil-<n>` (or `kernel-configs/evil-<n>`) in the project.
fn spell(w: &World, kind: Kind, target: &str, n: usize, in_configs: bool) -> String {
    match kind {
        Kind::DotDot => format!("../outside/{target}"),
        Kind::Absolute => format!("{}/{target}", w.out_s()),
        Kind::Symlink => {
            let name = format!("evil-{n}");
            let at = if in_configs {
                w.root().join("kernel-configs").join(&name)
            } else {
                w.root().join(&name)
            };
            std::os::unix::fs::symlink(w.outside.join(target), at).unwrap();
            name
        }
    }
}

/// The words the refusal must contain for `kind`.
fn how(kind: Kind) -> &'static str {
    match kind {
        Kind::DotDot => "climbs out of the project directory",
        Kind::Absolute => "is an absolute path outside the project directory",
        Kind::Symlink => "through a symlink",
    }
}

/// One recipe field: its name in the error, and how to put a value into the recipe.
struct Field {
    name: &'static str,
    /// `outside/` entry the value points at.
    target: &'static str,
    in_configs: bool,
    edit: fn(&World, &str),
}

fn fields() -> Vec<Field> {
    vec![
        Field {
            name: "overlay",
            target: "victim-dir",
            in_configs: false,
            edit: |w, v| w.sub(OVERLAYS, &format!("overlays = [\"{v}\"]")),
        },
        Field {
            name: "kernel source: path",
            target: "victim-dir",
            in_configs: false,
            edit: |w, v| w.sub(SRC, &format!("source = {{ path = \"{v}\" }}")),
        },
        Field {
            name: "source `fw`: path",
            target: "victim",
            in_configs: false,
            edit: |w, v| append(w, &format!("\n[sources.fw]\npath = \"{v}\"\n")),
        },
        Field {
            name: "kernel base",
            target: "victim",
            in_configs: false,
            edit: |w, v| w.sub("base = \"tinyconfig\"", &format!("base = \"{v}\"")),
        },
        Field {
            name: "kernel fragment",
            target: "victim",
            in_configs: true,
            edit: |w, v| w.sub(FRAGMENTS, &format!("fragments = [\"{v}\"]")),
        },
        Field {
            name: "patch",
            target: "victim",
            in_configs: false,
            edit: |w, v| w.sub(KLAST, &format!("{KLAST}\npatches = [\"{v}\"]")),
        },
        Field {
            name: "node config",
            target: "node.toml",
            in_configs: false,
            edit: |w, v| w.sub(NODECFG, &format!("config = \"{v}\"")),
        },
        Field {
            name: "node configs",
            target: "victim-dir",
            in_configs: false,
            edit: |w, v| w.sub(NODECFG, &format!("{NODECFG}\nconfigs = [\"{v}\"]")),
        },
        Field {
            name: "scst source: path",
            target: "victim-dir",
            in_configs: false,
            edit: |w, v| {
                append(
                    w,
                    &format!("\n[scst]\nsource = {{ path = \"{v}\" }}\nwaive-firmware = [\"ql2400_fw.bin\"]\n"),
                )
            },
        },
        Field {
            name: "firmware `ql2500_fw.bin`: path",
            target: "victim",
            in_configs: false,
            edit: |w, v| {
                append(
                    w,
                    &format!("\n[scst]\nsource = {{ path = \"fake-linux\" }}\nfirmware = [{{ name = \"ql2500_fw.bin\", path = \"{v}\" }}]\n"),
                )
            },
        },
        Field {
            name: "kernel matrix entry `6.12`: source: path",
            target: "victim-dir",
            in_configs: false,
            edit: |w, v| {
                append(
                    w,
                    &format!("\n[kernel.matrix]\n\"6.12\" = {{ source = {{ path = \"{v}\" }} }}\n"),
                )
            },
        },
        Field {
            name: "kernel matrix entry `6.12`: kernel fragment",
            target: "victim",
            in_configs: true,
            edit: |w, v| {
                append(
                    w,
                    &format!("\n[kernel.matrix]\n\"6.12\" = {{ source = {{ path = \"fake-linux\" }}, fragments = [\"{v}\"] }}\n"),
                )
            },
        },
        Field {
            name: "kernel matrix entry `6.12`: patch",
            target: "victim",
            in_configs: false,
            edit: |w, v| {
                append(
                    w,
                    &format!("\n[kernel.matrix]\n\"6.12\" = {{ source = {{ path = \"fake-linux\" }}, patches = [\"{v}\"] }}\n"),
                )
            },
        },
        Field {
            name: "kernel matrix entry `6.12`: kernel base",
            target: "victim",
            in_configs: false,
            edit: |w, v| {
                append(
                    w,
                    &format!("\n[kernel.matrix]\n\"6.12\" = {{ source = {{ path = \"fake-linux\" }}, base = \"{v}\" }}\n"),
                )
            },
        },
    ]
}

fn append(w: &World, text: &str) {
    let p = w.project.recipe();
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, format!("{t}{text}")).unwrap();
}

fn load(w: &World) -> Result<Recipe, String> {
    let p = w.project.recipe();
    let t = std::fs::read_to_string(&p).unwrap();
    Recipe::parse(&p, &t).map_err(|e| e.to_string())
}

#[test]
fn every_path_field_refuses_dotdot_absolute_and_symlinks_out() {
    let mut n = 0;
    for f in fields() {
        for kind in [Kind::DotDot, Kind::Absolute, Kind::Symlink] {
            n += 1;
            let w = World::new();
            let before = w.snapshot();
            let value = spell(&w, kind, f.target, n, f.in_configs);
            (f.edit)(&w, &value);
            let e = load(&w).expect_err(&format!("{} = {value} ({kind:?}) was accepted", f.name));
            // The field, the value as written, where it leads and the file:line.
            assert!(
                e.contains(f.name),
                "{} ({kind:?}): field not named: {e}",
                f.name
            );
            assert!(
                e.contains(&format!("`{value}`"))
                    || e.contains(&format!("`kernel-configs/{value}`")),
                "{} ({kind:?}): value not named: {e}",
                f.name
            );
            assert!(e.contains(how(kind)), "{} ({kind:?}): {e}", f.name);
            assert!(
                e.contains("test.toml:"),
                "{} ({kind:?}): file not named: {e}",
                f.name
            );
            // The CLI says the same and changes nothing (plan reads every input).
            let o = w.project.run(&["plan", "recipes/test.toml"]);
            assert!(!o.status.success(), "{} ({kind:?}): {}", f.name, text(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains(f.name),
                "{}",
                text(&o)
            );
            let mut before = before;
            // The symlink and the recipe edit are the setup, not the command's doing.
            before.1 = w.snapshot().1;
            let o = w.project.run(&["build", "recipes/test.toml"]);
            assert!(!o.status.success(), "{} ({kind:?}): {}", f.name, text(&o));
            w.assert_unchanged(&before, &format!("build with {} = {value}", f.name));
        }
    }
}

#[test]
fn allow_outside_project_opts_in_to_the_listed_directories_only() {
    let w = World::new();
    std::fs::create_dir_all(w.outside.join("linux")).unwrap();
    for f in ["Makefile", "Kconfig"] {
        std::fs::copy(
            w.root().join("fake-linux").join(f),
            w.outside.join("linux").join(f),
        )
        .unwrap();
    }
    let t = std::fs::read_to_string(w.project.recipe()).unwrap();
    std::fs::write(
        w.project.recipe(),
        format!("allow-outside-project = [\"../outside/linux\"]\n{t}"),
    )
    .unwrap();
    w.sub(SRC, "source = { path = \"../outside/linux\" }");
    let r = load(&w).unwrap();
    assert_eq!(r.allowed_outside.len(), 1);
    let o = w.project.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    // The manifest records the path as written.
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.root().join("out/test/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["inputs"][0]["origin"], "../outside/linux");
    // Only that directory: its sibling is still refused.
    w.sub(OVERLAYS, "overlays = [\"../outside/victim-dir\"]");
    let e = load(&w).unwrap_err();
    assert!(e.contains("overlay `../outside/victim-dir`"), "{e}");
    // A listed directory must exist.
    w.sub(
        "allow-outside-project = [\"../outside/linux\"]",
        "allow-outside-project = [\"../outside/nope\"]",
    );
    let e = load(&w).unwrap_err();
    assert!(
        e.contains("allow-outside-project `../outside/nope`") && e.contains("test.toml:1:"),
        "{e}"
    );
}

#[test]
fn recipe_name_is_a_plain_name() {
    for bad in ["..", ".", ".hidden", "a/b", "../../etc", ""] {
        let w = World::new();
        w.sub("name = \"test\"", &format!("name = \"{bad}\""));
        let e = load(&w).unwrap_err();
        assert!(
            e.contains(&format!("recipe name `{bad}` is invalid")) && e.contains("test.toml:4:"),
            "{bad}: {e}"
        );
        let before = w.snapshot();
        let o = w.project.run(&["build", "recipes/test.toml"]);
        assert!(!o.status.success(), "{}", text(&o));
        w.assert_unchanged(&before, &format!("name = {bad}"));
    }
}

#[test]
fn userland_links_and_keep_stay_inside_the_image() {
    let cases: &[(&str, &str)] = &[
        (
            "links = { \"../../../../../../outside/victim\" = \"busybox\" }",
            "link name `../../../../../../outside/victim` climbs out of the image root",
        ),
        (
            "links = { \"/../../../../../../outside/victim\" = \"busybox\" }",
            "climbs out of the image root",
        ),
        (
            "links = { \"/bin/sh\" = \"../../../../../../outside/victim\" }",
            "the target `../../../../../../outside/victim` of `/bin/sh` climbs out",
        ),
        ("links = { \"/\" = \"busybox\" }", "link name `/`"),
        ("links = { \"/bin/sh\" = \"\" }", "empty target"),
        (
            "keep = [\"/usr/../../../etc/shadow\"]",
            "[userland] keep: `/usr/../../../etc/shadow` climbs out",
        ),
    ];
    for (line, want) in cases {
        let w = World::new();
        w.sub("packages = {}", &format!("packages = {{}}\n{line}"));
        let e = load(&w).unwrap_err();
        assert!(e.contains(want) && e.contains("test.toml:"), "{line}: {e}");
        let before = w.snapshot();
        let o = w.project.run(&["build", "recipes/test.toml"]);
        assert!(!o.status.success(), "{}", text(&o));
        w.assert_unchanged(&before, line);
    }
    // Links that stay inside are made, relative ones included.
    let w = World::new();
    w.sub(
        "packages = {}",
        "packages = {}\nlinks = { \"/bin/sh\" = \"busybox\", \"/usr/bin/vi\" = \"../../bin/busybox\", \"/sbin/init\" = \"/init\" }",
    );
    let before = w.snapshot();
    let o = w.project.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    w.assert_outside_unchanged(&before, "links inside the image");
}

#[test]
fn links_are_made_inside_the_tree_even_through_symlinked_directories() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
    std::os::unix::fs::symlink("../../..", root.join("usr/up")).unwrap();
    let p = sanforge::util::paths::resolve_in_root(&root, "etc-link/passwd").unwrap();
    assert_eq!(p, root.join("etc/passwd"));
    let p = sanforge::util::paths::resolve_in_root(&root, "usr/up/usr/up/x").unwrap();
    assert_eq!(p, root.join("x"));
}

#[test]
fn node_config_entries_and_scst_conf_cannot_lead_out() {
    // A node config found in a `configs` directory that links out.
    let w = World::new();
    std::fs::create_dir_all(w.root().join("cluster")).unwrap();
    std::os::unix::fs::symlink(
        w.outside.join("node.toml"),
        w.root().join("cluster/gamma.toml"),
    )
    .unwrap();
    w.sub(NODECFG, &format!("{NODECFG}\nconfigs = [\"cluster\"]"));
    let before = w.snapshot();
    let o = w.project.run(&["build", "recipes/test.toml"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("cluster/gamma.toml") && e.contains("through a symlink"),
        "{}",
        text(&o)
    );
    w.assert_unchanged(&before, "configs with a symlink");

    // The scst.conf a node config names: absolute, `..` and a symlink out.
    for (conf, want) in [
        (
            w.outside.join("victim").display().to_string(),
            "is an absolute path outside the node config's directory",
        ),
        ("../../../outside/victim".to_string(), "`..` is not allowed"),
        ("scst.conf".to_string(), "through a symlink"),
    ] {
        let w = World::new();
        let node = w.root().join("recipes/nodes/node.toml");
        let t = std::fs::read_to_string(&node).unwrap();
        std::fs::write(&node, format!("{t}\n[scst]\nconf = \"{conf}\"\n")).unwrap();
        std::os::unix::fs::symlink(
            w.outside.join("victim"),
            w.root().join("recipes/nodes/scst.conf"),
        )
        .unwrap();
        for args in [
            &["node", "check", "recipes/nodes/node.toml"][..],
            &["plan", "recipes/test.toml"],
        ] {
            let before = w.snapshot();
            let o = w.project.run(args);
            let e = String::from_utf8_lossy(&o.stderr);
            assert!(
                !o.status.success() && e.contains("[scst] conf") && e.contains(want),
                "{conf}: {}",
                text(&o)
            );
            w.assert_unchanged(&before, &format!("[scst] conf = {conf}"));
        }
    }
}

#[test]
fn a_template_that_links_out_is_refused_not_baked() {
    let w = World::new();
    std::os::unix::fs::symlink(
        w.outside.join("victim"),
        w.root().join("overlays/base/etc/stolen.tera"),
    )
    .unwrap();
    let before = w.snapshot();
    let o = w.project.run(&["build", "recipes/test.toml"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("stolen.tera is a symlink"),
        "{}",
        text(&o)
    );
    w.assert_outside_unchanged(&before, "template symlink");
    assert!(!w.root().join("out/test").exists());
}

#[test]
fn special_files_never_hang_the_build() {
    // A fifo as a path source and inside an overlay: refused or reported, not read.
    let w = World::new();
    let fifo = w.root().join("fifo-src");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    w.sub(SRC, "source = { path = \"fifo-src\" }");
    let o = w.project.run(&["plan", "recipes/test.toml"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("not a regular file or a directory"),
        "{}",
        text(&o)
    );

    let w = World::new();
    let pipe = w.root().join("overlays/base/etc/pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap()
        .success());
    let o = w.project.run(&["plan", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = w.project.run(&["build", "recipes/test.toml"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("etc/pipe") && e.contains("fifo"),
        "{}",
        text(&o)
    );
}
