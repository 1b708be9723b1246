//! `sanforge-init switchover RESOURCE [--to NODE] [--keep] [--timeout SECONDS]`: a
//! planned switchover of one DRBD resource (and the target it carries, or the target
//! and VG colocated with it) to the other node, run by the operator on either node.
//!
//! Pacemaker's own way is `crm_resource --move --promoted -r drbd-RES-clone --node
//! NODE`, then `crm_resource --clear` once the move is done. Seed 004 shows the trap in
//! that pair: "if you forget this operation (the clear), the cluster cannot fail over
//! when a fault occurs" (a `pcs resource move` leaves a ban behind). This command does
//! the whole planned switchover and leaves no constraint behind:
//! 1. checks that the move can succeed before asking for it, from this node's own view
//!    of DRBD (DRBD 8.4: `/proc/drbd`, no process; DRBD 9: `drbdsetup status`): the
//!    peer connected and both disks UpToDate. A move to an Inconsistent or
//!    disconnected peer is refused here, naming the state, instead of a constraint
//!    Pacemaker cannot honour;
//! 2. writes the constraint `crm_resource --move --promoted` would write (the same
//!    id, `cli-prefer-drbd-RES-clone`, so `crm_resource --clear` still removes it),
//!    with one `cibadmin` call: `crm_resource` first unpacks the whole cluster status
//!    to find where the resource runs, which this command already knows from DRBD;
//! 3. waits until DRBD is Primary on NODE and Secondary on the other node, then until
//!    the cluster settles (`crm_resource --wait`), and checks with `crm_mon` that the
//!    clone is Promoted on NODE;
//! 4. removes the constraint (unless `--keep`): the role then stays where it is, as
//!    the cluster renders no automatic failback. On any failure after step 2 the
//!    constraint is removed too, so a move that did not happen cannot happen later by
//!    surprise, and the command says what the cluster reports.
//!
//! It prints one line per step with the time since it started. Reads
//! `/proc/sys/kernel/hostname`, `/etc/drbd.d/RES.res` (the node names and the minor
//! the cluster render wrote) and DRBD's state through [`Sys`], and runs `cibadmin`,
//! `crm_resource --wait` and `crm_mon` through it.

use super::status_ha::{parse_crm_mon, CRM_MON_XML};
use crate::agent::drbd;
use crate::agent::drbd::res_file::clone_id;
pub use crate::agent::drbd::res_file::{ResFile, DRBD_DIR};
use crate::agent::drbd::status::{Role, Status};
use crate::sys::Sys;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const HOSTNAME: &str = "/proc/sys/kernel/hostname";
const CIBADMIN: &str = "/usr/sbin/cibadmin";
const CRM_RESOURCE: &str = "/usr/sbin/crm_resource";
/// How long the whole switchover may take by default (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How often DRBD's state is read while the roles change.
const POLL: Duration = Duration::from_millis(100);
/// How long one `cibadmin` call may take.
const CIB_TIMEOUT: Duration = Duration::from_secs(30);

pub const USAGE: &str = "\
usage: sanforge-init switchover RESOURCE [--to NODE] [--keep] [--timeout SECONDS]

Moves the Promoted role of the DRBD resource RESOURCE (and the target and VG that
follow it) to NODE (default: the other node of the resource), waits until the cluster
has done it, then removes the move constraint so that nothing is left behind.
Refuses when NODE's data is not UpToDate or the peer is not connected.

  --to NODE          the node to move to (as in /etc/drbd.d/RESOURCE.res)
  --keep             keep the move constraint (cli-prefer-drbd-RESOURCE-clone);
                     `crm_resource --clear -r drbd-RESOURCE-clone` removes it later
  --timeout SECONDS  give up after this long (default 120); the constraint is removed

examples:
  sanforge-init switchover r0                 # r0 to the other node
  sanforge-init switchover r1 --to alpha      # r1 to alpha, from either node";

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub resource: String,
    pub to: Option<String>,
    pub keep: bool,
    pub timeout: Duration,
}

impl Request {
    /// Parses the arguments after `switchover`.
    pub fn parse(args: &[String]) -> Result<Request, String> {
        let mut resource = None;
        let mut to = None;
        let mut keep = false;
        let mut timeout = DEFAULT_TIMEOUT;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--to" => {
                    to = Some(it.next().ok_or("--to needs a node name")?.clone());
                }
                "--keep" => keep = true,
                "--timeout" => {
                    let v = it.next().ok_or("--timeout needs a number of seconds")?;
                    let s = v.parse::<u64>().ok().filter(|s| (1..=3600).contains(s));
                    timeout = Duration::from_secs(s.ok_or_else(|| {
                        format!("--timeout '{v}': expected whole seconds from 1 to 3600")
                    })?);
                }
                o if o.starts_with('-') => return Err(format!("unknown option '{o}'")),
                r if resource.is_none() => resource = Some(r.to_string()),
                extra => return Err(format!("unexpected argument '{extra}'")),
            }
        }
        let resource = resource.ok_or("name the DRBD resource (as in /etc/drbd.d)")?;
        // The agent's own check of a resource name (no path separators, no options).
        drbd::check_resource_name("resource", &resource)?;
        Ok(Request {
            resource,
            to,
            keep,
            timeout,
        })
    }
}

/// The move constraint, exactly as `crm_resource --move --promoted` writes it.
pub fn constraint(clone: &str, node: &str) -> String {
    format!(
        r#"<rsc_location id="cli-prefer-{clone}" rsc="{clone}" role="Promoted" node="{node}" score="INFINITY"/>"#
    )
}

/// The role of `node` in this node's view `s`.
fn role_of(s: &Status, me: &str, node: &str) -> Role {
    if node == me {
        s.role
    } else {
        s.peer_role
    }
}

struct Run<'a> {
    sys: &'a mut dyn Sys,
    out: &'a mut dyn Write,
    start: Duration,
    deadline: Duration,
}

impl Run<'_> {
    fn elapsed(&mut self) -> Duration {
        self.sys.boottime().saturating_sub(self.start)
    }

    fn say(&mut self, text: &str) {
        let t = self.elapsed().as_secs_f64();
        let _ = writeln!(self.out, "[{t:6.2} s] {text}");
    }

    fn left(&mut self) -> Duration {
        self.deadline.saturating_sub(self.sys.boottime())
    }

    /// Runs `argv`; its stdout, or an error naming the command and its last stderr line.
    fn run(&mut self, argv: &[&str], timeout: Duration) -> Result<String, String> {
        crate::sys::run_stdout(&mut *self.sys, argv, timeout).map_err(|(_, e)| e)
    }

    /// DRBD's state of `res` (minor `minor`) as this node sees it.
    fn look(&mut self, res: &str, minor: u32) -> Result<Status, String> {
        drbd::look(&mut *self.sys, res, minor)?.ok_or_else(|| {
            format!("DRBD resource {res} (minor {minor}) is not configured on this node")
        })
    }
}

/// Runs the switchover `req`, printing its steps to `out`.
pub fn run(sys: &mut dyn Sys, req: &Request, out: &mut dyn Write) -> Result<(), String> {
    let start = sys.boottime();
    let mut r = Run {
        deadline: start + req.timeout,
        sys,
        out,
        start,
    };
    let res = req.resource.as_str();
    let path = PathBuf::from(DRBD_DIR).join(format!("{res}.res"));
    let text = match r.sys.read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let known: Vec<String> = r
                .sys
                .list_dir(Path::new(DRBD_DIR))
                .unwrap_or_default()
                .iter()
                .filter_map(|f| f.strip_suffix(".res").map(str::to_string))
                .collect();
            return Err(format!(
                "no DRBD resource '{res}' on this node ({e}); resources here: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    };
    let file = ResFile::parse(&text, &path)?;
    let me = r
        .sys
        .read_to_string(Path::new(HOSTNAME))
        .map_err(|e| e.to_string())?
        .trim()
        .to_string();
    if !file.nodes.contains(&me) {
        return Err(format!(
            "this node is '{me}', not a node of {} ({})",
            path.display(),
            file.nodes.join(", ")
        ));
    }
    let to = match &req.to {
        Some(n) if file.nodes.contains(n) => n.clone(),
        Some(n) => {
            return Err(format!(
                "--to '{n}': not a node of {res} (expected one of {}, from {})",
                file.nodes.join(", "),
                path.display()
            ))
        }
        None => match file
            .nodes
            .iter()
            .filter(|n| **n != me)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [other] => (*other).clone(),
            _ => {
                return Err(format!(
                    "{res} has {} nodes: name the one to move to with --to",
                    file.nodes.len()
                ))
            }
        },
    };
    let from = file
        .nodes
        .iter()
        .find(|n| **n != to)
        .cloned()
        .unwrap_or_default();
    let s = r.look(res, file.minor)?;
    if role_of(&s, &me, &to) == Role::Primary {
        r.say(&format!("{res} is already Primary on {to}: nothing to do"));
        return Ok(());
    }
    if s.connection != "Connected" || s.disk != "UpToDate" || s.peer_disk != "UpToDate" {
        return Err(format!(
            "{res} cannot move to {to} now: connection {}, disks {}/{} on {me}/peer \
             (expected Connected, UpToDate/UpToDate; wait for the resync or the peer)",
            s.connection, s.disk, s.peer_disk
        ));
    }
    let clone = clone_id(res);
    let xml = constraint(&clone, &to);
    r.run(
        &[
            CIBADMIN,
            "--modify",
            "--allow-create",
            "-o",
            "constraints",
            "--xml-text",
            &xml,
        ],
        CIB_TIMEOUT,
    )?;
    r.say(&format!(
        "move constraint cli-prefer-{clone} written: Promoted on {to}"
    ));
    let moved = wait_and_check(&mut r, res, file.minor, &me, &from, &to, &clone);
    if req.keep && moved.is_ok() {
        r.say(&format!(
            "constraint kept (--keep); `crm_resource --clear -r {clone}` removes it"
        ));
        return moved;
    }
    let id = format!(r#"<rsc_location id="cli-prefer-{clone}"/>"#);
    let cleared = r.run(&[CIBADMIN, "--delete", "--xml-text", &id], CIB_TIMEOUT);
    match (&moved, cleared) {
        (Ok(()), Ok(_)) => r.say(&format!(
            "move constraint removed: {res} stays on {to} (no automatic failback)"
        )),
        (Err(_), Ok(_)) => {
            r.say("move constraint removed: the cluster is left to its own placement")
        }
        (_, Err(e)) => {
            let what = format!(
                "{e}; the move constraint is still there: `crm_resource --clear -r {clone}` removes it"
            );
            return Err(match moved {
                Ok(()) => what,
                Err(m) => format!("{m}\n{what}"),
            });
        }
    }
    moved
}

/// Step 3: DRBD's roles swapped, the cluster settled, the clone Promoted on `to`.
fn wait_and_check(
    r: &mut Run,
    res: &str,
    minor: u32,
    me: &str,
    from: &str,
    to: &str,
    clone: &str,
) -> Result<(), String> {
    loop {
        let s = r.look(res, minor)?;
        if role_of(&s, me, to) == Role::Primary && role_of(&s, me, from) != Role::Primary {
            break;
        }
        if r.left().is_zero() {
            return Err(format!(
                "{res} did not become Primary on {to} in time (DRBD on {me}: {:?}/{:?}, {}){}",
                s.role,
                s.peer_role,
                s.connection,
                failures(r)
            ));
        }
        r.sys.sleep(POLL);
    }
    r.say(&format!("DRBD {res}: Primary on {to}, Secondary on {from}"));
    let wait = format!("--timeout={}s", r.left().as_secs().max(1));
    let left = r.left();
    r.run(
        &[CRM_RESOURCE, "--wait", &wait],
        left + Duration::from_secs(5),
    )
    .map_err(|e| format!("the cluster did not settle: {e}{}", failures(r)))?;
    let xml = r.run(&CRM_MON_XML, CIB_TIMEOUT)?;
    let pm = parse_crm_mon(&xml).map_err(|e| format!("crm_mon: {e}"))?;
    let promoted = pm.resources.iter().any(|x| {
        x.parent.as_deref() == Some(clone)
            && x.role == "Promoted"
            && x.nodes.iter().any(|n| n == to)
    });
    if !promoted {
        return Err(format!(
            "the cluster settled but {clone} is not Promoted on {to}{}",
            failures(r)
        ));
    }
    r.say(&format!("cluster settled: {clone} Promoted on {to}"));
    Ok(())
}

/// The failed actions and bans `crm_mon` reports, as lines to append to an error.
fn failures(r: &mut Run) -> String {
    match r
        .run(&CRM_MON_XML, CIB_TIMEOUT)
        .and_then(|x| parse_crm_mon(&x))
    {
        Ok(p) => {
            let mut lines = p.failures;
            lines.extend(p.bans.iter().map(|b| format!("ban {}", b.line())));
            if lines.is_empty() {
                "; crm_mon reports no failed action and no ban".into()
            } else {
                format!("; crm_mon reports:\n  {}", lines.join("\n  "))
            }
        }
        Err(e) => format!("; crm_mon: {e}"),
    }
}

#[cfg(test)]
#[path = "switchover_tests.rs"]
mod tests;
