//! `sanforge push OUT HOST` (issue 15, update over the network).
//!
//! Cheap tests run the CLI against outputs made here and loopback ports: a corrupted
//! output is refused before any connection, an unreachable host and a port without SSH
//! fail fast naming the host and the phase. One QEMU test
//! (`push_installs_a_second_build_on_slot_b_and_refuses_a_foreign_signature`) builds the
//! default recipe twice with two node configs (the kernel and userland come from the
//! cache), boots the first disk.img under OVMF with SSH forwarded, and pushes: an output
//! signed with another key is refused before anything is copied, a push killed mid-copy
//! leaves the node on its slot, the retry comes back ready on slot B with the second
//! node config, and the host key is the same after the reboot.

mod common;

use common::vm::{free_port, show, Vm};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn sanforge(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(dir);
    c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
    c.env("SANFORGE_PROGRESS", "plain");
    c.stdin(Stdio::null());
    c
}

/// A signed output directory with what a slot needs (fake payloads: nothing here
/// boots them) and its update key; returns the key's public file.
fn fake_out(dir: &Path) -> PathBuf {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("vmlinuz"), b"kernel").unwrap();
    std::fs::write(out.join("initramfs.cpio.zst"), b"initramfs").unwrap();
    std::fs::write(
        out.join("manifest.json"),
        r#"{"recipe": {"name": "storage-node"}, "keys": {"rootfs": "0123456789abcdef"}}"#,
    )
    .unwrap();
    let mut sums = String::new();
    for f in ["initramfs.cpio.zst", "manifest.json", "vmlinuz"] {
        let h = sanforge::util::hash::sha256_file(&out.join(f)).unwrap();
        sums.push_str(&format!("{h}  {f}\n"));
    }
    std::fs::write(out.join("SHA256SUMS"), sums).unwrap();
    let secret = dir.join("update.key");
    sanforge::image::sign::keygen(&secret).unwrap();
    let key = sanforge::image::sign::load_signing_key(&secret).unwrap();
    sanforge::image::sign::sign_dir(&out, &key).unwrap();
    sanforge::image::sign::public_path(&secret)
}

fn push(dir: &Path, out: &Path, port: u16, extra: &[&str]) -> Output {
    sanforge(dir)
        .arg("push")
        .arg(out)
        .args(["127.0.0.1", "--port", &port.to_string(), "--known-hosts"])
        .arg(dir.join("known_hosts"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_corrupted_output_is_refused_before_any_connection() {
    let t = tempfile::tempdir().unwrap();
    let pubkey = fake_out(t.path());
    std::fs::write(t.path().join("out/vmlinuz"), b"kernEl").unwrap();
    // A listener that counts connections: there must be none.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let o = push(
        t.path(),
        &t.path().join("out"),
        port,
        &["--pubkey", pubkey.to_str().unwrap()],
    );
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("push to 127.0.0.1 failed in phase `check`")
            && err.contains("vmlinuz was modified after signing"),
        "{err}"
    );
    assert!(l.accept().is_err(), "push connected to the node: {err}");
}

#[test]
fn an_unreachable_host_and_a_port_without_ssh_fail_fast_naming_host_and_phase() {
    let t = tempfile::tempdir().unwrap();
    fake_out(t.path());
    let out = t.path().join("out");
    // Nothing listens.
    let started = Instant::now();
    let o = push(t.path(), &out, free_port(), &[]);
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("push to 127.0.0.1 failed in phase `connect`")
            && err.contains("no SSH answer from the node")
            && err.contains("Connection refused"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");

    // Something listens that is not an SSH server: it closes every connection.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            drop(c);
        }
    });
    let started = Instant::now();
    let o = push(t.path(), &out, port, &[]);
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("push to 127.0.0.1 failed in phase `connect`")
            && err.contains("no SSH answer from the node")
            && err.contains("kex_exchange_identification"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");
}

// ---- one QEMU boot under OVMF -------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn keygen_ssh(path: &Path) -> String {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "push-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen is not installed: it comes with the Debian package `openssh-client`");
    assert!(o.status.success(), "{}", show(&o));
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

fn ok(o: Output, what: &str) -> Output {
    assert!(o.status.success(), "{what}: {}", show(&o));
    o
}

/// `recipes/NAME.toml`: the default recipe with `node`, the update key's overlay, a
/// fast zstd level, and (`disk`) the disk image or not.
fn recipe(d: &Path, name: &str, node: &str, disk: bool) {
    let r = repo();
    let mut text = std::fs::read_to_string(r.join("recipes/storage-node.toml"))
        .unwrap()
        .replace(
            "config = \"recipes/nodes/storage-node.toml\"",
            &format!("config = \"{node}\""),
        )
        .replace(
            "overlays = [\"overlays/base\"]",
            "overlays = [\"overlays/base\", \"update-key\"]",
        )
        .replace("zstd-level = 19", "zstd-level = 3");
    if !disk {
        let line = text
            .lines()
            .find(|l| l.starts_with("disk = "))
            .unwrap()
            .to_string();
        text = text.replace(&line, "");
    }
    std::fs::write(
        d.join(format!("recipes/{name}.toml")),
        format!("allow-outside-project = [\"{}\"]\n{text}", r.display()),
    )
    .unwrap();
    std::fs::copy(
        r.join("recipes/storage-node.lock"),
        d.join(format!("recipes/{name}.lock")),
    )
    .unwrap();
}

fn ssh(port: u16, key: &Path, known: &Path, script: &str) -> Output {
    Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
        ])
        .args(["-o", "IdentitiesOnly=yes", "-i"])
        .arg(key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known.display()))
        .args(["-p", &port.to_string(), "root@127.0.0.1", script])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn status(d: &Path, port: u16, key: &Path) -> serde_json::Value {
    let o = ok(
        sanforge(d)
            .args([
                "status",
                "127.0.0.1",
                "--json",
                "--port",
                &port.to_string(),
                "-i",
            ])
            .arg(key)
            .arg("--known-hosts")
            .arg(d.join("known_hosts"))
            .output()
            .unwrap(),
        "sanforge status",
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn push_installs_a_second_build_on_slot_b_and_refuses_a_foreign_signature() {
    if common::skip_e2e("push_installs_a_second_build_on_slot_b_and_refuses_a_foreign_signature") {
        return;
    }
    let test_started = Instant::now();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let r = repo();
    for x in ["kernel-configs", "overlays"] {
        std::os::unix::fs::symlink(r.join(x), d.join(x)).unwrap();
    }
    std::fs::create_dir_all(d.join("recipes")).unwrap();
    std::fs::create_dir_all(d.join("keys")).unwrap();
    // The update key the image trusts (baked in by an overlay), and a stranger's.
    for k in ["update", "other"] {
        ok(
            sanforge(d)
                .args(["keygen", "--out"])
                .arg(d.join("keys").join(k))
                .output()
                .unwrap(),
            "keygen",
        );
    }
    std::fs::create_dir_all(d.join("update-key/etc/sanforge")).unwrap();
    std::fs::copy(
        d.join("keys/update.pub"),
        d.join("update-key/etc/sanforge/update.pub"),
    )
    .unwrap();
    let key = d.join("id_push");
    let public = keygen_ssh(&key);
    let node = std::fs::read_to_string(r.join("recipes/nodes/storage-node.toml")).unwrap();
    let ssh_cfg = format!("\n[ssh]\nauthorized-keys = [\"{public}\"]\n");
    std::fs::write(d.join("node-a.toml"), format!("{node}{ssh_cfg}")).unwrap();
    let node_b = node.replace("hostname = \"san-demo\"", "hostname = \"san-pushed\"");
    assert_ne!(node_b, node);
    std::fs::write(d.join("node-b.toml"), format!("{node_b}{ssh_cfg}")).unwrap();
    recipe(d, "a", "node-a.toml", true);
    recipe(d, "b", "node-b.toml", false);
    let (out_a, out_b, foreign) = (d.join("out/a"), d.join("out/b"), d.join("out/foreign"));
    let t0 = Instant::now();
    for (recipe, out) in [("recipes/a.toml", &out_a), ("recipes/b.toml", &out_b)] {
        ok(
            sanforge(d)
                .args(["build", recipe, "--locked", "--out"])
                .arg(out)
                .output()
                .unwrap(),
            "build",
        );
    }
    eprintln!("two builds: {:.1} s", t0.elapsed().as_secs_f64());
    std::fs::create_dir_all(&foreign).unwrap();
    for e in std::fs::read_dir(&out_b).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), foreign.join(e.file_name())).unwrap();
        }
    }
    for (out, k) in [(&out_b, "keys/update"), (&foreign, "keys/other")] {
        ok(
            sanforge(d)
                .arg("sign")
                .arg(out)
                .arg("--key")
                .arg(d.join(k))
                .output()
                .unwrap(),
            "sign",
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_b.join("manifest.json")).unwrap())
            .unwrap();
    let version_b = &manifest["keys"]["rootfs"].as_str().unwrap()[..12];

    let (iscsi, port) = (free_port(), free_port());
    let _vm = Vm(out_a.clone());
    let t0 = Instant::now();
    let o = sanforge(d)
        .arg("run")
        .arg(&out_a)
        .args(["--boot", "uefi", "--reboot", "--until-ready", "--quiet"])
        .args(["--timeout", "600", "--iscsi-port", &iscsi.to_string()])
        .args(["--forward", &format!("{port}:22")])
        .output()
        .unwrap();
    let console = || std::fs::read_to_string(d.join("out/a.run/console.log")).unwrap_or_default();
    assert!(o.status.success(), "not ready: {}\n{}", show(&o), console());
    eprintln!("first boot under OVMF: {:.1} s", t0.elapsed().as_secs_f64());
    let known = d.join("known_hosts");
    // dropbear may still be starting right after ready.
    let mut before = None;
    for _ in 0..30 {
        let o = ssh(port, &key, &known, "true");
        if o.status.success() {
            before = Some(status(d, port, &key));
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let before = before.unwrap_or_else(|| panic!("no SSH after ready:\n{}", console()));
    assert_eq!(before["boot"]["slot"], "a", "{before:#}");
    assert_eq!(before["hostname"], "san-demo");
    let host_key = std::fs::read_to_string(&known).unwrap();

    // Every line the init printed on the console up to ready is in the kernel log too:
    // none was rate-limited away (the init turns printk_devkmsg on, and writes the lines
    // of before /dev/kmsg could be opened once it is).
    let o = ok(ssh(port, &key, &known, "busybox dmesg"), "dmesg");
    let dmesg = String::from_utf8_lossy(&o.stdout).into_owned();
    let in_ring: std::collections::HashSet<&str> = dmesg
        .lines()
        .filter_map(|l| l.split_once("sanforge-init: ").map(|x| x.1.trim_end()))
        .collect();
    let con = console();
    let on_console: Vec<&str> = con
        .lines()
        .filter_map(|l| l.split_once("sanforge-init: ").map(|x| x.1.trim_end()))
        .take_while(|l| *l != "ready")
        .collect();
    assert!(on_console.len() > 20, "{con}");
    let missing: Vec<&&str> = on_console
        .iter()
        .filter(|l| !in_ring.contains(**l))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} init lines are not in dmesg: {missing:?}\n--- dmesg\n{dmesg}",
        missing.len(),
        on_console.len()
    );
    // The services' output is in the same ring, by service: dropbear's log of the
    // logins above.
    let o = ok(ssh(port, &key, &known, "/init logs --service sshd"), "logs");
    let sshd = String::from_utf8_lossy(&o.stdout);
    assert!(
        sshd.lines()
            .any(|l| l.contains("] sshd: ") && l.contains("auth succeeded for 'root'")),
        "{sshd}"
    );

    // Signed by another key: refused before anything is copied.
    let key_arg = ["-i", key.to_str().unwrap()];
    let o = push(d, &foreign, port, &key_arg);
    assert!(!o.status.success(), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("push to 127.0.0.1 failed in phase `check`")
            && err.contains("made with another key"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains(" copy "));
    let o = ok(ssh(port, &key, &known, "ls /run/sanforge"), "ls");
    assert!(
        !String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l == "push"),
        "a refused push staged files: {}",
        show(&o)
    );

    // Killed mid-copy: the node keeps its slot; its staging directory is all that changed.
    let mut child = sanforge(d)
        .arg("push")
        .arg(&out_b)
        .args(["127.0.0.1", "--port", &port.to_string(), "--known-hosts"])
        .arg(&known)
        .args(key_arg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut seen = Vec::new();
    for l in lines.by_ref() {
        let l = l.unwrap();
        let copying = l.contains(" copy    vmlinuz");
        seen.push(l);
        if copying {
            break;
        }
    }
    // The whole group: the push and its ssh.
    ok(
        Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .output()
            .unwrap(),
        "kill",
    );
    let _ = child.wait();
    assert!(
        seen.last().is_some_and(|l| l.contains(" copy    vmlinuz")),
        "the push never copied: {seen:?}"
    );
    let mid = status(d, port, &key);
    assert_eq!(mid["boot"]["slot"], "a", "{mid:#}");
    assert_eq!(mid["boot"]["id"], before["boot"]["id"], "the node rebooted");
    assert_eq!(mid["boot"]["entries"], before["boot"]["entries"], "{mid:#}");

    // The retry: copied, installed, rebooted, ready on slot B with node B's config.
    let t0 = Instant::now();
    let o = ok(push(d, &out_b, port, &key_arg), "push");
    let push_secs = t0.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&o.stdout);
    eprintln!("{stdout}");
    for phase in [
        " check ",
        " connect ",
        " copy ",
        " update ",
        " reboot ",
        " ready ",
    ] {
        assert!(stdout.contains(phase), "no `{phase}` line:\n{stdout}");
    }
    let after = status(d, port, &key);
    assert_eq!(after["boot"]["slot"], "b", "{after:#}\n{}", console());
    assert_eq!(after["image"]["version"], version_b);
    assert_eq!(after["hostname"], "san-pushed");
    assert_ne!(after["boot"]["id"], before["boot"]["id"]);
    assert_eq!(after["timeline"]["state"], "ready");
    // Same host key after the reboot: ssh (StrictHostKeyChecking) accepted it and
    // known_hosts did not change.
    assert_eq!(std::fs::read_to_string(&known).unwrap(), host_key);
    eprintln!(
        "push: {push_secs:.1} s to ready on slot b; test wall {:.1} s",
        test_started.elapsed().as_secs_f64()
    );
}
