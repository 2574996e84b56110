//! Filters for notifications, registered on every template set.
//!
//! Added: `datetime`, `date` (strftime in an IANA time zone), `number`
//! (grouping, fixed decimals, exact), Jinja2-compatible `truncate` and
//! `title`. Overridden so exact decimals work: `int`, `float`, `round`, `abs`
//! and the `number` test. MiniJinja's built-ins (`default`, `urlencode`,
//! `join`, `length`, `upper`, ...) stay as they are.
use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;
use std::str::FromStr;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use minijinja::value::{ArgType, Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};

use super::decimal::{dec_value, value_to_dec, Dec, DecimalObj};

pub fn register(env: &mut Environment<'_>) {
    env.add_filter("datetime", datetime);
    env.add_filter("date", date);
    env.add_filter("number", number);
    env.add_filter("truncate", truncate);
    env.add_filter("title", title);
    env.add_filter("sort", sort);
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("round", round);
    env.add_filter("abs", abs);
    env.add_test("number", is_number);
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// A filter's arguments after its value: the positional ones, and the keyword
/// arguments if any were passed.
///
/// Filters here take `args: &[Value]` instead of typed parameters and a
/// trailing `Kwargs`: for that signature MiniJinja builds a `Kwargs` (an
/// `Arc`ed empty map and a `HashSet`) on every call that passes none, the
/// common case. The passed names are checked against the known ones up front
/// (MiniJinja's `Kwargs::get` would record each read name in a `HashSet<String>`
/// for `assert_all_used`: an allocation and a SipHash per name).
struct Args<'a> {
    pos: &'a [Value],
    kwargs: Option<Kwargs>,
}

impl<'a> Args<'a> {
    /// Split `args`: at most `max_pos` positional ones, keywords from `known`.
    fn new(args: &'a [Value], max_pos: usize, known: &[&str]) -> Result<Self, Error> {
        let (pos, kwargs) = match args.split_last() {
            Some((last, rest)) => match kwargs_of(last) {
                Some(kwargs) => (rest, Some(kwargs)),
                None => (args, None),
            },
            None => (args, None),
        };
        if pos.len() > max_pos {
            return Err(Error::from(ErrorKind::TooManyArguments));
        }
        if let Some(kwargs) = &kwargs {
            for key in kwargs.args() {
                if !known.contains(&key) {
                    return Err(Error::new(
                        ErrorKind::TooManyArguments,
                        format!("unknown keyword argument '{key}'"),
                    ));
                }
            }
        }
        Ok(Args { pos, kwargs })
    }

    /// The argument passed as keyword `key`, else at position `index`, else None.
    fn get<T>(&'a self, index: usize, key: &'a str) -> Result<Option<T>, Error>
    where
        Option<T>: ArgType<'a, Output = Option<T>>,
    {
        if let Some(v) = self.keyword(key)? {
            return Ok(Some(v));
        }
        <Option<T> as ArgType>::from_value(self.pos.get(index))
    }

    /// The argument passed as keyword `key` (presence is checked by scanning
    /// the one or two passed names: `Kwargs::has` hashes a `Value`).
    fn keyword<T>(&'a self, key: &'a str) -> Result<Option<T>, Error>
    where
        Option<T>: ArgType<'a, Output = Option<T>>,
    {
        match &self.kwargs {
            Some(kwargs) if kwargs.args().any(|k| k == key) => kwargs.peek::<Option<T>>(key),
            _ => Ok(None),
        }
    }
}

/// The keyword arguments `value` carries, if it is MiniJinja's keyword map
/// (read once; `Value::is_kwargs` would read them to answer, then again here).
fn kwargs_of(value: &Value) -> Option<Kwargs> {
    if value.kind() != ValueKind::Map {
        return None;
    }
    Kwargs::from_value(Some(value)).ok()
}

// ---------------------------------------------------------------- datetime

const DEFAULT_DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M";
const DEFAULT_DATE_FORMAT: &str = "%Y-%m-%d";

/// `{{ ts|datetime("%d.%m.%Y %H:%M", tz="Europe/Berlin") }}`: format a moment
/// (epoch seconds as a number or numeric text, or ISO 8601 text) in a time
/// zone (IANA name, default UTC). Arguments `format`, `tz`.
fn datetime(value: &Value, args: &[Value]) -> Result<String, Error> {
    format_moment(value, args, DEFAULT_DATETIME_FORMAT)
}

/// `{{ ts|date }}`: like `datetime`, default format `%Y-%m-%d`.
fn date(value: &Value, args: &[Value]) -> Result<String, Error> {
    format_moment(value, args, DEFAULT_DATE_FORMAT)
}

fn format_moment(value: &Value, args: &[Value], default_format: &str) -> Result<String, Error> {
    let args = Args::new(args, 2, &["format", "tz"])?;
    let format = args.get::<&str>(0, "format")?;
    let tz = args.get::<&str>(1, "tz")?;
    let moment = to_moment(value)?;
    let zone = match tz {
        None | Some("UTC") | Some("utc") | Some("Z") => Tz::UTC,
        Some(name) => time_zone(name)?,
    };
    let fmt = format.unwrap_or(default_format);
    let items = parsed_format(fmt)?;
    let local = moment.with_timezone(&zone);
    let mut out = String::with_capacity(fmt.len() + 16);
    if !format_fast(&mut out, &local.naive_local(), &local, &items) {
        out.clear();
        write!(out, "{}", local.format_with_items(items.iter()))
            .map_err(|_| invalid(format!("cannot format date/time with {fmt:?}")))?;
    }
    Ok(out)
}

const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const SHORT_WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Format the strftime items notifications use straight into `out`, as
/// chrono would. chrono's `format_with_items` renders the zone name to a new
/// String up front (for `%Z`, needed or not) and goes through `fmt::write`
/// for every item; this writes directly. Returns false for an item it does
/// not handle (the caller then formats with chrono). `t` is `zoned` as local
/// time: `DateTime<Tz>` adds the offset again for every field it is asked for.
fn format_fast(
    out: &mut String,
    t: &NaiveDateTime,
    zoned: &DateTime<Tz>,
    items: &[Item<'static>],
) -> bool {
    use chrono::format::{Fixed, Numeric, Pad};
    use chrono::{Datelike, Timelike};

    fn two(out: &mut String, v: u32, pad: Pad) {
        let tens = v / 10;
        match (tens, pad) {
            (0, Pad::None) => {}
            (0, Pad::Space) => out.push(' '),
            _ => out.push(char::from(b'0' + (tens % 10) as u8)),
        }
        out.push(char::from(b'0' + (v % 10) as u8));
    }

    for item in items {
        match item {
            Item::Literal(s) | Item::Space(s) => out.push_str(s),
            Item::OwnedLiteral(s) | Item::OwnedSpace(s) => out.push_str(s),
            Item::Numeric(spec, pad) => match spec {
                Numeric::Year => {
                    let y = t.year();
                    if !(1000..=9999).contains(&y) {
                        return false;
                    }
                    two(out, (y / 100) as u32, Pad::Zero);
                    two(out, (y % 100) as u32, Pad::Zero);
                }
                Numeric::Month => two(out, t.month(), *pad),
                Numeric::Day => two(out, t.day(), *pad),
                Numeric::Hour => two(out, t.hour(), *pad),
                Numeric::Hour12 => two(out, t.hour12().1, *pad),
                Numeric::Minute => two(out, t.minute(), *pad),
                // chrono shows a leap second as 60.
                Numeric::Second => two(out, t.second() + t.nanosecond() / 1_000_000_000, *pad),
                _ => return false,
            },
            Item::Fixed(spec) => match spec {
                Fixed::ShortMonthName => out.push_str(SHORT_MONTHS[t.month0() as usize % 12]),
                Fixed::LongMonthName => out.push_str(LONG_MONTHS[t.month0() as usize % 12]),
                Fixed::ShortWeekdayName => {
                    out.push_str(SHORT_WEEKDAYS[t.weekday().num_days_from_monday() as usize % 7])
                }
                Fixed::LongWeekdayName => {
                    out.push_str(LONG_WEEKDAYS[t.weekday().num_days_from_monday() as usize % 7])
                }
                Fixed::UpperAmPm => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
                Fixed::LowerAmPm => out.push_str(if t.hour() < 12 { "am" } else { "pm" }),
                Fixed::TimezoneName => {
                    if write!(out, "{}", zoned.offset()).is_err() {
                        return false;
                    }
                }
                _ => return false,
            },
            Item::Error => return false,
        }
    }
    true
}

/// Parsed strftime formats, per thread: templates use a handful of formats,
/// and parsing one costs more than formatting with it. A short list scanned
/// by comparison beats hashing the format text on every call.
type FormatCache = Vec<(Box<str>, Rc<[Item<'static>]>)>;
const FORMAT_CACHE_SIZE: usize = 32;

thread_local! {
    static FORMATS: RefCell<FormatCache> = const { RefCell::new(Vec::new()) };
}

fn parsed_format(fmt: &str) -> Result<Rc<[Item<'static>]>, Error> {
    let cached = FORMATS.with(|c| {
        c.borrow()
            .iter()
            .find(|(f, _)| &**f == fmt)
            .map(|(_, items)| items.clone())
    });
    if let Some(items) = cached {
        return Ok(items);
    }
    let items: Rc<[Item<'static>]> = StrftimeItems::new(fmt)
        .parse_to_owned()
        .map_err(|_| invalid(format!("invalid date/time format {fmt:?}")))?
        .into();
    FORMATS.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= FORMAT_CACHE_SIZE {
            cache.clear();
        }
        cache.push((fmt.into(), items.clone()));
    });
    Ok(items)
}

/// The zone named `name`, remembering the last one per thread: a template set
/// formats many moments in few zones, and the name lookup costs more than
/// comparing the name with the last one.
fn time_zone(name: &str) -> Result<Tz, Error> {
    thread_local! {
        static LAST: RefCell<Option<(Box<str>, Tz)>> = const { RefCell::new(None) };
    }
    let hit = LAST.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(n, _)| &**n == name)
            .map(|(_, tz)| *tz)
    });
    if let Some(tz) = hit {
        return Ok(tz);
    }
    let tz = Tz::from_str(name).map_err(|_| {
        // The zone may come from a record (a user's time zone): not quoted.
        invalid(format!(
            "unknown time zone ({}; use an IANA name such as \"Europe/Berlin\")",
            crate::ddb::error::length_of(name)
        ))
    })?;
    LAST.with(|c| *c.borrow_mut() = Some((name.into(), tz)));
    Ok(tz)
}

fn to_moment(value: &Value) -> Result<DateTime<Utc>, Error> {
    if let Some(text) = value.as_str() {
        let text = text.trim();
        // Digits only (Dec::parse reads the whole text): epoch seconds.
        if let Some(dec) = Dec::parse(text) {
            return from_epoch(&dec);
        }
        return parse_iso(text).ok_or_else(|| {
            // The text is a record's value: described, never quoted.
            invalid(format!(
                "datetime: cannot read a string of {} as ISO 8601 date/time or epoch seconds",
                crate::ddb::error::length_of(text)
            ))
        });
    }
    if value.kind() == ValueKind::Number && value.is_integer() {
        let secs = i64::try_from(value.clone())
            .map_err(|_| invalid("datetime: epoch seconds out of range"))?;
        return DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| invalid("datetime: epoch seconds out of range"));
    }
    if let Some(dec) = value_to_dec(value) {
        return from_epoch(&dec);
    }
    Err(invalid(format!(
        "datetime: expected epoch seconds or ISO 8601 text, got {}",
        value.kind()
    )))
}

fn from_epoch(dec: &Dec) -> Result<DateTime<Utc>, Error> {
    let out_of_range = || invalid("datetime: epoch seconds out of range");
    let secs = dec.trunc().to_i128().ok_or_else(out_of_range)?;
    let secs = i64::try_from(secs).map_err(|_| out_of_range())?;
    // Fraction of a second, as nanoseconds (truncated): |value| * 10^9 mod 10^9.
    let scaled = Dec {
        neg: false,
        digits: dec.digits.clone(),
        exp: dec.exp + 9,
    };
    let nanos = (scaled.trunc().to_i128().unwrap_or(0) % 1_000_000_000) as i64;
    let nanos = if dec.neg { -nanos } else { nanos };
    DateTime::from_timestamp(secs, 0)
        .and_then(|t| t.checked_add_signed(chrono::TimeDelta::nanoseconds(nanos)))
        .ok_or_else(out_of_range)
}

fn parse_iso(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(text, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    // Without an offset: UTC.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?))
}

// ------------------------------------------------------------------ number

/// Thousands separator and decimal point for a language tag.
fn separators(locale: &str) -> (&'static str, &'static str) {
    let norm = locale.to_ascii_lowercase().replace('_', "-");
    match norm.as_str() {
        "de-ch" | "de-li" | "it-ch" | "fr-ch" => return ("\u{2019}", "."),
        _ => {}
    }
    let lang = norm.split('-').next().unwrap_or("");
    match lang {
        "de" | "es" | "it" | "nl" | "pt" | "da" | "id" | "tr" | "el" | "ro" | "hr" | "sl" => {
            (".", ",")
        }
        "fr" => ("\u{202f}", ","),
        "pl" | "sv" | "nb" | "no" | "fi" | "cs" | "sk" | "ru" | "uk" | "hu" | "bg" | "lt"
        | "lv" | "et" => ("\u{a0}", ","),
        _ => (",", "."),
    }
}

/// `{{ n|number }}` -> `1,234,567`; `{{ n|number(2) }}` -> `1,234.50`;
/// `{{ n|number(2, locale="de") }}` -> `1.234,50`. Exact: decimals are rounded
/// half away from zero on their digits, never through a float. Keyword arguments:
/// `decimals`, `locale`, `thousands`, `point`.
fn number(value: &Value, args: &[Value]) -> Result<String, Error> {
    let args = Args::new(args, 1, &["decimals", "locale", "thousands", "point"])?;
    let decimals = args.get::<u32>(0, "decimals")?;
    let (mut thousands, mut point) = match args.keyword::<&str>("locale")? {
        Some(locale) => separators(locale),
        None => (",", "."),
    };
    if let Some(t) = args.keyword::<&str>("thousands")? {
        thousands = t;
    }
    if let Some(p) = args.keyword::<&str>("point")? {
        point = p;
    }
    if decimals.is_some_and(|d| d > 100) {
        return Err(invalid("number: at most 100 decimals"));
    }
    // Integers without decimals (the common case): no decimal arithmetic needed.
    if decimals.is_none() && value.kind() == ValueKind::Number && value.is_integer() {
        if let Ok(i) = i128::try_from(value.clone()) {
            return Ok(group(
                i < 0,
                itoa::Buffer::new().format(i.unsigned_abs()),
                "",
                thousands,
                point,
            ));
        }
    }
    let dec = match value.as_str() {
        Some(text) => Dec::parse(text.trim()),
        None => value_to_dec(value),
    }
    .ok_or_else(|| invalid(format!("number: expected a number, got {}", value.kind())))?;
    if dec.split().is_none() {
        return Err(invalid("number: value too large to format"));
    }
    let dec = match decimals {
        Some(d) => dec.round_to(d),
        None => dec,
    };
    let (int, frac) = dec
        .split()
        .ok_or_else(|| invalid("number: value too large to format"))?;
    Ok(group(dec.neg, &int, &frac, thousands, point))
}

/// `int` digits grouped by three with `thousands`, then `point` and `frac`.
fn group(neg: bool, int: &str, frac: &str, thousands: &str, point: &str) -> String {
    let mut out =
        String::with_capacity(int.len() + int.len() / 3 * thousands.len() + frac.len() + 2);
    if neg {
        out.push('-');
    }
    let n = int.len();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (n - i) % 3 == 0 {
            out.push_str(thousands);
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push_str(point);
        out.push_str(frac);
    }
    out
}

// -------------------------------------------------------- truncate / title

/// Jinja2's `truncate(s, length=255, killwords=False, end='...', leeway=5)`,
/// counting characters (not bytes); `leeway` only as a keyword.
fn truncate(value: &Value, args: &[Value]) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    let args = Args::new(args, 3, &["length", "killwords", "end", "leeway"])?;
    let length = args.get::<usize>(0, "length")?.unwrap_or(255);
    let killwords = args.get::<bool>(1, "killwords")?.unwrap_or(false);
    let end = args.get::<&str>(2, "end")?.unwrap_or("...");
    let leeway = args.keyword::<usize>("leeway")?.unwrap_or(5);
    let owned;
    let s = match value.as_str() {
        Some(s) => s,
        None => {
            owned = value.to_string();
            owned.as_str()
        }
    };
    let end_len = end.chars().count();
    if length < end_len {
        return Err(invalid(format!(
            "truncate: length {length} is shorter than the end marker {end:?}"
        )));
    }
    if s.chars().count() <= length.saturating_add(leeway) {
        // Short enough: the text itself (a plain string, shared, not copied).
        return Ok(if value.as_str().is_some() && !value.is_safe() {
            value.clone()
        } else {
            Value::from(s)
        });
    }
    let cut: String = s.chars().take(length - end_len).collect();
    let kept = if killwords {
        cut.as_str()
    } else {
        match cut.rfind(' ') {
            Some(pos) => &cut[..pos],
            None => cut.as_str(),
        }
    };
    Ok(Value::from(format!("{kept}{end}")))
}

/// Jinja2's `title`: upper-case the first character of each word (words
/// start after whitespace or one of `-({[<`), lower-case the rest.
fn title(value: &Value) -> Value {
    let owned;
    let s = match value.as_str() {
        Some(s) => s,
        None => {
            owned = value.to_string();
            owned.as_str()
        }
    };
    if s.is_ascii() {
        // Byte by byte (most statuses and names): no case tables, and short
        // results are built on the stack (MiniJinja keeps them inline).
        let mut start = true;
        let mut step = |b: u8| {
            let out = if title_starts_word(char::from(b)) {
                start = true;
                return b;
            } else if start {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            };
            start = false;
            out
        };
        let mut buf = [0u8; 64];
        if let Some(head) = buf.get_mut(..s.len()) {
            for (o, &b) in head.iter_mut().zip(s.as_bytes()) {
                *o = step(b);
            }
            return Value::from(std::str::from_utf8(head).unwrap_or_default());
        }
        let out: String = s.bytes().map(|b| char::from(step(b))).collect();
        return Value::from(out);
    }
    Value::from(title_chars(s))
}

/// `title` character by character, with Unicode case mapping.
fn title_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if title_starts_word(c) {
            out.push(c);
            start = true;
        } else if start {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Words start after whitespace or one of `-({[<` (Jinja2's rule).
fn title_starts_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '(' | '{' | '[' | '<')
}

// -------------------------------------------------------------------- sort

/// MiniJinja's `sort`, with a shortcut: a list of lower-case ASCII strings
/// already in order (DynamoDB string sets arrive sorted, so `tags|sort` is the
/// common case) is returned as it is. For such strings MiniJinja's default
/// case-insensitive order is plain byte order, and a stable sort of a sorted
/// list keeps it unchanged. Anything else goes to MiniJinja's `sort`.
fn sort(state: &State, value: Value, args: &[Value]) -> Result<Value, Error> {
    if args.is_empty() && value.kind() == ValueKind::Seq && is_sorted_lower_ascii(&value) {
        return Ok(value);
    }
    // MiniJinja's `sort` takes keyword arguments only.
    let kwargs = match args {
        [] => Kwargs::from_value(None)?,
        [last] => kwargs_of(last).ok_or_else(|| Error::from(ErrorKind::TooManyArguments))?,
        _ => return Err(Error::from(ErrorKind::TooManyArguments)),
    };
    minijinja::filters::sort(state, value, kwargs)
}

fn is_sorted_lower_ascii(seq: &Value) -> bool {
    let Ok(items) = seq.try_iter() else {
        return false;
    };
    let mut prev: Option<Value> = None;
    for item in items {
        let Some(s) = item.as_str() else {
            return false;
        };
        if s.bytes().any(|b| !b.is_ascii() || b.is_ascii_uppercase()) {
            return false;
        }
        if prev.as_ref().and_then(Value::as_str).is_some_and(|p| p > s) {
            return false;
        }
        prev = Some(item);
    }
    true
}

// ------------------------------------------ numeric filters, decimal-aware

fn as_decimal(value: &Value) -> Option<&DecimalObj> {
    value.downcast_object_ref::<DecimalObj>()
}

fn int(state: &State, value: &Value) -> Result<Value, Error> {
    if let Some(d) = as_decimal(value) {
        let t = d.dec.trunc();
        let text = t.positional().unwrap_or_else(|| d.text.to_string());
        return Ok(dec_value(t, &text));
    }
    minijinja::filters::int(state, value)
}

fn float(state: &State, value: &Value) -> Result<Value, Error> {
    if let Some(d) = as_decimal(value) {
        return Ok(Value::from(d.dec.to_f64()));
    }
    minijinja::filters::float(state, value)
}

fn round(value: Value, precision: Option<i32>) -> Result<Value, Error> {
    if let Some(d) = as_decimal(&value) {
        return minijinja::filters::round(Value::from(d.dec.to_f64()), precision);
    }
    minijinja::filters::round(value, precision)
}

fn abs(value: Value) -> Result<Value, Error> {
    if let Some(d) = as_decimal(&value) {
        let mut dec = d.dec.clone();
        dec.neg = false;
        let text = d.text.trim_start_matches('-').to_string();
        return Ok(dec_value(dec, &text));
    }
    minijinja::filters::abs(value)
}

fn is_number(value: &Value) -> bool {
    value.kind() == ValueKind::Number || as_decimal(value).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::decimal::decimal_value;
    use minijinja::context;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        register(&mut env);
        env
    }

    fn render(src: &str, ctx: Value) -> String {
        env().render_str(src, ctx).unwrap()
    }

    #[test]
    fn datetime_from_epoch_in_time_zones() {
        let ctx = context! { t => 1_767_225_600 };
        assert_eq!(render("{{ t|datetime }}", ctx.clone()), "2026-01-01 00:00");
        assert_eq!(
            render(
                "{{ t|datetime('%Y-%m-%d %H:%M %Z', tz='Europe/Berlin') }}",
                ctx.clone()
            ),
            "2026-01-01 01:00 CET"
        );
        assert_eq!(
            render("{{ t|datetime('%H:%M', 'America/New_York') }}", ctx.clone()),
            "19:00"
        );
        assert_eq!(render("{{ t|date(tz='Asia/Tokyo') }}", ctx), "2026-01-01");
    }

    #[test]
    fn datetime_from_iso_text_and_decimals() {
        let ctx = context! {
            iso => "2026-07-01T12:30:00Z",
            off => "2026-07-01T12:30:00+02:00",
            naive => "2026-07-01 12:30:00",
            day => "2026-07-01",
            epoch_text => "1767225600",
            frac => decimal_value("1767225600.75"),
        };
        assert_eq!(
            render("{{ iso|datetime(tz='Europe/Berlin') }}|{{ off|datetime }}|{{ naive|datetime }}|{{ day|datetime }}|{{ epoch_text|date }}|{{ frac|datetime('%S.%3f') }}", ctx),
            "2026-07-01 14:30|2026-07-01 10:30|2026-07-01 12:30|2026-07-01 00:00|2026-01-01|00.750"
        );
    }

    #[test]
    fn alternating_time_zones_each_give_their_own_offset() {
        // GIVEN one moment formatted in zones that alternate (the last zone is remembered)
        let ctx = context! { t => "2026-07-01T12:30:00Z" };
        let src = "{{ t|datetime('%H:%M %Z', tz='Europe/Berlin') }}|\
                   {{ t|datetime('%H:%M %Z', tz='America/New_York') }}|\
                   {{ t|datetime('%H:%M %Z', tz='Europe/Berlin') }}";
        // THEN each call uses its own zone
        assert_eq!(render(src, ctx.clone()), "14:30 CEST|08:30 EDT|14:30 CEST");
        // AND an unknown zone right after a known one still fails
        let bad = "{{ t|datetime(tz='Europe/Berlin') }}{{ t|datetime(tz='Europe/Berlinx') }}";
        let err = env().render_str(bad, ctx).unwrap_err();
        assert!(err.to_string().contains("unknown time zone"), "{err}");
    }

    #[test]
    fn datetime_errors_are_clear() {
        let e = env();
        let err = e
            .render_str("{{ 0|datetime(tz='Mars/Olympus') }}", ())
            .unwrap_err();
        assert!(err.to_string().contains("unknown time zone"), "{err}");
        let err = e.render_str("{{ 'soon'|datetime }}", ()).unwrap_err();
        assert!(err.to_string().contains("ISO 8601"), "{err}");
        let err = e.render_str("{{ 0|datetime('%Q') }}", ()).unwrap_err();
        assert!(
            err.to_string().contains("invalid date/time format"),
            "{err}"
        );
        let err = e
            .render_str("{{ 99999999999999999999|datetime }}", ())
            .unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn number_groups_and_rounds_exactly() {
        let ctx = context! {
            i => 1_234_567,
            neg => -1234,
            d => decimal_value("1234.5"),
            big => decimal_value("12345678901234567890123456789012345678"),
            exact => decimal_value("2.675"),
            f => 0.5,
            small => 999,
        };
        assert_eq!(
            render("{{ i|number }}|{{ neg|number }}|{{ d|number }}|{{ d|number(2) }}|{{ exact|number(2) }}|{{ f|number(0) }}|{{ small|number(1) }}", ctx.clone()),
            "1,234,567|-1,234|1,234.5|1,234.50|2.68|1|999.0"
        );
        assert_eq!(
            render("{{ big|number }}", ctx.clone()),
            "12,345,678,901,234,567,890,123,456,789,012,345,678"
        );
        assert_eq!(
            render("{{ d|number(2, locale='de') }}|{{ d|number(2, locale='de_CH') }}|{{ i|number(thousands=' ') }}|{{ d|number(decimals=1, point='·') }}", ctx),
            "1.234,50|1\u{2019}234.50|1 234 567|1,234·5"
        );
    }

    #[test]
    fn truncate_matches_jinja2() {
        let ctx = context! { s => "Great to meet you at the conference!" };
        assert_eq!(
            render("{{ s|truncate(20) }}", ctx.clone()),
            "Great to meet..."
        );
        assert_eq!(
            render("{{ s|truncate(20, true) }}", ctx.clone()),
            "Great to meet you..."
        );
        assert_eq!(
            render("{{ s|truncate(20, end='…') }}", ctx.clone()),
            "Great to meet you…"
        );
        assert_eq!(render("{{ s|truncate(33) }}", ctx.clone()), s_of(&ctx));
        assert_eq!(
            render("{{ s|truncate(length=30, leeway=0) }}", ctx.clone()),
            "Great to meet you at the..."
        );
        assert_eq!(
            render(
                "{{ 'Grüße aus Köln und Düsseldorf'|truncate(12, leeway=0) }}",
                ctx
            ),
            "Grüße..."
        );
    }

    fn s_of(ctx: &Value) -> String {
        ctx.get_attr("s").unwrap().to_string()
    }

    #[test]
    fn title_matches_jinja2() {
        assert_eq!(
            render(
                "{{ \"o'neil data-scientist ÉCOLE (paris)\"|title }}",
                context! {}
            ),
            "O'neil Data-Scientist École (Paris)"
        );
    }

    #[test]
    fn title_ascii_shortcut_agrees_with_the_char_path() {
        // GIVEN ASCII texts, short and longer than the stack buffer
        let long = "a staff ENGINEER at hooli, (remote) [en]-<b>{x}\tz\u{b}y\u{c}w\rq ".repeat(3);
        for s in [
            "interview",
            "",
            " lead  space",
            "x",
            "MIXED case-words",
            "a\u{b}b",
            &long,
        ] {
            // WHEN titled THEN the shortcut (short or long text) gives the same
            assert_eq!(
                title(&Value::from(s)).as_str(),
                Some(title_chars(s).as_str()),
                "{s:?}"
            );
        }
        assert!(long.len() > 64);
        assert_eq!(title(&Value::from(42)).as_str(), Some("42"));
    }

    #[test]
    fn numeric_filters_understand_exact_decimals() {
        let ctx = context! { d => decimal_value("-12.30"), huge => decimal_value("1E+50") };
        assert_eq!(
            render("{{ d }}|{{ d|int }}|{{ d|float }}|{{ d|round }}|{{ d|abs }}|{{ d is number }}|{{ huge }}|{{ huge|int }}", ctx),
            "-12.30|-12|-12.3|-12.0|12.30|True|100000000000000000000000000000000000000000000000000|100000000000000000000000000000000000000000000000000"
        );
        assert_eq!(
            render("{{ 'x' is number }}{{ 1.5|int }}{{ 2|float }}", context! {}),
            "False12.0"
        );
    }

    #[test]
    fn keyword_arguments_are_read_and_unknown_ones_refused() {
        let ctx = context! { t => 1_767_225_600, n => 1234.5, s => "a b c d e f g h" };
        assert_eq!(
            render(
                "{{ t|datetime(format='%H:%M', tz='Europe/Berlin') }}|{{ n|number(decimals=2, locale='de') }}|{{ n|number(1, thousands=' ', point=',') }}|{{ s|truncate(length=7, end='~', leeway=0) }}|{{ s|truncate(7, True, leeway=0) }}|{{ s|truncate(length=20) }}",
                ctx.clone()
            ),
            "01:00|1.234,50|1 234,5|a b c~|a b ...|a b c d e f g h"
        );
        for src in [
            "{{ t|datetime(fmt='%H') }}",
            "{{ n|number(digits=2) }}",
            "{{ s|truncate(size=3) }}",
        ] {
            let err = env().render_str(src, context! { t => 1, n => 1, s => "x" });
            let err = err.expect_err(src);
            assert!(
                err.to_string().contains("unknown keyword argument"),
                "{src}: {err}"
            );
        }
        // Keywords alone, keywords after positional arguments, and too many of those.
        assert_eq!(
            render(
                "{{ n|number(locale='de') }}|{{ t|datetime('%H', 'Europe/Berlin') }}|{{ ['b', 'A']|sort(reverse=true)|join }}|{{ ['b', 'a']|sort|join }}",
                ctx
            ),
            "1.234,5|01|bA|ab"
        );
        for src in [
            "{{ t|datetime('%H', 'UTC', 'x') }}",
            "{{ n|number(1, 2) }}",
            "{{ s|truncate(1, true, '', 4) }}",
            "{{ ['a']|sort(1) }}",
        ] {
            let err = env().render_str(src, context! { t => 1, n => 1, s => "x" });
            let err = err.expect_err(src);
            assert_eq!(err.kind(), ErrorKind::TooManyArguments, "{src}: {err}");
        }
        let err = env()
            .render_str("{{ n|number('two') }}", context! { n => 1 })
            .expect_err("a text as decimals");
        assert_eq!(err.kind(), ErrorKind::InvalidOperation, "{err}");
    }

    #[test]
    fn fast_datetime_formatting_matches_chrono() {
        let formats = [
            "%Y-%m-%d %H:%M",
            "%b %-d, %Y %H:%M %Z",
            "%b %-d, %Y",
            "%A %e %B %Y, %I:%M:%S %p %P",
            "%a %_m/%_d %-H:%-M:%-S %y %j %z %3f",
            "%d.%m.%Y %H:%M",
            "100%% %Z",
        ];
        let zones = [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ];
        let moments = [
            0_i64,
            951_782_400,
            1_767_225_600,
            1_711_846_800,
            1_730_000_000,
            -86_400 * 365 * 1000,
            253_402_300_799 + 86_400,
        ];
        for fmt in formats {
            let items = parsed_format(fmt).unwrap();
            for zone in zones {
                let tz = Tz::from_str(zone).unwrap();
                for secs in moments {
                    let t = DateTime::from_timestamp(secs, 0)
                        .unwrap()
                        .with_timezone(&tz);
                    let want = t.format_with_items(items.iter()).to_string();
                    let mut got = String::new();
                    if format_fast(&mut got, &t.naive_local(), &t, &items) {
                        assert_eq!(got, want, "{fmt} {zone} {secs}");
                    }
                }
            }
        }
        // The notification formats never fall back.
        let t = DateTime::from_timestamp(1_767_225_600, 0)
            .unwrap()
            .with_timezone(&Tz::Europe__Berlin);
        for fmt in ["%b %-d, %Y %H:%M %Z", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M"] {
            assert!(
                format_fast(
                    &mut String::new(),
                    &t.naive_local(),
                    &t,
                    &parsed_format(fmt).unwrap()
                ),
                "{fmt}"
            );
        }
    }

    #[test]
    fn sort_shortcut_agrees_with_minijinja() {
        let lists: [&[&str]; 7] = [
            &[],
            &["remote", "urgent"],
            &["urgent", "remote"],
            &["a", "a", "b"],
            &["b", "A", "a"],
            &["Zed", "alpha"],
            &["éclair", "eclair", "zoo"],
        ];
        let mut plain = Environment::new();
        plain.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for list in lists {
            for src in [
                "{{ v|sort }}",
                "{{ v|sort(reverse=true) }}",
                "{{ v|sort|join(',') }}",
            ] {
                let ctx = context! { v => list };
                assert_eq!(
                    render(src, ctx.clone()),
                    plain.render_str(src, ctx).unwrap(),
                    "{src} {list:?}"
                );
            }
        }
        assert_eq!(render("{{ [3, 1, 2]|sort }}", context! {}), "[1, 2, 3]");
        assert!(is_sorted_lower_ascii(&Value::from(vec!["a", "b"])));
        assert!(!is_sorted_lower_ascii(&Value::from(vec!["b", "a"])));
        assert!(!is_sorted_lower_ascii(&Value::from(vec!["A", "b"])));
    }
}
