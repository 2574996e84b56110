"""Zero-latency local stand-ins for the AWS endpoints the handlers call (benchmarks only).

Answers valid, minimal responses so SDK CPU is measured without moto's cost:
DynamoDB (JSON 1.0: TransactWriteItems, BatchWriteItem, PutItem, UpdateItem, GetItem,
DeleteItem, BatchGetItem, Query, DescribeTable), SESv2 (restJson: SendEmail, GetAccount),
SES v1 (query/XML: GetSendQuota), SQS (JSON protocol: SendMessage, SendMessageBatch,
GetQueueUrl). ``--latency-ms`` delays every answer (e.g. 20 ms, like a real regional endpoint).

Runs in its own process so its CPU is not charged to the process under measurement:

    python benches/stub_aws.py [--port 0] [--latency-ms 20]   # prints "READY <url>"

``StubAws`` starts and stops it from Python; ``GET /_stub/stats`` returns per-operation call
counts and emails sent, ``POST /_stub/reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from typing import Any

from aiohttp import web

__all__ = ["StubAws", "stub_env"]

_JSON10 = "application/x-amz-json-1.0"


def _ddb(op: str, body: dict[str, Any]) -> dict[str, Any]:
    if op == "BatchWriteItem":
        return {"UnprocessedItems": {}}
    if op == "BatchGetItem":
        return {"Responses": {t: [] for t in body.get("RequestItems", {})}, "UnprocessedKeys": {}}
    if op == "Query":
        return {"Items": [], "Count": 0, "ScannedCount": 0}
    if op == "DescribeTable":
        name = body.get("TableName", "t")
        return {"Table": {"TableName": name, "TableStatus": "ACTIVE", "ItemCount": 0}}
    return {}  # TransactWriteItems, PutItem, UpdateItem, DeleteItem, GetItem (absent item)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _sqs(op: str, body: dict[str, Any], base: str) -> dict[str, Any]:
    if op == "GetQueueUrl":
        return {"QueueUrl": f"{base}/123456789012/{body.get('QueueName', 'q')}"}
    if op == "SendMessage":
        return {
            "MessageId": str(uuid.uuid4()),
            "MD5OfMessageBody": _md5(body.get("MessageBody", "")),
        }
    if op == "SendMessageBatch":
        return {
            "Successful": [
                {
                    "Id": e["Id"],
                    "MessageId": str(uuid.uuid4()),
                    "MD5OfMessageBody": _md5(e.get("MessageBody", "")),
                }
                for e in body.get("Entries", [])
            ],
            "Failed": [],
        }
    return {}


_SEND_QUOTA_XML = """<GetSendQuotaResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/">
  <GetSendQuotaResult><Max24HourSend>1000000000.0</Max24HourSend>
  <SentLast24Hours>0.0</SentLast24Hours><MaxSendRate>1000000.0</MaxSendRate></GetSendQuotaResult>
  <ResponseMetadata><RequestId>stub-quota</RequestId></ResponseMetadata>
</GetSendQuotaResponse>"""

_ACCOUNT = {
    "DedicatedIpAutoWarmupEnabled": False,
    "EnforcementStatus": "HEALTHY",
    "ProductionAccessEnabled": True,
    "SendQuota": {"Max24HourSend": 1e9, "MaxSendRate": 1e6, "SentLast24Hours": 0.0},
    "SendingEnabled": True,
}


def make_app(latency_s: float = 0.0) -> web.Application:
    counts: Counter[str] = Counter()

    async def delay() -> None:
        if latency_s:
            await asyncio.sleep(latency_s)

    async def root(request: web.Request) -> web.Response:
        raw = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        await delay()
        if target:
            prefix, _, op = target.partition(".")
            body = json.loads(raw) if raw else {}
            if prefix.startswith("DynamoDB"):
                counts[f"dynamodb.{op}"] += 1
                if op == "TransactWriteItems":
                    counts["dynamodb.TransactWriteItems.items"] += len(
                        body.get("TransactItems", [])
                    )
                if op == "BatchWriteItem":
                    counts["dynamodb.BatchWriteItem.items"] += sum(
                        len(v) for v in body.get("RequestItems", {}).values()
                    )
                return web.Response(body=json.dumps(_ddb(op, body)), content_type=_JSON10)
            counts[f"sqs.{op}"] += 1
            base = f"{request.scheme}://{request.host}"
            return web.Response(body=json.dumps(_sqs(op, body, base)), content_type=_JSON10)
        form = dict(x.split("=", 1) for x in raw.decode().split("&") if "=" in x)
        action = form.get("Action", "")
        counts[f"ses.{action}"] += 1
        if action == "GetSendQuota":
            return web.Response(body=_SEND_QUOTA_XML, content_type="text/xml")
        return web.Response(status=400, body=f"unsupported action {action}")

    async def send_email(request: web.Request) -> web.Response:
        raw = await request.read()
        await delay()
        body = json.loads(raw)
        counts["sesv2.SendEmail"] += 1
        dest = body.get("Destination", {})
        counts["sesv2.recipients"] += sum(
            len(dest.get(k, [])) for k in ("ToAddresses", "CcAddresses", "BccAddresses")
        )
        return web.json_response(
            {"MessageId": f"stub-{uuid.uuid4()}"}, headers={"x-amzn-RequestId": "stub-request"}
        )

    async def get_account(_: web.Request) -> web.Response:
        await delay()
        counts["sesv2.GetAccount"] += 1
        return web.json_response(_ACCOUNT)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(dict(counts))

    async def reset(_: web.Request) -> web.Response:
        counts.clear()
        return web.json_response({})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v2/email/outbound-emails", send_email)
    app.router.add_get("/v2/email/account", get_account)
    app.router.add_get("/_stub/stats", stats)
    app.router.add_post("/_stub/reset", reset)
    app.router.add_post("/", root)
    return app


async def _serve(port: int, latency_ms: float) -> None:
    runner = web.AppRunner(make_app(latency_ms / 1000.0), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY http://127.0.0.1:{bound}", flush=True)
    await asyncio.Event().wait()


def stub_env(url: str) -> dict[str, str]:
    """Environment pointing every AWS SDK (and notifier's Settings) at the stub."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "NOTIFIER_FAILURE_QUEUE_URL": f"{url}/123456789012/notifier-failures",
    }


class StubAws:
    """The stub in a child process; a context manager yielding itself (``.url``)."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency_ms = latency_ms
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> StubAws:
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--latency-ms", str(self.latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self._proc.kill()
            raise RuntimeError(f"stub failed to start: {line!r}")
        self.url = line.split(" ", 1)[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_stub/stats", timeout=10) as resp:
            return dict(json.load(resp))

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/_stub/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.latency_ms))


if __name__ == "__main__":
    main()
