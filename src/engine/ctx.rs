//! The build context: everything a stage may read, resolved once — the validated
//! recipe (one kernel of its matrix selected), the lock, the node configs, the init
//! binary, every input with its sha256, and the key of every stage.
//!
//! Reads the recipe's lock (or, without a usable one, resolves the pins through apt:
//! [`super::lock::pins_for`]), the node config files and the init binary.

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
    /// The node's secrets file (`[chap.NAME]` accounts the node configs name): checked
    /// before anything is built, written to `OUT/secrets/initrd.cpio` after, never into
    /// a stage, a cache entry or a public output.
    pub secrets: Option<PathBuf>,
    /// The remote stage cache (`oci://…`, or `off`), over `SANFORGE_REMOTE_CACHE` and
    /// the recipe's `[cache] remote` ([`super::remote::Remote::configure`]).
    pub remote_cache: Option<String>,
    /// The secret key that signs pushed entries, over `SANFORGE_REMOTE_CACHE_KEY`.
    pub remote_cache_key: Option<PathBuf>,
}

/// Everything a stage may read, resolved once.
pub struct Ctx {
    pub recipe: Recipe,
    pub cache: Cache,
    /// The pins of this build: the lock file when it matches the recipe, else a fresh
    /// resolution (holding a stale lock's versions). Always `Some` once built.
    pub lock: Option<Lock>,
    /// Whether `lock` is the recipe's lock file (false: resolved for this build).
    pub lock_from_file: bool,
    /// The role of every package of the closure (requested, companion, dependency,
    /// left out).
    pub roles: std::collections::BTreeMap<String, crate::engine::apt::Role>,
    pub node: ValidNode,
    pub node_text: String,
    /// `[node] configs`: (NAME, text) baked as /etc/sanforge/nodes/NAME.toml, sorted.
    pub node_configs: Vec<(String, String)>,
    /// The files of `node_configs`, in the same order (for messages).
    pub node_config_files: Vec<PathBuf>,
    /// The node's `scst.conf` (validated), when the node config has `[scst]`.
    pub scst_conf: Option<crate::scsi::scst::NodeScstConf>,
    /// The secret names the node configs and scst.conf reference (`secret = "NAME"`,
    /// `secret:NAME`), sorted.
    pub secret_refs: Vec<String>,
    /// The referenced accounts from `--secrets` (only those), when it was given.
    pub secrets: Option<crate::config::secrets::NodeSecrets>,
    pub init_bin: PathBuf,
    pub init_sha256: String,
    pub jobs: usize,
    pub out: PathBuf,
    /// Resolved sha256 of every fetched input, by lock name (`kernel`, `package:NAME`, …).
    pub inputs: Vec<Input>,
    pub keys: Keys,
    /// The remote stage cache, when the build has one.
    pub remote: Option<super::remote::Remote>,
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
        let (mut pins, lock_from_file) = super::lock::pins_for(&recipe, &cache, opts.locked)?;
        let node_text = ufs::read_to_string(&recipe.node_config)?;
        let node = NodeConfig::parse(&recipe.node_config, &node_text)?;
        // What is baked must not carry a secret (the init reads them from the secrets
        // initrd or the config partition).
        crate::config::secrets::refuse_inline(&recipe.node_config, &node_text, &node)?;
        let (node_configs, node_config_files): (Vec<_>, Vec<_>) =
            node_config_entries(&recipe.project(), &recipe.node_configs)?
                .into_iter()
                .map(|(name, text, file)| ((name, text), file))
                .unzip();
        let scst_conf = crate::scsi::scst::load_node_scst(&recipe.node_config, &node)?;
        let mut secret_refs = crate::config::secrets::node_refs(&node);
        if let Some(s) = &scst_conf {
            crate::scsi::scst::refuse_inline(&s.host_path, &s.conf)?;
            secret_refs.extend(
                crate::scsi::scst::secret_refs(&s.conf)
                    .into_iter()
                    .map(|(n, _)| n),
            );
        }
        for (_, text) in &node_configs {
            if let Ok(n) = NodeConfig::parse(Path::new(""), text) {
                secret_refs.extend(crate::config::secrets::node_refs(&n));
            }
        }
        secret_refs.sort();
        secret_refs.dedup();
        let secrets = match &opts.secrets {
            Some(p) => Some(load_secrets(p, &secret_refs, &recipe.node_config)?),
            None => None,
        };
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
        let requested: Vec<&str> = recipe
            .userland
            .packages
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        let roles = crate::engine::apt::roles(&pins.packages, &requested);
        let (inputs, drift) = resolve_inputs(&recipe, &pins, &roles)?;
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
            // lock; the pins in memory follow so that later checks agree.
            for (d, line) in drift.iter().zip(&lines) {
                crate::util::progress::step(&format!(
                    "warning: {line}; building what is there (run `sanforge lock` to pin it)"
                ));
                if let Some(l) = pins.sources.iter_mut().find(|s| s.name == d.lock_name) {
                    l.sha256 = d.actual.clone();
                }
            }
        }
        let remote = super::remote::Remote::configure(
            &recipe,
            opts.remote_cache.as_deref(),
            opts.remote_cache_key.as_deref(),
        )?;
        let mut ctx = Ctx {
            recipe,
            cache,
            lock: Some(pins),
            lock_from_file,
            roles,
            node,
            node_text,
            node_configs,
            node_config_files,
            scst_conf,
            secret_refs,
            secrets,
            init_bin,
            init_sha256,
            jobs,
            out,
            inputs,
            keys: Keys::default(),
            remote,
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

/// Loads `--secrets FILE` (private, valid) and checks that it has every account the
/// node configs name; keeps only those.
fn load_secrets(
    path: &Path,
    refs: &[String],
    node_config: &Path,
) -> Result<crate::config::secrets::NodeSecrets> {
    let s = crate::config::secrets::NodeSecrets::load(path)?;
    let missing: Vec<&str> = refs
        .iter()
        .map(String::as_str)
        .filter(|r| s.chap(r).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "secrets file {} has no {} (named by {} or its scst.conf): add a `[chap.NAME]` table (user, password) for each",
            path.display(),
            missing
                .iter()
                .map(|m| format!("`[chap.{m}]`"))
                .collect::<Vec<_>>()
                .join(", "),
            node_config.display()
        );
    }
    Ok(s.subset(refs.iter().map(String::as_str)))
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

/// Every input of the build with the sha256 it has: the selected kernel's source (as
/// `kernel`), each named source and each package of the closure that is unpacked
/// (`package:NAME`), as the pins give them; and the `path` sources whose content
/// drifted from the pins. A `path` source is always keyed by its content (hashed now),
/// never by what the lock remembers: editing a local tree rebuilds, and the manifest
/// records what was really built.
fn resolve_inputs(
    recipe: &Recipe,
    pins: &Lock,
    roles: &std::collections::BTreeMap<String, crate::engine::apt::Role>,
) -> Result<(Vec<Input>, Vec<Drift>)> {
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
        let pinned = pins
            .get(lock_name)
            .filter(|l| l.kind == kind && l.origin == origin)
            .with_context(|| format!("internal error: input `{lock_name}` is not pinned"))?;
        let sha256 = match src {
            Source::Path { path, .. } => {
                let actual = crate::engine::fetch::path_sha256(path)
                    .with_context(|| format!("source `{lock_name}` ({origin})"))?;
                if pinned.sha256 != actual {
                    drift.push(Drift {
                        lock_name: lock_name.to_string(),
                        origin: origin.clone(),
                        expected: pinned.sha256.clone(),
                        actual: actual.clone(),
                    });
                }
                actual
            }
            _ => pinned.sha256.clone(),
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
    for p in &pins.packages {
        if roles.get(&p.name) == Some(&crate::engine::apt::Role::LeftOut) {
            continue;
        }
        inputs.push(Input {
            name: format!("package:{}", p.name),
            kind: "debian".to_string(),
            origin: format!("{}={}", p.name, p.version),
            sha256: p.sha256.clone(),
            tree: None,
        });
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
    Ok(node_config_entries(proj, entries)?
        .into_iter()
        .map(|(name, text, _)| (name, text))
        .collect())
}

/// [`node_configs_in`] with each file: (NAME, text, file), sorted by name.
pub fn node_config_entries(
    proj: &Project,
    entries: &[PathBuf],
) -> Result<Vec<(String, String, PathBuf)>> {
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
    let mut out: Vec<(String, String, PathBuf)> = Vec::new();
    let mut parsed: Vec<(PathBuf, String, crate::config::node::ValidNode)> = Vec::new();
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
        if out.iter().any(|(n, _, _)| *n == name) {
            bail!(
                "node config {}: a node named `{name}` is listed twice",
                f.display()
            );
        }
        let text = ufs::read_to_string(&f)?;
        let node = NodeConfig::parse(&f, &text)?;
        crate::config::secrets::refuse_inline(&f, &text, &node)?;
        parsed.push((f.clone(), text.clone(), node));
        out.push((name, text, f));
    }
    parsed.sort_by(|a, b| a.0.cmp(&b.0));
    check_node_set(&parsed)?;
    out.sort();
    Ok(out)
}

/// The nodes of one image: the init picks its config by MAC address, so two nodes
/// cannot share one.
fn check_node_set(nodes: &[(PathBuf, String, crate::config::node::ValidNode)]) -> Result<()> {
    use std::collections::BTreeMap;
    let mut macs: BTreeMap<String, &Path> = BTreeMap::new();
    for (f, text, n) in nodes {
        for (idx, i) in n.network.interfaces.iter().enumerate() {
            if let Some(m) = &i.mac {
                if let Some(first) = macs.insert(m.to_ascii_lowercase(), f) {
                    return Err(crate::config::spans::Errors::new(f, text)
                        .error(
                            crate::config::spans::at!["network", "interfaces", idx, "mac"],
                            format!(
                                "MAC address {m} of {} is also in {}: the init picks a node's config by MAC, so each node of an image needs its own",
                                i.name,
                                first.display()
                            ),
                        )
                    .into());
                }
            }
        }
    }
    Ok(())
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
