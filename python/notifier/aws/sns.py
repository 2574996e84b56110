"""A fast SNS ``Publish`` client: botocore's request, without botocore's per-call machinery.

A drop-in for the one call of the aiobotocore sns client that the SMS and push channels make::

    async with SNSClient() as sns:
        resp = await sns.publish(PhoneNumber="+15555550100", Message="Hi")
        resp["MessageId"]

What it keeps from botocore: the credential provider chain (asked on every request), the region
and configured-endpoint resolution (``AWS_ENDPOINT_URL_SNS``, ``AWS_ENDPOINT_URL``, the config
file; else ``https://sns.<region>.amazonaws.com``), the SigV4 signature (byte-identical, see
:mod:`notifier.aws.sigv4`), the request body bytes (botocore's query serializer:
``Action=Publish&Version=2010-03-31`` then the parameters in the order given, message attributes
as ``MessageAttributes.entry.N.Name`` / ``.Value.DataType`` / ``.Value.StringValue`` /
``.Value.BinaryValue`` (base64), form-encoded by ``urllib.parse.urlencode`` as botocore does),
the response (``PublishResponse/PublishResult/MessageId`` and ``SequenceNumber``, parsed with
``xml.etree.ElementTree``) and the errors (:func:`notifier.aws.responses.parse_query_error`:
``ErrorResponse/Error/Code`` raised as the ``ClientError`` subclass botocore names after the
modeled error, e.g. ``InvalidParameterException`` for code ``InvalidParameter``).

What it skips, deliberately: per-call event hooks, parameter validation (a parameter this
module does not know is refused before anything is sent; a bad value comes back from the
service as ``InvalidParameter``), endpoint-ruleset evaluation per call, and retries: one attempt
per call; throttling and 5xx are raised for the caller's retry policy.

Transport and failure typing are the SES client's (:class:`~notifier.aws.client.FastClient`,
``docs/TRANSPORT.md``): :class:`~notifier.aws.errors.RequestNotSentError` when not one byte was
written, :class:`~notifier.aws.errors.OutcomeUnknownError` when the request may have reached the
service but no usable answer was read (this includes a 2xx whose body is not the XML expected:
SNS may have published); a clock-skew rejection is corrected from the server's ``Date`` and the
call retried once.
"""

from __future__ import annotations

import base64
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from notifier.aws.client import ClientSettings, FastClient, PoolSettings, ServiceSpec, TransportName
from notifier.aws.endpoint import UnsupportedEndpointError, configured_endpoint
from notifier.aws.errors import MalformedResponseError, OutcomeUnknownError
from notifier.aws.pooled import DEFAULT_MAX_RESPONSE_BYTES
from notifier.aws.responses import local_name, parse_query_error, query_response_metadata
from notifier.aws.sigv4 import CredentialSource

if TYPE_CHECKING:
    from botocore.session import Session

__all__ = [
    "SNS_ERRORS",
    "SNSClient",
    "parse_publish_response",
    "resolve_sns_endpoint",
    "serialize_publish",
    "sns_error_class",
]

_OPERATION = "Publish"
_VERSION = "2010-03-31"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
#: Publish's string members (serialized as ``Name=value``).
_SCALARS = frozenset(
    {
        "TopicArn",
        "TargetArn",
        "PhoneNumber",
        "Message",
        "Subject",
        "MessageStructure",
        "MessageDeduplicationId",
        "MessageGroupId",
    }
)
_ATTRIBUTE_MEMBERS = frozenset({"DataType", "StringValue", "BinaryValue"})
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")

# The modeled SNS errors, (code, class name) as in botocore's service model: botocore raises
# ``client.exceptions.<name>`` for a response whose code is ``<code>``.
_ERROR_SHAPES = (
    ("AuthorizationError", "AuthorizationErrorException"),
    ("BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinctException"),
    ("BatchRequestTooLong", "BatchRequestTooLongException"),
    ("ConcurrentAccess", "ConcurrentAccessException"),
    ("EmptyBatchRequest", "EmptyBatchRequestException"),
    ("EndpointDisabled", "EndpointDisabledException"),
    ("FilterPolicyLimitExceeded", "FilterPolicyLimitExceededException"),
    ("InternalError", "InternalErrorException"),
    ("InvalidBatchEntryId", "InvalidBatchEntryIdException"),
    ("InvalidParameter", "InvalidParameterException"),
    ("ParameterValueInvalid", "InvalidParameterValueException"),
    ("InvalidSecurity", "InvalidSecurityException"),
    ("InvalidState", "InvalidStateException"),
    ("KMSAccessDenied", "KMSAccessDeniedException"),
    ("KMSDisabled", "KMSDisabledException"),
    ("KMSInvalidState", "KMSInvalidStateException"),
    ("KMSNotFound", "KMSNotFoundException"),
    ("KMSOptInRequired", "KMSOptInRequired"),
    ("KMSThrottling", "KMSThrottlingException"),
    ("NotFound", "NotFoundException"),
    ("OptedOut", "OptedOutException"),
    ("PlatformApplicationDisabled", "PlatformApplicationDisabledException"),
    ("ReplayLimitExceeded", "ReplayLimitExceededException"),
    ("ResourceNotFound", "ResourceNotFoundException"),
    ("StaleTag", "StaleTagException"),
    ("SubscriptionLimitExceeded", "SubscriptionLimitExceededException"),
    ("TagLimitExceeded", "TagLimitExceededException"),
    ("TagPolicy", "TagPolicyException"),
    ("Throttled", "ThrottledException"),
    ("TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequestException"),
    ("TopicLimitExceeded", "TopicLimitExceededException"),
    ("UserError", "UserErrorException"),
    ("ValidationException", "ValidationException"),
    ("VerificationException", "VerificationException"),
)
#: Error code -> the ClientError subclass botocore's sns client raises for it (same name and
#: base class as ``client.exceptions.<Name>``; ``tests/aws/test_sns.py`` checks the table).
SNS_ERRORS: dict[str, type[ClientError]] = {
    code: type(name, (ClientError,), {"__module__": __name__, "__doc__": f"SNS error {code}."})
    for code, name in _ERROR_SHAPES
}


def sns_error_class(code: str) -> type[ClientError]:
    """The exception class botocore raises for SNS error ``code`` (ClientError if unmodeled)."""
    return SNS_ERRORS.get(code, ClientError)


def resolve_sns_endpoint(session: Session, region: str, endpoint_url: str | None = None) -> str:
    """The endpoint URL botocore's sns client would send ``Publish`` to."""
    if endpoint_url:
        return endpoint_url
    configured = configured_endpoint(session, "sns")
    if configured:
        return configured
    for variant in ("use_fips_endpoint", "use_dualstack_endpoint"):
        if session.get_config_variable(variant):
            raise UnsupportedEndpointError(f"{variant} is not supported by the fast SNS client")
    if not _REGION_RE.match(region):
        raise UnsupportedEndpointError(f"cannot resolve an SNS endpoint for region {region!r}")
    if region.startswith("cn-"):
        return f"https://sns.{region}.amazonaws.com.cn"
    if region.startswith(("us-iso", "eu-isoe", "eusc-")):
        raise UnsupportedEndpointError(f"partition of region {region!r} is not supported")
    return f"https://sns.{region}.amazonaws.com"


def _b64(value: Any) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).strip().decode("utf-8")


def _pairs(params: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (name, value) pairs botocore's query serializer makes of Publish's kwargs."""
    pairs: list[tuple[str, Any]] = [("Action", _OPERATION), ("Version", _VERSION)]
    for key, value in params.items():
        if key in _SCALARS:
            pairs.append((key, value))
        elif key == "MessageAttributes":
            for i, (name, attribute) in enumerate(value.items(), 1):
                prefix = f"MessageAttributes.entry.{i}."
                pairs.append((prefix + "Name", name))
                for member, member_value in attribute.items():
                    if member not in _ATTRIBUTE_MEMBERS:
                        raise ValueError(f"unknown MessageAttributeValue member {member!r}")
                    if member == "BinaryValue":
                        member_value = _b64(member_value)
                    pairs.append((f"{prefix}Value.{member}", member_value))
        else:
            raise ValueError(f"unknown Publish parameter {key!r} (use aiobotocore)")
    return pairs


def serialize_publish(params: Mapping[str, Any]) -> bytes:
    """The Publish request body botocore builds for these kwargs (form-encoded, UTF-8)."""
    return urlencode(_pairs(params), doseq=True).encode("ascii")


def parse_publish_response(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """botocore's parsed Publish answer: ``MessageId``, ``SequenceNumber`` (FIFO topics) and
    ``ResponseMetadata``. Raises :class:`MalformedResponseError` for a body that is not a
    ``PublishResponse`` with a ``PublishResult``."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedResponseError(f"Publish answer is not XML: {exc}") from exc
    result: dict[str, Any] = {}
    wrapper: ET.Element | None = None
    request_id: str | None = None
    for child in root:
        name = local_name(child.tag)
        if name == "PublishResult" and wrapper is None:
            wrapper = child
        elif name == "ResponseMetadata":
            for item in child:
                if local_name(item.tag) == "RequestId":
                    request_id = item.text
    if wrapper is None:
        raise MalformedResponseError("Publish answer has no PublishResult")
    for child in wrapper:
        name = local_name(child.tag)
        if name in ("MessageId", "SequenceNumber") and name not in result:
            result[name] = child.text or ""
    result["ResponseMetadata"] = query_response_metadata(status, headers, request_id)
    return result


def _user_agent() -> str:
    import botocore

    from notifier import __version__

    return f"notifier/{__version__} Botocore/{botocore.__version__} fast-sns"


_SERVICE = ServiceSpec("sns", resolve_sns_endpoint, "/", CONTENT_TYPE)


class SNSClient(FastClient):
    """SNS ``publish`` over one keep-alive connection pool; see the module docstring.

    Arguments (all optional, keyword-only), as :class:`~notifier.aws.sesv2.SESv2Client`:
    ``region_name``, ``endpoint_url``, ``credentials``, ``session``, ``max_connections``,
    ``connect_timeout``, ``read_timeout``, ``keepalive_timeout``, ``max_response_bytes``,
    ``clock``, ``transport``. The body is always botocore's bytes (there is no cheaper
    encoding of a form).
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
        self._user_agent = _user_agent()

    def build_request(self, params: Mapping[str, Any]) -> tuple[str, dict[str, str], bytes]:
        """(url, headers, body) of the signed Publish request for these kwargs."""
        body = serialize_publish(params)
        headers = self._signer.sign(body)
        headers["User-Agent"] = self._user_agent
        return self.url, headers, body

    async def _exchange(self, params: Mapping[str, Any]) -> tuple[int, Mapping[str, str], bytes]:
        url, headers, body = self._build(lambda: self.build_request(params), _OPERATION)
        return await self._transport.post(url, headers, body, _OPERATION)

    async def publish(self, **params: Any) -> dict[str, Any]:
        """Publish one message (SNS Publish kwargs); returns ``{"MessageId", "ResponseMetadata"}``
        (and ``SequenceNumber`` for FIFO topics).

        Raises ``botocore.exceptions.ClientError`` (named subclasses for the modeled errors)
        when the service answers an error, :class:`RequestNotSentError` when not one byte of
        the request was written, :class:`OutcomeUnknownError` when the request may have reached
        the service but no usable answer was read. A clock-skew rejection is corrected and
        retried once.
        """
        status, resp_headers, payload = await self._exchange(params)
        if status >= 300:
            error = parse_query_error(status, resp_headers, payload, _OPERATION, sns_error_class)
            if not self._corrected_skew(error.response["Error"].get("Code"), resp_headers):
                raise error
            # Our clock was off: the signature was rejected, nothing was published. Re-sign.
            status, resp_headers, payload = await self._exchange(params)
            if status >= 300:
                raise parse_query_error(status, resp_headers, payload, _OPERATION, sns_error_class)
        try:
            return parse_publish_response(status, resp_headers, payload)
        except MalformedResponseError as exc:
            # A success status, so SNS may well have published: the outcome is unknown.
            raise OutcomeUnknownError(
                f"outcome unknown: HTTP {status} with an unreadable Publish answer: {exc}",
                endpoint=self.endpoint_url,
                operation=_OPERATION,
            ) from exc
