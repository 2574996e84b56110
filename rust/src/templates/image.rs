//! Decoded DynamoDB images as template values, without Python.
//!
//! An image (`Arc<Map>` of `AttrValue`) is exposed lazily: maps and lists are
//! thin views (the shared image plus a path of indices), and a value is
//! converted only when a template reads it, so attributes a template never
//! touches cost nothing.
//!
//! Mapping: `S` -> string, `N` -> exact number (see `decimal`), `B` -> bytes,
//! `BOOL` -> bool, `NULL` -> none, `L` -> sequence, `M` -> map (wire order),
//! `SS`/`NS`/`BS` -> sequences sorted by value (sets have no order; sorting
//! makes output deterministic and equal to the Python-dict path, which sorts too).
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};

use super::decimal::{decimal_value, Dec};
use crate::ddb::value::{AttrValue, Map, Number};

/// A view of a map inside an image: `path` indexes from the root map
/// through nested `M`/`L` values (empty path = the image itself).
#[derive(Debug)]
pub struct ImageMap {
    root: Arc<Map>,
    path: Box<[u32]>,
}

/// A view of an `L` list inside an image.
#[derive(Debug)]
pub struct ImageList {
    root: Arc<Map>,
    path: Box<[u32]>,
}

/// The image attributes as top-level names, plus `event` (stream metadata).
#[derive(Debug)]
pub struct RecordContext {
    pub image: Option<Arc<Map>>,
    pub event: Value,
}

fn walk<'a>(root: &'a Map, path: &[u32]) -> Option<&'a AttrValue> {
    let (first, rest) = path.split_first()?;
    let mut cur = &root.get(*first as usize)?.1;
    for &i in rest {
        cur = match cur {
            AttrValue::M(m) => &m.get(i as usize)?.1,
            AttrValue::L(l) => l.get(i as usize)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn child_path(path: &[u32], i: usize) -> Box<[u32]> {
    let mut p = Vec::with_capacity(path.len() + 1);
    p.extend_from_slice(path);
    p.push(u32::try_from(i).unwrap_or(u32::MAX));
    p.into_boxed_slice()
}

impl ImageMap {
    pub fn root(root: Arc<Map>) -> Self {
        ImageMap {
            root,
            path: Box::new([]),
        }
    }

    fn map(&self) -> Option<&Map> {
        if self.path.is_empty() {
            return Some(&self.root);
        }
        match walk(&self.root, &self.path)? {
            AttrValue::M(m) => Some(m),
            _ => None,
        }
    }

    fn lookup(&self, key: &str) -> Option<Value> {
        let map = self.map()?;
        let i = map.iter().position(|(k, _)| k == key)?;
        let (_, v) = map.get(i)?;
        Some(convert(&self.root, &self.path, i, v))
    }
}

impl ImageList {
    fn list(&self) -> Option<&Vec<AttrValue>> {
        match walk(&self.root, &self.path)? {
            AttrValue::L(l) => Some(l),
            _ => None,
        }
    }
}

/// Convert the value at `path + [i]` (which is `v`).
fn convert(root: &Arc<Map>, path: &[u32], i: usize, v: &AttrValue) -> Value {
    match v {
        AttrValue::M(_) => Value::from_object(ImageMap {
            root: root.clone(),
            path: child_path(path, i),
        }),
        AttrValue::L(_) => Value::from_object(ImageList {
            root: root.clone(),
            path: child_path(path, i),
        }),
        other => scalar(other),
    }
}

/// Convert a value that holds no nested map or list.
fn scalar(v: &AttrValue) -> Value {
    match v {
        AttrValue::S(s) => Value::from(s.as_str()),
        AttrValue::N(n) => decimal_value(n.as_str()),
        AttrValue::B(b) => Value::from_bytes(b.clone()),
        AttrValue::Bool(b) => Value::from(*b),
        AttrValue::Null => Value::from(()),
        AttrValue::SS(items) => {
            let mut sorted: Vec<&String> = items.iter().collect();
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
        // Nested containers outside an image (not reachable from `convert`):
        // convert eagerly.
        AttrValue::L(items) => Value::from(items.iter().map(scalar).collect::<Vec<_>>()),
        AttrValue::M(m) => Value::from_iter(m.iter().map(|(k, v)| (k.as_str(), scalar(v)))),
    }
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

impl Object for ImageMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some(k) => self.lookup(k),
            None => self.lookup(&key.to_string()),
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.lookup(key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = self
            .map()
            .map(|m| m.iter().map(|(k, _)| Value::from(k.as_str())).collect())
            .unwrap_or_default();
        Enumerator::Values(keys)
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.map().map_or(0, Vec::len))
    }
}

impl Object for ImageList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let list = self.list()?;
        let idx = i64::try_from(key.clone()).ok()?;
        let idx = if idx < 0 {
            list.len().checked_sub(idx.unsigned_abs() as usize)?
        } else {
            usize::try_from(idx).ok()?
        };
        let v = list.get(idx)?;
        Some(convert(&self.root, &self.path, idx, v))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.list().map_or(0, Vec::len))
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.list().map_or(0, Vec::len))
    }
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
        let root = self.image.as_ref()?;
        let i = root.iter().position(|(k, _)| k == key)?;
        let (_, v) = root.get(i)?;
        Some(convert(root, &[], i, v))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = self
            .image
            .as_ref()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k != "event")
                    .map(|(k, _)| Value::from(k.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        keys.push(Value::from("event"));
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
        let ctx = Value::from_object(RecordContext {
            image: Some(image()),
            event: Value::from_iter([("name", Value::from("INSERT"))]),
        });
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
        let ctx = Value::from_object(RecordContext {
            image: Some(image()),
            event: Value::from(()),
        });
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
        let ctx = Value::from_object(RecordContext {
            image: None,
            event: Value::from("x"),
        });
        assert_eq!(
            env.render_str("{{ event }}{{ user is defined }}", ctx)
                .unwrap(),
            "xFalse"
        );
    }
}
