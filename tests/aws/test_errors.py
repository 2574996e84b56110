"""Service errors surface exactly as botocore surfaces them (same class name, code, message)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from notifier.aws import SESv2Client

from .reference import both_outcomes

PARAMS: dict[str, Any] = {
    "FromEmailAddress": "notifications@example.com",
    "Destination": {"ToAddresses": ["user-1@example.com"]},
    "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
}
ERROR_TYPE = "x-amzn-ErrorType"
RID = {"x-amzn-RequestId": "7f1f0a4e-0000-4000-8000-000000000001"}

# (status, headers, body): shapes SES and intermediaries answer with.
RESPONSES = {
    "throttled-header": (
        429,
        {ERROR_TYPE: "TooManyRequestsException:http://internal.amazon.com/coral/", **RID},
        b'{"message":"Maximum sending rate exceeded."}',
    ),
    "rejected-header": (
        400,
        {ERROR_TYPE: "MessageRejected", **RID},
        b'{"message":"Email address is not verified."}',
    ),
    "suspended-type": (
        400,
        RID,
        b'{"__type":"com.amazon.ses#AccountSuspendedException","Message":"suspended"}',
    ),
    "paused-code": (400, {}, b'{"code":"SendingPausedException","message":"paused"}'),
    "mailfrom": (400, {ERROR_TYPE: "MailFromDomainNotVerifiedException"}, b"{}"),
    "notfound": (
        404,
        {ERROR_TYPE: "NotFoundException"},
        b'{"message":"Configuration set does not exist"}',
    ),
    "badrequest": (
        400,
        {ERROR_TYPE: "BadRequestException"},
        b'{"message":"Missing final \'@domain\'"}',
    ),
    "limit": (
        400,
        {ERROR_TYPE: "LimitExceededException"},
        b'{"message":"Daily message quota exceeded."}',
    ),
    "internal": (500, {ERROR_TYPE: "InternalFailure", **RID}, b'{"message":"internal error"}'),
    "unavailable-html": (503, {}, b"<html><body><b>Http/1.1 Service Unavailable</b></body></html>"),
    "bad-gateway-empty": (502, {}, b""),
    "unknown-code": (400, {ERROR_TYPE: "SomethingNewException"}, b'{"Message":"new"}'),
    "not-json": (400, {}, b"plain text failure"),
    "status-only": (403, {}, b"{}"),
}


def _answer(status: int, headers: dict[str, str], body: bytes) -> Any:
    def handler(_: web.Request) -> web.Response:
        return web.Response(
            status=status, headers=headers, body=body, content_type="application/json"
        )

    return handler


async def _both(status: int, headers: dict[str, str], body: bytes) -> tuple[Any, Any]:
    """(botocore's outcome, ours) for one answer from the server."""
    return await both_outcomes(
        "sesv2",
        _answer(status, headers, body),
        lambda client: client.send_email(**PARAMS),
        lambda url: SESv2Client(
            region_name="us-east-1", endpoint_url=url, credentials=Credentials("a", "b")
        ),
    )


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_error_matches_botocore(name: str) -> None:
    # GIVEN SES (or something in front of it) answering with this error response
    status, headers, body = RESPONSES[name]
    # WHEN botocore's client and the fast client send the same email
    theirs, ours = asyncio.run(_both(status, headers, body))
    # THEN both raise the same ClientError class with the same code, message and status
    assert isinstance(theirs, ClientError)
    assert isinstance(ours, ClientError)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.response["Error"] == theirs.response["Error"]
    assert ours.operation_name == theirs.operation_name == "SendEmail"
    meta, ref_meta = ours.response["ResponseMetadata"], theirs.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == ref_meta["HTTPStatusCode"] == status
    assert meta.get("RequestId") == ref_meta.get("RequestId")
    assert str(ours) == str(theirs)


def test_success_matches_botocore() -> None:
    # GIVEN SES accepting the message
    body = b'{"MessageId":"0100018c-aaaa-bbbb-cccc-000000000000-000000"}'
    # WHEN both clients send
    theirs, ours = asyncio.run(_both(200, RID, body))
    # THEN both return the same MessageId and request id
    assert ours["MessageId"] == theirs["MessageId"] == "0100018c-aaaa-bbbb-cccc-000000000000-000000"
    assert ours["ResponseMetadata"]["RequestId"] == theirs["ResponseMetadata"]["RequestId"]
    assert ours["ResponseMetadata"]["HTTPStatusCode"] == 200
