"""AWS cost per million notifications beyond SES, from what a benchmark measured.

Prices (us-east-1, on-demand, as used throughout docs/): Lambda arm64 at 1,769 MB (one vCPU)
bills 0.0000133334 USD per GB-second plus 0.20 USD per million invocations; DynamoDB
on-demand bills 0.625 USD per million write request units (an item up to 1 KB is 1 unit, a
failed conditional write still costs its unit, an item inside TransactWriteItems costs 2).
SES (0.10 USD per 1,000 emails) is the same for every handler and left out.

Write units are counted at the benchmark stub from the requests each handler made, at 1 unit
per item written (every ledger item of both handlers is under 1 KB).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LAMBDA_USD_PER_S", "WRU_USD", "cost_info", "write_units"]

LAMBDA_GB = 1769 / 1024
LAMBDA_USD_PER_S = 0.0000133334 * LAMBDA_GB
LAMBDA_USD_PER_INVOCATION = 0.20 / 1e6
WRU_USD = 0.625 / 1e6


def write_units(stats: Mapping[str, int]) -> int:
    """Write request units of the DynamoDB calls a stub counted."""
    return (
        stats.get("dynamodb.PutItem", 0)
        + stats.get("dynamodb.UpdateItem", 0)
        + stats.get("dynamodb.DeleteItem", 0)
        + stats.get("dynamodb.BatchWriteItem.items", 0)
        + 2 * stats.get("dynamodb.TransactWriteItems.items", 0)
    )


def cost_info(
    seconds_per_notification: float,
    stats: Mapping[str, int],
    notifications: int,
    notifications_per_invocation: int,
) -> dict[str, float]:
    """extra_info entries: write units and requests per notification, USD per million."""
    wru = write_units(stats) / notifications
    requests = sum(v for k, v in stats.items() if k.startswith("dynamodb.") and "." not in k[9:])
    lam = (
        seconds_per_notification * LAMBDA_USD_PER_S
        + LAMBDA_USD_PER_INVOCATION / notifications_per_invocation
    ) * 1e6
    ddb = wru * WRU_USD * 1e6
    return {
        "write_units_per_notification": round(wru, 3),
        "ddb_requests_per_notification": round(requests / notifications, 3),
        "lambda_usd_per_million": round(lam, 4),
        "dynamodb_usd_per_million": round(ddb, 4),
        "usd_per_million": round(lam + ddb, 4),
    }
