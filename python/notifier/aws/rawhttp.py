"""A minimal HTTP/1.1 keep-alive client on asyncio protocols: the fast clients' default transport.

AWS JSON APIs answer small bodies to one POST at a time per connection, so the client needs
only: a bounded pool of keep-alive connections to one endpoint (TLS for ``https``), one request
written in one ``write``, and a response read by ``Content-Length`` (or chunked, or until
close). That costs about a third of the CPU of an ``aiohttp.ClientSession`` request (no
per-request URL parsing, header merging, tracing hooks, payload wrappers or response objects),
and the send path is dominated by per-request CPU.

Same contract and failure typing as :class:`notifier.aws.transport.HttpTransport` (the aiohttp
transport, still available with ``transport="aiohttp"``): a failure to connect raises
:class:`~notifier.aws.errors.RequestNotSentError`; any failure after the request was written
(reset, close, read timeout, malformed response) raises
:class:`~notifier.aws.errors.OutcomeUnknownError`.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from multidict import CIMultiDict

from notifier.aws.pooled import PooledTransport

__all__ = ["RawHttpTransport"]

_MAX_HEAD = 64 * 1024


class _MalformedResponseError(ValueError):
    """The server's answer is not HTTP/1.1 we understand."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, CIMultiDict[str], bytes]] | None = None
        self.closed = False
        self.reusable = True
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = self._parse(eof=False)
        except _MalformedResponseError as exc:
            self.waiter = None
            self.reusable = False
            waiter.set_exception(exc)
            return
        if parsed is not None:
            self.waiter = None
            waiter.set_result(parsed)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.waiter = None
        try:
            parsed = self._parse(eof=True)
        except _MalformedResponseError as err:
            waiter.set_exception(err)
            return
        if parsed is None:
            waiter.set_exception(ConnectionResetError(f"connection closed: {exc!r}"))
        else:
            waiter.set_result(parsed)

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def _parse(self, *, eof: bool) -> tuple[int, CIMultiDict[str], bytes] | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD:
                raise _MalformedResponseError("response head too large")
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _MalformedResponseError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _MalformedResponseError(f"bad header line {line[:80]!r}")
            headers.add(name.strip(), value.strip())
        start = end + 4
        if status < 200:  # 1xx interim answer: skip it, wait for the real one
            del buf[:start]
            return self._parse(eof=eof)
        if parts[0] == "HTTP/1.0" or headers.get("Connection", "").lower() == "close":
            self.reusable = False
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            chunked = _dechunk(buf, start)
            if chunked is None:
                if eof:
                    raise _MalformedResponseError("connection closed inside a chunked body")
                return None
            body, used = chunked
            del buf[:used]
            return status, headers, body
        length = headers.get("Content-Length")
        if length is None:  # the body runs until the server closes the connection
            self.reusable = False
            if not eof:
                return None
            body = bytes(buf[start:])
            del buf[:]
            return status, headers, body
        if not length.isdigit():
            raise _MalformedResponseError(f"bad Content-Length {length[:40]!r}")
        stop = start + int(length)
        if len(buf) < stop:
            if eof:
                raise _MalformedResponseError("connection closed inside the body")
            return None
        body = bytes(buf[start:stop])
        del buf[:stop]
        return status, headers, body


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """(body, bytes used) of a complete chunked body starting at ``pos``, else ``None``."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _MalformedResponseError("bad chunk size") from None
        pos = eol + 2
        if size == 0:
            # Trailers (usually none), then an empty line.
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(out), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


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
        self._host_header = self._host if default_port else f"{self._host}:{self._port}"
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Connection] = []
        self._ssl: ssl.SSLContext | None = None
        #: Request-line prefixes by URL (path and query of each URL, parsed once).
        self._targets: dict[str, bytes] = {}

    def _target(self, url: str) -> bytes:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            target = self._targets[url] = f"POST {path} HTTP/1.1\r\n".encode("latin-1")
        return target

    async def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _connect(self, operation: str) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl if self._tls else None,
                    server_hostname=self._host if self._tls else None,
                ),
                self._connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise self._not_sent(operation, repr(exc)) from exc
        return conn

    def _pooled(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive_timeout:
                return conn
            conn.close()
        return None

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, operation: str
    ) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of the response; transport failures typed (see module)."""
        slots = self._slots
        if slots is None:
            slots = self._slots = asyncio.Semaphore(max(1, self._max_connections))
        head = [self._target(url)]
        if "Host" not in headers:
            head.append(f"Host: {self._host_header}\r\n".encode("latin-1"))
        head.append(
            "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
            + f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1")
        )
        head.append(body)
        async with slots:
            conn = self._pooled() or await self._connect(operation)
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[tuple[int, CIMultiDict[str], bytes]] = loop.create_future()
            conn.waiter = waiter
            done = False
            try:
                if conn.transport is None or conn.closed:
                    raise ConnectionResetError("connection closed before the request")
                conn.transport.write(b"".join(head))
                status, resp_headers, payload = await asyncio.wait_for(waiter, self._read_timeout)
                done = True
            except (OSError, TimeoutError, _MalformedResponseError) as exc:
                raise self._outcome_unknown(operation, exc) from exc
            finally:
                conn.waiter = None
                if done and conn.reusable and not conn.closed and not conn.buf:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.close()
        return status, resp_headers, payload
