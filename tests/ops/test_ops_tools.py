"""notifier inspect, invoke, generate-event and local up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from ops_helpers import BROKEN, Ctx, cli, emails_per_event

from notifier.ddb import decode_stream_event
from notifier.handler import Handler
from notifier.ledger import ledger_key
from notifier.local.provision import Resources

PYTHONPATH = str(Path(__file__).parents[2] / "python")


def test_inspect_shows_a_sent_and_a_failed_key(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
) -> None:
    # GIVEN one friend request sent and one profile view FAILED (broken template)
    (templates / "profile_view" / "subject.txt").write_text(BROKEN, encoding="utf-8")
    handler()({"Records": records([0, 1])}, Ctx())

    # WHEN inspect is asked for the sent event's id
    code, out, _ = cli("inspect", "evt-0000-000000001")
    # THEN it prints the entry: SENT, channel, message id, ISO times, TTL
    assert code == 0
    assert "email#evt-0000-000000001" in out
    assert "SENT" in out
    assert "message_id" in out
    assert "finished_at" in out
    assert "Z" in out  # ISO 8601 UTC
    assert "@" not in out

    # WHEN it is asked for the failed one, by ledger key, as JSON
    code, out, _ = cli("inspect", "email#evt-0000-000000000", "--json")
    (doc,) = json.loads(out)
    # THEN state, error code and reason are there; no lease is live; no address anywhere
    assert code == 0
    assert doc["state"] == "FAILED"
    assert doc["channel"] == "email"
    assert doc["error_code"] == "TemplateError"
    assert "profile_view" in doc["reason"]
    assert doc["message_id"] is None
    assert doc["expires_at"].endswith("Z")
    assert "@" not in out

    # WHEN the key is unknown THEN exit 1 and the keys tried are named
    code, _, err = cli("inspect", "evt-nope")
    assert code == 1
    assert "email#evt-nope" in err


def test_inspect_finds_a_hashed_long_key(env: dict[str, str], resources: Resources) -> None:
    # GIVEN a ledger entry under the hashed form of a 300-byte dedup key
    long_key = "k" * 300
    boto3.client("dynamodb").put_item(
        TableName=resources.ledger_table,
        Item={
            "pk": {"S": ledger_key("email", long_key)},
            "state": {"S": "SENDING"},
            "owner": {"S": "p/req/1"},
            "lease_expires_at": {"N": "4102444800"},
            "reason": {"S": "contact ada.lovelace@example.com"},
        },
    )
    # WHEN inspect is given the dedup key itself
    code, out, _ = cli("inspect", long_key, "--json")
    (doc,) = json.loads(out)
    # THEN it finds the hashed entry, the lease is live, and an address is masked
    assert code == 0
    assert doc["pk"].startswith("email#sha256:")
    assert doc["lease"] == "live"
    assert doc["lease_expires_at"] == "2100-01-01T00:00:00.000Z"
    assert "ada.lovelace@" not in out
    assert "a***@example.com" in doc["reason"]


def test_generate_event_decodes_and_honours_its_options(tmp_path: Path) -> None:
    # WHEN an event of 7 records of two types (one unknown to the samples) is generated
    path = tmp_path / "ev.json"
    code, _, _ = cli(
        "generate-event", "--count", "7", "--types", "friend_request,weird",
        "--seed", "3", "-o", str(path),
    )  # fmt: skip
    assert code == 0
    # THEN the notifier decoder reads it, with the types in turn and unique sequence numbers
    decoded = decode_stream_event(path.read_bytes())
    assert len(decoded) == 7
    types = [r.get("event_type") for r in decoded]
    assert types == ["friend_request", "weird"] * 3 + ["friend_request"]
    assert len({r.sequence_number for r in decoded}) == 7
    assert all(r.event_name == "INSERT" for r in decoded)
    # AND the same seed gives the same records, on stdout too
    code, out, _ = cli("generate-event", "--count", "7", "--types", "friend_request,weird",
                       "--seed", "3", "--original-times")  # fmt: skip
    again = json.loads(out)["Records"]
    first = json.loads(path.read_text())["Records"]
    assert [r["eventID"] for r in again] == [r["eventID"] for r in first]
    # AND a bad count is one line naming the flag, exit 2
    code, _, err = cli("generate-event", "--count", "0")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "--count" in err


def test_invoke_runs_a_generated_event_against_embedded_moto(tmp_path: Path) -> None:
    # GIVEN a generated event of 4 records and no AWS around
    path = tmp_path / "ev.json"
    assert cli("generate-event", "--count", "4", "-o", str(path))[0] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "NOTIFIER_"))} | {
        "PYTHONPATH": PYTHONPATH,
        "NOTIFIER_MAX_SEND_RATE": "1000",
    }
    # WHEN notifier invoke --embedded runs it
    proc = subprocess.run(
        [sys.executable, "-m", "notifier.cli", "invoke", "--event", str(path), "--embedded"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    # THEN the handler's response is printed, and its counters say 4 sent
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"batchItemFailures": []}
    stats = json.loads(proc.stderr.strip().splitlines()[-1])["stats"]
    assert stats["records"] == 4
    assert stats["sent"] == 4


def test_invoke_against_the_environment_s_endpoint(
    env: dict[str, str], tmp_path: Path, aws: str
) -> None:
    # GIVEN a provisioned moto named by AWS_ENDPOINT_URL and an event of 2 records
    path = tmp_path / "ev.json"
    cli("generate-event", "--count", "2", "--types", "profile_view", "-o", str(path))
    # WHEN invoke runs it twice
    code, out, _ = cli("invoke", "--event", str(path))
    assert code == 0
    assert json.loads(out) == {"batchItemFailures": []}
    code, _, err = cli("invoke", "--event", str(path))
    # THEN two emails were sent in all; the second run counted duplicates
    assert code == 0
    assert json.loads(err.strip().splitlines()[-1])["stats"]["duplicates"] == 2
    assert sum(emails_per_event(aws).values()) == 2


def test_invoke_user_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"nope": 1}', encoding="utf-8")
    for path in (str(tmp_path / "missing.json"), str(bad)):
        code, out, err = cli("invoke", "--event", path)
        assert code == 2
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert path in err


def test_local_up_serves_a_provisioned_moto_until_sigterm() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = PYTHONPATH
    # WHEN notifier local up starts
    with subprocess.Popen(
        [sys.executable, "-m", "notifier.cli", "local", "up", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as proc:  # fmt: skip
        try:
            lines = []
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "ready" in line:
                    break
            exports = dict(
                ln.removeprefix("export ").strip().split("=", 1)
                for ln in lines
                if ln.startswith("export ")
            )
            # THEN it prints the exports, and the resources they name exist
            assert exports["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
            sqs = boto3.client(
                "sqs",
                endpoint_url=exports["AWS_ENDPOINT_URL"],
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            url = exports["NOTIFIER_FAILURE_QUEUE_URL"]
            assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            # WHEN it gets SIGTERM THEN it stops cleanly
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_an_unusable_template_directory_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    # GIVEN a valid event and NOTIFIER_TEMPLATES naming no directory
    path = tmp_path / "ev.json"
    path.write_text('{"Records": []}', encoding="utf-8")
    monkeypatch.setenv("NOTIFIER_TEMPLATES", str(tmp_path / "nowhere"))
    # WHEN invoke builds the handler THEN exit 2, one line naming the variable
    code, _, err = cli("invoke", "--event", str(path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "NOTIFIER_TEMPLATES" in err


def test_inspect_shows_what_ses_said_about_a_send(
    env: dict[str, str], resources: Resources
) -> None:
    # GIVEN a sent entry the SES events handler marked bounced, and a parked unknown send
    ddb = boto3.client("dynamodb")
    ddb.put_item(
        TableName=resources.ledger_table,
        Item={
            "pk": {"S": "email#evt-bounced"},
            "state": {"S": "SENT"},
            "message_id": {"S": "ses-1"},
            "delivery": {"S": "Bounce"},
            "delivery_at": {"N": "1767225600"},
            "bounce_type": {"S": "Permanent"},
        },
    )
    ddb.put_item(
        TableName=resources.ledger_table,
        Item={
            "pk": {"S": "email#evt-parked"},
            "state": {"S": "UNKNOWN"},
            "outcome": {"S": "unknown"},
            "reconcile_by": {"N": "1767225720"},
        },
    )
    # WHEN inspect is asked for both
    code, out, _ = cli("inspect", "evt-bounced", "--json")
    (bounced,) = json.loads(out)
    code2, out2, _ = cli("inspect", "evt-parked", "--json")
    (parked,) = json.loads(out2)
    # THEN the delivery status, its time and the bounce type are shown, and when a parked
    # send comes due
    assert (code, code2) == (0, 0)
    assert (bounced["delivery"], bounced["bounce_type"]) == ("Bounce", "Permanent")
    assert bounced["delivery_at"] == "2026-01-01T00:00:00.000Z"
    assert (parked["state"], parked["reconcile_by"]) == ("UNKNOWN", "2026-01-01T00:02:00.000Z")
