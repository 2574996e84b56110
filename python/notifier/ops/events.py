"""``notifier generate-event``: DynamoDB stream events in the event contract, for ``invoke``.

Records come from ``notifier.samples.make_stream_record`` (deterministic per ``--seed``);
``--types`` picks event types in turn (a type the samples do not generate is written into the
record's images, e.g. to see it skipped); timestamps are now unless ``--original-times``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from notifier.ops._common import UsageError, guarded

__all__ = ["add_arguments", "generate", "run"]

_NAMES = ("INSERT", "MODIFY", "REMOVE", "mixed")


def generate(
    count: int,
    *,
    types: Sequence[str] | None = None,
    seed: int = 0,
    event_name: str = "INSERT",
    users: int = 100,
    start: int = 0,
    now: float | None = None,
) -> dict[str, Any]:
    """A stream event of ``count`` records; ``now=None`` keeps the samples' own times."""
    from notifier.samples import EVENT_TYPES, make_stream_record

    wanted = list(types or EVENT_TYPES)
    records: list[dict[str, Any]] = []
    i = start
    for j in range(count):
        t = wanted[j % len(wanted)]
        if t in EVENT_TYPES:
            while EVENT_TYPES[i % len(EVENT_TYPES)] != t:
                i += 1
        rec = make_stream_record(
            i, users=users, seed=seed, event_name=None if event_name == "mixed" else event_name
        )
        if t not in EVENT_TYPES:
            for image in ("NewImage", "OldImage"):
                if image in rec["dynamodb"]:
                    rec["dynamodb"][image]["event_type"] = {"S": t}
        if now is not None:
            rec["dynamodb"]["ApproximateCreationDateTime"] = int(now)
        records.append(rec)
        i += 1
    return {"Records": records}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, default=10, help="records (default 10)")
    p.add_argument(
        "--types",
        default="",
        help="comma-separated event types, in turn (default: profile_view, friend_request, "
        "application_update)",
    )
    p.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    p.add_argument(
        "--event-name",
        default="INSERT",
        choices=_NAMES,
        help="INSERT (default), MODIFY, REMOVE, or mixed (85/10/5)",
    )
    p.add_argument("--users", type=int, default=100, help="distinct recipients (default 100)")
    p.add_argument("--start", type=int, default=0, help="index of the first sample event")
    p.add_argument(
        "--original-times",
        action="store_true",
        help="keep the samples' ApproximateCreationDateTime (2026-01-01) instead of now",
    )
    p.add_argument("-o", "--output", help="output file (default: stdout)")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if not 1 <= args.count <= 10_000:
            raise UsageError("--count must be between 1 and 10000 (the ESM's largest batch)")
        if args.users < 1:
            raise UsageError("--users must be at least 1")
        if args.start < 0:
            raise UsageError("--start must not be negative")
        types = [t.strip() for t in args.types.split(",") if t.strip()] or None
        if args.types and not types:
            raise UsageError("--types: no event type given")
        event = generate(
            args.count,
            types=types,
            seed=args.seed,
            event_name=args.event_name,
            users=args.users,
            start=args.start,
            now=None if args.original_times else time.time(),
        )
        text = json.dumps(event, indent=1) + "\n"
        if args.output:
            try:
                Path(args.output).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UsageError(
                    f"--output {args.output}: cannot write: {exc.strerror or exc}"
                ) from exc
            print(f"wrote {args.count} records to {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
        return 0

    return guarded("generate-event", body)
