//! Values that several files share, parsed and checked in one place: sizes (`64MiB`,
//! a node's backstores, a recipe's disk image) and iSCSI names (node.toml, cluster.toml
//! and scst.conf must agree on what a valid name is, or a name passes one and fails
//! the next).
//!
//! Lives in `config` because the node config needs it and `config` imports nothing
//! above it; `scsi` and `ha` import it from here.

pub const BYTE: u64 = 1;
pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

/// Parses a positive size in binary units: `64MiB`, `1GiB`, `512K`, `4096B`; a bare
/// number is in `default_unit` (bytes for a backstore, MiB for a disk image). The
/// error names the value and what was expected.
pub fn parse_size(s: &str, default_unit: u64) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("`{s}`: expected a number with an optional unit B, KiB, MiB, GiB or TiB, e.g. \"64MiB\"")
    })?;
    let mult = match unit.trim() {
        "" => default_unit,
        "B" => BYTE,
        "K" | "KiB" => KIB,
        "M" | "MiB" => MIB,
        "G" | "GiB" => GIB,
        "T" | "TiB" => TIB,
        u => {
            return Err(format!(
                "`{s}`: unknown unit `{u}` (expected B, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    match n.checked_mul(mult) {
        Some(0) => Err(format!("`{s}`: expected a size above 0")),
        Some(b) => Ok(b),
        None => Err(format!("`{s}`: out of range")),
    }
}

/// True for an iSCSI name (RFC 3720 §3.2.6, RFC 7143 §4.2.7.2) of at most 223 bytes:
///
/// * `iqn.YYYY-MM.reversed.domain[:unique]`: a month 01 to 12; the naming authority
///   is a reversed domain name, lower-case labels of letters, digits and `-` (names
///   are compared as written, and the canonical form of a domain is lower case);
///   after the `:` the authority's own string of letters, digits, `-`, `.`, `:` and
///   `_` (RFC 3722 leaves `_` out, but SCST's documentation and real initiators use
///   it, and SCST and LIO accept it). No blanks, quotes, braces or `/`, which neither
///   scst.conf nor configfs can carry;
/// * `eui.` and 16 hex digits;
/// * `naa.` and 16 or 32 hex digits.
pub fn is_iscsi_name(s: &str) -> bool {
    if s.len() > 223 {
        return false;
    }
    let hex = |h: &str, lens: &[usize]| {
        lens.contains(&h.len()) && h.bytes().all(|c| c.is_ascii_hexdigit())
    };
    if let Some(h) = s.strip_prefix("eui.") {
        return hex(h, &[16]);
    }
    if let Some(h) = s.strip_prefix("naa.") {
        return hex(h, &[16, 32]);
    }
    let Some(rest) = s.strip_prefix("iqn.") else {
        return false;
    };
    let (date_authority, unique) = match rest.split_once(':') {
        Some((a, u)) => (a, Some(u)),
        None => (rest, None),
    };
    let Some((date, authority)) = date_authority.split_once('.') else {
        return false;
    };
    // YYYY-MM with a month from 01 to 12.
    let date_ok = match date.as_bytes() {
        [y0, y1, y2, y3, b'-', m0, m1] => {
            [y0, y1, y2, y3, m0, m1].iter().all(|c| c.is_ascii_digit())
                && (1..=12).contains(&(u32::from(m0 - b'0') * 10 + u32::from(m1 - b'0')))
        }
        _ => false,
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    };
    let unique_ok = unique.is_none_or(|u| {
        !u.is_empty()
            && u.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-.:_".contains(&c))
    });
    date_ok && authority.split('.').all(label) && unique_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB", BYTE), Ok(64 << 20));
        assert_eq!(parse_size("4096", BYTE), Ok(4096));
        assert_eq!(parse_size("64", MIB), Ok(64 << 20));
        assert_eq!(parse_size("1GiB", MIB), Ok(1 << 30));
        assert_eq!(parse_size("512 K", MIB), Ok(512 << 10));
        assert!(parse_size("1.5G", BYTE).is_err());
        assert!(parse_size("12XB", BYTE)
            .unwrap_err()
            .contains("unknown unit `XB`"));
        assert!(parse_size("0MiB", MIB).unwrap_err().contains("above 0"));
        assert!(parse_size("99999999T", BYTE)
            .unwrap_err()
            .contains("out of range"));
    }

    /// Names node.toml (`config::node`) and scst.conf (`scsi::scst::validate`) used to
    /// judge differently, and what both say now.
    #[test]
    fn iscsi_names_the_two_old_validators_disagreed_on() {
        let table: &[(&str, bool)] = &[
            // Month 21: node.toml accepted it, scst.conf refused it.
            ("iqn.2026-21.org.example:t", false),
            ("iqn.2026-00.org.example:t", false),
            // Upper case and `_` after the `:`: scst.conf accepted, node.toml refused
            // (SCST's README names targets like this).
            ("iqn.2011-04.ru.domain:VM_STORAGE_1", true),
            ("iqn.2026-11.org.example:Host-1", true),
            // Upper case or `_` in the naming authority: scst.conf accepted, node.toml
            // refused.
            ("iqn.2026-11.org.Example", false),
            ("iqn.2026-11.org.ex_ample:t", false),
            // Characters scst.conf or configfs cannot carry: scst.conf accepted.
            ("iqn.2026-11.org.example:x{y}", false),
            ("iqn.2026-11.org.example:a/b", false),
            ("iqn.2026-11.org.example:\u{fc}ber", false),
            // No naming authority, an empty label or an empty unique part: both
            // accepted.
            ("iqn.2026-11.:t", false),
            ("iqn.2026-11.org..example:t", false),
            ("iqn.2026-11.org.example:", false),
        ];
        for (name, ok) in table {
            assert_eq!(is_iscsi_name(name), *ok, "{name}");
        }
    }

    #[test]
    fn iscsi_name_forms() {
        assert!(is_iscsi_name("iqn.2026-11.org.example:node1"));
        assert!(is_iscsi_name("iqn.2026-11.org.example"));
        assert!(is_iscsi_name(
            "iqn.2003-01.org.linux-iscsi.host.x8664:sn.abc"
        ));
        assert!(is_iscsi_name("eui.0123456789abcdef"));
        assert!(is_iscsi_name("eui.02004567A425678D"));
        assert!(is_iscsi_name("naa.52004567BA64678D"));
        assert!(is_iscsi_name("naa.6001405abcdef0123456789abcdef012"));
        assert!(!is_iscsi_name("naa.6001405abcdef01234"));
        assert!(!is_iscsi_name("eui.0123"));
        assert!(!is_iscsi_name("iqn.26-11.org"));
        assert!(!is_iscsi_name("iqn.2011.ru.domain"));
        assert!(!is_iscsi_name("iqn.2026-11.org example"));
        assert!(!is_iscsi_name("VM_STORAGE_1"));
        assert!(!is_iscsi_name("foo"));
        assert!(!is_iscsi_name(""));
        assert!(!is_iscsi_name(&format!(
            "iqn.2026-11.org.example:{}",
            "a".repeat(200)
        )));
        assert!(!is_iscsi_name("iqn.2026-1\u{e9}.org"));
    }
}
