"""Signed webhooks: one JSON POST per notification to a configured URL, per Standard Webhooks.

The body is not a template: it is the event, as a JSON envelope built from the stream record
(the Standard Webhooks payload shape)::

    {"type": "<event type>", "timestamp": "<ISO-8601 of the record's creation, UTC>",
     "data": <the new image; the old image for REMOVE>}

encoded by msgspec (DynamoDB numbers, ``Decimal``, as JSON numbers with their exact digits;
sets as arrays; binary as base64). Signed with :mod:`notifier.channels.signing`:
``webhook-id`` is the ledger key (:func:`~notifier.channels.signing.message_id`), the same on
every attempt and every redelivery of the record, so a receiver deduplicates on it; the
timestamp and signature are fresh per attempt. The secret is a reference
(:mod:`notifier.secrets`: ``env:``, ``ssm:``, ``secretsmanager:``) resolved once at build;
several references, or several space-separated ``whsec_`` secrets in one value, sign with
every key (rotation). The URL comes only from the config, never from the event.

Options (``[channels.<name>]``, kind ``webhook``):

- ``url`` (required): ``https://``; plain ``http://`` only to a loopback host (``localhost``,
  ``127.0.0.0/8``, ``::1``) for local receivers and tests. No user-info, no fragment.
- ``allowed_hosts`` (required): the URL's host must match one entry, exactly or as
  ``*.example.com`` (any subdomain, not the apex); checked at build, a mismatch is a
  ``ConfigError``. A second key to turn, so a pasted URL cannot send events anywhere.
- ``secret`` (required): a reference, or a list of them (the first is the current key).
- ``timeout_seconds`` (10): read timeout per attempt; the connect timeout is the smaller of
  this and 5 s; every attempt is also cut off at the invocation's deadline.
- ``max_send_rate`` (0 = unlimited): requests per second to this URL.
- ``headers``: extra static request headers; may not set ``webhook-*``, ``content-type``,
  ``content-length``, ``host``, ``connection`` or ``transfer-encoding``.
- ``receipt_header``: a response header holding the receiver's id for the delivery, recorded
  as the message id (else the ``webhook-id`` is).

Verdicts (the receiver's answer; the project's taxonomy, docs/EXACTLY-ONCE.md):

- 2xx: SENT.
- 408, 429, 5xx: TRANSIENT, retried with backoff. A ``Retry-After`` (seconds or an HTTP date)
  of at most :data:`MAX_RETRY_AFTER_WAIT` seconds that fits before the deadline is waited out
  before the retry; a longer one is not retried in this invocation (``retry_now=False``: the
  record comes back with the stream), never hammered.
- 401, 403: an **account fault** (TRANSIENT, ``account_fault=True``, not retried now, never
  dead-lettered): the receiver refuses our signature or credentials, i.e. our secret or its
  configuration is wrong, not this message. The channel pauses and one alarm per batch fires.
- 3xx: an **account fault** too: redirects are not followed (the spec: "update the webhook URL
  instead"); a moved endpoint is a configuration fault, not the message's, so nothing is
  dead-lettered while the URL is fixed. The reason names the ``Location`` host.
- any other 4xx (400, 404, 410, 413, 422, ...): PERMANENT, dead-lettered with the status.
- connection refused, DNS, TLS, connect timeout (``RequestNotSentError``): TRANSIENT.
- read timeout, reset after the request was written (``OutcomeUnknownError``): UNKNOWN (the
  ``unknown_outcome`` policy; under ``retry`` the same ``webhook-id`` goes again and the
  receiver deduplicates).

Nothing logs or returns the secret, the body, or the URL's path and query (which may carry a
token): reasons name the host only. HTTP goes through
:class:`~notifier.aws.rawhttp.RawHttpTransport` (llhttp), one keep-alive pool per channel.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec

from notifier.channels.base import ConcurrentChannel, Message, Outcome, SendResult
from notifier.channels.signing import InvalidSecretError, WebhookSigner, message_id
from notifier.retry import Deadline

__all__ = [
    "MAX_RETRY_AFTER_WAIT",
    "WebhookChannel",
    "WebhookOptions",
    "build_webhook_channel",
    "check_url",
    "encode_envelope",
    "host_allowed",
    "parse_retry_after",
]

#: The longest ``Retry-After`` waited out inside an invocation (seconds); longer: retry later.
MAX_RETRY_AFTER_WAIT = 5.0
#: Response bodies are not read for anything; a receiver answering more is cut off (UNKNOWN).
MAX_RESPONSE_BYTES = 1024 * 1024
USER_AGENT = "notifier-webhooks/1"
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "connection", "transfer-encoding", "user-agent"}
)
_ENCODER = msgspec.json.Encoder(decimal_format="number")
#: The deadline of the ``send`` in progress (read by ``send_one`` for ``Retry-After``).
_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "webhook_deadline", default=None
)


class WebhookOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[channels.<name>]`` options of kind ``webhook``."""

    url: str
    secret: str | list[str]
    allowed_hosts: list[str]
    kind: str = "webhook"
    timeout_seconds: float = 10.0
    max_send_rate: float = 0.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    receipt_header: str = ""


class PostTransport(Protocol):
    """:class:`~notifier.aws.rawhttp.RawHttpTransport`'s shape."""

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, operation: str
    ) -> tuple[int, Mapping[str, str], bytes]: ...

    async def close(self) -> None: ...


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_allowed(host: str, allowed: list[str]) -> bool:
    """``host`` matches an entry: exactly, or ``*.example.com`` for any subdomain of it."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        pattern = entry.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def check_url(url: str, allowed_hosts: list[str], where: str) -> str:
    """The URL's host after the checks the module names; ``ValueError`` (one line) otherwise."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{where}.url must be an https:// URL with a host")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValueError(
            f"{where}.url: plain http:// is allowed only to a loopback host; use https://"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{where}.url must not carry credentials; use headers")
    if parts.fragment:
        raise ValueError(f"{where}.url must not have a #fragment")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"{where}.url has an invalid port") from None
    if not allowed_hosts:
        raise ValueError(f"{where}.allowed_hosts is empty: list the URL's host")
    if not host_allowed(host, allowed_hosts):
        raise ValueError(f"{where}.url: host {host!r} is not in allowed_hosts")
    return host


def _origin(url: str) -> str:
    """``scheme://host[:port]``: the transport's endpoint (its errors show only this)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _iso8601(epoch: float | None) -> str:
    when = datetime.fromtimestamp(time.time() if epoch is None else epoch, UTC)
    return when.isoformat().replace("+00:00", "Z")


def encode_envelope(message: Message) -> bytes:
    """The JSON body for ``message``: ``{"type", "timestamp", "data"}`` from its record."""
    record = message.record
    data: Any = None
    created: float | None = None
    if record is not None:
        removed = getattr(record, "event_name", None) == "REMOVE"
        data = record.old_image if removed else record.new_image
        created = getattr(record, "approximate_creation_time", None)
    return _ENCODER.encode(
        {"type": message.event_type, "timestamp": _iso8601(created), "data": data}
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _account_fault(code: str, reason: str) -> SendResult:
    return SendResult(
        Outcome.TRANSIENT, code=code, reason=reason, retry_now=False, account_fault=True
    )


@dataclass
class WebhookChannel(ConcurrentChannel):
    """POSTs each notification's envelope, signed, to one URL."""

    url: str = ""
    signer: WebhookSigner | None = field(default=None, repr=False)
    transport: PostTransport | None = field(default=None, repr=False)
    static_headers: dict[str, str] = field(default_factory=dict)
    receipt_header: str = ""
    required_parts: frozenset[str] = frozenset()
    template_variant: str | None = None
    recipient_path: str | None = None
    host: str = field(default="", init=False)
    _headers: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.host = urlsplit(self.url).hostname or ""
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **self.static_headers,
        }

    def validate_recipient(self, recipient: object) -> str | None:
        """The configured URL; the event never chooses where a webhook goes."""
        if recipient is None or recipient == self.url:
            return self.url
        return None

    async def send(
        self, message: Message, deadline: Deadline, *, reserved: bool = False
    ) -> SendResult:
        token = _DEADLINE.set(deadline)
        try:
            return await super().send(message, deadline, reserved=reserved)
        finally:
            _DEADLINE.reset(token)

    def build_request(self, message: Message) -> tuple[dict[str, str], bytes]:
        """(headers, body) of one attempt: the envelope, signed now."""
        if self.signer is None:
            raise RuntimeError("WebhookChannel has no signer")
        body = encode_envelope(message)
        headers = {**self._headers, **self.signer.headers(message_id(message.key), body)}
        return headers, body

    async def send_one(self, message: Message) -> SendResult:
        from notifier.aws.errors import OutcomeUnknownError, RequestNotSentError

        if self.transport is None:
            raise RuntimeError("WebhookChannel has no transport")
        headers, body = self.build_request(message)
        try:
            status, answer, _ = await self.transport.post(self.url, headers, body, "webhook")
        except RequestNotSentError as exc:
            return SendResult(Outcome.TRANSIENT, code="RequestNotSent", reason=str(exc)[:300])
        except OutcomeUnknownError as exc:
            return SendResult(Outcome.UNKNOWN, code="OutcomeUnknown", reason=str(exc)[:300])
        result = self.classify(status, answer, headers["webhook-id"])
        if result.outcome is Outcome.TRANSIENT and not result.account_fault:
            await self._honour_retry_after(result, answer)
        return result

    def classify(self, status: int, answer: Mapping[str, str], webhook_id: str) -> SendResult:
        """The verdict on the receiver's HTTP status (see the module's table)."""
        code = f"HTTP{status}"
        where = f"HTTP {status} from {self.host}"
        if 200 <= status < 300:
            receipt = answer.get(self.receipt_header) if self.receipt_header else None
            return SendResult(Outcome.SENT, message_id=(receipt or webhook_id)[:200])
        if status in (408, 429) or 500 <= status < 600:
            return SendResult(Outcome.TRANSIENT, code=code, reason=where)
        if status in (401, 403):
            return _account_fault(
                code,
                f"{where}: the receiver refuses our signature or credentials; check "
                f"channels.{self.name}.secret and headers",
            )
        if 300 <= status < 400:
            target = urlsplit(answer.get("Location", "")).hostname or "an unnamed location"
            return _account_fault(
                code,
                f"{where}: redirect to {target} not followed; update channels.{self.name}.url",
            )
        if 400 <= status < 500:
            return SendResult(
                Outcome.PERMANENT, code=code, reason=f"{where}: the receiver refused the delivery"
            )
        return _account_fault(code, f"{where}: not an HTTP status a receiver should answer")

    async def _honour_retry_after(self, result: SendResult, answer: Mapping[str, str]) -> None:
        """Wait out a short ``Retry-After`` (the backoff follows); a long one: retry later."""
        delay = parse_retry_after(answer.get("Retry-After"))
        if delay is None:
            return
        result.reason = f"{result.reason}; Retry-After {delay:.0f} s"
        deadline = _DEADLINE.get()
        remaining = deadline.remaining() if deadline is not None else float("inf")
        if delay <= MAX_RETRY_AFTER_WAIT and delay < remaining - 0.1:
            await asyncio.sleep(delay)
        else:
            result.retry_now = False

    async def aclose(self) -> None:
        if self.transport is not None:
            await self.transport.close()


async def _signer(ctx: Any, options: WebhookOptions, where: str) -> WebhookSigner:
    """Every key the ``secret`` references resolve to (each value may hold several)."""
    from notifier.config import ConfigError
    from notifier.secrets import SecretResolver

    refs = [options.secret] if isinstance(options.secret, str) else list(options.secret)
    if not refs:
        raise ConfigError(f"{where}.secret: at least one secret reference is needed")
    resolver = SecretResolver.from_context(ctx)
    keys: list[str] = []
    for ref in refs:
        value = await resolver.resolve(ref, f"{where}.secret")
        for key in value.reveal().split():
            try:
                WebhookSigner([key])
            except InvalidSecretError as exc:
                # The message describes the format only, never the value.
                raise ConfigError(f"{where}.secret: {value.reference}: {exc}") from None
            keys.append(key)
    return WebhookSigner(keys)


def _check_headers(headers: Mapping[str, str], where: str) -> None:
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("webhook-") or lower in _RESERVED_HEADERS:
            raise ValueError(f"{where}.headers: {name!r} is set by the channel")
        if not name or any(c in name for c in " :\r\n\0") or any(c in value for c in "\r\n\0"):
            raise ValueError(f"{where}.headers: {name!r}: bad header name or value")


async def build_webhook_channel(ctx: Any) -> WebhookChannel:
    """Registry factory for kind ``webhook`` (``ctx`` is a ``ChannelContext``)."""
    from notifier.aws.rawhttp import RawHttpTransport
    from notifier.config import ConfigError
    from notifier.retry import TokenBucket

    where = f"channels.{ctx.name}"
    try:
        options = msgspec.convert(dict(ctx.options), type=WebhookOptions, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    try:
        check_url(options.url, options.allowed_hosts, where)
        _check_headers(options.headers, where)
        if not 0 < options.timeout_seconds <= 900:
            raise ValueError(f"{where}.timeout_seconds must be in (0, 900]")
        if options.max_send_rate < 0:
            raise ValueError(f"{where}.max_send_rate must not be negative")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    signer = await _signer(ctx, options, where)
    transport = RawHttpTransport(
        _origin(options.url),
        max_connections=max(1, ctx.concurrency),
        connect_timeout=min(5.0, options.timeout_seconds),
        read_timeout=options.timeout_seconds,
        max_response_bytes=MAX_RESPONSE_BYTES,
    )
    ctx.stack.push_async_callback(transport.close)
    return WebhookChannel(
        name=ctx.name,
        concurrency=ctx.concurrency,
        backoff=ctx.backoff,
        rate_limiter=TokenBucket(options.max_send_rate) if options.max_send_rate else None,
        unknown_outcome=ctx.unknown_outcome,
        url=options.url,
        signer=signer,
        transport=transport,
        static_headers=dict(options.headers),
        receipt_header=options.receipt_header,
    )
