"""Helpers for the preferences and unsubscribe tests: the table in moto, clients, wrappers."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import boto3

from notifier.aws import DynamoDBClient

PREFS = "notifier-preferences"
T = TypeVar("T")


def create_preferences_table(name: str = PREFS) -> None:
    """The preferences table as the contract has it: ``pk`` (S), TTL on ``expires_at``."""
    ddb = boto3.client("dynamodb")
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


def put_user(user_id: str, *, opt_outs: Sequence[str] = (), suppressed: Sequence[str] = ()) -> None:
    item: dict[str, Any] = {"pk": {"S": f"USER#{user_id}"}, "updated_at": {"N": "1"}}
    if opt_outs:
        item["opt_outs"] = {"SS": list(opt_outs)}
    if suppressed:
        item["suppressed"] = {"SS": list(suppressed)}
    boto3.client("dynamodb").put_item(TableName=PREFS, Item=item)


def table_items() -> dict[str, dict[str, Any]]:
    """Every item of the preferences table, plain values, by ``pk``."""
    items = boto3.client("dynamodb").scan(TableName=PREFS, ConsistentRead=True)["Items"]
    return {i["pk"]["S"]: {k: next(iter(v.values())) for k, v in i.items()} for i in items}


@asynccontextmanager
async def dynamodb_client(kind: str) -> AsyncIterator[Any]:
    """Our fast client or an aiobotocore one, pointed at moto by the ``aws`` fixture's env."""
    if kind == "fast":
        client = DynamoDBClient(region_name="us-east-1")
        try:
            yield client
        finally:
            await client.close()
        return
    from aiobotocore.session import get_session

    async with get_session().create_client("dynamodb", region_name="us-east-1") as client:
        yield client


def run(kind: str, scenario: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``scenario(client)`` on a fresh loop with a client of ``kind``."""

    async def main() -> T:
        async with dynamodb_client(kind) as client:
            return await scenario(client)

    return asyncio.run(main())


class Unprocessing:
    """A client whose first ``rounds`` BatchGetItem answers leave ``hold`` keys unprocessed
    (the rest go to the real client), as DynamoDB does under load or over 16 MB."""

    def __init__(self, inner: Any, *, hold: int, rounds: int) -> None:
        self.inner = inner
        self.hold = hold
        self.rounds = rounds
        self.requests: list[int] = []

    async def batch_get_item(self, **params: Any) -> dict[str, Any]:
        (table, spec), *_ = params["RequestItems"].items()
        keys = list(spec["Keys"])
        self.requests.append(len(keys))
        if self.rounds <= 0:
            return dict(await self.inner.batch_get_item(**params))
        self.rounds -= 1
        held, sent = keys[: self.hold], keys[self.hold :]
        resp: dict[str, Any] = {"Responses": {table: []}}
        if sent:
            resp = dict(
                await self.inner.batch_get_item(
                    **{**params, "RequestItems": {table: {**spec, "Keys": sent}}}
                )
            )
        resp["UnprocessedKeys"] = {table: {**spec, "Keys": held}} if held else {}
        return resp


class Hanging:
    """A client whose calls never answer (a black-holed connection)."""

    def __init__(self) -> None:
        self.calls = 0

    async def batch_get_item(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    update_item = batch_get_item


def function_url_event(
    method: str,
    token: str | None = None,
    *,
    body: str | bytes | None = None,
    base64_body: bool = False,
    content_type: str | None = None,
    query: str | None = None,
) -> dict[str, Any]:
    """A Lambda function URL event (payload format 2.0), as the service sends it."""
    raw_query = query if query is not None else (f"t={token}" if token is not None else "")
    headers = {"host": "abc123.lambda-url.us-east-1.on.aws", "user-agent": "test"}
    if content_type:
        headers["content-type"] = content_type
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "domainName": "abc123.lambda-url.us-east-1.on.aws",
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": base64_body,
    }
    if token is not None:
        event["queryStringParameters"] = {"t": token}
    if body is not None:
        raw = body.encode("utf-8") if isinstance(body, str) else body
        event["body"] = base64.b64encode(raw).decode("ascii") if base64_body else raw.decode()
    return event


def as_json_bytes(event: dict[str, Any]) -> bytes:
    """The event as the custom runtime hands it over: raw bytes."""
    return json.dumps(event).encode("utf-8")
