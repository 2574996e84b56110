"""One stream batch, end to end: decode -> route -> claim -> render -> send -> commit -> report.

Everything here is asyncio on clients built once by the handler. The ledger makes every step
repeatable: a record redelivered after any failure is a no-op if it was done, and is done
exactly once otherwise (docs/EXACTLY-ONCE.md has the crash windows and the unknown-outcome
policy).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier.channels.base import Channel, Message, Outcome, SendResult, mask_address
from notifier.config import Config
from notifier.failures import Failure, FailureQueue
from notifier.ledger import FAILED, SENT, ClaimStatus, Commit, Ledger, LedgerError
from notifier.retry import Deadline
from notifier.router import Notification, Poison, Router, record_error_poison

__all__ = ["STAT_KEYS", "BatchFailedError", "BatchReport", "Pipeline"]

log = logging.getLogger("notifier")

STAT_KEYS = (
    "records",
    "sent",
    "duplicates",
    "skipped",
    "failed_permanent",
    "failed_transient",
    "dead_lettered",
    "assumed_sent",
    "in_flight",
)

Decoder = Callable[[Any], Sequence[Any]]
Renderer = Callable[[Sequence[Any], Sequence[str], Sequence[str | None]], Sequence[Any]]


class BatchFailedError(RuntimeError):
    """Every record of the batch failed transiently: raised so Lambda retries the batch.
    ``stats`` holds the batch's counters."""

    def __init__(self, message: str, stats: dict[str, int]) -> None:
        super().__init__(message)
        self.stats = stats


@dataclass(slots=True)
class BatchReport:
    failures: list[str]  #: sequence numbers of transiently failed records
    stats: dict[str, int]

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failures]}


@dataclass(slots=True)
class _Batch:
    """The state of one batch on its way through the steps."""

    owner: str
    lease_until: float
    work: Deadline  #: no new send after this
    final: Deadline  #: commit, release and dead-lettering finish before this
    stats: dict[str, int]
    seq: dict[int, str | None] = field(default_factory=dict)
    transient: set[int] = field(default_factory=set)
    commits: list[Commit] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    poisons: list[Poison] = field(default_factory=list)

    def retry_later(self, key: str, index: int) -> None:
        """Give the claim back; the record is reported and comes back."""
        self.release.append(key)
        self.transient.add(index)


@dataclass
class Pipeline:
    config: Config
    decode: Decoder
    render: Renderer
    ledger: Ledger
    failure_queue: FailureQueue
    channels: Mapping[str, Channel]
    default_sender: str
    owner_prefix: str
    clock: Callable[[], float] = time.time
    #: Claimed notifications are rendered, fenced (SENDING) and sent this many at a time, so
    #: only one chunk's rendered bodies are alive at once (peak memory on large batches).
    chunk_size: int = 512
    _router: Router = field(init=False)
    _batches: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._router = Router(self.config, self.channels)

    def _start(self, context: Any) -> _Batch:
        margin_ms = self.config.delivery.deadline_margin_ms
        work = Deadline.from_context(context, margin_ms=margin_ms)
        # Commit, release and dead-lettering may use most of the margin.
        final = Deadline(work.at + margin_ms * 0.8 / 1000.0)
        # The lease outlives everything this invocation may still write.
        lease_until = (
            self.clock() + max(0.0, final.remaining()) + self.config.delivery.lease_grace_seconds
        )
        self._batches += 1
        request_id = str(getattr(context, "aws_request_id", "") or "local")
        return _Batch(
            owner=f"{self.owner_prefix}/{request_id}/{self._batches}",
            lease_until=lease_until,
            work=work,
            final=final,
            stats=dict.fromkeys(STAT_KEYS, 0),
        )

    async def run(self, event: Any, context: Any) -> BatchReport:
        batch = self._start(context)
        decoded = self.decode(event)
        n_records = batch.stats["records"] = len(decoded)
        owners = self._route(decoded, batch)
        del decoded  # records live on only in what was routed
        to_send = await self._claim(owners, batch)
        owners.clear()
        size = max(1, self.chunk_size)
        while to_send:
            chunk, to_send = to_send[:size], to_send[size:]
            await self._send(self._render(chunk, batch), batch)
            del chunk  # its records and rendered bodies go now
        if batch.poisons:
            await self._dead_letter(batch)
        await self._finish(batch)
        failures = [s for i in sorted(batch.transient) if (s := batch.seq.get(i))]
        batch.stats["failed_transient"] = len(batch.transient)
        if n_records and len(batch.transient) == n_records:
            raise BatchFailedError(
                f"all {n_records} records failed transiently; the batch will be retried",
                batch.stats,
            )
        return BatchReport(failures=failures, stats=batch.stats)

    def _route(self, decoded: Sequence[Any], batch: _Batch) -> dict[str, Notification | Poison]:
        """Route every record; one item per ledger key, the first occurrence (lowest sequence
        number) owning it (a transaction may not touch one key twice)."""
        owners: dict[str, Notification | Poison] = {}
        for entry in decoded:
            batch.seq[entry.index] = entry.sequence_number
            if hasattr(entry, "error"):  # a RecordError from errors="collect"
                routed: list[Notification | Poison] = [record_error_poison(entry)]
            else:
                routed = self._router.route(entry)
                if not routed:
                    batch.stats["skipped"] += 1
            for item in routed:
                if item.key in owners:
                    batch.stats["duplicates"] += 1
                else:
                    owners[item.key] = item
        return owners

    async def _claim(
        self, owners: dict[str, Notification | Poison], batch: _Batch
    ) -> list[Notification]:
        """Claim every key; returns the notifications to send (claimed poison goes to
        ``batch.poisons``)."""
        if not owners:
            return []
        claims = await self.ledger.claim(
            list(owners),
            owner=batch.owner,
            lease_until=batch.lease_until,
            deadline=batch.work,
            takeover_unknown=self.config.delivery.unknown_outcome == "retry",
        )
        to_send: list[Notification] = []
        for key, item in owners.items():
            status = claims[key].status
            if status is ClaimStatus.CLAIMED:
                if isinstance(item, Poison):
                    batch.poisons.append(item)
                else:
                    to_send.append(item)
            elif status is ClaimStatus.DUPLICATE:
                batch.stats["duplicates"] += 1
            elif status is ClaimStatus.UNKNOWN_PRIOR:
                # A dead owner may have sent it; policy "assume_sent": at most once.
                batch.stats["assumed_sent"] += 1
                batch.commits.append(Commit(key, SENT, outcome="unknown"))
            else:  # IN_FLIGHT elsewhere, or the ledger failed: come back later
                if status is ClaimStatus.IN_FLIGHT:
                    batch.stats["in_flight"] += 1
                batch.transient.add(item.index)
        return to_send

    def _render(self, to_send: list[Notification], batch: _Batch) -> list[tuple[Notification, Any]]:
        """Render only what was claimed, in one call (the GIL is released in Rust)."""
        rendered = self.render(
            [n.record for n in to_send],
            [n.template for n in to_send],
            [n.locale for n in to_send],
        )
        ready: list[tuple[Notification, Any]] = []
        for n, r in zip(to_send, rendered, strict=True):
            problem = self._render_problem(n, r)
            if problem is None:
                ready.append((n, r))
            else:
                batch.poisons.append(_poison(n, *problem))
        return ready

    def _render_problem(self, n: Notification, rendered: Any) -> tuple[str, str] | None:
        if isinstance(rendered, BaseException):
            return type(rendered).__name__, str(rendered)[:500]
        parts = self.channels[n.channel].required_parts
        missing = [p for p in parts if not getattr(rendered, p, None)]
        if missing:
            return "TemplateError", f"template {n.template!r} rendered no {', '.join(missing)}"
        return None

    async def _send(self, ready: list[tuple[Notification, Any]], batch: _Batch) -> None:
        if not ready:
            return
        keys = [n.key for n, _ in ready]
        try:
            # The fence: from here on an expired lease means "may have been sent".
            await self.ledger.mark_sending(
                keys, owner=batch.owner, lease_until=batch.lease_until, deadline=batch.work
            )
        except LedgerError as exc:
            log.warning("ledger unavailable before sending %d notifications: %s", len(keys), exc)
            for n, _ in ready:
                batch.retry_later(n.key, n.index)
            return
        by_channel: dict[str, list[tuple[Notification, Message]]] = {}
        for n, r in ready:
            msg = Message(
                key=n.key,
                recipient=n.recipient,
                sender=n.sender or self.default_sender,
                rendered=r,
                locale=n.locale,
            )
            by_channel.setdefault(n.channel, []).append((n, msg))
        names = list(by_channel)
        results = await asyncio.gather(
            *(self.channels[c].send_batch([m for _, m in by_channel[c]], batch.work) for c in names)
        )
        for c, res in zip(names, results, strict=True):
            for (n, _), result in zip(by_channel[c], res, strict=True):
                self._settle(n, result, batch)

    def _settle(self, n: Notification, result: SendResult, batch: _Batch) -> None:
        outcome = result.outcome
        if outcome is Outcome.SENT:
            batch.stats["sent"] += 1
            batch.commits.append(Commit(n.key, SENT, message_id=result.message_id))
        elif outcome is Outcome.UNKNOWN and self.config.delivery.unknown_outcome == "assume_sent":
            batch.stats["assumed_sent"] += 1
            batch.commits.append(Commit(n.key, SENT, outcome="unknown", error_code=result.code))
        elif outcome is Outcome.PERMANENT:
            reason = (result.reason or "")[:500].replace(n.recipient, mask_address(n.recipient))
            batch.poisons.append(_poison(n, result.code or "Permanent", reason))
        else:  # TRANSIENT, or UNKNOWN under "retry"
            batch.retry_later(n.key, n.index)

    async def _dead_letter(self, batch: _Batch) -> None:
        poisons = batch.poisons
        failures = [
            Failure(
                reason=p.reason,
                error_code=p.error_code,
                record=p.raw,
                channel=p.channel,
                dedup_key=p.dedup_key,
                ledger_key=p.key,
                sequence_number=p.sequence_number,
                event_id=p.event_id,
                event_source_arn=p.event_source_arn,
            )
            for p in poisons
        ]
        ok = await self.failure_queue.publish(failures, batch.final)
        for p, published in zip(poisons, ok, strict=True):
            batch.stats["failed_permanent"] += 1
            log.warning(
                "permanent failure %s seq=%s key=%s: %s",
                p.error_code,
                p.sequence_number,
                p.key,
                p.reason,
            )
            if published:
                batch.stats["dead_lettered"] += 1
                batch.commits.append(
                    Commit(p.key, FAILED, error_code=p.error_code, reason=p.reason)
                )
            else:
                # Not on the queue: never lose it; the record comes back and is retried.
                batch.retry_later(p.key, p.index)

    async def _finish(self, batch: _Batch) -> None:
        if batch.commits:
            try:
                await self.ledger.commit(batch.commits, owner=batch.owner, deadline=batch.final)
            except LedgerError as exc:
                # The sends happened: reporting them failed would resend them at once. Their
                # SENDING entries expire (docs/EXACTLY-ONCE.md, "Commit failure without a crash").
                log.error("ledger commit failed for %d entries: %s", len(batch.commits), exc)
        if batch.release:
            await self.ledger.release(batch.release, owner=batch.owner, deadline=batch.final)


def _poison(n: Notification, code: str, reason: str) -> Poison:
    """A claimed notification that can never be delivered."""
    rec = n.record
    return Poison(
        index=n.index,
        key=n.key,
        error_code=code,
        reason=reason,
        raw=rec.raw,
        sequence_number=rec.sequence_number,
        event_id=rec.event_id,
        channel=n.channel,
        dedup_key=n.dedup_key,
        event_source_arn=rec.event_source_arn,
    )
