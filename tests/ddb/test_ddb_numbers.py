"""N values against boto3's DYNAMODB_CONTEXT, at and around every limit."""

from __future__ import annotations

import json
import re
from decimal import Context, Decimal
from typing import Any

import pytest
from aws_lambda_powertools.shared.dynamodb_deserializer import (
    TypeDeserializer as PowertoolsDeserializer,
)
from boto3.dynamodb.types import DYNAMODB_CONTEXT
from ddb_helpers import number_texts, stream_event
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
    """boto3's value for ``text``, or None where boto3 raises, returns a NaN/Infinity, or
    accepts a spelling DynamoDB never sends."""
    try:
        d = DYNAMODB_CONTEXT.create_decimal(text)
    except ArithmeticError:
        return None
    if not d.is_finite() or not GRAMMAR.fullmatch(text):
        return None
    return d


_WIDE = Context(prec=2000, Emax=10**6, Emin=-(10**6))


def dynamodb_number(text: str) -> Decimal | None:
    """The value we must give for ``text``, or None where we must refuse it.

    boto3's Decimal wherever boto3 accepts the text. Else a grammatical nonzero number whose
    value has at most 38 significant digits (leading and trailing zeros not counted, as
    DynamoDB counts), magnitude below 1E+127 and no significant digit below 1E-165: its value
    with the trailing zeros moved into the exponent (what Powertools returns)."""
    expected = boto3_number(text)
    if expected is not None:
        return expected
    if not GRAMMAR.fullmatch(text):
        return None
    d = Decimal(text)
    if d.is_zero() or not -400 <= d.adjusted() <= 400:  # far outside; keeps _WIDE exact
        return None
    n = d.normalize(_WIDE)
    assert n == d, "the wide context must not round"
    _, digits, exp = n.as_tuple()
    assert isinstance(exp, int)
    if len(digits) > 38 or exp < -165 or exp + len(digits) - 1 > 126:
        return None
    return n


# Numbers DynamoDB returns in plain notation that boto3's context refuses (decimal.Rounded):
# from boto3 #2500, #4636, #4693 and Powertools #4845, and DynamoDB's own limits.
PLAIN_FROM_DYNAMODB = {
    "1" + "0" * 38: Decimal("1E+38"),
    "-1" + "0" * 38: Decimal("-1E+38"),
    "110111111111111110000000000000000000000": Decimal("1.1011111111111111E+38"),
    "9" * 38 + "0" * 88: Decimal("9.9999999999999999999999999999999999999E+125"),
    "-" + "9" * 38 + "0" * 88: Decimal("-9.9999999999999999999999999999999999999E+125"),
    "1" + "0" * 125: Decimal("1E+125"),
    "12345678901234567890123456789012345678" + "0" * 10: Decimal(
        "1.2345678901234567890123456789012345678E+47"
    ),
}
# ... and ones boto3 takes as they are (no rounding needed): the smallest magnitude.
PLAIN_BOTO3_TAKES = ["0." + "0" * 129 + "1", "-0." + "0" * 129 + "1", "9" * 38]


@settings(max_examples=3000, deadline=None)
@given(st.one_of(number_texts(trailing_zeros=True), st.text(max_size=12)))
@example("9" * 38)
@example("9" * 39)
@example("1" + "0" * 38)
@example("9" * 38 + "0" * 88)
@example("9" * 38 + "0" * 89)
@example("1" + "0" * 126)
@example("1" + "0" * 127)
@example("1." + "0" * 40)
@example("10E-166")
@example("11E-166")
@example("1E-165")
@example("1E-166")
@example("0E-165")
@example("0E-166")
@example("9.9E+125")
@example("1E+126")
@example("1E+127")
@example("1E+999999999")
@example("1E-999999999")
@example("0E+126")
@example("0E+127")
@example("-0")
@example("NaN")
@example("-Infinity")
@example(" 1")
@example("1_000")
@example("\u0661")
def test_numbers_match_boto3_or_dynamodb_or_are_refused(text: str) -> None:
    # GIVEN number text near DynamoDB's limits (or any text)
    expected = dynamodb_number(text)
    if expected is None:
        # WHEN neither boto3 nor DynamoDB's rule takes it THEN we raise DecodeError
        with pytest.raises(DecodeError):
            deserialize_value({"N": text})
        return
    # WHEN it is taken THEN we give the same Decimal, digit for digit
    got = deserialize_value({"N": text})
    assert isinstance(got, Decimal)
    assert str(got) == str(expected)
    assert got.is_signed() == expected.is_signed()
    # AND it is the value written, and one boto3 can write back as it is
    assert got == Decimal(text)
    assert DYNAMODB_CONTEXT.create_decimal(got) == got


def _event_with(numbers: dict[str, str]) -> dict[str, Any]:
    image = {k: {"N": v} for k, v in numbers.items()}
    image["set"] = {"NS": list(numbers.values())}
    image["list"] = {"L": [{"M": {"n": {"N": v}}} for v in numbers.values()]}
    return stream_event([image])


@pytest.mark.parametrize("text", sorted(PLAIN_FROM_DYNAMODB) + PLAIN_BOTO3_TAKES)
def test_numbers_dynamodb_returns_decode_in_every_mode(text: str) -> None:
    # GIVEN a number as DynamoDB returns it (plain notation), alone, in an NS and in a list
    want = PLAIN_FROM_DYNAMODB.get(text) or DYNAMODB_CONTEXT.create_decimal(text)
    powertools = PowertoolsDeserializer().deserialize({"N": text})
    assert powertools == want  # the value Powertools gives, to the digit
    assert str(powertools) == str(want)
    event = _event_with({"n": text})
    raw = json.dumps(event).encode()

    def check(image: dict[str, Any] | None) -> None:
        assert image is not None
        for got in (image["n"], *image["set"], image["list"][0]["n"]):
            assert isinstance(got, Decimal)
            assert str(got) == str(want)

    # WHEN decoded in every mode THEN each gives that Decimal
    check({"n": deserialize_value({"N": text})} | {"set": set(), "list": [{"n": want}]})
    check(deserialize_image(event["Records"][0]["dynamodb"]["NewImage"]))
    (from_dict,) = decode_stream_event(event)
    check(from_dict.new_image)
    for images in ("python", "tree", "lazy"):
        (rec,) = decode_stream_event(raw, images=images)
        check(rec.new_image)
        got = rec.get("n")
        assert str(got) == str(want)
    # AND natively as the int or float of that value
    native = deserialize_value({"N": text}, numbers="native")
    assert native == (int(want) if want == want.to_integral_value() else float(want))
    (rec,) = decode_stream_event(raw, images="tree", numbers="native")
    assert rec.get("n") == native


@pytest.mark.parametrize(
    "number",
    [
        10**38,
        -(10**38),
        10**125,
        (10**38 - 1) * 10**88,
        Decimal("1" + "0" * 38),
        Decimal("1E+38"),
        Decimal("9.9999999999999999999999999999999999999E+125"),
        Decimal("1E-130"),
        Decimal("1." + "0" * 40),
    ],
)
def test_every_number_dynamodb_stores_serializes(number: int | Decimal) -> None:
    # GIVEN a number DynamoDB stores WHEN serialized THEN N is its text, and it decodes back
    out = serialize_value(number)
    assert out == {"N": str(number)}
    assert deserialize_value(out) == number


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1" * 39, "number has 39 significant digits (DynamoDB allows 38; leading and "),
        ("1" * 39 + "0" * 5, "number has 39 significant digits"),
        ("1" + "0" * 127, "number out of range (magnitude must be below 1E+127;"),
        ("1E+127", "number out of range (magnitude must be below 1E+127;"),
        ("5e-324", "number out of range (a significant digit below 1E-165, the smallest place"),
        ("0E+127", "number out of range (a zero's exponent must be within -165..=126)"),
    ],
)
def test_range_errors_state_the_rule_applied(text: str, message: str) -> None:
    # GIVEN a number outside the rule WHEN decoded or encoded THEN the message states the rule
    with pytest.raises(DecodeError) as info:
        deserialize_value({"N": text})
    assert str(info.value).startswith(message), str(info.value)
    # AND the numbers just inside the stated limits are taken
    if text == "5e-324":
        assert deserialize_value({"N": "1E-165"}) == Decimal("1E-165")
    if text == "1E+127":
        assert deserialize_value({"N": "9" * 38 + "E+88"}) == Decimal("9" * 38 + "E+88")
    with pytest.raises(EncodeError) as enc:
        serialize_value(Decimal(text))
    assert str(enc.value).startswith(message), str(enc.value)


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.integers(-(10**40), 10**40),
        st.integers(-(10**130), 10**130),
        st.integers(1, 10**38 - 1).flatmap(
            lambda i: st.integers(0, 90).map(lambda z: i * 10**z)  # trailing zeros
        ),
        number_texts(trailing_zeros=True).map(Decimal),
    )
)
def test_serialized_numbers_match_boto3_or_dynamodb_or_raise_encode_error(
    number: int | Decimal,
) -> None:
    # GIVEN an int or Decimal WHEN serialized THEN the N text is boto3's, or EncodeError
    try:
        text = str(DYNAMODB_CONTEXT.create_decimal(number))
        ok = text not in ("NaN", "Infinity", "-Infinity")
    except ArithmeticError:
        ok = False
    if ok:
        assert serialize_value(number) == {"N": text}
    elif dynamodb_number(str(number)) is not None:
        # WHEN boto3 refuses a value DynamoDB stores THEN its own text, which decodes back
        out = serialize_value(number)
        assert out == {"N": str(number)}
        assert deserialize_value(out) == number
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
