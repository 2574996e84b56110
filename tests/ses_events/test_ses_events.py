"""SES events reach the ledger (status, reconcile) and the preferences (suppression), from
each envelope, against moto over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ses_helpers import (
    LEDGER,
    FakePreferences,
    create_ledger,
    eventbridge_event,
    ledger_item,
    put_ledger_item,
    ses_record,
    sns_event,
    sns_notification,
    sqs_event,
)

from notifier.ses_events import (
    KEY_TAG,
    SesEventsHandler,
    SesEventsRetryError,
    build_ses_events_handler,
    decode_tag,
    encode_tag,
    parse_ses_event,
)

KEY = "email#n-1"
ENV = {
    "NOTIFIER_LEDGER_TABLE": LEDGER,
    "AWS_REGION": "us-east-1",
    "NOTIFIER_SES_EVENTS_RECORD": "all",
}


@pytest.fixture
def make_handler(aws: str) -> Iterator[Callable[..., tuple[SesEventsHandler, FakePreferences]]]:
    """GIVEN the ledger table in moto; factory of handlers with a recording preferences fake."""
    create_ledger()
    built: list[SesEventsHandler] = []

    def make(*, fail: bool = False) -> tuple[SesEventsHandler, FakePreferences]:
        prefs = FakePreferences(fail=fail)
        handler = build_ses_events_handler(environ=ENV, preferences=prefs)
        built.append(handler)
        return handler, prefs

    yield make
    for h in built:
        h.close()


def apply(handler: SesEventsHandler, record: dict[str, Any]) -> Any:
    return handler.run(handler.processor.apply(parse_ses_event(record)))


# -- tags ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["email#n-1", "", "ü🙂 key/with+odd=chars", "x" * 192])
def test_a_tag_round_trips_in_the_characters_ses_allows(text: str) -> None:
    # GIVEN any text of at most 192 UTF-8 bytes
    # WHEN it is encoded as a tag value
    value = encode_tag(text)
    # THEN it holds only A-Z a-z 0-9 _ - in at most 256 characters, and decodes back
    assert len(value) <= 256
    assert all(c.isascii() and (c.isalnum() or c in "_-") for c in value)
    assert decode_tag(value) == text


def test_text_over_192_bytes_is_refused_as_a_tag() -> None:
    # GIVEN 193 bytes of text; WHEN encoded; THEN ValueError (SES would refuse the tag)
    with pytest.raises(ValueError, match="at most 192"):
        encode_tag("é" * 96 + "x")


@pytest.mark.parametrize(
    "junk",
    ["a+b", "abc=", "abcde", "_x", "_w_w", "a b", "x" * 257],
    ids=["plus", "padding", "bad-length", "stray-bits", "not-utf8", "space", "too-long"],
)
def test_junk_tag_values_are_refused(junk: str) -> None:
    # GIVEN a value encode_tag never produces; WHEN decoded; THEN ValueError
    with pytest.raises(ValueError, match="not a notifier tag value"):
        decode_tag(junk)


# -- the ledger ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "status", "extra"),
    [
        ("Send", "Send", {}),
        ("Delivery", "Delivery", {}),
        ("DeliveryDelay", "DeliveryDelay", {}),
        ("Bounce", "Bounce", {"bounce_type": "Permanent"}),
        ("Complaint", "Complaint", {"complaint_type": "abuse"}),
        ("Reject", "Reject", {}),
        ("Rendering Failure", "RenderingFailure", {}),
    ],
)
def test_each_event_type_records_its_status_on_a_sent_item(
    make_handler: Callable[..., Any], event_type: str, status: str, extra: dict[str, str]
) -> None:
    # GIVEN a SENT ledger item with SES's message id
    handler, _ = make_handler()
    put_ledger_item(KEY, "SENT", message_id="0100017-msg-1")
    # WHEN the event for its message arrives
    result = apply(handler, ses_record(event_type))
    # THEN the status (and its detail) is on the item; state and message id are untouched
    item = ledger_item(KEY)
    assert item is not None
    assert item["delivery"] == status
    # the event's own time (Send has none: the mail's), not the clock's
    assert 1_714_557_600 <= float(item["delivery_at"]) <= 1_714_557_602
    for name, value in extra.items():
        assert item[name] == value
    assert (item["state"], item["message_id"]) == ("SENT", "0100017-msg-1")
    assert "outcome" not in item
    assert (result.ledger, result.write_units) == ("updated", 1)


@pytest.mark.parametrize("state", ["UNKNOWN", "SENDING"])
def test_a_send_event_reconciles_an_unknown_outcome(
    make_handler: Callable[..., Any], state: str
) -> None:
    # GIVEN an item whose send outcome is unknown (or whose owner has not committed yet)
    handler, _ = make_handler()
    put_ledger_item(KEY, state, reconcile_by="1714557900")
    # WHEN SES's Send event for its tag arrives
    result = apply(handler, ses_record("Send", message_id="0100017-proof"))
    # THEN it is SENT with SES's message id, marked reconciled, in 2 requests (1 refused)
    item = ledger_item(KEY)
    assert item is not None
    assert item["state"] == "SENT"
    assert item["message_id"] == "0100017-proof"
    assert item["outcome"] == "reconciled"
    assert item["delivery"] == "Send"
    assert (result.ledger, result.write_units) == ("reconciled", 2)
    assert handler.processor.write_units == 2


@pytest.mark.parametrize("state", ["SENT", "FAILED", "PENDING"])
def test_a_send_event_does_not_touch_a_settled_state(
    make_handler: Callable[..., Any], state: str
) -> None:
    # GIVEN a settled item
    handler, _ = make_handler()
    put_ledger_item(KEY, state, message_id="0100017-original", error_code="X")
    # WHEN a Send event (with another message id) arrives
    apply(handler, ses_record("Send", message_id="0100017-other"))
    # THEN state, message id and outcome are as they were; only the status is recorded
    item = ledger_item(KEY)
    assert item is not None
    assert (item["state"], item["message_id"], item["error_code"]) == (
        state,
        "0100017-original",
        "X",
    )
    assert "outcome" not in item
    assert item["delivery"] == "Send"


def test_reconcile_keeps_a_stronger_status_already_recorded(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN an UNKNOWN item that already shows a Delivery (events arrive out of order)
    handler, _ = make_handler()
    put_ledger_item(KEY, "UNKNOWN", delivery="Delivery")
    # WHEN the (late) Send event arrives
    result = apply(handler, ses_record("Send", message_id="0100017-late"))
    # THEN the item is reconciled and its status stays Delivery
    item = ledger_item(KEY)
    assert item is not None
    assert (item["state"], item["message_id"], item["delivery"]) == (
        "SENT",
        "0100017-late",
        "Delivery",
    )
    assert result.ledger == "reconciled"


def test_any_event_of_the_message_reconciles(make_handler: Callable[..., Any]) -> None:
    # GIVEN an UNKNOWN item whose Send event has not arrived (yet)
    handler, _ = make_handler()
    put_ledger_item(KEY, "UNKNOWN")
    # WHEN its Delivery event arrives first
    apply(handler, ses_record("Delivery", message_id="0100017-d"))
    # THEN that is evidence enough: SENT with the message id, status Delivery
    item = ledger_item(KEY)
    assert item is not None
    assert (item["state"], item["message_id"], item["delivery"]) == (
        "SENT",
        "0100017-d",
        "Delivery",
    )


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["Delivery", "Send"], "Delivery"),
        (["Bounce", "Delivery"], "Bounce"),
        (["DeliveryDelay", "Delivery"], "Delivery"),
        (["Delivery", "DeliveryDelay"], "Delivery"),
        (["Delivery", "Complaint"], "Complaint"),
        (["Complaint", "Bounce"], "Complaint"),
        (["Bounce", "Reject"], "Reject"),
    ],
)
def test_a_weaker_status_never_overwrites_a_stronger_one(
    make_handler: Callable[..., Any], sequence: list[str], final: str
) -> None:
    # GIVEN a SENT item
    handler, _ = make_handler()
    put_ledger_item(KEY, "SENT", message_id="0100017-msg-1")
    # WHEN its events arrive in this order
    results = [apply(handler, ses_record(t)) for t in sequence]
    # THEN the strongest (the later one on a tie) is recorded; a stale one writes nothing
    item = ledger_item(KEY)
    assert item is not None
    assert item["delivery"] == final
    if final == sequence[0]:
        assert results[-1].ledger == "stale"


def test_an_event_for_a_missing_key_is_ignored(make_handler: Callable[..., Any]) -> None:
    # GIVEN no ledger item for the key (expired, or never ours)
    handler, _ = make_handler()
    # WHEN a Delivery event for it arrives
    result = apply(handler, ses_record("Delivery"))
    # THEN nothing is created; it is counted as missing
    assert ledger_item(KEY) is None
    assert result.ledger == "missing"
    assert handler.processor.stats["missing"] == 1


def test_untagged_and_badly_tagged_events_leave_the_ledger_alone(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN a SENT item
    handler, _ = make_handler()
    put_ledger_item(KEY, "SENT")
    # WHEN an event without the key tag, and one with a junk key tag, arrive
    first = apply(handler, ses_record("Delivery", key=None))
    second = apply(handler, ses_record("Delivery", key=None, raw_tags={KEY_TAG: ["a+b"]}))
    # THEN neither touches the item; both count as untagged, the junk one as a bad tag
    item = ledger_item(KEY)
    assert item is not None
    assert "delivery" not in item
    assert (first.ledger, second.ledger) == ("untagged", "untagged")
    assert handler.processor.stats["bad_tag"] == 1


def test_open_and_click_are_ignored(make_handler: Callable[..., Any]) -> None:
    # GIVEN a SENT item; WHEN Open and Click events arrive; THEN nothing changes
    handler, prefs = make_handler()
    put_ledger_item(KEY, "SENT")
    results = [apply(handler, ses_record(t)) for t in ("Open", "Click")]
    assert [r.ledger for r in results] == ["ignored", "ignored"]
    item = ledger_item(KEY)
    assert item is not None
    assert "delivery" not in item
    assert prefs.calls == []


# -- preferences -----------------------------------------------------------------------------


def test_a_permanent_bounce_suppresses_the_address(make_handler: Callable[..., Any]) -> None:
    # GIVEN a SENT item; WHEN a Permanent bounce for it arrives
    handler, prefs = make_handler()
    put_ledger_item(KEY, "SENT")
    result = apply(handler, ses_record("Bounce", recipient="bob@example.com"))
    # THEN the bounced address of the tagged user is suppressed (and nothing opted out)
    assert prefs.calls == [("suppress", "user-1", "bob@example.com", "bounce")]
    assert (result.suppressed, result.opted_out) == (1, 0)


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_a_soft_bounce_suppresses_nothing(
    make_handler: Callable[..., Any], bounce_type: str
) -> None:
    # GIVEN a SENT item; WHEN a non-permanent bounce arrives
    handler, prefs = make_handler()
    put_ledger_item(KEY, "SENT")
    apply(handler, ses_record("Bounce", bounce_type=bounce_type))
    # THEN the ledger shows it, and the preferences are untouched
    item = ledger_item(KEY)
    assert item is not None
    assert item["bounce_type"] == bounce_type
    assert prefs.calls == []


def test_a_complaint_suppresses_and_opts_out_of_the_category(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN a SENT item; WHEN a complaint arrives
    handler, prefs = make_handler()
    put_ledger_item(KEY, "SENT")
    apply(handler, ses_record("Complaint", recipient="carol@example.com"))
    # THEN the address is suppressed and the user opted out of that category on email
    assert prefs.calls == [
        ("suppress", "user-1", "carol@example.com", "complaint"),
        ("opt_out", "user-1", "friend_request", "email"),
    ]


def test_a_complaint_suppresses_even_without_a_ledger_item_or_category(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN no ledger item, and a complaint tagged with a user but no category
    handler, prefs = make_handler()
    result = apply(handler, ses_record("Complaint", category=None, feedback_type=None))
    # THEN the address is still suppressed (no opt-out: no category to name)
    assert result.ledger == "missing"
    assert prefs.calls == [("suppress", "user-1", "alice@example.com", "complaint")]


def test_a_bounce_without_a_user_tag_suppresses_nothing(make_handler: Callable[..., Any]) -> None:
    # GIVEN a permanent bounce without a user tag; WHEN it is applied
    handler, prefs = make_handler()
    apply(handler, ses_record("Bounce", user=None))
    # THEN nobody can be suppressed; it is counted
    assert prefs.calls == []
    assert handler.processor.stats["unattributed"] == 1


# -- envelopes and batches -------------------------------------------------------------------


def test_an_sns_invocation_applies_every_record(make_handler: Callable[..., Any]) -> None:
    # GIVEN two UNKNOWN items
    handler, _ = make_handler()
    put_ledger_item("email#a", "UNKNOWN")
    put_ledger_item("email#b", "UNKNOWN")
    # WHEN one SNS invocation carries a Send event for each
    event = sns_event(
        ses_record("Send", key="email#a", message_id="m-a"),
        ses_record("Send", key="email#b", message_id="m-b"),
    )
    response = handler(event, None)
    # THEN both are reconciled
    assert response == {"batchItemFailures": []}
    for key, mid in (("email#a", "m-a"), ("email#b", "m-b")):
        item = ledger_item(key)
        assert item is not None
        assert (item["state"], item["message_id"]) == ("SENT", mid)


@pytest.mark.parametrize("with_type", [True, False], ids=["detail-eventType", "detail-type-only"])
def test_an_eventbridge_invocation_applies_its_detail(
    make_handler: Callable[..., Any], with_type: bool
) -> None:
    # GIVEN a SENT item and an EventBridge "Email Bounced" event (detail = the SES record)
    handler, prefs = make_handler()
    put_ledger_item(KEY, "SENT")
    record = ses_record("Bounce")
    if not with_type:
        del record["eventType"]
    # WHEN the rule's target (this function) is invoked with it
    handler(eventbridge_event(record, "Email Bounced"), None)
    # THEN the bounce is recorded and the address suppressed
    item = ledger_item(KEY)
    assert item is not None
    assert item["delivery"] == "Bounce"
    assert [c[0] for c in prefs.calls] == ["suppress"]


def test_an_sqs_batch_reads_sns_eventbridge_and_raw_bodies(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN three SENT items
    handler, _ = make_handler()
    for k in ("email#a", "email#b", "email#c"):
        put_ledger_item(k, "SENT")
    # WHEN an SQS batch carries an SNS notification, an EventBridge event and a bare record
    event = sqs_event(
        json.dumps(sns_notification(ses_record("Delivery", key="email#a"))),
        json.dumps(eventbridge_event(ses_record("Delivery", key="email#b"), "Email Delivered")),
        json.dumps(ses_record("Delivery", key="email#c")),
    )
    response = handler(event, None)
    # THEN all three are applied, no failures
    assert response == {"batchItemFailures": []}
    for k in ("email#a", "email#b", "email#c"):
        item = ledger_item(k)
        assert item is not None
        assert item["delivery"] == "Delivery"


def test_malformed_records_are_dropped_and_the_rest_applied(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN a SENT item and an SQS batch where three of four records are malformed
    handler, _ = make_handler()
    put_ledger_item(KEY, "SENT")
    no_mail = ses_record("Delivery")
    del no_mail["mail"]
    no_bounce = ses_record("Bounce")
    del no_bounce["bounce"]
    event = sqs_event(
        "not json {",
        json.dumps(no_mail),
        json.dumps(sns_notification(no_bounce)),
        json.dumps(ses_record("Delivery")),
    )
    # WHEN the batch is handled
    response = handler(event, None)
    # THEN the good one is applied; the malformed ones are counted and NOT returned as
    # failures (poison: a retry can never succeed)
    assert response == {"batchItemFailures": []}
    item = ledger_item(KEY)
    assert item is not None
    assert item["delivery"] == "Delivery"
    assert handler.processor.stats["malformed"] == 3


@pytest.mark.parametrize("event", [{"hello": "world"}, [], "[1, 2]", {"Records": "no"}])
def test_an_event_that_is_no_envelope_does_not_crash(
    make_handler: Callable[..., Any], event: Any
) -> None:
    # GIVEN an invocation with something that is not an SNS/SQS/EventBridge event
    handler, _ = make_handler()
    # WHEN handled; THEN no failure is reported and it is counted as malformed
    assert handler(event, None) == {"batchItemFailures": []}
    assert handler.processor.stats["malformed"] == 1


def test_a_transient_failure_is_a_partial_batch_failure_on_sqs(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN a preferences store that fails, and a batch of a delivery and a complaint
    handler, _ = make_handler(fail=True)
    put_ledger_item("email#a", "SENT")
    put_ledger_item("email#b", "SENT")
    event = sqs_event(
        json.dumps(sns_notification(ses_record("Delivery", key="email#a"))),
        json.dumps(sns_notification(ses_record("Complaint", key="email#b"))),
    )
    # WHEN handled
    response = handler(event, None)
    # THEN only the complaint comes back to be retried; its ledger part is already done
    # (and idempotent when it is redelivered)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    item = ledger_item("email#b")
    assert item is not None
    assert item["delivery"] == "Complaint"


def test_a_transient_failure_fails_an_sns_invocation_for_a_retry(
    make_handler: Callable[..., Any],
) -> None:
    # GIVEN a preferences store that fails; WHEN an SNS invocation carries a complaint
    handler, _ = make_handler(fail=True)
    # THEN the invocation raises, so Lambda retries it (SNS invokes asynchronously)
    with pytest.raises(SesEventsRetryError):
        handler(sns_event(ses_record("Complaint")), None)


def test_a_redelivered_event_changes_nothing_more(make_handler: Callable[..., Any]) -> None:
    # GIVEN an UNKNOWN item reconciled by a Send event
    handler, _ = make_handler()
    put_ledger_item(KEY, "UNKNOWN")
    event = sns_event(ses_record("Send", message_id="m-1"))
    handler(event, None)
    first = ledger_item(KEY)
    # WHEN the same event is delivered again (SNS and SQS deliver at least once)
    handler(event, None)
    # THEN the item is the same
    assert ledger_item(KEY) == first


def test_by_default_send_and_delivery_only_settle_parked_sends(aws: str) -> None:
    # GIVEN the default handler (Send and Delivery statuses not recorded: one write per email
    # would double the ledger's cost), a settled item and a parked unknown send
    create_ledger()
    put_ledger_item("email#settled", "SENT", message_id="m-1")
    put_ledger_item("email#parked", "UNKNOWN", outcome="unknown")
    env = {"NOTIFIER_LEDGER_TABLE": LEDGER, "AWS_REGION": "us-east-1"}
    with build_ses_events_handler(environ=env, preferences=FakePreferences()) as handler:
        # WHEN Send and Delivery events arrive for both, and a bounce for the settled one
        results = [
            apply(handler, ses_record("Send", key="email#settled")),
            apply(handler, ses_record("Delivery", key="email#settled")),
            apply(handler, ses_record("Send", key="email#parked", message_id="ses-42")),
            apply(handler, ses_record("Bounce", key="email#settled")),
        ]
        writes = handler.processor.write_units
        reads = handler.processor.read_units
    # THEN the settled item was only read (no write) for Send and Delivery ...
    assert [r.ledger for r in results[:2]] == ["settled", "settled"]
    assert [r.write_units for r in results[:2]] == [0, 0]
    # ... the parked send was proven by its Send event ...
    assert results[2].ledger == "reconciled"
    parked = ledger_item("email#parked")
    assert parked is not None
    assert (parked["state"], parked["message_id"], parked["outcome"]) == (
        "SENT",
        "ses-42",
        "reconciled",
    )
    # ... and the bounce, an actionable status, was written
    settled = ledger_item("email#settled")
    assert settled is not None
    assert settled["delivery"] == "Bounce"
    assert "delivery" not in parked
    assert (reads, writes) == (3.0, 2)
