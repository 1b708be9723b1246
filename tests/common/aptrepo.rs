//! A local apt repository made in a test: tiny `.deb`s built with `dpkg-deb`, indexed
//! with `dpkg-scanpackages`, a plain (unsigned) Release file, served from `file://`.
//! Recipes name it with `repositories = [{ uri = "file:///…", trusted = true }]`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the tools the repository needs are installed (tests print a skip message
/// and return when they are not).
pub fn available() -> bool {
    let ok = |p: &str, a: &str| {
        Command::new(p)
            .arg(a)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let have = ok("dpkg-deb", "--version")
        && ok("apt-get", "--version")
        && ok("dpkg-scanpackages", "--version");
    if !have {
        eprintln!("skipped: needs dpkg-deb, apt-get and dpkg-scanpackages (Debian packages dpkg, apt, dpkg-dev)");
    }
    have
}

/// One package to build.
#[derive(Clone, Default)]
pub struct Deb {
    pub name: String,
    pub version: String,
    /// Extra control fields, e.g. `Depends: libfoo (>= 1)` or `Essential: yes`.
    pub control: Vec<String>,
    /// (in-image path, content, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
}

impl Deb {
    pub fn new(name: &str, version: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            ..Default::default()
        }
    }
    pub fn field(mut self, f: &str) -> Deb {
        self.control.push(f.into());
        self
    }
    pub fn file(mut self, path: &str, content: &[u8], mode: u32) -> Deb {
        self.files.push((path.into(), content.to_vec(), mode));
        self
    }
}

pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pool")).unwrap();
        std::fs::create_dir_all(dir.path().join("dists/bookworm/main/binary-amd64")).unwrap();
        Repo { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn uri(&self) -> String {
        format!("file://{}", self.root().display())
    }

    /// The `[userland]` lines that point a recipe at this repository.
    pub fn userland(&self, packages: &str, extra: &str) -> String {
        format!(
            "packages = {packages}\nrepositories = [{{ uri = \"{}\", trusted = true }}]\n{extra}\n",
            self.uri()
        )
    }

    pub fn deb_path(&self, name: &str, version: &str) -> PathBuf {
        self.root()
            .join("pool")
            .join(format!("{name}_{}_amd64.deb", version.replace(':', "%3a")))
    }

    /// Builds `deb` into pool/ (replacing a file of the same name).
    pub fn add(&self, deb: Deb) -> PathBuf {
        let tree = tempfile::tempdir().unwrap();
        let t = tree.path();
        std::fs::create_dir_all(t.join("DEBIAN")).unwrap();
        let mut control = format!(
            "Package: {}\nVersion: {}\nArchitecture: amd64\nMaintainer: test <test@example.org>\n",
            deb.name, deb.version
        );
        for f in &deb.control {
            control.push_str(f);
            control.push('\n');
        }
        control.push_str("Description: test package\n");
        std::fs::write(t.join("DEBIAN/control"), control).unwrap();
        for (p, content, mode) in &deb.files {
            let h = t.join(p.trim_start_matches('/'));
            std::fs::create_dir_all(h.parent().unwrap()).unwrap();
            std::fs::write(&h, content).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&h, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        let out = self.deb_path(&deb.name, &deb.version);
        let o = Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "-b"])
            .arg(t)
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    }

    /// Writes the Packages index (dpkg-scanpackages) and the Release file.
    pub fn publish(&self) {
        let o = Command::new("dpkg-scanpackages")
            .args(["-m", "pool", "/dev/null"])
            .current_dir(self.root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rel = "main/binary-amd64/Packages";
        let dists = self.root().join("dists/bookworm");
        std::fs::write(dists.join(rel), &o.stdout).unwrap();
        let sha = sanforge::util::hash::sha256_bytes(&o.stdout);
        std::fs::write(
            dists.join("Release"),
            format!(
                "Origin: test\nSuite: bookworm\nCodename: bookworm\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {sha} {} {rel}\n",
                o.stdout.len()
            ),
        )
        .unwrap();
    }
}
