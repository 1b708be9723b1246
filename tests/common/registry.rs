//! An OCI registry for remote-cache tests: Debian's `docker-registry` (distribution
//! 2.8) started by the test itself on 127.0.0.1 with a free port, its own config and
//! a temporary storage directory (never the system service), killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = "docker-registry";

pub struct Registry {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Registry {
    /// Starts the registry and waits until it answers `GET /v2/`. Panics naming the
    /// package when the binary is missing (`.ci/setup` installs it).
    pub fn start() -> Registry {
        Self::start_with("")
    }

    /// [`Registry::start`] with `extra` appended to its config (YAML, e.g. `auth:`).
    pub fn start_with(extra: &str) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `{BINARY} serve` ({e}): install Debian's docker-registry package (.ci/setup does)")
            });
        let mut r = Registry {
            port,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = r.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "{BINARY} exited ({status}): {}",
                    std::fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{BINARY} did not listen on 127.0.0.1:{port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// `oci://127.0.0.1:PORT/REPOSITORY`.
    pub fn url(&self, repository: &str) -> String {
        format!("oci://127.0.0.1:{}/{repository}", self.port)
    }

    /// Where the registry keeps blob `sha256:HEX` (`…/blobs/sha256/HE/HEX/data`).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// The manifest tagged `tag` in `repository`, read from the storage directory.
    pub fn manifest(&self, repository: &str, tag: &str) -> serde_json::Value {
        let link = self
            .storage()
            .join("repositories")
            .join(repository)
            .join("_manifests/tags")
            .join(tag)
            .join("current/link");
        let digest = std::fs::read_to_string(&link)
            .unwrap_or_else(|e| panic!("no tag {tag} in {repository} ({}: {e})", link.display()));
        serde_json::from_slice(&std::fs::read(self.blob_file(digest.trim())).unwrap()).unwrap()
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage/docker/registry/v2")
    }

    /// Stops the registry (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
