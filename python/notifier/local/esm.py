"""The project's own emulation of the Lambda event source mapping (ESM) for DynamoDB Streams.

moto stores ESMs but never runs them (and, worse, drains the stream itself once one exists),
so the demo and the tests read the stream themselves, through the ordinary
``dynamodbstreams`` API, and invoke a handler the way Lambda would:

- batches of up to ``batch_size`` records (and at most 6 MB of payload), gathered for up to
  ``maximum_batching_window_s`` seconds;
- Lambda-format events ``{"Records": [...]}`` with ``eventSourceARN`` added and the payload
  parsed afresh for every invocation (a handler cannot see its own mutations on a retry);
- ``ReportBatchItemFailures``: checkpoint at the LOWEST failed sequence number and redeliver
  everything from there; an empty list (or a null response) is success; a malformed response
  (missing/empty ``itemIdentifier``, a misspelled key, an unknown sequence number) fails the
  whole batch;
- function errors (an exception, or running past the function timeout) retry the whole batch;
  ``bisect_batch_on_function_error`` splits it in two first (splits are not retries);
- ``maximum_retry_attempts`` and ``maximum_record_age_s`` bound the retries; the records then
  go (as metadata only, ``DDBStreamBatchInfo``) to the on-failure SQS destination and the
  shard moves past them.

Unlike Lambda, the emulator stops when the stream is drained (``idle_polls`` empty polls in a
row) so that a demo or a test ends. It is single-threaded and deterministic for a given
stream, handler and clock; ``clock`` and ``sleep`` are injectable.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from notifier.local.context import LambdaContext

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "EsmConfig",
    "EsmConfigError",
    "EsmStats",
    "Handler",
    "Invocation",
    "StreamEsm",
    "interpret_response",
]

#: The synchronous invoke payload limit: a batch never exceeds it.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: DynamoDB Streams GetRecords returns at most 1,000 records per call.
_GET_RECORDS_MAX = 1000

Handler = Callable[[Any, LambdaContext], Any]
Outcome = Literal["success", "partial", "malformed", "error", "timeout"]


class EsmConfigError(ValueError):
    """An ESM setting outside the range Lambda accepts."""


@dataclass(frozen=True)
class EsmConfig:
    """The event source mapping's settings (Lambda's names, in snake case; seconds as ``_s``)."""

    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    report_batch_item_failures: bool = True
    bisect_batch_on_function_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    on_failure_queue_url: str | None = None
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"
    function_name: str = "notifier"
    function_timeout_s: float = 60.0
    #: Stop after this many empty GetRecords polls in a row (the emulator's own end).
    idle_polls: int = 2
    #: Pause between polls that found nothing new (Lambda polls about 4 times a second).
    poll_interval_s: float = 0.0
    #: Give up after this many invocations (a guard against a poison record retried forever).
    max_invocations: int | None = None
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    #: Hand the handler a parsed dict (as the Python runtime does) or the raw payload bytes.
    payload: Literal["dict", "bytes"] = "dict"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise EsmConfigError(f"BatchSize must be 1..10000, got {self.batch_size}")
        if not 0 <= self.maximum_batching_window_s <= 300:
            raise EsmConfigError("MaximumBatchingWindowInSeconds must be 0..300")
        if not -1 <= self.maximum_retry_attempts <= 10_000:
            raise EsmConfigError("MaximumRetryAttempts must be -1..10000")
        age = self.maximum_record_age_s
        if age != -1 and not 60 <= age <= 604_800:
            raise EsmConfigError("MaximumRecordAgeInSeconds must be -1 or 60..604800")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise EsmConfigError("StartingPosition must be TRIM_HORIZON or LATEST")
        if self.function_timeout_s <= 0:
            raise EsmConfigError("the function timeout must be positive")
        if self.idle_polls < 1:
            raise EsmConfigError("idle_polls must be at least 1")
        if self.max_invocations is not None and self.max_invocations < 1:
            raise EsmConfigError("max_invocations must be at least 1")
        if self.payload not in ("dict", "bytes"):
            raise EsmConfigError("payload must be 'dict' or 'bytes'")


@dataclass(frozen=True)
class Invocation:
    """One invocation of the handler, as the emulator saw it."""

    shard_id: str
    sequence_numbers: tuple[str, ...]
    outcome: Outcome
    #: For a partial failure: the lowest failed sequence number (the new checkpoint).
    checkpoint: str | None
    latency_s: float
    error: str | None = None

    @property
    def size(self) -> int:
        return len(self.sequence_numbers)


@dataclass
class EsmStats:
    """Counters over one run of the emulator."""

    invocations: int = 0
    records_delivered: int = 0
    #: Records the shard checkpoint moved past after the handler succeeded on them.
    records_checkpointed: int = 0
    #: Deliveries of a record that had been delivered before (after a failure).
    redeliveries: int = 0
    successes: int = 0
    partial_failures: int = 0
    malformed_responses: int = 0
    function_errors: int = 0
    timeouts: int = 0
    retries: int = 0
    bisects: int = 0
    batches_to_on_failure: int = 0
    records_to_on_failure: int = 0
    records_expired: int = 0
    get_records_calls: int = 0
    latencies_s: list[float] = field(default_factory=list)
    stopped: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("latencies_s")
        d["latency_p50_s"] = percentile(self.latencies_s, 50)
        d["latency_p99_s"] = percentile(self.latencies_s, 99)
        return d


def percentile(samples: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of ``samples`` (0.0 when empty)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


@dataclass(frozen=True)
class _Rec:
    seq: str
    seq_int: int
    created: float  # precise ApproximateCreationDateTime, epoch seconds
    body: bytes  # the record's Lambda-format JSON


# --------------------------------------------------------------------------- response rules


def interpret_response(
    response: Any, sequence_numbers: Sequence[str]
) -> tuple[Outcome, str | None, str | None]:
    """Apply Lambda's ReportBatchItemFailures rules to a handler's return value.

    Returns ``(outcome, checkpoint, reason)``: ``("success", None, None)``,
    ``("partial", lowest_failed_sequence_number, None)`` or ``("malformed", None, reason)``.
    """
    if response is None:
        return "success", None, None
    if not isinstance(response, Mapping):
        return "malformed", None, f"response is a {type(response).__name__}, not an object"
    if "batchItemFailures" not in response:
        if not response:
            return "success", None, None
        keys = ", ".join(sorted(map(str, response)))
        return "malformed", None, f"no batchItemFailures key (got {keys})"
    failures = response["batchItemFailures"]
    if failures is None:
        return "success", None, None
    if not isinstance(failures, list):
        return "malformed", None, "batchItemFailures is not a list"
    if not failures:
        return "success", None, None
    known = {s: i for i, s in enumerate(sequence_numbers)}
    lowest: int | None = None
    for entry in failures:
        if not isinstance(entry, Mapping) or "itemIdentifier" not in entry:
            return "malformed", None, "an entry has no itemIdentifier"
        ident = entry["itemIdentifier"]
        if not isinstance(ident, str) or not ident:
            return "malformed", None, "an itemIdentifier is empty or not a string"
        index = known.get(ident)
        if index is None:
            return "malformed", None, f"itemIdentifier {ident!r} is not in the batch"
        lowest = index if lowest is None else min(lowest, index)
    assert lowest is not None
    return "partial", sequence_numbers[lowest], None


# --------------------------------------------------------------------------- record shape


def _wire(value: Any) -> Any:
    """boto3's parsed AttributeValue tree back to its JSON wire form (bytes -> base64)."""
    if isinstance(value, bytes | bytearray):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())
    return float(value)


def to_lambda_record(raw: Mapping[str, Any], stream_arn: str) -> tuple[dict[str, Any], float]:
    """A GetRecords record (as boto3 parsed it) in the Lambda event format, and its precise
    creation time. Lambda adds ``eventSourceARN`` and gives ``ApproximateCreationDateTime`` as
    whole epoch seconds."""
    ddb = dict(raw["dynamodb"])
    created = _epoch(ddb.get("ApproximateCreationDateTime", 0))
    ddb["ApproximateCreationDateTime"] = int(created)
    for key in ("Keys", "NewImage", "OldImage"):
        if key in ddb:
            ddb[key] = _wire(ddb[key])
    record: dict[str, Any] = {}
    for key in ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion"):
        if key in raw:
            record[key] = raw[key]
    record["dynamodb"] = ddb
    if "userIdentity" in raw:
        record["userIdentity"] = dict(raw["userIdentity"])
    record["eventSourceARN"] = stream_arn
    return record, created


# --------------------------------------------------------------------------- the shard reader


class _ShardReader:
    """GetShardIterator / GetRecords over one shard, re-seekable at a checkpoint."""

    def __init__(self, client: Any, stream_arn: str, shard_id: str, stats: EsmStats) -> None:
        self._client = client
        self._stream_arn = stream_arn
        self.shard_id = shard_id
        self._stats = stats
        self._iterator: str | None = None
        self._position: tuple[str, str | None] = ("TRIM_HORIZON", None)
        self.closed = False

    def seek(self, iterator_type: str, sequence_number: str | None = None) -> None:
        kwargs: dict[str, Any] = {
            "StreamArn": self._stream_arn,
            "ShardId": self.shard_id,
            "ShardIteratorType": iterator_type,
        }
        if sequence_number is not None:
            kwargs["SequenceNumber"] = sequence_number
        self._iterator = self._client.get_shard_iterator(**kwargs)["ShardIterator"]
        self._position = (iterator_type, sequence_number)
        self.closed = self._iterator is None

    def read(self, limit: int) -> list[dict[str, Any]]:
        if self._iterator is None:
            self.closed = True
            return []
        try:
            resp = self._client.get_records(ShardIterator=self._iterator, Limit=limit)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code != "ExpiredIteratorException":
                raise
            self.seek(*self._position)
            resp = self._client.get_records(ShardIterator=self._iterator, Limit=limit)
        self._stats.get_records_calls += 1
        records: list[dict[str, Any]] = resp.get("Records", [])
        self._iterator = resp.get("NextShardIterator")
        if self._iterator is None:
            self.closed = True
        if records:
            self._position = ("AFTER_SEQUENCE_NUMBER", records[-1]["dynamodb"]["SequenceNumber"])
        return records


# --------------------------------------------------------------------------- the ESM


class StreamEsm:
    """Consumes a DynamoDB stream and invokes ``handler`` as the Lambda ESM would.

    ``client`` is a boto3 ``dynamodbstreams`` client; ``sqs`` (optional) sends on-failure
    metadata to ``config.on_failure_queue_url``. ``clock`` gives epoch seconds (record age,
    batching window, the context's remaining time), ``sleep`` waits.
    """

    def __init__(
        self,
        client: Any,
        stream_arn: str,
        handler: Handler,
        config: EsmConfig | None = None,
        *,
        sqs: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_invocation: Callable[[Invocation], None] | None = None,
    ) -> None:
        self.config = config or EsmConfig()
        if self.config.on_failure_queue_url and sqs is None:
            raise EsmConfigError("an on-failure queue needs an SQS client")
        self._client = client
        self.stream_arn = stream_arn
        self._handler = handler
        self._sqs = sqs
        self._clock = clock
        self._sleep = sleep
        self._on_invocation = on_invocation
        self.stats = EsmStats()
        self.invocations: list[Invocation] = []
        self.on_failure_messages: list[dict[str, Any]] = []
        self._highest_delivered = -1

    # ---- public

    def run(self) -> EsmStats:
        """Consume every shard (parents before children) until drained; return the counters."""
        for shard in self._shards():
            self._run_shard(shard["ShardId"])
            if self.stats.stopped == "max_invocations":
                break
        if not self.stats.stopped:
            self.stats.stopped = "drained"
        return self.stats

    # ---- shards

    def _shards(self) -> Iterator[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            desc = self._client.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(desc.get("Shards", []))
            last = desc.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        ids = {s["ShardId"] for s in shards}
        done: set[str] = set()
        pending = list(shards)
        while pending:
            ready = [
                s
                for s in pending
                if s.get("ParentShardId") is None
                or s["ParentShardId"] in done
                or s["ParentShardId"] not in ids
            ]
            if not ready:  # a cycle cannot happen on AWS; be safe anyway
                ready = pending[:1]
            for s in ready:
                pending.remove(s)
                done.add(s["ShardId"])
                yield s

    def _run_shard(self, shard_id: str) -> None:
        cfg = self.config
        reader = _ShardReader(self._client, self.stream_arn, shard_id, self.stats)
        reader.seek(cfg.starting_position)
        buffer: deque[_Rec] = deque()
        limits: list[int] = []  # batch-size limits of pending bisected halves
        retry_key: str | None = None
        retries = 0
        while True:
            if cfg.max_invocations is not None and self.stats.invocations >= cfg.max_invocations:
                self.stats.stopped = "max_invocations"
                return
            limit = limits[0] if limits else cfg.batch_size
            batch = self._assemble(reader, buffer, limit)
            if batch is None:
                return
            batch = self._expire(shard_id, buffer, batch)
            if not batch:
                continue
            inv = self._invoke(shard_id, batch)
            if inv.outcome == "success":
                self.stats.records_checkpointed += len(batch)
                for _ in batch:
                    buffer.popleft()
                if limits:
                    limits.pop(0)
                retry_key, retries = None, 0
                continue
            if inv.outcome == "partial":
                assert inv.checkpoint is not None
                start = next(i for i, r in enumerate(batch) if r.seq == inv.checkpoint)
                self.stats.records_checkpointed += start
                failed = batch[start:]
                limits.clear()
            elif cfg.bisect_batch_on_function_error and len(batch) > 1:
                half = (len(batch) + 1) // 2
                limits[:1] = [half, len(batch) - half]
                self.stats.bisects += 1
                buffer.clear()
                reader.seek("AT_SEQUENCE_NUMBER", batch[0].seq)
                continue
            else:
                failed = batch
            if retry_key == failed[0].seq:
                retries += 1
            else:
                retry_key, retries = failed[0].seq, 1
            buffer.clear()
            if 0 <= cfg.maximum_retry_attempts < retries:
                self._discard(shard_id, failed, "RetryAttemptsExhausted", retries, inv)
                if limits:
                    limits.pop(0)
                retry_key, retries = None, 0
                reader.seek("AFTER_SEQUENCE_NUMBER", failed[-1].seq)
            else:
                self.stats.retries += 1
                reader.seek("AT_SEQUENCE_NUMBER", failed[0].seq)

    # ---- batching

    def _assemble(self, reader: _ShardReader, buffer: deque[_Rec], limit: int) -> list[_Rec] | None:
        cfg = self.config
        window = cfg.maximum_batching_window_s
        started: float | None = self._clock() if buffer else None
        idle = 0
        while len(buffer) < limit and not reader.closed:
            want = min(_GET_RECORDS_MAX, limit - len(buffer))
            got = reader.read(want)
            for raw in got:
                record, created = to_lambda_record(raw, self.stream_arn)
                seq = record["dynamodb"]["SequenceNumber"]
                body = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
                buffer.append(_Rec(seq, int(seq), created, body))
            if buffer and started is None:
                started = self._clock()
            if not buffer:
                idle += 1
                if reader.closed or idle >= cfg.idle_polls:
                    return None
                self._sleep(cfg.poll_interval_s)
                continue
            if len(got) == want:
                continue  # a full page: more may be waiting right now
            if window <= 0 or started is None:
                break
            remaining = started + window - self._clock()
            if remaining <= 0:
                break
            self._sleep(min(cfg.poll_interval_s or remaining, remaining))
        if not buffer:
            return None
        batch: list[_Rec] = []
        size = len(b'{"Records":[]}')
        for rec in buffer:
            if len(batch) >= limit or (batch and size + len(rec.body) + 1 > cfg.max_payload_bytes):
                break
            batch.append(rec)
            size += len(rec.body) + 1
        return batch

    def _expire(self, shard_id: str, buffer: deque[_Rec], batch: list[_Rec]) -> list[_Rec]:
        max_age = self.config.maximum_record_age_s
        if max_age < 0:
            return batch
        now = self._clock()
        n = 0
        while n < len(batch) and now - batch[n].created > max_age:
            n += 1
        if n:
            expired = batch[:n]
            for _ in expired:
                buffer.popleft()
            self.stats.records_expired += n
            self._discard(shard_id, expired, "RecordAgeExpired", 0, None)
        return batch[n:]

    # ---- invoking

    def _invoke(self, shard_id: str, batch: list[_Rec]) -> Invocation:
        cfg = self.config
        payload = b'{"Records":[' + b",".join(r.body for r in batch) + b"]}"
        event: Any = payload if cfg.payload == "bytes" else json.loads(payload)
        seqs = tuple(r.seq for r in batch)
        context = LambdaContext(
            function_name=cfg.function_name, timeout_s=cfg.function_timeout_s, clock=self._clock
        )
        self.stats.invocations += 1
        self.stats.records_delivered += len(batch)
        self.stats.redeliveries += sum(1 for r in batch if r.seq_int <= self._highest_delivered)
        self._highest_delivered = max(self._highest_delivered, batch[-1].seq_int)
        error: str | None = None
        checkpoint: str | None = None
        t0 = time.perf_counter()
        try:
            response = self._handler(event, context)
        except Exception as exc:
            outcome: Outcome = "error"
            error = f"{type(exc).__name__}: {exc}"
        else:
            if context.elapsed_s() > cfg.function_timeout_s:
                outcome, error = "timeout", f"Task timed out after {cfg.function_timeout_s:.2f} s"
            elif not cfg.report_batch_item_failures:
                outcome = "success"
            else:
                try:
                    json.dumps(response)
                except (TypeError, ValueError) as exc:
                    outcome, error = "malformed", f"response is not JSON: {exc}"
                else:
                    outcome, checkpoint, error = interpret_response(response, seqs)
        latency = time.perf_counter() - t0
        self.stats.latencies_s.append(latency)
        counter = {
            "success": "successes",
            "partial": "partial_failures",
            "malformed": "malformed_responses",
            "error": "function_errors",
            "timeout": "timeouts",
        }[outcome]
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        inv = Invocation(shard_id, seqs, outcome, checkpoint, latency, error)
        self.invocations.append(inv)
        if self._on_invocation is not None:
            self._on_invocation(inv)
        return inv

    # ---- on-failure destination

    def _discard(
        self,
        shard_id: str,
        records: list[_Rec],
        condition: str,
        invoke_count: int,
        inv: Invocation | None,
    ) -> None:
        self.stats.batches_to_on_failure += 1
        self.stats.records_to_on_failure += len(records)
        message = self.batch_info_message(shard_id, records, condition, invoke_count, inv)
        self.on_failure_messages.append(message)
        if self.config.on_failure_queue_url and self._sqs is not None:
            self._sqs.send_message(
                QueueUrl=self.config.on_failure_queue_url, MessageBody=json.dumps(message)
            )

    def batch_info_message(
        self,
        shard_id: str,
        records: list[_Rec],
        condition: str,
        invoke_count: int,
        inv: Invocation | None,
    ) -> dict[str, Any]:
        """The on-failure invocation record Lambda sends for discarded stream records:
        metadata only (``DDBStreamBatchInfo``), never the records themselves."""
        context = LambdaContext(function_name=self.config.function_name, clock=self._clock)

        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

        message: dict[str, Any] = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": context.invoked_function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "version": "1.0",
            "timestamp": iso(self._clock()),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0].seq,
                "endSequenceNumber": records[-1].seq,
                "approximateArrivalOfFirstRecord": iso(records[0].created),
                "approximateArrivalOfLastRecord": iso(records[-1].created),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        if inv is not None:
            response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
            if inv.outcome in ("error", "timeout"):
                response["functionError"] = "Unhandled"
            message["responseContext"] = response
        return message
