"""Rendering notifications: notifier (MiniJinja in Rust) vs Jinja2 and the minijinja binding.

Every benchmark renders subject + text + HTML of the built-in ``application_update``
template (a 36-line HTML body extending a shared layout, a macro, a loop over
``data.steps``, conditionals, the ``datetime``/``number``/``truncate``/``title``/
``urlencode`` filters) for 1,000 application-update stream records, each in its user's
locale (en, en-US, en-GB, de, de-AT: the German folder serves de and de-AT).

Groups:
- ``render-dicts-1000``: from Python dicts (the images deserialized with
  ``notifier.ddb.deserialize_image``, plus ``event``). notifier: ``render_many``.
- ``render-records-1000``: notifier renders decoded ``StreamRecord``s straight from their
  Rust images (``render_records``); the baselines render the same dicts as above.
- ``decode-render-1000``: from the raw event bytes. notifier: ``render_event`` (decode ->
  route -> render in one call); ``notifier-two-calls``: ``decode_stream_event`` +
  ``render_records`` (shown, not a baseline); baselines: ``orjson.loads`` + boto3
  ``TypeDeserializer`` + render.

Baselines: Jinja2 (one Environment, templates compiled once, ``auto_reload=False`` so no
file is stat()ed per render, StrictUndefined, autoescape for .html, same trim/lstrip
settings) and the ``minijinja`` PyPI binding (same templates and settings). Both get Python
versions of notifier's ``datetime``/``number`` filters (and ``truncate`` for the binding,
whose own takes keywords only). Every benchmark first checks its output: equal to Jinja2's
byte for byte (notifier escapes HTML with markupsafe's spelling), and equal by meaning for
the binding (MiniJinja escapes ``/`` as ``&#x2f;``).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import minijinja
import orjson
import pytest
from boto3.dynamodb.types import TypeDeserializer

from notifier import samples
from notifier.ddb import decode_stream_event, deserialize_image
from notifier.templates import Rendered, TemplateError, TemplateSet, builtin_templates

N = 1_000
TEMPLATE = "application_update"
Parts = tuple[str, str, str | None]


# ----------------------------------------------------------------------------- data


@cache
def event() -> dict[str, Any]:
    """1,000 application_update records (every third sample record), 85% INSERT."""
    return {"Records": [samples.make_stream_record(i) for i in range(2, 3 * N, 3)]}


@cache
def event_bytes() -> bytes:
    return orjson.dumps(event())


class _LambdaTypeDeserializer(TypeDeserializer):
    """boto3's deserializer with B taken as Lambda JSON's base64 text (boto3 wants bytes)."""

    def _deserialize_b(self, value: Any) -> Any:
        return super()._deserialize_b(base64.b64decode(value))


_TD = _LambdaTypeDeserializer()


def _event_meta(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": record["eventName"],
        "id": record["eventID"],
        "sequence_number": record["dynamodb"]["SequenceNumber"],
        "approximate_creation_time": float(record["dynamodb"]["ApproximateCreationDateTime"]),
    }


def _image(record: dict[str, Any]) -> dict[str, Any]:
    ddb = record["dynamodb"]
    return ddb.get("NewImage") or ddb["OldImage"]


def boto3_contexts(parsed: dict[str, Any]) -> list[dict[str, Any]]:
    """The baseline decode: TypeDeserializer over each record's image, plus ``event``."""
    deserialize = _TD.deserialize
    out = []
    for record in parsed["Records"]:
        ctx = {k: deserialize(v) for k, v in _image(record).items()}
        ctx["event"] = _event_meta(record)
        out.append(ctx)
    return out


@cache
def contexts() -> list[dict[str, Any]]:
    """The records' images as Python dicts (``deserialize_image``), plus ``event``."""
    out = []
    for record in event()["Records"]:
        ctx = deserialize_image(_image(record))
        ctx["event"] = _event_meta(record)
        out.append(ctx)
    return out


# ------------------------------------------------------------ baseline filters (Python)


def py_datetime(value: Any, format: str = "%Y-%m-%d %H:%M", tz: str = "UTC") -> str:
    return datetime.fromtimestamp(float(value), ZoneInfo(tz)).strftime(format)


_SEPARATORS = {"de": (".", ","), "en": (",", ".")}


def py_number(value: Any, decimals: int | None = None, locale: str = "en") -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the minijinja binding hands Decimals over as floats
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    if decimals is not None:
        d = d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = format(d, ",f")
    thousands, point = _SEPARATORS[locale.split("-")[0].split("_")[0]]
    return text.replace(",", "\0").replace(".", point).replace("\0", thousands)


def py_truncate(
    s: str, length: int = 255, killwords: bool = False, end: str = "...", leeway: int = 5
) -> str:
    """Jinja2's truncate (the binding's own takes keyword arguments only)."""
    if len(s) <= length + leeway:
        return s
    if killwords:
        return s[: length - len(end)] + end
    return s[: length - len(end)].rsplit(" ", 1)[0] + end


FILTERS: dict[str, Callable[..., str]] = {"datetime": py_datetime, "number": py_number}


# ---------------------------------------------------------------------------- engines


@cache
def notifier_set() -> TemplateSet:
    return TemplateSet(builtin_templates())


@cache
def files_by_locale() -> dict[str, tuple[str | None, str, str | None]]:
    """Which files render each user locale (notifier's fallback rules, precomputed once)."""
    ts = notifier_set()
    return {c["user"]["locale"]: ts.files(TEMPLATE, locale=c["user"]["locale"]) for c in contexts()}


def _check_subject(subject: str) -> str:
    if "\r" in subject or "\n" in subject:
        raise ValueError("subject contains a line break")
    return subject


class Jinja2Renderer:
    """Jinja2 configured like notifier, every template compiled once."""

    def __init__(self) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(builtin_templates()),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # production setting: no stat() of extended/imported files
        )
        env.filters.update(FILTERS)
        self.by_locale = {
            loc: tuple(env.get_template(f) if f else None for f in files)
            for loc, files in files_by_locale().items()
        }

    def render(self, ctxs: Sequence[dict[str, Any]]) -> list[Parts]:
        out = []
        for ctx in ctxs:
            subject, text, body = self.by_locale[ctx["user"]["locale"]]
            assert subject is not None
            assert text is not None
            assert body is not None
            out.append((_check_subject(subject.render(ctx)), text.render(ctx), body.render(ctx)))
        return out


class MinijinjaRenderer:
    """The minijinja PyPI binding configured like notifier (templates load once, cached)."""

    def __init__(self) -> None:
        root = builtin_templates()

        def load(name: str) -> str | None:
            path = root / name
            return path.read_text(encoding="utf-8") if path.is_file() else None

        self.env = minijinja.Environment(
            loader=load,
            undefined_behavior="strict",
            auto_escape_callback=lambda name: "html" if name.endswith(".html") else None,
            trim_blocks=True,
            lstrip_blocks=True,
            filters={**FILTERS, "truncate": py_truncate},
        )
        self.by_locale = files_by_locale()

    def render(self, ctxs: Sequence[dict[str, Any]]) -> list[Parts]:
        render = self.env.render_template
        out = []
        for ctx in ctxs:
            subject, text, body = self.by_locale[ctx["user"]["locale"]]
            assert subject is not None
            assert body is not None
            out.append(
                (
                    _check_subject(render(subject, **ctx)),
                    render(text, **ctx),
                    render(body, **ctx),
                )
            )
        return out


@cache
def jinja2_renderer() -> Jinja2Renderer:
    return Jinja2Renderer()


@cache
def minijinja_renderer() -> MinijinjaRenderer:
    return MinijinjaRenderer()


# -------------------------------------------------------------------------- checking


@cache
def reference() -> list[Parts]:
    """Jinja2's output for every record: what every benchmark must reproduce."""
    return jinja2_renderer().render(contexts())


def _parts(results: Sequence[Rendered | TemplateError]) -> list[Parts]:
    bad = [r for r in results if not isinstance(r, Rendered)]
    assert not bad, bad[:1]
    return [(r.subject, r.text, r.html) for r in results if isinstance(r, Rendered)]


def assert_same(got: list[Parts], *, by_meaning: bool = False) -> None:
    want = reference()
    assert len(got) == len(want) == N
    if by_meaning:  # another escape spelling: compare the unescaped HTML
        got = [(s, t, html.unescape(h or "")) for s, t, h in got]
        want = [(s, t, html.unescape(h or "")) for s, t, h in want]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"record {i} differs"


# ------------------------------------------------------------------ notifier paths


def notifier_dicts(ctxs: list[dict[str, Any]]) -> list[Rendered | TemplateError]:
    locales = [c["user"]["locale"] for c in ctxs]
    return notifier_set().render_many(TEMPLATE, ctxs, locales)


def notifier_records(records: list[Any]) -> list[Rendered | TemplateError]:
    locales = [r.get("user.locale") for r in records]
    return notifier_set().render_records(records, TEMPLATE, locales)


def notifier_fused(raw: bytes) -> list[Any]:
    """One crossing: decode, route (one template) and render, locale from ``user.locale``."""
    return notifier_set().render_event(raw, TEMPLATE, locale="user.locale")


def notifier_two_calls(raw: bytes) -> list[Rendered | TemplateError]:
    return notifier_records(decode_stream_event(raw, images="tree"))


# ----------------------------------------------------------------------- benchmarks


@pytest.mark.benchmark(group=f"render-dicts-{N}")
def test_render_dicts_notifier(benchmark: Any) -> None:
    ctxs = contexts()
    assert_same(_parts(notifier_dicts(ctxs)))
    benchmark.extra_info["lib"] = "notifier"
    benchmark(notifier_dicts, ctxs)


@pytest.mark.benchmark(group=f"render-dicts-{N}")
def test_render_dicts_jinja2(benchmark: Any) -> None:
    ctxs = contexts()
    r = jinja2_renderer()
    assert_same(r.render(ctxs))
    benchmark.extra_info["lib"] = "jinja2"
    benchmark(r.render, ctxs)


@pytest.mark.benchmark(group=f"render-dicts-{N}")
def test_render_dicts_minijinja(benchmark: Any) -> None:
    ctxs = contexts()
    r = minijinja_renderer()
    assert_same(r.render(ctxs), by_meaning=True)
    benchmark.extra_info["lib"] = "minijinja"
    benchmark(r.render, ctxs)


@pytest.mark.benchmark(group=f"render-records-{N}")
def test_render_records_notifier(benchmark: Any) -> None:
    records = decode_stream_event(event_bytes(), images="tree")
    assert_same(_parts(notifier_records(records)))
    benchmark.extra_info["lib"] = "notifier"
    benchmark(notifier_records, records)


@pytest.mark.benchmark(group=f"render-records-{N}")
def test_render_records_jinja2(benchmark: Any) -> None:
    ctxs = contexts()
    r = jinja2_renderer()
    benchmark.extra_info["lib"] = "jinja2"
    benchmark(r.render, ctxs)


@pytest.mark.benchmark(group=f"render-records-{N}")
def test_render_records_minijinja(benchmark: Any) -> None:
    ctxs = contexts()
    r = minijinja_renderer()
    benchmark.extra_info["lib"] = "minijinja"
    benchmark(r.render, ctxs)


@pytest.mark.benchmark(group=f"decode-render-{N}")
def test_decode_render_notifier(benchmark: Any) -> None:
    raw = event_bytes()
    assert_same(_parts(notifier_fused(raw)))
    benchmark.extra_info["lib"] = "notifier"
    benchmark(notifier_fused, raw)


@pytest.mark.benchmark(group=f"decode-render-{N}")
def test_decode_render_notifier_two_calls(benchmark: Any) -> None:
    raw = event_bytes()
    assert notifier_two_calls(raw) == notifier_fused(raw)
    benchmark.extra_info["lib"] = "notifier-two-calls"
    benchmark(notifier_two_calls, raw)


def _baseline_fused(renderer: Jinja2Renderer | MinijinjaRenderer) -> Callable[[bytes], Any]:
    def run(raw: bytes) -> list[Parts]:
        return renderer.render(boto3_contexts(orjson.loads(raw)))

    return run


@pytest.mark.benchmark(group=f"decode-render-{N}")
def test_decode_render_jinja2(benchmark: Any) -> None:
    raw = event_bytes()
    run = _baseline_fused(jinja2_renderer())
    assert_same(run(raw))
    benchmark.extra_info["lib"] = "jinja2"
    benchmark(run, raw)


@pytest.mark.benchmark(group=f"decode-render-{N}")
def test_decode_render_minijinja(benchmark: Any) -> None:
    raw = event_bytes()
    run = _baseline_fused(minijinja_renderer())
    assert_same(run(raw), by_meaning=True)
    benchmark.extra_info["lib"] = "minijinja"
    benchmark(run, raw)
