"""Helpers for the operator-command tests: the CLI in-process, read-backs from moto."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import boto3

from notifier.cli import main
from notifier.local.moto_server import sent_emails

PIPELINE_TEMPLATES = Path(__file__).parents[1] / "pipeline" / "templates"

CONFIG = """
event_type_path = "event_type"

[delivery]
lease_grace_seconds = 0.5
max_attempts = 3
base_delay_ms = 1
max_delay_ms = 20
deadline_margin_ms = 300

[channels.email]
kind = "email"
max_send_rate = 2000

[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
channel = "email"
"""

#: A subject template that fails to render (an attribute of an undefined value).
BROKEN = "{{ user.name }} {{ data.no_such_thing.deeper }}"


class Ctx:
    def __init__(self, remaining_ms: float = 60_000) -> None:
        import time

        self._deadline = time.monotonic() + remaining_ms / 1000.0
        self.aws_request_id = "req-ops"
        self.function_name = "notifier"

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


def cli(*argv: str) -> tuple[int, str, str]:
    """Run ``notifier <argv>`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def queue_bodies(url: str) -> list[dict[str, Any]]:
    """Every message on the queue (read, then made visible again)."""
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    handles: list[str] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        got = msgs.get("Messages", [])
        if not got:
            break
        for m in got:
            bodies.append(json.loads(m["Body"]))
            handles.append(m["ReceiptHandle"])
    for h in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=h, VisibilityTimeout=0)
    return bodies


def ledger_state(table: str, key: str) -> str | None:
    item = (
        boto3.client("dynamodb")
        .get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
        .get("Item")
    )
    return item["state"]["S"] if item else None


def emails_to(endpoint: str) -> list[str]:
    """Recipients of every email moto accepted, one entry per email."""
    out: list[str] = []
    for m in sent_emails(endpoint):
        dest = m.get("destinations") or m.get("destination") or {}
        if isinstance(dest, dict):
            out.extend(dest.get("ToAddresses", []))
        elif isinstance(dest, list):
            out.extend(dest)
    return out


def emails_per_event(endpoint: str) -> dict[str, int]:
    """How many emails moto accepted per event id (the test templates print the event id)."""
    import re

    counts: dict[str, int] = {}
    for m in sent_emails(endpoint):
        for eid in set(re.findall(r"evt-\d{4}-\d{9}", json.dumps(m))):
            counts[eid] = counts.get(eid, 0) + 1
    return counts
