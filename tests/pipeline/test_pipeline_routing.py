"""One event, several channels: template variants, recipient paths, fan-out, missing recipients.

The channels here are ``memory`` channels configured with the routing attributes of SMS, push
and webhook channels (template variant, recipient path, fan-out, no rendering), so these tests
pin the core's side of the channel contract; tests/channels/ test the real channels.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_helpers import QUEUE, FakeContext, failure_messages, ledger_items

from notifier.channels.base import Outcome, SendResult
from notifier.handler import Handler, build_handler
from notifier.local.moto_server import sent_emails
from notifier.pipeline import BatchFailedError
from notifier.samples import make_stream_record
from notifier.settings import Settings

CONFIG = """
[delivery]
max_attempts = 3
base_delay_ms = 1
max_delay_ms = 5

[channels.email]
kind = "email"
max_send_rate = 1000

[channels.sms]
kind = "memory"
template_variant = "sms"
recipient_path = "user.phone"

[channels.push]
kind = "memory"
template_variant = "push"
recipient_path = "user.devices"
fan_out = true

[channels.hook]
kind = "memory"
render = false
recipient_path = ""
fixed_recipient = "https://hooks.example.com/notify"
required_parts = []

[[routes]]
event_types = ["friend_request"]
channel = "email"

[[routes]]
event_types = ["friend_request"]
channel = "sms"
{sms_extra}

[[routes]]
event_types = ["friend_request"]
channel = "push"

[[routes]]
event_types = ["friend_request"]
channel = "hook"
"""

TEMPLATES = {
    "friend_request/subject.txt": "{{ actor.name }} wants to connect",
    "friend_request/body.txt": "Hello {{ user.name }}, {{ actor.name }} sent a request.",
    "friend_request/sms.txt": "{{ actor.name }} wants to connect",
    "friend_request/de/sms.txt": "{{ actor.name }} möchte sich vernetzen",
    "friend_request/push.json": (
        '{"title": {{ actor.name ~ " wants to connect" }}, "body": {{ actor.headline }}}'
    ),
}


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    for name, text in TEMPLATES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def make_routed(
    provisioned: dict[str, str], templates: Path, tmp_path: Path
) -> Iterator[Callable[..., Handler]]:
    built: list[Handler] = []

    def make(sms_extra: str = "") -> Handler:
        config = tmp_path / f"config-{len(built)}.toml"
        config.write_text(CONFIG.format(sms_extra=sms_extra), encoding="utf-8")
        h = build_handler(
            Settings(
                config_path=str(config),
                templates_dir=str(templates),
                failure_queue_url=provisioned["queue_url"],
                max_concurrency=16,
            )
        )
        built.append(h)
        return h

    yield make
    for h in built:
        h.close()


def _friend_request(
    i: int, *, phone: str | None, devices: list[str] | None, locale: str = "en"
) -> dict[str, Any]:
    rec = make_stream_record(i, seed=5, users=50, event_name="INSERT")
    rec["dynamodb"]["ApproximateCreationDateTime"] = int(time.time())  # far from expiry
    image = rec["dynamodb"]["NewImage"]
    image["event_type"] = {"S": "friend_request"}
    image["actor"] = {
        "M": {"name": {"S": 'Ada "the" Lovelace'}, "headline": {"S": "Engineer <at> Analytical"}}
    }
    user = image["user"]["M"]
    user["locale"] = {"S": locale}
    if phone is not None:
        user["phone"] = {"S": phone}
    if devices is not None:
        user["devices"] = {"L": [{"S": d} for d in devices]}
    return rec


def _mem(handler: Handler, name: str) -> Any:
    return handler.channels[name]


def test_one_event_notifies_every_channel_once_each(
    make_routed: Callable[..., Handler], provisioned: dict[str, str]
) -> None:
    # GIVEN a friend request routed to email, SMS, push (two devices) and a webhook
    handler = make_routed()
    event = {
        "Records": [
            _friend_request(0, phone="+14155550100", devices=["dev-a", "dev-b"], locale="de"),
        ]
    }
    # WHEN the batch is delivered twice (the ESM redelivers it)
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN each channel sent its notification exactly once, each device its own
    assert len(sent_emails(provisioned["endpoint"])) == 1
    (sms,) = _mem(handler, "sms").outbox
    assert sms.recipient == "+14155550100"
    assert sms.text == 'Ada "the" Lovelace möchte sich vernetzen'  # de/sms.txt, not escaped
    assert (sms.subject, sms.html) == ("", None)
    pushes = _mem(handler, "push").outbox
    assert sorted(p.recipient for p in pushes) == ["dev-a", "dev-b"]
    # push.json is rendered with JSON escaping: quotes and brackets in values stay data
    assert json.loads(pushes[0].text) == {
        "title": 'Ada "the" Lovelace wants to connect',
        "body": "Engineer <at> Analytical",
    }
    (hook,) = _mem(handler, "hook").outbox
    assert hook.recipient == "https://hooks.example.com/notify"
    assert hook.text == ""  # rendered nothing: the channel sends the record itself
    assert hook.record_id == event["Records"][0]["eventID"]
    assert hook.event_type == "friend_request"
    # AND the ledger holds one SENT entry per notification: its own key each
    keys = sorted(ledger_items())
    assert [k.split("#")[0] for k in keys] == ["email", "hook", "push", "push", "sms"]
    assert all(v["state"] == "SENT" for v in ledger_items().values())
    assert {k for k in keys if k.startswith("push#")} == {
        k for k in keys if k.endswith("#dev-a") or k.endswith("#dev-b")
    }
    # AND the counters are kept per channel
    assert handler.stats["sent"] == 5
    assert handler.stats["duplicates"] == 5
    assert handler.channel_stats["push"]["sent"] == 2
    assert handler.channel_stats["sms"]["duplicates"] == 1


def test_a_missing_recipient_skips_that_channel_and_is_counted(
    make_routed: Callable[..., Handler], provisioned: dict[str, str]
) -> None:
    # GIVEN a user with no phone and an empty device list
    handler = make_routed()
    event = {"Records": [_friend_request(1, phone=None, devices=[])]}
    # WHEN handled
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN email and webhook went out, SMS and push were skipped and counted, nothing failed
    assert len(sent_emails(provisioned["endpoint"])) == 1
    assert _mem(handler, "sms").outbox == []
    assert _mem(handler, "push").outbox == []
    assert len(_mem(handler, "hook").outbox) == 1
    assert handler.stats["no_recipient"] == 2
    assert handler.stats["failed_permanent"] == 0
    assert handler.channel_stats["sms"]["no_recipient"] == 1
    assert failure_messages(provisioned["queue_url"]) == []


def test_missing_recipient_dead_letter_is_honoured(
    make_routed: Callable[..., Handler], provisioned: dict[str, str]
) -> None:
    # GIVEN the SMS route says a missing phone is a data error
    handler = make_routed('missing_recipient = "dead_letter"')
    event = {"Records": [_friend_request(2, phone=None, devices=["dev-c"])]}
    # WHEN handled
    handler(event, FakeContext())
    # THEN the SMS notification is dead-lettered with its channel; the others were sent
    (failure,) = failure_messages(provisioned["queue_url"])
    assert (failure["channel"], failure["error_code"]) == ("sms", "MissingRecipient")
    assert len(_mem(handler, "push").outbox) == 1
    assert len(sent_emails(provisioned["endpoint"])) == 1


def test_fan_out_sends_each_device_once_and_fails_only_the_bad_one(
    make_routed: Callable[..., Handler], provisioned: dict[str, str]
) -> None:
    # GIVEN a device list with a repeated device and one that is not a device at all
    handler = make_routed()
    rec = _friend_request(3, phone="+14155550103", devices=["dev-d", "dev-d", "dev-e"])
    rec["dynamodb"]["NewImage"]["user"]["M"]["devices"]["L"].append({"N": "7"})
    # WHEN handled
    assert handler({"Records": [rec]}, FakeContext()) == {"batchItemFailures": []}
    # THEN each distinct device got one push, the repeat counted as a duplicate
    assert sorted(p.recipient for p in _mem(handler, "push").outbox) == ["dev-d", "dev-e"]
    assert handler.channel_stats["push"]["duplicates"] == 1
    # AND the unusable item is a permanent failure of that item only
    (failure,) = failure_messages(provisioned["queue_url"])
    assert (failure["channel"], failure["error_code"]) == ("push", "InvalidRecipient")
    assert handler.channel_stats["push"]["failed_permanent"] == 1


def test_one_channel_failing_does_not_touch_the_others(
    make_routed: Callable[..., Handler], provisioned: dict[str, str]
) -> None:
    # GIVEN the SMS provider rejects this number permanently and push is throttled
    handler = make_routed()
    _mem(handler, "sms").fail_next(
        "+14155550104", SendResult(Outcome.PERMANENT, code="InvalidParameter", reason="bad")
    )
    _mem(handler, "push").fail_next(
        "dev-f",
        *[SendResult(Outcome.TRANSIENT, code="Throttled", reason="slow down")] * 20,
    )
    event = {"Records": [_friend_request(4, phone="+14155550104", devices=["dev-f"])]}
    # WHEN handled
    # THEN the record fails transiently (push), so the whole one-record batch is retried ...
    with pytest.raises(BatchFailedError):
        handler(event, FakeContext())
    # ... the SMS is dead-lettered, email and webhook were sent and are SENT in the ledger
    (failure,) = failure_messages(provisioned["queue_url"])
    assert (failure["channel"], failure["error_code"]) == ("sms", "InvalidParameter")
    states = {k.split("#")[0]: v["state"] for k, v in ledger_items().items()}
    assert states == {"email": "SENT", "hook": "SENT", "sms": "FAILED"}
    # WHEN the ESM redelivers the record and push recovers
    _mem(handler, "push")._script.clear()  # no more scripted failures
    assert handler(event, FakeContext()) == {"batchItemFailures": []}
    # THEN only the push went out this time: nothing else twice
    assert len(_mem(handler, "push").outbox) == 1
    assert len(sent_emails(provisioned["endpoint"])) == 1
    assert len(_mem(handler, "hook").outbox) == 1
    assert len(_mem(handler, "sms").outbox) == 0
    assert failure_messages(provisioned["queue_url"]) == []
    assert QUEUE in provisioned["queue_url"]
