//! The one command runner. Every external program sanforge starts goes through `Cmd`:
//! it logs the argv before spawning, appends the whole output to the stage log, and on
//! failure returns an error that carries the argv, the exit status or signal, and the
//! last lines of output, followed by the path of the full log.

use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Lines of output kept for error messages.
const TAIL_LINES: usize = 25;

/// A log file shared by the commands of one stage (cheap to clone).
#[derive(Clone, Default)]
pub struct Log {
    inner: Option<Arc<(PathBuf, Mutex<File>)>>,
}

impl Log {
    /// A log that discards everything (used where no stage log exists, e.g. `doctor`).
    pub fn none() -> Self {
        Log { inner: None }
    }

    /// Opens (appending) the log file at `path`, creating its directory.
    pub fn open(path: &Path) -> Result<Self> {
        crate::util::fs::create_dir_all(&crate::util::fs::parent_dir(path))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open log {}", path.display()))?;
        Ok(Log {
            inner: Some(Arc::new((path.to_path_buf(), Mutex::new(f)))),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.as_ref().map(|i| i.0.as_path())
    }

    /// Appends one line. Logging never fails a build: a write error is ignored.
    pub fn line(&self, text: &str) {
        if let Some(inner) = &self.inner {
            if let Ok(mut f) = inner.1.lock() {
                let _ = writeln!(f, "{text}");
            }
        }
    }
}

/// What [`Cmd::capture`] returns.
#[derive(Debug, Clone)]
pub struct Captured {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// A command to run: program, arguments, working directory and extra environment.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    /// A file to read as stdin in [`Cmd::output`] and [`Cmd::capture`] (else none).
    stdin: Option<PathBuf>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Cmd {
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            stdin: None,
        }
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }
    pub fn dir(mut self, d: impl AsRef<Path>) -> Self {
        self.dir = Some(d.as_ref().to_path_buf());
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_os_string(), v.as_ref().to_os_string()));
        self
    }

    /// Feeds `path` to the command's stdin ([`Cmd::output`], [`Cmd::capture`]).
    pub fn stdin_file(mut self, path: impl AsRef<Path>) -> Self {
        self.stdin = Some(path.as_ref().to_path_buf());
        self
    }

    /// The arguments after the program, as given.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// The command line as a user would type it (for logs and errors).
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| {
                let s = a.to_string_lossy();
                if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                {
                    format!("'{}'", s.replace('\'', "'\\''"))
                } else {
                    s.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn expression(&self) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args);
        if let Some(d) = &self.dir {
            e = e.dir(d);
        }
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        e
    }

    /// Runs to completion; output goes to the log only.
    pub fn run(&self, log: &Log) -> Result<()> {
        self.run_lines(log, |_| {})
    }

    /// Runs to completion, calling `on_line` for each line of (merged) output, which is
    /// also appended to the log.
    pub fn run_lines(&self, log: &Log, mut on_line: impl FnMut(&str)) -> Result<()> {
        log.line(&format!("$ {}", self.display()));
        let reader = self
            .expression()
            .stderr_to_stdout()
            .stdin_null()
            .unchecked()
            .reader()
            .with_context(|| self.spawn_error())?;
        let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
        let mut buf = BufReader::new(&reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = buf
                .read_until(b'\n', &mut line)
                .with_context(|| format!("cannot read the output of `{}`", self.display()))?;
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            log.line(text);
            on_line(text);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.to_string());
        }
        let output = reader
            .try_wait()
            .with_context(|| format!("cannot wait for `{}`", self.display()))?
            .map(|o| o.status);
        match output {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(self.failure(status, tail.into_iter().collect(), log)),
            None => bail!("`{}` did not finish", self.display()),
        }
    }

    /// Runs with this terminal as its stdin/stdout/stderr (an interactive console).
    pub fn run_interactive(&self) -> Result<()> {
        let out = self
            .expression()
            .unchecked()
            .run()
            .with_context(|| self.spawn_error())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure(out.status, Vec::new(), &Log::none()))
        }
    }

    /// Runs and returns stdout (stderr is kept for the error message and the log).
    pub fn output(&self, log: &Log) -> Result<String> {
        log.line(&format!("$ {}", self.display()));
        let out = self.expression().stdout_capture().stderr_capture();
        let out = match &self.stdin {
            Some(p) => out.stdin_path(p),
            None => out.stdin_null(),
        };
        let out = out.unchecked().run().with_context(|| self.spawn_error())?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !stderr.is_empty() {
            log.line(stderr.trim_end());
        }
        if !out.status.success() {
            let tail: Vec<String> = stderr
                .lines()
                .rev()
                .take(TAIL_LINES)
                .map(String::from)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(self.failure(out.status, tail, log));
        }
        String::from_utf8(out.stdout)
            .with_context(|| format!("`{}` printed something that is not UTF-8", self.display()))
    }

    /// Runs to completion and returns its status and both outputs, whether or not it
    /// succeeded (for programs whose messages the caller interprets, such as apt).
    pub fn capture(&self, log: &Log) -> Result<Captured> {
        log.line(&format!("$ {}", self.display()));
        let out = self.expression().stdout_capture().stderr_capture();
        let out = match &self.stdin {
            Some(p) => out.stdin_path(p),
            None => out.stdin_null(),
        };
        let out = out.unchecked().run().with_context(|| self.spawn_error())?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for t in [&stdout, &stderr] {
            if !t.is_empty() {
                log.line(t.trim_end());
            }
        }
        Ok(Captured {
            success: out.status.success(),
            stdout,
            stderr,
        })
    }

    fn spawn_error(&self) -> String {
        let prog = self.program.to_string_lossy();
        match crate::util::tools::package_for(&prog) {
            Some(pkg) => format!(
                "cannot run `{}` (is `{prog}` installed? it comes with the Debian package `{pkg}`)",
                self.display()
            ),
            None => format!("cannot run `{}`", self.display()),
        }
    }

    fn failure(
        &self,
        status: std::process::ExitStatus,
        tail: Vec<String>,
        log: &Log,
    ) -> anyhow::Error {
        use std::os::unix::process::ExitStatusExt;
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => format!("was killed by signal {s}"),
            _ => "failed".to_string(),
        };
        let mut msg = format!("`{}` {how}", self.display());
        if !tail.is_empty() {
            msg.push_str("\n  last output:\n");
            for l in &tail {
                msg.push_str("    ");
                msg.push_str(l);
                msg.push('\n');
            }
        }
        if let Some(p) = log.path() {
            msg.push_str(&format!("  full log: {}", p.display()));
        }
        anyhow::anyhow!(msg.trim_end().to_string())
    }
}
