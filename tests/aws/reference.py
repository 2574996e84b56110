"""botocore as the reference: the request it would send, and its outcome next to ours."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp import web
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError

from .servers import http_server


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def captured_request(
    client: Any, event: str, call: Callable[[Any], object], answer: bytes
) -> AWSPreparedRequest:
    """The one request botocore ``client`` sends in ``call(client)``, captured at ``event``.

    The request never goes on the wire: the ``before-send`` hook answers 200 with ``answer``.
    The client is closed afterwards.
    """
    captured: list[AWSPreparedRequest] = []

    def hook(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 200, {}, _Body(answer))  # type: ignore[arg-type]

    client.meta.events.register(event, hook)
    call(client)
    client.close()
    (request,) = captured
    return request


async def _outcome(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except ClientError as exc:
        return exc


async def both_outcomes(
    service: str,
    handler: Callable[[web.Request], web.StreamResponse],
    call: Callable[[Any], Awaitable[Any]],
    ours: Callable[[str], AbstractAsyncContextManager[Any]],
) -> tuple[Any, Any]:
    """(botocore's outcome, ours) of ``call(client)`` against a server answering ``handler``.

    An outcome is the call's result or the ``ClientError`` it raised. botocore's client is
    aiobotocore's ``service`` client with one attempt; ours is ``ours(endpoint_url)``.
    """
    session: Any = get_session()  # typed per literal service name
    async with http_server(handler) as url:
        async with session.create_client(
            service,
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="a",
            aws_secret_access_key="b",
            config=AioConfig(retries={"total_max_attempts": 1}),
        ) as reference:
            theirs = await _outcome(call(reference))
        async with ours(url) as client:
            mine = await _outcome(call(client))
    return theirs, mine
