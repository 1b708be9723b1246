//! The cluster part of sanforge-init (node config `[ha]`): the start and stop order
//! of SCST's `README.dlm` and reference/ha.md ("Implications for the Rust init"), and
//! the choice of node config by MAC address, so that one image serves every node.
//!
//! Boot, after the targets are configured with their ports disabled:
//! 1. `cluster mode`: SCST `cluster_mode` ← 1 on every device under
//!    `/sys/kernel/scst_tgt/devices/*/` (skipped, with a note, when SCST is not
//!    loaded), and every SCST target port `enabled` ← 0;
//! 2. `cluster` (after the plain services, so sbd is already up): the watchdog
//!    (mode `init`: the init opens it and pets it; mode `sbd`: sbd owns it, the init
//!    never touches it), Corosync, then Pacemaker, both supervised services; then a
//!    bounded wait (`settle-timeout`) until the status command (`crm_mon -1
//!    --output-as=xml`) shows an elected DC in a quorate partition.
//!
//! The target ports are Pacemaker's: with HA enabled the init never enables them
//! (`enable ports` is skipped); the promotable `ocf:sanforge:alua` agent enables them on
//! start and disables them on stop, so a node without quorum (peer unreachable at boot)
//! keeps them disabled because Pacemaker will not start the agent there. The init
//! says why on the console and keeps polling quorum from its main loop, logging when
//! the partition becomes quorate.
//!
//! Shutdown: SCST ports disabled (LIO's by the caller), sessions drained (bounded by
//! `drain-timeout`; SCST's `targets/*/*/sessions/`, LIO sessions are not counted),
//! `cluster_mode` ← 0, Pacemaker stopped (SIGTERM, bounded by `stop-timeout`, then
//! SIGKILL), then Corosync, then the caller stops the rest; last, the watchdog is closed
//! with the magic `V` and the modules are unloaded in reverse load order.
//!
//! Reads `/sys/class/net/*/address`, `/etc/sanforge/nodes/*.toml`,
//! `/sys/kernel/scst_tgt/{devices,targets}` and the status command's stdout, all
//! through [`Sys`](crate::sys::Sys).

use super::supervisor::Supervised;
use super::{modules, modules_dir, Init, NODE_CONFIG_DIR};
use crate::config::node::{Ha, NodeConfig, Restart, Service, WatchdogMode};
use crate::contract::CIB_SEED;
use crate::sys::Signal;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const SCST_DEVICES: &str = "/sys/kernel/scst_tgt/devices";
pub const SCST_TARGETS: &str = "/sys/kernel/scst_tgt/targets";
/// Target drivers that are not ports initiators log in to.
const SCST_INTERNAL: [&str; 2] = ["copy_manager", "scst_local"];
/// How often the boot polls the status command while the cluster settles.
pub const SETTLE_POLL: Duration = Duration::from_secs(2);
/// How often the main loop polls it while the node has no quorum.
pub const QUORUM_POLL: Duration = Duration::from_secs(5);
/// How long one run of the status command may take.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_POLL: Duration = Duration::from_millis(200);
/// How often the boot asks whether Corosync answers yet.
const COROSYNC_POLL: Duration = Duration::from_millis(250);

/// What the status command said about the local partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quorum {
    /// No designated controller yet (Pacemaker still electing or not connected).
    NoDc,
    /// A DC is elected but the partition is not quorate.
    NotQuorate {
        dc: String,
    },
    Quorate {
        dc: String,
    },
}

/// Reads `<current_dc present="true" name="…" with_quorum="true"/>` from the XML of
/// `crm_mon -1 --output-as=xml` (Pacemaker 2.1+).
pub fn parse_quorum(xml: &str) -> Quorum {
    let Some((_, tag)) = xml.split_once("<current_dc") else {
        return Quorum::NoDc;
    };
    let tag = tag.split('>').next().unwrap_or(tag);
    let attr = |name: &str| -> Option<&str> {
        let pat = format!(" {name}=\"");
        let (_, rest) = tag.split_once(&pat)?;
        Some(rest.split_once('"')?.0)
    };
    if attr("present") != Some("true") {
        return Quorum::NoDc;
    }
    let dc = attr("name").unwrap_or("?").to_string();
    if attr("with_quorum") == Some("true") {
        Quorum::Quorate { dc }
    } else {
        Quorum::NotQuorate { dc }
    }
}

/// Cluster state the init keeps between the boot, the main loop and the shutdown.
#[derive(Debug, Default)]
pub struct HaState {
    /// The cluster was started and has not shown quorum yet.
    pub waiting_quorum: bool,
    pub quorate: bool,
    next_pet: Option<Instant>,
    pet_interval: Duration,
    next_poll: Option<Instant>,
    /// The status command could not run (logged once).
    status_failed: bool,
}

/// The `[ha]` section when it is enabled.
pub fn config(init: &Init) -> Option<Ha> {
    init.node
        .as_ref()
        .and_then(|n| n.ha.clone())
        .filter(|h| h.enabled)
}

/// True when Pacemaker owns the target ports: `enable ports` then leaves them alone.
pub fn owns_ports(init: &mut Init) -> bool {
    if config(init).is_none() {
        return false;
    }
    init.log
        .line("ha: target ports stay disabled here; Pacemaker enables them (ocf:sanforge:alua)");
    true
}

/// The final state line when the cluster is the reason the node is not serving.
pub fn state_line(init: &Init) -> Option<&'static str> {
    (config(init).is_some() && init.ha.waiting_quorum)
        .then_some("state: up without quorum (ports disabled)")
}

/// Devices (`devices/<dev>/cluster_mode`) or target ports (`targets/<drv>/<tgt>/enabled`).
fn scst_attrs(init: &mut Init, base: &str, depth2: bool, attr: &str) -> Vec<PathBuf> {
    let base = Path::new(base);
    let mut out = Vec::new();
    let Ok(first) = init.sys.list_dir(base) else {
        return out;
    };
    for a in first {
        if depth2 {
            if SCST_INTERNAL.contains(&a.as_str()) {
                continue;
            }
            let Ok(second) = init.sys.list_dir(&base.join(&a)) else {
                continue;
            };
            for b in second {
                let p = base.join(&a).join(&b).join(attr);
                if init.sys.exists(&p) {
                    out.push(p);
                }
            }
        } else {
            let p = base.join(&a).join(attr);
            if init.sys.exists(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn write_all(init: &mut Init, paths: &[PathBuf], value: &str) -> usize {
    let mut failed = 0;
    for p in paths {
        if let Err(e) = init.sys.write_file(p, value) {
            init.warn(e);
            failed += 1;
        }
    }
    failed
}

/// Step `cluster mode` (after `targets`): SCST ports disabled, `cluster_mode` ← 1.
pub fn cluster_mode_on(init: &mut Init) -> Result<()> {
    let Some(ha) = config(init) else {
        return Ok(());
    };
    let ports = scst_attrs(init, SCST_TARGETS, true, "enabled");
    let mut failed = write_all(init, &ports, "0");
    if !ha.cluster_mode {
        init.log.line("ha: cluster_mode off in the node config");
    } else if !init.sys.exists(Path::new(SCST_DEVICES)) {
        init.log.line(&format!(
            "ha: no {SCST_DEVICES} (SCST not loaded): cluster_mode skipped"
        ));
    } else {
        let devs = scst_attrs(init, SCST_DEVICES, false, "cluster_mode");
        failed += write_all(init, &devs, "1");
        init.log.line(&format!(
            "ha: cluster_mode on for {} SCST devices",
            devs.len()
        ));
    }
    if failed > 0 {
        bail!("{failed} SCST writes failed");
    }
    Ok(())
}

/// Pets the init-owned watchdog when it is due.
pub fn pet_if_due(init: &mut Init, now: Instant) {
    let Some(due) = init.ha.next_pet else { return };
    if now < due {
        return;
    }
    if let Err(e) = init.sys.watchdog_pet() {
        init.warn(e);
    }
    init.ha.next_pet = Some(now + init.ha.pet_interval);
}

fn add_service(init: &mut Init, name: &str, argv: &[String]) -> Result<()> {
    if argv.is_empty() {
        bail!("ha: empty command for {name}");
    }
    if init.supervisor.services.iter().any(|s| s.svc.name == name) {
        init.warn(format!(
            "ha: {name} is also a plain service: started once, in the services order"
        ));
        return Ok(());
    }
    let now = Instant::now();
    init.supervisor.services.push(Supervised {
        svc: Service {
            name: name.into(),
            argv: argv.to_vec(),
            restart: Restart::Always,
            env: Default::default(),
        },
        pid: None,
        started: None,
        backoff: super::supervisor::BACKOFF_MIN,
        next_start: Some(now),
        starts: 0,
        last_exit: None,
    });
    init.supervisor.start_due(init.sys, &mut init.log, now);
    let up = init
        .supervisor
        .services
        .iter()
        .any(|s| s.svc.name == name && s.pid.is_some());
    if !up {
        bail!("{name} did not start (retrying in the background)");
    }
    Ok(())
}

/// Polls `corosync-ready` until it succeeds (bounded by `settle-timeout`); returns
/// the time spent, which counts against the settle budget.
fn wait_corosync(init: &mut Init, ha: &Ha) -> Duration {
    let mut waited = Duration::ZERO;
    if ha.corosync_ready.is_empty() {
        return waited;
    }
    loop {
        let now = Instant::now();
        pet_if_due(init, now);
        init.supervisor.reap_all(init.sys, &mut init.log, now);
        init.supervisor.start_due(init.sys, &mut init.log, now);
        match init.sys.run_capture(&ha.corosync_ready, STATUS_TIMEOUT) {
            Ok((st, _)) if st.success() => {
                init.log.line(&format!(
                    "ha: corosync answers (after {} ms of polling)",
                    waited.as_millis()
                ));
                return waited;
            }
            _ if waited >= ha.settle_timeout.0 => {
                init.warn("ha: corosync does not answer; starting pacemaker anyway");
                return waited;
            }
            _ => {
                init.sys.sleep(COROSYNC_POLL);
                waited += COROSYNC_POLL;
            }
        }
    }
}

/// Runs the status command once; logs a failure only the first time.
fn poll_quorum(init: &mut Init, ha: &Ha) -> Quorum {
    match init.sys.run_capture(&ha.status, STATUS_TIMEOUT) {
        Ok((_, out)) => {
            init.ha.status_failed = false;
            parse_quorum(&out)
        }
        Err(e) => {
            if !init.ha.status_failed {
                init.warn(format!("ha: cluster status: {e}"));
                init.ha.status_failed = true;
            }
            Quorum::NoDc
        }
    }
}

/// Directories the cluster daemons expect (the root is a fresh RAM file system on
/// every boot; pacemakerd creates and chowns its own under /var/lib/pacemaker).
pub const STATE_DIRS: [&str; 10] = [
    "/run/lock",
    "/var/lib/corosync",
    "/var/log/cluster",
    "/var/lib/pacemaker/cib",
    "/var/lib/pacemaker/cores",
    "/var/lib/pacemaker/blackbox",
    "/var/lib/pacemaker/pengine",
    "/var/log/pacemaker",
    "/var/lib/drbd",
    "/run/drbd",
];
/// Where pacemaker-based reads the CIB at start.
pub const CIB_LIVE: &str = "/var/lib/pacemaker/cib/cib.xml";

/// Creates [`STATE_DIRS`] and seeds the CIB from [`CIB_SEED`] when Pacemaker has none:
/// every boot starts from the rendered configuration, and the cluster (DC) then
/// replaces it with the newer CIB of a running peer.
fn prepare_state(init: &mut Init) {
    for d in STATE_DIRS {
        if let Err(e) = init.sys.mkdir(Path::new(d)) {
            init.warn(format!("ha: {e}"));
        }
    }
    // Corosync's pid file and the agents' state live under /var/run; drbdadm and
    // drbdmeta lock the minor under /var/lock.
    for (link, target) in [("/var/run", "/run"), ("/var/lock", "/run/lock")] {
        if !init.sys.exists(Path::new(link)) {
            if let Err(e) = init.sys.symlink(Path::new(target), Path::new(link)) {
                init.warn(format!("ha: {e}"));
            }
        }
    }
    let (seed, live) = (Path::new(CIB_SEED), Path::new(CIB_LIVE));
    if init.sys.exists(seed) && !init.sys.exists(live) {
        // pacemaker-based (user hacluster) refuses a CIB it does not own.
        let owner = daemon_ids(init);
        let r = init.sys.copy_file(seed, live).and_then(|()| match owner {
            Some((u, g)) => init.sys.chown(live, u, g),
            None => Ok(()),
        });
        match r {
            Ok(()) => init.log.line(&format!("ha: CIB seeded from {CIB_SEED}")),
            Err(e) => init.warn(format!("ha: cannot seed the CIB: {e}")),
        }
    }
}

/// Pacemaker's daemon user and group (`hacluster`, `haclient`) from /etc/passwd and
/// /etc/group; None (with a warning) when the image lacks them.
fn daemon_ids(init: &mut Init) -> Option<(u32, u32)> {
    let field = |text: &str, name: &str| -> Option<u32> {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| matches!(f.as_slice(), [n, _, _, ..] if *n == name))
            .and_then(|f| f.get(2)?.parse().ok())
    };
    let passwd = init.sys.read_to_string(Path::new("/etc/passwd")).ok();
    let group = init.sys.read_to_string(Path::new("/etc/group")).ok();
    let uid = passwd.as_deref().and_then(|t| field(t, "hacluster"));
    let gid = group.as_deref().and_then(|t| field(t, "haclient"));
    match (uid, gid) {
        (Some(u), Some(g)) => Some((u, g)),
        _ => {
            init.warn("ha: no hacluster user or haclient group in /etc/passwd, /etc/group");
            None
        }
    }
}

/// Step `cluster` (after `services`): watchdog, Corosync, Pacemaker, bounded settle.
pub fn start_cluster(init: &mut Init) -> Result<()> {
    let Some(ha) = config(init) else {
        return Ok(());
    };
    if let Some(w) = &ha.watchdog {
        match w.mode {
            WatchdogMode::Sbd => init
                .log
                .line(&format!("ha: watchdog {} is sbd's", w.device)),
            WatchdogMode::Init => match init.sys.watchdog_open(Path::new(&w.device)) {
                Ok(()) => {
                    init.ha.pet_interval = w.interval.0;
                    init.ha.next_pet = Some(Instant::now());
                    pet_if_due(init, Instant::now());
                    init.log.line(&format!(
                        "ha: watchdog {} armed, petted every {} ms",
                        w.device,
                        w.interval.0.as_millis()
                    ));
                }
                Err(e) => init.warn(format!("ha: {e}: no watchdog")),
            },
        }
    }
    prepare_state(init);
    // From here on the node waits for quorum, whatever fails below: the main loop
    // keeps polling while the supervisor retries a daemon that did not start.
    init.ha.waiting_quorum = true;
    add_service(init, "corosync", &ha.corosync)?;
    let mut waited = wait_corosync(init, &ha);
    add_service(init, "pacemaker", &ha.pacemaker)?;
    loop {
        let now = Instant::now();
        pet_if_due(init, now);
        init.supervisor.reap_all(init.sys, &mut init.log, now);
        init.supervisor.start_due(init.sys, &mut init.log, now);
        match poll_quorum(init, &ha) {
            Quorum::Quorate { dc } => {
                init.ha.waiting_quorum = false;
                init.ha.quorate = true;
                init.log.line(&format!(
                    "ha: cluster settled after {} s (DC {dc}, quorate)",
                    waited.as_secs()
                ));
                return Ok(());
            }
            q if waited >= ha.settle_timeout.0 => {
                let why = match q {
                    Quorum::NotQuorate { .. } => "peer unreachable?",
                    _ => "no DC elected: peer unreachable or Pacemaker not up?",
                };
                init.log.line(&format!(
                    "no quorum after {}s: ports stay disabled ({why})",
                    ha.settle_timeout.0.as_secs()
                ));
                init.ha.next_poll = Some(Instant::now() + QUORUM_POLL);
                return Ok(());
            }
            _ => {}
        }
        init.sys.sleep(SETTLE_POLL);
        waited += SETTLE_POLL;
    }
}

/// Called from the main loop on every wakeup: pets the watchdog, polls quorum while
/// the node has none.
pub fn tick(init: &mut Init, now: Instant) {
    pet_if_due(init, now);
    if !init.ha.waiting_quorum || init.ha.next_poll.is_some_and(|t| now < t) {
        return;
    }
    let Some(ha) = config(init) else { return };
    init.ha.next_poll = Some(now + QUORUM_POLL);
    if let Quorum::Quorate { dc } = poll_quorum(init, &ha) {
        init.ha.waiting_quorum = false;
        init.ha.quorate = true;
        init.log.line(&format!(
            "ha: quorum reached (DC {dc}): Pacemaker now decides the target ports"
        ));
        let at = init.sys.boottime();
        init.timeline.mark("quorum", at);
        if let Err(e) = init.timeline.write(init.sys) {
            init.warn(format!("boot timeline: {e:#}"));
        }
    }
}

/// Open sessions on SCST target ports (copy_manager and scst_local excluded).
pub fn scst_sessions(init: &mut Init) -> usize {
    scst_attrs(init, SCST_TARGETS, true, "sessions")
        .iter()
        .map(|d| init.sys.list_dir(d).map(|v| v.len()).unwrap_or(0))
        .sum()
}

/// Stops one supervised service: SIGTERM, wait up to `timeout`, then SIGKILL.
fn stop_service(init: &mut Init, name: &str, timeout: Duration) {
    let Some(s) = init
        .supervisor
        .services
        .iter_mut()
        .find(|s| s.svc.name == name)
    else {
        return;
    };
    s.svc.restart = Restart::Never;
    s.next_start = None;
    let Some(pid) = s.pid else { return };
    init.log.line(&format!("ha: stopping {name} (pid {pid})"));
    if let Err(e) = init.sys.kill(pid, Signal::Term) {
        init.warn(e);
    }
    let mut waited = Duration::ZERO;
    loop {
        let now = Instant::now();
        init.supervisor.reap_all(init.sys, &mut init.log, now);
        let running = init
            .supervisor
            .services
            .iter()
            .any(|s| s.svc.name == name && s.pid.is_some());
        if !running {
            return;
        }
        if waited >= timeout {
            init.log.line(&format!(
                "ha: {name} still running after {} s: SIGKILL",
                timeout.as_secs()
            ));
            if let Err(e) = init.sys.kill(pid, Signal::Kill) {
                init.warn(e);
            }
            // SIGKILL cannot be ignored: reap it now so the final stop skips it.
            for _ in 0..5 {
                init.supervisor
                    .reap_all(init.sys, &mut init.log, Instant::now());
                if !init.supervisor.running().contains(&pid) {
                    break;
                }
                init.sys.sleep(STOP_POLL);
            }
            return;
        }
        pet_if_due(init, now);
        init.sys.sleep(STOP_POLL);
        waited += STOP_POLL;
    }
}

/// Shutdown, after the caller disabled the LIO ports and before it stops the other
/// services: SCST ports off, drain, cluster_mode off, Pacemaker, then Corosync.
pub fn stop_cluster(init: &mut Init) {
    let Some(ha) = config(init) else { return };
    let ports = scst_attrs(init, SCST_TARGETS, true, "enabled");
    write_all(init, &ports, "0");
    let mut waited = Duration::ZERO;
    loop {
        let n = scst_sessions(init);
        if n == 0 {
            break;
        }
        if waited >= ha.drain_timeout.0 {
            init.log.line(&format!(
                "ha: {n} sessions still open after {} s: going on",
                ha.drain_timeout.0.as_secs()
            ));
            break;
        }
        pet_if_due(init, Instant::now());
        init.sys.sleep(Duration::from_secs(1));
        waited += Duration::from_secs(1);
    }
    if ha.cluster_mode {
        let devs = scst_attrs(init, SCST_DEVICES, false, "cluster_mode");
        write_all(init, &devs, "0");
    }
    stop_service(init, "pacemaker", ha.stop_timeout.0);
    stop_service(init, "corosync", ha.stop_timeout.0);
}

/// Shutdown, after every service stopped and before sync: the watchdog is closed with
/// the magic `V`, then the modules are unloaded in reverse load order.
pub fn finish_shutdown(init: &mut Init) {
    if config(init).is_none() {
        return;
    }
    if let Err(e) = init.sys.watchdog_close() {
        init.warn(e);
    }
    let Some(node) = init.node.clone() else {
        return;
    };
    let m = &node.modules;
    if m.load.is_empty() {
        return;
    }
    let Ok(dir) = modules_dir(init.sys) else {
        return;
    };
    let Ok(dep) = init.sys.read_to_string(&dir.join("modules.dep")) else {
        return;
    };
    let db = modules::DepDb::parse(&dep);
    let builtin = init
        .sys
        .read_to_string(&dir.join("modules.builtin"))
        .map(|t| modules::parse_builtin(&t))
        .unwrap_or_default();
    let plan = modules::load_order(&db, &builtin, &m.load, &m.blacklist);
    for l in plan.loads.iter().rev() {
        match init.sys.delete_module(&l.name) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(libc::ENOENT) => {}
            Err(e) => init.warn(e),
        }
    }
}

/// Normalised MAC (`aa:bb:…`, lowercase), or None for an empty/zero address.
pub fn norm_mac(s: &str) -> Option<String> {
    let m = s.trim().to_ascii_lowercase().replace('-', ":");
    let ok = m.len() == 17
        && m.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    (ok && m != "00:00:00:00:00:00").then_some(m)
}

/// The node config to use when the command line names none: the one of
/// `/etc/sanforge/nodes/*.toml` with an interface `mac` this machine has. `Ok(None)`
/// when there is no nodes directory (the baked single node.toml is used).
pub fn node_by_mac(init: &mut Init) -> Result<Option<PathBuf>> {
    let dir = Path::new(NODE_CONFIG_DIR);
    let Ok(files) = init.sys.list_dir(dir) else {
        return Ok(None);
    };
    let files: Vec<String> = files.into_iter().filter(|f| f.ends_with(".toml")).collect();
    if files.is_empty() {
        return Ok(None);
    }
    let net = Path::new("/sys/class/net");
    let mut seen: Vec<(String, String)> = Vec::new();
    for ifname in init.sys.list_dir(net).unwrap_or_default() {
        if let Ok(a) = init.sys.read_to_string(&net.join(&ifname).join("address")) {
            if let Some(m) = norm_mac(&a) {
                seen.push((ifname, m));
            }
        }
    }
    let mut known = Vec::new();
    let mut matches = Vec::new();
    for f in &files {
        let p = dir.join(f);
        let node = match init
            .sys
            .read_to_string(&p)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(NodeConfig::parse(&p, &t)?))
        {
            Ok(n) => n,
            Err(e) => {
                init.warn(format!("{e:#}"));
                continue;
            }
        };
        let name = f.trim_end_matches(".toml").to_string();
        let macs: Vec<String> = node
            .network
            .interfaces
            .iter()
            .filter_map(|i| i.mac.as_deref().and_then(norm_mac))
            .collect();
        if let Some((ifname, m)) = seen.iter().find(|(_, m)| macs.contains(m)) {
            matches.push((name.clone(), p.clone(), format!("{m} on {ifname}")));
        }
        let list = if macs.is_empty() {
            "no mac".to_string()
        } else {
            macs.join(" ")
        };
        known.push(format!("{name} ({list})"));
    }
    let seen_s = if seen.is_empty() {
        "none".to_string()
    } else {
        seen.iter()
            .map(|(i, m)| format!("{i} {m}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matches.as_slice() {
        [(name, p, how)] => {
            init.log.line(&format!("node {name} picked by MAC {how}"));
            Ok(Some(p.clone()))
        }
        [] => bail!(
            "no node config in {NODE_CONFIG_DIR} matches this machine (no sanforge.node= on the command line): MACs seen: {seen_s}; nodes known: {}",
            known.join(", ")
        ),
        many => bail!(
            "several node configs match this machine's MACs ({}): set sanforge.node= on the command line",
            many.iter()
                .map(|(n, _, how)| format!("{n} by {how}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quorum_from_crm_mon_xml() {
        let q = r#"<pacemaker-result api-version="2.30" request="crm_mon -1 --output-as=xml">
  <summary>
    <stack type="corosync" pacemakerd-state="running"/>
    <current_dc present="true" version="3.0.2" name="alpha" id="1" with_quorum="true" mixed_version="false"/>
  </summary>"#;
        assert_eq!(parse_quorum(q), Quorum::Quorate { dc: "alpha".into() });
        let nq = q.replace("with_quorum=\"true\"", "with_quorum=\"false\"");
        assert_eq!(parse_quorum(&nq), Quorum::NotQuorate { dc: "alpha".into() });
        assert_eq!(
            parse_quorum(r#"<summary><current_dc present="false"/></summary>"#),
            Quorum::NoDc
        );
        assert_eq!(
            parse_quorum("crm_mon: error: connection refused"),
            Quorum::NoDc
        );
    }

    #[test]
    fn macs_normalise() {
        assert_eq!(
            norm_mac("52:54:00:AA:bb:01\n").as_deref(),
            Some("52:54:00:aa:bb:01")
        );
        assert_eq!(
            norm_mac("52-54-00-aa-bb-01").as_deref(),
            Some("52:54:00:aa:bb:01")
        );
        assert_eq!(norm_mac("00:00:00:00:00:00"), None);
        assert_eq!(norm_mac("52:54:00:aa:bb"), None);
        assert_eq!(norm_mac("52:54:00:aa:bb:zz"), None);
    }

    #[test]
    fn durations_and_defaults() {
        use crate::config::node::{parse_duration, HaDuration};
        assert_eq!(parse_duration("120s"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5 s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3d"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(
            String::from(HaDuration(Duration::from_millis(1500))),
            "1500ms"
        );
        assert_eq!(String::from(HaDuration::secs(30)), "30s");

        let n = NodeConfig::parse(
            Path::new("n.toml"),
            "hostname = \"n\"\n[ha]\nenabled = true\nsettle-timeout = \"90s\"\nwatchdog = { mode = \"sbd\" }\n",
        )
        .unwrap();
        let ha = n.ha.clone().unwrap();
        assert_eq!(ha.settle_timeout.0, Duration::from_secs(90));
        assert_eq!(ha.drain_timeout.0, Duration::from_secs(30));
        assert_eq!(ha.corosync, ["/usr/sbin/corosync", "-f"]);
        assert!(ha.cluster_mode);
        let w = ha.watchdog.unwrap();
        assert_eq!(w.mode, WatchdogMode::Sbd);
        assert_eq!(w.device, "/dev/watchdog");
        assert_eq!(w.interval.0, Duration::from_secs(5));

        let e = NodeConfig::parse(
            Path::new("n.toml"),
            "hostname = \"n\"\n[ha]\ndrain-timeout = \"soon\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("duration `soon`"), "{e}");
    }
}
