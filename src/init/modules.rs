//! Kernel module load order from `modules.dep` and `modules.builtin` (what depmod
//! writes under `/lib/modules/<release>/`): dependencies first, each module once,
//! builtin ones skipped, blacklisted ones never loaded. And the device → module
//! lookup udev's kmod builtin does: a device's `modalias` matched against the
//! `alias` globs of `modules.alias` (and of the built-in modules in
//! `modules.builtin.modinfo`) with fnmatch(3) rules. Pure: the init reads the files.

#![deny(clippy::indexing_slicing)]

use crate::config::node::norm_mod;
use std::collections::{BTreeMap, BTreeSet};

/// `modules.dep`: module name → (path relative to the modules dir, dependency names).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DepDb {
    pub modules: BTreeMap<String, (String, Vec<String>)>,
}

/// What the console says when `finit_module` fails for `name`. A module the kernel
/// refuses for its signature (`EKEYREJECTED`: unsigned, or signed by a key the kernel
/// does not trust, with enforcement on; `ENOKEY`: no trusted key for it) gets words
/// that say so, rather than "Key was rejected by service".
pub fn load_error(name: &str, e: &crate::sys::SysError) -> String {
    match e.errno() {
        Some(libc::EKEYREJECTED) | Some(libc::ENOKEY) => format!(
            "module {name} refused: not signed by the image's module-signing key (module.sig_enforce=1; {e})"
        ),
        _ => e.to_string(),
    }
}

/// `kernel/drivers/target/target_core_mod.ko.xz` → `target_core_mod`.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split_once(".ko").map_or(base, |(stem, _)| stem);
    norm_mod(stem)
}

impl DepDb {
    pub fn parse(text: &str) -> DepDb {
        let mut modules = BTreeMap::new();
        for line in text.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            let deps = deps.split_whitespace().map(module_name).collect();
            modules.insert(module_name(path), (path.to_string(), deps));
        }
        DepDb { modules }
    }
}

/// `modules.builtin`: names of the modules compiled into the kernel.
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name)
        .collect()
}

/// One module to load, with its path relative to the modules directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLoad {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    pub loads: Vec<ModuleLoad>,
    /// Requested modules compiled into the kernel (nothing to load).
    pub builtin: Vec<String>,
    /// Requested modules that will not be loaded, and why.
    pub warnings: Vec<String>,
}

/// The load order for `requested`: for each, its dependencies depth-first in
/// modules.dep order, then the module; a module already in the plan is not repeated.
/// A requested module that needs a blacklisted one is left out with a warning.
pub fn load_order(
    db: &DepDb,
    builtin: &BTreeSet<String>,
    requested: &[String],
    blacklist: &[String],
) -> LoadPlan {
    let black: BTreeSet<String> = blacklist.iter().map(|b| norm_mod(b)).collect();
    let mut plan = LoadPlan::default();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for r in requested {
        let n = norm_mod(r);
        if black.contains(&n) {
            plan.warnings
                .push(format!("module {r} is blacklisted: not loaded"));
            continue;
        }
        if builtin.contains(&n) {
            plan.builtin.push(n);
            continue;
        }
        let mut local = Vec::new();
        let mut visiting = Vec::new();
        match visit(db, builtin, &black, &done, &n, &mut visiting, &mut local) {
            Ok(()) => {
                for m in local {
                    if done.insert(m.name.clone()) {
                        plan.loads.push(m);
                    }
                }
            }
            Err(why) => plan.warnings.push(format!("module {r} not loaded: {why}")),
        }
    }
    plan
}

fn visit(
    db: &DepDb,
    builtin: &BTreeSet<String>,
    black: &BTreeSet<String>,
    done: &BTreeSet<String>,
    n: &str,
    visiting: &mut Vec<String>,
    out: &mut Vec<ModuleLoad>,
) -> Result<(), String> {
    if done.contains(n) || out.iter().any(|m| m.name == n) || builtin.contains(n) {
        return Ok(());
    }
    if visiting.iter().any(|v| v == n) {
        return Err(format!("dependency cycle through {n}"));
    }
    if black.contains(n) {
        return Err(format!("it depends on {n}, which is blacklisted"));
    }
    let Some((path, deps)) = db.modules.get(n) else {
        return Err(format!("{n} is not in modules.dep"));
    };
    visiting.push(n.to_string());
    for d in deps {
        visit(db, builtin, black, done, d, visiting, out)?;
    }
    visiting.pop();
    out.push(ModuleLoad {
        name: n.to_string(),
        path: path.clone(),
    });
    Ok(())
}

/// One `alias PATTERN MODULE` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub pattern: String,
    pub module: String,
    /// The module is compiled into the kernel (from `modules.builtin.modinfo`).
    pub builtin: bool,
    /// The pattern up to its first wildcard: a cheap filter before fnmatch.
    literal: String,
}

/// `modules.alias` (+ the aliases of built-in modules): what kmod looks up for
/// `modprobe MODALIAS`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AliasDb {
    pub aliases: Vec<Alias>,
}

impl AliasDb {
    /// `modules.alias`: `alias PATTERN MODULE` lines; comments and others skipped.
    pub fn parse(text: &str) -> AliasDb {
        let mut db = AliasDb::default();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            if let (Some("alias"), Some(pattern), Some(module)) = (w.next(), w.next(), w.next()) {
                db.push(pattern, module, false);
            }
        }
        db
    }

    /// Adds the aliases of built-in modules from `modules.builtin.modinfo`
    /// (NUL-separated `module.key=value` records, as the kernel build writes it).
    pub fn add_builtin_modinfo(&mut self, bytes: &[u8]) {
        for rec in bytes.split(|b| *b == 0) {
            let rec = String::from_utf8_lossy(rec);
            let Some((key, value)) = rec.split_once('=') else {
                continue;
            };
            if let Some(module) = key.strip_suffix(".alias") {
                if !module.is_empty() && !module.contains('.') {
                    self.push(value, module, true);
                }
            }
        }
    }

    fn push(&mut self, pattern: &str, module: &str, builtin: bool) {
        let literal = pattern
            .split(['*', '?', '[', '\\'])
            .next()
            .unwrap_or_default()
            .to_string();
        self.aliases.push(Alias {
            pattern: pattern.to_string(),
            module: norm_mod(module),
            builtin,
            literal,
        });
    }

    /// Every alias whose pattern matches `modalias`, in file order, each module once
    /// (kmod loads all of them, as `modprobe -a` would).
    pub fn lookup(&self, modalias: &str) -> Vec<&Alias> {
        let mut out: Vec<&Alias> = Vec::new();
        for a in &self.aliases {
            if modalias.starts_with(&a.literal)
                && fnmatch(a.pattern.as_bytes(), modalias.as_bytes())
                && !out.iter().any(|o| o.module == a.module)
            {
                out.push(a);
            }
        }
        out
    }
}

/// fnmatch(3) with no flags, as kmod matches aliases: `*` any run (also of `/`),
/// `?` one byte, `[abc]`, `[a-z]`, `[!x]` / `[^x]` one byte of (not of) a set, `\x`
/// the byte x; a `[` without its `]` is a plain `[`.
pub fn fnmatch(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(&c) = pat.get(p) {
            if c == b'*' {
                p += 1;
                star = Some((p, t));
                continue;
            }
            if let Some(&b) = text.get(t) {
                let step = match c {
                    b'?' => Some(1),
                    b'[' => match class(pat.get(p + 1..).unwrap_or_default(), b) {
                        Some((true, len)) => Some(len + 1),
                        Some((false, _)) => None,
                        // No closing `]`: a literal `[`.
                        None => (b == b'[').then_some(1),
                    },
                    b'\\' => match pat.get(p + 1) {
                        Some(&e) => (e == b).then_some(2),
                        None => (b == b'\\').then_some(1),
                    },
                    _ => (c == b).then_some(1),
                };
                if let Some(n) = step {
                    p += n;
                    t += 1;
                    continue;
                }
            }
        } else if t == text.len() {
            return true;
        }
        // Mismatch: let the last `*` eat one more byte, or fail.
        match star {
            Some((sp, st)) if st < text.len() => {
                star = Some((sp, st + 1));
                p = sp;
                t = st + 1;
            }
            _ => return false,
        }
    }
}

/// A bracket expression (after its `[`) against byte `b`: whether it matches and how
/// many pattern bytes it spans including the `]`; None when it has no `]`.
fn class(pat: &[u8], b: u8) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(pat.first(), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let c = *pat.get(i)?;
        if c == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let (lo, mut next) = if c == b'\\' {
            (*pat.get(i + 1)?, i + 2)
        } else {
            (c, i + 1)
        };
        let mut hi = lo;
        if pat.get(next) == Some(&b'-') && pat.get(next + 1).is_some_and(|&h| h != b']') {
            hi = *pat.get(next + 1)?;
            next += 2;
        }
        if lo <= b && b <= hi {
            matched = true;
        }
        i = next;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    const DEP: &str = "\
kernel/drivers/target/iscsi/iscsi_target_mod.ko: kernel/drivers/target/target_core_mod.ko kernel/crypto/crc32c_generic.ko kernel/lib/libcrc32c.ko
kernel/drivers/target/target_core_mod.ko: kernel/lib/configfs.ko kernel/crypto/crc32c_generic.ko
kernel/drivers/target/target_core_file.ko: kernel/drivers/target/target_core_mod.ko
kernel/crypto/crc32c_generic.ko:
kernel/lib/libcrc32c.ko: kernel/crypto/crc32c_generic.ko
kernel/lib/configfs.ko:
kernel/drivers/scsi/qla2xxx/qla2xxx.ko.xz: kernel/drivers/scsi/scsi_transport_fc.ko
kernel/drivers/scsi/scsi_transport_fc.ko:
kernel/drivers/net/a.ko: kernel/drivers/net/b.ko
kernel/drivers/net/b.ko: kernel/drivers/net/a.ko
";

    fn names(p: &LoadPlan) -> Vec<&str> {
        p.loads.iter().map(|m| m.name.as_str()).collect()
    }

    fn req(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_module_refused_for_its_signature_is_named_as_such() {
        let err = |n| {
            crate::sys::SysError::new(
                "load module",
                "/lib/modules/6.1.0/kernel/lib/crc7.ko",
                std::io::Error::from_raw_os_error(n),
            )
        };
        for errno in [libc::EKEYREJECTED, libc::ENOKEY] {
            let m = load_error("crc7", &err(errno));
            assert!(
                m.starts_with("module crc7 refused: not signed by the image's module-signing key (module.sig_enforce=1; cannot load module /lib/modules/6.1.0/kernel/lib/crc7.ko: "),
                "{m}"
            );
        }
        let m = load_error("crc7", &err(libc::ENOENT));
        assert!(!m.contains("refused") && m.contains("crc7.ko"), "{m}");
    }

    #[test]
    fn dependencies_first_each_once() {
        let db = DepDb::parse(DEP);
        let p = load_order(
            &db,
            &BTreeSet::new(),
            &req(&["iscsi_target_mod", "target-core-file", "target_core_mod"]),
            &[],
        );
        assert_eq!(
            names(&p),
            [
                "configfs",
                "crc32c_generic",
                "target_core_mod",
                "libcrc32c",
                "iscsi_target_mod",
                "target_core_file"
            ]
        );
        assert_eq!(p.loads[0].path, "kernel/lib/configfs.ko");
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn blacklisted_dependency_names_both() {
        let db = DepDb::parse(DEP);
        let p = load_order(
            &db,
            &BTreeSet::new(),
            &req(&["qla2xxx", "configfs"]),
            &req(&["scsi_transport_fc"]),
        );
        assert_eq!(names(&p), ["configfs"]);
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].contains("qla2xxx") && p.warnings[0].contains("scsi_transport_fc"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn builtin_modules_are_skipped_and_unknown_ones_warned() {
        let db = DepDb::parse(DEP);
        let builtin =
            parse_builtin("kernel/lib/configfs.ko\nkernel/drivers/target/target_core_mod.ko\n");
        let p = load_order(
            &db,
            &builtin,
            &req(&["target_core_file", "configfs", "nosuch"]),
            &[],
        );
        assert_eq!(names(&p), ["target_core_file"]);
        assert_eq!(p.builtin, ["configfs"]);
        assert!(p.warnings[0].contains("nosuch"));
    }

    #[test]
    fn cycles_and_compressed_names() {
        let db = DepDb::parse(DEP);
        assert!(db.modules.contains_key("qla2xxx"));
        let p = load_order(&db, &BTreeSet::new(), &req(&["a"]), &[]);
        assert!(p.loads.is_empty());
        assert!(p.warnings[0].contains("cycle"), "{:?}", p.warnings);
    }
}

#[cfg(test)]
mod alias_tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// An excerpt of `modules.alias` from kernels sanforge built (see the fixture's
    /// header for which).
    const EXCERPT: &str = include_str!("../../tests/fixtures/hardware/modules.alias");

    fn m(p: &str, t: &str) -> bool {
        fnmatch(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn fnmatch_like_libc() {
        assert!(m(
            "pci:v*d*sv*sd*bc01sc08i02*",
            "pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02"
        ));
        assert!(!m(
            "pci:v*d*sv*sd*bc01sc08i02*",
            "pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i03"
        ));
        assert!(m("a*b*c", "abc") && m("a*b*c", "axxbyybc") && !m("a*b*c", "axxbyybcd"));
        assert!(m("*", "") && m("**", "x") && !m("?", "") && m("?", "x"));
        assert!(m("v[0-9]x", "v7x") && !m("v[0-9]x", "vax"));
        assert!(m("v[!0-9]x", "vax") && m("v[^0-9]x", "vax") && !m("v[!0-9]x", "v7x"));
        assert!(m("[]]", "]") && m("[!]]", "a") && !m("[!]]", "]"));
        assert!(m("[a-]", "-") && m("[ab-]", "b"));
        // A `[` without `]` is literal; `\` escapes.
        assert!(m("a[b", "a[b") && !m("a[b", "ab"));
        assert!(m("a\\*b", "a*b") && !m("a\\*b", "axb"));
        // What kmod's aliases look like.
        assert!(m(
            "cpu:type:x86,ven*fam*mod*:feature:*0094*",
            "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001,0094,00E0"
        ));
        assert!(m("block-major-147-*", "block-major-147-0"));
        assert!(m(
            "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*",
            "usb:v0781p5581d0100dc00dsc00dp00ic08isc06ip50in00"
        ));
    }

    #[test]
    fn lookup_in_the_committed_excerpt() {
        let db = AliasDb::parse(EXCERPT);
        assert!(db.aliases.len() > 20, "{}", db.aliases.len());
        let found = |alias: &str| -> Vec<String> {
            db.lookup(alias).iter().map(|a| a.module.clone()).collect()
        };
        // The QEMU i6300ESB watchdog (an exact PCI id).
        assert_eq!(
            found("pci:v00008086d000025ABsv00001AF4sd00001100bc08sc80i00"),
            ["i6300esb"]
        );
        assert!(found("pci:v00008086d000025ACsv00001AF4sd00001100bc08sc80i00").is_empty());
        // An NVMe drive of any vendor: the class match (01 08 02).
        assert_eq!(
            found("pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02"),
            ["nvme"]
        );
        // Intel 82574L: e1000e; I350: igb.
        assert_eq!(
            found("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00"),
            ["e1000e"]
        );
        assert_eq!(
            found("pci:v00008086d00001521sv000015D9sd00001521bc02sc00i00"),
            ["igb"]
        );
        // Broadcom/LSI SAS3008: mpt3sas; MegaRAID SAS-3 3108: megaraid_sas.
        assert_eq!(
            found("pci:v00001000d00000097sv000015D9sd00000808bc01sc07i00"),
            ["mpt3sas"]
        );
        assert_eq!(
            found("pci:v00001000d0000005Dsv000015D9sd00000809bc01sc04i00"),
            ["megaraid_sas"]
        );
        // A QLogic QLE2562 (ISP2532) Fibre Channel HBA.
        assert_eq!(
            found("pci:v00001077d00002532sv00001077sd0000015Dbc0Csc04i00"),
            ["qla2xxx"]
        );
        // Unknown hardware: nothing.
        assert!(found("pci:v0000DEADd0000BEEFsv00000000sd00000000bc02sc00i00").is_empty());
    }

    #[test]
    fn lookup_lists_each_module_once_in_file_order() {
        let db = AliasDb::parse(
            "# comment\nalias pci:v00001077d00002532sv*sd*bc*sc*i* qla2xxx\n\
             alias pci:v00001077d*sv*sd*bc0Csc04i* qla2xxx\n\
             alias pci:v00001077d00002532sv*sd*bc*sc*i* qla2xxx-scst\nnot an alias\n",
        );
        let got: Vec<&str> = db
            .lookup("pci:v00001077d00002532sv00001077sd0000015Dbc0Csc04i00")
            .iter()
            .map(|a| a.module.as_str())
            .collect();
        assert_eq!(got, ["qla2xxx", "qla2xxx_scst"]);
    }

    #[test]
    fn builtin_modinfo_adds_aliases_of_builtin_modules() {
        let mut db = AliasDb::default();
        db.add_builtin_modinfo(
            b"ahci.file=drivers/ata/ahci\0ahci.alias=pci:v*d*sv*sd*bc01sc06i01*\0\
              ahci.license=GPL\0usb_storage.alias=usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*\0",
        );
        let a = db.lookup("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01");
        assert_eq!(a.len(), 1);
        assert_eq!((a[0].module.as_str(), a[0].builtin), ("ahci", true));
        assert_eq!(db.aliases.len(), 2);
    }

    /// `$SANFORGE_CACHE` (default `~/.cache/sanforge`), where `sanforge build` keeps
    /// its kernels.
    fn cache_dir() -> Option<std::path::PathBuf> {
        std::env::var_os("SANFORGE_CACHE")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/sanforge"))
            })
    }

    /// Every `modules.alias` of the kernels built into the cache, and the file
    /// `$SANFORGE_MODULES_ALIAS` names (e.g. from a distribution kernel).
    fn real_alias_files() -> Vec<std::path::PathBuf> {
        let mut out: Vec<std::path::PathBuf> = std::env::var_os("SANFORGE_MODULES_ALIAS")
            .map(std::path::PathBuf::from)
            .into_iter()
            .collect();
        let Some(kernels) = cache_dir().map(|c| c.join("stages/kernel")) else {
            return out;
        };
        for k in std::fs::read_dir(kernels).into_iter().flatten().flatten() {
            let lm = k.path().join("modules/lib/modules");
            for r in std::fs::read_dir(lm).into_iter().flatten().flatten() {
                let f = r.path().join("modules.alias");
                if f.is_file() {
                    out.push(f);
                }
            }
        }
        out.sort();
        out
    }

    /// A modalias the glob must match: each `*` as nothing, each `?` and each bracket
    /// expression as a byte it accepts.
    fn instance(pattern: &str) -> Option<String> {
        let p = pattern.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => i += 1,
                b'?' => {
                    out.push(b'X');
                    i += 1;
                }
                b'\\' if i + 1 < p.len() => {
                    out.push(p[i + 1]);
                    i += 2;
                }
                b'[' => {
                    let (_, len) = class(&p[i + 1..], b'X')?;
                    let pick = (0x21u8..0x7f)
                        .find(|&c| class(&p[i + 1..], c).map(|(m, _)| m) == Some(true))?;
                    out.push(pick);
                    i += 1 + len;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }

    #[test]
    #[ignore = "reads modules.alias of the kernels built into $SANFORGE_CACHE (run after `sanforge build`: cargo test --lib -- --ignored modules_alias_of_real_kernels)"]
    fn modules_alias_of_real_kernels() {
        let files = real_alias_files();
        assert!(
            !files.is_empty(),
            "no modules.alias under {:?}/stages/kernel/*/modules/lib/modules/*: build a kernel first",
            cache_dir()
        );
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let db = AliasDb::parse(&text);
            let lines = text.lines().filter(|l| l.starts_with("alias ")).count();
            assert_eq!(db.aliases.len(), lines, "{}", f.display());
            // Every pattern matches a modalias made from it, and finds its module.
            for a in &db.aliases {
                let Some(s) = instance(&a.pattern) else {
                    continue;
                };
                assert!(
                    db.lookup(&s).iter().any(|x| x.module == a.module),
                    "{}: `{s}` (from `{}`) does not find {}",
                    f.display(),
                    a.pattern,
                    a.module
                );
            }
            // Real devices, for the drivers this kernel has.
            let devices = [
                (
                    "pci:v00008086d000025ABsv00001AF4sd00001100bc08sc80i00",
                    "i6300esb",
                ),
                (
                    "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00",
                    "e1000e",
                ),
                (
                    "pci:v00008086d00001521sv000015D9sd00001521bc02sc00i00",
                    "igb",
                ),
                (
                    "pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02",
                    "nvme",
                ),
                (
                    "pci:v00001000d00000097sv000015D9sd00000808bc01sc07i00",
                    "mpt3sas",
                ),
                (
                    "pci:v00001000d0000005Dsv000015D9sd00000809bc01sc04i00",
                    "megaraid_sas",
                ),
                (
                    "pci:v00001077d00002532sv00001077sd0000015Dbc0Csc04i00",
                    "qla2xxx",
                ),
            ];
            let mut checked = 0;
            for (alias, module) in devices {
                if db.aliases.iter().any(|a| a.module == module) {
                    let got: Vec<&str> =
                        db.lookup(alias).iter().map(|a| a.module.as_str()).collect();
                    assert!(
                        got.contains(&module),
                        "{}: {alias} → {got:?}, expected {module}",
                        f.display()
                    );
                    checked += 1;
                }
            }
            eprintln!(
                "{}: {} aliases, {checked} known devices checked",
                f.display(),
                db.aliases.len()
            );
        }
    }
}
