"""A fast DynamoDB client for the ledger's hot calls, with botocore's request and errors.

A drop-in for the low-level aiobotocore ``dynamodb`` client methods ``transact_write_items``,
``batch_write_item``, ``put_item``, ``update_item``, ``delete_item``, ``get_item`` and
``batch_get_item``: same keyword arguments (AttributeValue wire format, ``{"B": bytes}`` for
binary), same response dicts (binary values decoded to ``bytes``, ``ResponseMetadata``), same
``ClientError`` codes and modeled error fields (``CancellationReasons`` of
``TransactionCanceledException``, ``Item`` of ``ConditionalCheckFailedException``).

Kept from botocore: credentials (provider chain, refreshable), region and configured
endpoints (``AWS_ENDPOINT_URL_DYNAMODB`` / ``AWS_ENDPOINT_URL`` / config file), the SigV4
signature (``X-Amz-Target`` signed; tests compare with botocore's own), the CRC32 check of the
response, and "standard"-mode retries of throttling and 5xx answers (3 attempts, jittered
exponential backoff). Skipped: validation (bad input comes back as ``ValidationException``
from the service), per-call hook dispatch and endpoint-ruleset evaluation (the regional
endpoint is used; account-ID-based endpoints are not), user-agent assembly. Unlike botocore,
a request whose outcome is unknown (connection lost or read timeout after sending) is NOT
retried silently: :class:`~notifier.aws.errors.OutcomeUnknownError` is raised for the caller
(conditional writes make the retry safe, but the caller should know). A request that could
not be built or signed raises :class:`~notifier.aws.errors.RequestNotSentError` at once (no
retry); a clock-skew rejection is corrected from the server's ``Date`` and retried once.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import random
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from notifier.aws.client import ClientSettings, FastClient, PoolSettings, ServiceSpec, TransportName
from notifier.aws.endpoint import configured_endpoint
from notifier.aws.errors import RequestNotSentError
from notifier.aws.pooled import DEFAULT_MAX_RESPONSE_BYTES
from notifier.aws.responses import response_metadata, type_code
from notifier.aws.sigv4 import CredentialSource

if TYPE_CHECKING:
    from botocore.session import Session

__all__ = ["DYNAMODB_ERRORS", "DynamoDBClient", "resolve_dynamodb_endpoint"]

_TARGET = "DynamoDB_20120810."
_CONTENT_TYPE = "application/x-amz-json-1.0"

# Modeled errors of the supported operations and their members (botocore copies these from
# the error body into the response dict).
_MODELED: dict[str, tuple[str, ...]] = {
    "ResourceNotFoundException": ("message",),
    "TransactionCanceledException": ("Message", "CancellationReasons"),
    "TransactionInProgressException": ("Message",),
    "IdempotentParameterMismatchException": ("Message",),
    "ProvisionedThroughputExceededException": ("message", "ThrottlingReasons"),
    "RequestLimitExceeded": ("message", "ThrottlingReasons"),
    "InternalServerError": ("message",),
    "ThrottlingException": ("message", "throttlingReasons"),
    "ItemCollectionSizeLimitExceededException": ("message",),
    "ReplicatedWriteConflictException": ("message",),
    "ConditionalCheckFailedException": ("message", "Item"),
    "TransactionConflictException": ("message",),
}
DYNAMODB_ERRORS: dict[str, type[ClientError]] = {
    name: type(name, (ClientError,), {"__module__": __name__}) for name in _MODELED
}
# botocore's standard retry mode: throttling and transient answers are retried.
_RETRY_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_compat_dumps = json.JSONEncoder(default=lambda o: _b64(o)).encode


def _b64(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _decode_blobs(node: Any) -> Any:
    """Base64-decode ``B`` / ``BS`` AttributeValues in a parsed response, in place."""
    if isinstance(node, dict):
        if len(node) == 1:
            if isinstance(b := node.get("B"), str):
                node["B"] = base64.b64decode(b)
                return node
            if isinstance(bs := node.get("BS"), list):
                node["BS"] = [base64.b64decode(x) for x in bs]
                return node
        for v in node.values():
            _decode_blobs(v)
    elif isinstance(node, list):
        for v in node:
            _decode_blobs(v)
    return node


def resolve_dynamodb_endpoint(
    session: Session, region: str, endpoint_url: str | None = None
) -> str:
    """Explicit, else botocore's configured endpoint, else the regional endpoint."""
    if endpoint_url:
        return endpoint_url
    url = configured_endpoint(session, "dynamodb")
    if url:
        return url
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://dynamodb.{region}.{suffix}"


def _error(
    status: int, headers: Mapping[str, str], body: bytes, op: str, attempts: int, exhausted: bool
) -> ClientError:
    stripped = body.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        parsed: Any = {"message": http.client.responses.get(status, "")}
    else:
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            parsed = {"message": body.decode("utf-8", "replace")}
    if not isinstance(parsed, dict):
        parsed = {}
    code: Any = type_code(parsed.get("__type", str(status)))
    response: dict[str, Any] = {
        "Error": {"Message": parsed.get("message", parsed.get("Message", "")), "Code": code},
        "ResponseMetadata": response_metadata(status, headers),
    }
    response["ResponseMetadata"]["RetryAttempts"] = attempts - 1
    if exhausted:
        response["ResponseMetadata"]["MaxAttemptsReached"] = True
    members = _MODELED.get(code, ()) if isinstance(code, str) else ()
    for m in members:
        if m in parsed:
            response[m] = _decode_blobs(parsed[m])
    cls = DYNAMODB_ERRORS.get(code, ClientError) if isinstance(code, str) else ClientError
    return cls(response, op)  # type: ignore[arg-type]


_SERVICE = ServiceSpec("dynamodb", resolve_dynamodb_endpoint, "/", _CONTENT_TYPE)


class DynamoDBClient(FastClient):
    """DynamoDB's item-write and item-read calls over one keep-alive connection pool.

    Arguments as :class:`notifier.aws.SESv2Client`, plus ``max_attempts`` (default 3, as
    botocore's standard retry mode) and ``body_encoding`` (``"compact"``: orjson;
    ``"botocore"``: the exact bytes botocore sends).
    """

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        credentials: CredentialSource | None = None,
        session: Session | None = None,
        max_connections: int = 64,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        keepalive_timeout: float = 15.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_attempts: int = 3,
        body_encoding: Literal["botocore", "compact"] = "compact",
        clock: Callable[[], float] = time.time,
        transport: TransportName = "raw",
    ) -> None:
        self._set_up(
            _SERVICE,
            ClientSettings(region_name, endpoint_url, credentials, session, clock, transport),
            PoolSettings(
                max_connections,
                connect_timeout,
                read_timeout,
                keepalive_timeout,
                max_response_bytes,
            ),
        )
        if body_encoding == "compact":
            import orjson

            self._dumps: Callable[[Any], bytes] = lambda o: orjson.dumps(o, default=_b64)
        else:
            self._dumps = lambda o: _compat_dumps(o).encode("utf-8")
        self.max_attempts = max(1, max_attempts)
        from notifier import __version__

        self._user_agent = f"notifier/{__version__} fast-dynamodb"

    def build_request(
        self, operation: str, params: Mapping[str, Any]
    ) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) of the signed request for ``operation`` (e.g. "PutItem").

        ``params`` are sent as given (``transact_write_items`` adds the token first).
        """
        body = self._dumps(params)
        headers = self._signer.sign(body, target=_TARGET + operation)
        headers["User-Agent"] = self._user_agent
        return self.url, headers, body

    async def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Call ``operation`` with botocore-shaped ``params``; botocore-shaped result."""
        attempt = 0
        skew_retried = False
        while True:
            attempt += 1
            url, headers, body = self._build(
                lambda: self.build_request(operation, params), operation
            )
            last = attempt >= self.max_attempts
            try:
                status, resp_headers, payload = await self._transport.post(
                    url, headers, body, operation
                )
            except RequestNotSentError:
                if last:
                    raise
                await self._backoff(attempt)
                continue
            crc = resp_headers.get("x-amz-crc32")
            if crc is not None and int(crc) != zlib.crc32(payload):
                if last:
                    from botocore.exceptions import ChecksumError

                    raise ChecksumError(
                        checksum_type="crc32",
                        expected_checksum=crc,
                        actual_checksum=str(zlib.crc32(payload)),
                    )
                await self._backoff(attempt)
                continue
            if status < 300:
                result = json.loads(payload) if payload else {}
                if b'"B' in payload:
                    _decode_blobs(result)
                meta = response_metadata(status, resp_headers)
                meta["RetryAttempts"] = attempt - 1
                result["ResponseMetadata"] = meta
                return dict(result)
            code = self._code_of(payload)
            if not skew_retried and self._corrected_skew(code, resp_headers):
                # A rejected signature was never acted upon: re-sign with the learned clock
                # offset and retry once, without spending an attempt.
                skew_retried = True
                attempt -= 1
                continue
            retryable = status in _RETRY_STATUS or code in _RETRY_CODES
            if not retryable or last:
                raise _error(status, resp_headers, payload, operation, attempt, retryable)
            await self._backoff(attempt)

    @staticmethod
    def _code_of(payload: bytes) -> str | None:
        try:
            code = json.loads(payload).get("__type", "")
        except (ValueError, AttributeError):
            return None
        return str(code).rsplit("#", 1)[-1] if code else None

    @staticmethod
    async def _backoff(attempt: int) -> None:
        # botocore standard mode: random() * base ** (attempt - 1), base 2, capped at 20 s.
        await asyncio.sleep(random.random() * min(20.0, 2.0 ** (attempt - 1)))

    async def transact_write_items(self, **params: Any) -> dict[str, Any]:
        """TransactWriteItems (``TransactionCanceledException`` carries ``CancellationReasons``).

        Like botocore, a ``ClientRequestToken`` is generated when absent, once per call, so a
        retry of the same call is idempotent on DynamoDB's side.
        """
        if "ClientRequestToken" not in params:
            params["ClientRequestToken"] = str(uuid.uuid4())
        return await self.call("TransactWriteItems", params)

    async def batch_write_item(self, **params: Any) -> dict[str, Any]:
        """BatchWriteItem (check ``UnprocessedItems``)."""
        return await self.call("BatchWriteItem", params)

    async def put_item(self, **params: Any) -> dict[str, Any]:
        """PutItem."""
        return await self.call("PutItem", params)

    async def update_item(self, **params: Any) -> dict[str, Any]:
        """UpdateItem."""
        return await self.call("UpdateItem", params)

    async def delete_item(self, **params: Any) -> dict[str, Any]:
        """DeleteItem."""
        return await self.call("DeleteItem", params)

    async def get_item(self, **params: Any) -> dict[str, Any]:
        """GetItem."""
        return await self.call("GetItem", params)

    async def batch_get_item(self, **params: Any) -> dict[str, Any]:
        """BatchGetItem (check ``UnprocessedKeys``)."""
        return await self.call("BatchGetItem", params)
