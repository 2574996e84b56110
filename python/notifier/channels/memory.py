"""An in-memory channel: proves the seam (a second channel, no core change) and serves tests.

It keeps every message it "delivers" in :attr:`MemoryChannel.outbox`. A script of outcomes
can be queued per recipient (``fail_next``) to exercise transient / permanent / unknown paths.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

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
    event_type: str = ""
    #: The record's event id when the channel renders nothing (``template_variant = None``).
    record_id: str | None = None


@dataclass
class MemoryChannel(ConcurrentChannel):
    required_parts: frozenset[str] = frozenset({"text"})
    fixed_recipient: str = ""
    outbox: list[Delivered] = field(default_factory=list)
    _script: dict[str, deque[SendResult]] = field(
        default_factory=lambda: defaultdict(deque), init=False, repr=False
    )

    def validate_recipient(self, recipient: object) -> str | None:
        if recipient is None and self.fixed_recipient:
            return self.fixed_recipient
        return super().validate_recipient(recipient)

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
                message.event_type,
                getattr(message.record, "event_id", None) if r is None else None,
            )
        )
        return message_id


class MemoryOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[channels.<name>]`` options of kind ``memory``: the routing attributes of the channel
    it stands in for (see :class:`notifier.channels.base.Channel`)."""

    kind: str = "memory"
    template_variant: str = ""
    #: ``false``: render nothing (``template_variant = None``), as a webhook does.
    render: bool = True
    recipient_path: str = "user.email"
    fan_out: bool = False
    required_parts: list[str] = msgspec.field(default_factory=lambda: ["text"])
    #: The recipient when ``recipient_path`` is empty (a webhook's URL).
    fixed_recipient: str = ""


def build(name: str, options: dict[str, Any], **shared: Any) -> MemoryChannel:
    """Registry factory for kind ``memory``."""
    from notifier.config import ConfigError

    try:
        opts = msgspec.convert(options, type=MemoryOptions, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"channels.{name}: {exc}") from exc
    return MemoryChannel(
        name=name,
        concurrency=shared.get("concurrency", 64),
        backoff=shared["backoff"],
        unknown_outcome=shared.get("unknown_outcome", "retry"),
        required_parts=frozenset(opts.required_parts),
        template_variant=opts.template_variant if opts.render else None,
        recipient_path=opts.recipient_path or None,
        fan_out=opts.fan_out,
        fixed_recipient=opts.fixed_recipient,
    )
