//! The early boot steps: file systems, the node config, hostname and sysctls, kernel
//! modules.

use super::Init;
use super::{ha, modules, PRINTK_DEVKMSG};
use crate::config::node::{norm_mod, NodeConfig};
use crate::contract::{NODE_CONFIG, NODE_CONFIG_DIR};
use crate::sys::Sys;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Step 1: the kernel file systems, then console + kmsg logging.
pub fn mount_filesystems(init: &mut Init) -> Result<()> {
    const MOUNTS: [(&str, &str, &str, u64, &str); 7] = [
        (
            "proc",
            "/proc",
            "proc",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        ),
        (
            "sysfs",
            "/sys",
            "sysfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        ),
        ("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, "mode=0755"),
        // POSIX shared memory: libqb's IPC (Corosync, Pacemaker) lives here.
        (
            "tmpfs",
            "/dev/shm",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=1777",
        ),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=0755",
        ),
        (
            "tmpfs",
            "/tmp",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=1777",
        ),
        (
            "configfs",
            "/sys/kernel/config",
            "configfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "",
        ),
    ];
    for (src, target, fstype, flags, data) in MOUNTS {
        let t = Path::new(target);
        init.sys.mkdir(t)?;
        match init.sys.mount(src, t, fstype, flags, data) {
            Err(e) if e.errno() == Some(libc::EBUSY) => {
                init.log.line(&format!("{target} already mounted"))
            }
            r => r?,
        }
        if target == "/dev" {
            init.log.open_kmsg(init.sys);
        }
        if target == "/proc" {
            // The kernel keeps only 10 lines per 5 s that userspace writes to /dev/kmsg
            // unless told otherwise: the init's lines belong in the kernel log (and
            // reach remote syslog from there) in full. The kernel takes only `on\n`
            // (the word and exactly one newline; `on` alone is EINVAL). Best effort.
            let devkmsg = Path::new(PRINTK_DEVKMSG);
            if !init.sys.exists(devkmsg) {
                // A kernel without sysctls: nothing to turn off.
            } else if let Err(e) = init.sys.write_file(devkmsg, "on\n") {
                init.log.line(&format!(
                    "warning: {e}: the kernel may drop init lines beyond 10 per 5 s from its log"
                ));
            }
        }
        init.log.line(&format!("mounted {fstype} on {target}"));
    }
    Ok(())
}

/// The `sanforge.node=NAME` value of a kernel command line.
pub fn cmdline_node(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("sanforge.node="))
        .next_back()
}

/// Step 2: the node config; the command line may pick another node's file.
pub fn load_config(init: &mut Init) -> Result<()> {
    let (path, text) = if let Some(f) = init.config_file.clone() {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        (f, text)
    } else {
        let mut path = PathBuf::from(NODE_CONFIG);
        let cmdline = init
            .sys
            .read_to_string(Path::new("/proc/cmdline"))
            .unwrap_or_default();
        if let Some(name) = cmdline_node(&cmdline) {
            let p = Path::new(NODE_CONFIG_DIR).join(format!("{name}.toml"));
            if !name.is_empty() && !name.contains('/') && init.sys.exists(&p) {
                path = p;
            } else {
                init.warn(format!(
                    "sanforge.node={name}: {} not found, using {NODE_CONFIG}",
                    p.display()
                ));
            }
        } else if let Some(p) = ha::node_by_mac(init)? {
            path = p;
        }
        let text = init.sys.read_to_string(&path)?;
        (path, text)
    };
    let node = NodeConfig::parse(&path, &text)?;
    init.log.line(&format!(
        "node config {} (host {})",
        path.display(),
        node.hostname
    ));
    init.node = Some(node);
    Ok(())
}

/// Step 3a: hostname and sysctls.
pub fn set_hostname_and_sysctls(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let mut failed = 0;
    if let Err(e) = init.sys.sethostname(&node.hostname) {
        init.warn(e);
        failed += 1;
    }
    for (k, v) in &node.sysctl {
        let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        if let Err(e) = init.sys.write_file(&p, v) {
            init.warn(format!("sysctl {k} = {v}: {e}"));
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} settings failed");
    }
    Ok(())
}

/// `/lib/modules/<uname -r>`, or the only directory under `/lib/modules`.
pub fn modules_dir(sys: &mut dyn Sys) -> Result<PathBuf> {
    let base = Path::new("/lib/modules");
    if let Some(rel) = sys.kernel_release() {
        let d = base.join(rel);
        if sys.exists(&d.join("modules.dep")) {
            return Ok(d);
        }
    }
    let dirs = sys.list_dir(base)?;
    match dirs.as_slice() {
        [one] => Ok(base.join(one)),
        [] => bail!("no kernel modules directory under /lib/modules"),
        many => bail!("several module directories under /lib/modules ({}) and none matches the running kernel", many.join(", ")),
    }
}

/// Step 3b: the modules the node names, in modules.dep order, with parameters,
/// honouring the blacklist (the devices' modules follow in [`hardware::hardware`]).
pub fn load_modules(init: &mut Init) -> Result<()> {
    let node = init.node()?;
    let m = &node.modules;
    if m.load.is_empty() {
        return Ok(());
    }
    let dir = modules_dir(init.sys)?;
    let db = modules::DepDb::parse(&init.sys.read_to_string(&dir.join("modules.dep"))?);
    let builtin = init
        .sys
        .read_to_string(&dir.join("modules.builtin"))
        .map(|t| modules::parse_builtin(&t))
        .unwrap_or_default();
    let plan = modules::load_order(&db, &builtin, &m.load, &m.blacklist);
    for b in &plan.builtin {
        init.log.line(&format!("module {b} is built in"));
    }
    let mut failed = plan.warnings.len();
    for w in &plan.warnings {
        init.warn(w);
    }
    for l in &plan.loads {
        let params = m
            .params
            .iter()
            .find(|(k, _)| norm_mod(k) == l.name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        match init.sys.finit_module(&dir.join(&l.path), params) {
            Ok(()) => init.log.line(&format!("loaded module {}", l.name)),
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                init.log.line(&format!("module {} already loaded", l.name))
            }
            Err(e) => {
                init.warn(modules::load_error(&l.name, &e));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} modules not loaded");
    }
    Ok(())
}
