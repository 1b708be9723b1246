//! `sanforge doctor`: the host tools a recipe needs, which are missing, and the Debian
//! packages that provide them.

/// Host tools sanforge runs, with the Debian package that provides each.
pub const TOOLS: &[(&str, &str, &str)] = &[
    // (program, Debian package, what it is for)
    ("make", "make", "kernel build"),
    ("gcc", "gcc", "kernel build"),
    ("bc", "bc", "kernel build"),
    ("flex", "flex", "kernel config"),
    ("bison", "bison", "kernel config"),
    ("perl", "perl", "kernel build"),
    ("tar", "tar", "source unpacking"),
    ("xz", "xz-utils", "kernel source unpacking"),
    ("patch", "patch", "kernel patches"),
    ("depmod", "kmod", "module dependency lists"),
    ("apt-get", "apt", "Debian package download"),
    ("apt-cache", "apt", "Debian package resolution"),
    ("dpkg-deb", "dpkg", "Debian package unpacking"),
    ("qemu-system-x86_64", "qemu-system-x86", "sanforge run"),
    ("iscsi-inq", "libiscsi-bin", "end-to-end tests"),
    ("iscsi-test-cu", "libiscsi-bin", "end-to-end tests"),
    ("cpio", "cpio", "tests (reading initramfs)"),
];

/// Debian package that provides `program`, if sanforge knows it.
pub fn package_for(program: &str) -> Option<&'static str> {
    let base = program.rsplit('/').next().unwrap_or(program);
    TOOLS.iter().find(|(p, _, _)| *p == base).map(|(_, pkg, _)| *pkg)
}
