//! The SCST cluster lab of tests/scst_cluster.rs and tests/scst_cluster_aa.rs: the
//! image built with the SCST release imported, the cluster's and SCST's state for
//! failure messages, sessions and REPORT TARGET PORT GROUPS through each node's portal,
//! the DLM's lockspace members, planned moves, and the figures table's first rows.

use super::cluster::*;
use super::iscsi::{scsi_error, Session};
use super::scsi_spc::*;
use std::time::{Duration, Instant};

/// The cluster's state (crm_mon, DRBD, Pacemaker's log) and SCST's: ALUA states, the
/// devices' `active`, the ports, the DLM, SCST's kernel messages.
pub fn states(pair: &Pair) -> String {
    let cmd = "S=/sys/kernel/scst_tgt; for f in $S/device_groups/*/target_groups/*/state \
               $S/devices/*/active $S/devices/*/cluster_mode $S/targets/iscsi/enabled \
               $S/targets/iscsi/*/enabled $S/targets/iscsi/*/sessions/*/commands; do \
               echo \"$f: $(head -n1 $f)\"; done; dlm_tool ls; dlm_tool status; ls -l /dev/misc; \
               ps | grep -v ' \\[.*\\]$'; \
               cat /etc/dlm/dlm.conf | grep -v '^#'; dmesg | grep -i 'scst\\|dlm' | tail -n 25";
    let scst: Vec<String> = pair
        .nodes
        .iter()
        .flatten()
        .map(|n| format!("--- {} SCST ---\n{}", n.name, n.sh(cmd).unwrap_or_default()))
        .collect();
    format!("{}\n{}", pair.states(), scst.join("\n"))
}

/// A session to portal `i`, unit attentions cleared (a standby port answers TEST UNIT
/// READY with NOT READY, which is fine here).
pub fn session(pair: &Pair, i: usize) -> Session {
    session_on(pair, i, 0)
}

/// [`session`] addressing LUN `lun`.
pub fn session_on(pair: &Pair, i: usize, lun: u16) -> Session {
    let p = &pair.portals[i];
    let mut s = Session::login(p.addr, &p.target, INITIATOR, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("login to {}: {e}", NAMES[i]));
    s.set_lun(lun);
    let _ = s.clear_unit_attentions(5);
    // A standby port answers TEST UNIT READY with NOT READY and keeps its pending unit
    // attentions (power on 29/00, ALUA state changed 2A/06) for the next command.
    // REPORT TARGET PORT GROUPS is served in every ALUA state: it takes them, as an
    // initiator's mid-layer retries a command that got one.
    for _ in 0..8 {
        match s.report_target_port_groups() {
            Err(e) if scsi_error(&e).is_some_and(|x| x.is_unit_attention()) => continue,
            _ => break,
        }
    }
    s
}

/// RTPG through both portals: (the answers agree, the state of each node's group).
/// Groups are numbered in node order from 1 (src/ha/render/scst.rs).
pub fn alua_states(pair: &Pair, lun: u16) -> [Vec<PortGroup>; 2] {
    [0, 1].map(|i| {
        let mut s = session_on(pair, i, lun);
        let g = s
            .report_target_port_groups()
            .unwrap_or_else(|e| panic!("RTPG for LUN {lun} through {}: {e}", NAMES[i]));
        let _ = s.logout();
        g
    })
}

pub fn state_of(groups: &[PortGroup], node: usize) -> Option<AluaState> {
    groups
        .iter()
        .find(|g| g.id as usize == node + 1)
        .map(|g| g.state)
}

/// Checks that both portals report `primary`'s group promoted and the other's
/// unpromoted; the states, for the table.
pub fn check_alua(
    pair: &Pair,
    primary: usize,
    promoted: AluaState,
    unpromoted: AluaState,
) -> String {
    check_alua_on(pair, 0, primary, promoted, unpromoted)
}

/// [`check_alua`] for LUN `lun`.
pub fn check_alua_on(
    pair: &Pair,
    lun: u16,
    primary: usize,
    promoted: AluaState,
    unpromoted: AluaState,
) -> String {
    let answers = alua_states(pair, lun);
    for (i, g) in answers.iter().enumerate() {
        assert_eq!(
            (state_of(g, primary), state_of(g, 1 - primary)),
            (Some(promoted), Some(unpromoted)),
            "RTPG for LUN {lun} through {} with {} Promoted: {g:?}\n{}",
            NAMES[i],
            NAMES[primary],
            states(pair)
        );
    }
    format!(
        "{} {:?}, {} {:?}",
        NAMES[0],
        state_of(&answers[0], 0).unwrap(),
        NAMES[1],
        state_of(&answers[0], 1).unwrap()
    )
}

/// The node ids `dlm_tool ls` lists as members of `lockspace` on node `i`.
pub fn lockspace_members(pair: &Pair, i: usize, lockspace: &str) -> Vec<String> {
    let out = pair.node(i).sh("dlm_tool ls").unwrap_or_default();
    out.split("\n\n")
        .find(|block| {
            block
                .lines()
                .any(|l| l.split_whitespace().eq(["name", lockspace]))
        })
        .and_then(|block| {
            block
                .lines()
                .find_map(|l| l.strip_prefix("members"))
                .map(|m| m.split_whitespace().map(String::from).collect())
        })
        .unwrap_or_default()
}

/// The node whose DRBD is Primary once the cluster is idle.
pub fn primary(pair: &Pair) -> usize {
    primary_of(pair, 0)
}

/// [`primary`] for DRBD minor `minor`.
pub fn primary_of(pair: &Pair, minor: u32) -> usize {
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
    (0..2)
        .find(|&i| {
            pair.node(i)
                .sh("cat /proc/drbd")
                .is_ok_and(|s| proc_drbd_line(&s, minor).contains("ro:Primary/"))
        })
        .unwrap_or_else(|| panic!("no DRBD Primary for minor {minor}\n{}", states(pair)))
}

/// Moves the Promoted role to node `to` ([`switchover_cmd`]) and waits until its
/// portal serves the LUN; the time that took. No move constraint is left afterwards.
pub fn move_to(pair: &Pair, to: usize) -> Duration {
    let t = Instant::now();
    let (served, out) = while_running(pair.node(0), &switchover_cmd("r0", NAMES[to]), || {
        wait_served(&pair.portals[to..to + 1], Duration::from_secs(120)).map(|_| t.elapsed())
    });
    assert!(
        served.is_some(),
        "{} does not serve after the move\n{out}\n{}",
        NAMES[to],
        states(pair)
    );
    clear_move(pair.node(0), "r0", &out);
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
    served.unwrap()
}

/// The SCST release imported into the builder's cache (kept while the returned
/// directory lives), the image of `fixture` built, its cluster file, and the ALUA
/// states it declares for the Promoted and the other node.
pub fn scst_lab(fixture: &str) -> (tempfile::TempDir, Lab, toml::Value, AluaState, AluaState) {
    let scratch = tempfile::tempdir().unwrap();
    super::scstimage::import(
        scratch.path(),
        &super::scstimage::archive(super::scstimage::RELEASE),
    );
    let lab = Lab::build_image(fixture, SCST_RECIPE, Fencing::Off);
    let cluster: toml::Value = toml::from_str(&cluster_file(fixture, Fencing::Off)).unwrap();
    let state = |k: &str| {
        AluaState::from_name(cluster["alua"][k].as_str().unwrap())
            .unwrap_or_else(|| panic!("{fixture}: alua {k}"))
    };
    let (promoted, unpromoted) = (state("promoted-state"), state("unpromoted-state"));
    (scratch, lab, cluster, promoted, unpromoted)
}

/// The figures table's heading and the rows both tests print first.
pub fn print_build_and_boot(lab: &Lab, pair: &Pair) {
    eprintln!("\n| figure | value |\n|---|---|");
    eprintln!("| image build | {:.1} s |", lab.build_time.as_secs_f64());
    for (n, d) in &pair.boot {
        eprintln!("| boot to cluster-ready, {n} | {:.1} s |", d.as_secs_f64());
    }
}
