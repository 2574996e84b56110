"""Preferences, suppressions and one-click unsubscribe, through the real handler and moto.

The loop a user sees: an email carries a signed one-click link (headers and body); the
unsubscribe endpoint records the opt-out; the next notification of that category is never
sent (SKIPPED in the ledger), while other categories still are.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from aiobotocore.awsrequest import AioAWSResponse
from pipeline_helpers import FakeContext, ledger_items

from notifier.handler import Handler, build_handler
from notifier.local.moto_server import sent_emails
from notifier.pipeline import BatchFailedError
from notifier.preferences import address_fingerprint
from notifier.samples import make_stream_record
from notifier.ses_events import KEY_TAG, decode_tag
from notifier.settings import Settings
from notifier.unsubscribe import UnsubscribeSettings, build_unsubscribe_handler

PREFS = "notifier-preferences"

CONFIG = """
[delivery]
base_delay_ms = 1
max_delay_ms = 20

[preferences]
enabled = true

[unsubscribe]
base_url = "https://unsubscribe.example.com/"
key = "env:TEST_UNSUBSCRIBE_KEY"
mailto = "mailto:unsubscribe@example.com"

[channels.email]
kind = "email"
max_send_rate = 1000

[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
channel = "email"
"""


@pytest.fixture
def prefs_table(provisioned: dict[str, str]) -> str:
    boto3.client("dynamodb").create_table(
        TableName=PREFS,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return PREFS


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = base64.b64encode(secrets.token_bytes(32)).decode()
    monkeypatch.setenv("TEST_UNSUBSCRIBE_KEY", value)
    return value


@pytest.fixture
def handler(
    provisioned: dict[str, str], prefs_table: str, key: str, tmp_path: Path
) -> Iterator[Handler]:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    h = build_handler(
        Settings(
            config_path=str(config),
            templates_dir=None,  # the built-in templates: they show the link
            failure_queue_url=provisioned["queue_url"],
            max_concurrency=8,
            aws_clients="aiobotocore",
            preferences_table=prefs_table,
        )
    )
    yield h
    h.close()


def _requests(handler: Handler) -> list[dict[str, Any]]:
    """Every SendEmail request body the handler's SES client sends (a botocore hook)."""
    seen: list[dict[str, Any]] = []

    def before_send(request: Any, **_: Any) -> AioAWSResponse | None:
        seen.append(json.loads(request.body))
        return None

    client = handler.channels["email"].client  # type: ignore[attr-defined]
    client.meta.events.register("before-send.sesv2.SendEmail", before_send)
    return seen


def _event(indices: list[int]) -> dict[str, Any]:
    records = []
    for i in indices:
        r = make_stream_record(i, seed=9, users=1000, event_name="INSERT")
        r["dynamodb"]["ApproximateCreationDateTime"] = int(time.time())
        records.append(r)
    return {"Records": records}


def _type(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["NewImage"]["event_type"]["S"])


def _user(record: dict[str, Any]) -> tuple[str, str]:
    user = record["dynamodb"]["NewImage"]["user"]["M"]
    return user["id"]["S"], user["email"]["S"]


def test_opted_out_and_suppressed_notifications_are_recorded_skipped_never_sent(
    handler: Handler, provisioned: dict[str, str]
) -> None:
    # GIVEN three friend requests: user A opted out of them by email, user B's address
    # bounced (suppressed), user C has no preferences at all
    event = _event([0, 1, 2])
    (a, _), (b, b_email), _ = (_user(r) for r in event["Records"])
    a_type = _type(event["Records"][0])
    ddb = boto3.client("dynamodb")
    ddb.put_item(
        TableName=PREFS, Item={"pk": {"S": f"USER#{a}"}, "opt_outs": {"SS": [f"{a_type}:email"]}}
    )
    ddb.put_item(
        TableName=PREFS,
        Item={
            "pk": {"S": f"USER#{b}"},
            "suppressed": {"SS": [address_fingerprint(b_email.upper())]},
        },
    )
    # WHEN the batch is handled, twice (a redelivery)
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN only C got an email; A and B are SKIPPED in the ledger and counted apart
    sent = [m["destinations"]["ToAddresses"] for m in sent_emails(provisioned["endpoint"])]
    assert sent == [[_user(event["Records"][2])[1]]]
    states = sorted(v["state"] for v in ledger_items().values())
    assert states == ["SENT", "SKIPPED", "SKIPPED"]
    assert handler.stats["opted_out"] == 1
    assert handler.stats["suppressed"] == 1
    assert handler.stats["duplicates"] == 3  # the redelivery: every key already final
    # AND the preferences cost one eventually consistent read per distinct user per batch
    assert handler.stats["read_units"] == 2 * 2  # ceil(3 users x 0.5) per batch, two batches


def test_unknown_preferences_never_send(
    handler: Handler, provisioned: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the preferences table is gone (a wrong name, a deleted table)
    boto3.client("dynamodb").delete_table(TableName=PREFS)
    event = _event([3, 4])
    # WHEN a batch is handled
    with pytest.raises(BatchFailedError):
        handler(event, FakeContext(remaining_ms=5000))
    # THEN nothing is sent and nothing is claimed: the records come back (fail closed)
    assert sent_emails(provisioned["endpoint"]) == []
    assert ledger_items() == {}
    assert handler.stats["account_faults"] == 2


def test_one_click_link_round_trip_opts_the_user_out_of_that_category(
    handler: Handler, provisioned: dict[str, str], key: str
) -> None:
    # GIVEN an email sent for a profile view
    requests = _requests(handler)
    event = _event([5])
    user_id, _ = _user(event["Records"][0])
    category = _type(event["Records"][0])
    handler(event, FakeContext())
    (req,) = requests
    # THEN it carries RFC 8058's headers with a per-recipient https link and a mailto
    headers = {h["Name"]: h["Value"] for h in req["Content"]["Simple"]["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link, mailto = (part.strip(" <>") for part in headers["List-Unsubscribe"].split(","))
    assert link.startswith("https://unsubscribe.example.com/?t=")
    assert mailto == "mailto:unsubscribe@example.com"
    # AND the same link is visible in the text and HTML bodies
    body = req["Content"]["Simple"]["Body"]
    assert link in body["Text"]["Data"]
    assert link.replace("&", "&amp;") in body["Html"]["Data"]
    # AND its tags name the ledger entry, so SES's events find it
    tags = {t["Name"]: t["Value"] for t in req["EmailTags"]}
    assert decode_tag(tags[KEY_TAG]) in ledger_items()
    # WHEN the user's mail client POSTs the one-click unsubscribe
    token = parse_qs(urlsplit(link).query)["t"][0]
    endpoint = build_unsubscribe_handler(
        UnsubscribeSettings(
            preferences_table=PREFS,
            unsubscribe_key="env:TEST_UNSUBSCRIBE_KEY",
            aws_clients="aiobotocore",
        )
    )
    try:
        answer = endpoint(_post(token), None)
    finally:
        endpoint.close()
    assert answer["statusCode"] == 200
    # THEN the next profile view of that user is skipped, while another category still sends
    later = _event([5, 6])
    assert _type(later["Records"][1]) != category
    later["Records"][0]["dynamodb"]["NewImage"]["event_id"] = {"S": "evt-later-1"}
    later["Records"][1]["dynamodb"]["NewImage"]["user"] = event["Records"][0]["dynamodb"][
        "NewImage"
    ]["user"]
    handler(later, FakeContext())
    assert handler.stats["opted_out"] == 1
    assert len(requests) == 2
    assert requests[1]["Destination"] == req["Destination"]
    skipped = [k for k, v in ledger_items().items() if v["state"] == "SKIPPED"]
    assert skipped == ["email#evt-later-1"]
    # AND the opt-out names exactly that user and category on that channel
    item = boto3.client("dynamodb").get_item(TableName=PREFS, Key={"pk": {"S": f"USER#{user_id}"}})
    assert item["Item"]["opt_outs"]["SS"] == [f"{category}:email"]


def _post(token: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": f"t={token}",
        "queryStringParameters": {"t": token},
        "headers": {"content-type": "application/x-www-form-urlencoded"},
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": "List-Unsubscribe=One-Click",
        "isBase64Encoded": False,
    }
