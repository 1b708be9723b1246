//! The outputs stage: what lands in `out/<recipe>/` — `vmlinuz`,
//! `initramfs.cpio.zst`, `boot.ipxe`, `manifest.json`, `sbom.cdx.json`, `disk.img` when
//! the recipe asks for one, and `SHA256SUMS` (logs go to `logs/`, outside the sums).
//! With `[outputs] root = "squashfs"` also `root.squashfs`, `root.verity` and
//! `init.cpio.zst` (the disk slots' init-only initramfs); `initramfs.cpio.zst` stays
//! the whole root, so the PXE bundle of such a recipe boots from RAM as before.
//!
//! Reads the kernel, userland and rootfs cache entries; writes the staging directory
//! that the pipeline swaps into place.

use crate::contract::{DISK_IMG, INIT_CPIO, ROOT_JSON, ROOT_SQUASHFS, ROOT_VERITY};
use crate::engine::runner::{PlanEntry, Runner};
use crate::engine::{Ctx, Keys, Stage};
use crate::util::cmd::Log;
use crate::util::fs as ufs;
use crate::util::hash::sha256_file;
use crate::util::hash::KeyBuilder;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::Path;

/// The files every PXE bundle has, in SHA256SUMS order.
pub const FILES: &[&str] = &[
    "boot.ipxe",
    "initramfs.cpio.zst",
    "manifest.json",
    "sbom.cdx.json",
    "vmlinuz",
];

/// The extra files of a squashfs-root build.
pub const ROOT_FILES: &[&str] = &[INIT_CPIO, ROOT_SQUASHFS, ROOT_VERITY];

/// The files of this build's outputs, in SHA256SUMS order.
pub fn files(disk: bool, squashfs: bool) -> Vec<&'static str> {
    let mut v = FILES.to_vec();
    if disk {
        v.push(DISK_IMG);
    }
    if squashfs {
        v.extend(ROOT_FILES);
    }
    v.sort_unstable();
    v
}

/// Bump when the stage's code changes what it produces, to invalidate old entries.
const VERSION: &str = "outputs-v1";

/// The outputs stage: the output directory itself (assembled in `OUT.partial/`,
/// swapped into place by the runner at the end of the build).
pub struct Outputs;

impl Stage<super::Built> for Outputs {
    fn name(&self) -> &'static str {
        "outputs"
    }

    /// Sources no other stage reads (systemd-boot for the disk image, …).
    fn inputs(&self, ctx: &Ctx) -> Vec<String> {
        ctx.inputs
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| {
                *n != "kernel"
                    && *n != "scst"
                    && !n.starts_with("firmware:")
                    && !n.starts_with("package:")
            })
            .map(str::to_string)
            .collect()
    }

    fn key(&self, ctx: &Ctx, keys: &Keys) -> Result<String> {
        let r = &ctx.recipe;
        let mut ob = KeyBuilder::new(VERSION);
        ob.add_str("rootfs", keys.get("rootfs"))
            .add_str("cmdline", &r.kernel().cmdline);
        if let Some(d) = &r.outputs.disk_spec {
            ob.add_str("disk", &format!("{} {}", d.size, d.boot_tries));
            if let Some(st) = &d.state {
                ob.add_str("disk-state", st);
            }
        }
        for i in &ctx.inputs {
            ob.add_str("input", &format!("{} {} {}", i.name, i.origin, i.pin()));
        }
        Ok(ob.finish())
    }

    fn cached(&self, ctx: &Ctx, key: &str) -> bool {
        up_to_date(&ctx.out, key)
    }

    fn cached_reason(&self, ctx: &Ctx) -> String {
        format!("{} is up to date", ctx.out.display())
    }

    fn reason(&self, ctx: &Ctx, _earlier: &[PlanEntry]) -> String {
        format!("{} is missing or from another build", ctx.out.display())
    }

    fn execute(&self, ctx: &Ctx, built: &mut super::Built, runner: &mut Runner) -> Result<()> {
        crate::util::progress::step("outputs: writing vmlinuz, initramfs, boot.ipxe, manifest");
        let staging = runner.staging().to_path_buf();
        runner.step(self.name(), |log, _| {
            write(ctx, built, &staging, log)?;
            Ok(true)
        })
    }
}

fn write(ctx: &Ctx, built: &super::Built, out: &Path, log: &Log) -> Result<()> {
    let kernel_out = built.kernel()?;
    let kernel = kernel_out.dir.as_path();
    let rootfs_out = built.rootfs()?;
    let rootfs = rootfs_out.dir.as_path();
    ufs::copy(&kernel.join("vmlinuz"), &out.join("vmlinuz"))?;
    ufs::copy(
        &rootfs.join("initramfs.cpio.zst"),
        &out.join("initramfs.cpio.zst"),
    )?;
    ufs::write(
        &out.join("boot.ipxe"),
        boot_ipxe(&ctx.recipe.kernel().cmdline),
    )?;
    let squashfs = ctx.recipe.squashfs_root();
    if squashfs {
        for f in ROOT_FILES {
            ufs::copy(&rootfs.join(f), &out.join(f))?;
        }
    }
    let disk = ctx.recipe.disk();
    if let Some(spec) = disk {
        write_disk(ctx, spec, rootfs, out, log)?;
    }
    let manifest = manifest(ctx, built, out)?;
    ufs::write(
        &out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    let sbom = crate::image::sbom::sbom_from_manifest(&manifest);
    ufs::write(
        &out.join(crate::image::sbom::FILE),
        serde_json::to_string_pretty(&sbom)? + "\n",
    )?;
    let mut sums = String::new();
    for f in files(disk.is_some(), squashfs) {
        sums.push_str(&format!("{}  {f}\n", sha256_file(&out.join(f))?));
    }
    ufs::write(&out.join("SHA256SUMS"), &sums)?;
    log.line(&sums);
    Ok(())
}

fn write_disk(
    ctx: &Ctx,
    spec: crate::config::recipe::DiskSpec,
    rootfs: &Path,
    out: &Path,
    log: &Log,
) -> Result<()> {
    use crate::config::recipe::SYSTEMD_BOOT_SOURCE;
    let source = ctx
        .recipe
        .sources
        .get(SYSTEMD_BOOT_SOURCE)
        .with_context(|| {
            format!(
                "the disk output needs the source `{SYSTEMD_BOOT_SOURCE}` (systemd-bootx64.efi)"
            )
        })?;
    let boot = crate::engine::fetch::fetch_source(
        &ctx.cache,
        SYSTEMD_BOOT_SOURCE,
        source,
        ctx.lock.as_ref(),
        log,
    )?;
    let work = ctx.cache.temp_dir()?;
    let root = if ctx.recipe.squashfs_root() {
        Some(crate::image::disk::RootInput {
            squashfs: out.join(ROOT_SQUASHFS),
            verity: out.join(ROOT_VERITY),
            info: root_info(rootfs)?,
        })
    } else {
        None
    };
    let initramfs = if root.is_some() {
        out.join(INIT_CPIO)
    } else {
        out.join("initramfs.cpio.zst")
    };
    let input = crate::image::disk::DiskInput {
        recipe: ctx.recipe.name.clone(),
        cmdline: ctx.recipe.kernel().cmdline.clone(),
        source_date_epoch: ctx.source_date_epoch(),
        vmlinuz: out.join("vmlinuz"),
        initramfs,
        bootloader: boot.path,
        spec,
        root,
    };
    crate::image::disk::build(&input, &out.join(DISK_IMG), work.path(), log)
        .context("cannot write the disk image")
}

/// The root hash, salt and block counts the rootfs stage recorded.
fn root_info(rootfs: &Path) -> Result<crate::contract::verity::Verity> {
    let p = rootfs.join(ROOT_JSON);
    let v: serde_json::Value = serde_json::from_str(&ufs::read_to_string(&p)?)
        .with_context(|| format!("cannot parse {}", p.display()))?;
    let s = |k: &str| v[k].as_str().map(str::to_string);
    let n = |k: &str| v[k].as_u64();
    match (
        s("root_hash"),
        s("salt"),
        n("data_blocks"),
        n("hash_blocks"),
    ) {
        (Some(root_hash), Some(salt), Some(data_blocks), Some(hash_blocks)) => {
            Ok(crate::contract::verity::Verity {
                root_hash,
                salt,
                data_blocks,
                hash_blocks,
            })
        }
        _ => anyhow::bail!(
            "{}: expected root_hash, salt, data_blocks and hash_blocks",
            p.display()
        ),
    }
}

/// An iPXE script that boots the bundle from wherever it was fetched (relative URLs).
pub fn boot_ipxe(cmdline: &str) -> String {
    format!("#!ipxe\n# sanforge PXE bundle: serve this directory over HTTP or TFTP and chain boot.ipxe\nkernel vmlinuz initrd=initramfs.cpio.zst {cmdline}\ninitrd initramfs.cpio.zst\nboot\n")
}

fn manifest(ctx: &Ctx, built: &super::Built, out: &Path) -> Result<serde_json::Value> {
    let r = &ctx.recipe;
    let kernel = built.kernel()?;
    let rootfs = built.rootfs()?.dir.as_path();
    let release = kernel.release()?;
    // With SCST, the modules stage's index covers the kernel's modules and its own.
    let moddir = match &built.modules {
        Some(m) => m.root().join("lib/modules").join(&release),
        None => kernel.lib_modules().join(&release),
    };
    let scst = built.modules.as_ref().map(|m| m.record()).transpose()?;
    let mut modules = Vec::new();
    if moddir.join("modules.dep").is_file() {
        for l in ufs::read_to_string(&moddir.join("modules.dep"))?.lines() {
            if let Some((m, _)) = l.split_once(':') {
                modules.push(m.to_string());
            }
        }
    }
    modules.sort();
    // The packages whose files are in the image (not every package unpacked to find
    // them): the manifest's and the SBOM's package list.
    let in_image: std::collections::BTreeSet<String> = built
        .userland()?
        .explain()?
        .into_iter()
        .filter(|f| f.kept)
        .map(|f| f.package)
        .collect();
    let packages: Vec<_> = ctx
        .inputs
        .iter()
        .filter_map(|i| {
            let name = i.name.strip_prefix("package:")?;
            if !in_image.contains(name) {
                return None;
            }
            let version = i.origin.split_once('=').map(|(_, v)| v).unwrap_or("");
            Some(json!({ "name": name, "version": version, "sha256": i.sha256 }))
        })
        .collect();
    let mut outputs = Vec::new();
    // The manifest and the SBOM (derived from the manifest) cannot list themselves.
    for f in files(r.disk().is_some(), r.squashfs_root())
        .iter()
        .filter(|f| **f != "manifest.json" && **f != crate::image::sbom::FILE)
    {
        let p = out.join(f);
        let size = std::fs::metadata(&p)
            .with_context(|| format!("cannot stat {}", p.display()))?
            .len();
        outputs.push(json!({ "file": f, "sha256": sha256_file(&p)?, "size": size }));
    }
    let rel = |p: &Path| p.strip_prefix(&r.root).unwrap_or(p).display().to_string();
    let files = crate::stages::userland::files(&built.userland()?.root())?;
    let root = if r.squashfs_root() {
        json!({ "type": "squashfs", "verity": root_info(rootfs)? })
    } else {
        serde_json::Value::Null
    };
    let mut m = json!({
        "sanforge": { "version": env!("CARGO_PKG_VERSION") },
        "recipe": {
            "name": r.name,
            "file": rel(&r.file),
            "sha256": crate::engine::ctx::text_sha(&r.text),
            "source-date-epoch": r.source_date_epoch(),
            "target-stack": r.stack,
        },
        "keys": ctx.keys,
        "inputs": ctx.inputs,
        "kernel": {
            "release": release,
            "source-sha256": ctx.input("kernel").map(|i| i.sha256.clone()).filter(|s| !s.is_empty()),
            "source-tree": ctx.input("kernel").and_then(|i| i.tree.clone()),
            "config-sha256": sha256_file(&kernel.config())?,
            "cmdline": r.kernel().cmdline,
            "patches": r.kernel().patches.iter().map(|p| rel(p)).collect::<Vec<_>>(),
            "fragments": r.kernel().fragments.iter().map(|p| rel(p)).collect::<Vec<_>>(),
        },
        "modules": modules,
        "packages": packages,
        "userland-files": files,
        "init": { "sha256": ctx.init_sha256 },
        "node-config": { "file": rel(&r.node_config), "sha256": crate::engine::ctx::text_sha(&ctx.node_text), "hostname": ctx.node.hostname },
        "rootfs": { "entries": ufs::read_to_string(&rootfs.join("rootfs.list"))?.lines().count() },
        "outputs": outputs,
        "firmware": match &scst {
            Some(s) => serde_json::to_value(&s.firmware)?,
            None => crate::stages::rootfs::firmware_record(rootfs)?.unwrap_or_else(|| serde_json::json!([])),
        },
        "scst": scst,
        "disk": r.outputs.disk_spec,
    });
    // Only squashfs-root builds have the key: other manifests stay as they were.
    if !root.is_null() {
        m["root"] = root;
    }
    // Only signing builds: the certificate's fingerprint, never the key.
    if let Some(s) = crate::stages::kernel::signing::manifest(&kernel.dir)? {
        m["kernel"]["module-signing"] = s;
    }
    Ok(m)
}

/// True when `out` holds the outputs of exactly this build and every file still
/// matches SHA256SUMS.
pub fn up_to_date(out: &Path, key: &str) -> bool {
    let check = || -> Result<bool> {
        let m: serde_json::Value =
            serde_json::from_str(&ufs::read_to_string(&out.join("manifest.json"))?)?;
        if m["keys"]["outputs"].as_str() != Some(key) {
            return Ok(false);
        }
        let sums = ufs::read_to_string(&out.join("SHA256SUMS"))?;
        let mut seen = Vec::new();
        for l in sums.lines() {
            let Some((sha, file)) = l.split_once("  ") else {
                return Ok(false);
            };
            if sha256_file(&out.join(file))? != sha {
                return Ok(false);
            }
            seen.push(file.to_string());
        }
        // The disk image is listed only when the manifest says the recipe asked for one.
        let want = files(!m["disk"].is_null(), m["root"]["type"] == "squashfs");
        Ok(seen == want)
    };
    check().unwrap_or(false)
}

/// Where `sanforge build --secrets` puts the node's secrets: beside the public files,
/// never listed in SHA256SUMS or the manifest, never served (`sanforge serve` serves
/// only the files directly in the output directory).
pub const SECRETS_DIR: &str = "secrets";
/// The secrets initrd in [`SECRETS_DIR`].
pub const SECRETS_INITRD: &str = "initrd.cpio";

/// With `--secrets`: writes `OUT/secrets/initrd.cpio` (mode 0600 in a 0700 directory,
/// with a `.gitignore`), an uncompressed newc archive holding
/// [`CHAP_SECRETS`](crate::contract::CHAP_SECRETS) (0600, in a 0700
/// `/etc/sanforge/secrets`). Loaded as a second initrd (iPXE: a second `initrd` line;
/// direct boot: appended to `initramfs.cpio.zst`, which `sanforge run` does), it puts
/// the secrets where the init reads them. Returns its path, or None without secrets.
pub fn write_secrets_initrd(ctx: &Ctx, out: &Path) -> Result<Option<std::path::PathBuf>> {
    use crate::image::cpio::{Archive, Entry};
    use std::os::unix::fs::PermissionsExt;
    let Some(secrets) = &ctx.secrets else {
        return Ok(None);
    };
    let mut a = Archive::new();
    a.add(Entry::data(
        crate::contract::in_image(crate::contract::CHAP_SECRETS),
        secrets.to_toml()?.into_bytes(),
        0o600,
    ));
    // The kernel applies a directory entry's mode to an existing directory too: only
    // the secrets directory itself is closed; /etc and the rest keep 0755.
    a.add(Entry::dir(
        crate::contract::in_image(crate::contract::SECRETS_DIR),
        0o700,
    ));
    a.ensure_parents();
    let mut data = Vec::new();
    let mtime = u32::try_from(ctx.source_date_epoch()).unwrap_or(0);
    a.write(&mut data, mtime)
        .context("cannot write the secrets initrd")?;
    let dir = out.join(SECRETS_DIR);
    ufs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot chmod {}", dir.display()))?;
    ufs::write_atomic(&dir.join(".gitignore"), "# secrets: never commit\n*\n")?;
    let p = dir.join(SECRETS_INITRD);
    ufs::write_atomic(&p, &data)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot chmod {}", p.display()))?;
    Ok(Some(p))
}
