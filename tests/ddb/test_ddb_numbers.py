"""N values against boto3's DYNAMODB_CONTEXT, at and around every limit."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from boto3.dynamodb.types import DYNAMODB_CONTEXT
from ddb_helpers import number_texts
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifier.ddb import (
    DecodeError,
    EncodeError,
    decode_stream_event,
    deserialize_image,
    deserialize_value,
    serialize_value,
)

GRAMMAR = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def boto3_number(text: str) -> Decimal | None:
    """boto3's value for ``text``, or None where we must refuse it (boto3 raises, returns a
    NaN/Infinity, or accepts a spelling DynamoDB never sends)."""
    try:
        d = DYNAMODB_CONTEXT.create_decimal(text)
    except ArithmeticError:
        return None
    if not d.is_finite() or not GRAMMAR.fullmatch(text):
        return None
    return d


@settings(max_examples=3000, deadline=None)
@given(st.one_of(number_texts(), st.text(max_size=12)))
@example("9" * 38)
@example("9" * 39)
@example("1" + "0" * 38)
@example("1E-165")
@example("1E-166")
@example("0E-165")
@example("0E-166")
@example("9.9E+125")
@example("1E+126")
@example("1E+127")
@example("0E+126")
@example("0E+127")
@example("-0")
@example("NaN")
@example("-Infinity")
@example(" 1")
@example("1_000")
@example("\u0661")
def test_numbers_match_boto3_or_are_refused(text: str) -> None:
    # GIVEN number text near DynamoDB's limits (or any text)
    expected = boto3_number(text)
    if expected is None:
        # WHEN boto3 refuses it (or would return NaN) THEN we raise DecodeError
        with pytest.raises(DecodeError):
            deserialize_value({"N": text})
        return
    # WHEN boto3 accepts it THEN we give the same Decimal, digit for digit
    got = deserialize_value({"N": text})
    assert isinstance(got, Decimal)
    assert str(got) == str(expected)
    assert got.is_signed() == expected.is_signed()


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.integers(-(10**40), 10**40),
        st.integers(-(10**130), 10**130),
        number_texts().map(Decimal),
    )
)
def test_serialized_numbers_match_boto3_or_raise_encode_error(number: int | Decimal) -> None:
    # GIVEN an int or Decimal WHEN serialized THEN the N text is boto3's, or EncodeError
    try:
        text = str(DYNAMODB_CONTEXT.create_decimal(number))
        ok = text not in ("NaN", "Infinity", "-Infinity")
    except ArithmeticError:
        ok = False
    if ok:
        assert serialize_value(number) == {"N": text}
    else:
        with pytest.raises(EncodeError):
            serialize_value(number)


@pytest.mark.parametrize(
    "texts",
    [
        ("1.5", "1.50", "15E-1"),
        ("0", "-0", "0.0", "0E+2"),
        # long integers (built from an int, not parsed from text): signs, zeros, 18/19 digits
        ("1767225600", "-0000000", "-00000001", "0001767225600", "999999999999999999"),
        ("-999999999999999999", "1000000000000000000", "-9223372036854775809", "00000000"),
    ],
)
def test_equal_numbers_keep_their_own_digits_on_every_path(texts: tuple[str, ...]) -> None:
    # GIVEN short number texts that are equal as values but spelled differently
    # (short numbers' Decimals are shared across calls and batches)
    image = {f"n{i}": {"N": t} for i, t in enumerate(texts)}
    event = {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "dynamodb": {"Keys": image, "NewImage": image, "SequenceNumber": "1"},
            }
        ]
    }
    for _ in range(2):  # the second round reads what the first one cached
        # WHEN decoded from dicts, from bytes and from a parsed event
        (from_bytes,) = decode_stream_event(json.dumps(event).encode())
        (from_event,) = decode_stream_event(event)
        for got in (deserialize_image(image), from_bytes.new_image, from_event.new_image):
            # THEN each number has exactly boto3's digits, not another spelling's
            assert [str(got[f"n{i}"]) for i in range(len(texts))] == [
                str(boto3_number(t)) for t in texts
            ]
