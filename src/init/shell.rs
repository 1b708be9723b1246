//! Boot step `debug shell`: a root shell on the console, only when the kernel command
//! line says `sanforge.shell=1` (a recipe asks for it with its `[kernel] cmdline`, an
//! operator at the boot loader by adding the word); never by default. The boot report
//! says so, as a warning, because anyone at the console is then root. The shell is a
//! supervised service (restarted when it exits) in its own session; busybox's
//! `cttyhack` gives it the real console as controlling terminal (job control, Ctrl-C).

use super::supervisor::{Supervised, BACKOFF_MIN};
use super::Init;
use crate::config::node::{Restart, Service};
use crate::contract::CMDLINE_SHELL;
use anyhow::Result;
use std::path::Path;
use std::time::Instant;

/// The service's name.
pub const SERVICE: &str = "debug-shell";

/// Whether the command line asks for the shell (the last `sanforge.shell=` wins).
pub fn wanted(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(CMDLINE_SHELL))
        .next_back()
        .is_some_and(|v| v == "1")
}

pub fn start(init: &mut Init) -> Result<()> {
    let cmdline = init
        .sys
        .read_to_string(Path::new("/proc/cmdline"))
        .unwrap_or_default();
    if !wanted(&cmdline) {
        return Ok(());
    }
    init.warn(format!(
        "debug shell on the console ({CMDLINE_SHELL}1 on the kernel command line): anyone at the console is root"
    ));
    let now = Instant::now();
    init.supervisor.services.push(Supervised {
        svc: Service {
            name: SERVICE.into(),
            argv: ["/bin/busybox", "cttyhack", "/bin/sh", "-l"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            restart: Restart::Always,
            env: [("HOME".to_string(), "/root".to_string())].into(),
        },
        pid: None,
        started: None,
        backoff: BACKOFF_MIN,
        next_start: Some(now),
        starts: 0,
        last_exit: None,
    });
    init.supervisor.start_due(init.sys, &mut init.log, now);
    init.supervisor.write_state(init.sys, &mut init.log);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::init::Logger;
    use crate::sys::FakeSys;

    #[test]
    fn only_the_command_line_turns_it_on() {
        assert!(wanted("console=ttyS0 sanforge.shell=1"));
        assert!(!wanted("console=ttyS0"));
        assert!(!wanted("sanforge.shell=0"));
        assert!(!wanted("sanforge.shell=1 sanforge.shell=0"));
        assert!(!wanted("sanforge.shell=yes"));
    }

    #[test]
    fn the_shell_is_started_and_said_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = FakeSys::new(dir.path());
        let mut init = Init::new(&mut sys, Logger::capture());
        start(&mut init).unwrap();
        assert!(init.log.lines().is_empty() && init.supervisor.services.is_empty());
        drop(init);
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/cmdline"), "quiet sanforge.shell=1\n").unwrap();
        let mut init = Init::new(&mut sys, Logger::capture());
        start(&mut init).unwrap();
        assert_eq!(
            init.log.lines(),
            [
                "warning: debug shell on the console (sanforge.shell=1 on the kernel command line): anyone at the console is root",
                "service debug-shell started (pid 101)"
            ]
        );
        assert_eq!(
            init.supervisor.services[0].svc.argv,
            ["/bin/busybox", "cttyhack", "/bin/sh", "-l"]
        );
        drop(init);
        assert!(sys
            .ops
            .iter()
            .any(|o| o.to_string() == "spawn /bin/busybox cttyhack /bin/sh -l"));
    }
}
