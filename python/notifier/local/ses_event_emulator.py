"""An emulation of SES event publishing for the local harness (moto publishes no SES events).

Real SES, given a send through a configuration set with an event destination, publishes a
``Send`` event for every accepted send, then what the recipient's mail server did
(``Delivery``, ``Bounce``, ``Complaint``, ...). moto accepts sends and publishes nothing, so
locally nobody would ever hear of a bounce, a complaint or, above all, of a send whose reply
the fault proxy dropped. This module stands in for SES's side: the fault proxy hands it every
SES v2 ``SendEmail`` it forwarded to moto, with moto's answer, including the sends whose reply
it then drops (the request reached "SES", so SES would publish its events: the evidence the
``reconcile`` policy resolves an unknown outcome with).

What it publishes for an accepted send (HTTP 2xx with a ``MessageId``), in this order, per
AWS's mailbox simulator ("Using the mailbox simulator", SES Developer Guide; labels such as
``bounce+anything@simulator.amazonses.com`` behave as the bare address):

- ``Send``, always;
- ``bounce@simulator.amazonses.com``: ``Bounce``, ``Permanent`` / ``General``, status 5.1.1;
- ``suppressionlist@simulator.amazonses.com``: ``Bounce``, ``Permanent`` /
  ``OnAccountSuppressionList``;
- ``complaint@simulator.amazonses.com``: ``Delivery``, then ``Complaint`` (``abuse``);
- any other recipient (``success@``, ``ooto@`` and every real-looking address): ``Delivery``.

Nothing is published for a refused send (4xx/5xx: SES accepted nothing), a SendBulkEmail or
v1 request (notifier's email channel sends v2 ``SendEmail``; counted as ``unsupported``) or a
send outside ``configuration_sets`` when that filter is given (real SES publishes only for
sends through a configuration set with an event destination). What it does not emulate: the
delay (events are produced at once, in order; the real ones arrive seconds to hours later and
out of order), ``DeliveryDelay``, ``Reject``, ``Open``/``Click``, and SES's own suppression
list (a second send to a bounced address is accepted here).

Each event is the SES record as SNS and EventBridge carry it (``eventType``, ``mail`` with
``messageId``, ``timestamp``, ``source``, ``destination``, ``tags`` as ``{name: [values]}``,
and the event's own object), handed to ``sink``; :class:`SqsSink` posts each to an SQS queue
as SNS would deliver it (an SNS ``Notification`` envelope, raw delivery off), so the real
``notifier.ses_events`` handler consumes it from an SQS event source mapping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from notifier.channels.base import mask_address

__all__ = ["ACCOUNT_ID", "SIMULATOR_DOMAIN", "SesEventEmulator", "SqsSink", "simulated_outcome"]

log = logging.getLogger("notifier.local.ses_events")

SIMULATOR_DOMAIN = "simulator.amazonses.com"
#: moto's default account.
ACCOUNT_ID = "123456789012"
_TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:notifier-ses-events"

Sink = Callable[[dict[str, Any]], object]


def simulated_outcome(address: str) -> str:
    """``"bounce"``, ``"suppressed"``, ``"complaint"`` or ``"delivery"`` for ``address``, as
    SES's mailbox simulator treats it (``+label`` ignored, case-insensitive)."""
    local, _, domain = address.strip().lower().rpartition("@")
    if domain != SIMULATOR_DOMAIN:
        return "delivery"
    base = local.split("+", 1)[0]
    return {
        "bounce": "bounce",
        "suppressionlist": "suppressed",
        "complaint": "complaint",
    }.get(base, "delivery")


def _iso(epoch: float) -> str:
    """``2017-08-05T00:40:02.012Z`` (SES's timestamp format)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class SesEventEmulator:
    """Turns observed SES v2 sends into the events SES would publish, handed to ``sink``.

    Thread-safe (the fault proxy calls it from its own thread). ``counts`` tallies
    ``observed``, ``accepted``, ``refused``, ``unsupported``, ``malformed``, ``events``,
    ``sink_errors`` and one count per event type. ``configuration_sets``: when given, only
    sends naming one of them publish events (None: every accepted send does, as with an
    account default configuration set).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        clock: Callable[[], float] = time.time,
        configuration_sets: Collection[str] | None = None,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.configuration_sets = (
            frozenset(configuration_sets) if configuration_sets is not None else None
        )
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def observe_send(
        self, request_body: bytes, response_body: bytes | None, status: int
    ) -> list[dict[str, Any]]:
        """Publish the events of one forwarded ``SendEmail``: ``request_body`` as the client
        sent it, ``response_body``/``status`` as SES (moto) answered, whether or not the
        client got that answer. Returns the events. Never raises (it runs inside the proxy)."""
        self._count("observed")
        if not 200 <= status < 300:
            self._count("refused")
            return []
        try:
            request = json.loads(request_body)
        except ValueError:
            self._count("unsupported")  # a v1 (form-encoded) send
            return []
        if not isinstance(request, dict) or "Destination" not in request:
            self._count("unsupported")  # SendBulkEmail, or not a send at all
            return []
        message_id = self._message_id(response_body)
        if message_id is None:
            self._count("malformed")
            return []
        config_set = request.get("ConfigurationSetName")
        if self.configuration_sets is not None and config_set not in self.configuration_sets:
            return []
        self._count("accepted")
        events = self._events(request, message_id)
        for event in events:
            self._count("events")
            self._count(str(event["eventType"]))
            try:
                self.sink(event)
            except Exception as exc:  # the proxy must keep answering
                self._count("sink_errors")
                log.warning("the SES event sink failed: %s", type(exc).__name__)
        return events

    def _message_id(self, response_body: bytes | None) -> str | None:
        if response_body is None:
            # No answer to read (the caller could not keep it): SES assigned some id.
            return f"emulated-{uuid.uuid4()}"
        try:
            answer = json.loads(response_body)
        except ValueError:
            return None
        mid = answer.get("MessageId") if isinstance(answer, dict) else None
        return mid if isinstance(mid, str) and mid else None

    def _events(self, request: Mapping[str, Any], message_id: str) -> list[dict[str, Any]]:
        now = self.clock()
        destination = request.get("Destination")
        dest = destination if isinstance(destination, dict) else {}
        recipients = [
            *_strings(dest.get("ToAddresses")),
            *_strings(dest.get("CcAddresses")),
            *_strings(dest.get("BccAddresses")),
        ]
        source = request.get("FromEmailAddress")
        source = source if isinstance(source, str) else ""
        tags: dict[str, list[str]] = {}
        for tag in request.get("EmailTags") or []:
            if isinstance(tag, dict) and isinstance(tag.get("Name"), str):
                tags.setdefault(tag["Name"], []).append(str(tag.get("Value", "")))
        config_set = request.get("ConfigurationSetName")
        if isinstance(config_set, str):
            tags["ses:configuration-set"] = [config_set]
        domain = source.rpartition("@")[2].rstrip(">")
        tags["ses:from-domain"] = [domain]
        tags["ses:source-ip"] = ["127.0.0.1"]
        mail = {
            "timestamp": _iso(now),
            "source": source,
            "sourceArn": f"arn:aws:ses:us-east-1:{ACCOUNT_ID}:identity/{domain}",
            "sendingAccountId": ACCOUNT_ID,
            "messageId": message_id,
            "destination": recipients,
            "headersTruncated": False,
            "tags": tags,
        }
        events: list[dict[str, Any]] = [{"eventType": "Send", "mail": mail, "send": {}}]
        by_outcome: dict[str, list[str]] = {}
        for r in recipients:
            by_outcome.setdefault(simulated_outcome(r), []).append(r)
        at = _iso(now + 0.5)
        delivered = by_outcome.get("delivery", []) + by_outcome.get("complaint", [])
        if delivered:
            events.append(
                {
                    "eventType": "Delivery",
                    "mail": mail,
                    "delivery": {
                        "timestamp": at,
                        "processingTimeMillis": 500,
                        "recipients": delivered,
                        "smtpResponse": "250 2.6.0 Message received",
                        "reportingMTA": "a8-70.smtp-out.amazonses.com",
                    },
                }
            )
        for outcome, subtype in (("bounce", "General"), ("suppressed", "OnAccountSuppressionList")):
            bounced = by_outcome.get(outcome)
            if bounced:
                events.append(
                    {
                        "eventType": "Bounce",
                        "mail": mail,
                        "bounce": {
                            "bounceType": "Permanent",
                            "bounceSubType": subtype,
                            "bouncedRecipients": [
                                {
                                    "emailAddress": a,
                                    "action": "failed",
                                    "status": "5.1.1",
                                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                                }
                                for a in bounced
                            ],
                            "timestamp": at,
                            "feedbackId": f"emulated-{uuid.uuid4()}",
                            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
                        },
                    }
                )
        complained = by_outcome.get("complaint")
        if complained:
            events.append(
                {
                    "eventType": "Complaint",
                    "mail": mail,
                    "complaint": {
                        "complainedRecipients": [{"emailAddress": a} for a in complained],
                        "timestamp": _iso(now + 1.0),
                        "feedbackId": f"emulated-{uuid.uuid4()}",
                        "userAgent": "Amazon SES Mailbox Simulator",
                        "complaintFeedbackType": "abuse",
                        "arrivalDate": _iso(now + 1.0),
                    },
                }
            )
        if len(events) > 1 and any(simulated_outcome(r) != "delivery" for r in recipients):
            log.info(
                "emulated SES events %s for %s",
                [e["eventType"] for e in events],
                ", ".join(mask_address(r) for r in recipients[:3]),
            )
        return events


class SqsSink:
    """Posts each event to an SQS queue as SNS delivers a notification to a subscribed queue
    (``Type`` ``Notification``, the record as the ``Message`` string; raw delivery off).

    ``client``: a boto3 SQS client (synchronous: the fault proxy's thread may block on it).
    """

    def __init__(self, queue_url: str, client: Any, *, topic_arn: str = _TOPIC_ARN) -> None:
        self.queue_url = queue_url
        self.client = client
        self.topic_arn = topic_arn
        self.sent = 0

    def envelope(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The SNS notification carrying ``event`` (unsigned: the local harness checks none)."""
        return {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": self.topic_arn,
            "Message": json.dumps(event, separators=(",", ":")),
            "Timestamp": _iso(time.time()),
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertURL": "",
            "UnsubscribeURL": "",
        }

    def __call__(self, event: dict[str, Any]) -> None:
        body = json.dumps(self.envelope(event), separators=(",", ":"))
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)
        self.sent += 1
