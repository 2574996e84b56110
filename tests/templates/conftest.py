"""Factories for template tests: template directories written from a dict of files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tpl_helpers import Files, MakeSet, WriteTemplates

from notifier.templates import TemplateSet, builtin_templates


@pytest.fixture
def write_templates(tmp_path: Path) -> WriteTemplates:
    """Factory: write ``{relative path: content}`` into a fresh directory, return it."""
    counter = 0

    def write(files: Files) -> Path:
        nonlocal counter
        counter += 1
        root = tmp_path / f"set{counter}"
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        root.mkdir(parents=True, exist_ok=True)
        return root

    return write


@pytest.fixture
def make_set(write_templates: WriteTemplates) -> MakeSet:
    """Factory: a TemplateSet loaded from ``{relative path: content}``."""

    def make(files: Files) -> TemplateSet:
        return TemplateSet(write_templates(files))

    return make


@pytest.fixture(scope="session")
def builtin_set() -> TemplateSet:
    return TemplateSet(builtin_templates())
