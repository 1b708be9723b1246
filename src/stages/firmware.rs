//! Kernel module metadata and the firmware closure of an image.
//!
//! Why it exists: a QLogic HBA driver that cannot find its firmware leaves the port
//! dead at boot, long after the build said "ok". The modules an image ships declare the
//! firmware files they may request (`firmware=` in their `.modinfo` section, what
//! `modinfo -F firmware` prints); that set is the image's required firmware. Each
//! name must be provided by the recipe (`[scst] firmware`, fetched and verified like
//! any source) or waived explicitly (`[scst] waive-firmware`); anything else fails the
//! build, naming the module and the file.
//!
//! Reads: `.ko` and `.ko.xz` files (ELF `.modinfo` sections, parsed with goblin after
//! lzma-rs decompressed an xz module: no `modinfo` spawn), the recipe's firmware
//! sources through the cache.

use crate::config::recipe::{FirmwareSet, Scst};
use crate::engine::Ctx;
use crate::util::cmd::Log;
use crate::util::fs as ufs;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `.modinfo` of one module file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModInfo {
    /// `key=value` entries in file order (keys repeat: `alias`, `firmware`, …).
    pub entries: Vec<(String, String)>,
}

impl ModInfo {
    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn first(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads the `.modinfo` section of a module (an ELF relocatable object, plain or
/// xz-compressed).
pub fn modinfo(path: &Path) -> Result<ModInfo> {
    let bytes = read_module(path)?;
    parse_modinfo(&bytes)
        .with_context(|| format!("cannot read the module information of {}", path.display()))
}

/// The ELF bytes of a module file: `NAME.ko` as it is, `NAME.ko.xz` (what
/// `modules_install` writes with `CONFIG_MODULE_COMPRESS_XZ`) decompressed.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let bytes = ufs::read(path)?;
    if !path.to_string_lossy().ends_with(".xz") {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 3);
    lzma_rs::xz_decompress(&mut std::io::Cursor::new(&bytes), &mut out).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a valid xz-compressed module ({e:?})",
            path.display()
        )
    })?;
    Ok(out)
}

/// The file name of a module without its `.ko` / `.ko.xz` suffix.
pub fn module_stem(file: &str) -> &str {
    file.strip_suffix(".ko")
        .or_else(|| file.strip_suffix(".ko.xz"))
        .unwrap_or(file)
}

/// The `.modinfo` section of an ELF image in memory: NUL-separated `key=value` strings.
pub fn parse_modinfo(bytes: &[u8]) -> Result<ModInfo> {
    let elf = goblin::elf::Elf::parse(bytes).context("not an ELF file")?;
    let Some(sh) = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".modinfo"))
    else {
        bail!("no .modinfo section (not a kernel module)");
    };
    let start = usize::try_from(sh.sh_offset).context("bad .modinfo offset")?;
    let end = start
        .checked_add(usize::try_from(sh.sh_size).context("bad .modinfo size")?)
        .filter(|e| *e <= bytes.len());
    let Some(end) = end else {
        bail!(".modinfo section runs past the end of the file")
    };
    let mut entries = Vec::new();
    for s in bytes[start..end].split(|b| *b == 0) {
        let s = String::from_utf8_lossy(s);
        if let Some((k, v)) = s.split_once('=') {
            entries.push((k.to_string(), v.to_string()));
        }
    }
    Ok(ModInfo { entries })
}

/// The module name: `name=` from `.modinfo` (kernels ≥ 5.x write it), else the file
/// name without `.ko` and with `-` as `_` (what the kernel does).
pub fn module_name(path: &Path, info: &ModInfo) -> String {
    if let Some(n) = info.first("name") {
        return n.to_string();
    }
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    module_stem(&file).replace('-', "_")
}

/// Every `*.ko` and `*.ko.xz` under `dir`, sorted. Modules compressed otherwise are
/// refused: the init has the kernel decompress what it loads, and 6.1 decompresses
/// gzip and xz only, while Debian's libkmod (udevd, modprobe) reads xz but not gzip.
pub fn find_modules(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for e in crate::util::fs::walk(dir) {
        let e = e?;
        let name = e.file_name().to_string_lossy();
        if e.is_dir() {
            continue;
        } else if name.ends_with(".ko") || name.ends_with(".ko.xz") {
            out.push(e.path().to_path_buf());
        } else if name.ends_with(".ko.zst") || name.ends_with(".ko.gz") {
            bail!("{} is a module compressed with other than xz: sanforge-init has the kernel decompress modules, which 6.1 does for xz and gzip only, and Debian's libkmod reads no gzip (set CONFIG_MODULE_COMPRESS_XZ, or turn CONFIG_MODULE_COMPRESS_* off)", e.path().display());
        }
    }
    out.sort();
    Ok(out)
}

/// One firmware file of the image, for the manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Firmware {
    pub name: String,
    /// `None` for a waived file (not in the image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The first module that requests it (`None`: provided but requested by none).
    pub module: Option<String>,
    /// Every module that requests it.
    pub modules: Vec<String>,
    pub waived: bool,
    /// Why the recipe waives it, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The Debian package it comes from (`firmware-qlogic=20230210-5`), for a file
    /// taken from a `.deb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// Where it comes from otherwise: the URL list or the path, as the recipe says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// Firmware name → the modules that request it, over every module file in `modules`
/// (module file paths, with their display names).
pub fn required(modules: &[(String, ModInfo)]) -> BTreeMap<String, Vec<String>> {
    let mut req: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, info) in modules {
        for fw in info.all("firmware") {
            let v = req.entry(fw.to_string()).or_default();
            if !v.contains(name) {
                v.push(name.clone());
            }
        }
    }
    req
}

/// Checks the closure and installs every provided file under `root/lib/firmware/`.
/// Missing files fail the build, each named with the module that requests it.
pub fn install(
    ctx: &Ctx,
    scst: &FirmwareSet,
    required: &BTreeMap<String, Vec<String>>,
    root: &Path,
    log: &Log,
) -> Result<Vec<Firmware>> {
    let missing: Vec<String> = required
        .iter()
        .filter(|(name, _)| !scst.files.contains_key(*name) && scst.waiver(name).is_none())
        .map(|(name, mods)| {
            format!(
                "{name} (requested by {})",
                mods.iter()
                    .map(|m| format!("module {m}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "firmware missing from the recipe:\n  {}\nadd each file to [{t}] {f} (name + debian + version + member, name + url + sha256, or name + path), or list it in [{t}] {w} (with the reason) if the image goes without it",
            missing.join("\n  "),
            t = scst.table,
            f = scst.files_key,
            w = scst.waive_key,
        );
    }
    let mut out = Vec::new();
    for (name, source) in &scst.files {
        let input = Scst::firmware_input(name);
        let fetched =
            crate::engine::fetch::fetch_source(&ctx.cache, &input, source, ctx.lock.as_ref(), log)
                .with_context(|| format!("cannot get firmware {name}"))?;
        if fetched.path.is_dir() {
            bail!(
                "firmware {name}: {} is a directory, expected a file",
                fetched.path.display()
            );
        }
        let dst = root.join("lib/firmware").join(name);
        ufs::create_dir_all(&ufs::parent_dir(&dst))?;
        ufs::copy(&fetched.path, &dst)?;
        // The file's own sha256 (for a Debian source, `fetched` pins the `.deb`).
        let sha256 = crate::util::hash::sha256_file(&dst)?;
        let (package, origin) = match source {
            crate::config::recipe::Source::Debian {
                package, version, ..
            } => (Some(format!("{package}={version}")), None),
            crate::config::recipe::Source::Url { mirrors, .. }
            | crate::config::recipe::Source::UrlTree { mirrors, .. } => {
                (None, Some(mirrors.join(" ")))
            }
            crate::config::recipe::Source::Path { written, .. } => {
                (None, Some(written.display().to_string()))
            }
        };
        let modules = required.get(name).cloned().unwrap_or_default();
        if modules.is_empty() {
            log.line(&format!(
                "firmware {name}: provided by the recipe, requested by no module"
            ));
        }
        log.line(&format!("firmware {name}: installed (sha256 {sha256})"));
        out.push(Firmware {
            name: name.clone(),
            sha256: Some(sha256),
            module: modules.first().cloned(),
            modules,
            waived: false,
            reason: None,
            package,
            origin,
        });
    }
    // Every file waived by name, and every requested file a `PREFIX*` entry waives.
    let mut waived: Vec<&String> = scst.waived.iter().filter(|w| !w.ends_with('*')).collect();
    for name in required.keys() {
        if !scst.files.contains_key(name) && !waived.contains(&name) && scst.waiver(name).is_some()
        {
            waived.push(name);
        }
    }
    for name in waived {
        let modules = required.get(name).cloned().unwrap_or_default();
        let reason = scst
            .waiver(name)
            .and_then(|w| scst.waive_reasons.get(w))
            .cloned();
        log.line(&format!(
            "firmware {name}: waived by the recipe{}",
            reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
        out.push(Firmware {
            name: name.clone(),
            sha256: None,
            module: modules.first().cloned(),
            modules,
            waived: true,
            reason,
            package: None,
            origin: None,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_groups_modules_by_file() {
        let a = ModInfo {
            entries: vec![
                ("firmware".into(), "ql2500_fw.bin".into()),
                ("firmware".into(), "ql2400_fw.bin".into()),
            ],
        };
        let b = ModInfo {
            entries: vec![
                ("firmware".into(), "ql2500_fw.bin".into()),
                ("alias".into(), "x".into()),
            ],
        };
        let r = required(&[("qla2xxx".into(), a), ("qla2xxx_scst".into(), b)]);
        assert_eq!(r["ql2500_fw.bin"], vec!["qla2xxx", "qla2xxx_scst"]);
        assert_eq!(r["ql2400_fw.bin"], vec!["qla2xxx"]);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn module_name_falls_back_to_the_file_name() {
        let none = ModInfo::default();
        assert_eq!(
            module_name(Path::new("/x/iscsi-scst.ko"), &none),
            "iscsi_scst"
        );
        let named = ModInfo {
            entries: vec![("name".into(), "scst".into())],
        };
        assert_eq!(module_name(Path::new("/x/other.ko"), &named), "scst");
    }

    #[test]
    fn xz_modules_are_found_named_and_read_decompressed() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("kernel/drivers/net");
        std::fs::create_dir_all(&d).unwrap();
        let elf = b"\x7fELF not really a module, but its bytes".to_vec();
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut std::io::Cursor::new(&elf), &mut xz).unwrap();
        std::fs::write(d.join("e1000e.ko.xz"), &xz).unwrap();
        std::fs::write(d.join("bonding.ko"), &elf).unwrap();
        let found = find_modules(t.path()).unwrap();
        assert_eq!(found, vec![d.join("bonding.ko"), d.join("e1000e.ko.xz")]);
        assert_eq!(read_module(&d.join("e1000e.ko.xz")).unwrap(), elf);
        assert_eq!(read_module(&d.join("bonding.ko")).unwrap(), elf);
        let none = ModInfo::default();
        assert_eq!(module_name(&d.join("e1000e.ko.xz"), &none), "e1000e");
        // A damaged xz module: an error naming the file, not a panic or a plain read.
        std::fs::write(d.join("e1000e.ko.xz"), &xz[..xz.len() / 2]).unwrap();
        let e = read_module(&d.join("e1000e.ko.xz"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("e1000e.ko.xz: not a valid xz-compressed module"),
            "{e}"
        );
        // gzip and zstd modules would load from neither the init nor udevd: refused.
        std::fs::write(d.join("igb.ko.gz"), b"x").unwrap();
        let e = find_modules(t.path()).unwrap_err().to_string();
        assert!(
            e.contains("igb.ko.gz is a module compressed with other than xz"),
            "{e}"
        );
    }

    #[test]
    fn not_elf_is_an_error() {
        assert!(parse_modinfo(b"ko").is_err());
    }
}
