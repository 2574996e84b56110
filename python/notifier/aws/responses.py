"""Turn an AWS error response into the ClientError botocore raises for it.

restJson1 (SESv2, :func:`parse_error`): mirrors ``botocore.parsers.RestJSONParser`` for
operations whose errors carry no modeled members (true of every SESv2 SendEmail error): the
code comes from the ``x-amzn-ErrorType`` header, else the body's ``code``/``Code``, else
``__type``, else the HTTP status; the message from ``message``/``Message``; a 5xx with an
empty or HTML body is a generic error named after the status. ``tests/aws/test_errors.py``
checks each case against botocore's own client.

query (SNS, :func:`parse_query_error`): mirrors ``botocore.parsers.QueryParser``: the
``ErrorResponse`` XML (parsed by ``xml.etree.ElementTree``, namespaces dropped) becomes
``{"Error": {"Type", "Code", "Message"}, "ResponseMetadata": {"RequestId"}}``; the same generic
error for a 5xx with an empty or HTML body. One deliberate difference: an error body that is
not XML at all (a proxy's plain-text 403) is, for botocore, a ``ResponseParserError`` (neither a
service error nor a transport failure); here it is the generic error named after the status, so
the caller's verdict is the HTTP status's. ``tests/aws/test_sns.py`` checks both.
"""

from __future__ import annotations

import http.client
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from notifier.aws.errors import error_class

__all__ = [
    "is_retryable",
    "local_name",
    "parse_error",
    "parse_query_error",
    "query_response_metadata",
    "response_metadata",
    "type_code",
]

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


# -- query protocol (XML) ---------------------------------------------------------------------


def local_name(tag: str) -> str:
    """An XML tag without its ``{namespace}`` (botocore drops namespaces the same way)."""
    return tag.rpartition("}")[2] if tag.startswith("{") else tag


def query_response_metadata(
    status: int, headers: Mapping[str, str], request_id: str | None
) -> dict[str, Any]:
    """``ResponseMetadata`` as botocore builds it for a query-protocol answer: the request id
    from the XML body (not the ``x-amzn-RequestId`` header), lower-cased headers, no retries."""
    meta: dict[str, Any] = {}
    if request_id is not None:
        meta["RequestId"] = request_id
    meta["HTTPStatusCode"] = status
    meta["HTTPHeaders"] = {k.lower(): v for k, v in headers.items()}
    meta["RetryAttempts"] = 0
    return meta


_XmlNode = ET.Element | list[ET.Element]


def _name_to_node(parent: _XmlNode) -> dict[str, Any]:
    """botocore's ``_build_name_to_xml_node``: children by local tag, repeats as lists."""
    if isinstance(parent, list):
        parent = parent[0]
    out: dict[str, Any] = {}
    for child in parent:
        key = local_name(child.tag)
        if key in out:
            previous = out[key]
            out[key] = [*previous, child] if isinstance(previous, list) else [previous, child]
        else:
            out[key] = child
    return out


def _replace_nodes(parsed: dict[str, Any]) -> dict[str, Any]:
    """botocore's ``_replace_nodes``: elements with children become dicts, leaves their text."""
    for key, value in parsed.items():
        if len(value):
            parsed[key] = _replace_nodes(_name_to_node(value))
        else:
            parsed[key] = value.text
    return parsed


def _generic_error(status: int) -> dict[str, Any]:
    return {
        "Error": {"Code": str(status), "Message": http.client.responses.get(status, "")},
        "ResponseMetadata": {},
    }


def _query_error_dict(status: int, body: bytes) -> dict[str, Any]:
    stripped = body.strip()
    if status >= 500 and (not stripped or stripped.startswith(b"<html>")):
        return _generic_error(status)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return _generic_error(status)  # botocore: ResponseParserError (module docstring)
    parsed = _replace_nodes(_name_to_node(root))
    if "Errors" in parsed:
        errors = parsed.pop("Errors")
        if isinstance(errors, dict):
            parsed.update(errors)
    if "RequestId" in parsed:
        parsed["ResponseMetadata"] = {"RequestId": parsed.pop("RequestId")}
    return parsed


def parse_query_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    operation: str,
    error_class: Callable[[str], type[ClientError]],
) -> ClientError:
    """The ClientError (subclass, by ``error_class(code)``) botocore raises for this
    query-protocol error response."""
    parsed = _query_error_dict(status, body)
    meta = parsed.get("ResponseMetadata")
    if not isinstance(meta, dict):
        meta = {}
    request_id = meta.get("RequestId")
    meta.update(query_response_metadata(status, headers, request_id))
    parsed["ResponseMetadata"] = meta
    error = parsed.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    if is_retryable(status, code):
        meta["MaxAttemptsReached"] = True
    cls = error_class(code) if isinstance(code, str) else ClientError
    return cls(parsed, operation)  # type: ignore[arg-type]
