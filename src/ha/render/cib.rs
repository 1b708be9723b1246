//! The Pacemaker CIB (configuration only, empty status), as data for `cib.xml.tera`:
//! the cluster properties, the fencing devices, a DLM clone when a device uses SCST
//! `cluster_mode`, and per DRBD resource a promotable DRBD clone (`ocf:sanforge:drbd`,
//! or `ocf:linbit:drbd` with `drbd-agent = "linbit"`) that carries its exported target
//! ([`carries_target`]) or, where it cannot, a promotable `ocf:sanforge:alua` clone
//! beside it, and the VIPs, with the constraints that tie them together. Ids are derived from names here; the
//! template escapes parameter values.
//!
//! Reads: only its arguments.

use super::templates;
use crate::contract::SECRETS_DIR;
use crate::ha::cluster::{Cluster, DrbdAgent, DrbdConf, Fencing, Quorum, Secrets, TargetStack};
use anyhow::Result;
use serde::Serialize;

/// Pacemaker resource stickiness: above any location preference, so a recovered node
/// does not pull resources back (no automatic failback; a switchback is an operator's
/// decision, taken at a quiet hour).
pub const STICKINESS: u32 = 1000;

/// The Promoted-role preference of a DRBD resource's `preferred-node` when the
/// cluster spreads its resources over the nodes ([`spreads_promoted_roles`]), as seed
/// 003's `location PREFER-1 MS_DRBD_VM_STORAGE_1 50: server1`.
pub const PREFERRED_NODE_SCORE: &str = "50";

/// Whether the exported DRBD resources' `preferred-node`s name more than one node
/// (active/active: each node serves its own resources). Only then is
/// `preferred-node` rendered as a Promoted-role location: in a one-node-serves
/// cluster it would only pull the Promoted role back (see `Cib::add_drbd`), while in
/// an active/active one, without it Pacemaker promotes every resource on the same
/// node (equal promotion scores), and a returning node taking its own resources back
/// is the point of the spread.
pub fn spreads_promoted_roles(c: &Cluster) -> bool {
    let mut preferred = c
        .drbd
        .iter()
        .filter(|d| c.exports.iter().any(|e| e.drbd == d.name))
        .filter_map(|d| d.preferred_node.as_deref())
        .collect::<Vec<_>>();
    preferred.sort_unstable();
    preferred.dedup();
    preferred.len() > 1
}

#[derive(Serialize)]
struct Cib {
    /// `cib-bootstrap-options`.
    properties: Vec<NvPair>,
    nodes: Vec<CibNode>,
    resources: Vec<Resource>,
    constraints: Vec<Constraint>,
    rsc_defaults: Vec<NvPair>,
}

#[derive(Serialize)]
struct NvPair {
    id: String,
    name: String,
    /// As given: the template escapes it.
    value: String,
}

#[derive(Serialize)]
struct CibNode {
    id: u32,
    uname: String,
}

/// A primitive, or a clone of one.
#[derive(Serialize)]
struct Resource {
    clone: Option<CloneMeta>,
    primitive: Primitive,
}

#[derive(Serialize)]
struct CloneMeta {
    id: String,
    meta: Vec<NvPair>,
}

#[derive(Serialize)]
struct Primitive {
    id: String,
    class: &'static str,
    provider: Option<&'static str>,
    /// The agent type (`type=`).
    agent: String,
    params: Vec<NvPair>,
    /// Parameter sets that apply on one node only (a `#uname` rule).
    node_params: Vec<NodeParams>,
    ops: Vec<CibOp>,
}

#[derive(Serialize)]
struct NodeParams {
    id: String,
    uname: String,
    pairs: Vec<NvPair>,
}

#[derive(Serialize)]
struct CibOp {
    id: String,
    name: &'static str,
    interval: &'static str,
    timeout: &'static str,
    role: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Constraint {
    Location {
        id: String,
        rsc: String,
        /// Only the role (`Promoted`) is placed, not the instances.
        role: Option<&'static str>,
        node: String,
        score: &'static str,
    },
    Colocation {
        id: String,
        rsc: String,
        rsc_role: Option<&'static str>,
        with_rsc: String,
        with_rsc_role: Option<&'static str>,
        score: &'static str,
    },
    /// Always `kind="Mandatory"`.
    Order {
        id: String,
        first: String,
        first_action: &'static str,
        then: String,
        then_action: &'static str,
    },
}

/// An operation: name, interval, timeout, role.
type OpSpec = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

const MONITOR_60S: &[OpSpec] = &[("monitor", "60s", "20s", None)];
const DLM_OPS: &[OpSpec] = &[("monitor", "60s", "60s", None)];
/// The DRBD primitive's role monitors (LINBIT's defaults, 29 s and 31 s).
const DRBD_MONITORS: &[OpSpec] = &[
    ("monitor", "29s", "20s", Some("Promoted")),
    ("monitor", "31s", "20s", Some("Unpromoted")),
];
/// The DRBD primitive's other actions.
const DRBD_ACTIONS: &[OpSpec] = &[
    ("start", "0s", "240s", None),
    ("stop", "0s", "100s", None),
    ("promote", "0s", "90s", None),
    ("demote", "0s", "90s", None),
    ("notify", "0s", "90s", None),
];
/// The alua agent's role monitors: also those of a DRBD primitive that carries its
/// target ([`carries_target`]), so a target changed behind the cluster's back is seen
/// as soon as with a separate alua clone.
const ALUA_MONITORS: &[OpSpec] = &[
    ("monitor", "10s", "20s", Some("Promoted")),
    ("monitor", "11s", "20s", Some("Unpromoted")),
];
const ALUA_ACTIONS: &[OpSpec] = &[
    ("start", "0s", "60s", None),
    ("stop", "0s", "60s", None),
    ("promote", "0s", "60s", None),
    ("demote", "0s", "60s", None),
];
const VIP_OPS: &[OpSpec] = &[("monitor", "10s", "20s", None)];
/// LVM-activate's own advertised defaults (90 s for every action).
const LVM_OPS: &[OpSpec] = &[
    ("monitor", "30s", "90s", None),
    ("start", "0s", "90s", None),
    ("stop", "0s", "90s", None),
];

/// The meta attributes of a promotable clone: one Promoted instance, one instance per
/// node; `notify` is given per clone ([`promotable`]).
const PROMOTABLE_META: &[(&str, &str)] = &[
    ("promotable", "true"),
    ("promoted-max", "1"),
    ("promoted-node-max", "1"),
    ("clone-max", "2"),
    ("clone-node-max", "1"),
    ("interleave", "true"),
];

/// Whether the DRBD clone gets notifications. No: `ocf:sanforge:drbd` ignores them,
/// and for `ocf:linbit:drbd`: in a two-node cluster
/// they do nothing the other actions do not (drbd-utils 9.22's agent: `*/start`
/// re-runs `drbdadm adjust`, "usually a no-op" for two nodes; `post/*` refreshes the
/// promotion score, which start and every monitor also do, and would outdate the
/// disk only with `stop_outdates_secondary`, off by default; crm-fence-peer finds the
/// peer of a two-node cluster without them), yet each is a run of the shell agent on
/// both nodes before and after every demote and promote, which the transition waits
/// for: four rounds of 1 to 3 s each under TCG, most of a planned switchover
/// (measured in tests/failover.rs, benches/failover-steps.sh).
const DRBD_NOTIFY: bool = false;

/// `<nvpair>`s with ids `PREFIX-NAME`.
fn nvpairs<K: AsRef<str>, V: Into<String>>(
    prefix: &str,
    pairs: impl IntoIterator<Item = (K, V)>,
) -> Vec<NvPair> {
    pairs
        .into_iter()
        .map(|(k, v)| NvPair {
            id: format!("{prefix}-{}", k.as_ref()),
            name: k.as_ref().to_string(),
            value: v.into(),
        })
        .collect()
}

/// A primitive `id` of agent (class, provider, type) with `params` and `ops`.
fn primitive(
    id: &str,
    agent: (&'static str, Option<&'static str>, &str),
    params: Vec<(&str, String)>,
    ops: &[OpSpec],
) -> Primitive {
    let (class, provider, ty) = agent;
    Primitive {
        id: id.to_string(),
        class,
        provider,
        agent: ty.to_string(),
        params: nvpairs(&format!("{id}-params"), params),
        node_params: Vec::new(),
        ops: ops
            .iter()
            .map(|&(name, interval, timeout, role)| CibOp {
                id: format!(
                    "{id}-{name}-{interval}{}",
                    role.map(|r| format!("-{}", r.to_lowercase()))
                        .unwrap_or_default()
                ),
                name,
                interval,
                timeout,
                role,
            })
            .collect(),
    }
}

impl From<Primitive> for Resource {
    fn from(primitive: Primitive) -> Self {
        Resource {
            clone: None,
            primitive,
        }
    }
}

/// A promotable clone `id` of `primitive`, with clone notifications when `notify`.
/// Each notification is a round of agent runs on every node that the transition waits
/// for (pre and post of every demote and promote): only an agent that acts on them
/// gets them.
fn promotable(id: &str, primitive: Primitive, notify: bool) -> Resource {
    let meta = PROMOTABLE_META
        .iter()
        .copied()
        .chain([("notify", if notify { "true" } else { "false" })]);
    Resource {
        clone: Some(CloneMeta {
            id: id.to_string(),
            meta: nvpairs(&format!("{id}-meta"), meta),
        }),
        primitive,
    }
}

fn colocation(
    rsc: &str,
    rsc_role: Option<&'static str>,
    with_rsc: &str,
    with_rsc_role: Option<&'static str>,
) -> Constraint {
    Constraint::Colocation {
        id: format!("col-{rsc}-with-{with_rsc}"),
        rsc: rsc.to_string(),
        rsc_role,
        with_rsc: with_rsc.to_string(),
        with_rsc_role,
        score: "INFINITY",
    }
}

/// `then` starts (or promotes) after `first` did `first_action`.
fn order(
    first: &str,
    first_action: &'static str,
    then: &str,
    then_action: &'static str,
) -> Constraint {
    Constraint::Order {
        id: format!("ord-{first}-{first_action}-{then}"),
        first: first.to_string(),
        first_action,
        then: then.to_string(),
        then_action,
    }
}

/// The Pacemaker CIB: fencing, per DRBD resource a promotable DRBD clone that
/// carries its target, or beside it a promotable `ocf:sanforge:alua` clone colocated
/// with its Promoted role and ordered after its promotion (as in the classic DRBD +
/// target setups, needed when a VG sits between them), VIPs with the
/// Promoted target, a DLM clone when a device uses SCST `cluster_mode`, stickiness
/// above location preferences (no automatic failback), and `no-quorum-policy=stop`:
/// with `two_node` the survivor keeps quorum, and a node that boots alone waits for its
/// peer (`wait_for_all`) instead of promoting stale data.
pub fn cib_xml(c: &Cluster, s: &Secrets) -> Result<String> {
    let mut cib = Cib {
        properties: properties(c),
        nodes: c
            .nodes
            .iter()
            .map(|n| CibNode {
                id: n.node_id,
                uname: n.name.clone(),
            })
            .collect(),
        resources: Vec::new(),
        constraints: Vec::new(),
        rsc_defaults: nvpairs(
            "rsc-options",
            [
                ("resource-stickiness", STICKINESS.to_string()),
                ("priority", "1".to_string()),
            ],
        ),
    };
    cib.add_fencing(c, s);
    let dlm = c.exports.iter().any(|e| e.cluster_mode);
    if dlm {
        cib.add_dlm(c);
    }
    for d in &c.drbd {
        cib.add_drbd(c, d, dlm);
    }
    templates::render("cib.xml", &cib)
}

/// `cib-bootstrap-options`.
fn properties(c: &Cluster) -> Vec<NvPair> {
    let fencing_on = c.fencing != Fencing::Off;
    let mut props: Vec<(&str, String)> = vec![
        ("cluster-name", c.name.clone()),
        ("stonith-enabled", fencing_on.to_string()),
        ("no-quorum-policy", "stop".into()),
        ("symmetric-cluster", "true".into()),
        ("stonith-timeout", "60s".into()),
        // Pacemaker throttles actions when a node's load average nears this share of
        // its cores (default 80%): one action at a time in the whole cluster when a
        // node reports "high load", which a storage node with I/O in flight (D-state
        // threads count) or a TCG guest does all the time. A failover here is a few
        // actions that must run now, not a recovery storm to pace: measured, the
        // default serialized a switchover into 2.5 s monitors on the critical path.
        ("load-threshold", "1000%".into()),
    ];
    if fencing_on && c.quorum == Quorum::TwoNode {
        // The node holding the Promoted instance wins the fence race after a split.
        props.push(("priority-fencing-delay", "15s".into()));
    }
    if let Fencing::Sbd {
        devices,
        watchdog_timeout,
        ..
    } = &c.fencing
    {
        if devices.is_empty() {
            props.push((
                "stonith-watchdog-timeout",
                format!("{}s", watchdog_timeout * 2),
            ));
        }
    }
    nvpairs("cib-bootstrap-options", props)
}

impl Cib {
    /// A fence agent device per node (never run by the node it fences), or one
    /// `fence_sbd` device for shared sbd disks; nothing for watchdog-only sbd or off.
    fn add_fencing(&mut self, c: &Cluster, s: &Secrets) {
        match &c.fencing {
            Fencing::Agent { agent, params } => {
                for n in &c.nodes {
                    let id = format!("fence-{}", n.name);
                    let mut p: Vec<(&str, String)> = params
                        .get(&n.name)
                        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect())
                        .unwrap_or_default();
                    p.push(("pcmk_host_list", n.name.clone()));
                    if s.fence_passwords.contains_key(&n.name) {
                        p.push((
                            "password_script",
                            format!("/bin/cat {SECRETS_DIR}/fence-{}.pw", n.name),
                        ));
                    }
                    self.resources
                        .push(primitive(&id, ("stonith", None, agent), p, MONITOR_60S).into());
                    // A node never runs the device that fences itself.
                    self.constraints.push(Constraint::Location {
                        id: format!("loc-{id}-avoid-{}", n.name),
                        rsc: id,
                        role: None,
                        node: n.name.clone(),
                        score: "-INFINITY",
                    });
                }
            }
            Fencing::Sbd { devices, .. } if !devices.is_empty() => {
                self.resources.push(
                    primitive(
                        "fence-sbd",
                        ("stonith", None, "fence_sbd"),
                        vec![("devices", devices.join(","))],
                        MONITOR_60S,
                    )
                    .into(),
                );
            }
            _ => {}
        }
    }

    /// DLM for SCST cluster_mode (persistent reservations shared between nodes).
    fn add_dlm(&mut self, c: &Cluster) {
        let params = if c.fencing == Fencing::Off {
            vec![("allow_stonith_disabled", "true".to_string())]
        } else {
            vec![]
        };
        self.resources.push(Resource {
            clone: Some(CloneMeta {
                id: "dlm-clone".into(),
                meta: nvpairs("dlm-clone-meta", [("interleave", "true")]),
            }),
            primitive: primitive(
                "dlm",
                ("ocf", Some("pacemaker"), "controld"),
                params,
                DLM_OPS,
            ),
        });
    }

    /// DRBD resource `d`: its promotable clone (carrying the target when
    /// [`carries_target`]), else the ALUA agent's clone when it is exported, and its
    /// VIPs, which follow the target.
    fn add_drbd(&mut self, c: &Cluster, d: &DrbdConf, dlm: bool) {
        let drbd_id = format!("drbd-{}", d.name);
        let drbd_clone = format!("{drbd_id}-clone");
        let exported = c.exports.iter().any(|e| e.drbd == d.name);
        let carries = carries_target(c, d);
        let drbd = match c.drbd_agent {
            // sanforge-init's native agent (src/agent/drbd): the minor names its line
            // of /proc/drbd (DRBD 8.4), so it starts no process to find it.
            DrbdAgent::Sanforge => {
                let mut params = vec![
                    ("drbd_resource", d.name.clone()),
                    ("drbd_minor", d.minor.to_string()),
                ];
                if carries {
                    params.extend(target_params(c, d));
                }
                let monitors = if carries {
                    ALUA_MONITORS
                } else {
                    DRBD_MONITORS
                };
                let ops = [monitors, DRBD_ACTIONS].concat();
                let mut p = primitive(&drbd_id, ("ocf", Some("sanforge"), "drbd"), params, &ops);
                if carries {
                    p.node_params = alua_node_params(c, &drbd_id);
                }
                p
            }
            DrbdAgent::Linbit => primitive(
                &drbd_id,
                ("ocf", Some("linbit"), "drbd"),
                vec![
                    ("drbd_resource", d.name.clone()),
                    // The agent's sanctioned switch for running without notifications
                    // (it refuses notify=false without it): see DRBD_NOTIFY.
                    ("ignore_missing_notifications", (!DRBD_NOTIFY).to_string()),
                ],
                &[DRBD_MONITORS, DRBD_ACTIONS].concat(),
            ),
        };
        self.resources
            .push(promotable(&drbd_clone, drbd, DRBD_NOTIFY));
        // No location score for `preferred-node` unless the cluster spreads its
        // resources (active/active): the drbd agent gives a connected
        // UpToDate Secondary the same promotion score as the Primary (10000), and
        // stickiness does not hold the Promoted role, so any role preference pulls the
        // Promoted role back to that node as soon as a move constraint is cleared or
        // the node returns (automatic failback, measured in tests/failover.rs). With
        // equal scores Pacemaker keeps the current Promoted instance.
        if spreads_promoted_roles(c) {
            if let Some(node) = &d.preferred_node {
                self.constraints.push(Constraint::Location {
                    id: format!("loc-{drbd_clone}-promoted-on-{node}"),
                    rsc: drbd_clone.clone(),
                    role: Some("Promoted"),
                    node: node.clone(),
                    score: PREFERRED_NODE_SCORE,
                });
            }
        }
        // What the VIPs follow: the target when there is one, else DRBD itself.
        let lvm = self.add_lvm(c, d, &drbd_clone);
        let mut holder = drbd_clone.clone();
        if carries && dlm {
            self.constraints.extend(dlm_first(&drbd_clone));
        } else if exported && !carries {
            holder = self.add_alua(c, d, &drbd_clone, lvm.as_deref(), dlm);
        }
        for v in c.vips.iter().filter(|v| v.drbd == d.name) {
            let id = format!("vip-{}", v.name);
            let (ip, prefix) = v.address.split_once('/').unwrap_or((&v.address, "32"));
            let params = vec![
                ("ip", ip.to_string()),
                ("cidr_netmask", prefix.to_string()),
                ("nic", v.interface.clone()),
            ];
            self.resources.push(
                primitive(&id, ("ocf", Some("heartbeat"), "IPaddr2"), params, VIP_OPS).into(),
            );
            self.constraints
                .push(colocation(&id, None, &holder, Some("Promoted")));
            self.constraints
                .push(order(&holder, "promote", &id, "start"));
        }
    }

    /// The volume group on DRBD resource `d` (`[[lvm]]`), if any: an
    /// `ocf:heartbeat:LVM-activate` primitive where DRBD is Promoted, started after the
    /// promote (and so stopped before the demote). `vg_access_mode=system_id`: the VG
    /// carries the LVM system ID of the node that activated it (lvm.conf's
    /// `system_id_source = "uname"`, the node name), which the agent takes over on the
    /// new Primary; no lock manager is needed. Returns the primitive's id.
    fn add_lvm(&mut self, c: &Cluster, d: &DrbdConf, drbd_clone: &str) -> Option<String> {
        let vg = c.vg_on(&d.name)?;
        // Named after the DRBD resource: a VG name may hold `+`, which an XML id cannot.
        let id = format!("lvm-{}", d.name);
        let params = vec![
            ("vgname", vg.vg.clone()),
            ("vg_access_mode", "system_id".to_string()),
            ("activation_mode", "exclusive".to_string()),
        ];
        self.resources.push(
            primitive(
                &id,
                ("ocf", Some("heartbeat"), "LVM-activate"),
                params,
                LVM_OPS,
            )
            .into(),
        );
        self.constraints.extend([
            colocation(&id, None, drbd_clone, Some("Promoted")),
            order(drbd_clone, "promote", &id, "start"),
        ]);
        Some(id)
    }

    /// The `ocf:sanforge:alua` clone of DRBD resource `d`, Promoted where DRBD is,
    /// started and promoted after it (and after the DLM); with a VG on the DRBD device
    /// (`lvm`), promoted after the VG is active and so demoted (its LUNs on the VG's
    /// LVs removed) before the VG is deactivated. Returns the clone's id.
    fn add_alua(
        &mut self,
        c: &Cluster,
        d: &DrbdConf,
        drbd_clone: &str,
        lvm: Option<&str>,
        dlm: bool,
    ) -> String {
        let alua_id = format!("alua-{}", d.name);
        let alua_clone = format!("{alua_id}-clone");
        let params = target_params(c, d);
        let mut p = primitive(
            &alua_id,
            ("ocf", Some("sanforge"), "alua"),
            params,
            &[ALUA_MONITORS, ALUA_ACTIONS].concat(),
        );
        p.node_params = alua_node_params(c, &alua_id);
        // ocf:sanforge:alua does nothing on a notification (it answers 0 at once).
        self.resources.push(promotable(&alua_clone, p, false));
        self.constraints.extend([
            colocation(&alua_clone, Some("Promoted"), drbd_clone, Some("Promoted")),
            order(drbd_clone, "start", &alua_clone, "start"),
            order(drbd_clone, "promote", &alua_clone, "promote"),
        ]);
        if let Some(lvm) = lvm {
            self.constraints.extend([
                colocation(&alua_clone, Some("Promoted"), lvm, None),
                order(lvm, "start", &alua_clone, "promote"),
            ]);
        }
        if dlm {
            self.constraints.extend(dlm_first(&alua_clone));
        }
        alua_clone
    }
}

/// Whether DRBD resource `d`'s own primitive carries its SCSI target (the
/// parameters of `ocf:sanforge:alua` given to `ocf:sanforge:drbd`, src/agent/drbd/target.rs)
/// instead of a separate alua clone: when it is exported, runs the native DRBD agent
/// and nothing sits between DRBD and the target (no VG on the device, whose activation
/// must come between the promote and the LUNs). A switchover is then one demote and
/// one promote instead of four actions in a row (measured: 0.8 to 1 s less under TCG,
/// benches/failover.sh).
pub fn carries_target(c: &Cluster, d: &DrbdConf) -> bool {
    c.drbd_agent == DrbdAgent::Sanforge
        && c.exports.iter().any(|e| e.drbd == d.name)
        && c.vg_on(&d.name).is_none()
}

/// The target's parameters for DRBD resource `d`, the same on every node (the per-node
/// ones are [`alua_node_params`]).
fn target_params(c: &Cluster, d: &DrbdConf) -> Vec<(&'static str, String)> {
    let mut params: Vec<(&str, String)> = Vec::new();
    match c.target {
        TargetStack::Scst => {
            params.push(("stack", "scst".into()));
            params.push(("device_group", d.name.clone()));
        }
        TargetStack::Lio => {
            params.push(("stack", "lio".into()));
            params.push(("lio_luns", lio_luns(c, &d.name)));
            params.push(("cluster_name", c.name.clone()));
        }
    }
    params.push(("promoted_state", c.alua.promoted_state.clone()));
    params.push(("unpromoted_state", c.alua.unpromoted_state.clone()));
    params
}

/// `rsc` (the target's resource) starts after the DLM, where it runs (SCST
/// `cluster_mode` needs the lockspace).
fn dlm_first(rsc: &str) -> [Constraint; 2] {
    [
        order("dlm-clone", "start", rsc, "start"),
        colocation(rsc, None, "dlm-clone", None),
    ]
}

/// The per-node parameters of the `ocf:sanforge:alua` instance `id`: one
/// `instance_attributes` set per node, selected by a `#uname` rule, so the one CIB
/// gives each node its own `ports` (and with SCST its own local and remote target
/// groups).
fn alua_node_params(c: &Cluster, id: &str) -> Vec<NodeParams> {
    let mut out = Vec::new();
    for n in &c.nodes {
        let set = format!("{id}-params-{}", n.name);
        let mut p: Vec<(&str, String)> = Vec::new();
        if c.target == TargetStack::Scst {
            p.push(("local_target_group", n.name.clone()));
            if c.nodes.len() == 2 {
                if let Some(peer) = c.nodes.iter().find(|o| o.name != n.name) {
                    p.push(("remote_target_group", peer.name.clone()));
                }
            }
        }
        let ports = agent_ports(c, n);
        if !ports.is_empty() {
            p.push(("ports", ports));
        }
        if p.is_empty() {
            continue;
        }
        out.push(NodeParams {
            pairs: nvpairs(&set, p),
            id: set,
            uname: n.name.clone(),
        });
    }
    out
}

/// `lio_luns` of the `ocf:sanforge:alua` instance for DRBD resource `drbd`:
/// `NAME=DEVICE@LUN` (`/dev/drbdMINOR`, or `/dev/VG/LV` for an LV of a VG on DRBD),
/// blank separated, in export order.
pub fn lio_luns(c: &Cluster, drbd: &str) -> String {
    c.exports
        .iter()
        .filter(|e| e.drbd == drbd)
        .map(|e| format!("{}={}@{}", e.name, c.export_device(e), e.lun))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The agent's `ports` on `node`: `iscsi/IQN/tpgt_1` (LIO) or `iscsi/IQN` and
/// `qla2x00t/WWPN` (SCST).
pub fn agent_ports(c: &Cluster, node: &crate::ha::cluster::Node) -> String {
    match c.target {
        TargetStack::Lio => node
            .iscsi_targets
            .iter()
            .map(|t| format!("iscsi/{t}/tpgt_1"))
            .collect::<Vec<_>>()
            .join(" "),
        TargetStack::Scst => node
            .iscsi_targets
            .iter()
            .map(|t| format!("iscsi/{t}"))
            .chain(node.fc_targets.iter().map(|w| format!("qla2x00t/{w}")))
            .collect::<Vec<_>>()
            .join(" "),
    }
}
