//! The raw disk image (`disk.img`) for USB sticks and SATA DOMs: a GPT with an EFI
//! system partition, a small persistent config partition and (unless the recipe says
//! `state = "none"`) an ext4 state partition for the targets' persistent state.
//!
//! The ESP holds systemd-boot (`EFI/BOOT/BOOTX64.EFI`), `loader/loader.conf`, two
//! slots (`sanforge/a/` and `sanforge/b/`, each a kernel + initramfs pair) and a boot
//! loader entry that uses systemd-boot's boot counting (`sanforge-a+3.conf`: three
//! tries left; the init blesses it by renaming it to `sanforge-a.conf` once the node is
//! ready). The config partition is an empty FAT file system that the init mounts and
//! where `sanforge-init config-set` commits node.toml overrides. The state partition
//! (`SANFORGE-STATE`, GPT entry after the config partition so that existing partition
//! numbers stay, placed just before it on the disk) is an empty ext4 file system made
//! by `mkfs.ext4` with a fixed config, UUID, hash seed and time: the init mounts it and
//! binds LIO's and SCST's persistent-reservation and ALUA directories onto it. ext4,
//! not FAT: LIO names ALUA state files after the target's IQN (`:` is no FAT
//! character) and the kernel rewrites them in place, which a journal makes safe.
//!
//! The GPT is written here (protective MBR, primary and backup headers, CRC32); its
//! disk and partition GUIDs are derived from the recipe name, so the same recipe always
//! gives the same GUIDs. The FAT file systems come from `mkfs.vfat --invariant` with a
//! derived volume id and `mcopy -m` over a staging tree whose mtimes are all
//! SOURCE_DATE_EPOCH: the same inputs give a byte-identical image.
//!
//! With a squashfs root (`[outputs] root = "squashfs"`), each slot also has a root
//! partition (the squashfs) and a root-verity partition (its dm-verity hash tree), with
//! the x86-64 root and root-verity types of the Discoverable Partitions Specification
//! and GUIDs derived like the others; the slot's loader entry carries the root hash and
//! both PARTUUIDs on the kernel command line (`dm-mod.create=`, see
//! [`crate::contract::verity`]), and the slot's initramfs is the init alone.
//!
//! Reads: the kernel, the initramfs, systemd-bootx64.efi, the recipe's disk spec and,
//! with a squashfs root, root.squashfs and root.verity.

use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};

use crate::config::recipe::DiskSpec;
use crate::contract::loader::{entry, entry_file, loader_conf};
use crate::contract::partitions::{
    derived_guid, guid_from_str, guid_string, root_names, root_partuuids, Guid,
};
use crate::contract::{
    CONFIG_LABEL, CONFIG_NAME, ESP_LABEL, ESP_NAME, SLOTS, STATE_LABEL, STATE_NAME,
};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1 << 20;
/// Size of the persistent config partition.
pub const CONFIG_MIB: u64 = 16;
/// EFI system partition type.
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// Microsoft basic data (a FAT data partition).
pub const DATA_TYPE: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
/// x86-64 root and root-verity partition types (Discoverable Partitions Specification).
pub const ROOT_TYPE: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
pub const ROOT_VERITY_TYPE: &str = "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5";
/// Linux file system data (the state partition).
pub const LINUX_DATA_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const ENTRIES: u64 = 128;
const ENTRY_SIZE: u64 = 128;
/// Sectors taken by the partition entry array (128 × 128 bytes).
const ENTRY_SECTORS: u64 = ENTRIES * ENTRY_SIZE / SECTOR;

/// Everything the image is made of.
#[derive(Debug, Clone)]
pub struct DiskInput {
    pub recipe: String,
    pub cmdline: String,
    pub source_date_epoch: u64,
    pub vmlinuz: PathBuf,
    pub initramfs: PathBuf,
    /// systemd-bootx64.efi.
    pub bootloader: PathBuf,
    pub spec: DiskSpec,
    /// A squashfs root: written to each slot's root partitions.
    pub root: Option<RootInput>,
}

/// The squashfs root of the slots and its dm-verity tree.
#[derive(Debug, Clone)]
pub struct RootInput {
    pub squashfs: PathBuf,
    pub verity: PathBuf,
    pub info: crate::contract::verity::Verity,
}

/// Sizes (bytes, multiples of 1 MiB) of one slot's root and root-verity partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootSizes {
    pub root: u64,
    pub verity: u64,
}

/// The kernel command line of `slot`: the recipe's, plus the verity root words when
/// the image has a squashfs root (without `sanforge.slot=`, which [`entry`] adds).
pub fn slot_cmdline(input: &DiskInput, slot: char) -> String {
    match &input.root {
        None => input.cmdline.clone(),
        Some(r) => {
            let (d, h) = root_partuuids(&input.recipe, slot);
            format!(
                "{} {}",
                input.cmdline,
                crate::contract::verity::cmdline(&r.info, &d, &h)
            )
        }
    }
}

/// The FAT volume id derived like the GUIDs.
pub fn volume_id(recipe: &str, role: &str) -> u32 {
    let g = derived_guid(recipe, &format!("volume-{role}"));
    u32::from_le_bytes([g[0], g[1], g[2], g[3]])
}

/// CRC-32 (IEEE 802.3, as GPT uses it).
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// One partition of the GPT (LBAs inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub type_guid: Guid,
    pub guid: Guid,
    pub first_lba: u64,
    pub last_lba: u64,
    pub name: String,
}

/// The GPT structures: `primary` goes at LBA 0 (protective MBR, header, entries),
/// `backup` ends at the last LBA (entries, then the backup header).
pub struct Gpt {
    pub primary: Vec<u8>,
    pub backup: Vec<u8>,
}

pub fn gpt(disk_sectors: u64, disk_guid: &Guid, parts: &[Partition]) -> Gpt {
    let last = disk_sectors - 1;
    // Fixed-size arrays with constant offsets: every range below is checked at compile
    // time.
    let mut entries = Vec::with_capacity((ENTRIES * ENTRY_SIZE) as usize);
    for p in parts.iter().take(ENTRIES as usize) {
        let mut e = [0u8; ENTRY_SIZE as usize];
        e[0..16].copy_from_slice(&p.type_guid);
        e[16..32].copy_from_slice(&p.guid);
        e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
        // The name: 36 UTF-16LE code units.
        for (slot, u) in e[56..].chunks_exact_mut(2).zip(p.name.encode_utf16()) {
            slot.copy_from_slice(&u.to_le_bytes());
        }
        entries.extend_from_slice(&e);
    }
    entries.resize((ENTRIES * ENTRY_SIZE) as usize, 0);
    let entries_crc = crc32(&entries);
    let header = |my_lba: u64, alt_lba: u64, entries_lba: u64| {
        let mut h = [0u8; SECTOR as usize];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alt_lba.to_le_bytes());
        h[40..48].copy_from_slice(&(2 + ENTRY_SECTORS).to_le_bytes());
        h[48..56].copy_from_slice(&(last - 1 - ENTRY_SECTORS).to_le_bytes());
        h[56..72].copy_from_slice(disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    let mut mbr = [0u8; SECTOR as usize];
    // The protective partition entry, the first of four at 446.
    let mut pe = [0u8; 16];
    pe[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    pe[4] = 0xee;
    pe[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    pe[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(disk_sectors - 1).unwrap_or(u32::MAX);
    pe[12..16].copy_from_slice(&size.to_le_bytes());
    mbr[446..462].copy_from_slice(&pe);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let mut primary = mbr.to_vec();
    primary.extend(header(1, last, 2));
    primary.extend(&entries);
    let mut backup = entries;
    backup.extend(header(last, 1, last - ENTRY_SECTORS));
    Gpt { primary, backup }
}

/// The partition layout of a disk of `size` bytes: the ESP from 1 MiB up to the
/// config partition, which ends 1 MiB before the end (room for the backup GPT).
pub fn layout(recipe: &str, size: u64) -> Result<(Guid, Vec<Partition>)> {
    layout_with_root(recipe, size, None)
}

/// [`layout`], with each slot's root and root-verity partitions (A then B) between the
/// ESP and the config partition when `root` is given.
pub fn layout_with_root(
    recipe: &str,
    size: u64,
    root: Option<RootSizes>,
) -> Result<(Guid, Vec<Partition>)> {
    layout_full(recipe, size, root, 0)
}

/// [`layout_with_root`] with a state partition of `state` bytes (0: none): it lies
/// just before the config partition on the disk and comes last in the GPT, so the
/// other partitions keep their numbers.
pub fn layout_full(
    recipe: &str,
    size: u64,
    root: Option<RootSizes>,
    state: u64,
) -> Result<(Guid, Vec<Partition>)> {
    let roots = root.map_or(0, |r| 2 * (r.root + r.verity));
    let min = (CONFIG_MIB + 4) * MIB + roots + state;
    if !size.is_multiple_of(MIB) || size < min {
        bail!(
            "disk size {size} bytes: expected a multiple of 1 MiB of at least {} MiB",
            min / MIB
        );
    }
    let s = |bytes: u64| bytes / SECTOR;
    let cfg_first = s(size - MIB - CONFIG_MIB * MIB);
    let state_first = cfg_first - s(state);
    let mut parts = vec![Partition {
        type_guid: guid_from_str(ESP_TYPE).unwrap_or_default(),
        guid: derived_guid(recipe, "esp"),
        first_lba: s(MIB),
        last_lba: state_first - s(roots) - 1,
        name: ESP_NAME.to_string(),
    }];
    if let Some(r) = root {
        let mut next = state_first - s(roots);
        for slot in SLOTS {
            let (root_name, verity_name) = root_names(slot);
            for (bytes, ty, role, name) in [
                (r.root, ROOT_TYPE, format!("root-{slot}"), root_name),
                (
                    r.verity,
                    ROOT_VERITY_TYPE,
                    format!("verity-{slot}"),
                    verity_name,
                ),
            ] {
                parts.push(Partition {
                    type_guid: guid_from_str(ty).unwrap_or_default(),
                    guid: derived_guid(recipe, &role),
                    first_lba: next,
                    last_lba: next + s(bytes) - 1,
                    name,
                });
                next += s(bytes);
            }
        }
    }
    parts.extend([Partition {
        type_guid: guid_from_str(DATA_TYPE).unwrap_or_default(),
        guid: derived_guid(recipe, "config"),
        first_lba: cfg_first,
        last_lba: s(size - MIB) - 1,
        name: CONFIG_NAME.to_string(),
    }]);
    if state > 0 {
        parts.push(Partition {
            type_guid: guid_from_str(LINUX_DATA_TYPE).unwrap_or_default(),
            guid: derived_guid(recipe, "state"),
            first_lba: state_first,
            last_lba: cfg_first - 1,
            name: STATE_NAME.to_string(),
        });
    }
    Ok((derived_guid(recipe, "disk"), parts))
}

/// The smallest disk (in MiB) that holds the ESP content `esp_bytes` (both slots,
/// the boot loader) plus FAT overhead, the config partition and the GPTs.
pub fn needed_mib(esp_bytes: u64) -> u64 {
    let esp = esp_bytes + esp_bytes / 20 + 2 * MIB;
    esp.div_ceil(MIB) + CONFIG_MIB + 2
}

fn file_size(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("cannot stat {}", p.display()))?
        .len())
}

fn round4k(n: u64) -> u64 {
    n.div_ceil(4096) * 4096
}

/// Sets the mtime of every file and directory under `dir` (and `dir`) to `epoch`.
fn clamp_mtimes(dir: &Path, epoch: u64) -> Result<()> {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    let mut all = vec![dir.to_path_buf()];
    for e in ufs::walk(dir).follow_links(true) {
        all.push(e?.path().to_path_buf());
    }
    for p in all {
        std::fs::File::open(&p)
            .and_then(|f| f.set_modified(t))
            .with_context(|| format!("cannot set the mtime of {}", p.display()))?;
    }
    Ok(())
}

/// Stages the ESP content: boot loader, loader.conf, entry for slot A, both slots.
fn stage_esp(input: &DiskInput, dir: &Path) -> Result<()> {
    ufs::create_dir_all(&dir.join("EFI/BOOT"))?;
    ufs::create_dir_all(&dir.join("loader/entries"))?;
    ufs::copy(&input.bootloader, &dir.join("EFI/BOOT/BOOTX64.EFI"))?;
    ufs::write(&dir.join("loader/loader.conf"), loader_conf())?;
    ufs::write(
        &dir.join("loader/entries")
            .join(entry_file('a', input.spec.boot_tries)),
        entry(&input.recipe, 'a', 1, &slot_cmdline(input, 'a')),
    )?;
    for slot in SLOTS {
        let d = dir.join("sanforge").join(slot.to_string());
        ufs::create_dir_all(&d)?;
        ufs::copy(&input.vmlinuz, &d.join("vmlinuz"))?;
        ufs::copy(&input.initramfs, &d.join("initramfs.cpio.zst"))?;
    }
    clamp_mtimes(dir, input.source_date_epoch)
}

/// Makes a FAT file system image of `bytes` at `img`, filled with the top-level
/// entries of `content` (if any).
fn make_fat(
    img: &Path,
    bytes: u64,
    label: &str,
    volid: u32,
    hidden_sectors: u64,
    content: Option<&Path>,
    log: &Log,
) -> Result<()> {
    let f =
        std::fs::File::create(img).with_context(|| format!("cannot create {}", img.display()))?;
    f.set_len(bytes)
        .with_context(|| format!("cannot resize {}", img.display()))?;
    drop(f);
    let mut mkfs = Cmd::new("mkfs.vfat")
        .arg("--invariant")
        .arg("-i")
        .arg(format!("{volid:08x}"))
        .arg("-n")
        .arg(label)
        .arg("-h")
        .arg(hidden_sectors.to_string());
    if bytes >= 64 * MIB {
        mkfs = mkfs.arg("-F").arg("32");
    }
    mkfs.arg(img).run(log)?;
    if let Some(dir) = content {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        Cmd::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .env("TZ", "UTC")
            .arg("-i")
            .arg(img)
            .args(["-s", "-m", "-Q"])
            .args(&names)
            .arg("::/")
            .run(log)
            .with_context(|| format!("cannot copy files into {}", img.display()))?;
    }
    Ok(())
}

/// The mke2fs config of the state partition: the host's `/etc/mke2fs.conf` is not
/// read, so every host makes the same file system (features the 6.1 kernel mounts;
/// no metadata_csum, which would need the crc32c module at mount time).
const MKE2FS_CONF: &str = "\
[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tblocksize = 1024
\tinode_size = 256
\tinode_ratio = 8192
\treserved_ratio = 0

[fs_types]
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,dir_nlink,extra_isize
\t}
";

/// Makes an empty ext4 file system image of `bytes` at `img`, the same bytes for the
/// same inputs (fixed UUID and hash seed, all times `epoch`).
fn make_ext4(
    img: &Path,
    bytes: u64,
    label: &str,
    uuid: &str,
    epoch: u64,
    work: &Path,
    log: &Log,
) -> Result<()> {
    let conf = work.join("mke2fs.conf");
    ufs::write(&conf, MKE2FS_CONF)?;
    let f =
        std::fs::File::create(img).with_context(|| format!("cannot create {}", img.display()))?;
    f.set_len(bytes)
        .with_context(|| format!("cannot resize {}", img.display()))?;
    drop(f);
    Cmd::new("mkfs.ext4")
        .env("MKE2FS_CONFIG", conf.display().to_string())
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .args(["-q", "-F", "-t", "ext4", "-L", label, "-U", uuid])
        .arg("-E")
        .arg(format!(
            "hash_seed={uuid},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard"
        ))
        .arg(img)
        .run(log)
        .with_context(|| format!("cannot make the ext4 state file system {}", img.display()))?;
    Ok(())
}

fn write_at(f: &mut std::fs::File, path: &Path, offset: u64, data: &[u8]) -> Result<()> {
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.write_all(data))
        .with_context(|| format!("cannot write {} at offset {offset}", path.display()))
}

fn copy_into(f: &mut std::fs::File, path: &Path, offset: u64, part: &Path) -> Result<()> {
    let mut src =
        std::fs::File::open(part).with_context(|| format!("cannot open {}", part.display()))?;
    f.seek(SeekFrom::Start(offset))
        .with_context(|| format!("cannot seek in {}", path.display()))?;
    std::io::copy(&mut src, f)
        .with_context(|| format!("cannot copy {} into {}", part.display(), path.display()))?;
    Ok(())
}

/// Writes `out` (disk.img), using `work` as scratch space.
pub fn build(input: &DiskInput, out: &Path, work: &Path, log: &Log) -> Result<()> {
    let content = 2 * (round4k(file_size(&input.vmlinuz)?) + round4k(file_size(&input.initramfs)?))
        + round4k(file_size(&input.bootloader)?)
        + 64 * 1024;
    let root_sizes = match &input.root {
        Some(r) => Some(RootSizes {
            root: file_size(&r.squashfs)?.div_ceil(MIB) * MIB,
            verity: file_size(&r.verity)?.div_ceil(MIB) * MIB,
        }),
        None => None,
    };
    let state_bytes = input.spec.state;
    let needed = needed_mib(content)
        + root_sizes.map_or(0, |r| 2 * (r.root + r.verity) / MIB)
        + state_bytes / MIB;
    if input.spec.size < needed * MIB {
        bail!(
            "disk size {} MiB is too small for two slots of this build: at least {needed} MiB are needed (set `[outputs] disk = {{ size = \"{needed}MiB\" }}` or more)",
            input.spec.size / MIB
        );
    }
    let (disk_guid, parts) = layout_full(&input.recipe, input.spec.size, root_sizes, state_bytes)?;
    let named = |n: &str| parts.iter().find(|p| p.name == n);
    let (Some(esp), Some(config)) = (named(ESP_NAME), named(CONFIG_NAME)) else {
        bail!("the disk layout lacks its ESP or config partition");
    };
    let state = named(STATE_NAME);
    // The slots' root and root-verity partitions, A then B, root before verity.
    let slots: Vec<&Partition> = parts
        .iter()
        .filter(|p| p.name.starts_with("SANFORGE-ROOT-") || p.name.starts_with("SANFORGE-VERITY-"))
        .collect();
    ufs::create_dir_all(work)?;
    let esp_dir = work.join("esp");
    ufs::remove_dir_all(&esp_dir)?;
    stage_esp(input, &esp_dir)?;
    let bytes = |p: &Partition| (p.last_lba - p.first_lba + 1) * SECTOR;
    let esp_img = work.join("esp.img");
    let cfg_img = work.join("config.img");
    make_fat(
        &esp_img,
        bytes(esp),
        ESP_LABEL,
        volume_id(&input.recipe, "esp"),
        esp.first_lba,
        Some(&esp_dir),
        log,
    )?;
    make_fat(
        &cfg_img,
        bytes(config),
        CONFIG_LABEL,
        volume_id(&input.recipe, "config"),
        config.first_lba,
        None,
        log,
    )?;
    let state_img = work.join("state.img");
    if let Some(p) = state {
        make_ext4(
            &state_img,
            bytes(p),
            STATE_LABEL,
            &guid_string(&derived_guid(&input.recipe, "state-fs")).to_ascii_lowercase(),
            input.source_date_epoch,
            work,
            log,
        )?;
    }
    let sectors = input.spec.size / SECTOR;
    let g = gpt(sectors, &disk_guid, &parts);
    let tmp = out.with_extension("img.partial");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.set_len(input.spec.size)
        .with_context(|| format!("cannot resize {}", tmp.display()))?;
    write_at(&mut f, &tmp, 0, &g.primary)?;
    copy_into(&mut f, &tmp, esp.first_lba * SECTOR, &esp_img)?;
    copy_into(&mut f, &tmp, config.first_lba * SECTOR, &cfg_img)?;
    if let Some(p) = state {
        copy_into(&mut f, &tmp, p.first_lba * SECTOR, &state_img)?;
    }
    // Each slot's root (squashfs) and root-verity (hash tree) partitions.
    if let Some(r) = &input.root {
        for (i, p) in slots.iter().enumerate() {
            let src = if i % 2 == 0 { &r.squashfs } else { &r.verity };
            copy_into(&mut f, &tmp, p.first_lba * SECTOR, src)?;
        }
    }
    write_at(
        &mut f,
        &tmp,
        input.spec.size - g.backup.len() as u64,
        &g.backup,
    )?;
    f.sync_all()
        .with_context(|| format!("cannot sync {}", tmp.display()))?;
    drop(f);
    ufs::rename(&tmp, out)?;
    log.line(&format!(
        "disk.img: {} MiB, disk GUID {}, ESP {} MiB{}{}",
        input.spec.size / MIB,
        guid_string(&disk_guid),
        bytes(esp) / MIB,
        state
            .map(|p| format!(", state (ext4) {} MiB", bytes(p) / MIB))
            .unwrap_or_default(),
        match (&input.root, root_sizes) {
            (Some(r), Some(s)) => format!(
                ", squashfs root {} MiB + verity {} MiB per slot, root hash {}",
                s.root / MIB,
                s.verity / MIB,
                r.info.root_hash
            ),
            _ => String::new(),
        }
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::string_slice)]
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn guid_text_roundtrip() {
        let g = guid_from_str(ESP_TYPE).unwrap();
        assert_eq!(g[0], 0x28);
        assert_eq!(guid_string(&g), ESP_TYPE);
        let d = derived_guid("storage-node", "disk");
        assert_eq!(guid_from_str(&guid_string(&d)), Some(d));
        assert_eq!(&guid_string(&d)[14..15], "4");
        assert_ne!(d, derived_guid("storage-node", "esp"));
        assert_ne!(d, derived_guid("other", "disk"));
    }

    #[test]
    fn sizes() {
        // Disk sizes: a bare number is MiB.
        let parse_disk_size = |s| crate::config::values::parse_size(s, MIB);
        assert_eq!(parse_disk_size("256MiB"), Ok(256 * MIB));
        assert_eq!(parse_disk_size("1GiB"), Ok(1024 * MIB));
        assert_eq!(parse_disk_size("64"), Ok(64 * MIB));
        assert!(parse_disk_size("12kB")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_disk_size("0MiB").is_err());
    }

    #[test]
    fn gpt_headers_check_out() {
        let (dg, parts) = layout("t", 64 * MIB).unwrap();
        let sectors = 64 * MIB / SECTOR;
        let g = gpt(sectors, &dg, &parts);
        assert_eq!(g.primary.len(), 34 * 512);
        assert_eq!(&g.primary[510..512], &[0x55, 0xaa]);
        let h = &g.primary[512..1024];
        assert_eq!(&h[0..8], b"EFI PART");
        let mut z = h[..92].to_vec();
        z[16..20].fill(0);
        assert_eq!(crc32(&z).to_le_bytes(), h[16..20]);
        let bh = &g.backup[g.backup.len() - 512..];
        assert_eq!(
            u64::from_le_bytes(bh[24..32].try_into().unwrap()),
            sectors - 1
        );
        assert_eq!(parts[0].first_lba, 2048);
        assert_eq!(parts[1].last_lba, sectors - 2048 - 1);
    }

    #[test]
    fn root_partitions_sit_between_esp_and_config() {
        let r = RootSizes {
            root: 3 * MIB,
            verity: MIB,
        };
        let (_, parts) = layout_with_root("t", 64 * MIB, Some(r)).unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ESP_NAME,
                "SANFORGE-ROOT-A",
                "SANFORGE-VERITY-A",
                "SANFORGE-ROOT-B",
                "SANFORGE-VERITY-B",
                CONFIG_NAME
            ]
        );
        for w in parts.windows(2) {
            assert_eq!(w[0].last_lba + 1, w[1].first_lba, "{names:?}");
        }
        assert_eq!(
            (parts[1].last_lba - parts[1].first_lba + 1) * SECTOR,
            3 * MIB
        );
        assert_eq!(parts[2].type_guid, guid_from_str(ROOT_VERITY_TYPE).unwrap());
        assert_eq!(guid_string(&parts[3].guid), root_partuuids("t", 'b').0);
        assert_ne!(parts[1].guid, parts[3].guid);
        assert!(layout_with_root("t", 20 * MIB, Some(r)).is_err());
    }

    #[test]
    fn entry_names() {
        assert_eq!(entry_file('a', 3), "sanforge-a+3.conf");
        assert_eq!(entry_file('b', 0), "sanforge-b.conf");
        assert!(
            entry("r", 'b', 2, "console=ttyS0").contains("options console=ttyS0 sanforge.slot=b\n")
        );
    }
}
