//! Kernel module load order from `modules.dep` and `modules.builtin` (what depmod
//! writes under `/lib/modules/<release>/`): dependencies first, each module once,
//! builtin ones skipped, blacklisted ones never loaded. Pure: the init reads the files.

use crate::config::node::norm_mod;
use std::collections::{BTreeMap, BTreeSet};

/// `modules.dep`: module name → (path relative to the modules dir, dependency names).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DepDb {
    pub modules: BTreeMap<String, (String, Vec<String>)>,
}

/// `kernel/drivers/target/target_core_mod.ko.xz` → `target_core_mod`.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let stem = base.split_once(".ko").map_or(base, |(stem, _)| stem);
    norm_mod(stem)
}

impl DepDb {
    pub fn parse(text: &str) -> DepDb {
        let mut modules = BTreeMap::new();
        for line in text.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let path = path.trim();
            if path.is_empty() {
                continue;
            }
            let deps = deps.split_whitespace().map(module_name).collect();
            modules.insert(module_name(path), (path.to_string(), deps));
        }
        DepDb { modules }
    }
}

/// `modules.builtin`: names of the modules compiled into the kernel.
pub fn parse_builtin(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(module_name)
        .collect()
}

/// One module to load, with its path relative to the modules directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLoad {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    pub loads: Vec<ModuleLoad>,
    /// Requested modules compiled into the kernel (nothing to load).
    pub builtin: Vec<String>,
    /// Requested modules that will not be loaded, and why.
    pub warnings: Vec<String>,
}

/// The load order for `requested`: for each, its dependencies depth-first in
/// modules.dep order, then the module; a module already in the plan is not repeated.
/// A requested module that needs a blacklisted one is left out with a warning.
pub fn load_order(
    db: &DepDb,
    builtin: &BTreeSet<String>,
    requested: &[String],
    blacklist: &[String],
) -> LoadPlan {
    let black: BTreeSet<String> = blacklist.iter().map(|b| norm_mod(b)).collect();
    let mut plan = LoadPlan::default();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for r in requested {
        let n = norm_mod(r);
        if black.contains(&n) {
            plan.warnings
                .push(format!("module {r} is blacklisted: not loaded"));
            continue;
        }
        if builtin.contains(&n) {
            plan.builtin.push(n);
            continue;
        }
        let mut local = Vec::new();
        let mut visiting = Vec::new();
        match visit(db, builtin, &black, &done, &n, &mut visiting, &mut local) {
            Ok(()) => {
                for m in local {
                    if done.insert(m.name.clone()) {
                        plan.loads.push(m);
                    }
                }
            }
            Err(why) => plan.warnings.push(format!("module {r} not loaded: {why}")),
        }
    }
    plan
}

fn visit(
    db: &DepDb,
    builtin: &BTreeSet<String>,
    black: &BTreeSet<String>,
    done: &BTreeSet<String>,
    n: &str,
    visiting: &mut Vec<String>,
    out: &mut Vec<ModuleLoad>,
) -> Result<(), String> {
    if done.contains(n) || out.iter().any(|m| m.name == n) || builtin.contains(n) {
        return Ok(());
    }
    if visiting.iter().any(|v| v == n) {
        return Err(format!("dependency cycle through {n}"));
    }
    if black.contains(n) {
        return Err(format!("it depends on {n}, which is blacklisted"));
    }
    let Some((path, deps)) = db.modules.get(n) else {
        return Err(format!("{n} is not in modules.dep"));
    };
    visiting.push(n.to_string());
    for d in deps {
        visit(db, builtin, black, done, d, visiting, out)?;
    }
    visiting.pop();
    out.push(ModuleLoad {
        name: n.to_string(),
        path: path.clone(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/target/iscsi/iscsi_target_mod.ko: kernel/drivers/target/target_core_mod.ko kernel/crypto/crc32c_generic.ko kernel/lib/libcrc32c.ko
kernel/drivers/target/target_core_mod.ko: kernel/lib/configfs.ko kernel/crypto/crc32c_generic.ko
kernel/drivers/target/target_core_file.ko: kernel/drivers/target/target_core_mod.ko
kernel/crypto/crc32c_generic.ko:
kernel/lib/libcrc32c.ko: kernel/crypto/crc32c_generic.ko
kernel/lib/configfs.ko:
kernel/drivers/scsi/qla2xxx/qla2xxx.ko.xz: kernel/drivers/scsi/scsi_transport_fc.ko
kernel/drivers/scsi/scsi_transport_fc.ko:
kernel/drivers/net/a.ko: kernel/drivers/net/b.ko
kernel/drivers/net/b.ko: kernel/drivers/net/a.ko
";

    fn names(p: &LoadPlan) -> Vec<&str> {
        p.loads.iter().map(|m| m.name.as_str()).collect()
    }

    fn req(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_first_each_once() {
        let db = DepDb::parse(DEP);
        let p = load_order(
            &db,
            &BTreeSet::new(),
            &req(&["iscsi_target_mod", "target-core-file", "target_core_mod"]),
            &[],
        );
        assert_eq!(
            names(&p),
            [
                "configfs",
                "crc32c_generic",
                "target_core_mod",
                "libcrc32c",
                "iscsi_target_mod",
                "target_core_file"
            ]
        );
        assert_eq!(p.loads[0].path, "kernel/lib/configfs.ko");
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn blacklisted_dependency_names_both() {
        let db = DepDb::parse(DEP);
        let p = load_order(
            &db,
            &BTreeSet::new(),
            &req(&["qla2xxx", "configfs"]),
            &req(&["scsi_transport_fc"]),
        );
        assert_eq!(names(&p), ["configfs"]);
        assert_eq!(p.warnings.len(), 1);
        assert!(
            p.warnings[0].contains("qla2xxx") && p.warnings[0].contains("scsi_transport_fc"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn builtin_modules_are_skipped_and_unknown_ones_warned() {
        let db = DepDb::parse(DEP);
        let builtin =
            parse_builtin("kernel/lib/configfs.ko\nkernel/drivers/target/target_core_mod.ko\n");
        let p = load_order(
            &db,
            &builtin,
            &req(&["target_core_file", "configfs", "nosuch"]),
            &[],
        );
        assert_eq!(names(&p), ["target_core_file"]);
        assert_eq!(p.builtin, ["configfs"]);
        assert!(p.warnings[0].contains("nosuch"));
    }

    #[test]
    fn cycles_and_compressed_names() {
        let db = DepDb::parse(DEP);
        assert!(db.modules.contains_key("qla2xxx"));
        let p = load_order(&db, &BTreeSet::new(), &req(&["a"]), &[]);
        assert!(p.loads.is_empty());
        assert!(p.warnings[0].contains("cycle"), "{:?}", p.warnings);
    }
}
