"""``notifier demo`` mechanics (provision, seed, consume, summarise, replay) with a stub handler;
the real handler is exercised in tests/integration."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from notifier.local import demo
from notifier.local.moto_server import sent_emails

STUB = "local.stub_pipeline:build_handler"


@pytest.fixture
def run_demo(aws: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, Any]]:
    """Factory: run ``notifier demo --json`` in-process against the embedded AWS."""

    def _run(*argv: str) -> tuple[int, Any]:
        parser = argparse.ArgumentParser()
        demo.add_arguments(parser)
        args = parser.parse_args(
            ["--endpoint-url", aws, "--json", "--handler-factory", STUB, *argv]
        )
        code = demo.run(args)
        return code, json.loads(capsys.readouterr().out)

    return _run


def test_demo_sends_one_email_per_event_and_a_replay_sends_none(
    aws: str, run_demo: Callable[..., tuple[int, Any]]
) -> None:
    # GIVEN / WHEN the demo runs with 30 events for 7 users in batches of 8
    code, first = run_demo("--events", "30", "--users", "7", "--batch-size", "8")
    # THEN 30 emails went out, one per event, to the users the events name
    assert code == 0
    assert (first["events"], first["sent"], first["duplicates"]) == (30, 30, 0)
    assert first["emails_accepted"] == 30
    assert first["esm"]["invocations"] == 4
    assert first["unaccounted"] == 0
    assert first["esm"]["records_checkpointed"] == 30
    recipients = sorted(m["destinations"]["ToAddresses"][0] for m in sent_emails(aws))
    assert recipients == sorted(f"user-{i % 7}@example.com" for i in range(30))
    # WHEN it runs again on the same endpoint, replaying the stream
    code, replay = run_demo("--replay")
    # THEN nothing is sent again: every record is a duplicate
    assert code == 0
    assert (replay["events"], replay["sent"], replay["duplicates"]) == (0, 0, 30)
    assert replay["emails_accepted"] == 0
    # WHEN a third run writes 5 more events
    code, third = run_demo("--events", "5")
    # THEN they continue the numbering: 5 new emails, the 30 old records are duplicates
    assert (third["stream_records"], third["sent"], third["duplicates"]) == (35, 5, 30)
    assert len(sent_emails(aws)) == 35


def test_summary_table_is_readable(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the table format
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--endpoint-url", aws, "--events", "3", "--handler-factory", STUB])
    # WHEN the demo runs without --json
    assert demo.run(args) == 0
    out = capsys.readouterr().out
    # THEN the table names each figure
    for label in ("notifications sent", "duplicates suppressed", "ESM redeliveries", "p50"):
        assert label in out
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines()[2:])
    assert rows["notifications sent"] == "3"
    assert rows["events written"] == "3"


def test_provisioning_is_idempotent(aws: str) -> None:
    # GIVEN resources provisioned once
    from notifier.local.provision import provision

    first = provision()
    # WHEN provisioned again / THEN the same resources come back, configured as required
    assert provision() == first
    ddb = boto3.client("dynamodb")
    table = ddb.describe_table(TableName="notifier-events")["Table"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName="notifier-ledger")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"
    assert first.esm_failure_queue_url.endswith("/notifier-esm-failures")


def test_cli_entry_runs_the_demo_on_its_own_embedded_aws() -> None:
    # GIVEN the installed `notifier` command and the stub handler on the path
    import os
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "notifier"
    tests_dir = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(tests_dir)}
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2"):
        env.pop(key, None)
    # WHEN `notifier demo` runs in a subprocess, starting its own moto
    proc = subprocess.run(
        [str(exe), "demo", "--events", "20", "--users", "4", "--json", "--handler-factory", STUB],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    # THEN it exits cleanly with a summary of 20 sent emails on an embedded endpoint
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["embedded"] is True
    assert (summary["sent"], summary["emails_accepted"]) == (20, 20)


def test_summary_shows_ledger_write_units_per_notification(
    aws: str, run_demo: Callable[..., tuple[int, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a handler that reports the write units its ledger consumed (the stub: one
    # conditional PutItem of a small item per notification, 1 unit each)
    # WHEN the demo runs 12 events
    code, summary = run_demo("--events", "12", "--batch-size", "5")
    # THEN the summary divides the units by the notifications sent and prices them on demand
    assert code == 0
    assert summary["sent"] == 12
    assert summary["ledger"] == {
        "write_units": 12,
        "write_units_per_notification": 1.0,
        "usd_per_million_notifications": 0.625,
    }
    # AND the counters of the new handler are there, zero when it reports none
    assert (summary["account_faults"], summary["unknown_outcomes"]) == (0, 0)
    # WHEN the stream is replayed (nothing is sent, duplicates are refused by the condition)
    code, replay = run_demo("--replay")
    # THEN there is no per-notification figure to give
    assert replay["sent"] == 0
    assert replay["ledger"]["write_units_per_notification"] is None


def test_ledger_cost_when_the_handler_reports_no_write_units() -> None:
    # GIVEN a handler without the write_units counter (stats.get("write_units", 0) == 0)
    # WHEN the cost is derived
    cost = demo.ledger_cost(0, 500, reported=False)
    # THEN no per-notification figure is invented
    assert cost["write_units_per_notification"] is None
    assert cost["usd_per_million_notifications"] is None
    # AND with units reported: 2 per notification cost 1.25 USD per million on demand
    assert demo.ledger_cost(1000, 500)["usd_per_million_notifications"] == 1.25


def test_summary_table_names_the_write_units_row(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the table format and the stub handler (1 write unit per notification)
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--endpoint-url", aws, "--events", "4", "--handler-factory", STUB])
    # WHEN the demo runs without --json
    assert demo.run(args) == 0
    rows = dict(
        re.split(r"\s{2,}", line, maxsplit=1) for line in capsys.readouterr().out.splitlines()[2:]
    )
    # THEN the row gives units per notification and the on-demand price per million
    row = rows["ledger write units per notification"]
    assert row.startswith("1.00 (4 units; 0.6250 USD per million notifications")


def test_an_unloadable_handler_is_reported_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a handler factory that does not exist
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--handler-factory", "no_such_module:build_handler"])
    # WHEN the demo runs / THEN it says so and exits 2
    assert demo.run(args) == 2
    assert "cannot load the handler" in capsys.readouterr().err
