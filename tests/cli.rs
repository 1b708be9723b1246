//! The `sanforge` CLI on a throw-away project with a fake kernel tree: the whole
//! pipeline (stages, cache, outputs, manifest), rebuild behaviour, interrupted builds,
//! recipe and node errors, fetch against a loopback HTTP server, lock and --locked.

mod common;

use common::httpd::{closed_port_url, Route, Server};
use common::project::{text, Project};
use std::path::Path;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn build_writes_every_output_and_a_manifest() {
    let p = Project::new();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = p.root().join("out/test");
    for f in [
        "vmlinuz",
        "initramfs.cpio.zst",
        "boot.ipxe",
        "manifest.json",
        "SHA256SUMS",
        "logs/kernel.log",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let m = manifest(&out);
    assert_eq!(m["kernel"]["release"], "6.1.0-t");
    assert_eq!(m["modules"][0], "kernel/drivers/target/target_core_mod.ko");
    assert_eq!(m["node-config"]["hostname"], "test-node");
    // SHA256SUMS covers the outputs and matches them.
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for l in sums.lines() {
        let (sha, f) = l.split_once("  ").unwrap();
        let data = std::fs::read(out.join(f)).unwrap();
        assert_eq!(sha, sanforge::util::hash::sha256_bytes(&data), "{f}");
    }
    let ipxe = std::fs::read_to_string(out.join("boot.ipxe")).unwrap();
    assert!(
        ipxe.starts_with("#!ipxe") && ipxe.contains("initrd initramfs.cpio.zst"),
        "{ipxe}"
    );
    // The initramfs holds the init, the node config, the rendered overlay and the modules.
    let cpio = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc {} | cpio -t 2>/dev/null",
            out.join("initramfs.cpio.zst").display()
        ))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&cpio.stdout);
    for want in [
        "init",
        "etc/sanforge/node.toml",
        "etc/motd",
        "dev/console",
        "lib/modules/6.1.0-t/modules.dep",
    ] {
        assert!(
            listing.lines().any(|l| l == want),
            "{want} not in initramfs:\n{listing}"
        );
    }
    assert!(!listing.contains("motd.tera"), "template kept its suffix");
    assert!(
        !listing.contains("modules/6.1.0-t/build"),
        "build symlink leaked into the image"
    );
}

use std::process::Command;

#[test]
fn nothing_changed_runs_no_stage_and_node_change_skips_the_kernel() {
    let p = Project::new();
    assert!(p.run(&["build", "recipes/test.toml"]).status.success());
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ran: nothing"),
        "{}",
        text(&o)
    );

    let node = p.root().join("recipes/nodes/node.toml");
    let t = std::fs::read_to_string(&node)
        .unwrap()
        .replace("test-node", "test-node-2");
    std::fs::write(&node, t).unwrap();
    let plan = p.run(&["plan", "recipes/test.toml", "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let cached: Vec<(String, bool)> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["stage"].as_str().unwrap().to_string(),
                e["cached"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cached,
        vec![
            ("fetch".into(), true),
            ("kernel".into(), true),
            ("userland".into(), true),
            ("rootfs".into(), false),
            ("outputs".into(), false)
        ]
    );
    let o = p.run(&["build", "recipes/test.toml"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("ran: rootfs, outputs"), "{}", text(&o));
    assert_eq!(
        manifest(&p.root().join("out/test"))["node-config"]["hostname"],
        "test-node-2"
    );
}

#[test]
fn same_inputs_give_byte_identical_outputs_in_another_directory() {
    let a = Project::new();
    let b = Project::new();
    assert!(a.run(&["build", "recipes/test.toml"]).status.success());
    assert!(b.run(&["build", "recipes/test.toml"]).status.success());
    for f in ["vmlinuz", "initramfs.cpio.zst", "boot.ipxe"] {
        let x = std::fs::read(a.root().join("out/test").join(f)).unwrap();
        let y = std::fs::read(b.root().join("out/test").join(f)).unwrap();
        assert!(x == y, "{f} differs between two builds");
    }
}

#[test]
fn interrupted_build_is_rebuilt_without_cleanup() {
    use std::os::unix::process::CommandExt;
    let p = Project::new();
    let mut child = p
        .sanforge()
        .args(["build", "recipes/test.toml"])
        .env("FAKE_KERNEL_SLEEP", "30")
        .process_group(0)
        .spawn()
        .unwrap();
    // Wait until the kernel stage is compiling (its log says so), then kill the whole
    // process group, as Ctrl-C or a killed CI job would.
    let log = p.root().join("out/test.partial/logs/kernel.log");
    for _ in 0..200 {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("sleep")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling a process group this test created.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL)
    };
    let _ = child.wait();
    assert!(
        !p.root().join("out/test/manifest.json").exists(),
        "an interrupted build left an output"
    );
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(
        o.status.success(),
        "rebuild after interruption failed: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ran: kernel"),
        "{}",
        text(&o)
    );
}

#[test]
fn dropped_kernel_option_names_option_and_dependency() {
    let p = Project::new();
    std::fs::write(
        p.root().join("kernel-configs/base.config"),
        "CONFIG_64BIT=y\nCONFIG_SQUASHFS=y\n",
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("CONFIG_SQUASHFS") && e.contains("MISC_FILESYSTEMS"),
        "{}",
        text(&o)
    );
    assert!(
        e.contains("base.config:2"),
        "the fragment line is not named: {e}"
    );
    assert!(!p.root().join("out/test/manifest.json").exists());
    // `kconfig check` reports the same without compiling.
    let o = p.run(&["kconfig", "check", "recipes/test.toml"]);
    assert!(
        !o.status.success() && stderr(&o).contains("MISC_FILESYSTEMS"),
        "{}",
        text(&o)
    );
}

#[test]
fn failing_patch_names_patch_and_hunk() {
    let p = Project::new();
    std::fs::write(
        p.root().join("bad.patch"),
        "--- a/Kconfig\n+++ b/Kconfig\n@@ -1,2 +1,2 @@\n-this line is not there\n+replacement\n context\n",
    )
    .unwrap();
    p.write_recipe("patches = [\"bad.patch\"]");
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("bad.patch") && e.contains("Hunk #1 FAILED"),
        "{}",
        text(&o)
    );
}

#[test]
fn unknown_recipe_key_and_wrong_type_are_located() {
    let p = Project::new();
    let r = p.recipe();
    let t = std::fs::read_to_string(&r).unwrap().replace(
        "localversion = \"-t\"",
        "localversion = \"-t\"\nfrobnicate = true",
    );
    std::fs::write(&r, t).unwrap();
    let o = p.run(&["plan", "recipes/test.toml"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("test.toml:12:1") && e.contains("frobnicate"),
        "{e}"
    );

    let t = std::fs::read_to_string(&r)
        .unwrap()
        .replace("frobnicate = true\n", "")
        .replace(
            "source-date-epoch = 1767225600",
            "source-date-epoch = \"soon\"",
        );
    std::fs::write(&r, t).unwrap();
    let o = p.run(&["plan", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("test.toml:5:21") && e.contains("expected u64"),
        "{e}"
    );
}

#[test]
fn malformed_node_config_fails_the_build_with_its_location() {
    let p = Project::new();
    std::fs::write(p.root().join("recipes/nodes/node.toml"), "hostname = \"n\"\n[[network.interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.300/24\"]\n").unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("node.toml:4:") && e.contains("192.0.2.300/24"),
        "{e}"
    );
    let o = p.run(&["node", "check", "recipes/nodes/node.toml"]);
    assert!(
        !o.status.success() && stderr(&o).contains("node.toml:4:"),
        "{}",
        text(&o)
    );
}

fn url_recipe(p: &Project, urls: &[String], sha: &str) {
    let list = urls
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let t = std::fs::read_to_string(p.recipe()).unwrap();
    let t = t.replace(
        "source = { path = \"fake-linux\" }",
        &format!("source = {{ url = [{list}], sha256 = \"{sha}\" }}"),
    );
    std::fs::write(p.recipe(), t).unwrap();
}

#[test]
fn fetch_downloads_verifies_and_reports_bad_sources() {
    let body = b"pretend this is linux-6.1.tar.xz".to_vec();
    let sha = sanforge::util::hash::sha256_bytes(&body);
    let srv = Server::start(vec![
        ("/good", Route::Ok(body.clone())),
        ("/missing", Route::NotFound),
    ]);
    let p = Project::new();

    url_recipe(&p, &[srv.url("/missing"), srv.url("/good")], &sha);
    let o = p.run(&["fetch", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(p.cache.join("blobs/sha256").join(&sha).is_file());

    let wrong = "0".repeat(64);
    url_recipe(&Project::new(), &[], &wrong); // (format check of the helper itself)
    let q = Project::new();
    url_recipe(&q, &[srv.url("/good")], &wrong);
    let o = q.run(&["fetch", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains(&wrong) && e.contains(&sha),
        "expected and actual sha256 not both shown: {e}"
    );
    assert!(
        std::fs::read_dir(q.cache.join("blobs/sha256"))
            .unwrap()
            .next()
            .is_none(),
        "a bad download was cached"
    );

    let r = Project::new();
    url_recipe(&r, &[closed_port_url("/linux.tar.xz")], &sha);
    let o = r.run(&["fetch", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("fetch --import") && e.contains("/linux.tar.xz"),
        "{e}"
    );
    // Seeding the cache makes the same recipe work with no network at all.
    let f = r.root().join("linux.tar.xz");
    std::fs::write(&f, &body).unwrap();
    let o = r
        .sanforge()
        .args(["fetch", "--import"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&sha),
        "{}",
        text(&o)
    );
    let o = r.run(&["fetch", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn lock_and_locked_builds() {
    let p = Project::new();
    let o = p.run(&["build", "recipes/test.toml", "--locked"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("test.lock") && e.contains("sanforge lock"),
        "{e}"
    );
    let o = p.run(&["lock", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(p.root().join("recipes/test.lock").is_file());
    let o = p.run(&["plan", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    // The kernel tree changes: the lock is stale and --locked names the entry.
    std::fs::write(p.root().join("fake-linux/README"), "changed").unwrap();
    let o = p.run(&["build", "recipes/test.toml", "--locked"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("kernel") && e.contains("sanforge lock"),
        "{e}"
    );
}

#[test]
fn doctor_lists_tools_and_packages() {
    let p = Project::new();
    let o = p.run(&["doctor"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("qemu-system-x86_64")
            && out.contains("qemu-system-x86")
            && out.contains("libiscsi-bin"),
        "{out}"
    );
    // With an empty PATH, everything is missing and the install line names packages.
    let o = p
        .sanforge()
        .arg("doctor")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        !o.status.success() && out.contains("apt-get install") && out.contains("libiscsi-bin"),
        "{out}"
    );
}

#[test]
fn missing_host_tool_names_the_debian_package() {
    let p = Project::new();
    let o = p
        .sanforge()
        .args(["build", "recipes/test.toml"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("Debian package"), "{e}");
}

#[test]
fn template_error_names_the_file_and_line() {
    let p = Project::new();
    std::fs::write(
        p.root().join("overlays/base/etc/issue.tera"),
        "line one\n{{ node.hostname }}\n{% if %}\n",
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        e.contains("etc/issue.tera:3"),
        "template file and line not named: {e}"
    );
    // A variable that does not exist is named too.
    std::fs::write(
        p.root().join("overlays/base/etc/issue.tera"),
        "{{ node.no_such_field }}\n",
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("issue.tera") && e.contains("no_such_field"),
        "{e}"
    );
}

/// `sanforge run`'s server-hardware options: a bad value is refused before anything
/// starts, with the option and the values it accepts.
#[test]
fn run_refuses_bad_hardware_naming_the_flag_and_what_it_accepts() {
    let p = Project::new();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = p.root().join("out/test");
    let out = out.to_str().unwrap();
    let disk = p.root().join("d0.img");
    std::fs::write(&disk, vec![0u8; 4096]).unwrap();
    let disk = disk.to_str().unwrap();
    let bad_disk = format!("{disk},scsi");
    let cases: [(&[&str], &[&str]); 7] = [
        (
            &["--disk", &bad_disk],
            &[
                "--disk",
                "`scsi`",
                "virtio, ahci, nvme, megasas-gen2, mptsas1068",
            ],
        ),
        (
            &["--nic", "e1000"],
            &["--nic", "`e1000`", "virtio, e1000e, vmxnet3"],
        ),
        (
            &["--nic", "e1000e,net=tap"],
            &["--nic", "user, listen:PORT or connect:PORT"],
        ),
        (&["--machine", "isapc"], &["--machine", "pc", "q35"]),
        (
            &["--forward", "7000"],
            &["--forward", "HOST_PORT:GUEST_PORT"],
        ),
        (
            &["--disk", "/nonexistent/d.img,nvme"],
            &["--disk: cannot open /nonexistent/d.img"],
        ),
        (
            &["--nic", "e1000e", "--nic", "e1000e,mac=52:54:00:00:02:0f"],
            &["--nic: nic0 and nic1 both have MAC 52:54:00:00:02:0f"],
        ),
    ];
    for (args, want) in cases {
        let o = p
            .sanforge()
            .args([
                "run",
                out,
                "--until-ready",
                "--accel",
                "tcg",
                "--timeout",
                "1",
            ])
            .args(args)
            .env("PATH", "/nonexistent")
            .output()
            .unwrap();
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} was accepted: {e}");
        for w in want {
            assert!(e.contains(w), "{args:?}: no `{w}` in: {e}");
        }
    }
}
