//! How [`FakeSys`](super::FakeSys) plays sysfs and configfs when asked to
//! ([`FakeSys::with_kernel_tree`](super::FakeSys::with_kernel_tree)): the few things the
//! kernel does that a plain directory does not, and that the OCF agent relies on —
//! attribute files that exist before anyone writes them and are never created by a
//! write, a backstore's attributes appearing with its mkdir, an item's attributes and
//! default groups going away with its rmdir. Test and development support only: on a
//! node, [`RealSys`](super::RealSys) reaches the real file systems.
//!
//! Reads and writes only under the directory that stands for `/sys`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The attribute files (and their first values) configfs makes with a new backstore
/// `target/core/HBA/DEVICE`: those the agent writes or reads.
const BACKSTORE_ATTRS: [(&str, &str); 4] = [
    ("control", ""),
    ("enable", "0\n"),
    ("wwn/vpd_unit_serial", ""),
    ("alua/default_tg_pt_gp/alua_access_state", "0\n"),
];

/// The directory standing for `/sys`, as seen through the trait.
#[derive(Debug, Clone)]
pub(super) struct KernelTree {
    sys: PathBuf,
}

impl KernelTree {
    pub(super) fn new(sys: PathBuf) -> Self {
        KernelTree { sys }
    }

    /// True when `path` lies in the tree (sysfs or configfs).
    pub(super) fn holds(&self, path: &Path) -> bool {
        path.starts_with(&self.sys)
    }

    /// True when `path` lies in configfs (`kernel/config`).
    pub(super) fn in_configfs(&self, path: &Path) -> bool {
        path.starts_with(self.sys.join("kernel/config"))
    }

    /// After mkdir of `path` (`full` on the host): a backstore gets the attribute files
    /// it lacks.
    pub(super) fn made_dir(&self, path: &Path, full: &Path) -> io::Result<()> {
        let Ok(rel) = path.strip_prefix(self.sys.join("kernel/config/target/core")) else {
            return Ok(());
        };
        if rel.components().count() != 2 {
            return Ok(());
        }
        for (name, value) in BACKSTORE_ATTRS {
            let f = full.join(name);
            if std::fs::symlink_metadata(&f).is_ok() {
                continue;
            }
            if let Some(parent) = f.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&f, value)?;
        }
        Ok(())
    }
}

/// A write to an attribute: the file must exist; the value replaces the old one.
pub(super) fn write_attr(full: &Path, value: &str) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(full)?
        .write_all(value.as_bytes())
}

/// Before the rmdir of a configfs item: drops its attribute files and default groups;
/// a symlink left inside refuses the removal, as configfs does.
pub(super) fn drop_item(dir: &Path) -> io::Result<()> {
    for ent in std::fs::read_dir(dir)? {
        let ent = ent?;
        let t = ent.file_type()?;
        if t.is_symlink() {
            return Err(io::Error::from_raw_os_error(libc::ENOTEMPTY));
        } else if t.is_dir() {
            drop_item(&ent.path())?;
            std::fs::remove_dir(ent.path())?;
        } else {
            std::fs::remove_file(ent.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{FakeSys, Sys};
    use std::path::Path;

    #[test]
    fn writes_in_the_tree_replace_values_and_never_create_files() {
        let dir = tempfile::tempdir().unwrap();
        let port = dir
            .path()
            .join("sys/kernel/scst_tgt/targets/iscsi/t/enabled");
        std::fs::create_dir_all(port.parent().unwrap()).unwrap();
        std::fs::write(&port, "0\n[key]\n").unwrap();
        let mut s = FakeSys::new(dir.path()).with_kernel_tree("/sys");
        s.write_file(
            Path::new("/sys/kernel/scst_tgt/targets/iscsi/t/enabled"),
            "1\n",
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&port).unwrap(), "1\n");
        let e = s
            .write_file(Path::new("/sys/kernel/scst_tgt/targets/iscsi/t/nope"), "1")
            .unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOENT));
        // Outside the tree the fake still creates what it writes.
        s.write_file(Path::new("/etc/hostname"), "n1").unwrap();
        assert!(dir.path().join("etc/hostname").exists());
    }

    #[test]
    fn a_backstore_comes_with_its_attributes_and_goes_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FakeSys::new(dir.path()).with_kernel_tree("/sys");
        let bs = Path::new("/sys/kernel/config/target/core/iblock_0/d0");
        s.mkdir(bs).unwrap();
        let host = dir.path().join("sys/kernel/config/target/core/iblock_0/d0");
        for f in ["control", "enable", "wwn/vpd_unit_serial"] {
            assert!(host.join(f).is_file(), "{f}");
        }
        s.write_file(&bs.join("enable"), "1").unwrap();
        // A symlink left inside refuses the rmdir, as configfs does.
        std::os::unix::fs::symlink("/", host.join("holder")).unwrap();
        let e = s.remove_dir(bs).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENOTEMPTY));
        assert!(e
            .to_string()
            .starts_with(&format!("cannot remove directory {}: ", bs.display())));
        std::fs::remove_file(host.join("holder")).unwrap();
        s.remove_dir(bs).unwrap();
        assert!(!host.exists());
        // Other directories are plain: no attributes, rmdir only when empty.
        let lun = Path::new("/sys/kernel/config/target/iscsi/t/tpgt_1/lun/lun_0");
        s.mkdir(lun).unwrap();
        assert_eq!(s.list_dir(lun).unwrap(), Vec::<String>::new());
        let lines: Vec<String> = s.ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "mkdir /sys/kernel/config/target/core/iblock_0/d0",
                "write /sys/kernel/config/target/core/iblock_0/d0/enable 1",
                "rmdir /sys/kernel/config/target/core/iblock_0/d0",
                "rmdir /sys/kernel/config/target/core/iblock_0/d0",
                "mkdir /sys/kernel/config/target/iscsi/t/tpgt_1/lun/lun_0",
            ]
        );
    }

    #[test]
    fn kinds_links_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FakeSys::new(dir.path());
        s.mkdir(Path::new("/a/b")).unwrap();
        s.symlink(Path::new("/a/b"), Path::new("/a/l")).unwrap();
        use super::super::FileKind;
        assert_eq!(s.file_kind(Path::new("/a/b")), Some(FileKind::Dir));
        assert_eq!(s.file_kind(Path::new("/a/l")), Some(FileKind::Symlink));
        assert_eq!(s.file_kind(Path::new("/a/x")), None);
        // Resolved inside the root, whatever the root is on the host.
        assert_eq!(
            s.canonicalize(Path::new("/a/l")).unwrap(),
            Path::new("/a/b")
        );
        s.append(Path::new("/a/log"), "one\n").unwrap();
        s.append(Path::new("/a/log"), "two\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/log")).unwrap(),
            "one\ntwo\n"
        );
        s.remove_file(Path::new("/a/l")).unwrap();
        s.remove_dir(Path::new("/a/b")).unwrap();
        assert_eq!(s.file_kind(Path::new("/a/b")), None);
    }
}
