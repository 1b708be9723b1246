//! Recipe v1: what to build. Read by `sanforge plan/fetch/lock/build`.
//!
//! A recipe names its kernel source, the kernel config (base + fragments + asserted
//! options), patches, the target stack, the Debian userland, overlays, the node config
//! baked into the image and the outputs. Relative paths are resolved against the
//! project root (the directory that holds `recipes/`).

use super::{find_key, parse_toml, ConfigError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A source as written in the recipe: exactly one of `url`, `debian` or `path`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceSpec {
    /// Ordered list of mirrors; the first that serves the right bytes wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A Debian binary package name (`version` required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// For a Debian package: the file inside the package that is the actual source
    /// (e.g. `usr/src/linux-source-6.1.tar.xz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// A local file or directory (relative to the project root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

/// `url = "…"` or `url = ["…", "…"]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum UrlList {
    One(String),
    Many(Vec<String>),
}

impl UrlList {
    pub fn list(&self) -> Vec<String> {
        match self {
            UrlList::One(s) => vec![s.clone()],
            UrlList::Many(v) => v.clone(),
        }
    }
}

/// A validated source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    Url { mirrors: Vec<String>, sha256: String },
    Debian { package: String, version: String, member: Option<String> },
    Path { path: PathBuf },
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawRecipe {
    pub recipe: RecipeMeta,
    pub kernel: KernelSpec,
    #[serde(default)]
    pub target: TargetSpec,
    #[serde(default)]
    pub userland: UserlandSpec,
    #[serde(default)]
    pub overlays: Vec<PathBuf>,
    pub node: NodeSpec,
    #[serde(default)]
    pub outputs: OutputsSpec,
    /// Extra named sources (SCST, firmware, …) by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecipeMeta {
    /// Defaults to the file name without `.toml`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Seconds since the epoch used for every timestamp in the outputs.
    pub source_date_epoch: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KernelSpec {
    pub source: SourceSpec,
    /// `tinyconfig`, `defconfig`, `allnoconfig` or a path to a full config file.
    pub base: String,
    #[serde(default)]
    pub fragments: Vec<PathBuf>,
    /// Options the recipe asserts, e.g. `CONFIG_SQUASHFS = "y"` (also `"m"`, `"n"`, a
    /// number or a quoted string value).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Options that must end up unset.
    #[serde(default)]
    pub forbid: Vec<String>,
    /// Kernel patches applied in order (paths relative to the project root).
    #[serde(default)]
    pub patches: Vec<PathBuf>,
    #[serde(default)]
    pub localversion: String,
    /// Kernel command line written into boot.ipxe and used by `sanforge run`.
    #[serde(default = "default_cmdline")]
    pub cmdline: String,
}

fn default_cmdline() -> String {
    "console=ttyS0 panic=-1".to_string()
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    #[default]
    Lio,
    Scst,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetSpec {
    #[serde(default)]
    pub stack: Stack,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserlandSpec {
    #[serde(default = "default_suite")]
    pub suite: String,
    /// Debian packages, `name = "version"`.
    #[serde(default)]
    pub packages: BTreeMap<String, String>,
    /// Files from the packages that the node runs; the image keeps these and the ELF
    /// closure of their shared libraries. Empty: keep every file of the packages
    /// except documentation, man pages and locales.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Symlinks to create in the image, `"/bin/sh" = "busybox"`.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
}

fn default_suite() -> String {
    "bookworm".to_string()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeSpec {
    /// The node config baked into the image as /etc/sanforge/node.toml.
    pub config: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputsSpec {
    /// zstd level for the initramfs (1..=19).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
}

impl Default for OutputsSpec {
    fn default() -> Self {
        OutputsSpec { zstd_level: default_zstd_level() }
    }
}

fn default_zstd_level() -> i32 {
    19
}

/// A recipe after validation; paths are absolute.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub file: PathBuf,
    /// Project root: the directory that holds `recipes/`.
    pub root: PathBuf,
    pub raw: RawRecipe,
    pub kernel_source: Source,
    pub sources: BTreeMap<String, Source>,
    pub fragments: Vec<PathBuf>,
    pub patches: Vec<PathBuf>,
    pub overlays: Vec<PathBuf>,
    pub node_config: PathBuf,
    /// The text of the recipe file (kept for locating errors).
    pub text: String,
}

impl Recipe {
    pub fn source_date_epoch(&self) -> u64 {
        self.raw.recipe.source_date_epoch
    }

    /// Loads and validates a recipe file.
    pub fn load(file: &Path) -> anyhow::Result<Recipe> {
        let text = crate::util::fs::read_to_string(file)?;
        Ok(Self::parse(file, &text)?)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Recipe, ConfigError> {
        let raw: RawRecipe = parse_toml(file, text)?;
        let err = |key: &str, msg: String| {
            let (l, c) = find_key(text, key);
            ConfigError::new(file, l, c, msg)
        };
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let recipe_dir = crate::util::fs::parent_dir(&abs);
        // recipes/NAME.toml → the project root is the parent of recipes/.
        let root = if recipe_dir.file_name().map(|n| n == "recipes").unwrap_or(false) {
            crate::util::fs::parent_dir(&recipe_dir)
        } else {
            recipe_dir.clone()
        };
        let name = match &raw.recipe.name {
            Some(n) => n.clone(),
            None => abs.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
            return Err(err("name", format!("recipe name `{name}` is invalid: expected letters, digits, `-`, `_` or `.`")));
        }
        let kernel_source = validate_source(&raw.kernel.source, &root).map_err(|m| err("source", format!("kernel source: {m}")))?;
        let mut sources = BTreeMap::new();
        for (n, s) in &raw.sources {
            let v = validate_source(s, &root).map_err(|m| err(n, format!("source `{n}`: {m}")))?;
            sources.insert(n.clone(), v);
        }
        let base = raw.kernel.base.as_str();
        if !matches!(base, "tinyconfig" | "defconfig" | "allnoconfig") && !root.join(base).is_file() {
            return Err(err("base", format!("kernel base `{base}`: expected `tinyconfig`, `defconfig`, `allnoconfig` or an existing config file")));
        }
        let mut fragments = Vec::new();
        for f in &raw.kernel.fragments {
            let p = if f.components().count() == 1 { root.join("kernel-configs").join(f) } else { root.join(f) };
            if !p.is_file() {
                return Err(err("fragments", format!("kernel fragment `{}` not found (looked at {})", f.display(), p.display())));
            }
            fragments.push(p);
        }
        for (k, v) in &raw.kernel.options {
            if !k.starts_with("CONFIG_") || k.len() <= 7 || !k[7..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(err(k, format!("kernel option `{k}`: expected a name like CONFIG_FOO")));
            }
            if v.is_empty() {
                return Err(err(k, format!("kernel option `{k}`: expected a value (y, m, n, a number or a string)")));
            }
        }
        for k in &raw.kernel.forbid {
            if !k.starts_with("CONFIG_") {
                return Err(err("forbid", format!("forbidden option `{k}`: expected a name like CONFIG_FOO")));
            }
        }
        let patches = raw
            .kernel
            .patches
            .iter()
            .map(|p| {
                let a = root.join(p);
                if a.is_file() { Ok(a) } else { Err(err("patches", format!("patch `{}` not found", p.display()))) }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let overlays = raw
            .overlays
            .iter()
            .map(|p| {
                let a = root.join(p);
                if a.is_dir() { Ok(a) } else { Err(err("overlays", format!("overlay directory `{}` not found", p.display()))) }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let node_config = root.join(&raw.node.config);
        if !node_config.is_file() {
            return Err(err("config", format!("node config `{}` not found", raw.node.config.display())));
        }
        if !(1..=19).contains(&raw.outputs.zstd_level) {
            return Err(err("zstd-level", format!("zstd-level {}: expected 1 to 19", raw.outputs.zstd_level)));
        }
        for (name, version) in &raw.userland.packages {
            if version.is_empty() {
                return Err(err(name, format!("package `{name}`: expected a pinned version")));
            }
        }
        Ok(Recipe {
            name,
            file: abs,
            root,
            kernel_source,
            sources,
            fragments,
            patches,
            overlays,
            node_config,
            text: text.to_string(),
            raw,
        })
    }

    /// The lock file beside the recipe: `recipes/NAME.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.file.with_extension("lock")
    }
}

fn validate_source(s: &SourceSpec, root: &Path) -> Result<Source, String> {
    let kinds = [s.url.is_some(), s.debian.is_some(), s.path.is_some()].iter().filter(|b| **b).count();
    if kinds != 1 {
        return Err("expected exactly one of `url`, `debian` or `path`".into());
    }
    if let Some(u) = &s.url {
        let mirrors = u.list();
        if mirrors.is_empty() {
            return Err("`url` is an empty list".into());
        }
        for m in &mirrors {
            if !(m.starts_with("http://") || m.starts_with("https://") || m.starts_with("file://")) {
                return Err(format!("url `{m}`: expected http://, https:// or file://"));
            }
        }
        let sha = s.sha256.clone().ok_or("a `url` source needs `sha256`")?;
        if !crate::util::hash::is_sha256(&sha) {
            return Err(format!("sha256 `{sha}`: expected 64 lowercase hex digits"));
        }
        return Ok(Source::Url { mirrors, sha256: sha });
    }
    if let Some(p) = &s.debian {
        let version = s.version.clone().ok_or("a `debian` source needs `version`")?;
        return Ok(Source::Debian { package: p.clone(), version, member: s.member.clone() });
    }
    let path = s.path.clone().unwrap_or_default();
    Ok(Source::Path { path: root.join(path) })
}
