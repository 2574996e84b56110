"""What both transports share: one endpoint, the pool settings, and the typed failures.

:class:`~notifier.aws.rawhttp.RawHttpTransport` and :class:`~notifier.aws.transport.HttpTransport`
POST bodies to one endpoint over a bounded keep-alive pool; a failure to connect is a
:class:`~notifier.aws.errors.RequestNotSentError`, any failure after the request was written an
:class:`~notifier.aws.errors.OutcomeUnknownError`.
"""

from __future__ import annotations

from notifier.aws.errors import OutcomeUnknownError, RequestNotSentError

__all__ = ["PooledTransport"]


class PooledTransport:
    """POST bodies to one endpoint over a bounded keep-alive pool."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        max_connections: int = 64,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        keepalive_timeout: float = 15.0,
    ) -> None:
        self.endpoint_url = endpoint_url
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._keepalive_timeout = keepalive_timeout
        self._init_pool()

    def _init_pool(self) -> None:
        """Subclass set-up after the settings above are stored (no connection is opened)."""

    def _not_sent(self, operation: str, detail: str) -> RequestNotSentError:
        """The error for a connection that could not be made (``raise ... from exc``)."""
        return RequestNotSentError(
            f"could not connect to {self.endpoint_url}: {detail}",
            endpoint=self.endpoint_url,
            operation=operation,
        )

    def _outcome_unknown(self, operation: str, exc: BaseException) -> OutcomeUnknownError:
        """The error for a failure after the request was written (``raise ... from exc``)."""
        return OutcomeUnknownError(
            f"no response from {self.endpoint_url} after sending: {exc!r}",
            endpoint=self.endpoint_url,
            operation=operation,
        )
