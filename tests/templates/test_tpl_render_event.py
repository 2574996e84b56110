"""Decode and render in one call (``TemplateSet.render_event``): decode -> route -> render."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from tpl_helpers import MakeSet

from notifier import samples
from notifier.ddb import DecodeError, RecordError, decode_kinesis_event, decode_stream_event
from notifier.templates import Rendered, TemplateError, TemplateSet

EVENTS = Path(__file__).parent / "events"


@pytest.fixture
def batch() -> dict[str, Any]:
    """A realistic 60-record batch: every event type, INSERT/MODIFY/REMOVE, 5 locales."""
    return samples.make_stream_event(60)


def _two_step(ts: TemplateSet, raw: bytes) -> list[Rendered | TemplateError]:
    """The same work as two calls: decode, then render_records routed by event type."""
    records = decode_stream_event(raw)
    names = [r.get("event_type") for r in records]
    locales = [r.get("user.locale") for r in records]
    return ts.render_records(records, names, locales)


@pytest.mark.parametrize("as_type", [bytes, str, bytearray])
def test_one_call_equals_decode_then_render_records(
    builtin_set: TemplateSet, batch: dict[str, Any], as_type: type
) -> None:
    # GIVEN the raw event as bytes, str or bytearray
    raw = json.dumps(batch).encode()
    event = raw.decode() if as_type is str else as_type(raw)
    # WHEN rendered in one call, routed by event type (the default) and localized by user
    got = builtin_set.render_event(event)
    # THEN every record renders exactly as decode_stream_event + render_records gives it
    assert got == _two_step(builtin_set, raw)
    assert len(got) == 60
    assert all(isinstance(r, Rendered) for r in got)


def test_parsed_event_renders_like_raw_bytes(
    builtin_set: TemplateSet, batch: dict[str, Any]
) -> None:
    # GIVEN the event as the Python Lambda runtime hands it (parsed dicts)
    raw = json.dumps(batch).encode()
    # WHEN rendered from the dict and from the bytes THEN the results are equal
    assert builtin_set.render_event(batch) == builtin_set.render_event(raw)


def test_a_mapping_routes_and_skips_unmapped_records(
    make_set: MakeSet, batch: dict[str, Any]
) -> None:
    # GIVEN one template serving two event types, and a mapping without the third
    ts = make_set({"people/body.txt": "{{ event_type }} for {{ user.id }}"})
    raw = json.dumps(batch).encode()
    records = decode_stream_event(raw)
    # WHEN rendered through the mapping
    got = ts.render_event(raw, {"friend_request": "people", "profile_view": "people"})
    # THEN mapped records render with the mapped template, the others are None
    for r, rec in zip(got, records, strict=True):
        kind = rec.get("event_type")
        if kind in ("friend_request", "profile_view"):
            assert isinstance(r, Rendered)
            assert r.text == f"{kind} for {rec.get('user.id')}"
        else:
            assert r is None
    assert {rec.get("event_type") for rec in records} >= {"application_update"}


def test_one_name_for_all_records_and_a_fixed_default_locale(make_set: MakeSet) -> None:
    # GIVEN a single template and records in German and English
    ts = make_set(
        {
            "hello/body.txt": "Hello {{ user.name }} ({{ event.name }})",
            "hello/de/body.txt": "Hallo {{ user.name }} ({{ event.name }})",
        }
    )
    event = samples.make_stream_event(10)
    locales = [r.get("user.locale") for r in decode_stream_event(event)]
    # WHEN rendered with one name and the locale from the image (default path)
    by_user = ts.render_event(event, "hello")
    # AND with locale=None (always the default locale)
    default = ts.render_event(event, "hello", locale=None)
    # THEN the user's locale picks the folder, and None always gives the default
    for r, loc in zip(by_user, locales, strict=True):
        assert isinstance(r, Rendered)
        assert r.text.startswith("Hallo " if loc.startswith("de") else "Hello ")
    assert all(isinstance(r, Rendered) and r.text.startswith("Hello ") for r in default)


def test_route_by_another_attribute(make_set: MakeSet) -> None:
    # GIVEN templates named after the user's locale, routed by a nested attribute
    ts = make_set({"de/body.txt": "de {{ user.id }}", "en/body.txt": "en {{ user.id }}"})
    event = samples.make_stream_event(12)
    records = decode_stream_event(event)
    # WHEN rendered with route="user.locale" and the template named by its value
    got = ts.render_event(event, route="user.locale", locale=None)
    # THEN records in de/en render their template; the others (en-US, de-AT, ...) are
    # unknown templates: a TemplateError in their own slot
    for r, rec in zip(got, records, strict=True):
        loc = rec.get("user.locale")
        if loc in ("de", "en"):
            assert isinstance(r, Rendered)
            assert r.text == f"{loc} {rec.get('user.id')}"
        else:
            assert isinstance(r, TemplateError)
            assert "unknown template" in str(r)


@pytest.mark.parametrize("parsed", [False, True])
def test_a_bad_record_is_its_record_error_and_the_rest_render(
    builtin_set: TemplateSet, batch: dict[str, Any], parsed: bool
) -> None:
    # GIVEN a batch whose record 3 has an unknown type tag
    batch["Records"][3]["dynamodb"]["NewImage"]["user"] = {"Q": "?"}
    raw = json.dumps(batch).encode()
    # WHEN rendered in one call
    got = builtin_set.render_event(batch if parsed else raw)
    # THEN slot 3 is the RecordError decode_stream_event(errors="collect") gives
    bad = got[3]
    assert isinstance(bad, RecordError)
    want = decode_stream_event(batch if parsed else raw, errors="collect")[3]
    assert isinstance(want, RecordError)
    assert (bad.index, bad.event_id, bad.sequence_number) == (
        3,
        want.event_id,
        want.sequence_number,
    )
    assert str(bad.error) == str(want.error)
    assert isinstance(bad.error, DecodeError)
    assert "Records[3]" in str(bad.error)
    assert json.loads(bad.raw) == batch["Records"][3]
    # AND every other record rendered
    assert all(isinstance(r, Rendered) for i, r in enumerate(got) if i != 3)


def test_a_template_failure_fails_only_its_record(
    builtin_set: TemplateSet, batch: dict[str, Any]
) -> None:
    # GIVEN an application update without data.job (the template needs it)
    records = batch["Records"]
    i = next(
        i
        for i, r in enumerate(records)
        if r["dynamodb"].get("NewImage", {}).get("event_type", {}).get("S") == "application_update"
    )
    del records[i]["dynamodb"]["NewImage"]["data"]["M"]["job"]
    # WHEN rendered THEN that slot is a TemplateError naming template and variable
    got = builtin_set.render_event(json.dumps(batch))
    bad = got[i]
    assert isinstance(bad, TemplateError)
    assert bad.template == "application_update"
    assert "data.job" in str(bad)
    assert sum(isinstance(r, Rendered) for r in got) == len(records) - 1


def test_envelope_and_argument_errors(builtin_set: TemplateSet) -> None:
    # GIVEN input that is not a stream event WHEN rendered THEN DecodeError (a ValueError)
    with pytest.raises(DecodeError, match="Records"):
        builtin_set.render_event(b'{"records": []}')
    with pytest.raises(DecodeError):
        builtin_set.render_event(b"not json")
    with pytest.raises(DecodeError, match="Records"):
        builtin_set.render_event({"Records": 7})
    with pytest.raises(TypeError, match="event must be"):
        builtin_set.render_event(42)  # type: ignore[arg-type]
    # AND names must be a str, a mapping or None
    with pytest.raises(TypeError, match="names must be"):
        builtin_set.render_event(b'{"Records": []}', ["a"])  # type: ignore[arg-type]
    # AND an empty batch renders nothing
    assert builtin_set.render_event(b'{"Records": []}') == []


# --- Kinesis Data Streams for DynamoDB -------------------------------------------------------

# Every field of the context a record gives, beside an image attribute.
EVENT_FIELDS = (
    "{{ event.name }}|{{ event.id }}|{{ event.sequence_number }}|"
    "{{ event.approximate_creation_time }}|{{ user.id }}|{{ event_type }}"
)


def _kinesis_pair(stream: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The records of ``stream`` as a Lambda Kinesis event of Kinesis Data Streams for
    DynamoDB (each change record base64 in ``kinesis.data``, its creation time in
    milliseconds), and the DynamoDB Streams event it is equivalent to (the Kinesis
    sequence numbers, creation times in seconds as Kinesis carries them)."""
    equivalent = copy.deepcopy(stream)
    records = []
    for i, rec in enumerate(equivalent["Records"]):
        seq = f"4965{i:052d}"
        ddb = rec["dynamodb"]
        change_ddb = {k: v for k, v in ddb.items() if k not in ("SequenceNumber", "StreamViewType")}
        if "ApproximateCreationDateTime" in ddb:
            ms = int(ddb["ApproximateCreationDateTime"] * 1000)
            change_ddb["ApproximateCreationDateTime"] = ms
            ddb["ApproximateCreationDateTime"] = ms / 1000
        ddb["SequenceNumber"] = seq
        change = {
            "awsRegion": rec.get("awsRegion", "us-east-1"),
            "eventID": rec["eventID"],
            "eventName": rec["eventName"],
            "userIdentity": None,
            "recordFormat": "application/json",
            "tableName": "notifier",
            "dynamodb": change_ddb,
            "eventSource": "aws:dynamodb",
        }
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
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/notifier",
            }
        )
    return {"Records": records}, equivalent


def _forms(event: dict[str, Any]) -> list[Any]:
    text = json.dumps(event)
    return [text.encode(), text, bytearray(text.encode()), event]


@pytest.mark.parametrize("form", range(4), ids=["bytes", "str", "bytearray", "dict"])
def test_a_kinesis_event_renders_as_the_equivalent_streams_event(
    builtin_set: TemplateSet, make_set: MakeSet, batch: dict[str, Any], form: int
) -> None:
    # GIVEN the 60 sample records delivered through Kinesis, and the streams event they equal
    kinesis, stream = _kinesis_pair(batch)
    event = _forms(kinesis)[form]
    fields = make_set({t: EVENT_FIELDS for t in ("n/body.txt", "n/subject.txt")})
    for ts, names in ((builtin_set, None), (fields, "n")):
        want = ts.render_event(json.dumps(stream).encode(), names)
        assert all(isinstance(r, Rendered) for r in want)
        # WHEN rendered in one call, told by eventSource and named explicitly
        # THEN every record renders exactly as its streams record does
        assert ts.render_event(event, names) == want
        assert ts.render_event(event, names, source="kinesis") == want
        # AND as decode_kinesis_event + render_records give it
        if names is None:
            assert ts.render_event(event) == _two_step_records(ts, decode_kinesis_event(event))
    # AND the context carries the Kinesis sequence number and the creation time in seconds
    got = fields.render_event(event, "n")
    first = got[0]
    assert isinstance(first, Rendered)
    rec = stream["Records"][0]
    assert first.text.split("|")[:4] == [
        rec["eventName"],
        rec["eventID"],
        f"4965{0:052d}",
        str(rec["dynamodb"]["ApproximateCreationDateTime"]),
    ]


def _two_step_records(ts: TemplateSet, records: list[Any]) -> list[Rendered | TemplateError]:
    names = [r.get("event_type") for r in records]
    locales = [r.get("user.locale") for r in records]
    return ts.render_records(records, names, locales)


@pytest.mark.parametrize("parsed", [False, True])
def test_a_bad_kinesis_record_is_its_record_error_and_the_rest_render(
    builtin_set: TemplateSet, batch: dict[str, Any], parsed: bool
) -> None:
    # GIVEN a Kinesis batch whose record 3 is not base64, record 5 carries a bad change
    # record and record 7 has no kinesis member
    kinesis, _ = _kinesis_pair(batch)
    records = kinesis["Records"]
    records[3]["kinesis"]["data"] = "!!not base64"
    records[5]["kinesis"]["data"] = base64.b64encode(b'{"eventName": 1}').decode()
    del records[7]["kinesis"]
    event = kinesis if parsed else json.dumps(kinesis).encode()
    # WHEN rendered in one call
    got = builtin_set.render_event(event)
    want = decode_kinesis_event(event, errors="collect")
    # THEN each bad slot is the RecordError decode_kinesis_event(errors="collect") gives
    for i, message in (
        (3, "Records[3].kinesis.data: invalid base64 (12 characters)"),
        (5, "Records[5].kinesis.data"),
        (7, "Records[7]: missing required field"),
    ):
        bad, expected = got[i], want[i]
        assert isinstance(bad, RecordError)
        assert isinstance(expected, RecordError)
        assert (bad.index, bad.event_id, bad.sequence_number) == (
            i,
            expected.event_id,
            expected.sequence_number,
        )
        assert isinstance(bad.error, DecodeError)
        assert str(bad.error) == str(expected.error)
        assert str(bad.error).startswith(message)
        # AND its raw text is the Kinesis record as received
        assert bad.raw == expected.raw
        assert json.loads(bad.raw) == records[i]
    assert got[3].sequence_number == f"4965{3:052d}"  # type: ignore[union-attr]
    # AND every other record rendered
    assert all(isinstance(r, Rendered) for i, r in enumerate(got) if i not in (3, 5, 7))


def test_kinesis_envelope_and_source_errors(
    builtin_set: TemplateSet, batch: dict[str, Any]
) -> None:
    kinesis, _ = _kinesis_pair(samples.make_stream_event(3))
    raw = json.dumps(kinesis).encode()
    # GIVEN a Kinesis event cut short (auto-detected by its first eventSource), and events
    # without a Records list read as Kinesis WHEN rendered THEN DecodeError, as
    # decode_kinesis_event raises it
    for event in (raw[:-10], b'{"records": []}', {"Records": 7}, b"[]"):
        with pytest.raises(DecodeError) as err:
            builtin_set.render_event(event, source="kinesis")
        with pytest.raises(DecodeError) as reference:
            decode_kinesis_event(event)
        assert str(err.value) == str(reference.value)
    with pytest.raises(DecodeError, match="not a Kinesis event"):
        builtin_set.render_event(raw[:-10])
    # AND an unknown source is a ValueError
    with pytest.raises(ValueError, match="source must be"):
        builtin_set.render_event(raw, source="sqs")  # type: ignore[arg-type]
    # AND source="dynamodb" reads the Kinesis records as streams records: each its
    # RecordError, as decode_stream_event gives them
    for event in (raw, kinesis):
        got = builtin_set.render_event(event, source="dynamodb")
        want = decode_stream_event(event, errors="collect", source="dynamodb")
        assert [str(r.error) for r in got] == [str(r.error) for r in want]  # type: ignore[union-attr]
    # AND a streams event read as Kinesis: every record's RecordError
    stream = json.dumps(batch).encode()
    got = builtin_set.render_event(stream, source="kinesis")
    assert all(isinstance(r, RecordError) for r in got)
    assert builtin_set.render_event(b'{"Records": []}', source="kinesis") == []
