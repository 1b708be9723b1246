//! systemd-boot loader entries of the A/B slots: written into disk.img by the builder,
//! rewritten by `sanforge-init update` (a new slot with one try) and renamed by the
//! blessing step once the node is ready.

/// Name of a boot loader entry file: `sanforge-a+3.conf`, or `sanforge-a.conf` (a
/// blessed entry, or boot counting disabled) when `tries` is 0.
pub fn entry_file(slot: char, tries: u32) -> String {
    if tries == 0 {
        format!("sanforge-{slot}.conf")
    } else {
        format!("sanforge-{slot}+{tries}.conf")
    }
}

/// `loader/loader.conf`: no menu, the best `sanforge-*` entry. systemd-boot sorts
/// entries whose tries are used up last and newer `version`s first, so an updated slot
/// is preferred until it fails its tries, then the other slot boots again.
pub fn loader_conf() -> String {
    "timeout 0\ndefault sanforge-*\neditor no\n".to_string()
}

/// A boot loader entry for `slot`; `version` orders the slots (newest first).
pub fn entry(recipe: &str, slot: char, version: u64, cmdline: &str) -> String {
    format!(
        "title sanforge {recipe} (slot {slot})\nsort-key sanforge\nversion {version}\nlinux /sanforge/{slot}/{vmlinuz}\ninitrd /sanforge/{slot}/{initramfs}\noptions {cmdline} {slot_key}{slot}\n",
        vmlinuz = super::VMLINUZ,
        initramfs = super::INITRAMFS,
        slot_key = super::CMDLINE_SLOT,
    )
}
