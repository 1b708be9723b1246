//! Storage before targets: the boot assembles the node's md arrays (Debian's mdadm)
//! and activates its LVM volume groups (Debian's lvm2) in the order `[storage] order`
//! states, then checks every device a LUN is backed by; and it puts the targets'
//! persistent state (SCSI persistent reservations, ALUA states) on persistent storage.
//!
//! * md: for each `[[storage.md]]`, the member devices named without wildcards are
//!   waited for (`device-timeout`), wildcards are expanded in their directory; then
//!   `mdadm --assemble /dev/md/NAME --run [--uuid=U] DEVICES…` with `MDADM_NO_UDEV=1`
//!   (mdadm makes `/dev/md/NAME` itself: the image has no md udev rules). `--run`
//!   starts an array with members missing; the console names each missing member, and
//!   the array's state, level and members come from `/sys/block/mdX/md/`. With
//!   `assemble = "scan"`: `mdadm --assemble --scan --run` over `/etc/mdadm/mdadm.conf`.
//!   The md personality modules are loaded first (the kernel would ask modprobe, which
//!   the image does not have).
//! * LVM: `/etc/lvm/lvm.conf` is written for a system without udev and without
//!   dmeventd (LVM scans /dev and makes its own nodes and `/dev/VG/LV` links, LVs are
//!   not scanned for PVs, `lvm-reject` is its `global_filter`), then `lvm vgchange -ay
//!   VG` for each `activate = "boot"` VG. An `activate = "ha"` VG (on a DRBD device,
//!   `[[lvm]]` of the cluster file) is left to the cluster: `ocf:heartbeat:LVM-activate`
//!   activates it on the DRBD Primary, with the node name as its LVM system ID
//!   (lvm.conf `system_id_source = "uname"`). Active LVs are read from
//!   `/sys/block/dm-*/dm/`.
//! * Absent backing devices: a LIO block backstore whose device is not there (a
//!   fileio one whose directory is not), or an SCST device whose `filename` is not
//!   there, is not created: the console says which, its LUNs are left out
//!   ([`crate::scsi::lio::plan_without`], [`without_devices`]) and the rest is served. A
//!   target left without LUNs is still created and enabled (initiators log in and see
//!   no LUN), as an empty target would be.
//! * Target state ([`target_state`]): the state device — disk.img's `SANFORGE-STATE`
//!   partition (found by its GPT name in `/sys/class/block/*/uevent`), a device the
//!   node names, or nothing (`volatile`, warned about) — is mounted on
//!   [`STATE_MOUNT`] and LIO's `pr` and `alua` directories (under its `db_root`,
//!   `/sys/kernel/config/target/dbroot`) and SCST's `/var/lib/scst/pr` and
//!   `vdev_mode_pages` are bind-mounted from it before any target exists. LIO writes
//!   PR state (`pr/aptpl_SERIAL`) only when the initiator sets APTPL, and never reads
//!   it back: [`restore_lio_state`] hands each backstore's registrations to
//!   `pr/res_aptpl_metadata` before its LUNs exist (as rtslib does), and with
//!   persistent state turns on `alua_write_metadata` of its `default_tg_pt_gp` and
//!   restores the state recorded in `alua/tpgs_SERIAL/default_tg_pt_gp`.
//!
//! What was found goes into the hardware report ([`StorageReport`]). Reads the node
//! config, `/dev`, `/sys/block`, `/sys/class/block`, the state device's first 4 KiB;
//! runs mdadm and lvm through [`Sys::run_output`]; writes `/etc/lvm/lvm.conf`,
//! `/etc/mdadm/mdadm.conf` and mounts.
//!
//! Its parts: `md.rs` (md arrays), `lvm.rs` (LVM volume groups), `absent.rs` (LUNs
//! whose backing device is absent), `state.rs` (the targets' persistent state); this
//! file holds the boot step that runs them in order and the report.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use super::hardware::ModuleIndex;
use super::modules::fnmatch;
use super::Init;
use crate::config::storage::{md_level_module, Assemble, Layer, Storage, MD_LEVELS};
use crate::sys::{Output, Sys};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

mod absent;
mod lvm;
mod md;
mod state;
pub use absent::{absent_lio, absent_luns, absent_scst, without_devices};
use lvm::activate_lvm;
pub use lvm::{active_lvs, render_lvm_conf, split_dm_name};
use md::{assemble_md, attr};
pub use state::{
    detect_fstype, find_partition, lio_dbroot, parse_alua_state, parse_aptpl, restore_lio_state,
    target_state,
};

/// How long one `mdadm --assemble` may take.
pub const MDADM_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one `lvm vgchange` may take.
pub const LVM_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the boot looks for a device it waits for.
const POLL: Duration = Duration::from_millis(100);

/// What the storage steps found, for the hardware report and the target steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageReport {
    pub md: Vec<MdReport>,
    pub lvm: Vec<VgReport>,
    /// Devices the node config names that are not there (md members, the state device).
    pub missing: Vec<String>,
    /// Backstores (LIO) and devices (SCST) not created: their device is not there.
    pub absent_luns: Vec<AbsentLun>,
    /// Where the targets' persistent state lives.
    pub state: Option<StateReport>,
}

/// One md array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MdReport {
    /// `/dev/md/NAME` (the name), or the kernel's name with `assemble = "scan"`.
    pub name: String,
    /// The kernel's device (`md127`), once assembled.
    pub device: Option<String>,
    pub level: Option<String>,
    /// `clean`, `active`, `degraded`, `inactive`, `not assembled`, …
    pub state: String,
    pub raid_disks: Option<u32>,
    /// How many member slots are empty (the kernel's `degraded`).
    pub degraded: u32,
    /// The member devices in the array (`sda`, `sdb`), each with its state.
    pub members: Vec<String>,
    /// Configured members that are absent or not in the array, each with why.
    pub missing: Vec<String>,
    /// `resync`, `recover`, … while the array rebuilds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One volume group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VgReport {
    pub vg: String,
    /// `boot` or `ha`.
    pub activate: String,
    /// Its active logical volumes.
    pub lvs: Vec<LvReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LvReport {
    pub name: String,
    /// `/dev/VG/LV`.
    pub path: String,
    /// `dm-3`.
    pub device: String,
    pub size_bytes: u64,
}

/// A backstore or SCST device not created because its device is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AbsentLun {
    /// `lio` or `scst`.
    pub stack: String,
    pub backstore: String,
    pub path: String,
}

/// Where the targets' persistent state lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StateReport {
    pub persistent: bool,
    pub device: Option<String>,
    pub fstype: Option<String>,
    /// The directories the targets use (bound onto the state device when persistent).
    pub dirs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What the storage steps keep for the later steps.
#[derive(Debug, Clone, Default)]
pub struct StorageState {
    pub report: StorageReport,
}

impl StorageState {
    /// Whether the targets' state is on a persistent device.
    pub fn persistent(&self) -> bool {
        self.report.state.as_ref().is_some_and(|s| s.persistent)
    }
}

/// Boot step `storage`: md arrays and volume groups in `[storage] order`, then the
/// backing devices of the targets checked. Every problem is on the console; the
/// step fails (a warning) when an array is degraded or missing, a VG did not
/// activate, or a LUN's device is absent.
pub fn assemble(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let s = &node.storage;
    let mut problems: Vec<String> = Vec::new();
    if s.uses_md() || s.uses_lvm() {
        load_storage_modules(init, s, &mut problems);
    }
    for layer in s.layers() {
        match layer {
            Layer::Md if s.uses_md() => assemble_md(init, s, &mut problems),
            Layer::Lvm if s.uses_lvm() => activate_lvm(init, s, &mut problems),
            _ => {}
        }
    }
    let absent = absent_luns(init.sys, &node);
    for a in &absent {
        init.warn(format!(
            "{} {} `{}`: {} is not present: not created, its LUNs are not served",
            a.stack,
            if a.stack == "lio" {
                "backstore"
            } else {
                "device"
            },
            a.backstore,
            a.path
        ));
    }
    if !absent.is_empty() {
        problems.push(format!(
            "{} LUN device{} absent",
            absent.len(),
            if absent.len() == 1 { "" } else { "s" }
        ));
    }
    init.storage.report.absent_luns = absent;
    if !problems.is_empty() {
        bail!("storage incomplete: {}", problems.join("; "));
    }
    Ok(())
}

/// The modules md and LVM need: md_mod and the personalities of the arrays (every
/// one the image has when a level is not given), dm_mod (built in here).
fn load_storage_modules(init: &mut Init, s: &Storage, problems: &mut Vec<String>) {
    let index = match module_index(init) {
        Ok(i) => i,
        Err(e) => {
            init.warn(format!(
                "storage: {e:#}: md and device-mapper modules not loaded"
            ));
            return;
        }
    };
    let mut want: Vec<String> = Vec::new();
    if s.uses_md() {
        want.push("md_mod".into());
        let levels: Vec<&str> =
            s.md.iter()
                .map(|m| m.level.as_deref().and_then(md_level_module))
                .collect::<Option<Vec<_>>>()
                .filter(|_| s.assemble == Assemble::Listed)
                .unwrap_or_else(|| MD_LEVELS.iter().map(|(_, m)| *m).collect());
        for m in levels {
            // An unknown level's module is asked for only when the image has it.
            let have = index.dep.modules.contains_key(m) || index.builtin.contains(m);
            if have && !want.iter().any(|w| w == m) {
                want.push(m.to_string());
            }
        }
    }
    if s.uses_lvm() {
        want.push("dm_mod".into());
    }
    if let Err(e) = load_named(init, &index, &want, "storage") {
        problems.push(e);
    }
}

fn module_index(init: &mut Init) -> Result<ModuleIndex> {
    if let Some(i) = &init.hw.index {
        return Ok(i.clone());
    }
    let i = ModuleIndex::read(init.sys)?;
    init.hw.index = Some(i.clone());
    Ok(i)
}

/// Loads `names` (and what they need) in modules.dep order with the node's
/// parameters; the error says how many did not load (each is on the console).
fn load_named(
    init: &mut Init,
    index: &ModuleIndex,
    names: &[String],
    why: &str,
) -> Result<(), String> {
    let node = init.node().map_err(|e| e.to_string())?;
    let m = &node.modules;
    let plan = super::modules::load_order(&index.dep, &index.builtin, names, &m.blacklist);
    let mut failed = 0;
    for w in &plan.warnings {
        init.warn(format!("{why}: {w}"));
        failed += 1;
    }
    for l in &plan.loads {
        let params = super::hardware::params_of(m, &l.name);
        match init.sys.finit_module(&index.dir.join(&l.path), params) {
            Ok(()) => init.log.line(&format!("{why}: loaded module {}", l.name)),
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Err(e) => {
                let msg = super::modules::load_error(&l.name, &e);
                init.warn(format!("{why}: {msg}"));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} modules not loaded"));
    }
    Ok(())
}

/// Waits (bounded by `timeout`, shared by all) for the devices named without
/// wildcards; returns those still absent.
fn wait_for_devices(sys: &mut dyn Sys, paths: &[&str], timeout: Duration) -> Vec<String> {
    let mut waited = Duration::ZERO;
    loop {
        let absent: Vec<String> = paths
            .iter()
            .filter(|p| !sys.exists(Path::new(p)))
            .map(|p| p.to_string())
            .collect();
        if absent.is_empty() || waited >= timeout {
            return absent;
        }
        sys.sleep(POLL);
        waited += POLL;
    }
}

/// The devices a wildcard pattern matches in its directory, sorted; partitions
/// (`…-partN`, `sda1`) only when the pattern itself is about partitions.
pub fn expand(sys: &mut dyn Sys, pattern: &str) -> Vec<String> {
    let Some((dir, pat)) = pattern.rsplit_once('/') else {
        return Vec::new();
    };
    let parts_too = pat.contains("part");
    let mut out = Vec::new();
    for n in sys.list_dir(Path::new(dir)).unwrap_or_default() {
        if !fnmatch(pat.as_bytes(), n.as_bytes()) {
            continue;
        }
        let is_part = n
            .rsplit_once("-part")
            .is_some_and(|(_, d)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        if is_part && !parts_too {
            continue;
        }
        out.push(format!("{dir}/{n}"));
    }
    out
}

/// Runs a storage tool; the error names the command, its exit and its last word.
fn run_tool(
    sys: &mut dyn Sys,
    argv: &[String],
    env: &[(&str, &str)],
    timeout: Duration,
) -> Result<Output, String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match sys.run_output(argv, &env, timeout) {
        Ok(o) if o.status.success() => Ok(o),
        Ok(o) => Err(format!(
            "`{}` ended with {}{}",
            argv.join(" "),
            o.status,
            o.last_error_line()
                .map(|l| format!(": {l}"))
                .unwrap_or_default()
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// The console lines of the storage part of the hardware report.
pub fn render(r: &StorageReport) -> Vec<String> {
    let mut out = Vec::new();
    for m in &r.md {
        let dev = m
            .device
            .as_deref()
            .map(|d| format!("/dev/{d} "))
            .unwrap_or_default();
        let missing = if m.missing.is_empty() {
            String::new()
        } else {
            format!(" MISSING {}", m.missing.join(", "))
        };
        out.push(format!(
            "  md   {} {dev}{} {} members [{}]{missing}",
            m.name,
            m.level.as_deref().unwrap_or("?"),
            m.state,
            m.members.join(", ")
        ));
    }
    for v in &r.lvm {
        let lvs: Vec<String> = v.lvs.iter().map(|l| l.name.clone()).collect();
        out.push(format!(
            "  vg   {} ({}) {}{}",
            v.vg,
            v.activate,
            if v.activate == "ha" && lvs.is_empty() {
                "inactive (the cluster's)".to_string()
            } else {
                format!("LVs [{}]", lvs.join(", "))
            },
            v.error
                .as_deref()
                .map(|e| format!(" ERROR {e}"))
                .unwrap_or_default()
        ));
    }
    for a in &r.absent_luns {
        out.push(format!(
            "  lun  {} {} NOT SERVED: {} is not present",
            a.stack, a.backstore, a.path
        ));
    }
    if let Some(s) = &r.state {
        out.push(match (&s.device, s.persistent) {
            (Some(d), true) => format!(
                "  state {} ({}) holds {}",
                d,
                s.fstype.as_deref().unwrap_or("?"),
                s.dirs.join(", ")
            ),
            _ => format!(
                "  state VOLATILE: {}",
                s.warning.as_deref().unwrap_or("no state device")
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests;
