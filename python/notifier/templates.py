"""Notification templates rendered in Rust (MiniJinja): subject, text and HTML per locale.

A template set is a directory with one folder per template name::

    friend_request/subject.txt      (optional: SMS/push templates have only a body)
    friend_request/body.txt
    friend_request/body.html        (optional; HTML-escaped automatically)
    friend_request/de/subject.txt   (per-locale overrides; de-AT -> de -> default)
    _layouts/base.html              (shared layouts/macros for extends/include)

``TemplateSet(directory)`` loads and compiles everything once and fails fast with
``TemplateError`` naming the file and line. See docs/TEMPLATES.md.
"""

from __future__ import annotations

from pathlib import Path

from notifier._core import Rendered, TemplateError, TemplateSet

__all__ = ["Rendered", "TemplateError", "TemplateSet", "builtin_templates"]

_BUILTIN = Path(__file__).with_name("builtin_templates")


def builtin_templates() -> Path:
    """The directory of the built-in template set (``profile_view``, ``friend_request``,
    ``application_update``; English and German), shipped inside the package."""
    return _BUILTIN
