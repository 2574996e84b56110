"""The real notifier handler under both runtime paths, with moto behind it over HTTP.

The runtime runs as a subprocess with the ``aws`` fixture's environment (every AWS client
pointed at the session's moto server) and ``AWS_LAMBDA_RUNTIME_API`` at the local Runtime API:
what the container does in Lambda, minus Lambda. Emails are read back from moto.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from lambda_runtime_api import CUSTOM, STANDARD, FakeRuntimeAPI, Runtime, StartRuntime

from notifier.local.moto_server import sent_emails
from notifier.samples import make_stream_event

REAL = ("notifier.handler", "lambda_handler", "build_handler")


@pytest.fixture
def provisioned(aws: str) -> dict[str, str]:
    """GIVEN the ledger table, the failure queue and a verified SES domain in moto."""
    ddb = boto3.client("dynamodb", endpoint_url=aws)
    ddb.create_table(
        TableName="notifier-ledger",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    url = boto3.client("sqs", endpoint_url=aws).create_queue(QueueName="notifier-failures")[
        "QueueUrl"
    ]
    boto3.client("sesv2", endpoint_url=aws).create_email_identity(EmailIdentity="example.com")
    return {
        "NOTIFIER_LEDGER_TABLE": "notifier-ledger",
        "NOTIFIER_FAILURE_QUEUE_URL": url,
        "NOTIFIER_SENDER": "notifications@example.com",
        "NOTIFIER_MAX_SEND_RATE": "1000",
    }


def _batch(n: int, start: int = 0) -> tuple[bytes, list[str]]:
    event = make_stream_event(n, users=7, start=start)
    recipients = [
        r["dynamodb"]["NewImage"]["user"]["M"]["email"]["S"]
        for r in event["Records"]
        if r["eventName"] == "INSERT"
    ]
    return json.dumps(event).encode(), recipients


def _recipients(aws: str) -> list[str]:
    out: list[str] = []
    for msg in sent_emails(aws):
        dest: Any = msg.get("destinations") or msg.get("destination") or {}
        out += dest.get("ToAddresses", []) if isinstance(dest, dict) else list(dest)
    return sorted(out)


def _serve(runtime: Runtime, start_runtime: StartRuntime, env: dict[str, str]) -> Any:
    return start_runtime(runtime.argv(*runtime.handler(*REAL)), **env)


def test_real_handler_sends_exactly_once_across_both_runtimes(
    aws: str,
    provisioned: dict[str, str],
    runtime_api: FakeRuntimeAPI,
    start_runtime: StartRuntime,
) -> None:
    # GIVEN the real handler under awslambdaric
    proc = _serve(STANDARD, start_runtime, provisioned)
    body, recipients = _batch(12)
    assert recipients
    # WHEN a real-format batch arrives
    first = runtime_api.result_for(runtime_api.invoke(body).request_id)
    # THEN every INSERT is emailed once and nothing is reported failed
    assert first.kind == "response", first.body
    assert first.json() == {"batchItemFailures": []}
    assert _recipients(aws) == sorted(recipients)
    proc.kill()
    proc.wait(timeout=30)

    # GIVEN the same handler now under the custom runtime (a new execution environment)
    _serve(CUSTOM, start_runtime, provisioned)
    # WHEN the same batch is redelivered, then a new one arrives
    again = runtime_api.result_for(runtime_api.invoke(body).request_id)
    body2, recipients2 = _batch(8, start=12)
    second = runtime_api.result_for(runtime_api.invoke(body2).request_id)
    # THEN the redelivery sends nothing new and the new batch is emailed once
    assert again.json() == {"batchItemFailures": []}
    assert second.json() == {"batchItemFailures": []}
    assert _recipients(aws) == sorted(recipients + recipients2)


@pytest.mark.parametrize("runtime", [STANDARD, CUSTOM], ids=["awslambdaric", "notifier"])
def test_real_handler_config_error_is_reported(
    runtime: Runtime,
    provisioned: dict[str, str],
    runtime_api: FakeRuntimeAPI,
    start_runtime: StartRuntime,
    tmp_path: Any,
) -> None:
    # GIVEN a routing config that does not exist
    env = {**provisioned, "NOTIFIER_CONFIG": str(tmp_path / "missing.toml")}
    _serve(runtime, start_runtime, env)
    body, _ = _batch(3)
    inv = runtime_api.invoke(body)
    # WHEN the runtime starts (custom: builds the handler at init) or the first event
    # arrives (awslambdaric: lambda_handler builds it lazily)
    posted = (
        runtime_api.wait_for("init_error")
        if runtime is CUSTOM
        else runtime_api.result_for(inv.request_id)
    )
    # THEN the failure is reported in Lambda's error shape, naming the file
    payload = posted.json()
    assert set(payload) >= {"errorMessage", "errorType", "stackTrace"}
    assert "missing.toml" in payload["errorMessage"]
