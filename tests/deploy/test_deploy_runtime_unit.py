"""notifier.runtime in-process against the local Runtime API: the protocol details that the
subprocess tests do not pin down (keep-alive, reconnects, context, marshalling, init checks)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lambda_runtime_api import FakeRuntimeAPI

from notifier import runtime
from notifier.runtime import InitError, LambdaContext, RuntimeAPIError, RuntimeClient


@pytest.fixture
def client(runtime_api: FakeRuntimeAPI) -> Iterator[RuntimeClient]:
    """GIVEN a runtime client connected to the local Runtime API."""
    c = RuntimeClient(runtime_api.address)
    yield c
    c.close()


Seen = list[tuple[bytes, LambdaContext, str | None]]


@pytest.fixture
def recording_handler() -> tuple[Callable[[bytes, LambdaContext], Any], Seen]:
    """Factory product: a handler that records (event, context, trace env) and echoes a count."""
    seen: Seen = []

    def handler(event: bytes, context: LambdaContext) -> dict[str, Any]:
        seen.append((event, context, os.environ.get("_X_AMZN_TRACE_ID")))
        return {"batchItemFailures": [], "bytes": len(event)}

    return handler, seen


def test_invocations_share_one_keep_alive_connection(
    runtime_api: FakeRuntimeAPI, client: RuntimeClient, recording_handler: Any
) -> None:
    # GIVEN three queued invocations
    handler, seen = recording_handler
    invs = [runtime_api.invoke(json.dumps({"Records": [i]}).encode()) for i in range(3)]
    # WHEN the loop serves them
    runtime.run(client, handler, max_invocations=3)
    # THEN each got its response, over a single TCP connection
    for inv in invs:
        assert runtime_api.result_for(inv.request_id).json() == {
            "batchItemFailures": [],
            "bytes": len(inv.body),
        }
    assert [e for e, _, _ in seen] == [inv.body for inv in invs]
    assert runtime_api.connections == 1


def test_reconnects_when_the_kept_alive_connection_was_dropped(
    runtime_api: FakeRuntimeAPI, client: RuntimeClient, recording_handler: Any
) -> None:
    # GIVEN a Runtime API that silently closes the connection after every post
    runtime_api.drop_after_post = True
    handler, _ = recording_handler
    invs = [runtime_api.invoke(b'{"Records": []}') for _ in range(3)]
    # WHEN the loop serves three invocations
    runtime.run(client, handler, max_invocations=3)
    # THEN every one is answered, on a fresh connection each time
    assert all(runtime_api.result_for(i.request_id).kind == "response" for i in invs)
    assert runtime_api.connections == 3


def test_context_and_trace_come_from_the_invocation_headers(
    runtime_api: FakeRuntimeAPI,
    client: RuntimeClient,
    recording_handler: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN one traced and one untraced invocation, and a function name in the environment
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "notifier-prod")
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    handler, seen = recording_handler
    traced = runtime_api.invoke(b"{}", timeout_ms=90_000, function_arn="arn:aws:lambda:x:1:f:n")
    untraced = runtime_api.invoke(b"{}", trace_id=None)
    # WHEN both are served
    runtime.run(client, handler, max_invocations=2)
    # THEN the context carries the headers' values
    (_, ctx1, trace1), (_, ctx2, trace2) = seen
    assert ctx1.aws_request_id == traced.request_id
    assert ctx1.invoked_function_arn == "arn:aws:lambda:x:1:f:n"
    assert ctx1.deadline_ms == traced.deadline_ms
    assert 0 < ctx1.get_remaining_time_in_millis() <= 90_000
    assert ctx1.function_name == "notifier-prod"
    assert ctx2.aws_request_id == untraced.request_id
    # AND the trace id is exported for the first and cleared for the second
    assert trace1 == traced.trace_id
    assert trace2 is None
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)


def test_remaining_time_never_goes_negative() -> None:
    # GIVEN a context whose deadline has passed
    ctx = LambdaContext(aws_request_id="r", invoked_function_arn=None, deadline_ms=1_000)
    # THEN the remaining time is zero, not negative
    assert ctx.get_remaining_time_in_millis() == 0


def test_unserialisable_result_is_a_marshal_error(
    runtime_api: FakeRuntimeAPI, client: RuntimeClient
) -> None:
    # GIVEN a handler returning something JSON cannot encode
    inv = runtime_api.invoke(b"{}")
    # WHEN it is served
    runtime.run(client, lambda event, ctx: {"ids": {1, 2}}, max_invocations=1)
    # THEN Lambda gets an error in its shape, typed as a marshal error
    posted = runtime_api.result_for(inv.request_id)
    assert posted.kind == "error"
    assert posted.json()["errorType"] == "Runtime.MarshalError"
    assert "set" in posted.json()["errorMessage"]


def test_bytes_result_is_passed_through(runtime_api: FakeRuntimeAPI, client: RuntimeClient) -> None:
    # GIVEN a handler that serialises its own result
    inv = runtime_api.invoke(b"{}")
    # WHEN it is served
    runtime.run(client, lambda event, ctx: b'{"batchItemFailures":[]}', max_invocations=1)
    # THEN the bytes are posted unchanged
    assert runtime_api.result_for(inv.request_id).body == b'{"batchItemFailures":[]}'


def test_unexpected_status_raises(client: RuntimeClient) -> None:
    # WHEN a response is posted for a request id Lambda never issued
    with pytest.raises(RuntimeAPIError) as info:
        client.post_response("not-a-request-id", b"{}")
    # THEN the runtime sees a typed error with the status
    assert info.value.status == 400
    assert isinstance(info.value, ConnectionError)


@pytest.mark.parametrize(
    ("spec", "error_type"),
    [
        ("notifier.handler.lambda_handler", "Runtime.MalformedHandlerName"),
        ("deploy_handlers:", "Runtime.MalformedHandlerName"),
        ("deploy_no_such_module:build", "Runtime.ImportModuleError"),
        ("deploy_handlers:no_such_factory", "Runtime.HandlerNotFound"),
        ("deploy_handlers:make_nothing", "Runtime.HandlerNotFound"),
    ],
)
def test_load_handler_rejects_bad_specs(spec: str, error_type: str) -> None:
    # WHEN a handler spec cannot produce a handler
    with pytest.raises(InitError) as info:
        runtime.load_handler(spec)
    # THEN the init error carries awslambdaric's fault type
    assert info.value.error_type == error_type


def test_load_handler_calls_the_factory_once() -> None:
    # WHEN a valid factory is named
    handler = runtime.load_handler("deploy_handlers:make_handler")
    # THEN the handler it returns is used
    import deploy_handlers

    assert handler is deploy_handlers.lambda_handler


def test_main_without_runtime_api_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no Runtime API address (not inside Lambda or the emulator)
    monkeypatch.delenv("AWS_LAMBDA_RUNTIME_API", raising=False)
    # WHEN the runtime starts
    code = runtime.main(["deploy_handlers:make_handler"])
    # THEN it exits with a usage error and says why
    assert code == 2
    assert "AWS_LAMBDA_RUNTIME_API" in capsys.readouterr().err


def test_main_reports_init_error_in_process(
    runtime_api: FakeRuntimeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the handler named by NOTIFIER_HANDLER cannot be built
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", runtime_api.address)
    monkeypatch.setenv("NOTIFIER_HANDLER", "deploy_handlers:make_nothing")
    # WHEN the runtime starts
    code = runtime.main([])
    # THEN it posts the init error and returns non-zero
    assert code == 1
    init = runtime_api.wait_for("init_error")
    assert init.json()["errorType"] == "Runtime.HandlerNotFound"
    assert "make_nothing" in init.json()["errorMessage"]


def test_importing_the_runtime_stays_lean() -> None:
    # GIVEN a fresh interpreter (a cold start)
    import subprocess
    import sys

    # (ssl and email do load: http.client imports them, as botocore's urllib3 does anyway)
    heavy = ["asyncio", "botocore", "aiobotocore", "aiohttp", "concurrent.futures", "logging"]
    code = (
        "import sys, json; import notifier.runtime; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    # WHEN it imports notifier.runtime
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    # THEN none of the heavy modules came along (they load with the handler, not the loop)
    assert json.loads(out) == []


@pytest.mark.parametrize("log_format", ["JSON", "Text"])
def test_errors_are_logged_as_one_event_in_the_function_log_format(
    runtime_api: FakeRuntimeAPI,
    client: RuntimeClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_format: str,
) -> None:
    # GIVEN the function's log format and a handler that fails
    monkeypatch.setenv("AWS_LAMBDA_LOG_FORMAT", log_format)

    def failing(event: bytes, context: LambdaContext) -> None:
        raise LookupError("ledger table notifier-ledger not found")

    inv = runtime_api.invoke(b"{}")
    # WHEN the invocation is served
    runtime.run(client, failing, max_invocations=1)
    # THEN the error is one log line, structured when the format is JSON
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    if log_format == "JSON":
        logged = json.loads(err)
        assert logged["level"] == "ERROR"
        assert logged["errorType"] == "LookupError"
        assert logged["requestId"] == inv.request_id
    else:
        assert err.startswith("[ERROR] LookupError: ledger table notifier-ledger not found\r")
    assert runtime_api.result_for(inv.request_id).kind == "error"
