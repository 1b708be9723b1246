//! The host tools sanforge runs, the Debian package that provides each, and a PATH
//! lookup that spawns nothing. Read by the command runner (to say which package a
//! missing program comes from) and by `sanforge doctor`.

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
    ("cp", "coreutils", "copying source trees"),
    ("xz", "xz-utils", "kernel source unpacking"),
    (
        "bzip2",
        "bzip2",
        "source archives pinned by tree (.tar.bz2)",
    ),
    ("patch", "patch", "kernel patches"),
    ("depmod", "kmod", "module dependency lists"),
    ("strip", "binutils", "stripping out-of-tree modules"),
    (
        "openssl",
        "openssl",
        "module-signing keys ([kernel.module-signing], keygen --module-signing)",
    ),
    (
        "ccache",
        "ccache",
        "kernel builds share compiled objects (optional)",
    ),
    (
        "apt-get",
        "apt",
        "resolving Debian packages (private apt state in the cache)",
    ),
    ("gpgv", "gpgv", "apt: checking the archive's signatures"),
    ("dpkg-deb", "dpkg", "Debian package unpacking"),
    (
        "dpkg-scanpackages",
        "dpkg-dev",
        "tests (local apt repositories)",
    ),
    ("mkfs.vfat", "dosfstools", "disk image (FAT partitions)"),
    ("mcopy", "mtools", "disk image (FAT partitions)"),
    (
        "mkfs.ext4",
        "e2fsprogs",
        "disk image (the ext4 state partition)",
    ),
    (
        "gensquashfs",
        "squashfs-tools-ng",
        "squashfs root (root = \"squashfs\")",
    ),
    (
        "rdsquashfs",
        "squashfs-tools-ng",
        "tests (reading the squashfs root)",
    ),
    (
        "veritysetup",
        "cryptsetup-bin",
        "tests (checking the dm-verity tree)",
    ),
    ("qemu-system-x86_64", "qemu-system-x86", "sanforge run"),
    ("sfdisk", "fdisk", "tests (reading GPT)"),
    ("iscsi-inq", "libiscsi-bin", "end-to-end tests"),
    ("iscsi-test-cu", "libiscsi-bin", "end-to-end tests"),
    ("cpio", "cpio", "tests (reading initramfs)"),
];

/// Debian package that provides `program`, if sanforge knows it.
pub fn package_for(program: &str) -> Option<&'static str> {
    let base = program.rsplit('/').next().unwrap_or(program);
    TOOLS
        .iter()
        .find(|(p, _, _)| *p == base)
        .map(|(_, pkg, _)| *pkg)
}

/// Finds `program` on PATH (and in the sbin directories, which a normal user's PATH
/// may lack) without spawning anything.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(std::path::PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(program))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}
