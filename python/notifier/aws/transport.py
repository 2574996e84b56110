"""One keep-alive aiohttp connection pool per client, with transport failures typed.

The pool is created on first use inside the running loop and bound to it (like aiobotocore
clients). A failure to connect raises :class:`~notifier.aws.errors.RequestNotSentError`; any
failure after the connection was made (reset, disconnect, read timeout, unreadable response)
raises :class:`~notifier.aws.errors.OutcomeUnknownError`: the request may have been received.
A pooled keep-alive connection closed by the server at the moment it is reused also shows up as
``OutcomeUnknownError`` (it cannot be told apart); keep ``keepalive_timeout`` below the server's
idle timeout to make that rare.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from notifier.aws.pooled import PooledTransport

__all__ = ["HttpTransport"]


class HttpTransport(PooledTransport):
    """POST bodies to one endpoint over a bounded keep-alive aiohttp pool."""

    def _init_pool(self) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None,
            sock_connect=self._connect_timeout,
            sock_read=self._read_timeout,
        )
        self._http: aiohttp.ClientSession | None = None
        #: Parsed URLs by text: aiohttp parses a ``str`` URL on every request.
        self._urls: dict[str, URL] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=self._keepalive_timeout,
            ttl_dns_cache=300,
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            # No Accept-Encoding: AWS answers small JSON; identity saves a decompressor per call.
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            auto_decompress=False,
        )
        return self._http

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, operation: str
    ) -> tuple[int, Mapping[str, str], bytes]:
        """(status, headers, body) of the response; transport failures typed (see module)."""
        http = self._http or self._open()
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = URL(url, encoded=True)
        try:
            async with http.post(parsed, data=body, headers=CIMultiDict(headers)) as resp:
                payload = await resp.read()
                return resp.status, resp.headers, payload
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise self._not_sent(operation, str(exc)) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._outcome_unknown(operation, exc) from exc
