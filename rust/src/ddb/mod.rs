//! DynamoDB JSON: AttributeValue decoding (from raw bytes or Python dicts),
//! encoding back to AttributeValue dicts, and Lambda stream events.
use pyo3::prelude::*;

pub mod record;
pub mod value;

pub use record::StreamRecord;
pub use value::{AttrValue, Map, Number};

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
