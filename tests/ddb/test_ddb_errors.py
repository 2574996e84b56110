"""Malformed input: DecodeError with the right path, per-record collection, envelopes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ddb_helpers import stream_event

from notifier import samples
from notifier.ddb import (
    DecodeError,
    RecordError,
    StreamRecord,
    decode_stream_event,
    deserialize_image,
    deserialize_value,
)

Mutation = Callable[[dict[str, Any]], None]


def _image(rec: dict[str, Any]) -> dict[str, Any]:
    image: dict[str, Any] = rec["dynamodb"]["NewImage"]
    return image


def _replace(rec: dict[str, Any], new: dict[str, Any]) -> None:
    rec.clear()
    rec.update(new)


# (mutation of record 17, expected message); the message names the record and the path.
MALFORMATIONS: dict[str, tuple[Mutation, str]] = {
    "unknown tag": (
        lambda r: _image(r)["user"]["M"].update(email={"X": "a"}),
        'Records[17].dynamodb.NewImage.user.email: unknown type tag "X"',
    ),
    "two tags": (
        lambda r: _image(r).update(pk={"S": "a", "N": "1"}),
        'Records[17].dynamodb.NewImage.pk: expected exactly one type tag, found "S" and "N"',
    ),
    "no tag": (
        lambda r: _image(r).update(pk={}),
        "Records[17].dynamodb.NewImage.pk: expected exactly one type tag, found none",
    ),
    "bad number": (
        lambda r: _image(r).update(created_at={"N": "12a"}),
        "Records[17].dynamodb.NewImage.created_at: "
        "invalid number (not a decimal literal, 3 characters)",
    ),
    "NaN": (
        lambda r: _image(r).update(created_at={"N": "NaN"}),
        "Records[17].dynamodb.NewImage.created_at: "
        "invalid number (not a decimal literal, 3 characters)",
    ),
    "39 digits": (
        lambda r: _image(r).update(created_at={"N": "1" * 39}),
        "Records[17].dynamodb.NewImage.created_at: number has 39 significant digits (DynamoDB "
        "allows 38; leading and trailing zeros do not count)",
    ),
    "bad base64": (
        lambda r: _image(r).update(trace={"B": "not base64!"}),
        "Records[17].dynamodb.NewImage.trace: "
        "invalid base64 (a byte that is not base64 at offset 3; 11 characters)",
    ),
    "S holds a number": (
        lambda r: _image(r)["user"]["M"].update(name={"S": 5}),
        "Records[17].dynamodb.NewImage.user.name: S: ",
    ),
    "list item": (
        lambda r: _image(r)["data"]["M"]["steps"]["L"][2]["M"].update(at={"N": "x"}),
        "Records[17].dynamodb.NewImage.data.steps[2].at: invalid number (not a decimal literal, 1 "
        "character)",
    ),
    "set member": (
        lambda r: _image(r)["data"]["M"].update(ratings={"NS": ["1", "1e999"]}),
        "Records[17].dynamodb.NewImage.data.ratings[1]: number out of range (magnitude must be "
        "below 1E+127;",
    ),
    "NULL false": (
        lambda r: _image(r).update(priority={"NULL": False}),
        "Records[17].dynamodb.NewImage.priority: NULL: expected true, found false",
    ),
    "image not an object": (
        lambda r: r["dynamodb"].update(NewImage=[1]),
        "Records[17].dynamodb.NewImage: ",
    ),
    "missing sequence number": (
        lambda r: r["dynamodb"].pop("SequenceNumber"),
        'Records[17].dynamodb: missing required field "SequenceNumber"',
    ),
    "unknown event name": (
        lambda r: r.update(eventName="UPSERT"),
        "Records[17].eventName: unknown event name (expected INSERT, MODIFY or REMOVE, found 6 "
        "characters)",
    ),
    "record not an object": (
        lambda r: _replace(r, {"x": 1}),
        'Records[17]: missing required field "eventID"',
    ),
}


@pytest.fixture
def broken_event() -> Callable[[str], dict[str, Any]]:
    """Factory: a 20-record event whose record 17 has the named malformation."""

    def build(name: str) -> dict[str, Any]:
        event = samples.make_stream_event(20)
        # record 17 of an application_update item, written as an INSERT (it has a NewImage)
        event["Records"][17] = samples.make_stream_record(17, event_name="INSERT")
        mutate, _ = MALFORMATIONS[name]
        mutate(event["Records"][17])
        return event

    return build


@pytest.mark.parametrize("name", sorted(MALFORMATIONS))
@pytest.mark.parametrize("kind", ["bytes", "dict"])
def test_each_malformation_names_record_and_path(
    broken_event: Callable[[str], dict[str, Any]], name: str, kind: str
) -> None:
    # GIVEN an event whose record 17 is malformed
    event = broken_event(name)
    _, message = MALFORMATIONS[name]
    arg: Any = json.dumps(event).encode() if kind == "bytes" else event
    # WHEN decoded THEN DecodeError names record 17 and the attribute path
    with pytest.raises(DecodeError) as info:
        decode_stream_event(arg)
    assert str(info.value).startswith(message), str(info.value)
    # WHEN collected THEN the 19 good records survive and record 17 is reported in place
    out = decode_stream_event(arg, errors="collect")
    assert [type(r) for r in out] == [StreamRecord] * 17 + [RecordError] + [StreamRecord] * 2
    err = out[17]
    assert isinstance(err, RecordError)
    assert err.index == 17
    assert isinstance(err.error, DecodeError)
    assert str(err.error).startswith(message)
    assert json.loads(err.raw) == event["Records"][17]
    if name != "record not an object":
        assert err.event_id == event["Records"][17]["eventID"]
    if name not in ("missing sequence number", "record not an object"):
        assert err.sequence_number == event["Records"][17]["dynamodb"]["SequenceNumber"]


def test_collect_mode_on_the_malformed_batch_file(load_event: Callable[[str], bytes]) -> None:
    # GIVEN a batch with good records 0 and 2 and bad records 1 and 3
    raw = load_event("malformed_batch.json")
    # WHEN collected THEN the good ones decode and the bad ones carry index, ids, path and text
    out = decode_stream_event(raw, errors="collect")
    good = [r for r in out if isinstance(r, StreamRecord)]
    bad = [r for r in out if isinstance(r, RecordError)]
    assert [r.event_id for r in good] == ["good-0", "good-2"]
    assert [(e.index, e.event_id, e.sequence_number) for e in bad] == [
        (1, "bad-1", "200"),
        (3, "bad-3", "400"),
    ]
    assert str(bad[0].error) == 'Records[1].dynamodb.NewImage.user.email: unknown type tag "X"'
    assert str(bad[1].error) == (
        "Records[3].dynamodb.NewImage.steps[2]: "
        "invalid number (not a decimal literal, 3 characters)"
    )
    assert bad[0].raw in raw.decode()
    assert "bad-3" in repr(bad[1]) or "400" in repr(bad[1])
    # AND in raise mode the first bad record stops the batch
    with pytest.raises(DecodeError, match=r"^Records\[1\]"):
        decode_stream_event(raw)


@pytest.mark.parametrize(
    "event",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"Records": {}}',
        b'{"Records": [',
        b'{"Records": [{"eventID": "1"}] trailing',
        b'{"Records": ["\xff"]}',
        {"NotRecords": []},
        {"Records": "x"},
    ],
)
def test_malformed_envelopes_always_raise(event: Any) -> None:
    # GIVEN something that is not a stream event WHEN decoded, even collecting, THEN DecodeError
    for errors in ("raise", "collect"):
        with pytest.raises(DecodeError, match="event"):
            decode_stream_event(event, errors=errors)  # type: ignore[call-overload]


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_invalid_utf8_is_one_decode_error_for_bytes_and_bytearray(kind: type) -> None:
    # GIVEN an event whose text holds a byte that is not UTF-8
    raw = kind(b'{"Records": [{"eventID": "caf\xe9"}]}')
    # WHEN decoded THEN DecodeError names the encoding and the byte's offset
    want = r"event is not valid UTF-8 \(invalid utf-8 .* index 29\)"
    with pytest.raises(DecodeError, match=want):
        decode_stream_event(raw)


def test_lone_surrogate_escape_in_bytes_is_a_decode_error() -> None:
    raw = json.dumps(stream_event([{"s": {"S": "x"}}])).replace('"x"', '"\\ud800"')
    with pytest.raises(DecodeError):
        decode_stream_event(raw.encode())


def test_value_errors_name_the_path_from_the_image_root() -> None:
    # GIVEN images with errors deep inside WHEN deserialized THEN the path starts at the root
    with pytest.raises(DecodeError, match=r'^user\.email: unknown type tag "X"$'):
        deserialize_image({"user": {"M": {"email": {"X": "a"}}}})
    with pytest.raises(DecodeError, match=r"^steps\[2\]: S: expected a str, found int$"):
        deserialize_image({"steps": {"L": [{"S": "a"}, {"S": "b"}, {"S": 3}]}})
    with pytest.raises(DecodeError, match="expected an AttributeValue mapping"):
        deserialize_value("S")  # type: ignore[arg-type]


def test_bad_arguments_are_not_decode_errors() -> None:
    with pytest.raises(ValueError, match="numbers"):
        deserialize_value({"N": "1"}, numbers="float")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="errors"):
        decode_stream_event(b'{"Records": []}', errors="ignore")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="event must be"):
        decode_stream_event(42)  # type: ignore[call-overload]
