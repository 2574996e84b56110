"""Branches of the raw transport that no server can drive deterministically."""

from __future__ import annotations

import asyncio

import pytest

from notifier.aws import OutcomeUnknownError, RequestNotSentError
from notifier.aws.rawhttp import RawHttpTransport, _Connection


class _ClosingTransport(asyncio.Transport):
    """A transport the peer already closed: every write would be lost."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def is_closing(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def test_connection_closed_between_connect_and_write_is_not_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a transport whose new connection is already closing when the request is due
    url = "http://127.0.0.1:9"
    transport = RawHttpTransport(url)
    closing = _ClosingTransport()

    async def connect(operation: str) -> _Connection:
        conn = _Connection(1024)
        conn.connection_made(closing)
        return conn

    monkeypatch.setattr(transport, "_connect", connect)

    # WHEN posting
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(transport.post(url + "/x", {}, b"{}", "Op"))
    # THEN nothing was written and the error says so (not "outcome unknown")
    assert closing.written == []
    assert not isinstance(info.value, OutcomeUnknownError)
    assert "before the request" in str(info.value)


def test_unsupported_proxy_scheme_is_refused_at_construction() -> None:
    # GIVEN an https:// proxy URL (TLS to the proxy itself is not supported)
    # WHEN building the transport THEN it is refused rather than silently bypassed
    with pytest.raises(ValueError, match="proxy"):
        RawHttpTransport("https://email.us-east-1.amazonaws.com", proxy_url="https://p:3128")
