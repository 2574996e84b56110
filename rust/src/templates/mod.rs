//! Template rendering with MiniJinja: template sets loaded once, rendered from
//! Python mappings or straight from decoded stream records.
//!
//! - `set`: directory layout, locale fallback, compile-once environment.
//! - `filters`: notification filters (`datetime`, `number`, `truncate`, ...).
//! - `decimal`: exact DynamoDB numbers as template values.
//! - `image`: decoded images (`AttrValue`) as lazy template values.
//! - `pyconv`: Python contexts as template values.
//! - `py`: the `TemplateSet` and `Rendered` Python classes.
//! - `escape`: HTML autoescaping with Jinja2's character set.
//! - `error`: the internal error type behind `TemplateError`.
use pyo3::prelude::*;

pub mod decimal;
pub mod error;
pub mod escape;
pub mod filters;
pub mod image;
pub mod py;
pub mod pyconv;
pub mod set;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<py::PyTemplateSet>()?;
    m.add_class::<py::Rendered>()?;
    // Location attributes of TemplateError: set per instance when known; the
    // class-level None makes them safe to read on any instance.
    let err = py.get_type::<crate::errors::TemplateError>();
    for attr in ["template", "file", "line"] {
        err.setattr(attr, py.None())?;
    }
    Ok(())
}
