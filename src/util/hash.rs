//! SHA-256 of files, bytes and structured inputs; stage cache keys are built here.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

pub fn sha256_bytes(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    // Writing into the hasher cannot fail: an error is the file's.
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read {}", path.display()))?;
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
        self.add_tree_modes(label, dir, |m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode()
        })
    }

    /// [`KeyBuilder::add_tree`] of a tree from a checkout: only the modes git records
    /// count (the executable bit of files), not the umask of whoever cloned it.
    pub fn add_checkout_tree(&mut self, label: &str, dir: &Path) -> Result<&mut Self> {
        self.add_tree_modes(label, dir, |m| {
            use std::os::unix::fs::PermissionsExt;
            // The file type bits as they are, the permissions as a checkout under umask
            // 022 has them (so such a checkout keeps the keys it always had).
            let ft = m.file_type();
            let kind = m.permissions().mode() & 0o170000;
            kind | if ft.is_symlink() {
                0o777
            } else if ft.is_dir() || m.permissions().mode() & 0o100 != 0 {
                0o755
            } else {
                0o644
            }
        })
    }

    fn add_tree_modes(
        &mut self,
        label: &str,
        dir: &Path,
        mode: impl Fn(&std::fs::Metadata) -> u32,
    ) -> Result<&mut Self> {
        let mut entries = crate::util::fs::walk(dir).collect::<Result<Vec<_>>>()?;
        // In the order of the relative paths as strings, as keys always were.
        entries.sort_by_cached_key(|e| e.rel().to_string_lossy().into_owned());
        for e in entries {
            let (p, meta) = (e.path(), e.metadata());
            let content = if meta.file_type().is_symlink() {
                std::fs::read_link(p)
                    .with_context(|| format!("cannot read link {}", p.display()))?
                    .into_os_string()
                    .into_encoded_bytes()
            } else if meta.is_dir() {
                Vec::new()
            } else if meta.is_file() {
                crate::util::fs::read(p)?
            } else {
                // A fifo, socket or device: its kind and number, never its "content"
                // (reading a fifo blocks for ever).
                use std::os::unix::fs::MetadataExt;
                format!("special {:o} {}", meta.mode(), meta.rdev()).into_bytes()
            };
            self.add(label, e.rel().to_string_lossy().as_bytes());
            self.add("mode", &mode(meta).to_le_bytes());
            self.add("content", &content);
        }
        Ok(self)
    }
    pub fn finish(&self) -> String {
        hex::encode(self.h.clone().finalize())
    }
}

/// What every tree hash starts with.
pub const TREE_PREFIX: &str = "tree-v1:";

/// A source tree pinned by content: `tree-v1:<64 lowercase hex>`, the sha256 of the
/// tree's manifest (defined and computed in `engine::tree`). Validated on parsing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TreeHash(String);

impl TreeHash {
    /// Parses `tree-v1:<64 lowercase hex>`; the error says what was expected.
    pub fn parse(s: &str) -> std::result::Result<TreeHash, String> {
        match s.strip_prefix(TREE_PREFIX) {
            Some(hex) if is_sha256(hex) => Ok(TreeHash(s.to_string())),
            _ => Err(format!(
                "tree `{s}`: expected `{TREE_PREFIX}` followed by 64 lowercase hex digits (what `sanforge fetch --import` prints for an archive or a directory)"
            )),
        }
    }

    /// The tree hash whose manifest has the sha256 `hex`.
    pub fn from_digest(hex: String) -> TreeHash {
        TreeHash(format!("{TREE_PREFIX}{hex}"))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        self.0.get(TREE_PREFIX.len()..).unwrap_or("")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TreeHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
