//! Attribute names compared by fingerprint: the lookups behind every template
//! variable and attribute (`user`, `data.job.title`, dozens per notification),
//! the duplicate-name check of every decoded map, and the decoder's cache of
//! name strs.
//!
//! A fingerprint is a name's length and bytes read as two overlapping words
//! (no copy, no loop): equal fingerprints mean equal names up to 16 bytes, so
//! most attribute names are decided by comparing integers, and the text is
//! read only to confirm a longer name.

/// Length and bytes of a name: equal for equal names; for names up to 16
/// bytes ([`Fingerprint::decides`]), equal only for equal names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    first: u64,
    last: u64,
    len: usize,
}

fn word_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn half_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .and_then(|w| w.try_into().ok())
        .map_or(0, |w| u64::from(u32::from_le_bytes(w)))
}

impl Fingerprint {
    pub fn of(name: &str) -> Self {
        let b = name.as_bytes();
        let n = b.len();
        let byte = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
        // Each pair of reads covers every byte of a name of its length range.
        let (first, last) = match n {
            0 => (0, 0),
            1..=3 => (byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16, 0),
            4..=7 => (half_at(b, 0), half_at(b, n - 4)),
            _ => (word_at(b, 0), word_at(b, n - 8)),
        };
        Fingerprint {
            first,
            last,
            len: n,
        }
    }

    /// True when the fingerprint alone tells the name (16 bytes or fewer).
    pub fn decides(&self) -> bool {
        self.len <= 16
    }

    /// A well-mixed hash of the fingerprint, for tables indexed by name.
    pub fn hash(&self) -> u64 {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        (self.first ^ self.last.rotate_left(31) ^ (self.len as u64)).wrapping_mul(K)
    }
}

/// The position of the first item named `name`: `print` gives an item's
/// fingerprint, `text` its name (read only to confirm names longer than 16 bytes).
pub fn position<T>(
    items: impl IntoIterator<Item = T>,
    name: &str,
    print: impl Fn(&T) -> Fingerprint,
    text: impl Fn(&T) -> &str,
) -> Option<usize> {
    let want = Fingerprint::of(name);
    items
        .into_iter()
        .position(|item| print(&item) == want && (want.decides() || text(&item) == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_equal_name_only() {
        // GIVEN names that share lengths and prefixes
        let names = [
            "data",
            "user",
            "",
            "created_at",
            "created_by",
            "ab\0",
            "ab",
            "data",
            "ü",
            "a_long_attribute_name_x",
            "a_long_attribute_name_y",
        ];
        let items: Vec<(Fingerprint, &str)> =
            names.iter().map(|n| (Fingerprint::of(n), *n)).collect();
        let find = |n: &str| position(&items, n, |it| it.0, |it| it.1);
        // THEN each lookup gives the position of the first equal name
        for n in names {
            assert_eq!(find(n), names.iter().position(|m| *m == n), "{n:?}");
        }
        // AND names that are not there are not found, however alike
        for missing in [
            "dat",
            "datа",
            "created_a",
            "created_atx",
            "ab\0\0",
            "u",
            "users",
            "a_long_attribute_name_z",
            "a_long_attribute__name_x",
        ] {
            assert_eq!(find(missing), None, "{missing:?}");
        }
    }

    #[test]
    fn fingerprints_tell_every_short_name_apart() {
        // every name of up to 4 characters over a small alphabet, and look-alikes of
        // 5 to 16 bytes differing in one byte at every position: equal prints only
        // for equal names
        let alphabet = ["a", "b", "é", "\0"];
        let mut names: Vec<String> = vec![String::new()];
        for len in 1..=4 {
            let mut next = Vec::new();
            for n in names.iter().filter(|n| n.chars().count() == len - 1) {
                for c in alphabet {
                    next.push(format!("{n}{c}"));
                }
            }
            names.extend(next);
        }
        for len in 5..=16 {
            for at in 0..len {
                let mut b = vec![b'x'; len];
                b[at] = b'y';
                names.push(String::from_utf8(b).unwrap());
            }
            names.push("x".repeat(len));
        }
        let mut seen = std::collections::HashMap::new();
        for n in &names {
            let p = Fingerprint::of(n);
            assert!(p.decides());
            if let Some(other) = seen.insert((p.first, p.last, p.len), n.clone()) {
                assert_eq!(&other, n, "two names share a print");
            }
        }
    }
}
