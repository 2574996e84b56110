"""``notifier demo``: the whole pipeline on an embedded AWS, end to end.

Starts moto in server mode in-process (unless ``--endpoint-url`` names an AWS-compatible
endpoint that is already running), provisions the resources, writes ``--events`` realistic
events for ``--users`` users into the source table, then consumes the table's stream with the
local ESM emulator (``notifier.local.esm``) invoking the real handler
(``notifier.handler.build_handler()``), until the stream is drained. Prints a summary table
(or JSON with ``--json``).

Every run reads the stream from TRIM_HORIZON, so a second run against the same endpoint
re-delivers every earlier record: the ledger must turn all of them into duplicates
(``--replay`` writes nothing and shows exactly that).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any, TextIO

from notifier.local.environ import patched_environ

__all__ = ["add_arguments", "run"]

_DEFAULT_FACTORY = "notifier.handler:build_handler"
#: DynamoDB on-demand price, USD per million write request units (docs/FIELD-NOTES).
WRITE_UNIT_USD_PER_MILLION = 0.625


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``notifier demo`` options."""
    parser.formatter_class = _HelpFormatter
    aws = parser.add_argument_group("where")
    aws.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="use this running AWS-compatible endpoint (e.g. a moto server) instead of "
        "starting moto in-process",
    )
    aws.add_argument(
        "--region",
        default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        help="AWS region of the resources (AWS_DEFAULT_REGION)",
    )
    data = parser.add_argument_group("events")
    data.add_argument(
        "--events", type=_non_negative, default=1000, metavar="N", help="events to write"
    )
    data.add_argument(
        "--users", type=_positive, default=100, metavar="N", help="distinct recipients"
    )
    data.add_argument("--seed", type=_integer, default=0, help="sample data seed")
    data.add_argument(
        "--preferences",
        action="store_true",
        help="seed users' preferences (every 7th opted out of profile views) and give some "
        "users SES mailbox-simulator addresses that bounce or complain, to show opt-outs and "
        "suppressions",
    )
    data.add_argument(
        "--unknown-outcome",
        choices=("reconcile", "retry", "assume_sent"),
        default="reconcile",
        help="what a send whose reply was lost counts as: reconcile (wait for SES's Send "
        "event, else resend; default), retry (resend: at least once), assume_sent (at most "
        "once)",
    )
    data.add_argument(
        "--channels",
        type=_channels,
        default=("email",),
        metavar="LIST",
        help="channels to notify on, comma-separated from email, sms, push, webhook (SMS and "
        "push through moto's SNS, webhooks to a local verifying receiver); default: email",
    )
    data.add_argument(
        "--replay",
        action="store_true",
        help="write nothing; re-read the whole stream (from TRIM_HORIZON) to show that "
        "nothing is sent twice",
    )
    data.add_argument(
        "--send-rate",
        type=_positive_number,
        default=os.environ.get("NOTIFIER_MAX_SEND_RATE") or 1000.0,
        metavar="PER_S",
        help="send rate of every channel (NOTIFIER_MAX_SEND_RATE for SES); moto reports a "
        "sandbox rate of 1/s, far too slow for a demo",
    )
    esm = parser.add_argument_group("event source mapping (emulated)")
    esm.add_argument(
        "--batch-size",
        type=_batch_size,
        default=100,
        metavar="N",
        help=f"BatchSize: records per invocation, 1 to {MAX_BATCH_SIZE:,}",
    )
    esm.add_argument(
        "--batching-window",
        type=_batching_window,
        default=0.0,
        metavar="SECONDS",
        help="MaximumBatchingWindowInSeconds, 0 to 300",
    )
    esm.add_argument(
        "--bisect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="BisectBatchOnFunctionError",
    )
    esm.add_argument(
        "--max-retries",
        type=_max_retries,
        default=3,
        metavar="N",
        help="MaximumRetryAttempts, -1 (forever) to 10,000",
    )
    esm.add_argument(
        "--max-record-age",
        type=_max_record_age,
        default=-1,
        metavar="SECONDS",
        help="MaximumRecordAgeInSeconds, -1 (no limit) or 60 to 604,800",
    )
    esm.add_argument(
        "--function-timeout",
        type=_positive_number,
        default=60.0,
        metavar="SECONDS",
        help="the emulated function's timeout",
    )
    esm.add_argument(
        "--max-invocations",
        type=_positive,
        default=10_000,
        metavar="N",
        help="stop after this many invocations (guards against a poison record)",
    )
    faults = parser.add_argument_group(
        "fault injection into SES, SNS and webhooks (a reverse proxy)"
    )
    faults.add_argument(
        "--throttle-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability (0 to 1) that a send is throttled (HTTP 429)",
    )
    faults.add_argument(
        "--error-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability (0 to 1) that a send fails with HTTP 5xx",
    )
    faults.add_argument(
        "--lost-rate",
        type=_probability,
        default=0.0,
        metavar="P",
        help="probability (0 to 1) that a send goes through but its response is dropped "
        "(the outcome is unknown to the caller)",
    )
    faults.add_argument(
        "--fault-seed", type=_integer, default=0, help="seed of the fault injection's dice"
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the summary as JSON")
    out.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    parser.add_argument("--handler-factory", default=_DEFAULT_FACTORY, help=argparse.SUPPRESS)


#: The ESM's largest BatchSize for a DynamoDB stream.
MAX_BATCH_SIZE = 10_000


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (``None``) or the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or "(default:" in text:
            return text
        return super()._get_help_string(action)


def _whole(text: str, lowest: int, highest: int | None = None, what: str = "") -> int:
    """A whole number in [lowest, highest]; the message says what is expected, in words."""
    expected = what or (
        f"a whole number >= {lowest}"
        if highest is None
        else f"a whole number {lowest} to {highest:,}"
    )
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < lowest or (highest is not None and value > highest):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _number(text: str, lowest: float, highest: float, expected: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not math.isfinite(value) or not lowest <= value <= highest:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _integer(text: str) -> int:
    return _whole(text, -(2**63), 2**63, "a whole number")


def _positive(text: str) -> int:
    return _whole(text, 1)


def _non_negative(text: str) -> int:
    return _whole(text, 0)


def _channels(text: str) -> tuple[str, ...]:
    from notifier.local.channels_demo import CHANNELS, parse_channels

    try:
        return parse_channels(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (choose from {', '.join(CHANNELS)})") from exc


def _batch_size(text: str) -> int:
    return _whole(
        text, 1, MAX_BATCH_SIZE, f"a whole number 1 to {MAX_BATCH_SIZE:,} (the ESM's maximum)"
    )


def _max_retries(text: str) -> int:
    return _whole(text, -1, 10_000, "a whole number -1 (forever) to 10,000")


def _max_record_age(text: str) -> int:
    value = _whole(text, -1, 604_800, "-1 (no limit) or a whole number 60 to 604,800")
    if 0 <= value < 60:
        raise argparse.ArgumentTypeError(
            f"expected -1 (no limit) or a whole number 60 to 604,800, got {text!r}"
        )
    return value


def _probability(text: str) -> float:
    return _number(text, 0.0, 1.0, "a probability from 0 to 1")


def _positive_number(text: str) -> float:
    value = _number(text, 0.0, float("inf"), "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _batching_window(text: str) -> float:
    return _number(text, 0.0, 300.0, "a number of seconds from 0 to 300")


def _preflight() -> None:
    """The handler's own inputs (settings, NOTIFIER_CONFIG, NOTIFIER_TEMPLATES), checked
    before moto starts: each problem is one :class:`~notifier.cli.UsageError`."""
    from notifier.cli import UsageError
    from notifier.config import ConfigError, load_config
    from notifier.settings import Settings
    from notifier.templates import TemplateError, TemplateSet, builtin_templates

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        load_config(settings.config_path)
    except ConfigError as exc:
        raise UsageError(f"NOTIFIER_CONFIG {exc}") from exc
    try:
        from notifier.metrics import from_env

        from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    directory = settings.templates_dir or builtin_templates()
    if not os.path.isdir(directory):
        raise UsageError(f"NOTIFIER_TEMPLATES {directory}: no such folder")
    try:
        TemplateSet(directory)
    except TemplateError as exc:
        raise UsageError(f"NOTIFIER_TEMPLATES {directory}: {exc}") from exc


# --------------------------------------------------------------------------- environment


def _aws_env(endpoint_url: str, region: str) -> dict[str, str]:
    from notifier.local.moto_server import LOCAL_CREDENTIALS

    env = {"AWS_ENDPOINT_URL": endpoint_url, "AWS_DEFAULT_REGION": region}
    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        env.update({k: v for k, v in LOCAL_CREDENTIALS.items() if k != "AWS_DEFAULT_REGION"})
    return env


def _load_factory(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module_name), attr or "build_handler")


def _count_items(table: str) -> int:
    from notifier.local.provision import aws_client

    ddb = aws_client("dynamodb")
    count = 0
    kwargs: dict[str, Any] = {"TableName": table, "Select": "COUNT"}
    while True:
        page = ddb.scan(**kwargs)
        count += int(page.get("Count", 0))
        if "LastEvaluatedKey" not in page:
            return count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _emails_sent() -> int | None:
    """SES's own count of emails sent (GetSendQuota ``SentLast24Hours``; moto counts every
    v1 and v2 send there), or None when the endpoint does not answer it."""
    from notifier.local.provision import aws_client

    try:
        return int(aws_client("ses").get_send_quota()["SentLast24Hours"])
    except Exception:
        return None


# --------------------------------------------------------------------------- progress


def rate_and_eta(done: int, remaining: int, seconds: float) -> str:
    """``"412/s, 3s left "`` for a progress line; empty until there is a rate to show."""
    if done <= 0 or seconds <= 0:
        return ""
    rate = done / seconds
    left = remaining / rate
    when = f"{left:.0f}s" if left < 100 else f"{int(left // 60)}m{int(left % 60):02d}s"
    return f"{rate:,.0f}/s, {when} left " if remaining > 0 else f"{rate:,.0f}/s "


class _Progress:
    """A one-line progress bar on a terminal stream (no dependency)."""

    def __init__(self, stream: TextIO, enabled: bool, width: int = 30) -> None:
        self.stream = stream
        self.enabled = enabled
        self.width = width
        self._last = 0.0
        self._label = ""
        self._since = 0.0
        self._first = 0

    def show(self, label: str, done: int, total: int, extra: str = "", force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        if label != self._label:  # a new phase: its rate counts from here
            self._label, self._since, self._first = label, now, done
        frac = min(1.0, done / total) if total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        speed = rate_and_eta(done - self._first, total - done, now - self._since)
        self.stream.write(f"\r{label:<8} [{bar}] {done}/{total} {speed}{extra}\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        self._label = ""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> int:
    """Run the demo and print the summary. Exit status 0 when the stream was drained and the
    handler completed every record (the ESM checkpoint moved past all of them); 1 when
    records were left in the stream or skipped by the ESM to its on-failure destination."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        factory = _load_factory(args.handler_factory)
    except (ImportError, AttributeError) as exc:
        print(
            f"notifier demo: cannot load the handler {args.handler_factory}: {exc}", file=sys.stderr
        )
        return 2
    if tuple(args.channels) != ("email",) and os.environ.get("NOTIFIER_CONFIG"):
        from notifier.cli import UsageError

        raise UsageError(
            "--channels writes its own routing config; unset NOTIFIER_CONFIG or leave out "
            "--channels"
        )
    _preflight()
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    progress = _Progress(sys.stderr, bool(show))
    events = 0 if args.replay else args.events
    with ExitStack() as stack:
        started = time.perf_counter()
        embedded = args.endpoint_url is None
        if embedded:
            from notifier.local.moto_server import MotoServer

            progress.show("moto", 0, 1, "starting the embedded AWS", force=True)
            endpoint_url = stack.enter_context(MotoServer()).endpoint_url
        else:
            endpoint_url = args.endpoint_url.rstrip("/")
        stack.enter_context(patched_environ(_aws_env(endpoint_url, args.region)))
        summary = _run_pipeline(args, stack, endpoint_url, events, progress, factory, embedded)
        summary["endpoint"] = endpoint_url
        summary["embedded"] = embedded
        summary["elapsed_s"] = round(time.perf_counter() - started, 3)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=False))
    else:
        print(format_summary(summary))
    esm = summary["esm"]
    clean = (
        summary["unaccounted"] == 0
        and esm["on_failure_records"] == 0
        and esm["stopped"] == "drained"
    )
    return 0 if clean else 1


def _run_pipeline(
    args: argparse.Namespace,
    stack: ExitStack,
    endpoint_url: str,
    events: int,
    progress: _Progress,
    factory: Any,
    embedded: bool = True,
) -> dict[str, Any]:
    from notifier.local.channels_demo import DemoChannels
    from notifier.local.deliverability_demo import DemoDeliverability
    from notifier.local.esm import EsmConfig, StreamEsm, percentile
    from notifier.local.faults import FaultPlan, FaultProxy, sesv2_endpoint, sns_endpoint
    from notifier.local.provision import aws_client, provision, seed_events

    resources = provision(region=args.region)
    demo_channels = DemoChannels(
        tuple(args.channels),
        region=args.region,
        users=args.users,
        embedded=embedded,
        send_rate=args.send_rate,
        unknown_outcome=args.unknown_outcome,
    )
    deliv = DemoDeliverability(
        resources.ses_events_queue_url,
        resources.reconcile_queue_url,
        resources.ledger_table,
        resources.preferences_table,
        preferences=args.preferences,
    )
    stack.callback(deliv.close)
    # Every send goes through the proxy: it injects the faults asked for (none by default)
    # and its send observer is the local emulation of SES's event publishing.
    plan = FaultPlan(
        throttle_rate=args.throttle_rate,
        server_error_rate=args.error_rate,
        response_lost_rate=args.lost_rate,
        seed=args.fault_seed,
    )
    proxy = stack.enter_context(
        FaultProxy(endpoint_url, plan, send_observer=deliv.emulator.observe_send)
    )
    stack.enter_context(sesv2_endpoint(proxy.url))
    stack.enter_context(sns_endpoint(proxy.url))
    demo_channels.fault_proxy = proxy  # webhooks too: setup() writes the proxied URL
    if not os.environ.get("NOTIFIER_CONFIG"):
        if demo_channels.extra:
            progress.show("channels", 0, 1, ", ".join(demo_channels.channels), force=True)
        stack.enter_context(patched_environ(demo_channels.setup(stack)))
    stack.enter_context(
        patched_environ(
            {
                "NOTIFIER_LEDGER_TABLE": resources.ledger_table,
                "NOTIFIER_FAILURE_QUEUE_URL": resources.failure_queue_url,
                "NOTIFIER_MAX_SEND_RATE": str(args.send_rate),
                "NOTIFIER_PREFERENCES_TABLE": resources.preferences_table,
                "NOTIFIER_RECONCILE_QUEUE_URL": resources.reconcile_queue_url,
            }
        )
    )
    deliv.seed(args.users)

    def decorate(item: dict[str, Any]) -> dict[str, Any]:
        if demo_channels.extra:
            item = demo_channels.decorate(item)
        return deliv.decorate(item)

    existing = _count_items(resources.events_table)
    emails_before = _emails_sent()
    t_seed = time.perf_counter()
    if events:
        seed_events(
            events,
            users=args.users,
            seed=args.seed,
            start=existing,
            on_progress=lambda n: progress.show("write", n, events),
            # moto works on one request while the next is built and signed (docs/DEMO.md)
            concurrency=4,
            decorate=decorate if demo_channels.extra or args.preferences else None,
        )
        progress.show("write", events, events, force=True)
        progress.done()
    seed_s = time.perf_counter() - t_seed
    total = existing + events

    from notifier.cli import UsageError
    from notifier.config import ConfigError

    try:
        handler = factory()
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    stack.callback(getattr(handler, "close", lambda: None))
    config = EsmConfig(
        batch_size=args.batch_size,
        maximum_batching_window_s=args.batching_window,
        bisect_batch_on_function_error=args.bisect,
        maximum_retry_attempts=args.max_retries,
        maximum_record_age_s=args.max_record_age,
        on_failure_queue_url=resources.esm_failure_queue_url,
        function_timeout_s=args.function_timeout,
        max_invocations=args.max_invocations,
        poll_interval_s=0.05,
    )

    def on_invocation(inv: Any) -> None:
        seen = esm.stats.records_delivered - esm.stats.redeliveries
        stats = getattr(handler, "stats", {})
        extra = f"sent {stats.get('sent', 0)} dup {stats.get('duplicates', 0)}"
        progress.show("consume", min(seen, total), total, extra)
        deliv.consume_events()  # SES's events (emulated) as they would arrive meanwhile

    esm = StreamEsm(
        aws_client("dynamodbstreams"),
        resources.stream_arn,
        handler,
        config,
        sqs=aws_client("sqs"),
        on_invocation=on_invocation,
    )
    t_consume = time.perf_counter()
    esm_stats = esm.run()
    deliv.consume_events()
    parked = int(getattr(handler, "stats", {}).get("reconciling", 0))
    if parked:
        progress.show("reconcile", 0, parked, "waiting for the parked sends to come due")
        deliv.reconcile(handler, parked, reconcile_seconds=5.0)
        deliv.consume_events()
    consume_s = time.perf_counter() - t_consume
    progress.show("consume", total, total, "drained", force=True)
    progress.done()

    hs: Mapping[str, int] = dict(getattr(handler, "stats", {}))
    # Reconciled sends were sent (SES's Send event proved it): they count as sent here.
    sent = int(hs.get("sent", 0)) + int(hs.get("reconciled", 0))
    write_units = int(hs.get("write_units", 0))
    emails_after = _emails_sent()
    lat = esm_stats.latencies_s
    summary: dict[str, Any] = {
        "events": events,
        "stream_records": total,
        "records_handled": int(hs.get("records", 0)),
        "sent": sent,
        "duplicates": int(hs.get("duplicates", 0)),
        "skipped": int(hs.get("skipped", 0)),
        "failed": int(hs.get("failed_permanent", 0)),
        "failed_transient": int(hs.get("failed_transient", 0)),
        "dead_lettered": int(hs.get("dead_lettered", 0)),
        "account_faults": int(hs.get("account_faults", 0)),
        "unknown_outcomes": int(hs.get("unknown_outcomes", 0)),
        "ledger": ledger_cost(write_units, sent, reported="write_units" in hs),
        "emails_accepted": (
            None if emails_after is None or emails_before is None else emails_after - emails_before
        ),
        "esm": {
            "invocations": esm_stats.invocations,
            "records_delivered": esm_stats.records_delivered,
            "redeliveries": esm_stats.redeliveries,
            "retries": esm_stats.retries,
            "bisects": esm_stats.bisects,
            "function_errors": esm_stats.function_errors + esm_stats.timeouts,
            "partial_failures": esm_stats.partial_failures,
            "on_failure_batches": esm_stats.batches_to_on_failure,
            "on_failure_records": esm_stats.records_to_on_failure,
            "stopped": esm_stats.stopped,
        },
        "faults": dict(proxy.counts) if proxy is not None else {},
        "retries": int(hs.get("retries", 0)),
        "deliverability": {
            "opted_out": int(hs.get("opted_out", 0)),
            "suppressed": int(hs.get("suppressed", 0)),
            "reconciling": int(hs.get("reconciling", 0)),
            "read_units": int(hs.get("read_units", 0)),
            **deliv.counts,
        },
        "channels": _channel_rows(
            demo_channels,
            dict(getattr(handler, "channel_stats", {})),
            emails_after - emails_before
            if emails_after is not None and emails_before is not None
            else None,
        ),
        "seed_s": round(seed_s, 3),
        "consume_s": round(consume_s, 3),
        "notifications_per_s": round(sent / consume_s, 1) if consume_s > 0 else 0.0,
        "batch_latency_p50_ms": round(percentile(lat, 50) * 1000, 1),
        "batch_latency_p99_ms": round(percentile(lat, 99) * 1000, 1),
    }
    # Every stream record must have left the stream: processed by the handler (the checkpoint
    # moved past it) or skipped by the ESM to its on-failure destination.
    done = esm_stats.records_checkpointed + esm_stats.records_to_on_failure
    summary["esm"]["records_checkpointed"] = esm_stats.records_checkpointed
    summary["unaccounted"] = max(0, total - done)
    return summary


def _channel_rows(
    demo: Any, stats: Mapping[str, Mapping[str, int]], emails: int | None
) -> dict[str, dict[str, Any]]:
    """Per channel: notifications recorded sent, messages that landed at the provider, and
    the difference (messages beyond one per notification: unknown outcomes resent)."""
    landed = demo.landed(emails)
    rows: dict[str, dict[str, Any]] = {}
    for name in demo.channels:
        st = stats.get(name, {})
        sent = sum(int(st.get(k, 0)) for k in ("sent", "assumed_sent", "reconciled"))
        got = landed.get(name)
        rows[name] = {
            "sent": sent,
            "landed": got,
            "beyond_one_per_notification": None if got is None else max(0, got - sent),
            "not_landed": None if got is None else max(0, sent - got),
            "duplicates_suppressed": int(st.get("duplicates", 0)),
            "no_recipient": int(st.get("no_recipient", 0)),
            "failed_permanent": int(st.get("failed_permanent", 0)),
            "unknown_outcomes": int(st.get("unknown_outcomes", 0)),
            "retries": int(st.get("retries", 0)),
        }
    return rows


def ledger_cost(write_units: int, sent: int, *, reported: bool = True) -> dict[str, Any]:
    """The ledger's DynamoDB write units (ReturnConsumedCapacity, summed by the handler) per
    notification sent, and their on-demand cost per million notifications. ``None`` when the
    handler reports no ``write_units`` or nothing was sent."""
    per: float | None = write_units / sent if reported and sent else None
    return {
        "write_units": write_units,
        "write_units_per_notification": None if per is None else round(per, 3),
        "usd_per_million_notifications": (
            None if per is None else round(per * WRITE_UNIT_USD_PER_MILLION, 4)
        ),
    }


def format_summary(s: Mapping[str, Any]) -> str:
    """The summary as a readable two-column table."""
    esm = s["esm"]
    rows: list[tuple[str, str]] = [
        ("endpoint", f"{s['endpoint']}{' (embedded moto)' if s['embedded'] else ''}"),
        ("events written", str(s["events"])),
        ("stream records", str(s["stream_records"])),
        ("notifications sent", str(s["sent"])),
        ("duplicates suppressed", str(s["duplicates"])),
        ("skipped (not routed)", str(s["skipped"])),
        ("failed (permanent)", str(s["failed"])),
        ("transient failures (retried)", str(s["failed_transient"])),
        ("dead-lettered", str(s["dead_lettered"])),
        ("account faults / unknown outcomes", f"{s['account_faults']} / {s['unknown_outcomes']}"),
        ("ESM invocations", str(esm["invocations"])),
        ("ESM redeliveries", str(esm["redeliveries"])),
        ("ESM bisects / to on-failure", f"{esm['bisects']} / {esm['on_failure_records']}"),
    ]
    ledger = s["ledger"]
    if ledger["write_units_per_notification"] is None:
        why = "nothing sent" if s["sent"] == 0 else "not reported by the handler"
        rows.append(("ledger write units", f"{ledger['write_units']} ({why})"))
    else:
        rows.append(
            (
                "ledger write units per notification",
                f"{ledger['write_units_per_notification']:.2f} ({ledger['write_units']} units; "
                f"{ledger['usd_per_million_notifications']:.4f} USD per million notifications "
                f"at {WRITE_UNIT_USD_PER_MILLION} USD per million write units)",
            )
        )
    if s.get("emails_accepted") is not None:
        rows.append(("emails accepted by SES", str(s["emails_accepted"])))
    rows.append(("attempts retried (throttles, 5xx, unknown)", str(s.get("retries", 0))))
    d = s.get("deliverability")
    if d:
        rows.append(
            (
                "skipped: opted out / suppressed",
                f"{d['opted_out']} / {d['suppressed']} (recorded SKIPPED, never sent)",
            )
        )
        rows.append(
            (
                "SES events applied (emulated)",
                f"{d['events_applied']}: {d['addresses_suppressed']} addresses suppressed, "
                f"{d['complaint_opt_outs']} complaint opt-outs",
            )
        )
        rows.append(
            (
                "unknown outcomes reconciled",
                f"{d['reconciling']} parked: {d['reconciled_by_events']} proven by SES's Send "
                f"event, {d['resent_when_due']} resent when due",
            )
        )
    for name, c in (s.get("channels") or {}).items():
        landed = "?" if c["landed"] is None else str(c["landed"])
        beyond = (
            "?"
            if c["beyond_one_per_notification"] is None
            else str(c["beyond_one_per_notification"])
        )
        rows.append(
            (
                f"  {name}",
                f"{c['sent']} sent, {landed} landed, {beyond} beyond one per notification, "
                f"{c['duplicates_suppressed']} dup, {c['no_recipient']} no recipient, "
                f"{c['failed_permanent']} failed, {c['retries']} retried",
            )
        )
    if s.get("faults"):
        f = s["faults"]
        for label, p in (("SES", ""), ("SNS", "sns."), ("webhooks", "webhook.")):
            if f.get(f"{p}sends"):
                rows.append(
                    (
                        f"faults injected ({label})",
                        f"{f.get(p + 'throttle', 0)} throttled, "
                        f"{f.get(p + 'server_error', 0)} 5xx, "
                        f"{f.get(p + 'response_lost', 0)} lost of {f.get(p + 'sends', 0)} sends",
                    )
                )
    rows += [
        (
            "elapsed",
            f"{s['elapsed_s']:.2f} s (writing {s['seed_s']:.2f} s, "
            f"consuming {s['consume_s']:.2f} s)",
        ),
        ("notifications/s", f"{s['notifications_per_s']:.1f}"),
        (
            "batch latency p50 / p99",
            f"{s['batch_latency_p50_ms']:.1f} / {s['batch_latency_p99_ms']:.1f} ms",
        ),
    ]
    if s.get("unaccounted"):
        rows.append(("UNACCOUNTED records", str(s["unaccounted"])))
    width = max(len(k) for k, _ in rows)
    lines = ["notifier demo", "=" * (width + 30)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    if s["embedded"]:
        lines.append(
            "(speed here is moto's, which answers a few hundred calls/s;"
            " `make bench` measures notifier itself, see docs/DEMO.md)"
        )
    return "\n".join(lines)
