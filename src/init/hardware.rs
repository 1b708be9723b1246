//! Hardware is found, not listed: the boot loads the modules of the devices present
//! (coldplug) and prints what it found (the hardware report).
//!
//! Coldplug does what udev's `kmod load` does for each `add` event, once, before the
//! network and storage steps: every device under `/sys/bus/*/devices/*` that has a
//! `modalias` and no driver bound is looked up in `modules.alias` (and in the aliases
//! of built-in modules, `modules.builtin.modinfo`) with fnmatch rules; the modules it
//! names are loaded in modules.dep order with the node's `[modules] params`. A module
//! in `[modules] blacklist` is never loaded for a device (the report says so). Loading
//! a bus driver can reveal more devices, so the scan repeats (a few passes) while it
//! loads something new. Devices that appear later are udev's job (`udev.rs`).
//!
//! The report is read from sysfs (no program is run): each PCI device with its
//! vendor:device, class and the driver bound (or "no driver" and why), firmware from
//! the kernel log, each NIC (MAC, driver, link, speed) and each disk (size, model and
//! its `/dev/disk/by-id` names). Printed on the console and written to
//! [`HARDWARE_REPORT`]. Everything goes through [`Sys`], so it runs on fake trees.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::modules::{self, AliasDb, DepDb};
use super::{modules_dir, Init};
use crate::config::node::{norm_mod, Modules};
use crate::contract::HARDWARE_REPORT;
use crate::sys::Sys;
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How many times coldplug rescans after loading modules (bus drivers reveal devices).
pub const COLDPLUG_PASSES: usize = 3;

/// The module index of the running kernel, read once per boot.
#[derive(Debug, Clone, Default)]
pub struct ModuleIndex {
    /// `/lib/modules/<release>`.
    pub dir: PathBuf,
    pub dep: DepDb,
    pub builtin: BTreeSet<String>,
    pub aliases: AliasDb,
}

impl ModuleIndex {
    /// Reads `modules.dep`, `modules.builtin`, `modules.alias` and
    /// `modules.builtin.modinfo` (the last three optional).
    pub fn read(sys: &mut dyn Sys) -> Result<ModuleIndex> {
        let dir = modules_dir(sys)?;
        let dep = DepDb::parse(&sys.read_to_string(&dir.join("modules.dep"))?);
        let builtin = sys
            .read_to_string(&dir.join("modules.builtin"))
            .map(|t| modules::parse_builtin(&t))
            .unwrap_or_default();
        let mut aliases = match sys.read_to_string(&dir.join("modules.alias")) {
            Ok(t) => AliasDb::parse(&t),
            Err(_) => AliasDb::default(),
        };
        if let Ok(h) = sys.read_head(&dir.join("modules.builtin.modinfo"), 64 << 20) {
            aliases.add_builtin_modinfo(&h);
        }
        Ok(ModuleIndex {
            dir,
            dep,
            builtin,
            aliases,
        })
    }
}

/// What the hardware steps keep between coldplug and the report.
#[derive(Debug, Clone, Default)]
pub struct HwState {
    pub index: Option<ModuleIndex>,
    /// Every module coldplug asked for and what became of it.
    pub modules: Vec<ModuleOutcome>,
}

/// A device of some bus, as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// `pci`, `usb`, `virtio`, …
    pub bus: String,
    /// `0000:00:03.0`, `1-1:1.0`, …
    pub name: String,
    pub modalias: String,
    /// The driver bound, if any (the basename of the `driver` link).
    pub driver: Option<String>,
}

impl Device {
    pub fn id(&self) -> String {
        format!("{} {}", self.bus, self.name)
    }
}

/// Every device with a `modalias` under `/sys/bus/*/devices`.
pub fn scan_devices(sys: &mut dyn Sys) -> Vec<Device> {
    let mut out = Vec::new();
    let buses = sys.list_dir(Path::new("/sys/bus")).unwrap_or_default();
    for bus in buses {
        let devdir = Path::new("/sys/bus").join(&bus).join("devices");
        for name in sys.list_dir(&devdir).unwrap_or_default() {
            let dev = devdir.join(&name);
            let Ok(modalias) = sys.read_to_string(&dev.join("modalias")) else {
                continue;
            };
            let modalias = modalias.trim().to_string();
            if modalias.is_empty() {
                continue;
            }
            let driver = link_name(sys, &dev.join("driver"));
            out.push(Device {
                bus: bus.clone(),
                name,
                modalias,
                driver,
            });
        }
    }
    out
}

/// The basename of where a sysfs link leads (`driver` → `e1000e`).
fn link_name(sys: &mut dyn Sys, link: &Path) -> Option<String> {
    if !sys.exists(link) {
        return None;
    }
    let target = sys.canonicalize(link).ok()?;
    target.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// Why a candidate module of a device was or was not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// To load (coldplug) / loaded (report).
    Load,
    /// Compiled into the kernel: nothing to load.
    Builtin,
    /// In `[modules] blacklist`: never loaded for a device.
    Blacklisted,
    /// Named by `modules.alias` but not in `modules.dep` (not in the image).
    Missing,
}

/// A module `modules.alias` names for a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub module: String,
    pub verdict: Verdict,
    /// Blacklisted through this dependency (the module itself is not listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl Candidate {
    /// `qla2xxx blacklisted (needs scsi_transport_fc)`, `ahci built in`, `e1000e`.
    pub fn describe(&self) -> String {
        match (self.verdict, &self.via) {
            (Verdict::Load, _) => self.module.clone(),
            (Verdict::Builtin, _) => format!("{} built in", self.module),
            (Verdict::Blacklisted, None) => format!("{} blacklisted", self.module),
            (Verdict::Blacklisted, Some(d)) => format!("{} blacklisted (needs {d})", self.module),
            (Verdict::Missing, _) => format!("{} not in the image", self.module),
        }
    }
}

/// The first blacklisted module among `module`'s dependencies (transitively).
fn blacklisted_dependency(dep: &DepDb, module: &str, black: &BTreeSet<String>) -> Option<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![module.to_string()];
    while let Some(m) = todo.pop() {
        let Some((_, deps)) = dep.modules.get(&m) else {
            continue;
        };
        for d in deps {
            if black.contains(d) {
                return Some(d.clone());
            }
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    None
}

/// The candidate modules of one modalias, each with its verdict.
pub fn candidates(index: &ModuleIndex, modalias: &str, blacklist: &[String]) -> Vec<Candidate> {
    let black: BTreeSet<String> = blacklist.iter().map(|b| norm_mod(b)).collect();
    index
        .aliases
        .lookup(modalias)
        .into_iter()
        .map(|a| {
            let mut via = None;
            let verdict = if a.builtin || index.builtin.contains(&a.module) {
                Verdict::Builtin
            } else if black.contains(&a.module) {
                Verdict::Blacklisted
            } else if !index.dep.modules.contains_key(&a.module) {
                Verdict::Missing
            } else if let Some(d) = blacklisted_dependency(&index.dep, &a.module, &black) {
                via = Some(d);
                Verdict::Blacklisted
            } else {
                Verdict::Load
            };
            Candidate {
                module: a.module.clone(),
                verdict,
                via,
            }
        })
        .collect()
}

/// What one coldplug pass does: for each device without a driver, its candidates;
/// the modules to load, in device order (each once, none already `done`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColdplugPlan {
    pub devices: Vec<(Device, Vec<Candidate>)>,
    pub load: Vec<String>,
}

/// Plans one coldplug pass (pure): devices with a driver bound need nothing.
pub fn plan_coldplug(
    index: &ModuleIndex,
    devices: &[Device],
    blacklist: &[String],
    done: &BTreeSet<String>,
) -> ColdplugPlan {
    let mut plan = ColdplugPlan::default();
    for d in devices.iter().filter(|d| d.driver.is_none()) {
        let c = candidates(index, &d.modalias, blacklist);
        if c.is_empty() {
            continue;
        }
        for m in c.iter().filter(|c| c.verdict == Verdict::Load) {
            if !done.contains(&m.module) && !plan.load.contains(&m.module) {
                plan.load.push(m.module.clone());
            }
        }
        plan.devices.push((d.clone(), c));
    }
    plan
}

/// What became of a module coldplug asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModuleOutcome {
    pub module: String,
    /// The devices that asked for it (`pci 0000:00:03.0`).
    pub devices: Vec<String>,
    /// `loaded`, `already loaded`, `built in`, `blacklisted`, `not in the image`,
    /// or the error.
    pub result: String,
}

/// The `[modules] params` of a module (names compare with `-` as `_`).
pub fn params_of<'a>(m: &'a Modules, module: &str) -> &'a str {
    m.params
        .iter()
        .find(|(k, _)| norm_mod(k) == module)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Boot step: coldplug (when `[hardware] coldplug`), then udev (when the image has it).
pub fn hardware(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let mut failed = 0;
    if node.hardware.coldplug {
        if let Err(e) = coldplug(init) {
            init.warn(format!("coldplug: {e:#}"));
            failed += 1;
        }
    } else {
        init.log
            .line("coldplug off ([hardware] coldplug = false): only [modules] load is loaded");
    }
    if let Err(e) = super::udev::start(init) {
        init.warn(format!("udev: {e:#}"));
        failed += 1;
    }
    if failed > 0 {
        bail!("hardware setup incomplete");
    }
    Ok(())
}

/// Loads the modules of the devices present, in passes (see the module doc).
pub fn coldplug(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let index = match &init.hw.index {
        Some(i) => i.clone(),
        None => {
            let i = ModuleIndex::read(init.sys)?;
            init.hw.index = Some(i.clone());
            i
        }
    };
    if index.aliases.aliases.is_empty() {
        init.log.line(&format!(
            "coldplug: no aliases in {}/modules.alias: device modules are not loaded",
            index.dir.display()
        ));
        return Ok(());
    }
    let m = &node.modules;
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut outcomes: Vec<ModuleOutcome> = Vec::new();
    let mut failed = 0;
    let mut devices_seen = 0;
    for _pass in 0..COLDPLUG_PASSES {
        let devices = scan_devices(init.sys);
        devices_seen = devices.len();
        let plan = plan_coldplug(&index, &devices, &m.blacklist, &done);
        // Every candidate that is not loaded is recorded once, with why.
        for (d, cands) in &plan.devices {
            for c in cands {
                if c.verdict == Verdict::Load {
                    continue;
                }
                let desc = c.describe();
                let result = desc
                    .strip_prefix(c.module.as_str())
                    .unwrap_or(&desc)
                    .trim_start();
                note(&mut outcomes, &c.module, &d.id(), result);
            }
            for c in cands.iter().filter(|c| c.verdict == Verdict::Load) {
                note(&mut outcomes, &c.module, &d.id(), "");
            }
        }
        if plan.load.is_empty() {
            break;
        }
        let order = modules::load_order(&index.dep, &index.builtin, &plan.load, &m.blacklist);
        for w in &order.warnings {
            init.warn(format!("coldplug: {w}"));
            failed += 1;
        }
        for l in &order.loads {
            done.insert(l.name.clone());
            let params = params_of(m, &l.name);
            let result = match init.sys.finit_module(&index.dir.join(&l.path), params) {
                Ok(()) => "loaded".to_string(),
                Err(e) if e.errno() == Some(libc::EEXIST) => "already loaded".to_string(),
                Err(e) => {
                    failed += 1;
                    let msg = modules::load_error(&l.name, &e);
                    init.warn(format!("coldplug: {msg}"));
                    msg
                }
            };
            if let Some(o) = outcomes.iter_mut().find(|o| o.module == l.name) {
                o.result = result;
            } else {
                // A dependency: recorded under the module that needed it.
                outcomes.push(ModuleOutcome {
                    module: l.name.clone(),
                    devices: Vec::new(),
                    result,
                });
            }
        }
        for name in &plan.load {
            done.insert(name.clone());
            if let Some(o) = outcomes.iter_mut().find(|o| &o.module == name) {
                if o.result.is_empty() {
                    o.result = "not loaded (see the warning above)".into();
                }
            }
        }
    }
    for o in &outcomes {
        let who = if o.devices.is_empty() {
            "as a dependency".to_string()
        } else {
            format!("for {}", o.devices.join(", "))
        };
        init.log
            .line(&format!("coldplug: {} {} ({who})", o.module, o.result));
    }
    let loaded = outcomes.iter().filter(|o| o.result == "loaded").count();
    init.log.line(&format!(
        "coldplug: {devices_seen} devices with a modalias, {loaded} modules loaded"
    ));
    init.hw.modules = outcomes;
    if failed > 0 {
        bail!("{failed} device modules not loaded");
    }
    Ok(())
}

fn note(outcomes: &mut Vec<ModuleOutcome>, module: &str, device: &str, result: &str) {
    match outcomes.iter_mut().find(|o| o.module == module) {
        Some(o) => {
            if !o.devices.iter().any(|d| d == device) {
                o.devices.push(device.to_string());
            }
        }
        None => outcomes.push(ModuleOutcome {
            module: module.to_string(),
            devices: vec![device.to_string()],
            result: result.to_string(),
        }),
    }
}

// ---- The hardware report ----------------------------------------------------------

/// `/run/sanforge/hardware.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub pci: Vec<PciDevice>,
    pub firmware: FirmwareLog,
    pub nics: Vec<Nic>,
    pub disks: Vec<Disk>,
    /// What coldplug did, module by module.
    pub modules: Vec<ModuleOutcome>,
    /// md arrays, volume groups, absent LUN devices and where the targets' state
    /// lives (the storage steps, `init::storage`).
    pub storage: super::storage::StorageReport,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PciDevice {
    /// `0000:00:03.0`.
    pub slot: String,
    /// `8086:10d3`.
    pub id: String,
    /// `020000` (class, subclass, programming interface).
    pub class: String,
    pub driver: Option<String>,
    /// Without a driver: the modules `modules.alias` names, each with its verdict.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// Firmware as the kernel log tells it (the kernel logs failures; drivers log what
/// they load).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FirmwareLog {
    /// Files the log names that exist under /lib/firmware.
    pub loaded: Vec<String>,
    /// Files a driver asked for and did not get (`Direct firmware load … failed`).
    pub failed: Vec<String>,
    /// The log lines about firmware (at most [`FIRMWARE_LINES`]).
    pub lines: Vec<String>,
}

/// How many firmware log lines the report keeps.
pub const FIRMWARE_LINES: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Nic {
    pub name: String,
    pub mac: String,
    pub driver: Option<String>,
    /// The PCI slot, when the NIC is a PCI function.
    pub pci: Option<String>,
    /// `operstate`: up, down, dormant, unknown, …
    pub state: String,
    /// Carrier: Some only while the link is up administratively.
    pub carrier: Option<bool>,
    pub speed_mbps: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub name: String,
    pub size_bytes: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// Names in /dev/disk/by-id (udev's), without the directory.
    pub by_id: Vec<String>,
    /// Names in /dev/disk/by-path.
    pub by_path: Vec<String>,
}

/// Reads one sysfs attribute, trimmed; None when missing, unreadable or empty.
fn attr(sys: &mut dyn Sys, path: &Path) -> Option<String> {
    let v = sys.read_to_string(path).ok()?;
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// Builds the report from sysfs, /dev/disk and the kernel log.
pub fn report(sys: &mut dyn Sys, index: Option<&ModuleIndex>, blacklist: &[String]) -> Report {
    let mut r = Report::default();
    let pci = Path::new("/sys/bus/pci/devices");
    for slot in sys.list_dir(pci).unwrap_or_default() {
        let d = pci.join(&slot);
        let hex = |s: Option<String>| {
            s.map(|v| v.trim_start_matches("0x").to_string())
                .unwrap_or_else(|| "?".into())
        };
        let vendor = hex(attr(sys, &d.join("vendor")));
        let device = hex(attr(sys, &d.join("device")));
        let class = hex(attr(sys, &d.join("class")));
        let driver = link_name(sys, &d.join("driver"));
        let candidates = match (&driver, index, attr(sys, &d.join("modalias"))) {
            (None, Some(i), Some(alias)) => candidates(i, &alias, blacklist),
            _ => Vec::new(),
        };
        r.pci.push(PciDevice {
            slot,
            id: format!("{vendor}:{device}"),
            class,
            driver,
            candidates,
        });
    }
    r.firmware = match sys.kernel_log() {
        Ok(log) => firmware_from_log(sys, &log),
        Err(e) => FirmwareLog {
            lines: vec![format!("kernel log not readable: {e}")],
            ..FirmwareLog::default()
        },
    };
    let net = Path::new("/sys/class/net");
    for name in sys.list_dir(net).unwrap_or_default() {
        let d = net.join(&name);
        // Physical interfaces have a device; lo, bonds and VLANs do not.
        if !sys.exists(&d.join("device")) {
            continue;
        }
        let pci = sys
            .canonicalize(&d.join("device"))
            .ok()
            .and_then(|p| pci_slot_of(&p));
        let carrier = attr(sys, &d.join("carrier")).map(|c| c == "1");
        let speed = attr(sys, &d.join("speed"))
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(|s| u32::try_from(s).ok());
        r.nics.push(Nic {
            mac: attr(sys, &d.join("address")).unwrap_or_default(),
            driver: link_name(sys, &d.join("device/driver")),
            pci,
            state: attr(sys, &d.join("operstate")).unwrap_or_else(|| "unknown".into()),
            carrier,
            speed_mbps: speed.filter(|s| carrier == Some(true) && *s > 0),
            name,
        });
    }
    let by_id = disk_links(sys, "/dev/disk/by-id");
    let by_path = disk_links(sys, "/dev/disk/by-path");
    let block = Path::new("/sys/class/block");
    for name in sys.list_dir(block).unwrap_or_default() {
        let d = block.join(&name);
        // Whole disks of real devices: partitions have `partition`, loop/ram/dm no device.
        if sys.exists(&d.join("partition")) || !sys.exists(&d.join("device")) {
            continue;
        }
        let sectors = attr(sys, &d.join("size"))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let vendor = attr(sys, &d.join("device/vendor")).filter(|v| !v.starts_with("0x"));
        let model = attr(sys, &d.join("device/model"));
        let model = match (vendor, model) {
            (Some(v), Some(m)) if v != "ATA" => Some(format!("{v} {m}")),
            (_, m) => m,
        };
        let serial = attr(sys, &d.join("serial")).or_else(|| attr(sys, &d.join("device/serial")));
        let names = |links: &[(String, String)]| {
            links
                .iter()
                .filter(|(_, dev)| *dev == name)
                .map(|(l, _)| l.clone())
                .collect::<Vec<_>>()
        };
        r.disks.push(Disk {
            size_bytes: sectors.saturating_mul(512),
            model,
            serial,
            by_id: names(&by_id),
            by_path: names(&by_path),
            name,
        });
    }
    r
}

/// The PCI function a sysfs device path lies under: its last `DDDD:BB:DD.F` part
/// (`/sys/devices/pci0000:00/0000:00:02.0/virtio0` → `0000:00:02.0`).
pub fn pci_slot_of(path: &Path) -> Option<String> {
    path.components()
        .filter_map(|c| c.as_os_str().to_str())
        .rfind(|c| is_pci_slot(c))
        .map(str::to_string)
}

fn is_pci_slot(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b':',
            10 => *c == b'.',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `(link name, device name)` for each link of a /dev/disk directory.
fn disk_links(sys: &mut dyn Sys, dir: &str) -> Vec<(String, String)> {
    let dir = Path::new(dir);
    let mut out = Vec::new();
    for l in sys.list_dir(dir).unwrap_or_default() {
        if let Ok(t) = sys.canonicalize(&dir.join(&l)) {
            if let Some(dev) = t.file_name() {
                out.push((l, dev.to_string_lossy().into_owned()));
            }
        }
    }
    out
}

/// Firmware in the kernel log (`/dev/kmsg` records): failures from the firmware
/// loader; the lines drivers print about firmware, and the files they name that
/// exist under /lib/firmware.
pub fn firmware_from_log(sys: &mut dyn Sys, log: &str) -> FirmwareLog {
    let mut fw = FirmwareLog::default();
    for rec in log.lines().filter(|l| !l.starts_with(' ')) {
        let msg = rec.split_once(';').map_or(rec, |(_, m)| m).trim();
        // The init logs to /dev/kmsg too: its own lines are not the kernel's.
        if msg.starts_with("sanforge-init:") || !msg.to_ascii_lowercase().contains("firmware") {
            continue;
        }
        let failed = msg
            .split_once("Direct firmware load for ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .or_else(|| {
                msg.split_once("firmware: failed to load ")
                    .and_then(|(_, r)| r.split_whitespace().next())
            });
        if let Some(f) = failed {
            if !fw.failed.iter().any(|x| x == f) {
                fw.failed.push(f.to_string());
            }
        } else {
            for word in msg.split(|c: char| c.is_whitespace() || "\"'(),;:".contains(c)) {
                let w = word.trim_end_matches('.');
                if w.len() < 3 || !w.contains('.') || fw.loaded.iter().any(|x| x == w) {
                    continue;
                }
                let p = Path::new("/lib/firmware").join(w.trim_start_matches('/'));
                if !w.contains("..") && sys.file_kind(&p) == Some(crate::sys::FileKind::File) {
                    fw.loaded.push(w.to_string());
                }
            }
        }
        if fw.lines.len() < FIRMWARE_LINES && !fw.lines.iter().any(|l| l == msg) {
            fw.lines.push(msg.to_string());
        }
    }
    fw
}

/// `12.0 GiB`, `512 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        unit = u;
        if v < 1024.0 || u == "TiB" {
            break;
        }
        v /= 1024.0;
    }
    if unit == "B" {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// The console table of a report.
pub fn render_report(r: &Report) -> Vec<String> {
    let n = |k: usize, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
    let mut out = vec![format!(
        "hardware: {}, {}, {}",
        n(r.pci.len(), "PCI device", "PCI devices"),
        n(r.nics.len(), "NIC", "NICs"),
        n(r.disks.len(), "disk", "disks")
    )];
    for p in &r.pci {
        let driver = match &p.driver {
            Some(d) => d.clone(),
            None if p.candidates.is_empty() => "no driver".to_string(),
            None => {
                let c: Vec<String> = p.candidates.iter().map(Candidate::describe).collect();
                format!("no driver (candidates: {})", c.join(", "))
            }
        };
        out.push(format!(
            "  pci  {} {} class {} {driver}",
            p.slot, p.id, p.class
        ));
    }
    for f in &r.firmware.loaded {
        out.push(format!("  fw   {f} loaded"));
    }
    for f in &r.firmware.failed {
        out.push(format!("  fw   {f} FAILED (not found or refused)"));
    }
    for n in &r.nics {
        let link = match (n.carrier, n.speed_mbps) {
            (Some(true), Some(s)) => format!("link up {s}Mb/s"),
            (Some(true), None) => "link up".to_string(),
            (Some(false), _) => "no carrier".to_string(),
            (None, _) => format!("{} (no carrier info)", n.state),
        };
        out.push(format!(
            "  nic  {} {} {} {link}{}",
            n.name,
            n.mac,
            n.driver.as_deref().unwrap_or("no driver"),
            n.pci
                .as_ref()
                .map(|p| format!(" pci {p}"))
                .unwrap_or_default()
        ));
    }
    for d in &r.disks {
        let id = d
            .by_id
            .iter()
            .find(|l| l.starts_with("wwn-"))
            .or_else(|| d.by_id.first())
            .map(|l| format!("by-id/{l}"))
            .unwrap_or_else(|| "no by-id name".to_string());
        out.push(format!(
            "  disk {} {} {} {id}",
            d.name,
            human_size(d.size_bytes),
            d.model.as_deref().unwrap_or("?")
        ));
    }
    out
}

/// Boot step (after the network, so NIC links show their configured state): the
/// report on the console and in [`HARDWARE_REPORT`].
pub fn print_report(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    if init.hw.index.is_none() {
        init.hw.index = ModuleIndex::read(init.sys).ok();
    }
    let mut r = report(init.sys, init.hw.index.as_ref(), &node.modules.blacklist);
    r.modules = init.hw.modules.clone();
    r.storage = init.storage.report.clone();
    for line in render_report(&r)
        .into_iter()
        .chain(super::storage::render(&r.storage))
    {
        init.log.line(&line);
    }
    let json = serde_json::to_string_pretty(&r)
        .map_err(|e| anyhow::anyhow!("cannot encode the hardware report: {e}"))?;
    let path = Path::new(HARDWARE_REPORT);
    if let Some(dir) = path.parent() {
        init.sys.mkdir(dir)?;
    }
    init.sys
        .write_durable(path, format!("{json}\n").as_bytes())?;
    init.log
        .line(&format!("hardware report written to {HARDWARE_REPORT}"));
    Ok(())
}

#[cfg(test)]
#[path = "hardware_tests.rs"]
mod tests;
