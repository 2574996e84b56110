"""The routing config: which stream records become which notifications (TOML, validated at start).

A config file (``NOTIFIER_CONFIG``; the built-in ``default_config.toml`` serves the demo) has:

- ``event_type_path``: dotted path of the event type in the new image (default ``event_type``).
- ``[delivery]``: the policy knobs (see :class:`Delivery`).
- ``[channels.<name>]``: one table per channel; ``kind`` picks the implementation from the
  channel registry (``email``, ``memory``, or ``package.module:factory``), the other keys are
  the channel's own options, validated by the channel itself.
- ``[[routes]]``: which ``event_names`` x ``event_types`` notify, on which channel, with which
  template, recipient path, locale path, sender and dedup-key path (see :class:`Route`). One
  event may route to several channels: each is its own notification with its own ledger key.

Every problem is reported at start-up as one :class:`ConfigError` naming the file and key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Config",
    "ConfigError",
    "Delivery",
    "PreferencesConfig",
    "Route",
    "UnsubscribeConfig",
    "load_config",
    "parse_config",
]

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default_config.toml")
_EVENT_NAMES = frozenset({"INSERT", "MODIFY", "REMOVE"})


class ConfigError(ValueError):
    """The routing config cannot be used; the message names the source and the offending key."""


UnknownOutcome = Literal["retry", "assume_sent", "reconcile"]
MissingRecipient = Literal["auto", "skip", "dead_letter"]


class Delivery(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Delivery policy. Defaults are production defaults; docs/EXACTLY-ONCE.md explains each."""

    #: A send whose outcome is unknown: ``retry`` (at-least-once), ``assume_sent``
    #: (at-most-once) or ``reconcile`` (parked until SES's Send event settles it, else resent
    #: after ``reconcile_seconds``; needs the SES event handler and the reconcile queue).
    unknown_outcome: UnknownOutcome = "retry"
    #: ``reconcile``: how long an unknown send waits for its Send event before it is resent
    #: (5-900 s: the reconcile queue's message delay).
    reconcile_seconds: float = 120.0
    #: A claim's lease = the invocation's remaining time + this grace (seconds).
    lease_grace_seconds: float = 10.0
    #: DynamoDB TTL of ledger entries (seconds); must outlive the stream's 24 h retention.
    ttl_seconds: int = 7 * 86_400
    #: Attempts per notification inside one invocation (throttling, 5xx, unknown with ``retry``).
    max_attempts: int = 8
    base_delay_ms: float = 25.0
    max_delay_ms: float = 2_000.0
    #: No new work is started closer than this to the Lambda deadline.
    deadline_margin_ms: float = 3_000.0


class Route(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One routing rule: records whose event name and event type match notify on ``channel``."""

    event_types: list[str]
    channel: str
    event_names: list[str] = msgspec.field(default_factory=lambda: ["INSERT"])
    #: Template name; empty means "the event type".
    template: str = ""
    #: Dotted path of the recipient; empty means the channel's own default (``user.email`` for
    #: email, ``user.phone`` for SMS, ``user.devices`` for push, the URL for a webhook).
    recipient: str = ""
    #: A record without a recipient at that path: ``skip`` (counted as ``no_recipient``),
    #: ``dead_letter`` (a permanent ``MissingRecipient`` failure), or ``auto``: skip when the
    #: event has other routes (a user without a phone still gets the email), else dead-letter.
    missing_recipient: MissingRecipient = "auto"
    locale: str = "user.locale"
    #: Sender for this route; empty means the channel's (or ``NOTIFIER_SENDER``).
    sender: str = ""
    #: Dotted path of the dedup key; the stream record's eventID when absent from the image.
    dedup_key: str = "event_id"
    #: What a user opts out of (preferences, unsubscribe links); empty means the event type.
    category: str = ""


class PreferencesConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[preferences]``: read users' opt-outs and suppressed addresses per batch."""

    enabled: bool = False
    #: Dotted path of the user id in the image (the preferences table's ``USER#<id>``).
    user_id_path: str = "user.id"


class UnsubscribeConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[unsubscribe]``: a signed one-click unsubscribe link per notification (RFC 8058)."""

    #: The unsubscribe endpoint (the SAM template's function URL); empty: no links.
    base_url: str = ""
    #: Secret reference of the signing key(s): ``env:NAME``, ``ssm:/path``,
    #: ``secretsmanager:<id>[#key]``.
    key: str = "env:NOTIFIER_UNSUBSCRIBE_KEY"
    #: Optional ``mailto:`` fallback in ``List-Unsubscribe``.
    mailto: str = ""
    #: How long a link stays valid.
    ttl_days: int = 30


class _Document(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    routes: list[Route]
    channels: dict[str, dict[str, Any]]
    event_type_path: str = "event_type"
    delivery: Delivery = msgspec.field(default_factory=Delivery)
    preferences: PreferencesConfig = msgspec.field(default_factory=PreferencesConfig)
    unsubscribe: UnsubscribeConfig = msgspec.field(default_factory=UnsubscribeConfig)


@dataclass(frozen=True, slots=True)
class Config:
    """A validated config; ``lookup[(event_name, event_type)]`` gives the routes to notify."""

    source: str
    event_type_path: str
    delivery: Delivery
    channels: Mapping[str, Mapping[str, Any]]
    routes: tuple[Route, ...]
    lookup: Mapping[tuple[str, str], tuple[Route, ...]]
    preferences: PreferencesConfig = field(default_factory=PreferencesConfig)
    unsubscribe: UnsubscribeConfig = field(default_factory=UnsubscribeConfig)

    def template_for(self, route: Route, event_type: str) -> str:
        return route.template or event_type

    def category_for(self, route: Route, event_type: str) -> str:
        return route.category or event_type


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the TOML file at ``path`` (the built-in default when ``None``)."""
    import tomllib

    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror or exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {_toml_message(exc)}") from exc
    return parse_config(raw, source=str(p))


def parse_config(raw: Mapping[str, Any], *, source: str = "<config>") -> Config:
    """Validate an already-parsed config document."""
    try:
        doc = msgspec.convert(dict(raw), type=_Document, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_validation_message(exc)}") from exc
    errors: list[str] = []
    d = doc.delivery
    if d.lease_grace_seconds < 0:
        errors.append("delivery.lease_grace_seconds must be >= 0")
    if d.ttl_seconds < 86_400:
        errors.append("delivery.ttl_seconds must be at least 86400 (the stream keeps 24 h)")
    if d.max_attempts < 1:
        errors.append("delivery.max_attempts must be >= 1")
    if d.base_delay_ms < 0 or d.max_delay_ms < d.base_delay_ms:
        errors.append("delivery: need 0 <= base_delay_ms <= max_delay_ms")
    if d.deadline_margin_ms < 0:
        errors.append("delivery.deadline_margin_ms must be >= 0")
    if not 5 <= d.reconcile_seconds <= 900:
        errors.append("delivery.reconcile_seconds must be between 5 and 900 (an SQS delay)")
    if doc.preferences.enabled and not doc.preferences.user_id_path:
        errors.append("preferences.user_id_path must be a non-empty dotted path")
    u = doc.unsubscribe
    if u.base_url and not u.base_url.startswith("https://"):
        errors.append("unsubscribe.base_url must be an https:// URL (RFC 8058 one-click)")
    if u.mailto and not u.mailto.startswith("mailto:"):
        errors.append("unsubscribe.mailto must start with mailto:")
    if u.ttl_days < 1:
        errors.append("unsubscribe.ttl_days must be >= 1")
    if not doc.event_type_path:
        errors.append("event_type_path must not be empty")
    for name, options in doc.channels.items():
        kind = options.get("kind")
        if not isinstance(kind, str) or not kind:
            errors.append(f"channels.{name}.kind must be a non-empty string")
    if not doc.routes:
        errors.append("routes: at least one route is required")
    lookup: dict[tuple[str, str], list[Route]] = {}
    for i, route in enumerate(doc.routes):
        where = f"routes[{i}]"
        if route.channel not in doc.channels:
            known = ", ".join(sorted(doc.channels)) or "none"
            errors.append(f"{where}.channel {route.channel!r} is not defined (channels: {known})")
        if not route.event_types or any(not t for t in route.event_types):
            errors.append(f"{where}.event_types must list non-empty event types")
        bad = [n for n in route.event_names if n not in _EVENT_NAMES]
        if bad or not route.event_names:
            errors.append(f"{where}.event_names must be a non-empty subset of INSERT/MODIFY/REMOVE")
        if not route.dedup_key:
            errors.append(f"{where}.dedup_key must be a non-empty dotted path")
        for name in route.event_names:
            for event_type in route.event_types:
                same = lookup.setdefault((name, event_type), [])
                if any(r.channel == route.channel for r in same):
                    errors.append(
                        f"{where}: ({name}, {event_type}) already routes to channel "
                        f"{route.channel!r}; one notification per channel and event"
                    )
                same.append(route)
    if errors:
        raise ConfigError(f"{source}: " + "; ".join(errors))
    return Config(
        source=source,
        event_type_path=doc.event_type_path,
        delivery=doc.delivery,
        channels={k: dict(v) for k, v in doc.channels.items()},
        routes=tuple(doc.routes),
        lookup={k: tuple(v) for k, v in lookup.items()},
        preferences=doc.preferences,
        unsubscribe=doc.unsubscribe,
    )


def _toml_message(exc: Exception) -> str:
    """``Invalid value (at line 3, column 5)`` -> ``line 3, column 5: invalid value``."""
    import re

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = re.fullmatch(r"(.*?) \(at (line \d+, column \d+|end of document)\)", text)
    if not m:
        return text
    return f"{m.group(2)}: {m.group(1)[:1].lower()}{m.group(1)[1:]}"


def _validation_message(exc: Exception) -> str:
    """msgspec's ``Expected `str`, got `int` - at `$.routes[0].channel``` as a message that
    names the key first: ``routes[0].channel: expected `str`, got `int```."""
    import re

    text = str(exc).splitlines()[0]
    where = ""
    m = re.fullmatch(r"(.*) - at `\$\.?(.*)`", text)
    if m:
        text, where = m.group(1), m.group(2)
    unknown = re.fullmatch(r"Object contains unknown field `(.*)`", text)
    if unknown:
        key = f"{where}.{unknown.group(1)}" if where else unknown.group(1)
        return f"unknown key `{key}`"
    missing = re.fullmatch(r"Object missing required field `(.*)`", text)
    if missing:
        key = f"{where}.{missing.group(1)}" if where else missing.group(1)
        return f"missing required key `{key}`"
    text = text[:1].lower() + text[1:]
    return f"`{where}`: {text}" if where else text
