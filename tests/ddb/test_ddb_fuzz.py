"""No input makes decode_stream_event do anything but return records or raise DecodeError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from notifier import samples
from notifier.ddb import DecodeError, RecordError, StreamRecord, decode_stream_event

VALID = json.dumps(samples.make_stream_event(3)).encode()

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS", "1e5", "AA=="]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["S", "N", "B", "L", "M", "NS", "dynamodb", "NewImage", "Keys"]),
                st.text(max_size=6),
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=25,
)


def _touch(records: list[Any]) -> None:
    for rec in records:
        if isinstance(rec, StreamRecord):
            _ = (rec.new_image, rec.old_image, rec.keys, rec.raw, rec.get("user.email"))
        else:
            assert isinstance(rec, RecordError)
            assert isinstance(rec.error, DecodeError)


def _decode_all_ways(event: Any) -> None:
    for errors in ("raise", "collect"):
        for images in ("python", "tree", "lazy"):
            with contextlib.suppress(DecodeError):
                _touch(decode_stream_event(event, errors=errors, images=images))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    # GIVEN any bytes WHEN decoded THEN records or DecodeError, nothing else
    _decode_all_ways(data)


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_mutated_valid_events(data: st.DataObject) -> None:
    # GIVEN a valid event with a few bytes replaced, inserted or deleted
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.sampled_from(b'{}[]":,0123456789eE.-+ \\NSLMBx\xff'))
        if op == "replace":
            raw[pos] = byte
        elif op == "insert":
            raw.insert(pos, byte)
        else:
            del raw[pos]
    # WHEN decoded THEN records or DecodeError
    _decode_all_ways(bytes(raw))


@settings(max_examples=500, deadline=None)
@given(json_values, st.integers(0, 2))
def test_arbitrary_json_as_bytes_and_as_dict(value: Any, where: int) -> None:
    # GIVEN arbitrary JSON placed as a record, as a record's dynamodb, or as an image
    record: Any = value
    if where:
        record = json.loads(VALID)["Records"][0]
        if where == 1:
            record["dynamodb"] = value
        else:
            record["dynamodb"]["NewImage"] = value
    event = {"Records": [record]}
    # WHEN decoded from bytes and from the dict THEN records or DecodeError, and both agree
    _decode_all_ways(json.dumps(event).encode())
    _decode_all_ways(event)
    outcomes = []
    for arg in (json.dumps(event).encode(), event):
        try:
            (rec,) = decode_stream_event(arg)
            outcomes.append(("ok", rec.new_image, rec.old_image, rec.keys))
        except DecodeError:
            outcomes.append(("error",))
    assert outcomes[0][0] == outcomes[1][0]
