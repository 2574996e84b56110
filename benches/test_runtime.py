"""Per-invocation CPU of the two runtime paths the container image offers, on a 1,000-record
stream batch from ``notifier.samples``:

- standard (awslambdaric, the base image's runtime): the payload is parsed with its marshaller
  (simplejson) into dicts, then the handler decodes the dicts (the Rust decoder's dict path);
- custom (``python -m notifier.runtime``): the raw body bytes go straight to the Rust decoder.

Group ``runtime-decode-1000`` measures the decode step each path implies. Group
``runtime-invocation-1000`` measures everything the runtime does per invocation except the
network: awslambdaric's ``handle_event_request`` vs ``notifier.runtime.handle_one``, each with
the same decode-only handler and a client stub that just records the posted result. The timer
is ``time.process_time`` (CPU of this process). Both paths are first checked to give the same
records and the same response.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from notifier import ddb, runtime
from notifier.samples import make_stream_event

RECORDS = 1000
DEADLINE_MS = 4_102_444_800_000  # far in the future: 2100-01-01
REQUEST_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:notifier"


@pytest.fixture(scope="module")
def body() -> bytes:
    """The invocation payload exactly as the Runtime API delivers it."""
    return json.dumps(make_stream_event(RECORDS)).encode()


def handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    """Decode (dict or bytes) and report REMOVE records: the same work on both paths."""
    records = ddb.decode_stream_event(event, images="tree")
    return {
        "batchItemFailures": [
            {"itemIdentifier": r.sequence_number} for r in records if r.event_name == "REMOVE"
        ]
    }


def _fingerprint(records: list[Any]) -> list[tuple[Any, ...]]:
    return [(r.event_id, r.sequence_number, r.event_name, r.new_image) for r in records]


# -- the decode step ------------------------------------------------------------------------


def _standard_decode() -> Any:
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

    marshaller = LambdaMarshaller()
    return lambda body: ddb.decode_stream_event(
        marshaller.unmarshal_request(body, "application/json")
    )


DECODERS = {
    "awslambdaric": _standard_decode,
    "json.loads+dict": lambda: lambda body: ddb.decode_stream_event(json.loads(body)),
    "notifier": lambda: lambda body: ddb.decode_stream_event(body, images="tree"),
}


@pytest.mark.parametrize("lib", list(DECODERS))
@pytest.mark.benchmark(group=f"runtime-decode-{RECORDS}", timer=time.process_time)
def test_decode_step(benchmark: Any, body: bytes, lib: str) -> None:
    decode = DECODERS[lib]()
    # correctness first: every path yields the records the raw-bytes path yields
    expected = _fingerprint(ddb.decode_stream_event(body))
    assert len(expected) == RECORDS
    assert _fingerprint(decode(body)) == expected
    benchmark.extra_info["lib"] = lib
    benchmark(decode, body)


# -- the whole per-invocation runtime work (minus the network) -------------------------------


class _StandardClient:
    """What awslambdaric's handle_event_request talks to, minus the HTTP."""

    def __init__(self) -> None:
        from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

        self.marshaller = LambdaMarshaller()
        self.posted: list[bytes] = []

    def post_invocation_result(self, invoke_id: str, result: Any, *args: Any) -> None:
        self.posted.append(result if isinstance(result, bytes) else result.encode())

    def post_invocation_error(self, invoke_id: str, error: Any, *args: Any) -> None:
        raise AssertionError(f"handler failed: {error}")


class _CustomClient:
    """What notifier.runtime.handle_one talks to, minus the HTTP."""

    def __init__(self) -> None:
        self.posted: list[bytes] = []

    def post_response(self, request_id: str, payload: bytes) -> None:
        self.posted.append(payload)

    def post_error(self, request_id: str, error: Any) -> None:
        raise AssertionError(f"handler failed: {error}")


def _standard_invocation(body: bytes) -> tuple[Any, Any]:
    from awslambdaric import bootstrap

    client = _StandardClient()
    sink = bootstrap.StandardLogSink()

    def invoke() -> None:
        bootstrap.handle_event_request(
            client,
            handler,
            REQUEST_ID,
            body,
            "application/json",
            None,
            None,
            ARN,
            DEADLINE_MS,
            None,
            sink,
        )

    return invoke, client


def _custom_invocation(body: bytes) -> tuple[Any, Any]:
    client = _CustomClient()
    inv = runtime.Invocation(REQUEST_ID, body, DEADLINE_MS, ARN, None, None, None)
    return (lambda: runtime.handle_one(client, handler, inv)), client  # type: ignore[arg-type]


INVOCATIONS = {"awslambdaric": _standard_invocation, "notifier": _custom_invocation}


@pytest.mark.parametrize("lib", list(INVOCATIONS))
@pytest.mark.benchmark(group=f"runtime-invocation-{RECORDS}", timer=time.process_time)
def test_invocation(benchmark: Any, body: bytes, lib: str) -> None:
    invoke, client = INVOCATIONS[lib](body)
    # correctness first: the response posted is the batch's REMOVE records, on either path
    expected = handler(body, None)
    assert expected["batchItemFailures"]
    invoke()
    assert json.loads(client.posted[-1]) == expected
    benchmark.extra_info["lib"] = lib
    benchmark(invoke)
