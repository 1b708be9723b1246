//! Seeded kernel builds: a new config of a kernel source that this cache has already
//! built starts from a copy of that earlier build tree instead of an empty one, and
//! the kernel's own incremental build (kbuild's `fixdep` records, per object, which
//! `CONFIG_` options its sources test; `if_changed` records its command line) then
//! recompiles only the objects the config change really affects, and relinks.
//!
//! Why not only ccache: a config change rewrites `include/generated/autoconf.h`, which
//! every file includes, so ccache must run the preprocessor on all ~2,300 files again
//! before it can hit (measured: 59 % of a cold build's CPU time). kbuild knows which
//! options each object depends on, so it skips those files entirely.
//!
//! What makes it possible: the object tree lives *inside* the source tree
//! (`src/.sanforge-obj`), so kbuild uses the relative `srctree := ..` and every path
//! it records (`.cmd` files, dependency lists) is relative: the whole `src/` can be
//! copied to another cache entry and built on there. Older entries with the object
//! tree beside the source (`build/`, absolute paths) are never used as seeds.
//!
//! A seed must have exactly the same source: the same source input, member, patch
//! series and in-tree SCST swap ([`identity`]); its config may differ in anything.
//! The result is what a clean build of the new config writes (objects are a function
//! of their inputs; `benches/kernel-share.sh seeded` checks vmlinuz and every module
//! against a clean build). `SANFORGE_KERNEL_SEED=0` turns seeding off.
//!
//! Reads: the complete kernel entries of the cache (`stages/kernel/*/seed-id`).
//! Writes: the new entry's `src/` (source files hard-linked from the seed, which is
//! never modified; the object tree copied) and its `seed-id`.

use crate::engine::Ctx;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::hash::KeyBuilder;
use crate::util::progress;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The object tree's directory inside `src/` (kbuild: "building in a subdirectory of
/// the source tree", `srctree := ..`).
pub const OBJ_DIR: &str = ".sanforge-obj";

/// The file in a kernel entry that names the source identity it was built from.
pub const SEED_FILE: &str = "seed-id";

/// Bump when the layout of a seedable entry changes.
const VERSION: &str = "kernel-seed-v1";

/// Whether seeding is on (`SANFORGE_KERNEL_SEED=0` turns it off).
pub fn enabled() -> bool {
    std::env::var_os("SANFORGE_KERNEL_SEED").is_none_or(|v| v != "0")
}

/// Everything that makes the kernel *source tree* (not its config): entries with the
/// same identity hold identical `src/` files apart from the object tree.
pub fn identity(ctx: &Ctx) -> Result<String> {
    let k = ctx.recipe.kernel();
    let mut kb = KeyBuilder::new(VERSION);
    kb.add_str("source", ctx.input_sha("kernel"));
    if let crate::config::recipe::Source::Debian {
        member: Some(m), ..
    } = &k.source
    {
        kb.add_str("member", m);
    }
    for p in &k.patches {
        kb.add("patch", &ufs::read(p)?);
    }
    if let Some(s) = ctx
        .recipe
        .scst
        .as_ref()
        .filter(|s| s.driver_mode == crate::config::recipe::DriverMode::InTree)
    {
        kb.add_str("scst", ctx.input_sha("scst"));
        kb.add_str("scst-qla", &s.components.join(" "));
    }
    Ok(kb.finish())
}

/// The complete kernel entry of this cache (other than `except`) built from the source
/// `identity` in the relocatable layout whose `.config` is nearest to `wanted` (the
/// options the new build requests: fewest of them set otherwise), the newest of equals.
/// The nearer the seed, the fewer objects kbuild recompiles: a seed picked by age alone
/// once recompiled 2,399 objects for one added module.
pub fn find(
    ctx: &Ctx,
    identity: &str,
    except: &Path,
    wanted: &[crate::kconfig::Request],
) -> Option<PathBuf> {
    let root = ctx.cache.root().join("stages/kernel");
    let mut found: Vec<(usize, std::cmp::Reverse<std::time::SystemTime>, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(&root).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || e.path() == except {
            continue;
        }
        let Some(dir) = ctx.cache.stage_done("kernel", &name) else {
            continue;
        };
        let id_file = dir.join(SEED_FILE);
        let same = std::fs::read_to_string(&id_file).is_ok_and(|s| s.trim() == identity);
        let config = dir.join("src").join(OBJ_DIR).join(".config");
        if !same || !config.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&config) else {
            continue;
        };
        if let Ok(t) = std::fs::metadata(&id_file).and_then(|m| m.modified()) {
            found.push((distance(&text, wanted), std::cmp::Reverse(t), dir));
        }
    }
    found.sort();
    found.into_iter().next().map(|(_, _, d)| d)
}

/// How many of the `wanted` options the `.config` text sets otherwise (an option it
/// does not mention counts as `n`).
pub fn distance(config: &str, wanted: &[crate::kconfig::Request]) -> usize {
    let set = crate::kconfig::parse_config(config);
    wanted
        .iter()
        .filter(|r| set.get(&r.option).map_or("n", String::as_str) != r.value)
        .count()
}

/// Fills `dir/src` from the seed entry: source files as hard links (kbuild never
/// writes into the source tree of an out-of-tree build), the object tree as a copy
/// that keeps modification times (make compares them) and is writable.
pub fn plant(seed: &Path, dir: &Path, log: &Log) -> Result<()> {
    let src = dir.join("src");
    progress::step(&format!(
        "kernel: starting from the build tree of {} (same source, another config)",
        crate::engine::runner::short(
            &seed
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    ));
    log.line(&format!("seed: {}", seed.display()));
    Cmd::new("cp")
        .arg("-al")
        .arg(seed.join("src"))
        .arg(&src)
        .run(log)?;
    let obj = src.join(OBJ_DIR);
    ufs::remove_dir_all(&obj)?;
    Cmd::new("cp")
        .arg("-a")
        .arg(seed.join("src").join(OBJ_DIR))
        .arg(&obj)
        .run(log)?;
    Cmd::new("chmod").arg("-R").arg("u+w").arg(&obj).run(log)?;
    let n = relocate(&obj, &seed.join("src"), &src)?;
    log.line(&format!(
        "seed: {n} dependency files of the tools build moved to this entry's path"
    ));
    Ok(())
}

/// The kernel's own build records relative paths, but the tools it builds for itself
/// (objtool: every object depends on its binary) use the tools build system, whose
/// `.cmd` and `.d` files name targets, sources and include directories by absolute
/// path: left as they are, the copied objtool looks changed, is relinked, and every
/// object is compiled again. Rewrites the seed's `src/` path to the new one in those
/// files, keeping their modification times. Returns how many files changed.
fn relocate(obj: &Path, from: &Path, to: &Path) -> Result<usize> {
    let (from, to) = (from.to_string_lossy(), to.to_string_lossy());
    let tools = obj.join("tools");
    if !tools.is_dir() {
        return Ok(0);
    }
    let mut n = 0;
    for e in ufs::walk(&tools) {
        let e = e?;
        let name = e.file_name().to_string_lossy();
        let dep_file = name.starts_with('.') && (name.ends_with(".cmd") || name.ends_with(".d"));
        if !dep_file || e.is_dir() || e.is_symlink() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        if !text.contains(from.as_ref()) {
            continue;
        }
        let mtime = std::fs::metadata(e.path())
            .and_then(|m| m.modified())
            .with_context(|| format!("cannot stat {}", e.path().display()))?;
        ufs::write(e.path(), text.replace(from.as_ref(), to.as_ref()))?;
        std::fs::File::options()
            .write(true)
            .open(e.path())
            .and_then(|f| f.set_modified(mtime))
            .with_context(|| format!("cannot set the time of {}", e.path().display()))?;
        n += 1;
    }
    Ok(n)
}

/// Records the source identity, making the entry a seed for later configs.
pub fn mark(dir: &Path, identity: &str) -> Result<()> {
    ufs::write(&dir.join(SEED_FILE), format!("{identity}\n"))
}

#[cfg(test)]
mod tests {
    use super::distance;
    use crate::kconfig::Request;

    fn req(option: &str, value: &str) -> Request {
        Request {
            option: option.into(),
            value: value.into(),
            origin: "test".into(),
        }
    }

    /// The seed's distance counts the requested options it sets otherwise; an option
    /// it does not mention is `n`.
    #[test]
    fn distance_counts_the_requested_options_set_otherwise() {
        let config = "CONFIG_A=y\nCONFIG_B=m\n# CONFIG_DLM is not set\nCONFIG_N=17\n";
        let wanted = [
            req("CONFIG_A", "y"),
            req("CONFIG_B", "m"),
            req("CONFIG_N", "17"),
        ];
        assert_eq!(distance(config, &wanted), 0);
        let wanted = [
            req("CONFIG_A", "y"),
            req("CONFIG_DLM", "m"),
            req("CONFIG_GONE", "y"),
            req("CONFIG_OFF", "n"),
        ];
        assert_eq!(distance(config, &wanted), 2);
    }
}
