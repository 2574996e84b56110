"""``notifier redrive``: run dead-lettered records through the same pipeline again.

Reads the failure queue (``NOTIFIER_FAILURE_QUEUE_URL``, else the queue named
``NOTIFIER_FAILURE_QUEUE``, default ``notifier-failures``; ``--queue-url`` wins), and optionally
the ESM on-failure destination queue (``--stream-failures-queue``: ``DDBStreamBatchInfo``
metadata, whose ranges are read back from the stream while it retains them), and hands the
records to the real handler (``build_handler()``) in batches, as the ESM would. The ledger's
dedup keys make a second run, or two runs at once, send nothing twice.

A message is deleted only after its record's outcome is committed: the handler returned
without raising and did not list the record's sequence number in ``batchItemFailures``.
Messages skipped by a filter, truncated (``record_truncated``), unreadable, blocked by a FAILED
ledger entry (without ``--retry-failed``) or still failing stay on the queue; at the end of
the run they are made visible again.

``--retry-failed``: a record that failed permanently holds a FAILED ledger entry; the pipeline
counts a record whose key is FAILED as a duplicate and sends nothing. After fixing the cause
(a template, the config), ``--retry-failed`` deletes that entry, only if its state is still
FAILED (a conditional DeleteItem), just before running the record. If it fails again the
pipeline dead-letters it again as a new message, and the old message is deleted.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO, Any

from notifier.ops._common import UsageError, guarded, iso, parse_duration

__all__ = ["RedriveOptions", "Summary", "add_arguments", "redrive", "run"]

_STAT_DELTA = ("sent", "duplicates", "dead_lettered", "expiring_parked", "in_flight")


# ---------------------------------------------------------------------------------------------
# options and summary


@dataclass
class RedriveOptions:
    queue_url: str | None = None
    stream_failures_queue: str | None = None
    reasons: Sequence[str] = ()
    error_codes: Sequence[str] = ()
    event_types: Sequence[str] = ()
    older_than_s: float | None = None
    newer_than_s: float | None = None
    limit: int | None = None
    dry_run: bool = False
    retry_failed: bool = False
    batch_size: int = 50
    timeout_s: float = 120.0
    visibility_timeout_s: int = 300
    wait_seconds: int = 1
    progress: bool | None = None  # None: when stderr is a terminal


@dataclass
class Summary:
    read: int = 0
    redriven: int = 0
    sent: int = 0
    duplicates: int = 0
    still_failing: int = 0
    failed_again: int = 0
    skipped_by_filter: int = 0
    truncated: int = 0
    blocked_failed: int = 0
    cleared_failed: int = 0
    unreadable: int = 0
    #: messages the pipeline queued anew during this run (records that failed again): kept
    requeued: int = 0
    stream_ranges: int = 0
    stream_records: int = 0
    stream_unavailable: int = 0
    would_send: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("notes")
        return d

    def line(self, dry_run: bool) -> str:
        parts = [f"read {self.read}"]
        if dry_run:
            parts.append(f"would redrive {self.would_send}")
        else:
            parts += [
                f"redriven {self.redriven}",
                f"sent {self.sent}",
                f"duplicates {self.duplicates}",
                f"still failing {self.still_failing + self.failed_again}",
            ]
            if self.failed_again:
                parts[-1] += f" ({self.failed_again} failed again, queued anew)"
            if self.cleared_failed:
                parts.append(f"FAILED entries cleared {self.cleared_failed}")
        parts += [f"skipped by filter {self.skipped_by_filter}", f"truncated {self.truncated}"]
        if self.blocked_failed:
            parts.append(f"blocked by FAILED ledger entries {self.blocked_failed}")
        if self.unreadable:
            parts.append(f"unreadable {self.unreadable}")
        if self.stream_ranges or self.stream_unavailable:
            parts.append(
                f"stream ranges {self.stream_ranges} ({self.stream_records} records, "
                f"{self.stream_unavailable} no longer readable)"
            )
        return "redrive: " + ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# messages


@dataclass
class _Message:
    message_id: str
    receipt: str
    sent_at: float | None  # epoch seconds (SQS SentTimestamp)
    body: dict[str, Any] | None

    @property
    def truncated(self) -> bool:
        return bool(self.body and self.body.get("record_truncated"))

    @property
    def ledger_key(self) -> str | None:
        v = (self.body or {}).get("ledger_key")
        return str(v) if v else None

    def record(self) -> dict[str, Any] | None:
        raw = (self.body or {}).get("record")
        if not isinstance(raw, str):
            return None
        try:
            rec = json.loads(raw)
        except ValueError:
            return None
        return rec if isinstance(rec, dict) else None


def _sequence(record: Mapping[str, Any]) -> str | None:
    ddb = record.get("dynamodb")
    if isinstance(ddb, Mapping) and ddb.get("SequenceNumber"):
        return str(ddb["SequenceNumber"])
    return None


def _path(image: Any, dotted: str) -> Any:
    """A string/number at ``dotted`` in a DynamoDB-JSON image, else ``None``."""
    node: Any = {"M": image} if isinstance(image, Mapping) else None
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or not isinstance(node.get("M"), Mapping):
            return None
        node = node["M"].get(part)
    if isinstance(node, Mapping):
        for tag in ("S", "N"):
            if tag in node:
                return node[tag]
    return None


def _event_type(record: Mapping[str, Any], type_path: str) -> str | None:
    ddb = record.get("dynamodb")
    if not isinstance(ddb, Mapping):
        return None
    v = _path(ddb.get("NewImage") or ddb.get("OldImage"), type_path)
    return None if v is None else str(v)


def _record_time(record: Mapping[str, Any]) -> float | None:
    ddb = record.get("dynamodb")
    if isinstance(ddb, Mapping):
        value = ddb.get("ApproximateCreationDateTime")
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            return None
    return None


class _Queue:
    """Receives every message of one queue once per run, deletes, and finally makes the
    messages it kept visible again."""

    def __init__(self, sqs: Any, url: str, opts: RedriveOptions) -> None:
        self.sqs = sqs
        self.url = url
        self.opts = opts
        self.seen: set[str] = set()
        self.kept: dict[str, str] = {}  # message id -> receipt handle
        self.exhausted = False

    def approximate(self) -> int:
        try:
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attrs.get("ApproximateNumberOfMessages", 0))
        except Exception:
            return 0

    def receive(self) -> list[_Message]:
        """The next messages not yet seen in this run ([] once the queue has none left)."""
        if self.exhausted:
            return []
        resp = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=self.opts.visibility_timeout_s,
            WaitTimeSeconds=self.opts.wait_seconds,
            MessageSystemAttributeNames=["SentTimestamp"],
        )
        out: list[_Message] = []
        for m in resp.get("Messages", []):
            mid = str(m["MessageId"])
            if mid in self.seen:
                self.kept[mid] = str(m["ReceiptHandle"])
                continue
            self.seen.add(mid)
            try:
                body = json.loads(m["Body"])
            except ValueError:
                body = None
            sent = m.get("Attributes", {}).get("SentTimestamp")
            out.append(
                _Message(
                    message_id=mid,
                    receipt=str(m["ReceiptHandle"]),
                    sent_at=float(sent) / 1000.0 if sent else None,
                    body=body if isinstance(body, dict) else None,
                )
            )
        if not out:
            self.exhausted = True
        return out

    def keep(self, msg: _Message) -> None:
        self.kept[msg.message_id] = msg.receipt

    def delete(self, msgs: Sequence[_Message]) -> int:
        deleted = 0
        for i in range(0, len(msgs), 10):
            chunk = msgs[i : i + 10]
            resp = self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(j), "ReceiptHandle": m.receipt} for j, m in enumerate(chunk)],
            )
            deleted += len(resp.get("Successful", []))
        return deleted

    def release(self) -> None:
        """Make every kept message visible again (so the next run, or a peer, sees it)."""
        items = list(self.kept.items())
        for i in range(0, len(items), 10):
            chunk = items[i : i + 10]
            # best effort: they reappear after the visibility timeout anyway
            with contextlib.suppress(Exception):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {"Id": str(j), "ReceiptHandle": rh, "VisibilityTimeout": 0}
                        for j, (_, rh) in enumerate(chunk)
                    ],
                )
        self.kept.clear()


# ---------------------------------------------------------------------------------------------
# the run


class _Progress:
    def __init__(self, enabled: bool, total: int, stream: IO[str]) -> None:
        self.enabled = enabled
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-6)
        rate = done / elapsed
        left = max(0, self.total - done)
        eta = f"~{left / rate:.0f}s left" if rate > 0 and left else "-"
        self.stream.write(f"\rredrive: {done}/{self.total} read, {rate:.1f}/s, {eta}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class _Runner:
    def __init__(
        self,
        opts: RedriveOptions,
        *,
        sqs: Any,
        ddb: Any,
        streams: Any,
        ledger_table: str,
        type_path: str,
        make_handler: Callable[[], Any],
        out: IO[str],
        err: IO[str],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.opts = opts
        self.sqs = sqs
        self.ddb = ddb
        self.streams = streams
        self.ledger_table = ledger_table
        self.type_path = type_path
        self._make_handler = make_handler
        self._handler: Any = None
        self.out = out
        self.err = err
        self.now = now
        self.summary = Summary()
        self.matched = 0
        #: records run in this run (by sequence number): a message for one of them received
        #: later is the pipeline's new dead-letter of a record that failed again, not run twice
        self.ran: set[str] = set()

    # -- helpers ----------------------------------------------------------------------------

    @property
    def handler(self) -> Any:
        if self._handler is None:
            self._handler = self._make_handler()
        return self._handler

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()

    def _limit_reached(self) -> bool:
        return self.opts.limit is not None and self.matched >= self.opts.limit

    def _age_ok(self, when: float | None) -> bool:
        o = self.opts
        if o.older_than_s is None and o.newer_than_s is None:
            return True
        if when is None:
            return False
        age = self.now() - when
        if o.older_than_s is not None and age < o.older_than_s:
            return False
        return not (o.newer_than_s is not None and age > o.newer_than_s)

    def _matches(self, msg: _Message, record: Mapping[str, Any] | None) -> bool:
        o = self.opts
        body = msg.body or {}
        if o.reasons and not any(
            r.lower() in str(body.get("reason", "")).lower() for r in o.reasons
        ):
            return False
        if o.error_codes and str(body.get("error_code", "")) not in o.error_codes:
            return False
        if o.event_types:
            et = _event_type(record, self.type_path) if record is not None else None
            if et not in o.event_types:
                return False
        when = msg.sent_at
        if when is None and record is not None:
            when = _record_time(record)
        return self._age_ok(when)

    def _state(self, key: str) -> str | None:
        resp = self.ddb.get_item(
            TableName=self.ledger_table,
            Key={"pk": {"S": key}},
            ConsistentRead=True,
            ProjectionExpression="#s",
            ExpressionAttributeNames={"#s": "state"},
        )
        item = resp.get("Item")
        return str(item["state"]["S"]) if item and "state" in item else None

    def _clear_failed(self, key: str) -> bool:
        """Delete ``key``'s ledger entry only if its state is FAILED."""
        try:
            self.ddb.delete_item(
                TableName=self.ledger_table,
                Key={"pk": {"S": key}},
                ConditionExpression="#s = :failed",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":failed": {"S": "FAILED"}},
            )
            return True
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                return False  # no longer FAILED: someone else is on it, or it was sent
            raise

    def _call(self, records: list[dict[str, Any]]) -> set[str] | None:
        """Run ``records`` through the handler; the failed sequence numbers, or ``None`` when
        the whole call failed. Adds the handler's counters to the summary."""
        from notifier.local.context import LambdaContext
        from notifier.pipeline import BatchFailedError

        h = self.handler
        before = {k: h.stats.get(k, 0) for k in _STAT_DELTA}
        try:
            resp = h({"Records": records}, LambdaContext(timeout_s=self.opts.timeout_s))
            failed: set[str] | None = {
                str(f.get("itemIdentifier")) for f in resp.get("batchItemFailures", [])
            }
        except BatchFailedError:
            failed = None
        except Exception as exc:  # the pipeline raised: nothing of this batch is settled
            self.summary.notes.append(f"handler raised {type(exc).__name__}")
            failed = None
        delta = {k: h.stats.get(k, 0) - before[k] for k in _STAT_DELTA}
        self.summary.sent += delta["sent"]
        self.summary.duplicates += delta["duplicates"]
        self.summary.failed_again += delta["dead_lettered"] + delta["expiring_parked"]
        return failed

    # -- the failure queue ------------------------------------------------------------------

    def failure_queue(self, queue: _Queue, progress: _Progress) -> None:
        while not self._limit_reached():
            chunk: list[tuple[_Message, dict[str, Any]]] = []
            while len(chunk) < self.opts.batch_size and not self._limit_reached():
                msgs = queue.receive()
                if not msgs:
                    break
                for msg in msgs:
                    self.summary.read += 1
                    progress.update(self.summary.read)
                    taken = self._triage(queue, msg)
                    if taken is not None:
                        if self._limit_reached():
                            queue.keep(msg)
                            continue
                        self.matched += 1
                        chunk.append((msg, taken))
            if not chunk:
                break
            if self.opts.dry_run:
                self._dry(queue, chunk)
            else:
                self._run_chunk(queue, chunk)
            if queue.exhausted:
                break

    def _triage(self, queue: _Queue, msg: _Message) -> dict[str, Any] | None:
        """The message's record when it is to be redriven; otherwise keep it and count why."""
        if msg.body is None:
            self.summary.unreadable += 1
            self.out.write(f"unreadable message {msg.message_id}: not a failure record, kept\n")
            queue.keep(msg)
            return None
        record = None if msg.truncated else msg.record()
        if not self._matches(msg, record):
            self.summary.skipped_by_filter += 1
            queue.keep(msg)
            return None
        if msg.truncated:
            self.summary.truncated += 1
            self.out.write(
                f"truncated: {msg.ledger_key or msg.message_id} (record of "
                f"{(msg.body or {}).get('record_bytes', '?')} bytes, not in the message): "
                "kept; redrive it from the source table\n"
            )
            queue.keep(msg)
            return None
        if record is None:
            self.summary.unreadable += 1
            self.out.write(f"unreadable record in message {msg.message_id}: kept\n")
            queue.keep(msg)
            return None
        return record

    def _group_key(self, msg: _Message, record: Mapping[str, Any]) -> str:
        return _sequence(record) or str(record.get("eventID") or msg.message_id)

    def _dry(self, queue: _Queue, chunk: list[tuple[_Message, dict[str, Any]]]) -> None:
        for msg, record in chunk:
            queue.keep(msg)
            key = msg.ledger_key
            state = self._state(key) if key else None
            if state == "FAILED":
                action = (
                    "would clear FAILED and redrive"
                    if self.opts.retry_failed
                    else "blocked: ledger FAILED (needs --retry-failed)"
                )
            elif state == "SENT":
                action = "already SENT: duplicate, would delete"
            else:
                action = "would redrive"
            if state != "FAILED" or self.opts.retry_failed:
                self.summary.would_send += 1
            else:
                self.summary.blocked_failed += 1
            body = msg.body or {}
            self.out.write(
                f"{key or '-'}  type={_event_type(record, self.type_path) or '-'}  "
                f"error={body.get('error_code') or '-'}  queued={iso(msg.sent_at) or '-'}  "
                f"ledger={state or '-'}  {action}\n"
            )

    def _run_chunk(self, queue: _Queue, chunk: list[tuple[_Message, dict[str, Any]]]) -> None:
        groups: dict[str, list[_Message]] = {}
        records: dict[str, dict[str, Any]] = {}
        for msg, record in chunk:
            g = self._group_key(msg, record)
            groups.setdefault(g, []).append(msg)
            records.setdefault(g, record)
        runnable: list[str] = []
        for g, msgs in groups.items():
            if g in self.ran:
                self.summary.requeued += len(msgs)
                for m in msgs:
                    queue.keep(m)
                continue
            keys = sorted({m.ledger_key for m in msgs if m.ledger_key})
            blocked = False
            for key in keys:
                if self._state(key) != "FAILED":
                    continue
                if self.opts.retry_failed:
                    if self._clear_failed(key):
                        self.summary.cleared_failed += 1
                else:
                    blocked = True
            if blocked:
                self.summary.blocked_failed += len(msgs)
                self.out.write(
                    f"blocked: {', '.join(keys)} is FAILED in the ledger; kept (fix the cause, "
                    "then redrive with --retry-failed)\n"
                )
                for m in msgs:
                    queue.keep(m)
                continue
            runnable.append(g)
        if not runnable:
            return
        self.ran.update(runnable)
        failed = self._call([records[g] for g in runnable])
        done: list[_Message] = []
        for g in runnable:
            seq = _sequence(records[g])
            if failed is None or (seq is not None and seq in failed):
                self.summary.still_failing += len(groups[g])
                for m in groups[g]:
                    queue.keep(m)
            else:
                done.extend(groups[g])
        self.summary.redriven += queue.delete(done)

    # -- the ESM on-failure destination -----------------------------------------------------

    def stream_queue(self, queue: _Queue, progress: _Progress) -> None:
        while not self._limit_reached():
            msgs = queue.receive()
            if not msgs:
                break
            for msg in msgs:
                self.summary.read += 1
                progress.update(self.summary.read)
                info = (msg.body or {}).get("DDBStreamBatchInfo")
                if not isinstance(info, Mapping):
                    self.summary.unreadable += 1
                    self.out.write(f"not a DDBStreamBatchInfo message {msg.message_id}: kept\n")
                    queue.keep(msg)
                    continue
                if (
                    self.opts.reasons
                    or self.opts.error_codes
                    or self._limit_reached()
                    or not self._age_ok(msg.sent_at)
                ):
                    self.summary.skipped_by_filter += 1
                    queue.keep(msg)
                    continue
                self.matched += 1
                self._stream_range(queue, msg, info)

    def _stream_range(self, queue: _Queue, msg: _Message, info: Mapping[str, Any]) -> None:
        label = (
            f"{info.get('shardId')} {info.get('startSequenceNumber')}.."
            f"{info.get('endSequenceNumber')}"
        )
        try:
            records = list(_read_range(self.streams, info))
        except _RangeUnavailableError as exc:
            self.summary.stream_unavailable += 1
            self.out.write(f"stream range {label}: {exc}; kept\n")
            queue.keep(msg)
            return
        self.summary.stream_ranges += 1
        if self.opts.event_types:
            records = [
                r for r in records if _event_type(r, self.type_path) in self.opts.event_types
            ]
        self.summary.stream_records += len(records)
        if self.opts.dry_run:
            self.summary.would_send += len(records)
            self.out.write(f"stream range {label}: {len(records)} records would be redriven\n")
            queue.keep(msg)
            return
        ok = True
        for i in range(0, len(records), self.opts.batch_size):
            batch = records[i : i + self.opts.batch_size]
            failed = self._call(batch)
            if failed is None or any(_sequence(r) in failed for r in batch):
                ok = False
                self.summary.still_failing += len(batch) if failed is None else len(failed)
        if ok and not self.opts.event_types:
            self.summary.redriven += queue.delete([msg])
        else:
            if ok:
                self.out.write(f"stream range {label}: only --event-type records redriven; kept\n")
            queue.keep(msg)


class _RangeUnavailableError(LookupError):
    """A stream range can no longer be read (past retention, stream gone)."""


def _wire(value: Any) -> Any:
    """boto3's decoded stream record -> the JSON Lambda delivers (base64 binaries, epoch times)."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, Mapping):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_wire(v) for v in value]
    return value


def _read_range(streams: Any, info: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The records ``startSequenceNumber .. endSequenceNumber`` of one shard, Lambda-shaped."""
    arn = str(info.get("streamArn") or "")
    shard = str(info.get("shardId") or "")
    start = str(info.get("startSequenceNumber") or "")
    end = int(str(info.get("endSequenceNumber") or start or "0"))
    if not (arn and shard and start):
        raise _RangeUnavailableError("incomplete DDBStreamBatchInfo")
    try:
        it = streams.get_shard_iterator(
            StreamArn=arn,
            ShardId=shard,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=start,
        ).get("ShardIterator")
        empty = 0
        while it:
            resp = streams.get_records(ShardIterator=it, Limit=1000)
            recs = resp.get("Records", [])
            for r in recs:
                seq = int(r["dynamodb"]["SequenceNumber"])
                if seq > end:
                    return
                rec = _wire(r)
                rec.setdefault("eventSourceARN", arn)
                yield rec
                if seq == end:
                    return
            empty = 0 if recs else empty + 1
            if empty >= 3:  # at the shard's tip without reaching the end: it is not there
                return
            it = resp.get("NextShardIterator")
    except _RangeUnavailableError:
        raise
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in (
            "TrimmedDataAccessException",
            "ResourceNotFoundException",
            "ExpiredIteratorException",
            "ValidationException",
        ):
            raise _RangeUnavailableError(f"no longer readable from the stream ({code})") from exc
        raise


def redrive(
    opts: RedriveOptions,
    *,
    sqs: Any,
    ddb: Any,
    streams: Any,
    failure_queue_url: str,
    ledger_table: str,
    type_path: str,
    make_handler: Callable[[], Any],
    out: IO[str],
    err: IO[str],
) -> Summary:
    """Redrive per ``opts``; returns the :class:`Summary` (also what ``run`` prints)."""
    runner = _Runner(
        opts,
        sqs=sqs,
        ddb=ddb,
        streams=streams,
        ledger_table=ledger_table,
        type_path=type_path,
        make_handler=make_handler,
        out=out,
        err=err,
    )
    queues = [_Queue(sqs, failure_queue_url, opts)]
    if opts.stream_failures_queue:
        queues.append(_Queue(sqs, opts.stream_failures_queue, opts))
    show = err.isatty() if opts.progress is None else opts.progress
    progress = _Progress(show, sum(q.approximate() for q in queues) if show else 0, err)
    try:
        runner.failure_queue(queues[0], progress)
        if len(queues) > 1:
            runner.stream_queue(queues[1], progress)
    finally:
        progress.update(runner.summary.read, force=True)
        progress.close()
        for q in queues:
            q.release()
        runner.close()
    return runner.summary


# ---------------------------------------------------------------------------------------------
# the command


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--queue-url",
        help="failure queue URL (default: NOTIFIER_FAILURE_QUEUE_URL, "
        "else the queue named NOTIFIER_FAILURE_QUEUE, default notifier-failures)",
    )
    p.add_argument(
        "--stream-failures-queue",
        metavar="URL",
        help="also redrive the ESM on-failure destination queue (DDBStreamBatchInfo "
        "messages: the ranges are read back from the stream)",
    )
    p.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="TEXT",
        help="only messages whose reason contains TEXT (repeatable)",
    )
    p.add_argument(
        "--error-code",
        action="append",
        default=[],
        metavar="CODE",
        help="only messages with this error_code (repeatable)",
    )
    p.add_argument(
        "--event-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="only records of this event type (repeatable)",
    )
    p.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="AGE",
        help="only messages queued at least AGE ago (90s, 15m, 2h, 1d)",
    )
    p.add_argument(
        "--newer-than",
        type=parse_duration,
        metavar="AGE",
        help="only messages queued at most AGE ago",
    )
    p.add_argument("--limit", type=int, metavar="N", help="redrive at most N messages")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be redriven; call nothing, delete nothing",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="delete a key's ledger entry if (and only if) it is FAILED before "
        "running its record, so a fixed template/config can send it",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=50,
        metavar="N",
        help="records per handler call (default 50)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="the emulated invocation's timeout per handler call (default 120)",
    )
    p.add_argument(
        "--visibility-timeout",
        type=int,
        default=300,
        metavar="SECONDS",
        help="how long received messages stay hidden from others (default 300)",
    )
    p.add_argument(
        "--wait-seconds",
        type=int,
        default=1,
        choices=range(0, 21),
        metavar="SECONDS",
        help="SQS long-poll wait per receive (default 1)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _options(args: argparse.Namespace) -> RedriveOptions:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.batch_size < 1 or args.batch_size > 10_000:
        raise UsageError("--batch-size must be between 1 and 10000")
    if args.timeout <= 5:
        raise UsageError("--timeout must exceed 5 seconds (the pipeline keeps a margin)")
    if not 0 <= args.visibility_timeout <= 43_200:
        raise UsageError("--visibility-timeout must be between 0 and 43200")
    return RedriveOptions(
        queue_url=args.queue_url,
        stream_failures_queue=args.stream_failures_queue,
        reasons=tuple(args.reason),
        error_codes=tuple(args.error_code),
        event_types=tuple(args.event_type),
        older_than_s=args.older_than,
        newer_than_s=args.newer_than,
        limit=args.limit,
        dry_run=args.dry_run,
        retry_failed=args.retry_failed,
        batch_size=args.batch_size,
        timeout_s=args.timeout,
        visibility_timeout_s=args.visibility_timeout,
        wait_seconds=args.wait_seconds,
    )


def _resolve_queue(sqs: Any, opts: RedriveOptions, settings: Any) -> str:
    if opts.queue_url:
        return opts.queue_url
    if settings.failure_queue_url:
        return str(settings.failure_queue_url)
    try:
        return str(sqs.get_queue_url(QueueName=settings.failure_queue_name)["QueueUrl"])
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise UsageError(
            f"failure queue {settings.failure_queue_name!r} (NOTIFIER_FAILURE_QUEUE) not "
            f"found ({code}); set NOTIFIER_FAILURE_QUEUE_URL or --queue-url"
        ) from exc


def _check_queue(sqs: Any, url: str, flag: str) -> None:
    try:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise UsageError(f"{flag}: queue {url!r} not usable ({code})") from exc


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        import boto3

        from notifier.config import load_config
        from notifier.handler import build_handler
        from notifier.settings import Settings

        opts = _options(args)
        settings = Settings.from_env()
        config = load_config(settings.config_path)
        session = boto3.session.Session(region_name=settings.region)
        sqs = session.client("sqs")
        url = _resolve_queue(sqs, opts, settings)
        _check_queue(sqs, url, "--queue-url" if opts.queue_url else "failure queue")
        if opts.stream_failures_queue:
            _check_queue(sqs, opts.stream_failures_queue, "--stream-failures-queue")
        summary = redrive(
            opts,
            sqs=sqs,
            ddb=session.client("dynamodb"),
            streams=session.client("dynamodbstreams"),
            failure_queue_url=url,
            ledger_table=settings.ledger_table,
            type_path=config.event_type_path,
            # failures of this run go back to the queue it reads (--queue-url included)
            make_handler=lambda: build_handler(replace(settings, failure_queue_url=url)),
            out=sys.stdout,
            err=sys.stderr,
        )
        if args.json:
            print(json.dumps(summary.as_dict(), indent=2))
        else:
            print(summary.line(opts.dry_run))
        for note in summary.notes:
            print(f"note: {note}", file=sys.stderr)
        left = (
            summary.still_failing
            + summary.failed_again
            + summary.blocked_failed
            + summary.stream_unavailable
            + summary.truncated
            + summary.unreadable
        )
        return 1 if left and not opts.dry_run else 0

    return guarded("redrive", body)
