"""SES event publishing ingested into the ledger: delivery status, reconcile, suppression.

A configuration set with an event destination makes SES publish one JSON record per email
event. This module parses those records from the three envelopes a deployment can use, and
applies each to the ledger item of its notification (found through the ``notifier-key`` tag
the email channel sends) and to the recipient's preferences.

Record fields used (AWS, "Contents of event data that Amazon SES publishes to Amazon SNS",
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html, and
the examples page ``event-publishing-retrieving-sns-examples.html``):

- ``eventType``: ``Send``, ``Delivery``, ``Bounce``, ``Complaint``, ``Reject``,
  ``DeliveryDelay``, ``Rendering Failure`` (with a space in SNS records; the EventDestination
  API and the SES monitoring guide spell it ``RenderingFailure``: both are accepted and stored
  as ``RenderingFailure``), ``Open``, ``Click``, ``Subscription`` (the last three are ignored).
  Identity feedback notifications call it ``notificationType`` (accepted; they carry no tags).
- ``mail``: ``messageId`` (the id SendEmail returned), ``timestamp`` (ISO 8601, when the
  message was sent), ``destination``, ``tags`` (``{name: [values]}``: a configuration set
  publishes the message's tags with every event type).
- ``bounce``: ``bounceType`` (``Permanent`` / ``Transient`` / ``Undetermined``),
  ``bounceSubType``, ``bouncedRecipients[].emailAddress``, ``timestamp``.
- ``complaint``: ``complainedRecipients[].emailAddress``, ``complaintFeedbackType``
  (optional: present only when the feedback report says), ``timestamp``.
- ``delivery`` / ``deliveryDelay`` / ``reject`` / ``failure``: their ``timestamp`` when present.

Envelopes (:func:`parse_batch`):

- SNS: the Lambda SNS event, ``Records[].Sns.Message`` is the record as a JSON string.
- EventBridge: ``source`` ``aws.ses``, ``detail-type`` ``Email Sent`` / ``Email Delivered`` /
  ``Email Bounced`` / ``Email Complaint Received`` / ``Email Rejected`` / ``Email Delivery
  Delayed`` / ``Email Rendering Failed`` / ... (EventBridge reference, "Amazon Simple Email
  Service events"); ``detail`` is the SES record (its ``eventType``, or when absent the one the
  detail-type names).
- SQS: ``Records[].body`` holds either of the above as SQS delivers them: an SNS notification
  (``Type`` ``Notification``, ``Message``), an EventBridge event, or the bare record (SNS raw
  message delivery). The handler returns partial batch failures (``batchItemFailures``) for
  transient errors only. A malformed record is logged, counted and dropped as poison: it can
  never succeed, so returning it would only loop it until the queue's redrive gives up.

Ledger (:class:`SesEventProcessor`): one conditional ``UpdateItem`` per event in the common
case (1 write unit: ledger items stay under 1 KB), never creating an item
(``attribute_exists(pk)``; an event for an expired or unknown key is counted and ignored):

- ``delivery`` = the event type, ``delivery_at`` = the event's time (epoch seconds),
  ``bounce_type`` / ``complaint_type`` when the event carries them. Statuses are ranked and a
  weaker one never overwrites a stronger one (events arrive out of order and twice)::

      Send (1) < DeliveryDelay (2) < Delivery (3) < Bounce = Reject = RenderingFailure (4)
        < Complaint (5)

  Equal ranks: the later arrival wins. A delay followed by a delivery shows ``Delivery``; a
  late delay notice never hides a delivery; a bounce or complaint that follows a delivery wins.
- Reconcile: when the item is ``UNKNOWN`` (or still ``SENDING``), any event of the message is
  evidence that SES accepted the send (only an accepted send has a ``messageId`` and events),
  so the same request sets ``state`` = ``SENT``, ``message_id`` = ``mail.messageId`` and
  ``outcome`` = ``"reconciled"``. The contract names the Send event; the others prove the
  same and may arrive first.

Each request's condition states exactly what it assumes: the first assumes the common case
(a settled item, ``NOT state IN (UNKNOWN, SENDING)``, and a weaker or absent ``delivery``). If
DynamoDB refuses it (``ConditionalCheckFailedException`` with the item,
``ReturnValuesOnConditionCheckFailure=ALL_OLD``), the next request is planned from the item as
it is: reconcile (the state is UNKNOWN/SENDING), skip the status (a stronger one is there), or
stop (missing item, or nothing to change). A reconcile therefore costs 2 write units (the
refused request is 1) and a stale event 1; races repeat at most ``max_conflicts`` times.

Preferences: a ``Permanent`` bounce suppresses each bounced address of the ``notifier-user``
tag's user (reason ``"bounce"``); a complaint suppresses each complaining address (reason
``"complaint"``) and opts the user out of the ``notifier-category`` tag's category on
``email``. Transient and undetermined bounces suppress nothing (SES only publishes a transient
bounce after its own retries; a soft failure says nothing permanent about the address). These
need the user tag only, not the ledger item (a complaint may arrive after the item expired).
Every write is idempotent (``SET`` of the same values, ``ADD`` to sets), so a redelivered event
changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from notifier.channels.base import mask_address
from notifier.ledger import _RETRYABLE, SENDING, SENT, UNKNOWN, _error_code, _is_transport
from notifier.retry import Backoff, Deadline

__all__ = [
    "CATEGORY_TAG",
    "KEY_TAG",
    "STATUS_RANK",
    "USER_TAG",
    "ApplyResult",
    "BatchReport",
    "EventRecord",
    "PreferencesWriter",
    "SesEvent",
    "SesEventError",
    "SesEventProcessor",
    "SesEventsHandler",
    "SesEventsRetryError",
    "TransientEventError",
    "build_ses_events_handler",
    "decode_tag",
    "encode_tag",
    "lambda_handler",
    "parse_batch",
    "parse_ses_event",
]

log = logging.getLogger("notifier.ses_events")

#: SES tag names the email channel sends (values encoded with :func:`encode_tag`).
KEY_TAG = "notifier-key"
USER_TAG = "notifier-user"
CATEGORY_TAG = "notifier-category"
#: SES allows at most 256 characters in a tag value.
MAX_TAG_VALUE = 256
_TAG_VALUE = re.compile(r"[A-Za-z0-9_-]*")

#: Delivery statuses by strength: a weaker status never overwrites a stronger one.
STATUS_RANK: Mapping[str, int] = {
    "Send": 1,
    "DeliveryDelay": 2,
    "Delivery": 3,
    "Bounce": 4,
    "Reject": 4,
    "RenderingFailure": 4,
    "Complaint": 5,
}
#: Event types whose status is written on the ledger item by default. Send and Delivery come
#: for nearly every email: writing them would cost a write unit per event (doubling the
#: ledger's cost), so by default they only settle a parked unknown send, after a read (a read
#: unit costs a fifth of a write unit). ``record_statuses`` (env
#: ``NOTIFIER_SES_EVENTS_RECORD=all``) writes every status.
DEFAULT_RECORDED = frozenset({"DeliveryDelay", "Bounce", "Reject", "RenderingFailure", "Complaint"})
#: Event types published by SES that say nothing about the ledger or the address.
IGNORED_TYPES = frozenset({"Open", "Click", "Subscription"})
_TYPE_ALIASES = {"Rendering Failure": "RenderingFailure"}
#: EventBridge ``detail-type`` -> eventType (used when ``detail`` has no eventType).
DETAIL_TYPES: Mapping[str, str] = {
    "Email Sent": "Send",
    "Email Delivered": "Delivery",
    "Email Bounced": "Bounce",
    "Email Complaint Received": "Complaint",
    "Email Rejected": "Reject",
    "Email Delivery Delayed": "DeliveryDelay",
    "Email Rendering Failed": "RenderingFailure",
    "Email Opened": "Open",
    "Email Clicked": "Click",
    "Email Subscribed": "Subscription",
}
#: The event object of each type (its ``timestamp`` is the event's time).
_DETAIL_KEY = {
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Delivery": "delivery",
    "DeliveryDelay": "deliveryDelay",
    "Reject": "reject",
    "RenderingFailure": "failure",
}
_MAX_TEXT = 200


# -- tags ------------------------------------------------------------------------------------


def encode_tag(text: str) -> str:
    """``text`` as an SES tag value: base64url of its UTF-8 bytes, without padding.

    SES tag values allow only ``A-Z a-z 0-9 _ -`` and at most 256 characters, so any text of
    at most 192 UTF-8 bytes fits. Raises ``ValueError`` for longer text.
    """
    raw = text.encode("utf-8", "surrogatepass")
    value = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if len(value) > MAX_TAG_VALUE:
        raise ValueError(
            f"a tag value holds at most 192 UTF-8 bytes; this text has {len(raw)} bytes"
        )
    return value


def decode_tag(value: str) -> str:
    """The text :func:`encode_tag` encoded into ``value``; ``ValueError`` for anything else
    (characters outside base64url, a length no encoding produces, non-canonical trailing
    bits, bytes that are not UTF-8)."""
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
        raise ValueError("not a notifier tag value")
    if not _TAG_VALUE.fullmatch(value) or len(value) % 4 == 1:
        raise ValueError("not a notifier tag value")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        text = raw.decode("utf-8", "surrogatepass")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("not a notifier tag value") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != value:
        raise ValueError("not a notifier tag value")  # stray bits in the last character
    return text


# -- records ---------------------------------------------------------------------------------


class SesEventError(ValueError):
    """A record that is not an SES event this module understands (malformed: never retried)."""


class TransientEventError(RuntimeError):
    """An event could not be applied now (DynamoDB or the preferences store failed, or the
    deadline passed); applying it again later is safe."""


class SesEventsRetryError(RuntimeError):
    """Raised by the handler for an SNS or EventBridge invocation with transient failures, so
    Lambda retries the (idempotent) invocation; SQS batches report ``batchItemFailures``."""


@dataclass(frozen=True, slots=True)
class SesEvent:
    """One SES event record, the parts notifier uses."""

    event_type: str
    message_id: str
    #: ``mail.timestamp`` (when the message was sent) and the event object's ``timestamp``.
    mail_timestamp: str | None = None
    event_timestamp: str | None = None
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bounce_type: str | None = None
    bounce_subtype: str | None = None
    bounced: tuple[str, ...] = ()
    complaint_type: str | None = None
    complained: tuple[str, ...] = ()

    def tag(self, name: str) -> str | None:
        """The first value of tag ``name`` as sent (still encoded), or None."""
        values = self.tags.get(name)
        return values[0] if values else None


def _text(obj: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise SesEventError(f"{where}.{key} is missing")
        return None
    if not isinstance(value, str) or (required and not value):
        raise SesEventError(f"{where}.{key} is not a string")
    return value[:_MAX_TEXT] if key != "messageId" else value


def _addresses(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = obj.get(key, [])
    if not isinstance(items, list):
        raise SesEventError(f"{where}.{key} is not a list")
    out: list[str] = []
    for item in items:
        address = item.get("emailAddress") if isinstance(item, dict) else None
        if not isinstance(address, str) or not address:
            raise SesEventError(f"{where}.{key}[].emailAddress is not a string")
        out.append(address)
    return tuple(out)


def _tags(mail: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    raw = mail.get("tags", {})
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SesEventError("mail.tags is not an object")
    tags: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise SesEventError("mail.tags values are not lists of strings")
        tags[str(name)] = tuple(values)
    return tags


def parse_ses_event(record: Any, *, default_type: str | None = None) -> SesEvent:
    """An :class:`SesEvent` from one decoded SES record (``SesEventError`` when malformed).

    ``default_type``: the event type to assume when the record names none (EventBridge's
    ``detail-type``)."""
    if not isinstance(record, dict):
        raise SesEventError("the SES record is not an object")
    raw_type = record.get("eventType", record.get("notificationType", default_type))
    if not isinstance(raw_type, str) or not raw_type:
        raise SesEventError("eventType is missing")
    event_type = _TYPE_ALIASES.get(raw_type, raw_type)
    mail = record.get("mail")
    if not isinstance(mail, dict):
        raise SesEventError("mail is missing")
    message_id = _text(mail, "messageId", "mail", required=True)
    assert message_id is not None
    fields: dict[str, Any] = {
        "event_type": event_type,
        "message_id": message_id,
        "mail_timestamp": _text(mail, "timestamp", "mail"),
        "tags": _tags(mail),
    }
    detail_key = _DETAIL_KEY.get(event_type)
    detail = record.get(detail_key) if detail_key else None
    if detail_key in ("bounce", "complaint") and not isinstance(detail, dict):
        raise SesEventError(f"{detail_key} is missing")
    if isinstance(detail, dict):
        fields["event_timestamp"] = _text(detail, "timestamp", str(detail_key))
    elif detail is not None:
        raise SesEventError(f"{detail_key} is not an object")
    if event_type == "Bounce":
        assert isinstance(detail, dict)
        fields["bounce_type"] = _text(detail, "bounceType", "bounce", required=True)
        fields["bounce_subtype"] = _text(detail, "bounceSubType", "bounce")
        fields["bounced"] = _addresses(detail, "bouncedRecipients", "bounce")
    elif event_type == "Complaint":
        assert isinstance(detail, dict)
        fields["complaint_type"] = _text(detail, "complaintFeedbackType", "complaint")
        fields["complained"] = _addresses(detail, "complainedRecipients", "complaint")
    return SesEvent(**fields)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One record of a batch: its event, or why it could not be read."""

    #: "sns", "eventbridge" or "sqs" (the outer envelope).
    envelope: str
    #: The SQS ``messageId`` (the ``batchItemFailures`` identifier); None otherwise.
    item_id: str | None
    event: SesEvent | None = None
    error: SesEventError | None = None


def _loads(text: Any, what: str) -> Any:
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        raise SesEventError(f"{what} is not a JSON string")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SesEventError(f"{what} is not JSON") from exc


def _from_eventbridge(obj: Mapping[str, Any]) -> SesEvent:
    source = obj.get("source")
    if source is not None and source != "aws.ses":
        raise SesEventError("an EventBridge event from another source")
    detail_type = obj.get("detail-type")
    default = DETAIL_TYPES.get(detail_type) if isinstance(detail_type, str) else None
    return parse_ses_event(obj.get("detail"), default_type=default)


def _from_body(obj: Any) -> SesEvent:
    """The SES event inside whatever an SQS body or an SNS message holds."""
    if not isinstance(obj, dict):
        raise SesEventError("the message is not a JSON object")
    if obj.get("Type") == "Notification" and "Message" in obj:
        return parse_ses_event(_loads(obj["Message"], "the SNS Message"))
    if "detail-type" in obj or ("detail" in obj and "source" in obj):
        return _from_eventbridge(obj)
    return parse_ses_event(obj)


def _sqs_event(body: Any) -> SesEvent:
    return _from_body(_loads(body, "the SQS body"))


def _sns_event(message: Any) -> SesEvent:
    return parse_ses_event(_loads(message, "the SNS Message"))


def _record(envelope: str, item_id: str | None, read: Callable[[], SesEvent]) -> EventRecord:
    try:
        return EventRecord(envelope, item_id, event=read())
    except SesEventError as exc:
        return EventRecord(envelope, item_id, error=exc)


def parse_batch(event: Any) -> tuple[str, list[EventRecord]]:
    """``(envelope, records)`` of a Lambda event: ``"sns"``, ``"sqs"`` or ``"eventbridge"``.

    Never raises for a malformed record (it comes back with ``error`` set); an event that is
    none of the three envelopes raises ``SesEventError``."""
    if isinstance(event, bytes | bytearray | str):
        event = _loads(event, "the event")
    if not isinstance(event, dict):
        raise SesEventError("the event is not a JSON object")
    records = event.get("Records")
    if isinstance(records, list):
        out: list[EventRecord] = []
        kinds = set()
        for rec in records:
            if not isinstance(rec, dict):
                out.append(EventRecord("unknown", None, error=SesEventError("not a record")))
                continue
            if rec.get("eventSource") == "aws:sqs" or "body" in rec:
                kinds.add("sqs")
                item_id = rec.get("messageId")
                out.append(
                    _record(
                        "sqs",
                        item_id if isinstance(item_id, str) else None,
                        partial(_sqs_event, rec.get("body")),
                    )
                )
            elif isinstance(rec.get("Sns"), dict):
                kinds.add("sns")
                out.append(_record("sns", None, partial(_sns_event, rec["Sns"].get("Message"))))
            else:
                out.append(EventRecord("unknown", None, error=SesEventError("unknown record")))
        kind = "sqs" if "sqs" in kinds else ("sns" if "sns" in kinds else "unknown")
        return kind, out
    if "detail" in event and ("detail-type" in event or "source" in event):
        return "eventbridge", [_record("eventbridge", None, partial(_from_eventbridge, event))]
    raise SesEventError("not an SNS, SQS or EventBridge event")


# -- applying events -------------------------------------------------------------------------


class PreferencesWriter(Protocol):
    """What the processor needs of ``notifier.preferences.PreferencesStore``."""

    async def suppress(self, user_id: str, address: str, reason: str) -> Any: ...

    async def opt_out(self, user_id: str, category: str, channel: str = "*") -> Any: ...


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What :meth:`SesEventProcessor.apply` did with one event.

    ``ledger``: ``"updated"`` (status written), ``"reconciled"`` (UNKNOWN/SENDING -> SENT),
    ``"stale"`` (a stronger status is there: nothing written), ``"missing"`` (no ledger item:
    expired or never ours), ``"untagged"`` (no usable key tag), ``"rejected"`` (DynamoDB
    refused the request as invalid: dropped), ``"ignored"`` (Open, Click, ... or an unknown
    type)."""

    ledger: str
    write_units: int = 0
    suppressed: int = 0
    opted_out: int = 0


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class SesEventProcessor:
    """Applies SES events to the ledger table and the preferences store.

    ``ledger_client``: any client with the low-level ``update_item`` (``notifier.aws.
    DynamoDBClient`` or aiobotocore). ``preferences``: a :class:`PreferencesWriter`.
    ``stats`` counts outcomes (``updated``, ``reconciled``, ``stale``, ``missing``,
    ``untagged``, ``ignored``, ``bad_tag``, ``suppressed``, ``opted_out``); ``write_units``
    counts the ledger's (DynamoDB's rule: each UpdateItem of an item under 1 KB, refused or
    not, is 1 unit) and ``reported_write_units`` what DynamoDB's ``ConsumedCapacity`` said.
    """

    def __init__(
        self,
        ledger_client: Any,
        ledger_table: str,
        preferences: PreferencesWriter | None,
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        call_timeout_s: float = 5.0,
        max_conflicts: int = 4,
        record_statuses: frozenset[str] = DEFAULT_RECORDED,
    ) -> None:
        #: Event types whose status is written (see :data:`DEFAULT_RECORDED`).
        self.record_statuses = record_statuses
        self.read_units = 0.0
        self.client = ledger_client
        self.table = ledger_table
        self.preferences = preferences
        self.clock = clock
        self.backoff = backoff or Backoff(max_attempts=6, base_s=0.02, cap_s=1.0)
        self.call_timeout_s = call_timeout_s
        self.max_conflicts = max_conflicts
        self.stats: Counter[str] = Counter()
        self.write_units = 0
        self.reported_write_units = 0.0

    # -- one event

    async def apply(self, event: SesEvent, deadline: Deadline | None = None) -> ApplyResult:
        """Apply one event; raises :class:`TransientEventError` when it should be retried."""
        deadline = deadline or Deadline.after(30.0)
        if event.event_type not in STATUS_RANK:
            self.stats["ignored"] += 1
            return ApplyResult("ignored")
        key = self._tag(event, KEY_TAG)
        if key:
            ledger, units = await self._update_ledger(key, event, deadline)
        else:
            ledger, units = "untagged", 0
        self.stats[ledger] += 1
        suppressed, opted_out = await self._update_preferences(event)
        return ApplyResult(ledger, units, suppressed, opted_out)

    def _tag(self, event: SesEvent, name: str) -> str | None:
        value = event.tag(name)
        if value is None:
            return None
        try:
            text = decode_tag(value)
        except ValueError:
            self.stats["bad_tag"] += 1
            log.warning(
                "an SES event with an unreadable %s tag; message_id=%s",
                name,
                event.message_id[:_MAX_TEXT],
            )
            return None
        return text or None

    # -- the ledger

    async def _update_ledger(
        self, key: str, event: SesEvent, deadline: Deadline
    ) -> tuple[str, int]:
        rank = STATUS_RANK[event.event_type]
        weaker = sorted(s for s, r in STATUS_RANK.items() if r <= rank)
        if event.event_type not in self.record_statuses:
            return await self._settle_only(key, event, weaker, deadline)
        # The common case first: a settled item whose status is weaker or absent.
        reconcile, set_status = False, True
        units = 0
        conflicts = 0
        attempt = 0
        while True:
            params = self._request(key, event, weaker, reconcile=reconcile, status=set_status)
            units += 1
            self.write_units += 1
            try:
                resp = await self._call(params, deadline)
            except Exception as exc:
                code = "Timeout" if isinstance(exc, TimeoutError) else _error_code(exc)
                if code == "ConditionalCheckFailedException":
                    response = getattr(exc, "response", {}) or {}
                    self._reported(response.get("ConsumedCapacity"))
                    item = response.get("Item")
                    if not isinstance(item, dict) or not item:
                        return "missing", units
                    state = item.get("state", {}).get("S")
                    current = item.get("delivery", {}).get("S")
                    reconcile = state in (UNKNOWN, SENDING)
                    set_status = current is None or STATUS_RANK.get(current, 0) <= rank
                    if not reconcile and not set_status:
                        return "stale", units
                    conflicts += 1
                    if conflicts <= self.max_conflicts:
                        continue
                    raise TransientEventError("the ledger item kept changing") from None
                if code == "ValidationException":
                    # DynamoDB refuses this request for what it is: retrying cannot help.
                    log.error("the ledger refused an SES event update: %s", code)
                    return "rejected", units
                attempt += 1
                # A timeout or a lost answer may hide a done update: repeating it is safe.
                retryable = code in _RETRYABLE or code == "Timeout" or _is_transport(exc)
                if retryable and await self.backoff.wait(attempt, deadline):
                    continue
                raise TransientEventError(f"ledger update failed: {code}") from None
            self._reported(resp.get("ConsumedCapacity"))
            return ("reconciled" if reconcile else "updated"), units

    async def _settle_only(
        self, key: str, event: SesEvent, weaker: Sequence[str], deadline: Deadline
    ) -> tuple[str, int]:
        """A Send or Delivery event not recorded as a status: read the item (one read unit)
        and write only if it is a parked or in-flight send it proves (``reconciled``)."""
        try:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise TimeoutError("Deadline")
            async with asyncio.timeout(min(remaining, self.call_timeout_s)):
                resp = await self.client.get_item(
                    TableName=self.table,
                    Key={"pk": {"S": key}},
                    ConsistentRead=True,
                    ProjectionExpression="#s",
                    ExpressionAttributeNames={"#s": "state"},
                )
        except Exception as exc:
            code = "Timeout" if isinstance(exc, TimeoutError) else _error_code(exc)
            raise TransientEventError(f"ledger read failed: {code}") from None
        self.read_units += 1.0
        item = resp.get("Item")
        if not item:
            return "missing", 0
        if item.get("state", {}).get("S") not in (UNKNOWN, SENDING):
            return "settled", 0
        params = self._request(key, event, weaker, reconcile=True, status=None)
        self.write_units += 1
        try:
            await self._call(params, deadline)
        except Exception as exc:
            code = "Timeout" if isinstance(exc, TimeoutError) else _error_code(exc)
            if code == "ConditionalCheckFailedException":
                return "settled", 1  # settled meanwhile (its own commit or another event)
            raise TransientEventError(f"ledger update failed: {code}") from None
        return "reconciled", 1

    def _request(
        self,
        key: str,
        event: SesEvent,
        weaker: Sequence[str],
        *,
        reconcile: bool,
        status: bool | None,
    ) -> dict[str, Any]:
        """The UpdateItem for one event; ``status``: set the delivery status (True), leave
        it only if it is stronger (False), or neither set nor test it (None)."""
        names = {"#s": "state"}
        values: dict[str, Any] = {":unknown": {"S": UNKNOWN}, ":sending": {"S": SENDING}}
        in_flight = "#s IN (:unknown, :sending)"
        conditions = ["attribute_exists(pk)", in_flight if reconcile else f"NOT ({in_flight})"]
        sets: list[str] = []
        names["#d"] = "delivery"
        placeholders = []
        for i, name in enumerate(weaker):
            values[f":w{i}"] = {"S": name}
            placeholders.append(f":w{i}")
        may_set = f"(attribute_not_exists(#d) OR #d IN ({', '.join(placeholders)}))"
        if status is not None:
            conditions.append(may_set if status else f"NOT {may_set}")
        else:
            names.pop("#d")
            for p in placeholders:
                values.pop(p)
        if status:
            at = _epoch(event.event_timestamp) or _epoch(event.mail_timestamp) or self.clock()
            values[":ev"] = {"S": event.event_type}
            values[":at"] = {"N": f"{at:.3f}"}
            sets += ["#d = :ev", "delivery_at = :at"]
            if event.bounce_type:
                values[":bt"] = {"S": event.bounce_type}
                sets.append("bounce_type = :bt")
            if event.complaint_type:
                values[":ct"] = {"S": event.complaint_type}
                sets.append("complaint_type = :ct")
        if reconcile:
            names["#o"] = "outcome"
            values[":sent"] = {"S": SENT}
            values[":mid"] = {"S": event.message_id[:_MAX_TEXT]}
            values[":reconciled"] = {"S": "reconciled"}
            sets += ["#s = :sent", "message_id = :mid", "#o = :reconciled"]
        return {
            "TableName": self.table,
            "Key": {"pk": {"S": key}},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
        }

    async def _call(self, params: dict[str, Any], deadline: Deadline) -> Any:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError("Deadline")
        async with asyncio.timeout(min(remaining, self.call_timeout_s)):
            return await self.client.update_item(**params)

    def _reported(self, consumed: Any) -> None:
        if isinstance(consumed, dict):
            units = consumed.get("CapacityUnits")
            if isinstance(units, int | float):
                self.reported_write_units += float(units)

    # -- preferences

    async def _update_preferences(self, event: SesEvent) -> tuple[int, int]:
        permanent = event.event_type == "Bounce" and event.bounce_type == "Permanent"
        complaint = event.event_type == "Complaint"
        if not (permanent or complaint):
            return 0, 0
        addresses = event.bounced if permanent else event.complained
        user = self._tag(event, USER_TAG)
        if not user or not addresses:
            self.stats["unattributed"] += 1
            log.warning(
                "a %s for %s without a user tag: not suppressed by notifier",
                event.event_type,
                ", ".join(mask_address(a) for a in addresses[:5]) or "no address",
            )
            return 0, 0
        if self.preferences is None:
            raise TransientEventError("no preferences store")
        reason = "bounce" if permanent else "complaint"
        suppressed = opted_out = 0
        try:
            for address in dict.fromkeys(addresses):
                await self.preferences.suppress(user, address, reason)
                suppressed += 1
                log.info("suppressed %s after a %s", mask_address(address), reason)
            category = self._tag(event, CATEGORY_TAG) if complaint else None
            if category:
                await self.preferences.opt_out(user, category, "email")
                opted_out += 1
        except Exception as exc:
            raise TransientEventError(
                f"the preferences store failed: {type(exc).__name__}"
            ) from None
        finally:
            self.stats["suppressed"] += suppressed
            self.stats["opted_out"] += opted_out
        return suppressed, opted_out

    # -- a batch

    async def run(
        self, lambda_event: Any, deadline: Deadline, *, concurrency: int = 16
    ) -> BatchReport:
        """Parse and apply a whole Lambda event; never raises for a bad record."""
        try:
            envelope, records = parse_batch(lambda_event)
        except SesEventError as exc:
            self.stats["malformed"] += 1
            log.error("dropped an event that is no SES event envelope: %s", exc)
            return BatchReport("unknown", malformed=1)
        report = BatchReport(envelope)
        slots = asyncio.Semaphore(max(1, concurrency))

        async def one(record: EventRecord) -> None:
            if record.error is not None or record.event is None:
                self.stats["malformed"] += 1
                report.malformed += 1
                log.warning(
                    "dropped a malformed SES event record (poison: it can never succeed): %s",
                    record.error,
                )
                return
            async with slots:
                try:
                    result = await self.apply(record.event, deadline)
                except TransientEventError as exc:
                    self.stats["transient"] += 1
                    report.transient += 1
                    if record.item_id is not None:
                        report.failures.append(record.item_id)
                    log.warning("an SES event will be retried: %s", exc)
                    return
            report.applied += 1
            report.write_units += result.write_units
            report.outcomes[result.ledger] += 1
            report.suppressed += result.suppressed
            report.opted_out += result.opted_out

        await asyncio.gather(*(one(r) for r in records))
        return report


@dataclass
class BatchReport:
    """One Lambda event's outcome."""

    envelope: str
    applied: int = 0
    malformed: int = 0
    transient: int = 0
    write_units: int = 0
    #: addresses suppressed and users opted out (permanent bounces, complaints)
    suppressed: int = 0
    opted_out: int = 0
    #: SQS messageIds to report as ``batchItemFailures``.
    failures: list[str] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)

    def response(self) -> dict[str, list[dict[str, str]]]:
        """The Lambda answer: partial batch failures (SQS); raises :class:`SesEventsRetryError`
        for an SNS or EventBridge invocation with transient failures (Lambda retries it)."""
        if self.transient and self.envelope != "sqs":
            raise SesEventsRetryError(
                f"{self.transient} SES event(s) could not be applied; retry the invocation"
            )
        return {"batchItemFailures": [{"itemIdentifier": i} for i in self.failures]}

    def summary(self) -> dict[str, Any]:
        return {
            "ses_events": self.envelope,
            "applied": self.applied,
            "malformed": self.malformed,
            "transient": self.transient,
            "write_units": self.write_units,
            "suppressed": self.suppressed,
            "opted_out": self.opted_out,
            **dict(self.outcomes),
        }


# -- the Lambda entry point ------------------------------------------------------------------


class SesEventsHandler:
    """A ready SES events handler: one event loop and long-lived clients per process."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stack: AsyncExitStack,
        processor: SesEventProcessor,
        *,
        margin_ms: float = 500.0,
    ) -> None:
        self._loop = loop
        self._stack = stack
        self.processor = processor
        self.margin_ms = margin_ms
        self._closed = False

    def __call__(self, event: Any, context: Any = None) -> dict[str, list[dict[str, str]]]:
        deadline = Deadline.from_context(context, margin_ms=self.margin_ms, default_s=60.0)
        report = self._loop.run_until_complete(self.processor.run(event, deadline))
        log.info(json.dumps(report.summary(), separators=(",", ":")))
        return report.response()

    def run(self, awaitable: Any) -> Any:
        """Run ``awaitable`` on the handler's loop (for tools and tests)."""
        return self._loop.run_until_complete(awaitable)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run_until_complete(self._stack.aclose())
        finally:
            self._loop.close()

    def __enter__(self) -> SesEventsHandler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_ses_events_handler(
    *,
    environ: Mapping[str, str] | None = None,
    ledger_client: Any = None,
    preferences: PreferencesWriter | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    clock: Callable[[], float] = time.time,
) -> SesEventsHandler:
    """Build the handler once: clients opened, tables named from the environment.

    ``NOTIFIER_LEDGER_TABLE`` (default ``notifier-ledger``), ``NOTIFIER_PREFERENCES_TABLE``
    (default ``notifier-preferences``), ``AWS_REGION``; endpoints as botocore resolves them.
    ``ledger_client`` / ``preferences`` inject ready objects (tests); otherwise one
    ``notifier.aws.DynamoDBClient`` serves the ledger and a ``notifier.preferences.
    PreferencesStore`` on the preferences table.
    """
    env = os.environ if environ is None else environ
    loop = loop or asyncio.new_event_loop()
    stack = AsyncExitStack()
    ledger_table = env.get("NOTIFIER_LEDGER_TABLE") or "notifier-ledger"
    prefs_table = env.get("NOTIFIER_PREFERENCES_TABLE") or "notifier-preferences"
    record = (env.get("NOTIFIER_SES_EVENTS_RECORD") or "").strip().lower()
    if record not in ("", "all", "default"):
        raise ValueError(f"NOTIFIER_SES_EVENTS_RECORD must be all or default, got {record!r}")
    recorded = frozenset(STATUS_RANK) if record == "all" else DEFAULT_RECORDED
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"

    async def build() -> SesEventProcessor:
        client = ledger_client
        if client is None:
            from notifier.aws import DynamoDBClient

            fast = DynamoDBClient(region_name=region, connect_timeout=2.0, read_timeout=5.0)
            stack.push_async_callback(fast.close)
            client = fast
        prefs = preferences
        if prefs is None:
            import importlib

            module: Any = importlib.import_module("notifier.preferences")
            prefs = module.PreferencesStore(client, prefs_table, clock=clock)
        return SesEventProcessor(client, ledger_table, prefs, clock=clock, record_statuses=recorded)

    try:
        processor = loop.run_until_complete(build())
    except BaseException:
        loop.run_until_complete(stack.aclose())
        loop.close()
        raise
    return SesEventsHandler(loop, stack, processor)


_default: SesEventsHandler | None = None


def lambda_handler(event: Any, context: Any) -> dict[str, list[dict[str, str]]]:
    """The Lambda entry point (``notifier.ses_events.lambda_handler``)."""
    global _default
    if _default is None:
        _default = build_ses_events_handler()
    return _default(event, context)
