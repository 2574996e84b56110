"""decode_stream_event(images=...): "python" (dicts in the decoding pass), "tree" (Rust trees,
GIL released) and "lazy" (validated only) give the same records, values and errors."""

from __future__ import annotations

import gc
import json
import weakref
from decimal import Decimal
from typing import Any

import pytest
from ddb_helpers import canon, images, stream_event, to_json_wire
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier import samples
from notifier.ddb import (
    DecodeError,
    RecordError,
    StreamRecord,
    decode_stream_event,
    deserialize_image,
)
from notifier.templates import TemplateSet, builtin_templates

MODES = ("python", "tree", "lazy")


def _view(rec: StreamRecord | RecordError) -> Any:
    """Everything a caller can read of a record, comparable across modes."""
    if isinstance(rec, RecordError):
        return ("error", rec.index, rec.event_id, rec.sequence_number, str(rec.error), rec.raw)
    return (
        rec.index,
        rec.event_id,
        rec.sequence_number,
        rec.event_name,
        canon(rec.keys),
        canon(rec.new_image),
        canon(rec.old_image),
        canon(rec.get("user")),
        canon(rec.get("data.steps")),
        rec.raw,
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(images, min_size=1, max_size=4))
def test_modes_agree_on_any_images(
    boto_serialize: Any, boto_deserialize: Any, items: list[dict[str, Any]]
) -> None:
    # GIVEN hypothesis images (deep nesting, sets, every unicode plane, odd numbers) as bytes
    wire = [{k: to_json_wire(boto_serialize(v)) for k, v in it.items()} for it in items]
    raw = json.dumps(stream_event(wire)).encode()
    # WHEN decoded in each mode
    views = {m: [_view(r) for r in decode_stream_event(raw, images=m)] for m in MODES}
    # THEN all modes agree, and the images are boto3's
    assert views["python"] == views["tree"] == views["lazy"]
    for rec, w in zip(decode_stream_event(raw), wire, strict=True):
        assert canon(rec.new_image) == canon({k: boto_deserialize(v) for k, v in w.items()})


@pytest.mark.parametrize("numbers", ["decimal", "native"])
def test_modes_agree_on_a_realistic_batch(numbers: str) -> None:
    # GIVEN 200 generated records (INSERT/MODIFY/REMOVE, every attribute type)
    raw = json.dumps(samples.make_stream_event(200, seed=11)).encode()
    # WHEN decoded in each mode THEN every readable value is the same
    views = [
        [_view(r) for r in decode_stream_event(raw, numbers=numbers, images=m)]  # type: ignore[arg-type]
        for m in MODES
    ]
    assert views[0] == views[1] == views[2]


def test_bad_records_fail_alike_in_every_mode() -> None:
    # GIVEN a batch with a bad tag, a bad number, bad base64 and too deep nesting
    event = samples.make_stream_event(6)
    new = [r["dynamodb"].setdefault("NewImage", {}) for r in event["Records"]]
    new[1]["x"] = {"Q": "1"}
    new[2]["x"] = {"N": "1e999"}
    new[3]["x"] = {"B": "not base64!"}
    deep: dict[str, Any] = {"S": "leaf"}
    for _ in range(40):
        deep = {"M": {"d": deep}}
    new[4]["x"] = deep
    raw = json.dumps(event).encode()
    # WHEN decoded collecting errors THEN the same records fail with the same messages
    views = {
        m: [_view(r) for r in decode_stream_event(raw, errors="collect", images=m)] for m in MODES
    }
    assert views["python"] == views["tree"] == views["lazy"]
    assert [v[0] == "error" for v in views["python"]] == [False, True, True, True, True, False]
    # AND raising gives the first one's message
    for m in MODES:
        with pytest.raises(DecodeError, match=r"Records\[1\]\.dynamodb\.NewImage\.x"):
            decode_stream_event(raw, images=m)  # type: ignore[arg-type]


def test_duplicate_names_keep_the_first_position_and_the_last_value() -> None:
    # GIVEN an image whose JSON repeats a name, at the top and in a nested map
    image = (
        '{"a": {"S": "1"}, "m": {"M": {"x": {"N": "1"}, "y": {"N": "2"}, "x": {"N": "3"}}}, '
        '"a": {"S": "2"}}'
    )
    record = (
        '{"eventID": "1", "eventName": "INSERT", "dynamodb": {"Keys": {}, '
        f'"SequenceNumber": "1", "NewImage": {image}}}}}'
    )
    raw = ('{"Records": [' + record + "]}").encode()
    for m in MODES:
        # WHEN decoded THEN the dict is what json.loads + boto3 give: first position, last value
        (rec,) = decode_stream_event(raw, images=m)  # type: ignore[arg-type]
        assert isinstance(rec, StreamRecord)
        assert next(iter(rec.new_image.items())) == ("a", "2")
        assert list(rec.new_image["m"].items()) == [("x", 3), ("y", 2)]


def _image(mode: str) -> dict[str, Any]:
    """The NewImage of an application_update record (nested maps, lists and sets), decoded
    by `decode_stream_event` in `mode` or by `deserialize_image` from the parsed event."""
    raw = json.dumps(samples.make_stream_event(1, start=2)).encode()
    if mode == "deserialize_image":
        return deserialize_image(json.loads(raw)["Records"][0]["dynamodb"]["NewImage"])
    (rec,) = decode_stream_event(raw, images=mode)  # type: ignore[arg-type]
    assert isinstance(rec, StreamRecord)
    assert rec.new_image is not None
    return rec.new_image


def _containers(value: Any) -> list[Any]:
    """Every dict, list and set in `value`, itself included."""
    if isinstance(value, dict):
        return [value, *(c for v in value.values() for c in _containers(v))]
    if isinstance(value, list):
        return [value, *(c for v in value for c in _containers(v))]
    return [value] if isinstance(value, set) else []


def _values(container: Any) -> list[Any]:
    return list(container.values() if isinstance(container, dict) else container)


@pytest.mark.parametrize("mode", [*MODES, "deserialize_image"])
def test_images_are_gc_tracked_only_where_a_cycle_could_pass(mode: str) -> None:
    # GIVEN a decoded image with nested maps, lists and sets, and Decimals in atomic dicts
    img = _image(mode)
    assert img["data"]["steps"]
    assert img["data"]["tags"]
    assert img["user"]
    assert any(
        isinstance(v, Decimal) and isinstance(c, dict) for c in _containers(img) for v in c.values()
    )
    # THEN lists and sets are tracked, and so is a dict holding a container; a dict of
    # atomic values (str, numbers, bytes, bool, None) is not, on every CPython: 3.11 and
    # 3.12 treat their own dicts so, and 3.13 would track one holding a Decimal (a GC type
    # there), which refers to nothing that could close a cycle
    for c in _containers(img):
        holds_container = isinstance(c, dict) and any(
            isinstance(v, dict | list | set) for v in c.values()
        )
        assert gc.is_tracked(c) == (not isinstance(c, dict) or holds_container), c
    assert not gc.is_tracked(img["user"])
    # AND no Decimal is tracked (from 3.13 Decimal is a GC type, yet an exact one refers
    # only to its type), so the collector walks a decoded batch as it did up to 3.12
    decimals = [v for c in _containers(img) for v in _values(c) if isinstance(v, Decimal)]
    assert decimals
    assert not any(gc.is_tracked(d) for d in decimals)
    # WHEN a container is put into an untracked dict THEN CPython tracks it again
    img["user"]["extra"] = []
    assert gc.is_tracked(img["user"])


class _Node:
    """A GC-tracked object that can be weakly referenced."""

    ref: Any = None


@pytest.mark.parametrize("mode", [*MODES, "deserialize_image"])
@pytest.mark.parametrize("via", ["list", "set", "atomic dict"])
def test_a_reference_cycle_through_a_decoded_image_is_collected(mode: str, via: str) -> None:
    # GIVEN a decoded image and an object of the caller's that refers back to the image
    img = _image(mode)
    node = _Node()
    node.ref = img
    # WHEN the caller puts that object into a decoded list, set or dict of atomic values,
    # closing a reference cycle, and drops every outside reference to it
    if via == "list":
        img["data"]["steps"].append(node)
    elif via == "set":
        img["data"]["tags"].add(node)
    else:
        img["user"]["node"] = node
    alive = weakref.ref(node)
    del node, img
    gc.collect()
    # THEN the cyclic GC frees the cycle: nothing decoded was hidden from it
    assert alive() is None


@pytest.mark.parametrize("mode", MODES)
def test_records_of_every_mode_render_the_same(mode: str) -> None:
    # GIVEN records decoded in each mode
    ts = TemplateSet(builtin_templates())
    raw = json.dumps(samples.make_stream_event(30, seed=5)).encode()
    records = decode_stream_event(raw, images=mode)  # type: ignore[arg-type]
    names = [r.get("event_type") for r in records]
    locales = [r.get("user.locale") for r in records]
    # WHEN rendered THEN the output equals the one-call render of the same bytes
    assert ts.render_records(records, names, locales) == ts.render_event(raw)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="images must be"):
        decode_stream_event(b'{"Records": []}', images="eager")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(images, min_size=1, max_size=4), st.sampled_from(["decimal", "native"]))
def test_modes_agree_on_a_parsed_event(
    boto_serialize: Any, items: list[dict[str, Any]], numbers: str
) -> None:
    # GIVEN hypothesis images in an event handed over parsed (as the Python runtime does)
    wire = [{k: to_json_wire(boto_serialize(v)) for k, v in it.items()} for it in items]
    event = json.loads(json.dumps(stream_event(wire)))
    raw = json.dumps(event).encode()
    # WHEN decoded in each mode
    views = {
        m: [_view(r) for r in decode_stream_event(event, numbers=numbers, images=m)]  # type: ignore[arg-type]
        for m in MODES
    }
    # THEN all modes agree with each other and with decoding the same event's bytes
    from_bytes = [_view(r) for r in decode_stream_event(raw, numbers=numbers)]  # type: ignore[arg-type]
    assert views["python"] == views["tree"] == views["lazy"]
    # (all but `raw`, which is json.dumps of the parsed record, not the original bytes)
    assert [v[:-1] for v in views["python"]] == [v[:-1] for v in from_bytes]


@pytest.mark.parametrize("mode", MODES)
def test_records_of_a_parsed_event_stay_as_decoded(mode: str) -> None:
    # GIVEN a parsed event, decoded
    event = json.loads(json.dumps(samples.make_stream_event(3)))
    (rec, *_) = decode_stream_event(event, images=mode)  # type: ignore[arg-type]
    assert isinstance(rec, StreamRecord)
    # WHEN the caller changes the event afterwards
    new = event["Records"][0]["dynamodb"]["NewImage"]
    pk = new["pk"]["S"]
    new["pk"]["S"] = "changed"
    new["event_type"] = {"S": "changed"}
    # THEN neither the record's images nor what templates read change
    assert rec.new_image is not None
    assert rec.new_image["pk"] == rec.get("pk") == pk
    assert "changed" not in (rec.new_image["event_type"], rec.get("event_type"))


@pytest.mark.parametrize("source", [*MODES, "parsed event"])
def test_a_record_put_into_its_own_image_is_collected(source: str) -> None:
    # GIVEN a record decoded from bytes (each mode) or from the parsed event
    event = samples.make_stream_event(1, start=2)
    if source == "parsed event":
        (rec,) = decode_stream_event(event)
    else:
        (rec,) = decode_stream_event(json.dumps(event).encode(), images=source)  # type: ignore[arg-type]
    assert isinstance(rec, StreamRecord)
    # WHEN the caller hangs the record, through an object of its own, on the record's
    # image (or only on the parsed record it came from, which the record keeps as its raw
    # text's source) and drops every outside reference
    node = _Node()
    node.ref = rec
    assert rec.new_image is not None
    if source == "parsed event":
        event["Records"][0]["node"] = node
    else:
        rec.new_image["node"] = node
    alive = weakref.ref(node)
    del node, rec, event
    gc.collect()
    # THEN the cycle is collected: the record shows the GC what it holds
    assert alive() is None


def test_a_record_error_hung_on_its_own_exception_is_collected() -> None:
    # GIVEN a batch whose one record is bad, decoded with errors="collect"
    raw = b'{"Records": [{"eventID": "1", "dynamodb": {"NewImage": {"a": {"X": "1"}}}}]}'
    (err,) = decode_stream_event(raw, errors="collect")
    assert isinstance(err, RecordError)
    # WHEN the caller hangs the RecordError on its own DecodeError, through an object
    node = _Node()
    node.ref = err
    err.error.node = node
    alive = weakref.ref(node)
    del node, err
    gc.collect()
    # THEN the cycle is collected
    assert alive() is None
