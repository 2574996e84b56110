"""Helpers of the kill harness (test_pipeline_kill.py): worker processes, rounds, read-backs.

Nothing here knows the ledger's API or its states beyond ``SENT`` / ``FAILED`` being final:
the ledger is read with boto3 straight from moto, emails are counted in moto's SES.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from pipeline_helpers import LEDGER

import notifier
from notifier.local.moto_server import LOCAL_CREDENTIALS
from notifier.samples import make_stream_record, user_email

WORKER = Path(__file__).with_name("kill_worker.py")
#: Concurrent sends of the worker's handler (``Settings.max_concurrency``): the bound on the
#: notifications a kill may leave claimed but not durably committed.
MAX_CONCURRENCY = 8
FINAL_STATES = frozenset({"SENT", "FAILED"})
#: Record numbers of round ``r`` start at ``r * ROUND_STRIDE``: event ids, sequence numbers
#: and recipients are distinct across rounds, so moto need not be reset between them.
ROUND_STRIDE = 1_000
REGION = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
#: The channel every record is routed to (conftest's BASE_CONFIG): ledger keys are
#: ``email#<event id>``.
CHANNEL = "email"


@dataclass(frozen=True)
class Round:
    """One batch: a stream event whose records each go to a distinct recipient."""

    number: int
    event: dict[str, Any]
    recipients: dict[str, str]  #: event id -> recipient
    sequence: dict[str, str]  #: event id -> sequence number

    @classmethod
    def build(cls, number: int, size: int, *, seed: int) -> Round:
        base = number * ROUND_STRIDE
        records = [
            make_stream_record(i, users=10**9, seed=seed, event_name="INSERT")
            for i in range(base, base + size)
        ]
        recipients, sequence = {}, {}
        for i, rec in zip(range(base, base + size), records, strict=True):
            event_id = rec["dynamodb"]["NewImage"]["event_id"]["S"]
            recipients[event_id] = user_email(i)
            sequence[event_id] = rec["dynamodb"]["SequenceNumber"]
        return cls(number, {"Records": records}, recipients, sequence)

    def emails(self) -> Counter[str]:
        """Emails moto's SES accepted, per event id of this round (0 when none)."""
        by_address = Counter(address for msg in sent_messages() for address in _to(msg))
        return Counter({e: by_address[r] for e, r in self.recipients.items()})

    def ledger(self) -> dict[str, dict[str, Any]]:
        """This round's ledger entries by event id (absent: never written, or released), read
        by key: ``<channel>#<dedup key>``, the dedup key being the event id."""
        ddb = boto3.client("dynamodb")
        by_key = {f"{CHANNEL}#{e}": e for e in self.recipients}
        keys = list(by_key)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 100):
            request: dict[str, Any] = {
                LEDGER: {
                    "Keys": [{"pk": {"S": k}} for k in keys[i : i + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                resp = ddb.batch_get_item(RequestItems=request)
                for item in resp["Responses"].get(LEDGER, []):
                    plain = {k: next(iter(v.values())) for k, v in item.items()}
                    out[by_key[plain["pk"]]] = plain
                request = resp.get("UnprocessedKeys") or {}
        return out

    def forget(self) -> None:
        """Delete the round's ledger entries. moto copies a whole table for every transaction
        (``TransactWriteItems``), so a table that kept every round would slow each one down."""
        ddb = boto3.client("dynamodb")
        keys = [f"{CHANNEL}#{e}" for e in self.recipients]
        for i in range(0, len(keys), 25):
            request: dict[str, Any] = {
                LEDGER: [{"DeleteRequest": {"Key": {"pk": {"S": k}}}} for k in keys[i : i + 25]]
            }
            while request:
                request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    def event_ids_of(self, keys: Iterable[str]) -> set[str]:
        """Event ids of ledger keys (``<channel>#<dedup key>``, dedup key = event id)."""
        ids = set(self.recipients)
        return {k.rsplit("#", 1)[-1] for k in keys} & ids


def sent_messages() -> list[Any]:
    """Every email moto's SES (v1 and v2) accepted, read from its backend in this process (the
    test session's moto server is threaded in-process), as moto documents for verifying sends.
    ``notifier.local.moto_server.sent_emails`` reads the same over HTTP (``data.json``), but
    that serialises every model instance moto ever tracked: tens of seconds, then timeouts,
    after a few thousand ledger writes."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def _to(msg: Any) -> list[str]:
    """The ``ToAddresses`` of a message (a moto model, or a ``data.json`` dict)."""
    dest = msg.get("destinations") if isinstance(msg, dict) else msg.destinations
    return list((dest or {}).get("ToAddresses") or [])


@dataclass
class Worker:
    """A ``kill_worker.py`` process: spawned early (its ~1 s start-up overlaps the parent's
    work), then given one round."""

    config: Path
    queue_url: str
    tmp: Path
    proc: subprocess.Popen[str] = field(init=False)
    _stderr: IO[str] = field(init=False)

    def __post_init__(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # The worker imports the very notifier the test imported.
        package_root = str(Path(notifier.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._stderr = (self.tmp / "stderr.txt").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.config), self.queue_url],
            cwd=WORKER.parent,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.wait(timeout=30)
            raise AssertionError(f"worker died early ({self.proc.returncode}): {self.stderr()}")
        return line

    def stderr(self) -> str:
        self._stderr.flush()
        return (self.tmp / "stderr.txt").read_text()[-3000:]

    def start(self, event: dict[str, Any], spec: dict[str, Any]) -> float:
        """Hand the worker its round; returns the monotonic time its batch started."""
        assert self._line() == "ready"
        (self.tmp / "event.json").write_text(json.dumps(event))
        spec = {
            **spec,
            "event": str(self.tmp / "event.json"),
            "report": str(self.tmp / "report.json"),
            "send_log": str(self.tmp / "sends.log"),
        }
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        assert self._line() == "go"
        return time.monotonic()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._stderr.close()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        return code

    def report(self) -> dict[str, Any]:
        path = self.tmp / "report.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def sends_started(self) -> list[str]:
        """Ledger keys whose ``send_one`` had been entered (the log survives SIGKILL)."""
        path = self.tmp / "sends.log"
        return path.read_text().split() if path.exists() else []

    def close(self) -> None:
        """Make sure the process is gone (a failing test must not leave it behind)."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            self.wait(timeout=10)
