"""Rendering decoded stream records straight from their Rust images (``render_records``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tpl_helpers import MakeSet

from notifier import samples
from notifier.ddb import StreamRecord, decode_stream_event
from notifier.templates import Rendered, TemplateError, TemplateSet

EVENTS = Path(__file__).parent / "events"

# Prints every kind of value a record carries, to compare the record path with the dict path.
PROBE = (
    "{{ event_id }}|{{ created_at }}|{{ created_at + 1 }}|{{ priority }}|{{ is_test }}|"
    "{{ trace|length }}|{{ user }}|{{ event.name }}|{{ event.id }}|{{ event.sequence_number }}|"
    "{{ event.approximate_creation_time }}\n"
    "{% for k, v in data|items %}{{ k }}={{ v }};{% endfor %}\n"
    "{% for k in user %}{{ k }},{% endfor %}{{ user|length }}"
)


@pytest.fixture
def edge_event() -> bytes:
    """Hand-made records: unicode and markup, REMOVE, exact numbers, a missing attribute."""
    return (EVENTS / "edge_records.json").read_bytes()


def _dict_context(record: StreamRecord) -> dict[str, Any]:
    """What render_records sees, built as Python dicts (the contract in the BRIEF)."""
    image = record.new_image if record.new_image is not None else record.old_image
    assert image is not None
    return {
        **image,
        "event": {
            "name": record.event_name,
            "id": record.event_id,
            "sequence_number": record.sequence_number,
            "approximate_creation_time": record.approximate_creation_time,
        },
    }


def _names_locales(records: list[StreamRecord]) -> tuple[list[str], list[str]]:
    return [r.get("event_type") for r in records], [r.get("user.locale") for r in records]


def test_records_render_like_equivalent_dicts(builtin_set: TemplateSet) -> None:
    # GIVEN a realistic 90-record batch (all event types, INSERT/MODIFY/REMOVE, 5 locales)
    raw = json.dumps(samples.make_stream_event(90)).encode()
    records = decode_stream_event(raw)
    names, locales = _names_locales(records)
    # WHEN rendered from the records and from the equivalent Python dicts
    from_records = builtin_set.render_records(records, names, locales)
    from_dicts = builtin_set.render_many(names, [_dict_context(r) for r in records], locales)
    # THEN every notification is identical, and none failed
    assert from_records == from_dicts
    assert all(isinstance(r, Rendered) for r in from_records)


def test_every_value_kind_matches_the_dict_path(make_set: MakeSet, edge_event: bytes) -> None:
    # GIVEN a probe template printing strings, numbers, sets, maps, bytes, null, bool, event
    ts = make_set({"probe/body.txt": PROBE, "probe/body.html": PROBE})
    records = [r for r in decode_stream_event(edge_event) if "job" in str(r.get("data"))]
    # WHEN rendered both ways THEN text and escaped HTML are identical
    got = ts.render_records(records, "probe")
    want = ts.render_many("probe", [_dict_context(r) for r in records])
    assert got == want
    assert all(isinstance(r, Rendered) for r in got)


def test_exact_numbers_and_sorted_sets_from_records(make_set: MakeSet, edge_event: bytes) -> None:
    # GIVEN the record with a 38-digit integer, 0.1, 87.25 and string/number sets
    ts = make_set(
        {
            "t/body.txt": "{{ data.job.salary_range|join(' ') }}|{{ data.score }}|"
            "{{ data.score > 87 }}|{{ data.ratings|join(' ') }}|{{ data.tags|join(' ') }}|"
            "{{ data.job.salary_range[0] + 1 }}"
        }
    )
    record = decode_stream_event(edge_event)[3]
    # WHEN rendered from the record
    (r,) = ts.render_records([record], "t")
    # THEN digits are exact, integers compute, sets come sorted (numbers by value)
    assert isinstance(r, Rendered)
    assert r.text == (
        "12345678901234567890123456789012345678 0.1|87.25|True|"
        "-1234567890123456789.0123456789012345678 0.1 4.5 10|alpha zeta Äpfel ärger|"
        "12345678901234567890123456789012345679"
    )


def test_one_bad_record_fails_alone(builtin_set: TemplateSet, edge_event: bytes) -> None:
    # GIVEN six records, one of which (index 4) lacks data.job
    records = decode_stream_event(edge_event)
    names, locales = _names_locales(records)
    # WHEN rendered in one call
    results = builtin_set.render_records(records, names, locales)
    # THEN only that record's slot holds a TemplateError naming template and variable
    bad = results[4]
    assert isinstance(bad, TemplateError)
    assert bad.template == "application_update"
    assert "data.job" in str(bad)
    assert bad.file is not None
    assert bad.file.startswith("application_update/")
    assert [isinstance(r, Rendered) for r in results] == [True, True, True, True, False, True]


def test_remove_records_render_the_old_image(builtin_set: TemplateSet, edge_event: bytes) -> None:
    # GIVEN a REMOVE record (old image only)
    record = decode_stream_event(edge_event)[2]
    assert record.event_name == "REMOVE"
    assert record.new_image is None
    # WHEN rendered THEN the old image is the context
    (r,) = builtin_set.render_records([record], "profile_view")
    assert isinstance(r, Rendered)
    assert record.get("user.name") in r.text


def test_markup_in_records_is_escaped_in_html_only(
    builtin_set: TemplateSet, edge_event: bytes
) -> None:
    # GIVEN a friend request whose message holds markup, quotes and emoji
    record = decode_stream_event(edge_event)[1]
    # WHEN rendered THEN the text keeps it verbatim and the HTML escapes it
    (r,) = builtin_set.render_records([record], "friend_request")
    assert isinstance(r, Rendered)
    assert r.html is not None
    assert "Grüße 👋 <b>hi</b> & 'quotes' \"too\"" in r.text
    assert "Grüße 👋 &lt;b&gt;hi&lt;/b&gt; &amp; &#39;quotes&#39; &#34;too&#34;" in r.html


def test_argument_errors(builtin_set: TemplateSet, edge_event: bytes) -> None:
    records = decode_stream_event(edge_event)
    # GIVEN something that is not a StreamRecord WHEN rendered THEN TypeError names its index
    with pytest.raises(TypeError, match=r"records\[1\] is a dict"):
        builtin_set.render_records([records[0], {"a": 1}], "profile_view")
    # AND per-record lists must match the records
    with pytest.raises(ValueError, match="locales has 1 items for 6"):
        builtin_set.render_records(records, "profile_view", ["de"])
    # AND an unknown template name fails only its record
    results = builtin_set.render_records(records[:2], ["nope", "friend_request"])
    assert isinstance(results[0], TemplateError)
    assert isinstance(results[1], Rendered)


def test_the_pipeline_adds_notification_values_per_record(
    make_set: MakeSet, edge_event: bytes
) -> None:
    # GIVEN a template that prints the pipeline's unsubscribe link when there is one, and an
    # image attribute named like the reserved name (it must not leak through)
    ts = make_set(
        {
            "t/body.html": "{% if notification.unsubscribe_url is defined %}"
            '<a href="{{ notification.unsubscribe_url }}">unsubscribe</a>'
            "{% else %}none{% endif %}",
            "t/body.txt": "x",
        }
    )
    records = decode_stream_event(edge_event)[:3]
    # WHEN rendered with a link for the first record, none for the second, and no argument
    got = ts.render_records(
        records,
        "t",
        notifications=[{"unsubscribe_url": "https://u.example/?t=a&b"}, None, {}],
    )
    plain = ts.render_records(records[:1], "t")
    # THEN each record sees its own values (HTML-escaped like any value), the others none
    assert [r.html for r in got] == [
        '<a href="https://u.example/?t=a&amp;b">unsubscribe</a>',
        "none",
        "none",
    ]
    assert plain[0].html == "none"
    # AND a wrong shape is a clear error, not a crash
    with pytest.raises(ValueError, match="notifications has 1 items for 3 records"):
        ts.render_records(records, "t", notifications=[None])
    with pytest.raises(TypeError, match="must map str to str"):
        ts.render_records(records, "t", notifications=[{"a": 1}, None, None])
