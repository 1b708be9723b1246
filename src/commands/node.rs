//! `sanforge node check FILE [--secrets FILE]`: validates a node config and the
//! scst.conf it names with the init's own types, says which secrets it names (and,
//! with `--secrets`, checks that the file has them), and notes an inline CHAP password
//! (fine for a config that reaches the node privately, refused by `sanforge build`).
//!
//! Reads FILE, its scst.conf and the secrets file.

use crate::config::node::NodeConfig;
use crate::config::secrets::{node_refs, refuse_inline, NodeSecrets};
use crate::util::redact::Scrubber;
use anyhow::{bail, Result};
use std::path::Path;

/// The report printed on success (the caller scrubs an error).
pub fn check(file: &Path, secrets: Option<&Path>) -> Result<String> {
    let text = crate::util::fs::read_to_string(file)?;
    let node = NodeConfig::parse(file, &text)?;
    let scst = crate::scsi::scst::load_node_scst(file, &node)?;
    let mut refs = node_refs(&node);
    let mut notes = Vec::new();
    if let Some(s) = &scst {
        for (n, _) in crate::scsi::scst::secret_refs(&s.conf) {
            if !refs.contains(&n) {
                refs.push(n);
            }
        }
        if let Err(e) = crate::scsi::scst::refuse_inline(&s.host_path, &s.conf) {
            notes.push(format!("note: {e}"));
        }
    }
    if let Err(e) = refuse_inline(file, &text, &node) {
        notes.push(format!(
            "note: {e} (an inline password is fine only in a file that reaches the node privately: `sanforge-init config-set`)"
        ));
    }
    match secrets {
        Some(sp) => {
            let s = NodeSecrets::load(sp)?;
            let missing: Vec<String> = refs
                .iter()
                .filter(|r| s.chap(r).is_none())
                .map(|r| format!("`[chap.{r}]`"))
                .collect();
            if !missing.is_empty() {
                bail!(
                    "secrets file {} has no {} (named by {})",
                    sp.display(),
                    missing.join(", "),
                    file.display()
                );
            }
        }
        None if !refs.is_empty() => notes.push(format!(
            "note: names the secrets {}: check them with --secrets FILE",
            refs.iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => {}
    }
    let mut out = format!("{}: OK (hostname {})\n", file.display(), node.hostname);
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    Ok(out)
}

/// The secret words of FILE and of the scst.conf it names (read lexically, so a file
/// that does not parse is covered too), to redact from messages.
pub fn scrubber(file: &Path) -> Scrubber {
    let mut s = Scrubber::new();
    let Ok(text) = std::fs::read_to_string(file) else {
        return s;
    };
    s.scan_toml(&text);
    // `[scst] conf = "…"`, relative to the node config.
    for line in text.lines() {
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix("conf") else {
            continue;
        };
        let Some(v) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        if let Ok(conf) = std::fs::read_to_string(crate::util::fs::parent_dir(file).join(v)) {
            s.scan_scst(&conf);
        }
    }
    s
}
