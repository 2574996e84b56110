"""The failure queue: records that will not be sent go to SQS with the full record, for redrive.

Each message body is JSON::

    {"reason": "...", "error_code": "MessageRejected", "channel": "email",
     "dedup_key": "evt-1", "ledger_key": "email#evt-1", "sequence_number": "...",
     "event_id": "...", "event_source_arn": "...", "record": "<the stream record's raw JSON>"}

with message attributes ``error_code`` and ``channel`` for filtering. ``error_code``
``RecordExpiring`` marks a record that was failing transiently when it neared the stream's
retention: nothing is wrong with it, redrive it once the cause is fixed.

Sizes are counted in bytes after encoding: SQS takes at most 262,144 bytes per message and per
``SendMessageBatch`` request. A body over :data:`MAX_BODY_BYTES` keeps as much of the record as
fits and says so (``"record_truncated": true``, ``"record_bytes"``: the full record's size);
the full record stays in the source table. Messages are packed into batches of at most 10
entries and :data:`MAX_REQUEST_BYTES`.

A message SQS refuses for its content (characters outside the XML set SQS allows, such as
U+FFFF or lone surrogates) is sent again in a safe form: the same JSON with every non-ASCII
character escaped, which SQS always accepts. Only if that is refused too is it reported
:attr:`Published.REFUSED`, so the caller can log it and move on instead of retrying forever.
Reasons never carry attribute values or full email addresses (the caller's duty).
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from notifier.retry import Backoff, Deadline

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_REQUEST_BYTES",
    "Failure",
    "FailureQueue",
    "FailureQueueError",
    "Published",
]

_MAX_BATCH = 10
#: SQS's limit is 262,144 bytes for a message (body and attributes) and for a batch request.
MAX_REQUEST_BYTES = 250_000
MAX_BODY_BYTES = 240_000
_CALL_TIMEOUT_S = 5.0


class FailureQueueError(RuntimeError):
    """The failure queue could not be resolved or written."""


class Published(enum.Enum):
    OK = "ok"
    #: SQS refused the message for what it is, in both forms: final, never retried.
    REFUSED = "refused"
    #: Not written (SQS unavailable, deadline): the caller must keep the record.
    ERROR = "error"


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

    def body(self, *, safe: bool = False, limit: int = MAX_BODY_BYTES) -> str:
        """The message body, at most ``limit`` bytes in UTF-8; ``safe``: ASCII only."""
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
        text = _dumps(doc, safe)
        size = len(text.encode("utf-8", "surrogatepass"))
        if size <= limit:
            return text
        doc["record_truncated"] = True
        doc["record_bytes"] = len(self.record.encode("utf-8", "surrogatepass"))
        # Shrink the record until the encoded body fits (escaping makes the ratio uneven).
        keep = len(self.record)
        while True:
            keep = max(0, keep - max(1, (size - limit) // 2 + 16))
            doc["record"] = self.record[:keep]
            text = _dumps(doc, safe)
            size = len(text.encode("utf-8", "surrogatepass"))
            if size <= limit or keep == 0:
                return text


def _dumps(doc: dict[str, Any], safe: bool) -> str:
    return json.dumps(doc, ensure_ascii=safe, separators=(",", ":"))


class FailureQueue:
    """Publishes :class:`Failure` messages to one SQS queue (URL, or name resolved lazily)."""

    def __init__(
        self,
        client: Any,
        *,
        queue_url: str | None = None,
        queue_name: str = "notifier-failures",
        backoff: Backoff | None = None,
        call_timeout_s: float = _CALL_TIMEOUT_S,
        delay_seconds: int = 0,
    ) -> None:
        self.client = client
        #: SQS ``DelaySeconds`` of every message (the reconcile queue's wait, up to 900).
        self.delay_seconds = max(0, min(900, int(delay_seconds)))
        self.queue_url = queue_url
        self.queue_name = queue_name
        self.backoff = backoff or Backoff(max_attempts=5, base_s=0.02, cap_s=1.0)
        self.call_timeout_s = call_timeout_s
        self.calls = 0

    async def _bounded(self, deadline: Deadline, call: Any) -> Any:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError("deadline")
        self.calls += 1
        async with asyncio.timeout(min(remaining, self.call_timeout_s)):
            return await call

    async def _url(self, deadline: Deadline) -> str:
        if self.queue_url is None:
            try:
                resp = await self._bounded(
                    deadline, self.client.get_queue_url(QueueName=self.queue_name)
                )
            except Exception as exc:
                raise FailureQueueError(
                    f"failure queue {self.queue_name!r} not found: {type(exc).__name__}"
                ) from exc
            self.queue_url = str(resp["QueueUrl"])
        return self.queue_url

    async def publish(self, failures: Sequence[Failure], deadline: Deadline) -> list[Published]:
        """Send every failure; one :class:`Published` per failure, in order."""
        if not failures:
            return []
        result = [Published.ERROR] * len(failures)
        try:
            url = await self._url(deadline)
        except FailureQueueError:
            return result
        bodies = [f.body() for f in failures]
        batches: list[list[int]] = []
        size = 0
        for i, body in enumerate(bodies):
            n = len(body.encode("utf-8", "surrogatepass")) + 200  # + attributes and framing
            if not batches or len(batches[-1]) >= _MAX_BATCH or size + n > MAX_REQUEST_BYTES:
                batches.append([])
                size = 0
            batches[-1].append(i)
            size += n
        await asyncio.gather(
            *(self._send(url, b, failures, bodies, result, deadline) for b in batches)
        )
        return result

    async def _send(
        self,
        url: str,
        idx: list[int],
        failures: Sequence[Failure],
        bodies: list[str],
        result: list[Published],
        deadline: Deadline,
    ) -> None:
        todo = list(idx)
        safe: set[int] = set()
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
                            "StringValue": failures[i].error_code[:256] or "-",
                        },
                        "channel": {
                            "DataType": "String",
                            "StringValue": (failures[i].channel or "-")[:256],
                        },
                    },
                    **({"DelaySeconds": self.delay_seconds} if self.delay_seconds else {}),
                }
                for i in todo
            ]
            try:
                resp = await self._bounded(
                    deadline, self.client.send_message_batch(QueueUrl=url, Entries=entries)
                )
            except Exception:
                if not await self.backoff.wait(attempt, deadline):
                    return
                continue
            for s in resp.get("Successful", []):
                result[int(s["Id"])] = Published.OK
            retry: list[int] = []
            for f in resp.get("Failed", []):
                i = int(f["Id"])
                if not f.get("SenderFault"):
                    retry.append(i)  # SQS's own fault: try again
                elif i not in safe:
                    safe.add(i)  # refused for its content: once more, escaped
                    bodies[i] = failures[i].body(safe=True)
                    retry.append(i)
                else:
                    result[i] = Published.REFUSED
            todo = retry
            if todo and not await self.backoff.wait(attempt, deadline):
                return
