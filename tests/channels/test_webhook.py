"""The webhook channel against a real local receiver that verifies every signature: delivery,
the envelope, webhook-id = ledger key on every attempt, the verdict table, timeouts, the
allow-list and option checks at build, and no secret in any log, error or reason."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any

import pytest
from webhook_helpers import (
    OLD_SECRET,
    SECRET,
    SECRET_ENV,
    FakeRecord,
    build,
    closed_port_url,
    message,
    options,
    receiver_fixture,  # noqa: F401 - the fixture "receiver"
    webhook_receiver_server_fixture,  # noqa: F401 - the session fixture behind it
)

from notifier.channels import Channel, ChannelContext, build_channel
from notifier.channels.base import Message, Outcome, SendResult
from notifier.channels.webhook import host_allowed, parse_retry_after
from notifier.config import ConfigError
from notifier.local.webhook_receiver import Reply, WebhookReceiver
from notifier.retry import Backoff, Deadline


def send(
    opts: dict[str, Any],
    *messages: Message,
    deadline_s: float = 10.0,
    one_attempt: bool = False,
    **kw: Any,
) -> list[SendResult]:
    """Build the channel from ``opts`` and send ``messages`` one after another."""

    async def go() -> list[SendResult]:
        async with AsyncExitStack() as stack:
            channel = await build(opts, stack, **kw)
            results = []
            for m in messages:
                if one_attempt:
                    results.append(await channel.send_one(m))
                else:
                    results.append(await channel.send(m, Deadline.after(deadline_s)))
            return results

    return asyncio.run(go())


def build_error(opts: dict[str, Any]) -> str:
    async def go() -> None:
        async with AsyncExitStack() as stack:
            await build(opts, stack)

    with pytest.raises(ConfigError) as info:
        asyncio.run(go())
    return str(info.value)


# -- delivery -----------------------------------------------------------------------------------


def test_a_delivery_is_signed_verified_and_carries_the_envelope(receiver: WebhookReceiver) -> None:
    # GIVEN a channel to the verifying receiver
    # WHEN one notification is sent
    [result] = send(options(receiver.url), message("hooks#evt-1"))
    # THEN it is sent, its id the webhook-id
    assert result.outcome is Outcome.SENT
    assert result.message_id == "hooks#evt-1"
    # AND the receiver (the reference standardwebhooks library) verified it
    [d] = receiver.deliveries
    assert receiver.verifier == "standardwebhooks"
    assert d.verified
    assert d.webhook_id == "hooks#evt-1"
    # AND the body is the envelope: type, ISO-8601 creation time, the new image
    assert d.payload == {
        "type": "profile_view",
        "timestamp": "2023-11-14T22:13:20.250000Z",
        "data": {
            "user": {"id": "u-1", "email": "grace@example.com"},
            "actor": {"name": "Ada Lovelace"},
            "score": 12.5,
            "big": 12345678901234567890,
        },
    }
    # AND DynamoDB numbers are JSON numbers with their exact digits
    assert b'"score":12.50' in d.body
    assert b'"big":12345678901234567890' in d.body
    assert d.headers["content-type"] == "application/json"


def test_a_remove_sends_the_old_image(receiver: WebhookReceiver) -> None:
    record = FakeRecord(event_name="REMOVE", old_image={"id": "gone"}, new_image=None)
    [result] = send(options(receiver.url), message("hooks#r", record, event_type="deleted"))
    assert result.outcome is Outcome.SENT
    assert receiver.deliveries[0].payload["data"] == {"id": "gone"}
    assert receiver.deliveries[0].payload["type"] == "deleted"


def test_retries_carry_the_same_webhook_id_freshly_signed(receiver: WebhookReceiver) -> None:
    # GIVEN a receiver that fails twice (500, then 429) before accepting
    receiver.enqueue(Reply(status=500), Reply(status=429))
    # WHEN one notification is sent
    [result] = send(options(receiver.url), message("hooks#evt-2"))
    # THEN it is sent on the third attempt
    assert result.outcome is Outcome.SENT
    assert result.attempts == 3
    # AND every attempt carried the ledger key as webhook-id and a valid signature
    assert [(d.webhook_id, d.verified, d.status) for d in receiver.deliveries] == [
        ("hooks#evt-2", True, 500),
        ("hooks#evt-2", True, 429),
        ("hooks#evt-2", True, 200),
    ]
    assert receiver.accepted() == {"hooks#evt-2": 1}


def test_a_redelivery_reuses_the_id_so_the_receiver_can_deduplicate(
    receiver: WebhookReceiver,
) -> None:
    # GIVEN the same notification sent twice (a redelivered record), and another one
    send(options(receiver.url), message("hooks#a.1"), message("hooks#a.1"), message("hooks#b"))
    # THEN the receiver sees the same webhook-id twice, the other once
    assert receiver.accepted() == {"hooks#a%2E1": 2, "hooks#b": 1}
    assert receiver.duplicates() == {"hooks#a%2E1": 2}


def test_an_unknown_outcome_is_retried_with_the_same_id(receiver: WebhookReceiver) -> None:
    # GIVEN a receiver that drops the connection once after reading the request
    receiver.enqueue(Reply(drop=True))
    # WHEN sent under unknown_outcome = "retry"
    [result] = send(options(receiver.url), message("hooks#u"))
    # THEN the retry carries the same webhook-id, and only it was accepted
    assert (result.outcome, result.attempts) == (Outcome.SENT, 2)
    assert [(d.webhook_id, d.status) for d in receiver.deliveries] == [
        ("hooks#u", 0),
        ("hooks#u", 200),
    ]


# -- the verdict table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome", "account_fault"),
    [
        (200, Outcome.SENT, False),
        (202, Outcome.SENT, False),
        (204, Outcome.SENT, False),
        (408, Outcome.TRANSIENT, False),
        (429, Outcome.TRANSIENT, False),
        (500, Outcome.TRANSIENT, False),
        (502, Outcome.TRANSIENT, False),
        (503, Outcome.TRANSIENT, False),
        (504, Outcome.TRANSIENT, False),
        (401, Outcome.TRANSIENT, True),
        (403, Outcome.TRANSIENT, True),
        (301, Outcome.TRANSIENT, True),
        (302, Outcome.TRANSIENT, True),
        (307, Outcome.TRANSIENT, True),
        (308, Outcome.TRANSIENT, True),
        (400, Outcome.PERMANENT, False),
        (404, Outcome.PERMANENT, False),
        (410, Outcome.PERMANENT, False),
        (413, Outcome.PERMANENT, False),
        (422, Outcome.PERMANENT, False),
    ],
)
def test_verdict_by_status(
    receiver: WebhookReceiver, status: int, outcome: Outcome, account_fault: bool
) -> None:
    # GIVEN a receiver answering ``status`` (a redirect names where to)
    headers = {"Location": "https://moved.example.org/new"} if 300 <= status < 400 else {}
    receiver.enqueue(Reply(status=status, headers=headers))
    # WHEN one attempt is made
    [result] = send(options(receiver.url), message(), one_attempt=True)
    # THEN the verdict of the table
    assert result.outcome is outcome
    assert result.account_fault is account_fault
    assert result.retry_now is not account_fault
    if outcome is not Outcome.SENT:
        assert result.code == f"HTTP{status}"
        assert f"HTTP {status} from 127.0.0.1" in (result.reason or "")
    if 300 <= status < 400:
        assert "redirect to moved.example.org not followed" in (result.reason or "")
        assert len(receiver.deliveries) == 1  # not followed


def test_account_faults_and_permanent_failures_are_not_retried_now(
    receiver: WebhookReceiver,
) -> None:
    receiver.enqueue(Reply(status=401), Reply(status=400), Reply(status=308))
    results = send(
        options(receiver.url), message("hooks#1"), message("hooks#2"), message("hooks#3")
    )
    assert [(r.outcome, r.attempts) for r in results] == [
        (Outcome.TRANSIENT, 1),
        (Outcome.PERMANENT, 1),
        (Outcome.TRANSIENT, 1),
    ]


def test_transient_failures_are_retried_until_attempts_run_out(receiver: WebhookReceiver) -> None:
    receiver.enqueue(*[Reply(status=503)] * 4)
    [result] = send(options(receiver.url), message(), max_attempts=4)
    assert (result.outcome, result.code, result.attempts) == (Outcome.TRANSIENT, "HTTP503", 4)


def test_a_read_timeout_is_an_unknown_outcome(receiver: WebhookReceiver) -> None:
    # GIVEN a receiver slower than the channel's timeout
    receiver.enqueue(Reply(delay=2.0))
    [result] = send(options(receiver.url, timeout_seconds=0.2), message(), one_attempt=True)
    # THEN the request left but no answer came: unknown
    assert (result.outcome, result.code) == (Outcome.UNKNOWN, "OutcomeUnknown")


def test_a_dropped_connection_is_an_unknown_outcome(receiver: WebhookReceiver) -> None:
    receiver.enqueue(Reply(drop=True))
    [result] = send(options(receiver.url), message(), one_attempt=True)
    assert (result.outcome, result.code) == (Outcome.UNKNOWN, "OutcomeUnknown")


def test_the_deadline_caps_the_timeout(receiver: WebhookReceiver) -> None:
    # GIVEN a 10 s timeout, a receiver taking 2 s, and 0.3 s left in the invocation
    receiver.enqueue(Reply(delay=2.0))
    [result] = send(options(receiver.url, timeout_seconds=10), message(), deadline_s=0.3)
    # THEN the attempt is cut off at the deadline: unknown, not waited out
    assert (result.outcome, result.code) == (Outcome.UNKNOWN, "DeadlineReached")


def test_connection_refused_is_transient_and_the_reason_hides_path_and_query(
    receiver: WebhookReceiver,
) -> None:
    # GIVEN a URL (with a token in its query) where nothing listens
    url = closed_port_url() + "?token=s3cr3t-token"
    [result] = send(options(url), message(), one_attempt=True)
    # THEN not sent: transient; the reason names the origin only
    assert (result.outcome, result.code) == (Outcome.TRANSIENT, "RequestNotSent")
    assert "127.0.0.1" in (result.reason or "")
    assert "s3cr3t-token" not in (result.reason or "")
    assert "/hooks" not in (result.reason or "")


# -- Retry-After, receipts, headers, rotation -----------------------------------------------------


def test_a_long_retry_after_is_not_retried_in_this_invocation(receiver: WebhookReceiver) -> None:
    receiver.enqueue(Reply(status=429, headers={"Retry-After": "3600"}))
    [result] = send(options(receiver.url), message())
    assert (result.outcome, result.retry_now, result.attempts) == (Outcome.TRANSIENT, False, 1)
    assert "Retry-After 3600 s" in (result.reason or "")


def test_a_short_retry_after_is_waited_out_then_retried(receiver: WebhookReceiver) -> None:
    receiver.enqueue(Reply(status=503, headers={"Retry-After": "0"}))
    [result] = send(options(receiver.url), message())
    assert (result.outcome, result.attempts) == (Outcome.SENT, 2)


def test_a_retry_after_past_the_deadline_is_not_waited(receiver: WebhookReceiver) -> None:
    receiver.enqueue(Reply(status=429, headers={"Retry-After": "2"}))
    [result] = send(options(receiver.url), message(), deadline_s=1.0)
    assert (result.outcome, result.retry_now, result.attempts) == (Outcome.TRANSIENT, False, 1)


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412600.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_the_receivers_receipt_header_becomes_the_message_id(receiver: WebhookReceiver) -> None:
    receiver.enqueue(Reply(status=200, headers={"X-Delivery-Id": "rcv-42"}))
    [with_receipt] = send(options(receiver.url, receipt_header="X-Delivery-Id"), message())
    [without] = send(options(receiver.url, receipt_header="X-Delivery-Id"), message("hooks#n"))
    assert (with_receipt.message_id, without.message_id) == ("rcv-42", "hooks#n")


def test_static_headers_are_sent(receiver: WebhookReceiver) -> None:
    send(options(receiver.url, headers={"X-Tenant": "t-1", "Authorization": "Bearer x"}), message())
    headers = receiver.deliveries[0].headers
    assert (headers["x-tenant"], headers["authorization"]) == ("t-1", "Bearer x")


def test_rotation_signs_with_every_configured_key(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the current key by reference, and the old one too
    monkeypatch.setenv("NOTIFIER_TEST_OLD_SECRET", OLD_SECRET)
    opts = options(receiver.url, secret=[f"env:{SECRET_ENV}", "env:NOTIFIER_TEST_OLD_SECRET"])
    # WHEN sent to a receiver that still holds only the old key
    with WebhookReceiver([OLD_SECRET]) as old_receiver:
        [result] = send({**opts, "url": old_receiver.url}, message())
        # THEN it verifies, with two signatures in the header
        assert result.outcome is Outcome.SENT
        [d] = old_receiver.deliveries
        assert d.verified
        assert len((d.signature or "").split(" ")) == 2


def test_one_value_may_hold_several_space_separated_secrets(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, f"{OLD_SECRET} {SECRET}")
    [result] = send(options(receiver.url), message())
    assert result.outcome is Outcome.SENT
    assert len((receiver.deliveries[0].signature or "").split(" ")) == 2


# -- the channel contract and build-time checks --------------------------------------------------


def test_built_through_the_registry_by_module_path(receiver: WebhookReceiver) -> None:
    async def go() -> Any:
        async with AsyncExitStack() as stack:
            ctx = ChannelContext(
                name="hooks",
                options={
                    "kind": "notifier.channels.webhook:build_webhook_channel",
                    **options(receiver.url),
                },
                stack=stack,
                session=None,
                client_kwargs={},
                sender="",
                concurrency=4,
                backoff=Backoff(),
                unknown_outcome="retry",
            )
            channel = await build_channel(ctx)
            return (
                isinstance(channel, Channel),
                channel.template_variant,
                channel.recipient_path,
                channel.required_parts,
                channel.validate_recipient(None),
                channel.validate_recipient(receiver.url),
                channel.validate_recipient("https://elsewhere.example.com/"),
            )

    assert asyncio.run(go()) == (True, None, None, frozenset(), receiver.url, receiver.url, None)


@pytest.mark.parametrize(
    ("change", "message_part"),
    [
        ({"url": "https://evil.example.net/h"}, "host 'evil.example.net' is not in allowed_hosts"),
        ({"url": "https://example.com/h", "allowed_hosts": ["*.example.com"]}, "not in allowed"),
        ({"url": "https://evilexample.com/h", "allowed_hosts": ["*.example.com"]}, "not in"),
        ({"url": "http://hooks.example.com/h", "allowed_hosts": ["hooks.example.com"]}, "http://"),
        ({"url": "ftp://127.0.0.1/h"}, "must be an https:// URL"),
        ({"url": "https://u:pw@127.0.0.1/h"}, "must not carry credentials"),
        ({"url": "https://127.0.0.1/h#frag"}, "#fragment"),
        ({"allowed_hosts": []}, "allowed_hosts is empty"),
        ({"retries": 3}, "unknown field `retries`"),
        ({"headers": {"webhook-id": "x"}}, "'webhook-id' is set by the channel"),
        ({"headers": {"Content-Type": "text/plain"}}, "is set by the channel"),
        ({"headers": {"X-A": "a\r\nX-B: b"}}, "bad header name or value"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_send_rate": -1}, "max_send_rate"),
        ({"secret": []}, "at least one secret reference"),
        ({"secret": "env:NOTIFIER_TEST_UNSET_SECRET"}, "environment variable is not set"),
    ],
)
def test_bad_options_are_refused_at_build(
    receiver: WebhookReceiver, change: dict[str, Any], message_part: str
) -> None:
    error = build_error({**options(receiver.url), **change})
    assert error.startswith("channels.hooks")
    assert message_part in error
    assert "\n" not in error


def test_a_missing_secret_option_is_refused() -> None:
    opts = options("https://hooks.example.com/h", allowed_hosts=["hooks.example.com"])
    del opts["secret"]
    assert "missing required field `secret`" in build_error(opts)


def test_wildcards_match_subdomains_only() -> None:
    allowed = ["*.example.com", "hooks.example.org"]
    assert host_allowed("a.example.com", allowed)
    assert host_allowed("A.B.Example.COM", allowed)
    assert host_allowed("hooks.example.org", allowed)
    assert not host_allowed("example.com", allowed)
    assert not host_allowed("evilexample.com", allowed)
    assert not host_allowed("x.hooks.example.org", allowed)


def test_https_and_loopback_http_urls_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)

    async def go() -> list[str]:
        async with AsyncExitStack() as stack:
            built = []
            for url in ("https://a.example.com/h?x=1", "http://localhost:8080/h", "http://[::1]/h"):
                opts = options(url, allowed_hosts=["*.example.com", "localhost", "::1"])
                built.append((await build(opts, stack)).url)
            return built

    assert asyncio.run(go()) == [
        "https://a.example.com/h?x=1",
        "http://localhost:8080/h",
        "http://[::1]/h",
    ]


# -- secrets stay secret --------------------------------------------------------------------------


def test_a_literal_or_malformed_secret_never_appears_in_the_error(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the secret pasted into the config instead of a reference
    error = build_error({**options(receiver.url), "secret": SECRET})
    assert "not a secret reference" in error
    assert SECRET.removeprefix("whsec_") not in error
    # GIVEN a reference to a value that is no whsec_ secret
    monkeypatch.setenv(SECRET_ENV, "whsec_dG9vLXNob3J0")  # 9 bytes
    error = build_error(options(receiver.url))
    assert error.startswith(f"channels.hooks.secret: env:{SECRET_ENV}: ")
    assert "dG9vLXNob3J0" not in error


def test_no_secret_or_body_in_logs_reasons_or_reprs(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN every log line captured, and a receiver failing in every way
    caplog.set_level(logging.DEBUG)
    receiver.enqueue(
        Reply(status=500), Reply(status=401), Reply(drop=True), Reply(status=400), Reply(302)
    )
    shown: list[str] = []

    async def go() -> None:
        async with AsyncExitStack() as stack:
            channel = await build(options(receiver.url), stack)
            shown.append(repr(channel))
            for i in range(5):
                result = await channel.send_one(message(f"hooks#{i}"))
                shown.append(repr(result))

    asyncio.run(go())
    shown += [r.getMessage() for r in caplog.records]
    [refused] = send(options(closed_port_url()), message(), one_attempt=True)
    shown.append(repr(refused))
    text = "\n".join(shown)
    # THEN neither the secret nor the body (an address in the image) shows anywhere
    assert SECRET.removeprefix("whsec_") not in text
    assert "grace@example.com" not in text
    assert "Ada Lovelace" not in text


def test_a_wrong_secret_is_refused_by_the_receiver_and_is_an_account_fault(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a channel whose secret the receiver does not hold
    monkeypatch.setenv(SECRET_ENV, OLD_SECRET)
    # WHEN sent
    [result] = send(options(receiver.url), message("hooks#w"))
    # THEN the receiver counted a bad signature and answered 401: our fault, not the message's
    assert receiver.bad_signatures() == 1
    assert receiver.accepted() == {}
    assert (result.outcome, result.account_fault, result.attempts) == (Outcome.TRANSIENT, True, 1)
