//! The type-tag keys of Python AttributeValues (`"S"` in `{"S": "text"}`),
//! recognised by identity.
//!
//! Parsers share key objects: orjson caches short keys across calls, the
//! stdlib's `json` shares them within one call, and literals in Python code are
//! interned. So the str object seen as a tag's key last time is very likely
//! the one seen next: comparing its address replaces reading the text
//! (`PyUnicode_AsUTF8AndSize`) and matching it, which callgrind put at ~7% of
//! `deserialize_image`. A remembered key is held by a strong reference, so its
//! address cannot be reused by another object while it is remembered, and a
//! str never changes its text: the same address means the same tag.
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;

use super::json::Tag;

const TAGS: [Tag; 10] = [
    Tag::S,
    Tag::N,
    Tag::B,
    Tag::Bool,
    Tag::Null,
    Tag::L,
    Tag::M,
    Tag::SS,
    Tag::NS,
    Tag::BS,
];

/// One remembered key per tag, in `TAGS` order. Read and written only with the
/// GIL held (the extension is built for GIL-holding CPython: abi3 excludes the
/// free-threaded build), so relaxed atomics are plain loads and stores.
static LAST_KEY: [AtomicPtr<ffi::PyObject>; 10] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; 10];

/// The tag whose remembered key is `key` itself, if any.
#[inline]
pub(crate) fn known(key: *mut ffi::PyObject) -> Option<Tag> {
    LAST_KEY
        .iter()
        .position(|slot| slot.load(Ordering::Relaxed) == key)
        .map(|i| TAGS[i])
}

/// Remember `key` (an exact str whose text is `tag`'s name) for `tag`.
///
/// # Safety
/// The GIL is held and `key` is a live object.
pub(crate) unsafe fn remember(tag: Tag, key: *mut ffi::PyObject) {
    let Some(i) = TAGS.iter().position(|&t| t == tag) else {
        return;
    };
    // SAFETY (caller): `key` is live; the slot owns the new reference.
    unsafe { ffi::Py_IncRef(key) };
    let old = LAST_KEY[i].swap(key, Ordering::Relaxed);
    if !old.is_null() {
        // SAFETY: the slot owned `old`; dropping a str runs no Python code.
        unsafe { ffi::Py_DecRef(old) };
    }
}
