"""The fast client sends real emails to an AWS-compatible endpoint (moto over HTTP)."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from notifier.aws import SESv2Client
from notifier.local.moto_server import sent_emails
from notifier.samples import user_email


@pytest.fixture
def verified_domain(aws: str) -> str:
    """GIVEN the SES identity example.com verified in the embedded AWS; yields the endpoint."""
    boto3.client("sesv2").create_email_identity(EmailIdentity="example.com")
    return aws


def _email(user: int, subject: str) -> dict[str, Any]:
    return {
        "FromEmailAddress": "notifications@example.com",
        "Destination": {"ToAddresses": [user_email(user)]},
        "Content": {
            "Simple": {
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": f"text {subject}"},
                    "Html": {"Data": f"<p>html {subject}</p>"},
                },
            }
        },
        "EmailTags": [{"Name": "kind", "Value": "test"}],
    }


def test_sends_land_in_moto(verified_domain: str) -> None:
    # GIVEN the fast client configured only by the environment (endpoint, region, credentials)
    async def scenario() -> list[str]:
        async with SESv2Client() as client:
            results = await asyncio.gather(
                *(client.send_email(**_email(u, f"hello {u}")) for u in range(5))
            )
        return [r["MessageId"] for r in results]

    # WHEN five emails are sent concurrently
    ids = asyncio.run(scenario())
    # THEN moto holds exactly those five, to the right recipients, with their HTML bodies
    sent = sent_emails(verified_domain)
    assert len(sent) == 5
    assert sorted(m["id"] for m in sent) == sorted(ids)
    by_dest = {m["destinations"]["ToAddresses"][0]: m for m in sent}
    assert set(by_dest) == {user_email(u) for u in range(5)}
    assert by_dest[user_email(3)]["subject"] == "hello 3"
    assert by_dest[user_email(3)]["body"] == "<p>html hello 3</p>"


def test_unverified_sender_is_rejected_like_botocore(aws: str) -> None:
    # GIVEN no verified identity
    async def scenario() -> ClientError:
        async with SESv2Client() as client:
            try:
                await client.send_email(**_email(1, "x"))
            except ClientError as exc:
                return exc
        raise AssertionError("send succeeded")

    # WHEN sending through both clients
    ours = asyncio.run(scenario())
    with pytest.raises(ClientError) as theirs:
        boto3.client("sesv2").send_email(**_email(1, "x"))
    # THEN both fail the same way and nothing was sent
    assert type(ours).__name__ == type(theirs.value).__name__
    assert ours.response["Error"] == theirs.value.response["Error"]
    assert sent_emails(aws) == []
