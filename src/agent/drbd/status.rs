//! What the DRBD agent knows of its resource: the local and peer role, connection and
//! disk states, read once per look from the kernel (DRBD 8.4: one line of `/proc/drbd`,
//! no process started; DRBD 9: `drbdsetup status RES --json`), and the pure verdicts
//! drawn from them: monitor's OCF code and the promotion score. Reads only the text
//! it is given.

use super::super::Rc;

/// A DRBD role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
    Unknown,
}

impl Role {
    fn parse(s: &str) -> Role {
        match s {
            "Primary" => Role::Primary,
            "Secondary" => Role::Secondary,
            _ => Role::Unknown,
        }
    }
}

/// One resource's state (its first volume), in DRBD's own words for the connection
/// and disk states (the same names in 8.4 and 9: `Connected`, `WFConnection`,
/// `SyncTarget`…; `UpToDate`, `Consistent`, `Inconsistent`, `Outdated`, `DUnknown`…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub role: Role,
    pub peer_role: Role,
    pub connection: String,
    pub disk: String,
    pub peer_disk: String,
}

/// The promotion score to hold (`adjust_master_score` of `ocf:linbit:drbd`, defaults
/// `0 10 1000 10000`, without its "only remote data" case: see [`promotion`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Score {
    /// Set the score to this value.
    Set(u32),
    /// No score: this node must not be promoted.
    Remove,
    /// A transitional disk state (attaching, negotiating): leave the score as it is.
    Keep,
}

/// The score for UpToDate local data while Primary, or with the peer's disk known.
pub const SCORE_BEST: u32 = 10000;
/// The score for UpToDate local data on a Secondary whose peer's disk is unknown
/// (after a peer's death: promotable, as the fence-peer handler keeps a stale node
/// from being promoted).
pub const SCORE_LOCAL_OK: u32 = 1000;

impl Status {
    /// Parses DRBD 8.4's `/proc/drbd` for `minor`; `Ok(None)` when the minor is not
    /// configured (absent, or `cs:Unconfigured`).
    ///
    /// ```text
    /// version: 8.4.11 (api:1/proto:86-101)
    ///  0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
    ///     ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
    /// ```
    pub fn from_proc_drbd(text: &str, minor: u32) -> Result<Option<Status>, String> {
        let head = format!("{minor}:");
        let Some(line) = text.lines().find(|l| l.trim_start().starts_with(&head)) else {
            return Ok(None);
        };
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_string)
        };
        let Some(cs) = field("cs:") else {
            return Err(format!(
                "no cs: field in the line of minor {minor}: '{}'",
                line.trim()
            ));
        };
        if cs == "Unconfigured" {
            return Ok(None);
        }
        let pair = |key: &str| -> Result<(String, String), String> {
            let v = field(key).ok_or_else(|| {
                format!(
                    "no {key} field in the line of minor {minor}: '{}'",
                    line.trim()
                )
            })?;
            match v.split_once('/') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(format!(
                    "{key}{v} in the line of minor {minor} is not LOCAL/PEER"
                )),
            }
        };
        let (ro, peer_ro) = pair("ro:")?;
        let (ds, peer_ds) = pair("ds:")?;
        Ok(Some(Status {
            role: Role::parse(&ro),
            peer_role: Role::parse(&peer_ro),
            connection: cs,
            disk: ds,
            peer_disk: peer_ds,
        }))
    }

    /// Parses `drbdsetup status RES --json` (DRBD 9): its first volume and first
    /// connection; `Ok(None)` when the resource is not there (an empty list).
    pub fn from_json(text: &str, resource: &str) -> Result<Option<Status>, String> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("drbdsetup status --json: not JSON ({e})"))?;
        let Some(list) = v.as_array() else {
            return Err("drbdsetup status --json: not a list of resources".into());
        };
        let Some(res) = list
            .iter()
            .find(|r| r.get("name").and_then(|n| n.as_str()) == Some(resource))
        else {
            return Ok(None);
        };
        let s = |v: Option<&serde_json::Value>, dflt: &str| {
            v.and_then(|x| x.as_str()).unwrap_or(dflt).to_string()
        };
        let first = |key: &str, v: &serde_json::Value| {
            v.get(key)
                .and_then(|a| a.as_array())
                .and_then(|a| a.first())
                .cloned()
        };
        let dev = first("devices", res);
        let conn = first("connections", res);
        let peer_dev = conn.as_ref().and_then(|c| first("peer_devices", c));
        let mut connection = s(
            conn.as_ref().and_then(|c| c.get("connection-state")),
            "StandAlone",
        );
        // A resync shows in the replication state (DRBD 8.4 showed it as cs:).
        let repl = s(
            peer_dev.as_ref().and_then(|p| p.get("replication-state")),
            "",
        );
        if repl.starts_with("Sync") {
            connection = repl;
        }
        Ok(Some(Status {
            role: Role::parse(&s(res.get("role"), "Unknown")),
            peer_role: Role::parse(&s(conn.as_ref().and_then(|c| c.get("peer-role")), "")),
            connection,
            disk: s(dev.as_ref().and_then(|d| d.get("disk-state")), "Diskless"),
            peer_disk: s(
                peer_dev.as_ref().and_then(|p| p.get("peer-disk-state")),
                "DUnknown",
            ),
        }))
    }

    /// Whether the local data may be promoted: UpToDate, nothing less. DRBD itself
    /// refuses Inconsistent and Outdated data; Consistent (data whose peer could be
    /// newer) is refused here too, as `ocf:linbit:drbd` gives it no score by default.
    pub fn promotable(&self) -> bool {
        self.disk == "UpToDate"
    }

    /// Monitor's verdict: 8 Primary, 0 Secondary, 9 Primary without access to good
    /// data (its disk failed or detached and the peer's is not UpToDate), 1 for a
    /// role DRBD did not report.
    pub fn verdict(&self) -> Rc {
        match self.role {
            Role::Primary => {
                if matches!(self.disk.as_str(), "Diskless" | "Failed")
                    && self.peer_disk != "UpToDate"
                {
                    Rc::FailedPromoted
                } else {
                    Rc::RunningPromoted
                }
            }
            Role::Secondary => Rc::Success,
            Role::Unknown => Rc::ErrGeneric,
        }
    }
}

/// The promotion score for `s`: 10000 for UpToDate data while Primary or with the
/// peer's disk state known, 1000 for UpToDate data on a Secondary that lost its peer,
/// none for anything less than UpToDate (Consistent, Inconsistent, Outdated, Diskless,
/// Failed), unchanged while attaching or negotiating. Unlike `ocf:linbit:drbd`, an
/// Inconsistent SyncTarget connected to an UpToDate peer gets no score either: the
/// fault matrix's "death during resync" row requires that Inconsistent data is never
/// promoted, and with one Promoted instance its peer is the one to promote.
pub fn promotion(s: &Status) -> Score {
    match s.disk.as_str() {
        "UpToDate" => {
            if s.role != Role::Primary && s.peer_disk == "DUnknown" {
                Score::Set(SCORE_LOCAL_OK)
            } else {
                Score::Set(SCORE_BEST)
            }
        }
        "Attaching" | "Negotiating" => Score::Keep,
        _ => Score::Remove,
    }
}

/// [`promotion`] on the cluster file's `preferred-node` (`preferred`): one point above
/// the best score while the resource is connected, UpToDate on both sides and Primary
/// on neither, so that the first promotion (a cluster coming up) goes to the
/// preferred node. The agent gives it at start only and monitors keep it
/// (`Agent::monitor_score`): both nodes are Secondary for a moment in every switchover. Once a node is Primary both score the same again, so the Promoted
/// role stays where it is (no automatic failback, no pull after a move is cleared).
pub fn promotion_on(s: &Status, preferred: bool) -> Score {
    match promotion(s) {
        Score::Set(SCORE_BEST)
            if preferred
                && s.role == Role::Secondary
                && s.peer_role == Role::Secondary
                && s.peer_disk == "UpToDate" =>
        {
            Score::Set(SCORE_BEST + 1)
        }
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_node_scores_one_more_only_while_no_node_is_primary() {
        let line = |ro: &str, ds: &str| {
            let text = format!(
                "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Connected ro:{ro} ds:{ds} C r-----\n"
            );
            Status::from_proc_drbd(&text, 0).unwrap().unwrap()
        };
        let both_secondary = line("Secondary/Secondary", "UpToDate/UpToDate");
        assert_eq!(
            promotion_on(&both_secondary, true),
            Score::Set(SCORE_BEST + 1)
        );
        assert_eq!(promotion_on(&both_secondary, false), Score::Set(SCORE_BEST));
        for (ro, ds) in [
            ("Secondary/Primary", "UpToDate/UpToDate"),
            ("Primary/Secondary", "UpToDate/UpToDate"),
            ("Secondary/Secondary", "UpToDate/Inconsistent"),
        ] {
            let s = line(ro, ds);
            assert_eq!(promotion_on(&s, true), promotion(&s), "{ro} {ds}");
        }
        let outdated = line("Secondary/Secondary", "Outdated/UpToDate");
        assert_eq!(promotion_on(&outdated, true), Score::Remove);
    }

    const PROC: &str = "version: 8.4.11 (api:1/proto:86-101)\n\
        srcversion: 211FB288A383ED945B83420\n \
        0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n    \
        ns:12 nr:0 dw:12 dr:1 al:1 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n \
        1: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----\n\
        10: cs:Unconfigured\n";

    #[test]
    fn proc_drbd_lines_are_found_by_minor() {
        let s = Status::from_proc_drbd(PROC, 0).unwrap().unwrap();
        assert_eq!(s.role, Role::Primary);
        assert_eq!(s.peer_role, Role::Secondary);
        assert_eq!(
            (s.connection.as_str(), s.disk.as_str()),
            ("Connected", "UpToDate")
        );
        let t = Status::from_proc_drbd(PROC, 1).unwrap().unwrap();
        assert_eq!(
            (t.connection.as_str(), t.disk.as_str()),
            ("SyncTarget", "Inconsistent")
        );
        assert_eq!(Status::from_proc_drbd(PROC, 10).unwrap(), None);
        assert_eq!(Status::from_proc_drbd(PROC, 2).unwrap(), None);
        // "1:" must not match minor 10's line, nor "0:" the ns:/nr: counters.
        assert_eq!(
            Status::from_proc_drbd(" 10: cs:Unconfigured\n", 0).unwrap(),
            None
        );
        let bad = Status::from_proc_drbd(" 0: cs:Connected ro:Primary\n", 0).unwrap_err();
        assert_eq!(bad, "ro:Primary in the line of minor 0 is not LOCAL/PEER");
        let bad = Status::from_proc_drbd(" 0: cs:Connected ro:Primary/Secondary\n", 0).unwrap_err();
        assert!(
            bad.starts_with("no ds: field in the line of minor 0: '0: cs:"),
            "{bad}"
        );
    }

    #[test]
    fn json_status_of_drbd9() {
        let j = r#"[{"name":"r0","role":"Secondary","devices":[{"volume":0,"minor":0,"disk-state":"Inconsistent"}],
            "connections":[{"peer-node-id":0,"name":"alpha","connection-state":"Connected","peer-role":"Primary",
            "peer_devices":[{"volume":0,"replication-state":"SyncTarget","peer-disk-state":"UpToDate"}]}]}]"#;
        let s = Status::from_json(j, "r0").unwrap().unwrap();
        assert_eq!(s.role, Role::Secondary);
        assert_eq!(s.peer_role, Role::Primary);
        assert_eq!(s.connection, "SyncTarget");
        assert_eq!(
            (s.disk.as_str(), s.peer_disk.as_str()),
            ("Inconsistent", "UpToDate")
        );
        assert_eq!(Status::from_json("[]", "r0").unwrap(), None);
        let alone = r#"[{"name":"r0","role":"Primary","devices":[{"disk-state":"UpToDate"}],"connections":[]}]"#;
        let a = Status::from_json(alone, "r0").unwrap().unwrap();
        assert_eq!(
            (a.connection.as_str(), a.peer_disk.as_str()),
            ("StandAlone", "DUnknown")
        );
        assert!(Status::from_json("nope", "r0")
            .unwrap_err()
            .contains("not JSON"));
    }

    fn st(role: Role, disk: &str, peer_disk: &str) -> Status {
        Status {
            role,
            peer_role: Role::Unknown,
            connection: "Connected".into(),
            disk: disk.into(),
            peer_disk: peer_disk.into(),
        }
    }

    #[test]
    fn scores_never_favour_data_below_uptodate() {
        use Role::*;
        assert_eq!(
            promotion(&st(Primary, "UpToDate", "DUnknown")),
            Score::Set(10000)
        );
        assert_eq!(
            promotion(&st(Secondary, "UpToDate", "UpToDate")),
            Score::Set(10000)
        );
        assert_eq!(
            promotion(&st(Secondary, "UpToDate", "Outdated")),
            Score::Set(10000)
        );
        assert_eq!(
            promotion(&st(Secondary, "UpToDate", "DUnknown")),
            Score::Set(1000)
        );
        for bad in [
            "Inconsistent",
            "Outdated",
            "Consistent",
            "Diskless",
            "Failed",
        ] {
            assert_eq!(
                promotion(&st(Secondary, bad, "UpToDate")),
                Score::Remove,
                "{bad}"
            );
            assert!(!st(Secondary, bad, "UpToDate").promotable(), "{bad}");
        }
        assert_eq!(
            promotion(&st(Secondary, "Attaching", "DUnknown")),
            Score::Keep
        );
    }

    #[test]
    fn monitor_verdicts() {
        use Role::*;
        assert_eq!(
            st(Primary, "UpToDate", "UpToDate").verdict(),
            Rc::RunningPromoted
        );
        assert_eq!(
            st(Primary, "Diskless", "UpToDate").verdict(),
            Rc::RunningPromoted
        );
        assert_eq!(
            st(Primary, "Diskless", "DUnknown").verdict(),
            Rc::FailedPromoted
        );
        assert_eq!(
            st(Secondary, "Inconsistent", "UpToDate").verdict(),
            Rc::Success
        );
        assert_eq!(
            st(Unknown, "UpToDate", "UpToDate").verdict(),
            Rc::ErrGeneric
        );
    }
}
