"""The push channel: SNS platform endpoints on moto (over HTTP), payload shapes per platform,
verdicts per device, recipient validation, options, and the built-in push.json templates."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from botocore.stub import Stubber
from push_helpers import (
    CONTENT,
    REGION,
    delivered,
    disable,
    endpoint,
    message,
    platform_app,
    push_channel,
)

from notifier.channels.base import Outcome
from notifier.channels.push import (
    PushChannel,
    PushContentError,
    PushOptions,
    mask_endpoint,
    mask_push,
    parse_content,
)
from notifier.config import ConfigError
from notifier.retry import Deadline
from notifier.templates import TemplateSet, builtin_templates

GCM_ARN = f"arn:aws:sns:{REGION}:123456789012:endpoint/GCM/app-gcm/{uuid.UUID(int=1)}"
APNS_ARN = f"arn:aws:sns:{REGION}:123456789012:endpoint/APNS/app-apns/{uuid.UUID(int=2)}"
SANDBOX_ARN = f"arn:aws:sns:{REGION}:123456789012:endpoint/APNS_SANDBOX/dev/{uuid.UUID(int=3)}"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def channel(**options: Any) -> PushChannel:
    """A channel without a client, for payload and validation tests."""
    return PushChannel(name="push", options=msgspec.convert(options, PushOptions))


def platform_payload(envelope: dict[str, Any], platform: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(envelope[platform])
    return payload


# -- sending through moto --------------------------------------------------------------------


def test_each_device_of_a_user_gets_exactly_one_in_its_platform_shape(aws: str) -> None:
    # GIVEN a user with an Android (FCM) and an iPhone (APNs) endpoint
    android = endpoint(platform_app("GCM"), "fcm-token-1")
    iphone = endpoint(platform_app("APNS"), "a" * 64)

    # WHEN the fanned-out notification is sent to both devices
    async def scenario() -> list[Any]:
        async with push_channel(aws) as ch:
            msgs = [message(android), message(iphone)]
            return list(await ch.send_batch(msgs, Deadline.after(20)))

    results = run(scenario())

    # THEN both are sent and moto holds exactly one envelope per endpoint
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert all(r.message_id for r in results)
    got = delivered(aws)
    assert len(got[android]) == 1
    assert len(got[iphone]) == 1
    # AND the FCM envelope carries the FCM v1 message (data values as strings)
    fcm_env = got[android][0]
    assert set(fcm_env) == {"default", "GCM"}
    assert fcm_env["default"] == CONTENT["body"]
    fcm = platform_payload(fcm_env, "GCM")["fcmV1Message"]["message"]
    assert fcm["notification"] == {"title": CONTENT["title"], "body": CONTENT["body"]}
    assert fcm["data"] == {"k": "v", "n": "3", "notification_id": "push#evt-1"}
    assert fcm["android"]["collapse_key"] == "push#evt-1"
    assert fcm["android"]["ttl"] == "86400s"
    assert fcm["android"]["priority"] == "high"
    # AND the APNs envelope carries aps.alert with the data beside it
    apns_env = got[iphone][0]
    assert set(apns_env) == {"default", "APNS"}
    apns = platform_payload(apns_env, "APNS")
    assert apns["aps"]["alert"] == {"title": CONTENT["title"], "body": CONTENT["body"]}
    assert apns["aps"]["sound"] == "default"
    assert apns["k"] == "v"
    assert apns["n"] == 3
    assert apns["notification_id"] == "push#evt-1"


def test_disabled_endpoint_is_permanent_for_that_device_only(aws: str) -> None:
    # GIVEN a user with two Android devices, one of them disabled by the platform
    app = platform_app("GCM")
    alive, dead = endpoint(app, "tok-alive"), endpoint(app, "tok-dead")
    disable(dead)

    # WHEN the notification is sent to both
    async def scenario() -> list[Any]:
        async with push_channel(aws) as ch:
            return list(await ch.send_batch([message(dead), message(alive)], Deadline.after(20)))

    dead_result, alive_result = run(scenario())

    # THEN the disabled endpoint is a permanent EndpointDisabled after one attempt
    assert dead_result.outcome is Outcome.PERMANENT
    assert dead_result.code == "EndpointDisabled"
    assert dead_result.attempts == 1
    # AND the other device still gets its one notification
    assert alive_result.outcome is Outcome.SENT
    got = delivered(aws)
    assert len(got[alive]) == 1
    assert got[dead] == []


def test_unknown_endpoint_is_permanent_and_its_id_masked(aws: str) -> None:
    # GIVEN an endpoint ARN of a well-formed shape that SNS does not know
    platform_app("GCM")
    unknown = f"arn:aws:sns:{REGION}:123456789012:endpoint/GCM/app-gcm/{uuid.uuid4()}"

    # WHEN it is sent to
    async def scenario() -> Any:
        async with push_channel(aws) as ch:
            return await ch.send(message(unknown), Deadline.after(20))

    result = run(scenario())

    # THEN it is a permanent NotFound, and the reason does not name the endpoint id in full
    assert result.outcome is Outcome.PERMANENT
    assert result.code == "NotFound"
    assert unknown.rsplit("/", 1)[1] not in (result.reason or "")


def test_rendering_that_is_not_json_is_permanent_and_nothing_is_published(aws: str) -> None:
    # GIVEN a device, and a push.json rendering that is not JSON
    ep = endpoint(platform_app("APNS"), "b" * 64)

    async def scenario() -> Any:
        async with push_channel(aws) as ch:
            return await ch.send(message(ep, text='{"title": "t", body'), Deadline.after(20))

    # WHEN it is sent
    result = run(scenario())

    # THEN it is a permanent PushTemplateInvalid after one attempt, and SNS got nothing
    assert result.outcome is Outcome.PERMANENT
    assert result.code == "PushTemplateInvalid"
    assert result.attempts == 1
    assert delivered(aws)[ep] == []


# -- verdicts on SNS errors (Stubber) -------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "outcome", "account_fault"),
    [
        ("PlatformApplicationDisabled", 400, Outcome.TRANSIENT, True),
        ("Throttled", 400, Outcome.TRANSIENT, False),
        ("InternalError", 500, Outcome.TRANSIENT, False),
        ("InvalidParameter", 400, Outcome.PERMANENT, False),
        ("ParameterValueInvalid", 400, Outcome.PERMANENT, False),
        ("AuthorizationError", 403, Outcome.TRANSIENT, True),
        ("KMSThrottling", 400, Outcome.TRANSIENT, True),
    ],
)
def test_sns_error_codes_map_to_verdicts(
    aws: str, code: str, status: int, outcome: Outcome, account_fault: bool
) -> None:
    # GIVEN SNS answering Publish with ``code``
    async def scenario() -> Any:
        async with push_channel(aws, aws_clients="aiobotocore") as ch:
            assert ch.client is not None
            with Stubber(ch.client) as stub:  # type: ignore[arg-type]
                stub.add_client_error("publish", service_error_code=code, http_status_code=status)
                stub.add_client_error("publish", service_error_code=code, http_status_code=status)
                return await ch.send(message(GCM_ARN), Deadline.after(5))

    # WHEN a message is sent
    result = run(scenario())

    # THEN the verdict is the taxonomy's
    assert (result.outcome, result.code, result.account_fault) == (outcome, code, account_fault)


# -- payloads --------------------------------------------------------------------------------


def test_apns_attributes_carry_ttl_priority_push_type_and_collapse_id() -> None:
    # GIVEN a sandbox endpoint and a channel with a topic and a short TTL
    ch = channel(ttl_seconds=600, apns={"topic": "com.example.app"})

    # WHEN the request is built
    req = ch.build_request(message(SANDBOX_ARN))

    # THEN it is a JSON-structured publish to the endpoint with the reserved APNs attributes
    assert req["TargetArn"] == SANDBOX_ARN
    assert req["MessageStructure"] == "json"
    attrs = {k: v["StringValue"] for k, v in req["MessageAttributes"].items()}
    assert attrs == {
        "AWS.SNS.MOBILE.APNS_SANDBOX.TTL": "600",
        "AWS.SNS.MOBILE.APNS.PUSH_TYPE": "alert",
        "AWS.SNS.MOBILE.APNS.PRIORITY": "10",
        "AWS.SNS.MOBILE.APNS.TOPIC": "com.example.app",
        "AWS.SNS.MOBILE.APNS.COLLAPSE_ID": "push#evt-1",
    }
    assert all(v["DataType"] == "String" for v in req["MessageAttributes"].values())
    # AND the envelope has the sandbox key only
    assert set(json.loads(req["Message"])) == {"default", "APNS_SANDBOX"}


def test_background_apns_push_has_no_alert_and_keeps_the_text_in_data() -> None:
    # GIVEN a channel configured for silent background pushes
    ch = channel(apns={"push_type": "background", "priority": 5})

    # WHEN the request is built for an APNs endpoint
    req = ch.build_request(message(APNS_ARN))

    # THEN aps only wakes the app, and title/body travel as data
    apns = platform_payload(json.loads(req["Message"]), "APNS")
    assert apns["aps"] == {"content-available": 1}
    assert apns["title"] == CONTENT["title"]
    assert apns["body"] == CONTENT["body"]
    assert req["MessageAttributes"]["AWS.SNS.MOBILE.APNS.PUSH_TYPE"]["StringValue"] == "background"


def test_fcm_badge_sound_channel_and_ttl() -> None:
    # GIVEN a rendering with a badge and a sound, and a channel with an Android channel id
    ch = channel(ttl_seconds=0, fcm={"priority": "normal", "channel_id": "social"})
    text = json.dumps({"title": "t", "body": "b", "badge": 4, "sound": "ping.caf"})

    # WHEN the request is built for an FCM endpoint
    req = ch.build_request(message(GCM_ARN, text=text))

    # THEN the FCM v1 message carries them for Android and for iOS-through-FCM
    fcm = platform_payload(json.loads(req["Message"]), "GCM")["fcmV1Message"]["message"]
    assert fcm["android"] == {
        "priority": "normal",
        "ttl": "0s",
        "collapse_key": "push#evt-1",
        "notification": {
            "sound": "ping.caf",
            "channel_id": "social",
            "notification_count": 4,
            "tag": "push#evt-1",
        },
    }
    assert fcm["apns"] == {
        "headers": {"apns-collapse-id": "push#evt-1"},
        "payload": {"aps": {"badge": 4, "sound": "ping.caf"}},
    }
    assert req["MessageAttributes"] == {
        "AWS.SNS.MOBILE.FCM.TTL": {"DataType": "String", "StringValue": "0"}
    }


@pytest.mark.parametrize(
    ("collapse", "expected"),
    [("notification", "push#evt-1"), ("event_type", "friend_request"), ("none", None)],
)
def test_collapse_modes(collapse: str, expected: str | None) -> None:
    # GIVEN a channel with a collapse mode
    ch = channel(collapse=collapse)

    # WHEN requests are built for both platforms
    msg = message(APNS_ARN, event_type="friend_request")
    apns_req = ch.build_request(msg)
    fcm_req = ch.build_request(message(GCM_ARN, event_type="friend_request"))

    # THEN the APNs collapse id and the FCM collapse key follow the mode
    attr = apns_req["MessageAttributes"].get("AWS.SNS.MOBILE.APNS.COLLAPSE_ID")
    assert (attr["StringValue"] if attr else None) == expected
    android = platform_payload(json.loads(fcm_req["Message"]), "GCM")["fcmV1Message"]["message"]
    assert android["android"].get("collapse_key") == expected


def test_long_notification_id_becomes_a_64_byte_collapse_id() -> None:
    # GIVEN a dedup key far longer than APNs' 64-byte collapse id
    ch = channel()
    long_dedup = "evt-" + "x" * 200

    # WHEN requests are built for the same notification on two devices
    a = ch.build_request(message(APNS_ARN, dedup=long_dedup))
    b = ch.build_request(message(SANDBOX_ARN, dedup=long_dedup))

    # THEN the collapse id is 64 bytes, the same on both devices, and the full id is in the data
    ids = {r["MessageAttributes"]["AWS.SNS.MOBILE.APNS.COLLAPSE_ID"]["StringValue"] for r in (a, b)}
    assert len(ids) == 1
    assert len(ids.pop()) == 64
    assert platform_payload(json.loads(a["Message"]), "APNS")["notification_id"] == (
        f"push#{long_dedup}"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "malformed"),
        ('{"title": "t"}', "`body`"),
        ('{"title": "", "body": "b"}', "must not be empty"),
        ('{"title": "t", "body": "b", "image": "x"}', "unknown field"),
        ('{"title": "t", "body": "b", "data": {"google.x": "1"}}', "reserved"),
        ('{"title": "t", "body": "b", "data": {"aps": {}}}', "reserved"),
        ('{"title": "t", "body": "b", "badge": -1}', "badge"),
        ('["t", "b"]', "Expected `object`"),
    ],
)
def test_unusable_renderings_are_explained(text: str, fragment: str) -> None:
    # GIVEN a push.json rendering that cannot be sent; WHEN it is parsed
    with pytest.raises(PushContentError) as err:
        parse_content(text)
    # THEN the error says why, under the PushTemplateInvalid code
    assert err.value.code == "PushTemplateInvalid"
    assert fragment in str(err.value)


def test_payload_over_4_kib_is_permanent_not_truncated() -> None:
    # GIVEN a rendering whose body is over APNs' and FCM's 4 KiB
    ch = channel()
    text = json.dumps({"title": "t", "body": "é" * 2100})

    # WHEN it is sent (no client needed: it never gets that far)
    result = run(ch.send_one(message(GCM_ARN, text=text)))

    # THEN it is a permanent PushPayloadTooLarge naming the size
    assert result.outcome is Outcome.PERMANENT
    assert result.code == "PushPayloadTooLarge"
    assert "4096" in (result.reason or "")


# -- recipients ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        (GCM_ARN, GCM_ARN),
        (APNS_ARN, APNS_ARN),
        (SANDBOX_ARN, SANDBOX_ARN),
        ({"endpoint_arn": APNS_ARN, "platform": "APNS"}, APNS_ARN),
        ({"endpoint_arn": GCM_ARN}, GCM_ARN),
        ({"endpoint_arn": GCM_ARN, "platform": "fcm"}, GCM_ARN),
        ({"endpoint_arn": SANDBOX_ARN, "platform": "apns_sandbox"}, SANDBOX_ARN),
        ({"endpoint_arn": GCM_ARN, "platform": "APNS"}, None),  # disagrees with the ARN
        ({"endpoint_arn": SANDBOX_ARN, "platform": "APNS"}, None),
        ({"token": "abc", "platform": "GCM"}, None),
        (GCM_ARN.replace("/GCM/", "/ADM/"), None),  # a platform we build no payload for
        (GCM_ARN.replace(":endpoint/", ":app/"), None),  # an application, not an endpoint
        (GCM_ARN + " ", None),
        ("arn:aws:sns:us-east-1:123456789012:my-topic", None),
        ("+15555550100", None),
        (None, None),
        (42, None),
        ("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/" + "a" * 250 + "/x1234567", None),
    ],
)
def test_validate_recipient(device: object, expected: str | None) -> None:
    assert channel().validate_recipient(device) == expected


def test_platforms_option_restricts_recipients() -> None:
    # GIVEN a channel for production APNs only
    ch = channel(platforms=["APNS"])
    # THEN sandbox and FCM endpoints are unusable recipients
    assert ch.validate_recipient(APNS_ARN) == APNS_ARN
    assert ch.validate_recipient(SANDBOX_ARN) is None
    assert ch.validate_recipient(GCM_ARN) is None


def test_channel_attributes_the_core_reads() -> None:
    ch = channel()
    assert ch.template_variant == "push"
    assert ch.required_parts == frozenset({"text"})
    assert ch.recipient_path == "user.devices"
    assert ch.fan_out is True


def test_masking_keeps_platform_and_app_but_not_ids_or_tokens() -> None:
    # GIVEN an endpoint ARN and a text naming it and a device token
    token = "f" * 64
    text = f"Invalid parameter: TargetArn {GCM_ARN} token {token} for u@example.com"
    # WHEN masked
    masked = mask_push(text)
    # THEN neither the endpoint id, the token nor the address survives in full
    assert str(uuid.UUID(int=1)) not in masked
    assert token not in masked
    assert "endpoint/GCM/app-gcm/0000***" in masked
    assert "u***@example.com" in masked
    assert mask_endpoint(GCM_ARN).endswith("/app-gcm/0000***")
    assert mask_endpoint("not-an-arn") == "***"


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"ttl": 5}, "channels.push: Object contains unknown field `ttl`"),
        ({"apns": {"prio": 5}}, "channels.push.apns: Object contains unknown field `prio`"),
        ({"apns": {"priority": 7}}, "channels.push.apns.priority:"),
        ({"ttl_seconds": "1h"}, "channels.push.ttl_seconds:"),
        ({"ttl_seconds": 30 * 86400}, "channels.push.ttl_seconds: must be 0..2419200"),
        ({"max_send_rate": 0}, "channels.push.max_send_rate:"),
        ({"platforms": ["ADM"]}, "channels.push.platforms.0:"),
        ({"platforms": []}, "channels.push.platforms:"),
        ({"collapse": "always"}, "channels.push.collapse:"),
        ({"apns": {"push_type": "background"}}, "channels.push.apns.priority: must be 5"),
    ],
)
def test_bad_options_name_the_key(aws: str, options: dict[str, Any], fragment: str) -> None:
    async def scenario() -> None:
        async with push_channel(aws, options):
            pass

    with pytest.raises(ConfigError) as err:
        run(scenario())
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_deployment_send_rate_overrides_the_option(aws: str) -> None:
    async def scenario() -> tuple[float, float]:
        async with (
            push_channel(aws, {"max_send_rate": 50}) as a,
            push_channel(aws, {"max_send_rate": 50}, max_send_rate=7.0) as b,
        ):
            assert a.rate_limiter is not None
            assert b.rate_limiter is not None
            return a.rate_limiter.rate, b.rate_limiter.rate

    assert run(scenario()) == (50.0, 7.0)


# -- the built-in push.json templates --------------------------------------------------------


@pytest.mark.parametrize("name", ["profile_view", "friend_request", "application_update"])
@pytest.mark.parametrize("locale", ["", "de"])
@pytest.mark.parametrize("drop_actor", [False, True])
def test_builtin_push_templates_render_to_valid_push_content(
    name: str, locale: str, drop_actor: bool
) -> None:
    # GIVEN a built-in template's sample event, with or without an actor
    root: Path = builtin_templates() / name
    sample = json.loads((root / "sample.json").read_text(encoding="utf-8"))
    if drop_actor:
        sample.pop("actor")
    templates = TemplateSet(builtin_templates())

    # WHEN push.json renders as the pipeline renders it (template "NAME:push", JSON-escaped)
    text = templates.render(f"{name}:push", sample, locale=locale or None).text
    assert templates.files(f"{name}:push", locale=locale or None)[1] == (
        f"{name}/{locale}/push.json" if locale else f"{name}/push.json"
    )

    # THEN it is usable push content with a type and an https link in its data
    content = parse_content(text)
    assert content.data["type"] == name
    assert content.data["url"].startswith("https://example.com/")
    # AND both platforms' payloads fit
    ch = channel()
    for arn in (GCM_ARN, APNS_ARN):
        ch.build_request(message(arn, text=text))
