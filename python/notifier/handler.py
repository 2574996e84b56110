"""The Lambda handler: one event loop and long-lived clients per process, one batch per call.

``build_handler(settings)`` does the expensive work once (config, templates, the aiobotocore
session and clients, the SES rate). ``Handler.__call__(event, context)`` runs one stream batch
on the persistent loop and returns ``{"batchItemFailures": [...]}``. ``lambda_handler`` is the
module-level entry point with a lazily built, environment-configured default Handler.

Imports of aiobotocore, the Rust extension and the template set happen inside
``build_handler`` so importing this module stays cheap.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from notifier.settings import Settings

if TYPE_CHECKING:
    from notifier.channels.base import Channel
    from notifier.pipeline import Pipeline

__all__ = ["Handler", "build_handler", "lambda_handler"]

T = TypeVar("T")


class Handler:
    """A ready handler. Call it with a stream event (dict, JSON str or raw bytes) and the
    Lambda context; ``stats`` accumulates across calls; ``close()`` releases the clients."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, stack: AsyncExitStack, pipeline: Pipeline
    ) -> None:
        self._loop = loop
        self._stack = stack
        self.pipeline = pipeline
        from notifier.pipeline import STAT_KEYS

        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        #: ``channel -> counters`` (``notifier.pipeline.ROUTE_STAT_KEYS``), across calls.
        self.channel_stats: dict[str, dict[str, int]] = {}
        self._closed = False

    def __call__(
        self, event: Mapping[str, Any] | bytes | str, context: Any = None
    ) -> dict[str, list[dict[str, str]]]:
        return self.handle(event, context)

    def handle(
        self,
        event: Mapping[str, Any] | bytes | str,
        context: Any = None,
        *,
        reconcile_run: bool = False,
    ) -> dict[str, list[dict[str, str]]]:
        """Handle one batch; ``reconcile_run``: records from the reconcile queue
        (``notifier.reconcile``)."""
        from notifier.pipeline import BatchFailedError

        try:
            report = self._loop.run_until_complete(
                self.pipeline.run(event, context, reconcile_run=reconcile_run)
            )
        except BatchFailedError as exc:
            self._add(exc.stats, exc.routes)
            raise
        self._add(report.stats, report.routes)
        return report.response()

    def _add(
        self, stats: Mapping[str, int], routes: Mapping[tuple[str, str], Mapping[str, int]]
    ) -> None:
        for k, v in stats.items():
            self.stats[k] = self.stats.get(k, 0) + v
        for (channel, _), counts in routes.items():
            per = self.channel_stats.setdefault(channel, {})
            for k, v in counts.items():
                per[k] = per.get(k, 0) + v

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the handler's loop (its clients live there): for tools and tests."""
        return self._loop.run_until_complete(awaitable)

    @property
    def ledger(self) -> Any:
        return self.pipeline.ledger

    @property
    def channels(self) -> Mapping[str, Channel]:
        return self.pipeline.channels

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run_until_complete(self._stack.aclose())
        finally:
            self._loop.close()

    def __enter__(self) -> Handler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_handler(
    settings: Settings | None = None,
    *,
    clients: Mapping[str, Any] | None = None,
    channels: Mapping[str, Channel] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    hot_path: tuple[Any, Any] | None = None,
) -> Handler:
    """Build a Handler: config validated, templates loaded, clients opened, once.

    ``clients`` injects pre-built clients by service name (``"sesv2"``, ``"dynamodb"``,
    ``"sqs"``, ``"ses"``); the rest are built per ``settings.aws_clients``: ``"fast"`` (default)
    uses ``notifier.aws.SESv2Client`` for the email channels and ``notifier.aws.DynamoDBClient``
    for the ledger, ``"aiobotocore"`` aiobotocore clients; SQS is always aiobotocore.
    ``channels`` injects ready channel objects by config name (tests use this to hold a
    ``MemoryChannel``); ``hot_path`` replaces ``(decode, render)`` (default: the Rust decoder
    ``decode_stream_event(..., errors="collect", images="tree")`` and
    ``TemplateSet.render_records``).
    Raises ``ConfigError`` for an unusable config.
    """
    settings = settings or Settings.from_env()
    loop = loop or asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        pipeline = loop.run_until_complete(
            _build(settings, stack, dict(clients or {}), dict(channels or {}), hot_path)
        )
    except BaseException:
        loop.run_until_complete(stack.aclose())
        loop.close()
        raise
    return Handler(loop, stack, pipeline)


async def _build(
    settings: Settings,
    stack: AsyncExitStack,
    clients: dict[str, Any],
    injected: dict[str, Channel],
    hot_path: tuple[Any, Any] | None,
) -> Pipeline:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    from notifier.channels import ChannelContext, build_channel
    from notifier.config import load_config
    from notifier.failures import FailureQueue
    from notifier.ledger import Ledger
    from notifier.metrics import from_env as metrics_from_env
    from notifier.pipeline import Pipeline
    from notifier.retry import Backoff

    config = with_overrides(load_config(settings.config_path), settings)
    delivery = config.delivery
    backoff = Backoff(
        max_attempts=delivery.max_attempts,
        base_s=delivery.base_delay_ms / 1000.0,
        cap_s=delivery.max_delay_ms / 1000.0,
    )
    decode, render = hot_path or _hot_path(settings)
    session = get_session()
    client_kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.endpoint_url:
        client_kwargs["endpoint_url"] = settings.endpoint_url
    pool = max(10, settings.max_concurrency)
    ddb = clients.get("dynamodb")
    if ddb is None and settings.aws_clients == "fast":
        from notifier.aws import DynamoDBClient

        # Timeouts sized for Lambda: every ledger call is also bounded by the invocation's
        # deadline (Ledger.call_timeout_s and asyncio.timeout).
        ddb = DynamoDBClient(
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            max_connections=pool,
            connect_timeout=2.0,
            read_timeout=5.0,
        )
        stack.push_async_callback(ddb.close)
    ddb = ddb or await stack.enter_async_context(
        session.create_client(
            "dynamodb",
            config=AioConfig(
                max_pool_connections=pool,
                retries={"mode": "standard"},
                connect_timeout=2,
                read_timeout=5,
            ),
            **client_kwargs,
        )
    )
    sqs = clients.get("sqs") or await stack.enter_async_context(
        session.create_client(
            "sqs",
            config=AioConfig(retries={"mode": "standard"}, connect_timeout=2, read_timeout=5),
            **client_kwargs,
        )
    )
    built: dict[str, Channel] = {}
    for name, options in config.channels.items():
        if name in injected:
            built[name] = injected[name]
            continue
        ctx = ChannelContext(
            name=name,
            options=options,
            stack=stack,
            session=session,
            client_kwargs=client_kwargs,
            sender=settings.sender,
            concurrency=settings.max_concurrency,
            backoff=backoff,
            unknown_outcome=delivery.unknown_outcome,
            clients=clients,
            max_send_rate=settings.max_send_rate,
            aws_clients=settings.aws_clients,
            configuration_set=settings.configuration_set,
        )
        built[name] = await build_channel(ctx)
    extras = await _deliverability(settings, config, stack, session, client_kwargs, ddb, sqs)
    return Pipeline(
        config=config,
        decode=decode,
        render=render,
        ledger=Ledger(ddb, settings.ledger_table, ttl_seconds=delivery.ttl_seconds),
        failure_queue=FailureQueue(
            sqs, queue_url=settings.failure_queue_url, queue_name=settings.failure_queue_name
        ),
        channels=built,
        default_sender=settings.sender,
        owner_prefix=uuid.uuid4().hex[:12],
        max_concurrency=settings.max_concurrency,
        expiry_guard_seconds=settings.expiry_guard_seconds,
        metrics=metrics_from_env(),
        **extras,
    )


async def _deliverability(
    settings: Settings,
    config: Any,
    stack: AsyncExitStack,
    session: Any,
    client_kwargs: Mapping[str, Any],
    ddb: Any,
    sqs: Any,
) -> dict[str, Any]:
    """The pipeline's preferences store, unsubscribe links, SES tags and reconcile queue, as
    the config asks for them (docs/DELIVERABILITY.md)."""
    from notifier.config import ConfigError
    from notifier.failures import FailureQueue
    from notifier.ses_events import CATEGORY_TAG, KEY_TAG, USER_TAG, encode_tag

    out: dict[str, Any] = {}
    if config.preferences.enabled:
        from notifier.preferences import PreferencesStore

        out["preferences"] = PreferencesStore(ddb, settings.preferences_table)
    unsub = config.unsubscribe
    if unsub.base_url:
        from notifier.secrets import SecretResolver
        from notifier.unsubscribe import (
            UnsubscribeTokens,
            list_unsubscribe_headers,
            load_keys,
            unsubscribe_url,
        )

        resolver = SecretResolver(session=session, client_kwargs=dict(client_kwargs), clients={})
        keys = await load_keys(resolver, unsub.key, "unsubscribe.key")
        tokens = UnsubscribeTokens(keys, ttl_seconds=unsub.ttl_days * 86_400)
        mailto = unsub.mailto or None

        def links(user_id: str, category: str, channel: str) -> tuple[str, Any]:
            url = unsubscribe_url(unsub.base_url, tokens.sign(user_id, category, channel))
            return url, tuple(list_unsubscribe_headers(url, mailto))

        out["unsubscribe_links"] = links

    def tagger(n: Any) -> tuple[tuple[str, str], ...]:
        tags = [(KEY_TAG, encode_tag(n.key))]
        for name, value in ((USER_TAG, n.user_id), (CATEGORY_TAG, n.category)):
            if value and len(value.encode("utf-8", "surrogatepass")) <= 192:
                tags.append((name, encode_tag(value)))
        return tuple(tags)

    out["tagger"] = tagger
    if config.delivery.unknown_outcome == "reconcile":
        if not settings.reconcile_queue_url:
            raise ConfigError(
                f"{config.source}: delivery.unknown_outcome = 'reconcile' needs "
                "NOTIFIER_RECONCILE_QUEUE_URL (the delayed queue unknown sends wait on)"
            )
        out["reconcile_queue"] = FailureQueue(
            sqs,
            queue_url=settings.reconcile_queue_url,
            delay_seconds=int(config.delivery.reconcile_seconds),
        )
    return out


def with_overrides(config: Any, settings: Settings) -> Any:
    """The config with the deployment's environment overrides applied
    (``NOTIFIER_UNKNOWN_OUTCOME``, ``NOTIFIER_UNSUBSCRIBE_BASE_URL``,
    ``NOTIFIER_PREFERENCES_ENABLED``)."""
    import dataclasses

    import msgspec

    from notifier.config import ConfigError

    if settings.unknown_outcome:
        delivery = msgspec.structs.replace(
            config.delivery, unknown_outcome=settings.unknown_outcome
        )
        config = dataclasses.replace(config, delivery=delivery)
    if settings.preferences_enabled is not None:
        prefs = msgspec.structs.replace(config.preferences, enabled=settings.preferences_enabled)
        config = dataclasses.replace(config, preferences=prefs)
    if settings.unsubscribe_base_url:
        url = settings.unsubscribe_base_url
        if not url.startswith("https://"):
            raise ConfigError(f"NOTIFIER_UNSUBSCRIBE_BASE_URL must be an https:// URL, got {url!r}")
        unsub = msgspec.structs.replace(config.unsubscribe, base_url=url)
        config = dataclasses.replace(config, unsubscribe=unsub)
    return config


def _hot_path(settings: Settings) -> tuple[Any, Any]:
    """The Rust decoder and the template set (imported here: they are the heavy part)."""
    import importlib

    ddb = importlib.import_module("notifier.ddb")
    templates = importlib.import_module("notifier.templates")
    directory = settings.templates_dir or templates.builtin_templates()
    template_set = templates.TemplateSet(directory)

    def decode(event: Any) -> Any:
        # images="tree": routing reads paths and rendering reads trees; no Python dicts.
        # source="auto": DynamoDB Streams or Kinesis Data Streams for DynamoDB, told by the
        # first record's eventSource (a substring search over the first record for raw text);
        # Kinesis records carry the Kinesis sequenceNumber, the batchItemFailures identifier.
        return ddb.decode_stream_event(event, errors="collect", images="tree", source="auto")

    return decode, template_set.render_records


_default: Handler | None = None


def lambda_handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    """The Lambda entry point (``notifier.handler.lambda_handler``)."""
    global _default
    if _default is None:
        _default = build_handler()
    return _default(event, context)
