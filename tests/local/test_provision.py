"""Seeding: BatchWriteItem in chunks of 25, UnprocessedItems retried, the sample contract kept."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from notifier.local.provision import ProvisionError, Resources, seed_events


class Throttled:
    """Wraps a real DynamoDB client: the first ``refusals`` BatchWriteItem calls write only the
    first ``keep`` items and return the rest as UnprocessedItems (as DynamoDB does under load)."""

    def __init__(self, real: Any, refusals: int, keep: int = 5) -> None:
        self.real = real
        self.refusals = refusals
        self.keep = keep
        self.sizes: list[int] = []

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        self.sizes.append(len(requests))
        if self.refusals > 0:
            self.refusals -= 1
            if self.keep:
                self.real.batch_write_item(RequestItems={table: requests[: self.keep]})
            return {"UnprocessedItems": {table: requests[self.keep :]}}
        return dict(self.real.batch_write_item(RequestItems=RequestItems))


def test_seeding_writes_chunks_of_25_and_retries_unprocessed_items(resources: Resources) -> None:
    # GIVEN a DynamoDB that leaves items unprocessed on the first two calls
    real = boto3.client("dynamodb")
    client = Throttled(real, refusals=2)
    sleeps: list[float] = []
    # WHEN 60 events are seeded
    assert seed_events(60, users=7, client=client, sleep=sleeps.append) == 60
    # THEN chunks were at most 25, the leftovers were re-sent with backoff, all 60 are there
    assert client.sizes == [25, 20, 15, 25, 10]
    assert sleeps == [0.05, 0.1]
    items = real.scan(TableName=resources.events_table)["Items"]
    assert len(items) == 60
    assert {i["pk"]["S"] for i in items} == {f"USER#{u}" for u in range(7)}
    emails = {i["user"]["M"]["email"]["S"] for i in items}
    assert emails == {f"user-{u}@example.com" for u in range(7)}


def test_seeding_gives_up_after_max_attempts(resources: Resources) -> None:
    # GIVEN a DynamoDB that never processes everything
    client = Throttled(boto3.client("dynamodb"), refusals=100, keep=0)
    # WHEN seeding / THEN it fails with a typed error instead of looping forever
    with pytest.raises(ProvisionError, match="unprocessed"):
        seed_events(10, client=client, max_attempts=3, sleep=lambda s: None)


def test_concurrent_seeding_writes_every_event_once_and_reports_progress(
    resources: Resources,
) -> None:
    # GIVEN a DynamoDB that leaves items unprocessed on its first three calls
    real = boto3.client("dynamodb")
    client = Throttled(real, refusals=3)
    progress: list[int] = []
    # WHEN 260 events are seeded with 4 BatchWriteItem calls in flight
    written = seed_events(
        260,
        users=9,
        client=client,
        sleep=lambda s: None,
        concurrency=4,
        on_progress=progress.append,
    )
    # THEN every event is in the table exactly once (ids 0..259), leftovers included
    assert written == 260
    items = real.scan(TableName=resources.events_table)["Items"]
    assert sorted(int(i["event_id"]["S"].rsplit("-", 1)[-1]) for i in items) == list(range(260))
    # AND progress rose chunk by chunk to the total
    assert progress == sorted(progress)
    assert progress[-1] == 260
    assert len(progress) == 11  # ceil(260 / 25) chunks


def test_seeding_refuses_a_concurrency_below_one(resources: Resources) -> None:
    # GIVEN / WHEN seeding with no writer at all / THEN it is refused
    with pytest.raises(ValueError, match="concurrency"):
        seed_events(10, concurrency=0)
