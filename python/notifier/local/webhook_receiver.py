"""A local webhook receiver that verifies every delivery: for the demo, the tests and benches.

:class:`WebhookReceiver` is an aiohttp server on a loopback port, run on its own event loop in
a daemon thread (as moto's ``ThreadedMotoServer`` is), so it serves while the caller's own
loops, in the caller's threads, send to it. ``python -m notifier.local.webhook_receiver`` runs
one in the foreground (``READY <url>`` on stdout) for a separate process.

Every POST to its path is checked as a Standard Webhooks consumer would: signature against the
configured ``whsec_`` secrets and timestamp within 5 minutes, by the reference
``standardwebhooks`` library when it is installed (an independent check of our signer), else
by :func:`notifier.channels.signing.verify`. A bad one is answered 401 and counted; a good one
is answered by the script (:meth:`WebhookReceiver.enqueue`: a status with headers, a delay
longer than the sender's timeout, or a dropped connection) or 200, and recorded:
:meth:`accepted` counts 2xx-answered deliveries per ``webhook-id``, :meth:`duplicates` names
the ids accepted more than once (what exactly-once must keep empty), :meth:`stats` sums it up
(also ``GET /_receiver/stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from notifier.channels.signing import SignatureError, verify

__all__ = ["Delivery", "Reply", "WebhookReceiver", "main"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer to a verified delivery."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Seconds to wait before answering (longer than the sender's timeout: a read timeout).
    delay: float = 0.0
    #: Close the connection without answering (a reset after the request was sent).
    drop: bool = False


@dataclass(frozen=True)
class Delivery:
    """One request the receiver saw."""

    webhook_id: str | None
    timestamp: str | None
    signature: str | None
    verified: bool
    #: The status answered (0 for a dropped connection).
    status: int
    #: The JSON body, parsed, for a verified delivery.
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: The raw request body, as signed.
    body: bytes = b""


def _reference_verifier(secrets: Sequence[str]) -> Any:
    """``standardwebhooks`` verifiers, one per secret, or None when it is not installed."""
    try:
        from standardwebhooks.webhooks import Webhook
    except ImportError:
        return None
    return [Webhook(s) for s in secrets]


class WebhookReceiver:
    """A verifying receiver on ``127.0.0.1:<port>`` (free port by default); a context manager."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/hooks",
        use_reference: bool = True,
    ) -> None:
        if not secrets:
            raise ValueError("a receiver needs at least one secret")
        self.secrets = list(secrets)
        self.host = host
        self.port = port
        self.path = path
        self._reference = _reference_verifier(self.secrets) if use_reference else None
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._script: collections.deque[Reply] = collections.deque()
        self._by_id: dict[str, collections.deque[Reply]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._failed: BaseException | None = None

    @property
    def verifier(self) -> str:
        """Which implementation checks signatures: ``standardwebhooks`` or ``notifier``."""
        return "standardwebhooks" if self._reference is not None else "notifier"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    # -- scripting and results ----------------------------------------------------------------

    def enqueue(self, *replies: Reply, webhook_id: str | None = None) -> None:
        """Answer the next verified deliveries (of ``webhook_id``, or any) with ``replies``."""
        with self._lock:
            if webhook_id is None:
                self._script.extend(replies)
            else:
                self._by_id.setdefault(webhook_id, collections.deque()).extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._deliveries.clear()
            self._script.clear()
            self._by_id.clear()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def accepted(self) -> dict[str, int]:
        """Verified deliveries answered 2xx, per ``webhook-id``."""
        counts: collections.Counter[str] = collections.Counter()
        for d in self.deliveries:
            if d.verified and 200 <= d.status < 300 and d.webhook_id is not None:
                counts[d.webhook_id] += 1
        return dict(counts)

    def duplicates(self) -> dict[str, int]:
        """``webhook-id`` -> times accepted, for the ids accepted more than once."""
        return {k: n for k, n in self.accepted().items() if n > 1}

    def bad_signatures(self) -> int:
        return sum(1 for d in self.deliveries if not d.verified)

    def stats(self) -> dict[str, Any]:
        accepted = self.accepted()
        return {
            "requests": len(self.deliveries),
            "delivered": len(accepted),
            "accepted": sum(accepted.values()),
            "duplicates": len(self.duplicates()),
            "bad_signatures": self.bad_signatures(),
            "verifier": self.verifier,
        }

    # -- serving --------------------------------------------------------------------------------

    def _check(self, headers: dict[str, str], body: bytes) -> tuple[str | None, Any, str | None]:
        """(webhook-id if verified, parsed payload, error)."""
        if self._reference is not None:
            last: Exception | None = None
            for hook in self._reference:
                try:
                    payload = hook.verify(body, headers)
                except Exception as exc:  # WebhookVerificationError, or a malformed header
                    last = exc
                    continue
                return headers.get("webhook-id"), payload, None
            return None, None, f"{type(last).__name__}: {last}"
        try:
            msg_id = verify(self.secrets, headers, body)
        except SignatureError as exc:
            return None, None, str(exc)
        import msgspec

        try:
            return msg_id, msgspec.json.decode(body), None
        except msgspec.DecodeError as exc:
            return None, None, f"body is not JSON: {exc}"

    def _next_reply(self, webhook_id: str) -> Reply:
        with self._lock:
            queue = self._by_id.get(webhook_id)
            if queue:
                return queue.popleft()
            if self._script:
                return self._script.popleft()
        return Reply()

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        msg_id, payload, error = self._check(headers, body)
        common: dict[str, Any] = {
            "webhook_id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "headers": headers,
            "body": body,
        }
        if msg_id is None:
            self._record(Delivery(verified=False, status=401, error=error, **common))
            return web.Response(status=401, text="bad signature")
        reply = self._next_reply(msg_id)
        if reply.delay:
            try:
                await asyncio.sleep(reply.delay)
            except asyncio.CancelledError:  # the sender gave up and closed the connection
                self._record(
                    Delivery(
                        verified=True, status=0, payload=payload, error="sender gone", **common
                    )
                )
                raise
        if reply.drop:
            self._record(Delivery(verified=True, status=0, payload=payload, **common))
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # aiohttp ends the handler without writing
        self._record(Delivery(verified=True, status=reply.status, payload=payload, **common))
        return web.Response(status=reply.status, headers=reply.headers, body=reply.body)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.Response(status=204)

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post(self.path, self._handle)
        app.router.add_get("/_receiver/stats", self._stats)
        app.router.add_post("/_receiver/reset", self._reset)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock, backlog=1024).start()
        self._runner = runner

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_site())
        except BaseException as exc:
            self._failed = exc
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def start(self) -> str:
        """Start serving; the URL to POST to."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="webhook-receiver", daemon=True
        )
        self._thread.start()
        ready.wait(30)
        if self._failed is not None:
            raise RuntimeError(f"webhook receiver failed to start: {self._failed!r}")
        return self.url

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
        self._loop = self._thread = None

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a receiver until SIGTERM/SIGINT; prints ``READY <url>`` once it serves."""
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--secret", action="append", default=[], help="whsec_ secret (repeat)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", default="/hooks")
    parser.add_argument(
        "--own-verifier", action="store_true", help="verify with notifier's, not standardwebhooks"
    )
    args = parser.parse_args(argv)
    secrets = args.secret or os.environ.get("WEBHOOK_SECRET", "").split()
    if not secrets:
        parser.error("give --secret or WEBHOOK_SECRET")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    receiver = WebhookReceiver(
        secrets, host=args.host, port=args.port, path=args.path, use_reference=not args.own_verifier
    )
    with receiver:
        print(f"READY {receiver.url}", flush=True)
        while not done.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
