"""A handler killed mid-batch (in a subprocess) loses nothing after lease expiry + redelivery."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import FakeContext, ledger_items

from notifier.handler import Handler
from notifier.local.moto_server import sent_emails

WORKER = Path(__file__).with_name("crash_worker.py")


def _crash(config: Path, event: dict[str, Any], queue_url: str, point: str, tmp: Path) -> None:
    event_file = tmp / "event.json"
    event_file.write_text(json.dumps(event))
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(config), str(event_file), queue_url, point],
        cwd=WORKER.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 17, proc.stderr[-2000:]


def _settled_emails(endpoint: str) -> int:
    """Emails moto accepted once it has finished the requests the dead process left on the
    wire (they were written before the kill; moto's threads may still be handling them)."""
    count = len(sent_emails(endpoint))
    for _ in range(50):
        time.sleep(0.1)
        again = len(sent_emails(endpoint))
        if again == count:
            return count
        count = again
    return count


def _later(handler: Handler, seconds: float) -> None:
    """Move the handler's wall clock forward (past every lease) without sleeping."""
    handler.pipeline.clock = lambda: time.time() + seconds
    handler.pipeline.ledger.clock = lambda: time.time() + seconds


def test_killed_between_claim_and_send_loses_nothing(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    tmp_path: Path,
) -> None:
    # GIVEN a handler process (8 send slots) that died right after its first claim was written
    config = write_config()
    event = stream_event(12)
    _crash(config, event, provisioned["queue_url"], "after_claim", tmp_path)
    assert sent_emails(provisioned["endpoint"]) == []
    claimed = ledger_items()
    # THEN at most the claims in its send slots exist, and nothing was sent
    assert 1 <= len(claimed) <= 8
    assert {v["state"] for v in claimed.values()} == {"SENDING"}
    handler = make_handler(config)
    # WHEN Lambda redelivers while the dead claims' leases are live
    response = handler(event, FakeContext(request_id="retry-1"))
    # THEN the unclaimed records are sent and only the claimed ones are reported
    reported = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert len(reported) == len(claimed)
    assert len(sent_emails(provisioned["endpoint"])) == 12 - len(claimed)
    # WHEN it redelivers after the leases expired (policy "retry": an expired claim is taken over)
    _later(handler, 60)
    response = handler(event, FakeContext(request_id="retry-2"))
    # THEN exactly one email per record, and all SENT
    assert response == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == 12
    assert {v["state"] for v in ledger_items().values()} == {"SENT"}


@pytest.mark.parametrize("policy", ["retry", "assume_sent"])
def test_killed_between_send_and_commit_exposes_only_the_sends_in_flight(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    tmp_path: Path,
    policy: str,
) -> None:
    # GIVEN a handler process (8 send slots) that died when its first send was answered
    config = write_config(unknown_outcome=policy)
    event = stream_event(12)
    _crash(config, event, provisioned["queue_url"], "after_send", tmp_path)
    first = _settled_emails(provisioned["endpoint"])
    dead = ledger_items()
    # THEN only claims in its slots are unsettled (SENDING), at most the 8 slots
    unsettled = [k for k, v in dead.items() if v["state"] == "SENDING"]
    assert 1 <= len(unsettled) <= 8
    assert 1 <= first <= 8
    # WHEN Lambda redelivers after the leases expired, until the batch is done
    handler = make_handler(config)
    _later(handler, 60)
    response = handler(event, FakeContext(request_id="retry-1"))
    assert response == {"batchItemFailures": []}
    emails = sent_emails(provisioned["endpoint"])
    items = ledger_items().values()
    assert {v["state"] for v in items} == {"SENT"}
    unknown = sum(1 for v in items if v.get("outcome") == "unknown")
    if policy == "retry":
        # THEN nothing is lost; only the unsettled claims may be sent twice (at-least-once)
        assert 12 <= len(emails) <= 12 + len(unsettled)
        assert unknown == 0
    else:
        # THEN nothing is sent twice: the records never claimed are sent once, the unsettled
        # claims are recorded as unknown sends (a claim whose send never left is the loss)
        assert len(emails) == first + 12 - len(dead)
        assert unknown == len(unsettled)
    # AND a further redelivery is a no-op
    handler(event, FakeContext(request_id="retry-2"))
    assert len(sent_emails(provisioned["endpoint"])) == len(emails)
