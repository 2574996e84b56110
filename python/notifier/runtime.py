"""A custom Lambda runtime for notifier's container image: raw event bytes straight to the handler.

The standard Python runtime (awslambdaric) parses every invocation payload with ``json.loads``
before the handler runs: for a 1,000-record stream batch that is tens of milliseconds of CPU
spent building Python dicts the Rust decoder never needed. A container image chooses its own
entrypoint, so ``python -m notifier.runtime`` speaks the Lambda Runtime API itself and hands
the handler the body bytes unchanged (``notifier.handler.build_handler()`` decodes them in Rust).

Contract with the Lambda service (Runtime API ``2018-06-01``), the same as awslambdaric's:

- ``GET /runtime/invocation/next`` -> the event bytes and the invocation headers, which become
  the context (``Lambda-Runtime-Deadline-Ms`` -> ``get_remaining_time_in_millis()``, request
  id, function ARN; ``Lambda-Runtime-Trace-Id`` -> the ``_X_AMZN_TRACE_ID`` env variable).
- ``POST /runtime/invocation/{id}/response`` with the handler's result as JSON.
- ``POST /runtime/invocation/{id}/error`` on a handler exception, in Lambda's error shape
  ``{"errorMessage", "errorType", "requestId", "stackTrace"}`` with the
  ``Lambda-Runtime-Function-Error-Type`` header.
- ``POST /runtime/init/error`` if the handler cannot be built, then exit (Lambda starts a new
  execution environment and reports the error to the invoker).

The handler is made by a factory named ``module:attr`` (first argument, else the
``NOTIFIER_HANDLER`` env variable, else ``notifier.handler:build_handler``), called once at
init with no arguments; it returns a callable ``handler(event: bytes, context)``. Only the
standard library is imported (``http.client`` on one keep-alive connection) so cold start
stays lean.
"""

from __future__ import annotations

import http.client
import importlib
import io
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "API_VERSION",
    "DEFAULT_HANDLER",
    "ERROR_TYPE_HEADER",
    "HANDLER_ENV",
    "InitError",
    "Invocation",
    "LambdaContext",
    "RuntimeAPIError",
    "RuntimeClient",
    "error_payload",
    "load_handler",
    "main",
    "run",
]

API_VERSION = "2018-06-01"
HANDLER_ENV = "NOTIFIER_HANDLER"
DEFAULT_HANDLER = "notifier.handler:build_handler"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
TRACE_ENV = "_X_AMZN_TRACE_ID"

#: What the runtime hands events to: ``handler(raw_event_bytes, context) -> JSON-able result``.
Handler = Callable[[bytes, "LambdaContext"], object]

# A keep-alive connection the service (or a proxy) closed while idle shows up as one of these
# on the next request; the request never reached a handler, so it is sent again once.
_STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class RuntimeAPIError(ConnectionError):
    """The Runtime API answered a request with an unexpected HTTP status."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} answered HTTP {status}: {body[:200]!r}")
        self.status = status


class InitError(RuntimeError):
    """The handler could not be built; ``error_type`` is the Lambda fault type to report."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class Invocation(NamedTuple):
    """One event from ``GET /runtime/invocation/next``: the raw body and its headers."""

    request_id: str
    body: bytes
    deadline_ms: int
    function_arn: str | None
    trace_id: str | None
    client_context: str | None
    cognito_identity: str | None


@dataclass(slots=True)
class LambdaContext:
    """The context object handlers receive (the attributes awslambdaric's context has)."""

    aws_request_id: str
    invoked_function_arn: str | None
    deadline_ms: int
    client_context: Any = None
    identity: Any = None
    function_name: str | None = field(
        default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    )
    function_version: str | None = field(
        default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
    )
    memory_limit_in_mb: str | None = field(
        default_factory=lambda: os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    )
    log_group_name: str | None = field(
        default_factory=lambda: os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    )
    log_stream_name: str | None = field(
        default_factory=lambda: os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    )

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the invocation's deadline (never negative)."""
        return max(self.deadline_ms - int(time.time() * 1000), 0)

    @classmethod
    def from_invocation(cls, inv: Invocation) -> LambdaContext:
        return cls(
            aws_request_id=inv.request_id,
            invoked_function_arn=inv.function_arn,
            deadline_ms=inv.deadline_ms,
            client_context=_json_header(inv.client_context),
            identity=_json_header(inv.cognito_identity),
        )


def _json_header(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


class RuntimeClient:
    """The Runtime API over one keep-alive HTTP/1.1 connection (reopened when it goes stale)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._base = f"/{API_VERSION}/runtime"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            # No timeout: GET .../next legitimately blocks until the next event arrives.
            self._conn = http.client.HTTPConnection(self.address)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
            except _STALE_CONNECTION:
                self.close()
                if attempt == 2:
                    raise
                continue
            if resp.will_close:
                self.close()
            return resp.status, resp, data
        raise AssertionError("unreachable")  # pragma: no cover

    def next_invocation(self) -> Invocation:
        """Block until Lambda has an event; return its raw bytes and headers."""
        path = f"{self._base}/invocation/next"
        status, resp, body = self._request("GET", path)
        if status != 200:
            raise RuntimeAPIError("GET", path, status, body)
        request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
        if not request_id:
            raise RuntimeAPIError("GET", path, status, b"no Lambda-Runtime-Aws-Request-Id")
        try:
            deadline_ms = int(resp.getheader("Lambda-Runtime-Deadline-Ms") or 0)
        except ValueError:
            deadline_ms = 0
        return Invocation(
            request_id=request_id,
            body=body,
            deadline_ms=deadline_ms,
            function_arn=resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
            trace_id=resp.getheader("Lambda-Runtime-Trace-Id"),
            client_context=resp.getheader("Lambda-Runtime-Client-Context"),
            cognito_identity=resp.getheader("Lambda-Runtime-Cognito-Identity"),
        )

    def _post(self, path: str, payload: bytes, headers: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", **headers}
        status, _, body = self._request("POST", path, payload, headers)
        if status != 202:
            raise RuntimeAPIError("POST", path, status, body)

    def post_response(self, request_id: str, payload: bytes) -> None:
        """Report the invocation's result (JSON bytes)."""
        self._post(f"{self._base}/invocation/{request_id}/response", payload, {})

    def post_error(self, request_id: str, error: dict[str, Any]) -> None:
        """Report a failed invocation in Lambda's error shape."""
        self._post(
            f"{self._base}/invocation/{request_id}/error",
            _dumps(error),
            {ERROR_TYPE_HEADER: str(error.get("errorType") or "Unhandled")},
        )

    def post_init_error(self, error: dict[str, Any]) -> None:
        """Report that the runtime could not initialise (Lambda then discards the sandbox)."""
        self._post(
            f"{self._base}/init/error",
            _dumps(error),
            {ERROR_TYPE_HEADER: str(error.get("errorType") or "Runtime.Unknown")},
        )


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def error_payload(
    exc: BaseException, *, request_id: str = "", error_type: str | None = None
) -> dict[str, Any]:
    """``exc`` in Lambda's error shape (what awslambdaric reports): message, type, trace."""
    frames = traceback.extract_tb(exc.__traceback__)
    # Drop this module's own frames so the trace starts in user code, as awslambdaric does.
    while len(frames) > 1 and frames[0].filename == __file__:
        frames = traceback.StackSummary.from_list(frames[1:])
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def load_handler(spec: str) -> Handler:
    """Import ``module:attr``, call the factory once and return the handler it builds.

    Raises InitError with awslambdaric's fault types for a bad name, a missing module or
    attribute; whatever the factory itself raises propagates unchanged.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InitError("Runtime.MalformedHandlerName", f"Bad handler {spec!r}: want module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InitError(
            "Runtime.ImportModuleError", f"Unable to import module {module_name!r}: {exc}"
        ) from exc
    try:
        factory = getattr(module, attr)
    except AttributeError as exc:
        raise InitError(
            "Runtime.HandlerNotFound", f"Handler {attr!r} missing on module {module_name!r}"
        ) from exc
    handler = factory()
    if not callable(handler):
        raise InitError(
            "Runtime.HandlerNotFound", f"{spec} returned {type(handler).__name__}, not a handler"
        )
    result: Handler = handler
    return result


def _log_error(error: dict[str, Any]) -> None:
    """One log event per error, in the function's log format (LoggingConfig.LogFormat)."""
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = json.dumps({"timestamp": stamp, "level": "ERROR", **error}, ensure_ascii=False)
    else:
        # CloudWatch splits events on "\n"; "\r" keeps the trace in one event.
        lines = f"[ERROR] {error['errorType']}: {error['errorMessage']}".splitlines()
        lines += [part for frame in error["stackTrace"] for part in frame.splitlines()]
        line = "\r".join(lines)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def handle_one(client: RuntimeClient, handler: Handler, inv: Invocation) -> None:
    """Run the handler on one invocation and report its result or its error."""
    if inv.trace_id:
        os.environ[TRACE_ENV] = inv.trace_id
    else:
        os.environ.pop(TRACE_ENV, None)
    try:
        result = handler(inv.body, LambdaContext.from_invocation(inv))
    except Exception as exc:
        error = error_payload(exc, request_id=inv.request_id)
        _log_error(error)
        client.post_error(inv.request_id, error)
        return
    if isinstance(result, bytes):
        payload = result
    else:
        try:
            payload = _dumps(result)
        except (TypeError, ValueError) as exc:
            error = error_payload(exc, request_id=inv.request_id, error_type="Runtime.MarshalError")
            _log_error(error)
            client.post_error(inv.request_id, error)
            return
    client.post_response(inv.request_id, payload)


def run(client: RuntimeClient, handler: Handler, *, max_invocations: int | None = None) -> None:
    """The invocation loop: next -> handler -> response/error, forever (or ``max_invocations``)."""
    done = 0
    while max_invocations is None or done < max_invocations:
        handle_one(client, handler, client.next_invocation())
        done += 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m notifier.runtime [module:factory]``."""
    args = sys.argv[1:] if argv is None else argv
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("notifier.runtime: AWS_LAMBDA_RUNTIME_API is not set\n")
        return 2
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # log lines reach CloudWatch promptly
    spec = args[0] if args else os.environ.get(HANDLER_ENV) or DEFAULT_HANDLER
    client = RuntimeClient(address)
    try:
        try:
            handler = load_handler(spec)
        except InitError as exc:
            error = error_payload(exc, error_type=exc.error_type)
        except Exception as exc:
            error = error_payload(exc)
        else:
            run(client, handler)
            return 0  # pragma: no cover - run() only returns with max_invocations
        _log_error(error)
        client.post_init_error(error)
        return 1
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
