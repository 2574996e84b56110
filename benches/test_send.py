"""CPU per SESv2 send: aiobotocore vs notifier's fast client vs a bare aiohttp POST (the floor);
and CPU per response parse: llhttp through httptools (the raw transport) vs aiohttp's parsers.

``notifier`` is the fast client on its default transport (asyncio protocol + llhttp through
httptools); ``notifier-aiohttp`` the same client with ``transport="aiohttp"`` (aiohttp's client
and its own llhttp parser), untracked: it documents the choice in docs/TRANSPORT.md.

Each round sends N emails at concurrency 64 from one event loop to the zero-latency stub; the
timer is ``time.process_time`` (CPU of this process only), so the mean is CPU seconds per N
sends. ``extra_info["cpu_per_send_us"]`` is the per-send figure report.py compares.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from notifier.aws import SESv2Client, serialize_send_email
from notifier.aws.rawhttp import _Connection
from stub_aws import StubAws

CONCURRENCY = 64
LIBS = ["aiobotocore", "notifier", "notifier-aiohttp", "aiohttp-floor"]


def _email(i: int) -> dict[str, Any]:
    return {
        "FromEmailAddress": "Notifier <notifications@example.com>",
        "Destination": {"ToAddresses": [f"user-{i}@example.com"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": f"Ada Lovelace viewed your profile ({i})", "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": "Hi Grace,\n\nAda Lovelace viewed your profile. " * 4},
                    "Html": {
                        "Data": "<p>Hi Grace,</p><p>Ada Lovelace viewed your profile.</p>" * 4
                    },
                },
                "Headers": [{"Name": "List-Unsubscribe", "Value": "<https://example.com/u>"}],
            }
        },
        "ConfigurationSetName": "notifier",
        "EmailTags": [{"Name": "event_type", "Value": "profile_view"}],
    }


EMAILS = [_email(i) for i in range(CONCURRENCY)]
Sender = Callable[[dict[str, Any]], Awaitable[str]]


async def _sender(lib: str, url: str, stack: AsyncExitStack) -> Sender:
    if lib == "aiobotocore":
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        client = await stack.enter_async_context(
            get_session().create_client(
                "sesv2", endpoint_url=url, config=AioConfig(max_pool_connections=CONCURRENCY)
            )
        )

        async def via_sdk(params: dict[str, Any]) -> str:
            return str((await client.send_email(**params))["MessageId"])

        return via_sdk
    if lib in ("notifier", "notifier-aiohttp"):
        fast = await stack.enter_async_context(
            SESv2Client(
                endpoint_url=url,
                max_connections=CONCURRENCY,
                transport="raw" if lib == "notifier" else "aiohttp",
            )
        )

        async def via_fast(params: dict[str, Any]) -> str:
            return str((await fast.send_email(**params))["MessageId"])

        return via_fast
    # The floor: the same pre-built body POSTed unsigned, response parsed.
    session = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
    )
    bodies = {id(p): serialize_send_email(p) for p in EMAILS}
    target = url + "/v2/email/outbound-emails"
    headers = {"Content-Type": "application/json"}

    async def floor(params: dict[str, Any]) -> str:
        async with session.post(target, data=bodies[id(params)], headers=headers) as resp:
            return str(json.loads(await resp.read())["MessageId"])

    return floor


async def _burst(send: Sender, n: int) -> int:
    done = 0

    async def worker(w: int) -> None:
        nonlocal done
        for _ in range(w, n, CONCURRENCY):
            await send(EMAILS[w])
            done += 1

    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    return done


@pytest.mark.benchmark(group="send-ses", timer=time.process_time)
@pytest.mark.parametrize("lib", LIBS)
def test_send_cpu(benchmark: Any, lib: str, stub_environ: StubAws, scale: Any) -> None:
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        send = loop.run_until_complete(_sender(lib, stub_environ.url, stack))
        # Correct first: a send reaches the stub and returns its MessageId.
        assert loop.run_until_complete(send(EMAILS[0])).startswith("stub-")
        assert stub_environ.stats()["sesv2.SendEmail"] == 1
        n = scale.send_n
        benchmark.pedantic(
            lambda: loop.run_until_complete(_burst(send, n)),
            rounds=scale.send_rounds,
            iterations=1,
            warmup_rounds=1,
        )
        assert stub_environ.stats()["sesv2.SendEmail"] == 1 + n * (scale.send_rounds + 1)
        cpu_per_send_us = benchmark.stats.stats.mean / n * 1e6
        benchmark.extra_info.update(
            lib=lib,
            metric="cpu_per_send_us",
            cpu_per_send_us=round(cpu_per_send_us, 2),
            sends_per_round=n,
            concurrency=CONCURRENCY,
        )
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


# A typical SESv2 SendEmail answer (5 headers, 76-byte JSON body).
_ANSWER_BODY = b'{"MessageId":"010001234567890a-12345678-1234-1234-1234-123456789012-000000"}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nDate: Sat, 05 Dec 2026 03:30:00 GMT\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n"
    b"x-amzn-RequestId: 2f0d3c1e-8e0a-4b7e-9a59-1f3c2b8d7e6f\r\n\r\n"
    % len(_ANSWER_BODY)
    + _ANSWER_BODY
)
PARSE_N = 20_000
PARSERS = ["notifier", "aiohttp-c-parser", "aiohttp-py-parser"]


class _NoSocket:
    def get_extra_info(self, name: str) -> None:
        return None

    def close(self) -> None:
        pass


def _parser(lib: str, loop: asyncio.AbstractEventLoop) -> Callable[[], tuple[int, Any, bytes]]:
    """One response parsed into (status, headers, body) by ``lib``, as its transport does."""
    if lib == "notifier":
        conn = _Connection(1 << 20)
        conn.connection_made(_NoSocket())  # type: ignore[arg-type]

        def via_llhttp() -> tuple[int, Any, bytes]:
            waiter = loop.create_future()
            conn.begin(waiter)
            conn.data_received(ANSWER)
            return waiter.result()  # type: ignore[no-any-return]

        return via_llhttp
    # aiohttp's parsers are internal modules; measured here only to justify the choice.
    from aiohttp.base_protocol import BaseProtocol

    if lib == "aiohttp-c-parser":
        from aiohttp._http_parser import HttpResponseParser as parser_class
    else:
        from aiohttp.http_parser import HttpResponseParserPy as parser_class
    proto = BaseProtocol(loop)

    def via_aiohttp() -> tuple[int, Any, bytes]:
        parser = parser_class(proto, loop, 2**16, response_with_body=True, auto_decompress=False)
        messages, _, _ = parser.feed_data(ANSWER)
        message, payload = messages[0]
        return message.code, message.headers, b"".join(payload._buffer)

    return via_aiohttp


@pytest.mark.benchmark(group="parse-response", timer=time.process_time)
@pytest.mark.parametrize("lib", PARSERS)
def test_parse_cpu(benchmark: Any, lib: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        parse = _parser(lib, loop)
        # Correct first: every parser reads the same answer.
        status, headers, body = parse()
        assert (status, headers["x-amzn-RequestId"][:8], body) == (200, "2f0d3c1e", _ANSWER_BODY)

        def many() -> None:
            for _ in range(PARSE_N):
                parse()

        benchmark.pedantic(many, rounds=5, iterations=1, warmup_rounds=1)
        benchmark.extra_info.update(
            lib=lib,
            metric="cpu_per_parse_us",
            cpu_per_parse_us=round(benchmark.stats.stats.mean / PARSE_N * 1e6, 2),
        )
    finally:
        loop.close()
