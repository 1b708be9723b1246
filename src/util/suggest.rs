//! "Did you mean …?": the known name closest to a misspelt one.

/// The name of `known` closest to `name`: equal but for case, or at most two edits
/// (insert, delete, substitute) away; the nearest wins, the first of equals.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            let d = if k.eq_ignore_ascii_case(name) {
                0
            } else {
                distance(name, k)
            };
            (d, *k)
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_within_two_edits() {
        assert_eq!(
            closest("nv_cahce", &["nv_cache", "o_direct"]),
            Some("nv_cache")
        );
        assert_eq!(
            closest("scst_vdsk", &["scst_vdisk", "scst"]),
            Some("scst_vdisk")
        );
        assert_eq!(closest("zzzzzz", &["scst"]), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
