"""``notifier preview``: render one template with sample data into a self-contained HTML page.

The page shows the subject, the plain-text body and the HTML body side by side; the HTML
runs in a sandboxed ``<iframe srcdoc>`` (no scripts, no network except images), so a
person can check a template in any browser before it ships::

    notifier preview application_update --locale de --out preview.html
    notifier preview my_template --templates ./templates --data sample.json --out p.html

A channel variant (``NAME:sms``, ``NAME:push``, ...) is shown as its channel shows it: an SMS as
a message bubble with its encoding and segment count (GSM-7 or UCS-2), a push as a
notification card (title, body, data), any other variant as its text.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from notifier.templates import Rendered, TemplateError, TemplateSet, builtin_templates

__all__ = ["add_arguments", "load_sample", "render_page", "run"]

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;
color:#111827;background:#e5e7eb}
header{padding:14px 20px;background:#111827;color:#f9fafb}
header h1{margin:0 0 4px;font-size:16px;font-weight:600}
header .meta{font-size:12px;color:#9ca3af}
header code{color:#d1d5db}
.subject{margin:16px 20px 0;padding:12px 16px;background:#fff;border-radius:8px;
border:1px solid #d1d5db}
.label{display:block;margin-bottom:4px;font-size:11px;font-weight:600;letter-spacing:.06em;
text-transform:uppercase;color:#6b7280}
.subject .value{font-size:16px;font-weight:600;overflow-wrap:anywhere}
.empty{color:#9ca3af;font-style:italic;font-weight:400}
main{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.3fr);gap:16px;padding:16px 20px}
section{display:flex;flex-direction:column;min-height:70vh;background:#fff;border-radius:8px;
border:1px solid #d1d5db;overflow:hidden}
section .label{padding:10px 14px 8px;margin:0;border-bottom:1px solid #e5e7eb}
pre{flex:1;margin:0;padding:14px;white-space:pre-wrap;overflow-wrap:anywhere;
font:13px/1.55 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
iframe{flex:1;width:100%;border:0;background:#fff}
.nohtml{flex:1;padding:14px}
@media (max-width:900px){main{grid-template-columns:1fr}}
.card{margin:16px 20px;max-width:420px;padding:14px 16px;background:#fff;border-radius:14px;
border:1px solid #d1d5db;box-shadow:0 2px 6px rgba(0,0,0,.08)}
.bubble{white-space:pre-wrap;overflow-wrap:anywhere;background:#dcfce7;border-radius:14px;
padding:10px 14px}
.card .title{font-weight:600}
.facts{margin:0 20px;font-size:12px;color:#374151}
"""

# The page and the e-mail inside it may load images (https/data) and inline styles, nothing
# else: no scripts, no forms, no frames other than the srcdoc one. The srcdoc iframe inherits
# this policy, and its sandbox additionally makes it a unique origin without scripts.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-src 'self'"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="template name, e.g. application_update")
    parser.add_argument(
        "--data",
        type=Path,
        help="JSON file with the template context (default: NAME/sample.json in the set)",
    )
    parser.add_argument(
        "--locale",
        help="locale to render, e.g. de or de-AT; it must have a folder in the template "
        "(de-AT may use de) (default: the default files)",
    )
    parser.add_argument(
        "--templates",
        type=Path,
        default=None,
        help="template directory (default: the built-in templates)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("preview.html"),
        help="output HTML file; its folder must exist (default: preview.html)",
    )


def load_sample(path: Path) -> dict[str, Any]:
    """Read a JSON context; numbers with a fraction become Decimal so they keep their digits."""
    data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def variant_summary(name: str, rendered: Rendered) -> str:
    """One line on a variant's rendering: ``sms: 1 segment, GSM-7, 57 septets``; for a push
    its title; empty for email templates."""
    _, sep, variant = name.partition(":")
    if not sep:
        return ""
    if variant == "sms":
        from notifier.channels.gsm import sms_info

        return f"sms: {sms_info(rendered.text.strip()).describe()}"
    if variant == "push":
        card = _push_card(rendered.text)
        return f"push: {card.get('title')!r}" if card else "push: not a notification"
    return f"{variant}: {len(rendered.text)} characters"


def _push_card(text: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _variant_body(name: str, rendered: Rendered) -> str:
    """The page body for a channel variant."""
    esc = html.escape
    variant = name.partition(":")[2]
    if variant == "sms":
        facts = variant_summary(name, rendered)
        return (
            f'<div class="card"><span class="label">SMS</span>'
            f'<div class="bubble">{esc(rendered.text.strip())}</div></div>'
            f'<p class="facts">{esc(facts)} (a text over the channel\'s max_segments is a '
            f"permanent SmsTooLong failure, never truncated)</p>"
        )
    card = _push_card(rendered.text) if variant == "push" else None
    if card is not None:
        data = json.dumps(card.get("data", {}), indent=2, ensure_ascii=False)
        return (
            f'<div class="card"><span class="label">Push notification</span>'
            f'<div class="title">{esc(str(card.get("title", "")))}</div>'
            f"<div>{esc(str(card.get('body', '')))}</div></div>"
            f'<main><section><span class="label">data</span><pre>{esc(data)}</pre></section>'
            f'<section><span class="label">push.json as rendered</span>'
            f"<pre>{esc(rendered.text)}</pre></section></main>"
        )
    return (
        f'<main><section><span class="label">{esc(variant)}</span>'
        f"<pre>{esc(rendered.text)}</pre></section></main>"
    )


def render_page(
    rendered: Rendered,
    *,
    name: str,
    locale: str | None,
    files: tuple[str | None, str, str | None],
    directory: Path,
) -> str:
    """The preview page for one rendered notification (a complete HTML document)."""
    esc = html.escape
    subject = (
        f'<span class="value">{esc(rendered.subject)}</span>'
        if rendered.subject
        else '<span class="value empty">(no subject: this template has no subject.txt)</span>'
    )
    if rendered.html is None:
        html_part = '<div class="nohtml empty">This template has no body.html.</div>'
    else:
        # srcdoc is an attribute: escape the whole document, quotes included.
        html_part = (
            f'<iframe sandbox="" referrerpolicy="no-referrer" title="HTML body" '
            f'srcdoc="{esc(rendered.html, quote=True)}"></iframe>'
        )
    used = ", ".join(f"<code>{esc(f)}</code>" for f in files if f)
    if ":" in name:
        body = _variant_body(name, rendered)
    else:
        body = f"""<div class="subject"><span class="label">Subject</span>{subject}</div>
<main>
<section><span class="label">Text</span><pre>{esc(rendered.text)}</pre></section>
<section><span class="label">HTML</span>{html_part}</section>
</main>"""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview: {esc(name)}{esc(f" ({locale})" if locale else "")}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{esc(name)} <span class="meta">locale: {esc(locale or "default")}</span></h1>
<div class="meta">from <code>{esc(str(directory))}</code> · files: {used}</div>
</header>
{body}
</body>
</html>
"""


def _locale_folder(locale: str, locales: list[str]) -> str | None:
    """The template's locale folder ``locale`` renders with (``de-AT`` -> ``de-AT`` or ``de``;
    case and ``_``/``-`` ignored), or None when it has none."""
    by_key = {x.lower().replace("_", "-"): x for x in locales}
    parts = locale.lower().replace("_", "-").split("-")
    for n in range(len(parts), 0, -1):
        found = by_key.get("-".join(parts[:n]))
        if found is not None:
            return found
    return None


def _validated(args: argparse.Namespace) -> tuple[TemplateSet, dict[str, Any]]:
    """Every user error, as one :class:`~notifier.cli.UsageError`, before anything renders."""
    from notifier.cli import UsageError

    directory: Path = args.templates or builtin_templates()
    out: Path = args.out
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name such as {out}/preview.html")
    if not directory.is_dir():
        raise UsageError(f"--templates {directory}: no such folder")
    try:
        templates = TemplateSet(directory)
    except TemplateError as exc:
        raise UsageError(f"{directory}: {exc}") from exc
    if args.name not in templates.names:
        known = ", ".join(templates.names) or "none"
        raise UsageError(f"no template {args.name!r} in {directory} (templates: {known})")
    if (
        args.locale is not None
        and _locale_folder(args.locale, templates.locales(args.name)) is None
    ):
        known = ", ".join(templates.locales(args.name)) or "none"
        raise UsageError(
            f"--locale {args.locale}: template {args.name!r} has no {args.locale!r} folder "
            f"(locales: {known}; leave out --locale for the default files)"
        )
    data_path: Path = args.data or directory / args.name.partition(":")[0] / "sample.json"
    if not data_path.is_file():
        raise UsageError(
            f"--data {data_path}: no such file"
            if args.data
            else f"{data_path}: template {args.name!r} has no sample.json; pass --data FILE"
        )
    try:
        context = load_sample(data_path)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{data_path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    except ValueError as exc:  # not an object: the message names the file
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"{data_path}: cannot read: {exc.strerror or exc}") from exc
    return templates, context


def run(args: argparse.Namespace) -> int:
    directory: Path = args.templates or builtin_templates()
    templates, context = _validated(args)
    try:
        rendered = templates.render(args.name, context, locale=args.locale)
        files = templates.files(args.name, locale=args.locale)
    except (TemplateError, OSError, ValueError) as exc:
        print(f"notifier preview: {exc}", file=sys.stderr)
        return 1
    page = render_page(
        rendered, name=args.name, locale=args.locale, files=files, directory=directory
    )
    out: Path = args.out
    out.write_text(page, encoding="utf-8")
    summary = variant_summary(args.name, rendered) or f"subject: {rendered.subject!r}"
    print(f"wrote {out} ({summary})")
    return 0
