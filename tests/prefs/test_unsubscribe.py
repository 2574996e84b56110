"""One-click unsubscribe: tokens, headers, and the function URL endpoint against moto."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from prefs_helpers import (
    PREFS,
    as_json_bytes,
    create_preferences_table,
    function_url_event,
    table_items,
)

import notifier.unsubscribe as unsub
from notifier.config import ConfigError
from notifier.preferences import Preferences
from notifier.retry import Deadline
from notifier.secrets import SecretResolver
from notifier.unsubscribe import (
    TokenClaims,
    TokenExpired,
    TokenInvalid,
    UnsubscribeHandler,
    UnsubscribeSettings,
    UnsubscribeTokens,
    build_unsubscribe_handler,
    list_unsubscribe_headers,
    load_keys,
    parse_keys,
    unsubscribe_url,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 140))
ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# -- tokens -----------------------------------------------------------------------------------


def test_sign_verify_round_trip_is_compact_and_url_safe() -> None:
    # GIVEN tokens with one key and a fixed clock
    tokens = UnsubscribeTokens([KEY_A], clock=lambda: 1_700_000_000.0)
    # WHEN a token is signed and verified
    token = tokens.sign("user-42", "friend_request")
    claims = tokens.verify(token)
    # THEN the claims come back, expiring 30 days on, with a fresh 96-bit token id
    assert claims.user_id == "user-42"
    assert claims.category == "friend_request"
    assert claims.channel == "email"
    assert claims.expires_at == 1_700_000_000 + 30 * 86_400
    assert len(base64.urlsafe_b64decode(claims.token_id + "==")) == 12
    assert tokens.verify(tokens.sign("user-42", "friend_request")).token_id != claims.token_id
    # AND the token needs no escaping in a URL, and is short
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}", token)
    assert len(token) < 200


def test_unicode_claims_round_trip() -> None:
    # GIVEN a user id and category outside ASCII
    tokens = UnsubscribeTokens([KEY_A])
    # WHEN signed and verified THEN they survive unchanged
    claims = tokens.verify(tokens.sign("usér-☃", "fréquent", "sms"))
    assert (claims.user_id, claims.category, claims.channel) == ("usér-☃", "fréquent", "sms")


def _repack(token: str, **changes: Any) -> str:
    """The token with its payload edited and the old signature kept (a forgery attempt)."""
    payload, _, signature = token.partition(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body.update(changes)
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + signature


def test_tampered_payload_or_signature_is_invalid() -> None:
    # GIVEN a genuine token
    tokens = UnsubscribeTokens([KEY_A])
    token = tokens.sign("user-1", "friend_request")
    payload, _, signature = token.partition(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    # WHEN the payload names another user or category, or the signature is altered
    forgeries = [
        _repack(token, u="user-2"),
        _repack(token, c="*"),
        _repack(token, exp=2**40),
        f"{payload}.{flipped}",
        f"{payload}.",
        payload,
        f"{payload}.{signature}.x",
        f"{payload}.{signature}=",
        f"{payload} .{signature}",
    ]
    # THEN each is TokenInvalid (a TokenError, a ValueError)
    for forged in forgeries:
        with pytest.raises(TokenInvalid):
            tokens.verify(forged)
    assert issubclass(TokenInvalid, ValueError)


@pytest.mark.parametrize("garbage", ["", ".", "a.b", "é.é", "x" * 5000, "..", "AAAA.AAAA"])
def test_garbage_is_invalid(garbage: str) -> None:
    # GIVEN anything that is not a token WHEN verified THEN TokenInvalid, never another error
    with pytest.raises(TokenInvalid):
        UnsubscribeTokens([KEY_A]).verify(garbage)


def test_a_token_signed_with_another_key_is_invalid() -> None:
    # GIVEN a token signed with key B
    token = UnsubscribeTokens([KEY_B]).sign("user-1", "c")
    # WHEN verified by tokens holding only key A THEN TokenInvalid
    with pytest.raises(TokenInvalid):
        UnsubscribeTokens([KEY_A]).verify(token)


def test_key_rotation() -> None:
    # GIVEN a token signed with the old key A, then a rotation to [B (new), A (old)]
    old_token = UnsubscribeTokens([KEY_A]).sign("user-1", "c")
    rotated = UnsubscribeTokens([KEY_B, KEY_A])
    # WHEN tokens are verified during and after the rotation
    new_token = rotated.sign("user-1", "c")
    # THEN old and new tokens verify while both keys are held; new ones are signed with B;
    # once A is dropped its tokens stop working
    assert rotated.verify(old_token).user_id == "user-1"
    assert rotated.verify(new_token).user_id == "user-1"
    assert UnsubscribeTokens([KEY_B]).verify(new_token).user_id == "user-1"
    with pytest.raises(TokenInvalid):
        UnsubscribeTokens([KEY_B]).verify(old_token)


def test_expiry() -> None:
    # GIVEN a token with a 100 s lifetime and a clock we move
    now = [1_000_000.0]
    tokens = UnsubscribeTokens([KEY_A], ttl_seconds=100, clock=lambda: now[0])
    token = tokens.sign("user-1", "c")
    # WHEN the clock reaches 1 s before expiry, then the expiry
    now[0] += 99
    assert tokens.verify(token).expires_at == 1_000_100
    now[0] += 1
    # THEN it is TokenExpired, which still says whose token it was
    with pytest.raises(TokenExpired) as info:
        tokens.verify(token)
    assert info.value.claims.user_id == "user-1"
    assert isinstance(info.value, ValueError)


def test_keys_must_be_long_enough() -> None:
    # GIVEN a 31-byte key WHEN tokens are made THEN ValueError; no keys at all too
    with pytest.raises(ValueError, match="32"):
        UnsubscribeTokens([bytes(31)])
    with pytest.raises(ValueError, match="at least one"):
        UnsubscribeTokens([])


def test_parse_keys_formats_and_errors() -> None:
    # GIVEN two keys, one standard base64 with padding, one URL-safe without
    text = f"  {b64(KEY_A)}\n{base64.urlsafe_b64encode(KEY_B).decode().rstrip('=')} "
    # WHEN parsed THEN both, newest (first) first
    assert parse_keys(text) == [KEY_A, KEY_B]
    # AND a short key, a non-base64 key or nothing is a ConfigError that does not echo it
    short = b64(b"s3cr3t-but-short")
    for bad, why in [(short, "bytes"), ("not*base64!!", "base64"), ("   ", "no unsubscribe")]:
        with pytest.raises(ConfigError, match=why) as info:
            parse_keys(bad, "NOTIFIER_UNSUBSCRIBE_KEY")
        assert bad.strip() == "" or bad not in str(info.value)
    assert len(parse_keys(unsub.generate_key())[0]) == 32


def test_keys_from_ssm(aws: str) -> None:
    # GIVEN two keys in an SSM SecureString parameter (moto)
    boto3.client("ssm").put_parameter(
        Name="/notifier/unsubscribe", Value=f"{b64(KEY_B)} {b64(KEY_A)}", Type="SecureString"
    )

    # WHEN loaded through the secret reference
    async def scenario() -> list[bytes]:
        from aiobotocore.session import get_session

        resolver = SecretResolver(session=get_session(), client_kwargs={"region_name": "us-east-1"})
        return await load_keys(resolver, "ssm:/notifier/unsubscribe")

    # THEN both keys, in order
    assert asyncio.run(scenario()) == [KEY_B, KEY_A]


def test_keys_through_an_env_variable_naming_ssm(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN NOTIFIER_UNSUBSCRIBE_KEY naming an SSM parameter (not holding the keys)
    boto3.client("ssm").put_parameter(
        Name="/notifier/unsubscribe", Value=b64(KEY_A), Type="SecureString"
    )
    monkeypatch.setenv("NOTIFIER_UNSUBSCRIBE_KEY", "ssm:/notifier/unsubscribe")

    # WHEN the pipeline's default reference "env:NOTIFIER_UNSUBSCRIBE_KEY" is loaded, and the
    # endpoint's setting (the variable's value) is read
    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        from aiobotocore.session import get_session

        resolver = SecretResolver(session=get_session(), client_kwargs={"region_name": "us-east-1"})
        return (
            await load_keys(resolver, "env:NOTIFIER_UNSUBSCRIBE_KEY"),
            await unsub.keys_from_setting(resolver, "ssm:/notifier/unsubscribe"),
            await unsub.keys_from_setting(resolver, f"{b64(KEY_B)} {b64(KEY_A)}"),
        )

    # THEN the reference is followed once to the key; raw keys are taken as they are
    assert asyncio.run(scenario()) == ([KEY_A], [KEY_A], [KEY_B, KEY_A])


# -- headers ----------------------------------------------------------------------------------


def test_headers_exact_text() -> None:
    # GIVEN an https unsubscribe URL and a mailto fallback
    url = "https://abc.lambda-url.us-east-1.on.aws/?t=PAY.SIG"
    # WHEN the headers are made
    # THEN exactly RFC 8058's two headers, the https URI first
    assert list_unsubscribe_headers(url, "unsubscribe@example.com") == [
        (
            "List-Unsubscribe",
            "<https://abc.lambda-url.us-east-1.on.aws/?t=PAY.SIG>, "
            "<mailto:unsubscribe@example.com>",
        ),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    assert list_unsubscribe_headers(url) == [
        ("List-Unsubscribe", "<https://abc.lambda-url.us-east-1.on.aws/?t=PAY.SIG>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    mailto = "mailto:u@example.com?subject=unsubscribe"
    assert list_unsubscribe_headers(url, mailto)[0][1].endswith(f", <{mailto}>")


def test_headers_refuse_http_and_injection() -> None:
    # GIVEN an http URL, or values that would break the header
    # WHEN headers are made THEN ValueError (http allowed only when asked, for local runs)
    with pytest.raises(ValueError, match="https"):
        list_unsubscribe_headers("http://example.com/?t=x")
    assert list_unsubscribe_headers("http://127.0.0.1:9/?t=x", require_https=False)[1] == (
        "List-Unsubscribe-Post",
        ONE_CLICK,
    )
    with pytest.raises(ValueError, match="header"):
        list_unsubscribe_headers("https://example.com/?t=x>\r\nBcc: a@b.c")
    with pytest.raises(ValueError, match="mailto"):
        list_unsubscribe_headers("https://example.com/?t=x", "a@b.c>, <https://evil")


def test_unsubscribe_url_adds_the_token_to_the_query() -> None:
    # GIVEN a token and base URLs with and without a query
    token = UnsubscribeTokens([KEY_A]).sign("u", "c")
    # WHEN the URL is made THEN the token is parameter t, other parameters are kept
    plain = unsubscribe_url("https://abc.lambda-url.us-east-1.on.aws", token)
    assert plain == f"https://abc.lambda-url.us-east-1.on.aws/?t={token}"
    custom = unsubscribe_url("https://x.example/u?lang=en&t=old", token)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(custom).query) == {
        "lang": ["en"],
        "t": [token],
    }
    with pytest.raises(ValueError, match="absolute"):
        unsubscribe_url("/relative", token)


# -- the endpoint -----------------------------------------------------------------------------


@pytest.fixture
def endpoint(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[UnsubscribeHandler]:
    """GIVEN the preferences table in moto and the endpoint built from its environment, the
    keys coming from an env: reference (B new, A old)."""
    create_preferences_table()
    monkeypatch.setenv("TEST_UNSUBSCRIBE_KEYS", f"{b64(KEY_B)} {b64(KEY_A)}")
    settings = UnsubscribeSettings(
        preferences_table=PREFS, unsubscribe_key="env:TEST_UNSUBSCRIBE_KEYS"
    )
    with build_unsubscribe_handler(settings) as handler:
        yield handler


@pytest.fixture
def sign() -> Callable[..., str]:
    tokens = UnsubscribeTokens([KEY_A])
    return tokens.sign


def decision(handler: UnsubscribeHandler, user: str, category: str, channel: str) -> str | None:
    prefs: dict[str, Preferences] = handler.run(handler.store.get_many([user], Deadline.after(10)))
    return prefs[user].decision(category, channel)


def post(handler: UnsubscribeHandler, token: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("body", ONE_CLICK)
    kwargs.setdefault("content_type", FORM)
    return dict(handler(function_url_event("POST", token, **kwargs)))


def test_get_shows_a_form_and_changes_nothing(
    endpoint: UnsubscribeHandler, sign: Callable[..., str]
) -> None:
    # GIVEN a genuine token for a category with markup in its name
    token = sign("user-1", "<b>news</b>")
    # WHEN the link is opened (GET), twice, as a scanner would
    responses = [endpoint(function_url_event("GET", token)) for _ in range(2)]
    # THEN a page with a POST form carrying the one-click field and the token, the category
    # escaped, no script; and the table untouched
    page = responses[0]
    assert page["statusCode"] == 200
    assert page["headers"]["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page["headers"]["content-security-policy"]
    body = page["body"]
    assert '<form method="post" action="?t=' + token + '">' in body
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in body
    assert "&lt;b&gt;news&lt;/b&gt;" in body
    assert "<b>" not in body
    assert "<script" not in body.lower()
    assert responses[1]["statusCode"] == 200
    assert table_items() == {}


def test_one_click_post_opts_out_of_exactly_that_category_and_channel(
    endpoint: UnsubscribeHandler, sign: Callable[..., str]
) -> None:
    # GIVEN a genuine token (signed with the old key A) for friend_request emails
    token = sign("user-1", "friend_request", "email")
    claims = UnsubscribeTokens([KEY_A]).verify(token)
    # WHEN the mail client POSTs the one-click body
    response = post(endpoint, token)
    # THEN 200, and the user is opted out of friend_request email only
    assert response["statusCode"] == 200
    assert "You are unsubscribed" in response["body"]
    assert decision(endpoint, "user-1", "friend_request", "email") == "opted_out"
    assert decision(endpoint, "user-1", "friend_request", "sms") is None
    assert decision(endpoint, "user-1", "profile_view", "email") is None
    assert decision(endpoint, "user-2", "friend_request", "email") is None
    # AND the token is marked used until its own expiry
    assert table_items()[f"TOKEN#{claims.token_id}"]["expires_at"] == str(claims.expires_at)


def test_one_click_with_aiobotocore_clients(
    aws: str, monkeypatch: pytest.MonkeyPatch, sign: Callable[..., str]
) -> None:
    # GIVEN the endpoint built with NOTIFIER_AWS_CLIENTS=aiobotocore
    create_preferences_table()
    monkeypatch.setenv("TEST_UNSUBSCRIBE_KEYS", b64(KEY_A))
    settings = UnsubscribeSettings(
        preferences_table=PREFS,
        unsubscribe_key="env:TEST_UNSUBSCRIBE_KEYS",
        aws_clients="aiobotocore",
    )
    token = sign("user-1", "friend_request", "sms")
    with build_unsubscribe_handler(settings) as handler:
        # WHEN the one-click POST arrives, then again
        first, again = post(handler, token), post(handler, token)
        # THEN opted out of friend_request SMS only, and the replay is refused
        assert (first["statusCode"], again["statusCode"]) == (200, 409)
        assert decision(handler, "user-1", "friend_request", "sms") == "opted_out"
        assert decision(handler, "user-1", "friend_request", "email") is None


def test_the_page_form_post_works_too(
    endpoint: UnsubscribeHandler, sign: Callable[..., str]
) -> None:
    # GIVEN the page a GET returned
    token = sign("user-1", "profile_view")
    page = endpoint(function_url_event("GET", token))["body"]
    action = html_unescape(re.search(r'action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    # WHEN its form is submitted as a browser would (query from the action, form body)
    event = function_url_event(
        "POST", body=ONE_CLICK, content_type=FORM, query=action.removeprefix("?")
    )
    response = endpoint(event)
    # THEN the user is unsubscribed
    assert response["statusCode"] == 200
    assert decision(endpoint, "user-1", "profile_view", "email") == "opted_out"


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_replay_is_409_and_changes_nothing(
    endpoint: UnsubscribeHandler, sign: Callable[..., str]
) -> None:
    # GIVEN a token already used once, then the user re-subscribed (opt-out removed)
    token = sign("user-1", "friend_request")
    assert post(endpoint, token)["statusCode"] == 200
    boto3.client("dynamodb").update_item(
        TableName=PREFS,
        Key={"pk": {"S": "USER#user-1"}},
        UpdateExpression="DELETE opt_outs :o",
        ExpressionAttributeValues={":o": {"SS": ["friend_request:email"]}},
    )
    before = table_items()
    # WHEN the same token is POSTed again
    response = post(endpoint, token)
    # THEN 409, and nothing changed: the user stays subscribed
    assert response["statusCode"] == 409
    assert "already used" in response["body"]
    assert table_items() == before
    assert decision(endpoint, "user-1", "friend_request", "email") is None


def test_forged_is_400_and_changes_nothing(endpoint: UnsubscribeHandler) -> None:
    # GIVEN a token signed with a key the endpoint does not hold, and a user-swapped one
    forged = UnsubscribeTokens([bytes(32)]).sign("user-1", "friend_request")
    swapped = _repack(UnsubscribeTokens([KEY_A]).sign("user-1", "c"), u="victim")
    # WHEN each is POSTed (and opened)
    # THEN 400 every time, and the table stays empty
    for token in (forged, swapped, "garbage"):
        assert post(endpoint, token)["statusCode"] == 400
        assert endpoint(function_url_event("GET", token))["statusCode"] == 400
    assert endpoint(function_url_event("POST", body=ONE_CLICK))["statusCode"] == 400
    assert table_items() == {}


def test_expired_is_410_and_changes_nothing(endpoint: UnsubscribeHandler) -> None:
    # GIVEN a genuine token that expired (signed 31 days ago with a 30-day lifetime)
    token = UnsubscribeTokens([KEY_A], clock=lambda: time.time() - 31 * 86_400).sign("u", "c")
    # WHEN it is POSTed or opened
    response = post(endpoint, token)
    # THEN 410 with a clear message, and nothing written
    assert response["statusCode"] == 410
    assert "expired" in response["body"]
    assert endpoint(function_url_event("GET", token))["statusCode"] == 410
    assert table_items() == {}


def test_base64_and_multipart_bodies(
    endpoint: UnsubscribeHandler, sign: Callable[..., str]
) -> None:
    # GIVEN two tokens
    t1, t2 = sign("user-1", "a"), sign("user-2", "b")
    # WHEN one POSTs a base64-encoded form body and the other a multipart/form-data body
    r1 = post(endpoint, t1, base64_body=True)
    boundary = "----b0undary"
    multipart = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    )
    r2 = post(
        endpoint,
        t2,
        body=multipart,
        base64_body=True,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    # THEN both unsubscribe
    assert (r1["statusCode"], r2["statusCode"]) == (200, 200)
    assert decision(endpoint, "user-1", "a", "email") == "opted_out"
    assert decision(endpoint, "user-2", "b", "email") == "opted_out"


def test_post_without_the_one_click_field_is_400(
    endpoint: UnsubscribeHandler, sign: Callable[..., str]
) -> None:
    # GIVEN a genuine token
    token = sign("user-1", "a")
    # WHEN POSTed with an empty or different body, or a broken base64 body
    # THEN 400 and nothing changes; the token stays usable
    for body in ("", "List-Unsubscribe=Other", "foo=bar"):
        assert post(endpoint, token, body=body)["statusCode"] == 400
    event = function_url_event("POST", token, body="x", content_type=FORM)
    event.update(body="!!not base64!!", isBase64Encoded=True)
    assert endpoint(event)["statusCode"] == 400
    assert table_items() == {}
    assert post(endpoint, token)["statusCode"] == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"])
def test_other_methods_are_405(
    endpoint: UnsubscribeHandler, sign: Callable[..., str], method: str
) -> None:
    # GIVEN a genuine token WHEN sent with another method THEN 405 naming GET and POST
    response = endpoint(function_url_event(method, sign("u", "c"), body=ONE_CLICK))
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "GET, POST"
    assert table_items() == {}


def test_raw_bytes_event_from_the_custom_runtime(
    endpoint: UnsubscribeHandler, sign: Callable[..., str]
) -> None:
    # GIVEN the event as raw JSON bytes (notifier.runtime hands events over unparsed)
    event = as_json_bytes(function_url_event("POST", sign("user-9", "c"), body=ONE_CLICK))
    # WHEN handled THEN it unsubscribes as a dict event would; junk bytes are a 400
    assert endpoint(event)["statusCode"] == 200
    assert decision(endpoint, "user-9", "c", "email") == "opted_out"
    assert endpoint(b"\x00not json")["statusCode"] == 400


def test_logs_hold_neither_the_token_nor_the_user_id(
    endpoint: UnsubscribeHandler, sign: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a token for a recognisable user id
    user = "user-with-a-long-recognisable-id"
    token = sign(user, "c")
    claims = UnsubscribeTokens([KEY_A]).verify(token)
    # WHEN it is opened, used, and replayed
    with caplog.at_level(logging.INFO, logger="notifier.unsubscribe"):
        endpoint(function_url_event("GET", token))
        post(endpoint, token)
        post(endpoint, token)
    # THEN one line per request with the outcome, and no token, token id or user id in full
    ours = [r for r in caplog.records if r.name == "notifier.unsubscribe"]
    lines = [json.loads(r.getMessage()) for r in ours]
    assert [line["unsubscribe"] for line in lines] == ["page", "unsubscribed", "replayed"]
    text = "\n".join(r.getMessage() for r in ours)
    assert token not in text
    assert token.partition(".")[0] not in text
    assert claims.token_id not in text
    assert user not in text


def test_table_unavailable_is_503_and_the_token_stays_usable(
    aws: str, monkeypatch: pytest.MonkeyPatch, sign: Callable[..., str]
) -> None:
    # GIVEN an endpoint whose preferences table does not exist (yet)
    monkeypatch.setenv("TEST_UNSUBSCRIBE_KEYS", b64(KEY_A))
    settings = UnsubscribeSettings(
        preferences_table=PREFS, unsubscribe_key="env:TEST_UNSUBSCRIBE_KEYS"
    )
    token = sign("user-1", "c")
    with build_unsubscribe_handler(settings, clock=time.time) as handler:
        # WHEN the one-click POST arrives
        response = post(handler, token)
        # THEN 503 with Retry-After; once the table is there, the same token works
        assert response["statusCode"] == 503
        assert response["headers"]["retry-after"] == "60"
        create_preferences_table()
        assert post(handler, token)["statusCode"] == 200


def test_a_missing_or_bad_key_stops_the_build(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no key reference, then a reference to a short key
    # WHEN the endpoint is built THEN ConfigError, naming the variable and not the value
    with pytest.raises(ConfigError, match="NOTIFIER_UNSUBSCRIBE_KEY"):
        build_unsubscribe_handler(UnsubscribeSettings(preferences_table=PREFS))
    monkeypatch.setenv("SHORT_KEY", b64(b"tiny-secret"))
    with pytest.raises(ConfigError) as info:
        build_unsubscribe_handler(UnsubscribeSettings(unsubscribe_key="env:SHORT_KEY"))
    assert b64(b"tiny-secret") not in str(info.value)


def test_module_lambda_handler_is_built_once_from_the_environment(
    aws: str, monkeypatch: pytest.MonkeyPatch, sign: Callable[..., str]
) -> None:
    # GIVEN the function's environment (table, the key itself) and no handler built yet
    create_preferences_table()
    monkeypatch.setenv("NOTIFIER_PREFERENCES_TABLE", PREFS)
    monkeypatch.setenv("NOTIFIER_UNSUBSCRIBE_KEY", b64(KEY_A))  # the key itself
    monkeypatch.setattr(unsub, "_default", None)
    try:
        # WHEN Lambda invokes it twice
        first = unsub.lambda_handler(
            function_url_event("POST", sign("u1", "c"), body=ONE_CLICK, content_type=FORM), None
        )
        built = unsub._default
        second = unsub.lambda_handler(function_url_event("GET", sign("u2", "c")), None)
        # THEN one handler serves both calls
        assert (first["statusCode"], second["statusCode"]) == (200, 200)
        assert built is not None
        assert unsub._default is built
    finally:
        if unsub._default is not None:
            unsub._default.close()


def test_claims_are_plain_data() -> None:
    # GIVEN claims WHEN compared THEN by value (a frozen dataclass)
    a = TokenClaims("u", "c", "email", 1, "id")
    assert a == TokenClaims("u", "c", "email", 1, "id")
