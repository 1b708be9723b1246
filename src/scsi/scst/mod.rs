//! The SCST target model: `scst.conf` as scstadmin reads it, turned into the ordered
//! `/sys/kernel/scst_tgt` writes that configure a running SCST.
//!
//! Users already have `scst.conf` files, so the node config carries one verbatim. This
//! module reads it ([`parse`]), prints it back in one canonical form ([`print`]), checks
//! it with line numbers ([`validate`]), and computes the sysfs writes that apply it to an
//! empty SCST or move a running SCST from one config to another ([`plan`], [`diff_plan`]);
//! [`apply`] performs them through caller-supplied closures, so the init can run them
//! against a fake tree in tests. Facts come from `reference/scst.md` §B9–B12.
//!
//! Order inside a block is kept as written (scstadmin stores blocks in hashes and sorts
//! names; the file order is deterministic and reads more naturally in plans).

pub mod catalog;
pub mod gen;
pub mod parse;
pub mod plan;
pub mod print;
pub mod validate;

use std::path::Path;

use crate::config::node::ValidNode;
use anyhow::{anyhow, bail, Context, Result};

pub use gen::{generate, generate_iscsi};
pub use parse::{parse, ParseError};
pub use plan::{
    apply, apply_with, diff_plan, live_gaps, plan, ApplyError, ApplyOptions, SysfsWrite,
};
pub use print::print;
pub use validate::{validate, Diagnostic, Severity};

/// Where SCST's sysfs tree lives on a real system; plan paths are relative to it.
pub const SCST_SYSFS: &str = "/sys/kernel/scst_tgt";

/// One `name value` line. `line` is 0 for entries that were not read from a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attr {
    pub name: String,
    pub value: String,
    pub line: usize,
}

impl Attr {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attr {
            name: name.into(),
            value: value.into(),
            line: 0,
        }
    }
}

/// A whole `scst.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScstConf {
    /// Top-level `ATTR VALUE` lines: `/sys/kernel/scst_tgt/ATTR` (setup_id, cluster_name…).
    pub globals: Vec<Attr>,
    /// The `ALUA { … }` block: attributes of `/sys/kernel/scst_tgt/device_groups`.
    pub alua: Vec<Attr>,
    pub handlers: Vec<Handler>,
    pub drivers: Vec<TargetDriver>,
    pub device_groups: Vec<DeviceGroup>,
}

/// `HANDLER name { attrs; DEVICE … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Handler {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub devices: Vec<Device>,
    pub line: usize,
}

/// `DEVICE name { attrs }` inside a handler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub line: usize,
}

/// `TARGET_DRIVER name { enabled; attrs; TARGET … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetDriver {
    pub name: String,
    /// The driver-level `enabled` line (iscsi has one; `None` when absent).
    pub enabled: Option<bool>,
    pub attrs: Vec<Attr>,
    pub targets: Vec<Target>,
    pub line: usize,
}

/// `TARGET name { HW_TARGET; enabled; attrs; LUN …; GROUP … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    pub name: String,
    /// A physical port: never created with `add_target`.
    pub hw_target: bool,
    pub enabled: Option<bool>,
    pub attrs: Vec<Attr>,
    pub luns: Vec<Lun>,
    pub groups: Vec<IniGroup>,
    pub line: usize,
}

/// `LUN number device { read_only }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lun {
    pub number: u32,
    pub device: String,
    pub attrs: Vec<Attr>,
    pub line: usize,
}

/// `GROUP name { attrs; LUN …; INITIATOR … }`: an access-control group of a target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IniGroup {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub luns: Vec<Lun>,
    pub initiators: Vec<Initiator>,
    pub line: usize,
}

/// `INITIATOR name-or-pattern` (wildcards `*` `?`, leading `!`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Initiator {
    pub name: String,
    pub line: usize,
}

/// `DEVICE_GROUP name { DEVICE …; TARGET_GROUP …; attrs }` (ALUA).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceGroup {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub devices: Vec<DgDevice>,
    pub target_groups: Vec<TargetGroup>,
    pub line: usize,
}

/// `DEVICE name` inside a device group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DgDevice {
    pub name: String,
    pub line: usize,
}

/// `TARGET_GROUP name { group_id; preferred; state; TARGET … }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub targets: Vec<TgTarget>,
    pub line: usize,
}

/// `TARGET name { rel_tgt_id }` inside a target group (local or remote port).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TgTarget {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub line: usize,
}

/// Looks an attribute up by name (the first one).
pub fn attr<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

impl ScstConf {
    /// The same model with every line number set to 0, to compare configs by content.
    pub fn without_lines(&self) -> ScstConf {
        fn a(v: &[Attr]) -> Vec<Attr> {
            v.iter()
                .map(|x| Attr {
                    line: 0,
                    ..x.clone()
                })
                .collect()
        }
        fn luns(v: &[Lun]) -> Vec<Lun> {
            v.iter()
                .map(|l| Lun {
                    number: l.number,
                    device: l.device.clone(),
                    attrs: a(&l.attrs),
                    line: 0,
                })
                .collect()
        }
        ScstConf {
            globals: a(&self.globals),
            alua: a(&self.alua),
            handlers: self
                .handlers
                .iter()
                .map(|h| Handler {
                    name: h.name.clone(),
                    attrs: a(&h.attrs),
                    devices: h
                        .devices
                        .iter()
                        .map(|d| Device {
                            name: d.name.clone(),
                            attrs: a(&d.attrs),
                            line: 0,
                        })
                        .collect(),
                    line: 0,
                })
                .collect(),
            drivers: self
                .drivers
                .iter()
                .map(|d| TargetDriver {
                    name: d.name.clone(),
                    enabled: d.enabled,
                    attrs: a(&d.attrs),
                    targets: d
                        .targets
                        .iter()
                        .map(|t| Target {
                            name: t.name.clone(),
                            hw_target: t.hw_target,
                            enabled: t.enabled,
                            attrs: a(&t.attrs),
                            luns: luns(&t.luns),
                            groups: t
                                .groups
                                .iter()
                                .map(|g| IniGroup {
                                    name: g.name.clone(),
                                    attrs: a(&g.attrs),
                                    luns: luns(&g.luns),
                                    initiators: g
                                        .initiators
                                        .iter()
                                        .map(|i| Initiator {
                                            name: i.name.clone(),
                                            line: 0,
                                        })
                                        .collect(),
                                    line: 0,
                                })
                                .collect(),
                            line: 0,
                        })
                        .collect(),
                    line: 0,
                })
                .collect(),
            device_groups: self
                .device_groups
                .iter()
                .map(|dg| DeviceGroup {
                    name: dg.name.clone(),
                    attrs: a(&dg.attrs),
                    devices: dg
                        .devices
                        .iter()
                        .map(|d| DgDevice {
                            name: d.name.clone(),
                            line: 0,
                        })
                        .collect(),
                    target_groups: dg
                        .target_groups
                        .iter()
                        .map(|tg| TargetGroup {
                            name: tg.name.clone(),
                            attrs: a(&tg.attrs),
                            targets: tg
                                .targets
                                .iter()
                                .map(|t| TgTarget {
                                    name: t.name.clone(),
                                    attrs: a(&t.attrs),
                                    line: 0,
                                })
                                .collect(),
                            line: 0,
                        })
                        .collect(),
                    line: 0,
                })
                .collect(),
        }
    }
}

/// `sanforge scst check FILE`: parses and validates, returning one `FILE:LINE: error: …`
/// (or `warning:`) line per finding, and whether any of them is an error.
pub fn check_file(path: &Path) -> anyhow::Result<(String, bool)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = path.display();
    let conf = match parse(&text) {
        Ok(c) => c,
        Err(e) => return Ok((format!("{file}:{}: error: {}\n", e.line, e.message), true)),
    };
    let diags = validate(&conf);
    let mut report = String::new();
    let mut errors = 0;
    let mut warnings = 0;
    for d in &diags {
        match d.severity {
            Severity::Error => errors += 1,
            Severity::Warning => warnings += 1,
        }
        report.push_str(&format!("{file}:{d}\n"));
    }
    let devices: usize = conf.handlers.iter().map(|h| h.devices.len()).sum();
    let targets: usize = conf.drivers.iter().map(|d| d.targets.len()).sum();
    report.push_str(&format!(
        "{file}: {devices} devices, {targets} targets, {} device groups: {errors} errors, {warnings} warnings\n",
        conf.device_groups.len()
    ));
    Ok((report, errors > 0))
}

/// `sanforge scst plan FILE`: the writes that apply FILE to an empty SCST, one
/// `PATH <- VALUE` line each, paths absolute under `/sys/kernel/scst_tgt`, CHAP secrets
/// redacted. Refuses a config that has validation errors.
pub fn plan_file(path: &Path) -> anyhow::Result<String> {
    plan_file_with(path, false)
}

/// [`plan_file`], with CHAP secrets shown when `show_secrets` (`--show-secrets`).
pub fn plan_file_with(path: &Path, show_secrets: bool) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = path.display();
    let conf = parse(&text).map_err(|e| anyhow::anyhow!("{file}:{}: {}", e.line, e.message))?;
    let errors: Vec<String> = validate(&conf)
        .into_iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{file}:{d}"))
        .collect();
    if !errors.is_empty() {
        anyhow::bail!(
            "{} has {} errors:\n{}",
            path.display(),
            errors.len(),
            errors.join("\n")
        );
    }
    Ok(plan(&conf)
        .iter()
        .map(|w| {
            let v = if show_secrets {
                std::borrow::Cow::Borrowed(w.value.as_str())
            } else {
                crate::util::redact::write_value(&w.path, &w.value)
            };
            format!("{SCST_SYSFS}/{} <- {v}\n", w.path)
        })
        .collect())
}

/// Parses and validates an `scst.conf`; errors name `FILE:LINE`. Returns the model and
/// the warnings, each as `FILE:LINE: warning: …`.
pub fn load_conf(file: &Path, text: &str) -> Result<(ScstConf, Vec<String>)> {
    let f = file.display();
    let conf = parse(text).map_err(|e| anyhow!("{f}:{}: {}", e.line, e.message))?;
    let (errors, warnings): (Vec<_>, Vec<_>) = validate(&conf)
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(|d| format!("{f}:{d}")).collect();
        bail!("{}", list.join("\n"));
    }
    Ok((conf, warnings.iter().map(|d| format!("{f}:{d}")).collect()))
}

/// The node's `scst.conf`, read and validated at build time.
#[derive(Debug, Clone)]
pub struct NodeScstConf {
    /// Where it is baked: the init's path for it without the leading `/`
    /// (`etc/sanforge/scst.conf` for `conf = "scst.conf"`).
    pub image_path: String,
    pub text: String,
    /// The file on the build host (for messages).
    pub host_path: std::path::PathBuf,
    pub conf: ScstConf,
}

/// The CHAP account attributes of a config (driver and target level), mutable.
fn accounts_mut(conf: &mut ScstConf) -> impl Iterator<Item = &mut Attr> {
    conf.drivers.iter_mut().flat_map(|d| {
        d.attrs
            .iter_mut()
            .chain(d.targets.iter_mut().flat_map(|t| t.attrs.iter_mut()))
            .filter(|a| crate::util::redact::is_scst_secret_attr(&a.name))
    })
}

/// The CHAP account attributes of a config.
fn accounts(conf: &ScstConf) -> impl Iterator<Item = &Attr> {
    conf.drivers.iter().flat_map(|d| {
        d.attrs
            .iter()
            .chain(d.targets.iter().flat_map(|t| t.attrs.iter()))
            .filter(|a| crate::util::redact::is_scst_secret_attr(&a.name))
    })
}

/// The secrets a config names (`IncomingUser secret:NAME`), with their lines, in order.
pub fn secret_refs(conf: &ScstConf) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for a in accounts(conf) {
        if let Some(n) = a.value.strip_prefix(crate::config::secrets::SCST_REF) {
            if !out.iter().any(|(x, _)| x == n) {
                out.push((n.to_string(), a.line));
            }
        }
    }
    out
}

/// An scst.conf that is baked into an image must not carry a CHAP secret: one
/// `FILE:LINE: …` line per inline account, saying what to write instead.
pub fn refuse_inline(file: &Path, conf: &ScstConf) -> Result<()> {
    let errors: Vec<String> = accounts(conf)
        .filter(|a| !a.value.starts_with(crate::config::secrets::SCST_REF))
        .map(|a| {
            format!(
                "{}:{}: {} {}: the CHAP secret is written in scst.conf, which is baked into the public image: put the account in a secrets file as `[chap.NAME]` (user, password), write `{} {}NAME` here and build with `--secrets FILE`",
                file.display(),
                a.line,
                a.name,
                crate::util::redact::user_secret(&a.value),
                a.name,
                crate::config::secrets::SCST_REF
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{}", errors.join("\n"))
    }
}

/// `conf` with every `secret:NAME` account replaced by `USER PASSWORD` from `secrets`.
/// An unknown name is an error naming it and its line.
pub fn resolve_secrets(
    conf: &ScstConf,
    secrets: &crate::config::secrets::NodeSecrets,
) -> Result<ScstConf, String> {
    let mut out = conf.clone();
    for a in accounts_mut(&mut out) {
        let Some(name) = a.value.strip_prefix(crate::config::secrets::SCST_REF) else {
            continue;
        };
        let Some(c) = secrets.chap(name) else {
            return Err(format!(
                "line {}: {} names CHAP secret `{name}`, which is not in the node's secrets",
                a.line, a.name
            ));
        };
        a.value = format!("{} {}", c.user, c.password);
    }
    Ok(out)
}

/// Reads the `scst.conf` named by the node config's `[scst] conf` (relative to the node
/// config file) and validates it with the init's own parser and checks: an error fails
/// the build naming FILE:LINE.
pub fn load_node_scst(node_file: &Path, node: &ValidNode) -> Result<Option<NodeScstConf>> {
    let Some(s) = &node.scst else {
        return Ok(None);
    };
    let rel = Path::new(&s.conf);
    if rel
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        anyhow::bail!(
            "{}: [scst] conf `{}`: `..` is not allowed (the file is baked under /etc/sanforge)",
            node_file.display(),
            s.conf
        );
    }
    // Beside the node config: neither an absolute path nor a symlink may lead the
    // builder to another file of the host.
    let dir = crate::util::fs::parent_dir(node_file);
    let host = crate::util::paths::confine_to(rel, &dir, &[], "the node config's directory", "")
        .map_err(|m| anyhow::anyhow!("{}: [scst] conf {m}", node_file.display()))?;
    if host.exists() && !host.is_file() {
        anyhow::bail!(
            "{}: [scst] conf `{}`: expected a regular file",
            node_file.display(),
            s.conf
        );
    }
    let text = crate::util::fs::read_to_string(&host)
        .with_context(|| format!("[scst] conf of {}", node_file.display()))?;
    let (conf, _) = load_conf(&host, &text)
        .with_context(|| format!("invalid scst.conf for {}", node_file.display()))?;
    let image = crate::contract::conf_path(&s.conf);
    Ok(Some(NodeScstConf {
        image_path: image.to_string_lossy().trim_start_matches('/').to_string(),
        text,
        host_path: host,
        conf,
    }))
}
