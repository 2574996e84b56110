"""The built-in templates: every event type, every locale, realistic items."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import notifier
from notifier.samples import EVENT_TYPES, make_item
from notifier.templates import Rendered, TemplateSet, builtin_templates


def test_builtin_templates_ship_inside_the_package(builtin_set: TemplateSet) -> None:
    # GIVEN the installed package WHEN asked for the built-in set THEN it is package data
    assert builtin_templates() == Path(notifier.__file__).parent / "builtin_templates"
    # AND every event type has its email template and its SMS and push variants
    assert builtin_set.names == sorted(
        f"{t}{v}" for t in EVENT_TYPES for v in ("", ":push", ":sms")
    )
    for name in EVENT_TYPES:
        assert builtin_set.locales(name) == ["de"]
        assert builtin_set.locales(f"{name}:sms") == ["de"]
        assert (builtin_templates() / name / "sample.json").is_file()


@pytest.mark.parametrize("name", EVENT_TYPES)
@pytest.mark.parametrize("locale", [None, "de", "de-AT", "en-US"])
def test_sample_data_renders_all_parts(
    builtin_set: TemplateSet, name: str, locale: str | None
) -> None:
    # GIVEN the shipped sample context (numbers as Decimal, as DynamoDB delivers them)
    sample = json.loads(
        (builtin_templates() / name / "sample.json").read_text(encoding="utf-8"),
        parse_float=Decimal,
    )
    # WHEN rendered THEN subject, text and a full HTML document come out, in the right language
    r = builtin_set.render(name, sample, locale=locale)
    assert r.subject
    assert "\n" not in r.subject
    assert sample["user"]["name"] in r.text
    assert r.html is not None
    assert r.html.startswith("<!DOCTYPE html>")
    german = locale is not None and locale.startswith("de")
    assert ('<html lang="de">' in r.html) is german
    assert ("Hallo" in r.text) is german


@pytest.mark.parametrize("locale", [None, "de", "de-AT", "en-GB"])
def test_every_sample_item_renders(builtin_set: TemplateSet, locale: str | None) -> None:
    # GIVEN 150 realistic items of all event types (some without an actor)
    items = [make_item(i) for i in range(150)]
    assert any("actor" not in it for it in items)
    # WHEN each is rendered with its event type's template
    results = builtin_set.render_many([it["event_type"] for it in items], items, locale)
    # THEN none fails
    assert all(isinstance(r, Rendered) for r in results), [
        r for r in results if not isinstance(r, Rendered)
    ][:1]


def test_profile_view_without_actor(builtin_set: TemplateSet) -> None:
    # GIVEN a profile view whose viewer is anonymous (no actor attribute)
    item = next(it for it in (make_item(i) for i in range(50)) if "actor" not in it)
    count = item["data"]["viewer_count"]
    # WHEN rendered in English and German THEN the count is shown instead of a name
    en = builtin_set.render("profile_view", item)
    de = builtin_set.render("profile_view", item, locale="de")
    assert en.subject.startswith(f"{count} ")
    assert en.subject.endswith("viewed your profile")
    assert de.subject.endswith("Ihr Profil angesehen")


def test_application_update_content(builtin_set: TemplateSet) -> None:
    # GIVEN an application update with steps, salary range and a score
    item = make_item(2)
    data = item["data"]
    # WHEN rendered in German
    r = builtin_set.render("application_update", item, locale="de")
    # THEN it shows every step, German number formatting and the company (HTML-escaped)
    assert r.html is not None
    for step in ("Beworben", "Vorauswahl", "Gespräch"):
        assert step in r.text
        assert step in r.html
    low = f"{int(data['job']['salary_range'][0]):,}".replace(",", ".")
    assert low in r.text
    assert data["job"]["company"] in r.subject
