//! Recipe v1: what to build. Read by `sanforge plan/fetch/lock/build`.
//!
//! A recipe names its kernel source, the kernel config (base + fragments + asserted
//! options), patches, the target stack, the Debian userland, overlays, the node config
//! baked into the image and the outputs. Relative paths are resolved against the
//! project root (the directory that holds `recipes/`).
//!
//! This module holds the recipe as written ([`RawRecipe`]) and validated ([`Recipe`]);
//! its parts, each with its written form, validated form and checks:
//!
//! - `parse.rs`: [`Recipe::parse`], which validates the whole file;
//! - `source.rs`: sources (`url`, `debian` or `path`);
//! - `kernel.rs`: `[kernel]` and `[kernel.matrix]`;
//! - `outputs.rs`: `[outputs]` (zstd level, disk image, root kind);
//! - `scst.rs`: `[scst]` (SCST source, driver and build mode, components);
//! - `firmware.rs`: firmware lists and waivers (`[firmware]` and `[scst]`'s).

mod firmware;
mod kernel;
mod outputs;
mod parse;
mod scst;
mod source;

pub use firmware::{FirmwareSet, FirmwareSpec, FirmwareTableSpec, WaiveSpec, WaiveWithReason};
pub use kernel::{
    derived_kernel_name, matrix_kernel_input, KernelSpec, KernelVariant, MatrixKernelSpec,
    DEFAULT_KERNEL_INPUT,
};
pub use outputs::{
    disk_state_size, DiskOutputSpec, DiskSpec, Outputs, OutputsSpec, RootKind, SYSTEMD_BOOT_SOURCE,
};
pub use scst::{BuildMode, DriverMode, Scst, ScstSpec, SCST_COMPONENTS};
pub use source::{Source, SourceSpec, UrlList};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// `[cache]`: the remote stage cache and the keys a pulled entry must be signed by
    /// ([`crate::config::remote_cache`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::config::remote_cache::CacheSpec>,
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
    pub module_signing: Option<crate::config::module_signing::ModuleSigning>,
    /// `[cache]`, validated (no remote and no trusted keys without it).
    pub cache: crate::config::remote_cache::CacheConfig,
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
