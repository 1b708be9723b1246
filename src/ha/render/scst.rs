//! SCST: the node's `scst.conf` (devices inactive, target ports disabled, ALUA device
//! and target groups in the unpromoted state; `ocf:sanforge:alua` switches them) and
//! the secret overlay with the CHAP users. Both are built as the [`ScstConf`] model the
//! init and the agent parse, checked with [`scst::validate()`] and printed by
//! [`scst::print()`]; the template only adds the header.
//!
//! Reads: only its arguments.

use super::templates;
use crate::contract::SECRETS_DIR;
use crate::ha::cluster::{Cluster, Node, Secrets};
use crate::scsi::scst::{
    self, Attr, Device, DeviceGroup, DgDevice, Handler, IniGroup, Initiator, Lun, ScstConf, Target,
    TargetDriver, TargetGroup, TgTarget,
};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// Relative target port ids, unique across the cluster: every node's iSCSI then FC
/// ports, in node order, from 1.
pub fn rel_tgt_ids(c: &Cluster) -> Vec<(String, String, u32)> {
    let mut out = Vec::new();
    let mut id = 1;
    for n in &c.nodes {
        for t in n.iscsi_targets.iter().chain(&n.fc_targets) {
            out.push((n.name.clone(), t.clone(), id));
            id += 1;
        }
    }
    out
}

/// The `rel_tgt_id` of target port `t` (0 if it is no node's).
fn rel_tgt_id(ids: &[(String, String, u32)], t: &str) -> u32 {
    ids.iter()
        .find(|(_, n, _)| n == t)
        .map(|x| x.2)
        .unwrap_or(0)
}

/// The node's `scst.conf`. Devices are created inactive (`active 0`: a DRBD Secondary
/// refuses to be opened) and target ports disabled; every target port group starts in
/// the unpromoted state. The `ocf:sanforge:alua` agent enables the ports at start and
/// at promote activates the devices and sets the local group to the promoted state.
/// Only the node's own ports are in `TARGET_DRIVER` blocks; the peer's ports appear in
/// their target group with their `rel_tgt_id`.
pub fn scst_conf(c: &Cluster, node: &Node) -> Result<String> {
    let conf = scst_model(c, node);
    let errors: Vec<String> = scst::validate(&conf)
        .into_iter()
        .filter(|d| d.severity == scst::Severity::Error)
        .map(|d| d.message)
        .collect();
    if !errors.is_empty() {
        bail!(
            "rendered scst.conf for {} is invalid: {}",
            node.name,
            errors.join("; ")
        );
    }
    #[derive(Serialize)]
    struct Data<'a> {
        node: &'a str,
        secrets_dir: &'a str,
        body: String,
    }
    templates::render(
        "scst.conf",
        &Data {
            node: &node.name,
            secrets_dir: SECRETS_DIR,
            body: scst::print(&conf),
        },
    )
}

/// The SCST model behind [`scst_conf`].
pub fn scst_model(c: &Cluster, node: &Node) -> ScstConf {
    let ids = rel_tgt_ids(c);
    ScstConf {
        handlers: handlers(c),
        drivers: target_drivers(c, node, &ids),
        device_groups: device_groups(c, node, &ids),
        ..ScstConf::default()
    }
}

/// One handler per export handler, with a device per export on its block device
/// (`/dev/drbdMINOR`, or `/dev/VG/LV` for an LV of a VG on DRBD).
fn handlers(c: &Cluster) -> Vec<Handler> {
    let mut handlers: BTreeMap<&str, Vec<Device>> = BTreeMap::new();
    for e in &c.exports {
        let mut attrs = vec![
            Attr::new("filename", c.export_device(e)),
            Attr::new(
                "t10_dev_id",
                e.t10_dev_id.clone().unwrap_or_else(|| e.name.clone()),
            ),
            Attr::new("active", "0"),
            Attr::new("bind_alua_state", "1"),
            Attr::new("write_through", "1"),
        ];
        if e.cluster_mode {
            attrs.push(Attr::new("cluster_mode", "1"));
        }
        handlers
            .entry(e.handler.as_str())
            .or_default()
            .push(Device {
                name: e.name.clone(),
                attrs,
                line: 0,
            });
    }
    handlers
        .into_iter()
        .map(|(h, devices)| Handler {
            name: h.to_string(),
            attrs: vec![],
            devices,
            line: 0,
        })
        .collect()
}

/// The node's own ports, disabled, each with an `initiators` group holding every LUN
/// for the initiators of its transport (iSCSI names or WWPNs).
fn target_drivers(c: &Cluster, node: &Node, ids: &[(String, String, u32)]) -> Vec<TargetDriver> {
    let luns: Vec<Lun> = c
        .exports
        .iter()
        .map(|e| Lun {
            number: e.lun,
            device: e.name.clone(),
            attrs: vec![],
            line: 0,
        })
        .collect();
    let group = |inis: Vec<String>| IniGroup {
        name: "initiators".into(),
        attrs: vec![],
        luns: luns.clone(),
        initiators: inis
            .into_iter()
            .map(|name| Initiator { name, line: 0 })
            .collect(),
        line: 0,
    };
    let iscsi_inis: Vec<String> = c.initiators.iter().filter_map(|i| i.iqn.clone()).collect();
    let fc_inis: Vec<String> = c.initiators.iter().flat_map(|i| i.wwpns.clone()).collect();
    let mk_target = |name: &str, hw: bool, inis: &[String]| Target {
        name: name.to_string(),
        hw_target: hw,
        enabled: Some(false),
        attrs: vec![Attr::new("rel_tgt_id", rel_tgt_id(ids, name).to_string())],
        luns: vec![],
        groups: if inis.is_empty() || luns.is_empty() {
            vec![]
        } else {
            vec![group(inis.to_vec())]
        },
        line: 0,
    };
    let mut drivers = Vec::new();
    if !node.iscsi_targets.is_empty() {
        drivers.push(TargetDriver {
            name: "iscsi".into(),
            enabled: Some(true),
            attrs: vec![],
            targets: node
                .iscsi_targets
                .iter()
                .map(|t| mk_target(t, false, &iscsi_inis))
                .collect(),
            line: 0,
        });
    }
    if !node.fc_targets.is_empty() {
        drivers.push(TargetDriver {
            name: "qla2x00t".into(),
            enabled: None,
            attrs: vec![],
            targets: node
                .fc_targets
                .iter()
                .map(|t| mk_target(t, true, &fc_inis))
                .collect(),
            line: 0,
        });
    }
    drivers
}

/// A device group per DRBD resource with exports: its devices, and a target group
/// per node in the unpromoted state (the peer's ports with their `rel_tgt_id`).
fn device_groups(c: &Cluster, node: &Node, ids: &[(String, String, u32)]) -> Vec<DeviceGroup> {
    let mut groups = Vec::new();
    for d in &c.drbd {
        let devices: Vec<DgDevice> = c
            .exports
            .iter()
            .filter(|e| e.drbd == d.name)
            .map(|e| DgDevice {
                name: e.name.clone(),
                line: 0,
            })
            .collect();
        if devices.is_empty() {
            continue;
        }
        let target_groups = c
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| TargetGroup {
                name: n.name.clone(),
                attrs: vec![
                    Attr::new("group_id", (i + 1).to_string()),
                    Attr::new("state", c.alua.unpromoted_state.clone()),
                ],
                targets: n
                    .iscsi_targets
                    .iter()
                    .chain(&n.fc_targets)
                    .map(|t| TgTarget {
                        name: t.clone(),
                        attrs: if n.name == node.name {
                            vec![]
                        } else {
                            vec![Attr::new("rel_tgt_id", rel_tgt_id(ids, t).to_string())]
                        },
                        line: 0,
                    })
                    .collect(),
                line: 0,
            })
            .collect();
        groups.push(DeviceGroup {
            name: d.name.clone(),
            attrs: vec![],
            devices,
            target_groups,
            line: 0,
        });
    }
    groups
}

/// The secret SCST overlay: `IncomingUser "user secret"` on each of the node's iSCSI
/// targets for every CHAP initiator. SCST checks CHAP per target (any listed user is
/// accepted), so the ACL group still decides which LUNs an initiator sees. The agent
/// merges it into the public config with [`merge_auth`] before applying.
pub fn scst_auth(c: &Cluster, s: &Secrets, node: &Node) -> ScstConf {
    let mut conf = ScstConf::default();
    let users: Vec<Attr> = c
        .initiators
        .iter()
        .filter(|i| i.chap)
        .filter_map(|i| s.chap.get(&i.name))
        .map(|ch| Attr::new("IncomingUser", format!("{} {}", ch.user, ch.password)))
        .collect();
    if users.is_empty() || node.iscsi_targets.is_empty() {
        return conf;
    }
    conf.drivers.push(TargetDriver {
        name: "iscsi".into(),
        enabled: None,
        attrs: vec![],
        targets: node
            .iscsi_targets
            .iter()
            .map(|t| Target {
                name: t.clone(),
                attrs: users.clone(),
                ..Default::default()
            })
            .collect(),
        line: 0,
    });
    conf
}

/// Adds the attributes of `auth`'s targets to the same targets of `public`.
pub fn merge_auth(public: &mut ScstConf, auth: &ScstConf) {
    for ad in &auth.drivers {
        let Some(pd) = public.drivers.iter_mut().find(|d| d.name == ad.name) else {
            continue;
        };
        pd.attrs.extend(ad.attrs.iter().cloned());
        for at in &ad.targets {
            if let Some(pt) = pd.targets.iter_mut().find(|t| t.name == at.name) {
                pt.attrs.extend(at.attrs.iter().cloned());
            }
        }
    }
}
