//! The DRBD resource files the cluster render writes (`/etc/drbd.d/RES.res`), read
//! back by the tools that act on one resource on a node (`sanforge-init switchover`,
//! the fence-peer handler): its nodes and its minor, and the names the render gives
//! the resource's Pacemaker objects.

use std::path::Path;

/// Where the cluster render puts the DRBD resource files.
pub const DRBD_DIR: &str = "/etc/drbd.d";

/// What `/etc/drbd.d/RES.res` says: the nodes (in file order) and the minor.
#[derive(Debug, PartialEq, Eq)]
pub struct ResFile {
    pub nodes: Vec<String>,
    pub minor: u32,
}

impl ResFile {
    /// Parses the `on "NODE" {` and `device minor N;` lines of a resource file as the
    /// cluster render writes it (DRBD 8.4 and 9 syntax); `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ResFile, String> {
        let mut nodes = Vec::new();
        let mut minor: Option<(u32, usize)> = None;
        for (i, line) in text.lines().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["on", name, "{"] => nodes.push(name.trim_matches('"').to_string()),
                ["device", "minor", n] | ["device", _, "minor", n] => {
                    let n = n.trim_end_matches(';');
                    let m = n.parse::<u32>().map_err(|_| {
                        format!(
                            "{}:{}: device minor '{n}' is not a number",
                            path.display(),
                            i + 1
                        )
                    })?;
                    match minor {
                        Some((old, at)) if old != m => {
                            return Err(format!(
                                "{}:{}: device minor {m}, but line {at} says {old} (one volume expected)",
                                path.display(),
                                i + 1
                            ))
                        }
                        _ => minor = Some((m, i + 1)),
                    }
                }
                _ => {}
            }
        }
        let Some((minor, _)) = minor else {
            return Err(format!(
                "{}: no `device minor N;` line (expected the file the cluster render writes)",
                path.display()
            ));
        };
        if nodes.len() < 2 {
            return Err(format!(
                "{}: {} `on NODE {{` section(s), expected two nodes",
                path.display(),
                nodes.len()
            ));
        }
        Ok(ResFile { nodes, minor })
    }
}

/// The promotable clone the cluster render makes of DRBD resource `res`.
pub fn clone_id(res: &str) -> String {
    format!("drbd-{res}-clone")
}
