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
from notifier.pipeline import BatchFailedError

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
    # GIVEN a handler process that claimed a 12-record batch and died before sending
    config = write_config()
    event = stream_event(12)
    _crash(config, event, provisioned["queue_url"], "after_claim", tmp_path)
    assert sent_emails(provisioned["endpoint"]) == []
    assert {v["state"] for v in ledger_items().values()} == {"PENDING"}
    handler = make_handler(config)
    # WHEN Lambda redelivers while the dead claims' leases are live
    # THEN every record is in flight: the handler raises so the batch comes back later
    with pytest.raises(BatchFailedError):
        handler(event, FakeContext(request_id="retry-1"))
    assert sent_emails(provisioned["endpoint"]) == []
    # WHEN it redelivers after the leases expired
    _later(handler, 60)
    response = handler(event, FakeContext(request_id="retry-2"))
    # THEN exactly one email per record, and all SENT
    assert response == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == 12
    assert {v["state"] for v in ledger_items().values()} == {"SENT"}


@pytest.mark.parametrize(("policy", "emails"), [("retry", 24), ("assume_sent", 12)])
def test_killed_between_send_and_commit_follows_the_unknown_outcome_policy(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    tmp_path: Path,
    policy: str,
    emails: int,
) -> None:
    # GIVEN a handler process that sent a 12-record batch and died before committing
    config = write_config(unknown_outcome=policy)
    event = stream_event(12)
    _crash(config, event, provisioned["queue_url"], "after_send", tmp_path)
    assert len(sent_emails(provisioned["endpoint"])) == 12
    assert {v["state"] for v in ledger_items().values()} == {"SENDING"}
    # WHEN Lambda redelivers after the leases expired
    handler = make_handler(config)
    _later(handler, 60)
    response = handler(event, FakeContext(request_id="retry-1"))
    # THEN nothing is lost; "retry" re-sends (the documented duplicate window, at-least-once),
    # "assume_sent" records the sends as unknown and sends nothing more (at-most-once)
    assert response == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == emails
    items = ledger_items().values()
    assert {v["state"] for v in items} == {"SENT"}
    unknown = sum(1 for v in items if v.get("outcome") == "unknown")
    assert unknown == (12 if policy == "assume_sent" else 0)
    # AND a further redelivery is a no-op
    handler(event, FakeContext(request_id="retry-2"))
    assert len(sent_emails(provisioned["endpoint"])) == emails
