//! Finding a name among a few: the lookup behind every variable and attribute
//! a template reads (`user`, `data.job.title`), dozens per notification.
//!
//! Each name is stored with a fingerprint (its length and first 8 bytes), so a
//! lookup compares integers and touches the text only to confirm a name longer
//! than 8 bytes. Names of up to 8 bytes (most attribute names) are decided by
//! the fingerprint alone.

/// Length and the first (up to) 8 bytes of a name, zero-padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    len: usize,
    head: u64,
}

impl Fingerprint {
    pub fn of(name: &str) -> Self {
        let bytes = name.as_bytes();
        let mut head = [0u8; 8];
        let n = bytes.len().min(8);
        if let (Some(dst), Some(src)) = (head.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        Fingerprint {
            len: bytes.len(),
            head: u64::from_le_bytes(head),
        }
    }
}

/// The position of the first item named `name`: `print` gives an item's
/// fingerprint, `text` its name (read only to confirm names longer than 8 bytes).
pub fn position<T>(
    items: impl IntoIterator<Item = T>,
    name: &str,
    print: impl Fn(&T) -> Fingerprint,
    text: impl Fn(&T) -> &str,
) -> Option<usize> {
    let want = Fingerprint::of(name);
    items
        .into_iter()
        .position(|item| print(&item) == want && (want.len <= 8 || text(&item) == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_equal_name_only() {
        // GIVEN names that share lengths and 8-byte prefixes
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
        ] {
            assert_eq!(find(missing), None, "{missing:?}");
        }
    }
}
