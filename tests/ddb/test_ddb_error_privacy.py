"""Decoder errors never quote attribute values (issue #25, item 7).

Error texts end up in failure reasons, logs and ledger entries, so a value (an email address,
a name) must never appear in one. Every error path is fed a value holding a distinctive marker,
through every way of decoding, and the marker must not appear in the message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from notifier.ddb import (
    DecodeError,
    EncodeError,
    RecordError,
    decode_stream_event,
    deserialize_image,
    deserialize_value,
    serialize_value,
)

EMAIL = "jane.doe@corp.example"
# Markers for the values that cannot hold an email: digits, base64 text, a JSON number.
DIGITS = "31415926535897932384626433832795028841971"  # 41 digits
B64 = "amFuZS5kb2VAY29ycC5leGFtcGxl"  # base64 of the email, 28 characters
B64_CUT = B64[:-1]  # a length that is no whole number of base64 blocks
JSON_NUMBER = 271828182845

MARKERS = [EMAIL, DIGITS, B64, B64_CUT, str(JSON_NUMBER), "271828182845"]

# An AttributeValue holding a marker in a value, that every decoder must refuse.
BAD_VALUES: dict[str, Any] = {
    "N not a number": {"N": EMAIL},
    "N email with digits": {"N": "1" + EMAIL},
    "N 41 digits": {"N": DIGITS},
    "N 41 digits, exponent": {"N": DIGITS + "E+5"},
    "N too large": {"N": "3141592653589793238" + "0" * 120},
    "N too small": {"N": "0." + "0" * 170 + "31415926535"},
    "N zero out of range": {"N": "0E+271828182845"},
    "N a JSON number": {"N": JSON_NUMBER},
    "N a float": {"N": 2718281.82845},
    "B not base64": {"B": EMAIL},
    "B cut base64": {"B": B64_CUT},
    "B padding": {"B": B64 + "="},
    "B a number": {"B": JSON_NUMBER},
    "BS member": {"BS": ["QUJD", EMAIL]},
    "BS cut member": {"BS": [B64_CUT]},
    "NS member": {"NS": ["1", EMAIL]},
    "NS long member": {"NS": ["2", DIGITS]},
    "NS not a list": {"NS": EMAIL},
    "SS member a number": {"SS": [EMAIL, JSON_NUMBER]},
    "SS not a list": {"SS": EMAIL},
    "S a number": {"S": JSON_NUMBER},
    "BOOL a string": {"BOOL": EMAIL},
    "BOOL a number": {"BOOL": JSON_NUMBER},
    "NULL a string": {"NULL": EMAIL},
    "NULL a number": {"NULL": JSON_NUMBER},
    "M a string": {"M": EMAIL},
    "L a string": {"L": EMAIL},
    "not an AttributeValue": EMAIL,
    "nested in M and L": {"M": {"user": {"L": [{"S": "a"}, {"M": {"email": {"N": EMAIL}}}]}}},
    "nested member of a plain map": {"M": {"user": {"email": EMAIL}}},
    "deeper than 32 levels": json.loads('{"L": [' * 33 + json.dumps({"S": EMAIL}) + "]}" * 33),
}


def _event(av: Any, **record: Any) -> dict[str, Any]:
    rec = {
        "eventID": "id-0",
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": {"pk": {"S": "k"}},
            "NewImage": {"ok": {"S": "x"}, "bad": av},
            "SequenceNumber": "100",
        },
    }
    rec.update(record)
    good = json.loads(json.dumps(rec))
    good["dynamodb"]["NewImage"] = {"ok": {"S": "x"}}
    return {"Records": [good, rec, good]}


def _assert_private(message: str) -> None:
    for marker in MARKERS:
        assert marker not in message, message


def _all_errors(event: dict[str, Any] | bytes) -> list[str]:
    """The message of every way of decoding ``event``: raise and collect, bytes in every image
    mode and the parsed dict; each must fail on record 1."""
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    forms: list[Any] = [raw, raw.decode()]
    if not isinstance(event, bytes):
        forms.append(event)
    messages = []
    for form in forms:
        modes = ["python", "tree", "lazy"] if isinstance(form, bytes | str) else ["python"]
        for images in modes:
            with pytest.raises(DecodeError) as info:
                decode_stream_event(form, images=images)  # type: ignore[call-overload]
            messages.append(str(info.value))
            out = decode_stream_event(form, errors="collect", images=images)  # type: ignore[call-overload]
            errs = [r for r in out if isinstance(r, RecordError)]
            assert [e.index for e in errs] == [1], out
            messages += [str(errs[0].error), repr(errs[0])]
    return messages


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_value_errors_never_quote_the_value(name: str) -> None:
    # GIVEN an AttributeValue holding a marker that no decoder may accept
    av = BAD_VALUES[name]
    # WHEN decoded alone, in an image, and in a stream event (every mode, raise and collect)
    messages = []
    with pytest.raises(DecodeError) as info:
        deserialize_value(av)
    messages.append(str(info.value))
    with pytest.raises(DecodeError) as info:
        deserialize_image({"ok": {"S": "x"}, "bad": av})
    messages.append(str(info.value))
    assert str(info.value).startswith("bad"), str(info.value)
    messages += _all_errors(_event(av))
    # THEN no message holds the marker, and each still names the record and the attribute
    for message in messages:
        _assert_private(message)
    for message in messages[2:]:
        assert "Records[1].dynamodb.NewImage.bad" in message, message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("eventName", EMAIL),
        ("eventName", JSON_NUMBER),
        ("eventID", JSON_NUMBER),
        ("dynamodb.SizeBytes", EMAIL),
        ("dynamodb.ApproximateCreationDateTime", EMAIL),
        ("dynamodb.SequenceNumber", JSON_NUMBER),
        ("dynamodb.StreamViewType", JSON_NUMBER),
        ("dynamodb.NewImage", EMAIL),
        ("dynamodb.Keys", [EMAIL]),
        ("dynamodb", EMAIL),
    ],
)
def test_record_field_errors_never_quote_the_value(field: str, value: Any) -> None:
    # GIVEN a record whose envelope field holds a marker of the wrong type or value
    event = _event({"S": "x"})
    target = event["Records"][1]
    *parents, last = field.split(".")
    for p in parents:
        target = target[p]
    target[last] = value
    # WHEN decoded in every way THEN the message names the field, not the value
    for message in _all_errors(event):
        _assert_private(message)
        assert message.startswith("Records[1]") or "Records[1]" in message, message


@pytest.mark.parametrize(
    "text",
    [
        # truncated inside a string, a number, an object
        '{"Records": [{"eventID": "' + EMAIL,
        '{"Records": [{"eventID": "1", "n": ' + str(JSON_NUMBER),
        '{"Records": [{"eventID": "' + EMAIL + '"',
        # not JSON at the marker
        '{"Records": [' + EMAIL + "]}",
        '{"Records": [{"eventID": ' + EMAIL + "}]}",
        # a bad escape and a control character inside a value
        '{"Records": [{"eventID": "jane\\q' + EMAIL + '"}]}',
        '{"Records": [{"eventID": "\u0001' + EMAIL + '"}]}',
        # trailing text after the event
        '{"Records": []} ' + EMAIL,
        '{"Records": []}' + str(JSON_NUMBER),
        # the envelope of the wrong type
        '{"Records": "' + EMAIL + '"}',
        '{"Records": ' + str(JSON_NUMBER) + "}",
        json.dumps(EMAIL),
    ],
)
def test_envelope_syntax_errors_never_quote_the_input(text: str) -> None:
    # GIVEN event text that is not JSON (or no event) at a marker
    for form in (text.encode(), text):
        for errors in ("raise", "collect"):
            for images in ("python", "tree", "lazy"):
                # WHEN decoded THEN DecodeError, and its message holds no snippet of the input
                with pytest.raises(DecodeError) as info:
                    decode_stream_event(form, errors=errors, images=images)  # type: ignore[call-overload]
                _assert_private(str(info.value))


@pytest.mark.parametrize(
    "record_text",
    [
        # syntax errors inside one record: the batch's other records survive in collect mode
        '{"eventID": "1", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "1", '
        '"Keys": {}, "NewImage": {"a": {"S": "' + EMAIL + '\\x"}}}}',
        '{"eventID": "1", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "1", '
        '"Keys": {}, "NewImage": {"a": {"N": ' + str(JSON_NUMBER) + "}}}}",
        '{"eventID": "1", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "1", '
        '"Keys": {}, "NewImage": {"a": {"S": "' + EMAIL + '", "S": 1}}}}',
        '{"eventID": "1", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "1", '
        '"Keys": {}, "NewImage": {"a": {"SS": ["' + EMAIL + '", ' + str(JSON_NUMBER) + "]}}}}",
        '{"eventID": "1", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "1", '
        '"Keys": {}, "NewImage": {"a": {"BOOL": tru' + EMAIL + "}}}}",
    ],
)
def test_record_text_errors_never_quote_the_input(record_text: str) -> None:
    # GIVEN a raw event whose middle record is malformed JSON (or AttributeValue) at a marker
    good = json.dumps(_event({"S": "x"})["Records"][0])
    raw = ('{"Records": [' + good + ", " + record_text + ", " + good + "]}").encode()
    for images in ("python", "tree", "lazy"):
        # WHEN decoded, raising or collecting
        with pytest.raises(DecodeError) as info:
            decode_stream_event(raw, images=images)  # type: ignore[call-overload]
        messages = [str(info.value)]
        try:
            out = decode_stream_event(raw, errors="collect", images=images)  # type: ignore[call-overload]
        except DecodeError as exc:  # a syntax error may spoil the whole envelope
            messages.append(str(exc))
        else:
            errs = [r for r in out if isinstance(r, RecordError)]
            assert [e.index for e in errs] == [1]
            messages += [str(errs[0].error), repr(errs[0])]
        # THEN no message holds the marker
        for message in messages:
            _assert_private(message)


ENCODE_BAD: list[Callable[[], Any]] = [
    lambda: serialize_value({"n": __import__("decimal").Decimal(DIGITS)}),
    lambda: serialize_value({"n": __import__("decimal").Decimal(DIGITS + "E+100")}),
    lambda: serialize_value({"n": __import__("decimal").Decimal("3.1415926535E-200")}),
    lambda: serialize_value({"n": int(DIGITS) * 10**100}),
    lambda: serialize_value({"n": {1, 2.5}}),
]


@pytest.mark.parametrize("call", ENCODE_BAD)
def test_encode_errors_never_quote_the_value(call: Callable[[], Any]) -> None:
    # GIVEN a number DynamoDB cannot store WHEN serialized THEN EncodeError without its digits
    with pytest.raises(EncodeError) as info:
        call()
    _assert_private(str(info.value))
    assert "3141592653" not in str(info.value)


def test_attribute_names_are_cut_in_paths() -> None:
    # GIVEN an attribute name of 1,000 characters holding a bad value
    name = "n" * 1000
    # WHEN decoded THEN the path shows the name's first 64 characters
    for call in (
        lambda: deserialize_image({name: {"N": EMAIL}}),
        lambda: decode_stream_event(json.dumps(_event({"M": {name: {"N": "x"}}})).encode()),
    ):
        with pytest.raises(DecodeError) as info:
            call()
        message = str(info.value)
        assert "n" * 64 + "...:" in message or "n" * 64 + "...: " in message, message
        assert "n" * 65 not in message
        _assert_private(message)


def test_names_in_type_tag_errors_are_cut() -> None:
    # GIVEN a plain mapping where an AttributeValue belongs (its keys are names, not tags)
    keys = {f"{'k' * 100}{i}": i for i in range(5)}
    # WHEN decoded THEN up to three names are shown, each cut to 40 characters
    with pytest.raises(DecodeError) as info:
        deserialize_value(keys)
    message = str(info.value)
    assert message.startswith("expected exactly one type tag, found 5 keys: "), message
    assert "k" * 41 not in message
    with pytest.raises(DecodeError, match=r'^unknown type tag "k{40}\.\.\."$'):
        deserialize_value({"k" * 100: 1})
