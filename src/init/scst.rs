//! SCST in the init: applies the node's `scst.conf` to `/sys/kernel/scst_tgt` at boot
//! with every target port disabled, enables the ports in the "enable ports" step,
//! disables them at shutdown, and moves a running SCST to another `scst.conf` at run
//! time (`sanforge-init apply-scst FILE [--prune]`) with only the writes that differ.
//!
//! Reads the node config's `[scst]`, the `scst.conf` it names (absolute, or relative to
//! `/etc/sanforge`), `/sys/kernel/scst_tgt/last_sysfs_mgmt_res` after `EAGAIN`
//! (reference/scst.md §B10), and `/run/sanforge/scst.applied`: the canonical text of
//! the configuration SCST was last moved to, which [`apply_file`] diffs against. The
//! model, plan and write loop are `crate::scsi::scst`'s; this module only runs them
//! through [`Sys`] (each write one `write(2)`).
//!
//! One writer at a time (`last_sysfs_mgmt_res` is global): every apply holds an
//! advisory `flock(2)` on `/run/sanforge/scst.lock` (std's `File::try_lock`; released
//! when the process exits, so a crashed writer leaves no stale lock). A second writer
//! fails at once, naming the pid written in the lock file. The record and the lock
//! are plain files on `/run` (not kernel interfaces): they are read and written
//! directly under the [`Sys`] root, not recorded as ops.
//!
//! What an apply cannot change live (a creation parameter of an existing device, a
//! LUN that exists, an attribute gone from the file, and without `--prune` whatever the
//! file no longer names) is listed (`not changed: …`, with what to do) and left out of
//! the record, which holds what SCST holds, CHAP secrets included (mode 0600). `secret:NAME`
//! accounts are filled in from the node's secrets ([`super::secrets`]).
//!
//! Known gap: a failed `apply-scst` keeps the previous record, so the writes that did
//! succeed are replayed by the next apply (creations then fail with `EEXIST`; reboot
//! or `--prune` from a matching file).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::supervisor::{Supervised, BACKOFF_MIN};
use super::{Init, Logger};
use crate::config::node::{Restart, ScstNode, Service};
use crate::contract::{SCST_APPLIED, SCST_LOCK};
use crate::scsi::scst::{
    self, ApplyError, ApplyOptions, Attr, Initiator, Lun, ScstConf, SysfsWrite, SCST_SYSFS,
};
use crate::sys::Sys;
use anyhow::{anyhow, bail, Context, Result};
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// State directories SCST's vdisk handlers need before `add_device` (reference §C, §D).
pub const STATE_DIRS: [&str; 3] = [
    "/var/lib/scst/pr",
    "/var/lib/scst/dif_tags",
    "/var/lib/scst/vdev_mode_pages",
];
/// While a just-started iSCSI daemon connects to the kernel, `add_target` on
/// `targets/iscsi/mgmt` fails with `EPERM`: retried this many times, this far apart.
const DAEMON_RETRIES: u32 = 50;
const DAEMON_RETRY_WAIT: Duration = Duration::from_millis(100);
/// The last driver attribute iscsi-scstd adds at start-up (`internal_portal`, in
/// iscsi-scst's usr/iscsi_scstd.c), after it has opened the control device *and*
/// registered its netlink socket. Between the two, `add_target` passes the kernel's
/// "daemon connected" check but its event goes to netlink port 0 (a WARN in
/// iscsi-scst's event.c) and the write fails with `EBUSY` after half a minute (seen
/// once in three two-node boots): the boot waits for this file before the writes.
pub const ISCSI_DAEMON_READY: &str = "targets/iscsi/internal_portal";
/// How long the boot waits for [`ISCSI_DAEMON_READY`].
const DAEMON_READY_WAIT: Duration = Duration::from_secs(10);

/// What the boot's `scst` step leaves for the "enable ports" step.
#[derive(Debug, Clone)]
pub struct ScstBoot {
    pub conf: ScstConf,
    /// The writes of the `scst` step (everything but the enables), in the order made.
    pub setup: Vec<SysfsWrite>,
    /// The `enabled` ← 1 writes of the plan, held back until the ports are enabled.
    pub enable: Vec<SysfsWrite>,
    /// How long the `scst` step's write loop took, first write to last.
    pub setup_time: Duration,
    /// How long the enables' write loop took, once made.
    pub enable_time: Option<Duration>,
}

/// One line for a failed write: path, command and errno, and where the reason is.
pub fn describe(e: &ApplyError) -> String {
    match e.errno {
        Some(n) => format!("{e} [errno {n}]"),
        None => e.to_string(),
    }
}

/// The held SCST writer lock; dropping it releases the lock.
#[derive(Debug)]
pub struct WriterLock(#[allow(dead_code)] std::fs::File);

/// Takes the writer lock (see the module doc) or says who holds it.
pub fn lock(sys: &dyn Sys) -> Result<WriterLock> {
    let p = sys.root().join(Path::new(SCST_LOCK));
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&p)
        .with_context(|| format!("cannot open {SCST_LOCK}"))?;
    // Another writer holds it for the few milliseconds of a write batch; a child being
    // spawned also holds a copy of the descriptor between fork and exec. Wait a little
    // before calling it busy.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match f.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&p).unwrap_or_default();
                bail!(
                    "another SCST apply is running (lock {SCST_LOCK} held by pid {})",
                    holder.trim()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {SCST_LOCK}"))
            }
        }
    }
    let _ = f.set_len(0);
    let _ = writeln!(f, "{}", std::process::id());
    Ok(WriterLock(f))
}

/// The configuration SCST was last moved to, if there is a record.
pub fn read_applied(sys: &dyn Sys) -> Result<Option<ScstConf>> {
    let p = sys.root().join(Path::new(SCST_APPLIED));
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {SCST_APPLIED}")),
    };
    let conf = scst::parse(&text).map_err(|e| {
        anyhow!(
            "{SCST_APPLIED}:{}: {} (remove the record)",
            e.line,
            e.message
        )
    })?;
    Ok(Some(conf))
}

/// Replaces the record atomically. It holds what SCST holds, CHAP secrets included,
/// so it is readable by root only (like SCST's own `IncomingUser` files).
pub fn record_applied(sys: &dyn Sys, conf: &ScstConf) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let p = sys.root().join(Path::new(SCST_APPLIED));
    let text = scst::print(conf);
    let secret = conf
        .drivers
        .iter()
        .flat_map(|d| {
            d.attrs
                .iter()
                .chain(d.targets.iter().flat_map(|t| &t.attrs))
        })
        .any(|a| crate::util::redact::is_scst_secret_attr(&a.name));
    if secret {
        // A temporary file created 0600, then renamed over the record: never readable
        // by anyone else, not even for a moment.
        let dir = crate::util::fs::parent_dir(&p);
        crate::util::fs::create_dir_all(&dir)?;
        let mut tmp = tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", tmp.path().display()))?;
        tmp.persist(&p)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot record the applied SCST config in {SCST_APPLIED}"))?;
        return Ok(());
    }
    crate::util::fs::write_atomic(&p, text)
        .with_context(|| format!("cannot record the applied SCST config in {SCST_APPLIED}"))
}

/// Performs `writes` under [`SCST_SYSFS`] through `sys`, polling
/// `last_sysfs_mgmt_res` after `EAGAIN`. With `daemon_starting`, an `EPERM` from
/// `targets/iscsi/mgmt` (the daemon not connected yet) is retried.
pub fn run_writes(
    sys: &mut dyn Sys,
    writes: &[SysfsWrite],
    daemon_starting: bool,
) -> Result<(), ApplyError> {
    let base = Path::new(SCST_SYSFS);
    let sys = RefCell::new(sys);
    let opts = ApplyOptions::default();
    let mut start = 0;
    let mut retries = 0;
    loop {
        // `start` is the index of a write that failed, so it is within `writes`.
        let r = scst::apply_with(
            writes.get(start..).unwrap_or_default(),
            &mut |p, v| {
                sys.borrow_mut()
                    .write_file(&base.join(p), v)
                    .map_err(|e| e.err)
            },
            &mut |p| {
                sys.borrow_mut()
                    .read_to_string(&base.join(p))
                    .map_err(|e| e.err)
            },
            &opts,
        );
        let Err(mut e) = r else { return Ok(()) };
        e.index += start;
        if daemon_starting
            && e.errno == Some(libc::EPERM)
            && e.path == "targets/iscsi/mgmt"
            && retries < DAEMON_RETRIES
        {
            retries += 1;
            start = e.index;
            sys.borrow_mut().sleep(DAEMON_RETRY_WAIT);
            continue;
        }
        return Err(e);
    }
}

/// `enabled` ← 0 for every target that `conf` enables (copy_manager excepted).
pub fn disable_writes(conf: &ScstConf) -> Vec<SysfsWrite> {
    let mut out = Vec::new();
    for d in &conf.drivers {
        for t in &d.targets {
            if t.enabled == Some(true) && d.name != "copy_manager" {
                out.push(SysfsWrite {
                    path: format!("targets/{}/{}/enabled", d.name, t.name),
                    value: "0".into(),
                });
            }
        }
    }
    out
}

/// `conf` with every `enabled` line removed (what SCST holds before the enables).
fn without_enables(conf: &ScstConf) -> ScstConf {
    let mut c = conf.clone();
    for d in &mut c.drivers {
        d.enabled = None;
        for t in &mut d.targets {
            t.enabled = None;
        }
    }
    c
}

/// Boot step `scst`: the node's scst.conf applied with the ports disabled. Any failure
/// leaves the ports disabled (degraded targets); the node stays up.
pub fn apply_at_boot(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let Some(cfg) = node.scst.clone() else {
        return Ok(());
    };
    let r = boot_inner(init, &cfg);
    if r.is_err() {
        init.targets_ok = false;
    }
    r
}

fn boot_inner(init: &mut Init, cfg: &ScstNode) -> Result<()> {
    let path = crate::contract::conf_path(&cfg.conf);
    let text = init.sys.read_to_string(&path)?;
    let (conf, warnings) = crate::scsi::scst::load_conf(&path, &text)?;
    for w in warnings {
        init.log.line(&w);
    }
    let conf = super::secrets::resolve_scst(init.sys, &path, &conf)
        .context("SCST targets not configured, ports stay disabled")?;
    // A device whose file or block device is absent is left out with its LUNs
    // (`init::storage`); the rest is served.
    let absent: std::collections::BTreeSet<String> = super::storage::absent_scst(init.sys, &conf)
        .into_iter()
        .map(|a| {
            init.log.line(&format!(
                "SCST device `{}` not created: {} is not present; its LUNs are left out",
                a.backstore, a.path
            ));
            a.backstore
        })
        .collect();
    let conf = if absent.is_empty() {
        conf
    } else {
        super::storage::without_devices(&conf, &absent)
    };
    if !init.sys.exists(Path::new(SCST_SYSFS)) {
        bail!(
            "{SCST_SYSFS} does not exist: the SCST core module `scst` is not loaded \
             (add it to [modules] load); SCST targets not configured"
        );
    }
    for d in STATE_DIRS {
        if let Err(e) = init.sys.mkdir(Path::new(d)) {
            init.warn(e);
        }
    }
    let _lock = lock(init.sys)?;
    let plan = scst::plan(&conf);
    let (enable, setup): (Vec<SysfsWrite>, Vec<SysfsWrite>) =
        plan.into_iter().partition(SysfsWrite::is_enable);
    let daemon = start_iscsi_daemon(init, cfg, &conf);
    if daemon {
        wait_iscsi_daemon(init);
    }
    let first = init.sys.boottime();
    if let Err(e) = run_writes(init.sys, &setup, daemon) {
        bail!("{}: SCST target ports stay disabled", describe(&e));
    }
    let setup_time = init.sys.boottime().saturating_sub(first);
    if let Err(e) = record_applied(init.sys, &without_enables(&conf)) {
        init.warn(format!("{e:#}"));
    }
    let devices: usize = conf.handlers.iter().map(|h| h.devices.len()).sum();
    let targets: usize = conf.drivers.iter().map(|d| d.targets.len()).sum();
    init.log.line(&format!(
        "SCST configured from {}: {devices} devices, {targets} targets, {} writes in {:.3}s (ports disabled)",
        path.display(),
        setup.len(),
        setup_time.as_secs_f64()
    ));
    init.scst = Some(ScstBoot {
        conf,
        setup,
        enable,
        setup_time,
        enable_time: None,
    });
    Ok(())
}

/// Waits (bounded) until the just-started iSCSI daemon has registered with the kernel
/// ([`ISCSI_DAEMON_READY`]); says so when it did not, and the writes go ahead (a
/// daemon not connected at all is `run_writes`' EPERM retry).
fn wait_iscsi_daemon(init: &mut Init) {
    let ready = Path::new(SCST_SYSFS).join(ISCSI_DAEMON_READY);
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while !init.sys.exists(&ready) && waited < DAEMON_READY_WAIT {
        init.sys.sleep(step);
        waited += step;
    }
    if !init.sys.exists(&ready) {
        init.log.line(&format!(
            "note: the iSCSI daemon has not created {} after {} s: adding iSCSI targets anyway",
            ready.display(),
            DAEMON_READY_WAIT.as_secs()
        ));
    }
}

/// Starts the configured iSCSI daemon as a supervised service when the config has an
/// `iscsi` driver; returns whether it was started.
fn start_iscsi_daemon(init: &mut Init, cfg: &ScstNode, conf: &ScstConf) -> bool {
    if !conf.drivers.iter().any(|d| d.name == "iscsi") {
        return false;
    }
    let Some(argv) = cfg.iscsi_daemon.clone().filter(|a| !a.is_empty()) else {
        init.log.line(
            "note: TARGET_DRIVER iscsi without [scst] iscsi-daemon: add_target needs iscsi-scstd running",
        );
        return false;
    };
    let name = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "iscsi-daemon".into());
    let now = Instant::now();
    init.supervisor.services.push(Supervised {
        svc: Service {
            name,
            argv,
            restart: Restart::Always,
            env: Default::default(),
        },
        pid: None,
        started: None,
        backoff: BACKOFF_MIN,
        next_start: Some(now),
        starts: 0,
        last_exit: None,
    });
    init.supervisor.start_due(init.sys, &mut init.log, now);
    init.supervisor
        .services
        .last()
        .is_some_and(|s| s.pid.is_some())
}

/// The SCST part of the "enable ports" step: the held-back `enabled` ← 1 writes. On
/// failure the targets are disabled again.
pub fn enable_ports(init: &mut Init) -> Result<()> {
    let Some(b) = init.scst.clone() else {
        return Ok(());
    };
    if !init.targets_ok {
        bail!("SCST target setup failed: ports stay disabled");
    }
    if super::ha::owns_ports(init) {
        // With HA the resource agent (ocf:sanforge:alua) enables the ports on start;
        // a target driver's own switch (`targets/iscsi/enabled`: iscsi-scstd refuses
        // every login while it is 0) is no port, and the agent never touches it.
        let drivers = driver_enables(&b.enable);
        if let Err(e) = run_writes(init.sys, &drivers, false) {
            init.targets_ok = false;
            bail!("{}: the iSCSI target driver stays disabled", describe(&e));
        }
        if let Err(e) = record_applied(init.sys, &b.conf) {
            init.warn(format!("{e:#}"));
        }
        return Ok(());
    }
    let _lock = lock(init.sys)?;
    let first = init.sys.boottime();
    let r = run_writes(init.sys, &b.enable, false);
    if let Some(s) = init.scst.as_mut() {
        s.enable_time = Some(init.sys.boottime().saturating_sub(first));
    }
    if let Err(e) = r {
        init.targets_ok = false;
        for w in disable_writes(&b.conf) {
            let _ = init
                .sys
                .write_file(&Path::new(SCST_SYSFS).join(&w.path), &w.value);
        }
        bail!("{}: SCST ports disabled again", describe(&e));
    }
    if let Err(e) = record_applied(init.sys, &b.conf) {
        init.warn(format!("{e:#}"));
    }
    if !b.enable.is_empty() {
        init.log
            .line(&format!("{} SCST target ports enabled", b.enable.len()));
    }
    Ok(())
}

/// The enables of target drivers themselves (`targets/DRIVER/enabled`), not of ports.
pub fn driver_enables(enable: &[SysfsWrite]) -> Vec<SysfsWrite> {
    enable
        .iter()
        .filter(|w| {
            let parts: Vec<&str> = w.path.split('/').collect();
            matches!(parts.as_slice(), ["targets", _, "enabled"])
        })
        .cloned()
        .collect()
}

/// Shutdown: `enabled` ← 0 for every target the record (or the boot) enabled. Errors
/// are logged; the shutdown goes on.
pub fn disable_ports(init: &mut Init) {
    let conf = match read_applied(init.sys) {
        Ok(Some(c)) => c,
        other => {
            if let Err(e) = other {
                init.warn(format!("{e:#}"));
            }
            match &init.scst {
                Some(b) => b.conf.clone(),
                None => return,
            }
        }
    };
    let writes = disable_writes(&conf);
    for w in &writes {
        if let Err(e) = init
            .sys
            .write_file(&Path::new(SCST_SYSFS).join(&w.path), &w.value)
        {
            init.warn(format!("disabling SCST port: {e}"));
        }
    }
    if !writes.is_empty() {
        if let Err(e) = record_applied(init.sys, &without_enables(&conf)) {
            init.warn(format!("{e:#}"));
        }
    }
}

/// `apply-scst FILE [--prune]`: moves SCST from the recorded configuration to `text`
/// with `diff_plan` (no record: from an empty SCST) and records the result. Returns
/// the number of writes.
pub fn apply_file(
    sys: &mut dyn Sys,
    log: &mut Logger,
    file: &Path,
    text: &str,
    prune: bool,
) -> Result<usize> {
    let (desired, warnings) = crate::scsi::scst::load_conf(file, text)?;
    for w in warnings {
        log.line(&w);
    }
    let desired = super::secrets::resolve_scst(sys, file, &desired)?;
    if !sys.exists(Path::new(SCST_SYSFS)) {
        bail!("{SCST_SYSFS} does not exist: the SCST core module `scst` is not loaded");
    }
    let _lock = lock(sys)?;
    let current = match read_applied(sys)? {
        Some(c) => c,
        None => {
            log.line(&format!(
                "no {SCST_APPLIED}: applying {} to an empty SCST",
                file.display()
            ));
            ScstConf::default()
        }
    };
    let writes = scst::diff_plan(&current, &desired, prune);
    let gaps = scst::live_gaps(&current, &desired, prune);
    run_writes(sys, &writes, false).map_err(|e| anyhow!("{}", describe(&e)))?;
    let reached = if prune {
        desired
    } else {
        merge(&current, &desired)
    };
    record_applied(sys, &reached)?;
    for g in &gaps {
        log.line(&format!("not changed: {g}"));
    }
    log.line(&format!(
        "SCST moved to {}: {} writes{}{}",
        file.display(),
        writes.len(),
        if prune { " (pruned)" } else { "" },
        if gaps.is_empty() {
            String::new()
        } else {
            format!(
                "; {} difference{} not applied (listed above)",
                gaps.len(),
                if gaps.len() == 1 { "" } else { "s" }
            )
        }
    ));
    Ok(writes.len())
}

/// Attributes after an additive apply: the current ones minus those `des` sets, then
/// `des` (so the last value of a name is the one written last).
fn merge_attrs(cur: &[Attr], des: &[Attr]) -> Vec<Attr> {
    let mut out: Vec<Attr> = cur
        .iter()
        .filter(|a| !des.iter().any(|d| d.name == a.name && d.value == a.value))
        .cloned()
        .collect();
    out.extend(des.iter().cloned());
    out
}

/// LUNs after an additive apply: existing numbers keep their device.
fn merge_luns(cur: &[Lun], des: &[Lun]) -> Vec<Lun> {
    let mut out = cur.to_vec();
    for l in des {
        if !out.iter().any(|c| c.number == l.number) {
            out.push(l.clone());
        }
    }
    out
}

/// Merges the named items of `cur` and `des`: items of both through `f`, new ones
/// appended.
fn merge_named<T: Clone>(
    cur: &[T],
    des: &[T],
    name: impl Fn(&T) -> &str,
    f: impl Fn(&T, &T) -> T,
) -> Vec<T> {
    let mut out: Vec<T> = cur
        .iter()
        .map(|c| match des.iter().find(|d| name(d) == name(c)) {
            Some(d) => f(c, d),
            None => c.clone(),
        })
        .collect();
    for d in des {
        if !cur.iter().any(|c| name(c) == name(d)) {
            out.push(d.clone());
        }
    }
    out
}

/// `attrs` without the creation parameters of `handler` that cannot be written to a
/// live device (what an additive apply leaves as it was).
fn live_settable(handler: &str, attrs: &[Attr]) -> Vec<Attr> {
    let creation = scst::catalog::device_creation_params(handler);
    attrs
        .iter()
        .filter(|a| {
            !creation.contains(&a.name.as_str())
                || scst::catalog::WRITABLE_CREATION_PARAMS.contains(&a.name.as_str())
        })
        .cloned()
        .collect()
}

/// What SCST holds after `diff_plan(cur, des, false)`: everything of `cur` (nothing is
/// removed or disabled without prune) with `des` added and set on top.
pub fn merge(cur: &ScstConf, des: &ScstConf) -> ScstConf {
    let inits = |c: &[Initiator], d: &[Initiator]| merge_named(c, d, |i| &i.name, |a, _| a.clone());
    ScstConf {
        globals: merge_attrs(&cur.globals, &des.globals),
        alua: merge_attrs(&cur.alua, &des.alua),
        handlers: merge_named(
            &cur.handlers,
            &des.handlers,
            |h| &h.name,
            |c, d| scst::Handler {
                attrs: merge_attrs(&c.attrs, &d.attrs),
                devices: merge_named(
                    &c.devices,
                    &d.devices,
                    |x| &x.name,
                    |a, b| scst::Device {
                        // A live device keeps the creation parameters it was made with.
                        attrs: merge_attrs(&a.attrs, &live_settable(&c.name, &b.attrs)),
                        ..a.clone()
                    },
                ),
                ..c.clone()
            },
        ),
        drivers: merge_named(
            &cur.drivers,
            &des.drivers,
            |x| &x.name,
            |c, d| scst::TargetDriver {
                enabled: if d.enabled == Some(true) {
                    Some(true)
                } else {
                    c.enabled
                },
                attrs: merge_attrs(&c.attrs, &d.attrs),
                targets: merge_named(
                    &c.targets,
                    &d.targets,
                    |x| &x.name,
                    |a, b| scst::Target {
                        enabled: if b.enabled.is_some() {
                            b.enabled
                        } else {
                            a.enabled
                        },
                        // A live port keeps the creation parameters it was made with.
                        attrs: merge_attrs(
                            &a.attrs,
                            &b.attrs
                                .iter()
                                .filter(|x| {
                                    !scst::catalog::target_creation_params(&c.name)
                                        .contains(&x.name.as_str())
                                })
                                .cloned()
                                .collect::<Vec<_>>(),
                        ),
                        luns: merge_luns(&a.luns, &b.luns),
                        groups: merge_named(
                            &a.groups,
                            &b.groups,
                            |g| &g.name,
                            |x, y| scst::IniGroup {
                                attrs: merge_attrs(&x.attrs, &y.attrs),
                                luns: merge_luns(&x.luns, &y.luns),
                                initiators: inits(&x.initiators, &y.initiators),
                                ..x.clone()
                            },
                        ),
                        ..a.clone()
                    },
                ),
                ..c.clone()
            },
        ),
        device_groups: merge_named(
            &cur.device_groups,
            &des.device_groups,
            |x| &x.name,
            |c, d| scst::DeviceGroup {
                attrs: merge_attrs(&c.attrs, &d.attrs),
                devices: merge_named(&c.devices, &d.devices, |x| &x.name, |a, _| a.clone()),
                target_groups: merge_named(
                    &c.target_groups,
                    &d.target_groups,
                    |x| &x.name,
                    |a, b| scst::TargetGroup {
                        attrs: merge_attrs(&a.attrs, &b.attrs),
                        targets: merge_named(
                            &a.targets,
                            &b.targets,
                            |x| &x.name,
                            |p, q| scst::TgTarget {
                                attrs: merge_attrs(&p.attrs, &q.attrs),
                                ..p.clone()
                            },
                        ),
                        ..a.clone()
                    },
                ),
                ..c.clone()
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "HANDLER vdisk_nullio {\n\tDEVICE d0\n\tDEVICE d1\n}\nTARGET_DRIVER iscsi {\n\tenabled 1\n\tTARGET iqn.2026-11.org.example:t {\n\t\tenabled 1\n\t\tallowed_portal 10.0.0.1\n\t\tLUN 0 d0\n\t}\n}\n";

    #[test]
    fn driver_enables_are_the_drivers_own_switches_not_ports() {
        let (enable, _): (Vec<SysfsWrite>, Vec<SysfsWrite>) = scst::plan(&scst::parse(A).unwrap())
            .into_iter()
            .partition(SysfsWrite::is_enable);
        assert_eq!(enable.len(), 2, "{enable:?}");
        assert_eq!(
            driver_enables(&enable),
            [SysfsWrite {
                path: "targets/iscsi/enabled".into(),
                value: "1".into()
            }]
        );
    }

    #[test]
    fn relative_conf_is_under_etc_sanforge() {
        assert_eq!(
            crate::contract::conf_path("scst.conf"),
            std::path::PathBuf::from("/etc/sanforge/scst.conf")
        );
        assert_eq!(
            crate::contract::conf_path("/data/x.conf"),
            std::path::PathBuf::from("/data/x.conf")
        );
    }

    #[test]
    fn merge_keeps_what_an_additive_apply_keeps() {
        let a = scst::parse(A).unwrap();
        let b = scst::parse(
            &A.replace("\tDEVICE d1\n", "\tDEVICE d2\n")
                .replace("allowed_portal 10.0.0.1", "allowed_portal 10.0.0.2"),
        )
        .unwrap();
        let m = merge(&a, &b);
        // Re-applying b over what an additive apply of b reached writes nothing; d1 and
        // the first portal are still there for a later prune.
        assert!(scst::diff_plan(&m, &b, false).is_empty());
        let prune = scst::diff_plan(&m, &b, true);
        let cmds: Vec<String> = prune.iter().map(|w| w.value.clone()).collect();
        assert!(cmds.contains(&"del_device d1".to_string()), "{cmds:?}");
        assert!(
            cmds.iter()
                .any(|c| c.contains("del_target_attribute") && c.contains("10.0.0.1")),
            "{cmds:?}"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = crate::scsi::scst::load_conf(
            Path::new("x.conf"),
            "HANDLER vdisk_nullio {\n\tDEVICE\n}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("x.conf:2"), "{e}");
    }
}
