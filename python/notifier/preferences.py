"""Users' notification preferences: opt-outs by category and channel, suppressed addresses.

One DynamoDB table (``NOTIFIER_PREFERENCES_TABLE``, partition key ``pk`` (S), TTL attribute
``expires_at``) holds two kinds of items:

- ``pk = "USER#<user id>"``: ``opt_outs`` (SS of ``"<category>:<channel>"``, either part may
  be ``"*"``: ``"friend_request:email"``, ``"friend_request:*"``, ``"*:sms"``, ``"*:*"``),
  ``suppressed`` (SS of :func:`address_fingerprint` values: no address is stored in clear),
  ``updated_at`` (N), and after a suppression ``suppressed_reason`` / ``suppressed_at``.
- ``pk = "TOKEN#<token id>"``: a one-click unsubscribe token already used (``used_at``,
  ``expires_at`` = the token's expiry, so TTL removes it once the token is dead anyway).

:class:`PreferencesStore` reads a batch's recipients with ``BatchGetItem`` (100 keys per
request, the requests concurrent, eventually consistent, projected to the three attributes
the decision needs), retries ``UnprocessedKeys`` with full-jitter backoff until the deadline,
and bounds every request by ``asyncio.timeout`` of the deadline's remaining time. It works
with :class:`notifier.aws.DynamoDBClient` and with an aiobotocore ``dynamodb`` client (same
parameters, same answers, same ``ClientError`` codes). Failures raise
:class:`PreferencesError` naming the operation and the DynamoDB error code, never a user id.

Capacity is counted two ways, as the ledger does: ``read_units`` / ``write_units`` by
DynamoDB's published rules (an eventually consistent read costs 0.5 unit per started 4 KB of
the item, 0.5 for a key without an item; a write 1 unit per started KB of the larger of the
item before and after, 2 in a transaction), and ``reported_read_units`` /
``reported_write_units`` from the ``ConsumedCapacity`` DynamoDB returns. The rule-based read
count sizes the projected attributes only (``pk``, ``opt_outs``, ``suppressed``: all of a
user item but ``updated_at`` and the suppression note, a few dozen bytes).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier.logs import mask_email
from notifier.retry import Backoff, Deadline

__all__ = [
    "MAX_BATCH_GET",
    "Preferences",
    "PreferencesError",
    "PreferencesStore",
    "address_fingerprint",
    "token_key",
    "user_key",
]

#: Keys per ``BatchGetItem`` request (DynamoDB's limit).
MAX_BATCH_GET = 100
#: DynamoDB's limit on a partition key's size: a longer ``"USER#<id>"`` can have no item.
_MAX_PK_BYTES = 2048
_MAX_REASON_CHARS = 100
_RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_TRANSPORT = frozenset(
    {
        "OutcomeUnknownError",
        "RequestNotSentError",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ClientConnectorError",
        "ServerDisconnectedError",
    }
)
_PROJECTION = "#pk, #oo, #sup"
_PROJECTION_NAMES = {"#pk": "pk", "#oo": "opt_outs", "#sup": "suppressed"}


class PreferencesError(RuntimeError):
    """The preferences table could not answer (after retries, within the deadline).

    ``operation`` is the DynamoDB call, ``code`` its error code (``"Deadline"`` when time ran
    out, ``"UnprocessedKeys"`` when DynamoDB kept keys unprocessed to the end). The message
    names those and the table, never a user id, an address or a token.
    """

    def __init__(self, table: str, operation: str, code: str, reasons: Sequence[str] = ()) -> None:
        super().__init__(f"preferences table {table}: {operation}: {code}")
        self.table = table
        self.operation = operation
        self.code = code
        #: A cancelled transaction's reason codes, one per item ("None" where it passed).
        self.reasons = tuple(reasons)


def address_fingerprint(address: str) -> str:
    """``"sha256:"`` + the first 32 hex digits of SHA-256 of the trimmed, lower-cased address.

    What the table stores instead of the address (no personal data at rest); the same for
    ``" Alice@Example.COM "`` and ``"alice@example.com"``.
    """
    normalized = address.strip().lower().encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(normalized).hexdigest()[:32]


def user_key(user_id: str) -> str:
    """The partition key of a user's item: ``"USER#<user id>"``."""
    return f"USER#{user_id}"


def token_key(token_id: str) -> str:
    """The partition key of a used unsubscribe token: ``"TOKEN#<token id>"``."""
    return f"TOKEN#{token_id}"


@dataclass(frozen=True, slots=True)
class Preferences:
    """One user's preferences; a user without an item has empty sets (everything allowed)."""

    user_id: str
    opt_outs: frozenset[str] = field(default_factory=frozenset)
    suppressed: frozenset[str] = field(default_factory=frozenset)

    def decision(self, category: str, channel: str, address: str | None = None) -> str | None:
        """``None`` (send it), ``"suppressed"`` (``address``'s fingerprint is suppressed) or
        ``"opted_out"`` (``"category:channel"``, ``"category:*"``, ``"*:channel"`` or ``"*:*"``
        is an opt-out). Suppression wins: it protects the sender, whatever the user wants."""
        if (
            address is not None
            and self.suppressed
            and address_fingerprint(address) in (self.suppressed)
        ):
            return "suppressed"
        if self.opt_outs and not self.opt_outs.isdisjoint(
            (f"{category}:{channel}", f"{category}:*", f"*:{channel}", "*:*")
        ):
            return "opted_out"
        return None


def _error_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def _cancellation_reasons(exc: BaseException) -> tuple[str, ...]:
    response: Any = getattr(exc, "response", None)
    reasons = response.get("CancellationReasons") if isinstance(response, dict) else None
    if not isinstance(reasons, list):
        return ()
    return tuple(str(r.get("Code") or "None") if isinstance(r, dict) else "None" for r in reasons)


def _retryable(exc: BaseException) -> bool:
    """Worth another attempt: throttling, a 5xx, or no answer (connection, read timeout); a
    transaction cancelled for a conflict or throttling (not for a failed condition)."""
    code = _error_code(exc)
    if code == "TransactionCanceledException":
        reasons = set(_cancellation_reasons(exc)) - {"None"}
        return bool(reasons) and reasons <= {
            "TransactionConflict",
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
        }
    return (
        code in _RETRYABLE
        or code in _TRANSPORT
        or isinstance(exc, ConnectionError | OSError)
        or type(exc).__name__ in _TRANSPORT
    )


def _value_bytes(value: Mapping[str, Any]) -> int:
    """DynamoDB's size of one AttributeValue (strings and sets of strings exactly)."""
    (tag, v), *_ = value.items()
    if tag == "S":
        return len(str(v).encode("utf-8", "surrogatepass"))
    if tag == "SS":
        return sum(len(str(s).encode("utf-8", "surrogatepass")) for s in v)
    if tag == "N":
        digits = sum(c.isdigit() for c in str(v))
        return (digits + 1) // 2 + 1
    if tag in ("B",):
        return len(v)
    return len(str(v))


def _item_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode("utf-8")) + _value_bytes(value) for name, value in item.items())


def _strings(value: Any) -> frozenset[str]:
    if isinstance(value, dict):
        members = value.get("SS")
        if isinstance(members, list):
            return frozenset(str(m) for m in members)
    return frozenset()


def _key_fits(user_id: str) -> bool:
    return len(user_key(user_id).encode("utf-8", "surrogatepass")) <= _MAX_PK_BYTES


def _check(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


class PreferencesStore:
    """Reads and writes the preferences table through any client with the low-level
    aiobotocore DynamoDB methods (``batch_get_item``, ``update_item``,
    ``transact_write_items``)."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
        call_timeout_s: float = 5.0,
    ) -> None:
        self.client = client
        self.table = table
        self.clock = clock
        self.backoff = backoff or Backoff()
        #: No single request waits longer than this (nor past the caller's deadline).
        self.call_timeout_s = call_timeout_s
        #: Read units by DynamoDB's rule (0.5 per eventually consistent read of <= 4 KB).
        self.read_units = 0.0
        #: Write units by DynamoDB's rule (1 per started KB; 2 per item in a transaction).
        self.write_units = 0
        #: Units as DynamoDB's ``ConsumedCapacity`` reported them.
        self.reported_read_units = 0.0
        self.reported_write_units = 0.0
        #: Requests made, by operation (for tests and metrics).
        self.calls: dict[str, int] = {}

    # -- plumbing ----------------------------------------------------------------------------

    def _fail(self, operation: str, code: str) -> PreferencesError:
        return PreferencesError(self.table, operation, code)

    async def _call(self, operation: str, method: Any, deadline: Deadline, params: Any) -> Any:
        """One request, bounded by the deadline and ``call_timeout_s``."""
        remaining = deadline.remaining()
        if remaining <= 0:
            raise TimeoutError("deadline")
        self.calls[operation] = self.calls.get(operation, 0) + 1
        async with asyncio.timeout(min(remaining, self.call_timeout_s)):
            return await method(**params)

    @staticmethod
    def _capacity(consumed: Any) -> float:
        total = 0.0
        for entry in consumed if isinstance(consumed, list) else [consumed]:
            if isinstance(entry, dict):
                units = entry.get("CapacityUnits")
                if isinstance(units, int | float):
                    total += float(units)
        return total

    async def _write(self, operation: str, method: Any, params: Any, deadline: Deadline) -> Any:
        """An idempotent write, retried (throttling, 5xx, lost answers) while time allows."""
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = await self._call(operation, method, deadline, params)
            except TimeoutError:
                if deadline.remaining() > 0 and await self.backoff.wait(attempt, deadline):
                    continue
                raise self._fail(operation, "Deadline") from None
            except Exception as exc:
                if _retryable(exc) and await self.backoff.wait(attempt, deadline):
                    continue
                raise PreferencesError(
                    self.table, operation, _error_code(exc), _cancellation_reasons(exc)
                ) from None
            self.reported_write_units += self._capacity(resp.get("ConsumedCapacity"))
            return resp

    # -- reads -------------------------------------------------------------------------------

    async def get_many(self, user_ids: Iterable[str], deadline: Deadline) -> dict[str, Preferences]:
        """The preferences of each distinct user in ``user_ids`` (one read per user).

        Users without an item get an empty :class:`Preferences`. Raises
        :class:`PreferencesError` if any user's item could not be read by the deadline.
        """
        wanted = list(dict.fromkeys(user_ids))
        result = {u: Preferences(u) for u in wanted}
        # An empty id (refused by opt_out) or a key over DynamoDB's 2,048 bytes (refused by
        # DynamoDB) can have no item: no need to ask.
        readable = [u for u in wanted if u and _key_fits(u)]
        if not readable:
            return result
        if deadline.remaining() <= 0:
            raise self._fail("BatchGetItem", "Deadline")
        chunks = [readable[i : i + MAX_BATCH_GET] for i in range(0, len(readable), MAX_BATCH_GET)]
        if len(chunks) == 1:
            found = [await self._get_chunk(chunks[0], deadline)]
        else:
            tasks = [asyncio.ensure_future(self._get_chunk(c, deadline)) for c in chunks]
            try:
                found = await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        for part in found:
            result.update(part)
        return result

    async def _get_chunk(self, users: Sequence[str], deadline: Deadline) -> dict[str, Preferences]:
        by_key = {user_key(u): u for u in users}
        keys: list[dict[str, Any]] = [{"pk": {"S": k}} for k in by_key]
        out: dict[str, Preferences] = {}
        stalled = 0  # consecutive attempts without progress
        while keys:
            params = {
                "RequestItems": {
                    self.table: {
                        "Keys": keys,
                        "ConsistentRead": False,
                        "ProjectionExpression": _PROJECTION,
                        "ExpressionAttributeNames": _PROJECTION_NAMES,
                    }
                },
                "ReturnConsumedCapacity": "TOTAL",
            }
            try:
                resp = await self._call(
                    "BatchGetItem", self.client.batch_get_item, deadline, params
                )
            except TimeoutError:
                stalled += 1
                if deadline.remaining() > 0 and await self.backoff.wait(stalled, deadline):
                    continue
                raise self._fail("BatchGetItem", "Deadline") from None
            except Exception as exc:
                stalled += 1
                if _retryable(exc) and await self.backoff.wait(stalled, deadline):
                    continue
                raise self._fail("BatchGetItem", _error_code(exc)) from None
            self.reported_read_units += self._capacity(resp.get("ConsumedCapacity"))
            items = resp.get("Responses", {}).get(self.table, [])
            left = list(resp.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", []))
            for item in items:
                pk = item.get("pk", {}).get("S")
                user = by_key.get(pk) if isinstance(pk, str) else None
                if user is None:
                    continue
                out[user] = Preferences(
                    user, _strings(item.get("opt_outs")), _strings(item.get("suppressed"))
                )
                self.read_units += 0.5 * max(1, math.ceil(_item_bytes(item) / 4096))
            # Keys answered without an item cost 0.5 each; unprocessed keys were not read.
            self.read_units += 0.5 * max(0, len(keys) - len(items) - len(left))
            if not left:
                break
            stalled = 1 if len(left) < len(keys) else stalled + 1
            keys = left
            if not await self.backoff.wait(stalled, deadline):
                code = "UnprocessedKeys" if deadline.remaining() > 0 else "Deadline"
                raise self._fail("BatchGetItem", code)
        return out

    # -- writes ------------------------------------------------------------------------------

    def _count_update(self, resp: Mapping[str, Any]) -> None:
        item = resp.get("Attributes")
        size = _item_bytes(item) if isinstance(item, dict) else 0
        self.write_units += max(1, math.ceil(size / 1024))

    async def opt_out(
        self,
        user_id: str,
        category: str,
        channel: str = "*",
        *,
        deadline: Deadline | None = None,
    ) -> None:
        """Add ``"category:channel"`` to the user's opt-outs (``"*"`` = every category or
        channel). Idempotent; retried on throttling and lost answers within ``deadline``
        (default: 10 s from now)."""
        _check("user_id", user_id)
        _check("category", category)
        if ":" in _check("channel", channel):
            raise ValueError("channel must not contain ':'")
        params = self._opt_out_update(user_id, f"{category}:{channel}")
        params["ReturnValues"] = "ALL_NEW"
        params["ReturnConsumedCapacity"] = "TOTAL"
        resp = await self._write(
            "UpdateItem", self.client.update_item, params, deadline or Deadline.after(10.0)
        )
        self._count_update(resp)

    def _opt_out_update(self, user_id: str, entry: str) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": {"pk": {"S": user_key(user_id)}},
            "UpdateExpression": "ADD #oo :entry SET #at = :now",
            "ExpressionAttributeNames": {"#oo": "opt_outs", "#at": "updated_at"},
            "ExpressionAttributeValues": {
                ":entry": {"SS": [entry]},
                ":now": {"N": str(int(self.clock()))},
            },
        }

    async def suppress(
        self, user_id: str, address: str, reason: str, *, deadline: Deadline | None = None
    ) -> None:
        """Add ``address``'s fingerprint to the user's suppressed set and note ``reason``
        (e.g. ``"bounce:Permanent"``, ``"complaint"``; trimmed, addresses masked). The address
        itself is not stored. Idempotent; retried like :meth:`opt_out`."""
        _check("user_id", user_id)
        _check("address", address)
        now = str(int(self.clock()))
        params = {
            "TableName": self.table,
            "Key": {"pk": {"S": user_key(user_id)}},
            "UpdateExpression": "ADD #sup :fp SET #at = :now, #why = :why, #sat = :now",
            "ExpressionAttributeNames": {
                "#sup": "suppressed",
                "#at": "updated_at",
                "#why": "suppressed_reason",
                "#sat": "suppressed_at",
            },
            "ExpressionAttributeValues": {
                ":fp": {"SS": [address_fingerprint(address)]},
                ":now": {"N": now},
                ":why": {"S": mask_email(str(reason))[:_MAX_REASON_CHARS] or "unspecified"},
            },
            "ReturnValues": "ALL_NEW",
            "ReturnConsumedCapacity": "TOTAL",
        }
        resp = await self._write(
            "UpdateItem", self.client.update_item, params, deadline or Deadline.after(10.0)
        )
        self._count_update(resp)

    async def opt_out_once(
        self,
        token_id: str,
        user_id: str,
        category: str,
        channel: str,
        *,
        token_expires_at: int,
        deadline: Deadline | None = None,
    ) -> bool:
        """Redeem a one-click unsubscribe token: in ONE transaction, mark ``"TOKEN#<id>"`` used
        (a Put conditional on ``attribute_not_exists(pk)``, ``expires_at`` = the token's
        expiry) and add the opt-out. ``True``: done now. ``False``: the token was already
        used, and nothing changed. Either both writes happen or neither, so a crash or a
        lost answer at any point leaves no half-state; a retry of a lost answer reuses the
        transaction's ``ClientRequestToken`` (DynamoDB's idempotency window is 10 minutes)."""
        _check("token_id", token_id)
        _check("user_id", user_id)
        _check("category", category)
        if ":" in _check("channel", channel):
            raise ValueError("channel must not contain ':'")
        update = self._opt_out_update(user_id, f"{category}:{channel}")
        now = update["ExpressionAttributeValues"][":now"]
        params = {
            "TransactItems": [
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            "pk": {"S": token_key(token_id)},
                            "used_at": now,
                            "expires_at": {"N": str(int(token_expires_at))},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Update": update},
            ],
            "ClientRequestToken": str(uuid.uuid4()),
            "ReturnConsumedCapacity": "TOTAL",
        }
        # Two items of well under 1 KB each, at 2 units per item in a transaction.
        self.write_units += 4
        try:
            await self._write(
                "TransactWriteItems",
                self.client.transact_write_items,
                params,
                deadline or Deadline.after(10.0),
            )
        except PreferencesError as exc:
            if exc.code == "TransactionCanceledException" and exc.reasons[:1] == (
                "ConditionalCheckFailed",
            ):
                return False
            raise
        return True
