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

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use super::hardware::{human_size, ModuleIndex};
use super::modules::fnmatch;
use super::Init;
use crate::config::node::{BackstoreKind, Lio, NodeConfig};
use crate::config::storage::{
    is_pattern, md_level_module, Activate, Assemble, Layer, MdArray, StateWhere, Storage, MD_LEVELS,
};
use crate::contract::{
    LIO_DBROOTS, LIO_DBROOT_ATTR, LIO_STATE_DIRS, LVM, LVM_CONF, MDADM, MDADM_CONF,
    SCST_STATE_DIRS, STATE_MOUNT, STATE_NAME,
};
use crate::scsi::scst::ScstConf;
use crate::sys::{Output, Sys};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

// ---- Boot step: md and LVM --------------------------------------------------------

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

/// The md arrays, listed or scanned.
fn assemble_md(init: &mut Init, s: &Storage, problems: &mut Vec<String>) {
    if let Some(conf) = &s.mdadm_conf {
        let p = Path::new(MDADM_CONF);
        let text = format!(
            "# Written by sanforge-init at boot from the node config's [storage] mdadm-conf.\n{}{}",
            conf,
            if conf.ends_with('\n') { "" } else { "\n" }
        );
        let r = p
            .parent()
            .map_or(Ok(()), |d| init.sys.mkdir(d))
            .and_then(|()| init.sys.write_durable(p, text.as_bytes()));
        if let Err(e) = r {
            init.warn(format!("md: {e}"));
            problems.push(format!("{MDADM_CONF} not written"));
        }
    }
    if s.assemble == Assemble::Scan {
        scan_md(init, problems);
        return;
    }
    // Every member named without wildcards, waited for at once.
    let explicit: Vec<&str> =
        s.md.iter()
            .flat_map(|a| a.devices.iter())
            .filter(|d| !is_pattern(d))
            .map(String::as_str)
            .collect();
    let absent = wait_for_devices(init.sys, &explicit, s.device_timeout.0);
    for a in &s.md {
        let r = assemble_one(init, a, &absent);
        if let Some(p) = md_problem(&r) {
            problems.push(p);
        }
        init.storage.report.missing.extend(
            r.missing
                .iter()
                .map(|m| m.split_once(' ').map_or(m.as_str(), |(p, _)| p).to_string()),
        );
        init.storage.report.md.push(r);
    }
}

/// What is wrong with an array, if anything.
fn md_problem(r: &MdReport) -> Option<String> {
    if r.device.is_none() || r.state == "inactive" {
        Some(format!("md {} not running", r.name))
    } else if r.degraded > 0 || !r.missing.is_empty() {
        Some(format!(
            "md {} degraded ({} missing)",
            r.name,
            r.degraded.max(r.missing.len() as u32)
        ))
    } else {
        None
    }
}

/// `mdadm --assemble` of one listed array, and what became of it.
fn assemble_one(init: &mut Init, a: &MdArray, absent: &[String]) -> MdReport {
    let target = format!("/dev/md/{}", a.name);
    // The members present, by the names the config gives (deduplicated by device).
    let mut present: Vec<String> = Vec::new();
    let mut devices: Vec<PathBuf> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for d in &a.devices {
        let found = if is_pattern(d) {
            let m = expand(init.sys, d);
            if m.is_empty() {
                missing.push(format!("{d} (matches no device)"));
            }
            m
        } else if absent.contains(d) {
            missing.push(format!("{d} (not present)"));
            Vec::new()
        } else {
            vec![d.clone()]
        };
        for f in found {
            let canon = init
                .sys
                .canonicalize(Path::new(&f))
                .unwrap_or_else(|_| PathBuf::from(&f));
            if !devices.contains(&canon) {
                devices.push(canon);
                present.push(f);
            }
        }
    }
    let already = init.sys.exists(Path::new(&target));
    let mut error = None;
    if already {
        init.log
            .line(&format!("md {}: {target} is already assembled", a.name));
    } else if present.is_empty() && a.uuid.is_none() {
        error = Some("none of its devices is present".to_string());
    } else {
        let mut argv: Vec<String> = vec![
            MDADM.into(),
            "--assemble".into(),
            target.clone(),
            "--run".into(),
        ];
        if let Some(u) = &a.uuid {
            argv.push(format!("--uuid={u}"));
        }
        if present.is_empty() {
            // A uuid and no device present by name: let mdadm examine every device.
            argv.push("--scan".into());
            argv.push("--config=partitions".into());
        }
        argv.extend(present.iter().cloned());
        match run_tool(init.sys, &argv, &[("MDADM_NO_UDEV", "1")], MDADM_TIMEOUT) {
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    let mut r = md_report(init.sys, &a.name, Path::new(&target));
    r.error = error;
    if let (Some(want), Some(got)) = (&a.level, &r.level) {
        if want != got {
            r.error = Some(format!("level is {got}, the node config says {want}"));
        }
    }
    // Present devices the array did not take (a stale or foreign superblock).
    if r.device.is_some() {
        for (p, canon) in present.iter().zip(&devices) {
            let name = canon
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !r.members.iter().any(|m| m.split(' ').next() == Some(&name)) {
                missing.push(format!("{p} (present as {name}, not in the array)"));
            }
        }
    }
    r.missing = missing;
    log_md(init, &r);
    r
}

/// `mdadm --assemble --scan --run`, then every md array the kernel has.
fn scan_md(init: &mut Init, problems: &mut Vec<String>) {
    let argv: Vec<String> = [MDADM, "--assemble", "--scan", "--run"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Err(e) = run_tool(init.sys, &argv, &[("MDADM_NO_UDEV", "1")], MDADM_TIMEOUT) {
        init.warn(format!("md: {e}"));
    }
    // Names from /dev/md (mdadm's links), else the kernel's.
    let mut named: Vec<(String, String)> = Vec::new();
    for n in init.sys.list_dir(Path::new("/dev/md")).unwrap_or_default() {
        let p = Path::new("/dev/md").join(&n);
        if let Some(dev) = init
            .sys
            .canonicalize(&p)
            .ok()
            .and_then(|c| c.file_name().map(|f| f.to_string_lossy().into_owned()))
        {
            named.push((n, dev));
        }
    }
    let mut any = false;
    for dev in init
        .sys
        .list_dir(Path::new("/sys/block"))
        .unwrap_or_default()
    {
        if !dev.starts_with("md") {
            continue;
        }
        any = true;
        let name = named
            .iter()
            .find(|(_, d)| *d == dev)
            .map_or(dev.clone(), |(n, _)| n.clone());
        let r = md_report(init.sys, &name, &Path::new("/dev").join(&dev));
        if let Some(p) = md_problem(&r) {
            problems.push(p);
        }
        log_md(init, &r);
        init.storage.report.md.push(r);
    }
    if !any {
        init.warn("md: mdadm --assemble --scan assembled no array");
        problems.push("no md array".into());
    }
}

/// One sysfs attribute of a block device, trimmed.
fn attr(sys: &mut dyn Sys, p: &Path) -> Option<String> {
    sys.read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// An array as `/sys/block/mdX/md/` shows it (`dev` is its /dev path).
fn md_report(sys: &mut dyn Sys, name: &str, dev: &Path) -> MdReport {
    let mut r = MdReport {
        name: name.to_string(),
        state: "not assembled".into(),
        ..MdReport::default()
    };
    if !sys.exists(dev) {
        return r;
    }
    let Some(kdev) = sys
        .canonicalize(dev)
        .ok()
        .and_then(|c| c.file_name().map(|f| f.to_string_lossy().into_owned()))
    else {
        return r;
    };
    let md = Path::new("/sys/block").join(&kdev).join("md");
    r.device = Some(kdev);
    r.level = attr(sys, &md.join("level"));
    r.raid_disks = attr(sys, &md.join("raid_disks")).and_then(|v| v.parse().ok());
    r.degraded = attr(sys, &md.join("degraded"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    r.sync_action = attr(sys, &md.join("sync_action")).filter(|a| a != "idle");
    let state = attr(sys, &md.join("array_state")).unwrap_or_else(|| "unknown".into());
    r.state = if r.degraded > 0 && state != "inactive" {
        format!("{state}, degraded")
    } else {
        state
    };
    for e in sys.list_dir(&md).unwrap_or_default() {
        let Some(member) = e.strip_prefix("dev-") else {
            continue;
        };
        let st = attr(sys, &md.join(&e).join("state")).unwrap_or_default();
        r.members.push(if st.is_empty() || st == "in_sync" {
            member.to_string()
        } else {
            format!("{member} ({st})")
        });
    }
    r
}

/// The console lines of an array.
fn log_md(init: &mut Init, r: &MdReport) {
    let Some(dev) = &r.device else {
        init.warn(format!(
            "md {}: NOT ASSEMBLED{}{}",
            r.name,
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
            if r.missing.is_empty() {
                String::new()
            } else {
                format!("; missing {}", r.missing.join(", "))
            }
        ));
        return;
    };
    let total = r.raid_disks.map(|n| format!(" of {n}")).unwrap_or_default();
    let head = format!(
        "md {}: /dev/{dev} {} {}, {}{total} members ({})",
        r.name,
        r.level.as_deref().unwrap_or("?"),
        r.state,
        r.members.len(),
        r.members.join(", ")
    );
    let sync = r
        .sync_action
        .as_deref()
        .map(|a| format!(", {a} running"))
        .unwrap_or_default();
    if r.degraded > 0 || !r.missing.is_empty() || r.error.is_some() {
        let missing = if r.missing.is_empty() {
            String::new()
        } else {
            format!("; missing {}", r.missing.join(", "))
        };
        let err = r
            .error
            .as_deref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default();
        init.warn(format!("{head}{sync}: DEGRADED{missing}{err}"));
    } else {
        init.log.line(&format!("{head}{sync}"));
    }
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

/// lvm.conf for a node without udev rules for device-mapper and without dmeventd.
pub fn render_lvm_conf(s: &Storage) -> String {
    let mut out = String::from(
        "# Written by sanforge-init at boot from the node config's [storage].\n\
         # No udev rules for device-mapper in the image: LVM scans /dev itself and makes\n\
         # its own device nodes and /dev/VG/LV links; no dmeventd, no lvmetad, no\n\
         # devices file. LVs are never scanned for PVs (a DRBD backing LV carries the\n\
         # label of the VG on top of DRBD).\n",
    );
    out.push_str("devices {\n");
    out.push_str("\tdir = \"/dev\"\n\tscan = [ \"/dev\" ]\n");
    out.push_str("\tobtain_device_list_from_udev = 0\n");
    out.push_str("\texternal_device_info_source = \"none\"\n");
    out.push_str("\tscan_lvs = 0\n\tuse_devicesfile = 0\n\tmd_component_detection = 1\n");
    if !s.lvm_reject.is_empty() {
        let pats: Vec<String> = s
            .lvm_reject
            .iter()
            .map(|p| format!("\"r|^{}$|\"", regex_escape(p)))
            .collect();
        out.push_str(&format!("\tglobal_filter = [ {} ]\n", pats.join(", ")));
    }
    out.push_str("}\n");
    out.push_str("global {\n\tuse_lvmlockd = 0\n\tevent_activation = 0\n");
    if s.lvm.iter().any(|v| v.activate == Activate::Ha) {
        // A VG the cluster activates carries the system ID of the node that holds it
        // (`ocf:heartbeat:LVM-activate` with `vg_access_mode=system_id` refuses to run
        // without one): the node's name, which the init sets as its hostname. Another
        // node's VG is foreign here and cannot be activated by mistake.
        out.push_str("\tsystem_id_source = \"uname\"\n");
    }
    out.push_str("}\n");
    out.push_str(
        "activation {\n\tudev_sync = 0\n\tudev_rules = 0\n\tverify_udev_operations = 0\n\tmonitoring = 0\n}\n",
    );
    out.push_str("backup {\n\tbackup = 0\n\tarchive = 0\n}\n");
    out
}

/// A path as an LVM filter regex matching it alone.
fn regex_escape(p: &str) -> String {
    let mut out = String::new();
    for c in p.chars() {
        if ".+*?()[]{}^$|\\".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// lvm.conf, then `vgchange -ay` of each boot VG; the others are reported as the
/// cluster's.
fn activate_lvm(init: &mut Init, s: &Storage, problems: &mut Vec<String>) {
    let conf = Path::new(LVM_CONF);
    let r = conf
        .parent()
        .map_or(Ok(()), |d| init.sys.mkdir(d))
        .and_then(|()| init.sys.mkdir(Path::new("/run/lock/lvm")))
        .and_then(|()| init.sys.write_durable(conf, render_lvm_conf(s).as_bytes()));
    if let Err(e) = r {
        init.warn(format!("lvm: {e}"));
        problems.push(format!("{LVM_CONF} not written"));
        return;
    }
    for v in &s.lvm {
        let mut rep = VgReport {
            vg: v.vg.clone(),
            activate: match v.activate {
                Activate::Boot => "boot",
                Activate::Ha => "ha",
            }
            .into(),
            ..VgReport::default()
        };
        if v.activate == Activate::Ha {
            init.log.line(&format!(
                "lvm {}: left inactive, the cluster activates it on promote (activate = \"ha\")",
                v.vg
            ));
            init.storage.report.lvm.push(rep);
            continue;
        }
        let argv: Vec<String> = [LVM, "vgchange", "-ay", v.vg.as_str()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let r = run_tool(
            init.sys,
            &argv,
            &[("LVM_SUPPRESS_FD_WARNINGS", "1")],
            LVM_TIMEOUT,
        );
        rep.lvs = active_lvs(init.sys, &v.vg);
        let lvs: Vec<String> = rep
            .lvs
            .iter()
            .map(|l| format!("{} ({})", l.path, human_size(l.size_bytes)))
            .collect();
        match r {
            Ok(_) => init.log.line(&format!(
                "lvm {}: activated, {} LV{}{}",
                v.vg,
                rep.lvs.len(),
                if rep.lvs.len() == 1 { "" } else { "s" },
                if lvs.is_empty() {
                    String::new()
                } else {
                    format!(": {}", lvs.join(", "))
                }
            )),
            Err(e) => {
                init.warn(format!(
                    "lvm {}: NOT ACTIVATED: {e}{}",
                    v.vg,
                    if lvs.is_empty() {
                        String::new()
                    } else {
                        format!(" (active: {})", lvs.join(", "))
                    }
                ));
                problems.push(format!("volume group {} not activated", v.vg));
                rep.error = Some(e);
            }
        }
        init.storage.report.lvm.push(rep);
    }
}

/// `vg-name` of a device-mapper name → (VG, LV), undoing LVM's doubling of `-`; None
/// for what is no plain LV (`vg-lv-real`, `vg-lv-cow`: the single `-` of a layer).
pub fn split_dm_name(name: &str) -> Option<(String, String)> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' {
            if chars.peek() == Some(&'-') {
                chars.next();
                parts.last_mut()?.push('-');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut()?.push(c);
        }
    }
    match parts.as_slice() {
        [vg, lv] if !vg.is_empty() && !lv.is_empty() => Some((vg.clone(), lv.clone())),
        _ => None,
    }
}

/// The active LVs of `vg`, from `/sys/block/dm-*/dm/{uuid,name}` (LVM's uuids start
/// with `LVM-`).
pub fn active_lvs(sys: &mut dyn Sys, vg: &str) -> Vec<LvReport> {
    let mut out = Vec::new();
    for dev in sys.list_dir(Path::new("/sys/block")).unwrap_or_default() {
        if !dev.starts_with("dm-") {
            continue;
        }
        let d = Path::new("/sys/block").join(&dev);
        if !attr(sys, &d.join("dm/uuid")).is_some_and(|u| u.starts_with("LVM-")) {
            continue;
        }
        let Some((v, lv)) = attr(sys, &d.join("dm/name")).and_then(|n| split_dm_name(&n)) else {
            continue;
        };
        if v != vg {
            continue;
        }
        let sectors: u64 = attr(sys, &d.join("size"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        out.push(LvReport {
            path: format!("/dev/{vg}/{lv}"),
            name: lv,
            device: dev,
            size_bytes: sectors.saturating_mul(512),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

// ---- Absent backing devices -------------------------------------------------------

/// The LIO backstores whose device is not there: a block backstore's device, a
/// fileio backstore's directory (the kernel creates the file, not its directory).
pub fn absent_lio(sys: &mut dyn Sys, lio: &Lio) -> Vec<AbsentLun> {
    let mut out = Vec::new();
    for b in &lio.backstores {
        let Some(p) = b.path.as_deref() else { continue };
        let check = match b.kind {
            BackstoreKind::Block => PathBuf::from(p),
            BackstoreKind::Fileio => Path::new(p)
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            BackstoreKind::Ramdisk => continue,
        };
        if !sys.exists(&check) {
            out.push(AbsentLun {
                stack: "lio".into(),
                backstore: b.name.clone(),
                path: check.display().to_string(),
            });
        }
    }
    out
}

/// The SCST devices whose `filename` is not there.
pub fn absent_scst(sys: &mut dyn Sys, conf: &ScstConf) -> Vec<AbsentLun> {
    let mut out = Vec::new();
    for h in &conf.handlers {
        for d in &h.devices {
            let Some(f) = crate::scsi::scst::attr(&d.attrs, "filename") else {
                continue;
            };
            if f.starts_with('/') && !sys.exists(Path::new(f)) {
                out.push(AbsentLun {
                    stack: "scst".into(),
                    backstore: d.name.clone(),
                    path: f.to_string(),
                });
            }
        }
    }
    out
}

/// Every LUN device of the node that is absent (LIO and SCST).
pub fn absent_luns(sys: &mut dyn Sys, node: &NodeConfig) -> Vec<AbsentLun> {
    let mut out = Vec::new();
    if let Some(l) = &node.lio {
        out.extend(absent_lio(sys, l));
    }
    if let Some(s) = &node.scst {
        let path = crate::contract::conf_path(&s.conf);
        if let Ok(text) = sys.read_to_string(&path) {
            if let Ok((conf, _)) = crate::scsi::scst::load_conf(&path, &text) {
                out.extend(absent_scst(sys, &conf));
            }
        }
    }
    out
}

/// `conf` without the devices named in `absent`, their LUNs (in targets and
/// initiator groups) and their device-group entries.
pub fn without_devices(conf: &ScstConf, absent: &BTreeSet<String>) -> ScstConf {
    let mut c = conf.clone();
    for h in &mut c.handlers {
        h.devices.retain(|d| !absent.contains(&d.name));
    }
    for d in &mut c.drivers {
        for t in &mut d.targets {
            t.luns.retain(|l| !absent.contains(&l.device));
            for g in &mut t.groups {
                g.luns.retain(|l| !absent.contains(&l.device));
            }
        }
    }
    for g in &mut c.device_groups {
        g.devices.retain(|d| !absent.contains(&d.name));
    }
    c
}

// ---- Boot step: the targets' persistent state -----------------------------------

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
fn state_dirs(sys: &mut dyn Sys, node: &NodeConfig) -> Vec<(String, PathBuf)> {
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
fn volatile(init: &mut Init, dirs: &[(String, PathBuf)], why: &str) -> Result<()> {
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

// ---- LIO: what the kernel does not restore by itself ----------------------------

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

// ---- The report -------------------------------------------------------------------

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
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn dm_names_split_into_vg_and_lv() {
        assert_eq!(
            split_dm_name("vg0-lun0"),
            Some(("vg0".into(), "lun0".into()))
        );
        assert_eq!(
            split_dm_name("vg0-lv--drbd0"),
            Some(("vg0".into(), "lv-drbd0".into()))
        );
        assert_eq!(
            split_dm_name("my--vg-a--b"),
            Some(("my-vg".into(), "a-b".into()))
        );
        assert_eq!(split_dm_name("vg0-lun0-real"), None);
        assert_eq!(
            split_dm_name("sanforge-root"),
            Some(("sanforge".into(), "root".into()))
        );
    }

    #[test]
    fn aptpl_files_become_metadata_lines() {
        let text = "PR_REG_START: 0\ninitiator_fabric=iSCSI\ninitiator_node=iqn.2026-11.org.example:host\n\
                    initiator_sid=0x23d000000\nsa_res_key=1311768467463790320\nres_holder=1\nres_type=5\n\
                    res_scope=0\nres_all_tg_pt=0\nmapped_lun=0\ntarget_fabric=iSCSI\n\
                    target_node=iqn.2026-11.org.example:t\ntpgt=1\nport_rtpi=1\ntarget_lun=0\nPR_REG_END: 0\n\
                    PR_REG_START: 1\ninitiator_fabric=iSCSI\ninitiator_node=iqn.2026-11.org.example:h2\n\
                    sa_res_key=7\nres_holder=0\nres_all_tg_pt=0\nmapped_lun=0\ntarget_fabric=iSCSI\n\
                    target_node=iqn.2026-11.org.example:t\ntpgt=1\nport_rtpi=1\ntarget_lun=0\nPR_REG_END: 1\n";
        let regs = parse_aptpl(text);
        assert_eq!(regs.len(), 2);
        assert!(regs[0].starts_with("initiator_fabric=iSCSI,initiator_node=iqn.2026-11.org.example:host,initiator_sid=0x23d000000,sa_res_key=1311768467463790320,res_holder=1,res_type=5"));
        assert!(regs[1].ends_with("tpgt=1,port_rtpi=1,target_lun=0"));
        assert!(parse_aptpl("No Registrations or Reservations").is_empty());
        assert_eq!(
            parse_alua_state("tg_pt_gp_id=0\nalua_access_state=0x02\nalua_access_status=0x01\n"),
            Some(2)
        );
    }

    #[test]
    fn lvm_conf_works_without_udev_and_rejects_what_it_is_told() {
        let s = Storage {
            lvm_reject: vec!["/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part2".into()],
            ..Storage::default()
        };
        let c = render_lvm_conf(&s);
        for l in [
            "obtain_device_list_from_udev = 0",
            "udev_sync = 0",
            "udev_rules = 0",
            "scan_lvs = 0",
            "global_filter = [ \"r|^/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part2$|\" ]",
        ] {
            assert!(c.contains(l), "{l} not in\n{c}");
        }
        assert!(!render_lvm_conf(&Storage::default()).contains("global_filter"));
    }

    #[test]
    fn lvm_conf_gives_a_system_id_only_with_a_vg_the_cluster_activates() {
        use crate::config::storage::VolumeGroup;
        let vg = |activate| VolumeGroup {
            vg: "vgha".into(),
            activate,
        };
        let boot = Storage {
            lvm: vec![vg(Activate::Boot)],
            ..Storage::default()
        };
        assert!(!render_lvm_conf(&boot).contains("system_id_source"));
        let ha = Storage {
            lvm: vec![vg(Activate::Boot), vg(Activate::Ha)],
            ..Storage::default()
        };
        let c = render_lvm_conf(&ha);
        let global = c.split("global {").nth(1).and_then(|g| g.split('}').next());
        assert!(
            global.is_some_and(|g| g.contains("\tsystem_id_source = \"uname\"\n")),
            "{c}"
        );
    }

    #[test]
    fn file_systems_by_magic() {
        let mut h = vec![0u8; 4096];
        assert_eq!(detect_fstype(&h), None);
        h[1080] = 0x53;
        h[1081] = 0xef;
        assert_eq!(detect_fstype(&h), Some("ext4"));
        let mut x = vec![0u8; 512];
        x[..4].copy_from_slice(b"XFSB");
        assert_eq!(detect_fstype(&x), Some("xfs"));
    }

    #[test]
    fn scst_devices_that_are_absent_leave_with_their_luns() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/scst/alua_node1.conf"
        ))
        .unwrap();
        let conf = crate::scsi::scst::parse(&text).unwrap();
        let absent: BTreeSet<String> = ["SSD-RAID6-2".to_string()].into();
        let c = without_devices(&conf, &absent);
        let devices: Vec<&str> = c
            .handlers
            .iter()
            .flat_map(|h| h.devices.iter().map(|d| d.name.as_str()))
            .collect();
        assert!(devices.contains(&"SSD-RAID6-1"), "{devices:?}");
        assert!(!devices.contains(&"SSD-RAID6-2"), "{devices:?}");
        for d in &c.drivers {
            for t in &d.targets {
                assert!(t.luns.iter().all(|l| l.device != "SSD-RAID6-2"));
                assert!(t.luns.iter().any(|l| l.device == "SSD-RAID6-1"));
            }
        }
        for g in &c.device_groups {
            assert!(g.devices.iter().all(|d| d.name != "SSD-RAID6-2"));
        }
        // Nothing absent: the same config.
        assert_eq!(without_devices(&conf, &BTreeSet::new()), conf);
    }
}
