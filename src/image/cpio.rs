//! Deterministic cpio "newc" writer for the initramfs.
//!
//! The kernel unpacks the initramfs from a cpio archive in the "newc" format (magic
//! `070701`). For the image to be reproducible, the bytes of that archive must depend only
//! on the paths, contents, permission bits and link targets of the entries, never on the
//! build host: entries are written sorted by path components (a directory always before
//! its content), every owner is root, every mtime is the one value given by the caller
//! (from `SOURCE_DATE_EPOCH`), inode numbers are assigned in write order, and missing
//! parent directories are added as `0755` directories.
//!
//! Reads: the host files named by [`EntryKind::File`] entries (streamed while writing,
//! never held in memory) and, for [`Archive::add_tree`], a host directory tree.

use anyhow::{bail, Context, Result};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const HEADER_LEN: usize = 110;

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
const S_IFBLK: u32 = 0o060000;

/// Which modes the members of a host tree get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeRule {
    /// The modes on disk (trees sanforge made itself: packages, modules).
    AsIs,
    /// What git records: files 0755 when executable by their owner, else 0644;
    /// directories 0755; symlinks 0777. For trees from a checkout (overlays), so the
    /// image does not depend on the umask of whoever cloned the project.
    Checkout,
}

impl ModeRule {
    pub fn mode(self, meta: &std::fs::Metadata) -> u32 {
        match self {
            ModeRule::AsIs => meta.mode() & 0o7777,
            ModeRule::Checkout => checkout_mode(meta),
        }
    }
}

/// The mode a fresh checkout gives `meta`'s file under umask 022 (see [`ModeRule`]).
pub fn checkout_mode(meta: &std::fs::Metadata) -> u32 {
    let ft = meta.file_type();
    if ft.is_symlink() {
        0o777
    } else if ft.is_dir() || meta.mode() & 0o100 != 0 {
        0o755
    } else {
        0o644
    }
}

/// One archive member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the image, relative, without a leading '/', e.g. `bin/busybox`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky; no file-type bits.
    pub mode: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A regular file whose content is read from this host path while writing.
    File(PathBuf),
    /// A regular file with inline content.
    Data(Vec<u8>),
    /// A symbolic link to this target (written verbatim).
    Symlink(String),
    CharDev {
        major: u32,
        minor: u32,
    },
    BlockDev {
        major: u32,
        minor: u32,
    },
}

impl Entry {
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode,
        }
    }
    pub fn file(path: impl Into<String>, host: impl Into<PathBuf>, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::File(host.into()),
            mode,
        }
    }
    pub fn data(path: impl Into<String>, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::Data(data.into()),
            mode,
        }
    }
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::Symlink(target.into()),
            mode: 0o777,
        }
    }
    pub fn char_dev(path: impl Into<String>, major: u32, minor: u32, mode: u32) -> Self {
        Entry {
            path: path.into(),
            kind: EntryKind::CharDev { major, minor },
            mode,
        }
    }

    fn type_bits(&self) -> u32 {
        match self.kind {
            EntryKind::Dir => S_IFDIR,
            EntryKind::File(_) | EntryKind::Data(_) => S_IFREG,
            EntryKind::Symlink(_) => S_IFLNK,
            EntryKind::CharDev { .. } => S_IFCHR,
            EntryKind::BlockDev { .. } => S_IFBLK,
        }
    }
}

/// What [`Archive::write`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Members written, the trailer not included.
    pub entries: u64,
    /// Bytes of file content (and symlink targets).
    pub content_bytes: u64,
    /// Bytes of the whole uncompressed archive.
    pub archive_bytes: u64,
}

/// A set of entries keyed by normalized path; written in a canonical order.
#[derive(Clone, Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

/// Removes leading, trailing and repeated '/' and "." components.
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The strict ancestors of a normalized path, outermost first ("a/b/c" → "a", "a/b").
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .filter_map(move |(i, _)| path.get(..i))
}

impl Archive {
    pub fn new() -> Self {
        Archive::default()
    }

    /// Adds `entry`; an entry already at the same path is replaced. The path is
    /// normalized (no leading '/', no empty or "." components).
    pub fn add(&mut self, mut entry: Entry) {
        entry.path = normalize(&entry.path);
        entry.mode &= 0o7777;
        self.entries.insert(entry.path.clone(), entry);
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&normalize(path))
    }

    /// The entry `path` leads to inside the archive, following symbolic links (in the
    /// path's directories too, absolute targets from the archive root) as the kernel
    /// would in the booted image; `None` if it leads nowhere or loops.
    pub fn resolve(&self, path: &str) -> Option<&Entry> {
        let parts = |p: &str| -> Vec<String> {
            p.split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_string)
                .collect()
        };
        let mut todo: std::collections::VecDeque<String> = parts(path).into();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = todo.pop_front() {
            if c == ".." {
                cur.pop();
                continue;
            }
            cur.push(c);
            // A directory without an entry of its own is written as a plain one
            // (`ensure_parents`); only the last component must exist.
            let Some(entry) = self.entries.get(&cur.join("/")) else {
                if todo.is_empty() {
                    return None;
                }
                continue;
            };
            if let EntryKind::Symlink(target) = &entry.kind {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                let mut next: std::collections::VecDeque<String> = parts(target).into();
                next.extend(todo.drain(..));
                todo = next;
            }
        }
        self.entries.get(&cur.join("/"))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds every directory, file and symlink below `host_dir` under `prefix` (which
    /// may be empty for the archive root), keeping permission bits but not owners or
    /// times. A non-empty `prefix` is itself added as a directory with the mode of
    /// `host_dir`. Device nodes found in the tree are added as devices; fifos and
    /// sockets are an error.
    pub fn add_tree(&mut self, host_dir: &Path, prefix: &str) -> Result<()> {
        self.add_tree_with_modes(host_dir, prefix, ModeRule::AsIs)
    }

    /// [`Archive::add_tree`] with the modes `rule` gives: [`ModeRule::Checkout`] for
    /// trees from a working copy, whose modes depend on the umask of whoever cloned it.
    pub fn add_tree_with_modes(
        &mut self,
        host_dir: &Path,
        prefix: &str,
        rule: ModeRule,
    ) -> Result<()> {
        let prefix = normalize(prefix);
        let meta = std::fs::metadata(host_dir)
            .with_context(|| format!("cannot stat {}", host_dir.display()))?;
        if !meta.is_dir() {
            bail!("cannot add tree {}: not a directory", host_dir.display());
        }
        if !prefix.is_empty() {
            self.add(Entry::dir(prefix.clone(), rule.mode(&meta)));
        }
        for child in crate::util::fs::walk(host_dir) {
            let child = child?;
            let host = child.path();
            // Checked at every level, so every component of `rel` is UTF-8.
            let name = child.file_name();
            if name.to_str().is_none() {
                bail!(
                    "cannot add {}: file name {name:?} is not UTF-8",
                    host.display()
                );
            }
            let rel = child.rel().to_string_lossy();
            let path = if prefix.is_empty() {
                rel.into_owned()
            } else {
                format!("{prefix}/{rel}")
            };
            let meta = child.metadata();
            let mode = rule.mode(meta);
            let ft = meta.file_type();
            if ft.is_symlink() {
                let target = std::fs::read_link(host)
                    .with_context(|| format!("cannot read link {}", host.display()))?;
                let target = target.into_os_string().into_string().map_err(|t| {
                    anyhow::anyhow!(
                        "cannot add {}: link target {t:?} is not UTF-8",
                        host.display()
                    )
                })?;
                self.add(Entry {
                    path,
                    kind: EntryKind::Symlink(target),
                    mode,
                });
            } else if ft.is_dir() {
                self.add(Entry::dir(path, mode));
            } else if ft.is_file() {
                self.add(Entry::file(path, host.to_path_buf(), mode));
            } else if ft.is_char_device() || ft.is_block_device() {
                let rdev = meta.rdev();
                let (major, minor) = (libc::major(rdev), libc::minor(rdev));
                let kind = if ft.is_char_device() {
                    EntryKind::CharDev { major, minor }
                } else {
                    EntryKind::BlockDev { major, minor }
                };
                self.add(Entry { path, kind, mode });
            } else {
                bail!(
                    "cannot add {}: unsupported file type (fifo or socket)",
                    host.display()
                );
            }
        }
        Ok(())
    }

    /// Sets the mode of the member at `path` (without a leading `/`); false when the
    /// archive has no such member.
    pub fn set_mode(&mut self, path: &str, mode: u32) -> bool {
        let path = normalize(path);
        match self.entries.get_mut(&path) {
            Some(e) => {
                e.mode = mode & 0o7777;
                true
            }
            None => false,
        }
    }

    /// Adds every missing parent directory of every entry as a `0755` directory.
    /// [`Archive::write`] does this implicitly (without changing `self`).
    pub fn ensure_parents(&mut self) {
        let missing: Vec<String> = self.missing_parents().into_iter().collect();
        for p in missing {
            self.add(Entry::dir(p, 0o755));
        }
    }

    fn missing_parents(&self) -> std::collections::BTreeSet<String> {
        let mut missing = std::collections::BTreeSet::new();
        for path in self.entries.keys() {
            for a in ancestors(path) {
                if !self.entries.contains_key(a) {
                    missing.insert(a.to_string());
                }
            }
        }
        missing
    }

    /// The entries as written: the added ones plus missing parents, in write order
    /// (sorted by path components, so that a directory precedes its content).
    /// Every entry as written (missing parents included), parents first: what other
    /// image writers (the squashfs root) turn into their own format.
    pub fn entries(&self) -> Vec<Entry> {
        self.effective().into_iter().map(Cow::into_owned).collect()
    }

    fn effective(&self) -> Vec<Cow<'_, Entry>> {
        let mut all: Vec<Cow<'_, Entry>> = self.entries.values().map(Cow::Borrowed).collect();
        all.extend(
            self.missing_parents()
                .into_iter()
                .map(|p| Cow::Owned(Entry::dir(p, 0o755))),
        );
        all.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
        all
    }

    /// Checks that every path is valid and every parent is a directory.
    fn validate(&self) -> Result<()> {
        for (path, entry) in &self.entries {
            if path.is_empty() {
                bail!("cannot write an archive entry with an empty path");
            }
            if path.split('/').any(|c| c == "..") {
                bail!("cannot write archive entry {path}: '..' is not allowed in paths");
            }
            if let EntryKind::Symlink(t) = &entry.kind {
                if t.is_empty() {
                    bail!("cannot write archive entry {path}: empty symlink target");
                }
            }
            for a in ancestors(path) {
                if let Some(parent) = self.entries.get(a) {
                    if parent.kind != EntryKind::Dir {
                        bail!(
                            "cannot write archive entry {path}: its parent {a} is not a directory"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the archive in the newc format: sorted entries, owners 0, every mtime
    /// `mtime`, inode numbers from 1 in write order, then the trailer. File contents are
    /// streamed from the host.
    pub fn write<W: Write>(&self, w: W, mtime: u32) -> Result<WriteStats> {
        self.validate()?;
        let mut out = Counter {
            inner: std::io::BufWriter::new(w),
            count: 0,
        };
        let mut stats = WriteStats::default();
        for (i, entry) in self.effective().iter().enumerate() {
            let ino = u32::try_from(i + 1).context("cannot write archive: too many entries")?;
            let size = write_entry(&mut out, entry, ino, mtime)
                .with_context(|| format!("cannot write archive entry {}", entry.path))?;
            stats.entries += 1;
            stats.content_bytes += size;
        }
        let trailer = Header {
            ino: 0,
            mode: 0,
            nlink: 1,
            mtime: 0,
            filesize: 0,
            rdev: (0, 0),
        };
        trailer
            .write(&mut out, TRAILER)
            .context("cannot write archive trailer")?;
        out.flush().context("cannot write archive")?;
        stats.archive_bytes = out.count;
        Ok(stats)
    }

    /// Writes the archive compressed with zstd (single-threaded, hence deterministic)
    /// to `path`, through a temporary file in the same directory, fsync and rename:
    /// an interrupted write never leaves a partial file at `path`.
    pub fn write_zstd(&self, path: &Path, mtime: u32, level: i32) -> Result<WriteStats> {
        let dir = crate::util::fs::parent_dir(path);
        crate::util::fs::create_dir_all(&dir)?;
        let tmp = tempfile::NamedTempFile::new_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        let mut enc = zstd::stream::Encoder::new(tmp, level).with_context(|| {
            format!(
                "cannot start zstd compression (level {level}) for {}",
                path.display()
            )
        })?;
        enc.include_checksum(true)
            .with_context(|| format!("cannot configure zstd compression for {}", path.display()))?;
        let stats = self
            .write(&mut enc, mtime)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let tmp = enc
            .finish()
            .with_context(|| format!("cannot write {}", path.display()))?;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("cannot sync {}", tmp.path().display()))?;
        // An output for PXE servers and USB sticks: world-readable like the others
        // (temporary files are created 0600).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .with_context(|| format!("cannot set the mode of {}", tmp.path().display()))?;
        }
        tmp.persist(path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot rename a temporary file to {}", path.display()))?;
        // Make the rename durable; a failure here does not make the file wrong.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(stats)
    }

    /// One line per entry as written (missing parents included), in write order:
    /// `drwxr-xr-x 0 0 bin`, `lrwxrwxrwx 0 0 bin/sh -> busybox`,
    /// `crw------- 0 0 dev/console 5,1`. Suitable for manifests and snapshot tests.
    pub fn list(&self) -> Vec<String> {
        self.effective()
            .iter()
            .map(|e| {
                let mut line = format!("{} 0 0 {}", mode_string(e.type_bits() | e.mode), e.path);
                match &e.kind {
                    EntryKind::Symlink(t) => line.push_str(&format!(" -> {t}")),
                    EntryKind::CharDev { major, minor } | EntryKind::BlockDev { major, minor } => {
                        line.push_str(&format!(" {major},{minor}"))
                    }
                    _ => {}
                }
                line
            })
            .collect()
    }
}

/// `ls -l` style mode string, e.g. `-rwsr-xr-x`.
pub fn mode_string(mode: u32) -> String {
    let t = match mode & 0o170000 {
        S_IFDIR => 'd',
        S_IFLNK => 'l',
        S_IFCHR => 'c',
        S_IFBLK => 'b',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special = |x: u32, sp: u32, on: char, off: char| match (mode & x != 0, mode & sp != 0) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// A writer that counts the bytes written through it.
struct Counter<W: Write> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    rdev: (u32, u32),
}

/// Zero bytes needed to bring `len` to a multiple of 4.
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// `n` NUL bytes, `n` at most 4 (padding is at most 3, plus a name's terminator).
fn zeros(n: usize) -> &'static [u8] {
    static ZEROS: [u8; 4] = [0; 4];
    ZEROS.get(..n).unwrap_or(&ZEROS)
}

impl Header {
    /// Writes the header and the NUL-terminated, padded name.
    fn write<W: Write>(&self, w: &mut W, name: &str) -> std::io::Result<()> {
        let namesize = name.len() + 1;
        let head = format!(
            "{MAGIC}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            self.ino,
            self.mode,
            0, // uid
            0, // gid
            self.nlink,
            self.mtime,
            self.filesize,
            0, // devmajor
            0, // devminor
            self.rdev.0,
            self.rdev.1,
            namesize,
            0, // check
        );
        debug_assert_eq!(head.len(), HEADER_LEN);
        w.write_all(head.as_bytes())?;
        w.write_all(name.as_bytes())?;
        w.write_all(zeros(1 + pad4(HEADER_LEN + namesize)))
    }
}

/// Writes one member; returns the number of content bytes.
fn write_entry<W: Write>(w: &mut W, e: &Entry, ino: u32, mtime: u32) -> Result<u64> {
    let mode = e.type_bits() | (e.mode & 0o7777);
    let mut header = Header {
        ino,
        mode,
        nlink: 1,
        mtime,
        filesize: 0,
        rdev: (0, 0),
    };
    match &e.kind {
        EntryKind::Dir => {
            header.nlink = 2;
            header.write(w, &e.path)?;
            Ok(0)
        }
        EntryKind::CharDev { major, minor } | EntryKind::BlockDev { major, minor } => {
            header.rdev = (*major, *minor);
            header.write(w, &e.path)?;
            Ok(0)
        }
        EntryKind::Symlink(target) => write_data(w, header, &e.path, target.as_bytes()),
        EntryKind::Data(data) => write_data(w, header, &e.path, data),
        EntryKind::File(host) => {
            let f = std::fs::File::open(host)
                .with_context(|| format!("cannot open {}", host.display()))?;
            let meta = f
                .metadata()
                .with_context(|| format!("cannot stat {}", host.display()))?;
            if !meta.is_file() {
                bail!("{} is not a regular file", host.display());
            }
            let len = meta.len();
            header.filesize = u32::try_from(len).map_err(|_| {
                anyhow::anyhow!(
                    "{} is too large for a cpio archive ({len} bytes)",
                    host.display()
                )
            })?;
            header.write(w, &e.path)?;
            let copied = std::io::copy(&mut f.take(len), w)
                .with_context(|| format!("cannot copy {} into the archive", host.display()))?;
            if copied != len {
                bail!(
                    "{} shrank while being archived ({copied} of {len} bytes)",
                    host.display()
                );
            }
            w.write_all(zeros(pad4(len as usize)))?;
            Ok(len)
        }
    }
}

fn write_data<W: Write>(w: &mut W, mut header: Header, name: &str, data: &[u8]) -> Result<u64> {
    header.filesize = u32::try_from(data.len())
        .map_err(|_| anyhow::anyhow!("content too large for a cpio archive"))?;
    header.write(w, name)?;
    w.write_all(data)?;
    w.write_all(zeros(pad4(data.len())))?;
    Ok(data.len() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::string_slice)]
    use super::*;

    #[test]
    fn normalize_strips_slashes_and_dots() {
        assert_eq!(normalize("/bin//busybox/"), "bin/busybox");
        assert_eq!(normalize("./etc/./passwd"), "etc/passwd");
        assert_eq!(normalize("/"), "");
    }

    #[test]
    fn write_order_puts_directories_before_content() {
        let mut a = Archive::new();
        a.add(Entry::data("a-b", "x", 0o644));
        a.add(Entry::data("a/b/c", "y", 0o644));
        a.add(Entry::dir("a", 0o700));
        let names: Vec<String> = a.effective().iter().map(|e| e.path.clone()).collect();
        assert_eq!(names, ["a", "a/b", "a/b/c", "a-b"]);
        // the auto-added parent is 0755, the explicit one keeps its mode
        assert_eq!(a.list()[0], "drwx------ 0 0 a");
        assert_eq!(a.list()[1], "drwxr-xr-x 0 0 a/b");
    }

    #[test]
    fn header_and_name_are_padded_to_four_bytes() {
        for n in 1..=8 {
            let mut a = Archive::new();
            a.add(Entry::data("x".repeat(n), vec![7u8; n], 0o644));
            let mut buf = Vec::new();
            let stats = a.write(&mut buf, 0).unwrap();
            assert_eq!(buf.len() % 4, 0, "name length {n}");
            assert_eq!(stats.archive_bytes as usize, buf.len());
            let name_end = HEADER_LEN + n + 1;
            let data_start = name_end + pad4(name_end);
            assert_eq!(&buf[data_start..data_start + n], vec![7u8; n].as_slice());
            let trailer_at = data_start + n + pad4(n);
            assert_eq!(&buf[trailer_at..trailer_at + 6], b"070701");
        }
    }

    #[test]
    fn header_fields() {
        let mut a = Archive::new();
        a.add(Entry::char_dev("dev/console", 5, 1, 0o600));
        let mut buf = Vec::new();
        a.write(&mut buf, 0x1234).unwrap();
        // first entry is the auto-added "dev"
        let expected = [
            "070701", "00000001", "000041ED", "00000000", "00000000", "00000002", "00001234",
            "00000000", "00000000", "00000000", "00000000", "00000000", "00000004", "00000000",
        ]
        .concat();
        assert_eq!(std::str::from_utf8(&buf[..HEADER_LEN]).unwrap(), expected);
        assert_eq!(&buf[HEADER_LEN..HEADER_LEN + 4], b"dev\0");
        let second = HEADER_LEN + 4 + pad4(HEADER_LEN + 4);
        let h = std::str::from_utf8(&buf[second..second + HEADER_LEN]).unwrap();
        assert_eq!(&h[6..14], "00000002"); // ino
        assert_eq!(&h[14..22], "00002180"); // S_IFCHR | 0600
        assert_eq!(&h[78..86], "00000005"); // rdevmajor
        assert_eq!(&h[86..94], "00000001"); // rdevminor
    }

    #[test]
    fn parent_that_is_not_a_directory_is_an_error() {
        let mut a = Archive::new();
        a.add(Entry::symlink("lib", "usr/lib"));
        a.add(Entry::data("lib/libc.so.6", "x", 0o755));
        let err = a.write(Vec::new(), 0).unwrap_err().to_string();
        assert!(
            err.contains("lib/libc.so.6") && err.contains("not a directory"),
            "{err}"
        );
    }

    #[test]
    fn dotdot_is_rejected() {
        let mut a = Archive::new();
        a.add(Entry::data("etc/../x", "x", 0o644));
        assert!(a.write(Vec::new(), 0).is_err());
    }

    #[test]
    fn resolve_follows_links_in_files_and_directories() {
        let mut a = Archive::new();
        a.add(Entry::dir("usr/bin", 0o755));
        a.add(Entry::data("usr/bin/busybox", b"x".to_vec(), 0o755));
        a.add(Entry::symlink("bin", "usr/bin"));
        a.add(Entry::symlink("usr/bin/sh", "busybox"));
        a.add(Entry::symlink("usr/sbin/abs", "/bin/sh"));
        a.add(Entry::symlink("usr/sbin/up", "../bin/busybox"));
        a.add(Entry::symlink("loop", "loop"));
        a.add(Entry::symlink("dangling", "/nowhere"));
        for p in ["/bin/sh", "usr/sbin/abs", "/usr/sbin/up", "bin/busybox"] {
            assert_eq!(
                a.resolve(p).map(|e| e.path.as_str()),
                Some("usr/bin/busybox"),
                "{p}"
            );
        }
        assert!(a.resolve("/loop").is_none());
        assert!(a.resolve("/dangling").is_none());
        assert!(a.resolve("/usr/bin/missing").is_none());
    }

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(S_IFREG | 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(S_IFDIR | 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(S_IFREG | 0o2644), "-rw-r-Sr--");
    }
}
