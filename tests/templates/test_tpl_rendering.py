"""Rendering semantics: escaping, strictness, locales, inheritance, header safety, numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tpl_helpers import MakeSet

from notifier.templates import Rendered, TemplateError


def test_html_is_escaped_text_and_subject_are_not(make_set: MakeSet) -> None:
    # GIVEN the same expression in subject, text and HTML
    expr = "{{ actor.name }} says {{ msg }}"
    ts = make_set({"t/subject.txt": expr, "t/body.txt": expr, "t/body.html": f"<p>{expr}</p>"})
    ctx = {"actor": {"name": "<script>alert('x')</script>"}, "msg": 'Tom & "Jerry"'}
    # WHEN rendered
    r = ts.render("t", ctx)
    # THEN only the HTML is escaped (markup-safe spelling, as Jinja2 writes it)
    raw = "<script>alert('x')</script> says Tom & \"Jerry\""
    assert r.subject == raw
    assert r.text == raw
    assert r.html == (
        "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; says Tom &amp; &#34;Jerry&#34;</p>"
    )


def test_safe_and_macros_are_not_double_escaped(make_set: MakeSet) -> None:
    # GIVEN a macro producing markup and a value marked safe
    ts = make_set(
        {
            "_m/ui.html": '{% macro link(url, label) %}<a href="{{ url }}">{{ label }}</a>'
            "{% endmacro %}",
            "t/body.txt": "x",
            "t/body.html": '{% from "_m/ui.html" import link %}'
            "{{ link(url, label) }}{{ '<br>'|safe }}",
        }
    )
    # WHEN rendered THEN the macro's markup stays markup and its arguments are escaped once
    r = ts.render("t", {"url": "https://example.com/?a=1&b=2", "label": "<Go>"})
    assert r.html == '<a href="https://example.com/?a=1&amp;b=2">&lt;Go&gt;</a><br>'


@pytest.mark.parametrize(
    ("source", "context", "variable"),
    [
        ("Hi {{ user.nmae }}", {"user": {"name": "Ada"}}, "user.nmae"),
        ("Hi {{ name }}", {}, "name"),
        ("{% for s in steps %}{{ s.label }}{% endfor %}", {"steps": [{"name": "a"}]}, "s.label"),
        ("{{ actor.name }}", {}, "actor.name"),
    ],
)
def test_strict_undefined_names_template_and_variable(
    make_set: MakeSet, source: str, context: dict[str, Any], variable: str
) -> None:
    # GIVEN a template reading a variable the context lacks
    ts = make_set({"greet/body.txt": "line one\n" + source})
    # WHEN rendered THEN TemplateError names the template, the variable and the line
    with pytest.raises(TemplateError) as exc:
        ts.render("greet", context)
    err = exc.value
    assert err.template == "greet"
    assert (err.file, err.line) == ("greet/body.txt", 2)
    assert "undefined" in str(err)
    assert variable in str(err)


def test_optional_values_via_is_defined_and_default(make_set: MakeSet) -> None:
    # GIVEN a template that copes with a missing actor
    ts = make_set(
        {
            "t/body.txt": "{% if actor is defined %}{{ actor.name }}{% else %}someone{% endif %}"
            " / {{ nickname|default('friend') }}"
        }
    )
    # WHEN rendered with and without THEN both work
    assert ts.render("t", {}).text == "someone / friend"
    assert ts.render("t", {"actor": {"name": "Ada"}, "nickname": "A"}).text == "Ada / A"


@pytest.mark.parametrize(
    ("locale", "subject", "text"),
    [
        (None, "Hello", "text en"),
        ("de", "Hallo", "text de"),
        ("de-AT", "Servus", "text de"),  # subject from de-AT, body falls back to de
        ("de_at", "Servus", "text de"),  # underscore and case do not matter
        ("DE-CH", "Hallo", "text de"),  # unknown region -> language
        ("de-AT-x-private", "Servus", "text de"),  # longest known prefix wins
        ("fr", "Hello", "text en"),  # unknown language -> default
        ("", "Hello", "text en"),
    ],
)
def test_locale_fallback_chain(
    make_set: MakeSet, locale: str | None, subject: str, text: str
) -> None:
    # GIVEN default, de and de-AT (subject only) variants
    ts = make_set(
        {
            "t/subject.txt": "Hello",
            "t/body.txt": "text en",
            "t/de/subject.txt": "Hallo",
            "t/de/body.txt": "text de",
            "t/de-AT/subject.txt": "Servus",
        }
    )
    # WHEN rendered in a locale THEN each part comes from the nearest locale that has it
    r = ts.render("t", {}, locale=locale)
    assert (r.subject, r.text) == (subject, text)


def test_inheritance_include_and_localized_layout(make_set: MakeSet) -> None:
    # GIVEN a base layout, a German layout extending it, and a shared partial
    ts = make_set(
        {
            "_layouts/base.html": '<html lang="{% block lang %}en{% endblock %}">'
            "{% block content %}{% endblock %}"
            "<footer>{% block footer %}Bye{% endblock %}</footer></html>",
            "_layouts/de/base.html": '{% extends "_layouts/base.html" %}'
            "{% block lang %}de{% endblock %}{% block footer %}Tschüss{% endblock %}",
            "_parts/sig.txt": "-- {{ team }}",
            "t/body.txt": 'Hi\n{% include "_parts/sig.txt" %}',
            "t/body.html": '{% extends "_layouts/base.html" %}'
            "{% block content %}<p>{{ team }}</p>{% endblock %}",
            "t/de/body.html": '{% extends "_layouts/de/base.html" %}'
            "{% block content %}<p>{{ team }}!</p>{% endblock %}",
        }
    )
    ctx = {"team": "R&D"}
    # WHEN rendered in both locales THEN blocks fill the layouts, includes see the context
    en = ts.render("t", ctx)
    de = ts.render("t", ctx, locale="de")
    assert en.text == "Hi\n-- R&D"
    assert en.html == '<html lang="en"><p>R&amp;D</p><footer>Bye</footer></html>'
    assert de.html == '<html lang="de"><p>R&amp;D!</p><footer>Tschüss</footer></html>'


def test_error_inside_layout_names_the_layout_file(make_set: MakeSet) -> None:
    # GIVEN a layout reading a variable the context lacks
    ts = make_set(
        {
            "_layouts/base.html": "<h1>{{ brand.name }}</h1>{% block c %}{% endblock %}",
            "t/body.txt": "x",
            "t/body.html": '{% extends "_layouts/base.html" %}{% block c %}ok{% endblock %}',
        }
    )
    # WHEN rendered THEN the error names the template and the layout file
    with pytest.raises(TemplateError, match=r"brand\.name") as exc:
        ts.render("t", {})
    assert exc.value.template == "t"
    assert exc.value.file == "_layouts/base.html"


@pytest.mark.parametrize("evil", ["x\r\nBcc: all@example.com", "x\nBcc: a@b", "x\rBcc: a@b"])
def test_subject_with_line_break_is_rejected(make_set: MakeSet, evil: str) -> None:
    # GIVEN a subject that interpolates user input
    ts = make_set({"t/subject.txt": "New message from {{ name }}\n", "t/body.txt": "b"})
    # WHEN the input carries CR/LF (header injection) THEN rendering refuses it
    with pytest.raises(TemplateError, match="line break") as exc:
        ts.render("t", {"name": evil})
    assert exc.value.file == "t/subject.txt"
    # AND the file's own trailing newline is not a problem
    assert ts.render("t", {"name": "Ada"}).subject == "New message from Ada"


def test_missing_parts_subject_empty_html_none(make_set: MakeSet) -> None:
    # GIVEN an SMS-style template with only body.txt
    ts = make_set({"sms/body.txt": "Code {{ code }}"})
    # WHEN rendered THEN subject is empty and html is None
    assert ts.render("sms", {"code": 42}) == Rendered("", "Code 42", None)


def test_unknown_template_is_a_template_error(make_set: MakeSet) -> None:
    ts = make_set({"t/body.txt": "x"})
    # GIVEN a set WHEN an unknown name is rendered THEN TemplateError lists the known ones
    with pytest.raises(TemplateError, match=r"unknown template.*known: t") as exc:
        ts.render("nope", {})
    assert exc.value.template == "nope"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("42"), "42"),
        (Decimal("-7"), "-7"),
        (Decimal("0.1"), "0.1"),
        (Decimal("87.25"), "87.25"),
        (Decimal("12.30"), "12.30"),
        (Decimal("1E+3"), "1000"),
        (Decimal("2.0"), "2"),
        (Decimal("1.5E-7"), "0.00000015"),
        (
            Decimal("12345678901234567890123456789012345678"),
            "12345678901234567890123456789012345678",
        ),
        (
            Decimal("-1234567890123456789.0123456789012345678"),
            "-1234567890123456789.0123456789012345678",
        ),
        (
            Decimal("9.9999999999999999999999999999999999999E+125"),
            "99999999999999999999999999999999999999" + "0" * 88,
        ),
        (10**40, str(10**40)),
        (0.1, "0.1"),
    ],
)
def test_decimals_render_exact_digits(make_set: MakeSet, value: Any, shown: str) -> None:
    # GIVEN a number from DynamoDB (Decimal) or Python
    ts = make_set({"t/body.txt": "{{ v }}", "t/body.html": "{{ v }}"})
    # WHEN rendered THEN its exact digits appear, no float noise, in text and HTML
    r = ts.render("t", {"v": value})
    assert (r.text, r.html) == (shown, shown)


def test_integral_decimals_support_arithmetic_and_comparison(make_set: MakeSet) -> None:
    # GIVEN Decimal counts and epoch seconds
    ts = make_set(
        {"t/body.txt": "{{ n - 1 }} {{ n * 2 }} {{ n > 10 }} {{ big + 1 }} {{ score >= 50 }}"}
    )
    ctx = {"n": Decimal("16"), "big": Decimal("99999999999999999999"), "score": Decimal("87.25")}
    # WHEN rendered THEN integer arithmetic is exact and comparisons work
    assert ts.render("t", ctx).text == "15 32 True 100000000000000000000 True"


def test_unicode_everywhere(make_set: MakeSet) -> None:
    # GIVEN non-ASCII template text, names, emoji and a German locale folder
    ts = make_set(
        {
            "grüße/subject.txt": "Grüße, {{ name }} 👋",
            "grüße/body.txt": "{{ name|upper }} · {{ name|length }} · {{ city|title }}",
            "grüße/body.html": "<p>{{ name }} \u2013 {{ note }}</p>",
        }
    )
    # WHEN rendered THEN characters survive, length counts characters, case maps fully
    r = ts.render("grüße", {"name": "Jürgen 😀", "city": "münchen-ost", "note": "«ok» & ✓"})
    assert ts.names == ["grüße"]
    assert r.subject == "Grüße, Jürgen 😀 👋"
    assert r.text == "JÜRGEN 😀 · 8 · München-Ost"
    assert r.html == "<p>Jürgen 😀 \u2013 «ok» &amp; ✓</p>"


def test_context_types(make_set: MakeSet) -> None:
    # GIVEN the Python types a context may carry
    import datetime as dt

    ts = make_set(
        {
            "t/body.txt": "{{ tags|join(',') }}|{{ nums|join(',') }}|{{ pair[1] }}|{{ none }}|"
            "{{ flag }}|{{ when }}|{{ m[1] }}|{{ raw|length }}"
        }
    )
    ctx = {
        "tags": {"urgent", "remote", "hybrid"},
        "nums": frozenset({Decimal("4.5"), Decimal("10"), Decimal("-1")}),
        "pair": ("a", "b"),
        "none": None,
        "flag": True,
        "when": dt.datetime(2026, 1, 1, 12, 30, tzinfo=dt.UTC),
        "m": {1: "one"},
        "raw": b"\x00\x01\x02",
    }
    # WHEN rendered THEN sets are sorted, datetimes are ISO text, non-str keys by their text
    assert ts.render("t", ctx).text == (
        "hybrid,remote,urgent|-1,4.5,10|b|None|True|2026-01-01T12:30:00+00:00|one|3"
    )


def test_unsupported_context_value_names_its_path(make_set: MakeSet) -> None:
    ts = make_set({"t/body.txt": "{{ data }}"})
    # GIVEN a value with no template meaning WHEN rendered THEN the error names its path
    with pytest.raises(TemplateError, match=r'"data\.items\.1".*unsupported type object'):
        ts.render("t", {"data": {"items": [1, object()]}})
    with pytest.raises(TemplateError, match="mapping"):
        ts.render("t", ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_context_names_no_template_reads_are_not_converted(make_set: MakeSet) -> None:
    # GIVEN templates reading `user` (directly, in a layout and in an included part)
    ts = make_set(
        {
            "_l/base.html": "<h1>{{ title }}</h1>{% block body %}{% endblock %}",
            "_p/sig.txt": "-- {{ team }}",
            "t/subject.txt": "Hi {{ user.name }}",
            "t/body.txt": '{{ user.name }}\n{% include "_p/sig.txt" %}',
            "t/body.html": (
                '{% extends "_l/base.html" %}{% block body %}{{ user.name }}{% endblock %}'
            ),
        }
    )
    # AND a context whose other entries hold values no template can show
    ctx = {"user": {"name": "Ada"}, "title": "T", "team": "ops", "blob": object(), "n": {1, "a"}}
    # WHEN rendered THEN the unread entries are ignored (never converted, so they cannot fail)
    assert ts.render("t", ctx) == Rendered("Hi Ada", "Ada\n-- ops", "<h1>T</h1>Ada")
    assert ts.render_many("t", [ctx, ctx]) == [ts.render("t", ctx)] * 2
    # AND a value the templates do read is still converted and checked
    with pytest.raises(TemplateError, match="unsupported type object"):
        ts.render("t", {**ctx, "team": object()})


@pytest.mark.parametrize(
    "body",
    [
        "{% include part %}",  # a variable names the template
        '{% include "_p/" ~ kind ~ ".txt" %}',  # an expression builds the name
        '{% include "_p/a.txt" if flag else "_p/b.txt" %}',
        "{{ debug() }}",  # prints the whole context
    ],
)
def test_templates_that_may_read_anything_get_the_whole_context(
    make_set: MakeSet, body: str
) -> None:
    # GIVEN a template whose reads no scan of its source can list
    ts = make_set({"_p/a.txt": "{{ secret_a }}", "_p/b.txt": "{{ secret_b }}", "t/body.txt": body})
    ctx = {"part": "_p/a.txt", "kind": "b", "flag": True, "secret_a": "A", "secret_b": "B"}
    # WHEN rendered THEN every context entry is there to read
    text = ts.render("t", ctx).text
    assert ("A" in text) or ("B" in text)
    # AND so an unsupported value anywhere in the context is reported
    with pytest.raises(TemplateError, match="unsupported type object"):
        ts.render("t", {**ctx, "blob": object()})


def test_rendered_value_semantics() -> None:
    # GIVEN two equal results WHEN compared THEN equal and hashable, html optional
    a = Rendered("s", "t", "<p>h</p>")
    assert a == Rendered("s", "t", "<p>h</p>")
    assert a != Rendered("s", "t")
    assert len({a, Rendered("s", "t", "<p>h</p>")}) == 1
    assert (a.subject, a.text, a.html) == ("s", "t", "<p>h</p>")
    assert "Rendered(subject=" in repr(a)
