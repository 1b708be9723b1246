//! The formats of the boot files an output directory carries, checked by
//! `sanforge-init update` before it writes a slot (signed or not: a signature says who
//! made the files, not that they boot): `vmlinuz` is an x86 bzImage (a boot sector and
//! the `HdrS` setup header of boot protocol 2.00 or later with the kernel loaded high,
//! Documentation/arch/x86/boot.rst), and an initramfs is a zstd frame whose content
//! starts with a newc cpio header (`070701`, or `070702` with checksums).

use std::io::Read;
use std::path::Path;

/// The bytes of a bzImage's header that [`check_bzimage`] reads.
pub const BZIMAGE_HEAD: usize = 0x212;

/// Why `head` (the first [`BZIMAGE_HEAD`] bytes of a file) is not a bzImage, if it is not.
pub fn check_bzimage(head: &[u8]) -> Result<(), String> {
    let at = |i: usize| head.get(i).copied();
    if head.len() < BZIMAGE_HEAD {
        return Err(format!(
            "is {} bytes long, shorter than a kernel's boot header",
            head.len()
        ));
    }
    if at(0x1fe) != Some(0x55) || at(0x1ff) != Some(0xaa) {
        return Err("has no boot sector signature (0x55 0xaa at 0x1fe)".into());
    }
    if head.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err("has no Linux setup header (`HdrS` at 0x202)".into());
    }
    let version = u16::from_le_bytes([at(0x206).unwrap_or(0), at(0x207).unwrap_or(0)]);
    if version < 0x0200 {
        return Err(format!(
            "uses boot protocol {}.{:02}, older than 2.00",
            version >> 8,
            version & 0xff
        ));
    }
    // loadflags bit 0: LOADED_HIGH, which is what makes a bzImage.
    if at(0x211).unwrap_or(0) & 1 == 0 {
        return Err("is a zImage (loaded low), not a bzImage".into());
    }
    Ok(())
}

/// The zstd frame magic.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Why `r` is not a zstd-compressed newc cpio archive, if it is not. Decompresses only
/// the first bytes. (A sanforge-init built without the `builder` feature has no zstd
/// decoder: it checks the frame magic only.)
pub fn check_zstd_cpio(mut r: impl Read) -> Result<(), String> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .map_err(|_| "is shorter than a zstd frame header".to_string())?;
    if magic != ZSTD_MAGIC {
        return Err("is not zstd-compressed (no zstd frame magic)".into());
    }
    check_cpio_inside(magic, r)
}

#[cfg(not(feature = "builder"))]
fn check_cpio_inside(_magic: [u8; 4], _rest: impl Read) -> Result<(), String> {
    Ok(())
}

#[cfg(feature = "builder")]
fn check_cpio_inside(magic: [u8; 4], r: impl Read) -> Result<(), String> {
    let whole = std::io::Cursor::new(magic).chain(r);
    let mut dec = zstd::stream::read::Decoder::new(whole)
        .map_err(|e| format!("cannot be decompressed: {e}"))?;
    let mut head = [0u8; 6];
    dec.read_exact(&mut head)
        .map_err(|e| format!("cannot be decompressed: {e}"))?;
    if &head != b"070701" && &head != b"070702" {
        return Err("is zstd-compressed but not a newc cpio archive (no `070701` header)".into());
    }
    Ok(())
}

/// [`check_bzimage`] of a file; the message names it.
pub fn check_bzimage_file(path: &Path, shown: &str) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut head = Vec::with_capacity(BZIMAGE_HEAD);
    (&mut f)
        .take(BZIMAGE_HEAD as u64)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    check_bzimage(&head).map_err(|why| format!("{shown} {why}: it is not a kernel"))
}

/// [`check_zstd_cpio`] of a file; the message names it.
pub fn check_zstd_cpio_file(path: &Path, shown: &str) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    check_zstd_cpio(std::io::BufReader::new(f))
        .map_err(|why| format!("{shown} {why}: it is not an initramfs"))
}

/// A minimal header that passes [`check_bzimage`], followed by `payload` (tests).
pub fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; BZIMAGE_HEAD];
    if let Some(s) = v.get_mut(0x1fe..0x200) {
        s.copy_from_slice(&[0x55, 0xaa]);
    }
    if let Some(s) = v.get_mut(0x202..0x208) {
        s.copy_from_slice(&[b'H', b'd', b'r', b'S', 0x0f, 0x02]);
    }
    if let Some(b) = v.get_mut(0x211) {
        *b = 1;
    }
    v.extend_from_slice(payload);
    v
}

/// A zstd frame holding a newc header magic followed by `payload` (tests).
#[cfg(feature = "builder")]
pub fn fake_zstd_cpio(payload: &[u8]) -> Vec<u8> {
    let mut plain = b"070701".to_vec();
    plain.extend_from_slice(payload);
    zstd::encode_all(plain.as_slice(), 3).unwrap_or_default()
}

#[cfg(all(test, feature = "builder"))]
mod tests {
    use super::*;

    #[test]
    fn kernels_and_initramfs() {
        assert_eq!(check_bzimage(&fake_bzimage(b"x")), Ok(()));
        assert!(check_bzimage(b"new kernel")
            .unwrap_err()
            .contains("shorter"));
        let mut z = fake_bzimage(b"");
        z[0x211] = 0;
        assert!(check_bzimage(&z).unwrap_err().contains("zImage"));
        assert_eq!(check_zstd_cpio(fake_zstd_cpio(b"x").as_slice()), Ok(()));
        assert!(check_zstd_cpio(b"070701".as_slice())
            .unwrap_err()
            .contains("not zstd"));
        let not_cpio = zstd::encode_all(b"hello world".as_slice(), 3).unwrap();
        assert!(check_zstd_cpio(not_cpio.as_slice())
            .unwrap_err()
            .contains("not a newc cpio"));
    }
}
