"""Loading a template set: layout rules, and failing fast with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from tpl_helpers import MakeSet, WriteTemplates

from notifier.templates import TemplateError, TemplateSet


def test_names_locales_and_files(make_set: MakeSet) -> None:
    # GIVEN two templates, one with German and Austrian overrides and shared layouts
    ts = make_set(
        {
            "welcome/subject.txt": "Welcome",
            "welcome/body.txt": "Hello",
            "welcome/body.html": "<p>Hello</p>",
            "welcome/de/subject.txt": "Willkommen",
            "welcome/de-AT/body.txt": "Servus",
            "sms_code/body.txt": "Your code",
            "_layouts/base.html": "{% block content %}{% endblock %}",
            "README.md": "not a template",
        }
    )
    # WHEN inspected THEN names skip `_` folders, locales are the folders as named on disk
    assert ts.names == ["sms_code", "welcome"]
    assert ts.locales("welcome") == ["de", "de-AT"]
    assert ts.locales("sms_code") == []
    # AND each part resolves on its own through the fallback chain
    assert ts.files("welcome", locale="de-AT") == (
        "welcome/de/subject.txt",
        "welcome/de-AT/body.txt",
        "welcome/body.html",
    )
    assert ts.files("sms_code") == (None, "sms_code/body.txt", None)


def test_syntax_error_names_file_and_line(write_templates: WriteTemplates) -> None:
    # GIVEN a German body with an unclosed block on line 3
    root = write_templates(
        {
            "t/body.txt": "ok",
            "t/de/body.txt": "Hallo\n{{ user.name }}\n{% if x %}\nnever closed\n",
        }
    )
    # WHEN loaded THEN TemplateError names the file and the line, in the message and attributes
    with pytest.raises(TemplateError, match=r"syntax error") as exc:
        TemplateSet(root)
    err = exc.value
    assert err.file == "t/de/body.txt"
    assert err.line is not None
    assert err.line >= 3
    assert f"t/de/body.txt, line {err.line}" in str(err)


def test_bad_expression_syntax_is_reported(write_templates: WriteTemplates) -> None:
    # GIVEN an HTML body with a broken expression on line 2
    root = write_templates({"t/body.txt": "x", "t/body.html": "<p>\n{{ user. }}</p>"})
    # WHEN loaded THEN the error points at line 2 of body.html
    with pytest.raises(TemplateError) as exc:
        TemplateSet(root)
    assert (exc.value.file, exc.value.line) == ("t/body.html", 2)


@pytest.mark.parametrize(
    ("files", "message", "file"),
    [
        ({"t/subject.txt": "x"}, "missing body.txt", "t/"),
        ({"t/body.txt": "x", "t/partials/a.txt": "y"}, "neither a locale", "t/partials/"),
        (
            {"t/body.txt": "x", "t/de_AT/body.txt": "y", "t/de-at/body.txt": "z"},
            "same locale",
            None,
        ),
        ({"t/body.txt": "a\nb\n{% include '_parts/none.txt' %}"}, "does not exist", "t/body.txt"),
        ({"t/body.txt": '{% extends "_layouts/gone.html" %}'}, "does not exist", "t/body.txt"),
        ({"t/body.txt": b"caf\xe9"}, "not valid UTF-8", "t/body.txt"),
        ({"_layouts/base.html": "x"}, "no templates", None),
    ],
)
def test_layout_problems_fail_fast(
    write_templates: WriteTemplates,
    files: dict[str, str | bytes],
    message: str,
    file: str | None,
) -> None:
    # GIVEN a directory with one layout mistake
    root = write_templates(files)
    # WHEN loaded THEN TemplateError explains it and names the file where known
    with pytest.raises(TemplateError, match=message) as exc:
        TemplateSet(root)
    if file is not None:
        assert exc.value.file == file


def test_unknown_include_reports_line(write_templates: WriteTemplates) -> None:
    # GIVEN an include of a missing partial on line 3
    root = write_templates({"t/body.txt": "a\nb\n{% include '_parts/none.txt' %}"})
    # WHEN loaded THEN line 3 is named
    with pytest.raises(TemplateError) as exc:
        TemplateSet(root)
    assert exc.value.line == 3


def test_missing_directory_is_a_template_error(tmp_path: Path) -> None:
    # GIVEN a path that does not exist WHEN loaded THEN TemplateError names it
    with pytest.raises(TemplateError, match="does not exist"):
        TemplateSet(tmp_path / "nope")


def test_include_ignore_missing_is_allowed(make_set: MakeSet) -> None:
    # GIVEN an optional include of a file that is absent
    ts = make_set({"t/body.txt": "a{% include '_opt/x.txt' ignore missing %}b"})
    # WHEN rendered THEN the include is skipped
    assert ts.render("t", {}).text == "ab"


def test_utf8_bom_is_ignored(make_set: MakeSet) -> None:
    # GIVEN a subject saved by an editor with a byte-order mark
    ts = make_set({"t/subject.txt": "\ufeffHallo", "t/body.txt": "x"})
    # WHEN rendered THEN the BOM is not part of the subject
    assert ts.render("t", {}).subject == "Hallo"


def test_include_by_expression_loads_and_fails_only_when_rendered_missing(
    make_set: MakeSet,
) -> None:
    # GIVEN a body that picks its partial by an expression starting with a literal
    ts = make_set(
        {
            "t/body.txt": '{% include "_p/" ~ kind ~ ".txt" %}',
            "_p/offer.txt": "offer for {{ name }}",
        }
    )
    # WHEN rendered for a partial that exists THEN it is included
    assert ts.render("t", {"kind": "offer", "name": "Ada"}).text == "offer for Ada"
    # AND for one that does not THEN rendering (not loading) fails with TemplateError
    with pytest.raises(TemplateError, match=r"_p/gone\.txt"):
        ts.render("t", {"kind": "gone", "name": "Ada"})
