"""Routing: one decoded stream record -> the notifications it asks for (or none).

Reads only the few attributes routing needs with ``StreamRecord.get(path)`` (event type,
recipient, locale, dedup key): the record's image is never built as Python objects here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from notifier.channels.base import Channel, mask_address, scrub
from notifier.config import Config, Route
from notifier.ledger import ledger_key

__all__ = ["Notification", "Poison", "Record", "Router", "Skipped"]


class Record(Protocol):
    """What the pipeline reads from a decoded ``notifier.ddb.StreamRecord``."""

    @property
    def index(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def event_name(self) -> str: ...
    @property
    def sequence_number(self) -> str: ...
    @property
    def raw(self) -> str: ...
    @property
    def event_source_arn(self) -> str | None: ...

    def get(self, path: str, default: Any = None) -> Any: ...


@dataclass(slots=True)
class Notification:
    index: int
    record: Any
    channel: str
    key: str  #: ledger key "<channel>#<dedup key>" ("...#<recipient>" for a fan-out)
    dedup_key: str
    #: The template to render (``friend_request``, ``friend_request:sms``); ``None`` when the
    #: channel renders nothing (``template_variant = None``).
    template: str | None
    recipient: str
    locale: str | None
    sender: str
    event_type: str = ""
    #: What the user opts out of (the route's category, else the event type).
    category: str = ""
    #: The user's id (``preferences.user_id_path``) when preferences or unsubscribe links
    #: are configured.
    user_id: str | None = None
    #: The signed one-click unsubscribe link, set before rendering (``[unsubscribe]``).
    unsubscribe_url: str | None = None


@dataclass(slots=True)
class Skipped:
    """A route whose recipient is absent from the record (``missing_recipient = "skip"``)."""

    index: int
    channel: str
    event_type: str


@dataclass(slots=True)
class Poison:
    """A record (or one of its notifications) that can never be delivered: dead-letter it."""

    index: int
    key: str
    error_code: str
    reason: str
    raw: str
    sequence_number: str | None
    event_id: str | None
    channel: str | None = None
    dedup_key: str | None = None
    event_source_arn: str | None = None
    event_type: str | None = None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        return str(value)
    return None


class Router:
    def __init__(self, config: Config, channels: Mapping[str, Channel]) -> None:
        self.config = config
        self.channels = channels
        self._type_path = config.event_type_path
        self._lookup = config.lookup
        wants_user = config.preferences.enabled or bool(config.unsubscribe.base_url)
        self._user_path = config.preferences.user_id_path if wants_user else None

    def route(self, rec: Any) -> list[Notification | Poison | Skipped]:
        """The notifications ``rec`` asks for; empty when the record is not routed (skipped)."""
        event_type = rec.get(self._type_path)
        if not isinstance(event_type, str):
            return []
        routes = self._lookup.get((rec.event_name, event_type))
        if not routes:
            return []
        out: list[Notification | Poison | Skipped] = []
        for route in routes:
            self._one(rec, route, event_type, len(routes), out)
        return out

    def _one(
        self,
        rec: Any,
        route: Route,
        event_type: str,
        n_routes: int,
        out: list[Notification | Poison | Skipped],
    ) -> None:
        dedup = _text(rec.get(route.dedup_key)) or rec.event_id
        channel = self.channels[route.channel]
        path = route.recipient or getattr(channel, "recipient_path", "user.email")
        raw = rec.get(path) if path else None
        fan_out = getattr(channel, "fan_out", False) and isinstance(raw, list)
        if path and (raw is None or (fan_out and not raw)):
            policy = route.missing_recipient
            if policy == "skip" or (policy == "auto" and n_routes > 1):
                out.append(Skipped(rec.index, route.channel, event_type))
                return
        variant = getattr(channel, "template_variant", "")
        base = self.config.template_for(route, event_type)
        template = None if variant is None else (f"{base}:{variant}" if variant else base)
        locale = rec.get(route.locale)
        where = path or f"channels.{route.channel}"
        user_id = _text(rec.get(self._user_path)) if self._user_path else None
        category = self.config.category_for(route, event_type)
        items: list[Any] = list(raw) if fan_out and isinstance(raw, list) else [raw]
        for i, item in enumerate(items):
            recipient = channel.validate_recipient(item)
            key = ledger_key(route.channel, f"{dedup}#{recipient or ''}" if fan_out else dedup)
            if recipient is None:
                missing = item is None
                out.append(
                    Poison(
                        index=rec.index,
                        key=ledger_key(route.channel, f"{dedup}#invalid-{i}") if fan_out else key,
                        error_code="MissingRecipient" if missing else "InvalidRecipient",
                        reason=(
                            f"no recipient at {where!r}"
                            if missing
                            else f"unusable recipient {mask_address(item)} at {where!r}"
                        ),
                        raw=rec.raw,
                        sequence_number=rec.sequence_number,
                        event_id=rec.event_id,
                        channel=route.channel,
                        dedup_key=dedup,
                        event_source_arn=rec.event_source_arn,
                        event_type=event_type,
                    )
                )
                continue
            out.append(
                Notification(
                    index=rec.index,
                    record=rec,
                    channel=route.channel,
                    key=key,
                    dedup_key=dedup,
                    template=template,
                    recipient=recipient,
                    locale=locale if isinstance(locale, str) and locale else None,
                    sender=route.sender,
                    event_type=event_type,
                    category=category,
                    user_id=user_id,
                )
            )


def record_error_poison(err: Any) -> Poison:
    """A record the decoder rejected (``notifier.ddb.RecordError``)."""
    ident = err.event_id or err.sequence_number or f"index-{err.index}"
    exc = err.error
    return Poison(
        index=err.index,
        key=ledger_key("_record", ident),
        error_code=type(exc).__name__,
        reason=scrub(str(exc))[:500],
        raw=err.raw,
        sequence_number=err.sequence_number,
        event_id=err.event_id,
    )
