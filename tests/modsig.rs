//! Modules signed with the owner's key (`[kernel.module-signing]`, issue 16 item 3).
//!
//! The QEMU test builds `tests/fixtures/modsig` (a small kernel with
//! `CONFIG_MODULE_SIG_FORCE`, signed with the fixture's public TEST-ONLY key), checks
//! that every module of the image is signed and that the key stays out of the cache
//! entry and the outputs, then plants a copy of crc7 signed with another key
//! (`keys/foreign-modsign.pem`, by the kernel's own `scripts/sign-file`) and boots:
//! the kernel must refuse it, the init must say why and go on to `ready`, and crc4
//! (signed at build time) must load. The first run builds the small kernel (a few
//! minutes); later runs reuse it from the stage cache. SANFORGE_SKIP_E2E=1 skips it.
//!
//! The other tests run the CLI without a kernel: keygen and the recipe's validation.

mod common;

use common::project::{text, Project};
use common::vm::{show, Vm};
use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/modsig");
const MAGIC: &[u8] = b"~Module signature appended~\n";

fn sanforge_in(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(dir);
    c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
    c.env("SANFORGE_PROGRESS", "plain");
    c.env_remove(sanforge::config::module_signing::KEY_ENV);
    c
}

fn cert_sha256(pem: &Path) -> String {
    let der = sanforge::config::module_signing::check_pem(&std::fs::read_to_string(pem).unwrap())
        .unwrap();
    sanforge::util::hash::sha256_bytes(&der)
}

/// Members of a `.cpio.zst` initramfs, by path.
fn initramfs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let raw = zstd::decode_all(std::fs::File::open(path).unwrap()).unwrap();
    sanforge::commands::verify::parse_newc(&raw)
        .expect("the initramfs is not a newc cpio")
        .into_iter()
        .map(|m| (m.name.to_string(), m.data.to_vec()))
        .collect()
}

fn build(project: &Path, out: &Path) -> String {
    let o = sanforge_in(project)
        .args(["build", "recipes/modsig.toml", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", show(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_module_signed_with_another_key_is_refused_at_boot_and_the_init_says_why() {
    if common::skip_e2e("a_module_signed_with_another_key_is_refused_at_boot_and_the_init_says_why")
    {
        return;
    }
    for tool in ["openssl", "strip", "qemu-system-x86_64"] {
        assert!(
            sanforge::util::tools::which(tool).is_some(),
            "{tool} is not installed (.ci/setup installs it)"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("modsig");
    sanforge::commands::verify::copy_project(Path::new(FIXTURE), &project, &[], 0o022).unwrap();
    let out = tmp.path().join("out/modsig");
    build(&project, &out);

    // The kernel trusts the fixture's certificate and enforces signatures.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let signing = &manifest["kernel"]["module-signing"];
    let test_key = project.join("keys/test-modsign.pem");
    assert_eq!(signing["cert-sha256"], cert_sha256(&test_key), "{signing}");
    assert_eq!(signing["enforce"], true, "{signing}");
    assert_eq!(signing["hash"], "sha256", "{signing}");
    let release = manifest["kernel"]["release"].as_str().unwrap().to_string();

    // Every module of the image is signed; the private key is in no output.
    let members = initramfs(&out.join("initramfs.cpio.zst"));
    let kos: Vec<&(String, Vec<u8>)> = members.iter().filter(|(n, _)| n.ends_with(".ko")).collect();
    assert!(kos.len() >= 2, "modules in the image: {kos:?}");
    for (name, data) in &kos {
        assert!(data.ends_with(MAGIC), "{name} is not signed");
    }
    let key_text = std::fs::read_to_string(&test_key).unwrap();
    let key_line = key_text
        .lines()
        .skip_while(|l| !l.contains("BEGIN PRIVATE KEY"))
        .nth(1)
        .unwrap()
        .to_string();
    for f in sanforge::commands::verify::list_files(&out).unwrap() {
        let bytes = std::fs::read(out.join(&f)).unwrap();
        assert!(
            !bytes
                .windows(key_line.len())
                .any(|w| w == key_line.as_bytes()),
            "the private key is in {f}"
        );
    }
    assert!(
        !members
            .iter()
            .any(|(_, d)| d.windows(key_line.len()).any(|w| w == key_line.as_bytes())),
        "the private key is in the initramfs"
    );
    // The cached kernel tree keeps the certificate, not the key.
    let cache = sanforge::engine::cache::default_root().unwrap();
    let kernel = cache
        .join("stages/kernel")
        .join(manifest["keys"]["kernel"].as_str().unwrap());
    let kdir = kernel.join("build");
    assert!(kdir.join("certs/signing_key.x509").is_file());
    assert!(
        !kdir.join("certs/sanforge-module-signing.pem").exists(),
        "the key stayed in the cached build tree {}",
        kdir.display()
    );

    let run = |c: &mut Command| {
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", show(&o));
    };
    // Signatures are deterministic (RSA PKCS#1 v1.5): crc4 stripped and signed again
    // with the same key, the way the modules stage signs SCST's modules, is the
    // image's crc4 (signed by modules_install), byte for byte.
    let again = tmp.path().join("crc4.ko");
    std::fs::copy(kdir.join("lib/crc4.ko"), &again).unwrap();
    run(Command::new("strip").arg("--strip-debug").arg(&again));
    let recipe =
        sanforge::config::recipe::Recipe::load(&project.join("recipes/modsig.toml")).unwrap();
    sanforge::stages::kernel::signing::sign_module(
        recipe.module_signing.as_ref(),
        &kdir,
        &again,
        &sanforge::util::cmd::Log::none(),
    )
    .unwrap();
    let image_crc4 = &members
        .iter()
        .find(|(n, _)| n.ends_with("/kernel/lib/crc4.ko"))
        .expect("crc4.ko is not in the image")
        .1;
    assert!(
        std::fs::read(&again).unwrap() == *image_crc4,
        "signing crc4 again gave other bytes than the image's"
    );

    // crc7 signed with a stranger's key, by the kernel's own sign-file, laid over
    // the image's copy by an overlay.
    let planted = project
        .join("overlays/planted/lib/modules")
        .join(&release)
        .join("kernel/lib/crc7.ko");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::copy(kdir.join("lib/crc7.ko"), &planted).unwrap();
    run(Command::new("strip").arg("--strip-debug").arg(&planted));
    let foreign = project.join("keys/foreign-modsign.pem");
    run(Command::new(kdir.join("scripts/sign-file"))
        .arg("sha256")
        .arg(&foreign)
        .arg(&foreign)
        .arg(&planted));
    assert!(std::fs::read(&planted).unwrap().ends_with(MAGIC));
    let recipe = project.join("recipes/modsig.toml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        format!("overlays = [\"overlays/planted\"]\n{text}"),
    )
    .unwrap();
    let planted_out = tmp.path().join("out/planted");
    let log = build(&project, &planted_out);
    assert!(
        !log.contains("kernel: compiling"),
        "an overlay rebuilt the kernel: {log}"
    );

    let _vm = Vm(planted_out.clone());
    let o = sanforge_in(&project)
        .arg("run")
        .arg(&planted_out)
        .args(["--until-ready", "--quiet", "--timeout", "300"])
        .output()
        .unwrap();
    let console =
        std::fs::read_to_string(tmp.path().join("out/planted.run/console.log")).unwrap_or_default();
    assert!(
        o.status.success(),
        "the image did not reach ready: {}\nconsole:\n{console}",
        show(&o)
    );
    assert!(
        console.contains("loaded module crc4"),
        "crc4, signed with the image's key, did not load:\n{console}"
    );
    assert!(
        console.contains("module crc7 refused: not signed by the image's module-signing key (module.sig_enforce=1"),
        "no clear report of the refused crc7:\n{console}"
    );
    assert!(
        !console.contains("loaded module crc7"),
        "the foreign crc7 was loaded:\n{console}"
    );
    assert!(console.contains("sanforge-init: ready"), "{console}");
}

#[test]
fn keygen_writes_a_module_signing_key_once_private() {
    use std::os::unix::fs::PermissionsExt;
    assert!(
        sanforge::util::tools::which("openssl").is_some(),
        "openssl is not installed (.ci/setup installs it)"
    );
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("keys/modsign.pem");
    let o = sanforge_in(t.path())
        .args(["keygen", "--module-signing"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show(&o));
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let fp = cert_sha256(&key);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&fp),
        "the fingerprint is not printed: {}",
        show(&o)
    );
    // The kernel's own check: the key's public half is the certificate's.
    let pubkey = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .arg(&key)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", show(&o));
        o.stdout
    };
    assert_eq!(
        pubkey(&["pkey", "-pubout", "-in"]),
        pubkey(&["x509", "-noout", "-pubkey", "-in"])
    );
    let before = std::fs::read(&key).unwrap();
    let o = sanforge_in(t.path())
        .args(["keygen", "--module-signing"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists"),
        "{}",
        show(&o)
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "the key was overwritten"
    );
    // Nothing else left behind (no temporary file).
    let left: Vec<PathBuf> = std::fs::read_dir(key.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, vec![key.clone()]);
}

#[test]
fn the_recipe_names_a_usable_key_and_without_one_nothing_changes() {
    let p = Project::new();
    let kernel_key = |p: &Project| {
        let o = p.run(&["plan", "recipes/test.toml", "--json"]);
        assert!(o.status.success(), "{}", text(&o));
        let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        plan.as_array()
            .unwrap()
            .iter()
            .find(|e| e["stage"] == "kernel")
            .unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let unsigned = kernel_key(&p);
    std::fs::create_dir_all(p.root().join("keys")).unwrap();
    for k in ["test-modsign.pem", "foreign-modsign.pem"] {
        std::fs::copy(
            Path::new(FIXTURE).join("keys").join(k),
            p.root().join("keys").join(k),
        )
        .unwrap();
    }
    p.write_recipe("[kernel.module-signing]\nkey = \"keys/test-modsign.pem\"\n");
    let signed = kernel_key(&p);
    p.write_recipe("[kernel.module-signing]\nkey = \"keys/test-modsign.pem\"\nenforce = true\n");
    let enforced = kernel_key(&p);
    p.write_recipe("[kernel.module-signing]\nkey = \"keys/foreign-modsign.pem\"\n");
    let other = kernel_key(&p);
    assert!(
        [&signed, &enforced, &other].iter().all(|k| **k != unsigned)
            && signed != enforced
            && signed != other,
        "keys: unsigned {unsigned}, signed {signed}, enforced {enforced}, other key {other}"
    );
    p.write_recipe("");
    assert_eq!(
        kernel_key(&p),
        unsigned,
        "a recipe without a key changed key"
    );

    // Bad keys are refused at the value, saying what is expected.
    let refused = |table: &str, want: &str| {
        p.write_recipe(table);
        let o = p.run(&["plan", "recipes/test.toml"]);
        let t = text(&o);
        assert!(!o.status.success() && t.contains(want), "{table}: {t}");
        assert!(t.contains("recipes/test.toml:"), "no location: {t}");
    };
    refused(
        "[kernel.module-signing]\nkey = \"keys/missing.pem\"\n",
        "key `keys/missing.pem`: cannot read it",
    );
    std::fs::write(
        p.root().join("keys/cert-only.pem"),
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    refused(
        "[kernel.module-signing]\nkey = \"keys/cert-only.pem\"\n",
        "holds no private key",
    );
    std::fs::copy(
        p.root().join("keys/test-modsign.pem"),
        p.root().join("overlays/base/etc/modsign.pem"),
    )
    .unwrap();
    refused(
        "[kernel.module-signing]\nkey = \"overlays/base/etc/modsign.pem\"\n",
        "would be copied into the image",
    );
    refused(
        "[kernel.module-signing]\nenforce = true\n",
        "SANFORGE_MODULE_SIGNING_KEY",
    );
    // The environment names the key when the recipe does not.
    p.write_recipe("[kernel.module-signing]\n");
    let o = p
        .sanforge()
        .args(["plan", "recipes/test.toml", "--json"])
        .env(
            sanforge::config::module_signing::KEY_ENV,
            p.root().join("keys/test-modsign.pem"),
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&signed),
        "{}",
        text(&o)
    );

    // A key git tracks is accepted with a warning (the fixture's public test key).
    if Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists() {
        let o = sanforge_in(Path::new(FIXTURE))
            .args(["plan", "recipes/modsig.toml"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("keys/test-modsign.pem is tracked by git"),
            "no warning about the committed test key: {}",
            text(&o)
        );
    }
}
