//! Python exception types raised by the extension. A small, flat hierarchy,
//! each subclassing the stdlib exception a caller would already catch.
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    notifier._core,
    DecodeError,
    PyValueError,
    "Malformed DynamoDB JSON or stream event. The message names the record index and attribute path."
);
create_exception!(
    notifier._core,
    EncodeError,
    PyTypeError,
    "A Python value that has no DynamoDB representation (float, NaN, too many digits, unsupported type)."
);
create_exception!(
    notifier._core,
    TemplateError,
    PyValueError,
    "A template that fails to load, compile or render. The message names the template, file and line."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add("EncodeError", py.get_type::<EncodeError>())?;
    m.add("TemplateError", py.get_type::<TemplateError>())?;
    Ok(())
}
