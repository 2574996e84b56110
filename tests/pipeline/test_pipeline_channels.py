"""The channel seam and the registry: new kinds plug in by config, mistakes are ConfigErrors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import FakeContext, ledger_items

from notifier.config import ConfigError
from notifier.failures import Failure, FailureQueue, Published
from notifier.handler import Handler
from notifier.local.moto_server import sent_emails
from notifier.retry import Deadline

PAGER_CONFIG = """
[channels.email]
kind = "email"
max_send_rate = 1000

[channels.pager]
kind = "pager_channel:build"
prefix = "!"

[[routes]]
event_types = ["friend_request"]
channel = "email"

[[routes]]
event_types = ["friend_request"]
channel = "pager"
recipient = "user.id"
"""


def test_a_channel_kind_from_another_package_plugs_in_by_config(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN friend requests routed to email AND to a pager channel defined outside notifier
    handler = make_handler(write_config(text=PAGER_CONFIG))
    event = stream_event(9)  # types cycle: records 1, 4, 7 are friend requests
    # WHEN handled twice
    handler(event, FakeContext())
    handler(event, FakeContext())
    # THEN each friend request went out once per channel, with the pager's own recipient
    pager: Any = handler.channels["pager"]
    users = [event["Records"][i]["dynamodb"]["NewImage"]["user"]["M"]["id"]["S"] for i in (1, 4, 7)]
    assert sorted(r for r, _ in pager.pages) == sorted(users)
    assert all(text.startswith("!Hello") for _, text in pager.pages)
    assert len(sent_emails(provisioned["endpoint"])) == 3
    assert sorted(k.split("#")[0] for k in ledger_items()) == ["email"] * 3 + ["pager"] * 3
    assert handler.stats["skipped"] == 12  # 6 records x 2 calls are other event types


@pytest.mark.parametrize(
    ("kind", "message"),
    [("carrier-pigeon", "unknown"), ("no_such_module:build", "cannot import")],
)
def test_unknown_channel_kinds_fail_at_start_up(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    kind: str,
    message: str,
) -> None:
    # GIVEN a config naming a channel kind nobody provides
    text = PAGER_CONFIG.replace('"pager_channel:build"', json.dumps(kind))
    # WHEN the handler is built THEN a ConfigError names the channel
    with pytest.raises(ConfigError, match=message):
        make_handler(write_config(text=text))


def test_bad_email_options_fail_at_start_up(
    make_handler: Callable[..., Handler], write_config: Callable[..., Path]
) -> None:
    # GIVEN an email channel option of the wrong type WHEN built THEN ConfigError
    text = PAGER_CONFIG.replace("max_send_rate = 1000", 'max_send_rate = "fast"')
    with pytest.raises(ConfigError, match="max_send_rate"):
        make_handler(write_config(text=text))


def test_a_record_in_flight_elsewhere_is_reported_not_dropped(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN another live invocation holding the claim of record 2's notification
    handler = make_handler()
    event = stream_event(5)
    key = "email#" + event["Records"][2]["dynamodb"]["NewImage"]["event_id"]["S"]
    handler.run(  # on the handler's own loop and client
        handler.ledger.claim(
            key,
            owner="someone-else",
            lease_until=handler.ledger.clock() + 300,
            deadline=Deadline.after(30),
            takeover_unknown=True,
        )
    )
    # WHEN the batch is handled
    response = handler(event, FakeContext())
    # THEN the other four are sent and only record 2 is reported (Lambda resumes there)
    seq = event["Records"][2]["dynamodb"]["SequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": seq}]}
    assert len(sent_emails(provisioned["endpoint"])) == 4
    assert handler.stats["in_flight"] == 1
    assert ledger_items()[key]["owner"] == "someone-else"


class _FakeSqs:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    async def send_message_batch(self, QueueUrl: str, Entries: list[Any]) -> dict[str, Any]:
        self.batches.append(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_failure_messages_are_batched_by_count_and_size_and_huge_records_truncated() -> None:
    # GIVEN 23 failures, one of them carrying a 300 kB record
    failures = [
        Failure(reason="r", error_code="E", record=json.dumps({"i": i}), sequence_number=str(i))
        for i in range(23)
    ]
    failures[5] = Failure(reason="r", error_code="E", record="x" * 300_000)
    sqs = _FakeSqs()
    queue = FailureQueue(sqs, queue_url="http://queue")
    # WHEN published
    ok = asyncio.run(queue.publish(failures, Deadline.after(10)))
    # THEN all are confirmed, in batches of at most 10 and under the request size limit
    assert ok == [Published.OK] * 23
    assert sum(len(b) for b in sqs.batches) == 23
    assert all(len(b) <= 10 for b in sqs.batches)
    assert all(sum(len(e["MessageBody"].encode()) for e in b) <= 256 * 1024 for b in sqs.batches)
    # AND the huge record was truncated to fit and flagged with its size, the others kept whole
    bodies = [json.loads(e["MessageBody"]) for b in sqs.batches for e in b]
    huge = [b for b in bodies if b.get("record_truncated")]
    assert len(huge) == 1
    assert huge[0]["record_bytes"] == 300_000
    assert 200_000 < len(huge[0]["record"]) < 240_000
    assert {b["record"] for b in bodies if not b.get("record_truncated")} == {
        json.dumps({"i": i}) for i in range(23) if i != 5
    }
