"""SIGKILL anywhere in a batch (issue #25, item 6): at most the sends in flight are exposed.

Each round: a worker process (kill_worker.py, max_concurrency 8, SES at ``RATE``/s) runs one
batch of 60-120 records, one recipient each, and is SIGKILLed at a seeded point: at a chosen
call of the ledger client or of ``send_one`` (before it, after it, or while it is awaited), or
by a timer of the parent at a random instant of the batch. Lambda then redelivers the same
event, first while the dead invocation's leases are live (nothing more may be sent for what it
left in flight, and all of that must be reported), then after they expired, until the response
reports no failure. moto's SES says how many emails each recipient got.

At the kill, two figures are taken (by the worker, synchronously, right before a hook kill; by
the parent after a timer kill): *exposed*, the sends started whose ledger entry is not
``SENT``/``FAILED``, and *uncommitted*, those plus every ledger entry in a state that is not
final (claimed or fenced, not committed). The promise, per kill: policy ``retry`` loses nothing
and duplicates at most the exposed sends (a duplicate needs a send that started);
``assume_sent`` duplicates nothing and loses at most the uncommitted entries (a claim fenced
before its send started is lost as well, e.g. one waiting for an SES rate token); both figures
at most ``max_concurrency``; and every key ends ``SENT``.

The per-kill table is printed and written to ``kill-table-<policy>.json`` (under pytest's tmp,
and in ``$NOTIFIER_KILL_TABLE_DIR`` when set) for docs/EXACTLY-ONCE.md. ``NOTIFIER_KILL_SEED``
replays another plan (hook kills are reproducible for a given seed and implementation; timer
instants are fractions of the calibrated batch time).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kill_helpers import FINAL_STATES, MAX_CONCURRENCY, Round, Worker, sent_messages
from pipeline_helpers import FakeContext

from notifier.handler import Handler
from notifier.local.moto_server import sent_emails
from notifier.pipeline import BatchFailedError

SEED = int(os.environ.get("NOTIFIER_KILL_SEED", "25"))
#: SES sends/s in the worker (token bucket: a burst of RATE, then RATE/s): a 100-record send
#: phase lasts about a second.
RATE = 50.0
CALIBRATION_SIZE = 100
#: One kill per entry: hook kills at a call of that phase, then timer kills.
PLAN = ("claim", "render", "send", "commit", "timer", "timer")
REDELIVERIES_AFTER_EXPIRY = 5


def _set_clock(handler: Handler, offset: float) -> None:
    """The handler's wall clock, ``offset`` seconds ahead (60: past every lease, no sleeping)."""
    handler.pipeline.clock = lambda: time.time() + offset
    handler.pipeline.ledger.clock = lambda: time.time() + offset


def _deliver(handler: Handler, rnd: Round, request_id: str) -> set[str]:
    """One delivery of the round's event; the sequence numbers reported as failed."""
    try:
        response = handler(rnd.event, FakeContext(request_id=request_id))
    except BatchFailedError:
        return set(rnd.sequence.values())
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def _settled(rnd: Round) -> tuple[Counter[str], dict[str, dict[str, Any]]]:
    """Emails and ledger entries of the round once moto has finished the requests the dead
    process had already sent it (a transaction of 100 updates takes moto a while)."""
    before = (rnd.emails(), rnd.ledger())
    while True:
        time.sleep(0.15)
        now = (rnd.emails(), rnd.ledger())
        if now == before:
            return now
        before = now


def _plan(rng: random.Random, calibration: dict[str, Any]) -> list[dict[str, Any]]:
    """The seeded kills: size of the batch and where it dies."""
    counts = calibration["counts"]
    kills = []
    for kind in PLAN:
        size = rng.randint(60, 120)
        scale = size / CALIBRATION_SIZE
        if kind == "timer":
            expected = calibration["duration_s"] * scale
            kills.append(
                {"size": size, "mode": "timer", "after_s": rng.uniform(0.03, 0.9) * expected}
            )
            continue
        phase = kind if counts.get(kind) else "send"  # no such call in this implementation
        calls = max(1, int(counts[phase] * scale))
        whens = ("before", "after") if phase == "render" else ("before", "after", "during")
        kills.append(
            {
                "size": size,
                "mode": "hook",
                "phase": phase,
                "call": rng.randint(1, calls),
                "when": rng.choice(whens),
                "delay_s": rng.uniform(0.0, 0.015),
            }
        )
    return kills


@pytest.mark.parametrize("policy", ["retry", "assume_sent"])
def test_sigkill_anywhere_exposes_at_most_the_sends_in_flight(
    policy: str,
    provisioned: dict[str, str],
    write_config: Callable[..., Path],
    make_handler: Callable[..., Handler],
    tmp_path: Path,
) -> None:
    # GIVEN worker processes whose SES sends at RATE/s, and a handler of our own that redelivers
    worker_config = write_config(unknown_outcome=policy, rate=RATE)
    handler = make_handler(write_config(unknown_outcome=policy))
    rng = random.Random(f"{SEED}/{policy}")
    workers: list[Worker] = []

    def spawn(number: int) -> Worker:
        workers.append(Worker(worker_config, provisioned["queue_url"], tmp_path / f"r{number}"))
        return workers[-1]

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        # GIVEN a calibration round without a kill: every recipient gets exactly one email,
        # and it tells how many calls of each phase a batch makes, and how long it lasts
        calibration_round = Round.build(0, CALIBRATION_SIZE, seed=SEED)
        worker = spawn(0)
        worker.start(calibration_round.event, {"mode": "count"})
        assert worker.wait() == 0, worker.stderr()
        calibration = worker.report()
        assert not calibration["killed"], calibration
        assert set(calibration_round.emails().values()) == {1}
        # (the in-process read of moto's SES sees what its HTTP API reports)
        assert len(sent_emails(provisioned["endpoint"])) == len(sent_messages())
        assert {v["state"] for v in calibration_round.ledger().values()} == {"SENT"}
        assert calibration["counts"].get("send", 0) == CALIBRATION_SIZE, calibration
        calibration_round.forget()
        print(f"calibration: {calibration}")

        kills = _plan(rng, calibration)
        worker = spawn(1)
        for number, kill in enumerate(kills, start=1):
            rnd = Round.build(number, kill["size"], seed=SEED)
            # WHEN the worker runs the batch and is SIGKILLed at the planned point
            started_at = worker.start(rnd.event, {k: v for k, v in kill.items() if k != "size"})
            if kill["mode"] == "timer":
                time.sleep(max(0.0, started_at + kill["after_s"] - time.monotonic()))
                worker.kill()
            code = worker.wait()
            batch_s = time.monotonic() - started_at
            assert code in (0, -signal.SIGKILL), worker.stderr()
            dead = worker
            if number < len(kills):
                worker = spawn(number + 1)  # its start-up overlaps the redeliveries below
            row, found = _redeliver_and_count(
                handler, rnd, dead, kill, policy=policy, killed=code != 0
            )
            rows.append({"round": number, "policy": policy, **row, "batch_s": round(batch_s, 2)})
            problems += [f"round {number} ({row['phase']}, {row['when']}): {p}" for p in found]
            rnd.forget()
    finally:
        for w in workers:
            w.close()
        _write_table(rows, policy, tmp_path)

    assert not problems, "\n".join(problems) + "\n" + _format(rows)


def _redeliver_and_count(
    handler: Handler, rnd: Round, dead: Worker, kill: dict[str, Any], *, policy: str, killed: bool
) -> tuple[dict[str, Any], list[str]]:
    """Redeliver the dead worker's batch as Lambda would; (table row, problems found)."""
    t0 = time.monotonic()
    report = dead.report()
    at_kill, ledger = _settled(rnd)
    sends_started = rnd.event_ids_of(dead.sends_started())
    in_flight = {e for e, v in ledger.items() if v.get("state") not in FINAL_STATES}
    # Exposed: sends started whose entry is not final; uncommitted: those and every entry not
    # final (claimed or fenced, not committed). The worker measures both right before a hook
    # kill; after a timer kill they are read now (the ledger of a dead process stands still).
    exposed_now = {e for e in sends_started if e in in_flight or e not in ledger}
    exposed = report.get("exposed", len(exposed_now)) if killed else 0
    uncommitted = report.get("uncommitted", len(exposed_now | in_flight)) if killed else 0

    # WHEN Lambda redelivers while the dead invocation's leases are live
    _set_clock(handler, 0)
    reported = _deliver(handler, rnd, f"early-{rnd.number}")
    early = rnd.emails()
    # THEN nothing more is sent for what it left in flight, and all of that is reported
    problems = []
    resent = [e for e in in_flight if early[e] != at_kill[e]]
    unreported = [e for e in in_flight if rnd.sequence[e] not in reported]
    if resent:
        problems.append(f"{len(resent)} in-flight records re-sent before their leases expired")
    if unreported:
        problems.append(f"{len(unreported)} in-flight records not reported as failures")

    # WHEN it redelivers after the leases expired, until nothing is reported
    _set_clock(handler, 60)
    deliveries = 0
    while deliveries < REDELIVERIES_AFTER_EXPIRY:
        deliveries += 1
        if not _deliver(handler, rnd, f"late-{rnd.number}-{deliveries}"):
            break
    else:
        problems.append(f"records still reported after {deliveries} redeliveries")
    final = rnd.emails()
    states = Counter(v.get("state") for v in rnd.ledger().values())
    duplicates = sum(c - 1 for c in final.values() if c > 1)
    lost = sum(1 for c in final.values() if c == 0)

    # THEN "retry" loses nothing and duplicates at most the exposed sends; "assume_sent"
    # duplicates nothing and loses at most the uncommitted claims; both at most
    # max_concurrency; and every notification ends SENT
    for name, value in (("exposed", exposed), ("uncommitted", uncommitted)):
        if value > MAX_CONCURRENCY:
            problems.append(f"{value} {name} > max_concurrency {MAX_CONCURRENCY}")
    if policy == "retry":
        if lost:
            problems.append(f"{lost} lost under 'retry'")
        if duplicates > min(exposed, MAX_CONCURRENCY):
            problems.append(f"{duplicates} duplicates > exposed {exposed} (max {MAX_CONCURRENCY})")
    else:
        if duplicates:
            problems.append(f"{duplicates} duplicates under 'assume_sent'")
        if lost > min(uncommitted, MAX_CONCURRENCY):
            problems.append(f"{lost} lost > uncommitted {uncommitted} (max {MAX_CONCURRENCY})")
    if states != Counter({"SENT": len(rnd.recipients)}):
        problems.append(f"ledger ends {dict(states)}")
    row = {
        "kill": kill["mode"],
        "phase": report.get("phase", _timer_phase(sends_started, len(rnd.recipients)))
        if killed
        else "completed",
        "when": report.get("when", f"{kill.get('after_s', 0):.3f}s"),
        "call": report.get("call", ""),
        "at_s": report.get("at_s", round(kill.get("after_s", 0), 3)),
        "records": len(rnd.recipients),
        "sends_started": len(sends_started),
        "emails_at_kill": sum(at_kill.values()),
        "in_flight": len(in_flight),
        "exposed": exposed,
        "uncommitted": uncommitted,
        "duplicates": duplicates,
        "lost": lost,
        "late_deliveries": deliveries,
        "redelivery_s": round(time.monotonic() - t0, 2),
    }
    return row, problems


def _timer_phase(sends_started: set[str], size: int) -> str:
    """Where a timer kill landed, judged by the sends it had started."""
    if not sends_started:
        return "timer: no send yet"
    return "timer: sending" if len(sends_started) < size else "timer: all sends started"


def _format(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no kills)"
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = [" | ".join(c.ljust(width[c]) for c in cols)]
    lines += [" | ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _write_table(rows: list[dict[str, Any]], policy: str, tmp_path: Path) -> None:
    body = json.dumps({"seed": SEED, "rate": RATE, "rows": rows}, indent=1)
    (tmp_path / f"kill-table-{policy}.json").write_text(body)
    out = os.environ.get("NOTIFIER_KILL_TABLE_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"kill-table-{policy}.json").write_text(body)
    print(f"\nkill table, policy {policy}, seed {SEED}:\n{_format(rows)}")
