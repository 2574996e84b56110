//! A template set: a directory of templates, loaded and compiled once.
//!
//! Layout (names are paths relative to the directory, `/`-separated):
//!
//! ```text
//! friend_request/subject.txt      optional (email: subject "" without it)
//! friend_request/body.txt         the email body (required unless the folder has variants)
//! friend_request/body.html        optional (HTML-escaped automatically)
//! friend_request/sms.txt          a channel variant: template "friend_request:sms"
//! friend_request/push.json        a channel variant: "friend_request:push" (JSON-escaped)
//! friend_request/de/subject.txt   per-locale overrides, each file optional
//! friend_request/_parts/x.html    `_` folders inside a template: includable partials
//! _layouts/base.html              `_` folders at the top: shared layouts and macros
//! ```
//!
//! A channel variant is any other `NAME/<variant>.txt` or `NAME/<variant>.json` next to the
//! email parts: it renders as template `NAME:<variant>` into the text part (no subject, no
//! HTML). In `.json` files every `{{ expr }}` prints a JSON literal (strings quoted and
//! escaped), so a value can never break the document.
//!
//! Each part falls back on its own: for locale `de-AT` the renderer uses
//! `de-AT/body.txt`, else `de/body.txt`, else `body.txt`. Locale folder names
//! and requested locales are matched case-insensitively, `_` and `-` alike.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::error::{TplError, TplResult};
use super::{escape, filters};

/// File extensions loaded as templates.
const TEMPLATE_EXTENSIONS: &[&str] = &["txt", "html", "htm", "xml", "json"];
/// A template's sample context (read by `notifier check` and `preview`), not a template.
const SAMPLE: &str = "sample.json";
/// Directory nesting below the set's root that is scanned.
const MAX_SCAN_DEPTH: usize = 8;

pub const SUBJECT: &str = "subject.txt";
pub const BODY_TEXT: &str = "body.txt";
pub const BODY_HTML: &str = "body.html";

/// The files that render one template in one locale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    /// The top-level context names these files can read (sorted), or `None`
    /// when that cannot be known from their sources (see `context_reads`).
    pub reads: Option<Arc<[String]>>,
}

#[derive(Debug)]
struct LocaleEntry {
    /// The folder name as on disk (`de-AT`).
    tag: String,
    /// Normalized for matching (`de-at`).
    norm: String,
    /// Resolved through the fallback chain at load time.
    parts: Parts,
}

#[derive(Debug)]
struct Entry {
    default: Parts,
    locales: Vec<LocaleEntry>,
}

impl Entry {
    fn resolve(&self, locale: Option<&str>) -> &Parts {
        let Some(locale) = locale else {
            return &self.default;
        };
        let mut want = normalize_locale(locale);
        loop {
            if let Some(l) = self.locales.iter().find(|l| l.norm == want) {
                return &l.parts;
            }
            match want.rfind('-') {
                Some(pos) => want.truncate(pos),
                None => return &self.default,
            }
        }
    }
}

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedParts {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Templates loaded from a directory, compiled once, rendered many times.
pub struct TemplateSet {
    env: Environment<'static>,
    directory: PathBuf,
    sources: HashMap<String, String>,
    templates: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for TemplateSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSet")
            .field("directory", &self.directory)
            .field("names", &self.templates.keys().collect::<Vec<_>>())
            .finish()
    }
}

pub fn normalize_locale(locale: &str) -> String {
    locale.trim().to_ascii_lowercase().replace('_', "-")
}

fn is_locale_tag(name: &str) -> bool {
    let mut parts = name.split(['-', '_']);
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_alphabetic()));
    first_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_alphanumeric()))
}

fn is_template_file(name: &str) -> bool {
    Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TEMPLATE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn escapes_json(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".json")
}

/// `sms` for `sms.txt` / `sms.json`: a channel variant's file name (not an email part).
fn variant_of(file: &str) -> Option<&str> {
    if file == SUBJECT || file == BODY_TEXT || file == BODY_HTML {
        return None;
    }
    let (stem, ext) = file.rsplit_once('.')?;
    let ok = !stem.is_empty()
        && stem
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    (ok && (ext == "txt" || ext == "json")).then_some(stem)
}

fn escapes_html(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".html") || lower.ends_with(".htm") || lower.ends_with(".xml")
}

/// Collect template files below `dir` as (name relative to root, path).
fn scan(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<(String, PathBuf)>) -> TplResult<()> {
    let read_err =
        |e: std::io::Error| TplError::new(format!("cannot read directory {}: {e}", dir.display()));
    let mut entries = fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue; // not UTF-8: cannot be named from a template
        };
        if name.starts_with('.') {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        if path.is_dir() {
            if depth >= MAX_SCAN_DEPTH {
                return Err(TplError::new(format!(
                    "directories nested deeper than {MAX_SCAN_DEPTH} levels"
                ))
                .in_file(rel, None));
            }
            scan(&path, &rel, depth + 1, out)?;
        } else if is_template_file(&name) && name != SAMPLE {
            out.push((rel, path));
        }
    }
    Ok(())
}

/// A `{% extends/include/import/from %}` tag that names its template by a
/// string literal, with its 1-based line.
struct LiteralRef {
    name: String,
    line: usize,
    ignore_missing: bool,
}

/// The template references in `source`: the literal ones, and whether any
/// names its template some other way (a variable, a list, `"a" ~ x`,
/// `"a" if c else "b"`), which no scan of the source can follow.
fn template_refs(source: &str) -> (Vec<LiteralRef>, bool) {
    let mut out = Vec::new();
    let mut dynamic = false;
    let mut rest = source;
    let mut offset = 0;
    while let Some(pos) = rest.find("{%") {
        let tag_start = offset + pos;
        let after = &rest[pos + 2..];
        let body_end = after.find("%}").unwrap_or(after.len());
        let body = after[..body_end]
            .trim_start_matches(['-', '+', '~'])
            .trim_end_matches(['-', '+', '~'])
            .trim();
        let mut words = body.splitn(2, char::is_whitespace);
        let keyword = words.next().unwrap_or("");
        let args = words.next().unwrap_or("").trim_start();
        if matches!(keyword, "extends" | "include" | "import" | "from") {
            let literal = match args.chars().next() {
                Some(q @ ('"' | '\'')) => args[1..]
                    .find(q)
                    .map(|end| (&args[1..1 + end], &args[2 + end..])),
                _ => None,
            };
            match literal {
                // After the name only words may follow (`ignore missing`,
                // `with context`, `as m`, `import a, b as c`): anything else
                // is an expression that may pick another template.
                Some((name, tail))
                    if tail.split([' ', '\t', '\r', '\n', ',']).all(|w| {
                        w.chars().all(|c| c.is_alphanumeric() || c == '_')
                            && !matches!(w, "if" | "else" | "or" | "and" | "not")
                    }) =>
                {
                    out.push(LiteralRef {
                        name: name.to_string(),
                        line: source[..tag_start].matches('\n').count() + 1,
                        ignore_missing: keyword == "include" && tail.contains("ignore missing"),
                    });
                }
                _ => dynamic = true,
            }
        }
        let consumed = pos + 2 + body_end;
        offset += consumed;
        rest = &rest[consumed..];
    }
    (out, dynamic)
}

/// Template names that `{% extends/include/import/from "..." %}` tags in
/// `source` always load, with their 1-based line: a template picked by an
/// expression (`"_p/" ~ kind`) is known only when it renders, and
/// `include ... ignore missing` may find none.
fn referenced_names(source: &str) -> Vec<(String, usize)> {
    template_refs(source)
        .0
        .into_iter()
        .filter(|r| !r.ignore_missing)
        .map(|r| (r.name, r.line))
        .collect()
}

/// The top-level context names that rendering `files` can read: the
/// undeclared variables of every file they extend, include or import, followed
/// through the set. `None` (read anything) when a reference is not a literal or
/// a file calls `debug()` (which prints the whole context).
fn context_reads(
    env: &Environment<'_>,
    sources: &HashMap<String, String>,
    files: &[&str],
) -> Option<Arc<[String]>> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = files.to_vec();
    let mut names: BTreeSet<String> = BTreeSet::new();
    while let Some(file) = todo.pop() {
        if !seen.insert(file) {
            continue;
        }
        // A missing target of `include ... ignore missing` renders nothing.
        let Some((file, source)) = sources.get_key_value(file) else {
            continue;
        };
        let (refs, dynamic) = template_refs(source);
        if dynamic {
            return None;
        }
        let vars = env.get_template(file).ok()?.undeclared_variables(false);
        if vars.contains("debug") {
            return None;
        }
        names.extend(vars);
        for r in refs {
            if let Some((name, _)) = sources.get_key_value(&r.name) {
                todo.push(name);
            }
        }
    }
    Some(names.into_iter().collect())
}

impl TemplateSet {
    /// Load and compile every template below `directory`. Fails on the first
    /// problem, naming the file and line.
    pub fn load(directory: &Path) -> TplResult<TemplateSet> {
        if !directory.is_dir() {
            return Err(TplError::new(format!(
                "template directory {} does not exist or is not a directory",
                directory.display()
            )));
        }
        let mut files = Vec::new();
        scan(directory, "", 0, &mut files)?;

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|name| {
            if escapes_html(name) {
                AutoEscape::Html
            } else if escapes_json(name) {
                AutoEscape::Json
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(escape::formatter);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        filters::register(&mut env);

        let mut sources = HashMap::with_capacity(files.len());
        for (name, path) in &files {
            let bytes = fs::read(path).map_err(|e| {
                TplError::new(format!("cannot read file: {e}")).in_file(name.clone(), None)
            })?;
            let mut text = String::from_utf8(bytes).map_err(|e| {
                TplError::new(format!(
                    "not valid UTF-8 (byte {})",
                    e.utf8_error().valid_up_to()
                ))
                .in_file(name.clone(), None)
            })?;
            if text.starts_with('\u{feff}') {
                text.drain(..3);
            }
            env.add_template_owned(name.clone(), text.clone())
                .map_err(|e| {
                    TplError::from_minijinja(&e, |_| None).in_file(name.clone(), e.line())
                })?;
            sources.insert(name.clone(), text);
        }

        for (name, _) in &files {
            let source = sources.get(name).map(String::as_str).unwrap_or("");
            for (target, line) in referenced_names(source) {
                if !sources.contains_key(&target) {
                    return Err(TplError::new(format!(
                        "references template {target:?}, which does not exist (names are paths from the template directory)"
                    ))
                    .in_file(name.clone(), Some(line)));
                }
            }
        }

        let mut templates = build_entries(directory, &sources)?;
        for entry in templates.values_mut() {
            let locales = entry.locales.iter_mut().map(|l| &mut l.parts);
            for parts in std::iter::once(&mut entry.default).chain(locales) {
                let files: Vec<&str> = [
                    parts.subject.as_deref(),
                    Some(&parts.text),
                    parts.html.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect();
                parts.reads = context_reads(&env, &sources, &files);
            }
        }
        if templates.is_empty() {
            return Err(TplError::new(format!(
                "no templates in {} (expected folders like NAME/body.txt)",
                directory.display()
            )));
        }
        Ok(TemplateSet {
            env,
            directory: directory.to_path_buf(),
            sources,
            templates,
        })
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Locale folders of a template, as named on disk, sorted.
    pub fn locales(&self, name: &str) -> TplResult<Vec<String>> {
        let entry = self.entry(name)?;
        let mut tags: Vec<String> = entry.locales.iter().map(|l| l.tag.clone()).collect();
        tags.sort();
        Ok(tags)
    }

    /// The files that would render `name` in `locale`.
    pub fn parts(&self, name: &str, locale: Option<&str>) -> TplResult<&Parts> {
        Ok(self.entry(name)?.resolve(locale))
    }

    /// The top-level context names rendering `name` in `locale` can read
    /// (sorted), or `None` when unknown (or no such template).
    pub fn reads(&self, name: &str, locale: Option<&str>) -> Option<Arc<[String]>> {
        self.templates.get(name)?.resolve(locale).reads.clone()
    }

    fn entry(&self, name: &str) -> TplResult<&Entry> {
        self.templates.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.names().collect();
            TplError::new(format!("unknown template (known: {})", known.join(", ")))
                .for_template(name)
        })
    }

    /// Render subject, text and HTML of `name` in `locale` with `ctx`.
    pub fn render(
        &self,
        name: &str,
        locale: Option<&str>,
        ctx: &Value,
    ) -> TplResult<RenderedParts> {
        let parts = self.parts(name, locale)?;
        let subject = match &parts.subject {
            Some(file) => {
                let subject = self.render_file(name, file, ctx)?;
                if subject.contains(['\r', '\n']) {
                    return Err(TplError::new(
                        "rendered subject contains a line break (CR or LF); refusing it (e-mail header injection)",
                    )
                    .in_file(file.clone(), None)
                    .for_template(name));
                }
                subject
            }
            None => String::new(),
        };
        let text = self.render_file(name, &parts.text, ctx)?;
        let html = match &parts.html {
            Some(file) => Some(self.render_file(name, file, ctx)?),
            None => None,
        };
        Ok(RenderedParts {
            subject,
            text,
            html,
        })
    }

    fn render_file(&self, name: &str, file: &str, ctx: &Value) -> TplResult<String> {
        let tmpl = self
            .env
            .get_template(file)
            .map_err(|e| self.error(name, file, &e))?;
        tmpl.render(ctx).map_err(|e| self.error(name, file, &e))
    }

    fn error(&self, name: &str, file: &str, err: &minijinja::Error) -> TplError {
        let mut e = TplError::from_minijinja(err, |n| self.sources.get(n).map(String::as_str));
        if e.file.is_none() {
            e.file = Some(file.to_string());
        }
        e.for_template(name)
    }
}

fn build_entries(
    directory: &Path,
    sources: &HashMap<String, String>,
) -> TplResult<BTreeMap<String, Entry>> {
    // Group files by their top-level folder.
    let mut by_template: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for name in sources.keys() {
        let Some((top, _)) = name.split_once('/') else {
            continue;
        };
        if top.starts_with('_') {
            continue; // shared layouts and macros
        }
        by_template.entry(top).or_default().push(name.as_str());
    }
    // Template folders without any template file are reported too.
    if let Ok(entries) = fs::read_dir(directory) {
        for e in entries.flatten() {
            let Some(n) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if e.path().is_dir()
                && !n.starts_with(['_', '.'])
                && !by_template.contains_key(n.as_str())
            {
                return Err(
                    TplError::new(format!("template folder has no {BODY_TEXT}")).in_file(n, None)
                );
            }
        }
    }

    let mut out = BTreeMap::new();
    for (template, files) in by_template {
        let has = |f: &str| sources.contains_key(f);
        let tags = locale_tags(template, &files)?;
        // Channel variants: `NAME/<variant>.txt|json` beside the email parts.
        let mut variants: BTreeMap<&str, String> = BTreeMap::new(); // variant -> file name
        for f in &files {
            let mut segs = f.split('/').skip(1);
            let (Some(file), None) = (segs.next(), segs.next()) else {
                continue;
            };
            if let Some(variant) = variant_of(file) {
                if let Some(other) = variants.insert(variant, file.to_string()) {
                    return Err(TplError::new(format!(
                        "{other} and {file} both define the variant {variant:?}; keep one"
                    ))
                    .in_file(format!("{template}/{file}"), None)
                    .for_template(template));
                }
            }
        }
        for f in &files {
            let segs: Vec<&str> = f.split('/').collect();
            if segs.len() == 3 && !segs[1].starts_with('_') {
                if let Some(variant) = variant_of(segs[2]) {
                    if variants.get(variant).map(String::as_str) != Some(segs[2]) {
                        return Err(TplError::new(format!(
                            "locale override of {:?} without a default {template}/{}",
                            segs[2], segs[2]
                        ))
                        .in_file(f.to_string(), None)
                        .for_template(template));
                    }
                }
            }
        }
        let email_files = files.iter().any(|f| {
            f.rsplit('/')
                .next()
                .is_some_and(|n| n == SUBJECT || n == BODY_TEXT || n == BODY_HTML)
        });
        let body = format!("{template}/{BODY_TEXT}");
        if has(&body) {
            let default = Parts {
                subject: optional(template, SUBJECT, sources),
                text: body,
                html: optional(template, BODY_HTML, sources),
                reads: None,
            };
            let locales =
                resolve_locales(template, &tags, default.clone(), |dir, fallback| Parts {
                    subject: optional(dir, SUBJECT, sources).or_else(|| fallback.subject.clone()),
                    text: optional(dir, BODY_TEXT, sources)
                        .unwrap_or_else(|| fallback.text.clone()),
                    html: optional(dir, BODY_HTML, sources).or_else(|| fallback.html.clone()),
                    reads: None,
                });
            out.insert(template.to_string(), Entry { default, locales });
        } else if email_files || variants.is_empty() {
            return Err(TplError::new(format!(
                "missing {BODY_TEXT} (an email template needs one; {SUBJECT} and {BODY_HTML} are optional; a folder with only channel variants such as sms.txt needs none)"
            ))
            .in_file(format!("{template}/"), None)
            .for_template(template));
        }
        for (variant, file) in &variants {
            let default = Parts {
                subject: None,
                text: format!("{template}/{file}"),
                html: None,
                reads: None,
            };
            let locales =
                resolve_locales(template, &tags, default.clone(), |dir, fallback| Parts {
                    subject: None,
                    text: optional(dir, file, sources).unwrap_or_else(|| fallback.text.clone()),
                    html: None,
                    reads: None,
                });
            out.insert(format!("{template}:{variant}"), Entry { default, locales });
        }
    }
    Ok(out)
}

fn optional(dir: &str, f: &str, sources: &HashMap<String, String>) -> Option<String> {
    let path = format!("{dir}/{f}");
    sources.contains_key(&path).then_some(path)
}

/// The locale folders of a template (second-level folders not starting with `_`), as
/// normalized tag -> tag on disk.
fn locale_tags(template: &str, files: &[&str]) -> TplResult<BTreeMap<String, String>> {
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for f in files {
        let mut segs = f.split('/').skip(1);
        let (Some(second), Some(_)) = (segs.next(), segs.next()) else {
            continue;
        };
        if second.starts_with('_') {
            continue;
        }
        if !is_locale_tag(second) {
            return Err(TplError::new(format!(
                "folder {second:?} is neither a locale (like \"de\" or \"de-AT\") nor a partials folder starting with \"_\""
            ))
            .in_file(format!("{template}/{second}/"), None)
            .for_template(template));
        }
        let norm = normalize_locale(second);
        if let Some(other) = tags.get(&norm) {
            if other != second {
                return Err(TplError::new(format!(
                    "locale folders {other:?} and {second:?} name the same locale"
                ))
                .in_file(format!("{template}/{second}/"), None)
                .for_template(template));
            }
        }
        tags.insert(norm, second.to_string());
    }
    Ok(tags)
}

/// Each locale's parts, resolved through the fallback chain: parents first (fewer
/// segments), so each locale falls back to its nearest resolved ancestor.
fn resolve_locales(
    template: &str,
    tags: &BTreeMap<String, String>,
    default: Parts,
    parts_in: impl Fn(&str, &Parts) -> Parts,
) -> Vec<LocaleEntry> {
    let mut order: Vec<(&String, &String)> = tags.iter().collect();
    order.sort_by_key(|(norm, _)| norm.matches('-').count());
    let mut locales: Vec<LocaleEntry> = Vec::with_capacity(order.len());
    for (norm, tag) in order {
        let mut parent = norm.clone();
        let fallback = loop {
            match parent.rfind('-') {
                Some(pos) => parent.truncate(pos),
                None => break &default,
            }
            if let Some(l) = locales.iter().find(|l| l.norm == parent) {
                break &l.parts;
            }
        };
        let parts = parts_in(&format!("{template}/{tag}"), fallback);
        locales.push(LocaleEntry {
            tag: tag.clone(),
            norm: norm.clone(),
            parts,
        });
    }
    locales
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "notifier-tpl-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn ctx() -> Value {
        Value::from_iter([("name", Value::from("<Ada>")), ("n", Value::from(3))])
    }

    #[test]
    fn locale_chain_resolves_per_part() {
        let dir = tempdir("chain");
        write(
            &dir,
            &[
                ("t/subject.txt", "Hi {{ name }}"),
                ("t/body.txt", "text en"),
                ("t/body.html", "<p>{{ name }}</p>"),
                ("t/de/subject.txt", "Hallo {{ name }}"),
                ("t/de/body.txt", "text de"),
                ("t/de_AT/subject.txt", "Servus {{ name }}"),
            ],
        );
        let set = TemplateSet::load(&dir).unwrap();
        let r = |loc: Option<&str>| set.render("t", loc, &ctx()).unwrap();
        assert_eq!(r(None).subject, "Hi <Ada>");
        assert_eq!(r(Some("de")).subject, "Hallo <Ada>");
        assert_eq!(r(Some("de-AT")).subject, "Servus <Ada>");
        assert_eq!(r(Some("DE_at")).subject, "Servus <Ada>");
        assert_eq!(r(Some("de-AT")).text, "text de");
        assert_eq!(r(Some("de-CH")).subject, "Hallo <Ada>");
        assert_eq!(r(Some("fr")).subject, "Hi <Ada>");
        assert_eq!(r(Some("de")).html.as_deref(), Some("<p>&lt;Ada&gt;</p>"));
        assert_eq!(
            set.locales("t").unwrap(),
            vec!["de".to_string(), "de_AT".to_string()]
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn channel_variants_render_as_their_own_templates() {
        let dir = tempdir("variants");
        write(
            &dir,
            &[
                ("t/subject.txt", "Hi {{ name }}"),
                ("t/body.txt", "text en"),
                ("t/sms.txt", "sms {{ name }}"),
                (
                    "t/push.json",
                    "{\"title\": {{ name ~ \" \\\"x\" }}, \"n\": {{ n }}}",
                ),
                ("t/de/sms.txt", "sms de {{ name }}"),
                ("only/sms.txt", "just sms"),
                ("only/sample.json", "{\"not\": {{ a template }}"),
            ],
        );
        let set = TemplateSet::load(&dir).unwrap();
        let names: Vec<&str> = set.names().collect();
        assert_eq!(names, ["only:sms", "t", "t:push", "t:sms"]);
        let sms = set.render("t:sms", None, &ctx()).unwrap();
        assert_eq!((sms.subject.as_str(), sms.text.as_str()), ("", "sms <Ada>"));
        assert_eq!(sms.html, None);
        let de = set.render("t:sms", Some("de-AT"), &ctx()).unwrap();
        assert_eq!(de.text, "sms de <Ada>");
        let push = set.render("t:push", Some("de"), &ctx()).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&push.text).unwrap();
        assert_eq!(parsed["title"], "<Ada> \"x");
        assert_eq!(parsed["n"], 3);
        assert_eq!(
            set.render("only:sms", None, &ctx()).unwrap().text,
            "just sms"
        );
        assert!(set.render("only", None, &ctx()).is_err());
    }

    #[test]
    fn variant_mistakes_fail_fast() {
        let dir = tempdir("variant-bad");
        write(&dir, &[("t/sms.txt", "a"), ("t/sms.json", "1")]);
        let err = TemplateSet::load(&dir).unwrap_err();
        assert!(err.to_string().contains("both define"), "{err}");
        let dir = tempdir("variant-orphan");
        write(&dir, &[("t/body.txt", "a"), ("t/de/sms.txt", "b")]);
        let err = TemplateSet::load(&dir).unwrap_err();
        assert!(err.to_string().contains("without a default"), "{err}");
        let dir = tempdir("variant-subject-only");
        write(&dir, &[("t/subject.txt", "a"), ("t/sms.txt", "b")]);
        let err = TemplateSet::load(&dir).unwrap_err();
        assert!(err.to_string().contains("body.txt"), "{err}");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let dir = tempdir("syntax");
        write(
            &dir,
            &[("t/body.txt", "line one\nline two\n{% if x %}\nunclosed\n")],
        );
        let err = TemplateSet::load(&dir).unwrap_err();
        assert_eq!(err.file.as_deref(), Some("t/body.txt"));
        assert!(err.line.is_some_and(|l| l >= 3), "{err:?}");
        assert!(err.to_string().contains("syntax error"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_body_and_bad_folders_fail_fast() {
        let dir = tempdir("missing");
        write(&dir, &[("t/subject.txt", "x")]);
        let err = TemplateSet::load(&dir).unwrap_err();
        assert!(err.to_string().contains("body.txt"), "{err}");
        let _ = fs::remove_dir_all(&dir);

        let dir = tempdir("badlocale");
        write(&dir, &[("t/body.txt", "x"), ("t/partials/x.txt", "y")]);
        let err = TemplateSet::load(&dir).unwrap_err();
        assert!(err.to_string().contains("neither a locale"), "{err}");
        let _ = fs::remove_dir_all(&dir);

        let dir = tempdir("badref");
        write(
            &dir,
            &[("t/body.txt", "a\n{% include \"_parts/nope.txt\" %}")],
        );
        let err = TemplateSet::load(&dir).unwrap_err();
        assert_eq!(
            (err.file.as_deref(), err.line),
            (Some("t/body.txt"), Some(2))
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn subject_line_breaks_are_refused() {
        let dir = tempdir("crlf");
        write(
            &dir,
            &[("t/subject.txt", "Hi {{ name }}\n"), ("t/body.txt", "b")],
        );
        let set = TemplateSet::load(&dir).unwrap();
        // A trailing newline in the file is dropped, as in Jinja2.
        assert_eq!(set.render("t", None, &ctx()).unwrap().subject, "Hi <Ada>");
        let evil = Value::from_iter([("name", Value::from("x\r\nBcc: all@example.com"))]);
        let err = set.render("t", None, &evil).unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
        assert_eq!(err.template.as_deref(), Some("t"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn undefined_variable_is_named() {
        let dir = tempdir("undef");
        write(&dir, &[("t/body.txt", "ok\n{{ user.nmae }}")]);
        let set = TemplateSet::load(&dir).unwrap();
        let c = Value::from_iter([("user", Value::from_iter([("name", "Ada")]))]);
        let err = set.render("t", None, &c).unwrap_err();
        assert!(err.to_string().contains("user.nmae"), "{err}");
        assert_eq!(
            (err.file.as_deref(), err.line),
            (Some("t/body.txt"), Some(2))
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn literal_and_dynamic_references_are_told_apart() {
        // GIVEN tags naming their template by a literal, with words after it
        let literal = "{% include \"a\" ignore missing with context -%}{% import 'm' as m %}\
                       {% from \"f\" import x, y as z %}{%- extends \"b\" %}";
        let (refs, dynamic) = template_refs(literal);
        // THEN all are followed and none counts as dynamic
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "m", "f", "b"]);
        assert!(!dynamic);
        // AND any expression that may pick another template is dynamic
        for src in [
            "{% include part %}",
            "{% include \"a\" ~ x %}",
            "{% include \"a\" if c else \"b\" %}",
            "{% include [\"a\", \"b\"] %}",
            "{% extends layout %}",
        ] {
            assert!(template_refs(src).1, "{src}");
        }
        // AND only a literal that is the whole expression must exist at load time
        for src in [
            "{% include \"a\" if c else \"b\" %}",
            "{% include \"_p/\" ~ kind ~ \".txt\" %}",
        ] {
            assert!(referenced_names(src).is_empty(), "{src}");
        }
        assert_eq!(
            referenced_names("x\n{% include \"a\" with context %}"),
            vec![("a".to_string(), 2)]
        );
    }

    #[test]
    fn context_reads_follow_layouts_includes_and_imports() {
        // GIVEN a template whose files extend a layout, include a part and import a macro
        let dir = tempdir("reads");
        write(
            &dir,
            &[
                ("_l/base.html", "{{ brand }}{% block b %}{% endblock %}"),
                ("_p/sig.txt", "{{ team }}"),
                (
                    "_m.html",
                    "{% macro btn(u) %}{{ u }}{{ style }}{% endmacro %}",
                ),
                ("t/subject.txt", "{{ user.name }}"),
                (
                    "t/body.txt",
                    "{% include \"_p/sig.txt\" %}{% include \"_p/none.txt\" ignore missing %}",
                ),
                (
                    "t/body.html",
                    "{% extends \"_l/base.html\" %}{% from \"_m.html\" import btn %}\
                     {% block b %}{% set x = 1 %}{{ btn(link) }}{{ x }}{% endblock %}",
                ),
                ("u/body.txt", "{% include part %}"),
            ],
        );
        let set = TemplateSet::load(&dir).unwrap();
        // THEN the names read anywhere in those files are listed, sorted; locals are not
        let reads = set.reads("t", None).unwrap();
        assert_eq!(&*reads, ["brand", "link", "style", "team", "user"]);
        // AND a dynamic include reads anything
        assert_eq!(set.reads("u", None), None);
        assert_eq!(set.reads("nope", None), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn referenced_names_are_found() {
        let src = "{% extends \"_l/base.html\" %}\n{%- include '_p/a.txt' %}{% include \"_p/b.txt\" ignore missing %}\n{% from \"_m.html\" import x %}{% if a %}{% endif %}";
        assert_eq!(
            referenced_names(src),
            vec![
                ("_l/base.html".to_string(), 1),
                ("_p/a.txt".to_string(), 2),
                ("_m.html".to_string(), 3)
            ]
        );
    }

    #[test]
    fn locale_tags() {
        assert!(is_locale_tag("de"));
        assert!(is_locale_tag("de-AT"));
        assert!(is_locale_tag("zh_Hant_TW"));
        assert!(!is_locale_tag("partials"));
        assert!(!is_locale_tag("d"));
    }
}
