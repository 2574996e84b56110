"""The fast AWS send path: SESv2 ``SendEmail`` signed and sent without botocore's per-call cost.

aiobotocore stays the supported client for everything else (DynamoDB, SQS, SES quota reads);
this package covers only the hot call, with botocore's credentials, signature, body bytes and
error codes (tested for equality against botocore itself).
"""

from notifier.aws.dynamodb import DynamoDBClient
from notifier.aws.errors import (
    OutcomeUnknownError,
    RequestNotSentError,
    TransportError,
)
from notifier.aws.sesv2 import SESv2Client, serialize_send_email

__all__ = [
    "DynamoDBClient",
    "OutcomeUnknownError",
    "RequestNotSentError",
    "SESv2Client",
    "TransportError",
    "serialize_send_email",
]
