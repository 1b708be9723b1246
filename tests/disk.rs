//! The disk image (`disk.img`) and its life on a node: the GPT and FAT layout checked
//! with the field's tools (sfdisk, mtools), reproducibility, the too-small error, the
//! init's config partition, A/B update and blessing against fake trees, and (with a
//! real kernel, skipped under SANFORGE_SKIP_E2E) a UEFI boot under OVMF.

mod common;

use common::project::{text, Project};
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
    let disk_guid = disk::guid_string(&disk::derived_guid("test", "disk"));
    assert!(dump.contains("label: gpt"), "{dump}");
    assert!(dump.contains(&format!("label-id: {disk_guid}")), "{dump}");
    let esp_guid = disk::guid_string(&disk::derived_guid("test", "esp"));
    let cfg_guid = disk::guid_string(&disk::derived_guid("test", "config"));
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
    assert!(label.contains(disk::ESP_LABEL), "{label}");
    // The config partition: 1 MiB before the end, 16 MiB.
    let cfg = format!("{}@@{}M", img.display(), 64 - 1 - 16);
    let label = mtools(&["mlabel", "-i", &cfg, "-s", "::"]);
    assert!(label.contains(disk::CONFIG_LABEL), "{label}");
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
