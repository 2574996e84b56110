"""Shared pieces of the operator commands: user errors, durations, a Lambda context."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "UsageError",
    "guarded",
    "iso",
    "parse_duration",
    "quiet_moto",
]


class UsageError(ValueError):
    """A problem the operator can fix (a flag, a file, an environment variable): printed as
    one line naming it, exit status 2, no traceback."""


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """``"90"``/``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` -> seconds (an argparse type)."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h or 1d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def iso(epoch: Any) -> str | None:
    """Epoch seconds (number or numeric string) -> ISO 8601 UTC, ``None`` when absent."""
    if epoch is None or epoch == "":
        return None
    try:
        value = float(epoch)
    except (TypeError, ValueError):
        return str(epoch)
    return (
        datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def guarded(command: str, body: Callable[[], int]) -> int:
    """Run ``body``; a :class:`UsageError` (or a config/settings error) becomes one line on
    stderr and exit status 2."""
    from notifier._core import TemplateError
    from notifier.config import ConfigError
    from notifier.settings import SettingsError

    try:
        return body()
    except TemplateError as exc:  # the template set (NOTIFIER_TEMPLATES) cannot be loaded
        print(f"notifier {command}: NOTIFIER_TEMPLATES: {exc}", file=sys.stderr)
        return 2
    except (UsageError, ConfigError, SettingsError) as exc:
        print(f"notifier {command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            print(
                f"notifier {command}: AWS error {error.get('Code', '?')}: "
                f"{error.get('Message', '')}".rstrip(": "),
                file=sys.stderr,
            )
            return 1
        if isinstance(exc, BotoCoreError):  # credentials, endpoint, region: the environment
            print(f"notifier {command}: AWS: {exc} (check the AWS_* environment)", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print(f"notifier {command}: interrupted", file=sys.stderr)
        return 130


def quiet_moto() -> None:
    """Silence the embedded moto server's per-request log lines (werkzeug)."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
