"""Create (idempotently) everything the pipeline needs on any AWS-compatible endpoint, and
seed the source table with realistic events.

Resources: the source table ``notifier-events`` (stream NEW_AND_OLD_IMAGES, on-demand), the
ledger ``notifier-ledger`` (TTL on ``expires_at``), the preferences table
``notifier-preferences``, the failure queue ``notifier-failures``, the ESM on-failure
destination queue ``notifier-esm-failures``, the queue SES's events arrive on
``notifier-ses-events``, the reconcile queue ``notifier-reconcile`` and the SES identity
``example.com``. Running it twice changes nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_NAMES",
    "ProvisionError",
    "ResourceNames",
    "Resources",
    "aws_client",
    "provision",
    "seed_events",
]


class ProvisionError(RuntimeError):
    """A resource could not be created or seeded."""


@dataclass(frozen=True)
class ResourceNames:
    """The names of the resources the pipeline uses (defaults match ``Settings``)."""

    events_table: str = "notifier-events"
    ledger_table: str = "notifier-ledger"
    failure_queue: str = "notifier-failures"
    esm_failure_queue: str = "notifier-esm-failures"
    email_identity: str = "example.com"
    preferences_table: str = "notifier-preferences"
    #: Where SES's events arrive (SNS -> SQS in AWS; the local emulation writes here).
    ses_events_queue: str = "notifier-ses-events"
    #: Where ``unknown_outcome = "reconcile"`` parks unknown sends.
    reconcile_queue: str = "notifier-reconcile"


DEFAULT_NAMES = ResourceNames()
DEFAULT_NAMES_PREFS = DEFAULT_NAMES.preferences_table


@dataclass(frozen=True)
class Resources:
    """What ``provision`` created or found: names, ARNs and queue URLs."""

    events_table: str
    events_table_arn: str
    stream_arn: str
    ledger_table: str
    ledger_table_arn: str
    failure_queue_url: str
    failure_queue_arn: str
    esm_failure_queue_url: str
    esm_failure_queue_arn: str
    email_identity: str
    preferences_table: str = DEFAULT_NAMES_PREFS
    ses_events_queue_url: str = ""
    reconcile_queue_url: str = ""

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@functools.cache
def _session(region: str | None) -> Any:
    import boto3

    return boto3.session.Session(region_name=region)


def aws_client(service: str, endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 client; ``endpoint_url=None`` lets botocore read ``AWS_ENDPOINT_URL[_<SVC>]``.

    Clients come from one shared session (building a session per client costs ~0.3 s)."""
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "standard"})
    return _session(region).client(service, endpoint_url=endpoint_url, config=config)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _ensure_events_table(ddb: Any, name: str) -> dict[str, Any]:
    stream_spec = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    try:
        ddb.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification=stream_spec,
        )
    except Exception as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
    table = _wait_active(ddb, name)
    if not table.get("StreamSpecification", {}).get("StreamEnabled"):
        ddb.update_table(TableName=name, StreamSpecification=stream_spec)
        table = _wait_active(ddb, name)
    return table


def _ensure_ledger_table(ddb: Any, name: str) -> dict[str, Any]:
    try:
        ddb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except Exception as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
    table = _wait_active(ddb, name)
    ttl = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    return table


def _wait_active(ddb: Any, name: str, timeout_s: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        table: dict[str, Any] = ddb.describe_table(TableName=name)["Table"]
        if table.get("TableStatus") == "ACTIVE" or time.monotonic() > deadline:
            return table
        time.sleep(1.0)


def _ensure_queue(sqs: Any, name: str) -> tuple[str, str]:
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, str(attrs["QueueArn"])


def _ensure_identity(ses: Any, identity: str) -> None:
    try:
        ses.create_email_identity(EmailIdentity=identity)
    except Exception as exc:
        if _error_code(exc) != "AlreadyExistsException":
            raise


def provision(
    endpoint_url: str | None = None,
    *,
    region: str | None = None,
    names: ResourceNames = DEFAULT_NAMES,
) -> Resources:
    """Create the pipeline's resources if absent; return their names, ARNs and URLs."""
    ddb = aws_client("dynamodb", endpoint_url, region)
    sqs = aws_client("sqs", endpoint_url, region)
    ses = aws_client("sesv2", endpoint_url, region)
    events = _ensure_events_table(ddb, names.events_table)
    ledger = _ensure_ledger_table(ddb, names.ledger_table)
    _ensure_ledger_table(ddb, names.preferences_table)  # same shape: pk, TTL on expires_at
    failure_url, failure_arn = _ensure_queue(sqs, names.failure_queue)
    esm_url, esm_arn = _ensure_queue(sqs, names.esm_failure_queue)
    events_url, _ = _ensure_queue(sqs, names.ses_events_queue)
    reconcile_url, _ = _ensure_queue(sqs, names.reconcile_queue)
    _ensure_identity(ses, names.email_identity)
    return Resources(
        events_table=names.events_table,
        events_table_arn=str(events["TableArn"]),
        stream_arn=str(events["LatestStreamArn"]),
        ledger_table=names.ledger_table,
        ledger_table_arn=str(ledger["TableArn"]),
        failure_queue_url=failure_url,
        failure_queue_arn=failure_arn,
        esm_failure_queue_url=esm_url,
        esm_failure_queue_arn=esm_arn,
        email_identity=names.email_identity,
        preferences_table=names.preferences_table,
        ses_events_queue_url=events_url,
        reconcile_queue_url=reconcile_url,
    )


def seed_events(
    n: int,
    *,
    users: int = 100,
    seed: int = 0,
    start: int = 0,
    endpoint_url: str | None = None,
    region: str | None = None,
    table: str = DEFAULT_NAMES.events_table,
    on_progress: Callable[[int], None] | None = None,
    max_attempts: int = 10,
    client: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    concurrency: int = 1,
    decorate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> int:
    """Write events ``start .. start+n-1`` (``notifier.samples.make_item``) with
    BatchWriteItem in chunks of 25, retrying UnprocessedItems with backoff. Returns ``n``.

    ``client`` (a boto3 DynamoDB client, thread-safe) defaults to one for ``endpoint_url``.
    ``concurrency`` > 1 keeps that many BatchWriteItem calls in flight (threads), so that
    building and signing the next request overlaps the endpoint's work on the last one; the
    stream then holds the chunks in completion order, not in index order. ``decorate`` may
    change each item before it is written (the demo adds phones and devices)."""
    from concurrent.futures import ThreadPoolExecutor

    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    ddb = client if client is not None else aws_client("dynamodb", endpoint_url, region)
    chunks = [(lo, min(lo + 25, start + n)) for lo in range(start, start + n, 25)]

    def write(chunk: tuple[int, int]) -> int:
        _write_chunk(ddb, table, chunk, users, seed, max_attempts, sleep, decorate)
        return chunk[1] - chunk[0]

    written = 0
    if concurrency == 1:
        results: Any = map(write, chunks)
        for count in results:
            written += count
            if on_progress is not None:
                on_progress(written)
        return written
    with ThreadPoolExecutor(concurrency, thread_name_prefix="seed") as pool:
        # at most 2 x concurrency chunks built ahead: memory stays flat for any n
        pending: list[Any] = []
        for chunk in chunks:
            pending.append(pool.submit(write, chunk))
            if len(pending) >= 2 * concurrency:
                written += pending.pop(0).result()
                if on_progress is not None:
                    on_progress(written)
        for fut in pending:
            written += fut.result()
            if on_progress is not None:
                on_progress(written)
    return written


def _write_chunk(
    ddb: Any,
    table: str,
    chunk: tuple[int, int],
    users: int,
    seed: int,
    max_attempts: int,
    sleep: Callable[[float], None],
    decorate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    from boto3.dynamodb.types import TypeSerializer

    from notifier.samples import make_item

    ser = TypeSerializer()
    items = (make_item(i, users=users, seed=seed) for i in range(*chunk))
    if decorate is not None:
        items = (decorate(item) for item in items)
    requests: list[dict[str, Any]] = [
        {"PutRequest": {"Item": {k: ser.serialize(v) for k, v in item.items()}}} for item in items
    ]
    pending: dict[str, list[dict[str, Any]]] = {table: requests}
    for attempt in range(max_attempts):
        resp = ddb.batch_write_item(RequestItems=pending)
        pending = {t: r for t, r in (resp.get("UnprocessedItems") or {}).items() if r}
        if not pending:
            return
        sleep(min(2.0, 0.05 * 2**attempt))
    left = sum(len(v) for v in pending.values())
    raise ProvisionError(f"BatchWriteItem left {left} items unprocessed")
