//! Validation of a `cluster.toml`: [`RawCluster::validate`] runs one validator per
//! concern — cluster name, Corosync, nodes (names, ids, interfaces and links, target
//! ports, portals), quorum, fencing, DRBD resources, virtual IPs, exports, initiators,
//! ALUA states — and reports every error of the file, in file order, each at the
//! exact value at fault (`crate::config::spans`).
//!
//! A check that needs an earlier value to be valid is skipped when that value is in
//! error, so one mistake is reported once: a reference to a node is not checked while
//! a node name is wrong ([`Names`]), a missing link not while a link is wrong.
//!
//! Reads: the parsed file and its text (for the spans of the values at fault);
//! nothing else.

mod lvm;
mod nodes;
mod resources;

use super::model::*;
use crate::config::spans::{at, Errors};
use crate::config::ConfigError;
use nodes::check_nodes;
use resources::{check_drbd, check_exports, check_initiators, check_vips};
use std::collections::btree_map::{BTreeMap, Entry};
use std::path::Path;

/// The names of one kind of entry (nodes, DRBD resources) that other entries refer
/// to, in file order; unknown when one of them is in error. References are checked
/// only against a known list: else a wrong name would be reported again at each
/// reference to it.
pub(super) struct Names(Option<Vec<String>>);

impl Names {
    /// `names`, known when `ok` (none of them was in error).
    fn new(names: Vec<String>, ok: bool) -> Names {
        Names(ok.then_some(names))
    }

    /// Whether the list is known and holds `name`.
    fn has(&self, name: &str) -> bool {
        self.all().iter().any(|n| n == name)
    }

    /// Whether the list is known and lacks `name`.
    fn lacks(&self, name: &str) -> bool {
        self.0.is_some() && !self.has(name)
    }

    /// Every name, in file order; none when the list is unknown.
    fn all(&self) -> &[String] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// Records `user` as the user of `key` unless another has it; that other user if so
/// (the first stays the user, so every later one is reported against it).
fn claim<K: Ord>(users: &mut BTreeMap<K, String>, key: K, user: &str) -> Option<String> {
    match users.entry(key) {
        Entry::Vacant(v) => {
            v.insert(user.to_string());
            None
        }
        Entry::Occupied(o) => Some(o.get().clone()),
    }
}

/// True for `a-z A-Z 0-9 - _ .`, 1 to 63 characters, not starting with `-` or `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl RawCluster {
    /// Validates once; reports every error of the file, each at the value at fault.
    pub fn validate(self, file: &Path, text: &str) -> Result<Cluster, ConfigError> {
        let mut errs = Errors::new(file, text);
        check_cluster_name(&mut errs, &self.name);
        check_corosync(&mut errs, &self.corosync);
        let checked = check_nodes(&mut errs, &self.nodes, self.target);
        let quorum = check_quorum(&mut errs, self.quorum.as_ref(), self.nodes.len());
        let fencing = check_fencing(
            &mut errs,
            self.fencing.as_ref(),
            &checked.names,
            quorum.as_ref(),
        );
        let mut addrs = checked.addrs;
        let resources = check_drbd(
            &mut errs,
            &self.drbd,
            &checked.names,
            &addrs,
            fencing.as_ref(),
        );
        check_sbd_shared(&mut errs, fencing.as_ref(), &self.drbd);
        check_vips(&mut errs, &self.vips, &resources, &mut addrs);
        let vgs = lvm::check_lvm(&mut errs, &self.lvm, &resources, &self.drbd);
        check_exports(
            &mut errs,
            &self.exports,
            self.target,
            &resources,
            &vgs,
            &self.nodes,
        );
        check_initiators(&mut errs, &self.initiators, self.target);
        check_alua_states(&mut errs, &self.alua);
        let fence_peer = check_fence_peer(&mut errs, self.drbd_fence_peer, self.drbd_version);
        let cluster = quorum.zip(fencing).map(|(quorum, fencing)| Cluster {
            name: self.name,
            target: self.target,
            drbd_version: self.drbd_version,
            drbd_agent: self.drbd_agent,
            fence_peer,
            corosync: self.corosync,
            quorum,
            fencing,
            nodes: checked.nodes,
            drbd: self.drbd,
            lvm: self.lvm,
            vips: self.vips,
            exports: self.exports,
            initiators: self.initiators,
            alua: self.alua,
        });
        // A quorum or fencing in error was reported: `finish` fails before the `None`.
        errs.finish(cluster)?
            .ok_or_else(|| ConfigError::whole(file, "quorum or fencing was not validated"))
    }
}

fn check_cluster_name(errs: &mut Errors, name: &str) {
    if !is_name(name) {
        errs.at(
            at!["name"],
            format!("name `{name}`: expected 1 to 63 letters, digits, `-`, `_` or `.`"),
        );
    }
}

// ---------------------------------------------------------------------------------
// Corosync
// ---------------------------------------------------------------------------------

fn check_corosync(errs: &mut Errors, cs: &CorosyncConf) {
    if cs.transport != "knet" {
        errs.at(
            at!["corosync", "transport"],
            format!(
                "corosync.transport `{}`: only `knet` is supported (two encrypted links)",
                cs.transport
            ),
        );
    }
    if !["aes256", "aes192", "aes128"].contains(&cs.crypto_cipher.as_str()) {
        errs.at(at!["corosync", "crypto-cipher"], format!("corosync.crypto-cipher `{}`: expected aes256, aes192 or aes128 (crypto cannot be turned off)", cs.crypto_cipher));
    }
    if !["sha256", "sha384", "sha512"].contains(&cs.crypto_hash.as_str()) {
        errs.at(at!["corosync", "crypto-hash"], format!("corosync.crypto-hash `{}`: expected sha256, sha384 or sha512 (crypto cannot be turned off)", cs.crypto_hash));
    }
    if !(1000..=60000).contains(&cs.token) {
        errs.at(
            at!["corosync", "token"],
            format!("corosync.token {}: expected 1000 to 60000 ms", cs.token),
        );
    }
    if let Some(c) = cs.consensus {
        if !(200..=60000).contains(&c) {
            errs.at(
                at!["corosync", "consensus"],
                format!("corosync.consensus {c}: expected 200 to 60000 ms"),
            );
        }
    }
    if cs.link_mode != "passive" && cs.link_mode != "active" {
        errs.at(
            at!["corosync", "link-mode"],
            format!(
                "corosync.link-mode `{}`: expected `passive` or `active`",
                cs.link_mode
            ),
        );
    }
}

// ---------------------------------------------------------------------------------
// Quorum and fencing
// ---------------------------------------------------------------------------------

/// `two-node = true` (exactly two nodes) or a quorum device (at least two nodes);
/// `None` when in error.
fn check_quorum(errs: &mut Errors, qc: Option<&QuorumConf>, node_count: usize) -> Option<Quorum> {
    let Some(qc) = qc else {
        errs.at(
            at!["quorum"],
            "quorum: missing; add `[quorum]` with `two-node = true` or `device = { host = \"…\" }`",
        );
        return None;
    };
    match (qc.two_node, &qc.device) {
        (true, None) => {
            if node_count != 2 {
                errs.at(
                    at!["quorum", "two-node"],
                    format!(
                        "quorum.two-node needs exactly two [[node]] entries, found {}",
                        node_count
                    ),
                );
                return None;
            }
            Some(Quorum::TwoNode)
        }
        (false, Some(d)) => check_qdevice(errs, d, node_count),
        (true, Some(_)) => {
            errs.at(
                at!["quorum", "two-node"],
                "quorum: set either two-node = true or device, not both",
            );
            None
        }
        (false, None) => {
            errs.at(
                at!["quorum"],
                "quorum: expected `two-node = true` or `device = { host = \"…\" }`",
            );
            None
        }
    }
}

fn check_qdevice(errs: &mut Errors, d: &QdeviceConf, node_count: usize) -> Option<Quorum> {
    let before = errs.len();
    if d.host.is_empty() || d.host.contains(char::is_whitespace) {
        errs.at(
            at!["quorum", "device", "host"],
            format!(
                "quorum.device.host `{}`: expected a host name or address",
                d.host
            ),
        );
    }
    if d.algorithm != "ffsplit" && d.algorithm != "lms" {
        errs.at(
            at!["quorum", "device", "algorithm"],
            format!(
                "quorum.device.algorithm `{}`: expected ffsplit or lms",
                d.algorithm
            ),
        );
    }
    if node_count < 2 {
        errs.at(
            at!["quorum", "device"],
            format!(
                "a cluster needs at least two [[node]] entries, found {}",
                node_count
            ),
        );
    }
    (errs.len() == before).then(|| Quorum::Device {
        host: d.host.clone(),
        algorithm: d.algorithm.clone(),
    })
}

/// Fencing is required: a fence agent per node, sbd, or explicitly off; `None` when
/// in error. `quorum` is `None` when in error (the sbd check that needs it is skipped).
fn check_fencing(
    errs: &mut Errors,
    fc: Option<&FencingConf>,
    nodes: &Names,
    quorum: Option<&Quorum>,
) -> Option<Fencing> {
    let Some(fc) = fc else {
        errs.at(
            at!["fencing"],
            "fencing: missing; add `[fencing]` with `mode = \"agent\"` (a fence agent per node) or `mode = \"sbd\"`; turning it off needs `mode = \"off\"` and `i-understand = true`",
        );
        return None;
    };
    match fc.mode {
        FencingMode::Off => {
            if !fc.i_understand {
                errs.at(at!["fencing", "mode"], "fencing.mode = \"off\" needs `i-understand = true`: without fencing a hung node is assumed dead and both nodes may write (split brain)");
                return None;
            }
            Some(Fencing::Off)
        }
        FencingMode::Agent => check_fence_agent(errs, fc, nodes),
        FencingMode::Sbd => check_sbd(errs, fc, quorum),
    }
}

/// `mode = "agent"`: a `fence_*` agent and one parameter set per node, without
/// passwords (those are in the secrets file).
fn check_fence_agent(errs: &mut Errors, fc: &FencingConf, nodes: &Names) -> Option<Fencing> {
    let before = errs.len();
    let agent = fc.agent.clone().unwrap_or_default();
    if !agent.starts_with("fence_")
        || !agent[6..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || agent.len() == 6
    {
        errs.at(
            at!["fencing", "agent"],
            format!("fencing.agent `{agent}`: expected a fence agent name like fence_ipmilan"),
        );
    }
    let mut unknown = false;
    for (node, params) in &fc.params {
        if nodes.lacks(node) {
            unknown = true;
            errs.at(
                at!["fencing", "params", node],
                format!("fencing.params.{node}: unknown node `{node}`"),
            );
        }
        for (k, v) in params {
            if k == "password" || k == "passwd" {
                errs.at(at!["fencing", "params", node, k], format!("fencing.params.{node}.{k}: fence passwords belong in the secrets file (`[fence-passwords] {node} = \"…\"`), not in cluster.toml"));
            } else if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                || v.contains(['\n', '"', '<', '&'])
            {
                errs.at(at!["fencing", "params", node, k], format!("fencing.params.{node}.{k}: expected a name of letters, digits, `_`, `-` and a one-line value without `\"`, `<`, `&`"));
            }
        }
    }
    // An unknown node is likely the missing one misspelt: reported once, above.
    if !unknown {
        for n in nodes.all() {
            if !fc.params.contains_key(n) {
                errs.at(at!["fencing", "params"], format!("fencing.params: node `{n}` has no fence device parameters (`[fencing.params.{n}]`)"));
            }
        }
    }
    (errs.len() == before).then(|| Fencing::Agent {
        agent,
        params: fc.params.clone(),
    })
}

/// `mode = "sbd"`: a watchdog, and shared disks unless a quorum device breaks ties.
fn check_sbd(errs: &mut Errors, fc: &FencingConf, quorum: Option<&Quorum>) -> Option<Fencing> {
    let before = errs.len();
    let watchdog = fc.watchdog.clone().filter(|w| w.starts_with("/dev/"));
    if watchdog.is_none() {
        errs.at(
            at!["fencing", "watchdog"],
            "fencing.watchdog: sbd needs a watchdog device like /dev/watchdog",
        );
    }
    if fc.devices.is_empty() && quorum == Some(&Quorum::TwoNode) {
        errs.at(at!["fencing", "devices"], "fencing.devices: watchdog-only sbd cannot fence in a two-node cluster (both halves keep quorum); add shared sbd disks or a quorum device");
    }
    for (dx, d) in fc.devices.iter().enumerate() {
        if !d.starts_with("/dev/") || d.contains([';', ' ']) {
            errs.at(
                at!["fencing", "devices", dx],
                format!("fencing.devices `{d}`: expected a /dev/ path without blanks or `;`"),
            );
        }
    }
    if !(1..=120).contains(&fc.watchdog_timeout) {
        errs.at(
            at!["fencing", "watchdog-timeout"],
            format!(
                "fencing.watchdog-timeout {}: expected 1 to 120 s",
                fc.watchdog_timeout
            ),
        );
    }
    let watchdog = watchdog.filter(|_| errs.len() == before)?;
    Some(Fencing::Sbd {
        watchdog,
        devices: fc.devices.clone(),
        watchdog_timeout: fc.watchdog_timeout,
    })
}

/// sbd's disks must be one disk that every node opens (a SAN LUN, a shared virtual
/// disk): never a DRBD device (sbd's man page: sbd partitions "must not be mirrored
/// (via MD, DRBD, or the storage layer itself)", a split mirror would hide one
/// node's messages from the other) nor a node's own disk that backs DRBD (each node
/// would read its own copy and never see the fence message). `fencing` is `None`
/// when in error.
fn check_sbd_shared(errs: &mut Errors, fencing: Option<&Fencing>, drbd: &[DrbdConf]) {
    let Some(Fencing::Sbd { devices, .. }) = fencing else {
        return;
    };
    for (dx, dev) in devices.iter().enumerate() {
        let mirrored = dev.starts_with("/dev/drbd")
            || drbd.iter().any(|d| dev == &format!("/dev/drbd{}", d.minor));
        if mirrored {
            errs.at(
                at!["fencing", "devices", dx],
                format!("fencing.devices `{dev}` is a DRBD device: sbd needs one disk that both nodes open (a shared LUN or virtual disk), never a replicated one (a split mirror hides the fence messages)"),
            );
            continue;
        }
        let local = drbd.iter().find_map(|d| {
            d.nodes.iter().find_map(|(node, dn)| {
                same_disk(dev, &dn.disk).then_some((d.name.as_str(), node.as_str(), &dn.disk))
            })
        });
        if let Some((res, node, disk)) = local {
            errs.at(
                at!["fencing", "devices", dx],
                format!("fencing.devices `{dev}` is on `{disk}`, the backing disk of drbd `{res}` on node `{node}`: that disk is the node's own, not shared; sbd needs one disk that both nodes open (a shared LUN or virtual disk)"),
            );
        }
    }
}

/// Whether two device paths name the same disk: equal, or one a partition of the
/// other's disk (`/dev/vda1` and `/dev/vda`, `/dev/nvme0n1p2` and `/dev/nvme0n1p1`).
/// Kernel names only (`/dev/NAME`); links under `/dev/disk/` or `/dev/VG/` are
/// compared as written.
fn same_disk(a: &str, b: &str) -> bool {
    fn whole(p: &str) -> &str {
        let Some(name) = p.strip_prefix("/dev/").filter(|n| !n.contains('/')) else {
            return p;
        };
        let base = p.trim_end_matches(|c: char| c.is_ascii_digit());
        // Disks whose own name ends in a number (nvme0n1, mmcblk0, md0, loop0) number
        // their partitions after a `p`; the others (sda, vda, xvda) right after.
        if ["nvme", "mmcblk", "md", "loop", "nbd"]
            .iter()
            .any(|k| name.starts_with(k))
        {
            return match base.strip_suffix('p') {
                Some(disk)
                    if base.len() < p.len() && disk.ends_with(|c: char| c.is_ascii_digit()) =>
                {
                    disk
                }
                _ => p,
            };
        }
        base
    }
    a == b || whole(a) == whole(b)
}

// ---------------------------------------------------------------------------------
// ALUA
// ---------------------------------------------------------------------------------

/// Whether an ALUA state lets a target port group serve reads and writes.
fn serves_io(state: &str) -> bool {
    state == "active" || state == "nonoptimized"
}

/// Records the error of each ALUA state (see [`check_alua`]).
/// The fence-peer handler: the native one for DRBD 8.4 unless the file says otherwise;
/// DRBD 9 only with drbd-utils' (the native handler reads `/proc/drbd`, which DRBD 9
/// no longer fills, and must not ask netlink from inside a state change).
fn check_fence_peer(errs: &mut Errors, f: Option<FencePeer>, v: DrbdVersion) -> FencePeer {
    match (f, v) {
        (Some(FencePeer::Sanforge), DrbdVersion::V9) => {
            errs.at(
                at!["drbd-fence-peer"],
                "drbd-fence-peer `sanforge`: the native handler is DRBD 8.4's (it reads /proc/drbd); \
                 with drbd-version \"9\" use \"drbd-utils\" (crm-fence-peer.9.sh) or leave it unset",
            );
            FencePeer::DrbdUtils
        }
        (Some(f), _) => f,
        (None, DrbdVersion::V84) => FencePeer::Sanforge,
        (None, DrbdVersion::V9) => FencePeer::DrbdUtils,
    }
}

fn check_alua_states(errs: &mut Errors, a: &AluaConf) {
    if let Err(m) = check_promoted_state(&a.promoted_state) {
        errs.at(at!["alua", "promoted-state"], m);
    }
    if let Err(m) = check_unpromoted_state(&a.unpromoted_state) {
        errs.at(at!["alua", "unpromoted-state"], m);
    }
}

/// Checks the ALUA states each role gets.
///
/// With single-primary DRBD only the Promoted node can open the device: a Secondary
/// refuses every read and write. The unpromoted node's target port group must
/// therefore advertise `unavailable` (or `standby`/`offline`), never `active` or
/// `nonoptimized`: an initiator that is told a path is active/non-optimized uses it
/// (round-robin multipath, or failover when the optimized path blips) and gets I/O
/// errors — or, if someone "fixes" that with dual-primary DRBD, two nodes accept
/// writes to the same blocks without a cluster file system and the copies diverge
/// (LINBIT: never multipath across DRBD dual-primaries). The promoted node's group
/// must serve I/O (`active`, i.e. active/optimized). `transitioning` is what the agent
/// reports during a switch and is not a steady state.
pub fn check_alua(a: &AluaConf) -> Result<(), (&'static str, String)> {
    check_promoted_state(&a.promoted_state).map_err(|m| ("promoted-state", m))?;
    check_unpromoted_state(&a.unpromoted_state).map_err(|m| ("unpromoted-state", m))
}

fn check_promoted_state(state: &str) -> Result<(), String> {
    if !serves_io(state) {
        return Err(format!(
            "alua.promoted-state `{state}`: the promoted node must serve I/O; expected `active`"
        ));
    }
    Ok(())
}

fn check_unpromoted_state(state: &str) -> Result<(), String> {
    if serves_io(state) {
        return Err(format!(
            "alua.unpromoted-state `{state}` would let both nodes serve writes: with single-primary DRBD the unpromoted node cannot do I/O; expected `unavailable`, `standby` or `offline`"
        ));
    }
    if !["unavailable", "standby", "offline"].contains(&state) {
        return Err(format!(
            "alua.unpromoted-state `{state}`: expected `unavailable`, `standby` or `offline`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spans::{Seg, Spans};

    #[test]
    fn alua_states() {
        let ok = AluaConf::default();
        assert!(check_alua(&ok).is_ok());
        let both = AluaConf {
            promoted_state: "active".into(),
            unpromoted_state: "nonoptimized".into(),
        };
        assert_eq!(check_alua(&both).unwrap_err().0, "unpromoted-state");
        let standby = AluaConf {
            promoted_state: "active".into(),
            unpromoted_state: "standby".into(),
        };
        assert!(check_alua(&standby).is_ok());
        let none = AluaConf {
            promoted_state: "standby".into(),
            unpromoted_state: "unavailable".into(),
        };
        assert_eq!(check_alua(&none).unwrap_err().0, "promoted-state");
    }

    #[test]
    fn locate_finds_key_after_anchor() {
        let t = "[[node]]\nname = \"a\"\nx = 1\n[[node]]\nname = \"b\"\nx = 2\n";
        let spans = Spans::parse(t).unwrap();
        let locate = |path: &[Seg]| {
            let k = spans.find(path).key.unwrap();
            crate::config::line_col(t, k.start)
        };
        assert_eq!(locate(at!["node", 1, "x"]), (6, 1));
        assert_eq!(locate(at!["node", 0, "x"]), (3, 1));
    }

    #[test]
    fn same_disk_sees_partitions_of_one_disk() {
        assert!(same_disk("/dev/vda", "/dev/vda"));
        assert!(same_disk("/dev/vda1", "/dev/vda"));
        assert!(same_disk("/dev/sdb2", "/dev/sdb1"));
        assert!(same_disk("/dev/nvme0n1p2", "/dev/nvme0n1"));
        assert!(same_disk("/dev/nvme0n1p2", "/dev/nvme0n1p1"));
        assert!(!same_disk("/dev/vdb", "/dev/vda"));
        assert!(!same_disk("/dev/nvme0n1", "/dev/nvme1n1"));
        assert!(!same_disk("/dev/disk/by-id/virtio-sbd", "/dev/vda"));
        assert!(!same_disk("/dev/vg0/r1", "/dev/vg0/r0"));
    }

    #[test]
    fn names_check_references_only_when_known() {
        let known = Names::new(vec!["a".into(), "b".into()], true);
        assert!(known.lacks("c") && !known.lacks("a") && known.has("a"));
        assert_eq!(known.all(), ["a", "b"]);
        let unknown = Names::new(vec!["a".into()], false);
        assert!(!unknown.lacks("c") && !unknown.has("a"));
        assert!(unknown.all().is_empty());
    }
}
