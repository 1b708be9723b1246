use super::*;

const NODE: &str = r#"hostname = "alpha"

[ha]
enabled = true

[[ha.requires]]
path = "/usr/sbin/fence_sbd"
package = "fence-agents"
reason = "fencing.mode = \"sbd\" with fencing.devices"

[[services]]
name = "sbd"
argv = ["/usr/sbin/sbd", "watch"]
"#;

fn image(with: &[(&str, &[u8], u32)]) -> Archive {
    let mut a = Archive::new();
    for p in [
        "usr/sbin/corosync",
        "usr/sbin/pacemakerd",
        "usr/sbin/corosync-cfgtool",
        "usr/sbin/crm_mon",
    ] {
        a.add(Entry::data(p, b"\x7fELF".to_vec(), 0o755));
    }
    for (p, data, mode) in with {
        a.add(Entry::data(*p, data.to_vec(), *mode));
    }
    a
}

fn check(a: &Archive) -> Result<()> {
    node_programs_present(
        Path::new("nodes/alpha.toml"),
        NODE,
        a,
        Path::new("recipes/ha.toml"),
    )
}

#[test]
fn a_fencing_mode_the_image_cannot_run_is_named_with_its_package() {
    let e = check(&image(&[("usr/sbin/sbd", b"\x7fELF", 0o755)])).unwrap_err();
    let m = format!("{e:#}");
    assert!(m.contains("nodes/alpha.toml:7:"), "{m}");
    assert!(
        m.contains("runs /usr/sbin/fence_sbd, which this image does not have"),
        "{m}"
    );
    assert!(m.contains("Debian package `fence-agents`"), "{m}");
    assert!(m.contains("recipes/ha.toml"), "{m}");
    // The service is checked too: here sbd is the missing one.
    let e = check(&image(&[("usr/sbin/fence_sbd", b"\x7fELF", 0o755)])).unwrap_err();
    let m = format!("{e:#}");
    assert!(m.contains("service `sbd` runs /usr/sbin/sbd"), "{m}");
}

#[test]
fn a_missing_cluster_module_names_its_kernel_option() {
    assert!(module_hint("dlm").unwrap().contains("CONFIG_DLM=m"));
    assert!(module_hint("drbd").unwrap().contains("CONFIG_BLK_DEV_DRBD"));
    assert_eq!(module_hint("e1000e"), None);
}

#[test]
fn scst_built_without_the_dlm_is_told_apart() {
    let with =
        "kernel/fs/dlm/dlm.ko:\nextra/scst.ko: kernel/fs/dlm/dlm.ko kernel/net/sctp/sctp.ko\n";
    let without = "kernel/fs/dlm/dlm.ko:\nextra/scst.ko:\nextra/scst_vdisk.ko: extra/scst.ko\n";
    assert_eq!(scst_uses_dlm(with), Some(true));
    assert_eq!(scst_uses_dlm(without), Some(false));
    assert_eq!(scst_uses_dlm("kernel/fs/dlm/dlm.ko.xz:\n"), None, "no SCST");
}

#[test]
fn a_required_module_file_need_not_be_executable() {
    let py = "usr/lib/python3/dist-packages/requests/__init__.py";
    let mut a = Archive::new();
    a.add(Entry::data(py, b"import urllib3\n".to_vec(), 0o644));
    assert_eq!(program_problem(&a, py, false), None);
    let e = program_problem(&a, py, true).unwrap();
    assert!(
        e.contains("is not executable in this image (mode 644)"),
        "{e}"
    );
}

#[test]
fn a_script_needs_its_interpreter_and_a_program_its_x_bit() {
    let sbd = ("usr/sbin/sbd", &b"\x7fELF"[..], 0o755);
    let script = (
        "usr/sbin/fence_sbd",
        &b"#!/usr/bin/python3 -tt\nimport sys\n"[..],
        0o755,
    );
    let m = format!("{:#}", check(&image(&[sbd, script])).unwrap_err());
    assert!(
        m.contains("is a script for /usr/bin/python3, which this image does not have"),
        "{m}"
    );
    let python = ("usr/bin/python3.11", &b"\x7fELF"[..], 0o755);
    let mut a = image(&[sbd, script, python]);
    a.add(Entry::symlink("usr/bin/python3", "python3.11"));
    check(&a).unwrap();
    let m = format!(
        "{:#}",
        check(&image(&[
            ("usr/sbin/sbd", b"\x7fELF", 0o644),
            script,
            python
        ]))
        .unwrap_err()
    );
    assert!(m.contains("is not executable"), "{m}");
}
