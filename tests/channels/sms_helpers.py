"""Helpers for the SMS channel tests: contexts, messages, and what moto's SNS received."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns import models as sns_models

from notifier.channels import ChannelContext, Message
from notifier.retry import Backoff
from notifier.templates import Rendered

REGION = "us-east-1"
NUMBER = "+14155550123"
#: One session for every test: it caches the service models (a new one reloads them, ~0.3 s).
SESSION = get_session()


def make_ctx(
    stack: AsyncExitStack,
    options: Mapping[str, Any],
    *,
    endpoint_url: str | None = None,
    clients: Mapping[str, Any] | None = None,
    name: str = "sms",
) -> ChannelContext:
    """A ChannelContext as the handler builds it: aiobotocore session, one quick retry."""
    kwargs: dict[str, Any] = {"region_name": REGION}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return ChannelContext(
        name=name,
        options={"kind": "sms", **options},
        stack=stack,
        session=SESSION,
        client_kwargs=kwargs,
        sender="",
        concurrency=4,
        backoff=Backoff(max_attempts=2, base_s=0.001, cap_s=0.002),
        unknown_outcome="retry",
        clients=dict(clients or {}),
    )


def message(text: str, recipient: str = NUMBER, key: str = "sms#evt-1") -> Message:
    return Message(
        key=key, recipient=recipient, sender="", rendered=Rendered("", text), event_type="t"
    )


def landed_sms() -> list[tuple[str, str]]:
    """(number, text) of every SMS moto's SNS accepted, in order."""
    backend = sns_models.sns_backends[DEFAULT_ACCOUNT_ID][REGION]
    return list(backend.sms_messages.values())


def record_publishes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``publish`` moto's SNS backend is asked for, with the message attributes it parsed
    from the HTTP request (moto keeps only number and text of an SMS). The server runs in this
    process, so wrapping the backend's method sees what arrived over the wire."""
    calls: list[dict[str, Any]] = []
    original = sns_models.SNSBackend.publish

    def spy(self: Any, message: str, arn: Any, *args: Any, **kwargs: Any) -> str:
        calls.append({"message": message, **kwargs})
        return original(self, message, arn, *args, **kwargs)

    monkeypatch.setattr(sns_models.SNSBackend, "publish", spy)
    return calls


def raw_client(stack: AsyncExitStack, service: str) -> Any:
    """An aiobotocore client (for a Stubber) that never needs a network."""
    return stack.enter_async_context(
        SESSION.create_client(
            service,
            region_name=REGION,
            aws_access_key_id="a",
            aws_secret_access_key="b",
            config=AioConfig(retries={"total_max_attempts": 1}),
        )
    )


LEDGER = "notifier-ledger"
QUEUE = "notifier-failures"


def provision() -> str:
    """GIVEN the ledger table and the failure queue in moto; returns the queue URL."""
    import boto3

    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName=LEDGER,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return str(boto3.client("sqs", region_name=REGION).create_queue(QueueName=QUEUE)["QueueUrl"])


def failure_bodies(queue_url: str) -> list[dict[str, Any]]:
    """The failure records on the queue (read once, not deleted)."""
    import json

    import boto3

    resp = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10
    )
    return [json.loads(m["Body"]) for m in resp.get("Messages", [])]


def stream_record(i: int, phone: str | None, locale: str = "en") -> dict[str, Any]:
    """Sample stream record ``i`` (types cycle profile_view, friend_request,
    application_update) with ``user.phone`` and ``user.locale``."""
    import time

    from notifier.samples import make_stream_record

    rec = make_stream_record(i, seed=7, users=50, event_name="INSERT")
    rec["dynamodb"]["ApproximateCreationDateTime"] = int(time.time())
    image = rec["dynamodb"]["NewImage"]
    user = image["user"]["M"]
    user["locale"] = {"S": locale}
    if phone is not None:
        user["phone"] = {"S": phone}
    return rec
