//! Unit tests of the modules stage: kernel patch choice, build error reports, the
//! kernel version.

use super::intree::{kernel_patches, kernel_version};
use super::make::{compiling, first_error, module_of};
use super::*;

fn touch(p: &Path) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, "").unwrap();
}

#[test]
fn patches_prefer_the_version_then_the_generic_file() {
    let t = tempfile::tempdir().unwrap();
    let k = t.path().join("scst/kernel");
    for n in [
        "nolockdep-4.9.patch",
        "nolockdep-6.1.patch",
        "exec_req_fifo-4.9.patch",
        "readahead.patch",
        "readahead-6.1.patch",
        "generic.patch",
        "in-tree/Makefile.drivers.Linux.patch",
    ] {
        touch(&k.join(n));
    }
    touch(
        &t.path()
            .join("iscsi-scst/kernel/patches/put_page_callback-6.1.12.patch"),
    );
    let got: Vec<String> = kernel_patches(t.path(), "6.1")
        .unwrap()
        .iter()
        .map(|p| p.strip_prefix(t.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        got,
        vec![
            "scst/kernel/generic.patch",
            "scst/kernel/nolockdep-6.1.patch",
            "scst/kernel/readahead-6.1.patch",
            "iscsi-scst/kernel/patches/put_page_callback-6.1.12.patch"
        ]
    );
    let old: Vec<String> = kernel_patches(t.path(), "4.9")
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        old,
        vec![
            "exec_req_fifo-4.9.patch",
            "generic.patch",
            "nolockdep-4.9.patch",
            "readahead.patch"
        ]
    );
}

#[test]
fn the_first_compiler_error_names_its_module() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("scst");
    let kbuild = "ccflags-y := -I$(src)/../include \\\n\t-Wall\nobj-m := scst.o\n\nscst-y +=\tscst_copy_mgr.o\t\\\n\t\tscst_main.o\n";
    std::fs::create_dir_all(tree.join("scst/src/dev_handlers")).unwrap();
    std::fs::write(tree.join("scst/src/Kbuild"), kbuild).unwrap();
    touch(&tree.join("scst/src/scst_main.c"));
    std::fs::write(
        tree.join("scst/src/dev_handlers/Kbuild"),
        "obj-m += scst_vdisk.o scst_disk.o\n",
    )
    .unwrap();
    touch(&tree.join("scst/src/dev_handlers/scst_vdisk.c"));
    let line = format!(
        "{}/scst/src/scst_main.c:42:7: error: 'x' undeclared",
        tree.display()
    );
    let e = first_error(&line, &tree).unwrap();
    assert_eq!(e, "scst/src/scst_main.c:42:7: error: 'x' undeclared");
    assert_eq!(
        module_of("scst/src/scst_main.c", &tree, "scst").as_deref(),
        Some("scst")
    );
    // Relative to the component's make directory, a module of its own.
    assert!(first_error(
        "src/dev_handlers/scst_vdisk.c:1:1: fatal error: x.h: No such file",
        &tree
    )
    .is_some());
    assert_eq!(
        module_of("src/dev_handlers/scst_vdisk.c", &tree, "scst").as_deref(),
        Some("scst_vdisk")
    );
    // An object kbuild names on its `CC [M]` line.
    let o = compiling(&format!(
        "  CC [M]  {}/scst/src/scst_main.o",
        tree.display()
    ));
    assert_eq!(
        module_of(&o.unwrap(), &tree, "scst").as_deref(),
        Some("scst")
    );
    assert!(first_error("scst_main.c:7:1: warning: unused", &tree).is_none());
    assert!(first_error("make[2]: *** [Makefile:42: all] Error 2", &tree).is_none());
    assert_eq!(module_of("nowhere.c", &tree, "scst"), None);
}

#[test]
fn version_comes_from_the_makefile() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("Makefile"),
        "# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n",
    )
    .unwrap();
    assert_eq!(kernel_version(t.path()).unwrap(), "6.1");
    std::fs::write(t.path().join("Makefile"), "all:\n").unwrap();
    assert!(kernel_version(t.path())
        .unwrap_err()
        .to_string()
        .contains("VERSION and PATCHLEVEL"));
}
