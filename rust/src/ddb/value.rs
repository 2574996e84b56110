//! The Rust-side model of a decoded DynamoDB AttributeValue.
//!
//! Decoding from raw event bytes produces these values without building any
//! Python object; Python objects are built from them only when asked for, and
//! the template renderer reads them directly.

/// A DynamoDB number, kept as its validated decimal text so no digit is lost.
///
/// Invariant: the text is a plain decimal (`[+-]?digits[.digits][e[+-]digits]`)
/// that DynamoDB's 38-digit context (boto3 `DYNAMODB_CONTEXT`) represents exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(pub(crate) Box<str>);

impl Number {
    /// The number's text exactly as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map attribute (`M`) or an image: attribute names in wire order.
/// Lookups are linear; DynamoDB items are small and most maps have few keys.
pub type Map = Vec<(String, AttrValue)>;

/// One decoded AttributeValue.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<AttrValue>),
    M(Map),
    SS(Vec<String>),
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
}
