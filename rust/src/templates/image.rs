//! Decoded DynamoDB images as template values, without Python.
//!
//! A record's context exposes the image's attributes as top-level names. An
//! attribute is converted the first time a template reads it, then cached for
//! the rest of that record's rendering (subject, text and HTML share it), so
//! attributes a template never touches (keys, trace blobs, ...) cost nothing
//! and the ones it reads are converted once.
//!
//! Mapping: `S` -> string, `N` -> exact number (see `decimal`), `B` -> bytes,
//! `BOOL` -> bool, `NULL` -> none, `L` -> sequence, `M` -> map (wire order),
//! `SS`/`NS`/`BS` -> sequences sorted by value (sets have no order; sorting
//! makes output deterministic and equal to the Python-dict path, which sorts too).
use std::sync::{Arc, OnceLock};

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::decimal::{decimal_value, Dec};
use super::pyconv::SmallMap;
use crate::ddb::value::{AttrValue, Map, Number};
use crate::names::{self, Fingerprint};

/// The image attributes as top-level names, plus `event` (stream metadata) and
/// `notification` (what the pipeline adds per notification: an unsubscribe link, ...;
/// an empty map when it adds nothing). Both shadow image attributes of the same name.
#[derive(Debug)]
pub struct RecordContext {
    image: Option<Arc<Map>>,
    /// Fingerprints of the image's attribute names, for lookups.
    prints: Box<[Fingerprint]>,
    /// One slot per image attribute, filled on first read.
    converted: Box<[OnceLock<Value>]>,
    event: Value,
    notification: Value,
}

impl RecordContext {
    pub fn new(image: Option<Arc<Map>>, event: Value) -> Self {
        let n = image.as_ref().map_or(0, |m| m.len());
        let prints = image
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, _)| Fingerprint::of(k))
            .collect();
        RecordContext {
            image,
            prints,
            converted: (0..n).map(|_| OnceLock::new()).collect(),
            event,
            notification: Value::from_object(SmallMap::with_capacity(0)),
        }
    }

    /// The `notification` map (string values) the templates see.
    pub fn with_notification(mut self, items: &[(String, String)]) -> Self {
        let mut map = SmallMap::with_capacity(items.len());
        for (k, v) in items {
            map.insert(k, Value::from(v.as_str()));
        }
        self.notification = Value::from_object(map);
        self
    }
}

/// Convert a value and everything below it.
pub fn to_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::S(s) => Value::from(s.as_str()),
        AttrValue::N(n) => decimal_value(n.as_str()),
        AttrValue::B(b) => Value::from_bytes(b.clone()),
        AttrValue::Bool(b) => Value::from(*b),
        AttrValue::Null => Value::from(()),
        AttrValue::L(items) => Value::from(items.iter().map(to_value).collect::<Vec<_>>()),
        AttrValue::M(m) => map_value(m),
        AttrValue::SS(items) => {
            let mut sorted: Vec<&crate::ddb::value::Str> = items.iter().collect();
            sorted.sort();
            Value::from(
                sorted
                    .into_iter()
                    .map(|s| Value::from(s.as_str()))
                    .collect::<Vec<_>>(),
            )
        }
        AttrValue::NS(items) => Value::from(sorted_numbers(items)),
        AttrValue::BS(items) => {
            let mut sorted: Vec<&Vec<u8>> = items.iter().collect();
            sorted.sort();
            Value::from(
                sorted
                    .into_iter()
                    .map(|b| Value::from_bytes(b.clone()))
                    .collect::<Vec<_>>(),
            )
        }
    }
}

/// A map (or a whole image) as a template map, in wire order.
pub fn map_value(m: &Map) -> Value {
    let mut out = SmallMap::with_capacity(m.len());
    for (k, v) in m {
        out.push(k, to_value(v));
    }
    Value::from_object(out)
}

fn sorted_numbers(items: &[Number]) -> Vec<Value> {
    let mut parsed: Vec<(Option<Dec>, &Number)> =
        items.iter().map(|n| (Dec::parse(n.as_str()), n)).collect();
    parsed.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some(a), Some(b)) => a.cmp_value(b),
        (a, b) => a.is_some().cmp(&b.is_some()),
    });
    parsed
        .into_iter()
        .map(|(_, n)| decimal_value(n.as_str()))
        .collect()
}

impl Object for RecordContext {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        if key == "event" {
            return Some(self.event.clone());
        }
        if key == "notification" {
            return Some(self.notification.clone());
        }
        let root = self.image.as_ref()?;
        let i = names::position(
            self.prints.iter().zip(root.iter()),
            key,
            |(p, _)| **p,
            |(_, (k, _))| k.as_str(),
        )?;
        let (_, v) = root.get(i)?;
        let slot = self.converted.get(i)?;
        Some(slot.get_or_init(|| to_value(v)).clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = self
            .image
            .as_ref()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k != "event" && k != "notification")
                    .map(|(k, _)| Value::from(k.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        keys.push(Value::from("event"));
        keys.push(Value::from("notification"));
        Enumerator::Values(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    fn n(text: &str) -> AttrValue {
        AttrValue::N(Number(text.into()))
    }

    fn s(text: &str) -> AttrValue {
        AttrValue::S(text.into())
    }

    fn image() -> Arc<Map> {
        Arc::new(vec![
            ("event_id".into(), s("evt-1")),
            (
                "user".into(),
                AttrValue::M(vec![
                    ("name".into(), s("Jürgen Hopper")),
                    ("id".into(), s("7")),
                ]),
            ),
            (
                "data".into(),
                AttrValue::M(vec![
                    (
                        "steps".into(),
                        AttrValue::L(vec![
                            AttrValue::M(vec![
                                ("name".into(), s("applied")),
                                ("done".into(), AttrValue::Bool(true)),
                            ]),
                            AttrValue::M(vec![
                                ("name".into(), s("screen")),
                                ("done".into(), AttrValue::Bool(false)),
                            ]),
                        ]),
                    ),
                    ("score".into(), n("87.25")),
                    ("big".into(), n("12345678901234567890123456789012345678")),
                    ("tiny".into(), n("0.1")),
                    (
                        "tags".into(),
                        AttrValue::SS(vec!["urgent".into(), "remote".into()]),
                    ),
                    (
                        "ratings".into(),
                        AttrValue::NS(vec![
                            Number("4.5".into()),
                            Number("10".into()),
                            Number("-1".into()),
                        ]),
                    ),
                    (
                        "blobs".into(),
                        AttrValue::BS(vec![b"b".to_vec(), b"a".to_vec()]),
                    ),
                    ("nothing".into(), AttrValue::Null),
                ]),
            ),
            ("created_at".into(), n("1767225600")),
            ("trace".into(), AttrValue::B(b"xyz".to_vec())),
        ])
    }

    fn render(src: &str) -> String {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let ctx = Value::from_object(RecordContext::new(
            Some(image()),
            Value::from_iter([("name", Value::from("INSERT"))]),
        ));
        env.render_str(src, ctx).unwrap()
    }

    #[test]
    fn top_level_and_nested_attributes() {
        assert_eq!(
            render("{{ event_id }} {{ user.name }} {{ user['id'] }} {{ event.name }}"),
            "evt-1 Jürgen Hopper 7 INSERT"
        );
    }

    #[test]
    fn lists_of_maps_iterate() {
        assert_eq!(
            render("{% for s in data.steps %}{{ loop.index }}:{{ s.name }}={{ s.done }};{% endfor %}{{ data.steps|length }}{{ data.steps[-1].name }}"),
            "1:applied=True;2:screen=False;2screen"
        );
    }

    #[test]
    fn numbers_are_exact_and_comparable() {
        assert_eq!(
            render("{{ data.score }} {{ data.big }} {{ data.tiny }} {{ created_at + 1 }} {{ data.score > 50 }}"),
            "87.25 12345678901234567890123456789012345678 0.1 1767225601 True"
        );
    }

    #[test]
    fn sets_are_sorted_sequences() {
        assert_eq!(
            render(
                "{{ data.tags|join(',') }} {{ data.ratings|join(',') }} {{ data.blobs|length }}"
            ),
            "remote,urgent -1,4.5,10 2"
        );
    }

    #[test]
    fn null_and_maps_iterate_in_wire_order() {
        assert_eq!(
            render("{{ data.nothing is none }} {% for k in user %}{{ k }} {% endfor %}{{ user|length }}"),
            "True name id 2"
        );
    }

    #[test]
    fn missing_attribute_is_an_error_in_strict_mode() {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let ctx = Value::from_object(RecordContext::new(Some(image()), Value::from(())));
        assert!(env.render_str("{{ user.nmae }}", ctx.clone()).is_err());
        assert!(env.render_str("{{ nope }}", ctx.clone()).is_err());
        assert_eq!(
            env.render_str("{{ actor is defined }}", ctx).unwrap(),
            "False"
        );
    }

    #[test]
    fn record_without_image_has_only_event() {
        let env = Environment::new();
        let ctx = Value::from_object(RecordContext::new(None, Value::from("x")));
        assert_eq!(
            env.render_str("{{ event }}{{ user is defined }}", ctx)
                .unwrap(),
            "xFalse"
        );
    }
}
