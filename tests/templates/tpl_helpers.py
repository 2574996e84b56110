"""Types shared by the template tests (the fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from notifier.templates import TemplateSet

Files = Mapping[str, str | bytes]
WriteTemplates = Callable[[Files], Path]
MakeSet = Callable[[Files], TemplateSet]
