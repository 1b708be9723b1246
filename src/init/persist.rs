//! The node's persistent state on a disk-image boot: the config partition (a
//! `node.toml` that overrides the baked one), A/B updates of the boot slots on the
//! EFI system partition, and blessing the booted slot once the node is ready.
//!
//! Reads `/sys/class/block/*/partition` and the FAT boot sectors of `/dev/<part>` to
//! find the partitions by label (no udev, so no /dev/disk/by-label), `/proc/cmdline`
//! (`sanforge.slot=`), the mounted partitions under `/run/sanforge/`, an update
//! directory (`vmlinuz`, `initramfs.cpio.zst`, `SHA256SUMS`, `SHA256SUMS.sig`; for a
//! squashfs root also `init.cpio.zst`, `root.squashfs`, `root.verity` and
//! `manifest.json`, see [`super::root::install_root`]) and the update key
//! `/etc/sanforge/update.pub`. Every change is committed atomically: new
//! file, fsync, rename over the old one, fsync of the directory, so that a power loss
//! leaves the old or the new state, never a mix.

use super::Init;
use crate::config::node::NodeConfig;
use crate::contract::{CONFIG_LABEL, ESP_LABEL};
use crate::contract::{CONFIG_MOUNT, ESP_MOUNT, OVERRIDE, UPDATE_KEY};
use crate::sys::{Signal, Sys};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The FAT volume label of a boot sector, if it is one (FAT12/16 at 0x2B, FAT32 at
/// 0x47, each after an extended boot signature 0x29).
pub fn fat_label(sector: &[u8]) -> Option<String> {
    if sector.len() < 512 || sector.get(510..512) != Some(&[0x55, 0xaa][..]) {
        return None;
    }
    let (sig, label) = if sector.get(0x52..0x5a) == Some(&b"FAT32   "[..]) {
        (0x42, 0x47)
    } else {
        (0x26, 0x2b)
    };
    if sector.get(sig) != Some(&0x29) {
        return None;
    }
    let l = String::from_utf8_lossy(sector.get(label..label + 11)?)
        .trim_end()
        .to_string();
    Some(l)
}

/// The partition whose FAT label is `label`: `/dev/<name>`.
pub fn find_by_label(sys: &mut dyn Sys, label: &str) -> Option<PathBuf> {
    let names = sys.list_dir(Path::new("/sys/class/block")).ok()?;
    for n in names {
        let part = Path::new("/sys/class/block").join(&n).join("partition");
        if !sys.exists(&part) {
            continue;
        }
        let dev = Path::new("/dev").join(&n);
        if let Ok(head) = sys.read_head(&dev, 512) {
            if fat_label(&head).as_deref() == Some(label) {
                return Some(dev);
            }
        }
    }
    None
}

fn mount_fat(init: &mut Init, label: &str, target: &str) -> Result<bool> {
    let Some(dev) = find_by_label(init.sys, label) else {
        return Ok(false);
    };
    let t = Path::new(target);
    init.sys.mkdir(t)?;
    // The config partition may hold the node's secrets (`secrets-set`): root only.
    let data = if label == CONFIG_LABEL {
        "codepage=437,iocharset=iso8859-1,flush,umask=0077"
    } else {
        "codepage=437,iocharset=iso8859-1,flush"
    };
    init.sys.mount(
        &dev.display().to_string(),
        t,
        "vfat",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data,
    )?;
    init.log
        .line(&format!("{label}: {} on {target}", dev.display()));
    Ok(true)
}

/// Boot step (after `config`): mounts the ESP and the config partition when the node
/// booted from a sanforge disk, and applies a valid `node.toml` override (an invalid
/// one is reported and the baked config kept). Booted from PXE: nothing to do.
pub fn persist(init: &mut Init) -> Result<()> {
    mount_fat(init, ESP_LABEL, ESP_MOUNT)?;
    if !mount_fat(init, CONFIG_LABEL, CONFIG_MOUNT)? {
        return Ok(());
    }
    let path = Path::new(CONFIG_MOUNT).join(OVERRIDE);
    if !init.sys.exists(&path) {
        return Ok(());
    }
    let text = init.sys.read_to_string(&path)?;
    match NodeConfig::parse(&path, &text) {
        Ok(node) => {
            init.log.line(&format!(
                "node config override {} (host {})",
                path.display(),
                node.hostname
            ));
            init.node = Some(node);
        }
        Err(e) => init.warn(format!(
            "ignoring the config partition's {}: {e}; keeping the baked config",
            path.display()
        )),
    }
    Ok(())
}

/// Replaces `path` by `data` atomically: `path.new`, fsync, rename, fsync the directory.
pub fn write_atomic(sys: &mut dyn Sys, path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    sys.write_durable(&tmp, data)?;
    sys.rename(&tmp, path)?;
    sys.fsync_dir(&dir)?;
    Ok(())
}

fn require_mounted(sys: &mut dyn Sys, dir: &str, what: &str) -> Result<()> {
    if !sys.exists(Path::new(dir)) {
        bail!("{dir} does not exist: the {what} is not mounted (was this node booted from a sanforge disk image?)");
    }
    Ok(())
}

/// `sanforge-init config-set FILE`: validates FILE (a path on the host / in the image)
/// and commits it as the config partition's override.
pub fn config_set(sys: &mut dyn Sys, file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    NodeConfig::parse(file, &text)?;
    require_mounted(sys, CONFIG_MOUNT, "config partition")?;
    write_atomic(
        sys,
        &Path::new(CONFIG_MOUNT).join(OVERRIDE),
        text.as_bytes(),
    )
    .context("cannot commit the node config to the config partition")
}

/// `sanforge-init factory-reset`: removes the override; the next boot uses the baked
/// config.
pub fn factory_reset(sys: &mut dyn Sys) -> Result<()> {
    require_mounted(sys, CONFIG_MOUNT, "config partition")?;
    let path = Path::new(CONFIG_MOUNT).join(OVERRIDE);
    if !sys.exists(&path) {
        return Ok(());
    }
    sys.remove_file(&path)?;
    sys.fsync_dir(Path::new(CONFIG_MOUNT))?;
    Ok(())
}

/// The slot named by `sanforge.slot=` on the kernel command line.
pub fn booted_slot(cmdline: &str) -> Option<char> {
    let w = cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("sanforge.slot="))
        .next_back()?;
    match w {
        "a" => Some('a'),
        "b" => Some('b'),
        _ => None,
    }
}

/// An entry file name `sanforge-<slot>[+LEFT[-DONE]].conf` → its slot.
pub fn entry_slot(name: &str) -> Option<char> {
    let rest = name.strip_prefix("sanforge-")?.strip_suffix(".conf")?;
    let mut chars = rest.chars();
    let slot = chars.next()?;
    let tail = chars.as_str();
    if !(slot == 'a' || slot == 'b') || !(tail.is_empty() || tail.starts_with('+')) {
        return None;
    }
    Some(slot)
}

fn entries_dir() -> PathBuf {
    Path::new(ESP_MOUNT).join("loader/entries")
}

/// The highest `version` of the existing sanforge entries.
fn max_version(sys: &mut dyn Sys) -> u64 {
    let dir = entries_dir();
    let mut max = 0;
    for n in sys.list_dir(&dir).unwrap_or_default() {
        if entry_slot(&n).is_none() {
            continue;
        }
        if let Ok(t) = sys.read_to_string(&dir.join(&n)) {
            for l in t.lines() {
                if let Some(v) = l.strip_prefix("version ") {
                    max = max.max(v.trim().parse().unwrap_or(0));
                }
            }
        }
    }
    max
}

/// `sanforge-init update DIR`: DIR (a path inside the image, e.g. a mounted USB stick)
/// holds a sanforge output directory. Its SHA256SUMS (and, when the image has an
/// update key, its signature) are verified; then the inactive slot gets the new
/// kernel and initramfs and an entry with one try that systemd-boot prefers (newest
/// version). Files SHA256SUMS lists that the slot does not use (disk.img, boot.ipxe,
/// the SBOM) may be absent, as in the copy `sanforge push` stages; those present must
/// match. Nothing of the booted slot is touched. A node on a squashfs root gets the
/// new root in the inactive slot's root partitions and the new root hash in its entry.
/// Returns the slot written.
pub fn update(sys: &mut dyn Sys, dir: &Path, reboot: bool) -> Result<char> {
    use crate::contract::signature;
    let host_dir = sys.root().join(dir);
    let key_path = Path::new(UPDATE_KEY);
    // Every file SHA256SUMS lists that is there must match; the files a slot does not
    // use (disk.img, boot.ipxe, the SBOM) may be absent: `sanforge push` copies only
    // what the slot needs. What the slot needs must be there (below).
    let (listed, present) = if sys.exists(key_path) {
        let key = signature::load_verifying_key(&sys.root().join(key_path))?;
        signature::verify_signature(&host_dir, &key)
            .and_then(|()| signature::check_present_sums(&host_dir))
    } else {
        signature::check_present_sums(&host_dir)
    }
    .with_context(|| format!("refusing the update in {}", dir.display()))?;
    let need = |f: &str| -> Result<()> {
        if !listed.iter().any(|l| l == f) {
            bail!(
                "refusing the update in {}: SHA256SUMS does not list {f}",
                dir.display()
            );
        }
        if !present.iter().any(|l| l == f) {
            bail!(
                "refusing the update in {}: {f} is listed in SHA256SUMS but missing",
                dir.display()
            );
        }
        Ok(())
    };
    need("vmlinuz")?;
    if !listed.iter().any(|l| l == "initramfs.cpio.zst") {
        bail!(
            "refusing the update in {}: SHA256SUMS does not list initramfs.cpio.zst",
            dir.display()
        );
    }
    require_mounted(sys, ESP_MOUNT, "EFI system partition")?;
    let cmdline = sys.read_to_string(Path::new("/proc/cmdline"))?;
    // A squashfs root lives in the slot's root partitions, not on the ESP: both sides
    // must agree on where the root is.
    use crate::contract::{INIT_CPIO, ROOT_SQUASHFS, ROOT_VERITY};
    let squashfs = listed.iter().any(|l| l == ROOT_SQUASHFS);
    if squashfs != super::root::wanted(&cmdline) {
        bail!(
            "refusing the update in {}: {}; write its disk.img to the disk instead",
            dir.display(),
            if squashfs {
                "it has a squashfs root but this node runs from RAM (its disk has no root partitions)"
            } else {
                "this node runs a squashfs root and the update has none"
            }
        );
    }
    if squashfs {
        for f in [INIT_CPIO, ROOT_SQUASHFS, ROOT_VERITY, "manifest.json"] {
            need(f)?;
        }
    } else {
        need("initramfs.cpio.zst")?;
    }
    // (file in the update, file in the slot): a squashfs slot boots the init alone.
    let esp_files = [
        ("vmlinuz", "vmlinuz"),
        (
            if squashfs {
                INIT_CPIO
            } else {
                "initramfs.cpio.zst"
            },
            "initramfs.cpio.zst",
        ),
    ];
    // What the slot boots must be a kernel and an initramfs, whoever signed it.
    let initrd = if squashfs {
        INIT_CPIO
    } else {
        "initramfs.cpio.zst"
    };
    use crate::contract::formats::{check_bzimage_file, check_zstd_cpio_file};
    check_bzimage_file(&host_dir.join("vmlinuz"), "vmlinuz")
        .and_then(|()| check_zstd_cpio_file(&host_dir.join(initrd), initrd))
        .map_err(|why| anyhow::anyhow!("refusing the update in {}: {why}", dir.display()))?;
    let booted = booted_slot(&cmdline).context(
        "the kernel command line names no sanforge.slot=: this node did not boot from a disk slot",
    )?;
    let target = if booted == 'a' { 'b' } else { 'a' };
    let entries = entries_dir();
    // First retire the target slot's entry: no entry may point at half-written files.
    for n in sys.list_dir(&entries)? {
        if entry_slot(&n) == Some(target) {
            sys.remove_file(&entries.join(&n))?;
        }
    }
    sys.fsync_dir(&entries)?;
    let slot_dir = Path::new(ESP_MOUNT)
        .join("sanforge")
        .join(target.to_string());
    sys.mkdir(&slot_dir)?;
    for (src, f) in esp_files {
        let tmp = slot_dir.join(format!("{f}.new"));
        sys.copy_file(&dir.join(src), &tmp)?;
        sys.rename(&tmp, &slot_dir.join(f))?;
    }
    sys.fsync_dir(&slot_dir)?;
    // The copies are verified again: what is on the ESP is what SHA256SUMS lists.
    let sums = crate::util::fs::read_to_string(&host_dir.join("SHA256SUMS"))?;
    for (src, f) in esp_files {
        let want = sums
            .lines()
            .find_map(|l| {
                l.split_once("  ")
                    .filter(|(_, n)| *n == src)
                    .map(|(s, _)| s)
            })
            .unwrap_or_default();
        let got = crate::util::hash::sha256_file(&sys.root().join(&slot_dir.join(f)))?;
        if got != want {
            bail!(
                "slot {target}: {f} does not match SHA256SUMS after copying; the slot has no entry and will not boot"
            );
        }
    }
    let mut old = cmdline_options(sys, booted).unwrap_or_default();
    let recipe = recipe_title(sys, booted);
    if squashfs {
        let words = super::root::install_root(sys, dir, &recipe, booted, target, &cmdline)?;
        old = format!("{} {words}", super::root::strip_verity(&old));
    }
    let version = max_version(sys) + 1;
    let text = crate::contract::loader::entry(&recipe, target, version, &old);
    write_atomic(
        sys,
        &entries.join(crate::contract::loader::entry_file(target, 1)),
        text.as_bytes(),
    )?;
    sys.sync();
    if reboot {
        sys.kill(1, Signal::Usr1)?;
    }
    Ok(target)
}

/// The booted entry's file (blessed or not).
fn booted_entry(sys: &mut dyn Sys, slot: char) -> Option<String> {
    let names = sys.list_dir(&entries_dir()).ok()?;
    names.into_iter().find(|n| entry_slot(n) == Some(slot))
}

/// The booted entry's `options` without `sanforge.slot=` (the new slot keeps them).
fn cmdline_options(sys: &mut dyn Sys, slot: char) -> Option<String> {
    let name = booted_entry(sys, slot)?;
    let text = sys.read_to_string(&entries_dir().join(name)).ok()?;
    let opts = text.lines().find_map(|l| l.strip_prefix("options "))?;
    Some(
        opts.split_whitespace()
            .filter(|w| !w.starts_with("sanforge.slot="))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The recipe name in the booted entry's title (`sanforge NAME (slot a)`).
fn recipe_title(sys: &mut dyn Sys, slot: char) -> String {
    booted_entry(sys, slot)
        .and_then(|n| sys.read_to_string(&entries_dir().join(n)).ok())
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("title sanforge "))
                .and_then(|r| r.split(" (slot").next())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "node".to_string())
}

/// After `ready`: renames the booted entry `sanforge-a+N[-M].conf` to
/// `sanforge-a.conf`, systemd-boot's mark of a good entry. Returns the new name, or
/// None when there is nothing to bless (PXE boot, already blessed).
pub fn bless(sys: &mut dyn Sys) -> Result<Option<String>> {
    let Ok(cmdline) = sys.read_to_string(Path::new("/proc/cmdline")) else {
        return Ok(None);
    };
    let Some(slot) = booted_slot(&cmdline) else {
        return Ok(None);
    };
    let dir = entries_dir();
    if !sys.exists(&dir) {
        return Ok(None);
    }
    let Some(name) = booted_entry(sys, slot) else {
        bail!(
            "no boot loader entry for the booted slot {slot} in {}",
            dir.display()
        );
    };
    let good = crate::contract::loader::entry_file(slot, 0);
    if name == good {
        return Ok(None);
    }
    sys.rename(&dir.join(&name), &dir.join(&good))?;
    sys.fsync_dir(&dir)?;
    Ok(Some(good))
}

/// The call after `ready` in the boot: bless, logging the outcome.
pub fn bless_after_ready(init: &mut Init) {
    match bless(init.sys) {
        Ok(Some(name)) => init.log.line(&format!("boot slot blessed: {name}")),
        Ok(None) => {}
        Err(e) => init.warn(format!("cannot bless the boot slot: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_fat16_and_fat32_boot_sectors() {
        let mut s = vec![0u8; 512];
        s[510] = 0x55;
        s[511] = 0xaa;
        s[0x26] = 0x29;
        s[0x2b..0x36].copy_from_slice(b"SANFORGECFG");
        assert_eq!(fat_label(&s).as_deref(), Some("SANFORGECFG"));
        let mut t = vec![0u8; 512];
        t[510] = 0x55;
        t[511] = 0xaa;
        t[0x52..0x5a].copy_from_slice(b"FAT32   ");
        t[0x42] = 0x29;
        t[0x47..0x52].copy_from_slice(b"ESP        ");
        assert_eq!(fat_label(&t).as_deref(), Some("ESP"));
        t[510] = 0;
        assert_eq!(fat_label(&t), None);
    }

    #[test]
    fn slots_and_entry_names() {
        assert_eq!(
            booted_slot("console=ttyS0 sanforge.slot=b quiet"),
            Some('b')
        );
        assert_eq!(booted_slot("console=ttyS0"), None);
        assert_eq!(booted_slot("sanforge.slot=c"), None);
        assert_eq!(entry_slot("sanforge-a+3.conf"), Some('a'));
        assert_eq!(entry_slot("sanforge-a+2-1.conf"), Some('a'));
        assert_eq!(entry_slot("sanforge-b.conf"), Some('b'));
        assert_eq!(entry_slot("sanforge-ab.conf"), None);
        assert_eq!(entry_slot("other.conf"), None);
    }
}
