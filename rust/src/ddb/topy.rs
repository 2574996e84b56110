//! Decoded [`AttrValue`]s to Python objects (built only when Python asks).
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, OnceLock};

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyInt, PyList, PySet, PyString, PyType};

use super::number::NumberParts;
use super::value::{AttrValue, Map, Number};
use crate::names::Fingerprint;

/// How `N` values become Python numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbers {
    /// `decimal.Decimal`, exactly as boto3's TypeDeserializer builds them.
    Decimal,
    /// `int` for integral values, `float` otherwise (lossy).
    Native,
}

impl Numbers {
    pub fn from_arg(s: &str) -> PyResult<Numbers> {
        match s {
            "decimal" => Ok(Numbers::Decimal),
            "native" => Ok(Numbers::Native),
            other => Err(PyValueError::new_err(format!(
                "numbers must be \"decimal\" or \"native\", not {other:?}"
            ))),
        }
    }
}

static DECIMAL: GILOnceCell<Py<PyType>> = GILOnceCell::new();

/// `decimal.Decimal`, imported once per process.
pub(crate) fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}

static DECIMAL_UNTRACKED: GILOnceCell<bool> = GILOnceCell::new();

/// Whether each `Decimal` built is to be untracked by the cyclic GC (see
/// `ToPy::untrack_decimals`): only when `Decimal` is a GC type (CPython 3.13+)
/// and its instances have no `__dict__` (`__dictoffset__` 0), that is, when
/// one refers to nothing but its type. Decided once per process.
fn decimal_untracked(py: Python<'_>) -> PyResult<bool> {
    DECIMAL_UNTRACKED
        .get_or_try_init(py, || {
            let t = decimal_type(py)?;
            // SAFETY: `t` is a live type object.
            let is_gc = unsafe { ffi::PyType_IS_GC(t.as_ptr().cast()) } != 0;
            let dict_offset: isize = t.getattr("__dictoffset__")?.extract()?;
            Ok(is_gc && dict_offset == 0)
        })
        .copied()
}

/// FxHash (rustc's hasher): attribute names are short and not attacker-chosen
/// keys of a long-lived table (the cache is per batch and capped), so a fast
/// non-keyed hash is fine here; SipHash showed up in profiles.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<V> = HashMap<Box<str>, V, BuildHasherDefault<FxHasher>>;

/// Strs in a direct-mapped table keyed by their texts' fingerprints
/// ([`crate::names`]: exact up to 16 bytes, no hashing loop, no `memcmp`);
/// longer texts are compared in full. A colliding text replaces the slot's.
/// Under perf the hash-map lookup (FxHash over each byte, a probe, a `memcmp`
/// call) was ~10% of decoding an event into dicts.
struct StrSlots<const BITS: u32>(Box<[Option<StrSlot>]>);

struct StrSlot {
    print: Fingerprint,
    /// The text, kept only when the print does not decide it (> 16 bytes).
    long: Option<Box<str>>,
    s: Py<PyString>,
}

impl<const BITS: u32> Default for StrSlots<BITS> {
    fn default() -> Self {
        StrSlots((0..1usize << BITS).map(|_| None).collect())
    }
}

impl<const BITS: u32> StrSlots<BITS> {
    /// The str of `text` (whose fingerprint is `print`): the slot's, or a new one
    /// that takes the slot.
    #[inline]
    fn get<'py>(
        &mut self,
        py: Python<'py>,
        text: &str,
        print: Fingerprint,
    ) -> Bound<'py, PyString> {
        let i = (print.hash() >> (64 - BITS)) as usize;
        if let Some(Some(slot)) = self.0.get(i) {
            if slot.print == print && slot.long.as_deref().map_or(true, |l| l == text) {
                return slot.s.bind(py).clone();
            }
        }
        let s = PyString::new(py, text);
        if let Some(entry) = self.0.get_mut(i) {
            *entry = Some(StrSlot {
                print,
                long: (!print.decides()).then(|| text.into()),
                s: s.clone().unbind(),
            });
        }
        s
    }
}

/// The strs of a batch: its attribute names, and its short `S` values (16
/// bytes or fewer: locales, types, states, countries), which repeat across the
/// records of a batch: a shared str (immutable, equal) costs a reference
/// instead of a new object. Longer values (ids, emails, text) rarely repeat
/// and are built each time.
#[derive(Default)]
pub(crate) struct KeySlots {
    names: StrSlots<10>,
    values: StrSlots<9>,
}

impl KeySlots {
    fn get<'py>(&mut self, py: Python<'py>, k: &str) -> Bound<'py, PyString> {
        self.names.get(py, k, Fingerprint::of(k))
    }

    /// The str of an `S` value: shared when short.
    fn value<'py>(&mut self, py: Python<'py>, v: &str) -> Bound<'py, PyString> {
        let print = Fingerprint::of(v);
        if !print.decides() {
            return PyString::new(py, v);
        }
        self.values.get(py, v, print)
    }
}

/// The attribute-name strs of one batch behind a lock, held by every record
/// of the batch: names repeat in every record, and a reused str also keeps its
/// cached hash for dict inserts.
#[derive(Default)]
pub(crate) struct KeyCache(pub(crate) Mutex<KeySlots>);

/// Decimals of short number texts (counts, flags, small amounts) shared across
/// calls and batches: `Decimal` is immutable and building one is the dearest
/// step of a number; the text is the key, so `"1.50"` and `"1.5"` stay distinct.
/// Bounded in text length and count; never evicted.
static SMALL_DECIMALS: OnceLock<Mutex<FxMap<Py<PyAny>>>> = OnceLock::new();
const SMALL_DECIMAL_LEN: usize = 6;
const SMALL_DECIMALS_MAX: usize = 4096;

fn small_decimal<'py>(py: Python<'py>, text: &str) -> Option<Bound<'py, PyAny>> {
    if text.len() > SMALL_DECIMAL_LEN {
        return None;
    }
    // try_lock: never wait on another thread while holding the GIL.
    let cache = SMALL_DECIMALS.get()?.try_lock().ok()?;
    cache.get(text).map(|d| d.bind(py).clone())
}

fn remember_small_decimal(text: &str, d: &Bound<'_, PyAny>) {
    if text.len() > SMALL_DECIMAL_LEN {
        return;
    }
    let cache = SMALL_DECIMALS.get_or_init(|| Mutex::new(FxMap::default()));
    if let Ok(mut cache) = cache.try_lock() {
        if cache.len() < SMALL_DECIMALS_MAX {
            cache.insert(text.into(), d.clone().unbind());
        }
    }
}

/// The value of an integer text that `int` and `Decimal` read alike: at most
/// 18 digits and not a negative zero (`Decimal("-0")` keeps its sign, `-0` has none).
fn plain_i64(text: &str) -> Option<i64> {
    super::number::small_integer(text).filter(|&v| v != 0 || !text.starts_with('-'))
}

/// Stop the cyclic GC from tracking a dict whose values are all atomic (str,
/// bytes, numbers, bool, None): no reference cycle can pass through it, and it
/// tracks itself again when a value that may hold references is put in.
/// CPython 3.11 and 3.12 leave such a dict untracked themselves. From 3.13,
/// `Decimal` is a GC type and CPython tracks a dict that holds one, though a
/// Decimal refers to nothing but its type and so cannot close a cycle: every
/// decoded image follows the one rule on every version, and the collector walks
/// fewer objects. Lists and sets never re-track themselves, so they are left
/// tracked: an untracked list that a caller later makes part of a reference
/// cycle would leak that cycle for good.
pub(crate) fn gc_untrack_dict(dict: &Bound<'_, PyDict>) {
    // SAFETY: `dict` is a live dict (a GC type); untracking a tracked or
    // untracked GC object is allowed and only clears its GC link.
    unsafe { ffi::PyObject_GC_UnTrack(dict.as_ptr().cast()) }
}

/// Holds the cyclic GC's automatic collections off while one call builds a whole
/// batch of Python objects with the GIL held, and lets them run again when dropped
/// (also on an error or a panic). CPython 3.12+ runs collections only from the
/// bytecode loop, so none runs inside such a call there anyway; on 3.11 a collection
/// can start inside any allocation, and a batch of 10,000 records met ~100 of them,
/// each rescanning the batch built so far (and, every few calls, the whole heap),
/// though nothing built is garbage. Collections resume after the call, which sees
/// every built object once. Never held across `allow_threads` (the switch is global
/// to the interpreter) nor while Python code of a caller's can run; a GC that was
/// already off is left off.
pub(crate) struct GcPause(bool);

impl GcPause {
    pub(crate) fn new(_py: Python<'_>) -> Self {
        // SAFETY: the GIL is held (the token proves it); the call only clears the
        // interpreter's "enabled" flag and returns its previous value.
        GcPause(unsafe { ffi::PyGC_Disable() } != 0)
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: dropped on the thread that made it, with the GIL still held
            // (the pause lives inside one call that never releases it).
            unsafe { ffi::PyGC_Enable() };
        }
    }
}

/// Builds Python values from decoded ones.
pub(crate) struct ToPy<'py, 'k> {
    py: Python<'py>,
    numbers: Numbers,
    decimal: Bound<'py, PyType>,
    /// From CPython 3.13 `Decimal` is a GC type (its heap type must stay
    /// reachable), so CPython tracks every one and walks it in each collection
    /// that finds it alive. A `Decimal` is immutable, has no `__dict__` and
    /// refers to nothing but its type, so it cannot close a reference cycle:
    /// when this is set (`decimal_untracked`), each one built here is
    /// untracked, as every `Decimal` was up to 3.12. A 1,000-record batch holds
    /// ~4,900 Decimals beside ~4,800 tracked containers; the collection after
    /// decoding it costs ~25% less on 3.13.
    untrack_decimals: bool,
    keys: Option<&'k mut KeySlots>,
}

impl<'py, 'k> ToPy<'py, 'k> {
    pub(crate) fn new(py: Python<'py>, numbers: Numbers) -> PyResult<Self> {
        Ok(ToPy {
            py,
            numbers,
            decimal: decimal_type(py)?.clone(),
            untrack_decimals: decimal_untracked(py)?,
            keys: None,
        })
    }

    /// `decimal.Decimal` as a type pointer, for cheap type checks.
    pub(crate) fn decimal_type_ptr(&self) -> *mut ffi::PyTypeObject {
        self.decimal.as_ptr().cast()
    }

    /// Reuse (and fill) a batch's attribute-name strs.
    pub(crate) fn with_keys(mut self, keys: Option<&'k mut KeySlots>) -> Self {
        self.keys = keys;
        self
    }

    pub(crate) fn py(&self) -> Python<'py> {
        self.py
    }

    pub(crate) fn key(&mut self, k: &str) -> Bound<'py, PyString> {
        let py = self.py;
        match self.keys.as_deref_mut() {
            Some(keys) => keys.get(py, k),
            None => PyString::new(py, k),
        }
    }

    /// The str of an `S` value (or an `SS` member).
    pub(crate) fn str(&mut self, v: &str) -> Bound<'py, PyString> {
        let py = self.py;
        match self.keys.as_deref_mut() {
            Some(keys) => keys.value(py, v),
            None => PyString::new(py, v),
        }
    }

    pub(crate) fn map(&mut self, m: &Map) -> PyResult<Bound<'py, PyDict>> {
        let py = self.py;
        // Tracked by the cyclic GC only when it holds a dict, list or set (see
        // `gc_untrack_dict`).
        let dict = PyDict::new(py);
        let mut atomic = true;
        for (k, v) in m {
            atomic = atomic && !v.is_container();
            let value = self.value(v)?;
            let key = self.key(k);
            // SAFETY: `dict`, `key` and `value` are live; PyDict_SetItem takes its
            // own references (ours are released when `key`/`value` drop).
            if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        if atomic {
            gc_untrack_dict(&dict);
        }
        Ok(dict)
    }

    pub(crate) fn value(&mut self, v: &AttrValue) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        Ok(match v {
            AttrValue::S(s) => self.str(s).into_any(),
            AttrValue::N(n) => self.number(n)?,
            AttrValue::B(b) => PyBytes::new(py, b).into_any(),
            AttrValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            AttrValue::Null => py.None().into_bound(py),
            AttrValue::L(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.value(item)?);
                }
                PyList::new(py, out)?.into_any()
            }
            AttrValue::M(m) => self.map(m)?.into_any(),
            AttrValue::SS(items) => {
                let set = PySet::empty(py)?;
                for s in items {
                    set.add(self.str(s))?;
                }
                set.into_any()
            }
            AttrValue::NS(items) => {
                let set = PySet::empty(py)?;
                for n in items {
                    set.add(self.number(n)?)?;
                }
                set.into_any()
            }
            AttrValue::BS(items) => {
                let set = PySet::empty(py)?;
                for b in items {
                    set.add(PyBytes::new(py, b))?;
                }
                set.into_any()
            }
        })
    }

    pub(crate) fn number(&mut self, n: &Number) -> PyResult<Bound<'py, PyAny>> {
        self.number_text(n.as_str())
    }

    /// The number of a validated `N` text.
    pub(crate) fn number_text(&mut self, text: &str) -> PyResult<Bound<'py, PyAny>> {
        if self.numbers == Numbers::Native {
            return self.native_parts(text, &super::number::parse(text).unwrap_or_default());
        }
        self.decimal_of(text, || PyString::new(self.py, text))
    }

    /// The `Decimal` of validated `raw`: shared for short texts (longer ones,
    /// epoch seconds, ids, amounts, rarely repeat: a cache of them cost more in
    /// misses than it saved), from an int for plain integers (`Decimal(int)`
    /// equals `Decimal(text)` there and skips parsing a str: ~30% cheaper),
    /// else from the str `text` gives.
    fn decimal_of(
        &self,
        raw: &str,
        text: impl FnOnce() -> Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(d) = small_decimal(self.py, raw) {
            return Ok(d);
        }
        let d = match plain_i64(raw) {
            Some(i) => self.decimal.call1((i,))?,
            // Only text this long can hold more than 38 digits (or an exponent
            // below -165 lifted by trailing zeros, as in `10E-166`).
            None if raw.len() > 38 || raw.contains(['e', 'E']) => {
                match super::number::parse(raw).ok().and_then(|p| p.normalized()) {
                    Some(canonical) => self.decimal.call1((canonical,))?,
                    None => self.decimal.call1((text(),))?,
                }
            }
            None => self.decimal.call1((text(),))?,
        };
        if self.untrack_decimals {
            // SAFETY: `d` is a live instance of a GC type (`decimal_untracked`);
            // untracking only clears its GC link. See `untrack_decimals`.
            unsafe { ffi::PyObject_GC_UnTrack(d.as_ptr().cast()) }
        }
        remember_small_decimal(raw, &d);
        Ok(d)
    }

    /// The number for validated `text` (with its `parts`), reusing the caller's str.
    pub(crate) fn number_from_str(
        &self,
        text: &Bound<'py, PyString>,
        raw: &str,
        parts: &NumberParts<'_>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self.numbers {
            Numbers::Decimal => self.decimal_from_str(text, raw),
            Numbers::Native => self.native_parts(raw, parts),
        }
    }

    /// True when numbers become `Decimal`s (the text alone decides the value).
    pub(crate) fn makes_decimals(&self) -> bool {
        self.numbers == Numbers::Decimal
    }

    /// The `Decimal` of validated `raw`, reusing the caller's str.
    pub(crate) fn decimal_from_str(
        &self,
        text: &Bound<'py, PyString>,
        raw: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.decimal_of(raw, || text.clone())
    }

    fn native_parts(&self, text: &str, parts: &NumberParts<'_>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        if !parts.is_integral() {
            let f: f64 = text
                .parse()
                .map_err(|_| PyValueError::new_err("unparsable number"))?;
            return Ok(PyFloat::new(py, f).into_any());
        }
        let digits = parts.integer_digits();
        if digits.len() <= 18 {
            if let Ok(v) = digits.parse::<i64>() {
                let v = if parts.negative { -v } else { v };
                return Ok(v.into_pyobject(py)?.into_any());
            }
        }
        let text = if parts.negative && digits != "0" {
            format!("-{digits}")
        } else {
            digits
        };
        py.get_type::<PyInt>().call1((text,))
    }
}
