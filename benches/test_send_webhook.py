"""CPU per signed webhook POST: notifier's webhook channel vs a plain aiohttp POST of the same
signed request.

Both sides do the same work per notification: encode the JSON envelope from the record
(msgspec), sign it (Standard Webhooks, HMAC-SHA256), POST it, read the status.

- ``notifier``: ``WebhookChannel.send`` as the core calls it (the retry loop, the deadline's
  per-attempt timeout, the verdict) over its ``RawHttpTransport`` pool (llhttp).
- ``aiohttp``: ``encode_envelope`` + ``WebhookSigner.headers`` + ``aiohttp.ClientSession.post``
  (a 64-connection ``TCPConnector``), response read, status checked.

Each round sends N notifications at concurrency 64 from one event loop to the local receiver
(``notifier.local.webhook_receiver``) in a child process, so its CPU (it verifies every
signature with the reference ``standardwebhooks`` library) is not counted; the timer is
``time.process_time``. ``extra_info["cpu_per_send_us"]`` is the figure report.py compares.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

import notifier
from notifier.channels import ChannelContext
from notifier.channels.base import Message, Outcome
from notifier.channels.signing import WebhookSigner, generate_secret, message_id
from notifier.channels.webhook import build_webhook_channel, encode_envelope
from notifier.retry import Backoff, Deadline

CONCURRENCY = 64
LIBS = ["notifier", "aiohttp"]
SECRET = generate_secret()


class _Record:
    event_name = "INSERT"
    old_image = None
    approximate_creation_time = 1_700_000_000.0

    def __init__(self, i: int) -> None:
        self.new_image = {
            "event_type": "profile_view",
            "user": {"id": f"u-{i}", "email": f"user-{i}@example.com", "name": "Grace Hopper"},
            "actor": {"id": "a-1", "name": "Ada Lovelace"},
            "viewed_at": "2026-12-05T10:00:00Z",
            "count": i,
        }


MESSAGES = [
    Message(
        key=f"hooks#evt-{i:08d}",
        recipient="",
        sender="",
        rendered=None,
        event_type="profile_view",
        record=_Record(i),
    )
    for i in range(CONCURRENCY)
]
Sender = Callable[[Message], Awaitable[None]]


class Receiver:
    """The verifying receiver in a child process (``READY <url>`` on its stdout)."""

    def __init__(self) -> None:
        src = os.path.dirname(os.path.dirname(os.path.abspath(notifier.__file__)))
        env = {**os.environ, "PYTHONPATH": src, "WEBHOOK_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "notifier.local.webhook_receiver"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"receiver failed to start: {line!r}")
        self.url = line.split(" ", 1)[1]
        self.base = self.url.rsplit("/", 1)[0]

    def stats(self) -> dict[str, Any]:
        import json

        with urllib.request.urlopen(f"{self.base}/_receiver/stats", timeout=30) as resp:
            return dict(json.load(resp))

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.base}/_receiver/reset", method="POST")
        with urllib.request.urlopen(req, timeout=30):
            pass

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


async def _sender(lib: str, url: str, stack: AsyncExitStack) -> Sender:
    if lib == "notifier":
        os.environ["NOTIFIER_BENCH_WEBHOOK_SECRET"] = SECRET
        ctx = ChannelContext(
            name="hooks",
            options={
                "kind": "webhook",
                "url": url,
                "secret": "env:NOTIFIER_BENCH_WEBHOOK_SECRET",
                "allowed_hosts": ["127.0.0.1"],
            },
            stack=stack,
            session=None,
            client_kwargs={},
            sender="",
            concurrency=CONCURRENCY,
            backoff=Backoff(),
            unknown_outcome="retry",
        )
        channel = await build_webhook_channel(ctx)
        deadline = Deadline.after(3600)

        async def via_channel(msg: Message) -> None:
            result = await channel.send(msg, deadline, reserved=True)
            if result.outcome is not Outcome.SENT or result.attempts != 1:
                raise AssertionError(result)

        return via_channel
    signer = WebhookSigner([SECRET])
    session = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
    )
    static = {"Content-Type": "application/json", "User-Agent": "bench"}

    async def via_aiohttp(msg: Message) -> None:
        body = encode_envelope(msg)
        headers = {**static, **signer.headers(message_id(msg.key), body)}
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            if not 200 <= resp.status < 300:
                raise AssertionError(resp.status)

    return via_aiohttp


async def _burst(send: Sender, n: int) -> int:
    done = 0

    async def worker(w: int) -> None:
        nonlocal done
        for _ in range(w, n, CONCURRENCY):
            await send(MESSAGES[w])
            done += 1

    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    return done


@pytest.mark.benchmark(group="send-webhook", timer=time.process_time)
@pytest.mark.parametrize("lib", LIBS)
def test_send_webhook_cpu(benchmark: Any, lib: str, receiver: Receiver, scale: Any) -> None:
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    receiver.reset()
    try:
        send = loop.run_until_complete(_sender(lib, receiver.url, stack))
        # Correct first: one delivery reaches the receiver and verifies.
        loop.run_until_complete(send(MESSAGES[0]))
        assert receiver.stats()["accepted"] == 1
        n = scale.send_n
        benchmark.pedantic(
            lambda: loop.run_until_complete(_burst(send, n)),
            rounds=scale.send_rounds,
            iterations=1,
            warmup_rounds=1,
        )
        stats = receiver.stats()
        assert stats["requests"] == stats["accepted"] == 1 + n * (scale.send_rounds + 1)
        assert stats["bad_signatures"] == 0
        benchmark.extra_info.update(
            lib=lib,
            metric="cpu_per_send_us",
            cpu_per_send_us=round(benchmark.stats.stats.mean / n * 1e6, 2),
            sends_per_round=n,
            concurrency=CONCURRENCY,
            receiver_verifier=stats["verifier"],
        )
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
