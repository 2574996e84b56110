"""What the SMS and push channels share: an SNS client, and the verdict on SNS errors.

:func:`sns_client` gives the channel's SNS client: one injected as ``ctx.clients["sns"]``; else,
per the deployment's ``aws_clients`` mode, the fast :class:`notifier.aws.SNSClient` (``"fast"``,
the default: botocore's request bytes and signature at about an eighth of aiobotocore's CPU per
publish, ``benches/test_send_sns.py``) closed with the handler's exit stack, or an aiobotocore
``sns`` client entered into it (``"aiobotocore"``). Both make one attempt per call: retries are
the channel's, under the deadline. Each has ``async publish(**kwargs)`` with botocore's
parameters and returns ``{"MessageId": ...}``; errors are botocore-shaped ``ClientError``
(``response["Error"]["Code"]``, the same class names), and the fast client's transport failures
are ``RequestNotSentError`` (transient) or ``OutcomeUnknownError`` (unknown).

:func:`classify_sns_exception` maps an exception from ``publish`` to a :class:`SendResult`
with the same taxonomy as email (docs/EXACTLY-ONCE.md, "Errors and their verdicts"):
throttling and 5xx are transient; credential, authorization and account faults are transient
account faults (never dead-lettered); the codes a channel names as the message's own fault
are permanent; any other 4xx is an account fault (never blamed on the message); a failure
before the request left is transient; after it left, unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from notifier.channels.base import Outcome, SendResult, client_error_code, scrub

__all__ = ["SNS_ACCOUNT_FAULTS", "SNS_THROTTLE", "classify_sns_exception", "sns_client"]

SNS_THROTTLE = frozenset({"Throttled", "Throttling", "ThrottlingException", "ThrottledException"})
#: Faults of the account, its credentials or its setup: never the message's.
SNS_ACCOUNT_FAULTS = frozenset(
    {
        "AuthorizationError",
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AccessDeniedException",
        "RequestTimeTooSkewed",
        "MissingAuthenticationToken",
        "IncompleteSignature",
        "InvalidSecurity",
        "RequestTimeout",
        "KMSDisabled",
        "KMSAccessDenied",
        "KMSInvalidState",
        "KMSNotFound",
        "KMSOptInRequired",
        "KMSThrottling",
        "PlatformApplicationDisabled",
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
    }
)
_NOT_SENT = frozenset(
    {
        "RequestNotSentError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ClientConnectorError",
        "ConnectionRefusedError",
    }
)


async def sns_client(ctx: Any) -> Any:
    """The SNS client for the channel built from ``ctx`` (a ``ChannelContext``)."""
    client = ctx.clients.get("sns")
    if client is not None:
        return client
    if ctx.aws_clients == "fast":
        from notifier.aws import SNSClient

        fast = SNSClient(
            region_name=ctx.client_kwargs.get("region_name"),
            endpoint_url=ctx.client_kwargs.get("endpoint_url"),
            max_connections=max(10, ctx.concurrency),
            connect_timeout=3,
            read_timeout=10,
        )
        ctx.stack.push_async_callback(fast.close)
        return fast
    from aiobotocore.config import AioConfig

    config = AioConfig(
        retries={"total_max_attempts": 1},
        max_pool_connections=max(10, ctx.concurrency),
        connect_timeout=3,
        read_timeout=10,
    )
    return await ctx.stack.enter_async_context(
        ctx.session.create_client("sns", config=config, **ctx.client_kwargs)
    )


def _account_fault(code: str, reason: str) -> SendResult:
    return SendResult(
        Outcome.TRANSIENT, code=code, reason=reason, retry_now=False, account_fault=True
    )


def classify_sns_exception(
    exc: BaseException,
    *,
    permanent: Iterable[str] = (),
    mask: Any = scrub,
) -> SendResult:
    """The verdict on an exception from ``publish``; ``permanent``: the codes that are this
    message's own fault (an invalid number, a disabled endpoint); ``mask`` scrubs the reason
    of personal data (phone numbers, addresses)."""
    code, status = client_error_code(exc)
    reason = mask(str(exc))[:300]
    if code is not None or status is not None:
        if code in SNS_ACCOUNT_FAULTS or status in (401, 403, 408):
            return _account_fault(code or f"HTTP{status}", reason)
        if code in SNS_THROTTLE or status == 429:
            return SendResult(Outcome.TRANSIENT, code=code or "HTTP429", reason=reason)
        if status is not None and status >= 500:
            return SendResult(Outcome.TRANSIENT, code=code or f"HTTP{status}", reason=reason)
        if code in set(permanent):
            return SendResult(Outcome.PERMANENT, code=code, reason=reason)
        return _account_fault(code or f"HTTP{status}", reason)
    name = type(exc).__name__
    mro = {t.__name__ for t in type(exc).__mro__}
    cause = exc.__cause__
    while cause is not None:
        mro |= {t.__name__ for t in type(cause).__mro__}
        cause = cause.__cause__
    if mro & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}:
        return _account_fault(name, reason)
    if mro & _NOT_SENT:
        return SendResult(Outcome.TRANSIENT, code=name, reason=reason)
    return SendResult(Outcome.UNKNOWN, code=name, reason=reason)
