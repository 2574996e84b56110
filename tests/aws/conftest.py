"""Fixtures for the fast SESv2 client tests: botocore's own request as the reference."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import botocore.auth
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config

from .reference import captured_request

FROZEN = dt.datetime(2026, 3, 14, 15, 9, 26, 535_897)
FROZEN_EPOCH = FROZEN.replace(tzinfo=dt.UTC).timestamp()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """GIVEN botocore's signer clock frozen at FROZEN; returns the same instant as epoch secs."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: FROZEN)
    return FROZEN_EPOCH


@pytest.fixture
def botocore_request() -> Callable[..., AWSPreparedRequest]:
    """Factory: the request botocore's sesv2 client sends for ``send_email(**params)``.

    The request is captured in a ``before-send`` hook (nothing goes on the wire).
    """

    def capture(
        params: dict[str, Any],
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        access_key: str = "AKIDEXAMPLE",
        secret_key: str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token: str | None = None,
    ) -> AWSPreparedRequest:
        session = botocore.session.get_session()
        client = session.create_client(
            "sesv2",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=token,
            config=Config(retries={"total_max_attempts": 1}),
        )
        return captured_request(
            client,
            "before-send.sesv2.SendEmail",
            lambda c: c.send_email(**params),
            b'{"MessageId":"m"}',
        )

    return capture
