"""Conformance: a public Kinesis Data Streams for DynamoDB event (see README.md here) decoded by
us, against its payloads decoded by ``base64`` + ``json`` + boto3's TypeDeserializer."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer

from notifier.ddb import StreamRecord, decode_kinesis_event, decode_stream_event

KINESIS = sorted((Path(__file__).resolve().parent / "events" / "kinesis").glob("*.json"))
BOTO3 = TypeDeserializer()


def _image(av: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if av is None else {k: BOTO3.deserialize(v) for k, v in av.items()}


@pytest.mark.parametrize("path", KINESIS, ids=lambda p: p.name)
@pytest.mark.parametrize("images", ["python", "tree", "lazy"])
def test_public_kinesis_event_decodes_like_the_reference(path: Path, images: str) -> None:
    raw = path.read_bytes()
    event = json.loads(raw)
    assert KINESIS, "fixtures present"
    for form in (raw, event):
        for records in (
            decode_kinesis_event(form, images=images),
            decode_stream_event(form, images=images),
        ):
            assert len(records) == len(event["Records"])
            for rec, src in zip(records, event["Records"], strict=True):
                assert isinstance(rec, StreamRecord)
                change = json.loads(base64.b64decode(src["kinesis"]["data"]))
                ddb = change["dynamodb"]
                assert rec.sequence_number == src["kinesis"]["sequenceNumber"]
                assert rec.event_id == change["eventID"]
                assert rec.event_name == change["eventName"]
                assert rec.event_source_arn == src["eventSourceARN"]
                assert rec.aws_region == change["awsRegion"]
                # the fixture's table has millisecond precision
                assert rec.approximate_creation_time == ddb["ApproximateCreationDateTime"] / 1000
                assert rec.size_bytes == ddb.get("SizeBytes")
                assert rec.keys == _image(ddb["Keys"])
                assert rec.new_image == _image(ddb.get("NewImage"))
                assert rec.old_image == _image(ddb.get("OldImage"))
                assert json.loads(rec.raw) == change
