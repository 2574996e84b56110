"""Mobile push through Amazon SNS platform endpoints (APNs, APNs sandbox, FCM).

One notification per device: the route's recipient path (``user.devices`` by default) holds a
list, the core fans it out (``fan_out = True``: one ledger key per device), and each device is
published to on its own with ``sns.publish(TargetArn=<endpoint ARN>, MessageStructure="json")``.
A device is an SNS endpoint ARN (``arn:aws:sns:<region>:<acct>:endpoint/<PLATFORM>/<app>/<id>``)
or an object ``{"endpoint_arn": "...", "platform": "GCM"}``; the platform is read from the ARN
(``platform``, when given, must agree; case-insensitive, ``FCM`` is read as ``GCM``). Anything
else, or a platform not in ``platforms``, is an unusable recipient: a permanent failure of that
device only.

The content comes from the ``NAME/push.json`` template (``template_variant = "push"``), rendered
with JSON autoescaping into ``rendered.text`` and parsed here with msgspec into
:class:`PushContent` (``title``, ``body``, optional ``data``, ``badge``, ``sound``). A rendering
that is not JSON, lacks a title or body, has an unknown key, uses a reserved data key, or makes
a platform payload over 4 KiB is a permanent ``PushTemplateInvalid`` / ``PushPayloadTooLarge``
failure, explained, never truncated.

The SNS envelope holds ``"default"`` (the body) and the one platform key of the target endpoint,
whose value is that platform's payload as a JSON *string*:

- ``APNS`` / ``APNS_SANDBOX``: ``{"aps": {"alert": {"title", "body"}, "badge"?, "sound"?},
  "notification_id": ..., <data keys>}`` (``push_type = "background"``:
  ``{"aps": {"content-available": 1}, ...}`` with title and body moved into the data).
- ``GCM`` (FCM HTTP v1 through SNS): ``{"fcmV1Message": {"message": {"notification": {"title",
  "body"}, "data": {<string values>}, "android": {"priority", "ttl": "<n>s", "collapse_key"?,
  "notification": {"sound"?, "tag"?, "channel_id"?, "notification_count"?}}, "apns": {...}?}}}``.
  The shape is the one in the AWS SNS developer guide, "Using Google Firebase Cloud Messaging v1
  payloads in Amazon SNS" (https://docs.aws.amazon.com/sns/latest/dg/sns-fcm-v1-payloads.html:
  the top-level key ``fcmV1Message`` opts in to FCM v1; ``message`` carries ``notification``,
  ``data``, ``android`` with ``priority``/``ttl``/``notification``, as in the FCM v1
  ``projects.messages`` resource), and "Publishing Amazon SNS notifications with
  platform-specific payloads" (sns-send-custom-platform-specific-payloads-mobile-devices.html:
  the ``GCM`` value is a string of JSON). FCM ``data`` values must be strings: other JSON values
  are sent JSON-encoded (``16`` -> ``"16"``).

Deduplication on the device: every payload carries ``notification_id`` (the ledger key without
the ``#<endpoint ARN>`` suffix, so a user's devices share it and a redelivered duplicate is
recognisable). Per ``collapse`` the same id (or the event type) is the APNs collapse id (SNS
reserved message attribute ``AWS.SNS.MOBILE.APNS.COLLAPSE_ID``, with ``...APNS.PRIORITY``,
``...APNS.PUSH_TYPE``, ``...APNS.TOPIC``; SNS developer guide, "Amazon SNS message attributes",
reserved attributes for mobile push) and the FCM ``android.collapse_key`` /
``android.notification.tag`` / ``apns-collapse-id`` header, so a second delivery replaces the
first on screen. The time to live is sent as the SNS TTL attribute of the platform
(``AWS.SNS.MOBILE.APNS.TTL``, ``AWS.SNS.MOBILE.APNS_SANDBOX.TTL``, ``AWS.SNS.MOBILE.FCM.TTL``;
"Using the Amazon SNS time to live message attribute for mobile push notifications") and, for
FCM, as ``android.ttl`` too.

Verdicts (:func:`~notifier.channels.sns_common.classify_sns_exception`, Publish's errors in
botocore's SNS model): ``EndpointDisabled`` (the platform rejected the token: app uninstalled),
``NotFound`` (no such endpoint), ``InvalidParameter``, ``ParameterValueInvalid`` and
``ValidationException`` (the request itself: a malformed ARN, a payload SNS refuses) are
permanent for that device only. ``PlatformApplicationDisabled`` (the app's APNs/FCM credentials)
and the KMS, authorization and credential faults are account faults; throttling and 5xx are
transient; a request that left without an answer is unknown.

No endpoint ARN or device token is ever put in a reason in full: :func:`mask_endpoint` keeps the
platform and application and only the first four characters of the endpoint id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec

from notifier.channels.base import ConcurrentChannel, Message, Outcome, SendResult, scrub
from notifier.channels.sns_common import classify_sns_exception, sns_client

__all__ = [
    "PERMANENT_CODES",
    "ApnsOptions",
    "FcmOptions",
    "PublishClient",
    "PushChannel",
    "PushContent",
    "PushContentError",
    "PushOptions",
    "build_push_channel",
    "endpoint_platform",
    "mask_endpoint",
    "mask_push",
]

Platform = Literal["APNS", "APNS_SANDBOX", "GCM"]
#: Platforms this channel builds payloads for (SNS platform names as they appear in ARNs).
PLATFORMS: tuple[Platform, ...] = ("APNS", "APNS_SANDBOX", "GCM")
#: What a device object's ``platform`` may say for an ARN's platform (case-insensitive).
_PLATFORM_ALIASES = {"FCM": "GCM"}
#: Publish errors that are this device's (or this message's) own fault.
PERMANENT_CODES = frozenset(
    {
        "EndpointDisabled",
        "NotFound",
        "InvalidParameter",
        "ParameterValueInvalid",
        "ValidationException",
    }
)
#: APNs and FCM both refuse a payload over 4 KiB.
MAX_PAYLOAD_BYTES = 4096
#: apns-collapse-id is at most 64 bytes.
MAX_COLLAPSE_ID_BYTES = 64
#: FCM's longest time to live: 28 days.
MAX_TTL_SECONDS = 28 * 24 * 3600
#: Longest recipient (endpoint ARN) accepted: it becomes part of the ledger key.
MAX_ARN_LENGTH = 256

_ENDPOINT_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:endpoint/"
    r"(?P<platform>[A-Z_]+)/(?P<app>[A-Za-z0-9._-]{1,256})/(?P<id>[0-9A-Za-z-]{8,64})"
)
_ARN_IN_TEXT = re.compile(
    r"(arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:endpoint/[A-Z_]+/[A-Za-z0-9._-]+/)([0-9A-Za-z-]+)"
)
#: A device token in free text (APNs: 64 hex; FCM: long URL-safe base64 with ``:``).
_TOKEN_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_:/-])(?!arn:)[A-Za-z0-9_:-]{40,}")
#: FCM refuses these data keys (and any starting with ``google`` or ``gcm``); APNs owns ``aps``.
_RESERVED_DATA_KEYS = frozenset({"aps", "from", "notification", "message_type", "collapse_key"})
_RESERVED_DATA_PREFIXES = ("google", "gcm")


class PublishClient(Protocol):
    async def publish(self, **kwargs: Any) -> Mapping[str, Any]: ...


class PushContentError(ValueError):
    """The rendered ``push.json`` cannot be sent (``code`` is the SendResult code)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class ApnsOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[channels.<name>.apns]``: APNs and APNs sandbox endpoints."""

    #: ``10`` = deliver now, ``5`` = power-considerate (required for ``background``).
    priority: Literal[5, 10] = 10
    #: ``alert`` shows title and body; ``background`` wakes the app with the data only.
    push_type: Literal["alert", "background"] = "alert"
    #: The app's bundle id (``apns-topic``); empty: SNS uses the platform application's.
    topic: str = ""


class FcmOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[channels.<name>.fcm]``: FCM (``GCM`` platform applications, FCM HTTP v1)."""

    priority: Literal["high", "normal"] = "high"
    #: The Android notification channel id; empty: the app's default channel.
    channel_id: str = ""


class PushOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[channels.<name>]`` options of kind ``push``."""

    kind: str = "push"
    #: Platforms accepted; an endpoint of any other is an unusable recipient.
    platforms: list[Platform] = msgspec.field(default_factory=lambda: list(PLATFORMS))
    #: How long APNs/FCM keep trying an offline device (0: now or never; at most 28 days).
    ttl_seconds: int = 86400
    #: What a repeated notification replaces on the device: ``notification`` (the same
    #: notification, i.e. a redelivered duplicate), ``event_type`` (the latest of its type),
    #: or ``none``.
    collapse: Literal["notification", "event_type", "none"] = "notification"
    #: Sound when the template names none (``"default"`` = the system sound; empty: silent).
    default_sound: str = "default"
    #: Publishes per second.
    max_send_rate: float = 100.0
    apns: ApnsOptions = msgspec.field(default_factory=ApnsOptions)
    fcm: FcmOptions = msgspec.field(default_factory=FcmOptions)


class PushContent(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What a ``push.json`` template renders to."""

    title: str
    body: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    badge: int | None = None
    sound: str | None = None


_content_decoder = msgspec.json.Decoder(PushContent)
_encoder = msgspec.json.Encoder()


def _dumps(value: Any) -> str:
    return _encoder.encode(value).decode()


def endpoint_platform(arn: str) -> str | None:
    """``"APNS"``, ``"APNS_SANDBOX"``, ``"GCM"``... of an endpoint ARN; ``None`` if not one."""
    m = _ENDPOINT_ARN.fullmatch(arn)
    return m.group("platform") if m else None


def mask_endpoint(arn: object) -> str:
    """``arn:...:endpoint/GCM/app/e4bfed55-...`` -> ``arn:...:endpoint/GCM/app/e4bf***``."""
    if not isinstance(arn, str):
        return f"<{type(arn).__name__}>"
    masked = _ARN_IN_TEXT.sub(lambda m: m.group(1) + m.group(2)[:4] + "***", arn)
    return masked if masked != arn else "***"


def mask_push(text: str) -> str:
    """``text`` with endpoint ids, device tokens and email addresses masked."""
    text = _ARN_IN_TEXT.sub(lambda m: m.group(1) + m.group(2)[:4] + "***", text)
    text = _TOKEN_IN_TEXT.sub(lambda m: m.group(0)[:4] + "***", text)
    return scrub(text)


def _fcm_string(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)


def parse_content(text: str) -> PushContent:
    """The rendered ``push.json`` as :class:`PushContent`; :class:`PushContentError` if unusable."""
    try:
        content = _content_decoder.decode(text)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise PushContentError("PushTemplateInvalid", f"push.json: {exc}") from None
    if not content.title.strip() or not content.body.strip():
        raise PushContentError("PushTemplateInvalid", "push.json: title and body must not be empty")
    for key in content.data:
        if key in _RESERVED_DATA_KEYS or key.lower().startswith(_RESERVED_DATA_PREFIXES):
            raise PushContentError(
                "PushTemplateInvalid", f"push.json: data key {key!r} is reserved"
            )
    if content.badge is not None and content.badge < 0:
        raise PushContentError("PushTemplateInvalid", "push.json: badge must not be negative")
    return content


def notification_id(message: Message) -> str:
    """The ledger key without its ``#<recipient>`` fan-out suffix: shared by a user's devices."""
    suffix = "#" + message.recipient
    key = message.key
    return key[: -len(suffix)] if key.endswith(suffix) and len(key) > len(suffix) else key


def _short_id(value: str) -> str:
    if len(value.encode()) <= MAX_COLLAPSE_ID_BYTES:
        return value
    return hashlib.sha256(value.encode()).hexdigest()[:MAX_COLLAPSE_ID_BYTES]


def _string_attr(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


@dataclass
class PushChannel(ConcurrentChannel):
    """Push to SNS platform endpoints; one publish per device (see the module docstring)."""

    client: PublishClient | None = None
    options: PushOptions = field(default_factory=PushOptions)
    required_parts: frozenset[str] = frozenset({"text"})
    template_variant: str | None = "push"
    recipient_path: str | None = "user.devices"
    fan_out: bool = True

    def validate_recipient(self, recipient: object) -> str | None:
        platform_hint: object = None
        if isinstance(recipient, Mapping):
            platform_hint = recipient.get("platform")
            recipient = recipient.get("endpoint_arn")
        if not isinstance(recipient, str) or len(recipient) > MAX_ARN_LENGTH:
            return None
        platform = endpoint_platform(recipient)
        if platform is None or platform not in self.options.platforms:
            return None
        if platform_hint is not None:
            hint = str(platform_hint).upper()
            if _PLATFORM_ALIASES.get(hint, hint) != platform:
                return None  # the event contradicts the ARN: trust neither
        return recipient

    # -- payloads ---------------------------------------------------------------------------

    def _collapse_id(self, message: Message, nid: str) -> str | None:
        mode = self.options.collapse
        if mode == "none":
            return None
        if mode == "event_type" and message.event_type:
            return _short_id(message.event_type)
        return _short_id(nid)

    def _sound(self, content: PushContent) -> str | None:
        sound = content.sound if content.sound is not None else self.options.default_sound
        return sound or None

    def apns_payload(self, content: PushContent, nid: str) -> dict[str, Any]:
        aps: dict[str, Any]
        extra: dict[str, Any] = {}
        if self.options.apns.push_type == "background":
            aps = {"content-available": 1}
            extra = {"title": content.title, "body": content.body}
        else:
            aps = {"alert": {"title": content.title, "body": content.body}}
            sound = self._sound(content)
            if sound:
                aps["sound"] = sound
        if content.badge is not None:
            aps["badge"] = content.badge
        return {"aps": aps, **extra, **content.data, "notification_id": nid}

    def fcm_payload(
        self, content: PushContent, nid: str, collapse_id: str | None
    ) -> dict[str, Any]:
        data = {k: _fcm_string(v) for k, v in content.data.items()}
        data["notification_id"] = nid
        android_notification: dict[str, Any] = {}
        sound = self._sound(content)
        if sound:
            android_notification["sound"] = sound
        if self.options.fcm.channel_id:
            android_notification["channel_id"] = self.options.fcm.channel_id
        if content.badge is not None:
            android_notification["notification_count"] = content.badge
        android: dict[str, Any] = {
            "priority": self.options.fcm.priority,
            "ttl": f"{self.options.ttl_seconds}s",
        }
        if collapse_id is not None:
            android["collapse_key"] = collapse_id
            android_notification["tag"] = collapse_id
        if android_notification:
            android["notification"] = android_notification
        message: dict[str, Any] = {
            "notification": {"title": content.title, "body": content.body},
            "data": data,
            "android": android,
        }
        # The same app on iOS through FCM: collapse and badge/sound go in the apns block.
        apns_headers: dict[str, str] = {}
        if collapse_id is not None:
            apns_headers["apns-collapse-id"] = collapse_id
        aps: dict[str, Any] = {}
        if content.badge is not None:
            aps["badge"] = content.badge
        if sound:
            aps["sound"] = sound
        if apns_headers or aps:
            apns: dict[str, Any] = {}
            if apns_headers:
                apns["headers"] = apns_headers
            if aps:
                apns["payload"] = {"aps": aps}
            message["apns"] = apns
        return {"fcmV1Message": {"message": message}}

    def build_request(self, message: Message) -> dict[str, Any]:
        """The ``publish`` keyword arguments for ``message``; :class:`PushContentError` when the
        rendering cannot be sent."""
        if message.rendered is None:
            raise PushContentError("PushTemplateInvalid", "no push.json was rendered")
        platform = endpoint_platform(message.recipient)
        if platform is None:  # validate_recipient let it through: it cannot happen
            raise PushContentError("InvalidEndpoint", "not an SNS endpoint ARN")
        content = parse_content(message.rendered.text)
        nid = notification_id(message)
        collapse_id = self._collapse_id(message, nid)
        ttl = str(self.options.ttl_seconds)
        attributes: dict[str, dict[str, str]] = {}
        if platform == "GCM":
            payload = self.fcm_payload(content, nid, collapse_id)
            attributes["AWS.SNS.MOBILE.FCM.TTL"] = _string_attr(ttl)
        else:  # APNS, APNS_SANDBOX
            payload = self.apns_payload(content, nid)
            apns = self.options.apns
            attributes[f"AWS.SNS.MOBILE.{platform}.TTL"] = _string_attr(ttl)
            attributes["AWS.SNS.MOBILE.APNS.PUSH_TYPE"] = _string_attr(apns.push_type)
            attributes["AWS.SNS.MOBILE.APNS.PRIORITY"] = _string_attr(str(apns.priority))
            if apns.topic:
                attributes["AWS.SNS.MOBILE.APNS.TOPIC"] = _string_attr(apns.topic)
            if collapse_id is not None:
                attributes["AWS.SNS.MOBILE.APNS.COLLAPSE_ID"] = _string_attr(collapse_id)
        platform_payload = _dumps(payload)
        size = len(platform_payload.encode())
        if size > MAX_PAYLOAD_BYTES:
            raise PushContentError(
                "PushPayloadTooLarge",
                f"{platform} payload is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit",
            )
        envelope = {"default": content.body, platform: platform_payload}
        return {
            "TargetArn": message.recipient,
            "MessageStructure": "json",
            "Message": _dumps(envelope),
            "MessageAttributes": attributes,
        }

    async def send_one(self, message: Message) -> SendResult:
        try:
            request = self.build_request(message)
        except PushContentError as exc:
            return SendResult(Outcome.PERMANENT, code=exc.code, reason=mask_push(str(exc))[:300])
        if self.client is None:
            raise RuntimeError("PushChannel has no SNS client")
        try:
            response = await self.client.publish(**request)
        except Exception as exc:
            return classify_sns_exception(exc, permanent=PERMANENT_CODES, mask=mask_push)
        return SendResult(Outcome.SENT, message_id=str(response.get("MessageId", "")))


_AT_PATH = re.compile(r"\s*-\s*at `\$\.?([^`]*)`$")


def _config_error(name: str, exc: msgspec.ValidationError) -> str:
    """``channels.<name>.<key>: <problem>`` from a msgspec error (``... - at `$.apns.x```)."""
    text = str(exc)
    m = _AT_PATH.search(text)
    if m is None:
        return f"channels.{name}: {text}"
    path = re.sub(r"\[(\d+)\]", r".\1", m.group(1))
    where = f"channels.{name}.{path}" if path else f"channels.{name}"
    return f"{where}: {text[: m.start()]}"


async def build_push_channel(ctx: Any) -> PushChannel:
    """Registry factory for kind ``push`` (``ctx`` is a ``ChannelContext``)."""
    from notifier.config import ConfigError
    from notifier.retry import TokenBucket

    try:
        options = msgspec.convert(dict(ctx.options), type=PushOptions, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_config_error(ctx.name, exc)) from exc
    if not 0 <= options.ttl_seconds <= MAX_TTL_SECONDS:
        raise ConfigError(
            f"channels.{ctx.name}.ttl_seconds: must be 0..{MAX_TTL_SECONDS} (28 days), "
            f"not {options.ttl_seconds}"
        )
    if options.max_send_rate <= 0:
        raise ConfigError(f"channels.{ctx.name}.max_send_rate: must be positive")
    if not options.platforms:
        raise ConfigError(f"channels.{ctx.name}.platforms: name at least one platform")
    if options.apns.push_type == "background" and options.apns.priority != 5:
        raise ConfigError(
            f"channels.{ctx.name}.apns.priority: must be 5 for push_type = 'background' (APNs)"
        )
    client = await sns_client(ctx)
    rate = ctx.max_send_rate or options.max_send_rate
    return PushChannel(
        name=ctx.name,
        concurrency=ctx.concurrency,
        backoff=ctx.backoff,
        rate_limiter=TokenBucket(rate),
        unknown_outcome=ctx.unknown_outcome,
        client=client,
        options=options,
    )
