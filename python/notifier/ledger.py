"""The dedup ledger: one DynamoDB item per notification, keyed ``"<channel>#<dedup key>"``.

States (attribute ``state``)::

    (absent) --claim--> SENDING --commit--> SENT   (message_id)
        ^                  |         \\---> FAILED (error_code, reason)
        |                  +--release--> (absent)            transient: the record comes back
        +--claim--> PENDING --commit--> FAILED                poison: nothing is ever sent

Two write units per notification in steady state (docs/EXACTLY-ONCE.md):

- claim: one conditional ``PutItem`` per notification (1 write unit, items stay under
  1 KB), made just before its send, inside the send slot (a put, not an update: the claim
  item is whole, and nothing of an absent, expired or own entry needs keeping). It passes
  when the key is absent, already ours, or held by a dead owner's expired lease: an expired
  ``PENDING`` always (nothing was sent under it), an expired ``SENDING`` only with
  ``takeover_unknown`` (policy "retry"; its owner may have sent it). A failed condition
  returns the old item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``) and is judged:
  ``SENT``/``FAILED`` is a duplicate (1 write unit: what a failed conditional write costs), a
  live lease is in flight, an expired ``SENDING`` under "assume_sent" an unknown prior send.
  Each claim is its own request, so one item's error touches that item only. No transactions.
- commit / release: ``BatchWriteItem`` puts (final state) and deletes (give a claim back),
  buffered by a :class:`LedgerWriter` and flushed at 25 items or after ``flush_ms``, so each
  result is durable milliseconds after its send returned. They are unconditional because the
  writer holds the lease, which outlives every write of its invocation (the lease runs to the
  invocation's hard deadline plus a grace; no write starts after the final deadline).

Every call is bounded by the caller's :class:`~notifier.retry.Deadline` (``asyncio.timeout``)
and by ``call_timeout_s``, retried with full-jitter backoff while the deadline allows.

Write units are counted two ways: ``write_units`` by DynamoDB's published rule from the size
of each item written (1 unit per started KB, a failed conditional write 1 unit), and
``reported_write_units`` as the service's ``ConsumedCapacity`` says (``ReturnConsumedCapacity
= TOTAL``; real DynamoDB reports what it bills, moto's figures are not real).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from notifier.retry import Backoff, Deadline

__all__ = [
    "FAILED",
    "MAX_KEY_BYTES",
    "PENDING",
    "SENDING",
    "SENT",
    "SKIPPED",
    "UNKNOWN",
    "ClaimResult",
    "ClaimStatus",
    "Commit",
    "Ledger",
    "LedgerError",
    "LedgerWriter",
    "item_write_units",
    "ledger_key",
]

PENDING, SENDING, SENT, FAILED = "PENDING", "SENDING", "SENT", "FAILED"
#: ``unknown_outcome = "reconcile"``: the send's outcome is unknown; SES's Send event (or,
#: after ``reconcile_by``, a resend) settles it.
UNKNOWN = "UNKNOWN"
#: Never sent because the user opted out or the address is suppressed (final).
SKIPPED = "SKIPPED"
_FINAL = frozenset({SENT, FAILED, SKIPPED})
_BATCH_WRITE_MAX = 25
_MAX_REASON_BYTES = 300
#: Ledger keys longer than this (UTF-8 bytes) are hashed (:func:`ledger_key`): DynamoDB allows
#: 2,048 bytes for a partition key, and a short key keeps every item under 1 KB (1 write unit).
#: 192 bytes, because the key travels as an SES tag value (base64url, at most 256 characters).
MAX_KEY_BYTES = 192
#: Error codes of a DynamoDB call that are worth retrying inside the invocation.
_RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)

_CLAIM = (
    "attribute_not_exists(pk) OR (#o = :owner AND #s <> :unknown)"
    " OR (lease_expires_at < :now AND #s IN (:pending, :takeover))"
    " OR (#s = :unknown AND reconcile_by < :now)"
)


class LedgerError(RuntimeError):
    """The ledger table could not be read or written (after retries, within the deadline)."""


class ClaimStatus(enum.Enum):
    #: Ours now: send it.
    CLAIMED = "claimed"
    #: Already SENT or FAILED: suppress (success for the batch).
    DUPLICATE = "duplicate"
    #: Another owner holds a live lease: come back later (transient for the batch).
    IN_FLIGHT = "in_flight"
    #: A dead owner may have sent it (expired SENDING) and the policy is "assume_sent".
    UNKNOWN_PRIOR = "unknown_prior"
    #: DynamoDB refused this item for what it is (``ValidationException``): never claimable.
    REJECTED = "rejected"
    #: Parked UNKNOWN (policy "reconcile") until ``reconcile_by``: the reconcile queue owns it.
    RECONCILING = "reconciling"
    #: The ledger could not be written (after retries, or the deadline): transient.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ClaimResult:
    status: ClaimStatus
    state: str | None = None
    message_id: str | None = None
    #: ERROR / REJECTED: the DynamoDB error code (or ``"Deadline"``).
    code: str | None = None
    #: ERROR only: the last attempt got no answer, so the claim may have been written.
    uncertain: bool = False
    #: RECONCILING: when the parked send may be resent (epoch seconds).
    reconcile_by: float | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    key: str
    state: str  # SENT | FAILED
    message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    #: "unknown" when a SENT entry records an assumed (not confirmed) send.
    outcome: str | None = None


def ledger_key(channel: str, dedup_key: str) -> str:
    """``"<channel>#<dedup key>"``; a key over :data:`MAX_KEY_BYTES` UTF-8 bytes becomes
    ``"<channel>#sha256:<64 hex digits>"`` of the dedup key (same key, same hash: dedup holds)."""
    key = f"{channel}#{dedup_key}"
    if len(key.encode("utf-8", "surrogatepass")) <= MAX_KEY_BYTES:
        return key
    digest = hashlib.sha256(dedup_key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{channel}#sha256:{digest}"


def _n(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


def _value_bytes(value: Mapping[str, Any]) -> int:
    (tag, v), *_ = value.items()
    if tag == "S":
        return len(str(v).encode("utf-8", "surrogatepass"))
    if tag == "N":
        digits = sum(c.isdigit() for c in str(v))
        return (digits + 1) // 2 + 1
    return len(str(v))


def item_write_units(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Write units of writing ``item`` (DynamoDB's rule: 1 per started KB, at least 1)."""
    size = sum(len(name) + _value_bytes(value) for name, value in item.items())
    return max(1, math.ceil(size / 1024))


def _trim(text: str, limit: int = _MAX_REASON_BYTES) -> str:
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode("utf-8", "ignore") + "..."


def _error_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


class Ledger:
    """Claims, commits and releases on the ledger table, through any client with the low-level
    aiobotocore DynamoDB methods (``put_item``, ``batch_write_item``, ``delete_item``,
    ``get_item``)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        ttl_seconds: int = 7 * 86_400,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        call_timeout_s: float = 5.0,
        flush_ms: float = 5.0,
    ) -> None:
        self.client = client
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.backoff = backoff or Backoff(max_attempts=6, base_s=0.02, cap_s=1.0)
        self.clock = clock
        #: No single DynamoDB call waits longer than this (nor past the caller's deadline).
        self.call_timeout_s = call_timeout_s
        #: A buffered commit waits at most this long for company before it is flushed.
        self.flush_ms = flush_ms
        #: calls made, by operation (for tests and metrics)
        self.calls: dict[str, int] = {}
        #: write units by DynamoDB's size rule, and as DynamoDB reported them
        self.write_units = 0
        self.reported_write_units = 0.0

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1

    def _reported(self, consumed: Any) -> None:
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            if isinstance(entry, dict):
                units = entry.get("CapacityUnits")
                if isinstance(units, int | float):
                    self.reported_write_units += float(units)

    async def _call(self, op: str, method: Any, deadline: Deadline, **params: Any) -> Any:
        """One request, bounded by the deadline and ``call_timeout_s``."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError("deadline")
        self._count(op)
        async with asyncio.timeout(min(remaining, self.call_timeout_s)):
            return await method(**params)

    # -- claim -------------------------------------------------------------------------------

    async def claim(
        self,
        key: str,
        *,
        owner: str,
        lease_until: float,
        deadline: Deadline,
        takeover_unknown: bool,
        state: str = SENDING,
    ) -> ClaimResult:
        """Claim ``key`` for ``owner`` with ``state`` (SENDING before a send; PENDING for a
        record that will be dead-lettered, never sent). ``takeover_unknown``: an expired
        SENDING entry is claimable too (policy "retry"); otherwise it comes back as
        UNKNOWN_PRIOR."""
        attempt = 0
        while True:
            attempt += 1
            now = self.clock()
            params = {
                "TableName": self.table,
                "Item": {
                    "pk": {"S": key},
                    "state": {"S": state},
                    "owner": {"S": owner},
                    "lease_expires_at": _n(lease_until),
                    "claimed_at": _n(now),
                    "expires_at": {"N": str(int(now) + self.ttl_seconds)},
                },
                "ConditionExpression": _CLAIM,
                "ExpressionAttributeNames": {"#s": "state", "#o": "owner"},
                "ExpressionAttributeValues": {
                    ":pending": {"S": PENDING},
                    ":takeover": {"S": SENDING if takeover_unknown else PENDING},
                    ":unknown": {"S": UNKNOWN},
                    ":owner": {"S": owner},
                    ":now": _n(now),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                "ReturnConsumedCapacity": "TOTAL",
            }
            # A claim item is a key of at most MAX_KEY_BYTES, the owner and four short
            # attributes: always under 1 KB, so 1 unit (test_pipeline_ledger checks the sum).
            self.write_units += 1
            try:
                resp = await self._call("PutItem", self.client.put_item, deadline, **params)
            except TimeoutError:
                # The write may have happened: a repeat passes on "#o = :owner" if it did.
                if await self.backoff.wait(attempt, deadline):
                    continue
                return ClaimResult(ClaimStatus.ERROR, code="Deadline", uncertain=True)
            except Exception as exc:
                code = _error_code(exc)
                if code == "ConditionalCheckFailedException":
                    self._reported(getattr(exc, "response", {}).get("ConsumedCapacity"))
                    verdict = self._judge(
                        getattr(exc, "response", {}).get("Item"), now, takeover_unknown
                    )
                    if verdict is not None:
                        return verdict
                    # The item changed under us (an expired lease): the claim may pass now.
                elif code == "ValidationException":
                    return ClaimResult(ClaimStatus.REJECTED, code=code)
                elif code not in _RETRYABLE and not _is_transport(exc):
                    return ClaimResult(ClaimStatus.ERROR, code=code)
                if attempt < self.backoff.max_attempts and await self.backoff.wait(
                    attempt, deadline
                ):
                    continue
                return ClaimResult(ClaimStatus.ERROR, code=code, uncertain=_is_transport(exc))
            self._reported(resp.get("ConsumedCapacity"))
            return ClaimResult(ClaimStatus.CLAIMED)

    @staticmethod
    def _judge(item: Any, now: float, takeover_unknown: bool) -> ClaimResult | None:
        """Why a claim's condition failed: a final result, or None (try again)."""
        if not isinstance(item, dict):
            return None
        state = item.get("state", {}).get("S")
        if state in _FINAL:
            return ClaimResult(
                ClaimStatus.DUPLICATE, state=state, message_id=item.get("message_id", {}).get("S")
            )
        if state == UNKNOWN:
            try:
                until = float(item.get("reconcile_by", {}).get("N", "0"))
            except ValueError:
                until = 0.0
            if until >= now:
                return ClaimResult(ClaimStatus.RECONCILING, state=state, reconcile_by=until)
            return None
        try:
            lease = float(item.get("lease_expires_at", {}).get("N", "0"))
        except ValueError:
            lease = 0.0
        if lease >= now:
            return ClaimResult(ClaimStatus.IN_FLIGHT, state=state)
        if state == SENDING and not takeover_unknown:
            return ClaimResult(ClaimStatus.UNKNOWN_PRIOR, state=state)
        return None

    # -- commit / release --------------------------------------------------------------------

    def writer(self, *, owner: str, deadline: Deadline) -> LedgerWriter:
        """A buffered writer of commits and releases for one batch (see :class:`LedgerWriter`)."""
        return LedgerWriter(self, owner=owner, deadline=deadline)

    def commit_item(self, commit: Commit, owner: str) -> dict[str, Any]:
        now = self.clock()
        item: dict[str, Any] = {
            "pk": {"S": commit.key},
            "state": {"S": commit.state},
            "owner": {"S": owner},
            "finished_at": _n(now),
            "expires_at": {"N": str(int(now) + self.ttl_seconds)},
        }
        if commit.message_id:
            item["message_id"] = {"S": _trim(commit.message_id, 200)}
        if commit.error_code:
            item["error_code"] = {"S": _trim(commit.error_code, 100)}
        if commit.reason:
            item["reason"] = {"S": _trim(commit.reason)}
        if commit.outcome:
            item["outcome"] = {"S": commit.outcome}
        return item

    async def batch_write(self, requests: list[dict[str, Any]], deadline: Deadline) -> bool:
        """Write up to 25 put/delete requests; ``True`` once every one is durable."""
        for r in requests:
            put = r.get("PutRequest")
            # Final items hold at most MAX_KEY_BYTES + 200 + 100 + 300 bytes of text: 1 unit,
            # unless a caller's own attributes make them bigger.
            self.write_units += (
                1 if put is None or len(put["Item"]) <= 9 else (item_write_units(put["Item"]))
            )
        attempt = 0
        while requests:
            attempt += 1
            try:
                resp = await self._call(
                    "BatchWriteItem",
                    self.client.batch_write_item,
                    deadline,
                    RequestItems={self.table: requests},
                    ReturnConsumedCapacity="TOTAL",
                )
            except Exception:
                if not await self.backoff.wait(attempt, deadline):
                    return False
                continue
            self._reported(resp.get("ConsumedCapacity"))
            requests = list(resp.get("UnprocessedItems", {}).get(self.table, []))
            if requests and not await self.backoff.wait(attempt, deadline):
                return False
        return True

    async def release_if_ours(self, key: str, *, owner: str, deadline: Deadline) -> bool:
        """Delete ``key`` if ``owner`` holds it (after a claim whose answer was lost: it may or
        may not have been written). ``True`` when the key is surely not ours any more."""
        attempt = 0
        while True:
            attempt += 1
            self.write_units += 1
            try:
                await self._call(
                    "DeleteItem",
                    self.client.delete_item,
                    deadline,
                    TableName=self.table,
                    Key={"pk": {"S": key}},
                    ConditionExpression="#o = :owner",
                    ExpressionAttributeNames={"#o": "owner"},
                    ExpressionAttributeValues={":owner": {"S": owner}},
                )
                return True
            except Exception as exc:
                if _error_code(exc) == "ConditionalCheckFailedException":
                    return True  # never written, or not ours
                if not await self.backoff.wait(attempt, deadline):
                    return False

    async def park_unknown(
        self,
        key: str,
        *,
        owner: str,
        reconcile_by: float,
        deadline: Deadline,
        prior_expired: bool = False,
    ) -> str | None:
        """Policy "reconcile": turn our SENDING claim (or, ``prior_expired``, a dead owner's
        expired one) into UNKNOWN until ``reconcile_by``. Returns the state the key is in
        afterwards: ``UNKNOWN``; ``SENT`` when SES's Send event got there first (the send is
        proven); another state when the key moved on; ``None`` when the ledger did not answer
        (the caller reports the record, which comes back)."""
        now = self.clock()
        if prior_expired:
            condition = "#s = :sending AND lease_expires_at < :now"
            values: dict[str, Any] = {":sending": {"S": SENDING}, ":now": _n(now)}
        else:
            condition = "#s = :sending AND #o = :owner"
            values = {":sending": {"S": SENDING}, ":owner": {"S": owner}}
        attempt = 0
        while True:
            attempt += 1
            self.write_units += 1
            try:
                await self._call(
                    "PutItem",
                    self.client.put_item,
                    deadline,
                    TableName=self.table,
                    Item={
                        "pk": {"S": key},
                        "state": {"S": UNKNOWN},
                        "owner": {"S": owner},
                        "outcome": {"S": "unknown"},
                        "reconcile_by": _n(reconcile_by),
                        "lease_expires_at": _n(reconcile_by),
                        "finished_at": _n(now),
                        "expires_at": {"N": str(int(now) + self.ttl_seconds)},
                    },
                    ConditionExpression=condition,
                    ExpressionAttributeNames={
                        "#s": "state",
                        **({} if prior_expired else {"#o": "owner"}),
                    },
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return UNKNOWN
            except Exception as exc:
                if _error_code(exc) == "ConditionalCheckFailedException":
                    old = getattr(exc, "response", {}).get("Item") or {}
                    return str(old.get("state", {}).get("S") or "absent")
                if not await self.backoff.wait(attempt, deadline):
                    return None

    async def get(self, key: str) -> dict[str, Any] | None:
        """The ledger item for ``key`` as plain strings (for tests and operators)."""
        resp = await self.client.get_item(
            TableName=self.table, Key={"pk": {"S": key}}, ConsistentRead=True
        )
        item = resp.get("Item")
        if not item:
            return None
        return {k: next(iter(v.values())) for k, v in item.items()}


def _is_transport(exc: BaseException) -> bool:
    """A failure without an answer from DynamoDB (connection, read timeout)."""
    return isinstance(exc, ConnectionError | OSError) or type(exc).__name__ in {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ServerDisconnectedError",
    }


class LedgerWriter:
    """Buffers one batch's commits and releases and writes them with ``BatchWriteItem``.

    :meth:`commit` and :meth:`release` return at once with a future that resolves to ``True``
    when that write is durable (``False`` when it could not be made before the deadline). A
    flush starts when 25 writes are waiting or ``flush_ms`` after the first of them; flushes run
    concurrently. :meth:`close` flushes the rest and waits for every flush.
    """

    def __init__(self, ledger: Ledger, *, owner: str, deadline: Deadline) -> None:
        self.ledger = ledger
        self.owner = owner
        self.deadline = deadline
        self._buffer: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def commit(self, commit: Commit) -> asyncio.Future[bool]:
        item = self.ledger.commit_item(commit, self.owner)
        return self._add({"PutRequest": {"Item": item}})

    def release(self, key: str) -> asyncio.Future[bool]:
        """Give our claim on ``key`` back (delete it) so a redelivery can claim it at once."""
        return self._add({"DeleteRequest": {"Key": {"pk": {"S": key}}}})

    def _add(self, request: dict[str, Any]) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._buffer.append((request, future))
        if len(self._buffer) >= _BATCH_WRITE_MAX:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.ledger.flush_ms / 1000.0, self._flush)
        return future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._buffer:
            chunk, self._buffer = self._buffer[:_BATCH_WRITE_MAX], self._buffer[_BATCH_WRITE_MAX:]
            task = asyncio.get_running_loop().create_task(self._write(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, chunk: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        try:
            ok = await self.ledger.batch_write([r for r, _ in chunk], self.deadline)
        except Exception:  # never leave a waiter hanging
            ok = False
        for _, future in chunk:
            if not future.done():
                future.set_result(ok)

    async def close(self) -> None:
        """Flush what is buffered and wait for every write in progress."""
        self._flush()
        while True:
            # Only the unfinished ones: a task that has just finished may still be in the set
            # (its done callback is scheduled, not run), and from CPython 3.12 awaiting gather()
            # of finished tasks returns without yielding to the loop, so that callback would
            # never run and this loop would spin.
            running = [t for t in self._tasks if not t.done()]
            if not running:
                break
            await asyncio.gather(*running, return_exceptions=True)
        self._tasks.clear()
