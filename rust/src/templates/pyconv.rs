//! Python context values to template values (under the GIL, before rendering
//! with the GIL released).
//!
//! `str`, `int`, `float`, `bool`, `None`, `bytes` map directly; `Decimal`
//! keeps its exact digits (see `decimal`); `dict`/`Mapping` -> map (insertion
//! order), `list`/`tuple` -> sequence, `set`/`frozenset` -> sorted sequence
//! (same as DynamoDB sets on the record path), `datetime`/`date` -> ISO text, objects
//! with `__bytes__` (boto3's `Binary`) -> bytes.
//! Anything else is an error naming its path and type.
use std::cmp::Ordering;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString,
    PyTuple, PyType,
};

use super::decimal::{decimal_value, value_to_dec, DecimalObj};
use super::error::TplError;
use crate::ddb::value::Str;
use crate::names::{self, Fingerprint};

/// Nesting deeper than this is refused (it also stops self-referencing containers).
const MAX_DEPTH: usize = 64;

/// A small string-keyed map in insertion order. Lookups are linear: context
/// maps are small, and comparing a few short strings beats hashing them. Keys
/// are kept as plain text (inline up to 24 bytes) beside the values, so a
/// lookup compares `&str`s without going through `Value`.
#[derive(Debug, Default)]
pub struct SmallMap {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    print: Fingerprint,
    key: Str,
    value: Value,
}

impl SmallMap {
    pub fn with_capacity(n: usize) -> Self {
        SmallMap {
            entries: Vec::with_capacity(n),
        }
    }

    /// Insert or replace.
    pub fn insert(&mut self, key: &str, value: Value) {
        match self.position(key).and_then(|i| self.entries.get_mut(i)) {
            Some(slot) => slot.value = value,
            None => self.push(key, value),
        }
    }

    /// Append without checking for an existing key (the caller knows it is new:
    /// Python dict keys, DynamoDB map keys).
    pub(crate) fn push(&mut self, key: &str, value: Value) {
        self.entries.push(Entry {
            print: Fingerprint::of(key),
            key: Str::new(key),
            value,
        });
    }

    fn position(&self, key: &str) -> Option<usize> {
        names::position(&self.entries, key, |e| e.print, |e| e.key.as_str())
    }

    fn find(&self, key: &str) -> Option<Value> {
        self.entries
            .get(self.position(key)?)
            .map(|e| e.value.clone())
    }
}

impl Object for SmallMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str() {
            Some(k) => self.find(k),
            // Keys are stored as text (`{1: "one"}` -> "1"): look numbers up by theirs.
            None => self.find(&key.to_string()),
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.find(key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.entries
                .iter()
                .map(|e| Value::from(e.key.as_str()))
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct PyTypes {
    decimal: Py<PyType>,
    date: Py<PyType>,
    time: Py<PyType>,
    mapping: Py<PyType>,
}

static TYPES: GILOnceCell<PyTypes> = GILOnceCell::new();

fn types(py: Python<'_>) -> PyResult<&PyTypes> {
    TYPES.get_or_try_init(py, || {
        let ty = |module: &str, name: &str| -> PyResult<Py<PyType>> {
            Ok(py
                .import(module)?
                .getattr(name)?
                .downcast_into::<PyType>()?
                .unbind())
        };
        Ok(PyTypes {
            decimal: ty("decimal", "Decimal")?,
            date: ty("datetime", "date")?,
            time: ty("datetime", "time")?,
            mapping: ty("collections.abc", "Mapping")?,
        })
    })
}

/// A conversion failure: the path to the bad value and what was wrong.
struct ConvError {
    path: Vec<String>,
    problem: String,
}

impl ConvError {
    fn at(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }
}

impl From<PyErr> for ConvError {
    fn from(err: PyErr) -> Self {
        ConvError {
            path: Vec::new(),
            problem: err.to_string(),
        }
    }
}

/// Convert a context mapping to a template value (a map with string keys).
///
/// `reads`, when known, lists (sorted) the top-level names the templates can
/// read: a dict's other entries are left out unconverted (an item's attributes
/// that no template shows cost nothing and cannot fail the render).
pub fn context_to_value(
    obj: &Bound<'_, PyAny>,
    reads: Option<&[String]>,
) -> Result<Value, TplError> {
    let py = obj.py();
    let is_mapping = obj.is_instance_of::<PyDict>()
        || types(py)
            .and_then(|t| obj.is_instance(t.mapping.bind(py)))
            .unwrap_or(false);
    if !is_mapping {
        return Err(TplError::new(format!(
            "context must be a mapping, got {}",
            type_name(obj)
        )));
    }
    let value = match (reads, obj.downcast_exact::<PyDict>()) {
        (Some(reads), Ok(d)) => dict_value(d, 0, Some(reads)),
        _ => to_value(obj, 0),
    };
    value.map_err(|e| {
        let path: Vec<String> = e.path.into_iter().rev().collect();
        TplError::new(format!(
            "context value at {:?}: {}",
            path.join("."),
            e.problem
        ))
    })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn key_text(key: &Bound<'_, PyAny>) -> Result<Str, ConvError> {
    if let Ok(s) = key.downcast::<PyString>() {
        return Ok(Str::new(s.to_str()?));
    }
    // Non-string keys (ints, Decimals) are reachable by their text.
    Ok(Str::new(key.str()?.to_str()?))
}

fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, ConvError> {
    if depth > MAX_DEPTH {
        return Err(ConvError {
            path: Vec::new(),
            problem: format!("nested deeper than {MAX_DEPTH} levels"),
        });
    }
    // Exact types first: the common case, cheapest checks.
    if let Ok(s) = obj.downcast_exact::<PyString>() {
        return Ok(Value::from(s.to_str()?));
    }
    if obj.is_none() {
        return Ok(Value::from(()));
    }
    if let Ok(b) = obj.downcast_exact::<PyBool>() {
        return Ok(Value::from(b.is_true()));
    }
    if let Ok(i) = obj.downcast_exact::<PyInt>() {
        return int_value(i.as_any());
    }
    if let Ok(d) = obj.downcast_exact::<PyDict>() {
        return dict_value(d, depth, None);
    }
    if let Ok(l) = obj.downcast_exact::<PyList>() {
        return seq_value(l.iter(), l.len(), depth);
    }
    let py = obj.py();
    let t = types(py)?;
    if obj.get_type().is(t.decimal.bind(py)) {
        return Ok(decimal_value(obj.str()?.to_str()?));
    }
    if let Ok(f) = obj.downcast_exact::<PyFloat>() {
        return Ok(Value::from(f.value()));
    }
    if let Ok(tup) = obj.downcast::<PyTuple>() {
        return seq_value(tup.iter(), tup.len(), depth);
    }
    if obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>() {
        // Sorted (sets have no order; DynamoDB sets on the record path sort the same way).
        let mut items = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            items.push(to_value(&item?, depth + 1).map_err(|e| e.at(i.to_string()))?);
        }
        items.sort_by(set_order);
        return Ok(Value::from(items));
    }
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(Value::from_bytes(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.downcast::<PyByteArray>() {
        return Ok(Value::from_bytes(b.to_vec()));
    }
    // Subclasses and ABCs: slower checks.
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::from(obj.is_truthy()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if obj.is_instance_of::<PyString>() {
        return Ok(Value::from(obj.str()?.to_str()?));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::from(obj.extract::<f64>()?));
    }
    if obj.is_instance(t.decimal.bind(py))? {
        return Ok(decimal_value(obj.str()?.to_str()?));
    }
    if let Ok(d) = obj.downcast::<PyDict>() {
        return dict_value(d, depth, None);
    }
    if let Ok(l) = obj.downcast::<PyList>() {
        return seq_value(l.iter(), l.len(), depth);
    }
    if obj.is_instance(t.date.bind(py))? || obj.is_instance(t.time.bind(py))? {
        return Ok(Value::from(obj.call_method0("isoformat")?.str()?.to_str()?));
    }
    if obj.is_instance(t.mapping.bind(py))? {
        let items = obj.call_method0("items")?;
        let mut map = SmallMap::default();
        for item in items.try_iter()? {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            let key = key_text(&k)?;
            let value = to_value(&v, depth + 1).map_err(|e| e.at(k.to_string()))?;
            map.insert(&key, value);
        }
        return Ok(Value::from_object(map));
    }
    // boto3's `Binary` and other bytes-like wrappers.
    if obj.hasattr("__bytes__")? {
        let b = obj.call_method0("__bytes__")?;
        if let Ok(b) = b.downcast::<PyBytes>() {
            return Ok(Value::from_bytes(b.as_bytes().to_vec()));
        }
    }
    Err(ConvError {
        path: Vec::new(),
        problem: format!("unsupported type {}", type_name(obj)),
    })
}

/// Order of set elements: numbers numerically (exactly, also for `DecimalObj`),
/// strings by code point, bytes bytewise.
fn set_order(a: &Value, b: &Value) -> Ordering {
    let is_obj = |v: &Value| v.downcast_object_ref::<DecimalObj>().is_some();
    if is_obj(a) || is_obj(b) {
        if let (Some(x), Some(y)) = (value_to_dec(a), value_to_dec(b)) {
            return x.cmp_value(&y);
        }
    }
    a.cmp(b)
}

fn int_value(obj: &Bound<'_, PyAny>) -> Result<Value, ConvError> {
    if let Ok(v) = obj.extract::<i64>() {
        return Ok(Value::from(v));
    }
    if let Ok(v) = obj.extract::<i128>() {
        return Ok(Value::from(v));
    }
    // Beyond 128 bits: exact digits as a decimal.
    Ok(decimal_value(obj.str()?.to_str()?))
}

/// `only`: keep just the entries with these (sorted) names.
fn dict_value(
    d: &Bound<'_, PyDict>,
    depth: usize,
    only: Option<&[String]>,
) -> Result<Value, ConvError> {
    let mut map = SmallMap::with_capacity(only.map_or(d.len(), |o| o.len().min(d.len())));
    // String keys of one dict are distinct; only a non-string key (`1` next to
    // `"1"`) can collide with another key's text. From the first one on, the
    // later key wins.
    let mut dedupe = false;
    for (k, v) in d.iter() {
        dedupe = dedupe || !k.is_exact_instance_of::<PyString>();
        let key = key_text(&k)?;
        if only.is_some_and(|o| o.binary_search_by(|r| r.as_str().cmp(&key)).is_err()) {
            continue;
        }
        let value = to_value(&v, depth + 1).map_err(|e| e.at(k.to_string()))?;
        if dedupe {
            map.insert(&key, value);
        } else {
            map.push(&key, value);
        }
    }
    Ok(Value::from_object(map))
}

fn seq_value<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    depth: usize,
) -> Result<Value, ConvError> {
    let mut out = Vec::with_capacity(len);
    for (i, item) in items.enumerate() {
        out.push(to_value(&item, depth + 1).map_err(|e| e.at(i.to_string()))?);
    }
    Ok(Value::from(out))
}
