//! Kinesis events (see [`super::kinesis`]) to `StreamRecord`s and `RecordError`s.
//!
//! A decoded record's `raw` is its change record's JSON (the decoded `data`
//! payload), which its images' spans point into; a `RecordError`'s `raw` is the
//! Kinesis record as received (its `data` may not even be base64).
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::error::DecodeErr;
use super::event::RecordFailure;
use super::fast::{self, Want};
use super::frompy::{field, str_field, Fail};
use super::kinesis::{self, accepts, start_of, InnerFn, KinesisBatch, Outer};
use super::record::{self as rec, RawText};
use super::text::EventText;
use super::topy::{GcPause, KeyCache, Numbers, ToPy};
use super::{parsed_records, record_error, Errors, Images, StreamRecord};
use crate::errors::DecodeError;

type Dicts<'py> = [Option<Bound<'py, PyDict>>; 2];
/// What a decoding pass gives: its result, the Python images built (by record
/// index) and the GC pause to hold until the records are built.
type Pass<'py, R> = (R, Vec<(usize, Dicts<'py>)>, Option<GcPause>);

fn internal<T>(_: T) -> PyErr {
    DecodeError::new_err("internal error in the DynamoDB decoder (please report)")
}

/// What `source` (`"auto"`, `"dynamodb"` or `"kinesis"`, as `decode_stream_event`
/// takes it) says of an event: `Some(true)` a Kinesis event, `Some(false)` a
/// DynamoDB Streams event, `None` told by the event (its first `eventSource`).
pub(crate) fn kinesis_source(source: &str) -> PyResult<Option<bool>> {
    match source {
        "auto" => Ok(None),
        "dynamodb" => Ok(Some(false)),
        "kinesis" => Ok(Some(true)),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "source must be \"auto\", \"dynamodb\" or \"kinesis\", not {other:?}"
        ))),
    }
}

/// Whether a parsed event is a Kinesis event: its first record's `eventSource`
/// is `"aws:kinesis"`.
pub(crate) fn is_kinesis_parsed(event: &Bound<'_, PyAny>) -> PyResult<bool> {
    let Ok(records) = parsed_records(event) else {
        return Ok(false); // the streams path reports the envelope
    };
    let Some(first) = records.first() else {
        return Ok(false);
    };
    Ok(matches!(
        str_field(first, "eventSource"),
        Ok(Some(s)) if s == "aws:kinesis"
    ))
}

/// Run `decode` with the one-pass payload decoder `images` asks for; the
/// Python images it built (`images="python"`), by record index, and the GC
/// pause to hold until the records are built.
fn with_inner<'py, R>(
    py: Python<'py>,
    numbers: Numbers,
    images: Images,
    keys: &KeyCache,
    decode: impl FnOnce(&mut InnerFn<'_>) -> R,
) -> PyResult<Pass<'py, R>> {
    let mut built = Vec::new();
    match images {
        Images::Python => {
            let mut shared = keys.0.try_lock().ok();
            let mut out = ToPy::new(py, numbers)?.with_keys(shared.as_deref_mut());
            let gc = GcPause::new(py);
            let r = catch_unwind(AssertUnwindSafe(|| {
                decode(&mut |index, text: &str, range, seq| {
                    let start = start_of(text, &range);
                    let (data, dicts, end) =
                        fast::record_py_with(text, start, &mut out, Some(seq))?;
                    if !accepts(text, &range, end) {
                        return None;
                    }
                    built.push((index, dicts));
                    Some(data)
                })
            }))
            .map_err(internal)?;
            Ok((r, built, Some(gc)))
        }
        _ => {
            let want = if images == Images::Lazy {
                Want::Spans
            } else {
                Want::Trees
            };
            let r = catch_unwind(AssertUnwindSafe(|| decode(&mut kinesis::inner_fast(want))))
                .map_err(internal)?;
            Ok((r, built, None))
        }
    }
}

/// A raw Kinesis event's text to records.
pub(super) fn from_text(
    py: Python<'_>,
    text: Arc<EventText>,
    numbers: Numbers,
    errors: Errors,
    images: Images,
) -> PyResult<Py<PyList>> {
    let stop = errors == Errors::Raise;
    let keys = Arc::new(KeyCache::default());
    let (decoded, built, _gc) = if images == Images::Python {
        with_inner(py, numbers, images, &keys, |inner| {
            kinesis::decode_kinesis_using(text.as_str(), stop, inner)
        })?
    } else {
        // Trees or spans: no Python objects, so the GIL is released.
        let t = Arc::clone(&text);
        let want = if images == Images::Lazy {
            Want::Spans
        } else {
            Want::Trees
        };
        let r = py
            .allow_threads(move || {
                catch_unwind(AssertUnwindSafe(|| {
                    kinesis::decode_kinesis_using(t.as_str(), stop, &mut kinesis::inner_fast(want))
                }))
            })
            .map_err(internal)?;
        (r, Vec::new(), None)
    };
    let batch = decoded.map_err(|e| DecodeError::new_err(e.to_string()))?;
    let raws: Vec<_> = batch.records.iter().map(|r| r.raw.clone()).collect();
    let raw_of = |py: Python<'_>, index: usize| -> PyResult<Py<PyString>> {
        let range = raws.get(index).cloned().unwrap_or(0..0);
        Ok(PyString::new(py, text.as_str().get(range).unwrap_or("")).unbind())
    };
    build(py, batch, built, numbers, errors, &keys, &raw_of)
}

/// The envelope fields of a parsed Kinesis record (path relative to the record).
fn outer_from_py(rec: &Bound<'_, PyAny>) -> Result<Outer<'static>, Fail> {
    let kinesis = field(rec, "kinesis")?
        .ok_or_else(|| Fail::Decode(DecodeErr::new("missing required field \"kinesis\"")))?;
    let in_kinesis = |e: Fail| e.within_key("kinesis");
    Ok(Outer {
        sequence_number: str_field(&kinesis, "sequenceNumber").map_err(in_kinesis)?,
        data: str_field(&kinesis, "data")
            .map_err(in_kinesis)?
            .map(std::borrow::Cow::Owned),
        event_source_arn: str_field(rec, "eventSourceARN")?,
        aws_region: str_field(rec, "awsRegion")?,
    })
}

/// The envelope fields of a parsed Kinesis event's records (`Records`), or
/// each one's failure (`Err` only for a Python error reading them).
pub(crate) fn parsed_outers(
    items: &[Bound<'_, PyAny>],
) -> PyResult<Vec<Result<Outer<'static>, RecordFailure>>> {
    let mut outers = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        outers.push(match outer_from_py(item) {
            Ok(o) => Ok(o),
            Err(Fail::Py(e)) => return Err(e),
            Err(Fail::Decode(e)) => {
                let sequence_number = field(item, "kinesis")
                    .ok()
                    .flatten()
                    .and_then(|k| str_field(&k, "sequenceNumber").ok().flatten());
                Err(RecordFailure {
                    error: e.within_index(index).within_key("Records"),
                    event_id: None,
                    sequence_number,
                })
            }
        });
    }
    Ok(outers)
}

/// A parsed Kinesis event (`{"Records": [...]}` as Python objects) to records.
pub(super) fn from_py(
    py: Python<'_>,
    event: &Bound<'_, PyAny>,
    numbers: Numbers,
    errors: Errors,
    images: Images,
) -> PyResult<Py<PyList>> {
    let items = parsed_records(event)?;
    let stop = errors == Errors::Raise;
    let outers = parsed_outers(&items)?;
    let keys = Arc::new(KeyCache::default());
    let (batch, built, _gc) = with_inner(py, numbers, images, &keys, |inner| {
        kinesis::decode_items(outers, stop, inner)
    })?;
    let raw_of = |py: Python<'_>, index: usize| -> PyResult<Py<PyString>> {
        match items.get(index) {
            Some(item) => Ok(rec::dump_json(item)?.unbind()),
            None => Ok(PyString::new(py, "").unbind()),
        }
    };
    build(py, batch, built, numbers, errors, &keys, &raw_of)
}

/// The list of `StreamRecord`s (and `RecordError`s, `errors="collect"`).
fn build<'py>(
    py: Python<'py>,
    batch: KinesisBatch,
    built: Vec<(usize, Dicts<'py>)>,
    numbers: Numbers,
    errors: Errors,
    keys: &Arc<KeyCache>,
    raw_of: &dyn Fn(Python<'py>, usize) -> PyResult<Py<PyString>>,
) -> PyResult<Py<PyList>> {
    // The change records' text, shared by every record of the batch (their
    // `raw` and image spans are ranges of it).
    let text = Arc::new(EventText::owned(batch.text));
    let mut out = Vec::with_capacity(batch.records.len());
    let mut built = built.into_iter().peekable();
    for (index, rec) in batch.records.into_iter().enumerate() {
        while built.next_if(|(i, _)| *i < index).is_some() {}
        let dicts = built.next_if(|(i, _)| *i == index).map(|(_, d)| d);
        match rec.result {
            Ok(data) => {
                let raw = RawText::Slice {
                    buf: Arc::clone(&text),
                    range: rec.payload.unwrap_or(0..0),
                };
                let r = StreamRecord::from_data(index, data, numbers, raw, Some(Arc::clone(keys)));
                if let Some([new, old]) = dicts {
                    r.set_python_images(py, new, old);
                }
                out.push(Py::new(py, r)?.into_any());
            }
            Err(f) => {
                if errors == Errors::Raise {
                    return Err(DecodeError::new_err(f.error.to_string()));
                }
                let raw = raw_of(py, index)?.into_bound(py);
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
