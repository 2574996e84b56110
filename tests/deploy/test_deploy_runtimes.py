"""Both runtime paths against a local Lambda Runtime API: the standard one (awslambdaric, the
base image's default) and notifier's custom runtime (``python -m notifier.runtime``).

Each runs as a real subprocess, exactly as in the container, with the Runtime API address in
``AWS_LAMBDA_RUNTIME_API``: a real-format stream batch in, ``batchItemFailures`` out; handler
exceptions and init errors reported in Lambda's error shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lambda_runtime_api import CUSTOM, DEFAULT_ARN, STANDARD, FakeRuntimeAPI, Runtime, StartRuntime

from notifier.samples import make_stream_event

RUNTIMES = [pytest.param(STANDARD, id="awslambdaric"), pytest.param(CUSTOM, id="notifier")]
HANDLER = ("deploy_handlers", "lambda_handler", "make_handler")


@pytest.fixture
def stream_batch() -> object:
    """Factory: a real-format DynamoDB Streams batch (INSERT/MODIFY/REMOVE mix) as bytes."""

    def make(n: int, *, start: int = 0) -> tuple[dict[str, object], bytes]:
        event = make_stream_event(n, start=start)
        return event, json.dumps(event).encode()

    return make


def _removes(event: dict[str, object]) -> list[dict[str, str]]:
    records = event["Records"]
    assert isinstance(records, list)
    return [
        {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
        for r in records
        if r["eventName"] == "REMOVE"
    ]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_batch_in_batch_item_failures_out(
    runtime: Runtime,
    runtime_api: FakeRuntimeAPI,
    start_runtime: StartRuntime,
    stream_batch: object,
    tmp_path: Path,
) -> None:
    # GIVEN a runtime serving the test handler, and two real-format batches queued
    trace = tmp_path / "trace.jsonl"
    start_runtime(runtime.argv(*runtime.handler(*HANDLER)), DEPLOY_TEST_TRACE=str(trace))
    event1, body1 = stream_batch(40)  # type: ignore[operator]
    event2, body2 = stream_batch(25, start=40)  # type: ignore[operator]
    assert _removes(event1), "the sample mix must contain REMOVE records"

    # WHEN Lambda delivers them one after the other
    inv1 = runtime_api.invoke(body1, timeout_ms=300_000)
    first = runtime_api.result_for(inv1.request_id)
    inv2 = runtime_api.invoke(body2, timeout_ms=300_000)
    second = runtime_api.result_for(inv2.request_id)

    # THEN each answer is a response carrying the batch's failures, in order
    assert first.kind == "response"
    assert first.json() == {"batchItemFailures": _removes(event1)}
    assert second.kind == "response"
    assert second.json() == {"batchItemFailures": _removes(event2)}
    # AND the handler saw the context built from the invocation headers
    seen = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [s["request_id"] for s in seen] == [inv1.request_id, inv2.request_id]
    assert all(s["function_arn"] == DEFAULT_ARN for s in seen)
    assert all(0 < s["remaining_ms"] <= 300_000 for s in seen)
    assert seen[0]["trace_id"] == inv1.trace_id
    assert [s["records"] for s in seen] == [40, 25]
    # AND only the custom runtime hands over the raw bytes (awslambdaric parses them first)
    expected_type = "bytes" if runtime is CUSTOM else "dict"
    assert {s["event_type"] for s in seen} == {expected_type}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_handler_exception_reported_in_lambda_error_shape(
    runtime: Runtime,
    runtime_api: FakeRuntimeAPI,
    start_runtime: StartRuntime,
    stream_batch: object,
) -> None:
    # GIVEN a runtime serving the test handler
    start_runtime(runtime.argv(*runtime.handler(*HANDLER)))

    # WHEN an event the handler rejects arrives, followed by a good batch
    bad = runtime_api.invoke(json.dumps({"Records": [{"eventSource": "aws:sqs"}]}).encode())
    error = runtime_api.result_for(bad.request_id)
    event, body = stream_batch(5)  # type: ignore[operator]
    good = runtime_api.invoke(body)
    after = runtime_api.result_for(good.request_id)

    # THEN the exception is reported on the error endpoint in Lambda's shape
    assert error.kind == "error"
    payload = error.json()
    assert payload["errorType"] == "NotAStreamEventError"
    assert payload["errorMessage"] == "not a DynamoDB stream batch: ['Records']"
    assert payload["requestId"] == bad.request_id
    assert isinstance(payload["stackTrace"], list)
    assert any("deploy_handlers.py" in frame for frame in payload["stackTrace"])
    # (awslambdaric 4.x sends the type header only with init errors; notifier.runtime always)
    expected_header = "NotAStreamEventError" if runtime is CUSTOM else None
    assert error.headers.get("lambda-runtime-function-error-type") == expected_header
    # AND the runtime keeps serving: the next batch succeeds
    assert after.kind == "response"
    assert after.json() == {"batchItemFailures": _removes(event)}


INIT_FAILURES = [
    pytest.param(
        ("deploy_broken_handler", "lambda_handler", "build"),
        "RuntimeError",
        "NOTIFIER_CONFIG points at a file that does not exist",
        id="import-raises",
    ),
    pytest.param(
        ("deploy_no_such_module", "lambda_handler", "build"),
        "Runtime.ImportModuleError",
        "deploy_no_such_module",
        id="missing-module",
    ),
    pytest.param(
        ("deploy_handlers", "no_such_handler", "no_such_factory"),
        "Runtime.HandlerNotFound",
        "no_such_",
        id="missing-handler",
    ),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("handler", "error_type", "message"), INIT_FAILURES)
def test_init_error_reported_then_exit(
    runtime: Runtime,
    handler: tuple[str, str, str],
    error_type: str,
    message: str,
    runtime_api: FakeRuntimeAPI,
    start_runtime: StartRuntime,
) -> None:
    # GIVEN a handler that cannot be loaded
    # WHEN the runtime starts
    proc = start_runtime(runtime.argv(*runtime.handler(*handler)))

    # THEN it reports an init error in Lambda's shape and exits non-zero without polling
    init = runtime_api.wait_for("init_error")
    payload = init.json()
    assert payload["errorType"] == error_type
    assert message in payload["errorMessage"]
    assert isinstance(payload["stackTrace"], list)
    assert init.headers["lambda-runtime-function-error-type"] == error_type
    assert proc.wait(timeout=60) != 0
    assert runtime_api.next_calls == 0
