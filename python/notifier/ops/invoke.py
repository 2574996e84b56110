"""``notifier invoke --event FILE``: the real handler, run locally on one event file.

As ``sam local invoke -e FILE``: builds the handler from the environment (``NOTIFIER_*``,
``AWS_*``; ``AWS_ENDPOINT_URL`` points it at an emulator), calls it once with an emulated
Lambda context (``--timeout``) and prints its response (``{"batchItemFailures": [...]}``) on
stdout; the batch's counters go to stderr. ``--embedded`` first starts an embedded moto and
provisions it (``notifier.local.provision``), for a self-contained run.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from notifier.ops._common import UsageError, guarded, quiet_moto

__all__ = ["add_arguments", "read_event", "run"]


def read_event(path: str) -> dict[str, Any]:
    """The event in ``path`` (``-``: stdin), checked to be a stream event."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--event {path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"--event {path}: not UTF-8 text") from exc
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--event {path}: not JSON: {exc}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise UsageError(f'--event {path}: not a stream event (no "Records" list)')
    return event


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--event", "-e", required=True, metavar="FILE", help="event JSON (- = stdin)")
    p.add_argument(
        "--embedded", action="store_true", help="start and provision an embedded moto first"
    )
    p.add_argument(
        "--timeout", type=float, default=60.0, help="the invocation's timeout (default 60 s)"
    )


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        from notifier.handler import build_handler
        from notifier.local.context import LambdaContext
        from notifier.pipeline import BatchFailedError
        from notifier.settings import Settings

        if args.timeout <= 0:
            raise UsageError("--timeout must be positive")
        event = read_event(args.event)
        with ExitStack() as stack:
            if args.embedded:
                from notifier.local.moto_server import MotoServer, local_aws_env
                from notifier.local.provision import provision

                quiet_moto()
                server = stack.enter_context(MotoServer())
                stack.enter_context(local_aws_env(server.endpoint_url))
                provision(server.endpoint_url)
                print(f"embedded AWS at {server.endpoint_url}", file=sys.stderr)
            handler = stack.enter_context(build_handler(Settings.from_env()))
            try:
                response = handler(event, LambdaContext(timeout_s=args.timeout))
            except BatchFailedError as exc:
                print(json.dumps({"errorType": "BatchFailedError", "errorMessage": str(exc)}))
                print(json.dumps({"stats": handler.stats}), file=sys.stderr)
                return 1
            print(json.dumps(response))
            print(json.dumps({"stats": handler.stats}), file=sys.stderr)
        return 0

    return guarded("invoke", body)
