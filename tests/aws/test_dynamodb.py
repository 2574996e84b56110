"""The fast DynamoDB client: botocore's request, botocore's results and errors."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import boto3
import botocore.session
import pytest
from aiohttp import web
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from notifier.aws import DynamoDBClient

from .reference import both_outcomes, captured_request
from .servers import http_server

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TABLE = "notifier-ledger"


def _botocore_request(method: str, params: dict[str, Any], token: str | None) -> AWSPreparedRequest:
    client = botocore.session.get_session().create_client(
        "dynamodb",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:8000",
        aws_access_key_id=AK,
        aws_secret_access_key=SK,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1}),
    )
    return captured_request(client, "before-send", lambda c: getattr(c, method)(**params), b"{}")


CLAIM = {
    "TransactItems": [
        {
            "Put": {
                "TableName": TABLE,
                "Item": {
                    "pk": {"S": f"email#evt-{i}"},
                    "state": {"S": "PENDING"},
                    "owner": {"S": "ö-owner"},
                    "blob": {"B": b"\x00\xff"},
                    "n": {"N": "1.50"},
                },
                "ConditionExpression": "attribute_not_exists(pk) OR lease_until < :now",
                "ExpressionAttributeValues": {":now": {"N": "1767225600"}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        for i in range(3)
    ]
}
COMMIT = {
    "RequestItems": {
        TABLE: [
            {"PutRequest": {"Item": {"pk": {"S": f"email#evt-{i}"}, "tags": {"BS": [b"a", b"b"]}}}}
            for i in range(3)
        ]
    }
}


@pytest.mark.parametrize(
    ("method", "params"), [("transact_write_items", CLAIM), ("batch_write_item", COMMIT)]
)
@pytest.mark.parametrize("token", [None, "session-token"])
def test_request_matches_botocore(
    method: str,
    params: dict[str, Any],
    token: str | None,
    frozen_clock: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN botocore's request for this call, with the same credentials, frozen clock and
    # idempotency token (botocore fills TransactWriteItems' ClientRequestToken with uuid4)
    fixed = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    reference = _botocore_request(method, params, token)
    if method == "transact_write_items":
        params = {**params, "ClientRequestToken": str(fixed)}
    client = DynamoDBClient(
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:8000",
        credentials=Credentials(AK, SK, token),
        clock=lambda: frozen_clock,
        body_encoding="botocore",
    )
    # WHEN the fast client builds its request
    op = "".join(w.title() for w in method.split("_"))
    url, headers, body = client.build_request(op, params)
    # THEN URL, body bytes and every signed header are botocore's
    assert url == reference.url
    assert body == reference.body
    for name in (
        "Authorization",
        "X-Amz-Date",
        "X-Amz-Security-Token",
        "Content-Type",
        "X-Amz-Target",
    ):
        ref = reference.headers.get(name)
        assert headers.get(name) == (ref.decode() if isinstance(ref, bytes) else ref), name


@pytest.fixture
def ledger_table(aws: str) -> str:
    """GIVEN the ledger table in the embedded AWS."""
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return aws


def test_claims_and_commits_against_moto_like_botocore(ledger_table: str) -> None:
    client = boto3.client("dynamodb")

    async def claim_twice() -> tuple[dict[str, Any], ClientError]:
        async with DynamoDBClient() as ddb:
            first = await ddb.transact_write_items(**CLAIM)
            try:
                await ddb.transact_write_items(**CLAIM)
            except ClientError as exc:
                return first, exc
        raise AssertionError("second claim succeeded")

    async def commit_and_read() -> dict[str, Any]:
        async with DynamoDBClient() as ddb:
            await ddb.batch_write_item(**COMMIT)
            return await ddb.get_item(TableName=TABLE, Key={"pk": {"S": "email#evt-1"}})

    # WHEN the same claims are written twice (the second loses)
    first, lost = asyncio.run(claim_twice())
    # THEN the cancellation is exactly what boto3 sees for the same call
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError) as theirs:
        client.transact_write_items(**CLAIM)
    assert type(lost).__name__ == type(theirs.value).__name__ == "TransactionCanceledException"
    assert lost.response["Error"] == theirs.value.response["Error"]
    assert lost.response["CancellationReasons"] == theirs.value.response["CancellationReasons"]
    assert lost.response["CancellationReasons"][0]["Item"]["blob"] == {"B": b"\x00\xff"}
    # WHEN the claims are committed and read back
    got = asyncio.run(commit_and_read())
    # THEN the item is the one boto3 reads, binary sets decoded
    reference = client.get_item(TableName=TABLE, Key={"pk": {"S": "email#evt-1"}})
    assert got["Item"] == reference["Item"]
    assert got["Item"]["tags"] == {"BS": [b"a", b"b"]}


_NS = "com.amazonaws.dynamodb.v20120810#"
ERRORS = {
    "throughput": (
        400,
        b'{"__type":"'
        + _NS.encode()
        + b'ProvisionedThroughputExceededException","message":"slow down"}',
    ),
    "validation": (
        400,
        b'{"__type":"com.amazon.coral.validate#ValidationException","message":"bad key"}',
    ),
    "conditional": (
        400,
        b'{"__type":"' + _NS.encode() + b'ConditionalCheckFailedException","message":"failed",'
        b'"Item":{"pk":{"S":"k"},"b":{"B":"AAE="}}}',
    ),
    "canceled": (
        400,
        b'{"__type":"'
        + _NS.encode()
        + b'TransactionCanceledException","Message":"Transaction cancelled",'
        b'"CancellationReasons":[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"x","Item":{"pk":{"S":"k"}}}]}',
    ),
    "internal": (
        500,
        b'{"__type":"' + _NS.encode() + b'InternalServerError","message":"oops"}',
    ),
    "html-503": (503, b"<html>unavailable</html>"),
}


async def _both(status: int, body: bytes) -> tuple[ClientError, ClientError]:
    def answer(_: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/x-amz-json-1.0")

    theirs, ours = await both_outcomes(
        "dynamodb",
        answer,
        lambda client: client.put_item(TableName=TABLE, Item={"pk": {"S": "k"}}),
        lambda url: DynamoDBClient(
            region_name="us-east-1",
            endpoint_url=url,
            credentials=Credentials("a", "b"),
            max_attempts=1,
        ),
    )
    assert isinstance(theirs, ClientError)
    assert isinstance(ours, ClientError)
    return theirs, ours


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_error_matches_botocore(name: str) -> None:
    # GIVEN DynamoDB answering this error
    status, body = ERRORS[name]
    # WHEN both clients make the same call, one attempt each
    theirs, ours = asyncio.run(_both(status, body))
    # THEN the class, error, modeled fields and status are botocore's
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.response["Error"] == theirs.response["Error"]
    extra = {k: v for k, v in theirs.response.items() if k not in ("Error", "ResponseMetadata")}
    assert {k: ours.response.get(k) for k in extra} == extra
    assert ours.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert str(ours) == str(theirs)


def test_throttling_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a server that throttles the first call, then accepts; no backoff sleep
    import notifier.aws.dynamodb as mod

    monkeypatch.setattr(mod.random, "random", lambda: 0.0)
    calls: list[int] = []

    def answer(_: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) == 1:
            return web.Response(status=400, body=ERRORS["throughput"][1])
        return web.Response(body=b'{"UnprocessedItems":{}}')

    async def scenario() -> dict[str, Any]:
        async with (
            http_server(answer) as url,
            DynamoDBClient(
                region_name="us-east-1", endpoint_url=url, credentials=Credentials("a", "b")
            ) as client,
        ):
            return await client.batch_write_item(**COMMIT)

    # WHEN a batch is written
    result = asyncio.run(scenario())
    # THEN it succeeds on the second attempt, as botocore's standard mode would
    assert len(calls) == 2
    assert result["UnprocessedItems"] == {}
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
