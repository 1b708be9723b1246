//! The fence-peer handler over the recording fake: `/proc/drbd` and the resource file
//! are files of the fake's tree, `cibadmin -Q` answers with the CIB recorded from a
//! running pair of the failover lab (Pacemaker 2.1.5; `tests/fixtures/pacemaker/`:
//! `cib-two-nodes.xml` with both nodes online, `cib-peer-lost.xml` after beta's VM
//! was killed, recorded after the handler ran, its constraint taken out again), STONITH or beta's `node_state` rewritten where a case needs it. Each test checks the
//! answer for DRBD, the processes run in order and what was logged.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::sys::FakeSys;
use std::fs;

/// `cibadmin -Q` on alpha of a running pair, both nodes online.
const CIB: &str = include_str!("../../../tests/fixtures/pacemaker/cib-two-nodes.xml");
/// `cibadmin -Q` on alpha after beta's VM was killed (no fencing): Corosync lost it.
const CIB_BETA_LOST: &str = include_str!("../../../tests/fixtures/pacemaker/cib-peer-lost.xml");

/// The resource file as the cluster render writes it for the failover lab (its
/// snapshot, header cut off).
fn res_84() -> &'static str {
    let snap = include_str!("../../../tests/snapshots/cluster__lio__alpha__drbd__r0.res.snap");
    snap.splitn(3, "---\n").nth(2).expect("an insta snapshot")
}

/// Alpha Secondary after its Primary died (what a promote's handler sees).
const PEER_GONE: &str = "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:WFConnection ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----\n";
/// Alpha Primary whose replication link broke (I/O frozen until the answer).
const LINK_DOWN: &str = "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----\n";
const QUERY: &str = "/usr/sbin/cibadmin -Q -t 2";
const CRMADMIN: &str = "/usr/sbin/crmadmin -t 1000ms -S beta";

/// `xml` with the attributes of beta's `node_state` set to `attrs`.
fn with_beta(xml: &str, attrs: &[(&str, &str)]) -> String {
    let at = xml.find("<node_state id=\"2\"").expect("beta's node_state");
    let end = at + xml[at..].find('>').unwrap();
    let mut tag = xml[at..end].to_string();
    for (k, v) in attrs {
        let key = format!(" {k}=\"");
        match tag.find(&key) {
            Some(i) => {
                let vs = i + key.len();
                let ve = vs + tag[vs..].find('"').unwrap();
                tag.replace_range(vs..ve, v);
            }
            None => tag.push_str(&format!(" {k}=\"{v}\"")),
        }
    }
    format!("{}{tag}{}", &xml[..at], &xml[end..])
}

/// `xml` with `stonith-enabled` set to `v`.
fn with_stonith(xml: &str, v: &str) -> String {
    let s = xml.replace(
        "name=\"stonith-enabled\" value=\"false\"",
        &format!("name=\"stonith-enabled\" value=\"{v}\""),
    );
    assert_ne!(s, xml, "the fixture sets stonith-enabled=false");
    s
}

/// `xml` with `constraint` added to the constraints (none in the fixtures).
fn with_constraint(xml: &str, constraint: &str) -> String {
    let s = xml.replacen(
        "<constraints/>",
        &format!("<constraints>{constraint}</constraints>"),
        1,
    );
    assert_ne!(s, xml, "the fixture has no constraint");
    s
}

/// Beta as the survivor's CIB shows it once Corosync lost it (no fencing).
fn beta_lost() -> String {
    CIB_BETA_LOST.to_string()
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// Alpha, DRBD as `proc`, `cibadmin -Q` answering `cib`.
    fn new(proc: &str, cib: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("proc/sys/kernel")).unwrap();
        fs::write(d.join("proc/sys/kernel/hostname"), "alpha\n").unwrap();
        fs::write(d.join("proc/drbd"), proc).unwrap();
        fs::create_dir_all(d.join("etc/drbd.d")).unwrap();
        fs::write(d.join("etc/drbd.d/r0.res"), res_84()).unwrap();
        fs::create_dir_all(d.join("dev")).unwrap();
        let run = d.join("fake-run");
        fs::create_dir_all(&run).unwrap();
        fs::write(run.join("cibadmin.-Q"), cib).unwrap();
        for f in ["cibadmin.-C", "cibadmin.-D"] {
            fs::write(run.join(f), "").unwrap();
        }
        Lab { dir }
    }

    fn file(&self, rel: &str, content: &str) {
        let p = self.dir.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// Runs the handler for r0: its answer, the processes run, the kernel log lines.
    fn fence(&self, dc_timeout: u64) -> (Answer, Vec<String>, String) {
        let req = Request {
            resource: "r0".into(),
            minor: None,
            timeout: Duration::from_secs(90),
            dc_timeout: Duration::from_secs(dc_timeout),
        };
        let mut sys = FakeSys::new(self.dir.path());
        let mut err = Vec::new();
        let a = run(&mut sys, &req, &mut err);
        let runs = sys
            .ops
            .iter()
            .filter_map(|o| o.to_string().strip_prefix("run ").map(str::to_string))
            .collect();
        let kmsg = fs::read_to_string(self.dir.path().join("dev/kmsg")).unwrap_or_default();
        assert_eq!(
            kmsg.lines().count(),
            String::from_utf8(err).unwrap().lines().count(),
            "every line goes to both"
        );
        (a, runs, kmsg)
    }
}

fn create() -> String {
    format!(
        "/usr/sbin/cibadmin -C -o constraints -X {}",
        constraint("r0", "alpha")
    )
}

#[test]
fn a_lost_peer_without_fencing_is_unreachable_and_fenced_by_the_constraint() {
    let lab = Lab::new(PEER_GONE, &beta_lost());
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Unreachable, "{log}");
    assert_eq!(runs, vec![QUERY.to_string(), create()]);
    assert!(
        log.contains("drbd-fence-peer: r0: INFO: peer beta is Unreachable, my disk is UpToDate/DUnknown: placed constraint 'drbd-fence-by-handler-r0-drbd-r0-clone'"),
        "{log}"
    );
    assert!(log.starts_with("<30>"), "{log}");
}

#[test]
fn a_reachable_peer_behind_a_broken_link_is_fenced_by_the_constraint() {
    // Corosync still sees beta; only DRBD's link broke.
    let lab = Lab::new(LINK_DOWN, CIB);
    lab.file(
        "fake-run/crmadmin.-t",
        "Controller on beta in state S_NOT_DC: ok\n",
    );
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Fenced, "{log}");
    assert_eq!(
        runs,
        vec![QUERY.to_string(), CRMADMIN.to_string(), create()]
    );
}

#[test]
fn a_peer_the_cib_still_shows_online_is_polled_until_corosync_loses_it() {
    // DRBD saw the death first: beta online in the CIB, its controller silent; the
    // second look finds it lost (the fake's tree replaces cibadmin's answer once the
    // first crmadmin ran).
    let lab = Lab::new(PEER_GONE, CIB);
    lab.file("fake-run/crmadmin.-t", "");
    lab.file("fake-run/crmadmin.-t.rc", "102\n");
    lab.file(
        "fake-run/crmadmin.-t.tree/fake-run/cibadmin.-Q",
        &beta_lost(),
    );
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Unreachable, "{log}");
    assert_eq!(
        runs,
        vec![
            QUERY.to_string(),
            CRMADMIN.to_string(),
            QUERY.to_string(),
            create()
        ]
    );
}

#[test]
fn with_stonith_a_lost_peer_is_waited_for_until_it_is_fenced() {
    // stonith on: beta left the membership but is not fenced yet; the cluster fences
    // it (expected down) before the handler's next look.
    let pending = with_stonith(&beta_lost(), "true");
    let fenced = with_beta(&pending, &[("expected", "down")]);
    let lab = Lab::new(PEER_GONE, &pending);
    // The wait itself is the fake's clock; the second query answers "fenced": the
    // tree of the first query's answer replaces it.
    lab.file("fake-run/cibadmin.-Q.tree/fake-run/cibadmin.-Q", &fenced);
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Stonithed, "{log}");
    assert_eq!(runs, vec![QUERY.to_string(), QUERY.to_string(), create()]);
    assert!(log.contains("peer beta is Fenced"), "{log}");
}

#[test]
fn with_stonith_a_lost_peer_never_fenced_is_unreachable_after_the_timeout() {
    let pending = with_stonith(&beta_lost(), "true");
    let lab = Lab::new(PEER_GONE, &pending);
    let req = Request {
        resource: "r0".into(),
        minor: None,
        timeout: Duration::from_secs(2),
        dc_timeout: Duration::from_secs(20),
    };
    let mut sys = FakeSys::new(lab.dir.path());
    let a = run(&mut sys, &req, &mut Vec::new());
    // offline and never fenced: unreachable, our data UpToDate: constraint, 5
    assert_eq!(a, Answer::Unreachable);
    let queries = sys
        .ops
        .iter()
        .filter(|o| o.to_string() == format!("run {QUERY}"))
        .count();
    assert!(queries > 2, "polled {queries} times");
    let last_run = sys
        .ops
        .iter()
        .map(|o| o.to_string())
        .rfind(|o| o.starts_with("run "));
    assert_eq!(last_run, Some(format!("run {}", create())));
}

#[test]
fn inconsistent_data_is_never_given_a_constraint() {
    let proc = "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:WFConnection ro:Secondary/Unknown ds:Inconsistent/DUnknown C r-----\n";
    let lab = Lab::new(proc, &beta_lost());
    let (a, runs, log) = lab.fence(20);
    // 5 without a constraint: DRBD keeps refusing the promote (no UpToDate data).
    assert_eq!(a, Answer::Unreachable);
    assert_eq!(runs, vec![QUERY.to_string()]);
    assert!(
        log.contains("my disk is Inconsistent/DUnknown: did not place the constraint"),
        "{log}"
    );
}

#[test]
fn an_up_to_date_peer_needs_no_fence() {
    let proc = "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n";
    let lab = Lab::new(proc, &beta_lost());
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Nothing);
    assert_eq!(runs, vec![QUERY.to_string()]);
    assert!(log.contains("all peer disks are UpToDate"), "{log}");
}

#[test]
fn our_constraint_already_there_is_fenced_without_a_write() {
    let lab = Lab::new(
        PEER_GONE,
        &with_constraint(&beta_lost(), &constraint("r0", "alpha")),
    );
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Fenced, "{log}");
    assert_eq!(runs, vec![QUERY.to_string()]);
    assert!(log.contains("suitable constraint already placed"), "{log}");
}

#[test]
fn the_peers_constraint_is_a_lost_shoot_out_and_nothing_is_done() {
    // Beta's handler placed its constraint first: alpha must not go on.
    let lab = Lab::new(LINK_DOWN, &with_constraint(CIB, &constraint("r0", "beta")));
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Nothing);
    assert_eq!(runs, vec![QUERY.to_string()]);
    assert!(
        log.contains("keeps drbd-r0-clone from '#uname ne beta'")
            && log.contains("DATA INTEGRITY at RISK"),
        "{log}"
    );
}

#[test]
fn without_a_dc_an_up_to_date_node_still_places_the_constraint() {
    let lab = Lab::new(PEER_GONE, "");
    lab.file("fake-run/cibadmin.-Q.rc", "62\n");
    lab.file(
        "fake-run/cibadmin.-Q.err",
        "Call cib_query failed (-62): Timer expired\n",
    );
    let (a, runs, log) = lab.fence(1);
    assert_eq!(a, Answer::Unreachable, "{log}");
    assert!(runs.len() > 2, "{runs:#?}");
    assert_eq!(runs.last(), Some(&create()));
    assert!(log.contains("no answer from the DC"), "{log}");
    assert!(log.contains("Timer expired"), "{log}");
    assert!(log.contains("peer beta is DcUnreachable"), "{log}");
}

#[test]
fn a_failed_write_is_data_at_risk() {
    let lab = Lab::new(PEER_GONE, &beta_lost());
    lab.file("fake-run/cibadmin.-C.rc", "1\n");
    lab.file(
        "fake-run/cibadmin.-C.err",
        "Call cib_create failed (-107): Transport endpoint is not connected\n",
    );
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Nothing);
    // the write, then one more look in case someone placed the same constraint
    assert_eq!(runs, vec![QUERY.to_string(), create(), QUERY.to_string()]);
    assert!(
        log.contains("could not place the constraint") && log.contains("Transport endpoint"),
        "{log}"
    );
}

#[test]
fn a_peer_that_resynced_meanwhile_gets_its_constraint_removed_again() {
    // DRBD reconnected and resynced while the handler ran: /proc/drbd shows the peer
    // UpToDate once the constraint is written.
    let lab = Lab::new(LINK_DOWN, CIB);
    lab.file(
        "fake-run/crmadmin.-t",
        "Controller on beta in state S_NOT_DC: ok\n",
    );
    lab.file(
        "fake-run/cibadmin.-C.tree/proc/drbd",
        "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n",
    );
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Nothing, "{log}");
    assert_eq!(
        runs.last().map(String::as_str),
        Some("/usr/sbin/cibadmin -D -X <rsc_location rsc=\"drbd-r0-clone\" id=\"drbd-fence-by-handler-r0-drbd-r0-clone\"/>")
    );
}

#[test]
fn the_constraint_reads_back_as_ours_and_names_the_cib_objects_of_the_render() {
    let xml = with_constraint(CIB, &constraint("r0", "alpha"));
    let v = parse_cib(&xml, "beta", &constraint_id("r0")).unwrap();
    assert_eq!(v.fence, Some(Ok(Fence::ours("r0", "alpha"))));
    assert!(!v.stonith_enabled);
    assert_eq!(
        v.peer
            .as_ref()
            .map(|p| (p.in_ccm.as_str(), p.crmd.as_str(), p.expected.as_str())),
        Some(("true", "online", "member"))
    );
    // the clone the recorded (rendered) CIB holds
    assert!(CIB.contains("<clone id=\"drbd-r0-clone\""), "fixture");
    // crm-fence-peer.sh's constraint, byte for byte (its `new_constraint`)
    assert_eq!(
        constraint("r0", "alpha"),
        "<rsc_location rsc=\"drbd-r0-clone\" id=\"drbd-fence-by-handler-r0-drbd-r0-clone\">\n  \
         <rule role=\"Master\" score=\"-INFINITY\" id=\"drbd-fence-by-handler-r0-rule-drbd-r0-clone\">\n    \
         <expression attribute=\"#uname\" operation=\"ne\" value=\"alpha\" id=\"drbd-fence-by-handler-r0-expr-drbd-r0-clone\"/>\n  \
         </rule>\n</rsc_location>"
    );
}

#[test]
fn will_fence_follows_crm_fence_peer() {
    let lost = beta_lost();
    let on = |x: &str| parse_cib(&with_stonith(x, "true"), "beta", "x").unwrap();
    let off = |x: &str| parse_cib(x, "beta", "x").unwrap();
    // no stonith: never waits; offline is unreachable, online is open
    assert_eq!(off(&lost).settled(), Some(Peer::Unreachable));
    assert_eq!(off(CIB).settled(), None);
    // stonith: a lost, unfenced peer is waited for; fenced (expected down) settles
    assert!(on(&lost).will_fence());
    assert_eq!(on(&lost).settled(), None);
    let down = with_beta(&lost, &[("expected", "down")]);
    assert_eq!(on(&down).settled(), Some(Peer::Fenced));
    // Pacemaker >= 2.1.7 writes times for in_ccm and crmd
    let stamped = with_beta(CIB, &[("in_ccm", "1796513400"), ("crmd", "1796513401")]);
    assert_eq!(on(&stamped).settled(), None);
    assert!(!on(&stamped).will_fence());
    // no node_state at all: startup fencing decides
    let none = CIB.replace("uname=\"beta\" in_ccm", "uname=\"gamma\" in_ccm");
    assert!(on(&none).will_fence());
    assert_eq!(off(&none).settled(), Some(Peer::Unreachable));
}

#[test]
fn requests_come_from_drbdadms_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let r = Request::parse(&[], env(&[("DRBD_RESOURCE", "r0"), ("DRBD_MINOR", "3")])).unwrap();
    assert_eq!((r.resource.as_str(), r.minor), ("r0", Some(3)));
    assert_eq!((r.timeout, r.dc_timeout), (TIMEOUT, DC_TIMEOUT));
    // several volumes: the resource file's minor
    let r = Request::parse(&[], env(&[("DRBD_RESOURCE", "r0"), ("DRBD_MINOR", "3 4")])).unwrap();
    assert_eq!(r.minor, None);
    let args: Vec<String> = ["--resource", "r1", "--timeout", "30"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let r = Request::parse(&args, env(&[])).unwrap();
    assert_eq!(
        (r.resource.as_str(), r.timeout),
        ("r1", Duration::from_secs(30))
    );
    let e = Request::parse(&[], env(&[])).unwrap_err();
    assert!(e.contains("DRBD_RESOURCE is not set"), "{e}");
    let e = Request::parse(&[], env(&[("DRBD_RESOURCE", "../etc")])).unwrap_err();
    assert!(e.contains("resource '../etc'"), "{e}");
    let bad: Vec<String> = ["--timeout", "0"].iter().map(|s| s.to_string()).collect();
    let e = Request::parse(&bad, env(&[("DRBD_RESOURCE", "r0")])).unwrap_err();
    assert!(e.contains("--timeout '0': expected whole seconds"), "{e}");
}

#[test]
fn a_node_not_in_the_resource_file_does_nothing() {
    let lab = Lab::new(PEER_GONE, &beta_lost());
    lab.file("proc/sys/kernel/hostname", "gamma\n");
    let (a, runs, log) = lab.fence(20);
    assert_eq!(a, Answer::Nothing);
    assert!(runs.is_empty(), "{runs:?}");
    assert!(
        log.contains("this node 'gamma' and one peer expected in /etc/drbd.d/r0.res (alpha, beta); nothing done"),
        "{log}"
    );
}
