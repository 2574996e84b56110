"""Kinesis Data Streams for DynamoDB: Lambda Kinesis events decoded into StreamRecords."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from ddb_helpers import KINESIS_STREAM_ARN, canon, to_kinesis_event

from notifier.ddb import (
    DecodeError,
    RecordError,
    StreamRecord,
    decode_kinesis_event,
    decode_stream_event,
)
from notifier.samples import make_stream_event

MODES = ["python", "tree", "lazy"]


def _forms(event: dict[str, Any]) -> list[Any]:
    text = json.dumps(event)
    return [text.encode(), text, bytearray(text.encode()), event]


@pytest.mark.parametrize("images", MODES)
@pytest.mark.parametrize("form", range(4), ids=["bytes", "str", "bytearray", "dict"])
def test_kinesis_records_equal_the_stream_records_they_carry(
    images: str, form: int, boto_deserialize: Callable[[Any], Any]
) -> None:
    # GIVEN 40 sample stream records (INSERT, MODIFY, REMOVE) re-delivered through Kinesis
    stream = make_stream_event(40)
    event = _forms(to_kinesis_event(stream))[form]
    # WHEN decoded, explicitly and by auto-detection
    for records in (
        decode_kinesis_event(event, images=images),
        decode_stream_event(event, images=images),
    ):
        # THEN every record carries the change record's values and the Kinesis identifiers
        assert len(records) == 40
        for i, (rec, src) in enumerate(zip(records, stream["Records"], strict=True)):
            assert isinstance(rec, StreamRecord)
            ddb = src["dynamodb"]
            assert rec.index == i
            assert rec.event_id == src["eventID"]
            assert rec.event_name == src["eventName"]
            assert rec.sequence_number == f"4965{i:052d}"
            assert rec.event_source_arn == KINESIS_STREAM_ARN
            assert rec.aws_region == "us-east-1"
            assert rec.stream_view_type is None
            assert rec.approximate_creation_time == pytest.approx(
                ddb["ApproximateCreationDateTime"]
            )
            assert rec.size_bytes == ddb["SizeBytes"]
            for name, got in (
                ("Keys", rec.keys),
                ("NewImage", rec.new_image),
                ("OldImage", rec.old_image),
            ):
                want = ddb.get(name)
                expect = None if want is None else {k: boto_deserialize(v) for k, v in want.items()}
                assert canon(got) == canon(expect), name
            assert json.loads(rec.raw)["eventID"] == src["eventID"]
            assert rec.get("pk") == (rec.new_image or rec.old_image or {}).get("pk")


@pytest.mark.parametrize(
    ("unit", "value", "seconds"),
    [
        ("ms", 1_733_371_200_123, 1_733_371_200.123),
        ("us", 1_733_371_200_123_456, 1_733_371_200.123456),
        ("ms", 1_577_836_800_000, 1_577_836_800.0),  # 2020, the feature's launch
        ("us", 100_000_000_000_000, 100_000_000.0),  # 1e14 us: 1973, read as microseconds
        ("ms", 99_999_999_999_999, 99_999_999_999.999),  # just below: milliseconds (year 5138)
    ],
)
def test_creation_time_is_seconds_whatever_the_table_precision(
    unit: str, value: int, seconds: float
) -> None:
    event = to_kinesis_event(make_stream_event(1))
    rec = event["Records"][0]
    change = json.loads(base64.b64decode(rec["kinesis"]["data"]))
    change["dynamodb"]["ApproximateCreationDateTime"] = value
    rec["kinesis"]["data"] = base64.b64encode(json.dumps(change).encode()).decode()
    for form in _forms(event):
        (got,) = decode_kinesis_event(form)
        assert got.approximate_creation_time == pytest.approx(seconds, abs=1e-6)


SECRET = "jane.secret@example.com"


def _bad_event() -> tuple[dict[str, Any], list[str]]:
    """Records: good, bad base64, not UTF-8, bad inner JSON, bad AttributeValue, no kinesis,
    no sequenceNumber, good; each bad one with SECRET somewhere in its data."""
    event = to_kinesis_event(make_stream_event(3))
    good, last = event["Records"][0], event["Records"][2]

    def with_data(data: str, seq: str) -> dict[str, Any]:
        rec = json.loads(json.dumps(good))
        rec["kinesis"]["data"] = data
        rec["kinesis"]["sequenceNumber"] = seq
        return rec

    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    change = json.loads(base64.b64decode(good["kinesis"]["data"]))
    change["dynamodb"]["NewImage"]["email"] = {"Q": SECRET}
    records = [
        good,
        with_data(SECRET + "!!", "s1"),
        with_data(b64(b"\xff\xfe" + SECRET.encode()), "s2"),
        with_data(b64(('{"eventName": "' + SECRET).encode()), "s3"),
        with_data(b64(json.dumps(change).encode()), "s4"),
        {"eventSource": "aws:kinesis", "eventSourceARN": SECRET},
        {"eventSource": "aws:kinesis", "kinesis": {"data": b64(SECRET.encode())}},
        last,
    ]
    prefixes = [
        "",
        "Records[1].kinesis.data: invalid base64",
        "Records[2].kinesis.data: payload is not valid UTF-8",
        "Records[3].kinesis.data",
        'Records[4].kinesis.data.dynamodb.NewImage.email: unknown type tag "Q"',
        'Records[5]: missing required field "kinesis"',
        'Records[6].kinesis: missing required field "sequenceNumber"',
        "",
    ]
    return {"Records": records}, prefixes


@pytest.mark.parametrize("images", MODES)
@pytest.mark.parametrize("form", range(4), ids=["bytes", "str", "bytearray", "dict"])
def test_a_bad_record_fails_alone_and_never_quotes_its_data(images: str, form: int) -> None:
    event, prefixes = _bad_event()
    records = decode_stream_event(_forms(event)[form], errors="collect", images=images)
    assert [type(r) for r in records] == [StreamRecord] + [RecordError] * 6 + [StreamRecord]
    for rec, prefix in zip(records, prefixes, strict=True):
        if isinstance(rec, RecordError):
            message = str(rec.error)
            assert isinstance(rec.error, DecodeError)
            assert message.startswith(prefix), message
            assert SECRET not in message
            assert "secret" not in message
            # raw: the Kinesis record as received, for dead-lettering
            assert json.loads(rec.raw) == event["Records"][rec.index]
    seqs = [r.sequence_number for r in records]
    assert seqs[1:5] == ["s1", "s2", "s3", "s4"]
    assert seqs[5] is None
    assert seqs[6] is None
    bad_av = records[4]
    assert isinstance(bad_av, RecordError)
    # the change record's eventID, read from the payload that failed
    good_change = json.loads(base64.b64decode(event["Records"][0]["kinesis"]["data"]))
    assert bad_av.event_id == good_change["eventID"]


def test_errors_raise_stops_at_the_first_bad_record() -> None:
    event, _ = _bad_event()
    with pytest.raises(DecodeError, match=r"^Records\[1\]\.kinesis\.data: invalid base64"):
        decode_kinesis_event(json.dumps(event))
    with pytest.raises(DecodeError, match=r"^Records\[1\]\.kinesis\.data: invalid base64"):
        decode_kinesis_event(event)


def test_envelope_errors_and_the_source_argument() -> None:
    for bad in (b"", b"[]", b"{}", b'{"Records": 5}', b"nope"):
        with pytest.raises(DecodeError):
            decode_kinesis_event(bad)
    with pytest.raises(ValueError, match="source must be"):
        decode_stream_event(b'{"Records": []}', source="sqs")  # type: ignore[call-overload]
    stream = make_stream_event(2)
    kinesis = to_kinesis_event(stream)
    # auto: a streams event stays a streams event, in every form
    for form in _forms(stream):
        recs = decode_stream_event(form)
        assert [r.sequence_number for r in recs] == [
            r["dynamodb"]["SequenceNumber"] for r in stream["Records"]
        ]
    # forced the wrong way, every record fails on its own
    for form in _forms(stream):
        wrong = decode_kinesis_event(form, errors="collect")
        assert all(isinstance(r, RecordError) for r in wrong)
        assert str(wrong[0].error) == 'Records[0]: missing required field "kinesis"'  # type: ignore[union-attr]
    for form in _forms(kinesis):
        wrong = decode_stream_event(form, errors="collect", source="dynamodb")
        assert all(isinstance(r, RecordError) for r in wrong)
    assert decode_stream_event(b'{"Records": []}', source="kinesis") == []


def test_the_handler_decodes_either_source() -> None:
    # GIVEN the handler's hot path (decode, render) as the Lambda handler builds it
    from notifier.handler import _hot_path
    from notifier.settings import Settings

    decode, _render = _hot_path(Settings())
    stream = make_stream_event(5)
    kinesis = to_kinesis_event(stream)
    for form in (json.dumps(kinesis).encode(), kinesis):
        # WHEN a Kinesis event arrives THEN its records carry the Kinesis sequence numbers
        records = decode(form)
        assert [r.sequence_number for r in records] == [f"4965{i:052d}" for i in range(5)]
        assert [r.event_id for r in records] == [r["eventID"] for r in stream["Records"]]
    for form in (json.dumps(stream).encode(), stream):
        # AND a DynamoDB Streams event still decodes as one
        records = decode(form)
        assert [r.sequence_number for r in records] == [
            r["dynamodb"]["SequenceNumber"] for r in stream["Records"]
        ]


def test_payload_text_as_json_writes_it() -> None:
    # GIVEN one Kinesis record whose base64 data is written with JSON escapes or spaces
    event = to_kinesis_event(make_stream_event(1))
    data = event["Records"][0]["kinesis"]["data"]
    raw = json.dumps(event)
    (want,) = decode_kinesis_event(raw)
    escaped = {
        # \\u escapes, escaped whitespace around it (ASCII whitespace is trimmed), spaces
        "unicode": raw.replace(data, "\\u00" + f"{ord(data[0]):02x}" + data[1:]),
        "many": raw.replace(data, data.replace("e", "\\u0065")),
        "escaped whitespace": raw.replace(data, "\\n" + data + "\\t"),
        "spaces": raw.replace(data, "  " + data + " "),
    }
    for name, text in escaped.items():
        assert text != raw, name
        # WHEN decoded THEN the record is the one the plain text gives
        (got,) = decode_kinesis_event(text)
        assert (got.sequence_number, got.event_id, got.new_image, got.raw) == (
            want.sequence_number,
            want.event_id,
            want.new_image,
            want.raw,
        ), name
    # AND a raw control character in the data is not JSON: the envelope's DecodeError
    for ctrl in ("\t", "\n", "\x01"):
        with pytest.raises(DecodeError, match="not a Kinesis event"):
            decode_kinesis_event(raw.replace(data, data + ctrl))


@pytest.mark.parametrize(
    "data",
    ["QQ", "QR==", "QUJ=", "Q===", "QUJD-_", "QUJD\\u0000", "QU JD", "====", "\\\\QUJD", "é"],
)
def test_invalid_base64_is_the_records_typed_error(data: str) -> None:
    # GIVEN a good record and one whose data is not canonical padded base64 (missing padding,
    # trailing bits set, URL-safe letters, NUL, inner space, a backslash, non-ASCII)
    event = to_kinesis_event(make_stream_event(2))
    raw = json.dumps(event).replace(event["Records"][1]["kinesis"]["data"], data)
    parsed = json.loads(raw)
    for form in (raw, raw.encode(), parsed):
        # WHEN decoded THEN that record is a RecordError naming only the data's length
        good, bad = decode_kinesis_event(form, errors="collect")
        assert isinstance(good, StreamRecord)
        assert isinstance(bad, RecordError)
        assert isinstance(bad.error, DecodeError)
        n = len(parsed["Records"][1]["kinesis"]["data"])
        assert str(bad.error) == f"Records[1].kinesis.data: invalid base64 ({n} characters)"
        assert bad.sequence_number == f"4965{1:052d}"
        # AND with errors="raise" the same message is raised
        with pytest.raises(DecodeError, match=r"^Records\[1\]\.kinesis\.data: invalid base64"):
            decode_kinesis_event(form)
