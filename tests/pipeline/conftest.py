"""Fixtures for the pipeline tests: provisioned embedded AWS, configs, handlers, contexts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pipeline_helpers import LEDGER, QUEUE, TEMPLATES

from notifier.handler import Handler, build_handler
from notifier.samples import make_stream_record
from notifier.settings import Settings

BASE_CONFIG = """
event_type_path = "event_type"

[delivery]
unknown_outcome = "{unknown_outcome}"
lease_grace_seconds = 0.5
max_attempts = {max_attempts}
base_delay_ms = 1
max_delay_ms = 20
deadline_margin_ms = {margin_ms}

[channels.email]
kind = "email"
max_send_rate = {rate}

[channels.memo]
kind = "memory"

[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
channel = "email"

[[routes]]
event_types = ["broken"]
channel = "email"

[[routes]]
event_types = ["memo"]
channel = "memo"
template = "profile_view"
"""


@pytest.fixture
def provisioned(aws: str) -> dict[str, str]:
    """GIVEN the ledger table, the failure queue and a verified SES domain in moto."""
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=LEDGER,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=LEDGER,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    url = boto3.client("sqs").create_queue(QueueName=QUEUE)["QueueUrl"]
    boto3.client("sesv2").create_email_identity(EmailIdentity="example.com")
    return {"endpoint": aws, "queue_url": url}


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(
        *,
        unknown_outcome: str = "retry",
        max_attempts: int = 8,
        margin_ms: float = 300,
        rate: float = 2000,
        text: str | None = None,
    ) -> Path:
        path = tmp_path / f"config-{time.monotonic_ns()}.toml"
        body = (
            text
            if text is not None
            else BASE_CONFIG.format(
                unknown_outcome=unknown_outcome,
                max_attempts=max_attempts,
                margin_ms=margin_ms,
                rate=rate,
            )
        )
        path.write_text(body, encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_handler(
    provisioned: dict[str, str], write_config: Callable[..., Path]
) -> Iterator[Callable[..., Handler]]:
    built: list[Handler] = []

    def make(config: Path | None = None, *, aws_clients: str = "fast", **kwargs: Any) -> Handler:
        settings = Settings(
            config_path=str(config or write_config()),
            templates_dir=str(TEMPLATES),
            failure_queue_url=provisioned["queue_url"],
            max_concurrency=16,
            aws_clients=aws_clients,
        )
        h = build_handler(settings, **kwargs)
        built.append(h)
        return h

    yield make
    for h in built:
        h.close()


@pytest.fixture
def stream_event() -> Callable[..., dict[str, Any]]:
    """Factory: a real-shaped INSERT batch of ``n`` records, optionally retyping some."""

    def make(n: int, *, seed: int = 0, types: dict[int, str] | None = None) -> dict[str, Any]:
        records = [make_stream_record(i, seed=seed, users=7, event_name="INSERT") for i in range(n)]
        for i, t in (types or {}).items():
            records[i]["dynamodb"]["NewImage"]["event_type"] = {"S": t}
        now = int(time.time())  # written just now: far from the stream's retention
        for r in records:
            r["dynamodb"]["ApproximateCreationDateTime"] = now
        return {"Records": records}

    return make
