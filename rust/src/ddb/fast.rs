//! A hand-written parser for the common shape of one stream record.
//!
//! Why not serde: through the serde visitors in [`super::json`] every
//! `{"S": "x"}` goes through `deserialize_any`, a key seed, a value seed and an
//! end-of-map check; perf put that parse at about 1.7 us per 1.3 KB record.
//! This parser knows the shape (a type tag, then its value) and reads it in one
//! linear pass: about 1.1 us (`decode_stream_event` as a whole went from 4.2 to
//! 3.2 us per record together with inline strings; `benches/test_decode.py`).
//!
//! It never decides an error: on anything it does not handle, or anything
//! invalid, it gives up (`None`) and the caller decodes the record with the
//! serde reference path, which reports the exact error. When it succeeds, the
//! result equals the reference's (`tests` here and `rust/tests/ddb_fuzz.rs`
//! check that on valid, odd and mutated input).
use std::borrow::Cow;
use std::ops::Range;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet};

use super::event::{Partial, PartialDdb, RecordData};
use super::json::{decode_base64, Tag, MAX_DEPTH};
use super::kinesis::Outer;
use super::number;
use super::topy::{gc_untrack_dict, ToPy};
use super::value::{dedup_last_wins, AttrValue, Map, Number, Str};
use crate::swar;

/// What [`record`] builds of a record's `Keys` and images. Whatever is not
/// built is still validated by the same grammar, so every mode accepts the
/// same records (and gives up on the same ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// `Keys` and both images as trees.
    Trees,
    /// `Keys` as a tree; the images only as their spans in `text` (built
    /// later by [`image_tree`] or [`image_py`], which cannot fail on them).
    Spans,
    /// What rendering reads: the image a template sees (`NewImage`, else
    /// `OldImage`) as a tree. `Keys` come out empty, and an `OldImage` after a
    /// `NewImage` is not built (no span either).
    Render,
}

/// Parse one record starting at `pos` of `text` (no leading whitespace):
/// its fields and the offset just after it, or `None` to use the reference path.
pub(crate) fn record(text: &str, pos: usize, want: Want) -> Option<(RecordData, usize)> {
    record_with(text, pos, want, None)
}

/// [`record`] with `sequence` in place of `dynamodb.SequenceNumber` (a change
/// record read from Kinesis has none: see `Partial::finish_with`).
pub(crate) fn record_with(
    text: &str,
    pos: usize,
    want: Want,
    sequence: Option<String>,
) -> Option<(RecordData, usize)> {
    if want == Want::Spans {
        let mut parser = RecordParser::new(text, pos, Skim);
        parser.sequence = sequence;
        let (data, _, end) = parser.run()?;
        return Some((data, end));
    }
    let mut parser = RecordParser::new(text, pos, Tree::default());
    parser.sequence = sequence;
    parser.lean = want == Want::Render;
    let (mut data, [new, old], end) = parser.run()?;
    data.new_image = new.and_then(into_map);
    data.old_image = old.and_then(into_map);
    data.new_image_span = None;
    data.old_image_span = None;
    Some((data, end))
}

/// A record, its two images (new, old) as built, and the offset after it.
type Built<V> = (RecordData, [Option<V>; 2], usize);

/// [`record`] with the images built straight into Python dicts, in the same
/// pass (the record keeps their spans, for a tree built on demand).
pub(crate) fn record_py<'py>(
    text: &str,
    pos: usize,
    out: &mut ToPy<'py, '_>,
) -> Option<Built<Bound<'py, PyDict>>> {
    record_py_with(text, pos, out, None)
}

/// [`record_py`] with `sequence` in place of `dynamodb.SequenceNumber`.
pub(crate) fn record_py_with<'py>(
    text: &str,
    pos: usize,
    out: &mut ToPy<'py, '_>,
    sequence: Option<String>,
) -> Option<Built<Bound<'py, PyDict>>> {
    let mut parser = RecordParser::new(text, pos, PyBuild::new(out));
    parser.sequence = sequence;
    let (data, [new, old], end) = parser.run()?;
    let dict = |v: Option<Bound<'py, PyAny>>| v.and_then(|d| d.downcast_into::<PyDict>().ok());
    Some((data, [dict(new), dict(old)], end))
}

/// The envelope of a Kinesis event (`{"Records": [...]}`) in one pass: each
/// record's span and envelope fields, `data` borrowed from `text`. `None` for
/// anything unusual (a field of another type, a duplicate field, bad JSON):
/// the serde path then decides, with the exact per-record errors.
pub(crate) fn kinesis_envelope(text: &str) -> Option<Vec<(Range<usize>, Outer<'_>)>> {
    let mut p = Parser::at(text, 0);
    let mut out = None;
    if p.open(b'{', b'}')? {
        return None; // no Records
    }
    loop {
        let key = p.string()?;
        p.eat(b':')?;
        if key == "Records" {
            if out.is_some() {
                return None;
            }
            out = Some(kinesis_records(&mut p)?);
        } else {
            p.skip_value()?;
        }
        if !p.next_member(b'}')? {
            break;
        }
    }
    p.ws();
    (p.pos == p.bytes.len()).then_some(())?;
    out
}

fn kinesis_records<'a>(p: &mut Parser<'a>) -> Option<Vec<(Range<usize>, Outer<'a>)>> {
    let mut out = Vec::new();
    if p.open(b'[', b']')? {
        return Some(out);
    }
    loop {
        p.ws();
        let start = p.pos;
        let outer = kinesis_record(p)?;
        out.push((start..p.pos, outer));
        if !p.next_member(b']')? {
            return Some(out);
        }
    }
}

/// One Kinesis record object: its envelope fields (`kinesis` required).
fn kinesis_record<'a>(p: &mut Parser<'a>) -> Option<Outer<'a>> {
    let mut o = Outer::default();
    let (mut kinesis, mut arn, mut region) = (false, false, false);
    if p.open(b'{', b'}')? {
        return None;
    }
    loop {
        let key = p.string()?;
        p.eat(b':')?;
        match key.as_ref() {
            "kinesis" if !kinesis => {
                kinesis = true;
                kinesis_fields(p, &mut o)?;
            }
            "eventSourceARN" if !arn => {
                arn = true;
                o.event_source_arn = p.opt_string()?;
            }
            "awsRegion" if !region => {
                region = true;
                o.aws_region = p.opt_string()?;
            }
            "kinesis" | "eventSourceARN" | "awsRegion" => return None, // duplicate
            _ => p.skip_value()?,
        }
        if !p.next_member(b'}')? {
            break;
        }
    }
    kinesis.then_some(o)
}

fn kinesis_fields<'a>(p: &mut Parser<'a>, o: &mut Outer<'a>) -> Option<()> {
    let (mut seq, mut data) = (false, false);
    if p.open(b'{', b'}')? {
        return Some(());
    }
    loop {
        let key = p.string()?;
        p.eat(b':')?;
        match key.as_ref() {
            "sequenceNumber" if !seq => {
                seq = true;
                o.sequence_number = p.opt_string()?;
            }
            "data" if !data => {
                data = true;
                o.data = if p.null() {
                    None
                } else {
                    Some(Cow::Borrowed(p.unchecked_string()?))
                };
            }
            "sequenceNumber" | "data" => return None, // duplicate
            _ => p.skip_value()?,
        }
        if !p.next_member(b'}')? {
            return Some(());
        }
    }
}

/// Build the tree of an image span that [`record`] validated.
pub(crate) fn image_tree(text: &str) -> Option<Map> {
    into_map(whole_map(text, &mut Tree::default())?)
}

/// Build the Python dict of an image span that [`record`] validated.
pub(crate) fn image_py<'py>(text: &str, out: &mut ToPy<'py, '_>) -> Option<Bound<'py, PyDict>> {
    whole_map(text, &mut PyBuild::new(out))?
        .downcast_into::<PyDict>()
        .ok()
}

/// `text` as one map (surrounding whitespace allowed), built by `b`.
fn whole_map<'a, B: Build<'a>>(text: &'a str, b: &mut B) -> Option<B::V> {
    let mut p = Parser::at(text, 0);
    let v = p.map(b, 0)?;
    p.ws();
    (p.pos == p.bytes.len()).then_some(v)
}

/// The map of a tree value built by `map`.
fn into_map(v: AttrValue) -> Option<Map> {
    match v {
        AttrValue::M(m) => Some(m),
        _ => None,
    }
}

/// Offset of the first byte of `b` that ends a plain run of string content:
/// `"`, `\\` or a control character (< 0x20), or `None` if there is none.
///
/// Eight bytes at a time (SWAR): under callgrind, `memchr2` plus a second pass
/// for control characters cost ~360 instructions per string of an image,
/// mostly call set-up, as most strings are short.
fn string_stop(b: &[u8]) -> Option<usize> {
    let (i, hits) = swar::scan(b, |w| {
        swar::zero_bytes(w ^ swar::splat(b'"'))
            | swar::zero_bytes(w ^ swar::splat(b'\\'))
            | swar::bytes_below(w, 0x20)
    });
    if hits != 0 {
        return Some(i + swar::first(hits));
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

/// The lexer and the AttributeValue grammar (generic over what it builds).
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// The record envelope, with `Keys` built as a tree and the images by `I`.
struct RecordParser<'a, I: Build<'a>> {
    lex: Parser<'a>,
    tree: Tree,
    images: I,
    /// The images `I` built: NewImage, OldImage.
    built: [Option<I::V>; 2],
    /// [`Want::Render`]: skim `Keys`, and `OldImage` once `NewImage` is built.
    lean: bool,
    /// Stands for `dynamodb.SequenceNumber` (Kinesis: see `Partial::finish_with`).
    sequence: Option<String>,
}

impl<'a> Parser<'a> {
    fn at(text: &'a str, pos: usize) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Skip whitespace, then consume `b`.
    fn eat(&mut self, b: u8) -> Option<()> {
        self.ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    /// After a member: `,` (true, more follow) or `close` (false).
    fn next_member(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Some(true)
            }
            b if b == close => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Open a container: true when it is empty (and already closed).
    fn open(&mut self, open: u8, close: u8) -> Option<bool> {
        self.eat(open)?;
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Some(true);
        }
        Some(false)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end)? == word {
            self.pos = end;
            Some(())
        } else {
            None
        }
    }

    /// A JSON string (after whitespace), borrowed when it has no escapes.
    #[inline(always)]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = self.bytes.get(start..)?;
        let end = string_stop(rest)?;
        self.pos = start + end;
        match rest.get(end)? {
            b'"' => {
                let s = self.text.get(start..self.pos)?;
                self.pos += 1;
                Some(Cow::Borrowed(s))
            }
            b'\\' => self.escaped(start).map(Cow::Owned),
            _ => None, // a raw control character: invalid JSON
        }
    }

    /// A string's text up to the next quote, found by `memchr` (SIMD), NOT
    /// checked for escapes or control characters: for long values that should
    /// hold neither (Kinesis' base64 `data`), whose reader checks them, cheaply
    /// once it has decoded them (`kinesis::plain_json_text`).
    fn unchecked_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = start + memchr::memchr(b'"', self.bytes.get(start..)?)?;
        self.pos = end + 1;
        self.text.get(start..end)
    }

    /// The rest of a string from its first backslash (at `self.pos`).
    #[cold]
    #[inline(never)]
    fn escaped(&mut self, start: usize) -> Option<String> {
        let mut out = String::from(self.text.get(start..self.pos)?);
        loop {
            let run = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.text.get(run..self.pos)?);
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    let e = *self.bytes.get(self.pos + 1)?;
                    self.pos += 2;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    });
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.pos..self.pos + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.pos += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// `\uXXXX` (after the `u`), with a surrogate pair as one char; a lone
    /// surrogate is left to the reference path (which rejects it).
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
                return None;
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        char::from_u32(hi)
    }

    /// An `N` string, validated against DynamoDB's number rules.
    fn number<B: Build<'a>>(&mut self, b: &mut B) -> Option<B::V> {
        let t = self.string()?;
        if !number::is_plain_integer(&t) {
            number::parse(&t).ok()?;
        }
        b.n(t)
    }

    fn binary<B: Build<'a>>(&mut self, b: &mut B) -> Option<B::V> {
        b.b(decode_base64(&self.string()?).ok()?)
    }

    fn str_value<B: Build<'a>>(&mut self, b: &mut B) -> Option<B::V> {
        let s = self.string()?;
        b.s(s)
    }

    /// `null` (consumed: true) or something else (untouched: false).
    fn null(&mut self) -> bool {
        self.ws();
        self.literal(b"null").is_some()
    }

    /// A type tag: a short plain string (an escaped one goes to the reference path).
    fn tag(&mut self) -> Option<Tag> {
        self.eat(b'"')?;
        let start = self.pos;
        let len = self
            .bytes
            .get(start..)?
            .iter()
            .take(5)
            .position(|&b| b == b'"')?;
        self.pos += len + 1;
        Tag::from_bytes(self.bytes.get(start..start + len)?)
    }

    /// A type tag and the colon after it. The one-letter tags of compact JSON
    /// (`"S":`, most of them) are read as one 4-byte pattern; the others, and
    /// any whitespace, take [`Self::tag`].
    fn tag_colon(&mut self) -> Option<Tag> {
        if let Some(&[b'"', t, b'"', b':']) = self.bytes.get(self.pos..self.pos + 4) {
            if let Some(tag) = Tag::from_bytes(&[t]) {
                self.pos += 4;
                return Some(tag);
            }
        }
        let tag = self.tag()?;
        self.eat(b':')?;
        Some(tag)
    }

    /// One AttributeValue object; `depth` = enclosing L/M levels.
    fn value<B: Build<'a>>(&mut self, b: &mut B, depth: u32) -> Option<B::V> {
        self.eat(b'{')?;
        let tag = self.tag_colon()?;
        if matches!(tag, Tag::L | Tag::M) && depth >= MAX_DEPTH {
            return None;
        }
        let v = match tag {
            Tag::S => self.str_value(b)?,
            Tag::N => self.number(b)?,
            Tag::B => self.binary(b)?,
            Tag::Bool => {
                self.ws();
                if self.literal(b"true").is_some() {
                    b.boolean(true)?
                } else {
                    self.literal(b"false")?;
                    b.boolean(false)?
                }
            }
            Tag::Null => {
                self.ws();
                self.literal(b"true")?;
                b.null()?
            }
            Tag::L => self.list(b, depth + 1)?,
            Tag::M => self.map(b, depth + 1)?,
            Tag::SS => self.members(b, tag, Self::str_value)?,
            Tag::NS => self.members(b, tag, Self::number)?,
            Tag::BS => self.members(b, tag, Self::binary)?,
        };
        // A second tag (an error, or a repeated tag) is the reference path's to settle.
        self.eat(b'}')?;
        Some(v)
    }

    fn list<B: Build<'a>>(&mut self, b: &mut B, depth: u32) -> Option<B::V> {
        self.sequence(b, |p, b| p.value(b, depth), |b, mark| b.end_list(mark))
    }

    /// A JSON list whose members `read` reads; `end` builds the container.
    fn sequence<B: Build<'a>>(
        &mut self,
        b: &mut B,
        mut read: impl FnMut(&mut Self, &mut B) -> Option<B::V>,
        end: impl FnOnce(&mut B, usize) -> Option<B::V>,
    ) -> Option<B::V> {
        let mark = b.begin_list();
        if self.sequence_members(b, &mut read).is_none() {
            b.abort_list(mark);
            return None;
        }
        end(b, mark)
    }

    fn sequence_members<B: Build<'a>>(
        &mut self,
        b: &mut B,
        read: &mut impl FnMut(&mut Self, &mut B) -> Option<B::V>,
    ) -> Option<()> {
        if self.open(b'[', b']')? {
            return Some(());
        }
        loop {
            let v = read(self, b)?;
            b.push_item(v);
            if !self.next_member(b']')? {
                return Some(());
            }
        }
    }

    /// An `M` value or a whole image.
    fn map<B: Build<'a>>(&mut self, b: &mut B, depth: u32) -> Option<B::V> {
        let mark = b.begin_map()?;
        match self.open(b'{', b'}') {
            Some(true) => return b.end_map(mark),
            Some(false) => {}
            None => {
                b.abort_map(mark);
                return None;
            }
        }
        if self.map_members(b, depth).is_none() {
            b.abort_map(mark);
            return None;
        }
        b.end_map(mark)
    }

    fn map_members<B: Build<'a>>(&mut self, b: &mut B, depth: u32) -> Option<()> {
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let v = self.value(b, depth)?;
            b.push_entry(key, v)?;
            if !self.next_member(b'}')? {
                return Some(());
            }
        }
    }

    /// The members of a set: a JSON list read with `read`.
    fn members<B: Build<'a>>(
        &mut self,
        b: &mut B,
        tag: Tag,
        read: fn(&mut Self, &mut B) -> Option<B::V>,
    ) -> Option<B::V> {
        self.sequence(b, read, |b, mark| b.end_set(tag, mark))
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.string()?.into_owned()))
    }

    /// A JSON number's text (after whitespace), checked against the JSON grammar.
    fn number_text(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.some_digits()?;
        }
        self.text.get(start..self.pos)
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }

    /// `Option<u64>` as serde reads it: a non-negative JSON integer or `null`.
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        let t = self.number_text()?;
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok().map(Some)
    }

    /// `Option<f64>`: the number's text (checked against the JSON grammar here)
    /// read by serde_json itself, so the value is bit for bit the reference's.
    fn opt_f64(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        serde_json::from_str::<f64>(self.number_text()?)
            .ok()
            .map(Some)
    }

    /// Skip any JSON value: scalars here, objects and arrays by serde (rare:
    /// the fields of a Kinesis record envelope that are not read are scalars).
    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'-' | b'0'..=b'9' => self.number_text().map(drop),
            _ => {
                let rest = self.text.get(self.pos..)?;
                let mut values =
                    serde_json::Deserializer::from_str(rest).into_iter::<serde::de::IgnoredAny>();
                values.next()?.ok()?;
                self.pos += values.byte_offset();
                Some(())
            }
        }
    }

    /// Skip a field we do not read: strings here, anything else to the reference path.
    fn skip(&mut self) -> Option<()> {
        if self.null() {
            return Some(());
        }
        self.string().map(drop)
    }
}

impl<'a, I: Build<'a>> RecordParser<'a, I> {
    fn new(text: &'a str, pos: usize, images: I) -> Self {
        RecordParser {
            lex: Parser::at(text, pos),
            tree: Tree::default(),
            images,
            built: [None, None],
            lean: false,
            sequence: None,
        }
    }

    fn opt_map(&mut self) -> Option<Option<Map>> {
        if self.lex.null() {
            return Some(None);
        }
        if self.lean {
            self.lex.map(&mut Skim, 0)?;
            return Some(Some(Map::new()));
        }
        into_map(self.lex.map(&mut self.tree, 0)?).map(Some)
    }

    /// Image `which` (0 new, 1 old), built by `I`: its span (None for null).
    fn opt_image(&mut self, which: usize) -> Option<Option<Range<usize>>> {
        if self.lex.null() {
            *self.built.get_mut(which)? = None;
            return Some(None);
        }
        if self.lean && which == 1 && self.built[0].is_some() {
            self.lex.map(&mut Skim, 0)?;
            return Some(None);
        }
        self.lex.ws();
        let start = self.lex.pos;
        let v = self.lex.map(&mut self.images, 0)?;
        *self.built.get_mut(which)? = Some(v);
        Some(Some(start..self.lex.pos))
    }

    /// A JSON object whose members `field` reads, given each member's name.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        if self.lex.open(b'{', b'}')? {
            return Some(());
        }
        loop {
            let name = self.lex.string()?;
            self.lex.eat(b':')?;
            field(self, &name)?;
            if !self.lex.next_member(b'}')? {
                return Some(());
            }
        }
    }

    fn record(&mut self) -> Option<Partial> {
        let mut p = Partial::default();
        self.object(|this, name| {
            match name {
                "eventID" => p.event_id = this.lex.opt_string()?,
                "eventName" => p.event_name = this.lex.opt_string()?,
                "awsRegion" => p.aws_region = this.lex.opt_string()?,
                "eventSourceARN" => p.event_source_arn = this.lex.opt_string()?,
                "dynamodb" => {
                    p.dynamodb = if this.lex.null() {
                        None
                    } else {
                        Some(this.ddb()?)
                    }
                }
                _ => this.lex.skip()?,
            }
            Some(())
        })?;
        Some(p)
    }

    fn ddb(&mut self) -> Option<PartialDdb> {
        let mut d = PartialDdb::default();
        self.object(|this, name| {
            match name {
                "SequenceNumber" => d.sequence_number = this.lex.opt_string()?,
                "StreamViewType" => d.stream_view_type = this.lex.opt_string()?,
                "Keys" => d.keys = this.opt_map()?,
                "NewImage" => d.new_image_span = this.opt_image(0)?,
                "OldImage" => d.old_image_span = this.opt_image(1)?,
                "ApproximateCreationDateTime" => {
                    d.approximate_creation_time = this.lex.opt_f64()?
                }
                "SizeBytes" => d.size_bytes = this.lex.opt_u64()?,
                _ => this.lex.skip()?,
            }
            Some(())
        })?;
        Some(d)
    }

    /// Parse the record; its data (`finish`ed) and the images `I` built.
    fn run(mut self) -> Option<Built<I::V>> {
        let rec = self.record()?;
        let data = rec.finish_with(self.sequence.take()).ok()?;
        Some((data, self.built, self.lex.pos))
    }
}

/// What the value grammar builds: a tree ([`Tree`]), nothing ([`Skim`]:
/// validation only) or Python objects ([`PyBuild`]). One grammar for all
/// three, so a span that skimming accepted builds the same way later.
/// Containers: `begin_*` gives a mark, members are pushed, `end_*` builds
/// from the members after the mark; `abort_*` drops them.
trait Build<'a> {
    type V;
    fn s(&mut self, s: Cow<'a, str>) -> Option<Self::V>;
    /// A validated number text.
    fn n(&mut self, text: Cow<'a, str>) -> Option<Self::V>;
    fn b(&mut self, bytes: Vec<u8>) -> Option<Self::V>;
    fn boolean(&mut self, v: bool) -> Option<Self::V>;
    fn null(&mut self) -> Option<Self::V>;
    fn begin_list(&mut self) -> usize;
    fn push_item(&mut self, v: Self::V);
    fn abort_list(&mut self, mark: usize);
    fn end_list(&mut self, mark: usize) -> Option<Self::V>;
    /// The members are values `s`/`n`/`b` built for `tag`'s kind.
    fn end_set(&mut self, tag: Tag, mark: usize) -> Option<Self::V>;
    fn begin_map(&mut self) -> Option<usize>;
    fn push_entry(&mut self, k: Cow<'a, str>, v: Self::V) -> Option<()>;
    fn abort_map(&mut self, mark: usize);
    fn end_map(&mut self, mark: usize) -> Option<Self::V>;
}

/// Builds [`AttrValue`]s. Scratch stacks: a container's members are pushed
/// here, then moved into one exactly sized allocation.
#[derive(Default)]
struct Tree {
    entries: Vec<(Str, AttrValue)>,
    items: Vec<AttrValue>,
}

fn to_str(s: Cow<'_, str>) -> Str {
    match s {
        Cow::Borrowed(s) => Str::new(s),
        Cow::Owned(s) => Str::from(s),
    }
}

impl<'a> Build<'a> for Tree {
    type V = AttrValue;
    fn s(&mut self, s: Cow<'a, str>) -> Option<AttrValue> {
        Some(AttrValue::S(to_str(s)))
    }
    fn n(&mut self, text: Cow<'a, str>) -> Option<AttrValue> {
        Some(AttrValue::N(Number(to_str(text))))
    }
    fn b(&mut self, bytes: Vec<u8>) -> Option<AttrValue> {
        Some(AttrValue::B(bytes))
    }
    fn boolean(&mut self, v: bool) -> Option<AttrValue> {
        Some(AttrValue::Bool(v))
    }
    fn null(&mut self) -> Option<AttrValue> {
        Some(AttrValue::Null)
    }
    fn begin_list(&mut self) -> usize {
        self.items.len()
    }
    fn push_item(&mut self, v: AttrValue) {
        self.items.push(v);
    }
    fn abort_list(&mut self, mark: usize) {
        self.items.truncate(mark);
    }
    fn end_list(&mut self, mark: usize) -> Option<AttrValue> {
        Some(AttrValue::L(self.items.drain(mark..).collect()))
    }
    fn end_set(&mut self, tag: Tag, mark: usize) -> Option<AttrValue> {
        /// The members as `T`s (each was built by `s`/`n`/`b` for this set's kind).
        fn members<T>(
            items: std::vec::Drain<'_, AttrValue>,
            of: fn(AttrValue) -> Option<T>,
        ) -> Option<Vec<T>> {
            items.map(of).collect()
        }
        let items = self.items.drain(mark..);
        Some(match tag {
            Tag::SS => AttrValue::SS(members(items, |v| match v {
                AttrValue::S(s) => Some(s),
                _ => None,
            })?),
            Tag::NS => AttrValue::NS(members(items, |v| match v {
                AttrValue::N(n) => Some(n),
                _ => None,
            })?),
            _ => AttrValue::BS(members(items, |v| match v {
                AttrValue::B(b) => Some(b),
                _ => None,
            })?),
        })
    }
    fn begin_map(&mut self) -> Option<usize> {
        Some(self.entries.len())
    }
    fn push_entry(&mut self, k: Cow<'a, str>, v: AttrValue) -> Option<()> {
        self.entries.push((to_str(k), v));
        Some(())
    }
    fn abort_map(&mut self, mark: usize) {
        self.entries.truncate(mark);
    }
    fn end_map(&mut self, mark: usize) -> Option<AttrValue> {
        let mut map: Map = self.entries.drain(mark..).collect();
        dedup_last_wins(&mut map);
        Some(AttrValue::M(map))
    }
}

/// Validates only.
struct Skim;

impl<'a> Build<'a> for Skim {
    type V = ();
    fn s(&mut self, _: Cow<'a, str>) -> Option<()> {
        Some(())
    }
    fn n(&mut self, _: Cow<'a, str>) -> Option<()> {
        Some(())
    }
    fn b(&mut self, _: Vec<u8>) -> Option<()> {
        Some(())
    }
    fn boolean(&mut self, _: bool) -> Option<()> {
        Some(())
    }
    fn null(&mut self) -> Option<()> {
        Some(())
    }
    fn begin_list(&mut self) -> usize {
        0
    }
    fn push_item(&mut self, _: ()) {}
    fn abort_list(&mut self, _: usize) {}
    fn end_list(&mut self, _: usize) -> Option<()> {
        Some(())
    }
    fn end_set(&mut self, _: Tag, _: usize) -> Option<()> {
        Some(())
    }
    fn begin_map(&mut self) -> Option<usize> {
        Some(0)
    }
    fn push_entry(&mut self, _: Cow<'a, str>, _: ()) -> Option<()> {
        Some(())
    }
    fn abort_map(&mut self, _: usize) {}
    fn end_map(&mut self, _: usize) -> Option<()> {
        Some(())
    }
}

/// Builds Python objects, as [`ToPy`] does from a tree (same caches; the GC
/// tracks a dict only when it holds a container, see `gc_untrack_dict`).
/// A Python error gives `None`; the caller then builds through the tree.
struct PyBuild<'t, 'py, 'k> {
    out: &'t mut ToPy<'py, 'k>,
    items: Vec<Bound<'py, PyAny>>,
    /// Open dicts, innermost last, each with "no container put in yet".
    dicts: Vec<(Bound<'py, PyDict>, bool)>,
}

impl<'t, 'py, 'k> PyBuild<'t, 'py, 'k> {
    fn new(out: &'t mut ToPy<'py, 'k>) -> Self {
        PyBuild {
            out,
            items: Vec::new(),
            dicts: Vec::new(),
        }
    }
}

/// True for what [`PyBuild`] makes of L, M and the sets: an exact list, dict or
/// set (a type pointer compare).
fn is_container(v: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `v` is live; only its type pointer is read and compared.
    let ty = unsafe { ffi::Py_TYPE(v.as_ptr()) };
    ty == std::ptr::addr_of_mut!(ffi::PyList_Type)
        || ty == std::ptr::addr_of_mut!(ffi::PyDict_Type)
        || ty == std::ptr::addr_of_mut!(ffi::PySet_Type)
}

impl<'a, 'py> Build<'a> for PyBuild<'_, 'py, '_> {
    type V = Bound<'py, PyAny>;
    fn s(&mut self, s: Cow<'a, str>) -> Option<Self::V> {
        Some(self.out.str(&s).into_any())
    }
    fn n(&mut self, text: Cow<'a, str>) -> Option<Self::V> {
        self.out.number_text(&text).ok()
    }
    fn b(&mut self, bytes: Vec<u8>) -> Option<Self::V> {
        Some(PyBytes::new(self.out.py(), &bytes).into_any())
    }
    fn boolean(&mut self, v: bool) -> Option<Self::V> {
        Some(
            pyo3::types::PyBool::new(self.out.py(), v)
                .to_owned()
                .into_any(),
        )
    }
    fn null(&mut self) -> Option<Self::V> {
        Some(self.out.py().None().into_bound(self.out.py()))
    }
    fn begin_list(&mut self) -> usize {
        self.items.len()
    }
    fn push_item(&mut self, v: Self::V) {
        self.items.push(v);
    }
    fn abort_list(&mut self, mark: usize) {
        self.items.truncate(mark);
    }
    fn end_list(&mut self, mark: usize) -> Option<Self::V> {
        let list = PyList::new(self.out.py(), self.items.drain(mark..)).ok()?;
        Some(list.into_any())
    }
    fn end_set(&mut self, _: Tag, mark: usize) -> Option<Self::V> {
        let set = PySet::new(self.out.py(), self.items.drain(mark..)).ok()?;
        Some(set.into_any())
    }
    fn begin_map(&mut self) -> Option<usize> {
        self.dicts.push((PyDict::new(self.out.py()), true));
        Some(self.dicts.len() - 1)
    }
    fn push_entry(&mut self, k: Cow<'a, str>, v: Self::V) -> Option<()> {
        let key = self.out.key(&k);
        let (dict, atomic) = self.dicts.last_mut()?;
        *atomic = *atomic && !is_container(&v);
        dict.set_item(key, v).ok()
    }
    fn abort_map(&mut self, mark: usize) {
        self.dicts.truncate(mark);
    }
    fn end_map(&mut self, mark: usize) -> Option<Self::V> {
        let (dict, atomic) = self.dicts.pop()?;
        debug_assert_eq!(self.dicts.len(), mark);
        if atomic {
            gc_untrack_dict(&dict);
        }
        Some(dict.into_any())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn string_stop_finds_the_first_quote_backslash_or_control_byte() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let alphabet: &[u8] = b"a\"\\\x00\x1f\x20\x7f\x80\xff!#[]";
        // every string of up to 3 alphabet bytes at every offset in 20 bytes of filler
        for len in 0..=3usize {
            let mut idx = vec![0usize; len];
            loop {
                for at in 0..20usize {
                    let mut b = vec![b'x'; 20];
                    for (k, &j) in idx.iter().enumerate() {
                        if let Some(slot) = b.get_mut(at + k) {
                            *slot = alphabet[j];
                        }
                    }
                    assert_eq!(string_stop(&b), naive(&b), "{b:?}");
                }
                let mut k = 0;
                while k < len {
                    idx[k] += 1;
                    if idx[k] < alphabet.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
        assert_eq!(string_stop(b""), None);
    }

    use super::*;
    use crate::ddb::event::decode_record_json;
    use crate::ddb::event::tests::nested_lists;

    /// The one-pass tree parse, checked against skimming and the render
    /// mode: all accept the same records, a skimmed image's span builds the
    /// tree's image, and the render mode builds the image a template sees.
    fn fast(text: &str) -> Option<RecordData> {
        let tree = record(text, 0, Want::Trees);
        let skim = record(text, 0, Want::Spans);
        let lean = record(text, 0, Want::Render);
        assert_eq!(
            tree.is_some(),
            skim.is_some(),
            "skim and tree disagree on {text}"
        );
        assert_eq!(
            tree.is_some(),
            lean.is_some(),
            "render and tree disagree on {text}"
        );
        if let (Some((t, t_end)), Some((r, r_end))) = (&tree, &lean) {
            assert_eq!(t_end, r_end);
            assert_eq!(
                t.new_image.as_ref().or(t.old_image.as_ref()),
                r.new_image.as_ref().or(r.old_image.as_ref())
            );
            assert!(r.keys.is_empty());
            assert_eq!(
                (&t.event_id, &t.event_name, &t.sequence_number),
                (&r.event_id, &r.event_name, &r.sequence_number)
            );
        }
        if let (Some((t, t_end)), Some((s, s_end))) = (&tree, &skim) {
            assert_eq!(t_end, s_end);
            let built = |span: &Option<Range<usize>>| {
                span.as_ref()
                    .map(|r| image_tree(&text[r.clone()]).expect("a skimmed image builds"))
            };
            assert_eq!(t.new_image, built(&s.new_image_span));
            assert_eq!(t.old_image, built(&s.old_image_span));
            assert_eq!(t.keys, s.keys);
        }
        let (rec, end) = tree?;
        (end == text.len()).then_some(rec)
    }

    const RECORD: &str = r#"{"eventID":"1","eventName":"INSERT","eventVersion":"1.0",
        "eventSource":"aws:dynamodb","awsRegion":"us-west-2",
        "dynamodb":{"ApproximateCreationDateTime":1767225600,"Keys":{"Id":{"N":"101"}},
          "NewImage":{"Message":{"S":"New item!"},"Id":{"N":"101"},"b":{"B":"AAE="},
            "t":{"BOOL":true},"f":{"BOOL":false},"z":{"NULL":true},
            "l":{"L":[{"S":"a"},{"M":{"x":{"NS":["1","2.50"]}}},{"L":[]}]},
            "ss":{"SS":["b","a"]},"bs":{"BS":["AA==","AQ=="]},"m":{"M":{}},
            "esc":{"S":"tab\tquote\"slash\/e\u00e9 pair\ud83d\ude00 \\"},"u":{"S":"ü"}},
          "SequenceNumber":"111","SizeBytes":26,"StreamViewType":"NEW_AND_OLD_IMAGES"},
        "eventSourceARN":"stream-ARN"}"#;

    #[test]
    fn equals_the_reference_on_a_full_record() {
        // GIVEN a record using every type tag, escapes and whitespace
        // WHEN parsed both ways THEN the results are identical
        let ours = fast(RECORD).expect("the fast path handles it");
        assert_eq!(Ok(ours), decode_record_json(RECORD));
        // AND a fractional creation time (moto sends them) stays on the fast path
        let frac = RECORD.replace("1767225600", "1767225600.123456");
        let ours = fast(&frac).expect("the fast path handles it");
        assert_eq!(ours.approximate_creation_time, Some(1_767_225_600.123_456));
        assert_eq!(Ok(ours), decode_record_json(&frac));
    }

    #[test]
    fn equals_the_reference_on_odd_but_valid_input() {
        for text in [
            RECORD.replace(
                r#""Id":{"N":"101"},"b""#,
                r#""Id":{"N":"101"},"Id":{"N":"7"},"b""#,
            ),
            RECORD.replace(
                r#""StreamViewType":"NEW_AND_OLD_IMAGES""#,
                r#""StreamViewType":null"#,
            ),
            RECORD.replace(r#""awsRegion":"us-west-2""#, r#""awsRegion":null"#),
            RECORD.replace(r#""eventID":"1""#, r#""eventID":"0","eventID":"1""#),
            RECORD.replace("1767225600", "18446744073709551615"),
            RECORD.replace("1767225600", "1767225600.123456"),
            RECORD.replace("1767225600", "-1.5e3"),
            RECORD.replace("1767225600", "123456789012345678901234567890"),
            RECORD.replace(r#"{"S":"a"}"#, r#" { "S" : "a" } "#),
            RECORD.replace(r#"{"S":"a"}"#, r#"{"S" :"a"}"#),
            RECORD.replace(r#"{"BOOL":true}"#, r#"{"BOOL" : true}"#),
            RECORD.replace(r#""Message""#, r#""Mess\u0061ge""#),
        ] {
            let reference = decode_record_json(&text);
            if let Some(ours) = fast(&text) {
                assert_eq!(Ok(ours), reference, "{text}");
            }
        }
    }

    #[test]
    fn gives_up_where_the_reference_must_decide() {
        for text in [
            RECORD.replace(r#"{"S":"New item!"}"#, r#"{"X":"New item!"}"#),
            RECORD.replace(r#"{"S":"New item!"}"#, r#"{"s":"New item!"}"#),
            RECORD.replace(r#"{"S":"New item!"}"#, r#"{"":"New item!"}"#),
            RECORD.replace(r#"{"S":"New item!"}"#, r#"{"S""New item!"}"#),
            RECORD.replace(r#"{"S":"New item!"}"#, r#"{"S":"a","S":"b"}"#),
            RECORD.replace(r#"{"S":"New item!"}"#, r#"{"S":"a","N":"1"}"#),
            RECORD.replace(r#"{"N":"101"}"#, r#"{"N":"1e999"}"#),
            RECORD.replace(r#"{"B":"AAE="}"#, r#"{"B":"A"}"#),
            RECORD.replace(r#"{"NULL":true}"#, r#"{"NULL":false}"#),
            RECORD.replace(r#""SizeBytes":26"#, r#""SizeBytes":-1"#),
            RECORD.replace(r#""eventVersion":"1.0""#, r#""eventVersion":[1]"#),
            RECORD.replace("New item!", "\\ud800"),
            RECORD.replace("New item!", "a\u{1}b"),
            RECORD.replace(r#""Keys":{"Id":{"N":"101"}},"#, ""),
            RECORD.replace("INSERT", "UPSERT"),
            RECORD.replace("}}}", "}},}"),
        ] {
            assert_eq!(fast(&text), None, "{text}");
        }
    }

    #[test]
    fn nesting_is_limited_like_the_reference() {
        let nest = |n: usize| RECORD.replace(r#"{"S":"New item!"}"#, &nested_lists(n));
        assert_eq!(
            fast(&nest(32)).as_ref().ok_or(()),
            decode_record_json(&nest(32)).as_ref().map_err(|_| ())
        );
        assert!(fast(&nest(33)).is_none());
        assert!(decode_record_json(&nest(33)).is_err());
    }
}
