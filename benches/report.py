"""Print the benchmark results as ratios: each baseline vs notifier, per group.

    python benches/report.py .benchmarks/latest.json

A group's figure of merit is ``extra_info["metric"]`` (the name of a lower-is-better number in
``extra_info``, e.g. ``cpu_per_send_us``) or, when a benchmark sets none, its mean time. The
ratio printed for each other library is ``baseline / notifier`` of that figure, so a ratio
above 1 means notifier is that many times better (less CPU, less time, less memory). Every
other numeric ``extra_info`` entry is printed too (e.g. ``notifications_per_cpu_s``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Row", "load", "main", "ratios"]

OURS = "notifier"
_SKIP = {"lib", "metric", "scaled"}


@dataclass
class Row:
    group: str
    lib: str
    mean_s: float
    metric: str
    value: float
    extra: dict[str, Any] = field(default_factory=dict)


def load(path: str) -> dict[str, list[Row]]:
    """Rows by group from a pytest-benchmark JSON file."""
    with open(path) as f:
        data = json.load(f)
    groups: dict[str, list[Row]] = {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        lib = info.get("lib") or b.get("param") or b["name"]
        metric = info.get("metric") or "mean_s"
        mean = float(b["stats"]["mean"])
        value = float(info[metric]) if metric in info else mean
        group = b.get("group") or b["name"]
        groups.setdefault(group, []).append(Row(group, lib, mean, metric, value, info))
    return groups


def ratios(groups: dict[str, list[Row]]) -> dict[tuple[str, str], float]:
    """(group, baseline lib) -> baseline / notifier of the group's figure of merit."""
    out: dict[tuple[str, str], float] = {}
    for group, rows in groups.items():
        ours = next((r for r in rows if r.lib == OURS), None)
        if ours is None or ours.value <= 0:
            continue
        for r in rows:
            if r.lib != OURS:
                out[group, r.lib] = r.value / ours.value
    return out


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.3f}" if abs(x) < 100 else f"{x:,.1f}"
    return str(x)


def render(groups: dict[str, list[Row]]) -> str:
    lines: list[str] = []
    rs = ratios(groups)
    for group in sorted(groups):
        rows = sorted(groups[group], key=lambda r: (r.lib != OURS, r.lib))
        metric = rows[0].metric
        lines.append(f"\n## {group}  (figure: {metric}, lower is better)")
        extras = sorted(
            {
                k
                for r in rows
                for k, v in r.extra.items()
                if k not in _SKIP and k != metric and isinstance(v, int | float)
            }
        )
        header = ["lib", "mean_s", metric, "baseline/notifier", *extras]
        table = [header]
        for r in rows:
            ratio = (
                "-" if r.lib == OURS else _fmt(rs[group, r.lib]) if (group, r.lib) in rs else "n/a"
            )
            table.append(
                [
                    r.lib,
                    _fmt(r.mean_s),
                    _fmt(r.value),
                    ratio,
                    *(_fmt(r.extra.get(k, "")) for k in extras),
                ]
            )
        widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
        for i, row in enumerate(table):
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
    if rs:
        lines.append("\n## ratios (baseline / notifier; > 1 means notifier is better)")
        for (group, lib), value in sorted(rs.items()):
            lines.append(f"{group:<28} {lib:<28} {value:8.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: report.py <pytest-benchmark.json>", file=sys.stderr)
        return 2
    print(render(load(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
