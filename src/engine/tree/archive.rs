//! Archives: which compression a file has, whether it is a tar archive.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

/// The compression of an archive, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    fn of(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn decompressor(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Bzip2 => Some("bzip2"),
            Compression::Xz => Some("xz"),
            Compression::Zstd => Some("zstd"),
        }
    }
}

/// True when `file` is a tar archive, plain or compressed with gzip, bzip2, xz or
/// zstd: its (decompressed) first block is a POSIX or GNU tar header. Reads at most
/// the first block.
pub fn is_tar_archive(file: &Path) -> Result<bool> {
    let mut head = [0u8; 512];
    let n = read_up_to(
        &mut std::fs::File::open(file)
            .with_context(|| format!("cannot open {}", file.display()))?,
        &mut head,
    )
    .with_context(|| format!("cannot read {}", file.display()))?;
    let head = head.get(..n).unwrap_or(&[]);
    let block = match Compression::of(head).decompressor() {
        None => head.to_vec(),
        Some(tool) => {
            // The first 512 decompressed bytes; the decompressor is stopped after them.
            let mut child = std::process::Command::new(tool)
                .arg("-dc")
                .arg(file)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .with_context(|| format!("cannot run `{tool} -dc {}`", file.display()))?;
            let mut block = [0u8; 512];
            let n = match child.stdout.as_mut() {
                Some(out) => read_up_to(out, &mut block).unwrap_or(0),
                None => 0,
            };
            let _ = child.kill();
            let _ = child.wait();
            block.get(..n).unwrap_or(&[]).to_vec()
        }
    };
    Ok(block.len() == 512 && block.get(257..262) == Some(b"ustar".as_slice()))
}

pub(super) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
