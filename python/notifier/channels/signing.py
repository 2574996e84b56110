"""Standard Webhooks signatures (https://www.standardwebhooks.com), the symmetric scheme ``v1``.

A delivery carries three headers:

- ``webhook-id``: the message's identifier, the same on every attempt (receivers deduplicate on
  it). The spec asks that it hold no ``.`` (the signed content is ``id.timestamp.body``), so
  :func:`message_id` percent-encodes ``%``, ``.``, and anything outside visible ASCII.
- ``webhook-timestamp``: integer Unix seconds of the attempt (fresh on every attempt: receivers
  refuse old ones, which stops replays).
- ``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), one
  per configured key, space-separated: during a rotation the sender signs with the new and the
  old key and a receiver accepts a delivery when any one matches.

Keys are serialized ``whsec_`` + base64 of 24 to 64 random bytes (the spec's range); the prefix is
optional on input, and unpadded base64 is accepted, as the reference libraries do. Nothing here
ever puts a key, or the text of a secret, into an exception message or a ``repr``.

:func:`verify` is the receiver's side (constant-time comparison, timestamp tolerance); the
tests hold :class:`WebhookSigner` to the reference ``standardwebhooks`` library and to the test
vector every reference library shares.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from urllib.parse import quote

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SECRET_PREFIX",
    "InvalidSecretError",
    "SignatureError",
    "WebhookSigner",
    "decode_secret",
    "generate_secret",
    "message_id",
    "verify",
]

SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
#: How far a ``webhook-timestamp`` may be from the receiver's clock (the libraries' 5 minutes).
DEFAULT_TOLERANCE_SECONDS = 300

_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_UNSAFE_ID = re.compile(r"[^\x21-\x7e]|[.%]")


class InvalidSecretError(ValueError):
    """A signing secret is not ``whsec_`` + base64 of 24 to 64 bytes (the value is never shown)."""


class SignatureError(ValueError):
    """A delivery failed verification (missing header, stale timestamp, no matching signature)."""


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key of ``secret`` (``whsec_`` + base64, or the raw key bytes)."""
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.strip()
        text = text.removeprefix(SECRET_PREFIX)
        if not _BASE64.fullmatch(text):
            raise InvalidSecretError("a webhook secret must be 'whsec_' followed by base64")
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSecretError("a webhook secret is not valid base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidSecretError(
            f"a webhook secret must decode to {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, "
            f"not {len(key)}"
        )
    return key


def generate_secret(n_bytes: int = 32) -> str:
    """A fresh random ``whsec_`` secret (for the demo, tests and operators)."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(n_bytes)).decode("ascii")


def message_id(key: str) -> str:
    """``key`` as a ``webhook-id``: unchanged when it is visible ASCII without ``.`` or ``%``,
    otherwise those characters percent-encoded (deterministic, so still stable per key)."""
    if not _UNSAFE_ID.search(key):
        return key
    return quote(key, safe="!#$&'()*+,/:;=?@[]~").replace(".", "%2E")


class WebhookSigner:
    """Signs deliveries with one or more keys (the first is the current one)."""

    __slots__ = ("_keys",)

    def __init__(self, secrets: Iterable[str | bytes]) -> None:
        keys = tuple(decode_secret(s) for s in secrets)
        if not keys:
            raise InvalidSecretError("at least one webhook secret is needed")
        self._keys = keys

    def __repr__(self) -> str:
        return f"WebhookSigner(<{len(self._keys)} key(s)>)"

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def signature(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` value: ``v1,<b64>`` per key, space-separated."""
        content = f"{msg_id}.{timestamp}.".encode() + body
        return " ".join(
            "v1," + base64.b64encode(hmac.digest(key, content, "sha256")).decode("ascii")
            for key in self._keys
        )

    def headers(self, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The three Standard Webhooks headers for one attempt (timestamp: now by default)."""
        ts = int(time.time()) if timestamp is None else timestamp
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": self.signature(msg_id, ts, body),
        }


def verify(
    secrets: Iterable[str | bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Check one delivery as a receiver does; its ``webhook-id``, or :class:`SignatureError`.

    ``headers`` may use any case. Every ``v1,`` signature in the header is tried against every
    key, in constant time; other versions (``v1a``, unknown) are ignored.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    ts_text = lower.get("webhook-timestamp")
    sig_text = lower.get("webhook-signature")
    if not (msg_id and ts_text and sig_text):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts = int(ts_text)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    clock = time.time() if now is None else now
    if abs(clock - ts) > tolerance:
        raise SignatureError("webhook-timestamp outside the tolerance")
    content = f"{msg_id}.{ts}.".encode() + body
    expected = [hmac.digest(decode_secret(s), content, hashlib.sha256) for s in secrets]
    for item in sig_text.split(" "):
        version, _, value = item.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(given, e) for e in expected):
            return msg_id
    raise SignatureError("no matching signature")
