"""The handler end to end against moto over HTTP: exactly N emails, whatever happens."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.awsrequest import AioAWSResponse
from botocore.exceptions import ReadTimeoutError
from pipeline_helpers import FakeContext, failure_messages, ledger_items

from notifier.channels.base import Outcome, SendResult
from notifier.channels.memory import MemoryChannel
from notifier.handler import Handler
from notifier.local.moto_server import sent_emails
from notifier.pipeline import BatchFailedError
from notifier.samples import user_email


def _recipients(endpoint: str) -> list[str]:
    return sorted(m["destinations"]["ToAddresses"][0] for m in sent_emails(endpoint))


def _expected(event: dict[str, Any]) -> list[str]:
    return sorted(r["dynamodb"]["NewImage"]["user"]["M"]["email"]["S"] for r in event["Records"])


def test_n_events_send_exactly_n_emails_and_redelivery_sends_nothing(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a handler and a batch of 40 INSERTs
    handler = make_handler()
    event = stream_event(40)
    # WHEN the batch is handled
    response = handler(event, FakeContext())
    # THEN exactly one email per record went to the record's user, and the ledger says SENT
    assert response == {"batchItemFailures": []}
    assert _recipients(provisioned["endpoint"]) == _expected(event)
    items = ledger_items()
    assert len(items) == 40
    assert {i["state"] for i in items.values()} == {"SENT"}
    assert all(i["message_id"] for i in items.values())
    # WHEN the same batch is delivered again (also as raw bytes, as the custom runtime does)
    again = handler(json.dumps(event).encode(), FakeContext())
    # THEN nothing more is sent and every record counts as a duplicate
    assert again == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == 40
    assert handler.stats["sent"] == 40
    assert handler.stats["duplicates"] == 40
    assert handler.stats["records"] == 80
    # AND the ledger spent 2 write units per notification sent (claim + commit) and 1 per
    # redelivered duplicate (its failed conditional claim), with no transaction
    assert handler.stats["write_units"] == 40 * 2 + 40 * 1
    assert "TransactWriteItems" not in handler.ledger.calls
    assert handler.ledger.calls["PutItem"] == 80


def test_unrouted_records_are_skipped_and_counted(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a batch with an unknown event type and a MODIFY (default: INSERT only)
    event = stream_event(5, types={1: "birthday"})
    event["Records"][3]["eventName"] = "MODIFY"
    handler = make_handler()
    # WHEN handled
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN those two were skipped, not failed, and the other three sent
    assert handler.stats["skipped"] == 2
    assert handler.stats["sent"] == 3
    assert len(sent_emails(provisioned["endpoint"])) == 3


def test_poison_records_are_dead_lettered_and_marked_failed_while_others_send(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a batch with bad DynamoDB JSON in record 3, a failing template in record 5
    # and a missing recipient in record 7
    event = stream_event(10, types={5: "broken"})
    event["Records"][3]["dynamodb"]["NewImage"]["created_at"] = {"N": "not-a-number"}
    del event["Records"][7]["dynamodb"]["NewImage"]["user"]["M"]["email"]
    handler = make_handler()
    # WHEN handled
    response = handler(event, FakeContext())
    # THEN no batch item failures (permanent failures are not retried)
    assert response == {"batchItemFailures": []}
    # AND the 7 good records were sent
    assert len(sent_emails(provisioned["endpoint"])) == 7
    # AND the 3 poison records are on the failure queue with the full record and reason
    messages = {m["sequence_number"]: m for m in failure_messages(provisioned["queue_url"])}
    seqs = {event["Records"][i]["dynamodb"]["SequenceNumber"]: i for i in (3, 5, 7)}
    assert set(messages) == set(seqs)
    for seq, i in seqs.items():
        assert json.loads(messages[seq]["record"]) == event["Records"][i]
    codes = {seqs[s]: m["error_code"] for s, m in messages.items()}
    assert codes == {3: "DecodeError", 5: "TemplateError", 7: "MissingRecipient"}
    # AND the ledger says FAILED for them
    items = ledger_items()
    failed = {k for k, v in items.items() if v["state"] == "FAILED"}
    eid = event["Records"][5]["dynamodb"]["NewImage"]["event_id"]["S"]
    assert f"email#{eid}" in failed
    assert len(failed) == 3
    assert handler.stats["dead_lettered"] == 3
    # AND nothing in the failure messages reveals a full address
    assert "user-" not in json.dumps([m["reason"] for m in messages.values()])
    # WHEN redelivered THEN nothing is sent or dead-lettered twice
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == 7
    assert failure_messages(provisioned["queue_url"]) == []


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self) -> bytes:
        return self._body


def _inject(handler: Handler, every: int, kinds: list[str]) -> dict[str, int]:
    """Fail every ``every``-th SendEmail with the next kind of ``kinds`` (botocore hook)."""
    counter = itertools.count(1)
    cycle = itertools.cycle(kinds)
    seen = {"injected": 0}

    def before_send(request: Any, **_: Any) -> Any:
        if next(counter) % every:
            return None
        seen["injected"] += 1
        kind = next(cycle)
        if kind == "429":
            body = (
                b'{"__type":"TooManyRequestsException","message":"Maximum sending rate exceeded."}'
            )
            return AioAWSResponse(
                request.url, 429, {"x-amzn-ErrorType": "TooManyRequestsException"}, _Raw(body)
            )
        if kind == "503":
            return AioAWSResponse(request.url, 503, {}, _Raw(b'{"message":"unavailable"}'))
        raise ReadTimeoutError(endpoint_url=request.url)

    client = handler.channels["email"].client  # type: ignore[attr-defined]
    client.meta.events.register("before-send.sesv2.SendEmail", before_send)
    return seen


def test_throttling_and_5xx_at_a_fixed_rate_still_yield_exactly_n(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN every 3rd SES call answered 429 or 503 or timing out before it reached SES
    # (injected through botocore's event hooks: aiobotocore clients)
    handler = make_handler(aws_clients="aiobotocore")
    seen = _inject(handler, 3, ["429", "503", "timeout"])
    event = stream_event(30)
    # WHEN the batch is handled
    response = handler(event, FakeContext())
    # THEN retries inside the invocation deliver exactly one email per record
    assert response == {"batchItemFailures": []}
    assert seen["injected"] >= 10
    assert handler.stats["sent"] == 30
    assert _recipients(provisioned["endpoint"]) == _expected(event)


def test_unknown_outcomes_follow_the_policy(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN "assume_sent" and every 4th send timing out after the request left
    handler = make_handler(write_config(unknown_outcome="assume_sent"), aws_clients="aiobotocore")
    _inject(handler, 4, ["timeout"])
    event = stream_event(12)
    # WHEN handled
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN the 3 unknown sends are recorded as sent (outcome unknown), never retried
    assert handler.stats["assumed_sent"] == 3
    assert len(sent_emails(provisioned["endpoint"])) == 9
    unknown = [v for v in ledger_items().values() if v.get("outcome") == "unknown"]
    assert len(unknown) == 3
    assert {v["state"] for v in unknown} == {"SENT"}


def test_deadline_mid_batch_reports_everything_not_done(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN SES that answers 10 sends and then hangs (a botocore hook: aiobotocore clients),
    # and a context with 4 s left
    handler = make_handler(write_config(margin_ms=300), aws_clients="aiobotocore")
    calls = itertools.count(1)

    async def hang_after_ten(**_: Any) -> None:
        if next(calls) > 10:
            await asyncio.sleep(3600)

    client = handler.channels["email"].client  # type: ignore[attr-defined]
    client.meta.events.register("before-send.sesv2.SendEmail", hang_after_ten)
    event = stream_event(40)
    # WHEN a 40-record batch is handled
    response = handler(event, FakeContext(remaining_ms=4000))
    # THEN some were sent and committed, and every record not committed SENT is reported,
    # lowest first (a send cut off at the deadline is unknown: reported under "retry")
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    seq_of = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(event["Records"])}
    committed = {k for k, v in ledger_items().items() if v["state"] == "SENT"}
    key_of = {
        r["dynamodb"]["SequenceNumber"]: "email#" + r["dynamodb"]["NewImage"]["event_id"]["S"]
        for r in event["Records"]
    }
    assert len(committed) == 10
    assert len(failed) == 30
    assert set(failed) == {s for s, k in key_of.items() if k not in committed}
    assert failed == sorted(failed, key=lambda s: seq_of[s])
    first_pass = len(sent_emails(provisioned["endpoint"]))
    # AND no claim is left behind: a redelivery with time to spare sends exactly the reported
    handler2 = make_handler(write_config(rate=1000))
    assert handler2(event, FakeContext()) == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == first_pass + len(failed)
    assert set(_recipients(provisioned["endpoint"])) == set(_expected(event))
    assert {v["state"] for v in ledger_items().values()} == {"SENT"}


def test_all_records_failing_transiently_raises_for_a_whole_batch_retry(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN SES answering 503 to everything (a botocore hook), 2 attempts per message
    handler = make_handler(aws_clients="aiobotocore")
    _inject(handler, 1, ["503"])
    # WHEN a batch is handled THEN the handler raises so Lambda retries the batch
    with pytest.raises(BatchFailedError):
        handler(stream_event(4), FakeContext(remaining_ms=1500))
    assert sent_emails(provisioned["endpoint"]) == []
    # AND no claim is left behind
    assert ledger_items() == {}


def test_memory_channel_proves_the_seam(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a route of event type "memo" to an in-memory channel, injected ready-made
    memo = MemoryChannel(name="memo")
    handler = make_handler(channels={"memo": memo})
    event = stream_event(6, types={0: "memo", 2: "memo", 4: "memo"})
    # WHEN handled twice
    handler(event, FakeContext())
    handler(event, FakeContext())
    # THEN the memo records went through the memory channel once each, the rest by email
    assert sorted(d.recipient for d in memo.outbox) == sorted(user_email(i % 7) for i in (0, 2, 4))
    assert all(d.key.startswith("memo#") and d.subject for d in memo.outbox)
    assert len(sent_emails(provisioned["endpoint"])) == 3
    assert {k.split("#")[0] for k in ledger_items()} == {"memo", "email"}


def test_channel_outcomes_drive_the_ledger_through_the_memory_channel(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
) -> None:
    # GIVEN a memory channel that rejects user 0 for good and loses user 2's first answer
    memo = MemoryChannel(name="memo")
    memo.fail_next(user_email(0), SendResult(Outcome.PERMANENT, code="Rejected", reason="no"))
    memo.fail_next(user_email(2), SendResult(Outcome.UNKNOWN, code="ReadTimeout"))
    handler = make_handler(channels={"memo": memo})
    event = stream_event(4, types={i: "memo" for i in range(4)})
    # WHEN handled under the default policy ("retry")
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN user 0 is dead-lettered and FAILED, user 2 was delivered twice (at-least-once
    # for an unknown outcome), users 1 and 3 once
    delivered = sorted(d.recipient for d in memo.outbox)
    assert delivered == sorted([user_email(1), user_email(2), user_email(2), user_email(3)])
    (message,) = failure_messages(provisioned["queue_url"])
    assert message["error_code"] == "Rejected"
    assert message["channel"] == "memo"
    states = sorted(v["state"] for v in ledger_items().values())
    assert states == ["FAILED", "SENT", "SENT", "SENT"]


def test_lambda_handler_runs_on_the_environment_and_builtin_templates(
    provisioned: dict[str, str],
    stream_event: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN only the environment a deployment sets (default config, built-in templates)
    import notifier.handler as module

    monkeypatch.setenv("NOTIFIER_MAX_SEND_RATE", "500")  # moto reports a sandbox 1/s
    monkeypatch.delenv("NOTIFIER_CONFIG", raising=False)
    monkeypatch.delenv("NOTIFIER_TEMPLATES", raising=False)
    monkeypatch.setattr(module, "_default", None)
    event = stream_event(6)
    try:
        # WHEN Lambda calls the module-level entry point twice, once with raw bytes
        first = module.lambda_handler(event, FakeContext())
        second = module.lambda_handler(json.dumps(event).encode(), FakeContext())
        default = module._default
        assert default is not None
        stats = dict(default.stats)
    finally:
        if module._default is not None:
            module._default.close()
    # THEN one rendered email per record, none on redelivery, using the built-in templates
    assert first == second == {"batchItemFailures": []}
    mails = sent_emails(provisioned["endpoint"])
    assert len(mails) == 6
    assert all(m["subject"] and m["body"] for m in mails)
    assert stats["sent"] == 6
    assert stats["duplicates"] == 6
