//! Issue #10, class 5: no secret travels in a public output. CHAP accounts of a single
//! node take the cluster's path (a secrets file, a second initrd), a password written in
//! a baked node config or scst.conf is a build error, plans, checks, recorded writes
//! and messages show `<redacted>` unless `--show-secrets`, a secrets file others can
//! read is refused, `serve` follows no link out of its directory, and `update` refuses
//! files that are not a kernel and a zstd cpio, signed or not.

mod common;

use common::initroot::{run, run_redacted, write};
use common::project::{text, Project};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "Sup3rS3cretChap";

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A LIO node whose one ACL names the CHAP account `host2`.
const NODE: &str = r#"hostname = "test-node"

[modules]
load = ["target_core_mod"]

[lio]
backstores = [{ name = "rd", kind = "ramdisk", size = "1MiB" }]

[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:t"
portals = ["0.0.0.0:3260"]
luns = [{ lun = 0, backstore = "rd" }]

[[lio.iscsi.acls]]
initiator = "iqn.2026-11.org.example:host2"
chap = { secret = "host2" }
"#;

fn secrets_file(dir: &Path, mode: u32) -> PathBuf {
    let p = dir.join("node.secrets.toml");
    std::fs::write(
        &p,
        format!(
            "[chap.host2]\nuser = \"iqn.2026-11.org.example:host2\"\npassword = \"{PASSWORD}\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// Every file under `dir`, decompressed when it is a zstd file.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                let data = std::fs::read(&p).unwrap();
                let data = if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    zstd::decode_all(data.as_slice()).unwrap_or(data)
                } else {
                    data
                };
                out.push((p, data));
            }
        }
    }
    out
}

fn holds(data: &[u8], needle: &str) -> bool {
    data.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn no_stage_ran(p: &Project) {
    let stages = p.cache.join("stages");
    let entries = std::fs::read_dir(&stages).map(|rd| rd.count()).unwrap_or(0);
    assert_eq!(entries, 0, "a stage ran");
    assert!(!p.root().join("out/test").exists());
}

// ---- a single node's CHAP takes the secrets path ------------------------------------

#[test]
fn chap_secrets_travel_only_in_the_secrets_initrd() {
    let p = Project::new();
    std::fs::write(p.root().join("recipes/nodes/node.toml"), NODE).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let sf = secrets_file(keys.path(), 0o600);
    let o = p.run(&[
        "build",
        "recipes/test.toml",
        "--secrets",
        sf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = p.root().join("out/test");
    let initrd = out.join("secrets/initrd.cpio");
    assert!(
        stdout(&o).contains(&format!("wrote {}", initrd.display())),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::metadata(&initrd).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(out.join("secrets"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    // The secrets initrd holds the account where the init reads it, closed.
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!("cpio -tv < {} 2>/dev/null", initrd.display()))
        .output()
        .unwrap();
    let listing = stdout(&listing);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rw-------") && l.ends_with(" etc/sanforge/secrets/chap.toml")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("drwx------") && l.ends_with(" etc/sanforge/secrets")),
        "{listing}"
    );
    // Nowhere else: not in the initramfs, the manifest, SHA256SUMS, the logs, the cache.
    for (f, data) in contents(&out).into_iter().chain(contents(&p.cache)) {
        if f == initrd {
            assert!(holds(&data, PASSWORD));
            continue;
        }
        assert!(
            !holds(&data, PASSWORD),
            "the CHAP password is in {}",
            f.display()
        );
    }
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(!sums.contains("secrets"), "{sums}");
    // The image names the account; `serve` does not hand the secrets out.
    let srv = sanforge::commands::serve::Server::bind(&out, "127.0.0.1:0").unwrap();
    let addr = srv.local_addr().unwrap();
    let t = std::thread::spawn(move || srv.serve(Some(3)));
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut r = Vec::new();
        s.read_to_end(&mut r).unwrap();
        String::from_utf8_lossy(&r).into_owned()
    };
    assert!(get("/secrets/initrd.cpio").starts_with("HTTP/1.1 404"));
    assert!(get("/secrets").starts_with("HTTP/1.1 404"));
    assert!(get("/boot.ipxe").starts_with("HTTP/1.1 200"));
    t.join().unwrap().unwrap();

    // Without --secrets the image is the same and the build says what it lacks.
    std::fs::remove_dir_all(&out).unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stderr(&o).contains("note: the node configs name secrets (host2) that the image does not contain: build with --secrets FILE"),
        "{}",
        text(&o)
    );
    assert!(!out.join("secrets").exists());
}

#[test]
fn a_password_in_a_baked_config_is_a_build_error_that_says_what_to_do() {
    let p = Project::new();
    // A LIO ACL with its account inline.
    let inline = NODE.replace(
        "chap = { secret = \"host2\" }",
        &format!("chap = {{ userid = \"host2\", password = \"{PASSWORD}\" }}"),
    );
    std::fs::write(p.root().join("recipes/nodes/node.toml"), &inline).unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("recipes/nodes/node.toml:16:39: the CHAP password of initiator `iqn.2026-11.org.example:host2` is written in the node config, which is baked into the public image: put it in a secrets file as `[chap.NAME]` (user, password), write `chap = { secret = \"NAME\" }` here and build with `--secrets FILE`"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "{e}");
    no_stage_ran(&p);

    // An scst.conf account inline.
    let node = "hostname = \"test-node\"\n[modules]\nload = [\"target_core_mod\"]\n[scst]\nconf = \"scst.conf\"\n";
    std::fs::write(p.root().join("recipes/nodes/node.toml"), node).unwrap();
    std::fs::write(
        p.root().join("recipes/nodes/scst.conf"),
        format!("HANDLER vdisk_nullio {{\n\tDEVICE d0\n}}\nTARGET_DRIVER iscsi {{\n\tTARGET iqn.2026-11.org.example:t {{\n\t\tIncomingUser \"joe {PASSWORD}\"\n\t\tLUN 0 d0\n\t}}\n}}\n"),
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("recipes/nodes/scst.conf:6: IncomingUser joe <redacted>: the CHAP secret is written in scst.conf, which is baked into the public image: put the account in a secrets file as `[chap.NAME]` (user, password), write `IncomingUser secret:NAME` here and build with `--secrets FILE`"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "{e}");
    no_stage_ran(&p);

    // The named form builds; the secrets file must have the name.
    std::fs::write(
        p.root().join("recipes/nodes/scst.conf"),
        "HANDLER vdisk_nullio {\n\tDEVICE d0\n}\nTARGET_DRIVER iscsi {\n\tTARGET iqn.2026-11.org.example:t {\n\t\tIncomingUser secret:vmhost\n\t\tLUN 0 d0\n\t}\n}\n",
    )
    .unwrap();
    let keys = tempfile::tempdir().unwrap();
    let sf = secrets_file(keys.path(), 0o600);
    let o = p.run(&[
        "build",
        "recipes/test.toml",
        "--secrets",
        sf.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "secrets file {} has no `[chap.vmhost]` (named by",
            sf.display()
        )),
        "{}",
        text(&o)
    );
    no_stage_ran(&p);
}

#[test]
fn a_secrets_file_others_can_read_is_refused() {
    let p = Project::new();
    std::fs::write(p.root().join("recipes/nodes/node.toml"), NODE).unwrap();
    let keys = tempfile::tempdir().unwrap();
    for (mode, who) in [
        (0o644, "its group and others"),
        (0o640, "its group"),
        (0o604, "others"),
    ] {
        let sf = secrets_file(keys.path(), mode);
        let o = p.run(&[
            "build",
            "recipes/test.toml",
            "--secrets",
            sf.to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(&format!(
                "secrets file {} is open to {who} (mode {mode:04o}): run `chmod 600 {}`",
                sf.display(),
                sf.display()
            )),
            "{}",
            text(&o)
        );
        no_stage_ran(&p);
    }
    // The cluster's secrets file too.
    let cluster = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster/cluster.toml");
    let cs = keys.path().join("cluster.secrets.toml");
    let o = p.run(&[
        "cluster",
        "secrets",
        "--out",
        cs.to_str().unwrap(),
        "--cluster",
        cluster.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::set_permissions(&cs, std::fs::Permissions::from_mode(0o640)).unwrap();
    let rendered = keys.path().join("rendered");
    let o = p.run(&[
        "cluster",
        "render",
        cluster.to_str().unwrap(),
        "--secrets",
        cs.to_str().unwrap(),
        "--out",
        rendered.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is open to its group (mode 0640)"),
        "{}",
        text(&o)
    );
    assert!(!rendered.exists());
}

// ---- the init fills names in, fails closed, and redacts what it prints -----------------

#[test]
fn the_init_fills_in_named_accounts_fails_closed_and_redacts() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "etc/sanforge/node.toml", NODE);
    let acl = "/sys/kernel/config/target/iscsi/iqn.2026-11.org.example:t/tpgt_1/acls/iqn.2026-11.org.example:host2";
    // No secrets on the node: the targets are not configured, the ports stay shut.
    let r = run(t.path(), &["apply-targets"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("CHAP secret `host2` of initiator `iqn.2026-11.org.example:host2` on `iqn.2026-11.org.example:t` is not in the node's secrets; neither /etc/sanforge/secrets/chap.toml nor /run/sanforge/config/secrets.toml exists: boot with the secrets initrd"),
        "{}",
        r.stderr
    );
    assert!(
        !r.ops
            .iter()
            .any(|o| o.contains("auth/") || o.ends_with("enable 1")),
        "{:?}",
        r.ops
    );

    // With the secrets initrd's file: the account is written, and printed redacted.
    write(
        t.path(),
        "etc/sanforge/secrets/chap.toml",
        &format!("[chap.host2]\nuser = \"host2\"\npassword = \"{PASSWORD}\"\n"),
    );
    let r = run_redacted(t.path(), &["apply-targets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.ops.contains(&format!("write {acl}/auth/userid host2")),
        "{:?}",
        r.ops
    );
    assert!(
        r.ops
            .contains(&format!("write {acl}/auth/password <redacted>")),
        "{:?}",
        r.ops
    );
    assert!(
        !r.ops.iter().chain(&r.log).any(|l| l.contains(PASSWORD)),
        "{:?}",
        r.ops
    );
    // --show-secrets shows them (a fresh tree: configfs directories are made once).
    let t2 = tempfile::tempdir().unwrap();
    write(t2.path(), "etc/sanforge/node.toml", NODE);
    write(
        t2.path(),
        "etc/sanforge/secrets/chap.toml",
        &format!("[chap.host2]\nuser = \"host2\"\npassword = \"{PASSWORD}\"\n"),
    );
    let r = run(t2.path(), &["apply-targets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.ops
            .contains(&format!("write {acl}/auth/password {PASSWORD}")),
        "{:?}",
        r.ops
    );
}

#[test]
fn plans_checks_records_and_messages_redact_secrets() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("scst.conf");
    std::fs::write(
        &f,
        format!("HANDLER vdisk_nullio {{\n\tDEVICE d0\n}}\nTARGET_DRIVER iscsi {{\n\tIncomingUser \"discovery {PASSWORD}\"\n\tTARGET iqn.2026-11.org.example:t {{\n\t\tLUN 0 d0\n\t}}\n}}\n"),
    )
    .unwrap();
    let sanforge = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sanforge"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = sanforge(&["scst", "plan", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stdout(&o).contains("/sys/kernel/scst_tgt/targets/iscsi/mgmt <- add_attribute IncomingUser discovery <redacted>\n"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(PASSWORD));
    let o = sanforge(&["scst", "plan", f.to_str().unwrap(), "--show-secrets"]);
    assert!(stdout(&o).contains(&format!(
        "add_attribute IncomingUser discovery {PASSWORD}\n"
    )));

    // Messages that quote a line with a secret: parse errors, validation errors.
    for (body, want) in [
        (
            format!("TARGET_DRIVER iscsi {{\n\tIncomingUser joe {PASSWORD}\n}}\n"),
            "attribute 'IncomingUser' has an invalid value 'joe <redacted>': quote a value that contains blanks",
        ),
        (
            format!("TARGET_DRIVER iscsi {{\n\tIncomingUser \"joe {PASSWORD} x\" }}\n"),
            "text 'IncomingUser \"joe <redacted>' before '}' would be dropped",
        ),
        (
            format!("TARGET_DRIVER iscsi {{\n\tOutgoingUser \"joe {PASSWORD}\"\n\tOutgoingUser \"bob {PASSWORD}2\"\n\tIncomingUser \"joe tiny9\"\n}}\n"),
            "driver attribute 'IncomingUser' value 'joe <redacted>' has a CHAP secret of 5 characters, out of range",
        ),
    ] {
        std::fs::write(&f, &body).unwrap();
        let o = sanforge(&["scst", "check", f.to_str().unwrap()]);
        assert!(text(&o).contains(want), "{}", text(&o));
        assert!(!text(&o).contains(PASSWORD) && !text(&o).contains("tiny9"), "{}", text(&o));
    }

    // node check: the note and the error chain name lines, never the password.
    let n = d.path().join("node.toml");
    std::fs::write(
        &n,
        NODE.replace(
            "chap = { secret = \"host2\" }",
            &format!("chap = {{ userid = \"host2\", password = \"{PASSWORD}\" }}"),
        ),
    )
    .unwrap();
    let o = sanforge(&["node", "check", n.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        stdout(&o).contains("note: ") && stdout(&o).contains("node.toml:16:39"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));
    std::fs::write(
        &n,
        NODE.replace(
            "chap = { secret = \"host2\" }",
            &format!("chap = {{ userid = \"host2\", password = \"{PASSWORD}\", pasword = 1 }}"),
        ),
    )
    .unwrap();
    let o = sanforge(&["node", "check", n.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("node.toml:16:"), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD), "{}", text(&o));
    // node check --secrets: the names resolve.
    std::fs::write(&n, NODE).unwrap();
    let sf = secrets_file(d.path(), 0o600);
    let o = sanforge(&[
        "node",
        "check",
        n.to_str().unwrap(),
        "--secrets",
        sf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&n, NODE.replace("secret = \"host2\"", "secret = \"host3\"")).unwrap();
    let o = sanforge(&[
        "node",
        "check",
        n.to_str().unwrap(),
        "--secrets",
        sf.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("has no `[chap.host3]`"), "{}", text(&o));
}

// ---- update checks the formats, signed or not ------------------------------------------

/// A node booted from slot a, with an update at /media/update whose SHA256SUMS match.
fn update_tree(vmlinuz: &[u8], initramfs: &[u8]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    let put = |rel: &str, data: &[u8]| {
        let p = r.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    put("proc/cmdline", b"console=ttyS0 sanforge.slot=a\n");
    put("run/sanforge/esp/sanforge/a/vmlinuz", b"old kernel");
    put(
        "run/sanforge/esp/loader/entries/sanforge-a.conf",
        sanforge::contract::loader::entry("storage-node", 'a', 1, "console=ttyS0").as_bytes(),
    );
    put("media/update/vmlinuz", vmlinuz);
    put("media/update/initramfs.cpio.zst", initramfs);
    let mut sums = String::new();
    for f in ["initramfs.cpio.zst", "vmlinuz"] {
        let h = sanforge::util::hash::sha256_file(&r.join("media/update").join(f)).unwrap();
        sums.push_str(&format!("{h}  {f}\n"));
    }
    put("media/update/SHA256SUMS", sums.as_bytes());
    d
}

#[test]
fn update_refuses_what_is_not_a_kernel_and_an_initramfs_signed_or_not() {
    use sanforge::contract::formats::{fake_bzimage, fake_zstd_cpio};
    use sanforge::init::persist;
    use sanforge::sys::FakeSys;
    let not_cpio = zstd::encode_all(b"#!/bin/sh\nrm -rf /\n".as_slice(), 3).unwrap();
    for (vmlinuz, initramfs, want) in [
        (b"#!/bin/sh\n".to_vec(), fake_zstd_cpio(b""), "vmlinuz is 10 bytes long, shorter than a kernel's boot header: it is not a kernel"),
        (vec![0u8; 4096], fake_zstd_cpio(b""), "vmlinuz has no boot sector signature (0x55 0xaa at 0x1fe): it is not a kernel"),
        (fake_bzimage(b""), b"070701plain".to_vec(), "initramfs.cpio.zst is not zstd-compressed (no zstd frame magic): it is not an initramfs"),
        (fake_bzimage(b""), not_cpio, "initramfs.cpio.zst is zstd-compressed but not a newc cpio archive (no `070701` header): it is not an initramfs"),
    ] {
        for signed in [false, true] {
            let d = update_tree(&vmlinuz, &initramfs);
            if signed {
                let keys = tempfile::tempdir().unwrap();
                let key = keys.path().join("update.key");
                sanforge::image::sign::keygen(&key).unwrap();
                let pubkey = std::fs::read(sanforge::image::sign::public_path(&key)).unwrap();
                std::fs::create_dir_all(d.path().join("etc/sanforge")).unwrap();
                std::fs::write(d.path().join("etc/sanforge/update.pub"), pubkey).unwrap();
                let k = sanforge::image::sign::load_signing_key(&key).unwrap();
                sanforge::image::sign::sign_dir(&d.path().join("media/update"), &k).unwrap();
            }
            let mut sys = FakeSys::new(d.path());
            let e = persist::update(&mut sys, Path::new("/media/update"), true).unwrap_err();
            assert_eq!(
                format!("{e:#}"),
                format!("refusing the update in /media/update: {want}"),
                "signed: {signed}"
            );
            assert!(sys.ops.is_empty(), "{:?}", sys.ops);
            assert!(!d.path().join("run/sanforge/esp/sanforge/b").exists());
        }
    }
    // A kernel and a zstd cpio pass.
    let d = update_tree(&fake_bzimage(b"k"), &fake_zstd_cpio(b"r"));
    let mut sys = FakeSys::new(d.path());
    assert_eq!(
        persist::update(&mut sys, Path::new("/media/update"), false).unwrap(),
        'b'
    );
}

#[test]
fn scst_accounts_are_named_filled_in_at_boot_and_recorded_privately() {
    let conf = "HANDLER vdisk_nullio {\n\tDEVICE d0\n}\nTARGET_DRIVER scst_local {\n\tTARGET scst_local_tgt {\n\t\tLUN 0 d0\n\t}\n}\nTARGET_DRIVER iscsi {\n\tIncomingUser secret:host2\n}\n";
    let tree = |with_secrets: bool| {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(
            d,
            "etc/sanforge/node.toml",
            "hostname = \"scst1\"\n[scst]\nconf = \"scst.conf\"\n",
        );
        write(d, "etc/sanforge/scst.conf", conf);
        let s = d.join("sys/kernel/scst_tgt");
        write(&s, "last_sysfs_mgmt_res", "0\n");
        write(&s, "handlers/vdisk_nullio/mgmt", "");
        write(&s, "targets/iscsi/mgmt", "");
        write(&s, "targets/scst_local/mgmt", "");
        write(&s, "targets/scst_local/scst_local_tgt/enabled", "0\n");
        write(&s, "targets/scst_local/scst_local_tgt/luns/mgmt", "");
        if with_secrets {
            write(
                d,
                "etc/sanforge/secrets/chap.toml",
                &format!("[chap.host2]\nuser = \"host2\"\npassword = \"{PASSWORD}\"\n"),
            );
        }
        t
    };
    // Without the account the SCST step fails: nothing written, ports stay disabled.
    let t = tree(false);
    let r = run(t.path(), &["boot"]);
    assert!(
        r.log.iter().any(
            |l| l.contains("SCST targets not configured, ports stay disabled")
                && l.contains(
                    "IncomingUser names CHAP secret `host2`, which is not in the node's secrets"
                )
        ),
        "{:?}",
        r.log
    );
    assert!(
        !r.ops.iter().any(|o| o.contains("scst_tgt/")),
        "{:?}",
        r.ops
    );
    assert_eq!(
        r.log.last().map(String::as_str),
        Some("state: degraded targets (ports disabled)")
    );
    // With it: written to SCST, printed redacted, recorded readable by root only.
    let t = tree(true);
    let r = run_redacted(t.path(), &["boot"]);
    assert_eq!(
        r.log.last().map(String::as_str),
        Some("ready"),
        "{:?}",
        r.log
    );
    assert!(
        r.ops
            .contains(&"write /sys/kernel/scst_tgt/targets/iscsi/mgmt add_attribute IncomingUser host2 <redacted>".to_string()),
        "{:?}",
        r.ops
    );
    assert!(!r.ops.iter().chain(&r.log).any(|l| l.contains(PASSWORD)));
    let rec = t.path().join("run/sanforge/scst.applied");
    assert_eq!(
        std::fs::metadata(&rec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(std::fs::read_to_string(&rec).unwrap().contains(PASSWORD));
}

#[test]
fn secrets_set_commits_a_private_file_to_the_config_partition_and_the_init_reads_it() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "etc/sanforge/node.toml", NODE);
    std::fs::create_dir_all(t.path().join("run/sanforge/config")).unwrap();
    let keys = tempfile::tempdir().unwrap();
    // Open to others: refused, nothing written.
    let sf = secrets_file(keys.path(), 0o644);
    let r = run(t.path(), &["secrets-set", sf.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("is open to its group and others (mode 0644)"),
        "{}",
        r.stderr
    );
    assert!(!t.path().join("run/sanforge/config/secrets.toml").exists());
    // Private: committed atomically, and the next apply fills the ACL from it.
    let sf = secrets_file(keys.path(), 0o600);
    let r = run(t.path(), &["secrets-set", sf.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.ops.contains(
            &"rename /run/sanforge/config/secrets.toml.new /run/sanforge/config/secrets.toml"
                .to_string()
        ),
        "{:?}",
        r.ops
    );
    let r = run_redacted(t.path(), &["apply-targets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.ops
            .iter()
            .any(|o| o.ends_with("/auth/password <redacted>")),
        "{:?}",
        r.ops
    );
}
