"""One keep-alive aiohttp connection pool per client, with transport failures typed.

The alternative to :mod:`notifier.aws.rawhttp` (``transport="aiohttp"``), held to the same
verdicts by ``tests/aws/test_conformance.py``. The pool is created on first use inside the
running loop and bound to it (like aiobotocore clients). A request that cannot be built (a
header carrying CR/LF), a failure to connect, to tunnel through the proxy or to shake hands
raises :class:`~notifier.aws.errors.RequestNotSentError`; any failure after the connection was
made (reset, disconnect, read timeout, unreadable or oversize response) raises
:class:`~notifier.aws.errors.OutcomeUnknownError`: the request may have been received. aiohttp
drops a pooled connection whose close the loop has processed; one whose FIN is still unread
when it is reused shows up as ``OutcomeUnknownError`` (the raw transport also polls the socket
before reuse). Proxy (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``) and CA bundle as resolved by
:class:`~notifier.aws.pooled.PooledTransport`; aiohttp's own ``trust_env`` (which would also
read ``.netrc``) stays off.
"""

from __future__ import annotations

import base64
import functools
import ssl
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import aiohttp
from aiohttp.client_proto import ResponseHandler
from multidict import CIMultiDict
from yarl import URL

from notifier.aws.errors import ResponseTooLargeError
from notifier.aws.pooled import PooledTransport, check_header_block, peer_spoke

__all__ = ["HttpTransport"]


class _CountingHandler(ResponseHandler):
    """aiohttp's protocol, counting the bytes it receives (to spot bytes that came while idle)."""

    received = 0
    #: ``received`` when the connection went back to the pool.
    received_at_release = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        super().data_received(data)


def _stale(proto: ResponseHandler) -> bool:
    if isinstance(proto, _CountingHandler) and proto.received != proto.received_at_release:
        return True  # bytes arrived while idle: aiohttp would read them as the next answer
    transport = proto.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and peer_spoke(sock.fileno())


class _FreshConnector(aiohttp.TCPConnector):
    """A TCPConnector that never reuses a connection its peer wrote to or closed while idle.

    aiohttp (3.14) feeds bytes that arrive on an idle pooled connection to its parser and
    hands them to the next request as its response, and reuses a connection whose FIN the
    loop has not read yet. This checks each idle connection before ``_get`` may hand it out.
    (``_factory``, ``_release``, ``_get`` and ``_conns`` are aiohttp internals: the
    conformance tests fail if a new aiohttp changes them.)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(
            cast(type[ResponseHandler], _CountingHandler), loop=self._loop
        )

    def _release(self, key: Any, protocol: ResponseHandler, *, should_close: bool = False) -> None:
        if isinstance(protocol, _CountingHandler):
            protocol.received_at_release = protocol.received
        super()._release(key, protocol, should_close=should_close)

    async def _get(self, key: Any, traces: Any) -> Any:
        conns = self._conns.get(key)
        # aiohttp hands out the oldest idle connection first: check only the ones it would
        # take, one poll each, until a fresh one leads the queue.
        while conns and _stale(conns[0][0]):
            proto, _ = conns.popleft()
            proto.close()
        if conns is not None and not conns:
            del self._conns[key]
        return await super()._get(key, traces)


class HttpTransport(PooledTransport):
    """POST bodies to one endpoint over a bounded keep-alive aiohttp pool."""

    def _init_pool(self) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None,
            sock_connect=self._connect_timeout,
            sock_read=self._read_timeout,
        )
        self._http: aiohttp.ClientSession | None = None
        #: Parsed URLs by text: aiohttp parses a ``str`` URL on every request.
        self._urls: dict[str, URL] = {}
        self._proxy: URL | None = None
        self._proxy_headers: dict[str, str] | None = None
        if self.proxy_url is not None:
            p = urlsplit(self.proxy_url)
            if p.scheme != "http" or not p.hostname:
                raise ValueError(
                    f"unsupported proxy URL scheme {p.scheme!r}: only http:// proxies are supported"
                )
            host = f"[{p.hostname}]" if ":" in p.hostname else p.hostname
            self._proxy = URL(f"http://{host}:{p.port or 80}")
            if p.username is not None:
                creds = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                self._proxy_headers = {
                    "Proxy-Authorization": "Basic " + base64.b64encode(creds).decode("ascii")
                }

    def _open(self) -> aiohttp.ClientSession:
        connector = _FreshConnector(
            ssl=ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else True,
            limit=self._max_connections,
            keepalive_timeout=self._keepalive_timeout,
            ttl_dns_cache=300,
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            # No Accept-Encoding: AWS answers small JSON; identity saves a decompressor per call.
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            auto_decompress=False,
        )
        return self._http

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, operation: str
    ) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of the response; transport failures typed (see module)."""
        try:
            check_header_block("".join(f"{k}: {v}\r\n" for k, v in headers.items()), len(headers))
            parsed = self._urls.get(url)
            if parsed is None:
                parsed = self._urls[url] = URL(url, encoded=True)
        except ValueError as exc:
            raise self._not_sent(operation, repr(exc), connecting=False) from exc
        try:
            http = self._http or self._open()
        except (OSError, ValueError) as exc:  # e.g. an unreadable CA bundle
            raise self._not_sent(operation, repr(exc)) from exc
        try:
            async with http.post(
                parsed,
                data=body,
                headers=CIMultiDict(headers),
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
            ) as resp:
                return resp.status, resp.headers, await self._read(resp)
        except (
            aiohttp.ClientConnectorError,
            aiohttp.ConnectionTimeoutError,
            aiohttp.ClientHttpProxyError,
        ) as exc:
            raise self._not_sent(operation, repr(exc)) from exc
        except (TimeoutError, aiohttp.ClientError, ResponseTooLargeError) as exc:
            raise self._outcome_unknown(operation, exc) from exc

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        """The body, refused (and the connection dropped) past ``max_response_bytes``."""
        cap = self.max_response_bytes
        length = resp.content_length
        if length is not None and length <= cap:
            return await resp.read()
        if length is not None:
            resp.close()
            raise ResponseTooLargeError(f"response body over {cap} bytes")
        body = bytearray()
        while chunk := await resp.content.readany():
            body += chunk
            if len(body) > cap:
                resp.close()
                raise ResponseTooLargeError(f"response body over {cap} bytes")
        return bytes(body)
