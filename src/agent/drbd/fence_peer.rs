//! DRBD 8.4's fence-peer handler, native: `sanforge-init drbd-fence-peer`, which the
//! cluster render names in each resource's `handlers` section when the nodes run DRBD
//! 8.4 (`drbd-fence-peer = "sanforge"`, the default there). DRBD calls its handler
//! (through `drbdadm fence-peer RES`, which runs it with `/bin/sh -c` and
//! `DRBD_RESOURCE`, `DRBD_MINOR` in the environment) when it loses its peer while the
//! fencing policy asks for it, and waits for the answer before it goes on: a promote
//! after a failover, and every write of a Primary whose replication link broke
//! (`resource-and-stonith` freezes I/O until the handler returns).
//!
//! Why hand-written: drbd-utils' `crm-fence-peer.sh` is the real component (and stays
//! selectable: `drbd-fence-peer = "drbd-utils"`), but it is a 1,100-line bash script
//! that starts `logger`, `flock`, four Pacemaker tools (`cibadmin` three times,
//! `crmadmin` once even for its version) and dozens of `sed` and `grep`: 1.24 to 1.35 s
//! of every failover under TCG, in the failover's critical path (benches/failover-steps.sh,
//! issue 14). And when DRBD sees the death before Corosync does, it asks the dead
//! peer's controller (`crmadmin -S`, 3.6 s of timeout) and sleeps 2 s between polls:
//! 2 to 3 s in the handler (the ping-int 2 finding in src/ha/render/drbd.rs). This
//! handler makes the same decisions with one `cibadmin -Q` and one `cibadmin -C` in a
//! failover, reads DRBD's state from `/proc/drbd` (never netlink: the handler may run
//! inside `drbdsetup primary`), and polls the CIB every 0.5 s with `crmadmin -S`
//! bounded to 1 s.
//!
//! The decisions, as crm-fence-peer.sh (drbd-utils 9.22) makes them:
//! 1. A constraint with our id already there: the same one → 4 (fenced); another → 1.
//! 2. The peer's state from its `node_state` in the CIB (asking the DC, retried for the
//!    DC timeout): `fenced` (offline and expected down), `unreachable` (offline, and no
//!    fencing to wait for), `reachable` (online, and its controller answers
//!    `crmadmin -S`); with STONITH enabled a peer that left the membership but is not
//!    fenced yet is waited for (the cluster fences it first), up to the timeout
//!    (`unknown`, or `unreachable` if its controller is offline).
//! 3. Then by our disk (from `/proc/drbd`): the peer's disk UpToDate → no constraint, 1;
//!    reachable and our disk Consistent or UpToDate → constraint, 4; fenced and
//!    UpToDate → constraint, 7; UpToDate otherwise → constraint, 5; else (Consistent
//!    or worse with the peer gone) → no constraint, 5, and DRBD keeps refusing the
//!    promote.
//! 4. After 4 or 7: if the peer's disk turned UpToDate meanwhile, the constraint is
//!    removed again and the answer is 1.
//!
//! The constraint is crm-fence-peer.sh's, to the byte: `drbd-fence-by-handler-RES-CLONE`
//! keeps the Promoted role of the clone on this node (`#uname ne ME` scores
//! `-INFINITY`), so drbd-utils' `crm-unfence-peer.sh` (the `after-resync-target`
//! handler) removes it after the resync, and `sanforge-init status` names its origin.
//! Not carried over: the `flock` (DRBD 8.4 runs one handler per resource at a time),
//! `--suicide-on-failure-if-primary` and `--unreachable-peer-is-outdated` (the render
//! sets neither), and the CTS mode.
//!
//! Every line it says goes to `/dev/kmsg` (`drbd-fence-peer: RES: …`, in
//! `sanforge-init logs`: a usermode helper has no stderr) and to stderr.

use super::res_file::{clone_id, ResFile, DRBD_DIR};
use super::status::Status;
use crate::init::logs::SERVICE_PRI;
use crate::sys::Sys;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The sanforge-init subcommand DRBD's handler line runs.
pub const SUBCOMMAND: &str = "drbd-fence-peer";
/// The handler line of the rendered resources (`fence-peer "…";`).
pub const HANDLER: &str = "/init drbd-fence-peer";
/// crm-fence-peer.sh's default id prefix; the constraint's id is
/// `PREFIX-RES-CLONE`.
pub const ID_PREFIX: &str = "drbd-fence-by-handler";
/// Where the lines go besides stderr.
pub const KMSG: &str = "/dev/kmsg";
const PROC_DRBD: &str = "/proc/drbd";
const HOSTNAME: &str = "/proc/sys/kernel/hostname";
const CIBADMIN: &str = "/usr/sbin/cibadmin";
const CRMADMIN: &str = "/usr/sbin/crmadmin";
/// How long the peer's state is polled at most (crm-fence-peer.sh's `--timeout`).
pub const TIMEOUT: Duration = Duration::from_secs(90);
/// How long the DC is asked at most (crm-fence-peer.sh's `--dc-timeout`).
pub const DC_TIMEOUT: Duration = Duration::from_secs(20);
/// Between two looks at the CIB while the peer's state is open.
const POLL: Duration = Duration::from_millis(500);
/// `crmadmin -S PEER`'s timeout: a living controller answers within milliseconds.
const CRMADMIN_TIMEOUT: &str = "1000ms";

pub const USAGE: &str = "\
usage: sanforge-init drbd-fence-peer [--resource RES] [--timeout SECONDS] [--dc-timeout SECONDS]

DRBD 8.4's fence-peer handler (drbdadm runs it with DRBD_RESOURCE and DRBD_MINOR set):
keeps the peer of RES from being promoted with a Pacemaker constraint, as drbd-utils'
crm-fence-peer.sh does, and answers DRBD with its exit code: 4 peer fenced (outdated
by the constraint), 5 peer unreachable, 7 peer fenced by the cluster, 1 nothing done.

  --resource RES       the DRBD resource (default: $DRBD_RESOURCE)
  --timeout SECONDS    how long to wait for the peer's state (default 90)
  --dc-timeout SECONDS how long to wait for a DC (default 20)

example (by hand, on a node that lost its peer):
  DRBD_RESOURCE=r0 sanforge-init drbd-fence-peer";

/// DRBD's answer codes (drbd.conf(5), `fence-peer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 1: nothing that lets DRBD go on (an error, or the peer turned UpToDate).
    Nothing = 1,
    /// 4: the peer is fenced: the constraint keeps it from being promoted.
    Fenced = 4,
    /// 5: the peer is unreachable and assumed dead.
    Unreachable = 5,
    /// 7: the peer was fenced by the cluster (STONITH).
    Stonithed = 7,
}

/// The peer's state, as crm-fence-peer.sh names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Reachable,
    Fenced,
    Unreachable,
    Unknown,
    DcUnreachable,
}

/// What the handler was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub resource: String,
    /// `DRBD_MINOR` when it names one minor; else the resource file's.
    pub minor: Option<u32>,
    pub timeout: Duration,
    pub dc_timeout: Duration,
}

impl Request {
    /// From the arguments after the subcommand and `DRBD_RESOURCE` / `DRBD_MINOR`.
    pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Request, String> {
        let mut resource = env("DRBD_RESOURCE").filter(|r| !r.is_empty());
        let mut timeout = TIMEOUT;
        let mut dc_timeout = DC_TIMEOUT;
        let mut it = args.iter();
        let secs = |flag: &str, v: Option<&String>| -> Result<Duration, String> {
            let v = v.ok_or(format!("{flag} needs a number of seconds"))?;
            v.parse::<u64>()
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .map(Duration::from_secs)
                .ok_or(format!(
                    "{flag} '{v}': expected whole seconds from 1 to 3600"
                ))
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "--resource" => {
                    resource = Some(it.next().ok_or("--resource needs a name")?.clone())
                }
                "--timeout" => timeout = secs("--timeout", it.next())?,
                "--dc-timeout" => dc_timeout = secs("--dc-timeout", it.next())?,
                o => return Err(format!("unexpected argument '{o}'")),
            }
        }
        let resource = resource
            .ok_or("no resource: DRBD_RESOURCE is not set (drbdadm sets it) and no --resource")?;
        super::check_resource_name("resource", &resource)?;
        // drbdadm passes every volume's minor, blank-separated: one is ours.
        let minor = env("DRBD_MINOR").and_then(|m| {
            let mut w = m.split_whitespace();
            match (w.next(), w.next()) {
                (Some(one), None) => one.parse().ok(),
                _ => None,
            }
        });
        Ok(Request {
            resource,
            minor,
            timeout,
            dc_timeout,
        })
    }
}

/// The constraint's id for resource `res`.
pub fn constraint_id(res: &str) -> String {
    format!("{ID_PREFIX}-{res}-{}", clone_id(res))
}

/// The constraint crm-fence-peer.sh places for `res` on node `me`: the clone's Promoted
/// (`Master`) role scores -INFINITY on every node whose name is not `me`.
pub fn constraint(res: &str, me: &str) -> String {
    let clone = clone_id(res);
    let p = format!("{ID_PREFIX}-{res}");
    format!(
        "<rsc_location rsc=\"{clone}\" id=\"{p}-{clone}\">\n  \
         <rule role=\"Master\" score=\"-INFINITY\" id=\"{p}-rule-{clone}\">\n    \
         <expression attribute=\"#uname\" operation=\"ne\" value=\"{me}\" id=\"{p}-expr-{clone}\"/>\n  \
         </rule>\n</rsc_location>"
    )
}

/// A fence constraint as found in the CIB: what it keeps from whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub rsc: String,
    /// `Promoted` (Pacemaker 2.1 may store the older `Master`; both mean the same).
    pub role: String,
    pub score: String,
    pub attribute: String,
    pub operation: String,
    pub value: String,
}

impl Fence {
    /// The constraint [`constraint`] writes, as it reads back.
    pub fn ours(res: &str, me: &str) -> Fence {
        Fence {
            rsc: clone_id(res),
            role: "Promoted".into(),
            score: "-INFINITY".into(),
            attribute: "#uname".into(),
            operation: "ne".into(),
            value: me.into(),
        }
    }
}

/// The peer's `node_state` attributes (absent ones empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeState {
    pub in_ccm: String,
    pub crmd: String,
    pub expected: String,
}

impl NodeState {
    /// `crmd="online"` (Pacemaker ≥ 2.1.7 writes the time it came online instead).
    fn online(&self) -> bool {
        self.crmd == "online" || is_stamp(&self.crmd)
    }

    /// `in_ccm="false"` (an empty value is "unknown", as in crm-fence-peer.sh).
    fn left(&self) -> bool {
        self.in_ccm == "false"
    }
}

fn is_stamp(v: &str) -> bool {
    !v.is_empty() && v != "0" && v.bytes().all(|b| b.is_ascii_digit())
}

/// What the handler needs of the CIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CibView {
    pub stonith_enabled: bool,
    pub startup_fencing: bool,
    /// The peer's `node_state`; `None` when the CIB has none for it.
    pub peer: Option<NodeState>,
    /// The constraint with our id, if any (`Err`: one that is not a fence rule).
    pub fence: Option<Result<Fence, String>>,
}

/// crm-fence-peer.sh's `crm_is_not_false`: anything but an explicit no is true.
fn not_false(v: Option<&str>) -> bool {
    !matches!(v, Some("no" | "n" | "false" | "0" | "off"))
}

/// Reads the cluster options, the peer's `node_state` and the constraint `id` out of
/// `cibadmin -Q`'s XML.
pub fn parse_cib(xml: &str, peer: &str, id: &str) -> Result<CibView, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("the CIB's XML: {e}"))?;
    let root = doc.root_element();
    let prop = |name: &str| {
        root.descendants()
            .filter(|n| n.has_tag_name("nvpair"))
            .filter(|n| {
                n.ancestors()
                    .any(|a| a.has_tag_name("cluster_property_set"))
            })
            .find(|n| n.attribute("name").map(|a| a.replace('_', "-")).as_deref() == Some(name))
            .and_then(|n| n.attribute("value"))
    };
    let stonith_enabled = not_false(prop("stonith-enabled"));
    let startup_fencing = not_false(prop("startup-fencing"));
    let peer = root
        .descendants()
        .find(|n| n.has_tag_name("node_state") && n.attribute("uname") == Some(peer))
        .map(|n| {
            let a = |k: &str| n.attribute(k).unwrap_or("").to_string();
            NodeState {
                in_ccm: a("in_ccm"),
                crmd: a("crmd"),
                expected: a("expected"),
            }
        });
    let fence = root
        .descendants()
        .find(|n| n.has_tag_name("rsc_location") && n.attribute("id") == Some(id))
        .map(|loc| {
            let rule = loc.children().find(|n| n.has_tag_name("rule"));
            let expr = rule.and_then(|r| r.children().find(|n| n.has_tag_name("expression")));
            match (rule, expr) {
                (Some(r), Some(e)) => {
                    let a = |n: roxmltree::Node, k: &str| n.attribute(k).unwrap_or("").to_string();
                    let role = a(r, "role");
                    Ok(Fence {
                        rsc: a(loc, "rsc"),
                        role: if role == "Master" {
                            "Promoted".into()
                        } else {
                            role
                        },
                        score: a(r, "score"),
                        attribute: a(e, "attribute"),
                        operation: a(e, "operation"),
                        value: a(e, "value"),
                    })
                }
                _ => Err(format!("rsc_location {id} without a rule and expression")),
            }
        });
    Ok(CibView {
        stonith_enabled,
        startup_fencing,
        peer,
        fence,
    })
}

impl CibView {
    /// crm-fence-peer.sh's `guess_if_pacemaker_will_fence`: whether the cluster is going
    /// to fence the peer (so its state is worth waiting for).
    pub fn will_fence(&self) -> bool {
        if !self.stonith_enabled {
            return false;
        }
        let Some(p) = &self.peer else {
            // Nothing known of the peer: startup fencing decides.
            return self.startup_fencing;
        };
        if p.in_ccm.is_empty() || p.crmd == "banned" {
            return true;
        }
        if p.expected == "down" && p.left() && !p.online() {
            // a clean down, as Pacemaker sees it
            return false;
        }
        p.left() || !p.online()
    }

    /// The peer's state when the CIB alone decides it: `None` while it is open (the
    /// peer online, or a fence pending).
    pub fn settled(&self) -> Option<Peer> {
        let p = self.peer.clone().unwrap_or_default();
        if !self.will_fence() && !p.online() {
            return Some(if p.expected == "down" && p.left() {
                Peer::Fenced
            } else {
                Peer::Unreachable
            });
        }
        None
    }
}

/// Our disk and the peer's, from `/proc/drbd`.
struct Disks {
    uptodate: bool,
    consistent: bool,
    peer_uptodate: bool,
    shown: String,
}

impl Disks {
    fn of(s: &Status) -> Disks {
        Disks {
            uptodate: s.disk == "UpToDate",
            consistent: s.disk == "UpToDate" || s.disk == "Consistent",
            peer_uptodate: s.peer_disk == "UpToDate",
            shown: format!("{}/{}", s.disk, s.peer_disk),
        }
    }
}

struct Run<'a> {
    sys: &'a mut dyn Sys,
    err: &'a mut dyn Write,
    res: String,
    start: Duration,
}

impl Run<'_> {
    fn elapsed(&mut self) -> Duration {
        self.sys.boottime().saturating_sub(self.start)
    }

    /// One line to stderr and `/dev/kmsg`, with the time since the handler started.
    fn say(&mut self, level: &str, text: &str) {
        let t = self.elapsed().as_secs_f64();
        let line = format!("{}: {level}: {text} [{t:.2} s]", self.res);
        let _ = writeln!(self.err, "{SUBCOMMAND}: {line}");
        let _ = self.sys.append(
            Path::new(KMSG),
            &format!("<{SERVICE_PRI}>{SUBCOMMAND}: {line}\n"),
        );
    }

    fn run(&mut self, argv: &[&str], timeout: Duration) -> Result<String, String> {
        crate::sys::run_stdout(&mut *self.sys, argv, timeout).map_err(|(_, e)| e)
    }

    /// The CIB as the DC has it (`cibadmin -Q -t 2`).
    fn query(&mut self, peer: &str) -> Result<CibView, String> {
        let xml = self.run(&[CIBADMIN, "-Q", "-t", "2"], Duration::from_secs(5))?;
        parse_cib(&xml, peer, &constraint_id(&self.res))
    }

    fn disks(&mut self, minor: u32) -> Result<Disks, String> {
        let text = self
            .sys
            .read_to_string(Path::new(PROC_DRBD))
            .map_err(|e| e.to_string())?;
        if !text.starts_with("version: 8.") {
            return Err(format!(
                "{PROC_DRBD} does not show DRBD 8.4 ('{}'): DRBD 9 runs crm-fence-peer.9.sh",
                text.lines().next().unwrap_or("")
            ));
        }
        match Status::from_proc_drbd(&text, minor)? {
            Some(s) => Ok(Disks::of(&s)),
            None => Err(format!("{PROC_DRBD} has no line for minor {minor}")),
        }
    }
}

/// The handler: the answer for DRBD. Reads the resource file (the nodes, the minor),
/// the hostname, the CIB and `/proc/drbd`; writes at most one constraint.
pub fn run(sys: &mut dyn Sys, req: &Request, err: &mut dyn Write) -> Answer {
    let start = sys.boottime();
    let mut r = Run {
        sys,
        err,
        res: req.resource.clone(),
        start,
    };
    match fence(&mut r, req) {
        Ok(a) => a,
        Err(e) => {
            r.say("ERROR", &format!("{e}; nothing done"));
            Answer::Nothing
        }
    }
}

fn fence(r: &mut Run, req: &Request) -> Result<Answer, String> {
    let res = req.resource.clone();
    let path = PathBuf::from(DRBD_DIR).join(format!("{res}.res"));
    let text = r.sys.read_to_string(&path).map_err(|e| e.to_string())?;
    let file = ResFile::parse(&text, &path)?;
    let me = r
        .sys
        .read_to_string(Path::new(HOSTNAME))
        .map_err(|e| e.to_string())?
        .trim()
        .to_string();
    let peers: Vec<&String> = file.nodes.iter().filter(|n| **n != me).collect();
    let peer = match peers.as_slice() {
        [p] if file.nodes.contains(&me) => (*p).clone(),
        _ => {
            return Err(format!(
                "this node '{me}' and one peer expected in {} ({})",
                path.display(),
                file.nodes.join(", ")
            ))
        }
    };
    let minor = req.minor.unwrap_or(file.minor);
    let id = constraint_id(&res);

    // The first look: the constraint, then the peer.
    let mut view = ask_dc(r, &peer, req.dc_timeout);
    if let Some(v) = &view {
        match &v.fence {
            Some(Ok(f)) if *f == Fence::ours(&res, &me) => {
                r.say(
                    "INFO",
                    &format!("suitable constraint already placed: '{id}'"),
                );
                return Ok(double_check(r, minor, Answer::Fenced));
            }
            Some(Ok(f)) => {
                r.say(
                    "WARNING",
                    &format!(
                        "constraint '{id}' already exists and keeps {} from '{} {} {}' \
                         (a lost shoot-out?): DATA INTEGRITY at RISK, not placing ours",
                        f.rsc, f.attribute, f.operation, f.value
                    ),
                );
                return Ok(Answer::Nothing);
            }
            Some(Err(e)) => {
                r.say(
                    "WARNING",
                    &format!("{e}: DATA INTEGRITY at RISK, not placing ours"),
                );
                return Ok(Answer::Nothing);
            }
            None => {}
        }
    }
    let state = loop {
        let Some(v) = view.clone() else {
            break Peer::DcUnreachable;
        };
        if let Some(s) = v.settled() {
            break s;
        }
        let p = v.peer.clone().unwrap_or_default();
        if p.online() {
            let st = r.run(
                &[CRMADMIN, "-t", CRMADMIN_TIMEOUT, "-S", &peer],
                Duration::from_secs(5),
            );
            if st.is_ok_and(|o| {
                let o = o.trim_end();
                o.ends_with(": ok") || o.ends_with(" (ok)")
            }) {
                break Peer::Reachable;
            }
        }
        if r.elapsed() >= req.timeout {
            break if p.crmd == "offline" {
                Peer::Unreachable
            } else {
                Peer::Unknown
            };
        }
        r.sys.sleep(POLL);
        let within = req.dc_timeout.saturating_sub(r.elapsed()).max(POLL);
        view = ask_dc(r, &peer, within);
    };
    let d = r.disks(minor)?;
    if d.peer_uptodate {
        r.say(
            "WARNING",
            &format!(
                "all peer disks are UpToDate ({}): did not place the constraint",
                d.shown
            ),
        );
        return Ok(Answer::Nothing);
    }
    let what = format!("peer {peer} is {state:?}, my disk is {}", d.shown);
    let answer = match state {
        Peer::Reachable if d.consistent => Answer::Fenced,
        Peer::Fenced if d.uptodate => Answer::Stonithed,
        _ if d.uptodate => Answer::Unreachable,
        _ => {
            r.say("WARNING", &format!("{what}: did not place the constraint"));
            return Ok(Answer::Unreachable);
        }
    };
    let xml = constraint(&res, &me);
    match r.run(
        &[CIBADMIN, "-C", "-o", "constraints", "-X", &xml],
        Duration::from_secs(30),
    ) {
        Ok(_) => {
            r.say("INFO", &format!("{what}: placed constraint '{id}'"));
        }
        Err(e) => {
            // An operator or the peer's handler may have raced us for the same id.
            let again = r.query(&peer);
            if let Ok(CibView {
                fence: Some(Ok(f)), ..
            }) = &again
            {
                if *f == Fence::ours(&res, &me) {
                    r.say(
                        "INFO",
                        &format!("suitable constraint already placed: '{id}'"),
                    );
                    return Ok(double_check(r, minor, Answer::Fenced));
                }
            }
            r.say(
                "WARNING",
                &format!("{what}: could not place the constraint ({e}): DATA INTEGRITY at RISK"),
            );
            return Ok(Answer::Nothing);
        }
    }
    Ok(match answer {
        Answer::Fenced | Answer::Stonithed => double_check(r, minor, answer),
        a => a,
    })
}

/// The CIB as the DC has it, asked until `within` has passed; `None` when no DC
/// answered.
fn ask_dc(r: &mut Run, peer: &str, within: Duration) -> Option<CibView> {
    let until = r.elapsed() + within;
    loop {
        match r.query(peer) {
            Ok(v) => return Some(v),
            Err(e) if r.elapsed() >= until => {
                r.say("WARNING", &format!("no answer from the DC: {e}"));
                return None;
            }
            Err(_) => r.sys.sleep(POLL),
        }
    }
}

/// crm-fence-peer.sh's `double_check_after_fencing`: a peer that turned UpToDate
/// meanwhile needs no fence; the constraint goes again and the answer is 1.
fn double_check(r: &mut Run, minor: u32, answer: Answer) -> Answer {
    let Ok(d) = r.disks(minor) else {
        return answer;
    };
    if !d.peer_uptodate {
        return answer;
    }
    r.say(
        "WARNING",
        "all peer disks are UpToDate (again): removing the constraint again",
    );
    let id = constraint_id(&r.res);
    let rsc = clone_id(&r.res);
    let xml = format!("<rsc_location rsc=\"{rsc}\" id=\"{id}\"/>");
    match r.run(&[CIBADMIN, "-D", "-X", &xml], Duration::from_secs(30)) {
        Ok(_) => Answer::Nothing,
        Err(e) => {
            r.say("WARNING", &format!("could not remove it: {e}"));
            answer
        }
    }
}

#[cfg(test)]
#[path = "fence_peer_tests.rs"]
mod tests;
