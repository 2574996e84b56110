"""Standard Webhooks signing: the spec's shared test vector, and agreement with the reference
``standardwebhooks`` library in both directions."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifier.channels.signing import (
    InvalidSecretError,
    SignatureError,
    WebhookSigner,
    decode_secret,
    generate_secret,
    message_id,
    verify,
)

# The vector every reference library tests (libraries/*/tests: TestWebhookSign & co.).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_reference_test_vector() -> None:
    # GIVEN the reference libraries' secret, id, timestamp and body
    signer = WebhookSigner([VECTOR_SECRET])
    # WHEN we sign THEN we produce their expected signature, prefixed or not
    assert signer.signature(VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG
    unprefixed = WebhookSigner([VECTOR_SECRET.removeprefix("whsec_")])
    assert unprefixed.signature(VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIG


def test_unpadded_secrets_decode_like_the_reference_library() -> None:
    # GIVEN secrets needing 0, 1 and 2 padding characters (the reference tests' cases, the
    # 1-padding one lengthened to the spec's minimum of 24 bytes)
    for secret in (
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBrX",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",
    ):
        # THEN our key is theirs: the same signature for the same input
        ours = WebhookSigner([secret]).signature(VECTOR_ID, VECTOR_TS, VECTOR_BODY)
        theirs = Webhook(secret).sign(
            VECTOR_ID, datetime.fromtimestamp(VECTOR_TS, tz=UTC), VECTOR_BODY.decode()
        )
        assert ours == theirs


@settings(max_examples=60, deadline=None)
@given(
    key=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF), min_size=1),
    body=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=20), max_size=4),
)
def test_the_reference_library_verifies_our_deliveries(key: str, body: dict[str, object]) -> None:
    # GIVEN any ledger key (made a webhook-id) and any JSON body, signed by us now
    import json

    raw = json.dumps(body, ensure_ascii=False).encode()
    msg_id = message_id(key)
    headers = WebhookSigner([VECTOR_SECRET]).headers(msg_id, raw)
    # WHEN the reference library verifies THEN it accepts it and reads the same body
    assert Webhook(VECTOR_SECRET).verify(raw, headers) == body
    # AND our verifier agrees
    assert verify([VECTOR_SECRET], headers, raw) == msg_id


def test_rotation_signs_with_every_key_and_each_alone_verifies() -> None:
    # GIVEN a signer with the new and the old key
    new, old = generate_secret(), generate_secret(64)
    headers = WebhookSigner([new, old]).headers("hooks#k", b"{}")
    # THEN two space-separated v1 signatures, and a receiver holding either key accepts
    assert [s[:3] for s in headers["webhook-signature"].split(" ")] == ["v1,", "v1,"]
    Webhook(new).verify(b"{}", headers)
    Webhook(old).verify(b"{}", headers)
    # AND one holding neither refuses
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(b"{}", headers)


def test_the_timestamp_is_integer_seconds_of_now() -> None:
    import time

    before = int(time.time())
    headers = WebhookSigner([VECTOR_SECRET]).headers("id", b"{}")
    assert headers["webhook-timestamp"].isdigit()
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("body", "no matching signature"),
        ("id", "no matching signature"),
        ("stale", "outside the tolerance"),
        ("future", "outside the tolerance"),
        ("missing", "missing"),
        ("timestamp-text", "not an integer"),
    ],
)
def test_verify_refuses_a_tampered_or_stale_delivery(change: str, expected: str) -> None:
    # GIVEN a delivery signed at t=1,000,000
    body = b'{"a":1}'
    headers = WebhookSigner([VECTOR_SECRET]).headers("hooks#1", body, timestamp=1_000_000)
    now = 1_000_010.0
    if change == "body":
        body = b'{"a":2}'
    elif change == "id":
        headers["webhook-id"] = "hooks#2"
    elif change == "stale":
        now = 1_000_000 + 301.0
    elif change == "future":
        now = 1_000_000 - 301.0
    elif change == "missing":
        del headers["webhook-signature"]
    else:
        headers["webhook-timestamp"] = "soon"
    # WHEN verified THEN refused, saying why
    with pytest.raises(SignatureError, match=expected):
        verify([VECTOR_SECRET], headers, body, now=now)


def test_verify_skips_other_versions_and_garbage_and_reads_any_header_case() -> None:
    body = b"{}"
    good = WebhookSigner([VECTOR_SECRET]).headers("x", body, timestamp=1_000_000)
    headers = {
        "Webhook-Id": "x",
        "WEBHOOK-TIMESTAMP": "1000000",
        "webhook-signature": "v1a,AAAA v1,@@notbase64 v2,xyz " + good["webhook-signature"],
    }
    assert verify([generate_secret(), VECTOR_SECRET], headers, body, now=1_000_000) == "x"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "whsec_",
        "whsec_" + base64.b64encode(b"k" * 23).decode(),  # 23 bytes: under the spec's 24
        "whsec_" + base64.b64encode(b"k" * 65).decode(),  # 65 bytes: over its 64
        "whsec_not base64 at all!",
        "hunter2hunter2hunter2hunter2hunter2!",
    ],
)
def test_a_bad_secret_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(InvalidSecretError) as info:
        decode_secret(bad)
    body = bad.removeprefix("whsec_")
    assert not body or body not in str(info.value)


def test_a_signer_needs_a_key_and_hides_its_keys() -> None:
    with pytest.raises(InvalidSecretError):
        WebhookSigner([])
    signer = WebhookSigner([VECTOR_SECRET])
    assert "MfKQ9r8G" not in repr(signer)
    assert repr(signer) == "WebhookSigner(<1 key(s)>)"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("hooks#c4ca4238a0b923820dcc509a6f75849b", "hooks#c4ca4238a0b923820dcc509a6f75849b"),
        ("hooks#evt-1#user:2", "hooks#evt-1#user:2"),
        ("hooks#a.b", "hooks#a%2Eb"),
        ("hooks#50%", "hooks#50%25"),
        ("hooks#a b\r\nX: y", "hooks#a%20b%0D%0AX:%20y"),
        ("hooks#é", "hooks#%C3%A9"),
    ],
)
def test_message_id_keeps_safe_keys_and_escapes_dots_and_controls(key: str, expected: str) -> None:
    # THEN a webhook-id holds no '.', no whitespace or control, and is a pure function of the key
    assert message_id(key) == expected
    assert message_id(key) == message_id(key)
