//! The SCST `modules` stage on a fake project: a fake kernel tree (Linux's make
//! targets, a prebuilt in-tree qla2xxx.ko) and a fake SCST tree with SCST's make
//! interface (`make 2release`, `make -C <component> KDIR=… KVER=…`) whose "build"
//! copies small ELF objects with a real `.modinfo` section (compiled here with gcc).
//! Everything is created by the tests; the pipeline runs in about a second.

mod common;

use common::project::{text, Project};
use std::path::{Path, PathBuf};
use std::process::Command;

const REL: &str = "6.1.0-t";
const VERMAGIC: &str = "6.1.0-t SMP mod_unload ";
const QLA_ALIAS: &str = "alias=pci:v00001077d00002532sv*sd*bc*sc*i*";

/// Makefile text with `>` at the start of a recipe line standing for a tab.
fn mk(s: &str) -> String {
    s.lines()
        .map(|l| {
            l.strip_prefix('>')
                .map(|r| format!("\t{r}"))
                .unwrap_or_else(|| l.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const FAKE_KERNEL: &str = r#"# fake kernel build with a version and an in-tree qla2xxx module
O ?= .
VERSION = 6
PATCHLEVEL = 1
SUBLEVEL = 0
REL := 6.1.0$(LOCALVERSION)
tinyconfig defconfig allnoconfig:
>mkdir -p $(O)
>printf 'CONFIG_64BIT=y\nCONFIG_MODULES=y\nCONFIG_SCSI_QLA_FC=m\n' > $(O)/.config
olddefconfig:
>@true
bzImage:
>mkdir -p $(O)/arch/x86/boot $(O)/include/config
>printf 'fake bzImage\n' > $(O)/arch/x86/boot/bzImage
>echo $(REL) > $(O)/include/config/kernel.release
>cp -r drivers/scsi/qla2xxx $(O)/qla2xxx-as-built
modules:
>@true
modules_install:
>mkdir -p $(INSTALL_MOD_PATH)/lib/modules/$(REL)/kernel/drivers/scsi/qla2xxx
>cp prebuilt/qla2xxx.ko $(INSTALL_MOD_PATH)/lib/modules/$(REL)/kernel/drivers/scsi/qla2xxx/qla2xxx.ko
>printf 'kernel/drivers/scsi/qla2xxx/qla2xxx.ko:\n' > $(INSTALL_MOD_PATH)/lib/modules/$(REL)/modules.dep
"#;

const SCST_TOP: &str = r#"# fake SCST top-level Makefile
2release:
>echo RELEASE > scst/build_mode
"#;

const SCST_CORE: &str = r#"all:
>@test "$$(cat build_mode 2>/dev/null)" = RELEASE || { echo "scst: not in release mode (run make 2release first)"; exit 2; }
>@test -f $(KDIR)/.config || { echo "scst: KDIR=$(KDIR) is not a configured kernel tree"; exit 2; }
>@test "$(KVER)" = "$$(cat $(KDIR)/include/config/kernel.release)" || { echo "scst: KVER=$(KVER) is not the release of KDIR"; exit 2; }
>mkdir -p src/dev_handlers
>cp ../prebuilt/scst.ko src/scst.ko
>cp ../prebuilt/scst_vdisk.ko src/dev_handlers/scst_vdisk.ko
>echo 'scst_register' > src/Module.symvers
"#;

const QLA_TARGET: &str = r#"all:
>@test -f ../../scst/src/Module.symvers || { echo "qla2x00tgt: scst/src/Module.symvers missing (build scst first)"; exit 2; }
>@test -f $(KDIR)/.config || { echo "qla2x00tgt: bad KDIR"; exit 2; }
>@test "$(CONFIG_SCSI_QLA2XXX_TARGET)" = y || { echo "qla2x00tgt: CONFIG_SCSI_QLA2XXX_TARGET must be y"; exit 2; }
>if [ -n "$(BUILD_2X_MODULE)" ]; then cp ../../prebuilt/qla2xxx_scst.ko ../qla2xxx_scst.ko; fi
>cp ../../prebuilt/qla2x00tgt.ko qla2x00tgt.ko
"#;

const ISCSI_FAILS: &str = r#"all:
>@echo "  CC [M]  iscsi-scst/kernel/conn.o"
>@echo "iscsi-scst/kernel/conn.c:42:7: error: implicit declaration of function 'sk_data_ready_fake'"
>@exit 1
"#;

/// Compiles a tiny ELF object with a `.modinfo` section (`entries` joined by NUL).
fn ko(dest: &Path, entries: &[&str], code: &str) {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("m.c");
    let modinfo = entries.join("\\0");
    std::fs::write(&c, format!("__attribute__((section(\".modinfo\"), used)) static const char modinfo[] = \"{modinfo}\";\n{code}\n")).unwrap();
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let o = Command::new("gcc")
        .arg("-c")
        .arg("-o")
        .arg(dest)
        .arg(&c)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn vm(v: &str) -> String {
    format!("vermagic={v}")
}

struct Scst {
    p: Project,
}

impl Scst {
    /// A project with the fake kernel, the fake SCST tree and a QLogic node config.
    fn new() -> Scst {
        let p = Project::new();
        let root = p.root().to_path_buf();
        std::fs::write(root.join("fake-linux/Makefile"), mk(FAKE_KERNEL)).unwrap();
        std::fs::create_dir_all(root.join("fake-linux/drivers/scsi/qla2xxx")).unwrap();
        std::fs::write(
            root.join("fake-linux/drivers/scsi/qla2xxx/qla_os.c"),
            "/* upstream qla2xxx */\n",
        )
        .unwrap();
        std::fs::write(
            root.join("fake-linux/drivers/scsi/qla2xxx/Makefile"),
            "obj-$(CONFIG_SCSI_QLA_FC) += qla2xxx.o\n",
        )
        .unwrap();
        std::fs::write(
            root.join("fake-linux/drivers/Kconfig"),
            "source \"drivers/scsi/Kconfig\"\n",
        )
        .unwrap();
        ko(
            &root.join("fake-linux/prebuilt/qla2xxx.ko"),
            &[
                &vm(VERMAGIC),
                "name=qla2xxx",
                QLA_ALIAS,
                "firmware=ql2400_fw.bin",
                "firmware=ql2500_fw.bin",
            ],
            "int qla_in_tree(void) { return 1; }",
        );
        let s = root.join("scst-src");
        for (f, t) in [
            ("Makefile", SCST_TOP),
            ("scst/Makefile", SCST_CORE),
            ("qla2x00t-32gbit/qla2x00-target/Makefile", QLA_TARGET),
            (
                "iscsi-scst/Makefile",
                "all:\n>cp ../prebuilt/iscsi-scst.ko iscsi-scst.ko\n",
            ),
        ] {
            std::fs::create_dir_all(s.join(f).parent().unwrap()).unwrap();
            std::fs::write(s.join(f), mk(t)).unwrap();
        }
        std::fs::write(
            s.join("qla2x00t-32gbit/qla_os.c"),
            "/* SCST qla2x00t-32gbit */\n",
        )
        .unwrap();
        std::fs::write(s.join("qla2x00t-32gbit/Makefile_in-tree"), "obj-$(CONFIG_SCSI_QLA_FC) += qla2xxx.o\nobj-$(CONFIG_SCST_QLA_TGT_ADDON) += qla2x00tgt.o\n").unwrap();
        p.with_prebuilt(VERMAGIC);
        let scst = Scst { p };
        scst.node(&["qla2xxx"]);
        scst
    }

    fn root(&self) -> &Path {
        self.p.root()
    }

    fn node(&self, blacklist: &[&str]) {
        let bl: Vec<String> = blacklist.iter().map(|b| format!("\"{b}\"")).collect();
        std::fs::write(
            self.root().join("recipes/nodes/node.toml"),
            format!("hostname = \"fc-node\"\n\n[modules]\nload = [\"scst\", \"scst_vdisk\", \"qla2x00tgt\"]\nblacklist = [{}]\n", bl.join(", ")),
        )
        .unwrap();
    }

    /// Writes recipes/test.toml with `scst` as the body of its [scst] table.
    fn recipe(&self, scst: &str) {
        let text = format!(
            r#"[recipe]
name = "test"
source-date-epoch = 1767225600

[kernel]
source = {{ path = "fake-linux" }}
base = "tinyconfig"
fragments = ["base.config"]
forbid = ["CONFIG_TCM_QLA2XXX"]
localversion = "-t"

[target]
stack = "scst"

[node]
config = "recipes/nodes/node.toml"

[outputs]
zstd-level = 3

[scst]
{scst}
"#
        );
        std::fs::write(self.root().join("recipes/test.toml"), text).unwrap();
    }

    fn firmware_file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.root().join("firmware").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    fn build(&self) -> std::process::Output {
        self.p.run(&["build", "recipes/test.toml"])
    }

    fn out(&self) -> PathBuf {
        self.root().join("out/test")
    }

    /// The initramfs unpacked into a temporary directory.
    fn initramfs(&self) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "zstd -dc {} | cpio -idm --quiet",
                self.out().join("initramfs.cpio.zst").display()
            ))
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        d
    }
}

trait Prebuilt {
    fn with_prebuilt(&self, vermagic: &str);
}

impl Prebuilt for Project {
    /// The modules the fake SCST build "produces", with `vermagic` for SCST's own.
    fn with_prebuilt(&self, vermagic: &str) {
        let pre = self.root().join("scst-src/prebuilt");
        let v = vm(vermagic);
        let ksym = "__attribute__((section(\"__ksymtab_strings\"), used)) static const char ks[] = \"scst_register\";\nint scst_register(void) { return 0; }";
        let uses =
            "extern int scst_register(void);\nint init_module(void) { return scst_register(); }";
        ko(
            &pre.join("scst.ko"),
            &[&v, "name=scst", "license=GPL"],
            ksym,
        );
        ko(&pre.join("scst_vdisk.ko"), &[&v, "name=scst_vdisk"], uses);
        ko(
            &pre.join("qla2xxx_scst.ko"),
            &[&v, "name=qla2xxx_scst", QLA_ALIAS, "firmware=ql2500_fw.bin"],
            "int qla_scst(void) { return 0; }",
        );
        ko(&pre.join("qla2x00tgt.ko"), &[&v, "name=qla2x00tgt"], uses);
        ko(&pre.join("iscsi-scst.ko"), &[&v, "name=iscsi_scst"], uses);
    }
}

fn sha256(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn out_of_tree_build_installs_modules_firmware_and_index() {
    let s = Scst::new();
    let fw = s.firmware_file("ql2500_fw.bin", "fake ql2500 firmware\n");
    let fw_sha = sha256(&fw);
    s.recipe(&format!(
        "source = {{ path = \"scst-src\" }}\nmodules = [\"scst\", \"qla2x00t-32gbit\", \"iscsi-scst\"]\nfirmware = [{{ name = \"ql2500_fw.bin\", url = \"file://{}\", sha256 = \"{fw_sha}\" }}]\nwaive-firmware = [\"ql2400_fw.bin\"]\n",
        fw.display()
    ));
    // lock and plan see the SCST source and the firmware as named inputs.
    let o = s.p.run(&["lock", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let lock = std::fs::read_to_string(s.root().join("recipes/test.lock")).unwrap();
    assert!(
        lock.contains("\"scst\"")
            && lock.contains("\"firmware:ql2500_fw.bin\"")
            && lock.contains(&fw_sha),
        "{lock}"
    );
    let o = s.p.run(&["plan", "recipes/test.toml"]);
    let plan = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        plan.lines()
            .any(|l| l.starts_with("modules ") && l.contains("will run")),
        "{plan}"
    );
    assert!(
        plan.contains("not in the cache: firmware:ql2500_fw.bin"),
        "{plan}"
    );

    let o = s.build();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("modules"),
        "{}",
        text(&o)
    );
    let root = s.initramfs();
    let lib = root.path().join("lib/modules").join(REL);
    for m in [
        "extra/scst.ko",
        "extra/scst_vdisk.ko",
        "extra/qla2xxx_scst.ko",
        "extra/qla2x00tgt.ko",
        "extra/iscsi-scst.ko",
        "kernel/drivers/scsi/qla2xxx/qla2xxx.ko",
    ] {
        assert!(lib.join(m).is_file(), "{m} not in the initramfs");
    }
    // depmod ran over the kernel's modules and SCST's, with dependencies.
    let dep = std::fs::read_to_string(lib.join("modules.dep")).unwrap();
    assert!(
        dep.lines()
            .any(|l| l == "extra/qla2x00tgt.ko: extra/scst.ko"),
        "{dep}"
    );
    assert!(
        dep.lines()
            .any(|l| l.starts_with("kernel/drivers/scsi/qla2xxx/qla2xxx.ko:")),
        "{dep}"
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("lib/firmware/ql2500_fw.bin")).unwrap(),
        "fake ql2500 firmware\n"
    );
    assert!(!root.path().join("lib/firmware/ql2400_fw.bin").exists());

    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("manifest.json")).unwrap())
            .unwrap();
    let fwl = m["firmware"].as_array().unwrap();
    let f = fwl.iter().find(|f| f["name"] == "ql2500_fw.bin").unwrap();
    assert_eq!(f["sha256"], fw_sha.as_str());
    assert!(
        f["module"] == "qla2xxx" || f["module"] == "qla2xxx_scst",
        "{f}"
    );
    assert_eq!(
        fwl.iter().find(|f| f["name"] == "ql2400_fw.bin").unwrap()["waived"],
        true
    );
    let claims: Vec<&str> = m["scst"]["qlogic-pci"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["module"].as_str().unwrap())
        .collect();
    assert_eq!(claims, vec!["qla2xxx", "qla2xxx_scst"]);
    let mods: Vec<&str> = m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(mods.contains(&"extra/qla2xxx_scst.ko"), "{mods:?}");
    assert_eq!(m["scst"]["driver-mode"], "out-of-tree");
    assert!(m["scst"]["kernel-patches"].as_array().unwrap().is_empty());
    assert!(!m["keys"]["modules"].as_str().unwrap().is_empty());
    // The kernel tree was not swapped in out-of-tree mode.
    let kernel_src = std::fs::read_dir(s.p.cache.join("stages/kernel"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(
        std::fs::read_to_string(kernel_src.join("src/drivers/scsi/qla2xxx/qla_os.c"))
            .unwrap()
            .contains("upstream")
    );

    // A second build reuses every stage.
    let o = s.build();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ran: nothing"),
        "{}",
        text(&o)
    );
}

#[test]
fn node_must_blacklist_the_in_tree_qla2xxx() {
    let s = Scst::new();
    s.node(&[]);
    s.recipe("source = { path = \"scst-src\" }\nwaive-firmware = [\"ql2400_fw.bin\", \"ql2500_fw.bin\"]\n");
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("in-tree module qla2xxx") && t.contains("blacklist"),
        "{t}"
    );
}

#[test]
fn vermagic_mismatch_names_the_module() {
    let s = Scst::new();
    s.p.with_prebuilt("6.1.0-other SMP mod_unload ");
    s.recipe("source = { path = \"scst-src\" }\nwaive-firmware = [\"ql2400_fw.bin\", \"ql2500_fw.bin\"]\n");
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("built for another kernel"), "{t}");
    assert!(
        t.contains("qla2x00tgt (extra/qla2x00tgt.ko): vermagic `6.1.0-other SMP mod_unload`"),
        "{t}"
    );
    assert!(t.contains(VERMAGIC.trim()), "{t}");
}

#[test]
fn missing_firmware_names_module_and_file() {
    let s = Scst::new();
    s.recipe("source = { path = \"scst-src\" }\nwaive-firmware = [\"ql2400_fw.bin\"]\n");
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("ql2500_fw.bin (requested by module qla2xxx, module qla2xxx_scst)"),
        "{t}"
    );
    assert!(
        !t.contains("ql2400_fw.bin (requested"),
        "waived firmware reported missing: {t}"
    );
}

#[test]
fn waived_firmware_builds() {
    let s = Scst::new();
    s.recipe("source = { path = \"scst-src\" }\nwaive-firmware = [\"ql2400_fw.bin\", \"ql2500_fw.bin\"]\n");
    let o = s.build();
    assert!(o.status.success(), "{}", text(&o));
    let root = s.initramfs();
    assert!(!root.path().join("lib/firmware/ql2500_fw.bin").exists());
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("manifest.json")).unwrap())
            .unwrap();
    assert!(
        m["firmware"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["waived"] == true && f.get("sha256").is_none()),
        "{}",
        m["firmware"]
    );
}

#[test]
fn wrong_firmware_hash_shows_expected_and_actual() {
    let s = Scst::new();
    let fw = s.firmware_file("ql2500_fw.bin", "tampered\n");
    let wrong = "ab".repeat(32);
    s.recipe(&format!(
        "source = {{ path = \"scst-src\" }}\nfirmware = [{{ name = \"ql2500_fw.bin\", url = [\"file://{}\"], sha256 = \"{wrong}\" }}]\nwaive-firmware = [\"ql2400_fw.bin\"]\n",
        fw.display()
    ));
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("firmware ql2500_fw.bin"), "{t}");
    assert!(
        t.contains(&format!("expected {wrong}, got {}", sha256(&fw))),
        "{t}"
    );
}

#[test]
fn make_failure_shows_the_output_tail_and_the_log() {
    let s = Scst::new();
    std::fs::write(
        s.root().join("scst-src/iscsi-scst/Makefile"),
        mk(ISCSI_FAILS),
    )
    .unwrap();
    s.recipe("source = { path = \"scst-src\" }\nmodules = [\"scst\", \"iscsi-scst\"]\n");
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("building SCST component `iscsi-scst` failed"),
        "{t}"
    );
    assert!(
        t.contains("conn.c:42:7: error: implicit declaration"),
        "{t}"
    );
    assert!(t.contains("exited with status"), "{t}");
    assert!(t.contains("logs/modules.log"), "{t}");
}

#[test]
fn in_tree_mode_swaps_the_driver_and_applies_the_version_patches() {
    let s = Scst::new();
    let patch = "--- a/drivers/Kconfig\n+++ b/drivers/Kconfig\n@@ -1 +1,2 @@\n source \"drivers/scsi/Kconfig\"\n+# patched by scst for 6.1\n";
    let pdir = s.root().join("scst-src/scst/kernel");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("linux-6.1.patch"), patch).unwrap();
    std::fs::write(pdir.join("linux-5.10.patch"), "this would not apply\n").unwrap();
    s.recipe("source = { path = \"scst-src\" }\ndriver-mode = \"in-tree\"\nwaive-firmware = [\"ql2400_fw.bin\", \"ql2500_fw.bin\"]\n");
    let o = s.build();
    assert!(o.status.success(), "{}", text(&o));
    let kernel = std::fs::read_dir(s.p.cache.join("stages/kernel"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    // The kernel compiled SCST's driver, with its in-tree Makefile, and the 6.1 patch.
    let built = kernel.join("build/qla2xxx-as-built");
    assert!(std::fs::read_to_string(built.join("qla_os.c"))
        .unwrap()
        .contains("SCST qla2x00t-32gbit"));
    assert!(std::fs::read_to_string(built.join("Makefile"))
        .unwrap()
        .contains("SCST_QLA_TGT_ADDON"));
    assert!(std::fs::read_to_string(kernel.join("src/drivers/Kconfig"))
        .unwrap()
        .contains("patched by scst for 6.1"));
    assert!(std::fs::read_to_string(kernel.join("config"))
        .unwrap()
        .contains("CONFIG_SCSI_QLA2XXX_TARGET=y"));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["scst"]["driver-mode"], "in-tree");
    assert_eq!(
        m["scst"]["kernel-patches"],
        serde_json::json!(["scst/kernel/linux-6.1.patch"])
    );
    // In-tree mode builds only the target add-on: no qla2xxx_scst.ko.
    let files: Vec<&str> = m["scst"]["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["file"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"extra/qla2x00tgt.ko") && !files.contains(&"extra/qla2xxx_scst.ko"),
        "{files:?}"
    );
}

#[test]
fn in_tree_mode_without_patches_for_the_kernel_says_so() {
    let s = Scst::new();
    let pdir = s.root().join("scst-src/scst/kernel");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("nolockdep-4.9.patch"), "old\n").unwrap();
    s.recipe("source = { path = \"scst-src\" }\ndriver-mode = \"in-tree\"\nwaive-firmware = [\"ql2400_fw.bin\", \"ql2500_fw.bin\"]\n");
    let o = s.build();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("the SCST tree has no kernel patches for Linux 6.1"),
        "{t}"
    );
}

#[test]
fn in_tree_mode_failing_patch_names_the_file() {
    let s = Scst::new();
    let pdir = s.root().join("scst-src/scst/kernel");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::write(pdir.join("linux-6.1.patch"), "--- a/drivers/Kconfig\n+++ b/drivers/Kconfig\n@@ -1 +1 @@\n-source \"drivers/nothere/Kconfig\"\n+x\n").unwrap();
    s.recipe("source = { path = \"scst-src\" }\ndriver-mode = \"in-tree\"\nwaive-firmware = [\"ql2400_fw.bin\", \"ql2500_fw.bin\"]\n");
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("linux-6.1.patch does not apply") && t.contains("drivers/Kconfig"),
        "{t}"
    );
}

#[test]
fn recipe_errors_name_the_key() {
    let s = Scst::new();
    s.recipe("source = { path = \"scst-src\" }\nmodules = [\"scst\", \"scst_vdisk\"]\n");
    let o = s.p.run(&["plan", "recipes/test.toml"]);
    let t = text(&o);
    assert!(
        !o.status.success()
            && t.contains("unknown component `scst_vdisk`")
            && t.contains("test.toml:"),
        "{t}"
    );
    s.recipe("source = { path = \"scst-src\" }\ndriver-mode = \"sideways\"\n");
    let t = text(&s.p.run(&["plan", "recipes/test.toml"]));
    assert!(t.contains("driver-mode") || t.contains("sideways"), "{t}");
    s.recipe("source = { path = \"scst-src\" }\nfirmware = [{ name = \"ql2500_fw.bin\", url = \"https://example.org/ql2500_fw.bin\" }]\n");
    let t = text(&s.p.run(&["plan", "recipes/test.toml"]));
    assert!(
        t.contains("firmware `ql2500_fw.bin`: a `url` source needs `sha256`"),
        "{t}"
    );
    s.recipe("source = { path = \"scst-src\" }\nfirmware = [{ name = \"ql2500_fw.bin\", path = \"x\" }]\nwaive-firmware = [\"ql2500_fw.bin\"]\n");
    let t = text(&s.p.run(&["plan", "recipes/test.toml"]));
    assert!(t.contains("both provided and waived"), "{t}");
}

/// The flagship recipe plans offline and lists the SCST archive and the firmware as
/// missing from an empty cache.
#[test]
fn plan_of_the_flagship_recipe_lists_scst_and_firmware_missing() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sanforge"))
        .current_dir(repo)
        .env("SANFORGE_CACHE", cache.path())
        .env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"))
        .env("SANFORGE_PROGRESS", "plain")
        .args(["plan", "recipes/scst-fc-node.toml", "--json", "--out"])
        .arg(cache.path().join("out"))
        .output()
        .unwrap();
    let t = text(&o);
    // The recipe has no lock: its Debian packages (the kernel source, busybox) are
    // resolved by apt in a private state, from Debian's archive.
    assert!(o.status.success(), "{t}");
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stages: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        vec!["fetch", "kernel", "modules", "userland", "rootfs", "outputs"]
    );
    let why = plan[0]["reason"].as_str().unwrap();
    for want in [
        "scst",
        "firmware:ql2400_fw.bin",
        "firmware:ql2500_fw.bin",
        "kernel",
    ] {
        assert!(
            why.split([':', ',', ' ']).any(|w| w == want) || why.contains(&format!(" {want}")),
            "{want} not in {why}"
        );
    }
}

/// A tiny module built against the REAL kernel build tree of a finished kernel stage
/// (in the cache the builder uses: `$SANFORGE_CACHE`, else `$XDG_CACHE_HOME/sanforge`,
/// else `~/.cache/sanforge`; or `SANFORGE_REAL_KERNEL=<stage dir>`): its `.modinfo`,
/// read by sanforge without `modinfo`, has the kernel's vermagic and the firmware it
/// declares. The end-to-end tests, which `cargo test` runs before this one, build that
/// kernel; without one the test fails saying so, or, under SANFORGE_SKIP_E2E, says
/// it is skipped.
#[test]
fn real_kernel_fixture_module_has_the_kernels_vermagic() {
    let cache = sanforge::engine::cache::default_root().unwrap();
    // A stage's release and its in-tree modules, when it has some.
    let modules_of = |stage: &Path| -> Option<(String, Vec<PathBuf>)> {
        let release = std::fs::read_to_string(stage.join("kernel.release")).ok()?;
        let release = release.trim().to_string();
        let dir = stage.join("modules/lib/modules").join(&release);
        let m = sanforge::stages::firmware::find_modules(&dir).ok()?;
        (!m.is_empty()).then_some((release, m))
    };
    let found = match std::env::var_os("SANFORGE_REAL_KERNEL").map(PathBuf::from) {
        Some(stage) => {
            let m = modules_of(&stage).unwrap_or_else(|| {
                panic!(
                    "SANFORGE_REAL_KERNEL={}: not a finished kernel stage with modules",
                    stage.display()
                )
            });
            Some((stage, m))
        }
        None => std::fs::read_dir(cache.join("stages/kernel"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join(".complete").is_file() && p.join("build/.config").is_file())
            .find_map(|p| modules_of(&p).map(|m| (p, m))),
    };
    let Some((stage, (release, in_tree))) = found else {
        if common::skip_e2e("real_kernel_fixture_module_has_the_kernels_vermagic") {
            return;
        }
        panic!(
            "no finished real kernel stage with modules in {}: build recipes/storage-node.toml first (the end-to-end tests do), or set SANFORGE_REAL_KERNEL",
            cache.join("stages/kernel").display()
        );
    };
    let reference = &in_tree[0];
    let m = tempfile::tempdir().unwrap();
    std::fs::write(m.path().join("fixture.c"), "#include <linux/module.h>\nMODULE_LICENSE(\"GPL\");\nMODULE_FIRMWARE(\"ql2500_fw.bin\");\nstatic int __init fixture_init(void) { return 0; }\nmodule_init(fixture_init);\n").unwrap();
    std::fs::write(m.path().join("Kbuild"), "obj-m := fixture.o\n").unwrap();
    let o = Command::new("make")
        .arg("-C")
        .arg(stage.join("build"))
        .arg(format!("M={}", m.path().display()))
        .arg("modules")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr)
    );
    let ours = sanforge::stages::firmware::modinfo(&m.path().join("fixture.ko")).unwrap();
    let theirs = sanforge::stages::firmware::modinfo(reference).unwrap();
    assert_eq!(ours.first("vermagic"), theirs.first("vermagic"));
    assert!(ours
        .first("vermagic")
        .unwrap()
        .starts_with(&format!("{release} ")));
    assert_eq!(ours.all("firmware"), vec!["ql2500_fw.bin"]);
    assert_eq!(
        sanforge::stages::firmware::module_name(&m.path().join("fixture.ko"), &ours),
        "fixture"
    );
}
