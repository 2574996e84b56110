"""The demo's channels beyond email: their resources, their config, and where messages land.

``notifier demo --channels email,sms,push,webhook`` runs every channel on the embedded default:

- **SMS** goes through SNS ``Publish`` to the users' phone numbers (every fifth user has none,
  so the summary shows skipped notifications); moto records each message.
- **Push** goes through SNS platform endpoints: an Android (GCM/FCM) application and an iOS
  (APNs) one are created in moto, with an endpoint per device; most users have an Android
  device, every third one an iPhone too, and every fourth none. moto records each message on
  its endpoint.
- **Webhooks** go to :class:`~notifier.local.webhook_receiver.WebhookReceiver` on 127.0.0.1,
  which verifies every signature (Standard Webhooks) and counts deliveries per ``webhook-id``.

The routing config is written for the chosen channels (every demo event type on each), and the
events get ``user.phone`` and ``user.devices``. Messages are counted where they land: SES's own
count, moto's SNS backend (in this process: the embedded moto only) and the receiver.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CHANNELS", "DemoChannels", "parse_channels"]

CHANNELS = ("email", "sms", "push", "webhook")
_EVENT_TYPES = '["profile_view", "friend_request", "application_update"]'
SECRET_ENV = "NOTIFIER_DEMO_WEBHOOK_SECRET"
UNSUBSCRIBE_KEY_ENV = "NOTIFIER_DEMO_UNSUBSCRIBE_KEY"


def parse_channels(text: str) -> tuple[str, ...]:
    """``"email,sms"`` -> ``("email", "sms")``; ValueError naming an unknown channel."""
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    unknown = [n for n in names if n not in CHANNELS]
    if unknown or not names:
        raise ValueError(
            f"unknown channel {unknown[0]!r}" if unknown else "no channel named"
        ) from None
    return names


def phone_of(user: int) -> str | None:
    """The demo phone number of ``user`` (E.164, a +1 206 555 number); None for every fifth."""
    return None if user % 5 == 4 else f"+1206555{user % 10_000:04d}"


@dataclass
class DemoChannels:
    """Set up the chosen channels in moto and the process; a context manager's helper."""

    channels: tuple[str, ...]
    region: str
    users: int
    #: moto runs in this process (its SNS backends can be read to count messages).
    embedded: bool = True
    #: Sends per second for every channel (the demo's ``--send-rate``).
    send_rate: float = 1000.0
    #: ``[delivery] unknown_outcome`` of the written config (the demo's ``--unknown-outcome``).
    unknown_outcome: str = "reconcile"
    devices: dict[int, list[str]] = field(default_factory=dict)
    receiver: Any = None
    #: A ``FaultProxy`` that webhooks go through (``--throttle-rate`` etc.); None: direct.
    fault_proxy: Any = None
    config_path: Path | None = None

    @property
    def extra(self) -> bool:
        """Channels beyond email were asked for (the default config does not serve them)."""
        return self.channels != ("email",)

    def setup(self, stack: ExitStack) -> dict[str, str]:
        """Create the resources; returns the environment the handler needs
        (``NOTIFIER_CONFIG`` and the webhook secret)."""
        env: dict[str, str] = {}
        if "push" in self.channels:
            self.devices = _create_endpoints(self.region, self.users)
        if "webhook" in self.channels:
            from notifier.channels.signing import generate_secret
            from notifier.local.webhook_receiver import WebhookReceiver

            secret = generate_secret()
            self.receiver = stack.enter_context(WebhookReceiver([secret]))
            env[SECRET_ENV] = secret
        from notifier.unsubscribe import generate_key

        env[UNSUBSCRIBE_KEY_ENV] = generate_key()
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="notifier-demo-")))
        self.config_path = folder / "config.toml"
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        env["NOTIFIER_CONFIG"] = str(self.config_path)
        return env

    def config_text(self) -> str:
        parts = [
            "# Written by `notifier demo`: every demo event type on each channel.",
            'event_type_path = "event_type"',
            "",
            "[delivery]",
            f'unknown_outcome = "{self.unknown_outcome}"',
            "reconcile_seconds = 5",
            "",
            "[preferences]",
            "enabled = true",
            "",
            "# Links are signed and shown; nothing answers at this address locally.",
            "[unsubscribe]",
            'base_url = "https://unsubscribe.example.com/"',
            f'key = "env:{UNSUBSCRIBE_KEY_ENV}"',
            "",
        ]
        for name in self.channels:
            parts.append(f"[channels.{name}]")
            parts.append(f'kind = "{name}"')
            if name == "email":
                parts.append("fallback_send_rate = 14.0")
            else:
                parts.append(f"max_send_rate = {float(self.send_rate)}")
            if name == "sms":
                parts.append('origination_identity = "Notifier"')
            elif name == "webhook":
                assert self.receiver is not None
                url = self.receiver.url
                if self.fault_proxy is not None:
                    url = self.fault_proxy.webhooks_to(url)
                parts.append(f'url = "{url}"')
                parts.append('allowed_hosts = ["127.0.0.1"]')
                parts.append(f'secret = "env:{SECRET_ENV}"')
            parts.append("")
        for name in self.channels:
            parts += [
                "[[routes]]",
                f"event_types = {_EVENT_TYPES}",
                'event_names = ["INSERT"]',
                f'channel = "{name}"',
                'dedup_key = "event_id"',
                "",
            ]
        return "\n".join(parts)

    def decorate(self, item: dict[str, Any]) -> dict[str, Any]:
        """Give the event's user a phone number and devices (as the app would store them)."""
        user = item.get("user")
        if not isinstance(user, dict):
            return item
        uid = int(user.get("id", 0))
        phone = phone_of(uid)
        if phone is not None and "sms" in self.channels:
            user["phone"] = phone
        if "push" in self.channels:
            user["devices"] = list(self.devices.get(uid, []))
        return item

    def landed(self, emails: int | None) -> dict[str, int | None]:
        """Messages that reached each channel's provider (None: cannot be counted here)."""
        out: dict[str, int | None] = {}
        for name in self.channels:
            if name == "email":
                out[name] = emails
            elif name == "sms":
                out[name] = _sns_counts(self.embedded)[0]
            elif name == "push":
                out[name] = _sns_counts(self.embedded)[1]
            elif name == "webhook":
                out[name] = int(self.receiver.stats()["accepted"]) if self.receiver else None
        return out

    def webhook_stats(self) -> Mapping[str, Any] | None:
        return None if self.receiver is None else self.receiver.stats()


def _create_endpoints(region: str, users: int) -> dict[int, list[str]]:
    """An Android application and an iOS one in SNS, and the users' device endpoints."""
    from notifier.local.provision import aws_client

    sns = aws_client("sns", region=region)
    android = sns.create_platform_application(
        Name="notifier-demo-android",
        Platform="GCM",
        Attributes={"PlatformCredential": "demo-fcm-key"},
    )["PlatformApplicationArn"]
    ios = sns.create_platform_application(
        Name="notifier-demo-ios",
        Platform="APNS",
        Attributes={"PlatformCredential": "demo-key", "PlatformPrincipal": "demo-cert"},
    )["PlatformApplicationArn"]
    devices: dict[int, list[str]] = {}
    for uid in range(users):
        if uid % 4 == 3:
            continue  # no app installed
        arns = [
            sns.create_platform_endpoint(
                PlatformApplicationArn=android, Token=f"fcm-token-{uid:06d}"
            )["EndpointArn"]
        ]
        if uid % 3 == 0:
            arns.append(
                sns.create_platform_endpoint(PlatformApplicationArn=ios, Token=f"{uid:064x}")[
                    "EndpointArn"
                ]
            )
        devices[uid] = arns
    return devices


def _sns_counts(embedded: bool) -> tuple[int | None, int | None]:
    """(SMS messages, push messages) moto's SNS accepted, read from its backends in this
    process; (None, None) when moto does not run in this process."""
    if not embedded:
        return None, None
    try:
        from moto.sns.models import sns_backends
    except ImportError:
        return None, None
    sms = push = 0
    for account in list(sns_backends):
        for region in list(sns_backends[account]):
            backend = sns_backends[account][region]
            sms += len(backend.sms_messages)
            push += sum(len(ep.messages) for ep in backend.platform_endpoints.values())
    return sms, push
