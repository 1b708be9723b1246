//! The squashfs root (`[outputs] root = "squashfs"`): with the fake kernel project,
//! the outputs, the GPT (root and root-verity partitions per slot), the loader entry's
//! verity command line, the hash tree checked against the partition bytes,
//! reproducibility (`build --verify`) and the recipe errors; with the real kernel
//! (skipped under SANFORGE_SKIP_E2E), a UEFI boot of disk.img to ready on the verity
//! root, and a slot whose root partition has one byte changed that never gets ready.

mod common;

use common::project::{text, Project};
use common::vm::{free_port, Vm};
use sanforge::contract::verity;
use sanforge::image::disk;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const FAKE_BOOT: &[u8] = b"MZ fake systemd-bootx64.efi\n";

/// A fake project with a disk image of `size` and a squashfs root.
fn squashfs_project(size: &str) -> Project {
    let p = Project::new();
    std::fs::write(p.root().join("fake-boot.efi"), FAKE_BOOT).unwrap();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    let recipe = recipe.replace(
        "zstd-level = 3",
        &format!(
            "zstd-level = 3\nroot = \"squashfs\"\ndisk = {{ size = \"{size}\", boot-tries = 3 }}"
        ),
    ) + "\n[sources]\nsystemd-boot = { path = \"fake-boot.efi\" }\n";
    std::fs::write(p.recipe(), recipe).unwrap();
    // A root that weighs something next to the init (incompressible bytes), so the
    // init-only initramfs of the slots is measurably smaller than the whole root.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(p.root().join("overlays/base/etc/noise.bin"), noise).unwrap();
    p
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (start, size) in bytes of the partition named `name`, from `sfdisk --json`.
fn partition(img: &Path, name: &str) -> (u64, u64) {
    let j: serde_json::Value =
        serde_json::from_str(&run(Command::new("sfdisk").arg("--json").arg(img))).unwrap();
    let p = j["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no partition {name}: {j}"));
    (
        p["start"].as_u64().unwrap() * 512,
        p["size"].as_u64().unwrap() * 512,
    )
}

fn read_range(img: &Path, (start, len): (u64, u64)) -> Vec<u8> {
    let all = std::fs::read(img).unwrap();
    all[start as usize..(start + len) as usize].to_vec()
}

#[test]
fn squashfs_root_disk_has_verity_partitions_and_command_line() {
    let p = squashfs_project("64MiB");
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = p.root().join("out/test");
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for f in [
        "root.squashfs",
        "root.verity",
        "init.cpio.zst",
        "disk.img",
        "initramfs.cpio.zst",
    ] {
        assert!(sums.contains(&format!("  {f}\n")), "{f}: {sums}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["root"]["type"], "squashfs");
    let root_hash = m["root"]["verity"]["root_hash"]
        .as_str()
        .unwrap()
        .to_string();

    // The squashfs holds the whole root; the slots' initramfs only the init.
    let sq = out.join("root.squashfs");
    let listing = run(Command::new("rdsquashfs").arg("--describe").arg(&sq));
    for want in [
        "file init 0755 0 0",
        "nod dev/console 0600 0 0 c 5 1",
        "file etc/sanforge/node.toml 0644 0 0",
        "file etc/motd 0644 0 0",
    ] {
        assert!(listing.contains(want), "{want}:\n{listing}");
    }
    let motd = run(Command::new("rdsquashfs")
        .args(["--cat", "/etc/motd"])
        .arg(&sq));
    assert_eq!(motd, "welcome to test-node (test)\n");
    let small = std::fs::metadata(out.join("init.cpio.zst")).unwrap().len();
    let big = std::fs::metadata(out.join("initramfs.cpio.zst"))
        .unwrap()
        .len();
    assert!(small < big, "init.cpio.zst {small} >= initramfs {big}");

    // GPT: ESP, root/verity for A and B, config; sfdisk checks the CRCs.
    let img = out.join("disk.img");
    let dump = run(Command::new("sfdisk").arg("--dump").arg(&img));
    let lines: Vec<&str> = dump.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(lines.len(), 6, "{dump}");
    for (i, slot) in [(1, 'a'), (3, 'b')] {
        let (d, h) = sanforge::contract::partitions::root_partuuids("test", slot);
        assert!(
            lines[i].contains(&format!("type={}", disk::ROOT_TYPE)),
            "{dump}"
        );
        assert!(lines[i].contains(&format!("uuid={d}")), "{dump}");
        assert!(
            lines[i + 1].contains(&format!("type={}", disk::ROOT_VERITY_TYPE)),
            "{dump}"
        );
        assert!(lines[i + 1].contains(&format!("uuid={h}")), "{dump}");
    }
    assert!(run(Command::new("sfdisk").arg("--verify").arg(&img)).contains("No errors detected"));

    // Each slot's partitions hold the squashfs and its tree; hashing the partition's
    // data gives the root hash of the command line.
    let sq_bytes = std::fs::read(&sq).unwrap();
    let tree = std::fs::read(out.join("root.verity")).unwrap();
    for slot in ["A", "B"] {
        let part = read_range(&img, partition(&img, &format!("SANFORGE-ROOT-{slot}")));
        assert_eq!(&part[..sq_bytes.len()], sq_bytes.as_slice());
        let hp = read_range(&img, partition(&img, &format!("SANFORGE-VERITY-{slot}")));
        assert_eq!(&hp[..tree.len()], tree.as_slice());
        let salt = verity::salt_for("test");
        let (area, root) = verity::tree(&part[..sq_bytes.len()], &salt).unwrap();
        assert_eq!(hex::encode(root), root_hash);
        assert_eq!(area, tree);
    }

    // Slot A's entry: its own PARTUUIDs and the root hash; its initramfs is the small one.
    let esp = format!("{}@@1M", img.display());
    let entry = run(Command::new("mtype").env("MTOOLS_SKIP_CHECK", "1").args([
        "-i",
        &esp,
        "::/loader/entries/sanforge-a+3.conf",
    ]));
    let (d, h) = sanforge::contract::partitions::root_partuuids("test", 'a');
    let blocks = sq_bytes.len() / 4096;
    assert!(
        entry.contains(&format!(
            "sanforge.root=verity dm-mod.create=\"sanforge-root,,,ro,0 {} verity 1 PARTUUID={} PARTUUID={} 4096 4096 {blocks} 0 sha256 {root_hash} ",
            blocks * 8,
            d.to_lowercase(),
            h.to_lowercase()
        )),
        "{entry}"
    );
    assert!(entry.trim_end().ends_with("sanforge.slot=a"), "{entry}");
    let initrd = Command::new("mtype")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-i", &esp, "::/sanforge/a/initramfs.cpio.zst"])
        .output()
        .unwrap();
    assert!(initrd.status.success());
    assert_eq!(
        initrd.stdout,
        std::fs::read(out.join("init.cpio.zst")).unwrap()
    );
}

#[test]
fn squashfs_root_outputs_are_reproducible() {
    let p = squashfs_project("64MiB");
    let o = p.run(&["build", "recipes/test.toml", "--verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let all = text(&o);
    for f in ["root.squashfs", "root.verity", "init.cpio.zst", "disk.img"] {
        assert!(
            all.lines()
                .any(|l| l.contains(f) && l.contains("identical")),
            "{f}: {all}"
        );
    }
}

#[test]
fn squashfs_root_without_disk_or_with_a_small_disk_is_refused() {
    let p = squashfs_project("64MiB");
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    std::fs::write(
        p.recipe(),
        recipe.replace("disk = { size = \"64MiB\", boot-tries = 3 }", ""),
    )
    .unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("root = \"squashfs\"") && err.contains("disk = "),
        "{err}"
    );

    let p = squashfs_project("20MiB");
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("disk size 20 MiB is too small") && err.contains("MiB are needed"),
        "{err}"
    );
}

// --- real kernel ---------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default recipe with `root = "squashfs"` (same [kernel] section, so the cached
/// kernel is reused), as a project in `dir` that links the repository's overlays,
/// kernel configs and node configs.
fn verity_recipe(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("recipes")).unwrap();
    for d in ["overlays", "kernel-configs"] {
        std::os::unix::fs::symlink(repo().join(d), dir.join(d)).unwrap();
    }
    std::os::unix::fs::symlink(repo().join("recipes/nodes"), dir.join("recipes/nodes")).unwrap();
    let text = std::fs::read_to_string(repo().join("recipes/storage-node.toml")).unwrap();
    assert!(text.contains("\n[outputs]\n"));
    let text = text.replace("\n[outputs]\n", "\n[outputs]\nroot = \"squashfs\"\n");
    // The linked directories lead into the repository: the recipe opts in.
    let text = format!("allow-outside-project = [\"{}\"]\n{text}", repo().display());
    let recipe = dir.join("recipes/storage-node.toml");
    std::fs::write(&recipe, text).unwrap();
    std::fs::copy(
        repo().join("recipes/storage-node.lock"),
        dir.join("recipes/storage-node.lock"),
    )
    .unwrap();
    recipe
}

fn sanforge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
    c.current_dir(repo());
    c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
    c.env("SANFORGE_PROGRESS", "plain");
    c
}

fn console_of(out: &Path) -> PathBuf {
    let mut run_dir = out.as_os_str().to_owned();
    run_dir.push(".run");
    PathBuf::from(run_dir).join("console.log")
}

/// Boots `out/disk.img` under OVMF and waits until the console says `ready` or
/// `state: degraded` (or `run` gives up); returns the console.
fn boot_uefi(out: &Path) -> String {
    let _vm = Vm(out.to_path_buf());
    let port = free_port();
    // A console left by an earlier boot of the same directory must not be read as this one's.
    let _ = std::fs::remove_file(console_of(out));
    let mut child = sanforge()
        .arg("run")
        .arg(out)
        .args([
            "--boot",
            "uefi",
            "--until-ready",
            "--timeout",
            "600",
            "--quiet",
        ])
        .args(["--iscsi-port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = console_of(out);
    let mut console = String::new();
    // `run` returns at ready; the blessing line follows it, give it up to a minute. A
    // degraded boot ends with the state line, printed after the timeline, whose last
    // row also says `state: degraded` (indented): wait for the line itself.
    let mut after_exit = 0;
    for _ in 0..7000 {
        console = std::fs::read_to_string(&log).unwrap_or_default();
        if console.contains("boot slot") || console.contains("sanforge-init: state: degraded") {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            after_exit += 1;
            if after_exit > 600 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    console
}

/// Real kernel: disk.img of the squashfs recipe boots under OVMF to ready with `/` an
/// overlay over the dm-verity squashfs; a copy whose slot-A root partition has one
/// byte changed stops degraded with the reason and never gets ready.
#[test]
fn squashfs_root_boots_under_uefi_and_a_corrupted_root_never_gets_ready() {
    if common::skip_e2e("squashfs_root_boots_under_uefi_and_a_corrupted_root_never_gets_ready") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let recipe = verity_recipe(&tmp.path().join("project"));
    let out = tmp.path().join("out");
    let o = sanforge()
        .arg("build")
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", text(&o));
    let size = |f: &str| std::fs::metadata(out.join(f)).unwrap().len();
    eprintln!(
        "root.squashfs {} bytes, root.verity {} bytes, init.cpio.zst {} bytes, initramfs.cpio.zst {} bytes",
        size("root.squashfs"),
        size("root.verity"),
        size("init.cpio.zst"),
        size("initramfs.cpio.zst")
    );

    let started = Instant::now();
    let console = boot_uefi(&out);
    eprintln!(
        "uefi boot to ready: {:.1}s (TCG)",
        started.elapsed().as_secs_f64()
    );
    assert!(console.contains("sanforge-init: ready"), "{console}");
    assert!(
        console.contains(
            "sanforge-init: root: squashfs /dev/dm-0 (dm-verity sanforge-root over vda2, vda3)"
        ),
        "{console}"
    );
    // The kernel's mount table as the init printed it after the switch.
    assert!(
        console
            .lines()
            .any(|l| l.contains("root mount: /dev/dm-0 /run/sanforge/root-ro squashfs ro")),
        "{console}"
    );
    assert!(
        console
            .lines()
            .any(|l| l.contains("root mount: overlay / overlay")),
        "{console}"
    );
    assert!(
        console.contains("sanforge-init: boot slot blessed: sanforge-a.conf"),
        "{console}"
    );

    // One byte of slot A's root partition changed (in the squashfs superblock block).
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["disk.img", "manifest.json"] {
        std::fs::copy(out.join(f), bad.join(f)).unwrap();
    }
    let img = bad.join("disk.img");
    let (start, _) = partition(&img, "SANFORGE-ROOT-A");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .unwrap();
    let mut byte = [0u8; 1];
    f.seek(SeekFrom::Start(start + 1000)).unwrap();
    std::io::Read::read_exact(&mut f, &mut byte).unwrap();
    f.seek(SeekFrom::Start(start + 1000)).unwrap();
    f.write_all(&[byte[0] ^ 0xff]).unwrap();
    drop(f);
    let console = boot_uefi(&bad);
    if let Some(l) = console
        .lines()
        .find(|l| l.contains("sanforge-init: degraded:"))
    {
        eprintln!("corrupted slot: {l}");
    }
    assert!(!console.contains("sanforge-init: ready"), "{console}");
    assert!(
        console.contains("sanforge-init: state: degraded"),
        "{console}"
    );
    assert!(
        console.contains("does not match the root hash"),
        "{console}"
    );
    assert!(!console.contains("boot slot blessed"), "{console}");

    // Slot B's own entry (as an update would write it: newer, one try) boots B's intact
    // root partitions, checked against the root hash on B's command line.
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let info: verity::Verity = verity::Verity {
        root_hash: m["root"]["verity"]["root_hash"].as_str().unwrap().into(),
        salt: m["root"]["verity"]["salt"].as_str().unwrap().into(),
        data_blocks: m["root"]["verity"]["data_blocks"].as_u64().unwrap(),
        hash_blocks: m["root"]["verity"]["hash_blocks"].as_u64().unwrap(),
    };
    let (d, h) = sanforge::contract::partitions::root_partuuids("storage-node", 'b');
    let cmdline = format!(
        "{} {}",
        m["kernel"]["cmdline"].as_str().unwrap(),
        verity::cmdline(&info, &d, &h)
    );
    let entry_b = tmp.path().join("sanforge-b+1.conf");
    std::fs::write(
        &entry_b,
        sanforge::contract::loader::entry("storage-node", 'b', 2, &cmdline),
    )
    .unwrap();
    let esp = format!("{}@@1M", img.display());
    run(Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-i", &esp])
        .arg(&entry_b)
        .arg("::/loader/entries/"));
    let console = boot_uefi(&bad);
    assert!(
        console.contains(
            "sanforge-init: root: squashfs /dev/dm-0 (dm-verity sanforge-root over vda4, vda5)"
        ),
        "{console}"
    );
    assert!(
        console.contains("sanforge-init: boot slot blessed: sanforge-b.conf"),
        "{console}"
    );
}

/// A node booted from squashfs slot A (fake tree): both slots' root partitions as
/// block devices with their GPT names, the ESP as mounted, and an update directory
/// with a new squashfs root (`tree_ok` false: a root.verity that is not its tree).
fn squashfs_node(tree_ok: bool, update_has_root: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().to_path_buf();
    let put = |rel: &str, data: &[u8]| {
        let p = r.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    let salt = verity::salt_for("storage-node");
    let old = verity::Verity {
        root_hash: "11".repeat(32),
        salt: hex::encode(salt),
        data_blocks: 2,
        hash_blocks: 1,
    };
    let (ad, ah) = sanforge::contract::partitions::root_partuuids("storage-node", 'a');
    let opts = format!("console=ttyS0 {}", verity::cmdline(&old, &ad, &ah));
    put(
        "proc/cmdline",
        format!("{opts} sanforge.slot=a\n").as_bytes(),
    );
    put(
        "run/sanforge/esp/loader/entries/sanforge-a.conf",
        sanforge::contract::loader::entry("storage-node", 'a', 1, &opts).as_bytes(),
    );
    for (n, dev) in [(2, 'a'), (4, 'b')] {
        let (root, hash) = sanforge::contract::partitions::root_names(dev);
        for (k, name) in [(n, root), (n + 1, hash)] {
            put(
                &format!("sys/class/block/vda{k}/uevent"),
                format!("MAJOR=254\nMINOR={k}\nDEVNAME=vda{k}\nDEVTYPE=partition\nPARTN={k}\nPARTNAME={name}\n").as_bytes(),
            );
            put(&format!("sys/class/block/vda{k}/size"), b"256\n");
            put(&format!("dev/vda{k}"), &[0u8; 256 * 512]);
        }
    }
    let data: Vec<u8> = (0..3 * 4096).map(|i| (i % 253) as u8).collect();
    let (mut area, root) = verity::tree(&data, &salt).unwrap();
    if !tree_ok {
        area[40] ^= 1;
    }
    let info = verity::Verity {
        root_hash: hex::encode(root),
        salt: hex::encode(salt),
        data_blocks: 3,
        hash_blocks: 1,
    };
    // `update` checks the formats: a kernel header and zstd cpios around the payloads.
    use sanforge::contract::formats::{fake_bzimage, fake_zstd_cpio};
    put("media/update/vmlinuz", &fake_bzimage(b"new kernel"));
    put(
        "media/update/initramfs.cpio.zst",
        &fake_zstd_cpio(b"new whole root"),
    );
    let mut files = vec!["initramfs.cpio.zst", "vmlinuz"];
    if update_has_root {
        put("media/update/init.cpio.zst", &fake_zstd_cpio(b"new init"));
        put("media/update/root.squashfs", &data);
        put("media/update/root.verity", &area);
        put(
            "media/update/manifest.json",
            serde_json::json!({ "root": { "type": "squashfs", "verity": info } })
                .to_string()
                .as_bytes(),
        );
        files.extend([
            "init.cpio.zst",
            "root.squashfs",
            "root.verity",
            "manifest.json",
        ]);
    }
    let mut sums = String::new();
    for f in files {
        let h = sanforge::util::hash::sha256_file(&r.join("media/update").join(f)).unwrap();
        sums.push_str(&format!("{h}  {f}\n"));
    }
    put("media/update/SHA256SUMS", sums.as_bytes());
    d
}

/// `sanforge-init update` on a squashfs slot: the new root goes to the other slot's
/// root and root-verity partitions, the slot's initramfs is the init alone, and its
/// entry carries the new root hash with its own PARTUUIDs.
#[test]
fn update_writes_the_other_slots_root_partitions_and_entry() {
    use sanforge::init::persist;
    use sanforge::sys::FakeSys;
    let d = squashfs_node(true, true);
    let r = d.path();
    let mut sys = FakeSys::new(r);
    let slot = persist::update(&mut sys, Path::new("/media/update"), true).unwrap();
    assert_eq!(slot, 'b');
    let upd = r.join("media/update");
    let sq = std::fs::read(upd.join("root.squashfs")).unwrap();
    let tree = std::fs::read(upd.join("root.verity")).unwrap();
    assert!(std::fs::read(r.join("dev/vda4")).unwrap().starts_with(&sq));
    assert!(std::fs::read(r.join("dev/vda5"))
        .unwrap()
        .starts_with(&tree));
    // Slot A's partitions are untouched.
    assert!(std::fs::read(r.join("dev/vda2"))
        .unwrap()
        .iter()
        .all(|b| *b == 0));
    let esp = r.join("run/sanforge/esp");
    assert_eq!(
        std::fs::read(esp.join("sanforge/b/initramfs.cpio.zst")).unwrap(),
        sanforge::contract::formats::fake_zstd_cpio(b"new init")
    );
    let entry = std::fs::read_to_string(esp.join("loader/entries/sanforge-b+1.conf")).unwrap();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(upd.join("manifest.json")).unwrap()).unwrap();
    let root_hash = m["root"]["verity"]["root_hash"].as_str().unwrap();
    let (bd, bh) = sanforge::contract::partitions::root_partuuids("storage-node", 'b');
    let (ad, _) = sanforge::contract::partitions::root_partuuids("storage-node", 'a');
    assert!(entry.contains(&format!("sha256 {root_hash} ")), "{entry}");
    assert!(
        entry.contains(&format!("PARTUUID={}", bd.to_lowercase())),
        "{entry}"
    );
    assert!(
        entry.contains(&format!("PARTUUID={}", bh.to_lowercase())),
        "{entry}"
    );
    assert!(!entry.contains(&ad.to_lowercase()), "{entry}");
    assert_eq!(entry.matches("dm-mod.create=").count(), 1, "{entry}");
    assert!(
        entry.contains("options console=ttyS0 sanforge.root=verity "),
        "{entry}"
    );
    let ops: Vec<String> = sys.ops.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        ops.last().map(String::as_str),
        Some("kill 1 USR1"),
        "{ops:?}"
    );
}

/// Refused, with nothing of the ESP's entries changed and no reboot: a root.verity that
/// is not the tree of root.squashfs, and updates whose root kind differs from the
/// booted one.
#[test]
fn update_refuses_a_bad_tree_or_a_different_root_kind() {
    use sanforge::init::persist;
    use sanforge::sys::FakeSys;
    let check = |d: &tempfile::TempDir, want: &str| {
        let mut sys = FakeSys::new(d.path());
        let e = persist::update(&mut sys, Path::new("/media/update"), true).unwrap_err();
        assert!(format!("{e:#}").contains(want), "{e:#}");
        assert!(!d
            .path()
            .join("run/sanforge/esp/loader/entries/sanforge-b+1.conf")
            .exists());
        assert!(!sys.ops.iter().any(|o| o.to_string().starts_with("kill")));
    };
    check(
        &squashfs_node(false, true),
        "root.verity is not the hash tree of root.squashfs",
    );
    check(&squashfs_node(true, false), "the update has none");
    let d = squashfs_node(true, true);
    std::fs::write(
        d.path().join("proc/cmdline"),
        "console=ttyS0 sanforge.slot=a\n",
    )
    .unwrap();
    check(&d, "this node runs from RAM");
}
