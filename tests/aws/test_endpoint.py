"""The fast client sends where botocore's sesv2 client sends."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.credentials import Credentials

from notifier.aws import SESv2Client
from notifier.aws.endpoint import UnsupportedEndpointError


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({}, "us-east-1"),
        ({}, "eu-central-1"),
        ({}, "ap-southeast-2"),
        ({}, "cn-north-1"),
        ({}, "us-gov-west-1"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, "us-east-1"),
        ({"AWS_ENDPOINT_URL_SESV2": "http://localhost:4579/"}, "eu-west-1"),
        (
            {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL_SESV2": "http://x:1"},
            "us-east-1",
        ),
        (
            {
                "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
            },
            "us-east-1",
        ),
    ],
)
def test_endpoint_matches_botocore(
    env: dict[str, str], region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an environment with (or without) configured endpoints and a region
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SESV2",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    session = botocore.session.get_session()
    reference = session.create_client(
        "sesv2", aws_access_key_id="a", aws_secret_access_key="b"
    ).meta.endpoint_url
    # WHEN the fast client resolves its endpoint from the same session
    ours = SESv2Client(session=session, credentials=Credentials("a", "b"))
    # THEN it is botocore's
    assert ours.region_name == region
    assert ours.endpoint_url == reference


def test_fips_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN FIPS endpoints requested through botocore's configuration
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SESV2"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    # WHEN / THEN the fast client refuses rather than sending to the wrong host
    with pytest.raises(UnsupportedEndpointError, match="fips"):
        SESv2Client(region_name="us-east-1", credentials=Credentials("a", "b"))
