//! The boot timeline: when each boot step started and ended, in seconds since the
//! kernel started (`CLOCK_BOOTTIME`, read through [`Sys::boottime`], so it works before
//! /proc is mounted). The first entry, `kernel`, runs from 0 to the init's first
//! reading of the clock (the kernel's own boot and the initramfs unpacking); the others
//! are the steps of [`super::BOOT`] by name. Rewritten to [`TIMELINE`] after every step
//! (a node stuck in a step shows which), printed as a table just before the final state
//! line, read back by `sanforge-init status` and the metrics.

use crate::contract::TIMELINE;
use crate::sys::Sys;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The `version` of the file format.
pub const FORMAT: u32 = 1;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Still running (the file was written while it ran, or the node is stuck there).
    Running,
    Ok,
    /// A warn-policy step failed; the boot went on.
    Warning,
    /// A fatal-policy step failed; the node went degraded there.
    Fatal,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::Warning => "warning",
            Outcome::Fatal => "fatal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTime {
    pub name: String,
    /// Seconds since the kernel started.
    pub start: f64,
    /// None while the step runs.
    pub end: Option<f64>,
    pub outcome: Outcome,
    /// The error of a failed step.
    pub message: Option<String>,
}

impl StepTime {
    pub fn seconds(&self) -> Option<f64> {
        self.end.map(|e| round_ms(e - self.start))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    pub version: u32,
    /// Always `boottime`: the clock the times are read from.
    pub clock: String,
    pub steps: Vec<StepTime>,
    /// When the final state line was printed (null until then).
    pub ready: Option<f64>,
    /// The final state line (`ready`, `state: degraded …`), `booting` until then.
    pub state: String,
}

fn secs(d: Duration) -> f64 {
    round_ms(d.as_secs_f64())
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

impl Timeline {
    /// A timeline whose `kernel` entry ends at `init_start` (the init's first clock
    /// reading).
    pub fn new(init_start: Duration) -> Self {
        Timeline {
            version: FORMAT,
            clock: "boottime".into(),
            steps: vec![StepTime {
                name: "kernel".into(),
                start: 0.0,
                end: Some(secs(init_start)),
                outcome: Outcome::Ok,
                message: None,
            }],
            ready: None,
            state: "booting".into(),
        }
    }

    pub fn begin(&mut self, name: &str, now: Duration) {
        self.steps.push(StepTime {
            name: name.into(),
            start: secs(now),
            end: None,
            outcome: Outcome::Running,
            message: None,
        });
    }

    /// Ends the step that runs (the last one begun).
    pub fn end(&mut self, outcome: Outcome, message: Option<String>, now: Duration) {
        if let Some(s) = self.steps.last_mut().filter(|s| s.end.is_none()) {
            s.end = Some(secs(now));
            s.outcome = outcome;
            s.message = message;
        }
    }

    /// Something that happened at one moment after the boot steps (`quorum`: the
    /// cluster was joined after the node printed its state).
    pub fn mark(&mut self, name: &str, now: Duration) {
        self.begin(name, now);
        self.end(Outcome::Ok, None, now);
    }

    /// The final state line was printed at `now`.
    pub fn finish(&mut self, state: &str, now: Duration) {
        self.ready = Some(secs(now));
        self.state = state.into();
    }

    /// The steps that failed, with their messages: the boot's errors.
    pub fn errors(&self) -> impl Iterator<Item = &StepTime> {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Warning | Outcome::Fatal))
    }

    /// The console table: one line per step (start, end, duration, and the outcome
    /// unless ok), then the total.
    pub fn render(&self) -> Vec<String> {
        let mut out = vec!["boot timeline (seconds since the kernel started):".to_string()];
        let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.steps {
            let end = s.end.map_or("      ?".to_string(), |e| format!("{e:7.3}"));
            let took = s.seconds().map_or("?".to_string(), |d| format!("{d:.3}"));
            let outcome = match s.outcome {
                Outcome::Ok => String::new(),
                o => format!("  {}", o.as_str()),
            };
            out.push(format!(
                "  {:width$}  {:7.3} -> {end}  {took:>7} s{outcome}",
                s.name, s.start
            ));
        }
        match self.ready {
            Some(r) => out.push(format!("  {:width$}  {r:7.3}", self.state)),
            None => out.push(format!("  {} (not ready yet)", self.state)),
        }
        out
    }

    pub fn to_json(&self) -> String {
        // Plain data: serialising cannot fail; an empty object if it ever did.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into()) + "\n"
    }

    /// Reads [`TIMELINE`] (e.g. for `status`); the error names the file.
    pub fn read(sys: &mut dyn Sys) -> anyhow::Result<Timeline> {
        let text = sys.read_to_string(Path::new(TIMELINE))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{TIMELINE}: {e}"))
    }

    pub fn parse(text: &str) -> Result<Timeline, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Writes [`TIMELINE`] (its directory made first).
    pub fn write(&self, sys: &mut dyn Sys) -> anyhow::Result<()> {
        let path = Path::new(TIMELINE);
        if let Some(dir) = path.parent() {
            if !sys.exists(dir) {
                sys.mkdir(dir)?;
            }
        }
        sys.write_durable(path, self.to_json().as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::sys::FakeSys;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steps_render_and_round_trip() {
        let mut t = Timeline::new(ms(1234));
        t.begin("mounts", ms(1240));
        t.end(Outcome::Ok, None, ms(1251));
        t.begin("network", ms(1300));
        t.end(Outcome::Warning, Some("eth9: not found".into()), ms(2300));
        t.finish("ready", ms(2400));
        let lines = t.render();
        assert_eq!(
            lines,
            [
                "boot timeline (seconds since the kernel started):",
                "  kernel     0.000 ->   1.234    1.234 s",
                "  mounts     1.240 ->   1.251    0.011 s",
                "  network    1.300 ->   2.300    1.000 s  warning",
                "  ready      2.400",
            ]
        );
        let errors: Vec<_> = t.errors().map(|s| s.name.as_str()).collect();
        assert_eq!(errors, ["network"]);
        let back = Timeline::parse(&t.to_json()).unwrap();
        assert_eq!(back, t);
        let v: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(v["steps"][2]["outcome"], "warning");
        assert_eq!(v["steps"][2]["message"], "eth9: not found");
        assert_eq!(v["ready"], 2.4);
    }

    #[test]
    fn a_running_step_shows_as_running() {
        let mut t = Timeline::new(ms(10));
        t.begin("cluster", ms(20));
        assert_eq!(t.steps[1].outcome, Outcome::Running);
        let lines = t.render();
        assert!(
            lines[2].contains("?") && lines[2].ends_with("running"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "  booting (not ready yet)");
        // Ending twice does not touch a finished step.
        t.end(Outcome::Ok, None, ms(30));
        t.end(Outcome::Fatal, None, ms(40));
        assert_eq!(t.steps[1].end, Some(0.03));
        assert_eq!(t.steps[1].outcome, Outcome::Ok);
    }

    #[test]
    fn written_and_read_back_through_sys() {
        let dir = tempfile::tempdir().unwrap();
        let mut sys = FakeSys::new(dir.path());
        let t = Timeline::new(ms(5));
        t.write(&mut sys).unwrap();
        assert_eq!(Timeline::read(&mut sys).unwrap(), t);
        std::fs::write(dir.path().join("run/sanforge/timeline.json"), "{").unwrap();
        let e = Timeline::read(&mut sys).unwrap_err().to_string();
        assert!(e.starts_with("/run/sanforge/timeline.json: "), "{e}");
    }
}
