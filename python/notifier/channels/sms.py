"""SMS to an E.164 number, through Amazon SNS ``Publish`` or AWS End User Messaging SMS.

The channel renders ``NAME/sms.txt`` (``template_variant = "sms"``, per locale like every
template), reads the number at ``user.phone`` unless a route names another path, and sends one
text per notification. Retries, deadline and concurrency come from
:class:`~notifier.channels.base.ConcurrentChannel`; this module decides three things.

**The text.** Surrounding whitespace is stripped (a template's final newline would cost a
septet). :func:`notifier.channels.gsm.sms_info` decides the encoding (GSM-7, or UCS-2 as soon
as one character is outside the GSM alphabet) and counts segments. A text needing more than
``max_segments`` is a PERMANENT failure ``SmsTooLong`` whose reason names the encoding, the
segment count and the characters that forced UCS-2: it is never truncated, since a cut-off
message with a dead link is worse than none, and a dead-lettered one can be redriven after the
template is fixed.

**The recipient.** :func:`normalize_phone`: ``+`` then 8 to 15 digits, the first non-zero
(E.164); spaces, dashes, dots and parentheses after the ``+`` are dropped (``+1 (415)
555-0123`` -> ``+14155550123``). No ``+`` (a national ``0151 ...`` or an ``0049 ...`` prefix)
is refused: the country cannot be guessed. Refused numbers are a permanent ``InvalidRecipient``
(the core's). A number never appears whole in a reason or log: :func:`mask_phone`
(``+14155550123`` -> ``+141***23``) and :func:`scrub_phones` mask it.

**The backend** (``backend`` in ``[channels.<name>]``):

- ``"sns"``: ``Publish(PhoneNumber=..., Message=...)`` with the message attributes
  ``AWS.SNS.SMS.SMSType`` (``Transactional``/``Promotional``) and, from
  ``origination_identity``, ``AWS.MM.SMS.OriginationNumber`` (an E.164 number) or
  ``AWS.SNS.SMS.SenderID`` (an alphanumeric sender ID of 1-11 characters). Client:
  :func:`notifier.channels.sns_common.sns_client`. Verdicts: :func:`classify_sns_sms`.
- ``"end_user_messaging"``: ``pinpoint-sms-voice-v2`` ``SendTextMessage`` with
  ``DestinationPhoneNumber``, ``MessageBody``, ``MessageType``, ``OriginationIdentity`` (a
  number, sender ID, pool or their ARN), ``ConfigurationSetName`` and ``Context``
  (``notifier_key`` = the ledger key, so delivery events can be matched to the ledger). The
  client is ``ctx.clients["pinpoint-sms-voice-v2"]`` or an aiobotocore client making one
  attempt per call. Verdicts: :func:`classify_end_user_messaging`.

**The rate.** SMS throughput is quoted per origination number in message parts per second, far
below email, so the channel has its own token bucket of ``max_send_rate`` (default 1/s; the
deployment's ``NOTIFIER_MAX_SEND_RATE`` is for email and does not apply) and a message of *n*
segments takes *n* tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from notifier.channels.base import (
    ConcurrentChannel,
    Message,
    Outcome,
    SendResult,
    client_error_code,
    scrub,
)
from notifier.channels.gsm import SmsInfo, sms_info
from notifier.channels.sns_common import classify_sns_exception, sns_client
from notifier.retry import Deadline, TokenBucket

__all__ = [
    "EUM_SERVICE",
    "SmsChannel",
    "SmsOptions",
    "build_sms_channel",
    "classify_end_user_messaging",
    "classify_sns_sms",
    "mask_phone",
    "normalize_phone",
    "scrub_phones",
]

#: The botocore service name of AWS End User Messaging SMS (and ``ctx.clients`` key).
EUM_SERVICE = "pinpoint-sms-voice-v2"
#: The most segments ``max_segments`` may allow (1,600 characters, the services' limit).
MAX_SEGMENTS_LIMIT = 10

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_SEPARATORS = re.compile(r"[\s().-]")
#: An alphanumeric sender ID: 1-11 letters, digits or hyphens, at least one letter.
_SENDER_ID = re.compile(r"(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9-]{1,11}")
#: OriginationIdentity / ConfigurationSetName as the service model allows them.
_EUM_IDENTITY = re.compile(r"[A-Za-z0-9_:/+-]{1,256}")
_EUM_CONFIG_SET = re.compile(r"[A-Za-z0-9_:/-]{1,256}")
#: A run of 7 or more digits, maybe after "+" and with single separators: a phone number in
#: a provider's error text.
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\d(?:[ ().-]{0,2}\d){6,}")


# --- phone numbers ----------------------------------------------------------------------------


def normalize_phone(value: object) -> str | None:
    """``value`` as an E.164 number (``+14155550123``), or ``None`` when it is not one.

    Accepts ``+`` followed by digits with spaces, dashes, dots or parentheses between them;
    after dropping those, 8 to 15 digits with a non-zero first digit."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text.startswith("+"):
        return None
    number = "+" + _SEPARATORS.sub("", text[1:])
    return number if _E164.fullmatch(number) else None


def mask_phone(number: object) -> str:
    """``+14155550123`` -> ``+141***23``: at most the first 3 and the last 2 digits, and never
    fewer than 4 digits hidden (``+43123456`` -> ``+43***56``)."""
    if not isinstance(number, str):
        return f"<{type(number).__name__}>"
    digits = re.sub(r"\D", "", number)
    plus = "+" if number.lstrip().startswith("+") else ""
    if len(digits) < 6:
        return plus + "***"
    head = digits[: min(3, len(digits) - 6)]
    return f"{plus}{head}***{digits[-2:]}"


def scrub_phones(text: str) -> str:
    """``text`` with every phone-number-like run of digits masked (:func:`mask_phone`) and every
    e-mail address masked (:func:`notifier.channels.base.scrub`)."""
    return scrub(_DIGIT_RUN.sub(lambda m: mask_phone(m.group(0)), text))


# --- options ----------------------------------------------------------------------------------


class SmsOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[channels.<name>]`` options of kind ``sms``."""

    kind: str = "sms"
    backend: Literal["sns", "end_user_messaging"] = "sns"
    #: SNS: an E.164 origination number or an alphanumeric sender ID; End User Messaging: a
    #: number, sender ID, pool ID or ARN. Empty: the service's default.
    origination_identity: str = ""
    message_type: Literal["TRANSACTIONAL", "PROMOTIONAL"] = "TRANSACTIONAL"
    #: A text needing more segments is a permanent ``SmsTooLong`` failure.
    max_segments: int = 3
    #: Message parts per second (the origination number's throughput).
    max_send_rate: float = 1.0
    #: End User Messaging only: ``ConfigurationSetName`` (event destinations).
    configuration_set: str = ""


def _config_error(name: str, exc: msgspec.ValidationError) -> Exception:
    from notifier.config import ConfigError

    text = str(exc)
    at = re.search(r" - at `\$\.([^`]+)`$", text)
    if at:
        return ConfigError(f"channels.{name}.{at.group(1)}: {text[: at.start()]}")
    unknown = re.search(r"unknown field `([^`]+)`", text)
    if unknown:
        return ConfigError(f"channels.{name}.{unknown.group(1)}: unknown option")
    return ConfigError(f"channels.{name}: {text}")


def parse_options(name: str, options: Mapping[str, Any]) -> SmsOptions:
    """Validate a ``[channels.<name>]`` table; ``ConfigError`` names the offending key."""
    from notifier.config import ConfigError

    try:
        opts = msgspec.convert(dict(options), type=SmsOptions, strict=True)
    except msgspec.ValidationError as exc:
        raise _config_error(name, exc) from exc
    where = f"channels.{name}"
    if not 1 <= opts.max_segments <= MAX_SEGMENTS_LIMIT:
        raise ConfigError(
            f"{where}.max_segments: must be 1 to {MAX_SEGMENTS_LIMIT}, got {opts.max_segments}"
        )
    if not opts.max_send_rate > 0:
        raise ConfigError(f"{where}.max_send_rate: must be positive, got {opts.max_send_rate}")
    ident = opts.origination_identity
    if opts.backend == "sns":
        if ident and not (_E164.fullmatch(ident) or _SENDER_ID.fullmatch(ident)):
            raise ConfigError(
                f"{where}.origination_identity: SNS takes an E.164 number (+14155550123) or a "
                f"sender ID of 1-11 letters, digits or hyphens, got {ident!r}"
            )
        if opts.configuration_set:
            raise ConfigError(f'{where}.configuration_set: only for backend = "end_user_messaging"')
    else:
        if ident and not _EUM_IDENTITY.fullmatch(ident):
            raise ConfigError(
                f"{where}.origination_identity: not a number, sender ID, pool ID or ARN: {ident!r}"
            )
        if opts.configuration_set and not _EUM_CONFIG_SET.fullmatch(opts.configuration_set):
            raise ConfigError(
                f"{where}.configuration_set: not a configuration set name or ARN: "
                f"{opts.configuration_set!r}"
            )
    return opts


# --- verdicts ---------------------------------------------------------------------------------

#: SNS codes that are the message's fault when the error text names the number or the text.
_SNS_INVALID = frozenset({"InvalidParameter", "ParameterValueInvalid", "ValidationException"})
_NAMES_MESSAGE = re.compile(
    r"phone\s*number|E\.?164|message too long|Invalid parameter: Message\b", re.IGNORECASE
)
#: The SMS sandbox (unverified destination) is the account's setup, not the message's fault.
_SANDBOX = re.compile(r"sandbox|not verified|verified destination", re.IGNORECASE)


def classify_sns_sms(exc: BaseException) -> SendResult:
    """The verdict on an exception from SNS ``Publish`` to a phone number.

    PERMANENT: ``OptedOut``; ``InvalidParameter``/``ParameterValueInvalid``/
    ``ValidationException`` whose text names the phone number or the message (``Invalid
    parameter: PhoneNumber Reason: ... is not valid to publish to``), except the SMS sandbox's
    unverified destination (an account fault). Everything else as
    :func:`~notifier.channels.sns_common.classify_sns_exception` (so an invalid sender ID or
    attribute, a config fault, is an account fault, never dead-lettered)."""
    code, _ = client_error_code(exc)
    text = str(exc)
    permanent = {"OptedOut"}
    if code in _SNS_INVALID and _NAMES_MESSAGE.search(text) and not _SANDBOX.search(text):
        permanent.add(code)
    return classify_sns_exception(exc, permanent=permanent, mask=scrub_phones)


#: End User Messaging ``ConflictException`` reasons that concern this destination only.
EUM_PERMANENT_CONFLICTS = frozenset(
    {
        "DESTINATION_PHONE_NUMBER_OPTED_OUT",
        "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION",
        "DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE",
    }
)
#: ``ValidationException`` reasons that concern this destination or this text only. A country
#: the origination identity cannot reach is dead-lettered rather than made an account fault:
#: an account fault pauses the whole channel, and one such recipient must not stop the others.
EUM_PERMANENT_VALIDATIONS = frozenset(
    {
        "DESTINATION_COUNTRY_BLOCKED",
        "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY",
        "INTERNATIONAL_SENDING_NOT_SUPPORTED",
        "PRICE_OVER_THRESHOLD",
        "MAXIMUM_SIZE_EXCEEDED",
    }
)
#: ``ValidationException`` fields that are this message's (its number or its text).
_EUM_MESSAGE_FIELDS = frozenset({"DestinationPhoneNumber", "MessageBody"})


def _mask_with(prefix: str | None) -> Any:
    if not prefix:
        return scrub_phones
    return lambda text: f"{prefix}: {scrub_phones(text)}"


def classify_end_user_messaging(exc: BaseException) -> SendResult:
    """The verdict on an exception from End User Messaging ``SendTextMessage``.

    PERMANENT: ``ConflictException`` for an opted-out or blocked destination
    (:data:`EUM_PERMANENT_CONFLICTS`); ``ValidationException`` with a destination/text reason
    (:data:`EUM_PERMANENT_VALIDATIONS`) or naming the ``DestinationPhoneNumber`` or
    ``MessageBody`` field. Everything else as ``classify_sns_exception``: ``ThrottlingException``
    and ``InternalServerException`` (5xx) transient; ``AccessDeniedException`` (account disabled,
    reputation), ``ServiceQuotaExceededException`` (spend limit), ``ResourceNotFoundException``
    (origination identity or configuration set), ``ConflictException`` for the setup
    (unverified destination in the sandbox, a paused number) and any other 4xx: account faults.
    The service's ``Reason`` starts the reason text."""
    code, _ = client_error_code(exc)
    response: Any = getattr(exc, "response", None)
    response = response if isinstance(response, dict) else {}
    reason_code = response.get("Reason")
    reason_code = str(reason_code) if reason_code else None
    fields = {str(f.get("Name")) for f in response.get("Fields") or () if isinstance(f, dict)}
    own = False
    if code == "ConflictException":
        own = reason_code in EUM_PERMANENT_CONFLICTS
    elif code == "ValidationException":
        own = reason_code in EUM_PERMANENT_VALIDATIONS or bool(fields & _EUM_MESSAGE_FIELDS)
        own = own or "DestinationPhoneNumber" in str(exc)
    permanent = {code} if own and code else set()
    return classify_sns_exception(exc, permanent=permanent, mask=_mask_with(reason_code))


# --- the channel ------------------------------------------------------------------------------


@dataclass
class SmsChannel(ConcurrentChannel):
    """One SMS per notification through the configured backend."""

    #: SNS client (``publish``) or End User Messaging client (``send_text_message``).
    client: Any = None
    options: SmsOptions = field(default_factory=SmsOptions)
    required_parts: frozenset[str] = frozenset({"text"})
    template_variant: str | None = "sms"
    recipient_path: str | None = "user.phone"
    _static: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        opts = self.options
        ident = opts.origination_identity
        if opts.backend == "sns":
            attrs = {"AWS.SNS.SMS.SMSType": _string(opts.message_type.capitalize())}
            if ident and _E164.fullmatch(ident):
                attrs["AWS.MM.SMS.OriginationNumber"] = _string(ident)
            elif ident:
                attrs["AWS.SNS.SMS.SenderID"] = _string(ident)
            self._static = {"MessageAttributes": attrs}
        else:
            static: dict[str, Any] = {"MessageType": opts.message_type}
            if ident:
                static["OriginationIdentity"] = ident
            if opts.configuration_set:
                static["ConfigurationSetName"] = opts.configuration_set
            self._static = static

    def validate_recipient(self, recipient: object) -> str | None:
        return normalize_phone(recipient)

    @staticmethod
    def text_of(message: Message) -> str:
        """The text that is sent: the rendered ``sms.txt`` without surrounding whitespace."""
        rendered = message.rendered
        return rendered.text.strip() if rendered is not None else ""

    def build_request(self, message: Message, text: str) -> dict[str, Any]:
        """The backend call's keyword arguments for ``message`` (``publish`` for SNS,
        ``send_text_message`` for End User Messaging)."""
        if self.options.backend == "sns":
            return {"PhoneNumber": message.recipient, "Message": text, **self._static}
        return {
            "DestinationPhoneNumber": message.recipient,
            "MessageBody": text,
            **self._static,
            "Context": {"notifier_key": message.key[:800]},
        }

    def too_long(self, info: SmsInfo) -> SendResult | None:
        """The ``SmsTooLong`` failure when ``info`` exceeds ``max_segments``, else ``None``."""
        limit = self.options.max_segments
        if info.segments <= limit:
            return None
        why = ""
        if info.non_gsm:
            why = " (UCS-2 because of " + ", ".join(repr(c) for c in info.non_gsm) + ")"
        return SendResult(
            Outcome.PERMANENT,
            code="SmsTooLong",
            reason=f"the text needs {info.describe()}{why}; max_segments is {limit}; "
            "not sent (never truncated)",
        )

    async def send(self, msg: Message, deadline: Deadline, *, reserved: bool = False) -> SendResult:
        # Throughput is per message part: a message of n segments takes n - 1 more tokens
        # before its first attempt (retries take one each, as for any channel).
        info = sms_info(self.text_of(msg))
        # A text over max_segments fails in send_one without a send: no extra slots for it.
        extra = info.segments - 1 if info.segments <= self.options.max_segments else 0
        for _ in range(extra):
            if self.rate_limiter is not None and not await self.rate_limiter.acquire(deadline):
                return SendResult(
                    Outcome.TRANSIENT,
                    code="DeadlineReached",
                    reason=f"no send slot for {info.segments} segments before the deadline",
                    attempts=0,
                )
        return await ConcurrentChannel.send(self, msg, deadline, reserved=reserved)

    async def send_one(self, message: Message) -> SendResult:
        if self.client is None:
            raise RuntimeError("SmsChannel has no client")
        text = self.text_of(message)
        if not text:
            return SendResult(
                Outcome.PERMANENT, code="EmptySms", reason="the rendered sms.txt is empty"
            )
        failure = self.too_long(sms_info(text))
        if failure is not None:
            return failure
        request = self.build_request(message, text)
        try:
            if self.options.backend == "sns":
                response = await self.client.publish(**request)
            else:
                response = await self.client.send_text_message(**request)
        except Exception as exc:
            if self.options.backend == "sns":
                return classify_sns_sms(exc)
            return classify_end_user_messaging(exc)
        return SendResult(Outcome.SENT, message_id=str(response.get("MessageId", "")))


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


async def eum_client(ctx: Any) -> Any:
    """The End User Messaging SMS client: ``ctx.clients["pinpoint-sms-voice-v2"]``, or an
    aiobotocore client in the handler's exit stack making one attempt per call (retries are the
    channel's, under the deadline)."""
    client = ctx.clients.get(EUM_SERVICE)
    if client is not None:
        return client
    from aiobotocore.config import AioConfig

    config = AioConfig(
        retries={"total_max_attempts": 1},
        max_pool_connections=max(10, ctx.concurrency),
        connect_timeout=3,
        read_timeout=10,
    )
    return await ctx.stack.enter_async_context(
        ctx.session.create_client(EUM_SERVICE, config=config, **ctx.client_kwargs)
    )


async def build_sms_channel(ctx: Any) -> SmsChannel:
    """Registry factory for kind ``sms`` (``ctx`` is a ``ChannelContext``)."""
    options = parse_options(ctx.name, ctx.options)
    if options.backend == "sns":
        client = await sns_client(ctx)
    else:
        client = await eum_client(ctx)
    return SmsChannel(
        name=ctx.name,
        concurrency=ctx.concurrency,
        backoff=ctx.backoff,
        rate_limiter=TokenBucket(options.max_send_rate),
        unknown_outcome=ctx.unknown_outcome,
        client=client,
        options=options,
    )
