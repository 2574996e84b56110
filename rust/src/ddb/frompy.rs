//! DynamoDB JSON that is already Python (dicts from `json.loads` or a boto3
//! client): straight to plain Python values (reusing the str objects), or to
//! [`AttrValue`]s for stream records.
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMapping, PySet,
    PyString, PyTuple,
};

use super::error::{quote_capped, DecodeErr};
use super::event::{unknown_event_name, RecordData, EVENT_NAMES};
use super::json::{decode_base64, Tag, MAX_DEPTH};
use super::number;
use super::tagkeys;
use super::topy::{gc_untrack_dict, ToPy};
use super::value::{dedup_last_wins, AttrValue, Map, Number, Str};

/// A decode failure: bad input (with its path) or an unexpected Python error.
pub(crate) enum Fail {
    Decode(DecodeErr),
    Py(PyErr),
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Self {
        Fail::Py(e)
    }
}

impl From<DecodeErr> for Fail {
    fn from(e: DecodeErr) -> Self {
        Fail::Decode(e)
    }
}

impl Fail {
    pub(crate) fn within_key(self, k: &str) -> Self {
        match self {
            Fail::Decode(e) => Fail::Decode(e.within_key(k)),
            other => other,
        }
    }
    pub(crate) fn within_index(self, i: usize) -> Self {
        match self {
            Fail::Decode(e) => Fail::Decode(e.within_index(i)),
            other => other,
        }
    }
}

fn bad(msg: impl Into<String>) -> Fail {
    Fail::Decode(DecodeErr::new(msg))
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

type Pair<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>);

/// Iterate the `(key, value)` pairs of a dict or any Mapping.
fn mapping_items<'py>(obj: &Bound<'py, PyAny>, what: &str) -> Result<Vec<Pair<'py>>, Fail> {
    if let Ok(d) = obj.downcast::<PyDict>() {
        return Ok(d.iter().collect());
    }
    if let Ok(m) = obj.downcast::<PyMapping>() {
        let mut out = Vec::new();
        for item in m.items()?.iter() {
            let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
            out.push((k, v));
        }
        return Ok(out);
    }
    Err(bad(format!("expected {what}, found {}", type_name(obj))))
}

/// True when `obj` is exactly a `dict` (no subclass): a type pointer compare,
/// cheaper than `PyDict_Check` under the stable ABI.
fn is_exact_dict(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `obj` is live; only its type pointer is read and compared.
    unsafe { ffi::Py_TYPE(obj.as_ptr()) == std::ptr::addr_of_mut!(ffi::PyDict_Type) }
}

/// True when `obj` is exactly a `str` (no subclass).
pub(crate) fn is_exact_str(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: as in `is_exact_dict`.
    unsafe { ffi::Py_TYPE(obj.as_ptr()) == std::ptr::addr_of_mut!(ffi::PyUnicode_Type) }
}

/// The next `(key, value)` of an exact dict at `pos`, as owned references
/// (so a dict mutated meanwhile cannot free them under us).
fn dict_next<'py>(
    dict: &Bound<'py, PyAny>,
    pos: &mut ffi::Py_ssize_t,
) -> Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let mut k: *mut ffi::PyObject = std::ptr::null_mut();
    let mut v: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `dict` is a live dict and `pos` a position we got from PyDict_Next
    // (CPython bounds-checks it); on success `k` and `v` are valid borrowed
    // references, which we own (incref) at once.
    unsafe {
        if ffi::PyDict_Next(dict.as_ptr(), pos, &mut k, &mut v) == 0 {
            return None;
        }
        let py = dict.py();
        Some((
            Bound::from_borrowed_ptr(py, k),
            Bound::from_borrowed_ptr(py, v),
        ))
    }
}

/// Fast path of [`tag_of`]: an exact one-entry dict whose key is an exact str tag.
fn tag_of_exact<'py>(obj: &Bound<'py, PyAny>) -> Option<(Tag, Bound<'py, PyAny>)> {
    if !is_exact_dict(obj) {
        return None;
    }
    let mut pos: ffi::Py_ssize_t = 0;
    let mut k: *mut ffi::PyObject = std::ptr::null_mut();
    let mut v: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `obj` is a live exact dict. PyDict_Next gives borrowed references;
    // the key is only read (its address, type pointer and UTF-8 buffer) or
    // remembered with a new reference of its own before any other call that
    // could run Python code, and the value is owned (incref) at once.
    unsafe {
        if ffi::PyDict_Size(obj.as_ptr()) != 1
            || ffi::PyDict_Next(obj.as_ptr(), &mut pos, &mut k, &mut v) == 0
            || ffi::Py_TYPE(k) != std::ptr::addr_of_mut!(ffi::PyUnicode_Type)
        {
            return None;
        }
        let tag = match tagkeys::known(k) {
            Some(tag) => tag,
            None => {
                let mut len: ffi::Py_ssize_t = 0;
                let data = ffi::PyUnicode_AsUTF8AndSize(k, &mut len);
                if data.is_null() {
                    ffi::PyErr_Clear();
                    return None;
                }
                let len = usize::try_from(len).ok()?;
                let tag = Tag::from_bytes(std::slice::from_raw_parts(data.cast::<u8>(), len))?;
                tagkeys::remember(tag, k);
                tag
            }
        };
        Some((tag, Bound::from_borrowed_ptr(obj.py(), v)))
    }
}

/// The single `(tag, value)` of an AttributeValue mapping.
fn tag_of<'py>(obj: &Bound<'py, PyAny>) -> Result<(Tag, Bound<'py, PyAny>), Fail> {
    if let Some(found) = tag_of_exact(obj) {
        return Ok(found);
    }
    let mut items = mapping_items(obj, "an AttributeValue mapping such as {\"S\": \"text\"}")?;
    if items.len() != 1 {
        // Keys are names (tags, or attribute names of a plain mapping); the
        // first three are shown, each cut to 40 characters.
        let names: Vec<String> = items
            .iter()
            .take(3)
            .map(|(k, _)| match k.downcast::<PyString>() {
                Ok(s) => quote_capped(&s.to_string_lossy(), 40),
                Err(_) => format!("a {} key", type_name(k)),
            })
            .collect();
        return Err(bad(if names.is_empty() {
            "expected exactly one type tag, found none".to_owned()
        } else if items.len() > names.len() {
            format!(
                "expected exactly one type tag, found {} keys: {} and more",
                items.len(),
                names.join(", ")
            )
        } else {
            format!(
                "expected exactly one type tag, found {}",
                names.join(" and ")
            )
        }));
    }
    let Some((k, v)) = items.pop() else {
        return Err(bad("expected exactly one type tag, found none"));
    };
    let name = k
        .downcast::<PyString>()
        .map_err(|_| bad(format!("type tag must be a str, found {}", type_name(&k))))?;
    let name = name.to_cow()?;
    match Tag::from_name(&name) {
        Some(tag) => Ok((tag, v)),
        None => Err(bad(format!("unknown type tag {}", quote_capped(&name, 40)))),
    }
}

/// `NULL` holding anything but `True`: `False` is named (not data), anything
/// else only by its type.
fn null_not_true(v: &Bound<'_, PyAny>) -> Fail {
    if v.is_instance_of::<PyBool>() {
        bad("NULL: expected true, found false")
    } else {
        bad(format!("NULL: expected true, found {}", type_name(v)))
    }
}

fn wrong(tag: Tag, want: &str, obj: &Bound<'_, PyAny>) -> Fail {
    bad(format!(
        "{}: expected {want}, found {}",
        tag.name(),
        type_name(obj)
    ))
}

/// Set members from a list, tuple, set or frozenset.
fn members<'py>(tag: Tag, obj: &Bound<'py, PyAny>) -> Result<Vec<Bound<'py, PyAny>>, Fail> {
    if let Ok(l) = obj.downcast::<PyList>() {
        return Ok(l.iter().collect());
    }
    if let Ok(t) = obj.downcast::<PyTuple>() {
        return Ok(t.iter().collect());
    }
    if let Ok(s) = obj.downcast::<PySet>() {
        return Ok(s.iter().collect());
    }
    if let Ok(s) = obj.downcast::<PyFrozenSet>() {
        return Ok(s.iter().collect());
    }
    Err(wrong(tag, "a list or set", obj))
}

fn list_items<'py>(obj: &Bound<'py, PyAny>) -> Result<Vec<Bound<'py, PyAny>>, Fail> {
    if let Ok(l) = obj.downcast::<PyList>() {
        return Ok(l.iter().collect());
    }
    if let Ok(t) = obj.downcast::<PyTuple>() {
        return Ok(t.iter().collect());
    }
    Err(wrong(Tag::L, "a list", obj))
}

fn number_text<'py>(
    tag: Tag,
    obj: &Bound<'py, PyAny>,
) -> Result<(Number, Bound<'py, PyString>), Fail> {
    let s = obj
        .downcast::<PyString>()
        .map_err(|_| wrong(tag, "a number as a str", obj))?;
    let text = s.to_cow()?;
    let n = Number::parse(&text).map_err(bad)?;
    Ok((n, s.clone()))
}

/// Bytes of a `B` value: base64 text (Lambda JSON), bytes, bytearray or boto3 `Binary`.
fn binary(tag: Tag, obj: &Bound<'_, PyAny>, unwrap: bool) -> Result<Vec<u8>, Fail> {
    if let Ok(s) = obj.downcast::<PyString>() {
        return decode_base64(&s.to_cow()?).map_err(bad);
    }
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.downcast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if unwrap && is_boto3_binary(obj) {
        return binary(tag, &obj.getattr("value")?, false);
    }
    Err(wrong(tag, "base64 text or bytes", obj))
}

/// `boto3.dynamodb.types.Binary`, recognised without importing boto3.
pub(crate) fn is_boto3_binary(obj: &Bound<'_, PyAny>) -> bool {
    let ty = obj.get_type();
    let name_ok = ty.name().is_ok_and(|n| n == "Binary");
    name_ok && ty.module().is_ok_and(|m| m == "boto3.dynamodb.types")
}

/// Python AttributeValues straight to Python values (boto3 TypeDeserializer's job).
pub(crate) struct Deser<'py> {
    pub(crate) out: ToPy<'py, 'static>,
}

impl<'py> Deser<'py> {
    pub(crate) fn image(&self, obj: &Bound<'py, PyAny>) -> Result<Bound<'py, PyDict>, Fail> {
        self.map(obj, 0)
    }

    /// True for values that can hold no reference to another object (exact
    /// str, Decimal, bytes, bool, int, float, None): a type pointer compare.
    fn is_atomic(&self, obj: &Bound<'py, PyAny>) -> bool {
        // SAFETY: `obj` is live; only its type pointer is read and compared.
        let ty = unsafe { ffi::Py_TYPE(obj.as_ptr()) };
        ty == self.out.decimal_type_ptr()
            || is_exact_str(obj)
            || obj.is_none()
            || ty == std::ptr::addr_of_mut!(ffi::PyBytes_Type)
            || ty == std::ptr::addr_of_mut!(ffi::PyBool_Type)
            || ty == std::ptr::addr_of_mut!(ffi::PyLong_Type)
            || ty == std::ptr::addr_of_mut!(ffi::PyFloat_Type)
    }

    fn map(&self, obj: &Bound<'py, PyAny>, depth: u32) -> Result<Bound<'py, PyDict>, Fail> {
        let py = obj.py();
        let exact = is_exact_dict(obj);
        let dict = if exact {
            // A copy has the input's keys in place: setting each to its decoded
            // value replaces in a table of the final size (no inserts, no resizes).
            // SAFETY: `obj` is a live exact dict; PyDict_Copy returns a new
            // reference to a new exact dict, or NULL with an exception set.
            unsafe {
                Bound::from_owned_ptr_or_err(py, ffi::PyDict_Copy(obj.as_ptr()))?
                    .downcast_into_unchecked::<PyDict>()
            }
        } else {
            PyDict::new(py)
        };
        let mut atomic = true;
        let mut fill = |k: &Bound<'py, PyAny>, v: &Bound<'py, PyAny>| -> Result<(), Fail> {
            let name = if is_exact_str(k) {
                // SAFETY: just checked to be exactly a str.
                unsafe { k.downcast_unchecked::<PyString>() }
            } else {
                k.downcast::<PyString>().map_err(|_| {
                    bad(format!(
                        "attribute names must be str, found {}",
                        type_name(k)
                    ))
                })?
            };
            match self.value(v, depth) {
                Ok(pv) => {
                    atomic = atomic && self.is_atomic(&pv);
                    Ok(dict.set_item(name, pv)?)
                }
                Err(e) => {
                    Err(e.within_key(&name.to_cow().map(|c| c.into_owned()).unwrap_or_default()))
                }
            }
        };
        if exact {
            let mut pos: ffi::Py_ssize_t = 0;
            while let Some((k, v)) = dict_next(obj, &mut pos) {
                fill(&k, &v)?;
            }
        } else if let Ok(d) = obj.downcast::<PyDict>() {
            for (k, v) in d.iter() {
                fill(&k, &v)?;
            }
        } else {
            for (k, v) in mapping_items(obj, "a mapping of attribute names to AttributeValues")? {
                fill(&k, &v)?;
            }
        }
        if atomic {
            // The copy is tracked like its input; holding only atomic values it
            // needs not be (see `gc_untrack_dict`).
            gc_untrack_dict(&dict);
        }
        Ok(dict)
    }

    /// An `N` str to a Python number, validated, reusing the str for Decimal.
    fn py_number(&self, tag: Tag, obj: &Bound<'py, PyAny>) -> Result<Bound<'py, PyAny>, Fail> {
        let s = obj
            .downcast::<PyString>()
            .map_err(|_| wrong(tag, "a number as a str", obj))?;
        let text = s.to_cow()?;
        if self.out.makes_decimals() && number::is_plain_integer(&text) {
            return Ok(self.out.decimal_from_str(s, &text)?);
        }
        let parts = number::parse(&text).map_err(bad)?;
        Ok(self.out.number_from_str(s, &text, &parts)?)
    }

    /// One AttributeValue; `depth` = enclosing L/M levels.
    pub(crate) fn value(
        &self,
        obj: &Bound<'py, PyAny>,
        depth: u32,
    ) -> Result<Bound<'py, PyAny>, Fail> {
        let py = obj.py();
        let (tag, v) = tag_of(obj)?;
        if matches!(tag, Tag::L | Tag::M) && depth >= MAX_DEPTH {
            return Err(bad(format!(
                "nesting deeper than DynamoDB's {MAX_DEPTH} levels"
            )));
        }
        Ok(match tag {
            Tag::S => {
                if !is_exact_str(&v) && !v.is_instance_of::<PyString>() {
                    return Err(wrong(tag, "a str", &v));
                }
                v
            }
            Tag::N => self.py_number(tag, &v)?,
            Tag::B => {
                if v.is_exact_instance_of::<PyBytes>() {
                    v
                } else {
                    PyBytes::new(py, &binary(tag, &v, true)?).into_any()
                }
            }
            Tag::Bool => {
                if !v.is_instance_of::<PyBool>() {
                    return Err(wrong(tag, "a bool", &v));
                }
                v
            }
            Tag::Null => {
                if !v.is(PyBool::new(py, true)) {
                    return Err(null_not_true(&v));
                }
                py.None().into_bound(py)
            }
            Tag::L => {
                let items = list_items(&v)?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.value(item, depth + 1).map_err(|e| e.within_index(i))?);
                }
                PyList::new(py, out)?.into_any()
            }
            Tag::M => self.map(&v, depth + 1)?.into_any(),
            Tag::SS | Tag::NS | Tag::BS => {
                let set = PySet::empty(py)?;
                for (i, m) in members(tag, &v)?.iter().enumerate() {
                    let item = match tag {
                        Tag::SS => {
                            if !m.is_instance_of::<PyString>() {
                                return Err(wrong(tag, "str members", m).within_index(i));
                            }
                            m.clone()
                        }
                        Tag::NS => self.py_number(tag, m).map_err(|e| e.within_index(i))?,
                        _ => {
                            PyBytes::new(py, &binary(tag, m, true).map_err(|e| e.within_index(i))?)
                                .into_any()
                        }
                    };
                    set.add(item)?;
                }
                set.into_any()
            }
        })
    }
}

/// Python AttributeValues to decoded [`AttrValue`]s (stream events handed over as dicts).
pub(crate) fn to_map(obj: &Bound<'_, PyAny>, depth: u32) -> Result<Map, Fail> {
    let items = mapping_items(obj, "a mapping of attribute names to AttributeValues")?;
    let mut out: Map = Vec::with_capacity(items.len());
    for (k, v) in items {
        let name = k.downcast::<PyString>().map_err(|_| {
            bad(format!(
                "attribute names must be str, found {}",
                type_name(&k)
            ))
        })?;
        let name = rust_str(name)?;
        match to_attr(&v, depth) {
            Ok(av) => out.push((name, av)),
            Err(e) => return Err(e.within_key(&name)),
        }
    }
    dedup_last_wins(&mut out);
    Ok(out)
}

fn rust_str(s: &Bound<'_, PyString>) -> Result<Str, Fail> {
    s.to_str()
        .map(Str::new)
        .map_err(|_| bad("string is not valid Unicode (lone surrogate)"))
}

pub(crate) fn to_attr(obj: &Bound<'_, PyAny>, depth: u32) -> Result<AttrValue, Fail> {
    let (tag, v) = tag_of(obj)?;
    if matches!(tag, Tag::L | Tag::M) && depth >= MAX_DEPTH {
        return Err(bad(format!(
            "nesting deeper than DynamoDB's {MAX_DEPTH} levels"
        )));
    }
    let string = |m: &Bound<'_, PyAny>| -> Result<Str, Fail> {
        let s = m
            .downcast::<PyString>()
            .map_err(|_| wrong(tag, "a str", m))?;
        rust_str(s)
    };
    Ok(match tag {
        Tag::S => AttrValue::S(string(&v)?),
        Tag::N => AttrValue::N(number_text(tag, &v)?.0),
        Tag::B => AttrValue::B(binary(tag, &v, true)?),
        Tag::Bool => {
            let b = v
                .downcast::<PyBool>()
                .map_err(|_| wrong(tag, "a bool", &v))?;
            AttrValue::Bool(b.is_true())
        }
        Tag::Null => {
            if !v.is(PyBool::new(v.py(), true)) {
                return Err(null_not_true(&v));
            }
            AttrValue::Null
        }
        Tag::L => {
            let items = list_items(&v)?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(to_attr(item, depth + 1).map_err(|e| e.within_index(i))?);
            }
            AttrValue::L(out)
        }
        Tag::M => AttrValue::M(to_map(&v, depth + 1)?),
        Tag::SS => {
            let mut out = Vec::new();
            for (i, m) in members(tag, &v)?.iter().enumerate() {
                out.push(string(m).map_err(|e| e.within_index(i))?);
            }
            AttrValue::SS(out)
        }
        Tag::NS => {
            let mut out = Vec::new();
            for (i, m) in members(tag, &v)?.iter().enumerate() {
                out.push(number_text(tag, m).map_err(|e| e.within_index(i))?.0);
            }
            AttrValue::NS(out)
        }
        Tag::BS => {
            let mut out = Vec::new();
            for (i, m) in members(tag, &v)?.iter().enumerate() {
                out.push(binary(tag, m, true).map_err(|e| e.within_index(i))?);
            }
            AttrValue::BS(out)
        }
    })
}

/// `obj[key]` of a dict or Mapping, `None` when absent or `None`.
pub(crate) fn field<'py>(
    obj: &Bound<'py, PyAny>,
    key: &str,
) -> Result<Option<Bound<'py, PyAny>>, Fail> {
    let v = if let Ok(d) = obj.downcast::<PyDict>() {
        d.get_item(key)?
    } else {
        let m = obj
            .downcast::<PyMapping>()
            .map_err(|_| bad(format!("expected an object, found {}", type_name(obj))))?;
        if m.contains(key)? {
            Some(m.get_item(key)?)
        } else {
            None
        }
    };
    Ok(v.filter(|v| !v.is_none()))
}

pub(crate) fn str_field(obj: &Bound<'_, PyAny>, key: &str) -> Result<Option<String>, Fail> {
    match field(obj, key)? {
        None => Ok(None),
        Some(v) => {
            let s = v.downcast::<PyString>().map_err(|_| {
                bad(format!("expected a str, found {}", type_name(&v))).within_key(key)
            })?;
            rust_str(s)
                .map(|s| Some(s.into()))
                .map_err(|e| e.within_key(key))
        }
    }
}

/// The identifiers of a record, where they can be read.
pub(crate) fn salvage_ids(rec: &Bound<'_, PyAny>) -> (Option<String>, Option<String>) {
    let event_id = str_field(rec, "eventID").ok().flatten();
    let seq = field(rec, "dynamodb")
        .ok()
        .flatten()
        .and_then(|d| str_field(&d, "SequenceNumber").ok().flatten());
    (event_id, seq)
}

/// One stream record given as Python objects (path relative to the record).
pub(crate) fn record_from_py(rec: &Bound<'_, PyAny>) -> Result<RecordData, Fail> {
    let missing = |name: &str| bad(format!("missing required field {name:?}"));
    if !rec.is_instance_of::<PyDict>() && rec.downcast::<PyMapping>().is_err() {
        return Err(bad(format!(
            "expected a stream record object, found {}",
            type_name(rec)
        )));
    }
    let event_id = str_field(rec, "eventID")?.ok_or_else(|| missing("eventID"))?;
    let event_name = str_field(rec, "eventName")?.ok_or_else(|| missing("eventName"))?;
    if !EVENT_NAMES.contains(&event_name.as_str()) {
        return Err(bad(unknown_event_name(&event_name)).within_key("eventName"));
    }
    let ddb = field(rec, "dynamodb")?.ok_or_else(|| missing("dynamodb"))?;
    let in_ddb = |e: Fail| e.within_key("dynamodb");
    let ddb_fields = || -> Result<RecordData, Fail> {
        if !ddb.is_instance_of::<PyDict>() && ddb.downcast::<PyMapping>().is_err() {
            return Err(bad(format!(
                "expected an object, found {}",
                type_name(&ddb)
            )));
        }
        let sequence_number =
            str_field(&ddb, "SequenceNumber")?.ok_or_else(|| missing("SequenceNumber"))?;
        let image = |key: &str| -> Result<Option<Map>, Fail> {
            match field(&ddb, key)? {
                None => Ok(None),
                Some(v) => to_map(&v, 0).map(Some).map_err(|e| e.within_key(key)),
            }
        };
        let keys = image("Keys")?.ok_or_else(|| missing("Keys"))?;
        let approximate_creation_time = match field(&ddb, "ApproximateCreationDateTime")? {
            None => None,
            Some(v)
                if v.is_instance_of::<PyFloat>()
                    || (v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>()) =>
            {
                Some(v.extract::<f64>()?)
            }
            Some(v) => {
                return Err(bad(format!("expected a number, found {}", type_name(&v)))
                    .within_key("ApproximateCreationDateTime"))
            }
        };
        let size_bytes = match field(&ddb, "SizeBytes")? {
            None => None,
            Some(v) if v.is_instance_of::<PyInt>() && !v.is_instance_of::<PyBool>() => Some(
                v.extract::<u64>()
                    .map_err(|_| bad("expected a non-negative integer").within_key("SizeBytes"))?,
            ),
            Some(v) => {
                return Err(bad(format!("expected an integer, found {}", type_name(&v)))
                    .within_key("SizeBytes"))
            }
        };
        Ok(RecordData {
            event_id: String::new(),
            event_name: String::new(),
            sequence_number,
            keys,
            new_image: image("NewImage")?,
            old_image: image("OldImage")?,
            new_image_span: None,
            old_image_span: None,
            approximate_creation_time,
            size_bytes,
            stream_view_type: str_field(&ddb, "StreamViewType")?,
            event_source_arn: None,
            aws_region: None,
        })
    };
    let mut data = ddb_fields().map_err(in_ddb)?;
    data.event_id = event_id;
    data.event_name = event_name;
    data.event_source_arn = str_field(rec, "eventSourceARN")?;
    data.aws_region = str_field(rec, "awsRegion")?;
    Ok(data)
}
