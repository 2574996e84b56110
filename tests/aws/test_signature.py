"""The fast client's request is the request botocore's own sesv2 client would send."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.aws import SESv2Client

SIGNED = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Content-Type")
AK = "AKIDEXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _simple(subject: str = "Someone viewed your profile", text: str = "Hi Ada") -> dict[str, Any]:
    return {
        "FromEmailAddress": "Notifier <notifications@example.com>",
        "Destination": {"ToAddresses": ["user-1@example.com"]},
        "ReplyToAddresses": ["support@example.com"],
        "Content": {
            "Simple": {
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": text, "Charset": "UTF-8"},
                    "Html": {"Data": f"<p>{text}</p>", "Charset": "UTF-8"},
                },
                "Headers": [{"Name": "List-Unsubscribe", "Value": "<https://example.com/u/1>"}],
            }
        },
        "ConfigurationSetName": "notifier",
        "EmailTags": [{"Name": "event_type", "Value": "profile_view"}],
    }


CASES = {
    "simple": _simple(),
    "non-ascii": _simple("Jürgen möchte dich 👋 kennenlernen", "Grüße, Zoë\n\t«ok»"),
    "raw-bytes": {
        "FromEmailAddress": "notifications@example.com",
        "Destination": {"ToAddresses": ["a@example.com"], "CcAddresses": ["b@example.com"]},
        "Content": {"Raw": {"Data": b"Subject: hi\r\n\r\nbody \xff\x00"}},
    },
    "attachments": {
        "FromEmailAddress": "notifications@example.com",
        "Destination": {"ToAddresses": ["a@example.com"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": "report"},
                "Body": {"Text": {"Data": "see attached"}},
                "Attachments": [
                    {"RawContent": b"%PDF-1.4 \x00\x01", "FileName": "r.pdf"},
                    {"RawContent": "plain text", "FileName": "r.txt", "ContentType": "text/plain"},
                ],
            }
        },
    },
}


def _ours(
    params: dict[str, Any],
    clock: float,
    *,
    endpoint_url: str | None,
    region: str = "us-east-1",
    token: str | None = None,
) -> tuple[str, dict[str, str], bytes]:
    client = SESv2Client(
        region_name=region,
        endpoint_url=endpoint_url,
        credentials=Credentials(AK, SK, token),
        clock=lambda: clock,
        body_encoding="botocore",
    )
    return client.build_request(params)


def _assert_same(
    reference: AWSPreparedRequest, url: str, headers: dict[str, str], body: bytes
) -> None:
    assert reference.method == "POST"
    assert url == reference.url
    assert body == reference.body
    for name in SIGNED:
        ref = reference.headers.get(name)
        expected = ref.decode() if isinstance(ref, bytes) else ref
        assert headers.get(name) == expected, name
    # The Host header sent is the one botocore signed (host and non-default port).
    assert headers["Host"] in reference.url


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////session+token=="])
@pytest.mark.parametrize(
    ("endpoint_url", "region"),
    [("http://127.0.0.1:4566", "us-east-1"), (None, "eu-central-1"), (None, "us-east-1")],
)
def test_request_matches_botocore(
    case: str,
    token: str | None,
    endpoint_url: str | None,
    region: str,
    frozen_clock: float,
    botocore_request: Callable[..., AWSPreparedRequest],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN no configured endpoint in the environment, and the same input, credentials, clock
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SESV2", raising=False)
    params = CASES[case]
    reference = botocore_request(params, region=region, endpoint_url=endpoint_url, token=token)
    # WHEN the fast client builds its request
    url, headers, body = _ours(
        params, frozen_clock, endpoint_url=endpoint_url, region=region, token=token
    )
    # THEN method, URL, body bytes and every signed header are botocore's
    _assert_same(reference, url, headers, body)
    assert ("X-Amz-Security-Token" in headers) == (token is not None)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(subject=st.text(max_size=60), text=st.text(max_size=200))
def test_any_text_signs_like_botocore(
    subject: str,
    text: str,
    frozen_clock: float,
    botocore_request: Callable[..., AWSPreparedRequest],
) -> None:
    # GIVEN arbitrary subject and body text (control characters, surrogates-free unicode)
    params = _simple(subject, text)
    reference = botocore_request(params, endpoint_url="http://localhost:8080", token="tok")
    # WHEN the fast client signs the same input
    url, headers, body = _ours(
        params, frozen_clock, endpoint_url="http://localhost:8080", token="tok"
    )
    # THEN the request is identical
    _assert_same(reference, url, headers, body)


@pytest.mark.parametrize("case", sorted(CASES))
def test_compact_body_is_the_same_json_and_signed_as_botocore_signs_it(
    case: str, frozen_clock: float, botocore_request: Callable[..., AWSPreparedRequest]
) -> None:
    # GIVEN the default compact (orjson) body encoding
    params = CASES[case]
    reference = botocore_request(params, endpoint_url="http://127.0.0.1:4566", token="tok")
    client = SESv2Client(
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:4566",
        credentials=Credentials(AK, SK, "tok"),
        clock=lambda: frozen_clock,
    )
    # WHEN the fast client builds its request
    url, headers, body = client.build_request(params)
    # THEN the body is the same JSON value as botocore's, in fewer bytes
    assert json.loads(body) == json.loads(reference.body)
    assert len(body) < len(reference.body)
    # AND botocore's own SigV4Auth, signing these exact bytes, produces the same headers
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(AK, SK, "tok"), "ses", "us-east-1").add_auth(request)
    for name in SIGNED:
        assert headers[name] == request.headers[name], name


def test_refreshable_credentials_are_refreshed(frozen_clock: float) -> None:
    # GIVEN refreshable credentials that are already expired, refreshing to a new key
    expired = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    fresh = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    calls: list[int] = []

    def refresh() -> dict[str, str]:
        calls.append(1)
        return {"access_key": "AKIDFRESH", "secret_key": SK, "token": "t2", "expiry_time": fresh}

    creds = RefreshableCredentials.create_from_metadata(
        {"access_key": "AKIDOLD", "secret_key": SK, "token": "t1", "expiry_time": expired},
        refresh_using=refresh,
        method="test",
    )
    client = SESv2Client(
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        credentials=creds,
        clock=lambda: frozen_clock,
    )
    # WHEN a request is signed
    _, headers, _ = client.build_request(_simple())
    # THEN it is signed with the refreshed key and token
    assert calls
    assert "Credential=AKIDFRESH/20260314/us-east-1/ses/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "t2"


def test_signature_changes_with_the_clock(frozen_clock: float) -> None:
    # GIVEN one client whose clock moves by a day between two requests
    now = [frozen_clock]
    client = SESv2Client(
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        credentials=Credentials(AK, SK),
        clock=lambda: now[0],
    )
    _, first, _ = client.build_request(_simple())
    now[0] += 86_400
    # WHEN it signs again
    _, second, _ = client.build_request(_simple())
    # THEN date, scope and signature follow the clock
    assert first["X-Amz-Date"] == "20260314T150926Z"
    assert second["X-Amz-Date"] == "20260315T150926Z"
    assert "/20260315/" in second["Authorization"]
    assert first["Authorization"] != second["Authorization"]


def test_endpoint_id_is_refused() -> None:
    # GIVEN a multi-region EndpointId (needs SigV4a, not supported by the fast path)
    client = SESv2Client(
        region_name="us-east-1", endpoint_url="http://127.0.0.1:1", credentials=Credentials(AK, SK)
    )
    # WHEN / THEN building the request fails loudly rather than signing it wrongly
    with pytest.raises(ValueError, match="EndpointId"):
        client.build_request({**_simple(), "EndpointId": "abc.123"})
