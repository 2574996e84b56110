//! Eight bytes at a time ("SIMD within a register"): the scans that look for
//! the first of a few byte values, shared by the JSON string lexer
//! (`ddb::fast`) and the HTML escaper (`templates::escape`).

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// `byte` in every byte of a word.
#[inline(always)]
pub(crate) const fn splat(byte: u8) -> u64 {
    LO * byte as u64
}

/// The high bit of each byte of `w` that is zero. Borrows only flag bytes
/// above a true hit, so the lowest flagged byte is always the first zero.
#[inline(always)]
pub(crate) const fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// The high bit of each byte of `w` below `n` (`n` <= 0x80), with the same
/// rule: the lowest flagged byte is the first such byte.
#[inline(always)]
pub(crate) const fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(splat(n)) & !w & HI
}

/// Walk `b` a word at a time until `hits` flags a byte of one. Returns the
/// word's offset and its non-zero mask, or the offset of the tail shorter
/// than a word (left to the caller) and 0.
#[inline(always)]
pub(crate) fn scan(b: &[u8], hits: impl Fn(u64) -> u64) -> (usize, u64) {
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mask = hits(u64::from_le_bytes(word));
        if mask != 0 {
            return (i, mask);
        }
        i += 8;
    }
    (i, 0)
}

/// The index, within its word, of the first byte `mask` flags.
#[inline(always)]
pub(crate) const fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_flag_exactly_the_first_hit_of_every_word() {
        // every word of two marked bytes (and none) over an alphabet of edge values
        let alphabet = [0u8, 1, b'"', 0x1f, 0x20, 0x7f, 0x80, 0xff];
        for &a in &alphabet {
            for &c in &alphabet {
                for i in 0..8 {
                    for j in i..8 {
                        let mut word = [b'x'; 8];
                        word[i] = a;
                        word[j] = c;
                        let w = u64::from_le_bytes(word);
                        let zero = word.iter().position(|&x| x == 0);
                        let quote = word.iter().position(|&x| x == b'"');
                        let control = word.iter().position(|&x| x < 0x20);
                        let got = |m: u64| (m != 0).then(|| first(m));
                        assert_eq!(got(zero_bytes(w)), zero, "{word:?}");
                        assert_eq!(got(zero_bytes(w ^ splat(b'"'))), quote, "{word:?}");
                        assert_eq!(got(bytes_below(w, 0x20)), control, "{word:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn scan_stops_at_the_first_flagged_word_or_the_tail() {
        let b = b"abcdefgh12345678\"bcdefghXYZ";
        let quote = |w: u64| zero_bytes(w ^ splat(b'"'));
        assert_eq!(scan(b, quote).0, 16);
        assert_eq!(first(scan(b, quote).1), 0);
        assert_eq!(scan(b"abcdefgh123", quote), (8, 0));
        assert_eq!(scan(b"", quote), (0, 0));
    }
}
