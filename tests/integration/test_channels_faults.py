"""Every channel through throttling, 5xx and lost responses (issue #28, item 5).

The real handler (``build_handler``, default fast clients) routes every event to email, SMS,
push and a webhook. Its SES, SNS (SMS and push) and webhook traffic goes through one
:class:`~notifier.local.faults.FaultProxy` that throttles, fails (5xx) and drops the response
of a seeded share of each target's sends; moto (in server mode) and the local verifying
webhook receiver are behind it. What landed is counted where it lands: moto's SES and SNS
backends, read in this process, and the receiver's deliveries per ``webhook-id``.

The promise checked: every notification of every channel lands at least once and none is lost;
``unknown_outcome = "retry"`` lands a lost response's notification once more (and nothing else
twice), ``"assume_sent"`` lands everything exactly once; the receiver's duplicates are exactly
the lost webhook responses; the handler's per-channel counters (``channel_stats``) agree with
what landed and, summed over the channels of a target (SMS and push share SNS), with the faults
the proxy injected; a redelivered batch sends nothing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from notifier.channels.signing import generate_secret, message_id
from notifier.handler import Handler, build_handler
from notifier.local.faults import FaultPlan, FaultProxy, sesv2_endpoint, sns_endpoint
from notifier.local.moto_server import LOCAL_CREDENTIALS
from notifier.local.provision import Resources, provision
from notifier.local.webhook_receiver import WebhookReceiver
from notifier.samples import make_stream_record, user_email
from notifier.settings import Settings

# Multi-process / timing-heavy: run on the main interpreter in CI, not on every CPython
# (.ci/test-pythons runs -m "not slow"; the fast suite covers the same code on each).
pytestmark = pytest.mark.slow

REGION = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
SECRET_ENV = "NOTIFIER_TEST_WEBHOOK_SECRET"
ROUTE_KEYS = ("sent", "assumed_sent", "unknown_outcomes", "retries")
RECORDS = 40
#: Each target: 15% throttled, 15% 5xx, 10% lost. 40% of attempts fail (under "retry" a lost
#: response is retried too): with 20 attempts a notification runs out with probability
#: 0.4**20 (~1e-8), so the assertions test delivery, not luck.
PLAN = {"throttle_rate": 0.15, "server_error_rate": 0.15, "response_lost_rate": 0.1}
MAX_ATTEMPTS = 20
#: The proxy target each channel sends through.
TARGET = {"email": "ses", "sms": "sns", "push": "sns", "webhook": "webhook"}

CONFIG = """
event_type_path = "event_type"

[delivery]
unknown_outcome = "{policy}"
max_attempts = {max_attempts}
base_delay_ms = 1
max_delay_ms = 20
lease_grace_seconds = 0.5

[channels.email]
kind = "email"
max_send_rate = 1000

[channels.sms]
kind = "sms"
max_send_rate = 1000

[channels.push]
kind = "push"
max_send_rate = 1000

[channels.webhook]
kind = "webhook"
url = "{webhook_url}"
allowed_hosts = ["127.0.0.1"]
secret = "env:{secret_env}"
timeout_seconds = 5
"""
ROUTE = """
[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
event_names = ["INSERT"]
channel = "{channel}"
dedup_key = "event_id"
"""


class FakeContext:
    """A Lambda context with a minute left."""

    aws_request_id = "req-faults"
    function_name = "notifier"

    def __init__(self, remaining_ms: float = 60_000) -> None:
        self._deadline = time.monotonic() + remaining_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture
def resources(aws: str) -> Resources:
    """GIVEN the ledger table, the failure queue and a verified SES domain in moto."""
    return provision()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """GIVEN a verifying webhook receiver, its secret in the environment for the config."""
    secret = generate_secret()
    monkeypatch.setenv(SECRET_ENV, secret)
    with WebhookReceiver([secret]) as r:
        yield r


def sns_backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    return sns_backends[DEFAULT_ACCOUNT_ID][REGION]


def ses_messages() -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def phone_of(user: int) -> str:
    """User ``user``'s phone number (E.164)."""
    return f"+1206555{user:04d}"


def device_endpoints(n: int) -> dict[int, list[str]]:
    """GIVEN an Android and an iOS app in SNS: user ``i`` has an Android device, every second
    user an iPhone too."""
    sns = boto3.client("sns")
    android = sns.create_platform_application(
        Name="faults-android", Platform="GCM", Attributes={"PlatformCredential": "key"}
    )["PlatformApplicationArn"]
    ios = sns.create_platform_application(
        Name="faults-ios",
        Platform="APNS",
        Attributes={"PlatformCredential": "key", "PlatformPrincipal": "cert"},
    )["PlatformApplicationArn"]
    devices: dict[int, list[str]] = {}
    for i in range(n):
        apps = [(android, f"fcm-token-{i:06d}")] + ([(ios, f"{i:064x}")] if i % 2 == 0 else [])
        devices[i] = [
            sns.create_platform_endpoint(PlatformApplicationArn=app, Token=token)["EndpointArn"]
            for app, token in apps
        ]
    return devices


def stream_event(n: int, devices: dict[int, list[str]]) -> dict[str, Any]:
    """``n`` INSERT records, record ``i`` for user ``i`` (own address, phone number and
    devices), written just now (far from the stream's retention)."""
    records = []
    for i in range(n):
        rec = make_stream_record(i, users=10**9, seed=28, event_name="INSERT")
        rec["dynamodb"]["ApproximateCreationDateTime"] = int(time.time())
        user = rec["dynamodb"]["NewImage"]["user"]["M"]
        user["devices"] = {"L": [{"S": arn} for arn in devices[i]]}
        user["phone"] = {"S": phone_of(i)}
        records.append(rec)
    return {"Records": records}


def expected_keys(event: dict[str, Any]) -> dict[str, set[str]]:
    """The ledger keys each channel must deliver: one per record (email, SMS, webhook), one
    per record and device (push)."""
    out: dict[str, set[str]] = {channel: set() for channel in TARGET}
    for rec in event["Records"]:
        image = rec["dynamodb"]["NewImage"]
        event_id = image["event_id"]["S"]
        for channel in ("email", "sms", "webhook"):
            out[channel].add(f"{channel}#{event_id}")
        for device in image["user"]["M"]["devices"]["L"]:
            out["push"].add(f"push#{event_id}#{device['S']}")
    return out


def landed(event: dict[str, Any], receiver: WebhookReceiver) -> dict[str, Counter[str]]:
    """Messages that reached each provider, by ledger key (webhooks: by ``webhook-id``)."""
    by_address = Counter(a for m in ses_messages() for a in m.destinations["ToAddresses"])
    by_phone = Counter(phone for phone, _ in sns_backend().sms_messages.values())
    email: Counter[str] = Counter()
    sms: Counter[str] = Counter()
    for i, rec in enumerate(event["Records"]):
        event_id = rec["dynamodb"]["NewImage"]["event_id"]["S"]
        if by_address[user_email(i)]:
            email[f"email#{event_id}"] = by_address[user_email(i)]
        if by_phone[phone_of(i)]:
            sms[f"sms#{event_id}"] = by_phone[phone_of(i)]
    push: Counter[str] = Counter()
    for arn, endpoint in sns_backend().platform_endpoints.items():
        for text in endpoint.messages.values():
            envelope = json.loads(text)
            platform = next(k for k in envelope if k != "default")
            payload = json.loads(envelope[platform])
            if platform == "GCM":
                nid = payload["fcmV1Message"]["message"]["data"]["notification_id"]
            else:
                nid = payload["notification_id"]
            push[f"{nid}#{arn}"] += 1
    webhook_ids = {message_id(k): k for k in expected_keys(event)["webhook"]}
    webhook = Counter({webhook_ids.get(i, i): n for i, n in receiver.accepted().items()})
    return {"email": email, "sms": sms, "push": push, "webhook": webhook}


def write_config(tmp_path: Path, policy: str, webhook_url: str) -> Path:
    body = CONFIG.format(
        policy=policy, max_attempts=MAX_ATTEMPTS, webhook_url=webhook_url, secret_env=SECRET_ENV
    )
    body += "".join(ROUTE.format(channel=c) for c in TARGET)
    path = tmp_path / f"config-{policy}.toml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def faulty_handler(
    aws: str, resources: Resources, receiver: WebhookReceiver, tmp_path: Path
) -> Iterator[Callable[[str], tuple[Handler, FaultProxy]]]:
    """Factory: a real handler whose SES, SNS and webhook traffic goes through a fault proxy."""
    built: list[tuple[Handler, FaultProxy]] = []

    def make(policy: str) -> tuple[Handler, FaultProxy]:
        proxy = FaultProxy(aws, FaultPlan(**PLAN, seed=28))
        proxy.start()
        config = write_config(tmp_path, policy, proxy.webhooks_to(receiver.url))
        settings = Settings(
            config_path=str(config),
            failure_queue_url=resources.failure_queue_url,
            ledger_table=resources.ledger_table,
            max_concurrency=16,
        )
        with sesv2_endpoint(proxy.url), sns_endpoint(proxy.url):
            handler = build_handler(settings)
        built.append((handler, proxy))
        return handler, proxy

    yield make
    for handler, proxy in built:
        handler.close()
        proxy.stop()


@pytest.mark.parametrize("policy", ["retry", "assume_sent"])
def test_every_channel_delivers_through_throttles_5xx_and_lost_responses(
    policy: str,
    faulty_handler: Callable[[str], tuple[Handler, FaultProxy]],
    receiver: WebhookReceiver,
) -> None:
    # GIVEN users with phones and devices, and a handler whose providers throttle, fail and lose
    # responses for a seeded share of every channel's sends
    devices = device_endpoints(RECORDS)
    handler, proxy = faulty_handler(policy)
    event = stream_event(RECORDS, devices)
    expected = expected_keys(event)
    # WHEN the batch is handled
    response = handler(event, FakeContext())
    # THEN no record is left for Lambda to retry, and every kind of fault hit every target
    assert response == {"batchItemFailures": []}
    faults = proxy.by_target()
    for target in TARGET.values():
        assert min(faults[target][f] for f in ("throttle", "server_error", "response_lost")) > 0
    got = landed(event, receiver)
    for channel in TARGET:
        stats = handler.channel_stats[channel]
        where = f"{channel} ({policy}): {stats}"
        # AND every notification of every channel landed, and nothing that was not one
        assert set(got[channel]) == expected[channel], where
        assert stats["sent"] + stats["assumed_sent"] == len(expected[channel]), where
        assert stats["failed_permanent"] == stats["duplicates"] == 0, where
        if policy == "assume_sent":
            # AND nothing landed twice: a lost response was recorded as sent, outcome unknown
            assert max(got[channel].values()) == 1, where
            assert stats["assumed_sent"] == stats["unknown_outcomes"], where
        else:
            assert stats["assumed_sent"] == stats["unknown_outcomes"] == 0, where
    for target in set(TARGET.values()):
        channels = [c for c, t in TARGET.items() if t == target]
        total = {k: sum(handler.channel_stats[c][k] for c in channels) for k in ROUTE_KEYS}
        extra = sum(sum(got[c].values()) - len(expected[c]) for c in channels)
        lost, f = faults[target]["response_lost"], faults[target]
        where = f"{target} {channels} ({policy}): {total}, faults {f}, extra {extra}"
        if policy == "retry":
            # AND only a lost response's notification landed twice: one resend per loss, and
            # each injected fault cost exactly one retry
            assert extra == lost, where
            assert total["retries"] == lost + f["throttle"] + f["server_error"], where
        else:
            # AND each lost response is one notification assumed sent, never retried
            assert extra == 0, where
            assert total["assumed_sent"] == lost, where
            assert total["retries"] == f["throttle"] + f["server_error"], where
    # AND the receiver's duplicates (by webhook-id) are exactly the lost webhook responses
    duplicates = sum(n - 1 for n in receiver.duplicates().values())
    assert duplicates == (faults["webhook"]["response_lost"] if policy == "retry" else 0)
    assert receiver.bad_signatures() == 0
    # WHEN Lambda redelivers the batch THEN nothing more is sent: all are duplicates
    before = landed(event, receiver)
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    assert landed(event, receiver) == before
    for channel, keys in expected.items():
        assert handler.channel_stats[channel]["duplicates"] == len(keys)
