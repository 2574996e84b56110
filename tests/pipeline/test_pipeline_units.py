"""Units without AWS: backoff, token bucket, SES error mapping (botocore Stubber), masking."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ConnectTimeoutError, NoCredentialsError, ReadTimeoutError
from botocore.stub import Stubber

from notifier.channels.base import Message, Outcome, mask_address
from notifier.channels.email import EmailChannel, EmailOptions, classify_exception
from notifier.retry import Backoff, Deadline, TokenBucket


def test_full_jitter_delay_stays_within_the_exponential_ceiling() -> None:
    # GIVEN a backoff WHEN delays are drawn THEN each lies in [0, min(cap, base*2^(n-1))]
    b = Backoff(max_attempts=10, base_s=0.01, cap_s=0.1)
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(0.1, 0.01 * 2 ** (attempt - 1))
        draws = [b.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling / 2  # jitter spreads over the range


def test_backoff_refuses_to_sleep_past_the_deadline_or_the_attempt_limit() -> None:
    # GIVEN a deadline already passed and one far away
    b = Backoff(max_attempts=3, base_s=0.001, cap_s=0.001)
    # WHEN asked to wait THEN it refuses past the deadline and after max_attempts
    assert asyncio.run(b.wait(1, Deadline.after(-1))) is False
    assert asyncio.run(b.wait(3, Deadline.after(60))) is False
    assert asyncio.run(b.wait(1, Deadline.after(60))) is True


def test_token_bucket_spaces_reservations_after_the_burst() -> None:
    # GIVEN a bucket of 10/s with burst 2
    bucket = TokenBucket(10, burst=2)
    # WHEN 5 tokens are reserved at once
    waits = [bucket.reserve() for _ in range(5)]
    # THEN the burst is free and later ones queue about 1/rate apart, in order
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] < waits[3] < waits[4]
    assert waits[4] - waits[3] == pytest.approx(0.1, abs=0.01)


def test_token_bucket_gives_up_when_the_wait_crosses_the_deadline() -> None:
    # GIVEN an empty slow bucket WHEN acquired with a near deadline THEN False, token returned
    bucket = TokenBucket(0.5, burst=1)
    assert asyncio.run(bucket.acquire(Deadline.after(5))) is True
    assert asyncio.run(bucket.acquire(Deadline.after(0.01))) is False


def _ses_error(code: str, status: int, message: str = "") -> Exception:
    """A real botocore ClientError produced by the sesv2 client through Stubber."""
    client = botocore.session.get_session().create_client(
        "sesv2", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "send_email", service_error_code=code, service_message=message, http_status_code=status
        )
        try:
            client.send_email(
                FromEmailAddress="a@example.com",
                Destination={"ToAddresses": ["b@example.com"]},
                Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
            )
        except Exception as exc:
            return exc
    raise AssertionError("stubbed error was not raised")


#: The verdict table of docs/EXACTLY-ONCE.md ("Errors and their verdicts"), row by row:
#: (code, HTTP status, outcome, retried inside the invocation, account fault)
VERDICTS = [
    ("TooManyRequestsException", 429, Outcome.TRANSIENT, True, False),
    ("Throttling", 400, Outcome.TRANSIENT, True, False),
    ("InternalFailure", 500, Outcome.TRANSIENT, True, False),
    ("ServiceUnavailable", 503, Outcome.TRANSIENT, True, False),
    ("ExpiredTokenException", 403, Outcome.TRANSIENT, False, True),
    ("UnrecognizedClientException", 403, Outcome.TRANSIENT, False, True),
    ("InvalidClientTokenId", 403, Outcome.TRANSIENT, False, True),
    ("InvalidSignatureException", 403, Outcome.TRANSIENT, False, True),
    ("SignatureDoesNotMatch", 403, Outcome.TRANSIENT, False, True),
    ("AccessDeniedException", 403, Outcome.TRANSIENT, False, True),
    ("RequestTimeTooSkewed", 403, Outcome.TRANSIENT, False, True),
    ("MissingAuthenticationToken", 403, Outcome.TRANSIENT, False, True),
    ("RequestTimeout", 408, Outcome.TRANSIENT, False, True),
    ("LimitExceededException", 400, Outcome.TRANSIENT, False, True),
    ("AccountSuspendedException", 400, Outcome.TRANSIENT, False, True),
    ("SendingPausedException", 400, Outcome.TRANSIENT, False, True),
    ("MailFromDomainNotVerifiedException", 400, Outcome.TRANSIENT, False, True),
    ("NotFoundException", 404, Outcome.TRANSIENT, False, True),
    ("SomethingNewException", 400, Outcome.TRANSIENT, False, True),
    ("MessageRejected", 400, Outcome.PERMANENT, True, False),
    ("BadRequestException", 400, Outcome.PERMANENT, True, False),
    ("InvalidParameterValue", 400, Outcome.PERMANENT, True, False),
]


@pytest.mark.parametrize(("code", "status", "outcome", "retry_now", "account"), VERDICTS)
def test_ses_errors_are_classified(
    code: str, status: int, outcome: Outcome, retry_now: bool, account: bool
) -> None:
    # GIVEN an SES error as botocore raises it WHEN classified
    result = classify_exception(_ses_error(code, status))
    # THEN the outcome (whether to retry now, whether the account is at fault) follows the table
    assert result.outcome is outcome
    assert result.code == code
    assert result.account_fault is account
    if outcome is Outcome.TRANSIENT:
        assert result.retry_now is retry_now


def test_an_unverified_identity_is_the_accounts_fault_not_the_messages() -> None:
    # GIVEN SES rejecting a send because an identity is not verified (sandbox or sender)
    exc = _ses_error("MessageRejected", 400, "Email address is not verified: jane@b.example")
    # WHEN classified THEN transient account fault, and the reason masks the address
    result = classify_exception(exc)
    assert result.outcome is Outcome.TRANSIENT
    assert result.account_fault is True
    assert "jane@" not in (result.reason or "")
    assert "j***@b.example" in (result.reason or "")


def test_missing_credentials_are_an_account_fault_even_when_wrapped() -> None:
    # GIVEN the fast client's "not sent" error caused by missing credentials
    class RequestNotSentError(ConnectionError):
        pass

    try:
        try:
            raise NoCredentialsError()
        except NoCredentialsError as cause:
            raise RequestNotSentError("no credentials") from cause
    except RequestNotSentError as exc:
        result = classify_exception(exc)
    # THEN transient, an account fault, never unknown
    assert result.outcome is Outcome.TRANSIENT
    assert result.account_fault is True


def test_transport_errors_split_into_not_sent_and_unknown() -> None:
    # GIVEN a connect timeout (never left) and a read timeout (left, no answer)
    # WHEN classified THEN the first is transient and the second unknown
    assert classify_exception(ConnectTimeoutError(endpoint_url="x")).outcome is Outcome.TRANSIENT
    assert classify_exception(ReadTimeoutError(endpoint_url="x")).outcome is Outcome.UNKNOWN
    assert classify_exception(ConnectionResetError()).outcome is Outcome.UNKNOWN
    # AND the fast client's typed transport errors map the same way (by class name)

    class RequestNotSentError(ConnectionError):
        pass

    class OutcomeUnknownError(ConnectionError):
        pass

    assert classify_exception(RequestNotSentError("dns")).outcome is Outcome.TRANSIENT
    assert classify_exception(OutcomeUnknownError("reset")).outcome is Outcome.UNKNOWN


class _Rendered:
    subject = "Hi"
    text = "plain"
    html: str | None = "<p>hi</p>"


def test_email_request_carries_headers_tags_and_configuration_set() -> None:
    # GIVEN an email channel with unsubscribe header, tags and a configuration set
    ch = EmailChannel(
        name="email",
        options=EmailOptions(
            list_unsubscribe="<mailto:u@example.com>", tags={"app": "n"}, configuration_set="cs"
        ),
    )
    # WHEN a request is built
    req: dict[str, Any] = ch.build_request(
        Message(key="email#1", recipient="user-1@example.com", sender="", rendered=_Rendered())
    )
    # THEN it is a Simple SESv2 message with every configured extra
    simple = req["Content"]["Simple"]
    assert simple["Subject"]["Data"] == "Hi"
    assert simple["Body"]["Html"]["Data"] == "<p>hi</p>"
    assert simple["Headers"] == [{"Name": "List-Unsubscribe", "Value": "<mailto:u@example.com>"}]
    assert req["EmailTags"] == [{"Name": "app", "Value": "n"}]
    assert req["ConfigurationSetName"] == "cs"
    assert req["FromEmailAddress"] == "notifications@example.com"


def test_recipients_are_validated_and_masked() -> None:
    # GIVEN addresses good and bad WHEN validated and masked THEN only real addresses pass
    ch = EmailChannel(name="email")
    assert ch.validate_recipient("user-1@example.com") == "user-1@example.com"
    for bad in (None, 42, "", "no-at-sign", "a@b", "x@example.com\r\nBcc: y@example.com"):
        assert ch.validate_recipient(bad) is None
    assert mask_address("user-1@example.com") == "u***@example.com"
    assert "user-1" not in mask_address("user-1@example.com")
