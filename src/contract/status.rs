//! The status of a running node as `sanforge-init status --json` prints it and
//! `sanforge status HOST` reads it back over SSH (the init gathers it:
//! `init::status`), and the files it is made from that the init writes at run time:
//! the supervised services' state ([`SERVICES_STATE`]). The boot timeline's format is
//! [`super::timeline`]. Both programs render it with [`render`].

use super::timeline::Timeline;
use super::SERVICES_STATE;
use crate::sys::Sys;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One service in [`SERVICES_STATE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceState {
    pub name: String,
    pub pid: Option<i32>,
    /// `running`, `waiting` (a start or restart is due) or `stopped`.
    pub state: String,
    pub starts: u32,
    /// Starts after the first one.
    pub restarts: u32,
    pub last_exit: Option<String>,
}

/// The contents of [`SERVICES_STATE`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesFile {
    pub services: Vec<ServiceState>,
}

impl ServicesFile {
    pub fn read(sys: &mut dyn Sys) -> anyhow::Result<ServicesFile> {
        let text = sys.read_to_string(Path::new(SERVICES_STATE))?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{SERVICES_STATE}: {e}"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub hostname: Option<String>,
    pub image: Image,
    pub boot: Boot,
    pub timeline: Option<Timeline>,
    pub hardware: Option<Hardware>,
    pub targets: Vec<Target>,
    pub services: Vec<ServiceState>,
    /// Present when the image has an HA stack.
    pub ha: Option<Ha>,
    /// Present when the image has chrony (`chronyc tracking`).
    #[serde(default)]
    pub time: Option<TimeSync>,
    /// ALUA target port groups and their states (LIO configfs, SCST sysfs).
    #[serde(default)]
    pub alua: Vec<AluaGroup>,
    /// The boot steps that failed, with their messages.
    pub errors: Vec<String>,
    /// What `status` itself could not read.
    pub problems: Vec<String>,
}

/// The clock as chronyd sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeSync {
    /// Seconds the system clock is ahead of NTP time (negative: behind).
    pub offset_seconds: Option<f64>,
    pub stratum: Option<u32>,
    /// The server chronyd follows.
    pub reference: Option<String>,
    /// chronyc's answer, or why there is none.
    pub output: String,
}

/// The image, from its `/etc/os-release` (written by the builder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// `IMAGE_ID`: the recipe's name.
    pub id: Option<String>,
    /// `IMAGE_VERSION`: the short key of the image's root file system (a hash of
    /// everything in it), the same for every node booted from one build.
    pub version: Option<String>,
    pub pretty_name: Option<String>,
    /// The running kernel's release.
    pub kernel: Option<String>,
    /// The public key the node checks updates against ([`super::UPDATE_KEY`], 64 hex
    /// digits); None when the image has none.
    #[serde(default)]
    pub update_key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Boot {
    /// `a` or `b` on a disk boot (`sanforge.slot=`); None when booted from the network
    /// or a single image.
    pub slot: Option<String>,
    /// `sanforge.node=` when the command line picks the node.
    pub node: Option<String>,
    pub uptime_seconds: Option<f64>,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): a new one each boot.
    #[serde(default)]
    pub id: Option<String>,
    /// The sanforge boot loader entries on the EFI system partition
    /// (`sanforge-b+1.conf`: slot b with one try left; `sanforge-b+0-1.conf`: its tries
    /// used up; `sanforge-a.conf`: blessed). Empty on a network boot.
    #[serde(default)]
    pub entries: Vec<String>,
}

/// A summary of [`HARDWARE_REPORT`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub pci_devices: usize,
    /// PCI devices (`slot id`) without a driver.
    pub without_driver: Vec<String>,
    /// `name mac driver state`, one per NIC.
    pub nics: Vec<String>,
    /// `name size model`, one per disk.
    pub disks: Vec<String>,
    pub firmware_failed: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// `lio` or `scst`.
    pub stack: String,
    /// `iscsi`, `qla2xxx`, … (the fabric or SCST target driver).
    pub fabric: String,
    pub name: String,
    pub enabled: bool,
    /// LIO: `tpgt_N`; SCST: none.
    pub tpg: Option<u32>,
    pub portals: Vec<String>,
    pub luns: Vec<Lun>,
    pub sessions: Vec<Session>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lun {
    pub lun: u32,
    /// The backstore (LIO) or device (SCST) name.
    pub device: String,
    /// The file or block device behind it (`ramdisk` for memory).
    pub backing: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub initiator: String,
    /// The kernel's session state (`TARG_SESS_STATE_LOGGED_IN`), when it says.
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ha {
    /// `corosync-quorumtool -s`: `Quorate: Yes`.
    pub quorate: Option<bool>,
    /// `crm_mon -1`: `Current DC: NAME`.
    pub dc: Option<String>,
    /// Each DRBD device of `/proc/drbd` (DRBD 8.4, the kernel's module).
    #[serde(default)]
    pub drbd: Vec<DrbdDevice>,
    /// Each tool's output, as it printed it.
    pub reports: Vec<HaReport>,
    /// Pacemaker's resource instances with their roles (`crm_mon --output-as=xml`).
    #[serde(default)]
    pub resources: Vec<HaResource>,
    /// Non-zero fail counts, per resource and node.
    #[serde(default)]
    pub fail_counts: Vec<FailCount>,
    /// Pacemaker's failed resource actions, one line each.
    #[serde(default)]
    pub failures: Vec<String>,
    /// Negative location constraints (`crm_mon -L`): a `cli-ban-…` a move left
    /// behind keeps a resource off a node, failover included.
    #[serde(default)]
    pub bans: Vec<Ban>,
}

/// One `<ban>` of `crm_mon -L --output-as=xml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// The constraint's id (`cli-ban-drbd-r0-clone-on-beta`).
    pub id: String,
    pub resource: String,
    pub node: String,
    /// Only the Promoted role is kept off the node.
    pub promoted_only: bool,
}

impl Ban {
    /// One line for people: `cli-ban-r-on-beta: r kept off beta (…origin…)`.
    pub fn line(&self) -> String {
        format!(
            "{}: {}{} kept off {} ({})",
            self.id,
            self.resource,
            if self.promoted_only {
                " (Promoted role)"
            } else {
                ""
            },
            self.node,
            self.origin()
        )
    }

    /// What made it, as a metric label: `move` (`cli-…`: a move or ban left behind),
    /// `drbd-fence` (DRBD's fence-peer handler) or `config`.
    pub fn origin_kind(&self) -> &'static str {
        if self.id.starts_with("cli-") {
            "move"
        } else if self.id.starts_with("drbd-fence-by-handler-") {
            "drbd-fence"
        } else {
            "config"
        }
    }

    /// What made it, for people: a move left behind, or DRBD's fence-peer handler.
    pub fn origin(&self) -> &'static str {
        match self.origin_kind() {
            "move" => "left by a move or ban: `crm_resource --clear` removes it",
            "drbd-fence" => "DRBD's fence-peer constraint: lifted once the peer is resynced",
            _ => "from the configuration",
        }
    }
}

/// One resource instance in `crm_mon`'s `<resources>` (clones and groups flattened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaResource {
    pub id: String,
    /// `ocf:sanforge:alua`, `stonith:fence_sbd`, …
    pub agent: String,
    /// `Started`, `Stopped`, `Promoted`, `Unpromoted`, …
    pub role: String,
    pub nodes: Vec<String>,
    /// The clone or group it belongs to.
    pub parent: Option<String>,
    pub failed: bool,
    pub managed: bool,
}

/// `fail-count` of a resource on a node (`crm_mon`'s `<node_history>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailCount {
    pub resource: String,
    pub node: String,
    pub count: u64,
    pub migration_threshold: Option<u64>,
}

/// An ALUA target port group's access state as the target stack shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AluaGroup {
    /// `lio` or `scst`.
    pub stack: String,
    /// LIO: the backstore `HBA/DEVICE`; SCST: the device group.
    pub device: String,
    /// The target port group (LIO `tg_pt_gp`, SCST target group).
    pub group: String,
    /// SPC-4 name: `active`, `nonoptimized`, `standby`, `unavailable`, `offline`,
    /// `transitioning`, `lba-dependent` (or the raw value when unknown).
    pub state: String,
}

/// One line pair of `/proc/drbd`: `0: cs:Connected ro:Primary/Secondary
/// ds:UpToDate/UpToDate C r-----` and its counters (`oos:` KiB out of sync).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrbdDevice {
    pub minor: u32,
    pub connection: String,
    pub role: String,
    pub peer_role: String,
    pub disk: String,
    pub peer_disk: String,
    pub out_of_sync_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaReport {
    pub command: String,
    pub exit: String,
    pub output: String,
}

pub fn render(st: &Status) -> Vec<String> {
    let or = |o: &Option<String>, d: &str| o.clone().unwrap_or_else(|| d.to_string());
    let mut out = vec![
        format!("host      {}", or(&st.hostname, "?")),
        format!(
            "image     {} version {} (kernel {})",
            or(&st.image.id, "?"),
            or(&st.image.version, "?"),
            or(&st.image.kernel, "?")
        ),
        format!(
            "boot      slot {}{}, up {}",
            or(&st.boot.slot, "none (network or single image)"),
            st.boot
                .node
                .as_ref()
                .map(|n| format!(", node {n}"))
                .unwrap_or_default(),
            st.boot
                .uptime_seconds
                .map_or("?".to_string(), |u| format!("{u:.0} s"))
        ),
    ];
    if !st.boot.entries.is_empty() {
        out.push(format!("loader    {}", st.boot.entries.join(" ")));
    }
    if let Some(k) = &st.image.update_key {
        let short = crate::contract::signature::verifying_key_from_hex(k, "update key")
            .map(|k| crate::contract::signature::fingerprint(&k))
            .unwrap_or_else(|_| "invalid".into());
        out.push(format!("updates   signed by key {short}"));
    }
    match &st.timeline {
        Some(t) => {
            let ready = t
                .ready
                .map_or("not yet".to_string(), |r| format!("at {r:.3} s"));
            out.push(format!("state     {} ({ready})", t.state));
            out.extend(t.render().into_iter().map(|l| format!("  {l}")));
        }
        None => out.push("state     unknown (no boot timeline)".into()),
    }
    if let Some(h) = &st.hardware {
        out.push(format!(
            "hardware  {} PCI devices, {} NICs, {} disks",
            h.pci_devices,
            h.nics.len(),
            h.disks.len()
        ));
        for n in &h.nics {
            out.push(format!("  nic  {n}"));
        }
        for d in &h.disks {
            out.push(format!("  disk {d}"));
        }
        for p in &h.without_driver {
            out.push(format!("  pci  {p} has no driver"));
        }
        for f in &h.firmware_failed {
            out.push(format!("  fw   {f} FAILED"));
        }
    }
    render_targets(st, &mut out);
    out.push(format!("services  {}", st.services.len()));
    for s in &st.services {
        out.push(format!(
            "  {} {}{} starts {} restarts {}{}",
            s.name,
            s.state,
            s.pid.map(|p| format!(" pid {p}")).unwrap_or_default(),
            s.starts,
            s.restarts,
            s.last_exit
                .as_ref()
                .map(|e| format!(", last exit: {e}"))
                .unwrap_or_default()
        ));
    }
    for a in &st.alua {
        out.push(format!(
            "alua      {} {} group {}: {}",
            a.stack, a.device, a.group, a.state
        ));
    }
    render_ha(st, &mut out);
    if let Some(t) = &st.time {
        out.push(match t.offset_seconds {
            Some(o) => format!(
                "time      offset {o:+.6} s, stratum {}, reference {}",
                t.stratum.map_or("?".to_string(), |s| s.to_string()),
                or(&t.reference, "?")
            ),
            None => format!("time      not synchronised ({})", t.output.trim()),
        });
    }
    if !st.errors.is_empty() {
        out.push("errors".into());
        out.extend(st.errors.iter().map(|e| format!("  {e}")));
    }
    if !st.problems.is_empty() {
        out.push("not readable".into());
        out.extend(st.problems.iter().map(|e| format!("  {e}")));
    }
    out
}

/// The HA lines of [`render`]: quorum, DRBD, the cluster's resources and reports.
fn render_ha(st: &Status, out: &mut Vec<String>) {
    let or = |o: &Option<String>, d: &str| o.clone().unwrap_or_else(|| d.to_string());
    if let Some(h) = &st.ha {
        out.push(format!(
            "ha        quorate {}, DC {}",
            h.quorate
                .map_or("unknown", |q| if q { "yes" } else { "no" }),
            or(&h.dc, "unknown")
        ));
        for d in &h.drbd {
            out.push(format!(
                "  drbd{} {} {}/{} disk {}/{}{}",
                d.minor,
                d.connection,
                d.role,
                d.peer_role,
                d.disk,
                d.peer_disk,
                d.out_of_sync_bytes
                    .map(|b| format!(", {b} bytes out of sync"))
                    .unwrap_or_default()
            ));
        }
        for r in &h.resources {
            out.push(format!(
                "  resource {} ({}) {}{}{}{}",
                r.id,
                r.agent,
                r.role,
                if r.nodes.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", r.nodes.join(" "))
                },
                if r.failed { ", FAILED" } else { "" },
                if r.managed { "" } else { ", unmanaged" }
            ));
        }
        for f in &h.fail_counts {
            out.push(format!(
                "  fail count {} on {}: {}{}",
                f.resource,
                f.node,
                f.count,
                f.migration_threshold
                    .map(|m| format!(" (migration threshold {m})"))
                    .unwrap_or_default()
            ));
        }
        for f in &h.failures {
            out.push(format!("  failed action {f}"));
        }
        for b in &h.bans {
            out.push(format!("  ban {}", b.line()));
        }
        for r in &h.reports {
            out.push(format!("  $ {} ({})", r.command, r.exit));
            out.extend(r.output.lines().map(|l| format!("    {l}")));
        }
    }
}

/// The targets' lines of [`render`]: each with its LUNs and sessions.
fn render_targets(st: &Status, out: &mut Vec<String>) {
    out.push(format!("targets   {}", st.targets.len()));
    for t in &st.targets {
        let tpg = t.tpg.map(|n| format!(" tpg {n}")).unwrap_or_default();
        out.push(format!(
            "  {} {} {}{tpg} {}{}",
            t.stack,
            t.fabric,
            t.name,
            if t.enabled { "enabled" } else { "DISABLED" },
            if t.portals.is_empty() {
                String::new()
            } else {
                format!(" portals {}", t.portals.join(" "))
            }
        ));
        for l in &t.luns {
            out.push(format!(
                "    lun {} {} ({})",
                l.lun,
                l.device,
                l.backing.as_deref().unwrap_or("backing unknown")
            ));
        }
        if t.sessions.is_empty() {
            out.push("    no sessions".into());
        }
        for s in &t.sessions {
            out.push(format!(
                "    session {}{}",
                s.initiator,
                s.state
                    .as_ref()
                    .map(|x| format!(" {x}"))
                    .unwrap_or_default()
            ));
        }
    }
}

pub fn to_json(st: &Status) -> String {
    serde_json::to_string_pretty(st).unwrap_or_else(|_| "{}".into()) + "\n"
}
