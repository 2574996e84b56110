"""Email through Amazon SES v2 ``SendEmail`` (Simple content: subject, text, html).

The SES client is injected or built per the deployment's ``aws_clients`` mode: the fast
``notifier.aws.SESv2Client`` (default) or an aiobotocore ``sesv2`` client; or any object with
the same ``async send_email(**kwargs) -> {"MessageId": ...}`` that raises botocore
``ClientError`` with SES's error codes. The channel builds the request and classifies the
outcome; retries, rate limit and concurrency come from
:class:`~notifier.channels.base.ConcurrentChannel`.

Classification (SESv2 SendEmail errors, plus transport failures; the full table with every
code is in docs/EXACTLY-ONCE.md, "Errors and their verdicts"):

- TRANSIENT, retried now with backoff: ``TooManyRequestsException`` (429), v1 ``Throttling``,
  any HTTP 5xx, connection refused / connect timeout (the request never left).
- TRANSIENT, an **account fault** (not retried in this invocation, never dead-lettered, one
  alarm per batch, the channel paused with backoff): HTTP 401/403 (``ExpiredTokenException``,
  ``UnrecognizedClientException``, ``InvalidClientTokenId``, ``InvalidSignatureException``,
  ``SignatureDoesNotMatch``, ``AccessDeniedException``, ``RequestTimeTooSkewed``,
  ``MissingAuthenticationToken``), 408 ``RequestTimeout``, ``LimitExceededException`` (daily
  quota), ``AccountSuspendedException``, ``SendingPausedException``,
  ``MailFromDomainNotVerifiedException``, ``NotFoundException`` (configuration set or identity),
  ``MessageRejected`` that names an unverified identity (sandbox or sender), any 4xx code not
  listed here (unknown: never blamed on the message), and missing credentials.
- PERMANENT for this message: ``MessageRejected`` (content), ``BadRequestException`` and v1
  ``InvalidParameterValue`` (invalid address or content).
- UNKNOWN: read timeout, connection closed or reset after the request was sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from notifier.channels.base import (
    ConcurrentChannel,
    Message,
    Outcome,
    SendResult,
    client_error_code,
    scrub,
)

__all__ = [
    "ACCOUNT_FAULTS",
    "EmailChannel",
    "EmailOptions",
    "SendEmailClient",
    "classify_exception",
]

_THROTTLE = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})
#: Faults of the account or of the request's credentials: never the message's fault.
ACCOUNT_FAULTS = frozenset(
    {
        "ExpiredTokenException",
        "ExpiredToken",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AccessDeniedException",
        "AccessDenied",
        "RequestTimeTooSkewed",
        "MissingAuthenticationToken",
        "IncompleteSignature",
        "RequestTimeout",
        "RequestTimeoutException",
        "LimitExceededException",
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "ConfigurationSetDoesNotExist",
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
    }
)
_PERMANENT = frozenset({"MessageRejected", "BadRequestException", "InvalidParameterValue"})
#: botocore / aiohttp / notifier.aws exceptions raised before the request reached the server
#: (matched by class name along the MRO so no transport library is imported here).
_NOT_SENT = frozenset(
    {
        "RequestNotSentError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ClientConnectorError",
        "ConnectionRefusedError",
    }
)
_UNVERIFIED = re.compile(r"not verified|identities failed the check", re.IGNORECASE)
#: Characters that never belong in an address we send to (header injection, lists, spaces).
_UNSAFE = re.compile(r"[\s<>,;]")


class SendEmailClient(Protocol):
    async def send_email(self, **kwargs: Any) -> Mapping[str, Any]: ...


class EmailOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[channels.<name>]`` options of kind ``email``."""

    kind: str = "email"
    sender: str = ""
    configuration_set: str = ""
    list_unsubscribe: str = ""
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    #: Sends per second; 0 = read MaxSendRate from the account at init.
    max_send_rate: float = 0.0
    #: Used when the account's rate cannot be read.
    fallback_send_rate: float = 14.0


def _account_fault(code: str, reason: str) -> SendResult:
    return SendResult(
        Outcome.TRANSIENT, code=code, reason=reason, retry_now=False, account_fault=True
    )


def classify_exception(exc: BaseException) -> SendResult:
    """Map an exception from ``send_email`` to a classified result (no address in its reason)."""
    code, status = client_error_code(exc)
    reason = scrub(str(exc))[:300]
    if code is not None or status is not None:
        if code in ACCOUNT_FAULTS or status in (401, 403, 408):
            return _account_fault(code or f"HTTP{status}", reason)
        if code in _THROTTLE or status == 429:
            return SendResult(Outcome.TRANSIENT, code=code or "HTTP429", reason=reason)
        if status is not None and status >= 500:
            return SendResult(Outcome.TRANSIENT, code=code or f"HTTP{status}", reason=reason)
        if code == "MessageRejected" and _UNVERIFIED.search(str(exc)):
            # SES names an unverified identity (sandbox recipient or sender): the account's setup.
            return _account_fault(code, reason)
        if code in _PERMANENT:
            return SendResult(Outcome.PERMANENT, code=code, reason=reason)
        # Any other 4xx (or an unknown code): not known to be this message's fault.
        return _account_fault(code or f"HTTP{status}", reason)
    name = type(exc).__name__
    mro = {t.__name__ for t in type(exc).__mro__}
    cause = exc.__cause__
    while cause is not None:  # e.g. RequestNotSentError from NoCredentialsError
        mro |= {t.__name__ for t in type(cause).__mro__}
        cause = cause.__cause__
    if mro & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}:
        return _account_fault(name, reason)
    if mro & _NOT_SENT:
        return SendResult(Outcome.TRANSIENT, code=name, reason=reason)
    return SendResult(Outcome.UNKNOWN, code=name, reason=reason)


@dataclass
class EmailChannel(ConcurrentChannel):
    client: SendEmailClient | None = None
    options: EmailOptions = field(default_factory=EmailOptions)
    default_sender: str = "notifications@example.com"
    required_parts: frozenset[str] = frozenset({"subject", "text"})
    _static: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        static: dict[str, Any] = {}
        if self.options.configuration_set:
            static["ConfigurationSetName"] = self.options.configuration_set
        if self.options.tags:
            static["EmailTags"] = [{"Name": k, "Value": v} for k, v in self.options.tags.items()]
        self._static = static

    def validate_recipient(self, recipient: object) -> str | None:
        if not isinstance(recipient, str):
            return None
        local, at, domain = recipient.partition("@")
        if not at or not local or "." not in domain or _UNSAFE.search(recipient):
            return None
        return recipient

    def build_request(self, message: Message) -> dict[str, Any]:
        """The ``send_email`` keyword arguments for ``message``."""
        r = message.rendered
        if r is None:
            raise ValueError("an email needs a rendered template")
        body: dict[str, Any] = {"Text": {"Data": r.text, "Charset": "UTF-8"}}
        if r.html:
            body["Html"] = {"Data": r.html, "Charset": "UTF-8"}
        simple: dict[str, Any] = {
            "Subject": {"Data": r.subject, "Charset": "UTF-8"},
            "Body": body,
        }
        if message.headers:
            # Per-recipient one-click unsubscribe (RFC 8058), from the pipeline.
            simple["Headers"] = [{"Name": n, "Value": v} for n, v in message.headers]
        elif self.options.list_unsubscribe:
            simple["Headers"] = [
                {"Name": "List-Unsubscribe", "Value": self.options.list_unsubscribe},
            ]
        request = {
            "FromEmailAddress": message.sender or self.options.sender or self.default_sender,
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Simple": simple},
            **self._static,
        }
        if message.tags:
            tags = [*self._static.get("EmailTags", ()), *_tags(message.tags)]
            request["EmailTags"] = tags
        return request

    async def send_one(self, message: Message) -> SendResult:
        if self.client is None:
            raise RuntimeError("EmailChannel has no SES client")
        request = self.build_request(message)
        try:
            response = await self.client.send_email(**request)
        except Exception as exc:
            return classify_exception(exc)
        return SendResult(Outcome.SENT, message_id=str(response.get("MessageId", "")))


def _tags(tags: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"Name": n, "Value": v} for n, v in tags]


async def read_max_send_rate(client: Any) -> float | None:
    """The account's SES MaxSendRate (v1 ``GetSendQuota``), or ``None`` if it cannot be read."""
    try:
        quota = await client.get_send_quota()
        rate = float(quota["MaxSendRate"])
    except Exception:  # any failure: fall back to the configured rate
        return None
    return rate if rate > 0 else None


async def build_email_channel(ctx: Any) -> EmailChannel:
    """Registry factory for kind ``email`` (``ctx`` is a ``ChannelContext``)."""
    from notifier.config import ConfigError
    from notifier.retry import TokenBucket

    try:
        options = msgspec.convert(dict(ctx.options), type=EmailOptions, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"channels.{ctx.name}: {exc}") from exc
    if options.max_send_rate < 0 or options.fallback_send_rate <= 0:
        raise ConfigError(f"channels.{ctx.name}: send rates must be positive")
    if not options.configuration_set and ctx.configuration_set:
        options = msgspec.structs.replace(options, configuration_set=ctx.configuration_set)
    client = ctx.clients.get("sesv2")
    if client is None and ctx.aws_clients == "fast":
        from notifier.aws import SESv2Client

        # One attempt per call, as below: retries are the channel's.
        fast = SESv2Client(
            region_name=ctx.client_kwargs.get("region_name"),
            endpoint_url=ctx.client_kwargs.get("endpoint_url"),
            max_connections=max(10, ctx.concurrency),
            connect_timeout=3,
            read_timeout=10,
        )
        ctx.stack.push_async_callback(fast.close)
        client = fast
    if client is None:
        from aiobotocore.config import AioConfig

        # Retries are ours (they must see the deadline, and an unknown outcome must not be
        # silently re-sent by the SDK), so botocore makes exactly one attempt.
        config = AioConfig(
            retries={"total_max_attempts": 1},
            max_pool_connections=max(10, ctx.concurrency),
            connect_timeout=3,
            read_timeout=10,
        )
        client = await ctx.stack.enter_async_context(
            ctx.session.create_client("sesv2", config=config, **ctx.client_kwargs)
        )
    rate = ctx.max_send_rate or options.max_send_rate
    if not rate:
        v1 = ctx.clients.get("ses")
        if v1 is not None:
            rate = await read_max_send_rate(v1) or 0.0
        else:
            async with ctx.session.create_client("ses", **ctx.client_kwargs) as v1:
                rate = await read_max_send_rate(v1) or 0.0
        rate = rate or options.fallback_send_rate
    return EmailChannel(
        name=ctx.name,
        concurrency=ctx.concurrency,
        backoff=ctx.backoff,
        rate_limiter=TokenBucket(rate),
        unknown_outcome=ctx.unknown_outcome,
        client=client,
        options=options,
        default_sender=options.sender or ctx.sender,
    )
