//! [`Recipe::parse`]: the recipe file as written ([`RawRecipe`]) validated into a
//! [`Recipe`], every error of the file recorded at the value at fault.

use super::firmware::validate_firmware_table;
use super::kernel::validate_kernels;
use super::outputs::validate_outputs;
use super::scst::validate_scst;
use super::source::check_source;
use super::{NodeSpec, Project, RawRecipe, Recipe, RecipeMeta, UserlandSpec, SDE_RANGE};
use crate::config::spans::{at, Errors};
use crate::config::{parse_toml, ConfigError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

impl Recipe {
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
        let root = project_root(&abs);
        let name = recipe_name(&raw.recipe, &abs, &mut errs);
        let allowed_outside = allowed_outside(&raw.allow_outside_project, &root, &mut errs);
        let proj = Project {
            root: &root,
            allowed: &allowed_outside,
        };
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
        let firmware = validate_firmware_table(
            raw.firmware.as_ref(),
            scst.is_some(),
            &proj,
            &mut raw.sources,
            &mut sources,
            &mut errs,
        );
        let kernels = validate_kernels(&raw.kernel, &proj, &mut errs);
        let overlays = overlays(&raw.overlays, &proj, &mut errs);
        let module_signing = crate::config::module_signing::from_recipe(
            raw.kernel.module_signing.as_ref(),
            &root,
            &proj,
            &overlays,
            &mut errs,
        );
        let node_config = node_config(&raw.node, &proj, &mut errs);
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
        let outputs = validate_outputs(&raw.outputs, &sources, &mut errs);
        check_userland_paths(&mut errs, &raw.userland);
        let modes = image_modes(&raw.modes, &mut errs);
        let userland = crate::config::userland::validate(&raw.userland, &mut errs);
        let cache = crate::config::remote_cache::validate(raw.cache.as_ref(), &proj, &mut errs);
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
            outputs,
            scst,
            firmware,
            text: text.to_string(),
            kernels,
            selected: 0,
            module_signing,
            cache,
        })
    }
}

/// The project root of the recipe file `abs`: the parent of `recipes/` for
/// `recipes/NAME.toml`, else the recipe's own directory.
fn project_root(abs: &Path) -> PathBuf {
    let recipe_dir = crate::util::fs::parent_dir(abs);
    if recipe_dir
        .file_name()
        .map(|n| n == "recipes")
        .unwrap_or(false)
    {
        crate::util::fs::parent_dir(&recipe_dir)
    } else {
        recipe_dir
    }
}

/// `[recipe] name`, or the file name without `.toml`. It names the output directory
/// (`out/NAME`) and the lock: a plain file name.
fn recipe_name(meta: &RecipeMeta, abs: &Path, errs: &mut Errors) -> String {
    let name = match &meta.name {
        Some(n) => n.clone(),
        None => abs
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
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
    name
}

/// `allow-outside-project`: existing directories, resolved (symlinks followed).
fn allowed_outside(written: &[PathBuf], root: &Path, errs: &mut Errors) -> Vec<PathBuf> {
    let mut allowed = Vec::new();
    for (i, a) in written.iter().enumerate() {
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
            Ok(real) => allowed.push(real),
            Err(m) => errs.at(
                at!["allow-outside-project", i],
                format!("allow-outside-project `{}`: {m}", a.display()),
            ),
        }
    }
    allowed
}

/// `overlays`: directories inside the project, absolute.
fn overlays(written: &[PathBuf], proj: &Project, errs: &mut Errors) -> Vec<PathBuf> {
    let mut overlays = Vec::new();
    for (i, p) in written.iter().enumerate() {
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
    overlays
}

/// `[node] config` (an existing file, absolute) after checking `[node] configs` stay
/// inside the project.
fn node_config(node: &NodeSpec, proj: &Project, errs: &mut Errors) -> PathBuf {
    let node_config = proj.path(&node.config).unwrap_or_else(|m| {
        errs.at(at!["node", "config"], format!("node config {m}"));
        PathBuf::new()
    });
    if node_config.as_os_str().is_empty() {
        // Reported above.
    } else if !node_config.is_file() {
        errs.at(
            at!["node", "config"],
            format!("node config `{}` not found", node.config.display()),
        );
    }
    for (i, c) in node.configs.iter().enumerate() {
        if let Err(m) = proj.path(c) {
            errs.at(at!["node", "configs", i], format!("node configs {m}"));
        }
    }
    node_config
}

/// `[modes]`: image path (relative, without the leading `/`) → octal mode.
fn image_modes(written: &BTreeMap<String, String>, errs: &mut Errors) -> BTreeMap<String, u32> {
    let mut modes = BTreeMap::new();
    for (p, m) in written {
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
                format!("modes: `{m}` for {p}: expected an octal mode like \"0600\" or \"0755\""),
            ),
        }
    }
    modes
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
