//! DynamoDB number validation: every number DynamoDB stores and returns, and
//! every number boto3's `DYNAMODB_CONTEXT` accepts.
//!
//! boto3 decodes `N` with `Context(prec=38, Emin=-128, Emax=126, traps=[Clamped,
//! Overflow, Inexact, Rounded, Underflow]).create_decimal(text)`. For finite
//! input that means: at most 38 digits as written (leading zeros stripped,
//! trailing zeros count), exponent >= Etiny (-165) and adjusted exponent
//! (exponent + digits - 1) <= Emax (126); a zero needs -165 <= exponent <= 126.
//!
//! DynamoDB itself counts precision without trailing zeros and returns numbers
//! in plain notation: a stored 1E+38 comes back as `1` and 38 zeros, which
//! boto3's context refuses (it would have to round). So the rule applied here:
//! at most 38 significant digits, leading AND trailing zeros not counted;
//! magnitude below 1E+127 and no significant digit below 1E-165 (a superset of
//! DynamoDB's 1E-130 to 9.9999999999999999999999999999999999999E+125, and of
//! what boto3 accepts). A value whose spelling boto3 could not hold is given as
//! its canonical text ([`NumberParts::normalized`]), the same value.
//! NaN, Infinity, whitespace and underscores (which `Decimal()` accepts) are
//! rejected on purpose: DynamoDB never sends them.

pub const MAX_DIGITS: usize = 38;
pub const ETINY: i64 = -165;
pub const EMAX: i64 = 126;
/// Exponents are clamped to this magnitude while parsing, far beyond any valid one.
const EXP_CLAMP: i64 = 1_000_000_000_000;

/// A validated number split into its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumberParts<'a> {
    pub negative: bool,
    /// Integer-part digits as written (may have leading zeros).
    pub int: &'a str,
    /// Fraction digits as written.
    pub frac: &'a str,
    /// Exponent of the last digit of `int + frac` (the Decimal `_exp`).
    pub exp: i64,
}

impl NumberParts<'_> {
    /// All digits (integer then fraction) without leading zeros.
    pub fn significant(&self) -> impl Iterator<Item = u8> + '_ {
        self.int
            .bytes()
            .chain(self.frac.bytes())
            .skip_while(|&b| b == b'0')
    }

    /// Digits as written from the first nonzero one (trailing zeros included).
    pub fn written_digits(&self) -> usize {
        self.significant().count()
    }

    /// Zeros at the end of the digits as written (all of them for a zero).
    pub fn trailing_zeros(&self) -> usize {
        let rev = self.frac.bytes().rev().chain(self.int.bytes().rev());
        rev.take_while(|&b| b == b'0').count()
    }

    /// The canonical text of a nonzero value written with more than 38 digits
    /// whose trailing zeros bring it within 38 (`1` and 38 zeros: `1E+38`), or
    /// with an exponent below `ETINY` that its trailing zeros lift (`10E-166`:
    /// `1E-165`): boto3's context cannot hold the spelling as written, though
    /// the value fits. `None` when the spelling fits as written.
    pub fn normalized(&self) -> Option<String> {
        if self.is_zero() {
            return None;
        }
        let written = self.written_digits();
        if written <= MAX_DIGITS && self.exp >= ETINY {
            return None;
        }
        let trailing = self.trailing_zeros();
        let keep = written.saturating_sub(trailing);
        let exp = self.exp + i64::try_from(trailing).unwrap_or(0);
        let mut out = String::with_capacity(keep + 8);
        if self.negative {
            out.push('-');
        }
        out.extend(self.significant().take(keep).map(char::from));
        out.push('E');
        out.push_str(&exp.to_string());
        Some(out)
    }

    pub fn is_zero(&self) -> bool {
        self.int.bytes().chain(self.frac.bytes()).all(|b| b == b'0')
    }

    /// True when the value has no fractional part.
    pub fn is_integral(&self) -> bool {
        if self.exp >= 0 || self.is_zero() {
            return true;
        }
        let drop = usize::try_from(-self.exp).unwrap_or(usize::MAX);
        let digits = self.int.len() + self.frac.len();
        if drop > digits {
            return false; // significant digits sit below the decimal point
        }
        self.int
            .bytes()
            .chain(self.frac.bytes())
            .skip(digits - drop)
            .all(|b| b == b'0')
    }

    /// The integer digits (no sign) of an integral value: significant digits with
    /// the fractional zeros dropped or the exponent's zeros appended.
    pub fn integer_digits(&self) -> String {
        if self.is_zero() {
            return "0".to_owned();
        }
        let sig: Vec<u8> = self.significant().collect();
        // Validated numbers have exp <= 126; the clamp only bounds misuse.
        let zeros = usize::try_from(self.exp.clamp(0, EMAX)).unwrap_or(0);
        let mut out = String::with_capacity(sig.len() + zeros);
        if self.exp >= 0 {
            out.extend(sig.iter().map(|&b| char::from(b)));
            out.push_str(&"0".repeat(zeros));
        } else {
            let drop = usize::try_from(-self.exp).unwrap_or(usize::MAX);
            let keep = sig.len().saturating_sub(drop);
            out.extend(sig.iter().take(keep).map(|&b| char::from(b)));
            if out.is_empty() {
                out.push('0');
            }
        }
        out
    }
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// True for `-?[0-9]{1,38}`: an integer that is always valid (at most 38
/// digits, adjusted exponent at most 37), the common case of counts, ids and
/// epoch seconds; [`parse`] is not needed to accept it.
pub fn is_plain_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.len() <= MAX_DIGITS && all_digits(digits)
}

/// The value of plain integer text of at most 18 digits (`-?[0-9]{1,18}`,
/// always an i64): the fast path of every number conversion.
pub fn small_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.len() > 18 || !is_plain_integer(text) {
        return None;
    }
    text.parse().ok()
}

/// The error for text that is not a decimal literal: its length, never its text
/// (number attributes may hold anything, personal data included).
fn not_a_literal(text: &str) -> String {
    format!(
        "invalid number (not a decimal literal, {})",
        super::error::length_of(text)
    )
}

/// Parse and validate DynamoDB number text.
///
/// Error messages describe the problem, never the text itself.
pub fn parse(text: &str) -> Result<NumberParts<'_>, String> {
    let bad = || not_a_literal(text);
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or("")),
        Some(b'+') => (false, text.get(1..).unwrap_or("")),
        _ => (false, text),
    };
    let (mantissa, exp_text) = match body.find(['e', 'E']) {
        Some(i) => (
            body.get(..i).unwrap_or(""),
            Some(body.get(i + 1..).unwrap_or("")),
        ),
        None => (body, None),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (
            mantissa.get(..i).unwrap_or(""),
            mantissa.get(i + 1..).unwrap_or(""),
        ),
        None => (mantissa, ""),
    };
    if !all_digits(int) || !all_digits(frac) || (int.is_empty() && frac.is_empty()) {
        return Err(bad());
    }
    let mut exp: i64 = 0;
    if let Some(e) = exp_text {
        let (eneg, edigits) = match e.as_bytes().first() {
            Some(b'-') => (true, e.get(1..).unwrap_or("")),
            Some(b'+') => (false, e.get(1..).unwrap_or("")),
            _ => (false, e),
        };
        if edigits.is_empty() || !all_digits(edigits) {
            return Err(bad());
        }
        for b in edigits.bytes() {
            exp = (exp * 10 + i64::from(b - b'0')).min(EXP_CLAMP);
        }
        if eneg {
            exp = -exp;
        }
    }
    let frac_len = i64::try_from(frac.len()).unwrap_or(EXP_CLAMP);
    let parts = NumberParts {
        negative,
        int,
        frac,
        exp: exp.saturating_sub(frac_len),
    };
    if parts.is_zero() {
        if parts.exp < ETINY || parts.exp > EMAX {
            return Err(format!(
                "number out of range (a zero's exponent must be within {ETINY}..={EMAX})"
            ));
        }
        return Ok(parts);
    }
    let written = parts.written_digits();
    // Trailing zeros only matter past 38 digits or below Etiny; not counted otherwise.
    let trailing = if written > MAX_DIGITS || parts.exp < ETINY {
        parts.trailing_zeros()
    } else {
        0
    };
    let ndigits = written.saturating_sub(trailing);
    if ndigits > MAX_DIGITS {
        return Err(format!(
            "number has {ndigits} significant digits (DynamoDB allows {MAX_DIGITS}; \
             leading and trailing zeros do not count)"
        ));
    }
    let adjusted = parts.exp + i64::try_from(written).unwrap_or(0) - 1;
    if adjusted > EMAX {
        return Err(format!(
            "number out of range (magnitude must be below 1E+{}; \
             DynamoDB stores up to 9.9999999999999999999999999999999999999E+125)",
            EMAX + 1
        ));
    }
    let last = parts.exp + i64::try_from(trailing).unwrap_or(0);
    if last < ETINY {
        return Err(format!(
            "number out of range (a significant digit below 1E{ETINY}, \
             the smallest place accepted; DynamoDB stores magnitudes from 1E-130)"
        ));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_integers_are_exactly_the_valid_sign_and_digit_strings() {
        for text in [
            "0",
            "-0",
            "007",
            "1767225600",
            "-42",
            &"9".repeat(38),
            &format!("-{}", "1".repeat(38)),
        ] {
            assert!(is_plain_integer(text), "{text}");
            assert!(parse(text).is_ok(), "{text}");
        }
        for text in [
            "",
            "-",
            "+1",
            "1.0",
            "1e3",
            " 1",
            "1_0",
            "--1",
            &"9".repeat(39),
            "١",
        ] {
            assert!(!is_plain_integer(text), "{text}");
        }
    }

    #[test]
    fn small_integers_are_the_plain_integers_that_fit_18_digits() {
        let max = "9".repeat(18);
        let min = format!("-{max}");
        for (text, want) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("007", Some(7)),
            ("-42", Some(-42)),
            (max.as_str(), Some(999_999_999_999_999_999)),
            (min.as_str(), Some(-999_999_999_999_999_999)),
            (&"1".repeat(19), None),
            ("1.0", None),
            ("+1", None),
            ("", None),
        ] {
            assert_eq!(small_integer(text), want, "{text}");
        }
    }

    #[test]
    fn accepts_the_decimal_grammar() {
        for ok in [
            "0", "-0", "+5", "1.", ".5", "1.50", "1e5", "1E+2", "-1.5e-3", "007", "0.000",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_what_dynamodb_never_sends() {
        for bad in [
            "", "-", ".", "e5", "1e", "1e+", "NaN", "Infinity", "inf", " 1", "1 ", "1_000", "0x10",
            "1.2.3", "--1", "١",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enforces_the_context_limits() {
        let d38 = "9".repeat(38);
        assert!(parse(&d38).is_ok());
        assert!(parse(&format!("{d38}9")).is_err());
        assert!(
            parse(&format!("{d38}0")).is_ok(),
            "trailing zeros do not count"
        );
        assert!(parse(&format!("{d38}.0000")).is_ok(), "nor fractional ones");
        assert!(parse(&format!("{d38}1")).is_err());
        assert!(
            parse(&format!("1{}", "0".repeat(126))).is_ok(),
            "1E+126, plain"
        );
        assert!(
            parse(&format!("1{}", "0".repeat(127))).is_err(),
            "1E+127, plain"
        );
        assert!(
            parse(&format!("0.{}1", "0".repeat(129))).is_ok(),
            "1E-130, plain"
        );
        assert!(parse(&format!("000{d38}")).is_ok(), "leading zeros do not");
        assert!(parse("1E-165").is_ok());
        assert!(parse("1E-166").is_err());
        assert!(parse("10E-166").is_ok(), "the value decides: 1E-165");
        assert!(parse("11E-166").is_err());
        assert!(parse("9.9E+125").is_ok());
        assert!(parse("1E+126").is_ok());
        assert!(parse("10E+125").is_ok());
        assert!(parse("1E+127").is_err());
        assert!(parse("0E+126").is_ok());
        assert!(parse("0E+127").is_err());
        assert!(parse("0E-165").is_ok());
        assert!(parse("0E-166").is_err());
        assert!(parse("1E999999999999999999999999").is_err());
        assert!(parse("0E-999999999999999999999999").is_err());
    }

    #[test]
    fn errors_never_quote_the_text() {
        let marker = "jane.doe@corp.example";
        for text in [
            marker.to_owned(),
            format!("1{marker}"),
            format!("{}1", "9".repeat(40)),
            "1E+999".to_owned(),
            "1E-999".to_owned(),
            "0E+999".to_owned(),
        ] {
            let err = parse(&text).expect_err(&text);
            assert!(!err.contains(&text), "{err}");
        }
        assert_eq!(
            parse(marker),
            Err("invalid number (not a decimal literal, 21 characters)".into())
        );
    }

    #[test]
    fn values_boto3_cannot_hold_as_written_are_normalized() {
        let norm = |t: &str| parse(t).map(|p| p.normalized());
        let e38 = format!("1{}", "0".repeat(38));
        assert_eq!(norm(&e38), Ok(Some("1E38".into())));
        assert_eq!(norm(&format!("-{e38}")), Ok(Some("-1E38".into())));
        assert_eq!(
            norm("110111111111111110000000000000000000000"),
            Ok(Some("11011111111111111E22".into()))
        );
        assert_eq!(norm("10E-166"), Ok(Some("1E-165".into())));
        assert_eq!(
            norm(&format!("1.{}", "0".repeat(40))),
            Ok(Some("1E0".into()))
        );
        assert_eq!(norm(&"9".repeat(38)), Ok(None));
        assert_eq!(norm("1.50"), Ok(None));
        assert_eq!(norm("0E+5"), Ok(None));
    }

    #[test]
    fn integral_values_give_their_digits() {
        let digits = |t: &str| parse(t).map(|p| (p.is_integral(), p.integer_digits()));
        assert_eq!(digits("1E2"), Ok((true, "100".into())));
        assert_eq!(digits("1.0"), Ok((true, "1".into())));
        assert_eq!(digits("-0.00"), Ok((true, "0".into())));
        assert_eq!(digits("1.5"), Ok((false, "1".into())));
        assert_eq!(digits("0.001"), Ok((false, "0".into())));
        assert_eq!(digits("1500E-2"), Ok((true, "15".into())));
    }
}
