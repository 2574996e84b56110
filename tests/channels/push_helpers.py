"""Helpers for the push channel tests: SNS platform applications and endpoints in moto, the
messages moto recorded on them, and a channel built by the real factory."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import boto3
from aiobotocore.session import get_session

from notifier.channels import ChannelContext
from notifier.channels.base import Message
from notifier.channels.push import PushChannel, build_push_channel
from notifier.retry import Backoff
from notifier.templates import Rendered

REGION = "us-east-1"
CONTENT = {"title": "Ada viewed your profile", "body": "And 3 more.", "data": {"k": "v", "n": 3}}


def sns() -> Any:
    return boto3.client("sns", region_name=REGION)


def platform_app(platform: str, name: str = "app") -> str:
    """GIVEN a platform application (``GCM``, ``APNS``, ``APNS_SANDBOX``): its ARN."""
    return str(
        sns().create_platform_application(
            Name=f"{name}-{platform.lower()}",
            Platform=platform,
            Attributes={"PlatformCredential": "secret", "PlatformPrincipal": "principal"},
        )["PlatformApplicationArn"]
    )


def endpoint(app_arn: str, token: str) -> str:
    """GIVEN an endpoint of ``app_arn`` for device ``token``: its ARN."""
    return str(
        sns().create_platform_endpoint(PlatformApplicationArn=app_arn, Token=token)["EndpointArn"]
    )


def disable(endpoint_arn: str) -> None:
    sns().set_endpoint_attributes(EndpointArn=endpoint_arn, Attributes={"Enabled": "false"})


def delivered(endpoint_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every SNS envelope moto accepted, by endpoint ARN (decoded JSON), from
    ``/moto-api/data.json`` (moto keeps them on its ``PlatformEndpoint.messages``)."""
    with urllib.request.urlopen(f"{endpoint_url}/moto-api/data.json", timeout=30) as resp:
        data = json.load(resp)
    out: dict[str, list[dict[str, Any]]] = {}
    for ep in data.get("sns", {}).get("PlatformEndpoint", []):
        out[ep["arn"]] = [json.loads(m) for m in ep.get("messages", {}).values()]
    return out


def message(
    recipient: str,
    *,
    text: str | None = None,
    dedup: str = "evt-1",
    event_type: str = "profile_view",
    channel: str = "push",
) -> Message:
    """A fanned-out push message to ``recipient`` (ledger key ``push#<dedup>#<recipient>``)."""
    body = json.dumps(CONTENT) if text is None else text
    return Message(
        key=f"{channel}#{dedup}#{recipient}",
        recipient=recipient,
        sender="",
        rendered=Rendered("", body),
        event_type=event_type,
    )


@asynccontextmanager
async def push_channel(
    endpoint_url: str, options: dict[str, Any] | None = None, **ctx_kwargs: Any
) -> AsyncIterator[PushChannel]:
    """A channel from ``build_push_channel`` with a real aiobotocore SNS client on moto."""
    async with AsyncExitStack() as stack:
        ctx = ChannelContext(
            name="push",
            options={"kind": "push", **(options or {})},
            stack=stack,
            session=get_session(),
            client_kwargs={"region_name": REGION, "endpoint_url": endpoint_url},
            sender="",
            concurrency=8,
            backoff=Backoff(max_attempts=2, base_s=0.001, cap_s=0.01),
            unknown_outcome="retry",
            **ctx_kwargs,
        )
        yield await build_push_channel(ctx)
