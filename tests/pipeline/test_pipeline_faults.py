"""Faults Lambda really meets: hung dependencies, account and credential faults, records near
the stream's end, keys DynamoDB refuses, messages SQS refuses, personal data in errors."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.awsrequest import AioAWSResponse
from pipeline_helpers import FakeContext, failure_messages, ledger_items

from notifier.failures import MAX_BODY_BYTES, Failure, FailureQueue, Published
from notifier.handler import Handler
from notifier.local.moto_server import sent_emails
from notifier.pipeline import BatchFailedError
from notifier.retry import Deadline


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self) -> bytes:
        return self._body


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An endpoint that takes connections and requests and never answers (a hung dependency)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _ses_answers(handler: Handler, status: int, code: str, message: str = "denied") -> list[int]:
    """Every SendEmail answered ``status``/``code`` (botocore hook) until ``calls[1]`` is set;
    returns the call counter."""
    calls = [0, 0]

    def before_send(request: Any, **_: Any) -> Any:
        if calls[1]:
            return None  # healed
        calls[0] += 1
        body = json.dumps({"__type": code, "message": message}).encode()
        return AioAWSResponse(request.url, status, {"x-amzn-ErrorType": code}, _Raw(body))

    client = handler.channels["email"].client  # type: ignore[attr-defined]
    client.meta.events.register("before-send.sesv2.SendEmail", before_send)
    return calls


# -- deadlines -------------------------------------------------------------------------------


def test_a_hung_ledger_never_outlives_the_invocation(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    blackhole: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN DynamoDB (the ledger) hanging on every request, and a 10 s invocation budget
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", blackhole)
    handler = make_handler()
    context = FakeContext(remaining_ms=10_000)
    started = time.monotonic()
    # WHEN a batch is handled
    with pytest.raises(BatchFailedError) as failed:
        handler(stream_event(20), context)
    # THEN the handler gave up before Lambda's deadline, with every record failed transiently
    assert context.get_remaining_time_in_millis() > 0
    assert time.monotonic() - started < 10
    assert failed.value.stats["failed_transient"] == 20
    assert sent_emails(provisioned["endpoint"]) == []


@pytest.mark.parametrize("service", ["sesv2", "sqs"])
def test_a_hung_send_or_failure_queue_never_outlives_the_invocation(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    blackhole: str,
    monkeypatch: pytest.MonkeyPatch,
    service: str,
) -> None:
    # GIVEN SES (or SQS) hanging on every request, a poison record to dead-letter, 4 s left
    monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service.upper()}", blackhole)
    handler = make_handler(write_config(margin_ms=1000))
    event = stream_event(6)
    del event["Records"][2]["dynamodb"]["NewImage"]["user"]["M"]["email"]
    context = FakeContext(remaining_ms=4000)
    # WHEN the batch is handled
    try:
        response = handler(event, context)
        reported = len(response["batchItemFailures"])
    except BatchFailedError:
        reported = 6
    # THEN it returned before the deadline, and what could not be done is reported
    assert context.get_remaining_time_in_millis() > 0
    assert reported >= 1
    # AND no claim is left SENDING without an outcome (cut-off sends were released)
    assert all(v["state"] != "SENDING" for v in ledger_items().values())


# -- account faults --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (403, "ExpiredTokenException"),
        (403, "AccessDeniedException"),
        (408, "RequestTimeout"),
        (400, "SendingPausedException"),
        (400, "LimitExceededException"),
    ],
)
def test_account_faults_are_never_the_messages_fault(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
) -> None:
    # GIVEN SES answering an account fault to every send (aiobotocore clients, a botocore hook)
    handler = make_handler(aws_clients="aiobotocore")
    calls = _ses_answers(handler, status, code)
    event = stream_event(40)
    # WHEN a batch is handled
    with caplog.at_level(logging.INFO, logger="notifier"), pytest.raises(BatchFailedError):
        handler(event, FakeContext(remaining_ms=1500))
    # THEN nothing is dead-lettered or committed FAILED, and no claim is left behind
    assert failure_messages(provisioned["queue_url"]) == []
    assert ledger_items() == {}
    # AND SES was not hammered: after the first fault (16 sends in flight at most) the
    # channel paused, and only probes went out
    assert calls[0] <= 16 + 2
    # AND one alarm line names the fault for the whole batch
    alarms = [json.loads(r.message) for r in caplog.records if "account fault" in r.message]
    assert len(alarms) == 1
    assert alarms[0]["code"] == code
    # every notification is deferred by the fault, or (on a loaded machine) by the deadline
    # before its turn came: at least all those that met the paused channel
    assert 17 <= alarms[0]["deferred"] <= 40


def test_after_an_account_fault_clears_the_channel_resumes_with_one_probe(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a channel paused by an expired token
    handler = make_handler(aws_clients="aiobotocore")
    calls = _ses_answers(handler, 403, "ExpiredTokenException")
    event = stream_event(10)
    with pytest.raises(BatchFailedError):
        handler(event, FakeContext(remaining_ms=1500))
    faults = calls[0]
    # WHEN the token is renewed and Lambda retries the batch (the pause still running)
    calls[1] = 1
    response = handler(event, FakeContext(remaining_ms=5000))
    # THEN the channel waited out its pause, probed once, and sent every record exactly once
    assert response == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == 10
    assert faults >= 1
    assert handler.pipeline.breaker("email").cooldown == 0


# -- one record, one fate --------------------------------------------------------------------


def test_a_record_near_the_streams_end_is_parked_in_full(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a record written 21 h ago (the guard is 20 h) and SES failing with 503 throughout
    handler = make_handler(aws_clients="aiobotocore")
    _ses_answers(handler, 503, "ServiceUnavailable", "unavailable")
    event = stream_event(3)
    event["Records"][1]["dynamodb"]["ApproximateCreationDateTime"] = int(time.time()) - 21 * 3600
    # WHEN handled
    response = handler(event, FakeContext(remaining_ms=1500))
    # THEN the old record is on the failure queue in full (RecordExpiring) and done for the ESM,
    # the young ones are reported to come back; no claim is held for any
    seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [seqs[0], seqs[2]]
    (parked,) = failure_messages(provisioned["queue_url"])
    assert parked["error_code"] == "RecordExpiring"
    assert json.loads(parked["record"]) == event["Records"][1]
    assert ledger_items() == {}
    assert handler.stats["expiring_parked"] == 1


def test_an_over_long_dedup_key_is_hashed_and_still_deduplicates(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a record whose event_id is 3,000 bytes (over DynamoDB's 2,048-byte key limit)
    handler = make_handler()
    event = stream_event(4)
    event["Records"][1]["dynamodb"]["NewImage"]["event_id"] = {"S": "e" * 3000}
    # WHEN handled twice
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN all four were sent once; its ledger key is a hash, not the raw id
    assert len(sent_emails(provisioned["endpoint"])) == 4
    keys = set(ledger_items())
    assert any(k.startswith("email#sha256:") for k in keys)
    assert all(len(k) < 200 for k in keys)


def test_personal_data_never_reaches_reasons_logs_or_the_ledger(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a record whose number attribute holds an email address (a decoding error), and
    # SES rejecting another record's message with its recipient in the error text
    handler = make_handler(aws_clients="aiobotocore")
    event = stream_event(3)
    event["Records"][0]["dynamodb"]["NewImage"]["created_at"] = {"N": "jane.doe@corp.example"}
    target = event["Records"][2]["dynamodb"]["NewImage"]["user"]["M"]["email"]["S"]

    def reject(request: Any, **_: Any) -> Any:
        if target.encode() not in request.body:
            return None
        body = json.dumps(
            {"__type": "MessageRejected", "message": f"Address blacklisted: {target}"}
        ).encode()
        return AioAWSResponse(request.url, 400, {}, _Raw(body))

    client = handler.channels["email"].client  # type: ignore[attr-defined]
    client.meta.events.register("before-send.sesv2.SendEmail", reject)
    # WHEN handled
    with caplog.at_level(logging.DEBUG, logger="notifier"):
        assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN neither address appears in a failure message's reason, a ledger entry or a log line
    reasons = [m["reason"] for m in failure_messages(provisioned["queue_url"])]
    assert len(reasons) == 2
    seen = json.dumps(reasons) + json.dumps(ledger_items()) + caplog.text
    assert "jane.doe@corp.example" not in seen
    assert target not in seen


# -- the failure queue -----------------------------------------------------------------------


class _PickySqs:
    """SQS that refuses bodies with characters outside its allowed set (as real SQS does)."""

    def __init__(self, refuse_all: bool = False) -> None:
        self.refuse_all = refuse_all
        self.bodies: list[str] = []

    async def send_message_batch(self, QueueUrl: str, Entries: list[Any]) -> dict[str, Any]:
        ok, failed = [], []
        for e in Entries:
            body = e["MessageBody"]
            bad = self.refuse_all or any(
                ord(c) in (0xFFFE, 0xFFFF) or 0xD800 <= ord(c) <= 0xDFFF for c in body
            )
            if bad:
                failed.append(
                    {"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents"}
                )
            else:
                self.bodies.append(body)
                ok.append({"Id": e["Id"]})
        return {"Successful": ok, "Failed": failed}


def test_a_message_sqs_refuses_is_sent_again_in_a_safe_form() -> None:
    # GIVEN a failure whose record holds U+FFFF
    failure = Failure(
        reason="r", error_code="E", record=json.dumps({"s": "a\uffffb"}, ensure_ascii=False)
    )
    sqs = _PickySqs()
    # WHEN published
    result = asyncio.run(FailureQueue(sqs, queue_url="q").publish([failure], Deadline.after(5)))
    # THEN it went out escaped (ASCII), and decodes to the same record
    assert result == [Published.OK]
    (body,) = sqs.bodies
    assert body.isascii()
    assert json.loads(json.loads(body)["record"]) == {"s": "a\uffffb"}


def test_a_message_refused_in_both_forms_is_final_not_retried_forever() -> None:
    sqs = _PickySqs(refuse_all=True)
    failure = Failure(reason="r", error_code="E", record="{}")
    result = asyncio.run(FailureQueue(sqs, queue_url="q").publish([failure], Deadline.after(5)))
    assert result == [Published.REFUSED]


@pytest.mark.parametrize("char", ["語", '"', "\\"])
def test_failure_bodies_are_capped_in_bytes_after_encoding(char: str) -> None:
    # GIVEN a 300,000-character record of multi-byte or escaped characters
    failure = Failure(reason="r", error_code="E", record=char * 300_000)
    # WHEN encoded (plain and safe forms) THEN the body fits SQS, and says it was trimmed
    for safe in (False, True):
        body = failure.body(safe=safe)
        assert len(body.encode("utf-8")) <= MAX_BODY_BYTES
        doc = json.loads(body)
        assert doc["record_truncated"] is True
        assert doc["record_bytes"] == len((char * 300_000).encode())
        assert doc["record"] == char * len(doc["record"])


def test_a_paused_channel_holds_the_invocation_instead_of_returning_at_once(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a channel paused for a minute by an earlier account fault (process-wide breaker),
    # and a margin of 1 s before Lambda's deadline (what the handler keeps to finish in)
    handler = make_handler(write_config(margin_ms=1000), aws_clients="aiobotocore")
    calls = _ses_answers(handler, 403, "ExpiredTokenException")
    breaker = handler.pipeline.breaker("email")
    breaker.trip("ExpiredTokenException")
    breaker.cooldown = 60.0
    breaker.open_until = time.monotonic() + 60.0
    context = FakeContext(remaining_ms=2700)
    # WHEN Lambda invokes it with 2.7 s left (work deadline 1.7 s)
    started = time.monotonic()
    with pytest.raises(BatchFailedError) as failed:
        handler(stream_event(5), context)
    # THEN nothing was claimed or sent, every record is reported, and the invocation was held
    # to its work deadline (so the ESM's retries are paced), still ending before Lambda's
    assert calls[0] == 0
    assert ledger_items() == {}
    assert failed.value.stats["account_faults"] == 5
    assert time.monotonic() - started >= 1.5
    assert context.get_remaining_time_in_millis() > 0
