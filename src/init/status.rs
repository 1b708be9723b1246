//! `sanforge-init status [--json]`: what a running node is and does, gathered from the
//! files the init leaves in `/run/sanforge` (boot timeline, hardware report, service
//! state), the image's `/etc/os-release`, the kernel command line, the target stack's
//! own view (LIO configfs under `/sys/kernel/config/target`, SCST sysfs under
//! `/sys/kernel/scst_tgt`) and, where the image has them, the HA tools' one-shot status
//! commands. Everything goes through [`Sys`], so it runs on fake trees; nothing here
//! fails as a whole: what cannot be read is named in `problems` and the rest is shown.

use crate::contract::status::{
    Boot, DrbdDevice, Ha, HaReport, Hardware, Image, Lun, ServicesFile, Session, Status, Target,
    TimeSync,
};
use crate::contract::timeline::Timeline;
use crate::contract::{
    CHRONYC, CHRONY_RUN_DIR, CMDLINE_NODE, CMDLINE_SLOT, ESP_MOUNT, HARDWARE_REPORT, UPDATE_KEY,
};
use crate::scsi::lio::CONFIGFS_TARGET;
use crate::sys::{FileKind, Sys};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// SCST's sysfs root.
pub const SCST_ROOT: &str = "/sys/kernel/scst_tgt";
/// How long one HA status command may take.
pub const HA_TIMEOUT: Duration = Duration::from_secs(5);

/// The HA tools asked, when the image has them.
const HA_TOOLS: [&[&str]; 3] = [
    &["/usr/sbin/corosync-quorumtool", "-s"],
    &["/usr/sbin/crm_mon", "-1", "-r"],
    &["/usr/sbin/drbdadm", "status"],
];

/// `KEY=value` of an os-release file, quotes removed.
fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

fn cmdline_value(cmdline: &str, key: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(key))
        .next_back()
        .map(str::to_string)
}

fn read_trim(sys: &mut dyn Sys, p: &Path) -> Option<String> {
    sys.read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn dirs(sys: &mut dyn Sys, p: &Path) -> Vec<String> {
    let names = sys.list_dir(p).unwrap_or_default();
    names
        .into_iter()
        .filter(|n| sys.file_kind(&p.join(n)) == Some(FileKind::Dir))
        .collect()
}

/// The sanforge entries of the mounted ESP's loader, sorted.
fn loader_entries(sys: &mut dyn Sys) -> Vec<String> {
    let dir = Path::new(ESP_MOUNT).join("loader/entries");
    let mut names: Vec<String> = sys
        .list_dir(&dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| super::persist::entry_slot(n).is_some())
        .collect();
    names.sort();
    names
}

/// Gathers everything; never fails as a whole.
pub fn gather(sys: &mut dyn Sys) -> Status {
    let mut st = Status::default();
    let os = sys
        .read_to_string(Path::new("/etc/os-release"))
        .unwrap_or_default();
    st.image = Image {
        id: os_release_value(&os, "IMAGE_ID"),
        version: os_release_value(&os, "IMAGE_VERSION"),
        pretty_name: os_release_value(&os, "PRETTY_NAME"),
        kernel: sys.kernel_release(),
        update_key: sys
            .read_to_string(Path::new(UPDATE_KEY))
            .ok()
            .and_then(|t| crate::contract::signature::public_key_hex(&t)),
    };
    st.hostname = read_trim(sys, Path::new("/proc/sys/kernel/hostname"))
        .or_else(|| read_trim(sys, Path::new("/etc/hostname")));
    let cmdline = sys
        .read_to_string(Path::new("/proc/cmdline"))
        .unwrap_or_default();
    st.boot = Boot {
        slot: cmdline_value(&cmdline, CMDLINE_SLOT),
        node: cmdline_value(&cmdline, CMDLINE_NODE),
        uptime_seconds: Some((sys.boottime().as_secs_f64() * 1000.0).round() / 1000.0),
        id: read_trim(sys, Path::new("/proc/sys/kernel/random/boot_id")),
        entries: loader_entries(sys),
    };
    match Timeline::read(sys) {
        Ok(t) => {
            st.errors = t
                .errors()
                .map(|s| {
                    format!(
                        "{} ({}): {}",
                        s.name,
                        s.outcome.as_str(),
                        s.message.as_deref().unwrap_or("")
                    )
                })
                .collect();
            st.timeline = Some(t);
        }
        Err(e) => st.problems.push(format!("boot timeline: {e:#}")),
    }
    match sys.read_to_string(Path::new(HARDWARE_REPORT)) {
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => st.hardware = Some(hardware_summary(&v)),
            Err(e) => st.problems.push(format!("{HARDWARE_REPORT}: {e}")),
        },
        Err(e) => st.problems.push(format!("hardware report: {e}")),
    }
    st.targets = lio_targets(sys);
    st.targets.extend(scst_targets(sys));
    match ServicesFile::read(sys) {
        Ok(f) => st.services = f.services,
        Err(e) => st.problems.push(format!("services: {e:#}")),
    }
    st.ha = ha(sys);
    st.alua = super::status_ha::alua_groups(sys, Path::new(SCST_ROOT));
    st.time = time(sys);
    st
}

/// `chronyc -n tracking` over chronyd's socket, when the image has chrony.
fn time(sys: &mut dyn Sys) -> Option<TimeSync> {
    if !sys.exists(Path::new(CHRONYC)) {
        return None;
    }
    let sock = format!("{CHRONY_RUN_DIR}/chronyd.sock");
    let argv: Vec<String> = [CHRONYC, "-n", "-h", &sock, "tracking"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    Some(match sys.run_capture(&argv, HA_TIMEOUT) {
        Ok((st, out)) if st.success() => parse_tracking(&out),
        Ok((st, out)) => TimeSync {
            output: format!("chronyc: {st}: {}", out.trim()),
            ..TimeSync::default()
        },
        Err(e) => TimeSync {
            output: format!("chronyc: {e}"),
            ..TimeSync::default()
        },
    })
}

/// `System time : 0.000012 seconds fast of NTP time`, `Stratum : 3`,
/// `Reference ID : C0000202 (192.0.2.2)`.
pub fn parse_tracking(out: &str) -> TimeSync {
    let mut t = TimeSync {
        output: out.to_string(),
        ..TimeSync::default()
    };
    for l in out.lines() {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "System time" => {
                let mut w = v.split_whitespace();
                let n = w.next().and_then(|n| n.parse::<f64>().ok());
                let sign = match w.nth(1) {
                    Some("fast") => Some(1.0),
                    Some("slow") => Some(-1.0),
                    _ => None,
                };
                t.offset_seconds = n.zip(sign).map(|(n, s)| n * s);
            }
            "Stratum" => t.stratum = v.parse().ok(),
            "Reference ID" => {
                t.reference = v
                    .split_once('(')
                    .map(|(_, r)| r.trim_end_matches(')').to_string())
            }
            _ => {}
        }
    }
    // Stratum 0 / reference 0.0.0.0: not synchronised yet.
    if t.stratum == Some(0) {
        t.offset_seconds = None;
    }
    t
}

fn hardware_summary(v: &serde_json::Value) -> Hardware {
    let list = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_array())
            .cloned()
            .unwrap_or_default()
    };
    let s = |x: &serde_json::Value, k: &str| {
        x.get(k).and_then(|y| y.as_str()).unwrap_or("?").to_string()
    };
    let pci = list("pci");
    Hardware {
        pci_devices: pci.len(),
        without_driver: pci
            .iter()
            .filter(|p| p.get("driver").is_none_or(|d| d.is_null()))
            .map(|p| format!("{} {}", s(p, "slot"), s(p, "id")))
            .collect(),
        nics: list("nics")
            .iter()
            .map(|n| {
                let carrier = match n.get("carrier").and_then(|c| c.as_bool()) {
                    Some(true) => "link up".to_string(),
                    Some(false) => "no carrier".to_string(),
                    None => s(n, "state"),
                };
                let driver = n
                    .get("driver")
                    .and_then(|d| d.as_str())
                    .unwrap_or("no driver");
                format!("{} {} {driver} {carrier}", s(n, "name"), s(n, "mac"))
            })
            .collect(),
        disks: list("disks")
            .iter()
            .map(|d| {
                let size = d
                    .get("size_bytes")
                    .and_then(|b| b.as_u64())
                    .map_or("?".to_string(), super::hardware::human_size);
                format!("{} {size} {}", s(d, "name"), s(d, "model"))
            })
            .collect(),
        firmware_failed: v
            .get("firmware")
            .and_then(|f| f.get("failed"))
            .and_then(|f| f.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The backing file or device of a LIO backstore directory `core/HBA/NAME`: its
/// `udev_path`, else the `File:` / `UDEV PATH:` of its `info`, else the `control`
/// value the init wrote (fake trees), else `ramdisk` for an rd_mcp HBA.
fn lio_backing(sys: &mut dyn Sys, dev: &Path) -> Option<String> {
    if let Some(p) = read_trim(sys, &dev.join("udev_path")).filter(|p| !p.is_empty()) {
        return Some(p);
    }
    let info = sys.read_to_string(&dev.join("info")).unwrap_or_default();
    for key in ["File: ", "UDEV PATH: "] {
        if let Some(v) = info
            .split_once(key)
            .and_then(|(_, r)| r.split_whitespace().next())
        {
            return Some(v.to_string());
        }
    }
    let control = sys.read_to_string(&dev.join("control")).unwrap_or_default();
    for kv in control.split(',') {
        if let Some(v) = kv
            .trim()
            .strip_prefix("fd_dev_name=")
            .or_else(|| kv.trim().strip_prefix("udev_path="))
        {
            return Some(v.to_string());
        }
    }
    let hba = dev.parent()?.file_name()?.to_string_lossy().into_owned();
    hba.starts_with("rd_mcp_").then(|| "ramdisk".to_string())
}

/// Sessions of a LIO ACL from its `info` (`LIO Session ID: …` per session, `Session
/// State: …`).
fn lio_acl_sessions(initiator: &str, info: &str) -> Vec<Session> {
    let mut out: Vec<Session> = Vec::new();
    for l in info.lines().map(str::trim) {
        if l.starts_with("LIO Session ID:") {
            out.push(Session {
                initiator: initiator.to_string(),
                state: None,
            });
        } else if let Some(s) = l.strip_prefix("Session State:") {
            if let Some(last) = out.last_mut() {
                last.state = Some(s.trim().to_string());
            }
        }
    }
    out
}

fn lio_targets(sys: &mut dyn Sys) -> Vec<Target> {
    let base = PathBuf::from(CONFIGFS_TARGET);
    let mut out = Vec::new();
    for fabric in dirs(sys, &base) {
        if fabric == "core" || fabric == "alua" {
            continue;
        }
        let fdir = base.join(&fabric);
        for name in dirs(sys, &fdir) {
            if name == "discovery_auth" {
                continue;
            }
            let tdir = fdir.join(&name);
            for tpg in dirs(sys, &tdir) {
                let Some(tag) = tpg
                    .strip_prefix("tpgt_")
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                out.push(lio_tpg(sys, &fabric, &name, tag, &tdir.join(&tpg)));
            }
        }
    }
    out
}

fn lio_tpg(sys: &mut dyn Sys, fabric: &str, name: &str, tag: u32, tpg: &Path) -> Target {
    let mut t = Target {
        stack: "lio".into(),
        fabric: fabric.into(),
        name: name.into(),
        enabled: read_trim(sys, &tpg.join("enable")).as_deref() == Some("1"),
        tpg: Some(tag),
        portals: dirs(sys, &tpg.join("np")),
        ..Target::default()
    };
    for lun in dirs(sys, &tpg.join("lun")) {
        let Some(n) = lun.strip_prefix("lun_").and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let ldir = tpg.join("lun").join(&lun);
        let link = sys
            .list_dir(&ldir)
            .unwrap_or_default()
            .into_iter()
            .find(|e| sys.file_kind(&ldir.join(e)) == Some(FileKind::Symlink));
        let (device, backing) = match link {
            Some(l) => {
                let dev = sys.canonicalize(&ldir.join(&l)).ok();
                let backing = dev.as_deref().and_then(|d| lio_backing(sys, d));
                let device = dev
                    .as_deref()
                    .and_then(|d| {
                        let hba = d.parent()?.file_name()?.to_string_lossy().into_owned();
                        Some(format!("{hba}/{}", d.file_name()?.to_string_lossy()))
                    })
                    .unwrap_or(l);
                (device, backing)
            }
            None => ("?".to_string(), None),
        };
        t.luns.push(Lun {
            lun: n,
            device,
            backing,
        });
    }
    t.luns.sort_by_key(|l| l.lun);
    for acl in dirs(sys, &tpg.join("acls")) {
        let info = sys
            .read_to_string(&tpg.join("acls").join(&acl).join("info"))
            .unwrap_or_default();
        t.sessions.extend(lio_acl_sessions(&acl, &info));
    }
    t
}

fn scst_targets(sys: &mut dyn Sys) -> Vec<Target> {
    let base = Path::new(SCST_ROOT).join("targets");
    let mut out = Vec::new();
    for driver in dirs(sys, &base) {
        if driver == "copy_manager" || driver == "scst_local" {
            continue;
        }
        for name in dirs(sys, &base.join(&driver)) {
            let tdir = base.join(&driver).join(&name);
            let enabled = read_trim(sys, &tdir.join("enabled"))
                .and_then(|v| v.lines().next().map(|l| l.trim() == "1"))
                .unwrap_or(false);
            let mut t = Target {
                stack: "scst".into(),
                fabric: driver.clone(),
                name: name.clone(),
                enabled,
                ..Target::default()
            };
            let mut lun_dirs: Vec<PathBuf> = vec![tdir.join("luns")];
            for g in dirs(sys, &tdir.join("ini_groups")) {
                lun_dirs.push(tdir.join("ini_groups").join(g).join("luns"));
            }
            for ld in lun_dirs {
                for lun in dirs(sys, &ld) {
                    let Ok(n) = lun.parse::<u32>() else { continue };
                    let dev = sys.canonicalize(&ld.join(&lun).join("device")).ok();
                    let device = dev
                        .as_deref()
                        .and_then(|d| d.file_name())
                        .map_or("?".to_string(), |d| d.to_string_lossy().into_owned());
                    let backing = sys
                        .read_to_string(
                            &Path::new(SCST_ROOT)
                                .join("devices")
                                .join(&device)
                                .join("filename"),
                        )
                        .ok()
                        .and_then(|f| f.lines().next().map(|l| l.trim().to_string()));
                    if !t.luns.iter().any(|l| l.lun == n && l.device == device) {
                        t.luns.push(Lun {
                            lun: n,
                            device,
                            backing,
                        });
                    }
                }
            }
            t.luns.sort_by_key(|l| l.lun);
            t.sessions = dirs(sys, &tdir.join("sessions"))
                .into_iter()
                .map(|initiator| Session {
                    initiator,
                    state: None,
                })
                .collect();
            out.push(t);
        }
    }
    out
}

fn ha(sys: &mut dyn Sys) -> Option<Ha> {
    let mut h = Ha::default();
    for tool in HA_TOOLS {
        let Some(prog) = tool.first() else { continue };
        if !sys.exists(Path::new(prog)) {
            continue;
        }
        let argv: Vec<String> = tool.iter().map(|s| s.to_string()).collect();
        let (exit, output) = match sys.run_capture(&argv, HA_TIMEOUT) {
            Ok((st, out)) => (st.to_string(), out),
            Err(e) => (format!("not run: {e}"), String::new()),
        };
        for l in output
            .lines()
            .map(|l| l.trim().trim_start_matches(['*', ' ']))
        {
            if let Some(v) = l.strip_prefix("Quorate:") {
                h.quorate = Some(v.trim().eq_ignore_ascii_case("yes"));
            }
            if let Some(v) = l.strip_prefix("Current DC:") {
                h.dc = v.split_whitespace().next().map(str::to_string);
            }
        }
        h.reports.push(HaReport {
            command: argv.join(" "),
            exit,
            output,
        });
    }
    // Roles, fail counts and failed actions from crm_mon's XML API (the text above
    // stays for people; a crm_mon that cannot answer leaves these empty).
    if sys.exists(Path::new(super::status_ha::CRM_MON_XML[0])) {
        let argv: Vec<String> = super::status_ha::CRM_MON_XML
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Ok((_, xml)) = sys.run_capture(&argv, HA_TIMEOUT) {
            if let Ok(p) = super::status_ha::parse_crm_mon(&xml) {
                h.resources = p.resources;
                h.fail_counts = p.fail_counts;
                h.failures = p.failures;
                h.bans = p.bans;
            }
        }
    }
    h.drbd = sys
        .read_to_string(Path::new("/proc/drbd"))
        .map(|t| parse_proc_drbd(&t))
        .unwrap_or_default();
    (!h.reports.is_empty() || !h.drbd.is_empty()).then_some(h)
}

/// The devices of `/proc/drbd` (DRBD 8.4).
pub fn parse_proc_drbd(text: &str) -> Vec<DrbdDevice> {
    let mut out: Vec<DrbdDevice> = Vec::new();
    for l in text.lines() {
        let t = l.trim();
        let (head, rest) = t.split_once(':').unwrap_or(("", ""));
        if let Ok(minor) = head.parse::<u32>() {
            let mut d = DrbdDevice {
                minor,
                ..DrbdDevice::default()
            };
            for w in rest.split_whitespace() {
                let pair = |v: &str| {
                    let (a, b) = v.split_once('/').unwrap_or((v, ""));
                    (a.to_string(), b.to_string())
                };
                if let Some(v) = w.strip_prefix("cs:") {
                    d.connection = v.to_string();
                } else if let Some(v) = w.strip_prefix("ro:") {
                    (d.role, d.peer_role) = pair(v);
                } else if let Some(v) = w.strip_prefix("ds:") {
                    (d.disk, d.peer_disk) = pair(v);
                }
            }
            out.push(d);
        } else if let Some(d) = out.last_mut() {
            if let Some(kib) = t
                .split_whitespace()
                .find_map(|w| w.strip_prefix("oos:"))
                .and_then(|v| v.parse::<u64>().ok())
            {
                d.out_of_sync_bytes = Some(kib * 1024);
            }
        }
    }
    out
}

/// The human-readable status.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::contract::status::{render, to_json};
    use crate::init::{Init, Logger};
    use crate::sys::FakeSys;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    const NODE: &str = r#"hostname = "san1"
[lio]
backstores = [{ name = "disk0", kind = "fileio", path = "/run/disk0.img", size = "64MiB" }, { name = "mem", kind = "ramdisk", size = "1MiB" }]
[[lio.iscsi]]
iqn = "iqn.2026-11.org.example:san1"
portals = ["0.0.0.0:3260"]
luns = [{ lun = 0, backstore = "disk0" }, { lun = 1, backstore = "mem" }]
acls = [{ initiator = "iqn.2026-11.org.example:host1" }]
[[services]]
name = "sleeper"
argv = ["/bin/sleep", "1000"]
"#;

    /// A booted fake node: the init's own boot over FakeSys, then `status` over the
    /// tree it left.
    #[test]
    fn status_after_a_fake_boot_shows_targets_luns_services_and_timeline() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "etc/sanforge/node.toml", NODE);
        write(
            d,
            "etc/os-release",
            "NAME=sanforge\nIMAGE_ID=storage-node\nIMAGE_VERSION=0123abcd\n",
        );
        write(d, "proc/cmdline", "console=ttyS0 sanforge.slot=b\n");
        let mut sys = FakeSys::new(d);
        sys.release = Some("6.1.0-sanforge".into());
        let mut init = Init::new(&mut sys, Logger::capture());
        init.boot();
        assert_eq!(init.log.lines().last().unwrap(), "ready");
        drop(init);
        // An initiator logged in (what the kernel shows in the ACL's info).
        write(
            d,
            "sys/kernel/config/target/iscsi/iqn.2026-11.org.example:san1/tpgt_1/acls/iqn.2026-11.org.example:host1/info",
            "InitiatorName: iqn.2026-11.org.example:host1\nLIO Session ID: 1   ISID: 0x23d000000   TSIH: 1  SessionType: Normal\nSession State: TARG_SESS_STATE_LOGGED_IN\n",
        );
        let st = gather(&mut sys);
        assert_eq!(st.image.id.as_deref(), Some("storage-node"));
        assert_eq!(st.image.version.as_deref(), Some("0123abcd"));
        assert_eq!(st.image.kernel.as_deref(), Some("6.1.0-sanforge"));
        assert_eq!(st.boot.slot.as_deref(), Some("b"));
        assert_eq!(st.targets.len(), 1, "{st:#?}");
        let t = &st.targets[0];
        assert_eq!(t.name, "iqn.2026-11.org.example:san1");
        assert!(t.enabled);
        assert_eq!(t.portals, ["0.0.0.0:3260"]);
        let luns: Vec<(u32, &str, Option<&str>)> = t
            .luns
            .iter()
            .map(|l| (l.lun, l.device.as_str(), l.backing.as_deref()))
            .collect();
        assert_eq!(
            luns,
            [
                (0, "fileio_0/disk0", Some("/run/disk0.img")),
                (1, "rd_mcp_1/mem", Some("ramdisk"))
            ]
        );
        assert_eq!(t.sessions.len(), 1);
        assert_eq!(
            t.sessions[0].state.as_deref(),
            Some("TARG_SESS_STATE_LOGGED_IN")
        );
        assert_eq!(st.services.len(), 1);
        assert_eq!(st.services[0].name, "sleeper");
        assert_eq!(st.services[0].state, "running");
        assert_eq!(st.services[0].starts, 1);
        let tl = st.timeline.as_ref().unwrap();
        assert_eq!(tl.state, "ready");
        let names: Vec<&str> = tl.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"kernel"));
        assert!(names.contains(&"targets") && names.contains(&"enable ports"));
        assert!(st.ha.is_none());
        // The fake tree has no hardware in /sys: the report exists but is empty.
        assert_eq!(st.hardware.as_ref().unwrap().pci_devices, 0);
        let text = render(&st).join("\n");
        assert!(
            text.contains("lun 0 fileio_0/disk0 (/run/disk0.img)"),
            "{text}"
        );
        assert!(text.contains("sleeper running pid"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&to_json(&st)).unwrap();
        assert_eq!(v["targets"][0]["luns"][1]["backing"], "ramdisk");
    }

    #[test]
    fn an_empty_tree_gives_a_status_naming_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = FakeSys::new(dir.path());
        let st = gather(&mut sys);
        assert!(st.targets.is_empty() && st.services.is_empty());
        let p = st.problems.join("\n");
        assert!(p.contains("/run/sanforge/timeline.json"), "{p}");
        assert!(p.contains("/run/sanforge/hardware.json"), "{p}");
        assert!(p.contains("/run/sanforge/services.json"), "{p}");
        let text = render(&st).join("\n");
        assert!(
            text.contains("state     unknown (no boot timeline)"),
            "{text}"
        );
    }

    #[test]
    fn garbage_in_the_state_files_is_named_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "run/sanforge/timeline.json",
            "{\"version\": \"x\"",
        );
        write(dir.path(), "run/sanforge/hardware.json", "[1, 2");
        write(dir.path(), "run/sanforge/services.json", "null");
        let mut sys = FakeSys::new(dir.path());
        let st = gather(&mut sys);
        assert_eq!(st.problems.len(), 3, "{:?}", st.problems);
        assert!(st.problems[0].starts_with("boot timeline: /run/sanforge/timeline.json: "));
    }

    #[test]
    fn ha_tools_are_asked_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "usr/sbin/corosync-quorumtool", "");
        write(d, "usr/sbin/crm_mon", "");
        write(
            d,
            "fake-run/corosync-quorumtool",
            "Quorum information\nQuorate:          Yes\n",
        );
        write(
            d,
            "fake-run/crm_mon",
            "Cluster Summary:\n  * Current DC: alpha (version 2.1.5) - partition with quorum\n",
        );
        let mut sys = FakeSys::new(d);
        let h = gather(&mut sys).ha.unwrap();
        assert_eq!(h.quorate, Some(true));
        assert_eq!(h.dc.as_deref(), Some("alpha"));
        assert_eq!(h.reports.len(), 2);
    }

    #[test]
    fn proc_drbd_gives_roles_disks_and_out_of_sync_bytes() {
        let text = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 0123\n 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----\n    ns:1024 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:2048\n\t[=>..................] sync'ed: 10.0% (2048/2048)K\n 1: cs:StandAlone ro:Secondary/Unknown ds:Outdated/DUnknown   r-----\n";
        let d = parse_proc_drbd(text);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(
            (
                d[0].connection.as_str(),
                d[0].role.as_str(),
                d[0].peer_role.as_str(),
                d[0].disk.as_str(),
                d[0].peer_disk.as_str()
            ),
            (
                "SyncSource",
                "Primary",
                "Secondary",
                "UpToDate",
                "Inconsistent"
            )
        );
        assert_eq!(d[0].out_of_sync_bytes, Some(2048 * 1024));
        assert_eq!(
            (d[1].minor, d[1].peer_disk.as_str(), d[1].out_of_sync_bytes),
            (1, "DUnknown", None)
        );
    }

    #[test]
    fn chrony_tracking_gives_the_offset() {
        let t = parse_tracking("Reference ID    : C0000202 (192.0.2.2)\nStratum         : 3\nSystem time     : 0.000012500 seconds slow of NTP time\n");
        assert_eq!(t.offset_seconds, Some(-0.0000125));
        assert_eq!(t.stratum, Some(3));
        assert_eq!(t.reference.as_deref(), Some("192.0.2.2"));
        let unsynced = parse_tracking("Reference ID    : 00000000 ()\nStratum         : 0\nSystem time     : 0.000000000 seconds fast of NTP time\n");
        assert_eq!(unsynced.offset_seconds, None);
        let text = render(&Status {
            time: Some(t),
            ..Status::default()
        })
        .join("\n");
        assert!(
            text.contains("time      offset -0.000013 s, stratum 3, reference 192.0.2.2"),
            "{text}"
        );
    }

    #[test]
    fn scst_targets_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let t = "sys/kernel/scst_tgt/targets/iscsi/iqn.2026-11.org.example:t";
        write(d, &format!("{t}/enabled"), "1\n");
        write(
            d,
            "sys/kernel/scst_tgt/devices/disk0/filename",
            "/dev/md0\n[key]\n",
        );
        std::fs::create_dir_all(d.join(format!("{t}/luns/0"))).unwrap();
        std::os::unix::fs::symlink(
            d.join("sys/kernel/scst_tgt/devices/disk0"),
            d.join(format!("{t}/luns/0/device")),
        )
        .unwrap();
        std::fs::create_dir_all(d.join(format!("{t}/sessions/iqn.2026-11.org.example:h"))).unwrap();
        std::fs::create_dir_all(
            d.join("sys/kernel/scst_tgt/targets/copy_manager/copy_manager_tgt"),
        )
        .unwrap();
        let mut sys = FakeSys::new(d);
        let st = gather(&mut sys);
        assert_eq!(st.targets.len(), 1, "{:?}", st.targets);
        let tg = &st.targets[0];
        assert_eq!(
            (tg.stack.as_str(), tg.fabric.as_str(), tg.enabled),
            ("scst", "iscsi", true)
        );
        assert_eq!(tg.luns[0].device, "disk0");
        assert_eq!(tg.luns[0].backing.as_deref(), Some("/dev/md0"));
        assert_eq!(tg.sessions[0].initiator, "iqn.2026-11.org.example:h");
    }
}
