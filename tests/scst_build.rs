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
    let built = sanforge::stages::kernel::obj_tree(&kernel).join("qla2xxx-as-built");
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

/// The flagship recipe plans from its lock and, from an empty cache, lists the SCST
/// tree, the kernel and the QLogic firmware (from Debian's firmware-qlogic, pinned in
/// the lock) as missing.
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
        "kernel",
        "firmware:ql2400_fw.bin",
        "firmware:ql2500_fw.bin",
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
            .filter(|p| {
                p.join(".complete").is_file()
                    && sanforge::stages::kernel::obj_tree(p)
                        .join(".config")
                        .is_file()
            })
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
        .arg(sanforge::stages::kernel::obj_tree(&stage))
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

// --- SCST sources pinned by tree (issue #13) ----------------------------------------

/// Runs a shell command in the project root.
fn sh(root: &Path, script: &str) {
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {}", text(&o));
}

/// The `tree-v1:…` hashes `sanforge fetch --import` printed, in order.
fn trees(o: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.starts_with("tree-v1:"))
        .map(str::to_string)
        .collect()
}

/// `sanforge fetch --import ARGS` with another cache (to learn a tree hash without
/// putting the tree into the project's cache).
fn tree_elsewhere(s: &Scst, args: &[&str]) -> String {
    let other = s.root().join("other-cache");
    let o =
        s.p.sanforge()
            .env("SANFORGE_CACHE", &other)
            .args(["fetch", "--import"])
            .args(args)
            .output()
            .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    trees(&o).pop().unwrap()
}

/// The entries of the project cache's tree store.
fn stored_trees(s: &Scst) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.p.cache.join("trees/v1"))
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn nothing_in_tmp(s: &Scst) -> bool {
    std::fs::read_dir(s.p.cache.join("tmp"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

const WAIVE_ALL: &str = "waive-firmware = [\"ql2400_fw.bin\", { name = \"ql2500_fw.bin\", reason = \"no 25xx HBAs here\" }]\n";

#[test]
fn scst_pinned_by_tree_builds_from_an_archive_or_a_checkout_whatever_its_top_folder() {
    let s = Scst::new();
    let root = s.root();
    // The same tree three ways: an archive with a top folder, a flat .tar.xz, and the
    // directory itself (with a .git that does not count).
    sh(root, "mkdir -p scst-src/.git && echo ref > scst-src/.git/HEAD && tar -czf scst-9.9.tar.gz --exclude=.git --transform 's|^scst-src|scst-9.9|' scst-src && tar -cJf flat.tar.xz --exclude=.git -C scst-src .");
    let o = s.p.run(&[
        "fetch",
        "--import",
        "scst-9.9.tar.gz",
        "flat.tar.xz",
        "scst-src",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = trees(&o);
    assert_eq!(t.len(), 3, "{}", text(&o));
    assert!(t[0] == t[1] && t[1] == t[2], "{t:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("top folder `scst-9.9/`"),
        "{}",
        text(&o)
    );
    // Both archives are also blobs (a recipe may pin them by sha256).
    assert!(s
        .p
        .cache
        .join("blobs/sha256")
        .join(sha256(&root.join("scst-9.9.tar.gz")))
        .is_file());
    // The mirror does not exist: the tree store has it.
    s.recipe(&format!(
        "source = {{ url = [\"file:///nonexistent/scst-9.9.tar.gz\"], tree = \"{}\" }}\nbuild-mode = \"release\"\n{WAIVE_ALL}",
        t[0]
    ));
    let o = s.p.run(&["lock", "recipes/test.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    let lock = std::fs::read_to_string(root.join("recipes/test.lock")).unwrap();
    let entry = lock
        .split("[[source]]")
        .find(|e| e.contains("name = \"scst\""))
        .unwrap();
    assert!(
        entry.contains(&format!("tree = \"{}\"", t[0])) && !entry.contains("sha256"),
        "{lock}"
    );
    let o = s.build();
    assert!(o.status.success(), "{}", text(&o));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("manifest.json")).unwrap())
            .unwrap();
    let input = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "scst")
        .unwrap();
    assert_eq!(input["tree"], t[0].as_str());
    assert!(input.get("sha256").is_none(), "{input}");
    assert_eq!(m["scst"]["build-mode"], "release");
    let fw = m["firmware"].as_array().unwrap();
    let ql2500 = fw.iter().find(|f| f["name"] == "ql2500_fw.bin").unwrap();
    assert_eq!(ql2500["reason"], "no 25xx HBAs here");
    assert!(
        fw.iter()
            .find(|f| f["name"] == "ql2400_fw.bin")
            .unwrap()
            .get("reason")
            .is_none(),
        "{fw:?}"
    );
    let sbom = std::fs::read_to_string(s.out().join("sbom.cdx.json")).unwrap();
    assert!(sbom.contains(&t[0]), "the SBOM does not name the tree");
    // The store is read-only and holds exactly the tree (no .git).
    let store =
        s.p.cache
            .join("trees/v1")
            .join(t[0].trim_start_matches("tree-v1:"));
    assert!(store.join("scst/Makefile").is_file() && !store.join(".git").exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(store.join("scst/Makefile"))
            .unwrap()
            .permissions()
            .mode()
            & 0o222,
        0
    );
    // A `path` source pinned by the same tree: the archive in the project.
    s.recipe(&format!(
        "source = {{ path = \"scst-9.9.tar.gz\", tree = \"{}\" }}\n{WAIVE_ALL}",
        t[0]
    ));
    let o = s.build();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_archive_of_another_tree_is_refused_with_both_hashes_and_nothing_is_kept() {
    let s = Scst::new();
    let root = s.root();
    let good = tree_elsewhere(&s, &["scst-src"]);
    // The same tree with one file changed, as an archive a mirror serves.
    sh(
        root,
        "cp -r scst-src bad && echo '# changed' >> bad/scst/Makefile && tar -czf bad.tar.gz bad",
    );
    let bad = tree_elsewhere(&s, &["bad.tar.gz"]);
    s.recipe(&format!(
        "source = {{ url = [\"file://{}/bad.tar.gz\"], tree = \"{good}\" }}\n{WAIVE_ALL}",
        root.display()
    ));
    let o = s.p.run(&["fetch", "recipes/test.toml"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&format!("tree mismatch: expected {good}")) && t.contains(&bad),
        "{t}"
    );
    assert!(t.contains("top folder `bad/`"), "{t}");
    // This cache never saw the expected tree: it says so instead of guessing.
    assert!(t.contains("has never been in this cache"), "{t}");
    assert!(t.contains("sanforge fetch --import"), "{t}");
    assert!(stored_trees(&s).is_empty(), "{:?}", stored_trees(&s));
    assert!(nothing_in_tmp(&s));

    // A cache that knows the expected tree (its manifest stays when the tree is gone)
    // names the first differing path.
    let o = s.p.run(&["fetch", "--import", "scst-src"]);
    assert!(o.status.success(), "{}", text(&o));
    let dir =
        s.p.cache
            .join("trees/v1")
            .join(good.trim_start_matches("tree-v1:"));
    sh(
        root,
        &format!("chmod -R u+w {0} && rm -rf {0}", dir.display()),
    );
    let o = s.p.run(&["fetch", "recipes/test.toml"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("first difference: scst/Makefile: content differs"),
        "{t}"
    );
    assert!(!dir.exists());
    assert!(nothing_in_tmp(&s));

    // A local path pinned by tree that no longer has it: both hashes, nothing stored.
    s.recipe(&format!(
        "source = {{ path = \"bad\", tree = \"{good}\" }}\n{WAIVE_ALL}"
    ));
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&format!("expected {good}")) && t.contains(&bad),
        "{t}"
    );
    assert!(!dir.exists());
}

#[test]
fn a_cached_tree_edited_behind_sanforges_back_is_found_and_removed() {
    let s = Scst::new();
    let o = s.p.run(&["fetch", "--import", "scst-src"]);
    assert!(o.status.success(), "{}", text(&o));
    let good = trees(&o).pop().unwrap();
    let dir =
        s.p.cache
            .join("trees/v1")
            .join(good.trim_start_matches("tree-v1:"));
    sh(
        s.root(),
        &format!(
            "chmod u+w {0}/scst {0}/scst/Makefile && echo tampered >> {0}/scst/Makefile",
            dir.display()
        ),
    );
    s.recipe(&format!(
        "source = {{ url = [\"file:///nonexistent.tar.gz\"], tree = \"{good}\" }}\n{WAIVE_ALL}"
    ));
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("was modified and was removed") && t.contains("scst/Makefile: content differs"),
        "{t}"
    );
    assert!(!dir.exists());
    // No half-made modules stage.
    assert!(std::fs::read_dir(s.p.cache.join("stages/modules"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true));
}

#[test]
fn an_archive_that_is_not_scst_is_refused_before_the_kernel_is_built() {
    let s = Scst::new();
    sh(
        s.root(),
        "mkdir -p notscst/src && echo hi > notscst/README && echo 'int x;' > notscst/src/main.c && tar -czf notscst-1.0.tar.gz notscst",
    );
    let o = s.p.run(&["fetch", "--import", "notscst-1.0.tar.gz"]);
    assert!(o.status.success(), "{}", text(&o));
    let tree = trees(&o).pop().unwrap();
    s.recipe(&format!(
        "source = {{ url = [\"file:///nonexistent.tar.gz\"], tree = \"{tree}\" }}\n{WAIVE_ALL}"
    ));
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains(&format!("source `scst` ({tree}) is not an SCST tree: expected scst/ and qla2x00t-32gbit/ at its top (the recipe builds scst, qla2x00t-32gbit)")),
        "{t}"
    );
    assert!(t.contains("it holds README, src/"), "{t}");
    assert!(
        !s.p.cache.join("stages/kernel").exists()
            || std::fs::read_dir(s.p.cache.join("stages/kernel"))
                .unwrap()
                .all(|e| !e.unwrap().path().join(".complete").exists()),
        "the kernel was built for a tree that cannot be SCST"
    );
}

#[test]
fn a_tree_that_does_not_compile_names_the_first_error_and_its_module() {
    let s = Scst::new();
    let src = s.root().join("scst-src/scst");
    std::fs::write(
        src.join("Makefile"),
        mk(r#"all:
>@echo "  CC [M]  $(CURDIR)/src/scst_copy_mgr.o"
>@echo "$(CURDIR)/src/scst_copy_mgr.c:7:1: warning: unused variable 'x'"
>@echo "  CC [M]  $(CURDIR)/src/scst_main.o"
>@echo "$(CURDIR)/src/scst_main.c:42:7: error: 'scst_fake' undeclared (first use in this function)"
>@echo "$(CURDIR)/src/scst_main.c:50:1: error: expected ';' before '}' token"
>@exit 1
"#),
    )
    .unwrap();
    std::fs::create_dir_all(src.join("src")).unwrap();
    std::fs::write(
        src.join("src/Kbuild"),
        "ccflags-y := -I$(src)/../include \\\n\t-Wall\nobj-m := scst.o\n\nscst-y +=\tscst_copy_mgr.o\t\\\n\t\tscst_main.o\n",
    )
    .unwrap();
    std::fs::write(src.join("src/scst_main.c"), "int x;\n").unwrap();
    s.recipe(&format!("source = {{ path = \"scst-src\" }}\n{WAIVE_ALL}"));
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("building SCST component `scst` failed (module scst): scst/src/scst_main.c:42:7: error: 'scst_fake' undeclared (first use in this function)"),
        "{t}"
    );
    // The build keeps no half-made modules stage.
    assert!(std::fs::read_dir(s.p.cache.join("stages/modules"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true));
}

#[test]
fn the_build_mode_selects_the_make_target_and_is_keyed_and_recorded() {
    let s = Scst::new();
    let scst = s.root().join("scst-src");
    std::fs::write(
        scst.join("Makefile"),
        mk("2release:\n>echo RELEASE > scst/build_mode\n2perf:\n>echo PERF > scst/build_mode\n2debug:\n>echo > scst/build_mode\n"),
    )
    .unwrap();
    // The fake core records the mode it was built in.
    let core = std::fs::read_to_string(scst.join("scst/Makefile"))
        .unwrap()
        .replace(
            "@test \"$$(cat build_mode 2>/dev/null)\" = RELEASE || { echo \"scst: not in release mode (run make 2release first)\"; exit 2; }",
            "@echo \"built in mode [$$(cat build_mode)]\"",
        );
    std::fs::write(scst.join("scst/Makefile"), core).unwrap();
    let mut keys = Vec::new();
    for (mode, made) in [("perf", "PERF"), ("debug", ""), ("release", "RELEASE")] {
        s.recipe(&format!(
            "source = {{ path = \"scst-src\" }}\nbuild-mode = \"{mode}\"\n{WAIVE_ALL}"
        ));
        let o = s.build();
        assert!(o.status.success(), "{mode}: {}", text(&o));
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(s.out().join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(m["scst"]["build-mode"], mode);
        let log = std::fs::read_to_string(s.out().join("logs/modules.log")).unwrap();
        assert!(
            log.contains(&format!("2{mode}")) && log.contains(&format!("built in mode [{made}]")),
            "{mode}: {log}"
        );
        // Only SCST is rebuilt when the mode changes.
        if !keys.is_empty() {
            assert!(
                String::from_utf8_lossy(&o.stdout).contains("ran: modules, rootfs, outputs"),
                "{mode}: {}",
                text(&o)
            );
        }
        keys.push(m["keys"]["modules"].as_str().unwrap().to_string());
    }
    keys.dedup();
    assert_eq!(keys.len(), 3, "{keys:?}");
    s.recipe("source = { path = \"scst-src\" }\nbuild-mode = \"fast\"\n");
    let t = text(&s.p.run(&["plan", "recipes/test.toml"]));
    assert!(t.contains("test.toml:") && t.contains("fast"), "{t}");
}

#[test]
fn tree_pins_are_validated_where_they_are_written() {
    let s = Scst::new();
    for (src, want) in [
        (
            "{ url = [\"https://example.org/s.tar.gz\"], tree = \"sha256-abc\" }",
            "tree `sha256-abc`: expected `tree-v1:` followed by 64 lowercase hex digits",
        ),
        (
            &format!("{{ url = [\"https://example.org/s.tar.gz\"], tree = \"tree-v1:{}\", sha256 = \"{}\" }}", "a".repeat(64), "b".repeat(64)),
            "pinned by `sha256` (the archive) or `tree` (its unpacked content), not both",
        ),
        (
            "{ url = [\"https://example.org/s.tar.gz\"] }",
            "a `url` source needs `sha256` (of the file) or `tree`",
        ),
        (
            &format!("{{ debian = \"scst\", version = \"1\", tree = \"tree-v1:{}\" }}", "a".repeat(64)),
            "`tree` pins `url` and `path` sources",
        ),
    ] {
        s.recipe(&format!("source = {src}\n"));
        let o = s.p.run(&["plan", "recipes/test.toml"]);
        let t = text(&o);
        assert!(!o.status.success() && t.contains("test.toml:") && t.contains(want), "{src}: {t}");
    }
}

#[test]
fn an_import_with_a_broken_archive_imports_nothing() {
    let s = Scst::new();
    // A gzip'd tar cut in half: its first block reads as tar, the rest does not.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::create_dir_all(s.root().join("big")).unwrap();
    std::fs::write(s.root().join("big/noise.bin"), noise).unwrap();
    sh(
        s.root(),
        "tar -czf full.tar.gz big && head -c 60000 full.tar.gz > broken.tar.gz",
    );
    let o = s.p.run(&["fetch", "--import", "scst-src", "broken.tar.gz"]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("cannot import 1 of 2 files (nothing was imported)")
            && t.contains("broken.tar.gz: cannot unpack broken.tar.gz"),
        "{t}"
    );
    assert!(stored_trees(&s).is_empty());
    assert!(std::fs::read_dir(s.p.cache.join("blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
    assert!(nothing_in_tmp(&s));
}

/// No committed recipe or lock pins anything by an all-zero placeholder hash, and the
/// flagship's firmware and SCST tree are pinned by the lock: the firmware by the
/// firmware-qlogic `.deb`, SCST by its tree hash.
#[test]
fn committed_recipes_have_no_placeholders_and_the_flagship_is_locked() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let zeros = "0".repeat(64);
    for e in std::fs::read_dir(repo.join("recipes")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(!t.contains(&zeros), "{} has an all-zero hash", p.display());
        }
    }
    let recipe = std::fs::read_to_string(repo.join("recipes/scst-fc-node.toml")).unwrap();
    assert!(!recipe.to_lowercase().contains("placeholder"), "{recipe}");
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo.join("recipes/scst-fc-node.lock")).unwrap())
            .unwrap();
    let sources = lock["source"].as_array().unwrap();
    let scst = sources
        .iter()
        .find(|s| s["name"].as_str() == Some("scst"))
        .unwrap();
    assert!(
        scst["tree"].as_str().unwrap().starts_with("tree-v1:"),
        "{scst}"
    );
    for fw in ["ql2400_fw.bin", "ql2500_fw.bin"] {
        let name = format!("firmware:{fw}");
        let l = sources
            .iter()
            .find(|s| s["name"].as_str() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} not locked"));
        assert_eq!(
            l["origin"].as_str(),
            Some("firmware-qlogic=20230210-5"),
            "{l}"
        );
        assert_eq!(l["sha256"].as_str().unwrap().len(), 64, "{l}");
        assert!(l["urls"].to_string().contains("non-free-firmware"), "{l}");
    }
}

/// Without `[scst]`, a recipe's `[firmware]` table makes the firmware closure cover
/// the kernel's own modules: a file a module requests and the recipe neither provides
/// nor waives fails the build, naming
/// the module, the file and where to list it (no output is written); `[firmware]`
/// waivers (with reasons, `PREFIX*` patterns) and provided files reach the manifest and
/// the image.
#[test]
fn a_recipe_without_scst_has_the_firmware_closure_of_the_kernels_modules() {
    let s = Scst::new();
    std::fs::write(
        s.root().join("recipes/nodes/node.toml"),
        "hostname = \"lio-node\"\n",
    )
    .unwrap();
    let recipe = |firmware: &str| {
        let text = format!(
            "[recipe]\nname = \"test\"\nsource-date-epoch = 1767225600\n\n[kernel]\nsource = {{ path = \"fake-linux\" }}\nbase = \"tinyconfig\"\nfragments = [\"base.config\"]\nlocalversion = \"-t\"\n\n[node]\nconfig = \"recipes/nodes/node.toml\"\n\n[outputs]\nzstd-level = 3\n{firmware}"
        );
        std::fs::write(s.root().join("recipes/test.toml"), text).unwrap();
    };
    // No [firmware] table: not checked (the build log says so), nothing installed.
    recipe("");
    let o = s.build();
    assert!(o.status.success(), "{}", text(&o));
    let log = std::fs::read_to_string(s.out().join("logs/rootfs.log")).unwrap_or_default();
    assert!(log.contains("no [firmware] table"), "{log}");
    std::fs::remove_dir_all(s.out()).unwrap();
    // An empty one: every requested file is missing.
    recipe("\n[firmware]\n");
    let o = s.build();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("ql2400_fw.bin (requested by module qla2xxx)")
            && t.contains("ql2500_fw.bin (requested by module qla2xxx)"),
        "{t}"
    );
    assert!(
        t.contains("[firmware] files") && t.contains("[firmware] waive"),
        "{t}"
    );
    assert!(!s.out().join("manifest.json").exists());

    s.firmware_file("ql2400_fw.bin", "qlogic 24xx firmware\n");
    recipe("\n[firmware]\nfiles = [{ name = \"ql2400_fw.bin\", path = \"firmware/ql2400_fw.bin\" }]\nwaive = [{ name = \"ql25*\", reason = \"no 25xx HBAs here\" }]\n");
    let o = s.build();
    assert!(o.status.success(), "{}", text(&o));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.out().join("manifest.json")).unwrap())
            .unwrap();
    let fw = m["firmware"].as_array().unwrap();
    let get = |n: &str| fw.iter().find(|f| f["name"] == n).unwrap().clone();
    let ql24 = get("ql2400_fw.bin");
    assert_eq!(
        ql24["sha256"].as_str().unwrap(),
        sha256(&s.root().join("firmware/ql2400_fw.bin")),
        "{ql24}"
    );
    assert_eq!(ql24["module"], "qla2xxx", "{ql24}");
    assert_eq!(ql24["origin"], "firmware/ql2400_fw.bin", "{ql24}");
    let ql25 = get("ql2500_fw.bin");
    assert_eq!(ql25["waived"], true, "{ql25}");
    assert_eq!(ql25["reason"], "no 25xx HBAs here", "{ql25}");
    let root = s.initramfs();
    assert_eq!(
        std::fs::read_to_string(root.path().join("lib/firmware/ql2400_fw.bin")).unwrap(),
        "qlogic 24xx firmware\n"
    );
    assert!(!root.path().join("lib/firmware/ql2500_fw.bin").exists());

    // An SCST recipe lists its firmware in [scst].
    let mut t = std::fs::read_to_string(s.root().join("recipes/test.toml")).unwrap();
    t.push_str("\n[target]\nstack = \"scst\"\n\n[scst]\nsource = { path = \"scst-src\" }\n");
    std::fs::write(s.root().join("recipes/test.toml"), t).unwrap();
    let e = text(&s.p.run(&["plan", "recipes/test.toml"]));
    assert!(
        e.contains("[firmware]: an SCST recipe lists its firmware in [scst]"),
        "{e}"
    );
}
