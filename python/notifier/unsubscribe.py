"""One-click unsubscribe (RFC 8058): signed tokens, the mail headers, and the endpoint.

**Tokens.** ``<payload>.<signature>``, both base64url without padding (URL-safe as they are):
the payload is compact JSON ``{"u": user id, "c": category, "ch": channel, "exp": expiry
(epoch seconds), "id": token id (96 random bits, base64url)}``, the signature
HMAC-SHA256(key, ``"notifier-unsubscribe.v1." + <payload text>``). :class:`UnsubscribeTokens`
signs with the first key and verifies with any (rotation: put the new key first, keep the
old one until the last mail signed with it has expired, 30 days by default), comparing in
constant time. A token is a capability: whoever holds it may opt that user out of that
category on that channel, and nothing else.

**Keys.** ``NOTIFIER_UNSUBSCRIBE_KEY`` is a secret reference (``env:NAME``, ``ssm:/path``,
``secretsmanager:<id>[#field]``, see :mod:`notifier.secrets`) whose value is one or more keys
separated by spaces, newest first (the variable may also hold the keys themselves, as the
pipeline's default ``[unsubscribe] key = "env:NOTIFIER_UNSUBSCRIBE_KEY"`` reads it; a
reference is never mistaken for a key, ``:`` not being base64); each key is at least 32
random bytes, base64 (standard or URL-safe alphabet, padding optional). Make one with
``python -c "import notifier.unsubscribe as u; print(u.generate_key())"``.

**Headers.** :func:`list_unsubscribe_headers` gives ``List-Unsubscribe: <https://...>`` (plus
``, <mailto:...>`` when configured) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``;
RFC 8058 requires the HTTPS URI for one-click, the mailto is a fallback for other clients.

**Endpoint.** A Lambda function URL (payload format 2.0) handler:

- ``GET ?t=<token>``: a page (no scripts, everything escaped) naming the category, with a
  button that POSTs. GET never unsubscribes and never touches the table: mail scanners and
  link previewers follow links.
- ``POST ?t=<token>`` with the form field ``List-Unsubscribe=One-Click`` (what a mail client
  sends for RFC 8058 one-click, and what the page's button sends; urlencoded or multipart,
  base64 bodies too): verify the token, then in ONE DynamoDB transaction mark the token used
  (``TOKEN#<id>``, conditional on ``attribute_not_exists``, TTL = the token's expiry) and add
  the opt-out. 200 "You are unsubscribed"; forged or malformed 400; expired 410; already
  used 409 (nothing changes); a POST without the one-click field 400; the table unavailable
  503 (nothing changed: try again). Any other method 405.
- Crash safety: the two writes are one transaction, so there is no order to get wrong: a
  crash or a lost answer leaves either both (a retry answers 409, the user is unsubscribed)
  or neither (a retry does it). A lost answer is retried inside the request with the same
  ``ClientRequestToken``, which DynamoDB treats as the same transaction.
- Logs: one JSON line per request with the outcome, the token id's first 4 characters and
  the user id masked (2 characters and a short hash); never the token or a full user id.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
import os
import re
import secrets as _secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from email import policy as _email_policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import msgspec

from notifier.config import ConfigError
from notifier.retry import Deadline

if TYPE_CHECKING:
    from notifier.preferences import PreferencesStore
    from notifier.secrets import SecretResolver

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "MIN_KEY_BYTES",
    "TokenClaims",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "UnsubscribeEndpoint",
    "UnsubscribeHandler",
    "UnsubscribeSettings",
    "UnsubscribeTokens",
    "build_unsubscribe_handler",
    "generate_key",
    "keys_from_setting",
    "lambda_handler",
    "list_unsubscribe_headers",
    "load_keys",
    "parse_keys",
    "unsubscribe_url",
]

log = logging.getLogger("notifier.unsubscribe")

DEFAULT_TTL_SECONDS = 30 * 86_400
MIN_KEY_BYTES = 32
#: Tokens longer than this are refused before any decoding.
MAX_TOKEN_CHARS = 2048
_CONTEXT = b"notifier-unsubscribe.v1."
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_MAX_BODY_BYTES = 64 * 1024
_ONE_CLICK = ("List-Unsubscribe", "One-Click")
_REFERENCE = re.compile(r"(env|ssm|secretsmanager):")


# -- tokens -----------------------------------------------------------------------------------


class TokenError(ValueError):
    """A token that does not unsubscribe anyone (see the subclasses)."""


class TokenInvalid(TokenError):
    """Malformed, or not signed by any of our keys: forged or damaged."""


class TokenExpired(TokenError):
    """Genuine but past its expiry; ``claims`` says whose and for what."""

    def __init__(self, claims: TokenClaims) -> None:
        super().__init__("unsubscribe token expired")
        self.claims = claims


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says."""

    user_id: str
    category: str
    channel: str
    expires_at: int
    token_id: str


class _Payload(msgspec.Struct, forbid_unknown_fields=True):
    u: str
    c: str
    ch: str
    exp: int
    id: str


_encode_payload = msgspec.json.Encoder().encode
_decode_payload = msgspec.json.Decoder(_Payload).decode


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    """Strict base64url without padding (``binascii.Error``/``ValueError`` otherwise)."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64e(raw) != text:  # non-canonical trailing bits: one token, one spelling
        raise ValueError("not canonical base64url")
    return raw


class UnsubscribeTokens:
    """Signs and verifies unsubscribe tokens with ``keys`` (raw bytes, each at least
    :data:`MIN_KEY_BYTES`; the first signs, any verifies)."""

    def __init__(
        self,
        keys: Sequence[bytes],
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("at least one unsubscribe key is needed")
        for i, key in enumerate(keys, 1):
            if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
                raise ValueError(f"unsubscribe key {i} is shorter than {MIN_KEY_BYTES} bytes")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._keys = tuple(bytes(k) for k in keys)
        self.ttl_seconds = int(ttl_seconds)
        self.clock = clock

    @staticmethod
    def _mac(key: bytes, payload: str) -> bytes:
        return hmac.new(key, _CONTEXT + payload.encode("ascii"), hashlib.sha256).digest()

    def sign(self, user_id: str, category: str, channel: str = "email") -> str:
        """A token letting its holder opt ``user_id`` out of ``category`` on ``channel``,
        valid for ``ttl_seconds`` from now."""
        for name, value in (("user_id", user_id), ("category", category), ("channel", channel)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        if ":" in channel:
            raise ValueError("channel must not contain ':'")
        payload = _b64e(
            _encode_payload(
                _Payload(
                    u=user_id,
                    c=category,
                    ch=channel,
                    exp=int(self.clock()) + self.ttl_seconds,
                    id=_b64e(_secrets.token_bytes(12)),
                )
            )
        )
        return f"{payload}.{_b64e(self._mac(self._keys[0], payload))}"

    def verify(self, token: str) -> TokenClaims:
        """The token's claims; :class:`TokenInvalid` (forged, damaged) or
        :class:`TokenExpired` (genuine, too old)."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise TokenInvalid("malformed unsubscribe token")
        payload, dot, signature = token.partition(".")
        try:
            if not dot:
                raise ValueError("no signature")
            given = _b64d(signature)
            _b64d(payload)
        except (ValueError, binascii.Error):
            raise TokenInvalid("malformed unsubscribe token") from None
        # Every key is tried, each comparison in constant time: the answer's timing says
        # neither where a forged signature differs nor which key matched.
        matches = [hmac.compare_digest(self._mac(key, payload), given) for key in self._keys]
        if not any(matches):
            raise TokenInvalid("unsubscribe token signature does not match")
        try:
            body = _decode_payload(_b64d(payload))
        except (ValueError, binascii.Error, msgspec.DecodeError):
            raise TokenInvalid("malformed unsubscribe token payload") from None
        if not body.u or not body.c or not body.ch or not body.id:
            raise TokenInvalid("malformed unsubscribe token payload")
        claims = TokenClaims(body.u, body.c, body.ch, body.exp, body.id)
        if self.clock() >= body.exp:
            raise TokenExpired(claims)
        return claims


def generate_key() -> str:
    """A new key: 32 random bytes, base64 (what ``NOTIFIER_UNSUBSCRIBE_KEY`` holds)."""
    return base64.b64encode(_secrets.token_bytes(MIN_KEY_BYTES)).decode("ascii")


def parse_keys(text: str, where: str = "NOTIFIER_UNSUBSCRIBE_KEY") -> list[bytes]:
    """Space-separated base64 keys (newest first) -> raw keys; :class:`ConfigError` naming
    ``where`` and the key's position, never its value."""
    parts = text.split()
    if not parts:
        raise ConfigError(f"{where}: no unsubscribe key in the secret")
    keys: list[bytes] = []
    for i, part in enumerate(parts, 1):
        std = part.replace("-", "+").replace("_", "/").rstrip("=")
        try:
            raw = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
        except (ValueError, binascii.Error):
            raise ConfigError(f"{where}: key {i} of {len(parts)} is not base64") from None
        if len(raw) < MIN_KEY_BYTES:
            raise ConfigError(
                f"{where}: key {i} of {len(parts)} is {len(raw)} bytes; "
                f"at least {MIN_KEY_BYTES} random bytes are required"
            )
        keys.append(raw)
    return keys


async def load_keys(
    resolver: SecretResolver, reference: str, where: str = "NOTIFIER_UNSUBSCRIBE_KEY"
) -> list[bytes]:
    """The keys a secret reference names (:func:`parse_keys` of its value). A value that is
    itself a reference is followed once, so ``env:NOTIFIER_UNSUBSCRIBE_KEY`` works whether
    that variable holds the keys or names where they live (``ssm:/notifier/unsubscribe``)."""
    value = (await resolver.resolve(reference, where)).reveal().strip()
    if _REFERENCE.match(value):
        value = (await resolver.resolve(value, where)).reveal().strip()
    return parse_keys(value, where)


async def keys_from_setting(
    resolver: SecretResolver, value: str, where: str = "NOTIFIER_UNSUBSCRIBE_KEY"
) -> list[bytes]:
    """The keys of a setting that holds either a secret reference or the keys themselves
    (unambiguous: ``:`` is not in the base64 alphabet)."""
    if _REFERENCE.match(value.strip()):
        return await load_keys(resolver, value.strip(), where)
    return parse_keys(value, where)


# -- mail headers -----------------------------------------------------------------------------


_HEADER_UNSAFE = re.compile(r"[\s<>,\"]")


def unsubscribe_url(base_url: str, token: str) -> str:
    """``base_url`` with ``t=<token>`` added to its query (other parameters kept)."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError("the unsubscribe base URL must be an absolute https URL")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "t"] + [("t", token)]
    path = parts.path or "/"
    return urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), "")
    )


def list_unsubscribe_headers(
    url: str, mailto: str | None = None, *, require_https: bool = True
) -> list[tuple[str, str]]:
    """The RFC 8058 headers for ``url`` (and an optional mailto fallback)::

        List-Unsubscribe: <https://...>, <mailto:unsubscribe@example.com>
        List-Unsubscribe-Post: List-Unsubscribe=One-Click

    ``url`` must be https (RFC 8058 3.1); ``require_https=False`` lets a local harness use an
    http URL (not RFC 8058 compliant: for tests only). ``mailto`` is an address or a
    ``mailto:`` URI. ``ValueError`` for anything that would not be a single safe header line.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme != "https" and (require_https or scheme != "http"):
        raise ValueError("one-click unsubscribe needs an https URL (RFC 8058)")
    if _HEADER_UNSAFE.search(url):
        raise ValueError("the unsubscribe URL has characters a header cannot carry")
    value = f"<{url}>"
    if mailto:
        target = mailto if mailto.lower().startswith("mailto:") else f"mailto:{mailto}"
        if _HEADER_UNSAFE.search(target) or "@" not in target:
            raise ValueError("the unsubscribe mailto is not a plain address or mailto: URI")
        value += f", <{target}>"
    return [
        ("List-Unsubscribe", value),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


# -- the endpoint -----------------------------------------------------------------------------


_SECURITY_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#222}button{font-size:1rem;padding:.6rem 1.2rem}"
)


def _page(title: str, message: str, *, form_token: str | None = None) -> str:
    form = ""
    if form_token is not None:
        action = html.escape("?" + urllib.parse.urlencode({"t": form_token}), quote=True)
        form = (
            f'<form method="post" action="{action}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{form}</body></html>"
    )


def _response(
    status: int, title: str, message: str, *, form_token: str | None = None, **extra: str
) -> dict[str, Any]:
    headers = dict(_SECURITY_HEADERS)
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return {
        "statusCode": status,
        "headers": headers,
        "body": _page(title, message, form_token=form_token),
        "isBase64Encoded": False,
    }


def _what(claims: TokenClaims) -> str:
    category = "all" if claims.category == "*" else f'"{claims.category}"'
    channel = "any channel" if claims.channel == "*" else claims.channel
    return f"{category} notifications by {channel}"


def _mask_id(user_id: str) -> str:
    digest = hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{user_id[:2]}***#{digest}"


class BadRequest(ValueError):
    """The request is not one the endpoint understands (answered 400)."""


def _header(headers: Any, name: str) -> str:
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == name and isinstance(value, str):
                return value
    return ""


def _form_fields(body: bytes, content_type: str) -> dict[str, list[str]]:
    """The fields of a form body: multipart/form-data (the stdlib's MIME parser) or
    application/x-www-form-urlencoded (also the reading of a body with no content type)."""
    if content_type.lower().startswith("multipart/form-data"):
        message = BytesParser(policy=_email_policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
        )
        if not message.is_multipart():
            raise BadRequest("malformed multipart body")
        fields: dict[str, list[str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                raw = part.get_payload(decode=True)
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
                fields.setdefault(name, []).append(text.strip())
        return fields
    try:
        return urllib.parse.parse_qs(
            body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=32
        )
    except ValueError:
        raise BadRequest("too many form fields") from None


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    token: str | None
    body: bytes
    content_type: str


def _parse_event(event: Mapping[str, Any] | bytes | str) -> _Request:
    if isinstance(event, bytes | bytearray | str):
        try:
            event = json.loads(event)
        except ValueError:
            raise BadRequest("the event is not JSON") from None
    if not isinstance(event, Mapping):
        raise BadRequest("the event is not an object")
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    method = str(http.get("method", "")).upper() if isinstance(http, Mapping) else ""
    raw_query = event.get("rawQueryString")
    token: str | None = None
    if isinstance(raw_query, str):
        try:
            query = urllib.parse.parse_qs(raw_query, keep_blank_values=True, max_num_fields=32)
        except ValueError:
            raise BadRequest("too many query parameters") from None
        values = query.get("t")
        token = values[0] if values else None
    else:
        params = event.get("queryStringParameters")
        if isinstance(params, Mapping) and isinstance(params.get("t"), str):
            token = params["t"]
    body_text = event.get("body")
    body = b""
    if isinstance(body_text, str) and body_text:
        if event.get("isBase64Encoded"):
            try:
                body = base64.b64decode(body_text, validate=True)
            except (ValueError, binascii.Error):
                raise BadRequest("the base64 body does not decode") from None
        else:
            body = body_text.encode("utf-8", "surrogatepass")
    if len(body) > _MAX_BODY_BYTES:
        raise BadRequest("the body is too large")
    return _Request(method, token, body, _header(event.get("headers"), "content-type"))


class UnsubscribeEndpoint:
    """The request logic, independent of the Lambda plumbing: ``await handle(event,
    deadline)`` -> a function URL response dict."""

    def __init__(self, tokens: UnsubscribeTokens, store: PreferencesStore) -> None:
        self.tokens = tokens
        self.store = store
        #: Requests answered, by outcome (for tests and metrics).
        self.outcomes: dict[str, int] = {}

    async def handle(
        self, event: Mapping[str, Any] | bytes | str, deadline: Deadline
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        try:
            response = await self._handle(event, deadline, fields)
        except Exception as exc:  # never a stack trace (or a token) to the browser
            fields.update(outcome="error", error=type(exc).__name__)
            response = _response(500, "Something went wrong", "Please try again later.")
        fields["status"] = response["statusCode"]
        outcome = str(fields.pop("outcome", "error"))
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        log.info(json.dumps({"unsubscribe": outcome, **fields}, separators=(",", ":")))
        return response

    async def _handle(
        self,
        event: Mapping[str, Any] | bytes | str,
        deadline: Deadline,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        try:
            request = _parse_event(event)
        except BadRequest:
            fields["outcome"] = "bad_request"
            return _response(400, "Bad request", "This request could not be understood.")
        fields["method"] = request.method
        if request.method not in ("GET", "POST"):
            fields["outcome"] = "method_not_allowed"
            return _response(
                405, "Method not allowed", "Use the link in the email.", allow="GET, POST"
            )
        if not request.token:
            fields["outcome"] = "no_token"
            return _response(400, "Invalid link", "This unsubscribe link is incomplete.")
        try:
            claims = self.tokens.verify(request.token)
        except TokenExpired as exc:
            fields.update(outcome="expired", token=exc.claims.token_id[:4])
            return _response(
                410,
                "Link expired",
                "This unsubscribe link has expired and changed nothing. Use the link in a "
                "more recent message, or change your notification settings.",
            )
        except TokenInvalid:
            fields["outcome"] = "invalid"
            return _response(
                400, "Invalid link", "This unsubscribe link is not valid and changed nothing."
            )
        fields.update(token=claims.token_id[:4], user=_mask_id(claims.user_id))
        if request.method == "GET":
            fields["outcome"] = "page"
            return _response(
                200,
                "Unsubscribe",
                f"Stop receiving {_what(claims)}?",
                form_token=request.token,
            )
        try:
            form = _form_fields(request.body, request.content_type)
        except BadRequest:
            form = {}
        if form.get(_ONE_CLICK[0]) != [_ONE_CLICK[1]]:
            fields["outcome"] = "not_one_click"
            return _response(400, "Bad request", "Use the Unsubscribe button; nothing was changed.")
        from notifier.preferences import PreferencesError

        try:
            done = await self.store.opt_out_once(
                claims.token_id,
                claims.user_id,
                claims.category,
                claims.channel,
                token_expires_at=claims.expires_at,
                deadline=deadline,
            )
        except PreferencesError as exc:
            fields.update(outcome="unavailable", error=exc.code)
            return _response(
                503,
                "Try again later",
                "We could not unsubscribe you just now, and nothing was changed. "
                "Please try again in a minute.",
                retry_after="60",
            )
        if not done:
            fields["outcome"] = "replayed"
            return _response(
                409,
                "Link already used",
                "This unsubscribe link was already used; nothing was changed.",
            )
        fields["outcome"] = "unsubscribed"
        return _response(200, "You are unsubscribed", f"You will no longer get {_what(claims)}.")


# -- Lambda plumbing --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnsubscribeSettings:
    """The endpoint's environment: ``NOTIFIER_PREFERENCES_TABLE`` (default
    ``notifier-preferences``), ``NOTIFIER_UNSUBSCRIBE_KEY`` (a secret reference, required),
    ``AWS_REGION``, ``NOTIFIER_AWS_CLIENTS`` (``fast`` or ``aiobotocore``)."""

    preferences_table: str = "notifier-preferences"
    unsubscribe_key: str | None = None
    region: str = "us-east-1"
    endpoint_url: str | None = None
    aws_clients: str = "fast"
    #: Time kept back from the Lambda deadline (ms) so the answer still goes out.
    deadline_margin_ms: float = 500.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UnsubscribeSettings:
        env = os.environ if environ is None else environ
        return cls(
            preferences_table=env.get("NOTIFIER_PREFERENCES_TABLE") or "notifier-preferences",
            unsubscribe_key=env.get("NOTIFIER_UNSUBSCRIBE_KEY") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            aws_clients=(env.get("NOTIFIER_AWS_CLIENTS") or "fast").strip().lower(),
        )


class UnsubscribeHandler:
    """A ready endpoint on its own event loop. Call it with a function URL event (dict, JSON
    str or raw bytes from the custom runtime) and the Lambda context."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stack: AsyncExitStack,
        endpoint: UnsubscribeEndpoint,
        settings: UnsubscribeSettings,
    ) -> None:
        self._loop = loop
        self._stack = stack
        self.endpoint = endpoint
        self.settings = settings
        self._closed = False

    def __call__(self, event: Mapping[str, Any] | bytes | str, context: Any = None) -> Any:
        deadline = Deadline.from_context(
            context, margin_ms=self.settings.deadline_margin_ms, default_s=10.0
        )
        return self._loop.run_until_complete(self.endpoint.handle(event, deadline))

    def run(self, awaitable: Any) -> Any:
        """Run ``awaitable`` on the handler's loop (its clients live there): for tests."""
        return self._loop.run_until_complete(awaitable)

    @property
    def store(self) -> PreferencesStore:
        return self.endpoint.store

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run_until_complete(self._stack.aclose())
        finally:
            self._loop.close()

    def __enter__(self) -> UnsubscribeHandler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_unsubscribe_handler(
    settings: UnsubscribeSettings | None = None,
    *,
    clients: Mapping[str, Any] | None = None,
    keys: Sequence[bytes] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    clock: Callable[[], float] = time.time,
) -> UnsubscribeHandler:
    """Build the endpoint once: keys read from ``settings.unsubscribe_key`` (unless ``keys``
    are given), the DynamoDB client opened (``clients["dynamodb"]`` if injected; else
    ``notifier.aws.DynamoDBClient``, or aiobotocore with ``aws_clients="aiobotocore"``).
    Raises :class:`ConfigError` when the key is missing or unusable."""
    settings = settings or UnsubscribeSettings.from_env()
    loop = loop or asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        endpoint = loop.run_until_complete(
            _build(settings, stack, dict(clients or {}), keys, clock)
        )
    except BaseException:
        loop.run_until_complete(stack.aclose())
        loop.close()
        raise
    return UnsubscribeHandler(loop, stack, endpoint, settings)


async def _build(
    settings: UnsubscribeSettings,
    stack: AsyncExitStack,
    clients: dict[str, Any],
    keys: Sequence[bytes] | None,
    clock: Callable[[], float],
) -> UnsubscribeEndpoint:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    from notifier.preferences import PreferencesStore
    from notifier.retry import Backoff
    from notifier.secrets import SecretResolver

    session = get_session()
    client_kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.endpoint_url:
        client_kwargs["endpoint_url"] = settings.endpoint_url
    if keys is None:
        if not settings.unsubscribe_key:
            raise ConfigError(
                "NOTIFIER_UNSUBSCRIBE_KEY: not set; it must name the unsubscribe key "
                "(env:NAME, ssm:/path or secretsmanager:<id>[#field])"
            )
        resolver = SecretResolver(session=session, client_kwargs=client_kwargs, clients=clients)
        keys = await keys_from_setting(resolver, settings.unsubscribe_key)
    tokens = UnsubscribeTokens(keys, clock=clock)
    ddb = clients.get("dynamodb")
    if ddb is None and settings.aws_clients == "fast":
        from notifier.aws import DynamoDBClient

        ddb = DynamoDBClient(
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            max_connections=4,
            connect_timeout=2.0,
            read_timeout=3.0,
        )
        stack.push_async_callback(ddb.close)
    if ddb is None:
        ddb = await stack.enter_async_context(
            session.create_client(
                "dynamodb",
                config=AioConfig(retries={"mode": "standard"}, connect_timeout=2, read_timeout=3),
                **client_kwargs,
            )
        )
    store = PreferencesStore(
        ddb,
        settings.preferences_table,
        clock=clock,
        backoff=Backoff(max_attempts=4, base_s=0.05, cap_s=0.5),
        call_timeout_s=3.0,
    )
    return UnsubscribeEndpoint(tokens, store)


_default: UnsubscribeHandler | None = None


def lambda_handler(event: Any, context: Any) -> Any:
    """The Lambda entry point (``notifier.unsubscribe.lambda_handler``), built on first use."""
    global _default
    if _default is None:
        _default = build_unsubscribe_handler()
    return _default(event, context)
