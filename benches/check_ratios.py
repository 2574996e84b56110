"""Fail (exit 1) when a tracked ratio falls below its floor in ``benches/ratios.toml``.

    python benches/check_ratios.py .benchmarks/latest.json [benches/ratios.toml]

Ratios are ``baseline / notifier`` of each group's figure of merit (see report.py), so they
are comparable across machines and run sizes; absolute times are never checked. An entry whose
group or library is absent from the results fails too, unless it says ``optional = true``.
"""

from __future__ import annotations

import os
import sys
import tomllib

from report import load, ratios

DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ratios.toml")


def check(results: str, config: str = DEFAULT) -> list[str]:
    """Problems found (empty when every tracked ratio holds)."""
    with open(config, "rb") as f:
        tracked = tomllib.load(f).get("ratio", [])
    measured = ratios(load(results))
    problems: list[str] = []
    for entry in tracked:
        key = (entry["group"], entry["baseline"])
        floor = float(entry["min"])
        value = measured.get(key)
        label = f"{key[0]} {key[1]}/notifier"
        if value is None:
            if not entry.get("optional", False):
                problems.append(f"MISSING  {label}: not in the results (floor {floor:.2f})")
            else:
                print(f"skipped  {label}: not measured (optional)")
            continue
        status = "ok      " if value >= floor else "REGRESSED"
        print(f"{status} {label}: {value:.2f}x (floor {floor:.2f}x)")
        if value < floor:
            problems.append(f"REGRESSED {label}: {value:.2f}x < floor {floor:.2f}x")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: check_ratios.py <pytest-benchmark.json> [ratios.toml]", file=sys.stderr)
        return 2
    problems = check(*args)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
