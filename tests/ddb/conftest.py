"""Fixtures for the decoder tests: the boto3 reference and real-shaped events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from ddb_helpers import LambdaJsonDeserializer

EVENTS = Path(__file__).resolve().parent.parent / "events"


@pytest.fixture(scope="session")
def boto_deserialize() -> Callable[[Any], Any]:
    return LambdaJsonDeserializer().deserialize


@pytest.fixture(scope="session")
def boto_serialize() -> Callable[[Any], Any]:
    return TypeSerializer().serialize


@pytest.fixture
def load_event() -> Callable[[str], bytes]:
    """Factory: the raw bytes of ``tests/events/<name>``."""

    def load(name: str) -> bytes:
        return (EVENTS / name).read_bytes()

    return load
