"""Many contexts in one call: per-item results, one bad item does not fail the others."""

from __future__ import annotations

from typing import Any

import pytest
from tpl_helpers import MakeSet

from notifier.templates import Rendered, TemplateError, TemplateSet


@pytest.fixture
def greet(make_set: MakeSet) -> TemplateSet:
    return make_set(
        {
            "greet/subject.txt": "Hi {{ name }}",
            "greet/body.txt": "Hello {{ name }}",
            "greet/de/subject.txt": "Hallo {{ name }}",
            "bye/body.txt": "Bye {{ name }}",
        }
    )


def test_render_many_equals_render(greet: TemplateSet) -> None:
    # GIVEN contexts with per-item names and locales
    ctxs: list[dict[str, Any]] = [{"name": f"user {i}"} for i in range(5)]
    names = ["greet", "bye", "greet", "greet", "bye"]
    locales = [None, "de", "de-AT", "fr", None]
    # WHEN rendered in one call THEN each equals the single render
    results = greet.render_many(names, ctxs, locales)
    assert results == [
        greet.render(n, c, locale=loc) for n, c, loc in zip(names, ctxs, locales, strict=True)
    ]


def test_one_bad_context_yields_its_error_only(greet: TemplateSet) -> None:
    # GIVEN three contexts; the middle one lacks `name`, the last has a CR/LF subject
    ctxs: list[dict[str, Any]] = [{"name": "Ada"}, {}, {"name": "x\r\ny"}, {"name": object()}]
    # WHEN rendered THEN errors are returned in place, as TemplateError instances
    results = greet.render_many("greet", ctxs)
    assert results[0] == Rendered("Hi Ada", "Hello Ada", None)
    assert isinstance(results[1], TemplateError)
    assert results[1].template == "greet"
    assert "name" in str(results[1])
    assert isinstance(results[2], TemplateError)
    assert "line break" in str(results[2])
    assert isinstance(results[3], TemplateError)
    assert "unsupported type" in str(results[3])


def test_unknown_name_is_per_item(greet: TemplateSet) -> None:
    # GIVEN one unknown template name among good ones
    results = greet.render_many(["greet", "nope"], [{"name": "a"}, {"name": "b"}])
    # WHEN rendered THEN only that item fails
    assert isinstance(results[0], Rendered)
    assert isinstance(results[1], TemplateError)


def test_broadcast_locale_and_length_checks(greet: TemplateSet) -> None:
    # GIVEN one locale for all WHEN rendered THEN it applies to each
    results = greet.render_many("greet", [{"name": "a"}, {"name": "b"}], "de")
    assert [r.subject for r in results if isinstance(r, Rendered)] == ["Hallo a", "Hallo b"]
    # AND mismatched per-item lists are a caller error
    with pytest.raises(ValueError, match="names has 1 items for 2"):
        greet.render_many(["greet"], [{"name": "a"}, {"name": "b"}])
    with pytest.raises(ValueError, match="locales has 3 items for 2"):
        greet.render_many("greet", [{"name": "a"}, {"name": "b"}], ["de", None, "de"])
    assert greet.render_many("greet", []) == []
