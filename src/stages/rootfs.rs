//! The rootfs stage: the whole root file system of the node as one deterministic,
//! zstd-compressed newc cpio (the initramfs the kernel unpacks and runs from RAM).
//!
//! Reads the userland tree, the kernel modules, the recipe's overlays (rendering
//! `*.tera` templates), the init binary, the node config and the `scst.conf` it names
//! (validated here, baked where the init looks for it). Writes
//! `initramfs.cpio.zst` and `rootfs.list` into its cache entry; with `[outputs] root =
//! "squashfs"` also the squashfs root, its dm-verity tree and the init-only initramfs.

use crate::contract::{INIT_CPIO, ROOT_JSON, ROOT_SQUASHFS, ROOT_VERITY};
use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage};
use crate::image::cpio::{Archive, Entry, EntryKind, ModeRule};
use crate::util::cmd::Log;
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress::Task;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Directories every image has (mount points and the init's own).
const DIRS: &[&str] = &[
    "dev",
    "proc",
    "sys",
    "run",
    "tmp",
    "etc",
    "etc/sanforge",
    "root",
    "var",
    "lib/modules",
    "lib/firmware",
    // LIO keeps persistent-reservation state (APTPL) here and complains at load without it.
    "etc/target",
];

/// Bump when the stage's code changes what it produces, to invalidate old entries.
const VERSION: &str = "rootfs-v2";

/// The rootfs stage.
pub struct Rootfs;

/// The rootfs stage's cache entry.
#[derive(Debug, Clone)]
pub struct RootfsOut {
    pub dir: PathBuf,
}

impl RootfsOut {
    /// The whole root as the initramfs.
    pub fn initramfs(&self) -> PathBuf {
        self.dir.join("initramfs.cpio.zst")
    }
    /// One line per entry of the root.
    pub fn listing(&self) -> PathBuf {
        self.dir.join("rootfs.list")
    }
}

impl Stage<super::Built> for Rootfs {
    fn name(&self) -> &'static str {
        "rootfs"
    }

    fn shared(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    /// The `[firmware] files` of a recipe without SCST.
    fn inputs(&self, ctx: &Ctx) -> Vec<String> {
        ctx.recipe
            .firmware
            .files
            .keys()
            .map(|n| crate::config::recipe::Scst::firmware_input(n))
            .collect()
    }

    fn key(&self, ctx: &Ctx, keys: &Keys) -> Result<String> {
        let r = &ctx.recipe;
        let mut rb = KeyBuilder::new(VERSION);
        rb.add_str("kernel", keys.get("kernel"))
            .add_str("userland", keys.get("userland"))
            .add_str("modules", keys.get("modules"));
        for o in &r.overlays {
            rb.add_str(
                "overlay",
                &o.strip_prefix(&r.root).unwrap_or(o).display().to_string(),
            );
            // Modes as git records them: not the umask of whoever cloned the project.
            rb.add_checkout_tree("overlay-tree", o)?;
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
        rb.add_str("zstd", &r.outputs.zstd_level.to_string());
        for (p, m) in &r.modes {
            rb.add_str("mode", &format!("{p} {m:o}"));
        }
        if r.squashfs_root() {
            rb.add_str("root", "squashfs");
        }
        // The firmware closure of a recipe without SCST (the modules stage has its own).
        for name in r.firmware.files.keys() {
            let input = crate::config::recipe::Scst::firmware_input(name);
            rb.add_str("firmware", &format!("{name} {}", ctx.input_sha(&input)));
        }
        if r.firmware.declared {
            rb.add_str("firmware-closure", "checked");
        }
        for w in &r.firmware.waived {
            rb.add_str("waive-firmware", w);
        }
        Ok(rb.finish())
    }

    fn reason(&self, _ctx: &Ctx, earlier: &[PlanEntry]) -> String {
        let runs = |s: &str| earlier.iter().any(|e| e.stage == s && !e.cached);
        if runs("kernel") {
            "the kernel will be rebuilt"
        } else if runs("modules") {
            "the SCST modules will be rebuilt"
        } else if runs("userland") {
            "the userland will be rebuilt"
        } else {
            "node config, overlays or init changed"
        }
        .to_string()
    }

    fn execute(&self, ctx: &Ctx, built: &mut super::Built, runner: &mut Runner) -> Result<()> {
        let key = ctx.keys.get(self.name());
        let b = &*built;
        let dir = runner.cached_entry(ctx, self.name(), key, false, |dir, log| {
            build(ctx, b, dir, log)
        })?;
        built.rootfs = Some(RootfsOut { dir });
        Ok(())
    }
}

/// The firmware list of a recipe without SCST, in the rootfs stage's directory (what
/// the manifest reports).
pub const FIRMWARE_JSON: &str = "firmware.json";

/// Every firmware file the kernel's modules (`lib_modules`) request: provided by the
/// recipe's `[firmware] files` (installed under `root/lib/firmware`) or waived by its
/// `[firmware] waive`; a missing one fails, naming the module and the file. The list
/// goes to `record`.
fn firmware_closure(
    ctx: &Ctx,
    lib_modules: &Path,
    root: &Path,
    record: &Path,
    log: &Log,
) -> Result<()> {
    use crate::stages::firmware;
    let mut named = Vec::new();
    for ko in firmware::find_modules(lib_modules)? {
        let info = firmware::modinfo(&ko)?;
        named.push((firmware::module_name(&ko, &info), info));
    }
    let required = firmware::required(&named);
    let fw = firmware::install(ctx, &ctx.recipe.firmware, &required, root, log)?;
    ufs::write(record, &serde_json::to_vec_pretty(&fw)?)?;
    Ok(())
}

/// The firmware list the rootfs stage recorded (`None`: an SCST recipe's, or an image
/// without modules).
pub fn firmware_record(rootfs_dir: &Path) -> Result<Option<serde_json::Value>> {
    let p = rootfs_dir.join(FIRMWARE_JSON);
    if !p.is_file() {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&ufs::read_to_string(&p)?)?))
}

fn build(ctx: &Ctx, built: &super::Built, dir: &Path, log: &Log) -> Result<()> {
    let kernel_out = built.kernel()?;
    let userland = built.userland()?.root();
    let task = Task::start("rootfs: assembling the initramfs", None, "files");
    let mut ar = Archive::new();
    add_skeleton(&mut ar);
    ar.add_tree(&userland, "")?;
    let modules = kernel_out.lib_modules();
    if modules.is_dir() {
        ar.add_tree(&modules, "lib/modules")?;
        // Without SCST, the firmware closure of the kernel's modules is checked here
        // when the recipe has a [firmware] table (with SCST, the modules stage checks
        // it over the kernel's modules and SCST's).
        if built.modules.is_none() && !ctx.recipe.firmware.declared {
            log.line("no [firmware] table in the recipe: the firmware its modules request is not checked");
        } else if built.modules.is_none() {
            let fw_root = dir.join("firmware-root");
            firmware_closure(ctx, &modules, &fw_root, &dir.join(FIRMWARE_JSON), log)?;
            let lib_firmware = fw_root.join("lib/firmware");
            if lib_firmware.is_dir() {
                ar.add_tree(&lib_firmware, "lib/firmware")?;
            }
        }
    }
    // SCST's modules, firmware and the module index over both (replaces the kernel's).
    if let Some(m) = &built.modules {
        crate::stages::modules::check_node(ctx, &m.record()?)?;
        ar.add_tree(&m.root(), "")?;
    }
    check_node_modules(ctx, built)?;
    check_node_storage(ctx, built)?;
    let rendered =
        tempfile::tempdir().context("cannot create a temporary directory for overlays")?;
    for (i, overlay) in ctx.recipe.overlays.iter().enumerate() {
        let out = rendered.path().join(i.to_string());
        render_overlay(ctx, kernel_out, overlay, &out)?;
        ar.add_tree_with_modes(&out, "", ModeRule::Checkout)?;
        log.line(&format!("overlay {} added", overlay.display()));
    }
    check_node_programs(ctx, &ar)?;
    // Placed by the builder, never by overlays.
    ar.add(Entry {
        path: "init".into(),
        kind: EntryKind::File(ctx.init_bin.clone()),
        mode: 0o755,
    });
    ar.add(Entry {
        path: "etc/sanforge/node.toml".into(),
        kind: EntryKind::Data(ctx.node_text.clone().into_bytes()),
        mode: 0o644,
    });
    // One image, several nodes: the init picks one by sanforge.node= or by MAC.
    for (name, text) in &ctx.node_configs {
        ar.add(Entry {
            path: format!("etc/sanforge/nodes/{name}.toml"),
            kind: EntryKind::Data(text.clone().into_bytes()),
            mode: 0o644,
        });
    }
    if let Some(s) = &ctx.scst_conf {
        ar.add(Entry {
            path: s.image_path.clone(),
            kind: EntryKind::Data(s.text.clone().into_bytes()),
            mode: 0o644,
        });
    }
    let release = kernel_out.release()?;
    let os_release = format!(
        "NAME=sanforge\nID=sanforge\nPRETTY_NAME=\"sanforge {} ({})\"\nVARIANT_ID={}\nIMAGE_ID={}\nIMAGE_VERSION={}\n",
        ctx.recipe.name,
        release,
        ctx.recipe.name,
        ctx.recipe.name,
        crate::engine::short(ctx.keys.get("rootfs"))
    );
    ar.add(Entry {
        path: "etc/os-release".into(),
        kind: EntryKind::Data(os_release.into_bytes()),
        mode: 0o644,
    });
    ar.add(Entry {
        path: "etc/hostname".into(),
        kind: EntryKind::Data(format!("{}\n", ctx.node.hostname).into_bytes()),
        mode: 0o644,
    });
    // The recipe's explicit modes, over everything above.
    for (p, m) in &ctx.recipe.modes {
        if !ar.set_mode(p, *m) {
            anyhow::bail!(
                "{}: modes: /{p} is not in the image (expected a path an overlay, a package or the builder puts there)",
                ctx.recipe.file.display()
            );
        }
    }
    let listing = ar.list();
    ufs::write(&dir.join("rootfs.list"), listing.join("\n") + "\n")?;
    let mtime = u32::try_from(ctx.source_date_epoch())
        .context("source-date-epoch does not fit the cpio format (32 bits)")?;
    drop(task);
    let task = Task::start(
        &format!(
            "rootfs: compressing (zstd -{})",
            ctx.recipe.outputs.zstd_level
        ),
        None,
        "bytes",
    );
    ar.write_zstd(
        &dir.join("initramfs.cpio.zst"),
        mtime,
        ctx.recipe.outputs.zstd_level,
    )?;
    let size = std::fs::metadata(dir.join("initramfs.cpio.zst"))
        .map(|m| m.len())
        .unwrap_or(0);
    task.finish(&format!(
        "{} entries, {:.1} MiB",
        listing.len(),
        size as f64 / 1048576.0
    ));
    if ctx.recipe.squashfs_root() {
        squashfs_root(ctx, &ar, dir, mtime, log)?;
    }
    Ok(())
}

/// The directories and device nodes every image has, before the userland.
fn add_skeleton(ar: &mut Archive) {
    for d in DIRS {
        ar.add(Entry {
            path: d.to_string(),
            kind: EntryKind::Dir,
            mode: 0o755,
        });
    }
    ar.add(Entry {
        path: "tmp".into(),
        kind: EntryKind::Dir,
        mode: 0o1777,
    });
    ar.add(Entry {
        path: "root".into(),
        kind: EntryKind::Dir,
        mode: 0o700,
    });
    ar.add(Entry {
        path: "dev/console".into(),
        kind: EntryKind::CharDev { major: 5, minor: 1 },
        mode: 0o600,
    });
    ar.add(Entry {
        path: "dev/null".into(),
        kind: EntryKind::CharDev { major: 1, minor: 3 },
        mode: 0o666,
    });
}

/// With a squashfs root: `root.squashfs` (the same entries as the initramfs),
/// `root.verity` (its hash tree), `root.json` (root hash, salt, block counts) and
/// `init.cpio.zst`, the small initramfs of the disk slots (just the init and the
/// mount points it needs before the root is mounted).
fn squashfs_root(ctx: &Ctx, ar: &Archive, dir: &Path, mtime: u32, log: &Log) -> Result<()> {
    let task = Task::start("rootfs: squashfs root + dm-verity tree", None, "bytes");
    let work = tempfile::tempdir().context("cannot create a temporary directory for squashfs")?;
    let sq = dir.join(ROOT_SQUASHFS);
    crate::image::squashfs::write(
        ar,
        &sq,
        ctx.source_date_epoch(),
        ctx.recipe.outputs.zstd_level,
        work.path(),
        log,
    )?;
    let salt = crate::contract::verity::salt_for(&ctx.recipe.name);
    let v = crate::contract::verity::build(&sq, &dir.join(ROOT_VERITY), &salt)?;
    ufs::write(
        &dir.join(ROOT_JSON),
        serde_json::to_string_pretty(&v)? + "\n",
    )?;
    let mut small = Archive::new();
    for d in [
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        crate::contract::NEW_ROOT,
    ] {
        small.add(Entry::dir(d, 0o755));
    }
    small.add(Entry::char_dev("dev/console", 5, 1, 0o600));
    small.add(Entry::char_dev("dev/null", 1, 3, 0o666));
    small.add(Entry::file("init", ctx.init_bin.clone(), 0o755));
    small.write_zstd(&dir.join(INIT_CPIO), mtime, ctx.recipe.outputs.zstd_level)?;
    let mib =
        |f: &str| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
    task.finish(&format!(
        "root.squashfs {:.1} MiB, root hash {}, init.cpio.zst {:.1} MiB",
        mib(ROOT_SQUASHFS),
        &v.root_hash[..16],
        mib(INIT_CPIO)
    ));
    Ok(())
}

/// Copies an overlay directory to `out`, rendering `*.tera` files (which lose the
/// suffix) with the recipe and node variables.
pub fn render_overlay(
    ctx: &Ctx,
    kernel: &super::KernelOut,
    overlay: &Path,
    out: &Path,
) -> Result<()> {
    ufs::copy_tree(overlay, out)?;
    let mut vars = tera::Context::new();
    vars.insert(
        "recipe",
        &serde_json::json!({ "name": ctx.recipe.name, "description": ctx.recipe.description }),
    );
    vars.insert("node", &*ctx.node);
    vars.insert(
        "kernel",
        &serde_json::json!({ "release": kernel.release().unwrap_or_default() }),
    );
    vars.insert("source_date_epoch", &ctx.source_date_epoch());
    render_templates(out, overlay, &vars)
}

/// Renders every `*.tera` file under `dir` in place. `origin` is the overlay the files
/// came from, for error messages.
pub fn render_templates(dir: &Path, origin: &Path, vars: &tera::Context) -> Result<()> {
    // A directory is listed before its templates are rendered: the rendered files
    // are not walked again.
    for e in ufs::walk(dir) {
        let e = e?;
        if e.is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".tera") else {
            continue;
        };
        let p = e.path();
        let shown = origin.join(e.rel());
        // A template is read on the host: a symlink could bake any host file into the
        // image (the overlay copy keeps links as links, so this one is still a link).
        if e.is_symlink() {
            anyhow::bail!(
                "template {} is a symlink: expected a regular file inside the overlay",
                shown.display()
            );
        }
        let text = ufs::read_to_string(p)?;
        let rendered =
            tera::Tera::one_off(&text, vars, false).map_err(|err| template_error(&shown, &err))?;
        let dst = p.with_file_name(stem);
        let mode = std::fs::metadata(p)
            .with_context(|| format!("cannot stat {}", p.display()))?
            .permissions();
        ufs::write(&dst, rendered)?;
        std::fs::set_permissions(&dst, mode)
            .with_context(|| format!("cannot set mode of {}", dst.display()))?;
        std::fs::remove_file(p).with_context(|| format!("cannot remove {}", p.display()))?;
    }
    Ok(())
}

/// A tera error with the template's path; tera's own message carries the line
/// (`--> 3:7`) for syntax errors, the chain names the missing variable otherwise.
fn template_error(file: &Path, err: &tera::Error) -> anyhow::Error {
    use std::error::Error;
    let mut msg = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    let line = msg
        .split("--> ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.trim().parse::<usize>().ok());
    match line {
        Some(l) => anyhow::anyhow!(
            "template {}:{l}: {}",
            file.display(),
            msg.replace("__tera_one_off", &file.display().to_string())
        ),
        None => anyhow::anyhow!(
            "template {}: {}",
            file.display(),
            msg.replace("__tera_one_off", &file.display().to_string())
        ),
    }
}

#[path = "rootfs_checks.rs"]
mod checks;
pub use checks::{
    check_node_modules, check_node_programs, check_node_storage, node_programs_present,
    scst_uses_dlm,
};

#[cfg(test)]
use checks::{module_hint, program_problem};

#[cfg(test)]
#[path = "rootfs_tests.rs"]
mod tests;
