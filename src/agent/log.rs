//! The agents' log: lines on stderr (Pacemaker collects them) prefixed with
//! `AGENT(<instance>)[pid]` (`alua`, `drbd`), the same lines time-stamped and appended to `$HA_LOGFILE`
//! when set, debug lines only with `HA_debug=1`. Reads `OCF_RESOURCE_INSTANCE`,
//! `HA_debug` and `HA_LOGFILE` from the [`Env`]; the log file is written through the
//! agent's [`Sys`]. Logging never fails an action.

use super::params::Env;
use super::AGENT;
use crate::sys::Sys;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where log lines go.
pub struct Log<'w> {
    prefix: String,
    debug: bool,
    file: Option<PathBuf>,
    sink: &'w mut dyn Write,
}

impl<'w> Log<'w> {
    /// The `alua` agent's log writing to `sink` (stderr for Pacemaker), configured from `env`.
    pub fn from_env(env: &Env, sink: &'w mut dyn Write) -> Self {
        Self::named(AGENT, env, sink)
    }

    /// The log of agent `agent` writing to `sink`, configured from `env`.
    pub fn named(agent: &str, env: &Env, sink: &'w mut dyn Write) -> Self {
        let inst = env.get("OCF_RESOURCE_INSTANCE").unwrap_or("default");
        Log {
            prefix: format!("{agent}({inst})[{}]", std::process::id()),
            debug: matches!(env.get("HA_debug"), Some("1" | "yes" | "true")),
            file: env
                .get("HA_LOGFILE")
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            sink,
        }
    }

    fn line(&mut self, sys: &mut dyn Sys, level: &str, msg: &str) {
        let line = format!("{}: {level}: {msg}", self.prefix);
        let _ = writeln!(self.sink, "{line}");
        if let Some(f) = &self.file {
            let _ = sys.append(f, &format!("{} {line}\n", utc_now()));
        }
    }

    /// Text without prefix (the usage message).
    pub fn plain(&mut self, text: &str) {
        let _ = writeln!(self.sink, "{text}");
    }

    pub fn info(&mut self, sys: &mut dyn Sys, msg: &str) {
        self.line(sys, "INFO", msg)
    }

    pub fn warn(&mut self, sys: &mut dyn Sys, msg: &str) {
        self.line(sys, "WARNING", msg)
    }

    pub fn err(&mut self, sys: &mut dyn Sys, msg: &str) {
        self.line(sys, "ERROR", msg)
    }

    pub fn debug(&mut self, sys: &mut dyn Sys, msg: &str) {
        if self.debug {
            self.line(sys, "DEBUG", msg)
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no date crate needed).
fn utc_now() -> String {
    crate::util::time::rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_date_is_civil() {
        let s = utc_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}
