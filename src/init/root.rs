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
//! Reads `/proc/cmdline`, `/sys/block/dm-*/dm/name`, `/proc/self/mounts`.

use super::Init;
use crate::image::verity::{CMDLINE_FLAG, DM_NAME};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the new root is assembled (a directory of the small initramfs).
pub const NEW_ROOT: &str = "sysroot";
/// The read-only squashfs, still visible after the switch.
pub const LOWER: &str = "/run/sanforge/root-ro";
/// The tmpfs with the overlay's upper and work directories.
pub const RW: &str = "/run/sanforge/root-rw";
/// Mounts moved into the new root, in this order.
const MOVED: [&str; 5] = ["/dev", "/proc", "/sys", "/run", "/tmp"];

/// True when the command line asks for the verity root.
pub fn wanted(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|w| w == CMDLINE_FLAG)
}

/// `/dev/dm-N` of the device-mapper device named [`DM_NAME`], if any.
pub fn find_dm(init: &mut Init) -> Option<PathBuf> {
    let names = init.sys.list_dir(Path::new("/sys/block")).ok()?;
    for n in names.iter().filter(|n| n.starts_with("dm-")) {
        let p = Path::new("/sys/block").join(n).join("dm/name");
        if let Ok(name) = init.sys.read_to_string(&p) {
            if name.trim() == DM_NAME {
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
        bail!("verity root: no device-mapper device `{DM_NAME}`: the kernel could not build it from dm-mod.create= (root partition missing or table refused; see the device-mapper lines of the kernel log)");
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
                "verity root: cannot mount {} (dm-verity `{DM_NAME}`): a root partition that does not match the root hash of this slot reads as an I/O error",
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
    init.log.line(&format!(
        "root: squashfs {} (dm-verity {DM_NAME}) on {LOWER}, overlay with a RAM layer on /",
        dev.display()
    ));
    // The kernel's own view, for whoever reads the console.
    if let Ok(mounts) = init.sys.read_to_string(Path::new("/proc/self/mounts")) {
        for l in mounts.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() > 2 && (f[1] == "/" || f[2] == "squashfs") {
                init.log.line(&format!("root mount: {l}"));
            }
        }
    }
    Ok(())
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
        }
        d
    }

    fn ops(sys: &FakeSys) -> Vec<String> {
        sys.ops.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn without_the_flag_nothing_happens() {
        let d = tree("console=ttyS0", Some(DM_NAME));
        let mut sys = FakeSys::new(d.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        mount_root(&mut init).unwrap();
        drop(init);
        assert!(ops(&sys).is_empty(), "{:?}", ops(&sys));
    }

    #[test]
    fn mounts_the_verity_device_and_switches_to_an_overlay() {
        let d = tree("console=ttyS0 sanforge.root=verity", Some(DM_NAME));
        let mut sys = FakeSys::new(d.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        mount_root(&mut init).unwrap();
        assert!(init.log.lines()[0].contains("squashfs /dev/dm-0"));
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

        let d = tree("sanforge.root=verity", Some(DM_NAME));
        let mut sys = FakeSys::new(d.path());
        sys.fail.push(("mount /dev/dm-0".into(), libc::EIO));
        let mut init = Init::new(&mut sys, Logger::capture());
        let e = format!("{:#}", mount_root(&mut init).unwrap_err());
        assert!(e.contains("does not match the root hash"), "{e}");
        drop(init);
        assert!(!ops(&sys).iter().any(|l| l.starts_with("switch_root")));
    }
}
