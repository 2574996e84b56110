"""Peak RSS growth of one handler on one batch, measured in a fresh process.

    python benches/rss_probe.py <lib> <event.json> <stub url>

Builds the handler (see handlers.py) against the stub, warms it on a 10-record batch (so
clients, connections and lazy imports count as idle), reads the event bytes, collects
garbage, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), then handles the batch
and prints JSON: ``idle_kb`` (VmRSS before), ``peak_kb`` (VmHWM after), ``growth_kb``.
"""

from __future__ import annotations

import gc
import json
import os
import sys


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    lib, event_path, url = sys.argv[1:4]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from stub_aws import stub_env

    os.environ.update(stub_env(url))
    import orjson

    from handlers import build
    from notifier.samples import make_stream_event

    handler = build(lib)
    warm = orjson.dumps(make_stream_event(10, start=10_000_000))
    handler.call(warm)
    with open(event_path, "rb") as f:
        raw = f.read()
    del warm
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    idle = _status_kb("VmRSS")
    out = handler.call(raw)
    peak = _status_kb("VmHWM")
    failures = len(out.get("batchItemFailures", []))
    handler.close()
    print(
        json.dumps(
            {"idle_kb": idle, "peak_kb": peak, "growth_kb": peak - idle, "failures": failures}
        )
    )


if __name__ == "__main__":
    main()
