"""Fault injection for SES: a small reverse proxy on the loopback interface.

Point a client at it (``AWS_ENDPOINT_URL_SESV2=<proxy url>`` for every botocore/aiobotocore
client, or any hand-signed client given the URL) and it forwards requests to the real
endpoint (moto), except that a seeded random draw turns a fixed share of the SES send
requests into:

- ``throttle``: HTTP 429 ``TooManyRequestsException`` (SES v2; SES v1 gets HTTP 400
  ``Throttling`` / "Maximum sending rate exceeded"); nothing is sent;
- ``server_error``: HTTP 500 ``InternalFailure`` or 503 ``ServiceUnavailable``; nothing is sent;
- ``response_lost``: the request IS forwarded (the email is sent), then the connection is
  dropped without a response: the caller sees a reset and cannot know the outcome.

Works across process boundaries (it is an HTTP server) and through any client. Bounded: it
listens on 127.0.0.1 only and stops by itself after ``lifetime_s`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from notifier.local.environ import patched_environ

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["FaultPlan", "FaultProxy", "FaultProxyError", "is_send_request", "sesv2_endpoint"]

Fault = Literal["throttle", "server_error", "response_lost"]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
_V1_SEND_ACTIONS = (b"Action=SendEmail", b"Action=SendRawEmail", b"Action=SendTemplatedEmail")


class FaultProxyError(RuntimeError):
    """The fault proxy could not start."""


@dataclass(frozen=True)
class FaultPlan:
    """Which share of send requests fail, and how. Rates are probabilities in [0, 1] whose
    sum is at most 1; ``seed`` makes the sequence of draws reproducible."""

    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    response_lost_rate: float = 0.0
    seed: int = 0
    #: Inject only into SES send requests (True) or into every request (False).
    sends_only: bool = True

    def __post_init__(self) -> None:
        rates = (self.throttle_rate, self.server_error_rate, self.response_lost_rate)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and sum to at most 1")

    @property
    def total_rate(self) -> float:
        return self.throttle_rate + self.server_error_rate + self.response_lost_rate


def is_send_request(method: str, path: str, body: bytes) -> bool:
    """True for an SES send: v2 ``POST /v2/email/outbound-(bulk-)emails`` or a v1 send action."""
    if method != "POST":
        return False
    if path.startswith("/v2/email/outbound-"):
        return True
    return path in ("", "/") and any(a in body for a in _V1_SEND_ACTIONS)


def _error_response(
    fault: Fault, v2: bool, rng: random.Random
) -> tuple[int, dict[str, str], bytes]:
    if fault == "throttle":
        if v2:
            body = {"__type": "TooManyRequestsException", "message": "Too many requests."}
            headers = {"x-amzn-ErrorType": "TooManyRequestsException"}
            return 429, {**headers, "Content-Type": "application/json"}, json.dumps(body).encode()
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            "<Message>Maximum sending rate exceeded.</Message></Error>"
            "<RequestId>fault-proxy</RequestId></ErrorResponse>"
        )
        return 400, {"Content-Type": "text/xml"}, xml.encode()
    status, code = rng.choice(((500, "InternalFailure"), (503, "ServiceUnavailable")))
    if v2:
        body = {"__type": code, "message": "injected by the fault proxy"}
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
        return status, headers, json.dumps(body).encode()
    xml = (
        f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code>"
        "<Message>injected by the fault proxy</Message></Error>"
        "<RequestId>fault-proxy</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, xml.encode()


class FaultProxy:
    """A reverse proxy in a background thread; use as a context manager.

    ``counts`` (a ``Counter``) tallies ``requests``, ``sends``, ``forwarded``, ``throttle``,
    ``server_error`` and ``response_lost``.
    """

    def __init__(self, upstream: str, plan: FaultPlan, *, lifetime_s: float = 900.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self.lifetime_s = lifetime_s
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._sock: socket.socket | None = None
        self._stop_event: asyncio.Event = asyncio.Event()
        self.url = ""

    # ---- lifecycle

    def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._stopped.is_set():
            raise FaultProxyError("the fault proxy did not start")
        return self.url

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not self._stopped.is_set():
            with suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the server

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            self._stopped.set()
            self._ready.set()
            loop.close()
            if self._sock is not None:
                self._sock.close()

    async def _main(self) -> None:
        from aiohttp import ClientSession, ClientTimeout, web

        self._stop_event = asyncio.Event()
        session = ClientSession(auto_decompress=False, timeout=ClientTimeout(total=120))

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, session)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        assert self._sock is not None
        try:
            await runner.setup()
            await web.SockSite(runner, self._sock).start()
            self._ready.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), self.lifetime_s)
        finally:
            await runner.cleanup()
            await session.close()

    def _draw(self) -> Fault | None:
        plan = self.plan
        with self._lock:
            r = self._rng.random()
        if r < plan.throttle_rate:
            return "throttle"
        if r < plan.throttle_rate + plan.server_error_rate:
            return "server_error"
        if r < plan.total_rate:
            return "response_lost"
        return None

    async def _handle(self, request: Any, session: Any) -> web.StreamResponse:
        from aiohttp import web

        body = await request.read()
        path = request.path
        self.counts["requests"] += 1
        send = is_send_request(request.method, path, body)
        if send:
            self.counts["sends"] += 1
        fault = self._draw() if (send or not self.plan.sends_only) else None
        if fault in ("throttle", "server_error"):
            assert fault is not None
            self.counts[fault] += 1
            status, headers, payload = _error_response(fault, path.startswith("/v2/"), self._rng)
            return web.Response(status=status, headers=headers, body=payload)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            status = upstream.status
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
        self.counts["forwarded"] += 1
        if fault == "response_lost":
            self.counts["response_lost"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to say on a dropped connection
        return web.Response(status=status, headers=out_headers, body=payload)


@contextmanager
def sesv2_endpoint(url: str) -> Iterator[None]:
    """Route every botocore/aiobotocore SES client created inside the block to ``url``
    (``AWS_ENDPOINT_URL_SESV2`` and ``AWS_ENDPOINT_URL_SES``)."""
    with patched_environ({"AWS_ENDPOINT_URL_SESV2": url, "AWS_ENDPOINT_URL_SES": url}):
        yield
