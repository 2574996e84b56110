"""Realistic sample events: the items applications write and the stream batches Lambda delivers.

Used by the demo, the tests and the benchmarks, so all three exercise the same shapes.
Deterministic for a given seed. The event contract is documented in the README.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "EVENT_TYPES",
    "SAMPLE_STREAM_ARN",
    "av_to_json",
    "make_item",
    "make_stream_event",
    "make_stream_record",
    "to_wire",
    "user_email",
]

EVENT_TYPES = ("profile_view", "friend_request", "application_update")
_LOCALES = ("en", "en-US", "de", "de-AT", "en-GB")
_FIRST = ("Ada", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Jürgen")
_LAST = ("Lovelace", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Allen")
_COMPANIES = ("Initech", "Globex", "Umbrella", "Hooli", "Vandelay Industries", "Stark Labs")
_TITLES = ("Staff Engineer", "Data Scientist", "Product Manager", "SRE", "Designer")
_STATUSES = ("received", "screening", "interview", "offer", "rejected")
_BASE_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z
SAMPLE_STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/notifier-events/stream/2026-01-01T00:00:00.000"
)


def user_email(user: int) -> str:
    """The demo address of user ``user``."""
    return f"user-{user}@example.com"


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def make_item(i: int, *, users: int = 100, seed: int = 0) -> dict[str, Any]:
    """Event ``i`` as a plain Python item (the shape applications put into the source table).

    Event ``i`` goes to user ``i % users``. Numbers are Decimals, as boto3 requires.
    """
    rng = random.Random(seed * 1_000_003 + i)
    user = i % users
    event_type = EVENT_TYPES[i % len(EVENT_TYPES)]
    created = _BASE_TIME + i
    iso = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event_id = f"evt-{seed:04d}-{i:09d}"
    data: dict[str, Any]
    if event_type == "profile_view":
        data = {
            "viewer_count": rng.randint(1, 40),
            "search_terms": [rng.choice(_TITLES) for _ in range(rng.randint(1, 3))],
            "source": rng.choice(["search", "feed", "recommendation"]),
        }
    elif event_type == "friend_request":
        data = {
            "mutual_friends": rng.randint(0, 120),
            "message": rng.choice(["", "Great to meet you at the conference!", "Hi 👋"]),
            "groups": {rng.choice(["rust", "python", "aws", "jazz"]) for _ in range(2)},
        }
    else:
        data = {
            "job": {
                "title": rng.choice(_TITLES),
                "company": rng.choice(_COMPANIES),
                "location": {"city": rng.choice(["Berlin", "Vienna", "Austin"]), "remote": True},
                "salary_range": [
                    Decimal(rng.randint(60, 90) * 1000),
                    Decimal(rng.randint(100, 180) * 1000),
                ],
            },
            "status": rng.choice(_STATUSES),
            "steps": [
                {"name": s, "done": k < 2, "at": Decimal(created - 86_400 * (3 - k))}
                for k, s in enumerate(("applied", "screen", "interview"))
            ],
            "score": Decimal(f"{rng.randint(0, 100)}.{rng.randint(0, 99):02d}"),
            "tags": {"urgent", rng.choice(["remote", "hybrid"])},
            "ratings": {Decimal(rng.randint(1, 5)), Decimal("4.5")},
        }
    item: dict[str, Any] = {
        "pk": f"USER#{user}",
        "sk": f"EVENT#{iso}#{event_id}",
        "event_id": event_id,
        "event_type": event_type,
        "user": {
            "id": str(user),
            "email": user_email(user),
            "name": _name(rng),
            "locale": _LOCALES[user % len(_LOCALES)],
        },
        "data": data,
        "created_at": Decimal(created),
        "trace": base64.b64decode("bm90aWZpZXItdHJhY2U="),
        "priority": None if i % 7 else Decimal(1),
        "is_test": False,
    }
    if event_type != "profile_view" or i % 2:
        item["actor"] = {
            "id": str(rng.randint(10_000, 99_999)),
            "name": _name(rng),
            "headline": f"{rng.choice(_TITLES)} at {rng.choice(_COMPANIES)}",
        }
    return item


def to_wire(value: Any) -> Any:
    """A Python value as DynamoDB AttributeValue JSON (what the stream carries): via boto3's
    TypeSerializer, with binary as base64 text and sets as lists."""
    from boto3.dynamodb.types import TypeSerializer

    return av_to_json(TypeSerializer().serialize(value))


def av_to_json(av: Mapping[str, Any]) -> dict[str, Any]:
    """A boto3 AttributeValue (bytes for B, sets) as Lambda stream JSON (base64 text, lists)."""
    ((tag, val),) = av.items()
    if tag == "B":
        return {"B": base64.b64encode(bytes(val)).decode()}
    if tag == "BS":
        return {"BS": [base64.b64encode(bytes(b)).decode() for b in val]}
    if tag in ("SS", "NS"):
        return {tag: list(val)}
    if tag == "L":
        return {"L": [av_to_json(v) for v in val]}
    if tag == "M":
        return {"M": {k: av_to_json(v) for k, v in val.items()}}
    return {tag: val}


def _image(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_wire(v) for k, v in item.items()}


def make_stream_record(
    i: int, *, users: int = 100, seed: int = 0, event_name: str | None = None
) -> dict[str, Any]:
    """Stream record ``i`` in the Lambda event format (NEW_AND_OLD_IMAGES).

    Without ``event_name`` the mix is 85% INSERT, 10% MODIFY, 5% REMOVE.
    """
    if event_name is None:
        r = i % 20
        event_name = "REMOVE" if r == 19 else "MODIFY" if r >= 17 else "INSERT"
    item = make_item(i, users=users, seed=seed)
    keys = {"pk": to_wire(item["pk"]), "sk": to_wire(item["sk"])}
    ddb: dict[str, Any] = {
        "ApproximateCreationDateTime": _BASE_TIME + i,
        "Keys": keys,
        "SequenceNumber": f"{(seed + 1) * 10**20 + i * 100:026d}",
        "SizeBytes": 0,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if event_name in ("INSERT", "MODIFY"):
        ddb["NewImage"] = _image(item)
    if event_name in ("MODIFY", "REMOVE"):
        old = dict(item)
        old["is_test"] = True
        ddb["OldImage"] = _image(old)
    ddb["SizeBytes"] = len(json.dumps(ddb.get("NewImage") or ddb.get("OldImage")))
    return {
        "eventID": f"{seed:08x}{i:024x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": ddb,
        "eventSourceARN": SAMPLE_STREAM_ARN,
    }


def make_stream_event(n: int, *, users: int = 100, seed: int = 0, start: int = 0) -> dict[str, Any]:
    """A Lambda DynamoDB Streams event with ``n`` records (records ``start`` .. ``start+n-1``)."""
    return {"Records": list(_records(n, users=users, seed=seed, start=start))}


def _records(n: int, *, users: int, seed: int, start: int) -> Iterator[dict[str, Any]]:
    for i in range(start, start + n):
        yield make_stream_record(i, users=users, seed=seed)
