//! The DRBD agent over the recording fake: `/proc/drbd` is a file of the fake's tree,
//! and the tools answer from `fake-run/` (a `drbdsetup-84.primary.tree/proc/drbd` is
//! what `drbdsetup-84 primary 0` leaves behind). Each test checks the exit code and the exact
//! processes the action started.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::sys::FakeSys;
use std::fs;

const PRIMARY: &str =
    "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n";
const SECONDARY: &str =
    "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----\n";
const LOST_PEER: &str =
    "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----\n";
const SYNC_TARGET: &str =
    "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----\n";
const OUTDATED: &str =
    "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:WFConnection ro:Secondary/Unknown ds:Outdated/DUnknown C r-----\n";
const DOWN: &str = "version: 8.4.11 (api:1/proto:86-101)\n";

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(proc: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("proc")).unwrap();
        fs::write(dir.path().join("proc/drbd"), proc).unwrap();
        let run = dir.path().join("fake-run");
        fs::create_dir_all(&run).unwrap();
        for tool in ["drbdadm", "drbdsetup-84", "crm_attribute", "modprobe"] {
            fs::write(run.join(tool), "").unwrap();
        }
        Lab { dir }
    }

    /// The tool of `sub`: drbdsetup-84 for role changes, drbdadm for the rest.
    fn tool(sub: &str) -> &'static str {
        match sub {
            "primary" | "secondary" => "drbdsetup-84",
            _ => "drbdadm",
        }
    }

    /// `TOOL SUB` leaves `/proc/drbd` as `proc`.
    fn leaves(&self, sub: &str, proc: &str) {
        let run = self.dir.path().join("fake-run");
        let tool = Self::tool(sub);
        fs::write(run.join(format!("{tool}.{sub}")), "").unwrap();
        let tree = run.join(format!("{tool}.{sub}.tree/proc"));
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("drbd"), proc).unwrap();
    }

    /// `TOOL SUB` fails with `rc` and `err` on stderr, changing nothing.
    fn fails(&self, sub: &str, rc: i32, err: &str) {
        let run = self.dir.path().join("fake-run");
        let tool = Self::tool(sub);
        fs::write(run.join(format!("{tool}.{sub}")), "").unwrap();
        fs::write(run.join(format!("{tool}.{sub}.rc")), rc.to_string()).unwrap();
        fs::write(run.join(format!("{tool}.{sub}.err")), err).unwrap();
    }

    /// Runs `action` with `extra` variables; its code, the processes it ran, its log.
    fn act(&self, action: &str, extra: &[(&str, &str)]) -> (Rc, Vec<String>, String) {
        let (rc, ops, log) = self.act_ops(action, extra);
        let runs = ops
            .iter()
            .filter_map(|o| o.strip_prefix("run ").map(str::to_string))
            .collect();
        (rc, runs, log)
    }

    /// [`Lab::act`] with every operation the fake recorded, in order.
    fn act_ops(&self, action: &str, extra: &[(&str, &str)]) -> (Rc, Vec<String>, String) {
        let mut sys = FakeSys::new(self.dir.path());
        let mut vars = vec![
            ("OCF_RESOURCE_INSTANCE", "drbd-r0:1"),
            ("OCF_RESKEY_drbd_resource", "r0"),
            ("OCF_RESKEY_drbd_minor", "0"),
            ("OCF_RESKEY_CRM_meta_interval", "31000"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
        ];
        vars.extend_from_slice(extra);
        let env = Env::from_pairs(vars);
        let (mut out, mut log) = (Vec::new(), Vec::new());
        let rc = run_with(Some(action), &env, &mut sys, &mut out, &mut log);
        let ops = sys.ops.iter().map(|o| o.to_string()).collect();
        (rc, ops, String::from_utf8(log).unwrap())
    }
}

const SET_10000: &str = "crm_attribute -q -n master-drbd-r0 -l reboot -v 10000";
const REMOVE: &str = "crm_attribute -q -n master-drbd-r0 -l reboot -D";

#[test]
fn monitor_reads_proc_drbd_and_sets_an_unchanged_score_once() {
    let lab = Lab::new(PRIMARY);
    assert_eq!(
        lab.act("monitor", &[]),
        (Rc::RunningPromoted, vec![SET_10000.into()], String::new())
    );
    // Unchanged: no process at all.
    assert_eq!(lab.act("monitor", &[]).1, Vec::<String>::new());
    // A probe sets it again (a restarted Pacemaker forgot it).
    let probe = [("OCF_RESKEY_CRM_meta_interval", "0")];
    assert_eq!(lab.act("monitor", &probe).1, vec![SET_10000.to_string()]);
    fs::write(lab.dir.path().join("proc/drbd"), LOST_PEER).unwrap();
    let (rc, runs, _) = lab.act("monitor", &[]);
    assert_eq!(rc, Rc::Success);
    assert_eq!(
        runs,
        ["crm_attribute -q -n master-drbd-r0 -l reboot -v 1000"]
    );
    fs::write(lab.dir.path().join("proc/drbd"), DOWN).unwrap();
    assert_eq!(
        lab.act("monitor", &[]),
        (Rc::NotRunning, vec![REMOVE.into()], String::new())
    );
    // A probe of a stopped resource leaves the score alone (as ocf:linbit:drbd).
    assert_eq!(lab.act("monitor", &probe).1, Vec::<String>::new());
    fs::remove_file(lab.dir.path().join("proc/drbd")).unwrap();
    assert_eq!(lab.act("monitor", &probe).0, Rc::NotRunning);
}

#[test]
fn promote_runs_drbdadm_primary_once() {
    let lab = Lab::new(LOST_PEER);
    lab.leaves(
        "primary",
        "version: 8.4.11\n 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----\n",
    );
    let (rc, runs, log) = lab.act("promote", &[("OCF_RESKEY_CRM_meta_interval", "0")]);
    assert_eq!(rc, Rc::Success, "{log}");
    assert_eq!(runs, ["/lib/drbd/drbdsetup-84 primary 0", SET_10000]);
    assert!(log.contains("drbd(drbd-r0:1)["), "{log}");
    assert!(log.contains("INFO: promote: r0 is Primary"), "{log}");
    // Promoting a Primary changes nothing.
    assert_eq!(lab.act("promote", &[]).1, Vec::<String>::new());
}

#[test]
fn inconsistent_or_outdated_data_is_never_promoted() {
    for proc in [SYNC_TARGET, OUTDATED] {
        let lab = Lab::new(proc);
        lab.leaves("primary", PRIMARY);
        let (rc, runs, log) = lab.act("promote", &[]);
        assert_eq!(rc, Rc::ErrGeneric);
        assert_eq!(runs, [REMOVE], "no drbdsetup primary");
        assert!(
            log.contains("ERROR: promote: refusing to promote r0: its local disk is"),
            "{log}"
        );
    }
}

#[test]
fn drbd_refusing_for_good_is_not_retried() {
    let lab = Lab::new(LOST_PEER);
    lab.fails(
        "primary",
        17,
        "0: State change failed: (-7) Refusing to be Primary while peer is not outdated",
    );
    let (rc, runs, log) = lab.act("promote", &[]);
    assert_eq!(rc, Rc::ErrGeneric);
    assert_eq!(runs, ["/lib/drbd/drbdsetup-84 primary 0"]);
    assert!(
        log.contains("Refusing to be Primary while peer is not outdated"),
        "{log}"
    );
}

#[test]
fn a_passing_refusal_is_retried_until_the_timeout() {
    let lab = Lab::new(LOST_PEER);
    lab.fails(
        "primary",
        11,
        "0: State change failed: (-1) Multiple primaries not allowed by config",
    );
    // 4 s timeout: a 2 s budget, 300 ms between quick tries: 7 tries.
    let (rc, runs, log) = lab.act("promote", &[("OCF_RESKEY_CRM_meta_timeout", "4000")]);
    assert_eq!(rc, Rc::ErrGeneric);
    assert_eq!(runs.len(), 7, "{runs:?}");
    assert!(
        runs.iter().all(|r| r == "/lib/drbd/drbdsetup-84 primary 0"),
        "{runs:?}"
    );
    assert!(
        log.contains("Multiple primaries not allowed by config; giving up"),
        "{log}"
    );
}

#[test]
fn demote_and_stop() {
    let lab = Lab::new(PRIMARY);
    lab.leaves("secondary", SECONDARY);
    let (rc, runs, _) = lab.act("demote", &[]);
    assert_eq!(rc, Rc::Success);
    assert_eq!(runs, ["/lib/drbd/drbdsetup-84 secondary 0", SET_10000]);
    let lab = Lab::new(SECONDARY);
    lab.leaves("down", DOWN);
    let (rc, runs, _) = lab.act("stop", &[]);
    assert_eq!(rc, Rc::Success);
    assert_eq!(runs, ["drbdadm down r0", REMOVE]);
    // A stop that cannot finish says so: Pacemaker fences the node.
    let lab = Lab::new(SECONDARY);
    lab.fails(
        "down",
        11,
        "0: State change failed: (-12) Device is held open by someone",
    );
    let (rc, _, log) = lab.act("stop", &[("OCF_RESKEY_CRM_meta_timeout", "3000")]);
    assert_eq!(rc, Rc::ErrGeneric);
    assert!(log.contains("held open by someone; giving up"), "{log}");
}

#[test]
fn start_adjusts_a_stopped_resource_and_scores_it() {
    let lab = Lab::new(DOWN);
    lab.leaves("adjust", SECONDARY);
    let (rc, runs, log) = lab.act("start", &[]);
    assert_eq!(rc, Rc::Success, "{log}");
    assert_eq!(runs, ["drbdadm adjust r0", SET_10000]);
    // Without a peer it waits a few seconds, then scores what it has.
    let lab = Lab::new(DOWN);
    lab.leaves("adjust", LOST_PEER);
    let (rc, runs, _) = lab.act("start", &[]);
    assert_eq!(rc, Rc::Success);
    assert_eq!(
        runs,
        [
            "drbdadm adjust r0",
            "crm_attribute -q -n master-drbd-r0 -l reboot -v 1000"
        ]
    );
}

#[test]
fn bad_parameters_and_the_minor_from_drbdadm() {
    let lab = Lab::new(PRIMARY);
    let (rc, _, log) = lab.act("monitor", &[("OCF_RESKEY_drbd_resource", "-x")]);
    assert_eq!(rc, Rc::ErrConfigured);
    assert!(
        log.contains("drbd_resource '-x' is not a DRBD resource name"),
        "{log}"
    );
    let (rc, _, log) = lab.act("monitor", &[("OCF_RESKEY_drbd_minor", "zero")]);
    assert_eq!(rc, Rc::ErrConfigured);
    assert!(
        log.contains("drbd_minor 'zero' is not a minor number"),
        "{log}"
    );
    // Without drbd_minor, drbdadm sh-minor says which line to read.
    fs::write(lab.dir.path().join("fake-run/drbdadm.sh-minor"), "0\n").unwrap();
    let (rc, runs, _) = lab.act("monitor", &[("OCF_RESKEY_drbd_minor", "")]);
    assert_eq!(rc, Rc::RunningPromoted);
    assert_eq!(runs, ["drbdadm sh-minor r0", SET_10000]);
    let (mut out, mut log) = (Vec::new(), Vec::new());
    let mut sys = FakeSys::new(lab.dir.path());
    let rc = run_with(
        Some("meta-data"),
        &Env::default(),
        &mut sys,
        &mut out,
        &mut log,
    );
    assert_eq!(rc, Rc::Success);
    let xml = String::from_utf8(out).unwrap();
    assert!(
        xml.contains("<parameter name=\"drbd_resource\" unique=\"1\" required=\"1\">"),
        "{xml}"
    );
}

/// The SCST target of DRBD resource r0 as the fake's tree: device group r0 with
/// target groups alpha (this node, unavailable) and beta, the port `iscsi/iqn.x`
/// disabled; and the parameters that make the drbd agent carry it.
fn with_scst_target(lab: &Lab) -> Vec<(&'static str, &'static str)> {
    let s = lab.dir.path().join("sys/kernel/scst_tgt");
    let put = |p: &str, v: &str| {
        let f = s.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, v).unwrap();
    };
    put("version", "3.10.0\n");
    put("last_sysfs_mgmt_res", "0\n");
    put("device_groups/r0/devices/disk0", "");
    put(
        "device_groups/r0/target_groups/alpha/state",
        "unavailable\n",
    );
    put("device_groups/r0/target_groups/beta/state", "active\n");
    put("targets/iscsi/iqn.x/enabled", "0\n");
    vec![
        ("OCF_RESKEY_stack", "scst"),
        ("OCF_RESKEY_device_group", "r0"),
        ("OCF_RESKEY_local_target_group", "alpha"),
        ("OCF_RESKEY_remote_target_group", "beta"),
        ("OCF_RESKEY_ports", "iscsi/iqn.x"),
        ("OCF_RESKEY_promoted_state", "active"),
        ("OCF_RESKEY_unpromoted_state", "unavailable"),
    ]
}

/// What the target's files hold: alpha's state, beta's, the port's `enabled`.
fn target_files(lab: &Lab) -> [String; 3] {
    let s = lab.dir.path().join("sys/kernel/scst_tgt");
    [
        "device_groups/r0/target_groups/alpha/state",
        "device_groups/r0/target_groups/beta/state",
        "targets/iscsi/iqn.x/enabled",
    ]
    .map(|p| fs::read_to_string(s.join(p)).unwrap().trim().to_string())
}

/// With the target's parameters, one action does both parts in the order the device
/// needs: DRBD first on start and promote, the target first on demote and stop; the
/// monitor answers for both.
#[test]
fn a_drbd_resource_carrying_its_target_switches_both_in_one_action() {
    let lab = Lab::new(DOWN);
    let target = with_scst_target(&lab);
    // Nothing started: both stopped.
    assert_eq!(lab.act("monitor", &target).0, Rc::NotRunning);
    lab.leaves("adjust", SECONDARY);
    let (rc, runs, log) = lab.act("start", &target);
    assert_eq!(rc, Rc::Success, "{log}");
    assert_eq!(runs, ["drbdadm adjust r0", SET_10000]);
    assert_eq!(target_files(&lab), ["unavailable", "active", "1"]);
    assert_eq!(lab.act("monitor", &target).0, Rc::Success);

    lab.leaves("primary", PRIMARY);
    let (rc, runs, log) = lab.act("promote", &target);
    assert_eq!(rc, Rc::Success, "{log}");
    assert_eq!(runs, ["/lib/drbd/drbdsetup-84 primary 0"]);
    assert_eq!(target_files(&lab), ["active", "unavailable", "1"]);
    assert_eq!(lab.act("monitor", &target).0, Rc::RunningPromoted);

    // Demote: the target's group leaves active before DRBD goes Secondary.
    lab.leaves("secondary", SECONDARY);
    let (rc, ops, log) = lab.act_ops("demote", &target);
    assert_eq!(rc, Rc::Success, "{log}");
    let at = |needle: &str| {
        ops.iter()
            .position(|o| o.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {ops:#?}"))
    };
    assert!(
        at("target_groups/alpha/state") < at("drbdsetup-84 secondary 0"),
        "{ops:#?}"
    );
    assert_eq!(target_files(&lab), ["unavailable", "active", "1"]);
    assert_eq!(lab.act("monitor", &target).0, Rc::Success);

    // DRBD Primary behind the cluster's back while the target is unpromoted: failed
    // promoted, named.
    fs::write(lab.dir.path().join("proc/drbd"), PRIMARY).unwrap();
    let (rc, _, log) = lab.act("monitor", &target);
    assert_eq!(rc, Rc::FailedPromoted);
    assert!(
        log.contains("DRBD is promoted but the target is started (unpromoted)"),
        "{log}"
    );
    fs::write(lab.dir.path().join("proc/drbd"), SECONDARY).unwrap();

    // Stop: the target's group offline and the port disabled, then DRBD down.
    lab.leaves("down", DOWN);
    let (rc, runs, log) = lab.act("stop", &target);
    assert_eq!(rc, Rc::Success, "{log}");
    assert_eq!(runs, ["drbdadm down r0", REMOVE]);
    assert_eq!(target_files(&lab), ["offline", "active", "0"]);
    assert_eq!(lab.act("monitor", &target).0, Rc::NotRunning);
}

/// A target that cannot be demoted keeps DRBD Primary (it still holds the device) and
/// the action fails; bad target parameters are a configuration error.
#[test]
fn a_target_that_fails_keeps_drbd_as_it_is() {
    let lab = Lab::new(PRIMARY);
    let mut target = with_scst_target(&lab);
    target.retain(|(k, _)| *k != "OCF_RESKEY_ports");
    target.push(("OCF_RESKEY_ports", "iscsi/iqn.absent"));
    fs::write(
        lab.dir
            .path()
            .join("sys/kernel/scst_tgt/device_groups/r0/target_groups/alpha/state"),
        "active\n",
    )
    .unwrap();
    lab.leaves("secondary", SECONDARY);
    let (rc, runs, log) = lab.act("demote", &target);
    assert_ne!(rc, Rc::Success, "{log}");
    assert!(
        !runs.iter().any(|r| r.contains("secondary")),
        "{runs:?}\n{log}"
    );
    let mut bad = with_scst_target(&lab);
    bad.push(("OCF_RESKEY_promoted_state", "sideways"));
    let (rc, runs, log) = lab.act("promote", &bad);
    assert_eq!(rc, Rc::ErrConfigured, "{log}");
    assert!(runs.is_empty(), "{runs:?}");
    assert!(log.contains("sideways"), "{log}");
}

/// On the cluster file's preferred node, start scores a resource that is Secondary
/// on both sides one point higher (the first promotion goes there) and monitors keep
/// that while it applies; a demote (both Secondary for a moment during a switchover)
/// or another node never gets it, and once a node is Primary the scores are equal.
#[test]
fn the_preferred_node_gets_the_first_promotion() {
    let idle =
        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Secondary/Secondary ds:UpToDate/UpToDate C r-----\n";
    let on = |node| {
        [
            ("OCF_RESKEY_preferred_node", "alpha"),
            ("OCF_RESKEY_CRM_meta_on_node", node),
        ]
    };
    let set = |node: &str, n: u32| {
        format!("crm_attribute -q -n master-drbd-r0 -l reboot -N {node} -v {n}")
    };
    let lab = Lab::new(DOWN);
    lab.leaves("adjust", idle);
    let (rc, runs, log) = lab.act("start", &on("alpha"));
    assert_eq!(rc, Rc::Success, "{log}");
    assert_eq!(runs, ["drbdadm adjust r0".to_string(), set("alpha", 10001)]);
    // Monitors keep it (no process) while both are Secondary.
    assert_eq!(lab.act("monitor", &on("alpha")).1, Vec::<String>::new());
    // The peer became Primary: equal scores.
    fs::write(lab.dir.path().join("proc/drbd"), SECONDARY).unwrap();
    assert_eq!(lab.act("monitor", &on("alpha")).1, [set("alpha", 10000)]);
    // Both Secondary again (the moment of a switchover): a monitor does not give it.
    fs::write(lab.dir.path().join("proc/drbd"), idle).unwrap();
    assert_eq!(lab.act("monitor", &on("alpha")).1, Vec::<String>::new());
    // A demote leaves the usual score.
    fs::write(lab.dir.path().join("proc/drbd"), PRIMARY).unwrap();
    lab.leaves("secondary", idle);
    let (rc, runs, _) = lab.act("demote", &on("alpha"));
    assert_eq!(rc, Rc::Success);
    assert!(!runs.iter().any(|r| r.ends_with("10001")), "{runs:?}");
    // Another node's start: the usual score.
    let lab = Lab::new(DOWN);
    lab.leaves("adjust", idle);
    assert_eq!(
        lab.act("start", &on("beta")).1,
        ["drbdadm adjust r0".to_string(), set("beta", 10000)]
    );
}

/// Active/active (seed 003): device group r1, Promoted on this node, lists the same
/// port in its target group alpha. Stopping r0 (the target offline, then DRBD down)
/// leaves the port enabled for r1, and r0's monitor says stopped.
#[test]
fn stop_leaves_the_port_another_device_group_uses_enabled() {
    let lab = Lab::new(SECONDARY);
    let target = with_scst_target(&lab);
    let s = lab.dir.path().join("sys/kernel/scst_tgt");
    let put = |p: &str, v: &str| {
        let f = s.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, v).unwrap();
    };
    put(
        "device_groups/r0/target_groups/alpha/iqn.x/rel_tgt_id",
        "1\n",
    );
    put("device_groups/r1/target_groups/alpha/state", "active\n");
    put(
        "device_groups/r1/target_groups/alpha/iqn.x/rel_tgt_id",
        "1\n",
    );
    put("device_groups/r1/target_groups/beta/state", "unavailable\n");
    put("targets/iscsi/iqn.x/enabled", "1\n");
    lab.leaves("down", DOWN);
    let (rc, runs, log) = lab.act("stop", &target);
    assert_eq!(rc, Rc::Success, "{log}");
    assert_eq!(runs, ["drbdadm down r0", REMOVE]);
    assert_eq!(target_files(&lab), ["offline", "active", "1"]);
    assert!(
        log.contains("enabled: device group r1 (target group alpha: active) still uses it"),
        "{log}"
    );
    assert_eq!(lab.act("monitor", &target).0, Rc::NotRunning);
}
