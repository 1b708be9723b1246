//! Partitions of disk.img that the init finds again: their GPT names and the
//! PARTUUIDs derived from the recipe name (so every build of a recipe has the same
//! ones, and the verity command line of a slot can name them before the disk exists).

use sha2::{Digest, Sha256};

/// A GUID in its on-disk (mixed-endian) byte order.
pub type Guid = [u8; 16];

/// GPT names of a slot's root partitions (`SANFORGE-ROOT-A`, `SANFORGE-VERITY-A`).
pub fn root_names(slot: char) -> (String, String) {
    let s = slot.to_ascii_uppercase();
    (format!("SANFORGE-ROOT-{s}"), format!("SANFORGE-VERITY-{s}"))
}

/// The derived PARTUUIDs (text) of a slot's root and root-verity partitions.
pub fn root_partuuids(recipe: &str, slot: char) -> (String, String) {
    (
        guid_string(&derived_guid(recipe, &format!("root-{slot}"))),
        guid_string(&derived_guid(recipe, &format!("verity-{slot}"))),
    )
}

/// A fixed GUID derived from the recipe name and a role (`disk`, `esp`, `config`),
/// marked as a version 4 / RFC 4122 variant GUID.
pub fn derived_guid(recipe: &str, role: &str) -> Guid {
    let h = Sha256::new()
        .chain_update(b"sanforge-disk\0")
        .chain_update(recipe.as_bytes())
        .chain_update(b"\0outputs.disk\0")
        .chain_update(role.as_bytes())
        .finalize();
    let mut g = [0u8; 16];
    for (d, s) in g.iter_mut().zip(h.iter()) {
        *d = *s;
    }
    g[7] = (g[7] & 0x0f) | 0x40;
    g[8] = (g[8] & 0x3f) | 0x80;
    g
}

/// The usual text form (`C12A7328-F81F-11D2-…`, upper case, as sfdisk prints it).
pub fn guid_string(g: &Guid) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
    )
}

/// The inverse of [`guid_string`].
pub fn guid_from_str(s: &str) -> Option<Guid> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let b: Guid = hex::decode(hex).ok()?.try_into().ok()?;
    // The byte order of `guid_string`, which is its own inverse.
    Some([
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    ])
}
