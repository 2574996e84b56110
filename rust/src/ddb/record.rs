//! `StreamRecord`: one decoded DynamoDB stream record, and `RecordError`, its
//! stand-in for a record that failed to decode (`errors="collect"`).
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyString};
use pyo3::{PyTraverseError, PyVisit};

use super::event::{decode_image_json, RecordData};
use super::fast;
use super::guard;
use super::text::EventText;
use super::topy::{KeyCache, Numbers, ToPy};
use super::value::{AttrValue, Map};

/// Where a record's original JSON text comes from.
pub(crate) enum RawText {
    /// A slice of the event text shared by every record of the batch.
    Slice {
        buf: Arc<EventText>,
        range: Range<usize>,
    },
    /// The record's Python dict (event handed over parsed); dumped on demand.
    Py(Py<PyAny>),
}

impl RawText {
    /// `span` of the event text (for records decoded from text).
    fn span(&self, span: &Range<usize>) -> Option<&str> {
        match self {
            RawText::Slice { buf, .. } => buf.as_str().get(span.clone()),
            RawText::Py(_) => None,
        }
    }

    pub(crate) fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        match self {
            RawText::Slice { buf, range } => Ok(PyString::new(
                py,
                buf.as_str().get(range.clone()).unwrap_or(""),
            )),
            RawText::Py(obj) => dump_json(obj.bind(py)),
        }
    }
}

static JSON_DUMPS: GILOnceCell<Py<PyAny>> = GILOnceCell::new();

/// `json.dumps(obj, default=repr, ensure_ascii=False)`: the JSON text of a parsed record.
pub(crate) fn dump_json<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let py = obj.py();
    let dumps = JSON_DUMPS.import(py, "json", "dumps")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", py.eval(c"repr", None, None)?)?;
    kwargs.set_item("ensure_ascii", false)?;
    Ok(dumps
        .call((obj,), Some(&kwargs))?
        .downcast_into::<PyString>()?)
}

/// An image of a record: decoded, or validated and located in the event text
/// (decoded from text, the images are skimmed: built only when asked for,
/// as a tree for rendering and paths, or straight to Python objects).
pub(crate) struct Image {
    span: Option<Range<usize>>,
    tree: OnceLock<Option<Arc<Map>>>,
}

impl Image {
    fn new(map: Option<Map>, span: Option<Range<usize>>) -> Self {
        let tree = OnceLock::new();
        if span.is_none() {
            let _ = tree.set(map.map(Arc::new));
        }
        Image { span, tree }
    }

    /// The image's tree, built from its span on first use.
    fn tree(&self, raw: &RawText) -> Option<&Arc<Map>> {
        self.tree
            .get_or_init(|| {
                let text = raw.span(self.span.as_ref()?)?;
                // The span was validated by the same grammar, so the fast build
                // succeeds; the reference decoder is a safety net only.
                let map = fast::image_tree(text)
                    .or_else(|| decode_image_json(text).ok())
                    .unwrap_or_default();
                Some(Arc::new(map))
            })
            .as_ref()
    }

    /// The span's text while no tree has been built (to build Python objects from).
    fn pending_text<'r>(&self, raw: &'r RawText) -> Option<&'r str> {
        if self.tree.get().is_some() {
            return None;
        }
        raw.span(self.span.as_ref()?)
    }
}

/// One record of a DynamoDB stream event, decoded in Rust.
///
/// Each image is a Rust tree, a span of the event text, or both, and its
/// Python dict is built once (while decoding with `images="python"`, else on
/// first access); the template renderer reads trees, never Python objects.
#[pyclass(frozen, module = "notifier._core")]
pub struct StreamRecord {
    pub(crate) index: usize,
    pub(crate) event_id: String,
    pub(crate) event_name: String,
    pub(crate) sequence_number: String,
    pub(crate) keys: Arc<Map>,
    pub(crate) new_image: Image,
    pub(crate) old_image: Image,
    pub(crate) approximate_creation_time: Option<f64>,
    pub(crate) size_bytes: Option<u64>,
    pub(crate) stream_view_type: Option<String>,
    pub(crate) event_source_arn: Option<String>,
    pub(crate) aws_region: Option<String>,
    pub(crate) numbers: Numbers,
    pub(crate) raw: RawText,
    /// Attribute-name strs shared by the batch (None for single records).
    pub(crate) key_cache: Option<Arc<KeyCache>>,
    keys_py: GILOnceCell<Py<PyAny>>,
    new_py: GILOnceCell<Py<PyAny>>,
    old_py: GILOnceCell<Py<PyAny>>,
}

impl StreamRecord {
    /// The new image for rendering, without touching Python.
    pub fn new_image_map(&self) -> Option<&Arc<Map>> {
        self.new_image.tree(&self.raw)
    }

    /// The old image, without touching Python.
    pub fn old_image_map(&self) -> Option<&Arc<Map>> {
        self.old_image.tree(&self.raw)
    }

    /// The image rendering and paths read: the new one, else the old one
    /// (REMOVE records have only an old image).
    pub fn image_map(&self) -> Option<&Arc<Map>> {
        self.new_image_map().or_else(|| self.old_image_map())
    }

    pub(crate) fn from_data(
        index: usize,
        data: RecordData,
        numbers: Numbers,
        raw: RawText,
        key_cache: Option<Arc<KeyCache>>,
    ) -> Self {
        StreamRecord {
            index,
            event_id: data.event_id,
            event_name: data.event_name,
            sequence_number: data.sequence_number,
            keys: Arc::new(data.keys),
            new_image: Image::new(data.new_image, data.new_image_span),
            old_image: Image::new(data.old_image, data.old_image_span),
            approximate_creation_time: data.approximate_creation_time,
            size_bytes: data.size_bytes,
            stream_view_type: data.stream_view_type,
            event_source_arn: data.event_source_arn,
            aws_region: data.aws_region,
            numbers,
            raw,
            key_cache,
            keys_py: GILOnceCell::new(),
            new_py: GILOnceCell::new(),
            old_py: GILOnceCell::new(),
        }
    }

    fn cached(
        &self,
        py: Python<'_>,
        map: Option<&Arc<Map>>,
        cell: &GILOnceCell<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let Some(map) = map else {
            return Ok(py.None());
        };
        let obj = cell.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            // try_lock: never wait on another thread while holding the GIL.
            let mut keys = self.key_cache.as_ref().and_then(|c| c.0.try_lock().ok());
            let mut out = ToPy::new(py, self.numbers)?.with_keys(keys.as_deref_mut());
            Ok(out.map(map)?.into_any().unbind())
        })?;
        Ok(obj.clone_ref(py))
    }

    /// Python images built while decoding.
    pub(crate) fn set_python_images(
        &self,
        py: Python<'_>,
        new: Option<Bound<'_, PyDict>>,
        old: Option<Bound<'_, PyDict>>,
    ) {
        if let Some(d) = new {
            let _ = self.new_py.set(py, d.into_any().unbind());
        }
        if let Some(d) = old {
            let _ = self.old_py.set(py, d.into_any().unbind());
        }
    }

    /// An image as a Python dict: straight from its text when no tree was
    /// built (one pass, no tree), else from the tree.
    fn image_py(
        &self,
        py: Python<'_>,
        image: &Image,
        cell: &GILOnceCell<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        if let Some(obj) = cell.get(py) {
            return Ok(obj.clone_ref(py));
        }
        if let Some(text) = image.pending_text(&self.raw) {
            let built = {
                let mut keys = self.key_cache.as_ref().and_then(|c| c.0.try_lock().ok());
                let mut out = ToPy::new(py, self.numbers)?.with_keys(keys.as_deref_mut());
                fast::image_py(text, &mut out)
            };
            if let Some(dict) = built {
                let obj = cell.get_or_init(py, || dict.into_any().unbind());
                return Ok(obj.clone_ref(py));
            }
        }
        self.cached(py, image.tree(&self.raw), cell)
    }
}

#[pymethods]
impl StreamRecord {
    /// The Python objects the record holds, for the cyclic GC: a caller can put
    /// the record into its own image (or the parsed event's record dict it came
    /// from), and such a cycle must be collectable. Clearing is left to the
    /// dicts in the cycle (their `tp_clear` breaks it).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // SAFETY: the collector calls this with the GIL held; the token only
        // reads the cells, no Python API is called.
        let py = unsafe { Python::assume_gil_acquired() };
        for cell in [&self.keys_py, &self.new_py, &self.old_py] {
            if let Some(obj) = cell.get(py) {
                visit.call(obj)?;
            }
        }
        if let RawText::Py(obj) = &self.raw {
            visit.call(obj)?;
        }
        Ok(())
    }

    /// Position of the record in its batch.
    #[getter]
    fn index(&self) -> usize {
        self.index
    }
    #[getter]
    fn event_id(&self) -> &str {
        &self.event_id
    }
    #[getter]
    fn event_name(&self) -> &str {
        &self.event_name
    }
    #[getter]
    fn sequence_number(&self) -> &str {
        &self.sequence_number
    }
    #[getter]
    fn keys(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| self.cached(py, Some(&self.keys), &self.keys_py))
    }
    #[getter]
    fn new_image(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| self.image_py(py, &self.new_image, &self.new_py))
    }
    #[getter]
    fn old_image(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        guard(|| self.image_py(py, &self.old_image, &self.old_py))
    }
    #[getter]
    fn approximate_creation_time(&self) -> Option<f64> {
        self.approximate_creation_time
    }
    #[getter]
    fn size_bytes(&self) -> Option<u64> {
        self.size_bytes
    }
    #[getter]
    fn stream_view_type(&self) -> Option<&str> {
        self.stream_view_type.as_deref()
    }
    #[getter]
    fn event_source_arn(&self) -> Option<&str> {
        self.event_source_arn.as_deref()
    }
    #[getter]
    fn aws_region(&self) -> Option<&str> {
        self.aws_region.as_deref()
    }
    #[getter]
    fn raw<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        guard(|| self.raw.to_py(py))
    }

    /// The value at a dotted path in the new image (the old image if there is
    /// no new one), or `default`; builds only that value.
    #[pyo3(signature = (path, default=None))]
    fn get(&self, py: Python<'_>, path: &str, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        guard(
            || match self.image_map().and_then(|m| AttrValue::get_path(m, path)) {
                Some(v) => Ok(ToPy::new(py, self.numbers)?.value(v)?.unbind()),
                None => Ok(default.unwrap_or_else(|| py.None())),
            },
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "StreamRecord(index={}, event_name={:?}, event_id={:?}, sequence_number={:?})",
            self.index, self.event_name, self.event_id, self.sequence_number
        )
    }
}

/// A record that failed to decode (`errors="collect"`), in place of its `StreamRecord`.
#[pyclass(frozen, module = "notifier._core")]
pub struct RecordError {
    /// Position of the record in its batch.
    #[pyo3(get)]
    pub(crate) index: usize,
    #[pyo3(get)]
    pub(crate) sequence_number: Option<String>,
    #[pyo3(get)]
    pub(crate) event_id: Option<String>,
    /// The `DecodeError` that decoding this record raised.
    #[pyo3(get)]
    pub(crate) error: Py<PyAny>,
    /// The record's JSON text.
    #[pyo3(get)]
    pub(crate) raw: Py<PyString>,
}

#[pymethods]
impl RecordError {
    /// The error object, for the cyclic GC (a caller may hang the `RecordError`
    /// on its own exception; the exception's `tp_clear` breaks such a cycle).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.error)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let err = self
            .error
            .bind(py)
            .str()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let seq = match &self.sequence_number {
            Some(s) => format!("{s:?}"),
            None => "None".to_owned(),
        };
        format!(
            "RecordError(index={}, sequence_number={seq}, error={err:?})",
            self.index
        )
    }
}
