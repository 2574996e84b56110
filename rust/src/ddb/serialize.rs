//! Python values to DynamoDB AttributeValue dicts, equal to boto3's TypeSerializer.
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMapping, PySet,
    PyString, PyTuple, PyType,
};

use super::error::DecodeErr;
use super::frompy::{is_boto3_binary, Fail};
use super::json::MAX_DEPTH;
use super::number;
use super::topy::decimal_type;

static ABC_SET: GILOnceCell<Py<PyType>> = GILOnceCell::new();

fn bad(msg: impl Into<String>) -> Fail {
    Fail::Decode(DecodeErr::new(msg))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// Serializes Python values; errors carry the path of the offending value.
pub(crate) struct Ser<'py> {
    py: Python<'py>,
    decimal: Bound<'py, PyType>,
    abc_set: Bound<'py, PyType>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetKind {
    Number,
    String,
    Binary,
}

impl<'py> Ser<'py> {
    pub(crate) fn new(py: Python<'py>) -> PyResult<Self> {
        Ok(Ser {
            py,
            decimal: decimal_type(py)?.clone(),
            abc_set: ABC_SET.import(py, "collections.abc", "Set")?.clone(),
        })
    }

    fn tagged(
        &self,
        tag: &Bound<'py, PyString>,
        v: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(self.py);
        d.set_item(tag, v)?;
        Ok(d)
    }

    /// `{name: AttributeValue}` for a mapping (boto3: `{k: serialize(v)}`).
    pub(crate) fn image(&self, obj: &Bound<'py, PyAny>) -> Result<Bound<'py, PyDict>, Fail> {
        self.map(obj, 0)
    }

    fn map(&self, obj: &Bound<'py, PyAny>, depth: u32) -> Result<Bound<'py, PyDict>, Fail> {
        let out = PyDict::new(self.py);
        let put = |k: Bound<'py, PyAny>, v: Bound<'py, PyAny>| -> Result<(), Fail> {
            let name = k.downcast::<PyString>().map_err(|_| {
                bad(format!(
                    "attribute names must be str, found {}",
                    type_name(&k)
                ))
            })?;
            match self.value(&v, depth) {
                Ok(av) => Ok(out.set_item(name, av)?),
                Err(e) => {
                    Err(e.within_key(&name.to_cow().map(|c| c.into_owned()).unwrap_or_default()))
                }
            }
        };
        if let Ok(d) = obj.downcast::<PyDict>() {
            for (k, v) in d.iter() {
                put(k, v)?;
            }
        } else if let Ok(m) = obj.downcast::<PyMapping>() {
            for item in m.items()?.iter() {
                let (k, v): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
                put(k, v)?;
            }
        } else {
            return Err(bad(format!("expected a mapping, found {}", type_name(obj))));
        }
        Ok(out)
    }

    /// One value as `{"TAG": payload}`; `depth` = enclosing L/M levels.
    pub(crate) fn value(
        &self,
        obj: &Bound<'py, PyAny>,
        depth: u32,
    ) -> Result<Bound<'py, PyDict>, Fail> {
        let py = self.py;
        if obj.is_none() {
            return Ok(self.tagged(
                intern!(py, "NULL"),
                PyBool::new(py, true).to_owned().into_any(),
            )?);
        }
        if obj.is_instance_of::<PyBool>() {
            return Ok(self.tagged(intern!(py, "BOOL"), obj.clone())?);
        }
        if let Some(n) = self.number(obj)? {
            return Ok(self.tagged(intern!(py, "N"), n.into_any())?);
        }
        if obj.is_instance_of::<PyString>() {
            return Ok(self.tagged(intern!(py, "S"), obj.clone())?);
        }
        if let Some(b) = self.binary(obj)? {
            return Ok(self.tagged(intern!(py, "B"), b.into_any())?);
        }
        if obj.is_instance(&self.abc_set)? {
            return self.set(obj);
        }
        let nested = obj.downcast::<PyMapping>().is_ok()
            || obj.is_instance_of::<PyList>()
            || obj.is_instance_of::<PyTuple>();
        if nested && depth >= MAX_DEPTH {
            return Err(bad(format!(
                "nesting deeper than DynamoDB's {MAX_DEPTH} levels"
            )));
        }
        if obj.is_instance_of::<PyDict>() || obj.downcast::<PyMapping>().is_ok() {
            let m = self.map(obj, depth + 1)?;
            return Ok(self.tagged(intern!(py, "M"), m.into_any())?);
        }
        if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
            let mut items = Vec::new();
            for (i, item) in obj.try_iter()?.enumerate() {
                items.push(
                    self.value(&item?, depth + 1)
                        .map_err(|e| e.within_index(i))?,
                );
            }
            let l = PyList::new(py, items)?;
            return Ok(self.tagged(intern!(py, "L"), l.into_any())?);
        }
        Err(bad(format!("unsupported type {:?}", type_name(obj))))
    }

    /// `N` text for int (bool included, as boto3 does inside sets) or Decimal;
    /// `None` for anything else. float is an error, as in boto3.
    fn number(&self, obj: &Bound<'py, PyAny>) -> Result<Option<Bound<'py, PyString>>, Fail> {
        if obj.is_instance_of::<PyFloat>() {
            return Err(bad(
                "Float types are not supported. Use Decimal types instead.",
            ));
        }
        let text = if obj.is_instance_of::<PyInt>() {
            let int = if obj.is_exact_instance_of::<PyInt>() {
                obj.clone()
            } else {
                self.py.get_type::<PyInt>().call1((obj,))?
            };
            // 10**126 has 419 bits; reject far larger ints before str() (which has a digit limit).
            let bits: u64 = int
                .call_method0(intern!(self.py, "bit_length"))?
                .extract()?;
            if bits > 430 {
                return Err(bad("int out of range (magnitude must be below 1E+127)"));
            }
            int.str()?
        } else if obj.is_instance(&self.decimal)? {
            obj.str()?
        } else {
            return Ok(None);
        };
        number::parse(&text.to_cow()?).map_err(bad)?;
        Ok(Some(text))
    }

    fn binary(&self, obj: &Bound<'py, PyAny>) -> Result<Option<Bound<'py, PyBytes>>, Fail> {
        if let Ok(b) = obj.downcast::<PyBytes>() {
            return Ok(Some(b.clone()));
        }
        if let Ok(b) = obj.downcast::<PyByteArray>() {
            return Ok(Some(PyBytes::new(self.py, &b.to_vec())));
        }
        if is_boto3_binary(obj) {
            let inner = obj.getattr(intern!(self.py, "value"))?;
            return self.binary(&inner);
        }
        Ok(None)
    }

    /// SS / NS / BS, decided like boto3: all numbers, else all str, else all binary
    /// (an empty set is a number set).
    fn set(&self, obj: &Bound<'py, PyAny>) -> Result<Bound<'py, PyDict>, Fail> {
        let py = self.py;
        let members: Vec<Bound<'py, PyAny>> = if let Ok(s) = obj.downcast::<PySet>() {
            s.iter().collect()
        } else if let Ok(s) = obj.downcast::<PyFrozenSet>() {
            s.iter().collect()
        } else {
            obj.try_iter()?.collect::<PyResult<_>>()?
        };
        // boto3 checks "all numbers" first, member by member, and raises on a
        // float met before the first non-number.
        let mut all_numbers = true;
        for m in &members {
            if m.is_instance_of::<PyFloat>() {
                return Err(bad(
                    "Float types are not supported. Use Decimal types instead.",
                ));
            }
            if !(m.is_instance_of::<PyInt>() || self.is_decimal(m)) {
                all_numbers = false;
                break;
            }
        }
        let is_binary = |m: &Bound<'py, PyAny>| {
            m.is_instance_of::<PyBytes>() || m.is_instance_of::<PyByteArray>() || is_boto3_binary(m)
        };
        let kind = if all_numbers {
            SetKind::Number
        } else if members.iter().all(|m| m.is_instance_of::<PyString>()) {
            SetKind::String
        } else if members.iter().all(is_binary) {
            SetKind::Binary
        } else {
            return Err(bad(format!(
                "unsupported type {:?} (a set of mixed or unsupported members)",
                type_name(obj)
            )));
        };
        let mut out = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            let item = match kind {
                SetKind::Number => self
                    .number(m)
                    .map_err(|e| e.within_index(i))?
                    .map(Bound::into_any),
                SetKind::String => Some(m.clone()),
                SetKind::Binary => self
                    .binary(m)
                    .map_err(|e| e.within_index(i))?
                    .map(Bound::into_any),
            };
            if let Some(item) = item {
                out.push(item);
            }
        }
        let tag = match kind {
            SetKind::Number => intern!(py, "NS"),
            SetKind::String => intern!(py, "SS"),
            SetKind::Binary => intern!(py, "BS"),
        };
        Ok(self.tagged(tag, PyList::new(py, out)?.into_any())?)
    }

    fn is_decimal(&self, obj: &Bound<'py, PyAny>) -> bool {
        obj.is_instance(&self.decimal).unwrap_or(false)
    }
}
