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
from notifier.ledger import SENT, ClaimStatus, Commit, Ledger, LedgerError
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
    _router: Router = field(init=False)
    _batches: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._router = Router(self.config, self.channels)

    async def run(self, event: Any, context: Any) -> BatchReport:
        delivery = self.config.delivery
        margin_ms = delivery.deadline_margin_ms
        work = Deadline.from_context(context, margin_ms=margin_ms)
        # Commit, release and dead-lettering may use most of the margin.
        final = Deadline(work.at + margin_ms * 0.8 / 1000.0)
        lease_until = self.clock() + max(0.0, final.remaining()) + delivery.lease_grace_seconds
        self._batches += 1
        request_id = str(getattr(context, "aws_request_id", "") or "local")
        owner = f"{self.owner_prefix}/{request_id}/{self._batches}"
        stats = dict.fromkeys(STAT_KEYS, 0)

        decoded = self.decode(event)
        stats["records"] = len(decoded)
        seq: dict[int, str | None] = {}
        transient: set[int] = set()
        items: list[Notification | Poison] = []
        for entry in decoded:
            if hasattr(entry, "error"):  # a RecordError from errors="collect"
                seq[entry.index] = entry.sequence_number
                items.append(record_error_poison(entry))
                continue
            seq[entry.index] = entry.sequence_number
            routed = self._router.route(entry)
            if not routed:
                stats["skipped"] += 1
            items.extend(routed)

        # One claim per ledger key: the first occurrence (lowest sequence number) owns it.
        owners: dict[str, Notification | Poison] = {}
        for item in items:
            if item.key in owners:
                stats["duplicates"] += 1
            else:
                owners[item.key] = item

        claims = (
            await self.ledger.claim(
                list(owners),
                owner=owner,
                lease_until=lease_until,
                deadline=work,
                takeover_unknown=delivery.unknown_outcome == "retry",
            )
            if owners
            else {}
        )
        commits: list[Commit] = []
        release: list[str] = []
        to_send: list[Notification] = []
        poisons: list[Poison] = []
        for key, item in owners.items():
            claim = claims[key]
            status = claim.status
            if status is ClaimStatus.CLAIMED:
                if isinstance(item, Poison):
                    poisons.append(item)
                else:
                    to_send.append(item)
            elif status is ClaimStatus.DUPLICATE:
                stats["duplicates"] += 1
            elif status is ClaimStatus.UNKNOWN_PRIOR:
                # A dead owner may have sent it; policy "assume_sent": at most once.
                stats["assumed_sent"] += 1
                commits.append(Commit(key, SENT, outcome="unknown"))
            else:
                if status is ClaimStatus.IN_FLIGHT:
                    stats["in_flight"] += 1
                transient.add(item.index)

        # Render only what was claimed, in one call (GIL released in Rust).
        if to_send:
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
                    code, reason = problem
                    poisons.append(
                        Poison(
                            index=n.index,
                            key=n.key,
                            error_code=code,
                            reason=reason,
                            raw=n.record.raw,
                            sequence_number=n.record.sequence_number,
                            event_id=n.record.event_id,
                            channel=n.channel,
                            dedup_key=n.dedup_key,
                            event_source_arn=n.record.event_source_arn,
                        )
                    )
            await self._send(
                ready, owner, lease_until, work, stats, commits, release, poisons, transient
            )

        if poisons:
            await self._dead_letter(poisons, final, stats, commits, release, transient)

        if commits:
            try:
                await self.ledger.commit(commits, owner=owner, deadline=final)
            except LedgerError as exc:
                # The sends happened; reporting them failed would resend them. Their PENDING /
                # SENDING entries expire; docs/EXACTLY-ONCE.md ("commit lost") has the window.
                log.error("ledger commit failed for %d entries: %s", len(commits), exc)
        if release:
            await self.ledger.release(release, owner=owner, deadline=final)

        failures: list[str] = []
        for index in sorted(transient):
            s = seq.get(index)
            if s:
                failures.append(s)
        stats["failed_transient"] = len(transient)
        if decoded and len(transient) == len(decoded):
            raise BatchFailedError(
                f"all {len(decoded)} records failed transiently; the batch will be retried",
                stats,
            )
        return BatchReport(failures=failures, stats=stats)

    def _render_problem(self, n: Notification, rendered: Any) -> tuple[str, str] | None:
        if isinstance(rendered, BaseException):
            return type(rendered).__name__, str(rendered)[:500]
        missing = [
            p for p in self.channels[n.channel].required_parts if not getattr(rendered, p, None)
        ]
        if missing:
            return "TemplateError", f"template {n.template!r} rendered no {', '.join(missing)}"
        return None

    async def _send(
        self,
        ready: list[tuple[Notification, Any]],
        owner: str,
        lease_until: float,
        deadline: Deadline,
        stats: dict[str, int],
        commits: list[Commit],
        release: list[str],
        poisons: list[Poison],
        transient: set[int],
    ) -> int:
        if not ready:
            return 0
        keys = [n.key for n, _ in ready]
        try:
            # The fence: from here on an expired lease means "may have been sent".
            await self.ledger.mark_sending(
                keys, owner=owner, lease_until=lease_until, deadline=deadline
            )
        except LedgerError as exc:
            log.warning("ledger unavailable before sending %d notifications: %s", len(keys), exc)
            release.extend(keys)
            transient.update(n.index for n, _ in ready)
            return 0
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
        channel_names = list(by_channel)
        results = await asyncio.gather(
            *(
                self.channels[c].send_batch([m for _, m in by_channel[c]], deadline)
                for c in channel_names
            )
        )
        policy = self.config.delivery.unknown_outcome
        sent = 0
        for c, res in zip(channel_names, results, strict=True):
            for (n, _), result in zip(by_channel[c], res, strict=True):
                sent += self._settle(n, result, policy, stats, commits, release, poisons, transient)
        return sent

    @staticmethod
    def _settle(
        n: Notification,
        result: SendResult,
        policy: str,
        stats: dict[str, int],
        commits: list[Commit],
        release: list[str],
        poisons: list[Poison],
        transient: set[int],
    ) -> int:
        outcome = result.outcome
        if outcome is Outcome.SENT:
            stats["sent"] += 1
            commits.append(Commit(n.key, SENT, message_id=result.message_id))
            return 1
        if outcome is Outcome.UNKNOWN and policy == "assume_sent":
            stats["assumed_sent"] += 1
            commits.append(Commit(n.key, SENT, outcome="unknown", error_code=result.code))
            return 0
        if outcome is Outcome.PERMANENT:
            poisons.append(
                Poison(
                    index=n.index,
                    key=n.key,
                    error_code=result.code or "Permanent",
                    reason=_scrub(result.reason, n.recipient),
                    raw=n.record.raw,
                    sequence_number=n.record.sequence_number,
                    event_id=n.record.event_id,
                    channel=n.channel,
                    dedup_key=n.dedup_key,
                    event_source_arn=n.record.event_source_arn,
                )
            )
            return 0
        # TRANSIENT, or UNKNOWN under "retry": give the claim back; the record comes back.
        release.append(n.key)
        transient.add(n.index)
        return 0

    async def _dead_letter(
        self,
        poisons: list[Poison],
        deadline: Deadline,
        stats: dict[str, int],
        commits: list[Commit],
        release: list[str],
        transient: set[int],
    ) -> None:
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
        ok = await self.failure_queue.publish(failures, deadline)
        for p, published in zip(poisons, ok, strict=True):
            stats["failed_permanent"] += 1
            log.warning(
                "permanent failure %s seq=%s key=%s: %s",
                p.error_code,
                p.sequence_number,
                p.key,
                p.reason,
            )
            if published:
                stats["dead_lettered"] += 1
                commits.append(Commit(p.key, "FAILED", error_code=p.error_code, reason=p.reason))
            else:
                # Not on the queue yet: never lose it; the record comes back and is retried.
                release.append(p.key)
                transient.add(p.index)


def _scrub(reason: str | None, recipient: str) -> str:
    """A provider's reason with the recipient's address masked."""
    return (reason or "")[:500].replace(recipient, mask_address(recipient))
