//! DynamoDB JSON straight from text to [`AttrValue`]s with serde visitors:
//! no intermediate `serde_json::Value`, no Python objects, no GIL.
//!
//! Errors raised inside a visitor travel through serde as an opaque error;
//! the real [`DecodeErr`] sits in [`Ctx`] and gains one path step per level
//! while the visitors unwind.
use std::fmt;

use base64::Engine;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{length_of, quote_capped, redact_serde, DecodeErr, PathSeg};
use super::value::{dedup_last_wins, AttrValue, Map, Number, Str};

/// DynamoDB allows 32 levels of nested `L`/`M` attributes.
pub const MAX_DEPTH: u32 = 32;

/// The side channel carrying the structured error out of serde, and the
/// scratch stacks that maps and lists are collected on: each container pushes
/// its members, then moves them into one exactly sized allocation (no growth
/// reallocations, no spare capacity kept per container).
#[derive(Default)]
pub(crate) struct Ctx {
    err: Option<DecodeErr>,
    entries: Vec<(Str, AttrValue)>,
    items: Vec<AttrValue>,
}

/// serde_json appends " at line L column C"; the attribute path says more.
/// Quoted input values are removed ([`redact_serde`]).
pub(crate) fn serde_msg(e: &impl fmt::Display) -> String {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => s.get(..i).unwrap_or(&s),
        None => &s,
    };
    redact_serde(s)
}

impl Ctx {
    pub(crate) fn fail<E: de::Error>(&mut self, err: DecodeErr) -> E {
        self.err = Some(err);
        E::custom("invalid DynamoDB JSON")
    }

    /// The error to report for a serde error `e`: ours if a visitor raised one.
    pub(crate) fn take(&mut self, e: &impl fmt::Display) -> DecodeErr {
        self.err
            .take()
            .unwrap_or_else(|| DecodeErr::new(serde_msg(e)))
    }

    /// Record that the error `e` happened one path step further in.
    pub(crate) fn wrap<E: de::Error>(&mut self, e: E, seg: PathSeg) -> E {
        let err = self.take(&e).within(seg);
        self.err = Some(err);
        e
    }

    /// Prefix a serde-generated message (e.g. a wrong JSON type) with the tag.
    fn tagged<E: de::Error>(&mut self, e: E, tag: &str) -> E {
        if self.err.is_none() {
            self.err = Some(DecodeErr::new(format!("{tag}: {}", serde_msg(&e))));
        }
        e
    }
}

/// Decode standard base64 (with padding), as DynamoDB JSON carries `B`/`BS`.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| base64_problem(text, &e))
}

/// What is wrong with base64 text, without the text or the offending byte
/// (`base64`'s own messages quote the byte, a piece of the value).
fn base64_problem(text: &str, e: &base64::DecodeError) -> String {
    use base64::DecodeError as E;
    let what = match e {
        E::InvalidByte(at, _) => format!("a byte that is not base64 at offset {at}"),
        E::InvalidLength(_) => "a length that is not a whole number of base64 blocks".to_owned(),
        E::InvalidLastSymbol(at, _) => format!("a last symbol with bits left over at offset {at}"),
        E::InvalidPadding => "invalid padding".to_owned(),
    };
    format!("invalid base64 ({what}; {})", length_of(text))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Tag {
    S,
    N,
    B,
    Bool,
    Null,
    L,
    M,
    SS,
    NS,
    BS,
}

impl Tag {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tag::S => "S",
            Tag::N => "N",
            Tag::B => "B",
            Tag::Bool => "BOOL",
            Tag::Null => "NULL",
            Tag::L => "L",
            Tag::M => "M",
            Tag::SS => "SS",
            Tag::NS => "NS",
            Tag::BS => "BS",
        }
    }

    /// [`Tag::from_name`] on the tag's UTF-8 bytes.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Tag> {
        Some(match b {
            b"S" => Tag::S,
            b"N" => Tag::N,
            b"B" => Tag::B,
            b"BOOL" => Tag::Bool,
            b"NULL" => Tag::Null,
            b"L" => Tag::L,
            b"M" => Tag::M,
            b"SS" => Tag::SS,
            b"NS" => Tag::NS,
            b"BS" => Tag::BS,
            _ => return None,
        })
    }

    pub(crate) fn from_name(s: &str) -> Option<Tag> {
        Some(match s {
            "S" => Tag::S,
            "N" => Tag::N,
            "B" => Tag::B,
            "BOOL" => Tag::Bool,
            "NULL" => Tag::Null,
            "L" => Tag::L,
            "M" => Tag::M,
            "SS" => Tag::SS,
            "NS" => Tag::NS,
            "BS" => Tag::BS,
            _ => return None,
        })
    }
}

/// A map key read as a tag: `Ok(tag)` or `Err(the unknown text)`.
struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = Result<Tag, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for TagSeed {
    type Value = Result<Tag, String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a type tag")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Tag::from_name(v).ok_or_else(|| v.to_owned()))
    }
}

/// One AttributeValue object (`{"S": "x"}`); `depth` = enclosing L/M levels.
pub(crate) struct AvSeed<'c> {
    pub(crate) ctx: &'c mut Ctx,
    pub(crate) depth: u32,
}

impl<'de> DeserializeSeed<'de> for AvSeed<'_> {
    type Value = AttrValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AttrValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AvSeed<'_> {
    type Value = AttrValue;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AttributeValue object such as {\"S\": \"text\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttrValue, A::Error> {
        let ctx = self.ctx;
        let mut found: Option<(Tag, AttrValue)> = None;
        while let Some(tag) = map.next_key_seed(TagSeed)? {
            let tag = match tag {
                Ok(t) => t,
                Err(unknown) => {
                    return Err(ctx.fail(DecodeErr::new(format!(
                        "unknown type tag {}",
                        quote_capped(&unknown, 40)
                    ))))
                }
            };
            if let Some((prev, _)) = &found {
                if *prev != tag {
                    return Err(ctx.fail(DecodeErr::new(format!(
                        "expected exactly one type tag, found {:?} and {:?}",
                        prev.name(),
                        tag.name()
                    ))));
                }
            }
            let depth = self.depth;
            if matches!(tag, Tag::L | Tag::M) && depth >= MAX_DEPTH {
                return Err(ctx.fail(DecodeErr::new(format!(
                    "nesting deeper than DynamoDB's {MAX_DEPTH} levels"
                ))));
            }
            let value = match tag {
                Tag::S => map.next_value_seed(StrSeed).map(AttrValue::S),
                Tag::N => map
                    .next_value_seed(NumSeed { ctx: &mut *ctx })
                    .map(AttrValue::N),
                Tag::B => map
                    .next_value_seed(BinSeed { ctx: &mut *ctx })
                    .map(AttrValue::B),
                Tag::Bool => map.next_value_seed(BoolSeed).map(AttrValue::Bool),
                Tag::Null => map
                    .next_value_seed(NullSeed { ctx: &mut *ctx })
                    .map(|()| AttrValue::Null),
                Tag::L => map
                    .next_value_seed(ListSeed {
                        ctx: &mut *ctx,
                        depth: depth + 1,
                    })
                    .map(AttrValue::L),
                Tag::M => map
                    .next_value_seed(MapSeed {
                        ctx: &mut *ctx,
                        depth: depth + 1,
                    })
                    .map(AttrValue::M),
                Tag::SS | Tag::NS | Tag::BS => map.next_value_seed(SetSeed {
                    ctx: &mut *ctx,
                    tag,
                }),
            };
            let value = value.map_err(|e| ctx.tagged(e, tag.name()))?;
            found = Some((tag, value));
        }
        match found {
            Some((_, v)) => Ok(v),
            None => Err(ctx.fail(DecodeErr::new("expected exactly one type tag, found none"))),
        }
    }
}

struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Str;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Str, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for StrSeed {
    type Value = Str;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Str, E> {
        Ok(Str::new(v))
    }
}

struct NumSeed<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for NumSeed<'_> {
    type Value = Number;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Number, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for NumSeed<'_> {
    type Value = Number;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number as a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        Number::parse(v).map_err(|m| self.ctx.fail(DecodeErr::new(m)))
    }
}

struct BinSeed<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for BinSeed<'_> {
    type Value = Vec<u8>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for BinSeed<'_> {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("base64 text")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        decode_base64(v).map_err(|m| self.ctx.fail(DecodeErr::new(m)))
    }
}

struct BoolSeed;

impl<'de> DeserializeSeed<'de> for BoolSeed {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_bool(self)
    }
}

impl Visitor<'_> for BoolSeed {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true or false")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
}

struct NullSeed<'c> {
    ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for NullSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_bool(self)
    }
}

impl Visitor<'_> for NullSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("true")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        if v {
            Ok(())
        } else {
            Err(self
                .ctx
                .fail(DecodeErr::new("NULL: expected true, found false")))
        }
    }
}

struct ListSeed<'c> {
    ctx: &'c mut Ctx,
    depth: u32,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = Vec<AttrValue>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = Vec<AttrValue>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of AttributeValues")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let start = ctx.items.len();
        loop {
            let seed = AvSeed {
                ctx: &mut *ctx,
                depth: self.depth,
            };
            match seq.next_element_seed(seed) {
                Ok(Some(v)) => ctx.items.push(v),
                Ok(None) => return Ok(ctx.items.drain(start..).collect()),
                Err(e) => {
                    let i = ctx.items.len() - start;
                    ctx.items.truncate(start);
                    return Err(ctx.wrap(e, PathSeg::Index(i)));
                }
            }
        }
    }
}

/// An `M` value or a whole image: names to AttributeValues.
pub(crate) struct MapSeed<'c> {
    pub(crate) ctx: &'c mut Ctx,
    pub(crate) depth: u32,
}

impl<'de> DeserializeSeed<'de> for MapSeed<'_> {
    type Value = Map;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Map, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapSeed<'_> {
    type Value = Map;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of attribute names to AttributeValues")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Map, A::Error> {
        let ctx = self.ctx;
        let start = ctx.entries.len();
        loop {
            let key = match map.next_key_seed(StrSeed) {
                Ok(Some(k)) => k,
                Ok(None) => break,
                Err(e) => {
                    ctx.entries.truncate(start);
                    return Err(e);
                }
            };
            let seed = AvSeed {
                ctx: &mut *ctx,
                depth: self.depth,
            };
            match map.next_value_seed(seed) {
                Ok(v) => ctx.entries.push((key, v)),
                Err(e) => {
                    ctx.entries.truncate(start);
                    return Err(ctx.wrap(e, PathSeg::Key(key.into())));
                }
            }
        }
        let mut out: Map = ctx.entries.drain(start..).collect();
        dedup_last_wins(&mut out);
        Ok(out)
    }
}

/// `SS`, `NS` or `BS`: a JSON list of members (duplicates kept; Python sets merge them).
struct SetSeed<'c> {
    ctx: &'c mut Ctx,
    tag: Tag,
}

impl<'de> DeserializeSeed<'de> for SetSeed<'_> {
    type Value = AttrValue;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AttrValue, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SetSeed<'_> {
    type Value = AttrValue;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of set members")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AttrValue, A::Error> {
        let ctx = self.ctx;
        let cap = seq.size_hint().unwrap_or(0).min(1024);
        let mut i = 0usize;
        macro_rules! collect {
            ($seed:expr, $variant:path) => {{
                let mut out = Vec::with_capacity(cap);
                loop {
                    match seq.next_element_seed($seed) {
                        Ok(Some(v)) => out.push(v),
                        Ok(None) => return Ok($variant(out)),
                        Err(e) => return Err(ctx.wrap(e, PathSeg::Index(i))),
                    }
                    i += 1;
                }
            }};
        }
        match self.tag {
            Tag::NS => collect!(NumSeed { ctx: &mut *ctx }, AttrValue::NS),
            Tag::BS => collect!(BinSeed { ctx: &mut *ctx }, AttrValue::BS),
            _ => collect!(StrSeed, AttrValue::SS),
        }
    }
}
