"""The channel seam: what the core needs from email, SMS, push or webhooks.

A channel is anything with the :class:`Channel` shape. The core hands it a batch of
:class:`Message` objects (recipient, sender, rendered parts) and a deadline, and gets back one
:class:`SendResult` per message, classified as sent / transient / permanent / unknown. The core
never looks at provider errors itself; each channel classifies its own.

:class:`ConcurrentChannel` does the common part (bounded concurrency, rate limit, retries
with backoff until the deadline) so a new channel only writes ``send_one`` and ``classify``.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from notifier.retry import Backoff, Deadline, TokenBucket

__all__ = [
    "Channel",
    "ConcurrentChannel",
    "Message",
    "Outcome",
    "Rendered",
    "SendResult",
    "mask_address",
    "scrub",
]


class Outcome(enum.Enum):
    SENT = "sent"
    #: Not delivered, safe to try again (throttling, 5xx, connection refused, deadline).
    TRANSIENT = "transient"
    #: Will never succeed for this message (rejected, invalid recipient): dead-letter it.
    PERMANENT = "permanent"
    #: The request may or may not have been acted on (timeout after it left, reset mid-request).
    UNKNOWN = "unknown"


class Rendered(Protocol):
    """The rendered parts of a notification (``notifier.templates.Rendered``)."""

    @property
    def subject(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def html(self) -> str | None: ...


@dataclass(slots=True)
class Message:
    """One notification to deliver."""

    key: str  #: the ledger key, "<channel>#<dedup key>"
    recipient: str
    sender: str
    #: The rendered template; ``None`` for a channel whose ``template_variant`` is ``None``.
    rendered: Rendered | None
    locale: str | None = None
    #: The event type the route matched (``friend_request``).
    event_type: str = ""
    #: The decoded ``notifier.ddb.StreamRecord`` (``.new_image``, ``.get("a.b")``,
    #: ``.approximate_creation_time``) for channels that send data rather than a rendering.
    record: Any = None
    #: Headers for this message (``List-Unsubscribe``, ``List-Unsubscribe-Post``): email only.
    headers: tuple[tuple[str, str], ...] = ()
    #: Provider tags naming the notification (SES ``EmailTags``: the ledger key, user and
    #: category, so SES's events find their ledger entry).
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class SendResult:
    outcome: Outcome
    message_id: str | None = None
    code: str | None = None  #: provider error code, e.g. "MessageRejected"
    reason: str | None = None
    #: Transient only: worth retrying inside this invocation (``False`` for long-lived
    #: conditions such as a daily quota or a paused account).
    retry_now: bool = True
    attempts: int = 1
    #: Transient only: a fault of the account or its credentials, not of this message
    #: (expired token, access denied, sending paused, daily quota, ...). The core stops sending
    #: on that channel for a while, never dead-letters, and raises one alarm per batch.
    account_fault: bool = False


@runtime_checkable
class Channel(Protocol):
    """What the core needs from a channel.

    Optional attributes, read with their defaults when a channel lacks them:

    - ``template_variant: str | None = ""``: which template files render for it. ``""``: the
      email parts (``subject.txt``, ``body.txt``, ``body.html``); ``"sms"``: ``NAME/sms.txt``
      into ``rendered.text``; ``"push"``: ``NAME/push.json`` (JSON-escaped values) into
      ``rendered.text``; any other ``"x"``: ``NAME/x.txt`` or ``NAME/x.json``; ``None``: nothing
      is rendered (``Message.rendered`` is ``None``; the channel sends ``Message.record``).
    - ``recipient_path: str | None = "user.email"``: the dotted path of the recipient when the
      route names none; ``None``: the recipient is not read from the event
      (``validate_recipient(None)`` gives the channel's own, e.g. a webhook URL).
    - ``fan_out: bool = False``: a list at the recipient path makes one notification per item
      (each its own ledger key ``<channel>#<dedup key>#<recipient>``), e.g. a user's devices.
    """

    #: The channel's name in the config (``[channels.<name>]``).
    name: str
    #: Template parts the channel cannot do without, e.g. ``{"subject", "text"}`` for email,
    #: ``{"text"}`` for SMS. A rendering lacking one is a permanent failure.
    required_parts: frozenset[str]

    def validate_recipient(self, recipient: object) -> str | None:
        """The recipient as the channel needs it, or ``None`` when it is unusable (permanent)."""
        ...

    async def reserve(self, deadline: Deadline) -> bool:
        """Wait until a first attempt may start (the channel's rate limit); ``False`` when it
        cannot before ``deadline``. The core claims the ledger key only after this, so no claim
        waits on a rate limit."""
        ...

    def unreserve(self) -> None:
        """Hand back a reservation that will not be used (the key was a duplicate)."""
        ...

    async def send(
        self, message: Message, deadline: Deadline, *, reserved: bool = False
    ) -> SendResult:
        """Deliver one message, with the channel's own retries, never past ``deadline``;
        ``reserved``: :meth:`reserve` was called for the first attempt. The core runs many of
        these at once (its own bounded concurrency)."""
        ...

    async def aclose(self) -> None: ...


def mask_address(address: object) -> str:
    """``user-1@example.com`` -> ``u***@example.com``; never log a full address."""
    if not isinstance(address, str):
        return f"<{type(address).__name__}>"
    local, sep, domain = address.partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


_ADDRESS = re.compile(r"[^\s@<>\"',;:()\[\]]+@[^\s@<>\"',;:()\[\]]+")


def scrub(text: str) -> str:
    """``text`` with every email address in it masked (``u***@example.com``)."""
    return _ADDRESS.sub(lambda m: mask_address(m.group(0)), text)


@dataclass
class ConcurrentChannel:
    """Base for channels that send one message per request: bounded concurrency, an
    optional rate limit, and retries with full-jitter backoff until the deadline.

    Subclasses implement :meth:`send_one` (one attempt, returns a classified result).
    ``unknown_outcome="retry"`` retries UNKNOWN results like transient ones (at-least-once);
    ``"assume_sent"`` returns them as they are, and the core records them as sent.
    """

    name: str
    concurrency: int = 64
    backoff: Backoff = field(default_factory=Backoff)
    rate_limiter: TokenBucket | None = None
    unknown_outcome: str = "retry"
    required_parts: frozenset[str] = frozenset({"subject", "text"})
    template_variant: str | None = ""
    recipient_path: str | None = "user.email"
    fan_out: bool = False

    def validate_recipient(self, recipient: object) -> str | None:
        if isinstance(recipient, str) and recipient.strip():
            return recipient
        return None

    async def send_one(self, message: Message) -> SendResult:  # pragma: no cover - abstract
        raise NotImplementedError

    async def reserve(self, deadline: Deadline) -> bool:
        if deadline.expired():
            return False
        return self.rate_limiter is None or await self.rate_limiter.acquire(deadline)

    def unreserve(self) -> None:
        if self.rate_limiter is not None:
            self.rate_limiter.give_back()

    async def send_batch(self, messages: Sequence[Message], deadline: Deadline) -> list[SendResult]:
        """Send every message (at most ``concurrency`` at once); one result per message."""
        sem = asyncio.Semaphore(self.concurrency)

        async def one(msg: Message) -> SendResult:
            async with sem:
                return await self.send(msg, deadline)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def send(self, msg: Message, deadline: Deadline, *, reserved: bool = False) -> SendResult:
        attempt = 0
        last: SendResult | None = None
        while True:
            if deadline.expired():
                break
            if reserved and attempt == 0:
                pass  # the first attempt's token was taken by reserve()
            elif self.rate_limiter is not None and not await self.rate_limiter.acquire(deadline):
                break
            attempt += 1
            try:
                # An attempt still running at the deadline is cut off: its outcome is unknown.
                async with asyncio.timeout(max(0.05, deadline.remaining())):
                    result = await self.send_one(msg)
            except TimeoutError:
                result = SendResult(
                    Outcome.UNKNOWN, code="DeadlineReached", reason="cut off at the deadline"
                )
            except Exception as exc:  # a channel bug must not take the batch down
                result = SendResult(Outcome.UNKNOWN, code=type(exc).__name__, reason=str(exc)[:200])
            result.attempts = attempt
            retryable = result.outcome is Outcome.TRANSIENT and result.retry_now
            retryable = retryable and not result.account_fault
            if result.outcome is Outcome.UNKNOWN and self.unknown_outcome == "retry":
                retryable = True
            if not retryable:
                return result
            last = result
            if not await self.backoff.wait(attempt, deadline):
                break
        if last is None:
            return SendResult(
                Outcome.TRANSIENT,
                code="DeadlineReached",
                attempts=attempt,
                reason="not attempted before the invocation deadline",
            )
        # Retries ran out: the last transient (or, under "retry", unknown) result stands.
        return last

    async def aclose(self) -> None:
        return None


def client_error_code(exc: BaseException) -> tuple[str | None, int | None]:
    """(error code, HTTP status) of a botocore ``ClientError``-shaped exception."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None, None
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return (str(code) if code is not None else None), (int(status) if status else None)
