//! Seeded kernel builds on a throw-away project (fake kernel tree): a second config of
//! a built source starts from the first build's tree, never changes it, and is never
//! seeded from another source or when `SANFORGE_KERNEL_SEED=0`. That the result equals
//! a clean build of the real kernel is checked by `benches/kernel-share.sh` (it needs
//! two real kernel builds).

mod common;

use common::project::{text, Project};
use std::path::PathBuf;

const SEEDED: &str = "starting from the build tree of";

fn build(p: &Project, option: &str, seed: &str) -> String {
    p.write_recipe(&format!(
        "options = {{ CONFIG_PRINTK_TIME = \"{option}\" }}"
    ));
    let o = p
        .sanforge()
        .env("SANFORGE_KERNEL_SEED", seed)
        .args(["build", "recipes/test.toml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

/// The kernel entries of the project's cache.
fn entries(p: &Project) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p.cache.join("stages/kernel"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|d| d.join(".complete").is_file())
        .collect();
    v.sort();
    v
}

fn obj_config(entry: &std::path::Path) -> String {
    std::fs::read_to_string(entry.join("src/.sanforge-obj/.config")).unwrap()
}

#[test]
fn a_second_config_starts_from_the_first_build_and_leaves_it_alone() {
    let p = Project::new();
    let first = build(&p, "y", "1");
    assert!(
        !first.contains(SEEDED),
        "nothing to seed from yet:\n{first}"
    );
    let [a] = entries(&p).try_into().unwrap();
    assert!(
        a.join("seed-id").is_file() && obj_config(&a).contains("CONFIG_PRINTK_TIME=y"),
        "the first entry is seedable"
    );

    let second = build(&p, "n", "1");
    assert!(second.contains(SEEDED), "{second}");
    let b = entries(&p).into_iter().find(|e| *e != a).unwrap();
    assert!(!obj_config(&b).contains("CONFIG_PRINTK_TIME=y"), "{b:?}");
    // The seed's object tree was copied, not linked: its config is still its own.
    assert!(obj_config(&a).contains("CONFIG_PRINTK_TIME=y"));
    // Same source identity.
    assert_eq!(
        std::fs::read_to_string(a.join("seed-id")).unwrap(),
        std::fs::read_to_string(b.join("seed-id")).unwrap()
    );
}

#[test]
fn seeding_is_off_with_the_switch_and_never_crosses_sources() {
    let p = Project::new();
    build(&p, "y", "1");
    let off = build(&p, "n", "0");
    assert!(!off.contains(SEEDED), "{off}");

    // Another kernel source (one more file in the tree): a different identity.
    std::fs::write(p.root().join("fake-linux/EXTRA"), "another source\n").unwrap();
    let other = build(&p, "m", "1");
    assert!(
        !other.contains(SEEDED),
        "a changed source must build from scratch:\n{other}"
    );
}
