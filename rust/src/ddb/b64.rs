//! Standard base64 (RFC 4648 alphabet, `=` padding, canonical) decoding for
//! Kinesis payloads: four table lookups per three bytes, and one validity test
//! per payload instead of one per character. Accepts exactly what the `base64`
//! crate's `STANDARD` engine accepts (a test checks this on random inputs).

/// Marks an invalid character in the tables (above the 24 value bits).
const BAD: u32 = 1 << 24;

const fn table(shift: u32) -> [u32; 256] {
    let mut t = [BAD; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = (i as u32) << shift;
        i += 1;
    }
    t
}

static D0: [u32; 256] = table(18);
static D1: [u32; 256] = table(12);
static D2: [u32; 256] = table(6);
static D3: [u32; 256] = table(0);

#[inline(always)]
fn quad(q: &[u8]) -> u32 {
    let at = |t: &[u32; 256], i: usize| t[q.get(i).copied().unwrap_or(b'!') as usize];
    at(&D0, 0) | at(&D1, 1) | at(&D2, 2) | at(&D3, 3)
}

/// Decode `input` appending the bytes to `out`; `false` (and `out` as it was)
/// when `input` is not canonical padded standard base64.
pub(crate) fn decode_into(input: &[u8], out: &mut Vec<u8>) -> bool {
    let start = out.len();
    if input.is_empty() {
        return true;
    }
    if input.len() % 4 != 0 {
        return false;
    }
    let (body, last) = input.split_at(input.len() - 4);
    out.resize(start + body.len() / 4 * 3, 0);
    let mut bad = 0u32;
    if let Some(dst) = out.get_mut(start..) {
        for (q, d) in body.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
            let w = quad(q);
            bad |= w;
            d.copy_from_slice(&[(w >> 16) as u8, (w >> 8) as u8, w as u8]);
        }
    }
    let ok = bad & BAD == 0 && last_quantum(last, out);
    if !ok {
        out.truncate(start);
    }
    ok
}

/// The final four characters: `xxxx`, `xxx=` or `xx==`, with the bits that
/// padding drops all zero (as the `base64` crate requires).
fn last_quantum(q: &[u8], out: &mut Vec<u8>) -> bool {
    let (pad, body) = match q {
        [a, b, b'=', b'='] => (2, [*a, *b, b'A', b'A']),
        [a, b, c, b'='] => (1, [*a, *b, *c, b'A']),
        [a, b, c, d] => (0, [*a, *b, *c, *d]),
        _ => return false,
    };
    let w = quad(&body);
    if w & BAD != 0 {
        return false;
    }
    let bytes = [(w >> 16) as u8, (w >> 8) as u8, w as u8];
    let keep = 3 - pad;
    if bytes
        .get(keep..)
        .is_some_and(|dropped| dropped.iter().any(|&b| b != 0))
    {
        return false; // non-canonical: padding drops set bits
    }
    out.extend_from_slice(bytes.get(..keep).unwrap_or(&[]));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    fn reference(input: &[u8]) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD.decode(input).ok()
    }

    fn ours(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![7u8];
        let ok = decode_into(input, &mut out);
        if !ok {
            assert_eq!(out, vec![7u8], "a failure leaves the buffer as it was");
            return None;
        }
        Some(out.split_off(1))
    }

    #[test]
    fn known_cases() {
        for case in [
            "",
            "AA==",
            "AAA=",
            "AAAA",
            "eyJhIjoxfQ==",
            "e30=",
            "YQ==",
            "YR==",
            "YWE=",
            "YWF=",
            "=",
            "A",
            "AA",
            "AAA",
            "A===",
            "AA=A",
            "====",
            "AA==AAAA",
            "A-_A",
            "AAA\n",
            " AAA",
            "////",
            "++++",
            "YWJj\r\n",
        ] {
            assert_eq!(
                ours(case.as_bytes()),
                reference(case.as_bytes()),
                "{case:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_base64_crate_on_encodings(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(ours(text.as_bytes()), Some(bytes));
        }

        #[test]
        fn agrees_with_the_base64_crate_on_any_text(text in "[A-Za-z0-9+/=\\-_ !]{0,40}") {
            prop_assert_eq!(ours(text.as_bytes()), reference(text.as_bytes()));
        }
    }
}
