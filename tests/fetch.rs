//! Downloads into the cache against a loopback HTTP server, the cache's guarantees
//! (verify, atomic insert, corrupt blobs removed, stage outputs all-or-nothing) and
//! lock files (resolve, write, check, load).

mod common;

use common::httpd::{closed_port_url, Route, Server};
use sanforge::commands::lock;
use sanforge::config::lock::Lock;
use sanforge::config::recipe::{Recipe, Source};
use sanforge::engine::cache::Cache;
use sanforge::engine::fetch::{fetch_source, fetch_url};
use sanforge::util::cmd::Log;
use sanforge::util::hash::sha256_bytes;
use std::path::Path;

fn body() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn new_cache() -> (tempfile::TempDir, Cache) {
    let d = tempfile::tempdir().unwrap();
    let c = Cache::open(d.path().join("cache")).unwrap();
    (d, c)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn err_text(r: anyhow::Result<impl std::fmt::Debug>) -> String {
    format!("{:#}", r.expect_err("expected an error"))
}

/// Neither a blob nor a temporary file is left.
fn assert_nothing_left(cache: &Cache) {
    assert!(
        entries(&cache.root().join("blobs/sha256")).is_empty(),
        "blobs: {:?}",
        entries(&cache.root().join("blobs/sha256"))
    );
    assert!(
        entries(&cache.tmp_dir()).is_empty(),
        "tmp: {:?}",
        entries(&cache.tmp_dir())
    );
}

#[test]
fn good_file_lands_in_cache_and_is_reused_without_network() {
    let b = body();
    let sha = sha256_bytes(&b);
    let srv = Server::start(vec![("/f.tar", Route::Ok(b.clone()))]);
    let (_d, cache) = new_cache();
    let p = fetch_url(&cache, &[srv.url("/f.tar")], &sha).unwrap();
    assert_eq!(p, cache.blob_path(&sha));
    assert_eq!(std::fs::read(&p).unwrap(), b);
    assert_eq!(cache.get_verified(&sha).unwrap(), Some(p.clone()));
    assert!(entries(&cache.tmp_dir()).is_empty());
    // Second call: served from the cache, the server sees no new request.
    assert_eq!(fetch_url(&cache, &[srv.url("/f.tar")], &sha).unwrap(), p);
    assert_eq!(srv.hits(), vec!["/f.tar".to_string()]);
}

#[test]
fn wrong_hash_names_both_hashes_and_leaves_nothing() {
    let b = body();
    let actual = sha256_bytes(&b);
    let expected = sha256_bytes(b"something else");
    let srv = Server::start(vec![("/f", Route::Ok(b))]);
    let (_d, cache) = new_cache();
    let e = err_text(fetch_url(&cache, &[srv.url("/f")], &expected));
    assert!(e.contains(&expected) && e.contains(&actual), "{e}");
    assert!(e.contains("mismatch"), "{e}");
    assert_nothing_left(&cache);
}

#[test]
fn not_found_names_the_url() {
    let srv = Server::start(vec![]);
    let (_d, cache) = new_cache();
    let url = srv.url("/missing.tar.xz");
    let e = err_text(fetch_url(
        &cache,
        std::slice::from_ref(&url),
        &sha256_bytes(b"x"),
    ));
    assert!(e.contains(&url) && e.contains("404"), "{e}");
    assert_nothing_left(&cache);
}

#[test]
fn truncated_body_is_an_error() {
    let b = body();
    let sha = sha256_bytes(&b);
    let srv = Server::start(vec![(
        "/t",
        Route::Truncated {
            body: b[..1000].to_vec(),
            advertised: b.len(),
        },
    )]);
    let (_d, cache) = new_cache();
    let e = err_text(fetch_url(&cache, &[srv.url("/t")], &sha));
    assert!(
        e.contains("truncated") && e.contains(&format!("of {} bytes", b.len())),
        "{e}"
    );
    assert_nothing_left(&cache);
}

#[test]
fn connection_dropped_mid_chunked_transfer_is_an_error() {
    let b = body();
    let sha = sha256_bytes(&b);
    let srv = Server::start(vec![("/d", Route::DropChunked(b))]);
    let (_d, cache) = new_cache();
    let e = err_text(fetch_url(&cache, &[srv.url("/d")], &sha));
    assert!(
        e.contains(&srv.url("/d")) && e.contains("mismatch") && e.contains("cut short"),
        "{e}"
    );
    assert_nothing_left(&cache);
}

#[test]
fn server_hanging_up_is_an_error() {
    let srv = Server::start(vec![("/h", Route::Hangup)]);
    let (_d, cache) = new_cache();
    let e = err_text(fetch_url(&cache, &[srv.url("/h")], &sha256_bytes(b"x")));
    assert!(e.contains(&srv.url("/h")), "{e}");
    assert_nothing_left(&cache);
}

#[test]
fn falls_back_to_the_next_mirror() {
    let b = body();
    let sha = sha256_bytes(&b);
    let srv = Server::start(vec![
        ("/bad", Route::Ok(b"wrong bytes".to_vec())),
        ("/good", Route::Ok(b.clone())),
    ]);
    let (_d, cache) = new_cache();
    let mirrors = vec![
        closed_port_url("/dead"),
        srv.url("/missing"),
        srv.url("/bad"),
        srv.url("/good"),
    ];
    let p = fetch_url(&cache, &mirrors, &sha).unwrap();
    assert_eq!(std::fs::read(p).unwrap(), b);
    assert_eq!(srv.hits(), vec!["/missing", "/bad", "/good"]);
    assert!(entries(&cache.tmp_dir()).is_empty());
}

#[test]
fn unreachable_mirror_suggests_import() {
    let (_d, cache) = new_cache();
    let url = closed_port_url("/linux.tar.xz");
    let sha = sha256_bytes(b"linux");
    let e = err_text(fetch_url(&cache, std::slice::from_ref(&url), &sha));
    assert!(e.contains(&url), "{e}");
    assert!(
        e.contains("sanforge fetch --import FILE") && e.contains(&sha),
        "{e}"
    );
    assert_nothing_left(&cache);
}

#[test]
fn every_failed_mirror_is_listed() {
    let (_d, cache) = new_cache();
    let srv = Server::start(vec![]);
    let a = closed_port_url("/a");
    let b = srv.url("/b");
    let e = err_text(fetch_url(
        &cache,
        &[a.clone(), b.clone()],
        &sha256_bytes(b"x"),
    ));
    let (ia, ib) = (e.find(&a).unwrap(), e.find(&b).unwrap());
    assert!(ia < ib, "{e}");
    assert!(e.contains("404"), "{e}");
}

#[test]
fn imported_file_is_used_without_a_server() {
    let (d, cache) = new_cache();
    let f = d.path().join("linux.tar.xz");
    std::fs::write(&f, b"kernel source").unwrap();
    let sha = cache.import(&f).unwrap();
    assert_eq!(sha, sha256_bytes(b"kernel source"));
    let p = fetch_url(&cache, &[closed_port_url("/linux.tar.xz")], &sha).unwrap();
    assert_eq!(std::fs::read(p).unwrap(), b"kernel source");
}

#[test]
fn file_url_mirror_works() {
    let (d, cache) = new_cache();
    let f = d.path().join("fw.bin");
    std::fs::write(&f, b"firmware").unwrap();
    let sha = sha256_bytes(b"firmware");
    let p = fetch_url(&cache, &[format!("file://{}", f.display())], &sha).unwrap();
    assert_eq!(std::fs::read(p).unwrap(), b"firmware");
    let e = err_text(fetch_url(
        &cache,
        &["file://relative/x".to_string()],
        &sha256_bytes(b"y"),
    ));
    assert!(e.contains("absolute"), "{e}");
}

#[test]
fn corrupt_blob_is_removed_and_reported_then_fetched_again() {
    use std::os::unix::fs::PermissionsExt;
    let b = body();
    let sha = sha256_bytes(&b);
    let srv = Server::start(vec![("/f", Route::Ok(b.clone()))]);
    let (_d, cache) = new_cache();
    let p = fetch_url(&cache, &[srv.url("/f")], &sha).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&p, b"bit rot").unwrap();
    let e = err_text(cache.get_verified(&sha));
    assert!(
        e.contains("corrupt") && e.contains("removed") && e.contains(&p.display().to_string()),
        "{e}"
    );
    assert!(!p.exists());
    assert_eq!(cache.get_verified(&sha).unwrap(), None);
    // fetch_url also recovers from a corrupt entry by downloading again.
    std::fs::copy(srv_independent_file(&cache), &p).unwrap();
    let again = fetch_url(&cache, &[srv.url("/f")], &sha).unwrap();
    assert_eq!(std::fs::read(again).unwrap(), b);
    assert_eq!(srv.hits().len(), 2);
}

/// Some file that is not the blob (used to plant a wrong blob).
fn srv_independent_file(cache: &Cache) -> std::path::PathBuf {
    let p = cache.root().join("planted");
    std::fs::write(&p, b"planted").unwrap();
    p
}

#[test]
fn failing_stage_leaves_no_entry() {
    let (_d, cache) = new_cache();
    let e = err_text(cache.build_stage("kernel", "abc", |dir| {
        std::fs::write(dir.join("half-written"), b"x").unwrap();
        anyhow::bail!("make failed")
    }));
    assert!(e.contains("make failed"), "{e}");
    assert!(cache.stage_done("kernel", "abc").is_none());
    assert!(!cache.stage_path("kernel", "abc").exists());
    assert!(entries(&cache.root().join("stages/kernel")).is_empty());
    let p = cache
        .build_stage("kernel", "abc", |dir| {
            Ok(std::fs::write(dir.join("bzImage"), b"k")?)
        })
        .unwrap();
    assert_eq!(std::fs::read(p.join("bzImage")).unwrap(), b"k");
    assert_eq!(cache.stage_done("kernel", "abc"), Some(p));
}

#[test]
fn leftovers_of_dead_processes_are_cleaned() {
    // No pid can be this large (the kernel's pid_max is at most 2^22).
    let dead = 4_194_305u32;
    let (d, cache) = new_cache();
    let stale_stage = cache.root().join(format!("stages/kernel/.tmp-abc-{dead}"));
    std::fs::create_dir_all(stale_stage.join("sub")).unwrap();
    let mine = cache
        .root()
        .join(format!("stages/kernel/.tmp-other-{}", std::process::id()));
    std::fs::create_dir_all(&mine).unwrap();
    let stale_tmp = cache.tmp_dir().join(format!("{dead}-download"));
    std::fs::write(&stale_tmp, b"partial").unwrap();
    cache.build_stage("kernel", "def", |_| Ok(())).unwrap();
    assert!(!stale_stage.exists());
    assert!(mine.exists(), "a live process's temp dir must be kept");
    // Opening the cache again cleans tmp/.
    let _again = Cache::open(d.path().join("cache")).unwrap();
    assert!(!stale_tmp.exists());
}

// ---- lock files ----

const NODE: &str = "hostname = \"n1\"\n";

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(kernel_sha: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("recipes")).unwrap();
        std::fs::create_dir_all(root.join("scst/src")).unwrap();
        std::fs::write(root.join("node.toml"), NODE).unwrap();
        std::fs::write(root.join("fw.bin"), b"firmware v1").unwrap();
        std::fs::write(root.join("scst/src/a.c"), b"int a;").unwrap();
        let p = Project { dir };
        p.write_recipe(kernel_sha);
        p
    }
    fn write_recipe(&self, kernel_sha: &str) {
        let text = format!(
            "[recipe]\nsource-date-epoch = 1700000000\n\n[kernel]\nsource = {{ url = [\"http://127.0.0.1:9/linux.tar.xz\", \"file:///srv/linux.tar.xz\"], sha256 = \"{kernel_sha}\" }}\nbase = \"tinyconfig\"\n\n[node]\nconfig = \"node.toml\"\n\n[sources.fw]\npath = \"fw.bin\"\n\n[sources.scst]\npath = \"scst\"\n"
        );
        std::fs::write(self.file(), text).unwrap();
    }
    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("recipes/test.toml")
    }
    fn recipe(&self) -> Recipe {
        Recipe::load(&self.file()).unwrap()
    }
}

#[test]
fn lock_resolve_write_check() {
    let sha = sha256_bytes(b"linux");
    let p = Project::new(&sha);
    let recipe = p.recipe();
    let (_d, cache) = new_cache();
    let l = lock::resolve(&recipe, &cache, &Log::none()).unwrap();
    let names: Vec<&str> = l.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["kernel", "fw", "scst"]);
    let k = l.get("kernel").unwrap();
    assert_eq!((k.kind.as_str(), k.sha256.as_str()), ("url", sha.as_str()));
    assert_eq!(
        k.origin,
        "http://127.0.0.1:9/linux.tar.xz file:///srv/linux.tar.xz"
    );
    let fw = l.get("fw").unwrap();
    assert_eq!((fw.kind.as_str(), fw.origin.as_str()), ("path", "fw.bin"));
    assert_eq!(fw.sha256, sha256_bytes(b"firmware v1"));
    assert_eq!(l.get("scst").unwrap().sha256.len(), 64);

    lock::write(&recipe, &l).unwrap();
    assert!(recipe.lock_path().ends_with("recipes/test.lock"));
    sanforge::engine::lock::check(&recipe, &l).unwrap();
    let loaded = sanforge::engine::lock::load_for(&recipe, true).unwrap();
    assert_eq!(loaded.as_ref(), Some(&l));

    // Resolving again gives the same lock (deterministic), and the file round-trips.
    assert_eq!(lock::resolve(&recipe, &cache, &Log::none()).unwrap(), l);
    assert_eq!(Lock::load(&recipe.lock_path()).unwrap(), l);
}

#[test]
fn changed_recipe_sha_makes_the_lock_stale() {
    let p = Project::new(&sha256_bytes(b"linux"));
    let (_d, cache) = new_cache();
    let recipe = p.recipe();
    lock::write(
        &recipe,
        &lock::resolve(&recipe, &cache, &Log::none()).unwrap(),
    )
    .unwrap();
    p.write_recipe(&sha256_bytes(b"linux 2"));
    let recipe = p.recipe();
    let l = Lock::load(&recipe.lock_path()).unwrap();
    let e = err_text(sanforge::engine::lock::check(&recipe, &l));
    assert!(
        e.contains("stale entry `kernel`") && e.contains("sanforge lock"),
        "{e}"
    );
    assert!(!e.contains("`fw`"), "{e}");
    let e = err_text(sanforge::engine::lock::load_for(&recipe, true));
    assert!(e.contains("stale entry `kernel`"), "{e}");
    // Without --locked a stale lock is ignored.
    assert_eq!(
        sanforge::engine::lock::load_for(&recipe, false).unwrap(),
        None
    );
}

#[test]
fn missing_and_extra_entries_are_named() {
    let p = Project::new(&sha256_bytes(b"linux"));
    let (_d, cache) = new_cache();
    let recipe = p.recipe();
    let mut l = lock::resolve(&recipe, &cache, &Log::none()).unwrap();
    l.sources.retain(|s| s.name != "fw");
    l.sources.push(sanforge::config::lock::LockedSource {
        name: "package:bash".into(),
        kind: "debian".into(),
        origin: "bash=5.2".into(),
        sha256: "0".repeat(64),
        ..Default::default()
    });
    let e = err_text(sanforge::engine::lock::check(&recipe, &l));
    assert!(
        e.contains("missing entry `fw`") && e.contains("extra entry `package:bash`"),
        "{e}"
    );
}

#[test]
fn missing_lock_with_locked_names_the_path() {
    let p = Project::new(&sha256_bytes(b"linux"));
    let recipe = p.recipe();
    let e = err_text(sanforge::engine::lock::load_for(&recipe, true));
    assert!(
        e.contains(&recipe.lock_path().display().to_string()) && e.contains("sanforge lock"),
        "{e}"
    );
    assert_eq!(
        sanforge::engine::lock::load_for(&recipe, false).unwrap(),
        None
    );
}

#[test]
fn unparsable_lock_gives_a_location() {
    let p = Project::new(&sha256_bytes(b"linux"));
    let recipe = p.recipe();
    std::fs::write(recipe.lock_path(), "version = 2\nbogus = 2\n").unwrap();
    let e = err_text(sanforge::engine::lock::load_for(&recipe, false));
    assert!(e.contains("test.lock:2:1"), "{e}");
}

#[test]
fn path_source_drift_against_the_lock_is_refused() {
    let p = Project::new(&sha256_bytes(b"linux"));
    let (_d, cache) = new_cache();
    let recipe = p.recipe();
    let l = lock::resolve(&recipe, &cache, &Log::none()).unwrap();
    let fw = &recipe.sources["fw"];
    let got = fetch_source(&cache, "fw", fw, Some(&l), &Log::none()).unwrap();
    assert_eq!(
        got.sha256.as_deref(),
        Some(sha256_bytes(b"firmware v1").as_str())
    );
    let scst = fetch_source(
        &cache,
        "scst",
        &recipe.sources["scst"],
        Some(&l),
        &Log::none(),
    )
    .unwrap();
    assert_eq!(scst.sha256, None);
    assert!(scst.path.join("src/a.c").is_file());
    std::fs::write(p.dir.path().join("fw.bin"), b"firmware v2").unwrap();
    let e = err_text(fetch_source(&cache, "fw", fw, Some(&l), &Log::none()));
    assert!(
        e.contains("changed since the lock") && e.contains("sanforge lock"),
        "{e}"
    );
    // Without a lock the new content is accepted.
    assert!(fetch_source(&cache, "fw", fw, None, &Log::none()).is_ok());
}

#[test]
fn url_source_is_fetched_through_fetch_source() {
    let b = body();
    let sha = sha256_bytes(&b);
    let srv = Server::start(vec![("/scst.tar.gz", Route::Ok(b.clone()))]);
    let (_d, cache) = new_cache();
    let src = Source::Url {
        mirrors: vec![srv.url("/scst.tar.gz")],
        sha256: sha.clone(),
    };
    let got = fetch_source(&cache, "scst", &src, None, &Log::none()).unwrap();
    assert_eq!(got.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(std::fs::read(got.path).unwrap(), b);
}

// ---- Debian packages (built locally with dpkg-deb; nothing is downloaded) ----

/// Builds a tiny .deb holding `usr/src/linux-source-9.9.tar.xz` (dpkg-deb is required,
/// like apt: `.ci/setup` installs the Debian package dpkg).
fn build_deb(dir: &Path) -> std::path::PathBuf {
    if let Err(e) = std::process::Command::new("dpkg-deb")
        .arg("--version")
        .output()
    {
        panic!("dpkg-deb cannot run ({e}): install the Debian package dpkg (.ci/setup does)");
    }
    let tree = dir.join("pkg");
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(tree.join("usr/src")).unwrap();
    std::fs::write(
        tree.join("DEBIAN/control"),
        "Package: linux-source-9.9\nVersion: 9.9-1\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("usr/src/linux-source-9.9.tar.xz"),
        b"fake kernel tarball",
    )
    .unwrap();
    let deb = dir.join("linux-source-9.9_9.9-1_all.deb");
    let st = std::process::Command::new("dpkg-deb")
        .args(["--root-owner-group", "-b"])
        .arg(&tree)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    deb
}

#[test]
fn deb_member_is_extracted() {
    let d = tempfile::tempdir().unwrap();
    let deb = build_deb(d.path());
    let dest = d.path().join("out/linux.tar.xz");
    sanforge::engine::fetch::extract_deb_member(
        &deb,
        "./usr/src/linux-source-9.9.tar.xz",
        &dest,
        &Log::none(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), b"fake kernel tarball");
    let e = err_text(sanforge::engine::fetch::extract_deb_member(
        &deb,
        "usr/src/nope",
        &d.path().join("x"),
        &Log::none(),
    ));
    assert!(e.contains("has no file `usr/src/nope`"), "{e}");
    // The temporary extraction directory is gone either way.
    let left: Vec<String> = entries(&d.path().join("out"));
    assert_eq!(left, vec!["linux.tar.xz"]);
}

#[test]
fn locked_debian_source_comes_from_the_cache_without_apt() {
    let d = tempfile::tempdir().unwrap();
    let deb = build_deb(d.path());
    let (_c, cache) = new_cache();
    let sha = cache.import(&deb).unwrap();
    let lock = Lock {
        version: Lock::VERSION,
        sources: vec![sanforge::config::lock::LockedSource {
            name: "kernel".into(),
            kind: "debian".into(),
            origin: "linux-source-9.9=9.9-1".into(),
            sha256: sha.clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let src = Source::Debian {
        package: "linux-source-9.9".into(),
        version: "9.9-1".into(),
        member: Some("usr/src/linux-source-9.9.tar.xz".into()),
    };
    let got = fetch_source(&cache, "kernel", &src, Some(&lock), &Log::none()).unwrap();
    assert_eq!(got.sha256.as_deref(), Some(sha.as_str()));
    assert!(
        got.path.ends_with("linux-source-9.9.tar.xz"),
        "{}",
        got.path.display()
    );
    assert_eq!(std::fs::read(&got.path).unwrap(), b"fake kernel tarball");
    // Second time: the extracted member is reused.
    assert_eq!(
        fetch_source(&cache, "kernel", &src, Some(&lock), &Log::none()).unwrap(),
        got
    );
}
