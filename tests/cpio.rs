//! The cpio writer against the real GNU `cpio` reader and against its own determinism
//! promise: the same entries from two host trees with different times and inode numbers
//! give byte-identical archives.

use sanforge::image::cpio::{Archive, Entry, EntryKind};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

fn write_file(path: &Path, content: &[u8], mode: u32, mtime: SystemTime) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(mtime).unwrap();
}

/// A small root tree on the host; `mtime` differs between calls.
fn make_tree(dir: &Path, mtime: SystemTime) {
    for d in ["bin", "etc", "sbin", "usr/lib"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::set_permissions(dir.join("sbin"), std::fs::Permissions::from_mode(0o700)).unwrap();
    write_file(&dir.join("bin/busybox"), b"#!fake busybox\n", 0o4755, mtime);
    write_file(
        &dir.join("etc/passwd"),
        b"root:x:0:0:root:/root:/bin/sh\n",
        0o644,
        mtime,
    );
    write_file(
        &dir.join("etc/shadow"),
        b"root:*:19000:0:99999:7:::\n",
        0o600,
        mtime,
    );
    write_file(&dir.join("usr/lib/empty"), b"", 0o644, mtime);
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
}

fn build(dir: &Path) -> Archive {
    let mut a = Archive::new();
    a.add_tree(dir, "").unwrap();
    a.add(Entry::char_dev("dev/console", 5, 1, 0o600));
    a.add(Entry::data(
        "init",
        b"#!/bin/sh\nexec /bin/busybox init\n".to_vec(),
        0o755,
    ));
    a
}

fn to_bytes(a: &Archive, mtime: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    a.write(&mut buf, mtime).unwrap();
    buf
}

/// Runs `cpio` with `args`, feeding `input`; returns stdout (asserting success).
fn run_cpio(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new("cpio")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cpio must be installed");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "cpio {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (mode string, name, symlink target) per line of `cpio -itv`.
fn cpio_listing(archive: &[u8]) -> Vec<(String, String, Option<String>)> {
    run_cpio(&["-itv", "--quiet"], archive)
        .lines()
        .map(|line| {
            let t: Vec<&str> = line.split_whitespace().collect();
            match t.iter().position(|x| *x == "->") {
                Some(i) => (
                    t[0].to_string(),
                    t[i - 1].to_string(),
                    Some(t[i + 1].to_string()),
                ),
                None => (t[0].to_string(), t[t.len() - 1].to_string(), None),
            }
        })
        .collect()
}

/// One member as read back by [`parse_newc`].
struct Parsed {
    name: String,
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u32,
    data: Vec<u8>,
}

/// A minimal independent newc parser.
fn parse_newc(buf: &[u8]) -> Vec<Parsed> {
    let field = |h: &[u8], i: usize| {
        u32::from_str_radix(std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap()
    };
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let h = &buf[pos..pos + 110];
        assert_eq!(&h[..6], b"070701", "magic at offset {pos}");
        let namesize = field(h, 11) as usize;
        let filesize = field(h, 6) as usize;
        let name = std::str::from_utf8(&buf[pos + 110..pos + 110 + namesize - 1])
            .unwrap()
            .to_string();
        assert_eq!(
            buf[pos + 110 + namesize - 1],
            0,
            "name of {name} is NUL-terminated"
        );
        pos = (pos + 110 + namesize).next_multiple_of(4);
        let data = buf[pos..pos + filesize].to_vec();
        pos = (pos + filesize).next_multiple_of(4);
        if name == "TRAILER!!!" {
            assert_eq!(pos, buf.len(), "nothing after the trailer");
            return out;
        }
        out.push(Parsed {
            name,
            ino: field(h, 0),
            mode: field(h, 1),
            uid: field(h, 2),
            gid: field(h, 3),
            mtime: field(h, 5),
            data,
        });
    }
}

#[test]
fn same_entries_from_different_trees_give_identical_bytes() {
    let t1 = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    make_tree(
        t1.path(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
    );
    make_tree(t2.path(), SystemTime::now());
    let b1 = to_bytes(&build(t1.path()), 1_700_000_000);
    let b2 = to_bytes(&build(t2.path()), 1_700_000_000);
    assert!(b1 == b2, "archives differ");
    // the mtime given to write() is the only time in the archive
    let b3 = to_bytes(&build(t2.path()), 1_700_000_001);
    assert_ne!(b1, b3);
}

#[test]
fn headers_are_canonical() {
    let t = tempfile::tempdir().unwrap();
    make_tree(t.path(), SystemTime::now());
    let buf = to_bytes(&build(t.path()), 1_700_000_000);
    let entries = parse_newc(&buf);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.ino as usize, i + 1, "ino of {}", e.name);
        assert_eq!((e.uid, e.gid), (0, 0), "owner of {}", e.name);
        assert_eq!(e.mtime, 1_700_000_000, "mtime of {}", e.name);
    }
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bin",
            "bin/busybox",
            "bin/sh",
            "dev",
            "dev/console",
            "etc",
            "etc/passwd",
            "etc/shadow",
            "init",
            "sbin",
            "usr",
            "usr/lib",
            "usr/lib/empty"
        ]
    );
    let busybox = entries.iter().find(|e| e.name == "bin/busybox").unwrap();
    assert_eq!(busybox.mode, 0o104755);
    assert_eq!(busybox.data, b"#!fake busybox\n");
}

#[test]
fn real_cpio_reads_names_modes_and_links() {
    let t = tempfile::tempdir().unwrap();
    make_tree(t.path(), SystemTime::now());
    let a = build(t.path());
    let buf = to_bytes(&a, 1_700_000_000);
    let listing = cpio_listing(&buf);
    let find = |name: &str| {
        listing
            .iter()
            .find(|e| e.1 == name)
            .unwrap_or_else(|| panic!("{name} missing from {listing:?}"))
    };
    assert_eq!(listing.len(), 13, "{listing:?}");
    assert_eq!(find("bin").0, "drwxr-xr-x");
    assert_eq!(find("sbin").0, "drwx------");
    assert_eq!(find("dev").0, "drwxr-xr-x"); // auto-added parent
    assert_eq!(find("bin/busybox").0, "-rwsr-xr-x");
    assert_eq!(find("etc/shadow").0, "-rw-------");
    assert_eq!(find("init").0, "-rwxr-xr-x");
    assert_eq!(find("dev/console").0, "crw-------");
    let sh = find("bin/sh");
    assert_eq!(sh.0, "lrwxrwxrwx");
    assert_eq!(sh.2.as_deref(), Some("busybox"));
    // the device numbers as cpio shows them: "5,   1"
    let raw = run_cpio(&["-itv", "--quiet"], &buf);
    let console = raw.lines().find(|l| l.ends_with("dev/console")).unwrap();
    assert!(
        console.contains("5,") && console.contains(" 1 "),
        "{console}"
    );
    // our own listing agrees with cpio's on names and modes
    let ours: Vec<(String, String)> = a
        .list()
        .iter()
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            (t[0].to_string(), t[3].to_string())
        })
        .collect();
    let theirs: Vec<(String, String)> =
        listing.iter().map(|e| (e.0.clone(), e.1.clone())).collect();
    assert_eq!(ours, theirs);
    // contents round-trip
    assert_eq!(
        run_cpio(&["-i", "--quiet", "--to-stdout", "etc/passwd"], &buf),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    assert_eq!(
        run_cpio(&["-i", "--quiet", "--to-stdout", "init"], &buf),
        "#!/bin/sh\nexec /bin/busybox init\n"
    );
}

#[test]
fn every_name_and_content_length_round_trips() {
    let mut a = Archive::new();
    let mut expected = Vec::new();
    for n in 1..=8usize {
        let name = format!("d/{}", "abcdefgh".get(..n).unwrap());
        a.add(Entry::data(
            name.clone(),
            "z".repeat(n + 1).into_bytes(),
            0o644,
        ));
        expected.push(name);
    }
    // names of length 1..=8 at the top level too
    for n in 1..=8usize {
        let name = "n".repeat(n);
        a.add(Entry::data(name.clone(), "y".repeat(n).into_bytes(), 0o600));
        expected.push(name);
    }
    let buf = to_bytes(&a, 0);
    let mut listed: Vec<String> = run_cpio(&["-it", "--quiet"], &buf)
        .lines()
        .map(String::from)
        .collect();
    listed.retain(|n| n != "d");
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    for n in 1..=8usize {
        let name = "n".repeat(n);
        assert_eq!(
            run_cpio(&["-i", "--quiet", "--to-stdout", &name], &buf),
            "y".repeat(n)
        );
    }
}

#[test]
fn later_add_replaces_and_stats_count() {
    let mut a = Archive::new();
    a.add(Entry::data("etc/hostname", b"old\n".to_vec(), 0o644));
    a.add(Entry::data("/etc/hostname", b"node-a\n".to_vec(), 0o600));
    assert_eq!(a.len(), 1);
    assert_eq!(
        a.get("etc/hostname").map(|e| &e.kind),
        Some(&EntryKind::Data(b"node-a\n".to_vec()))
    );
    let mut buf = Vec::new();
    let stats = a.write(&mut buf, 0).unwrap();
    assert_eq!(stats.entries, 2); // etc + etc/hostname
    assert_eq!(stats.content_bytes, 7);
    assert_eq!(stats.archive_bytes as usize, buf.len());
    assert_eq!(
        a.list(),
        ["drwxr-xr-x 0 0 etc", "-rw------- 0 0 etc/hostname"]
    );
    a.ensure_parents();
    assert_eq!(a.len(), 2);
}

#[test]
fn zstd_output_decompresses_to_the_plain_archive() {
    let t = tempfile::tempdir().unwrap();
    make_tree(&t.path().join("tree"), SystemTime::now());
    let a = build(&t.path().join("tree"));
    let plain = to_bytes(&a, 42);
    let out_dir = t.path().join("out");
    let out = out_dir.join("initramfs.cpio.zst");
    let stats = a.write_zstd(&out, 42, 19).unwrap();
    assert_eq!(stats.archive_bytes as usize, plain.len());
    let compressed = std::fs::read(&out).unwrap();
    assert_eq!(zstd::decode_all(compressed.as_slice()).unwrap(), plain);
    // deterministic: a second write gives the same compressed bytes
    let out2 = out_dir.join("again.cpio.zst");
    a.write_zstd(&out2, 42, 19).unwrap();
    assert_eq!(std::fs::read(&out2).unwrap(), compressed);
    // no temporary files left behind
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["again.cpio.zst", "initramfs.cpio.zst"]);
}

#[test]
fn failed_zstd_write_leaves_no_file() {
    let t = tempfile::tempdir().unwrap();
    let mut a = Archive::new();
    a.add(Entry::data("a", b"x".to_vec(), 0o644));
    a.add(Entry::file("b", t.path().join("does-not-exist"), 0o644));
    let out = t.path().join("initramfs.cpio.zst");
    let err = format!("{:#}", a.write_zstd(&out, 0, 3).unwrap_err());
    assert!(err.contains("does-not-exist"), "{err}");
    let left: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
