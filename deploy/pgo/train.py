"""PGO training run: the extension's hot paths on generated sample batches.

Run by ``deploy/pgo/build.sh`` against the instrumented build (``-Cprofile-generate``); the
counts it leaves steer the optimizing build (``-Cprofile-use``): which branches are hot, what
to inline, how to lay out code. The workload is the pipeline's own on data of the shape it
serves: stream events of the three demo event types (85% INSERT, 10% MODIFY, 5% REMOVE),
decoded in every image mode from bytes, text and parsed dicts; images read, deserialized and
serialized; and every built-in template rendered in every locale through ``render_event``,
``render_records``, ``render_many`` and ``render``. Seeds differ from the benchmarks' (seed 0),
and only the standard library and notifier itself are imported (it runs before the
dependencies are installed). Takes a few seconds.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from notifier import _core, samples
from notifier.ddb import (
    decode_stream_event,
    deserialize_image,
    deserialize_value,
    serialize_image,
    serialize_value,
)
from notifier.templates import TemplateSet, builtin_templates

ROUNDS = 3
BATCHES = ((100, 11), (1_000, 12), (2_000, 13))  # (records, seed)


def _check_build() -> None:
    """Fail when the imported extension is not the instrumented one being trained."""
    expect = os.environ.get("NOTIFIER_PGO_PACKAGE")
    if expect and not Path(_core.__file__).resolve().is_relative_to(Path(expect).resolve()):
        sys.exit(f"pgo: imported {_core.__file__}, expected the build under {expect}")


def _stream_event(n: int, seed: int) -> dict[str, Any]:
    """``samples.make_stream_event``, serialized by notifier's own ``serialize_value`` (equal to
    boto3's TypeSerializer, which samples uses): training runs before boto3 is installed."""
    own = lambda value: samples.av_to_json(serialize_value(value))  # noqa: E731
    with mock.patch.object(samples, "to_wire", own):
        return samples.make_stream_event(n, seed=seed)


def _decode(event: dict[str, Any], raw: bytes) -> list[dict[str, Any]]:
    for mode in ("python", "tree", "lazy"):
        for record in decode_stream_event(raw, images=mode):
            _ = (record.keys, record.new_image, record.old_image, record.get("user.locale"))
    decode_stream_event(raw.decode(), numbers="native")
    decode_stream_event(raw, errors="collect")
    decode_stream_event(event)
    images = [
        image
        for r in event["Records"]
        for image in (r["dynamodb"].get("NewImage"), r["dynamodb"].get("OldImage"))
        if image is not None
    ]
    items = [deserialize_image(image) for image in images]
    for image in images[:200]:
        for av in image.values():
            deserialize_value(av, numbers="native")
    for item in items[:500]:
        serialize_image(item)
    return items


def _render(ts: TemplateSet, raw: bytes, items: list[dict[str, Any]]) -> None:
    ts.render_event(raw)
    records = decode_stream_event(raw, images="tree")  # REMOVE records render their old image
    ts.render_records(
        records,
        [r.get("event_type") for r in records],
        [r.get("user.locale") for r in records],
    )
    contexts = [item for item in items if item.get("event_type") in ts.names][:500]
    names = [c["event_type"] for c in contexts]
    locales = [c["user"]["locale"] for c in contexts]
    ts.render_many(names, contexts, locales)
    for name, context, locale in zip(names[:100], contexts, locales, strict=False):
        ts.render(name, context, locale=locale)


def main() -> None:
    _check_build()
    ts = TemplateSet(builtin_templates())
    for n, seed in BATCHES:
        event = _stream_event(n, seed)
        raw = json.dumps(event).encode()
        for _ in range(ROUNDS):
            items = _decode(event, raw)
            _render(ts, raw, items)
    print(f"pgo: trained on {sum(n for n, _ in BATCHES) * ROUNDS} records x every path")


if __name__ == "__main__":
    main()
