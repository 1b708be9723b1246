//! The LIO configfs plan: turns the node config's [`Lio`] model into the ordered
//! directory creations, attribute writes and symlinks under
//! `/sys/kernel/config/target` that build it, with every TPG disabled until the very
//! end. Pure: it reads only the model; sanforge-init executes the plan.
//!
//! Three lists: `setup` (backstores, targets, LUNs, portals, ACLs, TPGs left
//! disabled), `enable` (`tpgt_N/enable` ← 1, run after HA has settled) and `disable`
//! (`tpgt_N/enable` ← 0, run on shutdown or after a failed setup).

use crate::config::node::{BackstoreKind, Lio};
use crate::config::values::{self, parse_size};
use sha2::{Digest, Sha256};
use std::fmt;

/// Where the LIO configfs tree is mounted in the image.
pub const CONFIGFS_TARGET: &str = "/sys/kernel/config/target";

/// The directories under LIO's database root (`dbroot`, `/etc/target` by default)
/// where the kernel writes persistent-reservation (APTPL) and ALUA metadata; without
/// them a PERSISTENT RESERVE OUT with APTPL fails (`filp_open(/etc/target/pr/…)`).
/// Distributions create them with targetcli's package; the init creates them.
pub const DBROOT_DIRS: [&str; 2] = ["/etc/target/pr", "/etc/target/alua"];

/// One configfs operation; paths are relative to [`CONFIGFS_TARGET`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigfsOp {
    Mkdir(String),
    Write(String, String),
    /// `link` points at `target` (both relative to [`CONFIGFS_TARGET`]; the init
    /// makes the target absolute).
    Symlink {
        target: String,
        link: String,
    },
}

impl fmt::Display for ConfigfsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigfsOp::Mkdir(p) => write!(f, "mkdir {p}"),
            ConfigfsOp::Write(p, v) => write!(f, "write {p} {v}"),
            ConfigfsOp::Symlink { target, link } => write!(f, "symlink {target} {link}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LioPlan {
    pub setup: Vec<ConfigfsOp>,
    pub enable: Vec<ConfigfsOp>,
    pub disable: Vec<ConfigfsOp>,
}

impl fmt::Display for LioPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (title, ops) in [
            ("setup", &self.setup),
            ("enable", &self.enable),
            ("disable", &self.disable),
        ] {
            writeln!(f, "# {title}")?;
            for op in ops {
                writeln!(f, "{op}")?;
            }
        }
        Ok(())
    }
}

/// The unit serial used when the config names none: stable per backstore name, so
/// both nodes of a pair present the same serial for the same LUN.
pub fn default_serial(name: &str) -> String {
    let h = Sha256::digest(format!("sanforge:{name}").as_bytes());
    let mut serial = hex::encode(h);
    serial.truncate(32); // ASCII: every index is a char boundary
    serial
}

/// The HBA directory (`fileio_0`, `iblock_1`, `rd_mcp_2`) of the backstore at `idx`.
fn hba(kind: BackstoreKind, idx: usize) -> String {
    match kind {
        BackstoreKind::Fileio => format!("fileio_{idx}"),
        BackstoreKind::Block => format!("iblock_{idx}"),
        BackstoreKind::Ramdisk => format!("rd_mcp_{idx}"),
    }
}

/// The configfs directory (`core/HBA/NAME`, relative to [`CONFIGFS_TARGET`]) and the
/// unit serial of every backstore of `lio`, in config order.
pub fn backstore_dirs(lio: &Lio) -> Vec<(String, String, String)> {
    lio.backstores
        .iter()
        .enumerate()
        .map(|(idx, b)| {
            let serial = b.serial.clone().unwrap_or_else(|| default_serial(&b.name));
            (
                b.name.clone(),
                format!("core/{}/{}", hba(b.kind, idx), b.name),
                serial,
            )
        })
        .collect()
}

/// The ordered configfs plan for `lio` (validated: every LUN names a defined backstore).
pub fn plan(lio: &Lio) -> LioPlan {
    plan_without(lio, &std::collections::BTreeSet::new())
}

/// [`plan`] without the backstores named in `absent` (their device is not there) and
/// the LUNs and mapped LUNs on them; every other HBA keeps its index. A target left
/// without LUNs is still made, with its portals and ACLs, and enabled like any other.
pub fn plan_without(lio: &Lio, absent: &std::collections::BTreeSet<String>) -> LioPlan {
    use ConfigfsOp::*;
    let mut p = LioPlan::default();
    let s = &mut p.setup;
    let w = |path: String, v: &str| Write(path, v.to_string());

    for (idx, b) in lio.backstores.iter().enumerate() {
        if absent.contains(&b.name) {
            continue;
        }
        let dir = format!("core/{}/{}", hba(b.kind, idx), b.name);
        let path = b.path.clone().unwrap_or_default();
        let bytes = b
            .size
            .as_deref()
            .and_then(|s| parse_size(s, values::BYTE).ok());
        let control = match b.kind {
            BackstoreKind::Fileio => {
                let mut c = format!("fd_dev_name={path}");
                if let Some(n) = bytes {
                    c.push_str(&format!(",fd_dev_size={n}"));
                }
                if b.write_back {
                    c.push_str(",fd_buffered_io=1");
                }
                c
            }
            BackstoreKind::Block => format!("udev_path={path}"),
            BackstoreKind::Ramdisk => format!("rd_pages={}", bytes.unwrap_or(0) / 4096),
        };
        s.push(Mkdir(dir.clone()));
        s.push(w(format!("{dir}/control"), &control));
        let serial = b.serial.clone().unwrap_or_else(|| default_serial(&b.name));
        s.push(w(format!("{dir}/wwn/vpd_unit_serial"), &serial));
        s.push(w(format!("{dir}/enable"), "1"));
        // After enable (the kernel sets block_size and the UNMAP limits when it
        // configures the device), before any LUN exports it (most refuse then).
        for (name, value) in &b.attributes {
            s.push(w(format!("{dir}/attrib/{name}"), &value.to_configfs()));
        }
    }

    if !lio.iscsi.is_empty() {
        s.push(Mkdir("iscsi".into()));
    }
    for t in &lio.iscsi {
        let tpg = format!("iscsi/{}/tpgt_{}", t.iqn, t.tpg);
        s.push(Mkdir(format!("iscsi/{}", t.iqn)));
        s.push(Mkdir(tpg.clone()));
        s.push(w(format!("{tpg}/enable"), "0"));
        let chap = t.acls.iter().any(|a| a.chap.is_some());
        s.push(w(
            format!("{tpg}/attrib/authentication"),
            if chap { "1" } else { "0" },
        ));
        s.push(w(format!("{tpg}/attrib/generate_node_acls"), "0"));
        s.push(w(format!("{tpg}/attrib/demo_mode_write_protect"), "0"));
        let luns: Vec<_> = t
            .luns
            .iter()
            .filter(|l| !absent.contains(&l.backstore))
            .collect();
        for l in &luns {
            let Some((idx, b)) = lio
                .backstores
                .iter()
                .enumerate()
                .find(|(_, b)| b.name == l.backstore)
            else {
                continue;
            };
            let lun = format!("{tpg}/lun/lun_{}", l.lun);
            s.push(Mkdir(lun.clone()));
            s.push(Symlink {
                target: format!("core/{}/{}", hba(b.kind, idx), b.name),
                link: format!("{lun}/{}", b.name),
            });
        }
        for portal in &t.portals {
            s.push(Mkdir(format!("{tpg}/np/{portal}")));
        }
        for a in &t.acls {
            let acl = format!("{tpg}/acls/{}", a.initiator);
            s.push(Mkdir(acl.clone()));
            let maps: Vec<(u32, u32, bool)> = if a.mapped_luns.is_empty() {
                luns.iter().map(|l| (l.lun, l.lun, false)).collect()
            } else {
                a.mapped_luns
                    .iter()
                    .filter(|m| luns.iter().any(|l| l.lun == m.lun))
                    .map(|m| (m.mapped, m.lun, m.write_protect))
                    .collect()
            };
            for (mapped, lun, wp) in maps {
                let m = format!("{acl}/lun_{mapped}");
                s.push(Mkdir(m.clone()));
                s.push(Symlink {
                    target: format!("{tpg}/lun/lun_{lun}"),
                    link: format!("{m}/lun"),
                });
                if wp {
                    s.push(w(format!("{m}/write_protect"), "1"));
                }
            }
            // A `secret = "NAME"` the init has not filled in writes nothing: with
            // authentication on and no account, the initiator cannot log in.
            if let Some(c) = a.chap.as_ref().filter(|c| !c.password.is_empty()) {
                s.push(w(format!("{acl}/auth/userid"), &c.userid));
                s.push(w(format!("{acl}/auth/password"), &c.password));
            }
        }
        p.enable.push(Write(format!("{tpg}/enable"), "1".into()));
        p.disable.push(Write(format!("{tpg}/enable"), "0".into()));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::NodeConfig;
    use std::path::Path;

    const DEMO: &str = r#"
hostname = "san1"
[lio]
backstores = [
  { name = "disk0", kind = "fileio", path = "/run/disk0.img", size = "64MiB" },
  { name = "fast", kind = "fileio", path = "/run/fast.img", size = "1GiB", write-back = true, serial = "SER-FAST" },
  { name = "sda", kind = "block", path = "/dev/sda" },
  { name = "rd", kind = "ramdisk", size = "16MiB" },
  { name = "thin", kind = "fileio", path = "/run/thin.img", size = "1GiB", attributes = { emulate_tpu = true, emulate_tpws = 1, block_size = 4096 } },
]
[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:san1"
portals = ["0.0.0.0:3260"]
luns = [{ lun = 0, backstore = "disk0" }, { lun = 1, backstore = "sda" }]
[[lio.iscsi.acls]]
initiator = "iqn.2026-11.org.example:host1"
[[lio.iscsi.acls]]
initiator = "iqn.2026-11.org.example:host2"
mapped-luns = [{ mapped = 5, lun = 1, write-protect = true }]
chap = { userid = "host2", password = "0123456789abcd" }
[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:san1-b"
tpg = 2
portals = ["192.0.2.10:3260", "192.0.2.11:3260"]
luns = [{ lun = 0, backstore = "rd" }]
"#;

    fn demo() -> LioPlan {
        let n = NodeConfig::parse(Path::new("demo.toml"), DEMO).unwrap();
        plan(n.lio.as_ref().unwrap())
    }

    #[test]
    fn demo_plan_snapshot() {
        insta::assert_snapshot!(demo().to_string());
    }

    #[test]
    fn tpgs_stay_disabled_until_the_enable_list() {
        let p = demo();
        let tpg = "iscsi/iqn.2026-11.org.example:san1/tpgt_1";
        let first = p.setup.iter().position(|o| matches!(o, ConfigfsOp::Write(path, v) if path == &format!("{tpg}/enable") && v == "0"));
        let first_lun = p.setup.iter().position(
            |o| matches!(o, ConfigfsOp::Mkdir(path) if path.starts_with(&format!("{tpg}/lun/"))),
        );
        assert!(first.unwrap() < first_lun.unwrap());
        assert!(!p.setup.iter().any(|o| matches!(o, ConfigfsOp::Write(path, v) if path.ends_with("tpgt_1/enable") && v == "1")));
        assert_eq!(
            p.enable,
            vec![
                ConfigfsOp::Write(format!("{tpg}/enable"), "1".into()),
                ConfigfsOp::Write(
                    "iscsi/iqn.2026-11.org.example:san1-b/tpgt_2/enable".into(),
                    "1".into()
                )
            ]
        );
        assert_eq!(p.disable.len(), 2);
    }

    #[test]
    fn backstore_controls() {
        let p = demo();
        let has = |path: &str, v: &str| p.setup.contains(&ConfigfsOp::Write(path.into(), v.into()));
        assert!(has(
            "core/fileio_0/disk0/control",
            "fd_dev_name=/run/disk0.img,fd_dev_size=67108864"
        ));
        assert!(has(
            "core/fileio_1/fast/control",
            "fd_dev_name=/run/fast.img,fd_dev_size=1073741824,fd_buffered_io=1"
        ));
        assert!(has("core/iblock_2/sda/control", "udev_path=/dev/sda"));
        assert!(has("core/rd_mcp_3/rd/control", "rd_pages=4096"));
        assert!(has("core/fileio_1/fast/wwn/vpd_unit_serial", "SER-FAST"));
        assert!(has(
            "core/fileio_0/disk0/wwn/vpd_unit_serial",
            &default_serial("disk0")
        ));
    }

    #[test]
    fn chap_turns_authentication_on_and_default_acl_maps_every_lun() {
        let p = demo();
        let tpg = "iscsi/iqn.2026-11.org.example:san1/tpgt_1";
        assert!(p.setup.contains(&ConfigfsOp::Write(
            format!("{tpg}/attrib/authentication"),
            "1".into()
        )));
        let h1 = format!("{tpg}/acls/iqn.2026-11.org.example:host1");
        for l in [0, 1] {
            assert!(p.setup.contains(&ConfigfsOp::Symlink {
                target: format!("{tpg}/lun/lun_{l}"),
                link: format!("{h1}/lun_{l}/lun")
            }));
        }
        let h2 = format!("{tpg}/acls/iqn.2026-11.org.example:host2");
        assert!(p.setup.contains(&ConfigfsOp::Write(
            format!("{h2}/lun_5/write_protect"),
            "1".into()
        )));
        assert!(!p
            .setup
            .iter()
            .any(|o| matches!(o, ConfigfsOp::Mkdir(d) if d == &format!("{h2}/lun_0"))));
    }
}
