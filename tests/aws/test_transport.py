"""Connection failures are typed by whether the request could have reached the service."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from botocore.credentials import Credentials

from notifier.aws import OutcomeUnknownError, RequestNotSentError, SESv2Client, TransportError

from .servers import raw_server, read_http_request, refused_port

PARAMS: dict[str, Any] = {
    "FromEmailAddress": "notifications@example.com",
    "Destination": {"ToAddresses": ["user-1@example.com"]},
    "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
}


#: Both transports of the fast clients keep the same contract.
pytestmark = pytest.mark.parametrize("transport", ["raw", "aiohttp"])


def _client(url: str, **kwargs: Any) -> SESv2Client:
    return SESv2Client(
        region_name="us-east-1", endpoint_url=url, credentials=Credentials("a", "b"), **kwargs
    )


async def _send(url: str, **kwargs: Any) -> dict[str, Any]:
    async with _client(url, **kwargs) as client:
        return await client.send_email(**PARAMS)


def test_connection_refused_is_not_sent(transport: str) -> None:
    # GIVEN an endpoint where nothing listens
    url = f"http://127.0.0.1:{refused_port()}"
    # WHEN sending
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(_send(url, transport=transport))
    # THEN the error says the request never left, and is a ConnectionError
    assert isinstance(info.value, ConnectionError)
    assert not isinstance(info.value, OutcomeUnknownError)
    assert info.value.endpoint == url
    assert info.value.operation == "SendEmail"


def test_dropped_after_request_is_outcome_unknown(transport: str) -> None:
    # GIVEN a server that reads the whole request, then closes the connection without answering
    received: list[bytes] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_http_request(reader))
        writer.close()

    async def scenario() -> None:
        async with raw_server(drop) as url:
            await _send(url, transport=transport)

    # WHEN sending
    with pytest.raises(OutcomeUnknownError) as info:
        asyncio.run(scenario())
    # THEN the server did receive the email, and the error says the outcome is unknown
    assert len(received) == 1
    assert b"user-1@example.com" in received[0]
    assert isinstance(info.value, TransportError)
    assert not isinstance(info.value, RequestNotSentError)


def test_no_answer_within_read_timeout_is_outcome_unknown(transport: str) -> None:
    # GIVEN a server that reads the request and never answers
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_http_request(reader)
        await asyncio.sleep(5)
        writer.close()

    async def scenario() -> None:
        async with raw_server(hang) as url:
            await _send(url, read_timeout=0.2, transport=transport)

    # WHEN sending with a short read timeout
    # THEN the outcome is unknown (the request was delivered)
    with pytest.raises(OutcomeUnknownError):
        asyncio.run(scenario())


def test_connection_is_reused_across_sends(transport: str) -> None:
    # GIVEN a keep-alive HTTP server counting connections
    connections: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        body = b'{"MessageId":"m"}'
        while True:
            try:
                await read_http_request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()

    async def scenario() -> list[str]:
        async with raw_server(answer) as url, _client(url, transport=transport) as client:
            return [(await client.send_email(**PARAMS))["MessageId"] for _ in range(5)]

    # WHEN five emails are sent one after the other
    ids = asyncio.run(scenario())
    # THEN all succeed over a single connection
    assert ids == ["m"] * 5
    assert len(connections) == 1


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_chunked_and_close_delimited_answers_are_read(transport: str, framing: str) -> None:
    # GIVEN a server answering with a chunked body, or a body ended by closing the connection
    connections: list[int] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_http_request(reader)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if framing == "chunked":
            writer.write(
                head + b"Transfer-Encoding: chunked\r\n\r\n"
                b'6\r\n{"Mess\r\nb\r\nageId":"m"}\r\n0\r\n\r\n'
            )
        else:
            writer.write(head + b"Connection: close\r\n\r\n" + b'{"MessageId":"m"}')
        await writer.drain()
        if framing == "close":
            writer.close()
        else:
            with contextlib.suppress(asyncio.IncompleteReadError):
                await read_http_request(reader)
            writer.close()

    async def scenario() -> str:
        async with raw_server(answer) as url, _client(url, transport=transport) as client:
            return str((await client.send_email(**PARAMS))["MessageId"])

    # WHEN sending THEN the whole body is read
    assert asyncio.run(scenario()) == "m"
    assert connections == [1]
