"""A small Lambda Runtime API server (test code): what the Lambda service is to a runtime.

Serves ``GET /2018-06-01/runtime/invocation/next`` from a queue of invocations the test
enqueues, and records what the runtime posts back (``.../response``, ``.../error``,
``/runtime/init/error``) so tests can assert on the exact bytes and headers. HTTP/1.1 with
keep-alive, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
import queue
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
DEFAULT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:notifier"


@dataclass(frozen=True)
class Invocation:
    request_id: str
    body: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str | None
    content_type: str


@dataclass(frozen=True)
class Posted:
    """What the runtime posted: kind is "response", "error" or "init_error"."""

    kind: str
    request_id: str | None
    body: bytes
    headers: dict[str, str]  # names lower-cased

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeRuntimeAPI:
    server: ThreadingHTTPServer | None = None
    pending: queue.Queue[Invocation] = field(default_factory=queue.Queue)
    posted: list[Posted] = field(default_factory=list)
    connections: int = 0
    next_calls: int = 0
    #: Close the connection silently after each post, as an idle-timeout proxy would: the
    #: runtime finds out only when its next request on the kept-alive socket fails.
    drop_after_post: bool = False
    _issued: set[str] = field(default_factory=set)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _closing: threading.Event = field(default_factory=threading.Event)

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> FakeRuntimeAPI:
        api = self

        class Handler(_Handler):
            fake = api

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def address(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    # -- what tests call --------------------------------------------------------------------
    def invoke(
        self,
        body: bytes,
        *,
        timeout_ms: int = 60_000,
        function_arn: str = DEFAULT_ARN,
        trace_id: str | None = "Root=1-67891233-abcdef012345678912345678;Parent=1;Sampled=1",
        content_type: str = "application/json",
    ) -> Invocation:
        inv = Invocation(
            request_id=str(uuid.uuid4()),
            body=body,
            deadline_ms=int(time.time() * 1000) + timeout_ms,
            function_arn=function_arn,
            trace_id=trace_id,
            content_type=content_type,
        )
        self.pending.put(inv)
        return inv

    def wait_for(self, kind: str, request_id: str | None = None, timeout: float = 60) -> Posted:
        """The first post of ``kind`` (for ``request_id``); fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for p in self.posted:
                    if p.kind == kind and (request_id is None or p.request_id == request_id):
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind} for {request_id} within {timeout}s")
                self._cond.wait(left)

    def result_for(self, request_id: str, timeout: float = 60) -> Posted:
        """The response or error posted for ``request_id``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for p in self.posted:
                    if p.request_id == request_id:
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no result for {request_id} within {timeout}s")
                self._cond.wait(left)

    # -- used by the request handler --------------------------------------------------------
    def _record(self, posted: Posted) -> None:
        with self._cond:
            self.posted.append(posted)
            self._cond.notify_all()

    def _next(self, client_gone: Callable[[], bool]) -> Invocation | None:
        with self._cond:
            self.next_calls += 1
        while not self._closing.is_set():
            try:
                inv = self.pending.get(timeout=0.1)
            except queue.Empty:
                if client_gone():
                    return None
                continue
            if client_gone():
                # The runtime polling here was stopped: keep the event for the next runtime.
                self.pending.put(inv)
                return None
            self._issued.add(inv.request_id)
            return inv
        return None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeRuntimeAPI
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.fake._cond:
            self.fake.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the runtime process was stopped mid-poll

    def _client_gone(self) -> bool:
        """A runtime waiting on /next sends nothing more: readable means it hung up."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, b'{"errorMessage":"unknown path"}')
            return
        inv = self.fake._next(self._client_gone)
        if inv is None:
            self._reply(500, b'{"errorMessage":"shutting down"}', {"Connection": "close"})
            return
        headers = {
            "Content-Type": inv.content_type,
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": inv.function_arn,
        }
        if inv.trace_id:
            headers["Lambda-Runtime-Trace-Id"] = inv.trace_id
        self._reply(200, inv.body, headers)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}  # HTTP names ignore case
        if self.path == f"{PREFIX}/init/error":
            self.fake._record(Posted("init_error", None, body, headers))
            self._reply(202, b'{"status":"OK"}')
            return
        parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
        if len(parts) != 2 or parts[1] not in ("response", "error"):
            self._reply(404, b'{"errorMessage":"unknown path"}')
            return
        request_id, kind = parts
        if request_id not in self.fake._issued:
            self._reply(400, b'{"errorMessage":"invalid request id"}')
            return
        self.fake._record(Posted(kind, request_id, body, headers))
        self._reply(202, b'{"status":"OK"}')
        if self.fake.drop_after_post:
            self.close_connection = True


@dataclass(frozen=True)
class Runtime:
    """A way to run a handler: the standard runtime (awslambdaric) or notifier's own."""

    name: str

    def argv(self, module: str, attr: str) -> list[str]:
        if self.name == "awslambdaric":
            # What the Lambda base image's bootstrap runs: `python -m awslambdaric mod.func`.
            return [sys.executable, "-m", "awslambdaric", f"{module}.{attr}"]
        return [sys.executable, "-m", "notifier.runtime", f"{module}:{attr}"]

    def handler(self, module: str, function: str, factory: str) -> tuple[str, str]:
        """awslambdaric names the handler function; notifier.runtime names its factory."""
        return (module, function) if self.name == "awslambdaric" else (module, factory)


STANDARD = Runtime("awslambdaric")
CUSTOM = Runtime("notifier")

#: The ``start_runtime`` fixture: ``start(argv, **env) -> Popen``.
StartRuntime = Callable[..., subprocess.Popen[bytes]]
