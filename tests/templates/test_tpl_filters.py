"""The filters notification templates need: dates, numbers, truncate, default, title, urlencode."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tpl_helpers import MakeSet

from notifier.templates import TemplateError, TemplateSet


@pytest.fixture
def render_expr(make_set: MakeSet) -> Any:
    """Factory: render one expression (text template) with a context."""
    cache: dict[str, TemplateSet] = {}

    def render(expr: str, **ctx: Any) -> str:
        if expr not in cache:
            cache[expr] = make_set({"t/body.txt": "{{ " + expr + " }}"})
        return cache[expr].render("t", ctx).text

    return render


NEW_YEAR = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("expr", "value", "expected"),
    [
        ("v|datetime", NEW_YEAR, "2026-01-01 00:00"),
        ("v|datetime", Decimal(NEW_YEAR), "2026-01-01 00:00"),
        ('v|datetime("%Y-%m-%d %H:%M", tz="Europe/Berlin")', Decimal(NEW_YEAR), "2026-01-01 01:00"),
        (
            'v|datetime("%d.%m.%Y %H:%M %Z", tz="Europe/Vienna")',
            NEW_YEAR + 182 * 86400,
            "02.07.2026 02:00 CEST",
        ),
        (
            'v|datetime("%b %-d, %Y %I:%M %p", "America/New_York")',
            NEW_YEAR,
            "Dec 31, 2025 07:00 PM",
        ),
        ('v|datetime("%H:%M:%S.%3f")', Decimal("1767225600.25"), "00:00:00.250"),
        ('v|datetime(tz="Asia/Kolkata")', "2026-01-01T00:00:00Z", "2026-01-01 05:30"),
        ("v|datetime", "2026-01-01T02:00:00+02:00", "2026-01-01 00:00"),
        ("v|datetime", "2026-03-04 05:06:07", "2026-03-04 05:06"),
        ("v|date", "2026-03-04", "2026-03-04"),
        ("v|date", "1767225600", "2026-01-01"),
        ('v|date("%A, %d %B %Y", tz="Pacific/Auckland")', NEW_YEAR, "Thursday, 01 January 2026"),
    ],
)
def test_datetime(render_expr: Any, expr: str, value: Any, expected: str) -> None:
    # GIVEN epoch seconds (int/Decimal/text) or ISO text WHEN formatted THEN in the given zone
    assert render_expr(expr, v=value) == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('v|datetime(tz="Mars/Base")', "unknown time zone"),
        ("v|datetime", "ISO 8601"),
        ('v|datetime("%Q")', "invalid date/time format"),
    ],
)
def test_datetime_errors(make_set: MakeSet, expr: str, message: str) -> None:
    # GIVEN a bad zone, value or format WHEN rendered THEN TemplateError says which
    ts = make_set({"t/body.txt": "{{ " + expr + " }}"})
    value = "next tuesday" if message == "ISO 8601" else NEW_YEAR
    with pytest.raises(TemplateError, match=message):
        ts.render("t", {"v": value})


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("v|datetime", "cannot read a string of 21 characters as ISO 8601"),
        ("v|date", "cannot read a string of 21 characters as ISO 8601"),
        ("n|datetime(tz=v)", "unknown time zone (21 characters; use an IANA name"),
    ],
)
def test_datetime_errors_never_quote_the_value(make_set: MakeSet, expr: str, message: str) -> None:
    # GIVEN a record's value (an email address) where a date/time or a time zone belongs
    ts = make_set({"t/body.txt": "{{ " + expr + " }}"})
    email = "jane.doe@corp.example"
    # WHEN rendered THEN TemplateError describes the problem without the value
    with pytest.raises(TemplateError) as info:
        ts.render("t", {"v": email, "n": NEW_YEAR})
    assert message in str(info.value), str(info.value)
    assert email not in str(info.value)


@pytest.mark.parametrize(
    ("expr", "value", "expected"),
    [
        ("v|number", 1234567, "1,234,567"),
        ("v|number", Decimal("-1234.5"), "-1,234.5"),
        ("v|number(2)", Decimal("1234.5"), "1,234.50"),
        ("v|number(1)", Decimal("87.25"), "87.3"),
        ("v|number(2)", Decimal("2.675"), "2.68"),
        ("v|number(0)", Decimal("999.5"), "1,000"),
        ("v|number(2)", 0.1, "0.10"),
        (
            "v|number",
            Decimal("12345678901234567890123456789012345678"),
            "12,345,678,901,234,567,890,123,456,789,012,345,678",
        ),
        ("v|number(2)", Decimal("0.3333333333333333333333333333333333333"), "0.33"),
        ('v|number(2, locale="de")', Decimal("1234567.891"), "1.234.567,89"),
        ('v|number(locale="de_AT")', 85000, "85.000"),
        ('v|number(2, locale="fr")', 1234.5, "1\u202f234,50"),
        ('v|number(2, locale="de-CH")', 1234.5, "1\u2019234.50"),
        ('v|number(thousands=" ", point=",")', Decimal("1234.5"), "1 234,5"),
        ("v|number(decimals=3)", "42", "42.000"),
    ],
)
def test_number(render_expr: Any, expr: str, value: Any, expected: str) -> None:
    # GIVEN a number WHEN formatted THEN grouped and rounded half away from zero, exactly
    assert render_expr(expr, v=value) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("v|truncate(20)", "Great to meet..."),
        ("v|truncate(20, true)", "Great to meet you..."),
        ('v|truncate(20, end="…")', "Great to meet you…"),
        ("v|truncate(33)", "Great to meet you at the conference! 👋"),
        ("v|truncate(length=30, leeway=0)", "Great to meet you at the..."),
        ("v|truncate", "Great to meet you at the conference! 👋"),
    ],
)
def test_truncate_like_jinja2(render_expr: Any, expr: str, expected: str) -> None:
    # GIVEN a message WHEN truncated THEN Jinja2's semantics (word boundary, leeway 5)
    assert render_expr(expr, v="Great to meet you at the conference! 👋") == expected


def test_default_title_urlencode(render_expr: Any) -> None:
    # GIVEN missing/empty values, names, and URL parts WHEN filtered THEN as in Jinja2
    assert render_expr("missing|default('n/a')") == "n/a"
    assert render_expr("v|default('n/a', true)", v="") == "n/a"
    assert render_expr("v|default('n/a')", v="") == ""
    assert render_expr("v|title", v="o'neil data-scientist ÉCOLE") == "O'neil Data-Scientist École"
    assert render_expr("v|urlencode", v="a b&c/ü?") == "a%20b%26c/%C3%BC%3F"
    assert render_expr("v|urlencode", v={"q": "rust & go", "page": 2}) == "q=rust%20%26%20go&page=2"


def test_exact_decimals_with_numeric_filters(render_expr: Any) -> None:
    # GIVEN a Decimal that no float represents exactly (trailing zero, 22 digits)
    v = Decimal("-12.3000000000000000001")
    # WHEN converted THEN int truncates exactly, float/round approximate, abs keeps digits
    assert render_expr("v", v=v) == "-12.3000000000000000001"
    assert render_expr("v|int", v=v) == "-12"
    assert render_expr("v|float", v=v) == "-12.3"
    assert render_expr("v|round(1)", v=v) == "-12.3"
    assert render_expr("v|abs", v=v) == "12.3000000000000000001"
    assert render_expr("v is number", v=v) == "True"
    assert render_expr("v|float > 12.29 and v|float < 12.31", v=Decimal("12.30")) == "True"


def test_python_style_methods(render_expr: Any) -> None:
    # GIVEN Jinja2 habits (Python methods on values) WHEN used THEN they work
    assert render_expr("v.upper()", v="ada") == "ADA"
    assert render_expr("d.get('x', 'none')", d={}) == "none"
    assert render_expr("d.items()|list|length", d={"a": 1, "b": 2}) == "2"
