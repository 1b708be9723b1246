//! Recipe v1: what to build. Read by `sanforge plan/fetch/lock/build`.
//!
//! A recipe names its kernel source, the kernel config (base + fragments + asserted
//! options), patches, the target stack, the Debian userland, overlays, the node config
//! baked into the image and the outputs. Relative paths are resolved against the
//! project root (the directory that holds `recipes/`).

use super::spans::{at, Errors, Seg};
use super::values::{self, parse_size};
use super::{parse_toml, ConfigError};
use crate::util::hash::TreeHash;
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
    /// For a `url` or `path` source: the tree hash (`tree-v1:…`) of its unpacked
    /// content, instead of the sha256 of one archive (any archive or directory with
    /// the same files will do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
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
    /// An archive from the first mirror whose unpacked tree has this tree hash.
    UrlTree {
        mirrors: Vec<String>,
        tree: TreeHash,
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
        /// The tree hash the path (a directory or an archive) must have, if pinned.
        tree: Option<TreeHash>,
    },
}

impl Source {
    /// The tree hash that pins this source, if it is pinned by content.
    pub fn tree(&self) -> Option<&TreeHash> {
        match self {
            Source::UrlTree { tree, .. } => Some(tree),
            Source::Path { tree, .. } => tree.as_ref(),
            _ => None,
        }
    }
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
    /// Directories outside the project that the recipe's paths (sources, overlays,
    /// kernel files, node configs) may name; everything else must stay inside the
    /// project directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_outside_project: Vec<PathBuf>,
    /// Modes of paths in the image, `"/etc/sanforge/secret" = "0600"`: overlay files
    /// are otherwise 0644, or 0755 when executable (what git records), directories 0755.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modes: BTreeMap<String, String>,
    pub node: NodeSpec,
    #[serde(default)]
    pub outputs: OutputsSpec,
    /// Extra named sources (SCST, firmware, …) by name.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSpec>,
    /// SCST: its source, how the QLogic driver is built, firmware.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scst: Option<ScstSpec>,
    /// The firmware closure of a recipe without `[scst]` (which has its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareTableSpec>,
}

/// `[firmware]` as written: the files the image provides, by the name modules request,
/// and the requested files it deliberately goes without.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FirmwareTableSpec {
    #[serde(default)]
    pub files: Vec<FirmwareSpec>,
    /// Each a name or `{ name = "…", reason = "…" }`; `PREFIX*` waives every requested
    /// file that starts with PREFIX (`rtl_nic/*`).
    #[serde(default)]
    pub waive: Vec<WaiveSpec>,
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
    /// `[kernel.module-signing]`: the owner's module-signing key (shared by the matrix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_signing: Option<super::module_signing::ModuleSigningSpec>,
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
    /// The ext4 `SANFORGE-STATE` partition for the targets' persistent state (PR,
    /// ALUA): a size such as `"16MiB"`; none unless given (or `"none"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
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
    /// `allow-outside-project`, resolved (symlinks followed): the only directories
    /// outside `root` that the recipe's paths may lead to.
    pub allowed_outside: Vec<PathBuf>,
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
    /// Explicit modes of image paths (relative, without the leading `/`).
    pub modes: BTreeMap<String, u32>,
    pub node_config: PathBuf,
    /// `[node] configs` as written (relative to the project root).
    pub node_configs: Vec<PathBuf>,
    /// `[outputs]`, validated.
    pub outputs: Outputs,
    /// The validated `[scst]` table.
    pub scst: Option<Scst>,
    /// The validated `[firmware]` table (empty and not `declared` when the recipe has
    /// none: its closure is then not checked). With `[scst]`, the SCST table's firmware
    /// applies instead ([`Scst::firmware_set`]).
    pub firmware: FirmwareSet,
    /// The text of the recipe file (kept for locating errors).
    pub text: String,
    /// Every kernel the recipe names, the default (`[kernel]`) first, then
    /// `[kernel.matrix]` by name; [`Recipe::kernel`] is the selected one.
    pub kernels: Vec<KernelVariant>,
    /// Index of the selected kernel in `kernels` (0: the default).
    pub selected: usize,
    /// `[kernel.module-signing]`, validated (None: modules are not signed).
    pub module_signing: Option<super::module_signing::ModuleSigning>,
}

/// What `source-date-epoch` may be: the 32-bit timestamps of cpio and squashfs.
const SDE_RANGE: &str = "0 to 4294967295";

impl Recipe {
    pub fn source_date_epoch(&self) -> u64 {
        self.source_date_epoch
    }

    /// Loads and validates a recipe file.
    pub fn load(file: &Path) -> anyhow::Result<Recipe> {
        let text = crate::util::fs::read_to_string(file)?;
        Ok(Self::parse(file, &text)?)
    }

    /// Parses and validates a recipe, reporting every error of the file, each at the
    /// value at fault.
    pub fn parse(file: &Path, text: &str) -> Result<Recipe, ConfigError> {
        let mut raw: RawRecipe = parse_toml(file, text).map_err(|mut e| {
            // A negative one is out of the range the outputs carry, not just of u64.
            if e.message.starts_with("source-date-epoch ") {
                e.message = e.message.replace(&format!("0 to {}", u64::MAX), SDE_RANGE);
            }
            e
        })?;
        let mut errs = Errors::new(file, text);
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
        // It names the output directory (`out/NAME`) and the lock: a plain file name.
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            errs.at(
                at!["recipe", "name"],
                format!(
                    "recipe name `{name}` is invalid: expected a plain name of letters, digits, `-`, `_` or `.` that does not start with `.`"
                ),
            );
        }
        let mut allowed_outside = Vec::new();
        for (i, a) in raw.allow_outside_project.iter().enumerate() {
            let p = root.join(a);
            if !p.is_dir() {
                errs.at(
                    at!["allow-outside-project", i],
                    format!(
                        "allow-outside-project `{}`: expected an existing directory (looked at {})",
                        a.display(),
                        p.display()
                    ),
                );
                continue;
            }
            match crate::util::paths::resolve(&p) {
                Ok(real) => allowed_outside.push(real),
                Err(m) => errs.at(
                    at!["allow-outside-project", i],
                    format!("allow-outside-project `{}`: {m}", a.display()),
                ),
            }
        }
        let proj = Project {
            root: &root,
            allowed: &allowed_outside,
        };
        // An invalid kernel source is reported; the placeholder only lets the other
        // checks run (the recipe is not returned).
        let kernel_source = check_source(
            &mut errs,
            at!["kernel", "source"],
            "kernel source",
            &raw.kernel.source,
            &proj,
        )
        .unwrap_or_else(|| Source::Path {
            path: root.clone(),
            written: PathBuf::new(),
            tree: None,
        });
        let mut sources = BTreeMap::new();
        for (n, s) in &raw.sources {
            let what = format!("source `{n}`");
            if let Some(v) = check_source(&mut errs, at!["sources", n], &what, s, &proj) {
                sources.insert(n.clone(), v);
            }
        }
        let scst = raw
            .scst
            .clone()
            .map(|spec| validate_scst(&spec, &proj, &mut raw.sources, &mut sources, &mut errs));
        let firmware = match (&raw.firmware, &scst) {
            (Some(_), Some(_)) => {
                errs.key(
                    at!["firmware"],
                    "[firmware]: an SCST recipe lists its firmware in [scst] firmware and [scst] waive-firmware (its modules stage checks the closure of every module)",
                );
                FirmwareSet::default()
            }
            (Some(spec), None) => {
                let mut inputs = Vec::new();
                let set = validate_firmware(
                    ("firmware", "files", "waive"),
                    &spec.files,
                    &spec.waive,
                    &proj,
                    &mut errs,
                    &mut inputs,
                );
                add_firmware_inputs(
                    inputs,
                    "[firmware]",
                    &mut raw.sources,
                    &mut sources,
                    &mut errs,
                );
                set
            }
            (None, _) => FirmwareSet::default(),
        };
        if let Err(m) = check_base(&proj, &raw.kernel.base) {
            errs.at(at!["kernel", "base"], m);
        }
        let mut fragments = Vec::new();
        for (i, f) in raw.kernel.fragments.iter().enumerate() {
            let p = match resolve_fragment(&proj, f) {
                Ok(p) => p,
                Err(m) => {
                    errs.at(at!["kernel", "fragments", i], m);
                    continue;
                }
            };
            if !p.is_file() {
                errs.at(
                    at!["kernel", "fragments", i],
                    format!(
                        "kernel fragment `{}` not found (looked at {})",
                        f.display(),
                        p.display()
                    ),
                );
            }
            fragments.push(p);
        }
        check_options(&mut errs, at!["kernel", "options"], "", &raw.kernel.options);
        check_forbid(&mut errs, at!["kernel", "forbid"], "", &raw.kernel.forbid);
        let mut patches = Vec::new();
        for (i, p) in raw.kernel.patches.iter().enumerate() {
            let a = match proj.path(p) {
                Ok(a) => a,
                Err(m) => {
                    errs.at(at!["kernel", "patches", i], format!("patch {m}"));
                    continue;
                }
            };
            if !a.is_file() {
                errs.at(
                    at!["kernel", "patches", i],
                    format!("patch `{}` not found", p.display()),
                );
            }
            patches.push(a);
        }
        let kernels = validate_kernels(
            &raw.kernel,
            &kernel_source,
            &fragments,
            &patches,
            &proj,
            &mut errs,
        );
        let mut overlays = Vec::new();
        for (i, p) in raw.overlays.iter().enumerate() {
            let a = match proj.path(p) {
                Ok(a) => a,
                Err(m) => {
                    errs.at(at!["overlays", i], format!("overlay {m}"));
                    continue;
                }
            };
            if !a.is_dir() {
                errs.at(
                    at!["overlays", i],
                    format!("overlay directory `{}` not found", p.display()),
                );
            }
            overlays.push(a);
        }
        let module_signing = super::module_signing::from_recipe(
            raw.kernel.module_signing.as_ref(),
            &root,
            &proj,
            &overlays,
            &mut errs,
        );
        let node_config = proj.path(&raw.node.config).unwrap_or_else(|m| {
            errs.at(at!["node", "config"], format!("node config {m}"));
            PathBuf::new()
        });
        if node_config.as_os_str().is_empty() {
            // Reported above.
        } else if !node_config.is_file() {
            errs.at(
                at!["node", "config"],
                format!("node config `{}` not found", raw.node.config.display()),
            );
        }
        if !(1..=19).contains(&raw.outputs.zstd_level) {
            errs.at(
                at!["outputs", "zstd-level"],
                format!(
                    "zstd-level {} is out of range: expected 1 to 19",
                    raw.outputs.zstd_level
                ),
            );
        }
        // Every timestamp of the outputs is this one: the newc cpio header and the
        // squashfs inode hold 32-bit mtimes, so a later time would fail only after the
        // kernel compile (and KBUILD_BUILD_TIMESTAMP would name a year `date` rejects).
        let sde = u32::try_from(raw.recipe.source_date_epoch).map(u64::from);
        if sde.is_err() {
            errs.at(
                at!["recipe", "source-date-epoch"],
                format!(
                    "source-date-epoch {} is out of range: expected {SDE_RANGE} (2106-02-07T06:28:15Z; cpio and squashfs timestamps are 32-bit)",
                    raw.recipe.source_date_epoch
                ),
            );
        }
        if let Some(d) = &raw.outputs.disk {
            match parse_size(&d.size, values::MIB) {
                Err(m) => errs.at(at!["outputs", "disk", "size"], format!("disk size {m}")),
                Ok(b) if b % values::MIB != 0 => errs.at(
                    at!["outputs", "disk", "size"],
                    format!("disk size `{}`: expected a whole number of MiB", d.size),
                ),
                Ok(_) => {}
            }
            if let Err(m) = disk_state_size(d.state.as_deref()) {
                errs.at(
                    at!["outputs", "disk", "state"],
                    format!("disk state partition size {m}"),
                );
            }
            if d.boot_tries > 9 {
                errs.at(
                    at!["outputs", "disk", "boot-tries"],
                    format!(
                        "boot-tries {} is out of range: expected 0 to 9",
                        d.boot_tries
                    ),
                );
            }
            if !sources.contains_key(SYSTEMD_BOOT_SOURCE) {
                errs.at(at!["outputs", "disk"], format!("the disk output needs systemd-boot: add a source `{SYSTEMD_BOOT_SOURCE}` to [sources], e.g. {{ debian = \"systemd-boot-efi\", version = \"…\", member = \"usr/lib/systemd/boot/efi/systemd-bootx64.efi\" }}"));
            }
        }
        if raw.outputs.root == RootKind::Squashfs && raw.outputs.disk.is_none() {
            errs.at(at!["outputs", "root"], "root = \"squashfs\" puts the root on disk partitions: it needs `disk = { size = \"…\" }` in [outputs] (PXE-only nodes keep root = \"initramfs\")");
        }
        for (i, c) in raw.node.configs.iter().enumerate() {
            if let Err(m) = proj.path(c) {
                errs.at(at!["node", "configs", i], format!("node configs {m}"));
            }
        }
        check_userland_paths(&mut errs, &raw.userland);
        let mut modes = BTreeMap::new();
        for (p, m) in &raw.modes {
            let path = match crate::util::paths::image_path(p) {
                Ok(path) => path,
                Err(e) => {
                    errs.key(at!["modes", p], format!("modes: {e}"));
                    continue;
                }
            };
            match u32::from_str_radix(m, 8) {
                Ok(v) if v <= 0o7777 && !m.is_empty() => {
                    modes.insert(path, v);
                }
                _ => errs.at(
                    at!["modes", p],
                    format!(
                        "modes: `{m}` for {p}: expected an octal mode like \"0600\" or \"0755\""
                    ),
                ),
            }
        }
        let userland = super::userland::validate(&raw.userland, &mut errs);
        // A size that does not parse was reported above (and `finish` fails).
        let disk = raw.outputs.disk.as_ref().and_then(|d| {
            Some(DiskSpec {
                size: parse_size(&d.size, values::MIB).ok()?,
                boot_tries: d.boot_tries,
                state: disk_state_size(d.state.as_deref()).ok()?,
            })
        });
        errs.finish(Recipe {
            name,
            file: abs,
            root: root.clone(),
            allowed_outside: allowed_outside.clone(),
            description: raw.recipe.description,
            source_date_epoch: sde.unwrap_or_default(),
            stack: raw.target.stack,
            sources,
            userland,
            overlays,
            modes,
            node_config,
            node_configs: raw.node.configs,
            outputs: Outputs {
                zstd_level: raw.outputs.zstd_level,
                disk,
                disk_spec: raw.outputs.disk,
                root: raw.outputs.root,
            },
            scst,
            firmware,
            text: text.to_string(),
            kernels,
            selected: 0,
            module_signing,
        })
    }

    /// The selected kernel (the default unless `select_kernel` chose another).
    pub fn kernel(&self) -> &KernelVariant {
        // In bounds: `validate_kernels` always yields the default kernel first and
        // `select_kernel` only selects an index it found.
        #[allow(clippy::indexing_slicing)]
        &self.kernels[self.selected.min(self.kernels.len().saturating_sub(1))]
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

    /// Where the recipe's host paths may lead: its project directory and the
    /// directories of `allow-outside-project`.
    pub fn project(&self) -> Project<'_> {
        Project {
            root: &self.root,
            allowed: &self.allowed_outside,
        }
    }

    /// The lock file beside the recipe: `recipes/NAME.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.file.with_extension("lock")
    }
}

/// Asserted options, `CONFIG_FOO = "value"`, under `path` (`what`: the kernel matrix
/// entry, empty for `[kernel]`).
fn check_options(errs: &mut Errors, path: &[Seg], what: &str, options: &BTreeMap<String, String>) {
    for (k, v) in options {
        let mut at_k = path.to_vec();
        at_k.push(k.into());
        let name = k.strip_prefix("CONFIG_").unwrap_or_default();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errs.key(
                &at_k,
                format!("{what}kernel option `{k}`: expected a name like CONFIG_FOO"),
            );
        } else if v.is_empty() {
            errs.at(
                &at_k,
                format!(
                    "{what}kernel option `{k}`: expected a value (y, m, n, a number or a string)"
                ),
            );
        }
    }
}

/// Options that must end up unset, under `path`.
fn check_forbid(errs: &mut Errors, path: &[Seg], what: &str, forbid: &[String]) {
    for (i, k) in forbid.iter().enumerate() {
        if !k.starts_with("CONFIG_") {
            let mut at_i = path.to_vec();
            at_i.push(i.into());
            errs.at(
                &at_i,
                format!("{what}forbidden option `{k}`: expected a name like CONFIG_FOO"),
            );
        }
    }
}

/// The project directory and the outside directories the recipe allows: where every
/// host path the recipe names must lead ([`crate::util::paths::confine`]).
pub struct Project<'a> {
    pub root: &'a Path,
    pub allowed: &'a [PathBuf],
}

impl Project<'_> {
    /// `p` (relative to the project root, or absolute) if it leads inside the project
    /// or an allowed directory; the error starts with the value.
    pub fn path(&self, p: &Path) -> Result<PathBuf, String> {
        crate::util::paths::confine(p, self.root, self.allowed)
    }
}

/// `tinyconfig`, `defconfig`, `allnoconfig` or a config file inside the project.
fn check_base(proj: &Project, base: &str) -> Result<(), String> {
    if matches!(base, "tinyconfig" | "defconfig" | "allnoconfig") {
        return Ok(());
    }
    let p = proj
        .path(Path::new(base))
        .map_err(|m| format!("kernel base {m}"))?;
    if p.is_file() {
        Ok(())
    } else {
        Err(format!("kernel base `{base}`: expected `tinyconfig`, `defconfig`, `allnoconfig` or an existing config file"))
    }
}

/// A fragment: a bare file name is looked up in `kernel-configs/`, anything else is
/// relative to the project root.
fn resolve_fragment(proj: &Project, f: &Path) -> Result<PathBuf, String> {
    let rel = if f.components().count() == 1 && !f.is_absolute() {
        Path::new("kernel-configs").join(f)
    } else {
        f.to_path_buf()
    };
    proj.path(&rel).map_err(|m| format!("kernel fragment {m}"))
}

/// `[userland] keep` and `links`: in-image paths that stay inside the image.
fn check_userland_paths(errs: &mut Errors, u: &UserlandSpec) {
    for (i, k) in u.keep.iter().enumerate() {
        if let Err(m) = crate::util::paths::image_path(k) {
            errs.at(at!["userland", "keep", i], format!("[userland] keep: {m}"));
        }
    }
    for (name, target) in &u.links {
        if let Err(m) = crate::util::paths::image_path(name) {
            errs.key(
                at!["userland", "links", name],
                format!("[userland] links: link name {m}"),
            );
        } else if let Err(m) = crate::util::paths::link_target(name, target) {
            errs.at(
                at!["userland", "links", name],
                format!("[userland] links: {m}"),
            );
        }
    }
}

fn valid_kernel_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('.')
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// x86's COMMAND_LINE_SIZE: the kernel truncates a longer command line.
const MAX_CMDLINE: usize = 2048;

/// Why a kernel command line cannot be written into loader entries and iPXE scripts
/// as one line: a control character (a newline would start a new iPXE command or
/// loader key) or more than the kernel accepts.
fn cmdline_problem(c: &str) -> Option<String> {
    if let Some(ch) = c.chars().find(|ch| ch.is_control()) {
        return Some(format!(
            "contains the control character {ch:?}: expected one line of printable text"
        ));
    }
    if c.len() >= MAX_CMDLINE {
        return Some(format!(
            "is {} bytes long: expected less than {MAX_CMDLINE} (the kernel's COMMAND_LINE_SIZE)",
            c.len()
        ));
    }
    None
}

/// The default kernel and every `[kernel.matrix]` entry, validated, with the inherited
/// fields filled in (an entry with errors is left out; its errors are recorded).
fn validate_kernels(
    k: &KernelSpec,
    source: &Source,
    fragments: &[PathBuf],
    patches: &[PathBuf],
    proj: &Project,
    errs: &mut Errors,
) -> Vec<KernelVariant> {
    let default_name = k
        .name
        .clone()
        .unwrap_or_else(|| derived_kernel_name(&k.source));
    if !valid_kernel_name(&default_name) {
        errs.at(
            at!["kernel", "name"],
            format!("kernel name `{default_name}`: expected letters, digits, `-`, `_` or `.`"),
        );
    }
    if let Some(m) = cmdline_problem(&k.cmdline) {
        errs.at(at!["kernel", "cmdline"], format!("[kernel] cmdline: {m}"));
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
        let entry = at!["kernel", "matrix", name];
        let at_m = |key: &str| at!["kernel", "matrix", name, key].to_vec();
        let before = errs.len();
        if !valid_kernel_name(name) {
            errs.key(
                entry,
                format!("{what}: expected a name of letters, digits, `-`, `_` or `.`"),
            );
        } else if *name == default_name {
            errs.key(
                entry,
                format!("{what}: the default kernel ([kernel]) is already named `{default_name}`: expected a unique name (set [kernel] name = \"…\" to rename the default)"),
            );
        }
        let src = match &m.source {
            None => {
                errs.key(
                    entry,
                    format!("{what}: expected a `source`, e.g. {{ source = {{ debian = \"linux-source-6.12\", version = \"…\", member = \"usr/src/linux-source-6.12.tar.xz\" }} }}"),
                );
                None
            }
            Some(s) => check_source(errs, &at_m("source"), &format!("{what}: source"), s, proj),
        };
        let mut spec = default.clone();
        spec.name = name.clone();
        spec.lock_name = matrix_kernel_input(name);
        let mut frags = fragments.to_vec();
        if let Some(fs) = &m.fragments {
            frags.clear();
            for (i, f) in fs.iter().enumerate() {
                let p = match resolve_fragment(proj, f) {
                    Ok(p) => p,
                    Err(m) => {
                        errs.at(
                            at!["kernel", "matrix", name, "fragments", i],
                            format!("{what}: {m}"),
                        );
                        continue;
                    }
                };
                if !p.is_file() {
                    errs.at(
                        at!["kernel", "matrix", name, "fragments", i],
                        format!(
                            "{what}: kernel fragment `{}` not found (looked at {})",
                            f.display(),
                            p.display()
                        ),
                    );
                }
                frags.push(p);
            }
        }
        if let Some(b) = &m.base {
            if let Err(m) = check_base(proj, b) {
                errs.at(&at_m("base"), format!("{what}: {m}"));
            }
            spec.base = b.clone();
        }
        if let Some(o) = &m.options {
            check_options(errs, &at_m("options"), &format!("{what}: "), o);
            spec.options = o.clone();
        }
        if let Some(f) = &m.forbid {
            check_forbid(errs, &at_m("forbid"), &format!("{what}: "), f);
            spec.forbid = f.clone();
        }
        let mut pats = patches.to_vec();
        if let Some(ps) = &m.patches {
            pats.clear();
            for (i, p) in ps.iter().enumerate() {
                let a = match proj.path(p) {
                    Ok(a) => a,
                    Err(m) => {
                        errs.at(
                            at!["kernel", "matrix", name, "patches", i],
                            format!("{what}: patch {m}"),
                        );
                        continue;
                    }
                };
                if !a.is_file() {
                    errs.at(
                        at!["kernel", "matrix", name, "patches", i],
                        format!("{what}: patch `{}` not found", p.display()),
                    );
                }
                pats.push(a);
            }
        }
        if let Some(l) = &m.localversion {
            spec.localversion = l.clone();
        }
        if let (Some(src), true) = (src, errs.len() == before) {
            spec.source = src;
            spec.fragments = frags;
            spec.patches = pats;
            out.push(spec);
        }
    }
    out
}

/// Validates the source `s` written at `path` (`what` names it in messages); records
/// the error at the field at fault.
fn check_source(
    errs: &mut Errors,
    path: &[Seg],
    what: &str,
    s: &SourceSpec,
    proj: &Project,
) -> Option<Source> {
    match validate_source(s, proj) {
        Ok(v) => Some(v),
        Err((sub, m)) => {
            let mut p = path.to_vec();
            p.extend(sub);
            errs.at(&p, format!("{what}: {m}"));
            None
        }
    }
}

/// A validated source, or the path (below the source's table) of the field at fault
/// and what is wrong with it.
fn validate_source(s: &SourceSpec, proj: &Project) -> Result<Source, (Vec<Seg>, String)> {
    let kinds = [s.url.is_some(), s.debian.is_some(), s.path.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if kinds != 1 {
        return Err((
            Vec::new(),
            "expected exactly one of `url`, `debian` or `path`".into(),
        ));
    }
    if let Some(u) = &s.url {
        let mirrors = u.list();
        if mirrors.is_empty() {
            return Err((at!["url"].to_vec(), "`url` is an empty list".into()));
        }
        for (i, m) in mirrors.iter().enumerate() {
            if !(m.starts_with("http://") || m.starts_with("https://") || m.starts_with("file://"))
            {
                let at_m = match u {
                    UrlList::One(_) => at!["url"].to_vec(),
                    UrlList::Many(_) => at!["url", i].to_vec(),
                };
                return Err((
                    at_m,
                    format!("url `{m}`: expected http://, https:// or file://"),
                ));
            }
        }
        let tree = s.tree.as_deref().map(parse_tree).transpose()?;
        if let Some(tree) = tree {
            if s.sha256.is_some() {
                return Err((
                    at!["sha256"].to_vec(),
                    "a `url` source is pinned by `sha256` (the archive) or `tree` (its unpacked content), not both".into(),
                ));
            }
            return Ok(Source::UrlTree { mirrors, tree });
        }
        let Some(sha) = s.sha256.clone() else {
            return Err((
                Vec::new(),
                "a `url` source needs `sha256` (of the file) or `tree` (of an archive's unpacked content)".into(),
            ));
        };
        if !crate::util::hash::is_sha256(&sha) {
            return Err((
                at!["sha256"].to_vec(),
                format!("sha256 `{sha}`: expected 64 lowercase hex digits"),
            ));
        }
        return Ok(Source::Url {
            mirrors,
            sha256: sha,
        });
    }
    if let Some(p) = &s.debian {
        if s.tree.is_some() {
            return Err((
                at!["tree"].to_vec(),
                "`tree` pins `url` and `path` sources: a `debian` source is pinned by apt".into(),
            ));
        }
        let Some(version) = s.version.clone() else {
            return Err((Vec::new(), "a `debian` source needs `version`".into()));
        };
        return Ok(Source::Debian {
            package: p.clone(),
            version,
            member: s.member.clone(),
        });
    }
    let written = s.path.clone().unwrap_or_default();
    let path = proj
        .path(&written)
        .map_err(|m| (vec![Seg::from("path")], format!("path {m}")))?;
    let tree = s.tree.as_deref().map(parse_tree).transpose()?;
    Ok(Source::Path {
        path,
        written,
        tree,
    })
}

fn parse_tree(t: &str) -> Result<TreeHash, (Vec<Seg>, String)> {
    TreeHash::parse(t).map_err(|m| (at!["tree"].to_vec(), m))
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

/// SCST's build mode (`make 2release|2perf|2debug`, reference/scst.md §A3): what
/// `scst/include/build_mode.h` turns on in every SCST module.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BuildMode {
    /// `CONFIG_SCST_TRACING` only: the upstream default for production.
    #[default]
    Release,
    /// No tracing at all (no `trace_level` files): what TrueNAS ships.
    Perf,
    /// Tracing, `CONFIG_SCST_DEBUG` and `CONFIG_SCST_EXTRACHECKS`.
    Debug,
}

impl BuildMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildMode::Release => "release",
            BuildMode::Perf => "perf",
            BuildMode::Debug => "debug",
        }
    }

    /// The top-level make target that selects the mode.
    pub fn make_target(self) -> &'static str {
        match self {
            BuildMode::Release => "2release",
            BuildMode::Perf => "2perf",
            BuildMode::Debug => "2debug",
        }
    }
}

/// One entry of `[scst] waive-firmware`: a file name, or a name with the reason the
/// image goes without it (recorded in the manifest).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum WaiveSpec {
    Name(String),
    WithReason(WaiveWithReason),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WaiveWithReason {
    pub name: String,
    pub reason: String,
}

impl WaiveSpec {
    pub fn name(&self) -> &str {
        match self {
            WaiveSpec::Name(n) => n,
            WaiveSpec::WithReason(w) => &w.name,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            WaiveSpec::Name(_) => None,
            WaiveSpec::WithReason(w) => Some(&w.reason),
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
    /// `release` (default), `perf` or `debug`: `make 2release|2perf|2debug`.
    #[serde(default)]
    pub build_mode: BuildMode,
    /// SCST components to build (make directories), in any order; built in SCST's
    /// order. Default: `scst` and `qla2x00t-32gbit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<Vec<String>>,
    /// Firmware files the image provides, by the name modules request.
    #[serde(default)]
    pub firmware: Vec<FirmwareSpec>,
    /// Firmware names requested by modules that the image deliberately omits, each
    /// a name or `{ name = "…", reason = "…" }`; a name ending in `*` waives every
    /// requested file that starts with what precedes it (`rtl_nic/*`).
    #[serde(default)]
    pub waive_firmware: Vec<WaiveSpec>,
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
            tree: None,
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
    pub build_mode: BuildMode,
    /// Components in build order.
    pub components: Vec<String>,
    /// Firmware name → source.
    pub firmware: BTreeMap<String, Source>,
    pub waived: Vec<String>,
    /// Why a waived file is left out, when the recipe says.
    pub waive_reasons: BTreeMap<String, String>,
}

impl Scst {
    /// The `waive-firmware` entry that waives firmware file `name`: the name itself,
    /// or a prefix pattern ending in `*` that it starts with.
    pub fn waiver(&self, name: &str) -> Option<&str> {
        self.waived
            .iter()
            .find(|w| {
                *w == name
                    || w.strip_suffix('*')
                        .is_some_and(|prefix| name.starts_with(prefix))
            })
            .map(String::as_str)
    }

    /// The firmware list and waivers of `[scst]`.
    pub fn firmware_set(&self) -> FirmwareSet {
        FirmwareSet {
            table: "scst".into(),
            files_key: "firmware".into(),
            waive_key: "waive-firmware".into(),
            files: self.firmware.clone(),
            waived: self.waived.clone(),
            waive_reasons: self.waive_reasons.clone(),
            declared: true,
        }
    }

    /// The lock/input name of a firmware file.
    pub fn firmware_input(name: &str) -> String {
        format!("firmware:{name}")
    }
}

fn validate_scst(
    spec: &ScstSpec,
    proj: &Project,
    raw_sources: &mut BTreeMap<String, SourceSpec>,
    sources: &mut BTreeMap<String, Source>,
    errs: &mut Errors,
) -> Scst {
    let source = check_source(
        errs,
        at!["scst", "source"],
        "scst source",
        &spec.source,
        proj,
    )
    .unwrap_or_else(|| Source::Path {
        path: proj.root.to_path_buf(),
        written: PathBuf::new(),
        tree: None,
    });
    let requested = spec
        .modules
        .clone()
        .unwrap_or_else(|| vec!["scst".to_string(), "qla2x00t-32gbit".to_string()]);
    // Where the module list is, if the recipe writes one (else the [scst] table).
    let at_modules = if spec.modules.is_some() {
        at!["scst", "modules"]
    } else {
        at!["scst"]
    };
    if requested.is_empty() {
        errs.at(
            at_modules,
            "scst modules: expected at least one component (e.g. \"scst\")",
        );
    }
    for (i, m) in requested.iter().enumerate() {
        if !SCST_COMPONENTS.iter().any(|(n, _)| n == m) {
            let known: Vec<&str> = SCST_COMPONENTS.iter().map(|(n, _)| *n).collect();
            errs.at(
                at!["scst", "modules", i],
                format!("scst modules: unknown component `{m}`: expected one of {} (device handlers such as scst_vdisk are built with `scst`)", known.join(", ")),
            );
        }
    }
    let components: Vec<String> = SCST_COMPONENTS
        .iter()
        .filter(|(n, _)| requested.iter().any(|r| r == n))
        .map(|(n, _)| n.to_string())
        .collect();
    if !requested.is_empty() && !components.iter().any(|c| c == "scst") {
        errs.at(
            at_modules,
            "scst modules: `scst` (the core) is required: every other component links against it",
        );
    }
    if components.iter().any(|c| c == "qla2x00t")
        && components.iter().any(|c| c == "qla2x00t-32gbit")
    {
        errs.at(at_modules, "scst modules: choose one of `qla2x00t-32gbit` and `qla2x00t` (the two QLogic trees cannot be mixed)");
    }
    if spec.driver_mode == DriverMode::InTree
        && !components.iter().any(|c| c.starts_with("qla2x00t"))
    {
        errs.at(at!["scst", "driver-mode"], "scst driver-mode = \"in-tree\" swaps the QLogic driver: add `qla2x00t-32gbit` to modules");
    }
    let mut inputs = vec![("scst".to_string(), spec.source.clone(), source.clone())];
    let set = validate_firmware(
        ("scst", "firmware", "waive-firmware"),
        &spec.firmware,
        &spec.waive_firmware,
        proj,
        errs,
        &mut inputs,
    );
    add_firmware_inputs(inputs, "[scst]", raw_sources, sources, errs);
    Scst {
        source,
        driver_mode: spec.driver_mode,
        build_mode: spec.build_mode,
        components,
        firmware: set.files,
        waived: set.waived,
        waive_reasons: set.waive_reasons,
    }
}

/// Named inputs like any [sources.NAME]: the lock pins them, fetch and plan see them.
fn add_firmware_inputs(
    inputs: Vec<(String, SourceSpec, Source)>,
    table: &str,
    raw_sources: &mut BTreeMap<String, SourceSpec>,
    sources: &mut BTreeMap<String, Source>,
    errs: &mut Errors,
) {
    for (name, raw, v) in inputs {
        if raw_sources.contains_key(&name) {
            errs.key(
                at!["sources", &name],
                format!("source `{name}` is defined by {table}: remove it from [sources]"),
            );
            continue;
        }
        raw_sources.insert(name.clone(), raw);
        sources.insert(name, v);
    }
}

/// Validates a firmware list and its waivers (`[scst] firmware` + `waive-firmware`,
/// or `[firmware] files` + `waive`: `keys` = (table, files key, waive key)); each
/// provided file is pushed to `inputs` as `firmware:NAME`.
fn validate_firmware(
    keys: (&'static str, &'static str, &'static str),
    files: &[FirmwareSpec],
    waive: &[WaiveSpec],
    proj: &Project,
    errs: &mut Errors,
    inputs: &mut Vec<(String, SourceSpec, Source)>,
) -> FirmwareSet {
    let (table, files_key, waive_key) = keys;
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with('/')
            && n.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
    };
    let mut firmware = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let at_f = at![table, files_key, i];
        if !valid_name(&f.name) {
            errs.at(
                at![table, files_key, i, "name"],
                format!(
                    "firmware name `{}`: expected a relative file name under /lib/firmware",
                    f.name
                ),
            );
            continue;
        }
        let what = format!("firmware `{}`", f.name);
        let Some(s) = check_source(errs, at_f, &what, &f.source_spec(), proj) else {
            continue;
        };
        if firmware.insert(f.name.clone(), s.clone()).is_some() {
            errs.at(
                at![table, files_key, i, "name"],
                format!("firmware `{}` is listed twice", f.name),
            );
        }
        inputs.push((Scst::firmware_input(&f.name), f.source_spec(), s));
    }
    for (i, w) in waive.iter().enumerate() {
        let w = w.name();
        // `DIR/*` or `PREFIX*`: every requested file whose name starts with PREFIX.
        let name = w
            .strip_suffix('*')
            .map(|p| format!("{p}x"))
            .unwrap_or(w.to_string());
        if !valid_name(&name) || name.contains('*') {
            errs.at(
                at![table, waive_key, i],
                format!("waived firmware `{w}`: expected a file name, or a prefix ending in `*` (e.g. `rtl_nic/*`)"),
            );
        } else if firmware.contains_key(w) {
            errs.at(
                at![table, waive_key, i],
                format!("firmware `{w}` is both provided and waived"),
            );
        }
    }
    FirmwareSet {
        table: table.to_string(),
        files_key: files_key.to_string(),
        waive_key: waive_key.to_string(),
        files: firmware,
        waived: waive.iter().map(|w| w.name().to_string()).collect(),
        waive_reasons: waive
            .iter()
            .filter_map(|w| Some((w.name().to_string(), w.reason()?.to_string())))
            .collect(),
        declared: true,
    }
}

/// The firmware an image provides and waives (`[scst]` or `[firmware]`, validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareSet {
    /// The table and keys it was written in, for messages (`scst`, `firmware`,
    /// `waive-firmware`).
    pub table: String,
    pub files_key: String,
    pub waive_key: String,
    /// Firmware name → source.
    pub files: BTreeMap<String, Source>,
    pub waived: Vec<String>,
    /// Why a waived file is left out, when the recipe says.
    pub waive_reasons: BTreeMap<String, String>,
    /// Whether the recipe writes the table (`[firmware]` or `[scst]`): only then is
    /// the closure checked (a recipe without it builds as before, with a note).
    pub declared: bool,
}

/// A recipe without `[firmware]`: nothing provided, nothing waived.
impl Default for FirmwareSet {
    fn default() -> FirmwareSet {
        FirmwareSet {
            table: "firmware".into(),
            files_key: "files".into(),
            waive_key: "waive".into(),
            files: BTreeMap::new(),
            waived: Vec::new(),
            waive_reasons: BTreeMap::new(),
            declared: false,
        }
    }
}

impl FirmwareSet {
    /// The waiver entry that waives firmware file `name`: the name itself, or a prefix
    /// pattern ending in `*` that it starts with.
    pub fn waiver(&self, name: &str) -> Option<&str> {
        self.waived
            .iter()
            .find(|w| {
                *w == name
                    || w.strip_suffix('*')
                        .is_some_and(|prefix| name.starts_with(prefix))
            })
            .map(String::as_str)
    }

    /// True when the recipe says nothing about firmware.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.waived.is_empty()
    }
}

/// `[outputs] disk = { size = "256MiB", boot-tries = 3 }`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpec {
    /// Bytes, a multiple of 1 MiB.
    pub size: u64,
    /// Tries a fresh entry gets before systemd-boot falls back (0: no boot counting).
    pub boot_tries: u32,
    /// Bytes of the state partition (a multiple of 1 MiB), 0 for none.
    pub state: u64,
}

/// `[outputs] disk` `state`: bytes, 0 when not given or `"none"`; at least 8 MiB (an
/// ext4 journal needs room).
pub fn disk_state_size(v: Option<&str>) -> Result<u64, String> {
    let mib = values::MIB;
    match v {
        None | Some("none") => Ok(0),
        Some(s) => match parse_size(s, mib) {
            Ok(b) if b % mib == 0 && b >= 8 * mib => Ok(b),
            Ok(_) => Err(format!(
                "`{s}`: expected a whole number of MiB, at least 8MiB, or \"none\""
            )),
            Err(m) => Err(format!("{m} (or \"none\")")),
        },
    }
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
    fn every_error_of_a_recipe_is_reported_at_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recipes/r.toml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text = "[recipe]\nsource-date-epoch = 1\n[kernel]\nsource = { debian = \"linux-source-6.1\", version = \"6.1\" }\nbase = \"tinyconfig\"\n[node]\nconfig = \"nodes/missing.toml\"\n[outputs]\nzstd-level = 25\n[userland.packages]\nbusybox = \"\"\n[sources.a]\nurl = \"https://example.org/a\"\nsha256 = \"00\"\n[sources.b]\nurl = \"https://example.org/b\"\nsha256 = \"zz\"\n";
        let e = Recipe::parse(&file, text).unwrap_err();
        let f = file.display();
        assert_eq!(
            e.to_string(),
            [
                format!("{f}:7:10: node config `nodes/missing.toml` not found"),
                format!("{f}:9:14: zstd-level 25 is out of range: expected 1 to 19"),
                format!("{f}:11:11: package `busybox`: version ``: expected a Debian version (`3.1.7-1+deb12u2`), a relation (`>= 3.1`) or `*` for any"),
                format!("{f}:14:10: source `a`: sha256 `00`: expected 64 lowercase hex digits"),
                format!("{f}:17:10: source `b`: sha256 `zz`: expected 64 lowercase hex digits"),
            ]
            .join("\n")
        );
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
