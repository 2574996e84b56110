"""A handler module whose import fails, as a misconfigured deployment's would (init error)."""

from __future__ import annotations

from typing import Any

raise RuntimeError("NOTIFIER_CONFIG points at a file that does not exist: /var/task/missing.toml")


def lambda_handler(event: Any, context: Any) -> None:  # pragma: no cover - never reached
    """Never reached: importing this module fails."""


def build() -> None:  # pragma: no cover - never reached
    """Never reached: importing this module fails."""
