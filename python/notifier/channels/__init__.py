"""Channels: the registry that turns ``[channels.<name>]`` config tables into channel objects.

A channel kind is an async factory ``(ChannelContext) -> Channel``. Built in: ``email`` (SES v2),
``sms`` (SNS or End User Messaging), ``push`` (SNS platform endpoints), ``webhook`` (Standard
Webhooks) and ``memory``. Any other kind is ``"package.module:factory"``, imported on demand,
or a name registered with :func:`register_kind`: a channel plugs in without touching the core
(docs/CHANNELS.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from notifier.channels.base import Channel, Message, Outcome, SendResult, mask_address

__all__ = [
    "Channel",
    "ChannelContext",
    "Message",
    "Outcome",
    "SendResult",
    "build_channel",
    "mask_address",
    "register_kind",
]


@dataclass
class ChannelContext:
    """Everything a channel factory may use."""

    name: str
    options: Mapping[str, Any]
    stack: AsyncExitStack  #: enter long-lived clients here; closed with the handler
    session: Any  #: the aiobotocore session shared by the handler
    client_kwargs: Mapping[str, Any]  #: region/endpoint for ``session.create_client``
    sender: str
    concurrency: int
    backoff: Any
    unknown_outcome: str
    #: Pre-built clients by service name (``"sesv2"``): injected instead of created.
    clients: Mapping[str, Any] = field(default_factory=dict)
    #: Deployment override of the send rate (``NOTIFIER_MAX_SEND_RATE``).
    max_send_rate: float | None = None
    #: ``"fast"`` (``notifier.aws`` clients for the hot calls) or ``"aiobotocore"``.
    aws_clients: str = "fast"
    #: Deployment default SES configuration set (``NOTIFIER_SES_CONFIGURATION_SET``).
    configuration_set: str | None = None


Factory = Callable[[ChannelContext], Awaitable[Channel]]
_KINDS: dict[str, Factory] = {}


def register_kind(kind: str, factory: Factory) -> None:
    """Make ``kind = "<kind>"`` in the config build channels with ``factory``."""
    _KINDS[kind] = factory


async def _email(ctx: ChannelContext) -> Channel:
    from notifier.channels.email import build_email_channel

    return await build_email_channel(ctx)


async def _memory(ctx: ChannelContext) -> Channel:
    from notifier.channels.memory import build

    return build(
        ctx.name,
        dict(ctx.options),
        concurrency=ctx.concurrency,
        backoff=ctx.backoff,
        unknown_outcome=ctx.unknown_outcome,
    )


async def _webhook(ctx: ChannelContext) -> Channel:
    from notifier.channels.webhook import build_webhook_channel

    return await build_webhook_channel(ctx)


async def _push(ctx: ChannelContext) -> Channel:
    from notifier.channels.push import build_push_channel

    return await build_push_channel(ctx)


async def _sms(ctx: ChannelContext) -> Channel:
    from notifier.channels.sms import build_sms_channel

    return await build_sms_channel(ctx)


register_kind("email", _email)
register_kind("sms", _sms)
register_kind("push", _push)
register_kind("memory", _memory)
register_kind("webhook", _webhook)


async def build_channel(ctx: ChannelContext) -> Channel:
    from notifier.config import ConfigError

    kind = str(ctx.options.get("kind", ""))
    factory = _KINDS.get(kind)
    if factory is None and ":" in kind:
        module_name, _, attr = kind.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"channels.{ctx.name}.kind {kind!r}: cannot import: {exc}") from exc
    if factory is None:
        known = ", ".join(sorted(_KINDS))
        raise ConfigError(
            f"channels.{ctx.name}.kind {kind!r} is unknown (built in: {known}; "
            "or 'package.module:factory')"
        )
    channel = await factory(ctx)
    if not isinstance(channel, Channel):
        raise ConfigError(f"channels.{ctx.name}: factory for {kind!r} did not return a Channel")
    return channel
