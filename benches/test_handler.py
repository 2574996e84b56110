"""End to end: notifier's handler vs the usual-way baseline on the same batch, same stub.

- ``handler-cpu``: CPU seconds (``time.process_time``) to handle one batch against the
  zero-latency stub; extra_info has ``cpu_per_notification_us`` and ``notifications_per_cpu_s``.
- ``handler-latency-20ms``: wall time of one batch when every AWS call takes 20 ms; the
  sequential baseline runs fewer records and is scaled linearly (``wall_per_1000_s``).
  Its wall time is what Lambda bills, so this group also carries the cost per million
  notifications beyond SES (``benches/cost.py``: Lambda GB-seconds at 1,769 MB arm64 and
  DynamoDB write units at on-demand prices, counted at the stub) and ``handler-cost`` ranks
  the handlers by it.
- ``handler-rss``: peak RSS growth over the idle process while handling one large batch,
  each handler in its own fresh process (``rss_probe.py``).

Every benchmark first checks the result: no batch item failures and exactly the expected
number of emails at the stub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cost import cost_info
from handlers import BASELINE, build, handler_libs
from stub_aws import StubAws, stub_env

LIBS = handler_libs()
EventFactory = Callable[..., tuple[bytes, int, str]]


@pytest.fixture(scope="session")
def events(tmp_path_factory: pytest.TempPathFactory) -> EventFactory:
    """Factory: (raw event bytes, expected notifications, file path) for ``n`` records."""
    import orjson

    from notifier.samples import make_stream_event

    cache: dict[tuple[int, int], tuple[bytes, int, str]] = {}
    folder = tmp_path_factory.mktemp("events")

    def make(n: int, start: int = 0) -> tuple[bytes, int, str]:
        if (n, start) not in cache:
            event = make_stream_event(n, start=start)
            expected = sum(1 for r in event["Records"] if r["eventName"] == "INSERT")
            raw = orjson.dumps(event)
            path = folder / f"event-{n}-{start}.json"
            path.write_bytes(raw)
            cache[n, start] = (raw, expected, str(path))
        return cache[n, start]

    return make


@pytest.fixture
def slow_environ(slow_stub: StubAws, monkeypatch: pytest.MonkeyPatch) -> StubAws:
    """GIVEN every AWS SDK pointed at the 20 ms stub (counters reset)."""
    for k, v in stub_env(slow_stub.url).items():
        monkeypatch.setenv(k, v)
    slow_stub.reset()
    return slow_stub


def _sends(stub: StubAws) -> int:
    return stub.stats().get("sesv2.SendEmail", 0)


@pytest.fixture
def handler_for() -> Iterator[Callable[[str], Any]]:
    built: list[Any] = []

    def make(lib: str) -> Any:
        built.append(build(lib))
        return built[-1]

    yield make
    for h in built:
        h.close()


@pytest.mark.benchmark(group="handler-cpu", timer=time.process_time)
@pytest.mark.parametrize("lib", LIBS)
def test_handler_cpu(
    benchmark: Any,
    lib: str,
    stub_environ: StubAws,
    scale: Any,
    events: EventFactory,
    handler_for: Callable[[str], Any],
) -> None:
    raw, expected, _ = events(scale.handler_records)
    handler = handler_for(lib)
    # Correct first (also the warm-up): no failures, one email per notifying record.
    assert handler.call(raw) == {"batchItemFailures": []}
    assert _sends(stub_environ) == expected

    def run() -> None:
        assert handler.call(raw) == {"batchItemFailures": []}

    benchmark.pedantic(run, rounds=scale.handler_rounds, iterations=1)
    assert _sends(stub_environ) == expected * (scale.handler_rounds + 1)
    mean = benchmark.stats.stats.mean
    notifications = expected * (scale.handler_rounds + 1)
    cost = cost_info(mean / expected, stub_environ.stats(), notifications, expected)
    benchmark.extra_info.update(
        write_units_per_notification=cost["write_units_per_notification"],
        ddb_requests_per_notification=cost["ddb_requests_per_notification"],
    )
    benchmark.extra_info.update(
        lib=lib,
        metric="cpu_per_notification_us",
        records=scale.handler_records,
        notifications=expected,
        cpu_per_notification_us=round(mean / expected * 1e6, 1),
        notifications_per_cpu_s=round(expected / mean, 1),
    )


@pytest.mark.benchmark(group="handler-latency-20ms", timer=time.perf_counter)
@pytest.mark.parametrize("lib", LIBS)
def test_handler_latency(
    benchmark: Any,
    lib: str,
    slow_environ: StubAws,
    scale: Any,
    events: EventFactory,
    handler_for: Callable[[str], Any],
) -> None:
    records = scale.latency_baseline_records if lib == BASELINE else scale.latency_records
    raw, expected, _ = events(records)
    warm, warm_expected, _ = events(10, start=10_000_000)
    handler = handler_for(lib)
    assert handler.call(warm) == {"batchItemFailures": []}
    rounds = 1 if lib == BASELINE else 3

    def run() -> None:
        assert handler.call(raw) == {"batchItemFailures": []}

    benchmark.pedantic(run, rounds=rounds, iterations=1)
    assert _sends(slow_environ) == warm_expected + expected * rounds
    mean = benchmark.stats.stats.mean
    cost = cost_info(
        mean / expected,
        slow_environ.stats(),
        warm_expected + expected * rounds,
        notifications_per_invocation=expected,
    )
    benchmark.extra_info.update(
        lib=lib,
        metric="wall_per_1000_s",
        records=records,
        notifications=expected,
        latency_ms=20,
        wall_per_1000_s=round(mean * 1000 / records, 3),
        scaled=records != 1000,
        **cost,
    )
    _COSTS[lib] = cost


_COSTS: dict[str, dict[str, float]] = {}


@pytest.mark.benchmark(group="handler-cost", timer=time.perf_counter)
@pytest.mark.parametrize("lib", LIBS)
def test_handler_cost(benchmark: Any, lib: str) -> None:
    """USD per million notifications beyond SES, from this session's latency run (which
    must have run first: pytest runs this file's tests in order)."""
    cost = _COSTS.get(lib)
    if cost is None:
        pytest.fail(f"handler-latency-20ms did not run for {lib} in this session")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(lib=lib, metric="usd_per_million", **cost)


@pytest.mark.benchmark(group="handler-rss", timer=time.perf_counter)
@pytest.mark.parametrize("lib", LIBS)
def test_handler_peak_rss(
    benchmark: Any, lib: str, stub_environ: StubAws, scale: Any, events: EventFactory
) -> None:
    _, expected, path = events(scale.rss_records)
    probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rss_probe.py")
    result: dict[str, int] = {}

    def run() -> None:
        out = subprocess.run(
            [sys.executable, probe, lib, path, stub_environ.url],
            check=True,
            capture_output=True,
            text=True,
        )
        result.update(json.loads(out.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert result["failures"] == 0
    warm_sends = sum(1 for i in range(10) if i % 20 < 17)
    assert _sends(stub_environ) == expected + warm_sends
    benchmark.extra_info.update(
        lib=lib,
        metric="rss_growth_mb",
        records=scale.rss_records,
        event_mb=round(os.path.getsize(path) / 2**20, 2),
        idle_mb=round(result["idle_kb"] / 1024, 1),
        peak_mb=round(result["peak_kb"] / 1024, 1),
        rss_growth_mb=round(result["growth_kb"] / 1024, 1),
    )
