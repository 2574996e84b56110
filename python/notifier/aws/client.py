"""The set-up both fast clients share: session, credentials, region, endpoint, signer, transport.

:class:`FastClient` resolves everything once at construction, the way botocore would for a
client of the same session, and owns the connection pool (``async with`` / ``close()``). The
service clients add their body encoding and calls on top.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple, Self

from notifier.aws.endpoint import resolve_region
from notifier.aws.rawhttp import RawHttpTransport
from notifier.aws.sigv4 import CredentialSource, SigV4Signer
from notifier.aws.transport import HttpTransport

if TYPE_CHECKING:
    from botocore.session import Session

__all__ = [
    "ClientSettings",
    "EndpointResolver",
    "FastClient",
    "PoolSettings",
    "ServiceSpec",
    "TransportName",
]

#: ``(session, region, explicit endpoint_url or None) -> endpoint URL``.
EndpointResolver = Callable[["Session", str, "str | None"], str]
#: ``"raw"``: :class:`~notifier.aws.rawhttp.RawHttpTransport`; ``"aiohttp"``:
#: :class:`~notifier.aws.transport.HttpTransport`.
TransportName = Literal["raw", "aiohttp"]


class ServiceSpec(NamedTuple):
    """What differs per service: SigV4 signing name, endpoint resolution, request path."""

    signing_name: str
    resolve_endpoint: EndpointResolver
    #: Appended to the endpoint (without its trailing slash) to make the request URL.
    path: str
    content_type: str = "application/json"


class ClientSettings(NamedTuple):
    """The public constructor's identity arguments, as given (``None``: resolve like botocore)."""

    region_name: str | None
    endpoint_url: str | None
    credentials: CredentialSource | None
    session: Session | None
    clock: Callable[[], float]
    transport: TransportName


class PoolSettings(NamedTuple):
    """The public constructor's connection-pool arguments."""

    max_connections: int
    connect_timeout: float
    read_timeout: float
    keepalive_timeout: float


class FastClient:
    """Base of the fast clients: resolved region, endpoint and ``url``, the signer and the pool."""

    region_name: str
    endpoint_url: str
    url: str
    _signer: SigV4Signer
    _transport: RawHttpTransport | HttpTransport

    def _set_up(self, service: ServiceSpec, client: ClientSettings, pool: PoolSettings) -> None:
        """Resolve credentials, region and endpoint like botocore; build the signer and pool."""
        region_name, endpoint_url, credentials, session, clock, transport = client
        if session is None:
            import botocore.session

            session = botocore.session.get_session()
        if credentials is None:
            credentials = session.get_credentials()
            if credentials is None:
                from botocore.exceptions import NoCredentialsError

                raise NoCredentialsError()
        self.region_name = resolve_region(session, region_name)
        self.endpoint_url = service.resolve_endpoint(session, self.region_name, endpoint_url)
        self.url = self.endpoint_url.rstrip("/") + service.path
        self._signer = SigV4Signer(
            credentials,
            url=self.url,
            region=self.region_name,
            service=service.signing_name,
            content_type=service.content_type,
            clock=clock,
        )
        transport_class = RawHttpTransport if transport == "raw" else HttpTransport
        self._transport = transport_class(
            self.endpoint_url,
            max_connections=pool.max_connections,
            connect_timeout=pool.connect_timeout,
            read_timeout=pool.read_timeout,
            keepalive_timeout=pool.keepalive_timeout,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool (idempotent)."""
        await self._transport.close()
