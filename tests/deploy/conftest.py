"""Fixtures for the deploy tests: a local Runtime API server and runtimes started against it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lambda_runtime_api import FakeRuntimeAPI, StartRuntime

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture
def runtime_api() -> Iterator[FakeRuntimeAPI]:
    """GIVEN a local Lambda Runtime API server with no invocations queued yet."""
    api = FakeRuntimeAPI().start()
    yield api
    api.stop()


@pytest.fixture
def start_runtime(runtime_api: FakeRuntimeAPI, tmp_path: Path) -> Iterator[StartRuntime]:
    """Factory: start a runtime process against ``runtime_api``; killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        full_env = {
            **os.environ,
            "AWS_LAMBDA_RUNTIME_API": runtime_api.address,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "AWS_LAMBDA_FUNCTION_NAME": "notifier",
            **env,
        }
        with (tmp_path / f"runtime-{len(procs)}.log").open("wb") as log:
            proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
