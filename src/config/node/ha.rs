//! `[ha]` of the node config: what the cluster requires of the node, its watchdog, and
//! the durations it is written with.

use serde::{Deserialize, Serialize};

/// `[ha]`: the init starts Corosync and Pacemaker itself, in the order SCST's
/// README.dlm gives (targets with ports disabled, `cluster_mode`, watchdog, corosync,
/// pacemaker, settle); the target ports are then Pacemaker's (ocf:sanforge:alua).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Ha {
    pub enabled: bool,
    pub corosync: Vec<String>,
    pub pacemaker: Vec<String>,
    /// A command that succeeds once Corosync answers on its IPC; Pacemaker starts after
    /// it (bounded by `settle-timeout`), so pacemakerd does not exit and back off.
    pub corosync_ready: Vec<String>,
    /// The status command whose XML says whether the cluster settled (a DC and quorum).
    pub status: Vec<String>,
    /// How long the boot waits for the cluster to settle.
    pub settle_timeout: HaDuration,
    /// How long the shutdown waits for initiator sessions to end.
    pub drain_timeout: HaDuration,
    /// How long Pacemaker (then Corosync) get after SIGTERM at shutdown.
    pub stop_timeout: HaDuration,
    pub watchdog: Option<Watchdog>,
    /// SCST `cluster_mode` on every device (persistent reservations through the DLM).
    pub cluster_mode: bool,
    /// Programs the cluster runs on this node beyond the daemons above (sbd, fence
    /// agents, dlm_controld, the DRBD tools), with the Debian package that ships each:
    /// `sanforge cluster render` lists them and the build refuses an image without
    /// them, naming the package, so a fencing mode the image cannot execute fails at
    /// build time, not at the first fence. The init does not read them.
    pub requires: Vec<Requirement>,
}

/// A program the cluster needs on the node (`[[ha.requires]]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Requirement {
    /// Absolute path in the image.
    pub path: String,
    /// The Debian package that ships it.
    pub package: String,
    /// What in the cluster file needs it (`fencing.mode = "sbd"`).
    pub reason: String,
}

impl Default for Ha {
    fn default() -> Self {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        Ha {
            enabled: false,
            corosync: v(&["/usr/sbin/corosync", "-f"]),
            pacemaker: v(&["/usr/sbin/pacemakerd"]),
            corosync_ready: v(&["/usr/sbin/corosync-cfgtool", "-s"]),
            status: v(&["/usr/sbin/crm_mon", "-1", "--output-as=xml"]),
            settle_timeout: HaDuration::secs(120),
            drain_timeout: HaDuration::secs(30),
            stop_timeout: HaDuration::secs(120),
            watchdog: None,
            cluster_mode: true,
            requires: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Watchdog {
    pub device: String,
    /// How often the init pets it (mode `init`).
    pub interval: HaDuration,
    pub mode: WatchdogMode,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            device: "/dev/watchdog".into(),
            interval: HaDuration::secs(5),
            mode: WatchdogMode::Init,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WatchdogMode {
    /// The init opens the device and pets it from its main loop.
    #[default]
    Init,
    /// sbd owns the device (a service started before Corosync); the init never pets it.
    Sbd,
}

/// A duration written `120s`, `500ms`, `2m` or `1h` (a bare number is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HaDuration(pub std::time::Duration);

impl HaDuration {
    pub const fn secs(n: u64) -> Self {
        HaDuration(std::time::Duration::from_secs(n))
    }
}

impl TryFrom<String> for HaDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        parse_duration(&s)
            .map(HaDuration)
            .ok_or_else(|| format!("duration `{s}`: expected a number with ms, s, m or h"))
    }
}

impl From<HaDuration> for String {
    fn from(d: HaDuration) -> String {
        let ms = d.0.as_millis();
        if !ms.is_multiple_of(1000) {
            format!("{ms}ms")
        } else {
            format!("{}s", ms / 1000)
        }
    }
}

/// Parses `120s`, `500ms`, `2m`, `1h`, `30` (seconds).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(n.checked_mul(ms)?))
}
