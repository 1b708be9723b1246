//! A throw-away sanforge project for CLI tests: a recipe, a node config, an overlay,
//! kernel fragments and a fake kernel source tree whose Makefile has the targets and
//! outputs of the real one (config targets, bzImage, modules, modules_install with a
//! modules.dep) so the whole pipeline runs in about a second, without Debian.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const FAKE_MAKEFILE: &str = r#"# fake kernel build: same targets and outputs as Linux, no compiling
O ?= .
REL := 6.1.0$(LOCALVERSION)
tinyconfig defconfig allnoconfig:
	mkdir -p $(O)
	printf 'CONFIG_64BIT=y\nCONFIG_MODULES=y\n# CONFIG_MISC_FILESYSTEMS is not set\n' > $(O)/.config
olddefconfig:
	@# Kconfig semantics the tests rely on: SQUASHFS needs MISC_FILESYSTEMS
	@if grep -q '^CONFIG_SQUASHFS=y' $(O)/.config && ! grep -q '^CONFIG_MISC_FILESYSTEMS=y' $(O)/.config; then \
	  sed -i 's/^CONFIG_SQUASHFS=y/# CONFIG_SQUASHFS is not set/' $(O)/.config; fi
	@true
bzImage:
	sleep $${FAKE_KERNEL_SLEEP:-0}
	mkdir -p $(O)/arch/x86/boot $(O)/include/config
	echo '  CC      init/main.o'
	echo '  CC      kernel/fork.o'
	printf 'fake bzImage %s\n' "$$KBUILD_BUILD_TIMESTAMP" > $(O)/arch/x86/boot/bzImage
	echo $(REL) > $(O)/include/config/kernel.release
modules:
	echo '  LD [M]  drivers/target/target_core_mod.ko'
modules_install:
	mkdir -p $(INSTALL_MOD_PATH)/lib/modules/$(REL)/kernel/drivers/target
	printf 'ko' > $(INSTALL_MOD_PATH)/lib/modules/$(REL)/kernel/drivers/target/target_core_mod.ko
	printf 'kernel/drivers/target/target_core_mod.ko:\n' > $(INSTALL_MOD_PATH)/lib/modules/$(REL)/modules.dep
	: > $(INSTALL_MOD_PATH)/lib/modules/$(REL)/modules.builtin
	ln -sf /nonexistent $(INSTALL_MOD_PATH)/lib/modules/$(REL)/build
"#;

pub const KCONFIG: &str = "menuconfig MISC_FILESYSTEMS\n\tbool \"Misc\"\nif MISC_FILESYSTEMS\nconfig SQUASHFS\n\ttristate \"SquashFS\"\n\tdepends on BLOCK\nendif\nconfig BLOCK\n\tbool\nconfig MODULES\n\tbool\nconfig 64BIT\n\tbool\nconfig PRINTK_TIME\n\tbool\n";

pub const NODE: &str = r#"hostname = "test-node"

[modules]
load = ["target_core_mod"]

[[network.interfaces]]
name = "eth0"
addresses = ["192.0.2.15/24"]
"#;

pub struct Project {
    pub dir: tempfile::TempDir,
    pub cache: PathBuf,
}

impl Project {
    /// A project whose kernel source is the fake tree (a `path` source).
    pub fn new() -> Project {
        Self::new_in(&std::env::temp_dir())
    }

    /// [`Project::new`] in a fresh directory under `parent` (so that a test can put
    /// files beside the project and name them as `../…`).
    pub fn new_in(parent: &Path) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("project-")
            .tempdir_in(parent)
            .unwrap();
        let root = dir.path();
        for d in [
            "recipes/nodes",
            "kernel-configs",
            "overlays/base/etc",
            "fake-linux",
            "cache",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("fake-linux/Makefile"), FAKE_MAKEFILE).unwrap();
        std::fs::write(root.join("fake-linux/Kconfig"), KCONFIG).unwrap();
        std::fs::write(
            root.join("kernel-configs/base.config"),
            "CONFIG_64BIT=y\nCONFIG_MODULES=y\n",
        )
        .unwrap();
        std::fs::write(root.join("recipes/nodes/node.toml"), NODE).unwrap();
        std::fs::write(
            root.join("overlays/base/etc/motd.tera"),
            "welcome to {{ node.hostname }} ({{ recipe.name }})\n",
        )
        .unwrap();
        let p = Project {
            cache: root.join("cache"),
            dir,
        };
        p.write_recipe("");
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn recipe(&self) -> PathBuf {
        self.root().join("recipes/test.toml")
    }

    /// Writes recipes/test.toml; `extra_kernel` lines go into the [kernel] table.
    pub fn write_recipe(&self, extra_kernel: &str) {
        self.write_recipe_with(extra_kernel, "packages = {}\n");
    }

    /// Writes recipes/test.toml with `userland` as the body of its [userland] table.
    pub fn write_recipe_with(&self, extra_kernel: &str, userland: &str) {
        let text = format!(
            r#"overlays = ["overlays/base"]

[recipe]
name = "test"
source-date-epoch = 1767225600

[kernel]
source = {{ path = "fake-linux" }}
base = "tinyconfig"
fragments = ["base.config"]
localversion = "-t"
{extra_kernel}

[userland]
{userland}

[node]
config = "recipes/nodes/node.toml"

[outputs]
zstd-level = 3
"#
        );
        std::fs::write(self.recipe(), text).unwrap();
    }

    pub fn sanforge(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sanforge"));
        c.current_dir(self.root());
        c.env("SANFORGE_CACHE", &self.cache);
        c.env("SANFORGE_INIT", env!("CARGO_BIN_EXE_sanforge-init"));
        c.env("SANFORGE_PROGRESS", "plain");
        c.env_remove("FAKE_KERNEL_SLEEP");
        // A remote cache of the developer's shell must not leak into a test's build.
        c.env_remove("SANFORGE_REMOTE_CACHE");
        c.env_remove("SANFORGE_REMOTE_CACHE_KEY");
        c.env_remove("SANFORGE_REMOTE_CACHE_AUTH");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.sanforge().args(args).output().unwrap()
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
