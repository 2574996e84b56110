"""The fast SNS client: botocore's request bytes and signature, botocore's answers and errors,
real publishes to moto (SMS and a platform endpoint), typed transport failures, clock skew, and
the SMS/push channels' ``sns_client`` choosing it."""

from __future__ import annotations

import asyncio
import calendar
import email.utils
import functools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.session
import pytest
from aiohttp import web
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.aws import OutcomeUnknownError, RequestNotSentError, SNSClient
from notifier.aws.endpoint import UnsupportedEndpointError
from notifier.aws.sns import SNS_ERRORS, resolve_sns_endpoint
from notifier.channels.base import Outcome
from notifier.channels.sns_common import classify_sns_exception, sns_client

from .reference import both_outcomes
from .servers import http_response, raw_server, read_http_head, read_http_request, refused_port

AK = "AKIDEXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Content-Type")
NS = "http://sns.amazonaws.com/doc/2010-03-31/"
ENDPOINT_ARN = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/5e3a7b9c-1d2f-3a4b-8c9d"
OK_XML = (
    f'<PublishResponse xmlns="{NS}"><PublishResult><MessageId>m-1</MessageId></PublishResult>'
    "<ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata></PublishResponse>"
).encode()


def _push_message(title: str = "Ada viewed your profile") -> str:
    gcm = {"notification": {"title": title, "body": "tap to see"}}
    return json.dumps({"default": title, "GCM": json.dumps(gcm)})


CASES: dict[str, dict[str, Any]] = {
    "sms": {"PhoneNumber": "+15555550100", "Message": "Ada viewed your profile"},
    "sms-attributes": {
        "Message": "Zoë & Jürgen: 100% = ok? +1 ~*/\n\t👋",
        "PhoneNumber": "+447700900123",
        "MessageAttributes": {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
            "AWS.SNS.SMS.SenderID": {"StringValue": "Notifier", "DataType": "String"},
            "AWS.SNS.SMS.MaxPrice": {"DataType": "Number", "StringValue": "0.50"},
        },
    },
    "push-json": {
        "TargetArn": ENDPOINT_ARN,
        "MessageStructure": "json",
        "Message": _push_message(),
        "MessageAttributes": {
            "AWS.SNS.MOBILE.FCM.TTL": {"DataType": "String", "StringValue": "3600"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff\x10 raw"},
            "text-blob": {"DataType": "Binary", "BinaryValue": "as text"},
        },
    },
    "fifo-topic": {
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts.fifo",
        "Subject": "Ada viewed your profile",
        "Message": "hello",
        "MessageGroupId": "user-7",
        "MessageDeduplicationId": "notif#abc#+15555550100",
    },
    "empty-attributes": {"PhoneNumber": "+15555550100", "Message": "", "MessageAttributes": {}},
}


@functools.cache
def _botocore_client(region: str, endpoint_url: str | None, token: str | None) -> Any:
    return botocore.session.get_session().create_client(
        "sns",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=AK,
        aws_secret_access_key=SK,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}),
    )


def _botocore_request(
    params: dict[str, Any],
    *,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    token: str | None = None,
) -> AWSPreparedRequest:
    """The request botocore's own sns client sends for ``publish(**params)`` (not sent: a
    ``before-send`` hook captures it and answers)."""
    client = _botocore_client(region, endpoint_url, token)
    captured: list[AWSPreparedRequest] = []

    def hook(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 200, {}, _Body(OK_XML))  # type: ignore[arg-type]

    client.meta.events.register("before-send.sns.Publish", hook)
    try:
        client.publish(**params)
    finally:
        client.meta.events.unregister("before-send.sns.Publish", hook)
    (request,) = captured
    return request


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _ours(
    params: dict[str, Any],
    clock: float,
    *,
    region: str = "us-east-1",
    endpoint_url: str | None = None,
    token: str | None = None,
) -> tuple[str, dict[str, str], bytes]:
    client = SNSClient(
        region_name=region,
        endpoint_url=endpoint_url,
        credentials=Credentials(AK, SK, token),
        clock=lambda: clock,
    )
    return client.build_request(params)


def _assert_same(
    reference: AWSPreparedRequest, url: str, headers: dict[str, str], body: bytes
) -> None:
    assert reference.method == "POST"
    assert url == reference.url
    ref_body = reference.body
    assert body == (ref_body.encode() if isinstance(ref_body, str) else ref_body)
    for name in SIGNED:
        ref = reference.headers.get(name)
        expected = ref.decode() if isinstance(ref, bytes) else ref
        assert headers.get(name) == expected, name
    assert headers["Host"] in reference.url


# -- the request -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////session+token=="])
@pytest.mark.parametrize(
    ("endpoint_url", "region"),
    [("http://127.0.0.1:4566", "us-east-1"), (None, "eu-central-1"), (None, "cn-north-1")],
)
def test_request_matches_botocore(
    case: str,
    token: str | None,
    endpoint_url: str | None,
    region: str,
    frozen_clock: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN no configured endpoint in the environment, and the same input, credentials, clock
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SNS", raising=False)
    params = CASES[case]
    reference = _botocore_request(params, region=region, endpoint_url=endpoint_url, token=token)
    # WHEN the fast client builds its request
    url, headers, body = _ours(
        params, frozen_clock, region=region, endpoint_url=endpoint_url, token=token
    )
    # THEN method, URL, body bytes and every signed header are botocore's
    _assert_same(reference, url, headers, body)
    assert ("X-Amz-Security-Token" in headers) == (token is not None)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    message=st.text(max_size=200),
    name=st.text(min_size=1, max_size=20),
    value=st.text(max_size=40),
)
def test_any_text_signs_like_botocore(
    message: str, name: str, value: str, frozen_clock: float
) -> None:
    # GIVEN arbitrary message text and an arbitrary string attribute
    params = {
        "PhoneNumber": "+15555550100",
        "Message": message,
        "MessageAttributes": {name: {"DataType": "String", "StringValue": value}},
    }
    reference = _botocore_request(params, endpoint_url="http://localhost:8080", token="tok")
    # WHEN the fast client signs the same input
    url, headers, body = _ours(
        params, frozen_clock, endpoint_url="http://localhost:8080", token="tok"
    )
    # THEN the request is identical
    _assert_same(reference, url, headers, body)


@pytest.mark.parametrize(
    "params",
    [
        {"PhoneNumber": "+15555550100", "Message": "m", "MessageAttributs": {}},
        {"Message": "m", "MessageAttributes": {"a": {"DataType": "String", "Value": "v"}}},
    ],
)
def test_an_unknown_parameter_is_refused_before_anything_is_sent(params: dict[str, Any]) -> None:
    # GIVEN a server that counts connections, and a misspelt parameter
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)

    async def scenario() -> None:
        async with (
            raw_server(handler) as url,
            SNSClient(
                region_name="us-east-1", endpoint_url=url, credentials=Credentials(AK, SK)
            ) as client,
        ):
            await client.publish(**params)

    # WHEN publishing THEN nothing is sent: RequestNotSentError caused by the ValueError
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(scenario())
    assert isinstance(info.value.__cause__, ValueError)
    assert connections == []


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]
)
def test_endpoint_is_botocores(region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no configured endpoint
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SNS", raising=False)
    session = botocore.session.get_session()
    reference = session.create_client(
        "sns", region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
    ).meta.endpoint_url
    # WHEN / THEN the fast client resolves the same regional endpoint
    assert resolve_sns_endpoint(session, region) == reference


def test_configured_endpoint_and_unsupported_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN AWS_ENDPOINT_URL_SNS set
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", "http://sns.local:4566")
    session = botocore.session.get_session()
    # THEN it wins, as in botocore
    assert resolve_sns_endpoint(session, "us-east-1") == "http://sns.local:4566"
    # AND without it, an isolated partition is refused rather than guessed
    monkeypatch.delenv("AWS_ENDPOINT_URL_SNS")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(UnsupportedEndpointError):
        resolve_sns_endpoint(botocore.session.get_session(), "us-isob-east-1")


# -- answers and errors, next to botocore's -----------------------------------------------------


def test_error_classes_are_botocores() -> None:
    # GIVEN botocore's sns client
    client = botocore.session.get_session().create_client(
        "sns", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    codes = client.exceptions._code_to_exception
    # THEN every modeled code maps to a ClientError subclass of the same name, and no more
    assert {code: cls.__name__ for code, cls in SNS_ERRORS.items()} == {
        code: cls.__name__ for code, cls in codes.items()
    }
    assert all(issubclass(cls, ClientError) for cls in SNS_ERRORS.values())


def _error_xml(code: str, message: str, *, kind: str = "Sender", rid: str = "rid-9") -> bytes:
    return (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
    ).encode()


XML = {"Content-Type": "text/xml"}
# (status, headers, body): shapes SNS and intermediaries answer with.
RESPONSES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "invalid-parameter": (
        400,
        XML,
        _error_xml("InvalidParameter", "Invalid parameter: PhoneNumber Reason: +1 is not valid"),
    ),
    "endpoint-disabled": (400, XML, _error_xml("EndpointDisabled", "Endpoint is disabled")),
    "not-found": (404, XML, _error_xml("NotFound", "Endpoint does not exist")),
    "throttling-400": (400, XML, _error_xml("Throttling", "Rate exceeded")),
    "throttled-429": (429, XML, _error_xml("Throttled", "Too many requests")),
    "opted-out": (400, XML, _error_xml("OptedOut", "The phone number opted out")),
    "authorization": (403, XML, _error_xml("AuthorizationError", "not authorized")),
    "signature": (403, XML, _error_xml("SignatureDoesNotMatch", "The request signature...")),
    "internal": (500, XML, _error_xml("InternalError", "internal", kind="Receiver")),
    "kms-throttling": (400, XML, _error_xml("KMSThrottling", "slow down")),
    "unknown-code": (400, XML, _error_xml("SomethingNew", "new")),
    "empty-message": (
        400,
        XML,
        f'<ErrorResponse xmlns="{NS}"><Error><Code>InvalidParameter</Code><Message/>'
        "</Error></ErrorResponse>".encode(),
    ),
    "no-namespace": (400, XML, b"<ErrorResponse><Error><Code>X</Code></Error></ErrorResponse>"),
    "unavailable-html": (503, {}, b"<html><body><b>Http/1.1 Service Unavailable</b></body></html>"),
    "bad-gateway-empty": (502, {}, b""),
}


def _answer(status: int, headers: dict[str, str], body: bytes) -> Any:
    def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, headers=headers, body=body)

    return handler


async def _both(status: int, headers: dict[str, str], body: bytes) -> tuple[Any, Any]:
    """(botocore's outcome, ours) of one publish against a server answering this."""
    return await both_outcomes(
        "sns",
        _answer(status, headers, body),
        lambda client: client.publish(PhoneNumber="+15555550100", Message="hi"),
        lambda url: SNSClient(
            region_name="us-east-1", endpoint_url=url, credentials=Credentials("a", "b")
        ),
    )


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_error_matches_botocore(name: str) -> None:
    # GIVEN SNS (or something in front of it) answering with this error response
    status, headers, body = RESPONSES[name]
    # WHEN botocore's client and the fast client publish the same message
    theirs, ours = asyncio.run(_both(status, headers, body))
    # THEN both raise the same ClientError class with the same error, request id and status
    assert isinstance(theirs, ClientError)
    assert isinstance(ours, ClientError)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.response["Error"] == theirs.response["Error"]
    assert ours.operation_name == theirs.operation_name == "Publish"
    meta, ref_meta = ours.response["ResponseMetadata"], theirs.response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == ref_meta["HTTPStatusCode"] == status
    assert meta.get("RequestId") == ref_meta.get("RequestId")
    assert meta.get("MaxAttemptsReached") == ref_meta.get("MaxAttemptsReached")
    assert str(ours) == str(theirs)


def test_a_non_xml_error_is_the_generic_error_of_its_status() -> None:
    # GIVEN a proxy answering 403 with plain text (botocore cannot parse it at all)
    async def scenario() -> tuple[Any, Any]:
        return await both_outcomes(
            "sns",
            _answer(403, {}, b"Forbidden by policy"),
            lambda client: client.publish(PhoneNumber="+15555550100", Message="hi"),
            lambda url: SNSClient(
                region_name="us-east-1", endpoint_url=url, credentials=Credentials("a", "b")
            ),
        )

    # WHEN both clients publish
    with pytest.raises(ResponseParserError):
        asyncio.run(scenario())  # botocore's outcome: a parser error, not a ClientError

    async def ours_only() -> Any:
        answer = http_response(b"Forbidden", status=b"403 Forbidden")
        async with raw_server(_stub([answer])) as url, _client(url) as client:
            return await client.publish(PhoneNumber="+15555550100", Message="hi")

    # THEN ours is a ClientError named after the status, which the channel rules on by status
    with pytest.raises(ClientError) as info:
        asyncio.run(ours_only())
    assert info.value.response["Error"] == {"Code": "403", "Message": "Forbidden"}
    assert classify_sns_exception(info.value).account_fault


@pytest.mark.parametrize("fifo", [False, True])
def test_success_matches_botocore(fifo: bool) -> None:
    # GIVEN SNS accepting the message (a FIFO topic also answers a sequence number)
    seq = "<SequenceNumber>10000000000000003000</SequenceNumber>" if fifo else ""
    body = (
        f'<PublishResponse xmlns="{NS}">\n  <PublishResult>\n    '
        f"<MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId>{seq}\n  </PublishResult>\n"
        "  <ResponseMetadata>\n    <RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId>\n"
        "  </ResponseMetadata>\n</PublishResponse>\n"
    ).encode()
    # WHEN both clients publish
    theirs, ours = asyncio.run(_both(200, {**XML, "x-amzn-RequestId": "header-id"}, body))
    # THEN the same parsed answer (request id from the body, as botocore reads it)
    meta = ours.pop("ResponseMetadata")
    ref_meta = theirs.pop("ResponseMetadata")
    assert ours == theirs
    assert ours["MessageId"] == "94f20ce6-13c5-43a0-9a9e-ca52d816e90b"
    assert ("SequenceNumber" in ours) == fifo
    assert meta["RequestId"] == ref_meta["RequestId"] == "f187a3c1-376f-11df-8963-01868b7c937a"
    assert meta["HTTPStatusCode"] == ref_meta["HTTPStatusCode"] == 200


# -- moto over HTTP ----------------------------------------------------------------------------


def _moto_sns(aws: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"{aws}/moto-api/data.json", timeout=30) as resp:
        return dict(json.load(resp).get("sns", {}))


@pytest.fixture
def platform_endpoint(aws: str) -> str:
    """GIVEN a GCM platform application with one device endpoint in moto; yields its ARN."""
    sns = boto3.client("sns")
    app = sns.create_platform_application(
        Name="notifier-android", Platform="GCM", Attributes={"PlatformCredential": "key"}
    )["PlatformApplicationArn"]
    arn = sns.create_platform_endpoint(PlatformApplicationArn=app, Token="device-token-1")
    return str(arn["EndpointArn"])


def test_sms_lands_in_moto(aws: str) -> None:
    # GIVEN the fast client configured only by the environment (endpoint, region, credentials)
    async def scenario() -> list[str]:
        async with SNSClient() as client:
            results = await asyncio.gather(
                *(
                    client.publish(
                        PhoneNumber=f"+1555555010{i}",
                        Message=f"Ada viewed your profile ({i}) \u2013 Zoë",
                        MessageAttributes={
                            "AWS.SNS.SMS.SMSType": {
                                "DataType": "String",
                                "StringValue": "Transactional",
                            }
                        },
                    )
                    for i in range(3)
                )
            )
        return [r["MessageId"] for r in results]

    # WHEN three SMS are published concurrently
    ids = asyncio.run(scenario())
    # THEN moto holds exactly those, to the right numbers, with the text intact
    sms = {m["message_id"]: m for m in _moto_sns(aws)["SMS"]}
    assert sorted(sms) == sorted(ids)
    by_number = {m["phone_number"]: m["message"] for m in sms.values()}
    assert by_number == {
        f"+1555555010{i}": f"Ada viewed your profile ({i}) \u2013 Zoë" for i in range(3)
    }


def test_push_to_a_platform_endpoint_lands_in_moto(aws: str, platform_endpoint: str) -> None:
    # GIVEN a per-platform JSON message for a device endpoint
    message = _push_message("Ada viewed your profile")

    async def scenario() -> str:
        async with SNSClient() as client:
            resp = await client.publish(
                TargetArn=platform_endpoint, MessageStructure="json", Message=message
            )
        return str(resp["MessageId"])

    # WHEN it is published
    message_id = asyncio.run(scenario())
    # THEN the endpoint holds it under the returned id, byte for byte
    (endpoint,) = _moto_sns(aws)["PlatformEndpoint"]
    assert endpoint["messages"] == {message_id: message}


async def _both_against(aws: str, params: dict[str, Any]) -> tuple[Any, Any]:
    from aiobotocore.session import get_session

    outcomes: list[Any] = []
    session: Any = get_session()
    async with session.create_client("sns", endpoint_url=aws) as reference:
        try:
            outcomes.append(await reference.publish(**params))
        except ClientError as exc:
            outcomes.append(exc)
    async with SNSClient() as client:
        try:
            outcomes.append(await client.publish(**params))
        except ClientError as exc:
            outcomes.append(exc)
    return outcomes[0], outcomes[1]


def test_moto_errors_match_aiobotocore_and_get_the_channel_verdicts(
    aws: str, platform_endpoint: str
) -> None:
    # GIVEN a disabled device endpoint, a missing one and a malformed phone number
    boto3.client("sns").set_endpoint_attributes(
        EndpointArn=platform_endpoint, Attributes={"Enabled": "false"}
    )
    cases = {
        "EndpointDisabledException": {"TargetArn": platform_endpoint, "Message": "m"},
        "NotFoundException": {"TargetArn": platform_endpoint + "-gone", "Message": "m"},
        "InvalidParameterException": {"PhoneNumber": "+1 555 CALL-ME", "Message": "m"},
    }
    for name, params in cases.items():
        # WHEN aiobotocore and the fast client publish
        theirs, ours = asyncio.run(_both_against(aws, params))
        # THEN both raise the same error
        assert type(theirs).__name__ == type(ours).__name__ == name
        assert ours.response["Error"] == theirs.response["Error"]
        assert ours.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 404)
        # AND a channel naming the code as the message's own fault dead-letters it
        verdict = classify_sns_exception(ours, permanent={ours.response["Error"]["Code"]})
        assert verdict.outcome is Outcome.PERMANENT
    # AND nothing was delivered
    assert _moto_sns(aws)["PlatformEndpoint"][0]["messages"] == {}


# -- transport failures, throttling, clock skew (local stub servers) ----------------------------


def _client(url: str, clock: Callable[[], float] = time.time) -> SNSClient:
    return SNSClient(
        region_name="us-east-1",
        endpoint_url=url,
        credentials=Credentials("a", "b"),
        clock=clock,
        read_timeout=2,
    )


def _stub(answers: list[bytes | None], seen: list[bytes] | None = None) -> Any:
    """A server answering each request on a connection with the next of ``answers``
    (``None``: close without answering)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            try:
                body = await read_http_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if seen is not None:
                seen.append(body)
            answer = answers.pop(0)
            if answer is None:
                return
            writer.write(answer)
            await writer.drain()

    return handler


def _publish_once(answers: list[bytes | None]) -> Any:
    async def scenario() -> Any:
        async with raw_server(_stub(answers)) as url, _client(url) as client:
            return await client.publish(PhoneNumber="+15555550100", Message="hi")

    return asyncio.run(scenario())


def test_throttling_is_a_transient_verdict() -> None:
    # GIVEN SNS answering "Rate exceeded" (code Throttling, HTTP 400)
    answer = http_response(
        _error_xml("Throttling", "Rate exceeded"), status=b"400 Bad Request", headers=b""
    )
    # WHEN publishing
    with pytest.raises(ClientError) as info:
        _publish_once([answer])
    # THEN a ClientError with botocore's retry marker, which the channel retries
    assert info.value.response["Error"]["Code"] == "Throttling"
    assert info.value.response["ResponseMetadata"]["MaxAttemptsReached"] is True
    verdict = classify_sns_exception(info.value, permanent={"EndpointDisabled"})
    assert (verdict.outcome, verdict.account_fault) == (Outcome.TRANSIENT, False)


def test_connection_refused_is_not_sent_and_transient() -> None:
    # GIVEN nothing listening
    async def scenario() -> None:
        async with _client(f"http://127.0.0.1:{refused_port()}") as client:
            await client.publish(PhoneNumber="+15555550100", Message="hi")

    # WHEN publishing THEN RequestNotSentError, which the channel retries as not sent
    with pytest.raises(RequestNotSentError) as info:
        asyncio.run(scenario())
    assert classify_sns_exception(info.value).outcome is Outcome.TRANSIENT


@pytest.mark.parametrize(
    "answer",
    [None, http_response(b"<PublishResponse><oops", headers=b"")],
    ids=["closed-after-request", "unreadable-200"],
)
def test_no_usable_answer_after_the_request_is_outcome_unknown(answer: bytes | None) -> None:
    # GIVEN a server that read the request, then closed or answered 200 with broken XML
    # WHEN publishing
    with pytest.raises(OutcomeUnknownError) as info:
        _publish_once([answer])
    # THEN the outcome is unknown (SNS may have published), and so is the channel's verdict
    assert classify_sns_exception(info.value).outcome is Outcome.UNKNOWN


def _amz_epoch(value: bytes) -> float:
    return float(calendar.timegm(time.strptime(value.decode(), "%Y%m%dT%H%M%SZ")))


def test_a_skewed_clock_is_corrected_and_retried_once() -> None:
    # GIVEN a client an hour behind, and an endpoint rejecting requests more than 5 min off
    seen: list[float] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                _, headers = await read_http_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            now = time.time()
            seen.append(_amz_epoch(headers[b"x-amz-date"]) - now)
            date = b"Date: " + email.utils.formatdate(now, usegmt=True).encode() + b"\r\n"
            if abs(seen[-1]) > 300:
                body = _error_xml("SignatureDoesNotMatch", "Signature expired")
                writer.write(http_response(body, status=b"403 Forbidden", headers=date))
            else:
                writer.write(http_response(OK_XML, headers=date))
            await writer.drain()

    async def scenario() -> tuple[list[str], float]:
        async with (
            raw_server(handler) as url,
            _client(url, lambda: time.time() - 3600) as client,
        ):
            ids = [
                (await client.publish(PhoneNumber="+15555550100", Message="hi"))["MessageId"]
                for _ in range(2)
            ]
            return ids, client.clock_offset

    # WHEN publishing twice
    ids, offset = asyncio.run(scenario())
    # THEN both succeed: the first after one corrected retry, the second signed right at once
    assert ids == ["m-1", "m-1"]
    assert len(seen) == 3
    assert seen[0] < -3600 + 60
    assert all(abs(s) <= 300 for s in seen[1:])
    assert abs(offset - 3600) < 60


# -- sns_common.sns_client --------------------------------------------------------------------


def _ctx(stack: AsyncExitStack, aws_clients: str, url: str, **clients: Any) -> Any:
    from aiobotocore.session import get_session

    return SimpleNamespace(
        clients=clients,
        aws_clients=aws_clients,
        client_kwargs={"region_name": "us-east-1", "endpoint_url": url},
        concurrency=32,
        stack=stack,
        session=get_session(),
    )


def test_sns_client_is_the_fast_client_closed_with_the_stack(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a channel context in "fast" mode, pointed at moto, and closes of SNSClient recorded
    closed: list[SNSClient] = []
    original = SNSClient.close

    async def recording_close(self: SNSClient) -> None:
        closed.append(self)
        await original(self)

    monkeypatch.setattr(SNSClient, "close", recording_close)

    async def scenario() -> tuple[Any, str, int]:
        async with AsyncExitStack() as stack:
            client = await sns_client(_ctx(stack, "fast", aws))
            resp = await client.publish(PhoneNumber="+15555550100", Message="hi")
            open_closes = len(closed)
        return client, str(resp["MessageId"]), open_closes

    # WHEN the channel's client is built, used, and the handler's stack closed
    client, message_id, closes_while_open = asyncio.run(scenario())
    # THEN it was the fast client, its publish reached moto, and the stack closed it
    assert isinstance(client, SNSClient)
    assert client.url == aws + "/"
    assert [m["message_id"] for m in _moto_sns(aws)["SMS"]] == [message_id]
    assert closes_while_open == 0
    assert closed == [client]


def test_sns_client_honours_aiobotocore_mode_and_injection(aws: str) -> None:
    # GIVEN the "aiobotocore" mode, and separately an injected client
    injected = object()

    async def scenario() -> tuple[str, Any]:
        async with AsyncExitStack() as stack:
            sdk = await sns_client(_ctx(stack, "aiobotocore", aws))
            name = type(sdk).__name__
            await sdk.publish(PhoneNumber="+15555550100", Message="hi")
            chosen = await sns_client(_ctx(stack, "fast", aws, sns=injected))
        return name, chosen

    # WHEN the client is asked for
    name, chosen = asyncio.run(scenario())
    # THEN aiobotocore's SNS client, resp. the injected object itself
    assert name == "SNS"
    assert chosen is injected
