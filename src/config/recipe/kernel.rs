//! `[kernel]` and `[kernel.matrix]`: the kernels a recipe builds, validated into
//! [`KernelVariant`]s with the inherited fields filled in.

use super::source::{check_source, Source, SourceSpec};
use super::Project;
use crate::config::spans::{at, Errors, Seg};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    pub module_signing: Option<crate::config::module_signing::ModuleSigningSpec>,
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
pub(super) fn validate_kernels(
    k: &KernelSpec,
    proj: &Project,
    errs: &mut Errors,
) -> Vec<KernelVariant> {
    // An invalid kernel source is reported; the placeholder only lets the other
    // checks run (the recipe is not returned).
    let source = check_source(
        errs,
        at!["kernel", "source"],
        "kernel source",
        &k.source,
        proj,
    )
    .unwrap_or_else(|| Source::Path {
        path: proj.root.to_path_buf(),
        written: PathBuf::new(),
        tree: None,
    });
    if let Err(m) = check_base(proj, &k.base) {
        errs.at(at!["kernel", "base"], m);
    }
    let fragments = fragment_paths(&k.fragments, at!["kernel", "fragments"], "", proj, errs);
    check_options(errs, at!["kernel", "options"], "", &k.options);
    check_forbid(errs, at!["kernel", "forbid"], "", &k.forbid);
    let patches = patch_paths(&k.patches, at!["kernel", "patches"], "", proj, errs);
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
        name: default_name,
        lock_name: DEFAULT_KERNEL_INPUT.to_string(),
        source,
        base: k.base.clone(),
        options: k.options.clone(),
        forbid: k.forbid.clone(),
        localversion: k.localversion.clone(),
        cmdline: k.cmdline.clone(),
        fragments,
        patches,
    };
    let mut out = vec![default.clone()];
    for (name, m) in &k.matrix {
        if let Some(v) = matrix_entry(name, m, &default, proj, errs) {
            out.push(v);
        }
    }
    out
}

/// The `[kernel.matrix]` entry `name`: `default` with what the entry overrides, or
/// `None` when the entry has errors (recorded).
fn matrix_entry(
    name: &str,
    m: &MatrixKernelSpec,
    default: &KernelVariant,
    proj: &Project,
    errs: &mut Errors,
) -> Option<KernelVariant> {
    let what = format!("kernel matrix entry `{name}`");
    let entry = at!["kernel", "matrix", name];
    let at_m = |key: &str| at!["kernel", "matrix", name, key].to_vec();
    let before = errs.len();
    if !valid_kernel_name(name) {
        errs.key(
            entry,
            format!("{what}: expected a name of letters, digits, `-`, `_` or `.`"),
        );
    } else if name == default.name {
        errs.key(
            entry,
            format!("{what}: the default kernel ([kernel]) is already named `{}`: expected a unique name (set [kernel] name = \"…\" to rename the default)", default.name),
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
    spec.name = name.to_string();
    spec.lock_name = matrix_kernel_input(name);
    let prefix = format!("{what}: ");
    if let Some(fs) = &m.fragments {
        spec.fragments = fragment_paths(fs, &at_m("fragments"), &prefix, proj, errs);
    }
    if let Some(b) = &m.base {
        if let Err(m) = check_base(proj, b) {
            errs.at(&at_m("base"), format!("{prefix}{m}"));
        }
        spec.base = b.clone();
    }
    if let Some(o) = &m.options {
        check_options(errs, &at_m("options"), &prefix, o);
        spec.options = o.clone();
    }
    if let Some(f) = &m.forbid {
        check_forbid(errs, &at_m("forbid"), &prefix, f);
        spec.forbid = f.clone();
    }
    if let Some(ps) = &m.patches {
        spec.patches = patch_paths(ps, &at_m("patches"), &prefix, proj, errs);
    }
    if let Some(l) = &m.localversion {
        spec.localversion = l.clone();
    }
    spec.source = src?;
    (errs.len() == before).then_some(spec)
}

/// Kernel fragments written at `path` (`what`: the matrix entry's prefix for messages,
/// empty for `[kernel]`), absolute; one that is missing is reported and kept.
fn fragment_paths(
    written: &[PathBuf],
    path: &[Seg],
    what: &str,
    proj: &Project,
    errs: &mut Errors,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (i, f) in written.iter().enumerate() {
        let mut at_i = path.to_vec();
        at_i.push(i.into());
        let p = match resolve_fragment(proj, f) {
            Ok(p) => p,
            Err(m) => {
                errs.at(&at_i, format!("{what}{m}"));
                continue;
            }
        };
        if !p.is_file() {
            errs.at(
                &at_i,
                format!(
                    "{what}kernel fragment `{}` not found (looked at {})",
                    f.display(),
                    p.display()
                ),
            );
        }
        out.push(p);
    }
    out
}

/// Kernel patches written at `path`, absolute; one that is missing is reported and
/// kept.
fn patch_paths(
    written: &[PathBuf],
    path: &[Seg],
    what: &str,
    proj: &Project,
    errs: &mut Errors,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (i, p) in written.iter().enumerate() {
        let mut at_i = path.to_vec();
        at_i.push(i.into());
        let a = match proj.path(p) {
            Ok(a) => a,
            Err(m) => {
                errs.at(&at_i, format!("{what}patch {m}"));
                continue;
            }
        };
        if !a.is_file() {
            errs.at(&at_i, format!("{what}patch `{}` not found", p.display()));
        }
        out.push(a);
    }
    out
}
