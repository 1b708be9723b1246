//! The software bill of materials: a CycloneDX 1.5 JSON document (`sbom.cdx.json`)
//! written beside `manifest.json`.
//!
//! Why it exists: operators of storage nodes are asked "which kernel, which patches,
//! which packages, which firmware is in this image?" by scanners that read CycloneDX.
//! The SBOM is derived from `manifest.json` alone ([`sbom_from_manifest`] is a pure
//! function) so it can never disagree with the manifest, and it is deterministic: the
//! serial number is derived from a hash of the manifest and the timestamp is the
//! recipe's `source-date-epoch`, never the wall clock.
//!
//! Reads: the manifest JSON value (`recipe`, `keys`, `inputs`, `kernel`, `packages`,
//! `init`, `modules`, `outputs`, and `firmware` when present).

use crate::util::hash::sha256_bytes;
use crate::util::time::rfc3339;
use serde_json::{json, Value};

/// The CycloneDX specification version written.
pub const SPEC_VERSION: &str = "1.5";
/// File name of the SBOM in an output directory.
pub const FILE: &str = "sbom.cdx.json";

/// Builds the CycloneDX document for the image a manifest describes.
pub fn sbom_from_manifest(m: &Value) -> Value {
    let recipe = &m["recipe"];
    let sde = recipe["source-date-epoch"].as_u64().unwrap_or(0);
    let outputs_key = m
        .pointer("/keys/outputs")
        .and_then(Value::as_str)
        .unwrap_or("");
    let sanforge_version = m
        .pointer("/sanforge/version")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let mut components = Vec::new();

    if let Some(k) = kernel(m) {
        components.push(k);
    }
    for input in arr(&m["inputs"]) {
        let name = input["name"].as_str().unwrap_or("");
        if name.is_empty() || name == "kernel" || name.starts_with("package:") {
            continue;
        }
        components.push(source(input));
    }
    for fw in arr(&m["firmware"]) {
        components.push(firmware(fw));
    }
    let default_arch = m
        .pointer("/recipe/arch")
        .and_then(Value::as_str)
        .unwrap_or(host_debian_arch());
    for p in arr(&m["packages"]) {
        components.push(package(p, default_arch));
    }
    components.push(json!({
        "type": "application",
        "bom-ref": "init",
        "name": "sanforge-init",
        "version": sanforge_version,
        "description": "PID 1 of the image",
        "hashes": hashes(m.pointer("/init/sha256").and_then(Value::as_str)),
    }));

    let refs: Vec<Value> = components
        .iter()
        .filter_map(|c| c.get("bom-ref").cloned())
        .collect();
    let image_name = recipe["name"].as_str().unwrap_or("image");
    let mut image_props = vec![
        prop(
            "sanforge:recipe:file",
            recipe["file"].as_str().unwrap_or(""),
        ),
        prop(
            "sanforge:recipe:sha256",
            recipe["sha256"].as_str().unwrap_or(""),
        ),
        prop("sanforge:source-date-epoch", &sde.to_string()),
        prop("sanforge:outputs-key", outputs_key),
    ];
    if let Some(stack) = recipe["target-stack"].as_str() {
        image_props.push(prop("sanforge:target-stack", stack));
    }
    for o in arr(&m["outputs"]) {
        if let (Some(f), Some(sha)) = (o["file"].as_str(), o["sha256"].as_str()) {
            image_props.push(prop(&format!("sanforge:output:{f}:sha256"), sha));
        }
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial_number(m),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(sde),
            "tools": { "components": [ {
                "type": "application",
                "name": "sanforge",
                "version": sanforge_version,
            } ] },
            "component": {
                "type": "operating-system",
                "bom-ref": "image",
                "name": image_name,
                "version": outputs_key.chars().take(12).collect::<String>(),
                "description": "sanforge storage-node image",
                "properties": image_props,
            },
        },
        "components": components,
        "dependencies": [ { "ref": "image", "dependsOn": refs } ],
    })
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(|a| a.as_slice()).unwrap_or(&[])
}

fn prop(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

fn hashes(sha256: Option<&str>) -> Value {
    match sha256 {
        Some(h) if !h.is_empty() => json!([{ "alg": "SHA-256", "content": h }]),
        _ => json!([]),
    }
}

/// A version for things that have none but their content: `sha256:<12 hex>`.
fn content_version(sha256: Option<&str>) -> String {
    match sha256 {
        Some(h) if !h.is_empty() => format!("sha256:{}", h.chars().take(12).collect::<String>()),
        _ => "unknown".to_string(),
    }
}

fn kernel(m: &Value) -> Option<Value> {
    let k = m.get("kernel")?;
    let input = arr(&m["inputs"]).iter().find(|i| i["name"] == "kernel");
    let mut props = vec![prop(
        "sanforge:kernel:config-sha256",
        k["config-sha256"].as_str().unwrap_or(""),
    )];
    if let Some(c) = k["cmdline"].as_str() {
        props.push(prop("sanforge:kernel:cmdline", c));
    }
    for (i, p) in arr(&k["patches"]).iter().enumerate() {
        props.push(prop(
            &format!("sanforge:kernel:patch:{:03}", i + 1),
            p.as_str().unwrap_or(""),
        ));
    }
    for (i, f) in arr(&k["fragments"]).iter().enumerate() {
        props.push(prop(
            &format!("sanforge:kernel:fragment:{:03}", i + 1),
            f.as_str().unwrap_or(""),
        ));
    }
    props.push(prop(
        "sanforge:kernel:modules",
        &arr(&m["modules"]).len().to_string(),
    ));
    if let Some(i) = input {
        props.push(prop(
            "sanforge:source:kind",
            i["kind"].as_str().unwrap_or(""),
        ));
        props.push(prop(
            "sanforge:source:origin",
            i["origin"].as_str().unwrap_or(""),
        ));
    }
    let mut c = json!({
        "type": "operating-system",
        "bom-ref": "kernel",
        "name": "linux",
        "version": k["release"].as_str().unwrap_or("unknown"),
        "description": "Linux kernel built from the recipe's source, config and patch series",
        "hashes": hashes(k["source-sha256"].as_str()),
        "properties": props,
    });
    if let Some(i) = input {
        add_external_refs(&mut c, i);
    }
    Some(c)
}

/// Mirrors of a `url` source as distribution references.
fn add_external_refs(c: &mut Value, input: &Value) {
    if input["kind"] != "url" {
        return;
    }
    let refs: Vec<Value> = input["origin"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .map(|u| json!({ "type": "distribution", "url": u }))
        .collect();
    if !refs.is_empty() {
        c["externalReferences"] = Value::Array(refs);
    }
}

/// A named source of the recipe (out-of-tree module trees, SCST, …).
fn source(input: &Value) -> Value {
    let name = input["name"].as_str().unwrap_or("");
    let sha = input["sha256"].as_str();
    let tree = input["tree"].as_str();
    let mut properties = vec![
        prop("sanforge:source:kind", input["kind"].as_str().unwrap_or("")),
        prop(
            "sanforge:source:origin",
            input["origin"].as_str().unwrap_or(""),
        ),
    ];
    // Pinned by its unpacked content (`tree-v1:<hex>`, the sha256 of its manifest).
    if let Some(t) = tree {
        properties.push(prop("sanforge:source:tree", t));
    }
    let version = match tree {
        Some(t) => format!(
            "tree:{}",
            t.rsplit(':')
                .next()
                .unwrap_or("")
                .chars()
                .take(12)
                .collect::<String>()
        ),
        None => content_version(sha),
    };
    let mut c = json!({
        "type": "library",
        "bom-ref": format!("source:{name}"),
        "name": name,
        "version": version,
        "hashes": hashes(sha),
        "properties": properties,
    });
    add_external_refs(&mut c, input);
    c
}

/// A firmware blob: an object (`name`/`file`/`path`, `version`, `sha256`, `source`)
/// or a bare file name.
fn firmware(fw: &Value) -> Value {
    let (name, version, sha, origin) = match fw {
        Value::String(s) => (s.as_str(), None, None, None),
        _ => (
            ["name", "file", "path"]
                .iter()
                .find_map(|k| fw[*k].as_str())
                .unwrap_or("unknown"),
            fw["version"].as_str(),
            fw["sha256"].as_str(),
            fw["source"].as_str().or(fw["origin"].as_str()),
        ),
    };
    let mut c = json!({
        "type": "firmware",
        "bom-ref": format!("firmware:{name}"),
        "name": name,
        "version": version.map(String::from).unwrap_or_else(|| content_version(sha)),
        "hashes": hashes(sha),
    });
    let mut properties = Vec::new();
    if let Some(o) = origin {
        properties.push(prop("sanforge:source:origin", o));
    }
    // The Debian package the file was taken from (`firmware-qlogic=20230210-5`).
    if let Some(p) = fw["package"].as_str() {
        properties.push(prop("sanforge:firmware:package", p));
    }
    if fw["waived"].as_bool() == Some(true) {
        properties.push(prop("sanforge:firmware:waived", "true"));
        if let Some(r) = fw["reason"].as_str() {
            properties.push(prop("sanforge:firmware:waived-reason", r));
        }
    }
    if let (false, Some(obj)) = (properties.is_empty(), c.as_object_mut()) {
        obj.insert("properties".into(), json!(properties));
    }
    c
}

fn package(p: &Value, default_arch: &str) -> Value {
    let name = p["name"].as_str().unwrap_or("");
    let version = p["version"].as_str().unwrap_or("");
    let arch = p["arch"].as_str().unwrap_or(default_arch);
    let purl = format!(
        "pkg:deb/debian/{}@{}?arch={}",
        purl_encode(name),
        purl_encode(version),
        purl_encode(arch)
    );
    json!({
        "type": "library",
        "bom-ref": purl,
        "name": name,
        "version": version,
        "purl": purl,
        "hashes": hashes(p["sha256"].as_str()),
    })
}

/// Debian's name for the architecture this program was built for (packages are
/// fetched for the build host's architecture).
fn host_debian_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "powerpc64" => "ppc64el",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

/// Percent-encoding of a purl segment: everything outside `A-Za-z0-9.-_~` and `:`
/// (which the purl spec leaves unencoded) becomes `%XX` (`+` → `%2B`).
pub fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `urn:uuid:` made from the sha256 of the manifest (serde_json writes object keys in
/// sorted order, so equal manifests give equal serials). Version and variant bits are
/// set as for a name-based (version 5) UUID, which the CycloneDX schema requires.
fn serial_number(m: &Value) -> String {
    let text = serde_json::to_string(m).unwrap_or_default();
    let h = hex::decode(sha256_bytes(text.as_bytes())).unwrap_or_default();
    let mut b = [0u8; 16];
    for (d, s) in b.iter_mut().zip(&h) {
        *d = *s;
    }
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        hex::encode(&b[..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..])
    )
}

/// The components of a CycloneDX document that lack a required field (`type`,
/// `name`, `version`), or whose hashes are not `SHA-256` with 64 hex digits: empty when
/// the document has the structure sanforge promises. Used by tests and by callers that
/// read an SBOM back.
pub fn check_structure(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    if doc["bomFormat"] != "CycloneDX" {
        problems.push("bomFormat is not CycloneDX".to_string());
    }
    if doc["specVersion"] != SPEC_VERSION {
        problems.push(format!("specVersion is not {SPEC_VERSION}"));
    }
    if !doc["version"].is_u64() {
        problems.push("version is not an integer".to_string());
    }
    let Some(components) = doc["components"].as_array() else {
        problems.push("components is not an array".to_string());
        return problems;
    };
    let mut refs = std::collections::BTreeSet::new();
    for (i, c) in components.iter().enumerate() {
        for field in ["type", "name", "version"] {
            if c[field].as_str().is_none_or(str::is_empty) {
                problems.push(format!("components[{i}] has no {field}"));
            }
        }
        if let Some(r) = c["bom-ref"].as_str() {
            if !refs.insert(r.to_string()) {
                problems.push(format!("components[{i}]: bom-ref {r} is not unique"));
            }
        }
        for h in arr(&c["hashes"]) {
            let ok = h["alg"] == "SHA-256"
                && h["content"]
                    .as_str()
                    .is_some_and(crate::util::hash::is_sha256);
            if !ok {
                problems.push(format!(
                    "components[{i}] has a hash that is not a SHA-256: {h}"
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::string_slice)]
    use super::*;

    fn manifest() -> Value {
        json!({
            "sanforge": { "version": "0.1.0" },
            "recipe": { "name": "n", "file": "recipes/n.toml", "sha256": "a".repeat(64), "source-date-epoch": 1767225600u64, "target-stack": "lio" },
            "keys": { "outputs": "b".repeat(64) },
            "inputs": [
                { "name": "kernel", "kind": "url", "origin": "https://a/linux.tar.xz https://b/linux.tar.xz", "sha256": "c".repeat(64) },
                { "name": "scst", "kind": "path", "origin": "src/scst", "sha256": "d".repeat(64) },
                { "name": "package:libstdc++6", "kind": "debian", "origin": "libstdc++6=12.2.0-14+deb12u1", "sha256": "e".repeat(64) },
            ],
            "kernel": { "release": "6.1.0-t", "source-sha256": "c".repeat(64), "config-sha256": "f".repeat(64), "cmdline": "console=ttyS0", "patches": ["patches/1.patch", "patches/2.patch"], "fragments": [] },
            "modules": ["kernel/a.ko"],
            "packages": [ { "name": "libstdc++6", "version": "12.2.0-14+deb12u1", "sha256": "e".repeat(64) }, { "name": "busybox", "version": "1:1.35.0-4+b3", "sha256": "1".repeat(64), "arch": "arm64" } ],
            "init": { "sha256": "2".repeat(64) },
            "outputs": [ { "file": "vmlinuz", "sha256": "3".repeat(64), "size": 1 } ],
        })
    }

    #[test]
    fn purls_encode_plus_and_keep_epochs() {
        let s = sbom_from_manifest(&manifest());
        let purls: Vec<&str> = s["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["purl"].as_str())
            .collect();
        assert_eq!(
            purls,
            [
                format!(
                    "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14%2Bdeb12u1?arch={}",
                    host_debian_arch()
                )
                .as_str(),
                "pkg:deb/debian/busybox@1:1.35.0-4%2Bb3?arch=arm64"
            ]
        );
    }

    #[test]
    fn structure_kernel_and_sources() {
        let m = manifest();
        let s = sbom_from_manifest(&m);
        assert_eq!(check_structure(&s), Vec::<String>::new());
        assert_eq!(s, sbom_from_manifest(&m), "not deterministic");
        let serial = s["serialNumber"].as_str().unwrap();
        assert_eq!(serial.len(), "urn:uuid:".len() + 36);
        assert_eq!(&serial[23..24], "5", "{serial}");
        assert_eq!(s["metadata"]["timestamp"], "2026-01-01T00:00:00Z");
        let comps = s["components"].as_array().unwrap();
        let k = comps.iter().find(|c| c["bom-ref"] == "kernel").unwrap();
        assert_eq!(k["version"], "6.1.0-t");
        assert_eq!(k["hashes"][0]["content"], "c".repeat(64));
        assert_eq!(k["externalReferences"].as_array().unwrap().len(), 2);
        let props = k["properties"].to_string();
        assert!(
            props.contains("patches/2.patch") && props.contains(&"f".repeat(64)),
            "{props}"
        );
        assert!(comps
            .iter()
            .any(|c| c["bom-ref"] == "source:scst" && c["hashes"][0]["content"] == "d".repeat(64)));
        // No firmware list: no firmware component; with one: listed.
        assert!(!comps.iter().any(|c| c["type"] == "firmware"));
        let mut m2 = m.clone();
        m2["firmware"] = json!([{ "name": "ql2500_fw.bin", "sha256": "4".repeat(64), "package": "firmware-qlogic=20230210-5" }, "rtl_nic/rtl8168h-2.fw"]);
        let s2 = sbom_from_manifest(&m2);
        assert_eq!(check_structure(&s2), Vec::<String>::new());
        let fw: Vec<&str> = s2["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "firmware")
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(fw, ["ql2500_fw.bin", "rtl_nic/rtl8168h-2.fw"]);
        // A file taken from a Debian package names it.
        let ql = s2["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "ql2500_fw.bin")
            .unwrap();
        assert!(
            ql["properties"]
                .to_string()
                .contains("firmware-qlogic=20230210-5"),
            "{ql}"
        );
        assert_ne!(s2["serialNumber"], s["serialNumber"]);
    }

    #[test]
    fn check_structure_reports_missing_fields() {
        let doc = json!({ "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": [ { "type": "library", "name": "x", "hashes": [ { "alg": "MD5", "content": "00" } ] } ] });
        let p = check_structure(&doc);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("version") && p[1].contains("SHA-256"),
            "{p:?}"
        );
    }
}
