"""The cyclic GC around the decoder's calls: a batch call holds automatic collections off
while it builds (as CPython 3.12+ does for any one call into C), calls that build one image
do not (in a caller's loop of them that would starve the collector), a caller's own Python
code always runs with the GC as the caller set it, and the switch is left as it was."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from ddb_helpers import LambdaJsonDeserializer

from notifier import samples
from notifier.ddb import decode_stream_event, deserialize_image, deserialize_value


@contextmanager
def _gc_switched(enabled: bool) -> Iterator[None]:
    """The automatic GC on or off for the block, then as it was."""
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


@pytest.fixture
def gc_collections() -> Any:
    """Counts the cyclic GC's collections; a threshold of 10 allocations makes one due
    almost at once, and the settings are restored afterwards."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.callbacks.append(count)
    gc.set_threshold(10, 10, 10)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()


def test_building_a_batch_runs_no_collection_per_allocation(gc_collections: list[int]) -> None:
    # GIVEN a 200-record batch (thousands of dicts, lists and sets) and a GC due every
    # 10 allocations
    raw = json.dumps(samples.make_stream_event(200)).encode()
    # WHEN it is decoded into Python dicts in one call
    gc_collections.clear()
    records = decode_stream_event(raw)
    # THEN the collector ran at most a few times, after the batch was built (as CPython
    # 3.12+ does for any one call into C), not hundreds of times inside it
    assert len(records) == 200
    assert len(gc_collections) < 5, gc_collections
    # AND a caller's own allocations still meet collections as before
    junk = [[i] for i in range(200)]
    assert len(gc_collections) > 10
    assert len(junk) == 200


@pytest.mark.parametrize("enabled", [True, False])
def test_the_gc_switch_is_left_as_the_caller_had_it(enabled: bool) -> None:
    raw = json.dumps(samples.make_stream_event(3)).encode()
    with _gc_switched(enabled):
        # WHEN a batch decodes, and when one fails to
        decode_stream_event(raw)
        after_ok = gc.isenabled()
        with pytest.raises(ValueError, match="Records"):
            decode_stream_event(raw[:-3])
        # THEN the automatic GC is on or off exactly as before each call
        assert after_ok is enabled
        assert gc.isenabled() is enabled


def _big_image(n: int) -> dict[str, Any]:
    """An image of ``n`` maps, each with a set and a list: ~3n dicts, lists and sets."""
    return {
        "id": {"S": "order-1"},
        "items": {
            "L": [
                {
                    "M": {
                        "sku": {"N": str(i)},
                        "tags": {"SS": ["a", f"t{i}"]},
                        "notes": {"L": [{"S": "x"}, {"BOOL": True}]},
                    }
                }
                for i in range(n)
            ]
        },
    }


def _event_with(image: dict[str, Any]) -> bytes:
    event = samples.make_stream_event(1)
    event["Records"][0]["dynamodb"]["NewImage"] = image
    return json.dumps(event).encode()


def _via_deserialize_image(image: dict[str, Any]) -> Callable[[], Any]:
    return lambda: deserialize_image(image)


def _via_deserialize_value(image: dict[str, Any]) -> Callable[[], Any]:
    return lambda: deserialize_value({"M": image})


def _via_record(images: str) -> Callable[[dict[str, Any]], Callable[[], Any]]:
    def build(image: dict[str, Any]) -> Callable[[], Any]:
        (rec,) = decode_stream_event(_event_with(image), images=images)
        return lambda: rec.new_image

    return build


BUILDERS: dict[str, Callable[[dict[str, Any]], Callable[[], Any]]] = {
    "deserialize_image": _via_deserialize_image,
    "deserialize_value": _via_deserialize_value,
    "record.new_image (tree)": _via_record("tree"),
    "record.new_image (lazy)": _via_record("lazy"),
}


@pytest.mark.parametrize("how", list(BUILDERS))
def test_a_loop_of_single_image_calls_meets_collections_as_it_goes(
    gc_collections: list[int], how: str
) -> None:
    # GIVEN 50 small images built one call each, in a loop that allocates nothing else
    # the collector tracks, and a GC due every 10 allocations
    image = _big_image(4)
    builds = [BUILDERS[how](image) for _ in range(50)]
    expected = {k: LambdaJsonDeserializer().deserialize(v) for k, v in image.items()}
    # WHEN the loop runs
    gc_collections.clear()
    built = [build() for build in builds]
    # THEN collections ran during the loop, as between any Python calls: these calls do
    # not hold the collector off (a pause per call would starve it here, where CPython
    # 3.12+ collects after each call that crossed the threshold)
    assert len(gc_collections) > 10, gc_collections
    assert all(b == expected for b in built)


class _CallersMapping(Mapping[str, Any]):
    """A caller's own Mapping: its methods are Python code, which notes whether the
    automatic GC is on each time it runs."""

    def __init__(self, data: dict[str, Any], seen: list[bool]) -> None:
        self._data, self._seen = data, seen

    def __getitem__(self, key: str) -> Any:
        self._seen.append(gc.isenabled())
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        self._seen.append(gc.isenabled())
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _Name(str):
    """A str subclass whose hash is Python code that notes the GC switch."""

    seen: list[bool]

    def __new__(cls, text: str, seen: list[bool]) -> _Name:
        name = super().__new__(cls, text)
        name.seen = seen
        return name

    def __hash__(self) -> int:
        self.seen.append(gc.isenabled())
        return str.__hash__(self)


def _foreign_inputs(seen: list[bool]) -> dict[str, Any]:
    nested = {"M": _CallersMapping({"a": {"S": "x"}}, seen)}
    inputs = {
        "a nested Mapping": {"id": {"S": "1"}, "items": {"L": [{"M": {"k": {"N": "1"}}}, nested]}},
        "a top-level Mapping": _CallersMapping({"id": {"S": "1"}, "m": {"M": {}}}, seen),
        "a str subclass as a name": {"id": {"S": "1"}, _Name("name", seen): {"S": "x"}},
        "a str subclass in a set": {"id": {"S": "1"}, "tags": {"SS": ["a", _Name("b", seen)]}},
    }
    seen.clear()  # building the dicts above hashed the names
    return inputs


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("kind", list(_foreign_inputs([])))
def test_a_callers_python_code_runs_with_the_gc_as_the_caller_set_it(
    kind: str, enabled: bool
) -> None:
    # GIVEN input whose Mapping methods or str hashes are the caller's Python code
    seen: list[bool] = []
    image = _foreign_inputs(seen)[kind]
    with _gc_switched(enabled):
        # WHEN it is decoded
        out = deserialize_image(image)
        after = gc.isenabled()
    # THEN that code ran, and each time found the GC on or off as the caller had it
    assert out["id"] == "1"
    assert seen, "the caller's code never ran"
    assert set(seen) == {enabled}
    # AND it is still so after the call
    assert after is enabled


@pytest.mark.parametrize("enabled", [True, False])
def test_the_gc_switch_is_left_as_the_caller_had_it_by_every_builder(enabled: bool) -> None:
    good, bad = _big_image(3), {"id": {"N": "not a number"}}
    with _gc_switched(enabled):
        for how, builder in BUILDERS.items():
            # WHEN an image builds, and (where the input is checked by the call) fails to
            builder(good)()
            assert gc.isenabled() is enabled, how
        for call in (_via_deserialize_image(bad), _via_deserialize_value(bad)):
            with pytest.raises(ValueError, match="invalid number"):
                call()
            # THEN the automatic GC is on or off exactly as before each call
            assert gc.isenabled() is enabled
