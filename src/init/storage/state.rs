//! The boot step for the targets' persistent state: the state device mounted and the
//! LIO and SCST state directories bind-mounted from it; LIO's PR and ALUA state
//! restored (what the kernel does not restore by itself).

use super::{attr, load_named, module_index, wait_for_devices, StateReport};
use crate::config::node::{Lio, NodeConfig};
use crate::config::storage::StateWhere;
use crate::contract::{
    LIO_DBROOTS, LIO_DBROOT_ATTR, LIO_STATE_DIRS, SCST_STATE_DIRS, STATE_MOUNT, STATE_NAME,
};
use crate::init::Init;
use crate::sys::Sys;
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// LIO's `db_root`: what configfs says, else the directory the kernel would pick.
pub fn lio_dbroot(sys: &mut dyn Sys) -> PathBuf {
    if let Some(d) = attr(sys, Path::new(LIO_DBROOT_ATTR)) {
        return PathBuf::from(d);
    }
    for d in LIO_DBROOTS {
        if sys.exists(Path::new(d)) {
            return PathBuf::from(d);
        }
    }
    PathBuf::from(LIO_DBROOTS.last().copied().unwrap_or("/var/target"))
}

/// The partition whose GPT name is `name` (`PARTNAME=` in its uevent): `/dev/<dev>`.
pub fn find_partition(sys: &mut dyn Sys, name: &str) -> Option<PathBuf> {
    let want = format!("PARTNAME={name}");
    for dev in sys.list_dir(Path::new("/sys/class/block")).ok()? {
        let d = Path::new("/sys/class/block").join(&dev);
        if !sys.exists(&d.join("partition")) {
            continue;
        }
        let Ok(ev) = sys.read_to_string(&d.join("uevent")) else {
            continue;
        };
        if ev.lines().any(|l| l.trim() == want) {
            return Some(Path::new("/dev").join(dev));
        }
    }
    None
}

/// The file system at the start of a device: ext2/3/4 (magic 0xEF53 at 1080) or XFS.
pub fn detect_fstype(head: &[u8]) -> Option<&'static str> {
    if head.get(1080..1082) == Some(&[0x53, 0xef][..]) {
        Some("ext4")
    } else if head.get(0..4) == Some(&b"XFSB"[..]) {
        Some("xfs")
    } else {
        None
    }
}

/// (directory on the state device, directory the target uses) for the node's stacks.
pub(super) fn state_dirs(sys: &mut dyn Sys, node: &NodeConfig) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if node.lio.is_some() {
        let db = lio_dbroot(sys);
        for (sub, dir) in LIO_STATE_DIRS {
            out.push((sub.to_string(), db.join(dir)));
        }
    }
    if node.scst.is_some() {
        for (sub, dir) in SCST_STATE_DIRS {
            out.push((sub.to_string(), PathBuf::from(dir)));
        }
    }
    out
}

/// Boot step `target state`: mounts the state device and binds the targets' state
/// directories onto it; without one, the directories stay in RAM and the boot warns.
pub fn target_state(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    if node.lio.is_none() && node.scst.is_none() {
        return Ok(());
    }
    let dirs = state_dirs(init.sys, &node);
    let spec = &node.storage.state;
    let found: Result<PathBuf, String> = match spec.place() {
        StateWhere::Volatile => Err("[storage] state = { device = \"volatile\" }".into()),
        StateWhere::Partition => find_partition(init.sys, STATE_NAME).ok_or_else(|| {
            format!(
                "no {STATE_NAME} partition (a PXE boot, or a disk.img made before it had one); \
                 name a local partition with [storage] state = {{ device = \"/dev/disk/by-partlabel/…\" }}, \
                 or say state = {{ device = \"volatile\" }}"
            )
        }),
        StateWhere::Device(d) => {
            let absent = wait_for_devices(init.sys, &[d], node.storage.device_timeout.0);
            if absent.is_empty() {
                Ok(PathBuf::from(d))
            } else {
                init.storage.report.missing.push(d.to_string());
                Err(format!("the state device {d} is not present"))
            }
        }
    };
    let dev = match found {
        Ok(d) => d,
        Err(why) => return volatile(init, &dirs, &why),
    };
    let fstype = match spec.fstype.clone() {
        Some(f) => f,
        None => match init
            .sys
            .read_head(&dev, 4096)
            .ok()
            .and_then(|h| detect_fstype(&h))
        {
            Some(f) => f.to_string(),
            None => {
                let why = format!(
                    "no ext4 or XFS file system on {} (make one: mkfs.ext4 -L {STATE_NAME} {})",
                    dev.display(),
                    dev.display()
                );
                return volatile(init, &dirs, &why);
            }
        },
    };
    if let Ok(index) = module_index(init) {
        let module = if fstype == "xfs" { "xfs" } else { "ext4" };
        // A failure is on the console; the mount says whether it mattered.
        let _ = load_named(init, &index, &[module.to_string()], "target state");
    }
    let mount = Path::new(STATE_MOUNT);
    let r = init.sys.mkdir(mount).and_then(|()| {
        init.sys.mount(
            &dev.display().to_string(),
            mount,
            &fstype,
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        )
    });
    if let Err(e) = r {
        return volatile(init, &dirs, &e.to_string());
    }
    let mut bound = Vec::new();
    let mut failed = Vec::new();
    for (sub, dir) in &dirs {
        let src = mount.join(sub);
        let r = init
            .sys
            .mkdir(&src)
            .and_then(|()| init.sys.mkdir(dir))
            .and_then(|()| {
                init.sys
                    .mount(&src.display().to_string(), dir, "none", libc::MS_BIND, "")
            });
        match r {
            Ok(()) => bound.push(dir.display().to_string()),
            Err(e) => {
                init.warn(format!("target state: {e}"));
                failed.push(dir.display().to_string());
            }
        }
    }
    init.log.line(&format!(
        "target state on {} ({fstype}, {STATE_MOUNT}): {}",
        dev.display(),
        bound.join(", ")
    ));
    let warning = (!failed.is_empty())
        .then(|| format!("not on the state device (volatile): {}", failed.join(", ")));
    init.storage.report.state = Some(StateReport {
        persistent: failed.is_empty(),
        device: Some(dev.display().to_string()),
        fstype: Some(fstype),
        dirs: dirs.iter().map(|(_, d)| d.display().to_string()).collect(),
        warning: warning.clone(),
    });
    if let Some(w) = warning {
        bail!("target state partly volatile: {w}");
    }
    Ok(())
}

/// No state device: the directories in RAM, and a warning that names why.
pub(super) fn volatile(init: &mut Init, dirs: &[(String, PathBuf)], why: &str) -> Result<()> {
    for (_, d) in dirs {
        if let Err(e) = init.sys.mkdir(d) {
            init.warn(format!("target state: {e}"));
        }
    }
    let warning = format!(
        "target state is volatile: {why}; persistent reservations (APTPL) and ALUA states are lost at reboot"
    );
    init.warn(&warning);
    init.storage.report.state = Some(StateReport {
        persistent: false,
        device: None,
        fstype: None,
        dirs: dirs.iter().map(|(_, d)| d.display().to_string()).collect(),
        warning: Some(warning),
    });
    Ok(())
}

/// The registrations of an APTPL file (`PR_REG_START: n` … `PR_REG_END: n`), each as
/// the `key=value,…` line `pr/res_aptpl_metadata` takes; empty when the file holds
/// none ("No Registrations or Reservations").
pub fn parse_aptpl(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for w in text.split_whitespace() {
        if w.starts_with("PR_REG_START:") {
            cur = Some(Vec::new());
        } else if w.starts_with("PR_REG_END:") {
            if let Some(r) = cur.take().filter(|r| !r.is_empty()) {
                out.push(r.join(","));
            }
        } else if let Some(r) = &mut cur {
            // The kernel writes `PR_REG_START: 0` as two words.
            if w.contains('=') {
                r.push(w.to_string());
            }
        }
    }
    out
}

/// The ALUA access state recorded for a target port group (`alua_access_state=0x02`).
pub fn parse_alua_state(text: &str) -> Option<u8> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix("alua_access_state=")?;
        u8::from_str_radix(v.trim_start_matches("0x"), 16).ok()
    })
}

/// After the backstores exist and before any LUN does: each backstore's persistent
/// reservations back from `pr/aptpl_SERIAL` (what the initiators registered with
/// APTPL), and with persistent state, ALUA transitions of `default_tg_pt_gp`
/// recorded and the last recorded state restored. Errors are warnings.
pub fn restore_lio_state(init: &mut Init, lio: &Lio, absent: &BTreeSet<String>) {
    let base = Path::new(crate::scsi::lio::CONFIGFS_TARGET);
    let db = lio_dbroot(init.sys);
    let persistent = init.storage.persistent();
    for (name, dir, serial) in crate::scsi::lio::backstore_dirs(lio) {
        if absent.contains(&name) {
            continue;
        }
        let dev = base.join(&dir);
        let aptpl = db.join("pr").join(format!("aptpl_{serial}"));
        if let Ok(text) = init.sys.read_to_string(&aptpl) {
            let regs = parse_aptpl(&text);
            let mut ok = 0;
            for r in &regs {
                match init.sys.write_file(&dev.join("pr/res_aptpl_metadata"), r) {
                    Ok(()) => ok += 1,
                    Err(e) => init.warn(format!("backstore `{name}`: {e}")),
                }
            }
            if !regs.is_empty() {
                init.log.line(&format!(
                    "backstore `{name}`: {ok} of {} persistent reservation registrations restored from {} (APTPL)",
                    regs.len(),
                    aptpl.display()
                ));
            }
        }
        if !persistent {
            continue;
        }
        let tpgs = db.join("alua").join(format!("tpgs_{serial}"));
        let gp = dev.join("alua/default_tg_pt_gp");
        if let Err(e) = init
            .sys
            .mkdir(&tpgs)
            .and_then(|()| init.sys.write_file(&gp.join("alua_write_metadata"), "1"))
        {
            init.warn(format!("backstore `{name}`: ALUA state not recorded: {e}"));
            continue;
        }
        let recorded = init
            .sys
            .read_to_string(&tpgs.join("default_tg_pt_gp"))
            .ok()
            .and_then(|t| parse_alua_state(&t));
        // 0 (active/optimized) is where every device starts.
        if let Some(st) = recorded.filter(|s| *s != 0) {
            match init
                .sys
                .write_file(&gp.join("alua_access_state"), &st.to_string())
            {
                Ok(()) => init.log.line(&format!(
                    "backstore `{name}`: ALUA state {st} of default_tg_pt_gp restored"
                )),
                Err(e) => init.warn(format!("backstore `{name}`: ALUA state not restored: {e}")),
            }
        }
    }
}
