"""``notifier check``: validate the routing config and render every template in every locale.

Meant for CI, before a deploy::

    notifier check --config notifier.toml --templates templates/

Checks, in order: the config (``--config``, else ``NOTIFIER_CONFIG``, else the built-in
one) loads and validates; the template set (``--templates``, else ``NOTIFIER_TEMPLATES``, else
the built-in set) loads (syntax, includes, encoding); every template the config routes to
exists; every template has a ``sample.json`` and renders against it in the default locale and
in each of its locale folders. Undefined variables are errors: the renderer's undefined is
always strict (docs/TEMPLATES.md). Prints one line per problem, ``file:line: message``
(``file: message`` where no line is known), and exits 1 if there is any, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifier.config import Config

__all__ = ["Problem", "add_arguments", "check", "run"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found: where (file, optional line) and what."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {' '.join(self.message.split())}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="routing config (TOML) to check (default: NOTIFIER_CONFIG, else the built-in one)",
    )
    parser.add_argument(
        "--templates",
        type=Path,
        default=None,
        metavar="DIR",
        help="template directory to check (default: NOTIFIER_TEMPLATES, else the built-in set)",
    )


def _config_problems(path: Path | None) -> tuple[list[Problem], Config | None]:
    from notifier.config import DEFAULT_CONFIG_PATH, ConfigError, load_config

    source = str(path or DEFAULT_CONFIG_PATH)
    try:
        return [], load_config(path)
    except ConfigError as exc:
        text = str(exc)
        prefix = f"{source}: "
        text = text[len(prefix) :] if text.startswith(prefix) else text
        m = re.match(r"invalid TOML: line (\d+), column \d+: ", text)
        if m:
            return [Problem(source, int(m.group(1)), text)], None
        # Validation errors come joined by "; " (config.parse_config): one line each.
        return [Problem(source, None, part) for part in text.split("; ")], None


def _template_problems(
    directory: Path, config: Config | None
) -> Iterator[tuple[Problem | None, int]]:
    """Problems of the template set; yields (problem or None, renders done) as it goes."""
    from notifier.preview import load_sample
    from notifier.templates import TemplateError, TemplateSet

    def at(exc: TemplateError) -> Problem:
        file = str(directory / exc.file) if exc.file else str(directory)
        return Problem(file, exc.line, str(exc))

    if not directory.is_dir():
        yield Problem(str(directory), None, "template directory does not exist"), 0
        return
    try:
        templates = TemplateSet(directory)
    except TemplateError as exc:
        yield at(exc), 0  # loading stops at the first broken file
        return
    names = set(templates.names)
    if config is not None:
        for i, route in enumerate(config.routes):
            variant = _variant(config.channels.get(route.channel, {}))
            if variant is None:
                continue  # the channel renders nothing (a webhook)
            for event_type in route.event_types:
                base = config.template_for(route, event_type)
                name = f"{base}:{variant}" if variant else base
                if name not in names:
                    yield (
                        Problem(
                            config.source,
                            None,
                            f"routes[{i}]: template {name!r} (event type {event_type!r}) "
                            f"is not in {directory}",
                        ),
                        0,
                    )
    for name in templates.names:
        sample = directory / name.partition(":")[0] / "sample.json"
        if not sample.is_file():
            yield Problem(str(sample), None, "missing: every template needs sample data"), 0
            continue
        try:
            context = load_sample(sample)
        except ValueError as exc:  # JSONDecodeError included
            line = getattr(exc, "lineno", None)
            yield Problem(str(sample), line, f"invalid sample data: {exc}"), 0
            continue
        for locale in [None, *templates.locales(name)]:
            try:
                rendered = templates.render(name, context, locale=locale)
            except TemplateError as exc:
                yield at(exc), 1
                continue
            _, text_file, _ = templates.files(name, locale=locale)
            if text_file.endswith(".json"):
                try:
                    json.loads(rendered.text)
                except ValueError as exc:
                    yield (
                        Problem(str(directory / text_file), None, f"renders invalid JSON: {exc}"),
                        1,
                    )
                    continue
            yield None, 1


#: The template variant each built-in channel kind renders (None: renders nothing).
_KIND_VARIANTS: dict[str, str | None] = {"email": "", "sms": "sms", "push": "push", "webhook": None}


def _variant(options: Mapping[str, Any]) -> str | None:
    """The template variant a channel of these options renders ("" for email parts)."""
    kind = str(options.get("kind", ""))
    if kind == "memory":
        return str(options.get("template_variant", "")) if options.get("render", True) else None
    return _KIND_VARIANTS.get(kind, "")


def check(config: Path | None, templates: Path | None) -> tuple[list[Problem], int]:
    """All problems of a config and a template set, and the number of renders done."""
    from notifier.templates import builtin_templates

    problems, loaded = _config_problems(config)
    renders = 0
    for problem, done in _template_problems(templates or builtin_templates(), loaded):
        renders += done
        if problem is not None:
            problems.append(problem)
    return problems, renders


def run(args: argparse.Namespace) -> int:
    config: Path | None = args.config or (
        Path(os.environ["NOTIFIER_CONFIG"]) if os.environ.get("NOTIFIER_CONFIG") else None
    )
    templates: Path | None = args.templates or (
        Path(os.environ["NOTIFIER_TEMPLATES"]) if os.environ.get("NOTIFIER_TEMPLATES") else None
    )
    problems, renders = check(config, templates)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"ok: config valid, {renders} template renders clean")
    return 0
