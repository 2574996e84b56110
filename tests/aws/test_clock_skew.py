"""A client whose clock is off learns the offset from the server's ``Date`` on a skew error,
re-signs and retries once; later requests are signed with the corrected clock."""

from __future__ import annotations

import asyncio
import calendar
import email.utils
import time
from typing import Any

import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from notifier.aws import DynamoDBClient, SESv2Client

from .servers import http_response, raw_server, read_http_head

PARAMS: dict[str, Any] = {
    "FromEmailAddress": "notifications@example.com",
    "Destination": {"ToAddresses": ["user-1@example.com"]},
    "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
}
HOUR = 3600.0

pytestmark = pytest.mark.parametrize("transport", ["raw", "aiohttp"])


def _amz_epoch(value: bytes) -> float:
    return float(calendar.timegm(time.strptime(value.decode(), "%Y%m%dT%H%M%SZ")))


def _skew_server(
    service: str, seen: list[float], *, always_reject: bool = False, code: str | None = None
) -> Any:
    """An endpoint on the real clock that rejects signatures more than 5 minutes off, as AWS
    does (``service``: "ses" answers like SESv2, "dynamodb" like DynamoDB)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                _, headers = await read_http_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            now = time.time()
            signed = _amz_epoch(headers[b"x-amz-date"])
            seen.append(signed - now)
            date = email.utils.formatdate(now, usegmt=True).encode()
            if always_reject or abs(signed - now) > 300:
                name = code or "InvalidSignatureException"
                msg = b"Signature expired: is now earlier than (5 min.)"
                if service == "ses":
                    answer = http_response(
                        b'{"message":"' + msg + b'"}',
                        status=b"403 Forbidden",
                        headers=b"Date: "
                        + date
                        + b"\r\nx-amzn-ErrorType: "
                        + name.encode()
                        + b":http://internal.amazon.com/coral/com.amazon.coral.service/\r\n",
                    )
                else:
                    answer = http_response(
                        b'{"__type":"com.amazon.coral.service#'
                        + name.encode()
                        + b'","message":"'
                        + msg
                        + b'"}',
                        status=b"400 Bad Request",
                        headers=b"Date: " + date + b"\r\n",
                    )
            else:
                body = b'{"MessageId":"m"}' if service == "ses" else b"{}"
                answer = http_response(body, headers=b"Date: " + date + b"\r\n")
            writer.write(answer)
            await writer.drain()

    return handler


def _ses(url: str, transport: str, clock: Any) -> SESv2Client:
    return SESv2Client(
        region_name="us-east-1",
        endpoint_url=url,
        credentials=Credentials("a", "b"),
        clock=clock,
        transport=transport,  # type: ignore[arg-type]
    )


def test_ses_send_with_a_slow_clock_is_corrected_and_retried_once(transport: str) -> None:
    # GIVEN a client whose clock is an hour behind, and an endpoint that rejects skewed requests
    seen: list[float] = []

    async def scenario() -> tuple[list[str], float]:
        async with (
            raw_server(_skew_server("ses", seen)) as url,
            _ses(url, transport, lambda: time.time() - HOUR) as client,
        ):
            ids = [(await client.send_email(**PARAMS))["MessageId"] for _ in range(2)]
            return ids, client.clock_offset

    # WHEN sending twice
    ids, offset = asyncio.run(scenario())
    # THEN both succeed: the first after one corrected retry, the second signed right at once
    assert ids == ["m", "m"]
    assert len(seen) == 3
    assert seen[0] < -HOUR + 60
    assert all(abs(s) <= 300 for s in seen[1:])
    assert abs(offset - HOUR) < 60


def test_a_real_signature_error_is_not_retried(transport: str) -> None:
    # GIVEN a client with a correct clock and an endpoint that rejects every signature
    seen: list[float] = []

    async def scenario() -> None:
        async with (
            raw_server(_skew_server("ses", seen, always_reject=True)) as url,
            _ses(url, transport, time.time) as client,
        ):
            await client.send_email(**PARAMS)

    # WHEN sending THEN the error is raised after one request (no skew: nothing to correct)
    with pytest.raises(ClientError) as info:
        asyncio.run(scenario())
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert len(seen) == 1


def test_skew_is_retried_only_once(transport: str) -> None:
    # GIVEN a client an hour ahead, and an endpoint that keeps answering RequestTimeTooSkewed
    seen: list[float] = []
    server = _skew_server("ses", seen, always_reject=True, code="RequestTimeTooSkewed")

    async def scenario() -> None:
        async with (
            raw_server(server) as url,
            _ses(url, transport, lambda: time.time() + HOUR) as client,
        ):
            await client.send_email(**PARAMS)

    # WHEN sending THEN one corrected retry, then the error
    with pytest.raises(ClientError) as info:
        asyncio.run(scenario())
    assert info.value.response["Error"]["Code"] == "RequestTimeTooSkewed"
    assert len(seen) == 2
    assert abs(seen[1]) <= 300


def test_dynamodb_call_with_a_fast_clock_is_corrected(transport: str) -> None:
    # GIVEN a DynamoDB client an hour ahead, one attempt allowed
    seen: list[float] = []

    async def scenario() -> dict[str, Any]:
        async with (
            raw_server(_skew_server("dynamodb", seen)) as url,
            DynamoDBClient(
                region_name="us-east-1",
                endpoint_url=url,
                credentials=Credentials("a", "b"),
                clock=lambda: time.time() + HOUR,
                max_attempts=1,
                transport=transport,  # type: ignore[arg-type]
            ) as client,
        ):
            return await client.get_item(TableName="t", Key={"pk": {"S": "k"}})

    # WHEN calling
    result = asyncio.run(scenario())
    # THEN it succeeds after one corrected retry that did not spend the single attempt
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(seen) == 2
    assert abs(seen[1]) <= 300
