//! SHA-256 of files, bytes and structured inputs; stage cache keys are built here.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

pub fn sha256_bytes(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// True if `s` looks like a lowercase hex SHA-256.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Builds a stage key from labelled parts. Each part is length-prefixed so that
/// ("ab","c") and ("a","bc") never collide.
#[derive(Default, Clone)]
pub struct KeyBuilder {
    h: Sha256,
}

impl KeyBuilder {
    pub fn new(stage: &str) -> Self {
        let mut k = KeyBuilder::default();
        k.add("stage", stage.as_bytes());
        k
    }
    pub fn add(&mut self, label: &str, data: &[u8]) -> &mut Self {
        for part in [label.as_bytes(), data] {
            self.h.update((part.len() as u64).to_le_bytes());
            self.h.update(part);
        }
        self
    }
    pub fn add_str(&mut self, label: &str, data: &str) -> &mut Self {
        self.add(label, data.as_bytes())
    }
    /// Adds every regular file and symlink under `dir` (relative path, mode, content).
    pub fn add_tree(&mut self, label: &str, dir: &Path) -> Result<&mut Self> {
        use std::os::unix::fs::PermissionsExt;
        let mut files = Vec::new();
        walk(dir, dir, &mut files)?;
        files.sort();
        for rel in files {
            let p = dir.join(&rel);
            let meta = std::fs::symlink_metadata(&p)
                .with_context(|| format!("cannot stat {}", p.display()))?;
            let content = if meta.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .with_context(|| format!("cannot read link {}", p.display()))?
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_dir() {
                Vec::new()
            } else if meta.is_file() {
                crate::util::fs::read(&p)?
            } else {
                // A fifo, socket or device: its kind and number, never its "content"
                // (reading a fifo blocks for ever).
                use std::os::unix::fs::MetadataExt;
                format!("special {:o} {}", meta.mode(), meta.rdev()).into_bytes()
            };
            self.add(label, rel.as_bytes());
            self.add("mode", &meta.permissions().mode().to_le_bytes());
            self.add("content", &content);
        }
        Ok(self)
    }
    pub fn finish(&self) -> String {
        hex::encode(self.h.clone().finalize())
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for e in rd {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let p = e.path();
        let ft = e
            .file_type()
            .with_context(|| format!("cannot stat {}", p.display()))?;
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        out.push(rel);
        if ft.is_dir() {
            walk(root, &p, out)?;
        }
    }
    Ok(())
}
