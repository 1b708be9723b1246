//! What apt prints: `Inst` lines of a simulation, package stanzas, why a request is
//! unsatisfiable.

use super::{Stanza, REQUEST_PACKAGE};

/// `W: Skipping acquire of configured file 'contrib/binary-amd64/Packages' as
/// repository 'URI SUITE InRelease' doesn't have the component 'contrib' …` →
/// (component, repository).
pub(super) fn parse_missing_component(line: &str) -> Option<(String, String)> {
    let rest = line.split("as repository '").nth(1)?;
    let (repo, rest) = rest.split_once('\'')?;
    let comp = rest.split("doesn't have the component '").nth(1)?;
    let (comp, _) = comp.split_once('\'')?;
    Some((comp.to_string(), repo.to_string()))
}

/// apt's own explanation of why the request cannot be installed.
pub(super) fn unsatisfiable_message(all: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    let mut in_block = false;
    for l in all.lines() {
        if l.starts_with("The following packages have unmet dependencies") {
            in_block = true;
            lines.push(l);
            continue;
        }
        if in_block {
            if l.starts_with(' ') {
                lines.push(l);
                continue;
            }
            in_block = false;
        }
        if l.starts_with("E: ") {
            lines.push(l);
        }
    }
    let text = if lines.is_empty() {
        all.trim().to_string()
    } else {
        lines.join("\n  ")
    };
    format!("apt cannot install the recipe's packages together (`{REQUEST_PACKAGE}` stands for the recipe's package list):\n  {text}\nhint: loosen or change the version constraints apt names, or update the lock's pins with `sanforge lock --update PKG`")
}

/// `Inst NAME (VERSION SUITES [ARCH])` lines of `apt-get install --simulate`.
pub fn parse_inst_lines(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for l in text.lines() {
        let Some(rest) = l.strip_prefix("Inst ") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once(' ') else {
            continue;
        };
        let Some(open) = rest.find('(') else {
            continue;
        };
        let inner = &rest[open + 1..];
        let inner = inner.split(')').next().unwrap_or(inner);
        let version = inner.split_whitespace().next().unwrap_or("").to_string();
        let arch = inner
            .rfind('[')
            .and_then(|i| inner[i + 1..].split(']').next())
            .unwrap_or("")
            .to_string();
        if !version.is_empty() {
            out.push((name.to_string(), version, arch));
        }
    }
    out
}

/// The value of field `name` in one stanza (continuation lines joined).
pub(super) fn field(block: &str, name: &str) -> Option<String> {
    let mut lines = block.lines();
    while let Some(l) = lines.next() {
        if let Some(v) = l.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
            let mut v = v.trim().to_string();
            for c in lines.by_ref() {
                if c.starts_with(' ') || c.starts_with('\t') {
                    v.push(' ');
                    v.push_str(c.trim());
                } else {
                    break;
                }
            }
            return Some(v);
        }
    }
    None
}

/// Names of a Provides-like list: `a (= 1), b:any` → [a, b].
pub(super) fn split_names(list: &str) -> Vec<String> {
    list.split([',', '|'])
        .filter_map(|a| {
            let n = a.split_whitespace().next()?;
            let n = n.split(':').next().unwrap_or(n);
            (!n.is_empty()).then(|| n.to_string())
        })
        .collect()
}

pub(super) fn parse_stanza(block: &str) -> Stanza {
    let f = |n: &str| field(block, n);
    let mut depends = Vec::new();
    for n in ["Pre-Depends", "Depends"] {
        if let Some(v) = f(n) {
            depends.extend(
                v.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
            );
        }
    }
    Stanza {
        package: f("Package").unwrap_or_default(),
        version: f("Version").unwrap_or_default(),
        architecture: f("Architecture").unwrap_or_default(),
        source: f("Source").map(|s| s.split_whitespace().next().unwrap_or("").to_string()),
        essential: f("Essential").as_deref() == Some("yes"),
        depends,
        provides: split_names(&f("Provides").unwrap_or_default()),
        filename: f("Filename").unwrap_or_default(),
        sha256: f("SHA256").filter(|s| crate::util::hash::is_sha256(s)),
        size: f("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
        repository: String::new(),
        suite: String::new(),
    }
}
