"""A pure-Python stand-in for the template set, written to the ``notifier.templates`` contract.

``render_records(records, names, locales)`` -> ``Rendered | TemplateError`` per record, with the
record's new image (old image for REMOVE) as top-level names plus ``event``. The pipeline
tests use it with the real Rust decoder until ``notifier.templates`` lands in main; the
handler's default ``hot_path`` is the Rust one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifier._core import TemplateError
from notifier.ddb import decode_stream_event


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


class TemplateSet:
    """Templates ``<name>/subject.txt``, ``<name>/body.txt``, ``<name>/body.html`` (the layout
    of ``notifier.templates``) rendered with Jinja2."""

    def __init__(self, directory: Path) -> None:
        import jinja2

        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(["html"]),
        )

    def render_records(
        self, records: Sequence[Any], names: Sequence[str], locales: Sequence[str | None]
    ) -> list[Rendered | TemplateError]:
        out: list[Rendered | TemplateError] = []
        for rec, name, _locale in zip(records, names, locales, strict=True):
            try:
                ctx = dict(rec.new_image or rec.old_image or {})
                ctx["event"] = {
                    "name": rec.event_name,
                    "id": rec.event_id,
                    "sequence_number": rec.sequence_number,
                }
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


def _decode(event: Any) -> Any:
    return decode_stream_event(event, errors="collect")


def hot_path() -> tuple[Any, Any]:
    return _decode, TemplateSet(TEMPLATES).render_records
