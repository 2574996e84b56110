//! The Rust-side model of a decoded DynamoDB AttributeValue.
//!
//! Decoding from raw event bytes produces these values without building any
//! Python object; Python objects are built from them only when asked for, and
//! the template renderer reads them directly.
use std::collections::{HashMap, HashSet};

use super::number::{self, NumberParts};
use crate::names::Fingerprint;

/// The decoder's string: inline up to 24 bytes, so most names and values cost no allocation.
pub type Str = compact_str::CompactString;

/// A DynamoDB number, kept as its validated decimal text so no digit is lost.
///
/// Invariant: the text is a plain decimal (`[+-]?digits[.digits][e[+-]digits]`)
/// that DynamoDB's 38-digit context (boto3 `DYNAMODB_CONTEXT`) represents exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(pub(crate) Str);

impl Number {
    /// Validate `text` against DynamoDB's number rules (see [`number::parse`]).
    pub fn parse(text: &str) -> Result<Number, String> {
        if !number::is_plain_integer(text) {
            number::parse(text)?;
        }
        Ok(Number(Str::new(text)))
    }

    /// The number's text exactly as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Sign, significant digits and exponent of the (validated) text.
    pub fn parts(&self) -> NumberParts<'_> {
        // The invariant holds, so parsing cannot fail; fall back to zero anyway.
        number::parse(&self.0).unwrap_or_default()
    }
}

/// A map attribute (`M`) or an image: attribute names in wire order.
/// Lookups are linear; DynamoDB items are small and most maps have few keys.
pub type Map = Vec<(Str, AttrValue)>;

/// One decoded AttributeValue.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    S(Str),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<AttrValue>),
    M(Map),
    SS(Vec<Str>),
    NS(Vec<Number>),
    BS(Vec<Vec<u8>>),
}

impl AttrValue {
    /// Look up a dotted path (`user.email`) through nested maps.
    pub fn get_path<'a>(map: &'a Map, path: &str) -> Option<&'a AttrValue> {
        let mut parts = path.split('.');
        let first = parts.next()?;
        let mut cur = map.iter().find(|(k, _)| k == first).map(|(_, v)| v)?;
        for part in parts {
            match cur {
                AttrValue::M(m) => cur = m.iter().find(|(k, _)| k == part).map(|(_, v)| v)?,
                _ => return None,
            }
        }
        Some(cur)
    }

    /// True for the values that become Python containers (L, M and the sets),
    /// which the cyclic GC must track.
    pub(crate) fn is_container(&self) -> bool {
        matches!(
            self,
            AttrValue::L(_)
                | AttrValue::M(_)
                | AttrValue::SS(_)
                | AttrValue::NS(_)
                | AttrValue::BS(_)
        )
    }

    /// The DynamoDB type tag of this value (`"S"`, `"N"`, ...).
    pub fn tag(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::B(_) => "B",
            AttrValue::Bool(_) => "BOOL",
            AttrValue::Null => "NULL",
            AttrValue::L(_) => "L",
            AttrValue::M(_) => "M",
            AttrValue::SS(_) => "SS",
            AttrValue::NS(_) => "NS",
            AttrValue::BS(_) => "BS",
        }
    }
}

/// Make attribute names unique the way a Python dict built from the pairs
/// would: the first occurrence keeps its position, the last value wins.
/// (`json.loads` + boto3 behave exactly so on duplicate names.)
pub(crate) fn dedup_last_wins(map: &mut Map) {
    let n = map.len();
    if n < 2 {
        return;
    }
    let has_dup = if n <= 16 {
        // Pairwise, on fingerprints first: the common no-duplicate case
        // compares integers, not strings (callgrind: the string compares were
        // ~2,500 instructions per 1.3 KB record).
        let mut prints = [Fingerprint::default(); 16];
        for (p, (k, _)) in prints.iter_mut().zip(map.iter()) {
            *p = Fingerprint::of(k);
        }
        (1..n).any(|i| {
            (0..i).any(|j| {
                prints.get(i) == prints.get(j)
                    && (prints.get(i).is_some_and(Fingerprint::decides)
                        || map.get(i).map(|e| &e.0) == map.get(j).map(|e| &e.0))
            })
        })
    } else {
        let mut seen = HashSet::with_capacity(n);
        !map.iter().all(|(k, _)| seen.insert(k.as_str()))
    };
    if !has_dup {
        return;
    }
    let mut out: Map = Vec::with_capacity(n);
    let mut pos: HashMap<Str, usize> = HashMap::with_capacity(n);
    for (k, v) in map.drain(..) {
        if let Some(&i) = pos.get(&k) {
            if let Some(slot) = out.get_mut(i) {
                slot.1 = v;
            }
        } else {
            pos.insert(k.clone(), out.len());
            out.push((k, v));
        }
    }
    *map = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttrValue {
        AttrValue::S(v.into())
    }

    #[test]
    fn dedup_keeps_first_position_and_last_value() {
        // GIVEN a map with a repeated name WHEN deduplicated THEN dict semantics apply
        let mut m: Map = vec![
            ("a".into(), s("1")),
            ("b".into(), s("2")),
            ("a".into(), s("3")),
        ];
        dedup_last_wins(&mut m);
        assert_eq!(m, vec![("a".into(), s("3")), ("b".into(), s("2"))]);
    }

    #[test]
    fn dedup_tells_look_alike_names_apart() {
        // GIVEN names sharing length and first 7 bytes, one of them repeated
        let names = [
            "created_at",
            "created_by",
            "created_at",
            "",
            "x",
            "created_on",
        ];
        let mut m: Map = names
            .iter()
            .enumerate()
            .map(|(i, k)| ((*k).into(), s(&i.to_string())))
            .collect();
        // WHEN deduplicated THEN only the real duplicate is merged, last value winning
        dedup_last_wins(&mut m);
        let got: Vec<(&str, AttrValue)> = m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_eq!(
            got,
            vec![
                ("created_at", s("2")),
                ("created_by", s("1")),
                ("", s("3")),
                ("x", s("4")),
                ("created_on", s("5")),
            ]
        );
        // AND a map of look-alikes without duplicates is left as it is
        let mut distinct: Map = vec![("created_at".into(), s("a")), ("created_by".into(), s("b"))];
        let before = distinct.clone();
        dedup_last_wins(&mut distinct);
        assert_eq!(distinct, before);
    }

    #[test]
    fn dedup_large_maps_use_the_hash_path() {
        let mut m: Map = (0..40)
            .map(|i| (format!("k{}", i % 20).into(), s(&i.to_string())))
            .collect();
        dedup_last_wins(&mut m);
        assert_eq!(m.len(), 20);
        assert_eq!(m.first(), Some(&("k0".into(), s("20"))));
    }

    #[test]
    fn get_path_walks_nested_maps_only() {
        let m: Map = vec![(
            "user".into(),
            AttrValue::M(vec![("email".into(), s("u@example.com"))]),
        )];
        assert_eq!(
            AttrValue::get_path(&m, "user.email"),
            Some(&s("u@example.com"))
        );
        assert_eq!(AttrValue::get_path(&m, "user.email.x"), None);
        assert_eq!(AttrValue::get_path(&m, "nope"), None);
    }
}
