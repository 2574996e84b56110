//! Template errors: one internal type, converted to `TemplateError` at the
//! Python boundary with `template`, `file` and `line` attributes attached.
use std::fmt;

use pyo3::prelude::*;

use crate::errors::TemplateError;

/// A load, compile, context or render problem, located as precisely as known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TplError {
    /// What went wrong, without the location (that is added by `Display`).
    pub problem: String,
    /// The template name (`friend_request`), when the problem belongs to one.
    pub template: Option<String>,
    /// The file, relative to the template set's directory (`friend_request/de/body.txt`).
    pub file: Option<String>,
    /// 1-based line in `file`.
    pub line: Option<usize>,
}

impl TplError {
    pub fn new(problem: impl Into<String>) -> Self {
        TplError {
            problem: problem.into(),
            template: None,
            file: None,
            line: None,
        }
    }

    pub fn in_file(mut self, file: impl Into<String>, line: Option<usize>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self
    }

    pub fn for_template(mut self, template: impl Into<String>) -> Self {
        self.template = Some(template.into());
        self
    }

    /// Describe a MiniJinja error. `source_of` returns a loaded file's source,
    /// used to quote the failing expression (e.g. the undefined variable).
    pub fn from_minijinja<'a>(
        err: &minijinja::Error,
        source_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Self {
        let mut problem = err.kind().to_string();
        if let Some(detail) = err.detail() {
            problem.push_str(": ");
            problem.push_str(detail);
        }
        let quoted = err
            .name()
            .and_then(&source_of)
            .zip(err.range())
            .and_then(|(src, range)| src.get(widen(src, range)))
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && s.len() <= 200);
        if let Some(expr) = quoted {
            problem.push_str(&format!(" in `{expr}`"));
        }
        // Errors raised inside filters or included templates keep the inner
        // error as their source; name it too.
        let mut cause = std::error::Error::source(err);
        while let Some(inner) = cause {
            problem.push_str(&format!(" (caused by: {inner})"));
            cause = inner.source();
        }
        TplError {
            problem,
            template: None,
            file: err.name().map(str::to_string),
            line: err.line(),
        }
    }

    /// The Python `TemplateError` instance for this error.
    pub fn to_pyerr(&self, py: Python<'_>) -> PyErr {
        let err = TemplateError::new_err(self.to_string());
        let value = err.value(py);
        // Attribute assignment on a fresh exception instance cannot fail in
        // practice; if it does, the message still carries the location.
        let _ = value.setattr("template", self.template.as_deref());
        let _ = value.setattr("file", self.file.as_deref());
        let _ = value.setattr("line", self.line);
        err
    }
}

impl fmt::Display for TplError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.template {
            write!(f, "template {t:?}: ")?;
        }
        f.write_str(&self.problem)?;
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}, line {line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for TplError {}

pub type TplResult<T> = Result<T, TplError>;

/// Widen an error span to the whole dotted name around it: MiniJinja points at
/// the failing attribute access (`.job.title`), a reader wants `data.job.title`.
fn widen(src: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let head = src.get(..range.start).unwrap_or("");
    let start = head
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_name(c))
        .last()
        .map_or(range.start, |(i, _)| i);
    let tail = src.get(range.end..).unwrap_or("");
    let end = range.end
        + tail
            .char_indices()
            .take_while(|&(_, c)| c.is_alphanumeric() || c == '_')
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
    start..end
}

#[cfg(test)]
mod tests {
    use super::widen;

    #[test]
    fn spans_widen_to_the_dotted_name() {
        let src = "{{ data.job.title }} x";
        let at = src.find(".job").unwrap();
        let r = widen(src, at..at + 10);
        assert_eq!(&src[r], "data.job.title");
        let src = "{{ user.nmae }}";
        assert_eq!(&src[widen(src, 3..12)], "user.nmae");
        assert_eq!(widen("", 0..0), 0..0);
    }
}
