"""The ESM emulator against real moto streams, with stub handlers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from local.conftest import FakeTime, StubHandler
from notifier.local.esm import EsmConfig, EsmConfigError, StreamEsm, interpret_response
from notifier.local.provision import Resources
from notifier.samples import make_item

Seed = Callable[..., list[str]]
MakeEsm = Callable[..., StreamEsm]


def fail_on_first_call(failing: set[str]) -> Callable[[list[str], int], Any]:
    def respond(seqs: list[str], call: int) -> Any:
        if call == 1:
            return {"batchItemFailures": [{"itemIdentifier": s} for s in seqs if s in failing]}
        return {"batchItemFailures": []}

    return respond


def poison(seq: str) -> Callable[[list[str], int], Any]:
    def respond(seqs: list[str], call: int) -> Any:
        if seq in seqs:
            raise RuntimeError("poison record")
        return {"batchItemFailures": []}

    return respond


def drain_queue(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.mark.parametrize(("batch_size", "expected"), [(10, [10, 10, 5]), (25, [25]), (1, [1] * 25)])
def test_batch_size_is_honoured(
    seed: Seed, make_esm: MakeEsm, batch_size: int, expected: list[int]
) -> None:
    # GIVEN 25 records in the stream
    seqs = seed(25)
    handler = StubHandler()
    # WHEN the ESM consumes it with the given batch size
    stats = make_esm(handler, batch_size=batch_size).run()
    # THEN batches have at most that size, every record came once, in stream order
    assert handler.sizes == expected
    assert [s for call in handler.calls for s in call] == seqs
    assert stats.invocations == len(expected)
    assert stats.records_delivered == 25
    assert stats.redeliveries == 0
    assert stats.stopped == "drained"


def test_events_are_in_lambda_format(seed: Seed, make_esm: MakeEsm, resources: Resources) -> None:
    # GIVEN 3 sample events in the stream
    seed(3, users=10)
    handler = StubHandler()
    # WHEN the ESM delivers them
    make_esm(handler).run()
    # THEN each record carries the stream ARN, whole-second creation time, base64 binaries,
    # and the item exactly as written
    (event,) = handler.events
    for i, rec in enumerate(event["Records"]):
        assert rec["eventSourceARN"] == resources.stream_arn
        assert rec["eventName"] == "INSERT"
        assert rec["eventSource"] == "aws:dynamodb"
        ddb = rec["dynamodb"]
        assert isinstance(ddb["ApproximateCreationDateTime"], int)
        image = ddb["NewImage"]
        item = make_item(i, users=10)
        assert base64.b64decode(image["trace"]["B"]) == item["trace"]
        assert image["event_id"] == {"S": item["event_id"]}
        assert image["user"]["M"]["email"] == {"S": f"user-{i % 10}@example.com"}
        assert ddb["Keys"] == {"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}}
    # AND the context is a Lambda context with time left
    ctx = handler.contexts[0]
    assert ctx.function_name == "notifier"
    assert 0 < ctx.get_remaining_time_in_millis() <= 60_000
    assert ctx.aws_request_id


def test_partial_failure_redelivers_from_the_lowest_failed_sequence_number(
    seed: Seed, make_esm: MakeEsm
) -> None:
    # GIVEN 10 records and a handler that reports records 6 and 3 failed on its first call
    seqs = seed(10)
    handler = StubHandler(fail_on_first_call({seqs[6], seqs[3]}))
    # WHEN the ESM consumes the stream
    stats = make_esm(handler, batch_size=10).run()
    # THEN the second batch starts at record 3 and includes every record after it
    assert handler.calls == [seqs, seqs[3:]]
    assert stats.partial_failures == 1
    assert stats.redeliveries == 7
    assert stats.records_checkpointed == 10
    assert stats.retries == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifer": "SEQ"}]},
        {"batchItemFailures": [{}]},
        {"batchItemFailure": [{"itemIdentifier": "SEQ"}]},
        {"batchItemFailures": [{"itemIdentifier": "999"}]},
        {"batchItemFailures": "SEQ"},
        ["SEQ"],
    ],
)
def test_malformed_response_fails_the_whole_batch(seed: Seed, make_esm: MakeEsm, bad: Any) -> None:
    # GIVEN 5 records and a handler whose first answer is malformed (naming the 3rd record)
    seqs = seed(5)
    bad = json.loads(json.dumps(bad).replace("SEQ", seqs[2]))
    handler = StubHandler(lambda s, call: bad if call == 1 else None)
    # WHEN the ESM consumes the stream
    stats = make_esm(handler).run()
    # THEN the whole batch is delivered again
    assert handler.calls == [seqs, seqs]
    assert stats.malformed_responses == 1
    assert stats.redeliveries == 5


@pytest.mark.parametrize("ok", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_success_responses(ok: Any) -> None:
    # GIVEN / WHEN a response Lambda counts as success / THEN it is one
    assert interpret_response(ok, ["1", "2"]) == ("success", None, None)


def test_without_report_batch_item_failures_a_partial_answer_is_ignored(
    seed: Seed, make_esm: MakeEsm
) -> None:
    # GIVEN a handler reporting a failure, on an ESM without ReportBatchItemFailures
    seqs = seed(4)
    handler = StubHandler(fail_on_first_call({seqs[1]}))
    # WHEN it runs / THEN the answer is not read: no redelivery
    stats = make_esm(handler, report_batch_item_failures=False).run()
    assert handler.calls == [seqs]
    assert stats.redeliveries == 0


def test_bisect_isolates_the_poison_record_then_sends_it_to_the_on_failure_destination(
    seed: Seed, make_esm: MakeEsm, resources: Resources
) -> None:
    # GIVEN 8 records, the 6th of which always makes the handler raise
    seqs = seed(8)
    handler = StubHandler(poison(seqs[5]))
    esm = make_esm(
        handler,
        batch_size=8,
        bisect_batch_on_function_error=True,
        maximum_retry_attempts=2,
        on_failure_queue_url=resources.esm_failure_queue_url,
    )
    # WHEN the ESM consumes the stream
    stats = esm.run()
    # THEN it bisects down to the poison record, retries it twice, then skips it
    assert handler.calls == [
        seqs,
        seqs[:4],
        seqs[4:],
        seqs[4:6],
        seqs[4:5],
        seqs[5:6],
        seqs[5:6],
        seqs[5:6],
        seqs[6:],
    ]
    assert stats.bisects == 3
    assert stats.function_errors == 6
    assert stats.batches_to_on_failure == 1
    assert stats.records_to_on_failure == 1
    assert stats.records_checkpointed == 7
    assert stats.stopped == "drained"
    # AND the destination got the batch's metadata (not the record)
    (msg,) = drain_queue(resources.esm_failure_queue_url)
    shard = boto3.client("dynamodbstreams").describe_stream(StreamArn=resources.stream_arn)
    info = msg["DDBStreamBatchInfo"]
    assert info["shardId"] == shard["StreamDescription"]["Shards"][0]["ShardId"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == seqs[5]
    assert info["batchSize"] == 1
    assert info["streamArn"] == resources.stream_arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert msg["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert msg["requestContext"]["approximateInvokeCount"] == 3
    assert msg["responseContext"]["functionError"] == "Unhandled"
    assert "Records" not in json.dumps(msg)


def test_without_bisect_the_whole_batch_is_retried_then_skipped(
    seed: Seed, make_esm: MakeEsm, resources: Resources
) -> None:
    # GIVEN 8 records in batches of 4, the 6th poisonous
    seqs = seed(8)
    handler = StubHandler(poison(seqs[5]))
    esm = make_esm(
        handler,
        batch_size=4,
        maximum_retry_attempts=1,
        on_failure_queue_url=resources.esm_failure_queue_url,
    )
    # WHEN the ESM consumes the stream
    stats = esm.run()
    # THEN the failing batch is tried twice (1 retry) and skipped whole
    assert handler.calls == [seqs[:4], seqs[4:], seqs[4:]]
    assert stats.retries == 1
    (msg,) = drain_queue(resources.esm_failure_queue_url)
    info = msg["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[4], seqs[7])
    assert info["batchSize"] == 4


def test_max_record_age_discards_records_too_old_to_retry(
    seed: Seed, make_esm: MakeEsm, resources: Resources, fake_time: FakeTime
) -> None:
    # GIVEN 3 records and a handler that fails while 2 minutes pass
    seqs = seed(3)

    def respond(s: list[str], call: int) -> Any:
        fake_time.offset += 120
        raise TimeoutError("downstream")

    handler = StubHandler(respond)
    esm = make_esm(
        handler,
        maximum_record_age_s=60,
        function_timeout_s=900,
        on_failure_queue_url=resources.esm_failure_queue_url,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    # WHEN the ESM consumes the stream
    stats = esm.run()
    # THEN the records are not retried: they are past their age and go to the destination
    assert handler.calls == [seqs]
    assert stats.records_expired == 3
    (msg,) = drain_queue(resources.esm_failure_queue_url)
    assert msg["requestContext"]["condition"] == "RecordAgeExpired"
    assert msg["DDBStreamBatchInfo"]["batchSize"] == 3


def test_batching_window_gathers_records_that_arrive_meanwhile(
    seed: Seed, make_esm: MakeEsm, fake_time: FakeTime
) -> None:
    # GIVEN 3 records now, and 5 more written while the ESM waits
    seqs = seed(3)
    fake_time.on_sleep = lambda n: seed(5, start=3) if n == 1 else None
    handler = StubHandler()
    # WHEN the ESM has a 1-second batching window
    make_esm(
        handler, maximum_batching_window_s=1.0, clock=fake_time.clock, sleep=fake_time.sleep
    ).run()
    # THEN one invocation carries all 8
    assert handler.sizes == [8]
    assert handler.calls[0][:3] == seqs
    assert fake_time.sleeps[0] == 1.0


def test_without_batching_window_records_go_as_soon_as_they_are_there(
    seed: Seed, make_esm: MakeEsm, fake_time: FakeTime
) -> None:
    # GIVEN 3 records now, and 5 more written while the ESM idles
    seed(3)
    fake_time.on_sleep = lambda n: seed(5, start=3) if n == 1 else None
    handler = StubHandler()
    # WHEN the ESM has no batching window
    make_esm(handler, clock=fake_time.clock, sleep=fake_time.sleep, poll_interval_s=0.25).run()
    # THEN the first 3 go at once, the 5 later ones in a second invocation
    assert handler.sizes == [3, 5]


def test_stops_when_the_stream_is_drained(
    resources: Resources, make_esm: MakeEsm, fake_time: FakeTime
) -> None:
    # GIVEN an empty stream
    handler = StubHandler()
    esm = make_esm(
        handler, idle_polls=3, poll_interval_s=0.25, clock=fake_time.clock, sleep=fake_time.sleep
    )
    # WHEN the ESM runs
    stats = esm.run()
    # THEN it polls idle_polls times, pausing between polls, invokes nothing, and stops
    assert stats.get_records_calls == 3
    assert fake_time.sleeps == [0.25, 0.25]
    assert handler.calls == []
    assert stats.stopped == "drained"


def test_latest_starting_position_skips_existing_records(seed: Seed, make_esm: MakeEsm) -> None:
    # GIVEN records already in the stream
    seed(4)
    handler = StubHandler()
    # WHEN an ESM starts at LATEST / THEN it delivers none of them
    make_esm(handler, starting_position="LATEST").run()
    assert handler.calls == []


def test_running_past_the_function_timeout_is_a_function_error(
    seed: Seed, make_esm: MakeEsm, fake_time: FakeTime
) -> None:
    # GIVEN a handler that runs 10 s on its first call, with a 5 s function timeout
    seqs = seed(2)

    def respond(s: list[str], call: int) -> Any:
        if call == 1:
            fake_time.offset += 10
        return None

    handler = StubHandler(respond)
    # WHEN the ESM consumes the stream
    stats = make_esm(
        handler, function_timeout_s=5, clock=fake_time.clock, sleep=fake_time.sleep
    ).run()
    # THEN the batch is redelivered, and the handler saw its deadline through the context
    assert handler.calls == [seqs, seqs]
    assert stats.timeouts == 1
    assert handler.contexts[0].get_remaining_time_in_millis() == 0


def test_max_invocations_bounds_a_poison_record_retried_forever(
    seed: Seed, make_esm: MakeEsm
) -> None:
    # GIVEN a poison record and unlimited retries
    seqs = seed(1)
    handler = StubHandler(poison(seqs[0]))
    # WHEN the ESM has an invocation budget
    stats = make_esm(handler, max_invocations=4).run()
    # THEN it stops there, saying why
    assert stats.invocations == 4
    assert stats.stopped == "max_invocations"


def test_raw_payload_mode_hands_the_handler_bytes(seed: Seed, make_esm: MakeEsm) -> None:
    # GIVEN 2 records
    seqs = seed(2)
    seen: list[Any] = []
    # WHEN the ESM passes raw payloads
    make_esm(lambda event, ctx: seen.append(event), payload="bytes").run()
    # THEN the handler got one JSON document with both records
    (payload,) = seen
    assert isinstance(payload, bytes)
    assert [r["dynamodb"]["SequenceNumber"] for r in json.loads(payload)["Records"]] == seqs


@pytest.mark.parametrize(
    "settings",
    [
        {"batch_size": 0},
        {"batch_size": 10_001},
        {"maximum_batching_window_s": 301},
        {"maximum_retry_attempts": -2},
        {"maximum_record_age_s": 30},
        {"idle_polls": 0},
    ],
)
def test_settings_outside_lambda_limits_are_rejected(settings: dict[str, Any]) -> None:
    # GIVEN / WHEN a setting Lambda would refuse / THEN it is refused
    with pytest.raises(EsmConfigError):
        EsmConfig(**settings)


def test_without_a_destination_exhausted_records_are_bypassed_and_counted(
    seed: Seed, make_esm: MakeEsm, resources: Resources
) -> None:
    # GIVEN a poison first record, no retries, and no on-failure destination
    seqs = seed(3)
    handler = StubHandler(poison(seqs[0]))
    esm = make_esm(handler, batch_size=1, maximum_retry_attempts=0)
    # WHEN the ESM consumes the stream
    stats = esm.run()
    # THEN the poison record is tried once and bypassed; the others are delivered
    assert handler.calls == [[seqs[0]], [seqs[1]], [seqs[2]]]
    assert stats.records_to_on_failure == 1
    assert esm.on_failure_messages[0]["DDBStreamBatchInfo"]["startSequenceNumber"] == seqs[0]
    assert drain_queue(resources.esm_failure_queue_url) == []


def test_a_partial_failure_in_a_later_batch_keeps_earlier_batches_checkpointed(
    seed: Seed, make_esm: MakeEsm
) -> None:
    # GIVEN 6 records in batches of 3, the 5th failing once
    seqs = seed(6)
    handler = StubHandler(
        lambda s, call: {"batchItemFailures": [{"itemIdentifier": seqs[4]}]} if call == 2 else None
    )
    # WHEN the ESM consumes the stream
    stats = make_esm(handler, batch_size=3).run()
    # THEN only records from the 5th on come back
    assert handler.calls == [seqs[:3], seqs[3:], seqs[4:]]
    assert stats.redeliveries == 2


@pytest.mark.parametrize("payload", ["dict", "bytes"])
def test_emulated_events_decode_back_to_the_items_written(
    seed: Seed, make_esm: MakeEsm, resources: Resources, payload: str
) -> None:
    # GIVEN 12 sample events (binary, sets, nulls, nested maps) in the stream
    from notifier.ddb import decode_stream_event

    seqs = seed(12, users=5)
    decoded: list[Any] = []
    # WHEN the ESM hands them to a handler that decodes them with the project's decoder
    make_esm(lambda event, ctx: decoded.extend(decode_stream_event(event)), payload=payload).run()
    # THEN every record decodes to exactly the item that was written
    assert [r.new_image for r in decoded] == [make_item(i, users=5) for i in range(12)]
    assert [r.sequence_number for r in decoded] == seqs
    assert {r.event_source_arn for r in decoded} == {resources.stream_arn}
    assert {r.event_name for r in decoded} == {"INSERT"}
