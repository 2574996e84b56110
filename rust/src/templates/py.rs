//! The Python face: `TemplateSet` and `Rendered`.
//!
//! Contexts from Python are converted under the GIL, then rendering runs with
//! the GIL released. Stream records are rendered straight from their decoded
//! images: no Python object is built for them.
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::Value;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyMapping, PyString};

use super::error::{TplError, TplResult};
use super::image::RecordContext;
use super::pyconv::{context_to_value, SmallMap};
use super::set::{RenderedParts, TemplateSet};
use crate::ddb::event::{decode_event_for_render, RecordData};
use crate::ddb::{self, kinesis, AttrValue, Map, StreamRecord};
use crate::errors::DecodeError;

/// One rendered notification: subject, plain text and (optional) HTML.
#[pyclass(frozen, eq, hash, module = "notifier._core")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rendered {
    /// The subject line (no CR/LF); empty for templates without `subject.txt`.
    #[pyo3(get)]
    pub subject: String,
    /// The plain-text body.
    #[pyo3(get)]
    pub text: String,
    /// The HTML body, or None when the template has no `body.html`.
    #[pyo3(get)]
    pub html: Option<String>,
}

#[pymethods]
impl Rendered {
    #[new]
    #[pyo3(signature = (subject, text, html = None))]
    fn new(subject: String, text: String, html: Option<String>) -> Self {
        Rendered {
            subject,
            text,
            html,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Rendered(subject={:?}, text=<{} chars>, html={})",
            self.subject,
            self.text.chars().count(),
            match &self.html {
                Some(h) => format!("<{} chars>", h.chars().count()),
                None => "None".into(),
            }
        )
    }
}

impl From<RenderedParts> for Rendered {
    fn from(p: RenderedParts) -> Self {
        Rendered {
            subject: p.subject,
            text: p.text,
            html: p.html,
        }
    }
}

/// A per-call argument given once for all items or once per item.
enum PerItem<T> {
    All(T),
    Each(Vec<T>),
}

impl<T> PerItem<T> {
    fn get(&self, i: usize) -> Option<&T> {
        match self {
            PerItem::All(v) => Some(v),
            PerItem::Each(v) => v.get(i),
        }
    }

    fn check_len(&self, what: &str, n: usize) -> PyResult<()> {
        match self {
            PerItem::Each(v) if v.len() != n => Err(PyValueError::new_err(format!(
                "{what} has {} items for {n} contexts/records (give one per item, or a single str)",
                v.len()
            ))),
            _ => Ok(()),
        }
    }
}

fn names_arg(names: &Bound<'_, PyAny>) -> PyResult<PerItem<String>> {
    if let Ok(s) = names.downcast::<PyString>() {
        return Ok(PerItem::All(s.to_str()?.to_string()));
    }
    let mut out = Vec::new();
    for item in names.try_iter()? {
        out.push(item?.extract::<String>()?);
    }
    Ok(PerItem::Each(out))
}

fn locales_arg(locales: Option<&Bound<'_, PyAny>>) -> PyResult<PerItem<Option<String>>> {
    let Some(locales) = locales else {
        return Ok(PerItem::All(None));
    };
    if locales.is_none() {
        return Ok(PerItem::All(None));
    }
    if let Ok(s) = locales.downcast::<PyString>() {
        return Ok(PerItem::All(Some(s.to_str()?.to_string())));
    }
    let mut out = Vec::new();
    for item in locales.try_iter()? {
        out.push(item?.extract::<Option<String>>()?);
    }
    Ok(PerItem::Each(out))
}

/// Per-record `notification` maps: None, or one (None | {str: str}) per record.
type Notifications = Option<Vec<Option<Vec<(String, String)>>>>;

fn notifications_arg(arg: Option<&Bound<'_, PyAny>>) -> PyResult<Notifications> {
    let Some(arg) = arg else { return Ok(None) };
    if arg.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (i, item) in arg.try_iter()?.enumerate() {
        let item = item?;
        if item.is_none() {
            out.push(None);
            continue;
        }
        let map = item.downcast::<pyo3::types::PyDict>().map_err(|_| {
            PyTypeError::new_err(format!("notifications[{i}] must be a dict of str or None"))
        })?;
        let mut pairs = Vec::with_capacity(map.len());
        for (k, v) in map.iter() {
            let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
                return Err(PyTypeError::new_err(format!(
                    "notifications[{i}] must map str to str"
                )));
            };
            pairs.push((k, v));
        }
        out.push(Some(pairs));
    }
    Ok(Some(out))
}

fn result_list(py: Python<'_>, results: Vec<TplResult<RenderedParts>>) -> PyResult<Py<PyList>> {
    let mut out: Vec<PyObject> = Vec::with_capacity(results.len());
    for r in results {
        out.push(match r {
            Ok(parts) => Py::new(py, Rendered::from(parts))?.into_any(),
            Err(e) => e.to_pyerr(py).into_value(py).into_any(),
        });
    }
    Ok(PyList::new(py, out)?.unbind())
}

/// Templates loaded from a directory and compiled once.
#[pyclass(frozen, module = "notifier._core", name = "TemplateSet")]
pub struct PyTemplateSet {
    set: TemplateSet,
}

#[pymethods]
impl PyTemplateSet {
    #[new]
    fn new(py: Python<'_>, directory: PathBuf) -> PyResult<Self> {
        let set = py
            .allow_threads(|| TemplateSet::load(&directory))
            .map_err(|e| e.to_pyerr(py))?;
        Ok(PyTemplateSet { set })
    }

    /// The directory the set was loaded from.
    #[getter]
    fn directory(&self) -> PathBuf {
        self.set.directory().to_path_buf()
    }

    /// Template names, sorted.
    #[getter]
    fn names(&self) -> Vec<String> {
        self.set.names().map(str::to_string).collect()
    }

    /// Locale folders of template `name`, as named on disk, sorted.
    fn locales(&self, py: Python<'_>, name: &str) -> PyResult<Vec<String>> {
        self.set.locales(name).map_err(|e| e.to_pyerr(py))
    }

    /// The files that render `name` in `locale`: (subject, text, html).
    #[pyo3(signature = (name, *, locale = None))]
    fn files(
        &self,
        py: Python<'_>,
        name: &str,
        locale: Option<&str>,
    ) -> PyResult<(Option<String>, String, Option<String>)> {
        let parts = self.set.parts(name, locale).map_err(|e| e.to_pyerr(py))?;
        Ok((
            parts.subject.clone(),
            parts.text.clone(),
            parts.html.clone(),
        ))
    }

    #[pyo3(signature = (name, context, *, locale = None))]
    fn render(
        &self,
        py: Python<'_>,
        name: &str,
        context: &Bound<'_, PyAny>,
        locale: Option<&str>,
    ) -> PyResult<Rendered> {
        let reads = self.set.reads(name, locale);
        let ctx = context_to_value(context, reads.as_deref())
            .map_err(|e| e.for_template(name).to_pyerr(py))?;
        py.allow_threads(|| self.set.render(name, locale, &ctx))
            .map(Rendered::from)
            .map_err(|e| e.to_pyerr(py))
    }

    #[pyo3(signature = (names, contexts, locales = None))]
    fn render_many(
        &self,
        py: Python<'_>,
        names: &Bound<'_, PyAny>,
        contexts: &Bound<'_, PyAny>,
        locales: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyList>> {
        let names = names_arg(names)?;
        let locales = locales_arg(locales)?;
        let mut ctxs: Vec<Result<Value, TplError>> = Vec::new();
        for (i, item) in contexts.try_iter()?.enumerate() {
            let name = names.get(i).map_or("", String::as_str);
            let reads = self
                .set
                .reads(name, locales.get(i).and_then(|l| l.as_deref()));
            ctxs.push(context_to_value(&item?, reads.as_deref()));
        }
        names.check_len("names", ctxs.len())?;
        locales.check_len("locales", ctxs.len())?;
        let results = py.allow_threads(|| {
            ctxs.into_iter()
                .enumerate()
                .map(|(i, ctx)| {
                    let name = names.get(i).map(String::as_str).unwrap_or("");
                    let locale = locales.get(i).and_then(|l| l.as_deref());
                    ctx.map_err(|e| e.for_template(name))
                        .and_then(|ctx| self.set.render(name, locale, &ctx))
                })
                .collect::<Vec<_>>()
        });
        result_list(py, results)
    }

    #[pyo3(signature = (records, names, locales = None, *, notifications = None))]
    fn render_records(
        &self,
        py: Python<'_>,
        records: &Bound<'_, PyAny>,
        names: &Bound<'_, PyAny>,
        locales: Option<&Bound<'_, PyAny>>,
        notifications: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyList>> {
        let names = names_arg(names)?;
        let locales = locales_arg(locales)?;
        let notifications = notifications_arg(notifications)?;
        let mut recs: Vec<Py<StreamRecord>> = Vec::new();
        for (i, item) in records.try_iter()?.enumerate() {
            let item = item?;
            let rec = item.downcast::<StreamRecord>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "records[{i}] is a {}, not a StreamRecord",
                    item.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            recs.push(rec.clone().unbind());
        }
        names.check_len("names", recs.len())?;
        locales.check_len("locales", recs.len())?;
        if let Some(n) = &notifications {
            if n.len() != recs.len() {
                return Err(PyValueError::new_err(format!(
                    "notifications has {} items for {} records (give one per record, None for none)",
                    n.len(),
                    recs.len()
                )));
            }
        }
        let results = py.allow_threads(|| {
            recs.iter()
                .enumerate()
                .map(|(i, rec)| {
                    let name = names.get(i).map(String::as_str).unwrap_or("");
                    let locale = locales.get(i).and_then(|l| l.as_deref());
                    let extra = notifications
                        .as_ref()
                        .and_then(|n| n.get(i))
                        .and_then(|x| x.as_deref());
                    let ctx = record_context_with(rec.get(), extra);
                    self.set.render(name, locale, &ctx)
                })
                .collect::<Vec<_>>()
        });
        drop(recs);
        result_list(py, results)
    }

    /// Decode a raw stream event (DynamoDB Streams, or Kinesis Data Streams for
    /// DynamoDB) and render every record, in one call with the GIL released.
    #[pyo3(
        signature = (event, names = None, *, route = "event_type", locale = Some("user.locale"), source = "auto"),
        text_signature = "(self, /, event, names=None, *, route='event_type', locale='user.locale', source='auto')"
    )]
    fn render_event(
        &self,
        py: Python<'_>,
        event: &Bound<'_, PyAny>,
        names: Option<&Bound<'_, PyAny>>,
        route: &str,
        locale: Option<&str>,
        source: &str,
    ) -> PyResult<Py<PyList>> {
        let names = Names::from_arg(names)?;
        let kinesis = kinesis::kinesis_source(source)?;
        let how = Routing {
            names: &names,
            route,
            locale,
        };
        ddb::guard(|| {
            let outcomes = match ddb::event_text(event) {
                Some(text) => {
                    let text = text.map_err(|e| DecodeError::new_err(e.to_string()))?;
                    let text: &str = &text;
                    let kinesis = kinesis.unwrap_or_else(|| kinesis::is_kinesis_text(text));
                    let outcomes = py
                        .allow_threads(|| {
                            let decoded: Vec<_> = if kinesis {
                                let mut inner = kinesis::inner_for_render();
                                kinesis::decode_kinesis_using(text, false, &mut inner)?
                                    .records
                                    .into_iter()
                                    .map(|rec| (rec.raw, rec.result))
                                    .collect()
                            } else {
                                decode_event_for_render(text, false)?
                                    .into_iter()
                                    .map(|rec| (rec.raw, rec.result))
                                    .collect()
                            };
                            Ok(decoded
                                .into_iter()
                                .enumerate()
                                .map(|(index, (raw, result))| match result {
                                    Ok(data) => self.render_data(data, &how),
                                    Err(f) => Outcome::Failed {
                                        index,
                                        message: f.error.to_string(),
                                        event_id: f.event_id,
                                        sequence_number: f.sequence_number,
                                        raw: FailedRaw::Range(raw),
                                    },
                                })
                                .collect::<Vec<_>>())
                        })
                        .map_err(|e: ddb::DecodeErr| DecodeError::new_err(e.to_string()))?;
                    return self.outcome_list(py, outcomes, Some(text));
                }
                None => {
                    let kinesis = match kinesis {
                        Some(k) => k,
                        None => kinesis::is_kinesis_parsed(event)?,
                    };
                    let records = ddb::parsed_records(event)?;
                    let failed = |index: usize, message, event_id, sequence_number| {
                        let rec = records.get(index).ok_or_else(|| {
                            DecodeError::new_err("internal error in render_event (please report)")
                        })?;
                        Ok::<_, PyErr>(Outcome::Failed {
                            index,
                            message,
                            event_id,
                            sequence_number,
                            raw: FailedRaw::Py(crate::ddb::record::dump_json(rec)?.unbind()),
                        })
                    };
                    let mut data = Vec::with_capacity(records.len());
                    if kinesis {
                        let outers = kinesis::parsed_outers(&records)?;
                        let batch = py.allow_threads(|| {
                            let mut inner = kinesis::inner_for_render();
                            kinesis::decode_items(outers, false, &mut inner)
                        });
                        for (index, rec) in batch.records.into_iter().enumerate() {
                            data.push(match rec.result {
                                Ok(d) => Ok(d),
                                Err(f) => Err(failed(
                                    index,
                                    f.error.to_string(),
                                    f.event_id,
                                    f.sequence_number,
                                )?),
                            });
                        }
                    } else {
                        for (index, rec) in records.iter().enumerate() {
                            data.push(match ddb::parsed_record(rec, index)? {
                                Ok(d) => Ok(d),
                                Err(f) => {
                                    Err(failed(index, f.message, f.event_id, f.sequence_number)?)
                                }
                            });
                        }
                    }
                    py.allow_threads(|| {
                        data.into_iter()
                            .map(|d| match d {
                                Ok(d) => self.render_data(d, &how),
                                Err(failed) => failed,
                            })
                            .collect::<Vec<_>>()
                    })
                }
            };
            self.outcome_list(py, outcomes, None)
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "TemplateSet({:?}, names={:?})",
            self.set.directory().display().to_string(),
            self.set.names().collect::<Vec<_>>()
        )
    }
}

/// How `render_event` picks each record's template and locale.
enum Names {
    /// One template for every record.
    One(String),
    /// The template for each value of the route attribute; others are skipped.
    ByRoute(HashMap<String, String>),
    /// The template named by the route attribute's value.
    RouteValue,
}

impl Names {
    fn from_arg(names: Option<&Bound<'_, PyAny>>) -> PyResult<Names> {
        let Some(names) = names.filter(|n| !n.is_none()) else {
            return Ok(Names::RouteValue);
        };
        if let Ok(s) = names.downcast::<PyString>() {
            return Ok(Names::One(s.to_str()?.to_string()));
        }
        let mapping = names.downcast::<PyMapping>().map_err(|_| {
            PyTypeError::new_err(
                "names must be a template name, a mapping of route values to template names, or None",
            )
        })?;
        let mut out = HashMap::new();
        for item in mapping.items()?.iter() {
            let (k, v): (String, String) = item.extract()?;
            out.insert(k, v);
        }
        Ok(Names::ByRoute(out))
    }
}

struct Routing<'a> {
    names: &'a Names,
    /// Dotted path of the attribute that selects the template.
    route: &'a str,
    /// Dotted path of the attribute that holds the locale.
    locale: Option<&'a str>,
}

/// The text of a string or number attribute (what routing keys and locales are).
fn attr_text(v: &AttrValue) -> Option<&str> {
    match v {
        AttrValue::S(s) => Some(s.as_str()),
        AttrValue::N(n) => Some(n.as_str()),
        _ => None,
    }
}

/// Where a failed record's text comes from.
enum FailedRaw {
    Range(Range<usize>),
    Py(Py<PyString>),
}

/// What `render_event` gives for one record.
enum Outcome {
    Done(TplResult<RenderedParts>),
    /// No template for this record (no or unmapped route value).
    Unrouted,
    /// The record did not decode.
    Failed {
        index: usize,
        message: String,
        event_id: Option<String>,
        sequence_number: Option<String>,
        raw: FailedRaw,
    },
}

impl PyTemplateSet {
    fn render_data(&self, data: RecordData, how: &Routing<'_>) -> Outcome {
        let image = data.new_image.or(data.old_image).map(Arc::new);
        let attr = |path: &str| {
            image
                .as_deref()
                .and_then(|m| AttrValue::get_path(m, path))
                .and_then(attr_text)
        };
        let name: Cow<'_, str> = match how.names {
            Names::One(n) => Cow::Borrowed(n.as_str()),
            Names::ByRoute(m) => match attr(how.route).and_then(|v| m.get(v)) {
                Some(n) => Cow::Borrowed(n.as_str()),
                None => return Outcome::Unrouted,
            },
            Names::RouteValue => match attr(how.route) {
                Some(v) => Cow::Owned(v.to_string()),
                None => return Outcome::Unrouted,
            },
        };
        let locale = how.locale.and_then(attr).map(str::to_string);
        let ctx = context_value(
            &data.event_name,
            &data.event_id,
            &data.sequence_number,
            data.approximate_creation_time,
            image,
        );
        Outcome::Done(self.set.render(&name, locale.as_deref(), &ctx))
    }

    fn outcome_list(
        &self,
        py: Python<'_>,
        outcomes: Vec<Outcome>,
        text: Option<&str>,
    ) -> PyResult<Py<PyList>> {
        let mut out: Vec<PyObject> = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            out.push(match o {
                Outcome::Done(Ok(parts)) => Py::new(py, Rendered::from(parts))?.into_any(),
                Outcome::Done(Err(e)) => e.to_pyerr(py).into_value(py).into_any(),
                Outcome::Unrouted => py.None(),
                Outcome::Failed {
                    index,
                    message,
                    event_id,
                    sequence_number,
                    raw,
                } => {
                    let raw = match raw {
                        FailedRaw::Range(r) => {
                            PyString::new(py, text.and_then(|t| t.get(r)).unwrap_or_default())
                        }
                        FailedRaw::Py(s) => s.into_bound(py),
                    };
                    ddb::record_error(py, index, message, event_id, sequence_number, raw)?
                }
            });
        }
        Ok(PyList::new(py, out)?.unbind())
    }
}

/// The template context of a stream record: the new image (the old image
/// for REMOVE records) as top-level names, plus `event`.
pub fn record_context(rec: &StreamRecord) -> Value {
    record_context_with(rec, None)
}

/// A record's context with the pipeline's `notification` map.
pub fn record_context_with(rec: &StreamRecord, notification: Option<&[(String, String)]>) -> Value {
    let mut event = SmallMap::with_capacity(4);
    event.insert("name", Value::from(rec.event_name.as_str()));
    event.insert("id", Value::from(rec.event_id.as_str()));
    event.insert("sequence_number", Value::from(rec.sequence_number.as_str()));
    event.insert(
        "approximate_creation_time",
        rec.approximate_creation_time
            .map_or(Value::from(()), Value::from),
    );
    let ctx = RecordContext::new(rec.image_map().cloned(), Value::from_object(event));
    match notification {
        Some(items) => Value::from_object(ctx.with_notification(items)),
        None => Value::from_object(ctx),
    }
}

fn context_value(
    event_name: &str,
    event_id: &str,
    sequence_number: &str,
    approximate_creation_time: Option<f64>,
    image: Option<Arc<Map>>,
) -> Value {
    let mut event = SmallMap::with_capacity(4);
    event.insert("name", Value::from(event_name));
    event.insert("id", Value::from(event_id));
    event.insert("sequence_number", Value::from(sequence_number));
    event.insert(
        "approximate_creation_time",
        approximate_creation_time.map_or(Value::from(()), Value::from),
    );
    Value::from_object(RecordContext::new(image, Value::from_object(event)))
}
