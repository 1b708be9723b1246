//! The agent's self-description: every parameter it reads ([`PARAMS`], also what
//! `sanforge cluster render` may pass) and the OCF meta-data XML Pacemaker and
//! `ocf-tester` ask for with `meta-data`. Reads nothing.

/// One agent parameter, as the meta-data describes it.
pub struct ParamSpec {
    pub name: &'static str,
    pub required: bool,
    pub default: Option<&'static str>,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

/// Every parameter the agent reads (`OCF_RESKEY_<name>`), in meta-data order.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "stack",
        required: false,
        default: Some("scst"),
        shortdesc: "SCSI target stack: scst or lio",
        longdesc: "The SCSI target stack whose ALUA state this agent manages: scst \
                   (/sys/kernel/scst_tgt) or lio (configfs, /sys/kernel/config/target).",
    },
    ParamSpec {
        name: "device_group",
        required: false,
        default: None,
        shortdesc: "SCST device group",
        longdesc: "SCST only, required there: the ALUA device group (DEVICE_GROUP in \
                   scst.conf, /sys/kernel/scst_tgt/device_groups/NAME) whose target groups \
                   this agent switches.",
    },
    ParamSpec {
        name: "lio_devices",
        required: false,
        default: None,
        shortdesc: "LIO backstores (HBA/DEVICE, space separated)",
        longdesc: "LIO only, required there: the backstores whose ALUA target port groups \
                   this agent switches, each as HBA/DEVICE under \
                   /sys/kernel/config/target/core (e.g. iblock_0/disk1), separated by blanks.",
    },
    ParamSpec {
        name: "lio_luns",
        required: false,
        default: None,
        shortdesc: "LIO LUNs created at promote (NAME=/dev/DEVICE@LUN, space separated)",
        longdesc: "LIO only, instead of lio_devices: the LUNs this agent creates on promote \
                   and removes on demote and stop, for block devices that only the promoted \
                   node can open (single-primary DRBD). Each entry is NAME=DEVICE@LUN, e.g. \
                   disk0=/dev/drbd0@0, separated by blanks. On promote, per entry: the \
                   iblock backstore core/iblock_LUN/NAME (control udev_path=DEVICE, \
                   wwn/vpd_unit_serial derived from cluster_name and NAME so every node \
                   presents the same LU, enable 1, its default_tg_pt_gp transitioning), \
                   LUN LUN in every TPG listed in ports (required), the mapped LUN LUN in \
                   every ACL of those TPGs, then default_tg_pt_gp set to promoted_state. Demote and stop remove them in \
                   reverse order (mapped LUNs, LUNs, backstore) so DRBD can demote; start \
                   leaves the ports enabled without LUNs. Monitor: 8 with every LUN present \
                   and promoted, 0 without any LUN and ports enabled, 7 without LUNs and \
                   ports disabled.",
    },
    ParamSpec {
        name: "cluster_name",
        required: false,
        default: Some(""),
        shortdesc: "Cluster name, part of the LIO unit serial (lio_luns)",
        longdesc: "With lio_luns: the cluster name; the unit serial (VPD page 0x80, and the \
                   NAA identifier LIO derives from it) of LUN NAME is the first 32 hex digits \
                   of sha256(\"sanforge:CLUSTER_NAME:NAME\"), identical on every node.",
    },
    ParamSpec {
        name: "local_target_group",
        required: false,
        default: None,
        shortdesc: "Target group of this node's ports",
        longdesc: "The ALUA target group that holds this node's target ports: an SCST \
                   TARGET_GROUP of the device group, or for LIO the tg_pt_gp name under \
                   core/HBA/DEVICE/alua/ of every listed backstore. Its state is what \
                   promote and demote switch. Required, except with lio_luns, where it \
                   defaults to default_tg_pt_gp.",
    },
    ParamSpec {
        name: "remote_target_group",
        required: false,
        default: None,
        shortdesc: "Target group of the peer's ports (optional)",
        longdesc: "The ALUA target group that stands for the peer node's ports in this \
                   node's configuration (SCST keeps no ALUA state in sync between nodes). \
                   When set, promote marks it with unpromoted_state and start and demote \
                   mark it with promoted_state, so both nodes report the same picture to \
                   initiators.",
    },
    ParamSpec {
        name: "promoted_state",
        required: false,
        default: Some("active"),
        shortdesc: "ALUA state when promoted: active or nonoptimized",
        longdesc: "The ALUA state of the local target group while this instance is \
                   promoted: active (active/optimized, the default) or nonoptimized.",
    },
    ParamSpec {
        name: "unpromoted_state",
        required: false,
        default: Some("standby"),
        shortdesc: "ALUA state when unpromoted: standby, unavailable or nonoptimized",
        longdesc: "The ALUA state of the local target group while this instance runs \
                   unpromoted. standby (the default) suits single-primary DRBD, whose \
                   secondary cannot serve I/O; unavailable also refuses I/O; nonoptimized \
                   only makes sense with dual-primary DRBD or I/O forwarding.",
    },
    ParamSpec {
        name: "ports",
        required: false,
        default: Some(""),
        shortdesc: "Target ports enabled on start, disabled on stop (optional)",
        longdesc: "Target ports this agent enables on start and disables on stop, separated \
                   by blanks. SCST: DRIVER/TARGET under /sys/kernel/scst_tgt/targets \
                   (e.g. iscsi/iqn.2024-01.org.example:t1). LIO: FABRIC/WWN/tpgt_N under \
                   /sys/kernel/config/target (e.g. iscsi/iqn.2024-01.org.example:t1/tpgt_1). \
                   SCST: stop leaves a port enabled while another device group on this \
                   node still uses it (one of its target groups lists the target and is \
                   not offline). When set, a node whose ports are all disabled is \
                   reported stopped.",
    },
    ParamSpec {
        name: "sysfs_root",
        required: false,
        default: Some("/sys"),
        shortdesc: "Advanced: where sysfs is mounted",
        longdesc: "Advanced, for tests: the directory standing for /sys (configfs is \
                   expected at SYSFS_ROOT/kernel/config). Any other directory than /sys is a \
                   plain directory tree in which sanforge-init plays sysfs and configfs \
                   (attribute files made with their directories). Leave the default in \
                   production.",
    },
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The `<parameter>` element of `p` with the default `default` (the drbd agent,
/// which carries these parameters too, has none for `stack`: unset means no target).
pub fn parameter_xml(p: &ParamSpec, default: Option<&str>) -> String {
    format!(
        "<parameter name=\"{}\" unique=\"0\" required=\"{}\">\n\
         <longdesc lang=\"en\">{}</longdesc>\n\
         <shortdesc lang=\"en\">{}</shortdesc>\n\
         <content type=\"string\"{} />\n\
         </parameter>\n",
        p.name,
        u8::from(p.required),
        esc(p.longdesc),
        esc(p.shortdesc),
        default
            .map(|d| format!(" default=\"{}\"", esc(d)))
            .unwrap_or_default()
    )
}

/// The OCF 1.1 meta-data (valid against `ra-api-1.dtd` and resource-agents' metadata.rng).
pub fn metadata() -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\"?>\n\
         <!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n\
         <resource-agent name=\"alua\" version=\"1.0\">\n\
         <version>1.1</version>\n\
         <longdesc lang=\"en\">\n\
         Switches the ALUA state of this node's target port group (SCST or LIO) with the \
         cluster role: the promoted instance advertises promoted_state (active/optimized), \
         the others unpromoted_state (standby), with transitioning during every switchover. \
         Run it as a promotable clone (promoted-max=1, clone-node-max=1) ordered after and \
         colocated with the DRBD promotable clone. A stop that cannot finish returns 1, so \
         Pacemaker fences the node.\n\
         </longdesc>\n\
         <shortdesc lang=\"en\">ALUA target port group state for SCST and LIO</shortdesc>\n\
         <parameters>\n",
    );
    for p in PARAMS {
        x.push_str(&parameter_xml(p, p.default));
    }
    x.push_str(
        "</parameters>\n\
         <actions>\n\
         <action name=\"start\" timeout=\"60s\" />\n\
         <action name=\"stop\" timeout=\"60s\" />\n\
         <action name=\"promote\" timeout=\"60s\" />\n\
         <action name=\"demote\" timeout=\"60s\" />\n\
         <action name=\"monitor\" depth=\"0\" timeout=\"20s\" interval=\"10s\" role=\"Promoted\" />\n\
         <action name=\"monitor\" depth=\"0\" timeout=\"20s\" interval=\"11s\" role=\"Unpromoted\" />\n\
         <action name=\"notify\" timeout=\"20s\" />\n\
         <action name=\"meta-data\" timeout=\"5s\" />\n\
         <action name=\"validate-all\" timeout=\"20s\" />\n\
         </actions>\n\
         </resource-agent>\n",
    );
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lists_every_parameter_and_role_monitors() {
        let m = metadata();
        for p in PARAMS {
            assert!(
                m.contains(&format!("<parameter name=\"{}\"", p.name)),
                "{}",
                p.name
            );
        }
        assert!(m.contains("interval=\"10s\" role=\"Promoted\""));
        assert!(m.contains("interval=\"11s\" role=\"Unpromoted\""));
        assert!(!m.contains("&&"));
    }
}
