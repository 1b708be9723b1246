//! Boot step `root` (right after the kernel file systems): on a disk slot whose
//! command line says `sanforge.root=verity`, the root file system is the slot's
//! squashfs, checked block by block by dm-verity. The kernel builds the verity device
//! before PID 1 starts (`dm-mod.create=`, CONFIG_DM_INIT); this step finds it by its
//! device-mapper name, mounts it read-only, puts a RAM layer over it (overlayfs on a
//! tmpfs, so the root is as writable as the initramfs root was), moves /dev, /proc,
//! /sys, /run and /tmp into it and switches to it. The init keeps running from the
//! small initramfs; every later step sees the new root.
//!
//! Failure is fatal (degraded, never ready, so the slot is not blessed and boot
//! counting falls back): no device (dm-mod.create failed: a missing partition, a bad
//! table) or a mount error (a block that does not match the root hash reads as EIO).
//!
//! Also here: writing a new squashfs root into the other slot's partitions for
//! `sanforge-init update` ([`install_root`]).
//!
//! Reads `/proc/cmdline`, `/sys/block/dm-*/dm/name` and `slaves/`, `/proc/self/mounts`;
//! for updates `/sys/class/block/*/uevent` (`PARTNAME=`) and `size`.

use super::Init;
use crate::contract::{CMDLINE_VERITY_ROOT, NEW_ROOT, VERITY_DM_NAME};
use crate::sys::Sys;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The read-only squashfs, still visible after the switch.
pub const LOWER: &str = "/run/sanforge/root-ro";
/// The tmpfs with the overlay's upper and work directories.
pub const RW: &str = "/run/sanforge/root-rw";
/// Mounts moved into the new root, in this order.
const MOVED: [&str; 5] = ["/dev", "/proc", "/sys", "/run", "/tmp"];

/// True when the command line asks for the verity root.
pub fn wanted(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|w| w == CMDLINE_VERITY_ROOT)
}

/// `/dev/dm-N` of the device-mapper device named [`VERITY_DM_NAME`], if any.
pub fn find_dm(init: &mut Init) -> Option<PathBuf> {
    let names = init.sys.list_dir(Path::new("/sys/block")).ok()?;
    for n in names.iter().filter(|n| n.starts_with("dm-")) {
        let p = Path::new("/sys/block").join(n).join("dm/name");
        if let Ok(name) = init.sys.read_to_string(&p) {
            if name.trim() == VERITY_DM_NAME {
                return Some(Path::new("/dev").join(n));
            }
        }
    }
    None
}

/// The boot step.
pub fn mount_root(init: &mut Init) -> Result<()> {
    let cmdline = init
        .sys
        .read_to_string(Path::new("/proc/cmdline"))
        .unwrap_or_default();
    if !wanted(&cmdline) {
        return Ok(());
    }
    // dm-init ran before PID 1; a short grace period covers a slow sysfs only.
    let mut dev = find_dm(init);
    for _ in 0..10 {
        if dev.is_some() {
            break;
        }
        init.sys.sleep(Duration::from_millis(100));
        dev = find_dm(init);
    }
    let Some(dev) = dev else {
        bail!("verity root: no device-mapper device `{VERITY_DM_NAME}`: the kernel could not build it from dm-mod.create= (root partition missing or table refused; see the device-mapper lines of the kernel log)");
    };
    let lower = Path::new(LOWER);
    init.sys.mkdir(lower)?;
    init.sys
        .mount(
            &dev.display().to_string(),
            lower,
            "squashfs",
            libc::MS_RDONLY | libc::MS_NODEV,
            "",
        )
        .with_context(|| {
            format!(
                "verity root: cannot mount {} (dm-verity `{VERITY_DM_NAME}`): a root partition that does not match the root hash of this slot reads as an I/O error",
                dev.display()
            )
        })?;
    let rw = Path::new(RW);
    init.sys.mkdir(rw)?;
    init.sys
        .mount("tmpfs", rw, "tmpfs", libc::MS_NODEV, "mode=0755")?;
    init.sys.mkdir(&rw.join("upper"))?;
    init.sys.mkdir(&rw.join("work"))?;
    let new_root = Path::new("/").join(NEW_ROOT);
    init.sys.mkdir(&new_root)?;
    init.sys.mount(
        "overlay",
        &new_root,
        "overlay",
        0,
        &format!("lowerdir={LOWER},upperdir={RW}/upper,workdir={RW}/work"),
    )?;
    for m in MOVED {
        let to = new_root.join(m.trim_start_matches('/'));
        init.sys.mkdir(&to)?;
        init.sys
            .mount(m, &to, "", libc::MS_MOVE, "")
            .with_context(|| format!("verity root: cannot move {m} into the new root"))?;
    }
    init.sys.switch_root(&new_root)?;
    // The partitions under the verity device (data, hash): which slot this root is.
    let slaves = dev
        .file_name()
        .map(|n| Path::new("/sys/block").join(n).join("slaves"))
        .and_then(|p| init.sys.list_dir(&p).ok())
        .unwrap_or_default();
    init.log.line(&format!(
        "root: squashfs {} (dm-verity {VERITY_DM_NAME} over {}) on {LOWER}, overlay with a RAM layer on /",
        dev.display(),
        if slaves.is_empty() {
            "?".to_string()
        } else {
            slaves.join(", ")
        }
    ));
    // The kernel's own view, for whoever reads the console.
    if let Ok(mounts) = init.sys.read_to_string(Path::new("/proc/self/mounts")) {
        for l in mounts.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if matches!(f.as_slice(), [_, "/", _, ..] | [_, _, "squashfs", ..]) {
                init.log.line(&format!("root mount: {l}"));
            }
        }
    }
    Ok(())
}

/// `opts` without the verity root words (`sanforge.root=verity`, `dm-mod.create="…"`,
/// `dm-mod.waitfor=…`); quoted values may contain blanks.
pub fn strip_verity(opts: &str) -> String {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in opts.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
        .into_iter()
        .filter(|w| {
            w != CMDLINE_VERITY_ROOT
                && !w.starts_with("dm-mod.create=")
                && !w.starts_with("dm-mod.waitfor=")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `/dev/NAME` of the partition whose GPT name is `partname` (the kernel's uevent
/// `PARTNAME=`), with its size in bytes.
pub fn find_partition(sys: &mut dyn Sys, partname: &str) -> Option<(PathBuf, u64)> {
    let names = sys.list_dir(Path::new("/sys/class/block")).ok()?;
    for n in names {
        let base = Path::new("/sys/class/block").join(&n);
        let Ok(uevent) = sys.read_to_string(&base.join("uevent")) else {
            continue;
        };
        if uevent.lines().any(|l| l == format!("PARTNAME={partname}")) {
            let sectors: u64 = sys
                .read_to_string(&base.join("size"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            return Some((Path::new("/dev").join(n), sectors * 512));
        }
    }
    None
}

fn sha256_head(path: &Path, len: u64) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f.take(len), &mut h)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(h.finalize()))
}

/// Update of a squashfs-root slot: checks that `dir`'s root.verity is the tree of its
/// root.squashfs with the root hash its manifest names, writes both to the `target`
/// slot's root and root-verity partitions (found by GPT name), reads them back, and
/// returns the verity words of the target's command line. `recipe` names the disk's
/// derived PARTUUIDs; `cmdline` (the booted one) must carry the booted slot's.
pub fn install_root(
    sys: &mut dyn Sys,
    dir: &Path,
    recipe: &str,
    booted: char,
    target: char,
    cmdline: &str,
) -> Result<String> {
    use crate::contract::{partitions as disk, verity};
    use crate::contract::{ROOT_SQUASHFS, ROOT_VERITY};
    let host = sys.root().join(dir);
    let manifest: serde_json::Value = serde_json::from_str(&crate::util::fs::read_to_string(
        &host.join("manifest.json"),
    )?)
    .with_context(|| format!("cannot parse {}", dir.join("manifest.json").display()))?;
    let record = manifest
        .pointer("/root/verity")
        .cloned()
        .unwrap_or_default();
    let info: verity::Verity = serde_json::from_value(record).with_context(|| {
        format!(
            "{}: no root.verity record",
            dir.join("manifest.json").display()
        )
    })?;
    let data = crate::util::fs::read(&host.join(ROOT_SQUASHFS))?;
    let tree = crate::util::fs::read(&host.join(ROOT_VERITY))?;
    let salt = hex::decode(&info.salt).context("manifest.json: root.verity.salt is not hex")?;
    let (area, root) = verity::tree(&data, &salt)?;
    if hex::encode(root) != info.root_hash || area != tree {
        bail!("{ROOT_VERITY} is not the hash tree of {ROOT_SQUASHFS} with the root hash of manifest.json");
    }
    let (bd, bh) = disk::root_partuuids(recipe, booted);
    let lower = cmdline.to_ascii_lowercase();
    if !lower.contains(&format!("partuuid={}", bd.to_ascii_lowercase()))
        || !lower.contains(&format!("partuuid={}", bh.to_ascii_lowercase()))
    {
        bail!("the booted command line does not name the partitions of recipe `{recipe}`: cannot tell which partitions are slot {target}'s");
    }
    let (root_name, verity_name) = disk::root_names(target);
    for (name, file, bytes) in [
        (&root_name, ROOT_SQUASHFS, data.len() as u64),
        (&verity_name, ROOT_VERITY, tree.len() as u64),
    ] {
        let (dev, size) = find_partition(sys, name)
            .with_context(|| format!("no partition named {name} on this disk"))?;
        if size < bytes {
            bail!(
                "{file} ({bytes} bytes) does not fit partition {name} ({} bytes): write the new disk.img instead",
                size
            );
        }
        sys.copy_file(&dir.join(file), &dev)?;
        let want = sha256_head(&host.join(file), bytes)?;
        if sha256_head(&sys.root().join(&dev), bytes)? != want {
            bail!("partition {name} ({}) does not read back as {file}; slot {target} has no entry and will not boot", dev.display());
        }
    }
    let (d, h) = disk::root_partuuids(recipe, target);
    Ok(verity::cmdline(&info, &d, &h))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::init::Logger;
    use crate::sys::FakeSys;

    fn tree(cmdline: &str, dm_name: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("proc")).unwrap();
        std::fs::write(d.path().join("proc/cmdline"), cmdline).unwrap();
        std::fs::create_dir_all(d.path().join("sys/block/vda")).unwrap();
        if let Some(n) = dm_name {
            std::fs::create_dir_all(d.path().join("sys/block/dm-0/dm")).unwrap();
            std::fs::write(d.path().join("sys/block/dm-0/dm/name"), format!("{n}\n")).unwrap();
            for s in ["vda3", "vda2"] {
                std::fs::create_dir_all(d.path().join("sys/block/dm-0/slaves").join(s)).unwrap();
            }
        }
        d
    }

    fn ops(sys: &FakeSys) -> Vec<String> {
        sys.ops.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn without_the_flag_nothing_happens() {
        let d = tree("console=ttyS0", Some(VERITY_DM_NAME));
        let mut sys = FakeSys::new(d.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        mount_root(&mut init).unwrap();
        drop(init);
        assert!(ops(&sys).is_empty(), "{:?}", ops(&sys));
    }

    #[test]
    fn mounts_the_verity_device_and_switches_to_an_overlay() {
        let d = tree("console=ttyS0 sanforge.root=verity", Some(VERITY_DM_NAME));
        let mut sys = FakeSys::new(d.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        mount_root(&mut init).unwrap();
        assert!(
            init.log.lines()[0]
                .contains("squashfs /dev/dm-0 (dm-verity sanforge-root over vda2, vda3)"),
            "{:?}",
            init.log.lines()
        );
        drop(init);
        let o = ops(&sys);
        let pos = |s: &str| {
            o.iter()
                .position(|l| l.starts_with(s))
                .unwrap_or_else(|| panic!("{s} not in {o:?}"))
        };
        let sq = pos("mount /dev/dm-0 /run/sanforge/root-ro squashfs flags=0x5");
        let ov = pos("mount overlay /sysroot overlay lowerdir=/run/sanforge/root-ro,upperdir=/run/sanforge/root-rw/upper,workdir=/run/sanforge/root-rw/work");
        let mv = pos("mount /run /sysroot/run  flags=0x2000");
        let sw = pos("switch_root /sysroot");
        assert!(sq < ov && ov < mv && mv < sw, "{o:?}");
        assert_eq!(o.iter().filter(|l| l.contains("flags=0x2000")).count(), 5);
    }

    #[test]
    fn a_missing_device_or_a_failing_mount_is_an_error_that_says_why() {
        let d = tree("sanforge.root=verity", Some("other"));
        let mut sys = FakeSys::new(d.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        let e = format!("{:#}", mount_root(&mut init).unwrap_err());
        assert!(e.contains("no device-mapper device `sanforge-root`"), "{e}");

        let d = tree("sanforge.root=verity", Some(VERITY_DM_NAME));
        let mut sys = FakeSys::new(d.path());
        sys.fail.push(("mount /dev/dm-0".into(), libc::EIO));
        let mut init = Init::new(&mut sys, Logger::capture());
        let e = format!("{:#}", mount_root(&mut init).unwrap_err());
        assert!(e.contains("does not match the root hash"), "{e}");
        drop(init);
        assert!(!ops(&sys).iter().any(|l| l.starts_with("switch_root")));
    }
}
