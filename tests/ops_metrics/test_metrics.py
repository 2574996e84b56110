"""Per-batch EMF metrics (notifier.metrics) and masked log lines (notifier.logs)."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from notifier.logs import mask_email, redact
from notifier.metrics import (
    MAX_DIMENSIONS,
    MAX_METRICS,
    METRICS,
    EmfWriter,
    MetricsConfigError,
    from_env,
)
from notifier.pipeline import STAT_KEYS

CONFIG = """
[channels.memo]
kind = "memory"

[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
channel = "memo"
"""


def _stats() -> dict[str, int]:
    return {k: i + 1 for i, k in enumerate(STAT_KEYS)}


def test_one_batch_is_one_valid_emf_line() -> None:
    # GIVEN a writer on a buffer and a batch's stats
    buf = io.StringIO()
    writer = EmfWriter(
        namespace="Notifier",
        dimensions={"FunctionName": "fn"},
        stream=buf,
        clock=lambda: 1700000000.5,
    )
    stats = _stats()
    # WHEN one batch is written
    writer(stats, 0.25)
    # THEN it is exactly one JSON line whose _aws block declares every metric it carries
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert doc["_aws"]["Timestamp"] == 1700000000500
    assert directive["Namespace"] == "Notifier"
    assert directive["Dimensions"] == [["FunctionName"]]
    assert doc["FunctionName"] == "fn"
    names = [m["Name"] for m in directive["Metrics"]]
    assert all(name in doc for name in names)
    assert len(names) <= MAX_METRICS
    # AND every stats counter the brief names is there with its value, plus the latency
    for key, (name, unit) in METRICS.items():
        assert doc[name] == stats[key], key
        assert {"Name": name, "Unit": unit} in directive["Metrics"]
    assert doc["BatchLatency"] == 250.0
    assert {"Name": "BatchLatency", "Unit": "Milliseconds"} in directive["Metrics"]


def test_every_stat_key_becomes_a_metric() -> None:
    # GIVEN the pipeline's stats keys WHEN mapped THEN none is dropped silently
    assert set(STAT_KEYS) <= set(METRICS)


def test_too_many_dimensions_is_refused() -> None:
    # GIVEN one dimension more than CloudWatch accepts WHEN a writer is built THEN it refuses
    dims = {f"D{i}": "x" for i in range(MAX_DIMENSIONS + 1)}
    with pytest.raises(MetricsConfigError, match="at most 30"):
        EmfWriter(dimensions=dims)


def test_more_than_100_metrics_split_into_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 150 counters (more than one EMF line may carry)
    many = {f"k{i}": (f"M{i}", "Count") for i in range(150)}
    monkeypatch.setattr("notifier.metrics.METRICS", many)
    writer = EmfWriter(stream=io.StringIO())
    # WHEN written
    lines = writer.lines({f"k{i}": i for i in range(150)}, 0.1)
    # THEN each line carries at most 100 metrics and together they carry all 151
    docs = [json.loads(line) for line in lines]
    counts = [len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for d in docs]
    assert max(counts) <= MAX_METRICS
    assert sum(counts) == 151


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"NOTIFIER_METRICS": "off", "AWS_LAMBDA_FUNCTION_NAME": "fn"}, None),
        ({"AWS_LAMBDA_FUNCTION_NAME": "fn"}, "fn"),
        ({"NOTIFIER_METRICS": "emf"}, "notifier"),
    ],
)
def test_metrics_are_on_in_lambda_and_off_locally(
    env: dict[str, str], expected: str | None
) -> None:
    # GIVEN an environment WHEN the writer is chosen THEN it is on in Lambda or when asked
    writer = from_env(env)
    if expected is None:
        assert writer is None
    else:
        assert writer is not None
        assert writer.dimensions == {"FunctionName": expected}


def test_bad_metrics_mode_names_the_variable() -> None:
    with pytest.raises(MetricsConfigError, match="NOTIFIER_METRICS"):
        from_env({"NOTIFIER_METRICS": "statsd"})


def test_email_addresses_are_masked() -> None:
    # GIVEN a log record with an address in a value WHEN redacted THEN no full address remains
    out = redact({"message": "bounce for alice.smith@example.co.uk", "sent": 3})
    assert "alice.smith" not in out["message"]
    assert "example" not in out["message"]
    assert out["message"].endswith("a***@***.uk")
    assert out["sent"] == 3
    assert mask_email("no address here") == "no address here"


# --------------------------------------------------------------------- through the handler


@pytest.fixture
def handler_env(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName="notifier-ledger",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    url = boto3.client("sqs").create_queue(QueueName="notifier-failures")["QueueUrl"]
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("NOTIFIER_METRICS", "emf")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stack-notifier")
    return {"config": str(config), "queue_url": url}


class _Ctx:
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_handler_writes_one_emf_line_and_one_summary_per_batch(
    handler_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from notifier.handler import build_handler
    from notifier.samples import make_stream_record
    from notifier.settings import Settings

    # GIVEN a handler built in a Lambda-like environment, and a batch of 5 records
    settings = Settings(
        config_path=handler_env["config"], failure_queue_url=handler_env["queue_url"]
    )
    records: list[dict[str, Any]] = [
        make_stream_record(i, seed=1, users=3, event_name="INSERT") for i in range(5)
    ]
    for r in records:
        r["dynamodb"]["ApproximateCreationDateTime"] = int(time.time())
    with build_handler(settings) as handler, caplog.at_level(logging.INFO, logger="notifier"):
        capsys.readouterr()
        # WHEN it handles the batch
        handler({"Records": records}, _Ctx())
    # THEN stdout holds one service-level EMF line whose counters match the batch's summary
    # log line, and one line per (channel, event type) whose counters add up to it
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    service = [e for e in emf if "Channel" not in e]
    per_route = [e for e in emf if "Channel" in e]
    assert len(service) == 1
    assert per_route
    assert {e["Channel"] for e in per_route} == {"memo"}
    assert sum(e["Sent"] for e in per_route) == service[0]["Sent"]
    assert all(
        e["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        == [["FunctionName", "Channel", "EventType"], ["FunctionName", "Channel"]]
        for e in per_route
    )
    assert 0 <= service[0]["RecordAge"] < 600
    emf = service
    summaries = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.getMessage().startswith('{"message":"batch"')
    ]
    assert len(summaries) == 1
    assert emf[0]["FunctionName"] == "stack-notifier"
    assert emf[0]["Records"] == summaries[0]["records"] == 5
    assert emf[0]["Sent"] == summaries[0]["sent"] == 5
    assert emf[0]["LedgerWriteUnits"] == summaries[0]["write_units"] > 0
    # AND the summary line holds no e-mail address
    assert "@" not in json.dumps(summaries[0])


def test_a_failing_metrics_writer_does_not_fail_the_batch(
    handler_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from notifier.handler import build_handler
    from notifier.samples import make_stream_record
    from notifier.settings import Settings

    # GIVEN a handler whose metrics writer raises (stdout closed, a bug, ...)
    settings = Settings(
        config_path=handler_env["config"], failure_queue_url=handler_env["queue_url"]
    )

    def broken(stats: Any, seconds: float) -> None:
        raise OSError("stdout is gone for bob@example.com")

    record = make_stream_record(0, seed=2, users=1, event_name="INSERT")
    record["dynamodb"]["ApproximateCreationDateTime"] = int(time.time())
    with build_handler(settings) as handler, caplog.at_level(logging.WARNING, logger="notifier"):
        handler.pipeline.metrics = broken
        # WHEN a batch runs
        response = handler({"Records": [record]}, _Ctx())
    # THEN the batch succeeds, and one warning says why no metrics were written, masked
    assert response == {"batchItemFailures": []}
    assert handler.stats["sent"] == 1
    warnings = [r.getMessage() for r in caplog.records if "metrics not written" in r.getMessage()]
    assert len(warnings) == 1
    assert "bob@example.com" not in warnings[0]
