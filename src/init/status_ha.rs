//! The parts of `sanforge-init status` read from the HA stack and the target stack's
//! ALUA groups: Pacemaker's resource instances with their roles, fail counts and
//! failed actions and bans from `crm_mon -1 -r -f -L --output-as=xml` (its XML API, the
//! `crm_mon-2.x.rng` schema Pacemaker ships, rather than the text meant for people),
//! and each target port group's access state from LIO configfs
//! (`core/HBA/DEV/alua/GROUP/alua_access_state`, a number) and SCST sysfs
//! (`device_groups/DG/target_groups/TG/state`, a name). Pure parsing over [`Sys`]:
//! runs on fake trees and recorded outputs.

use crate::contract::status::{AluaGroup, Ban, FailCount, HaResource};
use crate::scsi::alua::AluaState;
use crate::scsi::lio::CONFIGFS_TARGET;
use crate::sys::{FileKind, Sys};
use std::path::Path;

/// The command that prints Pacemaker's state as XML: inactive resources too (`-r`),
/// fail counts (`-f`) and the negative location constraints (`-L`, `<bans>`).
pub const CRM_MON_XML: [&str; 6] = [
    "/usr/sbin/crm_mon",
    "-1",
    "-r",
    "-f",
    "-L",
    "--output-as=xml",
];

/// What `crm_mon --output-as=xml` says about resources.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pacemaker {
    pub resources: Vec<HaResource>,
    pub fail_counts: Vec<FailCount>,
    pub failures: Vec<String>,
    pub bans: Vec<Ban>,
}

fn attr(n: roxmltree::Node, name: &str) -> String {
    n.attribute(name).unwrap_or_default().to_string()
}

/// Parses `crm_mon --output-as=xml`.
pub fn parse_crm_mon(xml: &str) -> Result<Pacemaker, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "pacemaker-result" {
        return Err(format!(
            "expected <pacemaker-result>, found <{}>",
            root.tag_name().name()
        ));
    }
    let mut p = Pacemaker::default();
    fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
        n.children()
            .find(|c| c.is_element() && c.tag_name().name() == tag)
    }
    if let Some(resources) = child(root, "resources") {
        for r in resources
            .descendants()
            .filter(|d| d.tag_name().name() == "resource")
        {
            let parent = r
                .parent_element()
                .filter(|e| e.tag_name().name() != "resources")
                .and_then(|e| e.attribute("id"))
                .map(str::to_string);
            p.resources.push(HaResource {
                id: attr(r, "id"),
                agent: attr(r, "resource_agent"),
                role: attr(r, "role"),
                nodes: r
                    .children()
                    .filter(|c| c.tag_name().name() == "node")
                    .map(|c| attr(c, "name"))
                    .collect(),
                parent,
                failed: r.attribute("failed") == Some("true"),
                managed: r.attribute("managed") != Some("false"),
            });
        }
    }
    if let Some(history) = child(root, "node_history") {
        for node in history.children().filter(|c| c.tag_name().name() == "node") {
            for h in node
                .children()
                .filter(|c| c.tag_name().name() == "resource_history")
            {
                let count = h.attribute("fail-count").and_then(parse_count).unwrap_or(0);
                if count > 0 {
                    p.fail_counts.push(FailCount {
                        resource: attr(h, "id"),
                        node: attr(node, "name"),
                        count,
                        migration_threshold: h
                            .attribute("migration-threshold")
                            .and_then(|v| v.parse().ok()),
                    });
                }
            }
        }
    }
    if let Some(failures) = child(root, "failures") {
        for f in failures
            .children()
            .filter(|c| c.tag_name().name() == "failure")
        {
            let reason = attr(f, "exitreason");
            p.failures.push(format!(
                "{} on {}: {} (exit {}{}) at {}",
                attr(f, "op_key"),
                attr(f, "node"),
                attr(f, "exitstatus"),
                attr(f, "exitcode"),
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(", {reason}")
                },
                attr(f, "last-rc-change")
            ));
        }
    }
    if let Some(bans) = child(root, "bans") {
        for b in bans.children().filter(|c| c.tag_name().name() == "ban") {
            p.bans.push(Ban {
                id: attr(b, "id"),
                resource: attr(b, "resource"),
                node: attr(b, "node"),
                promoted_only: b.attribute("promoted-only") == Some("true"),
            });
        }
    }
    Ok(p)
}

/// A fail count: a number, or `INFINITY` (Pacemaker's 1000000).
fn parse_count(v: &str) -> Option<u64> {
    if v.eq_ignore_ascii_case("infinity") {
        return Some(1_000_000);
    }
    v.parse().ok()
}

fn subdirs(sys: &mut dyn Sys, p: &Path) -> Vec<String> {
    let names = sys.list_dir(p).unwrap_or_default();
    names
        .into_iter()
        .filter(|n| sys.file_kind(&p.join(n)) == Some(FileKind::Dir))
        .collect()
}

/// Every ALUA group of LIO's backstores and SCST's device groups.
pub fn alua_groups(sys: &mut dyn Sys, scst_root: &Path) -> Vec<AluaGroup> {
    let mut out = Vec::new();
    let core = Path::new(CONFIGFS_TARGET).join("core");
    for hba in subdirs(sys, &core) {
        for dev in subdirs(sys, &core.join(&hba)) {
            let alua = core.join(&hba).join(&dev).join("alua");
            for group in subdirs(sys, &alua) {
                let Ok(raw) = sys.read_to_string(&alua.join(&group).join("alua_access_state"))
                else {
                    continue;
                };
                let raw = raw.trim();
                out.push(AluaGroup {
                    stack: "lio".into(),
                    device: format!("{hba}/{dev}"),
                    group,
                    state: AluaState::from_lio(raw)
                        .map_or_else(|| raw.to_string(), |s| s.scst_name().to_string()),
                });
            }
        }
    }
    let dgs = scst_root.join("device_groups");
    for dg in subdirs(sys, &dgs) {
        let tgs = dgs.join(&dg).join("target_groups");
        for tg in subdirs(sys, &tgs) {
            if let Ok(state) = sys.read_to_string(&tgs.join(&tg).join("state")) {
                out.push(AluaGroup {
                    stack: "scst".into(),
                    device: dg.clone(),
                    group: tg,
                    state: state.lines().next().unwrap_or_default().trim().to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::string_slice)]
    use super::*;
    use crate::sys::FakeSys;

    /// Recorded: `crm_mon -1 -r -f --output-as=xml` (Pacemaker 2.1.5, Debian 12) on the
    /// CIB `sanforge cluster render` makes for two LIO nodes, the cluster state made
    /// by `crm_simulate` (alpha promoted, a failed monitor of alua-r0 on beta).
    const RECORDED: &str =
        include_str!("../../tests/fixtures/pacemaker/crm_mon-two-nodes-promoted.xml");

    /// Recorded: `crm_mon -1 -r -f -L --output-as=xml` (Pacemaker 2.1.5) on the LIO
    /// cluster's CIB after `crm_resource --ban -r drbd-r0-clone --node beta` and the
    /// constraint DRBD's crm-fence-peer.sh places (a rule: Promoted only on alpha).
    #[test]
    fn bans_of_a_recorded_crm_mon_say_where_they_come_from() {
        let xml = include_str!("../../tests/fixtures/pacemaker/crm_mon-bans.xml");
        let p = parse_crm_mon(xml).unwrap();
        let lines: Vec<String> = p.bans.iter().map(Ban::line).collect();
        assert_eq!(
            lines,
            [
                "drbd-fence-by-handler-r0-rule-drbd-r0-clone: drbd-r0-clone (Promoted role) kept off beta \
                 (DRBD's fence-peer constraint: lifted once the peer is resynced)",
                "cli-ban-drbd-r0-clone-on-beta: drbd-r0-clone kept off beta \
                 (left by a move or ban: `crm_resource --clear` removes it)",
            ]
        );
        assert!(parse_crm_mon(RECORDED).unwrap().bans.is_empty());
    }

    #[test]
    fn roles_failures_and_fail_counts_of_a_recorded_crm_mon() {
        let p = parse_crm_mon(RECORDED).unwrap();
        let roles: Vec<(&str, &str, &str)> = p
            .resources
            .iter()
            .map(|r| (r.id.as_str(), r.role.as_str(), r.nodes[0].as_str()))
            .collect();
        assert_eq!(
            roles,
            [
                ("drbd-r0", "Promoted", "alpha"),
                ("drbd-r0", "Unpromoted", "beta"),
                ("alua-r0", "Promoted", "alpha"),
                ("alua-r0", "Unpromoted", "beta"),
            ]
        );
        assert_eq!(p.resources[2].agent, "ocf:sanforge:alua");
        assert_eq!(p.resources[2].parent.as_deref(), Some("alua-r0-clone"));
        assert!(p.resources.iter().all(|r| r.managed && !r.failed));
        assert_eq!(
            p.failures,
            ["alua-r0_monitor_10000 on beta: not running (exit 7, Simulated action result) at 2026-12-05 10:54:51Z"]
        );
        // crm_simulate records no fail count: none is reported.
        assert!(p.fail_counts.is_empty());
        // With one (the `fail-count` attribute of crm_mon-2.x.rng's resource_history).
        let tag = r#"<resource_history id="alua-r0" orphan="false" migration-threshold="1000000">"#;
        let at = RECORDED.rfind(tag).unwrap(); // beta's
        let counted = format!(
            "{}{}{}",
            &RECORDED[..at],
            r#"<resource_history id="alua-r0" orphan="false" migration-threshold="3" fail-count="2" last-failure="Sat Dec  5 10:54:51 2026">"#,
            &RECORDED[at + tag.len()..]
        );
        assert_ne!(counted, RECORDED);
        assert_eq!(
            parse_crm_mon(&counted).unwrap().fail_counts,
            [FailCount {
                resource: "alua-r0".into(),
                node: "beta".into(),
                count: 2,
                migration_threshold: Some(3),
            }]
        );
        assert!(parse_crm_mon("Cluster Summary:\n")
            .unwrap_err()
            .starts_with("not XML"));
    }

    #[test]
    fn alua_states_of_lio_and_scst() {
        let d = tempfile::tempdir().unwrap();
        let w = |rel: &str, v: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        w(
            "sys/kernel/config/target/core/fileio_0/disk0/alua/default_tg_pt_gp/alua_access_state",
            "0\n",
        );
        w(
            "sys/kernel/config/target/core/fileio_0/disk0/alua/node_b/alua_access_state",
            "2\n",
        );
        w(
            "sys/kernel/scst_tgt/device_groups/dg1/target_groups/local/state",
            "nonoptimized\n",
        );
        let mut sys = FakeSys::new(d.path());
        let got = alua_groups(&mut sys, Path::new("/sys/kernel/scst_tgt"));
        let show: Vec<String> = got
            .iter()
            .map(|a| format!("{} {} {} {}", a.stack, a.device, a.group, a.state))
            .collect();
        assert_eq!(
            show,
            [
                "lio fileio_0/disk0 default_tg_pt_gp active",
                "lio fileio_0/disk0 node_b standby",
                "scst dg1 local nonoptimized",
            ]
        );
    }
}
