//! The rows of the fault matrix that restart a node on its disks
//! ([`Pair::restart`]): death during resync and the rolling upgrade.

use super::{fence_done, planned_move, SECOND_IMAGE};
use crate::common::cluster::*;
use std::time::{Duration, Instant};

pub fn resync_death(
    lab: &Lab,
    pair: &mut Pair,
    run: &Run,
    p: usize,
) -> (usize, Result<String, String>) {
    let s = 1 - p;
    // A full resync at a crawl (64 KiB/s for 64 MiB) keeps the peer SyncTarget for
    // the whole row; the rate is set on both ends.
    let slow = "drbdadm -- --c-plan-ahead=0 --resync-rate=64K disk-options r0";
    let _ = pair.node(p).sh(slow);
    let started = pair
        .node(s)
        .sh(&format!(
            "{slow} && drbdadm invalidate r0; sleep 3; cat /proc/drbd"
        ))
        .unwrap_or_default();
    if !started.contains("cs:SyncTarget") || !started.contains("ds:Inconsistent") {
        return (
            p,
            Err(format!("{} is not SyncTarget:\n{started}", NAMES[s])),
        );
    }
    let gaps = run.gaps();
    pair.node_mut(p).quit();
    // Long enough for the fence (priority-fencing-delay 15 s + sbd msgwait 20 s) and a
    // promotion that must not come.
    std::thread::sleep(Duration::from_secs(90));
    let drbd = pair.node(s).sh("cat /proc/drbd").unwrap_or_default();
    let promoted_s = run.portal() == s || drbd.contains("ro:Primary");
    let fenced = fence_done(pair, s, p, String::new());
    // The operator's step after the fence: clear the dead node's sbd slot, then power
    // it on again; it is UpToDate, becomes SyncSource and Primary again.
    let _ = pair
        .node(s)
        .sh(&format!("sbd -d {SBD_DISK} message {} clear", NAMES[p]));
    pair.restart(lab, p, &lab.out);
    let back = takeover(run, gaps, p, Duration::from_secs(240));
    let met = match (promoted_s, fenced, back) {
        (true, _, _) => Err(format!("{} promoted while Inconsistent:\n{drbd}", NAMES[s])),
        (false, Err(e), _) => Err(e),
        (false, Ok(_), Err(e)) => Err(format!("{e} after {} came back", NAMES[p])),
        (false, Ok(_), Ok(m)) => Ok(format!(
            "{} stayed Secondary/Inconsistent, {} fenced; {m} after its restart",
            NAMES[s], NAMES[p]
        )),
    };
    (p, met)
}

/// Waits until DRBD is Connected and UpToDate on both sides, as node `i` sees it.
pub fn wait_uptodate(pair: &Pair, i: usize, within: Duration) -> Result<(), String> {
    let end = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < end {
        last = pair.node(i).sh("cat /proc/drbd").unwrap_or_default();
        if last.contains("cs:Connected") && last.contains("ds:UpToDate/UpToDate") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("{} not UpToDate/UpToDate:\n{last}", NAMES[i]))
}

/// One node of the rolling upgrade: standby, a clean reboot into the second image,
/// resync, unstandby.
fn upgrade_node(
    lab: &Lab,
    pair: &mut Pair,
    i: usize,
    image: &std::path::Path,
) -> Result<(), String> {
    let name = NAMES[i];
    let other = pair.node(1 - i);
    other
        .sh(&format!(
            "crm_attribute -N {name} -n standby -v on && crm_resource --wait --timeout=120s"
        ))
        .map_err(|e| e.to_string())?;
    // SIGUSR1 to the init: a clean reboot (services stopped in reverse), which ends
    // the VM (-no-reboot); not a fence.
    pair.node_mut(i).killed = true;
    let _ = pair.node(i).sh("kill -USR1 1");
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end && !pair.node_mut(i).exited() {
        std::thread::sleep(Duration::from_millis(200));
    }
    if !pair.node_mut(i).exited() {
        return Err(format!("{name} did not reboot"));
    }
    pair.restart(lab, i, image);
    pair.node(1 - i)
        .sh(&format!(
            "crm_attribute -N {name} -n standby -v off && crm_resource --wait --timeout=120s"
        ))
        .map_err(|e| e.to_string())?;
    wait_uptodate(pair, i, Duration::from_secs(180))
}

pub fn rolling_upgrade(
    lab: &Lab,
    pair: &mut Pair,
    run: &Run,
    p: usize,
) -> (usize, Result<String, String>) {
    let Some(image) = SECOND_IMAGE.get() else {
        return (p, Err("the second image was not built".to_string()));
    };
    let version = |pair: &Pair, i: usize| {
        pair.node(i)
            .sh("sed -n 's/^IMAGE_VERSION=//p' /etc/os-release")
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let old = version(pair, p);
    let s = 1 - p;
    // The secondary first; then the Promoted role moves to it and the old primary
    // follows.
    if let Err(e) = upgrade_node(lab, pair, s, image) {
        return (p, Err(format!("{}: {e}", NAMES[s])));
    }
    let moved = planned_move(lab, pair, run, p);
    if let Err(e) = moved.1 {
        return (p, Err(format!("move to {}: {e}", NAMES[s])));
    }
    let _ = pair.node(s).sh("crm_resource --clear -r drbd-r0-clone");
    if let Err(e) = upgrade_node(lab, pair, p, image) {
        return (s, Err(format!("{}: {e}", NAMES[p])));
    }
    let new = [version(pair, 0), version(pair, 1)];
    let met = if new[0] == new[1] && !new[0].is_empty() && new[0] != old {
        if run.advances(10, Duration::from_secs(60)) {
            Ok(format!(
                "{old} -> {}, I/O on {}",
                new[0],
                NAMES[run.portal().min(1)]
            ))
        } else {
            Err("no I/O after the upgrade".to_string())
        }
    } else {
        Err(format!("image versions before {old}, after {new:?}"))
    };
    (run.portal().min(1), met)
}
