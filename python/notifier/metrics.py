"""Per-batch CloudWatch metrics as embedded metric format (EMF) log lines.

One JSON line per batch on stdout: CloudWatch Logs extracts the metrics from the ``_aws``
block, no API call, no agent, no extra latency. A small writer of our own rather than
Powertools Metrics: see docs/OBSERVABILITY.md for the measured import time and per-flush CPU.

Enabled in Lambda (``AWS_LAMBDA_FUNCTION_NAME`` is set) or with ``NOTIFIER_METRICS=emf``;
``NOTIFIER_METRICS=off`` disables it. Namespace ``NOTIFIER_METRICS_NAMESPACE`` (default
``Notifier``).

Per batch: one line of service-level metrics with the dimension ``FunctionName`` (the Lambda
function, ``notifier`` locally), including ``RecordAge`` (seconds since the batch's oldest
change was written: the stream lag a user feels), and one line per (channel, event type) the
batch touched with the notification counters (:data:`ROUTE_METRICS`) under two dimension
sets, ``[FunctionName, Channel, EventType]`` and ``[FunctionName, Channel]``. Channels and
event types come from the routing config, so the cardinality is bounded by the config.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

__all__ = [
    "MAX_DIMENSIONS",
    "MAX_METRICS",
    "METRICS",
    "ROUTE_METRICS",
    "EmfWriter",
    "MetricsConfigError",
    "from_env",
]

#: CloudWatch's limits per EMF log line.
MAX_METRICS = 100
MAX_DIMENSIONS = 30

#: stats key -> (metric name, unit). ``seconds`` (the batch latency) is added separately.
METRICS: dict[str, tuple[str, str]] = {
    "records": ("Records", "Count"),
    "sent": ("Sent", "Count"),
    "assumed_sent": ("AssumedSent", "Count"),
    "duplicates": ("Duplicates", "Count"),
    "skipped": ("Skipped", "Count"),
    "failed_permanent": ("FailedPermanent", "Count"),
    "failed_transient": ("FailedTransient", "Count"),
    "dead_lettered": ("DeadLettered", "Count"),
    "unknown_outcomes": ("UnknownOutcomes", "Count"),
    "account_faults": ("AccountFaults", "Count"),
    "in_flight": ("InFlight", "Count"),
    "expiring_parked": ("ExpiringParked", "Count"),
    "no_recipient": ("NoRecipient", "Count"),
    "opted_out": ("OptedOut", "Count"),
    "suppressed": ("Suppressed", "Count"),
    "reconciling": ("Reconciling", "Count"),
    "reconciled": ("Reconciled", "Count"),
    "retries": ("Retries", "Count"),
    "write_units": ("LedgerWriteUnits", "Count"),
    "read_units": ("PreferenceReadUnits", "Count"),
}
LATENCY = ("BatchLatency", "Milliseconds")
RECORD_AGE = ("RecordAge", "Seconds")
#: Per (channel, event type) counters (``notifier.pipeline.ROUTE_STAT_KEYS``) -> metric names.
ROUTE_METRICS: dict[str, tuple[str, str]] = {
    "sent": ("Sent", "Count"),
    "assumed_sent": ("AssumedSent", "Count"),
    "duplicates": ("Duplicates", "Count"),
    "no_recipient": ("NoRecipient", "Count"),
    "failed_permanent": ("FailedPermanent", "Count"),
    "failed_transient": ("FailedTransient", "Count"),
    "unknown_outcomes": ("UnknownOutcomes", "Count"),
    "opted_out": ("OptedOut", "Count"),
    "suppressed": ("Suppressed", "Count"),
    "reconciling": ("Reconciling", "Count"),
    "reconciled": ("Reconciled", "Count"),
    "retries": ("Retries", "Count"),
}


class MetricsConfigError(ValueError):
    """A metrics setting (environment variable or argument) cannot be used."""


class EmfWriter:
    """Writes one EMF line per batch. Call it as ``writer(stats, seconds)``."""

    def __init__(
        self,
        *,
        namespace: str = "Notifier",
        dimensions: Mapping[str, str] | None = None,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        dims = dict(dimensions if dimensions is not None else {"FunctionName": "notifier"})
        if not namespace:
            raise MetricsConfigError("metrics namespace must not be empty")
        if len(dims) > MAX_DIMENSIONS:
            raise MetricsConfigError(
                f"{len(dims)} metric dimensions; CloudWatch takes at most {MAX_DIMENSIONS}"
            )
        self.namespace = namespace
        self.dimensions = dims
        self._stream = stream
        self._clock = clock

    def lines(
        self,
        stats: Mapping[str, int],
        seconds: float,
        *,
        routes: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
        record_age_s: float | None = None,
    ) -> list[str]:
        """The EMF lines for one batch: the service line (split if over 100 metrics), then
        one line per (channel, event type)."""
        values: list[tuple[str, str, float]] = [
            (name, unit, stats[key]) for key, (name, unit) in METRICS.items() if key in stats
        ]
        values.append((LATENCY[0], LATENCY[1], round(seconds * 1000.0, 3)))
        if record_age_s is not None:
            values.append((RECORD_AGE[0], RECORD_AGE[1], round(record_age_s, 3)))
        stamp = int(self._clock() * 1000)
        out = []
        base = list(self.dimensions)
        for start in range(0, len(values), MAX_METRICS):
            out.append(
                self._line(stamp, [base], dict(self.dimensions), values[start:][:MAX_METRICS])
            )
        for (channel, event_type), counts in sorted((routes or {}).items()):
            dims = {**self.dimensions, "Channel": channel, "EventType": event_type or "-"}
            per = [
                (name, unit, counts[key])
                for key, (name, unit) in ROUTE_METRICS.items()
                if key in counts
            ]
            sets = [[*base, "Channel", "EventType"], [*base, "Channel"]]
            out.append(self._line(stamp, sets, dims, per))
        return out

    def _line(
        self,
        stamp: int,
        dimension_sets: list[list[str]],
        dimensions: Mapping[str, str],
        values: Sequence[tuple[str, str, float]],
    ) -> str:
        doc: dict[str, object] = {
            "_aws": {
                "Timestamp": stamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": dimension_sets,
                        "Metrics": [{"Name": n, "Unit": u} for n, u, _ in values],
                    }
                ],
            },
            **dimensions,
        }
        doc.update((n, v) for n, _, v in values)
        return json.dumps(doc, separators=(",", ":"))

    def __call__(
        self,
        stats: Mapping[str, int],
        seconds: float,
        *,
        routes: Mapping[tuple[str, str], Mapping[str, int]] | None = None,
        record_age_s: float | None = None,
    ) -> None:
        lines = self.lines(stats, seconds, routes=routes, record_age_s=record_age_s)
        stream = self._stream or sys.stdout
        stream.write("".join(line + "\n" for line in lines))
        stream.flush()


def from_env(environ: Mapping[str, str] | None = None) -> EmfWriter | None:
    """The writer the environment asks for, or None (metrics off)."""
    env = os.environ if environ is None else environ
    mode = (env.get("NOTIFIER_METRICS") or "").strip().lower()
    function = env.get("AWS_LAMBDA_FUNCTION_NAME") or ""
    if mode not in ("", "emf", "off"):
        raise MetricsConfigError(f"NOTIFIER_METRICS must be emf or off, got {mode!r}")
    if mode == "off" or (mode == "" and not function):
        return None
    return EmfWriter(
        namespace=env.get("NOTIFIER_METRICS_NAMESPACE") or "Notifier",
        dimensions={"FunctionName": function or "notifier"},
    )
