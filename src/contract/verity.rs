//! The dm-verity hash tree (format 1, sha256, 4096-byte data and hash blocks, no
//! superblock) over the squashfs root, and the kernel command line that makes the
//! kernel check the root partition against it (`dm-mod.create=`, CONFIG_DM_INIT).
//!
//! Written here rather than by `veritysetup format` because it is a few dozen lines,
//! needs no host tool and is deterministic by construction: the salt is derived from
//! the recipe name, so the same root gives the same tree and root hash. The layout is
//! the kernel's (drivers/md/dm-verity-target.c): each level packs 128 digests per
//! hash block (zero-padded), the top level is stored first, a digest is
//! `sha256(salt || block)`, and the root hash is the digest of the single top block.
//!
//! Reads: the data image (root.squashfs). Writes: the hash tree (root.verity).

use crate::contract::{CMDLINE_VERITY_ROOT, VERITY_DM_NAME};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

/// Data and hash block size.
pub const BLOCK: usize = 4096;
const DIGEST: usize = 32;
const PER_BLOCK: usize = BLOCK / DIGEST;

/// What the command line needs to know about a tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verity {
    /// Hex.
    pub root_hash: String,
    /// Hex.
    pub salt: String,
    pub data_blocks: u64,
    pub hash_blocks: u64,
}

/// The salt of a recipe's tree: fixed per recipe, so builds are reproducible.
pub fn salt_for(recipe: &str) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"sanforge-verity-salt\0")
        .chain_update(recipe.as_bytes())
        .finalize()
        .into()
}

fn digest(salt: &[u8], block: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(salt)
        .chain_update(block)
        .finalize()
        .into()
}

/// The tree over the level-0 digests: the hash area as stored (top level first) and
/// the root hash.
fn tree_from_digests(salt: &[u8], mut digests: Vec<[u8; 32]>) -> (Vec<u8>, [u8; 32]) {
    let mut levels: Vec<Vec<u8>> = Vec::new();
    let root = loop {
        let blocks = digests.len().div_ceil(PER_BLOCK).max(1);
        let mut level = vec![0u8; blocks * BLOCK];
        for (slot, d) in level.chunks_exact_mut(DIGEST).zip(&digests) {
            slot.copy_from_slice(d);
        }
        if blocks == 1 {
            // One block left: its digest is the root.
            let root = digest(salt, &level);
            levels.push(level);
            break root;
        }
        digests = level.chunks(BLOCK).map(|b| digest(salt, b)).collect();
        levels.push(level);
    };
    let mut area = Vec::new();
    for l in levels.iter().rev() {
        area.extend_from_slice(l);
    }
    (area, root)
}

/// The hash area and root hash of `data` (a whole number of blocks, at least two).
pub fn tree(data: &[u8], salt: &[u8]) -> Result<(Vec<u8>, [u8; 32])> {
    if !data.len().is_multiple_of(BLOCK) || data.len() < 2 * BLOCK {
        bail!(
            "verity data of {} bytes: expected a multiple of {BLOCK} bytes, at least two blocks",
            data.len()
        );
    }
    let digests = data.chunks(BLOCK).map(|b| digest(salt, b)).collect();
    Ok(tree_from_digests(salt, digests))
}

/// Reads `data` block by block and writes its hash tree to `hash` (atomically).
pub fn build(data: &Path, hash: &Path, salt: &[u8]) -> Result<Verity> {
    let mut f =
        std::fs::File::open(data).with_context(|| format!("cannot open {}", data.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot stat {}", data.display()))?
        .len();
    if !len.is_multiple_of(BLOCK as u64) || len < 2 * BLOCK as u64 {
        bail!(
            "{}: {len} bytes, expected a multiple of {BLOCK} bytes and at least two blocks",
            data.display()
        );
    }
    let mut digests = Vec::with_capacity((len / BLOCK as u64) as usize);
    let mut buf = vec![0u8; BLOCK];
    for _ in 0..len / BLOCK as u64 {
        f.read_exact(&mut buf)
            .with_context(|| format!("cannot read {}", data.display()))?;
        digests.push(digest(salt, &buf));
    }
    let data_blocks = digests.len() as u64;
    let (area, root) = tree_from_digests(salt, digests);
    let tmp = hash.with_extension("partial");
    let mut out =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    out.write_all(&area)
        .and_then(|_| out.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, hash)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), hash.display()))?;
    Ok(Verity {
        root_hash: hex::encode(root),
        salt: hex::encode(salt),
        data_blocks,
        hash_blocks: (area.len() / BLOCK) as u64,
    })
}

/// The kernel command line words that build the verity root from the data and hash
/// partitions (`PARTUUID` text, lower case) and tell the init to mount it.
pub fn cmdline(v: &Verity, data_partuuid: &str, hash_partuuid: &str) -> String {
    let (d, h) = (
        data_partuuid.to_ascii_lowercase(),
        hash_partuuid.to_ascii_lowercase(),
    );
    format!(
        "{CMDLINE_VERITY_ROOT} dm-mod.create=\"{VERITY_DM_NAME},,,ro,0 {} verity 1 PARTUUID={d} PARTUUID={h} {BLOCK} {BLOCK} {} 0 sha256 {} {}\" dm-mod.waitfor=PARTUUID={d},PARTUUID={h}",
        v.data_blocks * (BLOCK as u64 / 512),
        v.data_blocks,
        v.root_hash,
        v.salt
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(blocks: usize) -> Vec<u8> {
        (0..blocks * BLOCK).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Root hashes computed with `veritysetup format --no-superblock --hash sha256
    /// --salt <salt_for("t")> --data-block-size 4096 --hash-block-size 4096` (cryptsetup
    /// 2.6.1) over the same data: 2 blocks (one level), 200 blocks (two levels).
    #[test]
    fn matches_veritysetup_known_answers() {
        let salt = salt_for("t");
        for (blocks, want) in KNOWN {
            let (_, root) = tree(&data(*blocks), &salt).unwrap();
            assert_eq!(hex::encode(root), *want, "{blocks} blocks");
        }
    }

    const KNOWN: &[(usize, &str)] = &[
        (
            2,
            "1079dbe5dfa22f8a84a31439c59c8f1df13fa4580610368ea4e91ab4a5724bfe",
        ),
        (
            200,
            "3821a7cc08918faa7f268bac17899962302fc2b90d01c9cac5f1c4c1ecdd90ac",
        ),
    ];

    #[test]
    fn matches_veritysetup_when_installed() {
        let Ok(vs) = which("veritysetup") else {
            eprintln!("veritysetup not installed (Debian cryptsetup-bin): skipped");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let salt = salt_for("storage-node");
        for blocks in [2usize, 129, 300] {
            let d = dir.path().join(format!("data{blocks}"));
            let h = dir.path().join(format!("hash{blocks}"));
            let mine = dir.path().join(format!("mine{blocks}"));
            std::fs::write(&d, data(blocks)).unwrap();
            let o = std::process::Command::new(&vs)
                .args(["format", "--no-superblock", "--hash", "sha256"])
                .args(["--data-block-size", "4096", "--hash-block-size", "4096"])
                .arg(format!("--salt={}", hex::encode(salt)))
                .arg(&d)
                .arg(&h)
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
            let out = String::from_utf8_lossy(&o.stdout);
            let theirs = out
                .lines()
                .find_map(|l| l.strip_prefix("Root hash:"))
                .unwrap()
                .trim()
                .to_string();
            let v = build(&d, &mine, &salt).unwrap();
            assert_eq!(v.root_hash, theirs, "{blocks} blocks");
            assert_eq!(v.data_blocks, blocks as u64);
            assert_eq!(std::fs::read(&mine).unwrap(), std::fs::read(&h).unwrap());
        }
    }

    fn which(prog: &str) -> Result<std::path::PathBuf, ()> {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let p = Path::new(dir).join(prog);
            if p.is_file() {
                return Ok(p);
            }
        }
        Err(())
    }

    #[test]
    fn tree_layout_and_changes() {
        let salt = salt_for("t");
        let d = data(200);
        let (area, root) = tree(&d, &salt).unwrap();
        // 200 digests: two level-0 blocks, one top block stored first.
        assert_eq!(area.len(), 3 * BLOCK);
        assert_eq!(root, digest(&salt, &area[..BLOCK]));
        assert_eq!(&area[..DIGEST], &digest(&salt, &area[BLOCK..2 * BLOCK]));
        assert_eq!(&area[BLOCK..BLOCK + DIGEST], &digest(&salt, &d[..BLOCK]));
        let mut e = d.clone();
        e[5000] ^= 1;
        assert_ne!(tree(&e, &salt).unwrap().1, root);
        assert_ne!(tree(&d, &salt_for("u")).unwrap().1, root);
        assert!(tree(&d[..BLOCK], &salt).is_err());
    }

    #[test]
    fn cmdline_names_both_partitions_and_the_root_hash() {
        let v = Verity {
            root_hash: "ab".repeat(32),
            salt: "cd".repeat(32),
            data_blocks: 10,
            hash_blocks: 1,
        };
        let c = cmdline(&v, "AAAA-1", "BBBB-2");
        assert!(c.starts_with("sanforge.root=verity dm-mod.create=\"sanforge-root,,,ro,0 80 verity 1 PARTUUID=aaaa-1 PARTUUID=bbbb-2 4096 4096 10 0 sha256 abab"), "{c}");
        assert!(
            c.ends_with("\" dm-mod.waitfor=PARTUUID=aaaa-1,PARTUUID=bbbb-2"),
            "{c}"
        );
    }
}
