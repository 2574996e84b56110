"""The failure queue: permanent failures go to SQS with the full record, never retried forever.

Each message body is JSON::

    {"reason": "...", "error_code": "MessageRejected", "channel": "email",
     "dedup_key": "evt-1", "ledger_key": "email#evt-1", "sequence_number": "...",
     "event_id": "...", "event_source_arn": "...", "record": "<the stream record's raw JSON>"}

with message attributes ``error_code`` and ``channel`` for filtering. Messages go out with
``SendMessageBatch`` (10 per call, under the 256 KiB request limit). A record too large for one
message keeps its first 200,000 characters and sets ``"record_truncated": true`` (the full
record stays on the stream for 24 h and in the source table). Reasons never carry full
email addresses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notifier.retry import Backoff, Deadline

__all__ = ["Failure", "FailureQueue", "FailureQueueError"]

_MAX_BATCH = 10
_MAX_REQUEST_BYTES = 250_000
_MAX_RECORD_CHARS = 200_000


class FailureQueueError(RuntimeError):
    """The failure queue could not be resolved or written."""


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    error_code: str
    record: str  #: the stream record's raw JSON text
    channel: str | None = None
    dedup_key: str | None = None
    ledger_key: str | None = None
    sequence_number: str | None = None
    event_id: str | None = None
    event_source_arn: str | None = None

    def body(self) -> str:
        doc: dict[str, Any] = {
            "reason": self.reason,
            "error_code": self.error_code,
            "channel": self.channel,
            "dedup_key": self.dedup_key,
            "ledger_key": self.ledger_key,
            "sequence_number": self.sequence_number,
            "event_id": self.event_id,
            "event_source_arn": self.event_source_arn,
            "record": self.record,
        }
        if len(self.record) > _MAX_RECORD_CHARS:
            doc["record"] = self.record[:_MAX_RECORD_CHARS]
            doc["record_truncated"] = True
        return json.dumps(doc, ensure_ascii=False)


class FailureQueue:
    """Publishes :class:`Failure` messages to one SQS queue (URL, or name resolved lazily)."""

    def __init__(
        self,
        client: Any,
        *,
        queue_url: str | None = None,
        queue_name: str = "notifier-failures",
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.queue_name = queue_name
        self.backoff = backoff or Backoff(max_attempts=5, base_s=0.02, cap_s=1.0)
        self.calls = 0

    async def _url(self) -> str:
        if self.queue_url is None:
            try:
                resp = await self.client.get_queue_url(QueueName=self.queue_name)
            except Exception as exc:
                raise FailureQueueError(
                    f"failure queue {self.queue_name!r} not found: {exc}"
                ) from exc
            self.queue_url = str(resp["QueueUrl"])
        return self.queue_url

    async def publish(self, failures: Sequence[Failure], deadline: Deadline) -> list[bool]:
        """Send every failure; ``True`` where SQS confirmed the message."""
        if not failures:
            return []
        try:
            url = await self._url()
        except FailureQueueError:
            return [False] * len(failures)
        bodies = [f.body() for f in failures]
        batches: list[list[int]] = []
        size = 0
        for i, body in enumerate(bodies):
            n = len(body.encode())
            if not batches or len(batches[-1]) >= _MAX_BATCH or size + n > _MAX_REQUEST_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(i)
            size += n
        ok = [False] * len(failures)
        await asyncio.gather(*(self._send(url, b, failures, bodies, ok, deadline) for b in batches))
        return ok

    async def _send(
        self,
        url: str,
        idx: list[int],
        failures: Sequence[Failure],
        bodies: list[str],
        ok: list[bool],
        deadline: Deadline,
    ) -> None:
        todo = list(idx)
        attempt = 0
        while todo:
            attempt += 1
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": bodies[i],
                    "MessageAttributes": {
                        "error_code": {
                            "DataType": "String",
                            "StringValue": failures[i].error_code,
                        },
                        "channel": {
                            "DataType": "String",
                            "StringValue": failures[i].channel or "-",
                        },
                    },
                }
                for i in todo
            ]
            try:
                self.calls += 1
                resp = await self.client.send_message_batch(QueueUrl=url, Entries=entries)
            except Exception:
                if not await self.backoff.wait(attempt, deadline):
                    return
                continue
            for s in resp.get("Successful", []):
                ok[int(s["Id"])] = True
            failed = resp.get("Failed", [])
            todo = [int(f["Id"]) for f in failed if not f.get("SenderFault")]
            if todo and not await self.backoff.wait(attempt, deadline):
                return
