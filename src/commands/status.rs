//! `sanforge status HOST`: a node's status seen from the operator's machine. Runs
//! `/init status --json` (sanforge-init's `status`) on the node over SSH as root, with
//! the operator's key (BatchMode: never a password prompt), and prints what it says the
//! way the node prints it, or the JSON as it came.

use crate::contract::status::{render, Status};
use crate::contract::INIT;
use crate::util::cmd::{Cmd, Log};
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct StatusOptions {
    pub host: String,
    pub port: u16,
    /// `ssh -i`: the private key; ssh's defaults (agent, ~/.ssh/id_*) without it.
    pub identity: Option<PathBuf>,
    /// `ssh -o UserKnownHostsFile=`: where the node's host key is remembered (first
    /// contact accepts it, a changed key is refused).
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout_secs: u32,
}

/// The ssh command line.
pub fn ssh_command(o: &StatusOptions, remote: &[&str]) -> Cmd {
    let mut c = Cmd::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
        ])
        .arg(format!("ConnectTimeout={}", o.connect_timeout_secs))
        // A node that goes away mid-session (rebooted, cable pulled) ends the
        // session after 15 s instead of hanging it.
        .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"])
        .arg("-p")
        .arg(o.port.to_string());
    if let Some(i) = &o.identity {
        c = c.arg("-i").arg(i).args(["-o", "IdentitiesOnly=yes"]);
    }
    if let Some(k) = &o.known_hosts {
        c = c
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", k.display()));
    }
    c.arg(format!("root@{}", o.host)).args(remote)
}

/// The node's status as JSON text, checked to parse.
pub fn fetch(o: &StatusOptions) -> Result<(String, Status)> {
    let json = ssh_command(o, &[INIT, "status", "--json"])
        .output(&Log::none())
        .with_context(|| format!("cannot get the status of {} over ssh", o.host))?;
    let st: Status = serde_json::from_str(&json).with_context(|| {
        format!(
            "{}: `{INIT} status --json` did not print a sanforge status (is the node's image older than this sanforge?)",
            o.host
        )
    })?;
    Ok((json, st))
}

pub fn run(o: &StatusOptions, json: bool) -> Result<()> {
    let (text, st) = fetch(o)?;
    if json {
        print!("{text}");
    } else {
        for l in render(&st) {
            println!("{l}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_never_prompts_and_names_the_key() {
        let o = StatusOptions {
            host: "127.0.0.1".into(),
            port: 2222,
            identity: Some("/k/id".into()),
            known_hosts: Some("/k/known".into()),
            connect_timeout_secs: 10,
        };
        assert_eq!(
            ssh_command(&o, &["/init", "status", "--json"]).display(),
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -p 2222 -i /k/id -o IdentitiesOnly=yes -o UserKnownHostsFile=/k/known root@127.0.0.1 /init status --json"
        );
    }
}
