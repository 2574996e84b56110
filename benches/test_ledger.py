"""CPU per ledger write call: aiobotocore's dynamodb client vs notifier's fast DynamoDB client.

The ledger's calls as the pipeline makes them: one conditional PutItem per claim (ledger
v2) and BatchWriteItem of 25 commits, plus TransactWriteItems of 100 conditional claims (the
v1 claim, kept as a reference: a transactional item costs 2 write units), 16 calls in flight,
against the zero-latency stub. Timer: ``time.process_time``; figure: ``cpu_per_item_us``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from notifier.aws import DynamoDBClient
from stub_aws import StubAws

CONCURRENCY = 16
TABLE = "notifier-ledger"


def _claims(n: int) -> dict[str, Any]:
    return {
        "TransactItems": [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "pk": {"S": f"email#evt-0000-{i:09d}"},
                        "state": {"S": "PENDING"},
                        "owner": {"S": "5f2c0e9a1b3d"},
                        "lease_until": {"N": "1767225900"},
                        "expires_at": {"N": "1767830400"},
                    },
                    "ConditionExpression": (
                        "attribute_not_exists(pk) OR (#s = :p AND lease_until < :now)"
                    ),
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": {
                        ":p": {"S": "PENDING"},
                        ":now": {"N": "1767225600"},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for i in range(n)
        ]
    }


def _commits(n: int) -> dict[str, Any]:
    return {
        "RequestItems": {
            TABLE: [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": f"email#evt-0000-{i:09d}"},
                            "state": {"S": "SENT"},
                            "message_id": {"S": f"0100018c-{i:08x}-000000"},
                            "expires_at": {"N": "1767830400"},
                        }
                    }
                }
                for i in range(n)
            ]
        }
    }


def _claim() -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "Item": {
            "pk": {"S": "email#evt-0000-000000042"},
            "state": {"S": "SENDING"},
            "owner": {"S": "5f2c0e9a1b3d/req/1"},
            "lease_expires_at": {"N": "1767225900.000"},
            "claimed_at": {"N": "1767225600.000"},
            "expires_at": {"N": "1767830400"},
        },
        "ConditionExpression": (
            "attribute_not_exists(pk) OR #o = :owner"
            " OR (lease_expires_at < :now AND #s IN (:pending, :takeover))"
        ),
        "ExpressionAttributeNames": {"#s": "state", "#o": "owner"},
        "ExpressionAttributeValues": {
            ":pending": {"S": "PENDING"},
            ":takeover": {"S": "SENDING"},
            ":owner": {"S": "5f2c0e9a1b3d/req/1"},
            ":now": {"N": "1767225600.000"},
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ReturnConsumedCapacity": "TOTAL",
    }


CALLS = {
    "claim-1": ("put_item", _claim(), 1),
    "transact-100": ("transact_write_items", _claims(100), 100),
    "batch-write-25": ("batch_write_item", _commits(25), 25),
}


async def _client(lib: str, url: str, stack: AsyncExitStack) -> Any:
    if lib == "notifier":
        return await stack.enter_async_context(
            DynamoDBClient(endpoint_url=url, max_connections=CONCURRENCY)
        )
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    return await stack.enter_async_context(
        get_session().create_client(
            "dynamodb",
            endpoint_url=url,
            config=AioConfig(max_pool_connections=CONCURRENCY, retries={"mode": "standard"}),
        )
    )


async def _burst(call: Callable[[], Awaitable[Any]], n: int) -> None:
    async def worker(w: int) -> None:
        for _ in range(w, n, CONCURRENCY):
            await call()

    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))


@pytest.mark.benchmark(timer=time.process_time)
@pytest.mark.parametrize("lib", ["notifier", "aiobotocore"])
@pytest.mark.parametrize("kind", sorted(CALLS))
def test_ledger_call_cpu(
    benchmark: Any, kind: str, lib: str, stub_environ: StubAws, scale: Any
) -> None:
    benchmark.group = f"ledger-{kind}"
    method, params, items = CALLS[kind]
    n = 40 if scale.quick else 120
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        client = loop.run_until_complete(_client(lib, stub_environ.url, stack))

        async def call() -> Any:
            return await getattr(client, method)(**params)

        # Correct first: the call reaches the stub with every item.
        result = loop.run_until_complete(call())
        assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
        op = "".join(w.title() for w in method.split("_"))
        counted = f"dynamodb.{op}.items" if items > 1 else f"dynamodb.{op}"
        assert stub_environ.stats()[counted] == items
        benchmark.pedantic(
            lambda: loop.run_until_complete(_burst(call, n)),
            rounds=scale.send_rounds,
            iterations=1,
            warmup_rounds=1,
        )
        assert stub_environ.stats()[f"dynamodb.{op}"] == 1 + n * (scale.send_rounds + 1)
        benchmark.extra_info.update(
            lib=lib,
            metric="cpu_per_item_us",
            cpu_per_item_us=round(benchmark.stats.stats.mean / (n * items) * 1e6, 2),
            cpu_per_call_us=round(benchmark.stats.stats.mean / n * 1e6, 1),
            items_per_call=items,
        )
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
