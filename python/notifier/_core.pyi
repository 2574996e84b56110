"""Type stubs for the Rust extension ``notifier._core``."""

from collections.abc import Mapping
from typing import Any, Literal, final, overload

__all__ = [
    "DecodeError",
    "EncodeError",
    "RecordError",
    "StreamRecord",
    "TemplateError",
    "__version__",
    "decode_stream_event",
    "deserialize_image",
    "deserialize_value",
    "serialize_image",
    "serialize_value",
]

__version__: str

class DecodeError(ValueError):
    """Malformed DynamoDB JSON or stream event; names the record index and attribute path."""

class EncodeError(TypeError):
    """A Python value with no DynamoDB representation (float, NaN, >38 digits, unsupported type)."""

class TemplateError(ValueError):
    """A template that fails to load, compile or render; names the template, file and line."""

# --- DynamoDB JSON (rust/src/ddb) -------------------------------------------------------------

_Numbers = Literal["decimal", "native"]

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
) -> list[StreamRecord]:
    """A Lambda DynamoDB Streams event to records. ``event`` is the raw event (bytes/str,
    decoded in Rust without building the typed dicts) or the parsed dict. A malformed envelope
    always raises DecodeError; a malformed record raises (``errors="raise"``) or is replaced by
    a ``RecordError`` (``errors="collect"``). Messages name the path, e.g.
    ``Records[17].dynamodb.NewImage.user.email: unknown type tag "X"``."""
@overload
def decode_stream_event(
    event: bytes | bytearray | str | Mapping[str, Any],
    *,
    numbers: _Numbers = "decimal",
    errors: Literal["collect"],
) -> list[StreamRecord | RecordError]:
    """``errors="collect"``: a malformed record yields a ``RecordError`` in its place."""
@final
class StreamRecord:
    """One decoded stream record. Immutable; images are built as dicts on first access
    (then cached: the same dict is returned each time)."""

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
        """``dynamodb.SequenceNumber`` (the batchItemFailures identifier)."""
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
        """``dynamodb.ApproximateCreationDateTime`` in epoch seconds, None when absent."""
    @property
    def size_bytes(self) -> int | None:
        """``dynamodb.SizeBytes``, None when absent."""
    @property
    def stream_view_type(self) -> str | None:
        """``dynamodb.StreamViewType``, None when absent."""
    @property
    def event_source_arn(self) -> str | None:
        """``eventSourceARN``, None when absent."""
    @property
    def aws_region(self) -> str | None:
        """``awsRegion``, None when absent."""
    @property
    def raw(self) -> str:
        """The record's original JSON text (for dead-lettering)."""
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
