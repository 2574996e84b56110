"""Helpers for the SES events tests: the ledger table in moto, SES records as AWS documents
them, the three Lambda envelopes, and a preferences fake that records its calls."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3

from notifier.ses_events import CATEGORY_TAG, KEY_TAG, USER_TAG, encode_tag

LEDGER = "notifier-ledger"


def create_ledger() -> None:
    """The ledger table as tests/pipeline/conftest.py's ``provisioned`` creates it."""
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=LEDGER,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=LEDGER,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


def put_ledger_item(key: str, state: str, **attrs: str) -> None:
    """A ledger item in ``state`` with extra string attributes."""
    item: dict[str, Any] = {
        "pk": {"S": key},
        "state": {"S": state},
        "owner": {"S": "owner-1"},
        "expires_at": {"N": "4102444800"},
    }
    item.update({k: {"S": v} for k, v in attrs.items()})
    boto3.client("dynamodb").put_item(TableName=LEDGER, Item=item)


def ledger_item(key: str) -> dict[str, str] | None:
    resp = boto3.client("dynamodb").get_item(
        TableName=LEDGER, Key={"pk": {"S": key}}, ConsistentRead=True
    )
    item = resp.get("Item")
    return {k: next(iter(v.values())) for k, v in item.items()} if item else None


class FakePreferences:
    """Records ``suppress`` and ``opt_out`` calls; ``fail`` makes every call raise."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[Any, ...]] = []

    async def suppress(self, user_id: str, address: str, reason: str) -> None:
        if self.fail:
            raise RuntimeError("preferences table unavailable")
        self.calls.append(("suppress", user_id, address, reason))

    async def opt_out(self, user_id: str, category: str, channel: str = "*") -> None:
        if self.fail:
            raise RuntimeError("preferences table unavailable")
        self.calls.append(("opt_out", user_id, category, channel))


def ses_record(
    event_type: str,
    *,
    key: str | None = "email#n-1",
    user: str | None = "user-1",
    category: str | None = "friend_request",
    message_id: str = "0100017-msg-1",
    recipient: str = "alice@example.com",
    bounce_type: str = "Permanent",
    feedback_type: str | None = "abuse",
    raw_tags: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """An SES event publishing record shaped as AWS's examples ("Examples of event data that
    Amazon SES publishes to Amazon SNS"), tagged as the email channel tags its sends."""
    tags: dict[str, list[str]] = {"ses:configuration-set": ["notifier"]}
    for name, text in ((KEY_TAG, key), (USER_TAG, user), (CATEGORY_TAG, category)):
        if text is not None:
            tags[name] = [encode_tag(text)]
    tags.update(raw_tags or {})
    record: dict[str, Any] = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2024-05-01T10:00:00.000Z",
            "source": "notifications@example.com",
            "sendingAccountId": "123456789012",
            "messageId": message_id,
            "destination": [recipient],
            "headersTruncated": False,
            "tags": tags,
        },
    }
    at = "2024-05-01T10:00:01.500Z"
    if event_type == "Send":
        record["send"] = {}
    elif event_type == "Delivery":
        record["delivery"] = {"timestamp": at, "recipients": [recipient], "smtpResponse": "250"}
    elif event_type == "Bounce":
        record["bounce"] = {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": recipient, "action": "failed", "status": "5.1.1"}
            ],
            "timestamp": at,
            "feedbackId": "fb-1",
        }
    elif event_type == "Complaint":
        complaint: dict[str, Any] = {
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": at,
            "feedbackId": "fb-2",
        }
        if feedback_type:
            complaint["complaintFeedbackType"] = feedback_type
        record["complaint"] = complaint
    elif event_type == "DeliveryDelay":
        record["deliveryDelay"] = {
            "timestamp": at,
            "delayType": "MailboxFull",
            "expirationTime": "2024-05-02T10:00:00.000Z",
            "delayedRecipients": [{"emailAddress": recipient, "status": "4.2.2"}],
        }
    elif event_type == "Reject":
        record["reject"] = {"reason": "Bad content"}
    elif event_type in ("Rendering Failure", "RenderingFailure"):
        record["failure"] = {"errorMessage": "Attribute 'name' is not present", "templateName": "t"}
    return record


def sns_notification(record: dict[str, Any]) -> dict[str, Any]:
    """The SNS notification (as SNS posts it to HTTP, SQS, or a Lambda's ``Sns``) of a record."""
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Subject": None,
        "Message": json.dumps(record),
        "Timestamp": "2024-05-01T10:00:02.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/x.pem",
        "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        "MessageAttributes": {},
    }


def sns_event(*records: dict[str, Any]) -> dict[str, Any]:
    """A Lambda event from an SNS subscription (one record per notification)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:ses-events:sub",
                "Sns": sns_notification(r),
            }
            for r in records
        ]
    }


def eventbridge_event(record: dict[str, Any], detail_type: str = "Email Sent") -> dict[str, Any]:
    """An EventBridge event from SES's event destination (``detail`` = the SES record)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "123456789012",
        "time": "2024-05-01T10:00:02Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ses:us-east-1:123456789012:configuration-set/notifier"],
        "detail": record,
    }


def sqs_event(*bodies: str) -> dict[str, Any]:
    """A Lambda event from an SQS event source mapping; messageIds ``m-0``, ``m-1``, ..."""
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"rh-{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ses-events",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }
