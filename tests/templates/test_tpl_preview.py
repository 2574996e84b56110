"""`notifier preview`: one self-contained page with subject, text and HTML side by side."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tpl_helpers import WriteTemplates

from notifier.cli import main
from notifier.templates import TemplateSet, builtin_templates


class _Page(HTMLParser):
    """Collects the parts of a preview page."""

    def __init__(self) -> None:
        super().__init__()
        self.srcdoc: list[str] = []
        self.sandbox: list[str | None] = []
        self.pre: list[str] = []
        self.scripts = 0
        self._in_pre = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "iframe":
            self.srcdoc.append(a.get("srcdoc") or "")
            self.sandbox.append(a.get("sandbox"))
        elif tag == "pre":
            self._in_pre = True
            self.pre.append("")
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        if self._in_pre:
            self.pre[-1] += data


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def test_preview_of_builtin_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the built-in application_update template and its sample data
    out = tmp_path / "preview.html"
    # WHEN previewed in German
    code = main(["preview", "application_update", "--locale", "de", "--out", str(out)])
    # THEN the page holds the subject, the text and the HTML (in a sandboxed srcdoc iframe)
    assert code == 0
    sample = json.loads((builtin_templates() / "application_update" / "sample.json").read_text())
    expected = TemplateSet(builtin_templates()).render("application_update", sample, locale="de")
    text, page = _parse(out)
    assert expected.subject in text
    assert page.pre == [expected.text]
    assert page.srcdoc == [expected.html]
    assert page.sandbox == [""]
    assert page.scripts == 0
    assert str(out) in capsys.readouterr().out


def test_preview_escapes_hostile_data(tmp_path: Path, write_templates: WriteTemplates) -> None:
    # GIVEN a custom template directory and data full of markup and quotes
    root = write_templates(
        {
            "note/subject.txt": "Note: {{ title }}",
            "note/body.txt": "{{ body }}",
            "note/body.html": '<p title="{{ title }}">{{ body }}</p>',
        }
    )
    hostile = {
        "title": '"><script>alert(1)</script>',
        "body": "</pre></iframe><script>x()</script>",
    }
    data = tmp_path / "data.json"
    data.write_text(json.dumps(hostile), encoding="utf-8")
    out = tmp_path / "p.html"
    # WHEN previewed
    code = main(
        ["preview", "note", "--templates", str(root), "--data", str(data), "--out", str(out)]
    )
    # THEN no markup escapes its box: the text is literal, the HTML is intact inside srcdoc
    assert code == 0
    text, page = _parse(out)
    assert "<script>" not in text
    assert page.scripts == 0
    assert page.pre == [hostile["body"]]
    assert page.srcdoc == [TemplateSet(root).render("note", hostile).html]


def test_preview_without_html_part(tmp_path: Path, write_templates: WriteTemplates) -> None:
    # GIVEN an SMS-style template (body.txt only) with its own sample.json
    root = write_templates({"sms/body.txt": "Code {{ code }}", "sms/sample.json": '{"code": 7}'})
    out = tmp_path / "p.html"
    # WHEN previewed with the default data path THEN the page says there is no HTML
    assert main(["preview", "sms", "--templates", str(root), "--out", str(out)]) == 0
    text, page = _parse(out)
    assert page.pre == ["Code 7"]
    assert page.srcdoc == []
    assert "has no body.html" in text


def test_preview_reports_template_errors(
    tmp_path: Path, write_templates: WriteTemplates, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN data that lacks a variable the template needs
    root = write_templates({"t/body.txt": "{{ who }}", "t/sample.json": "{}"})
    out = tmp_path / "p.html"
    # WHEN previewed THEN exit code 1, the error on stderr, no page written
    assert main(["preview", "t", "--templates", str(root), "--out", str(out)]) == 1
    assert "who" in capsys.readouterr().err
    assert not out.exists()
