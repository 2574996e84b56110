"""Errors of the fast AWS send path.

Two transport failures matter to an exactly-once pipeline, and they must never be confused:

- :class:`RequestNotSentError`: the request provably never reached the service (DNS failure,
  connection refused, TLS handshake or connect timeout). Nothing was sent; retrying cannot
  duplicate anything.
- :class:`OutcomeUnknownError`: the request may have reached the service (the connection broke
  or timed out after the request was written, or the response could not be read). The service
  may or may not have acted on it; the caller's unknown-outcome policy decides.

Both subclass :class:`TransportError` (a :class:`ConnectionError`). Service errors (the service
answered with an error status) are raised as :class:`botocore.exceptions.ClientError`, exactly
as botocore raises them: ``e.response["Error"]["Code"]`` is the AWS error code, and the class is
named after the modeled error (``MessageRejected``, ``TooManyRequestsException``, ...).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

__all__ = [
    "SESV2_SEND_EMAIL_ERRORS",
    "AccountSuspendedException",
    "BadRequestException",
    "LimitExceededException",
    "MailFromDomainNotVerifiedException",
    "MalformedResponseError",
    "MessageRejected",
    "NotFoundException",
    "OutcomeUnknownError",
    "RequestNotSentError",
    "ResponseTooLargeError",
    "SendingPausedException",
    "TooManyRequestsException",
    "TransportError",
    "UnsafeHeaderError",
    "error_class",
]


class TransportError(ConnectionError):
    """The HTTP exchange failed without a response from the service."""

    def __init__(self, message: str, *, endpoint: str, operation: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.operation = operation


class RequestNotSentError(TransportError):
    """The request never left: not one byte of it was written. Safe to retry.

    Raised whatever stopped it before the write: no connection could be made (DNS, refused,
    connect timeout, proxy tunnel, TLS), a pooled connection was found closed, or the request
    could not be built (no credentials, a body that cannot be encoded, a header value carrying
    CR/LF). The original exception is ``__cause__``.
    """


class OutcomeUnknownError(TransportError):
    """The request may have been received and acted upon; no response was read."""


class MalformedResponseError(ValueError):
    """The server's answer is not HTTP/1.1 the parser accepts (the ``__cause__`` of an
    :class:`OutcomeUnknownError`: the request had been written)."""


class ResponseTooLargeError(MalformedResponseError):
    """The response head or body exceeded the transport's cap."""


class UnsafeHeaderError(ValueError):
    """A request header name or value carries CR, LF or NUL (it could split the request)."""


# The modeled errors of SESv2 SendEmail. Same names and base class as the classes botocore
# builds from the service model (``client.exceptions.<Name>``).
class TooManyRequestsException(ClientError):
    """HTTP 429: too many requests (sending rate exceeded). Transient."""


class LimitExceededException(ClientError):
    """HTTP 400: a limit was exceeded (e.g. daily sending quota)."""


class AccountSuspendedException(ClientError):
    """HTTP 400: the account's ability to send email is suspended."""


class SendingPausedException(ClientError):
    """HTTP 400: sending is paused for the account or configuration set."""


class MessageRejected(ClientError):
    """HTTP 400: the message was rejected (e.g. contains a virus, bad address)."""


class MailFromDomainNotVerifiedException(ClientError):
    """HTTP 400: the MAIL FROM domain is not verified."""


class NotFoundException(ClientError):
    """HTTP 404: a referenced resource (identity, configuration set) does not exist."""


class BadRequestException(ClientError):
    """HTTP 400: the input is invalid."""


SESV2_SEND_EMAIL_ERRORS: dict[str, type[ClientError]] = {
    cls.__name__: cls
    for cls in (
        TooManyRequestsException,
        LimitExceededException,
        AccountSuspendedException,
        SendingPausedException,
        MessageRejected,
        MailFromDomainNotVerifiedException,
        NotFoundException,
        BadRequestException,
    )
}


def error_class(code: str) -> type[ClientError]:
    """The exception class botocore raises for ``code`` (plain ClientError when unmodeled)."""
    return SESV2_SEND_EMAIL_ERRORS.get(code, ClientError)
