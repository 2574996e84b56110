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

__all__ = ["Notification", "Poison", "Record", "Router"]


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
    key: str  #: ledger key "<channel>#<dedup key>"
    dedup_key: str
    template: str
    recipient: str
    locale: str | None
    sender: str


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

    def route(self, rec: Any) -> list[Notification | Poison]:
        """The notifications ``rec`` asks for; empty when the record is not routed (skipped)."""
        event_type = rec.get(self._type_path)
        if not isinstance(event_type, str):
            return []
        routes = self._lookup.get((rec.event_name, event_type))
        if not routes:
            return []
        return [self._one(rec, route, event_type) for route in routes]

    def _one(self, rec: Any, route: Route, event_type: str) -> Notification | Poison:
        dedup = _text(rec.get(route.dedup_key)) or rec.event_id
        key = ledger_key(route.channel, dedup)
        channel = self.channels[route.channel]
        raw_recipient = rec.get(route.recipient)
        recipient = channel.validate_recipient(raw_recipient)
        if recipient is None:
            missing = raw_recipient is None
            return Poison(
                index=rec.index,
                key=key,
                error_code="MissingRecipient" if missing else "InvalidRecipient",
                reason=(
                    f"no recipient at {route.recipient!r}"
                    if missing
                    else f"unusable recipient {mask_address(raw_recipient)} at {route.recipient!r}"
                ),
                raw=rec.raw,
                sequence_number=rec.sequence_number,
                event_id=rec.event_id,
                channel=route.channel,
                dedup_key=dedup,
                event_source_arn=rec.event_source_arn,
            )
        locale = rec.get(route.locale)
        return Notification(
            index=rec.index,
            record=rec,
            channel=route.channel,
            key=key,
            dedup_key=dedup,
            template=self.config.template_for(route, event_type),
            recipient=recipient,
            locale=locale if isinstance(locale, str) and locale else None,
            sender=route.sender,
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
