"""The local emulation of SES event publishing: the events SES would publish for each send
moto accepted, including a send whose reply was lost, consumed by the real handler."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from ses_helpers import LEDGER, FakePreferences, create_ledger, ledger_item, put_ledger_item

from notifier.local.ses_event_emulator import SesEventEmulator, SqsSink, simulated_outcome
from notifier.ses_events import (
    CATEGORY_TAG,
    KEY_TAG,
    USER_TAG,
    build_ses_events_handler,
    decode_tag,
    encode_tag,
    parse_ses_event,
)

CLOCK = 1_714_557_600.0


class SendCapture:
    """A boto3 SES v2 client whose SendEmail request body and moto's raw answer are kept, as
    the fault proxy sees them."""

    def __init__(self) -> None:
        self.client = boto3.client("sesv2")
        self.request: bytes = b""
        self.response: bytes = b""
        self.status = 0
        events = self.client.meta.events
        events.register("before-send.sesv2.SendEmail", self._before_send)
        events.register("before-parse.sesv2.SendEmail", self._before_parse)

    def _before_send(self, request: Any, **_: Any) -> None:
        body = request.body
        self.request = body if isinstance(body, bytes) else str(body).encode()

    def _before_parse(self, response_dict: dict[str, Any], **_: Any) -> None:
        self.response = response_dict["body"]
        self.status = response_dict["status_code"]

    def send(self, to: str, *, tags: dict[str, str] | None = None) -> str:
        kwargs: dict[str, Any] = {
            "FromEmailAddress": "notifications@example.com",
            "Destination": {"ToAddresses": [to]},
            "Content": {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "b"}}}},
            "ConfigurationSetName": "notifier",
        }
        if tags:
            kwargs["EmailTags"] = [{"Name": k, "Value": v} for k, v in tags.items()]
        return str(self.client.send_email(**kwargs)["MessageId"])


@pytest.fixture
def ses(aws: str) -> SendCapture:
    """GIVEN moto with a verified sending domain and a configuration set."""
    client = boto3.client("sesv2")
    client.create_email_identity(EmailIdentity="example.com")
    client.create_configuration_set(ConfigurationSetName="notifier")
    return SendCapture()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("success@simulator.amazonses.com", ["Send", "Delivery"]),
        ("ooto@simulator.amazonses.com", ["Send", "Delivery"]),
        ("alice@example.com", ["Send", "Delivery"]),
        ("bounce@simulator.amazonses.com", ["Send", "Bounce"]),
        ("Bounce+user-7@Simulator.AmazonSES.com", ["Send", "Bounce"]),
        ("suppressionlist@simulator.amazonses.com", ["Send", "Bounce"]),
        ("complaint@simulator.amazonses.com", ["Send", "Delivery", "Complaint"]),
        ("complaint+x@simulator.amazonses.com", ["Send", "Delivery", "Complaint"]),
    ],
)
def test_each_simulator_address_produces_the_events_ses_would_publish(
    ses: SendCapture, address: str, expected: list[str]
) -> None:
    # GIVEN an emulator collecting events, and a send moto accepted
    sink: list[dict[str, Any]] = []
    emulator = SesEventEmulator(sink.append, clock=lambda: CLOCK)
    message_id = ses.send(address, tags={KEY_TAG: encode_tag("email#n-1")})
    # WHEN the emulator observes it
    events = emulator.observe_send(ses.request, ses.response, ses.status)
    # THEN the events are those of the mailbox simulator, in order, handed to the sink,
    # each a record notifier's parser reads, with moto's message id and the send's tags
    assert [e["eventType"] for e in events] == expected
    assert sink == events
    for e in events:
        parsed = parse_ses_event(json.loads(json.dumps(e)))
        assert parsed.message_id == message_id
        assert decode_tag(parsed.tag(KEY_TAG) or "") == "email#n-1"
        assert e["mail"]["destination"] == [address]
    bounces = [parse_ses_event(e) for e in events if e["eventType"] == "Bounce"]
    assert all(b.bounce_type == "Permanent" and b.bounced == (address,) for b in bounces)
    complaints = [parse_ses_event(e) for e in events if e["eventType"] == "Complaint"]
    assert all(c.complained == (address,) for c in complaints)


def test_simulated_outcome_reads_only_the_simulator_domain() -> None:
    # GIVEN a bounce-looking address elsewhere; THEN it is an ordinary delivery
    assert simulated_outcome("bounce@example.com") == "delivery"
    assert simulated_outcome("bounce+a+b@simulator.amazonses.com") == "bounce"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, b'{"__type":"MessageRejected","message":"Email address is not verified."}'),
        (429, b'{"__type":"TooManyRequestsException","message":"Too many requests."}'),
        (500, b'{"__type":"InternalFailure","message":"injected by the fault proxy"}'),
        (503, b'{"__type":"ServiceUnavailable","message":"injected by the fault proxy"}'),
    ],
)
def test_a_refused_send_publishes_nothing(ses: SendCapture, status: int, body: bytes) -> None:
    # GIVEN a SendEmail request that SES refused (4xx/5xx)
    ses.send("success@simulator.amazonses.com")
    sink: list[dict[str, Any]] = []
    emulator = SesEventEmulator(sink.append, clock=lambda: CLOCK)
    # WHEN observed with the refusal
    events = emulator.observe_send(ses.request, body, status)
    # THEN no event at all (SES accepted nothing)
    assert events == []
    assert sink == []
    assert emulator.counts["refused"] == 1


def test_sends_outside_the_configuration_sets_publish_nothing(ses: SendCapture) -> None:
    # GIVEN an emulator publishing only for configuration set "other"
    sink: list[dict[str, Any]] = []
    emulator = SesEventEmulator(sink.append, configuration_sets={"other"})
    ses.send("alice@example.com")
    # WHEN a send through "notifier" is observed; THEN nothing is published
    assert emulator.observe_send(ses.request, ses.response, ses.status) == []


def test_unsupported_or_unreadable_requests_publish_nothing_and_never_raise() -> None:
    # GIVEN an emulator whose sink fails
    def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("queue gone")

    emulator = SesEventEmulator(broken)
    ok = b'{"MessageId":"m-1"}'
    # WHEN a v1 form body, a bulk send, a send without a message id, and a good send with the
    # failing sink are observed
    assert emulator.observe_send(b"Action=SendEmail&Source=a%40b.c", ok, 200) == []
    assert emulator.observe_send(b'{"BulkEmailEntries": []}', ok, 200) == []
    assert emulator.observe_send(b'{"Destination": {"ToAddresses": ["a@b.co"]}}', b"{}", 200) == []
    events = emulator.observe_send(b'{"Destination": {"ToAddresses": ["a@b.co"]}}', ok, 200)
    # THEN nothing raised; the good send's events exist, the sink's failures are counted
    assert [e["eventType"] for e in events] == ["Send", "Delivery"]
    assert emulator.counts["unsupported"] == 2
    assert emulator.counts["malformed"] == 1
    assert emulator.counts["sink_errors"] == 2


@pytest.fixture
def events_queue(aws: str) -> str:
    """GIVEN the ledger table and the SES events queue in moto."""
    create_ledger()
    return boto3.client("sqs").create_queue(QueueName="notifier-ses-events")["QueueUrl"]


def drain(queue_url: str) -> dict[str, Any]:
    """The queue's messages as one SQS Lambda event (what the event source mapping passes)."""
    sqs = boto3.client("sqs")
    records: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            record = {"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs"}
            records.append(record)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return {"Records": records}


def test_a_send_whose_reply_was_lost_is_reconciled_through_the_queue(
    ses: SendCapture, events_queue: str
) -> None:
    # GIVEN a ledger item left UNKNOWN: the send reached SES (moto) but its reply was dropped
    key, user = "email#user-3:friend_request:42", "user-3"
    put_ledger_item(key, "UNKNOWN", reconcile_by="1714557900")
    tags = {
        KEY_TAG: encode_tag(key),
        USER_TAG: encode_tag(user),
        CATEGORY_TAG: encode_tag("friend_request"),
    }
    moto_id = ses.send("complaint@simulator.amazonses.com", tags=tags)  # the reply is "lost"
    # WHEN the emulator observes the forwarded send and posts its events as SNS would to SQS,
    # and the real handler consumes the queue
    sink = SqsSink(events_queue, boto3.client("sqs"))
    emulator = SesEventEmulator(sink, clock=lambda: CLOCK)
    emulator.observe_send(ses.request, ses.response, ses.status)
    prefs = FakePreferences()
    env = {"NOTIFIER_LEDGER_TABLE": LEDGER, "AWS_REGION": "us-east-1"}
    with build_ses_events_handler(environ=env, preferences=prefs) as handler:
        response = handler(drain(events_queue), None)
    # THEN the item is SENT with moto's message id, reconciled; the complaint suppressed the
    # address and opted the user out of the category
    assert sink.sent == 3
    assert response == {"batchItemFailures": []}
    item = ledger_item(key)
    assert item is not None
    assert (item["state"], item["message_id"], item["outcome"]) == ("SENT", moto_id, "reconciled")
    assert item["delivery"] == "Complaint"
    assert prefs.calls == [
        ("suppress", user, "complaint@simulator.amazonses.com", "complaint"),
        ("opt_out", user, "friend_request", "email"),
    ]
