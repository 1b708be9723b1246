//! Building SCST's components with `make` against the kernel build tree, and what a
//! failed build's output says (the first compiler error and its module).

use super::BuiltModule;
use crate::config::recipe::{DriverMode, Scst, SCST_COMPONENTS};
use crate::stages::firmware;
use crate::util::cmd::{Cmd, Log};
use crate::util::fs as ufs;
use crate::util::progress;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The first line of a build's output that is a compiler (or modpost) error, with
/// the tree's path removed: `scst/src/scst_main.c:42:7: error: …`.
pub(super) fn first_error(line: &str, tree: &Path) -> Option<String> {
    let l = line.trim();
    let is_error = l.contains(": error: ")
        || l.contains(": fatal error: ")
        || l.starts_with("ERROR: modpost:");
    if !is_error {
        return None;
    }
    let prefix = format!("{}/", tree.display());
    Some(l.replace(&prefix, ""))
}

/// The object kbuild is compiling on a `  CC [M]  path/x.o` line.
pub(super) fn compiling(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("CC [M]")?;
    Some(rest.trim().to_string())
}

/// The kernel module that `file` (a source file or an object, as the build printed
/// it: absolute, or relative to the tree or the component's make directory) belongs
/// to, from the Kbuild (or Makefile) beside it: `obj-m := NAME.o`, or `NAME-y` /
/// `NAME-objs` listing the file's object.
pub(super) fn module_of(file: &str, tree: &Path, make_dir: &str) -> Option<String> {
    let p = Path::new(file);
    let candidates = [tree.join(p), tree.join(make_dir).join(p), p.to_path_buf()];
    let dir = candidates
        .iter()
        .filter_map(|c| c.parent())
        .filter(|d| d.is_absolute())
        .find(|d| d.join("Kbuild").is_file() || d.join("Makefile").is_file())?;
    let object = format!("{}.o", p.file_stem()?.to_string_lossy());
    for kb in ["Kbuild", "Makefile"] {
        let Ok(text) = std::fs::read_to_string(dir.join(kb)) else {
            continue;
        };
        let joined = text.replace("\\\n", " ");
        let mut direct = None;
        for l in joined.lines() {
            let Some((lhs, rhs)) = l.split_once('=') else {
                continue;
            };
            let lhs = lhs.trim_end_matches([':', '+', '?']).trim();
            if !rhs.split_whitespace().any(|w| w == object) {
                continue;
            }
            if let Some(m) = lhs.strip_suffix("-y").or_else(|| lhs.strip_suffix("-objs")) {
                if !m.starts_with("obj") && !m.starts_with("ccflags") {
                    return Some(m.to_string());
                }
            }
            if lhs.starts_with("obj-") {
                direct = Some(object.trim_end_matches(".o").to_string());
            }
        }
        if direct.is_some() {
            return direct;
        }
    }
    None
}

/// Installs iscsi-scstd and iscsi-scst-adm (built with the iscsi-scst component) into
/// `root/usr/sbin`, after checking that they are static: the image may have no libc.
fn install_iscsi_daemon(tree: &Path, dir: &Path, log: &Log) -> Result<()> {
    let sbin = dir.join("root/usr/sbin");
    for prog in ["iscsi-scstd", "iscsi-scst-adm"] {
        let built = tree.join("iscsi-scst/usr").join(prog);
        if !built.is_file() {
            log.line(&format!("{} was not built: not installed", built.display()));
            continue;
        }
        match crate::image::elf::needed(&built)? {
            Some(info) if info.interpreter.is_none() && info.needed.is_empty() => {}
            _ => bail!(
                "{} is not statically linked (LOCAL_LD_FLAGS=-static was not honoured): the image has no libc for it",
                built.display()
            ),
        }
        ufs::create_dir_all(&sbin)?;
        let dst = sbin.join(prog);
        ufs::copy(&built, &dst)?;
        Cmd::new("strip").arg(&dst).run(log)?;
        progress::step(&format!("modules: installed /usr/sbin/{prog}"));
    }
    Ok(())
}

/// `make` in the SCST tree, against the kernel build tree, with the reproducible
/// build environment.
pub(super) struct Make<'a> {
    pub env: Vec<(String, String)>,
    pub jobs: usize,
    /// The unpacked SCST tree.
    pub tree: &'a Path,
    /// The kernel build tree (KDIR).
    pub kdir: &'a Path,
    pub release: &'a str,
    /// `[kernel.module-signing]`: each module is signed with the owner's key.
    pub signing: Option<&'a crate::config::module_signing::ModuleSigning>,
}

impl Make<'_> {
    fn with_env(&self, mut c: Cmd) -> Cmd {
        for (k, v) in &self.env {
            c = c.env(k, v);
        }
        c
    }

    /// `make 2release|2perf|2debug`: the recipe's build mode.
    pub fn select_build_mode(&self, scst: &Scst, log: &Log) -> Result<()> {
        let target = scst.build_mode.make_target();
        progress::step(&format!("modules: make {target}"));
        self.with_env(Cmd::new("make").arg("-C").arg(self.tree).arg(target))
            .run(log)
            .with_context(|| {
                format!(
                    "cannot select SCST's {} build mode (make {target})",
                    scst.build_mode.as_str()
                )
            })?;
        Ok(())
    }

    /// Builds SCST component `comp` and installs its modules (stripped) into the
    /// stage entry `dir`'s `extra/`, pushing each to `built`.
    pub fn component(
        &self,
        scst: &Scst,
        comp: &str,
        dir: &Path,
        built: &mut Vec<BuiltModule>,
        log: &Log,
    ) -> Result<()> {
        let Some((_, make_dir)) = SCST_COMPONENTS.iter().find(|(n, _)| *n == comp) else {
            return Ok(());
        };
        let mut cmd = Cmd::new("make")
            .arg("-C")
            .arg(self.tree.join(make_dir))
            .arg(format!("-j{}", self.jobs))
            .arg(format!("KDIR={}", self.kdir.display()))
            .arg(format!("KVER={}", self.release));
        if comp.starts_with("qla2x00t") {
            if scst.driver_mode == DriverMode::OutOfTree {
                cmd = cmd.args(["BUILD_2X_MODULE=y", "CONFIG_SCSI_QLA_FC=y"]);
            }
            cmd = cmd.arg("CONFIG_SCSI_QLA2XXX_TARGET=y");
        }
        if comp == "iscsi-scst" {
            // iscsi-scstd runs in an image whose userland may have no libc: link it
            // statically (its Makefile appends LOCAL_LD_FLAGS to the link line).
            cmd = cmd.arg("LOCAL_LD_FLAGS=-static");
        }
        progress::step(&format!("modules: building SCST component {comp}"));
        self.run_make(cmd, comp, make_dir, log)?;
        // The component's whole directory: qla2x00t-32gbit builds qla2xxx_scst.ko one
        // level above the qla2x00-target directory it is made from.
        let top = make_dir.split('/').next().unwrap_or(make_dir);
        if comp == "iscsi-scst" {
            install_iscsi_daemon(self.tree, dir, log)?;
        }
        let kos = firmware::find_modules(&self.tree.join(top))?;
        if kos.is_empty() {
            bail!("SCST component `{comp}` built no module (no .ko under {top}/)");
        }
        let extra = dir
            .join("root/lib/modules")
            .join(self.release)
            .join("extra");
        for ko in kos {
            let file_name = ko
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            if built.iter().any(|b| b.file == format!("extra/{file_name}")) {
                bail!(
                    "two SCST modules are named {file_name} (second: {})",
                    ko.display()
                );
            }
            let info = firmware::modinfo(&ko)?;
            let dst = extra.join(&file_name);
            ufs::copy(&ko, &dst)?;
            // As the kernel's INSTALL_MOD_STRIP=1 does: debug sections are most of an
            // out-of-tree module's size (qla2xxx_scst.ko: 17 MB before, ~1 MB after).
            Cmd::new("strip").arg("--strip-debug").arg(&dst).run(log)?;
            // Signed after stripping, as modules_install does (strip drops a signature).
            crate::stages::kernel::signing::sign_module(self.signing, self.kdir, &dst, log)?;
            built.push(BuiltModule {
                name: firmware::module_name(&ko, &info),
                file: format!("extra/{file_name}"),
                component: comp.to_string(),
                vermagic: info.first("vermagic").unwrap_or_default().to_string(),
                sha256: crate::util::hash::sha256_file(&dst)?,
            });
        }
        Ok(())
    }

    /// Runs a component's make; when it fails, the error names the compiler's first
    /// error and the module it was compiling: they say more than the last lines of
    /// make's output.
    fn run_make(&self, cmd: Cmd, comp: &str, make_dir: &str, log: &Log) -> Result<()> {
        let tree = self.tree;
        let mut first: Option<(String, Option<String>)> = None;
        let mut object = None;
        if let Err(e) = self.with_env(cmd).run_lines(log, |l| {
            if first.is_some() {
                return;
            }
            if let Some(o) = compiling(l) {
                object = Some(o);
            } else if let Some(err) = first_error(l, tree) {
                first = Some((err, object.take()));
            }
        }) {
            let msg = match &first {
                Some((line, object)) => {
                    let file = line.split(':').next().unwrap_or("");
                    let module = object
                        .as_deref()
                        .and_then(|o| module_of(o, tree, make_dir))
                        .or_else(|| module_of(file, tree, make_dir))
                        .map(|m| format!(" (module {m})"))
                        .unwrap_or_default();
                    format!("building SCST component `{comp}` failed{module}: {line}")
                }
                None => format!("building SCST component `{comp}` failed"),
            };
            return Err(e.context(msg));
        }
        Ok(())
    }
}
