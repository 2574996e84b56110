//! Exact decimal numbers in templates.
//!
//! DynamoDB numbers (and Python `Decimal`s) arrive as decimal text. Templates
//! must render them with their exact digits, never through a binary float:
//!
//! - integral values become MiniJinja integers (`i64`, or `i128` up to 38
//!   digits), so arithmetic and comparisons work as usual;
//! - fractional values whose shortest float spelling is exactly their decimal
//!   text (`0.1`, `87.25`: the common case) become floats, so arithmetic and
//!   comparisons work and rendering shows the same digits;
//! - everything else (more digits than a float holds, trailing zeros such as
//!   `12.30`, integers beyond 38 digits) becomes a [`DecimalObj`] that renders
//!   its exact digits and is understood by the `number`, `int`, `float`,
//!   `round` and `abs` filters.
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{DynObject, Object, ObjectRepr, Value};

/// Beyond this many digits a positional spelling is not produced (an
/// exponent such as `1E+999999` from Python would otherwise explode).
const MAX_POSITIONAL_DIGITS: i64 = 400;

/// A parsed decimal: `(-1)^neg * digits * 10^exp`, `digits` without leading
/// zeros (empty means zero), trailing zeros kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dec {
    pub neg: bool,
    pub digits: String,
    pub exp: i64,
}

impl Dec {
    /// Parse `[+-]?digits[.digits][(e|E)[+-]digits]` (either side of the point
    /// may be empty, not both). Returns None for anything else (NaN, Infinity).
    pub fn parse(text: &str) -> Option<Dec> {
        let b = text.as_bytes();
        let mut i = 0;
        let mut neg = false;
        match b.first() {
            Some(b'-') => {
                neg = true;
                i = 1;
            }
            Some(b'+') => i = 1,
            _ => {}
        }
        let mut digits = String::with_capacity(b.len());
        let mut seen_digit = false;
        let mut frac_len: i64 = 0;
        let mut in_frac = false;
        while let Some(&c) = b.get(i) {
            match c {
                b'0'..=b'9' => {
                    seen_digit = true;
                    if !(digits.is_empty() && c == b'0') {
                        digits.push(c as char);
                    }
                    if in_frac {
                        frac_len += 1;
                    }
                }
                b'.' if !in_frac => in_frac = true,
                _ => break,
            }
            i += 1;
        }
        if !seen_digit {
            return None;
        }
        let mut exp: i64 = 0;
        if let Some(&c) = b.get(i) {
            if c != b'e' && c != b'E' {
                return None;
            }
            let rest = text.get(i + 1..)?;
            let rest = rest.strip_prefix('+').unwrap_or(rest);
            if rest.is_empty() || rest.len() > 12 {
                return None;
            }
            let (sign, body) = match rest.strip_prefix('-') {
                Some(body) => (-1, body),
                None => (1, rest),
            };
            if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            exp = sign * body.parse::<i64>().ok()?;
        }
        Some(Dec {
            neg: neg && !digits.is_empty(),
            digits,
            exp: exp - frac_len,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// True when the value has no non-zero fractional digit.
    pub fn is_integral(&self) -> bool {
        if self.exp >= 0 {
            return true;
        }
        let frac = usize::try_from(-self.exp).unwrap_or(usize::MAX);
        if frac >= self.digits.len() {
            return self.digits.is_empty();
        }
        self.digits.as_bytes()[self.digits.len() - frac..]
            .iter()
            .all(|&c| c == b'0')
    }

    /// Number of digits the positional spelling would need.
    fn positional_len(&self) -> i64 {
        let n = self.digits.len() as i64;
        if self.exp >= 0 {
            n + self.exp
        } else {
            n.max(-self.exp + 1)
        }
    }

    /// Integer and fractional digit strings of the positional spelling
    /// (`int` never empty, `frac` possibly empty). None if absurdly long.
    pub fn split(&self) -> Option<(String, String)> {
        if self.positional_len() > MAX_POSITIONAL_DIGITS {
            return None;
        }
        if self.exp >= 0 {
            if self.digits.is_empty() {
                return Some(("0".into(), String::new()));
            }
            let mut int = self.digits.clone();
            int.push_str(&"0".repeat(self.exp as usize));
            return Some((int, String::new()));
        }
        let frac_len = (-self.exp) as usize;
        let n = self.digits.len();
        if n > frac_len {
            let (a, b) = self.digits.split_at(n - frac_len);
            Some((a.to_string(), b.to_string()))
        } else {
            let mut frac = String::with_capacity(frac_len);
            frac.push_str(&"0".repeat(frac_len - n));
            frac.push_str(&self.digits);
            Some(("0".into(), frac))
        }
    }

    /// The positional spelling (`-12.30`, `1000`), sign included.
    pub fn positional(&self) -> Option<String> {
        let (int, frac) = self.split()?;
        let mut s = String::with_capacity(int.len() + frac.len() + 2);
        if self.neg {
            s.push('-');
        }
        s.push_str(&int);
        if !frac.is_empty() {
            s.push('.');
            s.push_str(&frac);
        }
        Some(s)
    }

    /// The value as `i128` if integral and in range.
    pub fn to_i128(&self) -> Option<i128> {
        if !self.is_integral() {
            return None;
        }
        let (int, _) = self.split()?;
        if int.len() > 38 {
            return None;
        }
        let v: i128 = int.parse().ok()?;
        Some(if self.neg { -v } else { v })
    }

    /// The value truncated toward zero (as a new `Dec`).
    pub fn trunc(&self) -> Dec {
        if self.exp >= 0 {
            return self.clone();
        }
        let frac = (-self.exp) as usize;
        let keep = self.digits.len().saturating_sub(frac);
        let digits = self.digits.get(..keep).unwrap_or("").to_string();
        Dec {
            neg: self.neg && !digits.is_empty(),
            digits,
            exp: 0,
        }
    }

    /// Nearest f64 (via its decimal spelling).
    pub fn to_f64(&self) -> f64 {
        let mut s = String::with_capacity(self.digits.len() + 24);
        if self.neg {
            s.push('-');
        }
        if self.digits.is_empty() {
            s.push('0');
        } else {
            s.push_str(&self.digits);
        }
        s.push('e');
        s.push_str(&self.exp.to_string());
        s.parse().unwrap_or(f64::NAN)
    }

    /// Round to `places` fractional digits, half away from zero (what readers
    /// expect: 87.25 -> 87.3; as JavaScript's `Intl.NumberFormat`), then pad with
    /// zeros so exactly `places` digits follow the point.
    pub fn round_to(&self, places: u32) -> Dec {
        let target = -(places as i64);
        if self.exp >= target {
            // Pad: append zeros until exp == target.
            let mut digits = self.digits.clone();
            if !digits.is_empty() {
                digits.push_str(&"0".repeat((self.exp - target) as usize));
            }
            return Dec {
                neg: self.neg,
                digits,
                exp: target,
            };
        }
        let drop = (target - self.exp) as usize; // digits to remove from the right
        let n = self.digits.len();
        let (kept, removed) = if drop >= n {
            (String::new(), {
                let mut r = String::with_capacity(drop);
                r.push_str(&"0".repeat(drop - n));
                r.push_str(&self.digits);
                r
            })
        } else {
            let (a, b) = self.digits.split_at(n - drop);
            (a.to_string(), b.to_string())
        };
        let round_up = removed.as_bytes().first().is_some_and(|&c| c >= b'5');
        let mut digits = if round_up { increment(&kept) } else { kept };
        // Strip leading zeros (kept may be "0..." only when empty-ish).
        let lead = digits.bytes().take_while(|&c| c == b'0').count();
        digits.drain(..lead);
        Dec {
            neg: self.neg && !digits.is_empty(),
            digits,
            exp: target,
        }
    }

    /// Numeric comparison.
    pub fn cmp_value(&self, other: &Dec) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => {
                return if other.neg {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                return if self.neg {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            _ => {}
        }
        if self.neg != other.neg {
            return if self.neg {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let mag = cmp_magnitude(self, other);
        if self.neg {
            mag.reverse()
        } else {
            mag
        }
    }
}

/// Compare |a| and |b|, both non-zero.
fn cmp_magnitude(a: &Dec, b: &Dec) -> Ordering {
    let a_digits = a.digits.trim_end_matches('0');
    let b_digits = b.digits.trim_end_matches('0');
    let a_exp = a.exp + (a.digits.len() - a_digits.len()) as i64;
    let b_exp = b.exp + (b.digits.len() - b_digits.len()) as i64;
    // Position of the most significant digit.
    let a_top = a_exp + a_digits.len() as i64;
    let b_top = b_exp + b_digits.len() as i64;
    if a_top != b_top {
        return a_top.cmp(&b_top);
    }
    // Same magnitude: compare digit strings left-aligned.
    let n = a_digits.len().max(b_digits.len());
    let pa = a_digits.bytes().chain(std::iter::repeat(b'0')).take(n);
    let pb = b_digits.bytes().chain(std::iter::repeat(b'0')).take(n);
    pa.cmp(pb)
}

/// Add one to a string of decimal digits ("" counts as 0).
fn increment(digits: &str) -> String {
    let mut bytes: Vec<u8> = digits.bytes().collect();
    let mut i = bytes.len();
    loop {
        if i == 0 {
            bytes.insert(0, b'1');
            break;
        }
        i -= 1;
        if let Some(c) = bytes.get_mut(i) {
            if *c == b'9' {
                *c = b'0';
            } else {
                *c += 1;
                break;
            }
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// An exact decimal that has no lossless native MiniJinja number form.
#[derive(Debug, Clone)]
pub struct DecimalObj {
    pub dec: Dec,
    /// The positional spelling (or the original text when that is absurdly long).
    pub text: Box<str>,
}

impl Object for DecimalObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        !self.dec.is_zero()
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(self.dec.cmp_value(&other.dec))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Convert decimal text (a DynamoDB `N`, or `str(Decimal)`) to a template value.
/// Text that is not a finite decimal (NaN, Infinity) becomes a string.
pub fn decimal_value(text: &str) -> Value {
    // Fast path: plain small integers ("42", "-7", "1767225600"; "-0" is 0,
    // as integral values are integers).
    if let Some(v) = crate::ddb::number::small_integer(text) {
        return Value::from(v);
    }
    if let Some(f) = short_fraction(text) {
        return Value::from(f);
    }
    match Dec::parse(text) {
        Some(dec) => dec_value(dec, text),
        None => Value::from(text),
    }
}

/// The float of plain fractional text that is already the float's shortest
/// spelling (`87.25`, `-0.5`, `0.001`), found without formatting the float:
/// at most 15 digits in all (every such decimal survives the trip through an
/// f64 and back, and lies far from the subnormal range), an integer part
/// without leading zeros and a fraction without trailing zeros. `dec_value`
/// decides the same for such text by parsing, formatting and comparing.
fn short_fraction(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let body = b.strip_prefix(b"-").unwrap_or(b);
    let point = body.iter().position(|&c| c == b'.')?;
    let (int, frac) = (&body[..point], &body[point + 1..]);
    let canonical = body.len() <= 16
        && !int.is_empty()
        && !frac.is_empty()
        && (int == b"0" || int[0] != b'0')
        && frac.last() != Some(&b'0')
        && int.iter().chain(frac).all(u8::is_ascii_digit);
    if !canonical {
        return None;
    }
    text.parse().ok()
}

/// The template value of a parsed decimal (see the module docs).
pub fn dec_value(dec: Dec, original: &str) -> Value {
    if dec.is_integral() {
        if let Some(v) = dec.to_i128() {
            return match i64::try_from(v) {
                Ok(v) => Value::from(v),
                Err(_) => Value::from(v),
            };
        }
    } else if dec.digits.len() <= 17 {
        if let Some(text) = dec.positional() {
            let f: f64 = text.parse().unwrap_or(f64::NAN);
            if f.is_finite() && f.to_string() == text {
                return Value::from(f);
            }
        }
    }
    let text: Box<str> = match dec.positional() {
        Some(t) => t.into(),
        None => original.into(),
    };
    Value::from_object(DecimalObj { dec, text })
}

/// The exact decimal behind a numeric template value, if it has one:
/// integers, `DecimalObj`s, and floats (by their shortest spelling).
pub fn value_to_dec(value: &Value) -> Option<Dec> {
    if let Some(obj) = value.downcast_object_ref::<DecimalObj>() {
        return Some(obj.dec.clone());
    }
    if value.kind() != minijinja::value::ValueKind::Number {
        return None;
    }
    if value.is_integer() {
        if let Ok(i) = i128::try_from(value.clone()) {
            return Dec::parse(itoa::Buffer::new().format(i));
        }
    }
    let f = f64::try_from(value.clone()).ok()?;
    if f as i64 as f64 == f {
        // An integral float, read as the integer (MiniJinja converts it so too).
        return Dec::parse(itoa::Buffer::new().format(f as i64));
    }
    if !f.is_finite() {
        return None;
    }
    // The shortest spelling that reads back as `f`, as Python's repr and Rust's
    // Display give it, from zmij (without the formatting machinery). With 17
    // digits two spellings can be equally near, and zmij may pick the other
    // one: those few go through Display.
    let dec = Dec::parse(zmij::Buffer::new().format_finite(f))?;
    if dec.digits.len() <= 16 {
        return Some(dec);
    }
    Dec::parse(&f.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &str) -> String {
        decimal_value(text).to_string()
    }

    #[test]
    fn numbers_read_as_the_digits_display_shows() {
        // GIVEN floats and integers across the range, spelled by Rust's Display
        let mut floats = vec![
            32.77,
            -0.5,
            0.1,
            1e-7,
            5e-324,
            1.5e300,
            1e20,
            -2.5e15,
            87.25,
            1.0 / 3.0,
            f64::MAX,
            5.0,
            -0.0,
            9.007199254740993e15,
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                floats.push(f);
            }
            // and short decimals (scores, prices), where zmij's spelling is used
            let short = format!(
                "{}.{}e{}",
                x % 1_000_000,
                (x >> 24) % 100_000,
                (x >> 50) % 40
            );
            floats.push(short.parse::<f64>().unwrap() * if x & 1 == 1 { -1e-20 } else { 1.0 });
        }
        for f in floats {
            // WHEN read as a decimal THEN it is the value Display spells
            let want = if f as i64 as f64 == f {
                Dec::parse(&(f as i64).to_string())
            } else {
                Dec::parse(&f.to_string())
            };
            let got = value_to_dec(&Value::from(f));
            assert_eq!(
                got.as_ref().and_then(Dec::positional),
                want.as_ref().and_then(Dec::positional),
                "{f:e}"
            );
        }
        for i in [0i128, -7, 1 << 70, i128::MIN, i128::MAX] {
            assert_eq!(
                value_to_dec(&Value::from(i)).and_then(|d| d.positional()),
                Some(i.to_string())
            );
        }
        assert_eq!(value_to_dec(&Value::from(f64::NAN)), None);
        assert_eq!(value_to_dec(&Value::from("1")), None);
    }

    #[test]
    fn short_fractions_take_the_shortcut_only_when_the_long_way_agrees() {
        // GIVEN plain fractional texts: edge cases and a spread of digit shapes
        let mut texts: Vec<String> = [
            "87.25",
            "-0.5",
            "0.1",
            "0.001",
            "0.30",
            "00.5",
            "-0.0",
            "1.",
            ".5",
            "123456789012.345",
            "1234567890123.45",
            "0.000000000000001",
            "9007199254740.993",
            "1.7976931348623157",
            "4.35",
            "2.675",
            "-1e5",
            "1.5e3",
            "1.2.3",
            "1-2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 10u64.pow(1 + (x >> 60) as u32 % 16)).to_string();
            let at = (x >> 40) as usize % (digits.len() + 1);
            let (a, b) = digits.split_at(at);
            let sign = if x & 1 == 1 { "-" } else { "" };
            texts.push(format!("{sign}{}.{b}", if a.is_empty() { "0" } else { a }));
        }
        for text in &texts {
            // WHEN the shortcut is taken THEN it gives what parsing and comparing gives
            if let Some(f) = short_fraction(text) {
                let slow = dec_value(Dec::parse(text).expect("decimal"), text);
                assert_eq!(slow.kind(), minijinja::value::ValueKind::Number, "{text}");
                assert_eq!(f64::try_from(slow).ok(), Some(f), "{text}");
                assert_eq!(Value::from(f).to_string(), *text, "{text}");
            }
        }
        // AND the common shapes take it, the others do not
        for hit in ["87.25", "-0.5", "0.001", "1234567890123.45"] {
            assert!(short_fraction(hit).is_some(), "{hit}");
        }
        for miss in [
            "0.30",
            "00.5",
            "-0.0",
            "1.",
            ".5",
            "0.0000000000000001",
            "-1e5",
            "1.2.3",
        ] {
            assert!(short_fraction(miss).is_none(), "{miss}");
        }
    }

    #[test]
    fn integral_values_become_integers() {
        for (text, want) in [
            ("42", "42"),
            ("-7", "-7"),
            ("2.0", "2"),
            ("1E+3", "1000"),
            ("1.5e3", "1500"),
            ("-0", "0"),
            ("0.000", "0"),
            ("00012", "12"),
        ] {
            let v = decimal_value(text);
            assert_eq!(v.kind(), minijinja::value::ValueKind::Number, "{text}");
            assert!(i128::try_from(v.clone()).is_ok(), "{text} is an integer");
            assert_eq!(v.to_string(), want, "{text}");
        }
    }

    #[test]
    fn thirty_eight_digits_keep_every_digit() {
        let int38 = "12345678901234567890123456789012345678";
        assert_eq!(rendered(int38), int38);
        assert_eq!(rendered(&format!("-{int38}")), format!("-{int38}"));
        let frac38 = "1234567890123456789.0123456789012345678";
        assert_eq!(rendered(frac38), frac38);
        assert_eq!(
            rendered("9.9999999999999999999999999999999999999E+125").len(),
            126
        );
    }

    #[test]
    fn fractional_values_render_exactly_as_written() {
        for (text, want) in [
            ("0.1", "0.1"),
            ("87.25", "87.25"),
            ("12.30", "12.30"),
            ("-0.5", "-0.5"),
            ("1.5E-3", "0.0015"),
            ("1E-7", "0.0000001"),
            ("0.30000000000000004441", "0.30000000000000004441"),
        ] {
            assert_eq!(rendered(text), want, "{text}");
        }
    }

    #[test]
    fn float_backed_fractions_compare_and_add() {
        let v = decimal_value("87.25");
        assert_eq!(v.kind(), minijinja::value::ValueKind::Number);
        assert!(v > Value::from(50));
        let obj = decimal_value("12.30");
        assert!(obj.downcast_object_ref::<DecimalObj>().is_some());
    }

    #[test]
    fn non_numbers_stay_text() {
        assert_eq!(rendered("NaN"), "NaN");
        assert_eq!(rendered("Infinity"), "Infinity");
        assert_eq!(Dec::parse("1e"), None);
        assert_eq!(Dec::parse("."), None);
        assert_eq!(Dec::parse("1.2.3"), None);
        assert_eq!(Dec::parse(""), None);
        assert_eq!(Dec::parse("-"), None);
        assert_eq!(Dec::parse("1e99999999999999"), None);
    }

    #[test]
    fn huge_exponents_do_not_explode() {
        let v = decimal_value("1E+999999");
        assert_eq!(v.to_string(), "1E+999999");
    }

    #[test]
    fn rounding_is_half_away_from_zero_and_pads() {
        let r = |t: &str, p| Dec::parse(t).unwrap().round_to(p).positional().unwrap();
        assert_eq!(r("2.675", 2), "2.68");
        assert_eq!(r("2.665", 2), "2.67");
        assert_eq!(r("2.664999", 2), "2.66");
        assert_eq!(r("2.5", 0), "3");
        assert_eq!(r("-2.5", 0), "-3");
        assert_eq!(r("87.25", 1), "87.3");
        assert_eq!(r("9.995", 2), "10.00");
        assert_eq!(r("-0.004", 2), "0.00");
        assert_eq!(r("-0.006", 2), "-0.01");
        assert_eq!(r("12", 2), "12.00");
        assert_eq!(r("0.0001", 2), "0.00");
    }

    #[test]
    fn comparisons_are_numeric() {
        let d = |t: &str| Dec::parse(t).unwrap();
        assert_eq!(d("1.10").cmp_value(&d("1.1")), Ordering::Equal);
        assert_eq!(d("-2").cmp_value(&d("1")), Ordering::Less);
        assert_eq!(d("100").cmp_value(&d("99.999")), Ordering::Greater);
        assert_eq!(d("-100").cmp_value(&d("-99.999")), Ordering::Less);
        assert_eq!(d("0").cmp_value(&d("-0.0")), Ordering::Equal);
        assert_eq!(d("1E+2").cmp_value(&d("100")), Ordering::Equal);
        assert_eq!(d("0.5").cmp_value(&d("0")), Ordering::Greater);
    }

    #[test]
    fn trunc_and_f64() {
        let d = |t: &str| Dec::parse(t).unwrap();
        assert_eq!(d("-12.9").trunc().positional().unwrap(), "-12");
        assert_eq!(d("-0.9").trunc().positional().unwrap(), "0");
        assert!((d("12.30").to_f64() - 12.3).abs() < 1e-12);
    }
}
