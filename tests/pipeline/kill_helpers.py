"""Helpers of the kill harness (test_pipeline_kill.py): worker processes, rounds, read-backs.

Nothing here knows the ledger's API or its states beyond ``SENT`` / ``FAILED`` being final:
the ledger is read with boto3 straight from moto. Messages are counted where they land, per
ledger key: emails in moto's SES, SMS and pushes in moto's SNS (by phone number, and on the
platform endpoints), webhooks at the local verifying receiver (by ``webhook-id``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from pipeline_helpers import LEDGER, TEMPLATES

import notifier
from notifier.channels.signing import message_id
from notifier.local.moto_server import LOCAL_CREDENTIALS
from notifier.samples import make_stream_record, user_email

WORKER = Path(__file__).with_name("kill_worker.py")
#: Concurrent sends of the worker's handler (``Settings.max_concurrency``): the bound on the
#: notifications a kill may leave claimed but not durably committed, over all channels (the
#: pipeline's send slots are shared by every channel).
MAX_CONCURRENCY = 8
FINAL_STATES = frozenset({"SENT", "FAILED"})
#: Record numbers of round ``r`` start at ``r * ROUND_STRIDE``: event ids, sequence numbers
#: and recipients are distinct across rounds, so moto need not be reset between them.
ROUND_STRIDE = 1_000
REGION = LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"]
#: The channel every record is routed to (conftest's BASE_CONFIG): ledger keys are
#: ``email#<event id>``.
CHANNEL = "email"
#: The channels of the multi-channel config (:func:`channels_config`); every channel's ledger
#: keys are ``<channel>#<event id>``, push's ``push#<event id>#<endpoint ARN>`` (one per device).
MULTI_CHANNELS = ("email", "sms", "push", "webhook")
WEBHOOK_SECRET_ENV = "NOTIFIER_KILL_WEBHOOK_SECRET"


def channels_config(*, policy: str, rate: float, webhook_url: str) -> str:
    """A config routing every event type to each of :data:`MULTI_CHANNELS`, each channel sending
    at ``rate``/s (so a round's send phase lasts about a second, as with email alone)."""
    routes = "".join(
        f"""
[[routes]]
event_types = ["profile_view", "friend_request", "application_update"]
channel = "{name}"
dedup_key = "event_id"
"""
        for name in MULTI_CHANNELS
    )
    return f"""
event_type_path = "event_type"

[delivery]
unknown_outcome = "{policy}"
lease_grace_seconds = 0.5
max_attempts = 8
base_delay_ms = 1
max_delay_ms = 20
deadline_margin_ms = 300

[channels.email]
kind = "email"
max_send_rate = {rate}

[channels.sms]
kind = "sms"
max_send_rate = {rate}

[channels.push]
kind = "push"
max_send_rate = {rate}

[channels.webhook]
kind = "webhook"
url = "{webhook_url}"
allowed_hosts = ["127.0.0.1"]
secret = "env:{WEBHOOK_SECRET_ENV}"
max_send_rate = {rate}
timeout_seconds = 5
{routes}"""


def device_pool(n: int) -> list[tuple[str, str]]:
    """``n`` (Android, iPhone) endpoint pairs in moto's SNS. Devices are shared by records and
    rounds: a push lands under its ``notification_id`` (the ledger key without the device) on
    its endpoint, so it is still counted per ledger key."""
    sns = boto3.client("sns")
    android = sns.create_platform_application(
        Name="kill-android", Platform="GCM", Attributes={"PlatformCredential": "key"}
    )["PlatformApplicationArn"]
    ios = sns.create_platform_application(
        Name="kill-ios",
        Platform="APNS",
        Attributes={"PlatformCredential": "key", "PlatformPrincipal": "cert"},
    )["PlatformApplicationArn"]

    def endpoint(app: str, token: str) -> str:
        arn = sns.create_platform_endpoint(PlatformApplicationArn=app, Token=token)
        return str(arn["EndpointArn"])

    return [(endpoint(android, f"fcm-{i:04d}"), endpoint(ios, f"{i:064x}")) for i in range(n)]


@dataclass(frozen=True)
class Round:
    """One batch: a stream event whose records each go to a distinct recipient, on email alone
    or on every channel of :func:`channels_config`."""

    number: int
    event: dict[str, Any]
    recipients: dict[str, str]  #: event id -> email address
    sequence: dict[str, str]  #: event id -> sequence number
    keys: dict[str, str]  #: ledger key -> event id, for every notification of the round
    #: The webhook receiver (a ``WebhookReceiver``) when the round has webhooks.
    receiver: Any = None

    @classmethod
    def build(
        cls,
        number: int,
        size: int,
        *,
        seed: int,
        devices: list[tuple[str, str]] | None = None,
        receiver: Any = None,
    ) -> Round:
        """Email alone; with ``devices`` (and ``receiver``), every channel of the multi-channel
        config: record ``i`` has a phone number of its own, an Android device, and every second
        one an iPhone too."""
        base = number * ROUND_STRIDE
        records = [
            make_stream_record(i, users=10**9, seed=seed, event_name="INSERT")
            for i in range(base, base + size)
        ]
        recipients, sequence, keys = {}, {}, {}
        for i, rec in zip(range(base, base + size), records, strict=True):
            image = rec["dynamodb"]["NewImage"]
            event_id = image["event_id"]["S"]
            recipients[event_id] = user_email(i)
            sequence[event_id] = rec["dynamodb"]["SequenceNumber"]
            keys[f"{CHANNEL}#{event_id}"] = event_id
            if devices is None:
                continue
            android, iphone = devices[i % len(devices)]
            arns = [android, iphone] if i % 2 == 0 else [android]
            image["user"]["M"]["devices"] = {"L": [{"S": a} for a in arns]}
            image["user"]["M"]["phone"] = {"S": phone_of(i)}
            keys.update({f"push#{event_id}#{a}": event_id for a in arns})
            keys[f"sms#{event_id}"] = event_id
            keys[f"webhook#{event_id}"] = event_id
        return cls(number, {"Records": records}, recipients, sequence, keys, receiver)

    def landed(self) -> Counter[str]:
        """Messages that reached their provider, per ledger key of this round (0 when none):
        emails in moto's SES by address, SMS in moto's SNS by phone number, pushes on moto's
        SNS endpoints by notification id, webhooks the receiver accepted by ``webhook-id``."""
        by_address = Counter(address for msg in sent_messages() for address in _to(msg))
        by_key: Counter[str] = Counter()
        for key, event_id in self.keys.items():
            if key.startswith(f"{CHANNEL}#"):
                by_key[key] = by_address[self.recipients[event_id]]
        if any(k.startswith("sms#") for k in self.keys):
            by_phone = sms_messages()
            for number, event_id in enumerate(self.recipients, self.number * ROUND_STRIDE):
                by_key[f"sms#{event_id}"] = by_phone[phone_of(number)]
        if any(k.startswith("push#") for k in self.keys):
            pushes = push_messages()
            by_key.update({k: pushes[k] for k in self.keys if k.startswith("push#")})
        if self.receiver is not None:
            accepted = self.receiver.accepted()
            by_key.update(
                {k: accepted.get(message_id(k), 0) for k in self.keys if k.startswith("webhook#")}
            )
        return Counter({k: by_key[k] for k in self.keys})

    def ledger(self) -> dict[str, dict[str, Any]]:
        """This round's ledger entries by ledger key (absent: never written, or released)."""
        ddb = boto3.client("dynamodb")
        keys = list(self.keys)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 100):
            request: dict[str, Any] = {
                LEDGER: {
                    "Keys": [{"pk": {"S": k}} for k in keys[i : i + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                resp = ddb.batch_get_item(RequestItems=request)
                for item in resp["Responses"].get(LEDGER, []):
                    plain = {k: next(iter(v.values())) for k, v in item.items()}
                    out[plain["pk"]] = plain
                request = resp.get("UnprocessedKeys") or {}
        return out

    def forget(self) -> None:
        """Delete the round's ledger entries. moto copies a whole table for every transaction
        (``TransactWriteItems``), so a table that kept every round would slow each one down."""
        ddb = boto3.client("dynamodb")
        keys = list(self.keys)
        for i in range(0, len(keys), 25):
            request: dict[str, Any] = {
                LEDGER: [{"DeleteRequest": {"Key": {"pk": {"S": k}}}} for k in keys[i : i + 25]]
            }
            while request:
                request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    def keys_of(self, keys: Iterable[str]) -> set[str]:
        """The ledger keys among ``keys`` that are this round's."""
        return set(keys) & set(self.keys)


def sent_messages() -> list[Any]:
    """Every email moto's SES (v1 and v2) accepted, read from its backend in this process (the
    test session's moto server is threaded in-process), as moto documents for verifying sends.
    ``notifier.local.moto_server.sent_emails`` reads the same over HTTP (``data.json``), but
    that serialises every model instance moto ever tracked: tens of seconds, then timeouts,
    after a few thousand ledger writes."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def phone_of(number: int) -> str:
    """The phone number (E.164) of record ``number``'s user: distinct across rounds."""
    return f"+1206{number:07d}"


def sms_messages() -> Counter[str]:
    """SMS moto's SNS accepted, per phone number, read in this process."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    messages = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages
    return Counter(phone for phone, _ in list(messages.values()))


def push_messages() -> Counter[str]:
    """Pushes moto's SNS accepted, per ledger key (``<notification_id>#<endpoint ARN>``: the
    channel puts the ledger key without the device in every payload), read in this process."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    out: Counter[str] = Counter()
    endpoints = sns_backends[DEFAULT_ACCOUNT_ID][REGION].platform_endpoints
    for arn, endpoint in list(endpoints.items()):
        for text in list(endpoint.messages.values()):
            envelope = json.loads(text)
            platform = next(k for k in envelope if k != "default")
            payload = json.loads(envelope[platform])
            if platform == "GCM":
                payload = payload["fcmV1Message"]["message"]["data"]
            out[f"{payload['notification_id']}#{arn}"] += 1
    return out


def _to(msg: Any) -> list[str]:
    """The ``ToAddresses`` of a message (a moto model, or a ``data.json`` dict)."""
    dest = msg.get("destinations") if isinstance(msg, dict) else msg.destinations
    return list((dest or {}).get("ToAddresses") or [])


@dataclass
class Worker:
    """A ``kill_worker.py`` process: spawned early (its ~1 s start-up overlaps the parent's
    work), then given one round."""

    config: Path
    queue_url: str
    tmp: Path
    #: The handler's templates; None: the built-in set (it has the push variants).
    templates: Path | None = TEMPLATES
    proc: subprocess.Popen[str] = field(init=False)
    _stderr: IO[str] = field(init=False)

    def __post_init__(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # The worker imports the very notifier the test imported.
        package_root = str(Path(notifier.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._stderr = (self.tmp / "stderr.txt").open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                str(self.config),
                self.queue_url,
                str(self.templates or ""),
            ],
            cwd=WORKER.parent,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.wait(timeout=30)
            raise AssertionError(f"worker died early ({self.proc.returncode}): {self.stderr()}")
        return line

    def stderr(self) -> str:
        self._stderr.flush()
        return (self.tmp / "stderr.txt").read_text()[-3000:]

    def start(self, event: dict[str, Any], spec: dict[str, Any]) -> float:
        """Hand the worker its round; returns the monotonic time its batch started."""
        assert self._line() == "ready"
        (self.tmp / "event.json").write_text(json.dumps(event))
        spec = {
            **spec,
            "event": str(self.tmp / "event.json"),
            "report": str(self.tmp / "report.json"),
            "send_log": str(self.tmp / "sends.log"),
        }
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()
        assert self._line() == "go"
        return time.monotonic()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._stderr.close()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        return code

    def report(self) -> dict[str, Any]:
        path = self.tmp / "report.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def sends_started(self) -> list[str]:
        """Ledger keys whose ``send_one`` had been entered (the log survives SIGKILL)."""
        path = self.tmp / "sends.log"
        return path.read_text().split() if path.exists() else []

    def close(self) -> None:
        """Make sure the process is gone (a failing test must not leave it behind)."""
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
            self.wait(timeout=10)
