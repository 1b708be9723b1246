//! The SCST cluster for real (issue 14 items 1-2, seeds 000 and 002): two QEMU VMs from
//! one image (recipes/scst-ha-node.toml: SCST 3.10 built with its DLM support, the HA
//! userland, dlm-controld) running tests/fixtures/cluster/cluster-scst.toml: DRBD under
//! a vdisk_blockio device, an iSCSI target on each node, the ALUA device group with a
//! target group per node, switched by `ocf:sanforge:drbd` carrying the target (the
//! alua agent's part, src/agent/drbd/target.rs), `cluster_mode` with the
//! DLM. Checked from the initiator (tests/common/scsi_spc.rs over our RFC 7143
//! initiator), through each node's portal, before and after planned moves:
//!
//! * REPORT TARGET PORT GROUPS: the Promoted node's group in the cluster file's
//!   promoted state, the other's in its unpromoted state, the same answer through both;
//! * the Device Identification page (VPD 0x83): the same logical-unit designators
//!   through both ports;
//! * a persistent reservation (Write Exclusive) registered and taken through the
//!   Promoted node's port is, after the switchover, visible through the other node's
//!   (READ KEYS, READ RESERVATION) and enforced there (a write from an unregistered
//!   I_T nexus gets RESERVATION CONFLICT): the DLM carried it;
//! * the host writer of tests/failover.rs through a switchover, then through a power
//!   loss of the primary (QEMU quit): no acknowledged write lost.
//!
//! Needs `../shared/upstream/scst-3.10.tar.gz` (or `SANFORGE_UPSTREAM`, see build.rs):
//! without it the test is reported ignored, as tests/scst_real.rs's are. It builds an
//! image and boots two TCG VMs for several minutes, beyond what `cargo test` may add
//! to CI, so it is opt-in: `benches/scst-cluster.sh` runs it and prints its table.
//! The decoders of the SPC pages run in every `cargo test` (milliseconds).

mod common;

use common::cluster::*;
use common::iscsi::{scsi_error, Session};
use common::scsi_spc::*;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// The SPC decoders (pure)
// ---------------------------------------------------------------------------------

#[test]
fn rtpg_descriptors_decode_state_and_ports() {
    // Two groups: id 1 active/optimized with port 1, id 2 standby (PREF set) with
    // ports 2 and 3.
    let d = [
        0, 0, 0, 28, // return data length
        0x00, 0x0f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, // group 1
        0x82, 0x0f, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, // group 2
    ];
    let g = decode_rtpg(&d).unwrap();
    assert_eq!(g.len(), 2, "{g:?}");
    assert_eq!(
        g[0],
        PortGroup {
            id: 1,
            state: AluaState::ActiveOptimized,
            preferred: false,
            ports: vec![1]
        }
    );
    assert_eq!(g[1].state, AluaState::Standby);
    assert!(g[1].preferred);
    assert_eq!(g[1].ports, vec![2, 3]);
    // A descriptor naming more ports than the data holds is an error, not a panic.
    let mut bad = d;
    bad[11] = 9;
    assert!(decode_rtpg(&bad).is_err());
    assert_eq!(
        AluaState::from_name("unavailable"),
        Some(AluaState::Unavailable)
    );
    assert_eq!(AluaState::from_name("bogus"), None);
}

#[test]
fn vpd83_designators_split_by_association() {
    let d = [
        0x00, 0x83, 0, 24, // header
        0x02, 0x01, 0, 4, b'a', b'b', b'c', b'd', // LU, T10 vendor id
        0x01, 0x14, 0, 4, 0, 0, 0, 7, // target port, relative port 7
        0x01, 0x15, 0, 4, 0, 0, 0, 2, // target port, port group 2
    ];
    let ds = decode_vpd83(&d).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(lu_designators(&ds).len(), 1);
    assert_eq!(lu_designators(&ds)[0].value, b"abcd");
    assert_eq!(relative_port(&ds), Some(7));
    assert_eq!(port_group(&ds), Some(2));
    assert!(decode_vpd83(&[0, 0x80, 0, 0]).is_err(), "another page");
}

#[test]
fn persistent_reservation_data_decodes() {
    let keys = [
        0, 0, 0, 5, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 9,
    ];
    assert_eq!(decode_read_keys(&keys).unwrap(), (5, vec![0x1234, 9]));
    let none = [0, 0, 0, 5, 0, 0, 0, 0];
    assert_eq!(decode_read_reservation(&none).unwrap(), None);
    let mut held = [0u8; 24];
    held[7] = 16;
    held[8..16].copy_from_slice(&0x1234u64.to_be_bytes());
    held[21] = WRITE_EXCLUSIVE;
    assert_eq!(
        decode_read_reservation(&held).unwrap(),
        Some(Reservation {
            key: 0x1234,
            kind: WRITE_EXCLUSIVE
        })
    );
    let (cdb, p) = pr_out_cdb(pr_out::RESERVE, WRITE_EXCLUSIVE, 0x1234, 0);
    assert_eq!(cdb[0], 0x5f);
    assert_eq!(cdb[1], pr_out::RESERVE);
    assert_eq!(cdb[2], WRITE_EXCLUSIVE);
    assert_eq!(&cdb[5..9], &24u32.to_be_bytes());
    assert_eq!(&p[0..8], &0x1234u64.to_be_bytes());
}

// ---------------------------------------------------------------------------------
// The cluster in QEMU
// ---------------------------------------------------------------------------------

/// The key the test registers through the Promoted node, and the one of the other
/// node's nexus that clears it.
const KEY_A: u64 = 0x5346_0000_0000_000a;
const KEY_B: u64 = 0x5346_0000_0000_000b;

/// The cluster's state (crm_mon, DRBD, Pacemaker's log) and SCST's: ALUA states, the
/// devices' `active`, the ports, the DLM, SCST's kernel messages.
fn states(pair: &Pair) -> String {
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
fn session(pair: &Pair, i: usize) -> Session {
    session_on(pair, i, 0)
}

/// [`session`] addressing LUN `lun`.
fn session_on(pair: &Pair, i: usize, lun: u16) -> Session {
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
fn alua_states(pair: &Pair, lun: u16) -> [Vec<PortGroup>; 2] {
    [0, 1].map(|i| {
        let mut s = session_on(pair, i, lun);
        let g = s
            .report_target_port_groups()
            .unwrap_or_else(|e| panic!("RTPG for LUN {lun} through {}: {e}", NAMES[i]));
        let _ = s.logout();
        g
    })
}

fn state_of(groups: &[PortGroup], node: usize) -> Option<AluaState> {
    groups
        .iter()
        .find(|g| g.id as usize == node + 1)
        .map(|g| g.state)
}

/// Checks that both portals report `primary`'s group promoted and the other's
/// unpromoted; the states, for the table.
fn check_alua(pair: &Pair, primary: usize, promoted: AluaState, unpromoted: AluaState) -> String {
    check_alua_on(pair, 0, primary, promoted, unpromoted)
}

/// [`check_alua`] for LUN `lun`.
fn check_alua_on(
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
fn lockspace_members(pair: &Pair, i: usize, lockspace: &str) -> Vec<String> {
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
fn primary(pair: &Pair) -> usize {
    primary_of(pair, 0)
}

/// [`primary`] for DRBD minor `minor`.
fn primary_of(pair: &Pair, minor: u32) -> usize {
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
    (0..2)
        .find(|&i| {
            pair.node(i)
                .sh("cat /proc/drbd")
                .is_ok_and(|s| proc_drbd_line(&s, minor).contains("ro:Primary/"))
        })
        .unwrap_or_else(|| panic!("no DRBD Primary for minor {minor}\n{}", states(pair)))
}

/// Moves the Promoted role to node `to` and waits until its portal serves the LUN;
/// the time that took. Clears the move constraint afterwards.
fn move_to(pair: &Pair, to: usize) -> Duration {
    let t = Instant::now();
    let out = pair
        .node(0)
        .sh(&format!(
            "crm_resource --move --promoted -r drbd-r0-clone --node {}",
            NAMES[to]
        ))
        .unwrap_or_default();
    let served = wait_served(&pair.portals[to..to + 1], Duration::from_secs(120));
    let took = t.elapsed();
    assert!(
        served.is_some(),
        "{} does not serve after the move\n{out}\n{}",
        NAMES[to],
        states(pair)
    );
    let _ = pair.node(0).sh("crm_resource --clear -r drbd-r0-clone");
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
    took
}

/// The SCST release imported into the builder's cache (kept while the returned
/// directory lives), the image of `fixture` built, its cluster file, and the ALUA
/// states it declares for the Promoted and the other node.
fn scst_lab(fixture: &str) -> (tempfile::TempDir, Lab, toml::Value, AluaState, AluaState) {
    let scratch = tempfile::tempdir().unwrap();
    common::scstimage::import(
        scratch.path(),
        &common::scstimage::archive(common::scstimage::RELEASE),
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
fn print_build_and_boot(lab: &Lab, pair: &Pair) {
    eprintln!("\n| figure | value |\n|---|---|");
    eprintln!("| image build | {:.1} s |", lab.build_time.as_secs_f64());
    for (n, d) in &pair.boot {
        eprintln!("| boot to cluster-ready, {n} | {:.1} s |", d.as_secs_f64());
    }
}

#[test]
#[cfg_attr(
    not(sanforge_scst_3_10),
    ignore = "needs ../shared/upstream/scst-3.10.tar.gz (or SANFORGE_UPSTREAM); see build.rs"
)]
#[cfg_attr(
    sanforge_scst_3_10,
    ignore = "builds an SCST image and boots two TCG VMs for minutes: benches/scst-cluster.sh"
)]
fn scst_cluster_alua_and_persistent_reservations_seen_from_the_initiator() {
    if common::skip_e2e("scst_cluster") {
        return;
    }
    let t0 = Instant::now();
    let (_scst, lab, cluster, promoted, unpromoted) = scst_lab(SCST_FIXTURE);
    // Lab::boot, with SCST's and the DLM's state when no portal serves.
    let mut pair = lab.boot_nodes("scst");
    skip_initial_sync_of(&pair);
    if wait_served(&pair.portals, Duration::from_secs(240)).is_none() {
        panic!(
            "the LUN is not served by either node\n{}\n{}",
            states(&pair),
            pair.dump()
        );
    }
    wait_lun_served(&mut pair);

    // SCST was built with its DLM support: scst.ko uses the dlm module; and
    // dlm_controld (ocf:pacemaker:controld) configured both nodes in the DLM's
    // configfs (what scst_dlm reads to make its lockspace).
    for (i, name) in NAMES.iter().enumerate() {
        let n = pair.node(i);
        let mods = n.sh("cat /proc/modules").unwrap_or_default();
        let dlm = mods.lines().find(|l| l.starts_with("dlm "));
        assert!(
            dlm.is_some_and(|l| l.contains("scst")),
            "{name}: scst.ko does not use the dlm module (SCST built without CONFIG_DLM?): {dlm:?}\n{}",
            states(&pair)
        );
        let comms = n
            .sh("ls /sys/kernel/config/dlm/cluster/comms")
            .unwrap_or_default();
        assert_eq!(
            comms.split_whitespace().count(),
            2,
            "{name}: the DLM does not know both nodes: {comms}\n{}",
            states(&pair)
        );
    }

    let first = primary(&pair);
    let other = 1 - first;
    let before = check_alua(&pair, first, promoted, unpromoted);
    // The same device identification through both ports.
    let ids = [0, 1].map(|i| {
        let mut s = session(&pair, i);
        let d = s
            .device_identification()
            .unwrap_or_else(|e| panic!("VPD 0x83 through {}: {e}", NAMES[i]));
        let _ = s.logout();
        d
    });
    assert!(
        !lu_designators(&ids[0]).is_empty() && lu_designators(&ids[0]) == lu_designators(&ids[1]),
        "VPD 0x83 logical unit designators differ:\n{:?}\n{:?}",
        ids[0],
        ids[1]
    );
    assert_ne!(relative_port(&ids[0]), relative_port(&ids[1]));

    // A registration and a Write Exclusive reservation through the Promoted node.
    let mut a = session(&pair, first);
    a.pr_out(pr_out::REGISTER, 0, 0, KEY_A).unwrap();
    a.pr_out(pr_out::RESERVE, WRITE_EXCLUSIVE, KEY_A, 0)
        .unwrap();
    let keys_a = a.read_keys().unwrap().1;
    assert_eq!(keys_a, vec![KEY_A]);
    let _ = a.logout();

    // Planned switchover; the states swap, the same through both portals.
    let switch1 = move_to(&pair, other);
    let after = check_alua(&pair, other, promoted, unpromoted);

    // The reservation is visible and enforced through the other node.
    let mut b = session(&pair, other);
    let keys_b = b.read_keys().unwrap().1;
    let res_b = b.read_reservation().unwrap();
    let write = b.write10(0, &vec![0u8; BLOCK], BLOCK);
    let conflict = write
        .as_ref()
        .err()
        .and_then(scsi_error)
        .is_some_and(|e| e.status == 0x18);
    let pr_ok = keys_b == vec![KEY_A]
        && res_b
            == Some(Reservation {
                key: KEY_A,
                kind: WRITE_EXCLUSIVE,
            })
        && conflict;
    assert!(
        pr_ok,
        "through {} after the switchover: keys {keys_b:x?}, reservation {res_b:x?}, unregistered write {write:?}\n{}",
        NAMES[other],
        states(&pair)
    );
    // Both nodes are members of SCST's lockspace for the device (`scst-` and the
    // cluster file's t10-dev-id): the DLM, not a lucky copy, carried the reservation.
    let t10 = cluster["export"][0]["t10-dev-id"].as_str().unwrap();
    let members = [0, 1].map(|i| lockspace_members(&pair, i, &format!("scst-{t10}")));
    assert!(
        members.iter().all(|m| m == &["1", "2"]),
        "members of lockspace scst-{t10}: {members:?}\n{}",
        states(&pair)
    );
    // Cleared from the other node: register its nexus, CLEAR.
    b.pr_out(pr_out::REGISTER_AND_IGNORE, 0, 0, KEY_B).unwrap();
    b.pr_out(pr_out::CLEAR, 0, KEY_B, 0).unwrap();
    assert_eq!(b.read_keys().unwrap().1, Vec::<u64>::new());
    let _ = b.logout();

    // The host writer through a switchover back: no acknowledged write lost.
    let run = Run::start(&pair.portals);
    assert!(
        run.advances(20, Duration::from_secs(60)),
        "writes do not progress on {}\n{}",
        NAMES[other],
        states(&pair)
    );
    let gaps = run.gaps();
    let t_move = Instant::now();
    let _ = pair.node(0).sh(&format!(
        "crm_resource --move --promoted -r drbd-r0-clone --node {}",
        NAMES[first]
    ));
    let moved = takeover(&run, gaps, first, Duration::from_secs(120));
    let switch2 = t_move.elapsed();
    assert!(moved.is_ok(), "{moved:?}\n{}", states(&pair));
    let _ = pair.node(0).sh("crm_resource --clear -r drbd-r0-clone");
    assert!(run.advances(10, Duration::from_secs(60)));

    // Unplanned: the primary loses power (QEMU quit); the other node takes over with
    // the DLM's lockspace recovered, and no acknowledged write is lost.
    let gaps = run.gaps();
    let t_kill = Instant::now();
    pair.node_mut(first).quit();
    let took = takeover(&run, gaps, other, Duration::from_secs(180));
    let failover = t_kill.elapsed();
    assert!(
        took.is_ok(),
        "{took:?} after {} lost power\n{}",
        NAMES[first],
        pair.node(other).state()
    );
    assert!(run.advances(10, Duration::from_secs(60)));
    let (report, checked) = run.finish(&pair.portals, other);
    let lost = checked.as_ref().err().map(Vec::len).unwrap_or(0);

    print_build_and_boot(&lab, &pair);
    eprintln!(
        "| RTPG before the move ({} Promoted) | {before} |",
        NAMES[first]
    );
    eprintln!(
        "| RTPG after the move ({} Promoted) | {after} |",
        NAMES[other]
    );
    eprintln!(
        "| planned switchover (crm_resource --move) to LUN served | {:.2} s |",
        switch1.as_secs_f64()
    );
    eprintln!(
        "| PR through {} seen and enforced through {} | {} |",
        NAMES[first],
        NAMES[other],
        if pr_ok { "yes" } else { "no" }
    );
    eprintln!(
        "| switchover under writes to I/O again | {:.2} s |",
        switch2.as_secs_f64()
    );
    eprintln!(
        "| primary ({}) killed (QEMU quit) to I/O again on {} | {:.2} s |",
        NAMES[first],
        NAMES[other],
        failover.as_secs_f64()
    );
    eprintln!(
        "| DLM lockspace scst-{t10} members (alpha, beta) | {} / {} |",
        members[0].join(" "),
        members[1].join(" ")
    );
    eprintln!("| acknowledged writes | {} |", report.writes);
    eprintln!("| acknowledged writes lost | {lost} |");
    eprintln!("| test wall time | {:.1} s |", t0.elapsed().as_secs_f64());
    assert_eq!(checked.err(), None, "acknowledged writes did not read back");
    drop(pair);
}

/// One export of the active/active fixture: its LUN, DRBD resource and minor, and the
/// node its `preferred-node` names.
struct AaExport {
    name: String,
    lun: u16,
    res: String,
    minor: u32,
    preferred: usize,
}

/// The exports of cluster file `fixture`, each with its DRBD resource's minor and
/// preferred node.
fn aa_exports(cluster: &toml::Value, fixture: &str) -> Vec<AaExport> {
    let drbd = cluster["drbd"].as_array().unwrap();
    cluster["export"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let res = e["drbd"].as_str().unwrap().to_string();
            let d = drbd
                .iter()
                .find(|d| d["name"].as_str() == Some(&res))
                .unwrap_or_else(|| panic!("{fixture}: no [[drbd]] {res}"));
            let pref = d["preferred-node"].as_str().unwrap_or_default();
            AaExport {
                name: e["name"].as_str().unwrap().to_string(),
                lun: e["lun"].as_integer().unwrap() as u16,
                res: res.clone(),
                minor: d["minor"].as_integer().unwrap() as u32,
                preferred: NAMES
                    .iter()
                    .position(|n| *n == pref)
                    .unwrap_or_else(|| panic!("{fixture}: drbd {res}: preferred-node {pref:?}")),
            }
        })
        .collect()
}

/// `head -n1` of SCST sysfs file `rel` on node `i`, trimmed.
fn scst_attr(pair: &Pair, i: usize, rel: &str) -> String {
    pair.node(i)
        .sh(&format!("head -n1 /sys/kernel/scst_tgt/{rel}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The clone that carries `res`'s target, as the CIB on node 0 names it: the alua
/// clone when the render made one (a VG between, the LINBIT agent), else the DRBD
/// clone (`ocf:sanforge:drbd` carrying its target).
fn target_clone(pair: &Pair, res: &str) -> String {
    let alua = format!("alua-{res}-clone");
    let cib = pair
        .node(0)
        .sh("cibadmin -Q -o resources")
        .unwrap_or_default();
    if cib.contains(&format!("id=\"{alua}\"")) {
        alua
    } else {
        assert!(
            cib.contains(&format!("id=\"drbd-{res}-clone\"")),
            "no clone of {res} in the CIB:\n{cib}"
        );
        format!("drbd-{res}-clone")
    }
}

/// Stops `other`'s target on the node serving `keep` (a ban of the clone carrying it,
/// [`target_clone`], there) while `keep`'s writer writes through that node, and starts
/// it again (the ban cleared; DRBD UpToDate again when it was stopped too). Both
/// groups' target groups of that node list its one iSCSI target: the stop sets
/// `other`'s group offline there and must leave the target enabled, so `keep`'s
/// writer sees no failure and RTPG through that node still shows `keep`'s group
/// promoted. The table rows.
fn stop_sharing_group(
    pair: &Pair,
    (keep, run): (&AaExport, &Run),
    other: &AaExport,
    promoted: AluaState,
    unpromoted: AluaState,
) -> String {
    let node = keep.preferred;
    let name = NAMES[node];
    let clone = target_clone(pair, &other.res);
    let tg_state = format!("device_groups/{}/target_groups/{name}/state", other.res);
    let enabled = format!("targets/iscsi/{}/enabled", pair.portals[node].target);
    let (gaps0, w0) = (run.gaps(), run.writes());
    let t = Instant::now();
    let out = pair
        .node(0)
        .sh(&format!("crm_resource --ban -r {clone} --node {name}"))
        .unwrap_or_default();
    let end = Instant::now() + Duration::from_secs(90);
    while scst_attr(pair, node, &tg_state) != "offline" && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let stopped = t.elapsed();
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
    let mon = pair.node(0).sh("crm_mon -1 -r").unwrap_or_default();
    assert_eq!(
        scst_attr(pair, node, &tg_state),
        "offline",
        "{clone} banned from {name}: {}'s target group {name} not offline\n{out}\n{}",
        other.res,
        states(pair)
    );
    assert!(
        run.advances(20, Duration::from_secs(60)) && run.gaps() == gaps0 && run.portal() == node,
        "LUN {} writes through {name} interrupted by the stop of {clone} there (gaps {} -> {}, portal {})\n{}",
        keep.lun,
        gaps0,
        run.gaps(),
        run.portal(),
        states(pair)
    );
    assert_eq!(
        scst_attr(pair, node, &enabled),
        "1",
        "{name}'s target disabled by the stop of {clone} there\n{}",
        states(pair)
    );
    assert!(
        !mon.contains("Failed Resource Actions"),
        "{clone} banned from {name}:\n{mon}"
    );
    let keep_alua = check_alua_on(pair, keep.lun, node, promoted, unpromoted);
    let through = &alua_states(pair, other.lun)[node];
    assert_eq!(
        state_of(through, node),
        Some(AluaState::Offline),
        "RTPG for LUN {} through {name} with {clone} stopped there: {through:?}",
        other.lun
    );
    let writes = run.writes() - w0;

    let t = Instant::now();
    let _ = pair.node(0).sh(&format!("crm_resource --clear -r {clone}"));
    let end = Instant::now() + Duration::from_secs(90);
    while scst_attr(pair, node, &tg_state) == "offline" && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
    let end = Instant::now() + Duration::from_secs(120);
    let drbd = || {
        let s = pair.node(node).sh("cat /proc/drbd").unwrap_or_default();
        proc_drbd_line(&s, other.minor)
    };
    while !drbd().contains("ds:UpToDate/UpToDate") && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
    }
    let restarted = t.elapsed();
    assert!(
        drbd().contains("ds:UpToDate/UpToDate"),
        "{} not UpToDate on {name} after the clear of {clone}\n{}",
        other.res,
        states(pair)
    );
    let other_alua = check_alua_on(pair, other.lun, other.preferred, promoted, unpromoted);
    assert_eq!(
        run.gaps(),
        gaps0,
        "LUN {} writes interrupted by the restart of {clone} on {name}\n{}",
        keep.lun,
        states(pair)
    );
    format!(
        "| stop of {clone} on {name} (ban), LUN {} written through {name} | {:.2} s to offline; \
         LUN {} {keep_alua}; {writes} writes, {} gaps; {name}'s target enabled |\n\
         | restart of {clone} on {name} (clear) | {:.2} s; LUN {} {other_alua} |",
        keep.lun,
        stopped.as_secs_f64(),
        keep.lun,
        run.gaps() - gaps0,
        restarted.as_secs_f64(),
        other.lun
    )
}

/// Seed 003: two DRBD resources, each exported by its own group (device, LUN, ALUA
/// device group) and Promoted on its own node, so both nodes serve at once; the
/// second group's alua instance stopped on the first group's node leaves their shared
/// target enabled (no write of the first group fails); a move of one group puts both
/// on one node without losing an acknowledged write.
#[test]
#[cfg_attr(
    not(sanforge_scst_3_10),
    ignore = "needs ../shared/upstream/scst-3.10.tar.gz (or SANFORGE_UPSTREAM); see build.rs"
)]
#[cfg_attr(
    sanforge_scst_3_10,
    ignore = "builds an SCST image and boots two TCG VMs for minutes: benches/scst-cluster.sh"
)]
fn scst_cluster_two_groups_active_active() {
    if common::skip_e2e("scst_cluster") {
        return;
    }
    let t0 = Instant::now();
    let (_scst, lab, cluster, promoted, unpromoted) = scst_lab(SCST_AA_FIXTURE);
    let exports = aa_exports(&cluster, SCST_AA_FIXTURE);
    assert!(
        exports.len() == 2 && exports[0].preferred != exports[1].preferred,
        "{SCST_AA_FIXTURE}: two exports preferring different nodes expected"
    );

    let pair = lab.boot_nodes("scst-aa");
    skip_initial_sync_of(&pair);
    for e in &exports {
        if wait_lun_served_by(&pair.portals, e.lun, Duration::from_secs(240)).is_none() {
            panic!(
                "LUN {} ({}) is not served by either node\n{}\n{}",
                e.lun,
                e.name,
                states(&pair),
                pair.dump()
            );
        }
    }
    let served_after = pair.node(0).started.elapsed();
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");

    // Active/active: each resource Primary on its preferred node, and through both
    // portals each LUN's group of that node in the promoted state.
    let mut before = Vec::new();
    for e in &exports {
        let p = primary_of(&pair, e.minor);
        assert_eq!(
            p,
            e.preferred,
            "{} Primary on {}, preferred {}\n{}",
            e.res,
            NAMES[p],
            NAMES[e.preferred],
            states(&pair)
        );
        before.push(check_alua_on(&pair, e.lun, p, promoted, unpromoted));
    }

    // A writer per LUN, each through the node serving it.
    let runs: Vec<Run> = exports
        .iter()
        .map(|e| Run::start_lun(&pair.portals, e.lun))
        .collect();
    for (e, run) in exports.iter().zip(&runs) {
        assert!(
            run.advances(20, Duration::from_secs(60)),
            "writes to LUN {} do not progress\n{}",
            e.lun,
            states(&pair)
        );
        assert_eq!(
            run.portal(),
            e.preferred,
            "LUN {} written through {}",
            e.lun,
            NAMES[run.portal().min(1)]
        );
    }

    // The other group's instance stops on the first group's node while that node
    // serves the first group: their shared port stays enabled, no write fails.
    let shared_stop = stop_sharing_group(
        &pair,
        (&exports[0], &runs[0]),
        &exports[1],
        promoted,
        unpromoted,
    );

    // Move the second group to the first one's node: that node serves both.
    let (stay, mv) = (&exports[0], &exports[1]);
    let to = stay.preferred;
    let gaps = runs[1].gaps();
    let stay_gaps = runs[0].gaps();
    let t_move = Instant::now();
    let out = pair
        .node(0)
        .sh(&format!(
            "crm_resource --move --promoted -r drbd-{}-clone --node {}",
            mv.res, NAMES[to]
        ))
        .unwrap_or_default();
    let moved = takeover(&runs[1], gaps, to, Duration::from_secs(120));
    let switch = t_move.elapsed();
    assert!(moved.is_ok(), "{moved:?}\n{out}\n{}", states(&pair));
    for (e, run) in exports.iter().zip(&runs) {
        assert!(
            run.advances(10, Duration::from_secs(60)),
            "writes to LUN {} do not progress after the move\n{}",
            e.lun,
            states(&pair)
        );
    }
    let stay_stalls = runs[0].gaps() - stay_gaps;
    // Where the switchover's time went: the demote and promote results Pacemaker
    // logged on each node (its log's timestamps).
    let steps: Vec<String> = (0..2)
        .map(|i| {
            pair.node(i)
                .sh("grep -E 'Result of (demote|promote) operation' /var/log/pacemaker/pacemaker.log | tail -n 6")
                .unwrap_or_default()
        })
        .collect();
    let mut after = Vec::new();
    for e in &exports {
        assert_eq!(
            primary_of(&pair, e.minor),
            to,
            "{}\n{}",
            e.res,
            states(&pair)
        );
        after.push(check_alua_on(&pair, e.lun, to, promoted, unpromoted));
    }
    // Every acknowledged write reads back through the node now serving both.
    let results: Vec<_> = runs
        .into_iter()
        .map(|r| r.finish(&pair.portals, to))
        .collect();

    // Clearing the move gives the group back to its preferred node (the
    // Promoted-role preference of an active/active cluster).
    let t_back = Instant::now();
    let _ = pair
        .node(0)
        .sh(&format!("crm_resource --clear -r drbd-{}-clone", mv.res));
    let back = wait_lun_served_by(
        &pair.portals[mv.preferred..mv.preferred + 1],
        mv.lun,
        Duration::from_secs(120),
    );
    let failback = t_back.elapsed();
    assert!(
        back.is_some(),
        "{} does not serve LUN {} after the clear\n{}",
        NAMES[mv.preferred],
        mv.lun,
        states(&pair)
    );
    let _ = pair.node(0).sh("crm_resource --wait --timeout=60s");
    let back_alua = check_alua_on(&pair, mv.lun, mv.preferred, promoted, unpromoted);

    print_build_and_boot(&lab, &pair);
    eprintln!(
        "| both LUNs served after boot | {:.1} s |",
        served_after.as_secs_f64()
    );
    eprintln!("{shared_stop}");
    eprintln!(
        "| planned switchover of {} (LUN {}) to {}, under writes, to I/O again | {:.2} s |",
        mv.res,
        mv.lun,
        NAMES[to],
        switch.as_secs_f64()
    );
    eprintln!(
        "| write stalls on LUN {} (not moved) during the move | {stay_stalls} |",
        stay.lun
    );
    eprintln!(
        "| failback of {} to {} after `crm_resource --clear` | {:.2} s ({back_alua}) |",
        mv.res,
        NAMES[mv.preferred],
        failback.as_secs_f64()
    );
    eprintln!("| test wall time | {:.1} s |", t0.elapsed().as_secs_f64());
    for (i, log) in steps.iter().enumerate() {
        eprintln!(
            "\ndemotes/promotes logged on {}:\n{}",
            NAMES[i],
            log.trim_end()
        );
    }
    eprintln!("\n| LUN | export | DRBD | served by before (RTPG) | served by after the move (RTPG) | acknowledged writes | lost |\n|---|---|---|---|---|---|---|");
    for (k, e) in exports.iter().enumerate() {
        let (report, checked) = &results[k];
        let lost = checked.as_ref().err().map(Vec::len).unwrap_or(0);
        eprintln!(
            "| {} | {} | {} | {} ({}) | {} ({}) | {} | {lost} |",
            e.lun, e.name, e.res, NAMES[e.preferred], before[k], NAMES[to], after[k], report.writes
        );
    }
    for (e, (_, checked)) in exports.iter().zip(&results) {
        assert_eq!(
            checked.as_ref().err(),
            None,
            "LUN {}: acknowledged writes did not read back",
            e.lun
        );
    }
    drop(pair);
}
