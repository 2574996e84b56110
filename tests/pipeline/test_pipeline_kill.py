"""SIGKILL anywhere in a batch (issue #25, item 6): at most the sends in flight are exposed.

Each round: a worker process (kill_worker.py, max_concurrency 8, each channel at ``RATE``/s)
runs one batch and is SIGKILLed at a seeded point: at a chosen call of the ledger client or of
``send_one`` (before it, after it, or while it is awaited), or by a timer of the parent at a
random instant of the batch. Lambda then redelivers the same event, first while the dead
invocation's leases are live (nothing more may be sent for what it left in flight, and all of
that must be reported), then after they expired, until the response reports no failure.

Two configs (issue #28, item 5): ``email``, 60-120 records each to one recipient by email; and
``channels``, 10-20 records each to email, SMS, a webhook and every device of its user by
push (one or two: 45-90 notifications a round, fewer than ``email``'s to keep the run short).
Messages are counted per notification (ledger key) where they land: moto's SES, moto's SNS (SMS
by phone number; pushes on the platform endpoints, by the ``notification_id`` in each payload),
the local verifying webhook receiver (by ``webhook-id``).

At the kill, two figures are taken (by the worker, synchronously, right before a hook kill; by
the parent after a timer kill): *exposed*, the sends started whose ledger entry is not
``SENT``/``FAILED``, and *uncommitted*, those plus every ledger entry in a state that is not
final (claimed or fenced, not committed). The promise, per kill: policy ``retry`` loses nothing
and duplicates at most the exposed sends (a duplicate needs a send that started);
``assume_sent`` duplicates nothing and loses at most the uncommitted entries (a claim fenced
before its send started is lost as well, e.g. one waiting for an SES rate token); both figures
at most ``max_concurrency`` (the send slots are shared by all channels); and every key ends
``SENT``. Every other notification, of every channel, lands exactly once.

The per-kill table is printed and written to ``kill-table-<policy>.json`` (``email``) and
``kill-table-channels-<policy>.json`` (under pytest's tmp, and in ``$NOTIFIER_KILL_TABLE_DIR``
when set) for docs/EXACTLY-ONCE.md. ``NOTIFIER_KILL_SEED``
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kill_helpers import (
    FINAL_STATES,
    MAX_CONCURRENCY,
    WEBHOOK_SECRET_ENV,
    Round,
    Worker,
    channels_config,
    device_pool,
    sent_messages,
)
from pipeline_helpers import LEDGER, TEMPLATES, FakeContext

from notifier.channels.signing import generate_secret
from notifier.handler import Handler, build_handler
from notifier.local.moto_server import sent_emails
from notifier.local.webhook_receiver import WebhookReceiver
from notifier.pipeline import BatchFailedError
from notifier.settings import Settings

# Multi-process / timing-heavy: run on the main interpreter in CI, not on every CPython
# (.ci/test-pythons runs -m "not slow"; the fast suite covers the same code on each).
pytestmark = pytest.mark.slow

SEED = int(os.environ.get("NOTIFIER_KILL_SEED", "25"))
#: Sends/s of each channel in the worker (token bucket: a burst of RATE, then RATE/s): a
#: 100-notification send phase lasts about a second.
RATE = 50.0
#: Per config: records of the calibration round, and the range of a kill round's records.
SIZES = {"email": (100, (60, 120)), "channels": (16, (10, 20))}
#: One kill per entry: hook kills at a call of that phase, then timer kills. The ``channels``
#: config leaves out the render kill: the batch renders once, before its first claim, whatever
#: its channels, so that window is ``email``'s.
PLANS = {
    "email": ("claim", "render", "send", "commit", "timer", "timer"),
    "channels": ("claim", "send", "commit", "timer", "timer"),
}
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
    """Messages landed and ledger entries of the round, per ledger key, once moto and the
    receiver have finished the requests the dead process had already sent them (a transaction
    of 100 updates takes moto a while)."""
    before = (rnd.landed(), rnd.ledger())
    while True:
        time.sleep(0.15)
        now = (rnd.landed(), rnd.ledger())
        if now == before:
            return now
        before = now


def _plan(rng: random.Random, calibration: dict[str, Any], config: str) -> list[dict[str, Any]]:
    """The seeded kills: size of the batch and where it dies."""
    counts = calibration["counts"]
    calibration_size, (smallest, largest) = SIZES[config]
    kills = []
    for kind in PLANS[config]:
        size = rng.randint(smallest, largest)
        scale = size / calibration_size
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


@pytest.fixture
def channels_setup(
    provisioned: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """GIVEN, for the ``channels`` config: a verifying webhook receiver (its secret in the
    environment the workers inherit) and SNS device endpoints."""
    secret = generate_secret()
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, secret)
    with WebhookReceiver([secret]) as receiver:
        yield {"receiver": receiver, "devices": device_pool(8)}


@pytest.mark.parametrize("config", ["email", "channels"])
@pytest.mark.parametrize("policy", ["retry", "assume_sent"])
def test_sigkill_anywhere_exposes_at_most_the_sends_in_flight(
    policy: str,
    config: str,
    provisioned: dict[str, str],
    write_config: Callable[..., Path],
    make_handler: Callable[..., Handler],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    # GIVEN worker processes whose channels send at RATE/s each, and a handler of our own that
    # redelivers
    templates: Path | None = TEMPLATES
    if config == "email":
        worker_config = write_config(unknown_outcome=policy, rate=RATE)
        handler = make_handler(write_config(unknown_outcome=policy))

        def build_round(number: int, size: int) -> Round:
            return Round.build(number, size, seed=SEED)
    else:
        setup = request.getfixturevalue("channels_setup")
        receiver, devices = setup["receiver"], setup["devices"]
        worker_config = write_config(
            text=channels_config(policy=policy, rate=RATE, webhook_url=receiver.url)
        )
        templates = None  # the built-in set: it has the push variants
        own = channels_config(policy=policy, rate=2000, webhook_url=receiver.url)
        handler = build_handler(
            Settings(
                config_path=str(write_config(text=own)),
                failure_queue_url=provisioned["queue_url"],
                ledger_table=LEDGER,
                max_concurrency=16,
            )
        )
        request.addfinalizer(handler.close)

        def build_round(number: int, size: int) -> Round:
            return Round.build(number, size, seed=SEED, devices=devices, receiver=receiver)

    rng = random.Random(f"{SEED}/{policy}" if config == "email" else f"{SEED}/{config}/{policy}")
    workers: list[Worker] = []

    def spawn(number: int) -> Worker:
        workers.append(
            Worker(worker_config, provisioned["queue_url"], tmp_path / f"r{number}", templates)
        )
        return workers[-1]

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        # GIVEN a calibration round without a kill: every notification lands exactly once,
        # and it tells how many calls of each phase a batch makes, and how long it lasts
        calibration_round = build_round(0, SIZES[config][0])
        worker = spawn(0)
        worker.start(calibration_round.event, {"mode": "count"})
        assert worker.wait() == 0, worker.stderr()
        calibration = worker.report()
        assert not calibration["killed"], calibration
        assert set(calibration_round.landed().values()) == {1}
        # (the in-process read of moto's SES sees what its HTTP API reports)
        assert len(sent_emails(provisioned["endpoint"])) == len(sent_messages())
        assert {v["state"] for v in calibration_round.ledger().values()} == {"SENT"}
        assert calibration["counts"].get("send", 0) == len(calibration_round.keys), calibration
        calibration_round.forget()
        print(f"calibration ({config}): {calibration}")

        kills = _plan(rng, calibration, config)
        worker = spawn(1)
        for number, kill in enumerate(kills, start=1):
            rnd = build_round(number, kill["size"])
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
        _write_table(rows, policy if config == "email" else f"{config}-{policy}", tmp_path)

    assert not problems, "\n".join(problems) + "\n" + _format(rows)


def _redeliver_and_count(
    handler: Handler, rnd: Round, dead: Worker, kill: dict[str, Any], *, policy: str, killed: bool
) -> tuple[dict[str, Any], list[str]]:
    """Redeliver the dead worker's batch as Lambda would; (table row, problems found)."""
    t0 = time.monotonic()
    report = dead.report()
    at_kill, ledger = _settled(rnd)
    sends_started = rnd.keys_of(dead.sends_started())
    in_flight = {k for k, v in ledger.items() if v.get("state") not in FINAL_STATES}
    # Exposed: sends started whose entry is not final; uncommitted: those and every entry not
    # final (claimed or fenced, not committed). The worker measures both right before a hook
    # kill; after a timer kill they are read now (the ledger of a dead process stands still).
    exposed_now = {k for k in sends_started if k in in_flight or k not in ledger}
    # A request on the wire at the kill (a claim, a send) may still be carried out by moto
    # after the worker measured: what the settled ledger and landed counts show counts too.
    exposed = max(report.get("exposed", 0), len(exposed_now)) if killed else 0
    uncommitted = max(report.get("uncommitted", 0), len(exposed_now | in_flight)) if killed else 0

    # WHEN Lambda redelivers while the dead invocation's leases are live
    _set_clock(handler, 0)
    reported = _deliver(handler, rnd, f"early-{rnd.number}")
    early = rnd.landed()
    # THEN nothing more is sent for what it left in flight, and all of that is reported
    problems = []
    resent = [k for k in in_flight if early[k] != at_kill[k]]
    unreported = [k for k in in_flight if rnd.sequence[rnd.keys[k]] not in reported]
    if resent:
        problems.append(f"{len(resent)} in-flight notifications re-sent before lease expiry")
    if unreported:
        problems.append(f"{len(unreported)} in-flight notifications' records not reported")

    # WHEN it redelivers after the leases expired, until nothing is reported
    _set_clock(handler, 60)
    deliveries = 0
    while deliveries < REDELIVERIES_AFTER_EXPIRY:
        deliveries += 1
        if not _deliver(handler, rnd, f"late-{rnd.number}-{deliveries}"):
            break
    else:
        problems.append(f"records still reported after {deliveries} redeliveries")
    final = rnd.landed()
    states = Counter(v.get("state") for v in rnd.ledger().values())
    duplicates = sum(c - 1 for c in final.values() if c > 1)
    lost = sum(1 for c in final.values() if c == 0)
    by_channel = _by_channel(final)

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
    if states != Counter({"SENT": len(rnd.keys)}):
        problems.append(f"ledger ends {dict(states)}")
    row = {
        "kill": kill["mode"],
        "phase": report.get("phase", _timer_phase(sends_started, len(rnd.keys)))
        if killed
        else "completed",
        "when": report.get("when", f"{kill.get('after_s', 0):.3f}s"),
        "call": report.get("call", ""),
        "at_s": report.get("at_s", round(kill.get("after_s", 0), 3)),
        "records": len(rnd.recipients),
        "notifications": len(rnd.keys),
        "sends_started": len(sends_started),
        "landed_at_kill": sum(at_kill.values()),
        "in_flight": len(in_flight),
        "exposed": exposed,
        "uncommitted": uncommitted,
        "duplicates": duplicates,
        "lost": lost,
        "dup/lost by channel": by_channel,
        "late_deliveries": deliveries,
        "redelivery_s": round(time.monotonic() - t0, 2),
    }
    return row, problems


def _by_channel(final: Counter[str]) -> str:
    """``email 1/0 push 0/0 ...``: duplicates/lost per channel (the ledger key's prefix)."""
    per: dict[str, list[int]] = {}
    for key, count in final.items():
        dup_lost = per.setdefault(key.split("#", 1)[0], [0, 0])
        dup_lost[0] += max(0, count - 1)
        dup_lost[1] += count == 0
    return " ".join(f"{c} {d}/{lo}" for c, (d, lo) in sorted(per.items()))


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


def _write_table(rows: list[dict[str, Any]], name: str, tmp_path: Path) -> None:
    body = json.dumps({"seed": SEED, "rate": RATE, "rows": rows}, indent=1)
    (tmp_path / f"kill-table-{name}.json").write_text(body)
    out = os.environ.get("NOTIFIER_KILL_TABLE_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"kill-table-{name}.json").write_text(body)
    print(f"\nkill table, {name}, seed {SEED}:\n{_format(rows)}")
