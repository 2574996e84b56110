"""The SES fault proxy injects at the configured rate through real clients."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from notifier.local.faults import FaultPlan, FaultProxy, sesv2_endpoint
from notifier.local.moto_server import sent_emails

NO_RETRIES = Config(retries={"total_max_attempts": 1}, read_timeout=10)
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
