//! Debian's udev under sanforge-init: the stable device names a Debian system has
//! (`/dev/disk/by-id`, `by-path`, `by-uuid`, `by-label`, from udev's own
//! 60-persistent-storage.rules with its ata_id/scsi_id/path_id/blkid helpers) and
//! module loading for devices that appear after the boot (udev's kmod builtin).
//!
//! systemd-udevd runs without systemd as PID 1 (Debian's initramfs does the same):
//! the init writes [`MODPROBE_CONF`] from the node's `[modules] blacklist` and
//! `params` so that kmod honours them, starts udevd as a supervised service, waits
//! for its control socket, replays the `add` events of the block devices (`udevadm
//! trigger`; coldplug has loaded the other devices' modules, and replaying their
//! events too costs seconds under emulation for nothing). The boot step `udev settle`
//! ([`settle`], after the network step, before storage) waits for them, bounded by
//! `[hardware] settle-timeout`: udevd works while the links are configured. udev is opt-in per recipe (the `udev` package and the files it
//! keeps); without it this step says so and the by-* names are absent.
//!
//! Reads: the node config; whether [`UDEVD`] exists. Writes: [`MODPROBE_CONF`].

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::supervisor::{Supervised, BACKOFF_MIN};
use super::Init;
use crate::config::node::{norm_mod, Modules, Restart, Service};
use crate::contract::{MODPROBE_CONF, UDEVADM, UDEVD, UDEV_CONTROL};
use anyhow::{bail, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// The replayed coldplug events: `add` for every block device and every misc device.
/// Misc devices because modules loaded before udevd (the modules step) create device
/// nodes whose names only rules give: dlm_controld waits for `/dev/misc/dlm-control`,
/// the link dlm-controld's 51-dlm.rules makes for the dlm module's `/dev/dlm-control`
/// (dlm is loaded with scst.ko, long before udevd runs). A handful of events.
pub const TRIGGER_COLDPLUG: [&str; 5] = [
    "trigger",
    "--type=devices",
    "--action=add",
    "--subsystem-match=block",
    "--subsystem-match=misc",
];

/// How long the init waits for udevd to listen before triggering events.
pub const UDEVD_START_WAIT: Duration = Duration::from_secs(5);

/// modprobe.d lines for the node's `[modules]`: `blacklist NAME` (kmod then never
/// loads NAME for an alias, as coldplug does not) and `options NAME PARAMS`.
pub fn render_modprobe_conf(m: &Modules) -> String {
    let mut out = String::from(
        "# Written by sanforge-init at boot from the node config's [modules];\n\
         # udev's kmod builtin and modprobe honour it for modules loaded after the boot.\n",
    );
    for b in &m.blacklist {
        out.push_str(&format!("blacklist {}\n", norm_mod(b)));
    }
    for (name, params) in &m.params {
        let params = params.trim();
        if !params.is_empty() {
            out.push_str(&format!("options {} {params}\n", norm_mod(name)));
        }
    }
    out
}

/// Writes [`MODPROBE_CONF`], then runs udev when the image has it.
pub fn start(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let m = &node.modules;
    if !m.blacklist.is_empty() || !m.params.is_empty() {
        let path = Path::new(MODPROBE_CONF);
        if let Some(dir) = path.parent() {
            init.sys.mkdir(dir)?;
        }
        init.sys
            .write_durable(path, render_modprobe_conf(m).as_bytes())?;
    }
    if !init.sys.exists(Path::new(UDEVD)) {
        init.log.line(&format!(
            "udev: not in the image (no {UDEVD}): no /dev/disk/by-* names, \
             no modules for devices that appear later"
        ));
        return Ok(());
    }
    let started = Instant::now();
    let now = Instant::now();
    init.supervisor.services.push(Supervised {
        svc: Service {
            name: "udevd".into(),
            argv: vec![UDEVD.into(), "--resolve-names=never".into()],
            restart: Restart::Always,
            env: [("SYSTEMD_LOG_LEVEL".to_string(), "notice".to_string())]
                .into_iter()
                .collect(),
        },
        pid: None,
        started: None,
        backoff: BACKOFF_MIN,
        next_start: Some(now),
        starts: 0,
        last_exit: None,
    });
    init.supervisor.start_due(init.sys, &mut init.log, now);
    // Events sent before udevd listens are lost: wait for its control socket.
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(20);
    while !init.sys.exists(Path::new(UDEV_CONTROL)) && waited < UDEVD_START_WAIT {
        init.sys.sleep(step);
        waited += step;
    }
    let listening = started.elapsed();
    if !init.sys.exists(Path::new(UDEV_CONTROL)) {
        bail!(
            "udevd did not create {UDEV_CONTROL} within {} s: no coldplug events replayed",
            UDEVD_START_WAIT.as_secs()
        );
    }
    let timeout = node.hardware.settle_timeout.0;
    // Block and misc devices only: coldplug already loaded the modules of every
    // device present, so replaying the other events would only make udev's kmod
    // builtin find those modules loaded (seconds under emulation). The disks' events
    // carry the by-* names, the misc devices' the names rules give them (DLM's);
    // events of devices that appear from now on reach udevd live.
    if let Some(e) = udevadm(init, &TRIGGER_COLDPLUG, timeout) {
        bail!("{e}");
    }
    // udevd handles the events while the network step runs; the `udev settle` step
    // waits for them before the storage step names disks by-id.
    init.udev_settle_pending = Some(timeout);
    init.log.line(&format!(
        "udev: block and misc events replayed (udevd listening after {:.1} s)",
        listening.as_secs_f64()
    ));
    Ok(())
}

/// Boot step `udev settle` (before storage): waits, bounded by `[hardware]
/// settle-timeout`, until udevd has handled the events [`start`] replayed, so that
/// the `/dev/disk/by-*` names exist. Nothing to do when udev did not start.
pub fn settle(init: &mut Init) -> Result<()> {
    let Some(timeout) = init.udev_settle_pending.take() else {
        return Ok(());
    };
    let started = Instant::now();
    let settle = format!("--timeout={}", timeout.as_secs().max(1));
    let failed = udevadm(init, &["settle", &settle], timeout + Duration::from_secs(5));
    let names = init
        .sys
        .list_dir(Path::new("/dev/disk/by-id"))
        .map(|l| l.len())
        .unwrap_or(0);
    init.log.line(&format!(
        "udev: coldplug events handled (settle waited {:.1} s); /dev/disk/by-id has {names} names",
        started.elapsed().as_secs_f64(),
    ));
    match failed {
        Some(e) => bail!("{e}"),
        None => Ok(()),
    }
}

/// Runs `udevadm ARGS`; the error, if any, as a message.
fn udevadm(init: &mut Init, args: &[&str], timeout: Duration) -> Option<String> {
    let argv: Vec<String> = std::iter::once(UDEVADM)
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    match init.sys.run_capture(&argv, timeout) {
        Ok((st, _)) if st.success() => None,
        Ok((st, _)) => Some(format!("`{}` ended with {st}", argv.join(" "))),
        Err(e) => Some(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::config::node::NodeConfig;
    use crate::init::Logger;
    use crate::sys::{FakeSys, FAKE_RUN_DIR};

    const NODE: &str = "hostname = \"n\"\n[modules]\nblacklist = [\"qla2xxx\"]\n\
        params = { qla2xxx_scst = \"qlini_mode=disabled\" }\n[hardware]\nsettle-timeout = \"10s\"\n";

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn run(root: &Path) -> (anyhow::Result<()>, Vec<String>, Vec<String>, Vec<String>) {
        let mut sys = FakeSys::new(root);
        let mut init = Init::new(&mut sys, Logger::capture());
        init.node = Some(NodeConfig::parse(Path::new("node.toml"), NODE).unwrap());
        let r = start(&mut init).and_then(|()| settle(&mut init));
        let log = init.log.lines().to_vec();
        let services = init
            .supervisor
            .services
            .iter()
            .map(|s| s.svc.argv.join(" "))
            .collect();
        drop(init);
        (
            r,
            sys.ops.iter().map(ToString::to_string).collect(),
            log,
            services,
        )
    }

    #[test]
    fn without_udev_the_step_says_so_and_still_writes_modprobe_conf() {
        let t = tempfile::tempdir().unwrap();
        let (r, ops, log, services) = run(t.path());
        r.unwrap();
        assert_eq!(
            ops,
            [
                "mkdir /etc/modprobe.d",
                "write_durable /etc/modprobe.d/sanforge.conf (208 bytes)"
            ]
        );
        assert!(log[0].starts_with("udev: not in the image (no /lib/systemd/systemd-udevd)"));
        assert!(services.is_empty());
        let conf = std::fs::read_to_string(t.path().join("etc/modprobe.d/sanforge.conf")).unwrap();
        assert!(
            conf.ends_with("blacklist qla2xxx\noptions qla2xxx_scst qlini_mode=disabled\n"),
            "{conf}"
        );
    }

    #[test]
    fn udevd_is_supervised_then_block_and_misc_events_are_replayed_and_settled() {
        let t = tempfile::tempdir().unwrap();
        put(t.path(), "lib/systemd/systemd-udevd", "");
        put(t.path(), "run/udev/control", "");
        put(t.path(), &format!("{FAKE_RUN_DIR}/udevadm"), "");
        std::fs::create_dir_all(t.path().join("dev/disk/by-id")).unwrap();
        put(t.path(), "dev/disk/by-id/wwn-0x5000c500a1b2c3d4", "");
        let (r, ops, log, services) = run(t.path());
        r.unwrap();
        assert_eq!(
            &ops[2..],
            [
                "spawn /lib/systemd/systemd-udevd --resolve-names=never",
                "run /bin/udevadm trigger --type=devices --action=add --subsystem-match=block \
                 --subsystem-match=misc",
                "run /bin/udevadm settle --timeout=10",
            ]
        );
        assert_eq!(
            services,
            ["/lib/systemd/systemd-udevd --resolve-names=never"]
        );
        assert!(
            log.iter().any(
                |l| l.starts_with("udev: coldplug events handled (settle waited ")
                    && l.ends_with("/dev/disk/by-id has 1 names")
            ),
            "{log:?}"
        );
    }

    #[test]
    fn a_udevd_that_never_listens_or_a_failing_udevadm_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        put(t.path(), "lib/systemd/systemd-udevd", "");
        let (r, ops, _, _) = run(t.path());
        assert!(r
            .unwrap_err()
            .to_string()
            .contains("udevd did not create /run/udev/control within 5 s"));
        assert!(!ops.iter().any(|o| o.starts_with("run ")));
        put(t.path(), "run/udev/control", "");
        put(t.path(), &format!("{FAKE_RUN_DIR}/udevadm"), "");
        put(t.path(), &format!("{FAKE_RUN_DIR}/udevadm.rc"), "1");
        let (r, _, _, _) = run(t.path());
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("`/bin/udevadm trigger --type=devices --action=add --subsystem-match=block --subsystem-match=misc` ended with exit status 1"),
            "{e}"
        );
    }

    #[test]
    fn the_settle_step_waits_only_after_a_replay_and_reports_a_failing_settle() {
        let t = tempfile::tempdir().unwrap();
        let mut sys = FakeSys::new(t.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        // Nothing replayed (no udev in the image): nothing to wait for.
        settle(&mut init).unwrap();
        assert!(init.log.lines().is_empty());
        init.udev_settle_pending = Some(Duration::from_secs(7));
        put(t.path(), &format!("{FAKE_RUN_DIR}/udevadm"), "");
        put(t.path(), &format!("{FAKE_RUN_DIR}/udevadm.rc"), "1");
        let e = settle(&mut init).unwrap_err().to_string();
        assert!(
            e.contains("`/bin/udevadm settle --timeout=7` ended with exit status 1"),
            "{e}"
        );
        assert_eq!(init.udev_settle_pending, None);
        drop(init);
        let ops: Vec<String> = sys.ops.iter().map(ToString::to_string).collect();
        assert_eq!(ops, ["run /bin/udevadm settle --timeout=7"]);
    }

    #[test]
    fn modprobe_conf_has_blacklist_and_options() {
        let m = Modules {
            load: vec!["qla2xxx_scst".into()],
            params: [
                (
                    "qla2xxx-scst".to_string(),
                    "qlini_mode=disabled".to_string(),
                ),
                ("loop".to_string(), "  ".to_string()),
            ]
            .into_iter()
            .collect(),
            blacklist: vec!["qla2xxx".into(), "tcm-qla2xxx".into()],
        };
        assert_eq!(
            render_modprobe_conf(&m)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>(),
            [
                "blacklist qla2xxx",
                "blacklist tcm_qla2xxx",
                "options qla2xxx_scst qlini_mode=disabled"
            ]
        );
    }
}
