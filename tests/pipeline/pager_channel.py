"""A third-party channel kind, loaded by config as ``kind = "pager_channel:build"``.

It lives outside ``notifier`` on purpose: adding it needed no change to the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from notifier.channels import ChannelContext
from notifier.channels.base import ConcurrentChannel, Message, Outcome, SendResult


@dataclass
class PagerChannel(ConcurrentChannel):
    """Pages a user id with the text part only (like SMS would)."""

    required_parts: frozenset[str] = frozenset({"text"})
    pages: list[tuple[str, str]] = field(default_factory=list)
    prefix: str = ""

    def validate_recipient(self, recipient: object) -> str | None:
        return recipient if isinstance(recipient, str) and recipient.isdigit() else None

    async def send_one(self, message: Message) -> SendResult:
        self.pages.append((message.recipient, self.prefix + message.rendered.text))
        return SendResult(Outcome.SENT, message_id=f"page-{len(self.pages)}")


async def build(ctx: ChannelContext) -> PagerChannel:
    return PagerChannel(
        name=ctx.name,
        concurrency=ctx.concurrency,
        backoff=ctx.backoff,
        unknown_outcome=ctx.unknown_outcome,
        prefix=str(ctx.options.get("prefix", "")),
    )
