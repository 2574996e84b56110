"""Helpers for the decoder tests: the boto3 reference, exact comparison, event builders, and
hypothesis strategies for values DynamoDB can hold and number texts near its limits."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, Binary, TypeDeserializer
from hypothesis import strategies as st

from notifier.samples import av_to_json


class LambdaJsonDeserializer(TypeDeserializer):
    """boto3's TypeDeserializer for Lambda JSON, where B/BS hold base64 text (boto3 itself
    only takes bytes there): the reference the decoder is compared with."""

    def _deserialize_b(self, value: Any) -> Any:
        if isinstance(value, str):
            value = base64.b64decode(value, validate=True)
        return super()._deserialize_b(value)


def canon(value: Any) -> Any:
    """A form that compares exactly: Decimal digits and exponent, bytes vs Binary, set
    members, dict order and key types all matter."""
    if isinstance(value, Binary):
        return ("bytes", bytes(value.value))
    if isinstance(value, bytes | bytearray):
        return ("bytes", bytes(value))
    if isinstance(value, Decimal):
        return ("N", str(value), value.is_signed())
    if isinstance(value, bool) or value is None:
        return ("const", value)
    if isinstance(value, int | float | str):
        return (type(value).__name__, value)
    if isinstance(value, set | frozenset):
        return ("set", sorted(repr(canon(v)) for v in value))
    if isinstance(value, list | tuple):
        return ("list", [canon(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(canon(k), canon(v)) for k, v in value.items()])
    raise AssertionError(f"unexpected type {type(value)!r}")


#: A boto3 AttributeValue (bytes for B, lists for sets) as Lambda JSON (base64 text).
to_json_wire = av_to_json


def stream_event(images: list[dict[str, Any]]) -> dict[str, Any]:
    """A stream event whose records carry ``images`` (Lambda JSON) as NewImage."""
    return {
        "Records": [
            {
                "eventID": f"id-{i}",
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1767225600 + i,
                    "Keys": {"pk": {"S": f"k{i}"}},
                    "NewImage": image,
                    "SequenceNumber": str(1000 + i),
                    "SizeBytes": len(json.dumps(image)),
                    "StreamViewType": "NEW_IMAGE",
                },
            }
            for i, image in enumerate(images)
        ]
    }


# Every unicode plane, astral included; surrogates cannot be UTF-8 encoded.
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


@st.composite
def number_texts(draw: st.DrawFn, trailing_zeros: bool = False) -> str:
    """Number text in every written form, steered towards DynamoDB's limits (38 significant
    digits, exponent -165, adjusted exponent 126) and one step past them. With
    ``trailing_zeros`` the digits often end in up to 100 zeros, as DynamoDB writes large
    numbers (1E+38 comes back as 1 and 38 zeros)."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    lead = "0" * draw(st.integers(0, 3))
    ndigits = draw(st.integers(1, 40))
    first = draw(st.sampled_from("0123456789"))
    rest = draw(st.text("0123456789", min_size=ndigits - 1, max_size=ndigits - 1))
    if trailing_zeros and draw(st.booleans()):
        rest += "0" * draw(st.integers(1, 100))
    digits = lead + first + rest
    point = draw(st.one_of(st.none(), st.integers(0, len(digits))))
    frac_len = 0 if point is None else len(digits) - point
    mantissa = digits if point is None else f"{digits[:point]}.{digits[point:]}"
    if mantissa in (".", ""):
        mantissa = "0"
    sig = len((digits).lstrip("0")) or 1
    exp = draw(
        st.one_of(
            st.none(),
            st.integers(-200, 200),
            # adjusted exponent (exp - frac_len + sig - 1) around Emax = 126
            st.integers(-2, 2).map(lambda d: 126 - sig + 1 + frac_len + d),
            # exponent of the last digit around Etiny = -165
            st.integers(-2, 2).map(lambda d: -165 + frac_len + d),
        )
    )
    if exp is None:
        return sign + mantissa
    e = draw(st.sampled_from(["e", "E"]))
    esign = "+" if exp >= 0 and draw(st.booleans()) else ""
    return f"{sign}{mantissa}{e}{esign}{exp}"


def _valid_decimal(text: str) -> Decimal | None:
    try:
        d = DYNAMODB_CONTEXT.create_decimal(text)
    except ArithmeticError:
        return None
    return d if d.is_finite() else None


# Decimals DynamoDB can store (what boto3 accepts), including "-0" and tiny exponents.
decimals = number_texts().map(_valid_decimal).filter(lambda d: d is not None)
huge_ints = st.integers(-(10**38) + 1, 10**38 - 1)
ints = st.one_of(st.integers(-(2**63), 2**63), huge_ints)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    texts,
    st.binary(max_size=24),
    decimals,
    ints,
    st.frozensets(texts, max_size=4).map(set),
    st.frozensets(st.binary(max_size=8), max_size=4).map(set),
    st.frozensets(ints, min_size=1, max_size=4).map(set),
)


def values(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    """Python values as boto3 serializes them (nested lists and maps of scalars)."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(texts, inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


images = st.dictionaries(texts.filter(bool), values(), max_size=6)


KINESIS_STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/notifier-changes"


def to_kinesis_event(stream_event: dict[str, Any], *, unit: str = "ms") -> dict[str, Any]:
    """A DynamoDB Streams event's records as Kinesis Data Streams for DynamoDB delivers them:
    each change record (no ``SequenceNumber``/``StreamViewType``, ``ApproximateCreationDateTime``
    in ``unit``: "ms" or "us") base64 in ``kinesis.data`` of a Lambda Kinesis record."""
    scale = {"ms": 1000, "us": 1_000_000}[unit]
    records = []
    for i, rec in enumerate(stream_event["Records"]):
        ddb = {
            k: v
            for k, v in rec["dynamodb"].items()
            if k not in ("SequenceNumber", "StreamViewType")
        }
        if "ApproximateCreationDateTime" in ddb:
            ddb["ApproximateCreationDateTime"] = int(ddb["ApproximateCreationDateTime"] * scale)
        change = {
            "awsRegion": rec.get("awsRegion", "us-east-1"),
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
                    "data": base64.b64encode(json.dumps(change).encode()).decode(),
                    "approximateArrivalTimestamp": 1733371200.5,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/notifier",
                "awsRegion": "us-east-1",
                "eventSourceARN": KINESIS_STREAM_ARN,
            }
        )
    return {"Records": records}
