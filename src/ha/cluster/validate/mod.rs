//! Validation of a `cluster.toml`: [`RawCluster::validate`] runs one validator per
//! concern, in file order — cluster name, Corosync, nodes (names, ids, interfaces and
//! links, target ports, portals), quorum, fencing, DRBD resources, virtual IPs,
//! exports, initiators, ALUA states — and stops at the first error, which names the
//! field and, when it can be found, its line (located from the entry's name).
//!
//! Reads: the parsed file and its text (to locate keys); nothing else.

mod nodes;
mod resources;

use super::model::*;
use crate::config::ConfigError;
use nodes::check_nodes;
use resources::{check_drbd, check_exports, check_initiators, check_vips};
use std::path::Path;

type Checked<T> = Result<T, ConfigError>;

/// Where errors point: the file and its text, to find the line of a key.
struct Check<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Check<'_> {
    /// An error at `key` of the entry whose line holds `anchor` (`""`: the first
    /// `key` in the file).
    fn err(&self, anchor: &str, key: &str, msg: String) -> ConfigError {
        let (l, c) = locate(self.text, anchor, key);
        ConfigError::new(self.file, l, c, msg)
    }
}

/// A name as it is quoted in the file, the anchor of its entry's errors.
fn q(s: &str) -> String {
    format!("\"{s}\"")
}

/// Line and column where `key = …` (or `[key]`) first appears. The cluster file is the
/// last config still located by key search; the recipe, node config and lock use the
/// TOML parser's spans (`crate::config::spans`).
pub(crate) fn find_key(text: &str, key: &str) -> (usize, usize) {
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        let rest = t.trim_start_matches('[').trim_start_matches('"');
        if let Some(after) = rest.strip_prefix(key) {
            let after = after.trim_start_matches('"').trim_start();
            if after.starts_with('=') || after.starts_with(']') || after.starts_with('.') {
                return (i + 1, indent + 1);
            }
        }
    }
    // An inline table: `luns = [{ lun = 0, backstore = "x" }]`.
    for (i, l) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(pos) = l.get(from..).and_then(|r| r.find(key)) {
            let start = from + pos;
            let before = l[..start].chars().next_back();
            let after = l[start + key.len()..].trim_start();
            if matches!(before, Some('{') | Some(',') | Some(' ') | Some('\t'))
                && after.starts_with('=')
            {
                return (i + 1, start + 1);
            }
            from = start + key.len();
        }
    }
    (0, 0)
}

/// Locates `key` at or after the first line containing `anchor` (e.g. `"alpha"`), for
/// errors about one entry of an array; falls back to the first `key` in the file.
fn locate(text: &str, anchor: &str, key: &str) -> (usize, usize) {
    if !anchor.is_empty() {
        if let Some(pos) = text.find(anchor) {
            let start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
            let skipped = text[..start].matches('\n').count();
            let (l, c) = find_key(&text[start..], key);
            if l > 0 {
                return (l + skipped, c);
            }
            return (skipped + 1, 1);
        }
    }
    find_key(text, key)
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

/// Whether `name` is one of the validated nodes.
fn known(nodes: &[Node], name: &str) -> bool {
    nodes.iter().any(|n| n.name == name)
}

impl RawCluster {
    /// Validates once; every error names the field (and its line when it can be found).
    pub fn validate(self, file: &Path, text: &str) -> Result<Cluster, ConfigError> {
        let ck = Check { file, text };
        check_cluster_name(&ck, &self.name)?;
        check_corosync(&ck, &self.corosync)?;
        let (nodes, mut addrs) = check_nodes(&ck, &self.nodes, self.target)?;
        let quorum = check_quorum(&ck, self.quorum.as_ref(), nodes.len())?;
        let fencing = check_fencing(&ck, self.fencing.as_ref(), &nodes, &quorum)?;
        let resources = check_drbd(&ck, &self.drbd, &nodes, &addrs, &fencing)?;
        check_vips(&ck, &self.vips, &resources, &mut addrs)?;
        check_exports(&ck, &self.exports, self.target, &resources, &nodes)?;
        check_initiators(&ck, &self.initiators, self.target)?;
        if let Err((key, msg)) = check_alua(&self.alua) {
            return Err(ck.err("", key, msg));
        }
        Ok(Cluster {
            name: self.name,
            target: self.target,
            drbd_version: self.drbd_version,
            corosync: self.corosync,
            quorum,
            fencing,
            nodes,
            drbd: self.drbd,
            vips: self.vips,
            exports: self.exports,
            initiators: self.initiators,
            alua: self.alua,
        })
    }
}

fn check_cluster_name(ck: &Check, name: &str) -> Checked<()> {
    if !is_name(name) {
        return Err(ck.err(
            "",
            "name",
            format!("name `{name}`: expected 1 to 63 letters, digits, `-`, `_` or `.`"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Corosync
// ---------------------------------------------------------------------------------

fn check_corosync(ck: &Check, cs: &CorosyncConf) -> Checked<()> {
    if cs.transport != "knet" {
        return Err(ck.err(
            "",
            "transport",
            format!(
                "corosync.transport `{}`: only `knet` is supported (two encrypted links)",
                cs.transport
            ),
        ));
    }
    if !["aes256", "aes192", "aes128"].contains(&cs.crypto_cipher.as_str()) {
        return Err(ck.err("", "crypto-cipher", format!("corosync.crypto-cipher `{}`: expected aes256, aes192 or aes128 (crypto cannot be turned off)", cs.crypto_cipher)));
    }
    if !["sha256", "sha384", "sha512"].contains(&cs.crypto_hash.as_str()) {
        return Err(ck.err("", "crypto-hash", format!("corosync.crypto-hash `{}`: expected sha256, sha384 or sha512 (crypto cannot be turned off)", cs.crypto_hash)));
    }
    if !(1000..=60000).contains(&cs.token) {
        return Err(ck.err(
            "",
            "token",
            format!("corosync.token {}: expected 1000 to 60000 ms", cs.token),
        ));
    }
    if cs.link_mode != "passive" && cs.link_mode != "active" {
        return Err(ck.err(
            "",
            "link-mode",
            format!(
                "corosync.link-mode `{}`: expected `passive` or `active`",
                cs.link_mode
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Quorum and fencing
// ---------------------------------------------------------------------------------

/// `two-node = true` (exactly two nodes) or a quorum device (at least two nodes).
fn check_quorum(ck: &Check, qc: Option<&QuorumConf>, node_count: usize) -> Checked<Quorum> {
    let Some(qc) = qc else {
        return Err(ck.err(
            "",
            "name",
            "quorum: missing; add `[quorum]` with `two-node = true` or `device = { host = \"…\" }`"
                .to_string(),
        ));
    };
    match (qc.two_node, &qc.device) {
        (true, None) => {
            if node_count != 2 {
                return Err(ck.err(
                    "",
                    "two-node",
                    format!(
                        "quorum.two-node needs exactly two [[node]] entries, found {}",
                        node_count
                    ),
                ));
            }
            Ok(Quorum::TwoNode)
        }
        (false, Some(d)) => check_qdevice(ck, d, node_count),
        (true, Some(_)) => Err(ck.err(
            "",
            "two-node",
            "quorum: set either two-node = true or device, not both".to_string(),
        )),
        (false, None) => Err(ck.err(
            "",
            "quorum",
            "quorum: expected `two-node = true` or `device = { host = \"…\" }`".to_string(),
        )),
    }
}

fn check_qdevice(ck: &Check, d: &QdeviceConf, node_count: usize) -> Checked<Quorum> {
    if d.host.is_empty() || d.host.contains(char::is_whitespace) {
        return Err(ck.err(
            "",
            "device",
            format!(
                "quorum.device.host `{}`: expected a host name or address",
                d.host
            ),
        ));
    }
    if d.algorithm != "ffsplit" && d.algorithm != "lms" {
        return Err(ck.err(
            "",
            "device",
            format!(
                "quorum.device.algorithm `{}`: expected ffsplit or lms",
                d.algorithm
            ),
        ));
    }
    if node_count < 2 {
        return Err(ck.err(
            "",
            "device",
            format!(
                "a cluster needs at least two [[node]] entries, found {}",
                node_count
            ),
        ));
    }
    Ok(Quorum::Device {
        host: d.host.clone(),
        algorithm: d.algorithm.clone(),
    })
}

/// Fencing is required: a fence agent per node, sbd, or explicitly off.
fn check_fencing(
    ck: &Check,
    fc: Option<&FencingConf>,
    nodes: &[Node],
    quorum: &Quorum,
) -> Checked<Fencing> {
    let Some(fc) = fc else {
        return Err(ck.err(
            "",
            "name",
            "fencing: missing; add `[fencing]` with `mode = \"agent\"` (a fence agent per node) or `mode = \"sbd\"`; turning it off needs `mode = \"off\"` and `i-understand = true`".to_string(),
        ));
    };
    match fc.mode {
        FencingMode::Off => {
            if !fc.i_understand {
                return Err(ck.err("", "mode", "fencing.mode = \"off\" needs `i-understand = true`: without fencing a hung node is assumed dead and both nodes may write (split brain)".to_string()));
            }
            Ok(Fencing::Off)
        }
        FencingMode::Agent => check_fence_agent(ck, fc, nodes),
        FencingMode::Sbd => check_sbd(ck, fc, quorum),
    }
}

/// `mode = "agent"`: a `fence_*` agent and one parameter set per node, without
/// passwords (those are in the secrets file).
fn check_fence_agent(ck: &Check, fc: &FencingConf, nodes: &[Node]) -> Checked<Fencing> {
    let agent = fc.agent.clone().unwrap_or_default();
    if !agent.starts_with("fence_")
        || !agent[6..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || agent.len() == 6
    {
        return Err(ck.err(
            "",
            "agent",
            format!("fencing.agent `{agent}`: expected a fence agent name like fence_ipmilan"),
        ));
    }
    for (node, params) in &fc.params {
        if !known(nodes, node) {
            return Err(ck.err(
                "",
                "params",
                format!("fencing.params.{node}: unknown node `{node}`"),
            ));
        }
        for (k, v) in params {
            if k == "password" || k == "passwd" {
                return Err(ck.err("", "params", format!("fencing.params.{node}.{k}: fence passwords belong in the secrets file (`[fence-passwords] {node} = \"…\"`), not in cluster.toml")));
            }
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                || v.contains(['\n', '"', '<', '&'])
            {
                return Err(ck.err("", "params", format!("fencing.params.{node}.{k}: expected a name of letters, digits, `_`, `-` and a one-line value without `\"`, `<`, `&`")));
            }
        }
    }
    for n in nodes {
        if !fc.params.contains_key(&n.name) {
            return Err(ck.err("", "params", format!("fencing.params: node `{}` has no fence device parameters (`[fencing.params.{}]`)", n.name, n.name)));
        }
    }
    Ok(Fencing::Agent {
        agent,
        params: fc.params.clone(),
    })
}

/// `mode = "sbd"`: a watchdog, and shared disks unless a quorum device breaks ties.
fn check_sbd(ck: &Check, fc: &FencingConf, quorum: &Quorum) -> Checked<Fencing> {
    let Some(wd) = fc.watchdog.clone().filter(|w| w.starts_with("/dev/")) else {
        return Err(ck.err(
            "",
            "watchdog",
            "fencing.watchdog: sbd needs a watchdog device like /dev/watchdog".to_string(),
        ));
    };
    if fc.devices.is_empty() && *quorum == Quorum::TwoNode {
        return Err(ck.err("", "devices", "fencing.devices: watchdog-only sbd cannot fence in a two-node cluster (both halves keep quorum); add shared sbd disks or a quorum device".to_string()));
    }
    for d in &fc.devices {
        if !d.starts_with("/dev/") || d.contains([';', ' ']) {
            return Err(ck.err(
                "",
                "devices",
                format!("fencing.devices `{d}`: expected a /dev/ path without blanks or `;`"),
            ));
        }
    }
    if !(1..=120).contains(&fc.watchdog_timeout) {
        return Err(ck.err(
            "",
            "watchdog-timeout",
            format!(
                "fencing.watchdog-timeout {}: expected 1 to 120 s",
                fc.watchdog_timeout
            ),
        ));
    }
    Ok(Fencing::Sbd {
        watchdog: wd,
        devices: fc.devices.clone(),
        watchdog_timeout: fc.watchdog_timeout,
    })
}

// ---------------------------------------------------------------------------------
// ALUA
// ---------------------------------------------------------------------------------

/// Whether an ALUA state lets a target port group serve reads and writes.
fn serves_io(state: &str) -> bool {
    state == "active" || state == "nonoptimized"
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
    if !serves_io(&a.promoted_state) {
        return Err((
            "promoted-state",
            format!(
                "alua.promoted-state `{}`: the promoted node must serve I/O; expected `active`",
                a.promoted_state
            ),
        ));
    }
    if serves_io(&a.unpromoted_state) {
        return Err((
            "unpromoted-state",
            format!(
                "alua.unpromoted-state `{}` would let both nodes serve writes: with single-primary DRBD the unpromoted node cannot do I/O; expected `unavailable`, `standby` or `offline`",
                a.unpromoted_state
            ),
        ));
    }
    if !["unavailable", "standby", "offline"].contains(&a.unpromoted_state.as_str()) {
        return Err((
            "unpromoted-state",
            format!(
                "alua.unpromoted-state `{}`: expected `unavailable`, `standby` or `offline`",
                a.unpromoted_state
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(locate(t, "\"b\"", "x"), (6, 1));
        assert_eq!(locate(t, "", "x"), (3, 1));
    }
}
