"""The core exactly-once scenarios in both AWS client modes (``NOTIFIER_AWS_CLIENTS``), and
faults injected on the wire (``FaultProxy``) for the default fast clients."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import FakeContext, failure_messages, ledger_items

from notifier.aws import DynamoDBClient, SESv2Client
from notifier.handler import Handler
from notifier.local.faults import FaultPlan, FaultProxy, sesv2_endpoint
from notifier.local.moto_server import sent_emails
from notifier.settings import Settings, SettingsError

MODES = ["fast", "aiobotocore"]


def _recipients(endpoint: str) -> list[str]:
    return sorted(m["destinations"]["ToAddresses"][0] for m in sent_emails(endpoint))


def _expected(event: dict[str, Any]) -> list[str]:
    return sorted(r["dynamodb"]["NewImage"]["user"]["M"]["email"]["S"] for r in event["Records"])


@pytest.fixture
def fault_proxy(provisioned: dict[str, str]) -> Iterator[Callable[..., FaultProxy]]:
    """Factory: a fault proxy in front of moto (stopped after the test)."""
    started: list[FaultProxy] = []

    def make(**plan: Any) -> FaultProxy:
        proxy = FaultProxy(provisioned["endpoint"], FaultPlan(**plan), lifetime_s=120)
        proxy.start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


def test_the_default_mode_uses_the_fast_clients(make_handler: Callable[..., Handler]) -> None:
    # GIVEN settings that do not name a client mode
    assert Settings().aws_clients == "fast"
    # WHEN a handler is built
    handler = make_handler()
    # THEN the SES send and the ledger go through notifier.aws
    assert isinstance(handler.channels["email"].client, SESv2Client)  # type: ignore[attr-defined]
    assert isinstance(handler.ledger.client, DynamoDBClient)
    # AND "aiobotocore" pins the SDK for both
    sdk = make_handler(aws_clients="aiobotocore")
    assert not isinstance(sdk.channels["email"].client, SESv2Client)  # type: ignore[attr-defined]
    assert not isinstance(sdk.ledger.client, DynamoDBClient)


def test_the_client_mode_and_configuration_set_come_from_the_environment() -> None:
    # GIVEN an environment naming the SDK mode and a configuration set
    env = {"NOTIFIER_AWS_CLIENTS": "aiobotocore", "NOTIFIER_SES_CONFIGURATION_SET": "tracking"}
    # WHEN read THEN both are in the settings
    settings = Settings.from_env(env)
    assert settings.aws_clients == "aiobotocore"
    assert settings.configuration_set == "tracking"
    # AND an unknown mode is refused, naming the variable
    with pytest.raises(SettingsError, match="NOTIFIER_AWS_CLIENTS"):
        Settings.from_env({"NOTIFIER_AWS_CLIENTS": "boto2"})


@pytest.mark.parametrize("mode", MODES)
def test_the_configuration_set_setting_is_the_email_channels_default(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    provisioned: dict[str, str],
    mode: str,
) -> None:
    # GIVEN a deployment default configuration set
    settings = Settings(
        config_path=str(write_config()),
        failure_queue_url=provisioned["queue_url"],
        aws_clients=mode,
        configuration_set="tracking",
    )
    from notifier.handler import build_handler

    with build_handler(settings) as handler:
        channel: Any = handler.channels["email"]
        # THEN every SendEmail request names it
        assert channel.options.configuration_set == "tracking"
        from notifier.channels.base import Message

        rendered = type("R", (), {"subject": "s", "text": "t", "html": None})()
        msg = Message(key="k", recipient="a@example.com", sender="", rendered=rendered)
        assert channel.build_request(msg)["ConfigurationSetName"] == "tracking"


@pytest.mark.parametrize("mode", MODES)
def test_n_events_n_emails_and_redelivery_sends_nothing_in_both_modes(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    mode: str,
) -> None:
    # GIVEN a handler in this client mode and a batch of 30 INSERTs
    handler = make_handler(aws_clients=mode)
    event = stream_event(30, seed=4)
    # WHEN the batch is handled
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN one email per record, to the record's user, each committed SENT with its id
    assert _recipients(provisioned["endpoint"]) == _expected(event)
    items = ledger_items()
    assert len(items) == 30
    assert {i["state"] for i in items.values()} == {"SENT"}
    assert all(i["message_id"] for i in items.values())
    # WHEN redelivered as raw bytes THEN nothing more is sent
    assert handler(json.dumps(event).encode(), FakeContext()) == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == 30
    assert handler.stats["duplicates"] == 30


@pytest.mark.parametrize("mode", MODES)
def test_a_poison_record_is_dead_lettered_once_in_both_modes(
    make_handler: Callable[..., Handler],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    mode: str,
) -> None:
    # GIVEN a batch of 6 whose record 2 has a template that fails to render
    handler = make_handler(aws_clients=mode)
    event = stream_event(6, types={2: "broken"})
    # WHEN handled twice
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN the 5 good records were sent once, the poison one dead-lettered once
    assert len(sent_emails(provisioned["endpoint"])) == 5
    messages = failure_messages(provisioned["queue_url"])
    assert [m["sequence_number"] for m in messages] == [
        event["Records"][2]["dynamodb"]["SequenceNumber"]
    ]
    assert messages[0]["error_code"] == "TemplateError"
    states = sorted(v["state"] for v in ledger_items().values())
    assert states == ["FAILED"] + ["SENT"] * 5


@pytest.mark.parametrize("policy", ["assume_sent", "retry"])
def test_fast_clients_through_throttling_5xx_and_lost_responses(
    make_handler: Callable[..., Handler],
    write_config: Callable[..., Path],
    stream_event: Callable[..., Any],
    provisioned: dict[str, str],
    fault_proxy: Callable[..., FaultProxy],
    policy: str,
) -> None:
    # GIVEN a proxy on the SES endpoint throttling, failing (5xx) and losing the response
    # of a share of the sends, and a fast-mode handler routed through it
    proxy = fault_proxy(throttle_rate=0.15, server_error_rate=0.15, response_lost_rate=0.1, seed=5)
    with sesv2_endpoint(proxy.url):
        # 40% of attempts fail (under "retry" a lost response is retried too): with the default
        # 8 attempts a record runs out with probability 0.4**8 (~2.6% of runs for 40 records);
        # 20 attempts make that ~1e-8, so the assertions below test delivery, not luck.
        handler = make_handler(
            write_config(unknown_outcome=policy, max_attempts=20), aws_clients="fast"
        )
    assert isinstance(handler.channels["email"].client, SESv2Client)  # type: ignore[attr-defined]
    event = stream_event(40, seed=9)
    # WHEN the batch is handled
    response = handler(event, FakeContext())
    # THEN no record is left for Lambda to retry, and every fault kind occurred
    assert response == {"batchItemFailures": []}
    lost = proxy.counts["response_lost"]
    assert proxy.counts["throttle"] > 0
    assert proxy.counts["server_error"] > 0
    assert lost > 0
    recipients = _recipients(provisioned["endpoint"])
    if policy == "assume_sent":
        # AND exactly one email per record: throttled and 5xx sends were retried, a lost
        # response (the email did go out) was recorded as sent with outcome unknown
        assert recipients == _expected(event)
        assert handler.stats["assumed_sent"] == lost
        unknown = [v for v in ledger_items().values() if v.get("outcome") == "unknown"]
        assert len(unknown) == lost
    else:
        # AND "retry" resends a lost response: every user got it, the lost ones twice
        assert set(recipients) == set(_expected(event))
        assert len(recipients) == 40 + lost
    assert {v["state"] for v in ledger_items().values()} == {"SENT"}
    # WHEN redelivered THEN nothing more is sent
    before = len(sent_emails(provisioned["endpoint"]))
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(sent_emails(provisioned["endpoint"])) == before
