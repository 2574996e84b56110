"""Shared pieces of the webhook tests: secrets, a verifying receiver, contexts and messages.

No conftest in tests/channels (several channels' tests share the folder): test modules import
the fixtures they use from here.
"""

from __future__ import annotations

import decimal
import socket
from collections.abc import Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from notifier.channels import ChannelContext
from notifier.channels.base import Message
from notifier.channels.signing import generate_secret
from notifier.local.webhook_receiver import WebhookReceiver
from notifier.retry import Backoff

#: The receiver's current secret (and the one the channel's env reference resolves to).
SECRET = generate_secret()
#: A second key, for rotation tests.
OLD_SECRET = generate_secret()
SECRET_ENV = "NOTIFIER_TEST_WEBHOOK_SECRET"


@dataclass
class FakeRecord:
    """The part of ``notifier.ddb.StreamRecord`` the webhook envelope reads."""

    event_name: str = "INSERT"
    new_image: dict[str, Any] | None = None
    old_image: dict[str, Any] | None = None
    approximate_creation_time: float | None = 1_700_000_000.25


IMAGE = {
    "user": {"id": "u-1", "email": "grace@example.com"},
    "actor": {"name": "Ada Lovelace"},
    "score": decimal.Decimal("12.50"),
    "big": decimal.Decimal("12345678901234567890"),
}


def message(
    key: str = "hooks#evt-1", record: Any = None, event_type: str = "profile_view"
) -> Message:
    return Message(
        key=key,
        recipient="",
        sender="",
        rendered=None,
        event_type=event_type,
        record=record if record is not None else FakeRecord(new_image=IMAGE),
    )


def context(
    stack: AsyncExitStack,
    options: Mapping[str, Any],
    *,
    name: str = "hooks",
    session: Any = None,
    client_kwargs: Mapping[str, Any] | None = None,
    clients: Mapping[str, Any] | None = None,
    unknown_outcome: str = "retry",
    max_attempts: int = 4,
) -> ChannelContext:
    return ChannelContext(
        name=name,
        options={"kind": "webhook", **options},
        stack=stack,
        session=session,
        client_kwargs=client_kwargs or {},
        sender="",
        concurrency=8,
        backoff=Backoff(max_attempts=max_attempts, base_s=0.001, cap_s=0.005),
        unknown_outcome=unknown_outcome,
        clients=clients or {},
    )


def options(url: str, **extra: Any) -> dict[str, Any]:
    """Valid options for a channel POSTing to ``url`` (a loopback receiver)."""
    return {
        "url": url,
        "secret": f"env:{SECRET_ENV}",
        "allowed_hosts": ["127.0.0.1"],
        "timeout_seconds": 2.0,
        **extra,
    }


def closed_port_url() -> str:
    """An http URL on a loopback port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


@pytest.fixture(scope="session", name="webhook_receiver_server")
def webhook_receiver_server_fixture() -> Iterator[WebhookReceiver]:
    with WebhookReceiver([SECRET]) as receiver:
        yield receiver


@pytest.fixture(name="receiver")
def receiver_fixture(
    webhook_receiver_server: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> WebhookReceiver:
    """GIVEN a verifying receiver (secret SECRET, nothing scripted, nothing received) and the
    channel's secret reference set in the environment."""
    webhook_receiver_server.reset()
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return webhook_receiver_server


async def build(opts: Mapping[str, Any], stack: AsyncExitStack, **kw: Any) -> Any:
    """The channel the registry factory builds from ``opts`` (closed with ``stack``)."""
    from notifier.channels.webhook import build_webhook_channel

    return await build_webhook_channel(context(stack, opts, **kw))
