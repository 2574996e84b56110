//! `StreamRecord`: one decoded DynamoDB stream record.
use std::sync::Arc;

use pyo3::prelude::*;

use super::value::Map;

/// One record of a DynamoDB stream event, decoded in Rust.
///
/// The images stay Rust values until Python asks for them; the template
/// renderer reads them without building Python objects.
#[allow(dead_code)] // skeleton: the decoder fills these in
#[pyclass(frozen, module = "notifier._core")]
pub struct StreamRecord {
    pub(crate) index: usize,
    pub(crate) event_id: String,
    pub(crate) event_name: String,
    pub(crate) sequence_number: String,
    pub(crate) keys: Arc<Map>,
    pub(crate) new_image: Option<Arc<Map>>,
    pub(crate) old_image: Option<Arc<Map>>,
    pub(crate) approximate_creation_time: Option<f64>,
    pub(crate) size_bytes: Option<u64>,
    pub(crate) stream_view_type: Option<String>,
    pub(crate) event_source_arn: Option<String>,
    pub(crate) aws_region: Option<String>,
}

impl StreamRecord {
    /// The new image for rendering, without touching Python.
    pub fn new_image_map(&self) -> Option<&Arc<Map>> {
        self.new_image.as_ref()
    }
}
