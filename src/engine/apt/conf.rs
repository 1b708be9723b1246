//! The private apt state's configuration: apt.conf, the sources list, preferences.

use crate::config::userland::AptSource;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Whether two repository URIs name the same archive (apt writes `file:///x` as
/// `file:/x` and keeps a trailing slash).
pub(super) fn same_uri(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        u.replacen("file:///", "file:/", 1)
            .trim_end_matches('/')
            .to_string()
    };
    norm(a) == norm(b)
}

pub(super) fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", p.display()))
}

/// The apt configuration of a private state rooted at `d` (read through `APT_CONFIG`,
/// which apt reads before anything else: the host's `apt.conf.d` is never read).
pub(super) fn apt_conf(d: &Path, arch: &str) -> String {
    let p = |s: &str| d.join(s).display().to_string();
    format!(
        r#"Dir "{root}/";
Dir::State "{state}/";
Dir::State::status "{status}";
Dir::Cache "{cache}/";
Dir::Etc "{etc}/";
Dir::Etc::main "{etc}/apt.conf";
Dir::Etc::Parts "{etc}/apt.conf.d/";
Dir::Etc::Preferences "{etc}/preferences";
Dir::Etc::PreferencesParts "{etc}/preferences.d/";
Dir::Etc::SourceList "{etc}/sources.list";
Dir::Etc::SourceParts "{etc}/sources.list.d/";
Dir::Etc::Trusted "{etc}/trusted.gpg";
Dir::Etc::TrustedParts "{etc}/trusted.gpg.d/";
Dir::Log "{log}/";
APT::Architecture "{arch}";
APT::Architectures {{ "{arch}"; }};
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
Acquire::GzipIndexes "false";
Acquire::PDiffs "false";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";
Acquire::IndexTargets::deb::Contents-udeb::DefaultEnabled "false";
Acquire::IndexTargets::deb::Translations::DefaultEnabled "false";
"#,
        root = d.display(),
        state = p("state"),
        status = p("state/status"),
        cache = p("cache"),
        etc = p("etc"),
        log = p("log"),
    )
}

/// The deb822 sources file for `sources`.
pub(super) fn sources_file(sources: &[AptSource]) -> String {
    let mut out = String::new();
    for s in sources {
        out.push_str(&format!(
            "Types: deb\nURIs: {}\nSuites: {}\nComponents: {}\n",
            s.uri,
            s.suite,
            s.components.join(" ")
        ));
        if s.trusted {
            out.push_str("Trusted: yes\n");
        } else if let Some(k) = &s.signed_by {
            out.push_str(&format!("Signed-By: {}\n", k.display()));
        }
        out.push('\n');
    }
    out
}

/// apt preferences that make each held version the candidate (even an older one).
pub(super) fn preferences(holds: &BTreeMap<String, String>) -> String {
    holds
        .iter()
        .map(|(n, v)| format!("Package: {n}\nPin: version {v}\nPin-Priority: 1001\n\n"))
        .collect()
}
