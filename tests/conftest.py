"""Shared fixtures: one moto server per session (over HTTP), reset around each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier.local.moto_server import MotoServer, local_aws_env, reset


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """GIVEN an empty embedded AWS: yields its endpoint URL, with the AWS env pointed at it."""
    reset(moto_server.endpoint_url)
    with local_aws_env(moto_server.endpoint_url):
        yield moto_server.endpoint_url
