"""The demo's deliverability loop: SES's events (emulated), preferences, and the reconcile run.

moto publishes no SES events, so the demo emulates SES's event publishing
(:class:`~notifier.local.ses_event_emulator.SesEventEmulator` behind the fault proxy's send
observer: every send moto accepted, including those whose reply the proxy then dropped) onto
the events queue, as an SNS subscription would deliver them in AWS. After every invocation of
the emulated ESM the demo runs the real SES events handler (``notifier.ses_events``) over
that queue: permanent bounces and complaints suppress their addresses, and a Send event
settles a parked unknown send. When the stream is drained it runs the reconcile queue's
messages through the real reconcile run (``notifier.reconcile``) as they come due.

With ``--preferences`` the demo also seeds the preferences table (every seventh user opted
out of profile views by email) and gives some users the SES mailbox simulator's addresses
(``bounce+...@simulator.amazonses.com`` for every eleventh, ``complaint+...`` for every
thirteenth), so the summary shows opt-outs and suppressions at work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoDeliverability"]

SIMULATOR = "simulator.amazonses.com"


@dataclass
class DemoDeliverability:
    events_queue_url: str
    reconcile_queue_url: str
    ledger_table: str
    preferences_table: str
    preferences: bool = False
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "events_applied": 0,
            "reconciled_by_events": 0,
            "addresses_suppressed": 0,
            "complaint_opt_outs": 0,
            "reconcile_runs": 0,
            "resent_when_due": 0,
        }
    )
    _events: Any = None
    emulator: Any = None

    def __post_init__(self) -> None:
        from notifier.local.provision import aws_client
        from notifier.local.ses_event_emulator import SesEventEmulator, SqsSink

        self.emulator = SesEventEmulator(SqsSink(self.events_queue_url, aws_client("sqs")))

    # -- set-up -------------------------------------------------------------------------------

    def seed(self, users: int) -> None:
        """Opt every seventh user out of profile views by email (``--preferences``)."""
        if not self.preferences:
            return
        from notifier.local.provision import aws_client

        ddb = aws_client("dynamodb")
        for uid in range(6, users, 7):
            ddb.update_item(
                TableName=self.preferences_table,
                Key={"pk": {"S": f"USER#{uid}"}},
                UpdateExpression="ADD opt_outs :o",
                ExpressionAttributeValues={":o": {"SS": ["profile_view:email"]}},
            )

    def decorate(self, item: dict[str, Any]) -> dict[str, Any]:
        """Mailbox-simulator addresses for some users (``--preferences``)."""
        user = item.get("user")
        if not self.preferences or not isinstance(user, dict):
            return item
        uid = int(user.get("id", 0))
        if uid % 11 == 10:
            user["email"] = f"bounce+user-{uid}@{SIMULATOR}"
        elif uid % 13 == 12:
            user["email"] = f"complaint+user-{uid}@{SIMULATOR}"
        return item

    # -- the loop -----------------------------------------------------------------------------

    def _handler(self) -> Any:
        if self._events is None:
            from notifier.ses_events import build_ses_events_handler

            self._events = build_ses_events_handler(
                environ={
                    "NOTIFIER_LEDGER_TABLE": self.ledger_table,
                    "NOTIFIER_PREFERENCES_TABLE": self.preferences_table,
                }
            )
        return self._events

    def consume_events(self) -> None:
        """Run the SES events handler over everything on the events queue."""
        from notifier.retry import Deadline

        handler = self._handler()
        while True:
            records = _receive(self.events_queue_url, wait_s=0)
            if not records:
                return
            report = handler.run(handler.processor.run({"Records": records}, Deadline.after(60)))
            self.counts["events_applied"] += report.applied
            self.counts["reconciled_by_events"] += report.outcomes.get("reconciled", 0)
            self.counts["addresses_suppressed"] += report.suppressed
            self.counts["complaint_opt_outs"] += report.opted_out

    def reconcile(self, handler: Any, expected: int, reconcile_seconds: float) -> None:
        """Run the reconcile queue's messages through the reconcile run as they come due."""
        from notifier.reconcile import run

        if expected <= 0:
            return
        sent_before = int(handler.stats.get("sent", 0))
        seen = 0
        deadline = time.monotonic() + reconcile_seconds + 30.0
        while seen < expected and time.monotonic() < deadline:
            records = _receive(self.reconcile_queue_url, wait_s=1)
            if not records:
                continue
            seen += len(records)
            self.counts["reconcile_runs"] += 1
            run(handler, {"Records": records})
        self.counts["resent_when_due"] = int(handler.stats.get("sent", 0)) - sent_before

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None


def _receive(queue_url: str, *, wait_s: int) -> list[dict[str, Any]]:
    """Up to 100 messages, deleted, as Lambda's SQS event records."""
    from notifier.local.provision import aws_client

    sqs = aws_client("sqs")
    out: list[dict[str, Any]] = []
    for _ in range(10):
        resp = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s if not out else 0
        )
        msgs = resp.get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            out.append({"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return out
