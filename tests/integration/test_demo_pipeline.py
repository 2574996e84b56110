"""`notifier demo` with the REAL handler (notifier.handler.build_handler) on the embedded AWS."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifier.local import demo
from notifier.local.moto_server import sent_emails

# Multi-process / timing-heavy: run on the main interpreter in CI, not on every CPython
# (.ci/test-pythons runs -m "not slow"; the fast suite covers the same code on each).
pytestmark = pytest.mark.slow


@pytest.fixture
def run_demo(aws: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, Any]]:
    """Factory: ``notifier demo --json`` in-process against the embedded AWS."""

    def _run(*argv: str) -> tuple[int, Any]:
        parser = argparse.ArgumentParser()
        demo.add_arguments(parser)
        code = demo.run(parser.parse_args(["--endpoint-url", aws, "--json", *argv]))
        return code, json.loads(capsys.readouterr().out)

    return _run


def recipients(aws: str) -> Counter[str]:
    return Counter(m["destinations"]["ToAddresses"][0] for m in sent_emails(aws))


def expected_recipients(n: int, users: int) -> Counter[str]:
    return Counter(f"user-{i % users}@example.com" for i in range(n))


def test_n_events_become_n_emails_and_a_replay_sends_nothing(
    aws: str, run_demo: Callable[..., tuple[int, Any]]
) -> None:
    # GIVEN / WHEN the demo writes and consumes 200 events for 100 users
    code, first = run_demo("--events", "200")
    # THEN exactly 200 emails went out, one per event, to the right users
    assert code == 0, first
    assert first["sent"] == 200
    assert first["emails_accepted"] == 200
    assert recipients(aws) == expected_recipients(200, 100)
    # WHEN a second run replays the whole stream against the same endpoint
    code, replay = run_demo("--replay")
    # THEN nothing is sent again: all 200 are suppressed as duplicates
    assert code == 0, replay
    assert (replay["sent"], replay["duplicates"]) == (0, 200)
    assert replay["emails_accepted"] == 0
    assert len(sent_emails(aws)) == 200


def test_throttling_and_5xx_still_yield_exactly_n_emails(
    aws: str, run_demo: Callable[..., tuple[int, Any]]
) -> None:
    # GIVEN SES throttling 15% and failing 10% of sends (5xx), seeded
    # WHEN the demo consumes 120 events
    code, summary = run_demo(
        "--events",
        "120",
        "--users",
        "40",
        "--throttle-rate",
        "0.15",
        "--error-rate",
        "0.1",
        "--fault-seed",
        "11",
    )
    # THEN faults were injected, and still each event produced exactly one email
    assert summary["faults"].get("throttle", 0) > 0
    assert summary["faults"].get("server_error", 0) > 0
    assert code == 0, summary
    assert summary["sent"] == 120
    assert recipients(aws) == expected_recipients(120, 40)


def test_cli_demo_completes_in_a_subprocess() -> None:
    # GIVEN the installed `notifier` command (what `make demo` runs)
    exe = Path(sys.executable).parent / "notifier"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    # WHEN it runs the demo with 50 events on its own embedded AWS
    proc = subprocess.run(
        [str(exe), "demo", "--events", "50", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    # THEN it finishes cleanly having sent 50 emails
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert (summary["sent"], summary["emails_accepted"]) == (50, 50)
