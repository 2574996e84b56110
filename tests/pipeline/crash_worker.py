"""Run one batch through a real handler and die (``os._exit``) at an injected point.

Usage: python crash_worker.py CONFIG EVENT_JSON QUEUE_URL POINT
POINT: ``after_claim`` (the first claim written, nothing sent) or ``after_send`` (the first send
answered, its commit not written).
The AWS environment (endpoint, credentials) is inherited from the parent test.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from pipeline_helpers import TEMPLATES

from notifier.handler import build_handler
from notifier.settings import Settings

CRASH_CODE = 17


class _Context:
    aws_request_id = "doomed"

    def __init__(self, remaining_ms: float) -> None:
        self._end = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self._end - time.monotonic()) * 1000)


def main() -> None:
    config, event_path, queue_url, point = sys.argv[1:5]
    handler = build_handler(
        Settings(
            config_path=config,
            templates_dir=str(TEMPLATES),
            failure_queue_url=queue_url,
            max_concurrency=8,
        )
    )
    pipeline = handler.pipeline
    if point == "after_claim":
        client = pipeline.ledger.client
        claim = client.put_item

        async def claim_then_die(**kwargs: Any) -> Any:
            await claim(**kwargs)
            os._exit(CRASH_CODE)

        client.put_item = claim_then_die
    elif point == "after_send":
        for channel in pipeline.channels.values():
            original = channel.send

            async def send_then_die(*args: Any, _orig: Any = original, **kwargs: Any) -> Any:
                await _orig(*args, **kwargs)
                os._exit(CRASH_CODE)

            channel.send = send_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown crash point {point!r}")
    handler(Path(event_path).read_bytes(), _Context(2_000))
    raise SystemExit("the injected crash did not happen")


if __name__ == "__main__":
    main()
