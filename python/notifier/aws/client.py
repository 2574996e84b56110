"""The set-up both fast clients share: session, credentials, region, endpoint, signer, transport.

:class:`FastClient` resolves everything once at construction, the way botocore would for a
client of the same session (region, endpoint, ``AWS_CA_BUNDLE`` / ``ca_bundle``, the proxy
environment), and owns the connection pool (``async with`` / ``close()``). It also owns what
every call shares: a request that cannot be built or signed is a
:class:`~notifier.aws.errors.RequestNotSentError` (nothing was written), and the clock-skew
correction (:meth:`FastClient._corrected_skew`). The service clients add their body encoding
and calls on top.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self

from notifier.aws.endpoint import resolve_region
from notifier.aws.errors import RequestNotSentError
from notifier.aws.pooled import DEFAULT_MAX_RESPONSE_BYTES
from notifier.aws.rawhttp import RawHttpTransport
from notifier.aws.sigv4 import CredentialSource, SigV4Signer
from notifier.aws.transport import HttpTransport

if TYPE_CHECKING:
    from botocore.session import Session

__all__ = [
    "CLOCK_SKEW_CODES",
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


#: Error codes a skewed clock produces (the AWS SDKs' list: JS ``isClockSkewError``, Java
#: ``ClockSkewAdjuster``). One of these plus a ``Date`` far from our clock means skew.
CLOCK_SKEW_CODES = frozenset(
    {
        "RequestTimeTooSkewed",
        "RequestExpired",
        "RequestInTheFuture",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)
#: A server clock this far from ours (seconds) counts as skew: SigV4 allows 5 minutes.
SKEW_THRESHOLD = 4 * 60.0


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
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


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
        self._clock = clock
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
            max_response_bytes=pool.max_response_bytes,
            ca_bundle=session.get_config_variable("ca_bundle") or None,
        )

    def _build(
        self, build: Callable[[], tuple[str, dict[str, str], bytes]], operation: str
    ) -> tuple[str, dict[str, str], bytes]:
        """``build()``'s signed request; any failure there is RequestNotSentError (cause kept)."""
        try:
            return build()
        except Exception as exc:  # nothing was written: whatever it was, the request did not leave
            raise RequestNotSentError(
                f"request not sent: could not build it: {type(exc).__name__}: {exc}",
                endpoint=self.endpoint_url,
                operation=operation,
            ) from exc

    @property
    def clock_offset(self) -> float:
        """Seconds added to the local clock when signing (learned from the server's ``Date``)."""
        return self._signer.clock_offset

    def _corrected_skew(self, code: Any, headers: Mapping[str, str]) -> bool:
        """Learn the clock offset from a skew error's ``Date``; True if a retry is worthwhile.

        botocore estimates the skew the same way (server ``Date`` minus the local time the
        response arrived, ``Endpoint._calculate_ttl``); the AWS SDKs that correct it (JS, Java)
        then re-sign and retry once. A rejected signature was never acted upon, so the retry
        cannot duplicate anything.
        """
        if code not in CLOCK_SKEW_CODES:
            return False
        date = headers.get("Date") or headers.get("date")
        if not date:
            return False
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        offset = server - self._clock()
        if abs(offset - self._signer.clock_offset) < SKEW_THRESHOLD:
            return False  # our corrected clock already agrees: not a skew problem
        self._signer.clock_offset = offset
        return True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool (idempotent)."""
        await self._transport.close()
