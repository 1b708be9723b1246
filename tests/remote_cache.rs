//! The stage cache shared through an OCI registry (Debian's docker-registry, started
//! by the test on 127.0.0.1): builder A pushes, builder B with an empty cache pulls
//! every stage and gets identical outputs without building the kernel; entries signed
//! by an unknown key or tampered with in the registry are refused and rebuilt; a
//! registry that stops mid-build costs a warning, never the build.

mod common;

use common::project::{text, Project};
use common::registry::Registry;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One builder: its own cache and (optionally) its signing key.
struct Builder<'a> {
    p: &'a Project,
    cache: PathBuf,
    key: Option<PathBuf>,
}

impl Builder<'_> {
    fn cmd(&self, remote: &str, out: &Path) -> Command {
        let mut c = self.p.sanforge();
        c.env("SANFORGE_CACHE", &self.cache)
            .env("SANFORGE_REMOTE_CACHE", remote)
            .env_remove("SANFORGE_REMOTE_CACHE_KEY")
            .env_remove("SANFORGE_REMOTE_CACHE_AUTH")
            .args(["build", "recipes/test.toml", "--out"])
            .arg(out);
        if let Some(k) = &self.key {
            c.env("SANFORGE_REMOTE_CACHE_KEY", k);
        }
        c
    }

    fn build(&self, remote: &str, out: &Path) -> Output {
        let o = self.cmd(remote, out).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        o
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every output file of two builds, byte for byte (logs aside).
fn assert_same_outputs(a: &Path, b: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "logs")
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(a), names(b));
    assert!(names(a).iter().any(|n| n == "vmlinuz"), "{:?}", names(a));
    for n in names(a) {
        assert!(
            std::fs::read(a.join(&n)).unwrap() == std::fs::read(b.join(&n)).unwrap(),
            "{n} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn stage_key(out: &Path, stage: &str) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    m["keys"][stage].as_str().unwrap().to_string()
}

/// htpasswd entry of user `ci`, password `secret` (bcrypt, cost 4: cheap to check).
const HTPASSWD: &str = "ci:$2b$04$ksHXnHoSJhyXB9NCxcViWelaeqcT1YtgG18KOh6wBS9BH4GrsUGlO\n";

#[test]
fn a_registry_that_asks_for_credentials_gets_them_from_the_environment() {
    let auth = tempfile::tempdir().unwrap();
    std::fs::write(auth.path().join("htpasswd"), HTPASSWD).unwrap();
    let reg = Registry::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: sanforge-test\n    path: {}\n",
        auth.path().join("htpasswd").display()
    ));
    let p = Project::new();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("a");
    sanforge::image::sign::keygen(&key).unwrap();
    std::fs::create_dir_all(p.root().join("keys")).unwrap();
    std::fs::copy(
        sanforge::image::sign::public_path(&key),
        p.root().join("keys/a.pub"),
    )
    .unwrap();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    std::fs::write(
        p.recipe(),
        format!("{recipe}\n[cache]\ntrusted-keys = [\"keys/a.pub\"]\n"),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let url = reg.url("sanforge-cache");
    let build = |name: &str, credentials: Option<&str>| {
        let b = Builder {
            p: &p,
            cache: work.path().join(format!("cache-{name}")),
            key: Some(key.clone()),
        };
        let mut c = b.cmd(&url, &work.path().join(format!("out-{name}")));
        if let Some(cr) = credentials {
            c.env("SANFORGE_REMOTE_CACHE_AUTH", cr);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{name}: {}", text(&o));
        o
    };
    // No credentials, then wrong ones: one warning naming the variable, a local build.
    for (name, cr, want) in [
        ("none", None, "set SANFORGE_REMOTE_CACHE_AUTH=USER:PASSWORD"),
        ("wrong", Some("ci:nope"), "check SANFORGE_REMOTE_CACHE_AUTH"),
    ] {
        let o = build(name, cr);
        assert_eq!(
            stderr(&o).matches("refuses access").count(),
            1,
            "{name}: {}",
            text(&o)
        );
        assert!(stderr(&o).contains(want), "{name}: {}", text(&o));
        assert!(!stdout(&o).contains("pushed "), "{name}: {}", text(&o));
    }
    // Right ones: A pushes, B pulls the kernel.
    let o = build("a", Some("ci:secret"));
    assert!(stdout(&o).contains("pushed kernel: "), "{}", text(&o));
    let o = build("b", Some("ci:secret"));
    assert!(
        stdout(&o).contains("pulled from the remote cache: kernel, userland, rootfs"),
        "{}",
        text(&o)
    );
    assert!(
        !stderr(&o).contains("password") && !stderr(&o).contains("secret"),
        "{}",
        text(&o)
    );
}

#[test]
fn builders_share_stages_through_a_registry_and_refuse_what_they_do_not_trust() {
    let mut reg = Registry::start();
    let p = Project::new();
    let keys = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(p.root().join("keys")).unwrap();
    let (a_key, c_key) = (keys.path().join("a"), keys.path().join("c"));
    sanforge::image::sign::keygen(&a_key).unwrap();
    sanforge::image::sign::keygen(&c_key).unwrap();
    std::fs::copy(
        sanforge::image::sign::public_path(&a_key),
        p.root().join("keys/a.pub"),
    )
    .unwrap();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    // A trusted key that is not a public key file: the recipe is refused at the value.
    std::fs::write(
        p.recipe(),
        format!("{recipe}\n[cache]\ntrusted-keys = [\"recipes/nodes/node.toml\"]\n"),
    )
    .unwrap();
    let o = p.run(&["plan", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(
        !o.status.success()
            && e.contains("test.toml:")
            && e.contains("trusted key `recipes/nodes/node.toml`")
            && e.contains("expected a public key written by `sanforge keygen`"),
        "{}",
        text(&o)
    );
    std::fs::write(
        p.recipe(),
        format!("{recipe}\n[cache]\ntrusted-keys = [\"keys/a.pub\"]\n"),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let builder = |name: &str, key: Option<&Path>| Builder {
        p: &p,
        cache: work.path().join(format!("cache-{name}")),
        key: key.map(Path::to_path_buf),
    };
    let out = |name: &str| work.path().join(format!("out-{name}"));
    let shared = reg.url("sanforge-cache");

    // A: empty cache, builds every stage and pushes each entry, signed.
    let o = builder("a", Some(&a_key)).build(&shared, &out("a"));
    for stage in ["kernel", "userland", "rootfs"] {
        assert!(
            stdout(&o).contains(&format!("pushed {stage}: ")),
            "{stage}: {}",
            text(&o)
        );
    }
    assert!(
        stdout(&o).contains("ran: kernel, userland, rootfs, outputs"),
        "{}",
        text(&o)
    );

    // `plan` (offline) says a missing stage may come from the registry.
    let o = p
        .sanforge()
        .env("SANFORGE_CACHE", work.path().join("cache-b"))
        .env("SANFORGE_REMOTE_CACHE", &shared)
        .args(["plan", "recipes/test.toml"])
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains(&format!("pulled instead if {shared} has a trusted entry")),
        "{}",
        text(&o)
    );

    // B: another empty cache, no key: pulls every stage, builds only the outputs.
    let o = builder("b", None).build(&shared, &out("b"));
    assert!(
        stdout(&o).contains("ran: outputs;")
            && stdout(&o).contains("pulled from the remote cache: kernel, userland, rootfs"),
        "{}",
        text(&o)
    );
    assert!(
        stderr(&o).contains("==> kernel: pulled from"),
        "{}",
        text(&o)
    );
    assert!(
        !out("b").join("logs/kernel.log").exists(),
        "the kernel stage ran"
    );
    assert!(!stderr(&o).contains("warning"), "{}", text(&o));
    assert_same_outputs(&out("a"), &out("b"));

    // An entry signed by a key the recipe does not list: refused, built here.
    let untrusted = reg.url("untrusted");
    builder("c", Some(&c_key)).build(&untrusted, &out("c"));
    let o = builder("d", None).build(&untrusted, &out("d"));
    assert!(
        stderr(&o).contains("the kernel entry")
            && stderr(&o).contains("which the recipe does not trust"),
        "{}",
        text(&o)
    );
    assert!(
        stdout(&o).contains("ran: kernel, userland, rootfs, outputs"),
        "{}",
        text(&o)
    );
    assert_same_outputs(&out("a"), &out("d"));

    // The kernel's layer changed in the registry's storage: refused, built here; the
    // other entries are still pulled.
    let kernel_tag = format!("kernel-{}", stage_key(&out("a"), "kernel"));
    let m = reg.manifest("sanforge-cache", &kernel_tag);
    let blob = reg.blob_file(m["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let o = builder("e", None).build(&shared, &out("e"));
    assert!(
        stderr(&o).contains("the kernel entry")
            && stderr(&o).contains("does not match the manifest it was pushed with"),
        "{}",
        text(&o)
    );
    assert!(
        stdout(&o).contains("ran: kernel, outputs;")
            && stdout(&o).contains("pulled from the remote cache: userland, rootfs"),
        "{}",
        text(&o)
    );
    assert_same_outputs(&out("a"), &out("e"));

    // The registry stops while the kernel builds: its push fails with one warning,
    // nothing else is tried, the build succeeds.
    let child = builder("f", Some(&a_key))
        .cmd(&reg.url("midbuild"), &out("f"))
        .env("FAKE_KERNEL_SLEEP", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let kernel_log = work.path().join("out-f.partial/logs/kernel.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !kernel_log.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the kernel stage did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    reg.stop();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        stderr(&o).matches("is unreachable").count(),
        1,
        "{}",
        text(&o)
    );
    assert!(!stdout(&o).contains("pushed "), "{}", text(&o));

    // Down from the start: one warning, the build goes on.
    let started = std::time::Instant::now();
    let o = builder("g", Some(&a_key)).build(&shared, &out("g"));
    assert_eq!(
        stderr(&o).matches("is unreachable").count(),
        1,
        "{}",
        text(&o)
    );
    assert_same_outputs(&out("a"), &out("g"));
    eprintln!(
        "build with the registry down: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
