"""Decoding stream events: notifier vs orjson + boto3 TypeDeserializer, Powertools and orjson.

Groups ``decode-bytes-<n>``: from the raw event bytes to every record's new and old image as
Python dicts (orjson alone stops at the typed dicts: the floor a Python decoder starts from).
``notifier`` is the default ``images="python"``; ``notifier-tree`` (``images="tree"``, trees
first) is shown beside it, not a baseline.
Groups ``decode-dict-<n>``: the images of the parsed event (what the Python runtime hands a
handler), ``deserialize_image`` over each vs boto3's TypeDeserializer, into one list.
Groups ``decode-dict-event-<n>``: ``decode_stream_event`` on the parsed event, images built.
Groups ``decode-kinesis-<n>``: the same sample records delivered through Kinesis Data Streams for
DynamoDB (each change record base64 in ``kinesis.data``): ``notifier`` is ``decode_kinesis_event``
on the raw Kinesis event, ``streams`` ``decode_stream_event`` on the raw DynamoDB Streams event of
the same records (the ratio streams / notifier is the Kinesis path's cost per record relative to
the streams path), ``base64+orjson+boto3`` the usual Python handler of a Kinesis event.
Every benchmark first asserts that its result equals the reference decoding.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from boto3.dynamodb.types import TypeDeserializer

from notifier import samples
from notifier.ddb import decode_kinesis_event, decode_stream_event, deserialize_image

SIZES = [100, 1_000, 10_000]
Images = list[tuple[dict[str, Any] | None, dict[str, Any] | None]]


class _LambdaTypeDeserializer(TypeDeserializer):
    """boto3's deserializer with B/BS taken as Lambda JSON's base64 text (boto3 wants bytes)."""

    def _deserialize_b(self, value: Any) -> Any:
        return super()._deserialize_b(base64.b64decode(value))


_TD = _LambdaTypeDeserializer()


@cache
def event_bytes(n: int) -> bytes:
    return orjson.dumps(samples.make_stream_event(n))


def _boto3_image(image: dict[str, Any] | None) -> dict[str, Any] | None:
    if image is None:
        return None
    deserialize = _TD.deserialize
    return {k: deserialize(v) for k, v in image.items()}


def _boto3_images(event: dict[str, Any]) -> Images:
    return [
        (_boto3_image(r["dynamodb"].get("NewImage")), _boto3_image(r["dynamodb"].get("OldImage")))
        for r in event["Records"]
    ]


def decode_notifier(raw: bytes) -> Images:
    return [(r.new_image, r.old_image) for r in decode_stream_event(raw)]


def decode_notifier_tree(raw: bytes) -> Images:
    """``images="tree"`` (the handler's mode): Rust trees first, dicts built from them."""
    return [(r.new_image, r.old_image) for r in decode_stream_event(raw, images="tree")]


def decode_boto3(raw: bytes) -> Images:
    return _boto3_images(orjson.loads(raw))


def decode_powertools(raw: bytes) -> Images:
    event = DynamoDBStreamEvent(orjson.loads(raw))
    return [(r.dynamodb.new_image, r.dynamodb.old_image) for r in event.records if r.dynamodb]


def _same(ours: Any, theirs: Any) -> bool:
    """Equality, reading Powertools' undecoded base64 text as the bytes it stands for."""
    if ours is None and theirs == {}:
        return True  # Powertools gives {} for an absent image
    if isinstance(ours, bytes) and isinstance(theirs, str):
        return ours == base64.b64decode(theirs)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return list(ours) == list(theirs) and all(_same(ours[k], theirs[k]) for k in ours)
    if isinstance(ours, list | tuple) and isinstance(theirs, list | tuple):
        return len(ours) == len(theirs) and all(map(_same, ours, theirs))
    if isinstance(ours, set) and isinstance(theirs, set) and ours != theirs:
        return ours == {base64.b64decode(t) for t in theirs}
    return bool(ours == theirs)


FROM_BYTES: dict[str, Callable[[bytes], Any]] = {
    "notifier": decode_notifier,
    "notifier-tree": decode_notifier_tree,
    "orjson+boto3": decode_boto3,
    "powertools": decode_powertools,
    "orjson-only": orjson.loads,
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("lib", list(FROM_BYTES))
def test_decode_from_bytes(benchmark: Any, lib: str, n: int) -> None:
    raw = event_bytes(n)
    fn = FROM_BYTES[lib]
    benchmark.group = f"decode-bytes-{n}"
    benchmark.extra_info["lib"] = lib
    # GIVEN the same bytes THEN the result is correct before it is timed
    if lib == "orjson-only":
        assert fn(raw) == json.loads(raw)
    else:
        assert _same(decode_notifier(raw), fn(raw))
        assert decode_notifier(raw) == decode_boto3(raw)
    benchmark(fn, raw)


def _event_images(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Every record's new and old image, in order (the inputs of ``decode-dict-<n>``)."""
    return [
        image
        for r in event["Records"]
        for image in (r["dynamodb"].get("NewImage"), r["dynamodb"].get("OldImage"))
        if image is not None
    ]


def _notifier_dict_images(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [deserialize_image(image) for image in images]


def _boto3_dict_images(images: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    return [_boto3_image(image) for image in images]


# One flat list of results, no per-record tuples: a tuple holding dicts stays tracked by
# the cyclic GC for good, so 10,000 of them per round made full collections (which walk the
# whole parsed event, ~90 ms at 10,000 records) land inside the rounds of both libraries.
FROM_DICT: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
    "notifier": _notifier_dict_images,
    "boto3": _boto3_dict_images,
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("lib", list(FROM_DICT))
def test_decode_from_dict(benchmark: Any, lib: str, n: int) -> None:
    images = _event_images(orjson.loads(event_bytes(n)))
    benchmark.group = f"decode-dict-{n}"
    benchmark.extra_info["lib"] = lib
    assert FROM_DICT[lib](images) == _boto3_dict_images(images)
    benchmark(FROM_DICT[lib], images)


def _notifier_event_images(event: dict[str, Any]) -> Images:
    return [(r.new_image, r.old_image) for r in decode_stream_event(event)]


FROM_DICT_EVENT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "notifier": _notifier_event_images,
    "boto3": _boto3_images,
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("lib", list(FROM_DICT_EVENT))
def test_decode_event_from_dict(benchmark: Any, lib: str, n: int) -> None:
    event = orjson.loads(event_bytes(n))
    benchmark.group = f"decode-dict-event-{n}"
    benchmark.extra_info["lib"] = lib
    assert FROM_DICT_EVENT[lib](event) == _boto3_images(event)
    benchmark(FROM_DICT_EVENT[lib], event)


@cache
def kinesis_event_bytes(n: int) -> bytes:
    """The records of ``event_bytes(n)`` as a Lambda Kinesis event of Kinesis Data Streams for
    DynamoDB: change records (no SequenceNumber, milliseconds) base64 in ``kinesis.data``."""
    records = []
    for i, rec in enumerate(samples.make_stream_event(n)["Records"]):
        ddb = {
            k: v
            for k, v in rec["dynamodb"].items()
            if k not in ("SequenceNumber", "StreamViewType")
        }
        ddb["ApproximateCreationDateTime"] = int(ddb["ApproximateCreationDateTime"] * 1000)
        change = {
            "awsRegion": rec["awsRegion"],
            "eventID": rec["eventID"],
            "eventName": rec["eventName"],
            "userIdentity": None,
            "recordFormat": "application/json",
            "tableName": "notifier",
            "dynamodb": ddb,
            "eventSource": "aws:dynamodb",
        }
        seq = f"4965{i:052d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": f"{i:032X}",
                    "sequenceNumber": seq,
                    "data": base64.b64encode(orjson.dumps(change)).decode(),
                    "approximateArrivalTimestamp": 1733371200.5,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/notifier",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/notifier",
            }
        )
    return orjson.dumps({"Records": records})


def _kinesis_notifier(raw: bytes) -> Images:
    return [(r.new_image, r.old_image) for r in decode_kinesis_event(raw)]


def _kinesis_boto3(raw: bytes) -> Images:
    out: Images = []
    for r in orjson.loads(raw)["Records"]:
        ddb = orjson.loads(base64.b64decode(r["kinesis"]["data"]))["dynamodb"]
        out.append((_boto3_image(ddb.get("NewImage")), _boto3_image(ddb.get("OldImage"))))
    return out


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("lib", ["notifier", "streams", "base64+orjson+boto3"])
def test_decode_kinesis(benchmark: Any, lib: str, n: int) -> None:
    raw = kinesis_event_bytes(n)
    benchmark.group = f"decode-kinesis-{n}"
    benchmark.extra_info["lib"] = lib
    # GIVEN the same records THEN every path gives the reference images before it is timed
    assert _kinesis_notifier(raw) == _kinesis_boto3(raw) == decode_boto3(event_bytes(n))
    if lib == "notifier":
        benchmark(_kinesis_notifier, raw)
    elif lib == "streams":
        benchmark(decode_notifier, event_bytes(n))
    else:
        benchmark(_kinesis_boto3, raw)
