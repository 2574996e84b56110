"""Pure-Python stand-ins for the Rust decoder and template set, written to the BRIEF contract.

``decode_stream_event(event, errors="collect")`` -> records with ``get(path)`` and ``raw``, or
``RecordError``s; ``render_records(records, names, locales)`` -> ``Rendered | TemplateError``.
The pipeline tests drive the handler through these until ``notifier.ddb`` and
``notifier.templates`` land in main; the handler's default ``hot_path`` is the Rust one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from notifier._core import DecodeError, TemplateError

_DESER = TypeDeserializer()


def _value(av: Any) -> Any:
    if not isinstance(av, Mapping) or len(av) != 1:
        raise DecodeError(f"not an AttributeValue: {av!r}")
    ((tag, val),) = av.items()
    if tag == "B":
        import base64

        return base64.b64decode(val)
    if tag == "BS":
        import base64

        return {base64.b64decode(v) for v in val}
    if tag == "L":
        return [_value(v) for v in val]
    if tag == "M":
        return {k: _value(v) for k, v in val.items()}
    try:
        return _DESER.deserialize({tag: val})
    except Exception as exc:
        raise DecodeError(f"bad AttributeValue {tag}: {exc}") from exc


@dataclass
class Record:
    index: int
    event_id: str
    event_name: str
    sequence_number: str
    raw: str
    event_source_arn: str | None
    _image: Mapping[str, Any] | None

    def get(self, path: str, default: Any = None) -> Any:
        cur: Any = self._image
        if cur is None:
            return default
        first, *rest = path.split(".")
        if first not in cur:
            return default
        value = _value(cur[first])
        for part in rest:
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value

    def context(self) -> dict[str, Any]:
        image = self._image or {}
        ctx = {k: _value(v) for k, v in image.items()}
        ctx["event"] = {
            "name": self.event_name,
            "id": self.event_id,
            "sequence_number": self.sequence_number,
        }
        return ctx


@dataclass
class RecordError:
    index: int
    sequence_number: str | None
    event_id: str | None
    error: DecodeError
    raw: str


def decode_stream_event(event: Any, *, errors: str = "collect") -> list[Record | RecordError]:
    if isinstance(event, bytes | str):
        event = json.loads(event)
    out: list[Record | RecordError] = []
    for i, rec in enumerate(event["Records"]):
        raw = json.dumps(rec)
        ddb = rec.get("dynamodb", {}) if isinstance(rec, dict) else {}
        seq = ddb.get("SequenceNumber") if isinstance(ddb, dict) else None
        eid = rec.get("eventID") if isinstance(rec, dict) else None
        try:
            image = ddb.get("NewImage") or ddb.get("OldImage")
            if image is not None:
                for v in image.values():
                    _value(v)  # validate eagerly, like the Rust decoder
            out.append(Record(i, eid, rec["eventName"], seq, raw, rec.get("eventSourceARN"), image))
        except (DecodeError, KeyError, AttributeError, TypeError) as exc:
            err = exc if isinstance(exc, DecodeError) else DecodeError(f"record {i}: {exc!r}")
            out.append(RecordError(i, seq, eid, err, raw))
    return out


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class TemplateSet:
    """Templates ``<name>/subject.txt``, ``<name>/body.txt``, ``<name>/body.html`` (the layout of
    ``notifier.templates``) rendered with Jinja2."""

    def __init__(self, directory: Path) -> None:
        import jinja2

        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(["html"]),
        )

    def render_records(
        self, records: Sequence[Record], names: Sequence[str], locales: Sequence[str | None]
    ) -> list[Rendered | TemplateError]:
        out: list[Rendered | TemplateError] = []
        for rec, name, _locale in zip(records, names, locales, strict=True):
            try:
                ctx = rec.context()
                out.append(
                    Rendered(
                        self.env.get_template(f"{name}/subject.txt").render(ctx).strip(),
                        self.env.get_template(f"{name}/body.txt").render(ctx),
                        self.env.get_template(f"{name}/body.html").render(ctx),
                    )
                )
            except Exception as exc:
                out.append(TemplateError(f"{name}: {exc}"))
        return out


TEMPLATES = Path(__file__).with_name("templates")


def hot_path() -> tuple[Any, Any]:
    return decode_stream_event, TemplateSet(TEMPLATES).render_records
