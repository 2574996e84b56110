"""The SMS channel: SNS publishes through moto over HTTP, End User Messaging with a Stubber.

moto has no End User Messaging SMS (``pinpoint-sms-voice-v2``), so that backend's request
shape and error mapping are checked with botocore's Stubber on a real aiobotocore client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiobotocore.stub import AioStubber
from sms_helpers import (
    NUMBER,
    failure_bodies,
    landed_sms,
    make_ctx,
    message,
    provision,
    raw_client,
    record_publishes,
    stream_record,
)

from notifier.channels import Outcome, SendResult
from notifier.channels.gsm import sms_info
from notifier.channels.sms import (
    EUM_SERVICE,
    SmsChannel,
    build_sms_channel,
    classify_sns_sms,
    mask_phone,
    normalize_phone,
    scrub_phones,
)
from notifier.config import ConfigError
from notifier.handler import build_handler
from notifier.local.moto_server import LOCAL_CREDENTIALS
from notifier.retry import Deadline, TokenBucket
from notifier.settings import Settings
from notifier.templates import TemplateSet, builtin_templates

T = TypeVar("T")


def run(factory: Callable[[AsyncExitStack], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AsyncExitStack() as stack:
            return await factory(stack)

    return asyncio.run(main())


# --- recipients and masking -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+14155550123", "+14155550123"),
        ("  +14155550123 ", "+14155550123"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("+49 151 2345.6789", "+4915123456789"),
        ("+43123456", "+43123456"),  # 8 digits: the shortest accepted
        ("+123456789012345", "+123456789012345"),  # 15 digits: the longest
        ("+4312345", None),  # 7 digits
        ("+1234567890123456", None),  # 16 digits
        ("+04155550123", None),  # no country code starts with 0
        ("14155550123", None),  # no "+": the country cannot be guessed
        ("004915123456789", None),
        ("+1 415 555 0123 ext 5", None),
        ("+1415555O123", None),  # letter O
        ("++14155550123", None),
        ("", None),
        (14155550123, None),
        (None, None),
    ],
)
def test_recipients_are_e164_after_dropping_separators(raw: object, normalised: str | None) -> None:
    # GIVEN a phone value from an event  WHEN validated  THEN E.164 or None (permanent)
    assert normalize_phone(raw) == normalised
    assert SmsChannel(name="sms").validate_recipient(raw) == normalised


def test_phone_numbers_are_masked_in_reasons() -> None:
    # GIVEN numbers long and short, and a provider message quoting one in national format
    # THEN at most 3 leading and 2 trailing digits show, and at least 4 are hidden
    assert mask_phone("+14155550123") == "+141***23"
    assert mask_phone("+43123456") == "+43***56"
    assert mask_phone(None) == "<NoneType>"
    text = scrub_phones("Reason: +1 (415) 555-0123 and 4155550123 are not valid; a@b.example")
    assert "555" not in text
    assert "0123" not in text
    assert "a@b.example" not in text


# --- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"backend": "twilio"}, "channels.sms.backend"),
        ({"message_type": "transactional"}, "channels.sms.message_type"),
        ({"max_segments": 0}, "channels.sms.max_segments"),
        ({"max_segments": 11}, "channels.sms.max_segments"),
        ({"max_segments": "3"}, "channels.sms.max_segments"),
        ({"max_send_rate": 0}, "channels.sms.max_send_rate"),
        ({"sender_id": "Example"}, "channels.sms.sender_id"),
        ({"origination_identity": "Example Jobs"}, "channels.sms.origination_identity"),
        ({"origination_identity": "TwelveLetter"}, "channels.sms.origination_identity"),
        ({"origination_identity": "12345"}, "channels.sms.origination_identity"),
        ({"configuration_set": "cs"}, "channels.sms.configuration_set"),
        (
            {"backend": "end_user_messaging", "configuration_set": "a b"},
            "channels.sms.configuration_set",
        ),
        (
            {"backend": "end_user_messaging", "origination_identity": "pool id"},
            "channels.sms.origination_identity",
        ),
    ],
)
def test_bad_options_are_config_errors_naming_the_key(options: dict[str, Any], key: str) -> None:
    # GIVEN a bad [channels.sms] table  WHEN the channel is built
    with pytest.raises(ConfigError) as raised:
        run(lambda stack: build_sms_channel(make_ctx(stack, options, clients={"sns": object()})))
    # THEN the one-line error names the offending key
    assert str(raised.value).startswith(key + ":")
    assert "\n" not in str(raised.value)


def test_defaults_are_a_transactional_sns_channel_with_its_own_rate() -> None:
    # GIVEN only kind = "sms"
    channel = run(lambda stack: build_sms_channel(make_ctx(stack, {}, clients={"sns": object()})))
    # THEN it renders sms.txt, reads user.phone, needs text, and sends 1 part/s by default
    assert channel.template_variant == "sms"
    assert channel.recipient_path == "user.phone"
    assert channel.required_parts == frozenset({"text"})
    assert channel.options.backend == "sns"
    assert channel.options.max_segments == 3
    assert channel.rate_limiter is not None
    assert channel.rate_limiter.rate == 1.0
    assert channel.build_request(message("x"), "x") == {
        "PhoneNumber": NUMBER,
        "Message": "x",
        "MessageAttributes": {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
        },
    }


# --- SNS through moto -------------------------------------------------------------------------


def test_an_sms_lands_in_sns_with_its_number_text_and_attributes(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an SNS SMS channel with a sender ID, and a number written with separators
    publishes = record_publishes(monkeypatch)
    options = {"origination_identity": "ExampleJobs", "max_send_rate": 50}

    async def go(stack: AsyncExitStack) -> SendResult:
        channel = await build_sms_channel(make_ctx(stack, options, endpoint_url=aws))
        recipient = channel.validate_recipient("+1 (415) 555-0123")
        assert recipient is not None
        msg = message("Example Jobs: Ada viewed your profile.\n", recipient=recipient)
        return await channel.send(msg, Deadline.after(10))

    # WHEN one message is sent
    result = run(go)
    # THEN it went out once, to the normalised number, with the stripped text and attributes
    assert result.outcome is Outcome.SENT
    assert result.message_id
    assert landed_sms() == [(NUMBER, "Example Jobs: Ada viewed your profile.")]
    (call,) = publishes
    assert call["phone_number"] == NUMBER
    assert call["message_attributes"] == {
        "AWS.SNS.SMS.SMSType": {"Type": "String", "Value": "Transactional"},
        "AWS.SNS.SMS.SenderID": {"Type": "String", "Value": "ExampleJobs"},
    }


def test_an_origination_number_and_promotional_type_reach_sns(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a promotional channel sending from an origination number
    publishes = record_publishes(monkeypatch)
    options = {
        "origination_identity": "+18005550199",
        "message_type": "PROMOTIONAL",
        "max_send_rate": 50,
    }

    async def go(stack: AsyncExitStack) -> SendResult:
        channel = await build_sms_channel(make_ctx(stack, options, endpoint_url=aws))
        return await channel.send(message("Sale!"), Deadline.after(10))

    # WHEN sent
    assert run(go).outcome is Outcome.SENT
    # THEN the number is the origination number attribute, the type promotional
    assert publishes[0]["message_attributes"] == {
        "AWS.SNS.SMS.SMSType": {"Type": "String", "Value": "Promotional"},
        "AWS.MM.SMS.OriginationNumber": {"Type": "String", "Value": "+18005550199"},
    }


class Counting(TokenBucket):
    """A token bucket that counts the slots taken."""

    taken = 0

    async def acquire(self, deadline: Deadline | None = None) -> bool:
        self.taken += 1
        return await super().acquire(deadline)


def test_a_multipart_ucs2_text_is_sent_whole_and_takes_a_token_per_part(aws: str) -> None:
    # GIVEN a text of two UCS-2 segments (an emoji) and a counting token bucket
    text = "Frances möchte sich vernetzen 👋 " + "x" * 60
    assert sms_info(text).segments == 2
    bucket = Counting(1000)

    async def go(stack: AsyncExitStack) -> SendResult:
        channel = await build_sms_channel(make_ctx(stack, {}, endpoint_url=aws))
        channel.rate_limiter = bucket
        return await channel.send(message(text), Deadline.after(10))

    # WHEN sent
    assert run(go).outcome is Outcome.SENT
    # THEN the whole text landed (never truncated) and two send slots were taken
    assert landed_sms() == [(NUMBER, text)]
    assert bucket.taken == 2


def test_a_text_over_max_segments_is_a_permanent_explained_failure(aws: str) -> None:
    # GIVEN a channel allowing one segment and a text that is two in UCS-2 (because of a quote)
    text = "„" + "a" * 80
    bucket = Counting(1000)

    async def go(stack: AsyncExitStack) -> SendResult:
        channel = await build_sms_channel(make_ctx(stack, {"max_segments": 1}, endpoint_url=aws))
        channel.rate_limiter = bucket
        return await channel.send(message(text), Deadline.after(10))

    # WHEN sent
    result = run(go)
    # THEN nothing was published, and the reason names encoding, count, cause and the limit
    assert result.outcome is Outcome.PERMANENT
    assert result.code == "SmsTooLong"
    assert result.attempts == 1
    assert result.reason is not None
    assert "2 segments, UCS-2, 81 UTF-16 units" in result.reason
    assert "'„'" in result.reason
    assert "max_segments is 1" in result.reason
    assert landed_sms() == []
    assert bucket.taken == 1  # no slots for parts that are never sent


def test_an_invalid_number_rejected_by_sns_is_permanent_and_masked(aws: str) -> None:
    # GIVEN a message whose recipient skipped validation (SNS is the judge here)
    async def go(stack: AsyncExitStack) -> SendResult:
        channel = await build_sms_channel(make_ctx(stack, {}, endpoint_url=aws))
        return await channel.send(message("hi", recipient="+0415555012345"), Deadline.after(10))

    # WHEN sent
    result = run(go)
    # THEN SNS's InvalidParameter naming the phone number is permanent, tried once, no leak
    assert result.outcome is Outcome.PERMANENT
    assert result.code == "InvalidParameter"
    assert result.attempts == 1
    assert "0415555012345" not in (result.reason or "")
    assert landed_sms() == []


def test_an_empty_text_is_permanent_and_not_sent(aws: str) -> None:
    # GIVEN a rendering that is only whitespace
    async def go(stack: AsyncExitStack) -> SendResult:
        channel = await build_sms_channel(make_ctx(stack, {}, endpoint_url=aws))
        return await channel.send(message(" \n "), Deadline.after(10))

    # WHEN sent  THEN it is a permanent failure and nothing was published
    assert run(go).code == "EmptySms"
    assert landed_sms() == []


def test_an_unreachable_endpoint_is_transient(
    unused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN SNS at a port nobody listens on (and credentials, so the request is attempted)
    for key, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(key, value)

    async def go(stack: AsyncExitStack) -> SendResult:
        ctx = make_ctx(stack, {}, endpoint_url=f"http://127.0.0.1:{unused_port}")
        channel = await build_sms_channel(ctx)
        return await channel.send_one(message("hi"))

    # WHEN one attempt is made  THEN the request never left: transient, retried later
    result = run(go)
    assert result.outcome is Outcome.TRANSIENT
    assert not result.account_fault


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- SNS error verdicts (Stubber) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "text", "outcome", "account_fault"),
    [
        ("OptedOut", 400, "Phone number is opted out", Outcome.PERMANENT, False),
        (
            "InvalidParameter",
            400,
            "Invalid parameter: PhoneNumber Reason: +14155550123 is not valid to publish to",
            Outcome.PERMANENT,
            False,
        ),
        (
            "ParameterValueInvalid",
            400,
            "Invalid parameter: Message too long",
            Outcome.PERMANENT,
            False,
        ),
        # the sender ID is our config, not the message: an account fault, never dead-lettered
        (
            "InvalidParameter",
            400,
            "Invalid parameter: MessageAttributes Reason: invalid AWS.SNS.SMS.SenderID",
            Outcome.TRANSIENT,
            True,
        ),
        # the SMS sandbox's unverified destination is the account's setup
        (
            "InvalidParameter",
            400,
            "Invalid parameter: PhoneNumber Reason: +14155550123 is not verified (SMS sandbox)",
            Outcome.TRANSIENT,
            True,
        ),
        ("Throttling", 400, "Rate exceeded", Outcome.TRANSIENT, False),
        ("InternalError", 500, "oops", Outcome.TRANSIENT, False),
        ("AuthorizationError", 403, "not authorized to sns:Publish", Outcome.TRANSIENT, True),
        ("KMSThrottling", 400, "kms", Outcome.TRANSIENT, True),
    ],
)
def test_sns_errors_get_their_verdicts(
    code: str, status: int, text: str, outcome: Outcome, account_fault: bool
) -> None:
    # GIVEN SNS answering Publish with an error
    async def go(stack: AsyncExitStack) -> SendResult:
        client = await raw_client(stack, "sns")
        channel = await build_sms_channel(make_ctx(stack, {}, clients={"sns": client}))
        with AioStubber(client) as stub:
            stub.add_client_error(
                "publish", service_error_code=code, service_message=text, http_status_code=status
            )
            result = await channel.send_one(message("hi"))
            stub.assert_no_pending_responses()
        return result

    # WHEN one attempt is made
    result = run(go)
    # THEN the verdict is the message's fault only where the message is at fault, and the
    # reason never carries the number
    assert (result.outcome, result.account_fault, result.code) == (outcome, account_fault, code)
    assert "4155550123" not in (result.reason or "")
    assert result.retry_now is not account_fault


def test_classify_sns_sms_keeps_transport_verdicts() -> None:
    # GIVEN a failure before the request left, and one after
    class EndpointConnectionError(Exception):
        pass

    class ReadTimeoutError(Exception):
        pass

    # THEN the first is transient, the second unknown (as for every channel)
    assert classify_sns_sms(EndpointConnectionError("x")).outcome is Outcome.TRANSIENT
    assert classify_sns_sms(ReadTimeoutError("x")).outcome is Outcome.UNKNOWN


# --- End User Messaging (Stubber: moto has no pinpoint-sms-voice-v2) --------------------------

EUM_OPTIONS = {
    "backend": "end_user_messaging",
    "origination_identity": "pool-0123456789abcdef",
    "configuration_set": "notifier-sms",
}


def test_end_user_messaging_request_shape() -> None:
    # GIVEN an End User Messaging channel whose client the factory creates itself
    async def go(stack: AsyncExitStack) -> tuple[SendResult, SmsChannel]:
        channel = await build_sms_channel(make_ctx(stack, EUM_OPTIONS))
        with AioStubber(channel.client) as stub:
            stub.add_response(
                "send_text_message",
                {"MessageId": "m-1"},
                expected_params={
                    "DestinationPhoneNumber": NUMBER,
                    "MessageBody": "Ihr Profil wurde angesehen.",
                    "MessageType": "TRANSACTIONAL",
                    "OriginationIdentity": "pool-0123456789abcdef",
                    "ConfigurationSetName": "notifier-sms",
                    "Context": {"notifier_key": "sms#evt-7"},
                },
            )
            msg = message("Ihr Profil wurde angesehen.\n", key="sms#evt-7")
            result = await channel.send(msg, Deadline.after(10))
            stub.assert_no_pending_responses()
        return result, channel

    # WHEN sent
    result, channel = run(go)
    # THEN exactly that request went out and its MessageId is recorded
    assert (result.outcome, result.message_id) == (Outcome.SENT, "m-1")
    assert channel.client.meta.service_model.service_name == EUM_SERVICE


@pytest.mark.parametrize(
    ("code", "status", "fields", "outcome", "account_fault"),
    [
        (
            "ConflictException",
            400,
            {"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT", "ResourceType": "opted-out-number"},
            Outcome.PERMANENT,
            False,
        ),
        (
            "ConflictException",
            400,
            {"Reason": "DESTINATION_PHONE_NUMBER_NOT_VERIFIED"},  # the sandbox: the account's
            Outcome.TRANSIENT,
            True,
        ),
        (
            "ValidationException",
            400,
            {
                "Reason": "FIELD_VALIDATION_FAILED",
                "Fields": [{"Name": "DestinationPhoneNumber", "Message": "+14155550123 invalid"}],
            },
            Outcome.PERMANENT,
            False,
        ),
        (
            "ValidationException",
            400,
            {"Reason": "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY"},
            Outcome.PERMANENT,
            False,
        ),
        (
            "ValidationException",
            400,
            {
                "Reason": "FIELD_VALIDATION_FAILED",
                "Fields": [{"Name": "ConfigurationSetName", "Message": "bad"}],
            },
            Outcome.TRANSIENT,
            True,
        ),
        (
            "ServiceQuotaExceededException",
            402,
            {"Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"},
            Outcome.TRANSIENT,
            True,
        ),
        ("AccessDeniedException", 403, {"Reason": "ACCOUNT_DISABLED"}, Outcome.TRANSIENT, True),
        (
            "ResourceNotFoundException",
            404,
            {"ResourceType": "pool", "ResourceId": "pool-0123456789abcdef"},
            Outcome.TRANSIENT,
            True,
        ),
        ("ThrottlingException", 400, {}, Outcome.TRANSIENT, False),
        ("InternalServerException", 500, {"RequestId": "r"}, Outcome.TRANSIENT, False),
    ],
)
def test_end_user_messaging_errors_get_their_verdicts(
    code: str, status: int, fields: dict[str, Any], outcome: Outcome, account_fault: bool
) -> None:
    # GIVEN End User Messaging answering SendTextMessage with a modelled error
    async def go(stack: AsyncExitStack) -> SendResult:
        client = await raw_client(stack, EUM_SERVICE)
        ctx = make_ctx(stack, EUM_OPTIONS, clients={EUM_SERVICE: client})
        channel = await build_sms_channel(ctx)
        with AioStubber(client) as stub:
            stub.add_client_error(
                "send_text_message",
                service_error_code=code,
                service_message=f"{code} for +14155550123",
                http_status_code=status,
                modeled_fields=fields,
            )
            result = await channel.send_one(message("hi"))
            stub.assert_no_pending_responses()
        return result

    # WHEN one attempt is made
    result = run(go)
    # THEN the verdict follows the error and its Reason, which starts the (masked) reason
    assert (result.outcome, result.account_fault, result.code) == (outcome, account_fault, code)
    assert "4155550123" not in (result.reason or "")
    if "Reason" in fields:
        assert (result.reason or "").startswith(fields["Reason"] + ": ")


# --- the built-in sms.txt templates -----------------------------------------------------------

BUILTIN = ("profile_view", "friend_request", "application_update")


@pytest.fixture(scope="module")
def sms_templates() -> TemplateSet:
    """The shipped template set: ``NAME/sms.txt`` renders as template ``NAME:sms``."""
    return TemplateSet(builtin_templates())


def _sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((builtin_templates() / name / "sample.json").read_text())
    return data


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("locale", [None, "de"])
def test_builtin_sms_templates_render_to_one_gsm7_segment(
    sms_templates: TemplateSet, name: str, locale: str | None
) -> None:
    # GIVEN a built-in template's sample event
    # WHEN its sms.txt renders (English, or German)
    text = sms_templates.render(f"{name}:sms", _sample(name), locale=locale).text.strip()
    info = sms_info(text)
    # THEN it is one GSM-7 segment with a link, and the German one differs from the English
    assert (info.encoding, info.segments) == ("GSM-7", 1), text
    assert "https://example.com/" in text
    english = sms_templates.render(f"{name}:sms", _sample(name)).text.strip()
    assert (text == english) is (locale is None)


def test_builtin_sms_templates_render_without_an_actor(sms_templates: TemplateSet) -> None:
    # GIVEN samples without an actor (the templates' else branches)
    for name in BUILTIN:
        sample = _sample(name)
        del sample["actor"]
        for locale in (None, "de"):
            # WHEN rendered  THEN still one GSM-7 segment
            text = sms_templates.render(f"{name}:sms", sample, locale=locale).text.strip()
            assert sms_info(text).segments == 1, text


def test_the_sms_variant_reads_the_locale_file(sms_templates: TemplateSet) -> None:
    # GIVEN the shipped set  THEN each sms variant has its own English and German file
    for name in BUILTIN:
        assert sms_templates.files(f"{name}:sms") == (None, f"{name}/sms.txt", None)
        assert sms_templates.files(f"{name}:sms", locale="de-AT")[1] == f"{name}/de/sms.txt"


# --- through the handler ----------------------------------------------------------------------

HANDLER_CONFIG = """
[delivery]
max_attempts = 2
base_delay_ms = 1
max_delay_ms = 5

[channels.sms]
kind = "notifier.channels.sms:build_sms_channel"
origination_identity = "ExampleJobs"
max_send_rate = 100

[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
channel = "sms"
missing_recipient = "skip"
"""


class _Context:
    aws_request_id = "req-1"
    function_name = "notifier"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_the_handler_sends_each_sms_once_from_the_sms_templates(aws: str, tmp_path: Path) -> None:
    # GIVEN the handler with an SMS channel (plugged in by its factory's path) and the
    # built-in templates, and four events: English, German, an unusable number, no number
    queue_url = provision()
    config = tmp_path / "notifier.toml"
    config.write_text(HANDLER_CONFIG, encoding="utf-8")
    handler = build_handler(
        Settings(config_path=str(config), failure_queue_url=queue_url, max_concurrency=8)
    )
    event = {
        "Records": [
            stream_record(0, "+1 (415) 555-0100"),
            stream_record(1, "+49 151 23456789", locale="de"),
            stream_record(2, "0151 23456789"),
            stream_record(3, None),
        ]
    }
    try:
        # WHEN the batch is delivered twice (the event source redelivers it)
        assert handler(event, _Context()) == {"batchItemFailures": []}
        assert handler(event, _Context()) == {"batchItemFailures": []}
    finally:
        handler.close()
    # THEN the two usable numbers got one SMS each, normalised, rendered from sms.txt per locale
    landed = dict(landed_sms())
    assert sorted(landed) == ["+14155550100", "+4915123456789"]
    assert "viewed your profile" in landed["+14155550100"]
    assert "möchte sich mit Ihnen vernetzen" in landed["+4915123456789"]
    assert all(sms_info(text).segments == 1 for text in landed.values())
    # AND the unusable number was dead-lettered once as InvalidRecipient; the missing one skipped
    (failure,) = failure_bodies(queue_url)
    assert failure["error_code"] == "InvalidRecipient"
    assert "23456789" not in failure["reason"]  # (the record itself is kept for redrive)
    assert handler.stats["sent"] == 2
    assert handler.stats["no_recipient"] == 2  # one record, delivered twice
