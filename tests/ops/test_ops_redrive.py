"""notifier redrive: dead-lettered records go through the same pipeline again, once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops_helpers import BROKEN, Ctx, cli, emails_per_event, ledger_state, queue_bodies

from notifier.handler import Handler
from notifier.local.provision import Resources


def _dead_letter_profile_views(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    indexes: list[int],
) -> dict[str, str]:
    """GIVEN profile_view's subject template broken: the batch's profile views are FAILED in
    the ledger and on the failure queue; the others are sent. Returns the response."""
    subject = templates / "profile_view" / "subject.txt"
    good = subject.read_text(encoding="utf-8")
    subject.write_text(BROKEN, encoding="utf-8")
    h = handler()
    resp = h({"Records": records(indexes)}, Ctx())
    assert resp == {"batchItemFailures": []}
    assert h.stats["dead_lettered"] == sum(1 for i in indexes if i % 3 == 0)
    subject.write_text(good, encoding="utf-8")  # the operator's fix
    return resp


def test_redrive_sends_a_fixed_template_s_records_once(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
    aws: str,
) -> None:
    # GIVEN two profile views dead-lettered for a broken template, one friend request sent
    _dead_letter_profile_views(handler, records, templates, [0, 1, 3])
    assert len(queue_bodies(resources.failure_queue_url)) == 2
    assert ledger_state(resources.ledger_table, "email#evt-0000-000000000") == "FAILED"
    assert emails_per_event(aws) == {"evt-0000-000000001": 1}

    # WHEN the template is fixed and redrive runs without --retry-failed
    code, out, _ = cli("redrive", "--wait-seconds", "0")
    # THEN nothing is sent: the FAILED entries block it, the messages stay
    assert code == 1
    assert "blocked by FAILED ledger entries 2" in out
    assert "--retry-failed" in out
    assert len(queue_bodies(resources.failure_queue_url)) == 2
    assert emails_per_event(aws) == {"evt-0000-000000001": 1}

    # WHEN redrive runs with --retry-failed
    code, out, _ = cli("redrive", "--retry-failed", "--wait-seconds", "0")
    # THEN each profile view is sent once, the messages are deleted, the ledger says SENT
    assert code == 0, out
    assert "redriven 2, sent 2, duplicates 0, still failing 0" in out
    assert queue_bodies(resources.failure_queue_url) == []
    assert emails_per_event(aws) == {
        "evt-0000-000000000": 1,
        "evt-0000-000000001": 1,
        "evt-0000-000000003": 1,
    }
    assert ledger_state(resources.ledger_table, "email#evt-0000-000000003") == "SENT"

    # WHEN it runs again (the queue is empty) THEN nothing more is sent
    code, out, _ = cli("redrive", "--retry-failed", "--wait-seconds", "0")
    assert code == 0
    assert "read 0" in out
    assert sum(emails_per_event(aws).values()) == 3
