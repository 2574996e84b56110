"""The ledger state machine against DynamoDB (moto over HTTP)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiobotocore.session import get_session

from notifier.ledger import (
    FAILED,
    MAX_KEY_BYTES,
    PENDING,
    SENT,
    ClaimResult,
    ClaimStatus,
    Commit,
    Ledger,
    item_write_units,
    ledger_key,
)
from notifier.retry import Deadline

Run = Callable[[Callable[[Ledger], Awaitable[Any]]], Any]


@pytest.fixture
def with_ledger(provisioned: dict[str, str]) -> Run:
    """Factory: run ``fn(ledger)`` on a fresh aiobotocore client; the clock can be shifted."""

    def run(fn: Callable[[Ledger], Awaitable[Any]], *, skew: float = 0.0) -> Any:
        async def main() -> Any:
            async with get_session().create_client("dynamodb") as client:
                ledger = Ledger(client, "notifier-ledger", clock=lambda: time.time() + skew)
                return await fn(ledger)

        return asyncio.run(main())

    return run  # type: ignore[return-value]


def _claim(
    ledger: Ledger,
    key: str,
    owner: str,
    *,
    lease: float = 30,
    takeover: bool = True,
    state: str = "SENDING",
) -> Awaitable[ClaimResult]:
    return ledger.claim(
        key,
        owner=owner,
        lease_until=ledger.clock() + lease,
        deadline=Deadline.after(30),
        takeover_unknown=takeover,
        state=state,
    )


async def _commit(ledger: Ledger, owner: str, *commits: Commit) -> list[bool]:
    writer = ledger.writer(owner=owner, deadline=Deadline.after(30))
    futures = [writer.commit(c) for c in commits]
    await writer.close()
    return [f.result() for f in futures]


def test_a_claim_is_one_conditional_write_and_exclusive(with_ledger: Run) -> None:
    async def scenario(ledger: Ledger) -> tuple[ClaimResult, ClaimResult, dict[str, int], int]:
        # WHEN owner A claims a fresh key and owner B tries the same key
        first = await _claim(ledger, "email#evt-1", "A")
        calls_a = dict(ledger.calls)
        units_a = ledger.write_units
        return first, await _claim(ledger, "email#evt-1", "B"), calls_a, units_a

    first, second, calls, units = with_ledger(scenario)
    # THEN A gets it with one PutItem (1 write unit) and B sees it in flight
    assert first.status is ClaimStatus.CLAIMED
    assert calls == {"PutItem": 1}
    assert units == 1
    assert second.status is ClaimStatus.IN_FLIGHT


def test_committed_keys_are_duplicates_at_one_write_unit(with_ledger: Run) -> None:
    async def scenario(ledger: Ledger) -> Any:
        # GIVEN two keys committed SENT and FAILED (one BatchWriteItem)
        await _claim(ledger, "k#1", "A")
        await _claim(ledger, "k#2", "A")
        sent = Commit("k#1", SENT, message_id="m-1")
        durable = await _commit(ledger, "A", sent, Commit("k#2", FAILED, error_code="X"))
        before = ledger.write_units
        # WHEN another owner claims them
        results = [await _claim(ledger, k, "B") for k in ("k#1", "k#2")]
        return durable, results, ledger.write_units - before, await ledger.get("k#1"), ledger.calls

    durable, (one, two), units, item, calls = with_ledger(scenario)
    # THEN the commits were durable, in one batch write
    assert durable == [True, True]
    assert calls["BatchWriteItem"] == 1
    # AND both are duplicates (with the message id), each costing its failed conditional write
    assert one.status is ClaimStatus.DUPLICATE
    assert one.message_id == "m-1"
    assert two.status is ClaimStatus.DUPLICATE
    assert units == 2
    assert item["state"] == "SENT"
    assert int(item["expires_at"]) > time.time() + 86_400


def test_expired_pending_is_reclaimed_but_expired_sending_follows_the_policy(
    with_ledger: Run,
) -> None:
    async def setup(ledger: Ledger) -> None:
        # GIVEN a dead owner's PENDING claim (poison) and a dead owner's SENDING claim, leases 1 s
        await _claim(ledger, "k#p", "dead", lease=1, state=PENDING)
        await _claim(ledger, "k#s", "dead", lease=1)

    with_ledger(setup)

    async def at_most_once(ledger: Ledger) -> Any:
        return [await _claim(ledger, k, "B", takeover=False) for k in ("k#p", "k#s")]

    async def at_least_once(ledger: Ledger) -> Any:
        return await _claim(ledger, "k#s", "C", takeover=True)

    # WHEN claimed after the leases expired (clock 60 s ahead)
    amo = with_ledger(at_most_once, skew=60)
    alo = with_ledger(at_least_once, skew=60)
    # THEN PENDING (nothing sent) is simply reclaimed; SENDING is unknown -> the policy decides
    assert amo[0].status is ClaimStatus.CLAIMED
    assert amo[1].status is ClaimStatus.UNKNOWN_PRIOR
    assert alo.status is ClaimStatus.CLAIMED


def test_release_gives_the_claim_back_at_once(with_ledger: Run) -> None:
    async def scenario(ledger: Ledger) -> Any:
        # GIVEN A holds k#1 with a long lease
        await _claim(ledger, "k#1", "A", lease=600)
        # WHEN A releases it
        writer = ledger.writer(owner="A", deadline=Deadline.after(5))
        released = writer.release("k#1")
        await writer.close()
        # THEN C can claim it right away
        return released.result(), await _claim(ledger, "k#1", "C")

    released, result = with_ledger(scenario)
    assert released is True
    assert result.status is ClaimStatus.CLAIMED


def test_a_key_the_table_refuses_touches_that_key_only(with_ledger: Run) -> None:
    async def scenario(ledger: Ledger) -> Any:
        # GIVEN a raw key over DynamoDB's 2,048-byte partition key limit (not via ledger_key)
        bad = "email#" + "x" * 3000
        # WHEN it and a good key are claimed
        return await _claim(ledger, bad, "A"), await _claim(ledger, "email#ok", "A")

    bad, good = with_ledger(scenario)
    # THEN only the bad one is refused, as a validation error of its own
    assert bad.status is ClaimStatus.REJECTED
    assert bad.code == "ValidationException"
    assert good.status is ClaimStatus.CLAIMED


def test_long_dedup_keys_are_hashed_stably_and_short_ones_kept() -> None:
    # GIVEN a short and a 5,000-character dedup key
    short = ledger_key("email", "evt-1")
    long_key = "é" * 5000
    # WHEN turned into ledger keys THEN the short one is kept, the long one hashed (same input,
    # same key: dedup still holds), under the size that keeps an item at one write unit
    assert short == "email#evt-1"
    hashed = ledger_key("email", long_key)
    assert hashed == ledger_key("email", long_key)
    assert hashed.startswith("email#sha256:")
    assert len(hashed.encode()) <= MAX_KEY_BYTES
    assert hashed != ledger_key("email", long_key + "!")


def test_write_units_follow_dynamodbs_item_size_rule() -> None:
    # GIVEN items of about 100 bytes, 1,500 bytes and 3 KB
    small = {"pk": {"S": "email#evt-1"}, "state": {"S": "SENT"}, "expires_at": {"N": "1700000000"}}
    mid = {**small, "reason": {"S": "r" * 1500}}
    big = {**small, "reason": {"S": "é" * 1500}}  # 3,000 bytes in UTF-8
    # THEN 1 unit per started KB
    assert item_write_units(small) == 1
    assert item_write_units(mid) == 2
    assert item_write_units(big) == 3


def test_a_hung_ledger_call_is_cut_at_the_deadline() -> None:
    # GIVEN a DynamoDB client that never answers
    class Hung:
        async def put_item(self, **_: Any) -> Any:
            await asyncio.sleep(3600)

    ledger = Ledger(Hung(), "t", call_timeout_s=30)

    async def short() -> ClaimResult:
        return await ledger.claim(
            "k#1",
            owner="A",
            lease_until=time.time() + 5,
            deadline=Deadline.after(0.3),
            takeover_unknown=True,
        )

    # WHEN claimed with 0.3 s left THEN the claim gives up with an error instead of hanging
    result = asyncio.run(short())
    assert result.status is ClaimStatus.ERROR


def test_closing_the_writer_returns_when_a_write_has_just_finished() -> None:
    # GIVEN a writer whose flush task finished in this very loop iteration (its done callback
    # scheduled, not yet run): on CPython 3.12+ gather() of finished tasks does not yield
    class Instant:
        async def batch_write_item(self, **_: Any) -> Any:
            return {"UnprocessedItems": {}}

    ledger = Ledger(Instant(), "t")

    async def scenario() -> bool:
        writer = ledger.writer(owner="A", deadline=Deadline.after(5))
        durable = writer.commit(Commit("k#1", SENT, message_id="m"))
        writer._flush()
        await asyncio.sleep(0)  # the write task runs to its end
        await writer.close()  # WHEN the writer is closed
        return durable.result()

    # THEN it returns, with the write durable (in a thread: a spinning loop never yields, so
    # only a join with a timeout can tell)
    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(scenario())), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "LedgerWriter.close() spun instead of returning"
    assert result == [True]
