//! The JSON text of a raw event, shared by every record decoded from it: read
//! in place from the immutable Python `bytes` or `str` that holds it (kept
//! alive by a reference, never copied), or owned when the object is mutable
//! (`bytearray`, copied once).
use std::borrow::Cow;

use pyo3::prelude::*;

use super::error::DecodeErr;
use super::event_text;

/// A raw event's UTF-8 text, readable without the GIL.
pub(crate) struct EventText(Inner);

enum Inner {
    /// `len` bytes at `ptr`, owned by `_owner` (held only to keep it alive).
    InPlace {
        _owner: Py<PyAny>,
        ptr: *const u8,
        len: usize,
    },
    Owned(Box<str>),
}

// SAFETY: `InPlace` points into the buffer of an immutable `bytes` object, or
// the UTF-8 form a `str` caches in itself; either lives, unchanged and at the
// same address, as long as the object, which `_owner` keeps alive. Reading it
// needs no GIL. `Py<PyAny>` itself is `Send + Sync` (dropped without the GIL,
// its reference is released the next time the GIL is taken).
unsafe impl Send for EventText {}
unsafe impl Sync for EventText {}

impl EventText {
    /// The text of a raw event (`bytes`, `bytearray` or `str`), validated as
    /// UTF-8; `None` when `event` is something else (a parsed event).
    pub(crate) fn of(event: &Bound<'_, PyAny>) -> Option<Result<EventText, DecodeErr>> {
        Some(event_text(event)?.map(|text| match text {
            // borrowed from `event` itself (bytes or str): see the SAFETY note above
            Cow::Borrowed(s) => EventText(Inner::InPlace {
                _owner: event.clone().unbind(),
                ptr: s.as_ptr(),
                len: s.len(),
            }),
            Cow::Owned(s) => EventText(Inner::Owned(s.into_boxed_str())),
        }))
    }

    pub(crate) fn as_str(&self) -> &str {
        match &self.0 {
            Inner::InPlace { ptr, len, .. } => {
                // SAFETY: `len` bytes at `ptr` were a `&str` (valid UTF-8) of
                // the object `_owner` holds alive and that never changes them.
                unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(*ptr, *len)) }
            }
            Inner::Owned(s) => s,
        }
    }
}

impl EventText {
    /// Text decoded from the event (a Kinesis record's `data` payload), owned.
    pub(crate) fn owned(text: String) -> EventText {
        EventText(Inner::Owned(text.into_boxed_str()))
    }
}
