"""Helpers shared by the pipeline tests (contexts, read-backs from moto)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3

LEDGER = "notifier-ledger"
QUEUE = "notifier-failures"
#: Test templates (``notifier.templates`` layout), including ``broken`` that fails to render.
TEMPLATES = Path(__file__).with_name("templates")


class FakeContext:
    """A Lambda context whose deadline is ``remaining_ms`` after creation."""

    def __init__(self, remaining_ms: float = 60_000, request_id: str = "req-1") -> None:
        self._deadline = time.monotonic() + remaining_ms / 1000.0
        self.aws_request_id = request_id
        self.function_name = "notifier"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def failure_messages(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        resp = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        msgs = resp.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def ledger_items() -> dict[str, dict[str, Any]]:
    ddb = boto3.client("dynamodb")
    items = ddb.scan(TableName=LEDGER, ConsistentRead=True)["Items"]
    return {i["pk"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in items}
