"""The fast AWS clients: the hot calls signed and sent without botocore's per-call cost.

``SESv2Client`` (``SendEmail``), ``SNSClient`` (``Publish``, for SMS and push) and
``DynamoDBClient`` (the ledger's item writes and reads) keep
botocore's credentials, signature, body bytes and error codes (tested for equality against
botocore itself) and the environment botocore honours (proxies, CA bundles), and send over
:mod:`notifier.aws.rawhttp`, a keep-alive HTTP/1.1 client whose responses llhttp parses
(``docs/TRANSPORT.md``). A failure before the first byte of a request is written is
:class:`RequestNotSentError`, one after it :class:`OutcomeUnknownError`; a skewed clock is
corrected from the server's ``Date``. They are the handler's default
(``NOTIFIER_AWS_CLIENTS=fast``). The trade-off: no
parameter validation, hooks, endpoint rulesets beyond the standard regional ones, or SDK retries
for SES and SNS (the channel retries); ``NOTIFIER_AWS_CLIENTS=aiobotocore`` switches back, and
aiobotocore stays the supported client for everything else (SQS, SES quota reads, tools).
"""

from notifier.aws.dynamodb import DynamoDBClient
from notifier.aws.errors import (
    OutcomeUnknownError,
    RequestNotSentError,
    TransportError,
)
from notifier.aws.sesv2 import SESv2Client, serialize_send_email
from notifier.aws.sns import SNSClient, serialize_publish

__all__ = [
    "DynamoDBClient",
    "OutcomeUnknownError",
    "RequestNotSentError",
    "SESv2Client",
    "SNSClient",
    "TransportError",
    "serialize_publish",
    "serialize_send_email",
]
