"""Run one stream batch through a real handler and SIGKILL this process at a seeded point.

Usage: python kill_worker.py CONFIG QUEUE_URL [TEMPLATES] (the AWS environment, and the
webhook secret of a multi-channel config, are inherited from the test). TEMPLATES: the
template folder; absent: the pipeline tests' templates; empty: the built-in set.

Protocol, one line each way, so the handler is built before the parent starts its clock:

- worker -> ``ready``: the handler is built (config, templates, clients).
- parent -> one JSON line, the spec: ``event`` (path of the stream event), ``report`` (path of
  the JSON report), ``send_log`` (path), ``mode`` and, for ``mode == "hook"``, ``phase``,
  ``call``, ``when`` and ``delay_s``.
- worker -> ``go``: printed just before the handler is called (a timer kill counts from here).

Modes: ``count`` runs the batch without a kill and reports the calls made per phase and the
batch's wall time (the parent's calibration); ``hook`` SIGKILLs at the ``call``-th call of
``phase`` (``before`` it, ``after`` it returns, or ``during`` it: ``delay_s`` after it
started), after writing the report with what is exposed (sends started whose ledger entry is
not final) and uncommitted (those and every ledger entry that is not final); ``timer``
installs no kill (the parent kills it) but still logs every send.

Phases are read off the calls, not off pipeline or ledger methods, so the worker survives a
rewrite of both: ``claim`` is any write of the ledger client (``handler.pipeline.ledger.client``)
that writes no final state, ``commit`` one that writes ``SENT`` or ``FAILED``, ``send`` the
channels' ``send_one``, ``render`` the pipeline's ``render`` callable (when it has one).

Every ``send_one`` entered appends its ledger key to ``send_log`` (one ``os.write`` on an
``O_APPEND`` descriptor, before the request goes out), so the parent can tell, after any kill,
which sends had started.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import boto3
from kill_helpers import FINAL_STATES, MAX_CONCURRENCY
from pipeline_helpers import LEDGER, TEMPLATES

from notifier.handler import build_handler
from notifier.settings import Settings

LEDGER_WRITES = (
    "put_item",
    "update_item",
    "delete_item",
    "batch_write_item",
    "transact_write_items",
)
LEDGER_READS = ("get_item", "batch_get_item", "query", "scan")


class _Context:
    """A Lambda context whose deadline is ``remaining_ms`` after creation."""

    aws_request_id = "doomed"
    function_name = "notifier"

    def __init__(self, remaining_ms: float) -> None:
        self._end = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


def written_states(op: str, params: dict[str, Any]) -> list[str]:
    """The ``state`` values a ledger call writes (empty for deletes and reads)."""
    if op == "put_item":
        return _item_state(params.get("Item"))
    if op == "update_item":
        return _update_states(params)
    if op == "batch_write_item":
        out: list[str] = []
        for requests in (params.get("RequestItems") or {}).values():
            for req in requests:
                out += _item_state((req.get("PutRequest") or {}).get("Item"))
        return out
    if op == "transact_write_items":
        out = []
        for entry in params.get("TransactItems") or []:
            if "Put" in entry:
                out += _item_state(entry["Put"].get("Item"))
            if "Update" in entry:
                out += _update_states(entry["Update"])
        return out
    return []


def _item_state(item: Any) -> list[str]:
    state = (item or {}).get("state") or {}
    return [state["S"]] if "S" in state else []


def _update_states(params: dict[str, Any]) -> list[str]:
    """``state`` values assigned by an UpdateExpression's SET clause."""
    expr = str(params.get("UpdateExpression") or "")
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    upper = expr.upper()
    start = upper.find("SET ")
    if start < 0:
        return []
    body = expr[start + 4 :]
    for clause in (" REMOVE ", " ADD ", " DELETE "):
        cut = body.upper().find(clause)
        if cut >= 0:
            body = body[:cut]
    out = []
    for assignment in body.split(","):
        target, eq, value = assignment.partition("=")
        if not eq:
            continue
        name = names.get(target.strip(), target.strip())
        v = values.get(value.strip()) or {}
        if name == "state" and "S" in v:
            out.append(v["S"])
    return out


class Harness:
    """Counts the calls per phase, logs sends, and kills at the spec's point."""

    def __init__(self, spec: dict[str, Any], table: str) -> None:
        self.spec = spec
        self.mode = spec["mode"]
        self.table = table
        self.counts: dict[str, int] = {}
        self.started: dict[str, str] = {}  # ledger key -> recipient, sends entered
        self.ddb = boto3.client("dynamodb")  # built now: the kill path only reads
        self._log = os.open(spec["send_log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._t0 = time.monotonic()

    def tick(self, phase: str) -> int:
        n = self.counts[phase] = self.counts.get(phase, 0) + 1
        return n

    def is_target(self, phase: str, n: int) -> bool:
        return self.mode == "hook" and phase == self.spec["phase"] and n == self.spec["call"]

    def exposure(self) -> tuple[list[str], list[str]]:
        """(exposed, uncommitted), read synchronously, so the loop and the whole pipeline stand
        still meanwhile. Exposed: sends started whose ledger entry is not final. Uncommitted:
        those and every entry of the ledger in a state that is not final (claimed, fenced, in
        flight: the parent keeps only the current round in the table)."""
        states: dict[str, str] = {}
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            resp = self.ddb.scan(**kwargs)
            for item in resp["Items"]:
                states[item["pk"]["S"]] = item.get("state", {}).get("S", "")
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        exposed = [k for k in self.started if states.get(k) not in FINAL_STATES]
        pending = [k for k, s in states.items() if s not in FINAL_STATES]
        return exposed, sorted(set(exposed) | set(pending))

    def die(self, phase: str, when: str, **extra: Any) -> NoReturn:
        exposed, uncommitted = self.exposure()
        report = {
            "killed": True,
            "phase": phase,
            "when": when,
            "at_s": round(time.monotonic() - self._t0, 3),
            "started": len(self.started),
            "exposed": len(exposed),
            "exposed_keys": exposed,
            "uncommitted": len(uncommitted),
            "uncommitted_keys": uncommitted,
            "counts": self.counts,
            **extra,
        }
        write_report(self.spec["report"], report)
        os.kill(os.getpid(), signal.SIGKILL)
        raise SystemExit("SIGKILL did not kill")  # pragma: no cover

    def log_send(self, key: str, recipient: str) -> None:
        self.started[key] = recipient
        os.write(self._log, (key + "\n").encode())

    async def around(self, phase: str, n: int, call: Any) -> Any:
        """Await ``call`` (a coroutine), killing around it if it is the target."""
        if not self.is_target(phase, n):
            return await call
        when = self.spec["when"]
        if when == "before":
            call.close()
            self.die(phase, when, call=n)
        if when == "during":
            loop = asyncio.get_running_loop()
            loop.call_later(self.spec["delay_s"], functools.partial(self.die, phase, when, call=n))
            await call
            self.die(phase, "during (returned first)", call=n)
        await call
        self.die(phase, when, call=n)

    def install(self, pipeline: Any) -> None:
        client = pipeline.ledger.client
        for op in (*LEDGER_WRITES, *LEDGER_READS):
            original = getattr(client, op, None)
            if original is not None:
                setattr(client, op, self._ledger_hook(op, original))
        for channel in pipeline.channels.values():
            if hasattr(channel, "send_one"):
                channel.send_one = self._send_hook(channel.send_one)
        render = getattr(pipeline, "render", None)
        if callable(render):
            pipeline.render = self._render_hook(render)

    def _ledger_hook(self, op: str, original: Any) -> Any:
        async def hooked(*args: Any, **kwargs: Any) -> Any:
            if op in LEDGER_READS:
                phase = "read"
            elif FINAL_STATES & set(written_states(op, kwargs)):
                phase = "commit"
            else:
                phase = "claim"
            n = self.tick(phase)
            return await self.around(phase, n, original(*args, **kwargs))

        return hooked

    def _send_hook(self, original: Any) -> Any:
        async def hooked(message: Any, *args: Any, **kwargs: Any) -> Any:
            n = self.tick("send")
            if self.is_target("send", n) and self.spec["when"] == "before":
                self.die("send", "before", call=n)
            self.log_send(message.key, message.recipient)
            return await self.around("send", n, original(message, *args, **kwargs))

        return hooked

    def _render_hook(self, original: Any) -> Any:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            n = self.tick("render")
            target = self.is_target("render", n)
            if target and self.spec["when"] == "before":
                self.die("render", "before", call=n)
            out = original(*args, **kwargs)
            if target:
                self.die("render", "after", call=n)
            return out

        return hooked


def write_report(path: str, report: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(report))
    os.replace(tmp, path)


def main() -> None:
    config, queue_url = sys.argv[1:3]
    templates = sys.argv[3] if len(sys.argv) > 3 else str(TEMPLATES)
    settings = Settings(
        config_path=config,
        templates_dir=templates or None,
        failure_queue_url=queue_url,
        ledger_table=LEDGER,
        max_concurrency=MAX_CONCURRENCY,
    )
    handler = build_handler(settings)
    print("ready", flush=True)
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("no spec")
    spec = json.loads(line)
    harness = Harness(spec, settings.ledger_table)
    harness.install(handler.pipeline)
    event = Path(spec["event"]).read_bytes()
    context = _Context(spec.get("remaining_ms", 20_000))
    print("go", flush=True)
    t0 = time.monotonic()
    try:
        response: Any = handler(event, context)
    except Exception as exc:  # BatchFailedError and the like: report, do not hide
        response = {"error": f"{type(exc).__name__}: {exc}"}
    duration = time.monotonic() - t0
    if spec["mode"] == "hook":
        # The target call never came (fewer calls than in calibration): die after returning,
        # a window of its own ("after commit, before returning").
        harness.die("returned", "after", call=0)
    write_report(
        spec["report"],
        {
            "killed": False,
            "counts": harness.counts,
            "duration_s": round(duration, 3),
            "started": len(harness.started),
            "response": response,
        },
    )
    handler.close()


if __name__ == "__main__":
    main()
