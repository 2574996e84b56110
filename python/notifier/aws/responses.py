"""Turn an HTTP response of a restJson1 service into botocore's parsed dict or ClientError.

Mirrors ``botocore.parsers.RestJSONParser`` for operations whose errors carry no modeled
members (true of every SESv2 SendEmail error): the code comes from the ``x-amzn-ErrorType``
header, else the body's ``code``/``Code``, else ``__type``, else the HTTP status; the message
from ``message``/``Message``; a 5xx with an empty or HTML body is a generic error named after
the status. ``tests/aws/test_errors.py`` checks each case against botocore's own client.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from notifier.aws.errors import error_class

__all__ = ["is_retryable", "parse_error", "response_metadata", "type_code"]

# botocore's default ("legacy") retry policy (data/_retry.json, __default__): these responses
# would be retried; with one attempt allowed botocore marks them MaxAttemptsReached.
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 509})
_RETRYABLE_400_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
    }
)


def is_retryable(status: int, code: object) -> bool:
    """Whether botocore's default retry policy would retry this error response."""
    return status in _RETRYABLE_STATUS or (status == 400 and code in _RETRYABLE_400_CODES)


def response_metadata(status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    """``ResponseMetadata`` as botocore builds it (lower-cased headers, no retries)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    meta: dict[str, Any] = {}
    request_id = lowered.get("x-amzn-requestid")
    if request_id is not None:
        meta["RequestId"] = request_id
    meta["HTTPStatusCode"] = status
    meta["HTTPHeaders"] = lowered
    meta["RetryAttempts"] = 0
    return meta


def _json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return {"message": text}
    return parsed if isinstance(parsed, dict) else {"message": text}


def type_code(code: Any) -> Any:
    """The error code in a JSON ``__type`` (``"ns#Code:detail"`` -> ``"Code"``), as botocore."""
    if isinstance(code, str):
        if ":" in code:
            code = code.split(":", 1)[0]
        if "#" in code:
            code = code.rsplit("#", 1)[1]
    return code


def _error_dict(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in headers.items()}
    stripped = body.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        return {
            "Error": {"Code": str(status), "Message": http.client.responses.get(status, "")},
            "ResponseMetadata": {},
        }
    parsed = _json_body(body)
    error: dict[str, Any] = {
        "Message": parsed.get("message", parsed.get("Message", "")),
        "Code": "",
    }
    error["Code"] = type_code(parsed.get("__type", str(status)))
    header_code: Any = None
    if "x-amzn-errortype" in lowered:
        header_code = lowered["x-amzn-errortype"]
    elif "code" in parsed or "Code" in parsed:
        header_code = parsed.get("code", parsed.get("Code", ""))
    if header_code is not None:
        if isinstance(header_code, str):
            header_code = header_code.split(":", 1)[0].rsplit("#", 1)[-1]
        error["Code"] = header_code
    result: dict[str, Any] = {"Error": error, "ResponseMetadata": {}}
    if "x-amzn-requestid" in lowered:
        result["ResponseMetadata"]["RequestId"] = lowered["x-amzn-requestid"]
    return result


def parse_error(
    status: int, headers: Mapping[str, str], body: bytes, operation: str
) -> ClientError:
    """The ClientError (subclass) botocore raises for this error response."""
    parsed = _error_dict(status, headers, body)
    meta = parsed["ResponseMetadata"]
    meta.update(response_metadata(status, headers))
    code = parsed["Error"].get("Code")
    if is_retryable(status, code):
        # The fast client makes one attempt: what botocore reports with max_attempts=1.
        meta["MaxAttemptsReached"] = True
    cls = error_class(code) if isinstance(code, str) else ClientError
    return cls(parsed, operation)  # type: ignore[arg-type]
