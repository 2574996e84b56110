"""unknown_outcome = "reconcile", end to end: lost SES replies settled by SES's own events.

The real handler sends through the fault proxy, which drops 10% of SES's replies after the
email was sent; the proxy's send observer is the local emulation of SES event publishing
(moto publishes none), which puts SES's Send/Delivery events on an SQS queue as SNS would.
The SES events handler consumes that queue; the reconcile run consumes the reconcile queue.
Under "retry" every lost reply is an email sent twice; under "reconcile" none is, and none is
lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from notifier.handler import Handler, build_handler
from notifier.local.faults import FaultPlan, FaultProxy, sesv2_endpoint
from notifier.local.moto_server import sent_emails
from notifier.local.ses_event_emulator import SesEventEmulator, SqsSink
from notifier.reconcile import run as reconcile_run
from notifier.samples import make_stream_record
from notifier.ses_events import build_ses_events_handler
from notifier.settings import Settings

# Multi-process / timing-heavy: run on the main interpreter in CI, not on every CPython
# (.ci/test-pythons runs -m "not slow"; the fast suite covers the same code on each).
pytestmark = pytest.mark.slow

LEDGER = "notifier-ledger"
RECORDS = 80

CONFIG = """
[delivery]
unknown_outcome = "{policy}"
reconcile_seconds = 5
lease_grace_seconds = 0.5
base_delay_ms = 1
max_delay_ms = 20

[channels.email]
kind = "email"
max_send_rate = 1000

[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
channel = "email"
"""


class _Ctx:
    aws_request_id = "req-reconcile"

    def __init__(self, seconds: float = 60.0) -> None:
        self._deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _drain(queue_url: str, *, wait_s: int = 1) -> list[dict[str, Any]]:
    """Every message on the queue, deleted, as Lambda's SQS event records."""
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        resp = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s
        )
        msgs = resp.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append({"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def provisioned(aws: str) -> dict[str, str]:
    """The ledger, the failure queue and a verified SES domain in moto."""
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=LEDGER,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    url = boto3.client("sqs").create_queue(QueueName="notifier-failures")["QueueUrl"]
    boto3.client("sesv2").create_email_identity(EmailIdentity="example.com")
    return {"endpoint": aws, "queue_url": url}


@pytest.fixture
def world(provisioned: dict[str, str]) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs")
    events_url = sqs.create_queue(QueueName="ses-events")["QueueUrl"]
    reconcile_url = sqs.create_queue(QueueName="notifier-reconcile")["QueueUrl"]
    emulator = SesEventEmulator(SqsSink(events_url, boto3.client("sqs")))
    plan = FaultPlan(response_lost_rate=0.1, seed=7)
    with (
        FaultProxy(provisioned["endpoint"], plan, send_observer=emulator.observe_send) as proxy,
        sesv2_endpoint(proxy.url),
    ):
        yield {
            **provisioned,
            "events_url": events_url,
            "reconcile_url": reconcile_url,
            "proxy": proxy,
        }


@pytest.fixture
def make(world: dict[str, Any], tmp_path: Path) -> Iterator[Callable[[str], Handler]]:
    built: list[Handler] = []

    def make_handler(policy: str) -> Handler:
        config = tmp_path / f"{policy}.toml"
        config.write_text(CONFIG.format(policy=policy), encoding="utf-8")
        h = build_handler(
            Settings(
                config_path=str(config),
                failure_queue_url=world["queue_url"],
                reconcile_queue_url=world["reconcile_url"],
                max_concurrency=16,
            )
        )
        built.append(h)
        return h

    yield make_handler
    for h in built:
        h.close()


def _event() -> dict[str, Any]:
    records = [make_stream_record(i, seed=3, users=40, event_name="INSERT") for i in range(RECORDS)]
    now = int(time.time())
    for r in records:
        r["dynamodb"]["ApproximateCreationDateTime"] = now
    return {"Records": records}


def _states() -> dict[str, int]:
    items = boto3.client("dynamodb").scan(TableName=LEDGER, ConsistentRead=True)["Items"]
    out: dict[str, int] = {}
    for i in items:
        out[i["state"]["S"]] = out.get(i["state"]["S"], 0) + 1
    return out


def test_lost_replies_are_settled_by_ses_events_not_resent(
    make: Callable[[str], Handler], world: dict[str, Any]
) -> None:
    # GIVEN the reconcile policy, and 10% of SES's replies lost after the email was sent
    handler = make("reconcile")
    event = _event()
    # WHEN the batch is handled
    assert handler(event, _Ctx()) == {"batchItemFailures": []}
    lost = world["proxy"].counts["response_lost"]
    assert lost > 0
    # THEN every lost reply is parked UNKNOWN (not resent), its record on the reconcile queue
    assert handler.stats["reconciling"] == lost
    assert _states() == {"SENT": RECORDS - lost, "UNKNOWN": lost}
    assert len(sent_emails(world["endpoint"])) == RECORDS
    # WHEN SES's events (emulated: moto publishes none) are consumed
    with build_ses_events_handler(
        environ={"NOTIFIER_LEDGER_TABLE": LEDGER}, preferences=_NoPreferences()
    ) as ses_events:
        assert ses_events({"Records": _drain(world["events_url"])}, None) == {
            "batchItemFailures": []
        }
    # THEN the Send events proved every parked send: all SENT, with SES's message ids
    assert _states() == {"SENT": RECORDS}
    # WHEN the reconcile queue's messages come due (5 s) and run
    due: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(due) < lost and time.monotonic() < deadline:
        due += _drain(world["reconcile_url"], wait_s=2)
    assert len(due) == lost
    assert reconcile_run(handler, {"Records": due}, _Ctx()) == {"batchItemFailures": []}
    # THEN nothing was sent twice and nothing is lost
    assert len(sent_emails(world["endpoint"])) == RECORDS
    assert handler.stats["reconciled"] == lost


def test_without_evidence_a_parked_send_is_resent_once_when_due(
    make: Callable[[str], Handler], world: dict[str, Any]
) -> None:
    # GIVEN parked unknown sends whose events never arrive (the events queue is dropped)
    handler = make("reconcile")
    event = _event()
    handler(event, _Ctx())
    lost = world["proxy"].counts["response_lost"]
    _drain(world["events_url"])  # SES's events lost too: no evidence
    # WHEN the stream redelivers the batch before they are due (the handler's clocks held a
    # minute back, so a loaded machine cannot make them due meanwhile)
    handler.pipeline.clock = handler.pipeline.ledger.clock = lambda: time.time() - 60
    assert handler(event, _Ctx()) == {"batchItemFailures": []}
    handler.pipeline.clock = handler.pipeline.ledger.clock = time.time
    # THEN nothing is sent again (the parked ones are queued again, harmlessly)
    assert len(sent_emails(world["endpoint"])) == RECORDS
    # WHEN a reconcile message is run before it is due, it stays on the queue
    early = _drain(world["reconcile_url"], wait_s=0)
    assert early == []  # delayed by reconcile_seconds
    due: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(due) < 2 * lost and time.monotonic() < deadline:
        due += _drain(world["reconcile_url"], wait_s=2)
    # AND when due, each parked send is resent exactly once (two messages, one send each)
    world["proxy"].plan = FaultPlan(seed=1)  # no more lost replies
    assert reconcile_run(handler, {"Records": due}, _Ctx()) == {"batchItemFailures": []}
    assert _states() == {"SENT": RECORDS}
    assert len(sent_emails(world["endpoint"])) == RECORDS + lost


class _NoPreferences:
    async def suppress(self, user_id: str, address: str, reason: str) -> None:
        return None

    async def opt_out(self, user_id: str, category: str, channel: str = "*") -> None:
        return None
