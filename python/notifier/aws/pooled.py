"""What both transports share: one endpoint, the pool settings, the environment, typed failures.

:class:`~notifier.aws.rawhttp.RawHttpTransport` and :class:`~notifier.aws.transport.HttpTransport`
POST bodies to one endpoint over a bounded keep-alive pool; any failure before the request is
written is a :class:`~notifier.aws.errors.RequestNotSentError`, any failure after it an
:class:`~notifier.aws.errors.OutcomeUnknownError`.

The environment botocore honours is resolved here, once, the way botocore resolves it:
the proxy from ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` (``botocore.utils``'s
``get_environ_proxies``, i.e. ``urllib.request``'s rules) and the CA bundle from
``AWS_CA_BUNDLE`` or the config file's ``ca_bundle`` (passed in by the client).
"""

from __future__ import annotations

import select
from urllib.parse import urlsplit

from notifier.aws.errors import OutcomeUnknownError, RequestNotSentError, UnsafeHeaderError

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "PooledTransport",
    "check_header_block",
    "environ_proxy",
    "peer_spoke",
    "redact_url",
]

#: Response body cap (DynamoDB's largest answers, BatchGetItem, stay under 16 MB of items).
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def environ_proxy(endpoint_url: str) -> str | None:
    """The proxy URL botocore would use for ``endpoint_url`` from the environment, else None."""
    from botocore.utils import get_environ_proxies

    scheme = urlsplit(endpoint_url).scheme
    proxy: str | None = get_environ_proxies(endpoint_url).get(scheme)
    if not proxy:
        return None
    # botocore's ProxyConfiguration._fix_proxy_url: a bare host:port means http://.
    if proxy.startswith(("http:", "https:")):
        return proxy
    if proxy.startswith("//"):
        return "http:" + proxy
    return "http://" + proxy


def peer_spoke(fd: int) -> bool:
    """Whether socket ``fd`` has an unread EOF or bytes: an idle keep-alive socket has neither.

    The event loop learns of a peer's close or stray bytes only when it next polls; a pooled
    connection is checked with this one ``poll(2)`` before it is reused.
    """
    if fd < 0:
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def redact_url(url: str) -> str:
    """``url`` without its user-info (proxy credentials are never logged or raised)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


def check_header_block(block: str, count: int) -> None:
    """Refuse a header block ``"name: value\\r\\n" * count`` whose names or values carry CR/LF/NUL.

    Each line contributes exactly one CR and one LF of its own, so any extra is smuggled in.
    """
    if block.count("\r") != count or block.count("\n") != count or "\0" in block:
        raise UnsafeHeaderError("a request header name or value contains CR, LF or NUL")


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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        ca_bundle: str | None = None,
        proxy_url: str | bool | None = True,
    ) -> None:
        """``proxy_url``: ``True`` (default) resolves it from the environment like botocore,
        ``None``/``False`` means no proxy, a string is used as given."""
        self.endpoint_url = endpoint_url
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._keepalive_timeout = keepalive_timeout
        self.max_response_bytes = max_response_bytes
        self.ca_bundle = ca_bundle
        if proxy_url is True:
            proxy_url = environ_proxy(endpoint_url)
        self.proxy_url: str | None = proxy_url or None
        self._init_pool()

    def _init_pool(self) -> None:
        """Subclass set-up after the settings above are stored (no connection is opened)."""

    def _not_sent(
        self, operation: str, detail: str, connecting: bool = True
    ) -> RequestNotSentError:
        """The error for a request not one byte of which was written (``raise ... from exc``)."""
        what = f"could not connect to {self.endpoint_url}" if connecting else "request not sent"
        via = f" via proxy {redact_url(self.proxy_url)}" if self.proxy_url and connecting else ""
        return RequestNotSentError(
            f"{what}{via}: {detail}",
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
