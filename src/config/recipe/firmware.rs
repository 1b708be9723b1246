//! Firmware lists and waivers, as `[firmware]` (a recipe without SCST) or `[scst]`
//! `firmware` + `waive-firmware` write them.

use super::scst::Scst;
use super::source::{check_source, Source, SourceSpec, UrlList};
use super::Project;
use crate::config::spans::{at, Errors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

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

/// Named inputs like any [sources.NAME]: the lock pins them, fetch and plan see them.
pub(super) fn add_firmware_inputs(
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
pub(super) fn validate_firmware(
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

/// `[firmware]`, validated: a recipe with `[scst]` lists its firmware there instead.
pub(super) fn validate_firmware_table(
    spec: Option<&FirmwareTableSpec>,
    has_scst: bool,
    proj: &Project,
    raw_sources: &mut BTreeMap<String, SourceSpec>,
    sources: &mut BTreeMap<String, Source>,
    errs: &mut Errors,
) -> FirmwareSet {
    match (spec, has_scst) {
        (Some(_), true) => {
            errs.key(
                at!["firmware"],
                "[firmware]: an SCST recipe lists its firmware in [scst] firmware and [scst] waive-firmware (its modules stage checks the closure of every module)",
            );
            FirmwareSet::default()
        }
        (Some(spec), false) => {
            let mut inputs = Vec::new();
            let set = validate_firmware(
                ("firmware", "files", "waive"),
                &spec.files,
                &spec.waive,
                proj,
                errs,
                &mut inputs,
            );
            add_firmware_inputs(inputs, "[firmware]", raw_sources, sources, errs);
            set
        }
        (None, _) => FirmwareSet::default(),
    }
}
