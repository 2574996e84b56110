//! The Python face: `TemplateSet` and `Rendered`.
//!
//! Contexts from Python are converted under the GIL, then rendering runs with
//! the GIL released. Stream records are rendered straight from their decoded
//! images: no Python object is built for them.
use std::path::PathBuf;

use minijinja::value::Value;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::error::{TplError, TplResult};
use super::image::RecordContext;
use super::pyconv::{context_to_value, SmallMap};
use super::set::{RenderedParts, TemplateSet};
use crate::ddb::StreamRecord;

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
        let ctx = context_to_value(context).map_err(|e| e.for_template(name).to_pyerr(py))?;
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
        for item in contexts.try_iter()? {
            ctxs.push(context_to_value(&item?));
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

    #[pyo3(signature = (records, names, locales = None))]
    fn render_records(
        &self,
        py: Python<'_>,
        records: &Bound<'_, PyAny>,
        names: &Bound<'_, PyAny>,
        locales: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyList>> {
        let names = names_arg(names)?;
        let locales = locales_arg(locales)?;
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
        let results = py.allow_threads(|| {
            recs.iter()
                .enumerate()
                .map(|(i, rec)| {
                    let name = names.get(i).map(String::as_str).unwrap_or("");
                    let locale = locales.get(i).and_then(|l| l.as_deref());
                    let ctx = record_context(rec.get());
                    self.set.render(name, locale, &ctx)
                })
                .collect::<Vec<_>>()
        });
        drop(recs);
        result_list(py, results)
    }

    fn __repr__(&self) -> String {
        format!(
            "TemplateSet({:?}, names={:?})",
            self.set.directory().display().to_string(),
            self.set.names().collect::<Vec<_>>()
        )
    }
}

/// The template context of a stream record: the new image (the old image
/// for REMOVE records) as top-level names, plus `event`.
pub fn record_context(rec: &StreamRecord) -> Value {
    let mut event = SmallMap::with_capacity(4);
    event.insert("name", Value::from(rec.event_name.as_str()));
    event.insert("id", Value::from(rec.event_id.as_str()));
    event.insert("sequence_number", Value::from(rec.sequence_number.as_str()));
    event.insert(
        "approximate_creation_time",
        rec.approximate_creation_time
            .map_or(Value::from(()), Value::from),
    );
    let image = rec.new_image_map().or(rec.old_image_map()).cloned();
    Value::from_object(RecordContext::new(image, Value::from_object(event)))
}
