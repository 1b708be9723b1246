//! The kernel matrix: `sanforge matrix` builds the image once per kernel the recipe
//! names (`[kernel]` and each `[kernel.matrix]` entry), optionally boots each in QEMU
//! until `sanforge-init: ready`, and reports one row per kernel.
//!
//! Why it exists: a kernel bump is a recipe change; the matrix shows, before the
//! switch, that the new kernel configures, builds, fits and boots like the old one.
//! Each kernel is an ordinary build (`build --kernel NAME`) with its own cache keys
//! and output directory, so one kernel's change never rebuilds another's. Reads the
//! recipe (through the pipeline) and each output directory's `manifest.json`.

use crate::commands::run::{self, Accel, BootMode, RunOptions};
use crate::config::recipe::{Recipe, Source};
use crate::engine::{BuildOptions, StageFailed};
use crate::util::fs as ufs;
use crate::util::progress;
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// `out` is a parent directory here: each kernel goes to `OUT/<kernel>`; without
    /// it each kernel uses its `sanforge build --kernel` directory. `kernel` is ignored.
    pub build: BuildOptions,
    /// Boot each built image until ready.
    pub boot: bool,
    pub accel: Accel,
    pub memory_mib: u32,
    pub timeout: Duration,
}

/// How the boot of one kernel's image went.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Boot {
    /// `--no-boot`, or the build failed.
    Skipped,
    Ready {
        seconds: f64,
    },
    Failed {
        error: String,
    },
}

/// One kernel's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Row {
    pub kernel: String,
    pub default: bool,
    /// What the recipe names (`linux-source-6.12=6.12.117-1~deb12u1`, a URL, a path).
    pub source: String,
    /// `uname -r` of the built kernel (from the manifest), when it was built.
    pub release: Option<String>,
    pub out: PathBuf,
    pub stages_total: usize,
    pub stages_passed: usize,
    /// The stage that failed (`setup` when the build could not start).
    pub failed_stage: Option<String>,
    pub error: Option<String>,
    /// Stages that ran (were not cached).
    pub ran: Vec<String>,
    pub vmlinuz_bytes: Option<u64>,
    pub initramfs_bytes: Option<u64>,
    pub build_seconds: f64,
    pub boot: Boot,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.failed_stage.is_none() && !matches!(self.boot, Boot::Failed { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub recipe: String,
    pub kernels: Vec<Row>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.kernels.iter().all(Row::ok)
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "KERNEL".to_string(),
            "VERSION".to_string(),
            "STAGES".to_string(),
            "IMAGE".to_string(),
            "BUILD".to_string(),
            "BOOT-TO-READY".to_string(),
            "RAN".to_string(),
        ]];
        for r in &self.kernels {
            let stages = match &r.failed_stage {
                None => format!("{}/{}", r.stages_passed, r.stages_total),
                Some(s) => format!("{}/{} {s} failed", r.stages_passed, r.stages_total),
            };
            let image = match (r.vmlinuz_bytes, r.initramfs_bytes) {
                (Some(k), Some(i)) => mib(k + i),
                _ => "-".to_string(),
            };
            let boot = match &r.boot {
                Boot::Skipped => "skipped".to_string(),
                Boot::Ready { seconds } => format!("{seconds:.1}s"),
                Boot::Failed { .. } => "failed".to_string(),
            };
            let ran = if r.failed_stage.is_some() {
                "-".to_string()
            } else if r.ran.is_empty() {
                "nothing (cached)".to_string()
            } else {
                r.ran.join(",")
            };
            rows.push([
                if r.default {
                    format!("{} (default)", r.kernel)
                } else {
                    r.kernel.clone()
                },
                r.release.clone().unwrap_or_else(|| r.source.clone()),
                stages,
                image,
                format!("{:.1}s", r.build_seconds),
                boot,
                ran,
            ]);
        }
        let mut width = [0usize; 7];
        for row in &rows {
            for (w, c) in width.iter_mut().zip(row.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let line: Vec<String> = row
                .iter()
                .zip(width.iter())
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        for r in &self.kernels {
            if let Some(e) = &r.error {
                out.push_str(&format!("{}: {e}\n", r.kernel));
            }
            if let Boot::Failed { error } = &r.boot {
                out.push_str(&format!("{}: boot: {error}\n", r.kernel));
            }
        }
        out
    }
}

/// `12345678` → `11.8 MiB`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `kind origin` of a source as the lock writes it.
fn origin(recipe: &Recipe, s: &Source) -> String {
    match s {
        Source::Url { mirrors, .. } | Source::UrlTree { mirrors, .. } => {
            mirrors.first().cloned().unwrap_or_default()
        }
        Source::Debian {
            package, version, ..
        } => format!("{package}={version}"),
        Source::Path { path, .. } => path
            .strip_prefix(&recipe.root)
            .unwrap_or(path)
            .display()
            .to_string(),
    }
}

fn error_chain(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Builds (and boots) every kernel of the recipe in turn; a failing kernel is
/// recorded and the next one still runs.
pub fn run(recipe: &Recipe, opts: &MatrixOptions) -> Result<Report> {
    let n = recipe.kernels.len();
    let mut kernels = Vec::new();
    for (i, k) in recipe.kernels.iter().enumerate() {
        progress::step(&format!("matrix: kernel {} ({}/{n})", k.name, i + 1));
        let mut bo = opts.build.clone();
        bo.kernel = Some(k.name.clone());
        bo.out = opts.build.out.as_ref().map(|o| o.join(&k.name));
        let started = Instant::now();
        let mut row = Row {
            kernel: k.name.clone(),
            default: k.is_default(),
            source: origin(recipe, &k.source),
            release: None,
            out: bo.out.clone().unwrap_or_default(),
            stages_total: 0,
            stages_passed: 0,
            failed_stage: None,
            error: None,
            ran: Vec::new(),
            vmlinuz_bytes: None,
            initramfs_bytes: None,
            build_seconds: 0.0,
            boot: Boot::Skipped,
        };
        let ctx = match crate::stages::context(recipe.clone(), &bo) {
            Ok(c) => c,
            Err(e) => {
                row.failed_stage = Some("setup".into());
                row.error = Some(error_chain(&e));
                row.build_seconds = started.elapsed().as_secs_f64();
                progress::step(&format!("matrix: kernel {}: {}", k.name, error_chain(&e)));
                kernels.push(row);
                continue;
            }
        };
        let stages = crate::stages::names(&ctx);
        row.stages_total = stages.len();
        row.out = ctx.out.clone();
        match crate::stages::build(&ctx) {
            Ok(report) => {
                row.build_seconds = started.elapsed().as_secs_f64();
                row.stages_passed = stages.len();
                row.ran = report.ran;
                row.release = release(&ctx.out);
                row.vmlinuz_bytes = size(&ctx.out.join("vmlinuz"));
                row.initramfs_bytes = size(&ctx.out.join("initramfs.cpio.zst"));
            }
            Err(e) => {
                row.build_seconds = started.elapsed().as_secs_f64();
                let failed = e
                    .downcast_ref::<StageFailed>()
                    .map(|s| s.stage.clone())
                    .unwrap_or_else(|| "kernel".to_string());
                row.stages_passed = stages.iter().take_while(|s| **s != failed).count();
                row.failed_stage = Some(failed);
                row.error = Some(error_chain(&e));
                progress::step(&format!("matrix: kernel {}: {}", k.name, error_chain(&e)));
                kernels.push(row);
                continue;
            }
        }
        if opts.boot {
            row.boot = boot(&ctx.out, opts);
        }
        kernels.push(row);
    }
    Ok(Report {
        recipe: recipe.name.clone(),
        kernels,
    })
}

fn size(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

/// `kernel.release` from an output directory's manifest.
fn release(out: &Path) -> Option<String> {
    let text = ufs::read_to_string(&out.join("manifest.json")).ok()?;
    let m: serde_json::Value = serde_json::from_str(&text).ok()?;
    m["kernel"]["release"].as_str().map(str::to_string)
}

/// A free TCP port on 127.0.0.1 for the guest's forwarded iSCSI port.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| anyhow::anyhow!("cannot bind a port on 127.0.0.1: {e}"))?;
    Ok(l.local_addr()
        .map_err(|e| anyhow::anyhow!("cannot read a bound port: {e}"))?
        .port())
}

/// Boots `out` directly (vmlinuz + initramfs) until ready, then stops the VM.
fn boot(out: &Path, opts: &MatrixOptions) -> Boot {
    let attempt = || -> Result<f64> {
        let ro = RunOptions {
            boot: BootMode::Direct,
            out: out.to_path_buf(),
            iscsi_port: free_port()?,
            memory_mib: opts.memory_mib,
            accel: opts.accel,
            until_ready: true,
            timeout: opts.timeout,
            extra_cmdline: Vec::new(),
            echo: false,
            hw: Default::default(),
        };
        let started = Instant::now();
        let r = run::run(&ro);
        let secs = started.elapsed().as_secs_f64();
        run::stop(out).ok();
        r.map(|()| secs)
    };
    match attempt() {
        Ok(seconds) => Boot::Ready { seconds },
        Err(e) => Boot::Failed {
            error: error_chain(&e),
        },
    }
}

/// One line per kernel for `sanforge plan`: name, lock entry, source, kernel key and
/// whether the kernel stage is cached (or why the kernel cannot be planned).
pub fn plan_kernels(recipe: &Recipe, opts: &BuildOptions) -> Vec<KernelPlan> {
    recipe
        .kernels
        .iter()
        .map(|k| {
            let mut bo = opts.clone();
            bo.kernel = Some(k.name.clone());
            bo.out = None;
            let (key, cached, error) = match crate::stages::context(recipe.clone(), &bo) {
                Ok(ctx) => {
                    let key = ctx.keys.get("kernel").to_string();
                    let cached = ctx.cache.stage_done("kernel", &key).is_some();
                    (key, cached, None)
                }
                Err(e) => (String::new(), false, Some(error_chain(&e))),
            };
            KernelPlan {
                name: k.name.clone(),
                lock_name: k.lock_name.clone(),
                source: origin(recipe, &k.source),
                key,
                cached,
                error,
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KernelPlan {
    pub name: String,
    pub lock_name: String,
    pub source: String,
    pub key: String,
    pub cached: bool,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kernel: &str) -> Row {
        Row {
            kernel: kernel.into(),
            default: false,
            source: "linux-source-6.12=6.12.117-1~deb12u1".into(),
            release: None,
            out: PathBuf::from("/o"),
            stages_total: 4,
            stages_passed: 4,
            failed_stage: None,
            error: None,
            ran: vec![],
            vmlinuz_bytes: Some(3 * 1024 * 1024),
            initramfs_bytes: Some(1024 * 1024 + 104858),
            build_seconds: 1.25,
            boot: Boot::Skipped,
        }
    }

    #[test]
    fn table_rows_show_sizes_stages_failures_and_boot() {
        let mut a = row("6.1");
        a.default = true;
        a.release = Some("6.1.0-t".into());
        a.boot = Boot::Ready { seconds: 12.34 };
        a.ran = vec!["kernel".into(), "outputs".into()];
        let mut b = row("6.12");
        b.failed_stage = Some("kernel".into());
        b.stages_passed = 0;
        b.vmlinuz_bytes = None;
        b.error = Some("stage kernel failed (log: x)".into());
        let mut c = row("6.6");
        c.boot = Boot::Failed {
            error: "QEMU exited".into(),
        };
        let r = Report {
            recipe: "t".into(),
            kernels: vec![a, b, c],
        };
        assert!(!r.ok());
        let t = r.table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("KERNEL"), "{t}");
        assert!(lines[1].starts_with("6.1 (default)  6.1.0-t"), "{t}");
        assert!(lines[1].contains("4/4"), "{t}");
        assert!(lines[1].contains("4.1 MiB"), "{t}");
        assert!(lines[1].contains("12.3s"), "{t}");
        assert!(lines[1].ends_with("kernel,outputs"), "{t}");
        assert!(lines[2].contains("0/4 kernel failed"), "{t}");
        assert!(
            lines[2].contains("linux-source-6.12=6.12.117-1~deb12u1"),
            "{t}"
        );
        assert!(lines[3].contains("failed"), "{t}");
        assert!(lines[3].ends_with("nothing (cached)"), "{t}");
        assert!(t.contains("6.12: stage kernel failed (log: x)"), "{t}");
        assert!(t.contains("6.6: boot: QEMU exited"), "{t}");
        let ok = Report {
            recipe: "t".into(),
            kernels: vec![row("x")],
        };
        assert!(ok.ok());
    }
}
