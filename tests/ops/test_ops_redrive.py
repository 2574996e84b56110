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
    *,
    also_broken: int = 0,
) -> dict[str, str]:
    """GIVEN profile_view's subject template broken: the batch's profile views are FAILED in
    the ledger and on the failure queue; the others are sent. Returns the response."""
    subject = templates / "profile_view" / "subject.txt"
    good = subject.read_text(encoding="utf-8")
    subject.write_text(BROKEN, encoding="utf-8")
    h = handler()
    resp = h({"Records": records(indexes)}, Ctx())
    assert resp == {"batchItemFailures": []}
    assert h.stats["dead_lettered"] == sum(1 for i in indexes if i % 3 == 0) + also_broken
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


def test_two_redrives_at_once_send_nothing_twice(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
    aws: str,
) -> None:
    import json
    import os
    import subprocess
    import sys

    import boto3

    # GIVEN six dead-lettered profile views, each on the queue twice (as a crash between
    # dead-lettering and the FAILED commit leaves them)
    indexes = [0, 3, 6, 9, 12, 15]
    _dead_letter_profile_views(handler, records, templates, indexes)
    sqs = boto3.client("sqs")
    for body in queue_bodies(resources.failure_queue_url):
        sqs.send_message(QueueUrl=resources.failure_queue_url, MessageBody=json.dumps(body))
    assert len(queue_bodies(resources.failure_queue_url)) == 12

    # WHEN two redrives run at once, in two processes
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "python")}
    argv = [sys.executable, "-m", "notifier.cli", "redrive", "--retry-failed", "--batch-size", "3"]
    argv += ["--wait-seconds", "0"]
    procs = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    # THEN every event was emailed exactly once
    assert all(p.returncode in (0, 1) for p in procs), outs
    assert emails_per_event(aws) == {f"evt-0000-{i:09d}": 1 for i in indexes}

    # WHEN one more redrive drains whatever was kept (records in flight for the other run)
    code, out, _ = cli("redrive", "--retry-failed", "--wait-seconds", "0")
    # THEN the queue is empty and still nothing was sent twice
    assert code == 0, out
    assert queue_bodies(resources.failure_queue_url) == []
    assert emails_per_event(aws) == {f"evt-0000-{i:09d}": 1 for i in indexes}


def test_a_record_still_failing_transiently_stays_on_the_queue(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
    aws: str,
) -> None:
    import time

    import boto3

    # GIVEN two dead-lettered profile views; one's key is held by a live lease of another
    # invocation (the pipeline reports it: in flight, a transient failure)
    _dead_letter_profile_views(handler, records, templates, [0, 3])
    now = time.time()
    boto3.client("dynamodb").put_item(
        TableName=resources.ledger_table,
        Item={
            "pk": {"S": "email#evt-0000-000000003"},
            "state": {"S": "SENDING"},
            "owner": {"S": "someone-else/req/1"},
            "lease_expires_at": {"N": str(now + 600)},
            "claimed_at": {"N": str(now)},
        },
    )
    # WHEN redrive runs
    code, out, _ = cli("redrive", "--retry-failed", "--wait-seconds", "0")
    # THEN the free one is sent and its message deleted; the held one stays on the queue
    assert code == 1
    assert "redriven 1, sent 1, duplicates 0, still failing 1" in out
    left = queue_bodies(resources.failure_queue_url)
    assert [b["ledger_key"] for b in left] == ["email#evt-0000-000000003"]
    assert emails_per_event(aws) == {"evt-0000-000000000": 1}


def test_dry_run_lists_and_changes_nothing(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
    aws: str,
) -> None:
    # GIVEN two dead-lettered profile views
    _dead_letter_profile_views(handler, records, templates, [0, 3])
    # WHEN redrive --dry-run --retry-failed runs
    code, out, _ = cli("redrive", "--dry-run", "--retry-failed", "--wait-seconds", "0")
    # THEN it lists both keys and what it would do, and nothing changed
    assert code == 0
    assert "email#evt-0000-000000000" in out
    assert "email#evt-0000-000000003" in out
    assert out.count("would clear FAILED and redrive") == 2
    assert "would redrive 2" in out
    assert len(queue_bodies(resources.failure_queue_url)) == 2
    assert ledger_state(resources.ledger_table, "email#evt-0000-000000000") == "FAILED"
    assert emails_per_event(aws) == {}
    assert "@" not in out  # no address is ever printed


def test_filters_select_what_is_redriven(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
    aws: str,
) -> None:
    # GIVEN profile views and friend requests dead-lettered for broken templates
    (templates / "friend_request" / "subject.txt").write_text(BROKEN, encoding="utf-8")
    _dead_letter_profile_views(handler, records, templates, [0, 1, 3, 4], also_broken=2)
    (templates / "friend_request" / "subject.txt").write_text("Hi {{ user.name }}", "utf-8")
    codes = {b["error_code"] for b in queue_bodies(resources.failure_queue_url)}
    assert len(codes) == 1
    (code_name,) = codes

    # WHEN filtered by age (all were queued just now) or by another error code
    _, out, _ = cli("redrive", "--retry-failed", "--older-than", "1h", "--wait-seconds", "0")
    assert "read 4" in out
    assert "skipped by filter 4" in out
    _, out, _ = cli("redrive", "--retry-failed", "--error-code", "Nope", "--wait-seconds", "0")
    # THEN nothing is sent
    assert "skipped by filter 4" in out
    assert emails_per_event(aws) == {}

    # WHEN filtered by event type, error code and reason text, with a limit of 1
    _, out, _ = cli(
        "redrive", "--retry-failed", "--event-type", "friend_request", "--error-code", code_name,
        "--newer-than", "1h", "--limit", "1", "--wait-seconds", "0",
    )  # fmt: skip
    # THEN exactly one friend request is sent
    assert "redriven 1, sent 1" in out
    sent = emails_per_event(aws)
    assert sum(sent.values()) == 1
    assert set(sent) <= {"evt-0000-000000001", "evt-0000-000000004"}

    # WHEN the rest of the friend requests are redriven
    _, out, _ = cli(
        "redrive", "--retry-failed", "--event-type", "friend_request", "--wait-seconds", "0"
    )
    # THEN the profile views are still on the queue, untouched
    assert "redriven 1, sent 1" in out
    assert "skipped by filter 2" in out
    left = sorted(b["ledger_key"] for b in queue_bodies(resources.failure_queue_url))
    assert left == ["email#evt-0000-000000000", "email#evt-0000-000000003"]
    assert ledger_state(resources.ledger_table, "email#evt-0000-000000000") == "FAILED"


def test_truncated_messages_are_reported_and_kept(
    env: dict[str, str], resources: Resources
) -> None:
    import json

    import boto3

    # GIVEN a failure message whose record was truncated
    body = {
        "reason": "x",
        "error_code": "MessageRejected",
        "channel": "email",
        "ledger_key": "email#evt-big",
        "record": '{"eventID": "abc", "dyn',
        "record_truncated": True,
        "record_bytes": 300000,
    }
    boto3.client("sqs").send_message(
        QueueUrl=resources.failure_queue_url, MessageBody=json.dumps(body)
    )
    # WHEN redrive runs THEN it reports it and leaves it on the queue
    code, out, _ = cli("redrive", "--wait-seconds", "0")
    assert code == 1
    assert "truncated 1" in out
    assert "email#evt-big" in out
    assert len(queue_bodies(resources.failure_queue_url)) == 1


def test_stream_range_redrive_reads_the_records_back_from_the_stream(
    env: dict[str, str], resources: Resources, aws: str
) -> None:
    import json

    import boto3

    from notifier.local.provision import seed_events

    # GIVEN three events in the source table's stream, and the ESM's on-failure metadata for
    # their range on the second queue
    seed_events(3, users=7, endpoint_url=aws)
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=resources.stream_arn)["StreamDescription"]["Shards"][
        0
    ]["ShardId"]
    it = streams.get_shard_iterator(
        StreamArn=resources.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seqs = [
        r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=it)["Records"]
    ]
    assert len(seqs) == 3
    info = {
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": seqs[0],
            "endSequenceNumber": seqs[-1],
            "streamArn": resources.stream_arn,
            "batchSize": 3,
        },
        "version": "1.0",
    }
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=resources.esm_failure_queue_url, MessageBody=json.dumps(info))

    # WHEN redrive reads that queue
    code, out, _ = cli(
        "redrive", "--stream-failures-queue", resources.esm_failure_queue_url, "--wait-seconds", "0"
    )
    # THEN the three events are sent once and the metadata message is deleted
    assert code == 0, out
    assert "stream ranges 1 (3 records" in out
    assert emails_per_event(aws) == {f"evt-0000-{i:09d}": 1 for i in range(3)}
    assert queue_bodies(resources.esm_failure_queue_url) == []

    # WHEN the same range is redriven again THEN nothing is sent twice
    sqs.send_message(QueueUrl=resources.esm_failure_queue_url, MessageBody=json.dumps(info))
    code, out, _ = cli(
        "redrive", "--stream-failures-queue", resources.esm_failure_queue_url, "--wait-seconds", "0"
    )
    assert code == 0
    assert "sent 0, duplicates 3" in out
    assert emails_per_event(aws) == {f"evt-0000-{i:09d}": 1 for i in range(3)}


def test_a_record_that_fails_again_is_queued_anew_once_and_the_run_ends(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
    aws: str,
) -> None:
    # GIVEN two dead-lettered profile views whose template is still broken
    _dead_letter_profile_views(handler, records, templates, [0, 3])
    (templates / "profile_view" / "subject.txt").write_text(BROKEN, encoding="utf-8")
    first = sorted(b["ledger_key"] for b in queue_bodies(resources.failure_queue_url))
    # WHEN redrive --retry-failed runs (the pipeline dead-letters it again, on the same queue
    # the run is reading)
    # one record per handler call, so the run goes on receiving after the first call
    code, out, _ = cli("redrive", "--retry-failed", "--batch-size", "1", "--wait-seconds", "0")
    # THEN the run ends, each record was run once: each old message is replaced by exactly
    # one new one, and the ledger says FAILED again
    assert code == 1
    assert "still failing 2 (2 failed again, queued anew)" in out
    left = sorted(b["ledger_key"] for b in queue_bodies(resources.failure_queue_url))
    assert left == first
    assert ledger_state(resources.ledger_table, "email#evt-0000-000000000") == "FAILED"
    assert emails_per_event(aws) == {}


def test_progress_line_shows_rate_and_time_left(
    handler: Callable[[], Handler],
    records: Callable[..., list[dict[str, Any]]],
    templates: Path,
    resources: Resources,
) -> None:
    import io

    import boto3

    from notifier.ops.redrive import RedriveOptions, redrive

    # GIVEN two dead-lettered records
    _dead_letter_profile_views(handler, records, templates, [0, 3])
    out, err = io.StringIO(), io.StringIO()
    # WHEN redrive runs with the progress line on (as on a terminal)
    summary = redrive(
        RedriveOptions(retry_failed=True, wait_seconds=0, progress=True),
        sqs=boto3.client("sqs"),
        ddb=boto3.client("dynamodb"),
        streams=boto3.client("dynamodbstreams"),
        failure_queue_url=resources.failure_queue_url,
        ledger_table=resources.ledger_table,
        type_path="event_type",
        make_handler=handler,
        out=out,
        err=err,
    )
    # THEN stderr carries the progress line (count of the queue's size, rate, time left)
    assert summary.sent == 2
    last = err.getvalue().strip().split("\r")[-1]
    assert last.startswith("redrive: 2/2 read, ")
    assert "/s" in last


def test_stream_range_with_an_event_type_filter_runs_only_those_and_keeps_the_range(
    env: dict[str, str], resources: Resources, aws: str
) -> None:
    import json

    import boto3

    from notifier.local.provision import seed_events

    # GIVEN three events (one of each type) in the stream and their range's ESM metadata
    seed_events(3, users=7, endpoint_url=aws)
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=resources.stream_arn)["StreamDescription"]["Shards"][
        0
    ]["ShardId"]
    it = streams.get_shard_iterator(
        StreamArn=resources.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seqs = [
        r["dynamodb"]["SequenceNumber"] for r in streams.get_records(ShardIterator=it)["Records"]
    ]
    info = {
        "DDBStreamBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": seqs[0],
            "endSequenceNumber": seqs[-1],
            "streamArn": resources.stream_arn,
            "batchSize": 3,
        }
    }
    boto3.client("sqs").send_message(
        QueueUrl=resources.esm_failure_queue_url, MessageBody=json.dumps(info)
    )
    # WHEN redrive runs it with --event-type friend_request
    code, out, _ = cli(
        "redrive", "--stream-failures-queue", resources.esm_failure_queue_url,
        "--event-type", "friend_request", "--wait-seconds", "0",
    )  # fmt: skip
    # THEN only the friend request is sent, and the range message stays (the rest never ran)
    assert code == 0, out
    assert emails_per_event(aws) == {"evt-0000-000000001": 1}
    assert len(queue_bodies(resources.esm_failure_queue_url)) == 1


def test_a_missing_queue_is_one_line_naming_it(
    env: dict[str, str], monkeypatch: Any, resources: Resources
) -> None:
    # GIVEN no queue URL and a queue name that does not exist
    monkeypatch.delenv("NOTIFIER_FAILURE_QUEUE_URL")
    monkeypatch.setenv("NOTIFIER_FAILURE_QUEUE", "no-such-queue")
    code, out, err = cli("redrive")
    # THEN exit 2, one line naming the variable, no traceback
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "NOTIFIER_FAILURE_QUEUE" in err
    # AND a bad --stream-failures-queue is named as that flag
    monkeypatch.setenv("NOTIFIER_FAILURE_QUEUE_URL", resources.failure_queue_url)
    code, _, err = cli("redrive", "--stream-failures-queue", "http://127.0.0.1:1/nope/q")
    assert code == 2
    assert "--stream-failures-queue" in err
    assert "Traceback" not in err
