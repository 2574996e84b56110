"""The ledger state machine against DynamoDB (moto over HTTP)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiobotocore.session import get_session

from notifier.ledger import SENT, ClaimStatus, Commit, Ledger
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
    ledger: Ledger, keys: list[str], owner: str, *, lease: float = 30, takeover: bool = True
) -> Awaitable[Any]:
    return ledger.claim(
        keys,
        owner=owner,
        lease_until=ledger.clock() + lease,
        deadline=Deadline.after(30),
        takeover_unknown=takeover,
    )


def test_claims_are_batched_and_exclusive(with_ledger: Run) -> None:
    # GIVEN 110 fresh keys
    keys = [f"email#evt-{i}" for i in range(110)]

    async def scenario(ledger: Ledger) -> tuple[Any, Any, dict[str, int]]:
        # WHEN owner A claims them all and owner B tries the same keys
        first = await _claim(ledger, keys, "A")
        calls_a = dict(ledger.calls)
        second = await _claim(ledger, keys, "B")
        return first, second, calls_a

    first, second, calls = with_ledger(scenario)
    # THEN A gets all of them in 2 calls (100 + 10) and B sees them in flight
    assert {r.status for r in first.values()} == {ClaimStatus.CLAIMED}
    assert calls == {"TransactWriteItems": 2}
    assert {r.status for r in second.values()} == {ClaimStatus.IN_FLIGHT}


def test_committed_keys_are_duplicates_and_mixed_batches_split(with_ledger: Run) -> None:
    async def scenario(ledger: Ledger) -> Any:
        # GIVEN two keys SENT and FAILED
        await _claim(ledger, ["k#1", "k#2"], "A")
        await ledger.commit(
            [Commit("k#1", SENT, message_id="m-1"), Commit("k#2", "FAILED", error_code="X")],
            owner="A",
            deadline=Deadline.after(30),
        )
        # WHEN another owner claims them together with a new key
        return await _claim(ledger, ["k#1", "k#2", "k#3"], "B"), await ledger.get("k#1")

    result, item = with_ledger(scenario)
    # THEN the committed ones are duplicates (with the message id) and the new one is claimed
    assert result["k#1"].status is ClaimStatus.DUPLICATE
    assert result["k#1"].message_id == "m-1"
    assert result["k#2"].status is ClaimStatus.DUPLICATE
    assert result["k#3"].status is ClaimStatus.CLAIMED
    assert item["state"] == "SENT"
    assert int(item["expires_at"]) > time.time() + 86_400


def test_expired_pending_is_reclaimed_but_expired_sending_follows_the_policy(
    with_ledger: Run,
) -> None:
    async def setup(ledger: Ledger) -> None:
        # GIVEN a dead owner's PENDING claim and a dead owner's SENDING mark, leases 1 s
        await _claim(ledger, ["k#p", "k#s"], "dead", lease=1)
        await ledger.mark_sending(
            ["k#s"], owner="dead", lease_until=ledger.clock() + 1, deadline=Deadline.after(30)
        )

    with_ledger(setup)

    async def at_most_once(ledger: Ledger) -> Any:
        return await _claim(ledger, ["k#p", "k#s"], "B", takeover=False)

    async def at_least_once(ledger: Ledger) -> Any:
        return await _claim(ledger, ["k#s"], "C", takeover=True)

    # WHEN claimed after the leases expired (clock 60 s ahead)
    amo = with_ledger(at_most_once, skew=60)
    alo = with_ledger(at_least_once, skew=60)
    # THEN PENDING (nothing sent) is simply reclaimed; SENDING is unknown -> policy decides
    assert amo["k#p"].status is ClaimStatus.CLAIMED
    assert amo["k#s"].status is ClaimStatus.UNKNOWN_PRIOR
    assert alo["k#s"].status is ClaimStatus.CLAIMED


def test_release_frees_only_our_own_claims(with_ledger: Run) -> None:
    async def scenario(ledger: Ledger) -> Any:
        # GIVEN A holds k#1, B holds k#2
        await _claim(ledger, ["k#1"], "A")
        await _claim(ledger, ["k#2"], "B")
        # WHEN A releases both
        await ledger.release(["k#1", "k#2"], owner="A", deadline=Deadline.after(5))
        # THEN k#1 is free for C, k#2 still B's
        return await _claim(ledger, ["k#1", "k#2"], "C")

    result = with_ledger(scenario)
    assert result["k#1"].status is ClaimStatus.CLAIMED
    assert result["k#2"].status is ClaimStatus.IN_FLIGHT


def test_claim_rejects_repeated_keys(with_ledger: Run) -> None:
    # GIVEN a key twice WHEN claimed THEN ValueError (a transaction may not touch a key twice)
    with pytest.raises(ValueError, match="distinct"):
        with_ledger(lambda ledger: _claim(ledger, ["k#1", "k#1"], "A"))
