//! Progress reporting: indicatif bars when stderr is a terminal, plain one-line step
//! messages otherwise (CI logs stay readable and free of control characters).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Whether bars are drawn. `SANFORGE_PROGRESS=plain` forces plain lines.
pub fn interactive() -> bool {
    std::env::var("SANFORGE_PROGRESS")
        .map(|v| v != "plain")
        .unwrap_or(true)
        && std::io::stderr().is_terminal()
}

/// Prints one step message on stderr.
pub fn step(msg: &str) {
    eprintln!("==> {msg}");
}

/// A unit of long work: a bar (known length), a spinner (unknown), or start/end lines.
pub struct Task {
    bar: Option<ProgressBar>,
    name: String,
    started: Instant,
    count: u64,
}

impl Task {
    /// `len`: total units if known; `unit`: "bytes" shows sizes and rates.
    pub fn start(name: &str, len: Option<u64>, unit: &str) -> Task {
        let bar = if interactive() {
            let b = match len {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            let tmpl = match (len.is_some(), unit == "bytes") {
                (true, true) => {
                    "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}"
                }
                (true, false) => "{spinner} {prefix} [{bar:30}] {pos}/{len} {msg}",
                (false, true) => "{spinner} {prefix} {bytes} {bytes_per_sec} {elapsed} {msg}",
                (false, false) => "{spinner} {prefix} {pos} {unit} {elapsed} {msg}",
            };
            let tmpl = tmpl.replace("{unit}", unit);
            if let Ok(style) = ProgressStyle::with_template(&tmpl) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_prefix(name.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            Some(b)
        } else {
            step(&format!("{name} …"));
            None
        };
        Task {
            bar,
            name: name.to_string(),
            started: Instant::now(),
            count: 0,
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.count += n;
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn set_message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn finish(self, summary: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        step(&format!(
            "{} done in {secs:.1}s{}{summary}",
            self.name,
            if summary.is_empty() { "" } else { ": " }
        ));
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
