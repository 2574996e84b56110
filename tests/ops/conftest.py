"""Fixtures for the operator-command tests: a provisioned embedded AWS (moto over HTTP), a
config and a template directory of the test's own, and the environment pointing at them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ops_helpers import CONFIG, PIPELINE_TEMPLATES

from notifier.handler import Handler, build_handler
from notifier.local.provision import Resources, provision
from notifier.samples import make_stream_record
from notifier.settings import Settings


@pytest.fixture
def resources(aws: str) -> Resources:
    """GIVEN the source table (with its stream), the ledger, both queues and a verified SES
    domain in moto."""
    return provision(aws)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """GIVEN a template directory of the test's own (a copy of the pipeline tests' set)."""
    d = tmp_path / "templates"
    shutil.copytree(PIPELINE_TEMPLATES, d)
    return d


@pytest.fixture
def env(
    resources: Resources, templates: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """GIVEN NOTIFIER_* pointing at the provisioned resources, the config and the templates."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    values = {
        "NOTIFIER_CONFIG": str(config),
        "NOTIFIER_TEMPLATES": str(templates),
        "NOTIFIER_FAILURE_QUEUE_URL": resources.failure_queue_url,
        "NOTIFIER_LEDGER_TABLE": resources.ledger_table,
        "NOTIFIER_MAX_CONCURRENCY": "8",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def handler(env: dict[str, str]) -> Iterator[Callable[[], Handler]]:
    """Factory: the real handler built from the environment (as the Lambda would)."""
    built: list[Handler] = []

    def make() -> Handler:
        h = build_handler(Settings.from_env())
        built.append(h)
        return h

    yield make
    for h in built:
        h.close()


@pytest.fixture
def records() -> Callable[..., list[dict[str, Any]]]:
    """Factory: fresh INSERT stream records ``indexes`` (index % 3: 0 profile_view,
    1 friend_request, 2 application_update)."""

    def make(indexes: list[int], *, seed: int = 0) -> list[dict[str, Any]]:
        out = [make_stream_record(i, seed=seed, users=7, event_name="INSERT") for i in indexes]
        now = int(time.time())
        for r in out:
            r["dynamodb"]["ApproximateCreationDateTime"] = now
        return out

    return make
