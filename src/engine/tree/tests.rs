use super::*;

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn the_manifest_is_sorted_and_hashes_kinds_sizes_and_content() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    put(r, "b/y", "why\n");
    put(r, "a-c", "dash\n");
    put(r, "a/x", "ex\n");
    put(r, ".git/HEAD", "ref\n");
    put(r, "sub/.git", "gitdir: x\n");
    std::fs::create_dir_all(r.join("empty")).unwrap();
    std::fs::set_permissions(r.join("b/y"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("../a/x", r.join("b/l")).unwrap();
    let m = hash_dir(r).unwrap();
    let text = String::from_utf8(m.to_bytes()).unwrap();
    let sha = |s: &str| crate::util::hash::sha256_bytes(s.as_bytes());
    assert_eq!(
        text,
        format!(
            "sanforge-tree-v1\nf 5 {} a-c\nf 3 {} a/x\nl 6 {} b/l\nx 4 {} b/y\n",
            sha("dash\n"),
            sha("ex\n"),
            sha("../a/x"),
            sha("why\n")
        )
    );
    assert_eq!(m.hash().hex(), sha(&text));
    assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    assert_eq!(m.top_level(), vec!["a-c", "a/", "b/"]);
    // A copy has the same tree hash, whatever its modes and location.
    let c = tempfile::tempdir().unwrap();
    let copied = copy_dir(r, &c.path().join("t")).unwrap();
    assert_eq!(copied, m);
    assert!(!c.path().join("t/.git").exists() && !c.path().join("t/empty").exists());
    assert_eq!(hash_dir(&c.path().join("t")).unwrap(), m);
}

#[test]
fn first_difference_names_the_path() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    put(r, "a", "1");
    put(r, "m/x", "2");
    put(r, "z", "3");
    let m = hash_dir(r).unwrap();
    put(r, "m/x", "22");
    let d = m.first_difference(&hash_dir(r).unwrap()).unwrap();
    assert_eq!(d.path, "m/x");
    assert!(
        d.what.starts_with("content differs (expected 1 bytes"),
        "{d}"
    );
    std::fs::remove_file(r.join("m/x")).unwrap();
    let d = m.first_difference(&hash_dir(r).unwrap()).unwrap();
    assert_eq!(d.to_string(), "m/x: missing (a file in the expected tree)");
    put(r, "m/x", "2");
    put(r, "b", "new");
    let d = m.first_difference(&hash_dir(r).unwrap()).unwrap();
    assert_eq!(d.to_string(), "b: not in the expected tree (a file here)");
    std::fs::remove_file(r.join("b")).unwrap();
    assert_eq!(m.first_difference(&hash_dir(r).unwrap()), None);
}

#[test]
fn tree_hashes_parse() {
    let h = format!("tree-v1:{}", "a".repeat(64));
    assert_eq!(TreeHash::parse(&h).unwrap().hex(), "a".repeat(64));
    for bad in [
        "",
        "tree-v1:",
        "a".repeat(64).as_str(),
        "tree-v2:00",
        &format!("tree-v1:{}", "A".repeat(64)),
    ] {
        assert!(
            TreeHash::parse(bad)
                .unwrap_err()
                .contains("expected `tree-v1:`"),
            "{bad}"
        );
    }
}
