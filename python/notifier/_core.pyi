"""Type stubs for the Rust extension ``notifier._core``."""

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, final

__all__ = [
    "DecodeError",
    "EncodeError",
    "Rendered",
    "TemplateError",
    "TemplateSet",
    "__version__",
]

__version__: str

class DecodeError(ValueError):
    """Malformed DynamoDB JSON or stream event; names the record index and attribute path."""

class EncodeError(TypeError):
    """A Python value with no DynamoDB representation (float, NaN, >38 digits, unsupported type)."""

class TemplateError(ValueError):
    """A template that fails to load, compile or render; names the template, file and line.

    The location is also available as attributes (None where unknown).
    """

    template: str | None
    """The template name (``"friend_request"``)."""
    file: str | None
    """The file, relative to the template directory (``"friend_request/de/body.txt"``)."""
    line: int | None
    """The 1-based line in ``file``."""

# -- templates ---------------------------------------------------------------

@final
class Rendered:
    """One rendered notification (immutable, comparable, hashable)."""

    def __new__(cls, subject: str, text: str, html: str | None = None) -> Rendered: ...
    @property
    def subject(self) -> str:
        """The subject line: never contains CR or LF; empty for templates without subject.txt."""
    @property
    def text(self) -> str:
        """The plain-text body (not escaped)."""
    @property
    def html(self) -> str | None:
        """The HTML body (autoescaped), or None when the template has no body.html."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class TemplateSet:
    """Templates loaded from a directory and compiled once; render many times, from any thread.

    Layout: ``NAME/body.txt`` (required), ``NAME/subject.txt`` and ``NAME/body.html``
    (optional), per-locale overrides in ``NAME/<locale>/`` (``de``, ``de-AT``; each file
    falls back ``de-AT`` -> ``de`` -> default), shared layouts and macros in top-level
    folders starting with ``_``. Raises TemplateError naming file and line on the first
    problem (syntax error, missing body.txt, unknown include, ...).

    Rendering is strict (an undefined variable is an error), HTML is autoescaped, text is
    not, and Decimal/DynamoDB numbers render with their exact digits.
    """

    def __new__(cls, directory: str | Path) -> TemplateSet: ...
    @property
    def directory(self) -> Path:
        """The directory the set was loaded from."""
    @property
    def names(self) -> list[str]:
        """Template names, sorted."""
    def locales(self, name: str) -> list[str]:
        """Locale folders of template ``name`` as named on disk, sorted (default excluded)."""
    def files(self, name: str, *, locale: str | None = None) -> tuple[str | None, str, str | None]:
        """The files (subject, text, html) that render ``name`` in ``locale``."""
    def render(
        self, name: str, context: Mapping[str, Any], *, locale: str | None = None
    ) -> Rendered:
        """Render template ``name`` with ``context`` in ``locale`` (None: default).

        Raises TemplateError (unknown template, undefined variable, a subject with
        CR/LF, a filter error, a context value of unsupported type).
        """
    def render_many(
        self,
        names: str | Sequence[str],
        contexts: Iterable[Mapping[str, Any]],
        locales: str | Sequence[str | None] | None = None,
    ) -> list[Rendered | TemplateError]:
        """Render many contexts in one call: converted under the GIL, rendered without it.

        ``names`` and ``locales`` are one value for all, or one per context. A context
        that fails yields its TemplateError in the list; the others still render.
        """
    def render_records(
        self,
        records: Iterable[Any],
        names: str | Sequence[str],
        locales: str | Sequence[str | None] | None = None,
    ) -> list[Rendered | TemplateError]:
        """Render decoded StreamRecords straight from their Rust images, GIL released.

        Context: the record's new image (old image for REMOVE) as top-level names, plus
        ``event`` = {name, id, sequence_number, approximate_creation_time}. No Python
        objects are built for the images. Per-record failures are TemplateError items.
        """
