"""The reconcile run: unknown sends parked by ``unknown_outcome = "reconcile"``, settled.

A send whose outcome is unknown (the request left, no answer came back) is not resent at once:
the pipeline marks its ledger entry UNKNOWN until ``reconcile_seconds`` from then and puts its
stream record on the reconcile queue (an SQS queue, each message delayed by that long). Two
things can happen meanwhile:

- SES's Send event for it arrives (``notifier.ses_events``, through the notification's
  ``notifier-key`` tag): the entry turns SENT with SES's message id. The send is proven.
- nothing arrives: the entry stays UNKNOWN.

When the message comes due, this Lambda (an SQS event source mapping on the reconcile queue)
runs the record through the same pipeline as the stream does (``Handler.handle(...,
reconcile_run=True)``): a SENT entry is a duplicate (nothing is sent, the message is deleted);
an UNKNOWN entry past its time is claimed and resent (nothing proved it left); one not yet due
is reported as a batch item failure, so SQS hands it back after its visibility timeout. A
message that is not a record notifier wrote is logged and dropped (it can never succeed).

Entry point: ``notifier.reconcile.lambda_handler`` (the same image, another command).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

__all__ = ["lambda_handler", "records_of", "run"]

log = logging.getLogger("notifier")

_handler: Any = None


def records_of(event: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """(stream records, sequence number -> SQS message ids) from an SQS event whose bodies
    are the pipeline's failure documents (``notifier.failures.Failure``)."""
    records: list[dict[str, Any]] = []
    by_sequence: dict[str, list[str]] = {}
    for msg in event.get("Records") or []:
        message_id = str(msg.get("messageId") or "")
        try:
            body = json.loads(msg.get("body") or "")
            record = json.loads(body["record"]) if isinstance(body.get("record"), str) else None
        except (ValueError, TypeError, KeyError, AttributeError):
            record = None
        if not isinstance(record, dict):
            log.error(json.dumps({"message": "reconcile: not a notifier record", "id": message_id}))
            continue
        seq = str((record.get("dynamodb") or {}).get("SequenceNumber") or "")
        if not seq:
            seq = str((record.get("kinesis") or {}).get("sequenceNumber") or message_id)
        if seq not in by_sequence:
            records.append(record)
        by_sequence.setdefault(seq, []).append(message_id)
    return records, by_sequence


def run(handler: Any, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """Run the queue's records through ``handler`` (a ``notifier.handler.Handler``); returns
    the SQS partial batch response."""
    from notifier.pipeline import BatchFailedError

    records, by_sequence = records_of(event)
    if not records:
        return {"batchItemFailures": []}
    try:
        response = handler.handle({"Records": records}, context, reconcile_run=True)
    except BatchFailedError:
        failed = list(by_sequence)
    else:
        failed = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
    return {
        "batchItemFailures": [
            {"itemIdentifier": mid} for seq in failed for mid in by_sequence.get(seq, [])
        ]
    }


def lambda_handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The reconcile queue's Lambda entry point (one handler per execution environment)."""
    global _handler
    if _handler is None:
        from notifier.handler import build_handler

        _handler = build_handler()
    return run(_handler, event, context)
