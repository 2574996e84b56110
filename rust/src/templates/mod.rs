//! Template rendering with MiniJinja: template sets loaded once, rendered from
//! Python mappings or straight from decoded stream records.
use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
