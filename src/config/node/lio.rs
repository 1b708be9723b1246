//! Validation of `[lio]`: backstores, iSCSI targets, LUNs, ACLs and CHAP, each error at
//! the value at fault.

use super::{Acl, Backstore, BackstoreKind, IscsiTarget, Lio};
use crate::config::lio_attrib::{self};
use crate::config::spans::{at, Errors};
use crate::config::values::{self, is_iscsi_name, parse_size};
use std::collections::{BTreeMap, BTreeSet};

/// The `[lio]` checks of [`NodeConfig::validate`].
pub(super) fn validate_lio(lio: &Lio, errs: &mut Errors) {
    let mut stores = BTreeSet::new();
    let mut paths: BTreeMap<&str, &str> = BTreeMap::new();
    for (n, b) in lio.backstores.iter().enumerate() {
        validate_backstore(n, b, &mut stores, &mut paths, errs);
    }
    let mut iqns = BTreeSet::new();
    for (n, t) in lio.iscsi.iter().enumerate() {
        validate_iscsi_target(n, t, &stores, &mut iqns, errs);
    }
}

/// Backstore `n` of `[lio]`: its name (unique), kind, path (not shared with another
/// backstore), size, attributes and serial.
fn validate_backstore<'a>(
    n: usize,
    b: &'a Backstore,
    stores: &mut BTreeSet<&'a str>,
    paths: &mut BTreeMap<&'a str, &'a str>,
    errs: &mut Errors,
) {
    let at_b = |key: &str| at!["lio", "backstores", n, key].to_vec();
    if b.name.is_empty()
        || !b
            .name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    {
        errs.at(
            &at_b("name"),
            format!(
                "backstore name `{}`: expected letters, digits, `_` or `-`",
                b.name
            ),
        );
    }
    // A bad name still counts as defined: its LUNs get no second error.
    if !stores.insert(b.name.as_str()) {
        errs.at(
            &at_b("name"),
            format!("backstore `{}` is defined twice", b.name),
        );
    }
    // Why the size is unusable (not a size, 0, out of range), if it is.
    let size_err = b.size.as_deref().map(|s| parse_size(s, values::BYTE).err());
    let size_ok = size_err.as_ref().map(Option::is_none);
    let kind = match b.kind {
        BackstoreKind::Fileio => "fileio",
        BackstoreKind::Block => "block",
        BackstoreKind::Ramdisk => "ramdisk",
    };
    let size_why = |extra: &str| match size_err.clone().flatten() {
        Some(why) => format!("{kind} backstore `{}`: size {why}{extra}", b.name),
        None => format!(
            "{kind} backstore `{}`: expected a `size` like 64MiB{extra}",
            b.name
        ),
    };
    // The size's place when it is written, else the backstore's.
    let at_size = if b.size.is_some() {
        at_b("size")
    } else {
        at!["lio", "backstores", n].to_vec()
    };
    match b.kind {
        BackstoreKind::Fileio => {
            if b.path.as_deref().is_none_or(|p| !p.starts_with('/')) {
                errs.at(
                    &at_b("path"),
                    format!("fileio backstore `{}`: expected an absolute `path`", b.name),
                );
            }
            if size_ok != Some(true) {
                errs.at(
                    &at_size,
                    size_why(" (the kernel needs one to create the file)"),
                );
            }
        }
        BackstoreKind::Block => {
            if b.path.as_deref().is_none_or(|p| !p.starts_with("/dev/")) {
                errs.at(
                    &at_b("path"),
                    format!("block backstore `{}`: expected `path` under /dev/", b.name),
                );
            }
        }
        BackstoreKind::Ramdisk => {
            if size_ok != Some(true) {
                errs.at(&at_size, size_why(""));
            }
        }
    }
    if let Some(p) = b
        .path
        .as_deref()
        .filter(|_| b.kind != BackstoreKind::Ramdisk)
    {
        if let Some(first) = paths.insert(p, &b.name) {
            errs.at(
                &at_b("path"),
                format!(
                    "backstore `{}` uses {p}, which backstore `{first}` already uses: two backstores on one file or device corrupt each other's data",
                    b.name
                ),
            );
        }
    }
    check_backstore_attributes(n, b, errs);
    if let Some(s) = &b.serial {
        if s.is_empty() || s.len() > 80 || !s.bytes().all(|c| c.is_ascii_graphic()) {
            errs.at(
                &at_b("serial"),
                format!("serial `{s}`: expected up to 80 printable characters without spaces"),
            );
        }
    }
}

/// The `attributes` of backstore `n`: settable names, values in range, and what the
/// backstore's kind and write-back setting allow.
fn check_backstore_attributes(n: usize, b: &Backstore, errs: &mut Errors) {
    for (name, value) in &b.attributes {
        let at_a = &at!["lio", "backstores", n, "attributes", name].to_vec();
        match lio_attrib::check(name, *value) {
            // A name that cannot be set is the key's fault, a bad value the value's.
            Err(why) if !lio_attrib::settable(name) => {
                errs.key(at_a, format!("backstore `{}`: {why}", b.name))
            }
            Err(why) => errs.at(at_a, format!("backstore `{}`: {why}", b.name)),
            Ok(v) if v == "1"
                && b.kind == BackstoreKind::Ramdisk
                && lio_attrib::NEEDS_UNMAP.contains(&name.as_str()) =>
            {
                errs.at(
                    at_a,
                    format!(
                        "backstore `{}`: attribute `{name}` needs UNMAP, which ramdisk backstores do not have (use fileio on /run for a LUN in RAM)",
                        b.name
                    ),
                )
            }
            Ok(v) if v == "0" && name == "emulate_write_cache" && b.write_back => errs.at(
                at_a,
                format!(
                    "backstore `{}`: emulate_write_cache = 0 with write-back = true would hide the page cache from initiators (they would never flush it): drop one",
                    b.name
                ),
            ),
            Ok(_) => {}
        }
    }
}

/// iSCSI target `n` of `[lio]`: its name (unique with its tpg), portals, LUNs (each on
/// a defined backstore) and ACLs.
fn validate_iscsi_target<'a>(
    n: usize,
    t: &'a IscsiTarget,
    stores: &BTreeSet<&str>,
    iqns: &mut BTreeSet<(&'a String, u16)>,
    errs: &mut Errors,
) {
    let at_t = |key: &str| at!["lio", "iscsi", n, key].to_vec();
    if !is_iscsi_name(&t.iqn) {
        errs.at(
            &at_t("iqn"),
            format!(
                "target name `{}`: expected an iSCSI name like iqn.2026-11.org.example:target",
                t.iqn
            ),
        );
    } else if !iqns.insert((&t.iqn, t.tpg)) {
        errs.at(
            &at_t("iqn"),
            format!("target `{}` tpg {} is defined twice", t.iqn, t.tpg),
        );
    }
    if t.portals.is_empty() {
        errs.at(
            &at_t("portals"),
            format!(
                "target `{}`: expected at least one portal like 0.0.0.0:3260",
                t.iqn
            ),
        );
    }
    let mut seen_portals = BTreeSet::new();
    for (j, p) in t.portals.iter().enumerate() {
        match p.parse::<std::net::SocketAddrV4>() {
            Err(_) => errs.at(
                at!["lio", "iscsi", n, "portals", j],
                format!("portal `{p}`: expected ip:port like 0.0.0.0:3260"),
            ),
            Ok(addr) if !seen_portals.insert(addr) => errs.at(
                at!["lio", "iscsi", n, "portals", j],
                format!("portal {p} is listed twice for `{}`", t.iqn),
            ),
            Ok(_) => {}
        }
    }
    let mut luns = BTreeSet::new();
    for (j, l) in t.luns.iter().enumerate() {
        if !stores.contains(l.backstore.as_str()) {
            errs.at(
                at!["lio", "iscsi", n, "luns", j, "backstore"],
                format!(
                    "LUN {} of `{}` uses backstore `{}`, which is not defined",
                    l.lun, t.iqn, l.backstore
                ),
            );
        }
        if !luns.insert(l.lun) {
            errs.at(
                at!["lio", "iscsi", n, "luns", j, "lun"],
                format!("LUN {} of `{}` is defined twice", l.lun, t.iqn),
            );
        }
    }
    let mut inits = BTreeSet::new();
    for (k, a) in t.acls.iter().enumerate() {
        validate_acl(n, k, a, t, &luns, &mut inits, errs);
    }
}

/// ACL `k` of iSCSI target `n`: its initiator (one ACL each), mapped LUNs (of the
/// target, each mapped once) and CHAP.
fn validate_acl<'a>(
    n: usize,
    k: usize,
    a: &'a Acl,
    t: &IscsiTarget,
    luns: &BTreeSet<u32>,
    inits: &mut BTreeSet<&'a String>,
    errs: &mut Errors,
) {
    let at_a = |key: &str| at!["lio", "iscsi", n, "acls", k, key].to_vec();
    if !is_iscsi_name(&a.initiator) {
        errs.at(
            &at_a("initiator"),
            format!(
                "initiator name `{}`: expected an iSCSI name like iqn.2026-11.org.example:host",
                a.initiator
            ),
        );
    } else if !inits.insert(&a.initiator) {
        errs.at(
            &at_a("initiator"),
            format!("initiator `{}` has two ACLs on `{}`", a.initiator, t.iqn),
        );
    }
    let mut mapped = BTreeSet::new();
    for (m, ml) in a.mapped_luns.iter().enumerate() {
        let at_m = |key: &str| at!["lio", "iscsi", n, "acls", k, "mapped-luns", m, key].to_vec();
        if !luns.contains(&ml.lun) {
            errs.at(
                &at_m("lun"),
                format!(
                    "ACL `{}` maps target LUN {}, which `{}` does not have",
                    a.initiator, ml.lun, t.iqn
                ),
            );
        }
        if !mapped.insert(ml.mapped) {
            errs.at(
                &at_m("mapped"),
                format!("ACL `{}` maps LUN {} twice", a.initiator, ml.mapped),
            );
        }
    }
    if let Some(c) = &a.chap {
        let inline = !c.userid.is_empty() || !c.password.is_empty();
        match &c.secret {
            Some(_) if inline => errs.at(
                &at_a("chap"),
                format!("CHAP for `{}`: give either `secret` (the name of an account in the node's secrets) or `userid` and `password`, not both", a.initiator),
            ),
            Some(name) if !crate::config::secrets::is_secret_name(name) => errs.at(
                at!["lio", "iscsi", n, "acls", k, "chap", "secret"],
                format!("CHAP secret name `{name}` of `{}`: expected letters, digits, `.`, `_`, `-` or `:`", a.initiator),
            ),
            Some(_) => {}
            None => {
                if c.userid.is_empty() || !(12..=16).contains(&c.password.len()) {
                    errs.at(
                        &at_a("chap"),
                        format!(
                            "CHAP for `{}`: expected `secret = \"NAME\"`, or a userid and a password of 12 to 16 characters",
                            a.initiator
                        ),
                    );
                }
            }
        }
    }
}
