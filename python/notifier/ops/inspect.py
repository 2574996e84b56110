"""``notifier inspect KEY``: the ledger entries of an event id, a dedup key or a ledger key.

``KEY`` is tried as given (a raw ``pk`` such as ``email#evt-1``) and as the dedup key of every
channel in the config (``NOTIFIER_CONFIG``): ``<channel>#<KEY>``, hashed as the pipeline hashes
keys over 200 bytes (``notifier.ledger.ledger_key``). Every entry found is printed: state,
channel, message id, outcome, error code, failure reason, owner, claimed/finished times, lease
and TTL (ISO 8601, UTC). Exit 0 when something was found, 1 when nothing was.

The ledger holds no email addresses; anything shaped like one is masked all the same.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from notifier.ops._common import UsageError, guarded, iso

__all__ = ["add_arguments", "candidates", "describe", "mask", "run"]

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")
_FIELDS = (
    "state",
    "channel",
    "message_id",
    "outcome",
    "error_code",
    "reason",
    "delivery",
    "delivery_at",
    "bounce_type",
    "complaint_type",
    "reconcile_by",
    "owner",
    "claimed_at",
    "finished_at",
    "lease_expires_at",
    "lease",
    "expires_at",
)


def mask(text: str) -> str:
    """``ada.lovelace@example.com`` -> ``a***@example.com``."""
    return _EMAIL.sub(r"\1***@\2", text)


def candidates(key: str, channels: list[str]) -> list[str]:
    """Ledger keys to try for ``key``: as given if it looks like one, then per channel."""
    from notifier.ledger import ledger_key

    out: list[str] = []
    if "#" in key:
        out.append(key)
    out += [ledger_key(ch, key) for ch in channels]
    return list(dict.fromkeys(out))


def describe(item: dict[str, Any], now: float) -> dict[str, Any]:
    """A ledger item (plain values) -> what ``inspect`` prints, times in ISO 8601."""
    pk = str(item.get("pk", ""))
    lease = item.get("lease_expires_at")
    lease_state = None
    if lease is not None and item.get("state") in ("SENDING", "PENDING"):
        lease_state = "live" if float(lease) > now else "expired"
    doc: dict[str, Any] = {
        "pk": pk,
        "state": item.get("state"),
        "channel": pk.split("#", 1)[0] if "#" in pk else None,
        "message_id": item.get("message_id"),
        "outcome": item.get("outcome"),
        "error_code": item.get("error_code"),
        "reason": item.get("reason"),
        # from SES's events (notifier.ses_events): the delivery status and when it came
        "delivery": item.get("delivery"),
        "delivery_at": iso(item.get("delivery_at")),
        "bounce_type": item.get("bounce_type"),
        "complaint_type": item.get("complaint_type"),
        "reconcile_by": iso(item.get("reconcile_by")),
        "owner": item.get("owner"),
        "claimed_at": iso(item.get("claimed_at")),
        "finished_at": iso(item.get("finished_at")),
        "lease_expires_at": iso(lease),
        "lease": lease_state,
        "expires_at": iso(item.get("expires_at")),
    }
    return {k: mask(v) if isinstance(v, str) else v for k, v in doc.items()}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", help="event id, dedup key, or ledger key (<channel>#<dedup key>)")
    p.add_argument("--json", action="store_true", help="print the entries as a JSON list")
    p.add_argument(
        "--table", help="ledger table (default: NOTIFIER_LEDGER_TABLE, else notifier-ledger)"
    )


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        import boto3

        from notifier.config import load_config
        from notifier.settings import Settings

        if not args.key.strip():
            raise UsageError("KEY: empty")
        settings = Settings.from_env()
        config = load_config(settings.config_path)
        table = args.table or settings.ledger_table
        ddb = boto3.session.Session(region_name=settings.region).client("dynamodb")
        keys = candidates(args.key, list(config.channels))
        found: list[dict[str, Any]] = []
        now = time.time()
        for key in keys:
            try:
                resp = ddb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                if code == "ResourceNotFoundException":
                    raise UsageError(
                        f"ledger table {table!r} not found (--table / NOTIFIER_LEDGER_TABLE)"
                    ) from exc
                raise
            item = resp.get("Item")
            if item:
                plain = {k: next(iter(v.values())) for k, v in item.items()}
                found.append(describe(plain, now))
        if args.json:
            print(json.dumps(found, indent=2))
        elif not found:
            tried = ", ".join(mask(k) for k in keys)
            print(f"no ledger entry for {mask(args.key)!r} (tried {tried})", file=sys.stderr)
        else:
            for i, doc in enumerate(found):
                if i:
                    print()
                print(doc["pk"])
                for f in _FIELDS:
                    if doc.get(f) is not None:
                        print(f"  {f:<17}{doc[f]}")
        return 0 if found else 1

    return guarded("inspect", body)
