//! Decoded [`AttrValue`]s to Python objects (built only when Python asks).
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PySet, PyString, PyType};

use super::value::{AttrValue, Map, Number};

/// How `N` values become Python numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbers {
    /// `decimal.Decimal`, exactly as boto3's TypeDeserializer builds them.
    Decimal,
    /// `int` for integral values, `float` otherwise (lossy).
    Native,
}

impl Numbers {
    pub fn from_arg(s: &str) -> PyResult<Numbers> {
        match s {
            "decimal" => Ok(Numbers::Decimal),
            "native" => Ok(Numbers::Native),
            other => Err(PyValueError::new_err(format!(
                "numbers must be \"decimal\" or \"native\", not {other:?}"
            ))),
        }
    }
}

static DECIMAL: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// `decimal.Decimal`, imported once per process.
pub(crate) fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

/// Builds Python values from decoded ones.
pub(crate) struct ToPy<'py> {
    py: Python<'py>,
    numbers: Numbers,
    decimal: Bound<'py, PyType>,
}

impl<'py> ToPy<'py> {
    pub(crate) fn new(py: Python<'py>, numbers: Numbers) -> PyResult<Self> {
        Ok(ToPy {
            py,
            numbers,
            decimal: decimal_type(py)?.clone(),
        })
    }

    pub(crate) fn map(&self, m: &Map) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(self.py);
        for (k, v) in m {
            dict.set_item(PyString::new(self.py, k), self.value(v)?)?;
        }
        Ok(dict)
    }

    pub(crate) fn value(&self, v: &AttrValue) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        Ok(match v {
            AttrValue::S(s) => PyString::new(py, s).into_any(),
            AttrValue::N(n) => self.number(n)?,
            AttrValue::B(b) => PyBytes::new(py, b).into_any(),
            AttrValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            AttrValue::Null => py.None().into_bound(py),
            AttrValue::L(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.value(item)?);
                }
                PyList::new(py, out)?.into_any()
            }
            AttrValue::M(m) => self.map(m)?.into_any(),
            AttrValue::SS(items) => {
                let set = PySet::empty(py)?;
                for s in items {
                    set.add(PyString::new(py, s))?;
                }
                set.into_any()
            }
            AttrValue::NS(items) => {
                let set = PySet::empty(py)?;
                for n in items {
                    set.add(self.number(n)?)?;
                }
                set.into_any()
            }
            AttrValue::BS(items) => {
                let set = PySet::empty(py)?;
                for b in items {
                    set.add(PyBytes::new(py, b))?;
                }
                set.into_any()
            }
        })
    }

    pub(crate) fn number(&self, n: &Number) -> PyResult<Bound<'py, PyAny>> {
        match self.numbers {
            Numbers::Decimal => self.decimal.call1((PyString::new(self.py, n.as_str()),)),
            Numbers::Native => self.native(n),
        }
    }

    /// `Decimal(text)` reusing a Python str the caller already has.
    pub(crate) fn number_from_str(
        &self,
        n: &Number,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.numbers {
            Numbers::Decimal => self.decimal.call1((text,)),
            Numbers::Native => self.native(n),
        }
    }

    fn native(&self, n: &Number) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let parts = n.parts();
        if !parts.is_integral() {
            let f: f64 = n
                .as_str()
                .parse()
                .map_err(|_| PyValueError::new_err("unparsable number"))?;
            return Ok(PyFloat::new(py, f).into_any());
        }
        let digits = parts.integer_digits();
        if digits.len() <= 18 {
            if let Ok(v) = digits.parse::<i64>() {
                let v = if parts.negative { -v } else { v };
                return Ok(v.into_pyobject(py)?.into_any());
            }
        }
        let text = if parts.negative && digits != "0" {
            format!("-{digits}")
        } else {
            digits
        };
        py.get_type::<PyInt>().call1((text,))
    }
}
