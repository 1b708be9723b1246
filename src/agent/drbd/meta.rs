//! The OCF meta-data of `ocf:sanforge:drbd` (what Pacemaker and `ocf-tester` ask for
//! with `meta-data`): its own parameters, then `ocf:sanforge:alua`'s, which it takes
//! when it carries the resource's target (see [`super::target`]). Reads nothing.

use crate::agent::meta::{parameter_xml, PARAMS};

/// The OCF 1.1 meta-data (valid against `ra-api-1.dtd`).
pub fn metadata() -> String {
    let target: String = PARAMS
        .iter()
        .map(|p| parameter_xml(p, p.default.filter(|_| p.name != "stack")))
        .collect();
    HEAD.to_string() + &target + TAIL
}

const HEAD: &str = "<?xml version=\"1.0\"?>\n\
         <!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n\
         <resource-agent name=\"drbd\" version=\"1.0\">\n\
         <version>1.1</version>\n\
         <longdesc lang=\"en\">\n\
         Manages one DRBD resource as a promotable clone (promoted-max=1, clone-max=2, \
         clone-node-max=1): start attaches and connects it (drbdadm adjust), promote makes \
         it Primary, demote Secondary, stop takes it down. The promotion score \
         (node attribute master-RESOURCE) follows ocf:linbit:drbd's defaults: 10000 for \
         UpToDate data while Primary or with the peer known, 1000 for UpToDate data whose \
         peer is gone, none otherwise. Data that is not UpToDate (Inconsistent, Outdated, \
         Consistent) is never promoted. Reads /proc/drbd (DRBD 8.4) or drbdsetup status \
         --json (DRBD 9); notifications are not needed. With stack set (and the other \
         parameters of ocf:sanforge:alua), the resource also carries the SCSI target on \
         its device: start, promote, demote and stop do what ocf:sanforge:alua does, in \
         the same process (promote: DRBD first, then the target; demote and stop: the \
         target first), and monitor checks both, so a switchover is one demote and one \
         promote instead of four actions.\n\
         </longdesc>\n\
         <shortdesc lang=\"en\">DRBD resource (promotable)</shortdesc>\n\
         <parameters>\n\
         <parameter name=\"drbd_resource\" unique=\"1\" required=\"1\">\n\
         <longdesc lang=\"en\">The name of the DRBD resource, as in /etc/drbd.d.</longdesc>\n\
         <shortdesc lang=\"en\">DRBD resource name</shortdesc>\n\
         <content type=\"string\" />\n\
         </parameter>\n\
         <parameter name=\"drbd_minor\" unique=\"0\" required=\"0\">\n\
         <longdesc lang=\"en\">DRBD 8.4: the minor number of the resource's volume (the \
         line of /proc/drbd to read). When unset, the agent asks drbdadm sh-minor.</longdesc>\n\
         <shortdesc lang=\"en\">DRBD minor (8.4)</shortdesc>\n\
         <content type=\"integer\" />\n\
         </parameter>\n";

const TAIL: &str = "</parameters>\n\
         <actions>\n\
         <action name=\"start\" timeout=\"240s\" />\n\
         <action name=\"stop\" timeout=\"100s\" />\n\
         <action name=\"promote\" timeout=\"90s\" />\n\
         <action name=\"demote\" timeout=\"90s\" />\n\
         <action name=\"monitor\" depth=\"0\" timeout=\"20s\" interval=\"29s\" role=\"Promoted\" />\n\
         <action name=\"monitor\" depth=\"0\" timeout=\"20s\" interval=\"31s\" role=\"Unpromoted\" />\n\
         <action name=\"notify\" timeout=\"90s\" />\n\
         <action name=\"meta-data\" timeout=\"5s\" />\n\
         <action name=\"validate-all\" timeout=\"20s\" />\n\
         </actions>\n\
         </resource-agent>\n";
