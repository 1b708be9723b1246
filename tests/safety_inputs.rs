//! Issue #10, class 3: inputs are what they claim. A local `path` source is keyed by
//! its content: editing it rebuilds and the manifest and SBOM record what was built,
//! and `--locked` refuses the drift naming the source and both hashes.
//! `fetch --import A B C` imports every file or none, naming each failure. A download
//! has a deadline and a minimum rate as well as a per-read timeout, and a mirror that
//! breaks them hands over to the next one.

mod common;

use common::httpd::{Route, Server};
use common::project::text;
use common::safety::World;
use sanforge::engine::cache::Cache;
use sanforge::engine::fetch::{fetch_url_with, Limits};
use std::time::{Duration, Instant};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The tree hash sanforge gives the fake kernel source now.
fn tree_sha(w: &World) -> String {
    sanforge::engine::fetch::path_sha256(&w.root().join("fake-linux")).unwrap()
}

#[test]
fn an_edited_path_source_rebuilds_and_is_recorded() {
    let w = World::new();
    let p = &w.project;
    assert!(p.run(&["lock", "recipes/test.toml"]).status.success());
    let o = p.run(&["build", "recipes/test.toml", "--locked"]);
    assert!(o.status.success(), "{}", text(&o));
    let old = tree_sha(&w);
    let out = p.root().join("out/test");
    assert_eq!(
        json(&out.join("manifest.json"))["kernel"]["source-sha256"],
        old.as_str()
    );

    // Edit the tree: --locked refuses, naming the source and both hashes, and
    // leaves the outputs and the cache's blobs alone.
    std::fs::write(p.root().join("fake-linux/README"), "edited").unwrap();
    let new = tree_sha(&w);
    assert_ne!(old, new);
    let before = w.snapshot();
    let o = p.run(&["build", "recipes/test.toml", "--locked"]);
    let e = stderr(&o);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        e.contains("source `kernel` (fake-linux) changed since the lock was written")
            && e.contains(&old)
            && e.contains(&new)
            && e.contains("sanforge lock"),
        "{e}"
    );
    w.assert_unchanged(&before, "--locked with an edited tree");
    // plan --locked is not a thing; plan (and build) without --locked use the tree.
    let o = p.run(&["plan", "recipes/test.toml", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kernel = plan
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["stage"] == "kernel")
        .unwrap();
    assert_eq!(
        kernel["cached"], false,
        "the kernel of the edited tree is cached?"
    );

    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out_text = String::from_utf8_lossy(&o.stdout);
    assert!(out_text.contains("ran: kernel"), "{}", text(&o));
    assert!(
        stderr(&o).contains("warning: source `kernel`"),
        "{}",
        text(&o)
    );
    let m = json(&out.join("manifest.json"));
    assert_eq!(m["kernel"]["source-sha256"], new.as_str());
    assert_eq!(m["inputs"][0]["sha256"], new.as_str());
    let sbom = std::fs::read_to_string(out.join("sbom.cdx.json")).unwrap();
    assert!(
        sbom.contains(&new) && !sbom.contains(&old),
        "the SBOM records the old tree"
    );
    // The lock is not rewritten behind the user's back; `sanforge lock` pins the tree.
    let lock = std::fs::read_to_string(p.root().join("recipes/test.lock")).unwrap();
    assert!(lock.contains(&old), "{lock}");
    assert!(p.run(&["lock", "recipes/test.toml"]).status.success());
    let o = p.run(&["build", "recipes/test.toml", "--locked"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ran: nothing"),
        "{}",
        text(&o)
    );
}

#[test]
fn an_edited_path_source_of_another_name_is_refused_with_locked() {
    let w = World::new();
    let p = &w.project;
    std::fs::write(p.root().join("fw.bin"), "firmware v1").unwrap();
    let t = std::fs::read_to_string(p.recipe()).unwrap();
    std::fs::write(
        p.recipe(),
        format!("{t}\n[sources.fw]\npath = \"fw.bin\"\n"),
    )
    .unwrap();
    assert!(p.run(&["lock", "recipes/test.toml"]).status.success());
    std::fs::write(p.root().join("fw.bin"), "firmware v2").unwrap();
    let o = p.run(&["plan", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = p.run(&["build", "recipes/test.toml", "--locked"]);
    let e = stderr(&o);
    assert!(
        !o.status.success()
            && e.contains("source `fw` (fw.bin) changed since the lock was written")
            && e.contains(&sanforge::util::hash::sha256_bytes(b"firmware v1"))
            && e.contains(&sanforge::util::hash::sha256_bytes(b"firmware v2")),
        "{e}"
    );
}

#[test]
fn import_takes_every_file_or_none() {
    let w = World::new();
    let p = &w.project;
    for (f, d) in [("a", "A"), ("b", "B"), ("c", "C")] {
        std::fs::write(p.root().join(f), d).unwrap();
    }
    let o = p.run(&["fetch", "--import", "a", "b", "c"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for (f, d) in [("a", "A"), ("b", "B"), ("c", "C")] {
        let sha = sanforge::util::hash::sha256_bytes(d.as_bytes());
        assert!(out.contains(&format!("{sha}  {f}")), "{out}");
        assert!(
            p.cache.join("blobs/sha256").join(&sha).is_file(),
            "{f} not imported"
        );
    }

    // One missing, one directory, one fifo: nothing is imported and each is named.
    let w = World::new();
    let p = &w.project;
    std::fs::write(p.root().join("good"), "G").unwrap();
    std::fs::create_dir(p.root().join("dir")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(p.root().join("pipe"))
        .status()
        .unwrap()
        .success());
    let before = w.snapshot();
    let o = p.run(&[
        "fetch",
        "--import",
        "good",
        "nope",
        "dir",
        "pipe",
        "/dev/zero",
    ]);
    let e = stderr(&o);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        e.contains("cannot import 4 of 5 files (nothing was imported)"),
        "{e}"
    );
    for f in ["nope", "dir", "pipe", "/dev/zero"] {
        assert!(e.contains(&format!("  {f}: ")), "{f} not named: {e}");
    }
    assert!(!e.contains("  good: "), "{e}");
    w.assert_unchanged(&before, "a failed import");
    assert!(std::fs::read_dir(p.cache.join("tmp"))
        .unwrap()
        .next()
        .is_none());
}

fn body() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 31 % 251) as u8).collect()
}

fn limits(deadline: u64, stall: u64, min_rate: u64) -> Limits {
    Limits {
        deadline: Duration::from_secs(deadline),
        stall: Duration::from_secs(stall),
        min_rate,
        ..Limits::default()
    }
}

fn cache() -> (tempfile::TempDir, Cache) {
    let d = tempfile::tempdir().unwrap();
    let c = Cache::open(d.path().join("cache")).unwrap();
    (d, c)
}

#[test]
fn a_trickling_mirror_is_given_up_and_the_next_one_used() {
    let b = body();
    let sha = sanforge::util::hash::sha256_bytes(&b);
    let srv = Server::start_threaded(vec![
        (
            "/trickle",
            Route::Trickle {
                body: b.clone(),
                chunk: 1,
                every: Duration::from_millis(500),
            },
        ),
        ("/good", Route::Ok(b.clone())),
    ]);
    let (_d, c) = cache();
    // Alone: a clear error within the window, not a wait of 4096 × 0.5 s.
    let started = Instant::now();
    let e = format!(
        "{:#}",
        fetch_url_with(&c, &[srv.url("/trickle")], &sha, &limits(3600, 2, 100)).unwrap_err()
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{e}");
    assert!(
        e.contains("/trickle") && e.contains("too slow") && e.contains("100 bytes/s"),
        "{e}"
    );
    assert!(c.get_verified(&sha).unwrap().is_none());
    assert!(std::fs::read_dir(c.tmp_dir()).unwrap().next().is_none());
    // With a second mirror: the download succeeds from it.
    let p = fetch_url_with(
        &c,
        &[srv.url("/trickle"), srv.url("/good")],
        &sha,
        &limits(3600, 2, 100),
    )
    .unwrap();
    assert_eq!(std::fs::read(p).unwrap(), b);
}

#[test]
fn a_silent_mirror_and_the_deadline() {
    let b = body();
    let sha = sanforge::util::hash::sha256_bytes(&b);
    let srv = Server::start_threaded(vec![
        (
            "/silent",
            Route::Silent {
                len: b.len(),
                for_: Duration::from_secs(60),
            },
        ),
        (
            "/steady",
            Route::Trickle {
                body: b.clone(),
                chunk: 64,
                every: Duration::from_millis(100),
            },
        ),
    ]);
    let (_d, c) = cache();
    let started = Instant::now();
    let e = format!(
        "{:#}",
        fetch_url_with(&c, &[srv.url("/silent")], &sha, &limits(3600, 2, 100)).unwrap_err()
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{e}");
    assert!(e.contains("/silent") && e.contains("stalled"), "{e}");
    // Fast enough for the rate (640 B/s), too slow for a 2 s deadline (6.4 s).
    let started = Instant::now();
    let e = format!(
        "{:#}",
        fetch_url_with(&c, &[srv.url("/steady")], &sha, &limits(2, 60, 100)).unwrap_err()
    );
    assert!(started.elapsed() < Duration::from_secs(8), "{e}");
    assert!(e.contains("/steady") && e.contains("deadline of 2s"), "{e}");
    assert!(c.get_verified(&sha).unwrap().is_none());
}

#[test]
fn limits_come_from_the_environment() {
    let l = Limits::default();
    assert!(l.deadline >= Duration::from_secs(600) && l.min_rate > 0);
    // Through the CLI: a bad value is named.
    let w = World::new();
    let t = std::fs::read_to_string(w.project.recipe()).unwrap();
    std::fs::write(
        w.project.recipe(),
        t.replace(
            "source = { path = \"fake-linux\" }",
            &format!(
                "source = {{ url = \"http://127.0.0.1:9/x\", sha256 = \"{}\" }}",
                "0".repeat(64)
            ),
        ),
    )
    .unwrap();
    let o = w
        .project
        .sanforge()
        .args(["fetch", "recipes/test.toml"])
        .env("SANFORGE_FETCH_MIN_RATE", "fast")
        .output()
        .unwrap();
    assert!(
        !o.status.success() && stderr(&o).contains("SANFORGE_FETCH_MIN_RATE=`fast`"),
        "{}",
        text(&o)
    );
}
