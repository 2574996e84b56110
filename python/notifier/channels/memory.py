"""An in-memory channel: proves the seam (a second channel, no core change) and serves tests.

It keeps every message it "delivers" in :attr:`MemoryChannel.outbox`. A script of outcomes
can be queued per recipient (``fail_next``) to exercise transient / permanent / unknown paths.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from notifier.channels.base import ConcurrentChannel, Message, Outcome, SendResult

__all__ = ["Delivered", "MemoryChannel"]

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Delivered:
    key: str
    recipient: str
    sender: str
    subject: str
    text: str
    html: str | None
    message_id: str


@dataclass
class MemoryChannel(ConcurrentChannel):
    required_parts: frozenset[str] = frozenset({"text"})
    outbox: list[Delivered] = field(default_factory=list)
    _script: dict[str, deque[SendResult]] = field(
        default_factory=lambda: defaultdict(deque), init=False, repr=False
    )

    def fail_next(self, recipient: str, *results: SendResult) -> None:
        """Answer the next sends to ``recipient`` with ``results`` (in order) instead of sending.
        An UNKNOWN result still counts as delivered (the request "left")."""
        self._script[recipient].extend(results)

    async def send_one(self, message: Message) -> SendResult:
        script = self._script.get(message.recipient)
        if script:
            scripted = script.popleft()
            if scripted.outcome is Outcome.UNKNOWN:
                self._deliver(message)
            return SendResult(
                scripted.outcome,
                code=scripted.code,
                reason=scripted.reason,
                retry_now=scripted.retry_now,
            )
        return SendResult(Outcome.SENT, message_id=self._deliver(message))

    def _deliver(self, message: Message) -> str:
        r = message.rendered
        message_id = f"mem-{next(_ids):08d}"
        self.outbox.append(
            Delivered(
                message.key,
                message.recipient,
                message.sender,
                r.subject if r is not None else "",
                r.text if r is not None else "",
                r.html if r is not None else None,
                message_id,
            )
        )
        return message_id


def build(name: str, options: dict[str, Any], **shared: Any) -> MemoryChannel:
    """Registry factory for kind ``memory`` (no options besides ``kind``)."""
    extra = set(options) - {"kind"}
    if extra:
        from notifier.config import ConfigError

        raise ConfigError(f"channels.{name}: unknown option(s) {sorted(extra)} for kind memory")
    return MemoryChannel(
        name=name,
        concurrency=shared.get("concurrency", 64),
        backoff=shared["backoff"],
        unknown_outcome=shared.get("unknown_outcome", "retry"),
    )
