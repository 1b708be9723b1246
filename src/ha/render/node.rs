//! The node config sanforge-init reads (`node.toml`), made from the very types the
//! init parses ([`NodeConfig`]) and parsed back before it is returned, and sbd's
//! settings (`/etc/default/sbd`, also the sbd service's environment).
//!
//! Reads: only its arguments.

use super::templates;
use crate::config::node::{
    Acl, Chap, Ha, Interface, IscsiTarget, Lio, Modules, Network, NodeConfig, Requirement, Restart,
    ScstNode, Service, Watchdog, WatchdogMode,
};
use crate::config::storage::{Activate, Storage, VolumeGroup};
use crate::ha::cluster::{Cluster, DrbdAgent, DrbdVersion, FencePeer, Fencing, Node, TargetStack};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The node config sanforge-init reads: hostname, modules, interfaces with this node's
/// addresses, and corosync/pacemaker as supervised services (links come up before
/// services, so the order is links → (sbd →) corosync → pacemaker). DRBD, SCST targets
/// and VIPs are Pacemaker's: the init does not start them.
///
/// With `target = "lio"` the node gets a `[lio]` section instead: its iSCSI targets
/// (TPG 1, the node's portals) with an ACL per iSCSI initiator and no backstore or LUN
/// (see [`TargetStack`]); a `chap = true` initiator's ACL names its account
/// (`chap = { secret = "INITIATOR" }`), whose value is in `secrets/chap.toml`.
pub fn node_toml(c: &Cluster, node: &Node) -> Result<String> {
    let cfg = match c.target {
        TargetStack::Lio => lio_node_config(c, node),
        TargetStack::Scst => scst_node_config(c, node),
    };
    let body = toml::to_string(&cfg).context("cannot serialize node.toml")?;
    #[derive(Serialize)]
    struct Data<'a> {
        node: &'a str,
        cluster: &'a str,
        body: &'a str,
    }
    let text = templates::render(
        "node.toml",
        &Data {
            node: &node.name,
            cluster: &c.name,
            body: &body,
        },
    )?;
    NodeConfig::parse(Path::new("node.toml"), &text)
        .map_err(|e| anyhow::anyhow!("rendered node.toml for {} is invalid: {e}", node.name))?;
    Ok(text)
}

/// The SCST node config: DRBD (9 with its TCP transport, or the kernel's 8.4), SCST
/// and vdisk, the DLM when a device uses `cluster_mode`, the iSCSI and QLogic target
/// drivers the node's ports need, and `[scst]`: the node's own scst.conf (applied by
/// the init at boot, devices inactive and ports disabled, for the agent to switch) and
/// the iSCSI daemon, which the init starts before it adds the iSCSI targets.
fn scst_node_config(c: &Cluster, node: &Node) -> NodeConfig {
    let mut load: Vec<String> = vec!["drbd".into()];
    if c.drbd_version != DrbdVersion::V84 {
        // DRBD 9's transports are modules of their own; 8.4 has TCP built in.
        load.push("drbd_transport_tcp".into());
    }
    load.extend(["scst".into(), "scst_vdisk".into()]);
    let mut params = BTreeMap::new();
    if c.exports.iter().any(|e| e.cluster_mode) {
        load.insert(0, "dlm".into());
    }
    if !node.iscsi_targets.is_empty() {
        load.push("iscsi_scst".into());
    }
    if !node.fc_targets.is_empty() {
        load.push("qla2xxx_scst".into());
        load.push("qla2x00tgt".into());
        params.insert(
            "qla2xxx_scst".to_string(),
            "qlini_mode=disabled".to_string(),
        );
    }
    // Corosync and Pacemaker are not plain services: the init starts them in the
    // cluster order of its `[ha]` section (src/init/ha.rs), after sbd (a service).
    let ha = ha_section(c, c.exports.iter().any(|e| e.cluster_mode));
    // iscsi-scstd must run before `add_target` on the iSCSI driver: the init's SCST
    // step starts it (a plain service would start after the targets step).
    let scst = ScstNode {
        conf: crate::contract::node_scst_conf(&node.name),
        iscsi_daemon: (!node.iscsi_targets.is_empty())
            .then(|| vec![ISCSI_SCSTD.into(), "-f".into()]),
    };
    NodeConfig {
        hostname: node.name.clone(),
        sysctl: BTreeMap::new(),
        modules: Modules {
            load,
            params,
            blacklist: Vec::new(),
        },
        hardware: Default::default(),
        network: node_interfaces(node),
        storage: ha_storage(c, node),
        lio: None,
        ha: Some(ha),
        services: sbd_services(c),
        scst: Some(scst),
        ssh: None,
        metrics: None,
        logs: None,
        time: None,
    }
}

/// The LIO node config: modules (DRBD, the LIO core, iblock and the iSCSI fabric),
/// `[ha]` without SCST's `cluster_mode`, and `[lio]` with the node's targets, portals
/// and initiator ACLs but no backstore: `ocf:sanforge:alua` creates the iblock
/// backstores on `/dev/drbdN` and maps the LUNs at promote, on the Promoted node only.
fn lio_node_config(c: &Cluster, node: &Node) -> NodeConfig {
    // The LIO images use the distribution kernel's DRBD (8.4, no transport modules).
    let load: Vec<String> = [
        "drbd",
        "target_core_mod",
        "target_core_iblock",
        "iscsi_target_mod",
    ]
    .iter()
    .map(|m| m.to_string())
    .collect();
    let acls = lio_acls(c);
    let lio = Lio {
        backstores: Vec::new(),
        iscsi: node
            .iscsi_targets
            .iter()
            .map(|t| IscsiTarget {
                iqn: t.clone(),
                tpg: 1,
                portals: node.iscsi_portals.clone(),
                luns: Vec::new(),
                acls: acls.clone(),
            })
            .collect(),
    };
    NodeConfig {
        hostname: node.name.clone(),
        sysctl: BTreeMap::new(),
        modules: Modules {
            load,
            params: BTreeMap::new(),
            blacklist: Vec::new(),
        },
        hardware: Default::default(),
        network: node_interfaces(node),
        storage: ha_storage(c, node),
        lio: Some(lio),
        ha: Some(ha_section(c, false)),
        services: sbd_services(c),
        scst: None,
        ssh: None,
        metrics: None,
        logs: None,
        time: None,
    }
}

/// The node's `[storage]` for the cluster's `[[lvm]]` VGs: each one `activate = "ha"`
/// (left inactive at boot; `ocf:heartbeat:LVM-activate` activates it on promote, and
/// lvm.conf gets a `system_id_source` for its system ID), and this node's backing disk
/// of each DRBD resource carrying one in `lvm-reject`: the disk holds the same PV label
/// as the DRBD device above it, and LVM must only ever see the PV through DRBD.
fn ha_storage(c: &Cluster, node: &Node) -> Storage {
    let mut s = Storage::default();
    for l in &c.lvm {
        s.lvm.push(VolumeGroup {
            vg: l.vg.clone(),
            activate: Activate::Ha,
        });
        let disk = c
            .drbd(&l.drbd)
            .and_then(|d| d.nodes.get(&node.name))
            .map(|dn| dn.disk.clone());
        if let Some(disk) = disk.filter(|d| !s.lvm_reject.contains(d)) {
            s.lvm_reject.push(disk);
        }
    }
    s
}

/// An ACL per iSCSI initiator; one with `chap` names its account (the initiator's
/// name in the secrets), whose value the init reads from the secrets initrd.
fn lio_acls(c: &Cluster) -> Vec<Acl> {
    c.initiators
        .iter()
        .filter_map(|i| {
            let iqn = i.iqn.clone()?;
            let chap = i.chap.then(|| Chap {
                secret: Some(i.name.clone()),
                ..Chap::default()
            });
            Some(Acl {
                initiator: iqn,
                mapped_luns: Vec::new(),
                chap,
            })
        })
        .collect()
}

/// sbd as a plain service (started before the cluster) when fencing is sbd.
fn sbd_services(c: &Cluster) -> Vec<Service> {
    let mut services = Vec::new();
    if let Fencing::Sbd { .. } = &c.fencing {
        services.push(Service {
            name: "sbd".into(),
            argv: vec![SBD.into(), "watch".into()],
            // `sbd watch` forks: the parent exits 0 once its watcher (which owns the
            // watchdog) completed a first round, 1 if it could not start.
            restart: Restart::OnFailure,
            env: sbd_vars(c).into_iter().collect(),
        });
    }
    services
}

/// The node's `[ha]` section: on, with sbd owning the watchdog when fencing is sbd.
fn ha_section(c: &Cluster, cluster_mode: bool) -> Ha {
    Ha {
        enabled: true,
        cluster_mode,
        watchdog: match &c.fencing {
            Fencing::Sbd { watchdog, .. } => Some(Watchdog {
                device: watchdog.clone(),
                mode: WatchdogMode::Sbd,
                ..Watchdog::default()
            }),
            _ => None,
        },
        requires: requirements(c, cluster_mode),
        ..Ha::default()
    }
}

/// SCST's iSCSI daemon (built by the modules stage with iscsi-scst).
pub const ISCSI_SCSTD: &str = "/usr/sbin/iscsi-scstd";
/// The sbd daemon the node runs for `fencing.mode = "sbd"`.
pub const SBD: &str = "/usr/sbin/sbd";
/// Where Debian's fence-agents puts its agents (pacemaker-fenced runs them from there).
pub const FENCE_AGENTS_DIR: &str = "/usr/sbin";

/// What a fence agent of fence-agents needs beyond python3 and `fencing.py`: the
/// IPMI agents run `ipmitool`, fence_redfish imports `requests`.
fn agent_needs(agent: &str) -> &'static [(&'static str, &'static str)] {
    const IPMI: &[(&str, &str)] = &[("/usr/bin/ipmitool", "ipmitool")];
    const REDFISH: &[(&str, &str)] = &[(
        "/usr/lib/python3/dist-packages/requests/__init__.py",
        "python3-requests",
    )];
    match agent {
        "fence_ipmilan" | "fence_ipmilanplus" | "fence_idrac" | "fence_ilo3" | "fence_ilo4"
        | "fence_ilo5" | "fence_imm" => IPMI,
        "fence_redfish" => REDFISH,
        _ => &[],
    }
}

/// The programs the rendered CIB and services run on a node, each with the Debian
/// package that ships it and what in the cluster file needs it (`[[ha.requires]]`,
/// checked by the build against the image).
pub fn requirements(c: &Cluster, cluster_mode: bool) -> Vec<Requirement> {
    let req = |path: String, package: &str, reason: &str| Requirement {
        path,
        package: package.to_string(),
        reason: reason.to_string(),
    };
    let mut v = Vec::new();
    match &c.fencing {
        Fencing::Sbd { devices, .. } => {
            v.push(req(SBD.into(), "sbd", "fencing.mode = \"sbd\""));
            if !devices.is_empty() {
                // pacemaker-fenced fences the peer by writing to its slot on the
                // shared disk through fence-agents' fence_sbd (a python3 script).
                v.push(req(
                    format!("{FENCE_AGENTS_DIR}/fence_sbd"),
                    "fence-agents",
                    "fencing.mode = \"sbd\" with fencing.devices (the fence_sbd device of the CIB)",
                ));
            }
        }
        Fencing::Agent { agent, .. } => {
            let why = format!("fencing.agent = \"{agent}\"");
            v.push(req(
                format!("{FENCE_AGENTS_DIR}/{agent}"),
                "fence-agents",
                &why,
            ));
            // What the agent itself runs or imports (fence-agents only recommends
            // or depends on them, and a dependency's files are not in the image
            // unless named).
            for (path, package) in agent_needs(agent) {
                v.push(req(path.to_string(), package, &why));
            }
        }
        Fencing::Off => {}
    }
    if cluster_mode {
        let why = "export cluster-mode = true (the DLM of SCST's cluster_mode, run by ocf:pacemaker:controld)";
        v.push(req("/usr/sbin/dlm_controld".into(), "dlm-controld", why));
        // The agent itself, and what it runs: dlm_tool (monitor), killall (stop).
        v.push(req(
            "/usr/lib/ocf/resource.d/pacemaker/controld".into(),
            "pacemaker",
            why,
        ));
        v.push(req("/usr/sbin/dlm_tool".into(), "dlm-controld", why));
    }
    if !c.drbd.is_empty() {
        match c.drbd_agent {
            DrbdAgent::Linbit => v.push(req(
                "/usr/lib/ocf/resource.d/linbit/drbd".into(),
                "drbd-utils",
                "[[drbd]] (the ocf:linbit:drbd agent)",
            )),
            DrbdAgent::Sanforge => {
                // What ocf:sanforge:drbd runs (the agent itself is /init).
                let why = "[[drbd]] (the ocf:sanforge:drbd agent runs drbdadm, drbdsetup and crm_attribute)";
                v.push(req("/sbin/drbdadm".into(), "drbd-utils", why));
                // Role changes: drbd-utils' drbdsetup of the module's generation.
                let drbdsetup = match c.drbd_version {
                    DrbdVersion::V84 => crate::agent::drbd::DRBDSETUP_84,
                    DrbdVersion::V9 => "/sbin/drbdsetup",
                };
                v.push(req(drbdsetup.into(), "drbd-utils", why));
                v.push(req(
                    "/usr/sbin/crm_attribute".into(),
                    "pacemaker-cli-utils",
                    why,
                ));
            }
        }
    }
    if !c.drbd.is_empty() && c.fence_peer == FencePeer::Sanforge {
        // The handler itself is /init; what it runs.
        let why = "[[drbd]] (DRBD's fence-peer handler, sanforge-init drbd-fence-peer, runs cibadmin and crmadmin)";
        v.push(req("/usr/sbin/cibadmin".into(), "pacemaker-cli-utils", why));
        v.push(req("/usr/sbin/crmadmin".into(), "pacemaker-cli-utils", why));
    }
    if !c.lvm.is_empty() {
        // LVM-activate checks for `lvm`, `dmsetup` and `pgrep` before it starts
        // (`check_binary`); vgs, vgchange, lvchange, lvmconfig and pvscan are lvm2's
        // links to `lvm`.
        let why = "[[lvm]] (the ocf:heartbeat:LVM-activate agent)";
        v.push(req(
            "/usr/lib/ocf/resource.d/heartbeat/LVM-activate".into(),
            "resource-agents",
            why,
        ));
        v.push(req(crate::contract::LVM.into(), "lvm2", why));
        for tool in ["vgs", "vgchange", "lvchange", "lvmconfig", "pvscan"] {
            v.push(req(format!("/sbin/{tool}"), "lvm2", why));
        }
        v.push(req("/sbin/dmsetup".into(), "dmsetup", why));
        v.push(req("/usr/bin/pgrep".into(), "procps", why));
    }
    v
}

fn node_interfaces(node: &Node) -> Network {
    Network {
        interfaces: node
            .interfaces
            .iter()
            .map(|i| Interface {
                name: i.name.clone(),
                addresses: i.addresses.clone(),
                mtu: i.mtu,
                mac: i.mac.clone(),
                ..Interface::default()
            })
            .collect(),
        ..Network::default()
    }
}

/// sbd's settings, in the order `/etc/default/sbd` lists them.
fn sbd_vars(c: &Cluster) -> Vec<(String, String)> {
    let Fencing::Sbd {
        watchdog,
        devices,
        watchdog_timeout,
    } = &c.fencing
    else {
        return vec![];
    };
    let mut v = vec![
        ("SBD_PACEMAKER".to_string(), "yes".to_string()),
        ("SBD_STARTMODE".to_string(), "always".to_string()),
        ("SBD_WATCHDOG_DEV".to_string(), watchdog.clone()),
        (
            "SBD_WATCHDOG_TIMEOUT".to_string(),
            watchdog_timeout.to_string(),
        ),
        // Debian's default is `yes`, which pacemakerd must also see in its own
        // environment (systemd passes it /etc/default/sbd); the init starts pacemakerd
        // without it, so both sides say no.
        ("SBD_SYNC_RESOURCE_STARTUP".to_string(), "no".to_string()),
    ];
    if !devices.is_empty() {
        v.push(("SBD_DEVICE".to_string(), devices.join(";")));
    }
    v
}

/// `/etc/default/sbd`.
pub(super) fn sbd_env(c: &Cluster) -> Result<String> {
    #[derive(Serialize)]
    struct Var {
        name: String,
        value: String,
    }
    #[derive(Serialize)]
    struct Data {
        vars: Vec<Var>,
    }
    let vars = sbd_vars(c)
        .into_iter()
        .map(|(name, value)| Var { name, value })
        .collect();
    templates::render("sbd", &Data { vars })
}
