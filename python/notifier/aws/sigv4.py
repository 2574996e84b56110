"""AWS Signature Version 4 for JSON POST requests, computed the way botocore's ``SigV4Auth`` does.

Specialised for the hot path: a fixed method, path and content type, no query string. The
signing key is derived once per (secret key, day) and the ``X-Amz-Date`` text once per second.
The result is byte-identical to botocore's signature for the same request, credentials and
clock (``tests/aws/test_signature.py`` proves it against botocore's own sesv2 client).

Credentials come from botocore's provider chain: any object with ``get_frozen_credentials()``
(``botocore.credentials.Credentials`` / ``RefreshableCredentials``), asked on every request,
so refreshable credentials are honoured.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote, urlsplit

from botocore.utils import normalize_url_path

__all__ = ["CredentialSource", "SigV4Signer", "canonical_host"]

_ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Frozen(Protocol):
    @property
    def access_key(self) -> str | None: ...
    @property
    def secret_key(self) -> str | None: ...
    @property
    def token(self) -> str | None: ...


class CredentialSource(Protocol):
    """What botocore's credential objects offer: a consistent snapshot of key, secret, token."""

    def get_frozen_credentials(self) -> _Frozen: ...


def canonical_host(url: str) -> str:
    """The ``host`` header botocore signs for ``url``: hostname, plus the port if not default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _normalize(value: str) -> str:
    return " ".join(value.split())


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


class SigV4Signer:
    """Signs ``POST <url>`` with a ``Content-Type`` header and a body, no query string.

    ``sign(body, target=None)`` returns the headers to send: ``Content-Type``, ``Host``,
    ``X-Amz-Date``, ``X-Amz-Security-Token`` (with session credentials), ``X-Amz-Target``
    (when given) and ``Authorization``.
    """

    __slots__ = (
        "_clock",
        "_content_type",
        "_credentials",
        "_date_second",
        "_date_text",
        "_host",
        "_key",
        "_key_day",
        "_key_secret",
        "_prefix",
        "_region",
        "_scope_tail",
        "_service",
        "clock_offset",
    )

    def __init__(
        self,
        credentials: CredentialSource,
        *,
        url: str,
        region: str,
        service: str,
        content_type: str = "application/json",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._service = service
        self._clock = clock
        #: Seconds added to ``clock()`` (the clock-skew correction; 0 until a skew error).
        self.clock_offset = 0.0
        self._content_type = content_type
        self._host = canonical_host(url)
        path = quote(normalize_url_path(urlsplit(url).path), safe="/~")
        # Canonical request up to the x-amz-date value: method, path, (empty) query, the two
        # headers that sort before x-amz-date.
        self._prefix = (
            f"POST\n{path}\n\ncontent-type:{_normalize(content_type)}\n"
            f"host:{_normalize(self._host)}\n"
        )
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._key = b""
        self._key_day = ""
        self._key_secret = ""
        self._date_second = -1
        self._date_text = ""

    @property
    def host(self) -> str:
        """The ``Host`` header value that is signed."""
        return self._host

    def _amz_date(self) -> str:
        now = int(self._clock() + self.clock_offset)
        if now != self._date_second:
            self._date_text = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
            self._date_second = now
        return self._date_text

    def _signing_key(self, secret: str, day: str) -> bytes:
        if day != self._key_day or secret != self._key_secret:
            k = _hmac(f"AWS4{secret}".encode(), day)
            k = _hmac(k, self._region)
            k = _hmac(k, self._service)
            self._key = _hmac(k, "aws4_request")
            self._key_day = day
            self._key_secret = secret
        return self._key

    def sign(self, body: bytes, target: str | None = None) -> dict[str, str]:
        """The headers for one request with this ``body`` (signed at the clock's time).

        ``target``: the ``X-Amz-Target`` header of JSON-protocol services (DynamoDB), signed
        as botocore signs it.
        """
        creds = self._credentials.get_frozen_credentials()
        access_key, secret_key = creds.access_key, creds.secret_key
        if not access_key or not secret_key:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
        amz_date = self._amz_date()
        day = amz_date[:8]
        token = creds.token
        canonical = f"{self._prefix}x-amz-date:{amz_date}\n"
        signed_headers = "content-type;host;x-amz-date"
        if token:
            canonical += f"x-amz-security-token:{_normalize(token)}\n"
            signed_headers += ";x-amz-security-token"
        if target is not None:
            canonical += f"x-amz-target:{_normalize(target)}\n"
            signed_headers += ";x-amz-target"
        canonical += f"\n{signed_headers}\n{hashlib.sha256(body).hexdigest()}"
        scope = day + self._scope_tail
        to_sign = (
            f"{_ALGORITHM}\n{amz_date}\n{scope}\n"
            + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        )
        signature = hmac.new(
            self._signing_key(secret_key, day), to_sign.encode("utf-8"), hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": self._content_type,
            "Host": self._host,
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"{_ALGORITHM} Credential={access_key}/{scope}, "
                f"SignedHeaders={signed_headers}, Signature={signature}"
            ),
        }
        if token:
            headers["X-Amz-Security-Token"] = token
        if target is not None:
            headers["X-Amz-Target"] = target
        return headers
