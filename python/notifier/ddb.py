"""The fast DynamoDB-JSON decoder (Rust): boto3-compatible values, stream events.

- ``deserialize_value`` / ``deserialize_image``: AttributeValue JSON (already parsed) to plain
  Python, value-for-value equal to boto3's ``TypeDeserializer``: ``N`` -> ``Decimal`` (DynamoDB's
  38-digit context, exact), ``B`` -> ``bytes`` (base64 text as in Lambda JSON, or bytes /
  bytearray / boto3 ``Binary``), ``SS``/``NS``/``BS`` -> ``set``, ``NULL`` -> ``None``.
  ``numbers="native"`` gives ``int`` for integral values and ``float`` otherwise: lossy.
- ``serialize_value`` / ``serialize_image``: the inverse, equal to boto3's ``TypeSerializer``.
- ``decode_stream_event``: a Lambda DynamoDB Streams event, as raw bytes/str (decoded in Rust
  without building the typed dicts) or as the parsed dict, to ``StreamRecord`` objects. For raw
  events ``images=`` picks how the images are built: ``"python"`` (default) as dicts in the
  decoding pass itself; ``"tree"`` as Rust values with the GIL released (what rendering and
  ``get`` read; dicts built on first access); ``"lazy"`` validated only, built on first use.
  Every mode validates every image and yields equal values.
- ``decode_kinesis_event``: a Lambda Kinesis event of Kinesis Data Streams for DynamoDB (each
  ``kinesis.data`` is base64 of a change record), decoded in Rust into the same ``StreamRecord``
  objects: ``sequence_number`` is the Kinesis ``sequenceNumber`` (what Lambda's batchItemFailures
  want for Kinesis), ``event_id`` the change record's ``eventID``, ``event_source_arn`` the
  Kinesis stream's ARN, ``approximate_creation_time`` in seconds. Kinesis carries that time in
  milliseconds or microseconds (the table's ``ApproximateCreationDateTimePrecision``) without
  saying which: values from 1e14 are microseconds (1e14 us is 1973, 1e14 ms the year 5138),
  smaller ones milliseconds. ``decode_stream_event(..., source="auto")`` (the default) reads
  either kind, told by the first record's ``eventSource``.

Decoded values are plain dicts, lists and sets, tracked by the cyclic GC exactly as CPython
tracks its own: lists and sets always, a dict only once it holds a container (a dict of atomic
values, such as ``user`` with str fields, is not). So a reference cycle you build through a
decoded value is collected like any other. While one ``decode_stream_event`` call builds a
batch's dicts, the automatic collector waits for it to return (what CPython 3.12+ does for any
call into C; on 3.11 it would otherwise rescan the half-built batch every few hundred objects).
Decimals and attribute-name strs may be shared between the records of one batch (immutable).

Numbers are counted as DynamoDB counts them: at most 38 significant digits, leading and trailing
zeros not counted, magnitude below 1E+127, no significant digit below 1E-165 (DynamoDB itself
stores 1E-130 to 9.9999999999999999999999999999999999999E+125). So ``"1"`` followed by 38 zeros,
which DynamoDB returns for a stored 1E+38, decodes to ``Decimal("1E+38")`` (as Powertools does),
where boto3 raises ``decimal.Rounded``; wherever boto3 accepts a text the Decimal is boto3's,
digit for digit. ``serialize_value(10**38)`` gives ``{"N": "1000...0"}``, which DynamoDB stores.

Deliberate differences from boto3, all raising instead of returning something DynamoDB never
sends: NaN/Infinity/whitespace/underscores in ``N`` (``DecodeError``), ``NULL`` other than true,
non-str attribute names, nesting deeper than DynamoDB's 32 levels; on the encode side ints and
Decimals outside that range raise ``EncodeError`` (a ``TypeError``) where boto3 raises
``decimal`` signals.

Error messages never quote attribute values (they end up in logs and failure records): they
name the record index, the attribute path (names cut at 64 characters) and the problem, e.g.
``Records[17].dynamodb.NewImage.user.age: invalid number (not a decimal literal, 21 characters)``.
"""

from notifier._core import (
    DecodeError,
    EncodeError,
    RecordError,
    StreamRecord,
    decode_kinesis_event,
    decode_stream_event,
    deserialize_image,
    deserialize_value,
    serialize_image,
    serialize_value,
)

__all__ = [
    "DecodeError",
    "EncodeError",
    "RecordError",
    "StreamRecord",
    "decode_kinesis_event",
    "decode_stream_event",
    "deserialize_image",
    "deserialize_value",
    "serialize_image",
    "serialize_value",
]
