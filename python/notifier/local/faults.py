"""Fault injection for the channels' providers: a small reverse proxy on the loopback interface.

Point clients at it and it forwards every request to the real endpoint (moto, a local webhook
receiver), except that a seeded random draw turns a fixed share of the *sends* into faults.
A send is one of three targets, each told apart by the request alone:

- ``ses``: an SES send, v2 ``POST /v2/email/outbound-(bulk-)emails`` or a v1 ``SendEmail`` /
  ``SendRawEmail`` / ``SendTemplatedEmail`` (query protocol). Route clients with
  :func:`sesv2_endpoint` (``AWS_ENDPOINT_URL_SESV2`` and ``AWS_ENDPOINT_URL_SES``).
- ``sns``: an SNS ``Publish`` or ``PublishBatch`` (query protocol: ``Action=Publish`` in the
  form body), the call of the SMS and push channels. Route clients with :func:`sns_endpoint`
  (``AWS_ENDPOINT_URL_SNS``).
- ``webhook``: a ``POST`` carrying a Standard Webhooks ``webhook-id`` header. Give the proxy the
  receiver's origin (``webhook_upstream``, or :meth:`FaultProxy.webhooks_to` once the receiver
  runs) and configure the channel's ``url`` as the receiver's URL on the proxy
  (:meth:`FaultProxy.proxied`; ``webhooks_to`` returns it).

The faults, as each provider really answers them (nothing is forwarded for the first two):

- ``throttle``: SES v2 HTTP 429 ``TooManyRequestsException``; SES v1 HTTP 400 ``Throttling``
  ("Maximum sending rate exceeded"); SNS either HTTP 429 ``Throttled`` (``ThrottledException``
  in botocore's SNS model) or HTTP 400 ``ThrottlingException`` "Rate exceeded" (the API rate
  limit, as AWS documents it for Publish), as XML ``ErrorResponse``; webhooks HTTP 429.
- ``server_error``: SES 500 ``InternalFailure`` / 503 ``ServiceUnavailable``; SNS 500
  ``InternalError`` (botocore's model) / 503 ``ServiceUnavailable``; webhooks 500 / 503.
- ``response_lost``: the request IS forwarded (the email, SMS, push or webhook is delivered),
  then the connection is dropped without a response: the caller sees a reset and cannot know
  the outcome.

Every target draws from its own seeded generator (``random.Random(seed)`` for SES, as before
the other targets existed; ``"<seed>/sns"`` and ``"<seed>/webhook"`` for the others), so a
target's sequence of faults does not depend on how its requests interleave with the others'.
Which variant of a fault is answered (429 or 400, 500 or 503) comes from a second generator per
target and does not shift the draws.

``counts`` (a ``Counter``): ``requests`` and ``forwarded`` over all requests; for SES the plain
``sends``, ``throttle``, ``server_error`` and ``response_lost``; for the other targets the same
names prefixed ``sns.`` and ``webhook.``. :meth:`FaultProxy.by_target` gives them per target.

Works across process boundaries (it is an HTTP server) and through any client. Bounded: it
listens on 127.0.0.1 only and stops by itself after ``lifetime_s`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from notifier.local.environ import patched_environ

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "TARGETS",
    "FaultPlan",
    "FaultProxy",
    "FaultProxyError",
    "is_send_request",
    "send_target",
    "sesv2_endpoint",
    "sns_endpoint",
]

Fault = Literal["throttle", "server_error", "response_lost"]
Target = Literal["ses", "sns", "webhook"]
TARGETS: tuple[Target, ...] = ("ses", "sns", "webhook")
FAULTS: tuple[Fault, ...] = ("throttle", "server_error", "response_lost")

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
_SES_V1_SEND_ACTIONS = frozenset({"SendEmail", "SendRawEmail", "SendTemplatedEmail"})
_SNS_SEND_ACTIONS = frozenset({"Publish", "PublishBatch"})
_SNS_XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
_INJECTED = "injected by the fault proxy"

Answer = tuple[int, dict[str, str], bytes]


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
    #: Inject only into sends (True) or into every request (False; other requests are
    #: answered in SES's shapes, as the proxy did before it knew other targets).
    sends_only: bool = True
    #: The targets whose sends are faulted; the others' pass through (and are counted).
    targets: frozenset[str] = frozenset(TARGETS)

    def __post_init__(self) -> None:
        rates = (self.throttle_rate, self.server_error_rate, self.response_lost_rate)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and sum to at most 1")
        unknown = set(self.targets) - set(TARGETS)
        if unknown:
            raise ValueError(f"unknown fault targets {sorted(unknown)} (known: {TARGETS})")

    @property
    def total_rate(self) -> float:
        return self.throttle_rate + self.server_error_rate + self.response_lost_rate


def _query_action(body: bytes) -> str | None:
    """The ``Action`` of a query-protocol (form-encoded) request body, or None."""
    if b"Action=" not in body:
        return None
    try:
        fields = parse_qsl(body.decode("ascii"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    return next((v for k, v in fields if k == "Action"), None)


def send_target(method: str, path: str, headers: Any, body: bytes) -> Target | None:
    """The target a request sends to (see the module docstring), or None for any other
    request. ``headers``: a case-insensitive mapping (aiohttp's, or lower-case keys)."""
    if method != "POST":
        return None
    if headers.get("webhook-id") is not None:
        return "webhook"
    if path.startswith("/v2/email/outbound-"):
        return "ses"
    if path not in ("", "/"):
        return None
    action = _query_action(body)
    if action in _SES_V1_SEND_ACTIONS:
        return "ses"
    if action in _SNS_SEND_ACTIONS:
        return "sns"
    return None


def is_send_request(method: str, path: str, body: bytes) -> bool:
    """True for an SES send: v2 ``POST /v2/email/outbound-(bulk-)emails`` or a v1 send action."""
    return send_target(method, path, {}, body) == "ses"


def _xml_error(status: int, kind: str, code: str, message: str, xmlns: str = "") -> Answer:
    """A query-protocol ``ErrorResponse`` document."""
    root = ET.Element("ErrorResponse", {"xmlns": xmlns} if xmlns else {})
    error = ET.SubElement(root, "Error")
    for tag, text in (("Type", kind), ("Code", code), ("Message", message)):
        ET.SubElement(error, tag).text = text
    ET.SubElement(root, "RequestId").text = "fault-proxy"
    return status, {"Content-Type": "text/xml"}, ET.tostring(root)


def _json_error(status: int, code: str, message: str) -> Answer:
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, {"x-amzn-ErrorType": code, "Content-Type": "application/json"}, body


def _ses_answer(fault: Fault, v2: bool, shape: random.Random) -> Answer:
    if fault == "throttle":
        if v2:
            return _json_error(429, "TooManyRequestsException", "Too many requests.")
        return _xml_error(400, "Sender", "Throttling", "Maximum sending rate exceeded.")
    status, code = shape.choice(((500, "InternalFailure"), (503, "ServiceUnavailable")))
    if v2:
        return _json_error(status, code, _INJECTED)
    return _xml_error(status, "Receiver", code, _INJECTED)


def _sns_answer(fault: Fault, shape: random.Random) -> Answer:
    if fault == "throttle":
        status, code, message = shape.choice(
            ((429, "Throttled", _INJECTED), (400, "ThrottlingException", "Rate exceeded"))
        )
        return _xml_error(status, "Sender", code, message, _SNS_XMLNS)
    status, code = shape.choice(((500, "InternalError"), (503, "ServiceUnavailable")))
    return _xml_error(status, "Receiver", code, _INJECTED, _SNS_XMLNS)


def _webhook_answer(fault: Fault, shape: random.Random) -> Answer:
    status = 429 if fault == "throttle" else shape.choice((500, 503))
    return status, {"Content-Type": "text/plain"}, _INJECTED.encode()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class FaultProxy:
    """A reverse proxy in a background thread; use as a context manager.

    ``upstream``: the origin (or any URL on it) AWS requests go to (moto).
    ``webhook_upstream``: the same for the webhook receiver; webhook requests go to
    ``upstream`` when it is None. Paths are kept: a request for ``<proxy>/p`` goes to
    ``<upstream>/p`` (:meth:`proxied` makes the URL to configure).
    """

    def __init__(
        self,
        upstream: str,
        plan: FaultPlan,
        *,
        webhook_upstream: str | None = None,
        lifetime_s: float = 900.0,
        send_observer: Callable[[bytes, bytes | None, int], object] | None = None,
    ) -> None:
        #: Called (in a worker thread) with every SES send forwarded upstream, its answer and
        #: status, whether or not the answer then reaches the caller: the local emulation of
        #: SES event publishing (``notifier.local.ses_event_emulator``) hangs here.
        self.send_observer = send_observer
        self.upstream = _origin(upstream)
        self.webhook_upstream = _origin(webhook_upstream) if webhook_upstream else self.upstream
        self.plan = plan
        self.lifetime_s = lifetime_s
        self.counts: Counter[str] = Counter()
        seed = plan.seed
        self._draws = {t: random.Random(seed if t == "ses" else f"{seed}/{t}") for t in TARGETS}
        self._shapes = {t: random.Random(f"{seed}/{t}/shape") for t in TARGETS}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._sock: socket.socket | None = None
        self._stop_event: asyncio.Event = asyncio.Event()
        self.url = ""

    def webhooks_to(self, receiver_url: str) -> str:
        """Forward webhook requests to ``receiver_url``'s origin from now on; returns the URL
        to configure in its place (for a receiver started after the proxy)."""
        self.webhook_upstream = _origin(receiver_url)
        return self.proxied(receiver_url)

    def proxied(self, url: str) -> str:
        """``url`` (on an upstream) with its origin replaced by the proxy's."""
        parts = urlsplit(url)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.url + rest

    @staticmethod
    def key(target: Target, name: str) -> str:
        """The ``counts`` key of ``name`` for ``target`` (plain for SES)."""
        return name if target == "ses" else f"{target}.{name}"

    def by_target(self) -> dict[str, dict[str, int]]:
        """``{"ses": {"sends": .., "throttle": .., ...}, "sns": {...}, "webhook": {...}}``."""
        names = ("sends", *FAULTS)
        return {t: {n: self.counts[self.key(t, n)] for n in names} for t in TARGETS}

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
            await web.SockSite(runner, self._sock, backlog=1024).start()
            self._ready.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), self.lifetime_s)
        finally:
            await runner.cleanup()
            await session.close()

    def _draw(self, target: Target) -> Fault | None:
        plan = self.plan
        with self._lock:
            r = self._draws[target].random()
        if r < plan.throttle_rate:
            return "throttle"
        if r < plan.throttle_rate + plan.server_error_rate:
            return "server_error"
        if r < plan.total_rate:
            return "response_lost"
        return None

    def _answer(self, target: Target, fault: Fault, path: str) -> Answer:
        shape = self._shapes[target]
        with self._lock:
            if target == "sns":
                return _sns_answer(fault, shape)
            if target == "webhook":
                return _webhook_answer(fault, shape)
            return _ses_answer(fault, path.startswith("/v2/"), shape)

    async def _handle(self, request: Any, session: Any) -> web.StreamResponse:
        from aiohttp import web

        body = await request.read()
        path = request.path
        self.counts["requests"] += 1
        target = send_target(request.method, path, request.headers, body)
        if target is not None:
            self.counts[self.key(target, "sends")] += 1
        fault: Fault | None = None
        if target is not None and target in self.plan.targets:
            fault = self._draw(target)
        elif target is None and not self.plan.sends_only:
            target, fault = "ses", self._draw("ses")  # SES shapes, as before
        if target is not None and fault in ("throttle", "server_error"):
            assert fault is not None
            self.counts[self.key(target, fault)] += 1
            status, headers, payload = self._answer(target, fault, path)
            return web.Response(status=status, headers=headers, body=payload)
        base = self.webhook_upstream if request.headers.get("webhook-id") else self.upstream
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with session.request(
            request.method, base + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            status = upstream.status
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
        self.counts["forwarded"] += 1
        if target == "ses" and self.send_observer is not None:
            await asyncio.to_thread(self.send_observer, body, payload, status)
        if target is not None and fault == "response_lost":
            self.counts[self.key(target, fault)] += 1
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


@contextmanager
def sns_endpoint(url: str) -> Iterator[None]:
    """Route every botocore/aiobotocore SNS client created inside the block to ``url``
    (``AWS_ENDPOINT_URL_SNS``): the SMS and push channels' ``Publish``."""
    with patched_environ({"AWS_ENDPOINT_URL_SNS": url}):
        yield
