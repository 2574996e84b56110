"""A deliberately small exactly-once handler for testing the demo's mechanics on their own:
a conditional put into the ledger per event, then one SES send. Not the product's pipeline."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import boto3


class StubPipeline:
    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb")
        self.ses = boto3.client("sesv2")
        self.stats: Counter[str] = Counter()

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        table = os.environ["NOTIFIER_LEDGER_TABLE"]
        for rec in event["Records"]:
            self.stats["records"] += 1
            if rec["eventName"] != "INSERT":
                self.stats["skipped"] += 1
                continue
            image = rec["dynamodb"]["NewImage"]
            try:
                resp = self.ddb.put_item(
                    TableName=table,
                    Item={"pk": {"S": f"email#{image['event_id']['S']}"}},
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnConsumedCapacity="TOTAL",
                )
            except self.ddb.exceptions.ConditionalCheckFailedException:
                self.stats["duplicates"] += 1
                continue
            self.stats["write_units"] += int(resp["ConsumedCapacity"]["CapacityUnits"])
            self.ses.send_email(
                FromEmailAddress="notifications@example.com",
                Destination={"ToAddresses": [image["user"]["M"]["email"]["S"]]},
                Content={"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "x"}}}},
            )
            self.stats["sent"] += 1
        return {"batchItemFailures": []}


def build_handler() -> StubPipeline:
    return StubPipeline()
