"""Personal-data masking for log lines: no full e-mail address ever reaches a log.

The per-batch summary holds only counters today; :func:`redact` keeps it that way should a
string ever slip in (an error code that quotes an address, a dependency name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["mask_email", "redact"]

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+([A-Za-z]{2,})")


def mask_email(text: str) -> str:
    """``alice@example.com`` -> ``a***@***.com``: the first letter and the top-level domain
    survive (enough to tell addresses apart in an incident), the rest does not."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@***.{m.group(3)}", text)


def redact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a flat log record with every string value (and key) masked."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, str) and "@" in value:
            value = mask_email(value)
        out[mask_email(key) if "@" in key else key] = value
    return out
