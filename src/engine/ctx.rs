//! The build context: everything a stage may read, resolved once — the validated
//! recipe (one kernel of its matrix selected), the lock, the node configs, the init
//! binary, every input with its sha256, and the key of every stage.
//!
//! Reads the recipe's lock, the node config files, the init binary and (for inputs
//! the lock does not pin) apt's metadata or local source paths.

use super::cache::Cache;
use super::stage::{Keys, Stage};
use crate::config::lock::Lock;
use crate::config::node::{NodeConfig, ValidNode};
use crate::config::recipe::{Project, Recipe, Source};
use crate::util::fs as ufs;
use crate::util::hash::{sha256_bytes, sha256_file};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

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
    pub scst_conf: Option<crate::scsi::scst::NodeScstConf>,
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
    /// The file's sha256; empty (and not in the manifest) for a source pinned by tree.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// The tree hash of a source pinned by its unpacked content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<crate::util::hash::TreeHash>,
}

impl Input {
    /// What pins it: the tree hash, else the sha256 (what stage keys use).
    pub fn pin(&self) -> &str {
        match &self.tree {
            Some(t) => t.as_str(),
            None => &self.sha256,
        }
    }
}

impl Ctx {
    pub fn new<B>(recipe: Recipe, opts: &BuildOptions, stages: &[&dyn Stage<B>]) -> Result<Ctx> {
        let recipe = match &opts.kernel {
            Some(k) => recipe.select_kernel(k)?,
            None => recipe,
        };
        let cache = Cache::from_env()?;
        let mut lock = super::lock::load_for(&recipe, opts.locked)?;
        let node_text = ufs::read_to_string(&recipe.node_config)?;
        let node = NodeConfig::parse(&recipe.node_config, &node_text)?;
        let node_configs = node_configs_in(&recipe.project(), &recipe.node_configs)?;
        let scst_conf = crate::scsi::scst::load_node_scst(&recipe.node_config, &node)?;
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
        let (inputs, drift) = resolve_inputs(&recipe, lock.as_ref())?;
        if !drift.is_empty() {
            let lines: Vec<String> = drift.iter().map(|d| d.describe()).collect();
            if opts.locked {
                bail!(
                    "{}\n`--locked` builds only what the lock pins; run `sanforge lock {}` to pin what is there now",
                    lines.join("\n"),
                    recipe.file.display()
                );
            }
            // Without --locked, what is there is built (and recorded), as for a stale
            // lock; the lock in memory follows so that later checks agree.
            for (d, line) in drift.iter().zip(&lines) {
                crate::util::progress::step(&format!(
                    "warning: {line}; building what is there (run `sanforge lock` to pin it)"
                ));
                if let Some(l) = lock
                    .as_mut()
                    .and_then(|l| l.sources.iter_mut().find(|s| s.name == d.lock_name))
                {
                    l.sha256 = d.actual.clone();
                }
            }
        }
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
        ctx.keys = Keys::compute(&ctx, stages)?;
        Ok(ctx)
    }

    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// What pins input `name` (its sha256, or its tree hash for a source pinned by
    /// content), or "" when the recipe has no such input.
    pub fn input_sha(&self, name: &str) -> &str {
        self.input(name).map(Input::pin).unwrap_or("")
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

/// A local `path` source whose content no longer has the sha256 the lock pins.
#[derive(Debug, Clone)]
pub struct Drift {
    pub lock_name: String,
    pub origin: String,
    pub expected: String,
    pub actual: String,
}

impl Drift {
    fn describe(&self) -> String {
        format!(
            "source `{}` ({}) changed since the lock was written: the lock pins sha256 {}, it now hashes to {}",
            self.lock_name, self.origin, self.expected, self.actual
        )
    }
}

/// Every input with the sha256 this build uses, and the `path` sources whose content
/// drifted from the lock. A `path` source is always keyed by its content (hashed
/// now), never by what the lock remembers: editing a local tree rebuilds, and the
/// manifest records what was really built.
fn resolve_inputs(recipe: &Recipe, lock: Option<&Lock>) -> Result<(Vec<Input>, Vec<Drift>)> {
    let mut inputs = Vec::new();
    let mut drift = Vec::new();
    // `lock_name`: the entry that pins it (`kernel@NAME` for a matrix kernel, which is
    // still the input `kernel` of this build).
    let mut add = |name: &str, lock_name: &str, src: &Source| -> Result<()> {
        let (kind, origin) = match src {
            Source::Url { mirrors, .. } | Source::UrlTree { mirrors, .. } => {
                ("url", mirrors.join(" "))
            }
            Source::Debian {
                package, version, ..
            } => ("debian", format!("{package}={version}")),
            // As written in the recipe (relative), so that outputs do not depend on
            // where the project is checked out; the lock uses the same form.
            Source::Path { written, .. } => ("path", written.display().to_string()),
        };
        let locked = lock
            .and_then(|l| l.get(lock_name))
            .filter(|l| l.kind == kind && l.origin == origin);
        if let Some(tree) = src.tree() {
            // Pinned by content: the content is checked when it is fetched or
            // imported into the tree store (not hashed at every plan).
            inputs.push(Input {
                name: name.to_string(),
                kind: kind.to_string(),
                origin,
                sha256: String::new(),
                tree: Some(tree.clone()),
            });
            return Ok(());
        }
        let sha256 = match (locked, src) {
            (locked, Source::Path { path, .. }) => {
                let actual = crate::engine::fetch::path_sha256(path)
                    .with_context(|| format!("source `{lock_name}` ({origin})"))?;
                if let Some(l) = locked.filter(|l| l.sha256 != actual) {
                    drift.push(Drift {
                        lock_name: lock_name.to_string(),
                        origin: origin.clone(),
                        expected: l.sha256.clone(),
                        actual: actual.clone(),
                    });
                }
                actual
            }
            (Some(l), _) => l.sha256.clone(),
            (None, Source::Url { sha256, .. }) => sha256.clone(),
            (None, Source::UrlTree { tree, .. }) => tree.to_string(),
            (
                None,
                Source::Debian {
                    package, version, ..
                },
            ) => crate::engine::fetch::debian_info(package, version)?.sha256,
        };
        inputs.push(Input {
            name: name.to_string(),
            kind: kind.to_string(),
            origin,
            sha256,
            tree: None,
        });
        Ok(())
    };
    add(
        "kernel",
        &recipe.kernel().lock_name,
        &recipe.kernel().source,
    )?;
    for (n, s) in &recipe.sources {
        add(n, n, s)?;
    }
    for (name, version) in &recipe.userland.packages {
        let input = format!("package:{name}");
        add(
            &input,
            &input,
            &Source::Debian {
                package: name.clone(),
                version: version.clone(),
                member: None,
            },
        )?;
    }
    Ok((inputs, drift))
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
    node_configs_in(&Project { root, allowed: &[] }, entries)
}

/// [`node_configs`] for a recipe's project: every entry, and every file found in an
/// entry's directory, must lead inside the project (or an allowed directory), so a
/// symlink among the rendered configs cannot bake a host file into the image.
pub fn node_configs_in(proj: &Project, entries: &[PathBuf]) -> Result<Vec<(String, String)>> {
    let root = proj.root;
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
        proj.path(f.strip_prefix(root).unwrap_or(&f))
            .map_err(|m| anyhow::anyhow!("node config {}: {m}", f.display()))?;
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
