//! The kernel stage: unpack the source, apply the patch series, build the config
//! (base + fragments + recipe assertions, `make olddefconfig`, verify), compile
//! `bzImage` and modules, install the modules and run depmod.
//!
//! Reads the kernel source blob (or path), `kernel-configs/` fragments and patches
//! named by the recipe. Writes into its cache entry: `vmlinuz`, `config`,
//! `kernel.release`, `modules/lib/modules/<release>/…`, and keeps `src/` with the
//! object tree inside it (`src/.sanforge-obj`, KDIR of out-of-tree module builds, and
//! the seed of later configs of the same source: see [`super::kernel_seed`]).

use crate::config::recipe::Source;
use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage};
use crate::kconfig;
use crate::stages::kernel_seed as seed;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress::{self, Task};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub mod signing;

/// Options sanforge always asserts: the init is loaded from an initramfs compressed
/// with zstd and talks to a serial console.
const REQUIRED: &[(&str, &str)] = &[
    ("CONFIG_BLK_DEV_INITRD", "y"),
    ("CONFIG_RD_ZSTD", "y"),
    ("CONFIG_DEVTMPFS", "y"),
    ("CONFIG_BINFMT_ELF", "y"),
];

/// Bump when the stage's code changes what it produces, to invalidate old entries.
const VERSION: &str = "kernel-v1";

/// The kernel stage.
pub struct Kernel;

/// The kernel stage's cache entry.
#[derive(Debug, Clone)]
pub struct KernelOut {
    pub dir: PathBuf,
}

impl KernelOut {
    /// The bzImage.
    pub fn vmlinuz(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    /// The final `.config`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }
    /// `lib/modules` of the installed modules (absent without module support).
    pub fn lib_modules(&self) -> PathBuf {
        self.dir.join("modules/lib/modules")
    }
    /// The kernel source and build trees (KDIR of out-of-tree module builds).
    pub fn src(&self) -> PathBuf {
        self.dir.join("src")
    }
    /// The object tree: `src/.sanforge-obj`, or `build/` in entries made before
    /// seeded builds (same key, same outputs; only where the objects are differs).
    pub fn build_tree(&self) -> PathBuf {
        obj_tree(&self.dir)
    }
    /// `uname -r` of the built kernel.
    pub fn release(&self) -> Result<String> {
        Ok(ufs::read_to_string(&self.dir.join("kernel.release"))?
            .trim()
            .to_string())
    }
}

impl Stage<super::Built> for Kernel {
    fn name(&self) -> &'static str {
        "kernel"
    }

    /// The source and build trees stay here: gigabytes, and the build tree records
    /// its absolute path. A pulled kernel has vmlinuz, config and its modules.
    fn shared(&self) -> Option<&'static [&'static str]> {
        Some(&["src", "build"])
    }

    fn inputs(&self, ctx: &Ctx) -> Vec<String> {
        let mut v = vec!["kernel".to_string()];
        // SCST's tree may change the kernel source (in-tree mode).
        if ctx.recipe.scst.is_some() {
            v.push("scst".to_string());
        }
        v
    }

    fn key(&self, ctx: &Ctx, _keys: &Keys) -> Result<String> {
        let r = &ctx.recipe;
        let k = r.kernel();
        let mut kb = KeyBuilder::new(VERSION);
        kb.add_str("source", ctx.input_sha("kernel"));
        kb.add_str(
            "member",
            match &k.source {
                Source::Debian { member, .. } => member.as_deref().unwrap_or(""),
                _ => "",
            },
        );
        kb.add_str("base", &k.base);
        let base_file = r.root.join(&k.base);
        if base_file.is_file() {
            kb.add("base-file", &ufs::read(&base_file)?);
        }
        for f in &k.fragments {
            kb.add_str(
                "fragment",
                &f.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            kb.add("fragment-content", &ufs::read(f)?);
        }
        for (o, v) in &k.options {
            kb.add_str("option", &format!("{o}={v}"));
        }
        for o in &k.forbid {
            kb.add_str("forbid", o);
        }
        for p in &k.patches {
            kb.add("patch", &ufs::read(p)?);
        }
        kb.add_str("localversion", &k.localversion);
        signing::add_key(ctx, &mut kb);
        kb.add_str("sde", &r.source_date_epoch().to_string());
        if let Some(s) = r
            .scst
            .as_ref()
            .filter(|s| s.driver_mode == crate::config::recipe::DriverMode::InTree)
        {
            // The in-tree swap changes the kernel source.
            kb.add_str("scst", ctx.input_sha("scst"));
            kb.add_str("scst-mode", s.driver_mode.as_str());
            kb.add_str("scst-qla", &s.components.join(" "));
        }
        Ok(kb.finish())
    }

    fn reason(&self, _ctx: &Ctx, _earlier: &[PlanEntry]) -> String {
        "no cache entry for this kernel source, config and patch set".to_string()
    }

    fn execute(&self, ctx: &Ctx, built: &mut super::Built, runner: &mut Runner) -> Result<()> {
        let key = ctx.keys.get(self.name());
        // The kernel tree must stay where it was built (out-of-tree modules use it).
        let dir =
            runner.cached_entry(ctx, self.name(), key, true, |dir, log| build(ctx, dir, log))?;
        built.kernel = Some(KernelOut { dir });
        Ok(())
    }
}

/// The object tree of a kernel entry (see [`KernelOut::build_tree`]).
pub fn obj_tree(entry: &Path) -> PathBuf {
    let inside = entry.join("src").join(seed::OBJ_DIR);
    if inside.is_dir() {
        inside
    } else {
        entry.join("build")
    }
}

fn build(ctx: &Ctx, dir: &Path, log: &Log) -> Result<()> {
    let src = dir.join("src");
    let obj = src.join(seed::OBJ_DIR);
    let identity = seed::identity(ctx)?;
    match seed::enabled()
        .then(|| requests(ctx).map(|wanted| seed::find(ctx, &identity, dir, &wanted)))
        .transpose()?
        .flatten()
    {
        Some(from) => seed::plant(&from, dir, log)?,
        None => {
            unpack(ctx, &src, log)?;
            apply_patches(&ctx.recipe.kernel().patches, &src, log)?;
            crate::stages::modules::prepare_kernel_tree(ctx, &src, log)?;
        }
    }
    // The owner's module-signing key, in the build tree only until modules_install.
    let key = signing::place_key(ctx, &obj, log)?;
    configure(ctx, &src, &obj, log)?;
    compile(ctx, &src, &obj, log)?;
    install(ctx, &src, &obj, dir, log)?;
    signing::finish(ctx, key, &obj, dir)?;
    seed::mark(dir, &identity)
}

/// `sanforge kconfig check`: unpack the source into a scratch directory, build the
/// config and verify it, without compiling. Returns the number of verified options.
pub fn check_config(ctx: &Ctx) -> Result<usize> {
    let scratch = tempfile::Builder::new()
        .prefix("kconfig-check-")
        .tempdir_in(ctx.cache.tmp_dir())
        .context("cannot create a scratch directory in the cache")?;
    let log = Log::open(&scratch.path().join("kconfig.log"))?;
    let src = scratch.path().join("src");
    unpack(ctx, &src, &log)?;
    apply_patches(&ctx.recipe.kernel().patches, &src, &log)?;
    crate::stages::modules::prepare_kernel_tree(ctx, &src, &log)?;
    configure(ctx, &src, &scratch.path().join("build"), &log)?;
    Ok(requests(ctx)?.len())
}

/// Where the source comes from, as a file (archive) or a directory.
fn unpack(ctx: &Ctx, src: &Path, log: &Log) -> Result<()> {
    ufs::create_dir_all(src)?;
    let fetched = crate::engine::fetch::fetch_source(
        &ctx.cache,
        &ctx.recipe.kernel().lock_name,
        &ctx.recipe.kernel().source,
        ctx.lock.as_ref(),
        log,
    )?;
    if let Some(tree) = &fetched.tree {
        progress::step(&format!("kernel: checking out source tree {tree}"));
        let m = crate::engine::tree::checkout(&ctx.cache, tree, src)?;
        log.line(&format!("checked out {tree} ({} files)", m.entries.len()));
        if !src.join("Makefile").is_file() || !src.join("Kconfig").is_file() {
            bail!("tree {tree} does not look like a Linux source tree (no Makefile and Kconfig at its top)");
        }
        return Ok(());
    }
    if fetched.path.is_dir() {
        progress::step(&format!(
            "kernel: copying source tree {}",
            fetched.path.display()
        ));
        Cmd::new("cp")
            .arg("-a")
            .arg(fetched.path.join("."))
            .arg(src)
            .run(log)?;
        return Ok(());
    }
    let archive = fetched.path;
    let mut task = Task::start("kernel: unpacking the source", None, "files");
    Cmd::new("tar")
        .arg("-xvf")
        .arg(&archive)
        .arg("-C")
        .arg(src)
        .arg("--strip-components=1")
        .arg("--no-same-owner")
        .run_lines(&Log::none(), |_| task.inc(1))?;
    let n = task.count();
    task.finish(&format!("{n} files"));
    log.line(&format!("unpacked {n} files from {}", archive.display()));
    if !src.join("Makefile").is_file() || !src.join("Kconfig").is_file() {
        bail!(
            "{} does not look like a Linux source tree (no Makefile and Kconfig at its top)",
            archive.display()
        );
    }
    Ok(())
}

/// Applies patches in order, each dry-run first; a failing patch names its file and
/// the hunks that failed.
pub fn apply_patches(patches: &[PathBuf], src: &Path, log: &Log) -> Result<()> {
    for p in patches {
        let dry = Cmd::new("patch")
            .args(["-p1", "--dry-run", "--batch", "--forward", "-d"])
            .arg(src)
            .arg("-i")
            .arg(p);
        let mut out = Vec::new();
        if let Err(e) = dry.run_lines(log, |l| out.push(l.to_string())) {
            let mut file = String::new();
            let mut failed = Vec::new();
            for l in &out {
                if let Some(f) = l
                    .strip_prefix("patching file ")
                    .or_else(|| l.strip_prefix("checking file "))
                {
                    file = f.trim().to_string();
                } else if l.contains("FAILED")
                    || l.contains("Reversed (or previously applied)")
                    || l.contains("can't find file")
                {
                    failed.push(format!("{file}: {}", l.trim()));
                }
            }
            let detail = if failed.is_empty() {
                e.to_string()
            } else {
                failed.join("\n  ")
            };
            bail!("patch {} does not apply:\n  {detail}", p.display());
        }
        Cmd::new("patch")
            .args(["-p1", "--batch", "--forward", "-d"])
            .arg(src)
            .arg("-i")
            .arg(p)
            .run(log)?;
        progress::step(&format!("kernel: applied {}", p.display()));
    }
    Ok(())
}

/// `make -C SRC O=OBJ`, through the compiler cache when there is one.
fn make(ctx: &Ctx, src: &Path, obj: &Path) -> Cmd {
    let mut cmd = Cmd::new("make")
        .arg("-C")
        .arg(src)
        .arg(format!("O={}", obj.display()));
    if let Some(cc) = compiler_cache(ctx) {
        cmd = cmd.arg("CC=ccache gcc");
        for (k, v) in cc {
            cmd = cmd.env(k, v);
        }
    }
    cmd
}

/// ccache (Debian's `ccache`) shared by every kernel build of this cache: a second
/// config of an already-built source, or a rebuild after a fragment change, recompiles
/// only the files whose preprocessed source changed. It is keyed by what the compiler
/// really reads (the preprocessed source, the arguments, the compiler binary), so an
/// object it hands back is the one gcc would write: outputs stay bit-identical
/// (`build --verify`). Paths under the stage directory are made relative
/// (`CCACHE_BASEDIR`) so builds in different cache entries share objects. Off when
/// ccache is not installed or `SANFORGE_CCACHE=0`; it never changes a stage's key.
pub fn compiler_cache(ctx: &Ctx) -> Option<Vec<(String, String)>> {
    if std::env::var_os("SANFORGE_CCACHE").is_some_and(|v| v == "0") {
        return None;
    }
    crate::util::tools::which("ccache")?;
    let root = ctx.cache.root();
    Some(vec![
        (
            "CCACHE_DIR".into(),
            root.join("ccache").display().to_string(),
        ),
        (
            "CCACHE_BASEDIR".into(),
            root.join("stages").display().to_string(),
        ),
        ("CCACHE_NOHASHDIR".into(), "true".into()),
        ("CCACHE_COMPILERCHECK".into(), "content".into()),
        // Kbuild writes generated headers just before it compiles.
        (
            "CCACHE_SLOPPINESS".into(),
            "include_file_mtime,include_file_ctime".into(),
        ),
        ("CCACHE_MAXSIZE".into(), "8G".into()),
        ("CCACHE_UMASK".into(), "022".into()),
    ])
}

/// Every option the recipe asks for: sanforge's own, the fragments, the recipe's.
pub fn requests(ctx: &Ctx) -> Result<Vec<kconfig::Request>> {
    let mut reqs: Vec<kconfig::Request> = REQUIRED
        .iter()
        .map(|(o, v)| kconfig::Request {
            option: o.to_string(),
            value: v.to_string(),
            origin: "sanforge (initramfs boot)".into(),
        })
        .collect();
    for f in &ctx.recipe.kernel().fragments {
        let shown = f
            .strip_prefix(&ctx.recipe.root)
            .unwrap_or(f)
            .display()
            .to_string();
        reqs.extend(kconfig::parse_fragment(f, &shown)?);
    }
    reqs.extend(kconfig::requests_from_recipe(&ctx.recipe.kernel().options));
    reqs.extend(kconfig::requests_from_forbid(&ctx.recipe.kernel().forbid));
    reqs.extend(crate::stages::modules::kernel_requests(ctx));
    reqs.extend(signing::requests(ctx));
    Ok(reqs)
}

fn configure(ctx: &Ctx, src: &Path, obj: &Path, log: &Log) -> Result<()> {
    ufs::create_dir_all(obj)?;
    let base = &ctx.recipe.kernel().base;
    let task = Task::start(
        &format!(
            "kernel: configuring ({base} + {} fragments)",
            ctx.recipe.kernel().fragments.len()
        ),
        None,
        "steps",
    );
    match base.as_str() {
        "tinyconfig" | "defconfig" | "allnoconfig" => make(ctx, src, obj).arg(base).run(log)?,
        file => {
            ufs::copy(&ctx.recipe.root.join(file), &obj.join(".config"))?;
            make(ctx, src, obj).arg("olddefconfig").run(log)?;
        }
    }
    let base_text = ufs::read_to_string(&obj.join(".config"))?;
    let reqs = requests(ctx)?;
    ufs::write(&obj.join(".config"), kconfig::merge(&base_text, &reqs))?;
    make(ctx, src, obj).arg("olddefconfig").run(log)?;
    let final_text = ufs::read_to_string(&obj.join(".config"))?;
    kconfig::verify(&final_text, &reqs, &ctx.recipe.kernel().forbid, Some(src))
        .map_err(|e| anyhow::anyhow!("kernel config verification failed:\n{e}"))?;
    check_module_compression(&final_text)
        .map_err(|e| anyhow::anyhow!("kernel config {}: {e}", obj.join(".config").display()))?;
    task.finish(&format!("{} requested options verified", reqs.len()));
    Ok(())
}

/// Environment that makes the kernel build reproducible.
pub fn repro_env(ctx: &Ctx) -> Vec<(String, String)> {
    vec![
        (
            "KBUILD_BUILD_TIMESTAMP".into(),
            crate::util::time::date_utc(ctx.source_date_epoch()),
        ),
        ("KBUILD_BUILD_USER".into(), "sanforge".into()),
        ("KBUILD_BUILD_HOST".into(), "sanforge".into()),
        ("KBUILD_BUILD_VERSION".into(), "1".into()),
        (
            "SOURCE_DATE_EPOCH".into(),
            ctx.source_date_epoch().to_string(),
        ),
        ("LC_ALL".into(), "C".into()),
        ("TZ".into(), "UTC".into()),
    ]
}

fn with_env(mut cmd: Cmd, ctx: &Ctx) -> Cmd {
    for (k, v) in repro_env(ctx) {
        cmd = cmd.env(k, v);
    }
    cmd
}

fn compile(ctx: &Ctx, src: &Path, obj: &Path, log: &Log) -> Result<()> {
    let modules = modules_enabled(obj)?;
    let mut task = Task::start(
        &format!("kernel: compiling with {} jobs", ctx.jobs),
        None,
        "objects",
    );
    let mut cmd = make(ctx, src, obj)
        .arg(format!("-j{}", ctx.jobs))
        .arg(format!("LOCALVERSION={}", ctx.recipe.kernel().localversion))
        .arg("bzImage");
    if modules {
        cmd = cmd.arg("modules");
    }
    with_env(cmd, ctx).run_lines(log, |l| {
        let t = l.trim_start();
        if t.starts_with("CC ")
            || t.starts_with("AS ")
            || t.starts_with("LD ")
            || t.starts_with("AR ")
        {
            task.inc(1);
            task.set_message(t);
        }
    })?;
    let n = task.count();
    task.finish(&format!("{n} objects"));
    Ok(())
}

/// Compressed modules only as sanforge-init can load them: xz, which the kernel itself
/// decompresses (`CONFIG_MODULE_DECOMPRESS`: the init passes the file as it is). 6.1
/// decompresses gzip and xz only, and Debian's libkmod (udevd's hotplug loads,
/// modprobe) was built without zlib, so a gzip module would load from neither.
pub fn check_module_compression(config: &str) -> Result<()> {
    let c = kconfig::parse_config(config);
    let on = |o: &str| c.get(o).is_some_and(|v| v == "y");
    for (opt, what) in [
        ("CONFIG_MODULE_COMPRESS_GZIP", "gzip"),
        ("CONFIG_MODULE_COMPRESS_ZSTD", "zstd"),
    ] {
        if on(opt) {
            bail!("{opt}=y installs {what}-compressed modules, which this kernel or Debian's libkmod cannot load; expected CONFIG_MODULE_COMPRESS_XZ=y with CONFIG_MODULE_DECOMPRESS=y, or no module compression");
        }
    }
    if on("CONFIG_MODULE_COMPRESS_XZ") && !on("CONFIG_MODULE_DECOMPRESS") {
        bail!("CONFIG_MODULE_COMPRESS_XZ=y without CONFIG_MODULE_DECOMPRESS=y: sanforge-init has the kernel decompress the modules it loads; expected CONFIG_MODULE_DECOMPRESS=y");
    }
    Ok(())
}

fn modules_enabled(obj: &Path) -> Result<bool> {
    Ok(ufs::read_to_string(&obj.join(".config"))?
        .lines()
        .any(|l| l == "CONFIG_MODULES=y"))
}

fn install(ctx: &Ctx, src: &Path, obj: &Path, dir: &Path, log: &Log) -> Result<()> {
    let release = ufs::read_to_string(&obj.join("include/config/kernel.release"))?
        .trim()
        .to_string();
    ufs::copy(&obj.join("arch/x86/boot/bzImage"), &dir.join("vmlinuz"))?;
    ufs::copy(&obj.join(".config"), &dir.join("config"))?;
    ufs::write(&dir.join("kernel.release"), format!("{release}\n"))?;
    let moddir = dir.join("modules");
    ufs::create_dir_all(&moddir)?;
    if modules_enabled(obj)? {
        let depmod =
            crate::util::tools::which("depmod").unwrap_or_else(|| PathBuf::from("/sbin/depmod"));
        with_env(make(ctx, src, obj), ctx)
            .arg(format!("LOCALVERSION={}", ctx.recipe.kernel().localversion))
            .arg(format!("INSTALL_MOD_PATH={}", moddir.display()))
            .arg("INSTALL_MOD_STRIP=1")
            .arg(format!("DEPMOD={}", depmod.display()))
            .arg("modules_install")
            .run(log)?;
        let lib = moddir.join("lib/modules").join(&release);
        for link in ["build", "source"] {
            let _ = std::fs::remove_file(lib.join(link));
        }
    }
    progress::step(&format!("kernel: {release} installed"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_module_compression;

    #[test]
    fn module_compression_must_be_xz_with_in_kernel_decompression() {
        assert!(check_module_compression("CONFIG_MODULES=y\n").is_ok());
        assert!(check_module_compression(
            "CONFIG_MODULE_COMPRESS_XZ=y\nCONFIG_MODULE_DECOMPRESS=y\n"
        )
        .is_ok());
        let e = check_module_compression("CONFIG_MODULE_COMPRESS_XZ=y\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected CONFIG_MODULE_DECOMPRESS=y"), "{e}");
        let e =
            check_module_compression("CONFIG_MODULE_COMPRESS_GZIP=y\nCONFIG_MODULE_DECOMPRESS=y\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("CONFIG_MODULE_COMPRESS_GZIP=y installs gzip"),
            "{e}"
        );
        assert!(check_module_compression("CONFIG_MODULE_COMPRESS_ZSTD=y\n").is_err());
    }
}
