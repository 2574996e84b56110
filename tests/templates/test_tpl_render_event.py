"""Decode and render in one call (``TemplateSet.render_event``): decode -> route -> render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tpl_helpers import MakeSet

from notifier import samples
from notifier.ddb import DecodeError, RecordError, decode_stream_event
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
