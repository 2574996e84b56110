"""CPU per SNS Publish (the SMS and push channels' one call): aiobotocore vs notifier's fast
client vs a bare aiohttp POST (the floor).

``notifier`` is :class:`notifier.aws.SNSClient` on its default transport (asyncio protocol +
llhttp through httptools); ``aiobotocore`` the sns client with one attempt per call, as
``channels/sns_common.py`` builds it; ``aiohttp-floor`` the same pre-built form body POSTed
unsigned, the XML answer parsed. Half the publishes are SMS (``PhoneNumber``, the SMS type
attribute), half push (``TargetArn``, ``MessageStructure=json``), as the channels send them.

Each round publishes N messages at concurrency 64 from one event loop to a zero-latency SNS
stub in a child process (its CPU is not counted; ``python benches/test_send_sns.py`` runs it
alone and prints ``READY <url>``); the timer is ``time.process_time``, so the mean is CPU
seconds per N publishes. ``extra_info["cpu_per_publish_us"]`` is the figure report.py compares.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web

CONCURRENCY = 64
LIBS = ["aiobotocore", "notifier", "aiohttp-floor"]
_TOPIC = "arn:aws:sns:us-east-1:123456789012"
_ENDPOINT = f"{_TOPIC}:endpoint/GCM/notifier-android/5e3a7b9c-1d2f-3a4b-8c9d-0e1f2a3b4c5d"
_PUBLISH_XML = (
    '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">\n'
    "  <PublishResult>\n    <MessageId>stub-{id}</MessageId>\n  </PublishResult>\n"
    "  <ResponseMetadata>\n    <RequestId>stub-request</RequestId>\n  </ResponseMetadata>\n"
    "</PublishResponse>\n"
)


def _sms(i: int) -> dict[str, Any]:
    return {
        "PhoneNumber": f"+1555555{i:04d}",
        "Message": f"Ada Lovelace viewed your profile ({i}). Reply STOP to opt out.",
        "MessageAttributes": {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        },
    }


def _push(i: int) -> dict[str, Any]:
    title = "Ada Lovelace viewed your profile"
    gcm = {"notification": {"title": title, "body": f"#{i}"}}
    return {
        "TargetArn": _ENDPOINT,
        "MessageStructure": "json",
        "Message": json.dumps({"default": title, "GCM": json.dumps(gcm)}),
    }


MESSAGES = [_sms(i) if i % 2 == 0 else _push(i) for i in range(CONCURRENCY)]
Sender = Callable[[dict[str, Any]], Awaitable[str]]


# -- the zero-latency SNS stub (child process) ------------------------------------------------


def make_app() -> web.Application:
    """Answers ``Action=Publish`` like SNS (a ``PublishResponse``); counts publishes by kind."""
    counts: Counter[str] = Counter()

    async def root(request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode("ascii"))
        if form.get("Action") != ["Publish"]:
            return web.Response(status=400, text="unsupported action")
        counts["sns.Publish"] += 1
        counts["sns.Publish.sms" if "PhoneNumber" in form else "sns.Publish.target"] += 1
        body = _PUBLISH_XML.format(id=uuid.uuid4())
        return web.Response(
            text=body, content_type="text/xml", headers={"x-amzn-RequestId": "stub-request"}
        )

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(dict(counts))

    app = web.Application()
    app.router.add_post("/", root)
    app.router.add_get("/_stub/stats", stats)
    return app


async def _serve() -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


class _Stub:
    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_stub/stats", timeout=10) as resp:
            return dict(json.load(resp))


@pytest.fixture(scope="module")
def sns_stub() -> Iterator[_Stub]:
    """The SNS stub in a child process (its CPU is not charged to the benchmark)."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"SNS stub failed to start: {line!r}")
        yield _Stub(line.split(" ", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


# -- the benchmark ----------------------------------------------------------------------------


async def _sender(lib: str, url: str, stack: AsyncExitStack) -> Sender:
    if lib == "aiobotocore":
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        client = await stack.enter_async_context(
            get_session().create_client(
                "sns",
                endpoint_url=url,
                config=AioConfig(
                    retries={"total_max_attempts": 1}, max_pool_connections=CONCURRENCY
                ),
            )
        )

        async def via_sdk(params: dict[str, Any]) -> str:
            return str((await client.publish(**params))["MessageId"])

        return via_sdk
    from notifier.aws import SNSClient, serialize_publish

    if lib == "notifier":
        fast = await stack.enter_async_context(
            SNSClient(endpoint_url=url, max_connections=CONCURRENCY)
        )

        async def via_fast(params: dict[str, Any]) -> str:
            return str((await fast.publish(**params))["MessageId"])

        return via_fast
    # The floor: the same pre-built body POSTed unsigned, the XML answer parsed.
    session = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
    )
    bodies = {id(p): serialize_publish(p) for p in MESSAGES}
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    ns = "{http://sns.amazonaws.com/doc/2010-03-31/}"

    async def floor(params: dict[str, Any]) -> str:
        async with session.post(url + "/", data=bodies[id(params)], headers=headers) as resp:
            root = ET.fromstring(await resp.read())
            return str(root.findtext(f"{ns}PublishResult/{ns}MessageId"))

    return floor


async def _burst(send: Sender, n: int) -> int:
    done = 0

    async def worker(w: int) -> None:
        nonlocal done
        for _ in range(w, n, CONCURRENCY):
            await send(MESSAGES[w])
            done += 1

    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    return done


@pytest.mark.benchmark(group="send-sns", timer=time.process_time)
@pytest.mark.parametrize("lib", LIBS)
def test_publish_cpu(
    benchmark: Any, lib: str, sns_stub: _Stub, scale: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stub_aws import stub_env

    for k, v in stub_env(sns_stub.url).items():
        monkeypatch.setenv(k, v)
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        send = loop.run_until_complete(_sender(lib, sns_stub.url, stack))
        before = sns_stub.stats().get("sns.Publish", 0)
        # Correct first: an SMS and a push publish reach the stub and return its MessageId.
        assert loop.run_until_complete(send(MESSAGES[0])).startswith("stub-")
        assert loop.run_until_complete(send(MESSAGES[1])).startswith("stub-")
        assert sns_stub.stats()["sns.Publish"] == before + 2
        n = scale.send_n
        benchmark.pedantic(
            lambda: loop.run_until_complete(_burst(send, n)),
            rounds=scale.send_rounds,
            iterations=1,
            warmup_rounds=1,
        )
        assert sns_stub.stats()["sns.Publish"] == before + 2 + n * (scale.send_rounds + 1)
        benchmark.extra_info.update(
            lib=lib,
            metric="cpu_per_publish_us",
            cpu_per_publish_us=round(benchmark.stats.stats.mean / n * 1e6, 2),
            publishes_per_round=n,
            concurrency=CONCURRENCY,
        )
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()


if __name__ == "__main__":
    asyncio.run(_serve())
