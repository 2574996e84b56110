"""Type stubs for the Rust extension ``notifier._core``."""

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, final, overload

__all__ = [
    "DecodeError",
    "EncodeError",
    "RecordError",
    "Rendered",
    "StreamRecord",
    "TemplateError",
    "TemplateSet",
    "__version__",
    "decode_kinesis_event",
    "decode_stream_event",
    "deserialize_image",
    "deserialize_value",
    "serialize_image",
    "serialize_value",
]

__version__: str

class DecodeError(ValueError):
    """Malformed DynamoDB JSON or stream event; names the record index and attribute path,
    never an attribute's value."""

class EncodeError(TypeError):
    """A Python value with no DynamoDB representation (float, NaN, more than 38 significant
    digits, magnitude from 1E+127, unsupported type)."""

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

# --- DynamoDB JSON (rust/src/ddb) -------------------------------------------------------------

_Numbers = Literal["decimal", "native"]
_Images = Literal["python", "tree", "lazy"]
_Source = Literal["auto", "dynamodb", "kinesis"]

def deserialize_value(av: Mapping[str, Any], *, numbers: _Numbers = "decimal") -> Any:
    """One AttributeValue (``{"S": "x"}``) to a plain Python value, like boto3's
    ``TypeDeserializer``: N -> Decimal (or int/float with ``numbers="native"``, lossy),
    B -> bytes (base64 text, bytes, bytearray or boto3 Binary accepted), SS/NS/BS -> set,
    NULL -> None. Raises DecodeError naming the path (``steps[2].at: ...``)."""

def deserialize_image(
    image: Mapping[str, Mapping[str, Any]], *, numbers: _Numbers = "decimal"
) -> dict[str, Any]:
    """An image (``{name: AttributeValue}``) to a plain dict; see ``deserialize_value``."""

def serialize_value(value: Any) -> dict[str, Any]:
    """A Python value to an AttributeValue dict, equal to boto3's ``TypeSerializer`` (B as
    bytes). float and unsupported types raise EncodeError (a TypeError) naming the path."""

def serialize_image(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A mapping to an image (``{name: AttributeValue}``); see ``serialize_value``."""

@overload
def decode_stream_event(
    event: bytes | bytearray | str | Mapping[str, Any],
    *,
    numbers: _Numbers = "decimal",
    errors: Literal["raise"] = "raise",
    images: _Images = "python",
    source: _Source = "auto",
) -> list[StreamRecord]:
    """A Lambda DynamoDB Streams event (or a Kinesis event of DynamoDB change records, see
    ``decode_kinesis_event``) to records. ``event`` is the raw event (bytes/str,
    decoded in Rust without building the typed dicts) or the parsed dict. A malformed envelope
    always raises DecodeError; a malformed record raises (``errors="raise"``) or is replaced by
    a ``RecordError`` (``errors="collect"``). Messages name the path, e.g.
    ``Records[17].dynamodb.NewImage.user.email: unknown type tag "X"``.

    ``images`` (raw events only; every mode validates every image and gives equal values):
    ``"python"`` builds ``new_image``/``old_image`` as dicts in the decoding pass itself
    (fastest when you read the images in Python; the GIL is held while decoding);
    ``"tree"`` builds Rust trees with the GIL released (for ``render_records`` and ``get``;
    dicts are built from them on first access); ``"lazy"`` only validates (fastest when
    most images are never read; trees or dicts are built on first use).

    ``source``: ``"auto"`` reads a Kinesis event when the first record's ``eventSource`` is
    ``"aws:kinesis"`` (for raw text: the first ``"eventSource"`` member in the text, found
    by a substring search that stops at the first record), a DynamoDB Streams event
    otherwise; ``"dynamodb"`` or ``"kinesis"`` say which."""

@overload
def decode_stream_event(
    event: bytes | bytearray | str | Mapping[str, Any],
    *,
    numbers: _Numbers = "decimal",
    errors: Literal["collect"],
    images: _Images = "python",
    source: _Source = "auto",
) -> list[StreamRecord | RecordError]:
    """``errors="collect"``: a malformed record yields a ``RecordError`` in its place."""

@overload
def decode_kinesis_event(
    event: bytes | bytearray | str | Mapping[str, Any],
    *,
    numbers: _Numbers = "decimal",
    errors: Literal["raise"] = "raise",
    images: _Images = "python",
) -> list[StreamRecord]:
    """A Lambda Kinesis event of Kinesis Data Streams for DynamoDB to records: each
    ``kinesis.data`` is base64 of a DynamoDB change record, decoded in Rust (raw or parsed
    events; ``numbers``, ``errors`` and ``images`` as for ``decode_stream_event``).

    Each record is a ``StreamRecord`` with ``sequence_number`` the Kinesis
    ``sequenceNumber`` (the batchItemFailures identifier for Kinesis), ``event_id`` the
    change record's ``eventID``, ``event_source_arn`` the Kinesis stream's ARN,
    ``approximate_creation_time`` in seconds (Kinesis carries milliseconds or microseconds:
    values from 1e14 are read as microseconds, smaller ones as milliseconds), ``raw`` the
    change record's JSON text and ``stream_view_type`` None. A bad base64 payload or bad
    change record is that record's error (``Records[3].kinesis.data: invalid base64 (...)``,
    ``Records[3].kinesis.data.dynamodb.Keys: ...``); a ``RecordError``'s ``raw`` is the Kinesis
    record as received and its ``sequence_number`` the Kinesis one."""

@overload
def decode_kinesis_event(
    event: bytes | bytearray | str | Mapping[str, Any],
    *,
    numbers: _Numbers = "decimal",
    errors: Literal["collect"],
    images: _Images = "python",
) -> list[StreamRecord | RecordError]:
    """``errors="collect"``: a malformed record yields a ``RecordError`` in its place."""

@final
class StreamRecord:
    """One decoded stream record. Immutable; each image is built as a dict once, while
    decoding or on first access (``decode_stream_event``'s ``images``), then cached: the
    same dict is returned each time."""

    @property
    def index(self) -> int:
        """Position of the record in its batch."""
    @property
    def event_id(self) -> str:
        """``eventID``."""
    @property
    def event_name(self) -> Literal["INSERT", "MODIFY", "REMOVE"]:
        """``eventName``."""
    @property
    def sequence_number(self) -> str:
        """``dynamodb.SequenceNumber`` (the batchItemFailures identifier); from Kinesis, the
        Kinesis record's ``sequenceNumber``."""
    @property
    def keys(self) -> dict[str, Any]:
        """``dynamodb.Keys`` as plain values."""
    @property
    def new_image(self) -> dict[str, Any] | None:
        """``dynamodb.NewImage`` as plain values, None when absent."""
    @property
    def old_image(self) -> dict[str, Any] | None:
        """``dynamodb.OldImage`` as plain values, None when absent."""
    @property
    def approximate_creation_time(self) -> float | None:
        """``dynamodb.ApproximateCreationDateTime`` in epoch seconds, None when absent (from
        Kinesis, converted from milliseconds or microseconds)."""
    @property
    def size_bytes(self) -> int | None:
        """``dynamodb.SizeBytes``, None when absent."""
    @property
    def stream_view_type(self) -> str | None:
        """``dynamodb.StreamViewType``, None when absent."""
    @property
    def event_source_arn(self) -> str | None:
        """``eventSourceARN`` (from Kinesis: the Kinesis stream's), None when absent."""
    @property
    def aws_region(self) -> str | None:
        """``awsRegion``, None when absent."""
    @property
    def raw(self) -> str:
        """The record's original JSON text (for dead-lettering); from Kinesis, the decoded
        change record (the ``kinesis.data`` payload)."""
    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path (``"user.email"``) in the new image (the old image if
        there is no new one), or ``default``; builds only that value."""

@final
class RecordError:
    """A record that failed to decode, in its place when ``errors="collect"``."""

    @property
    def index(self) -> int:
        """Position of the record in its batch."""
    @property
    def sequence_number(self) -> str | None:
        """``dynamodb.SequenceNumber`` where it could be read."""
    @property
    def event_id(self) -> str | None:
        """``eventID`` where it could be read."""
    @property
    def error(self) -> DecodeError:
        """The DecodeError, its message naming the record index and attribute path."""
    @property
    def raw(self) -> str:
        """The record's JSON text."""

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

        Of a ``dict`` context only the top-level names the template's files can read
        (their undeclared variables, followed through literal extends/include/import)
        are converted; the others are skipped, unread and unchecked. A dynamic
        reference (``{% include var %}``) or ``debug()`` converts the whole context.
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
        Contexts are converted as in ``render`` (only the names the template reads).
        """
    def render_records(
        self,
        records: Iterable[StreamRecord],
        names: str | Sequence[str],
        locales: str | Sequence[str | None] | None = None,
        *,
        notifications: Sequence[Mapping[str, str] | None] | None = None,
    ) -> list[Rendered | TemplateError]:
        """Render decoded StreamRecords straight from their Rust images, GIL released.

        Context: the record's new image (old image for REMOVE) as top-level names, plus
        ``event`` = {name, id, sequence_number, approximate_creation_time} and
        ``notification`` = the record's item of ``notifications`` (the pipeline's per-
        notification values, e.g. ``unsubscribe_url``; an empty map when None or not
        given). No Python objects are built for the images. Per-record failures are
        TemplateError items.
        """
    def render_event(
        self,
        event: bytes | bytearray | str | Mapping[str, Any],
        names: str | Mapping[str, str] | None = None,
        *,
        route: str = "event_type",
        locale: str | None = "user.locale",
        source: _Source = "auto",
    ) -> list[Rendered | TemplateError | RecordError | None]:
        """Decode a stream event and render every record in one call (decode -> route ->
        render), with the GIL released throughout for raw bytes/str.

        The event is a DynamoDB Streams event or a Kinesis event of Kinesis Data Streams
        for DynamoDB, told apart by ``source`` as ``decode_stream_event`` does (``"auto"``:
        by the first record's ``eventSource``). A Kinesis record renders as the streams
        record of the same change renders: ``event.sequence_number`` is the Kinesis
        ``sequenceNumber`` and ``event.approximate_creation_time`` is in seconds, as
        ``decode_kinesis_event`` gives them.

        ``names``: one template for every record, a mapping from the value of the
        ``route`` attribute (a dotted path in the image) to a template name, or None for
        the template named by that value. ``locale``: dotted path of the record's locale
        (None, or a missing attribute: the default locale). One item per record, in
        order: Rendered; a TemplateError when rendering failed; the record's RecordError
        (as ``decode_stream_event(..., errors="collect")`` gives it, e.g. for a Kinesis
        record whose ``data`` is not base64) when it did not decode; None when ``names``
        is a mapping without the record's route value, or the record has no route
        attribute. Context as for ``render_records``. Raises
        DecodeError only for a malformed envelope (not JSON, no ``Records`` list), and
        ValueError for an unknown ``source``.
        """
