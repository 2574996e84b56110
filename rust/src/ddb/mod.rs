//! DynamoDB JSON: AttributeValue decoding (from raw bytes or Python dicts),
//! encoding back to AttributeValue dicts, and Lambda stream events.
//!
//! Pure-Rust decoding (no GIL): [`event::decode_event_bytes`],
//! [`event::decode_value_json`], [`event::decode_image_json`].
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMapping, PyString, PyTuple};

use crate::errors::{DecodeError, EncodeError};

pub mod error;
pub mod event;
mod fast;
mod frompy;
pub mod json;
pub mod kinesis;
mod kinesis_py;
pub mod number;
pub mod record;
mod serialize;
mod tagkeys;
mod text;
mod topy;
pub mod value;

pub use error::DecodeErr;
pub use record::{RecordError, StreamRecord};
pub use topy::Numbers;
pub use value::{AttrValue, Map, Number};

use frompy::{Deser, Fail};
use record::RawText;
use text::EventText;
use topy::{GcPause, KeyCache, ToPy};

/// Run `f`, turning a panic (a bug, never expected) into a Python exception
/// instead of letting it unwind into the interpreter.
pub(crate) fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(DecodeError::new_err(
            "internal error in the DynamoDB decoder (please report)",
        )),
    }
}

fn decode_failure(f: Fail) -> PyErr {
    match f {
        Fail::Decode(e) => DecodeError::new_err(e.to_string()),
        Fail::Py(e) => e,
    }
}

fn encode_failure(f: Fail) -> PyErr {
    match f {
        Fail::Decode(e) => EncodeError::new_err(e.to_string()),
        Fail::Py(e) => e,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Errors {
    Raise,
    Collect,
}

fn errors_arg(s: &str) -> PyResult<Errors> {
    match s {
        "raise" => Ok(Errors::Raise),
        "collect" => Ok(Errors::Collect),
        other => Err(PyValueError::new_err(format!(
            "errors must be \"raise\" or \"collect\", not {other:?}"
        ))),
    }
}

/// One AttributeValue (`{"S": "x"}`) to a plain Python value, like boto3's TypeDeserializer.
#[pyfunction]
#[pyo3(signature = (av, *, numbers = "decimal"))]
fn deserialize_value(py: Python<'_>, av: &Bound<'_, PyAny>, numbers: &str) -> PyResult<Py<PyAny>> {
    let numbers = Numbers::from_arg(numbers)?;
    guard(|| {
        let d = Deser {
            out: ToPy::new(py, numbers)?,
        };
        d.value(av, 0).map(Bound::unbind).map_err(decode_failure)
    })
}

/// An image (`{name: AttributeValue}`) to a plain dict.
#[pyfunction]
#[pyo3(signature = (image, *, numbers = "decimal"))]
fn deserialize_image(
    py: Python<'_>,
    image: &Bound<'_, PyAny>,
    numbers: &str,
) -> PyResult<Py<PyDict>> {
    let numbers = Numbers::from_arg(numbers)?;
    guard(|| {
        let d = Deser {
            out: ToPy::new(py, numbers)?,
        };
        d.image(image).map(Bound::unbind).map_err(decode_failure)
    })
}

/// A Python value to an AttributeValue dict, like boto3's TypeSerializer.
#[pyfunction]
fn serialize_value(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyDict>> {
    guard(|| {
        let s = serialize::Ser::new(py)?;
        s.value(value, 0).map(Bound::unbind).map_err(encode_failure)
    })
}

/// A mapping to an image (`{name: AttributeValue}`).
#[pyfunction]
fn serialize_image(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Py<PyDict>> {
    guard(|| {
        let s = serialize::Ser::new(py)?;
        s.image(obj).map(Bound::unbind).map_err(encode_failure)
    })
}

/// Which kind of event `decode_stream_event` reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Told by the first record's `eventSource` (`aws:kinesis`, else DynamoDB Streams).
    Auto,
    Dynamodb,
    Kinesis,
}

fn source_arg(s: &str) -> PyResult<Source> {
    match s {
        "auto" => Ok(Source::Auto),
        "dynamodb" => Ok(Source::Dynamodb),
        "kinesis" => Ok(Source::Kinesis),
        other => Err(PyValueError::new_err(format!(
            "source must be \"auto\", \"dynamodb\" or \"kinesis\", not {other:?}"
        ))),
    }
}

/// A Lambda DynamoDB Streams event, or a Kinesis event of DynamoDB change
/// records (raw bytes/str, or the parsed dict), to records.
#[pyfunction]
#[pyo3(signature = (event, *, numbers = "decimal", errors = "raise", images = "python", source = "auto"))]
fn decode_stream_event(
    py: Python<'_>,
    event: &Bound<'_, PyAny>,
    numbers: &str,
    errors: &str,
    images: &str,
    source: &str,
) -> PyResult<Py<PyList>> {
    let numbers = Numbers::from_arg(numbers)?;
    let errors = errors_arg(errors)?;
    let images = images_arg(images)?;
    let source = source_arg(source)?;
    guard(|| decode_any(py, event, numbers, errors, images, source))
}

/// A Lambda Kinesis event whose records carry DynamoDB change records
/// (Kinesis Data Streams for DynamoDB) to records.
#[pyfunction]
#[pyo3(signature = (event, *, numbers = "decimal", errors = "raise", images = "python"))]
fn decode_kinesis_event(
    py: Python<'_>,
    event: &Bound<'_, PyAny>,
    numbers: &str,
    errors: &str,
    images: &str,
) -> PyResult<Py<PyList>> {
    let numbers = Numbers::from_arg(numbers)?;
    let errors = errors_arg(errors)?;
    let images = images_arg(images)?;
    guard(|| decode_any(py, event, numbers, errors, images, Source::Kinesis))
}

fn decode_any(
    py: Python<'_>,
    event: &Bound<'_, PyAny>,
    numbers: Numbers,
    errors: Errors,
    images: Images,
    source: Source,
) -> PyResult<Py<PyList>> {
    match EventText::of(event) {
        Some(text) => {
            let text = Arc::new(text.map_err(|e| DecodeError::new_err(e.to_string()))?);
            let kinesis = match source {
                Source::Auto => kinesis::is_kinesis_text(text.as_str()),
                s => s == Source::Kinesis,
            };
            if kinesis {
                kinesis_py::from_text(py, text, numbers, errors, images)
            } else {
                from_text(py, text, numbers, errors, images)
            }
        }
        None => {
            let kinesis = match source {
                Source::Auto => kinesis_py::is_kinesis_parsed(event)?,
                s => s == Source::Kinesis,
            };
            if kinesis {
                kinesis_py::from_py(py, event, numbers, errors, images)
            } else {
                from_py(py, event, numbers, errors)
            }
        }
    }
}

/// The JSON text of a raw event (`bytes`, `bytearray` or `str`), borrowed
/// from the Python object where it can be (bytes and str are immutable);
/// `None` when `event` is something else (a parsed event).
pub(crate) fn event_text<'a>(
    event: &'a Bound<'_, PyAny>,
) -> Option<Result<std::borrow::Cow<'a, str>, DecodeErr>> {
    use std::borrow::Cow;
    if let Ok(b) = event.downcast::<PyBytes>() {
        Some(utf8(b.as_bytes()).map(Cow::Borrowed))
    } else if let Ok(b) = event.downcast::<PyByteArray>() {
        // Mutable, so copied once; validated in place.
        Some(
            String::from_utf8(b.to_vec())
                .map(Cow::Owned)
                .map_err(|e| utf8_error(e.utf8_error())),
        )
    } else if let Ok(s) = event.downcast::<PyString>() {
        Some(
            s.to_str()
                .map(Cow::Borrowed)
                .map_err(|_| DecodeErr::new("event is not valid Unicode (lone surrogate)")),
        )
    } else {
        None
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, DecodeErr> {
    std::str::from_utf8(bytes).map_err(utf8_error)
}

fn utf8_error(e: std::str::Utf8Error) -> DecodeErr {
    DecodeErr::new(format!("event is not valid UTF-8 ({e})"))
}

/// A `RecordError` (as a Python object) for a record that failed to decode.
pub(crate) fn record_error(
    py: Python<'_>,
    index: usize,
    error: String,
    event_id: Option<String>,
    sequence_number: Option<String>,
    raw: Bound<'_, PyString>,
) -> PyResult<Py<PyAny>> {
    let err = DecodeError::new_err(error).into_value(py).into_any();
    let rec = RecordError {
        index,
        sequence_number,
        event_id,
        error: err,
        raw: raw.unbind(),
    };
    Ok(Py::new(py, rec)?.into_any())
}

/// How the images of an event decoded from text are built.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Images {
    /// As trees while decoding (GIL released); Python dicts on first access.
    Tree,
    /// Validated only; trees or dicts built on first use.
    Lazy,
    /// As Python dicts in the decoding pass itself (GIL held); trees on demand.
    Python,
}

fn images_arg(s: &str) -> PyResult<Images> {
    match s {
        "tree" => Ok(Images::Tree),
        "lazy" => Ok(Images::Lazy),
        "python" => Ok(Images::Python),
        other => Err(PyValueError::new_err(format!(
            "images must be \"tree\", \"lazy\" or \"python\", not {other:?}"
        ))),
    }
}

fn from_text(
    py: Python<'_>,
    text: Arc<EventText>,
    numbers: Numbers,
    errors: Errors,
    images: Images,
) -> PyResult<Py<PyList>> {
    let stop = errors == Errors::Raise;
    let keys = Arc::new(KeyCache::default());
    let internal =
        |_| DecodeError::new_err("internal error in the DynamoDB decoder (please report)");
    // Python images built in the decoding pass, by record offset.
    let mut built: Vec<(usize, [Option<Bound<'_, PyDict>>; 2])> = Vec::new();
    // Held to the end (the records are built with the GIL held too), from after
    // `ToPy::new`, whose first call imports `decimal` (Python code, which may
    // let another thread run).
    let mut _gc = None;
    let decoded = if images == Images::Python {
        let mut shared = keys.0.try_lock().ok();
        let mut out = ToPy::new(py, numbers)?.with_keys(shared.as_deref_mut());
        _gc = Some(GcPause::new(py));
        catch_unwind(AssertUnwindSafe(|| {
            event::decode_event_using(text.as_str(), stop, &mut |t, pos| {
                let (data, dicts, end) = fast::record_py(t, pos, &mut out)?;
                built.push((pos, dicts));
                Some((data, end))
            })
        }))
        .map_err(internal)?
    } else {
        let text = Arc::clone(&text);
        py.allow_threads(move || {
            catch_unwind(AssertUnwindSafe(|| match images {
                Images::Lazy => event::decode_event_lazy(text.as_str(), stop),
                _ => event::decode_event_str(text.as_str(), stop),
            }))
        })
        .map_err(internal)?
    }
    .map_err(|e| DecodeError::new_err(e.to_string()))?;
    let mut out = Vec::with_capacity(decoded.len());
    let mut built = built.into_iter().peekable();
    for (index, rec) in decoded.into_iter().enumerate() {
        let start = rec.raw.start;
        let raw = RawText::Slice {
            buf: Arc::clone(&text),
            range: rec.raw,
        };
        while built.next_if(|(pos, _)| *pos < start).is_some() {}
        let dicts = built.next_if(|(pos, _)| *pos == start).map(|(_, d)| d);
        match rec.result {
            Ok(data) => {
                let r = StreamRecord::from_data(index, data, numbers, raw, Some(Arc::clone(&keys)));
                if let Some([new, old]) = dicts {
                    r.set_python_images(py, new, old);
                }
                out.push(Py::new(py, r)?.into_any());
            }
            Err(f) => {
                if errors == Errors::Raise {
                    return Err(DecodeError::new_err(f.error.to_string()));
                }
                let raw = raw.to_py(py)?;
                out.push(record_error(
                    py,
                    index,
                    f.error.to_string(),
                    f.event_id,
                    f.sequence_number,
                    raw,
                )?);
            }
        }
    }
    Ok(PyList::new(py, out)?.unbind())
}

/// The `Records` of a parsed event (`{"Records": [...]}` as Python objects).
pub(crate) fn parsed_records<'py>(event: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let envelope_err = |what: &str| {
        DecodeError::new_err(format!(
            "not a DynamoDB stream event (expected {{\"Records\": [...]}}): {what}"
        ))
    };
    let records = if let Ok(d) = event.downcast::<PyDict>() {
        d.get_item("Records")?
    } else if let Ok(m) = event.downcast::<PyMapping>() {
        if m.contains("Records")? {
            Some(m.get_item("Records")?)
        } else {
            None
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "event must be bytes, str or a mapping, not {}",
            event.get_type().name()?
        )));
    };
    let records = records.ok_or_else(|| envelope_err("missing field `Records`"))?;
    if let Ok(l) = records.downcast::<PyList>() {
        Ok(l.iter().collect())
    } else if let Ok(t) = records.downcast::<PyTuple>() {
        Ok(t.iter().collect())
    } else {
        Err(envelope_err("`Records` is not a list"))
    }
}

/// A failed record of a parsed event: its message (with the record's path) and
/// what could be salvaged, or the Python error that stopped decoding.
pub(crate) struct ParsedFailure {
    pub(crate) message: String,
    pub(crate) event_id: Option<String>,
    pub(crate) sequence_number: Option<String>,
}

/// Decode record `index` of a parsed event.
pub(crate) fn parsed_record(
    rec: &Bound<'_, PyAny>,
    index: usize,
) -> PyResult<Result<event::RecordData, ParsedFailure>> {
    match frompy::record_from_py(rec) {
        Ok(data) => Ok(Ok(data)),
        Err(Fail::Py(e)) => Err(e),
        Err(Fail::Decode(e)) => {
            let (event_id, sequence_number) = frompy::salvage_ids(rec);
            Ok(Err(ParsedFailure {
                message: e.within_index(index).within_key("Records").to_string(),
                event_id,
                sequence_number,
            }))
        }
    }
}

fn from_py(
    py: Python<'_>,
    event: &Bound<'_, PyAny>,
    numbers: Numbers,
    errors: Errors,
) -> PyResult<Py<PyList>> {
    let items = parsed_records(event)?;
    let mut out = Vec::with_capacity(items.len());
    let keys = Arc::new(KeyCache::default());
    for (index, rec) in items.iter().enumerate() {
        match parsed_record(rec, index)? {
            Ok(data) => {
                let raw = RawText::Py(rec.clone().unbind());
                let r = StreamRecord::from_data(index, data, numbers, raw, Some(Arc::clone(&keys)));
                out.push(Py::new(py, r)?.into_any());
            }
            Err(f) => {
                if errors == Errors::Raise {
                    return Err(DecodeError::new_err(f.message));
                }
                let raw = record::dump_json(rec)?;
                out.push(record_error(
                    py,
                    index,
                    f.message,
                    f.event_id,
                    f.sequence_number,
                    raw,
                )?);
            }
        }
    }
    Ok(PyList::new(py, out)?.unbind())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<StreamRecord>()?;
    m.add_class::<RecordError>()?;
    m.add_function(wrap_pyfunction!(deserialize_value, m)?)?;
    m.add_function(wrap_pyfunction!(deserialize_image, m)?)?;
    m.add_function(wrap_pyfunction!(serialize_value, m)?)?;
    m.add_function(wrap_pyfunction!(serialize_image, m)?)?;
    m.add_function(wrap_pyfunction!(decode_stream_event, m)?)?;
    m.add_function(wrap_pyfunction!(decode_kinesis_event, m)?)?;
    Ok(())
}
