"""The handlers under comparison, built the same way for every benchmark (and the RSS probe).

- ``powertools-boto3-jinja2``: the baseline (``baseline_handler.py``); it is handed the event as
  a dict parsed by ``simplejson.loads`` inside the measurement, as awslambdaric does.
- ``notifier``: ``notifier.handler.build_handler()`` as deployed (``NOTIFIER_AWS_CLIENTS``
  unset = ``fast``: ``notifier.aws.SESv2Client`` for SES, ``notifier.aws.DynamoDBClient`` for
  the ledger); handed the raw event bytes (the custom runtime path).
- ``notifier-aiobotocore-ledger``: ``aiobotocore`` mode with the fast SES client injected:
  the ledger on aiobotocore.
- ``notifier-aiobotocore``: ``aiobotocore`` mode: aiobotocore clients throughout.

The notifier variants run only once ``notifier.handler`` (and the decoder and templates it
uses) exist in this tree.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

BASELINE = "powertools-boto3-jinja2"
NOTIFIER = "notifier"
NOTIFIER_SDK_LEDGER = "notifier-aiobotocore-ledger"
NOTIFIER_SDK = "notifier-aiobotocore"


def notifier_available() -> bool:
    """Whether the real handler and its hot path are importable in this tree."""
    try:
        return all(
            importlib.util.find_spec(m) is not None
            for m in ("notifier.handler", "notifier.ddb", "notifier.templates")
        )
    except ModuleNotFoundError:
        return False


def handler_libs() -> list[str]:
    if not notifier_available():
        return [BASELINE]
    return [BASELINE, NOTIFIER, NOTIFIER_SDK_LEDGER, NOTIFIER_SDK]


class LambdaContext:
    """The parts of the Lambda context object the handlers read."""

    function_name = "notifier-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:notifier-bench"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/notifier-bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class Built:
    """A handler that takes the raw event bytes, plus how to release it."""

    def __init__(self, call: Callable[[bytes], dict[str, Any]], close: Callable[[], None]) -> None:
        self.call = call
        self.close = close


def build(lib: str) -> Built:
    """Build ``lib``'s handler against the AWS endpoints in the environment."""
    ctx = LambdaContext()
    if lib == BASELINE:
        import simplejson

        from baseline_handler import build_baseline_handler

        baseline = build_baseline_handler()
        return Built(lambda raw: baseline(simplejson.loads(raw), ctx), lambda: None)

    import dataclasses

    from notifier.handler import build_handler
    from notifier.settings import Settings

    if lib == NOTIFIER:
        handler = build_handler()
        return Built(lambda raw: handler(raw, ctx), handler.close)
    sdk = dataclasses.replace(Settings.from_env(), aws_clients="aiobotocore")
    if lib == NOTIFIER_SDK:
        handler = build_handler(sdk)
        return Built(lambda raw: handler(raw, ctx), handler.close)

    from notifier.aws import SESv2Client

    loop = asyncio.new_event_loop()
    clients: dict[str, Any] = {"sesv2": SESv2Client(max_connections=64)}
    handler = build_handler(sdk, clients=clients, loop=loop)

    def close() -> None:
        for client in clients.values():
            loop.run_until_complete(client.close())
        handler.close()

    return Built(lambda raw: handler(raw, ctx), close)
