"""Test handlers for the runtime tests (run inside awslambdaric or ``notifier.runtime``).

``lambda_handler`` follows notifier's handler contract on a stream batch given as a dict
(awslambdaric) or as raw bytes (custom runtime): it reports every record without a new image
(REMOVE) as a batch item failure, and raises on anything that is not a DynamoDB stream
event. When ``DEPLOY_TEST_TRACE`` names a file it appends what it saw there (event type,
context, trace id), one JSON line per invocation, so tests can check the runtime's wiring.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any


class NotAStreamEventError(ValueError):
    """The event is not a DynamoDB Streams batch."""


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    raw = isinstance(event, bytes | str)
    batch = json.loads(event) if raw else event
    records = batch.get("Records")
    if not isinstance(records, list) or any(
        r.get("eventSource") != "aws:dynamodb" for r in records
    ):
        raise NotAStreamEventError(f"not a DynamoDB stream batch: {sorted(batch)}")
    trace = os.environ.get("DEPLOY_TEST_TRACE")
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            seen = {
                "event_type": type(event).__name__,
                "request_id": context.aws_request_id,
                "function_arn": context.invoked_function_arn,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
                "records": len(records),
            }
            f.write(json.dumps(seen) + "\n")
    failures = [
        {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
        for r in records
        if "NewImage" not in r["dynamodb"]
    ]
    return {"batchItemFailures": failures}


def make_handler() -> Callable[[Any, Any], dict[str, Any]]:
    """The factory form ``notifier.runtime`` takes (``deploy_handlers:make_handler``)."""
    return lambda_handler


def make_nothing() -> None:
    """A factory that returns no handler (an init error for the custom runtime)."""
    return None
