"""Both transports (llhttp ``raw`` and ``aiohttp``) give the same verdicts against servers that
misbehave: garbage, early close, partial or slow or oversize heads, oversize bodies, unsolicited
bytes, resets after the request was written, stale keep-alive connections, 1xx/204, bad chunks.

The verdict that matters to the pipeline is the exception class: ``RequestNotSentError`` only
when not one byte of the request was written, ``OutcomeUnknownError`` once it may have been
read, and never an answer that belongs to another exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from botocore.credentials import Credentials

from notifier.aws import DynamoDBClient, OutcomeUnknownError, RequestNotSentError, SESv2Client
from notifier.aws.errors import MalformedResponseError, ResponseTooLargeError, UnsafeHeaderError

from .servers import http_response, raw_server, read_http_head, reset

PARAMS: dict[str, Any] = {
    "FromEmailAddress": "notifications@example.com",
    "Destination": {"ToAddresses": ["user-1@example.com"]},
    "Content": {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
}

pytestmark = pytest.mark.parametrize("transport", ["raw", "aiohttp"])

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _client(url: str, transport: str, **kwargs: Any) -> SESv2Client:
    kwargs.setdefault("read_timeout", 10.0)
    return SESv2Client(
        region_name="us-east-1",
        endpoint_url=url,
        credentials=kwargs.pop("credentials", Credentials("a", "b")),
        transport=transport,  # type: ignore[arg-type]
        **kwargs,
    )


def _send_once(handler: Handler, transport: str, **kwargs: Any) -> dict[str, Any]:
    async def scenario() -> dict[str, Any]:
        async with raw_server(handler) as url, _client(url, transport, **kwargs) as client:
            return await client.send_email(**PARAMS)

    return asyncio.run(scenario())


def _answer_then(payload: bytes, *, then_close: bool = True) -> tuple[Handler, list[bytes]]:
    """A server that reads one request, writes ``payload`` and (by default) closes."""
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, _ = await read_http_head(reader)
        requests.append(line)
        writer.write(payload)
        await writer.drain()
        if not then_close:
            await asyncio.sleep(30)

    return handler, requests


# --- after the request was written: outcome unknown, never a fabricated answer ---------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"garbage that is not HTTP\r\n\r\n", id="garbage"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Ty", id="partial-head-then-close"),
        pytest.param(http_response()[:-5], id="partial-body-then-close"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n",
            id="negative-chunk-size",
        ),
        pytest.param(
            b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{"Mess', id="cut-chunk"
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 2\r\n\r\n{}", id="cr-in-header"
        ),
        pytest.param(b"", id="close-without-answer"),
    ],
)
def test_broken_answers_are_outcome_unknown(transport: str, payload: bytes) -> None:
    # GIVEN a server that reads the request, then answers something broken and closes
    handler, requests = _answer_then(payload)
    # WHEN sending
    with pytest.raises(OutcomeUnknownError) as info:
        _send_once(handler, transport)
    # THEN the request had arrived and the error says the outcome is unknown (not "not sent")
    assert len(requests) == 1
    assert not isinstance(info.value, RequestNotSentError)


def test_reset_after_the_request_is_outcome_unknown(transport: str) -> None:
    # GIVEN a server that reads the whole request, then resets the connection (RST)
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append((await read_http_head(reader))[0])
        reset(writer)

    # WHEN sending THEN the outcome is unknown: the server had the request
    with pytest.raises(OutcomeUnknownError):
        _send_once(handler, transport)
    assert len(requests) == 1


def test_slow_head_past_the_read_timeout_is_outcome_unknown(transport: str) -> None:
    # GIVEN a server that sends half a status line, then stalls
    handler, requests = _answer_then(b"HTTP/1.1 2", then_close=False)
    # WHEN sending with a short read timeout THEN the outcome is unknown
    with pytest.raises(OutcomeUnknownError):
        _send_once(handler, transport, read_timeout=0.3)
    assert len(requests) == 1


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_oversize_body_is_refused(transport: str, framing: str) -> None:
    # GIVEN a server answering a 4 KiB body, framed by length, chunks or close
    body = b'{"MessageId":"' + b"x" * 4096 + b'"}'
    if framing == "length":
        payload = http_response(body)
    elif framing == "chunked":
        payload = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (256, body[i : i + 256]) for i in range(0, 4096, 256))
            + b"0\r\n\r\n"
        )
    else:
        payload = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body
    handler, _ = _answer_then(payload)
    # WHEN the client caps responses at 1 KiB
    with pytest.raises(OutcomeUnknownError) as info:
        _send_once(handler, transport, max_response_bytes=1024)
    # THEN the answer is refused as too large (the request had left: outcome unknown)
    assert isinstance(info.value.__cause__, ResponseTooLargeError)


@pytest.mark.parametrize("framing", ["length", "close"])
def test_large_body_within_the_cap_is_read(transport: str, framing: str) -> None:
    # GIVEN a server answering a 600 KiB body (more than one socket read), keeping the
    # connection open after a length-framed answer
    body = b'{"MessageId":"big","Pad":"' + b"x" * 600_000 + b'"}'
    if framing == "length":
        handler, _ = _answer_then(http_response(body), then_close=False)
    else:
        handler, _ = _answer_then(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
    # WHEN sending with the default cap THEN the whole body is read
    assert _send_once(handler, transport)["MessageId"] == "big"


def test_oversize_head_is_refused(transport: str) -> None:
    # GIVEN a server whose answer has a 200 KiB header
    payload = b"HTTP/1.1 200 OK\r\nX-Huge: " + b"a" * 200_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    handler, _ = _answer_then(payload)
    # WHEN sending THEN the answer is refused, outcome unknown
    with pytest.raises(OutcomeUnknownError):
        _send_once(handler, transport)


def test_malformed_cause_is_a_value_error(transport: str) -> None:
    # GIVEN garbage for an answer WHEN sending
    handler, _ = _answer_then(b"NOT HTTP AT ALL\r\n\r\n")
    with pytest.raises(OutcomeUnknownError) as info:
        _send_once(handler, transport)
    # THEN the cause is typed: raw's MalformedResponseError (a ValueError), aiohttp's own
    # ClientResponseError
    import aiohttp

    expected = MalformedResponseError if transport == "raw" else aiohttp.ClientResponseError
    assert isinstance(info.value.__cause__, expected)
    assert issubclass(MalformedResponseError, ValueError)


# --- framing the parser must get right ----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\n" + http_response(b'{"MessageId":"after-100"}'),
            "after-100",
            id="1xx-then-answer",
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", None, id="204-without-body"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'6;ext=1\r\n{"Mess\r\nb\r\nageId":"c"}\r\n0\r\nX-Trailer: t\r\n\r\n',
            "c",
            id="chunked-with-extension-and-trailer",
        ),
    ],
)
def test_framing_is_the_parsers_job(transport: str, payload: bytes, expected: str | None) -> None:
    # GIVEN a server that answers with this framing and keeps the connection open
    handler, _ = _answer_then(payload, then_close=False)
    # WHEN sending (the read timeout is long: a hang would fail as OutcomeUnknownError)
    result = _send_once(handler, transport)
    # THEN the answer is read as framed, without waiting for a close
    assert result.get("MessageId") == expected
    assert result["ResponseMetadata"]["HTTPStatusCode"] == (204 if expected is None else 200)


# --- one exchange, one answer; stale connections are not "unknown" ---------------------------


def _keepalive_server(
    on_idle: Callable[[asyncio.StreamWriter, int], Awaitable[bool]],
) -> tuple[Handler, list[int], list[bytes]]:
    """Answers ``m<n>`` to the n-th request; after each answer ``on_idle(writer, n)`` runs and
    returns False to stop serving that connection (closing it)."""
    connections: list[int] = []
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                line, _ = await read_http_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            requests.append(line)
            writer.write(http_response(b'{"MessageId":"m%d"}' % len(requests)))
            await writer.drain()
            if not await on_idle(writer, len(requests)):
                return

    return handler, connections, requests


async def _settle() -> None:
    """Let the loop run a few iterations (the peer's FIN/bytes reach the client's protocol)."""
    for _ in range(10):
        await asyncio.sleep(0)


def _two_sends(
    handler: Handler, transport: str, between: Callable[[], Awaitable[None]] | None = None
) -> list[str]:
    """Two sends over one client; ``between()`` runs after the first exchange has finished."""

    async def scenario() -> list[str]:
        async with raw_server(handler) as url, _client(url, transport) as client:
            first = (await client.send_email(**PARAMS))["MessageId"]
            if between is not None:
                await between()
            await _settle()
            second = (await client.send_email(**PARAMS))["MessageId"]
            return [first, second]

    return asyncio.run(scenario())


def test_unsolicited_bytes_on_an_idle_connection_are_not_the_next_answer(transport: str) -> None:
    # GIVEN a server that, once the client's first exchange is over, writes a forged answer
    # on the idle keep-alive connection
    idle = asyncio.Event()
    written = asyncio.Event()

    async def forge(writer: asyncio.StreamWriter, n: int) -> bool:
        if n == 1:
            await idle.wait()
            writer.write(http_response(b'{"MessageId":"forged"}'))
            await writer.drain()
            written.set()
        return True

    async def between() -> None:
        idle.set()
        await written.wait()

    handler, connections, requests = _keepalive_server(forge)
    # WHEN a second email is sent after the forged bytes arrived
    ids = _two_sends(handler, transport, between)
    # THEN its answer is the one to the second request, over a fresh connection
    assert ids == ["m1", "m2"]
    assert len(requests) == 2
    assert len(connections) == 2


def test_bytes_after_the_answer_retire_the_connection(transport: str) -> None:
    # GIVEN a server whose answer is followed, in the same write, by a second unasked answer
    connections: list[int] = []
    requests: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                await read_http_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            requests.append(1)
            n = len(requests)
            extra = http_response(b'{"MessageId":"forged"}') if n == 1 else b""
            writer.write(http_response(b'{"MessageId":"m%d"}' % n) + extra)
            await writer.drain()

    # WHEN two emails are sent
    ids = _two_sends(handler, transport)
    # THEN each gets its own answer and the polluted connection is not reused
    assert ids == ["m1", "m2"]
    assert len(connections) == 2


def test_keepalive_closed_by_server_while_idle_is_replaced(transport: str) -> None:
    # GIVEN a server that closes the connection once the client's first exchange is over
    idle = asyncio.Event()
    closed = asyncio.Event()

    async def close_when_idle(writer: asyncio.StreamWriter, n: int) -> bool:
        await idle.wait()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        closed.set()
        return False

    async def between() -> None:
        idle.set()
        await closed.wait()

    handler, connections, requests = _keepalive_server(close_when_idle)
    # WHEN a second email is sent after the close
    ids = _two_sends(handler, transport, between)
    # THEN it goes over a new connection and succeeds (no "outcome unknown", nothing lost)
    assert ids == ["m1", "m2"]
    assert len(connections) == 2
    assert len(requests) == 2


def test_keepalive_closed_while_the_loop_was_busy_is_replaced(transport: str) -> None:
    # GIVEN a server (in a thread) that closes the connection after its first answer while the
    # client's event loop is blocked, so the loop has not read the FIN when it sends again
    close_now = threading.Event()
    closed = threading.Event()
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for n in (1, 2):
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"user-1@example.com" not in data:
                    data += conn.recv(65536)
                received.append(data)
                conn.sendall(http_response(b'{"MessageId":"m%d"}' % n))
                if n == 1:
                    close_now.wait(10)
            closed.set()
        listener.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    async def scenario() -> list[str]:
        async with _client(f"http://127.0.0.1:{port}", transport) as client:
            first = (await client.send_email(**PARAMS))["MessageId"]
            close_now.set()
            closed.wait(10)  # blocks the loop on purpose: the FIN stays unread
            second = (await client.send_email(**PARAMS))["MessageId"]
            return [first, second]

    # WHEN the second email is sent right away
    ids = asyncio.run(scenario())
    server.join(10)
    # THEN the closed connection is not reused: a new one carries the email, which succeeds
    assert ids == ["m1", "m2"]
    assert len(received) == 2


def test_connection_close_header_is_honoured(transport: str) -> None:
    # GIVEN a server that says "Connection: close" but keeps the socket open
    async def keep_open(writer: asyncio.StreamWriter, n: int) -> bool:
        return True

    connections: list[int] = []
    requests: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            try:
                await read_http_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            requests.append(1)
            body = b'{"MessageId":"m%d"}' % len(requests)
            writer.write(http_response(body, headers=b"Connection: close\r\n"))
            await writer.drain()

    # WHEN two emails are sent THEN each goes over its own connection
    assert _two_sends(handler, transport) == ["m1", "m2"]
    assert len(connections) == 2


# --- before the first byte: not sent, whatever raised it --------------------------------------


def _counting_server() -> tuple[Handler, list[bytes]]:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(65536)
        received.append(data)
        if data:
            writer.write(http_response())
            await writer.drain()

    return handler, received


class _NoKeys:
    """A credential source whose refresh lost the keys (botocore returns None fields)."""

    def get_frozen_credentials(self) -> Any:
        return (
            Credentials("a", "b")
            .get_frozen_credentials()
            ._replace(access_key=None, secret_key=None)
        )


@pytest.mark.parametrize(
    ("params", "kwargs", "cause"),
    [
        pytest.param(
            {**PARAMS, "ConfigurationSetName": object()}, {}, TypeError, id="unencodable-body"
        ),
        pytest.param(PARAMS, {"credentials": _NoKeys()}, Exception, id="missing-credentials"),
        pytest.param(
            PARAMS,
            {"credentials": Credentials("a", "b", "tok\r\nX-Injected: 1")},
            UnsafeHeaderError,
            id="crlf-in-header-value",
        ),
    ],
)
def test_failures_before_the_write_are_not_sent(
    transport: str, params: dict[str, Any], kwargs: dict[str, Any], cause: type[Exception]
) -> None:
    # GIVEN a server counting what it receives, and a request that cannot be built safely
    handler, received = _counting_server()

    async def scenario() -> None:
        async with raw_server(handler) as url, _client(url, transport, **kwargs) as client:
            await client.send_email(**params)

    # WHEN sending
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(scenario())
    # THEN the error says nothing was sent (cause kept), and indeed not one byte arrived
    assert isinstance(info.value.__cause__, cause)
    assert not any(received)


def test_missing_credentials_is_not_sent_with_botocore_error(transport: str) -> None:
    # GIVEN credentials that lost their keys WHEN sending
    handler, received = _counting_server()

    async def scenario() -> None:
        async with raw_server(handler) as url, _client(url, transport, credentials=_NoKeys()) as c:
            await c.send_email(**PARAMS)

    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(scenario())
    # THEN botocore's NoCredentialsError is the cause
    from botocore.exceptions import NoCredentialsError

    assert isinstance(info.value.__cause__, NoCredentialsError)
    assert not any(received)


def test_dynamodb_unbuildable_request_is_not_sent_nor_retried(transport: str) -> None:
    # GIVEN a server counting connections, and an item that cannot be encoded
    handler, received = _counting_server()

    async def scenario() -> None:
        async with (
            raw_server(handler) as url,
            DynamoDBClient(
                region_name="us-east-1",
                endpoint_url=url,
                credentials=Credentials("a", "b"),
                transport=transport,  # type: ignore[arg-type]
            ) as client,
        ):
            await client.put_item(TableName="t", Item={"pk": {"S": object()}})

    # WHEN writing the item
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(scenario())
    # THEN nothing was sent, and the local failure was raised at once (no connection at all)
    assert isinstance(info.value.__cause__, TypeError)
    assert info.value.operation == "PutItem"
    assert received == []
