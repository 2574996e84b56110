"""The dedup ledger: one DynamoDB item per notification, keyed ``"<channel>#<dedup key>"``.

States (attribute ``state``)::

    (absent) --claim--> PENDING --mark_sending--> SENDING --commit--> SENT   (message_id)
                           |                         |           \\-> FAILED (error_code, reason)
                           +--release (transient)----+--release--> (absent)

- claim: ``TransactWriteItems`` of conditional updates, 100 keys per call. The condition lets a
  claim through only when the item is absent, or PENDING with an expired lease (the previous
  owner died before sending, so nothing was sent), or already ours. A transaction is all or
  nothing, so on ``TransactionCanceledException`` the per-item ``CancellationReasons`` (with
  ``ReturnValuesOnConditionCheckFailure=ALL_OLD``) say which keys lost, and the call is repeated
  for the rest. Batches without duplicates cost one call per 100 notifications.
- SENDING with an expired lease means its owner died after it may have sent: the outcome is
  unknown and the caller's policy decides (take it over and send again, or assume sent).
- mark_sending / commit: ``BatchWriteItem`` puts, 25 per call, unprocessed items retried. They
  are unconditional because the writer holds the lease: the lease outlives the invocation that
  took it (remaining time + grace), and no send or commit starts after that invocation's
  deadline, so no other owner can hold the key meanwhile.
- release: conditional deletes (``owner`` must still be us) in transactions of 100.

Every item carries ``expires_at`` (DynamoDB TTL, epoch seconds).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from notifier.retry import Backoff, Deadline

__all__ = ["ClaimResult", "ClaimStatus", "Commit", "Ledger", "LedgerError"]

PENDING, SENDING, SENT, FAILED = "PENDING", "SENDING", "SENT", "FAILED"
_TRANSACT_MAX = 100
_BATCH_WRITE_MAX = 25
_MAX_ROUNDS = 8
_RETRYABLE_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "None"}
)

_CLAIM = (
    "attribute_not_exists(pk)"
    " OR (#s = :pending AND lease_expires_at < :now)"
    " OR (#s = :pending AND #o = :owner)"
)
_TAKEOVER = "#s = :sending AND lease_expires_at < :now"
_UPDATE = (
    "SET #s = :pending, #o = :owner, lease_expires_at = :lease, claimed_at = :now,"
    " expires_at = :ttl"
)


class LedgerError(RuntimeError):
    """The ledger table could not be read or written (after retries)."""


class ClaimStatus(enum.Enum):
    #: Ours now: send it.
    CLAIMED = "claimed"
    #: Already SENT or FAILED: suppress (success for the batch).
    DUPLICATE = "duplicate"
    #: Another owner holds a live lease: come back later (transient for the batch).
    IN_FLIGHT = "in_flight"
    #: A dead owner may have sent it (expired SENDING) and the policy is "assume_sent".
    UNKNOWN_PRIOR = "unknown_prior"
    #: The ledger could not be written (after retries): transient.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ClaimResult:
    status: ClaimStatus
    state: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    key: str
    state: str  # SENT | FAILED
    message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    #: "unknown" when a SENT entry records an assumed (not confirmed) send.
    outcome: str | None = None


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


class Ledger:
    """Batched claims and commits on the ledger table through an aiobotocore DynamoDB client."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        ttl_seconds: int = 7 * 86_400,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        max_claims_in_flight: int = 16,
    ) -> None:
        self.client = client
        self.table = table
        #: TransactWriteItems calls of one ``claim()`` in flight at once: each call's request
        #: (100 items of nested dicts, then its JSON) is built only when it may start, so a
        #: 10,000-record batch does not hold 100 requests in memory at once.
        self.max_claims_in_flight = max(1, max_claims_in_flight)
        self.ttl_seconds = ttl_seconds
        self.backoff = backoff or Backoff(max_attempts=6, base_s=0.02, cap_s=1.0)
        self.clock = clock
        #: calls made, by operation (for tests and metrics)
        self.calls: dict[str, int] = {}

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1

    # -- claim -------------------------------------------------------------------------------

    async def claim(
        self,
        keys: Sequence[str],
        *,
        owner: str,
        lease_until: float,
        deadline: Deadline,
        takeover_unknown: bool,
    ) -> dict[str, ClaimResult]:
        """Claim every key (distinct keys only). ``takeover_unknown``: claim expired SENDING
        entries too (policy "retry"); otherwise they come back as UNKNOWN_PRIOR."""
        if len(set(keys)) != len(keys):
            raise ValueError("claim() needs distinct keys")
        results: dict[str, ClaimResult] = {}
        chunks = [keys[i : i + _TRANSACT_MAX] for i in range(0, len(keys), _TRANSACT_MAX)]
        slots = asyncio.Semaphore(self.max_claims_in_flight)

        async def bounded(chunk: Sequence[str]) -> dict[str, ClaimResult]:
            async with slots:
                return await self._claim_chunk(
                    chunk, owner, lease_until, deadline, takeover_unknown
                )

        for part in await asyncio.gather(*(bounded(c) for c in chunks)):
            results.update(part)
        return results

    async def _claim_chunk(
        self,
        keys: Sequence[str],
        owner: str,
        lease_until: float,
        deadline: Deadline,
        takeover_unknown: bool,
    ) -> dict[str, ClaimResult]:
        results: dict[str, ClaimResult] = {}
        pending: dict[str, str] = dict.fromkeys(keys, _CLAIM)  # key -> condition
        rounds = 0
        while pending:
            rounds += 1
            now = self.clock()
            values = {
                ":pending": {"S": PENDING},
                ":owner": {"S": owner},
                ":lease": _n(lease_until),
                ":now": _n(now),
                ":ttl": {"N": str(int(now) + self.ttl_seconds)},
            }
            order = list(pending)
            items = []
            for key in order:
                cond = pending[key]
                vals = dict(values)
                if cond is _TAKEOVER:
                    vals = {**values, ":sending": {"S": SENDING}}
                items.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": key}},
                            "UpdateExpression": _UPDATE,
                            "ConditionExpression": cond,
                            "ExpressionAttributeNames": {"#s": "state", "#o": "owner"},
                            "ExpressionAttributeValues": vals,
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    }
                )
            try:
                self._count("TransactWriteItems")
                await self.client.transact_write_items(TransactItems=items)
            except Exception as exc:
                reasons = _cancellation_reasons(exc)
                if reasons is None or len(reasons) != len(order):
                    if rounds < _MAX_ROUNDS and await self.backoff.wait(rounds, deadline):
                        continue
                    results.update(dict.fromkeys(pending, ClaimResult(ClaimStatus.ERROR)))
                    return results
                retry_soon = False
                for key, reason in zip(order, reasons, strict=True):
                    code = reason.get("Code")
                    if code == "ConditionalCheckFailed":
                        verdict: ClaimResult | str | None = self._judge(
                            key, reason.get("Item"), now, takeover_unknown
                        )
                        if verdict is None:
                            pending[key] = _CLAIM
                        elif isinstance(verdict, ClaimResult):
                            results[key] = verdict
                            del pending[key]
                        else:  # "takeover"
                            pending[key] = _TAKEOVER
                    elif code in _RETRYABLE_REASONS:
                        retry_soon = retry_soon or code != "None"
                    else:
                        results[key] = ClaimResult(ClaimStatus.ERROR, state=str(code))
                        del pending[key]
                if rounds >= _MAX_ROUNDS:
                    results.update(dict.fromkeys(pending, ClaimResult(ClaimStatus.IN_FLIGHT)))
                    return results
                if retry_soon and not await self.backoff.wait(rounds, deadline):
                    results.update(dict.fromkeys(pending, ClaimResult(ClaimStatus.ERROR)))
                    return results
                continue
            results.update(dict.fromkeys(pending, ClaimResult(ClaimStatus.CLAIMED)))
            pending.clear()
        return results

    @staticmethod
    def _judge(key: str, item: Any, now: float, takeover_unknown: bool) -> ClaimResult | str | None:
        """Why a claim's condition failed: a final result, "takeover", or None (try again)."""
        if not isinstance(item, dict):
            return None
        state = item.get("state", {}).get("S")
        if state in (SENT, FAILED):
            return ClaimResult(
                ClaimStatus.DUPLICATE, state=state, message_id=item.get("message_id", {}).get("S")
            )
        try:
            lease = float(item.get("lease_expires_at", {}).get("N", "0"))
        except ValueError:
            lease = 0.0
        if lease >= now:
            return ClaimResult(ClaimStatus.IN_FLIGHT, state=state)
        if state == SENDING:
            if takeover_unknown:
                return "takeover"
            return ClaimResult(ClaimStatus.UNKNOWN_PRIOR, state=state)
        return None  # an expired PENDING: the item changed under us; the plain claim will pass

    # -- writes ------------------------------------------------------------------------------

    async def mark_sending(
        self, keys: Iterable[str], *, owner: str, lease_until: float, deadline: Deadline
    ) -> None:
        """Record that the sends of ``keys`` are about to start (the fence before a send)."""
        now = self.clock()
        ttl = {"N": str(int(now) + self.ttl_seconds)}
        puts = [
            {
                "pk": {"S": k},
                "state": {"S": SENDING},
                "owner": {"S": owner},
                "lease_expires_at": _n(lease_until),
                "claimed_at": _n(now),
                "expires_at": ttl,
            }
            for k in keys
        ]
        await self._batch_put(puts, deadline)

    async def commit(self, commits: Iterable[Commit], *, owner: str, deadline: Deadline) -> None:
        """Write the final SENT / FAILED state of each key."""
        now = self.clock()
        ttl = {"N": str(int(now) + self.ttl_seconds)}
        puts = []
        for c in commits:
            item: dict[str, Any] = {
                "pk": {"S": c.key},
                "state": {"S": c.state},
                "owner": {"S": owner},
                "finished_at": _n(now),
                "expires_at": ttl,
            }
            if c.message_id:
                item["message_id"] = {"S": c.message_id}
            if c.error_code:
                item["error_code"] = {"S": c.error_code}
            if c.reason:
                item["reason"] = {"S": c.reason[:1000]}
            if c.outcome:
                item["outcome"] = {"S": c.outcome}
            puts.append(item)
        await self._batch_put(puts, deadline)

    async def _batch_put(self, items: list[dict[str, Any]], deadline: Deadline) -> None:
        chunks = [items[i : i + _BATCH_WRITE_MAX] for i in range(0, len(items), _BATCH_WRITE_MAX)]
        await asyncio.gather(*(self._batch_put_chunk(c, deadline) for c in chunks))

    async def _batch_put_chunk(self, items: list[dict[str, Any]], deadline: Deadline) -> None:
        requests: list[Any] = [{"PutRequest": {"Item": it}} for it in items]
        attempt = 0
        while requests:
            attempt += 1
            try:
                self._count("BatchWriteItem")
                resp = await self.client.batch_write_item(RequestItems={self.table: requests})
                requests = list(resp.get("UnprocessedItems", {}).get(self.table, []))
            except Exception as exc:
                if not await self.backoff.wait(attempt, deadline):
                    raise LedgerError(f"BatchWriteItem on {self.table} failed: {exc}") from exc
                continue
            if requests and not await self.backoff.wait(attempt, deadline):
                raise LedgerError(f"{len(requests)} ledger writes left unprocessed")

    async def release(self, keys: Sequence[str], *, owner: str, deadline: Deadline) -> None:
        """Delete our claims on ``keys`` so a redelivery can claim them at once."""
        chunks = [keys[i : i + _TRANSACT_MAX] for i in range(0, len(keys), _TRANSACT_MAX)]
        await asyncio.gather(*(self._release_chunk(list(c), owner, deadline) for c in chunks))

    async def _release_chunk(self, keys: list[str], owner: str, deadline: Deadline) -> None:
        attempt = 0
        while keys:
            attempt += 1
            items = [
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": k}},
                        "ConditionExpression": "#o = :owner AND #s IN (:pending, :sending)",
                        "ExpressionAttributeNames": {"#o": "owner", "#s": "state"},
                        "ExpressionAttributeValues": {
                            ":owner": {"S": owner},
                            ":pending": {"S": PENDING},
                            ":sending": {"S": SENDING},
                        },
                    }
                }
                for k in keys
            ]
            try:
                self._count("TransactWriteItems")
                await self.client.transact_write_items(TransactItems=items)
                return
            except Exception as exc:
                reasons = _cancellation_reasons(exc)
                if reasons is not None and len(reasons) == len(keys):
                    # Not ours any more: leave those alone; release the rest.
                    keys = [
                        k
                        for k, r in zip(keys, reasons, strict=True)
                        if r.get("Code") != "ConditionalCheckFailed"
                    ]
                if not await self.backoff.wait(attempt, deadline):
                    # The leases still expire on their own; nothing is lost.
                    return

    async def get(self, key: str) -> dict[str, Any] | None:
        """The ledger item for ``key`` as plain strings (for tests and operators)."""
        resp = await self.client.get_item(
            TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True
        )
        item = resp.get("Item")
        if not item:
            return None
        return {k: next(iter(v.values())) for k, v in item.items()}


def _cancellation_reasons(exc: BaseException) -> list[dict[str, Any]] | None:
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    if response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return None
    reasons = response.get("CancellationReasons")
    return list(reasons) if isinstance(reasons, list) else None
