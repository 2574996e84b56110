"""One stream batch, end to end: decode -> route -> render -> (claim -> send -> commit) -> report.

Everything here is asyncio on clients built once by the handler. Each notification goes
through one *send slot* (at most ``max_concurrency`` at once): wait for the channel's rate
limit, claim its ledger key (one conditional write), send, and hand the result to the batch's
:class:`~notifier.ledger.LedgerWriter`; the slot is freed only once that result is durable.
So at any instant at most ``max_concurrency`` notifications are claimed and not yet durably
settled: a kill exposes those and nothing else (docs/EXACTLY-ONCE.md has every window).

Faults of an account (expired credentials, access denied, sending paused, daily quota) pause
the channel (or the ledger) with a growing cooldown shared by the process, so an outage is
probed once per cooldown instead of hammered, and raise one alarm line per batch; they are
never dead-lettered. A record failing transiently when it is close to the stream's retention
(``expiry_guard_seconds``) is written in full to the failure queue before it can be lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier.channels.base import Channel, Message, Outcome, SendResult, scrub
from notifier.config import Config
from notifier.failures import Failure, FailureQueue, Published
from notifier.ledger import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    UNKNOWN,
    ClaimResult,
    ClaimStatus,
    Commit,
    Ledger,
    LedgerWriter,
)
from notifier.logs import redact
from notifier.retry import Deadline
from notifier.router import Notification, Poison, Router, Skipped, record_error_poison

__all__ = ["ROUTE_STAT_KEYS", "STAT_KEYS", "BatchFailedError", "BatchReport", "Breaker", "Pipeline"]

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
    "unknown_outcomes",
    "account_faults",
    "expiring_parked",
    "no_recipient",
    "opted_out",
    "suppressed",
    "reconciling",
    "reconciled",
    "retries",
    "write_units",
    "read_units",
)
#: The counters kept per (channel, event type) as well: notifications, not records.
ROUTE_STAT_KEYS = (
    "sent",
    "assumed_sent",
    "duplicates",
    "no_recipient",
    "failed_permanent",
    "failed_transient",
    "unknown_outcomes",
    "opted_out",
    "suppressed",
    "reconciling",
    "reconciled",
    "retries",
)

Decoder = Callable[[Any], Sequence[Any]]
Renderer = Callable[[Sequence[Any], Sequence[str], Sequence[str | None]], Sequence[Any]]

#: Longest pause of a channel (or the ledger) after repeated account faults, seconds.
_MAX_COOLDOWN_S = 60.0
_PROBE_POLL_S = 0.05


class BatchFailedError(RuntimeError):
    """Every record of the batch failed transiently: raised so Lambda retries the batch.
    ``stats`` holds the batch's counters."""

    def __init__(
        self,
        message: str,
        stats: dict[str, int],
        routes: dict[tuple[str, str], dict[str, int]] | None = None,
    ) -> None:
        super().__init__(message)
        self.stats = stats
        self.routes = routes or {}


@dataclass(slots=True)
class BatchReport:
    failures: list[str]  #: sequence numbers of transiently failed records
    stats: dict[str, int]
    #: ``(channel, event type) -> counters`` (:data:`ROUTE_STAT_KEYS`), notifications.
    routes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    #: Age of the batch's oldest record (seconds since its change was written), if known.
    record_age_s: float | None = None

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": s} for s in self.failures]}


@dataclass(slots=True)
class Breaker:
    """A process-wide pause of one dependency after an account fault: closed, open (every
    caller waits ``cooldown`` seconds), then one probe; its success closes the breaker, another
    fault reopens it for twice as long (up to 60 s)."""

    cooldown: float = 0.0
    open_until: float = 0.0  #: monotonic seconds
    probing: bool = False
    code: str | None = None

    def trip(self, code: str | None) -> None:
        self.cooldown = min(_MAX_COOLDOWN_S, max(1.0, self.cooldown * 2))
        self.open_until = time.monotonic() + self.cooldown
        self.probing = False
        self.code = code

    def reset(self) -> None:
        self.cooldown = 0.0
        self.open_until = 0.0
        self.probing = False
        self.code = None

    async def gate(self, deadline: Deadline) -> bool | None:
        """Wait until a call may go out. ``None``: go (breaker closed); ``True``: go as the
        probe; ``False``: not before ``deadline``."""
        while True:
            if self.cooldown == 0.0:
                return None
            wait = self.open_until - time.monotonic()
            if wait > 0:
                if wait >= deadline.remaining():
                    # Paused past this invocation's work: hold it to its deadline all the same,
                    # so the ESM's retries come no faster than invocations end (no hot loop).
                    await asyncio.sleep(max(0.0, deadline.remaining()))
                    return False
                await asyncio.sleep(wait)
                continue
            if not self.probing:
                self.probing = True
                return True
            if deadline.remaining() <= _PROBE_POLL_S:
                return False
            await asyncio.sleep(_PROBE_POLL_S)

    def settle(self, probe: bool | None, fault: bool, code: str | None) -> None:
        if fault:
            # Only the probe (or the first fault while closed) moves the cooldown on.
            if probe or self.cooldown == 0.0:
                self.trip(code)
        elif probe:
            self.reset()


@dataclass(slots=True)
class _Batch:
    """The state of one batch on its way through the steps."""

    owner: str
    lease_until: float
    work: Deadline  #: no new claim or send after this
    final: Deadline  #: commits, releases and dead-lettering finish before this
    stats: dict[str, int]
    writer: LedgerWriter | None = None
    seq: dict[int, str | None] = field(default_factory=dict)
    transient: set[int] = field(default_factory=set)
    #: (poison, whether we hold its ledger claim)
    poisons: list[tuple[Poison, bool]] = field(default_factory=list)
    expiring: list[tuple[Notification, str]] = field(default_factory=list)
    #: (dependency, error code) -> notifications deferred by an account fault
    alarms: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (channel, event type) -> counters (ROUTE_STAT_KEYS)
    routes: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    #: unknown sends parked for reconciliation, to put on the reconcile queue
    reconcile: list[Notification] = field(default_factory=list)
    #: this batch comes from the reconcile queue (a parked send not yet due stays there)
    reconcile_run: bool = False
    #: ledger key -> per-message headers (one-click unsubscribe)
    headers: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def count(self, key: str, channel: str | None, event_type: str | None, n: int = 1) -> None:
        """Add ``n`` to a batch counter and to its (channel, event type) breakdown."""
        self.stats[key] += n
        if channel is not None:
            route = self.routes.get((channel, event_type or ""))
            if route is None:
                route = self.routes[(channel, event_type or "")] = dict.fromkeys(ROUTE_STAT_KEYS, 0)
            route[key] += n

    def count_route(self, key: str, channel: str | None, event_type: str | None) -> None:
        """Count in the (channel, event type) breakdown only (the batch counter counts records)."""
        if channel is not None:
            route = self.routes.get((channel, event_type or ""))
            if route is None:
                route = self.routes[(channel, event_type or "")] = dict.fromkeys(ROUTE_STAT_KEYS, 0)
            route[key] += 1


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
    #: Notifications in their send slot at once (claimed, not yet durably settled).
    max_concurrency: int = 64
    #: Claimed notifications are rendered this many at a time (peak memory on large batches).
    chunk_size: int = 512
    #: A record older than this (seconds since its stream record was written) that fails
    #: transiently is written in full to the failure queue instead of being left to the ESM.
    expiry_guard_seconds: float = 72_000.0
    #: Called once per batch with ``(stats, seconds, routes=..., record_age_s=...)``: a
    #: :class:`notifier.metrics.EmfWriter`.
    metrics: Callable[..., None] | None = None
    #: ``[preferences]``: a ``notifier.preferences.PreferencesStore`` read once per batch.
    preferences: Any = None
    #: ``[unsubscribe]``: ``(user id, category, channel) -> (url, headers)``.
    unsubscribe_links: Callable[[str, str, str], tuple[str, tuple[tuple[str, str], ...]]] | None = (
        None
    )
    #: ``(notification) -> provider tags`` (SES EmailTags naming the ledger key, user, category).
    tagger: Callable[[Notification], tuple[tuple[str, str], ...]] | None = None
    #: ``unknown_outcome = "reconcile"``: where parked unknown sends wait (an SQS queue whose
    #: messages are delayed by ``reconcile_seconds``; consumed by ``notifier.reconcile``).
    reconcile_queue: FailureQueue | None = None
    _router: Router = field(init=False)
    _batches: int = field(default=0, init=False)
    _breakers: dict[str, Breaker] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._router = Router(self.config, self.channels)

    def breaker(self, name: str) -> Breaker:
        """The process-wide breaker of a channel, or of ``"ledger"``."""
        b = self._breakers.get(name)
        if b is None:
            b = self._breakers[name] = Breaker()
        return b

    def _start(self, context: Any) -> _Batch:
        margin_ms = self.config.delivery.deadline_margin_ms
        hard = Deadline.from_context(context, margin_ms=0.0)
        work = Deadline(hard.at - margin_ms / 1000.0)
        # Commit, release and dead-lettering may use most of the margin.
        final = Deadline(work.at + margin_ms * 0.8 / 1000.0)
        # The lease outlives everything this invocation may still write: it runs to the hard
        # deadline (Lambda's own timeout) plus a grace.
        lease_until = (
            self.clock() + max(0.0, hard.remaining()) + self.config.delivery.lease_grace_seconds
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

    async def run(self, event: Any, context: Any, *, reconcile_run: bool = False) -> BatchReport:
        """Handle one batch. ``reconcile_run``: the records come from the reconcile queue
        (a parked send not yet due is reported, so its message comes back later)."""
        batch = self._start(context)
        batch.reconcile_run = reconcile_run
        units_before = self.ledger.write_units
        reads_before = float(getattr(self.preferences, "read_units", 0.0))
        started = time.monotonic()
        decoded = self.decode(event)
        n_records = batch.stats["records"] = len(decoded)
        record_age = self._record_age(decoded)
        owners = self._route(decoded, batch)
        del decoded  # records live on only in what was routed
        batch.writer = self.ledger.writer(owner=batch.owner, deadline=batch.final)
        try:
            poisons = [p for p in owners.values() if isinstance(p, Poison)]
            to_send = [n for n in owners.values() if isinstance(n, Notification)]
            owners.clear()
            slots = asyncio.Semaphore(max(1, self.max_concurrency))
            if self.preferences is not None and to_send:
                to_send = await self._apply_preferences(to_send, batch, slots)
            if poisons:
                await asyncio.gather(*(self._claim_poison(p, batch, slots) for p in poisons))
            size = max(1, self.chunk_size)
            while to_send:
                chunk, to_send = to_send[:size], to_send[size:]
                bad: list[Poison] = []
                ready = self._render(chunk, batch, bad)
                del chunk
                await asyncio.gather(
                    *(self._deliver(n, r, batch, slots) for n, r in ready),
                    *(self._claim_poison(p, batch, slots) for p in bad),
                )
                del ready  # its records and rendered bodies go now
            if batch.reconcile:
                await self._queue_for_reconcile(batch)
            if batch.poisons or batch.expiring:
                await self._dead_letter(batch)
        finally:
            await batch.writer.close()
        batch.stats["write_units"] = self.ledger.write_units - units_before
        reads = float(getattr(self.preferences, "read_units", 0.0)) - reads_before
        batch.stats["read_units"] = math.ceil(reads)
        batch.stats["failed_transient"] = len(batch.transient)
        self._log_summary(batch, time.monotonic() - started, record_age)
        failures = [s for i in sorted(batch.transient) if (s := batch.seq.get(i))]
        if n_records and len(batch.transient) == n_records:
            raise BatchFailedError(
                f"all {n_records} records failed transiently; the batch will be retried",
                batch.stats,
                batch.routes,
            )
        return BatchReport(
            failures=failures, stats=batch.stats, routes=batch.routes, record_age_s=record_age
        )

    def _record_age(self, decoded: Sequence[Any]) -> float | None:
        """Seconds since the oldest record of the batch was written (None if none says)."""
        oldest: float | None = None
        for rec in decoded:
            created = getattr(rec, "approximate_creation_time", None)
            if isinstance(created, int | float) and (oldest is None or created < oldest):
                oldest = created
        return None if oldest is None else max(0.0, self.clock() - oldest)

    # -- route / render ----------------------------------------------------------------------

    def _route(self, decoded: Sequence[Any], batch: _Batch) -> dict[str, Notification | Poison]:
        """Route every record; one item per ledger key, the first occurrence (lowest sequence
        number) owning it."""
        owners: dict[str, Notification | Poison] = {}
        for entry in decoded:
            batch.seq[entry.index] = entry.sequence_number
            if hasattr(entry, "error"):  # a RecordError from errors="collect"
                routed: list[Notification | Poison | Skipped] = [record_error_poison(entry)]
            else:
                routed = self._router.route(entry)
                if not routed:
                    batch.stats["skipped"] += 1
            for item in routed:
                if isinstance(item, Skipped):
                    batch.count("no_recipient", item.channel, item.event_type)
                elif item.key in owners:
                    batch.count("duplicates", item.channel, item.event_type)
                else:
                    owners[item.key] = item
        return owners

    def _render(
        self, chunk: list[Notification], batch: _Batch, poisons: list[Poison]
    ) -> list[tuple[Notification, Any]]:
        """Render a chunk in one call (the GIL is released in Rust); failures go to
        ``poisons``. Notifications of channels that render nothing get ``None``."""
        links = self.unsubscribe_links
        if links is not None:
            for n in chunk:
                if n.user_id:
                    n.unsubscribe_url, batch.headers[n.key] = links(
                        n.user_id, n.category, n.channel
                    )
        to_render = [n for n in chunk if n.template is not None]
        extra: dict[str, Any] = {}
        if links is not None:
            extra["notifications"] = [
                {"unsubscribe_url": n.unsubscribe_url} if n.unsubscribe_url else None
                for n in to_render
            ]
        rendered = iter(
            self.render(
                [n.record for n in to_render],
                [n.template for n in to_render if n.template is not None],
                [n.locale for n in to_render],
                **extra,
            )
            if to_render
            else ()
        )
        ready: list[tuple[Notification, Any]] = []
        for n in chunk:
            r = next(rendered) if n.template is not None else None
            problem = self._render_problem(n, r)
            if problem is None:
                ready.append((n, r))
            else:
                poisons.append(_poison(n, *problem))
        return ready

    def _render_problem(self, n: Notification, rendered: Any) -> tuple[str, str] | None:
        if isinstance(rendered, BaseException):
            return type(rendered).__name__, scrub(str(rendered))[:500]
        parts = self.channels[n.channel].required_parts
        if rendered is None:
            return None
        missing = [p for p in parts if not getattr(rendered, p, None)]
        if missing:
            return "TemplateError", f"template {n.template!r} rendered no {', '.join(missing)}"
        return None

    # -- one notification --------------------------------------------------------------------

    async def _gate(self, name: str, batch: _Batch) -> tuple[bool, bool | None]:
        """(may go, probe) for a call to dependency ``name`` (a channel or "ledger")."""
        breaker = self.breaker(name)
        if breaker.cooldown == 0.0:
            return True, None  # closed: the common case, no wait
        probe = await breaker.gate(batch.work)
        if probe is False:
            self._alarm(batch, name, breaker.code or "AccountFault")
            return False, None
        return True, probe

    def _alarm(self, batch: _Batch, name: str, code: str) -> None:
        key = (name, code)
        batch.alarms[key] = batch.alarms.get(key, 0) + 1
        batch.stats["account_faults"] += 1

    async def _claim(self, key: str, batch: _Batch, state: str) -> ClaimResult | None:
        """Claim ``key`` through the ledger's breaker; ``None`` when the ledger is paused."""
        go, probe = await self._gate("ledger", batch)
        if not go:
            return None
        claim = await self.ledger.claim(
            key,
            owner=batch.owner,
            lease_until=batch.lease_until,
            deadline=batch.work,
            takeover_unknown=self.config.delivery.unknown_outcome == "retry",
            state=state,
        )
        # A claim cut off by the deadline says nothing about the ledger's health.
        fault = claim.status is ClaimStatus.ERROR and claim.code != "Deadline"
        self.breaker("ledger").settle(probe, fault, claim.code)
        if fault:
            self._alarm(batch, "ledger", claim.code or "LedgerError")
        elif probe and claim.status is ClaimStatus.ERROR:
            self.breaker("ledger").probing = False
        return claim

    async def _deliver(
        self, n: Notification, rendered: Any, batch: _Batch, slots: asyncio.Semaphore
    ) -> None:
        channel = self.channels[n.channel]
        breaker = self.breaker(n.channel)
        while True:
            go, probe = await self._gate(n.channel, batch)
            if not go:
                self._transient(n, batch, "AccountFault")
                return
            async with slots:
                if probe is None and breaker.cooldown > 0.0:
                    continue  # paused while we waited for the slot: wait outside it
                if not await channel.reserve(batch.work):
                    breaker.settle(probe, False, None)
                    self._transient(n, batch, "DeadlineReached")
                    return
                if probe is None and breaker.cooldown > 0.0:
                    channel.unreserve()
                    continue
                await self._claim_and_send(n, rendered, batch, channel, breaker, probe)
                return

    async def _claim_and_send(
        self,
        n: Notification,
        rendered: Any,
        batch: _Batch,
        channel: Channel,
        breaker: Breaker,
        probe: bool | None,
    ) -> None:
        claim = await self._claim(n.key, batch, SENDING)
        if claim is None or claim.status is not ClaimStatus.CLAIMED:
            channel.unreserve()
            if probe:
                breaker.probing = False  # let another notification probe
            await self._not_claimed(n, claim, batch)
            return
        msg = Message(
            key=n.key,
            recipient=n.recipient,
            sender=n.sender or self.default_sender,
            rendered=rendered,
            locale=n.locale,
            event_type=n.event_type,
            record=n.record,
            headers=batch.headers.get(n.key, ()),
            tags=self.tagger(n) if self.tagger is not None else (),
        )
        result = await channel.send(msg, batch.work, reserved=True)
        if result.attempts > 1:  # throttles, 5xx and (under "retry") unknowns, retried here
            batch.count("retries", n.channel, n.event_type, result.attempts - 1)
        breaker.settle(probe, result.account_fault, result.code)
        await self._settle(n, result, batch)

    async def _not_claimed(self, n: Notification, claim: ClaimResult | None, batch: _Batch) -> None:
        if claim is None or claim.status is ClaimStatus.ERROR:
            if claim is not None and claim.uncertain:
                # The claim may have been written: give it back, so no SENDING entry is left
                # that a later owner would take for a send (it would be lost under assume_sent).
                await self.ledger.release_if_ours(n.key, owner=batch.owner, deadline=batch.final)
            self._transient(n, batch, claim.code if claim else "LedgerPaused")
        elif claim.status is ClaimStatus.DUPLICATE and batch.reconcile_run:
            # A parked send settled meanwhile: proven by SES's Send event (or resent by
            # another delivery of its record).
            batch.count("reconciled", n.channel, n.event_type)
        elif claim.status is ClaimStatus.DUPLICATE:
            batch.count("duplicates", n.channel, n.event_type)
        elif claim.status is ClaimStatus.IN_FLIGHT:
            batch.stats["in_flight"] += 1
            batch.count_route("failed_transient", n.channel, n.event_type)
            batch.transient.add(n.index)
        elif claim.status is ClaimStatus.RECONCILING:
            if batch.reconcile_run:
                # Not due yet: the reconcile queue's message comes back after its timeout.
                batch.count_route("failed_transient", n.channel, n.event_type)
                batch.transient.add(n.index)
            else:
                # Parked by an earlier delivery: make sure it is on the reconcile queue (the
                # ledger makes a second message harmless), then the stream may move on.
                batch.reconcile.append(n)
        elif claim.status is ClaimStatus.UNKNOWN_PRIOR and self._reconciles:
            # A dead owner may have sent it: let SES's Send event (or the clock) decide.
            await self._park(n, batch, prior_expired=True)
        elif claim.status is ClaimStatus.UNKNOWN_PRIOR:
            # A dead owner may have sent it; policy "assume_sent": at most once.
            assert batch.writer is not None
            if await batch.writer.commit(Commit(n.key, SENT, outcome="unknown")):
                batch.count("assumed_sent", n.channel, n.event_type)
            else:
                batch.count_route("failed_transient", n.channel, n.event_type)
                batch.transient.add(n.index)
        else:  # REJECTED: DynamoDB refuses this key; dead-letter it without a claim
            batch.poisons.append(
                (_poison(n, claim.code or "LedgerRejected", "the ledger refused this key"), False)
            )

    async def _settle(self, n: Notification, result: SendResult, batch: _Batch) -> None:
        """Make the result of a send durable (the slot is held until then)."""
        assert batch.writer is not None
        outcome = result.outcome
        policy = self.config.delivery.unknown_outcome
        if outcome is Outcome.UNKNOWN:
            batch.count("unknown_outcomes", n.channel, n.event_type)
        if outcome is Outcome.UNKNOWN and policy == "reconcile":
            await self._park(n, batch, prior_expired=False)
            return
        if outcome is Outcome.SENT or (outcome is Outcome.UNKNOWN and policy == "assume_sent"):
            if outcome is Outcome.SENT:
                commit = Commit(n.key, SENT, message_id=result.message_id)
            else:
                commit = Commit(n.key, SENT, outcome="unknown", error_code=result.code)
            if await batch.writer.commit(commit):
                key = "sent" if outcome is Outcome.SENT else "assumed_sent"
                batch.count(key, n.channel, n.event_type)
            else:
                # Sent, but not durably recorded: the record comes back, and finds SENDING.
                log.error("ledger commit failed after a send; key=%s", n.key)
                batch.count_route("failed_transient", n.channel, n.event_type)
                batch.transient.add(n.index)
        elif outcome is Outcome.PERMANENT:
            reason = scrub((result.reason or "").replace(n.recipient, "<recipient>"))[:500]
            batch.poisons.append((_poison(n, result.code or "Permanent", reason), True))
        else:  # TRANSIENT (account faults included), or UNKNOWN under "retry"
            if result.account_fault:
                self._alarm(batch, n.channel, result.code or "AccountFault")
            await batch.writer.release(n.key)
            self._transient(n, batch, result.code or outcome.value)

    @property
    def _reconciles(self) -> bool:
        return self.config.delivery.unknown_outcome == "reconcile"

    async def _park(self, n: Notification, batch: _Batch, *, prior_expired: bool) -> None:
        """Policy "reconcile": the send may have happened. Mark it UNKNOWN until
        ``reconcile_seconds`` from now and queue the record for the reconcile run, which
        resends it only if SES's Send event has not settled it by then."""
        until = self.clock() + self.config.delivery.reconcile_seconds
        state = await self.ledger.park_unknown(
            n.key,
            owner=batch.owner,
            reconcile_by=until,
            deadline=batch.final,
            prior_expired=prior_expired,
        )
        if state == UNKNOWN:
            batch.reconcile.append(n)
        elif state == SENT:
            batch.count("reconciled", n.channel, n.event_type)  # the Send event came first
        else:  # no answer, or the key moved on: the record comes back and looks again
            self._transient(n, batch, "ReconcilePark")

    async def _queue_for_reconcile(self, batch: _Batch) -> None:
        """Put the parked notifications' records on the reconcile queue (delayed)."""
        if self.reconcile_queue is None:
            # Without a queue nothing would ever settle them: keep them on the stream.
            for n in batch.reconcile:
                self._transient(n, batch, "NoReconcileQueue")
            return
        failures = [
            _failure(
                _poison(
                    n,
                    "UnknownOutcome",
                    "the send's outcome is unknown: waiting for its SES Send event",
                )
            )
            for n in batch.reconcile
        ]
        published = await self.reconcile_queue.publish(failures, batch.final)
        for n, status in zip(batch.reconcile, published, strict=True):
            if status is Published.OK:
                batch.count("reconciling", n.channel, n.event_type)
            else:  # comes back from the stream, finds UNKNOWN, is queued again
                self._transient(n, batch, "ReconcileQueue")

    async def _apply_preferences(
        self, to_send: list[Notification], batch: _Batch, slots: asyncio.Semaphore
    ) -> list[Notification]:
        """Read the batch's users' preferences (one read per distinct user) and record the
        opted-out and suppressed notifications as SKIPPED: never sent."""
        users = {n.user_id for n in to_send if n.user_id}
        try:
            prefs = await self.preferences.get_many(users, batch.work) if users else {}
        except Exception as exc:  # unknown preferences: never send, the records come back
            code = str(getattr(exc, "code", None) or type(exc).__name__)
            for n in to_send:
                self._alarm(batch, "preferences", code)
                self._transient(n, batch, "PreferencesUnavailable")
            return []
        keep: list[Notification] = []
        skip: list[tuple[Notification, str]] = []
        for n in to_send:
            p = prefs.get(n.user_id) if n.user_id else None
            decision = p.decision(n.category, n.channel, n.recipient) if p is not None else None
            if decision is None:
                keep.append(n)
            else:
                skip.append((n, str(decision)))

        async def record(n: Notification, decision: str) -> None:
            async with slots:
                claim = await self._claim(n.key, batch, SKIPPED)
            if claim is not None and claim.status is ClaimStatus.CLAIMED:
                batch.count(
                    "suppressed" if decision == "suppressed" else "opted_out",
                    n.channel,
                    n.event_type,
                )
            elif claim is not None and claim.status is ClaimStatus.DUPLICATE:
                batch.count("duplicates", n.channel, n.event_type)  # already final
            else:
                self._transient(n, batch, claim.code if claim else "LedgerPaused")

        if skip:
            await asyncio.gather(*(record(n, d) for n, d in skip))
        return keep

    def _transient(self, n: Notification, batch: _Batch, code: str | None) -> None:
        """Report the record (it comes back), unless it is about to leave the stream."""
        created = getattr(n.record, "approximate_creation_time", None)
        if isinstance(created, int | float) and self.clock() - created > self.expiry_guard_seconds:
            batch.expiring.append((n, code or "Transient"))
        else:
            batch.count_route("failed_transient", n.channel, n.event_type)
            batch.transient.add(n.index)

    # -- poison and the failure queue --------------------------------------------------------

    async def _claim_poison(self, p: Poison, batch: _Batch, slots: asyncio.Semaphore) -> None:
        async with slots:
            claim = await self._claim(p.key, batch, PENDING)
            if claim is not None and claim.uncertain:
                await self.ledger.release_if_ours(p.key, owner=batch.owner, deadline=batch.final)
        if claim is None or claim.status in (ClaimStatus.ERROR, ClaimStatus.IN_FLIGHT):
            if claim is not None and claim.status is ClaimStatus.IN_FLIGHT:
                batch.stats["in_flight"] += 1
            batch.count_route("failed_transient", p.channel, p.event_type)
            batch.transient.add(p.index)
        elif claim.status is ClaimStatus.CLAIMED:
            batch.poisons.append((p, True))
        elif claim.status is ClaimStatus.REJECTED:
            batch.poisons.append((p, False))
        else:  # already FAILED (or SENT): nothing more to do
            batch.count("duplicates", p.channel, p.event_type)

    async def _dead_letter(self, batch: _Batch) -> None:
        assert batch.writer is not None
        failures = [_failure(p) for p, _ in batch.poisons]
        for n, code in batch.expiring:
            failures.append(
                _failure(_poison(n, "RecordExpiring", f"failing transiently ({code}) near expiry"))
            )
        published = await self.failure_queue.publish(failures, batch.final)
        waits: list[Any] = []
        for (p, claimed), status in zip(batch.poisons, published, strict=False):
            batch.count("failed_permanent", p.channel, p.event_type)
            log.warning(
                "permanent failure %s seq=%s key=%s: %s",
                p.error_code,
                p.sequence_number,
                p.key,
                p.reason,
            )
            if status is Published.OK or status is Published.REFUSED:
                if status is Published.OK:
                    batch.stats["dead_lettered"] += 1
                    reason = p.reason
                else:
                    log.error(
                        "failure queue refused the record even in its safe form; committed "
                        "FAILED without it: seq=%s key=%s",
                        p.sequence_number,
                        p.key,
                    )
                    reason = "failure queue refused the record: " + p.reason
                if claimed:
                    waits.append(
                        (
                            p.index,
                            batch.writer.commit(
                                Commit(p.key, FAILED, error_code=p.error_code, reason=reason)
                            ),
                        )
                    )
            else:
                # Not on the queue: never lose it; the record comes back and is retried.
                if claimed:
                    await batch.writer.release(p.key)
                batch.count_route("failed_transient", p.channel, p.event_type)
                batch.transient.add(p.index)
        for (n, _), status in zip(batch.expiring, published[len(batch.poisons) :], strict=True):
            if status is Published.ERROR:
                batch.transient.add(n.index)
            else:
                batch.stats["expiring_parked"] += 1
        for index, future in waits:
            if not await future:
                batch.transient.add(index)

    def _log_summary(self, batch: _Batch, seconds: float, record_age: float | None) -> None:
        stats = batch.stats
        delivered = stats["sent"] + stats["assumed_sent"]
        channels: dict[str, dict[str, int]] = {}
        for (channel, _), counts in batch.routes.items():
            per = channels.setdefault(channel, dict.fromkeys(ROUTE_STAT_KEYS, 0))
            for k, v in counts.items():
                per[k] += v
        summary = {
            "message": "batch",
            **stats,
            "write_units_per_notification": round(stats["write_units"] / delivered, 3)
            if delivered
            else None,
            "seconds": round(seconds, 3),
            "record_age_s": None if record_age is None else round(record_age, 3),
            "channels": {c: {k: v for k, v in d.items() if v} for c, d in sorted(channels.items())},
        }
        log.info(json.dumps(redact(summary), separators=(",", ":")))
        for (name, code), count in sorted(batch.alarms.items()):
            log.error(
                json.dumps(
                    redact(
                        {
                            "message": "account fault",
                            "alarm": "AccountFault",
                            "dependency": name,
                            "code": code,
                            "deferred": count,
                        }
                    ),
                    separators=(",", ":"),
                )
            )
        if self.metrics is not None:
            try:
                self.metrics(stats, seconds, routes=batch.routes, record_age_s=record_age)
            except Exception as exc:  # metrics never fail a batch that was delivered
                warning = {"message": "metrics not written", "error": str(exc)}
                log.warning(json.dumps(redact(warning), separators=(",", ":")))


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
        event_type=n.event_type,
    )


def _failure(p: Poison) -> Failure:
    return Failure(
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
