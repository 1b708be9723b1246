//! The pipeline itself: the build context, the stage keys, `plan` and `build`.
//!
//! Reads the recipe (and its lock), the node config, overlays, kernel fragments and
//! patches, the init binary; writes stage outputs into the cache and the final
//! outputs into `out/<recipe>/`, atomically (a staging directory swapped in at the end).

use crate::config::lock::Lock;
use crate::config::node::{NodeConfig, ValidNode};
use crate::config::recipe::{Recipe, Source};
use crate::engine::cache::Cache;
use crate::util::cmd::Log;
use crate::util::fs as ufs;
use crate::util::hash::{sha256_bytes, sha256_file, KeyBuilder};
use crate::util::progress;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Bump when a stage's code changes what it produces, to invalidate old cache entries.
const KERNEL_STAGE: &str = "kernel-v1";
const MODULES_STAGE: &str = "modules-v3";
const USERLAND_STAGE: &str = "userland-v1";
const ROOTFS_STAGE: &str = "rootfs-v1";
const OUTPUTS_STAGE: &str = "outputs-v1";

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Output directory (default `out/<recipe name>` under the project root).
    pub out: Option<PathBuf>,
    /// Refuse to build without an up-to-date lock file.
    pub locked: bool,
    /// Parallel jobs for make (default: number of CPUs).
    pub jobs: Option<usize>,
    /// The sanforge-init binary to put in the image (default: beside this executable).
    pub init: Option<PathBuf>,
    /// Which kernel of the recipe's matrix to build (default: `[kernel]` itself).
    pub kernel: Option<String>,
}

/// Everything a stage may read, resolved once.
pub struct Ctx {
    pub recipe: Recipe,
    pub cache: Cache,
    pub lock: Option<Lock>,
    pub node: ValidNode,
    pub node_text: String,
    /// `[node] configs`: (NAME, text) baked as /etc/sanforge/nodes/NAME.toml, sorted.
    pub node_configs: Vec<(String, String)>,
    /// The node's `scst.conf` (validated), when the node config has `[scst]`.
    pub scst_conf: Option<crate::stages::rootfs::NodeScstConf>,
    pub init_bin: PathBuf,
    pub init_sha256: String,
    pub jobs: usize,
    pub out: PathBuf,
    /// Resolved sha256 of every fetched input, by lock name (`kernel`, `package:NAME`, …).
    pub inputs: Vec<Input>,
    pub keys: Keys,
}

#[derive(Debug, Clone, Serialize)]
pub struct Input {
    pub name: String,
    pub kind: String,
    pub origin: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Keys {
    pub kernel: String,
    /// Empty when the recipe has no `[scst]` (no modules stage).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub modules: String,
    pub userland: String,
    pub rootfs: String,
    pub outputs: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    pub stage: String,
    pub key: String,
    pub cached: bool,
    pub reason: String,
}

impl Ctx {
    pub fn new(recipe: Recipe, opts: &BuildOptions) -> Result<Ctx> {
        let recipe = match &opts.kernel {
            Some(k) => recipe.select_kernel(k)?,
            None => recipe,
        };
        let cache = Cache::from_env()?;
        let lock = crate::commands::lock::load_for(&recipe, opts.locked)?;
        let node_text = ufs::read_to_string(&recipe.node_config)?;
        let node = NodeConfig::parse(&recipe.node_config, &node_text)?;
        let node_configs = node_configs(&recipe.root, &recipe.raw.node.configs)?;
        let scst_conf = crate::stages::rootfs::load_node_scst(&recipe.node_config, &node)?;
        let init_bin = match &opts.init {
            Some(p) => p.clone(),
            None => find_init()?,
        };
        check_static(&init_bin)?;
        let init_sha256 = sha256_file(&init_bin)?;
        let jobs = opts.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let out = match &opts.out {
            Some(o) => std::path::absolute(o).unwrap_or_else(|_| o.clone()),
            None => default_out(&recipe),
        };
        let inputs = resolve_inputs(&recipe, lock.as_ref())?;
        let mut ctx = Ctx {
            recipe,
            cache,
            lock,
            node,
            node_text,
            node_configs,
            scst_conf,
            init_bin,
            init_sha256,
            jobs,
            out,
            inputs,
            keys: Keys::default(),
        };
        ctx.keys = compute_keys(&ctx)?;
        Ok(ctx)
    }

    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }

    pub fn source_date_epoch(&self) -> u64 {
        self.recipe.source_date_epoch()
    }
}

/// `out/<recipe>` for the default kernel, `out/<recipe>@<kernel>` for a matrix kernel
/// (`@` cannot appear in a recipe name, so two kernels never share a directory).
pub fn default_out(recipe: &Recipe) -> PathBuf {
    let k = recipe.kernel();
    let dir = if k.is_default() {
        recipe.name.clone()
    } else {
        format!("{}@{}", recipe.name, k.name)
    };
    recipe.root.join("out").join(dir)
}

/// The sanforge-init binary: `$SANFORGE_INIT`, or `sanforge-init` beside this program.
pub fn find_init() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SANFORGE_INIT") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find the path of this program")?;
    let dir = ufs::parent_dir(&exe);
    for cand in [
        dir.join("sanforge-init"),
        ufs::parent_dir(&dir).join("sanforge-init"),
    ] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    bail!(
        "cannot find sanforge-init beside {} (build it with `cargo build --bin sanforge-init`, or point SANFORGE_INIT at it)",
        exe.display()
    )
}

/// The init is PID 1 in an image without a libc: it must have no ELF interpreter.
fn check_static(path: &Path) -> Result<()> {
    match crate::image::elf::needed(path)? {
        None => bail!("{} is not an ELF executable", path.display()),
        Some(info) if info.interpreter.is_some() || !info.needed.is_empty() => bail!(
            "{} is dynamically linked (needs {}): build it with `-C target-feature=+crt-static` (see .cargo/config.toml)",
            path.display(),
            info.needed.join(", ")
        ),
        Some(_) => Ok(()),
    }
}

fn resolve_inputs(recipe: &Recipe, lock: Option<&Lock>) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    // `lock_name`: the entry that pins it (`kernel@NAME` for a matrix kernel, which is
    // still the input `kernel` of this build).
    let mut add =
        |name: &str, lock_name: &str, src: &Source, written: Option<&Path>| -> Result<()> {
            let (kind, origin) = match src {
                Source::Url { mirrors, .. } => ("url", mirrors.join(" ")),
                Source::Debian {
                    package, version, ..
                } => ("debian", format!("{package}={version}")),
                // As written in the recipe (relative), so that outputs do not depend on
                // where the project is checked out; the lock uses the same form.
                Source::Path { path } => ("path", written.unwrap_or(path).display().to_string()),
            };
            let locked = lock
                .and_then(|l| l.get(lock_name))
                .filter(|l| l.kind == kind && l.origin == origin);
            let sha256 = match (locked, src) {
                (Some(l), _) => l.sha256.clone(),
                (None, Source::Url { sha256, .. }) => sha256.clone(),
                (
                    None,
                    Source::Debian {
                        package, version, ..
                    },
                ) => crate::stages::fetch::debian_info(package, version)?.sha256,
                (None, Source::Path { path }) => crate::stages::fetch::path_sha256(path)?,
            };
            inputs.push(Input {
                name: name.to_string(),
                kind: kind.to_string(),
                origin,
                sha256,
            });
            Ok(())
        };
    add(
        "kernel",
        &recipe.kernel().lock_name,
        &recipe.kernel_source,
        recipe.raw.kernel.source.path.as_deref(),
    )?;
    for (n, s) in &recipe.sources {
        add(
            n,
            n,
            s,
            recipe
                .raw
                .sources
                .get(n)
                .and_then(|spec| spec.path.as_deref()),
        )?;
    }
    for (name, version) in &recipe.raw.userland.packages {
        let input = format!("package:{name}");
        add(
            &input,
            &input,
            &Source::Debian {
                package: name.clone(),
                version: version.clone(),
                member: None,
            },
            None,
        )?;
    }
    Ok(inputs)
}

fn compute_keys(ctx: &Ctx) -> Result<Keys> {
    let r = &ctx.recipe;
    let k = &r.raw.kernel;
    let mut kb = KeyBuilder::new(KERNEL_STAGE);
    kb.add_str(
        "source",
        &ctx.input("kernel")
            .map(|i| i.sha256.clone())
            .unwrap_or_default(),
    );
    kb.add_str(
        "member",
        match &r.kernel_source {
            Source::Debian { member, .. } => member.as_deref().unwrap_or(""),
            _ => "",
        },
    );
    kb.add_str("base", &k.base);
    let base_file = r.root.join(&k.base);
    if base_file.is_file() {
        kb.add("base-file", &ufs::read(&base_file)?);
    }
    for f in &r.fragments {
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
    for p in &r.patches {
        kb.add("patch", &ufs::read(p)?);
    }
    kb.add_str("localversion", &k.localversion);
    kb.add_str("sde", &r.source_date_epoch().to_string());
    if let Some(s) = r
        .scst
        .as_ref()
        .filter(|s| s.driver_mode == crate::config::recipe::DriverMode::InTree)
    {
        // The in-tree swap changes the kernel source.
        kb.add_str(
            "scst",
            &ctx.input("scst")
                .map(|i| i.sha256.clone())
                .unwrap_or_default(),
        );
        kb.add_str("scst-mode", s.driver_mode.as_str());
        kb.add_str("scst-qla", &s.components.join(" "));
    }
    let kernel = kb.finish();

    let modules = match &r.scst {
        None => String::new(),
        Some(s) => {
            let mut mb = KeyBuilder::new(MODULES_STAGE);
            mb.add_str("kernel", &kernel);
            mb.add_str(
                "scst",
                &ctx.input("scst")
                    .map(|i| i.sha256.clone())
                    .unwrap_or_default(),
            );
            mb.add_str("mode", s.driver_mode.as_str());
            for c in &s.components {
                mb.add_str("component", c);
            }
            for p in &r.patches {
                mb.add("patch", &ufs::read(p)?);
            }
            for name in s.firmware.keys() {
                let input = crate::config::recipe::Scst::firmware_input(name);
                mb.add_str(
                    "firmware",
                    &format!(
                        "{name} {}",
                        ctx.input(&input)
                            .map(|i| i.sha256.clone())
                            .unwrap_or_default()
                    ),
                );
            }
            for w in &s.waived {
                mb.add_str("waive", w);
            }
            mb.add_str("sde", &r.source_date_epoch().to_string());
            mb.finish()
        }
    };

    let mut ub = KeyBuilder::new(USERLAND_STAGE);
    for i in ctx.inputs.iter().filter(|i| i.name.starts_with("package:")) {
        ub.add_str("package", &format!("{} {} {}", i.name, i.origin, i.sha256));
    }
    for keep in &r.raw.userland.keep {
        ub.add_str("keep", keep);
    }
    for (l, t) in &r.raw.userland.links {
        ub.add_str("link", &format!("{l} -> {t}"));
    }
    let userland = ub.finish();

    let mut rb = KeyBuilder::new(ROOTFS_STAGE);
    rb.add_str("kernel", &kernel)
        .add_str("userland", &userland)
        .add_str("modules", &modules);
    for o in &r.overlays {
        rb.add_str(
            "overlay",
            &o.strip_prefix(&r.root).unwrap_or(o).display().to_string(),
        );
        rb.add_tree("overlay-tree", o)?;
    }
    rb.add("node", ctx.node_text.as_bytes());
    for (name, text) in &ctx.node_configs {
        rb.add_str("node-name", name);
        rb.add("node-config", text.as_bytes());
    }
    if let Some(s) = &ctx.scst_conf {
        rb.add_str("scst-conf-path", &s.image_path);
        rb.add("scst-conf", s.text.as_bytes());
    }
    rb.add_str("init", &ctx.init_sha256);
    rb.add_str("recipe", &r.name);
    rb.add_str("sde", &r.source_date_epoch().to_string());
    rb.add_str("zstd", &r.raw.outputs.zstd_level.to_string());
    if r.squashfs_root() {
        rb.add_str("root", "squashfs");
    }
    let rootfs = rb.finish();

    let mut ob = KeyBuilder::new(OUTPUTS_STAGE);
    ob.add_str("rootfs", &rootfs).add_str("cmdline", &k.cmdline);
    if let Some(d) = &r.raw.outputs.disk {
        ob.add_str("disk", &format!("{} {}", d.size, d.boot_tries));
    }
    for i in &ctx.inputs {
        ob.add_str("input", &format!("{} {} {}", i.name, i.origin, i.sha256));
    }
    let outputs = ob.finish();
    Ok(Keys {
        kernel,
        modules,
        userland,
        rootfs,
        outputs,
    })
}

/// Every stage, its key, and whether it will run. Works offline.
pub fn plan(ctx: &Ctx) -> Result<Vec<PlanEntry>> {
    let c = &ctx.cache;
    let k = &ctx.keys;
    let kernel_cached = c.stage_done("kernel", &k.kernel).is_some();
    let modules_cached = ctx.recipe.scst.is_none() || c.stage_done("modules", &k.modules).is_some();
    let userland_cached = c.stage_done("userland", &k.userland).is_some();
    let rootfs_cached = c.stage_done("rootfs", &k.rootfs).is_some();
    let outputs_cached = crate::stages::outputs::up_to_date(&ctx.out, &k.outputs);
    // Fetch only matters for the stages that will run.
    let mut missing = Vec::new();
    for i in &ctx.inputs {
        let needed = if i.name == "kernel" {
            !kernel_cached
        } else if i.name.starts_with("package:") {
            !userland_cached
        } else if i.name == "scst" || i.name.starts_with("firmware:") {
            !modules_cached || (i.name == "scst" && !kernel_cached)
        } else {
            true
        };
        if needed && i.kind != "path" && !c.blob_path(&i.sha256).is_file() {
            missing.push(i.name.clone());
        }
    }
    let fetch_key = {
        let mut kb = KeyBuilder::new("fetch");
        for i in &ctx.inputs {
            kb.add_str("input", &i.sha256);
        }
        kb.finish()
    };
    let why = |cached: bool, reason: &str| {
        if cached {
            "cache entry present".to_string()
        } else {
            reason.to_string()
        }
    };
    let mut entries = vec![
        PlanEntry {
            stage: "fetch".into(),
            key: fetch_key,
            cached: missing.is_empty(),
            reason: if missing.is_empty() {
                "every needed input is in the cache".into()
            } else {
                format!("not in the cache: {}", missing.join(", "))
            },
        },
        PlanEntry {
            stage: "kernel".into(),
            key: k.kernel.clone(),
            cached: kernel_cached,
            reason: why(
                kernel_cached,
                "no cache entry for this kernel source, config and patch set",
            ),
        },
        PlanEntry {
            stage: "userland".into(),
            key: k.userland.clone(),
            cached: userland_cached,
            reason: why(userland_cached, "no cache entry for this package set"),
        },
    ];
    if ctx.recipe.scst.is_some() {
        let reason = if !kernel_cached {
            "the kernel will be rebuilt"
        } else {
            "no cache entry for this SCST source, driver mode, component list and firmware set"
        };
        entries.insert(
            2,
            PlanEntry {
                stage: "modules".into(),
                key: k.modules.clone(),
                cached: modules_cached,
                reason: why(modules_cached, reason),
            },
        );
    }
    entries.extend([
        PlanEntry {
            stage: "rootfs".into(),
            key: k.rootfs.clone(),
            cached: rootfs_cached,
            reason: why(
                rootfs_cached,
                if !kernel_cached {
                    "the kernel will be rebuilt"
                } else if !modules_cached {
                    "the SCST modules will be rebuilt"
                } else if !userland_cached {
                    "the userland will be rebuilt"
                } else {
                    "node config, overlays or init changed"
                },
            ),
        },
        PlanEntry {
            stage: "outputs".into(),
            key: k.outputs.clone(),
            cached: outputs_cached,
            reason: if outputs_cached {
                format!("{} is up to date", ctx.out.display())
            } else {
                format!("{} is missing or from another build", ctx.out.display())
            },
        },
    ]);
    Ok(entries)
}

/// What `build` did, for the caller to print.
pub struct BuildReport {
    pub out: PathBuf,
    pub ran: Vec<String>,
    pub skipped: Vec<String>,
}

/// Builds the image: runs each stage whose key is not in the cache.
pub fn build(ctx: &Ctx) -> Result<BuildReport> {
    // Modes of files the stages create (modules_install, dpkg-deb, …) end up in the
    // image: they must not depend on the caller's umask (`build --verify` checks this).
    crate::sys::set_umask(0o022);
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    let staging = staging_dir(&ctx.out);
    if crate::stages::outputs::up_to_date(&ctx.out, &ctx.keys.outputs) {
        progress::step(&format!(
            "{} is up to date (outputs key {})",
            ctx.out.display(),
            short(&ctx.keys.outputs)
        ));
        for s in ["kernel", "modules", "userland", "rootfs", "outputs"] {
            if s != "modules" || ctx.recipe.scst.is_some() {
                skipped.push(s.to_string());
            }
        }
        return Ok(BuildReport {
            out: ctx.out.clone(),
            ran,
            skipped,
        });
    }
    ufs::remove_dir_all(&staging)?;
    let logs = staging.join("logs");
    ufs::create_dir_all(&logs)?;

    let kernel_dir = run_stage(
        ctx,
        "kernel",
        &ctx.keys.kernel,
        &logs,
        &mut ran,
        &mut skipped,
        crate::stages::kernel::build,
    )?;
    let modules_dir = match &ctx.recipe.scst {
        Some(_) => Some(run_stage(
            ctx,
            "modules",
            &ctx.keys.modules,
            &logs,
            &mut ran,
            &mut skipped,
            |ctx, dir, log| crate::stages::modules::build(ctx, &kernel_dir, dir, log),
        )?),
        None => None,
    };
    let userland_dir = run_stage(
        ctx,
        "userland",
        &ctx.keys.userland,
        &logs,
        &mut ran,
        &mut skipped,
        crate::stages::userland::build,
    )?;
    let rootfs_dir = run_stage(
        ctx,
        "rootfs",
        &ctx.keys.rootfs,
        &logs,
        &mut ran,
        &mut skipped,
        |ctx, dir, log| {
            crate::stages::rootfs::build(
                ctx,
                &kernel_dir,
                modules_dir.as_deref(),
                &userland_dir,
                dir,
                log,
            )
        },
    )?;
    progress::step("outputs: writing vmlinuz, initramfs, boot.ipxe, manifest");
    let log_path = logs.join("outputs.log");
    let log = Log::open(&log_path)?;
    crate::stages::outputs::write(
        ctx,
        &kernel_dir,
        modules_dir.as_deref(),
        &userland_dir,
        &rootfs_dir,
        &staging,
        &log,
    )
    .with_context(|| StageFailed {
        stage: "outputs".to_string(),
        log: log_path.clone(),
    })?;
    ran.push("outputs".into());
    swap_into_place(&staging, &ctx.out)?;
    Ok(BuildReport {
        out: ctx.out.clone(),
        ran,
        skipped,
    })
}

/// The context of a stage's error: which stage failed and where its log is (callers
/// such as `sanforge matrix` find it in the error chain).
#[derive(Debug, Clone)]
pub struct StageFailed {
    pub stage: String,
    pub log: PathBuf,
}

impl std::fmt::Display for StageFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stage {} failed (log: {})",
            self.stage,
            self.log.display()
        )
    }
}

/// The stages `build` runs for this recipe, in order.
pub fn stage_names(ctx: &Ctx) -> Vec<&'static str> {
    let mut v = vec!["kernel"];
    if ctx.recipe.scst.is_some() {
        v.push("modules");
    }
    v.extend(["userland", "rootfs", "outputs"]);
    v
}

type StageFn<'a> = dyn Fn(&Ctx, &Path, &Log) -> Result<()> + 'a;

fn run_stage<F>(
    ctx: &Ctx,
    stage: &str,
    key: &str,
    logs: &Path,
    ran: &mut Vec<String>,
    skipped: &mut Vec<String>,
    f: F,
) -> Result<PathBuf>
where
    F: Fn(&Ctx, &Path, &Log) -> Result<()>,
{
    if let Some(dir) = ctx.cache.stage_done(stage, key) {
        progress::step(&format!("{stage}: cached ({})", short(key)));
        skipped.push(stage.to_string());
        return Ok(dir);
    }
    let log_path = logs.join(format!("{stage}.log"));
    let log = Log::open(&log_path)?;
    progress::step(&format!(
        "{stage}: building ({}); log: {}",
        short(key),
        log_path.display()
    ));
    let started = std::time::Instant::now();
    let f: &StageFn = &f;
    // The kernel tree must stay where it was built (out-of-tree modules use it).
    let result = if stage == "kernel" {
        ctx.cache
            .build_stage_in_place(stage, key, |dir| f(ctx, dir, &log))
    } else {
        ctx.cache.build_stage(stage, key, |dir| f(ctx, dir, &log))
    };
    let dir = result.with_context(|| StageFailed {
        stage: stage.to_string(),
        log: log_path.clone(),
    })?;
    progress::step(&format!(
        "{stage}: done in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    ran.push(stage.to_string());
    Ok(dir)
}

pub fn short(key: &str) -> &str {
    &key[..key.len().min(12)]
}

/// `out/NAME` → `out/NAME.partial`: where a build assembles its outputs and logs.
pub fn staging_dir(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    ufs::parent_dir(out).join(name)
}

/// Replaces `out` by `staging` so that readers see the old or the new outputs, never
/// a mix: old → `.old`, staging → out, remove `.old`.
fn swap_into_place(staging: &Path, out: &Path) -> Result<()> {
    let mut old_name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    old_name.push(".old");
    let old = ufs::parent_dir(out).join(old_name);
    ufs::remove_dir_all(&old)?;
    if out.exists() {
        ufs::rename(out, &old)?;
    }
    ufs::rename(staging, out)?;
    ufs::remove_dir_all(&old)?;
    Ok(())
}

/// sha256 of a string (used for config hashes in the manifest).
pub fn text_sha(s: &str) -> String {
    sha256_bytes(s.as_bytes())
}

/// The node configs of `[node] configs`, validated, as (NAME, text) sorted by name.
/// A file is named by its stem, or by its directory when it is `node.toml` (the
/// layout `sanforge cluster render` writes); a directory holds `NAME/node.toml` or
/// `NAME.toml` entries.
pub fn node_configs(root: &Path, entries: &[PathBuf]) -> Result<Vec<(String, String)>> {
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let name_of = |p: &Path| -> String {
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        match (p.file_name().and_then(|n| n.to_str()), p.parent()) {
            (Some("node.toml"), Some(d)) => d
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            _ => stem.unwrap_or_default(),
        }
    };
    for e in entries {
        let p = root.join(e);
        if p.is_dir() {
            let mut found = Vec::new();
            for d in
                std::fs::read_dir(&p).with_context(|| format!("cannot list {}", p.display()))?
            {
                let d = d
                    .with_context(|| format!("cannot list {}", p.display()))?
                    .path();
                if d.is_dir() && d.join("node.toml").is_file() {
                    found.push(d.join("node.toml"));
                } else if d.is_file() && d.extension().is_some_and(|x| x == "toml") {
                    found.push(d);
                }
            }
            if found.is_empty() {
                bail!(
                    "node configs directory {} holds no NAME/node.toml or NAME.toml",
                    p.display()
                );
            }
            files.extend(found.into_iter().map(|f| (name_of(&f), f)));
        } else if p.is_file() {
            files.push((name_of(&p), p));
        } else {
            bail!("node config `{}` not found", e.display());
        }
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, f) in files {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            || name.starts_with('.')
        {
            bail!(
                "node config {}: cannot name a node `{name}` (letters, digits, `-`, `_`, `.`)",
                f.display()
            );
        }
        if out.iter().any(|(n, _)| *n == name) {
            bail!(
                "node config {}: a node named `{name}` is listed twice",
                f.display()
            );
        }
        let text = ufs::read_to_string(&f)?;
        NodeConfig::parse(&f, &text)?;
        out.push((name, text));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn node_configs_from_render_layout_files_and_errors() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        put(r, "cluster/alpha/node.toml", "hostname = \"alpha\"\n");
        put(r, "cluster/beta/node.toml", "hostname = \"beta\"\n");
        put(r, "cluster/beta/corosync.conf", "totem {}\n");
        put(r, "extra/gamma.toml", "hostname = \"gamma\"\n");
        let got = node_configs(r, &["extra/gamma.toml".into(), "cluster".into()]).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["alpha", "beta", "gamma"]);
        assert_eq!(got[1].1, "hostname = \"beta\"\n");
        assert!(node_configs(r, &[]).unwrap().is_empty());

        let e = node_configs(r, &["cluster".into(), "cluster/alpha/node.toml".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`alpha` is listed twice"), "{e}");
        let e = node_configs(r, &["nope".into()]).unwrap_err().to_string();
        assert_eq!(e, "node config `nope` not found");
        put(
            r,
            "bad/delta.toml",
            "hostname = \"delta\"\nfrobnicate = 1\n",
        );
        let e = format!("{:#}", node_configs(r, &["bad".into()]).unwrap_err());
        assert!(e.contains("frobnicate"), "{e}");
        std::fs::create_dir_all(r.join("empty")).unwrap();
        let e = node_configs(r, &["empty".into()]).unwrap_err().to_string();
        assert!(e.contains("holds no NAME/node.toml"), "{e}");
    }
}
