"""Factories for the local-AWS tests: provisioned resources, seeded streams, ESMs, stub handlers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from notifier.local.context import LambdaContext
from notifier.local.esm import EsmConfig, StreamEsm
from notifier.local.provision import Resources, provision, seed_events


@pytest.fixture
def resources(aws: str) -> Resources:
    """GIVEN the pipeline's resources provisioned on the embedded AWS."""
    return provision()


@pytest.fixture
def seed(resources: Resources) -> Callable[..., list[str]]:
    """Factory: write ``n`` sample events; returns the stream's sequence numbers so far."""

    def _seed(n: int, *, start: int = 0, users: int = 10) -> list[str]:
        seed_events(n, users=users, start=start)
        return stream_sequence_numbers(resources.stream_arn)

    return _seed


def stream_sequence_numbers(stream_arn: str) -> list[str]:
    """Every sequence number in the stream (read independently of the emulator)."""
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    it = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seqs: list[str] = []
    while it:
        resp = streams.get_records(ShardIterator=it, Limit=1000)
        if not resp["Records"]:
            break
        seqs.extend(r["dynamodb"]["SequenceNumber"] for r in resp["Records"])
        it = resp.get("NextShardIterator")
    return seqs


@dataclass
class StubHandler:
    """A handler stub: records every call; ``respond(seqs, call_no)`` decides the answer
    (return a response, or raise)."""

    respond: Callable[[list[str], int], Any] = lambda seqs, n: {"batchItemFailures": []}
    calls: list[list[str]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    contexts: list[LambdaContext] = field(default_factory=list)

    def __call__(self, event: Any, context: LambdaContext) -> Any:
        seqs = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.calls.append(seqs)
        self.events.append(event)
        self.contexts.append(context)
        return self.respond(seqs, len(self.calls))

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.calls]


@pytest.fixture
def make_esm(resources: Resources) -> Callable[..., StreamEsm]:
    """Factory: an emulated ESM on the provisioned stream, with the given handler and settings."""

    def _make(handler: Any, **settings: Any) -> StreamEsm:
        extra = {k: settings.pop(k) for k in ("clock", "sleep") if k in settings}
        return StreamEsm(
            boto3.client("dynamodbstreams"),
            resources.stream_arn,
            handler,
            EsmConfig(**settings),
            sqs=boto3.client("sqs"),
            **extra,
        )

    return _make


@dataclass
class FakeTime:
    """An injectable clock (epoch seconds, frozen at creation) and a sleep that only advances
    it; ``on_sleep`` runs on every sleep (e.g. to write more records meanwhile)."""

    base: float = field(default_factory=time.time)
    offset: float = 0.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Callable[[int], None] | None = None

    def clock(self) -> float:
        return self.base + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()
