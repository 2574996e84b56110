"""The fault proxy injects into SES, SNS and webhook sends at the configured rate, through
real clients (boto3, aiobotocore, a plain HTTP client in front of the webhook receiver)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from notifier.channels.base import Outcome
from notifier.channels.sns_common import classify_sns_exception
from notifier.local.faults import FaultPlan, FaultProxy, sesv2_endpoint, sns_endpoint
from notifier.local.moto_server import LOCAL_CREDENTIALS, sent_emails

NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=10)
REGION = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
SIMPLE = {"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "body"}}}}


@pytest.fixture
def proxy(aws: str) -> Iterator[Callable[..., FaultProxy]]:
    """Factory: a fault proxy in front of the embedded AWS, with SES identity verified."""
    boto3.client("sesv2").create_email_identity(EmailIdentity="example.com")
    started: list[FaultProxy] = []

    def _make(**plan: Any) -> FaultProxy:
        p = FaultProxy(aws, FaultPlan(**plan), lifetime_s=120)
        p.start()
        started.append(p)
        return p

    yield _make
    for p in started:
        p.stop()


def send(client: Any, i: int) -> Any:
    return client.send_email(
        FromEmailAddress="notifications@example.com",
        Destination={"ToAddresses": [f"user-{i}@example.com"]},
        Content=SIMPLE,
    )


def test_throttling_is_injected_at_the_seeded_rate_through_boto3(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a proxy throttling 30% of sends (seed 7) and a boto3 client routed through it
    p = proxy(throttle_rate=0.3, seed=7)
    with sesv2_endpoint(p.url):
        client = boto3.client("sesv2", config=NO_RETRIES)
    # WHEN 60 emails are sent, without retries
    codes: list[str] = []
    for i in range(60):
        try:
            send(client, i)
            codes.append("ok")
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            codes.append(f"{status} {exc.response['Error']['Code']}")
    # THEN exactly the seeded draws below the rate were throttled, and only the rest were sent
    rng = random.Random(7)
    expected = sum(rng.random() < 0.3 for _ in range(60))
    assert codes.count("429 TooManyRequestsException") == expected == p.counts["throttle"]
    assert 0 < expected < 60
    assert len(sent_emails(aws)) == 60 - expected


def test_server_errors_are_injected_through_aiobotocore(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a proxy failing half the sends with 5xx
    p = proxy(server_error_rate=0.5, seed=3)

    async def run() -> list[int]:
        from aiobotocore.session import get_session

        statuses: list[int] = []
        with sesv2_endpoint(p.url):
            client = await get_session().create_client("sesv2", config=NO_RETRIES).__aenter__()
        try:
            for i in range(30):
                try:
                    await send(client, i)
                    statuses.append(200)
                except ClientError as exc:
                    statuses.append(exc.response["ResponseMetadata"]["HTTPStatusCode"])
        finally:
            await client.__aexit__(None, None, None)
        return statuses

    # WHEN 30 emails are sent through aiobotocore without retries
    statuses = asyncio.run(run())
    # THEN the failures are 500/503, as many as the proxy injected, and moto got the rest
    failed = [s for s in statuses if s != 200]
    assert set(failed) <= {500, 503}
    assert len(failed) == p.counts["server_error"] > 0
    assert len(sent_emails(aws)) == 30 - len(failed)


def test_a_lost_response_means_the_email_was_sent_but_the_caller_cannot_tell(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a proxy that drops every send's response
    p = proxy(response_lost_rate=1.0)
    with sesv2_endpoint(p.url):
        client = boto3.client("sesv2", config=NO_RETRIES)
    # WHEN one email is sent
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        send(client, 1)
    # THEN the caller saw a connection error, yet the email is in moto
    assert p.counts["response_lost"] == 1
    assert len(sent_emails(aws)) == 1


def test_requests_other_than_sends_pass_through(aws: str, proxy: Callable[..., FaultProxy]) -> None:
    # GIVEN a proxy throttling every send
    p = proxy(throttle_rate=1.0)
    with sesv2_endpoint(p.url):
        client = boto3.client("sesv2", config=NO_RETRIES)
    # WHEN a non-send call goes through it / THEN it is forwarded untouched
    client.create_email_identity(EmailIdentity="other.example")
    names = [i["IdentityName"] for i in client.list_email_identities()["EmailIdentities"]]
    assert "other.example" in names
    assert p.counts["forwarded"] == 2
    assert p.counts["throttle"] == 0


def test_the_proxy_stops_by_itself(aws: str) -> None:
    # GIVEN a proxy with a short lifetime
    p = FaultProxy(aws, FaultPlan(), lifetime_s=0.2)
    p.start()
    # WHEN its lifetime is over / THEN its thread has ended and the port is closed
    thread = p._thread
    assert thread is not None
    thread.join(30)
    assert not thread.is_alive()
    with pytest.raises(EndpointConnectionError):
        send(boto3.client("sesv2", endpoint_url=p.url, config=NO_RETRIES), 1)
    p.stop()


@pytest.mark.parametrize("rates", [(0.6, 0.6, 0.0), (-0.1, 0.0, 0.0), (0.0, 0.0, 1.1)])
def test_impossible_rates_are_rejected(rates: tuple[float, float, float]) -> None:
    # GIVEN / WHEN rates that are not probabilities summing to at most 1 / THEN refused
    with pytest.raises(ValueError, match="fault rates"):
        FaultPlan(*rates)


# -- SNS (SMS and push) ----------------------------------------------------------------------


def sns_backend() -> Any:
    """moto's SNS backend of the test region, read in this process (the session's moto server
    runs threaded in-process)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    return sns_backends[DEFAULT_ACCOUNT_ID][REGION]


def publish_sms(client: Any, i: int) -> Any:
    return client.publish(PhoneNumber=f"+1206555{i:04d}", Message=f"text {i}")


def test_sns_publish_throttling_is_injected_at_the_seeded_rate_in_both_real_shapes(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a proxy throttling 40% of sends (seed 7) and a boto3 SNS client routed through it
    p = proxy(throttle_rate=0.4, seed=7)
    with sns_endpoint(p.url):
        client = boto3.client("sns", config=NO_RETRIES)
    # WHEN 60 SMS are published, without retries
    errors: list[ClientError] = []
    for i in range(60):
        try:
            publish_sms(client, i)
        except ClientError as exc:
            errors.append(exc)
    # THEN SNS's own draws (seeded "7/sns") below the rate were throttled, and moto got the rest
    rng = random.Random("7/sns")
    expected = sum(rng.random() < 0.4 for _ in range(60))
    assert len(errors) == expected == p.counts["sns.throttle"] == p.by_target()["sns"]["throttle"]
    assert p.counts["sns.sends"] == 60
    assert len(sns_backend().sms_messages) == 60 - expected
    # AND botocore parsed each as SNS answers throttling: 429 Throttled (its model) or 400
    # ThrottlingException "Rate exceeded"; both shapes came, and the channels retry each
    shapes = {
        (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        for e in errors
    }
    assert shapes == {(429, "Throttled"), (400, "ThrottlingException")}
    verdicts = [classify_sns_exception(e) for e in errors]
    assert {(v.outcome, v.account_fault, v.retry_now) for v in verdicts} == {
        (Outcome.TRANSIENT, False, True)
    }
    # AND no SES key moved: SES counts keep their plain names
    assert p.counts["sends"] == p.counts["throttle"] == 0


def test_sns_server_errors_are_injected_through_aiobotocore(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a proxy failing half the sends with 5xx
    p = proxy(server_error_rate=0.5, seed=3)

    async def run() -> list[tuple[int, str]]:
        from aiobotocore.session import get_session

        answers: list[tuple[int, str]] = []
        with sns_endpoint(p.url):
            client = await get_session().create_client("sns", config=NO_RETRIES).__aenter__()
        try:
            for i in range(30):
                try:
                    await publish_sms(client, i)
                    answers.append((200, ""))
                except ClientError as exc:
                    meta = exc.response["ResponseMetadata"]
                    answers.append((meta["HTTPStatusCode"], exc.response["Error"]["Code"]))
        finally:
            await client.__aexit__(None, None, None)
        return answers

    # WHEN 30 SMS are published through aiobotocore without retries
    answers = asyncio.run(run())
    # THEN the failures are SNS's 500 InternalError / 503 ServiceUnavailable, as many as the
    # proxy injected, and moto got the rest
    failed = [a for a in answers if a[0] != 200]
    assert set(failed) <= {(500, "InternalError"), (503, "ServiceUnavailable")}
    assert len(failed) == p.counts["sns.server_error"] > 0
    assert len(sns_backend().sms_messages) == 30 - len(failed)


def test_a_lost_publish_response_means_the_push_was_sent_but_the_caller_cannot_tell(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a device endpoint, and a proxy that drops every send's response
    sns = boto3.client("sns")
    app = sns.create_platform_application(
        Name="app", Platform="GCM", Attributes={"PlatformCredential": "key"}
    )["PlatformApplicationArn"]
    arn = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="fcm-token-1")[
        "EndpointArn"
    ]
    p = proxy(response_lost_rate=1.0)
    with sns_endpoint(p.url):
        client = boto3.client("sns", config=NO_RETRIES)
    # WHEN one push is published to it
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        client.publish(TargetArn=arn, Message="hello")
    # THEN the caller saw a connection error, yet the message is on the endpoint in moto
    assert p.counts["sns.response_lost"] == 1
    assert list(sns_backend().platform_endpoints[arn].messages.values()) == ["hello"]


def test_sns_calls_other_than_publish_pass_through(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a proxy throttling every send
    p = proxy(throttle_rate=1.0)
    with sns_endpoint(p.url):
        client = boto3.client("sns", config=NO_RETRIES)
    # WHEN SNS calls that send nothing go through it / THEN they are forwarded untouched
    client.create_platform_application(
        Name="app", Platform="GCM", Attributes={"PlatformCredential": "key"}
    )
    assert len(client.list_platform_applications()["PlatformApplications"]) == 1
    assert (p.counts["forwarded"], p.counts["sns.sends"], p.counts["sns.throttle"]) == (2, 0, 0)


def test_targets_left_out_of_the_plan_pass_through(
    aws: str, proxy: Callable[..., FaultProxy]
) -> None:
    # GIVEN a proxy throttling every SNS send and nothing else, in front of both SES and SNS
    p = proxy(throttle_rate=1.0, targets=frozenset({"sns"}))
    with sesv2_endpoint(p.url), sns_endpoint(p.url):
        ses, sns = boto3.client("sesv2", config=NO_RETRIES), boto3.client("sns", config=NO_RETRIES)
    # WHEN an email and an SMS are sent through it
    send(ses, 1)
    with pytest.raises(ClientError):
        publish_sms(sns, 1)
    # THEN the email went through, the SMS was throttled, and each is counted under its target
    assert len(sent_emails(aws)) == 1
    assert p.by_target()["ses"] == {
        "sends": 1,
        "throttle": 0,
        "server_error": 0,
        "response_lost": 0,
    }
    assert p.by_target()["sns"]["throttle"] == 1


# -- webhooks --------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Any]:
    from notifier.channels.signing import generate_secret
    from notifier.local.webhook_receiver import WebhookReceiver

    with WebhookReceiver([generate_secret()]) as r:
        yield r


def post_webhook(url: str, receiver: Any, msg_id: str) -> int:
    """POST one signed delivery; its HTTP status (an HTTPError's too)."""
    import urllib.error
    import urllib.request

    from notifier.channels.signing import WebhookSigner

    body = b'{"type": "ping", "data": {}}'
    headers = {"Content-Type": "application/json"}
    headers.update(WebhookSigner(receiver.secrets).headers(msg_id, body))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_webhook_faults_are_injected_in_front_of_the_receiver(aws: str, receiver: Any) -> None:
    # GIVEN a proxy in front of moto whose webhook requests go to the receiver, failing 60%
    # of the deliveries with 429 and 5xx (seeded)
    plan = FaultPlan(throttle_rate=0.3, server_error_rate=0.3, seed=5)
    with FaultProxy(aws, plan, webhook_upstream=receiver.url, lifetime_s=120) as p:
        url = p.proxied(receiver.url)
        # WHEN 40 signed deliveries are POSTed to the receiver's path on the proxy
        statuses = [post_webhook(url, receiver, f"msg_{i}") for i in range(40)]
    # THEN the webhook draws (seeded "5/webhook") decided which failed, with 429 or 500/503,
    # and the receiver verified and accepted exactly the others
    rng = random.Random("5/webhook")
    draws = [rng.random() for _ in range(40)]
    assert [s for s, r in zip(statuses, draws, strict=True) if r < 0.3] == [429] * sum(
        r < 0.3 for r in draws
    )
    assert {s for s, r in zip(statuses, draws, strict=True) if 0.3 <= r < 0.6} <= {500, 503}
    ok = {f"msg_{i}" for i, s in enumerate(statuses) if s == 200}
    assert set(receiver.accepted()) == ok
    assert len(ok) == 40 - p.counts["webhook.throttle"] - p.counts["webhook.server_error"]
    assert p.counts["webhook.sends"] == 40
    assert receiver.bad_signatures() == 0


def test_a_lost_webhook_response_was_delivered_and_a_retry_is_a_duplicate_by_id(
    aws: str, receiver: Any
) -> None:
    # GIVEN a proxy (upstream: the receiver itself) dropping every delivery's response
    with FaultProxy(receiver.url, FaultPlan(response_lost_rate=1.0), lifetime_s=120) as p:
        url = p.proxied(receiver.url)
        # WHEN one delivery is POSTed, then retried with the same webhook-id
        for _ in range(2):
            with pytest.raises((ConnectionError, OSError)):
                post_webhook(url, receiver, "msg_lost")
    # THEN the receiver accepted it twice: the duplicate its webhook-id lets it drop
    assert p.counts["webhook.response_lost"] == 2
    assert receiver.duplicates() == {"msg_lost": 2}
