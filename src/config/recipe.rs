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
    Url {
        mirrors: Vec<String>,
        sha256: String,
    },
    Debian {
        package: String,
        version: String,
        member: Option<String>,
    },
    Path {
        /// Absolute.
        path: PathBuf,
        /// As written in the recipe (relative to the project root): what the lock,
        /// manifest and keys record, so they do not depend on where the project is.
        written: PathBuf,
    },
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
    /// SCST: its source, how the QLogic driver is built, firmware.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scst: Option<ScstSpec>,
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
    /// The name of this (default) kernel in the matrix; default: derived from the
    /// source (`linux-source-6.1` → `6.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// More kernels the recipe can build (`sanforge build --kernel NAME`,
    /// `sanforge matrix`), by name; each inherits what it does not override.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matrix: BTreeMap<String, MatrixKernelSpec>,
}

/// One entry of `[kernel.matrix]`: `"6.12" = { source = { … }, fragments = [ … ] }`.
/// Every field but `source` is optional: unset inherits the default kernel's.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MatrixKernelSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragments: Option<Vec<PathBuf>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbid: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<PathBuf>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localversion: Option<String>,
}

/// One kernel of the recipe's matrix, validated: the default kernel (`[kernel]`) or
/// an entry of `[kernel.matrix]` with the inherited fields filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelVariant {
    pub name: String,
    /// Its entry in the lock file: `kernel` for the default, `kernel@NAME` otherwise.
    pub lock_name: String,
    pub source: Source,
    /// `tinyconfig`, `defconfig`, `allnoconfig` or a config file relative to the root.
    pub base: String,
    /// Asserted options and options that must end up unset.
    pub options: BTreeMap<String, String>,
    pub forbid: Vec<String>,
    pub localversion: String,
    /// The kernel command line of the outputs (`[kernel] cmdline`, shared by the matrix).
    pub cmdline: String,
    /// Absolute fragment and patch paths.
    pub fragments: Vec<PathBuf>,
    pub patches: Vec<PathBuf>,
}

impl KernelVariant {
    pub fn is_default(&self) -> bool {
        self.lock_name == DEFAULT_KERNEL_INPUT
    }
}

/// The lock entry (and build input) name of the default kernel.
pub const DEFAULT_KERNEL_INPUT: &str = "kernel";

/// The lock entry name of the matrix kernel `name`.
pub fn matrix_kernel_input(name: &str) -> String {
    format!("{DEFAULT_KERNEL_INPUT}@{name}")
}

/// A name for the default kernel when `[kernel] name` is unset: `6.1` for Debian's
/// `linux-source-6.1`, else the version's (or URL file name's) major.minor, else
/// `default`.
pub fn derived_kernel_name(spec: &SourceSpec) -> String {
    fn major_minor(s: &str) -> Option<String> {
        let mut parts = s.split(|c: char| !c.is_ascii_digit());
        let a = parts.next().filter(|p| !p.is_empty())?;
        let b = parts.next().filter(|p| !p.is_empty())?;
        Some(format!("{a}.{b}"))
    }
    if let Some(p) = &spec.debian {
        if let Some(v) = p.strip_prefix("linux-source-").filter(|v| !v.is_empty()) {
            return v.to_string();
        }
    }
    if let Some(v) = spec.version.as_deref().and_then(major_minor) {
        return v;
    }
    if let Some(u) = &spec.url {
        for m in u.list() {
            let file = m.rsplit('/').next().unwrap_or("");
            if let Some(v) = file.strip_prefix("linux-").and_then(major_minor) {
                return v;
            }
        }
    }
    "default".to_string()
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

/// `[userland]` as written: the Debian packages the node runs, where apt finds them,
/// and how the image's file list is adjusted. Validated into [`Userland`]
/// (`config/userland.rs`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserlandSpec {
    #[serde(default = "default_suite")]
    pub suite: String,
    /// Archive components apt reads (`main`, `non-free-firmware`, …); default `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    /// Debian architecture of the packages; default `amd64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The apt sources; default: Debian's archive for the suite, its `-updates` and
    /// its `-security`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<super::userland::RepositorySpec>>,
    /// Debian packages the node runs: `["corosync", …]` or `{ corosync = "3.1.7-1", … }`
    /// (a version, a relation such as `">= 3.1"`, or `"*"`). apt adds what they depend on.
    #[serde(default)]
    pub packages: super::userland::PackagesSpec,
    /// More files to put in the image (paths or directories from any resolved
    /// package), with what they need.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Files of the listed packages to leave out (paths, directories or `*` globs).
    #[serde(default)]
    pub drop: Vec<String>,
    /// Symlinks to create in the image, `"/bin/sh" = "busybox"`.
    #[serde(default)]
    pub links: BTreeMap<String, String>,
}

fn default_suite() -> String {
    "bookworm".to_string()
}

/// A recipe without `[userland]`: Debian's default suite, no packages.
impl Default for UserlandSpec {
    fn default() -> Self {
        UserlandSpec {
            suite: default_suite(),
            components: None,
            architecture: None,
            repositories: None,
            packages: Default::default(),
            keep: Vec::new(),
            drop: Vec::new(),
            links: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeSpec {
    /// The node config baked into the image as /etc/sanforge/node.toml.
    pub config: PathBuf,
    /// More node configs (files, or directories of `NAME/node.toml` or `NAME.toml`),
    /// baked as /etc/sanforge/nodes/NAME.toml: one image for a whole cluster.
    #[serde(default)]
    pub configs: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutputsSpec {
    /// zstd level for the initramfs (1..=19).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// A raw GPT disk image (`disk.img`) with A/B slots; needs the source
    /// `systemd-boot` (systemd-bootx64.efi) in `[sources]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskOutputSpec>,
    /// Where the root file system lives: `initramfs` (default, the whole root in RAM)
    /// or `squashfs` (disk only: a dm-verity checked squashfs per slot, the initramfs
    /// holds only the init).
    #[serde(default, skip_serializing_if = "RootKind::is_initramfs")]
    pub root: RootKind,
}

/// `[outputs]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    /// zstd level of the initramfs (1..=19).
    pub zstd_level: i32,
    /// The disk image, when the recipe asks for one.
    pub disk: Option<DiskSpec>,
    /// The `disk` table as written (recorded in the manifest).
    pub disk_spec: Option<DiskOutputSpec>,
    pub root: RootKind,
}

/// `[outputs] root = "initramfs" | "squashfs"`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RootKind {
    #[default]
    Initramfs,
    Squashfs,
}

impl RootKind {
    pub fn is_initramfs(&self) -> bool {
        *self == RootKind::Initramfs
    }
}

/// `[outputs] disk = { size = "256MiB", boot-tries = 3 }`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DiskOutputSpec {
    pub size: String,
    #[serde(default = "default_boot_tries")]
    pub boot_tries: u32,
}

fn default_boot_tries() -> u32 {
    3
}

/// The source that provides systemd-boot's EFI binary for the disk image.
pub const SYSTEMD_BOOT_SOURCE: &str = "systemd-boot";

impl Default for OutputsSpec {
    fn default() -> Self {
        OutputsSpec {
            zstd_level: default_zstd_level(),
            disk: None,
            root: RootKind::Initramfs,
        }
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
    pub description: Option<String>,
    /// Seconds since the epoch used for every timestamp in the outputs.
    pub source_date_epoch: u64,
    /// `[target] stack`.
    pub stack: Stack,
    /// `[sources.NAME]` (and the sources `[scst]` names), validated.
    pub sources: BTreeMap<String, Source>,
    /// `[userland]`, validated: apt sources, requested packages, keep/drop, links.
    pub userland: super::userland::Userland,
    pub overlays: Vec<PathBuf>,
    pub node_config: PathBuf,
    /// `[node] configs` as written (relative to the project root).
    pub node_configs: Vec<PathBuf>,
    /// `[outputs]`, validated.
    pub outputs: Outputs,
    /// The validated `[scst]` table.
    pub scst: Option<Scst>,
    /// The text of the recipe file (kept for locating errors).
    pub text: String,
    /// Every kernel the recipe names, the default (`[kernel]`) first, then
    /// `[kernel.matrix]` by name; [`Recipe::kernel`] is the selected one.
    pub kernels: Vec<KernelVariant>,
    /// Index of the selected kernel in `kernels` (0: the default).
    pub selected: usize,
}

impl Recipe {
    pub fn source_date_epoch(&self) -> u64 {
        self.source_date_epoch
    }

    /// Loads and validates a recipe file.
    pub fn load(file: &Path) -> anyhow::Result<Recipe> {
        let text = crate::util::fs::read_to_string(file)?;
        Ok(Self::parse(file, &text)?)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Recipe, ConfigError> {
        let mut raw: RawRecipe = parse_toml(file, text)?;
        let err = |key: &str, msg: String| {
            let (l, c) = find_key(text, key);
            ConfigError::new(file, l, c, msg)
        };
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let recipe_dir = crate::util::fs::parent_dir(&abs);
        // recipes/NAME.toml → the project root is the parent of recipes/.
        let root = if recipe_dir
            .file_name()
            .map(|n| n == "recipes")
            .unwrap_or(false)
        {
            crate::util::fs::parent_dir(&recipe_dir)
        } else {
            recipe_dir.clone()
        };
        let name = match &raw.recipe.name {
            Some(n) => n.clone(),
            None => abs
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(err(
                "name",
                format!(
                    "recipe name `{name}` is invalid: expected letters, digits, `-`, `_` or `.`"
                ),
            ));
        }
        let kernel_source = validate_source(&raw.kernel.source, &root)
            .map_err(|m| err("source", format!("kernel source: {m}")))?;
        let mut sources = BTreeMap::new();
        for (n, s) in &raw.sources {
            let v = validate_source(s, &root).map_err(|m| err(n, format!("source `{n}`: {m}")))?;
            sources.insert(n.clone(), v);
        }
        let scst = match raw.scst.clone() {
            Some(spec) => Some(validate_scst(
                &spec,
                &root,
                &mut raw.sources,
                &mut sources,
                &err,
            )?),
            None => None,
        };
        let base = raw.kernel.base.as_str();
        if !matches!(base, "tinyconfig" | "defconfig" | "allnoconfig") && !root.join(base).is_file()
        {
            return Err(err("base", format!("kernel base `{base}`: expected `tinyconfig`, `defconfig`, `allnoconfig` or an existing config file")));
        }
        let mut fragments = Vec::new();
        for f in &raw.kernel.fragments {
            let p = resolve_fragment(&root, f);
            if !p.is_file() {
                return Err(err(
                    "fragments",
                    format!(
                        "kernel fragment `{}` not found (looked at {})",
                        f.display(),
                        p.display()
                    ),
                ));
            }
            fragments.push(p);
        }
        check_options(&raw.kernel.options).map_err(|(k, m)| err(&k, m))?;
        check_forbid(&raw.kernel.forbid).map_err(|m| err("forbid", m))?;
        let patches = raw
            .kernel
            .patches
            .iter()
            .map(|p| {
                let a = root.join(p);
                if a.is_file() {
                    Ok(a)
                } else {
                    Err(err("patches", format!("patch `{}` not found", p.display())))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let kernels = validate_kernels(
            &raw.kernel,
            &kernel_source,
            &fragments,
            &patches,
            &root,
            &err,
        )?;
        let overlays = raw
            .overlays
            .iter()
            .map(|p| {
                let a = root.join(p);
                if a.is_dir() {
                    Ok(a)
                } else {
                    Err(err(
                        "overlays",
                        format!("overlay directory `{}` not found", p.display()),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let node_config = root.join(&raw.node.config);
        if !node_config.is_file() {
            return Err(err(
                "config",
                format!("node config `{}` not found", raw.node.config.display()),
            ));
        }
        if !(1..=19).contains(&raw.outputs.zstd_level) {
            return Err(err(
                "zstd-level",
                format!("zstd-level {}: expected 1 to 19", raw.outputs.zstd_level),
            ));
        }
        if let Some(d) = &raw.outputs.disk {
            parse_disk_size(&d.size).map_err(|m| err("disk", m))?;
            if d.boot_tries > 9 {
                return Err(err(
                    "disk",
                    format!("boot-tries {}: expected 0 to 9", d.boot_tries),
                ));
            }
            if !sources.contains_key(SYSTEMD_BOOT_SOURCE) {
                return Err(err("disk", format!("the disk output needs systemd-boot: add a source `{SYSTEMD_BOOT_SOURCE}` to [sources], e.g. {{ debian = \"systemd-boot-efi\", version = \"…\", member = \"usr/lib/systemd/boot/efi/systemd-bootx64.efi\" }}")));
            }
        }
        if raw.outputs.root == RootKind::Squashfs && raw.outputs.disk.is_none() {
            return Err(err("root", "root = \"squashfs\" puts the root on disk partitions: it needs `disk = { size = \"…\" }` in [outputs] (PXE-only nodes keep root = \"initramfs\")".to_string()));
        }
        let userland = super::userland::validate(&raw.userland).map_err(|(k, m)| err(&k, m))?;
        let disk = raw
            .outputs
            .disk
            .as_ref()
            .map(|d| -> Result<DiskSpec, ConfigError> {
                Ok(DiskSpec {
                    size: parse_disk_size(&d.size).map_err(|m| err("disk", m))?,
                    boot_tries: d.boot_tries,
                })
            })
            .transpose()?;
        Ok(Recipe {
            name,
            file: abs,
            root,
            description: raw.recipe.description,
            source_date_epoch: raw.recipe.source_date_epoch,
            stack: raw.target.stack,
            sources,
            userland,
            overlays,
            node_config,
            node_configs: raw.node.configs,
            outputs: Outputs {
                zstd_level: raw.outputs.zstd_level,
                disk,
                disk_spec: raw.outputs.disk,
                root: raw.outputs.root,
            },
            scst,
            text: text.to_string(),
            kernels,
            selected: 0,
        })
    }

    /// The selected kernel (the default unless `select_kernel` chose another).
    pub fn kernel(&self) -> &KernelVariant {
        &self.kernels[self.selected.min(self.kernels.len() - 1)]
    }

    /// The names of every kernel, the default first.
    pub fn kernel_names(&self) -> Vec<&str> {
        self.kernels.iter().map(|k| k.name.as_str()).collect()
    }

    /// This recipe with kernel `name` selected: [`Recipe::kernel`] becomes that
    /// kernel, so every stage builds it.
    pub fn select_kernel(&self, name: &str) -> anyhow::Result<Recipe> {
        let Some(i) = self.kernels.iter().position(|k| k.name == name) else {
            anyhow::bail!(
                "{}: no kernel named `{name}`: expected one of {}",
                self.file.display(),
                self.kernel_names()
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let mut r = self.clone();
        r.selected = i;
        Ok(r)
    }

    /// The validated `[outputs] disk` table, if the recipe asks for a disk image.
    pub fn disk(&self) -> Option<DiskSpec> {
        self.outputs.disk
    }

    /// True when the recipe puts the root on a dm-verity checked squashfs.
    pub fn squashfs_root(&self) -> bool {
        self.outputs.root == RootKind::Squashfs
    }

    /// The lock file beside the recipe: `recipes/NAME.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.file.with_extension("lock")
    }
}

/// Asserted options: `CONFIG_FOO = "value"`. Err: (the offending key, the message).
fn check_options(options: &BTreeMap<String, String>) -> Result<(), (String, String)> {
    for (k, v) in options {
        if !k.starts_with("CONFIG_")
            || k.len() <= 7
            || !k[7..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err((
                k.clone(),
                format!("kernel option `{k}`: expected a name like CONFIG_FOO"),
            ));
        }
        if v.is_empty() {
            return Err((
                k.clone(),
                format!("kernel option `{k}`: expected a value (y, m, n, a number or a string)"),
            ));
        }
    }
    Ok(())
}

fn check_forbid(forbid: &[String]) -> Result<(), String> {
    match forbid.iter().find(|k| !k.starts_with("CONFIG_")) {
        Some(k) => Err(format!(
            "forbidden option `{k}`: expected a name like CONFIG_FOO"
        )),
        None => Ok(()),
    }
}

fn resolve_fragment(root: &Path, f: &Path) -> PathBuf {
    if f.components().count() == 1 {
        root.join("kernel-configs").join(f)
    } else {
        root.join(f)
    }
}

fn valid_kernel_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The default kernel and every `[kernel.matrix]` entry, validated, with the inherited
/// fields filled in.
fn validate_kernels(
    k: &KernelSpec,
    source: &Source,
    fragments: &[PathBuf],
    patches: &[PathBuf],
    root: &Path,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Vec<KernelVariant>, ConfigError> {
    let default_name = k
        .name
        .clone()
        .unwrap_or_else(|| derived_kernel_name(&k.source));
    if !valid_kernel_name(&default_name) {
        return Err(err(
            "name",
            format!("kernel name `{default_name}`: expected letters, digits, `-`, `_` or `.`"),
        ));
    }
    let default = KernelVariant {
        name: default_name.clone(),
        lock_name: DEFAULT_KERNEL_INPUT.to_string(),
        source: source.clone(),
        base: k.base.clone(),
        options: k.options.clone(),
        forbid: k.forbid.clone(),
        localversion: k.localversion.clone(),
        cmdline: k.cmdline.clone(),
        fragments: fragments.to_vec(),
        patches: patches.to_vec(),
    };
    let mut out = vec![default.clone()];
    for (name, m) in &k.matrix {
        let what = format!("kernel matrix entry `{name}`");
        if !valid_kernel_name(name) {
            return Err(err(
                name,
                format!("{what}: expected a name of letters, digits, `-`, `_` or `.`"),
            ));
        }
        if *name == default_name {
            return Err(err(
                name,
                format!("{what}: the default kernel ([kernel]) is already named `{default_name}`: expected a unique name (set [kernel] name = \"…\" to rename the default)"),
            ));
        }
        let Some(src_spec) = &m.source else {
            return Err(err(
                name,
                format!("{what}: expected a `source`, e.g. {{ source = {{ debian = \"linux-source-6.12\", version = \"…\", member = \"usr/src/linux-source-6.12.tar.xz\" }} }}"),
            ));
        };
        let src = validate_source(src_spec, root)
            .map_err(|e| err(name, format!("{what}: source: {e}")))?;
        let mut spec = default.clone();
        spec.name = name.clone();
        spec.lock_name = matrix_kernel_input(name);
        spec.source = src;
        let mut frags = fragments.to_vec();
        if let Some(fs) = &m.fragments {
            frags.clear();
            for f in fs {
                let p = resolve_fragment(root, f);
                if !p.is_file() {
                    return Err(err(
                        name,
                        format!(
                            "{what}: kernel fragment `{}` not found (looked at {})",
                            f.display(),
                            p.display()
                        ),
                    ));
                }
                frags.push(p);
            }
        }
        if let Some(b) = &m.base {
            if !matches!(b.as_str(), "tinyconfig" | "defconfig" | "allnoconfig")
                && !root.join(b).is_file()
            {
                return Err(err(name, format!("{what}: kernel base `{b}`: expected `tinyconfig`, `defconfig`, `allnoconfig` or an existing config file")));
            }
            spec.base = b.clone();
        }
        if let Some(o) = &m.options {
            check_options(o).map_err(|(_, m)| err(name, format!("{what}: {m}")))?;
            spec.options = o.clone();
        }
        if let Some(f) = &m.forbid {
            check_forbid(f).map_err(|m| err(name, format!("{what}: {m}")))?;
            spec.forbid = f.clone();
        }
        let mut pats = patches.to_vec();
        if let Some(ps) = &m.patches {
            pats.clear();
            for p in ps {
                let a = root.join(p);
                if !a.is_file() {
                    return Err(err(
                        name,
                        format!("{what}: patch `{}` not found", p.display()),
                    ));
                }
                pats.push(a);
            }
        }
        if let Some(l) = &m.localversion {
            spec.localversion = l.clone();
        }
        spec.fragments = frags;
        spec.patches = pats;
        out.push(spec);
    }
    Ok(out)
}

fn validate_source(s: &SourceSpec, root: &Path) -> Result<Source, String> {
    let kinds = [s.url.is_some(), s.debian.is_some(), s.path.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if kinds != 1 {
        return Err("expected exactly one of `url`, `debian` or `path`".into());
    }
    if let Some(u) = &s.url {
        let mirrors = u.list();
        if mirrors.is_empty() {
            return Err("`url` is an empty list".into());
        }
        for m in &mirrors {
            if !(m.starts_with("http://") || m.starts_with("https://") || m.starts_with("file://"))
            {
                return Err(format!("url `{m}`: expected http://, https:// or file://"));
            }
        }
        let sha = s.sha256.clone().ok_or("a `url` source needs `sha256`")?;
        if !crate::util::hash::is_sha256(&sha) {
            return Err(format!("sha256 `{sha}`: expected 64 lowercase hex digits"));
        }
        return Ok(Source::Url {
            mirrors,
            sha256: sha,
        });
    }
    if let Some(p) = &s.debian {
        let version = s
            .version
            .clone()
            .ok_or("a `debian` source needs `version`")?;
        return Ok(Source::Debian {
            package: p.clone(),
            version,
            member: s.member.clone(),
        });
    }
    let written = s.path.clone().unwrap_or_default();
    Ok(Source::Path {
        path: root.join(&written),
        written,
    })
}

/// How SCST's QLogic driver gets into the image (reference/scst.md §A3).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DriverMode {
    /// The documented build: `qla2xxx_scst.ko` + `qla2x00tgt.ko` against the kernel
    /// build tree; the in-tree `qla2xxx` stays unmodified (and is blacklisted).
    #[default]
    OutOfTree,
    /// The legacy swap: the kernel's `drivers/scsi/qla2xxx` is replaced by SCST's
    /// tree and the version-matched SCST kernel patches are applied before the kernel
    /// build; only the target add-on and the SCST core are built out of tree.
    InTree,
}

impl DriverMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DriverMode::OutOfTree => "out-of-tree",
            DriverMode::InTree => "in-tree",
        }
    }
}

/// `[scst]` as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ScstSpec {
    /// The SCST release archive (url + sha256) or a local tree/archive (`path`).
    pub source: SourceSpec,
    #[serde(default)]
    pub driver_mode: DriverMode,
    /// SCST components to build (make directories), in any order; built in SCST's
    /// order. Default: `scst` and `qla2x00t-32gbit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<String>>,
    /// Firmware files the image provides, by the name modules request.
    #[serde(default)]
    pub firmware: Vec<FirmwareSpec>,
    /// Firmware names requested by modules that the image deliberately omits.
    #[serde(default)]
    pub waive_firmware: Vec<String>,
}

/// One firmware file: its name under /lib/firmware and where it comes from (the
/// fields of a source: `url` + `sha256`, `path`, or `debian` + `version` + `member`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FirmwareSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<UrlList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

impl FirmwareSpec {
    pub fn source_spec(&self) -> SourceSpec {
        SourceSpec {
            url: self.url.clone(),
            sha256: self.sha256.clone(),
            debian: self.debian.clone(),
            version: self.version.clone(),
            member: self.member.clone(),
            path: self.path.clone(),
        }
    }
}

/// SCST components sanforge knows how to build: name, make directory (relative to
/// the SCST tree), in the order SCST's top-level Makefile builds them (the target
/// drivers link against `scst/src/Module.symvers`, so `scst` comes first).
pub const SCST_COMPONENTS: &[(&str, &str)] = &[
    ("scst", "scst"),
    ("iscsi-scst", "iscsi-scst"),
    ("qla2x00t-32gbit", "qla2x00t-32gbit/qla2x00-target"),
    ("qla2x00t", "qla2x00t/qla2x00-target"),
    ("srpt", "srpt"),
    ("scst_local", "scst_local"),
    ("fcst", "fcst"),
];

/// The validated `[scst]` table. Its source is also in `Recipe::sources` as `scst`,
/// each firmware file as `firmware:NAME` (so lock, fetch and plan see them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scst {
    pub source: Source,
    pub driver_mode: DriverMode,
    /// Components in build order.
    pub components: Vec<String>,
    /// Firmware name → source.
    pub firmware: BTreeMap<String, Source>,
    pub waived: Vec<String>,
}

impl Scst {
    /// The lock/input name of a firmware file.
    pub fn firmware_input(name: &str) -> String {
        format!("firmware:{name}")
    }
}

fn validate_scst(
    spec: &ScstSpec,
    root: &Path,
    raw_sources: &mut BTreeMap<String, SourceSpec>,
    sources: &mut BTreeMap<String, Source>,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Scst, ConfigError> {
    let source = validate_source(&spec.source, root)
        .map_err(|m| err("source", format!("scst source: {m}")))?;
    let requested = spec
        .modules
        .clone()
        .unwrap_or_else(|| vec!["scst".to_string(), "qla2x00t-32gbit".to_string()]);
    if requested.is_empty() {
        return Err(err(
            "modules",
            "scst modules: expected at least one component (e.g. \"scst\")".into(),
        ));
    }
    for m in &requested {
        if !SCST_COMPONENTS.iter().any(|(n, _)| n == m) {
            let known: Vec<&str> = SCST_COMPONENTS.iter().map(|(n, _)| *n).collect();
            return Err(err(
                "modules",
                format!("scst modules: unknown component `{m}`: expected one of {} (device handlers such as scst_vdisk are built with `scst`)", known.join(", ")),
            ));
        }
    }
    let components: Vec<String> = SCST_COMPONENTS
        .iter()
        .filter(|(n, _)| requested.iter().any(|r| r == n))
        .map(|(n, _)| n.to_string())
        .collect();
    if !components.iter().any(|c| c == "scst") {
        return Err(err(
            "modules",
            "scst modules: `scst` (the core) is required: every other component links against it"
                .into(),
        ));
    }
    if components.iter().any(|c| c == "qla2x00t")
        && components.iter().any(|c| c == "qla2x00t-32gbit")
    {
        return Err(err("modules", "scst modules: choose one of `qla2x00t-32gbit` and `qla2x00t` (the two QLogic trees cannot be mixed)".into()));
    }
    if spec.driver_mode == DriverMode::InTree
        && !components.iter().any(|c| c.starts_with("qla2x00t"))
    {
        return Err(err("driver-mode", "scst driver-mode = \"in-tree\" swaps the QLogic driver: add `qla2x00t-32gbit` to modules".into()));
    }
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with('/')
            && n.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
    };
    let mut firmware = BTreeMap::new();
    let mut inputs = vec![("scst".to_string(), spec.source.clone(), source.clone())];
    for f in &spec.firmware {
        if !valid_name(&f.name) {
            return Err(err(
                "firmware",
                format!(
                    "firmware name `{}`: expected a relative file name under /lib/firmware",
                    f.name
                ),
            ));
        }
        let s = validate_source(&f.source_spec(), root)
            .map_err(|m| err("firmware", format!("firmware `{}`: {m}", f.name)))?;
        if firmware.insert(f.name.clone(), s.clone()).is_some() {
            return Err(err(
                "firmware",
                format!("firmware `{}` is listed twice", f.name),
            ));
        }
        inputs.push((Scst::firmware_input(&f.name), f.source_spec(), s));
    }
    for w in &spec.waive_firmware {
        if !valid_name(w) {
            return Err(err(
                "waive-firmware",
                format!("waived firmware `{w}`: expected a file name"),
            ));
        }
        if firmware.contains_key(w) {
            return Err(err(
                "waive-firmware",
                format!("firmware `{w}` is both provided and waived"),
            ));
        }
    }
    // Named inputs like any [sources.NAME]: the lock pins them, fetch and plan see them.
    for (name, raw, v) in inputs {
        if raw_sources.contains_key(&name) {
            return Err(err(
                &name,
                format!("source `{name}` is defined by [scst]: remove it from [sources]"),
            ));
        }
        raw_sources.insert(name.clone(), raw);
        sources.insert(name, v);
    }
    Ok(Scst {
        source,
        driver_mode: spec.driver_mode,
        components,
        firmware,
        waived: spec.waive_firmware.clone(),
    })
}

/// `[outputs] disk = { size = "256MiB", boot-tries = 3 }`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpec {
    /// Bytes, a multiple of 1 MiB.
    pub size: u64,
    /// Tries a fresh entry gets before systemd-boot falls back (0: no boot counting).
    pub boot_tries: u32,
}

/// Parses `256MiB`, `1GiB`, `64M` (binary units; a bare number is MiB).
pub fn parse_disk_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("disk size `{s}`: expected a number of MiB or GiB, e.g. \"256MiB\"")
    })?;
    let mult = match unit.trim() {
        "" | "M" | "MiB" => 1u64 << 20,
        "G" | "GiB" => 1024 << 20,
        u => {
            return Err(format!(
                "disk size `{s}`: unknown unit `{u}` (expected MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("disk size `{s}`: out of range"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(debian: Option<&str>, version: Option<&str>, url: Option<&str>) -> SourceSpec {
        SourceSpec {
            debian: debian.map(str::to_string),
            version: version.map(str::to_string),
            url: url.map(|u| UrlList::One(u.to_string())),
            ..Default::default()
        }
    }

    #[test]
    fn default_kernel_name_is_derived_from_the_source() {
        let n = |s| derived_kernel_name(&s);
        assert_eq!(
            n(spec(Some("linux-source-6.1"), Some("6.1.192-2"), None)),
            "6.1"
        );
        assert_eq!(n(spec(Some("linux"), Some("6.12.117-1"), None)), "6.12");
        assert_eq!(
            n(spec(
                None,
                None,
                Some("https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.6.58.tar.xz")
            )),
            "6.6"
        );
        assert_eq!(n(spec(None, None, Some("file:///x/src.tar"))), "default");
        assert_eq!(n(SourceSpec::default()), "default");
        assert_eq!(matrix_kernel_input("6.12"), "kernel@6.12");
    }
}
