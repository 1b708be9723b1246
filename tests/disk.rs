//! The disk image (`disk.img`) and its life on a node: the GPT and FAT layout checked
//! with the field's tools (sfdisk, mtools), reproducibility, the too-small error, the
//! init's config partition, A/B update and blessing against fake trees, and (with a
//! real kernel, skipped under SANFORGE_SKIP_E2E) a UEFI boot under OVMF.

mod common;

use common::project::{text, Project};
use common::vm::{free_port, Vm};
use sanforge::image::disk;
use std::path::{Path, PathBuf};
use std::process::Command;

const FAKE_BOOT: &[u8] = b"MZ fake systemd-bootx64.efi\n";

/// A fake project whose recipe asks for a disk image of `size`.
fn disk_project(size: &str) -> Project {
    let p = Project::new();
    std::fs::write(p.root().join("fake-boot.efi"), FAKE_BOOT).unwrap();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap();
    let recipe = recipe.replace(
        "zstd-level = 3",
        &format!("zstd-level = 3\ndisk = {{ size = \"{size}\", boot-tries = 3 }}"),
    ) + "\n[sources]\nsystemd-boot = { path = \"fake-boot.efi\" }\n";
    std::fs::write(p.recipe(), recipe).unwrap();
    p
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mtools(args: &[&str]) -> String {
    run(Command::new(args[0])
        .args(&args[1..])
        .env("MTOOLS_SKIP_CHECK", "1"))
}

#[test]
fn disk_image_has_gpt_esp_slots_and_config_partition() {
    let p = disk_project("64MiB");
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = p.root().join("out/test");
    let img = out.join("disk.img");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 64 << 20);
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    assert!(sums.contains("  disk.img\n"), "{sums}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["disk"]["size"], "64MiB");
    assert!(m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["file"] == "disk.img"));

    // The GPT as sfdisk reads it.
    let dump = run(Command::new("sfdisk").arg("--dump").arg(&img));
    let disk_guid = sanforge::contract::partitions::guid_string(
        &sanforge::contract::partitions::derived_guid("test", "disk"),
    );
    assert!(dump.contains("label: gpt"), "{dump}");
    assert!(dump.contains(&format!("label-id: {disk_guid}")), "{dump}");
    let esp_guid = sanforge::contract::partitions::guid_string(
        &sanforge::contract::partitions::derived_guid("test", "esp"),
    );
    let cfg_guid = sanforge::contract::partitions::guid_string(
        &sanforge::contract::partitions::derived_guid("test", "config"),
    );
    let lines: Vec<&str> = dump.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(lines.len(), 2, "{dump}");
    assert!(lines[0].contains("start=        2048"), "{dump}");
    assert!(
        lines[0].contains(&format!("type={}", disk::ESP_TYPE)),
        "{dump}"
    );
    assert!(lines[0].contains(&format!("uuid={esp_guid}")), "{dump}");
    assert!(lines[0].contains("name=\"SANFORGE-ESP\""), "{dump}");
    assert!(lines[1].contains(&format!("uuid={cfg_guid}")), "{dump}");
    assert!(lines[1].contains("name=\"SANFORGE-CFG\""), "{dump}");
    assert!(lines[1].contains("size=       32768"), "{dump}");
    // sfdisk verifies both headers and the entry array CRCs.
    let verify = run(Command::new("sfdisk").arg("--verify").arg(&img));
    assert!(verify.contains("No errors detected"), "{verify}");

    // The ESP as mtools reads it (the ESP starts at 1 MiB).
    let esp = format!("{}@@1M", img.display());
    let listing = mtools(&["mdir", "-i", &esp, "-/", "-b", "::/"]);
    for f in [
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/loader/loader.conf",
        "::/loader/entries/sanforge-a+3.conf",
        "::/sanforge/a/vmlinuz",
        "::/sanforge/a/initramfs.cpio.zst",
        "::/sanforge/b/vmlinuz",
        "::/sanforge/b/initramfs.cpio.zst",
    ] {
        assert!(listing.lines().any(|l| l == f), "{f} missing:\n{listing}");
    }
    assert_eq!(
        mtools(&["mtype", "-i", &esp, "::/EFI/BOOT/BOOTX64.EFI"]).as_bytes(),
        FAKE_BOOT
    );
    let conf = mtools(&["mtype", "-i", &esp, "::/loader/loader.conf"]);
    assert!(
        conf.contains("timeout 0") && conf.contains("default sanforge-*"),
        "{conf}"
    );
    let entry = mtools(&["mtype", "-i", &esp, "::/loader/entries/sanforge-a+3.conf"]);
    assert!(entry.contains("linux /sanforge/a/vmlinuz"), "{entry}");
    assert!(entry.contains("sanforge.slot=a"), "{entry}");
    let kernel = mtools(&["mtype", "-i", &esp, "::/sanforge/b/vmlinuz"]);
    assert_eq!(
        kernel.as_bytes(),
        std::fs::read(out.join("vmlinuz")).unwrap().as_slice()
    );
    let label = mtools(&["mlabel", "-i", &esp, "-s", "::"]);
    assert!(label.contains(sanforge::contract::ESP_LABEL), "{label}");
    // The config partition: 1 MiB before the end, 16 MiB.
    let cfg = format!("{}@@{}M", img.display(), 64 - 1 - 16);
    let label = mtools(&["mlabel", "-i", &cfg, "-s", "::"]);
    assert!(label.contains(sanforge::contract::CONFIG_LABEL), "{label}");
}

#[test]
fn same_inputs_give_a_byte_identical_disk_image() {
    let a = disk_project("48MiB");
    let b = disk_project("48MiB");
    let o = a.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    // FAT times have a 2 s resolution: make sure the clock moved past one.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let o = b.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let x = std::fs::read(a.root().join("out/test/disk.img")).unwrap();
    let y = std::fs::read(b.root().join("out/test/disk.img")).unwrap();
    assert!(x == y, "disk.img differs between two builds");
}

#[test]
fn too_small_disk_says_how_many_mib_are_needed() {
    let p = disk_project("20MiB");
    // A kernel big enough that two slots do not fit in what 20 MiB leaves.
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("disk size 20 MiB is too small") && err.contains("MiB are needed"),
        "{err}"
    );
    assert!(!p.root().join("out/test/disk.img").exists());
}

#[test]
fn disk_output_without_systemd_boot_source_is_a_recipe_error() {
    let p = Project::new();
    let recipe = std::fs::read_to_string(p.recipe()).unwrap().replace(
        "zstd-level = 3",
        "zstd-level = 3\ndisk = { size = \"64MiB\" }",
    );
    std::fs::write(p.recipe(), recipe).unwrap();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("systemd-boot"), "{err}");
    assert!(err.contains("test.toml:"), "{err}");
}

// ---------------------------------------------------------------------------------
// The init side: config partition, update, bless (fake trees, FakeSys).

use sanforge::init::{persist, Init, Logger};
use sanforge::sys::FakeSys;

const BAKED: &str = "hostname = \"baked-node\"\n";
const OVERRIDE: &str = "hostname = \"override-node\"\n";

use sanforge::contract::formats::{fake_bzimage, fake_zstd_cpio};

fn put(root: &Path, rel: &str, data: impl AsRef<[u8]>) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

/// A FAT16 boot sector with `label`.
fn boot_sector(label: &str) -> Vec<u8> {
    let mut s = vec![0u8; 512];
    s[510] = 0x55;
    s[511] = 0xaa;
    s[0x26] = 0x29;
    s[0x2b..0x36].copy_from_slice(format!("{label:<11}").as_bytes());
    s
}

/// A node booted from slot `slot` of a sanforge disk: block devices with the two
/// labelled partitions, the baked config, the ESP and config partition contents as if
/// mounted under /run/sanforge.
fn node_tree(slot: char, entry: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    put(r, "sys/class/block/vda/size", "131072\n");
    put(r, "sys/class/block/vda1/partition", "1\n");
    put(r, "sys/class/block/vda2/partition", "2\n");
    put(r, "dev/vda", vec![0u8; 1024]);
    put(r, "dev/vda1", boot_sector(sanforge::contract::ESP_LABEL));
    put(r, "dev/vda2", boot_sector(sanforge::contract::CONFIG_LABEL));
    put(r, "etc/sanforge/node.toml", BAKED);
    put(
        r,
        "proc/cmdline",
        format!("console=ttyS0 panic=-1 sanforge.slot={slot}\n"),
    );
    std::fs::create_dir_all(r.join("run/sanforge/config")).unwrap();
    put(
        r,
        "run/sanforge/esp/loader/loader.conf",
        sanforge::contract::loader::loader_conf(),
    );
    put(
        r,
        &format!("run/sanforge/esp/loader/entries/{entry}"),
        sanforge::contract::loader::entry("storage-node", slot, 1, "console=ttyS0 panic=-1"),
    );
    for s in sanforge::contract::SLOTS {
        put(
            r,
            &format!("run/sanforge/esp/sanforge/{s}/vmlinuz"),
            "old kernel",
        );
        put(
            r,
            &format!("run/sanforge/esp/sanforge/{s}/initramfs.cpio.zst"),
            "old initramfs",
        );
    }
    d
}

fn ops(sys: &FakeSys) -> Vec<String> {
    sys.ops.iter().map(ToString::to_string).collect()
}

fn boot_persist(root: &Path) -> (Option<String>, Vec<String>, Vec<String>) {
    let mut sys = FakeSys::new(root);
    let mut init = Init::new(&mut sys, Logger::capture());
    sanforge::init::load_config(&mut init).unwrap();
    persist::persist(&mut init).unwrap();
    let host = init.node.as_ref().map(|n| n.hostname.clone());
    let lines = init.log.lines().to_vec();
    drop(init);
    (host, lines, ops(&sys))
}

#[test]
fn persist_finds_partitions_by_label_and_applies_a_valid_override() {
    let d = node_tree('a', "sanforge-a+3.conf");
    put(d.path(), "run/sanforge/config/node.toml", OVERRIDE);
    let (host, _, ops) = boot_persist(d.path());
    assert_eq!(host.as_deref(), Some("override-node"));
    assert!(
        ops.iter()
            .any(|o| o.starts_with("mount /dev/vda1 /run/sanforge/esp vfat")),
        "{ops:?}"
    );
    assert!(
        ops.iter()
            .any(|o| o.starts_with("mount /dev/vda2 /run/sanforge/config vfat")),
        "{ops:?}"
    );
}

#[test]
fn invalid_override_keeps_the_baked_config_with_a_warning() {
    let d = node_tree('a', "sanforge-a+3.conf");
    put(d.path(), "run/sanforge/config/node.toml", "hostname = 42\n");
    let (host, lines, _) = boot_persist(d.path());
    assert_eq!(host.as_deref(), Some("baked-node"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("warning: ignoring the config partition's")
                && l.contains("node.toml:1")),
        "{lines:?}"
    );
}

#[test]
fn without_a_sanforge_disk_nothing_is_mounted() {
    let d = node_tree('a', "sanforge-a+3.conf");
    put(d.path(), "dev/vda2", vec![0u8; 512]);
    put(d.path(), "dev/vda1", vec![0u8; 512]);
    put(d.path(), "run/sanforge/config/node.toml", OVERRIDE);
    let (host, _, ops) = boot_persist(d.path());
    assert_eq!(host.as_deref(), Some("baked-node"));
    assert!(!ops.iter().any(|o| o.starts_with("mount")), "{ops:?}");
}

#[test]
fn config_set_commits_atomically_and_survives_a_crash_at_each_step() {
    let new_cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(new_cfg.path(), OVERRIDE).unwrap();
    let target = "run/sanforge/config/node.toml";

    // Normal: new file, fsync'ed write, rename, directory fsync.
    let d = node_tree('a', "sanforge-a.conf");
    put(d.path(), target, BAKED);
    let mut sys = FakeSys::new(d.path());
    persist::config_set(&mut sys, new_cfg.path()).unwrap();
    assert_eq!(
        ops(&sys),
        [
            format!(
                "write_durable /run/sanforge/config/node.toml.new ({} bytes)",
                OVERRIDE.len()
            ),
            "rename /run/sanforge/config/node.toml.new /run/sanforge/config/node.toml".into(),
            "fsync /run/sanforge/config".into(),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join(target)).unwrap(),
        OVERRIDE
    );

    // Power loss before the rename: the old config is intact.
    let d = node_tree('a', "sanforge-a.conf");
    put(d.path(), target, BAKED);
    let mut sys = FakeSys::new(d.path());
    sys.fail.push(("rename ".into(), libc::EIO));
    assert!(persist::config_set(&mut sys, new_cfg.path()).is_err());
    assert_eq!(
        std::fs::read_to_string(d.path().join(target)).unwrap(),
        BAKED
    );

    // Power loss after the rename: the new config is complete.
    let d = node_tree('a', "sanforge-a.conf");
    put(d.path(), target, BAKED);
    let mut sys = FakeSys::new(d.path());
    sys.fail.push(("fsync ".into(), libc::EIO));
    assert!(persist::config_set(&mut sys, new_cfg.path()).is_err());
    assert_eq!(
        std::fs::read_to_string(d.path().join(target)).unwrap(),
        OVERRIDE
    );

    // An invalid file is refused before anything is written.
    std::fs::write(new_cfg.path(), "hostname = [\n").unwrap();
    let mut sys = FakeSys::new(d.path());
    let e = persist::config_set(&mut sys, new_cfg.path()).unwrap_err();
    assert!(format!("{e:#}").contains(":1"), "{e:#}");
    assert!(sys.ops.is_empty());
}

#[test]
fn factory_reset_removes_the_override() {
    let d = node_tree('a', "sanforge-a.conf");
    put(d.path(), "run/sanforge/config/node.toml", OVERRIDE);
    let mut sys = FakeSys::new(d.path());
    persist::factory_reset(&mut sys).unwrap();
    assert!(!d.path().join("run/sanforge/config/node.toml").exists());
    assert_eq!(
        ops(&sys),
        [
            "remove /run/sanforge/config/node.toml",
            "fsync /run/sanforge/config"
        ]
    );
    let (host, _, _) = boot_persist(d.path());
    assert_eq!(host.as_deref(), Some("baked-node"));
}

/// A sanforge output directory inside the tree at /media/update.
fn update_dir(root: &Path) -> PathBuf {
    let dir = root.join("media/update");
    // `update` checks the formats: a kernel header and a zstd cpio around the payloads.
    put(root, "media/update/vmlinuz", fake_bzimage(b"new kernel"));
    put(
        root,
        "media/update/initramfs.cpio.zst",
        fake_zstd_cpio(b"new initramfs"),
    );
    let mut sums = String::new();
    for f in ["initramfs.cpio.zst", "vmlinuz"] {
        sums.push_str(&format!(
            "{}  {f}\n",
            sanforge::util::hash::sha256_file(&dir.join(f)).unwrap()
        ));
    }
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
    dir
}

fn esp_snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![root.join("run/sanforge/esp")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                v.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn update_writes_the_inactive_slot_with_one_try_and_reboots() {
    let d = node_tree('a', "sanforge-a.conf");
    update_dir(d.path());
    let mut sys = FakeSys::new(d.path());
    let slot = persist::update(&mut sys, Path::new("/media/update"), true).unwrap();
    assert_eq!(slot, 'b');
    let esp = d.path().join("run/sanforge/esp");
    assert_eq!(
        std::fs::read(esp.join("sanforge/b/vmlinuz")).unwrap(),
        fake_bzimage(b"new kernel")
    );
    assert_eq!(
        std::fs::read(esp.join("sanforge/b/initramfs.cpio.zst")).unwrap(),
        fake_zstd_cpio(b"new initramfs")
    );
    // The booted slot is untouched.
    assert_eq!(
        std::fs::read_to_string(esp.join("sanforge/a/vmlinuz")).unwrap(),
        "old kernel"
    );
    assert!(esp.join("loader/entries/sanforge-a.conf").is_file());
    let entry = std::fs::read_to_string(esp.join("loader/entries/sanforge-b+1.conf")).unwrap();
    assert!(entry.contains("version 2\n"), "{entry}");
    assert!(entry.contains("linux /sanforge/b/vmlinuz"), "{entry}");
    assert!(
        entry.contains("options console=ttyS0 panic=-1 sanforge.slot=b\n"),
        "{entry}"
    );
    let ops = ops(&sys);
    assert_eq!(
        ops.last().map(String::as_str),
        Some("kill 1 USR1"),
        "{ops:?}"
    );
    // Files before the entry: the entry is written last.
    let copy = ops.iter().position(|o| o.starts_with("copy ")).unwrap();
    let entry_op = ops
        .iter()
        .position(|o| o.contains("sanforge-b+1.conf.new"))
        .unwrap();
    assert!(copy < entry_op, "{ops:?}");
}

#[test]
fn corrupted_truncated_or_unsigned_updates_are_refused_and_nothing_changes() {
    // Corrupted.
    let d = node_tree('b', "sanforge-b+2-1.conf");
    let dir = update_dir(d.path());
    std::fs::write(dir.join("vmlinuz"), "new kernEl").unwrap();
    let before = esp_snapshot(d.path());
    let mut sys = FakeSys::new(d.path());
    let e = persist::update(&mut sys, Path::new("/media/update"), true).unwrap_err();
    assert!(format!("{e:#}").contains("refusing the update"), "{e:#}");
    assert_eq!(esp_snapshot(d.path()), before);
    assert!(sys.ops.is_empty(), "{:?}", sys.ops);

    // Truncated.
    let d = node_tree('a', "sanforge-a.conf");
    let dir = update_dir(d.path());
    std::fs::write(dir.join("initramfs.cpio.zst"), "new").unwrap();
    let before = esp_snapshot(d.path());
    let mut sys = FakeSys::new(d.path());
    assert!(persist::update(&mut sys, Path::new("/media/update"), true).is_err());
    assert_eq!(esp_snapshot(d.path()), before);

    // Unsigned while the image trusts an update key; then signed: accepted.
    let d = node_tree('a', "sanforge-a.conf");
    let dir = update_dir(d.path());
    let keys = tempfile::tempdir().unwrap();
    let secret = keys.path().join("update.key");
    sanforge::image::sign::keygen(&secret).unwrap();
    put(
        d.path(),
        "etc/sanforge/update.pub",
        std::fs::read(sanforge::image::sign::public_path(&secret)).unwrap(),
    );
    let before = esp_snapshot(d.path());
    let mut sys = FakeSys::new(d.path());
    let e = persist::update(&mut sys, Path::new("/media/update"), true).unwrap_err();
    assert!(format!("{e:#}").contains("refusing the update"), "{e:#}");
    assert_eq!(esp_snapshot(d.path()), before);
    let key = sanforge::image::sign::load_signing_key(&secret).unwrap();
    sanforge::image::sign::sign_dir(&dir, &key).unwrap();
    let mut sys = FakeSys::new(d.path());
    assert_eq!(
        persist::update(&mut sys, Path::new("/media/update"), false).unwrap(),
        'b'
    );
    assert!(!ops(&sys).iter().any(|o| o.starts_with("kill")));
}

/// What `sanforge push` stages: SHA256SUMS lists disk.img and boot.ipxe, which a slot
/// does not use and the copy leaves out; what the slot needs must be there.
#[test]
fn an_update_without_the_files_a_slot_does_not_use_is_installed() {
    let d = node_tree('a', "sanforge-a.conf");
    let dir = update_dir(d.path());
    let mut sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    sums.push_str(&format!(
        "{}  disk.img\n{}  boot.ipxe\n",
        "ab".repeat(32),
        "cd".repeat(32)
    ));
    std::fs::write(dir.join("SHA256SUMS"), &sums).unwrap();
    let mut sys = FakeSys::new(d.path());
    assert_eq!(
        persist::update(&mut sys, Path::new("/media/update"), false).unwrap(),
        'b'
    );
    // The kernel listed but not copied: refused, the slot untouched.
    let d = node_tree('a', "sanforge-a.conf");
    let dir = update_dir(d.path());
    std::fs::write(dir.join("SHA256SUMS"), &sums).unwrap();
    std::fs::remove_file(dir.join("vmlinuz")).unwrap();
    let before = esp_snapshot(d.path());
    let mut sys = FakeSys::new(d.path());
    let e = persist::update(&mut sys, Path::new("/media/update"), false).unwrap_err();
    assert_eq!(
        format!("{e:#}"),
        "refusing the update in /media/update: vmlinuz is listed in SHA256SUMS but missing"
    );
    assert_eq!(esp_snapshot(d.path()), before);
}

#[test]
fn bless_renames_the_booted_entry_to_its_good_name() {
    let d = node_tree('a', "sanforge-a+2-1.conf");
    put(
        d.path(),
        "run/sanforge/esp/loader/entries/sanforge-b+0-3.conf",
        "bad",
    );
    let mut sys = FakeSys::new(d.path());
    assert_eq!(
        persist::bless(&mut sys).unwrap().as_deref(),
        Some("sanforge-a.conf")
    );
    let entries = d.path().join("run/sanforge/esp/loader/entries");
    assert!(entries.join("sanforge-a.conf").is_file());
    assert!(!entries.join("sanforge-a+2-1.conf").exists());
    assert!(entries.join("sanforge-b+0-3.conf").is_file());
    assert_eq!(
        ops(&sys),
        [
            "rename /run/sanforge/esp/loader/entries/sanforge-a+2-1.conf /run/sanforge/esp/loader/entries/sanforge-a.conf",
            "fsync /run/sanforge/esp/loader/entries",
        ]
    );
    // Already blessed: nothing to do.
    let mut sys = FakeSys::new(d.path());
    assert_eq!(persist::bless(&mut sys).unwrap(), None);
    assert!(sys.ops.is_empty());
    // Booted over PXE (no slot on the command line): nothing to do.
    put(d.path(), "proc/cmdline", "console=ttyS0\n");
    assert_eq!(persist::bless(&mut FakeSys::new(d.path())).unwrap(), None);
}

#[test]
fn boot_blesses_the_slot_after_ready() {
    let d = node_tree('a', "sanforge-a+3.conf");
    let mut sys = FakeSys::new(d.path());
    let mut init = Init::new(&mut sys, Logger::capture());
    init.boot();
    let lines = init.log.lines().to_vec();
    drop(init);
    let ready = lines.iter().position(|l| l == "ready").unwrap();
    let blessed = lines
        .iter()
        .position(|l| l == "boot slot blessed: sanforge-a.conf")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert!(ready < blessed);
    assert!(d
        .path()
        .join("run/sanforge/esp/loader/entries/sanforge-a.conf")
        .is_file());
}

#[test]
fn init_cli_runs_config_set_against_a_tree() {
    let d = node_tree('a', "sanforge-a.conf");
    let f = d.path().join("new.toml");
    std::fs::write(&f, OVERRIDE).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge-init"))
        .arg("--root")
        .arg(d.path())
        .arg("config-set")
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("rename /run/sanforge/config/node.toml.new /run/sanforge/config/node.toml"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("run/sanforge/config/node.toml")).unwrap(),
        OVERRIDE
    );
}

// ---------------------------------------------------------------------------------
// UEFI boot: `sanforge run OUT --boot uefi`.

#[test]
fn uefi_boot_of_an_output_without_disk_image_says_what_to_add() {
    let p = Project::new();
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = p.run(&["run", "out/test", "--boot", "uefi", "--until-ready"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("has no disk.img") && err.contains("[outputs]"),
        "{err}"
    );
    let p = disk_project("48MiB");
    assert!(p.run(&["build", "recipes/test.toml"]).status.success());
    let o = p.run(&["run", "out/test", "--boot", "uefi", "--append", "x=1"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--append does not apply to --boot uefi"),
        "{err}"
    );
}

/// Boots `out/disk.img` under OVMF until ready; returns the console.
fn boot_uefi(out: &Path) -> String {
    let _vm = Vm(out.to_path_buf());
    let port = free_port();
    let o = common::vm::sanforge_in_repo()
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
        .output()
        .unwrap();
    let mut run_dir = out.as_os_str().to_owned();
    run_dir.push(".run");
    let log = PathBuf::from(run_dir).join("console.log");
    // The init blesses the slot right after `ready`, which is when `run` returns: give
    // the console a moment (a loaded machine may need several seconds) before reading it.
    let mut console = std::fs::read_to_string(&log).unwrap_or_default();
    for _ in 0..600 {
        // A whole line: the console may be read while the init is writing it.
        let whole = console
            .find("boot slot")
            .is_some_and(|i| console[i..].contains('\n'));
        if !o.status.success() || whole {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        console = std::fs::read_to_string(&log).unwrap_or_default();
    }
    assert!(
        o.status.success(),
        "uefi boot failed: {}\n--- console\n{console}",
        text(&o)
    );
    console
}

/// The default recipe for real: its disk.img boots under OVMF through systemd-boot to
/// `ready` and the init blesses slot A; with an updated slot B (newer version, one
/// try) systemd-boot boots B; once B's try is used up it falls back to A.
/// Skipped under SANFORGE_SKIP_E2E.
#[test]
fn default_recipe_disk_image_boots_under_uefi_and_falls_back_between_slots() {
    if common::skip_e2e("default_recipe_disk_image_boots_under_uefi_and_falls_back_between_slots") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("storage-node");
    let o = common::vm::sanforge_in_repo()
        .args(["build", "recipes/storage-node.toml", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "build failed: {}", text(&o));
    let console = boot_uefi(&out);
    assert!(console.contains("sanforge-init: ready"), "{console}");
    assert!(
        console.contains("sanforge-init: boot slot blessed: sanforge-a.conf"),
        "{console}"
    );
    assert!(console.contains("SANFORGECFG: /dev/vda2"), "{console}");

    // Slot B as `sanforge-init update` leaves it: a newer entry with one try.
    let ab = tmp.path().join("ab");
    std::fs::create_dir_all(&ab).unwrap();
    for f in ["disk.img", "manifest.json"] {
        std::fs::copy(out.join(f), ab.join(f)).unwrap();
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let entry_b = tmp.path().join("sanforge-b+1.conf");
    std::fs::write(
        &entry_b,
        sanforge::contract::loader::entry(
            "storage-node",
            'b',
            2,
            m["kernel"]["cmdline"].as_str().unwrap(),
        ),
    )
    .unwrap();
    let esp = format!("{}@@1M", ab.join("disk.img").display());
    mtools(&[
        "mcopy",
        "-i",
        &esp,
        entry_b.to_str().unwrap(),
        "::/loader/entries/",
    ]);
    let console = boot_uefi(&ab);
    assert!(
        console.contains("sanforge-init: boot slot blessed: sanforge-b.conf"),
        "{console}"
    );
    // B's only try used up without a blessing: systemd-boot goes back to A.
    mtools(&[
        "mren",
        "-i",
        &esp,
        "::/loader/entries/sanforge-b+1.conf",
        "::/loader/entries/sanforge-b+0-1.conf",
    ]);
    let console = boot_uefi(&ab);
    assert!(
        console.contains("sanforge-init: boot slot blessed: sanforge-a.conf"),
        "{console}"
    );
}

#[test]
fn build_verify_compares_the_disk_image_too() {
    let p = disk_project("48MiB");
    let o = p.run(&["build", "recipes/test.toml", "--verify"]);
    assert!(o.status.success(), "{}", text(&o));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        all.lines()
            .any(|l| l.contains("disk.img") && l.contains("identical")),
        "{all}"
    );
}

/// [`disk_project`] with an ext4 state partition of `state`; `ext4` puts ext4 into the
/// fake kernel's modules.builtin (the build checks that the kernel mounts it).
fn state_project(state: &str, ext4: bool) -> Project {
    let p = disk_project("64MiB");
    let recipe = std::fs::read_to_string(p.recipe()).unwrap().replace(
        "boot-tries = 3 }",
        &format!("boot-tries = 3, state = \"{state}\" }}"),
    );
    std::fs::write(p.recipe(), recipe).unwrap();
    if ext4 {
        let mk = p.root().join("fake-linux/Makefile");
        let text = std::fs::read_to_string(&mk).unwrap().replace(
            ": > $(INSTALL_MOD_PATH)/lib/modules/$(REL)/modules.builtin",
            "printf 'kernel/fs/ext4/ext4.ko\\n' > $(INSTALL_MOD_PATH)/lib/modules/$(REL)/modules.builtin",
        );
        assert!(text.contains("ext4.ko"));
        std::fs::write(mk, text).unwrap();
    }
    p
}

#[test]
fn state_partition_is_ext4_labelled_last_in_the_gpt_and_reproducible() {
    let a = state_project("16MiB", true);
    let o = a.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let img = a.root().join("out/test/disk.img");
    let dump = run(Command::new("sfdisk").arg("--dump").arg(&img));
    let lines: Vec<&str> = dump.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(lines.len(), 3, "{dump}");
    // ESP and config partition keep their numbers; the state partition is entry 3,
    // on the disk just before the config partition.
    assert!(lines[1].contains("name=\"SANFORGE-CFG\""), "{dump}");
    assert!(lines[2].contains("name=\"SANFORGE-STATE\""), "{dump}");
    assert!(lines[2].contains("size=       32768"), "{dump}");
    assert!(
        lines[2].contains(&format!("type={}", disk::LINUX_DATA_TYPE)),
        "{dump}"
    );
    let start = |l: &str| -> u64 {
        l.split("start=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(start(lines[2]) + 32768, start(lines[1]), "{dump}");
    let verify = run(Command::new("sfdisk").arg("--verify").arg(&img));
    assert!(verify.contains("No errors detected"), "{verify}");
    // The file system as e2fsprogs reads it.
    let part = a.root().join("state.part");
    let data = std::fs::read(&img).unwrap();
    let off = (start(lines[2]) * 512) as usize;
    std::fs::write(&part, &data[off..off + (16 << 20)]).unwrap();
    let head = run(Command::new("dumpe2fs").arg("-h").arg(&part));
    assert!(
        head.contains("Filesystem volume name:   SANFORGE-STATE"),
        "{head}"
    );
    assert!(head.contains("has_journal"), "{head}");
    let fsck = Command::new("e2fsck")
        .args(["-n", "-f"])
        .arg(&part)
        .output()
        .unwrap();
    assert!(fsck.status.success(), "e2fsck: {}", text(&fsck));
    // The same inputs make the same bytes.
    let b = state_project("16MiB", true);
    let o = b.run(&["build", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let y = std::fs::read(b.root().join("out/test/disk.img")).unwrap();
    assert!(
        data == y,
        "disk.img with a state partition differs between two builds"
    );
}

#[test]
fn state_partition_errors_name_the_value_and_the_kernel_option() {
    let p = state_project("4MiB", true);
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("disk state partition size `4MiB`: expected a whole number of MiB, at least 8MiB, or \"none\""),
        "{err}"
    );
    let p = state_project("16MiB", false);
    let o = p.run(&["build", "recipes/test.toml"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("[outputs] disk has a state partition (ext4), but kernel")
            && err.contains("has no ext4 (enable CONFIG_EXT4_FS, =m or =y)"),
        "{err}"
    );
    assert!(!p.root().join("out/test/disk.img").exists());
}
