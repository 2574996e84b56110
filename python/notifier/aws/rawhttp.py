"""A keep-alive HTTP/1.1 client on asyncio protocols and llhttp: the fast clients' transport.

AWS JSON APIs answer small bodies to one POST at a time per connection, so the client needs
only: a bounded pool of keep-alive connections to one endpoint (TLS for ``https``, optionally
through an HTTP proxy), one request written in one ``write``, and the response. Responses are
parsed by llhttp (Node.js's parser, through :mod:`httptools`): framing (``Content-Length``,
chunked, bodies ended by close), 1xx interim answers, 204/304 without a body, ``Connection:
close`` and malformed input are its job; nothing here parses HTTP by hand. What this module
adds is the exchange discipline around the parser (see ``docs/TRANSPORT.md``):

- **Not sent means not sent.** Every failure before the first byte of the request is written
  (building the head, a pooled connection found closed, connect, proxy tunnel, TLS) raises
  :class:`~notifier.aws.errors.RequestNotSentError`; only a failure after the write raises
  :class:`~notifier.aws.errors.OutcomeUnknownError`. A pooled connection is reused only if its
  peer has not closed it: ``connection_lost``/``eof_received`` seen, the transport closing, or
  the socket readable while idle (a FIN or bytes the loop has not processed yet) all retire it.
- **One exchange per response.** Bytes that arrive while no request is in flight, or after the
  response in the same read, retire the connection: they are never read as the next answer.
- **Bounded.** The response head is capped at :data:`MAX_HEAD_BYTES`, the body at
  ``max_response_bytes``; request header names and values carrying CR, LF or NUL are refused.

Same contract and failure typing as :class:`notifier.aws.transport.HttpTransport` (the aiohttp
transport, ``transport="aiohttp"``); ``tests/aws/test_conformance.py`` holds both to the same
verdicts against misbehaving servers.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import httptools
from multidict import CIMultiDict

from notifier.aws.errors import MalformedResponseError, ResponseTooLargeError
from notifier.aws.pooled import PooledTransport, check_header_block, peer_spoke

__all__ = ["MAX_HEAD_BYTES", "ProxyTunnelError", "RawHttpTransport"]

#: Cap on a response's status line and headers (llhttp itself has none).
MAX_HEAD_BYTES = 64 * 1024

Response = tuple[int, CIMultiDict[str], bytes]


class ProxyTunnelError(ConnectionError):
    """The proxy refused the CONNECT tunnel (non-2xx) or answered something unusable."""


class _UnsolicitedError(Exception):
    """A response started while no request was in flight (raised inside a parser callback)."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, responses parsed by llhttp."""

    def __init__(self, max_body: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.parser = httptools.HttpResponseParser(self)
        self.max_body = max_body
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.header_list: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.head_bytes = 0
        self.header_size = 0
        self.in_head = True
        self.interim = False
        self.until_close = False
        self.started = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # Nobody asked: never let these bytes be read as the next request's answer.
            self.close()
            return
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _UnsolicitedError):
                self.close()  # bytes after the answer: the answer stands, the connection goes
            elif isinstance(cause, ResponseTooLargeError):
                self._fail(cause)
            else:
                self._fail(MalformedResponseError(f"unusable response: {cause!r}"))
        except httptools.HttpParserUpgrade:
            self._fail(MalformedResponseError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            if waiter.done():  # junk after a complete answer
                self.close()
            else:
                self._fail(MalformedResponseError(f"malformed response: {exc}"))
            return
        if self.in_head and self.head_bytes > MAX_HEAD_BYTES:  # a head that never ends
            self._fail(ResponseTooLargeError(f"response head over {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        self.reusable = False
        return False  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.until_close and not self.in_head and exc is None:  # an orderly close ends it
            self.waiter = None
            waiter.set_result(self._response())
        elif self.started:
            waiter.set_exception(ConnectionResetError("connection closed inside the response"))
        else:
            waiter.set_exception(ConnectionResetError(f"connection closed: {exc!r}"))

    # llhttp callbacks
    def on_message_begin(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            raise _UnsolicitedError
        self.started = True

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_list.append((name, value))
        self.header_size += len(name) + len(value) + 4
        if self.header_size > MAX_HEAD_BYTES:
            raise ResponseTooLargeError(f"response head over {MAX_HEAD_BYTES} bytes")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.status = status
        if status < 200:  # 1xx interim answer: llhttp ends it here; wait for the real one
            self.interim = True
            return
        self.in_head = False
        framed = any(
            n.lower() in (b"content-length", b"transfer-encoding") for n, _ in self.header_list
        )
        self.until_close = not framed and status not in (204, 304)

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > self.max_body:
            raise ResponseTooLargeError(f"response body over {self.max_body} bytes")

    def on_message_complete(self) -> None:
        if self.interim:
            self._reset()
            self.started = True
            return
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if not self.parser.should_keep_alive() or self.until_close:
            self.reusable = False
        self.waiter = None
        waiter.set_result(self._response())

    # helpers
    def _response(self) -> Response:
        headers: CIMultiDict[str] = CIMultiDict(
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in self.header_list
        )
        return self.status, headers, bytes(self.body)

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def begin(self, waiter: asyncio.Future[Response]) -> None:
        """Arm the connection for one exchange."""
        self._reset()
        self.waiter = waiter

    def stale(self) -> bool:
        """Whether the peer closed (or wrote to) this idle connection."""
        transport = self.transport
        return (
            self.closed
            or not self.reusable
            or transport is None
            or transport.is_closing()
            or peer_spoke(self.fd)
        )

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


class _TunnelReply(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT (head only, parsed by llhttp)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.BaseTransport | None = None
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.head_bytes = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.done.done():  # bytes after the head: the tunnel is not clean
            self._settle(ProxyTunnelError("proxy sent data after its CONNECT answer"))
            return
        self.head_bytes += len(data)
        if self.head_bytes > MAX_HEAD_BYTES:
            self._settle(ProxyTunnelError("proxy answer head too large"))
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._settle(ProxyTunnelError(f"unusable proxy answer: {exc.__context__!r}"))
        except httptools.HttpParserError as exc:
            self._settle(ProxyTunnelError(f"malformed proxy answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(ProxyTunnelError(f"proxy closed the connection: {exc!r}"))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200 and not self.done.done():
            self.done.set_result(status)

    def on_body(self, body: bytes) -> None:
        raise ProxyTunnelError("proxy sent data after its CONNECT answer")

    def _settle(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        elif self.transport is not None:
            self.transport.close()


class RawHttpTransport(PooledTransport):
    """POST bodies to one endpoint over a bounded pool of keep-alive connections."""

    def _init_pool(self) -> None:
        endpoint_url = self.endpoint_url
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported endpoint URL {endpoint_url!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        default_port = self._port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host  # IPv6 literal
        self._authority = f"{host}:{self._port}"
        self._host_header = host if default_port else self._authority
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Connection] = []
        self._ssl: ssl.SSLContext | None = None
        #: Request-line prefixes by URL (path and query of each URL, parsed once).
        self._targets: dict[str, bytes] = {}
        self._proxy_headers = b""
        proxy = self.proxy_url
        if proxy is not None:
            p = urlsplit(proxy)
            if p.scheme != "http" or not p.hostname:
                raise ValueError(
                    f"unsupported proxy URL scheme {p.scheme!r}: only http:// proxies are supported"
                )
            self._proxy_addr: tuple[str, int] = (p.hostname, p.port or 80)
            if p.username is not None:
                creds = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                self._proxy_headers = (
                    b"Proxy-Authorization: Basic " + base64.b64encode(creds) + b"\r\n"
                )

    def _target(self, url: str) -> bytes:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            if self.proxy_url is not None and not self._tls:
                # Plain HTTP through a proxy: absolute-form target, credentials for the proxy.
                path = f"http://{self._host_header}{path}"
            target = f"POST {path} HTTP/1.1\r\n".encode("latin-1")
            if self.proxy_url is not None and not self._tls:
                target += self._proxy_headers
            self._targets[url] = target
        return target

    async def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.ca_bundle)
        return self._ssl

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        max_body = self.max_response_bytes
        if self.proxy_url is None:
            _, conn = await loop.create_connection(
                lambda: _Connection(max_body),
                self._host,
                self._port,
                ssl=self._ssl_context() if self._tls else None,
                server_hostname=self._host if self._tls else None,
            )
            return conn
        proxy_host, proxy_port = self._proxy_addr
        if not self._tls:
            _, conn = await loop.create_connection(
                lambda: _Connection(max_body), proxy_host, proxy_port
            )
            return conn
        raw, reply = await loop.create_connection(_TunnelReply, proxy_host, proxy_port)
        try:
            raw.write(
                f"CONNECT {self._authority} HTTP/1.1\r\nHost: {self._authority}\r\n".encode()
                + self._proxy_headers
                + b"\r\n"
            )
            status = await reply.done
            if not 200 <= status < 300:
                raise ProxyTunnelError(f"proxy refused the tunnel: HTTP {status}")
            conn = _Connection(max_body)
            tls = await loop.start_tls(raw, conn, self._ssl_context(), server_hostname=self._host)
        except BaseException:
            raw.close()
            raise
        if tls is None:
            raise ProxyTunnelError("TLS over the proxy tunnel could not start")
        conn.connection_made(tls)
        return conn

    async def _connect(self, operation: str) -> _Connection:
        try:
            return await asyncio.wait_for(self._open(), self._connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise self._not_sent(operation, repr(exc)) from exc

    def _pooled(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < self._keepalive_timeout and not conn.stale():
                return conn
            conn.close()
        return None

    def _head(self, url: str, headers: Mapping[str, str], body: bytes) -> bytes:
        block = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        check_header_block(block, len(headers))
        host = b"" if "Host" in headers else f"Host: {self._host_header}\r\n".encode("latin-1")
        return b"".join(
            (
                self._target(url),
                host,
                block.encode("latin-1"),
                f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1"),
                body,
            )
        )

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, operation: str
    ) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of the response; transport failures typed (see module)."""
        try:
            request = self._head(url, headers, body)
        except ValueError as exc:  # incl. UnicodeEncodeError: nothing was written
            raise self._not_sent(operation, repr(exc), connecting=False) from exc
        slots = self._slots
        if slots is None:
            slots = self._slots = asyncio.Semaphore(max(1, self._max_connections))
        async with slots:
            conn = self._pooled() or await self._connect(operation)
            transport = conn.transport
            if transport is None or conn.closed or transport.is_closing():
                conn.close()
                raise self._not_sent(operation, "connection closed before the request", False)
            waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
            conn.begin(waiter)
            done = False
            try:
                transport.write(request)  # the request has left from here on
                status, resp_headers, payload = await asyncio.wait_for(waiter, self._read_timeout)
                done = True
            except (OSError, TimeoutError, ValueError) as exc:
                raise self._outcome_unknown(operation, exc) from exc
            finally:
                conn.waiter = None
                if done and conn.reusable and not conn.closed:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.close()
        return status, resp_headers, payload
