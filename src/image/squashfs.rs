//! The squashfs root image (`root.squashfs`) for recipes with `[outputs] root =
//! "squashfs"`: the same entries as the initramfs cpio, packed by `gensquashfs`
//! (Debian `squashfs-tools-ng`) from a pack file this module writes.
//!
//! A pack file rather than a staging directory: it carries device nodes, owners and
//! modes without root privileges, and its entries come sorted from the cpio
//! [`Archive`]. Reproducible: every inode is owned by 0:0 with mtime
//! SOURCE_DATE_EPOCH, no xattrs, one compressor job, zstd, padded to 4096 bytes (the
//! dm-verity block size).
//!
//! Reads: the archive's host files. Writes: the image and, in `work`, the pack file
//! and the inline (`Data`) entries.

use crate::image::cpio::{Archive, EntryKind};
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Quotes a path for the pack file (`"…"`, with `\` and `"` escaped).
fn quote(s: &str) -> Result<String> {
    if s.contains(['\n', '\r']) {
        bail!("squashfs root: path {s:?} has a line break");
    }
    Ok(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// A host path as the pack file's source field: absolute and unquoted (gensquashfs
/// 1.2 takes a quoted source literally), so it may not contain blanks or quotes.
fn source(p: &Path) -> Result<String> {
    let s = p.to_string_lossy();
    if s.contains(|c: char| c.is_whitespace() || c == '"') {
        bail!(
            "squashfs root: host path {s:?} has a blank or a quote, which gensquashfs cannot read"
        );
    }
    Ok(s.into_owned())
}

/// The pack file for `ar`; inline entries are written under `work/data/`. Host paths
/// are made absolute.
pub fn pack_file(ar: &Archive, work: &Path) -> Result<String> {
    let data_dir = work.join("data");
    ufs::create_dir_all(&data_dir)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let mut out = String::new();
    for (i, e) in ar.entries().iter().enumerate() {
        if e.path.is_empty() {
            continue;
        }
        let p = quote(&format!("/{}", e.path))?;
        let mode = format!("{:04o}", e.mode);
        let line = match &e.kind {
            EntryKind::Dir => format!("dir {p} {mode} 0 0"),
            EntryKind::File(host) => {
                format!("file {p} {mode} 0 0 {}", source(&cwd.join(host))?)
            }
            EntryKind::Data(bytes) => {
                let f = cwd.join(&data_dir).join(i.to_string());
                ufs::write(&f, bytes)?;
                format!("file {p} {mode} 0 0 {}", source(&f)?)
            }
            EntryKind::Symlink(t) => {
                if t.is_empty() || t.contains(char::is_whitespace) {
                    bail!(
                        "squashfs root: symlink /{} -> {t:?}: targets with spaces are not supported",
                        e.path
                    );
                }
                format!("slink {p} 0777 0 0 {t}")
            }
            EntryKind::CharDev { major, minor } => {
                format!("nod {p} {mode} 0 0 c {major} {minor}")
            }
            EntryKind::BlockDev { major, minor } => {
                format!("nod {p} {mode} 0 0 b {major} {minor}")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Writes `ar` as a squashfs image at `out` (atomically), zstd at `level` (the
/// recipe's `zstd-level`).
pub fn write(
    ar: &Archive,
    out: &Path,
    epoch: u64,
    level: i32,
    work: &Path,
    log: &Log,
) -> Result<()> {
    ufs::create_dir_all(work)?;
    let pack = work.join("root.pack");
    ufs::write(&pack, pack_file(ar, work)?)?;
    let tmp = out.with_extension("squashfs.partial");
    Cmd::new("gensquashfs")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .arg("--pack-file")
        .arg(&pack)
        .args(["--compressor", "zstd", "--num-jobs", "1"])
        .arg("--comp-extra")
        .arg(format!("level={level}"))
        .args(["--block-size", "131072", "--dev-block-size", "4096"])
        .arg("--defaults")
        .arg(format!("uid=0,gid=0,mode=0755,mtime={epoch}"))
        .args(["--all-root", "--force", "--quiet"])
        .arg(&tmp)
        .run(log)
        .with_context(|| {
            format!(
                "cannot write the squashfs root {} (gensquashfs is in Debian's squashfs-tools-ng)",
                tmp.display()
            )
        })?;
    ufs::rename(&tmp, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::cpio::Entry;

    #[test]
    fn pack_file_lists_every_kind_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let mut ar = Archive::new();
        ar.add(Entry::data("etc/my file", b"x".to_vec(), 0o644));
        ar.add(Entry::symlink("bin/sh", "busybox"));
        ar.add(Entry::char_dev("dev/console", 5, 1, 0o600));
        ar.add(Entry::file("bin/busybox", "/usr/bin/true", 0o4755));
        let text = pack_file(&ar, dir.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "dir \"/bin\" 0755 0 0");
        assert_eq!(lines[1], "file \"/bin/busybox\" 4755 0 0 /usr/bin/true");
        assert_eq!(lines[2], "slink \"/bin/sh\" 0777 0 0 busybox");
        assert_eq!(lines[4], "nod \"/dev/console\" 0600 0 0 c 5 1");
        assert!(
            lines[6].starts_with("file \"/etc/my file\" 0644 0 0 /"),
            "{text}"
        );
        assert_eq!(lines.len(), 7, "{text}");
    }
}
