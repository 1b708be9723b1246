//! The services the init starts: the node's, log forwarding, its own, metrics.

use super::supervisor::Supervisor;
use super::Init;
use super::{logs, metrics, supervisor};
use anyhow::Result;
use std::time::Instant;

/// Step 8: start the services.
pub fn start_services(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let now = Instant::now();
    let started = std::mem::take(&mut init.supervisor.services); // e.g. the iSCSI daemon
    init.supervisor = Supervisor::new(&node.services, now);
    init.supervisor.services.splice(0..0, started);
    init.supervisor.start_due(init.sys, &mut init.log, now);
    init.supervisor.write_state(init.sys, &mut init.log);
    Ok(())
}

/// Remote syslog of `[logs] remote`: the init's own binary as a supervised child
/// (`/init log-forward ADDR`) that sends the kernel log, the init's lines included.
pub fn start_log_forward(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let Some(remote) = node.logs.as_ref().and_then(|l| l.remote.clone()) else {
        return Ok(());
    };
    push_own_service(
        init,
        logs::SERVICE,
        vec![
            crate::contract::INIT.to_string(),
            logs::SUBCOMMAND.to_string(),
            remote.clone(),
        ],
    );
    init.log.line(&format!(
        "logs: kernel log and init lines to {remote} (RFC 5424 over TCP)"
    ));
    Ok(())
}

/// Starts the init's own binary as a supervised service (always restarted).
pub(super) fn push_own_service(init: &mut Init, name: &str, argv: Vec<String>) {
    let now = Instant::now();
    init.supervisor.services.push(supervisor::Supervised {
        svc: crate::config::node::Service {
            name: name.into(),
            argv,
            restart: crate::config::node::Restart::Always,
            env: Default::default(),
        },
        pid: None,
        started: None,
        backoff: supervisor::BACKOFF_MIN,
        next_start: Some(now),
        starts: 0,
        last_exit: None,
    });
    init.supervisor.start_due(init.sys, &mut init.log, now);
    init.supervisor.write_state(init.sys, &mut init.log);
}

/// The Prometheus exporter of `[metrics]`: the init's own binary as a supervised
/// child (`/init metrics-serve ADDR [TOKEN_FILE]`), so a port in use only restarts it.
pub fn start_metrics(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let Some(m) = &node.metrics else {
        return Ok(());
    };
    let mut argv = vec![
        crate::contract::INIT.to_string(),
        metrics::SUBCOMMAND.to_string(),
        m.listen.clone(),
    ];
    argv.extend(m.token_file.clone());
    push_own_service(init, metrics::SERVICE, argv);
    init.log.line(&format!(
        "metrics: exporter on http://{}/metrics{}",
        m.listen,
        if m.token_file.is_some() {
            " (bearer token)"
        } else {
            ""
        }
    ));
    Ok(())
}
