"""Conformance: public fixtures (see README.md here) decoded by us and by boto3's TypeDeserializer.

For every stream event fixture, every record's Keys, NewImage and OldImage must equal what
boto3's ``TypeDeserializer`` gives (digit for digit, bytes for B, sets for SS/NS/BS), in every
way of decoding; where boto3 refuses a value we must raise ``DecodeError``. For the numbers
of the issue threads (which boto3 refuses with ``decimal.Rounded``) we must give the value the
thread names, which is what Powertools gives.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.shared.dynamodb_deserializer import (
    TypeDeserializer as PowertoolsDeserializer,
)
from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary, TypeDeserializer

from notifier.ddb import (
    DecodeError,
    StreamRecord,
    decode_stream_event,
    deserialize_image,
    deserialize_value,
)

HERE = Path(__file__).resolve().parent
EVENTS = sorted((HERE / "events").glob("*.json"))


class LambdaJsonDeserializer(TypeDeserializer):
    """boto3's deserializer with B/BS as Lambda JSON carries them (base64 text)."""

    def _deserialize_b(self, value: Any) -> Any:
        if isinstance(value, str):
            value = base64.b64decode(value, validate=True)
        return super()._deserialize_b(value)


BOTO3 = LambdaJsonDeserializer()


def canon(value: Any) -> Any:
    """A form that compares exactly: Decimal digits and sign, bytes vs Binary, set members."""
    if isinstance(value, Binary):
        return ("bytes", bytes(value.value))
    if isinstance(value, bytes):
        return ("bytes", value)
    if isinstance(value, Decimal):
        return ("N", str(value), value.is_signed())
    if isinstance(value, set | frozenset):
        return ("set", sorted(repr(canon(v)) for v in value))
    if isinstance(value, list):
        return ("list", [canon(v) for v in value])
    if isinstance(value, dict):
        return ("dict", sorted((k, repr(canon(v))) for k, v in value.items()))
    return (type(value).__name__, value)


def load(path: Path) -> bytes:
    # The .NET fixtures start with a UTF-8 byte order mark, which Lambda never sends.
    return path.read_bytes().removeprefix(b"\xef\xbb\xbf")


def boto3_image(image: dict[str, Any] | None) -> Any:
    if image is None:
        return None
    return canon({k: BOTO3.deserialize(v) for k, v in image.items()})


def test_every_fixture_is_here() -> None:
    names = {p.name for p in EVENTS}
    assert len(names) == 6, names


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.stem)
def test_stream_events_decode_as_boto3_does(path: Path) -> None:
    # GIVEN a public stream event fixture
    raw = load(path)
    event = json.loads(raw)
    records = event["Records"]
    assert records
    want = [
        (
            boto3_image(r["dynamodb"]["Keys"]),
            boto3_image(r["dynamodb"].get("NewImage")),
            boto3_image(r["dynamodb"].get("OldImage")),
        )
        for r in records
    ]
    decodings: dict[str, list[Any]] = {"dict": decode_stream_event(event)}
    for images in ("python", "tree", "lazy"):
        decodings[images] = decode_stream_event(raw, images=images)
    # WHEN decoded in every way THEN every record's images equal boto3's, and its fields the JSON
    for how, out in decodings.items():
        assert len(out) == len(records), how
        for rec, src, (keys, new, old) in zip(out, records, want, strict=True):
            assert isinstance(rec, StreamRecord), (how, rec)
            assert canon(rec.keys) == keys, how
            assert (canon(rec.new_image) if rec.new_image is not None else None) == new, how
            assert (canon(rec.old_image) if rec.old_image is not None else None) == old, how
            assert rec.event_id == src["eventID"]
            assert rec.event_name == src["eventName"]
            ddb = src["dynamodb"]
            assert rec.sequence_number == ddb["SequenceNumber"]
            assert rec.size_bytes == ddb.get("SizeBytes")
            assert rec.stream_view_type == ddb.get("StreamViewType")
            assert rec.approximate_creation_time == ddb.get("ApproximateCreationDateTime")
    # AND each image alone through deserialize_image too
    for src, (keys, new, old) in zip(records, want, strict=True):
        for name, expected in (("Keys", keys), ("NewImage", new), ("OldImage", old)):
            image = src["dynamodb"].get(name)
            if image is not None:
                assert canon(deserialize_image(image)) == expected


def test_a_byte_order_mark_is_refused_as_json_loads_refuses_it() -> None:
    # GIVEN a fixture file as published, with its BOM (the .NET ones)
    raw = (HERE / "events" / "aws-lambda-dotnet_dynamodb-event.json").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    # WHEN decoded THEN DecodeError (Lambda never sends one; json.loads refuses it too)
    with pytest.raises(ValueError, match="BOM"):
        json.loads(raw.decode())
    with pytest.raises(DecodeError):
        decode_stream_event(raw)


VALUES = json.loads((HERE / "values.json").read_text())


@pytest.mark.parametrize("av", VALUES["accepted"], ids=lambda av: json.dumps(av)[:40])
def test_boto3_type_test_values_decode_as_boto3_does(av: dict[str, Any]) -> None:
    # GIVEN an AttributeValue from boto3's own deserializer tests
    want = canon(BOTO3.deserialize(av))
    # WHEN decoded alone, in an image, and in a raw event THEN equal to boto3's
    assert canon(deserialize_value(av)) == want
    assert canon(deserialize_image({"a": av})["a"]) == want
    event = {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "dynamodb": {"Keys": {}, "NewImage": {"a": av}, "SequenceNumber": "1"},
            }
        ]
    }
    for images in ("python", "tree", "lazy"):
        (rec,) = decode_stream_event(json.dumps(event).encode(), images=images)
        assert isinstance(rec, StreamRecord)
        assert rec.new_image is not None
        assert canon(rec.new_image["a"]) == want


@pytest.mark.parametrize("av", VALUES["refused"], ids=json.dumps)
def test_values_boto3_refuses_are_refused(av: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        BOTO3.deserialize(av)
    with pytest.raises(DecodeError):
        deserialize_value(av)


NUMBERS = json.loads((HERE / "numbers.json").read_text())["numbers"]


@pytest.mark.parametrize("case", NUMBERS, ids=lambda c: c["value"])
def test_numbers_from_the_issue_threads(case: dict[str, str]) -> None:
    # GIVEN a number as DynamoDB returns it, and the value its thread names
    text, value = case["N"], Decimal(case["value"])
    try:
        boto3 = BOTO3.deserialize({"N": text})
    except ArithmeticError:
        boto3 = None  # boto3's context refuses what it would have to round
    # WHEN decoded (alone, in an NS, in a raw event in every mode)
    got = [deserialize_value({"N": text}), *deserialize_value({"NS": [text]})]
    event = {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "dynamodb": {"Keys": {}, "NewImage": {"n": {"N": text}}, "SequenceNumber": "1"},
            }
        ]
    }
    for images in ("python", "tree", "lazy"):
        (rec,) = decode_stream_event(json.dumps(event).encode(), images=images)
        assert isinstance(rec, StreamRecord)
        got.append(rec.get("n"))
    # THEN each is that value: boto3's Decimal where boto3 decodes it, else the value in the
    # form Powertools gives, which boto3's serializer can write back
    powertools = PowertoolsDeserializer().deserialize({"N": text})
    for d in got:
        assert isinstance(d, Decimal)
        assert d == value
        if boto3 is not None:
            assert str(d) == str(boto3)
        else:
            assert str(d) == str(powertools)
            assert str(DYNAMODB_CONTEXT.create_decimal(d)) == str(d)
