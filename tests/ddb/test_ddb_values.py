"""deserialize_value / deserialize_image against boto3's TypeDeserializer, value for value."""

from __future__ import annotations

import copy
import gc
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from ddb_helpers import canon, images, stream_event, texts, to_json_wire, values
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.ddb import (
    DecodeError,
    EncodeError,
    decode_stream_event,
    deserialize_image,
    deserialize_value,
    serialize_image,
    serialize_value,
)

Fn = Callable[[Any], Any]


@settings(max_examples=300, deadline=None)
@given(values())
def test_deserialize_value_equals_boto3(
    boto_serialize: Fn, boto_deserialize: Fn, value: Any
) -> None:
    # GIVEN a value as boto3 writes it (bytes for B) and as Lambda JSON has it (base64 text)
    wire = boto_serialize(value)
    json_wire = json.loads(json.dumps(to_json_wire(wire)))
    # WHEN both are decoded THEN each equals boto3's TypeDeserializer output exactly
    expected = canon(boto_deserialize(wire))
    assert canon(deserialize_value(wire)) == expected
    assert canon(deserialize_value(json_wire)) == expected


@settings(max_examples=300, deadline=None)
@given(values())
def test_serialize_value_equals_boto3(boto_serialize: Fn, value: Any) -> None:
    # GIVEN any value DynamoDB can hold WHEN serialized THEN the output is boto3's, exactly
    assert canon(serialize_value(value)) == canon(boto_serialize(value))
    image = {"v": value, "w": [value]}
    assert canon(serialize_image(image)) == canon({k: boto_serialize(v) for k, v in image.items()})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "Float types are not supported"),
        ({"a": [1, {"b": 2.5}]}, r"^a\[1\]\.b: Float types are not supported"),
        ({"a": object()}, '^a: unsupported type "object"'),
        ({"a": {1, "x"}}, "^a: unsupported type"),
        ({1: "x"}, "attribute names must be str"),
        ({"n": 10**200}, r"^n: int out of range \(magnitude must be below 1E\+127\)$"),
        ({"n": Decimal("NaN")}, r"^n: invalid number \(not a decimal literal, 3 characters\)$"),
    ],
)
def test_serialize_refuses_what_dynamodb_cannot_hold(value: Any, message: str) -> None:
    # GIVEN a value with no DynamoDB form WHEN serialized THEN EncodeError (a TypeError) says where
    with pytest.raises(EncodeError, match=message) as info:
        serialize_value(value)
    assert isinstance(info.value, TypeError)


def test_serialize_quirks_follow_boto3(boto_serialize: Fn) -> None:
    # GIVEN boto3's corner cases: empty set, bools in a set, bytearray, tuples
    for value in (set(), {True}, bytearray(b"x"), (1, "a"), frozenset({b"a"})):
        # WHEN serialized THEN the same as boto3
        assert canon(serialize_value(value)) == canon(boto_serialize(value))


@settings(max_examples=200, deadline=None)
@given(values())
def test_round_trip_serialize_then_deserialize(boto_deserialize: Fn, value: Any) -> None:
    # GIVEN any value WHEN serialized and deserialized by us THEN boto3's round trip agrees
    ours = deserialize_value(serialize_value(value))
    assert canon(ours) == canon(boto_deserialize(serialize_value(value)))


@settings(max_examples=80, deadline=None)
@given(st.lists(images, min_size=1, max_size=4))
def test_stream_event_from_bytes_and_from_dict_agree_with_boto3(
    boto_serialize: Fn, boto_deserialize: Fn, items: list[dict[str, Any]]
) -> None:
    # GIVEN images as a Lambda event, raw JSON bytes and the parsed dict
    wire_images = [{k: to_json_wire(boto_serialize(v)) for k, v in it.items()} for it in items]
    event = stream_event(wire_images)
    raw = json.dumps(event).encode()
    # WHEN decoded both ways
    from_bytes = decode_stream_event(raw)
    from_dict = decode_stream_event(json.loads(raw))
    # THEN every new image equals boto3's, and the two paths agree
    for rec_b, rec_d, wire in zip(from_bytes, from_dict, wire_images, strict=True):
        expected = canon({k: boto_deserialize(v) for k, v in wire.items()})
        assert canon(rec_b.new_image) == expected
        assert canon(rec_d.new_image) == expected
        assert canon(deserialize_image(wire)) == expected


def test_native_numbers_are_int_when_integral_else_float() -> None:
    # GIVEN numbers in several spellings WHEN decoded with numbers="native"
    cases = {"1E2": 100, "1.0": 1, "-0": 0, "1500E-2": 15, "1.5": 1.5, "-2.25e1": -22.5}
    for text, want in cases.items():
        got = deserialize_value({"N": text}, numbers="native")
        # THEN the type and value follow the number, not its spelling
        assert type(got) is type(want), text
        assert got == want, text
    big = "9" * 38 + "E+88"
    assert deserialize_value({"N": big}, numbers="native") == int("9" * 38) * 10**88


@settings(max_examples=200, deadline=None)
@given(values())
def test_native_numbers_match_the_decimal_values(boto_serialize: Fn, value: Any) -> None:
    # GIVEN a value WHEN decoded natively THEN each number is int(d) or float(d) of the Decimal
    def native(v: Any) -> Any:
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        if isinstance(v, list):
            return [native(x) for x in v]
        if isinstance(v, dict):
            return {k: native(x) for k, x in v.items()}
        if isinstance(v, set):
            return {native(x) for x in v}
        return v

    wire = boto_serialize(value)
    assert canon(deserialize_value(wire, numbers="native")) == canon(
        native(deserialize_value(wire))
    )


@pytest.mark.parametrize("tag", ["L", "M"])
def test_nesting_to_the_limit_and_one_past(boto_deserialize: Fn, tag: str) -> None:
    def nest(levels: int) -> dict[str, Any]:
        av: dict[str, Any] = {"S": "leaf"}
        for _ in range(levels):
            av = {"L": [av]} if tag == "L" else {"M": {"k": av}}
        return av

    # GIVEN 32 levels (DynamoDB's limit) WHEN decoded from dicts and from bytes THEN boto3 agrees
    at_limit = nest(32)
    assert canon(deserialize_value(at_limit)) == canon(boto_deserialize(at_limit))
    event = stream_event([{"a": at_limit}])
    (rec,) = decode_stream_event(json.dumps(event).encode())
    assert canon(rec.new_image) == canon({"a": boto_deserialize(at_limit)})
    # GIVEN 33 levels THEN every path refuses it
    past = nest(33)
    with pytest.raises(DecodeError, match="nesting deeper than DynamoDB's 32 levels"):
        deserialize_value(past)
    with pytest.raises(DecodeError, match=r"^Records\[0\]\.dynamodb\.NewImage\.a"):
        decode_stream_event(json.dumps(stream_event([{"a": past}])).encode())
    with pytest.raises(DecodeError, match="nesting deeper"):
        decode_stream_event(stream_event([{"a": past}]))


def test_json_surrogate_escapes_from_bytes_decode_to_astral_characters() -> None:
    # GIVEN an emoji written as a JSON surrogate-pair escape, and 4-byte UTF-8
    raw = b'{"Records": []}'
    assert decode_stream_event(raw) == []
    image = '{"e": {"S": "\\ud83d\\ude00"}, "u": {"S": "\xf0\x9f\x98\x80"}}'
    event = json.dumps(stream_event([{}])).replace('"NewImage": {}', f'"NewImage": {image}')
    # WHEN decoded from bytes THEN both are the same astral character
    (rec,) = decode_stream_event(event.encode("latin-1"))
    assert rec.new_image == {"e": "\U0001f600", "u": "\U0001f600"}


@settings(max_examples=100, deadline=None)
@given(texts, st.binary(max_size=64))
def test_strings_and_bytes_survive_every_path(text: str, data: bytes) -> None:
    # GIVEN any text and bytes WHEN serialized, wired as JSON and decoded THEN unchanged
    image = serialize_image({"t": text, "b": data})
    wire = {k: to_json_wire(v) for k, v in image.items()}
    (rec,) = decode_stream_event(json.dumps(stream_event([wire])).encode())
    assert rec.new_image == {"t": text, "b": data}
    assert type(rec.new_image["b"]) is bytes


def test_boto3_client_shapes_are_accepted() -> None:
    # GIVEN what a boto3 client returns: bytes/Binary for B, lists for sets
    from boto3.dynamodb.types import Binary

    av = {"M": {"b": {"B": Binary(b"\x00")}, "ba": {"B": bytearray(b"x")}, "bs": {"BS": [b"1"]}}}
    # WHEN decoded THEN plain bytes come out
    assert deserialize_value(av) == {"b": b"\x00", "ba": b"x", "bs": {b"1"}}
    assert all(type(v) is not Binary for v in deserialize_value(av).values())


def test_duplicate_names_in_json_behave_like_json_loads(boto_deserialize: Fn) -> None:
    # GIVEN raw JSON with a repeated attribute name and a repeated tag
    image = '{"a": {"S": "1"}, "b": {"S": "2", "S": "3"}, "a": {"N": "4"}}'
    event = json.dumps(stream_event([{}])).replace('"NewImage": {}', f'"NewImage": {image}')
    # WHEN decoded THEN the result is what json.loads + boto3 give
    (rec,) = decode_stream_event(event.encode())
    expected = {k: boto_deserialize(v) for k, v in json.loads(image).items()}
    assert canon(rec.new_image) == canon(expected)
    assert list(rec.new_image) == ["a", "b"]


@settings(max_examples=100, deadline=None)
@given(images)
def test_deserialize_image_leaves_its_input_as_it_was(boto_serialize: Fn, image: Any) -> None:
    # GIVEN an image as Lambda JSON has it, and a deep copy to compare with
    wire = json.loads(json.dumps({k: to_json_wire(boto_serialize(v)) for k, v in image.items()}))
    before = copy.deepcopy(wire)
    # WHEN it is deserialized (the result starts as a copy of the input dict)
    out = deserialize_image(wire)
    # THEN the input still holds its AttributeValues, in order, and the result is its own dict
    assert wire == before
    assert list(wire) == list(before)
    assert out is not wire
    assert list(out) == list(wire)
    out["added"] = 1
    assert "added" not in wire


def test_a_failed_deserialize_image_leaves_its_input_as_it_was() -> None:
    # GIVEN an image whose third attribute is bad, after two good ones
    wire = {"a": {"S": "x"}, "n": {"N": "1"}, "bad": {"N": "1e999"}, "z": {"S": "y"}}
    before = copy.deepcopy(wire)
    # WHEN deserialized THEN it fails naming the attribute, and the input is untouched
    with pytest.raises(DecodeError, match=r"^bad: "):
        deserialize_image(wire)
    assert wire == before


def test_deserialize_image_of_atomic_values_is_not_gc_tracked() -> None:
    # GIVEN a GC-tracked input dict (its values are dicts) holding only atomic values
    wire = {"a": {"S": "x"}, "n": {"N": "1.5"}, "b": {"BOOL": True}, "z": {"NULL": True}}
    assert gc.is_tracked(wire)
    # WHEN deserialized THEN the result costs the cyclic GC nothing, until a container goes in
    out = deserialize_image(wire)
    assert out == {"a": "x", "n": Decimal("1.5"), "b": True, "z": None}
    assert not gc.is_tracked(out)
    out["l"] = []
    assert gc.is_tracked(out)


def _fresh(text: str) -> str:
    """An equal str that is a new object (one-character strs are CPython singletons)."""
    return "".join(list(text))


def test_type_tags_are_read_right_whatever_key_objects_carry_them() -> None:
    # GIVEN AttributeValues whose multi-letter tag keys are new str objects each time,
    # created and freed between calls (so a freed key's address can come back as another tag)
    cases = [
        ("SS", ["7"], {"7"}),
        ("NS", ["7"], {Decimal(7)}),
        ("BOOL", True, True),
        ("NULL", True, None),
        ("BS", ["Nw=="], {b"7"}),
    ]
    for _ in range(200):
        for tag, raw, want in cases:
            key = _fresh(tag)
            assert key == tag
            assert key is not tag
            # WHEN each is deserialized THEN its own tag decides the value, never a previous one's
            assert deserialize_value({key: raw}) == want
            del key
    # AND interned keys and fresh equal ones give the same results
    fresh = {f"{t}{i}": {_fresh(t): raw} for i, (t, raw, _) in enumerate(cases)}
    interned = {f"{t}{i}": {t: raw} for i, (t, raw, _) in enumerate(cases)}
    assert deserialize_image(fresh) == deserialize_image(interned)
